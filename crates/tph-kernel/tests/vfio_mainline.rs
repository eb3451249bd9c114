//! Mainline VFIO behaviour the model shows (`vfio-tph-v7.md` section 3, "What mainline VFIO
//! itself does", facts tagged [vfio]; sources: `vfio_pci_core.c`, `vfio_pci_config.c`,
//! `vfio_pci_intrs.c`, `drivers/pci/msi/msi.c`, `drivers/pci/pci.c`): one test per behaviour,
//! named after it, plus the two locking variants.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::{Arc, Mutex};

use common::*;
use tph_kernel::hw::{Access, Effect, Violation};
use tph_kernel::machines::{EXP_AT, MSIX_AT, TPH_AT};
use tph_kernel::vfio::abi::{self, TphEntry as Entry};
use tph_kernel::{
    Errno, Host, HostOptions, Interleave, Locking, ResetMethod, RestoreOrder, VfioDevice,
};

/// Capability-table entries of `CAP_DEV`.
const CAP_ENTRIES: usize = 16;
/// Device Capabilities (FLR bit 28) of every default-machine endpoint.
const DEVCAP: usize = EXP_AT + 4;
/// Where the tests put a PM capability (free space below 0x100).
const PM_AT: usize = 0xc0;
/// Command: Bus Master Enable, and the INTx-disable value `pci_dev_save_and_disable` writes.
const BUS_MASTER: u32 = 1 << 2;
const INTX_DISABLE: u32 = 1 << 10;
const COMMAND: u16 = 0x4;
/// Vector Control byte offset in an MSI-X entry, and its mask bit.
const VC: u8 = 12;
const MASKED: u32 = 1;

/// The default machine with `edit` applied to the config bytes of `bdf_s`.
fn host_with(bdf_s: &str, opts: HostOptions, edit: impl FnOnce(&mut [u8])) -> Host {
    let mut m = Host::with_default_machine(HostOptions::default())
        .machine()
        .clone();
    let f = m
        .functions
        .iter_mut()
        .find(|f| f.bdf == bdf(bdf_s))
        .unwrap();
    edit(&mut f.config);
    Host::new(m, opts)
}

fn clear_flr(cfg: &mut [u8]) {
    cfg[DEVCAP + 3] &= !0x10; // bit 28
}

/// A PM capability with No_Soft_Reset clear, linked after MSI-X.
fn add_pm(cfg: &mut [u8]) {
    cfg[MSIX_AT + 1] = PM_AT as u8;
    cfg[PM_AT] = 0x01;
    cfg[PM_AT + 1] = 0;
    cfg[PM_AT + 2..PM_AT + 4].copy_from_slice(&0x0003u16.to_le_bytes()); // PMC version 3
    cfg[PM_AT + 4..PM_AT + 8].copy_from_slice(&0u32.to_le_bytes()); // D0, No_Soft_Reset clear
}

fn resets(trace: &[Access]) -> usize {
    trace
        .iter()
        .filter(|a| {
            matches!(
                a,
                Access::ConfigWrite {
                    effect: Effect::FunctionReset,
                    ..
                }
            )
        })
        .count()
}

fn vector_controls(dev: &VfioDevice) -> Vec<u32> {
    dev.with_hardware(|hw| hw.peek_vector_controls())
}

// ---- first open and last close ----

#[test]
fn first_open_resets_the_function_and_saves_its_state() {
    let host = Host::with_default_machine(HostOptions::default());
    let dev = host.take_over(bdf(CAP_DEV)).unwrap();
    // Left by a previous owner: ST entry 3 in the capability table.
    dev.with_hardware(|hw| hw.config_write(TPH_AT as u16 + 0xc + 6, 2, 0x55));
    dev.drain_trace();
    let fd = dev.open().unwrap();
    assert_eq!(resets(&dev.drain_trace()), 1, "pci_try_reset_function");
    assert_eq!(dev.snapshot().st_table[3], 0, "the reset cleared it");
    let second = dev.open().unwrap();
    assert_eq!(resets(&dev.drain_trace()), 0, "only the first open resets");
    second.close();
    drop(fd);
}

