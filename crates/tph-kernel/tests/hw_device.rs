//! The emulated function: register semantics, effects, FLR, trace, violations.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tph_kernel::hw::{Abort, Access, Effect, Function, Violation};
use tph_kernel::machines::{self, spec, NS_IV_DS};
use tph_regs::tph::StLocation;
const LOC_CAP: StLocation = StLocation::Capability;
const LOC_MSIX: StLocation = StLocation::MsiX;
use tph_regs::tph::{ReqEnable, StMode};

const CTRL: u16 = machines::TPH_AT as u16 + 8;
const TABLE: u16 = machines::TPH_AT as u16 + 0xc;
const DEVCTL: u16 = machines::EXP_AT as u16 + 8;
const MSIX_CTRL: u16 = machines::MSIX_AT as u16 + 2;

fn cap_dev(ext: bool) -> Function {
    Function::new(&machines::endpoint(
        1,
        0,
        8,
        spec(NS_IV_DS, ext, LOC_CAP, 8),
    ))
}

fn msix_dev() -> Function {
    Function::new(&machines::endpoint(
        1,
        0,
        8,
        spec(NS_IV_DS, true, LOC_MSIX, 4),
    ))
}

#[test]
fn control_write_returns_decoded_effect() {
    let mut d = cap_dev(true);
    let e = d.config_write(CTRL, 4, 0x301);
    let Effect::TphControl { old, new } = e else {
        panic!("{e:?}");
    };
    assert_eq!((old.mode, old.enable), (StMode::NoSt, ReqEnable::Disabled));
    assert_eq!(
        (new.mode, new.enable),
        (StMode::InterruptVector, ReqEnable::ExtTph)
    );
    assert_eq!(e.to_string(), "TPH Control: NS off -> IV TPH+ExtTPH");
}

#[test]
fn control_reserved_bits_ignore_writes() {
    let mut d = cap_dev(true);
    d.config_write(CTRL, 4, 0xffff_ffff);
    assert_eq!(d.peek_tph_control(), Some(0x307));
}

#[test]
fn capability_register_is_read_only() {
    let mut d = cap_dev(true);
    let before = d.config_read(CTRL - 4, 4);
    assert_eq!(d.config_write(CTRL - 4, 4, 0), Effect::NoChange);
    assert_eq!(d.config_read(CTRL - 4, 4), before);
}

#[test]
fn st_write_while_requester_enabled_is_a_violation() {
    let mut d = cap_dev(true);
    d.config_write(CTRL, 4, 0x101);
    let e = d.config_write(TABLE + 2, 2, 0x42);
    assert_eq!(
        e,
        Effect::StEntry {
            index: 1,
            old: 0,
            new: 0x42
        }
    );
    assert_eq!(
        d.violations(),
        &[Violation::StWriteWhileEnabled { index: 1 }]
    );
}

#[test]
fn st_write_with_requester_disabled_is_clean() {
    let mut d = cap_dev(true);
    d.config_write(CTRL, 4, 0x001);
    d.config_write(TABLE, 2, 0x42);
    assert!(d.violations().is_empty());
}

#[test]
fn reserved_st_mode_is_a_violation() {
    let mut d = cap_dev(true);
    d.config_write(CTRL, 4, 0x5);
    assert_eq!(d.violations(), &[Violation::ReservedStMode(5)]);
}

#[test]
fn reserved_requester_enable_is_a_violation() {
    let mut d = cap_dev(true);
    d.config_write(CTRL + 1, 1, 0x2);
    assert_eq!(d.violations(), &[Violation::ReservedRequesterEnable(2)]);
}

#[test]
fn msix_st_beyond_st_table_size_is_a_violation() {
    let mut d = msix_dev();
    d.msix_write(6, 12, 0x0009_0001);
    assert_eq!(
        d.violations(),
        &[Violation::StIndexBeyondTable { index: 6, size: 4 }]
    );
}

#[test]
fn msix_st_change_while_enabled_is_a_violation_but_mask_change_is_not() {
    let mut d = msix_dev();
    d.config_write(CTRL, 4, 0x301);
    d.msix_write(0, 12, 0x0000_0000);
    assert!(d.violations().is_empty(), "mask bit only");
    d.msix_write(0, 12, 0x0005_0000);
    assert_eq!(
        d.violations(),
        &[Violation::StWriteWhileEnabled { index: 0 }]
    );
}

#[test]
fn st_upper_byte_is_read_only_without_extended_tph() {
    let mut d = cap_dev(false);
    d.config_write(TABLE, 2, 0xabcd);
    assert_eq!(d.peek_st_table()[0], 0x00cd);
    let mut d = cap_dev(true);
    d.config_write(TABLE, 2, 0xabcd);
    assert_eq!(d.peek_st_table()[0], 0xabcd);
}

#[test]
fn msix_vector_control_st_bits_reserved_without_msix_table() {
    let mut d = cap_dev(true);
    d.msix_write(0, 12, 0xffff_0000);
    assert_eq!(
        d.peek_vector_controls()[0],
        0,
        "only the mask bit is writable"
    );
}

