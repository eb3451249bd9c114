//! Safe userspace API for VFIO PCIe TPH, over a real kernel or the emulated kernel model.
//!
//! Layers, top to bottom:
//! - [`TphDevice`]: the revision-neutral safe API (capabilities, enable, disable, tags for CPUs,
//!   program and clear table entries, each one batched call), with errors in user terms
//!   ([`Error`], carrying the kernel's errno). [`steer::QueueSteering`] builds the driver
//!   pattern (bind queues to polling CPUs) on top.
//! - One adapter per kernel revision (private): v7 (`VFIO_DEVICE_PCI_TPH` ops, bytes from
//!   [`abi`]) and the later feature revision (`VFIO_DEVICE_FEATURE_TPH_ST` plus the virtualised
//!   TPH Control register in the config region), chosen by [`probe`].
//! - [`backend::Backend`]: the narrow seam. Real kernels: [`backend::FdBackend`] (any `AsFd`) and
//!   [`backend::VfioBackend`] (opened with [`open`] through `vfio-ioctls`).
//! - [`probe`]: which kernel revision is there, from sysfs file names only.
//! - [`harness`]: runs a child process whose TPH ioctls are trapped with seccomp user
//!   notification and answered by a handler (the kernel model) in the supervisor.
//!
//! `unsafe` lives only in the private `sys` module.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
pub mod backend;
mod device;
pub mod emulated;
mod error;
mod feature;
pub mod harness;
pub mod open;
pub mod probe;
pub mod steer;
mod sys;
mod v7;
pub mod vfio_host;

pub use device::{Capabilities, CpuQuery, MemType, Mode, Steer, TphDevice};
pub use error::{Errno, Error};
pub use probe::{Probe, Revision};
