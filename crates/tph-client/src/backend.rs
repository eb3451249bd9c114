//! The narrow seam below the safe API: what the client needs from a kernel.
//!
//! [`FdBackend`] issues real ioctls on any VFIO device fd it is given (`AsFd`: an owned fd, a
//! `&File`, an `Arc<OwnedFd>`, the [`crate::open::VfioOpened`] handle); with the `vfio-ioctls`
//! feature, `VfioBackend` does the same on a borrowed or shared `vfio_ioctls::VfioDevice`. Both
//! go through the same raw calls (region `pread`/`pwrite`, `VFIO_DEVICE_RESET`), so the same
//! kernel answer gives the same error. The emulated backend (crate `tph-emu`) hands the same
//! bytes to the kernel model in-process. [`Recorder`] talks to no kernel: it records what the
//! client sends and answers from replies queued in advance (unit tests, examples).
//!
//! A backend never owns the driver's interrupt wiring: MSI-X set-up takes the caller's eventfds.

use std::collections::BTreeMap;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};
use std::sync::Mutex;

use tph_abi::vfio::{encode_msix_irq_set_at, IrqInfo, RegionInfo, Request, CONFIG_REGION_INDEX};

use crate::error::Errno;
use crate::sys;

mod recorder;
pub use recorder::{Call, Recorder, Reply};

