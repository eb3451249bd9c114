//! `tphctl session --firmware PATH`: the emulated host's firmware chosen per machine. The
//! bundled example firmware (`tph-acpi/tests/data/firmware/tph-dsm.asl`, a host bridge `_DSM`
//! answering from a package indexed by processor UID) is compiled with the real `iasl` at
//! session start; the tags the kernel model hands out come from that AML. Goldens in
//! `tests/golden/session/firmware-*` (regenerate with `UPDATE_GOLDEN=1`). The same sessions with
//! the firmware as an AML table, a folder of tables, or a table file of the `UID 0xST_INFO`
//! lines `tphctl st-map --json` reads from the AML give identical output.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};

use common::{acpi_data, golden, session_script, stderr, stdout, tphctl_stdin};

fn example_asl() -> PathBuf {
    acpi_data("data/firmware/tph-dsm.asl")
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// The sessions pinned by goldens: (script, device and host options, golden file).
const SESSIONS: [(&str, &[&str], &str); 3] = [
    // 01:00.0: IV mode, table in MSI-X, 16-bit tags.
    (
        "firmware-iv.in",
        &["--emulated", "01:00.0"],
        "firmware-iv.txt",
    ),
    // 03:00.0: DS-only accelerator, 16-bit tags.
    (
        "firmware-ds.in",
        &["--emulated", "03:00.0", "--unsafe-ds-mode"],
        "firmware-ds-16bit.txt",
    ),
    // 02:00.0: below a TPH-only completer, 8-bit tags.
    (
        "firmware-ds.in",
        &["--emulated", "02:00.0", "--unsafe-ds-mode"],
        "firmware-ds-8bit.txt",
    ),
];

/// Runs every pinned session with `--firmware firmware`; their outputs in order.
fn sessions_with(firmware: &Path) -> Vec<String> {
    SESSIONS
        .iter()
        .map(|(script, args, _)| {
            let mut full = args.to_vec();
            full.extend(["--firmware", path_str(firmware)]);
            let out = session_script(script, &full);
            let err = stderr(&out);
            assert!(
                err.lines().all(|l| l.contains("commands failed")),
                "only the failure count on stderr: {script} {full:?}: {err}"
            );
            stdout(&out)
        })
        .collect()
}

#[test]
fn session_asl_firmware_tags_come_from_the_aml_golden() {
    let outputs = sessions_with(&example_asl());
    for ((_, _, name), out) in SESSIONS.iter().zip(&outputs) {
        golden(&format!("session/{name}"), out);
    }
}

/// A folder holding the example compiled by the real `iasl` (`DSDT.aml`).
fn compiled_example() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let tables = dir.path().join("tables");
    std::fs::create_dir(&tables).expect("mkdir");
    common::iasl(&example_asl(), &tables.join("DSDT"));
    (dir, tables)
}

/// The `UID 0xST_INFO` lines `tphctl st-map --json` reads from the tables in `tables`.
fn table_file_from_st_map(tables: &Path) -> String {
    let out = common::tphctl(
        tables,
        &["st-map", "--tables", ".", "--uids", "0-8", "--json"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = rows.as_array().expect("array");
    assert_eq!(rows.len(), 9);
    rows.iter()
        .map(|r| {
            let st = r["st_info"].as_str().expect("every UID answered");
            format!("{} {st}\n", r["uid"])
        })
        .collect()
}

#[test]
fn session_same_firmware_as_aml_folder_or_table_file_gives_identical_output() {
    let want = sessions_with(&example_asl());
    let (dir, tables) = compiled_example();
    let table = dir.path().join("fw.txt");
    std::fs::write(&table, table_file_from_st_map(&tables)).expect("write table file");
    for firmware in [tables.join("DSDT.aml"), tables.clone(), table] {
        assert_eq!(sessions_with(&firmware), want, "{}", firmware.display());
    }
}

/// ASL that iasl refuses (an unfinished method), written to `dir/broken.asl`.
fn broken_asl(dir: &Path) -> PathBuf {
    let path = dir.join("broken.asl");
    let asl = "DefinitionBlock (\"\", \"DSDT\", 2, \"X\", \"Y\", 1) { Method (";
    std::fs::write(&path, asl).expect("write");
    path
}

/// A machine read from a dump takes `--firmware` too. No dump fixture has a function whose
/// enable succeeds (the DSA is an RCiEP, the i350s sit below a root port without a completer),
/// so this checks that the firmware is loaded for such a machine: good firmware starts the
/// session, broken firmware stops it before any command.
#[test]
fn session_dump_machine_loads_its_firmware() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = broken_asl(dir.path());
    let dump = common::tests_dir("data/machine-23c7a39.lspci");
    for (firmware, code) in [(example_asl(), 0), (broken, 2)] {
        let args = [
            "session",
            "--dump",
            path_str(&dump),
            "01:00.0",
            "--firmware",
            path_str(&firmware),
        ];
        let out = tphctl_stdin(&args, b"cap\n");
        assert_eq!(out.status.code(), Some(code), "{}", stderr(&out));
        assert_eq!(stdout(&out).is_empty(), code != 0, "{}", stdout(&out));
    }
}

#[test]
fn session_firmware_errors_exit_2_printed_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let broken = broken_asl(dir.path());
    let apic = acpi_data("data/host-apic.dat");
    let host_dsdt = acpi_data("data/host-dsdt.dat");
    let cases = [
        (broken, "table ASL: iasl failed: "),
        (apic, "table APIC: not a definition block (DSDT or SSDT)"),
        (
            host_dsdt,
            "no host bridge implements the TPH _DSM (revision 7, function 0xF); host bridges \
             found: \\_SB_.PC00",
        ),
    ];
    for (path, want) in cases {
        let args = [
            "session",
            "--emulated",
            "02:00.0",
            "--firmware",
            path_str(&path),
        ];
        let out = tphctl_stdin(&args, b"cap\n");
        assert_eq!(out.status.code(), Some(2), "{}", path.display());
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{err}");
        let prefix = format!("tphctl: firmware {}: {want}", path.display());
        assert!(err.starts_with(&prefix), "{err}");
    }
}

#[test]
fn session_vfio_refuses_firmware_it_would_not_use() {
    // A real device's tags come from the real host's firmware: --firmware is for emulated hosts.
    let asl = example_asl();
    let args = ["session", "--vfio", "01:00.0", "--firmware", path_str(&asl)];
    let out = tphctl_stdin(&args, b"cap\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot be used with"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn session_asl_firmware_without_iasl_names_the_package() {
    let empty = tempfile::tempdir().expect("temp dir");
    let asl = example_asl();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .env("PATH", empty.path()) // no iasl on PATH
        .args([
            "session",
            "--emulated",
            "02:00.0",
            "--firmware",
            path_str(&asl),
        ])
        .output()
        .expect("tphctl runs");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let prefix = format!(
        "tphctl: firmware {}: iasl: not found on PATH",
        asl.display()
    );
    assert!(
        err.starts_with(&prefix) && err.contains("acpica-tools"),
        "{err}"
    );
}
