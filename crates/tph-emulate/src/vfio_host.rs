//! A whole VFIO host for a supervised, unmodified program: the ioctls that `vfio-ioctls` (or
//! any C driver) issues while opening devices (legacy container/group, or the device cdev bound
//! to an iommufd), DMA mapping (the container's type1 IOMMU, the iommufd IOAS: `dma.rs`), the
//! devices' regions (config space from the model, BARs from each device's BAR memory, which a
//! program may also `mmap`: `bars.rs`), and the TPH/MSI-X/reset calls, all answered as mainline
//! answers them, by the kernel model (`tph-kernel`).
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
//! use tph_emulate::harness::supervise_in;
//! use tph_emulate::vfio_host::{FakeVfioTree, VfioHostHandler, TRAPPED_VFIO_REQUESTS};
//!
//! let host = tph_kernel::Host::with_default_machine(Default::default());
//! let bdf: tph_regs::machine::Bdf = "02:00.0".parse().unwrap();
//! let tree = FakeVfioTree::create(std::env::temp_dir().join("fake-vfio"), bdf, 8).unwrap();
//! let mut handler = VfioHostHandler::new(host.take_over(bdf).unwrap(), bdf).unwrap();
//! let sandbox = tree.sandbox().with_stdin("script.txt");
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

use tph_client::abi::vfio::{Request, API_VERSION, GROUP_FLAGS_CONTAINER_SET, GROUP_FLAGS_VIABLE};
use tph_client::Errno;

use crate::harness::{ChildMemory, IoctlHandler, Reply, Trapped};
use crate::model::ModelHandler;
use crate::Error;

mod bars;
mod dma;
mod trace;
mod tree;

use bars::{BarMemory, Layout, REGION_SHIFT};
use dma::Ioas;
pub use dma::Type1;
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
const IOMMU_IOAS_MAP: u32 = Request::IommuIoasMap.number();
const IOMMU_IOAS_UNMAP: u32 = Request::IommuIoasUnmap.number();
const IOMMU_GET_INFO: u32 = Request::IommuGetInfo.number();
const IOMMU_MAP_DMA: u32 = Request::IommuMapDma.number();
const IOMMU_UNMAP_DMA: u32 = Request::IommuUnmapDma.number();

