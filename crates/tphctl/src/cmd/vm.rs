//! `tphctl vm SOURCE BDF --pin VCPU:PCPU,...`: an interactive view of the VM layer
//! (`tph-vmm`) for VMM developers. The device of an emulated host is passed through to a VM
//! whose vCPUs are pinned as given; commands on stdin act as the guest (raw register writes to
//! the virtual device, its firmware's `_DSM`) or, for `pin`, as the VMM; `guest` and `host`
//! show both sides of the translation.

use std::io::{BufRead, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use serde_json::{json, Map, Value};
use tph_acpi::{AmlSource, MemType, SteeringTagSource, TagWidth};
use tph_client::{Errno, Revision, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::{Host, HostOptions, KernelAbi};
use tph_regs::machine::{Bdf, Machine};
use tph_regs::tph::{StLocation, StMode, TphCapability, TphControl, TphRequester, Upstream};
use tph_report::report::{location_name, ControlReport, EntryReport};
use tph_vmm::ssdt::{self, SsdtSpec};
use tph_vmm::{ControlChange, VirtualTph, VmConfig};

use tphctl::vm::{Command, Pin, MAX_VCPUS};
use tphctl::ParseError;

use super::list::hex16;
use super::tagmap::mem_name;
use super::{CliError, CmdResult, Found};

// Arguments of `tphctl vm`. A plain comment: clap adds these arguments deferred, after the
// subcommand's about text (main.rs), and a doc comment here would replace that text.
#[derive(clap::Args, Debug)]
#[command(
    group(clap::ArgGroup::new("source").required(true).args(["dump", "emulated"])),
    after_long_help = "Commands (one per line on stdin; guest side unless noted): \
    dsm VCPU[:vm|pm] (the guest firmware's tag for that vCPU, in the width the guest enabled, \
    else the widest the path allows) | enable iv|ds|ns | disable | irqs N (guest enables MSI-X \
    vectors 0..N-1; the VMM follows on the host) | write INDEX TAG (raw tag into the guest's ST \
    entry, in the capability or in Vector Control) | pin VCPU:PCPU|none (host side: the VMM \
    re-pins) | reset (the guest resets the function, FLR or VM reboot: the VM layer clears \
    the host entries it programmed and disables the host's TPH, and the guest's Control and \
    table read 0 again; the host MSI-X vectors stay as the VMM set them) | guest (Control and \
    table as the guest reads them) | host (the physical device's Control and table). Lines \
    starting with # are skipped.\n\
    --json: one object per command with `cmd`, `line`, `ok`, `errno` (name or null), `error` \
    (message or null), `host_calls` for commands that may call the host, `st` and `st_hex` \
    (null when the firmware marks the tag invalid), `mem` and `width` (bits) for dsm, \
    `foreign` for write, `control` (an object, as in `show`), `table_location`, `table_size` \
    and `entries` for guest and host; the same names and shapes as `list`, `show` and \
    `session` (crates/tphctl/README-json.md).\n\
    Input: lines of at most 65536 bytes (a longer line, or one that is not UTF-8, is answered \
    with an error naming its line number); --dump FILE within the limits of every dump (512 \
    MiB, lines of 4096 bytes, 131072 functions).\n\
    Exit status 0 every command succeeded; 1 BDF is not in the machine; 2 the VM cannot be set \
    up, or some command failed (each failure is answered in the output; stderr counts them, \
    with their line numbers)."
)]
pub struct Args {
    /// Emulate the machine read from this `lspci -xxxx` dump.
    #[arg(long, value_name = "FILE")]
    dump: Option<PathBuf>,
    /// Emulate the built-in default machine.
    #[arg(long)]
    emulated: bool,
    /// The device passed through, as lspci prints it: 02:00.0 or 0000:02:00.0.
    bdf: String,
    /// vCPU pinning: VCPU:PCPU pairs, comma-separated (vCPUs not named are unpinned).
    #[arg(long, value_name = "VCPU:PCPU,...", required = true)]
    pin: String,
    /// vCPUs of the VM, 1 to 4096 [default: the highest pinned vCPU + 1].
    #[arg(long, value_name = "N")]
    vcpus: Option<u32>,
    /// Emulated host: number of present CPUs, 1 to 128 (default 8): the built-in firmware's
    /// 8-bit tags tell no more CPUs apart.
    #[arg(long, value_name = "N")]
    cpus: Option<u32>,
    /// The emulated host's kernel interface: v7 (VFIO_DEVICE_PCI_TPH) or feature
    /// (VFIO_DEVICE_FEATURE_TPH_ST) [default: v7].
    #[arg(long, value_name = "REV")]
    kernel_abi: Option<Revision>,
    /// Host vfio-pci enable_unsafe_tph_ds_mode=1, and the VMM's unsafe option: Device Specific
    /// mode is shown to the guest and the pinning is fixed.
    #[arg(long)]
    unsafe_ds_mode: bool,
    /// One JSON object per command instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs the subcommand.
pub fn run(args: Args) -> CmdResult {
    super::on_stdio(|input, out| start(&args, input, out))
}

fn start(args: &Args, input: &mut impl BufRead, out: &mut impl Write) -> CmdResult {
    let abi = match args.kernel_abi.unwrap_or(Revision::V7) {
        Revision::V7 => KernelAbi::V7,
        Revision::Feature => KernelAbi::Feature,
        _ => return Err(CliError::new("vm", "--kernel-abi takes v7 or feature")),
    };
    let bdf: Bdf = args.bdf.parse().map_err(|e| CliError::new("vm", e))?;
    let host = build_host(args, abi, bdf)?;
    if host.machine().function(bdf).is_none() {
        eprintln!("tphctl: vm: no device {} in the machine", args.bdf);
        return Ok(Found::No);
    }
    let context = format!("vm {bdf}");
    let cfg = vm_config(args, host.machine(), bdf, host.options().cpus)
        .map_err(|e| CliError::new(&context, e))?;
    let backend = EmulatedBackend::take_over(&host, bdf).map_err(|e| CliError::new(&context, e))?;
    let revision = super::client_revision(&context, abi)?;
    let dev =
        TphDevice::with_revision(backend, revision).map_err(|e| CliError::new(&context, e))?;
    let mut vm = Vm::new(dev, cfg).map_err(|e| CliError::new(&context, e))?;
    vm.unsafe_ds = args.unsafe_ds_mode;
    vm.host_cap = host
        .machine()
        .function(bdf)
        .and_then(|f| TphRequester::find(&f.config))
        .and_then(Result::ok)
        .map(|t| t.cap);
    serve(vm, args.json, input, out)
}

/// The emulated host, read as every dump is (bounded, regular files only, only `bdf` and the
/// bridges kept whole); `--cpus` under the rule of every subcommand.
fn build_host(args: &Args, abi: KernelAbi, bdf: Bdf) -> Result<Host, CliError> {
    let mut options = HostOptions::new()
        .with_unsafe_ds(args.unsafe_ds_mode)
        .with_abi(abi);
    if let Some(n) = super::emulated_cpus(args.cpus, false)? {
        options.cpus = n;
    }
    super::session::host(args.dump.as_deref(), options, Some(bdf))
}

/// What sits above `bdf` on the host: what a VMM reads from sysfs before passing it through.
pub(super) fn upstream(machine: &Machine, bdf: Bdf) -> Upstream {
    if machine.is_rciep(bdf) {
        return Upstream::RcIntegrated;
    }
    match machine.root_port_of(bdf).and_then(|p| machine.function(p)) {
        Some(port) => Upstream::RootPort(
            port.express()
                .and_then(|e| e.completer())
                .unwrap_or(tph_regs::tph::CompleterSupport::None),
        ),
        None => Upstream::NoRootPort,
    }
}

fn vm_config(args: &Args, machine: &Machine, bdf: Bdf, host_cpus: u32) -> Result<VmConfig, String> {
    checked_config(
        &args.pin,
        args.vcpus,
        args.unsafe_ds_mode,
        machine,
        bdf,
        host_cpus,
    )
}

/// The VM's configuration from `--pin` and `--vcpus` (`vm` and `serve --vm`), every size
/// checked before anything is allocated for it.
pub(super) fn checked_config(
    pin: &str,
    vcpus: Option<u32>,
    unsafe_ds: bool,
    machine: &Machine,
    bdf: Bdf,
    host_cpus: u32,
) -> Result<VmConfig, String> {
    let pins = tphctl::vm::parse_pins(pin, host_cpus).map_err(|e| match e {
        ParseError::NotAPin(_) => format!("--pin: {e} (e.g. --pin 0:2,1:3)"),
        e => format!("--pin: {e}"),
    })?;
    let needed = pins.iter().map(|(v, _)| v + 1).max().unwrap_or(1);
    let vcpus = vcpus.unwrap_or(needed);
    if vcpus == 0 || vcpus > MAX_VCPUS {
        return Err(format!(
            "--vcpus {vcpus}: a VM has 1 to {MAX_VCPUS} vCPUs (KVM's limit)"
        ));
    }
    if needed > vcpus {
        return Err(format!(
            "--vcpus {vcpus}: --pin names vCPU {} (fix: --vcpus {needed} or more, or leave \
             --vcpus out)",
            needed - 1
        ));
    }
    let mut cfg = VmConfig::new(vcpus)
        .with_pins(&pins)
        .map_err(|e| e.to_string())?;
    cfg.host_upstream = upstream(machine, bdf);
    cfg.unsafe_ds = unsafe_ds;
    Ok(cfg)
}

/// The VM: the virtual device, the guest firmware, the eventfds the VMM wired to MSI-X.
struct Vm {
    vtph: VirtualTph<EmulatedBackend>,
    firmware: AmlSource,
    irqs: Vec<OwnedFd>,
    /// The host's and the VMM's unsafe DS option (`--unsafe-ds-mode`), to explain refusals.
    unsafe_ds: bool,
    /// The physical device's TPH capability (what it has, before any kernel or VMM hides it).
    host_cap: Option<TphCapability>,
}

impl Vm {
    fn new(
        dev: TphDevice<EmulatedBackend>,
        cfg: VmConfig,
    ) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        let mut vtph = VirtualTph::new(dev, cfg)?;
        let spec = SsdtSpec::new("\\_SB.PCI0", vtph.config().uids.clone(), vtph.extended());
        // Under the unsafe DS option the firmware hands out the host tags of the fixed pinning.
        let table = match vtph.ds_firmware_results()? {
            Some(results) => ssdt::generate_with_results(&spec, &results),
            None => ssdt::generate(&spec, &vtph.tag_space()),
        }
        .ok_or("the SSDT cannot be generated")?;
        let firmware = AmlSource::from_tables(&[&ssdt::bridge_dsdt(), &table])?;
        Ok(Self {
            vtph,
            firmware,
            irqs: Vec::new(),
            unsafe_ds: false,
            host_cap: None,
        })
    }
}

