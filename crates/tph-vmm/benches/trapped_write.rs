//! What the VM layer costs on top of the host call it makes, on the emulated kernel.
//!
//! - `trapped_st_write_{v7,feature}`: one trapped guest write of an ST entry in the capability
//!   (virtual device, tag translation, one host SET_ST through the client) against the bare
//!   host SET_ST of the same entry (the client's `set_entries`, and the model's ioctl entry
//!   point with a prebuilt argument on v7). Each iteration alternates between two vCPUs so
//!   every write changes the entry and reaches the host.
//! - `trapped_core_sequence_v7`: the same entry written the way the mainline guest core does
//!   it (Requester Enable off, entry, Requester Enable on: three trapped writes, three host
//!   calls).
//! - `repin_2048`: re-pinning a vCPU that owns 2,048 entries of an MSI-X table (one batched
//!   SET_ST) against the bare client batch of the same 2,048 entries.
#![allow(clippy::unwrap_used)] // benches: a failed unwrap is a failed run

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tph_client::abi::{self, TphEntry};
use tph_client::{Mode, Revision, Steer, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::{Host, HostOptions, KernelAbi};
use tph_regs::tph::{CompleterSupport, Upstream};
use tph_vmm::{VirtualTph, VmConfig};

/// 02:00.0: table in the capability; 01:00.0: table in MSI-X (2,048 vectors).
const CAP_TABLE: &str = "02:00.0";
const MSIX_TABLE: &str = "01:00.0";
/// vCPU 0 on host CPU 3, vCPU 1 on host CPU 4.
const PINS: [(u32, u32); 2] = [(0, 3), (1, 4)];

fn client(bdf: &str, abi: KernelAbi) -> TphDevice<EmulatedBackend> {
    let host = Host::with_default_machine(HostOptions::new().with_abi(abi));
    let backend = EmulatedBackend::take_over(&host, bdf.parse().unwrap()).unwrap();
    let rev = match abi {
        KernelAbi::V7 => Revision::V7,
        KernelAbi::Feature => Revision::Feature,
        other => panic!("no client revision for {other:?}"),
    };
    TphDevice::with_revision(backend, rev).unwrap()
}

fn vm(bdf: &str, abi: KernelAbi, upstream: Upstream) -> VirtualTph<EmulatedBackend> {
    let mut cfg = VmConfig::new(2).with_pins(&PINS).unwrap();
    cfg.host_upstream = upstream;
    VirtualTph::new(client(bdf, abi), cfg).unwrap()
}

/// A hook's effect, its host calls checked (the hooks report refusals instead of failing).
fn ok(effect: tph_vmm::Effect) -> tph_vmm::Effect {
    assert!(effect.host_ok(), "{:?}", effect.host_failures);
    effect
}

fn trapped_st_write(c: &mut Criterion, abi: KernelAbi, name: &str) {
    let mut v = vm(CAP_TABLE, abi, Upstream::RootPort(CompleterSupport::Tph));
    let cap = v.cap_offset();
    ok(v.write_config(cap + 8, &0x101u32.to_le_bytes()));
    let mut bare = client(CAP_TABLE, abi);
    bare.enable(Mode::Iv).unwrap();
    let steer = |cpu| [Steer::new(0, cpu)];
    let mut g = c.benchmark_group(name);
    let mut flip = false;
    g.bench_function("bare_client_set_st", |b| {
        b.iter(|| {
            flip = !flip;
            bare.set_entries(black_box(&steer(if flip { 3 } else { 4 })))
                .unwrap();
        })
    });
    if abi == KernelAbi::V7 {
        let raw = |cpu| {
            abi::encode_st(
                abi::OP_SET_ST,
                &[TphEntry {
                    cpu,
                    index: 0,
                    ..TphEntry::default()
                }],
            )
            .unwrap()
        };
        let bufs = [raw(3), raw(4)];
        g.bench_function("bare_ioctl_set_st", |b| {
            b.iter(|| {
                flip = !flip;
                let mut arg = bufs[usize::from(flip)].clone();
                let fd = bare.backend().fd().unwrap();
                black_box(fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg).unwrap());
            })
        });
    }
    g.bench_function("trapped_guest_write", |b| {
        b.iter(|| {
            flip = !flip;
            let tag: u16 = if flip { 1 } else { 2 };
            black_box(ok(v.write_config(cap + 0xc, &tag.to_le_bytes())));
        })
    });
    g.finish();
}

fn trapped_core_sequence(c: &mut Criterion) {
    let mut v = vm(
        CAP_TABLE,
        KernelAbi::V7,
        Upstream::RootPort(CompleterSupport::Tph),
    );
    let cap = v.cap_offset();
    ok(v.write_config(cap + 8, &0x101u32.to_le_bytes()));
    let mut flip = false;
    c.bench_function("trapped_core_sequence_v7", |b| {
        b.iter(|| {
            flip = !flip;
            let tag: u16 = if flip { 1 } else { 2 };
            ok(v.write_config(cap + 8, &0x001u32.to_le_bytes()));
            ok(v.write_config(cap + 0xc, &tag.to_le_bytes()));
            black_box(ok(v.write_config(cap + 8, &0x101u32.to_le_bytes())));
        })
    });
}

fn repin_2048(c: &mut Criterion) {
    let mut v = vm(
        MSIX_TABLE,
        KernelAbi::V7,
        Upstream::RootPort(CompleterSupport::TphAndExt),
    );
    v.device().backend().fd().unwrap().set_irqs(2048).unwrap();
    ok(v.host_msix_enabled(2048));
    ok(v.write_config(v.cap_offset() + 8, &0x301u32.to_le_bytes()));
    for vector in 0..2048 {
        ok(v.write_vector_control(vector, 1 << 16).effect); // vCPU 0's tag
    }
    let mut bare = client(MSIX_TABLE, KernelAbi::V7);
    bare.backend().fd().unwrap().set_irqs(2048).unwrap();
    bare.enable(Mode::Iv).unwrap();
    let batch = |cpu| -> Vec<Steer> { (0..2048).map(|index| Steer::new(index, cpu)).collect() };
    let batches = [batch(5), batch(6)];
    let mut g = c.benchmark_group("repin_2048");
    let mut flip = false;
    g.bench_function("bare_client_set_st_2048", |b| {
        b.iter(|| {
            flip = !flip;
            bare.set_entries(black_box(&batches[usize::from(flip)]))
                .unwrap();
        })
    });
    g.bench_function("vmm_repin", |b| {
        b.iter(|| {
            flip = !flip;
            let e = v.pin(0, Some(if flip { 5 } else { 6 })).unwrap();
            assert_eq!(e.host_calls, 1);
        })
    });
    g.finish();
}

fn all(c: &mut Criterion) {
    trapped_st_write(c, KernelAbi::V7, "trapped_st_write_v7");
    trapped_st_write(c, KernelAbi::Feature, "trapped_st_write_feature");
    trapped_core_sequence(c);
    repin_2048(c);
}

criterion_group!(benches, all);
criterion_main!(benches);
