//! `tphctl serve --vfio-user SOCKET SOURCE BDF`: serves one function of an emulated machine as
//! a vfio-user device (`tph-vfio-user`) until the client (QEMU's `vfio-user-pci`) leaves or
//! SIGINT / SIGTERM comes (caught through `signal-hook`: the session then ends as the client
//! leaving does); with
//! `--vm`, `tph-vmm`'s virtual function in front of the emulated host's function. A thin
//! wrapper: the server is the library's.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use tph_client::{Revision, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::vfio::VfioDevice;
use tph_kernel::{Host, HostOptions, KernelAbi};
use tph_regs::machine::Bdf;
use tph_regs::msix::MsixCap;
use tph_vfio_user::{Device, EmulatedFunction, Error, Function, Handle, Server, VmFunction};
use tph_vmm::ssdt::{self, SsdtSpec};
use tph_vmm::VirtualTph;
use tphctl::lines::BadLine;
use tphctl::vm::{Command as VmCommand, Pin};

use super::{CliError, CmdResult, Found};

// Arguments of `tphctl serve`. A plain comment: clap adds these arguments deferred, after the
// subcommand's about text (main.rs), and a doc comment here would replace that text.
#[derive(clap::Args, Debug)]
#[command(
    group(clap::ArgGroup::new("source").required(true).args(["dump", "emulated"])),
    after_long_help = "The function is served as it is: a guest kernel reads and writes its \
    registers itself (its own PCI TPH core enables TPH and writes the steering tags). Regions: \
    configuration space (region 7; 4 KiB for PCI Express), the BARs that hold the MSI-X table \
    and PBA (other BARs absent); interrupts through the eventfds the client hands over with \
    SET_IRQS; a device reset is a function-level reset; DMA maps are recorded. Start QEMU \
    (11.1 or later) with\n  -object memory-backend-memfd,id=mem,size=512M,share=on -machine \
    memory-backend=mem\n  -device pcie-root-port,id=rp1,chassis=1,slot=1\n  -device \
    '{\"driver\":\"vfio-user-pci\",\"socket\":{\"path\":\"SOCKET\",\"type\":\"unix\"},\"bus\":\"rp1\"}'\n\
    `listening on SOCKET` is printed on standard output once QEMU can connect; when the \
    client leaves, one line counts what it did.\n\
    --trace FILE: one line per access as `tphctl session` shows a trace (`cfg  wr 0x108/4 <- \
    0x101: TPH Control: NS off -> IV TPH`, `msix wr vec 0 +0xc <- ...`), and one per server \
    event (`irqs msix 0+4: eventfds set`, `reset (DEVICE_RESET): ...`, `dma map ...`, \
    `client left`).\n\
    --vm: the guest sees tph-vmm's virtual function in front of the function of an emulated \
    host (the host's kernel: --kernel-abi, --cpus, --firmware, --unsafe-ds-mode), as `tphctl \
    vm` has it: the TPH capability is the layer's (guest tags name vCPUs, the host gets the \
    tags of the pinned host CPUs), the rest of configuration space passes through to the host, \
    the MSI-X table is the VMM's own with Vector Control's tag half handed to the layer, the \
    client's MSI-X eventfds become the host's MSI-X set-up, and a guest FLR or device reset \
    runs the layer's reset hook. When the client leaves (QEMU ends or is killed), the layer's \
    reset hook runs too, so the host function ends with TPH off and the entries the layer \
    programmed cleared; stderr says so (`the client left; the VM layer reset the host \
    function's TPH ...`), and a host failure there is exit status 2. The trace adds `vm ...` \
    lines (each hook's effect; `vm client left: reset hook: ...` last) and \
    `host ...` lines (the host function's accesses). Commands on standard input while the \
    guest runs: `pin VCPU:PCPU` (or `pin VCPU:none`) re-pins, answered `> pin 1:6` and `ok; \
    host calls N` or `error: ...` on standard output; a line may hold at most 65536 bytes (a \
    longer one, or one that is not UTF-8, is answered with an error naming its line number).\n\n\
    SIGINT (Ctrl-C) and SIGTERM end a session as the client leaving does (with --vm, the \
    layer's reset hook; the trace, --host-state and the socket's removal as usual), or end \
    `serve` at once before a client came; stderr names the signal.\n\n\
    Exit status: 0 the client came and left; 128 + N signal N (SIGINT 130, SIGTERM 143) \
    ended it; 1 BDF is not in the machine; 2 an error: the \
    socket is in use or is not a socket, the client does not speak vfio-user 0.x (protocol \
    mismatch), the trace or a file cannot be written, the VM cannot be set up, the host \
    refused the reset when the client left."
)]
pub struct Args {
    /// The socket to listen on (a socket nobody listens on is replaced; anything else there
    /// is refused).
    #[arg(long, value_name = "SOCKET", required = true)]
    vfio_user: PathBuf,
    /// Serve a function of the machine read from this `lspci -xxxx` dump.
    #[arg(long, value_name = "FILE")]
    dump: Option<PathBuf>,
    /// Serve a function of the built-in default machine.
    #[arg(long)]
    emulated: bool,
    /// The function, as lspci prints it: 02:00.0 or 0000:02:00.0.
    bdf: String,
    /// Write every access and server event to FILE.
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// Serve tph-vmm's virtual function in front of the emulated host's function.
    #[arg(long, requires = "pin")]
    vm: bool,
    /// With --vm: vCPU pinning, VCPU:PCPU pairs, comma-separated (vCPUs not named are
    /// unpinned).
    #[arg(long, value_name = "VCPU:PCPU,...", requires = "vm")]
    pin: Option<String>,
    /// With --vm: vCPUs of the VM [default: the highest pinned vCPU + 1].
    #[arg(long, value_name = "N", requires = "vm")]
    vcpus: Option<u32>,
    /// With --vm: the emulated host's present CPUs (default 8).
    #[arg(long, value_name = "N", requires = "vm")]
    cpus: Option<u32>,
    /// With --vm: the emulated host's firmware answering the steering-tag `_DSM` (as for
    /// `tphctl session --firmware`).
    #[arg(long, value_name = "PATH", requires = "vm")]
    firmware: Option<PathBuf>,
    /// With --vm: the emulated host's kernel interface, v7 or feature [default: v7].
    #[arg(long, value_name = "REV", requires = "vm")]
    kernel_abi: Option<Revision>,
    /// With --vm: the host's vfio-pci unsafe parameter and the VMM's unsafe option (Device
    /// Specific mode shown to the guest, pinning fixed).
    #[arg(long, requires = "vm")]
    unsafe_ds_mode: bool,
    /// With --vm: write the guest's SSDT (its host bridge `_DSM` handing out the vCPUs'
    /// virtual tags) to FILE, for QEMU's `-acpitable file=FILE`.
    #[arg(long, value_name = "FILE", requires = "vm")]
    ssdt: Option<PathBuf>,
    /// With --vm: when the guest has gone away and the VM layer has reset the host
    /// function's TPH, before the host function is closed, write the host function as
    /// `tphctl show --json` shows one function (entries included) to FILE.
    #[arg(long, value_name = "FILE", requires = "vm")]
    host_state: Option<PathBuf>,
}

