//! Opening a real VFIO device: the VFIO device cdev with iommufd
//! (`/dev/vfio/devices/vfioN` bound to `/dev/iommu`) or the legacy group/container
//! (`/dev/vfio/vfio` and `/dev/vfio/<group>`).
//!
//! [`VfioInterface::Auto`] (the default) takes the cdev when the kernel offers one for the device
//! (`/sys/bus/pci/devices/<BDF>/vfio-dev/vfioN`) and the legacy path otherwise; either can be
//! asked for explicitly. Before the first ioctl, the opener checks what usually
//! goes wrong and says so in plain words: `/dev/vfio` missing, no such PCI function, the function
//! bound to another driver or none, no IOMMU group, no cdev node, `/dev/iommu` missing, or no
//! permission on a node. Then it makes the standard opening calls itself (raw ioctls, each
//! refusal reported with the kernel's errno and the step it answered; `vfio_iommu_type1` not
//! loaded and a group that is not viable named as such, with the command that fixes them) and
//! hands the driver a [`VfioOpened`]: every fd it opened, owned by the driver, which keeps using
//! them for BARs, DMA and its own interrupts ([`crate::backend::FdBackend`] takes the device fd
//! by reference).
//!
//! ```
//! use tph_client::open::{open_vfio, VfioPaths};
//! let paths = VfioPaths::new()
//!     .with_sysfs_root("/nonexistent/sys")
//!     .with_dev_root("/nonexistent/dev");
//! let err = open_vfio("0000:01:00.0".parse().unwrap(), &paths).unwrap_err();
//! assert!(err.to_string().contains("/nonexistent/dev/vfio does not exist"));
//! ```

use std::ffi::CString;
use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use tph_abi::vfio::{
    AttachIommufdPt, BindIommufd, GroupStatus, IoasAlloc, Request, API_VERSION, GROUP_FLAGS_VIABLE,
    TYPE1V2_IOMMU, TYPE1_IOMMU,
};

use crate::error::{Errno, Error};
use crate::sys;
use crate::Bdf;

/// Which VFIO interface opens the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum VfioInterface {
    /// The device cdev when the kernel offers one for the device, else the legacy path. When the
    /// cdev is offered but cannot be used (no `/dev/iommu`, no permission) the legacy path is
    /// tried; if that fails too, the cdev's error is reported.
    #[default]
    Auto,
    /// The VFIO device cdev bound to an iommufd (`/dev/vfio/devices/vfioN`, `/dev/iommu`).
    Cdev,
    /// The legacy container and group (`/dev/vfio/vfio`, `/dev/vfio/<group>`).
    Legacy,
}

/// `auto`, `cdev`, `legacy`: the names a command line uses.
///
/// ```
/// use tph_client::open::VfioInterface;
/// assert_eq!("cdev".parse::<VfioInterface>().ok(), Some(VfioInterface::Cdev));
/// assert_eq!(VfioInterface::Legacy.to_string(), "legacy");
/// let err = "group".parse::<VfioInterface>().unwrap_err();
/// assert_eq!(err.to_string(), r#"unknown VFIO interface "group" (auto, cdev, legacy)"#);
/// ```
impl std::str::FromStr for VfioInterface {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cdev" => Ok(Self::Cdev),
            "legacy" => Ok(Self::Legacy),
            _ => Err(crate::Error::unknown_name(
                "VFIO interface",
                s,
                "auto, cdev, legacy",
            )),
        }
    }
}

impl std::fmt::Display for VfioInterface {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Cdev => "cdev",
            Self::Legacy => "legacy",
        })
    }
}

/// Where the opener looks (normally `/sys` and `/dev`; tests point these at a fake tree) and
/// which interface it uses.
///
/// `#[non_exhaustive]`: start from [`VfioPaths::new`] (or `Default`) and change what differs.
///
/// ```
/// use tph_client::open::{VfioInterface, VfioPaths};
/// let paths = VfioPaths::new()
///     .with_sysfs_root("/tmp/fake/sys")
///     .with_interface(VfioInterface::Legacy);
/// assert_eq!(paths.sysfs_root.to_str(), Some("/tmp/fake/sys"));
/// assert_eq!(paths.dev_root.to_str(), Some("/dev"));
/// ```
///
/// A struct literal does not compile outside this crate:
///
/// ```compile_fail,E0639
/// use tph_client::open::{VfioInterface, VfioPaths};
/// let p = VfioPaths { sysfs_root: "/sys".into(), dev_root: "/dev".into(), interface: VfioInterface::Auto };
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VfioPaths {
    /// The sysfs root.
    pub sysfs_root: PathBuf,
    /// The devtmpfs root.
    pub dev_root: PathBuf,
    /// The VFIO interface to open the device through.
    pub interface: VfioInterface,
}

