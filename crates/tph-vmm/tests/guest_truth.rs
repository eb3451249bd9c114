//! Guest-side truth, scenario by scenario: the mainline TPH core as guest kernel against the
//! virtual device and root port, the emulated kernel (v7 and feature revision) as host.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::check::{check, ABIS};
use common::{client, config, host, host_ok, host_tag, HostDevice, Rig};
use tph_kernel::KernelAbi;
use tph_regs::tph::{CompleterSupport, StLocation};
use tph_vmm::state::VmState;
use tph_vmm::vtag::{MemType, TagWidth};
use tph_vmm::{ControlChange, Error, VirtualTph};

/// ST Mode Select values the guest core takes.
const MODE_NO_ST: u8 = 0;
const MODE_IV: u8 = 1;
const MODE_DS: u8 = 2;

/// Four vCPUs pinned to host CPUs 5, 6, 7 and 9.
const PINS: [Option<u32>; 4] = [Some(5), Some(6), Some(7), Some(9)];

fn enabled_rig(
    abi: KernelAbi,
    dev: HostDevice,
    pins: &[Option<u32>],
) -> Rig<VirtualTph<tph_emu::EmulatedBackend>> {
    let mut rig = Rig::new(abi, dev, pins);
    if dev == HostDevice::MsixTable {
        rig.irqs(common::GUEST_ENTRIES).unwrap();
    }
    let (r, vmm) = rig.guest_enable(MODE_IV);
    r.unwrap();
    vmm.unwrap();
    rig
}

fn host_table(rig: &Rig<VirtualTph<tph_emu::EmulatedBackend>>) -> Vec<u16> {
    rig.vmm.device().backend().device().snapshot().st_table
}

#[test]
fn guest_core_gets_exactly_the_virtual_tags_from_the_generated_dsm() {
    for abi in ABIS {
        for (dev, width) in [
            (HostDevice::CapTable, TagWidth::Bits8),
            (HostDevice::MsixTable, TagWidth::Bits16),
        ] {
            let rig = enabled_rig(abi, dev, &PINS);
            let space = rig.vmm.tag_space();
            for v in 0..4 {
                for mem in [MemType::Volatile, MemType::Persistent] {
                    let want = space.tag(v, mem, width).unwrap();
                    assert_eq!(
                        rig.guest_tag(v, mem),
                        Ok(want),
                        "{abi:?} {dev:?} vCPU {v} {mem:?}"
                    );
                }
            }
        }
    }
}

#[test]
fn guest_set_st_entry_programs_the_host_tag_of_the_pinned_cpu() {
    for abi in ABIS {
        for (dev, width) in [
            (HostDevice::CapTable, TagWidth::Bits8),
            (HostDevice::MsixTable, TagWidth::Bits16),
        ] {
            let mut rig = enabled_rig(abi, dev, &PINS);
            for (index, v) in [(0u16, 3u32), (1, 0), (5, 2)] {
                let tag = rig.guest_tag(v, MemType::Volatile).unwrap();
                let (r, vmm) = rig.guest_set_entry(index, tag);
                r.unwrap();
                vmm.unwrap();
                let pin = PINS[v as usize].unwrap();
                assert_eq!(
                    host_table(&rig)[usize::from(index)],
                    host_tag(pin, MemType::Volatile, width)
                );
                assert_eq!(rig.vmm.guest_table()[usize::from(index)], tag);
            }
            check(&rig).unwrap();
        }
    }
}

#[test]
fn repin_retargets_every_entry_of_the_vcpu_in_one_batched_call() {
    for abi in ABIS {
        let mut rig = Rig::new(abi, HostDevice::MsixTable, &PINS);
        // 2,048 vectors, all holding vCPU 1's tag.
        host_ok(rig.vmm.host_msix_will_change()).unwrap();
        rig.vmm
            .device()
            .backend()
            .fd()
            .unwrap()
            .set_irqs(2048)
            .unwrap();
        host_ok(rig.vmm.host_msix_enabled(2048)).unwrap();
        rig.guest_enable(MODE_IV).1.unwrap();
        let tag = rig.guest_tag(1, MemType::Volatile).unwrap();
        for vector in 0..2048 {
            rig.guest_raw_entry(vector, tag).unwrap();
        }
        let effect = rig.vmm.pin(1, Some(12)).unwrap();
        assert_eq!(
            effect.host_calls, 1,
            "{abi:?}: one SET_ST for 2,048 entries"
        );
        let want = host_tag(12, MemType::Volatile, TagWidth::Bits16);
        assert!(host_table(&rig).iter().all(|st| *st == want), "{abi:?}");
        check(&rig).unwrap();
    }
}