/// Runs the subcommand; the exit status (128 + the signal's number when SIGINT or SIGTERM
/// ended it, after the clean-up a leaving client gets).
pub fn run(args: Args) -> i32 {
    let signal = Arc::new(AtomicI32::new(0));
    let code = super::finish(run_until_left(&args, &signal));
    match signal.load(Ordering::SeqCst) {
        0 => code,
        n => 128 + n,
    }
}

fn run_until_left(args: &Args, signal: &Arc<AtomicI32>) -> CmdResult {
    let bdf: Bdf = args.bdf.parse().map_err(|e| CliError::new("serve", e))?;
    if args.dump.as_ref().is_some_and(|d| d.as_os_str() == "-") {
        return Err(CliError::new(
            "--dump -",
            "give the dump as a file (standard input is kept for commands)",
        ));
    }
    if args.vm {
        return run_vm(args, bdf, signal);
    }
    let host = super::session::host(args.dump.as_deref(), HostOptions::default(), Some(bdf))?;
    let function = match EmulatedFunction::from_machine(host.machine(), bdf) {
        Ok(f) => f,
        Err(e @ Error::Function(_)) if host.machine().function(bdf).is_none() => {
            eprintln!("tphctl: serve: {e}");
            return Ok(Found::No);
        }
        Err(e) => return Err(CliError::new(format!("serve {bdf}"), e)),
    };
    let mut device = Device::new(function, trace_file(args.trace.as_deref())?);
    let handle = device.handle();
    serve(args, bdf, &mut device, &handle, signal)
}

fn trace_file(path: Option<&Path>) -> Result<Option<Box<dyn Write + Send>>, CliError> {
    let Some(path) = path else {
        return Ok(None);
    };
    let file = std::fs::File::create(path)
        .map_err(|e| CliError::new(format!("--trace {}", path.display()), e))?;
    Ok(Some(Box::new(std::io::BufWriter::new(file))))
}

