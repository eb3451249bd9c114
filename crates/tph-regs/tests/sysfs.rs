//! The sysfs reader on fake trees: a settable root, short (unprivileged) reads explained, and
//! MSI-X Vector Control words read from the table BAR's `resourceN` file.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::fs;
use std::path::Path;

use tph_regs::machine::Bdf;
use tph_regs::msix::MsixCap;
use tph_regs::sysfs::Sysfs;
use tph_regs::Error;

/// Fixture builder: one function directory with `config` (and optional `resource0`).
fn add_function(root: &Path, name: &str, config: &[u8], resource0: Option<&[u8]>) {
    let dir = root.join("bus/pci/devices").join(name);
    fs::create_dir_all(&dir).expect("mkdir");
    fs::write(dir.join("config"), config).expect("write config");
    if let Some(bar) = resource0 {
        fs::write(dir.join("resource0"), bar).expect("write resource0");
    }
}

fn put32(cfg: &mut [u8], off: usize, v: u32) {
    cfg[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

/// An RCiEP with MSI-X (4 vectors, table in BAR 0 at 0x100) and a TPH capability at 0x100
/// whose table lives in MSI-X.
fn msix_tph_config() -> Vec<u8> {
    let mut c = vec![0u8; 4096];
    put32(&mut c, 0x00, 0x0b25_8086);
    put32(&mut c, 0x04, 0x0010_0000);
    c[0x34] = 0x40;
    // PCI Express capability: next 0x80, version 2, type 9 (RCiEP).
    put32(&mut c, 0x40, 0x0092_8010);
    // MSI-X: Message Control 0x8003 (enabled, 4 vectors), table BAR 0 offset 0x100.
    put32(&mut c, 0x80, 0x8003_0011);
    put32(&mut c, 0x84, 0x0000_0100);
    put32(&mut c, 0x88, 0x0000_0200);
    // TPH: IV + DS supported, location 2 (MSI-X), size field 3 (4 entries); Control 0.
    put32(&mut c, 0x100, 0x0001_0017);
    put32(&mut c, 0x104, 0x0003_0407);
    c
}

/// BAR 0 contents: vector i's Vector Control has tag 0x10 + i in bits 31:16, mask bit set.
fn bar0() -> Vec<u8> {
    let mut bar = vec![0u8; 0x1000];
    for i in 0..4u32 {
        put32(&mut bar, 0x100 + 16 * i as usize + 12, (0x10 + i) << 16 | 1);
    }
    bar
}

#[test]
fn sysfs_fake_tree_reads_functions_sorted() {
    let root = tempfile::tempdir().expect("tmp");
    add_function(root.path(), "0000:01:00.0", &[0u8; 256], None);
    add_function(root.path(), "0000:00:1f.0", &[0u8; 4096], None);
    let read = Sysfs::new(root.path()).read_machine().expect("reads");
    let bdfs: Vec<String> = read
        .machine
        .functions
        .iter()
        .map(|f| f.bdf.to_string())
        .collect();
    assert_eq!(bdfs, ["0000:00:1f.0", "0000:01:00.0"]);
    assert!(read.short_reads.is_empty());
}

#[test]
fn sysfs_64_byte_config_with_capabilities_is_flagged_short() {
    let root = tempfile::tempdir().expect("tmp");
    let mut cfg = msix_tph_config();
    cfg.truncate(64);
    add_function(root.path(), "0000:6a:01.0", &cfg, None);
    let read = Sysfs::new(root.path()).read_machine().expect("reads");
    assert_eq!(read.short_reads.len(), 1);
    assert!(read.short_reads[0].explain().contains("root"));
}

#[test]
fn sysfs_msix_vector_controls_read_from_resource_file() {
    let root = tempfile::tempdir().expect("tmp");
    add_function(
        root.path(),
        "0000:6a:01.0",
        &msix_tph_config(),
        Some(&bar0()),
    );
    let sysfs = Sysfs::new(root.path());
    let m = sysfs.read_machine().expect("reads").machine;
    let msix = MsixCap::find(&m.functions[0].config).expect("msix");
    let vc = sysfs
        .read_vector_controls(m.functions[0].bdf, &msix, 4)
        .expect("reads resource0");
    assert_eq!(vc, [0x10_0001, 0x11_0001, 0x12_0001, 0x13_0001]);
}

#[test]
fn sysfs_missing_resource_file_explains_why() {
    let root = tempfile::tempdir().expect("tmp");
    add_function(root.path(), "0000:6a:01.0", &msix_tph_config(), None);
    let sysfs = Sysfs::new(root.path());
    let m = sysfs.read_machine().expect("reads").machine;
    let msix = MsixCap::find(&m.functions[0].config).expect("msix");
    let bdf: Bdf = "6a:01.0".parse().expect("bdf");
    let err = sysfs
        .read_vector_controls(bdf, &msix, 4)
        .expect_err("no resource0");
    assert!(matches!(err, Error::MsixTable { .. }), "{err}");
    assert!(err.to_string().contains("no resource file"), "{err}");
    assert!(err.to_string().contains("resource0"), "{err}");
}

#[test]
fn sysfs_short_bar_file_is_read_error_naming_mmap() {
    let root = tempfile::tempdir().expect("tmp");
    add_function(
        root.path(),
        "0000:6a:01.0",
        &msix_tph_config(),
        Some(&[0u8; 0x104]),
    );
    let sysfs = Sysfs::new(root.path());
    let m = sysfs.read_machine().expect("reads").machine;
    let msix = MsixCap::find(&m.functions[0].config).expect("msix");
    let err = sysfs
        .read_vector_controls(m.functions[0].bdf, &msix, 4)
        .expect_err("short BAR");
    assert!(err.to_string().contains("mmap"), "{err}");
}

#[test]
fn sysfs_missing_root_is_io_error_with_path() {
    let err = Sysfs::new("/nonexistent-root")
        .read_machine()
        .expect_err("no tree");
    assert!(
        err.to_string()
            .contains("/nonexistent-root/bus/pci/devices"),
        "{err}"
    );
}

#[test]
fn sysfs_bad_directory_name_is_bad_bdf() {
    let root = tempfile::tempdir().expect("tmp");
    add_function(root.path(), "not-a-bdf", &[0u8; 64], None);
    let err = Sysfs::new(root.path())
        .read_machine()
        .expect_err("bad name");
    assert!(matches!(err, Error::BadBdf { .. }), "{err}");
}
