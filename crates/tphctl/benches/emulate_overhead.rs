//! Per-call overhead of `tphctl emulate`: one `VFIO_DEVICE_PCI_TPH` GET_CAP issued by a C
//! program and trapped (seccomp user notification, argument read and written through
//! `/proc/<pid>/mem`, answered by the model), against the same call made in-process on the
//! model (`DeviceFd::ioctl_bytes`). The trapped time is what the program measures around its
//! own loop of `iters` calls (process start and the VFIO opening are not counted).
#![allow(clippy::unwrap_used)] // bench set-up: a failed unwrap is a broken bench

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
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

/// Builds `benches/ioctl_loop.c` with the system `cc` into the target folder.
fn ioctl_loop() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let exe = Path::new(env!("CARGO_BIN_EXE_tphctl")).with_file_name("tph-ioctl-loop");
    let built = Command::new("cc")
        .args(["-O2", "-std=c11", "-D_DEFAULT_SOURCE", "-o"])
        .arg(&exe)
        .arg(here.join("benches/ioctl_loop.c"))
        .status();
    match built {
        Ok(s) if s.success() => Some(exe),
        other => {
            eprintln!("SKIPPED trapped bench: cannot build ioctl_loop.c with cc: {other:?}");
            None
        }
    }
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).measurement_time(Duration::from_secs(5));
    targets = in_process, trapped
}
criterion_main!(benches);
