//! Golden text output of `tphctl list` and `tphctl show` on every shared dump, plus the JSON
//! facts the issue requires and the exit codes. Regenerate goldens with `UPDATE_GOLDEN=1`.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tph-regs/tests/data")
        .join(name)
}

fn golden_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

fn tphctl(args: &[&str], dump: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(args)
        .arg("--dump")
        .arg(dump)
        .output()
        .expect("tphctl runs")
}

fn check_golden(name: &str, actual: &str) {
    let path = golden_dir().join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(golden_dir()).expect("golden dir");
        std::fs::write(&path, actual).expect("write golden");
    }
    let expected =
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(actual, expected, "output differs from {}", path.display());
}

const DUMPS: [&str; 6] = [
    "intel-0d93-cxl",
    "intel-dsa-pri-pasid",
    "machine-02daadc",
    "machine-23c7a39",
    "machine-362f18e",
    "machine-caf6526",
];

#[test]
fn list_and_show_text_match_goldens_on_every_shared_dump() {
    for dump in DUMPS {
        let path = data(&format!("{dump}.lspci"));
        for cmd in ["list", "show"] {
            let out = tphctl(&[cmd], &path);
            check_golden(
                &format!("{dump}.{cmd}.txt"),
                &String::from_utf8_lossy(&out.stdout),
            );
        }
    }
}

fn json(args: &[&str], dump: &str) -> serde_json::Value {
    let out = tphctl(args, &data(dump));
    assert!(out.status.success(), "{out:?}");
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

#[test]
fn show_json_dsa_control_ds_tph_only_entries_0_and_a() {
    let v = json(&["show", "6a:01.0", "--json"], "intel-dsa-pri-pasid.lspci");
    let tph = &v[0]["tph"];
    assert_eq!(tph["control"]["mode"], "device_specific");
    assert_eq!(tph["control"]["requester_enable"], "tph");
    let sts: Vec<u64> = tph["entries"]
        .as_array()
        .expect("entries array")
        .iter()
        .map(|e| e["st"].as_u64().expect("st number"))
        .collect();
    assert_eq!(sts, vec![0x0000, 0x000a]);
    assert_eq!(v[0]["port_type"], "rc_integrated_endpoint");
    assert_eq!(v[0]["enable"]["requester_type"], 1);
}

#[test]
fn show_json_i350s_enable_fails_root_port_without_completer() {
    let v = json(&["show", "--json"], "machine-23c7a39.lspci");
    let functions = v.as_array().expect("array");
    assert_eq!(functions.len(), 4);
    for f in functions {
        assert_eq!(f["root_port"]["bdf"], "0000:00:01.0");
        assert_eq!(f["root_port"]["completer"], "none");
        assert_eq!(f["enable"]["ok"], false);
        let reason = f["enable"]["reason"].as_str().expect("reason");
        assert!(reason.contains("no TPH completer"), "{reason}");
    }
}

#[test]
fn list_json_rows_name_root_port_completer() {
    let v = json(&["list", "--json"], "machine-23c7a39.lspci");
    assert_eq!(v[0]["bdf"], "0000:01:00.0");
    assert_eq!(v[0]["root_port"]["completer"], "none");
    assert_eq!(v[0]["enable"]["ok"], false);
}

#[test]
fn show_bdf_without_domain_equals_with_domain() {
    let a = tphctl(&["show", "6a:01.0"], &data("intel-dsa-pri-pasid.lspci"));
    let b = tphctl(
        &["show", "0000:6a:01.0"],
        &data("intel-dsa-pri-pasid.lspci"),
    );
    assert_eq!(a.stdout, b.stdout);
    assert!(!a.stdout.is_empty());
}

#[test]
fn exit_codes_absent_is_1_error_is_2() {
    let dsa = data("intel-dsa-pri-pasid.lspci");
    assert_eq!(tphctl(&["show", "19:00.0"], &dsa).status.code(), Some(1));
    assert_eq!(
        tphctl(&["list"], &data("machine-caf6526.lspci"))
            .status
            .code(),
        Some(1)
    );
    let bad = tphctl(&["show", "zz:00.0"], &dsa);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).starts_with("tphctl: show: invalid BDF"));
    let missing = tphctl(&["list"], Path::new("/nonexistent/dump"));
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn list_and_show_without_tph_functions_say_so_on_stderr() {
    let dump = data("machine-caf6526.lspci");
    for cmd in ["list", "show"] {
        let out = tphctl(&[cmd], &dump);
        assert_eq!(out.status.code(), Some(1), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        // The VMware guest dump holds many functions, none with a TPH Requester capability.
        assert!(
            err.starts_with("tphctl: no function with a TPH Requester capability ("),
            "{cmd}: {err}"
        );
        assert!(err.contains("functions read; reading dump"), "{cmd}: {err}");
    }
}

#[test]
fn emulated_source_lists_default_machine_with_refused_nic() {
    let out = Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(["list", "--emulated", "--json"])
        .output()
        .expect("tphctl runs");
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = v.as_array().expect("array");
    // The kernel model's default machine documents a NIC at 04:00.0 below a root port
    // without a TPH completer, and an RCiEP at 00:05.0 with a TPH capability.
    let nic = rows
        .iter()
        .find(|r| r["bdf"] == "0000:04:00.0")
        .expect("04:00.0 listed");
    assert_eq!(nic["root_port"]["completer"], "none");
    assert_eq!(nic["enable"]["ok"], false);
    let rciep = rows
        .iter()
        .find(|r| r["bdf"] == "0000:00:05.0")
        .expect("00:05.0 listed");
    assert_eq!(rciep["enable"]["ok"], true);
}
