//! `tphctl emulate`: unmodified programs (two C drivers compiled here with the system `cc`,
//! tphctl's own `session --vfio`, the client's poller example, plain shell commands) run against
//! the emulated kernel. What they print is compared with what the same calls give in-process on
//! the kernel model, so the expectations are the model's answers, not constants.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tph_client::{CpuQuery, Mode, Revision, Steer, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::{Host, HostOptions, KernelAbi};

use common::{stderr, stdout, tests_dir, tphctl_stdin};

/// The default machine's function with DS mode and a 16-entry table in the capability, below a
/// root port with a TPH completer.
const DS_DEVICE: &str = "0000:02:00.0";
/// The CPUs the C drivers steer entries 0, 1, 2 to and fetch tags for.
const CPUS: [u32; 3] = [1, 2, 5];

/// Runs `tphctl emulate ARGS` with `stdin`; `None` (test skipped, with the reason printed) when
/// this machine does not give the harness what it needs.
fn emulate(args: &[&str], stdin: &[u8]) -> Option<Output> {
    let mut full = vec!["emulate"];
    full.extend_from_slice(args);
    let out = tphctl_stdin(&full, stdin);
    let err = stderr(&out);
    if out.status.code() == Some(2)
        && (err.contains("does not offer seccomp") || err.contains("private mount namespace"))
    {
        tph_testkit::skip(format_args!("{err}"));
        return None;
    }
    Some(out)
}

/// Compiles `tests/data/emulate/<name>.c` with the system C compiler into `dir`; `None` (test
/// skipped, said why) when there is no `cc`.
fn compile(name: &str, dir: &Path) -> Option<PathBuf> {
    let src = tests_dir("data/emulate").join(format!("{name}.c"));
    let exe = dir.join(name);
    let run = Command::new("cc")
        .args([
            "-std=c11",
            "-D_DEFAULT_SOURCE",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-o",
        ])
        .arg(&exe)
        .arg(&src)
        .output();
    match run {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tph_testkit::skip(format_args!("no C compiler `cc` on this machine"));
            None
        }
        r => {
            let r = r.unwrap();
            assert!(r.status.success(), "cc {name}.c: {}", stderr(&r));
            Some(exe)
        }
    }
}

/// What the C drivers print, computed in-process on the model with the client: capabilities,
/// Control after enabling DS, the table entries after steering entries 0.. to `CPUS`, the DS
/// tags of `CPUS`, Control after disabling.
fn expected_driver_output(abi: KernelAbi, revision: Revision) -> String {
    let opts = HostOptions::new().with_abi(abi).with_unsafe_ds(true);
    let host = Host::with_default_machine(opts);
    let backend = EmulatedBackend::take_over(&host, DS_DEVICE.parse().unwrap()).unwrap();
    let device = backend.device().clone();
    let mut dev = TphDevice::with_revision(backend, revision).unwrap();
    let caps = dev.capabilities().unwrap();
    let mut want = format!(
        "query: iv {} ds {} table {}\n",
        u8::from(caps.iv),
        u8::from(caps.ds),
        caps.st_table_size
    );
    dev.enable(Mode::Ds).unwrap();
    let control = device.snapshot().control.unwrap();
    want += &format!("enabled: control {control:#010x}\n");
    let steer: Vec<Steer> = (0..)
        .zip(CPUS)
        .map(|(index, cpu)| Steer::new(index, cpu))
        .collect();
    dev.set_entries(&steer).unwrap();
    for (i, st) in device
        .snapshot()
        .st_table
        .iter()
        .take(CPUS.len())
        .enumerate()
    {
        want += &format!("st[{i}] = {st:#06x}\n");
    }
    let queries: Vec<CpuQuery> = CPUS.iter().map(|&cpu| CpuQuery::new(cpu)).collect();
    for (cpu, tag) in CPUS.iter().zip(dev.steering_tags(&queries).unwrap()) {
        want += &format!("cpu {cpu} tag {tag:#06x}\n");
    }
    dev.disable().unwrap();
    let control = device.snapshot().control.unwrap();
    want + &format!("disabled: control {control:#010x}\n")
}

