//! The differential on the real 7.3 kernel (issue 17, Build item 4): the guest test module
//! (`crates/tph-guest/module`, command `mark`) makes TPH core calls on functions served by
//! `tphctl serve --vfio-user --trace`, writing a marker dword to configuration offset 0
//! before each and logging `call N OP ARGS -> RET [TAG]`; `tph_testkit::differential` runs
//! the same calls on the model's core over the same emulated function and lists every
//! difference in return values and register accesses. The differences the test allows are
//! decisions (`docs/decisions.md`, "Differential"); any other fails it.
//!
//! One case is one run of calls on one served function ([`FUNCTIONS`]) with one
//! platform: the completer the rig's root-port stand-in reports during the case, whether the
//! function has a root port at all (the integrated endpoint has none), and whether the kernel
//! was booted with `pci=notph`. Each case starts from a fresh model function and core; a
//! function served to several cases carries the earlier cases' state on the real side, so the
//! later cases avoid reads of what the earlier ones wrote (a read that differed would show as
//! a difference, not pass unseen). Each case ends with TPH off and a marker that is no call
//! (`t cfg 0`), so what the module does when it lets the function go falls in no call's
//! window.

mod guest;

use std::collections::BTreeMap;
use std::sync::Arc;

use guest::{RigFunction, NO_TABLE_FUNCTION, RIG_CPUS, RIG_FUNCTIONS};
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

/// The functions served: `guest_serve`'s four (MSI-X table, capability table, 8-bit requester,
/// integrated endpoint) and one without an ST table.
const FUNCTIONS: [RigFunction; 5] = [
    RIG_FUNCTIONS[0],
    RIG_FUNCTIONS[1],
    RIG_FUNCTIONS[2],
    RIG_FUNCTIONS[3],
    NO_TABLE_FUNCTION,
];

/// What the rig's root-port stand-in reports as TPH Completer Supported during a case.
#[derive(Clone, Copy, Debug)]
enum Completer {
    /// 0: no completer support.
    None,
    /// 1: TPH only (8-bit tags).
    Tph,
    /// 3: TPH and extended TPH.
    Ext,
}

impl Completer {
    /// The stand-in's module parameter value.
    fn word(self) -> &'static str {
        match self {
            Completer::None => "none",
            Completer::Tph => "tph",
            Completer::Ext => "ext",
        }
    }

    /// Device Capabilities 2 with the field (bits 13:12).
    fn devcap2(self) -> u32 {
        let field = match self {
            Completer::None => 0,
            Completer::Tph => 1,
            Completer::Ext => 3,
        };
        field << 12
    }
}

/// One case: `script` (module commands, one per line) on `FUNCTIONS[function]`.
struct Case {
    name: &'static str,
    function: usize,
    completer: Completer,
    script: &'static str,
    /// At least this many register accesses are compared (the comparison is not empty).
    min_accesses: usize,
}

impl Case {
    /// The scenario: select the function, mark, the calls, an end marker, the call lines.
    fn scenario(&self) -> String {
        format!(
            "{T}dmesg -c > /dev/null\ncomp {}\nt dev 0000:{}\nt mark\n{}\nt cfg 0\ncomp tph\ncalls\n",
            self.completer.word(),
            FUNCTIONS[self.function].guest,
            self.script.trim()
        )
    }

    /// How many call lines the script makes the module log.
    fn calls(&self) -> usize {
        self.script
            .lines()
            .map(|l| match l.split_whitespace().nth(1) {
                Some("enable" | "disable" | "set_st" | "get_st" | "reset" | "msix") => 1,
                Some("state") => 2,
                Some("get_st_all") => 2 * RIG_CPUS as usize,
                _ => 0,
            })
            .sum()
    }
}

/// 01:00.0 (table in MSI-X), completer "TPH only": enable in every mode (unsupported ones,
/// twice), firmware tags for both CPUs and memory types, entries while off, allocated and
/// not, out of range, reset, disable twice.
const MSIX: &str = "t enable_device\n\
    t set_st 0 0x11\nt get_st 0 vm\nt enable 3\nt enable 7\nt enable 1\nt enable 1\nt state\n\
    t get_st_all\nt set_st 0 0x42\nt state\nt msix 4\nt enable 1\nt set_st 0 0x42\n\
    t set_st 3 0x43\nt reset\nt state\nt set_st 4 0x44\nt enable 2\nt set_st 64 1\n\
    t enable 2\nt disable\nt disable\nt msix 0";

