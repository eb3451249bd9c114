//! The kernel model's conformance scenarios through the client, on both backends:
//!
//! - emulated: the model in-process (`EmulatedBackend`);
//! - real: `FdBackend` issuing real `ioctl(2)` calls in a child process, trapped with seccomp user
//!   notification and answered by the same model in this process (`ModelHandler`).
//!
//! Each scenario (`scenarios/mod.rs`) produces a transcript (every call and its outcome in user
//! terms). Each `syscall_boundary_v7::<scenario>` test plays it in-process and across the syscall
//! boundary, requires the identical transcript, the identical final TPH registers and the
//! identical hardware access trace, and checks the facts `scenarios/expect.rs` states of it on a
//! v7 kernel. `conformance_feature.rs` does the same on the feature revision.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod scenarios;

use scenarios::{child_half, Kernel};
use tph_client::Revision;
use tph_kernel::KernelAbi;

const V7: Kernel = Kernel {
    revision: Revision::V7,
    abi: KernelAbi::V7,
    child_env: "TPH_CLIENT_CONFORMANCE_CHILD",
    child_test: "conformance_child_half",
    for_tph: false,
};

#[test]
#[ignore = "child half of the conformance syscall_boundary tests; run by the supervisor"]
fn conformance_child_half() {
    child_half(&V7);
}

scenarios::syscall_boundary_tests!(syscall_boundary_v7, V7);
