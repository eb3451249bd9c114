//! The real-kernel rig of `.ci/guest-deps`: QEMU 11.1 (with its vfio-user client) run inside a
//! trixie root with `chroot`, a 7.3 guest kernel built with the TPH core, its module build tree,
//! and the rig's guest files (the root-port completer stand-in, `tph_rootport.ko`).
//!
//! `bash .ci/guest-deps --print` says where each part is; [`Rig::load`] reads that. Everything a
//! rig guest's QEMU sees (kernel, initramfs, sockets, console files) lives under
//! [`Rig::qemu_root`] and is named to QEMU by its path relative to it ([`Rig::guest_path`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::kernel::Series;

/// The series name rig guests report.
pub const RIG_7_3: Series = Series("7.3");

/// The guest test module's sources (GPL), built against [`Rig::kbuild`] by [`Rig::build_module`].
pub const TEST_MODULE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/module");

/// What `.ci/guest-deps --print` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rig {
    /// The words that start QEMU 11.1 (`chroot ROOT qemu-system-x86_64`).
    pub qemu: Vec<String>,
    /// The directory QEMU sees as `/`.
    pub qemu_root: PathBuf,
    /// The guest kernel (bzImage), a host path.
    pub kernel: PathBuf,
    /// The kernel's module build tree (`make -C KBUILD M=DIR`).
    pub kbuild: PathBuf,
    /// `uname -r` of the guest kernel.
    pub release: String,
    /// A `-device` value (without `id`, `chassis` and `slot`) for a root port.
    pub root_port: String,
    /// A directory whose files the guest needs at `/rig/`.
    pub guest_files: PathBuf,
    /// The guest's first command: root ports report the completer "TPH only".
    pub guest_prep: String,
}

impl Rig {
    /// The rig of this checkout (`bash .ci/guest-deps --print`), or why there is none.
    pub fn load() -> Result<Self, String> {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/guest-deps");
        let out = Command::new("bash")
            .arg(&script)
            .arg("--print")
            .output()
            .map_err(|e| format!("running bash {} --print: {e}", script.display()))?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_string());
        }
        let rig = Self::parse(&String::from_utf8_lossy(&out.stdout))?;
        for path in [&rig.qemu_root, &rig.kernel, &rig.kbuild, &rig.guest_files] {
            if !path.exists() {
                return Err(format!(
                    "the rig names {} but it is missing: run `bash .ci/guest-deps` as root",
                    path.display()
                ));
            }
        }
        Ok(rig)
    }

    /// Parses the `KEY=VALUE` lines of `--print`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let map: HashMap<&str, &str> = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        let get = |k: &str| {
            map.get(k)
                .map(|v| v.to_string())
                .ok_or_else(|| format!("guest-deps --print names no {k}"))
        };
        let qemu: Vec<String> = get("QEMU")?.split_whitespace().map(String::from).collect();
        if qemu.is_empty() {
            return Err("guest-deps --print: QEMU is empty".into());
        }
        Ok(Self {
            qemu,
            qemu_root: get("QEMU_ROOT")?.into(),
            kernel: get("KERNEL")?.into(),
            kbuild: get("KBUILD")?.into(),
            release: get("KERNEL_RELEASE")?,
            root_port: get("TPH_ROOT_PORT")?,
            guest_files: get("GUEST_FILES")?.into(),
            guest_prep: get("GUEST_PREP")?,
        })
    }

    /// A fresh directory under the QEMU root for one guest's files (the caller removes it).
    pub fn work_dir(&self, tag: &str) -> Result<PathBuf, String> {
        let dir = self.qemu_root.join("tmp").join(format!(
            "tph-guest-{tag}-{}-{}",
            std::process::id(),
            crate::unique()
        ));
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        Ok(dir)
    }

    /// `path` (under the QEMU root) as QEMU names it.
    pub fn guest_path(&self, path: &Path) -> Result<String, String> {
        let rel = path.strip_prefix(&self.qemu_root).map_err(|_| {
            format!(
                "{} is outside the QEMU root {}",
                path.display(),
                self.qemu_root.display()
            )
        })?;
        Ok(format!("/{}", rel.display()))
    }

    /// Builds the out-of-tree module in `src` (its `Kbuild` and sources) against the rig's
    /// kernel, in a copy under `out`, and returns the `.ko` files built.
    pub fn build_module(&self, src: &Path, out: &Path) -> Result<Vec<PathBuf>, String> {
        let _ = std::fs::remove_dir_all(out);
        std::fs::create_dir_all(out).map_err(|e| format!("{}: {e}", out.display()))?;
        for entry in std::fs::read_dir(src).map_err(|e| format!("{}: {e}", src.display()))? {
            let path = entry.map_err(|e| e.to_string())?.path();
            if path.is_file() {
                let name = path.file_name().unwrap_or_default();
                std::fs::copy(&path, out.join(name))
                    .map_err(|e| format!("copying {}: {e}", path.display()))?;
            }
        }
        let result = Command::new("make")
            .arg("-s")
            .arg("-C")
            .arg(&self.kbuild)
            .arg(format!("M={}", out.display()))
            .arg("modules")
            .output()
            .map_err(|e| format!("running make: {e}"))?;
        if !result.status.success() {
            return Err(format!(
                "building the module in {} failed:\n{}{}",
                src.display(),
                String::from_utf8_lossy(&result.stdout),
                String::from_utf8_lossy(&result.stderr)
            ));
        }
        let mut kos: Vec<PathBuf> = std::fs::read_dir(out)
            .map_err(|e| e.to_string())?
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "ko"))
            .collect();
        kos.sort();
        if kos.is_empty() {
            return Err(format!("make built no module from {}", src.display()));
        }
        Ok(kos)
    }
}