/// 02:00.0 (table of 16 in the capability), completer "TPH and extended": extended tags,
/// entries in and out of range, reset (save and restore of every entry), No-ST mode.
const CAP: &str = "t enable_device\n\
    t enable 1\nt state\nt get_st_all\nt set_st 0 0x101\nt set_st 15 0xf001\nt set_st 16 1\n\
    t state\nt enable 2\nt set_st 1 0x101\nt reset\nt state\nt disable\nt enable 0\nt disable";

/// 03:00.0 (served 04:00.0: table of 8 in the capability, 8-bit requester only) under a
/// completer that takes extended tags: the requester type stays 1, the firmware's 8-bit tags
/// are the ones given although extended ones exist, a CPU the kernel does not have, tags that
/// do not fit 8 bits written into the table, an index past the table, reset, No-ST mode.
const EIGHT_BIT: &str = "t enable_device\n\
    t state\nt get_st_all\nt enable 1\nt enable 2\nt state\nt get_st_all\nt get_st 5 vm\n\
    t set_st 0 0x42\nt set_st 1 0x101\nt set_st 7 0xf001\nt set_st 8 1\nt state\n\
    t enable 2\nt set_st 2 0x1ff\nt reset\nt state\nt disable\n\
    t enable 0\nt set_st 3 0x33\nt disable";

/// 00:05.0, an integrated endpoint (no root port above it), while the root ports report no
/// completer: enable does not ask a completer (extended requester type), no firmware tag (no
/// root port) for a CPU it has or not, entries in and out of range, reset.
const RCIEP: &str = "t enable_device\n\
    t state\nt get_st 0 vm\nt get_st 5 pm\nt enable 1\nt enable 1\nt state\nt get_st 1 pm\n\
    t set_st 0 0x101\nt set_st 7 0xf007\nt set_st 8 1\nt enable 2\nt set_st 3 0x33\n\
    t reset\nt state\nt disable\nt disable";

/// 02:00.0 again, its root port without completer support: every enable refused, whatever
/// the mode; tags 0 (no requester type); entries refused; a reset saves nothing.
const NO_COMPLETER: &str = "t enable_device\n\
    t enable 1\nt enable 2\nt enable 0\nt enable 3\nt state\nt get_st_all\nt set_st 0 1\n\
    t reset\nt disable";

/// 02:00.0 again, its root port completing 8-bit tags only: an extended requester gets
/// requester type 1 and the 8-bit tags; a tag that does not fit is written whole. No reset:
/// its save would read entries the `cap` case wrote, which the model's fresh function lacks.
const TPH_COMPLETER: &str = "t enable 2\nt state\nt get_st_all\nt get_st 5 pm\n\
    t set_st 0 0x1ff\nt set_st 15 7\nt disable";

/// 04:00.0 (served 03:00.0: No-ST and DS modes only, extended requester, no ST table): IV
/// refused, DS with extended tags, an entry with nowhere to go (EINVAL, TPH off), a reset
/// that saves Control and no entry, No-ST mode.
const NO_TABLE: &str = "t enable_device\n\
    t state\nt enable 1\nt enable 2\nt state\nt get_st_all\nt set_st 0 0x101\nt state\n\
    t enable 2\nt reset\nt state\nt enable 0\nt disable\nt enable 0\nt set_st 0 1\nt disable";

/// Under `pci=notph`, on every function: the core refuses each enable before it reads
/// anything; what it still reads (table location and size), tags with no requester type,
/// entries refused, a reset that saves nothing.
const NOTPH: &str = "t enable_device\n\
    t state\nt enable 1\nt enable 2\nt enable 0\nt get_st 0 vm\nt get_st 1 pm\nt set_st 0 1\n\
    t reset\nt disable\nt state";