#[test]
fn flr_restores_reset_values() {
    let mut d = msix_dev();
    d.config_write(CTRL, 4, 0x301);
    d.config_write(MSIX_CTRL, 2, 0x8000);
    d.msix_write(2, 12, 0x0007_0000);
    let devctl = d.config_read(DEVCTL, 2);
    assert_eq!(
        d.config_write(DEVCTL, 2, devctl | 0x8000),
        Effect::FunctionReset
    );
    assert_eq!(d.peek_tph_control(), Some(0));
    assert_eq!(d.config_read(MSIX_CTRL, 2) & 0xc000, 0);
    assert!(
        d.peek_vector_controls().iter().all(|v| *v == 1),
        "masked, ST 0"
    );
    assert_eq!(
        d.config_read(DEVCTL, 2),
        0x2810,
        "Device Control reset value"
    );
}

#[test]
fn rw1c_status_bits_clear_on_one() {
    let mut cfg = machines::endpoint(1, 0, 0, None);
    cfg[0x07] |= 0x20; // Status: Received Master Abort
    let mut d = Function::new(&cfg);
    d.config_write(0x06, 2, 0x2000);
    assert_eq!(d.config_read(0x06, 2) & 0x2000, 0);
}

#[test]
fn every_access_is_traced_and_displayed() {
    let mut d = cap_dev(true);
    d.config_read(CTRL, 4);
    d.config_write(CTRL, 4, 0x1);
    d.msix_read(0, 12);
    d.msix_write(0, 12, 0);
    let t = d.drain_trace();
    assert_eq!(t.len(), 4);
    let text: Vec<String> = t.iter().map(ToString::to_string).collect();
    assert_eq!(text[0], "cfg  rd 0x108/4 = 0x0");
    assert_eq!(
        text[1],
        "cfg  wr 0x108/4 <- 0x1: TPH Control: NS off -> IV off"
    );
    assert_eq!(text[2], "msix rd vec 0 +0xc = 0x1");
    assert_eq!(
        text[3],
        "msix wr vec 0 +0xc <- 0x0: vector 0: Masked- ST 0x0000"
    );
    assert!(d.drain_trace().is_empty(), "drained");
}

#[test]
fn misaligned_or_out_of_range_accesses_abort() {
    let mut d = cap_dev(true);
    assert_eq!(
        d.config_write(CTRL + 1, 4, 0),
        Effect::Aborted(Abort::Misaligned)
    );
    assert_eq!(
        d.config_write(4096, 4, 0),
        Effect::Aborted(Abort::OutOfRange)
    );
    assert_eq!(d.config_read(4094, 4), u32::MAX);
    assert_eq!(d.msix_write(8, 0, 0), Effect::Aborted(Abort::OutOfRange));
    assert_eq!(d.msix_read(0, 3), u32::MAX);
}

#[test]
fn injected_failure_aborts_exactly_one_write() {
    let mut d = cap_dev(true);
    d.fail_write_after(1);
    assert!(d.config_write(TABLE, 2, 1).is_ok());
    assert_eq!(
        d.config_write(TABLE, 2, 2),
        Effect::Aborted(Abort::Injected)
    );
    assert!(d.config_write(TABLE, 2, 3).is_ok());
    assert_eq!(d.peek_st_table()[0], 3);
    let aborted = d
        .drain_trace()
        .into_iter()
        .filter(|a| {
            matches!(
                a,
                Access::ConfigWrite {
                    effect: Effect::Aborted(_),
                    ..
                }
            )
        })
        .count();
    assert_eq!(aborted, 1);
}

#[test]
fn initiate_flr_is_ignored_without_flr_capability() {
    let mut cfg = machines::endpoint(1, 0, 8, spec(NS_IV_DS, true, LOC_CAP, 8));
    cfg[machines::EXP_AT + 7] &= !0x10; // DevCap bit 28: no FLR
    let mut d = Function::new(&cfg);
    d.config_write(CTRL, 4, 0x301);
    assert_ne!(d.config_write(DEVCTL, 2, 0xa810), Effect::FunctionReset);
    assert_eq!(d.peek_tph_control(), Some(0x301));
}

/// A 4096-byte type-0 space whose extended list is an AER header at 0x100 pointing to a TPH
/// header at `tph_at`.
fn space_with_tph_at(tph_at: u16) -> Vec<u8> {
    let mut cfg = vec![0u8; 4096];
    let aer = 0x0001u32 | 1 << 16 | u32::from(tph_at) << 20;
    cfg[0x100..0x104].copy_from_slice(&aer.to_le_bytes());
    let tph = 0x0017u32 | 1 << 16;
    let at = usize::from(tph_at);
    cfg[at..at + 4].copy_from_slice(&tph.to_le_bytes());
    cfg
}

#[test]
fn tph_capability_running_past_config_space_is_not_the_functions() {
    // At 0xff0 the header, Capability and Control registers fit: the function has TPH.
    let fits = Function::new(&space_with_tph_at(0xff0));
    assert_eq!(fits.tph().map(|t| t.offset), Some(0xff0));
    // At 0xffc only the header fits: no TPH registers are declared (it was a capability word
    // of 0 read from nowhere).
    let cut = Function::new(&space_with_tph_at(0xffc));
    assert!(cut.tph().is_none(), "{:?}", cut.tph());
}
