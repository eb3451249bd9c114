//! Reference model of the kernel side of VFIO PCIe TPH (v7): emulated PCIe hardware (`hw`),
//! the PCI TPH core (`core`), and the VFIO layer with the `VFIO_DEVICE_PCI_TPH` ioctl (`vfio`),
//! or, per host, the later feature revision (`VFIO_DEVICE_FEATURE_TPH_ST` plus a virtualised
//! TPH Control register in the config region; see [`KernelAbi`]).
//!
//! Linked by `tph-emu` (the client's emulated backend), the test kit and `tphctl`; a driver on
//! real hardware never links it. Rules cite the spec summaries in the repository's `docs/spec/`
//! (`vfio-tph-v7.md`, `pci-tph-core.md`, `later-revisions.md`).
//!
//! # API map
//!
//! - Host: [`Host::with_default_machine`] (the built-in [`machines::default_machine`]) or
//!   [`Host::new`] with a `tph_regs::machine::Machine` read from a dump; [`HostOptions`]: `cpus`
//!   (`nr_cpu_ids`), `cpu_uids`, `offline`, `notph` (`pci=notph`), `unsafe_ds`
//!   (`enable_unsafe_tph_ds_mode`), `firmware` (any `Arc<dyn SteeringTagSource>`; default the
//!   documented `TableSource::default_for_all`; per host bridge through
//!   `SteeringTagSource::st_info_at`), `restore_order` ([`RestoreOrder`], mainline's by
//!   default), `locking` ([`Locking`]: everything serialised by default, or as v7 was posted),
//!   `abi` ([`KernelAbi`]: `V7`, the default, or `Feature`, the later `VFIO_DEVICE_FEATURE`
//!   revision).
//! - [`Host::take_over`] gives a [`VfioDevice`] (vfio-pci bound; TPH Control cleared).
//!   [`VfioDevice::open`] gives a [`DeviceFd`]; the first open resets the function (when it has
//!   a [`ResetMethod`]); closing or dropping the last one turns TPH off, releases MSI-X, resets
//!   the function and restores the open-time state, as mainline vfio-pci does.
//! - On a [`DeviceFd`]: [`DeviceFd::ioctl`] (caller memory through [`vfio::UserMemory`]),
//!   [`DeviceFd::ioctl_bytes`] (in-process buffer), [`DeviceFd::set_irqs`] /
//!   [`DeviceFd::set_irqs_block`] (`VFIO_DEVICE_SET_IRQS` for MSI-X: `start`, in place),
//!   [`DeviceFd::reset`], [`DeviceFd::config_read`], [`DeviceFd::config_write`] (on a
//!   `KernelAbi::Feature` host, writing the ST Mode Select value to TPH Control enables TPH,
//!   0 disables), [`DeviceFd::msix_mmap_read`] / [`DeviceFd::msix_mmap_write`] (a userspace
//!   mapping of the MSI-X table).
//! - Inspection on a [`VfioDevice`]: [`VfioDevice::snapshot`] (raw Control, raw 16-bit ST
//!   entries from the capability or the MSI-X table), [`VfioDevice::drain_trace`] (each
//!   [`hw::Access`] has a `Display`), [`VfioDevice::violations`],
//!   [`VfioDevice::inject_write_failure`], [`VfioDevice::reset_method`],
//!   [`VfioDevice::set_interleave_hook`] (run another operation where the posted kernel's locks
//!   allow it, see [`Interleave`]).
//! - Errors are [`Errno`] (`number()`, `name()`); ABI constants and encoders in [`vfio::abi`].
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
//! let mut arg = abi::encode_st_raw(abi::OP_SET_ST, &[abi::TphEntry::new(3, 0, 5)]);
//! assert_eq!(fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg), Ok(0));
//! assert_eq!(dev.snapshot().st_table[5], 3); // CPU 3 -> UID 3 -> 8-bit VM tag 3
//! for access in dev.drain_trace() {
//!     println!("{access}");
//! }
//! fd.close(); // last close: TPH off in hardware
//! assert_eq!(dev.snapshot().control, Some(0));
//! ```
//!
//! The same on a feature-revision host (with `enable_unsafe_tph`, which gates the whole
//! feature): enable by writing the ST Mode Select value alone to TPH Control (capability +
//! 0x8) through the config region, program entries with `VFIO_DEVICE_FEATURE_TPH_ST`:
//!
//! ```
//! use tph_kernel::{Host, HostOptions, KernelAbi, vfio::abi};
//! let opts = HostOptions::new().with_abi(KernelAbi::Feature).with_unsafe_ds(true);
//! let host = Host::with_default_machine(opts);
//! let dev = host.take_over("02:00.0".parse().unwrap()).unwrap();
//! let fd = dev.open().unwrap();
//! fd.config_write(0x108, &1u32.to_le_bytes()).unwrap(); // IV; the kernel picks the type
//! assert_eq!(dev.snapshot().control, Some(0x101)); // the root port completes TPH only
//! let mut arg = abi::encode_feature_st(abi::FEATURE_SET, 0, 5, &[3]);
//! assert_eq!(fd.ioctl_bytes(abi::VFIO_DEVICE_FEATURE, &mut arg), Ok(0));
//! assert_eq!(dev.snapshot().st_table[5], 3);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod core;
mod errno;
pub mod host;
pub mod hw;
pub mod machines;
pub mod vfio;

pub use errno::Errno;
pub use host::{Host, HostOptions, KernelAbi, Locking, MsixAlloc, RestoreOrder};
pub use vfio::{DeviceFd, Interleave, ResetMethod, TphSnapshot, VfioDevice};
