//! `tphctl stmap` (not built yet: owned by its issue).

use super::{CliError, CmdResult};

/// Arguments of `tphctl stmap`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs the subcommand.
pub fn run(_args: Args) -> CmdResult {
    Err(CliError::new("stmap", "not implemented yet"))
}
