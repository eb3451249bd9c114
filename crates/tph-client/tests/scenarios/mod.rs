//! The client conformance scenarios, shared by `conformance.rs` (v7) and
//! `conformance_feature.rs` (the feature revision): each scenario is a host set-up and a body of
//! client calls rendered as a transcript; the runners play it on the in-process emulated backend
//! and across the real syscall boundary (a supervised child issuing real system calls,
//! answered by the same kernel model). `expect.rs` states what each scenario must end with on
//! each revision; `syscall_boundary_tests!` makes one test per scenario for a test binary.
#![allow(dead_code)] // each test binary uses a different subset

use std::process::Command;
use std::time::Duration;

use tph_client::backend::{Backend, FdBackend};
use tph_client::steer::{Queue, QueueSteering};
use tph_client::{CpuQuery, Error, MemType, Mode, Revision, Steer, TphDevice};
use tph_emu::EmulatedBackend;
use tph_emulate::harness::{supervise_in, user_notif_available, Sandbox, TRAPPED_REQUESTS};
use tph_emulate::model::{ModelHandler, TRAPPED_FEATURE_REQUESTS};
use tph_kernel::{Host, HostOptions, KernelAbi, VfioDevice};
use tph_regs::machine::Bdf;

pub mod expect;

/// Which kernel a test binary plays the scenarios against, and how its child half is found.
pub struct Kernel {
    /// What the client is told the kernel speaks.
    pub revision: Revision,
    /// What the model host speaks.
    pub abi: KernelAbi,
    /// Environment variable naming the scenario for the child half.
    pub child_env: &'static str,
    /// The test (in the same binary) that is the child half.
    pub child_test: &'static str,
    /// The unsafe parameter's value in `Param::ForTph` scenarios (on for the feature revision,
    /// whose parameter gates all of TPH; off for v7 unless a comparison wants it on).
    pub for_tph: bool,
}

impl Kernel {
    fn trapped(&self) -> (&'static [u32], Sandbox) {
        match self.abi {
            KernelAbi::V7 => (&TRAPPED_REQUESTS, Sandbox::default()),
            KernelAbi::Feature => (
                &TRAPPED_FEATURE_REQUESTS,
                ModelHandler::config_region_sandbox(),
            ),
            other => panic!("no trapped requests for {other:?}"),
        }
    }
}

const TIMEOUT: Duration = Duration::from_secs(60);

/// Default machine devices (see `tph_kernel::machines`).
const NIC_MSIX: &str = "01:00.0"; // IV/DS, table in MSI-X (2048)
const NIC_CAP: &str = "02:00.0"; // IV/DS, table in capability (16)
const ACCEL_DS: &str = "03:00.0"; // DS only, no table
const NIC_NO_COMPLETER: &str = "04:00.0"; // root port without TPH completer

/// The host's unsafe module parameter. The revisions gate different things with it: v7's
/// `enable_unsafe_tph_ds_mode` gates DS mode only; the feature revision's `enable_unsafe_tph`
/// gates the whole TPH_ST feature and enabling through Control (`later-revisions.md`, primary
/// evidence), so a scenario about IV mode needs it on there.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Param {
    /// Off on both revisions (the scenario is about the gate).
    Off,
    /// On on both revisions.
    On,
    /// As the kernel says (`Kernel::for_tph`): off on v7 (DS hidden), on on the feature
    /// revision (TPH usable at all).
    ForTph,
}

pub struct Setup {
    bdf: &'static str,
    param: Param,
    notph: bool,
}

impl Setup {
    /// The parameter's value on kernel `k`.
    fn param_on(&self, k: &Kernel) -> bool {
        match self.param {
            Param::Off => false,
            Param::On => true,
            Param::ForTph => k.for_tph,
        }
    }
}

const fn setup(bdf: &'static str, param: Param, notph: bool) -> Setup {
    Setup { bdf, param, notph }
}

/// Whether a scenario's outcome may differ between the revisions because their gates differ:
/// the parameter is off on both and the scenario gets past the capability (no `pci=notph`).
pub fn gate_differs(name: &str) -> bool {
    let (_, s, _) = scenario(name);
    s.param == Param::Off && !s.notph
}

pub type Scenario = fn(&mut dyn Dev, &mut Vec<String>);

