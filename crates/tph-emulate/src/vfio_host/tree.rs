//! [`FakeVfioTree`]: the `/sys` and `/dev` a supervised child sees, bind-mounted in its private
//! mount namespace.

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use tph_regs::machine::Bdf;

use crate::harness::Sandbox;
use crate::Error;

/// The identity of a file (`st_dev`, `st_ino`): a child's fd names one of the tree's nodes when
/// `/proc/<tid>/fd/<fd>` has the node's identity, whatever path the child opened it by.
pub(crate) type FileId = (u64, u64);

/// What a node of the tree is to the VFIO host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Node {
    /// `/dev/vfio/vfio`: each open is a new container.
    Container,
    /// `/dev/vfio/<group>`.
    Group(u32),
    /// Device N (the index in the tree's device list): the file behind the device fds
    /// `VFIO_GROUP_GET_DEVICE_FD` hands out, which `/dev/vfio/devices/vfioN` is a hard link
    /// of (one file, so every open of the device shares its BAR memory).
    Device(usize),
}

/// What a [`FakeVfioTree`] shows.
///
/// ```
/// let spec = tph_emulate::vfio_host::TreeSpec::default();
/// assert_eq!((spec.cpus, spec.cdev, spec.mirror_host_dev), (8, false, false));
/// assert_eq!(spec.params, [("enable_unsafe_tph_ds_mode".to_string(), false)]);
/// assert!(spec.online.is_none() && spec.functions.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeSpec {
    /// The devices bound to vfio-pci, each with its IOMMU group (one device per group).
    pub devices: Vec<(Bdf, u32)>,
    /// CPUs `0..cpus` are present and possible (`/sys/devices/system/cpu/present`,
    /// `possible`).
    pub cpus: u32,
    /// The CPUs online, ascending (`None`: all of `0..cpus`); only those have a `topology`.
    pub online: Option<Vec<u32>>,
    /// Every PCI function shown in `/sys/bus/pci/devices`, with its configuration space: its
    /// attribute files (`vendor`, `device`, `subsystem_vendor`, `subsystem_device`, `class`,
    /// `revision`, `config`, `resource`, `numa_node`) are written from it. A bound device
    /// missing here still gets its folder (without those files).
    pub functions: Vec<(Bdf, Vec<u8>)>,
    /// vfio-pci's module parameters, name and value (`Y` / `N`).
    pub params: Vec<(String, bool)>,
    /// The kernel also offers each device's cdev (`vfio-dev/vfioN`, `/dev/vfio/devices/vfioN`,
    /// `/dev/iommu`).
    pub cdev: bool,
    /// Every other entry of this machine's `/dev` is visible in the child too (bound over an
    /// empty placeholder), so a general program finds `/dev/null`, `/dev/urandom`, `/dev/shm`
    /// (and `/dev/hugepages`); so is `/sys/kernel/mm/hugepages`.
    pub mirror_host_dev: bool,
}

impl Default for TreeSpec {
    fn default() -> Self {
        Self {
            devices: Vec::new(),
            cpus: 8,
            online: None,
            functions: Vec::new(),
            params: vec![(tph_client::probe::V7_PARAM.to_string(), false)],
            cdev: false,
            mirror_host_dev: false,
        }
    }
}

impl TreeSpec {
    /// The default: no device bound, 8 CPUs all online, no other function, v7's vfio-pci
    /// parameter off, no cdev, this machine's `/dev` hidden.
    pub fn new() -> Self {
        Self::default()
    }

    /// The same with `devices` bound to vfio-pci, each with its IOMMU group.
    #[must_use]
    pub fn with_devices(mut self, devices: Vec<(Bdf, u32)>) -> Self {
        self.devices = devices;
        self
    }

    /// The same with CPUs `0..cpus` present.
    #[must_use]
    pub fn with_cpus(mut self, cpus: u32) -> Self {
        self.cpus = cpus;
        self
    }

    /// The same with only `online` CPUs online (`None`: all of them).
    #[must_use]
    pub fn with_online(mut self, online: Option<Vec<u32>>) -> Self {
        self.online = online;
        self
    }

    /// The same showing `functions` with their configuration space.
    #[must_use]
    pub fn with_functions(mut self, functions: Vec<(Bdf, Vec<u8>)>) -> Self {
        self.functions = functions;
        self
    }