/// What the client needs from a kernel (real or modelled) for one VFIO device.
///
/// Implement it to put the client over another transport, or as a recording fake in tests:
///
/// ```
/// use std::os::fd::BorrowedFd;
/// use tph_client::backend::Backend;
/// use tph_client::{Errno, Revision, TphDevice};
///
/// /// Refuses everything with ENODEV, as a kernel without the device's TPH capability would.
/// #[derive(Debug)]
/// struct NoTph;
/// impl Backend for NoTph {
///     fn tph_ioctl(&mut self, _: &mut [u8]) -> Result<i32, Errno> { Err(Errno::ENODEV) }
///     fn set_msix(&mut self, _: u32, _: &[BorrowedFd<'_>]) -> Result<(), Errno> { Ok(()) }
///     fn reset(&mut self) -> Result<(), Errno> { Ok(()) }
///     fn read_config(&self, _: u64, _: &mut [u8]) -> Result<(), Errno> { Ok(()) }
///     fn cpu_count(&self) -> Option<u32> { Some(4) }
/// }
/// let mut dev = TphDevice::with_revision(NoTph, Revision::V7).unwrap();
/// assert!(dev.capabilities().unwrap_err().to_string().contains("no usable TPH capability"));
/// ```
pub trait Backend: Send {
    /// Issues `VFIO_DEVICE_PCI_TPH` with `arg` as the argument memory.
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno>;
    /// `VFIO_DEVICE_SET_IRQS` on MSI-X: the caller's `eventfds` trigger vectors
    /// `start..start + eventfds.len()`; no eventfds disables MSI-X. The caller keeps owning them.
    fn set_msix(&mut self, start: u32, eventfds: &[BorrowedFd<'_>]) -> Result<(), Errno>;
    /// Function-level reset (`VFIO_DEVICE_RESET`).
    fn reset(&mut self) -> Result<(), Errno>;
    /// Reads configuration space at `offset` into `buf`.
    fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Number of present CPUs when known (used to explain EINVAL in user terms).
    fn cpu_count(&self) -> Option<u32>;

    /// Issues `VFIO_DEVICE_FEATURE` (the feature revision's TPH calls). The default is a
    /// kernel without that ioctl: ENOTTY.
    fn device_feature(&mut self, _arg: &mut [u8]) -> Result<i32, Errno> {
        Err(Errno(libc::ENOTTY))
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO` for IRQ `index` (the client asks MSI-X's `NORESIZE`). The
    /// default is a backend that cannot ask: ENOTTY (the client then assumes `NORESIZE`).
    fn irq_info(&self, _index: u32) -> Result<IrqInfo, Errno> {
        Err(Errno(libc::ENOTTY))
    }

    /// Writes configuration space at `offset` (the feature revision enables TPH this way). The
    /// default is a backend that cannot: EOPNOTSUPP.
    fn write_config(&mut self, _offset: u64, _data: &[u8]) -> Result<(), Errno> {
        Err(Errno::EOPNOTSUPP)
    }
}

/// A boxed backend is a backend (to choose one at run time).
impl<B: Backend + ?Sized> Backend for Box<B> {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        (**self).tph_ioctl(arg)
    }

    fn set_msix(&mut self, start: u32, eventfds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        (**self).set_msix(start, eventfds)
    }

    fn reset(&mut self) -> Result<(), Errno> {
        (**self).reset()
    }

    fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        (**self).read_config(offset, buf)
    }

    fn cpu_count(&self) -> Option<u32> {
        (**self).cpu_count()
    }

    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        (**self).device_feature(arg)
    }

    fn irq_info(&self, index: u32) -> Result<IrqInfo, Errno> {
        (**self).irq_info(index)
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        (**self).write_config(offset, data)
    }
}

/// A new eventfd, owned by the caller: for programs without an eventfd type of their own that
/// want interrupts for [`crate::TphDevice::enable_msix`] (a driver normally brings its own).
///
/// ```
/// use std::os::fd::AsFd;
/// let irq = tph_client::backend::eventfd().unwrap();
/// let _borrowed = irq.as_fd();
/// ```
pub fn eventfd() -> Result<std::os::fd::OwnedFd, Errno> {
    sys::eventfd()
}

/// The present CPU count from `<sysfs_root>/devices/system/cpu/present` (`0-N` ranges).
pub fn present_cpus(sysfs_root: &std::path::Path) -> Option<u32> {
    let s = std::fs::read_to_string(sysfs_root.join("devices/system/cpu/present")).ok()?;
    let last = s.trim().rsplit([',', '-']).next()?;
    last.parse::<u32>().ok().map(|n| n + 1)
}

/// The raw calls both real backends make on a device fd: one implementation, so the same kernel
/// answer is the same error whichever backend a program uses. A region's offset within the
/// device fd is asked for once (`VFIO_DEVICE_GET_REGION_INFO`) and kept: it does not change
/// while the fd is open.
#[derive(Debug, Default)]
struct RawDevice {
    offsets: Mutex<BTreeMap<u32, u64>>,
}

impl RawDevice {
    fn region_offset(&self, fd: BorrowedFd<'_>, index: u32) -> Result<u64, Errno> {
        let mut offsets = self.offsets.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(off) = offsets.get(&index) {
            return Ok(*off);
        }
        let mut info = RegionInfo::query(index).to_bytes();
        sys::ioctl_buf(fd, Request::DeviceGetRegionInfo, &mut info)?;
        let off = RegionInfo::from_bytes(&info).map_or(0, |i| i.offset);
        offsets.insert(index, off);
        Ok(off)
    }

    fn read_region(
        &self,
        fd: BorrowedFd<'_>,
        index: u32,
        at: u64,
        buf: &mut [u8],
    ) -> Result<(), Errno> {
        let base = self.region_offset(fd, index)?;
        sys::pread_exact(fd, buf, base + at)
    }

    fn write_region(
        &self,
        fd: BorrowedFd<'_>,
        index: u32,
        at: u64,
        data: &[u8],
    ) -> Result<(), Errno> {
        let base = self.region_offset(fd, index)?;
        sys::pwrite_all(fd, data, base + at)
    }

    fn irq_info(fd: BorrowedFd<'_>, index: u32) -> Result<IrqInfo, Errno> {
        let mut info = IrqInfo::query(index).to_bytes();
        sys::ioctl_buf(fd, Request::DeviceGetIrqInfo, &mut info)?;
        IrqInfo::from_bytes(&info).ok_or(Errno(libc::EFAULT))
    }

    fn set_msix(fd: BorrowedFd<'_>, start: u32, eventfds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        let raw: Vec<i32> = eventfds.iter().map(AsRawFd::as_raw_fd).collect();
        let mut arg = encode_msix_irq_set_at(start, &raw);
        sys::ioctl_buf(fd, Request::DeviceSetIrqs, &mut arg).map(|_| ())
    }
}

/// Real kernel backend over any VFIO device fd. It holds `F` (owned, borrowed or shared, as the
/// driver chooses) and gives it back with [`FdBackend::into_inner`].
///
/// ```no_run
/// use tph_client::backend::{Backend, FdBackend};
/// let f = std::fs::File::open("/dev/vfio/devices/vfio0").unwrap();
/// let mut b = FdBackend::new(&f); // the driver keeps `f` for BARs, DMA and interrupts
/// let mut arg = tph_client::abi::encode_get_cap();
/// let _ = b.tph_ioctl(&mut arg);
/// ```
#[derive(Debug)]
pub struct FdBackend<F: AsFd> {
    fd: F,
    raw: RawDevice,
    cpus: Option<u32>,
}

impl<F: AsFd> FdBackend<F> {
    /// Wraps `fd` (a VFIO device fd); the CPU count comes from `/sys`.
    ///
    /// ```
    /// let b = tph_client::backend::FdBackend::new(std::fs::File::open("/dev/null").unwrap());
    /// # let _ = b;
    /// ```
    pub fn new(fd: F) -> Self {
        Self {
            fd,
            raw: RawDevice::default(),
            cpus: present_cpus(std::path::Path::new("/sys")),
        }
    }

    /// Overrides the CPU count used to explain refusals (when the kernel's host is not this one,
    /// as under the syscall-boundary harness).
    ///
    /// ```
    /// use tph_client::backend::{Backend, FdBackend};
    /// let b = FdBackend::new(std::fs::File::open("/dev/null").unwrap()).with_cpu_count(Some(8));
    /// assert_eq!(b.cpu_count(), Some(8));
    /// ```
    pub fn with_cpu_count(mut self, cpus: Option<u32>) -> Self {
        self.cpus = cpus;
        self
    }

    /// The wrapped descriptor.
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    /// The wrapped value, given back.
    pub fn into_inner(self) -> F {
        self.fd
    }

    /// Reads `buf.len()` bytes of VFIO region `index` (a BAR number, or the config region) at
    /// `offset`, with the kernel's errno on refusal.
    pub fn read_region(&self, index: u32, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.raw.read_region(self.fd.as_fd(), index, offset, buf)
    }

    /// Maps VFIO region `index` (a BAR) read-only with `mmap`, as a driver maps its BARs: the
    /// way to read an MSI-X table, which the region's `pread` does not show (vfio-pci reads it
    /// as 0xff bytes). EINVAL when the region cannot be mapped (no `MMAP` flag, size 0).
    pub fn map_region(&self, index: u32) -> Result<RegionMap, Errno> {
        let mut info = RegionInfo::query(index).to_bytes();
        sys::ioctl_buf(self.fd.as_fd(), Request::DeviceGetRegionInfo, &mut info)?;
        let info = RegionInfo::from_bytes(&info).ok_or(Errno::EINVAL)?;
        if info.flags & REGION_INFO_FLAG_MMAP == 0 || info.size == 0 {
            return Err(Errno::EINVAL);
        }
        let len = usize::try_from(info.size).map_err(|_| Errno::EINVAL)?;
        Ok(RegionMap {
            map: sys::SharedMap::new(self.fd.as_fd(), info.offset, len)?,
        })
    }
}

/// `VFIO_REGION_INFO_FLAG_MMAP`.
const REGION_INFO_FLAG_MMAP: u32 = 1 << 2;

/// A VFIO region mapped read-only ([`FdBackend::map_region`]); unmapped when dropped.
#[derive(Debug)]
pub struct RegionMap {
    map: sys::SharedMap,
}

impl RegionMap {
    /// The little-endian dword at byte `offset` of the region; `None` when `offset` is not
    /// 4-aligned or the dword lies beyond the region.
    pub fn read_u32(&self, offset: u64) -> Option<u32> {
        self.map.read_u32(usize::try_from(offset).ok()?)
    }
}

impl<F: AsFd + Send> Backend for FdBackend<F> {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        sys::ioctl_buf(self.fd.as_fd(), Request::DevicePciTph, arg)
    }

    fn set_msix(&mut self, start: u32, eventfds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        RawDevice::set_msix(self.fd.as_fd(), start, eventfds)
    }

    fn irq_info(&self, index: u32) -> Result<IrqInfo, Errno> {
        RawDevice::irq_info(self.fd.as_fd(), index)
    }

    fn reset(&mut self) -> Result<(), Errno> {
        sys::ioctl_none(self.fd.as_fd(), Request::DeviceReset).map(|_| ())
    }

    fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.raw
            .read_region(self.fd.as_fd(), CONFIG_REGION_INDEX, offset, buf)
    }

    fn cpu_count(&self) -> Option<u32> {
        self.cpus
    }

    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        sys::ioctl_buf(self.fd.as_fd(), Request::DeviceFeature, arg)
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.raw
            .write_region(self.fd.as_fd(), CONFIG_REGION_INDEX, offset, data)
    }
}

#[cfg(feature = "vfio-ioctls")]
pub use vfio_dev::VfioBackend;

#[cfg(feature = "vfio-ioctls")]
mod vfio_dev {
    use std::borrow::Borrow;
    use std::os::fd::BorrowedFd;

