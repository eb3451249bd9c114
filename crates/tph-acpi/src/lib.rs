//! Where steering tags come from: the PCI host bridge `_DSM` (revision 7, function 0xF).
//!
//! [`StInfo`] decodes the 64-bit result (`docs/spec/firmware-dsm.md`); [`SteeringTagSource`] is
//! the seam the kernel model asks for tags; [`TableSource`] answers from a table of results and
//! [`AmlSource`] from real firmware, run by the [`aml`] interpreter. [`madt`] maps CPUs to ACPI
//! processor UIDs. [`firmware::open`] turns a user's firmware path (table file, ASL, AML, or a
//! folder of tables) into a source.
//!
//! Linked by `tph-kernel` (the model's steering-tag source) and `tphctl` (`st-map`, tag owners in
//! `show`). A driver does not need it: on a real host the kernel resolves tags itself. The `iasl`
//! feature (default) compiles ASL firmware by running ACPICA's `iasl`; `serde` adds
//! `serde::Serialize` to the MADT and tag-width types.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod aml;
pub mod dsm;
pub mod firmware;
#[cfg(feature = "iasl")]
pub mod iasl;
pub mod madt;
mod source;
mod stinfo;

pub use dsm::AmlSource;
pub use firmware::{open as open_firmware, open_source, Firmware, FirmwareKind};
pub use source::{FirmwareError, HostBridgeId, SteeringTagSource, TableSource};
pub use stinfo::{MemType, StHalf, StInfo, TagWidth};
