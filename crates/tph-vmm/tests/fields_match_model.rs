//! This crate declares the guest-writable registers again (it may not depend on the model);
//! both declarations must give the same write masks as the emulated hardware's field tables.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tph_kernel::hw::fields as model;
use tph_vmm::fields::{self as ours, Attr};

fn model_mask(fields: &[model::Field], offset: u16, attr: model::Attr) -> u32 {
    fields
        .iter()
        .filter(|f| f.offset == offset && f.attr == attr)
        .fold(0, |m, f| m | f.mask() as u32)
}

const ATTRS: [(Attr, model::Attr); 4] = [
    (Attr::Ro, model::Attr::Ro),
    (Attr::HwInit, model::Attr::HwInit),
    (Attr::Rw, model::Attr::Rw),
    (Attr::RsvdP, model::Attr::RsvdP),
];

#[test]
fn tph_register_masks_equal_the_models() {
    for off in [0x0, 0x4, 0x8] {
        for (a, m) in ATTRS {
            assert_eq!(
                ours::mask(ours::TPH, off, a),
                model_mask(model::TPH, off, m),
                "{off:#x} {a:?}"
            );
        }
    }
}

#[test]
fn st_entry_masks_equal_the_models() {
    for ext in [false, true] {
        for index in [0u16, 1, 62, 63] {
            let o = ours::table_entry(index, ext);
            let m = model::tph_table_entry(index, ext);
            let off = 0xc + 4 * (index / 2);
            for (a, ma) in ATTRS {
                assert_eq!(
                    ours::mask(&o, off, a),
                    model_mask(&m, off, ma),
                    "entry {index} ext {ext}"
                );
            }
        }
    }
}

#[test]
fn vector_control_masks_equal_the_models() {
    for (a, m) in ATTRS {
        assert_eq!(
            ours::mask(ours::VECTOR_CONTROL_WITH_ST, 0xc, a),
            model_mask(model::MSIX_ENTRY_WITH_ST, 0xc, m)
        );
        assert_eq!(
            ours::mask(ours::VECTOR_CONTROL_PLAIN, 0xc, a),
            model_mask(model::MSIX_ENTRY_PLAIN, 0xc, m)
        );
    }
}
