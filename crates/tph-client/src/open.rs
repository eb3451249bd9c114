//! Opening a real VFIO device through `vfio-ioctls`: the VFIO device cdev with iommufd
//! (`/dev/vfio/devices/vfioN` bound to `/dev/iommu`) or the legacy group/container
//! (`/dev/vfio/vfio` and `/dev/vfio/<group>`).
//!
//! [`VfioInterface::Auto`] (the default) takes the cdev when the kernel offers one for the device
//! (`/sys/bus/pci/devices/<BDF>/vfio-dev/vfioN`) and the legacy path otherwise; either can be
//! asked for explicitly. Before handing over to `vfio-ioctls`, the opener checks what usually
//! goes wrong and says so in plain words: `/dev/vfio` missing, no such PCI function, the function
//! bound to another driver or none, no IOMMU group, no cdev node, `/dev/iommu` missing, or no
//! permission on a node; and after `vfio-ioctls` fails, `vfio_iommu_type1` not loaded or a
//! group that is not viable. Each message names the command that fixes it.
//!
//! ```
//! use tph_client::open::{open_vfio, VfioPaths};
//! let paths = VfioPaths {
//!     sysfs_root: "/nonexistent/sys".into(),
//!     dev_root: "/nonexistent/dev".into(),
//!     ..VfioPaths::default()
//! };
//! let err = open_vfio("0000:01:00.0", &paths).unwrap_err();
//! assert!(err.to_string().contains("/nonexistent/dev/vfio does not exist"));
//! ```

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::VfioBackend;
use crate::error::Error;

