//! Fuzz table loading and evaluation: the input is an AML body wrapped in a valid DSDT header
//! (so the fuzzer explores AML, not checksums), loaded, probed for TPH host bridges, and every
//! method evaluated; the raw input is also parsed as a table and as a MADT. Must never panic
//! or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tph_acpi::aml::table::build;
use tph_acpi::aml::{Aml, Limits, Value};
use tph_acpi::{dsm, madt};

fuzz_target!(|data: &[u8]| {
    let _ = tph_acpi::aml::table::Sdt::parse(data);
    let _ = madt::parse(data);
    let revision = data.first().copied().unwrap_or(2) & 3;
    let table = build(b"DSDT", revision, data.get(1..).unwrap_or_default());
    let limits = Limits::new().with_max_steps(50_000).with_max_loop_iterations(1_000);
    let Ok(mut aml) = Aml::load_with(&[&table], limits) else { return };
    let probe = dsm::probe(&mut aml);
    if let Some(b) = probe.tph_bridge {
        let _ = dsm::query(&mut aml, &b, 1);
    }
    for m in aml.methods() {
        let args = [Value::Integer(1), Value::Buffer(vec![0; 16]), Value::Integer(0xf), Value::Package(vec![Value::Integer(0)])];
        let _ = aml.evaluate_node(m, &args, None);
    }
});