/// Listens, serves one client, and says how it went. SIGINT and SIGTERM end the session as
/// the client leaving does (its number is put in `signal`).
fn serve<F: Function + 'static>(
    args: &Args,
    bdf: Bdf,
    device: &mut Device<F>,
    handle: &Handle<F>,
    signal: &Arc<AtomicI32>,
) -> CmdResult {
    let context = format!("serve {bdf} on {}", args.vfio_user.display());
    let server = Server::bind(&args.vfio_user).map_err(|e| CliError::new(&context, e))?;
    let mut signals = Signals::new([SIGINT, SIGTERM])
        .map_err(|e| CliError::new("serve: catching SIGINT and SIGTERM", e))?;
    let signals_handle = signals.handle();
    let watcher = {
        let (stopper, handle, signal) = (server.stopper(), handle.clone(), Arc::clone(signal));
        std::thread::spawn(move || {
            if let Some(n) = signals.forever().next() {
                signal.store(n, Ordering::SeqCst);
                let name = if n == SIGINT { "SIGINT" } else { "SIGTERM" };
                eprintln!(
                    "tphctl: serve: {name}: stopping; a session ends as if its client had left"
                );
                handle.note(format!("signal {name}: ending the session"));
                stopper.stop();
            }
        })
    };
    announce(&format!("listening on {}", args.vfio_user.display()))?;
    let served = server.serve(device);
    signals_handle.close();
    let _ = watcher.join();
    let session = match served {
        Err(tph_vfio_user::Error::Stopped) => return Ok(Found::Yes),
        served => served.map_err(|e| CliError::new(&context, e))?,
    };
    if let Some(e) = handle.take_trace_error() {
        return Err(CliError::new("writing the trace", e));
    }
    let c = handle.counters();
    announce(&format!(
        "client (vfio-user {}.{}) left: {} reads, {} writes, {} resets, {} SET_IRQS, {} \
         interrupts signalled",
        session.client_version.0,
        session.client_version.1,
        c.reads,
        c.writes,
        c.resets,
        c.set_irqs,
        c.interrupts
    ))?;
    Ok(Found::Yes)
}

/// One line on standard output, flushed (a script waits for it).
fn announce(line: &str) -> Result<(), CliError> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| CliError::new("writing output", e))
}

/// `--vm`: the emulated host's function behind tph-vmm's virtual function.
fn run_vm(args: &Args, bdf: Bdf, signal: &Arc<AtomicI32>) -> CmdResult {
    let abi = match args.kernel_abi.unwrap_or(Revision::V7) {
        Revision::V7 => KernelAbi::V7,
        Revision::Feature => KernelAbi::Feature,
        _ => {
            return Err(CliError::new(
                "serve --vm",
                "--kernel-abi takes v7 or feature",
            ));
        }
    };
    let mut options = HostOptions::new()
        .with_unsafe_ds(args.unsafe_ds_mode)
        .with_abi(abi);
    if let Some(n) = super::emulated_cpus(args.cpus, args.firmware.is_some())? {
        options.cpus = n;
    }
    if let Some(path) = &args.firmware {
        options.firmware = super::session::firmware(path)?;
    }
    let host = super::session::host(args.dump.as_deref(), options, Some(bdf))?;
    let Some(config) = host.machine().function(bdf).map(|f| f.config.clone()) else {
        eprintln!("tphctl: serve: no function {bdf} in the machine");
        return Ok(Found::No);
    };
    let context = format!("serve --vm {bdf}");
    let cfg = super::vm::checked_config(
        args.pin.as_deref().unwrap_or_default(),
        args.vcpus,
        args.unsafe_ds_mode,
        host.machine(),
        bdf,
        host.options().cpus,
    )
    .map_err(|e| CliError::new(&context, e))?;
    let backend = EmulatedBackend::take_over(&host, bdf).map_err(|e| CliError::new(&context, e))?;
    let host_device = backend.device().clone();
    let revision = super::client_revision(&context, abi)?;
    let dev =
        TphDevice::with_revision(backend, revision).map_err(|e| CliError::new(&context, e))?;
    let mut vtph = VirtualTph::new(dev, cfg).map_err(|e| CliError::new(&context, e))?;
    if let Some(path) = &args.ssdt {
        let table = guest_ssdt(&mut vtph).map_err(|e| CliError::new(&context, e))?;
        std::fs::write(path, table)
            .map_err(|e| CliError::new(format!("--ssdt {}", path.display()), e))?;
    }
    // What vfio-pci did at take-over and open is the host's set-up, not the guest's doing.
    host_device.drain_trace();
    let traced = host_device.clone();
    let host_trace = Box::new(move |out: &mut Vec<String>| {
        out.extend(traced.drain_trace().iter().map(ToString::to_string));
    });
    let function = VmFunction::new(vtph, &config, Some(host_trace));
    let mut device = Device::new(function, trace_file(args.trace.as_deref())?);
    let handle = device.handle();
    let commands = handle.clone();
    std::thread::spawn(move || repin_from_stdin(&commands));
    let found = serve(args, bdf, &mut device, &handle, signal)?;
    let left = handle.with_function(|f| f.client_left_effect().cloned());
    if let Some(path) = &args.host_state {
        write_host_state(path, &host, bdf, &host_device)?;
    }
    match left
        .as_ref()
        .map(|e| (e.host_calls, e.host_failures.first()))
    {
        Some((_, Some(failure))) => Err(CliError::new(
            "serve --vm",
            format!(
                "the client left, and the VM layer's reset of the host function failed \
                 ({failure}): the host may still hold the guest's steering tags"
            ),
        )),
        Some((0, None)) => {
            eprintln!(
                "tphctl: serve: the client left; the host function's TPH was already off and \
                 clean (no host call)"
            );
            Ok(found)
        }
        Some((calls, None)) => {
            eprintln!(
                "tphctl: serve: the client left; the VM layer reset the host function's TPH \
                 (host calls {calls}): TPH off, none of the guest's tags left in the table"
            );
            Ok(found)
        }
        None => Ok(found),
    }
}