/// One command's answer.
enum Data {
    /// Done; how many host calls it took.
    Done { host_calls: u32 },
    /// A write to the ST table: host calls, and whether the tag named no vCPU.
    Write { host_calls: u32, foreign: bool },
    /// A firmware tag (`st` None: marked invalid), the memory type asked and the width read.
    Tag {
        st: Option<u16>,
        mem: MemType,
        width: TagWidth,
    },
    /// Control and the table's location (None: the device has no TPH capability) and entries.
    Regs {
        control: Option<u32>,
        location: Option<StLocation>,
        st_table: Vec<u16>,
    },
}

struct Failure {
    errno: Option<Errno>,
    message: String,
}

impl From<tph_vmm::Error> for Failure {
    fn from(e: tph_vmm::Error) -> Self {
        Self {
            errno: e.errno(),
            message: super::chain(&e),
        }
    }
}

impl From<tph_vmm::HostFailure> for Failure {
    fn from(f: tph_vmm::HostFailure) -> Self {
        Self {
            errno: f.errno,
            message: f.to_string(),
        }
    }
}

/// The hooks never fail on a host refusal (it is in the effect); this command reports the
/// first one as its failure.
fn checked(effect: tph_vmm::Effect) -> Result<tph_vmm::Effect, Failure> {
    match effect.host_failures.first() {
        Some(f) => Err(f.clone().into()),
        None => Ok(effect),
    }
}