#[test]
fn foreign_tag_is_cleared_counted_and_reported() {
    for abi in ABIS {
        let mut rig = enabled_rig(abi, HostDevice::CapTable, &PINS);
        let tag = rig.guest_tag(0, MemType::Volatile).unwrap();
        rig.guest_set_entry(2, tag).1.unwrap();
        // Tag 0x30 names no vCPU of a 4-vCPU VM (VM tags 1..=4, PM tags 5..=8).
        let effect = host_ok(
            rig.vmm
                .write_config(rig.cap + 0xc + 2 * 2, &0x30u16.to_le_bytes()),
        )
        .unwrap();
        assert_eq!(effect.foreign, vec![tph_vmm::Foreign::new(2, 0x30)]);
        assert_eq!(rig.vmm.stats().foreign_tags, 1);
        assert_eq!(host_table(&rig)[2], 0, "{abi:?}: cleared on the host");
        assert_eq!(
            rig.vmm.guest_table()[2],
            0x30,
            "the guest reads what it wrote"
        );
    }
}

#[test]
fn unpinned_vcpu_entries_stay_clear_until_pinned() {
    for abi in ABIS {
        let mut rig = enabled_rig(abi, HostDevice::CapTable, &[Some(3), None]);
        let tag = rig.guest_tag(1, MemType::Volatile).unwrap();
        rig.guest_set_entry(4, tag).1.unwrap();
        assert_eq!(host_table(&rig)[4], 0);
        let effect = rig.vmm.pin(1, Some(11)).unwrap();
        assert_eq!(effect.host_calls, 1);
        assert_eq!(
            host_table(&rig)[4],
            host_tag(11, MemType::Volatile, TagWidth::Bits8)
        );
        rig.vmm.pin(1, None).unwrap();
        assert_eq!(host_table(&rig)[4], 0, "{abi:?}: unpinning clears again");
    }
}

#[test]
fn host_is_programmed_only_while_the_guest_has_tph_enabled() {
    for abi in ABIS {
        let mut rig = Rig::new(abi, HostDevice::CapTable, &PINS);
        let effect = host_ok(rig.vmm.write_config(rig.cap + 0xc, &1u16.to_le_bytes())).unwrap();
        assert_eq!(effect.host_calls, 0, "{abi:?}: TPH off, nothing sent");
        assert_eq!(host_table(&rig)[0], 0);
        rig.guest_enable(MODE_IV).1.unwrap();
        assert_eq!(
            host_table(&rig)[0],
            host_tag(5, MemType::Volatile, TagWidth::Bits8)
        );
        rig.guest_disable().unwrap();
        assert_eq!(
            rig.vmm.device().backend().device().snapshot().control,
            Some(0)
        );
    }
}

#[test]
fn no_st_guest_enable_is_host_iv_with_every_entry_cleared() {
    for abi in ABIS {
        let mut rig = enabled_rig(abi, HostDevice::CapTable, &PINS);
        let tag = rig.guest_tag(2, MemType::Volatile).unwrap();
        rig.guest_set_entry(0, tag).1.unwrap();
        rig.guest_disable().unwrap();
        let (r, vmm) = rig.guest_enable(MODE_NO_ST);
        r.unwrap();
        vmm.unwrap();
        let snap = rig.vmm.device().backend().device().snapshot();
        assert_eq!(
            snap.control.map(|c| c & 7),
            Some(1),
            "{abi:?}: host in IV mode"
        );
        assert!(snap.st_table.iter().all(|st| *st == 0));
        check(&rig).unwrap();
    }
}

#[test]
fn control_writes_the_device_does_not_offer_are_refused_and_counted() {
    for abi in ABIS {
        let mut rig = Rig::new(abi, HostDevice::CapTable, &PINS);
        // DS (hidden), reserved mode 3, reserved requester type 2, extended TPH (TPH-only path).
        for value in [0x102u32, 0x103, 0x201, 0x301] {
            let e = host_ok(rig.vmm.write_config(rig.cap + 8, &value.to_le_bytes())).unwrap();
            assert_eq!(
                e.control,
                Some(ControlChange::Refused { value }),
                "{value:#x}"
            );
            assert_eq!(rig.vmm.guest_control(), 0);
        }
        assert_eq!(rig.vmm.stats().refused_controls, 4);
        // The guest core's DS enable fails its own mode check: DS is hidden.
        assert!(rig.guest_enable(MODE_DS).0.is_err());
        assert_eq!(
            rig.vmm.device().backend().device().snapshot().control,
            Some(0)
        );
    }
}

