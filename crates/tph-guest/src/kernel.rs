//! Debian's cloud kernels as packages: found with `apt-cache`, fetched with `apt-get download`,
//! unpacked with `dpkg-deb -x` (nothing is installed), `modules.dep` made with `busybox depmod`.
//! Unpacked trees are cached under the test's target directory.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The metapackage whose versions name the kernel image packages.
const META: &str = "linux-image-cloud-amd64";

/// A kernel series to boot: `"6.1"` (Debian 12's release) or `"6.12"` (its backports suite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Series(pub &'static str);

/// Debian 12's own kernel.
pub const DEBIAN_6_1: Series = Series("6.1");
/// The kernel of Debian 12's backports suite.
pub const DEBIAN_6_12: Series = Series("6.12");

/// An unpacked kernel image package.
#[derive(Debug, Clone)]
pub struct KernelTree {
    /// The unpacked root (holds `boot/` and `lib/modules/`).
    pub root: PathBuf,
    /// `uname -r` of the kernel.
    pub release: String,
}

impl KernelTree {
    /// The bzImage.
    pub fn vmlinuz(&self) -> PathBuf {
        self.root
            .join("boot")
            .join(format!("vmlinuz-{}", self.release))
    }

    /// The modules directory.
    pub fn modules_dir(&self) -> PathBuf {
        self.root.join("lib/modules").join(&self.release)
    }

    /// `modules.dep` as (module file relative to the modules dir, its dependencies).
    pub fn modules_dep(&self) -> Result<Vec<(String, Vec<String>)>, String> {
        let path = self.modules_dir().join("modules.dep");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))?;
        Ok(parse_modules_dep(&text))
    }

    /// Names of the modules built into the kernel image.
    pub fn builtin(&self) -> BTreeSet<String> {
        let text = std::fs::read_to_string(self.modules_dir().join("modules.builtin"));
        text.unwrap_or_default().lines().map(module_name).collect()
    }

    /// The module files (relative paths) needed to load `names`, dependencies first; a module
    /// built into this kernel needs none.
    pub fn module_closure(&self, names: &[&str]) -> Result<Vec<String>, String> {
        let dep = self.modules_dep()?;
        let builtin = self.builtin();
        let names: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| !builtin.contains(&n.replace('-', "_")))
            .collect();
        let by_name: HashMap<String, &(String, Vec<String>)> =
            dep.iter().map(|e| (module_name(&e.0), e)).collect();
        let mut order = Vec::new();
        let mut seen = BTreeSet::new();
        for name in &names {
            let key = name.replace('-', "_");
            let entry = by_name
                .get(&key)
                .ok_or_else(|| format!("kernel {} has no module {name}", self.release))?;
            // modules.dep lists dependencies so that loading them right to left works.
            for file in entry.1.iter().rev().chain(std::iter::once(&entry.0)) {
                if seen.insert(file.clone()) {
                    order.push(file.clone());
                }
            }
        }
        Ok(order)
    }
}

/// `kernel/drivers/vfio/pci/vfio-pci.ko.xz` -> `vfio_pci` (the name the kernel uses).
pub fn module_name(file: &str) -> String {
    let base = file.rsplit('/').next().unwrap_or(file);
    let base = base.split(".ko").next().unwrap_or(base);
    base.replace('-', "_")
}

fn parse_modules_dep(text: &str) -> Vec<(String, Vec<String>)> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(m, deps)| {
            let deps = deps.split_whitespace().map(str::to_string).collect();
            (m.trim().to_string(), deps)
        })
        .collect()
}

/// The image package and version apt offers for `series`: the first (newest) version of the
/// metapackage that depends on a `linux-image-<series>.` package.
fn find_package(series: Series) -> Result<(String, String), String> {
    let out = Command::new("apt-cache")
        .args(["show", META])
        .output()
        .map_err(|e| format!("running apt-cache: {e}"))?;
    image_package(&String::from_utf8_lossy(&out.stdout), series).ok_or_else(|| {
        format!(
            "apt knows no {META} depending on linux-image-{}.*: run `bash .ci/guest-deps` (adds \
             the backports suite, installs QEMU and busybox-static; as root)",
            series.0
        )
    })
}

/// From `apt-cache show` of the metapackage: the first stanza's `linux-image-<series>.*`
/// dependency, as (package, version).
fn image_package(text: &str, series: Series) -> Option<(String, String)> {
    let prefix = format!("linux-image-{}.", series.0);
    text.split("\n\n")
        .filter_map(|stanza| stanza.lines().find_map(|l| l.strip_prefix("Depends:")))
        .flat_map(|depends| depends.split(','))
        .find_map(|dep| {
            let pkg = dep.split_whitespace().next()?;
            let (_, ver) = dep.split_once("(=")?;
            pkg.starts_with(&prefix).then(|| {
                (
                    pkg.to_string(),
                    ver.trim_end_matches(')').trim().to_string(),
                )
            })
        })
}

