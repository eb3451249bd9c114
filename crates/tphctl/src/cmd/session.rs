//! `tphctl session SOURCE BDF`: take over one device and drive the VFIO TPH interface from
//! commands on stdin, one per line.
//!
//! SOURCE is an emulated machine (`--emulated`, the built-in default; `--dump FILE`, a machine
//! read from an `lspci -xxxx` dump) or a real device (`--vfio`). Every path goes through the same
//! client API (`tph_client::TphDevice`); only the backend below differs. Errors are answers: a
//! bad line or a refused call prints a message and the session goes on.

mod exec;
mod parse;
mod render;
mod target;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tph_acpi::SteeringTagSource;
use tph_client::backend::Backend;
use tph_client::emulated::EmulatedBackend;
use tph_client::open::{VfioInterface, VfioPaths};
use tph_client::{Probe, Revision, TphDevice};
use tph_kernel::{Host, HostOptions};
use tph_regs::machine::Bdf;

use super::{CliError, CmdResult, Found};
use exec::{run_line, SessionBackend};

/// Arguments of `tphctl session`.
#[derive(clap::Args, Debug)]
#[command(
    group(clap::ArgGroup::new("source").required(true).args(["dump", "emulated", "vfio"])),
    after_long_help = "Commands (one per line on stdin): cap | enable iv|ds | disable | irqs N | \
    get-st CPU[:vm|pm]... | set-st INDEX=CPU[:vm|pm]... | clear INDEX... | reset | reopen | \
    show | trace | raw HEX. Lines starting with # are skipped.\n\
    --json: one object per command with `cmd`, `ok`, `errno` (name or null), `error` (message, \
    when not ok) and the results: cap `modes`, `st_table_size`; get-st `tags` [{cpu, mem, st}]; \
    show `control` (raw register), `location`, `st_table` (raw 16-bit entries); trace \
    `accesses`; raw `ret` (null on failure) and `out` (argument bytes after the call, hex).\n\
    Exit status 1 when BDF is not in the machine, 2 when the device cannot be taken over."
)]
pub struct Args {
    /// Emulate the machine read from this `lspci -xxxx` dump.
    #[arg(long, value_name = "FILE")]
    dump: Option<PathBuf>,
    /// Emulate the built-in default machine.
    #[arg(long)]
    emulated: bool,
    /// Use the real device through VFIO (it must be bound to vfio-pci).
    #[arg(long)]
    vfio: bool,
    /// The device, as lspci prints it: 01:00.0 or 0000:01:00.0.
    bdf: String,
    /// Emulated host: number of present CPUs (default 8).
    #[arg(long, value_name = "N")]
    cpus: Option<u32>,
    /// Emulated host (--emulated or --dump): the firmware answering the steering-tag `_DSM`.
    /// PATH is a table file of lines `UID 0xST_INFO`, an ASL file (compiled with iasl, package
    /// acpica-tools), an AML table (.aml, .dat) or a folder of DSDT/SSDT files; its host bridge
    /// `_DSM` is run by the tph-acpi AML interpreter [default: built-in answers, UID u: VM tag
    /// u (16-bit 0x100+u), PM tag 0x80|u (16-bit 0x8000|u)].
    #[arg(long, value_name = "PATH", conflicts_with = "vfio")]
    firmware: Option<PathBuf>,
    /// Emulated host: vfio-pci enable_unsafe_tph_ds_mode=1.
    #[arg(long)]
    unsafe_ds_mode: bool,
    /// Emulated host: booted with pci=notph.
    #[arg(long)]
    notph: bool,
    /// One JSON object per command instead of text.
    #[arg(long)]
    json: bool,
    /// With --vfio: assume this kernel interface revision (v7, feature, unknown) instead of
    /// probing /sys/module/vfio_pci*/parameters.
    #[arg(long, value_name = "REV")]
    kernel_abi: Option<Revision>,
    /// With --vfio: open the device through this VFIO interface: `cdev` (the device cdev
    /// /dev/vfio/devices/vfioN with /dev/iommu), `legacy` (/dev/vfio/vfio and the IOMMU group),
    /// or `auto`: the cdev when the kernel offers one for the device, else legacy [default:
    /// auto].
    #[arg(long, value_name = "IF", conflicts_with_all = ["emulated", "dump"])]
    vfio_interface: Option<VfioInterface>,
}