/// The scenarios: name, host set-up, body.
const SCENARIOS: &[(&str, Setup, Scenario)] = &[
    (
        "get_cap_hides_ds_by_default",
        setup(NIC_MSIX, Param::Off, false),
        cap_only,
    ),
    (
        "get_cap_shows_ds_with_unsafe_param",
        setup(NIC_MSIX, Param::On, false),
        cap_only,
    ),
    (
        "notph_host_reports_no_tph",
        setup(NIC_MSIX, Param::Off, true),
        cap_and_enable_iv,
    ),
    (
        "enable_ds_gate_off_is_refused",
        setup(NIC_CAP, Param::Off, false),
        enable_ds,
    ),
    (
        "iv_with_unsafe_param_off",
        setup(NIC_CAP, Param::Off, false),
        iv_gate_off,
    ),
    (
        "enable_twice_is_busy",
        setup(NIC_CAP, Param::ForTph, false),
        enable_twice,
    ),
    (
        "enable_without_root_port_completer_is_refused",
        setup(NIC_NO_COMPLETER, Param::ForTph, false),
        cap_and_enable_iv,
    ),
    (
        "set_st_msix_needs_enabled_vector",
        setup(NIC_MSIX, Param::ForTph, false),
        msix_vectors,
    ),
    (
        "set_st_index_beyond_table_is_refused",
        setup(NIC_CAP, Param::ForTph, false),
        index_beyond,
    ),
    (
        "set_st_all_or_nothing_on_bad_cpu",
        setup(NIC_CAP, Param::ForTph, false),
        all_or_nothing,
    ),
    (
        "set_st_batch_of_runs_is_all_or_nothing",
        setup(NIC_MSIX, Param::ForTph, false),
        batch_of_runs,
    ),
    (
        "set_st_needs_tph_enabled",
        setup(NIC_CAP, Param::ForTph, false),
        set_without_enable,
    ),
    (
        "set_st_clear_with_all_ones_cpu",
        setup(NIC_CAP, Param::ForTph, false),
        set_then_clear,
    ),
    (
        "set_st_without_table_is_no_table",
        setup(ACCEL_DS, Param::On, false),
        ds_no_table,
    ),
    (
        "get_st_needs_ds_mode",
        setup(NIC_CAP, Param::On, false),
        get_st_in_iv,
    ),
    (
        "get_st_ds_returns_tags",
        setup(ACCEL_DS, Param::On, false),
        ds_tags,
    ),
    (
        "reset_keeps_core_enabled_tph",
        setup(NIC_CAP, Param::ForTph, false),
        reset_keeps,
    ),
    (
        "raw_buffers_get_kernel_errno",
        setup(NIC_CAP, Param::ForTph, false),
        raw_buffers,
    ),
    (
        "raw_feature_buffers_get_kernel_errno",
        setup(NIC_CAP, Param::ForTph, false),
        raw_feature_buffers,
    ),
    (
        "queue_steering_binds_retargets_tears_down",
        setup(NIC_MSIX, Param::ForTph, false),
        steering,
    ),
];

/// A client handle over either backend.
pub type AnyDev = TphDevice<Box<dyn Backend>>;
/// One step of a scenario: a client call rendered as text.
pub type Step<'a> = &'a mut dyn FnMut(&mut AnyDev) -> Result<String, Error>;

