//! Run a real, unmodified program against the emulated kernel (what `tphctl emulate` does): its
//! VFIO calls cross the real syscall boundary and are answered by the kernel model
//! (`tph-kernel`) in this process.
//!
//! - [`harness`]: a child process whose chosen ioctls (and whole syscalls) are trapped with
//!   seccomp user notification and answered by an [`harness::IoctlHandler`] in this process.
//! - [`model::ModelHandler`]: answers a driver's TPH, MSI-X, reset and config-region calls with
//!   one open fd of the model.
//! - [`vfio_host`]: a whole VFIO host (the legacy and cdev opening sequences, region and IRQ
//!   info, BARs, DMA mapping) over a fake `/sys` and `/dev` bind-mounted in the child's private
//!   mount namespace.
//! - [`emulate`]: any program run against an emulated host, every TPH function bound to
//!   vfio-pci (`tphctl emulate`).
//!
//! `unsafe` lives only in the private `sys` module (seccomp, fd passing, pre-exec set-up).
//!
//! Not to be confused with `tph-emu`, which puts the model in-process behind `tph-client`'s
//! backend seam: this crate runs a separate program that opens `/dev/vfio` as it would on a
//! real machine. Linked by `tphctl` (for `tphctl emulate`) and by the tests of `tph-client`.
//! A driver never links it: it is a way to run one.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod emulate;
mod error;
pub mod harness;
pub mod model;
mod sys;
pub mod vfio_host;

pub use error::Error;
