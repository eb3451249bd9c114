//! Where a machine comes from: a sysfs tree or an lspci dump file (or standard input), with
//! what can read its MSI-X tables and how to get the bytes a partial source lacks.

use std::io::BufRead;
use std::path::PathBuf;

use tph_regs::dump::{read_lspci_dump_trimmed, DumpLimits};
use tph_regs::machine::Machine;
use tph_regs::source::{read_dump, read_dump_trimmed};
use tph_regs::sysfs::Sysfs;
use tph_regs::Error;

use crate::lspci::lspci_extent;
use crate::report::{report_extent, ConfigOnly, MsixTableReader};

/// A machine source.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Source {
    /// A sysfs tree rooted here (`/sys` on a real system).
    Sysfs(PathBuf),
    /// An `lspci -x`/`-xxx`/`-xxxx` dump file; `-` is standard input.
    Dump(PathBuf),
}

/// A loaded machine.
#[non_exhaustive]
pub struct Loaded {
    /// The functions.
    pub machine: Machine,
    /// Reads MSI-X tables where the source allows it.
    pub msix: Box<dyn MsixTableReader>,
    /// How to get the configuration bytes this source lacks, when a verdict is unknown.
    pub unread_fix: &'static str,
}

impl Loaded {
    /// `machine` with its MSI-X tables read through `msix`; no fix to suggest for unread bytes
    /// (a source that holds every byte, such as an emulated machine).
    pub fn new(machine: Machine, msix: Box<dyn MsixTableReader>) -> Self {
        Self {
            machine,
            msix,
            unread_fix: "",
        }
    }

    /// The same with `fix` as the advice when a verdict needs bytes this source lacks.
    #[must_use]
    pub fn with_unread_fix(mut self, fix: &'static str) -> Self {
        self.unread_fix = fix;
        self
    }
}

/// The fix for a dump that lacks bytes.
pub const DUMP_FIX: &str = "dump the machine with `lspci -xxxx` (as root), which writes all \
                            4096 bytes of each function";

/// The fix for a sysfs tree read without privileges.
pub const SYSFS_FIX: &str = "run as root: the kernel returns the bytes past the first 64 of \
                             each `config` file only to CAP_SYS_ADMIN";

/// How many leading bytes of an endpoint's `cfg` this crate's outputs read: the TPH verdict and
/// report ([`report_extent`]) and the lspci lines ([`lspci_extent`]).
pub fn reports_extent(cfg: &[u8]) -> usize {
    report_extent(cfg).max(lspci_extent(cfg))
}

/// Reads a dump for TPH output only: every endpoint keeps the bytes [`reports_extent`] says
/// (bridges keep everything), so a machine of TPH endpoints takes a few hundred bytes a
/// function instead of 4 KiB.
pub fn read_lspci_dump_for_reports(
    input: impl BufRead,
    limits: DumpLimits,
) -> Result<Machine, Error> {
    read_lspci_dump_trimmed(input, limits, reports_extent)
}

impl Source {
    /// Reads the machine.
    pub fn load(&self) -> Result<Loaded, Error> {
        self.load_keeping(false)
    }

    /// Reads the machine for TPH output only ([`crate::report`], [`crate::lspci`]): a dump's
    /// endpoints keep just the bytes those read (see [`read_lspci_dump_for_reports`]).
    pub fn load_for_reports(&self) -> Result<Loaded, Error> {
        self.load_keeping(true)
    }

    fn load_keeping(&self, reports_only: bool) -> Result<Loaded, Error> {
        match self {
            Self::Dump(path) => {
                let limits = DumpLimits::default();
                let machine = match reports_only {
                    true => read_dump_trimmed(path, limits, reports_extent)?,
                    false => read_dump(path, limits)?,
                };
                Ok(Loaded {
                    machine,
                    msix: Box::new(ConfigOnly),
                    unread_fix: DUMP_FIX,
                })
            }
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
