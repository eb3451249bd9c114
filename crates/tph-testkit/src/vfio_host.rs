//! A whole VFIO host for a supervised, unmodified program: the ioctls that `vfio-ioctls` issues
//! while opening a device (legacy container/group, or the device cdev bound to an iommufd), the
//! device's region reads, and the TPH/MSI-X/reset calls, all answered by the kernel model
//! (`tph-kernel`).
//!
//! With [`FakeVfioTree`] (a `/sys` and `/dev` bind-mounted in the child's private mount
//! namespace: vfio-pci's module parameter, the device bound to vfio-pci in IOMMU group 7,
//! `/dev/vfio/vfio` and `/dev/vfio/7`; with [`FakeVfioTree::create_cdev`] also the device's
//! `vfio-dev/vfio0` entry, `/dev/vfio/devices/vfio0` and `/dev/iommu`), a program such as
//! `tphctl session --vfio BDF` runs its real-device path end to end, every VFIO call crossing
//! the real syscall boundary.
//!
//! On the cdev path the device fd is the child's own open of `/dev/vfio/devices/vfio0` (a plain
//! file in the fake tree): the host adopts it as the device when the child binds it to the
//! iommufd (`VFIO_DEVICE_BIND_IOMMUFD`), as the kernel grants access to the device only then.
//!
//! ```no_run
//! use std::time::Duration;
//! use tph_testkit::harness::{supervise_in, Sandbox};
//! use tph_testkit::vfio_host::{FakeVfioTree, VfioHostHandler, TRAPPED_VFIO_REQUESTS};
//!
//! let host = tph_kernel::Host::with_default_machine(Default::default());
//! let bdf: tph_regs::machine::Bdf = "02:00.0".parse().unwrap();
//! let tree = FakeVfioTree::create(std::env::temp_dir().join("fake-vfio"), bdf, 8).unwrap();
//! let mut handler = VfioHostHandler::new(host.take_over(bdf).unwrap(), bdf).unwrap();
//! let sandbox = Sandbox { stdin: Some("script.txt".into()), ..tree.sandbox() };
//! let mut cmd = std::process::Command::new("tphctl");
//! cmd.args(["session", "--vfio", "02:00.0"]);
//! let out = supervise_in(cmd, &TRAPPED_VFIO_REQUESTS, &sandbox, &mut handler, Duration::from_secs(30)).unwrap();
//! print!("{}", out.stdout);
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};

use tph_kernel::vfio::{DeviceFd, VfioDevice};
use tph_regs::machine::Bdf;
use tph_regs::msix::MsixCap;

use tph_client::abi::vfio::Request;
use tph_client::Errno;

use crate::harness::{ChildMemory, IoctlHandler, Reply, Sandbox, Trapped};
use crate::model::ModelHandler;
use crate::Error;

const GET_API_VERSION: u32 = Request::GetApiVersion.number();
const CHECK_EXTENSION: u32 = Request::CheckExtension.number();
const SET_IOMMU: u32 = Request::SetIommu.number();
const GROUP_GET_STATUS: u32 = Request::GroupGetStatus.number();
const GROUP_SET_CONTAINER: u32 = Request::GroupSetContainer.number();
const GROUP_UNSET_CONTAINER: u32 = Request::GroupUnsetContainer.number();
const GROUP_GET_DEVICE_FD: u32 = Request::GroupGetDeviceFd.number();
const DEVICE_GET_INFO: u32 = Request::DeviceGetInfo.number();
const DEVICE_GET_REGION_INFO: u32 = Request::DeviceGetRegionInfo.number();
const DEVICE_GET_IRQ_INFO: u32 = Request::DeviceGetIrqInfo.number();
const DEVICE_BIND_IOMMUFD: u32 = Request::DeviceBindIommufd.number();
const DEVICE_ATTACH_IOMMUFD_PT: u32 = Request::DeviceAttachIommufdPt.number();
const DEVICE_DETACH_IOMMUFD_PT: u32 = Request::DeviceDetachIommufdPt.number();
const IOMMU_DESTROY: u32 = Request::IommuDestroy.number();
const IOMMU_IOAS_ALLOC: u32 = Request::IommuIoasAlloc.number();

