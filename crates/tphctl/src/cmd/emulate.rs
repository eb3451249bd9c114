//! `tphctl emulate MACHINE [HOST OPTIONS] -- PROGRAM [ARGS...]`: run a program, unmodified,
//! against the emulated kernel (`tph_emulate::emulate`): every TPH-capable function of the
//! machine bound to vfio-pci, one IOMMU group each, every VFIO call answered by the model.

use std::ffi::OsString;
use std::io::Write;
use std::path::PathBuf;

use tph_emulate::emulate::{Bind, Emulation, Setup};
use tph_kernel::{HostOptions, KernelAbi, MsixAlloc};

use super::{finish, CliError};

/// The kernel interface revision the emulated vfio-pci speaks.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Abi {
    /// The v7 series: the `VFIO_DEVICE_PCI_TPH` ioctl.
    #[default]
    V7,
    /// The later revision: `VFIO_DEVICE_FEATURE` (TPH_ST) and the TPH Control register
    /// written through the config region.
    Feature,
}

impl From<Abi> for KernelAbi {
    fn from(a: Abi) -> Self {
        match a {
            Abi::V7 => KernelAbi::V7,
            Abi::Feature => KernelAbi::Feature,
        }
    }
}

/// Which functions are bound to vfio-pci.
/// `--msix-alloc`.
#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MsixAllocArg {
    /// An enabled MSI-X block grows (Linux 6.5+ with dynamic MSI-X).
    #[default]
    Dynamic,
    /// NORESIZE: MSI-X off, then the larger block (Linux 6.1).
    Static,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BindArg {
    /// Every function with a TPH Requester capability.
    #[default]
    Tph,
    /// Every endpoint (type 0 header, not a bridge), with TPH or without.
    All,
}

