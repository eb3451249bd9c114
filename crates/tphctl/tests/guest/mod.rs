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

/// A boot's result: the run, `None` when QEMU cannot run here (said on stderr), or why the
/// harness failed (a panic while fetching the kernel or building the initramfs, for example).
pub type Boot = Result<Option<GuestRun>, String>;

/// The runs of `make` on both kernels, booted in parallel by whichever test asks first.
pub type Runs = OnceLock<Vec<(Series, Boot)>>;

/// The run of `make(series)` from `cell`; `None` only when QEMU cannot run here. A harness
/// failure or a guest that did not get through its scenarios fails every test of that kernel,
/// with the console.
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
                .map(|(k, h)| (k, h.join().map_err(|p| panic_text(&*p))))
                .inspect(|(k, boot)| report(*k, boot))
                .collect()
        })
    });
    let boot = &runs.iter().find(|(k, _)| *k == series)?.1;
    let run = match boot {
        Err(why) => panic!("guest {}: the harness failed: {why}", series.0),
        Ok(None) => return None,
        Ok(Some(run)) => run,
    };
    if !run.finished {
        run.fail("(all)", "the guest did not get through its scenarios");
    }
    Some(run)
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".to_string())
}

/// Says once how a boot went (shown with `--nocapture` or when a test fails).
fn report(series: Series, boot: &Boot) {
    if let Ok(Some(run)) = boot {
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