/// Every VFIO ioctl the host answers (container, group, cdev and iommufd, device, TPH of either
/// revision).
pub const TRAPPED_VFIO_REQUESTS: [u32; 19] = [
    GET_API_VERSION,
    CHECK_EXTENSION,
    SET_IOMMU,
    GROUP_GET_STATUS,
    GROUP_SET_CONTAINER,
    GROUP_UNSET_CONTAINER,
    GROUP_GET_DEVICE_FD,
    DEVICE_GET_INFO,
    DEVICE_GET_REGION_INFO,
    DEVICE_GET_IRQ_INFO,
    DEVICE_BIND_IOMMUFD,
    DEVICE_ATTACH_IOMMUFD_PT,
    DEVICE_DETACH_IOMMUFD_PT,
    IOMMU_DESTROY,
    IOMMU_IOAS_ALLOC,
    tph_client::abi::VFIO_DEVICE_SET_IRQS,
    tph_client::abi::VFIO_DEVICE_RESET,
    tph_client::abi::VFIO_DEVICE_PCI_TPH,
    tph_client::abi::VFIO_DEVICE_FEATURE,
];

/// `VFIO_TYPE1_IOMMU` and `VFIO_TYPE1v2_IOMMU`.
const TYPE1: [u64; 2] = [1, 3];
/// `VFIO_GROUP_FLAGS_VIABLE`.
const GROUP_VIABLE: u32 = 1;
/// `VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI`.
const DEVICE_FLAGS: u32 = 0b11;
/// Regions: BAR0..5, ROM, config, VGA (`VFIO_PCI_NUM_REGIONS`).
const NUM_REGIONS: u32 = 9;
/// IRQ indexes: INTx, MSI, MSI-X, ERR, REQ (`VFIO_PCI_NUM_IRQS`).
const NUM_IRQS: u32 = 5;
const CONFIG_REGION: u32 = 7;
const VGA_REGION: u32 = 8;
/// `VFIO_REGION_INFO_FLAG_READ | WRITE`.
const REGION_RW: u32 = 0b11;
/// `VFIO_IRQ_INFO_EVENTFD`.
const IRQ_EVENTFD: u32 = 1;
/// Region offsets within the device fd: index << 40, as vfio-pci does.
const REGION_SHIFT: u32 = 40;
/// The IOMMU group the fake tree puts the device in.
pub const GROUP: u32 = 7;
/// The device cdev [`FakeVfioTree::create_cdev`] offers (`/dev/vfio/devices/vfio0`).
pub const CDEV: &str = "vfio0";
/// The id the host gives the one IOAS a child allocates; the bound device gets [`DEV_ID`].
const IOAS_ID: u32 = 1;
const DEV_ID: u32 = 1;

fn le32(b: &[u8], at: usize) -> u32 {
    b.get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_le_bytes)
}

/// Answers every VFIO call of one supervised program with one device of the kernel model.
#[derive(Debug)]
pub struct VfioHostHandler {
    device: VfioDevice,
    bdf: Bdf,
    model: Option<ModelHandler>,
    device_fd: Option<i32>,
    opens: u32,
    iommufd: Iommufd,
}

/// What the child did with iommufd: the fd it allocated its IOAS on, whether that IOAS is live,
/// whether the device is attached to it, how many times it bound the device cdev.
#[derive(Debug, Default)]
struct Iommufd {
    fd: Option<i32>,
    ioas: bool,
    attached: bool,
    binds: u32,
}

impl VfioHostHandler {
    /// Serves `device` (already taken over by vfio-pci in the model) under the name `bdf`.
    ///
    /// ```
    /// let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let bdf = "02:00.0".parse().unwrap();
    /// let h = tph_testkit::vfio_host::VfioHostHandler::new(host.take_over(bdf).unwrap(), bdf).unwrap();
    /// assert_eq!((h.device_fd(), h.opens()), (None, 0)); // nobody opened it yet
    /// ```
    pub fn new(device: VfioDevice, bdf: Bdf) -> Result<Self, Error> {
        Ok(Self {
            device,
            bdf,
            model: None,
            device_fd: None,
            opens: 0,
            iommufd: Iommufd::default(),
        })
    }

    /// The child's fd number for the device while it has it open.
    pub fn device_fd(&self) -> Option<i32> {
        self.device_fd
    }

