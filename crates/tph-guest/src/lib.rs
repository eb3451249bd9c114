//! Test-only: real Linux kernels in the loop.
//!
//! A [`Guest`] is a QEMU `q35` machine with a chosen PCI topology booting one of Debian's cloud
//! kernels ([`kernel::DEBIAN_6_1`], [`kernel::DEBIAN_6_12`], fetched as packages and unpacked,
//! never installed) with a busybox initramfs holding the binaries, modules and scenario scripts
//! the test asks for. [`Guest::run`] boots it once, runs every scenario in order (each in its
//! own shell, under its own timeout), powers off, and returns each scenario's output and exit
//! status ([`GuestRun`]); the whole boot is bounded by a deadline. A failing assertion prints
//! the guest's console.
//!
//! [`Guest::on_rig`] boots the rig's 7.3 kernel (built with the TPH core, [`rig`]) under the
//! rig's QEMU 11.1 instead; [`rig::for_test`] says whether a test can run it.
//!
//! Where QEMU itself cannot run, [`Guest::run`] returns `None` after printing why (the only
//! skip), except when the environment variable `CI` is set (not empty): then it fails. Anything else that goes wrong (no kernel package, a kernel that does not come up,
//! a scenario that never ran) fails the test with the console attached.
#![forbid(unsafe_code)]

pub mod cpio;
pub mod initramfs;
pub mod kernel;
pub mod qemu;
pub mod rig;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

pub use kernel::{Series, DEBIAN_6_1, DEBIAN_6_12};
pub use rig::{Rig, RIG_7_3};

/// One named shell script run in the guest (busybox `sh`, as root, in `/tmp`).
#[derive(Debug, Clone)]
pub struct Scenario {
    /// Its name, the key of its result.
    pub name: String,
    /// The script.
    pub script: String,
}

/// A guest machine and what to run in it.
#[derive(Debug, Clone)]
pub struct Guest {
    /// The kernel series.
    pub series: Series,
    /// Virtual CPUs.
    pub cpus: u32,
    /// `-device intel-iommu` and `intel_iommu=on`.
    pub iommu: bool,
    /// Extra QEMU arguments (devices, `-acpitable file=...`).
    pub qemu_args: Vec<String>,
    /// Modules (and their dependencies) put in the initramfs; scripts load them with `modprobe`.
    pub modules: Vec<&'static str>,
    /// Host executables copied in (with their libraries): (host path, guest path).
    pub binaries: Vec<(PathBuf, String)>,
    /// Runs before the scenarios; its output is on the console.
    pub setup: String,
    /// The scenarios, run in order.
    pub scenarios: Vec<Scenario>,
    /// Bound on one scenario, in seconds.
    pub scenario_timeout: u32,
    /// Bound on the whole boot.
    pub deadline: Duration,
    /// Time allowed until the guest's `/init` reports (else the boot is tried again).
    pub boot_limit: Duration,
    /// Where kernels and initramfs images are kept (the test's `CARGO_TARGET_TMPDIR`).
    pub cache: PathBuf,
    /// Boot the rig's 7.3 kernel under its QEMU 11.1 instead of a Debian kernel.
    pub rig: Option<Rig>,
    /// Host files copied in: (host path, guest path).
    pub files: Vec<(PathBuf, String)>,
    /// Added to the kernel command line.
    pub append: String,
}

/// How one boot starts QEMU: the paths as QEMU names them, and where the host reads the two
/// serial ports.
struct Launch {
    qemu: Vec<String>,
    accel: Vec<String>,
    kernel: String,
    initrd: String,
    console: (PathBuf, String),
    output: (PathBuf, String),
    log: PathBuf,
}

impl Guest {
    /// A q35 guest of `series` with 1 CPU, no IOMMU, no devices, caching under `cache`.
    pub fn new(series: Series, cache: impl Into<PathBuf>) -> Self {
        Self {
            series,
            cpus: 1,
            iommu: false,
            qemu_args: Vec::new(),
            modules: Vec::new(),
            binaries: Vec::new(),
            setup: String::new(),
            scenarios: Vec::new(),
            scenario_timeout: 60,
            deadline: Duration::from_secs(240),
            boot_limit: Duration::from_secs(90),
            cache: cache.into(),
            rig: None,
            files: Vec::new(),
            append: String::new(),
        }
    }

    /// A q35 guest of the rig's 7.3 kernel with 1 CPU, no IOMMU, no devices; its `/rig/` holds
    /// the rig's guest files and its set-up starts with the rig's preparation (root ports
    /// report the TPH completer "TPH only").
    pub fn on_rig(rig: Rig, cache: impl Into<PathBuf>) -> Self {
        let mut g = Self::new(RIG_7_3, cache);
        g.rig = Some(rig);
        g
    }

