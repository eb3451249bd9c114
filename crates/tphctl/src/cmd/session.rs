//! `tphctl session SOURCE BDF`: take over one device and drive the VFIO TPH interface from
//! commands on stdin, one per line.
//!
//! SOURCE is an emulated machine (`--emulated`, the built-in default; `--dump FILE`, a machine
//! read from an `lspci -xxxx` dump) or a real device (`--vfio`). Every path goes through the same
//! client API (`tph_client::TphDevice`); only the backend below differs. Errors are answers: a
//! bad line or a refused call prints a message and the session goes on.

mod exec;
mod render;
mod target;

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use tph_acpi::SteeringTagSource;
use tph_client::backend::Backend;
use tph_client::open::{VfioInterface, VfioPaths};
use tph_client::{Probe, Revision, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::{Host, HostOptions, KernelAbi};
use tph_regs::dump::DumpLimits;
use tph_regs::machine::Bdf;
use tph_regs::source::read_dump_for;
use tph_report::report::{tph_presence, TphPresence};
use tph_report::source::DUMP_FIX;

use super::{CliError, CmdResult, Found};
use exec::{run_line, HostFirmware, Limits, Reply, SessionBackend};

// Arguments of `tphctl session`. A plain comment: clap adds these arguments deferred, after the
// subcommand's about text (main.rs), and a doc comment here would replace that text.
#[derive(clap::Args, Debug)]
#[command(
    group(clap::ArgGroup::new("source").required(true).args(["dump", "emulated", "vfio"])),
    after_long_help = "Commands (one per line on stdin): cap | enable iv|ds (or \
    interrupt_vector|device_specific) | disable | irqs N (N <= 2048) | get-st CPU[:vm|pm]... | \
    set-st INDEX=CPU[:vm|pm]... | clear INDEX... | reset | reopen | show | trace | raw HEX | \
    feature HEX | cfg-read OFF LEN | cfg-write OFF HEX. Lines starting with # are skipped. A \
    line may hold at most 65536 bytes; a longer one, or one that is not UTF-8, is answered with \
    an error naming its line number.\n\
    Raw commands (held-out style testing; the client's own checks are bypassed): raw HEX is a \
    VFIO_DEVICE_PCI_TPH argument (v7 kernels only), feature HEX a VFIO_DEVICE_FEATURE argument \
    (argsz first), cfg-read OFF LEN reads LEN (at most 4096) bytes of the config region at OFF, \
    cfg-write OFF HEX writes the bytes HEX (in memory order: 02000000 is the dword 2) at OFF. \
    Each prints `ret N errno E out HEX`: the return value (bytes for cfg-*, -1 on failure), \
    the errno, and the argument bytes after the call (the bytes read for cfg-read).\n\
    --json: one object per command with `cmd`, `line`, `ok`, `errno`, `error` and `warning` \
    (null when they do not apply) and the results, named and shaped as in `list`, `show` and \
    `vm`; field names: crates/tphctl/README-json.md.\n\n\
    A function without a TPH capability is taken over too (a note on stderr says so): the \
    kernel answers its TPH calls with ENODEV, as for a driver.\n\n\
    Exit status: 0 every command succeeded; 1 BDF is not in the machine; 2 an error: the device cannot be taken over, or some command failed (each \
    failure is answered in the output; stderr counts them, with their line numbers). A \
    closed pipe on standard output ends the session quietly with status 0."
)]
pub struct Args {
    /// Emulate the machine read from this `lspci -xxxx` dump (not `-`: standard input
    /// carries the commands).
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
    /// Emulated host: number of present CPUs, 1 to 65536 (default 8); with the built-in
    /// firmware at most 128, the CPUs its 8-bit tags tell apart.
    #[arg(long, value_name = "N", conflicts_with = "vfio")]
    cpus: Option<u32>,
    /// Emulated host (--emulated or --dump): the firmware answering the steering-tag `_DSM`.
    /// PATH is a table file of lines `UID 0xST_INFO`, an ASL file (compiled with iasl, package
    /// acpica-tools), an AML table (.aml, .dat) or a folder of DSDT/SSDT files; its host bridge
    /// `_DSM` is run by the tph-acpi AML interpreter [default: built-in answers, UID u: VM tag
    /// u (16-bit 0x100+u), PM tag 0x80|u (16-bit 0x8000|u)].
    #[arg(long, value_name = "PATH", conflicts_with = "vfio")]
    firmware: Option<PathBuf>,
    /// Emulated host: vfio-pci's unsafe parameter on (enable_unsafe_tph_ds_mode=1 on v7,
    /// enable_unsafe_tph=1 on the feature revision).
    #[arg(long, conflicts_with = "vfio")]
    unsafe_ds_mode: bool,
    /// Emulated host: booted with pci=notph.
    #[arg(long, conflicts_with = "vfio")]
    notph: bool,
    /// One JSON object per command instead of text.
    #[arg(long)]
    json: bool,
    /// With --vfio: assume this kernel interface revision (v7, feature, unknown) instead of
    /// probing /sys/module/vfio_pci*/parameters. With --emulated or --dump: the revision the
    /// emulated vfio-pci speaks, v7 (the default) or feature.
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
    super::on_stdio(|input, out| start(&args, input, out))
}

