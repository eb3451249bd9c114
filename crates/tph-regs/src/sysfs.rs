//! Reader of a sysfs tree (`ROOT/bus/pci/devices/*/config`) with a settable root, so tests can
//! use a fake tree, and read-only access to MSI-X Vector Control words through the BAR's
//! `resourceN` file.

use std::fs;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::machine::{Bdf, Function, Machine};
use crate::msix::{MsixCap, MSIX_ENTRY_SIZE, MSIX_VECTOR_CTRL};
use crate::Error;

/// A function whose `config` file returned fewer bytes than its size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ShortRead {
    /// The function.
    pub bdf: Bdf,
    /// Bytes read.
    pub read: usize,
    /// Size of the `config` file.
    pub size: u64,
}

impl ShortRead {
    /// A sentence explaining the short read.
    pub fn explain(&self) -> String {
        format!(
            "{}: only {} configuration bytes readable (file size {}): the kernel returns bytes \
             past the first 64 only to root (CAP_SYS_ADMIN); run as root to see capabilities \
             beyond byte {}",
            self.bdf, self.read, self.size, self.read
        )
    }
}

/// What a sysfs tree yielded.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SysfsRead {
    /// The functions found.
    pub machine: Machine,
    /// Functions whose configuration space came back short (not running as root).
    pub short_reads: Vec<ShortRead>,
}

/// A sysfs tree rooted at `root` (`/sys` on a real system).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sysfs {
    root: PathBuf,
}

impl Sysfs {
    /// A tree rooted at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// `ROOT/bus/pci/devices`.
    pub fn devices_dir(&self) -> PathBuf {
        self.root.join("bus/pci/devices")
    }

    fn device_dir(&self, bdf: Bdf) -> PathBuf {
        self.devices_dir().join(bdf.to_string())
    }

    /// Reads every function's configuration space, sorted by address.
    pub fn read_machine(&self) -> Result<SysfsRead, Error> {
        let dir = self.devices_dir();
        let entries = fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
        let mut out = SysfsRead::default();
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&dir, e))?;
            if out.machine.functions.len() >= crate::dump::DUMP_MAX_FUNCTIONS {
                return Err(Error::DumpTooLarge {
                    what: "functions",
                    limit: crate::dump::DUMP_MAX_FUNCTIONS as u64,
                });
            }
            let name = entry.file_name().to_string_lossy().into_owned();
            let bdf: Bdf = name.parse()?;
            let (config, size) = read_config(&entry.path().join("config"))?;
            if is_short(&config, size) {
                out.short_reads.push(ShortRead {
                    bdf,
                    read: config.len(),
                    size,
                });
            }
            out.machine.functions.push(Function { bdf, config });
        }
        out.machine.functions.sort_by_key(|f| f.bdf);
        Ok(out)
    }

    /// Reads `count` MSI-X Vector Control words of `bdf` from its table BAR's `resourceN`
    /// file, read-only.
    pub fn read_vector_controls(
        &self,
        bdf: Bdf,
        msix: &MsixCap,
        count: u16,
    ) -> Result<Vec<u32>, Error> {
        let path = self
            .device_dir(bdf)
            .join(format!("resource{}", msix.table_bir));
        let fail = |why: String| Error::MsixTable {
            bdf: bdf.to_string(),
            path: path.clone(),
            why,
        };
        if msix.table_bir > 5 {
            return Err(fail(format!("Table BIR {} is reserved", msix.table_bir)));
        }
        let mut file = crate::source::open_regular(&path).map_err(|e| fail(open_why(&e)))?;
        let len = usize::from(count) * MSIX_ENTRY_SIZE as usize;
        let mut table = vec![0u8; len];
        file.seek(SeekFrom::Start(u64::from(msix.table_offset)))
            .and_then(|_| file.read_exact(&mut table))
            .map_err(|e| fail(read_why(&e)))?;
        Ok(table
            .chunks_exact(MSIX_ENTRY_SIZE as usize)
            .filter_map(|e| crate::bytes::rd32(e, MSIX_VECTOR_CTRL as usize))
            .collect())
    }
}

fn open_why(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            "the BAR has no resource file (not implemented or not assigned)".into()
        }
        std::io::ErrorKind::PermissionDenied => format!("{e}: reading a BAR needs root"),
        _ => e.to_string(),
    }
}

fn read_why(e: &std::io::Error) -> String {
    format!(
        "{e}: the kernel allows only mmap() on a memory BAR's resource file, and tphctl does \
         not map BARs (no unsafe code outside tph-client); the table offset may also lie \
         beyond the BAR"
    )
}

/// Bytes an unprivileged reader gets: the kernel stops there for anyone but root.
const UNPRIVILEGED_LEN: usize = 64;

/// Whether the read came back short: fewer bytes than the file holds, or exactly the
/// unprivileged 64 while the header points at capabilities beyond them.
fn is_short(config: &[u8], size: u64) -> bool {
    let past_header =
        crate::bytes::rd8(config, 0x34).is_some_and(|p| usize::from(p) >= UNPRIVILEGED_LEN);
    (config.len() as u64) < size || (config.len() == UNPRIVILEGED_LEN && past_header)
}

/// Reads a `config` file: its bytes (as many as the kernel returns) and its size.
fn read_config(path: &Path) -> Result<(Vec<u8>, u64), Error> {
    let mut file = crate::source::open_regular(path).map_err(|e| Error::io(path, e))?;
    let size = file.metadata().map_err(|e| Error::io(path, e))?.len();
    let mut config = Vec::with_capacity(4096);
    file.by_ref()
        .take(4096)
        .read_to_end(&mut config)
        .map_err(|e| Error::io(path, e))?;
    Ok((config, size))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_read_explanation_names_root() {
        let s = ShortRead {
            bdf: Bdf::new(0, 1, 0, 0).expect("valid"),
            read: 64,
            size: 4096,
        };
        assert!(s
            .explain()
            .contains("only 64 configuration bytes readable (file size 4096)"));
        assert!(s.explain().contains("root"));
    }
}
