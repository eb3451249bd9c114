//! The kernel model's conformance scenarios through the client, on both backends:
//!
//! - emulated: the model in-process (`EmulatedBackend`);
//! - real: `FdBackend` issuing real `ioctl(2)` calls in a child process, trapped with seccomp user
//!   notification and answered by the same model in this process (`ModelHandler`).
//!
//! Each scenario produces a transcript (every call and its outcome in user terms). A test checks
//! the emulated transcript against the rule it pins, then runs the scenario across the syscall
//! boundary and requires the identical transcript, the identical final TPH registers and the
//! identical hardware access trace.

mod scenarios;

use scenarios::{child_half, has, Kernel};
use tph_client::Revision;
use tph_kernel::KernelAbi;

const V7: Kernel = Kernel {
    revision: Revision::V7,
    abi: KernelAbi::V7,
    child_env: "TPH_CLIENT_CONFORMANCE_CHILD",
    child_test: "conformance_child_half",
};

fn both(name: &str) -> Vec<String> {
    scenarios::both(&V7, name)
}

fn run_emulated(name: &str) -> (Vec<String>, String, Vec<String>) {
    scenarios::run_emulated(&V7, name)
}

#[test]
#[ignore = "child half of the conformance syscall_boundary tests; run by the supervisor"]
fn conformance_child_half() {
    child_half(&V7);
}

#[test]
fn syscall_boundary_get_cap_hides_ds_by_default() {
    let t = both("get_cap_hides_ds_by_default");
    assert_eq!(
        t,
        ["cap: ok Capabilities { iv: true, ds: false, st_table_size: 2048 }"]
    );
}

#[test]
fn syscall_boundary_get_cap_shows_ds_with_unsafe_param() {
    let t = both("get_cap_shows_ds_with_unsafe_param");
    assert_eq!(
        t,
        ["cap: ok Capabilities { iv: true, ds: true, st_table_size: 2048 }"]
    );
}

#[test]
fn syscall_boundary_notph_host_reports_enodev() {
    let t = both("notph_host_reports_no_tph");
    assert!(
        t.iter()
            .all(|l| l.contains("err ENODEV | the device has no usable TPH capability")),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_enable_ds_gate_off_is_eopnotsupp() {
    let t = both("enable_ds_gate_off_is_refused");
    assert!(
        has(
            &t,
            "enable ds: err EOPNOTSUPP | DS mode is disabled on this host (vfio-pci enable_unsafe_tph_ds_mode=0)"
        ),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_enable_twice_is_ebusy_disable_twice_ok() {
    let t = both("enable_twice_is_busy");
    assert_eq!(t[0], "enable iv: ok ");
    assert!(
        t[1].starts_with("enable iv: err EBUSY | TPH is already enabled"),
        "{t:?}"
    );
    assert_eq!(&t[2..], ["disable: ok ", "disable: ok "]);
}

#[test]
fn syscall_boundary_enable_without_completer_is_einval() {
    let t = both("enable_without_root_port_completer_is_refused");
    assert!(
        t[1].starts_with("enable iv: err EINVAL | the device cannot enable TPH in IV mode"),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_set_st_msix_vector_not_enabled_is_enxio() {
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
fn syscall_boundary_set_st_index_beyond_table_is_einval() {
    let t = both("set_st_index_beyond_table_is_refused");
    assert!(
        t[2].starts_with(
            "set-st 16=1: err EINVAL | steering table index 16 is beyond the table (16 entries)"
        ),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_set_st_bad_cpu_writes_nothing() {
    let (t, snap, _) = run_emulated("set_st_all_or_nothing_on_bad_cpu");
    assert!(
        t[2].starts_with("set-st 0=1 1=99: err EINVAL | CPU 99 does not exist"),
        "{t:?}"
    );
    assert!(
        snap.contains("st_table: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"),
        "{snap}"
    );
    assert_eq!(both("set_st_all_or_nothing_on_bad_cpu"), t);
}

#[test]
fn syscall_boundary_set_st_batch_of_runs_writes_nothing() {
    let (t, snap, _) = run_emulated("set_st_batch_of_runs_is_all_or_nothing");
    assert!(
        t[2].starts_with("set-st 0=1 1=2 5=3: err ENXIO | MSI-X vector 5 is not enabled"),
        "{t:?}"
    );
    assert_eq!(t[3], "set-st 2=1 3=2: ok ");
    assert!(snap.contains("st_table: [0, 0, 257, 258, 0, 0"), "{snap}");
    assert_eq!(both("set_st_batch_of_runs_is_all_or_nothing"), t);
}

#[test]
fn syscall_boundary_set_st_without_enable_is_einval() {
    let t = both("set_st_needs_tph_enabled");
    assert!(
        t[0].starts_with("set-st 0=1: err EINVAL | TPH is not enabled"),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_clear_with_all_ones_cpu_zeroes_entry() {
    let (t, snap, _) = run_emulated("set_st_clear_with_all_ones_cpu");
    assert_eq!(t, ["enable iv: ok ", "set-st 0=1 5=3: ok ", "clear 5: ok "]);
    assert!(
        snap.contains("st_table: [") && !snap.contains("st_table: [0,"),
        "entry 0 stays set: {snap}"
    );
    assert_eq!(both("set_st_clear_with_all_ones_cpu"), t);
}

#[test]
fn syscall_boundary_set_st_without_table_is_enodev() {
    let t = both("set_st_without_table_is_no_table");
    assert!(
        t[2].starts_with("set-st 0=1: err ENODEV | the device has no steering table"),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_get_st_needs_ds_mode() {
    let t = both("get_st_needs_ds_mode");
    assert!(
        t[0].starts_with("get-st 1: err EINVAL | TPH is not enabled in DS mode"),
        "{t:?}"
    );
    assert!(
        t[2].starts_with("get-st 1: err EINVAL | TPH is not enabled in DS mode"),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_get_st_ds_returns_tags() {
    let t = both("get_st_ds_returns_tags");
    assert_eq!(t[0], "enable ds: ok ");
    assert!(t[1].starts_with("get-st 0 1 2:pm 7: ok ["), "{t:?}");
    assert!(
        t[2].starts_with("get-st 8: err EINVAL | CPU 8 does not exist"),
        "{t:?}"
    );
}

#[test]
fn syscall_boundary_reset_keeps_core_enabled_tph() {
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
fn syscall_boundary_raw_buffers_get_kernel_errno() {
    let t = both("raw_buffers_get_kernel_errno");
    assert!(t[0].contains("Err(\"EOPNOTSUPP\")"), "{t:?}");
    assert!(t[1].contains("Err(\"EINVAL\")"), "{t:?}");
    assert!(t[2].contains("Ok(0)"), "{t:?}");
    assert!(t[3].contains("Err(\"EINVAL\")"), "{t:?}");
    assert!(t[4].contains("Err(\"EFAULT\")"), "{t:?}");
    assert!(t[5].contains("Err(\"EINVAL\")"), "{t:?}");
}

#[test]
fn syscall_boundary_queue_steering_binds_retargets_tears_down() {
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
