//! One module per subcommand; each owns its `Args` and `run`.

pub mod demo;
pub mod list;
pub mod session;
pub mod show;
pub mod stmap;
pub mod tagmap;
pub mod vm;

/// Outcome of a subcommand that did not fail: whether the asked-for thing was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    /// Exit 0.
    Yes,
    /// Exit 1: the asked-for thing is absent (no TPH device, BDF not present, ...).
    No,
}

/// An error a subcommand reports once, as `tphctl: context: cause`.
#[derive(Debug)]
pub struct CliError {
    /// What was being done.
    pub context: String,
    /// Why it failed.
    pub cause: Box<dyn std::error::Error + Send + Sync>,
}

impl CliError {
    /// Wraps `cause` with `context`.
    pub fn new(
        context: impl Into<String>,
        cause: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Self {
            context: context.into(),
            cause: cause.into(),
        }
    }
}

/// Result type of every subcommand.
pub type CmdResult = Result<Found, CliError>;

/// Maps a subcommand result to the process exit code, printing the error once.
pub fn finish(result: CmdResult) -> i32 {
    match result {
        Ok(Found::Yes) => 0,
        Ok(Found::No) => 1,
        Err(e) if is_broken_pipe(&*e.cause) => 0,
        Err(e) => {
            eprintln!("tphctl: {}: {}", e.context, e.cause);
            2
        }
    }
}

fn is_broken_pipe(e: &(dyn std::error::Error + 'static)) -> bool {
    e.downcast_ref::<std::io::Error>()
        .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
}