#[test]
fn ds_is_shown_only_with_the_unsafe_option_and_then_pinning_is_fixed() {
    let dev = HostDevice::CapTable;
    let unsafe_host = host(KernelAbi::V7, true);
    let mut cfg = config(dev, &PINS);
    let plain = VirtualTph::new(client(&unsafe_host, dev, KernelAbi::V7), cfg.clone()).unwrap();
    assert!(
        !plain.virtual_cap().cap.ds,
        "the host allows DS, the VMM did not opt in"
    );
    cfg.unsafe_ds = true;
    let mut ds = VirtualTph::new(plain.into_device(), cfg).unwrap();
    assert!(ds.virtual_cap().cap.ds);
    assert!(matches!(ds.pin(0, Some(1)), Err(Error::FixedPinning)));
    let e = host_ok(ds.write_config(ds.cap_offset() + 8, &0x102u32.to_le_bytes())).unwrap();
    assert!(matches!(e.control, Some(ControlChange::Enabled { .. })));
    let host_ctrl = ds.device().backend().device().snapshot().control.unwrap();
    assert_eq!(host_ctrl & 7, 2, "host enabled in DS mode");
}

#[test]
fn virtual_root_port_advertises_the_host_path_completer() {
    let h = host(KernelAbi::V7, false);
    let cap = VirtualTph::new(
        client(&h, HostDevice::CapTable, KernelAbi::V7),
        config(HostDevice::CapTable, &PINS),
    )
    .unwrap();
    assert_eq!(cap.virtual_cap().completer, CompleterSupport::Tph);
    assert!(!cap.extended());
    let msix = VirtualTph::new(
        client(&h, HostDevice::MsixTable, KernelAbi::V7),
        config(HostDevice::MsixTable, &PINS),
    )
    .unwrap();
    assert_eq!(msix.virtual_cap().completer, CompleterSupport::TphAndExt);
    assert_eq!(msix.virtual_cap().cap.location, StLocation::MsiX);
    assert_eq!(msix.virtual_cap().root_port_devcap2(0) >> 12 & 3, 3);
    // 04:00.0 sits below a root port without a TPH completer: the guest gets none either.
    let mut none = config(HostDevice::CapTable, &PINS);
    none.host_upstream = tph_regs::tph::Upstream::RootPort(CompleterSupport::None);
    let backend = tph_emu::EmulatedBackend::take_over(&h, "04:00.0".parse().unwrap()).unwrap();
    let dev = tph_client::TphDevice::with_revision(backend, tph_client::Revision::V7).unwrap();
    let v = VirtualTph::new(dev, none).unwrap();
    assert_eq!(v.virtual_cap().completer, CompleterSupport::None);
}

#[test]
fn migration_restores_onto_another_host_with_other_cpus_and_kernel_revision() {
    for (from, to) in [
        (KernelAbi::V7, KernelAbi::Feature),
        (KernelAbi::Feature, KernelAbi::V7),
    ] {
        let mut rig = enabled_rig(from, HostDevice::CapTable, &PINS);
        for (index, v) in [(0u16, 0u32), (1, 3), (2, 1)] {
            let tag = rig.guest_tag(v, MemType::Volatile).unwrap();
            rig.guest_set_entry(index, tag).1.unwrap();
        }
        let bytes = rig.vmm.save().to_bytes();
        let state = VmState::from_bytes(&bytes).unwrap();
        // The destination: another kernel revision, the vCPUs on other CPUs, vCPU 2 unpinned.
        let dest_pins = [Some(14), Some(2), None, Some(0)];
        let dest = common::host_with_tph(to);
        let dev = HostDevice::CapTable;
        let restored =
            VirtualTph::restore(client(&dest, dev, to), config(dev, &dest_pins), &state).unwrap();
        assert_eq!(restored.guest_table(), rig.vmm.guest_table());
        assert_eq!(restored.guest_control(), rig.vmm.guest_control());
        let t = restored.device().backend().device().snapshot().st_table;
        assert_eq!(
            t[0],
            host_tag(14, MemType::Volatile, TagWidth::Bits8),
            "{from:?} -> {to:?}"
        );
        assert_eq!(t[1], host_tag(0, MemType::Volatile, TagWidth::Bits8));
        assert_eq!(t[2], host_tag(2, MemType::Volatile, TagWidth::Bits8));
        let rig2 = Rig::with_vmm(dest, restored);
        check(&rig2).unwrap();
    }
}

#[test]
fn migration_state_for_another_vm_shape_is_refused() {
    let mut rig = enabled_rig(KernelAbi::V7, HostDevice::CapTable, &PINS);
    rig.guest_set_entry(0, 1).1.unwrap();
    let state = rig.vmm.save();
    let dest = host(KernelAbi::V7, false);
    let dev = HostDevice::CapTable;
    let two_vcpus = VirtualTph::restore(
        client(&dest, dev, KernelAbi::V7),
        config(dev, &[Some(1), Some(2)]),
        &state,
    );
    assert!(matches!(two_vcpus, Err(Error::StateMismatch(_))));
    let dev = HostDevice::MsixTable;
    let other_device = VirtualTph::restore(
        client(&dest, dev, KernelAbi::V7),
        config(dev, &PINS),
        &state,
    );
    assert!(matches!(other_device, Err(Error::StateMismatch(_))));
}

