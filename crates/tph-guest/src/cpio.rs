//! A `newc` cpio archive (the format the kernel unpacks as an initramfs), written in memory.

/// Builds an archive entry by entry; parents must be added before their children.
#[derive(Debug, Default)]
pub struct Cpio {
    bytes: Vec<u8>,
    next_ino: u32,
}

const DIR: u32 = 0o040_000;
const FILE: u32 = 0o100_000;
const SYMLINK: u32 = 0o120_000;

impl Cpio {
    /// A directory (mode 0755).
    pub fn dir(&mut self, name: &str) {
        self.entry(name, DIR | 0o755, &[]);
    }

    /// A regular file with `mode` permission bits.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.entry(name, FILE | mode, data);
    }

    /// A symbolic link to `target`.
    pub fn symlink(&mut self, name: &str, target: &str) {
        self.entry(name, SYMLINK | 0o777, target.as_bytes());
    }

    /// The archive with its trailer.
    pub fn finish(mut self) -> Vec<u8> {
        self.entry("TRAILER!!!", 0, &[]);
        self.bytes
    }

    fn entry(&mut self, name: &str, mode: u32, data: &[u8]) {
        self.next_ino += 1;
        let name = name.trim_start_matches('/');
        let nlink = if mode & DIR == DIR { 2 } else { 1 };
        // ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
        // rdevminor, namesize (with its NUL), check.
        let fields = [
            self.next_ino,
            mode,
            0,
            0,
            nlink,
            0,
            data.len() as u32,
            0,
            0,
            0,
            0,
            name.len() as u32 + 1,
            0,
        ];
        self.bytes.extend_from_slice(b"070701");
        for f in fields {
            self.bytes.extend_from_slice(format!("{f:08X}").as_bytes());
        }
        self.bytes.extend_from_slice(name.as_bytes());
        self.bytes.push(0);
        self.pad();
        self.bytes.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.bytes.len().is_multiple_of(4) {
            self.bytes.push(0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_header_is_110_bytes_and_name_data_are_4_aligned() {
        let mut c = Cpio::default();
        c.file("init", 0o755, b"abc");
        let bytes = c.finish();
        assert_eq!(&bytes[..6], b"070701");
        // 110-byte header, "init\0" (5) padded to 116, 3 data bytes padded to 120.
        assert_eq!(&bytes[110..114], b"init");
        assert_eq!(&bytes[116..119], b"abc");
        assert_eq!(&bytes[120..126], b"070701");
        assert_eq!(bytes.len() % 4, 0);
        // Mode field (second) of the file: regular file 0755.
        assert_eq!(&bytes[14..22], b"000081ED");
    }

    #[test]
    fn archive_lists_with_busybox_cpio() {
        let mut c = Cpio::default();
        c.dir("d");
        c.file("d/f", 0o644, b"hello");
        c.symlink("d/l", "f");
        let dir = std::env::temp_dir().join(format!("tph-guest-cpio-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let archive = dir.join("a.cpio");
        std::fs::write(&archive, c.finish()).unwrap();
        let out = std::process::Command::new("busybox")
            .args(["cpio", "-t", "-F"])
            .arg(&archive)
            .output()
            .expect("busybox (Debian package busybox-static)");
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "d\nd/f\nd/l\n");
    }
}
