//! A whole VFIO host for a supervised, unmodified program: the ioctls that `vfio-ioctls` (or
//! any C driver) issues while opening devices (legacy container/group, or the device cdev bound
//! to an iommufd), the devices' region reads and config writes, and the TPH/MSI-X/reset calls,
//! all answered by the kernel model (`tph-kernel`).
//!
//! With a [`FakeVfioTree`] (a `/sys` and `/dev` bind-mounted in the child's private mount
//! namespace: vfio-pci's module parameter, each device bound to vfio-pci in its own IOMMU group,
//! `/dev/vfio/vfio` and `/dev/vfio/<group>`; with a cdev also each device's `vfio-dev/vfioN`
//! entry, `/dev/vfio/devices/vfioN` and `/dev/iommu`), a program such as
//! `tphctl session --vfio BDF` runs its real-device path end to end, every VFIO call crossing
//! the real syscall boundary. [`VfioHostHandler::for_tree`] serves every device of a tree and
//! tells the child's fds apart by the tree node they are open on;
//! [`VfioHostHandler::new`] serves one device without a tree (group [`GROUP`]).
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

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

use tph_kernel::vfio::VfioDevice;
use tph_regs::machine::Bdf;
use tph_regs::msix::MsixCap;

use tph_client::abi::vfio::{Request, API_VERSION, GROUP_FLAGS_CONTAINER_SET, GROUP_FLAGS_VIABLE};
use tph_client::Errno;

use crate::harness::{ChildMemory, IoctlHandler, Reply, Trapped};
use crate::model::ModelHandler;
use crate::Error;

mod trace;
mod tree;

pub use tree::{FakeVfioTree, TreeSpec};
use tree::{FileId, Node};

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
/// `VFIO_DEVICE_FLAGS_RESET | VFIO_DEVICE_FLAGS_PCI`.
const DEVICE_FLAGS: u32 = 0b11;
/// Regions: BAR0..5, ROM, config, VGA (`VFIO_PCI_NUM_REGIONS`).
const NUM_REGIONS: u32 = 9;
/// IRQ indexes: INTx, MSI, MSI-X, ERR, REQ (`VFIO_PCI_NUM_IRQS`); the model answers
/// `VFIO_DEVICE_GET_IRQ_INFO` and `VFIO_DEVICE_SET_IRQS` for each.
const NUM_IRQS: u32 = tph_client::abi::vfio::NUM_IRQS;
const CONFIG_REGION: u32 = 7;
const VGA_REGION: u32 = 8;
/// `VFIO_REGION_INFO_FLAG_READ | WRITE`.
const REGION_RW: u32 = 0b11;
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

/// One device the host serves: the model device and where the child finds it.
#[derive(Debug, Clone)]
pub struct ServedDevice {
    /// Its address (the name `VFIO_GROUP_GET_DEVICE_FD` takes, as `0000:01:00.0`).
    pub bdf: Bdf,
    /// Its IOMMU group (one device per group).
    pub group: u32,
    /// The model device, already taken over by vfio-pci.
    pub device: VfioDevice,
}

/// An open device file of the child: which device, and the model fd answering it.
#[derive(Debug)]
struct OpenDevice {
    dev: usize,
    model: ModelHandler,
}

/// A group fd of the child: its group, and the container it was put in.
#[derive(Debug, Clone, Copy)]
struct GroupFd {
    group: u32,
    container: Option<i32>,
}

/// A container fd of the child: how many groups are in it, whether its IOMMU type is set.
#[derive(Debug, Default, Clone, Copy)]
struct Container {
    groups: u32,
    iommu: bool,
}

/// Answers every VFIO call of one supervised program with devices of the kernel model: the
/// legacy container/group opening (group and container state kept per fd, so
/// `VFIO_GROUP_GET_DEVICE_FD` needs the group in a container with its IOMMU type set), the
/// cdev/iommufd opening, region and IRQ info, config and MSI-X table reads, config writes, and
/// each device's TPH, MSI-X and reset calls. With [`VfioHostHandler::with_trace`] it also
/// records every trapped call and every hardware access.
#[derive(Debug)]
pub struct VfioHostHandler {
    devices: Vec<ServedDevice>,
    /// The tree's nodes by file identity; empty for a handler built without a tree (then a
    /// group fd is the only device's group and any device call goes to the open device).
    nodes: HashMap<FileId, Node>,
    /// The tree's device files, by device (empty without a tree).
    files: Vec<PathBuf>,
    open: BTreeMap<i32, OpenDevice>,
    /// A device fd being installed in the child ([`Reply::Fd`]); its number comes later.
    pending: Option<OpenDevice>,
    groups: HashMap<i32, GroupFd>,
    containers: HashMap<i32, Container>,
    opens: u32,
    iommufd: Iommufd,
    trace: Option<Vec<String>>,
}