impl Default for VfioPaths {
    fn default() -> Self {
        Self {
            sysfs_root: "/sys".into(),
            dev_root: "/dev".into(),
            interface: VfioInterface::Auto,
        }
    }
}

impl VfioPaths {
    /// `/sys` and `/dev`, the interface chosen automatically.
    ///
    /// ```
    /// use tph_client::open::{VfioInterface, VfioPaths};
    /// let p = VfioPaths::new();
    /// assert_eq!((p.sysfs_root.to_str(), p.interface), (Some("/sys"), VfioInterface::Auto));
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The same with the sysfs tree at `root`.
    ///
    /// ```
    /// use tph_client::open::VfioPaths;
    /// assert_eq!(VfioPaths::new().with_sysfs_root("/x").sysfs_root.to_str(), Some("/x"));
    /// ```
    #[must_use]
    pub fn with_sysfs_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.sysfs_root = root.into();
        self
    }

    /// The same with the device nodes under `root`.
    ///
    /// ```
    /// use tph_client::open::VfioPaths;
    /// assert_eq!(VfioPaths::new().with_dev_root("/x/dev").dev_root.to_str(), Some("/x/dev"));
    /// ```
    #[must_use]
    pub fn with_dev_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.dev_root = root.into();
        self
    }

    /// The same opening through `interface`.
    ///
    /// ```
    /// use tph_client::open::{VfioInterface, VfioPaths};
    /// let p = VfioPaths::new().with_interface(VfioInterface::Cdev);
    /// assert_eq!(p.interface, VfioInterface::Cdev);
    /// ```
    #[must_use]
    pub fn with_interface(mut self, interface: VfioInterface) -> Self {
        self.interface = interface;
        self
    }
}

/// How a checked device will be opened: the nodes the chosen interface needs, all present and
/// openable read-write.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum OpenPlan {
    /// Through the device cdev and an iommufd.
    Cdev {
        /// The device's sysfs directory.
        sysfs: PathBuf,
        /// The cdev node (`<dev>/vfio/devices/vfioN`).
        cdev: PathBuf,
        /// The iommufd node (`<dev>/iommu`).
        iommufd: PathBuf,
    },
    /// Through the legacy container and the device's IOMMU group.
    Legacy {
        /// The device's sysfs directory.
        sysfs: PathBuf,
        /// The IOMMU group number, as sysfs names it.
        group: String,
    },
}

