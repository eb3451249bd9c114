//! Shared by the real-kernel tests: a QEMU guest (`tph-guest`) holding this build's `tphctl`
//! and the host's `lspci`, and one boot per kernel per test binary, shared by its tests; the
//! rig's guest and `tphctl serve` children for the rig's tests. Each test binary uses a part.
#![allow(dead_code)]

use std::sync::OnceLock;

/// A guest shell function: `bind BDF` binds the function to vfio-pci the way the client's
/// messages say (driver override, unbind from its driver if it has one, probe).
pub const BIND: &str = r#"bind() {
    d=/sys/bus/pci/devices/$1
    echo vfio-pci > $d/driver_override
    [ -e $d/driver ] && echo $1 > $d/driver/unbind
    echo $1 > /sys/bus/pci/drivers_probe
}
"#;

use tph_guest::{Guest, GuestRun, Rig, Series, DEBIAN_6_1, DEBIAN_6_12};

/// A guest of `series` with `tphctl` at `/bin/tphctl` and pciutils' `lspci`.
pub fn guest(series: Series) -> Guest {
    let mut g = Guest::new(series, env!("CARGO_TARGET_TMPDIR"));
    g.binaries = vec![
        (env!("CARGO_BIN_EXE_tphctl").into(), "/bin/tphctl".into()),
        ("/usr/bin/lspci".into(), "/usr/bin/lspci".into()),
    ];
    g
}

