//! A poller-style userspace driver that adds TPH on top of its own VFIO device and interrupts.
//!
//! The driver opens the device itself and keeps it (BARs, DMA, interrupts stay its own), creates
//! one eventfd per queue and wires them to MSI-X vectors, then puts TPH on top with a borrowing
//! backend: every queue is bound to its poller's CPU in one batched call, one queue moves when
//! its poller migrates, and teardown clears every entry it programmed and disables TPH. At the
//! end the driver still holds its device and its eventfds.
//!
//! Run: `cargo run -p tph-client --example poller -- BDF [QUEUES]` (default 8 queues) on a host
//! where BDF is bound to vfio-pci; the tests run it unmodified against the emulated kernel
//! through the syscall-boundary harness (`tests/example_poller.rs`).

use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use tph_client::backend::{Backend, FdBackend};
use tph_client::open::{open_vfio, VfioPaths};
use tph_client::steer::{Placement, Queue, QueueSteering};
use tph_client::{Mode, Probe, TphDevice};

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(bdf) = args.next() else {
        eprintln!("usage: poller BDF [QUEUES]");
        std::process::exit(2);
    };
    let queues = args.next().and_then(|n| n.parse::<u16>().ok()).unwrap_or(8);
    if let Err(e) = run(&bdf, queues) {
        eprintln!("poller: {e}");
        std::process::exit(2);
    }
}

fn run(bdf: &str, n: u16) -> Result<(), Box<dyn std::error::Error>> {
    // The driver's own device and interrupts.
    let device = open_vfio(bdf.parse()?, &VfioPaths::default())?;
    let irqs: Vec<OwnedFd> = (0..n)
        .map(|_| tph_client::backend::eventfd())
        .collect::<Result<_, _>>()?;
    // TPH on top, borrowing the device.
    let mut tph = TphDevice::with_probe(FdBackend::new(&device), &Probe::default())?;
    let cpus = tph.backend().cpu_count().unwrap_or(1);
    let caps = tph.capabilities()?;
    println!(
        "{bdf}: IV {} DS {} table {} entries; {cpus} CPUs",
        caps.iv, caps.ds, caps.st_table_size
    );
    let fds: Vec<_> = irqs.iter().map(AsFd::as_fd).collect();
    tph.enable_msix(&fds)?;
    let mut steering = QueueSteering::start(tph, Mode::Iv)?;
    let queues: Vec<Queue> = (0..n)
        .map(|q| Queue::new(q, q, u32::from(q) % cpus))
        .collect();
    for (q, placed) in queues.iter().zip(steering.bind(&queues)?) {
        report(q, placed);
    }
    let moved = steering.retarget(0, cpus - 1)?;
    println!("queue 0 poller moved to CPU {}: {moved:?}", cpus - 1);
    steering.teardown().map_err(|e| e.error)?; // the device comes back in the error too
    println!("torn down: entries cleared, TPH disabled");
    println!(
        "driver still owns device fd {} and {} eventfds",
        device.device().as_raw_fd(),
        irqs.len()
    );
    Ok(())
}

fn report(q: &Queue, placed: Placement) {
    match placed {
        Placement::Programmed { index } => {
            println!("queue {} -> CPU {}: entry {index} programmed", q.id, q.cpu)
        }
        Placement::Tag { tag } => println!("queue {} -> CPU {}: write tag {tag:#06x}", q.id, q.cpu),
        other => println!("queue {} -> CPU {}: {other:?}", q.id, q.cpu),
    }
}
