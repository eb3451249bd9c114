//! The guest's root file system: busybox, host binaries with the shared libraries `ldd` names,
//! kernel modules (decompressed, with a `modules.dep` of their own) and the scripts to run.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

use crate::cpio::Cpio;
use crate::kernel::KernelTree;

/// Files of the initramfs, by absolute guest path; directories are made as needed.
#[derive(Debug, Default)]
pub struct Initramfs {
    cpio: Cpio,
    dirs: BTreeSet<String>,
    files: BTreeSet<String>,
}

impl Initramfs {
    /// Busybox (static) and the directories every guest needs.
    pub fn new() -> Result<Self, String> {
        let mut fs = Self::default();
        for d in [
            "/proc",
            "/sys",
            "/dev",
            "/tmp",
            "/root",
            "/etc",
            "/sbin",
            "/usr/sbin",
        ] {
            fs.mkdirs(d);
        }
        let busybox =
            find_in_path("busybox").ok_or("busybox is missing (Debian package busybox-static)")?;
        fs.host_file(&busybox, "/bin/busybox", 0o755)?;
        fs.add(
            "/etc/passwd",
            0o644,
            b"root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/tmp:/bin/sh\n",
        );
        fs.add("/etc/group", 0o644, b"root:x:0:\nuser:x:1000:\n");
        Ok(fs)
    }

    /// A file with `data` at `path`.
    pub fn add(&mut self, path: &str, mode: u32, data: &[u8]) {
        if let Some((parent, _)) = path.rsplit_once('/') {
            self.mkdirs(parent);
        }
        if self.files.insert(path.to_string()) {
            self.cpio.file(path, mode, data);
        }
    }

    /// The host file `src` at `path`.
    pub fn host_file(&mut self, src: &Path, path: &str, mode: u32) -> Result<(), String> {
        let data = std::fs::read(src).map_err(|e| format!("{}: {e}", src.display()))?;
        self.add(path, mode, &data);
        Ok(())
    }

    /// The host executable `src` at `path`, with every shared library `ldd` lists for it at the
    /// library's own path.
    pub fn binary(&mut self, src: &Path, path: &str) -> Result<(), String> {
        self.host_file(src, path, 0o755)?;
        for lib in shared_libraries(src)? {
            let guest = lib.to_string_lossy().into_owned();
            let real = std::fs::canonicalize(&lib).map_err(|e| format!("{guest}: {e}"))?;
            self.host_file(&real, &guest, 0o755)?;
        }
        Ok(())
    }

    /// `modules` of `kernel` and their dependencies, decompressed, with their `modules.dep`.
    pub fn modules(&mut self, kernel: &KernelTree, modules: &[&str]) -> Result<(), String> {
        let dir = kernel.modules_dir();
        let deps = kernel.modules_dep()?;
        let wanted: BTreeSet<String> = kernel.module_closure(modules)?.into_iter().collect();
        let base = format!("/lib/modules/{}", kernel.release);
        let mut index = String::new();
        for (file, file_deps) in deps.iter().filter(|(f, _)| wanted.contains(f)) {
            let data = decompressed(&dir.join(file))?;
            self.add(&format!("{base}/{}", plain(file)), 0o644, &data);
            let list: Vec<&str> = file_deps.iter().map(|d| plain(d)).collect();
            index.push_str(&format!("{}: {}\n", plain(file), list.join(" ")));
        }
        self.add(&format!("{base}/modules.dep"), 0o644, index.as_bytes());
        Ok(())
    }

    /// The archive.
    pub fn finish(self) -> Vec<u8> {
        self.cpio.finish()
    }

    fn mkdirs(&mut self, path: &str) {
        let mut cur = String::new();
        for part in path.split('/').filter(|p| !p.is_empty()) {
            cur.push('/');
            cur.push_str(part);
            if self.dirs.insert(cur.clone()) {
                self.cpio.dir(&cur);
            }
        }
    }
}

fn plain(file: &str) -> &str {
    file.strip_suffix(".xz").unwrap_or(file)
}

/// A module file, through `busybox xzcat` when it is xz-compressed (Debian's 6.12 modules).
fn decompressed(path: &Path) -> Result<Vec<u8>, String> {
    if path.extension().is_none_or(|x| x != "xz") {
        return std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()));
    }
    let out = Command::new("busybox")
        .arg("xzcat")
        .arg(path)
        .output()
        .map_err(|e| format!("busybox xzcat: {e}"))?;
    if !out.status.success() {
        return Err(format!("busybox xzcat {} failed", path.display()));
    }
    Ok(out.stdout)
}

/// The absolute library paths `ldd` prints for `bin` (none for a static binary).
fn shared_libraries(bin: &Path) -> Result<Vec<std::path::PathBuf>, String> {
    let out = Command::new("ldd")
        .arg(bin)
        .output()
        .map_err(|e| format!("ldd: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| {
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| path.into())
        })
        .collect())
}

/// `name` in one of the `PATH` directories.
pub fn find_in_path(name: &str) -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .chain(["/usr/sbin".into(), "/sbin".into()])
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shared_libraries_of_a_dynamic_binary_include_libc_and_the_loader() {
        let libs = shared_libraries(Path::new("/bin/sh")).unwrap();
        assert!(
            libs.iter().any(|l| l.to_string_lossy().contains("libc.so")),
            "{libs:?}"
        );
        assert!(
            libs.iter()
                .any(|l| l.to_string_lossy().contains("ld-linux")),
            "{libs:?}"
        );
    }

    #[test]
    fn plain_drops_the_xz_suffix_only() {
        assert_eq!(plain("kernel/a.ko.xz"), "kernel/a.ko");
        assert_eq!(plain("kernel/a.ko"), "kernel/a.ko");
    }
}
