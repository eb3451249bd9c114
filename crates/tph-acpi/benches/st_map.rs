//! The tag map for 256 processor UIDs from real AML (`benches/st_map.asl`, compiled with the
//! real `iasl`): through the Rust query (UUID and Arg3 built in Rust, one `_DSM` evaluation per
//! UID) and through the in-AML loop `MAP_` that `acpiexec` runs in `st_map_vs_acpiexec.sh`.
//! `NOP_` is that loop without the `_DSM` calls, the same overhead acpiexec's figure subtracts.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;

use criterion::{criterion_group, criterion_main, Criterion};
use tph_acpi::aml::{Aml, Value};
use tph_acpi::dsm;

/// UIDs in one map.
const UIDS: u32 = 256;

fn compile() -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("tph-acpi-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/st_map.asl");
    let out = dir.join("st_map");
    let r = Command::new("iasl")
        .arg("-p")
        .arg(&out)
        .arg(&src)
        .output()
        .expect("`iasl` (acpica-tools) is needed");
    assert!(
        r.status.success(),
        "iasl failed: {}",
        String::from_utf8_lossy(&r.stdout)
    );
    let aml = std::fs::read(out.with_extension("aml")).expect("read AML");
    let _ = std::fs::remove_dir_all(&dir);
    aml
}

fn bench(c: &mut Criterion) {
    let table = compile();
    let mut aml = Aml::load(&[&table]).expect("load");
    let bridge = dsm::probe(&mut aml)
        .tph_bridge
        .expect("bench firmware implements the TPH _DSM");
    c.bench_function("st_map_256_rust_query", |b| {
        b.iter(|| {
            (0..UIDS)
                .map(|u| dsm::query(&mut aml, &bridge, u).map(|v| v.0).unwrap_or(0))
                .fold(0u64, u64::wrapping_add)
        })
    });
    let mut aml2 = Aml::load(&[&table]).expect("load");
    c.bench_function("st_map_256_aml_loop_MAP_", |b| {
        b.iter(|| aml2.evaluate("\\MAP_", &[]).unwrap_or(Value::Uninitialized))
    });
    c.bench_function("st_map_256_aml_loop_NOP_", |b| {
        b.iter(|| aml2.evaluate("\\NOP_", &[]).unwrap_or(Value::Uninitialized))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