    /// Adds a scenario.
    pub fn scenario(&mut self, name: &str, script: &str) -> &mut Self {
        self.scenarios.push(Scenario {
            name: name.to_string(),
            script: script.to_string(),
        });
        self
    }

    /// Boots, runs every scenario, powers off. `None` (with a message on stderr) only when QEMU
    /// cannot run on this machine; every other failure panics with what is known.
    pub fn run(&self) -> Option<GuestRun> {
        if let Some(rig) = &self.rig {
            return Some(self.run_rig(rig));
        }
        let qemu = match qemu::qemu() {
            Ok(q) => q,
            Err(why) => {
                // Under CI a guest test that cannot boot fails: it must never count as passed.
                assert!(
                    std::env::var_os("CI").is_none_or(|v| v.is_empty()),
                    "guest {} kernel: QEMU cannot run here, and CI is set (guest tests must \
                     run, not skip, under CI; .ci/run installs QEMU): {why}",
                    self.series.0
                );
                // Straight to the process's stderr: the test harness shows it even for a
                // passing test (eprintln! would be captured and hidden).
                use std::io::Write;
                let _ = writeln!(
                    std::io::stderr(),
                    "SKIPPED (guest {} kernel): QEMU cannot run here: {why}",
                    self.series.0
                );
                return None;
            }
        };
        let cache = self.cache.join("guest");
        std::fs::create_dir_all(&cache).expect("guest cache directory");
        let kernel = kernel::fetch(&cache.join("kernels"), self.series)
            .unwrap_or_else(|e| panic!("kernel {}: {e}", self.series.0));
        let work = cache.join(format!(
            "run-{}-{}-{}",
            self.series.0,
            std::process::id(),
            unique()
        ));
        std::fs::create_dir_all(&work).expect("guest work directory");
        let initrd = work.join("initrd.cpio");
        let image = self
            .initramfs(&kernel)
            .unwrap_or_else(|e| panic!("initramfs: {e}"));
        std::fs::write(&initrd, image).expect("writing the initramfs");
        let host = |p: &Path| p.display().to_string();
        let launch = Launch {
            qemu: vec![qemu.display().to_string()],
            accel: qemu::accel_args(&cache, &kernel.vmlinuz(), &initrd),
            kernel: host(&kernel.vmlinuz()),
            initrd: host(&initrd),
            console: (work.join("console.log"), host(&work.join("console.log"))),
            output: (work.join("output.log"), host(&work.join("output.log"))),
            log: work.join("qemu.log"),
        };
        let run = self.boot(&launch);
        let _ = std::fs::remove_dir_all(&work);
        Some(run)
    }

    /// Boots the rig's kernel under the rig's QEMU: every file QEMU opens is put under the
    /// QEMU root. Software emulation only (the QEMU root has no `/dev/kvm`).
    fn run_rig(&self, rig: &Rig) -> GuestRun {
        let work = rig.work_dir("boot").unwrap_or_else(|e| panic!("rig: {e}"));
        let kernel = work.join("bzImage");
        std::fs::copy(&rig.kernel, &kernel)
            .unwrap_or_else(|e| panic!("copying {}: {e}", rig.kernel.display()));
        let image = self
            .rig_initramfs(rig)
            .unwrap_or_else(|e| panic!("initramfs: {e}"));
        let initrd = work.join("initrd.cpio");
        std::fs::write(&initrd, image).expect("writing the initramfs");
        let guest = |p: &Path| rig.guest_path(p).unwrap_or_else(|e| panic!("rig: {e}"));
        let launch = Launch {
            qemu: rig.qemu.clone(),
            accel: ["-accel", "tcg", "-cpu", "max"].map(String::from).to_vec(),
            kernel: guest(&kernel),
            initrd: guest(&initrd),
            console: (work.join("console.log"), guest(&work.join("console.log"))),
            output: (work.join("output.log"), guest(&work.join("output.log"))),
            log: work.join("qemu.log"),
        };
        let run = self.boot(&launch);
        let _ = std::fs::remove_dir_all(&work);
        run
    }

