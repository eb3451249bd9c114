//! Conformance: one test per rule of `docs/spec/pci-tph-core.md` section 2, on the core
//! directly (emulated function + a recording platform fake).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::cell::Cell;

use tph_acpi::{FirmwareError, HostBridgeId, MemType, StInfo, SteeringTagSource, TableSource};
use tph_kernel::core::{MsiState, Platform, TphState};
use tph_kernel::hw::{Access, Function, Violation};
use tph_kernel::machines::{self, spec, NS_IV_DS};
use tph_kernel::Errno;
use tph_regs::tph::{ReqEnable, StLocation, StMode};

const NS: StMode = StMode::NoSt;
const IV: StMode = StMode::InterruptVector;
const DS: StMode = StMode::DeviceSpecific;
const F_CAP: StLocation = StLocation::Capability;
const F_MSIX: StLocation = StLocation::MsiX;
/// Offsets in the synthesised configuration spaces.
const CTRL: usize = machines::TPH_AT + 8;
const TABLE: usize = machines::TPH_AT + 0xc;

/// A platform fake: settable notph / root port completer / firmware; counts DevCap2 reads.
#[derive(Debug)]
struct Fake {
    notph: bool,
    completer: Option<u32>,
    firmware: TableSource,
    devcap2_reads: Cell<u32>,
}

impl Fake {
    fn below(completer: u32) -> Self {
        Self {
            notph: false,
            completer: Some(completer),
            firmware: TableSource::default_for_all(),
            devcap2_reads: Cell::new(0),
        }
    }
}

impl Platform for Fake {
    fn notph(&self) -> bool {
        self.notph
    }
    fn root_port_devcap2(&self) -> Option<u32> {
        self.devcap2_reads.set(self.devcap2_reads.get() + 1);
        self.completer.map(|c| c << 12)
    }
    fn host_bridge(&self) -> Option<HostBridgeId> {
        self.completer.map(|_| HostBridgeId { segment: 0, bus: 0 })
    }
    fn cpu_uid(&self, cpu: u32) -> Option<u32> {
        (cpu < 8).then_some(cpu)
    }
    fn firmware(&self) -> &dyn SteeringTagSource {
        &self.firmware
    }
}

fn dev(modes: u32, ext: bool, location: StLocation, entries: u16) -> Function {
    let ty = machines::TYPE_ENDPOINT;
    Function::new(&machines::endpoint(
        1,
        ty,
        16,
        spec(modes, ext, location, entries),
    ))
}

fn cap_dev() -> (Function, TphState) {
    let d = dev(NS_IV_DS, true, F_CAP, 8);
    let s = TphState::init(&d);
    (d, s)
}

fn ctrl(d: &Function) -> u32 {
    d.peek_tph_control().unwrap()
}

fn msi(vectors: usize) -> MsiState {
    MsiState::enabled(vectors)
}

#[test]
fn init_does_not_adopt_enabled_control() {
    let mut cfg = machines::endpoint(1, 0, 0, spec(NS_IV_DS, true, F_CAP, 8));
    cfg[CTRL..CTRL + 4].copy_from_slice(&0x302u32.to_le_bytes());
    let d = Function::new(&cfg);
    let s = TphState::init(&d);
    assert!(!s.enabled());
    assert_eq!(ctrl(&d), 0x302, "init changes nothing in hardware");
}

#[test]
fn enable_1_notph_is_einval() {
    let (mut d, mut s) = cap_dev();
    let p = Fake {
        notph: true,
        ..Fake::below(3)
    };
    assert_eq!(s.enable(&mut d, &p, IV), Err(Errno::EINVAL));
}

#[test]
fn enable_2_no_capability_is_einval() {
    let mut d = Function::new(&machines::endpoint(1, 0, 4, None));
    let mut s = TphState::init(&d);
    assert_eq!(s.enable(&mut d, &Fake::below(3), IV), Err(Errno::EINVAL));
}

#[test]
fn enable_3_already_enabled_is_ebusy() {
    let (mut d, mut s) = cap_dev();
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    assert_eq!(s.enable(&mut d, &Fake::below(3), DS), Err(Errno::EBUSY));
}

#[test]
fn enable_4_mode_is_masked_to_three_bits() {
    let (mut d, mut s) = cap_dev();
    assert_eq!(
        s.enable(&mut d, &Fake::below(3), StMode::from_field(8 | 1)),
        Ok(())
    );
    assert_eq!(ctrl(&d) & 7, u32::from(IV.field()));
}