#[test]
fn last_close_resets_and_restores_the_open_time_state() {
    let f = Fixture::new(MSIX_DEV);
    let command_at_open = f.dev.with_hardware(|hw| hw.config_read(COMMAND, 2));
    f.fd.set_irqs(4).unwrap();
    f.enable(abi::MODE_IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 1)]).unwrap();
    assert_ne!(f.table()[1], 0);
    let Fixture { dev, fd, .. } = f;
    fd.close();
    let trace = dev.drain_trace();
    assert_eq!(resets(&trace), 1, "reset at last close");
    let snap = dev.snapshot();
    assert_eq!(snap.control, Some(0));
    assert_eq!(
        snap.st_table[1], 0,
        "MSI-X tag as at open (zero), not as left"
    );
    assert_eq!(
        dev.with_hardware(|hw| hw.config_read(COMMAND, 2)),
        command_at_open,
        "open-time Command restored"
    );
}

#[test]
fn last_close_turns_bus_master_off_before_the_reset() {
    let f = Fixture::new(CAP_DEV);
    let Fixture { dev, fd, .. } = f;
    fd.close();
    let trace = dev.drain_trace();
    let intx = trace.iter().position(|a| {
        matches!(a, Access::ConfigWrite { offset: COMMAND, value, .. } if *value == INTX_DISABLE)
    });
    let reset = trace.iter().position(|a| {
        matches!(
            a,
            Access::ConfigWrite {
                effect: Effect::FunctionReset,
                ..
            }
        )
    });
    assert!(intx.is_some() && intx < reset, "{trace:#?}");
}

// ---- reset_works for any method ----

#[test]
fn reset_works_for_any_reset_method_the_function_has() {
    let flr = Fixture::new(CAP_DEV);
    assert_eq!(flr.dev.reset_method(), Some(ResetMethod::Flr));

    // No FLR, but a PM capability whose D3hot -> D0 transition resets.
    let host = host_with(CAP_DEV, HostOptions::default(), |c| {
        clear_flr(c);
        add_pm(c);
    });
    let pm = Fixture::on(host, CAP_DEV);
    assert_eq!(pm.dev.reset_method(), Some(ResetMethod::Pm));
    pm.enable(abi::MODE_IV).unwrap();
    pm.set_st(&[Entry::new(3, 0, 2)]).unwrap();
    assert_eq!(pm.fd.reset(), Ok(()));
    assert_eq!(
        resets(&pm.trace()),
        1,
        "PMCSR D3hot -> D0 reset the function"
    );
    assert_eq!(pm.table()[2], 3, "TPH state restored around it");

    // Neither: the device alone below its root port gets a secondary bus reset.
    let host = host_with(CAP_DEV, HostOptions::default(), clear_flr);
    let bus = Fixture::on(host, CAP_DEV);
    assert_eq!(bus.dev.reset_method(), Some(ResetMethod::Bus));
    bus.dev.drain_root_port_trace();
    assert_eq!(bus.fd.reset(), Ok(()));
    let port = bus.dev.drain_root_port_trace();
    assert!(
        port.iter().any(
            |a| matches!(a, Access::ConfigWrite { offset: 0x3e, value, .. } if value & 0x40 != 0)
        ),
        "Secondary Bus Reset on the root port: {port:?}"
    );
}

#[test]
fn reset_without_any_method_is_einval_and_open_does_not_reset() {
    // An RCiEP sits on the root bus: no parent bridge to reset it; without FLR nothing works.
    let host = host_with(RCIEP_DEV, HostOptions::default(), clear_flr);
    let dev = host.take_over(bdf(RCIEP_DEV)).unwrap();
    dev.drain_trace();
    let fd = dev.open().unwrap();
    assert_eq!(dev.reset_method(), None);
    assert_eq!(resets(&dev.drain_trace()), 0);
    assert_eq!(fd.reset(), Err(Errno::EINVAL));
    let mut arg = Vec::new();
    assert_eq!(
        fd.ioctl_bytes(abi::VFIO_DEVICE_RESET, &mut arg),
        Err(Errno::EINVAL)
    );
}

// ---- restore order ----

/// Command's Bus Master bit at the time of each TPH restore write of a reset.
fn bus_master_at_tph_writes(trace: &[Access]) -> Vec<bool> {
    let mut command = BUS_MASTER;
    let mut seen = Vec::new();
    for a in trace {
        let Access::ConfigWrite { offset, value, .. } = a else {
            continue;
        };
        if *offset == COMMAND {
            command = *value;
        } else if (TPH_AT as u16 + 8..TPH_AT as u16 + 0xc + 2 * CAP_ENTRIES as u16).contains(offset)
        {
            seen.push(command & BUS_MASTER != 0);
        }
    }
    seen
}

