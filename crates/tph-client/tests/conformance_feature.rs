//! The client conformance scenarios (`scenarios/mod.rs`, shared with `conformance.rs`) through
//! the **feature-revision adapter** against the kernel model's feature revision
//! (`HostOptions::abi = KernelAbi::Feature`): capabilities read from the config region, TPH
//! enabled and disabled by writing TPH Control there, tags through `VFIO_DEVICE_FEATURE_TPH_ST`.
//!
//! Each `syscall_boundary_feature_*` test plays its scenario in-process (`EmulatedBackend`) and
//! across the real syscall boundary (`FdBackend` in a supervised child: the feature ioctl,
//! `VFIO_DEVICE_GET_REGION_INFO` and the config region's `pread64`/`pwrite64` trapped and
//! answered by the model), and requires identical transcripts, final registers and hardware
//! traces. A last test requires that every scenario both revisions share ends, in user terms and
//! in hardware, exactly as on a v7 kernel: one API, two kernels, the same outcome.

mod scenarios;

use scenarios::{child_half, has, names, run_emulated, Kernel};
use tph_client::Revision;
use tph_kernel::KernelAbi;

const FEATURE: Kernel = Kernel {
    revision: Revision::Feature,
    abi: KernelAbi::Feature,
    child_env: "TPH_CLIENT_CONFORMANCE_FEATURE_CHILD",
    child_test: "conformance_feature_child_half",
};

const V7: Kernel = Kernel {
    revision: Revision::V7,
    abi: KernelAbi::V7,
    ..FEATURE
};

fn both(name: &str) -> Vec<String> {
    scenarios::both(&FEATURE, name)
}

#[test]
#[ignore = "child half of the conformance_feature syscall_boundary tests; run by the supervisor"]
fn conformance_feature_child_half() {
    child_half(&FEATURE);
}

#[test]
fn syscall_boundary_feature_get_cap_hides_ds_by_default() {
    let t = both("get_cap_hides_ds_by_default");
    assert_eq!(
        t,
        ["cap: ok Capabilities { iv: true, ds: false, st_table_size: 2048 }"]
    );
}

#[test]
fn syscall_boundary_feature_get_cap_shows_ds_with_unsafe_param() {
    let t = both("get_cap_shows_ds_with_unsafe_param");
    assert_eq!(
        t,
        ["cap: ok Capabilities { iv: true, ds: true, st_table_size: 2048 }"]
    );
}