#[test]
fn guest_helpers_write_where_the_table_lives() {
    for dev in [HostDevice::CapTable, HostDevice::MsixTable] {
        let h = host(KernelAbi::V7, false);
        let mut v = VirtualTph::new(client(&h, dev, KernelAbi::V7), config(dev, &PINS)).unwrap();
        let e =
            host_ok(v.write_guest_control(Some(tph_regs::tph::StMode::InterruptVector))).unwrap();
        let width = if dev == HostDevice::MsixTable {
            TagWidth::Bits16
        } else {
            TagWidth::Bits8
        };
        assert!(matches!(e.control, Some(ControlChange::Enabled { width: w, .. }) if w == width));
        v.write_guest_entry(3, 2).unwrap();
        assert_eq!(v.guest_table()[3], 2);
        let via_msix = v.read_vector_control_st(3);
        assert_eq!(via_msix, if dev == HostDevice::MsixTable { 2 } else { 0 });
        let beyond = v.guest_table().len() as u16;
        assert!(matches!(
            v.write_guest_entry(beyond, 1),
            Err(Error::NoSuchEntry { .. })
        ));
        host_ok(v.write_guest_control(None)).unwrap();
        assert_eq!(v.guest_control(), 0);
    }
}

#[test]
fn migration_state_with_a_control_value_the_device_refuses_is_refused() {
    let rig = enabled_rig(KernelAbi::V7, HostDevice::CapTable, &PINS);
    let mut state = rig.vmm.save();
    state.control = 0x102; // DS: hidden on the destination as on the source
    let dest = host(KernelAbi::V7, false);
    let dev = HostDevice::CapTable;
    let r = VirtualTph::restore(
        client(&dest, dev, KernelAbi::V7),
        config(dev, &PINS),
        &state,
    );
    assert!(matches!(r, Err(Error::StateMismatch(_))));
}

/// Under the unsafe DS option the guest firmware hands out the *host* tags of the fixed pinning
/// (in DS mode the guest driver writes tags where the VMM cannot see them, so only host tags
/// steer); the mainline core as guest gets exactly those, in DS mode reaches the host in DS
/// mode, and a host tag written into the ST table in IV mode is still translated to its vCPU's
/// host CPU (the tag names a pinned vCPU, not a foreign one).
#[test]
fn unsafe_ds_firmware_gives_host_tags_of_the_fixed_pinning() {
    for abi in ABIS {
        let dev = HostDevice::CapTable;
        let h = host(abi, true);
        let mut cfg = config(dev, &PINS);
        cfg.unsafe_ds = true;
        let vtph = VirtualTph::new(client(&h, dev, abi), cfg).unwrap();
        let mut rig = Rig::with_vmm(h, vtph);
        // What the host kernel itself answers for each pinned CPU, in DS mode.
        let mut probe = client(&host(abi, true), dev, abi);
        probe.enable(tph_client::Mode::Ds).unwrap();
        let cpus: Vec<tph_client::CpuQuery> = PINS
            .iter()
            .flatten()
            .map(|&cpu| tph_client::CpuQuery::new(cpu))
            .collect();
        let host_tags = probe.steering_tags(&cpus).unwrap();
        let (r, vmm) = rig.guest_enable(2); // DS
        r.unwrap();
        vmm.unwrap();
        for (v, want) in (0u32..).zip(&host_tags) {
            let got = rig.guest_tag(v, MemType::Volatile).unwrap();
            assert_eq!(got, *want, "{abi:?} vCPU {v}: the guest gets the host tag");
            assert_ne!(got, v as u16 + 1, "{abi:?}: not the virtual tag");
        }
        let host_ctrl = rig
            .vmm
            .device()
            .backend()
            .device()
            .snapshot()
            .control
            .unwrap();
        assert_eq!(host_ctrl & 7, 2, "{abi:?}: the host runs DS for the guest");
        rig.guest_disable().unwrap();
        // The same host tag written in IV mode steers entry 1 to vCPU 2's host CPU.
        let (r, vmm) = rig.guest_enable(1);
        r.unwrap();
        vmm.unwrap();
        let tag = rig.guest_tag(2, MemType::Volatile).unwrap();
        rig.guest_set_entry(1, tag).1.unwrap();
        let t = rig.vmm.device().backend().device().snapshot().st_table;
        assert_eq!(
            t[1], host_tags[2],
            "{abi:?}: entry 1 holds vCPU 2's host tag"
        );
        assert_eq!(
            rig.vmm.stats().foreign_tags,
            0,
            "{abi:?}: not counted as foreign"
        );
    }
}
