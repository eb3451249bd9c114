//! The `#[non_exhaustive]` types of this crate, built the only way another crate can: through
//! their constructors and `with_*` methods. This file is a crate of its own, so a struct
//! literal here would not compile; each test checks that a constructor puts every value where
//! its name says and leaves the rest at the documented default.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use tph_acpi::{StInfo, SteeringTagSource, TableSource};
use tph_kernel::core::MsiState;
use tph_kernel::machines::{self, TphSpec};
use tph_kernel::vfio::{Fault, IrqInfo, IrqSignal};
use tph_kernel::{Host, HostOptions, KernelAbi, Locking, MsixAlloc, RestoreOrder};
use tph_regs::tph::StLocation;

#[test]
fn host_options_new_is_the_documented_default() {
    let o = HostOptions::new();
    assert_eq!(o.cpus, 8, "8 CPUs by default");
    assert!(o.cpu_uids.is_empty() && o.offline.is_empty());
    assert!(!o.notph && !o.unsafe_ds);
    assert_eq!(o.restore_order, RestoreOrder::Mainline);
    assert_eq!(o.locking, Locking::Serialised);
    assert_eq!(o.abi, KernelAbi::V7);
    assert_eq!(o.msix_alloc, MsixAlloc::Dynamic);
}

#[test]
fn host_options_with_methods_set_each_field() {
    let firmware: Arc<dyn SteeringTagSource> =
        Arc::new(TableSource::from_map([(12, StInfo(0x42))].into()));
    let o = HostOptions::new()
        .with_cpus(3)
        .with_cpu_uids(vec![10, 11, 12])
        .with_offline(vec![2])
        .with_notph(true)
        .with_unsafe_ds(true)
        .with_firmware(Arc::clone(&firmware))
        .with_restore_order(RestoreOrder::TableBeforeEnable)
        .with_locking(Locking::AsPosted)
        .with_abi(KernelAbi::Feature)
        .with_msix_alloc(MsixAlloc::Static);
    assert_eq!(o.cpus, 3);
    assert_eq!(o.cpu_uids, [10, 11, 12]);
    assert_eq!(o.offline, [2]);
    assert!(o.notph && o.unsafe_ds);
    assert!(Arc::ptr_eq(&o.firmware, &firmware));
    assert_eq!(o.restore_order, RestoreOrder::TableBeforeEnable);
    assert_eq!(o.locking, Locking::AsPosted);
    assert_eq!(o.abi, KernelAbi::Feature);
    assert_eq!(o.msix_alloc, MsixAlloc::Static);
    // The host sees them: three CPUs with the given UIDs (10 + n, never the default n),
    // CPU 2 offline.
    let cpus = Host::with_default_machine(o).cpus();
    let seen: Vec<(u32, u32, bool)> = cpus.iter().map(|c| (c.id, c.uid, c.online)).collect();
    assert_eq!(seen, [(0, 10, true), (1, 11, true), (2, 12, false)]);
}

#[test]
fn tph_spec_new_matches_the_spec_shorthand() {
    let spec = TphSpec::new(machines::NS_IV_DS, true, StLocation::Capability, 64);
    assert_eq!(
        (spec.modes, spec.ext, spec.location, spec.entries),
        (0b111, true, StLocation::Capability, 64)
    );
    assert_eq!(
        machines::spec(machines::NS_IV_DS, true, StLocation::Capability, 64),
        Some(spec)
    );
}

#[test]
fn record_constructors_keep_their_arguments() {
    assert_eq!(Fault::new(0x1000).addr, 0x1000);
    let s = IrqSignal::new(2, 5, 9);
    assert_eq!((s.index, s.vector, s.fd), (2, 5, 9));
    let i = IrqInfo::new(0b1001, 4);
    assert_eq!((i.flags, i.count), (0b1001, 4));
}

#[test]
fn msi_state_enabled_has_unmasked_vectors() {
    let m = MsiState::enabled(3);
    assert!(m.enabled);
    assert_eq!(m.vector_ctrl, [0, 0, 0]);
    assert_eq!(m.messages, [[0; 3]; 3]);
    assert_ne!(
        m,
        MsiState::default(),
        "the default is MSI-X off, no vectors"
    );
}