    /// The same with vfio-pci's module parameters `params` (name, value).
    #[must_use]
    pub fn with_params(mut self, params: Vec<(String, bool)>) -> Self {
        self.params = params;
        self
    }

    /// The same offering device cdevs and `/dev/iommu` when `cdev`.
    #[must_use]
    pub fn with_cdev(mut self, cdev: bool) -> Self {
        self.cdev = cdev;
        self
    }

    /// The same showing this machine's other `/dev` entries when `mirror`.
    #[must_use]
    pub fn with_mirror_host_dev(mut self, mirror: bool) -> Self {
        self.mirror_host_dev = mirror;
        self
    }
}

/// A fake `/sys` and `/dev` with VFIO devices, to bind-mount in a supervised child.
#[derive(Debug)]
pub struct FakeVfioTree {
    root: PathBuf,
    spec: TreeSpec,
    /// (host `/dev` entry, its placeholder in the fake `/dev`).
    mirrored: Vec<(PathBuf, PathBuf)>,
}

fn symlink(target: &str, link: &Path) -> std::io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

impl FakeVfioTree {
    /// Creates the trees under `root`, which must not exist yet (it is removed again when the
    /// tree is dropped, so a caller's folder is never taken): vfio-pci loaded with the v7
    /// module parameter, `bdf` bound to vfio-pci in IOMMU group [`super::GROUP`], CPUs
    /// `0..cpus` present, and the VFIO nodes.
    ///
    /// ```
    /// use tph_emulate::vfio_host::FakeVfioTree;
    /// let root = std::env::temp_dir().join(format!("fake-vfio-doc-{}", std::process::id()));
    /// let tree = FakeVfioTree::create(&root, "01:00.0".parse().unwrap(), 8).unwrap();
    /// assert!(root.join("sys/bus/pci/devices/0000:01:00.0/driver").exists());
    /// assert_eq!(tree.sandbox().binds.len(), 2);
    /// ```
    pub fn create(root: impl Into<PathBuf>, bdf: Bdf, cpus: u32) -> Result<Self, Error> {
        let spec = TreeSpec {
            devices: vec![(bdf, super::GROUP)],
            cpus,
            ..TreeSpec::default()
        };
        Self::build(root, spec)
    }

    /// [`FakeVfioTree::create`], and the kernel also offers the device cdev: the device's
    /// `vfio-dev/`[`super::CDEV`] entry, `/dev/vfio/devices/`[`super::CDEV`] and `/dev/iommu`,
    /// so an opener that prefers the cdev takes it.
    ///
    /// ```
    /// use tph_emulate::vfio_host::FakeVfioTree;
    /// let root = std::env::temp_dir().join(format!("fake-vfio-cdev-doc-{}", std::process::id()));
    /// let _tree = FakeVfioTree::create_cdev(&root, "01:00.0".parse().unwrap(), 8).unwrap();
    /// assert!(root.join("sys/bus/pci/devices/0000:01:00.0/vfio-dev/vfio0").is_dir());
    /// assert!(root.join("dev/vfio/devices/vfio0").exists() && root.join("dev/iommu").exists());
    /// ```
    pub fn create_cdev(root: impl Into<PathBuf>, bdf: Bdf, cpus: u32) -> Result<Self, Error> {
        let spec = TreeSpec {
            devices: vec![(bdf, super::GROUP)],
            cpus,
            cdev: true,
            ..TreeSpec::default()
        };
        Self::build(root, spec)
    }

    /// Creates the trees `spec` describes under `root` (which must not exist yet; removed on
    /// drop). Device N of `spec.devices` has the cdev `vfioN`.
    ///
    /// ```
    /// use tph_emulate::vfio_host::{FakeVfioTree, TreeSpec};
    /// let root = std::env::temp_dir().join(format!("fake-vfio-many-doc-{}", std::process::id()));
    /// let spec = TreeSpec::new()
    ///     .with_devices(vec![("01:00.0".parse().unwrap(), 1), ("02:00.0".parse().unwrap(), 2)])
    ///     .with_params(vec![("enable_unsafe_tph".into(), true)]);
    /// let _tree = FakeVfioTree::build(&root, spec).unwrap();
    /// let group = std::fs::read_link(root.join("sys/bus/pci/devices/0000:02:00.0/iommu_group"));
    /// assert!(group.unwrap().ends_with("iommu_groups/2"));
    /// assert!(root.join("sys/kernel/iommu_groups/1/devices/0000:01:00.0").exists());
    /// let param = root.join("sys/module/vfio_pci/parameters/enable_unsafe_tph");
    /// assert_eq!(std::fs::read_to_string(param).unwrap(), "Y\n");
    /// assert!(root.join("dev/vfio/2").exists() && !root.join("dev/iommu").exists());
    /// ```
    pub fn build(root: impl Into<PathBuf>, spec: TreeSpec) -> Result<Self, Error> {
        let root = root.into();
        if root.exists() {
            let source = std::io::Error::from(std::io::ErrorKind::AlreadyExists);
            return Err(Error::Tree { path: root, source });
        }
        let mut tree = Self {
            root,
            spec,
            mirrored: Vec::new(),
        }; // from here, removed on any error
        tree.populate().map_err(|source| Error::Tree {
            path: tree.root.clone(),
            source,
        })?;
        Ok(tree)
    }

