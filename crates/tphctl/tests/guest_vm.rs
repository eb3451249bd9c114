//! The VM layer served to a real guest: `tphctl serve --vm` puts `tph-vmm`'s virtual function
//! in front of an emulated host function (02:00.0: ST table of 16 in the capability; through
//! QEMU a table in MSI-X never reaches the server, see `real-linux-rig.md`), QEMU 11.1 (the
//! rig's) shows it behind a root port, and the rig's 7.3 kernel drives it through the guest
//! test module: the kernel's own TPH core enables TPH, reads each vCPU's tag from the SSDT
//! `--ssdt` generated, and writes it into the virtual table.
//!
//! The host firmware is a table written here (`FIRMWARE`), so every host tag below is worked
//! out from it: processor UID u (host CPU u) has VM tag 0x30+u (16-bit 0x3300+u). The host's
//! root port completes TPH but not extended TPH (`tphctl show --emulated 02:00.0`: completer
//! `tph`), so the host holds the 8-bit tags. vCPU 0 is pinned to host CPU 5, vCPU 1 to 3.
//!
//! Four guests boot in parallel: v7 host, feature host (which needs the unsafe parameter to
//! enable TPH at all, and then keeps pinning fixed), a guest that never touches TPH, and a v7
//! guest the test reboots (QMP `system_reset`) while TPH is on.

mod guest;

use guest::Served;
use tph_guest::{rig, Rig};

/// Writes one command to the test module and prints its lines.
const T: &str =
    "t() { echo \"$*\" > /sys/kernel/debug/tph_test/ctl && cat /sys/kernel/debug/tph_test/ctl; }\n";

/// UID u: VM 8-bit 0x30+u, VM 16-bit 0x3300+u, PM 8-bit 0xC0+u, PM 16-bit 0xCC00+u, all valid
/// (the `_DSM` result layout of the PCI Firmware ECN: valid bits 0, 1, 32, 33; tags at 8, 16,
/// 40, 48).
fn firmware(dir: &std::path::Path) -> std::path::PathBuf {
    let mut text = String::new();
    for u in 0u64..8 {
        let info = 0x3
            | (0x30 + u) << 8
            | (0x3300 + u) << 16
            | 0x3 << 32
            | (0xC0 + u) << 40
            | (0xCC00 + u) << 48;
        text.push_str(&format!("{u} {info:#018x}\n"));
    }
    let path = dir.join("host-firmware.txt");
    std::fs::write(&path, text).expect("writing the host firmware");
    path
}

/// The host's 8-bit VM tag for host CPU `cpu` in [`firmware`].
fn host_tag(cpu: u16) -> u16 {
    0x30 + cpu
}

/// The guest's work: enable IV mode, write each vCPU's firmware tag into entries 0 and 1,
/// read the Control register enough times to flush the server's trace (the test re-pins once
/// the host write shows there), wait, then an FLR with TPH on (the core restores it), disable,
/// and an FLR with TPH off.
const DRIVE: &str = "t dev 0000:01:00.0\nt enable_device >/dev/null\nt enable 1\n\
    a=$(t get_st 0 vm | sed 's/.*tag=//'); b=$(t get_st 1 vm | sed 's/.*tag=//')\n\
    t set_st 0 $a | sed 's/ 0x[0-9a-f]* / TAG /'\nt set_st 1 $b | sed 's/ 0x[0-9a-f]* / TAG /'\n\
    i=0; while [ $i -lt 400 ]; do t cfg 0x108 >/dev/null; i=$((i+1)); done\nsleep 12\n\
    t reset\nt state\nt disable\nt reset\nt state\n";

/// Enable, both entries, flush the trace, wait (the test resets the VM then), disable: run on
/// each boot, so twice when the test reboots the VM.
const REBOOT: &str = "t dev 0000:01:00.0\nt enable_device >/dev/null\nt enable 1\n\
    a=$(t get_st 0 vm | sed 's/.*tag=//'); b=$(t get_st 1 vm | sed 's/.*tag=//')\n\
    t set_st 0 $a >/dev/null; t set_st 1 $b >/dev/null\n\
    i=0; while [ $i -lt 400 ]; do t cfg 0x108 >/dev/null; i=$((i+1)); done\nsleep 15\nt disable\n";

struct Boot {
    run: tph_guest::GuestRun,
    status: Option<i32>,
    out: String,
    trace: String,
    host_state: serde_json::Value,
}