#[test]
fn syscall_boundary_feature_notph_host_hides_the_capability() {
    let t = both("notph_host_reports_no_tph");
    assert!(
        t.iter()
            .all(|l| l.contains("err ENODEV | the device has no usable TPH capability")),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_feature_enable_ds_gate_off_is_eopnotsupp() {
    let t = both("enable_ds_gate_off_is_refused");
    assert!(
        has(
            &t,
            "enable ds: err EOPNOTSUPP | DS mode is disabled on this host (vfio-pci enable_unsafe_tph=0)"
        ),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_feature_enable_twice_is_ebusy_disable_twice_ok() {
    let t = both("enable_twice_is_busy");
    assert_eq!(t[0], "enable iv: ok ");
    assert!(
        t[1].starts_with("enable iv: err EBUSY | TPH is already enabled"),
        "{t:?}"
    );
    assert_eq!(&t[2..], ["disable: ok ", "disable: ok "]);
}

#[test]
fn syscall_boundary_feature_enable_without_completer_is_einval() {
    let t = both("enable_without_root_port_completer_is_refused");
    assert!(
        t[1].starts_with("enable iv: err EINVAL | the device cannot enable TPH in IV mode"),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_feature_set_msix_vector_not_enabled_is_enxio() {
    let t = both("set_st_msix_needs_enabled_vector");
    assert!(
        t[2].starts_with("set-st 0=1: err ENXIO | MSI-X vector 0 is not enabled"),
        "{t:?}"
    );
    assert_eq!(t[5], "set-st 0..3: ok ");
    assert!(
        t[6].starts_with("set-st 4=1: err ENXIO | MSI-X vector 4 is not enabled"),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_feature_set_index_beyond_table_is_einval() {
    let t = both("set_st_index_beyond_table_is_refused");
    assert!(
        t[2].starts_with(
            "set-st 16=1: err EINVAL | steering table index 16 is beyond the table (16 entries)"
        ),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_feature_set_bad_cpu_writes_nothing() {
    let (t, snap, _) = run_emulated(&FEATURE, "set_st_all_or_nothing_on_bad_cpu");
    assert!(
        t[2].starts_with("set-st 0=1 1=99: err EINVAL | CPU 99 does not exist"),
        "{t:?}"
    );
    assert!(
        snap.contains(&format!("st_table: {:?}", [0u16; 16])),
        "{snap}"
    );
    assert_eq!(both("set_st_all_or_nothing_on_bad_cpu"), t);
}

#[test]
fn syscall_boundary_feature_batch_of_runs_rolls_back_earlier_runs() {
    let (t, snap, _) = run_emulated(&FEATURE, "set_st_batch_of_runs_is_all_or_nothing");
    assert!(
        t[2].starts_with("set-st 0=1 1=2 5=3: err ENXIO | MSI-X vector 5 is not enabled"),
        "{t:?}"
    );
    assert_eq!(t[3], "set-st 2=1 3=2: ok ");
    // Run 0-1 was programmed, then cleared when run 5 failed; entries 2 and 3 hold 16-bit VM
    // tags 0x100 + uid.
    assert!(snap.contains("st_table: [0, 0, 257, 258, 0, 0"), "{snap}");
    assert_eq!(both("set_st_batch_of_runs_is_all_or_nothing"), t);
}

#[test]
fn syscall_boundary_feature_set_without_enable_is_einval() {
    let t = both("set_st_needs_tph_enabled");
    assert!(
        t[0].starts_with("set-st 0=1: err EINVAL | TPH is not enabled"),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_feature_clear_with_all_ones_cpu_zeroes_entry() {
    let (t, snap, _) = run_emulated(&FEATURE, "set_st_clear_with_all_ones_cpu");
    assert_eq!(t, ["enable iv: ok ", "set-st 0=1 5=3: ok ", "clear 5: ok "]);
    // CPU 1 -> UID 1 -> 8-bit VM tag 1 (the root port completes TPH only); entry 5 cleared.
    let mut want = [0u16; 16];
    want[0] = 1;
    assert!(snap.contains(&format!("st_table: {want:?}")), "{snap}");
    assert_eq!(both("set_st_clear_with_all_ones_cpu"), t);
}

#[test]
fn syscall_boundary_feature_set_without_table_is_enodev() {
    let t = both("set_st_without_table_is_no_table");
    assert!(
        t[2].starts_with("set-st 0=1: err ENODEV | the device has no steering table"),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_feature_get_st_needs_ds_mode() {
    let t = both("get_st_needs_ds_mode");
    for line in [&t[0], &t[2]] {
        assert!(
            line.starts_with("get-st 1: err EINVAL | TPH is not enabled in DS mode"),
            "{t:?}"
        );
    }
}

#[test]
fn syscall_boundary_feature_get_st_ds_returns_tags() {
    let t = both("get_st_ds_returns_tags");
    assert_eq!(t[0], "enable ds: ok ");
    // 16-bit tags (extended TPH end to end): VM 0x100 + uid, PM 0x8000 | uid.
    assert_eq!(t[1], "get-st 0 1 2:pm 7: ok [256, 257, 32770, 263]");
    assert!(
        t[2].starts_with("get-st 8: err EINVAL | CPU 8 does not exist"),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_feature_reset_keeps_control_enabled_tph() {
    let t = both("reset_keeps_core_enabled_tph");
    assert_eq!(
        t,
        [
            "enable iv: ok ",
            "set-st 0=2 1=3: ok ",
            "reset: ok ",
            "set-st 2=4: ok "
        ]
    );
}

#[test]
fn syscall_boundary_feature_raw_v7_ioctl_is_never_sent() {
    let t = both("raw_buffers_get_kernel_errno");
    assert_eq!(t.len(), 6);
    assert!(t.iter().all(|l| l.contains("Err(\"ENOTTY\")")), "{t:?}");
}

#[test]
fn syscall_boundary_feature_raw_buffers_get_kernel_errno() {
    let t = both("raw_feature_buffers_get_kernel_errno");
    let want = [
        ("raw probe set", "Ok(0)"),
        ("raw probe get", "Err(\"EINVAL\")"), // DS parameter off: no GET
        ("raw unknown feature", "Err(\"ENOTTY\")"),
        ("raw get and set", "Err(\"EINVAL\")"),
        ("raw argsz 4", "Err(\"EINVAL\")"),
        ("raw argsz beyond", "Err(\"EFAULT\")"),
        ("raw set count 0", "Err(\"EINVAL\")"),
    ];
    assert_eq!(t.len(), want.len(), "{t:?}");
    for (line, (what, result)) in t.iter().zip(want) {
        assert!(line.starts_with(&format!("{what}: ok {result}")), "{line}");
    }
}

#[test]
fn syscall_boundary_feature_queue_steering_binds_retargets_tears_down() {
    let t = both("queue_steering_binds_retargets_tears_down");
    assert_eq!(t[0], "irqs 8: ok ");
    assert!(
        t[1].starts_with("bind: Ok([Programmed { index: 0 }"),
        "{t:?}"
    );
    assert_eq!(t[2], "retarget: Ok(Programmed { index: 3 })");
    assert!(
        t[3].starts_with("retarget unknown: Err(\"queue 42 is not bound"),
        "{t:?}"
    );
    assert_eq!(t[4], "teardown: ok");
}

/// The raw scenarios send one revision's bytes; every other scenario is revision-neutral.
const RAW: [&str; 2] = [
    "raw_buffers_get_kernel_errno",
    "raw_feature_buffers_get_kernel_errno",
];

/// The one wording the revisions may differ in: the name of the DS gate's module parameter.
fn v7_names(t: &[String]) -> Vec<String> {
    t.iter()
        .map(|l| {
            l.replace(
                "(vfio-pci enable_unsafe_tph=0)",
                "(vfio-pci enable_unsafe_tph_ds_mode=0)",
            )
        })
        .collect()
}

#[test]
fn feature_and_v7_kernels_end_every_shared_scenario_identically() {
    let mut compared = 0;
    for name in names().filter(|n| !RAW.contains(n)) {
        let (t7, snap7, _) = run_emulated(&V7, name);
        let (tf, snapf, _) = run_emulated(&FEATURE, name);
        assert_eq!(
            t7,
            v7_names(&tf),
            "{name}: transcripts differ between revisions"
        );
        assert_eq!(snap7, snapf, "{name}: final TPH registers differ");
        compared += 1;
    }
    assert_eq!(compared, 17, "every scenario but the two raw ones");
}
