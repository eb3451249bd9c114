//! The README's example sessions run as written (with `tphctl` on PATH) and succeed, and its
//! test command needs no `sudo` (a fresh Debian root has none).

use std::path::Path;
use std::process::Command;

fn readme() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    std::fs::read_to_string(path).expect("README.md")
}

#[test]
fn readme_example_sessions_run_as_written_and_exit_0() {
    let text = readme();
    let examples: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("printf ") && l.contains("| tphctl session "))
        .collect();
    assert!(examples.len() >= 2, "the README shows example sessions");
    let bin = Path::new(env!("CARGO_BIN_EXE_tphctl"))
        .parent()
        .expect("bin dir")
        .to_owned();
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for line in examples {
        let out = Command::new("bash")
            .args(["-o", "pipefail", "-c", line])
            .env("PATH", &path)
            .output()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{line}\n{stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!stdout.contains("error:"), "{line}\n{stdout}");
    }
}

#[test]
fn readme_test_command_starts_without_sudo() {
    let text = readme();
    let command = text
        .lines()
        .find(|l| l.ends_with("&& cargo test --workspace"))
        .expect("the test command");
    assert!(
        command.starts_with("apt-get update && apt-get install -y "),
        "{command}"
    );
}