#[test]
fn reset_restores_tph_with_bus_master_off() {
    let f = Fixture::new(CAP_DEV);
    // First open cleared Bus Master; the driver sets it through the config region.
    f.fd.config_write(u64::from(COMMAND), &0x6u16.to_le_bytes())
        .unwrap();
    f.enable(abi::MODE_IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 1)]).unwrap();
    f.trace();
    f.fd.reset().unwrap();
    let trace = f.trace();
    let at_tph = bus_master_at_tph_writes(&trace);
    assert_eq!(at_tph.len(), 1 + CAP_ENTRIES, "Control, then every entry");
    assert!(at_tph.iter().all(|on| !on), "Bus Master off throughout");
    let command = f.dev.with_hardware(|hw| hw.config_read(COMMAND, 2));
    assert_ne!(command & BUS_MASTER, 0, "the header is restored after TPH");
}

#[test]
fn reset_mainline_restore_order_is_the_default_and_flagged_by_the_violation_check() {
    assert_eq!(HostOptions::default().restore_order, RestoreOrder::Mainline);
    let f = Fixture::new(CAP_DEV);
    f.enable(abi::MODE_IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 1)]).unwrap();
    f.fd.reset().unwrap();
    assert_eq!(f.table()[1], 3);
    let flagged = f.violations();
    assert_eq!(flagged.len(), CAP_ENTRIES, "{flagged:?}");
    assert!(flagged
        .iter()
        .all(|v| matches!(v, Violation::StWriteWhileEnabled { .. })));

    let opts = HostOptions::new().with_restore_order(RestoreOrder::TableBeforeEnable);
    let g = Fixture::with(CAP_DEV, opts);
    g.enable(abi::MODE_IV).unwrap();
    g.set_st(&[Entry::new(3, 0, 1)]).unwrap();
    g.fd.reset().unwrap();
    assert_eq!((g.control(), g.table()), (f.control(), f.table()));
    assert!(g.violations().is_empty(), "{:?}", g.violations());
}

// ---- SET_IRQS and MSI-X ----

#[test]
fn set_irqs_start_nonzero_enables_start_plus_count_vectors() {
    let f = Fixture::new(MSIX_DEV);
    assert_eq!(f.fd.set_irqs_block(4, &[true, true]), Ok(()));
    assert_eq!(f.dev.snapshot().msix_vectors, 6, "vectors 0..6 allocated");
    let vc = vector_controls(&f.dev);
    assert_eq!(&vc[..6], &[MASKED, MASKED, MASKED, MASKED, 0, 0]);
    assert_eq!(f.fd.set_irqs_block(2047, &[true, true]), Err(Errno::EINVAL));
}

#[test]
fn set_irqs_on_enabled_msix_updates_in_place() {
    let f = Fixture::new(MSIX_DEV);
    f.fd.set_irqs(4).unwrap();
    f.enable(abi::MODE_IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 1)]).unwrap();
    let tag = f.table()[1];
    f.trace();
    assert_eq!(f.fd.set_irqs_block(2, &[true, true, true]), Ok(()));
    let trace = f.trace();
    let disabled = trace.iter().any(|a| {
        matches!(
            a,
            Access::ConfigWrite {
                effect: Effect::MsixControl { enabled: false, .. },
                ..
            }
        )
    });
    assert!(!disabled, "no disable first: {trace:#?}");
    assert_eq!(
        f.dev.snapshot().msix_vectors,
        5,
        "vector 4 allocated on demand"
    );
    assert_eq!(f.table()[1], tag, "vector 1 untouched");
    assert_eq!(f.set_st(&[Entry::new(2, 0, 4)]), Ok(0), "vector 4 usable");
}

#[test]
fn msix_enable_masks_every_entry_zeroing_unallocated_tags() {
    let f = Fixture::new(MSIX_DEV);
    f.fd.msix_mmap_write(10, VC, 0xbeef_0000); // a tag in an entry nobody will allocate
    f.fd.set_irqs(2).unwrap();
    let vc = vector_controls(&f.dev);
    assert_eq!(
        vc[10], MASKED,
        "Vector Control written whole: masked, tag 0"
    );
    assert_eq!(&vc[..2], &[0, 0], "allocated and requested: unmasked");
    assert!(vc[2..].iter().all(|v| *v == MASKED));
}

