//! The emulated backend: the kernel model (`tph-kernel`) in-process, fed the same bytes a real
//! kernel gets; and [`ModelHandler`], which answers a supervised child's trapped ioctls with it.
//!
//! ```
//! use tph_client::emulated::EmulatedBackend;
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
//! dev.set_entries(&[Steer { index: 0, cpu: 3, mem: Default::default() }]).unwrap();
//! ```

use tph_kernel::vfio::{DeviceFd, Fault, UserMemory, VfioDevice};
use tph_kernel::Host;
use tph_regs::machine::Bdf;

use crate::abi;
use crate::backend::{
    decode_msix_irq_count, Backend, CONFIG_REGION_INDEX, VFIO_DEVICE_GET_REGION_INFO,
};
use crate::error::{Errno, Error};
use crate::harness::{ChildMemory, IoctlHandler, Reply, Sandbox, Trapped};

/// The requests a feature-revision client makes on its device fd: the feature ioctl, MSI-X
/// set-up, reset, and the config region's offset (`VFIO_DEVICE_GET_REGION_INFO`).
pub const TRAPPED_FEATURE_REQUESTS: [u32; 4] = [
    abi::VFIO_DEVICE_FEATURE,
    abi::VFIO_DEVICE_SET_IRQS,
    abi::VFIO_DEVICE_RESET,
    VFIO_DEVICE_GET_REGION_INFO,
];

/// Region offsets within the device fd: index << 40, as vfio-pci does.
const REGION_SHIFT: u32 = 40;
/// Size of the config region.
const CONFIG_REGION_SIZE: u64 = 4096;
/// `VFIO_REGION_INFO_FLAG_READ | WRITE`.
const REGION_RW: u32 = 0b11;

fn errno(e: tph_kernel::Errno) -> Errno {
    Errno(e.number())
}

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
    /// # use tph_client::emulated::EmulatedBackend;
    /// let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let b = EmulatedBackend::take_over(&host, "01:00.0".parse().unwrap()).unwrap();
    /// assert_eq!(b.device().open_count(), 1);
    /// ```
    pub fn take_over(host: &Host, bdf: Bdf) -> Result<Self, Error> {
        let device = host.take_over(bdf).map_err(|e| Error::Backend {
            op: "taking over the device",
            errno: errno(e),
        })?;
        Self::open(device)
    }

    /// Opens an already taken-over device.
    ///
    /// ```
    /// # use tph_client::emulated::EmulatedBackend;
    /// let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let device = host.take_over("01:00.0".parse().unwrap()).unwrap();
    /// let b = EmulatedBackend::open(device.clone()).unwrap();
    /// assert_eq!(device.open_count(), 1);
    /// # drop(b);
    /// ```
    pub fn open(device: VfioDevice) -> Result<Self, Error> {
        let fd = device.open().map_err(|e| Error::Backend {
            op: "opening the device",
            errno: errno(e),
        })?;
        Ok(Self {
            device,
            fd: Some(fd),
        })
    }

    /// The model's device (snapshots, traces, fault injection).
    ///
    /// ```
    /// # use tph_client::emulated::EmulatedBackend;
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
    /// # use tph_client::emulated::EmulatedBackend;
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
    /// # use tph_client::emulated::EmulatedBackend;
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
        self.fd = Some(self.device.open().map_err(errno)?);
        Ok(())
    }

    fn open_fd(&self) -> Result<&DeviceFd, Errno> {
        self.fd.as_ref().ok_or(Errno(libc::EBADF))
    }
}

impl Backend for EmulatedBackend {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.open_fd()?
            .ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, arg)
            .map_err(errno)
    }

    fn set_msix(&mut self, count: u32) -> Result<(), Errno> {
        self.open_fd()?.set_irqs(count).map_err(errno)
    }

    fn reset(&mut self) -> Result<(), Errno> {
        self.open_fd()?.reset().map_err(errno)
    }

    fn read_config(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.open_fd()?.config_read(offset, buf).map_err(errno)
    }

    fn cpu_count(&self) -> Option<u32> {
        Some(self.device.cpu_count())
    }

    /// `VFIO_DEVICE_FEATURE` on the model: answered on a `KernelAbi::Feature` host, ENOTTY on a
    /// v7 host.
    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.open_fd()?
            .ioctl_bytes(abi::VFIO_DEVICE_FEATURE, arg)
            .map_err(errno)
    }

    /// A config-region write on the model (the feature revision enables TPH this way; a v7
    /// host drops it).
    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.open_fd()?.config_write(offset, data).map_err(errno)
    }
}

/// The supervised child's memory as the model's `UserMemory`.
struct Remote<'a>(&'a ChildMemory);

impl UserMemory for Remote<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.0.read(addr, buf).map_err(|_| Fault { addr })
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        self.0.write(addr, data).map_err(|_| Fault { addr })
    }
}

