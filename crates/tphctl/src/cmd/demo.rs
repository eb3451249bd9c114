//! `tphctl demo`: a steering scenario on the built-in emulated machine, end to end through the
//! client library and the kernel model (the README's main command).
//!
//! The scenario is what a userspace poller driver does with the v7 interface: take over a NIC,
//! enable MSI-X vectors and TPH in Interrupt-Vector mode, bind each queue's vector to the CPU that
//! polls it, move one queue, tear down; then the refusals a user meets (a root port without a TPH
//! completer, DS mode without the unsafe module parameter) and DS mode with it.

use std::io::Write;

use tph_client::steer::{Queue, QueueSteering};
use tph_client::{CpuQuery, Mode, Revision, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::{Host, HostOptions};

use super::{CliError, CmdResult, Found};

// Arguments of `tphctl demo`. A plain comment: clap adds these arguments deferred, after the
// subcommand's about text (main.rs), and a doc comment here would replace that text.
#[derive(clap::Args, Debug)]
#[command(
    long_about = "Runs a steering scenario on the embedded emulated machine (see `tphctl list \
--emulated`): IV-mode queue steering on the NIC whose table lives in MSI-X, the refusals a user \
meets, and DS-mode tag lookups with the unsafe module parameter set. Every step goes through the \
client library and the v7 VFIO_DEVICE_PCI_TPH ioctl of the kernel model, byte for byte.",
    after_long_help = "Exit status: 0 the scenario ran; 1 is not used (nothing is looked up); 2 an \
    error: a step failed or standard output could not be written. A closed pipe on standard \
    output ends the output quietly with status 0."
)]
pub struct Args {
    /// Number of queues (MSI-X vectors) to steer on the IV-mode NIC.
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=2048))]
    pub queues: u16,
}

type Out<'a> = &'a mut dyn Write;

fn ctx<E: std::error::Error + Send + Sync + 'static>(what: &'static str) -> impl Fn(E) -> CliError {
    move |e| CliError::new(what, e)
}

/// Runs the scenario, printing to stdout.
pub fn run(args: Args) -> CmdResult {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let found = scenario(&mut out, args.queues)?;
    out.flush()
        .map_err(|e| CliError::new("writing output", e))?;
    Ok(found)
}

fn scenario(out: Out, queues: u16) -> CmdResult {
    let host = Host::with_default_machine(HostOptions::default());
    writeln!(
        out,
        "emulated host: {} CPUs, default machine (`tphctl list --emulated`)",
        host.cpus().len()
    )
    .map_err(ctx("writing"))?;
    iv_steering(out, &host, queues)?;
    refusals(out, &host)?;
    ds_tags(out)?;
    Ok(Found::Yes)
}

fn open(host: &Host, bdf: &str) -> Result<TphDevice<EmulatedBackend>, CliError> {
    let bdf = bdf.parse().map_err(ctx("parsing a BDF"))?;
    let backend = EmulatedBackend::take_over(host, bdf).map_err(ctx("taking over the device"))?;
    TphDevice::with_revision(backend, Revision::V7).map_err(ctx("opening the TPH interface"))
}

fn iv_steering(out: Out, host: &Host, n: u16) -> Result<(), CliError> {
    writeln!(
        out,
        "\n01:00.0 NIC, steering table in MSI-X: IV mode, {n} queues"
    )
    .map_err(ctx("writing"))?;
    let mut dev = open(host, "01:00.0")?;
    let caps = dev.capabilities().map_err(ctx("GET_CAP"))?;
    writeln!(
        out,
        "  GET_CAP: IV {} DS {} table {} entries",
        caps.iv, caps.ds, caps.st_table_size
    )
    .map_err(ctx("writing"))?;
    // The driver's own interrupts: the demo owns one eventfd per queue and keeps it.
    let irqs = (0..n)
        .map(|_| tph_client::backend::eventfd())
        .collect::<Result<Vec<_>, _>>()
        .map_err(ctx("creating eventfds"))?;
    let fds: Vec<_> = irqs.iter().map(std::os::fd::AsFd::as_fd).collect();
    dev.enable_msix(&fds)
        .map_err(ctx("enabling MSI-X vectors"))?;
    let cpus = host.cpus().len() as u32;
    let queues: Vec<Queue> = (0..n)
        .map(|q| Queue::new(q, q, (u32::from(q) * 2 + 1) % cpus))
        .collect();
    let mut steering = QueueSteering::start(dev, Mode::Iv).map_err(ctx("ENABLE(IV)"))?;
    steering.bind(&queues).map_err(ctx("SET_ST"))?;
    table(out, &mut steering, n)?;
    let moved_to = cpus - 1;
    steering
        .retarget(0, moved_to)
        .map_err(ctx("SET_ST (retarget)"))?;
    writeln!(
        out,
        "  queue 0's poller moved to CPU {moved_to}: one SET_ST"
    )
    .map_err(ctx("writing"))?;
    table(out, &mut steering, n)?;
    let dev = steering.teardown().map_err(ctx("teardown"))?;
    let after = dev.backend().device().snapshot();
    writeln!(
        out,
        "  teardown: entries cleared, DISABLE; Control now {:#06x}",
        after.control.unwrap_or(0)
    )
    .map_err(ctx("writing"))?;
    Ok(())
}

