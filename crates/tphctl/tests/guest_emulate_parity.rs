//! The emulate ground against real kernels: the C programs of `tests/data/emulate/` (region
//! info, `pread`/`pwrite` of a BAR and its MSI-X table, BAR mappings and the mmap rules, type1
//! DMA mapping, the DPDK-style driver's opening sequence) run on Debian's 6.1 and 6.12 with a
//! real vfio-pci device, and the same programs run under `tphctl emulate` on the same function
//! (the guest's own `lspci -xxxx` dump, bound with `--bind all`). Every line a program prints
//! (standard output, then standard error marked `stderr: `) must be the same on both sides,
//! except the lines named in [`DEVICE_LINES`], which print the device's memory or the machine.
//!
//! The device: QEMU's NVMe controller (MSI-X table and PBA in BAR 0, as the emulated NIC has
//! them) behind its own root port at 01:00.0, a second one at 02:00.0 for the second container
//! of `dma.c`, both bound to vfio-pci, under a virtual Intel IOMMU. One boot per kernel runs
//! every program. `iommufd.c` does not run here: Debian's kernels are built without IOMMUFD.
//! `dpdk_style.c` stops at its first TPH step on both sides (QEMU emulates no TPH capability;
//! its TPH sequence is checked against the model by `emulate_ground.rs`).

mod common;
mod guest;

use guest::BIND;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tph_guest::{Guest, GuestRun, Series};

use common::{stderr, stdout, tests_dir};

/// The programs run on both sides: (name, arguments after the program, exit status). The
/// DPDK-style driver exits 1 at its first TPH step: QEMU emulates no TPH capability.
const PROGRAMS: [(&str, &str, i32); 4] = [
    ("regions", "0000:01:00.0", 0),
    ("mmap_rules", "0000:01:00.0", 0),
    ("dma", "0000:01:00.0 0000:02:00.0", 0),
    ("dpdk_style", "0000:01:00.0 v7", 1),
];

/// The programs compiled with the system `cc` (once per test binary).
fn programs() -> &'static Vec<PathBuf> {
    static BUILT: OnceLock<Vec<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("parity-programs");
        std::fs::create_dir_all(&dir).expect("program directory");
        PROGRAMS
            .iter()
            .map(|(name, _, _)| {
                let src = tests_dir("data/emulate").join(format!("{name}.c"));
                let exe = dir.join(name);
                let out = Command::new("cc")
                    .args(["-std=c11", "-D_DEFAULT_SOURCE", "-O1", "-Wall", "-Wextra"])
                    .args(["-Werror", "-pthread", "-o"])
                    .arg(&exe)
                    .arg(&src)
                    .output()
                    .expect("the C compiler `cc` (build-essential) runs");
                assert!(out.status.success(), "cc {name}.c: {}", stderr(&out));
                exe
            })
            .collect()
    })
}

fn parity_guest(series: Series) -> Guest {
    let mut g = guest::guest(series);
    g.iommu = true;
    g.modules = vec!["vfio_pci", "vfio_iommu_type1"];
    for ((name, _, _), exe) in PROGRAMS.iter().zip(programs()) {
        g.binaries.push((exe.clone(), format!("/bin/{name}")));
    }
    g.qemu_args = guest::devices(&[
        "pcie-root-port,id=rp1,chassis=1,slot=1",
        "nvme,bus=rp1,serial=tph1,romfile=",
        "pcie-root-port,id=rp2,chassis=2,slot=2",
        "nvme,bus=rp2,serial=tph2,romfile=",
    ]);
    g.setup = format!(
        "{BIND}modprobe vfio_pci; modprobe vfio_iommu_type1\n\
         bind 0000:01:00.0\nbind 0000:02:00.0\n"
    );
    g.scenario("dump", "lspci -xxxx");
    for (name, args, _) in PROGRAMS {
        // Standard error after standard output, each of its lines marked, as on the host.
        g.scenario(
            name,
            &format!(
                "/bin/{name} {args} 2> /tmp/{name}.err; s=$?\n\
                 sed 's/^/stderr: /' /tmp/{name}.err; (exit $s)"
            ),
        );
    }
    g
}

static RUNS: guest::Runs = OnceLock::new();

fn run(series: Series) -> Option<&'static GuestRun> {
    guest::shared(&RUNS, series, parity_guest)
}