#[test]
fn enable_4_mode_bit_not_in_capability_is_einval() {
    let mut d = dev(0b101, true, F_CAP, 8);
    let mut s = TphState::init(&d);
    assert_eq!(s.enable(&mut d, &Fake::below(3), IV), Err(Errno::EINVAL));
    assert_eq!(
        s.enable(&mut d, &Fake::below(3), StMode::Reserved(5)),
        Err(Errno::EINVAL),
        "reserved mode"
    );
}

#[test]
fn enable_4_no_st_is_not_special_cased() {
    let mut d = dev(0b110, true, F_CAP, 8);
    let mut s = TphState::init(&d);
    assert_eq!(s.enable(&mut d, &Fake::below(3), NS), Err(Errno::EINVAL));
    let (mut d, mut s) = cap_dev();
    assert_eq!(s.enable(&mut d, &Fake::below(3), NS), Ok(()));
}

#[test]
fn enable_5_requester_type_is_min_of_own_and_completer() {
    for (ext, completer, want) in [(true, 3, 3), (true, 1, 1), (false, 3, 1), (false, 1, 1)] {
        let mut d = dev(NS_IV_DS, ext, F_CAP, 8);
        let mut s = TphState::init(&d);
        s.enable(&mut d, &Fake::below(completer), IV).unwrap();
        assert_eq!(
            s.req_type().field(),
            want,
            "ext {ext} completer {completer}"
        );
        assert_eq!(ctrl(&d), 1 | u32::from(want) << 8);
    }
}

#[test]
fn enable_5_rciep_skips_root_port() {
    let cfg = machines::endpoint(1, machines::TYPE_RCIEP, 0, spec(NS_IV_DS, true, F_CAP, 8));
    let mut d = Function::new(&cfg);
    let mut s = TphState::init(&d);
    let p = Fake {
        completer: None,
        ..Fake::below(0)
    };
    assert_eq!(s.enable(&mut d, &p, IV), Ok(()));
    assert_eq!(
        (s.req_type(), p.devcap2_reads.get()),
        (ReqEnable::ExtTph, 0)
    );
}

#[test]
fn enable_6_no_root_port_or_completer_is_einval() {
    let (mut d, mut s) = cap_dev();
    assert_eq!(s.enable(&mut d, &Fake::below(0), IV), Err(Errno::EINVAL));
    let p = Fake {
        completer: None,
        ..Fake::below(0)
    };
    assert_eq!(s.enable(&mut d, &p, IV), Err(Errno::EINVAL));
    assert_eq!(ctrl(&d), 0);
}

#[test]
fn enable_5_reserved_completer_value_is_written_as_is() {
    // Completer field 2 is reserved; min(3, 2) = 2 goes to the Requester Enable field.
    let (mut d, mut s) = cap_dev();
    s.enable(&mut d, &Fake::below(2), IV).unwrap();
    assert_eq!(d.violations(), &[Violation::ReservedRequesterEnable(2)]);
}

#[test]
fn disable_is_noop_unless_core_enabled() {
    let mut cfg = machines::endpoint(1, 0, 0, spec(NS_IV_DS, true, F_CAP, 8));
    cfg[CTRL..CTRL + 4].copy_from_slice(&0x102u32.to_le_bytes());
    let mut d = Function::new(&cfg);
    let mut s = TphState::init(&d);
    s.disable(&mut d);
    assert_eq!(
        ctrl(&d),
        0x102,
        "firmware-left Control survives the core's disable"
    );
    assert!(d.drain_trace().is_empty());
}

#[test]
fn disable_writes_control_zero_and_clears_state() {
    let (mut d, mut s) = cap_dev();
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    s.disable(&mut d);
    assert_eq!(
        (ctrl(&d), s.enabled(), s.req_type()),
        (0, false, ReqEnable::Disabled)
    );
}

#[test]
fn set_st_1_not_enabled_is_einval() {
    let (mut d, s) = cap_dev();
    let mut s = s;
    assert_eq!(
        s.set_st_entry(&mut d, &mut msi(0), 0, 1),
        Err(Errno::EINVAL)
    );
}

#[test]
fn set_st_2_no_st_mode_touches_nothing() {
    let (mut d, mut s) = cap_dev();
    s.enable(&mut d, &Fake::below(3), NS).unwrap();
    d.drain_trace();
    assert_eq!(s.set_st_entry(&mut d, &mut msi(0), 0, 0x55), Ok(()));
    assert!(d.drain_trace().is_empty());
}

#[test]
fn set_st_3_requester_enable_cleared_during_write_then_6_restored() {
    let (mut d, mut s) = cap_dev();
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    s.set_st_entry(&mut d, &mut msi(0), 3, 0xbeef).unwrap();
    assert!(d.violations().is_empty());
    assert_eq!(ctrl(&d), 0x301, "Requester Enable back on, mode kept");
    assert_eq!(
        d.peek_st_table()[3],
        0xbeef,
        "16-bit entry with extended TPH"
    );
}

