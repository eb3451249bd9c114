//! `open_vfio` across the real syscall boundary on both VFIO interfaces: a child (this test
//! binary re-executed) opens the default machine's NIC through `vfio-ioctls` in a fake `/sys` and
//! `/dev` that offer the device cdev and the legacy group, and drives it with the client; the
//! supervisor answers every VFIO and iommufd call with the kernel model (`vfio_host`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;
use std::time::Duration;

use tph_client::open::{open_vfio, VfioInterface, VfioPaths};
use tph_client::{Mode, Probe, Steer, TphDevice};
use tph_emulate::harness::{supervise_in, user_notif_available, Supervised};
use tph_emulate::vfio_host::{FakeVfioTree, VfioHostHandler, TRAPPED_VFIO_REQUESTS};
use tph_kernel::{Host, HostOptions};
use tph_regs::machine::Bdf;

const CHILD_ENV: &str = "TPH_CLIENT_CDEV_CHILD";
const TIMEOUT: Duration = Duration::from_secs(30);
/// The default machine's NIC (steering table in MSI-X).
const NIC: &str = "01:00.0";

fn child_script(interface: VfioInterface) {
    let paths = VfioPaths::new().with_interface(interface);
    let backend = match open_vfio(NIC.parse().unwrap(), &paths) {
        Ok(b) => tph_client::backend::FdBackend::new(b),
        Err(e) => return println!("@@ open: {e}"),
    };
    let mut dev = TphDevice::with_probe(backend, &Probe::default()).unwrap();
    println!("@@ revision {}", dev.revision());
    let caps = dev.capabilities().unwrap();
    println!("@@ caps iv={} size={}", caps.iv, caps.st_table_size);
    let steer = [Steer::new(1, 3)];
    println!("@@ set-st before msix: {}", dev.set_entries(&steer).is_ok());
    let _irqs = tph_testkit::enable_msix(&mut dev, 4).unwrap();
    dev.enable(Mode::Iv).unwrap();
    println!("@@ set-st {:?}", dev.set_entries(&steer));
    drop(dev);
    // Closing released everything: the device opens again on the same interface.
    let again = open_vfio(NIC.parse().unwrap(), &paths).map(|_| ());
    println!("@@ reopen {again:?}");
}

#[test]
#[ignore = "child half of the syscall_boundary_cdev tests; run by the supervisor"]
fn cdev_child_half() {
    if let Ok(which) = std::env::var(CHILD_ENV) {
        child_script(which.parse().unwrap());
    }
}

fn lines(out: &str) -> Vec<&str> {
    out.lines()
        .filter_map(|l| l.split_once("@@ ").map(|(_, r)| r))
        .collect()
}

/// Runs the child half asking for `interface` on a tree offering both; `None` when skipped.
fn run(name: &str, interface: VfioInterface) -> Option<(Supervised, VfioHostHandler)> {
    if !user_notif_available() {
        tph_testkit::skip(format_args!(
            "this kernel refuses seccomp user notification"
        ));
        return None;
    }
    let bdf: Bdf = NIC.parse().unwrap();
    let host = Host::with_default_machine(HostOptions::default());
    let root = std::env::temp_dir().join(format!("tph-cdev-{name}-{}", std::process::id()));
    let tree = FakeVfioTree::create_cdev(root, bdf, 8).unwrap();
    let mut handler = VfioHostHandler::new(host.take_over(bdf).unwrap(), bdf).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "cdev_child_half", "--include-ignored"])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, interface.to_string());
    let sandbox = tree.sandbox();
    match supervise_in(cmd, &TRAPPED_VFIO_REQUESTS, &sandbox, &mut handler, TIMEOUT) {
        Err(tph_emulate::Error::Harness { source, .. })
            if source.raw_os_error() == Some(libc::EPERM) =>
        {
            tph_testkit::skip(format_args!(
                "no permission for a private mount namespace (needs CAP_SYS_ADMIN)"
            ));
            None
        }
        r => Some((r.unwrap(), handler)),
    }
}

const EXPECTED: [&str; 5] = [
    "revision v7 ioctl",
    "caps iv=true size=2048",
    "set-st before msix: false",
    "set-st Ok(())",
    "reopen Ok(())",
];

#[test]
fn syscall_boundary_cdev_open_drives_the_device_and_reopens() {
    let Some((out, handler)) = run("cdev", VfioInterface::Cdev) else {
        return;
    };
    assert!(out.status.success(), "{}\n{}", out.stderr, out.stdout);
    assert_eq!(lines(&out.stdout), EXPECTED, "{}", out.stderr);
    assert_eq!((handler.opens(), handler.cdev_binds()), (2, 2));
}

#[test]
fn syscall_boundary_auto_open_prefers_the_offered_cdev() {
    let Some((out, handler)) = run("auto", VfioInterface::Auto) else {
        return;
    };
    assert_eq!(lines(&out.stdout), EXPECTED, "{}", out.stderr);
    assert_eq!((handler.opens(), handler.cdev_binds()), (2, 2));
}

#[test]
fn syscall_boundary_legacy_open_behaves_the_same_without_the_cdev() {
    let Some((out, handler)) = run("legacy", VfioInterface::Legacy) else {
        return;
    };
    assert_eq!(lines(&out.stdout), EXPECTED, "{}", out.stderr);
    assert_eq!((handler.opens(), handler.cdev_binds()), (2, 0));
}
