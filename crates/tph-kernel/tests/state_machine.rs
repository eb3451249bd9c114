//! Property-based state machine: random op sequences (typed ops, raw byte buffers, MSI-X
//! changes, resets, reopens, injected write failures) against the invariants of issue 4:
//! no device spec violation ever, no write outside the table, after a failed SET_ST no entry
//! of that call keeps a new non-zero value, after the last close TPH is off in hardware.

mod common;

use common::*;
use proptest::prelude::*;
use tph_kernel::hw::{Abort, Access, Effect};
use tph_kernel::vfio::abi::{self, Entry};
use tph_kernel::{DeviceFd, Host, HostOptions, VfioDevice};

#[derive(Clone, Debug)]
enum Op {
    Enable(u8),
    Disable,
    GetCap,
    SetSt(Vec<(u32, u8, u16)>),
    GetSt(Vec<(u32, u8)>),
    Raw(Vec<u8>),
    SetIrqs(u32),
    Reset,
    Reopen,
    InjectFault(u32),
    FaultThenSetSt(u32, Vec<(u32, u8, u16)>),
}

/// Mostly valid values, so that whole calls pass validation and reach the hardware.
fn cpu() -> impl Strategy<Value = u32> {
    prop_oneof![8 => 0u32..8, 1 => 8u32..10, 1 => Just(abi::CPU_CLEAR)]
}

fn mem_type() -> impl Strategy<Value = u8> {
    prop_oneof![9 => 0u8..2, 1 => 2u8..4]
}

fn index() -> impl Strategy<Value = u16> {
    prop_oneof![9 => 0u16..16, 1 => 16u16..2100]
}

fn set_st_entries() -> impl Strategy<Value = Vec<(u32, u8, u16)>> {
    proptest::collection::vec((cpu(), mem_type(), index()), 0..6)
}

fn raw() -> impl Strategy<Value = Vec<u8>> {
    let shaped = (0u32..6, proptest::collection::vec(any::<u8>(), 8..60)).prop_map(|(op, rest)| {
        let mut v = ((rest.len() + 8) as u32).to_le_bytes().to_vec();
        v.extend_from_slice(&op.to_le_bytes());
        v.extend_from_slice(&rest);
        v
    });
    prop_oneof![proptest::collection::vec(any::<u8>(), 0..48), shaped]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => prop_oneof![Just(abi::MODE_IV), Just(abi::MODE_DS), any::<u8>()].prop_map(Op::Enable),
        1 => Just(Op::Disable),
        1 => Just(Op::GetCap),
        4 => set_st_entries().prop_map(Op::SetSt),
        2 => proptest::collection::vec((cpu(), mem_type()), 0..4).prop_map(Op::GetSt),
        3 => raw().prop_map(Op::Raw),
        2 => prop_oneof![0u32..20, Just(2048)].prop_map(Op::SetIrqs),
        1 => Just(Op::Reset),
        1 => Just(Op::Reopen),
        1 => (0u32..12).prop_map(Op::InjectFault),
        2 => ((0u32..16), set_st_entries()).prop_map(|(n, e)| Op::FaultThenSetSt(n, e)),
    ]
}

struct Machine {
    _host: Host,
    dev: VfioDevice,
    fd: Option<DeviceFd>,
}

impl Machine {
    fn fd(&self) -> &DeviceFd {
        self.fd.as_ref().expect("open")
    }

    fn tph(&self, arg: &mut [u8]) -> bool {
        self.fd().ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, arg).is_ok()
    }
}

fn injected(trace: &[Access]) -> bool {
    trace.iter().any(|a| {
        matches!(
            a,
            Access::ConfigWrite {
                effect: Effect::Aborted(Abort::Injected),
                ..
            } | Access::MsixWrite {
                effect: Effect::Aborted(Abort::Injected),
                ..
            }
        )
    })
}

/// Config writes the model may make: TPH Control, the capability ST table, MSI-X Message
/// Control, Device Control (FLR) and Command (restore after FLR).
fn allowed_config_write(dev: &VfioDevice, offset: u16) -> bool {
    let (tph, msix, exp) = dev.with_hardware(|hw| (hw.tph(), hw.msix(), hw.express()));
    let ctrl = tph.map(|t| t.offset + 8);
    let table = tph.map(|t| (t.offset + 0xc, t.offset + 0xc + 2 * t.cap_entries()));
    offset == 0x4
        || Some(offset) == ctrl
        || table.is_some_and(|(lo, hi)| (lo..hi).contains(&offset))
        || msix.is_some_and(|m| offset == m.offset + 2)
        || exp.is_some_and(|e| offset == e + 8)
}

