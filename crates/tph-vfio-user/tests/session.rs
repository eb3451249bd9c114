//! A vfio-user client (rust-vmm's, as QEMU's client speaks the same protocol) drives a served
//! function the way QEMU and a guest kernel do: version negotiation, region and IRQ info,
//! configuration reads and writes including the TPH capability and its ST table, MSI-X table
//! accesses through the BAR, SET_IRQS with eventfds, DMA maps, reset and FLR. The trace is a
//! golden file (regenerate with `UPDATE_GOLDEN=1 cargo test -p tph-vfio-user --test session`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::os::fd::AsRawFd;

use common::*;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

const CONFIG: u32 = 7;
const BAR0: u32 = 0;
const MSIX: u32 = 2;
const DATA_NONE: u32 = 1;
const DATA_EVENTFD: u32 = 4;
const TRIGGER: u32 = 32;

fn check_golden(name: &str, text: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).expect("golden file");
    assert_eq!(text, want, "{name} differs; UPDATE_GOLDEN=1 regenerates it");
}

#[test]
fn qemu_like_session_on_a_table_in_the_capability() {
    let s = serve("02:00.0");
    let mut c = vfio_user::Client::new(&s.socket).unwrap();

    // Region and IRQ info: config space 4 KiB, BAR 0 holds the 16-vector table and the PBA.
    assert_eq!(c.region(CONFIG).unwrap().size, 4096);
    assert_eq!(c.region(BAR0).unwrap().size, 0x4000);
    for bar in 1..=6 {
        assert_eq!(c.region(bar).unwrap().size, 0, "region {bar}");
    }
    let msix = c.get_irq_info(MSIX).unwrap();
    assert_eq!((msix.count, msix.flags & 1), (16, 1));

    // Configuration space: IDs, then the TPH capability the guest's core reads.
    assert_eq!(read32(&mut c, CONFIG, 0), 0x1001_1ab0);
    assert_eq!(read32(&mut c, CONFIG, 0x100), 0x0001_0017);
    assert_eq!(read32(&mut c, CONFIG, 0x104), 0x000f_0307);
    // Enable IV with TPH requests, then program entry 0 the way the core does (requests off,
    // the entry, requests on).
    write32(&mut c, CONFIG, 0x108, 0x101);
    write32(&mut c, CONFIG, 0x108, 0x001);
    write16(&mut c, CONFIG, 0x10c, 0x0005);
    write32(&mut c, CONFIG, 0x108, 0x101);
    assert_eq!(read32(&mut c, CONFIG, 0x108), 0x101);
    assert_eq!(read32(&mut c, CONFIG, 0x10c) & 0xffff, 5);
    // A read that is not dword aligned is split into naturally aligned register reads.
    let mut three = [0u8; 3];
    c.region_read(CONFIG, 0x10d, &mut three).unwrap();
    assert_eq!(three, [0, 0, 0]);

    // MSI-X table through BAR 0: an entry's address, then data and Vector Control in one
    // qword write (two dword accesses), read back; the PBA is clear.
    write32(&mut c, BAR0, 0x2000, 0xfee0_0000);
    c.region_write(BAR0, 0x2008, &[0x21, 0x40, 0, 0, 0, 0, 0, 0])
        .unwrap();
    assert_eq!(read32(&mut c, BAR0, 0x2008), 0x4021);
    assert_eq!(read32(&mut c, BAR0, 0x200c), 0);
    assert_eq!(read32(&mut c, BAR0, 0x3000), 0);

    // Interrupts: eventfds for vectors 0 and 1; the device raises 1; the client's loopback
    // trigger raises 0; a vector without an eventfd becomes pending in the PBA.
    let fds = [
        EventFd::new(EFD_NONBLOCK).unwrap(),
        EventFd::new(EFD_NONBLOCK).unwrap(),
    ];
    let raw: Vec<i32> = fds.iter().map(|f| f.as_raw_fd()).collect();
    c.set_irqs(MSIX, DATA_EVENTFD | TRIGGER, 0, 2, &raw)
        .unwrap();
    assert_eq!(s.handle.eventfd_vectors(MSIX), [0, 1]);
    assert!(s.handle.trigger_msix(1));
    assert_eq!(fds[1].read().unwrap(), 1);
    assert!(fds[0].read().is_err(), "vector 0 was not raised");
    c.set_irqs(MSIX, DATA_NONE | TRIGGER, 0, 1, &[]).unwrap();
    assert_eq!(fds[0].read().unwrap(), 1);
    assert!(!s.handle.trigger_msix(5));
    assert_eq!(read32(&mut c, BAR0, 0x3000), 1 << 5);

    // DMA: the map is recorded with its descriptor, then removed.
    let mem = tempfile::tempfile().unwrap();
    c.dma_map(0, 0x1_0000_0000, 0x2000, mem.as_raw_fd())
        .unwrap();
    let maps = s.handle.dma_maps();
    assert_eq!(maps.len(), 1);
    assert_eq!(
        (maps[0].address, maps[0].size, maps[0].has_fd),
        (0x1_0000_0000, 0x2000, true)
    );
    c.dma_unmap(0x1_0000_0000, 0x2000).unwrap();
    assert!(s.handle.dma_maps().is_empty());

    // Device reset: TPH off, the table and the MSI-X entry back to reset values, PBA clear.
    c.reset().unwrap();
    assert_eq!(read32(&mut c, CONFIG, 0x108), 0);
    assert_eq!(read32(&mut c, CONFIG, 0x10c), 0);
    assert_eq!(
        read32(&mut c, BAR0, 0x200c),
        1,
        "Vector Control masked after reset"
    );
    assert_eq!(read32(&mut c, BAR0, 0x3000), 0);
    // FLR through Device Control (Initiate Function Level Reset, bit 15).
    write32(&mut c, CONFIG, 0x108, 0x102);
    write16(&mut c, CONFIG, 0x48, 0x8000 | 0x2810);
    assert_eq!(read32(&mut c, CONFIG, 0x108), 0);

    // Disabling every vector drops the eventfds.
    c.set_irqs(MSIX, DATA_NONE | TRIGGER, 0, 0, &[]).unwrap();
    assert!(s.handle.eventfd_vectors(MSIX).is_empty());

    c.shutdown().unwrap();
    let session = s.thread.join().unwrap().unwrap();
    assert_eq!(session.client_version, (0, 1));
    let counters = s.handle.counters();
    assert_eq!(
        (counters.resets, counters.interrupts, counters.pending),
        (1, 2, 1)
    );
    check_golden("session.trace", &s.trace.text());
}