    use super::{present_cpus, Backend, RawDevice};
    use crate::error::Errno;
    use crate::sys;
    use tph_abi::vfio::{Request, CONFIG_REGION_INDEX};

    /// Real kernel backend over a `vfio_ioctls::VfioDevice` the program (a rust-vmm VMM) already
    /// opened: `&VfioDevice`, `Arc<VfioDevice>` or an owned one. The same raw calls as
    /// [`super::FdBackend`] on the device's fd, so errors are the kernel's own (the
    /// `vfio-ioctls` helpers for reset and region access return `()` and would hide them).
    pub struct VfioBackend<D: Borrow<vfio_ioctls::VfioDevice>> {
        dev: D,
        raw: RawDevice,
        cpus: Option<u32>,
    }

    impl<D: Borrow<vfio_ioctls::VfioDevice>> std::fmt::Debug for VfioBackend<D> {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("VfioBackend")
                .field("cpus", &self.cpus)
                .finish()
        }
    }

    impl<D: Borrow<vfio_ioctls::VfioDevice>> VfioBackend<D> {
        /// Wraps the device (borrowed or shared); the CPU count comes from `/sys`.
        pub fn new(dev: D) -> Self {
            Self {
                dev,
                raw: RawDevice::default(),
                cpus: present_cpus(std::path::Path::new("/sys")),
            }
        }

