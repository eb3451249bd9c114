//! The test kit's one error enum.

/// What can go wrong in a test kit helper.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A line of a guest test's call log (`differential`) that cannot be read.
    #[error("call log line {line}: {why}")]
    CallLog {
        /// Line number (from 1).
        line: usize,
        /// What is wrong, with the line's start.
        why: String,
    },
}
