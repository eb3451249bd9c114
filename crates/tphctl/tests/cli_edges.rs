//! The edges of the command line: `vm` inputs bounded and its sizes checked before anything
//! is allocated, errors that name the cause and the fix, one `--cpus` rule in every
//! subcommand, special files refused where a regular file is read (never a hang), and failed
//! session lines reported without keeping every line number.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{stderr, stdout, tphctl_stdin};

/// Runs tphctl with `args` and no input, failing the test if it has not ended after 60 s (a
/// hang on a FIFO is what some of these tests guard against).
fn tphctl_bounded(args: &[&str]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            panic!("tphctl {args:?} hung");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn mkfifo(path: &Path) {
    let ok = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(ok.success(), "mkfifo {}", path.display());
}

fn refused(out: &Output, needles: &[&str]) {
    assert_eq!(out.status.code(), Some(2), "{}", stderr(out));
    for n in needles {
        assert!(
            stderr(out).contains(n),
            "stderr lacks {n:?}: {}",
            stderr(out)
        );
    }
}

#[test]
fn vm_refuses_a_device_or_fifo_as_dump_instead_of_reading_it() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("dump");
    mkfifo(&fifo);
    for dump in ["/dev/zero", fifo.to_str().unwrap()] {
        let out = tphctl_bounded(&["vm", "--dump", dump, "02:00.0", "--pin", "0:1"]);
        refused(&out, &[dump, "not a regular file"]);
    }
}

#[test]
fn vm_reads_its_dump_within_the_dump_limits() {
    let dir = tempfile::tempdir().unwrap();
    let dump = dir.path().join("long-line.lspci");
    std::fs::write(&dump, vec![b'0'; 10_000]).unwrap();
    let out = tphctl_bounded(&[
        "vm",
        "--dump",
        dump.to_str().unwrap(),
        "00:00.0",
        "--pin",
        "0:1",
    ]);
    refused(&out, &["longer than 4096 bytes"]);
}

#[test]
fn vm_answers_an_overlong_line_with_an_error_and_does_not_echo_it() {
    let mut input = vec![b'x'; 1 << 20];
    input.extend_from_slice(b"\nguest\n");
    let out = tphctl_stdin(&["vm", "--emulated", "02:00.0", "--pin", "0:1"], &input);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains("longer than 65536 bytes"), "{text}");
    assert!(
        text.contains("> guest"),
        "the next line is still served: {text}"
    );
    assert!(
        text.len() < 1000,
        "the long line was echoed: {} bytes",
        text.len()
    );
    assert!(
        stderr(&out).contains("1 of 2 commands failed (line 1)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn vm_answers_a_line_that_is_not_utf8_and_goes_on() {
    let out = tphctl_stdin(
        &["vm", "--emulated", "02:00.0", "--pin", "0:1", "--json"],
        b"gu\xffest\nguest\n",
    );
    let lines: Vec<serde_json::Value> = common::json_lines(&out);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["ok"], false);
    assert!(lines[0]["error"].as_str().unwrap().contains("not UTF-8"));
    assert_eq!(lines[1]["ok"], true);
}

#[test]
fn vm_sizes_are_checked_before_anything_is_allocated() {
    let cases: [(&[&str], &[&str]); 5] = [
        (&["--pin", "4000000000:1"], &["vCPU 4000000000", "4096"]),
        (
            &["--pin", "0:1", "--vcpus", "4000000000"],
            &["--vcpus 4000000000", "1 to 4096"],
        ),
        (
            &["--pin", "0:1", "--vcpus", "0"],
            &["--vcpus 0", "1 to 4096"],
        ),
        (&["--pin", "7:1", "--vcpus", "2"], &["vCPU 7", "--vcpus 8"]),
        (&["--pin", "0:1,0:2"], &["vCPU 0 is pinned twice"]),
    ];
    for (args, needles) in cases {
        let mut full = vec!["vm", "--emulated", "02:00.0"];
        full.extend_from_slice(args);
        let out = tphctl_bounded(&full);
        refused(&out, needles);
    }
}

