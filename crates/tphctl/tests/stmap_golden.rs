//! `tphctl st-map` end to end: real tables (this development host's DSDT and MADT, and corpus
//! `_DSM`s compiled with the real `iasl`) in a folder given with `--tables`; text and JSON
//! output compared with golden files in `tests/golden/stmap_*` (regenerate with
//! `UPDATE_GOLDEN=1`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::Output;

use common::{acpi_data, golden, stderr, stdout};

/// A `--tables` folder: the host MADT plus either the host DSDT or a compiled corpus file.
fn tables_dir(asl: Option<&str>) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("tphctl-stmap")
        .tempdir()
        .expect("temp dir");
    std::fs::copy(acpi_data("data/host-apic.dat"), dir.path().join("APIC.dat")).expect("copy MADT");
    match asl {
        None => {
            std::fs::copy(acpi_data("data/host-dsdt.dat"), dir.path().join("DSDT.dat"))
                .expect("copy DSDT");
        }
        Some(name) => {
            let src = acpi_data(&format!("asl/{name}.asl"));
            common::iasl(&src, &dir.path().join("DSDT"));
        }
    }
    dir
}

/// `tphctl st-map --tables DIR EXTRA...`, run in DIR.
fn st_map(dir: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["st-map", "--tables", "."];
    args.extend_from_slice(extra);
    common::tphctl(dir, &args)
}

#[test]
fn stmap_host_dsdt_without_tph_dsm_names_bridges_on_stderr_and_exits_1() {
    let dir = tables_dir(None);
    let out = st_map(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(stdout(&out), "");
    golden("stmap_host_no_tph.txt", &stderr(&out));
    // The same condition, the same stream and status with --json (stdout: an empty array).
    let json = st_map(dir.path(), &["--json"]);
    assert_eq!(json.status.code(), Some(1));
    assert_eq!(stdout(&json), "[]\n");
    assert_eq!(stderr(&json), stderr(&out));
}

#[test]
fn stmap_default_uids_come_from_the_madt() {
    let dir = tables_dir(Some("helper_methods"));
    let out = st_map(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    golden("stmap_helper_madt.txt", &stdout(&out));
}

#[test]
fn stmap_json_has_uid_and_raw_st_info_per_uid() {
    let dir = tables_dir(Some("helper_methods"));
    let out = st_map(dir.path(), &["--uids", "0-3,32", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    golden("stmap_helper_uids.json", &text);
    let rows: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
    let uids: Vec<u64> = rows
        .as_array()
        .expect("array")
        .iter()
        .map(|r| r["uid"].as_u64().expect("uid"))
        .collect();
    assert_eq!(uids, vec![0, 1, 2, 3, 32]);
    let raw = rows[0]["st_info"].as_str().expect("st_info string");
    assert!(raw.starts_with("0x") && raw.len() == 18, "{raw}");
}

#[test]
fn stmap_failed_uids_are_null_with_an_error_and_exit_2() {
    let dir = tables_dir(Some("string_ids_multi_bridge"));
    let out = st_map(dir.path(), &["--uids", "4-6"]);
    golden("stmap_multi_bridge.txt", &stdout(&out));
    let failed = stdout(&out)
        .lines()
        .filter(|l| l.contains(" error: "))
        .count();
    assert!(failed > 0, "the fixture has a failing UID");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("the lookup failed for {failed} of 3 UIDs")),
        "{err}"
    );
    let json = stdout(&st_map(dir.path(), &["--uids", "5", "--json"]));
    let rows: serde_json::Value = serde_json::from_str(&json).expect("valid JSON");
    assert!(rows[0]["st_info"].is_null());
    assert!(rows[0]["error"]
        .as_str()
        .is_some_and(|e| e.contains("integer")));
}

#[test]
fn stmap_bad_uid_list_is_an_error_printed_once() {
    let dir = tables_dir(None);
    let out = st_map(dir.path(), &["--uids", "9-2"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("tphctl: --uids: "), "{err}");
}

#[test]
fn stmap_uid_column_stays_aligned_past_9999() {
    let dir = tables_dir(Some("helper_methods"));
    let out = st_map(dir.path(), &["--uids", "9998-10001"]);
    let text = stdout(&out);
    let columns: Vec<usize> = text
        .lines()
        .skip(1)
        .map(|l| {
            l.find(" st_info ")
                .or_else(|| l.find(" error: "))
                .expect("a row")
        })
        .collect();
    assert_eq!(columns.len(), 4, "{text}");
    assert!(columns.windows(2).all(|w| w[0] == w[1]), "{text}");
}