/// What the child did with iommufd: the fd it allocated its IOAS on, whether that IOAS is live,
/// whether the device is attached to it, how many times it bound a device cdev.
#[derive(Debug, Default)]
struct Iommufd {
    fd: Option<i32>,
    ioas: bool,
    attached: bool,
    binds: u32,
}

/// The identity of the child's fd `fd` (thread `pid`), when it is open.
fn child_file_id(pid: u32, fd: i32) -> Option<FileId> {
    let m = std::fs::metadata(format!("/proc/{pid}/fd/{fd}")).ok()?;
    Some((m.dev(), m.ino()))
}

impl VfioHostHandler {
    /// Serves `device` (already taken over by vfio-pci in the model) under the name `bdf`, in
    /// IOMMU group [`GROUP`], without a tree: any group fd is its group.
    ///
    /// ```
    /// let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let bdf = "02:00.0".parse().unwrap();
    /// let h = tph_testkit::vfio_host::VfioHostHandler::new(host.take_over(bdf).unwrap(), bdf).unwrap();
    /// assert_eq!((h.device_fd(), h.opens()), (None, 0)); // nobody opened it yet
    /// ```
    pub fn new(device: VfioDevice, bdf: Bdf) -> Result<Self, Error> {
        Ok(Self::serve(
            vec![ServedDevice {
                bdf,
                group: GROUP,
                device,
            }],
            HashMap::new(),
            Vec::new(),
        ))
    }