/// A guest of the rig's 7.3 kernel with `tphctl`, `lspci` and the guest test module at
/// `/rig/tph_test.ko` (built against the rig's kernel for this test binary).
pub fn rig_guest(rig: Rig) -> Guest {
    static MODULE: OnceLock<Result<std::path::PathBuf, String>> = OnceLock::new();
    let module = MODULE.get_or_init(|| {
        // Per process: two test binaries may build at once.
        let out = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join("rig-module")
            .join(std::process::id().to_string());
        let kos = rig.build_module(std::path::Path::new(tph_guest::rig::TEST_MODULE), &out)?;
        kos.into_iter()
            .find(|k| k.ends_with("tph_test.ko"))
            .ok_or_else(|| "no tph_test.ko".to_string())
    });
    let module = module
        .clone()
        .unwrap_or_else(|e| panic!("the guest test module: {e}"));
    let mut g = Guest::on_rig(rig, env!("CARGO_TARGET_TMPDIR"));
    g.binaries = vec![
        (env!("CARGO_BIN_EXE_tphctl").into(), "/bin/tphctl".into()),
        ("/usr/bin/lspci".into(), "/usr/bin/lspci".into()),
    ];
    g.files = vec![(module, "/rig/tph_test.ko".into())];
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

/// A `tphctl serve --vfio-user` child serving one function, its socket and trace under the
/// rig's QEMU root (so QEMU in the root connects to it); killed if still running when dropped.
pub struct Served {
    child: std::process::Child,
    /// The socket, a host path.
    pub socket: std::path::PathBuf,
    /// The `--trace` file.
    pub trace: std::path::PathBuf,
    out: std::path::PathBuf,
    stdin: Option<std::process::ChildStdin>,
}

impl Served {
    /// Starts `tphctl serve --vfio-user DIR/NAME.sock --trace DIR/NAME.trace ARGS...` and waits
    /// until it says it listens.
    pub fn start(dir: &std::path::Path, name: &str, args: &[&str]) -> Self {
        Self::start_with(dir, name, args, false)
    }

    /// As [`Served::start`], with standard input a pipe when `piped` (for [`Served::send`]).
    pub fn start_with(dir: &std::path::Path, name: &str, args: &[&str], piped: bool) -> Self {
        let socket = dir.join(format!("{name}.sock"));
        let trace = dir.join(format!("{name}.trace"));
        let out = dir.join(format!("{name}.out"));
        let log = std::fs::File::create(&out).expect("serve output file");
        let err = log.try_clone().expect("serve output file");
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_tphctl"))
            .arg("serve")
            .arg("--vfio-user")
            .arg(&socket)
            .arg("--trace")
            .arg(&trace)
            .args(args)
            .stdin(if piped {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stdout(log)
            .stderr(err)
            .spawn()
            .expect("starting tphctl serve");
        let mut child = child;
        let stdin = child.stdin.take();
        let mut served = Self {
            child,
            socket,
            trace,
            out,
            stdin,
        };
        let start = std::time::Instant::now();
        loop {
            if served.output().contains("listening on") {
                return served;
            }
            if let Ok(Some(status)) = served.child.try_wait() {
                panic!(
                    "tphctl serve {args:?} exited ({status}): {}",
                    served.output()
                );
            }
            if start.elapsed() > std::time::Duration::from_secs(60) {
                panic!("tphctl serve {args:?} did not listen: {}", served.output());
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// Writes `line` to the server's standard input (started with `piped`).
    pub fn send(&mut self, line: &str) {
        use std::io::Write;
        let stdin = self
            .stdin
            .as_mut()
            .expect("a server started with piped stdin");
        writeln!(stdin, "{line}").expect("writing to tphctl serve");
        stdin.flush().expect("writing to tphctl serve");
    }

    /// What the server printed (standard output and error).
    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// Waits (up to 30 s) for the server to end once its client has left: its exit status,
    /// output and trace.
    pub fn finish(mut self) -> (Option<i32>, String, String) {
        drop(self.stdin.take());
        let start = std::time::Instant::now();
        let status = loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                break status.code();
            }
            if start.elapsed() > std::time::Duration::from_secs(30) {
                break None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        };
        let trace = std::fs::read_to_string(&self.trace).unwrap_or_default();
        (status, self.output(), trace)
    }

    /// `-device` JSON for QEMU's vfio-user client on this socket at `place` (`"bus":"rp1"`).
    pub fn device(&self, rig: &Rig, place: &str) -> String {
        let path = rig
            .guest_path(&self.socket)
            .expect("socket under the QEMU root");
        format!(
            "{{\"driver\":\"vfio-user-pci\",\"socket\":{{\"path\":\"{path}\",\"type\":\"unix\"}},{place}}}"
        )
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One function the rig tests serve: `tphctl serve --emulated SERVED` of the default machine,
/// placed by QEMU where `place` says, seen by the guest as `guest`.
#[derive(Clone, Copy, Debug)]
pub struct RigFunction {
    /// The server's name (its socket, trace and output files).
    pub name: &'static str,
    /// The default machine's function served (`--emulated`).
    pub served: &'static str,
    /// QEMU `-device` placement (`"bus":"rp1"`).
    pub place: &'static str,
    /// The root port `place` names, as (N of `rpN`, its slot on the root bus); `None` on the
    /// root bus.
    pub port: Option<(u8, u8)>,
    /// The BDF the guest enumerates it at.
    pub guest: &'static str,
}

/// The functions a rig boot serves: the ST table in MSI-X (2048 entries, extended requester)
/// behind rp1; in the capability (16 entries, extended) behind rp2; in the capability (8
/// entries, 8-bit requester only) behind rp3; and an integrated endpoint on the root bus (QEMU
/// shows an endpoint there as an RCiEP; the served function is one already).
pub const RIG_FUNCTIONS: [RigFunction; 4] = [
    RigFunction {
        name: "ep_msix",
        served: "01:00.0",
        place: "\"bus\":\"rp1\"",
        port: Some((1, 2)),
        guest: "01:00.0",
    },
    RigFunction {
        name: "ep_cap",
        served: "02:00.0",
        place: "\"bus\":\"rp2\"",
        port: Some((2, 3)),
        guest: "02:00.0",
    },
    RigFunction {
        name: "ep_8bit",
        served: "04:00.0",
        place: "\"bus\":\"rp3\"",
        port: Some((3, 4)),
        guest: "03:00.0",
    },
    RigFunction {
        name: "rciep",
        served: "00:05.0",
        place: "\"bus\":\"pcie.0\",\"addr\":\"0x5\"",
        port: None,
        guest: "00:05.0",
    },
];

/// A fifth function for the tests that want it: no ST table (served 03:00.0: No-ST and DS
/// modes only, extended requester) behind rp4, at slot 6 (5 is the integrated endpoint's).
pub const NO_TABLE_FUNCTION: RigFunction = RigFunction {
    name: "ep_notable",
    served: "03:00.0",
    place: "\"bus\":\"rp4\"",
    port: Some((4, 6)),
    guest: "04:00.0",
};

/// The firmware SSDT (`tests/data/guest/tph-dsm.asl`: the host bridge `_DSM`, for processor
/// UID u VM tag 0x40+u, extended 0x100+u; PM tag 0xE0-u, extended 0xF000+u) compiled by the
/// host's `iasl` into `dir`; its path as QEMU names it.
pub fn rig_ssdt(rig: &Rig, dir: &std::path::Path) -> String {
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

/// A rig boot's result: the guest's run and, per served function, its server's exit status,
/// output and trace.
pub struct RigBoot {
    /// The guest's run.
    pub run: GuestRun,
    /// [`Served::finish`] of each served function, in the order given.
    pub servers: Vec<(Option<i32>, String, String)>,
}

/// CPUs of a rig boot.
pub const RIG_CPUS: u32 = 2;

/// Boots the rig's 7.3 guest with [`RIG_CPUS`] CPUs, the firmware SSDT, `functions` served
/// (usually [`RIG_FUNCTIONS`]) and the root ports they sit behind (the rig's stand-in reports
/// their completer), debugfs mounted and the test module loaded; runs `scenarios` (whole
/// scripts) in order. `tag` names the work directory, `append` is added to the kernel command
/// line.
pub fn rig_boot(
    rig: &Rig,
    tag: &str,
    append: &str,
    iommu: bool,
    functions: &[RigFunction],
    scenarios: &[(&str, String)],
) -> RigBoot {
    let dir = rig.work_dir(tag).expect("a directory under the QEMU root");
    let served: Vec<Served> = functions
        .iter()
        .map(|f| Served::start(&dir, f.name, &["--emulated", f.served]))
        .collect();
    let mut g = rig_guest(rig.clone());
    g.cpus = RIG_CPUS;
    g.iommu = iommu;
    g.append = append.to_string();
    g.qemu_args = vec![
        "-object".into(),
        "memory-backend-memfd,id=mem,size=1024M,share=on".into(),
        "-machine".into(),
        "memory-backend=mem".into(),
        "-acpitable".into(),
        format!("file={}", rig_ssdt(rig, &dir)),
    ];
    for (i, slot) in functions.iter().filter_map(|f| f.port) {
        g.qemu_args.push("-device".into());
        g.qemu_args.push(format!(
            "{},id=rp{i},chassis={i},slot={i},addr={slot}",
            rig.root_port
        ));
    }
    for (s, f) in served.iter().zip(functions) {
        g.qemu_args.push("-device".into());
        g.qemu_args.push(s.device(rig, f.place));
    }
    g.setup = "mount -t debugfs debugfs /sys/kernel/debug\ninsmod /rig/tph_test.ko\n".into();
    for (name, script) in scenarios {
        g.scenario(name, script);
    }
    let run = g.run().expect("the rig runs");
    let servers = served.into_iter().map(Served::finish).collect();
    let _ = std::fs::remove_dir_all(&dir);
    RigBoot { run, servers }
}