/// Which VFIO interface opens the device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
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
/// assert_eq!("cdev".parse::<VfioInterface>(), Ok(VfioInterface::Cdev));
/// assert_eq!(VfioInterface::Legacy.to_string(), "legacy");
/// assert!("group".parse::<VfioInterface>().is_err());
/// ```
impl std::str::FromStr for VfioInterface {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "cdev" => Ok(Self::Cdev),
            "legacy" => Ok(Self::Legacy),
            _ => Err(format!("unknown VFIO interface {s:?} (auto, cdev, legacy)")),
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// How a checked device will be opened: the nodes the chosen interface needs, all present and
/// openable read-write.
#[derive(Debug, Clone, PartialEq, Eq)]
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

/// `BB:DD.F` or `DDDD:BB:DD.F` as sysfs spells it (`0000:01:00.0`).
///
/// ```
/// assert_eq!(tph_client::open::sysfs_bdf("01:00.0"), "0000:01:00.0");
/// assert_eq!(tph_client::open::sysfs_bdf("0001:02:03.4"), "0001:02:03.4");
/// ```
pub fn sysfs_bdf(bdf: &str) -> String {
    let bdf = bdf.to_ascii_lowercase();
    if bdf.matches(':').count() == 1 {
        format!("0000:{bdf}")
    } else {
        bdf
    }
}

fn link_name(path: &Path) -> Option<String> {
    let target = std::fs::read_link(path).ok()?;
    Some(target.file_name()?.to_string_lossy().into_owned())
}

/// `/dev/vfio` exists, the function exists and is bound to vfio-pci: its sysfs directory.
fn check_bound(bdf: &str, paths: &VfioPaths) -> Result<PathBuf, Error> {
    let vfio_dir = paths.dev_root.join("vfio");
    if !vfio_dir.exists() {
        return Err(Error::NoVfio { path: vfio_dir });
    }
    let bdf = sysfs_bdf(bdf);
    let devices = paths.sysfs_root.join("bus/pci/devices");
    let dev = devices.join(&bdf);
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
/// let paths = VfioPaths { sysfs_root: "/x".into(), dev_root: "/y".into(), ..Default::default() };
/// assert!(check_vfio("01:00.0", &paths).is_err());
/// ```
pub fn check_vfio(bdf: &str, paths: &VfioPaths) -> Result<(PathBuf, String), Error> {
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

fn cdev_plan(bdf: &str, dev: &Path, paths: &VfioPaths) -> Result<OpenPlan, Error> {
    let cdev = cdev_node(dev, paths).ok_or_else(|| Error::NoVfioCdev {
        bdf: sysfs_bdf(bdf),
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
/// let paths = VfioPaths { interface: VfioInterface::Cdev, ..VfioPaths::default() };
/// // Without a device bound to vfio-pci here, this is an error that says what is missing.
/// assert!(plan_vfio("ff:1f.7", &paths).is_err());
/// ```
pub fn plan_vfio(bdf: &str, paths: &VfioPaths) -> Result<OpenPlan, Error> {
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

/// Opens `bdf` (bound to vfio-pci) through `vfio-ioctls`, on the interface [`plan_vfio`]
/// picks, and returns a real-kernel backend.
pub fn open_vfio(bdf: &str, paths: &VfioPaths) -> Result<VfioBackend, Error> {
    match plan_vfio(bdf, paths)? {
        OpenPlan::Legacy { sysfs, group } => open_legacy(&sysfs, &group, paths),
        OpenPlan::Cdev { cdev, iommufd, .. } => open_cdev(&cdev, &iommufd),
    }
}

fn open_legacy(sysfs: &Path, group: &str, paths: &VfioPaths) -> Result<VfioBackend, Error> {
    let container = vfio_ioctls::VfioContainer::new(None)
        .map_err(|e| explain_container(e, &paths.sysfs_root))?;
    let device = vfio_ioctls::VfioDevice::new(sysfs, Arc::new(container), false)
        .map_err(|e| explain_group(e, sysfs, group, &paths.sysfs_root))?;
    Ok(VfioBackend::new(device))
}

/// A container without the type1 IOMMU driver fails its extension check; when the module is not
/// loaded, say so (it has parameters, so `/sys/module/vfio_iommu_type1` exists when built in).
fn explain_container(e: vfio_ioctls::VfioError, sysfs_root: &Path) -> Error {
    use vfio_ioctls::VfioError::{VfioExtension, VfioType1V2};
    let loaded = sysfs_root.join("module/vfio_iommu_type1").exists();
    match e {
        VfioExtension | VfioType1V2 if !loaded => Error::NoIommuType1 { source: e },
        e => Error::Vfio(e),
    }
}

/// A group that is not viable: name the group's other devices bound to a host driver (a
/// bridge's `pcieport` and `pci-stub` do not count, vfio-pci is ours).
fn explain_group(e: vfio_ioctls::VfioError, dev: &Path, group: &str, sysfs_root: &Path) -> Error {
    if !matches!(e, vfio_ioctls::VfioError::GroupViable) {
        return Error::Vfio(e);
    }
    let me = dev.file_name().map(|n| n.to_string_lossy().into_owned());
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
            (host && Some(&bdf) != me.as_ref()).then_some((bdf, driver))
        })
        .collect();
    users.sort();
    Error::GroupNotViable {
        bdf: me.unwrap_or_default(),
        group: group.to_string(),
        users,
    }
}

/// The cdev path: an IOAS in a fresh iommufd, the device bound to that iommufd and attached to
/// the IOAS (as a driver that will do DMA needs), both nodes opened here so that the paths in
/// [`VfioPaths`] are the ones used.
fn open_cdev(cdev: &Path, iommufd: &Path) -> Result<VfioBackend, Error> {
    let iommufd = iommufd_ioctls::IommuFd::new_from_fd(open_rw(iommufd)?);
    let ops = vfio_ioctls::VfioIommufd::new(Arc::new(iommufd), None, None).map_err(Error::Vfio)?;
    let device = vfio_ioctls::VfioDevice::new_from_fd(open_rw(cdev)?, Arc::new(ops), true)
        .map_err(Error::Vfio)?;
    Ok(VfioBackend::new(device))
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let err = check_vfio("01:00.0", &t.paths()).unwrap_err();
        assert!(matches!(err, Error::NoVfio { .. }), "{err}");
    }

    #[test]
    fn check_vfio_unknown_bdf_is_no_such_device() {
        let t = Tree::new("nobdf");
        let err = check_vfio("01:00.0", &t.paths()).unwrap_err();
        assert!(matches!(err, Error::NoSuchDevice { ref bdf, .. } if bdf == "0000:01:00.0"));
    }

    #[test]
    fn check_vfio_other_driver_names_it() {
        let t = Tree::new("igb");
        t.device("0000:01:00.0", Some("igb"));
        let err = check_vfio("01:00.0", &t.paths()).unwrap_err();
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
        let err = check_vfio("01:00.0", &t.paths()).unwrap_err();
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
        let err = check_vfio("01:00.0", &t.paths()).unwrap_err();
        assert!(
            matches!(err, Error::NoIommu { ref bdf } if bdf == "0000:01:00.0"),
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
        let dev = t.0.join("sys/bus/pci/devices/0000:01:00.0");
        let err = explain_group(
            vfio_ioctls::VfioError::GroupViable,
            &dev,
            "7",
            &t.0.join("sys"),
        );
        assert_eq!(
            err.to_string(),
            "IOMMU group 7 of 0000:01:00.0 is not viable: in the same group 0000:01:00.1 is bound \
             to igb (fix: echo 0000:01:00.1 > /sys/bus/pci/drivers/igb/unbind)"
        );
    }

    #[test]
    fn container_extension_failure_without_type1_module_names_modprobe() {
        let t = Tree::new("type1");
        let err = explain_container(vfio_ioctls::VfioError::VfioExtension, &t.0.join("sys"));
        assert!(matches!(err, Error::NoIommuType1 { .. }), "{err}");
        assert!(err.to_string().contains("(fix: modprobe vfio_iommu_type1)"));
        std::fs::create_dir_all(t.0.join("sys/module/vfio_iommu_type1")).unwrap();
        let err = explain_container(vfio_ioctls::VfioError::VfioExtension, &t.0.join("sys"));
        assert!(matches!(err, Error::Vfio(_)), "{err}");
    }

    #[test]
    fn check_vfio_bound_device_missing_group_node_is_no_vfio() {
        let t = Tree::new("nogroup");
        t.device("0000:01:00.0", Some("vfio-pci"));
        let err = check_vfio("01:00.0", &t.paths()).unwrap_err();
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
        let (dev, group) = check_vfio("01:00.0", &t.paths()).unwrap();
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
        assert_eq!(plan_vfio("01:00.0", &t.paths()).unwrap(), cdev_plan_for(&t));
    }

    #[test]
    fn plan_auto_no_vfio_dev_entry_picks_legacy() {
        let t = Tree::new("auto-legacy");
        t.device("0000:01:00.0", Some("vfio-pci"));
        t.legacy_nodes();
        t.iommufd();
        assert!(is_legacy(&plan_vfio("01:00.0", &t.paths()).unwrap()));
    }

    #[test]
    fn plan_auto_cdev_without_iommufd_falls_back_to_legacy() {
        let t = Tree::both("auto-noiommu");
        std::fs::remove_file(t.0.join("dev/iommu")).unwrap();
        assert!(is_legacy(&plan_vfio("01:00.0", &t.paths()).unwrap()));
    }

    #[test]
    fn plan_auto_cdev_unusable_and_no_legacy_reports_the_cdev_error() {
        let t = Tree::both("auto-neither");
        std::fs::remove_file(t.0.join("dev/iommu")).unwrap();
        std::fs::remove_file(t.0.join("dev/vfio/vfio")).unwrap();
        let err = plan_vfio("01:00.0", &t.paths()).unwrap_err();
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
        assert!(is_legacy(&plan_vfio("01:00.0", &t.paths()).unwrap()));
    }

    #[test]
    fn plan_cdev_without_vfio_dev_entry_is_no_vfio_cdev() {
        let t = Tree::new("cdev-noentry");
        t.device("0000:01:00.0", Some("vfio-pci"));
        t.legacy_nodes();
        t.iommufd();
        let err = plan_vfio("01:00.0", &t.with(VfioInterface::Cdev)).unwrap_err();
        assert!(
            matches!(err, Error::NoVfioCdev { ref bdf, ref path }
                if bdf == "0000:01:00.0" && path.ends_with("dev/vfio/devices")),
            "{err}"
        );
    }

    #[test]
    fn plan_cdev_without_iommufd_is_no_iommufd_even_with_legacy_nodes() {
        let t = Tree::both("cdev-noiommu");
        std::fs::remove_file(t.0.join("dev/iommu")).unwrap();
        let err = plan_vfio("01:00.0", &t.with(VfioInterface::Cdev)).unwrap_err();
        assert!(matches!(err, Error::NoIommufd { .. }), "{err}");
    }

    #[test]
    fn plan_cdev_sysfs_entry_without_device_node_is_no_vfio_cdev() {
        // Debian's kernels list vfio-dev/vfioN without CONFIG_VFIO_DEVICE_CDEV (no node).
        let t = Tree::both("cdev-nonode");
        std::fs::remove_file(t.0.join("dev/vfio/devices/vfio3")).unwrap();
        let err = plan_vfio("01:00.0", &t.with(VfioInterface::Cdev)).unwrap_err();
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
        let err = plan_vfio("01:00.0", &t.paths()).unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{err}");
    }

    #[test]
    fn plan_cdev_unwritable_iommufd_is_permission_denied() {
        let t = Tree::both("cdev-eacces");
        t.unwritable("iommu");
        let err = plan_vfio("01:00.0", &t.with(VfioInterface::Cdev)).unwrap_err();
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
        let err = plan_vfio("01:00.0", &t.with(VfioInterface::Cdev)).unwrap_err();
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
        let err = plan_vfio("01:00.0", &t.with(VfioInterface::Cdev)).unwrap_err();
        assert!(matches!(err, Error::NotBoundToVfio { .. }), "{err}");
    }

    #[test]
    fn plan_cdev_two_vfio_dev_entries_is_no_vfio_cdev() {
        let t = Tree::both("cdev-two");
        t.cdev("0000:01:00.0", "vfio4");
        let err = plan_vfio("01:00.0", &t.with(VfioInterface::Cdev)).unwrap_err();
        assert!(matches!(err, Error::NoVfioCdev { .. }), "{err}");
    }

    #[test]
    fn plan_legacy_explicit_ignores_an_offered_cdev() {
        let t = Tree::both("legacy-explicit");
        assert!(is_legacy(
            &plan_vfio("01:00.0", &t.with(VfioInterface::Legacy)).unwrap()
        ));
    }

    #[test]
    fn plan_legacy_unwritable_group_is_permission_denied() {
        let t = Tree::new("legacy-eacces");
        t.device("0000:01:00.0", Some("vfio-pci"));
        t.legacy_nodes();
        t.unwritable("vfio/7");
        let err = plan_vfio("01:00.0", &t.with(VfioInterface::Legacy)).unwrap_err();
        assert!(
            matches!(err, Error::PermissionDenied { ref path, .. } if path.ends_with("vfio/7")),
            "{err}"
        );
    }

    #[test]
    fn open_cdev_on_plain_files_fails_in_vfio_ioctls_not_before() {
        // The nodes exist and open, so the plan is the cdev; the first iommufd ioctl on a plain
        // file is refused (ENOTTY), which vfio-ioctls reports.
        let t = Tree::both("open-plain");
        let err = open_vfio("01:00.0", &t.paths()).unwrap_err();
        assert!(matches!(err, Error::Vfio(_)), "{err}");
        assert!(err.to_string().starts_with("VFIO set-up failed"), "{err}");
    }
}