/// Runs the subcommand.
pub fn run(args: Args) -> CmdResult {
    let stdin = std::io::stdin();
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::new(stdout.lock());
    let found = start(&args, &mut stdin.lock(), &mut out)?;
    out.flush()
        .map_err(|e| CliError::new("writing output", e))?;
    Ok(found)
}

fn start(args: &Args, input: &mut impl BufRead, out: &mut impl Write) -> CmdResult {
    if args.vfio {
        return start_vfio(args, input, out);
    }
    let host = build_host(args)?;
    let bdf: Bdf = args.bdf.parse().map_err(|e| CliError::new("session", e))?;
    if host.machine().function(bdf).is_none() {
        eprintln!("tphctl: session: no device {} in the machine", args.bdf);
        return Ok(Found::No);
    }
    let context = format!("session {bdf}");
    let backend = EmulatedBackend::take_over(&host, bdf).map_err(|e| CliError::new(&context, e))?;
    let dev =
        TphDevice::with_revision(backend, Revision::V7).map_err(|e| CliError::new(&context, e))?;
    serve(dev, args.json, input, out)
}

fn start_vfio(args: &Args, input: &mut impl BufRead, out: &mut impl Write) -> CmdResult {
    let context = format!("session --vfio {}", args.bdf);
    let probe = match args.kernel_abi {
        Some(rev) => Probe::default().with_override(rev),
        None => Probe::default(),
    };
    let report = probe.run();
    if report.revision == Revision::Unknown {
        let why = format!(
            "the kernel has no VFIO TPH interface this client can use ({}: {}; nothing was \
             sent) (fix: --kernel-abi v7 or --kernel-abi feature, when you know the kernel has \
             that revision)",
            report.revision,
            report.evidence.join("; ")
        );
        return Err(CliError::new(context, why));
    }
    let paths = VfioPaths {
        interface: args.vfio_interface.unwrap_or_default(),
        ..VfioPaths::default()
    };
    let backend =
        target::RealDevice::open(&args.bdf, paths).map_err(|e| CliError::new(&context, e))?;
    let dev = TphDevice::with_revision(backend, report.revision)
        .map_err(|e| CliError::new(&context, e))?;
    serve(dev, args.json, input, out)
}

fn build_host(args: &Args) -> Result<Host, CliError> {
    let mut options = HostOptions {
        notph: args.notph,
        unsafe_ds: args.unsafe_ds_mode,
        ..HostOptions::default()
    };
    if let Some(n) = args.cpus {
        options.cpus = n;
    }
    if let Some(path) = &args.firmware {
        options.firmware = firmware(path)?;
    }
    match &args.dump {
        None => Ok(Host::with_default_machine(options)),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| CliError::new(format!("reading {}", path.display()), e))?;
            let machine = tph_regs::dump::parse_lspci_dump(&text)
                .map_err(|e| CliError::new(format!("dump {}", path.display()), e))?;
            Ok(Host::new(machine, options))
        }
    }
}

/// The emulated host's firmware from `--firmware PATH`, any kind `tph_acpi::firmware` opens;
/// AML terms the loader skipped are warned about once each.
fn firmware(path: &Path) -> Result<Arc<dyn SteeringTagSource>, CliError> {
    let fw = tph_acpi::firmware::open(path)
        .map_err(|e| CliError::new(format!("firmware {}", path.display()), e))?;
    for s in &fw.skipped {
        eprintln!("tphctl: warning: {}: {s}", path.display());
    }
    Ok(fw.source)
}

/// Reads commands until end of input, answering each one. The one loop for every backend.
fn serve<B: SessionBackend + Backend>(
    mut dev: TphDevice<B>,
    json: bool,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> CmdResult {
    let io = |e| CliError::new("session", e);
    for line in input.lines() {
        let line = line.map_err(io)?;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let reply = run_line(&mut dev, line);
        let written = if json {
            render::json_line(out, &reply)
        } else {
            render::text(out, &reply)
        };
        // One reply per command, flushed: a program driving the session through a pipe waits
        // for each answer before it sends the next command.
        written
            .and_then(|()| out.flush())
            .map_err(|e| CliError::new("writing output", e))?;
    }
    Ok(Found::Yes)
}
