//! `tphctl show --dump FILE --lspci` against the real `lspci -vvv -F FILE` (pciutils): byte
//! equality of the TPH blocks on every shared dump and on generated config spaces with random
//! TPH capability values at random offsets in random extended-capability chains.
//!
//! Needs `lspci` on PATH (Debian package `pciutils`; `.ci/run` installs it).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use tph_regs::dump::write_lspci_dump;
use tph_regs::machine::{Bdf, Function, Machine};

/// Functions in the generated domain-0 dump (the issue asks for at least a thousand).
const GENERATED: usize = 1200;
/// Functions in the generated dump with random domains (lspci then prints domains).
const GENERATED_DOMAINS: usize = 300;
/// Fixed seed: the generated spaces are the same on every run.
const SEED: u64 = 0x7458_3152_4547_5321;

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tph-regs/tests/data")
}

fn tphctl_lspci(dump: &Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(["show", "--lspci", "--dump"])
        .arg(dump)
        .output()
        .expect("tphctl runs");
    // Generated spaces cut short, or with a capability past the end, leave verdicts unknown:
    // status 2, said on stderr; the capabilities that were read still print.
    let err = String::from_utf8_lossy(&out.stderr);
    let partial = err.contains("TPH unknown") || err.contains("lies beyond");
    assert!(
        out.status
            .code()
            .is_some_and(|c| c <= 1 || (c == 2 && partial)),
        "tphctl failed: {out:?}"
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

/// Runs the real lspci and keeps, per device with a TPH capability, the BDF line and the
/// capability's title and detail lines.
fn lspci_tph_blocks(dump: &Path) -> String {
    let out = Command::new("lspci")
        .arg("-vvv")
        .arg("-F")
        .arg(dump)
        .output()
        .expect("lspci (pciutils) must be installed");
    assert!(out.status.success(), "lspci failed: {out:?}");
    common::extract_tph_blocks(&String::from_utf8_lossy(&out.stdout))
}

/// splitmix64: a small, seedable generator so the test is reproducible.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn u32(&mut self) -> u32 {
        self.next() as u32
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

/// Extended capability IDs placed around the TPH capability (known to lspci or not).
const OTHER_IDS: [u16; 14] = [
    0x0001, 0x0002, 0x0003, 0x0004, 0x000b, 0x000d, 0x000e, 0x0010, 0x0017, 0x0018, 0x001e, 0x0023,
    0x0030, 0x0042,
];

fn put32(cfg: &mut [u8], off: usize, v: u32) {
    cfg[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// Header with the capability list on and, usually, a PCI Express capability at 0x40 (lspci
/// shows extended capabilities only then).
fn standard_part(rng: &mut Rng, cfg: &mut [u8]) {
    put32(cfg, 0x00, 0x8086 | (rng.u32() & 0xffff_0000));
    put32(cfg, 0x04, 0x0010_0000);
    put32(cfg, 0x08, 0x0200_0000);
    cfg[0x34] = 0x40;
    let express = !rng.chance(3);
    cfg[0x40] = if express { 0x10 } else { 0x01 };
    let port_type = [0u8, 1, 9][rng.below(3) as usize];
    cfg[0x42] = 0x02 | port_type << 4;
}

/// Random distinct dword offsets in 0x104..0xff0, at least 16 bytes apart.
fn offsets(rng: &mut Rng, n: usize) -> Vec<usize> {
    let mut chosen: Vec<usize> = vec![0x100];
    while chosen.len() < n {
        let off = 0x104 + 4 * rng.below((0xff0 - 0x104) / 4) as usize;
        if chosen.iter().all(|c| c.abs_diff(off) >= 0x10) {
            chosen.push(off);
        }
    }
    chosen
}

/// A random extended chain holding (usually) one TPH capability with random register values;
/// returns the TPH offset.
fn extended_part(rng: &mut Rng, cfg: &mut [u8]) -> Option<usize> {
    let n = 1 + rng.below(7) as usize;
    let mut offs = offsets(rng, n);
    let tph_slot = (rng.chance(97)).then(|| rng.below(n as u64) as usize);
    if tph_slot.is_some_and(|s| s == n - 1 && s > 0) && rng.chance(15) {
        // The last capability at the very end: lspci can read its header but not its body.
        offs[n - 1] = [0xff8, 0xffc][rng.below(2) as usize];
    }
    for (i, &off) in offs.iter().enumerate() {
        let next = next_pointer(rng, &offs, i);
        let id = if Some(i) == tph_slot {
            0x17
        } else {
            OTHER_IDS[rng.below(14) as usize]
        };
        let version = rng.below(16) as u32;
        put32(
            cfg,
            off,
            u32::from(id) | version << 16 | (next as u32) << 20,
        );
        for k in (4..16).step_by(4) {
            if off + k + 4 <= cfg.len() {
                put32(cfg, off + k, rng.u32());
            }
        }
    }
    tph_slot.map(|s| offs[s])
}

/// The next pointer of chain element `i`: the following element; for the last one usually 0,
/// sometimes a loop back or a pointer into the standard space.
fn next_pointer(rng: &mut Rng, offs: &[usize], i: usize) -> usize {
    if let Some(next) = offs.get(i + 1) {
        return *next;
    }
    match rng.below(100) {
        0..=2 => offs[rng.below(offs.len() as u64) as usize],
        3..=4 => 0x44 + 4 * rng.below(0x2f) as usize,
        _ => 0,
    }
}

fn generated_function(rng: &mut Rng, bdf: Bdf) -> Function {
    let mut config = vec![0u8; 4096];
    standard_part(rng, &mut config);
    let tph = extended_part(rng, &mut config);
    if let Some(t) = tph.filter(|_| rng.chance(6)) {
        // A dump that ends inside or just after the TPH capability (lspci -F then has no
        // bytes past the last line).
        let end = (t + rng.below(12) as usize).div_ceil(16) * 16;
        config.truncate(end.max(0x110));
    }
    Function::new(bdf, config)
}

fn generated_machine(rng: &mut Rng, count: usize, domains: bool) -> Machine {
    let functions = (0..count)
        .map(|i| {
            let domain = if domains {
                rng.below(0x10000) as u16
            } else {
                0
            };
            let bus = 0x10 + (i / 256) as u8;
            let bdf = Bdf::new(domain, bus, ((i / 8) % 32) as u8, (i % 8) as u8).expect("in range");
            generated_function(rng, bdf)
        })
        .collect();
    Machine::new(functions)
}

fn write_dump(m: &Machine, name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(name);
    let mut text = String::new();
    write_lspci_dump(m, &mut text).expect("string write");
    std::fs::write(&path, text).expect("write dump");
    (dir, path)
}

fn assert_parity(dump: &Path) -> usize {
    let expected = lspci_tph_blocks(dump);
    let actual = tphctl_lspci(dump);
    assert_eq!(actual, expected, "TPH blocks differ for {}", dump.display());
    expected.lines().filter(|l| !l.starts_with('\t')).count()
}

#[test]
fn lspci_parity_every_shared_dump_byte_equal() {
    let mut with_tph = 0;
    for entry in std::fs::read_dir(data_dir()).expect("data dir") {
        with_tph += assert_parity(&entry.expect("entry").path());
    }
    // DSA (1) + 0d93 (1) + four I350 functions.
    assert_eq!(with_tph, 6);
}

#[test]
fn lspci_parity_generated_config_spaces_byte_equal() {
    let mut rng = Rng(SEED);
    let m = generated_machine(&mut rng, GENERATED, false);
    let (_dir, path) = write_dump(&m, "generated.lspci");
    let shown = assert_parity(&path);
    // About 97% carry a TPH capability and 97% of those a PCI Express capability.
    assert!(
        shown > GENERATED * 85 / 100,
        "only {shown} functions with TPH shown"
    );
    let expected = lspci_tph_blocks(&path);
    for line in [
        "\t\tInterrupt vector mode supported",
        "\t\tDevice specific mode supported",
        "\t\tExtended requester support",
        "\t\tNo steering table available",
        "\t\tSteering table in TPH capability structure",
        "\t\tSteering table in MSI-X table",
        "\t\tReserved steering table location",
    ] {
        assert!(
            expected.contains(line),
            "generated set never makes lspci print {line:?}"
        );
    }
    // Title-only blocks: a capability at 0xff8/0xffc whose register lies past 4096 bytes.
    let lines: Vec<&str> = expected.lines().chain([""]).collect();
    let title_only = lines
        .windows(2)
        .filter(|w| w[0].ends_with("Hints") && !w[1].starts_with("\t\t"))
        .count();
    assert!(title_only > 0, "no title-only block generated");
}

#[test]
fn lspci_parity_generated_with_domains_byte_equal() {
    let mut rng = Rng(SEED ^ 0xd0);
    let m = generated_machine(&mut rng, GENERATED_DOMAINS, true);
    let (_dir, path) = write_dump(&m, "domains.lspci");
    let shown = assert_parity(&path);
    assert!(
        shown > GENERATED_DOMAINS * 85 / 100,
        "only {shown} functions with TPH shown"
    );
    let first = lspci_tph_blocks(&path)
        .lines()
        .next()
        .map(str::to_owned)
        .unwrap_or_default();
    assert_eq!(
        first.len(),
        "0000:00:00.0".len(),
        "lspci printed no domain: {first:?}"
    );
}
