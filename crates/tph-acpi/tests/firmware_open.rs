#![cfg(feature = "iasl")]
//! `firmware::open`: one firmware path, any kind (table file, ASL compiled by the real `iasl`,
//! an AML table, a folder of tables), one `SteeringTagSource` with the same answers.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use tph_acpi::{firmware, FirmwareError, FirmwareKind, MemType, StInfo};

/// The bundled example firmware: `_DSM` function 0xF answers from a package indexed by UID
/// (UIDs 0-7; any other UID gets an all-invalid result).
fn example_asl() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/firmware/tph-dsm.asl")
}

/// UIDs asked: the table's eight plus two beyond it.
const UIDS: [u32; 10] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 300];

/// Compiles the example with the real `iasl` into `dir/DSDT.aml`.
fn compile_example(dir: &Path) -> PathBuf {
    let out = Command::new("iasl")
        .arg("-p")
        .arg(dir.join("DSDT"))
        .arg(example_asl())
        .output()
        .expect("`iasl` runs (package acpica-tools)");
    assert!(
        out.status.success(),
        "iasl: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    dir.join("DSDT.aml")
}

fn answers(path: &Path) -> Vec<Result<StInfo, FirmwareError>> {
    let fw = firmware::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    UIDS.iter().map(|&u| fw.source.st_info(u)).collect()
}

#[test]
fn open_asl_file_compiles_with_iasl_and_answers_from_the_uid_table() {
    let fw = firmware::open(&example_asl()).expect("example firmware opens");
    assert_eq!(fw.kind, FirmwareKind::Asl);
    assert!(
        fw.label.ends_with("tph-dsm.asl (\\_SB_.PCI0 _DSM)"),
        "{}",
        fw.label
    );
    assert!(fw.skipped.is_empty(), "{:?}", fw.skipped);
    // UID 0's row: VM flags 3, tags 0x20/0x1020; PM flags 3, tags 0xa0/0x9020.
    let v = fw.source.st_info(0).expect("uid 0");
    let vm = (v.st(MemType::Volatile), v.xst(MemType::Volatile));
    let pm = (v.st(MemType::Persistent), v.xst(MemType::Persistent));
    assert_eq!((vm, pm), ((0x20, 0x1020), (0xa0, 0x9020)));
    // UID 2's PM row has flags 1: the 16-bit tag is not valid.
    let v = fw.source.st_info(2).expect("uid 2");
    assert!(v.st_valid(MemType::Persistent) && !v.xst_valid(MemType::Persistent));
    // UID 3's VM row has flags 7: processing hints ignored.
    assert!(fw
        .source
        .st_info(3)
        .expect("uid 3")
        .ph_ignore(MemType::Volatile));
    // Beyond the table: a result with nothing valid, not an error.
    assert_eq!(fw.source.st_info(8), Ok(StInfo(0)));
}

#[test]
fn open_aml_file_and_table_folder_answer_as_the_asl() {
    let dir = tempfile::tempdir().expect("temp dir");
    let aml = compile_example(dir.path());
    let want = answers(&example_asl());
    let fw = firmware::open(&aml).expect("AML table opens");
    assert_eq!(fw.kind, FirmwareKind::Aml);
    assert_eq!(answers(&aml), want, "AML table");
    let fw_dir = firmware::open(dir.path()).expect("folder opens");
    assert_eq!(fw_dir.kind, FirmwareKind::Dir);
    assert!(fw_dir.label.starts_with("ACPI tables "), "{}", fw_dir.label);
    assert_eq!(answers(dir.path()), want, "table folder");
}

#[test]
fn open_sniffs_content_when_the_name_says_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let aml = compile_example(dir.path());
    let raw = dir.path().join("firmware.bin");
    std::fs::copy(&aml, &raw).expect("copy");
    let source = dir.path().join("firmware.src");
    std::fs::copy(example_asl(), &source).expect("copy");
    assert_eq!(firmware::kind_of(&raw).expect("read").0, FirmwareKind::Aml);
    assert_eq!(
        firmware::kind_of(&source).expect("read").0,
        FirmwareKind::Asl
    );
    assert_eq!(answers(&raw), answers(&source));
}

#[test]
fn open_table_file_equals_the_aml_it_was_written_from() {
    let dir = tempfile::tempdir().expect("temp dir");
    let asl = firmware::open_source(&example_asl()).expect("example firmware opens");
    let lines: String = UIDS
        .iter()
        .map(|&u| format!("{u} {:#018x}\n", asl.st_info(u).expect("answer").0))
        .collect();
    let table = dir.path().join("fw.txt");
    std::fs::write(&table, format!("# from tph-dsm.asl\n{lines}")).expect("write");
    let fw = firmware::open(&table).expect("table opens");
    assert_eq!(fw.kind, FirmwareKind::Table);
    assert_eq!(fw.label, format!("firmware table {}", table.display()));
    assert_eq!(answers(&table), answers(&example_asl()));
    assert_eq!(fw.source.st_info(9), Err(FirmwareError::UnknownUid(9)));
}

#[test]
fn open_failures_name_their_cause() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bad = dir.path().join("bad.txt");
    std::fs::write(&bad, "0 0x1\nzero 0x2\n").expect("write");
    assert!(matches!(
        firmware::open(&bad),
        Err(FirmwareError::Parse { line: 2, .. })
    ));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).expect("mkdir");
    let err = firmware::open(&empty).unwrap_err();
    assert!(
        err.to_string().ends_with("no DSDT or SSDT file found"),
        "{err}"
    );
    let madt = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/host-apic.dat");
    let err = firmware::open(&madt).unwrap_err();
    assert!(err.to_string().contains("not a definition block"), "{err}");
    let missing = dir.path().join("missing.asl");
    assert!(matches!(
        firmware::open(&missing),
        Err(FirmwareError::Io { .. })
    ));
    let broken = dir.path().join("broken.asl");
    std::fs::write(
        &broken,
        "DefinitionBlock (\"\", \"DSDT\", 2, \"X\", \"Y\", 1) { Method (",
    )
    .expect("write");
    assert!(matches!(
        firmware::open(&broken),
        Err(FirmwareError::Table { .. })
    ));
}

#[test]
fn open_host_dsdt_without_tph_dsm_lists_its_bridges() {
    let dsdt = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/host-dsdt.dat");
    assert_eq!(
        firmware::open(&dsdt).unwrap_err(),
        FirmwareError::NoTphDsm {
            bridges: vec!["\\_SB_.PC00".into()]
        }
    );
}
