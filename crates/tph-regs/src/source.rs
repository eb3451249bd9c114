//! Where a machine comes from: a sysfs tree or an lspci dump file (or standard input), with
//! what can read its MSI-X tables and how to get the bytes a partial source lacks.

use std::io::BufReader;
use std::path::{Path, PathBuf};

use crate::dump::{read_lspci_dump, read_lspci_dump_for, read_lspci_dump_for_reports, DumpLimits};
use crate::machine::{Bdf, Machine};
use crate::report::{ConfigOnly, MsixTableReader};
use crate::sysfs::Sysfs;
use crate::Error;

/// A machine source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A sysfs tree rooted here (`/sys` on a real system).
    Sysfs(PathBuf),
    /// An `lspci -x`/`-xxx`/`-xxxx` dump file; `-` is standard input.
    Dump(PathBuf),
}

/// A loaded machine.
pub struct Loaded {
    /// The functions.
    pub machine: Machine,
    /// Reads MSI-X tables where the source allows it.
    pub msix: Box<dyn MsixTableReader>,
    /// How to get the configuration bytes this source lacks, when a verdict is unknown.
    pub unread_fix: &'static str,
}

/// The fix for a dump that lacks bytes.
pub const DUMP_FIX: &str = "dump the machine with `lspci -xxxx` (as root), which writes all \
                            4096 bytes of each function";

/// The fix for a sysfs tree read without privileges.
pub const SYSFS_FIX: &str = "run as root: the kernel returns the bytes past the first 64 of \
                             each `config` file only to CAP_SYS_ADMIN";

impl Source {
    /// Reads the machine.
    pub fn load(&self) -> Result<Loaded, Error> {
        self.load_keeping(false)
    }

    /// Reads the machine for TPH output only (`crate::report`, `crate::lspci`): a dump's
    /// endpoints keep just the bytes those read (see
    /// [`crate::dump::read_lspci_dump_for_reports`]).
    pub fn load_for_reports(&self) -> Result<Loaded, Error> {
        self.load_keeping(true)
    }

    fn load_keeping(&self, reports_only: bool) -> Result<Loaded, Error> {
        match self {
            Self::Dump(path) => Ok(Loaded {
                machine: read_dump_keeping(path, DumpLimits::default(), reports_only)?,
                msix: Box::new(ConfigOnly),
                unread_fix: DUMP_FIX,
            }),
            Self::Sysfs(root) => {
                let sysfs = Sysfs::new(root);
                let read = sysfs.read_machine()?;
                Ok(Loaded {
                    machine: read.machine,
                    msix: Box::new(sysfs),
                    unread_fix: SYSFS_FIX,
                })
            }
        }
    }
}

/// Reads the dump at `path` (`-`: standard input) within `limits`, streaming.
pub fn read_dump(path: &Path, limits: DumpLimits) -> Result<Machine, Error> {
    read_dump_keeping(path, limits, false)
}

fn read_dump_keeping(
    path: &Path,
    limits: DumpLimits,
    reports_only: bool,
) -> Result<Machine, Error> {
    let read = |input: &mut dyn std::io::BufRead| match reports_only {
        true => read_lspci_dump_for_reports(input, limits),
        false => read_lspci_dump(input, limits),
    };
    if path == Path::new("-") {
        return read(&mut std::io::stdin().lock());
    }
    read(&mut open(path)?)
}

/// [`read_dump`] for work on the function `focus` alone (see
/// [`crate::dump::read_lspci_dump_for`]): a file only.
pub fn read_dump_for(path: &Path, limits: DumpLimits, focus: Bdf) -> Result<Machine, Error> {
    read_lspci_dump_for(open(path)?, limits, focus)
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, Error> {
    let file = open_regular(path).map_err(|e| Error::io(path, e))?;
    Ok(BufReader::with_capacity(1 << 16, file))
}

/// Opens `path` for reading when it is a regular file (after symbolic links). A FIFO, device
/// or socket is refused before it is opened: opening a FIFO blocks until a writer comes, and a
/// device such as `/dev/zero` never ends. A dump from a pipe is read with `-` (standard input).
pub(crate) fn open_regular(path: &Path) -> std::io::Result<std::fs::File> {
    let meta = std::fs::metadata(path)?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file (a FIFO, device or socket); give a regular file",
        ));
    }
    std::fs::File::open(path)
}