/// The client calls a scenario makes, for either backend.
pub trait Dev {
    fn call(&mut self, what: &str, t: &mut Vec<String>, f: Step<'_>);
    fn take(&mut self) -> AnyDev;
    fn put(&mut self, d: AnyDev);
}

pub struct Holder(pub Option<AnyDev>);

impl Dev for Holder {
    fn call(&mut self, what: &str, t: &mut Vec<String>, f: Step<'_>) {
        let Some(d) = self.0.as_mut() else {
            t.push(format!("{what}: no device"));
            return;
        };
        let line = match f(d) {
            Ok(s) => format!("{what}: ok {s}"),
            Err(e) => format!("{what}: err {} | {e}", e.errno().map_or("-", |n| n.name())),
        };
        t.push(line);
    }
    fn take(&mut self) -> AnyDev {
        self.0.take().expect("device present")
    }
    fn put(&mut self, d: AnyDev) {
        self.0 = Some(d);
    }
}

fn ok<T>(r: Result<T, Error>) -> Result<String, Error> {
    r.map(|_| String::new())
}

fn vm(cpu: u32) -> CpuQuery {
    CpuQuery::new(cpu)
}

fn st(index: u16, cpu: u32) -> Steer {
    Steer::new(index, cpu)
}

fn cap(d: &mut dyn Dev, t: &mut Vec<String>) {
    d.call("cap", t, &mut |d| {
        d.capabilities().map(|c| format!("{c:?}"))
    });
}

fn cap_only(d: &mut dyn Dev, t: &mut Vec<String>) {
    cap(d, t);
}

fn cap_and_enable_iv(d: &mut dyn Dev, t: &mut Vec<String>) {
    cap(d, t);
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
}

/// IV mode end to end with the unsafe parameter off: v7 allows it, the feature revision's
/// parameter gates all of TPH.
fn iv_gate_off(d: &mut dyn Dev, t: &mut Vec<String>) {
    cap(d, t);
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
    d.call("set-st 0=1", t, &mut |d| ok(d.set_entries(&[st(0, 1)])));
    d.call("disable", t, &mut |d| ok(d.disable()));
}

fn enable_ds(d: &mut dyn Dev, t: &mut Vec<String>) {
    d.call("enable ds", t, &mut |d| ok(d.enable(Mode::Ds)));
}

fn enable_twice(d: &mut dyn Dev, t: &mut Vec<String>) {
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
    d.call("disable", t, &mut |d| ok(d.disable()));
    d.call("disable", t, &mut |d| ok(d.disable()));
}

fn msix_vectors(d: &mut dyn Dev, t: &mut Vec<String>) {
    cap(d, t);
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
    d.call("set-st 0=1", t, &mut |d| ok(d.set_entries(&[st(0, 1)])));
    d.call("irqs 4", t, &mut |d| {
        ok(tph_testkit::enable_msix(d, 4).map(drop))
    });
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
    d.call("set-st 0..3", t, &mut |d| {
        ok(d.set_entries(&[st(0, 1), st(1, 2), st(2, 3), st(3, 4)]))
    });
    d.call("set-st 4=1", t, &mut |d| ok(d.set_entries(&[st(4, 1)])));
}

fn index_beyond(d: &mut dyn Dev, t: &mut Vec<String>) {
    cap(d, t);
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
    d.call("set-st 16=1", t, &mut |d| ok(d.set_entries(&[st(16, 1)])));
}

fn all_or_nothing(d: &mut dyn Dev, t: &mut Vec<String>) {
    cap(d, t);
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
    d.call("set-st 0=1 1=99", t, &mut |d| {
        ok(d.set_entries(&[st(0, 1), st(1, 99)]))
    });
}

/// Two contiguous runs (indexes 0-1 and 5): the feature adapter sends two calls, and the
/// second is refused (vector 5 not enabled) after the first was programmed.
fn batch_of_runs(d: &mut dyn Dev, t: &mut Vec<String>) {
    d.call("irqs 4", t, &mut |d| {
        ok(tph_testkit::enable_msix(d, 4).map(drop))
    });
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
    d.call("set-st 0=1 1=2 5=3", t, &mut |d| {
        ok(d.set_entries(&[st(0, 1), st(1, 2), st(5, 3)]))
    });
    d.call("set-st 2=1 3=2", t, &mut |d| {
        ok(d.set_entries(&[st(2, 1), st(3, 2)]))
    });
}

fn set_without_enable(d: &mut dyn Dev, t: &mut Vec<String>) {
    d.call("set-st 0=1", t, &mut |d| ok(d.set_entries(&[st(0, 1)])));
}

fn set_then_clear(d: &mut dyn Dev, t: &mut Vec<String>) {
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
    d.call("set-st 0=1 5=3", t, &mut |d| {
        ok(d.set_entries(&[st(0, 1), st(5, 3)]))
    });
    d.call("clear 5", t, &mut |d| ok(d.clear_entries(&[5])));
}

fn ds_no_table(d: &mut dyn Dev, t: &mut Vec<String>) {
    cap(d, t);
    d.call("enable ds", t, &mut |d| ok(d.enable(Mode::Ds)));
    d.call("set-st 0=1", t, &mut |d| ok(d.set_entries(&[st(0, 1)])));
}

fn get_st_in_iv(d: &mut dyn Dev, t: &mut Vec<String>) {
    d.call("get-st 1", t, &mut |d| {
        d.steering_tags(&[vm(1)]).map(|v| format!("{v:?}"))
    });
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
    d.call("get-st 1", t, &mut |d| {
        d.steering_tags(&[vm(1)]).map(|v| format!("{v:?}"))
    });
}

fn ds_tags(d: &mut dyn Dev, t: &mut Vec<String>) {
    d.call("enable ds", t, &mut |d| ok(d.enable(Mode::Ds)));
    let q = [
        vm(0),
        vm(1),
        CpuQuery::new(2).with_mem(MemType::Persistent),
        vm(7),
    ];
    d.call("get-st 0 1 2:pm 7", t, &mut |d| {
        d.steering_tags(&q).map(|v| format!("{v:?}"))
    });
    d.call("get-st 8", t, &mut |d| {
        d.steering_tags(&[vm(8)]).map(|v| format!("{v:?}"))
    });
}

fn reset_keeps(d: &mut dyn Dev, t: &mut Vec<String>) {
    d.call("enable iv", t, &mut |d| ok(d.enable(Mode::Iv)));
    d.call("set-st 0=2 1=3", t, &mut |d| {
        ok(d.set_entries(&[st(0, 2), st(1, 3)]))
    });
    d.call("reset", t, &mut |d| ok(d.reset()));
    d.call("set-st 2=4", t, &mut |d| ok(d.set_entries(&[st(2, 4)])));
}

/// How raw argument bytes are sent: the v7 ioctl or `VFIO_DEVICE_FEATURE`.
type Send = fn(&mut AnyDev, &mut [u8]) -> Result<i32, tph_client::Errno>;

fn raw(d: &mut dyn Dev, t: &mut Vec<String>, send: Send, what: &str, bytes: Vec<u8>) {
    d.call(what, t, &mut |d| {
        let mut b = bytes.clone();
        let r = send(d, &mut b);
        Ok(format!("{:?} {:02x?}", r.map_err(|e| e.name()), b))
    });
}

/// `VFIO_DEVICE_PCI_TPH` argument bytes: `argsz`, `op`, then eight payload bytes.
fn tph_arg(argsz: u8, op: u8, payload: [u8; 8]) -> Vec<u8> {
    [argsz, 0, 0, 0, op, 0, 0, 0]
        .into_iter()
        .chain(payload)
        .collect()
}

fn raw_buffers(d: &mut dyn Dev, t: &mut Vec<String>) {
    let cases = [
        ("raw unknown op", tph_arg(16, 9, [0; 8])),
        ("raw argsz 8", tph_arg(8, 0, [0; 8])),
        (
            "raw get-cap",
            tph_arg(16, 0, [0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0]),
        ),
        (
            "raw enable reserved",
            tph_arg(16, 1, [1, 1, 0, 0, 0, 0, 0, 0]),
        ),
        ("raw argsz beyond", tph_arg(64, 0, [0; 8])),
        ("raw set-st count 0", tph_arg(16, 4, [0; 8])),
    ];
    for (what, bytes) in cases {
        raw(d, t, AnyDev::raw_ioctl, what, bytes);
    }
}

/// `VFIO_DEVICE_FEATURE` argument bytes: `argsz`, `flags`, then `payload` words.
fn feature_arg(argsz: u32, flags: u32, payload: &[u32]) -> Vec<u8> {
    [argsz, flags]
        .iter()
        .chain(payload)
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

fn raw_feature_buffers(d: &mut dyn Dev, t: &mut Vec<String>) {
    use tph_client::abi::{FEATURE_GET, FEATURE_PROBE, FEATURE_SET, FEATURE_TPH_ST};
    let tph = FEATURE_TPH_ST;
    let cases = [
        (
            "raw probe set",
            feature_arg(8, FEATURE_PROBE | FEATURE_SET | tph, &[]),
        ),
        (
            "raw probe get",
            feature_arg(8, FEATURE_PROBE | FEATURE_GET | tph, &[]),
        ),
        (
            "raw unknown feature",
            feature_arg(8, FEATURE_PROBE | 12, &[]),
        ),
        (
            "raw get and set",
            feature_arg(20, FEATURE_GET | FEATURE_SET | tph, &[0, 1 << 16, 1]),
        ),
        ("raw argsz 4", feature_arg(4, FEATURE_PROBE | tph, &[])),
        (
            "raw argsz beyond",
            feature_arg(64, FEATURE_SET | tph, &[0, 1 << 16, 1]),
        ),
        (
            "raw set count 0",
            feature_arg(16, FEATURE_SET | tph, &[0, 0]),
        ),
    ];
    let send: Send = |d, b| d.backend_mut().device_feature(b);
    for (what, bytes) in cases {
        raw(d, t, send, what, bytes);
    }
}

fn steering(d: &mut dyn Dev, t: &mut Vec<String>) {
    d.call("irqs 8", t, &mut |d| {
        ok(tph_testkit::enable_msix(d, 8).map(drop))
    });
    let dev = d.take();
    let (dev, lines) = steer_queues(dev);
    t.extend(lines);
    d.put(dev);
}

fn steer_queues(dev: AnyDev) -> (AnyDev, Vec<String>) {
    let mut s = QueueSteering::start(dev, Mode::Iv).expect("enable IV");
    let queues: Vec<Queue> = (0..8).map(|q| Queue::new(q, q, u32::from(q % 4))).collect();
    let mut lines = vec![format!(
        "bind: {:?}",
        s.bind(&queues).map_err(|e| e.to_string())
    )];
    lines.push(format!(
        "retarget: {:?}",
        s.retarget(3, 7).map_err(|e| e.to_string())
    ));
    lines.push(format!(
        "retarget unknown: {:?}",
        s.retarget(42, 1).map_err(|e| e.to_string())
    ));
    let dev = s.teardown().expect("teardown");
    lines.push("teardown: ok".into());
    (dev, lines)
}

// ---- running a scenario on each backend ----

/// Every scenario's name.
pub fn names() -> impl Iterator<Item = &'static str> {
    SCENARIOS.iter().map(|(n, _, _)| *n)
}

pub fn scenario(name: &str) -> &'static (&'static str, Setup, Scenario) {
    SCENARIOS
        .iter()
        .find(|(n, _, _)| *n == name)
        .expect("known scenario")
}