fn start(args: &Args, input: &mut impl BufRead, out: &mut impl Write) -> CmdResult {
    if args.vfio {
        return start_vfio(args, input, out);
    }
    let bdf: Bdf = args.bdf.parse().map_err(|e| CliError::new("session", e))?;
    let host = build_host(args, bdf)?;
    let Some(f) = host.machine().function(bdf) else {
        eprintln!("tphctl: session: no device {} in the machine", args.bdf);
        return Ok(Found::No);
    };
    match tph_presence(&f.config) {
        TphPresence::Present(_) => {}
        TphPresence::Absent => {
            // A driver asks the kernel, whose ENODEV is its "this device has no TPH" path.
            eprintln!(
                "tphctl: session: note: {bdf} has no TPH Requester capability; the kernel is \
                 asked anyway (it answers ENODEV)"
            );
        }
        TphPresence::Unknown(u) => {
            let why = format!("TPH unknown: {}; {DUMP_FIX}", u.phrase());
            return Err(CliError::new(format!("session {bdf}"), why));
        }
    }
    let limits = Limits {
        firmware: Some(HostFirmware {
            source: Arc::clone(&host.options().firmware),
            cpu_uids: host.options().cpu_uids.clone(),
        }),
        ..Limits::of(&f.config, Some(host.options().cpus))
    };
    let context = format!("session {bdf}");
    let revision = super::client_revision(&context, host.options().abi)?;
    let backend = EmulatedBackend::take_over(&host, bdf).map_err(|e| CliError::new(&context, e))?;
    let dev =
        TphDevice::with_revision(backend, revision).map_err(|e| CliError::new(&context, e))?;
    serve(dev, &limits, args.json, input, out)
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
    let paths = VfioPaths::new().with_interface(args.vfio_interface.unwrap_or_default());
    let bdf: Bdf = args.bdf.parse().map_err(|e| CliError::new(&context, e))?;
    let backend = target::RealDevice::open(bdf, paths)
        .map_err(|e| CliError::new(&context, super::client_error(&e)))?;
    let mut dev = TphDevice::with_revision(backend, report.revision)
        .map_err(|e| CliError::new(&context, super::client_error(&e)))?;
    let limits = vfio_limits(&mut dev);
    serve(dev, &limits, args.json, input, out)
}

/// The real device's limits, from its configuration space (none when it cannot be read).
fn vfio_limits<B: Backend>(dev: &mut TphDevice<B>) -> Limits {
    let mut config = vec![0u8; tph_regs::dump::CONFIG_MAX];
    let cpus = dev.backend().cpu_count();
    match dev.backend_mut().read_config(0, &mut config) {
        Ok(()) => Limits::of(&config, cpus),
        Err(_) => Limits {
            cpus,
            ..Limits::default()
        },
    }
}

