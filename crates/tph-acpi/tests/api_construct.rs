//! The `#[non_exhaustive]` types a user builds, built the only way another crate can: through
//! their constructors. This file is a crate of its own, so a struct literal here would not
//! compile; each test checks that a constructor puts every value where its name says and that
//! the value encodes as the `_DSM` result layout says.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tph_acpi::aml::{Aml, Limits};
use tph_acpi::madt::CpuUid;
use tph_acpi::{FirmwareError, StHalf, StInfo};

#[test]
fn limits_new_is_the_default_and_with_methods_set_each_bound() {
    let l = Limits::new();
    assert_eq!(l, Limits::default());
    let l = l
        .with_max_steps(1)
        .with_max_depth(2)
        .with_max_loop_iterations(3)
        .with_max_alloc(4)
        .with_max_nesting(5)
        .with_max_total_alloc(6);
    assert_eq!(
        (
            l.max_steps,
            l.max_depth,
            l.max_loop_iterations,
            l.max_alloc,
            l.max_nesting,
            l.max_total_alloc
        ),
        (1, 2, 3, 4, 5, 6)
    );
}

/// A real host DSDT (the one `robustness.rs` mutates).
const HOST_DSDT: &[u8] = include_bytes!("data/host-dsdt.dat");

#[test]
fn limits_built_by_constructors_bound_the_load() {
    let whole = Aml::load_with(&[HOST_DSDT], Limits::new()).unwrap();
    assert!(
        whole.report().skipped.is_empty(),
        "the default bounds load it all"
    );
    // One step cannot run a whole DSDT: the load stops or skips terms, never runs them all.
    match Aml::load_with(&[HOST_DSDT], Limits::new().with_max_steps(1)) {
        Err(e) => assert!(matches!(e, FirmwareError::Limit(_)), "{e}"),
        Ok(aml) => assert!(!aml.report().skipped.is_empty()),
    }
}

#[test]
fn st_half_new_encodes_as_the_dsm_result() {
    // VM half: ST 0x12 valid (bit 0), XST 0x3456 valid (bit 1); PM half: ST 0x9a, PH ignore
    // (bit 2), no XST. Halves: VM bits 31:0, PM bits 63:32.
    let vm = StHalf::new(Some(0x12), Some(0x3456));
    let pm = StHalf::new(Some(0x9a), None).with_ph_ignore(true);
    assert_eq!(StInfo::from_halves(vm, pm), StInfo(0x0000_9a05_3456_1203));
    assert!(!vm.ph_ignore);
}

#[test]
fn cpu_uid_new_keeps_cpu_and_uid_apart() {
    let c = CpuUid::new(3, 17);
    assert_eq!((c.cpu, c.uid), (3, 17));
}
