#![cfg(feature = "iasl")]
//! `AmlSource`: the emulated host's firmware backed by real AML, used through the
//! `SteeringTagSource` seam as the kernel model holds it (`Arc<dyn SteeringTagSource>`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use tph_acpi::{AmlSource, FirmwareError, MemType, SteeringTagSource};

const HELPERS: &str = include_str!("asl/helper_methods.asl");

/// The tag helper_methods.asl computes: VM st (uid % 24) + 0x40, VM xst uid * 0x101,
/// PM st (VM st) ^ 0xA5, PM xst 0xF000 | uid, all valid.
fn expected(uid: u32) -> (u8, u16, u8, u16) {
    let vm = ((uid % 24) + 0x40) as u8;
    (vm, (uid * 0x101) as u16, vm ^ 0xa5, 0xf000 | uid as u16)
}

#[test]
fn aml_source_from_asl_answers_through_the_trait_object() {
    let src: Arc<dyn SteeringTagSource> =
        Arc::new(AmlSource::from_asl(HELPERS).expect("iasl (acpica-tools) compiles the corpus"));
    for uid in [0u32, 1, 23, 24, 200] {
        let v = src.st_info(uid).unwrap();
        let got = (
            v.st(MemType::Volatile),
            v.xst(MemType::Volatile),
            v.st(MemType::Persistent),
            v.xst(MemType::Persistent),
        );
        assert_eq!(got, expected(uid), "uid {uid}");
        assert!(v.st_valid(MemType::Volatile) && v.xst_valid(MemType::Persistent));
    }
}

#[test]
fn aml_source_is_shared_across_threads() {
    let src: Arc<dyn SteeringTagSource> = Arc::new(AmlSource::from_asl(HELPERS).unwrap());
    let handles: Vec<_> = (0..4u32)
        .map(|t| {
            let s = Arc::clone(&src);
            std::thread::spawn(move || {
                (0..32)
                    .map(|u| s.st_info(t * 32 + u).map(|v| v.0))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    for h in handles {
        assert!(h.join().unwrap().iter().all(Result::is_ok));
    }
}

#[test]
fn aml_source_on_host_without_tph_dsm_lists_bridges() {
    let err = AmlSource::from_tables(&[include_bytes!("data/host-dsdt.dat")]).unwrap_err();
    assert_eq!(
        err,
        FirmwareError::NoTphDsm {
            bridges: vec!["\\_SB_.PC00".into()]
        }
    );
}

#[test]
fn aml_source_bad_asl_reports_iasl_error() {
    let err =
        AmlSource::from_asl("DefinitionBlock (\"\", \"DSDT\", 2, \"X\", \"Y\", 1) { Method (")
            .unwrap_err();
    assert!(matches!(err, FirmwareError::Table { .. }), "{err}");
}