/// The unpacked kernel of `series`, fetched into `cache` on first use.
pub fn fetch(cache: &Path, series: Series) -> Result<KernelTree, String> {
    let (pkg, ver) = match find_package(series) {
        Ok(found) => found,
        Err(e) => return cached_any(cache, series).ok_or(e),
    };
    let release = pkg.trim_start_matches("linux-image-").to_string();
    let root = cache.join(format!("{pkg}_{ver}"));
    let tree = KernelTree { root, release };
    if tree.modules_dir().join("modules.dep").is_file() {
        return Ok(tree);
    }
    unpack(cache, &pkg, &ver, &tree)?;
    Ok(tree)
}

/// A tree fetched earlier, when apt cannot say which one is current (no package lists).
fn cached_any(cache: &Path, series: Series) -> Option<KernelTree> {
    let prefix = format!("linux-image-{}.", series.0);
    let entry = std::fs::read_dir(cache)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(&prefix) && !n.contains(".tmp"))
        .max()?;
    let pkg = entry.split('_').next()?;
    let tree = KernelTree {
        root: cache.join(&entry),
        release: pkg.trim_start_matches("linux-image-").to_string(),
    };
    tree.modules_dir()
        .join("modules.dep")
        .is_file()
        .then_some(tree)
}

fn run(cmd: &mut Command) -> Result<(), String> {
    let out = cmd.output().map_err(|e| format!("running {cmd:?}: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// Downloads, unpacks and indexes into a private directory, then renames it into place (two
/// test binaries fetching at once both succeed).
fn unpack(cache: &Path, pkg: &str, ver: &str, tree: &KernelTree) -> Result<(), String> {
    let tmp = cache.join(format!("{pkg}.tmp{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    std::fs::create_dir_all(&tmp).map_err(|e| format!("{}: {e}", tmp.display()))?;
    run(Command::new("apt-get")
        .args(["download", "-q", &format!("{pkg}={ver}")])
        .current_dir(&tmp))?;
    let deb = std::fs::read_dir(&tmp)
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "deb"))
        .ok_or_else(|| format!("apt-get download {pkg} left no .deb"))?;
    let root = tmp.join("root");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root))?;
    let _ = std::fs::remove_file(&deb);
    run(Command::new("busybox")
        .arg("depmod")
        .arg("-b")
        .arg(&root)
        .arg(&tree.release))?;
    if std::fs::rename(&root, &tree.root).is_err() && !tree.root.exists() {
        return Err(format!(
            "could not move the kernel to {}",
            tree.root.display()
        ));
    }
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn module_name_strips_path_and_compression_and_dashes() {
        assert_eq!(
            module_name("kernel/drivers/vfio/pci/vfio-pci.ko.xz"),
            "vfio_pci"
        );
        assert_eq!(module_name("kernel/virt/lib/irqbypass.ko"), "irqbypass");
    }

    /// The shape of `apt-cache show linux-image-cloud-amd64` on Debian 12 with backports.
    const APT_SHOW: &str = "Package: linux-image-cloud-amd64\nVersion: 6.12.95-1~bpo12+1\n\
        Depends: linux-image-6.12.95+deb12-cloud-amd64 (= 6.12.95-1~bpo12+1)\n\n\
        Package: linux-image-cloud-amd64\nVersion: 6.1.192-3\n\
        Depends: linux-image-6.1.0-57-cloud-amd64 (= 6.1.192-3)\n\n\
        Package: linux-image-cloud-amd64\nVersion: 6.1.176-1\n\
        Depends: linux-image-6.1.0-50-cloud-amd64 (= 6.1.176-1)\n";

    #[test]
    fn image_package_takes_the_first_stanza_of_the_series() {
        assert_eq!(
            image_package(APT_SHOW, DEBIAN_6_1),
            Some((
                "linux-image-6.1.0-57-cloud-amd64".into(),
                "6.1.192-3".into()
            ))
        );
        assert_eq!(
            image_package(APT_SHOW, DEBIAN_6_12),
            Some((
                "linux-image-6.12.95+deb12-cloud-amd64".into(),
                "6.12.95-1~bpo12+1".into()
            ))
        );
        // "6.1" must not match a 6.12 package, nor "6.12" a 6.1 one.
        assert_eq!(image_package(APT_SHOW, Series("6.2")), None);
    }

    #[test]
    fn modules_dep_lines_parse_into_module_and_dependencies() {
        let dep = parse_modules_dep("a/x.ko: b/y.ko c/z.ko\nc/z.ko:\n");
        assert_eq!(dep[0].0, "a/x.ko");
        assert_eq!(dep[0].1, ["b/y.ko", "c/z.ko"]);
        assert!(dep[1].1.is_empty());
    }
}
