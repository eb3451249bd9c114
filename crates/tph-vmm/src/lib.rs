//! TPH for virtual machines: the VMM-side layer that lets a guest use TLP Processing Hints on a
//! passed-through device without ever handing it host steering tags.
//!
//! For Rust VMMs (cloud-hypervisor, crosvm, firecracker, anything on rust-vmm) to embed in
//! their VFIO device. Pieces, each one module:
//!
//! - [`VirtualTph`] (`device`): the guest's view of the device's TPH Requester capability
//!   (No-ST and IV; DS only with an explicit unsafe option; table location and size as the host
//!   has them; extended TPH as the host path allows), trapped configuration writes and MSI-X
//!   Vector Control writes (the ST half; the mask bit goes back to the VMM), and the
//!   translation: guest "entry i = virtual tag t" becomes host "entry i = host CPU pin(v)"
//!   through [`tph_client::TphDevice`], batched. A tag that names no vCPU of the VM never
//!   reaches the device (entry cleared, counted in [`Stats`], reported in [`Effect`]).
//! - [`VirtualCap`] (`config`): what the guest reads, and the virtual root port's DevCap2 TPH
//!   completer bits.
//! - [`vtag`]: the virtual tag encoding (tag 0 none, VM tag of vCPU v = v + 1, PM tag =
//!   N + v + 1 when it fits).
//! - [`ssdt`]: the guest firmware, a host-bridge `_DSM` (revision 7, functions 0 and 0xF)
//!   that hands out those tags: a standalone SSDT, or merged into a bridge's own `_DSM`.
//! - [`state`]: the guest-visible state for live migration, restored onto a host with other
//!   CPUs or another kernel revision by [`VirtualTph::restore`].
//!
//! ```
//! use tph_client::{Revision, TphDevice};
//! use tph_vmm::{VirtualTph, VmConfig};
//!
//! let host = tph_kernel::Host::with_default_machine(Default::default());
//! let backend = tph_emu::EmulatedBackend::take_over(&host, "02:00.0".parse().unwrap()).unwrap();
//! let dev = TphDevice::with_revision(backend, Revision::V7).unwrap();
//! let cfg = VmConfig::new(2).with_pins(&[(0, 5), (1, 6)]).unwrap();
//! let mut vtph = VirtualTph::new(dev, cfg).unwrap();
//! let cap = vtph.cap_offset();
//! vtph.write_config(cap + 8, &0x101u32.to_le_bytes()); // guest: IV, TPH only
//! vtph.write_config(cap + 0xc, &2u16.to_le_bytes()); // entry 0 = tag of vCPU 1
//! assert_eq!(vtph.guest_table()[0], 2); // the guest reads its own tag back
//! let host_table = vtph.device().backend().device().snapshot().st_table;
//! assert_eq!(host_table[0], 6); // host CPU 6's tag (the default firmware: UID 6 -> tag 6)
//! ```
//!
//! Facts cited as `docs/spec/...` are the project's spec summaries; every design decision is
//! listed in `docs/decisions.md` ("VM layer"), and `docs/vmm-integration.md` shows the calls a
//! VMM makes.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod aml;
mod config;
mod device;
mod error;
pub mod fields;
pub mod ssdt;
pub mod state;
pub mod vtag;

/// The integration guide (`docs/vmm-integration.md`), compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../GUIDE.md")]
mod vmm_integration_guide {}

pub use config::{VirtualCap, VmConfig};
pub use device::{
    ControlChange, Effect, Foreign, HostEntry, HostFailure, MsixWrite, Stats, VirtualTph,
};
pub use error::Error;
