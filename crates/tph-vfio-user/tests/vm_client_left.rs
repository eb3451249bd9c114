//! A client that goes away without resetting the device (QEMU killed, the guest powered off)
//! must not leave the host function steering DMA with the guest's tags: when the session ends,
//! `VmFunction` runs the VM layer's reset hook, so the host ends with TPH off and the entries
//! the layer programmed cleared; the trace says so. Driven by rust-vmm's vfio-user client, as
//! QEMU would drive the server, with the emulated host's hardware read back afterwards.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::os::fd::{AsRawFd, OwnedFd};

use common::{read32, write32, SharedBuf};
use tph_client::{Revision, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::vfio::VfioDevice;
use tph_kernel::{Host, HostOptions};
use tph_vfio_user::{Device, Handle, Server, VmFunction};
use tph_vmm::{VirtualTph, VmConfig};

const CONFIG: u32 = 7;
const BAR0: u32 = 0;
const MSIX: u32 = 2;
/// `DATA_EVENTFD | ACTION_TRIGGER`.
const EVENTFDS: u32 = 4 | 32;
/// TPH Requester Control of the emulated functions (capability at 0x100).
const CONTROL: u64 = 0x108;
/// IV mode with TPH requests (8-bit tags).
const IV_TPH: u32 = 0x101;

struct Served {
    _dir: tempfile::TempDir,
    socket: std::path::PathBuf,
    host: VfioDevice,
    trace: SharedBuf,
    handle: Handle<VmFunction<EmulatedBackend>>,
    thread: std::thread::JoinHandle<Result<tph_vfio_user::Session, tph_vfio_user::Error>>,
}

/// `bdf` of the default machine behind the layer, vCPU 0 pinned to host CPU 3 and vCPU 1 to
/// 4 (the built-in firmware gives CPU n tag n), served on a fresh socket.
fn serve_vm(bdf: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("vm.sock");
    let host = Host::with_default_machine(HostOptions::default());
    let bdf = bdf.parse().unwrap();
    let config = host.machine().function(bdf).unwrap().config.clone();
    let backend = EmulatedBackend::take_over(&host, bdf).unwrap();
    let host_device = backend.device().clone();
    let dev = TphDevice::with_revision(backend, Revision::V7).unwrap();
    let cfg = VmConfig::new(2).with_pins(&[(0, 3), (1, 4)]).unwrap();
    let vtph = VirtualTph::new(dev, cfg).unwrap();
    let trace = SharedBuf::default();
    let mut device = Device::new(
        VmFunction::new(vtph, &config, None),
        Some(Box::new(trace.clone())),
    );
    let handle = device.handle();
    let server = Server::bind(&socket).unwrap();
    let thread = std::thread::spawn(move || server.serve(&mut device));
    Served {
        _dir: dir,
        socket,
        host: host_device,
        trace,
        handle,
        thread,
    }
}

/// Table in the capability: the guest enables IV and writes vCPU 1's virtual tag (2) into
/// entry 0, the host holds host CPU 4's tag; the client leaves without a reset.
#[test]
fn client_leaving_resets_the_host_tph_of_a_capability_table() {
    let s = serve_vm("02:00.0");
    let mut c = vfio_user::Client::new(&s.socket).unwrap();
    write32(&mut c, CONFIG, CONTROL, IV_TPH);
    c.region_write(CONFIG, 0x10c, &2u16.to_le_bytes()).unwrap();
    let before = s.host.snapshot();
    assert_eq!(
        before.control,
        Some(IV_TPH),
        "the guest's enable reached the host"
    );
    assert_eq!(before.st_table[0], 4, "host CPU 4's tag for vCPU 1");
    assert_eq!(
        s.handle.with_function(|f| f.client_left_effect().cloned()),
        None
    );

    c.shutdown().unwrap();
    s.thread.join().unwrap().unwrap();

    let after = s.host.snapshot();
    assert_eq!(after.control, Some(0), "host TPH off");
    assert_eq!(after.st_table, vec![0; 16], "host entries cleared");
    let effect = s
        .handle
        .with_function(|f| f.client_left_effect().cloned())
        .unwrap();
    assert_eq!((effect.host_calls, effect.host_ok()), (2, true));
    let trace = s.trace.text();
    let tail: Vec<&str> = trace.lines().rev().take(2).collect();
    assert_eq!(
        tail,
        [
            "vm client left: reset hook: host calls 2, control Disabled, entries [0]",
            "client left",
        ],
        "{trace}"
    );
}

/// Table in MSI-X (Vector Control's upper half): the client's eventfds become the host's
/// vectors, the guest enables IV and tags vectors 0 and 1; the client leaves.
#[test]
fn client_leaving_resets_the_host_tph_of_an_msix_table() {
    let s = serve_vm("01:00.0");
    let mut c = vfio_user::Client::new(&s.socket).unwrap();
    let fds: Vec<OwnedFd> = (0..2)
        .map(|_| tph_client::backend::eventfd().unwrap())
        .collect();
    let raw: Vec<i32> = fds.iter().map(AsRawFd::as_raw_fd).collect();
    c.set_irqs(MSIX, EVENTFDS, 0, 2, &raw).unwrap();
    write32(&mut c, CONFIG, CONTROL, IV_TPH);
    // Vector Control: tag in bits 31:16, unmasked. vCPU 0's tag is 1, vCPU 1's is 2.
    write32(&mut c, BAR0, 0x2000 + 12, 1 << 16);
    write32(&mut c, BAR0, 0x2000 + 16 + 12, 2 << 16);
    assert_eq!(read32(&mut c, BAR0, 0x2000 + 16 + 12), 2 << 16);
    let before = s.host.snapshot();
    // The layer enables the host in the widest width its path allows (extended TPH here).
    assert_eq!(
        before.control,
        Some(0x301),
        "the guest's enable reached the host"
    );
    // The built-in firmware's 16-bit tag of host CPU n is 0x100 + n.
    assert_eq!(
        &before.st_table[..3],
        [0x103, 0x104, 0],
        "the pinned host CPUs' tags"
    );

    c.shutdown().unwrap();
    s.thread.join().unwrap().unwrap();

    let after = s.host.snapshot();
    assert_eq!(after.control, Some(0), "host TPH off");
    assert!(
        after.st_table.iter().all(|t| *t == 0),
        "host entries cleared: {:?}",
        &after.st_table[..4]
    );
    let trace = s.trace.text();
    assert!(
        trace.ends_with(
            "client left\nvm client left: reset hook: host calls 2, control Disabled, entries \
             [0, 1]\n"
        ),
        "{trace}"
    );
}

/// A guest that never enabled TPH: nothing to undo, no host call when it leaves.
#[test]
fn client_leaving_without_tph_makes_no_host_call() {
    let s = serve_vm("02:00.0");
    let mut c = vfio_user::Client::new(&s.socket).unwrap();
    assert_eq!(read32(&mut c, CONFIG, 0) & 0xffff, 0x1ab0);
    c.shutdown().unwrap();
    s.thread.join().unwrap().unwrap();
    let effect = s
        .handle
        .with_function(|f| f.client_left_effect().cloned())
        .unwrap();
    assert_eq!(effect.host_calls, 0);
    assert!(
        s.trace
            .text()
            .ends_with("client left\nvm client left: reset hook: host calls 0\n"),
        "{}",
        s.trace.text()
    );
}
