//! `QueueSteering` keeps its promises (issue: duplicate ids or slots refused, re-binding clears
//! what it replaces, teardown clears everything it programmed even after errors, each call one
//! batched kernel call), checked on the emulated kernel's hardware registers.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::os::fd::BorrowedFd;

use tph_client::backend::Backend;
use tph_client::steer::{Placement, Queue, QueueSteering};
use tph_client::{Errno, Error, Mode, Revision, Steer, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::hw::{Access, Effect};
use tph_kernel::vfio::VfioDevice;
use tph_kernel::{Host, HostOptions, MsixAlloc};

/// The emulated backend, counting the TPH ioctls it is asked to make.
#[derive(Debug)]
struct Counting {
    inner: EmulatedBackend,
    tph_calls: usize,
}

impl Backend for Counting {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.tph_calls += 1;
        self.inner.tph_ioctl(arg)
    }
    fn set_msix(&mut self, start: u32, fds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        self.inner.set_msix(start, fds)
    }
    fn reset(&mut self) -> Result<(), Errno> {
        self.inner.reset()
    }
    fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.inner.read_config(offset, buf)
    }
    fn cpu_count(&self) -> Option<u32> {
        self.inner.cpu_count()
    }
}

/// The default machine's 02:00.0: IV mode, 16-entry table in the TPH capability.
fn steering() -> (QueueSteering<Counting>, VfioDevice) {
    let host = Host::with_default_machine(HostOptions::default());
    let inner = EmulatedBackend::take_over(&host, "02:00.0".parse().unwrap()).unwrap();
    let device = inner.device().clone();
    let dev = TphDevice::with_revision(
        Counting {
            inner,
            tph_calls: 0,
        },
        Revision::V7,
    )
    .unwrap();
    (QueueSteering::start(dev, Mode::Iv).unwrap(), device)
}

fn calls(s: &mut QueueSteering<Counting>) -> usize {
    s.device().backend().tph_calls
}

fn q(id: u16, slot: u16, cpu: u32) -> Queue {
    Queue::new(id, slot, cpu)
}

#[test]
fn bind_same_queue_id_twice_is_refused_before_any_call() {
    let (mut s, dev) = steering();
    let before = calls(&mut s);
    let err = s.bind(&[q(0, 0, 1), q(0, 1, 2)]).unwrap_err();
    assert!(matches!(err, Error::DuplicateQueue(0)), "{err}");
    assert_eq!(calls(&mut s), before, "nothing sent");
    assert!(dev.snapshot().st_table.iter().all(|&t| t == 0));
}

#[test]
fn bind_same_slot_for_two_queues_is_refused_before_any_call() {
    let (mut s, _dev) = steering();
    let before = calls(&mut s);
    let err = s.bind(&[q(0, 3, 1), q(1, 3, 2)]).unwrap_err();
    assert!(matches!(err, Error::DuplicateSlot(3)), "{err}");
    assert_eq!(calls(&mut s), before);
}

#[test]
fn bind_slot_held_by_another_bound_queue_is_refused() {
    let (mut s, dev) = steering();
    s.bind(&[q(0, 3, 1)]).unwrap();
    let err = s.bind(&[q(1, 3, 2)]).unwrap_err();
    assert!(matches!(err, Error::DuplicateSlot(3)), "{err}");
    assert_eq!(s.cpu_of(0), Some(1), "queue 0 keeps its slot");
    assert_eq!(
        dev.snapshot().st_table[3],
        1,
        "entry 3 still steers to CPU 1 (tag 1)"
    );
}

#[test]
fn bind_cpu_clear_value_is_refused_everywhere() {
    let (mut s, _dev) = steering();
    let err = s.bind(&[q(0, 0, 0xFFFF_FFFF)]).unwrap_err();
    assert!(matches!(err, Error::ClearValueAsCpu(0xFFFF_FFFF)), "{err}");
    s.bind(&[q(0, 0, 1)]).unwrap();
    assert!(matches!(
        s.retarget(0, u32::MAX),
        Err(Error::ClearValueAsCpu(_))
    ));
    let steer = [Steer::new(1, u32::MAX)];
    assert!(matches!(
        s.device().set_entries(&steer),
        Err(Error::ClearValueAsCpu(_))
    ));
}

#[test]
fn bind_many_queues_is_one_kernel_call() {
    let (mut s, dev) = steering();
    let before = calls(&mut s);
    let queues: Vec<Queue> = (0..8).map(|i| q(i, i, u32::from(i))).collect();
    let placed = s.bind(&queues).unwrap();
    assert_eq!(calls(&mut s) - before, 1);
    assert_eq!(placed[7], Placement::Programmed { index: 7 });
    assert_eq!(&dev.snapshot().st_table[..8], &[0, 1, 2, 3, 4, 5, 6, 7]);
}

#[test]
fn rebind_to_another_slot_clears_the_old_entry_in_the_same_call() {
    let (mut s, dev) = steering();
    s.bind(&[q(0, 2, 5)]).unwrap();
    let before = calls(&mut s);
    s.bind(&[q(0, 9, 6)]).unwrap();
    assert_eq!(calls(&mut s) - before, 1, "program and clear batched");
    let table = dev.snapshot().st_table;
    assert_eq!(
        (table[2], table[9]),
        (0, 6),
        "old entry cleared, new one programmed"
    );
    let dev_back = s.teardown().unwrap();
    let table = dev_back.backend().inner.device().snapshot().st_table;
    assert!(table.iter().all(|&t| t == 0), "{table:?}");
}

