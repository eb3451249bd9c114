//! The unmodified `tphctl` binary, `session --vfio BDF`, end to end under the seccomp
//! supervisor: every VFIO call it makes (vfio-ioctls opening the device through the legacy
//! container and group, or through the device cdev bound to an iommufd; region reads, MSI-X,
//! reset, the TPH ioctl) crosses the real syscall boundary and is answered by the kernel model;
//! `/sys` and `/dev` are a fake tree bind-mounted in the child's private mount namespace. Its
//! output must equal the emulated session's on the same script, on either interface.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tph_emulate::harness::{supervise_in, user_notif_available, Supervised};
use tph_emulate::vfio_host::{FakeVfioTree, VfioHostHandler, TRAPPED_VFIO_REQUESTS};
use tph_emulate::Error;
use tph_kernel::{Host, HostOptions};
use tph_regs::machine::Bdf;

const TIMEOUT: Duration = Duration::from_secs(60);
/// The default machine's NIC with its steering table in MSI-X (2048 vectors).
const NIC: &str = "01:00.0";

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/session/vfio-e2e.in")
}

fn emulated_output() -> String {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(["session", "--emulated", NIC])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn tphctl");
    let input = std::fs::read(script()).expect("script");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(&input)
        .expect("stdin");
    let out = child.wait_with_output().expect("wait");
    // The script holds refused commands on purpose: a session with failures exits 2.
    assert_eq!(out.status.code(), Some(2));
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs `tphctl session --vfio NIC EXTRA...` under the supervisor on the tree `make` builds;
/// `None` when this machine cannot (skipped with a message).
fn supervised_session(
    name: &str,
    make: fn(PathBuf, Bdf, u32) -> Result<FakeVfioTree, Error>,
    extra: &[&str],
) -> Option<(Supervised, VfioHostHandler)> {
    if !user_notif_available() {
        tph_testkit::skip(format_args!(
            "this kernel refuses seccomp user notification"
        ));
        return None;
    }
    let bdf: Bdf = NIC.parse().expect("bdf");
    let host = Host::with_default_machine(HostOptions::default());
    let root = std::env::temp_dir().join(format!("tphctl-vfio-{name}-{}", std::process::id()));
    let tree = make(root, bdf, HostOptions::default().cpus).expect("fake tree");
    // Served over the tree's device file, whose BAR memory the session maps to read the
    // MSI-X table.
    let device = host.take_over(bdf).expect("take over");
    let mut handler = VfioHostHandler::for_tree(&tree, vec![device]).expect("handler");
    let sandbox = tree.sandbox().with_stdin(script());
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tphctl"));
    cmd.args(["session", "--vfio", NIC]).args(extra);
    let out = match supervise_in(cmd, &TRAPPED_VFIO_REQUESTS, &sandbox, &mut handler, TIMEOUT) {
        Err(tph_emulate::Error::Harness { source, .. })
            if source.raw_os_error() == Some(libc_eperm()) =>
        {
            tph_testkit::skip(format_args!(
                "no permission for a private mount namespace (needs CAP_SYS_ADMIN)"
            ));
            return None;
        }
        r => r.expect("supervise"),
    };
    eprintln!(
        "{} calls answered; device opened {} times ({} through the cdev)",
        out.answered,
        handler.opens(),
        handler.cdev_binds()
    );
    Some((out, handler))
}

/// The session's output equals the emulated one's, and is the real thing, not two empty outputs.
fn assert_matches_emulated(out: &Supervised) {
    assert_eq!(
        out.status.code(),
        Some(2),
        "the script's refused commands make the session exit 2: {}\n{}",
        out.stderr,
        out.stdout
    );
    assert!(out.answered > 20, "only {} calls answered", out.answered);
    assert_eq!(
        out.stdout,
        emulated_output(),
        "real-device path differs from the emulated session"
    );
    for line in [
        "modes: interrupt_vector; st_table_size: 2048",
        "error: MSI-X vector 4 is not enabled: ENXIO (6)",
        "error: CPU 99 does not exist: EINVAL (22); present CPUs: 0-7",
        "st_table (msix, 2048 entries): [0]=0x0101 [1]=0x8002 [3]=0x0107",
        "control: 0x00000000 (mode no_st, requester enable disabled)",
    ] {
        assert!(
            out.stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{}",
            out.stdout
        );
    }
}

#[test]
fn session_vfio_syscall_boundary_unmodified_binary_matches_emulated() {
    let Some((out, handler)) = supervised_session("legacy", FakeVfioTree::create, &[]) else {
        return;
    };
    assert_eq!(handler.opens(), 2, "open, then reopen: {}", out.stderr);
    assert_eq!(handler.cdev_binds(), 0, "no cdev offered: the legacy group");
    assert_matches_emulated(&out);
}

#[test]
fn session_vfio_cdev_syscall_boundary_unmodified_binary_matches_emulated() {
    let Some((out, handler)) = supervised_session("cdev", FakeVfioTree::create_cdev, &[]) else {
        return;
    };
    // Both interfaces offered: the opener takes the cdev, each time (open, then reopen).
    assert_eq!(handler.opens(), 2, "open, then reopen: {}", out.stderr);
    assert_eq!(handler.cdev_binds(), 2, "through the cdev: {}", out.stderr);
    assert_matches_emulated(&out);
}

#[test]
fn session_vfio_legacy_chosen_syscall_boundary_ignores_the_offered_cdev() {
    let args = ["--vfio-interface", "legacy"];
    let Some((out, handler)) = supervised_session("force-legacy", FakeVfioTree::create_cdev, &args)
    else {
        return;
    };
    assert_eq!(handler.opens(), 2, "open, then reopen: {}", out.stderr);
    assert_eq!(handler.cdev_binds(), 0, "asked for the legacy group");
    assert_matches_emulated(&out);
}

#[test]
fn session_vfio_cdev_chosen_syscall_boundary_without_vfio_dev_entry_says_so() {
    let args = ["--vfio-interface", "cdev"];
    let Some((out, handler)) = supervised_session("force-cdev", FakeVfioTree::create, &args) else {
        return;
    };
    assert_eq!(out.status.code(), Some(2), "{}", out.stderr);
    assert_eq!(handler.opens(), 0, "nothing opened");
    assert_eq!(
        out.stderr,
        "tphctl: session --vfio 01:00.0: device 0000:01:00.0 has no VFIO device cdev in \
         /dev/vfio/devices: the kernel is built without CONFIG_VFIO_DEVICE_CDEV (the legacy \
         container and group interface does not need it) (fix: --vfio-interface legacy)\n"
    );
    assert!(out.stdout.is_empty());
}

/// EPERM: the child may not unshare its mount namespace.
fn libc_eperm() -> i32 {
    1
}