impl From<String> for Failure {
    fn from(message: String) -> Self {
        Self {
            errno: None,
            message,
        }
    }
}

/// Answers every command; as `session`, the exit status says whether any failed (2), and
/// stderr names their line numbers once.
fn serve(mut vm: Vm, json: bool, input: &mut impl BufRead, out: &mut impl Write) -> CmdResult {
    let (mut commands, mut failed) = (0usize, super::Failures::default());
    let mut buf = Vec::with_capacity(256);
    for number in 1.. {
        let (line, result) = match super::session::read_bounded_line(input, &mut buf, number, "vm")?
        {
            None => break,
            Some(Ok(line)) if line.is_empty() || line.starts_with('#') => continue,
            Some(Ok(line)) => (line.to_string(), execute(&mut vm, line)),
            Some(Err(bad)) => (bad.quoted, Err(Failure::from(bad.why))),
        };
        commands += 1;
        if result.is_err() {
            failed.push(number);
        }
        let written = if json {
            render_json(out, &line, number, &result)
        } else {
            render_text(out, &line, &result)
        };
        written
            .and_then(|()| out.flush())
            .map_err(|e| CliError::new("writing output", e))?;
    }
    if failed.is_empty() {
        return Ok(Found::Yes);
    }
    failed.report("vm", commands);
    Ok(Found::Failed)
}

