//! Test kit (published because `tphctl emulate` is built on it): run a
//! real, unmodified program whose VFIO calls cross the real syscall boundary and are answered
//! by the kernel model.
//!
//! - [`harness`]: a child process whose chosen ioctls (and whole syscalls) are trapped with
//!   seccomp user notification and answered by an [`harness::IoctlHandler`] in this process.
//! - [`model::ModelHandler`]: answers a driver's TPH, MSI-X, reset and config-region calls with
//!   one open fd of the model.
//! - [`vfio_host`]: a whole VFIO host (the legacy and cdev opening sequences, region and IRQ
//!   info) over a fake `/sys` and `/dev` bind-mounted in the child's private mount namespace.
//! - [`differential`]: a real kernel's TPH core (through a served function's trace) against
//!   the model's: the same calls, the same return values and register accesses.
//! - [`emulate`]: any program run against an emulated host, every TPH function bound to
//!   vfio-pci (`tphctl emulate`).
//!
//! `unsafe` lives only in the private `sys` module (seccomp, fd passing, pre-exec set-up).
//!
//! Linked by `tphctl` (for `tphctl emulate`) and, as a dev-dependency, by the tests of
//! `tph-client`. A driver never links it: it is a way to test one.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod differential;
pub mod emulate;
mod error;
pub mod harness;
pub mod model;
mod sys;
pub mod vfio_host;

pub use error::Error;

use std::os::fd::{AsFd, OwnedFd};

use tph_client::backend::Backend;
use tph_client::TphDevice;

/// Whether the tests run under continuous integration: the environment variable `CI` is set
/// and not empty (CI systems set it; `.ci/run` sets `CI=1` when they do not).
pub fn under_ci() -> bool {
    ci_says(std::env::var_os("CI").as_deref())
}

fn ci_says(value: Option<&std::ffi::OsStr>) -> bool {
    value.is_some_and(|v| !v.is_empty())
}

/// A test that cannot run on this machine (no seccomp user notification, no privileges, no C
/// compiler) says why and passes; under CI ([`under_ci`]) it fails instead, so nothing that
/// was meant to run is counted as passed without running.
///
/// ```
/// if !tph_testkit::under_ci() {
///     tph_testkit::skip("an example of a reason");
/// }
/// ```
pub fn skip(why: impl std::fmt::Display) {
    assert!(
        !under_ci(),
        "this test cannot run here, and CI is set (tests must run, not skip, under CI): {why}"
    );
    // Straight to the process's stderr: the harness shows it even for a passing test.
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {why}");
}

/// Wires MSI-X vectors `0..n` of `dev` to `n` fresh eventfds, as a driver does with its own, and
/// returns them (the caller keeps them for as long as it wants the interrupts).
pub fn enable_msix<B: Backend>(
    dev: &mut TphDevice<B>,
    n: u32,
) -> Result<Vec<OwnedFd>, tph_client::Error> {
    let fds = (0..n)
        .map(|_| tph_client::backend::eventfd())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|errno| tph_client::Error::Backend {
            op: "creating eventfds",
            errno,
        })?;
    let borrowed: Vec<_> = fds.iter().map(AsFd::as_fd).collect();
    dev.enable_msix(&borrowed)?;
    Ok(fds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_a_set_non_empty_variable() {
        assert!(ci_says(Some(std::ffi::OsStr::new("1"))));
        assert!(ci_says(Some(std::ffi::OsStr::new("true"))));
        assert!(!ci_says(Some(std::ffi::OsStr::new(""))));
        assert!(!ci_says(None));
    }
}