#[test]
fn set_st_4_capability_index_beyond_size_is_enxio_and_5_disables() {
    let (mut d, mut s) = cap_dev();
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    assert_eq!(s.set_st_entry(&mut d, &mut msi(0), 8, 1), Err(Errno::ENXIO));
    assert!(!s.enabled());
    assert_eq!(ctrl(&d), 0);
}

#[test]
fn set_st_4_msix_needs_enabled_allocated_vector() {
    let mut d = dev(NS_IV_DS, true, F_MSIX, 16);
    let mut s = TphState::init(&d);
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    let mut off = MsiState::default();
    assert_eq!(s.set_st_entry(&mut d, &mut off, 0, 1), Err(Errno::ENXIO));
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    assert_eq!(s.set_st_entry(&mut d, &mut msi(2), 2, 1), Err(Errno::ENXIO));
}

#[test]
fn set_st_4_msix_writes_the_tag_into_the_cached_vector_control() {
    let mut d = dev(NS_IV_DS, true, F_MSIX, 16);
    let mut s = TphState::init(&d);
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    let mut m = msi(4);
    m.vector_ctrl[1] = 1; // the kernel's cache: masked
    d.msix_write(1, 12, 0xabcd_0000); // behind the kernel's back: unmasked, another tag
    s.set_st_entry(&mut d, &mut m, 1, 0x1234).unwrap();
    let vc = d.peek_vector_controls()[1];
    assert_eq!(
        vc,
        0x1234 << 16 | 1,
        "the cached mask bit, the tag in 31:16: the device's own value is not read"
    );
    assert_eq!(m.vector_ctrl[1], vc, "cache updated");
}

#[test]
fn set_st_4_msix_has_no_st_table_size_check() {
    // ST Table Size 4 but 16 MSI-X vectors: the core writes vector 6 anyway.
    let mut d = dev(NS_IV_DS, true, F_MSIX, 4);
    let mut s = TphState::init(&d);
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    assert_eq!(s.set_st_entry(&mut d, &mut msi(16), 6, 9), Ok(()));
    assert_eq!(
        d.violations(),
        &[Violation::StIndexBeyondTable { index: 6, size: 4 }]
    );
}

#[test]
fn set_st_4_no_table_is_einval_and_disables() {
    let mut d = dev(NS_IV_DS, true, StLocation::None, 1);
    let mut s = TphState::init(&d);
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    assert_eq!(
        s.set_st_entry(&mut d, &mut msi(4), 0, 1),
        Err(Errno::EINVAL)
    );
    assert!(!s.enabled());
}

#[test]
fn set_st_5_failed_write_disables_tph() {
    let (mut d, mut s) = cap_dev();
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    d.fail_write_after(1); // Requester Enable off lands, the table write fails.
    assert_eq!(s.set_st_entry(&mut d, &mut msi(0), 0, 1), Err(Errno::EIO));
    assert_eq!((s.enabled(), ctrl(&d)), (false, 0));
}

#[test]
fn get_cpu_st_no_root_port_is_enodev() {
    let (d, s) = cap_dev();
    let _ = d;
    let p = Fake {
        completer: None,
        ..Fake::below(0)
    };
    assert_eq!(s.get_cpu_st(&p, MemType::Volatile, 0), Err(Errno::ENODEV));
}

#[test]
fn get_cpu_st_checks_the_cpu_before_the_root_port() {
    // The real 7.3 core (guest_differential, case rciep): an integrated endpoint asked for a
    // CPU the host lacks answers EINVAL (acpi_get_cpu_uid), not ENODEV (no root port).
    let (_, s) = cap_dev();
    let p = Fake {
        completer: None,
        ..Fake::below(0)
    };
    assert_eq!(s.get_cpu_st(&p, MemType::Persistent, 8), Err(Errno::EINVAL));
    assert_eq!(s.get_cpu_st(&p, MemType::Persistent, 7), Err(Errno::ENODEV));
}

#[derive(Debug)]
struct Failing;

impl SteeringTagSource for Failing {
    fn st_info(&self, _uid: u32) -> Result<StInfo, FirmwareError> {
        Err(FirmwareError::Method("no _DSM".into()))
    }
}

struct FailingPlatform(Fake, Failing);

impl Platform for FailingPlatform {
    fn notph(&self) -> bool {
        false
    }
    fn root_port_devcap2(&self) -> Option<u32> {
        self.0.root_port_devcap2()
    }
    fn host_bridge(&self) -> Option<HostBridgeId> {
        Some(HostBridgeId { segment: 0, bus: 0 })
    }
    fn cpu_uid(&self, cpu: u32) -> Option<u32> {
        self.0.cpu_uid(cpu)
    }
    fn firmware(&self) -> &dyn SteeringTagSource {
        &self.1
    }
}