/// Boots the rig with `append`, runs `cases` in order and compares each: the report of every
/// difference (empty: none) and one summary line per case.
fn run_cases(rig: &Rig, append: &str, notph: bool, cases: &[Case]) -> (String, Vec<String>) {
    let scenarios: Vec<(&str, String)> = cases.iter().map(|c| (c.name, c.scenario())).collect();
    let boot = guest::rig_boot(rig, "differential", append, false, &FUNCTIONS, &scenarios);
    let run = &boot.run;
    assert!(run.finished, "{}", run.console);
    for ((status, out, _), f) in boot.servers.iter().zip(FUNCTIONS) {
        assert_eq!(*status, Some(0), "server {}: {out}", f.name);
    }
    let machine = tph_kernel::machines::default_machine();
    let firmware = Arc::new(firmware(RIG_CPUS));
    let mut report = String::new();
    let mut summary = Vec::new();
    for case in cases {
        let f = FUNCTIONS[case.function];
        let trace = &boot.servers[case.function].2;
        let log = run.outcome(case.name).status(0).output();
        let calls = parse_calls(log).expect("the module's call lines");
        let config = &machine
            .function(f.served.parse().expect("a BDF"))
            .expect("in the default machine")
            .config;
        let how = Normalise::for_config(config);
        // No root port above an integrated endpoint: no completer to ask, no host bridge
        // `_DSM` to find.
        let rciep = machine.is_rciep(f.served.parse().expect("a BDF"));
        let platform = GuestPlatform {
            root_port_devcap2: (!rciep).then(|| case.completer.devcap2()),
            host_bridge: (!rciep).then_some(HostBridgeId { segment: 0, bus: 0 }),
            cpus: RIG_CPUS,
            cpu_uids: Vec::new(),
            firmware: firmware.clone(),
            notph,
        };
        // Every call of the script was logged, and has its window in the server's trace.
        assert_eq!(calls.len(), case.calls(), "{}: {log}", case.name);
        let windows = windows(trace);
        let compared: usize = calls
            .iter()
            .filter_map(|c| Some(normalise(windows.get(&c.seq)?, c.op, &how).len()))
            .sum();
        assert!(
            compared >= case.min_accesses,
            "{}: {compared} accesses compared\n{trace}",
            case.name
        );
        summary.push(format!(
            "{} ({} as {}): {} calls, {compared} accesses compared",
            case.name,
            f.served,
            f.guest,
            calls.len()
        ));
        for d in compare(config, &platform, &calls, trace, &how) {
            report.push_str(&format!("{} ({}): {d}\n", case.name, f.guest));
        }
    }
    (report, summary)
}

#[test]
fn the_model_core_makes_the_real_cores_accesses() {
    let Some(rig) = rig::for_test("guest_differential") else {
        return;
    };
    let cases = [
        Case {
            name: "msix",
            function: 0,
            completer: Completer::Tph,
            script: MSIX,
            min_accesses: 50,
        },
        Case {
            name: "cap",
            function: 1,
            completer: Completer::Ext,
            script: CAP,
            min_accesses: 50,
        },
        Case {
            name: "eight_bit",
            function: 2,
            completer: Completer::Ext,
            script: EIGHT_BIT,
            min_accesses: 40,
        },
        Case {
            name: "rciep",
            function: 3,
            completer: Completer::None,
            script: RCIEP,
            min_accesses: 30,
        },
        Case {
            name: "no_table",
            function: 4,
            completer: Completer::Ext,
            script: NO_TABLE,
            min_accesses: 20,
        },
        Case {
            name: "no_completer",
            function: 1,
            completer: Completer::None,
            script: NO_COMPLETER,
            min_accesses: 8,
        },
        Case {
            name: "tph_completer",
            function: 1,
            completer: Completer::Tph,
            script: TPH_COMPLETER,
            min_accesses: 10,
        },
    ];
    let (report, summary) = run_cases(&rig, "", false, &cases);
    eprintln!("{}", summary.join("\n"));
    assert!(report.is_empty(), "differences:\n{report}");
}

#[test]
fn under_notph_the_model_core_reads_what_the_real_core_reads() {
    let Some(rig) = rig::for_test("guest_differential notph") else {
        return;
    };
    let cases = [
        "notph_msix",
        "notph_cap",
        "notph_8bit",
        "notph_rciep",
        "notph_notable",
    ]
    .into_iter()
    .enumerate()
    .map(|(function, name)| Case {
        name,
        function,
        // A completer that would take extended tags: the refusal is the kernel's.
        completer: Completer::Ext,
        script: NOTPH,
        min_accesses: 4,
    })
    .collect::<Vec<_>>();
    let (report, summary) = run_cases(&rig, "pci=notph", true, &cases);
    eprintln!("{}", summary.join("\n"));
    assert!(report.is_empty(), "differences:\n{report}");
}