// Arguments of `tphctl emulate`. A plain comment: clap adds these arguments deferred, after the
// subcommand's about text (main.rs), and a doc comment here would replace that text.
#[derive(clap::Args, Debug)]
#[command(
    group(clap::ArgGroup::new("machine").required(true).args(["dump", "emulated"])),
    after_long_help = "PROGRAM runs unmodified in a child process whose /dev/vfio and /sys \
    show every function of the machine in /sys/bus/pci/devices (vendor, device, class, \
    resource, config, ... in the kernel's formats), those --bind selects bound to vfio-pci, one \
    IOMMU group each (1, 2, ... in address order), /sys/module/{vfio,vfio_pci,vfio_iommu_type1} \
    (vfio_pci with the revision's unsafe parameter), and /sys/devices/system/cpu the emulated \
    CPUs (by default the CPUs tphctl may run on, so the program can pin threads to them). Its \
    VFIO calls (container and type1 DMA mapping, group, cdev and iommufd, device fd, region \
    info, region pread/pwrite, SET_IRQS, RESET, VFIO_DEVICE_PCI_TPH, VFIO_DEVICE_FEATURE) are \
    trapped with seccomp user notification and answered by the kernel model; a BAR mapped with \
    mmap is shared memory whose MSI-X table is the device's. Everything else runs in the real \
    kernel. The rest of this machine's /dev is visible as usual.\n\
    Needs seccomp user notification (Linux 5.0+) and CAP_SYS_ADMIN for the private mount \
    namespace (run as root); without them tphctl says so and exits 2.\n\
    SIGINT, SIGTERM, SIGHUP and SIGQUIT sent to tphctl are passed on to the program (a \
    terminal's Ctrl-C reaches both already); its calls are answered until it exits, then the \
    trace is written and its exit status returned.\n\
    Exit status: the program's (128+N when signal N ended it; 127 when it cannot be found, 126 \
    when it cannot be run), 2 when tphctl itself fails (also when the trace cannot be written \
    after a program that exited 0).\n\
    Example: tphctl emulate --emulated --kernel-abi feature --unsafe-ds-mode -- ./my-driver \
    0000:02:00.0"
)]
pub struct Args {
    /// Emulate the machine read from this `lspci -xxxx` dump.
    #[arg(long, value_name = "FILE")]
    dump: Option<PathBuf>,
    /// Emulate the built-in default machine.
    #[arg(long)]
    emulated: bool,
    /// The kernel interface revision vfio-pci speaks.
    #[arg(long, value_name = "REV", value_enum, default_value_t)]
    kernel_abi: Abi,
    /// Load vfio-pci with its unsafe parameter on: enable_unsafe_tph_ds_mode=Y (v7) or
    /// enable_unsafe_tph=Y (feature).
    #[arg(long)]
    unsafe_ds_mode: bool,
    /// Number of present CPUs, all online, 1 to 65536; with the built-in firmware at most 128,
    /// the CPUs its 8-bit tags tell apart [default: CPUs 0 to the highest CPU tphctl may run
    /// on are present, and online are those it may run on; the same limits apply].
    #[arg(long, value_name = "N")]
    cpus: Option<u32>,
    /// Which functions are bound to vfio-pci (the others are shown, without a driver).
    #[arg(long, value_name = "WHICH", value_enum, default_value_t)]
    bind: BindArg,
    /// Also offer each bound function's device cdev (/dev/vfio/devices/vfioN, numbered from 0
    /// in address order, and its sysfs vfio-dev/vfioN) and /dev/iommu, as a kernel with
    /// iommufd does; the legacy group interface stays.
    #[arg(long)]
    cdev: bool,
    /// The firmware answering the steering-tag `_DSM`: a table file of lines `UID 0xST_INFO`,
    /// an ASL file (compiled with iasl), an AML table or a folder of DSDT/SSDT files [default:
    /// built-in answers, UID u: VM tag u (16-bit 0x100+u), PM tag 0x80|u (16-bit 0x8000|u)].
    #[arg(long, value_name = "PATH")]
    firmware: Option<PathBuf>,
    /// The host booted with pci=notph.
    #[arg(long)]
    notph: bool,
    /// How the host allocates MSI-X vectors: dynamic (Linux 6.5+ on x86: an enabled block
    /// grows) or static (Linux 6.1: GET_IRQ_INFO says NORESIZE and growing is EINVAL).
    #[arg(long, value_name = "HOW", value_enum, default_value_t)]
    msix_alloc: MsixAllocArg,
    /// Write every trapped call and every hardware access it caused to FILE (checked before
    /// the program starts: a file that cannot be written is refused with status 2).
    #[arg(long, value_name = "FILE")]
    trace: Option<PathBuf>,
    /// The program and its arguments, after `--`.
    #[arg(last = true, required = true, value_name = "PROGRAM")]
    program: Vec<OsString>,
}

/// Runs the subcommand; the process exit code (the program's, or 2 after printing an error).
pub fn run(args: Args) -> i32 {
    match start(&args) {
        Ok(code) => code,
        Err(e) => finish(Err(e)),
    }
}

fn start(args: &Args) -> Result<i32, CliError> {
    let mut options = HostOptions::new()
        .with_notph(args.notph)
        .with_unsafe_ds(args.unsafe_ds_mode)
        .with_abi(args.kernel_abi.into())
        .with_msix_alloc(match args.msix_alloc {
            MsixAllocArg::Dynamic => MsixAlloc::Dynamic,
            MsixAllocArg::Static => MsixAlloc::Static,
        });
    let mut online = None;
    match super::emulated_cpus(args.cpus, args.firmware.is_some())? {
        Some(n) => options.cpus = n,
        None => {
            if let Some(cpus) = tph_emulate::emulate::allowed_cpus() {
                let n = cpus.last().map_or(options.cpus, |last| last + 1);
                // The machine's own count follows the same rule as --cpus.
                super::emulated_cpus(Some(n), args.firmware.is_some()).map_err(|e| {
                    CliError::new(
                        format!("emulate: this machine's {n} CPUs"),
                        format!("{} (or --cpus 128)", e.cause),
                    )
                })?;
                options.cpus = n;
                online = Some(cpus);
            }
        }
    }
    if let Some(path) = &args.trace {
        // Found out now, not after the program ran.
        super::check_output("--trace", path)?;
    }
    if let Some(path) = &args.firmware {
        options.firmware = super::session::firmware(path)?;
    }
    let host = super::session::host(args.dump.as_deref(), options, None)?;
    let Some((program, rest)) = args.program.split_first() else {
        return Err(CliError::new("emulate", "no PROGRAM given after --"));
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(rest);
    let name = program.to_string_lossy().into_owned();
    let setup = Setup::new()
        .with_bind(match args.bind {
            BindArg::Tph => Bind::Tph,
            BindArg::All => Bind::All,
        })
        .with_online(online)
        .with_trace(args.trace.is_some())
        .with_cdev(args.cdev);
    let ran = match tph_emulate::emulate::run(&host, cmd, scratch_root(), &setup) {
        Ok(ran) => ran,
        Err(e) => return launch_failure(&name, e),
    };
    let code = ran.exit_code();
    if let Some(path) = &args.trace
        && let Err(e) = write_trace(path, &ran)
    {
        // The program's status stays what tphctl returns, unless it would hide the
        // failure (0).
        finish(Err(e));
        return Ok(if code == 0 { 2 } else { code });
    }
    Ok(code)
}

/// A fresh folder for the fake tree (removed when the program ends).
fn scratch_root() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("tphctl-emulate-{}-{nanos}", std::process::id()))
}