    fn populate(&mut self) -> std::io::Result<()> {
        let sys = self.root.join("sys");
        let driver = sys.join("bus/pci/drivers/vfio-pci");
        std::fs::create_dir_all(&driver)?;
        for name in ["bind", "unbind", "new_id", "remove_id", "uevent"] {
            std::fs::write(driver.join(name), b"")?;
        }
        symlink("../../../../module/vfio_pci", &driver.join("module"))?;
        std::fs::create_dir_all(self.root.join("dev/vfio"))?;
        std::fs::create_dir_all(self.root.join("device-files"))?;
        std::fs::write(self.root.join("dev/vfio/vfio"), b"")?;
        for (bdf, config) in &self.spec.functions {
            self.add_function(*bdf, config)?;
        }
        for (i, (bdf, group)) in self.spec.devices.clone().into_iter().enumerate() {
            self.add_device(i, bdf, group)?;
        }
        self.add_modules()?;
        self.add_cpus()?;
        if self.spec.cdev {
            std::fs::write(self.root.join("dev/iommu"), b"")?;
        }
        if self.spec.mirror_host_dev {
            self.mirror_host_dev()?;
        }
        Ok(())
    }

    /// The attribute files of function `bdf` with configuration space `config`, in the
    /// kernel's formats (`drivers/pci/pci-sysfs.c`): IDs as `0x%04x`, the class as `0x%06x`,
    /// the revision as `0x%02x`, the `resource` lines, `config` as many bytes as the function
    /// has (4096 for PCI Express, 256 otherwise), `numa_node` -1 (no NUMA affinity known).
    fn add_function(&self, bdf: Bdf, config: &[u8]) -> std::io::Result<()> {
        let dir = self.root.join("sys/bus/pci/devices").join(bdf.to_string());
        std::fs::create_dir_all(&dir)?;
        let b = |i: usize| config.get(i).copied().unwrap_or(0);
        let w = |i: usize| u16::from_le_bytes([b(i), b(i + 1)]);
        let type0 = b(0x0e) & 0x7f == 0;
        let (ssvid, ssid) = if type0 { (w(0x2c), w(0x2e)) } else { (0, 0) };
        let class = u32::from_le_bytes([b(0x09), b(0x0a), b(0x0b), 0]);
        let layout = super::bars::layout_of(config, bdf);
        let cfg_len = usize::try_from(layout.cfg_size).unwrap_or(256);
        let mut cfg = config.to_vec();
        cfg.resize(cfg_len, 0);
        let files: [(&str, Vec<u8>); 9] = [
            ("vendor", format!("0x{:04x}\n", w(0)).into()),
            ("device", format!("0x{:04x}\n", w(2)).into()),
            ("subsystem_vendor", format!("0x{ssvid:04x}\n").into()),
            ("subsystem_device", format!("0x{ssid:04x}\n").into()),
            ("class", format!("0x{class:06x}\n").into()),
            ("revision", format!("0x{:02x}\n", b(0x08)).into()),
            ("resource", layout.resource_file().into()),
            ("numa_node", b"-1\n".to_vec()),
            ("config", cfg),
        ];
        for (name, bytes) in files {
            std::fs::write(dir.join(name), bytes)?;
        }
        Ok(())
    }

