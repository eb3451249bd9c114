//! Reports from a sysfs tree: ST entries of a table in MSI-X read from the BAR's `resourceN`
//! file, and a note naming the file when it is missing.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::fs;
use std::path::Path;

use tph_regs::sysfs::Sysfs;
use tph_report::report::report_machine;

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
fn sysfs_report_reads_msix_table_entries_from_resource_file() {
    let root = tempfile::tempdir().expect("tmp");
    add_function(
        root.path(),
        "0000:6a:01.0",
        &msix_tph_config(),
        Some(&bar0()),
    );
    let sysfs = Sysfs::new(root.path());
    let m = sysfs.read_machine().expect("reads").machine;
    let reports = report_machine(&m, &sysfs);
    let sts: Vec<u16> = reports[0].tph.entries.iter().map(|e| e.st).collect();
    assert_eq!(sts, [0x10, 0x11, 0x12, 0x13]);
    assert_eq!(reports[0].tph.table_location, "msix");
    assert_eq!(reports[0].tph.entries_note, None);
}

#[test]
fn sysfs_report_without_resource_file_notes_why() {
    let root = tempfile::tempdir().expect("tmp");
    add_function(root.path(), "0000:6a:01.0", &msix_tph_config(), None);
    let sysfs = Sysfs::new(root.path());
    let m = sysfs.read_machine().expect("reads").machine;
    let reports = report_machine(&m, &sysfs);
    assert!(reports[0].tph.entries.is_empty());
    assert!(reports[0]
        .tph
        .entries_note
        .as_deref()
        .is_some_and(|n| n.contains("resource0")));
}
