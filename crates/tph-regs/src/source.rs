//! Where a machine comes from: a sysfs tree or an lspci dump file, with what can read its
//! MSI-X tables and any warnings about what could not be read.

use std::path::PathBuf;

use crate::machine::Machine;
use crate::report::{ConfigOnly, MsixTableReader};
use crate::sysfs::Sysfs;
use crate::Error;

/// A machine source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A sysfs tree rooted here (`/sys` on a real system).
    Sysfs(PathBuf),
    /// An `lspci -x`/`-xxx`/`-xxxx` dump file.
    Dump(PathBuf),
}

/// A loaded machine.
pub struct Loaded {
    /// The functions.
    pub machine: Machine,
    /// Reads MSI-X tables where the source allows it.
    pub msix: Box<dyn MsixTableReader>,
    /// Things the user should know (for example short configuration reads).
    pub warnings: Vec<String>,
}

impl Source {
    /// Reads the machine.
    pub fn load(&self) -> Result<Loaded, Error> {
        match self {
            Self::Dump(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
                let machine = crate::parse_lspci_dump(&text)?;
                Ok(Loaded {
                    machine,
                    msix: Box::new(ConfigOnly),
                    warnings: Vec::new(),
                })
            }
            Self::Sysfs(root) => {
                let sysfs = Sysfs::new(root);
                let read = sysfs.read_machine()?;
                let warnings = read.short_reads.iter().map(|s| s.explain()).collect();
                Ok(Loaded {
                    machine: read.machine,
                    msix: Box::new(sysfs),
                    warnings,
                })
            }
        }
    }
}