fn check_writes(m: &Machine, trace: &[Access]) -> Result<(), TestCaseError> {
    let vectors = m
        .dev
        .with_hardware(|hw| hw.msix().map_or(0, |x| x.table_size));
    for a in trace {
        match a {
            Access::ConfigWrite { offset, .. } => {
                prop_assert!(
                    allowed_config_write(&m.dev, *offset),
                    "write at {offset:#x}"
                );
            }
            Access::MsixWrite { vector, .. } => prop_assert!(*vector < vectors),
            _ => {}
        }
    }
    Ok(())
}

fn run_set_st(m: &Machine, ents: &[(u32, u8, u16)]) -> Result<(), TestCaseError> {
    let entries: Vec<Entry> = ents
        .iter()
        .map(|(c, t, i)| Entry::new(*c, *t, *i))
        .collect();
    let before = m.dev.snapshot().st_table;
    let mut arg = abi::encode_st(abi::OP_SET_ST, &entries);
    if m.tph(&mut arg) {
        return Ok(());
    }
    let after = m.dev.snapshot().st_table;
    for e in &entries {
        let i = usize::from(e.index);
        let (b, a) = (before.get(i), after.get(i));
        prop_assert!(a == b || a == Some(&0), "entry {i}: {b:?} -> {a:?}");
    }
    Ok(())
}

fn step(m: &mut Machine, op: &Op) -> Result<(), TestCaseError> {
    match op {
        Op::Enable(mode) => {
            m.tph(&mut abi::encode_op(
                abi::OP_ENABLE,
                [*mode, 0, 0, 0, 0, 0, 0, 0],
            ));
        }
        Op::Disable => {
            m.tph(&mut abi::encode_op(abi::OP_DISABLE, [0; 8]));
        }
        Op::GetCap => {
            m.tph(&mut abi::encode_op(abi::OP_GET_CAP, [0; 8]));
        }
        Op::SetSt(ents) => run_set_st(m, ents)?,
        Op::GetSt(cpus) => {
            let e: Vec<Entry> = cpus.iter().map(|(c, t)| Entry::new(*c, *t, 0)).collect();
            m.tph(&mut abi::encode_st(abi::OP_GET_ST, &e));
        }
        Op::Raw(bytes) => {
            let mut b = bytes.clone();
            m.tph(&mut b);
        }
        Op::SetIrqs(n) => {
            let _ = m.fd().set_irqs(*n);
        }
        Op::Reset => {
            let _ = m.fd().reset();
        }
        Op::Reopen => reopen(m)?,
        Op::InjectFault(n) => m.dev.inject_write_failure(*n),
        Op::FaultThenSetSt(n, ents) => {
            m.dev.inject_write_failure(*n);
            run_set_st(m, ents)?;
        }
    }
    Ok(())
}

fn reopen(m: &mut Machine) -> Result<(), TestCaseError> {
    if let Some(fd) = m.fd.take() {
        fd.close();
    }
    let trace = m.dev.drain_trace();
    if !injected(&trace) {
        prop_assert_eq!(m.dev.snapshot().control, Some(0), "TPH on after last close");
    }
    check_writes(m, &trace)?;
    m.fd = Some(m.dev.open().expect("reopen"));
    Ok(())
}

fn machine(device: &str, unsafe_ds: bool) -> Machine {
    let host = Host::with_default_machine(HostOptions {
        unsafe_ds,
        ..HostOptions::default()
    });
    let dev = host.take_over(bdf(device)).expect("take over");
    let fd = Some(dev.open().expect("open"));
    Machine {
        _host: host,
        dev,
        fd,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn random_op_sequences_keep_invariants(
        device in prop_oneof![Just(MSIX_DEV), Just(CAP_DEV), Just(RCIEP_DEV), Just(DS_ONLY_DEV)],
        unsafe_ds in any::<bool>(),
        ops in proptest::collection::vec(op(), 1..40),
    ) {
        let mut m = machine(device, unsafe_ds);
        for op in &ops {
            step(&mut m, op)?;
            let trace = m.dev.drain_trace();
            check_writes(&m, &trace)?;
            prop_assert!(m.dev.violations().is_empty(), "{:?} after {op:?}", m.dev.violations());
        }
        let fd = m.fd.take().expect("open");
        fd.close();
        let trace = m.dev.drain_trace();
        if !injected(&trace) {
            prop_assert_eq!(m.dev.snapshot().control, Some(0));
        }
    }
}
