//! Shared fixture for tphctl's end-to-end tests: running the binary, golden files, the
//! tph-acpi test data, and compiling ASL with the real `iasl`.
#![allow(dead_code)] // each test binary uses a subset

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// `crates/tphctl/tests/<rel>`.
pub fn tests_dir(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(rel)
}

/// `crates/tph-acpi/tests/<rel>`: the firmware test data (host tables, ASL corpus, example).
pub fn acpi_data(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tph-acpi/tests")
        .join(rel)
}

/// `dump` as `lspci -xxx` writes it: 256 bytes a function (no hex line at 0x100 or above),
/// written to `dir/short.lspci`.
pub fn cut_to_256(dump: &Path, dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(dump).expect("dump");
    let short: String = text
        .lines()
        .filter(|l| l.split_once(':').is_none_or(|(off, _)| off.len() != 3))
        .map(|l| format!("{l}\n"))
        .collect();
    let path = dir.join("short.lspci");
    std::fs::write(&path, short).expect("write");
    path
}

/// Runs `tphctl ARGS --sysfs=ROOT`.
pub fn tphctl_sysfs(args: &[&str], root: &Path) -> Output {
    let mut sysfs = std::ffi::OsString::from("--sysfs=");
    sysfs.push(root);
    Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(args)
        .arg(sysfs)
        .output()
        .expect("tphctl runs")
}

/// Runs tphctl in `dir` (so relative paths in its output are stable).
pub fn tphctl(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .current_dir(dir)
        .args(args)
        .output()
        .expect("tphctl runs")
}

/// Runs tphctl with `stdin` as its input.
pub fn tphctl_stdin(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_tphctl"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tphctl");
    // The child may exit before reading everything (setup errors): a broken pipe is fine.
    if let Err(e) = child.stdin.take().expect("stdin").write_all(stdin) {
        assert_eq!(
            e.kind(),
            std::io::ErrorKind::BrokenPipe,
            "writing stdin: {e}"
        );
    }
    child.wait_with_output().expect("wait tphctl")
}

/// Runs `session ARGS` with `tests/data/session/<script>` on stdin; asserts the exit status
/// says whether any command failed (0 none, 2 some, with their count on stderr).
pub fn session_script(script: &str, args: &[&str]) -> Output {
    let input = std::fs::read(tests_dir("data/session").join(script)).expect("script");
    let mut full = vec!["session"];
    full.extend_from_slice(args);
    let out = tphctl_stdin(&full, &input);
    assert_session_status(&out, args.contains(&"--json"));
    out
}

/// The failed replies of a session's output: `"ok": false` objects, or text `error:` and
/// `ret -1` lines.
pub fn failed_replies(o: &Output, json: bool) -> usize {
    if json {
        return json_lines(o).iter().filter(|l| l["ok"] == false).count();
    }
    stdout(o)
        .lines()
        .filter(|l| l.starts_with("error: ") || l.starts_with("ret -1 "))
        .count()
}

/// Exit status 0 when every reply succeeded, else 2 and one stderr line counting failures.
pub fn assert_session_status(o: &Output, json: bool) {
    let failed = failed_replies(o, json);
    let err = stderr(o);
    if failed == 0 {
        assert_eq!(o.status.code(), Some(0), "stderr: {err}");
        return;
    }
    assert_eq!(o.status.code(), Some(2), "{failed} failed; stderr: {err}");
    let want = format!("tphctl: session: {failed} of ");
    assert!(err.contains(&want), "expected {want:?} in stderr: {err}");
}

/// Compares `actual` with `tests/golden/<rel>`; `UPDATE_GOLDEN=1` rewrites the file first
/// (after a reviewed change).
pub fn golden(rel: &str, actual: &str) {
    let path = tests_dir("golden").join(rel);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "golden file {} (UPDATE_GOLDEN=1 creates it): {e}",
            path.display()
        )
    });
    assert_eq!(actual, want, "output differs from {}", path.display());
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// One JSON value per stdout line (`session --json`).
pub fn json_lines(o: &Output) -> Vec<serde_json::Value> {
    stdout(o)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("JSON line {l:?}: {e}")))
        .collect()
}

/// Compiles the ASL file `src` with the real `iasl` (package acpica-tools) into `out` plus
/// `.aml`; returns that path.
pub fn iasl(src: &Path, out: &Path) -> PathBuf {
    let run = Command::new("iasl").arg("-p").arg(out).arg(src).output();
    let run = run.expect("`iasl` runs: these tests need the package acpica-tools");
    assert!(
        run.status.success(),
        "iasl {}: {}",
        src.display(),
        String::from_utf8_lossy(&run.stdout)
    );
    out.with_extension("aml")
}

/// From `lspci -vvv` output, per device with a TPH capability: its BDF line, then each TPH
/// capability's title and detail lines (what `tphctl show --lspci` prints).
pub fn extract_tph_blocks(lspci: &str) -> String {
    let mut result = String::new();
    let mut device = String::new();
    let mut printed_device = false;
    let mut in_block = false;
    for line in lspci.lines() {
        if !line.is_empty() && !line.starts_with('\t') {
            device = line.split(' ').next().unwrap_or_default().to_owned();
            printed_device = false;
            in_block = false;
        } else if line.starts_with("\tCapabilities: [")
            && line.ends_with("] Transaction Processing Hints")
        {
            if !printed_device {
                result.push_str(&device);
                result.push('\n');
                printed_device = true;
            }
            in_block = true;
            result.push_str(line);
            result.push('\n');
        } else if in_block && line.starts_with("\t\t") {
            result.push_str(line);
            result.push('\n');
        } else {
            in_block = false;
        }
    }
    result
}
