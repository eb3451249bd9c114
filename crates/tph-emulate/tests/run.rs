//! A C program that opens a function the way a userspace driver does (`tests/data/open_device.c`:
//! `/dev/vfio/vfio`, the function's IOMMU group from sysfs, type1, the device fd, the config
//! region) runs unmodified under [`tph_emulate::emulate::run`]: each of its VFIO calls crosses
//! the real syscall boundary and is answered as mainline vfio-pci answers it, from the model.
//! The expected values are the kernel's: `VFIO_API_VERSION` 0, `VFIO_PCI_NUM_REGIONS` 9 and
//! `VFIO_PCI_NUM_IRQS` 5 (include/uapi/linux/vfio.h), a config region as large as the
//! function's configuration space, and the model's own Vendor and Device ID.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use tph_emulate::emulate::{run, tph_functions, Setup};
use tph_emulate::Error;

/// A test that cannot run here says why and passes; when `CI` is set it fails instead. (The test
/// kit's `skip`, which this packaged crate cannot depend on.)
fn cannot_run(why: &str) {
    assert!(
        std::env::var_os("CI").is_none_or(|v| v.is_empty()),
        "this test cannot run here, and CI is set: {why}"
    );
    eprintln!("SKIPPED: {why}");
}

/// A fresh directory for this test's files.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tph-emulate-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Compiles `tests/data/open_device.c` into `dir`; `None` when there is no C compiler.
fn compile(dir: &Path) -> Option<PathBuf> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/open_device.c");
    let exe = dir.join("open_device");
    let r = Command::new("cc")
        .args([
            "-std=c11",
            "-D_DEFAULT_SOURCE",
            "-O1",
            "-Wall",
            "-Wextra",
            "-Werror",
        ])
        .arg("-o")
        .arg(&exe)
        .arg(&src)
        .output();
    match r {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            cannot_run("no C compiler `cc` on this machine");
            None
        }
        r => {
            let r = r.unwrap();
            assert!(
                r.status.success(),
                "cc open_device.c: {}",
                String::from_utf8_lossy(&r.stderr)
            );
            Some(exe)
        }
    }
}

#[test]
fn a_driver_opens_a_bound_function_and_reads_its_config() {
    let dir = scratch("open");
    let Some(exe) = compile(&dir) else { return };
    let host = tph_kernel::Host::with_default_machine(Default::default());
    let functions = tph_functions(&host);
    let (bdf, group) = functions[2];
    let function = host.machine().function(bdf).unwrap();
    let config = function.config.clone();

    let report = dir.join("report.txt");
    let mut cmd = Command::new(&exe);
    cmd.arg(bdf.to_string()).arg(&report);
    let ran = match run(&host, cmd, dir.join("tree"), &Setup::default()) {
        Err(Error::Unsupported { what }) => return cannot_run(what),
        Err(Error::Harness { source, .. }) if source.raw_os_error() == Some(libc::EPERM) => {
            return cannot_run("a private mount namespace needs CAP_SYS_ADMIN");
        }
        r => r.unwrap(),
    };
    let got = std::fs::read_to_string(&report).unwrap();
    assert_eq!(ran.exit_code(), 0, "{got}");
    assert_eq!(ran.devices, functions);
    assert!(ran.answered > 0, "no call reached the host");

    let id = |at: usize| u16::from_le_bytes([config[at], config[at + 1]]);
    let want = format!(
        "api 0\ntype1v2 1\ngroup {group}\nviable 1\npci 1\nregions 9 irqs 5\n\
         config size {}\nid {:04x}:{:04x}\n",
        config.len(),
        id(0),
        id(2)
    );
    assert_eq!(got, want);
    std::fs::remove_dir_all(&dir).unwrap();
}
