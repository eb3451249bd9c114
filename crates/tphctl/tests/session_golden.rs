//! `tphctl session` end to end: scripted stdin, output compared with golden files.
//! Set `UPDATE_GOLDEN=1` to rewrite the golden files after a reviewed change.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::{tests_dir, tphctl_stdin as run};

/// Runs `session ARGS` with `script` on stdin and compares stdout with `golden`.
fn golden(script: &str, args: &[&str], golden: &str) {
    let out = common::session_script(script, args);
    common::golden(&format!("session/{golden}"), &common::stdout(&out));
}

fn dump(name: &str) -> String {
    tests_dir(&format!("data/{name}"))
        .to_string_lossy()
        .into_owned()
}

#[test]
fn session_emulated_iv_msix_table_matches_golden() {
    golden("iv-msix.in", &["--emulated", "01:00.0"], "iv-msix.txt");
}

#[test]
fn session_emulated_ds_accelerator_json_matches_golden() {
    golden(
        "ds-accel.in",
        &["--emulated", "03:00.0", "--unsafe-ds-mode", "--json"],
        "ds-accel.jsonl",
    );
}

#[test]
fn session_emulated_capability_table_json_matches_golden() {
    golden(
        "cap-table.in",
        &["--emulated", "02:00.0", "--json"],
        "cap-table.jsonl",
    );
}

#[test]
fn session_bad_lines_get_messages_and_session_goes_on() {
    golden("bad-lines.in", &["--emulated", "02:00.0"], "bad-lines.txt");
}

#[test]
fn session_dump_dsa_firmware_control_cleared_at_takeover() {
    golden(
        "dsa-dump.in",
        &[
            "--dump",
            &dump("intel-dsa-pri-pasid.lspci"),
            "6a:01.0",
            "--unsafe-ds-mode",
        ],
        "dsa-dump.txt",
    );
}

#[test]
fn session_dump_i350_without_completer_refuses_enable() {
    golden(
        "i350-dump.in",
        &[
            "--dump",
            &dump("machine-23c7a39.lspci"),
            "01:00.0",
            "--unsafe-ds-mode",
            "--json",
        ],
        "i350-dump.jsonl",
    );
}

#[test]
fn session_emulated_notph_host_answers_enodev() {
    let out = run(
        &["session", "--emulated", "02:00.0", "--notph", "--json"],
        b"cap\nenable iv\n",
    );
    let lines = common::json_lines(&out);
    assert_eq!(lines.len(), 2);
    for l in &lines {
        assert_eq!(l["ok"], false);
        assert_eq!(l["errno"], "ENODEV");
    }
}

#[test]
fn session_emulated_cpus_option_limits_present_cpus() {
    let out = run(
        &[
            "session",
            "--emulated",
            "03:00.0",
            "--unsafe-ds-mode",
            "--cpus",
            "2",
            "--json",
        ],
        b"enable ds\nget-st 1\nget-st 2\n",
    );
    let lines = common::json_lines(&out);
    assert_eq!(lines[1]["ok"], true);
    assert_eq!(lines[2]["errno"], "EINVAL");
    assert_eq!(
        lines[2]["error"],
        "CPU 2 does not exist: EINVAL (22); present CPUs: 0-1"
    );
}

#[test]
fn session_emulated_firmware_file_sets_tags() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fw = dir.path().join("fw.txt");
    // Per firmware-dsm.md: bit 0 vm_st_valid, bits 15:8 vm_st. 02:00.0 sits below a root port
    // with TPH-only completer, so the 8-bit tag is used: UID 1 gets tag 0x15.
    std::fs::write(&fw, "1 0x1501\n").expect("write firmware");
    let fw = fw.to_string_lossy().into_owned();
    let out = run(
        &[
            "session",
            "--emulated",
            "02:00.0",
            "--unsafe-ds-mode",
            "--firmware",
            &fw,
            "--json",
        ],
        b"enable ds\nget-st 1\n",
    );
    let lines = common::json_lines(&out);
    let last = lines.last().expect("a reply per command");
    assert_eq!(last["ok"], true, "{last}");
    assert_eq!(last["tags"][0]["cpu"], 1);
    assert_eq!(last["tags"][0]["st"], 0x15, "{last}");
}

#[test]
fn session_absent_bdf_exits_1() {
    let out = run(&["session", "--emulated", "09:00.0"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        common::stderr(&out),
        "tphctl: session: no device 09:00.0 in the machine\n"
    );
}

#[test]
fn session_vfio_without_vfio_fails_clearly() {
    let out = run(
        &["session", "--vfio", "01:00.0", "--kernel-abi", "v7"],
        b"cap\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(err.starts_with("tphctl: session --vfio 01:00.0: "), "{err}");
    assert_eq!(err.lines().count(), 1, "error printed once: {err}");
}

#[test]
fn session_vfio_unknown_kernel_refuses_before_any_call() {
    let out = run(
        &["session", "--vfio", "01:00.0", "--kernel-abi", "unknown"],
        b"cap\n",
    );
    assert_eq!(out.status.code(), Some(2));
    let err = common::stderr(&out);
    assert!(
        err.contains("the kernel has no VFIO TPH interface this client can use (unknown"),
        "{err}"
    );
}

#[test]
fn session_msix_rewire_keeps_the_tags_the_kernel_cached() {
    golden(
        "msix-rewire.in",
        &["--emulated", "01:00.0"],
        "msix-rewire.txt",
    );
}
