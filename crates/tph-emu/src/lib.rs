//! The emulated backend: the kernel model (`tph-kernel`) in-process behind the client's
//! [`Backend`] seam, fed the same bytes a real kernel gets. For programs (tests, tools, demos)
//! that want TPH without VFIO hardware; a driver on real hardware links `tph-client` alone.
//!
//! ```
//! use tph_emu::EmulatedBackend;
//! use tph_client::{Mode, Revision, Steer, TphDevice};
//! use tph_kernel::{Host, HostOptions};
//!
//! let host = Host::with_default_machine(HostOptions::default());
//! let bdf = "02:00.0".parse().unwrap(); // NIC with its table in the TPH capability
//! let backend = EmulatedBackend::take_over(&host, bdf).unwrap();
//! let mut dev = TphDevice::with_revision(backend, Revision::V7).unwrap();
//! let caps = dev.capabilities().unwrap();
//! assert_eq!((caps.iv, caps.ds, caps.st_table_size), (true, false, 16));
//! dev.enable(Mode::Iv).unwrap();
//! dev.set_entries(&[Steer::new(0, 3)]).unwrap();
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

use std::os::fd::{AsRawFd, BorrowedFd};

use tph_kernel::vfio::{DeviceFd, VfioDevice};
use tph_kernel::Host;
use tph_regs::machine::Bdf;

use tph_client::abi;
use tph_client::backend::Backend;
use tph_client::{Errno, Error};

/// One taken-over device of an emulated host, with an open fd (see the module example).
#[derive(Debug)]
pub struct EmulatedBackend {
    device: VfioDevice,
    fd: Option<DeviceFd>,
}

impl EmulatedBackend {
    /// Lets vfio-pci take over `bdf` on `host` and opens it.
    ///
    /// ```
    /// # use tph_emu::EmulatedBackend;
    /// let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let b = EmulatedBackend::take_over(&host, "01:00.0".parse().unwrap()).unwrap();
    /// assert_eq!(b.device().open_count(), 1);
    /// ```
    pub fn take_over(host: &Host, bdf: Bdf) -> Result<Self, Error> {
        let device = host.take_over(bdf).map_err(|e| Error::Backend {
            op: "taking over the device",
            errno: e,
        })?;
        Self::open(device)
    }

    /// Opens an already taken-over device.
    ///
    /// ```
    /// # use tph_emu::EmulatedBackend;
    /// let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let device = host.take_over("01:00.0".parse().unwrap()).unwrap();
    /// let b = EmulatedBackend::open(device.clone()).unwrap();
    /// assert_eq!(device.open_count(), 1);
    /// # drop(b);
    /// ```
    pub fn open(device: VfioDevice) -> Result<Self, Error> {
        let fd = device.open().map_err(|e| Error::Backend {
            op: "opening the device",
            errno: e,
        })?;
        Ok(Self {
            device,
            fd: Some(fd),
        })
    }

    /// The model's device (snapshots, traces, fault injection).
    ///
    /// ```
    /// # use tph_emu::EmulatedBackend;
    /// # let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let b = EmulatedBackend::take_over(&host, "02:00.0".parse().unwrap()).unwrap();
    /// assert_eq!(b.device().snapshot().st_table.len(), 16);
    /// ```
    pub fn device(&self) -> &VfioDevice {
        &self.device
    }

    /// The open fd of the model.
    ///
    /// ```
    /// # use tph_emu::EmulatedBackend;
    /// # let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let b = EmulatedBackend::take_over(&host, "02:00.0".parse().unwrap()).unwrap();
    /// assert!(b.fd().is_some());
    /// ```
    pub fn fd(&self) -> Option<&DeviceFd> {
        self.fd.as_ref()
    }

    /// Closes the fd (the last close turns TPH off) and opens the device again.
    ///
    /// ```
    /// # use tph_emu::EmulatedBackend;
    /// # use tph_client::{Mode, Revision, TphDevice};
    /// # let host = tph_kernel::Host::with_default_machine(Default::default());
    /// # let b = EmulatedBackend::take_over(&host, "02:00.0".parse().unwrap()).unwrap();
    /// let mut dev = TphDevice::with_revision(b, Revision::V7).unwrap();
    /// dev.enable(Mode::Iv).unwrap();
    /// dev.backend_mut().reopen().unwrap();
    /// assert_eq!(dev.backend().device().snapshot().control, Some(0));
    /// ```
    pub fn reopen(&mut self) -> Result<(), Errno> {
        if let Some(fd) = self.fd.take() {
            fd.close();
        }
        self.fd = Some(self.device.open()?);
        Ok(())
    }

    fn open_fd(&self) -> Result<&DeviceFd, Errno> {
        self.fd.as_ref().ok_or(Errno::EBADF)
    }
}

impl Backend for EmulatedBackend {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.open_fd()?.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, arg)
    }

    /// The model's `VFIO_DEVICE_SET_IRQS` for vectors `start..start + n` (mainline: in place
    /// when MSI-X is on; the model records the eventfd numbers but delivers no interrupt); no
    /// eventfds is `DATA_NONE` with count 0 (disables MSI-X; EINVAL when it is off).
    fn set_msix(&mut self, start: u32, eventfds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        let fds: Vec<i32> = eventfds.iter().map(AsRawFd::as_raw_fd).collect();
        self.open_fd()?
            .set_irqs_eventfds(tph_client::abi::vfio::MSIX_IRQ_INDEX, start, &fds)
    }

    /// The model's `VFIO_DEVICE_GET_IRQ_INFO` (MSI-X `NORESIZE` per the host's
    /// `MsixAlloc`).
    fn irq_info(&self, index: u32) -> Result<tph_client::abi::vfio::IrqInfo, Errno> {
        let info = self.open_fd()?.irq_info(index)?;
        Ok(tph_client::abi::vfio::IrqInfo {
            flags: info.flags,
            count: info.count,
            ..tph_client::abi::vfio::IrqInfo::query(index)
        })
    }

    fn reset(&mut self) -> Result<(), Errno> {
        self.open_fd()?.reset()
    }

    fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.open_fd()?.config_read(offset, buf)
    }

    fn cpu_count(&self) -> Option<u32> {
        Some(self.device.cpu_count())
    }

    /// `VFIO_DEVICE_FEATURE` on the model: answered on a `KernelAbi::Feature` host, ENOTTY on a
    /// v7 host.
    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.open_fd()?.ioctl_bytes(abi::VFIO_DEVICE_FEATURE, arg)
    }

    /// A config-region write on the model (the feature revision enables TPH this way; a v7
    /// host drops it).
    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.open_fd()?.config_write(offset, data)
    }
}