/// The guest's SSDT, as `tphctl vm` builds it.
fn guest_ssdt(
    vtph: &mut VirtualTph<EmulatedBackend>,
) -> Result<Vec<u8>, Box<dyn std::error::Error + Send + Sync>> {
    let spec = SsdtSpec::new("\\_SB.PCI0", vtph.config().uids.clone(), vtph.extended());
    let table = match vtph.ds_firmware_results()? {
        Some(results) => ssdt::generate_with_results(&spec, &results),
        None => ssdt::generate(&spec, &vtph.tag_space()),
    };
    Ok(table.ok_or("the SSDT cannot be generated")?)
}

/// `pin VCPU:PCPU` lines from standard input, each answered on standard output.
fn repin_from_stdin(handle: &Handle<VmFunction<EmulatedBackend>>) {
    let mut buf = Vec::with_capacity(256);
    let _ = answer_lines(&mut std::io::stdin().lock(), &mut buf, |line| {
        let text = match line {
            Ok(line) => match repin_command(line).and_then(|pin| repin(handle, pin)) {
                Ok(calls) => format!("> {line}\nok; host calls {calls}"),
                Err(e) => format!("> {line}\nerror: {e}"),
            },
            Err(bad) => format!("> {}\nerror: {}", bad.quoted, bad.why),
        };
        announce(&text)
    });
}

/// Hands each command line of `input` to `answer`, as `session` and `vm` read theirs: lines of
/// at most [`tphctl::lines::MAX_LINE`] bytes held in `buf` (a longer one, or one not UTF-8, is
/// handed over as refused, naming its line number, and the rest of it is dropped, never held
/// whole), blank lines and `#` comments skipped. Ends at end of input, a read error, or when
/// `answer` fails.
fn answer_lines(
    input: &mut impl BufRead,
    buf: &mut Vec<u8>,
    mut answer: impl FnMut(Result<&str, &BadLine>) -> Result<(), CliError>,
) -> Result<(), CliError> {
    for number in 1.. {
        match super::session::read_bounded_line(input, buf, number, "serve")? {
            None => break,
            Some(Ok(line)) if line.is_empty() || line.starts_with('#') => {}
            Some(Ok(line)) => answer(Ok(line))?,
            Some(Err(bad)) => answer(Err(&bad))?,
        }
    }
    Ok(())
}

/// The one command `serve --vm` takes on standard input.
fn repin_command(line: &str) -> Result<Pin, String> {
    match tphctl::vm::parse(line) {
        Ok(VmCommand::Pin(pin)) => Ok(pin),
        Err(e) if line.split_whitespace().next() == Some("pin") => Err(e.to_string()),
        _ => Err(format!(
            "unknown command {} (pin VCPU:PCPU)",
            tphctl::quote(line)
        )),
    }
}