fn cpu_args() -> Vec<String> {
    CPUS.iter().map(ToString::to_string).collect()
}

/// Runs the C driver `name` under `tphctl emulate EXTRA -- driver DS_DEVICE CPUS...` with a
/// trace; returns its output and the trace.
fn run_driver(name: &str, extra: &[&str]) -> Option<(Output, String)> {
    let dir = tempfile::tempdir().unwrap();
    let exe = compile(name, dir.path())?;
    let trace = dir.path().join("trace.txt");
    // The drivers steer to CPUs up to 5: eight emulated CPUs, as in the expectations.
    let mut args = vec![
        "--emulated",
        "--unsafe-ds-mode",
        "--cpus",
        "8",
        "--trace",
        trace.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.extend(["--", exe.to_str().unwrap(), DS_DEVICE]);
    let cpus = cpu_args();
    args.extend(cpus.iter().map(String::as_str));
    let out = emulate(&args, b"")?;
    let trace = std::fs::read_to_string(trace).unwrap();
    Some((out, trace))
}

fn assert_trace_has(trace: &str, needles: &[&str]) {
    for needle in needles {
        assert!(trace.contains(needle), "trace lacks {needle:?}:\n{trace}");
    }
}

#[test]
fn emulate_v7_c_driver_gets_the_in_process_model_answers() {
    let Some((out, trace)) = run_driver("v7_ioctl", &[]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        expected_driver_output(KernelAbi::V7, Revision::V7)
    );
    // The legacy opening, the TPH ioctl, and the hardware accesses it made.
    assert_trace_has(
        &trace,
        &[
            "VFIO_GET_API_VERSION",
            "VFIO_CHECK_EXTENSION",
            "VFIO_GROUP_GET_STATUS",
            "VFIO_GROUP_SET_CONTAINER",
            "VFIO_SET_IOMMU",
            "VFIO_GROUP_GET_DEVICE_FD",
            "VFIO_DEVICE_PCI_TPH",
            "0000:02:00.0 cfg  wr 0x",
        ],
    );
}

/// The feature revision's Control semantics of the primary source: writing the ST Mode value
/// alone enables (the kernel negotiates the requester type), 0 disables; the whole TPH_ST
/// feature needs `enable_unsafe_tph` (`--unsafe-ds-mode`).
#[test]
fn emulate_feature_c_driver_doing_what_the_author_dpdk_code_does_gets_the_model_answers() {
    let Some((out, trace)) = run_driver("feature_dpdk", &["--kernel-abi", "feature"]) else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(
        stdout(&out),
        expected_driver_output(KernelAbi::Feature, Revision::Feature)
    );
    assert_trace_has(&trace, &["VFIO_DEVICE_FEATURE", "pwrite64("]);
}

#[test]
fn emulate_session_vfio_prints_what_the_emulated_session_prints() {
    let script = std::fs::read(tests_dir("data/session/vfio-e2e.in")).unwrap();
    let tphctl = env!("CARGO_BIN_EXE_tphctl");
    let nic = "01:00.0";
    // Eight emulated CPUs, as the in-process session's host has.
    let args = [
        "--emulated",
        "--cpus",
        "8",
        "--",
        tphctl,
        "session",
        "--vfio",
        nic,
    ];
    let Some(out) = emulate(&args, &script) else {
        return;
    };
    // The script includes refused commands on purpose: the session's exit status says so (2),
    // under emulate as in the in-process session; emulate passes the program's status on.
    assert_eq!(out.status.code(), Some(2), "stderr: {}", stderr(&out));
    let emulated = tphctl_stdin(&["session", "--emulated", nic], &script);
    assert_eq!(emulated.status.code(), Some(2));
    assert_eq!(stderr(&out), String::from_utf8_lossy(&emulated.stderr));
    assert!(stdout(&out).contains("st_table (msix, 2048 entries): [0]=0x0101"));
    assert_eq!(stdout(&out), stdout(&emulated));
}

/// `target/<profile>/examples/poller` (built by `cargo test --workspace` with tph-client's
/// tests).
fn poller_example() -> PathBuf {
    Path::new(env!("CARGO_BIN_EXE_tphctl"))
        .parent()
        .unwrap()
        .join("examples/poller")
}

/// Runs the poller example on the NIC with 4 queues under `tphctl emulate EXTRA`, and checks
/// its report against the capabilities the in-process model gives the client on the same host.
fn poller_on_the_nic(abi: KernelAbi, revision: Revision, extra: &[&str]) {
    let poller = poller_example();
    if !poller.exists() {
        tph_testkit::skip(format_args!(
            "{} not built (cargo test --workspace builds it)",
            poller.display()
        ));
        return;
    }
    let nic = "0000:01:00.0";
    let mut args = vec!["--emulated", "--cpus", "8"];
    args.extend_from_slice(extra);
    args.extend(["--", poller.to_str().unwrap(), nic, "4"]);
    let Some(out) = emulate(&args, b"") else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let opts = HostOptions::new()
        .with_abi(abi)
        .with_unsafe_ds(extra.contains(&"--unsafe-ds-mode"));
    let cpus = opts.cpus;
    let host = Host::with_default_machine(opts);
    let backend = EmulatedBackend::take_over(&host, nic.parse().unwrap()).unwrap();
    let caps = TphDevice::with_revision(backend, revision)
        .unwrap()
        .capabilities()
        .unwrap();
    let text = stdout(&out);
    let first = format!(
        "{nic}: IV {} DS {} table {} entries; {cpus} CPUs\n",
        caps.iv, caps.ds, caps.st_table_size
    );
    assert!(text.starts_with(&first), "{text}");
    assert!(
        text.contains("queue 3 -> CPU 3: entry 3 programmed"),
        "{text}"
    );
    let moved = format!(
        "queue 0 poller moved to CPU {}: Programmed {{ index: 0 }}",
        cpus - 1
    );
    assert!(text.contains(&moved), "{text}");
    assert!(
        text.contains("torn down: entries cleared, TPH disabled"),
        "{text}"
    );
}

#[test]
fn emulate_runs_the_client_poller_example_on_the_nic() {
    poller_on_the_nic(KernelAbi::V7, Revision::V7, &[]);
}

#[test]
fn emulate_runs_the_client_poller_example_on_the_nic_on_the_feature_revision() {
    let extra = ["--kernel-abi", "feature", "--unsafe-ds-mode"];
    poller_on_the_nic(KernelAbi::Feature, Revision::Feature, &extra);
}

#[test]
fn emulate_shows_each_tph_function_in_its_own_group_and_the_revision_parameter() {
    let script = "for g in /sys/kernel/iommu_groups/*; do echo ${g##*/} $(ls $g/devices); done; \
                  ls /dev/vfio; cat /sys/module/vfio_pci/parameters/enable_unsafe_tph";
    let args = [
        "--emulated",
        "--kernel-abi",
        "feature",
        "--unsafe-ds-mode",
        "--",
        "sh",
        "-c",
        script,
    ];
    let Some(out) = emulate(&args, b"") else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let host = Host::with_default_machine(HostOptions::default());
    let functions = tph_emulate::emulate::tph_functions(&host);
    assert_eq!(
        functions.len(),
        5,
        "the default machine has five TPH functions"
    );
    let mut want: String = functions
        .iter()
        .map(|(bdf, g)| format!("{g} {bdf}\n"))
        .collect();
    let mut nodes: Vec<String> = functions.iter().map(|(_, g)| g.to_string()).collect();
    nodes.push("vfio".into());
    nodes.sort();
    want += &(nodes.join("\n") + "\nY\n");
    assert_eq!(stdout(&out), want);
}

#[test]
fn emulate_exit_status_is_the_programs() {
    let Some(out) = emulate(&["--emulated", "--", "sh", "-c", "exit 7"], b"") else {
        return;
    };
    assert_eq!(out.status.code(), Some(7), "stderr: {}", stderr(&out));
    let Some(out) = emulate(&["--emulated", "--", "sh", "-c", "kill -TERM $$"], b"") else {
        return;
    };
    assert_eq!(out.status.code(), Some(128 + 15), "killed by SIGTERM");
}

#[test]
fn emulate_missing_program_exits_127_and_says_so() {
    let Some(out) = emulate(&["--emulated", "--", "/nonexistent/driver"], b"") else {
        return;
    };
    assert_eq!(out.status.code(), Some(127));
    assert!(
        stderr(&out).starts_with("tphctl: emulate: /nonexistent/driver: No such file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn emulate_without_program_is_a_usage_error() {
    let out = tphctl_stdin(&["emulate", "--emulated"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("PROGRAM"), "{}", stderr(&out));
}

#[test]
fn emulate_without_cap_sys_admin_exits_2_naming_the_mount_namespace() {
    let run = Command::new("setpriv")
        .args(["--bounding-set", "-sys_admin", "--inh-caps", "-sys_admin"])
        .args([
            env!("CARGO_BIN_EXE_tphctl"),
            "emulate",
            "--emulated",
            "--",
            "true",
        ])
        .output();
    let out = match run {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            tph_testkit::skip(format_args!(
                "no setpriv (util-linux) to drop CAP_SYS_ADMIN"
            ));
            return;
        }
        r => r.unwrap(),
    };
    let err = stderr(&out);
    if err.contains("does not offer seccomp") {
        tph_testkit::skip(format_args!("{err}"));
        return;
    }
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.starts_with(
            "tphctl: emulate: the harness needs a private mount namespace (CAP_SYS_ADMIN"
        ),
        "{err}"
    );
}

#[test]
fn emulate_two_devices_open_at_once_and_a_dup_keeps_a_device_open() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile("two_devices", dir.path()) else {
        return;
    };
    let (a, b) = ("0000:02:00.0", "0000:01:00.0");
    let args = ["--emulated", "--", exe.to_str().unwrap(), a, b];
    let Some(out) = emulate(&args, b"") else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let host = Host::with_default_machine(HostOptions::default());
    let table = |bdf: &str| {
        let backend = EmulatedBackend::take_over(&host, bdf.parse().unwrap()).unwrap();
        let mut dev = TphDevice::with_revision(backend, Revision::V7).unwrap();
        dev.capabilities().unwrap().st_table_size
    };
    let (ta, tb) = (table(a), table(b));
    assert_ne!(ta, tb, "the two devices must be told apart");
    let want = format!("{a} table {ta}\n{b} table {tb}\n{a} table {ta}\n");
    assert_eq!(stdout(&out), want);
}

/// The container/group rules of the fake host (docs/decisions.md, "`tphctl emulate`"), each
/// step of a C program's out-of-order opening answered as mainline VFIO answers it.
#[test]
fn emulate_legacy_opening_out_of_order_is_refused_step_by_step() {
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile("vfio_order", dir.path()) else {
        return;
    };
    let args = [
        "--emulated",
        "--",
        exe.to_str().unwrap(),
        "0000:02:00.0",
        "0000:01:00.0",
    ];
    let Some(out) = emulate(&args, b"") else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let want = "get-device-fd-without-container errno EINVAL\n\
                set-iommu-without-group errno EINVAL\n\
                set-container-to-a-group-fd errno EBADFD\n\
                set-container ok\n\
                set-container-again errno EINVAL\n\
                get-device-fd-without-iommu errno EINVAL\n\
                set-iommu-not-type1 errno ENODEV\n\
                set-iommu ok\n\
                set-iommu-again errno EINVAL\n\
                get-device-fd-of-another-group errno ENODEV\n\
                get-device-fd ok\n";
    assert_eq!(stdout(&out), want);
}

#[test]
fn emulate_keeps_the_machines_other_dev_entries_next_to_the_fake_vfio() {
    let script = "echo hidden > /dev/null && test -c /dev/null && test -e /dev/vfio/vfio \
                  && head -c 4 /dev/urandom | wc -c";
    let Some(out) = emulate(&["--emulated", "--", "sh", "-c", script], b"") else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "4");
}

