//! Guest-side truth, as properties: random pinnings and random guest sequences (the mainline
//! core's enable, get_cpu_st and set_st_entry, and hostile guests writing arbitrary tags and
//! Control values, enabling DS, writing the table while enabled) interleaved with re-pins, on
//! both kernel revisions and both table locations. After every step the checker
//! (`common/check.rs`) must hold. A deliberately broken translation (no tag filtering) is run
//! through the same checker and must be caught.
//!
//! Cases per property: `PROPTEST_CASES`, else [`CAP_CASES`] and [`MSIX_CASES`].
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestError, TestRunner};

use common::check::{check, ABIS};
use common::{HostDevice, Rig, Vmm, GUEST_ENTRIES, HOST_CPUS};
use tph_client::Steer;
use tph_emu::EmulatedBackend;
use tph_kernel::KernelAbi;
use tph_vmm::vtag::{MemType, TagWidth};
use tph_vmm::{Effect, VirtualTph};

/// Cases per property when `PROPTEST_CASES` is not set, table in the capability: 600 on
/// each revision.
const CAP_CASES: u32 = 600;
/// Table in MSI-X (2,048 vectors, slower to snapshot): 250 on each revision. With the cases
/// above, 1,700 checked scenarios of up to 40 steps each.
const MSIX_CASES: u32 = 250;
/// Scenarios the broken translation is tried on (it is caught within a few).
const MUTANT_CASES: u32 = 200;
/// Most vCPUs of a generated VM.
const MAX_VCPUS: u32 = 8;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

/// One step of a scenario.
#[derive(Debug, Clone)]
enum Op {
    /// Guest core: enable (0 No-ST, 1 IV, 2 DS: refused by the guest core, DS is hidden).
    Enable(u8),
    /// Guest core: disable.
    Disable,
    /// Guest core: get_cpu_st(vcpu) then set_st_entry(index, tag).
    Program { index: u16, vcpu: u32, pm: bool },
    /// Hostile guest: raw tag into an entry (any time, TPH on or off).
    RawEntry { index: u16, raw: u16 },
    /// Hostile guest: raw Control (DS, reserved modes and types, anything).
    RawControl(u32),
    /// VMM: re-pin a vCPU (None: unpin).
    Repin { vcpu: u32, cpu: Option<u32> },
    /// Guest enables MSI-X vectors 0..n (the VMM follows on the host).
    Irqs(u16),
}

fn op(vcpus: u32) -> impl Strategy<Value = Op> {
    let near = (2 * vcpus + 3) as u16;
    prop_oneof![
        3 => (0u8..=2).prop_map(Op::Enable),
        1 => Just(Op::Disable),
        6 => (0..GUEST_ENTRIES, 0..vcpus, any::<bool>())
            .prop_map(|(index, vcpu, pm)| Op::Program { index, vcpu, pm }),
        2 => (0..GUEST_ENTRIES, any::<u16>()).prop_map(|(index, raw)| Op::RawEntry { index, raw }),
        2 => (0..GUEST_ENTRIES, 0..near).prop_map(|(index, raw)| Op::RawEntry { index, raw }),
        1 => prop_oneof![
            Just(0x102u32), // DS, TPH only
            Just(0x103),    // reserved mode 3
            Just(0x201),    // reserved requester enable 2
            Just(0x301),    // extended TPH
            Just(0x101),
            any::<u32>(),
        ]
        .prop_map(Op::RawControl),
        2 => (0..vcpus, option::of(0..HOST_CPUS)).prop_map(|(vcpu, cpu)| Op::Repin { vcpu, cpu }),
        1 => (0..=GUEST_ENTRIES).prop_map(Op::Irqs),
    ]
}

fn scenario() -> impl Strategy<Value = (Vec<Option<u32>>, Vec<Op>)> {
    (1..=MAX_VCPUS)
        .prop_flat_map(|n| (vec(option::of(0..HOST_CPUS), n as usize), vec(op(n), 1..40)))
}