fn link_name(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// `/dev/vfio` exists, the function exists and is bound to vfio-pci: its sysfs directory.
fn check_bound(bdf: Bdf, paths: &VfioPaths) -> Result<PathBuf, Error> {
    let vfio_dir = paths.dev_root.join("vfio");
    if !vfio_dir.exists() {
        return Err(Error::NoVfio { path: vfio_dir });
    }
    let devices = paths.sysfs_root.join("bus/pci/devices");
    let dev = devices.join(bdf.to_string());
    if !dev.exists() {
        return Err(Error::NoSuchDevice { bdf, path: devices });
    }
    if link_name(&dev.join("iommu_group")).is_none() {
        return Err(Error::NoIommu { bdf });
    }
    let driver = link_name(&dev.join("driver"));
    if driver.as_deref() != Some("vfio-pci") {
        return Err(Error::NotBoundToVfio { bdf, driver });
    }
    Ok(dev)
}

/// Checks the legacy-path preconditions for `bdf` and returns the device's sysfs path and IOMMU
/// group.
///
/// ```
/// use tph_client::open::{check_vfio, VfioPaths};
/// let paths = VfioPaths::new().with_sysfs_root("/x").with_dev_root("/y");
/// assert!(check_vfio("01:00.0".parse().unwrap(), &paths).is_err());
/// ```
pub fn check_vfio(bdf: Bdf, paths: &VfioPaths) -> Result<(PathBuf, String), Error> {
    let dev = check_bound(bdf, paths)?;
    legacy_group(&dev, paths)
}

fn legacy_group(dev: &Path, paths: &VfioPaths) -> Result<(PathBuf, String), Error> {
    let group = link_name(&dev.join("iommu_group")).ok_or_else(|| Error::Io {
        path: dev.join("iommu_group"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })?;
    let vfio_dir = paths.dev_root.join("vfio");
    for node in [vfio_dir.join("vfio"), vfio_dir.join(&group)] {
        open_rw(&node)?;
    }
    Ok((dev.to_path_buf(), group))
}

/// The cdev name (`vfioN`) the kernel lists for the device, when it lists exactly one.
fn cdev_name(dev: &Path) -> Option<String> {
    let mut names = std::fs::read_dir(dev.join("vfio-dev"))
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("vfio"));
    let name = names.next()?;
    names.next().is_none().then_some(name)
}

/// The cdev node of the device, when the kernel offers one: the sysfs `vfio-dev/vfioN` entry
/// alone is not enough (Debian's 6.1 and 6.12 list it without CONFIG_VFIO_DEVICE_CDEV, and
/// then `/dev/vfio/devices/vfioN` does not exist).
fn cdev_node(dev: &Path, paths: &VfioPaths) -> Option<PathBuf> {
    let node = paths.dev_root.join("vfio/devices").join(cdev_name(dev)?);
    node.exists().then_some(node)
}

fn cdev_plan(bdf: Bdf, dev: &Path, paths: &VfioPaths) -> Result<OpenPlan, Error> {
    let cdev = cdev_node(dev, paths).ok_or_else(|| Error::NoVfioCdev {
        bdf,
        path: paths.dev_root.join("vfio/devices"),
    })?;
    let iommufd = paths.dev_root.join("iommu");
    if !iommufd.exists() {
        return Err(Error::NoIommufd { path: iommufd });
    }
    for node in [&iommufd, &cdev] {
        open_rw(node)?;
    }
    Ok(OpenPlan::Cdev {
        sysfs: dev.to_path_buf(),
        cdev,
        iommufd,
    })
}

fn legacy_plan(dev: &Path, paths: &VfioPaths) -> Result<OpenPlan, Error> {
    let (sysfs, group) = legacy_group(dev, paths)?;
    Ok(OpenPlan::Legacy { sysfs, group })
}

/// Checks everything the chosen interface needs for `bdf` and says how it will be opened.
///
/// ```
/// use tph_client::open::{plan_vfio, VfioInterface, VfioPaths};
/// let paths = VfioPaths::new().with_interface(VfioInterface::Cdev);
/// // Without a device bound to vfio-pci here, this is an error that says what is missing.
/// assert!(plan_vfio("ff:1f.7".parse().unwrap(), &paths).is_err());
/// ```
pub fn plan_vfio(bdf: Bdf, paths: &VfioPaths) -> Result<OpenPlan, Error> {
    let dev = check_bound(bdf, paths)?;
    match paths.interface {
        VfioInterface::Cdev => cdev_plan(bdf, &dev, paths),
        VfioInterface::Legacy => legacy_plan(&dev, paths),
        VfioInterface::Auto if cdev_node(&dev, paths).is_none() => legacy_plan(&dev, paths),
        VfioInterface::Auto => {
            cdev_plan(bdf, &dev, paths).or_else(|e| legacy_plan(&dev, paths).map_err(|_| e))
        }
    }
}

/// Opens `node` read-write, naming a refusal in user terms.
fn open_rw(node: &Path) -> Result<File, Error> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(node)
    {
        Ok(f) => Ok(f),
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(Error::PermissionDenied {
                path: node.to_path_buf(),
                source: e,
            })
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NoVfio {
            path: node.to_path_buf(),
        }),
        Err(source) => Err(Error::Io {
            path: node.to_path_buf(),
            source,
        }),
    }
}

/// A VFIO device opened by [`open_vfio`]: the device fd and everything opened to reach it, all
/// owned by the caller (drop it to close them). It is `AsFd` (the device fd), so
/// `FdBackend::new(&opened)` puts TPH on top while the driver keeps the device.
#[derive(Debug)]
pub struct VfioOpened {
    device: OwnedFd,
    container: Option<OwnedFd>,
    group: Option<OwnedFd>,
    iommufd: Option<OwnedFd>,
    ioas_id: Option<u32>,
}

impl VfioOpened {
    /// The device fd (regions, interrupts, TPH).
    pub fn device(&self) -> BorrowedFd<'_> {
        self.device.as_fd()
    }

    /// The legacy container fd (for `VFIO_IOMMU_MAP_DMA`), on the legacy path.
    pub fn container(&self) -> Option<BorrowedFd<'_>> {
        self.container.as_ref().map(AsFd::as_fd)
    }

    /// The IOMMU group fd, on the legacy path.
    pub fn group(&self) -> Option<BorrowedFd<'_>> {
        self.group.as_ref().map(AsFd::as_fd)
    }

    /// The iommufd and the IOAS the device is attached to, on the cdev path (for
    /// `IOMMU_IOAS_MAP`).
    pub fn iommufd(&self) -> Option<(BorrowedFd<'_>, u32)> {
        Some((self.iommufd.as_ref()?.as_fd(), self.ioas_id?))
    }

    /// The device fd, given back as the only fd kept (the others are closed).
    pub fn into_device(self) -> OwnedFd {
        self.device
    }
}