fn execute(vm: &mut Vm, line: &str) -> Result<Data, Failure> {
    match tphctl::vm::parse(line).map_err(|e| e.to_string())? {
        Command::Dsm { vcpu, mem } => dsm(vm, vcpu, mem),
        Command::Enable(mode) => control(vm, Some(mode)),
        Command::Disable => control(vm, None),
        Command::Irqs(n) => irqs(vm, n),
        Command::Write { index, tag } => write(vm, index, tag),
        Command::Pin(Pin { vcpu, cpu }) => pin(vm, vcpu, cpu),
        Command::Reset => Ok(Data::Done {
            host_calls: checked(vm.vtph.reset())?.host_calls,
        }),
        Command::Guest => Ok(Data::Regs {
            control: Some(vm.vtph.guest_control()),
            location: Some(vm.vtph.virtual_cap().cap.location),
            st_table: vm.vtph.guest_table().to_vec(),
        }),
        Command::Host => {
            let snap = vm.vtph.device().backend().device().snapshot();
            Ok(Data::Regs {
                control: snap.control,
                location: vm.host_cap.map(|c| c.location),
                st_table: snap.st_table,
            })
        }
    }
}

fn dsm(vm: &Vm, vcpu: u32, mem: MemType) -> Result<Data, Failure> {
    let uid = usize::try_from(vcpu)
        .ok()
        .and_then(|i| vm.vtph.config().uids.get(i).copied())
        .ok_or_else(|| format!("the VM has no vCPU {vcpu}"))?;
    let info = vm
        .firmware
        .st_info(uid)
        .map_err(|e| format!("the guest firmware's _DSM failed: {e}"))?;
    let width = guest_width(vm);
    Ok(Data::Tag {
        st: info.tag(mem, width),
        mem,
        width,
    })
}

/// The width the guest enabled, else the widest its path allows.
fn guest_width(vm: &Vm) -> TagWidth {
    match vm.vtph.guest_width() {
        Some(width) => width,
        None if vm.vtph.extended() => TagWidth::Bits16,
        None => TagWidth::Bits8,
    }
}

fn control(vm: &mut Vm, mode: Option<StMode>) -> Result<Data, Failure> {
    let effect = checked(vm.vtph.write_guest_control(mode))?;
    if let Some(ControlChange::Refused { value }) = effect.control {
        return Err(refused_control(vm, value).into());
    }
    Ok(Data::Done {
        host_calls: effect.host_calls,
    })
}