#[test]
fn vm_names_a_missing_host_cpu_and_the_flag_that_adds_cpus() {
    let out = tphctl_bounded(&["vm", "--emulated", "02:00.0", "--pin", "0:9"]);
    refused(&out, &["host CPU 9 is not present", "--cpus"]);
}

#[test]
fn vm_says_why_the_guest_cannot_enable_ds_and_how_to_allow_it() {
    // 03:00.0 has DS mode; without the unsafe option the guest does not see it.
    let out = tphctl_stdin(
        &["vm", "--emulated", "03:00.0", "--pin", "0:1"],
        b"enable ds\n",
    );
    let text = stdout(&out);
    assert!(text.contains("Device Specific mode"), "{text}");
    assert!(text.contains("fix: --unsafe-ds-mode"), "{text}");
    let out = tphctl_stdin(
        &[
            "vm",
            "--emulated",
            "03:00.0",
            "--pin",
            "0:1",
            "--unsafe-ds-mode",
        ],
        b"enable ds\n",
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

/// The subcommands that emulate a host and their arguments around `--cpus N`.
fn with_cpus(n: &str) -> Vec<Vec<String>> {
    let s = |v: &[&str]| v.iter().map(ToString::to_string).collect::<Vec<String>>();
    vec![
        s(&["session", "--emulated", "02:00.0", "--cpus", n]),
        s(&["vm", "--emulated", "02:00.0", "--pin", "0:0", "--cpus", n]),
        s(&["emulate", "--emulated", "--cpus", n, "--", "true"]),
    ]
}

#[test]
fn every_subcommand_refuses_zero_cpus() {
    for args in with_cpus("0") {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tphctl_bounded(&args);
        refused(&out, &["--cpus 0", "at least 1 CPU"]);
    }
    let out = tphctl_bounded(&[
        "show",
        "--emulated",
        "--firmware",
        "/dev/null",
        "--cpus",
        "0",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--cpus"), "{}", stderr(&out));
}

#[test]
fn every_subcommand_refuses_more_cpus_than_the_built_in_tags_tell_apart() {
    for args in with_cpus("129") {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = tphctl_bounded(&args);
        refused(&out, &["--cpus 129", "128 CPUs", "--firmware"]);
    }
}

#[test]
fn every_subcommand_accepts_the_largest_host_the_built_in_firmware_serves() {
    let out = tphctl_stdin(
        &["session", "--emulated", "02:00.0", "--cpus", "128"],
        b"cap\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = tphctl_stdin(
        &[
            "vm",
            "--emulated",
            "02:00.0",
            "--pin",
            "0:127",
            "--cpus",
            "128",
        ],
        b"guest\n",
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_fifo_named_config_in_a_sysfs_tree_is_refused_not_waited_on() {
    let root = tempfile::tempdir().unwrap();
    let dev = root.path().join("bus/pci/devices/0000:00:01.0");
    std::fs::create_dir_all(&dev).unwrap();
    mkfifo(&dev.join("config"));
    let sysfs = format!("--sysfs={}", root.path().display());
    for cmd in ["list", "show"] {
        let out = tphctl_bounded(&[cmd, &sysfs]);
        refused(&out, &["config", "not a regular file"]);
    }
}

#[test]
fn special_files_are_refused_as_dump_and_firmware() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    let tables = dir.path().join("tables");
    std::fs::create_dir(&tables).unwrap();
    mkfifo(&tables.join("DSDT"));
    let cases: [&[&str]; 4] = [
        &["list", "--dump", fifo],
        &["show", "--dump", "/dev/zero"],
        &["session", "--emulated", "02:00.0", "--firmware", fifo],
        &["st-map", "--tables", tables.to_str().unwrap()],
    ];
    for args in cases {
        let out = tphctl_bounded(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("not a regular file"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[test]
fn many_failed_session_lines_are_counted_with_the_first_ten_named() {
    // From a file: the replies would fill a pipe while the input is still being written.
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("input");
    std::fs::write(&input, "nonsense\n".repeat(20_000)).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(["session", "--emulated", "02:00.0"])
        .stdin(std::fs::File::open(&input).unwrap())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains(
            "session: 20000 of 20000 commands failed (lines 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, ...)"
        ),
        "{err}"
    );
}