/// Answers a supervised child's VFIO ioctls with one open fd of the kernel model: the TPH ioctl
/// of the host's revision (v7 `VFIO_DEVICE_PCI_TPH` or `VFIO_DEVICE_FEATURE`; argument read
/// and written in the child's memory), `VFIO_DEVICE_SET_IRQS` for MSI-X, `VFIO_DEVICE_RESET`,
/// and, for a feature-revision client, the config region (`VFIO_DEVICE_GET_REGION_INFO`, then
/// `pread64` / `pwrite64` trapped with [`ModelHandler::config_region_sandbox`]). The child's fd
/// number is not checked: one child drives one device.
///
/// ```no_run
/// use std::time::Duration;
/// use tph_client::emulated::ModelHandler;
/// use tph_client::harness::{supervise, TRAPPED_REQUESTS};
/// let host = tph_kernel::Host::with_default_machine(Default::default());
/// let device = host.take_over("02:00.0".parse().unwrap()).unwrap();
/// let mut handler = ModelHandler::new(device.open().unwrap());
/// let child = std::process::Command::new("./my-driver"); // issues real TPH ioctls
/// let out = supervise(child, &TRAPPED_REQUESTS, &mut handler, Duration::from_secs(30)).unwrap();
/// println!("{} calls answered; registers now {:?}", out.answered, device.snapshot());
/// ```
#[derive(Debug)]
pub struct ModelHandler {
    fd: DeviceFd,
    /// The child asked where the config region is: from then on its `pread64` / `pwrite64` at
    /// the region's offsets are config accesses (on any fd: `FdBackend` reads through a
    /// duplicate of the device fd, and one child drives one device).
    region_known: bool,
}

impl ModelHandler {
    /// Answers with `fd`.
    ///
    /// ```
    /// let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let device = host.take_over("02:00.0".parse().unwrap()).unwrap();
    /// let handler = tph_client::emulated::ModelHandler::new(device.open().unwrap());
    /// assert_eq!(handler.fd().device().open_count(), 1);
    /// ```
    pub fn new(fd: DeviceFd) -> Self {
        Self {
            fd,
            region_known: false,
        }
    }

    /// What a supervised feature-revision client needs trapped besides
    /// [`TRAPPED_FEATURE_REQUESTS`]: `pread64` and `pwrite64` (config region accesses; calls on
    /// other fds run in the kernel as usual).
    ///
    /// ```
    /// let s = tph_client::emulated::ModelHandler::config_region_sandbox();
    /// assert_eq!(s.syscalls, [libc::SYS_pread64, libc::SYS_pwrite64]);
    /// ```
    pub fn config_region_sandbox() -> Sandbox {
        Sandbox {
            syscalls: vec![libc::SYS_pread64, libc::SYS_pwrite64],
            ..Sandbox::default()
        }
    }

    /// The model fd (to inspect the device after the child ran; see [`ModelHandler::new`]).
    pub fn fd(&self) -> &DeviceFd {
        &self.fd
    }

    fn set_irqs(&self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut head = [0u8; crate::backend::IRQ_SET_HEADER_SIZE];
        mem.read(call.arg, &mut head)?;
        let count = decode_msix_irq_count(&head).ok_or(Errno(libc::EINVAL))?;
        self.fd.set_irqs(count).map_err(errno).map(|()| 0)
    }
}

impl ModelHandler {
    /// `VFIO_DEVICE_GET_REGION_INFO` for the config region (the only region the model serves):
    /// readable and writable, 4 KiB at offset `7 << 40`. Other regions: EINVAL.
    fn region_info(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut info = [0u8; 32];
        mem.read(call.arg, &mut info)?;
        if info.get(8..12) != Some(&CONFIG_REGION_INDEX.to_le_bytes()[..]) {
            return Err(Errno(libc::EINVAL));
        }
        let offset = u64::from(CONFIG_REGION_INDEX) << REGION_SHIFT;
        info[4..8].copy_from_slice(&REGION_RW.to_le_bytes());
        info[16..24].copy_from_slice(&CONFIG_REGION_SIZE.to_le_bytes());
        info[24..32].copy_from_slice(&offset.to_le_bytes());
        mem.write(call.arg, &info)?;
        self.region_known = true;
        Ok(0)
    }

    /// The config-region offset of a `pread64` / `pwrite64`, if it is a config access.
    fn config_offset(&self, call: &Trapped) -> Option<u64> {
        let at = call.args[3].checked_sub(u64::from(CONFIG_REGION_INDEX) << REGION_SHIFT)?;
        (self.region_known && at < CONFIG_REGION_SIZE).then_some(at)
    }

    /// `pread64` / `pwrite64` of `len` bytes at config offset `at`, buffer in the child.
    fn config_access(&self, call: &Trapped, mem: &ChildMemory, at: u64) -> Reply {
        let (buf, len) = (call.args[1], call.args[2]);
        let mut data = vec![0u8; usize::try_from(len).map_or(0, |l| l.min(4096))];
        let r = if call.nr == libc::SYS_pwrite64 {
            mem.read(buf, &mut data)
                .and_then(|()| self.fd.config_write(at, &data).map_err(errno))
        } else {
            self.fd
                .config_read(at, &mut data)
                .map_err(errno)
                .and_then(|()| mem.write(buf, &data))
        };
        match r {
            Ok(()) => Reply::Value(data.len() as i64),
            Err(e) => Reply::Fail(e),
        }
    }
}

impl IoctlHandler for ModelHandler {
    fn handle(&mut self, call: &Trapped, mem: &ChildMemory) -> Reply {
        match call.nr {
            libc::SYS_ioctl if call.request == VFIO_DEVICE_GET_REGION_INFO => {
                Reply::from(self.region_info(call, mem))
            }
            libc::SYS_ioctl => Reply::from(self.ioctl(call, mem)),
            libc::SYS_pread64 | libc::SYS_pwrite64 => match self.config_offset(call) {
                Some(at) => self.config_access(call, mem, at),
                None => Reply::Continue,
            },
            _ => Reply::Continue,
        }
    }

    fn ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        match call.request {
            abi::VFIO_DEVICE_SET_IRQS => self.set_irqs(call, mem),
            request => self
                .fd
                .ioctl(request, call.arg, &mut Remote(mem))
                .map_err(errno),
        }
    }
}
