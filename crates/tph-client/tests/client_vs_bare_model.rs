//! Differential property: for any batch, the client's call and the same bytes sent straight to
//! the model's entry point end the same way (same errno, same registers, same hardware
//! accesses). The client adds words, never semantics.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use proptest::prelude::*;
use tph_client::abi::{self, TphEntry};
use tph_client::{CpuQuery, MemType, Mode, Revision, Steer, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::{Host, HostOptions};

/// Table in the TPH capability (16 entries) and in MSI-X (2048, 8 vectors enabled).
const DEVICES: [&str; 2] = ["02:00.0", "01:00.0"];

fn device(bdf: &str, unsafe_ds: bool) -> TphDevice<EmulatedBackend> {
    let host = Host::with_default_machine(HostOptions::new().with_unsafe_ds(unsafe_ds));
    let backend = EmulatedBackend::take_over(&host, bdf.parse().unwrap()).unwrap();
    let mut dev = TphDevice::with_revision(backend, Revision::V7).unwrap();
    let _irqs = tph_testkit::enable_msix(&mut dev, 8);
    dev
}

fn mem(pm: bool) -> MemType {
    if pm {
        MemType::Persistent
    } else {
        MemType::Volatile
    }
}

fn outcome(dev: &TphDevice<EmulatedBackend>) -> (String, Vec<String>) {
    let d = dev.backend().device();
    (
        format!("{:?}", d.snapshot()),
        d.drain_trace().iter().map(ToString::to_string).collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn set_st_client_equals_bare_model(
        which in 0usize..2,
        enable in any::<bool>(),
        batch in prop::collection::vec((0u16..20, 0u32..10, any::<bool>()), 1..12),
    ) {
        let (mut client, mut bare) = (device(DEVICES[which], false), device(DEVICES[which], false));
        if enable {
            client.enable(Mode::Iv).unwrap();
            bare.enable(Mode::Iv).unwrap();
        }
        outcome(&client);
        outcome(&bare);
        let steer: Vec<Steer> = batch.iter().map(|&(index, cpu, pm)| Steer::new(index, cpu).with_mem(mem(pm))).collect();
        let raw: Vec<TphEntry> = steer.iter().map(|s| TphEntry { cpu: s.cpu, index: s.index, mem_type: s.mem.uapi(), ..TphEntry::default() }).collect();
        let got = client.set_entries(&steer).err().and_then(|e| e.errno());
        let mut buf = abi::encode_st(abi::OP_SET_ST, &raw).unwrap();
        let want = bare.backend().fd().unwrap().ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut buf).err();
        prop_assert_eq!(got.map(|e| e.0), want.map(|e| e.number()));
        prop_assert_eq!(outcome(&client), outcome(&bare));
    }

    #[test]
    fn get_st_client_equals_bare_model(
        cpus in prop::collection::vec((0u32..12, any::<bool>()), 1..16),
    ) {
        let (mut client, mut bare) = (device("03:00.0", true), device("03:00.0", true));
        client.enable(Mode::Ds).unwrap();
        bare.enable(Mode::Ds).unwrap();
        let q: Vec<CpuQuery> = cpus.iter().map(|&(cpu, pm)| CpuQuery::new(cpu).with_mem(mem(pm))).collect();
        let raw: Vec<TphEntry> = q.iter().map(|q| TphEntry { cpu: q.cpu, mem_type: q.mem.uapi(), ..TphEntry::default() }).collect();
        let got = client.steering_tags(&q).map_err(|e| e.errno().map(|n| n.0));
        let mut buf = abi::encode_st(abi::OP_GET_ST, &raw).unwrap();
        let fd = bare.backend().fd().unwrap();
        let want = fd
            .ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut buf)
            .map(|_| abi::decode_tags(&buf, raw.len()).unwrap())
            .map_err(|e| Some(e.number()));
        prop_assert_eq!(got, want);
    }
}
