//! Server scale for sysfs: a generated tree of 4,096 functions (SR-IOV-sized: 63 root ports
//! with 64 TPH endpoints each), read by `tphctl list/show --sysfs ROOT` and by the real lspci
//! (`lspci -A linux-sysfs -O sysfs.path=ROOT/bus/pci -vvv`, package pciutils): the TPH blocks
//! must be identical. The timing comparison is `bench/sysfs-scale.sh` (hyperfine).

mod common;
#[path = "common/synth.rs"]
mod synth;

use std::path::Path;
use std::process::Command;

/// Functions in the tree: what a large SR-IOV server exposes.
const FUNCTIONS: usize = 4096;
/// Every 65th function is a root port (one port, then its 64 endpoints).
const ROOT_PORTS: usize = FUNCTIONS.div_ceil(65);

/// The tree in cargo's per-target scratch folder, generated once (a marker file says it is
/// complete) and shared by the tests of this binary.
fn tree() -> &'static Path {
    static TREE: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    TREE.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("sysfs-4096");
        let done = dir.join("complete");
        if !done.exists() {
            let _ = std::fs::remove_dir_all(&dir);
            synth::write_sysfs(FUNCTIONS, &dir).expect("write the tree");
            std::fs::write(&done, "").expect("marker");
        }
        dir
    })
}

#[test]
fn sysfs_4096_functions_tph_blocks_equal_real_lspci() {
    let root = tree();
    let lspci = Command::new("lspci")
        .args(["-A", "linux-sysfs", "-O"])
        .arg(format!("sysfs.path={}/bus/pci", root.display()))
        .arg("-vvv")
        .output()
        .expect("lspci (pciutils) must be installed");
    assert!(lspci.status.success(), "lspci failed: {lspci:?}");
    let expected = common::extract_tph_blocks(&String::from_utf8_lossy(&lspci.stdout));
    let ours = common::tphctl_sysfs(&["show", "--lspci"], root);
    assert_eq!(ours.status.code(), Some(0), "{}", common::stderr(&ours));
    assert_eq!(common::stdout(&ours), expected);
    let devices = expected.lines().filter(|l| !l.starts_with('\t')).count();
    assert_eq!(devices, FUNCTIONS - ROOT_PORTS, "every endpoint has TPH");
}

#[test]
fn sysfs_4096_functions_list_has_a_row_per_endpoint_with_its_root_port() {
    let root = tree();
    let out = common::tphctl_sysfs(&["list", "--json"], root);
    assert_eq!(out.status.code(), Some(0), "{}", common::stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), FUNCTIONS - ROOT_PORTS);
    // Port k sits at 00:(k/8+1).(k%8) with secondary bus k+1.
    for r in rows {
        let bdf = r["bdf"].as_str().expect("bdf");
        let bus = usize::from_str_radix(&bdf[5..7], 16).expect("hex bus");
        let k = bus - 1;
        let port = format!("0000:00:{:02x}.{}", k / 8 + 1, k % 8);
        assert_eq!(r["root_port"]["bdf"], port.as_str(), "{bdf}");
        assert_eq!(r["root_port"]["completer"], "tph_ext", "{bdf}");
    }
}