impl AsFd for VfioOpened {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.device.as_fd()
    }
}

/// Opens `bdf` (bound to vfio-pci) on the interface [`plan_vfio`] picks, with the standard VFIO
/// opening sequence, and gives the caller every fd it opened.
///
/// ```no_run
/// use tph_client::backend::FdBackend;
/// use tph_client::open::{open_vfio, VfioPaths};
/// use tph_client::{Probe, TphDevice};
/// let opened = open_vfio("0000:01:00.0".parse().unwrap(), &VfioPaths::default()).unwrap();
/// let mut tph = TphDevice::with_probe(FdBackend::new(&opened), &Probe::default()).unwrap();
/// println!("{:?}", tph.capabilities());
/// // `opened` still belongs to the driver: BAR mmap, DMA, interrupts.
/// ```
pub fn open_vfio(bdf: Bdf, paths: &VfioPaths) -> Result<VfioOpened, Error> {
    match plan_vfio(bdf, paths)? {
        OpenPlan::Legacy { group, .. } => open_legacy(bdf, &group, paths),
        OpenPlan::Cdev { cdev, iommufd, .. } => open_cdev(&cdev, &iommufd),
    }
}

fn step(step: &'static str) -> impl Fn(Errno) -> Error {
    move |errno| Error::VfioSetup { step, errno }
}

/// The legacy sequence: container (API version, a type1 IOMMU), group (viable, into the
/// container), IOMMU type, then the device fd by name.
fn open_legacy(bdf: Bdf, group: &str, paths: &VfioPaths) -> Result<VfioOpened, Error> {
    let vfio = paths.dev_root.join("vfio");
    let container = OwnedFd::from(open_rw(&vfio.join("vfio"))?);
    let version = sys::ioctl_none(container.as_fd(), Request::GetApiVersion)
        .map_err(step("VFIO_GET_API_VERSION"))?;
    if version != API_VERSION {
        return Err(Error::VfioApiVersion { version });
    }
    let iommu = pick_type1(container.as_fd())?;
    let group_fd = OwnedFd::from(open_rw(&vfio.join(group))?);
    check_viable(group_fd.as_fd(), bdf, group, paths)?;
    sys::group_set_container(group_fd.as_fd(), container.as_fd())
        .map_err(step("VFIO_GROUP_SET_CONTAINER"))?;
    sys::ioctl_value(container.as_fd(), Request::SetIommu, iommu)
        .map_err(step("VFIO_SET_IOMMU"))?;
    let name = CString::new(bdf.to_string()).map_err(|_| step("device name")(Errno::EINVAL))?;
    let device = sys::group_get_device_fd(group_fd.as_fd(), &name)
        .map_err(step("VFIO_GROUP_GET_DEVICE_FD"))?;
    Ok(VfioOpened {
        device,
        container: Some(container),
        group: Some(group_fd),
        iommufd: None,
        ioas_id: None,
    })
}

/// Type1v2 when the container offers it, else type1; neither means the type1 IOMMU driver is
/// not loaded (`VFIO_CHECK_EXTENSION` answers 0 for both).
fn pick_type1(container: BorrowedFd<'_>) -> Result<u32, Error> {
    for iommu in [TYPE1V2_IOMMU, TYPE1_IOMMU] {
        let offered = sys::ioctl_value(container, Request::CheckExtension, iommu)
            .map_err(step("VFIO_CHECK_EXTENSION"))?;
        if offered > 0 {
            return Ok(iommu);
        }
    }
    Err(Error::NoIommuType1)
}

/// `VFIO_GROUP_GET_STATUS`: a group is viable when every device in it is bound to vfio (or to
/// no driver); otherwise name the devices that are not.
fn check_viable(
    group_fd: BorrowedFd<'_>,
    bdf: Bdf,
    group: &str,
    paths: &VfioPaths,
) -> Result<(), Error> {
    let mut status = GroupStatus::query().to_bytes();
    sys::ioctl_buf(group_fd, Request::GroupGetStatus, &mut status)
        .map_err(step("VFIO_GROUP_GET_STATUS"))?;
    let flags = GroupStatus::from_bytes(&status).map_or(0, |g| g.flags);
    if flags & GROUP_FLAGS_VIABLE != 0 {
        return Ok(());
    }
    Err(Error::GroupNotViable {
        bdf,
        group: group.to_string(),
        users: group_users(&bdf.to_string(), group, &paths.sysfs_root),
    })
}

