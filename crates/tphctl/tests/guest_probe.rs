//! The vfio-pci rules probe (`tests/data/probe/vfio_rules.c`, also run by `emulate_probe.rs`)
//! on Debian's 6.1 and 6.12 with a real vfio-pci device, against the same program under
//! `tphctl emulate` on the same function (the guest's own `lspci -xxxx` dump, bound with
//! `--bind all`). Every line must be the same: the real kernels' answers are the truth the
//! emulated kernel follows (issue 16).
//!
//! Each kernel is compared with the MSI-X allocation host it is ([`KERNELS`]), and its output
//! must also be the answers recorded in `tests/data/probe/linux-*.txt`, which
//! `emulate_probe.rs` expects of the emulated NIC: the probe prints only facts that do not
//! depend on the device (the Vector Control line is relative to what the device keeps).
//!
//! The device: a virtio-net function with 8 MSI-X vectors (table and PBA in BAR 1) behind its
//! own root port at 01:00.0, bound to vfio-pci under a virtual Intel IOMMU with interrupt
//! remapping (so the kernel lets the MSI-X table be mapped). One boot per kernel.

mod common;
mod guest;

use guest::BIND;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tph_guest::{Guest, GuestRun, Series, DEBIAN_6_1, DEBIAN_6_12};

use common::{stderr, stdout, tphctl_stdin};

/// The function probed, in the guest and in its dump.
const BDF: &str = "0000:01:00.0";

/// Each kernel: the `--msix-alloc` host it is (6.1 allocates MSI-X vectors at enable only and
/// reports `NORESIZE`; 6.12 allocates them dynamically on x86, interrupt remapping included)
/// and its answers, the file `emulate_probe.rs` expects under `tphctl emulate --emulated`.
const KERNELS: [(Series, &str, &str); 2] = [
    (DEBIAN_6_1, "static", "data/probe/linux-6.1.txt"),
    (DEBIAN_6_12, "dynamic", "data/probe/linux-6.12.txt"),
];

/// The probe compiled with the system `cc` (once per test binary).
fn probe() -> &'static PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("guest-probe");
        std::fs::create_dir_all(&dir).expect("probe directory");
        let exe = dir.join("vfio_rules");
        let out = Command::new("cc")
            .args(["-std=c11", "-D_DEFAULT_SOURCE", "-O1", "-Wall", "-Wextra"])
            .args(["-Werror", "-o"])
            .arg(&exe)
            .arg(common::tests_dir("data/probe/vfio_rules.c"))
            .output()
            .expect("the C compiler `cc` (build-essential) runs");
        assert!(out.status.success(), "cc vfio_rules.c: {}", stderr(&out));
        exe
    })
}

fn probe_guest(series: Series) -> Guest {
    let mut g = guest::guest(series);
    g.iommu = true;
    g.modules = vec!["vfio_pci", "vfio_iommu_type1"];
    g.binaries
        .push((probe().clone(), "/bin/vfio_rules".to_string()));
    g.qemu_args = guest::devices(&[
        "pcie-root-port,id=rp1,chassis=1,slot=1",
        "virtio-net-pci,bus=rp1,vectors=8,romfile=",
    ]);
    g.setup = format!("{BIND}modprobe vfio_pci; modprobe vfio_iommu_type1\nbind {BDF}\n");
    g.scenario("dump", "lspci -xxxx");
    g.scenario("probe", &format!("/bin/vfio_rules {BDF}"));
    g
}

static RUNS: guest::Runs = OnceLock::new();

fn run(series: Series) -> Option<&'static GuestRun> {
    guest::shared(&RUNS, series, probe_guest)
}

/// The probe under `tphctl emulate --dump DUMP --bind all --msix-alloc ALLOC`.
fn emulated(dump: &Path, alloc: &str) -> String {
    let args = [
        "emulate",
        "--dump",
        dump.to_str().unwrap_or_default(),
        "--bind",
        "all",
        "--msix-alloc",
        alloc,
        "--",
        probe().to_str().unwrap_or_default(),
        BDF,
    ];
    let out = tphctl_stdin(&args, b"");
    assert_eq!(
        out.status.code(),
        Some(0),
        "the probe under emulate: {}",
        stderr(&out)
    );
    stdout(&out)
}

fn probe_answers_as_the_real_kernel(series: Series) {
    let Some(run) = run(series) else { return };
    let dump = run.outcome("dump").status(0).output().to_string();
    let real = run.outcome("probe").status(0).output().to_string();
    let Some(&(_, alloc, answers)) = KERNELS.iter().find(|k| k.0 == series) else {
        panic!("no answers recorded for {}", series.0)
    };
    let answers = std::fs::read_to_string(common::tests_dir(answers))
        .unwrap_or_else(|e| panic!("{answers}: {e}"));
    assert_eq!(
        real, answers,
        "Linux {} (left) and the answers recorded for it (right) differ",
        run.release
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = dir.path().join("guest.lspci");
    std::fs::write(&file, &dump).unwrap_or_else(|e| panic!("writing the dump: {e}"));
    let emu = emulated(&file, alloc);
    assert_eq!(
        emu, real,
        "emulate --msix-alloc {alloc} (left) and Linux {} (right) differ",
        run.release
    );
}

tph_guest::on_each_kernel!(probe_answers_as_the_real_kernel);