fn repin(handle: &Handle<VmFunction<EmulatedBackend>>, pin: Pin) -> Result<u32, String> {
    let Pin { vcpu, cpu } = pin;
    handle.with_function(|f| {
        let effect = f.vtph_mut().pin(vcpu, cpu).map_err(|e| e.to_string())?;
        let to = cpu.map_or_else(|| "none".to_string(), |c| c.to_string());
        f.note_effect(&format!("pin {vcpu}:{to}"), &effect);
        match effect.host_failures.first() {
            Some(failure) => Err(failure.to_string()),
            None => Ok(effect.host_calls),
        }
    })
}

/// The host function as `tphctl show --json` shows it (a one-element array), from its
/// registers and MSI-X table as they are now.
fn write_host_state(path: &Path, host: &Host, bdf: Bdf, dev: &VfioDevice) -> Result<(), CliError> {
    let context = format!("--host-state {}", path.display());
    let (config, table) =
        dev.with_hardware(|hw| (hw.config_bytes().to_vec(), hw.peek_msix_table().to_vec()));
    let mut machine = host.machine().clone();
    if let Some(f) = machine.functions.iter_mut().find(|f| f.bdf == bdf) {
        f.config = config;
    }
    let function = machine
        .function(bdf)
        .ok_or_else(|| CliError::new(&context, "the function left the machine"))?;
    let reader = LiveTable(table);
    let report = tph_report::report::report_function(&machine, function, &reader)
        .ok_or_else(|| CliError::new(&context, "the function has no TPH capability"))?
        .map_err(|e| CliError::new(&context, e))?;
    let json = super::show::function_json(&report).map_err(|e| CliError::new(&context, e))?;
    let text = serde_json::to_string_pretty(&serde_json::Value::Array(vec![json]))
        .map_err(|e| CliError::new(&context, e))?;
    std::fs::write(path, text + "\n").map_err(|e| CliError::new(&context, e))
}

/// The host's MSI-X table as it is (for a steering table in MSI-X).
struct LiveTable(Vec<[u32; 4]>);

impl tph_report::report::MsixTableReader for LiveTable {
    fn vector_controls(
        &self,
        _bdf: Bdf,
        _msix: &MsixCap,
        count: u16,
    ) -> Result<Vec<u32>, tph_regs::Error> {
        Ok(self
            .0
            .iter()
            .take(usize::from(count))
            .map(|e| e[3])
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `answer_lines` over `input`, returning what each line was handed over as.
    fn answers(input: &[u8], buf: &mut Vec<u8>) -> Vec<Result<String, String>> {
        let mut got = Vec::new();
        answer_lines(&mut std::io::Cursor::new(input), buf, |line| {
            got.push(line.map(str::to_string).map_err(|bad| bad.why.clone()));
            Ok(())
        })
        .unwrap();
        got
    }

    #[test]
    fn a_line_of_megabytes_is_refused_by_number_without_being_held_and_reading_goes_on() {
        let mut input = b"pin 1:2\n".to_vec();
        input.extend(std::iter::repeat_n(b'x', 4 << 20));
        input.extend(b"\n# a comment\n\npin 0:none\n");
        let mut buf = Vec::new();
        let got = answers(&input, &mut buf);
        assert_eq!(
            got,
            [
                Ok("pin 1:2".to_string()),
                Err("line 2: longer than 65536 bytes (the line limit)".to_string()),
                Ok("pin 0:none".to_string()),
            ]
        );
        assert!(
            buf.capacity() <= 2 * (tphctl::lines::MAX_LINE + 1),
            "{} bytes held for one line",
            buf.capacity()
        );
    }

    #[test]
    fn a_line_not_utf8_is_refused_by_number() {
        let got = answers(b"pin 1:\xff\npin 1:2", &mut Vec::new());
        assert_eq!(
            got,
            [
                Err("line 1: not UTF-8 text (byte 7 of the line is invalid)".to_string()),
                Ok("pin 1:2".to_string()),
            ]
        );
    }

    #[test]
    fn only_pin_is_a_command_and_a_bad_pin_says_why() {
        assert_eq!(
            repin_command("pin 1:6"),
            Ok(Pin {
                vcpu: 1,
                cpu: Some(6)
            })
        );
        assert_eq!(repin_command("pin 1:none").map(|p| p.cpu), Ok(None));
        assert_eq!(
            repin_command("pin 1:x"),
            Err("bad host CPU \"x\"".to_string())
        );
        assert_eq!(
            repin_command("guest"),
            Err("unknown command \"guest\" (pin VCPU:PCPU)".to_string())
        );
    }
}