fn host(k: &Kernel, s: &Setup) -> (Host, Bdf) {
    let options = HostOptions::new()
        .with_unsafe_ds(s.param_on(k))
        .with_notph(s.notph)
        .with_abi(k.abi);
    (
        Host::with_default_machine(options),
        s.bdf.parse().expect("bdf"),
    )
}

/// A played scenario: its transcript, the device's final TPH registers and hardware trace.
fn outcome(t: Vec<String>, device: &VfioDevice) -> (Vec<String>, String, Vec<String>) {
    let trace = device
        .drain_trace()
        .iter()
        .map(ToString::to_string)
        .collect();
    (t, format!("{:?}", device.snapshot()), trace)
}

/// Transcript, final snapshot and trace of the scenario on the in-process emulated backend.
pub fn run_emulated(k: &Kernel, name: &str) -> (Vec<String>, String, Vec<String>) {
    let (_, setup, body) = scenario(name);
    let (host, bdf) = host(k, setup);
    let backend = EmulatedBackend::take_over(&host, bdf).expect("take over");
    let device = backend.device().clone();
    device.drain_trace();
    let boxed: Box<dyn Backend> = Box::new(backend);
    let mut holder = Holder(Some(
        TphDevice::with_revision(boxed, k.revision).expect("revision"),
    ));
    let mut t = Vec::new();
    body(&mut holder, &mut t);
    outcome(t, &device)
}

