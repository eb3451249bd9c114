//! What an operator meets at the edges (issue 12): partial data is "unknown", never "absent";
//! every input is bounded while it is read; the exit status says what happened, the same in
//! every subcommand; no silent choices; one vocabulary in text and JSON.

mod common;
#[path = "common/synth.rs"]
mod synth;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{stderr, stdout, tests_dir, tphctl_stdin};

fn dsa() -> PathBuf {
    tests_dir("data/intel-dsa-pri-pasid.lspci")
}

fn i350() -> PathBuf {
    tests_dir("data/machine-23c7a39.lspci")
}

fn run(args: &[&str]) -> Output {
    common::tphctl(Path::new(env!("CARGO_MANIFEST_DIR")), args)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Runs `sh -c SCRIPT` with `$T` the tphctl binary; its output.
fn sh(script: &str) -> Output {
    Command::new("bash")
        .args(["-c", script])
        .env("T", env!("CARGO_BIN_EXE_tphctl"))
        .output()
        .expect("bash runs")
}

// 1. Partial data is "unknown", never "absent".

#[test]
fn show_bdf_on_a_256_byte_dump_is_unknown_with_the_xxxx_fix_and_exits_2() {
    let dir = tempfile::tempdir().expect("tmp");
    let short = common::cut_to_256(&dsa(), dir.path());
    let out = run(&["show", "6a:01.0", "--dump", s(&short)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(!err.contains("has no TPH"), "never absent: {err}");
    assert!(
        err.contains("TPH unknown for function 0000:6a:01.0: the extended configuration space"),
        "{err}"
    );
    assert!(err.contains("lspci -xxxx"), "the fix: {err}");
}

#[test]
fn list_on_a_256_byte_dump_says_unknown_once_with_a_count() {
    let dir = tempfile::tempdir().expect("tmp");
    let short = common::cut_to_256(&i350(), dir.path());
    let out = run(&["list", "--dump", s(&short)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "said once: {err}");
    // The I350 machine: every PCI Express function lost its extended space.
    let pcie = run(&["list", "--dump", s(&i350()), "--json"]);
    assert!(pcie.status.success());
    assert!(
        err.starts_with("tphctl: TPH unknown for ") && err.contains(" functions (first "),
        "{err}"
    );
}

#[test]
fn list_and_show_on_a_256_byte_dump_match_the_golden_text() {
    let dir = tempfile::tempdir().expect("tmp");
    // Run in the folder, by relative name: the golden text names the file.
    common::cut_to_256(&i350(), dir.path());
    let mut text = String::new();
    for args in [&["list"][..], &["show"], &["show", "01:00.0"]] {
        let mut full = args.to_vec();
        full.extend(["--dump", "short.lspci"]);
        let out = common::tphctl(dir.path(), &full);
        text += &format!(
            "$ tphctl {} (status {:?})\n{}{}",
            full.join(" "),
            out.status.code(),
            stdout(&out),
            stderr(&out)
        );
    }
    common::golden("unknown-i350-256.txt", &text);
}

#[test]
fn show_json_on_a_256_byte_dump_carries_the_unknown_verdict_as_a_field() {
    let dir = tempfile::tempdir().expect("tmp");
    let short = common::cut_to_256(&dsa(), dir.path());
    let out = run(&["show", "6a:01.0", "--dump", s(&short), "--json"]);
    assert_eq!(out.status.code(), Some(2));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v[0]["bdf"], "0000:6a:01.0");
    assert_eq!(v[0]["tph_status"], "unknown");
    assert_eq!(v[0]["unread"], "extended");
    assert!(v[0]["fix"].as_str().is_some_and(|f| f.contains("-xxxx")));
}

#[test]
fn show_bdf_without_tph_on_a_full_dump_is_absent_exit_1() {
    // 00:00.0 of the I350 machine: a full 4096-byte PCI Express function without TPH.
    let out = run(&["show", "00:01.0", "--dump", s(&i350())]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("has no TPH Requester capability"));
}

// 2. Every input bounded, errors quote a short prefix with the line number.

#[test]
fn list_dump_dev_zero_is_refused_as_a_device_before_it_is_read() {
    let out = run(&["list", "--dump", "/dev/zero"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("/dev/zero: not a regular file"), "{err}");
    assert!(err.len() < 300, "a short message: {err}");
}

#[test]
fn list_dump_of_one_endless_line_is_refused_at_the_line_limit() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("zeros");
    std::fs::write(&path, vec![0u8; 1 << 20]).expect("write");
    let out = run(&["list", "--dump", s(&path)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("line 1: longer than 4096 bytes"), "{err}");
    assert!(err.len() < 300, "a short message: {err}");
}

#[test]
fn dump_one_line_of_a_megabyte_error_quotes_a_short_prefix() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("one-line.txt");
    std::fs::write(&path, "q".repeat(1 << 20)).expect("write");
    let out = run(&["list", "--dump", s(&path)]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.len() < 300, "{} bytes of message", err.len());
    assert!(err.contains("line 1:"), "{err}");
}

#[test]
fn dump_dash_reads_standard_input() {
    let text = std::fs::read(dsa()).expect("dump");
    let piped = tphctl_stdin(&["list", "--dump", "-"], &text);
    let file = run(&["list", "--dump", s(&dsa())]);
    assert_eq!(piped.status.code(), Some(0), "{}", stderr(&piped));
    assert_eq!(stdout(&piped), stdout(&file));
}

#[test]
fn session_stdin_line_over_the_limit_is_answered_with_its_number_and_skipped() {
    let mut input = vec![b'x'; 200_000];
    input.extend_from_slice(b"\ncap\n");
    let out = tphctl_stdin(&["session", "--emulated", "02:00.0", "--json"], &input);
    let lines = common::json_lines(&out);
    assert_eq!(lines.len(), 2, "one answer per line");
    assert_eq!(lines[0]["ok"], false);
    assert_eq!(
        lines[0]["error"],
        "line 1: longer than 65536 bytes (the line limit)"
    );
    assert!(lines[0]["cmd"].as_str().is_some_and(|c| c.len() <= 45));
    assert_eq!(lines[1]["cmd"], "cap");
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[1]["ok"], true);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn session_stdin_dev_zero_stays_bounded_and_fails() {
    // An endless line of NUL bytes: answered as one too-long line, memory bounded (the
    // rest of the line is skipped without being kept), then end of input.
    let out = sh("head -c 50000000 /dev/zero | $T session --emulated 02:00.0");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stdout(&out).contains("error: line 1: longer than 65536 bytes"));
}

#[test]
fn session_line_not_utf8_is_answered_with_its_number() {
    let out = tphctl_stdin(&["session", "--emulated", "02:00.0"], b"cap\nca\xffp\n");
    assert!(
        stdout(&out).contains("error: line 2: not UTF-8 text (byte 3 of the line is invalid)"),
        "{}",
        stdout(&out)
    );
    assert_eq!(out.status.code(), Some(2));
}

// 3. The exit status says what happened; one stream per condition.

#[test]
fn session_exits_2_when_any_command_failed_naming_the_lines() {
    let out = tphctl_stdin(
        &["session", "--emulated", "02:00.0"],
        b"cap\nfrob\n# c\nraw zz\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "tphctl: session: 2 of 3 commands failed (lines 2, 4)\n"
    );
}

#[test]
fn session_exits_0_when_every_command_succeeded() {
    let out = tphctl_stdin(
        &["session", "--emulated", "02:00.0"],
        b"cap\nenable iv\nshow\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn list_with_standard_output_closed_exits_2() {
    let out = sh("$T list --emulated >&-");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("standard output is closed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn list_into_dev_null_write_only_is_not_a_closed_output() {
    // `>/dev/null` (write-only) is a choice, not a closed output; `1<>/dev/null` is opened
    // read-write like the runtime's stand-in, so it reads as closed.
    let out = sh("$T list --emulated > /dev/null");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    let out = sh("$T list --emulated 1<> /dev/null");
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("standard output is closed"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn list_into_a_full_device_exits_2_with_the_write_error() {
    let out = sh("$T list --emulated > /dev/full");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).starts_with("tphctl: writing output: "),
        "{}",
        stderr(&out)
    );
}

#[test]
fn list_into_a_closed_pipe_exits_0_quietly() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("big.lspci");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    synth::write_dump(3000, &mut f).expect("write dump");
    drop(f);
    let script = format!(
        "$T list --dump {} | head -c 1 >/dev/null; exit ${{PIPESTATUS[0]}}",
        s(&path)
    );
    let out = sh(&script);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn every_subcommand_help_states_the_same_exit_status_scheme() {
    for cmd in ["list", "show", "session", "st-map", "demo"] {
        let out = run(&[cmd, "--help"]);
        let help = stdout(&out);
        assert!(help.contains("Exit status: 0 "), "{cmd} --help: {help}");
        assert!(help.contains("; 1 "), "{cmd} --help: {help}");
        assert!(help.contains("; 2 an error"), "{cmd} --help: {help}");
    }
}

// 4. No silent choices; refusals name the field and the limit.

#[test]
fn session_cpus_0_is_refused() {
    let out = tphctl_stdin(
        &["session", "--emulated", "02:00.0", "--cpus", "0"],
        b"cap\n",
    );
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        stderr(&out),
        "tphctl: --cpus 0: an emulated host needs at least 1 CPU\n"
    );
}

#[test]
fn session_cpus_the_default_firmware_tags_cannot_tell_apart_are_refused() {
    let out = tphctl_stdin(&["session", "--emulated", "02:00.0", "--cpus", "129"], b"");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("at most 128 CPUs"),
        "{}",
        stderr(&out)
    );
    let ok = tphctl_stdin(
        &["session", "--emulated", "02:00.0", "--cpus", "128"],
        b"cap\n",
    );
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}

#[test]
fn session_options_that_do_not_apply_to_the_source_are_refused() {
    for args in [
        &["session", "--vfio", "01:00.0", "--cpus", "4"][..],
        &["session", "--vfio", "01:00.0", "--unsafe-ds-mode"],
        // (`--kernel-abi` does apply to an emulated host: it picks the revision it speaks.)
        &["session", "--vfio", "01:00.0", "--notph"],
        &[
            "session",
            "--emulated",
            "01:00.0",
            "--vfio-interface",
            "cdev",
        ],
    ] {
        let out = tphctl_stdin(args, b"cap\n");
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(
            stderr(&out).contains("cannot be used with"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn session_set_st_with_all_ones_cpu_is_refused_pointing_to_clear() {
    let out = tphctl_stdin(
        &["session", "--emulated", "02:00.0"],
        b"enable iv\nset-st 0=4294967295\nset-st 0=0xffffffff\n",
    );
    let text = stdout(&out);
    assert_eq!(text.matches("is not a CPU").count(), 2, "{text}");
    assert!(text.contains("use `clear 0`"), "{text}");
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn session_irqs_over_2048_is_refused_naming_the_msix_limit() {
    let out = tphctl_stdin(&["session", "--emulated", "01:00.0"], b"irqs 2049\n");
    assert!(
        stdout(&out).contains("irqs 2049: more than 2048 vectors (the MSI-X limit)"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn session_on_a_function_without_tph_asks_the_kernel_which_answers_enodev() {
    // The v7 raw-ABI path a driver takes on a device without TPH: the kernel's ENODEV.
    let raw_get_cap = "raw 10000000000000000000000000000000\n";
    let script = format!("cap\n{raw_get_cap}");
    let out = tphctl_stdin(&["session", "--emulated", "00:06.0"], script.as_bytes());
    assert_eq!(out.status.code(), Some(2), "commands failed");
    assert!(
        stderr(&out).starts_with(
            "tphctl: session: note: 0000:00:06.0 has no TPH Requester capability; the kernel \
             is asked anyway (it answers ENODEV)\n"
        ),
        "{}",
        stderr(&out)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("ENODEV (19)"), "{stdout}");
    assert!(stdout.contains("ret -1 errno ENODEV"), "{stdout}");
}

#[test]
fn session_dump_from_standard_input_is_refused() {
    let out = tphctl_stdin(&["session", "--dump", "-", "01:00.0"], b"cap\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("standard input carries the session's commands"));
}

#[test]
fn empty_dump_is_an_error_not_an_empty_machine() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("empty.lspci");
    std::fs::write(&path, "").expect("write");
    let out = run(&["list", "--dump", s(&path)]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the dump is empty"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn bad_bdf_names_the_wrong_field() {
    let out = run(&["show", "19:20.0", "--emulated"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("the device 0x20 is above its limit 0x1f"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn session_refusals_name_the_field_and_the_limit() {
    // 02:00.0: 16 MSI-X vectors, a 16-entry table in the capability; 8 CPUs by default.
    let out = tphctl_stdin(
        &["session", "--emulated", "02:00.0"],
        b"irqs 100\nenable iv\nset-st 20=1\nclear 16\nset-st 0=99\n",
    );
    let text = stdout(&out);
    for want in [
        "irqs 100: the function has 16 MSI-X vectors",
        "index 20 is past the 16-entry ST table (0-15)",
        "index 16 is past the 16-entry ST table (0-15)",
        "CPU 99 does not exist: EINVAL (22); present CPUs: 0-7",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
}

#[test]
fn session_get_st_in_iv_mode_says_it_needs_ds_mode() {
    let out = tphctl_stdin(
        &["session", "--emulated", "02:00.0"],
        b"enable iv\nget-st 1\n",
    );
    assert!(
        stdout(&out).contains("get-st answers only in DS mode (`enable ds`"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn session_set_st_says_when_firmware_gave_no_tag_and_tag_0_was_written() {
    let dir = tempfile::tempdir().expect("tmp");
    let fw = dir.path().join("fw.txt");
    // UID 0: no valid bit at all; UID 1: a valid 8-bit VM tag 0x15 (firmware-dsm.md bits).
    std::fs::write(&fw, "0 0x0\n1 0x1501\n").expect("write");
    let out = tphctl_stdin(
        &["session", "--emulated", "02:00.0", "--firmware", s(&fw)],
        b"enable iv\nset-st 0=1\nset-st 1=0 2=1\n",
    );
    assert_eq!(
        stdout(&out),
        "> enable iv\nok\n> set-st 0=1\nok\n> set-st 1=0 2=1\nok\nwarning: firmware has no \
         valid 8-bit tag for entry 1 (CPU 0 vm): tag 0 written (no steering)\n"
    );
    assert_eq!(out.status.code(), Some(0), "a warning is not a failure");
}

// 5. One vocabulary; runs folded.

#[test]
fn list_text_modes_are_the_json_mode_names() {
    let text = stdout(&run(&["list", "--emulated"]));
    let json: serde_json::Value =
        serde_json::from_slice(&run(&["list", "--emulated", "--json"]).stdout).expect("JSON");
    for row in json.as_array().expect("rows") {
        let modes: Vec<&str> = row["enable"]["modes"]
            .as_array()
            .expect("modes")
            .iter()
            .map(|m| m.as_str().expect("mode"))
            .collect();
        let bdf = row["bdf"].as_str().expect("bdf");
        let line = text.lines().find(|l| l.starts_with(bdf)).expect("text row");
        assert!(line.contains(&format!("  {}  ", modes.join(","))), "{line}");
    }
}

#[test]
fn session_show_uses_the_list_vocabulary() {
    let out = tphctl_stdin(
        &["session", "--emulated", "02:00.0"],
        b"cap\nenable iv\nshow\n",
    );
    let text = stdout(&out);
    assert!(text.contains("modes: interrupt_vector"), "{text}");
    assert!(
        text.contains("(mode interrupt_vector, requester enable tph)"),
        "{text}"
    );
}

#[test]
fn show_text_folds_runs_of_identical_entries() {
    let text = stdout(&run(&["show", "00:05.0", "--emulated"]));
    assert!(text.contains("\t\t[0-7] 0x0000"), "{text}");
    assert!(!text.contains("[1] 0x0000"), "{text}");
}

// 6. Linear: a large dump's session starts at once and takes over one device.

#[test]
fn session_dump_of_20000_functions_takes_over_one_device() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("big.lspci");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
    synth::write_dump(20_000, &mut f).expect("write dump");
    drop(f);
    let mut child = Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(["session", "--dump", s(&path), "0001:05:07.7", "--json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    use std::io::Write;
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"cap\nenable iv\n")
        .expect("write");
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let lines = common::json_lines(&out);
    assert_eq!(lines[0]["table_size"], 8);
    assert_eq!(lines[1]["ok"], true);
}
