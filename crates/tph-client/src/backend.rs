//! The narrow seam below the safe API: what the client needs from a kernel.
//!
//! [`FdBackend`] issues real ioctls on any VFIO device fd (`AsFd`); [`VfioBackend`] does the same on
//! a device opened through `vfio-ioctls` and uses its MSI-X and reset plumbing; the emulated
//! backend (`crate::emulated`) hands the same bytes to the kernel model in-process.

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};
use std::os::unix::fs::FileExt;

use vmm_sys_util::eventfd::EventFd;

use crate::abi;
use crate::error::Errno;
use crate::sys;

/// `VFIO_PCI_CONFIG_REGION_INDEX`.
pub const CONFIG_REGION_INDEX: u32 = 7;
/// `VFIO_PCI_MSIX_IRQ_INDEX`.
pub const MSIX_IRQ_INDEX: u32 = 2;
/// `VFIO_DEVICE_GET_REGION_INFO` = `_IO(';', 100 + 8)`.
pub const VFIO_DEVICE_GET_REGION_INFO: u32 = abi::io(abi::VFIO_TYPE, abi::VFIO_BASE + 8);
/// `VFIO_IRQ_SET_DATA_NONE`.
pub const IRQ_SET_DATA_NONE: u32 = 1 << 0;
/// `VFIO_IRQ_SET_DATA_EVENTFD`.
pub const IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
/// `VFIO_IRQ_SET_ACTION_TRIGGER`.
pub const IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
/// Size of `struct vfio_irq_set` without its data.
pub const IRQ_SET_HEADER_SIZE: usize = 20;

