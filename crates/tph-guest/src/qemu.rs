//! Starting QEMU: the accelerator (KVM only when a quick probe boots, else TCG) and a run bounded
//! by a deadline.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::initramfs::find_in_path;

/// The QEMU binary.
pub const QEMU: &str = "qemu-system-x86_64";

/// How QEMU ended.
#[derive(Debug)]
pub enum Ended {
    /// QEMU exited (the guest powered off, or QEMU failed) with this status.
    Exited(std::process::ExitStatus),
    /// The deadline passed and QEMU was killed.
    TimedOut,
    /// The guest did not come up (its `/init` did not report) in time; QEMU was killed.
    NoBoot,
}

/// A check that the guest came up, and how long it may take.
pub struct BootWatch<'a> {
    /// Time allowed until `up` holds.
    pub within: Duration,
    /// Whether the guest is up (its `/init` has reported).
    pub up: &'a dyn Fn() -> bool,
}

/// QEMU, or why it cannot run here.
pub fn qemu() -> Result<PathBuf, String> {
    let path = find_in_path(QEMU).ok_or_else(|| {
        format!("{QEMU} is not installed (run `bash .ci/guest-deps` as root: QEMU from backports)")
    })?;
    let out = Command::new(&path)
        .arg("--version")
        .output()
        .map_err(|e| format!("{QEMU} cannot run: {e}"))?;
    if !out.status.success() {
        return Err(format!("{QEMU} --version failed: {out:?}"));
    }
    Ok(path)
}

/// Runs `cmd` until it exits or `limit` passes (then kills it: a child of this process).
/// Its stdout and stderr go to `log` (none: discarded). With `watch`, a guest that is not up in
/// time is killed early ([`Ended::NoBoot`]).
pub fn run_bounded(
    cmd: &mut Command,
    limit: Duration,
    log: Option<&Path>,
    watch: Option<BootWatch<'_>>,
) -> Result<(Ended, Duration), String> {
    let start = Instant::now();
    let (out, err) = match log {
        Some(path) => {
            let f = std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()))?;
            let g = f.try_clone().map_err(|e| e.to_string())?;
            (Stdio::from(f), Stdio::from(g))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    let mut child: Child = cmd
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .map_err(|e| format!("starting {cmd:?}: {e}"))?;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            return Ok((Ended::Exited(status), start.elapsed()));
        }
        let stuck = watch
            .as_ref()
            .filter(|w| start.elapsed() > w.within)
            .is_some_and(|w| !(w.up)());
        if stuck || start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let ended = if stuck {
                Ended::NoBoot
            } else {
                Ended::TimedOut
            };
            return Ok((ended, start.elapsed()));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `-accel kvm -cpu host` when `/dev/kvm` opens and a guest that only powers off finishes within
/// a few seconds (nested KVM can hang at boot); else `-accel tcg -cpu max`. The answer is kept
/// in `cache` for this host boot.
pub fn accel_args(cache: &Path, kernel: &Path, initrd: &Path) -> Vec<String> {
    let tcg = ["-accel", "tcg", "-cpu", "max"].map(String::from).to_vec();
    let kvm = ["-accel", "kvm", "-cpu", "host"].map(String::from).to_vec();
    if std::env::var_os("TPH_GUEST_ACCEL").is_some_and(|v| v == "tcg") {
        return tcg;
    }
    let boot_id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let memo = cache.join(format!("accel-{}", boot_id.trim()));
    if let Ok(kind) = std::fs::read_to_string(&memo) {
        return if kind == "kvm" { kvm } else { tcg };
    }
    let works = kvm_boots(kernel, initrd);
    let _ = std::fs::write(&memo, if works { "kvm" } else { "tcg" });
    if works {
        kvm
    } else {
        tcg
    }
}

fn kvm_boots(kernel: &Path, initrd: &Path) -> bool {
    if std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/kvm")
        .is_err()
    {
        return false;
    }
    let Ok(qemu) = qemu() else { return false };
    let mut cmd = Command::new(qemu);
    cmd.args([
        "-accel", "kvm", "-cpu", "host", "-machine", "q35", "-m", "256",
    ])
    .args([
        "-nodefaults",
        "-display",
        "none",
        "-no-reboot",
        "-serial",
        "null",
    ])
    .arg("-kernel")
    .arg(kernel)
    .arg("-initrd")
    .arg(initrd)
    .args(["-append", "console=ttyS0 panic=-1 quiet tph_probe=1"]);
    matches!(
        run_bounded(&mut cmd, Duration::from_secs(12), None, None),
        Ok((Ended::Exited(s), _)) if s.success()
    )
}
