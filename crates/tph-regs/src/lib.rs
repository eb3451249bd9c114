//! PCI / PCI Express register model for TLP Processing Hints.
//!
//! Decoding and encoding of the configuration-space structures TPH touches: the header, the
//! capability and extended-capability lists, the PCI Express capability, MSI-X, and the TPH
//! Requester extended capability. Layouts follow `shared/spec/pci-tph-core.md` section 1.
#![forbid(unsafe_code)]

pub mod caps;
pub mod tph;