/// Every VFIO ioctl the host answers (container and its type1 IOMMU, group, cdev and iommufd,
/// device, TPH of either revision).
pub const TRAPPED_VFIO_REQUESTS: [u32; 24] = [
    GET_API_VERSION,
    CHECK_EXTENSION,
    SET_IOMMU,
    IOMMU_GET_INFO,
    IOMMU_MAP_DMA,
    IOMMU_UNMAP_DMA,
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
    IOMMU_IOAS_MAP,
    IOMMU_IOAS_UNMAP,
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
const ROM_REGION: u32 = 6;
const VGA_REGION: u32 = 8;
/// The page size mappings are made of.
const PAGE: u64 = 4096;
/// `VFIO_REGION_INFO_FLAG_READ | WRITE`.
const REGION_RW: u32 = 0b11;
/// `VFIO_REGION_INFO_FLAG_MMAP`, `VFIO_REGION_INFO_FLAG_CAPS`.
const REGION_MMAP: u32 = 1 << 2;
const REGION_CAPS: u32 = 1 << 3;
/// `VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`.
const CAP_MSIX_MAPPABLE: u16 = 3;
/// `sizeof(struct vfio_region_info)`.
const REGION_INFO_SIZE: u32 = 32;
/// The IOMMU group the fake tree puts the device in.
pub const GROUP: u32 = 7;
/// The device cdev [`FakeVfioTree::create_cdev`] offers (`/dev/vfio/devices/vfio0`).
pub const CDEV: &str = "vfio0";
/// The id the host gives the one IOAS a child allocates; the bound device gets [`DEV_ID`].
const IOAS_ID: u32 = 1;
const DEV_ID: u32 = 1;

/// Little-endian `u32` at `at` of an argument copied in from the program; a word past its
/// end was never copied (EFAULT, as the kernel's `copy_from_user` fails), never read as 0.
fn le32(b: &[u8], at: usize) -> Result<u32, Errno> {
    b.get(at..)
        .and_then(<[u8]>::first_chunk)
        .map(|w| u32::from_le_bytes(*w))
        .ok_or(Errno::EFAULT)
}

/// One device the host serves: the model device and where the child finds it.
#[derive(Debug, Clone)]
#[non_exhaustive]
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

/// A container fd of the child: how many groups are in it, its IOMMU once the type is set
/// (with the DMA mappings made through it).
#[derive(Debug, Default, Clone)]
struct Container {
    groups: u32,
    iommu: Option<Type1>,
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
    /// Each device's BAR layout, and its BAR memory (the tree's device file; none without a
    /// tree).
    layouts: Vec<Layout>,
    memory: Vec<Option<BarMemory>>,
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
    ioas: Option<Ioas>,
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
    /// let h = tph_emulate::vfio_host::VfioHostHandler::new(host.take_over(bdf).unwrap(), bdf).unwrap();
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
    /// use tph_emulate::vfio_host::{FakeVfioTree, TreeSpec, VfioHostHandler};
    /// let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let bdfs = ["01:00.0".parse().unwrap(), "02:00.0".parse().unwrap()];
    /// let root = std::env::temp_dir().join(format!("fake-vfio-handler-doc-{}", std::process::id()));
    /// let spec = TreeSpec::new().with_devices(vec![(bdfs[0], 1), (bdfs[1], 2)]);
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
        let files: Vec<PathBuf> = (0..served.len()).map(|i| tree.device_file(i)).collect();
        let mut host = Self::serve(served, tree.node_ids(), files.clone());
        for (i, path) in files.iter().enumerate() {
            let tree_err = |source| Error::Tree {
                path: path.clone(),
                source,
            };
            let file = File::options()
                .read(true)
                .write(true)
                .open(path)
                .map_err(tree_err)?;
            let mem = BarMemory::new(file, host.layouts[i].clone(), &host.devices[i].device)
                .map_err(tree_err)?;
            host.memory[i] = Some(mem);
        }
        Ok(host)
    }

    fn serve(
        devices: Vec<ServedDevice>,
        nodes: HashMap<FileId, Node>,
        files: Vec<PathBuf>,
    ) -> Self {
        let layouts: Vec<Layout> = devices
            .iter()
            .map(|d| {
                let config = d.device.with_hardware(|f| f.config_bytes().to_vec());
                bars::layout_of(&config, d.bdf)
            })
            .collect();
        Self {
            memory: devices.iter().map(|_| None).collect(),
            layouts,
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
    /// let h = tph_emulate::vfio_host::VfioHostHandler::new(host.take_over(bdf).unwrap(), bdf).unwrap();
    /// assert_eq!(h.cdev_binds(), 0);
    /// ```
    pub fn cdev_binds(&self) -> u32 {
        self.iommufd.binds
    }

    /// How many DMA mappings the child holds now: those of every container's type1 IOMMU and
    /// the areas of its IOAS.
    ///
    /// ```
    /// let host = tph_kernel::Host::with_default_machine(Default::default());
    /// let bdf = "02:00.0".parse().unwrap();
    /// let h = tph_emulate::vfio_host::VfioHostHandler::new(host.take_over(bdf).unwrap(), bdf).unwrap();
    /// assert_eq!(h.dma_mappings(), 0);
    /// ```
    pub fn dma_mappings(&self) -> usize {
        let type1: usize = self
            .containers
            .values()
            .filter_map(|c| c.iommu.as_ref().map(Type1::len))
            .sum();
        type1 + self.iommufd.ioas.as_ref().map_or(0, Ioas::len)
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
            Some(Node::Device(i)) => i,
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
            if container.groups == 0 {
                container.iommu = None; // the last group out takes the IOMMU (and its mappings)
            }
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
        if c.groups == 0 || c.iommu.is_some() {
            return Err(Errno(libc::EINVAL));
        }
        if !TYPE1.contains(&call.arg) {
            return Err(Errno(libc::ENODEV)); // no IOMMU driver offers that type
        }
        c.iommu = Some(Type1::new(call.arg));
        Ok(0)
    }

    /// The type1 IOMMU's requests on a container: EINVAL before `VFIO_SET_IOMMU` (no driver
    /// to pass them to), ENOTTY on an fd that is no container.
    fn type1_ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        if !self.is_container(call, call.fd) {
            return Err(Errno(libc::ENOTTY));
        }
        let Some(iommu) = self
            .containers
            .get_mut(&call.fd)
            .and_then(|c| c.iommu.as_mut())
        else {
            return Err(Errno::EINVAL);
        };
        match call.request {
            IOMMU_GET_INFO => iommu.get_info(call.arg, mem),
            IOMMU_MAP_DMA => iommu.map(call.arg, mem),
            _ => iommu.unmap(call.arg, mem),
        }
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
            .is_some_and(|c| c.iommu.is_some());
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
        if self.iommufd.ioas.is_some() {
            return Err(Errno(libc::ENOSPC)); // the fake serves one IOAS
        }
        mem.write(call.arg + 8, &IOAS_ID.to_le_bytes())?;
        self.iommufd = Iommufd {
            fd: Some(call.fd),
            ioas: Some(Ioas::default()),
            ..std::mem::take(&mut self.iommufd)
        };
        Ok(0)
    }

    /// `IOMMU_DESTROY` of the IOAS.
    fn destroy(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut arg = [0u8; 8];
        mem.read(call.arg, &mut arg)?;
        if Some(call.fd) != self.iommufd.fd
            || self.iommufd.ioas.is_none()
            || le32(&arg, 4)? != IOAS_ID
        {
            return Err(Errno(libc::ENOENT));
        }
        self.iommufd.ioas = None;
        Ok(0)
    }

    /// `IOMMU_IOAS_MAP` / `IOMMU_IOAS_UNMAP` on the iommufd: the IOAS's areas (`dma.rs`). The
    /// `size` head is checked as `iommufd_fops_ioctl` does (shorter than the command: EINVAL).
    fn ioas_map(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let map = call.request == IOMMU_IOAS_MAP;
        let need = if map { 40 } else { 24 };
        let mut head = [0u8; 8];
        mem.read(call.arg, &mut head)?;
        if Some(call.fd) != self.iommufd.fd {
            return Err(Errno(libc::ENOTTY));
        }
        if le32(&head, 0)? < need {
            return Err(Errno::EINVAL);
        }
        let ioas_at = if map { 8 } else { 4 };
        let mut id = [0u8; 4];
        mem.read(call.arg + ioas_at, &mut id)?;
        let ioas = self
            .iommufd
            .ioas
            .as_mut()
            .filter(|_| u32::from_le_bytes(id) == IOAS_ID)
            .ok_or(Errno(libc::ENOENT))?;
        if map {
            let mut cmd = [0u8; 40];
            mem.read(call.arg, &mut cmd)?;
            ioas.map(&mut cmd, mem)?;
            mem.write(call.arg, &cmd)?;
        } else {
            let mut cmd = [0u8; 24];
            mem.read(call.arg, &mut cmd)?;
            ioas.unmap(&mut cmd)?;
            mem.write(call.arg, &cmd)?;
        }
        Ok(0)
    }

    /// `VFIO_DEVICE_BIND_IOMMUFD` on the child's cdev fd: the device is now open through it.
    fn bind(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut arg = [0u8; 16];
        mem.read(call.arg, &mut arg)?;
        let iommufd = le32(&arg, 8)? as i32;
        if le32(&arg, 0)? < 16 || le32(&arg, 4)? != 0 || Some(iommufd) != self.iommufd.fd {
            return Err(Errno::EINVAL);
        }
        let dev = match self.node(call) {
            Some(Node::Device(i)) => i,
            _ if self.nodes.is_empty() => 0,
            _ => return Err(Errno(libc::ENOTTY)),
        };
        if self.open.contains_key(&call.fd) {
            // A device fd with access granted (the group path): the request goes to vfio-pci,
            // which does not know it.
            return Err(Errno(libc::ENOTTY));
        }
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
            if self.iommufd.ioas.is_none() || le32(&arg, 8)? != IOAS_ID {
                return Err(Errno(libc::ENOENT));
            }
        }
        self.iommufd.attached = attach;
        Ok(0)
    }

    fn iommufd_ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Option<Result<i32, Errno>> {
        Some(match call.request {
            IOMMU_IOAS_ALLOC => self.ioas_alloc(call, mem),
            IOMMU_IOAS_MAP | IOMMU_IOAS_UNMAP => self.ioas_map(call, mem),
            IOMMU_DESTROY => self.destroy(call, mem),
            DEVICE_BIND_IOMMUFD => self.bind(call, mem),
            DEVICE_ATTACH_IOMMUFD_PT => self.attach(call, mem, true),
            DEVICE_DETACH_IOMMUFD_PT => self.attach(call, mem, false),
            _ => return None,
        })
    }

    /// `VFIO_DEVICE_GET_REGION_INFO` as `vfio_pci_ioctl_get_region_info`: the config region
    /// (the function's config size), each BAR (its size, read/write, `MMAP` for a memory BAR,
    /// and on the MSI-X table's BAR the `MSIX_MAPPABLE` capability; size 0 and no flags when
    /// not implemented), the ROM (none: size 0), no VGA (EINVAL).
    fn region_info(layout: &Layout, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut info = [0u8; REGION_INFO_SIZE as usize];
        mem.read(call.arg, &mut info)?;
        let (argsz, index) = (le32(&info, 0)?, le32(&info, 8)?);
        if argsz < REGION_INFO_SIZE || index >= NUM_REGIONS || index == VGA_REGION {
            return Err(Errno::EINVAL);
        }
        let (mut flags, size, msix_cap) = match index {
            CONFIG_REGION => (REGION_RW, layout.cfg_size, false),
            ROM_REGION => (0, 0, false),
            i => match layout.bar(i) {
                Some(bar) if bar.is_mem() => {
                    let msix = layout.msix.is_some_and(|m| u32::from(m.table_bir) == i);
                    (REGION_RW | REGION_MMAP, bar.size, msix)
                }
                Some(bar) => (REGION_RW, bar.size, false),
                None => (0, 0, false),
            },
        };
        let mut cap_offset = 0u32;
        let mut argsz_out = argsz;
        if msix_cap {
            flags |= REGION_CAPS;
            let cap = dma::info_chain(&[(CAP_MSIX_MAPPABLE, Vec::new())], REGION_INFO_SIZE);
            let need = REGION_INFO_SIZE + cap.len() as u32;
            if argsz < need {
                argsz_out = need;
            } else {
                mem.write(call.arg + u64::from(REGION_INFO_SIZE), &cap)?;
                cap_offset = REGION_INFO_SIZE;
            }
        }
        info[0..4].copy_from_slice(&argsz_out.to_le_bytes());
        info[4..8].copy_from_slice(&flags.to_le_bytes());
        info[12..16].copy_from_slice(&cap_offset.to_le_bytes());
        info[16..24].copy_from_slice(&size.to_le_bytes());
        info[24..32].copy_from_slice(&(u64::from(index) << REGION_SHIFT).to_le_bytes());
        mem.write(call.arg, &info).map(|()| 0)
    }

    /// The container requests, answered on any fd that is (or, without a tree, may be) a
    /// container.
    fn container_ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Option<Result<i32, Errno>> {
        Some(match call.request {
            GET_API_VERSION | CHECK_EXTENSION if !self.is_container(call, call.fd) => {
                Err(Errno(libc::ENOTTY))
            }
            GET_API_VERSION => Ok(API_VERSION),
            CHECK_EXTENSION => Ok(i32::from(TYPE1.contains(&call.arg))),
            SET_IOMMU => self.set_iommu(call),
            IOMMU_GET_INFO | IOMMU_MAP_DMA | IOMMU_UNMAP_DMA => self.type1_ioctl(call, mem),
            _ => return None,
        })
    }

    fn simple_ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        if let Some(r) = self.iommufd_ioctl(call, mem) {
            return r;
        }
        if let Some(r) = self.container_ioctl(call, mem) {
            return r;
        }
        match call.request {
            GROUP_GET_STATUS => return self.group_status(call, mem),
            GROUP_SET_CONTAINER => return self.set_container(call, mem),
            GROUP_UNSET_CONTAINER => return self.unset_container(call),
            _ => {}
        }
        let open = self.open_device(call).ok_or(Errno(libc::ENOTTY))?;
        match call.request {
            DEVICE_GET_INFO => {
                let info = [DEVICE_FLAGS, NUM_REGIONS, NUM_IRQS];
                let bytes: Vec<u8> = info.iter().flat_map(|v| v.to_le_bytes()).collect();
                mem.write(call.arg + 4, &bytes).map(|()| 0)
            }
            DEVICE_GET_REGION_INFO => Self::region_info(&self.layouts[open.dev], call, mem),
            _ => {
                let key = self.open_key(call).ok_or(Errno(libc::ENOTTY))?;
                let open = self.open.get_mut(&key).ok_or(Errno(libc::ENOTTY))?;
                open.model.ioctl(call, mem)
            }
        }
    }

    /// `pread64` / `pwrite64` on a device fd, as `vfio_pci_rw`: the config region from the
    /// model, a BAR from the device's BAR memory (the MSI-X table excluded: 0xff, writes
    /// dropped), the ROM (none) and VGA and anything else: EINVAL; 0 bytes: 0. On other fds
    /// the kernel runs the call.
    fn region_access(&self, call: &Trapped, mem: &ChildMemory) -> Reply {
        let Some(open) = self.open_device(call) else {
            return Reply::Continue;
        };
        let (buf, len, off) = (call.args[1], call.args[2], call.args[3]);
        let (index, at) = (
            (off >> REGION_SHIFT) as u32,
            off & ((1 << REGION_SHIFT) - 1),
        );
        let write = call.nr == libc::SYS_pwrite64;
        let cap = if index == CONFIG_REGION {
            4096
        } else {
            1 << 20
        };
        let mut data = vec![0u8; usize::try_from(len).unwrap_or(0).min(cap)];
        if data.is_empty() {
            return Reply::Value(0);
        }
        let fd = open.model.fd();
        let bars = self.memory[open.dev].as_ref();
        let done = match (index, write) {
            (CONFIG_REGION, true) => mem
                .read(buf, &mut data)
                .and_then(|()| fd.config_write(at, &data))
                .map(|()| data.len()),
            (CONFIG_REGION, false) => fd
                .config_read(at, &mut data)
                .and_then(|()| mem.write(buf, &data))
                .map(|()| data.len()),
            (0..=5, true) => mem
                .read(buf, &mut data)
                .and_then(|()| bars.ok_or(Errno::EINVAL)?.rw(index, at, &mut data, true)),
            (0..=5, false) => bars
                .ok_or(Errno::EINVAL)
                .and_then(|b| b.rw(index, at, &mut data, false))
                .and_then(|n| mem.write(buf, &data[..n]).map(|()| n)),
            _ => Err(Errno::EINVAL),
        };
        match done {
            Ok(n) => Reply::Value(n as i64),
            Err(e) => Reply::Fail(e),
        }
    }

    /// `mmap` of a device fd, checked as `vfio_pci_core_mmap` checks it before the kernel maps
    /// the BAR memory: a region past the last (`VFIO_PCI_NUM_REGIONS`), a private mapping, the
    /// ROM, config and VGA regions, a BAR that cannot be mapped (not implemented, I/O) and a
    /// request reaching past the page-aligned BAR are EINVAL. The MSI-X table's pages may be
    /// mapped (mainline since 4.16). Anything else, and every `mmap` of another fd, runs in the
    /// kernel (which checks the offset's alignment and the length itself).
    fn mmap(&mut self, call: &Trapped) -> Reply {
        let [_, len, _, flags, fd, off] = call.args;
        if flags & libc::MAP_ANONYMOUS as u64 != 0 {
            return Reply::Continue;
        }
        let on_fd = Trapped {
            fd: fd as i32,
            ..*call
        };
        let Some(open) = self.open_device(&on_fd) else {
            return Reply::Continue;
        };
        let index = off >> REGION_SHIFT;
        let start = off & ((1 << REGION_SHIFT) - 1);
        let page_up = |n: u64| n.div_ceil(PAGE) * PAGE;
        let shared = flags & libc::MAP_SHARED as u64 != 0;
        let ok = index < u64::from(NUM_REGIONS)
            && shared
            && index < u64::from(ROM_REGION)
            && self.layouts[open.dev]
                .bar(index as u32)
                .filter(|b| b.is_mem())
                .is_some_and(|b| start.saturating_add(page_up(len)) <= page_up(b.size));
        let reply = if ok {
            Reply::Continue
        } else {
            Reply::Fail(Errno::EINVAL)
        };
        self.record(&on_fd, &reply);
        reply
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
            self.iommufd.ioas = None;
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

    /// The device a call acts on: an ioctl other than the container and iommufd requests, a
    /// region access or a close, on one of the device's fds.
    fn device_of_call(&self, call: &Trapped) -> Option<usize> {
        let not_device = [
            GET_API_VERSION,
            CHECK_EXTENSION,
            SET_IOMMU,
            IOMMU_GET_INFO,
            IOMMU_MAP_DMA,
            IOMMU_UNMAP_DMA,
            IOMMU_IOAS_ALLOC,
            IOMMU_IOAS_MAP,
            IOMMU_IOAS_UNMAP,
            IOMMU_DESTROY,
        ];
        if call.nr == libc::SYS_ioctl && not_device.contains(&call.request) {
            return None;
        }
        self.open_device(call).map(|o| o.dev)
    }

    /// Reconciles device `dev`'s MSI-X table in its BAR memory with the model: before the call
    /// (`before`), what the program wrote through its mapping goes to the device; after it,
    /// the mapping shows the device's table.
    fn sync(&mut self, dev: usize, before: bool) {
        let (Some(Some(mem)), Some(d)) = (self.memory.get_mut(dev), self.devices.get(dev)) else {
            return;
        };
        if before {
            mem.pull(&d.device);
        } else {
            mem.push(&d.device);
        }
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

impl IoctlHandler for VfioHostHandler {
    fn ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
        self.simple_ioctl(call, mem)
    }

    fn handle(&mut self, call: &Trapped, mem: &ChildMemory) -> Reply {
        if call.nr == libc::SYS_mmap {
            return self.mmap(call);
        }
        let dev = self.device_of_call(call);
        if let Some(d) = dev {
            self.sync(d, true);
        }
        let reply = self.dispatch(call, mem);
        if let Some(d) = dev {
            self.sync(d, false);
        }
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
