//! Opening a real VFIO device, through `vfio-ioctls` (legacy group/container path).
//!
//! Before handing over to `vfio-ioctls`, the opener checks what usually goes wrong and says so in
//! plain words: `/dev/vfio` missing, no such PCI function, the function bound to another driver,
//! or no permission on the VFIO nodes.
//!
//! ```
//! use tph_client::open::{open_vfio, VfioPaths};
//! let paths = VfioPaths { sysfs_root: "/nonexistent/sys".into(), dev_root: "/nonexistent/dev".into() };
//! let err = open_vfio("0000:01:00.0", &paths).unwrap_err();
//! assert!(err.to_string().contains("/nonexistent/dev/vfio does not exist"));
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::backend::VfioBackend;
use crate::error::Error;

/// Where the opener looks: normally `/sys` and `/dev`; tests point these at a fake tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VfioPaths {
    /// The sysfs root.
    pub sysfs_root: PathBuf,
    /// The devtmpfs root.
    pub dev_root: PathBuf,
}

impl Default for VfioPaths {
    fn default() -> Self {
        Self {
            sysfs_root: "/sys".into(),
            dev_root: "/dev".into(),
        }
    }
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

/// Checks the VFIO preconditions for `bdf` and returns the device's sysfs path and IOMMU group.
///
/// ```
/// use tph_client::open::{check_vfio, VfioPaths};
/// let err = check_vfio("01:00.0", &VfioPaths { sysfs_root: "/x".into(), dev_root: "/y".into() });
/// assert!(err.is_err());
/// ```
pub fn check_vfio(bdf: &str, paths: &VfioPaths) -> Result<(PathBuf, String), Error> {
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
    let driver = link_name(&dev.join("driver"));
    if driver.as_deref() != Some("vfio-pci") {
        return Err(Error::NotBoundToVfio { bdf, driver });
    }
    let group = link_name(&dev.join("iommu_group")).ok_or_else(|| Error::Io {
        path: dev.join("iommu_group"),
        source: std::io::Error::from(std::io::ErrorKind::NotFound),
    })?;
    for node in [vfio_dir.join("vfio"), vfio_dir.join(&group)] {
        check_rw(&node)?;
    }
    Ok((dev, group))
}

fn check_rw(node: &Path) -> Result<(), Error> {
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(node)
    {
        Ok(_) => Ok(()),
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

/// Opens `bdf` (bound to vfio-pci) through `vfio-ioctls` and returns a real-kernel backend.
pub fn open_vfio(bdf: &str, paths: &VfioPaths) -> Result<VfioBackend, Error> {
    let (dev, _group) = check_vfio(bdf, paths)?;
    let container = vfio_ioctls::VfioContainer::new(None).map_err(Error::Vfio)?;
    let device =
        vfio_ioctls::VfioDevice::new(&dev, Arc::new(container), false).map_err(Error::Vfio)?;
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
            }
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
            "device 0000:01:00.0 is not bound to vfio-pci (driver: igb)"
        );
    }

    #[test]
    fn check_vfio_no_driver_says_none() {
        let t = Tree::new("nodrv");
        t.device("0000:01:00.0", None);
        let err = check_vfio("01:00.0", &t.paths()).unwrap_err();
        assert!(err.to_string().ends_with("(driver: none)"));
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
}
