//! Where steering tags come from: the PCI host bridge `_DSM` (revision 7, function 0xF).
//!
//! [`StInfo`] decodes the 64-bit result (`shared/spec/firmware-dsm.md`); [`SteeringTagSource`] is
//! the seam the kernel model asks for tags; [`TableSource`] answers from a table of results.
#![forbid(unsafe_code)]

mod source;
mod stinfo;

pub use source::{FirmwareError, SteeringTagSource, TableSource};
pub use stinfo::{MemType, StInfo};
