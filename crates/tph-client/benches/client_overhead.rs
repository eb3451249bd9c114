//! Per-call overhead of the client (`TphDevice` over `EmulatedBackend`) against the bare kernel
//! model entry point (`DeviceFd::ioctl_bytes` with a prebuilt argument buffer), same device, same
//! op, same run. The ratio client/bare is the cost of encoding, decoding and error mapping.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tph_client::abi::{self, TphEntry};
use tph_client::{CpuQuery, Mode, Revision, Steer, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::{Host, HostOptions};

/// Default-machine devices: MSI-X table NIC (IV), DS-only accelerator.
const NIC_MSIX: &str = "01:00.0";
const ACCEL_DS: &str = "03:00.0";

fn device(bdf: &str, unsafe_ds: bool) -> TphDevice<EmulatedBackend> {
    let host = Host::with_default_machine(HostOptions::new().with_unsafe_ds(unsafe_ds));
    let backend = EmulatedBackend::take_over(&host, bdf.parse().unwrap()).unwrap();
    TphDevice::with_revision(backend, Revision::V7).unwrap()
}

fn iv_device(vectors: u32) -> TphDevice<EmulatedBackend> {
    let mut dev = device(NIC_MSIX, false);
    let _irqs = tph_testkit::enable_msix(&mut dev, vectors).unwrap();
    dev.enable(Mode::Iv).unwrap();
    dev
}

fn bare(dev: &TphDevice<EmulatedBackend>, buf: &[u8]) {
    let mut b = buf.to_vec();
    let fd = dev.backend().fd().unwrap();
    black_box(fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut b).unwrap());
}

fn get_cap(c: &mut Criterion) {
    let mut dev = device(NIC_MSIX, false);
    let buf = abi::encode_get_cap();
    let mut g = c.benchmark_group("client_overhead_get_cap");
    g.bench_function("bare", |b| b.iter(|| bare(&dev, &buf)));
    g.bench_function("client", |b| {
        b.iter(|| black_box(dev.capabilities().unwrap()))
    });
    g.finish();
}

fn set_st(c: &mut Criterion, n: u16) {
    let mut dev = iv_device(u32::from(n));
    let steer: Vec<Steer> = (0..n).map(|i| Steer::new(i, u32::from(i % 8))).collect();
    let raw: Vec<TphEntry> = steer
        .iter()
        .map(|s| TphEntry {
            cpu: s.cpu,
            index: s.index,
            ..TphEntry::default()
        })
        .collect();
    let buf = abi::encode_st(abi::OP_SET_ST, &raw).unwrap();
    let mut g = c.benchmark_group(format!("client_overhead_set_st_{n}"));
    g.bench_function("bare", |b| b.iter(|| bare(&dev, &buf)));
    g.bench_function("client", |b| {
        b.iter(|| dev.set_entries(black_box(&steer)).unwrap())
    });
    g.finish();
}

fn get_st(c: &mut Criterion, n: u32) {
    let mut dev = device(ACCEL_DS, true);
    dev.enable(Mode::Ds).unwrap();
    let q: Vec<CpuQuery> = (0..n).map(|i| CpuQuery::new(i % 8)).collect();
    let raw: Vec<TphEntry> = q
        .iter()
        .map(|q| TphEntry {
            cpu: q.cpu,
            ..TphEntry::default()
        })
        .collect();
    let buf = abi::encode_st(abi::OP_GET_ST, &raw).unwrap();
    let mut g = c.benchmark_group(format!("client_overhead_get_st_{n}"));
    g.bench_function("bare", |b| b.iter(|| bare(&dev, &buf)));
    g.bench_function("client", |b| {
        b.iter(|| black_box(dev.steering_tags(black_box(&q)).unwrap()))
    });
    g.finish();
}

fn all(c: &mut Criterion) {
    get_cap(c);
    set_st(c, 1);
    set_st(c, 64);
    get_st(c, 1);
    get_st(c, 64);
}

criterion_group!(benches, all);
criterion_main!(benches);
