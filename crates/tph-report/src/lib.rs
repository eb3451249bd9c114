//! What `tphctl` reports about the TPH Requester capabilities of a machine.
//!
//! - [`report`]: the JSON report schema of `tphctl list` and `show` (one [`report::FunctionReport`]
//!   per function with the capability, field names documented in `crates/tphctl/README-json.md`),
//!   the TPH verdict on partially read configuration space ([`report::tph_presence`]), and the
//!   names every JSON output of `tphctl` uses for a mode, a table location, a requester type.
//! - [`lspci`]: the lines `lspci -vvv` (pciutils 3.9) prints for the capability, byte for byte.
//! - [`source`]: a machine from a sysfs tree or a dump, with what reads its MSI-X tables.
//!
//! The register decoding itself is `tph-regs`; this crate is kept apart so that a driver linking
//! `tph-client` (which needs only the decoding) compiles none of the reporting.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod lspci;
pub mod report;
pub mod source;

/// The little-endian 32-bit dword at `off`, or `None` when it does not fit.
fn rd32(cfg: &[u8], off: usize) -> Option<u32> {
    let b: [u8; 4] = cfg.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}