fn table(out: Out, steering: &mut QueueSteering<EmulatedBackend>, n: u16) -> Result<(), CliError> {
    let snap = steering.device().backend().device().snapshot();
    for (q, tag) in snap.st_table.iter().take(usize::from(n)).enumerate() {
        let cpu = steering
            .cpu_of(q as u16)
            .map_or("-".to_string(), |c| c.to_string());
        writeln!(out, "  vector {q:>4}: tag {tag:#06x}  (CPU {cpu})").map_err(ctx("writing"))?;
    }
    Ok(())
}

fn refusals(out: Out, host: &Host) -> Result<(), CliError> {
    writeln!(out, "\nrefusals").map_err(ctx("writing"))?;
    let mut nic = open(host, "04:00.0")?;
    let why = nic
        .enable(Mode::Iv)
        .err()
        .map_or("accepted (unexpected)".to_string(), |e| e.to_string());
    writeln!(
        out,
        "  04:00.0 ENABLE(IV) behind a root port without TPH completer: {why}"
    )
    .map_err(ctx("writing"))?;
    let mut acc = open(host, "03:00.0")?;
    let why = acc
        .enable(Mode::Ds)
        .err()
        .map_or("accepted (unexpected)".to_string(), |e| e.to_string());
    writeln!(
        out,
        "  03:00.0 ENABLE(DS) with enable_unsafe_tph_ds_mode=0: {why}"
    )
    .map_err(ctx("writing"))?;
    Ok(())
}

fn ds_tags(out: Out) -> Result<(), CliError> {
    let host = Host::with_default_machine(HostOptions::new().with_unsafe_ds(true));
    writeln!(
        out,
        "\n03:00.0 accelerator, DS mode (enable_unsafe_tph_ds_mode=1)"
    )
    .map_err(ctx("writing"))?;
    let mut dev = open(&host, "03:00.0")?;
    dev.enable(Mode::Ds).map_err(ctx("ENABLE(DS)"))?;
    let queries: Vec<CpuQuery> = (0..4).map(CpuQuery::new).collect();
    let tags = dev.steering_tags(&queries).map_err(ctx("GET_ST"))?;
    for (q, tag) in queries.iter().zip(tags) {
        writeln!(
            out,
            "  CPU {}: tag {tag:#06x} (the driver writes it into its queue context)",
            q.cpu
        )
        .map_err(ctx("writing"))?;
    }
    dev.disable().map_err(ctx("DISABLE"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_scenario_steers_refuses_and_fetches_ds_tags() {
        let mut buf = Vec::new();
        let found = scenario(&mut buf, 4)
            .map_err(|e| e.cause.to_string())
            .unwrap();
        let text = String::from_utf8(buf).unwrap();
        assert_eq!(found, Found::Yes);
        // Queue q is polled by CPU 2q+1 (mod 8); the default firmware gives CPU u the 16-bit
        // volatile tag 0x100 + u, and 01:00.0 negotiates extended TPH, so vector 1 gets 0x0103.
        assert!(text.contains("vector    1: tag 0x0103  (CPU 3)"), "{text}");
        // After the retarget, queue 0 is polled by CPU 7: tag 0x0107.
        assert!(text.contains("vector    0: tag 0x0107  (CPU 7)"), "{text}");
        assert!(
            text.contains("teardown: entries cleared, DISABLE; Control now 0x0000"),
            "{text}"
        );
        assert!(!text.contains("unexpected"), "{text}");
        assert!(text.contains("CPU 2: tag 0x0102"), "{text}");
    }
}