    fn rig_initramfs(&self, rig: &Rig) -> Result<Vec<u8>, String> {
        let mut fs = initramfs::Initramfs::new()?;
        let dir = std::fs::read_dir(&rig.guest_files)
            .map_err(|e| format!("{}: {e}", rig.guest_files.display()))?;
        for entry in dir {
            let path = entry.map_err(|e| e.to_string())?.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            fs.host_file(&path, &format!("/rig/{name}"), 0o644)?;
        }
        let setup = format!("{}\n{}", rig.guest_prep, self.setup);
        self.fill(&mut fs, &setup)?;
        Ok(fs.finish())
    }

    fn initramfs(&self, kernel: &kernel::KernelTree) -> Result<Vec<u8>, String> {
        let mut fs = initramfs::Initramfs::new()?;
        fs.modules(kernel, &self.modules)?;
        self.fill(&mut fs, &self.setup)?;
        Ok(fs.finish())
    }

    /// Binaries, files, `/init`, the set-up and the scenarios.
    fn fill(&self, fs: &mut initramfs::Initramfs, setup: &str) -> Result<(), String> {
        for (host, guest) in &self.binaries {
            fs.binary(host, guest)?;
        }
        for (host, guest) in &self.files {
            fs.host_file(host, guest, 0o644)?;
        }
        fs.add("/init", 0o755, init_script().as_bytes());
        fs.add("/setup.sh", 0o644, setup.as_bytes());
        let mut list = String::new();
        for (i, s) in self.scenarios.iter().enumerate() {
            let file = format!("/scenarios/{i:03}.sh");
            fs.add(&file, 0o644, s.script.as_bytes());
            list.push_str(&format!("{file} {}\n", s.name));
        }
        fs.add("/scenarios/list", 0o644, list.as_bytes());
        fs.add(
            "/scenarios/timeout",
            0o644,
            self.scenario_timeout.to_string().as_bytes(),
        );
        Ok(())
    }

    /// Boots up to [`BOOT_ATTEMPTS`] times: under TCG on a loaded host a kernel can hang or
    /// panic before its `/init` runs (timer trouble; seen on 6.12), which is no fault of the
    /// code under test. Every attempt that did not come up is reported on stderr and its
    /// console kept in the run's console. Once `/init` has run, nothing is retried.
    fn boot(&self, launch: &Launch) -> GuestRun {
        let mut earlier = String::new();
        for attempt in 1..=BOOT_ATTEMPTS {
            let (ended, took, console, output) = self.boot_once(launch);
            // No marker from /init: hung (killed) or panicked (QEMU exited) before it ran.
            if !output.contains("@@@GUEST ") && attempt < BOOT_ATTEMPTS {
                eprintln!(
                    "guest {}: no /init after {took:.1?} (attempt {attempt}, QEMU {ended:?}), \
                     booting again",
                    self.series.0
                );
                earlier.push_str(&format!(
                    "--- attempt {attempt}: no /init after {took:.1?} ---\n{console}\n"
                ));
                continue;
            }
            let mut run = GuestRun::parse(self.series, &output, earlier + &console, ended, took);
            run.attempts = attempt;
            return run;
        }
        unreachable!("the last attempt returns")
    }

    fn boot_once(&self, launch: &Launch) -> (qemu::Ended, Duration, String, String) {
        let (console, output) = (&launch.console.0, &launch.output.0);
        let _ = std::fs::remove_file(console);
        let _ = std::fs::remove_file(output);
        let mut cmd = Command::new(&launch.qemu[0]);
        cmd.args(&launch.qemu[1..]).args(&launch.accel);
        cmd.args(["-machine", "q35", "-m", "1024", "-smp"])
            .arg(self.cpus.to_string())
            .args(["-nodefaults", "-display", "none", "-no-reboot"])
            .arg("-serial")
            .arg(format!("file:{}", launch.console.1))
            .arg("-serial")
            .arg(format!("file:{}", launch.output.1))
            .arg("-kernel")
            .arg(&launch.kernel)
            .arg("-initrd")
            .arg(&launch.initrd);
        // no_timer_check: under TCG on a loaded host the IO-APIC timer check can miss its
        // window, and with interrupt remapping on (intel-iommu) the kernel then panics
        // ("timer doesn't work through Interrupt-remapped IO-APIC"; seen on 6.12).
        let mut append = String::from("console=ttyS0 panic=-1 loglevel=4 no_timer_check");
        if self.iommu {
            // Rig guests get devices QEMU passes through (vfio-user): the vIOMMU must report
            // every mapping change to QEMU ("requires caching mode" otherwise).
            let iommu = if self.rig.is_some() {
                "intel-iommu,caching-mode=on"
            } else {
                "intel-iommu"
            };
            cmd.args(["-device", iommu]);
            append.push_str(" intel_iommu=on");
        }
        if !self.append.is_empty() {
            append.push(' ');
            append.push_str(&self.append);
        }
        cmd.arg("-append").arg(append).args(&self.qemu_args);
        let log = &launch.log;
        let up = || std::fs::read_to_string(output).is_ok_and(|o| o.contains("@@@GUEST "));
        let watch = qemu::BootWatch {
            within: self.boot_limit,
            up: &up,
        };
        let (ended, took) = qemu::run_bounded(&mut cmd, self.deadline, Some(log), Some(watch))
            .unwrap_or_else(|e| panic!("QEMU: {e}"));
        let mut console_text = std::fs::read_to_string(console).unwrap_or_default();
        let log = std::fs::read_to_string(log).unwrap_or_default();
        if !log.trim().is_empty() {
            console_text.push_str("\n--- QEMU's own output ---\n");
            console_text.push_str(&log);
        }
        let output = std::fs::read_to_string(output).unwrap_or_default();
        (ended, took, console_text, output)
    }
}

