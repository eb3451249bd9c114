//! The client conformance scenarios (`scenarios/mod.rs`, shared with `conformance.rs`) through
//! the **feature-revision adapter** against the kernel model's feature revision
//! (`HostOptions::abi = KernelAbi::Feature`): capabilities read from the config region, TPH
//! enabled and disabled by writing TPH Control there, tags through `VFIO_DEVICE_FEATURE_TPH_ST`.
//!
//! Each `syscall_boundary_feature::<scenario>` test plays its scenario in-process
//! (`EmulatedBackend`) and across the real syscall boundary (`FdBackend` in a supervised child:
//! the feature ioctl, `VFIO_DEVICE_GET_REGION_INFO` and the config region's `pread64`/`pwrite64`
//! trapped and answered by the model), requires identical transcripts, final registers and
//! hardware traces, and checks the facts `scenarios/expect.rs` states of it on the feature
//! revision. A last test requires that every scenario both revisions share ends, in user terms
//! and in hardware, exactly as on a v7 kernel: one API, two kernels, the same outcome.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod scenarios;

use scenarios::{child_half, gate_differs, names, run_emulated, Kernel};
use tph_client::Revision;
use tph_kernel::KernelAbi;

const FEATURE: Kernel = Kernel {
    revision: Revision::Feature,
    abi: KernelAbi::Feature,
    child_env: "TPH_CLIENT_CONFORMANCE_FEATURE_CHILD",
    child_test: "conformance_feature_child_half",
    for_tph: true,
};

/// v7 with its parameter on wherever the feature revision needs its own on (`Param::ForTph`),
/// so the comparison is of the two kernels with their parameters set alike.
const V7: Kernel = Kernel {
    revision: Revision::V7,
    abi: KernelAbi::V7,
    ..FEATURE
};

#[test]
#[ignore = "child half of the conformance_feature syscall_boundary tests; run by the supervisor"]
fn conformance_feature_child_half() {
    child_half(&FEATURE);
}

scenarios::syscall_boundary_tests!(
    syscall_boundary_feature,
    FEATURE;
    raw_feature_buffers_get_kernel_errno
);

/// The raw scenarios send one revision's bytes; every other scenario is revision-neutral.
const RAW: [&str; 2] = [
    "raw_buffers_get_kernel_errno",
    "raw_feature_buffers_get_kernel_errno",
];

#[test]
fn feature_and_v7_kernels_end_every_shared_scenario_identically() {
    let mut compared = 0;
    for name in names().filter(|n| !RAW.contains(n) && !gate_differs(n)) {
        let (t7, snap7, _) = run_emulated(&V7, name);
        let (tf, snapf, _) = run_emulated(&FEATURE, name);
        assert_eq!(t7, tf, "{name}: transcripts differ between revisions");
        assert_eq!(snap7, snapf, "{name}: final TPH registers differ");
        compared += 1;
    }
    // Every scenario but the two raw ones and the three about the unsafe parameter, which
    // gates DS on v7 and all of TPH on the feature revision.
    assert_eq!(compared, 15);
}