/// Runs one step; host-call failures are failures of the VMM.
fn step<V: Vmm>(rig: &mut Rig<V>, op: &Op) -> Result<(), String> {
    let vmm = |r: Result<(), String>| r.map_err(|e| format!("{op:?}: VMM error {e}"));
    match *op {
        Op::Enable(mode) => vmm(rig.guest_enable(mode).1),
        Op::Disable => vmm(rig.guest_disable()),
        Op::Program { index, vcpu, pm } => {
            let mem = if pm {
                MemType::Persistent
            } else {
                MemType::Volatile
            };
            let tag = rig
                .guest_tag(vcpu, mem)
                .map_err(|e| format!("get_cpu_st: {e:?}"))?;
            firmware_tag_is_the_virtual_tag(rig, vcpu, mem, tag)?;
            vmm(rig.guest_set_entry(index, tag).1)
        }
        Op::RawEntry { index, raw } => vmm(rig.guest_raw_entry(index, raw)),
        Op::RawControl(v) => vmm(rig.guest_raw_control(v)),
        Op::Repin { vcpu, cpu } => vmm(rig.repin(vcpu, cpu)),
        Op::Irqs(n) if rig.location == tph_regs::tph::StLocation::MsiX => vmm(rig.irqs(n)),
        Op::Irqs(_) => Ok(()),
    }
}

/// The guest core gets exactly the tag the VMM's encoding gives (0 before enable, and when
/// the tag does not exist in the enabled width).
fn firmware_tag_is_the_virtual_tag<V: Vmm>(
    rig: &Rig<V>,
    vcpu: u32,
    mem: MemType,
    tag: u16,
) -> Result<(), String> {
    let width = match rig.core.req_type() {
        tph_regs::tph::ReqEnable::Tph => Some(TagWidth::Bits8),
        tph_regs::tph::ReqEnable::ExtTph => Some(TagWidth::Bits16),
        _ => None,
    };
    let space = rig.vmm.vtph().tag_space();
    let want = width.and_then(|w| space.tag(vcpu, mem, w)).unwrap_or(0);
    if tag != want {
        return Err(format!(
            "get_cpu_st({vcpu}, {mem:?}) = {tag:#x}, VMM encoding {want:#x}"
        ));
    }
    Ok(())
}

/// Runs a scenario against `make`'s VMM and checks after every step.
fn run<V: Vmm>(mut rig: Rig<V>, ops: &[Op]) -> Result<(), TestCaseError> {
    if rig.location == tph_regs::tph::StLocation::MsiX {
        // Start with the vectors the guest programs enabled; Irqs ops change it.
        rig.irqs(GUEST_ENTRIES)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
    }
    check(&rig).map_err(TestCaseError::fail)?;
    for (k, op) in ops.iter().enumerate() {
        step(&mut rig, op).map_err(TestCaseError::fail)?;
        accept_mainline_mask_all(&mut rig, op);
        check(&rig).map_err(|e| TestCaseError::fail(format!("after step {k} {op:?}: {e}")))?;
    }
    Ok(())
}

/// Enabling host MSI-X vectors while the guest has TPH on: mainline's `msix_capability_init`
/// masks every vector by writing Vector Control (the ST half included) with Requester Enable
/// still set, and the emulated device records that. It is the host kernel's write, not the
/// layer's (the layer programs the entries again afterwards, checked by the properties), so
/// exactly those records are accepted, as the kernel model's own state-machine test does.
fn accept_mainline_mask_all<V: Vmm>(rig: &mut Rig<V>, op: &Op) {
    let all = rig.vmm.vtph().device().backend().device().violations();
    let new = &all[rig.accepted_violations..];
    let mask_all = matches!(op, Op::Irqs(n) if *n > 0)
        && rig.location == tph_regs::tph::StLocation::MsiX
        && new
            .iter()
            .all(|v| matches!(v, tph_kernel::hw::Violation::StWriteWhileEnabled { .. }));
    if mask_all {
        rig.accepted_violations = all.len();
    }
}

