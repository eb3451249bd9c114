//! The `#[non_exhaustive]` types a driver builds, built the only way another crate can: through
//! their constructors. This file is a crate of its own, so a struct literal here would not
//! compile; each test checks that a constructor puts every value where its name says, leaves
//! the rest at the documented default, and that the client sends what was built.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tph_client::abi::{self, TphEntry};
use tph_client::backend::{Call, Recorder};
use tph_client::open::{VfioInterface, VfioPaths};
use tph_client::steer::Queue;
use tph_client::{CpuQuery, MemType, Mode, Revision, Steer, TphDevice};

#[test]
fn steer_new_is_volatile_and_with_mem_changes_only_mem() {
    let s = Steer::new(3, 5);
    assert_eq!((s.index, s.cpu, s.mem), (3, 5, MemType::Volatile));
    let p = s.with_mem(MemType::Persistent);
    assert_eq!((p.index, p.cpu, p.mem), (3, 5, MemType::Persistent));
}

#[test]
fn cpu_query_new_is_volatile_and_with_mem_changes_only_mem() {
    let q = CpuQuery::new(2);
    assert_eq!((q.cpu, q.mem), (2, MemType::Volatile));
    let p = q.with_mem(MemType::Persistent);
    assert_eq!((p.cpu, p.mem), (2, MemType::Persistent));
}

/// Usable in a `const`, as a literal was.
const BATCH: [Steer; 2] = [
    Steer::new(0, 1),
    Steer::new(1, 2).with_mem(MemType::Persistent),
];

#[test]
fn steer_built_by_constructors_is_sent_as_given() {
    let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(4), Revision::V7).unwrap();
    dev.enable(Mode::Iv).unwrap();
    dev.set_entries(&BATCH).unwrap();
    // v7: one SET_ST with (CPU 1, volatile 0, index 0) and (CPU 2, persistent 1, index 1).
    let want = abi::encode_st(
        abi::OP_SET_ST,
        &[TphEntry::new(1, 0, 0), TphEntry::new(2, 1, 1)],
    )
    .unwrap();
    assert_eq!(dev.backend().calls().last(), Some(&Call::Tph(want)));
}

#[test]
fn queue_new_keeps_id_slot_and_cpu_in_order() {
    let q = Queue::new(1, 4, 6);
    assert_eq!((q.id, q.slot, q.cpu), (1, 4, 6));
}

#[test]
fn vfio_paths_new_is_the_system_and_with_methods_set_each_field() {
    let p = VfioPaths::new();
    assert_eq!(p, VfioPaths::default());
    assert_eq!(
        (p.sysfs_root.to_str(), p.dev_root.to_str(), p.interface),
        (Some("/sys"), Some("/dev"), VfioInterface::Auto)
    );
    let p = p
        .with_sysfs_root("/fake/sys")
        .with_dev_root("/fake/dev")
        .with_interface(VfioInterface::Legacy);
    assert_eq!(
        (p.sysfs_root.to_str(), p.dev_root.to_str(), p.interface),
        (Some("/fake/sys"), Some("/fake/dev"), VfioInterface::Legacy)
    );
}