/// Boots one guest against `tphctl serve --vm` with `extra` arguments; when `repin` is given,
/// sends it on the server's standard input once the host holds entry 1.
/// What the test does once the host holds a tag in entry 1.
#[derive(Clone, Copy)]
enum Then {
    Nothing,
    /// Sends this line on the server's standard input.
    Send(&'static str),
    /// Resets the VM as a reboot does (QMP `system_reset`, with reboots resetting).
    Reboot,
}

/// QMP `system_reset` on the socket at `path`.
fn system_reset(path: &std::path::Path) {
    use std::io::{BufRead, Write};
    let stream = std::os::unix::net::UnixStream::connect(path).expect("the QMP socket");
    let mut reader = std::io::BufReader::new(stream.try_clone().expect("the QMP socket"));
    let mut w = stream;
    let mut line = String::new();
    for cmd in [
        "",
        "{\"execute\":\"qmp_capabilities\"}",
        "{\"execute\":\"system_reset\"}",
    ] {
        if !cmd.is_empty() {
            writeln!(w, "{cmd}").expect("writing QMP");
        }
        line.clear();
        reader.read_line(&mut line).expect("reading QMP");
        assert!(!line.contains("\"error\""), "QMP {cmd}: {line}");
    }
}

fn boot(rig: &Rig, name: &str, extra: &[&str], script: &str, then: Then) -> Boot {
    let dir = rig.work_dir(name).expect("a directory under the QEMU root");
    let fw = firmware(&dir);
    let ssdt = dir.join("guest.aml");
    let state = dir.join("host-state.json");
    let (fw, ssdt_s, state_s) = (
        fw.to_str().expect("UTF-8"),
        ssdt.to_str().expect("UTF-8"),
        state.to_str().expect("UTF-8"),
    );
    let mut args = vec![
        "--emulated",
        "02:00.0",
        "--vm",
        "--pin",
        "0:5,1:3",
        "--firmware",
        fw,
        "--ssdt",
        ssdt_s,
        "--host-state",
        state_s,
    ];
    args.extend_from_slice(extra);
    let mut served = Served::start_with(&dir, name, &args, true);
    let mut g = guest::rig_guest(rig.clone());
    g.cpus = 2;
    g.qemu_args = vec![
        "-object".into(),
        "memory-backend-memfd,id=mem,size=1024M,share=on".into(),
        "-machine".into(),
        "memory-backend=mem".into(),
        "-acpitable".into(),
        format!(
            "file={}",
            rig.guest_path(&ssdt).expect("the SSDT under the QEMU root")
        ),
        "-device".into(),
        format!("{},id=rp1,chassis=1,slot=1,addr=2", rig.root_port),
        "-device".into(),
        served.device(rig, "\"bus\":\"rp1\""),
    ];
    let qmp = dir.join("qmp.sock");
    if let Then::Reboot = then {
        g.qemu_args.extend([
            "-action".into(),
            "reboot=reset".into(),
            "-qmp".into(),
            format!(
                "unix:{},server=on,wait=off",
                rig.guest_path(&qmp).expect("under the QEMU root")
            ),
        ]);
    }
    g.setup = "mount -t debugfs debugfs /sys/kernel/debug\ninsmod /rig/tph_test.ko\n".into();
    g.scenario("drive", &format!("{T}{script}"));
    let run = std::thread::scope(|s| {
        let guest = s.spawn(|| g.run().expect("the rig runs"));
        if !matches!(then, Then::Nothing) {
            let start = std::time::Instant::now();
            while !guest.is_finished() && start.elapsed() < std::time::Duration::from_secs(300) {
                let trace = std::fs::read_to_string(&served.trace).unwrap_or_default();
                if host_entries(&trace).iter().any(|&(i, v)| i == 1 && v != 0) {
                    match then {
                        Then::Send(line) => served.send(line),
                        Then::Reboot => system_reset(&qmp),
                        Then::Nothing => {}
                    }
                    break;
                }
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        }
        guest.join().expect("the guest thread")
    });
    let (status, out, trace) = served.finish();
    let host_state = std::fs::read_to_string(&state)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(serde_json::Value::Null);
    let _ = std::fs::remove_dir_all(&dir);
    Boot {
        run,
        status,
        out,
        trace,
        host_state,
    }
}

/// The host's steering-tag writes in a serve trace, in order: (entry, new value), changes
/// only.
fn host_entries(trace: &str) -> Vec<(u16, u16)> {
    events(trace)
        .iter()
        .filter_map(|e| {
            let rest = e.strip_prefix("ST[")?;
            let (index, rest) = rest.split_once(']')?;
            let value = rest.rsplit("-> 0x").next()?;
            Some((index.parse().ok()?, u16::from_str_radix(value, 16).ok()?))
        })
        .collect()
}

/// What happened to the host function, in order: `on` and `off` (TPH Control leaving or
/// reaching No-ST off; the off/on framing of each entry write is left out), `ST[i] 0xA -> 0xB`
/// (entries that changed), `FLR` (a function level reset of the host), and the layer's `pin`
/// and reset-hook lines (each after the host accesses it made).
fn events(trace: &str) -> Vec<String> {
    trace
        .lines()
        .filter_map(|l| {
            if let Some(h) = l.strip_prefix("host ") {
                if h.ends_with("function level reset") {
                    return Some("FLR".to_string());
                }
                if let Some(c) = h.split("TPH Control: ").nth(1) {
                    return if c.starts_with("NS off ->") {
                        Some("on".into())
                    } else if c.ends_with("-> NS off") {
                        Some("off".into())
                    } else {
                        None
                    };
                }
                let st = h.split(": ST[").nth(1)?;
                let (index, change) = st.split_once("]: ")?;
                let (from, to) = change.split_once(" -> ")?;
                return (from != to).then(|| format!("ST[{index}] {from} -> {to}"));
            }
            (l.starts_with("vm pin") || l.contains("reset hook")).then(|| l.to_string())
        })
        .collect()
}

/// The host function's Control and entries as `--host-state` wrote them.
fn host_state(b: &Boot) -> (u64, Vec<u64>) {
    let f = &b.host_state[0]["tph"];
    let control = f["control"]["raw"]
        .as_u64()
        .unwrap_or_else(|| panic!("no host state: {}\n{}", b.host_state, b.out));
    let entries = f["entries"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["st"].as_u64()).collect())
        .unwrap_or_default();
    (control, entries)
}

/// The layer's hook when the client leaves a host it already left off and clean.
const CLEAN_LEFT: &str = "vm client left: reset hook: host calls 0";

/// `ST[i] 0xFROM -> 0xTO` as the trace writes it.
fn st(index: u16, from: u16, to: u16) -> String {
    format!("ST[{index}] {from:#06x} -> {to:#06x}")
}

#[test]
fn a_real_guest_drives_the_host_through_the_layer() {
    let Some(rig) = rig::for_test("guest_vm") else {
        return;
    };
    let (v7, feature, idle, reboot) = std::thread::scope(|s| {
        let v7 = s.spawn(|| boot(&rig, "vm_v7", &[], DRIVE, Then::Send("pin 1:6")));
        let feature = s.spawn(|| {
            boot(
                &rig,
                "vm_feature",
                &["--kernel-abi", "feature", "--unsafe-ds-mode"],
                DRIVE,
                Then::Send("pin 1:6"),
            )
        });
        let idle = s.spawn(|| {
            boot(
                &rig,
                "vm_idle",
                &[],
                "lspci -vvv -s 01:00.0 2>/dev/null | grep -c 'Transaction Processing Hints'\n",
                Then::Nothing,
            )
        });
        let reboot = s.spawn(|| boot(&rig, "vm_reboot", &[], REBOOT, Then::Reboot));
        (
            v7.join().expect("v7 boot"),
            feature.join().expect("feature boot"),
            idle.join().expect("idle boot"),
            reboot.join().expect("reboot boot"),
        )
    });
    assert_eq!(reboot.status, Some(0), "server reboot: {}", reboot.out);
    for (name, b) in [("v7", &v7), ("feature", &feature), ("idle", &idle)] {
        assert_eq!(b.status, Some(0), "server {name}: {}", b.out);
        // Whatever happened, the host function the guest leaves is off and clean.
        assert_eq!(
            host_state(b),
            (0, vec![0; 16]),
            "{name}: host state {}",
            b.host_state
        );
    }

    // The guest's own core: enable IV mode, both entries written, the FLR with TPH on is
    // restored by the core, the FLR with TPH off leaves it off.
    let guest = "dev 0000:01:00.0 = 0 type=0 tph_cap=0x100\nenable 1 = 0\n\
                 set_st 0 TAG = 0\nset_st 1 TAG = 0\n\
                 reset = 0\nstate = 0 tph_cap=0x100 enabled=1 mode=1 req_type=1 loc=1 size=16\n\
                 disable = 0\nreset = 0\n\
                 state = 0 tph_cap=0x100 enabled=0 mode=0 req_type=0 loc=1 size=16\n";
    for (name, b) in [("v7", &v7), ("feature", &feature)] {
        assert_eq!(
            b.run.outcome("drive").status(0).output(),
            guest,
            "{name}: {}",
            b.trace
        );
    }

    // What the host saw, with pins 0:5 and 1:3 and then 1:6. QEMU resets the device when it
    // starts (the layer's hook: nothing to undo). Enable turns the host on (the host core
    // clears its table, no change); the core frames each entry write with requests off and
    // on; the layer writes the pinned CPUs' tags.
    let (t5, t3, t6) = (host_tag(5), host_tag(3), host_tag(6));
    let flr_on = |a: u16, b: u16| {
        vec![
            st(0, a, 0),
            st(1, b, 0),
            "off".to_string(),
            "FLR".into(),
            "vm guest FLR: reset hook: host calls 2, control Disabled, entries [0, 1]".into(),
        ]
    };
    let flr_off = |a: u16, b: u16| {
        vec![
            "on".to_string(),
            st(0, a, 0),
            st(1, b, 0),
            "off".into(),
            "FLR".into(),
            "vm guest FLR: reset hook: host calls 3, entries [0, 1]".into(),
        ]
    };
    let start = [
        "FLR",
        "vm device reset: reset hook: host calls 0",
        "on",
        "off",
        "on",
    ]
    .map(String::from);
    // v7: the re-pin arrives while the guest waits; the layer moves the tag of entry 1 itself
    // (one host call) and the guest never rewrites it. The guest's FLR: the hook clears both
    // entries and turns the host off before the host FLR; the core's restore brings the new
    // pinning back; the FLR with TPH off clears again.
    let mut want: Vec<String> = start.to_vec();
    want.extend([st(0, 0, t5), "off".into(), "on".into(), st(1, 0, t3)]);
    want.push(st(1, t3, t6));
    want.push("vm pin 1:6: host calls 1".into());
    want.extend(flr_on(t5, t6));
    want.extend(["on".to_string(), st(0, 0, t5), st(1, 0, t6), "off".into()]);
    want.extend(flr_off(t5, t6));
    want.push(CLEAN_LEFT.into());
    assert_eq!(events(&v7.trace), want, "v7 trace:\n{}", v7.trace);
    assert!(
        v7.out.contains("> pin 1:6\nok; host calls 1\n"),
        "{}",
        v7.out
    );
    assert_eq!(
        v7.trace.matches("vm cfg wr 0x10e/2").count(),
        2,
        "the guest wrote entry 1 twice (its set_st and its restore): {}",
        v7.trace
    );

    // feature: the host refuses TPH without the unsafe parameter, which also shows Device
    // Specific mode to the guest: the guest's SSDT holds the host tags themselves and the
    // pinning is fixed, so the re-pin is refused and the tags stay.
    let mut want: Vec<String> = start.to_vec();
    want.extend([st(0, 0, t5), "off".into(), "on".into(), st(1, 0, t3)]);
    want.extend(flr_on(t5, t3));
    want.extend(["on".to_string(), st(0, 0, t5), st(1, 0, t3), "off".into()]);
    want.extend(flr_off(t5, t3));
    want.push(CLEAN_LEFT.into());
    assert_eq!(
        events(&feature.trace),
        want,
        "feature trace:\n{}",
        feature.trace
    );
    assert!(
        feature.out.contains(
            "> pin 1:6\nerror: the pinning is fixed while Device Specific mode is exposed to \
             the guest\n"
        ),
        "{}",
        feature.out
    );
    assert!(
        feature
            .trace
            .contains(&format!("vm cfg wr 0x10c/2 <- {t5:#x}: ")),
        "the guest wrote host CPU 5's tag: {}",
        feature.trace
    );

    // A guest that only looks (lspci sees the capability) never causes a host TPH call.
    assert_eq!(idle.run.outcome("drive").status(0).output(), "1\n");
    assert_eq!(
        events(&idle.trace),
        [&start[..2], &[CLEAN_LEFT.to_string()]].concat(),
        "idle trace:\n{}",
        idle.trace
    );

    // A VM reset as a reboot does it (QMP `system_reset`, reboots resetting): QEMU resets the
    // device, the layer's hook clears both entries and turns the host off before the host
    // FLR; the rebooted guest's core starts from a clean host and writes its tags again, and
    // its disable leaves the host off with the entries in place, until QEMU ends: when the
    // client leaves, the layer's hook turns the host on to clear them, then off.
    let mut want: Vec<String> = start.to_vec();
    want.extend([st(0, 0, t5), "off".into(), "on".into(), st(1, 0, t3)]);
    want.extend([
        st(0, t5, 0),
        st(1, t3, 0),
        "off".into(),
        "FLR".into(),
        "vm device reset: reset hook: host calls 2, control Disabled, entries [0, 1]".into(),
    ]);
    want.extend(start.iter().cloned());
    want.extend([
        st(0, 0, t5),
        "off".into(),
        "on".into(),
        st(1, 0, t3),
        "off".into(),
        "on".into(),
        st(0, t5, 0),
        st(1, t3, 0),
        "off".into(),
        "vm client left: reset hook: host calls 3, entries [0, 1]".into(),
    ]);
    assert_eq!(
        events(&reboot.trace),
        want,
        "reboot trace:\n{}",
        reboot.trace
    );
    assert_eq!(
        host_state(&reboot),
        (0, vec![0; 16]),
        "{}",
        reboot.host_state
    );
    assert_eq!(
        reboot.run.outcome("drive").status(0).output(),
        "dev 0000:01:00.0 = 0 type=0 tph_cap=0x100\nenable 1 = 0\ndisable = 0\n"
    );
}
