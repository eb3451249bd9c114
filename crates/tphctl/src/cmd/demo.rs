//! `tphctl demo` (not built yet: owned by its issue).

use super::{CliError, CmdResult};

/// Arguments of `tphctl demo`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> CmdResult {
    Err(CliError::new("demo", "not implemented yet"))
}
