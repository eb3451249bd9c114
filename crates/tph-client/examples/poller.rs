//! A poller-style driver skeleton steering N queues on the emulated machine.
//!
//! Each queue has an MSI-X vector and a polling thread pinned (in a real driver) to one CPU. The
//! driver enables N vectors, binds every queue to its poller's CPU in one batched call, moves one
//! queue when its poller migrates, and tears everything down at the end.
//!
//! Run: `cargo run -p tph-client --example poller -- [QUEUES]` (default 8).

use tph_client::emulated::EmulatedBackend;
use tph_client::steer::{Placement, Queue, QueueSteering};
use tph_client::{Mode, Revision, TphDevice};
use tph_kernel::{Host, HostOptions};

/// The default machine's NIC with its steering table in the MSI-X table.
const NIC: &str = "01:00.0";

fn main() {
    let queues = std::env::args()
        .nth(1)
        .and_then(|n| n.parse::<u16>().ok())
        .unwrap_or(8);
    if let Err(e) = run(queues) {
        eprintln!("poller: {e}");
        std::process::exit(2);
    }
}

fn run(n: u16) -> Result<(), Box<dyn std::error::Error>> {
    let host = Host::with_default_machine(HostOptions::default());
    let cpus = host.cpus().len() as u32;
    let bdf = NIC.parse()?;
    let mut dev = TphDevice::with_revision(EmulatedBackend::take_over(&host, bdf)?, Revision::V7)?;
    let caps = dev.capabilities()?;
    println!(
        "{NIC}: IV {} DS {} table {} entries; {cpus} CPUs",
        caps.iv, caps.ds, caps.st_table_size
    );
    dev.enable_msix(u32::from(n))?;
    let mut steering = QueueSteering::start(dev, Mode::Iv)?;
    let queues: Vec<Queue> = (0..n)
        .map(|q| Queue {
            id: q,
            slot: q,
            cpu: u32::from(q) % cpus,
        })
        .collect();
    for (q, placed) in queues.iter().zip(steering.bind(&queues)?) {
        report(q, placed);
    }
    let moved = steering.retarget(0, cpus - 1)?;
    println!("queue 0 poller moved to CPU {}: {moved:?}", cpus - 1);
    let tags = steering.device().backend().device().snapshot().st_table;
    let programmed: Vec<String> = tags
        .iter()
        .take(usize::from(n))
        .map(|t| format!("{t:#06x}"))
        .collect();
    println!("table now: {}", programmed.join(" "));
    steering.teardown()?;
    println!("torn down: entries cleared, TPH disabled");
    Ok(())
}

fn report(q: &Queue, placed: Placement) {
    match placed {
        Placement::Programmed { index } => {
            println!("queue {} -> CPU {}: entry {index} programmed", q.id, q.cpu)
        }
        Placement::Tag { tag } => println!("queue {} -> CPU {}: write tag {tag:#06x}", q.id, q.cpu),
    }
}