/// The same, with the real backend in a supervised child.
pub fn run_across_boundary(k: &Kernel, name: &str) -> (Vec<String>, String, Vec<String>) {
    let (_, setup, _) = scenario(name);
    let (host, bdf) = host(k, setup);
    let device = host.take_over(bdf).expect("take over");
    let mut handler = ModelHandler::new(device.open().expect("open"));
    device.drain_trace();
    let mut cmd = Command::new(std::env::current_exe().expect("exe"));
    cmd.args([
        "--exact",
        k.child_test,
        "--include-ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    cmd.env(k.child_env, name);
    let (requests, sandbox) = k.trapped();
    let out = supervise_in(cmd, requests, &sandbox, &mut handler, TIMEOUT).expect("supervise");
    assert!(
        out.status.success(),
        "child failed:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    assert!(out.answered > 0, "no call crossed the boundary");
    eprintln!(
        "{name}: {} trapped calls answered by the model",
        out.answered
    );
    let t = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once("@@ ").map(|(_, r)| r.to_string()))
        .collect();
    outcome(t, &device)
}

/// The child half: plays the scenario named in `k.child_env` through `FdBackend` (real system
/// calls) and prints the transcript for the supervisor.
pub fn child_half(k: &Kernel) {
    let Ok(name) = std::env::var(k.child_env) else {
        return;
    };
    let (_, _, body) = scenario(&name);
    let null = std::fs::File::open("/dev/null").expect("/dev/null");
    let cpus = Some(HostOptions::default().cpus);
    let boxed: Box<dyn Backend> = Box::new(FdBackend::new(null).with_cpu_count(cpus));
    let mut holder = Holder(Some(
        TphDevice::with_revision(boxed, k.revision).expect("revision"),
    ));
    let mut t = Vec::new();
    body(&mut holder, &mut t);
    for line in t {
        println!("@@ {line}");
    }
}

/// Runs `name` on both backends, requires identical results, returns the transcript and the
/// final TPH registers.
pub fn both(k: &Kernel, name: &str) -> (Vec<String>, String) {
    let (t, snap, trace) = run_emulated(k, name);
    if !user_notif_available() {
        tph_testkit::skip(format_args!(
            "the syscall-boundary half: this kernel refuses seccomp user notification"
        ));
        return (t, snap);
    }
    let (t2, snap2, trace2) = run_across_boundary(k, name);
    assert_eq!(t, t2, "transcripts differ between backends");
    assert_eq!(snap, snap2, "final TPH registers differ between backends");
    assert_eq!(trace, trace2, "hardware accesses differ between backends");
    (t, snap)
}

/// Plays `name` on both backends of kernel `k` and checks every fact `expect.rs` states of it
/// on that revision.
pub fn check(k: &Kernel, name: &str) {
    let facts = expect::facts(k.abi, name);
    assert!(!facts.is_empty(), "{name}: no expectation in expect.rs");
    let (t, regs) = both(k, name);
    for fact in facts {
        fact.check(name, &t, &regs);
    }
}

/// Requires that `tested` names every scenario with facts on `k`'s revision, and that every
/// scenario has facts in `expect.rs`.
pub fn all_played(k: &Kernel, tested: &[&str]) {
    let expected: Vec<_> = expect::scenarios().collect();
    assert_eq!(
        names().collect::<Vec<_>>(),
        expected,
        "scenarios vs expect.rs"
    );
    for name in names() {
        let has_facts = !expect::facts(k.abi, name).is_empty();
        assert_eq!(tested.contains(&name), has_facts, "{name}: tested vs facts");
    }
}

/// One `#[test]` per scenario in a module `$module` (named `syscall_boundary_<revision>`), each
/// playing its scenario on kernel `$kernel` (a `Kernel` const at the test binary's root) with
/// `check`: the scenarios every revision plays, then `$extra` ones; plus a test that every
/// scenario with facts on this revision is played.
macro_rules! syscall_boundary_tests {
    ($module:ident, $kernel:ident $(; $extra:ident)*) => {
        $crate::scenarios::syscall_boundary_tests!(
            $module,
            $kernel:
            get_cap_hides_ds_by_default,
            get_cap_shows_ds_with_unsafe_param,
            notph_host_reports_no_tph,
            enable_ds_gate_off_is_refused,
            iv_with_unsafe_param_off,
            enable_twice_is_busy,
            enable_without_root_port_completer_is_refused,
            set_st_msix_needs_enabled_vector,
            set_st_index_beyond_table_is_refused,
            set_st_all_or_nothing_on_bad_cpu,
            set_st_batch_of_runs_is_all_or_nothing,
            set_st_needs_tph_enabled,
            set_st_clear_with_all_ones_cpu,
            set_st_without_table_is_no_table,
            get_st_needs_ds_mode,
            get_st_ds_returns_tags,
            reset_keeps_core_enabled_tph,
            raw_buffers_get_kernel_errno,
            queue_steering_binds_retargets_tears_down,
            $($extra,)*
        );
    };
    ($module:ident, $kernel:ident: $($scenario:ident),+ $(,)?) => {
        mod $module {
            $(
                #[test]
                fn $scenario() {
                    $crate::scenarios::check(&super::$kernel, stringify!($scenario));
                }
            )+

            #[test]
            fn every_scenario_with_facts_has_a_test() {
                $crate::scenarios::all_played(&super::$kernel, &[$(stringify!($scenario)),+]);
            }
        }
    };
}
pub(crate) use syscall_boundary_tests;
