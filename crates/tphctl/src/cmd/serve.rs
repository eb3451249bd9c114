//! `tphctl serve --vfio-user SOCKET SOURCE BDF`: serves one function of an emulated machine as
//! a vfio-user device (`tph-vfio-user`) until the client (QEMU's `vfio-user-pci`) leaves. A
//! thin wrapper: the server is the library's.

use std::io::Write;
use std::path::PathBuf;

use tph_kernel::HostOptions;
use tph_regs::machine::Bdf;
use tph_vfio_user::{Device, EmulatedFunction, Error, Server};

use super::{CliError, CmdResult, Found};

/// Arguments of `tphctl serve`.
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
    event (`irqs msix 0+4: eventfds set`, `reset (DEVICE_RESET): ...`, `dma map ...`).\n\n\
    Exit status: 0 the client came and left; 1 BDF is not in the machine; 2 an error: the \
    socket is in use or is not a socket, the client does not speak vfio-user 0.x (protocol \
    mismatch), the trace cannot be written."
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
}

/// Runs the subcommand.
pub fn run(args: Args) -> CmdResult {
    let bdf: Bdf = args.bdf.parse().map_err(|e| CliError::new("serve", e))?;
    if args.dump.as_ref().is_some_and(|d| d.as_os_str() == "-") {
        return Err(CliError::new(
            "--dump -",
            "give the dump as a file (standard input is kept for commands)",
        ));
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
    let trace = match &args.trace {
        None => None,
        Some(path) => Some(Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| CliError::new(format!("--trace {}", path.display()), e))?,
        )) as Box<dyn Write + Send>),
    };
    let context = format!("serve {bdf} on {}", args.vfio_user.display());
    let server = Server::bind(&args.vfio_user).map_err(|e| CliError::new(&context, e))?;
    let mut device = Device::new(function, trace);
    let handle = device.handle();
    announce(&format!("listening on {}", args.vfio_user.display()))?;
    let session = server
        .serve(&mut device)
        .map_err(|e| CliError::new(&context, e))?;
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
