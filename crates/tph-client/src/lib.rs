//! Safe userspace API for VFIO PCIe TPH, for drivers and VMMs on real kernels.
//!
//! Layers, top to bottom:
//! - [`TphDevice`]: the revision-neutral safe API (capabilities, enable, disable, tags for CPUs,
//!   program and clear table entries, each batched and all or nothing: see
//!   [`TphDevice::set_entries`] for the calls per revision), with errors in user terms
//!   ([`Error`], carrying the kernel's errno). [`steer::QueueSteering`] builds the driver
//!   pattern (bind queues to polling CPUs) on top.
//! - One adapter per kernel revision (private): v7 (`VFIO_DEVICE_PCI_TPH` ops) and the later
//!   feature revision (`VFIO_DEVICE_FEATURE_TPH_ST` plus the virtualised TPH Control register in
//!   the config region, enabled by writing the ST Mode Select value alone and disabled by
//!   writing 0, as the series author's userspace does; the contested feature number is
//!   overridable with [`TphDevice::with_feature_number`] and confirmed with
//!   `VFIO_DEVICE_FEATURE_PROBE` before use), chosen by [`probe`]; both speak the bytes defined
//!   once in [`abi`] (the `tph-abi` crate).
//! - [`backend::Backend`]: the narrow seam. Real kernels: [`backend::FdBackend`] over any
//!   device fd the driver owns, borrows or shares (for example the [`open::VfioOpened`] handle
//!   [`open::open_vfio`] returns), and with the `vfio-ioctls` feature `backend::VfioBackend`
//!   over a rust-vmm `VfioDevice`. The emulated kernel is a separate crate (`tph-emu`).
//! - [`probe`]: which kernel revision is there, from sysfs file names only.
//!
//! The client never owns the driver's device or interrupts: backends hold what the driver
//! gives them and give it back, and MSI-X set-up takes the driver's own eventfds.
//!
//! ```
//! use std::os::fd::AsFd;
//! use tph_client::backend::FdBackend;
//! use tph_client::{Mode, Probe, Steer, TphDevice};
//!
//! /// `device`: the VFIO device fd the driver opened and keeps (`open::open_vfio`, feature
//! /// `open`, is one way to open it).
//! fn steer_entry_0_to_cpu_3(device: impl AsFd + Send) -> Result<(), tph_client::Error> {
//!     let mut tph = TphDevice::with_probe(FdBackend::new(device), &Probe::default())?;
//!     tph.enable(Mode::Iv)?;
//!     tph.set_entries(&[Steer::new(0, 3)])
//! }
//! ```
//!
//! `unsafe` lives only in the private `sys` module. Facts the code cites (`docs/spec/...`) are
//! the project's spec summaries in the repository's `docs/spec/` folder.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub use tph_abi as abi;

pub mod backend;
mod device;
mod error;
mod feature;
#[cfg(feature = "open")]
pub mod open;
pub mod probe;
pub mod steer;
mod sys;
mod v7;

pub use device::{Capabilities, CpuQuery, MemType, Mode, Steer, TphDevice};
pub use error::{Errno, Error};
pub use probe::{Probe, Revision};
pub use tph_regs::machine::Bdf;