#[test]
fn msix_table_with_steering_tags_in_vector_control() {
    // 01:00.0 keeps its ST table in MSI-X: Vector Control bits 31:16 hold the tag.
    let s = serve("01:00.0");
    let mut c = vfio_user::Client::new(&s.socket).unwrap();
    assert_eq!(c.region(BAR0).unwrap().size, 0x10000);
    write32(&mut c, BAR0, 0x2000 + 16 * 7 + 12, 0x0042_0000);
    assert_eq!(read32(&mut c, BAR0, 0x2000 + 16 * 7 + 12), 0x0042_0000);
    let table = s.handle.with_function(|f| f.hardware().peek_st_table());
    assert_eq!(table[7], 0x42);
    // Writes that are not whole dwords are dropped (the MSI-X table takes dwords and qwords).
    c.region_write(BAR0, 0x2000 + 16 * 7 + 14, &[0x99, 0])
        .unwrap();
    assert_eq!(read32(&mut c, BAR0, 0x2000 + 16 * 7 + 12), 0x0042_0000);
    c.shutdown().unwrap();
    s.thread.join().unwrap().unwrap();
    let trace = s.trace.text();
    assert!(
        trace.contains("msix wr vec 7 +0xc <- 0x420000: vector 7: Masked- ST 0x0042"),
        "{trace}"
    );
    assert!(trace.contains("dropped (not whole dwords)"), "{trace}");
}
