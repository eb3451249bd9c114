//! [`ModelHandler`]: answers a supervised child's trapped TPH, MSI-X, reset and config-region
//! calls with one open fd of the kernel model (`tph-kernel`).

use tph_client::abi;
use tph_client::abi::vfio::{Request, CONFIG_REGION_INDEX};
use tph_client::Errno;
use tph_kernel::vfio::{DeviceFd, EventfdCheck, Fault, UserMemory};

use crate::harness::{ChildMemory, IoctlHandler, Reply, Sandbox, Trapped};

const VFIO_DEVICE_GET_REGION_INFO: u32 = Request::DeviceGetRegionInfo.number();

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

/// The supervised child's memory as the model's `UserMemory`.
struct Remote<'a>(&'a ChildMemory);

impl UserMemory for Remote<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        self.0.read(addr, buf).map_err(|_| Fault::new(addr))
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        self.0.write(addr, data).map_err(|_| Fault::new(addr))
    }
}

/// Answers a supervised child's VFIO ioctls with one open fd of the kernel model: the TPH ioctl
/// of the host's revision (v7 `VFIO_DEVICE_PCI_TPH` or `VFIO_DEVICE_FEATURE`; argument read
/// and written in the child's memory), `VFIO_DEVICE_SET_IRQS` (every index; the child's
/// eventfds resolved and signalled), `VFIO_DEVICE_GET_IRQ_INFO`, `VFIO_DEVICE_RESET`,
/// and, for a feature-revision client, the config region (`VFIO_DEVICE_GET_REGION_INFO`, then
/// `pread64` / `pwrite64` trapped with [`ModelHandler::config_region_sandbox`]). The child's fd
/// number is not checked: one child drives one device.
///
/// ```no_run
/// use std::time::Duration;
/// use tph_emulate::model::ModelHandler;
/// use tph_emulate::harness::{supervise, TRAPPED_REQUESTS};
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
    /// let handler = tph_emulate::model::ModelHandler::new(device.open().unwrap());
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
    /// let s = tph_emulate::model::ModelHandler::config_region_sandbox();
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

    /// `VFIO_DEVICE_SET_IRQS`, every index, answered by the model with the child's eventfds
    /// resolved as the kernel resolves them; the loopback signals it sends reach the child's
    /// eventfds.
    fn set_irqs(&self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let fds = ChildEventfds { pid: call.pid };
        let r = self.fd.ioctl_with_eventfds(
            abi::VFIO_DEVICE_SET_IRQS,
            call.arg,
            &mut Remote(mem),
            &fds,
        );
        for signal in self.fd.device().drain_irq_signals() {
            // A closed eventfd cannot be signalled; the kernel would hold its own reference.
            let _ = crate::sys::signal_child_eventfd(call.pid, signal.fd);
        }
        r
    }
}

/// The supervised child's fds as `eventfd_ctx_fdget` sees them: EBADF when the fd is not open,
/// EINVAL when it is not an eventfd.
struct ChildEventfds {
    pid: u32,
}

impl EventfdCheck for ChildEventfds {
    fn check(&self, fd: i32) -> Result<(), Errno> {
        match std::fs::read_link(format!("/proc/{}/fd/{fd}", self.pid)) {
            Err(_) => Err(Errno::EBADF),
            Ok(target) if target.as_os_str() == "anon_inode:[eventfd]" => Ok(()),
            Ok(_) => Err(Errno::EINVAL),
        }
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
                .and_then(|()| self.fd.config_write(at, &data))
        } else {
            self.fd
                .config_read(at, &mut data)
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
            request => self.fd.ioctl(request, call.arg, &mut Remote(mem)),
        }
    }
}
