//! Per-call overhead of `tphctl emulate`: one `VFIO_DEVICE_PCI_TPH` GET_CAP issued by a C
//! program and trapped (seccomp user notification, argument read and written through
//! `/proc/<pid>/mem`, answered by the model), against the same call made in-process on the
//! model (`DeviceFd::ioctl_bytes`); and one `VFIO_IOMMU_MAP_DMA` of a 4 KiB page, trapped and
//! answered by the fake host's type1 IOMMU, against the same answer given in-process
//! (`Type1::map` on this process's memory), per call and for 64 MiB in 4 KiB pages (16,384
//! calls). The trapped time is what the program measures around its own loop of calls
//! (process start and the VFIO opening are not counted).
#![allow(clippy::unwrap_used)] // bench set-up: a failed unwrap is a broken bench

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use tph_emulate::harness::ChildMemory;
use tph_emulate::vfio_host::Type1;
use tph_kernel::{Host, HostOptions};

/// The default machine's function with its table in the capability.
const DEV: &str = "0000:02:00.0";

fn get_cap_arg() -> Vec<u8> {
    tph_client::abi::encode_get_cap()
}

fn in_process(c: &mut Criterion) {
    let host = Host::with_default_machine(HostOptions::default());
    let device = host.take_over(DEV.parse().unwrap()).unwrap();
    let fd = device.open().unwrap();
    let mut arg = get_cap_arg();
    c.bench_function("get_cap/in_process_model", |b| {
        b.iter(|| {
            fd.ioctl_bytes(tph_client::abi::VFIO_DEVICE_PCI_TPH, &mut arg)
                .unwrap()
        })
    });
}

/// 64 MiB in 4 KiB pages.
const PAGES_64MIB: u64 = 16384;
/// Mappings one container holds at most (`dma_entry_limit`), minus some room.
const DMA_BATCH: u64 = 65000;

/// The `struct vfio_iommu_type1_dma_map` bytes of one 4 KiB page.
fn map_arg(vaddr: u64, iova: u64) -> [u8; 32] {
    let mut arg = [0u8; 32];
    arg[0..4].copy_from_slice(&32u32.to_le_bytes());
    arg[4..8].copy_from_slice(&3u32.to_le_bytes()); // READ | WRITE
    arg[8..16].copy_from_slice(&vaddr.to_le_bytes());
    arg[16..24].copy_from_slice(&iova.to_le_bytes());
    arg[24..32].copy_from_slice(&4096u64.to_le_bytes());
    arg
}

/// `n` MAP_DMA calls answered in-process, each a distinct page of `mem` at its own IOVA (a
/// fresh container every `DMA_BATCH`, as the C loop unmaps all); the time of the calls only.
fn in_process_maps(mem: &[u8], n: u64) -> Duration {
    let own = ChildMemory::of_self().unwrap();
    let base = (mem.as_ptr() as u64).next_multiple_of(4096);
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < n {
        let k = (n - done).min(DMA_BATCH);
        let mut iommu = Type1::new(3);
        let args: Vec<[u8; 32]> = (0..k)
            .map(|i| map_arg(base + 4096 * i, 0x1000_0000 + 4096 * i))
            .collect();
        let t0 = std::time::Instant::now();
        for a in &args {
            iommu.map(a.as_ptr() as u64, &own).unwrap();
        }
        total += t0.elapsed();
        done += k;
    }
    total
}

fn map_dma_in_process(c: &mut Criterion) {
    let mem = vec![1u8; (DMA_BATCH as usize + 1) * 4096];
    c.bench_function("map_dma_4k/in_process_type1", |b| {
        b.iter_custom(|iters| in_process_maps(&mem, iters))
    });
    c.bench_function("map_dma_64mib_in_4k_pages/in_process_type1", |b| {
        b.iter_custom(|iters| (0..iters).map(|_| in_process_maps(&mem, PAGES_64MIB)).sum())
    });
}

/// Builds `benches/<name>.c` with the system `cc` into the target folder.
fn c_program(name: &str) -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = Path::new(env!("CARGO_BIN_EXE_tphctl")).with_file_name(format!("tph-{name}"));
    let built = Command::new("cc")
        .args(["-O2", "-std=c11", "-D_DEFAULT_SOURCE", "-o"])
        .arg(&exe)
        .arg(here.join(format!("benches/{name}.c")))
        .status();
    match built {
        Ok(s) if s.success() => Some(exe),
        other => {
            eprintln!("SKIPPED trapped bench: cannot build {name}.c with cc: {other:?}");
            None
        }
    }
}

fn ioctl_loop() -> Option<PathBuf> {
    c_program("ioctl_loop")
}

/// Runs the loop under `tphctl emulate`; the nanoseconds the program measured.
fn trapped_loop(exe: &Path, iters: u64) -> Option<Duration> {
    let out = Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(["emulate", "--emulated", "--"])
        .arg(exe)
        .args([DEV, &iters.to_string()])
        .output()
        .unwrap();
    if !out.status.success() {
        eprintln!(
            "SKIPPED trapped bench: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let ns: u64 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    Some(Duration::from_nanos(ns))
}

fn trapped(c: &mut Criterion) {
    let Some(exe) = ioctl_loop() else {
        return;
    };
    if trapped_loop(&exe, 1).is_none() {
        return;
    }
    c.bench_function("get_cap/trapped_under_tphctl_emulate", |b| {
        b.iter_custom(|iters| trapped_loop(&exe, iters).unwrap_or_default())
    });
}

fn map_dma_trapped(c: &mut Criterion) {
    let Some(exe) = c_program("map_dma_loop") else {
        return;
    };
    if trapped_loop(&exe, 1).is_none() {
        return;
    }
    c.bench_function("map_dma_4k/trapped_under_tphctl_emulate", |b| {
        b.iter_custom(|iters| trapped_loop(&exe, iters).unwrap_or_default())
    });
    c.bench_function(
        "map_dma_64mib_in_4k_pages/trapped_under_tphctl_emulate",
        |b| {
            b.iter_custom(|iters| {
                (0..iters)
                    .map(|_| trapped_loop(&exe, PAGES_64MIB).unwrap_or_default())
                    .sum()
            })
        },
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = in_process, trapped, map_dma_in_process, map_dma_trapped
}
criterion_main!(benches);