#[test]
fn rebind_swapping_slots_between_queues_keeps_both_programmed() {
    let (mut s, dev) = steering();
    s.bind(&[q(0, 1, 3), q(1, 2, 4)]).unwrap();
    s.bind(&[q(0, 2, 3), q(1, 1, 4)]).unwrap();
    let table = dev.snapshot().st_table;
    assert_eq!((table[1], table[2]), (4, 3));
}

#[test]
fn teardown_clears_every_programmed_entry_and_disables() {
    let (mut s, dev) = steering();
    s.bind(&[q(0, 0, 1), q(1, 5, 2)]).unwrap();
    s.retarget(1, 3).unwrap();
    let before = calls(&mut s);
    let back = s.teardown().unwrap();
    assert_eq!(
        back.backend().tph_calls - before,
        2,
        "one SET_ST clearing, one DISABLE"
    );
    let snap = dev.snapshot();
    assert_eq!(snap.control, Some(0));
    assert!(snap.st_table.iter().all(|&t| t == 0), "{:?}", snap.st_table);
}

#[test]
fn teardown_after_a_failed_table_write_still_clears_earlier_entries() {
    let (mut s, dev) = steering();
    s.bind(&[q(0, 0, 1), q(1, 1, 2)]).unwrap();
    // The next table write aborts: the core turns TPH off, entries 0 and 1 stay in the table.
    dev.inject_write_failure(0);
    assert!(s.bind(&[q(2, 2, 3)]).is_err());
    assert_eq!(dev.snapshot().control, Some(0), "the core disabled TPH");
    assert_eq!(
        &dev.snapshot().st_table[..2],
        &[1, 2],
        "earlier entries still programmed"
    );
    s.teardown().unwrap();
    let snap = dev.snapshot();
    assert_eq!(snap.control, Some(0));
    assert!(snap.st_table.iter().all(|&t| t == 0), "{:?}", snap.st_table);
}

#[test]
fn failed_teardown_gives_the_device_back() {
    let (mut s, dev) = steering();
    s.bind(&[q(0, 0, 1)]).unwrap();
    dev.inject_write_failure(0);
    let failed = s.teardown().unwrap_err();
    assert!(failed.error.errno().is_some(), "{}", failed.error);
    // Nothing lost: the device is usable again.
    let mut back = failed.device;
    back.enable(Mode::Iv).unwrap();
    back.clear_entries(&[0]).unwrap();
    assert_eq!(dev.snapshot().st_table[0], 0);
}

#[test]
fn enable_msix_with_fewer_vectors_leaves_only_those_enabled() {
    let host = Host::with_default_machine(HostOptions::default());
    let inner = EmulatedBackend::take_over(&host, "01:00.0".parse().unwrap()).unwrap();
    let device = inner.device().clone();
    let mut dev = TphDevice::with_revision(inner, Revision::V7).unwrap();
    let _four = tph_testkit::enable_msix(&mut dev, 4).unwrap();
    assert_eq!(device.snapshot().msix_vectors, 4);
    // An enabled block is updated in place by the kernel; the client turns MSI-X off first.
    let _two = tph_testkit::enable_msix(&mut dev, 2).unwrap();
    assert_eq!(device.snapshot().msix_vectors, 2);
    let _six = tph_testkit::enable_msix(&mut dev, 6).unwrap();
    assert_eq!(
        device.snapshot().msix_vectors,
        6,
        "growing needs no disable"
    );
}

/// Whether MSI-X was turned off in hardware since the last drain of the trace.
fn msix_turned_off(device: &VfioDevice) -> bool {
    device.drain_trace().iter().any(|a| {
        matches!(
            a,
            Access::ConfigWrite {
                effect: Effect::MsixControl { enabled: false, .. },
                ..
            }
        )
    })
}

#[test]
fn enable_msix_grows_in_place_unless_the_kernel_says_noresize() {
    // Linux 6.1 reports NORESIZE and refuses to grow an enabled block (EINVAL); a kernel that
    // allocates vectors dynamically grows it in place.
    for (alloc, off_first) in [(MsixAlloc::Dynamic, false), (MsixAlloc::Static, true)] {
        let opts = HostOptions::new().with_msix_alloc(alloc);
        let host = Host::with_default_machine(opts);
        let inner = EmulatedBackend::take_over(&host, "01:00.0".parse().unwrap()).unwrap();
        let device = inner.device().clone();
        let mut dev = TphDevice::with_revision(inner, Revision::V7).unwrap();
        let _two = tph_testkit::enable_msix(&mut dev, 2).unwrap();
        device.drain_trace();
        let _four = tph_testkit::enable_msix(&mut dev, 4).unwrap();
        assert_eq!(msix_turned_off(&device), off_first, "{alloc:?}");
        assert_eq!(device.snapshot().msix_vectors, 4, "{alloc:?}");
    }
}

#[test]
fn disable_msix_sends_nothing_while_msix_is_off() {
    // The kernel answers DATA_NONE with count 0 while MSI-X is off with EINVAL.
    let host = Host::with_default_machine(HostOptions::default());
    let inner = EmulatedBackend::take_over(&host, "01:00.0".parse().unwrap()).unwrap();
    let device = inner.device().clone();
    let mut dev = TphDevice::with_revision(inner, Revision::V7).unwrap();
    dev.disable_msix().unwrap();
    let _two = tph_testkit::enable_msix(&mut dev, 2).unwrap();
    dev.disable_msix().unwrap();
    assert_eq!(device.snapshot().msix_vectors, 0);
    dev.disable_msix().unwrap();
    // MSI-X enabled behind the client's back: Message Control says it is on, so it is sent.
    dev.backend().fd().unwrap().set_irqs(3).unwrap();
    let mut fresh = TphDevice::with_revision(dev.into_backend(), Revision::V7).unwrap();
    fresh.disable_msix().unwrap();
    assert_eq!(device.snapshot().msix_vectors, 0);
}