    /// `/sys/module/{vfio,vfio_pci,vfio_iommu_type1}` with their parameters (vfio-pci's TPH
    /// parameter as the spec says; the others at their defaults).
    fn add_modules(&self) -> std::io::Result<()> {
        let module = self.root.join("sys/module");
        let mut params: Vec<(&str, String, String)> = vec![
            ("vfio", "enable_unsafe_noiommu_mode".into(), "N".into()),
            (
                "vfio_iommu_type1",
                "allow_unsafe_interrupts".into(),
                "N".into(),
            ),
            ("vfio_iommu_type1", "disable_hugepages".into(), "N".into()),
            (
                "vfio_iommu_type1",
                "dma_entry_limit".into(),
                super::dma::DMA_ENTRY_LIMIT.to_string(),
            ),
            ("vfio_pci", "ids".into(), String::new()),
            ("vfio_pci", "nointxmask".into(), "N".into()),
            ("vfio_pci", "disable_vga".into(), "N".into()),
            ("vfio_pci", "disable_idle_d3".into(), "N".into()),
            ("vfio_pci", "enable_sriov".into(), "N".into()),
            ("vfio_pci", "disable_denylist".into(), "N".into()),
        ];
        for (name, on) in &self.spec.params {
            let v = if *on { "Y" } else { "N" };
            params.push(("vfio_pci", name.clone(), v.into()));
        }
        for (m, name, value) in params {
            let dir = module.join(m).join("parameters");
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join(name), format!("{value}\n"))?;
        }
        Ok(())
    }

    /// `/sys/devices/system/cpu`: `possible`, `present` (`0..cpus`), `online`, and per CPU its
    /// `online` (not for CPU 0, as on x86) and, when online, its `topology`: one core per CPU,
    /// one package (0) holding them all.
    fn add_cpus(&self) -> std::io::Result<()> {
        let cpu = self.root.join("sys/devices/system/cpu");
        std::fs::create_dir_all(&cpu)?;
        let all: Vec<u32> = (0..self.spec.cpus).collect();
        let online = self.spec.online.clone().unwrap_or_else(|| all.clone());
        let online_list = cpu_list(&online);
        let present = cpu_list(&all);
        std::fs::write(cpu.join("present"), &present)?;
        std::fs::write(cpu.join("possible"), &present)?;
        std::fs::write(cpu.join("online"), &online_list)?;
        for n in all {
            let dir = cpu.join(format!("cpu{n}"));
            std::fs::create_dir_all(&dir)?;
            let up = online.contains(&n);
            if n != 0 {
                std::fs::write(dir.join("online"), if up { "1\n" } else { "0\n" })?;
            }
            if !up {
                continue;
            }
            let topo = dir.join("topology");
            std::fs::create_dir_all(&topo)?;
            let own = format!("{n}\n");
            let files = [
                ("core_id", own.clone()),
                ("physical_package_id", "0\n".to_string()),
                ("die_id", "0\n".to_string()),
                ("core_cpus_list", own.clone()),
                ("thread_siblings_list", own),
                ("core_siblings_list", online_list.clone()),
                ("package_cpus_list", online_list.clone()),
            ];
            for (name, text) in files {
                std::fs::write(topo.join(name), text)?;
            }
        }
        Ok(())
    }

    /// Device `i` at `bdf` bound to vfio-pci in IOMMU group `group`, its group node, its
    /// device file and (with `cdev`) its cdev `vfio<i>`.
    fn add_device(&self, i: usize, bdf: Bdf, group: u32) -> std::io::Result<()> {
        let sys = self.root.join("sys");
        let dev = sys.join("bus/pci/devices").join(bdf.to_string());
        let group_dir = sys.join("kernel/iommu_groups").join(group.to_string());
        std::fs::create_dir_all(&dev)?;
        std::fs::create_dir_all(group_dir.join("devices"))?;
        symlink("../../../../bus/pci/drivers/vfio-pci", &dev.join("driver"))?;
        let from_driver = format!("../../devices/{bdf}");
        symlink(
            &from_driver,
            &sys.join("bus/pci/drivers/vfio-pci").join(bdf.to_string()),
        )?;
        let to_group = format!("../../../../kernel/iommu_groups/{group}");
        symlink(&to_group, &dev.join("iommu_group"))?;
        let to_dev = format!("../../../../bus/pci/devices/{bdf}");
        symlink(&to_dev, &group_dir.join("devices").join(bdf.to_string()))?;
        std::fs::write(self.root.join("dev/vfio").join(group.to_string()), b"")?;
        std::fs::write(self.device_file(i), b"")?;
        if self.spec.cdev {
            let name = format!("vfio{i}");
            std::fs::create_dir_all(dev.join("vfio-dev").join(&name))?;
            std::fs::create_dir_all(self.root.join("dev/vfio/devices"))?;
            let cdev = self.root.join("dev/vfio/devices").join(name);
            std::fs::hard_link(self.device_file(i), cdev)?;
        }
        Ok(())
    }

    /// An empty placeholder in the fake `/dev` for every entry of this machine's `/dev` the
    /// tree does not define itself; symbolic links are copied.
    fn mirror_host_dev(&mut self) -> std::io::Result<()> {
        let dev = self.root.join("dev");
        for entry in std::fs::read_dir("/dev")? {
            let entry = entry?;
            let name = entry.file_name();
            let place = dev.join(&name);
            if name == "vfio" || place.exists() {
                continue;
            }
            let kind = entry.file_type()?;
            if kind.is_symlink() {
                std::os::unix::fs::symlink(std::fs::read_link(entry.path())?, &place)?;
                continue;
            }
            if kind.is_dir() {
                std::fs::create_dir(&place)?;
            } else {
                std::fs::write(&place, b"")?;
            }
            self.mirrored.push((entry.path(), place));
        }
        // The huge page pools, so a program that sizes its memory from them (DPDK's EAL)
        // finds this machine's, next to the emulated /sys.
        let hugepages = Path::new("/sys/kernel/mm/hugepages");
        if hugepages.is_dir() {
            let place = self.root.join("sys/kernel/mm/hugepages");
            std::fs::create_dir_all(&place)?;
            self.mirrored.push((hugepages.to_path_buf(), place));
        }
        Ok(())
    }

    /// The file behind device `i`'s fds.
    pub(crate) fn device_file(&self, i: usize) -> PathBuf {
        self.root.join("device-files").join(i.to_string())
    }

    /// The devices and their groups.
    pub fn devices(&self) -> &[(Bdf, u32)] {
        &self.spec.devices
    }

    /// The identity of every node the host answers for (empty entries are skipped: a node that
    /// cannot be read is one no child can open).
    pub(crate) fn node_ids(&self) -> HashMap<FileId, Node> {
        let dev = self.root.join("dev");
        let mut nodes = vec![(dev.join("vfio/vfio"), Node::Container)];
        for (i, (_, group)) in self.spec.devices.iter().enumerate() {
            nodes.push((
                dev.join("vfio").join(group.to_string()),
                Node::Group(*group),
            ));
            nodes.push((self.device_file(i), Node::Device(i)));
        }
        nodes
            .into_iter()
            .filter_map(|(path, node)| {
                let m = std::fs::metadata(path).ok()?;
                Some(((m.dev(), m.ino()), node))
            })
            .collect()
    }

    /// The bind mounts of this tree over `/sys` and `/dev` (after the mirrored host `/dev`
    /// entries, when asked for), as a [`Sandbox`] that also traps `pread64`/`pwrite64` (region
    /// accesses on the device fd), `mmap` (the rules of mapping a region) and `close` (the
    /// device's release).
    pub fn sandbox(&self) -> Sandbox {
        let mut binds = self.mirrored.clone();
        binds.push((self.root.join("sys"), "/sys".into()));
        binds.push((self.root.join("dev"), "/dev".into()));
        Sandbox {
            syscalls: vec![
                libc::SYS_pread64,
                libc::SYS_pwrite64,
                libc::SYS_mmap,
                libc::SYS_close,
            ],
            binds,
            ..Sandbox::default()
        }
    }
}

/// A CPU list as the kernel prints one (`0-3,5,7-8`), with a newline.
fn cpu_list(cpus: &[u32]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < cpus.len() {
        let mut j = i;
        while j + 1 < cpus.len() && cpus[j + 1] == cpus[j] + 1 {
            j += 1;
        }
        out.push(if j == i {
            cpus[i].to_string()
        } else {
            format!("{}-{}", cpus[i], cpus[j])
        });
        i = j + 1;
    }
    out.join(",") + "\n"
}

impl Drop for FakeVfioTree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_lists_are_ranges_as_the_kernel_prints_them() {
        assert_eq!(cpu_list(&[0, 1, 2, 3]), "0-3\n");
        assert_eq!(cpu_list(&[0, 2, 3, 5]), "0,2-3,5\n");
        assert_eq!(cpu_list(&[7]), "7\n");
    }
}