        /// The wrapped device, given back.
        pub fn into_inner(self) -> D {
            self.dev
        }

        fn fd(&self) -> BorrowedFd<'_> {
            sys::vfio_device_fd(self.dev.borrow())
        }
    }

    impl<D: Borrow<vfio_ioctls::VfioDevice> + Send> Backend for VfioBackend<D> {
        fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
            sys::ioctl_buf(self.fd(), Request::DevicePciTph, arg)
        }

        fn set_msix(&mut self, start: u32, eventfds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
            RawDevice::set_msix(self.fd(), start, eventfds)
        }

        fn irq_info(&self, index: u32) -> Result<tph_abi::vfio::IrqInfo, Errno> {
            RawDevice::irq_info(self.fd(), index)
        }

        fn reset(&mut self) -> Result<(), Errno> {
            sys::ioctl_none(self.fd(), Request::DeviceReset).map(|_| ())
        }

        fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
            self.raw
                .read_region(self.fd(), CONFIG_REGION_INDEX, offset, buf)
        }

        fn cpu_count(&self) -> Option<u32> {
            self.cpus
        }

        fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
            sys::ioctl_buf(self.fd(), Request::DeviceFeature, arg)
        }

        fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
            self.raw
                .write_region(self.fd(), CONFIG_REGION_INDEX, offset, data)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;

    #[test]
    fn fd_backend_on_non_vfio_fd_reports_enotty() {
        let f = File::open("/dev/null").unwrap();
        let mut b = FdBackend::new(&f);
        let mut arg = tph_abi::encode_get_cap();
        assert_eq!(b.tph_ioctl(&mut arg), Err(Errno(libc::ENOTTY)));
        assert_eq!(b.reset(), Err(Errno(libc::ENOTTY)));
        let mut buf = [0u8; 4];
        assert_eq!(b.read_config(0, &mut buf), Err(Errno(libc::ENOTTY)));
    }

    #[test]
    fn fd_backend_gives_the_fd_back() {
        let f = File::open("/dev/null").unwrap();
        let raw = f.as_raw_fd();
        let b = FdBackend::new(f);
        assert_eq!(b.into_inner().as_raw_fd(), raw);
    }

    #[test]
    fn fd_backend_refuses_oversized_argsz_with_efault() {
        let f = File::open("/dev/null").unwrap();
        let mut b = FdBackend::new(&f);
        let mut arg = [17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(b.tph_ioctl(&mut arg), Err(Errno(libc::EFAULT)));
    }

    #[test]
    fn backends_are_send() {
        fn send<T: Send>() {}
        send::<FdBackend<File>>();
        send::<FdBackend<&File>>();
        send::<Box<dyn Backend>>();
    }
}
