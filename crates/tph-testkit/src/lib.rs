//! Test kit: helpers for the workspace's tests, never published (`publish = false`) and never a
//! normal dependency of a published crate (`tests/not_published.rs` checks both).
//!
//! - [`differential`]: a real kernel's TPH core (through a served function's trace) against
//!   the model's: the same calls, the same return values and register accesses.
//! - [`skip`] and [`under_ci`]: a test that cannot run on this machine says why, and fails
//!   instead under CI.
//! - [`enable_msix`]: MSI-X vectors wired to fresh eventfds, as a driver wires its own.
//!
//! The emulation host that the end-to-end tests drive a program through (the seccomp harness,
//! the fake VFIO host, `tphctl emulate`) is the published crate `tph-emulate`. This crate's
//! `tests/public_api.rs` holds the public-API snapshot of every published library crate.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod differential;
mod error;

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