    /// Serves the devices of `tree` (taken over in the model; matched by address), telling
    /// the child's fds apart by the tree node they are open on. A device of the tree without
    /// a model device, or the other way round: ENODEV.
    ///
    /// ```
    /// use tph_testkit::vfio_host::{FakeVfioTree, TreeSpec, VfioHostHandler};
    /// let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let bdfs = ["01:00.0".parse().unwrap(), "02:00.0".parse().unwrap()];
    /// let root = std::env::temp_dir().join(format!("fake-vfio-handler-doc-{}", std::process::id()));
    /// let spec = TreeSpec { devices: vec![(bdfs[0], 1), (bdfs[1], 2)], ..TreeSpec::default() };
    /// let tree = FakeVfioTree::build(&root, spec).unwrap();
    /// let devices = bdfs.iter().map(|b| host.take_over(*b).unwrap()).collect();
    /// let h = VfioHostHandler::for_tree(&tree, devices).unwrap();
    /// assert_eq!(h.served().len(), 2);
    /// ```
    pub fn for_tree(tree: &FakeVfioTree, devices: Vec<VfioDevice>) -> Result<Self, Error> {
        if devices.len() != tree.devices().len() {
            return Err(Error::Model {
                op: "serving the tree's devices",
                errno: Errno::ENODEV,
            });
        }
        let served = tree
            .devices()
            .iter()
            .map(|&(bdf, group)| {
                let device = devices.iter().find(|d| d.bdf() == bdf).cloned();
                device.map(|device| ServedDevice { bdf, group, device })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(Error::Model {
                op: "serving the tree's devices",
                errno: Errno::ENODEV,
            })?;
        let files = (0..served.len()).map(|i| tree.device_file(i)).collect();
        Ok(Self::serve(served, tree.node_ids(), files))
    }

    fn serve(
        devices: Vec<ServedDevice>,
        nodes: HashMap<FileId, Node>,
        files: Vec<PathBuf>,
    ) -> Self {
        Self {
            devices,
            nodes,
            files,
            open: BTreeMap::new(),
            pending: None,
            groups: HashMap::new(),
            containers: HashMap::new(),
            opens: 0,
            iommufd: Iommufd::default(),
            trace: None,
        }
    }

    /// Records every trapped call and every hardware access from now on (the accesses are
    /// drained from the devices: [`tph_kernel::vfio::VfioDevice::drain_trace`] then sees none).
    pub fn with_trace(mut self) -> Self {
        let mut trace = Vec::new();
        for d in &self.devices {
            for access in d.device.drain_trace() {
                trace.push(format!(
                    "  {} {access} (before the program: takeover)",
                    d.bdf
                ));
            }
        }
        self.trace = Some(trace);
        self
    }

    /// The trace lines recorded so far, handed over (empty without [`Self::with_trace`]).
    pub fn take_trace(&mut self) -> Vec<String> {
        self.trace.as_mut().map(std::mem::take).unwrap_or_default()
    }

    /// The devices served.
    pub fn served(&self) -> &[ServedDevice] {
        &self.devices
    }

    /// The child's fd number for a device while it has one open (the lowest).
    pub fn device_fd(&self) -> Option<i32> {
        self.open.keys().next().copied()
    }

    /// How many times the child obtained a device (`VFIO_GROUP_GET_DEVICE_FD`, or a cdev bound
    /// with `VFIO_DEVICE_BIND_IOMMUFD`).
    pub fn opens(&self) -> u32 {
        self.opens
    }

    /// How many of those opens went through a device cdev and iommufd.
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

    /// The first model device (snapshots, traces).
    pub fn device(&self) -> &VfioDevice {
        &self.devices[0].device
    }

    /// What the child's fd is, when it is one of the tree's nodes.
    fn node(&self, call: &Trapped) -> Option<Node> {
        if self.nodes.is_empty() {
            return None;
        }
        self.nodes.get(&child_file_id(call.pid, call.fd)?).copied()
    }

    /// The key in `open` of the device file the call's fd names: one the host handed out, or
    /// one the fd duplicates (same tree node); without a tree, the one open device.
    fn open_key(&self, call: &Trapped) -> Option<i32> {
        if self.open.contains_key(&call.fd) {
            return Some(call.fd);
        }
        let first = self.open.keys().next().copied();
        let dev = match self.node(call) {
            Some(Node::DeviceFile(i) | Node::Cdev(i)) => i,
            _ if self.nodes.is_empty() && self.open.len() == 1 => return first,
            _ => return None,
        };
        self.open
            .iter()
            .find(|(_, o)| o.dev == dev)
            .map(|(k, _)| *k)
    }

    fn open_device(&self, call: &Trapped) -> Option<&OpenDevice> {
        self.open.get(&self.open_key(call)?)
    }

    /// A group fd's group: known from an earlier call, from its tree node, or (without a tree)
    /// the only device's.
    fn group_of(&mut self, call: &Trapped) -> Option<GroupFd> {
        if let Some(g) = self.groups.get(&call.fd) {
            return Some(*g);
        }
        let group = match self.node(call) {
            Some(Node::Group(g)) => g,
            _ if self.nodes.is_empty() && self.devices.len() == 1 => self.devices[0].group,
            _ => return None,
        };
        let g = GroupFd {
            group,
            container: None,
        };
        self.groups.insert(call.fd, g);
        Some(g)
    }

    fn is_container(&self, call: &Trapped, fd: i32) -> bool {
        let probe = Trapped { fd, ..*call };
        self.containers.contains_key(&fd)
            || self.nodes.is_empty()
            || self.node(&probe) == Some(Node::Container)
    }

    /// `VFIO_GROUP_GET_STATUS`: always viable (one device per group, bound to vfio-pci).
    fn group_status(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let g = self.group_of(call).ok_or(Errno(libc::ENOTTY))?;
        let set = if g.container.is_some() {
            GROUP_FLAGS_CONTAINER_SET
        } else {
            0
        };
        mem.write(call.arg + 4, &(GROUP_FLAGS_VIABLE | set).to_le_bytes())
            .map(|()| 0)
    }

    /// `VFIO_GROUP_SET_CONTAINER`: the argument points at the container fd.
    fn set_container(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let g = self.group_of(call).ok_or(Errno(libc::ENOTTY))?;
        let mut fd = [0u8; 4];
        mem.read(call.arg, &mut fd)?;
        let container = i32::from_le_bytes(fd);
        if g.container.is_some() {
            return Err(Errno(libc::EINVAL)); // already in a container
        }
        if !self.is_container(call, container) {
            return Err(Errno(libc::EBADFD)); // mainline: "the FD passed is not recognized"
        }
        self.containers.entry(container).or_default().groups += 1;
        self.groups.insert(
            call.fd,
            GroupFd {
                container: Some(container),
                ..g
            },
        );
        Ok(0)
    }

    /// `VFIO_GROUP_UNSET_CONTAINER`.
    fn unset_container(&mut self, call: &Trapped) -> Result<i32, Errno> {
        let g = self.group_of(call).ok_or(Errno(libc::ENOTTY))?;
        let c = g.container.ok_or(Errno(libc::EINVAL))?;
        if let Some(container) = self.containers.get_mut(&c) {
            container.groups = container.groups.saturating_sub(1);
            container.iommu &= container.groups > 0;
        }
        self.groups.insert(
            call.fd,
            GroupFd {
                container: None,
                ..g
            },
        );
        Ok(0)
    }

    /// `VFIO_SET_IOMMU` on a container: once, with a group in it (else EINVAL), a type1 IOMMU
    /// (else ENODEV, as `vfio_ioctl_set_iommu` when no driver offers the type).
    fn set_iommu(&mut self, call: &Trapped) -> Result<i32, Errno> {
        if !self.is_container(call, call.fd) {
            return Err(Errno(libc::ENOTTY));
        }
        let c = self.containers.entry(call.fd).or_default();
        if c.groups == 0 || c.iommu {
            return Err(Errno(libc::EINVAL));
        }
        if !TYPE1.contains(&call.arg) {
            return Err(Errno(libc::ENODEV)); // no IOMMU driver offers that type
        }
        c.iommu = true;
        Ok(0)
    }

    /// `VFIO_GROUP_GET_DEVICE_FD`: the named device of this group (else ENODEV), once the
    /// group is in a container with its IOMMU type set (else EINVAL), as mainline orders them.
    fn get_device_fd(&mut self, call: &Trapped, mem: &ChildMemory) -> Reply {
        let Some(g) = self.group_of(call) else {
            return Reply::Fail(Errno(libc::ENOTTY));
        };
        let name = read_name(call, mem);
        let Some(dev) = self
            .devices
            .iter()
            .position(|d| d.group == g.group && name == d.bdf.to_string().as_bytes())
        else {
            return Reply::Fail(Errno::ENODEV); // no such device in this group
        };
        let ready = g
            .container
            .and_then(|c| self.containers.get(&c))
            .is_some_and(|c| c.iommu);
        if !ready {
            return Reply::Fail(Errno::EINVAL);
        }
        let file = self.device_file(dev);
        match (self.devices[dev].device.open(), file) {
            (Ok(fd), Ok(file)) => {
                self.pending = Some(OpenDevice {
                    dev,
                    model: ModelHandler::new(fd),
                });
                Reply::Fd(file.into())
            }
            (Err(e), _) => Reply::Fail(e),
            (_, Err(e)) => Reply::Fail(Errno::from_io(&e)),
        }
    }

    /// The file behind device `dev`'s fds: the tree's device file, or `/dev/null` without a
    /// tree.
    fn device_file(&self, dev: usize) -> std::io::Result<File> {
        match self.files.get(dev) {
            Some(path) => File::options().read(true).write(true).open(path),
            None => File::open("/dev/null"),
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
        let dev = match self.node(call) {
            Some(Node::Cdev(i)) => i,
            _ if self.nodes.is_empty() => 0,
            _ => return Err(Errno(libc::ENOTTY)),
        };
        if self.open.values().any(|o| o.dev == dev) {
            return Err(Errno(libc::EBUSY)); // one open of the device at a time
        }
        let fd = self.devices[dev]
            .device
            .open()
            .map_err(|_| Errno(libc::EBUSY))?;
        mem.write(call.arg + 12, &DEV_ID.to_le_bytes())?;
        let model = ModelHandler::new(fd);
        self.open.insert(call.fd, OpenDevice { dev, model });
        self.opens += 1;
        self.iommufd.binds += 1;
        Ok(0)
    }

    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` / `DETACH`: only on a bound device, only to the IOAS.
    fn attach(&mut self, call: &Trapped, mem: &ChildMemory, attach: bool) -> Result<i32, Errno> {
        if !self.open.contains_key(&call.fd) || self.iommufd.binds == 0 {
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

    fn region_info(dev: &VfioDevice, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut info = [0u8; 32];
        mem.read(call.arg, &mut info)?;
        let index = le32(&info, 8);
        if index == VGA_REGION || index >= NUM_REGIONS {
            return Err(Errno::EINVAL);
        }
        let size = region_size(dev, index);
        info[4..8].copy_from_slice(&REGION_RW.to_le_bytes());
        info[12..16].copy_from_slice(&0u32.to_le_bytes());
        info[16..24].copy_from_slice(&size.to_le_bytes());
        info[24..32].copy_from_slice(&(u64::from(index) << REGION_SHIFT).to_le_bytes());
        mem.write(call.arg, &info).map(|()| 0)
    }

    /// The container requests, answered on any fd that is (or, without a tree, may be) a
    /// container.
    fn container_ioctl(&mut self, call: &Trapped) -> Option<Result<i32, Errno>> {
        Some(match call.request {
            GET_API_VERSION | CHECK_EXTENSION if !self.is_container(call, call.fd) => {
                Err(Errno(libc::ENOTTY))
            }
            GET_API_VERSION => Ok(API_VERSION),
            CHECK_EXTENSION => Ok(i32::from(TYPE1.contains(&call.arg))),
            SET_IOMMU => self.set_iommu(call),
            _ => return None,
        })
    }

    fn simple_ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        if let Some(r) = self.iommufd_ioctl(call, mem) {
            return r;
        }
        if let Some(r) = self.container_ioctl(call) {
            return r;
        }
        match call.request {
            GROUP_GET_STATUS => return self.group_status(call, mem),
            GROUP_SET_CONTAINER => return self.set_container(call, mem),
            GROUP_UNSET_CONTAINER => return self.unset_container(call),
            _ => {}
        }
        let open = self.open_device(call).ok_or(Errno(libc::ENOTTY))?;
        let dev = &self.devices[open.dev].device;
        match call.request {
            DEVICE_GET_INFO => {
                let info = [DEVICE_FLAGS, NUM_REGIONS, NUM_IRQS];
                let bytes: Vec<u8> = info.iter().flat_map(|v| v.to_le_bytes()).collect();
                mem.write(call.arg + 4, &bytes).map(|()| 0)
            }
            DEVICE_GET_REGION_INFO => Self::region_info(dev, call, mem),
            _ => {
                let key = self.open_key(call).ok_or(Errno(libc::ENOTTY))?;
                let open = self.open.get_mut(&key).ok_or(Errno(libc::ENOTTY))?;
                open.model.ioctl(call, mem)
            }
        }
    }

    /// `pread64` / `pwrite64` on a device fd: the config region or the MSI-X table (reads)
    /// from the model; other regions: EINVAL. On other fds the kernel runs the call.
    fn region_access(&self, call: &Trapped, mem: &ChildMemory) -> Reply {
        let Some(open) = self.open_device(call) else {
            return Reply::Continue;
        };
        let (buf, len, off) = (call.args[1], call.args[2], call.args[3]);
        let (index, at) = (
            (off >> REGION_SHIFT) as u32,
            off & ((1 << REGION_SHIFT) - 1),
        );
        let mut data = vec![0u8; usize::try_from(len).unwrap_or(0).min(4096)];
        let fd = open.model.fd();
        let dev = &self.devices[open.dev].device;
        let done = if call.nr == libc::SYS_pwrite64 {
            mem.read(buf, &mut data).and_then(|()| match index {
                CONFIG_REGION => fd.config_write(at, &data),
                _ => Err(Errno::EINVAL),
            })
        } else {
            match index {
                CONFIG_REGION => fd.config_read(at, &mut data),
                i => read_bar(dev, i, at, &mut data),
            }
            .and_then(|()| mem.write(buf, &data))
        };
        match done {
            Ok(()) => Reply::Value(data.len() as i64),
            Err(e) => Reply::Fail(e),
        }
    }

    /// `close` of one of the child's fds: a device file's release (its last close turns TPH
    /// off in the model) unless the child still holds a duplicate of it, a group leaving its
    /// container, the iommufd's objects destroyed. The kernel then closes the child's fd.
    fn close(&mut self, call: &Trapped) -> Reply {
        if let Some(open) = self.open.remove(&call.fd) {
            match self.duplicate_of(call) {
                Some(dup) => {
                    self.open.insert(dup, open);
                }
                None => self.iommufd.attached = false, // detached as it is released
            }
        }
        if let Some(g) = self.groups.remove(&call.fd)
            && let Some(c) = g.container.and_then(|c| self.containers.get_mut(&c))
        {
            c.groups = c.groups.saturating_sub(1);
        }
        self.containers.remove(&call.fd);
        if Some(call.fd) == self.iommufd.fd {
            // The last close of an iommufd destroys what was allocated in it.
            self.iommufd.fd = None;
            self.iommufd.ioas = false;
        }
        Reply::Continue
    }

    /// Another fd of the child open on the same file as the call's fd (a `dup`), if any.
    fn duplicate_of(&self, call: &Trapped) -> Option<i32> {
        if self.nodes.is_empty() {
            return None;
        }
        let id = child_file_id(call.pid, call.fd)?;
        let fds = std::fs::read_dir(format!("/proc/{}/fd", call.pid)).ok()?;
        fds.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
            .filter(|&fd| fd != call.fd && !self.open.contains_key(&fd))
            .find(|&fd| child_file_id(call.pid, fd) == Some(id))
    }

    fn dispatch(&mut self, call: &Trapped, mem: &ChildMemory) -> Reply {
        match call.nr {
            libc::SYS_ioctl if call.request == GROUP_GET_DEVICE_FD => self.get_device_fd(call, mem),
            libc::SYS_ioctl => Reply::from(self.simple_ioctl(call, mem)),
            libc::SYS_pread64 | libc::SYS_pwrite64 => self.region_access(call, mem),
            libc::SYS_close => self.close(call),
            _ => Reply::Continue,
        }
    }

    /// Appends the trace lines of one answered call: the call, then the hardware accesses it
    /// caused on each device.
    fn record(&mut self, call: &Trapped, reply: &Reply) {
        let Some(trace) = self.trace.as_mut() else {
            return;
        };
        trace.push(trace::call_line(call, reply));
        for d in &self.devices {
            for access in d.device.drain_trace() {
                trace.push(format!("  {} {access}", d.bdf));
            }
        }
    }
}

/// The NUL-terminated device name at the call's argument (at most 64 bytes read).
fn read_name(call: &Trapped, mem: &ChildMemory) -> Vec<u8> {
    let mut name = [0u8; 64];
    let got = (1..=name.len())
        .rev()
        .find(|&n| mem.read(call.arg, &mut name[..n]).is_ok());
    let name = &name[..got.unwrap_or(0)];
    name.split(|&b| b == 0).next().unwrap_or(&[]).to_vec()
}

fn msix_cap(dev: &VfioDevice) -> Option<MsixCap> {
    dev.with_hardware(|f| MsixCap::find(f.config_bytes()))
}

fn region_size(dev: &VfioDevice, index: u32) -> u64 {
    match (index, msix_cap(dev)) {
        (CONFIG_REGION, _) => 4096,
        (i, Some(m)) if i == u32::from(m.table_bir) => {
            (u64::from(m.table_offset) + 16 * u64::from(m.table_size)).next_power_of_two()
        }
        _ => 0,
    }
}

/// A read of the MSI-X table's BAR at `at` (only the table is served).
fn read_bar(dev: &VfioDevice, index: u32, at: u64, data: &mut [u8]) -> Result<(), Errno> {
    let m = msix_cap(dev)
        .filter(|m| u32::from(m.table_bir) == index)
        .ok_or(Errno::EINVAL)?;
    let start = at
        .checked_sub(u64::from(m.table_offset))
        .ok_or(Errno::EINVAL)?;
    dev.with_hardware(|f| {
        for (i, chunk) in data.chunks_mut(4).enumerate() {
            let byte = start + 4 * i as u64;
            let v = f.msix_read((byte / 16) as u16, (byte % 16) as u8);
            chunk.copy_from_slice(&v.to_le_bytes()[..chunk.len()]);
        }
    });
    Ok(())
}

impl IoctlHandler for VfioHostHandler {
    fn ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        self.simple_ioctl(call, mem)
    }

    fn handle(&mut self, call: &Trapped, mem: &ChildMemory) -> Reply {
        let reply = self.dispatch(call, mem);
        self.record(call, &reply);
        reply
    }

    fn fd_installed(&mut self, child_fd: i32) {
        if let Some(open) = self.pending.take() {
            self.opens += 1;
            if let Some(trace) = self.trace.as_mut() {
                let bdf = self.devices[open.dev].bdf;
                trace.push(format!("  device fd {child_fd} is {bdf}"));
            }
            self.open.insert(child_fd, open);
        }
    }
}