/// What the client needs from a kernel (real or modelled) for one VFIO device.
///
/// Implement it to put the client over another transport, or as a recording fake in tests:
///
/// ```
/// use tph_client::backend::Backend;
/// use tph_client::{Errno, Revision, TphDevice};
///
/// /// Refuses everything with ENODEV, as a kernel without the device's TPH capability would.
/// #[derive(Debug)]
/// struct NoTph;
/// impl Backend for NoTph {
///     fn tph_ioctl(&mut self, _: &mut [u8]) -> Result<i32, Errno> { Err(Errno::ENODEV) }
///     fn set_msix(&mut self, _: u32) -> Result<(), Errno> { Ok(()) }
///     fn reset(&mut self) -> Result<(), Errno> { Ok(()) }
///     fn read_config(&mut self, _: u64, _: &mut [u8]) -> Result<(), Errno> { Ok(()) }
///     fn cpu_count(&self) -> Option<u32> { Some(4) }
/// }
/// let mut dev = TphDevice::with_revision(NoTph, Revision::V7).unwrap();
/// assert!(dev.capabilities().unwrap_err().to_string().contains("no usable TPH capability"));
/// ```
pub trait Backend {
    /// Issues `VFIO_DEVICE_PCI_TPH` with `arg` as the argument memory.
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno>;
    /// Enables MSI-X vectors `0..count` (as `VFIO_DEVICE_SET_IRQS`); 0 disables MSI-X.
    fn set_msix(&mut self, count: u32) -> Result<(), Errno>;
    /// Function-level reset (`VFIO_DEVICE_RESET`).
    fn reset(&mut self) -> Result<(), Errno>;
    /// Reads configuration space at `offset` into `buf`.
    fn read_config(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Errno>;
    /// Number of present CPUs when known (used to explain EINVAL in user terms).
    fn cpu_count(&self) -> Option<u32>;

    /// Issues `VFIO_DEVICE_FEATURE` (the feature revision's TPH calls). The default is a
    /// kernel without that ioctl: ENOTTY.
    fn device_feature(&mut self, _arg: &mut [u8]) -> Result<i32, Errno> {
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

    fn set_msix(&mut self, count: u32) -> Result<(), Errno> {
        (**self).set_msix(count)
    }

    fn reset(&mut self) -> Result<(), Errno> {
        (**self).reset()
    }

    fn read_config(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        (**self).read_config(offset, buf)
    }

    fn cpu_count(&self) -> Option<u32> {
        (**self).cpu_count()
    }

    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        (**self).device_feature(arg)
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        (**self).write_config(offset, data)
    }
}

/// `struct vfio_irq_set` for MSI-X: eventfd triggers for vectors `0..fds.len()`, or disable.
///
/// ```
/// let b = tph_client::backend::encode_msix_irq_set(&[]);
/// assert_eq!(b.len(), 20);
/// ```
pub fn encode_msix_irq_set(fds: &[i32]) -> Vec<u8> {
    let argsz = IRQ_SET_HEADER_SIZE + 4 * fds.len();
    let flags = if fds.is_empty() {
        IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER
    } else {
        IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER
    };
    let count = u32::try_from(fds.len()).unwrap_or(u32::MAX);
    let mut b = Vec::with_capacity(argsz);
    for v in [argsz as u32, flags, MSIX_IRQ_INDEX, 0, count] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    for fd in fds {
        b.extend_from_slice(&fd.to_le_bytes());
    }
    b
}

/// Reads `count` from an encoded `vfio_irq_set` when it targets MSI-X (0 when it disables).
///
/// ```
/// let b = tph_client::backend::encode_msix_irq_set(&[5, 6, 7]);
/// assert_eq!(tph_client::backend::decode_msix_irq_count(&b), Some(3));
/// ```
pub fn decode_msix_irq_count(b: &[u8]) -> Option<u32> {
    let word = |i: usize| {
        b.get(i * 4..i * 4 + 4)
            .and_then(|s| <[u8; 4]>::try_from(s).ok())
            .map(u32::from_le_bytes)
    };
    let (flags, index, count) = (word(1)?, word(2)?, word(4)?);
    if index != MSIX_IRQ_INDEX {
        return None;
    }
    Some(if flags & IRQ_SET_DATA_NONE != 0 {
        0
    } else {
        count
    })
}

/// The real backends never let the kernel touch memory past `arg`: a v7 kernel reads the 8-byte
/// head, then at most `argsz` bytes (it checks `argsz` before reading entries), so a buffer
/// shorter than 8 bytes or an `argsz` beyond the buffer is refused here with EFAULT, the errno
/// the kernel would give for memory that is not there.
fn check_arg(arg: &[u8]) -> Result<(), Errno> {
    let head = arg.get(0..4).and_then(|h| <[u8; 4]>::try_from(h).ok());
    match head.map(u32::from_le_bytes) {
        Some(argsz) if arg.len() >= 8 && argsz as usize <= arg.len() => Ok(()),
        _ => Err(Errno(libc::EFAULT)),
    }
}

fn present_cpus(sysfs_root: &std::path::Path) -> Option<u32> {
    let s = std::fs::read_to_string(sysfs_root.join("devices/system/cpu/present")).ok()?;
    let last = s.trim().rsplit([',', '-']).next()?;
    last.parse::<u32>().ok().map(|n| n + 1)
}

/// Real kernel backend over any VFIO device fd.
///
/// ```no_run
/// use tph_client::backend::{Backend, FdBackend};
/// let f = std::fs::File::open("/dev/vfio/devices/vfio0").unwrap();
/// let mut b = FdBackend::new(f);
/// let mut arg = tph_client::abi::encode_get_cap();
/// let _ = b.tph_ioctl(&mut arg);
/// ```
#[derive(Debug)]
pub struct FdBackend<F: AsFd> {
    fd: F,
    eventfds: Vec<EventFd>,
    config_offset: Option<u64>,
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
            eventfds: Vec::new(),
            config_offset: None,
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
    ///
    /// ```
    /// use std::os::fd::AsRawFd;
    /// let b = tph_client::backend::FdBackend::new(std::fs::File::open("/dev/null").unwrap());
    /// assert!(b.fd().as_raw_fd() >= 0);
    /// ```
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }

