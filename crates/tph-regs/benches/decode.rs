//! Criterion benchmarks of the decoders: the dump reader on the largest shared dump, the
//! capability walkers, the TPH decode, the lspci renderer and the report builder.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use criterion::{black_box, criterion_group, criterion_main, Criterion};

use tph_regs::report::{report_machine, ConfigOnly};

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

fn bench_render(c: &mut Criterion) {
    let m = tph_regs::parse_lspci_dump(&dump("machine-23c7a39.lspci")).expect("parses");
    c.bench_function("lspci_write_machine/machine-23c7a39", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(4096);
            tph_regs::lspci::write_machine(black_box(&m), &mut out).map(|_| out.len())
        })
    });
    c.bench_function("report_machine/machine-23c7a39", |b| {
        b.iter(|| report_machine(black_box(&m), &ConfigOnly))
    });
}

criterion_group!(benches, bench_parse, bench_walkers, bench_render);
criterion_main!(benches);