/// The other devices of IOMMU group `group` bound to a host driver, with that driver (a
/// bridge's `pcieport` and `pci-stub` do not count, vfio-pci is ours).
fn group_users(me: &str, group: &str, sysfs_root: &Path) -> Vec<(String, String)> {
    let members = sysfs_root
        .join("kernel/iommu_groups")
        .join(group)
        .join("devices");
    let mut users: Vec<(String, String)> = std::fs::read_dir(members)
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|m| {
            let bdf = m.file_name().to_string_lossy().into_owned();
            let driver = link_name(&m.path().join("driver"))?;
            let host = !["vfio-pci", "pci-stub", "pcieport"].contains(&driver.as_str());
            (host && bdf != me).then_some((bdf, driver))
        })
        .collect();
    users.sort();
    users
}

/// The cdev sequence: an IOAS in a fresh iommufd, the device bound to that iommufd and attached
/// to the IOAS (as a driver that will do DMA needs), both nodes opened here so that the paths in
/// [`VfioPaths`] are the ones used.
fn open_cdev(cdev: &Path, iommufd: &Path) -> Result<VfioOpened, Error> {
    let iommu = OwnedFd::from(open_rw(iommufd)?);
    let mut alloc = IoasAlloc::query().to_bytes();
    sys::ioctl_buf(iommu.as_fd(), Request::IommuIoasAlloc, &mut alloc)
        .map_err(step("IOMMU_IOAS_ALLOC"))?;
    let ioas_id = IoasAlloc::from_bytes(&alloc).map_or(0, |a| a.out_ioas_id);
    let device = OwnedFd::from(open_rw(cdev)?);
    let mut bind = BindIommufd::to(std::os::fd::AsRawFd::as_raw_fd(&iommu)).to_bytes();
    sys::ioctl_buf(device.as_fd(), Request::DeviceBindIommufd, &mut bind)
        .map_err(step("VFIO_DEVICE_BIND_IOMMUFD"))?;
    let mut attach = AttachIommufdPt::to(ioas_id).to_bytes();
    sys::ioctl_buf(device.as_fd(), Request::DeviceAttachIommufdPt, &mut attach)
        .map_err(step("VFIO_DEVICE_ATTACH_IOMMUFD_PT"))?;
    Ok(VfioOpened {
        device,
        container: None,
        group: None,
        iommufd: Some(iommu),
        ioas_id: Some(ioas_id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Bdf {
        s.parse().unwrap()
    }

    struct Tree(PathBuf);

    impl Tree {
        fn new(name: &str) -> Self {
            let root = std::env::temp_dir().join(format!("tph-open-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&root);
            std::fs::create_dir_all(root.join("dev/vfio")).unwrap();
            std::fs::create_dir_all(root.join("sys/bus/pci/devices")).unwrap();
            Tree(root)
        }

        fn paths(&self) -> VfioPaths {
            VfioPaths {
                sysfs_root: self.0.join("sys"),
                dev_root: self.0.join("dev"),
                interface: VfioInterface::Auto,
            }
        }

        fn with(&self, interface: VfioInterface) -> VfioPaths {
            VfioPaths {
                interface,
                ..self.paths()
            }
        }

        /// The legacy container and group 7 nodes.
        fn legacy_nodes(&self) {
            std::fs::write(self.0.join("dev/vfio/vfio"), b"").unwrap();
            std::fs::write(self.0.join("dev/vfio/7"), b"").unwrap();
        }

        /// The kernel lists cdev `name` for the device (and `/dev` has its node).
        fn cdev(&self, bdf: &str, name: &str) {
            let d = self.0.join("sys/bus/pci/devices").join(bdf);
            std::fs::create_dir_all(d.join("vfio-dev").join(name)).unwrap();
            std::fs::create_dir_all(self.0.join("dev/vfio/devices")).unwrap();
            std::fs::write(self.0.join("dev/vfio/devices").join(name), b"").unwrap();
        }

        fn iommufd(&self) {
            std::fs::write(self.0.join("dev/iommu"), b"").unwrap();
        }

        /// `dev/<node>` becomes a file nobody may open for writing, root included: sysfs
        /// refuses read-only attributes with EACCES whatever the caller's capabilities.
        fn unwritable(&self, node: &str) {
            let path = self.0.join("dev").join(node);
            let _ = std::fs::remove_file(&path);
            std::os::unix::fs::symlink("/sys/devices/system/cpu/possible", path).unwrap();
        }

        /// A bound device offering both interfaces.
        fn both(name: &str) -> Self {
            let t = Tree::new(name);
            t.device("0000:01:00.0", Some("vfio-pci"));
            t.legacy_nodes();
            t.cdev("0000:01:00.0", "vfio3");
            t.iommufd();
            t
        }

        fn device(&self, bdf: &str, driver: Option<&str>) {
            let d = self.0.join("sys/bus/pci/devices").join(bdf);
            std::fs::create_dir_all(&d).unwrap();
            if let Some(drv) = driver {
                std::os::unix::fs::symlink(
                    format!("../../bus/pci/drivers/{drv}"),
                    d.join("driver"),
                )
                .unwrap();
            }
            std::os::unix::fs::symlink("../../kernel/iommu_groups/7", d.join("iommu_group"))
                .unwrap();
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn check_vfio_missing_dev_vfio_says_so() {
        let t = Tree::new("nodev");
        std::fs::remove_dir(t.0.join("dev/vfio")).unwrap();
        let err = check_vfio(b("01:00.0"), &t.paths()).unwrap_err();
        assert!(matches!(err, Error::NoVfio { .. }), "{err}");
    }

    #[test]
    fn check_vfio_unknown_bdf_is_no_such_device() {
        let t = Tree::new("nobdf");
        let err = check_vfio(b("01:00.0"), &t.paths()).unwrap_err();
        assert!(
            matches!(err, Error::NoSuchDevice { ref bdf, .. } if bdf.to_string() == "0000:01:00.0")
        );
    }

    #[test]
    fn check_vfio_other_driver_names_it() {
        let t = Tree::new("igb");
        t.device("0000:01:00.0", Some("igb"));
        let err = check_vfio(b("01:00.0"), &t.paths()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "device 0000:01:00.0 is not bound to vfio-pci (driver: igb) (fix: echo 0000:01:00.0 > \
             /sys/bus/pci/drivers/igb/unbind; echo vfio-pci > \
             /sys/bus/pci/devices/0000:01:00.0/driver_override; echo 0000:01:00.0 > \
             /sys/bus/pci/drivers_probe)"
        );
    }

    #[test]
    fn check_vfio_no_driver_says_none() {
        let t = Tree::new("nodrv");
        t.device("0000:01:00.0", None);
        let err = check_vfio(b("01:00.0"), &t.paths()).unwrap_err();
        assert!(
            err.to_string()
                .contains("(driver: none) (fix: echo vfio-pci > "),
            "{err}"
        );
    }

    #[test]
    fn check_vfio_device_without_iommu_group_is_no_iommu() {
        let t = Tree::new("noiommu");
        t.device("0000:01:00.0", None);
        std::fs::remove_file(t.0.join("sys/bus/pci/devices/0000:01:00.0/iommu_group")).unwrap();
        let err = check_vfio(b("01:00.0"), &t.paths()).unwrap_err();
        assert!(
            matches!(err, Error::NoIommu { ref bdf } if bdf.to_string() == "0000:01:00.0"),
            "{err}"
        );
        assert!(err.to_string().contains("intel_iommu=on"), "{err}");
    }

    #[test]
    fn group_not_viable_names_the_host_driver_user_and_its_unbind() {
        let t = Tree::new("viable");
        let members = t.0.join("sys/kernel/iommu_groups/7/devices");
        std::fs::create_dir_all(&members).unwrap();
        for (bdf, driver) in [("0000:01:00.0", "vfio-pci"), ("0000:01:00.1", "igb")] {
            t.device(bdf, Some(driver));
            let dev = t.0.join("sys/bus/pci/devices").join(bdf);
            std::os::unix::fs::symlink(&dev, members.join(bdf)).unwrap();
        }
        let err = Error::GroupNotViable {
            bdf: b("0000:01:00.0"),
            group: "7".into(),
            users: group_users("0000:01:00.0", "7", &t.0.join("sys")),
        };
        assert_eq!(
            err.to_string(),
            "IOMMU group 7 of 0000:01:00.0 is not viable: in the same group 0000:01:00.1 is bound \
             to igb (fix: echo 0000:01:00.1 > /sys/bus/pci/drivers/igb/unbind)"
        );
    }

    #[test]
    fn no_type1_iommu_message_names_modprobe() {
        // The opener answers this when VFIO_CHECK_EXTENSION offers neither type1 (the real
        // kernels in the guest tests exercise the check itself).
        let err = Error::NoIommuType1;
        assert!(
            err.to_string().contains("(fix: modprobe vfio_iommu_type1)"),
            "{err}"
        );
    }

    #[test]
    fn check_vfio_bound_device_missing_group_node_is_no_vfio() {
        let t = Tree::new("nogroup");
        t.device("0000:01:00.0", Some("vfio-pci"));
        let err = check_vfio(b("01:00.0"), &t.paths()).unwrap_err();
        assert!(
            matches!(err, Error::NoVfio { ref path } if path.ends_with("vfio/vfio")),
            "{err}"
        );
    }

    #[test]
    fn check_vfio_bound_device_with_nodes_passes() {
        let t = Tree::new("ok");
        t.device("0000:01:00.0", Some("vfio-pci"));
        std::fs::write(t.0.join("dev/vfio/vfio"), b"").unwrap();
        std::fs::write(t.0.join("dev/vfio/7"), b"").unwrap();
        let (dev, group) = check_vfio(b("01:00.0"), &t.paths()).unwrap();
        assert!(dev.ends_with("0000:01:00.0"));
        assert_eq!(group, "7");
    }

    fn cdev_plan_for(t: &Tree) -> OpenPlan {
        OpenPlan::Cdev {
            sysfs: t.0.join("sys/bus/pci/devices/0000:01:00.0"),
            cdev: t.0.join("dev/vfio/devices/vfio3"),
            iommufd: t.0.join("dev/iommu"),
        }
    }

    fn is_legacy(plan: &OpenPlan) -> bool {
        matches!(plan, OpenPlan::Legacy { group, .. } if group == "7")
    }

    #[test]
    fn plan_auto_cdev_offered_with_iommufd_picks_cdev() {
        let t = Tree::both("auto-cdev");
        assert_eq!(
            plan_vfio(b("01:00.0"), &t.paths()).unwrap(),
            cdev_plan_for(&t)
        );
    }

    #[test]
    fn plan_auto_no_vfio_dev_entry_picks_legacy() {
        let t = Tree::new("auto-legacy");
        t.device("0000:01:00.0", Some("vfio-pci"));
        t.legacy_nodes();
        t.iommufd();
        assert!(is_legacy(&plan_vfio(b("01:00.0"), &t.paths()).unwrap()));
    }

    #[test]
    fn plan_auto_cdev_without_iommufd_falls_back_to_legacy() {
        let t = Tree::both("auto-noiommu");
        std::fs::remove_file(t.0.join("dev/iommu")).unwrap();
        assert!(is_legacy(&plan_vfio(b("01:00.0"), &t.paths()).unwrap()));
    }

    #[test]
    fn plan_auto_cdev_unusable_and_no_legacy_reports_the_cdev_error() {
        let t = Tree::both("auto-neither");
        std::fs::remove_file(t.0.join("dev/iommu")).unwrap();
        std::fs::remove_file(t.0.join("dev/vfio/vfio")).unwrap();
        let err = plan_vfio(b("01:00.0"), &t.paths()).unwrap_err();
        assert!(
            matches!(err, Error::NoIommufd { ref path } if path.ends_with("dev/iommu")),
            "{err}"
        );
        assert!(err.to_string().contains("no iommufd"), "{err}");
    }

    #[test]
    fn plan_auto_cdev_permission_denied_falls_back_to_legacy() {
        let t = Tree::both("auto-eacces");
        t.unwritable("iommu");
        assert!(is_legacy(&plan_vfio(b("01:00.0"), &t.paths()).unwrap()));
    }

    #[test]
    fn plan_cdev_without_vfio_dev_entry_is_no_vfio_cdev() {
        let t = Tree::new("cdev-noentry");
        t.device("0000:01:00.0", Some("vfio-pci"));
        t.legacy_nodes();
        t.iommufd();
        let err = plan_vfio(b("01:00.0"), &t.with(VfioInterface::Cdev)).unwrap_err();
        assert!(
            matches!(err, Error::NoVfioCdev { ref bdf, ref path }
                if bdf.to_string() == "0000:01:00.0" && path.ends_with("dev/vfio/devices")),
            "{err}"
        );
    }

    #[test]
    fn plan_cdev_without_iommufd_is_no_iommufd_even_with_legacy_nodes() {
        let t = Tree::both("cdev-noiommu");
        std::fs::remove_file(t.0.join("dev/iommu")).unwrap();
        let err = plan_vfio(b("01:00.0"), &t.with(VfioInterface::Cdev)).unwrap_err();
        assert!(matches!(err, Error::NoIommufd { .. }), "{err}");
    }

    #[test]
    fn plan_cdev_sysfs_entry_without_device_node_is_no_vfio_cdev() {
        // Debian's kernels list vfio-dev/vfioN without CONFIG_VFIO_DEVICE_CDEV (no node).
        let t = Tree::both("cdev-nonode");
        std::fs::remove_file(t.0.join("dev/vfio/devices/vfio3")).unwrap();
        let err = plan_vfio(b("01:00.0"), &t.with(VfioInterface::Cdev)).unwrap_err();
        assert!(
            matches!(err, Error::NoVfioCdev { ref path, .. } if path.ends_with("vfio/devices")),
            "{err}"
        );
    }

    #[test]
    fn plan_auto_sysfs_entry_without_node_and_unwritable_group_is_permission_denied() {
        // A plain user on such a kernel: the legacy group's refusal, not a missing iommufd.
        let t = Tree::both("auto-nonode-eacces");
        std::fs::remove_file(t.0.join("dev/vfio/devices/vfio3")).unwrap();
        std::fs::remove_file(t.0.join("dev/iommu")).unwrap();
        t.unwritable("vfio/7");
        let err = plan_vfio(b("01:00.0"), &t.paths()).unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    }

    #[test]
    fn plan_cdev_unwritable_iommufd_is_permission_denied() {
        let t = Tree::both("cdev-eacces");
        t.unwritable("iommu");
        let err = plan_vfio(b("01:00.0"), &t.with(VfioInterface::Cdev)).unwrap_err();
        assert!(
            matches!(err, Error::PermissionDenied { ref path, .. } if path.ends_with("dev/iommu")),
            "{err}"
        );
        assert!(err.to_string().starts_with("permission denied opening"));
    }

    #[test]
    fn plan_cdev_unwritable_device_node_is_permission_denied() {
        let t = Tree::both("cdev-node-eacces");
        t.unwritable("vfio/devices/vfio3");
        let err = plan_vfio(b("01:00.0"), &t.with(VfioInterface::Cdev)).unwrap_err();
        assert!(
            matches!(err, Error::PermissionDenied { ref path, .. } if path.ends_with("vfio3")),
            "{err}"
        );
    }

    #[test]
    fn plan_cdev_other_driver_is_not_bound() {
        let t = Tree::new("cdev-igb");
        t.device("0000:01:00.0", Some("igb"));
        t.cdev("0000:01:00.0", "vfio3");
        t.iommufd();
        let err = plan_vfio(b("01:00.0"), &t.with(VfioInterface::Cdev)).unwrap_err();
        assert!(matches!(err, Error::NotBoundToVfio { .. }), "{err}");
    }

    #[test]
    fn plan_cdev_two_vfio_dev_entries_is_no_vfio_cdev() {
        let t = Tree::both("cdev-two");
        t.cdev("0000:01:00.0", "vfio4");
        let err = plan_vfio(b("01:00.0"), &t.with(VfioInterface::Cdev)).unwrap_err();
        assert!(matches!(err, Error::NoVfioCdev { .. }), "{err}");
    }

    #[test]
    fn plan_legacy_explicit_ignores_an_offered_cdev() {
        let t = Tree::both("legacy-explicit");
        assert!(is_legacy(
            &plan_vfio(b("01:00.0"), &t.with(VfioInterface::Legacy)).unwrap()
        ));
    }

    #[test]
    fn plan_legacy_unwritable_group_is_permission_denied() {
        let t = Tree::new("legacy-eacces");
        t.device("0000:01:00.0", Some("vfio-pci"));
        t.legacy_nodes();
        t.unwritable("vfio/7");
        let err = plan_vfio(b("01:00.0"), &t.with(VfioInterface::Legacy)).unwrap_err();
        assert!(
            matches!(err, Error::PermissionDenied { ref path, .. } if path.ends_with("vfio/7")),
            "{err}"
        );
    }

    #[test]
    fn open_cdev_on_plain_files_names_the_refused_step_and_errno() {
        // The nodes exist and open, so the plan is the cdev; the first iommufd ioctl on a plain
        // file is refused by the kernel with ENOTTY.
        let t = Tree::both("open-plain");
        let err = open_vfio(b("01:00.0"), &t.paths()).unwrap_err();
        assert!(
            matches!(err, Error::VfioSetup { step: "IOMMU_IOAS_ALLOC", errno } if errno.0 == libc::ENOTTY),
            "{err}"
        );
        assert_eq!(
            err.to_string(),
            "VFIO set-up failed at IOMMU_IOAS_ALLOC: ENOTTY (25)"
        );
    }

    #[test]
    fn open_legacy_on_plain_files_stops_at_the_api_version() {
        let t = Tree::both("open-plain-legacy");
        let err = open_vfio(b("01:00.0"), &t.with(VfioInterface::Legacy)).unwrap_err();
        assert!(
            matches!(
                err,
                Error::VfioSetup {
                    step: "VFIO_GET_API_VERSION",
                    ..
                }
            ),
            "{err}"
        );
    }
}