/// The rig for the test `test`. When it is not built, or this user cannot `chroot` (QEMU 11.1
/// runs in its root), the test is skipped (`None`, said on stderr) unless `CI` is set: then it
/// fails with the reason.
pub fn for_test(test: &str) -> Option<Rig> {
    match decide(Rig::load(), is_root(), required()) {
        Ok(rig) => Some(rig),
        Err(Missing::Skip(why)) => {
            use std::io::Write;
            let _ = writeln!(std::io::stderr(), "SKIPPED ({test}): {why}");
            None
        }
        Err(Missing::Fail(why)) => {
            panic!("{test}: the real-kernel rig cannot run (CI is set): {why}")
        }
    }
}

/// Why a test cannot have the rig, and what it does about it.
#[derive(Debug, PartialEq, Eq)]
enum Missing {
    Skip(String),
    Fail(String),
}

fn decide(loaded: Result<Rig, String>, root: bool, ci: bool) -> Result<Rig, Missing> {
    let why = match loaded {
        Ok(rig) if root => return Ok(rig),
        Ok(_) => "QEMU 11.1 runs in the rig's root with chroot, which needs root".to_string(),
        Err(why) => why,
    };
    Err(if ci {
        Missing::Fail(why)
    } else {
        Missing::Skip(why)
    })
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Whether a missing rig fails the test (the `CI` environment variable is set) rather than
/// skipping it.
pub fn required() -> bool {
    std::env::var_os("CI").is_some_and(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    const PRINT: &str = "QEMU=chroot /c/root-1 qemu-system-x86_64\nQEMU_ROOT=/c/root-1\n\
        QEMU_VERSION=1:11.1.3\nKERNEL=/c/k/linux/arch/x86/boot/bzImage\nKBUILD=/c/k/linux\n\
        KERNEL_RELEASE=7.3.4\nTPH_ROOT_PORT=pcie-root-port\nGUEST_FILES=/c/files-1\n\
        GUEST_PREP=insmod /rig/tph_rootport.ko completer=tph\n";

    #[test]
    fn print_lines_parse_into_the_rig() {
        let rig = Rig::parse(PRINT).unwrap();
        assert_eq!(rig.qemu, ["chroot", "/c/root-1", "qemu-system-x86_64"]);
        assert_eq!(rig.qemu_root, Path::new("/c/root-1"));
        assert_eq!(rig.release, "7.3.4");
        assert_eq!(rig.guest_prep, "insmod /rig/tph_rootport.ko completer=tph");
        assert_eq!(rig.root_port, "pcie-root-port");
    }

    #[test]
    fn a_missing_key_is_named() {
        let text = PRINT.replace("KBUILD=/c/k/linux\n", "");
        assert_eq!(
            Rig::parse(&text).unwrap_err(),
            "guest-deps --print names no KBUILD"
        );
    }

    #[test]
    fn a_missing_rig_fails_under_ci_and_skips_otherwise() {
        let rig = Rig::parse(PRINT).unwrap();
        assert_eq!(decide(Ok(rig.clone()), true, true), Ok(rig.clone()));
        let not_built = || Err("not built".to_string());
        assert_eq!(
            decide(not_built(), true, true),
            Err(Missing::Fail("not built".into()))
        );
        assert_eq!(
            decide(not_built(), true, false),
            Err(Missing::Skip("not built".into()))
        );
        assert!(matches!(
            decide(Ok(rig), false, true),
            Err(Missing::Fail(why)) if why.contains("needs root")
        ));
    }

    #[test]
    fn print_fails_and_says_what_to_run_when_the_rig_is_not_built() {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.ci/guest-deps");
        let empty = std::env::temp_dir().join(format!("tph-rig-none-{}", std::process::id()));
        let out = Command::new("bash")
            .arg(&script)
            .arg("--print")
            .env("TPH_RIG_CACHE", &empty)
            .output()
            .unwrap();
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("the rig is not built for this checkout")
                && err.contains("run `bash .ci/guest-deps` as root"),
            "{err}"
        );
    }

    #[test]
    fn guest_paths_are_relative_to_the_qemu_root() {
        let rig = Rig::parse(PRINT).unwrap();
        assert_eq!(
            rig.guest_path(Path::new("/c/root-1/tmp/x/sock")).unwrap(),
            "/tmp/x/sock"
        );
        assert!(rig.guest_path(Path::new("/elsewhere/sock")).is_err());
    }
}