/// Why the virtual device dropped the guest's Control write `value`, and what to change.
fn refused_control(vm: &Vm, value: u32) -> String {
    let ctrl = TphControl::from_bits(value);
    let vcap = vm.vtph.virtual_cap();
    let has = |f: fn(&TphCapability) -> bool| vm.host_cap.as_ref().is_some_and(f);
    let cause = match ctrl.mode {
        StMode::DeviceSpecific if !vcap.cap.ds && !has(|c| c.ds) => {
            "the device has no Device Specific mode (`tphctl show` lists its modes)".to_string()
        }
        StMode::DeviceSpecific if !vcap.cap.ds && !vm.unsafe_ds => {
            "Device Specific mode is shown to the guest only under the unsafe DS option (fix: \
             --unsafe-ds-mode)"
                .to_string()
        }
        StMode::InterruptVector if !vcap.cap.iv && !has(|c| c.iv) => {
            "the device has no Interrupt Vector mode (fix: enable ns, or enable ds with \
             --unsafe-ds-mode on a device with DS mode; `tphctl show` lists its modes)"
                .to_string()
        }
        StMode::DeviceSpecific | StMode::InterruptVector
            if !vcap.cap.iv && !vcap.cap.ds && !vm.unsafe_ds =>
        {
            "the host's vfio-pci offers no TPH for the device (on the feature revision its \
             enable_unsafe_tph parameter gates all of TPH; fix: --unsafe-ds-mode, which sets \
             it)"
            .to_string()
        }
        StMode::InterruptVector if !vcap.cap.iv => {
            "the host's vfio-pci does not offer the device's Interrupt Vector mode (its steering \
             table is not in the capability or in MSI-X)"
                .to_string()
        }
        _ if vcap.completer.field() == 0 => {
            "the root port above the device completes no TPH, so the guest's root port shows \
             none and no requester type can be enabled (fix: pass through a device below a \
             TPH-completing root port; `tphctl show` names its root port)"
                .to_string()
        }
        _ => format!(
            "ST Mode Select {} with TPH Requester Enable {} is not offered by the virtual \
             capability (`guest` shows it)",
            ctrl.mode.field(),
            ctrl.enable.field()
        ),
    };
    format!("Control {value:#x} dropped by the virtual device: {cause}")
}

/// `irqs N` (N at most 2048, as parsed).
fn irqs(vm: &mut Vm, n: u32) -> Result<Data, Failure> {
    let mut calls = checked(vm.vtph.host_msix_will_change())?.host_calls;
    let fds = (0..n)
        .map(|_| tph_client::backend::eventfd())
        .collect::<Result<Vec<OwnedFd>, Errno>>()
        .map_err(|errno| Failure {
            errno: Some(errno),
            message: "creating eventfds".into(),
        })?;
    let borrowed: Vec<_> = fds.iter().map(|f| f.as_fd()).collect();
    vm.vtph
        .device_mut()
        .enable_msix(&borrowed)
        .map_err(|e| Failure {
            errno: e.errno(),
            message: e.to_string(),
        })?;
    vm.irqs = fds;
    calls += checked(vm.vtph.host_msix_enabled(n))?.host_calls;
    Ok(Data::Done { host_calls: calls })
}

fn write(vm: &mut Vm, index: u16, tag: u16) -> Result<Data, Failure> {
    let effect = checked(vm.vtph.write_guest_entry(index, tag)?)?;
    Ok(Data::Write {
        host_calls: effect.host_calls,
        foreign: !effect.foreign.is_empty(),
    })
}

fn pin(vm: &mut Vm, vcpu: u32, cpu: Option<u32>) -> Result<Data, Failure> {
    let effect = checked(vm.vtph.pin(vcpu, cpu)?)?;
    Ok(Data::Done {
        host_calls: effect.host_calls,
    })
}

fn table_text(t: &[u16]) -> String {
    let set: Vec<String> = t
        .iter()
        .enumerate()
        .filter(|(_, v)| **v != 0)
        .map(|(i, v)| format!("{i}={v:#06x}"))
        .collect();
    let shown = if set.is_empty() {
        "all 0".to_string()
    } else {
        format!("{}, others 0", set.join(" "))
    };
    format!("{shown} ({} entries)", t.len())
}