/// Boots tried before a guest that never reaches its `/init` fails the test.
pub const BOOT_ATTEMPTS: u32 = 3;

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// The guest's `/init`: mounts, runs `/setup.sh`, then each scenario with its output and exit
/// status between markers on the second serial port, then powers off.
fn init_script() -> &'static str {
    r#"#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/sbin:/usr/bin:/usr/sbin HOME=/root
mount -t proc proc /proc
grep -q tph_probe=1 /proc/cmdline && poweroff -f
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
chmod 1777 /tmp
out=/dev/ttyS1
echo "@@@GUEST $(uname -r) up $(cut -d' ' -f1 /proc/uptime)" > $out
sh /setup.sh
limit=$(cat /scenarios/timeout)
while read -r file name; do
    echo "@@@BEGIN $name" > $out
    (cd /tmp && timeout "$limit" sh "$file") > /tmp/.out 2>&1 < /dev/null
    rc=$?
    cat /tmp/.out > $out
    echo "@@@END $name $rc" > $out
done < /scenarios/list
echo "@@@DONE up $(cut -d' ' -f1 /proc/uptime)" > $out
poweroff -f
"#
}

/// One scenario's result.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// Exit status of its script.
    pub status: i32,
    /// Its stdout and stderr, interleaved as written.
    pub output: String,
}

/// What a boot produced.
#[derive(Debug)]
pub struct GuestRun {
    /// The kernel series booted.
    pub series: Series,
    /// `uname -r` in the guest.
    pub release: String,
    /// The first serial port (kernel messages, set-up output).
    pub console: String,
    /// Results by scenario name.
    pub outcomes: HashMap<String, Outcome>,
    /// Whether the guest got through every scenario and powered off.
    pub finished: bool,
    /// Guest uptime when the first scenario started (seconds), as the guest measured it.
    pub boot_seconds: f64,
    /// Wall-clock time of the whole QEMU run.
    pub took: Duration,
    /// How QEMU ended.
    pub ended: String,
    /// Boots it took (more than 1 when a boot never reached `/init`).
    pub attempts: u32,
}

impl GuestRun {
    fn parse(
        series: Series,
        out: &str,
        console: String,
        ended: qemu::Ended,
        took: Duration,
    ) -> Self {
        let mut outcomes = HashMap::new();
        let mut current: Option<(String, String)> = None;
        let mut release = String::new();
        let mut boot_seconds = 0.0;
        let mut finished = false;
        for line in out.lines() {
            let line = line.trim_end_matches('\r');
            if let Some(rest) = line.strip_prefix("@@@GUEST ") {
                let mut w = rest.split_whitespace();
                release = w.next().unwrap_or("").to_string();
                boot_seconds = w.nth(1).and_then(|s| s.parse().ok()).unwrap_or(0.0);
            } else if let Some(name) = line.strip_prefix("@@@BEGIN ") {
                current = Some((name.to_string(), String::new()));
            } else if let Some(rest) = line.strip_prefix("@@@END ") {
                let (name, status) = rest.rsplit_once(' ').unwrap_or((rest, "-1"));
                let output = current.take().map(|c| c.1).unwrap_or_default();
                let status = status.parse().unwrap_or(-1);
                outcomes.insert(name.to_string(), Outcome { status, output });
            } else if line.starts_with("@@@DONE") {
                finished = true;
            } else if let Some((_, text)) = current.as_mut() {
                text.push_str(line);
                text.push('\n');
            }
        }
        GuestRun {
            series,
            release,
            console,
            outcomes,
            finished,
            boot_seconds,
            took,
            ended: format!("{ended:?}"),
            attempts: 1,
        }
    }