/// What a failure to start the program means: missing privileges (exit 2, saying which), or
/// a program that cannot be found (127) or run (126), as a shell reports them.
fn launch_failure(program: &str, e: tph_emulate::Error) -> Result<i32, CliError> {
    let tph_emulate::Error::Harness { source, .. } = &e else {
        return Err(CliError::new("emulate", e));
    };
    let (context, code) = match source.raw_os_error() {
        Some(libc_errno::EPERM) => (
            "emulate: the harness needs a private mount namespace (CAP_SYS_ADMIN: run as root)"
                .to_string(),
            2,
        ),
        Some(libc_errno::ENOENT) => (format!("emulate: {program}"), 127),
        Some(libc_errno::EACCES) => (format!("emulate: {program}"), 126),
        _ => return Err(CliError::new("emulate", e)),
    };
    eprintln!("tphctl: {context}: {source}");
    Ok(code)
}

/// The errno values [`launch_failure`] tells apart.
mod libc_errno {
    pub const EPERM: i32 = 1;
    pub const ENOENT: i32 = 2;
    pub const EACCES: i32 = 13;
}

fn write_trace(path: &std::path::Path, ran: &Emulation) -> Result<(), CliError> {
    let io = |e| CliError::new(format!("writing the trace to {}", path.display()), e);
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
    for (bdf, group) in &ran.devices {
        writeln!(out, "# {bdf} bound to vfio-pci, IOMMU group {group}").map_err(io)?;
    }
    for line in &ran.trace {
        writeln!(out, "{line}").map_err(io)?;
    }
    let end = format!(
        "# exit {} ({} calls answered)",
        ran.exit_code(),
        ran.answered
    );
    writeln!(out, "{end}").map_err(io)?;
    out.flush().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn harness_error(errno: i32) -> tph_emulate::Error {
        tph_emulate::Error::Harness {
            what: "spawning the child",
            source: std::io::Error::from_raw_os_error(errno),
        }
    }

    #[test]
    fn launch_failure_without_mount_namespace_permission_is_exit_2() {
        assert_eq!(
            launch_failure("drv", harness_error(libc_errno::EPERM)).unwrap(),
            2
        );
    }

    #[test]
    fn launch_failure_of_a_missing_or_unrunnable_program_is_127_or_126() {
        assert_eq!(
            launch_failure("drv", harness_error(libc_errno::ENOENT)).unwrap(),
            127
        );
        assert_eq!(
            launch_failure("drv", harness_error(libc_errno::EACCES)).unwrap(),
            126
        );
    }

    #[test]
    fn launch_failure_without_user_notification_is_an_error_naming_it() {
        let e = tph_emulate::Error::Unsupported {
            what: "seccomp user notification",
        };
        let err = launch_failure("drv", e).unwrap_err();
        assert_eq!(
            err.cause.to_string(),
            "this kernel does not offer seccomp user notification"
        );
    }
}
