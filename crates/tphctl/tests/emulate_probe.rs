//! A C probe of mainline vfio-pci's rules (`tests/data/probe/vfio_rules.c`: SET_IRQS edges,
//! Vector Control across an MSI-X re-enable, Bus Master at open, Command writes, the config
//! region's end), compiled here with the system `cc` and run under `tphctl emulate` on both MSI-X
//! allocation hosts. The expected lines are the real kernels' answers
//! (`tests/data/probe/linux-*.txt`, checked on Debian's 6.1 and 6.12 by `guest_probe.rs`;
//! issue 16): `--msix-alloc static` stands for
//! Debian's 6.1 (`NORESIZE`, growth refused), the default for 6.12 (dynamic MSI-X on x86).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{stderr, stdout, tests_dir, tphctl_stdin};

/// The NIC with a 2048-vector MSI-X table in BAR 0.
const NIC: &str = "0000:01:00.0";

/// What Debian's real kernel `release` printed for the probe (`guest_probe.rs` checks these
/// files against 6.1 and 6.12 booted in QEMU).
fn expected(release: &str) -> String {
    let file = tests_dir(&format!("data/probe/linux-{release}.txt"));
    std::fs::read_to_string(&file).unwrap_or_else(|e| panic!("{}: {e}", file.display()))
}

/// A test that cannot run here: skipped with the reason, but a failure under CI.
fn cannot_run(why: &str) {
    assert!(
        std::env::var_os("CI").is_none(),
        "cannot run under CI: {why}"
    );
    eprintln!("SKIPPED: {why}");
}

fn compile(dir: &Path) -> Option<PathBuf> {
    let src = tests_dir("data/probe/vfio_rules.c");
    let exe = dir.join("vfio_rules");
    let run = Command::new("cc")
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
    match run {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            cannot_run("no C compiler `cc` on this machine");
            None
        }
        r => {
            let r = r.unwrap();
            assert!(r.status.success(), "cc vfio_rules.c: {}", stderr(&r));
            Some(exe)
        }
    }
}

fn probe(msix_alloc: &str) -> Option<String> {
    let dir = std::env::temp_dir().join(format!("tph-probe-{}-{msix_alloc}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let exe = compile(&dir)?;
    let exe = exe.to_str().unwrap();
    let args = [
        "emulate",
        "--emulated",
        "--msix-alloc",
        msix_alloc,
        "--",
        exe,
        NIC,
    ];
    let out = tphctl_stdin(&args, b"");
    let err = stderr(&out);
    if out.status.code() == Some(2)
        && (err.contains("does not offer seccomp") || err.contains("private mount namespace"))
    {
        cannot_run(&err);
        return None;
    }
    assert_eq!(out.status.code(), Some(0), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
    Some(stdout(&out))
}

#[test]
fn probe_under_emulate_answers_as_linux_6_12() {
    let Some(got) = probe("dynamic") else { return };
    assert_eq!(got, expected("6.12"));
}

#[test]
fn probe_under_emulate_with_static_msix_answers_as_linux_6_1() {
    let Some(got) = probe("static") else { return };
    assert_eq!(got, expected("6.1"));
}