fn render_text(out: &mut impl Write, cmd: &str, r: &Result<Data, Failure>) -> std::io::Result<()> {
    writeln!(out, "> {cmd}")?;
    match r {
        Err(f) => match f.errno {
            Some(e) => writeln!(out, "error: {} ({e})", f.message),
            None => writeln!(out, "error: {}", f.message),
        },
        Ok(Data::Done { host_calls }) => writeln!(out, "ok; host calls {host_calls}"),
        Ok(Data::Write {
            host_calls,
            foreign,
        }) => {
            let f = if *foreign {
                "; foreign tag (no vCPU of this VM): host entry cleared"
            } else {
                ""
            };
            writeln!(out, "ok; host calls {host_calls}{f}")
        }
        Ok(Data::Tag { st: Some(t), .. }) => writeln!(out, "tag {t:#06x}"),
        Ok(Data::Tag { st: None, .. }) => {
            writeln!(out, "tag invalid (the firmware marks it invalid)")
        }
        Ok(Data::Regs {
            control, st_table, ..
        }) => {
            let control = match control {
                Some(c) => format!("{c:#010x}"),
                None => "none (no TPH capability)".to_string(),
            };
            writeln!(out, "control {control}; st_table {}", table_text(st_table))
        }
    }
}

/// One JSON object on one line: `cmd`, `line`, `ok`, `errno`, `error` as in `session`, and the
/// results named and shaped as in `list`, `show` and `session` (Control, table location and
/// entries through the serialisers `show` uses; a tag as `st`/`st_hex`, its memory type as
/// `mem`).
fn render_json(
    out: &mut impl Write,
    cmd: &str,
    number: usize,
    r: &Result<Data, Failure>,
) -> std::io::Result<()> {
    let mut m = Map::new();
    m.insert("cmd".into(), json!(cmd));
    m.insert("line".into(), json!(number));
    m.insert("ok".into(), json!(r.is_ok()));
    let (errno, error) = match r {
        Err(f) => (json!(f.errno.map(|e| e.name())), json!(f.message)),
        Ok(_) => (Value::Null, Value::Null),
    };
    m.insert("errno".into(), errno);
    m.insert("error".into(), error);
    match r {
        Ok(Data::Done { host_calls }) => {
            m.insert("host_calls".into(), json!(host_calls));
        }
        Ok(Data::Write {
            host_calls,
            foreign,
        }) => {
            m.insert("host_calls".into(), json!(host_calls));
            m.insert("foreign".into(), json!(foreign));
        }
        Ok(Data::Tag { st, mem, width }) => {
            m.insert("st".into(), json!(st));
            m.insert("st_hex".into(), json!(st.map(hex16)));
            m.insert("mem".into(), json!(mem_name(*mem)));
            m.insert("width".into(), json!(width.bits()));
        }
        Ok(Data::Regs {
            control,
            location,
            st_table,
        }) => {
            m.insert(
                "control".into(),
                json!(control.map(ControlReport::from_bits)),
            );
            m.insert("table_location".into(), json!(location.map(location_name)));
            m.insert("table_size".into(), json!(st_table.len()));
            m.insert("entries".into(), json!(EntryReport::table(st_table)));
        }
        Err(_) => {}
    }
    writeln!(out, "{}", Value::Object(m))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A host without a TPH capability has no Control to show: said, not shown as 0.
    #[test]
    fn regs_without_a_capability_show_no_control() {
        let r = Ok(Data::Regs {
            control: None,
            location: None,
            st_table: Vec::new(),
        });
        let mut text = Vec::new();
        render_text(&mut text, "host", &r).expect("write to a Vec");
        let text = String::from_utf8(text).expect("utf-8");
        assert!(text.contains("control none (no TPH capability)"), "{text}");

        let mut line = Vec::new();
        render_json(&mut line, "host", 1, &r).expect("write to a Vec");
        let v: Value = serde_json::from_slice(&line).expect("one JSON object");
        assert_eq!(v["control"], Value::Null, "{v}");
        assert_eq!(v["table_location"], Value::Null, "{v}");
    }
}
