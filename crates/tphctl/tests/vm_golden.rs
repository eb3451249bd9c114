//! `tphctl vm` end to end: scripted stdin, output compared with golden files.
//! Set `UPDATE_GOLDEN=1` to rewrite the golden files after a reviewed change.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{stdout, tests_dir, tphctl_stdin};

/// Runs `vm ARGS` with `tests/data/vm/<script>` on stdin and compares stdout with `golden`.
/// Runs `tphctl vm ARGS` on `script`; exit 0 when every command succeeded, 2 when any failed.
fn golden(script: &str, args: &[&str], golden: &str) {
    golden_status(script, args, golden, 0);
}

fn golden_status(script: &str, args: &[&str], golden: &str, code: i32) {
    let input = std::fs::read(tests_dir("data/vm").join(script)).unwrap();
    let mut full = vec!["vm"];
    full.extend_from_slice(args);
    let out = tphctl_stdin(&full, &input);
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}",
        common::stderr(&out)
    );
    if code == 2 {
        assert!(
            common::stderr(&out).starts_with("tphctl: vm: "),
            "{}",
            common::stderr(&out)
        );
    }
    common::golden(&format!("vm/{golden}"), &stdout(&out));
}

#[test]
fn vm_capability_table_translation_matches_golden() {
    golden(
        "cap-table.in",
        &["--emulated", "02:00.0", "--pin", "0:3,1:4"],
        "cap-table.txt",
    );
}

/// Without `enable_unsafe_tph` a feature-revision host has no TPH_ST feature at all (the
/// series author's header): the VM layer offers the guest no IV mode, and nothing reaches the
/// host.
#[test]
fn vm_feature_revision_without_enable_unsafe_tph_offers_the_guest_no_iv() {
    golden_status(
        "msix-feature.in",
        &[
            "--emulated",
            "01:00.0",
            "--pin",
            "0:3,1:4",
            "--kernel-abi",
            "feature",
            "--json",
        ],
        "msix-feature-gated.jsonl",
        2,
    );
}

#[test]
fn vm_msix_table_feature_revision_json_matches_golden() {
    golden(
        "msix-feature.in",
        &[
            "--emulated",
            "01:00.0",
            "--pin",
            "0:3,1:4",
            "--kernel-abi",
            "feature",
            // The feature revision gates the whole TPH_ST feature with enable_unsafe_tph.
            "--unsafe-ds-mode",
            "--json",
        ],
        "msix-feature.jsonl",
    );
}

#[test]
fn vm_hostile_guest_and_bad_lines_get_errors_and_the_vm_goes_on() {
    golden_status(
        "hostile.in",
        &["--emulated", "02:00.0", "--pin", "0:3,1:4", "--json"],
        "hostile.jsonl",
        2,
    );
}

#[test]
fn vm_unsafe_ds_mode_shows_ds_and_fixes_the_pinning() {
    golden_status(
        "unsafe-ds.in",
        &["--emulated", "02:00.0", "--pin", "0:3", "--unsafe-ds-mode"],
        "unsafe-ds.txt",
        2,
    );
}

#[test]
fn vm_dump_rciep_without_iv_keeps_no_st_virtual_and_refuses_iv() {
    let dump = tests_dir("data/intel-dsa-pri-pasid.lspci");
    golden_status(
        "dsa-dump.in",
        &["--dump", dump.to_str().unwrap(), "6a:01.0", "--pin", "0:1"],
        "dsa-dump.txt",
        2,
    );
}

/// A guest FLR or reboot: the host entries the layer programmed are cleared and the host's TPH
/// is disabled (two calls), and the guest's Control and table read 0; `guest` and `host` show
/// both sides back at their reset values, and a second reset makes no host call.
#[test]
fn vm_reset_puts_guest_and_host_back_to_reset_values() {
    golden(
        "reset.in",
        &["--emulated", "02:00.0", "--pin", "0:3,1:4"],
        "reset.txt",
    );
}

/// Entries left behind in MSI-X by a guest that disabled TPH without clearing them are
/// cleared on reset too (the host enabled just for the clear, then disabled).
#[test]
fn vm_reset_clears_entries_a_guest_left_behind_in_msix_json() {
    golden(
        "reset-msix.in",
        &["--emulated", "01:00.0", "--pin", "0:3,1:4", "--json"],
        "reset-msix.jsonl",
    );
}

#[test]
fn vm_absent_device_exits_1() {
    let out = tphctl_stdin(&["vm", "--emulated", "09:00.0", "--pin", "0:1"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(common::stderr(&out).contains("no device 09:00.0"));
}

#[test]
fn vm_bad_pin_list_exits_2_with_one_message() {
    let out = tphctl_stdin(&["vm", "--emulated", "02:00.0", "--pin", "0-1"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        common::stderr(&out),
        "tphctl: vm 0000:02:00.0: --pin: \"0-1\" is not VCPU:PCPU (e.g. --pin 0:2,1:3)\n"
    );
}
