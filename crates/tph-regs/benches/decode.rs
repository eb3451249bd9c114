//! Criterion benchmarks of the decoders: the dump reader on the largest shared dump, the
//! capability walkers and the TPH decode (the lspci renderer and the report builder are
//! benchmarked in `tph-report`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use criterion::{black_box, criterion_group, criterion_main, Criterion};

fn dump(name: &str) -> String {
    let path = format!("{}/tests/data/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(path).expect("fixture")
}

fn bench_parse(c: &mut Criterion) {
    let big = dump("machine-caf6526.lspci");
    // Baseline in the same run: only splitting the text into lines and counting hex lines.
    c.bench_function("baseline_count_hex_lines/machine-caf6526", |b| {
        b.iter(|| black_box(&big).lines().filter(|l| l.contains(": ")).count())
    });
    c.bench_function("parse_lspci_dump/machine-caf6526", |b| {
        b.iter(|| tph_regs::parse_lspci_dump(black_box(&big)))
    });
}

fn bench_walkers(c: &mut Criterion) {
    let m = tph_regs::parse_lspci_dump(&dump("intel-dsa-pri-pasid.lspci")).expect("parses");
    let cfg = &m.functions[0].config;
    c.bench_function("walk_caps/dsa", |b| {
        b.iter(|| tph_regs::caps::walk_caps(black_box(cfg)))
    });
    c.bench_function("walk_ext_caps/dsa", |b| {
        b.iter(|| tph_regs::caps::walk_ext_caps(black_box(cfg)))
    });
    c.bench_function("tph_requester_find/dsa", |b| {
        b.iter(|| tph_regs::tph::TphRequester::find(black_box(cfg)))
    });
}

criterion_group!(benches, bench_parse, bench_walkers);
criterion_main!(benches);