    /// How many times the child obtained the device (`VFIO_GROUP_GET_DEVICE_FD`, or a cdev bound
    /// with `VFIO_DEVICE_BIND_IOMMUFD`).
    pub fn opens(&self) -> u32 {
        self.opens
    }

    /// How many of those opens went through the device cdev and iommufd.
    ///
    /// ```
    /// let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let bdf = "02:00.0".parse().unwrap();
    /// let h = tph_testkit::vfio_host::VfioHostHandler::new(host.take_over(bdf).unwrap(), bdf).unwrap();
    /// assert_eq!(h.cdev_binds(), 0);
    /// ```
    pub fn cdev_binds(&self) -> u32 {
        self.iommufd.binds
    }

    /// The model device (snapshots, traces).
    pub fn device(&self) -> &VfioDevice {
        &self.device
    }

    fn open_device(&mut self, call: &Trapped, mem: &ChildMemory) -> Reply {
        let mut name = [0u8; 32];
        let got = (1..=name.len())
            .rev()
            .find(|&n| mem.read(call.arg, &mut name[..n]).is_ok());
        let name = name[..got.unwrap_or(0)]
            .split(|&b| b == 0)
            .next()
            .unwrap_or(&[]);
        if name != self.bdf.to_string().as_bytes() {
            return Reply::Fail(Errno::EINVAL);
        }
        let fd: Result<DeviceFd, _> = self.device.open();
        let null = File::open("/dev/null");
        match (fd, null) {
            (Ok(fd), Ok(null)) => {
                self.model = Some(ModelHandler::new(fd));
                Reply::Fd(null.into())
            }
            _ => Reply::Fail(Errno(libc::EBUSY)),
        }
    }

    /// `IOMMU_IOAS_ALLOC` on the child's `/dev/iommu` fd: one IOAS at a time.
    fn ioas_alloc(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        if self.iommufd.ioas {
            return Err(Errno(libc::ENOSPC)); // the fake serves one IOAS
        }
        mem.write(call.arg + 8, &IOAS_ID.to_le_bytes())?;
        self.iommufd = Iommufd {
            fd: Some(call.fd),
            ioas: true,
            ..std::mem::take(&mut self.iommufd)
        };
        Ok(0)
    }

    /// `IOMMU_DESTROY` of the IOAS.
    fn destroy(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut arg = [0u8; 8];
        mem.read(call.arg, &mut arg)?;
        if Some(call.fd) != self.iommufd.fd || !self.iommufd.ioas || le32(&arg, 4) != IOAS_ID {
            return Err(Errno(libc::ENOENT));
        }
        self.iommufd.ioas = false;
        Ok(0)
    }