/// Re-enabling MSI-X while TPH is enabled with its table in MSI-X (the kernel `ioctl` fuzz
/// target's finding: enable IV, set entry 0, MSI-X off, MSI-X on). `msix_capability_init`
/// caches each allocated vector's Vector Control before it masks every entry, so vector 0 gets
/// its tag back when its trigger is requested; an entry nobody allocates keeps the mask-all's
/// Vector Control = 1.
#[test]
fn msix_reenable_gives_a_reallocated_vector_back_its_vector_control() {
    let f = Fixture::new(MSIX_DEV);
    f.fd.set_irqs(2).unwrap();
    f.enable(abi::MODE_IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 0), Entry::new(2, 0, 1)])
        .unwrap();
    let table = f.table();
    assert!(table[0] != 0 && table[1] != 0, "entries 0 and 1 programmed");
    assert!(
        f.dev.violations().is_empty(),
        "SET_ST itself keeps the rule"
    );
    f.fd.set_irqs(0).unwrap();
    f.fd.set_irqs(1).unwrap();
    let vc = vector_controls(&f.dev);
    assert_eq!(
        vc[0],
        u32::from(table[0]) << 16,
        "vector 0: cached tag, unmasked"
    );
    assert_eq!(
        vc[1], MASKED,
        "vector 1 not allocated again: mask-all value"
    );
    // Mainline's own hazard: the mask-all rewrites both tags and the unmask writes vector 0's
    // back, all with Requester Enable on. The device flags each write; the kernel does them.
    assert_eq!(
        f.dev.violations(),
        [0, 1, 0].map(|index| Violation::StWriteWhileEnabled { index })
    );
    assert_eq!(f.set_st(&[Entry::new(3, 0, 0)]), Ok(0), "vector 0 usable");
}

#[test]
fn tag_writes_come_from_the_cached_vector_control() {
    let f = Fixture::new(MSIX_DEV);
    f.fd.set_irqs(2).unwrap();
    f.enable(abi::MODE_IV).unwrap();
    f.fd.msix_mmap_write(1, VC, MASKED); // the user masks vector 1 behind the kernel
    f.trace();
    f.set_st(&[Entry::new(3, 0, 1)]).unwrap();
    let written: Vec<u32> = f
        .trace()
        .iter()
        .filter_map(|a| match a {
            Access::MsixWrite {
                vector: 1,
                offset: VC,
                value,
                ..
            } => Some(*value),
            _ => None,
        })
        .collect();
    let tag = f.table()[1];
    assert_eq!(
        written,
        [u32::from(tag) << 16],
        "the cache (unmasked) with the tag"
    );
}

#[test]
fn mmapped_msix_table_lets_a_user_overwrite_a_tag_until_the_next_unmask() {
    let f = Fixture::new(MSIX_DEV);
    f.fd.set_irqs(2).unwrap();
    f.enable(abi::MODE_IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 1)]).unwrap();
    let tag = f.table()[1];
    assert_eq!(
        f.fd.msix_mmap_read(1, VC) >> 16,
        u32::from(tag),
        "tags are not private"
    );
    f.fd.msix_mmap_write(1, VC, 0xbeef_0000);
    assert_eq!(f.table()[1], 0xbeef, "the user's tag is live");
    // Re-wiring vector 1's eventfd masks and unmasks it from the kernel's cache.
    f.fd.set_irqs_block(1, &[true]).unwrap();
    assert_eq!(f.table()[1], tag, "the kernel's cached tag wins");
}

// ---- the config region ----

#[test]
fn config_access_beyond_the_config_size_is_efault() {
    let f = Fixture::new(CAP_DEV);
    let mut b = [0u8; 4];
    assert_eq!(f.fd.config_read(4092, &mut b), Ok(()));
    assert_eq!(f.fd.config_read(4094, &mut b), Err(Errno::EFAULT));
    assert_eq!(f.fd.config_write(4096, &[0]), Err(Errno::EFAULT));
    // A conventional function (no PCI Express capability): 256 bytes.
    let host = host_with(CAP_DEV, HostOptions::default(), |c| c[0x34] = MSIX_AT as u8);
    let g = Fixture::on(host, CAP_DEV);
    assert_eq!(g.fd.config_read(252, &mut b), Ok(()));
    assert_eq!(g.fd.config_read(256, &mut b), Err(Errno::EFAULT));
}