fn property(abi: KernelAbi, dev: HostDevice, n: u32) {
    let mut runner = TestRunner::new(Config {
        cases: n,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&scenario(), |(pins, ops)| {
        run(Rig::new(abi, dev, &pins), &ops)
    });
    if let Err(e) = result {
        panic!("{abi:?} {dev:?}: {e}");
    }
}

#[test]
fn properties_hold_on_v7_capability_table() {
    property(KernelAbi::V7, HostDevice::CapTable, cases(CAP_CASES));
}

#[test]
fn properties_hold_on_feature_revision_capability_table() {
    property(KernelAbi::Feature, HostDevice::CapTable, cases(CAP_CASES));
}

#[test]
fn properties_hold_on_v7_msix_table() {
    property(KernelAbi::V7, HostDevice::MsixTable, cases(MSIX_CASES));
}

#[test]
fn properties_hold_on_feature_revision_msix_table() {
    property(KernelAbi::Feature, HostDevice::MsixTable, cases(MSIX_CASES));
}

/// A deliberately broken translation: after the real layer has handled a table write, it also
/// programs the raw guest tag as if it named vCPU `tag - 1` pinned to the host CPU of the same
/// number (no tag filtering, no pinning lookup). Test-only; it exists to show the checker
/// catches it.
struct NoTagFiltering(VirtualTph<EmulatedBackend>);

impl NoTagFiltering {
    fn unfiltered(&mut self, effect: &Effect) -> Result<(), String> {
        let width = self.0.guest_control() >> 8 & 3;
        if width == 0 {
            return Ok(());
        }
        let steer: Vec<Steer> = effect
            .entries
            .iter()
            .map(|&i| (i, self.0.guest_table()[usize::from(i)] & 0xff))
            .filter(|(_, t)| *t != 0)
            .map(|(index, t)| Steer::new(index, u32::from(t - 1) % HOST_CPUS))
            .collect();
        if steer.is_empty() {
            return Ok(());
        }
        self.0
            .device_mut()
            .set_entries(&steer)
            .map_err(|e| format!("mutant: {e}"))
    }
}

impl Vmm for NoTagFiltering {
    fn vtph(&self) -> &VirtualTph<EmulatedBackend> {
        &self.0
    }
    fn vtph_mut(&mut self) -> &mut VirtualTph<EmulatedBackend> {
        &mut self.0
    }
    fn write_config(&mut self, offset: u16, data: &[u8]) -> Result<Effect, String> {
        let effect = common::host_ok(self.0.write_config(offset, data))?;
        self.unfiltered(&effect)?;
        Ok(effect)
    }
    fn write_vector_control(&mut self, vector: u16, value: u32) -> Result<Effect, String> {
        let effect = common::host_ok(self.0.write_vector_control(vector, value).effect)?;
        self.unfiltered(&effect)?;
        Ok(effect)
    }
}

#[test]
fn broken_translation_without_tag_filtering_is_caught() {
    for abi in ABIS {
        let mut runner = TestRunner::new(Config {
            cases: cases(MUTANT_CASES),
            failure_persistence: None,
            ..Config::default()
        });
        let dev = HostDevice::CapTable;
        let result = runner.run(&scenario(), |(pins, ops)| {
            let host = common::host_with_tph(abi);
            let vtph = VirtualTph::new(common::client(&host, dev, abi), common::config(dev, &pins))
                .unwrap();
            run(Rig::with_vmm(host, NoTagFiltering(vtph)), &ops)
        });
        match result {
            Err(TestError::Fail(reason, (pins, ops))) => {
                eprintln!("{abi:?}: mutant caught: {reason}\n  pins {pins:?}\n  ops {ops:?}");
            }
            other => panic!("{abi:?}: the broken translation was not caught: {other:?}"),
        }
    }
}
