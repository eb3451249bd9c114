//! `tphctl`: inspect and control PCIe TLP Processing Hints.
//!
//! A thin binary: it parses arguments, calls the library crates, renders, and maps errors to exit
//! codes (0 success, 1 the asked-for thing is absent, 2 error; see `cmd::EXIT_STATUS`). Nothing
//! links it; it links its package's library (the `session` and `vm` command languages, which
//! the fuzz crate links too), `tph-regs`, `tph-acpi`, `tph-kernel`, `tph-client`, `tph-emu`,
//! `tph-emulate` (for `emulate`), `tph-vmm` and `tph-vfio-user` (for `serve`).
#![forbid(unsafe_code)]

mod cmd;

use clap::{Parser, Subcommand};

/// Inspect and control PCIe TLP Processing Hints (TPH) steering tags.
#[derive(Parser)]
#[command(name = "tphctl", version, about, long_about = None, after_help = cmd::EXIT_STATUS)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// Each subcommand's arguments are added only when it is the one invoked (clap's `defer`):
/// building all eight subcommands' parsers was most of what `tphctl show --lspci` did before
/// reading its dump.
#[derive(Subcommand)]
#[command(defer = true)]
enum Command {
    /// List functions with a TPH Requester capability.
    List(cmd::list::Args),
    /// Decode the TPH state of one function (or all), beyond what lspci prints.
    Show(cmd::show::Args),
    /// Take over one device and drive the VFIO TPH ioctl from commands on stdin.
    Session(cmd::session::Args),
    /// Show the steering tag firmware gives each CPU (host bridge _DSM, rev 7, function 0xF).
    StMap(cmd::stmap::Args),
    /// Run the built-in demonstration scenario on the embedded emulated machine.
    Demo(cmd::demo::Args),
    /// Run a program unmodified against the emulated kernel: the TPH functions (or every
    /// endpoint) bound to vfio-pci, its VFIO calls answered by the model.
    Emulate(cmd::emulate::Args),
    /// Pass one device through to a VM (tph-vmm) and drive its guest and VMM sides from stdin.
    Vm(cmd::vm::Args),
    /// Serve one function of an emulated machine as a vfio-user device (QEMU's vfio-user-pci)
    /// until the client leaves.
    Serve(cmd::serve::Args),
}

fn main() {
    // `tphctl --version` alone is answered before the parser is built: building it (every
    // subcommand's arguments and help) is most of what tphctl does before `main` can work.
    let mut args = std::env::args_os().skip(1);
    if let (Some(a), None) = (args.next(), args.next())
        && (a == "--version" || a == "-V")
    {
        use std::io::Write;
        let version = concat!("tphctl ", env!("CARGO_PKG_VERSION"), "\n");
        let _ = std::io::stdout().lock().write_all(version.as_bytes());
        return;
    }
    let cli = Cli::parse();
    if let Err(e) = cmd::check_stdout() {
        std::process::exit(cmd::finish(Err(e)));
    }
    let result = match cli.command {
        Command::List(a) => cmd::list::run(a),
        Command::Show(a) => cmd::show::run(a),
        Command::Session(a) => cmd::session::run(a),
        Command::StMap(a) => cmd::stmap::run(a),
        Command::Demo(a) => cmd::demo::run(a),
        Command::Emulate(a) => std::process::exit(cmd::emulate::run(a)),
        Command::Vm(a) => cmd::vm::run(a),
        Command::Serve(a) => std::process::exit(cmd::serve::run(a)),
    };
    std::process::exit(cmd::finish(result));
}
