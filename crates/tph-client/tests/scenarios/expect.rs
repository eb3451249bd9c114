//! What every conformance scenario must end with, on each kernel revision: one table, with facts
//! that hold on both revisions stated once and revision-specific facts only where the revisions
//! really differ (the DS gate's module parameter name, and the raw byte scenarios, which send one
//! revision's bytes). A scenario with no fact on a revision is not played there. The transcript and final registers a fact is checked against are the ones
//! both backends (in-process and across the syscall boundary) agreed on.

use tph_kernel::KernelAbi;

/// One checked fact about a scenario's transcript `t` or its final TPH registers.
#[derive(Debug)]
pub enum Fact {
    /// The whole transcript is exactly these lines.
    Is(&'static [&'static str]),
    /// Line `n` is exactly this.
    Line(usize, &'static str),
    /// Line `n` starts with this.
    Starts(usize, &'static str),
    /// Line `n` contains this.
    Holds(usize, &'static str),
    /// The lines from `n` on are exactly these.
    Tail(usize, &'static [&'static str]),
    /// Some line starts with this.
    AnyStarts(&'static str),
    /// Every line contains this.
    Every(&'static str),
    /// The transcript has this many lines.
    Len(usize),
    /// The final TPH registers (their `Debug` rendering) contain this.
    Regs(&'static str),
    /// The final TPH registers do not contain this.
    RegsLack(&'static str),
}

use Fact::*;

/// A scenario's facts: on every revision, on v7 only, on the feature revision only.
struct Expect {
    scenario: &'static str,
    both: &'static [Fact],
    v7: &'static [Fact],
    feature: &'static [Fact],
}

const fn all(scenario: &'static str, both: &'static [Fact]) -> Expect {
    Expect {
        scenario,
        both,
        v7: &[],
        feature: &[],
    }
}

const NOT_DS: &str = "get-st 1: err EINVAL | TPH is not enabled in DS mode";

const EXPECT: &[Expect] = &[
    // The parameter off: v7 hides DS only; the feature revision's PROBE says TPH_ST is not
    // there (ENOTTY), so the client reports no usable mode.
    Expect {
        scenario: "get_cap_hides_ds_by_default",
        both: &[],
        v7: &[Is(&[
            "cap: ok Capabilities { iv: true, ds: false, st_table_size: 2048 }",
        ])],
        feature: &[Is(&[
            "cap: ok Capabilities { iv: false, ds: false, st_table_size: 2048 }",
        ])],
    },
    all(
        "get_cap_shows_ds_with_unsafe_param",
        &[Is(&[
            "cap: ok Capabilities { iv: true, ds: true, st_table_size: 2048 }",
        ])],
    ),
    all(
        "notph_host_reports_no_tph",
        &[Every(
            "err ENODEV | the device has no usable TPH capability",
        )],
    ),
    // The one wording that differs: the DS gate's module parameter.
    Expect {
        scenario: "enable_ds_gate_off_is_refused",
        both: &[],
        v7: &[AnyStarts(
            "enable ds: err EOPNOTSUPP | DS mode is disabled on this host (vfio-pci enable_unsafe_tph_ds_mode=0)",
        )],
        feature: &[AnyStarts(
            "enable ds: err EOPNOTSUPP | TPH is disabled on this host (vfio-pci enable_unsafe_tph=0)",
        )],
    },
    // The parameter off, IV mode: v7 gates DS only; the feature revision gates all of TPH
    // (Control write refused, the feature missing for SET).
    Expect {
        scenario: "iv_with_unsafe_param_off",
        both: &[Len(4), Line(3, "disable: ok ")],
        v7: &[
            Line(0, "cap: ok Capabilities { iv: true, ds: false, st_table_size: 16 }"),
            Line(1, "enable iv: ok "),
            Line(2, "set-st 0=1: ok "),
        ],
        feature: &[
            Line(0, "cap: ok Capabilities { iv: false, ds: false, st_table_size: 16 }"),
            Line(
                1,
                "enable iv: err EOPNOTSUPP | TPH is disabled on this host (vfio-pci enable_unsafe_tph=0): EOPNOTSUPP (95)",
            ),
            Starts(
                2,
                "set-st 0=1: err ENOTTY | this kernel has no VFIO TPH interface for this device: VFIO_DEVICE_FEATURE 13 (TPH_ST) answered ENOTTY",
            ),
            Regs("control: Some(0)"),
        ],
    },
    all(
        "enable_twice_is_busy",
        &[
            Line(0, "enable iv: ok "),
            Starts(1, "enable iv: err EBUSY | TPH is already enabled"),
            Tail(2, &["disable: ok ", "disable: ok "]),
        ],
    ),
    all(
        "enable_without_root_port_completer_is_refused",
        &[Starts(
            1,
            "enable iv: err EINVAL | the device cannot enable TPH in IV mode",
        )],
    ),
    all(
        "set_st_msix_needs_enabled_vector",
        &[
            Starts(2, "set-st 0=1: err ENXIO | MSI-X vector 0 is not enabled"),
            Line(5, "set-st 0..3: ok "),
            Starts(6, "set-st 4=1: err ENXIO | MSI-X vector 4 is not enabled"),
        ],
    ),
    all(
        "set_st_index_beyond_table_is_refused",
        &[Starts(
            2,
            "set-st 16=1: err EINVAL | steering table index 16 is beyond the table (16 entries)",
        )],
    ),
    all(
        "set_st_all_or_nothing_on_bad_cpu",
        &[
            Starts(2, "set-st 0=1 1=99: err EINVAL | CPU 99 does not exist"),
            Regs("st_table: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"),
        ],
    ),
    // The feature adapter splits the batch into one call per run: run 0-1 is programmed, then
    // cleared when run 5 fails; v7 refuses the whole batch at once. Both end the same: entries 2
    // and 3 hold 16-bit VM tags 0x100 + uid.
    all(
        "set_st_batch_of_runs_is_all_or_nothing",
        &[
            Starts(
                2,
                "set-st 0=1 1=2 5=3: err ENXIO | MSI-X vector 5 is not enabled",
            ),
            Line(3, "set-st 2=1 3=2: ok "),
            Regs("st_table: [0, 0, 257, 258, 0, 0"),
        ],
    ),
    all(
        "set_st_needs_tph_enabled",
        &[Starts(0, "set-st 0=1: err EINVAL | TPH is not enabled")],
    ),
    // CPU 1 -> UID 1 -> 8-bit VM tag 1 (the root port completes TPH only); entry 5 cleared.
    all(
        "set_st_clear_with_all_ones_cpu",
        &[
            Is(&["enable iv: ok ", "set-st 0=1 5=3: ok ", "clear 5: ok "]),
            Regs("st_table: ["),
            RegsLack("st_table: [0,"),
            Regs("st_table: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]"),
        ],
    ),
    all(
        "set_st_without_table_is_no_table",
        &[Starts(
            2,
            "set-st 0=1: err ENODEV | the device has no steering table",
        )],
    ),
    all("get_st_needs_ds_mode", &[Starts(0, NOT_DS), Starts(2, NOT_DS)]),
    // 16-bit tags (extended TPH end to end): VM 0x100 + uid, PM 0x8000 | uid.
    all(
        "get_st_ds_returns_tags",
        &[
            Line(0, "enable ds: ok "),
            Starts(1, "get-st 0 1 2:pm 7: ok ["),
            Line(1, "get-st 0 1 2:pm 7: ok [256, 257, 32770, 263]"),
            Starts(2, "get-st 8: err EINVAL | CPU 8 does not exist"),
        ],
    ),
    all(
        "reset_keeps_core_enabled_tph",
        &[Is(&[
            "enable iv: ok ",
            "set-st 0=2 1=3: ok ",
            "reset: ok ",
            "set-st 2=4: ok ",
        ])],
    ),
    // v7 bytes: the v7 kernel answers each with its errno; a feature kernel has no such ioctl.
    Expect {
        scenario: "raw_buffers_get_kernel_errno",
        both: &[Len(6)],
        v7: &[
            Holds(0, "Err(\"EOPNOTSUPP\")"),
            Holds(1, "Err(\"EINVAL\")"),
            Holds(2, "Ok(0)"),
            Holds(3, "Err(\"EINVAL\")"),
            Holds(4, "Err(\"EFAULT\")"),
            Holds(5, "Err(\"EINVAL\")"),
        ],
        feature: &[Every("Err(\"ENOTTY\")")],
    },
    // Feature bytes, played on the feature revision only (a v7 kernel traps no feature ioctl, so
    // nothing would cross the syscall boundary).
    Expect {
        scenario: "raw_feature_buffers_get_kernel_errno",
        both: &[],
        v7: &[],
        feature: &[
            Len(7),
            Starts(0, "raw probe set: ok Ok(0)"),
            // With enable_unsafe_tph the feature has both directions.
            Starts(1, "raw probe get: ok Ok(0)"),
            Starts(2, "raw unknown feature: ok Err(\"ENOTTY\")"),
            Starts(3, "raw get and set: ok Err(\"EINVAL\")"),
            Starts(4, "raw argsz 4: ok Err(\"EINVAL\")"),
            Starts(5, "raw argsz beyond: ok Err(\"EFAULT\")"),
            Starts(6, "raw set count 0: ok Err(\"EINVAL\")"),
        ],
    },
    all(
        "queue_steering_binds_retargets_tears_down",
        &[
            Line(0, "irqs 8: ok "),
            Starts(1, "bind: Ok([Programmed { index: 0 }"),
            Line(2, "retarget: Ok(Programmed { index: 3 })"),
            Starts(3, "retarget unknown: Err(\"queue 42 is not bound"),
            Line(4, "teardown: ok"),
        ],
    ),
];

/// The facts `scenario` must end with on a kernel speaking `abi`.
pub fn facts(abi: KernelAbi, scenario: &str) -> Vec<&'static Fact> {
    let Some(e) = EXPECT.iter().find(|e| e.scenario == scenario) else {
        return Vec::new();
    };
    let only = match abi {
        KernelAbi::V7 => e.v7,
        KernelAbi::Feature => e.feature,
        other => panic!("no expected facts for {other:?}"),
    };
    e.both.iter().chain(only).collect()
}

/// The scenarios the table states facts about.
pub fn scenarios() -> impl Iterator<Item = &'static str> {
    EXPECT.iter().map(|e| e.scenario)
}

fn line<'a>(scenario: &str, t: &'a [String], n: usize) -> &'a str {
    t.get(n)
        .unwrap_or_else(|| panic!("{scenario}: no line {n} in {t:?}"))
}

impl Fact {
    /// Panics (the test fails) unless the fact holds of transcript `t` and registers `regs`.
    pub fn check(&self, scenario: &str, t: &[String], regs: &str) {
        let holds = match *self {
            Is(want) => t == want,
            Line(n, want) => line(scenario, t, n) == want,
            Starts(n, want) => line(scenario, t, n).starts_with(want),
            Holds(n, want) => line(scenario, t, n).contains(want),
            Tail(n, want) => t.get(n..).is_some_and(|rest| rest == want),
            AnyStarts(want) => t.iter().any(|l| l.starts_with(want)),
            Every(want) => t.iter().all(|l| l.contains(want)),
            Len(n) => t.len() == n,
            Regs(want) => regs.contains(want),
            RegsLack(want) => !regs.contains(want),
        };
        assert!(holds, "{scenario}: {self:?} fails\n{t:#?}\n{regs}");
    }
}
