//! Criterion benchmarks of the outputs: the lspci renderer and the report builder on a shared
//! server dump, against the dump reader on the same text as the baseline in the same run.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use criterion::{black_box, criterion_group, criterion_main, Criterion};

use tph_report::report::{report_machine, ConfigOnly};

/// A dump shipped with `tph-regs` (read at run time: the benchmark is not part of the package).
fn dump(name: &str) -> String {
    let path = format!(
        "{}/../tph-regs/tests/data/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(path).expect("fixture")
}

fn bench_render(c: &mut Criterion) {
    let text = dump("machine-23c7a39.lspci");
    c.bench_function("baseline_parse_lspci_dump/machine-23c7a39", |b| {
        b.iter(|| tph_regs::parse_lspci_dump(black_box(&text)))
    });
    let m = tph_regs::parse_lspci_dump(&text).expect("parses");
    c.bench_function("lspci_write_machine/machine-23c7a39", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(4096);
            tph_report::lspci::write_machine(black_box(&m), &mut out).map(|_| out.len())
        })
    });
    c.bench_function("report_machine/machine-23c7a39", |b| {
        b.iter(|| report_machine(black_box(&m), &ConfigOnly))
    });
}

criterion_group!(benches, bench_render);
criterion_main!(benches);