#[test]
fn get_cpu_st_firmware_failure_is_einval() {
    let (mut d, mut s) = cap_dev();
    let p = FailingPlatform(Fake::below(3), Failing);
    s.enable(&mut d, &p, IV).unwrap();
    assert_eq!(s.get_cpu_st(&p, MemType::Volatile, 0), Err(Errno::EINVAL));
}

#[test]
fn get_cpu_st_width_follows_enabled_requester_type() {
    let (mut d, mut s) = cap_dev();
    let info = TableSource::default_st_info(3);
    assert_eq!(
        s.get_cpu_st(&Fake::below(3), MemType::Volatile, 3),
        Ok(0),
        "not enabled"
    );
    s.enable(&mut d, &Fake::below(1), IV).unwrap();
    let eight = s.get_cpu_st(&Fake::below(1), MemType::Persistent, 3);
    assert_eq!(eight, Ok(u16::from(info.st(MemType::Persistent))));
    s.disable(&mut d);
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    let sixteen = s.get_cpu_st(&Fake::below(3), MemType::Persistent, 3);
    assert_eq!(sixteen, Ok(info.xst(MemType::Persistent)));
}

#[test]
fn get_cpu_st_invalid_tag_is_success_with_zero() {
    let (mut d, mut s) = cap_dev();
    // Valid bits clear, tags present: VM st 0x12, xst 0x3456.
    let mut p = Fake::below(3);
    p.firmware = TableSource::from_map([(0, StInfo(0x3456_1200))].into_iter().collect());
    s.enable(&mut d, &p, IV).unwrap();
    assert_eq!(s.get_cpu_st(&p, MemType::Volatile, 0), Ok(0));
}

#[test]
fn get_st_table_loc_returns_v7_register_values() {
    let cases = [(F_CAP, 0x200), (F_MSIX, 0x400), (StLocation::None, 0x000)];
    for (field, want) in cases {
        let mut d = dev(NS_IV_DS, true, field, 4);
        let s = TphState::init(&d);
        assert_eq!(s.get_st_table_loc(&mut d).register_bits(), want);
    }
    let mut d = dev(NS_IV_DS, true, StLocation::Reserved(3), 4);
    assert_eq!(
        TphState::init(&d).get_st_table_loc(&mut d).register_bits(),
        0x600
    );
}

#[test]
fn get_st_table_loc_and_modes_without_capability_are_zero() {
    let mut d = Function::new(&machines::endpoint(1, 0, 4, None));
    let s = TphState::init(&d);
    assert_eq!(
        (s.get_st_table_loc(&mut d), s.get_st_modes(&mut d)),
        (StLocation::None, 0)
    );
    assert!(d.drain_trace().is_empty(), "no read at offset 4 of nothing");
}

#[test]
fn get_st_table_size_only_for_capability_table() {
    let mut d = dev(NS_IV_DS, true, F_CAP, 8);
    assert_eq!(TphState::init(&d).get_st_table_size(&mut d), 8);
    let mut d = dev(NS_IV_DS, true, F_MSIX, 8);
    assert_eq!(TphState::init(&d).get_st_table_size(&mut d), 0);
}

#[test]
fn get_st_modes_returns_capability_bits_2_0() {
    let mut d = dev(0b101, true, F_CAP, 8);
    assert_eq!(TphState::init(&d).get_st_modes(&mut d), 0b101);
}

#[test]
fn save_restore_acts_only_when_core_enabled() {
    let (mut d, mut s) = cap_dev();
    s.save(&mut d);
    d.drain_trace();
    s.restore_table(&mut d);
    s.restore_enable(&mut d);
    assert!(d.drain_trace().is_empty());
}

#[test]
fn save_restore_mainline_writes_control_first_then_entries() {
    let (mut d, mut s) = cap_dev();
    s.enable(&mut d, &Fake::below(3), IV).unwrap();
    s.set_st_entry(&mut d, &mut msi(0), 2, 0x77).unwrap();
    s.save(&mut d);
    d.config_write((machines::EXP_AT + 8) as u16, 2, 1 << 15); // FLR
    d.drain_trace();
    s.restore_mainline(&mut d);
    let offsets: Vec<u16> = d
        .drain_trace()
        .iter()
        .filter_map(|a| match a {
            Access::ConfigWrite { offset, .. } => Some(*offset),
            _ => None,
        })
        .collect();
    assert_eq!(offsets[0], CTRL as u16);
    assert_eq!(offsets[1], TABLE as u16);
    assert_eq!(d.peek_st_table()[2], 0x77);
    assert_eq!(ctrl(&d), 0x301);
}
