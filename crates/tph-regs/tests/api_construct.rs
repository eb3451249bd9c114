//! The `#[non_exhaustive]` types a user builds, built the only way another crate can: through
//! their constructors. This file is a crate of its own, so a struct literal here would not
//! compile; each test checks that a constructor puts every value where its name says and that
//! the value decodes or encodes as the register layout says.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tph_regs::caps::{walk_ext_caps, write_ext_caps, CapEntry};
use tph_regs::dump::{DumpLimits, DUMP_MAX_BYTES, DUMP_MAX_FUNCTIONS, DUMP_MAX_LINE};
use tph_regs::fields::{Attr, Field};
use tph_regs::machine::{Bdf, Function, Machine};
use tph_regs::tph::{ReqEnable, StMode, TphControl};

#[test]
fn function_and_machine_new_keep_their_parts() {
    let bdf: Bdf = "0000:01:00.0".parse().unwrap();
    let f = Function::new(bdf, vec![0xff; 64]);
    assert_eq!((f.bdf, f.config.len()), (bdf, 64));
    // All-ones IDs: the header decodes from the bytes given.
    assert_eq!(f.header().unwrap().vendor_id, 0xffff);
    let m = Machine::new(vec![f.clone()]);
    assert_eq!(m.function(bdf), Some(&f));
}

#[test]
fn dump_limits_new_is_the_default_and_with_methods_set_each_limit() {
    let l = DumpLimits::new();
    assert_eq!(l, DumpLimits::default());
    assert_eq!(
        (l.max_bytes, l.max_line, l.max_functions),
        (DUMP_MAX_BYTES, DUMP_MAX_LINE, DUMP_MAX_FUNCTIONS)
    );
    let l = l
        .with_max_bytes(1000)
        .with_max_line(80)
        .with_max_functions(3);
    assert_eq!((l.max_bytes, l.max_line, l.max_functions), (1000, 80, 3));
}

#[test]
fn cap_entry_new_round_trips_through_a_written_chain() {
    // TPH Requester (ID 0x17), version 1, at 0x100: the first extended capability.
    let caps = [CapEntry::new(0x100, 0x17, 1)];
    let mut cfg = vec![0u8; 4096];
    write_ext_caps(&mut cfg, &caps).unwrap();
    assert_eq!(walk_ext_caps(&cfg).caps, caps);
}

#[test]
fn field_new_has_reset_zero_until_with_reset() {
    let f = Field::new("ST Mode Select", 0x8, 0, 3, Attr::Rw);
    assert_eq!(
        (f.name, f.offset, f.lsb, f.bits, f.attr, f.reset),
        ("ST Mode Select", 0x8, 0, 3, Attr::Rw, 0)
    );
    assert_eq!(f.with_reset(5).reset, 5);
}

#[test]
fn tph_control_new_and_with_methods_encode_as_the_register() {
    // Mode bits 2:0 (IV = 1), requester enable bits 9:8 (extended = 3).
    let c = TphControl::new(StMode::InterruptVector, ReqEnable::ExtTph);
    assert_eq!(c.to_bits(), 0x301);
    assert_eq!(c.other_bits, 0);
    // A reserved bit (31) survives both setters.
    let c = TphControl::from_bits(0x8000_0101)
        .with_mode(StMode::DeviceSpecific)
        .with_enable(ReqEnable::Disabled);
    assert_eq!(c.to_bits(), 0x8000_0002);
}
