//! The `#[non_exhaustive]` types a VMM builds, built the only way another crate can: through
//! their constructors. This file is a crate of its own, so a struct literal here would not
//! compile; each test checks that a constructor puts every value where its name says and
//! leaves the rest at the documented default.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tph_regs::tph::{CompleterSupport, TphCapability, Upstream};
use tph_vmm::ssdt::SsdtSpec;
use tph_vmm::state::VmState;
use tph_vmm::{Foreign, VirtualCap, VmConfig};

#[test]
fn vm_config_new_then_with_methods_set_each_field() {
    let cfg = VmConfig::new(3);
    assert_eq!(cfg.pins, [None, None, None]);
    assert_eq!(cfg.uids, [0, 1, 2], "UID = vCPU index by default");
    assert_eq!(cfg.host_upstream, Upstream::RootPort(CompleterSupport::Tph));
    assert!(!cfg.unsafe_ds);
    let cfg = cfg
        .with_pins(&[(2, 7)])
        .unwrap()
        .with_uids(vec![4, 5, 6])
        .with_host_upstream(Upstream::RcIntegrated)
        .with_unsafe_ds(true);
    assert_eq!(cfg.pins, [None, None, Some(7)]);
    assert_eq!(cfg.uids, [4, 5, 6]);
    assert_eq!(cfg.host_upstream, Upstream::RcIntegrated);
    assert!(cfg.unsafe_ds);
}

#[test]
fn virtual_cap_new_keeps_its_arguments() {
    // No-ST, IV, table of 4 entries in the capability (bits 10:9 = 1, size - 1 = 3 at 26:16).
    let cap = TphCapability::from_bits(0x0003_0203);
    let v = VirtualCap::new(cap, CompleterSupport::TphAndExt, 4);
    assert_eq!(
        (v.cap, v.completer, v.entries),
        (cap, CompleterSupport::TphAndExt, 4)
    );
    // The completer reaches the guest's root port DevCap2 bits 13:12 (3: TPH and extended).
    assert_eq!(v.root_port_devcap2(0) >> 12, 3);
}

#[test]
fn ssdt_spec_new_and_with_bridge() {
    let spec = SsdtSpec::new("\\_SB.PC00", vec![0, 2], true);
    assert_eq!(spec.bridge, "\\_SB.PC00");
    assert_eq!(spec.uids, [0, 2]);
    assert!(spec.extended);
    let moved = spec.clone().with_bridge("\\_SB.PC01");
    assert_eq!(
        (moved.bridge.as_str(), moved.uids),
        ("\\_SB.PC01", spec.uids)
    );
    assert_eq!(
        SsdtSpec::identity(2, false),
        SsdtSpec::new("\\_SB.PCI0", vec![0, 1], false)
    );
}

#[test]
fn vm_state_new_round_trips_through_bytes() {
    let s = VmState::new(2, 0x0003_0203, 0x101, vec![1, 2, 0, 3]);
    assert_eq!(
        (s.vcpus, s.capability, s.control, s.table.as_slice()),
        (2, 0x0003_0203, 0x101, [1, 2, 0, 3].as_slice())
    );
    assert_eq!(VmState::from_bytes(&s.to_bytes()).unwrap(), s);
}

#[test]
fn foreign_new_keeps_index_and_tag() {
    let f = Foreign::new(2, 0x30);
    assert_eq!((f.index, f.tag), (2, 0x30));
}
