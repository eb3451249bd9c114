//! SET_ST and GET_ST of 1, 64 and 2048 entries through the ioctl entry point, against a
//! baseline measured in the same run:
//!
//! - SET_ST: the bare hardware accesses the op makes, replayed directly on the emulated device
//!   (recorded from the trace of one real call, so the baseline issues exactly the same config
//!   and MSI-X reads and writes).
//! - GET_ST makes no hardware access at all (tags come from firmware), so its baselines are
//!   the firmware lookups it must make (one `_DSM` result per entry), alone and together with
//!   the copy of the argument in from and back to caller memory.
//!
//! Ratio = kernel / baseline (per entry: divide each figure by the entry count).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use tph_acpi::{MemType, SteeringTagSource, TableSource};
use tph_kernel::hw::Access;
use tph_kernel::vfio::abi::{self, TphEntry as Entry};
use tph_kernel::vfio::{SliceMemory, UserMemory, SLICE_BASE};
use tph_kernel::{DeviceFd, Host, HostOptions, VfioDevice};

const SIZES: [u16; 3] = [1, 64, 2048];
/// Default machine NIC with its ST table in the MSI-X table (2048 entries and vectors).
const MSIX_DEV: &str = "01:00.0";

fn open(unsafe_ds: bool, mode: u8) -> (Host, VfioDevice, DeviceFd) {
    let host = Host::with_default_machine(HostOptions::new().with_unsafe_ds(unsafe_ds));
    let dev = host
        .take_over(MSIX_DEV.parse().expect("bdf"))
        .expect("take over");
    let fd = dev.open().expect("open");
    fd.set_irqs(2048).expect("MSI-X");
    let mut arg = abi::encode_op(abi::OP_ENABLE, [mode, 0, 0, 0, 0, 0, 0, 0]);
    fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg)
        .expect("enable");
    (host, dev, fd)
}

fn replay(hw: &mut tph_kernel::hw::Function, trace: &[Access]) {
    for a in trace {
        match *a {
            Access::ConfigRead { offset, width, .. } => {
                black_box(hw.config_read(offset, width));
            }
            Access::ConfigWrite {
                offset,
                width,
                value,
                ..
            } => {
                black_box(hw.config_write(offset, width, value));
            }
            Access::MsixRead { vector, offset, .. } => {
                black_box(hw.msix_read(vector, offset));
            }
            Access::MsixWrite {
                vector,
                offset,
                value,
                ..
            } => {
                black_box(hw.msix_write(vector, offset, value));
            }
            // A new kind of access needs its replay here, or the bench measures less than ran.
            other => panic!("replay: no replay for {other}"),
        }
    }
}

fn set_st(c: &mut Criterion) {
    let (_host, dev, fd) = open(false, abi::MODE_IV);
    let mut g = c.benchmark_group("set_st");
    for n in SIZES {
        let entries: Vec<Entry> = (0..n).map(|i| Entry::new(u32::from(i % 8), 0, i)).collect();
        let mut arg = abi::encode_st_raw(abi::OP_SET_ST, &entries);
        dev.drain_trace();
        fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg)
            .expect("SET_ST");
        let accesses = dev.drain_trace();
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_with_input(BenchmarkId::new("kernel", n), &n, |b, _| {
            b.iter(|| {
                let r = fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, black_box(&mut arg));
                assert_eq!(r, Ok(0));
            })
        });
        g.bench_with_input(BenchmarkId::new("bare_hw", n), &n, |b, _| {
            b.iter(|| dev.with_hardware(|hw| replay(hw, black_box(&accesses))))
        });
        assert!(dev.violations().is_empty());
    }
    g.finish();
}

/// The unavoidable work of GET_ST without the kernel logic: copy the argument in from caller
/// memory, one firmware lookup per entry, copy the tags back.
fn firmware_and_copies(firmware: &dyn SteeringTagSource, arg: &mut [u8], n: u16) {
    let mut mem = SliceMemory::new(arg);
    let mut buf = vec![0u8; 16 + 12 * usize::from(n)];
    mem.read(SLICE_BASE, &mut buf).expect("mapped");
    for (i, e) in (0u32..).zip(buf[16..].chunks_exact_mut(12)) {
        let tag = firmware
            .st_info(i % 8)
            .map_or(0, |v| v.xst(MemType::Volatile));
        e[8..10].copy_from_slice(&tag.to_le_bytes());
    }
    mem.write(SLICE_BASE + 16, &buf[16..]).expect("mapped");
}

fn get_st(c: &mut Criterion) {
    let (_host, dev, fd) = open(true, abi::MODE_DS);
    let firmware: Arc<dyn SteeringTagSource> = Arc::new(TableSource::default_for_all());
    let mut g = c.benchmark_group("get_st");
    for n in SIZES {
        let entries: Vec<Entry> = (0..n).map(|i| Entry::new(u32::from(i % 8), 0, 0)).collect();
        // GET_ST writes the tags into the argument, and a non-zero `st` is EINVAL on input:
        // every iteration gets a fresh copy of the request (copying is outside the timing).
        let pristine = abi::encode_st_raw(abi::OP_GET_ST, &entries);
        let mut arg = pristine.clone();
        dev.drain_trace();
        fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg)
            .expect("GET_ST");
        assert!(dev.drain_trace().is_empty(), "GET_ST touches no hardware");
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_with_input(BenchmarkId::new("kernel", n), &n, |b, _| {
            b.iter_batched_ref(
                || pristine.clone(),
                |arg| {
                    let r = fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, black_box(arg));
                    assert_eq!(r, Ok(0));
                },
                BatchSize::SmallInput,
            )
        });
        g.bench_with_input(BenchmarkId::new("firmware_only", n), &n, |b, _| {
            b.iter(|| {
                for i in 0..n {
                    let info = firmware.st_info(u32::from(i % 8));
                    black_box(info.map(|v| v.xst(MemType::Volatile)).ok());
                }
            })
        });
        g.bench_with_input(BenchmarkId::new("firmware_and_copies", n), &n, |b, _| {
            b.iter_batched_ref(
                || pristine.clone(),
                |arg| firmware_and_copies(firmware.as_ref(), black_box(arg), n),
                BatchSize::SmallInput,
            )
        });
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = set_st, get_st
}
criterion_main!(benches);
