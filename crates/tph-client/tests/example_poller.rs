//! The driver-shaped example (`examples/poller.rs`: its own VFIO device, its own eventfds, TPH
//! added on top through a borrowing backend) run unmodified against the emulated kernel: every
//! VFIO call it makes crosses the real syscall boundary and is answered by the model through the
//! fake VFIO host (`tph-emulate`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use tph_emulate::harness::{supervise_in, user_notif_available};
use tph_emulate::vfio_host::{FakeVfioTree, VfioHostHandler, TRAPPED_VFIO_REQUESTS};
use tph_kernel::{Host, HostOptions};
use tph_regs::machine::Bdf;

/// The default machine's NIC (steering table in MSI-X).
const NIC: &str = "01:00.0";

/// `target/<profile>/examples/poller`, built by `cargo test` with the tests.
fn example() -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    profile_dir.join("examples/poller")
}

#[test]
fn poller_example_drives_tph_on_its_own_device_through_the_syscall_boundary() {
    if !user_notif_available() {
        tph_testkit::skip(format_args!(
            "this kernel refuses seccomp user notification"
        ));
        return;
    }
    let bin = example();
    if !bin.exists() {
        tph_testkit::skip(format_args!(
            "{} not built (run through `cargo test`)",
            bin.display()
        ));
        return;
    }
    let bdf: Bdf = NIC.parse().unwrap();
    let opts = HostOptions::default();
    let host = Host::with_default_machine(opts.clone());
    let root = std::env::temp_dir().join(format!("tph-poller-{}", std::process::id()));
    let tree = FakeVfioTree::create(root, bdf, opts.cpus).unwrap();
    let device = host.take_over(bdf).unwrap();
    let mut handler = VfioHostHandler::new(device.clone(), bdf).unwrap();
    let mut cmd = Command::new(&bin);
    cmd.args([NIC, "4"]);
    let sandbox = tree.sandbox();
    let out = match supervise_in(
        cmd,
        &TRAPPED_VFIO_REQUESTS,
        &sandbox,
        &mut handler,
        Duration::from_secs(60),
    ) {
        Err(tph_emulate::Error::Harness { source, .. }) if source.raw_os_error() == Some(1) => {
            tph_testkit::skip(format_args!(
                "no permission for a private mount namespace (needs CAP_SYS_ADMIN)"
            ));
            return;
        }
        r => r.unwrap(),
    };
    assert!(
        out.status.success(),
        "poller failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!(
            "{NIC}: IV true DS false table 2048 entries; {} CPUs",
            opts.cpus
        )
    );
    assert_eq!(lines[1], "queue 0 -> CPU 0: entry 0 programmed");
    assert_eq!(lines[4], "queue 3 -> CPU 3: entry 3 programmed");
    assert_eq!(
        lines[5],
        format!(
            "queue 0 poller moved to CPU {}: Programmed {{ index: 0 }}",
            opts.cpus - 1
        )
    );
    assert_eq!(lines[6], "torn down: entries cleared, TPH disabled");
    assert!(
        lines[7].starts_with("driver still owns device fd ")
            && lines[7].ends_with(" and 4 eventfds"),
        "{}",
        lines[7]
    );
    // What the model's hardware saw: the entries programmed then cleared, TPH off.
    let snap = device.snapshot();
    assert_eq!(snap.control, Some(0));
    assert!(
        snap.st_table.iter().take(4).all(|&t| t == 0),
        "{:?}",
        &snap.st_table[..4]
    );
    let trace: Vec<String> = device
        .drain_trace()
        .iter()
        .map(ToString::to_string)
        .collect();
    let has = |needle: &str| trace.iter().any(|l| l.contains(needle));
    assert!(has("MSI-X Enable+ Masked-"), "MSI-X enabled: {trace:#?}");
    for v in 0..4 {
        assert!(
            has(&format!("msix wr vec {v} +0x8 <- 0x400{v}")),
            "vector {v} wired: {trace:#?}"
        );
    }
    assert!(
        has("vector 1: Masked- ST 0x0101"),
        "queue 1 steered to CPU 1: {trace:#?}"
    );
    assert!(
        !has("msix wr vec 4 +0x8"),
        "only the driver's four vectors: {trace:#?}"
    );
}
