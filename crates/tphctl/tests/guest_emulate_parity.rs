//! The emulate ground against real kernels: the C programs of `tests/data/emulate/` (region
//! info, `pread`/`pwrite` of a BAR and its MSI-X table, BAR mappings and the mmap rules, type1
//! DMA mapping) run on Debian's 6.1 and 6.12 with a real vfio-pci device, and the same
//! programs run under `tphctl emulate` on the same function (the guest's own `lspci -xxxx`
//! dump, bound with `--bind all`). Every line a program prints must be the same on both sides,
//! except the lines named in [`DEVICE_LINES`], which print what the device itself holds.
//!
//! The device: QEMU's NVMe controller (MSI-X table and PBA in BAR 0, as the emulated NIC has
//! them) behind its own root port at 01:00.0, a second one at 02:00.0 for the second container
//! of `dma.c`, both bound to vfio-pci, under a virtual Intel IOMMU. One boot per kernel runs
//! every program. `iommufd.c` does not run here: Debian's kernels are built without IOMMUFD.
//! `dpdk_style.c` neither: its ground is checked by `emulate_ground.rs`, and on these kernels
//! (no TPH interface) it stops at its first TPH call.

mod common;
mod guest;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use tph_guest::{Guest, GuestRun, Series};

use common::{stderr, stdout, tests_dir, tphctl_stdin};

/// The programs run on both sides: (name, arguments after the program).
const PROGRAMS: [(&str, &str); 3] = [
    ("regions", "0000:01:00.0"),
    ("mmap_rules", "0000:01:00.0"),
    ("dma", "0000:01:00.0 0000:02:00.0"),
];

/// Binds `$1` to vfio-pci.
const BIND: &str = r#"bind() {
    d=/sys/bus/pci/devices/$1
    echo vfio-pci > $d/driver_override
    [ -e $d/driver ] && echo $1 > $d/driver/unbind
    echo $1 > /sys/bus/pci/drivers_probe
}
"#;

/// The programs compiled with the system `cc` (once per test binary).
fn programs() -> &'static Vec<PathBuf> {
    static BUILT: OnceLock<Vec<PathBuf>> = OnceLock::new();
    BUILT.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("parity-programs");
        std::fs::create_dir_all(&dir).expect("program directory");
        PROGRAMS
            .iter()
            .map(|(name, _)| {
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
    for ((name, _), exe) in PROGRAMS.iter().zip(programs()) {
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
    for (name, args) in PROGRAMS {
        g.scenario(name, &format!("/bin/{name} {args}"));
    }
    g
}

static RUNS: guest::Runs = OnceLock::new();

fn run(series: Series) -> Option<&'static GuestRun> {
    guest::shared(&RUNS, series, parity_guest)
}

/// Lines that print the device's own memory (not a kernel rule): what QEMU's NVMe controller
/// answers at BAR 0 offset 0x100, against the emulated device memory.
const DEVICE_LINES: [&str; 2] = ["pwrite then pread at 0x100: ", "mapped 0x100: "];

/// `name` under `tphctl emulate --dump DUMP --bind all`, its arguments `args`.
fn emulated(dump: &Path, name: &str, args: &str) -> String {
    let exe = &programs()[PROGRAMS.iter().position(|(n, _)| *n == name).unwrap_or(0)];
    let mut full = vec![
        "emulate",
        "--dump",
        dump.to_str().unwrap_or_default(),
        "--bind",
        "all",
        "--",
        exe.to_str().unwrap_or_default(),
    ];
    full.extend(args.split(' '));
    let out = tphctl_stdin(&full, b"");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{name} under emulate: {}",
        stderr(&out)
    );
    stdout(&out)
}

fn same_lines(series: Series, name: &str) {
    let Some(run) = run(series) else { return };
    let dump = run.outcome("dump").status(0).output().to_string();
    let real = run.outcome(name).status(0).output().to_string();
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let file = dir.path().join("guest.lspci");
    std::fs::write(&file, &dump).unwrap_or_else(|e| panic!("writing the dump: {e}"));
    let args = PROGRAMS
        .iter()
        .find(|(n, _)| *n == name)
        .map_or("", |p| p.1);
    let emu = emulated(&file, name, args);
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

tph_guest::on_each_kernel!(
    regions_answer_as_the_real_kernel,
    mmap_rules_answer_as_the_real_kernel,
    dma_rules_answer_as_the_real_kernel,
);