    fn config_region_offset(&mut self) -> Result<u64, Errno> {
        if let Some(off) = self.config_offset {
            return Ok(off);
        }
        // struct vfio_region_info: argsz, flags, index, cap_offset (u32), size, offset (u64).
        let mut info = [0u8; 32];
        info[0..4].copy_from_slice(&32u32.to_le_bytes());
        info[8..12].copy_from_slice(&CONFIG_REGION_INDEX.to_le_bytes());
        sys::ioctl_with_buf(self.fd.as_fd(), VFIO_DEVICE_GET_REGION_INFO, &mut info)?;
        let mut off = [0u8; 8];
        off.copy_from_slice(&info[24..32]);
        let off = u64::from_le_bytes(off);
        self.config_offset = Some(off);
        Ok(off)
    }
}

impl<F: AsFd> Backend for FdBackend<F> {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        check_arg(arg)?;
        sys::ioctl_with_buf(self.fd.as_fd(), abi::VFIO_DEVICE_PCI_TPH, arg)
    }

    fn set_msix(&mut self, count: u32) -> Result<(), Errno> {
        let fds = (0..count)
            .map(|_| EventFd::new(libc::EFD_CLOEXEC).map_err(|e| Errno::from_io(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        let raw: Vec<i32> = fds.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
        let mut arg = encode_msix_irq_set(&raw);
        sys::ioctl_with_buf(self.fd.as_fd(), abi::VFIO_DEVICE_SET_IRQS, &mut arg)?;
        self.eventfds = fds;
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Errno> {
        sys::ioctl_no_arg(self.fd.as_fd(), abi::VFIO_DEVICE_RESET).map(|_| ())
    }

    fn read_config(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let base = self.config_region_offset()?;
        let file = File::from(
            self.fd
                .as_fd()
                .try_clone_to_owned()
                .map_err(|e| Errno::from_io(&e))?,
        );
        file.read_exact_at(buf, base + offset)
            .map_err(|e| Errno::from_io(&e))
    }

    fn cpu_count(&self) -> Option<u32> {
        self.cpus
    }

    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        check_arg(arg)?;
        sys::ioctl_with_buf(self.fd.as_fd(), abi::VFIO_DEVICE_FEATURE, arg)
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let base = self.config_region_offset()?;
        let owned = self.fd.as_fd().try_clone_to_owned();
        let file = File::from(owned.map_err(|e| Errno::from_io(&e))?);
        file.write_all_at(data, base + offset)
            .map_err(|e| Errno::from_io(&e))
    }
}

/// `vfio-ioctls` reports a failed `VFIO_DEVICE_SET_IRQS` as a bare variant without the errno, right
/// after the ioctl returns; the thread's errno still holds the kernel's answer then.
fn irq_errno(e: vfio_ioctls::VfioError) -> Errno {
    let os = std::io::Error::last_os_error();
    match os.raw_os_error() {
        Some(n) if n != 0 => Errno(n),
        _ => Errno::from_io(&std::io::Error::other(e)),
    }
}

/// Real kernel backend over a device opened with `vfio-ioctls` (device cdev with iommufd, or the
/// legacy group/container: see [`crate::open`]).
///
/// ```no_run
/// use tph_client::open::{open_vfio, VfioPaths};
/// use tph_client::{Probe, TphDevice};
/// let backend = open_vfio("0000:01:00.0", &VfioPaths::default()).unwrap();
/// let mut dev = TphDevice::open(backend, &Probe::default()).unwrap();
/// println!("{:?}", dev.capabilities());
/// ```
pub struct VfioBackend {
    dev: vfio_ioctls::VfioDevice,
    eventfds: Vec<EventFd>,
    cpus: Option<u32>,
}

impl std::fmt::Debug for VfioBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VfioBackend")
            .field("msix", &self.eventfds.len())
            .finish()
    }
}

