//! The differential on the real 7.3 kernel (issue 17, Build item 4): the guest test module
//! (`crates/tph-guest/module`, command `mark`) makes TPH core calls on functions served by
//! `tphctl serve --vfio-user --trace`, writing a marker dword to configuration offset 0
//! before each and logging `call N OP ARGS -> RET [TAG]`; `tph_testkit::differential` runs
//! the same calls on the model's core over the same emulated function and lists every
//! difference in return values and register accesses. The differences the test allows are
//! decisions (`docs/decisions.md`, "Differential"); any other fails it.

mod guest;

use std::collections::BTreeMap;
use std::sync::Arc;

use guest::Served;
use tph_acpi::{HostBridgeId, StHalf, StInfo, TableSource};
use tph_guest::{rig, Rig};
use tph_testkit::differential::{
    compare, normalise, parse_calls, windows, GuestPlatform, Normalise,
};

const T: &str =
    "t() { echo \"$*\" > /sys/kernel/debug/tph_test/ctl && cat /sys/kernel/debug/tph_test/ctl > /dev/null; }\n\
     comp() { echo $1 > /sys/module/tph_rootport/parameters/completer; }\n\
     calls() { dmesg | grep 'tph_test: call '; }\n";

/// The firmware the guest loads (`data/guest/tph-dsm.asl`), as the table its `_DSM` answers:
/// for processor UID u, VM tag 0x40+u (extended 0x100+u), PM tag 0xE0-u (extended 0xF000+u).
fn firmware(cpus: u32) -> TableSource {
    let mut table = BTreeMap::new();
    for u in 0..cpus {
        let vm = StHalf::new(Some(0x40 + u as u8), Some(0x100 + u as u16));
        let pm = StHalf::new(Some(0xe0 - u as u8), Some(0xf000 + u as u16));
        table.insert(u, StInfo::from_halves(vm, pm));
    }
    TableSource::from_map(table)
}

fn ssdt(rig: &Rig, dir: &std::path::Path) -> String {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/guest/tph-dsm.asl");
    let out = std::process::Command::new("iasl")
        .arg("-p")
        .arg(dir.join("tph-dsm"))
        .arg(&src)
        .output()
        .expect("iasl (Debian package acpica-tools)");
    assert!(out.status.success(), "iasl failed: {out:?}");
    rig.guest_path(&dir.join("tph-dsm.aml"))
        .expect("the SSDT under the QEMU root")
}

/// The calls on 01:00.0 (table in MSI-X) and 02:00.0 (table in the capability): enable in
/// every mode (unsupported ones, twice), firmware tags for both CPUs and memory types,
/// entries while off, allocated and not, out of range, reset, disable twice.
const MSIX: &str = "dmesg -c > /dev/null\ncomp tph\nt dev 0000:01:00.0\nt mark\nt enable_device\n\
    t set_st 0 0x11\nt get_st 0 vm\nt enable 3\nt enable 7\nt enable 1\nt enable 1\nt state\n\
    t get_st_all\nt set_st 0 0x42\nt state\nt msix 4\nt enable 1\nt set_st 0 0x42\n\
    t set_st 3 0x43\nt reset\nt state\nt set_st 4 0x44\nt enable 2\nt set_st 64 1\n\
    t enable 2\nt disable\nt disable\nt msix 0\ncalls\n";
const CAP: &str = "dmesg -c > /dev/null\ncomp ext\nt dev 0000:02:00.0\nt mark\nt enable_device\n\
    t enable 1\nt state\nt get_st_all\nt set_st 0 0x101\nt set_st 15 0xf001\nt set_st 16 1\n\
    t state\nt enable 2\nt set_st 1 0x101\nt reset\nt state\nt disable\nt enable 0\nt disable\n\
    comp tph\ncalls\n";

#[test]
fn the_model_core_makes_the_real_cores_accesses() {
    let Some(rig) = rig::for_test("guest_differential") else {
        return;
    };
    let dir = rig
        .work_dir("differential")
        .expect("a directory under the QEMU root");
    let served = [
        ("01:00.0", "\"bus\":\"rp1\"", 1u32, MSIX),
        ("02:00.0", "\"bus\":\"rp2\"", 3, CAP),
    ]
    .map(|(bdf, place, completer, script)| {
        let name = format!("ep{}", &bdf[1..2]);
        (
            Served::start(&dir, &name, &["--emulated", bdf]),
            bdf,
            place,
            completer,
            script,
        )
    });
    let cpus = 2;
    let mut g = guest::rig_guest(rig.clone());
    g.cpus = cpus;
    g.qemu_args = vec![
        "-object".into(),
        "memory-backend-memfd,id=mem,size=1024M,share=on".into(),
        "-machine".into(),
        "memory-backend=mem".into(),
        "-acpitable".into(),
        format!("file={}", ssdt(&rig, &dir)),
    ];
    for i in 1..=2 {
        g.qemu_args.push("-device".into());
        g.qemu_args.push(format!(
            "{},id=rp{i},chassis={i},slot={i},addr={}",
            rig.root_port,
            i + 1
        ));
    }
    for (s, _, place, _, _) in &served {
        g.qemu_args.push("-device".into());
        g.qemu_args.push(s.device(&rig, place));
    }
    g.setup = "mount -t debugfs debugfs /sys/kernel/debug\ninsmod /rig/tph_test.ko\n".into();
    for (_, bdf, _, _, script) in &served {
        g.scenario(bdf, &format!("{T}{script}"));
    }
    let run = g.run().expect("the rig runs");
    assert!(run.finished, "{}", run.console);
    let machine = tph_kernel::machines::default_machine();
    let mut report = String::new();
    for (s, bdf, _, completer, _) in served {
        let (status, out, trace) = s.finish();
        assert_eq!(status, Some(0), "{out}");
        let log = run.outcome(bdf).status(0).output();
        let calls = parse_calls(log).expect("the module's call lines");
        let config = &machine
            .function(bdf.parse().expect("a BDF"))
            .expect("in the default machine")
            .config;
        let platform = GuestPlatform {
            root_port_devcap2: Some(completer << 12),
            host_bridge: Some(HostBridgeId { segment: 0, bus: 0 }),
            cpus,
            cpu_uids: Vec::new(),
            firmware: Arc::new(firmware(cpus)),
            notph: false,
        };
        // Every call has its window: the markers reached the server.
        assert!(calls.len() >= 15, "{bdf}: {log}");
        assert!(windows(&trace).len() >= calls.len(), "{bdf}: {trace}");
        let how = Normalise::for_config(config);
        // The comparison is not empty: the calls' windows hold the core's accesses.
        let windows = windows(&trace);
        let compared: usize = calls
            .iter()
            .filter_map(|c| Some(normalise(windows.get(&c.seq)?, c.op, &how).len()))
            .sum();
        assert!(
            compared >= 50,
            "{bdf}: {compared} accesses compared\n{trace}"
        );
        for d in compare(config, &platform, &calls, &trace, &how) {
            report.push_str(&format!("{bdf}: {d}\n"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(report.is_empty(), "differences:\n{report}");
}