/// The emulated host; from a dump, only `bdf` (and the bridges) keep more than a header.
fn build_host(args: &Args, bdf: Bdf) -> Result<Host, CliError> {
    let abi = match args.kernel_abi {
        None | Some(Revision::V7) => KernelAbi::V7,
        Some(Revision::Feature) => KernelAbi::Feature,
        Some(other) => {
            let why = format!("an emulated host speaks v7 or feature, not {other}");
            return Err(CliError::new("session --kernel-abi", why));
        }
    };
    let mut options = HostOptions::new()
        .with_notph(args.notph)
        .with_unsafe_ds(args.unsafe_ds_mode)
        .with_abi(abi);
    if let Some(n) = super::emulated_cpus(args.cpus, args.firmware.is_some())? {
        options.cpus = n;
    }
    if let Some(path) = &args.firmware {
        options.firmware = firmware(path)?;
    }
    host(args.dump.as_deref(), options, Some(bdf))
}

/// The emulated host: the machine read from the `lspci -xxxx` dump `dump`, or the built-in
/// default machine. With `focus`, only that function (and the bridges) keep more than a header,
/// so memory follows what a one-device session uses.
pub(super) fn host(
    dump: Option<&Path>,
    options: HostOptions,
    focus: Option<Bdf>,
) -> Result<Host, CliError> {
    match dump {
        None => Ok(Host::with_default_machine(options)),
        Some(path) if path.as_os_str() == "-" => Err(CliError::new(
            "--dump -",
            "standard input carries the session's commands: give the dump as a file",
        )),
        Some(path) => {
            let machine = match focus {
                Some(bdf) => read_dump_for(path, DumpLimits::default(), bdf),
                None => tph_regs::source::read_dump(path, DumpLimits::default()),
            }
            .map_err(|e| CliError::new(format!("reading dump {}", path.display()), e))?;
            Ok(Host::new(machine, options))
        }
    }
}

/// The emulated host's firmware from `--firmware PATH`, any kind `tph_acpi::firmware` opens;
/// AML terms the loader skipped are warned about once each.
pub(super) fn firmware(path: &Path) -> Result<Arc<dyn SteeringTagSource>, CliError> {
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
    limits: &Limits,
    json: bool,
    input: &mut impl BufRead,
    out: &mut impl Write,
) -> CmdResult {
    let mut buf = Vec::with_capacity(256);
    let mut irqs = exec::Irqs::new();
    let mut failed = super::Failures::default();
    let mut commands = 0usize;
    for number in 1.. {
        let reply = match read_line(input, &mut buf, number)? {
            None => break,
            Some(Ok(line)) if line.is_empty() || line.starts_with('#') => continue,
            Some(Ok(line)) => run_line(&mut dev, &mut irqs, line, number, limits),
            Some(Err(bad)) => bad,
        };
        commands += 1;
        if !reply.ok() {
            failed.push(number);
        }
        let written = if json {
            render::json_line(out, &reply, number)
        } else {
            render::text(out, &reply)
        };
        // One reply per command, flushed: a program driving the session through a pipe waits
        // for each answer before it sends the next command.
        written
            .and_then(|()| out.flush())
            .map_err(|e| CliError::new("writing output", e))?;
    }
    if failed.is_empty() {
        return Ok(Found::Yes);
    }
    out.flush()
        .map_err(|e| CliError::new("writing output", e))?;
    failed.report("session", commands);
    Ok(Found::Failed)
}

/// One line of input, at most [`tphctl::lines::MAX_LINE`] bytes kept: `None` at end of input,
/// the trimmed text, or the answer for a line too long or not UTF-8 (the rest of a long line is
/// skipped without being kept in memory).
fn read_line<'b>(
    input: &mut impl BufRead,
    buf: &'b mut Vec<u8>,
    number: usize,
) -> Result<Option<Result<&'b str, Reply>>, CliError> {
    Ok(read_bounded_line(input, buf, number, "session")?
        .map(|line| line.map_err(|bad| Reply::bad_line(&bad.quoted, bad.why))))
}

/// One line of `input` for the subcommand `what` ([`tphctl::lines::read_bounded_line`]), a
/// read error reported as the subcommand's.
pub(super) fn read_bounded_line<'b>(
    input: &mut impl BufRead,
    buf: &'b mut Vec<u8>,
    number: usize,
    what: &str,
) -> Result<Option<Result<&'b str, tphctl::lines::BadLine>>, CliError> {
    tphctl::lines::read_bounded_line(input, buf, number)
        .map_err(|e| CliError::new(format!("{what}: reading standard input"), e))
}