    /// `VFIO_DEVICE_BIND_IOMMUFD` on the child's cdev fd: the device is now open through it.
    fn bind(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut arg = [0u8; 16];
        mem.read(call.arg, &mut arg)?;
        let iommufd = le32(&arg, 8) as i32;
        if le32(&arg, 0) < 16 || le32(&arg, 4) != 0 || Some(iommufd) != self.iommufd.fd {
            return Err(Errno::EINVAL);
        }
        if self.device_fd.is_some() {
            return Err(Errno(libc::EBUSY)); // one open of the device at a time
        }
        let fd = self.device.open().map_err(|_| Errno(libc::EBUSY))?;
        mem.write(call.arg + 12, &DEV_ID.to_le_bytes())?;
        self.model = Some(ModelHandler::new(fd));
        self.device_fd = Some(call.fd);
        self.opens += 1;
        self.iommufd.binds += 1;
        Ok(0)
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` / `DETACH`: only on the bound device, only to the IOAS.
    fn attach(&mut self, call: &Trapped, mem: &ChildMemory, attach: bool) -> Result<i32, Errno> {
        if Some(call.fd) != self.device_fd || self.iommufd.binds == 0 {
            return Err(Errno::EINVAL);
        }
        if attach {
            let mut arg = [0u8; 12];
            mem.read(call.arg, &mut arg)?;
            if !self.iommufd.ioas || le32(&arg, 8) != IOAS_ID {
                return Err(Errno(libc::ENOENT));
            }
        }
        self.iommufd.attached = attach;
        Ok(0)
    }

    fn iommufd_ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Option<Result<i32, Errno>> {
        Some(match call.request {
            IOMMU_IOAS_ALLOC => self.ioas_alloc(call, mem),
            IOMMU_DESTROY => self.destroy(call, mem),
            DEVICE_BIND_IOMMUFD => self.bind(call, mem),
            DEVICE_ATTACH_IOMMUFD_PT => self.attach(call, mem, true),
            DEVICE_DETACH_IOMMUFD_PT => self.attach(call, mem, false),
            _ => return None,
        })
    }

    fn region_info(&self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut info = [0u8; 32];
        mem.read(call.arg, &mut info)?;
        let index = le32(&info, 8);
        if index == VGA_REGION || index >= NUM_REGIONS {
            return Err(Errno::EINVAL);
        }
        let size = self.region_size(index);
        info[4..8].copy_from_slice(&REGION_RW.to_le_bytes());
        info[12..16].copy_from_slice(&0u32.to_le_bytes());
        info[16..24].copy_from_slice(&size.to_le_bytes());
        info[24..32].copy_from_slice(&(u64::from(index) << REGION_SHIFT).to_le_bytes());
        mem.write(call.arg, &info).map(|()| 0)
    }

    fn msix_cap(&self) -> Option<MsixCap> {
        self.device
            .with_hardware(|f| MsixCap::find(f.config_bytes()))
    }

    fn region_size(&self, index: u32) -> u64 {
        match (index, self.msix_cap()) {
            (CONFIG_REGION, _) => 4096,
            (i, Some(m)) if i == u32::from(m.table_bir) => {
                (u64::from(m.table_offset) + 16 * u64::from(m.table_size)).next_power_of_two()
            }
            _ => 0,
        }
    }

    fn irq_info(&self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut info = [0u8; 16];
        mem.read(call.arg, &mut info)?;
        let count = match le32(&info, 8) {
            2 => self.msix_cap().map_or(0, |m| u32::from(m.table_size)),
            1 => 0,
            i if i < NUM_IRQS => 1,
            _ => return Err(Errno::EINVAL),
        };
        info[4..8].copy_from_slice(&IRQ_EVENTFD.to_le_bytes());
        info[12..16].copy_from_slice(&count.to_le_bytes());
        mem.write(call.arg, &info).map(|()| 0)
    }

    fn simple_ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        if let Some(r) = self.iommufd_ioctl(call, mem) {
            return r;
        }
        match call.request {
            GET_API_VERSION | SET_IOMMU | GROUP_SET_CONTAINER | GROUP_UNSET_CONTAINER => Ok(0),
            CHECK_EXTENSION => Ok(i32::from(TYPE1.contains(&call.arg))),
            GROUP_GET_STATUS => mem
                .write(call.arg + 4, &GROUP_VIABLE.to_le_bytes())
                .map(|()| 0),
            DEVICE_GET_INFO => {
                let info = [DEVICE_FLAGS, NUM_REGIONS, NUM_IRQS];
                let bytes: Vec<u8> = info.iter().flat_map(|v| v.to_le_bytes()).collect();
                mem.write(call.arg + 4, &bytes).map(|()| 0)
            }
            DEVICE_GET_REGION_INFO => self.region_info(call, mem),
            DEVICE_GET_IRQ_INFO => self.irq_info(call, mem),
            _ => match self.model.as_mut() {
                Some(model) => model.ioctl(call, mem),
                None => Err(Errno(libc::ENOTTY)),
            },
        }
    }

    /// `pread64(device_fd, buf, len, offset)`: config space or the MSI-X table from the model.
    fn pread(&self, call: &Trapped, mem: &ChildMemory) -> Reply {
        let (buf, len, off) = (call.args[1], call.args[2], call.args[3]);
        let (index, at) = (
            (off >> REGION_SHIFT) as u32,
            off & ((1 << REGION_SHIFT) - 1),
        );
        let mut data = vec![0u8; usize::try_from(len).unwrap_or(0).min(4096)];
        let read = match index {
            CONFIG_REGION => self.read_config(at, &mut data),
            i => self.read_bar(i, at, &mut data),
        };
        match read.and_then(|()| mem.write(buf, &data)) {
            Ok(()) => Reply::Value(data.len() as i64),
            Err(e) => Reply::Fail(e),
        }
    }

    /// `pwrite64(device_fd, buf, len, offset)`: config space writes go to the model (the
    /// feature revision enables TPH this way); other regions are not served: EINVAL.
    fn pwrite(&self, call: &Trapped, mem: &ChildMemory) -> Reply {
        let (buf, len, off) = (call.args[1], call.args[2], call.args[3]);
        let (index, at) = (
            (off >> REGION_SHIFT) as u32,
            off & ((1 << REGION_SHIFT) - 1),
        );
        let mut data = vec![0u8; usize::try_from(len).unwrap_or(0).min(4096)];
        let written = mem.read(buf, &mut data).and_then(|()| match index {
            CONFIG_REGION => {
                let fd = self.model.as_ref().ok_or(Errno::EBADF)?.fd();
                fd.config_write(at, &data).map_err(|e| Errno(e.number()))
            }
            _ => Err(Errno::EINVAL),
        });
        match written {
            Ok(()) => Reply::Value(data.len() as i64),
            Err(e) => Reply::Fail(e),
        }
    }

    fn read_config(&self, at: u64, data: &mut [u8]) -> Result<(), Errno> {
        let fd = self.model.as_ref().ok_or(Errno::EBADF)?.fd();
        fd.config_read(at, data).map_err(|e| Errno(e.number()))
    }

    fn read_bar(&self, index: u32, at: u64, data: &mut [u8]) -> Result<(), Errno> {
        let m = self
            .msix_cap()
            .filter(|m| u32::from(m.table_bir) == index)
            .ok_or(Errno::EINVAL)?;
        let start = at
            .checked_sub(u64::from(m.table_offset))
            .ok_or(Errno::EINVAL)?;
        self.device.with_hardware(|f| {
            for (i, chunk) in data.chunks_mut(4).enumerate() {
                let byte = start + 4 * i as u64;
                let v = f.msix_read((byte / 16) as u16, (byte % 16) as u8);
                chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
            }
        });
        Ok(())
    }
}

impl IoctlHandler for VfioHostHandler {
    fn ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        self.simple_ioctl(call, mem)
    }

    fn handle(&mut self, call: &Trapped, mem: &ChildMemory) -> Reply {
        match call.nr {
            libc::SYS_ioctl if call.request == GROUP_GET_DEVICE_FD => self.open_device(call, mem),
            libc::SYS_ioctl => Reply::from(self.simple_ioctl(call, mem)),
            libc::SYS_pread64 if Some(call.fd) == self.device_fd => self.pread(call, mem),
            libc::SYS_pwrite64 if Some(call.fd) == self.device_fd => self.pwrite(call, mem),
            libc::SYS_close if Some(call.fd) == self.device_fd => {
                // The program closes the device: release the model's fd (its last close turns
                // TPH off), then let the kernel close the child's placeholder fd.
                self.model = None;
                self.device_fd = None;
                self.iommufd.attached = false;
                Reply::Continue
            }
            libc::SYS_close if Some(call.fd) == self.iommufd.fd => {
                // The last close of an iommufd destroys what was allocated in it.
                self.iommufd.fd = None;
                self.iommufd.ioas = false;
                Reply::Continue
            }
            _ => Reply::Continue,
        }
    }

    fn fd_installed(&mut self, child_fd: i32) {
        self.opens += 1;
        self.device_fd = Some(child_fd);
    }
}

/// A fake `/sys` and `/dev` for one VFIO device, to bind-mount in a supervised child.
#[derive(Debug)]
pub struct FakeVfioTree {
    root: PathBuf,
}

fn symlink(target: &str, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

impl FakeVfioTree {
    /// Creates the trees under `root`, which must not exist yet (it is removed again when the
    /// tree is dropped, so a caller's folder is never taken): vfio-pci loaded with the v7
    /// module parameter, `bdf` bound to vfio-pci in IOMMU group [`GROUP`], CPUs `0..cpus`
    /// present, and the VFIO nodes.
    ///
    /// ```
    /// use tph_testkit::vfio_host::FakeVfioTree;
    /// let root = std::env::temp_dir().join(format!("fake-vfio-doc-{}", std::process::id()));
    /// let tree = FakeVfioTree::create(&root, "01:00.0".parse().unwrap(), 8).unwrap();
    /// assert!(root.join("sys/bus/pci/devices/0000:01:00.0/driver").exists());
    /// assert_eq!(tree.sandbox().binds.len(), 2);
    /// ```
    pub fn create(root: impl Into<PathBuf>, bdf: Bdf, cpus: u32) -> Result<Self, Error> {
        let root = root.into();
        let io = |source| Error::Tree {
            path: root.clone(),
            source,
        };
        if root.exists() {
            return Err(io(std::io::Error::from(std::io::ErrorKind::AlreadyExists)));
        }
        std::fs::create_dir_all(&root).map_err(io)?;
        let tree = Self { root: root.clone() }; // from here, dropped on any error
        let sys = root.join("sys");
        let dev = sys.join("bus/pci/devices").join(bdf.to_string());
        for d in [
            &dev,
            &sys.join("bus/pci/drivers/vfio-pci"),
            &sys.join("kernel/iommu_groups/7"),
        ] {
            std::fs::create_dir_all(d).map_err(io)?;
        }
        symlink("../../../../bus/pci/drivers/vfio-pci", &dev.join("driver")).map_err(io)?;
        symlink(
            "../../../../kernel/iommu_groups/7",
            &dev.join("iommu_group"),
        )
        .map_err(io)?;
        let params = sys.join("module/vfio_pci/parameters");
        std::fs::create_dir_all(&params).map_err(io)?;
        std::fs::write(params.join(tph_client::probe::V7_PARAM), "N\n").map_err(io)?;
        std::fs::create_dir_all(sys.join("devices/system/cpu")).map_err(io)?;
        let present = format!("0-{}\n", cpus.saturating_sub(1));
        std::fs::write(sys.join("devices/system/cpu/present"), present).map_err(io)?;
        std::fs::create_dir_all(root.join("dev/vfio")).map_err(io)?;
        for node in ["vfio", "7"] {
            std::fs::write(root.join("dev/vfio").join(node), b"").map_err(io)?;
        }
        Ok(tree)
    }

    /// [`FakeVfioTree::create`], and the kernel also offers the device cdev: the device's
    /// `vfio-dev/`[`CDEV`] entry, `/dev/vfio/devices/`[`CDEV`] and `/dev/iommu`, so an opener
    /// that prefers the cdev takes it.
    ///
    /// ```
    /// use tph_testkit::vfio_host::FakeVfioTree;
    /// let root = std::env::temp_dir().join(format!("fake-vfio-cdev-doc-{}", std::process::id()));
    /// let _tree = FakeVfioTree::create_cdev(&root, "01:00.0".parse().unwrap(), 8).unwrap();
    /// assert!(root.join("sys/bus/pci/devices/0000:01:00.0/vfio-dev/vfio0").is_dir());
    /// assert!(root.join("dev/vfio/devices/vfio0").exists() && root.join("dev/iommu").exists());
    /// ```
    pub fn create_cdev(root: impl Into<PathBuf>, bdf: Bdf, cpus: u32) -> Result<Self, Error> {
        let tree = Self::create(root, bdf, cpus)?;
        let io = |source| Error::Tree {
            path: tree.root.clone(),
            source,
        };
        let entry = tree.root.join("sys/bus/pci/devices").join(bdf.to_string());
        std::fs::create_dir_all(entry.join("vfio-dev").join(CDEV)).map_err(io)?;
        let devices = tree.root.join("dev/vfio/devices");
        std::fs::create_dir_all(&devices).map_err(io)?;
        std::fs::write(devices.join(CDEV), b"").map_err(io)?;
        std::fs::write(tree.root.join("dev/iommu"), b"").map_err(io)?;
        Ok(tree)
    }

    /// The bind mounts of this tree over `/sys` and `/dev`, as a [`Sandbox`] that also traps
    /// `pread64`/`pwrite64` (region accesses on the device fd) and `close` (the device's
    /// release).
    pub fn sandbox(&self) -> Sandbox {
        Sandbox {
            syscalls: vec![libc::SYS_pread64, libc::SYS_pwrite64, libc::SYS_close],
            binds: vec![
                (self.root.join("sys"), "/sys".into()),
                (self.root.join("dev"), "/dev".into()),
            ],
            stdin: None,
        }
    }
}

impl Drop for FakeVfioTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