impl VfioBackend {
    /// Wraps an opened `vfio_ioctls::VfioDevice`.
    ///
    /// ```no_run
    /// use std::sync::Arc;
    /// let container = Arc::new(vfio_ioctls::VfioContainer::new(None).unwrap());
    /// let path = std::path::Path::new("/sys/bus/pci/devices/0000:01:00.0");
    /// let dev = vfio_ioctls::VfioDevice::new(path, container, false).unwrap();
    /// let backend = tph_client::backend::VfioBackend::new(dev);
    /// # let _ = backend;
    /// ```
    pub fn new(dev: vfio_ioctls::VfioDevice) -> Self {
        Self {
            dev,
            eventfds: Vec::new(),
            cpus: present_cpus(std::path::Path::new("/sys")),
        }
    }
}

impl VfioBackend {
    /// Reads `buf.len()` bytes of VFIO region `index` (a BAR number, or
    /// [`CONFIG_REGION_INDEX`]) at `offset`, as `vfio-ioctls` does it.
    ///
    /// ```no_run
    /// # use tph_client::open::{open_vfio, VfioPaths};
    /// let mut b = open_vfio("0000:01:00.0", &VfioPaths::default()).unwrap();
    /// let mut id = [0u8; 4];
    /// b.read_region(tph_client::backend::CONFIG_REGION_INDEX, 0, &mut id);
    /// ```
    pub fn read_region(&mut self, index: u32, offset: u64, buf: &mut [u8]) {
        self.dev.region_read(index, buf, offset);
    }
}

impl Backend for VfioBackend {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        check_arg(arg)?;
        sys::ioctl_with_buf(sys::borrow_owned(&self.dev), abi::VFIO_DEVICE_PCI_TPH, arg)
    }

    fn set_msix(&mut self, count: u32) -> Result<(), Errno> {
        if count == 0 {
            self.eventfds.clear();
            return self.dev.disable_msix().map_err(irq_errno);
        }
        let fds = (0..count)
            .map(|_| EventFd::new(libc::EFD_CLOEXEC).map_err(|e| Errno::from_io(&e)))
            .collect::<Result<Vec<_>, _>>()?;
        self.dev
            .enable_msix(fds.iter().collect())
            .map_err(irq_errno)?;
        self.eventfds = fds;
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Errno> {
        self.dev.reset();
        Ok(())
    }

    fn read_config(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.dev.region_read(CONFIG_REGION_INDEX, buf, offset);
        Ok(())
    }

    fn cpu_count(&self) -> Option<u32> {
        self.cpus
    }

    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        check_arg(arg)?;
        sys::ioctl_with_buf(sys::borrow_owned(&self.dev), abi::VFIO_DEVICE_FEATURE, arg)
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.dev.region_write(CONFIG_REGION_INDEX, data, offset);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn irq_set_layout_is_vfio_irq_set() {
        let b = encode_msix_irq_set(&[10, 11]);
        assert_eq!(b.len(), 28);
        assert_eq!(&b[0..4], &28u32.to_le_bytes());
        assert_eq!(
            &b[4..8],
            &(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER).to_le_bytes()
        );
        assert_eq!(&b[8..12], &2u32.to_le_bytes());
        assert_eq!(&b[16..20], &2u32.to_le_bytes());
        assert_eq!(&b[20..24], &10i32.to_le_bytes());
    }

    #[test]
    fn irq_set_empty_decodes_as_disable() {
        assert_eq!(decode_msix_irq_count(&encode_msix_irq_set(&[])), Some(0));
    }

    #[test]
    fn check_arg_refuses_argsz_beyond_buffer() {
        assert_eq!(
            check_arg(&[17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(Errno(libc::EFAULT))
        );
        assert_eq!(check_arg(&[4, 0, 0, 0]), Err(Errno(libc::EFAULT)));
        assert_eq!(check_arg(&[8, 0, 0, 0, 0, 0, 0, 0]), Ok(()));
    }

    #[test]
    fn fd_backend_on_non_vfio_fd_reports_enotty() {
        let f = File::open("/dev/null").unwrap();
        let mut b = FdBackend::new(f);
        let mut arg = abi::encode_get_cap();
        assert_eq!(b.tph_ioctl(&mut arg), Err(Errno(libc::ENOTTY)));
    }
}
