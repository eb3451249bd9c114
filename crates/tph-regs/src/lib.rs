//! PCI / PCI Express register model for TLP Processing Hints.
//!
//! Decoding and encoding of the configuration-space structures TPH touches: the header, the
//! capability and extended-capability lists, the PCI Express capability, MSI-X, and the TPH
//! Requester extended capability. Layouts follow `docs/spec/pci-tph-core.md` section 1.
//! Machines (functions plus bus topology) are read from lspci dumps ([`dump`]) or sysfs.
//!
//! Linked by `tph-client` (it decodes the TPH capability read from the config region on the
//! feature revision), `tph-kernel` (the emulated hardware's and the core's register fields),
//! `tph-emu`, the test kit, `tph-report` and `tphctl` (dumps and sysfs). What `tphctl` reports
//! (the JSON report schema, the lspci-style renderer) lives in `tph-report`, so a driver linking
//! `tph-client` compiles none of it. The optional `serde` feature adds `serde::Serialize` to
//! every decoded type.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod bytes;
pub mod caps;
pub mod dump;
mod error;
pub mod express;
pub mod fields;
pub mod header;
pub mod machine;
pub mod msix;
pub mod source;
pub mod sysfs;
pub mod tph;

pub use dump::parse_lspci_dump;
pub use error::Error;