/// Lines that print no kernel rule: the device's own memory (what QEMU's NVMe controller
/// answers at BAR 0 offset 0x100, against the emulated device memory) and the machine around
/// the device (the CPUs, which functions the set-up bound: `--bind all` binds every
/// endpoint of the dump).
const DEVICE_LINES: [&str; 5] = [
    "pwrite then pread at 0x100: ",
    "mapped 0x100: ",
    "lcores online: ",
    "lcore ",
    "scan: ",
];

/// `name` under `tphctl emulate --dump DUMP --bind all`, its arguments `args`, on the first
/// CPU this process may use (the guest has one: the driver wires one queue on each side).
fn emulated(dump: &Path, name: &str, args: &str, status: i32) -> String {
    let exe = &programs()[PROGRAMS.iter().position(|p| p.0 == name).unwrap_or(0)];
    let cpu = tph_emulate::emulate::allowed_cpus()
        .and_then(|c| c.first().copied())
        .unwrap_or(0)
        .to_string();
    let mut full = vec![
        "-c",
        &cpu,
        env!("CARGO_BIN_EXE_tphctl"),
        "emulate",
        "--dump",
        dump.to_str().unwrap_or_default(),
        "--bind",
        "all",
        "--",
        exe.to_str().unwrap_or_default(),
    ];
    full.extend(args.split(' '));
    let out = Command::new("taskset")
        .args(&full)
        .output()
        .expect("taskset (util-linux) runs");
    assert_eq!(
        out.status.code(),
        Some(status),
        "{name} under emulate: {}",
        stderr(&out)
    );
    let marked: String = stderr(&out)
        .lines()
        .map(|l| format!("stderr: {l}\n"))
        .collect();
    stdout(&out) + &marked
}

fn same_lines(series: Series, name: &str) {
    let Some(run) = run(series) else { return };
    let dump = run.outcome("dump").status(0).output().to_string();
    let (_, args, status) = PROGRAMS
        .iter()
        .copied()
        .find(|p| p.0 == name)
        .unwrap_or(("", "", 0));
    let real = run.outcome(name).status(status).output().to_string();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = dir.path().join("guest.lspci");
    std::fs::write(&file, &dump).unwrap_or_else(|e| panic!("writing the dump: {e}"));
    let emu = emulated(&file, name, args, status);
    let real = older_kernel(series, &real);
    let keep = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !DEVICE_LINES.iter().any(|d| l.starts_with(d)))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(
        keep(&emu),
        keep(&real),
        "{name}: emulate (left) and Linux {} (right) differ\nemulate:\n{emu}\nreal:\n{real}",
        run.release
    );
}

/// Where 6.1 answers as mainline did before a change the emulated kernel follows, the real
/// output with 6.1's form (which must be there) put back into today's.
///
/// `vfio_info_cap_add` pads each capability to 8 bytes since Stefan Hajnoczi's "vfio: align
/// capability structures" (6.6): 6.1 packs `VFIO_IOMMU_GET_INFO`'s 12-byte DMA-available
/// capability, so the chain needs 116 bytes there and 120 on 6.12 and under `emulate`.
fn older_kernel(series: Series, real: &str) -> String {
    if series != tph_guest::DEBIAN_6_1 || !real.contains("info: ") {
        return real.to_string();
    }
    let (old, new) = ("argsz needed 116 ", "argsz needed 120 ");
    assert_eq!(
        real.matches(old).count(),
        2,
        "6.1's unpadded capability chain in both GET_INFO lines:\n{real}"
    );
    real.replace(old, new)
}

fn regions_answer_as_the_real_kernel(series: Series) {
    same_lines(series, "regions");
}

fn mmap_rules_answer_as_the_real_kernel(series: Series) {
    same_lines(series, "mmap_rules");
}

fn dma_rules_answer_as_the_real_kernel(series: Series) {
    same_lines(series, "dma");
}

/// The DPDK-style driver's ground up to its first TPH step: the vfio modules, the device's
/// sysfs files, the container and 16 MiB of DMA in 4 KiB pages, device info, every BAR
/// mapped, reset and Bus Master, MSI-X wired, the request notifier.
fn dpdk_style_ground_answers_as_the_real_kernel(series: Series) {
    same_lines(series, "dpdk_style");
}

tph_guest::on_each_kernel!(
    regions_answer_as_the_real_kernel,
    dpdk_style_ground_answers_as_the_real_kernel,
    mmap_rules_answer_as_the_real_kernel,
    dma_rules_answer_as_the_real_kernel,
);