#[test]
fn config_unassigned_bytes_are_raw_and_capability_writes_are_dropped() {
    let f = Fixture::new(CAP_DEV);
    let unassigned = MSIX_AT as u16 + 12; // just past MSI-X
    assert!(f.dev.is_unassigned(unassigned));
    assert!(!f.dev.is_unassigned(TPH_AT as u16 + 8));
    f.fd.config_write(u64::from(unassigned), &[0x5a]).unwrap();
    f.fd.config_write(TPH_AT as u64 + 8, &0x101u32.to_le_bytes())
        .unwrap();
    let writes = f.hw_writes();
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(
        matches!(writes[0], Access::ConfigWrite { offset, width: 1, value: 0x5a, .. } if offset == unassigned)
    );
    assert_eq!(f.control(), 0, "TPH capability: no write permission");
    let mut b = [0u8; 1];
    f.fd.config_read(u64::from(unassigned), &mut b).unwrap();
    let raw = f
        .dev
        .with_hardware(|hw| hw.config_bytes()[usize::from(unassigned)]);
    assert_eq!(b[0], raw, "read raw");
}

// ---- locking ----

/// A SET_ST of entry 1 = CPU 3 started from the reset's interleaving point, on this thread
/// when the locking lets it in, on another thread otherwise (it then waits for the reset).
fn set_st_during_reset(locking: Locking) -> (Result<i32, Errno>, u16, u16) {
    let opts = HostOptions::new().with_locking(locking);
    let f = Fixture::with(CAP_DEV, opts);
    f.enable(abi::MODE_IV).unwrap();
    f.set_st(&[Entry::new(1, 0, 1)]).unwrap();
    let before = f.table()[1];
    let fd = Arc::new(f.dev.open().unwrap());
    let result = Arc::new(Mutex::new(None));
    let worker = Arc::new(Mutex::new(None));
    let (fd2, result2, worker2) = (Arc::clone(&fd), Arc::clone(&result), Arc::clone(&worker));
    f.dev.set_interleave_hook(move |point| {
        assert_eq!(point, Interleave::ResetWait);
        let (fd, result) = (Arc::clone(&fd2), Arc::clone(&result2));
        let run = move || {
            let mut arg = abi::encode_st_raw(abi::OP_SET_ST, &[Entry::new(3, 0, 1)]);
            let r = fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg);
            *result.lock().unwrap() = Some(r);
        };
        match locking {
            Locking::AsPosted => run(),
            Locking::Serialised => *worker2.lock().unwrap() = Some(std::thread::spawn(run)),
            other => panic!("no interleaving defined for {other:?}"),
        }
    });
    f.fd.reset().unwrap();
    if let Some(h) = worker.lock().unwrap().take() {
        h.join().unwrap();
    }
    let r = result.lock().unwrap().take().unwrap();
    (r, before, f.table()[1])
}

/// The v8 review's finding, reproduced: as posted, reset holds `memory_lock` and the TPH
/// ioctl `igate`, so SET_ST runs while the reset is in progress, succeeds, and the reset's
/// restore then writes the saved (old) entry back over it.
#[test]
fn locking_as_posted_lets_set_st_run_during_reset_and_lose_its_write() {
    let (r, before, after) = set_st_during_reset(Locking::AsPosted);
    assert_eq!(r, Ok(0), "SET_ST reported success");
    assert_ne!(
        before,
        default_info(3).st(tph_acpi::MemType::Volatile).into()
    );
    assert_eq!(after, before, "yet the entry holds the pre-SET tag");
}

#[test]
fn locking_serialised_runs_set_st_after_the_reset() {
    assert_eq!(HostOptions::default().locking, Locking::Serialised);
    let (r, _, after) = set_st_during_reset(Locking::Serialised);
    assert_eq!(r, Ok(0));
    let tag3 = u16::from(default_info(3).st(tph_acpi::MemType::Volatile));
    assert_eq!(
        after, tag3,
        "the SET after the reset is what the table holds"
    );
}

/// As posted, config accesses take neither `igate` nor `memory_lock`: a read in the middle
/// of a reset sees the function as the reset left it (TPH Control 0), not the restored state.
#[test]
fn locking_as_posted_config_reads_run_during_reset() {
    let opts = HostOptions::new().with_locking(Locking::AsPosted);
    let f = Fixture::with(CAP_DEV, opts);
    f.enable(abi::MODE_IV).unwrap();
    let enabled = f.control();
    let fd = Arc::new(f.dev.open().unwrap());
    let seen = Arc::new(Mutex::new(None));
    let (fd2, seen2) = (Arc::clone(&fd), Arc::clone(&seen));
    f.dev.set_interleave_hook(move |_| {
        let mut b = [0u8; 4];
        fd2.config_read(TPH_AT as u64 + 8, &mut b).unwrap();
        *seen2.lock().unwrap() = Some(u32::from_le_bytes(b));
    });
    f.fd.reset().unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        Some(0),
        "mid-reset: Control as reset"
    );
    assert_eq!(f.control(), enabled, "restored afterwards");
}
