//! The DSDT of the machine this was developed on (a Firecracker VM), copied from
//! `/sys/firmware/acpi/tables/DSDT`: it must load completely and answer like ACPICA.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tph_acpi::aml::{Aml, Value};
use tph_acpi::dsm;

const HOST_DSDT: &[u8] = include_bytes!("data/host-dsdt.dat");

#[test]
fn host_dsdt_loads_without_error_or_skips() {
    let aml = Aml::load(&[HOST_DSDT]).unwrap();
    assert_eq!(aml.report().tables, vec!["DSDT".to_string()]);
    assert_eq!(aml.report().skipped, vec![], "nothing skipped");
    assert!(
        aml.report().init_failures.is_empty(),
        "{:?}",
        aml.report().init_failures
    );
    assert!(aml.find("\\_SB.PC00.S031._EJ0").is_some());
}

#[test]
fn host_dsdt_has_one_bridge_without_tph_function() {
    let mut aml = Aml::load(&[HOST_DSDT]).unwrap();
    let p = dsm::probe(&mut aml);
    let paths: Vec<&str> = p.bridges.iter().map(|b| b.path.as_str()).collect();
    assert_eq!(paths, vec!["\\_SB_.PC00"]);
    assert!(p.bridges[0].has_dsm);
    // Its _DSM function 0 returns Buffer {0x21}: functions 0 and 5 only, bit 15 clear.
    assert!(p.tph_bridge.is_none());
}

#[test]
fn host_dsdt_methods_evaluate() {
    let mut aml = Aml::load(&[HOST_DSDT]).unwrap();
    assert_eq!(
        aml.evaluate("\\_SB.VCLK._STA", &[]).unwrap(),
        Value::Integer(0x0f)
    );
    assert_eq!(
        aml.evaluate("\\_SB.PC00.S001._SUN", &[]).unwrap(),
        Value::Integer(1)
    );
    // _EJ0 calls the external \_SB.PHPR.PCEJ, which no table defines.
    let err = aml
        .evaluate("\\_SB.PC00.S001._EJ0", &[Value::Integer(1)])
        .unwrap_err();
    assert!(err.to_string().contains("PCEJ"), "{err}");
}
