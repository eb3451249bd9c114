//! Shared by the real-kernel tests: a QEMU guest (`tph-guest`) holding this build's `tphctl`
//! and the host's `lspci`, and one boot per kernel per test binary, shared by its tests.

use std::sync::OnceLock;

use tph_guest::{Guest, GuestRun, Series, DEBIAN_6_1, DEBIAN_6_12};

/// A guest of `series` with `tphctl` at `/bin/tphctl` and pciutils' `lspci`.
pub fn guest(series: Series) -> Guest {
    let mut g = Guest::new(series, env!("CARGO_TARGET_TMPDIR"));
    g.binaries = vec![
        (env!("CARGO_BIN_EXE_tphctl").into(), "/bin/tphctl".into()),
        ("/usr/bin/lspci".into(), "/usr/bin/lspci".into()),
    ];
    g
}

/// The runs of `make` on both kernels, booted in parallel by whichever test asks first.
pub type Runs = OnceLock<Vec<(Series, Option<GuestRun>)>>;

/// The run of `make(series)` from `cell`; `None` when QEMU cannot run here (the harness said
/// why). A guest that did not get through its scenarios fails the test with its console.
pub fn shared(
    cell: &'static Runs,
    series: Series,
    make: fn(Series) -> Guest,
) -> Option<&'static GuestRun> {
    let runs = cell.get_or_init(|| {
        std::thread::scope(|s| {
            let boots: Vec<_> = [DEBIAN_6_1, DEBIAN_6_12]
                .map(|k| (k, s.spawn(move || make(k).run())))
                .into_iter()
                .collect();
            boots
                .into_iter()
                .map(|(k, h)| (k, h.join().unwrap_or(None)))
                .inspect(|(k, run)| report(*k, run.as_ref()))
                .collect()
        })
    });
    let run = runs.iter().find(|(k, _)| *k == series)?.1.as_ref();
    let Some(run) = run else {
        // Either QEMU cannot run (said when it was tried) or the boot panicked (its test says).
        eprintln!("no guest run for {}: see the messages above", series.0);
        return None;
    };
    if !run.finished {
        run.fail("(all)", "the guest did not get through its scenarios");
    }
    Some(run)
}

/// Says once how a boot went (shown with `--nocapture` or when a test fails).
fn report(series: Series, run: Option<&GuestRun>) {
    if let Some(run) = run {
        eprintln!(
            "guest {} ({}): first scenario at {:.1} s of guest uptime, QEMU ran {:.1?}, boot \
             attempts {}",
            series.0, run.release, run.boot_seconds, run.took, run.attempts
        );
    }
}

/// `-device D` for each of `list`.
pub fn devices(list: &[&str]) -> Vec<String> {
    list.iter()
        .flat_map(|d| ["-device".to_string(), d.to_string()])
        .collect()
}