    /// The result of `name`; panics (printing the console) when it did not run to the end.
    pub fn outcome<'a>(&'a self, name: &'a str) -> Checked<'a> {
        match self.outcomes.get(name) {
            Some(o) => Checked {
                run: self,
                name,
                outcome: o,
            },
            None => self.fail(name, "the scenario did not finish"),
        }
    }

    /// Panics with `why`, the scenario name and the guest console.
    pub fn fail(&self, name: &str, why: &str) -> ! {
        panic!(
            "guest {} ({}), scenario {name}: {why}\nQEMU: {}, {:.1?}\n--- guest console ---\n{}\n--- end of console ---",
            self.series.0, self.release, self.ended, self.took, self.console
        )
    }
}

/// A scenario's outcome with assertions that print the guest console when they fail.
#[derive(Debug, Clone, Copy)]
pub struct Checked<'a> {
    run: &'a GuestRun,
    name: &'a str,
    outcome: &'a Outcome,
}

impl<'a> Checked<'a> {
    /// The outcome.
    pub fn get(&self) -> &'a Outcome {
        self.outcome
    }

    /// The output.
    pub fn output(&self) -> &'a str {
        &self.outcome.output
    }

    /// Asserts the exit status.
    pub fn status(self, expected: i32) -> Self {
        if self.outcome.status != expected {
            self.fail(&format!(
                "exit status {} (expected {expected})",
                self.outcome.status
            ));
        }
        self
    }

    /// Asserts that the output holds `needle`.
    pub fn contains(self, needle: &str) -> Self {
        if !self.outcome.output.contains(needle) {
            self.fail(&format!("output lacks {needle:?}"));
        }
        self
    }

    /// Asserts that the output does not hold `needle`.
    pub fn lacks(self, needle: &str) -> Self {
        if self.outcome.output.contains(needle) {
            self.fail(&format!("output holds {needle:?}"));
        }
        self
    }

    /// Asserts that exactly one output line holds `needle`, and returns that line.
    pub fn line(self, needle: &str) -> &'a str {
        let lines: Vec<&str> = self
            .outcome
            .output
            .lines()
            .filter(|l| l.contains(needle))
            .collect();
        match lines.as_slice() {
            [one] => one,
            _ => self.fail(&format!(
                "{} lines hold {needle:?} (expected 1)",
                lines.len()
            )),
        }
    }

    /// Panics with `why`, the scenario's output and the guest console.
    pub fn fail(&self, why: &str) -> ! {
        self.run.fail(
            self.name,
            &format!(
                "{why}\n--- scenario output ---\n{}--- end of output ---",
                self.outcome.output
            ),
        )
    }
}

/// One `#[test]` per kernel series for each scenario function `fn NAME(series: Series)`:
/// modules `debian_6_1` and `debian_6_12`, each with a test named after the function.
#[macro_export]
macro_rules! on_each_kernel {
    ($($name:ident),* $(,)?) => {
        mod debian_6_1 {
            $(#[test] fn $name() { super::$name($crate::DEBIAN_6_1) })*
        }
        mod debian_6_12 {
            $(#[test] fn $name() { super::$name($crate::DEBIAN_6_12) })*
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(out: &str) -> GuestRun {
        let status = std::process::Command::new("true")
            .status()
            .expect("true runs");
        GuestRun::parse(
            DEBIAN_6_1,
            out,
            "console".into(),
            qemu::Ended::Exited(status),
            Duration::from_secs(1),
        )
    }

    #[test]
    fn markers_split_outputs_and_statuses_per_scenario() {
        let run = parsed(
            "noise\r\n@@@GUEST 6.1.0-57-cloud-amd64 up 4.25\n@@@BEGIN a b\nline 1\nline 2\n\
             @@@END a b 2\n@@@BEGIN c\n@@@END c 0\n@@@DONE up 9.0\n",
        );
        assert_eq!(run.release, "6.1.0-57-cloud-amd64");
        assert_eq!(run.boot_seconds, 4.25);
        assert!(run.finished);
        let a = run.outcome("a b").status(2);
        assert_eq!(a.output(), "line 1\nline 2\n");
        assert_eq!(run.outcome("c").status(0).output(), "");
    }

    #[test]
    #[should_panic(expected = "scenario d: the scenario did not finish")]
    fn a_scenario_cut_off_by_the_deadline_fails_with_the_console() {
        let run = parsed("@@@GUEST x up 1.0\n@@@BEGIN d\nhalf");
        assert!(!run.finished);
        run.outcome("d");
    }
}
