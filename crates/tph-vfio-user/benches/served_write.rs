//! A guest steering-tag write through the served device against the same write trapped
//! in-process and the bare host SET_ST, in one run (issue 18, item 4).
//!
//! One write of ST entry 0 in the capability of 02:00.0 (host root port completes TPH only,
//! v7 host, guest TPH on in IV mode), alternating between the virtual tags of vCPUs 0 and 1
//! so every write changes the entry and reaches the host as one SET_ST:
//! - `bare_host_set_st`: the host SET_ST alone (`TphDevice::set_entries` on the emulated host).
//! - `trapped_in_process`: `VirtualTph::write_config` (tag translation plus that SET_ST).
//! - `served_direct`: a vfio-user client's region write over the socket, rust-vmm's server
//!   accepting on the socket itself (`Server::serve_unchecked`), into `VmFunction`.
//! - `served_checked`: the same through `Server::serve` (version check, then the in-process
//!   relay): what `tphctl serve --vm` runs.
#![allow(clippy::unwrap_used)] // benches: a failed unwrap is a failed run

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use tph_client::{Mode, Revision, Steer, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::{Host, HostOptions};
use tph_regs::tph::{CompleterSupport, Upstream};
use tph_vfio_user::{Device, Server, VmFunction};
use tph_vmm::{VirtualTph, VmConfig};

const BDF: &str = "02:00.0";
const CAP: u64 = 0x100;

fn client() -> TphDevice<EmulatedBackend> {
    let host = Host::with_default_machine(HostOptions::default());
    let backend = EmulatedBackend::take_over(&host, BDF.parse().unwrap()).unwrap();
    TphDevice::with_revision(backend, Revision::V7).unwrap()
}

fn vtph() -> VirtualTph<EmulatedBackend> {
    let mut cfg = VmConfig::new(2).with_pins(&[(0, 3), (1, 4)]).unwrap();
    cfg.host_upstream = Upstream::RootPort(CompleterSupport::Tph);
    let mut v = VirtualTph::new(client(), cfg).unwrap();
    let effect = v.write_config(CAP as u16 + 8, &0x101u32.to_le_bytes());
    assert!(effect.host_ok(), "{:?}", effect.host_failures);
    v
}

fn config() -> Vec<u8> {
    let m = tph_kernel::machines::default_machine();
    m.function(BDF.parse().unwrap()).unwrap().config.clone()
}

/// A served `VmFunction` on a fresh socket and a connected client.
fn served(
    checked: bool,
) -> (
    vfio_user::Client,
    tempfile::TempDir,
    std::thread::JoinHandle<()>,
) {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("bench.sock");
    let mut device = Device::new(VmFunction::new(vtph(), &config(), None), None);
    let server = Server::bind(&socket).unwrap();
    let thread = std::thread::spawn(move || {
        if checked {
            server.serve(&mut device).unwrap();
        } else {
            server.serve_unchecked(&mut device).unwrap();
        }
    });
    (vfio_user::Client::new(&socket).unwrap(), dir, thread)
}

fn steering_write(c: &mut Criterion) {
    let mut g = c.benchmark_group("guest_st_write");
    let mut flip = false;

    let mut bare = client();
    bare.enable(Mode::Iv).unwrap();
    g.bench_function("bare_host_set_st", |b| {
        b.iter(|| {
            flip = !flip;
            let cpu = if flip { 3 } else { 4 };
            bare.set_entries(black_box(&[Steer::new(0, cpu)])).unwrap();
        })
    });

    let mut v = vtph();
    g.bench_function("trapped_in_process", |b| {
        b.iter(|| {
            flip = !flip;
            let tag: u16 = if flip { 1 } else { 2 };
            let effect = v.write_config(CAP as u16 + 0xc, black_box(&tag.to_le_bytes()));
            debug_assert_eq!(effect.host_calls, 1);
        })
    });

    for (name, checked) in [("served_direct", false), ("served_checked", true)] {
        let (mut client, _dir, thread) = served(checked);
        g.bench_function(name, |b| {
            b.iter(|| {
                flip = !flip;
                let tag: u16 = if flip { 1 } else { 2 };
                client
                    .region_write(7, CAP + 0xc, black_box(&tag.to_le_bytes()))
                    .unwrap();
            })
        });
        client.shutdown().unwrap();
        thread.join().unwrap();
    }
    g.finish();
}

criterion_group!(benches, steering_write);
criterion_main!(benches);
