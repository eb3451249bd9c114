//! Steering-table batches are all or nothing on both kernel revisions, judged by what the
//! emulated hardware holds afterwards (never by the calls the client made): a batch that is
//! refused leaves every entry as it was and TPH on, whether the client foresees the refusal
//! (it knows the CPU count, the enabled vectors) or the kernel refuses a later part of the
//! batch after an earlier part was written (the feature revision writes one contiguous run per
//! call). Also the call counts the docs state per revision.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::os::fd::{AsFd, BorrowedFd, OwnedFd};

use tph_client::abi::FEATURE_PROBE;
use tph_client::backend::Backend;
use tph_client::{Errno, Error, Mode, Revision, Steer, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::{Host, HostOptions, KernelAbi, TphSnapshot};

/// The emulated kernel, with the CPU count optionally hidden from the client (as for a
/// backend that cannot read `/sys`) and the TPH calls counted.
#[derive(Debug)]
struct Counted {
    inner: EmulatedBackend,
    hide_cpus: bool,
    /// `VFIO_DEVICE_PCI_TPH` calls.
    ioctls: usize,
    /// `VFIO_DEVICE_FEATURE` GET/SET calls (PROBE apart).
    features: usize,
}

impl Backend for Counted {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.ioctls += 1;
        self.inner.tph_ioctl(arg)
    }
    fn set_msix(&mut self, start: u32, eventfds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        self.inner.set_msix(start, eventfds)
    }
    fn reset(&mut self) -> Result<(), Errno> {
        self.inner.reset()
    }
    fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.inner.read_config(offset, buf)
    }
    fn cpu_count(&self) -> Option<u32> {
        if self.hide_cpus {
            None
        } else {
            self.inner.cpu_count()
        }
    }
    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        let flags = arg.get(4..8).map_or(0, |f| {
            u32::from_le_bytes(<[u8; 4]>::try_from(f).unwrap_or_default())
        });
        if flags & FEATURE_PROBE == 0 {
            self.features += 1;
        }
        self.inner.device_feature(arg)
    }
    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.inner.write_config(offset, data)
    }
}

const REVISIONS: [(Revision, KernelAbi); 2] = [
    (Revision::V7, KernelAbi::V7),
    (Revision::Feature, KernelAbi::Feature),
];

/// `bdf` of the default machine (8 CPUs), TPH enabled in IV mode.
fn enabled(revision: Revision, abi: KernelAbi, bdf: &str, hide_cpus: bool) -> TphDevice<Counted> {
    // The feature revision gates all of TPH with the unsafe parameter.
    let host = Host::with_default_machine(HostOptions::new().with_abi(abi).with_unsafe_ds(true));
    let inner = EmulatedBackend::take_over(&host, bdf.parse().unwrap()).unwrap();
    let b = Counted {
        inner,
        hide_cpus,
        ioctls: 0,
        features: 0,
    };
    let mut d = TphDevice::with_revision(b, revision).unwrap();
    d.enable(Mode::Iv).unwrap();
    d
}

fn steer(index: u16, cpu: u32) -> Steer {
    Steer::new(index, cpu)
}

fn snapshot(d: &TphDevice<Counted>) -> TphSnapshot {
    d.backend().inner.device().snapshot()
}

/// Programs entries 0..4, sends `batch`, and requires it refused with the table, Control and
/// the core's state exactly as before.
fn refused_batch_changes_nothing(d: &mut TphDevice<Counted>, batch: &[Steer], what: &str) -> Error {
    d.set_entries(&[steer(0, 1), steer(1, 2), steer(2, 3), steer(3, 4)])
        .unwrap();
    let before = snapshot(d);
    assert!(
        before.st_table[..4].iter().all(|t| *t != 0),
        "{what}: tags programmed"
    );
    let err = d.set_entries(batch).unwrap_err();
    let after = snapshot(d);
    assert!(
        after.st_table == before.st_table,
        "{what}: a refused batch changed the table: {:?} (first entries), was {:?}",
        after.st_table.get(..10),
        before.st_table.get(..10)
    );
    assert_eq!(after.control, before.control, "{what}: TPH Control changed");
    assert!(after.core_enabled, "{what}: TPH turned off");
    assert_eq!(d.believed_mode(), Some(Mode::Iv), "{what}");
    err
}

/// CPU 99 does not exist (8 CPUs); the first entries of the batch are valid and, on the
/// feature revision, form a run of their own before the invalid one.
const ABSENT_CPU_LAST: [Steer; 3] = [Steer::new(0, 5), Steer::new(1, 6), Steer::new(3, 99)];

#[test]
fn a_batch_with_an_absent_cpu_changes_nothing_on_either_revision() {
    for (revision, abi) in REVISIONS {
        let mut d = enabled(revision, abi, "02:00.0", false);
        let err = refused_batch_changes_nothing(&mut d, &ABSENT_CPU_LAST, &format!("{revision}"));
        assert!(
            matches!(err, Error::NoSuchCpu { cpu: 99, .. }),
            "{revision}: {err}"
        );
    }
}

