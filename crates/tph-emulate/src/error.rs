//! The crate's one error enum.

use std::path::PathBuf;

/// What can go wrong while setting up or running a supervised child.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The harness could not set up or run its child.
    #[error("harness: {what}: {source}")]
    Harness {
        /// What was being done.
        what: &'static str,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// More requests and syscalls to trap than one seccomp filter can jump over.
    #[error("harness: {count} requests and syscalls to trap; one filter takes at most {max}")]
    TooManyTrapped {
        /// How many were asked for.
        count: usize,
        /// The bound.
        max: usize,
    },
    /// This kernel lacks something the harness needs.
    #[error("this kernel does not offer {what}")]
    Unsupported {
        /// What is missing.
        what: &'static str,
    },
    /// The supervised child did not finish in time and was killed.
    #[error("harness: the supervised child did not finish in time and was killed")]
    Timeout,
    /// Building the fake VFIO tree failed.
    #[error("fake VFIO tree: {}: {source}", .path.display())]
    Tree {
        /// The path being created.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The kernel model refused taking over or opening the device.
    #[error("{op} failed: {errno}")]
    Model {
        /// What was being done.
        op: &'static str,
        /// The model's errno.
        errno: tph_client::Errno,
    },
}
