//! Reference model of the kernel side of VFIO PCIe TPH (v7): emulated PCIe hardware (`hw`),
//! the PCI TPH core (`core`), and the VFIO layer with the `VFIO_DEVICE_PCI_TPH` ioctl (`vfio`).
//!
//! Typical use (what `tphctl session` and the client's emulated backend do):
//!
//! ```
//! use tph_kernel::{Host, HostOptions, vfio::abi};
//! let host = Host::with_default_machine(HostOptions::default());
//! let dev = host.take_over("02:00.0".parse().unwrap()).unwrap();
//! let fd = dev.open().unwrap();
//! let mut arg = abi::encode_op(abi::OP_ENABLE, [abi::MODE_IV, 0, 0, 0, 0, 0, 0, 0]);
//! assert_eq!(fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg), Ok(0));
//! let mut arg = abi::encode_st(abi::OP_SET_ST, &[abi::Entry::new(3, 0, 5)]);
//! assert_eq!(fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg), Ok(0));
//! assert_eq!(dev.snapshot().st_table[5], 3); // CPU 3 -> UID 3 -> 8-bit VM tag 3
//! for access in dev.drain_trace() {
//!     println!("{access}");
//! }
//! fd.close(); // last close: TPH off in hardware
//! assert_eq!(dev.snapshot().control, Some(0));
//! ```
#![forbid(unsafe_code)]

pub mod core;
mod errno;
pub mod host;
pub mod hw;
pub mod machines;
pub mod vfio;

pub use errno::Errno;
pub use host::{Host, HostOptions, RestoreOrder};
pub use vfio::{DeviceFd, TphSnapshot, VfioDevice};
