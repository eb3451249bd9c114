//! `tphctl show` (not built yet: owned by its issue).

use super::{CliError, CmdResult};

/// Arguments of `tphctl show`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> CmdResult {
    Err(CliError::new("show", "not implemented yet"))
}
