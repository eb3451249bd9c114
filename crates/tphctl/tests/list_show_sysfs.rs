//! `tphctl list/show --sysfs ROOT` on a fake sysfs tree built from the real DSA dump: the same
//! decode as from the dump, and a clear warning when only 64 bytes are readable.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::PathBuf;
use std::process::Command;

fn dsa_config() -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tph-regs/tests/data/intel-dsa-pri-pasid.lspci");
    let text = std::fs::read_to_string(path).expect("fixture");
    let m = tph_regs::parse_lspci_dump(&text).expect("parses");
    m.functions[0].config.clone()
}

/// Fixture builder: a tree with the DSA's config (cut to `len` bytes) at 0000:6a:01.0.
fn tree(len: usize) -> tempfile::TempDir {
    let root = tempfile::tempdir().expect("tmp");
    let dir = root.path().join("bus/pci/devices/0000:6a:01.0");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let mut cfg = dsa_config();
    cfg.truncate(len);
    std::fs::write(dir.join("config"), cfg).expect("write");
    root
}

#[test]
fn sysfs_show_matches_dump_show() {
    let root = tree(4096);
    let from_sysfs = common::tphctl_sysfs(&["show", "6a:01.0"], root.path());
    let dump = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tph-regs/tests/data/intel-dsa-pri-pasid.lspci");
    let from_dump = Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(["show", "6a:01.0", "--dump"])
        .arg(dump)
        .output()
        .expect("runs");
    assert!(from_sysfs.status.success(), "{from_sysfs:?}");
    assert_eq!(from_sysfs.stdout, from_dump.stdout);
}

#[test]
fn sysfs_unprivileged_64_bytes_is_unknown_not_absent_with_root_fix_exit_2() {
    let root = tree(64);
    let out = common::tphctl_sysfs(&["list"], root.path());
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "said once: {err}");
    assert!(
        err.starts_with("tphctl: TPH unknown for function 0000:6a:01.0: the capability list"),
        "{err}"
    );
    assert!(err.contains("run as root"), "{err}");
    let show = common::tphctl_sysfs(&["show", "6a:01.0"], root.path());
    assert_eq!(show.status.code(), Some(2));
    assert!(!String::from_utf8_lossy(&show.stderr).contains("has no TPH"));
}