#[test]
fn emulate_dump_machine_and_cpus_are_what_the_program_sees() {
    let dump = tests_dir("data/intel-dsa-pri-pasid.lspci");
    let script = "ls /sys/bus/pci/devices; cat /sys/devices/system/cpu/present";
    let args = [
        "--dump",
        dump.to_str().unwrap(),
        "--cpus",
        "3",
        "--",
        "sh",
        "-c",
        script,
    ];
    let Some(out) = emulate(&args, b"") else {
        return;
    };
    assert_eq!(out.status.code(), Some(0), "stderr: {}", stderr(&out));
    let text = std::fs::read_to_string(&dump).unwrap();
    let machine = tph_regs::dump::parse_lspci_dump(&text).unwrap();
    let host = Host::new(machine, HostOptions::default());
    let functions = tph_emulate::emulate::tph_functions(&host);
    assert!(!functions.is_empty(), "the DSA dump has a TPH function");
    let mut want: String = functions
        .iter()
        .map(|(bdf, _)| format!("{bdf}\n"))
        .collect();
    want += "0-2\n";
    assert_eq!(stdout(&out), want);
}

/// `tphctl emulate --trace FILE -- signal_cleanup DS_DEVICE` sent `signal` (by name for
/// `kill`) once the program is ready: the program's clean-up calls are answered after the
/// signal, its exit status (40 + the signal) comes back, and the trace is written.
fn signal_reaches_the_program(signal: i32, name: &str) {
    use std::io::{BufRead, BufReader, Read};
    let dir = tempfile::tempdir().unwrap();
    let Some(exe) = compile("signal_cleanup", dir.path()) else {
        return;
    };
    let trace = dir.path().join("trace.txt");
    let mut child = Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(["emulate", "--emulated", "--trace"])
        .arg(&trace)
        .arg("--")
        .arg(&exe)
        .arg(DS_DEVICE)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    if first.is_empty() {
        let out = child.wait_with_output().unwrap();
        let err = stderr(&out);
        if err.contains("does not offer seccomp") || err.contains("private mount namespace") {
            tph_testkit::skip(format_args!("{err}"));
            return;
        }
        panic!("the program never said ready: {err}");
    }
    assert_eq!(first, "ready\n");
    let kill = Command::new("kill")
        .arg(format!("-{name}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(40 + signal), "SIG{name}: {rest}{err}");
    assert!(
        rest.starts_with(&format!("signal {signal}: vendor ")),
        "SIG{name}: clean-up calls not answered: {rest}{err}"
    );
    let trace = std::fs::read_to_string(&trace).unwrap();
    assert!(
        trace.contains(&format!("\n# exit {} (", 40 + signal)),
        "SIG{name}: trace not finished: {trace}"
    );
}

#[test]
fn emulate_passes_sigterm_on_and_answers_the_clean_up() {
    signal_reaches_the_program(15, "TERM");
}

#[test]
fn emulate_passes_sigint_sighup_and_sigquit_on() {
    signal_reaches_the_program(2, "INT");
    signal_reaches_the_program(1, "HUP");
    signal_reaches_the_program(3, "QUIT");
}

#[test]
fn emulate_refuses_an_unwritable_trace_before_the_program_starts() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("ran");
    let script = format!("touch {}", marker.display());
    for (trace, why) in [
        (dir.path().join("missing/trace.txt"), "No such file"),
        (dir.path().to_path_buf(), "is a folder"),
    ] {
        let out = tphctl_stdin(
            &[
                "emulate",
                "--emulated",
                "--trace",
                trace.to_str().unwrap(),
                "--",
                "sh",
                "-c",
                &script,
            ],
            b"",
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert!(stderr(&out).contains("--trace"), "{}", stderr(&out));
        assert!(stderr(&out).contains(why), "{}", stderr(&out));
        assert!(
            !marker.exists(),
            "the program ran before --trace was checked"
        );
    }
}