#[test]
fn a_foreseeable_refusal_sends_no_table_write_on_either_revision() {
    for (revision, abi) in REVISIONS {
        let mut d = enabled(revision, abi, "02:00.0", false);
        let before = (d.backend().ioctls, d.backend().features);
        d.set_entries(&ABSENT_CPU_LAST).unwrap_err();
        let after = (d.backend().ioctls, d.backend().features);
        // v7: the one SET_ST, which the kernel refuses whole; feature: nothing at all.
        let expected = match revision {
            Revision::V7 => (before.0 + 1, before.1),
            _ => before,
        };
        assert_eq!(after, expected, "{revision}");
    }
}

#[test]
fn a_batch_the_kernel_refuses_part_way_puts_back_what_was_there() {
    // The client cannot see the CPU count, so only the kernel finds CPU 99 absent: on the
    // feature revision after the first run (entries 0 and 1) was written.
    for (revision, abi) in REVISIONS {
        let mut d = enabled(revision, abi, "02:00.0", true);
        let err = refused_batch_changes_nothing(&mut d, &ABSENT_CPU_LAST, &format!("{revision}"));
        assert_eq!(err.errno(), Some(Errno::EINVAL), "{revision}: {err}");
    }
}

#[test]
fn entries_never_programmed_are_cleared_again_after_a_part_way_refusal() {
    for (revision, abi) in REVISIONS {
        let mut d = enabled(revision, abi, "02:00.0", true);
        d.set_entries(&[steer(0, 1)]).unwrap();
        let before = snapshot(&d);
        assert_eq!(
            before.st_table[5..7],
            [0, 0],
            "{revision}: untouched entries"
        );
        d.set_entries(&[steer(5, 1), steer(6, 2), steer(9, 99)])
            .unwrap_err();
        assert_eq!(snapshot(&d).st_table, before.st_table, "{revision}");
    }
}

#[test]
fn a_vector_the_client_did_not_know_was_off_changes_nothing() {
    // 01:00.0 keeps its table in MSI-X; the driver enabled vectors 0..4 itself, without telling
    // the client, so only the kernel knows vector 6 is off (ENXIO).
    for (revision, abi) in REVISIONS {
        let mut d = enabled(revision, abi, "01:00.0", false);
        let irqs: Vec<OwnedFd> = (0..4)
            .map(|_| tph_client::backend::eventfd().unwrap())
            .collect();
        let fds: Vec<BorrowedFd<'_>> = irqs.iter().map(AsFd::as_fd).collect();
        d.backend_mut().set_msix(0, &fds).unwrap();
        let batch = [steer(0, 5), steer(1, 6), steer(6, 7)];
        let err = refused_batch_changes_nothing(&mut d, &batch, &format!("{revision}"));
        assert_eq!(err.errno(), Some(Errno(libc::ENXIO)), "{revision}: {err}");
    }
}

#[test]
fn a_failed_hardware_write_part_way_leaves_tph_off_and_the_client_knows() {
    // The core turns TPH off when a table write does not land; nothing can be written after
    // that, so the client says TPH is off instead of pretending to restore anything.
    for (revision, abi) in REVISIONS {
        let mut d = enabled(revision, abi, "02:00.0", false);
        // Each entry is three writes (requests off, the entry, requests on): the first run of
        // two entries lands, the next write fails.
        d.backend().inner.device().inject_write_failure(6);
        let err = d
            .set_entries(&[steer(0, 1), steer(1, 2), steer(4, 3)])
            .unwrap_err();
        assert!(err.errno().is_some(), "{revision}: {err}");
        assert!(
            !snapshot(&d).core_enabled,
            "{revision}: the core turned TPH off"
        );
        assert_eq!(d.believed_mode(), None, "{revision}");
    }
}

#[test]
fn call_counts_per_revision_are_as_documented() {
    // v7: one SET_ST per batch. Feature: one SET per contiguous run of one memory type.
    let batch = [
        steer(0, 1),
        steer(1, 2),
        steer(4, 3),
        steer(5, 4),
        steer(7, 5),
    ];
    for (revision, abi, calls) in [
        (Revision::V7, KernelAbi::V7, (1, 0)),
        (Revision::Feature, KernelAbi::Feature, (0, 3)),
    ] {
        let mut d = enabled(revision, abi, "02:00.0", false);
        let before = (d.backend().ioctls, d.backend().features);
        d.set_entries(&batch).unwrap();
        let after = (d.backend().ioctls, d.backend().features);
        assert_eq!(
            (after.0 - before.0, after.1 - before.1),
            calls,
            "{revision}"
        );
    }
}
