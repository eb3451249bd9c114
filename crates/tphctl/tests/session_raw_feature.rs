//! `tphctl session` on a feature-revision host (`--kernel-abi feature` with `--emulated`) and
//! the raw commands `feature HEX`, `cfg-read OFF LEN`, `cfg-write OFF HEX`: each answer is
//! checked against the machine's own bytes or against another command's answer, and the same
//! script gives the same answers through the real-device path (`session --vfio` under
//! `tphctl emulate`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use serde_json::Value;
use tph_regs::machine::Bdf;
use tph_regs::tph::TphRequester;

use common::{json_lines, stderr, stdout, tphctl_stdin};

/// The default machine's function with DS mode and its table in the capability.
const DEV: &str = "02:00.0";
/// `VFIO_DEVICE_FEATURE` flags: TPH_ST (13), GET, SET, PROBE.
const TPH_ST: u32 = 13;
const GET: u32 = 1 << 16;
const SET: u32 = 1 << 17;
const PROBE: u32 = 1 << 18;
/// The CPU steered and asked about.
const CPU: u32 = 3;

fn hex(words: &[u32]) -> String {
    words
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn config_of(bdf: &str) -> Vec<u8> {
    let bdf: Bdf = bdf.parse().unwrap();
    let machine = tph_kernel::machines::default_machine();
    machine.function(bdf).unwrap().config.clone()
}

fn tph_offset() -> u16 {
    TphRequester::find(&config_of(DEV)).unwrap().unwrap().offset
}

/// A `feature` argument: head (argsz, flags), then the TPH_ST payload (flags, index/count
/// packed as one dword, data).
fn feature_arg(flags: u32, index: u16, cpus: &[u32]) -> String {
    let mut words = vec![0, flags, 0, u32::from(index) | (cpus.len() as u32) << 16];
    words.extend_from_slice(cpus);
    if cpus.is_empty() {
        words.truncate(2);
    }
    words[0] = 4 * words.len() as u32;
    hex(&words)
}

fn script() -> String {
    let tph = tph_offset();
    let ctrl = tph + 8;
    [
        "cfg-read 0 4".to_string(),
        format!("cfg-read {tph:#x} 4"),
        "enable ds".into(),
        format!("feature {}", feature_arg(TPH_ST | PROBE | SET, 0, &[])),
        format!("feature {}", feature_arg(TPH_ST | SET, 0, &[CPU])),
        "show".into(),
        format!("get-st {CPU}"),
        format!("feature {}", feature_arg(TPH_ST | GET, 0, &[CPU])),
        format!("cfg-write {ctrl:#x} 00000000"),
        "show".into(),
        format!("cfg-read {ctrl:#x} 4"),
        "feature 0800".into(),
    ]
    .join("\n")
        + "\n"
}

fn out_bytes(v: &Value) -> Vec<u8> {
    let s = v["out"].as_str().unwrap();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn session(args: &[&str]) -> Vec<Value> {
    let mut full = vec!["session", "--json"];
    full.extend_from_slice(args);
    let out = tphctl_stdin(&full, script().as_bytes());
    let lines = json_lines(&out);
    assert_eq!(
        out.status.code(),
        Some(expected_status(&lines)),
        "stderr: {}",
        stderr(&out)
    );
    lines
}

/// The session's exit status scheme: 2 when any command was refused, else 0.
fn expected_status(lines: &[Value]) -> i32 {
    if lines.iter().any(|v| v["ok"] == Value::Bool(false)) {
        2
    } else {
        0
    }
}

#[test]
fn session_feature_revision_raw_commands_agree_with_the_machine_and_each_other() {
    let r = session(&[
        "--emulated",
        "--kernel-abi",
        "feature",
        "--unsafe-ds-mode",
        DEV,
    ]);
    assert_eq!(r.len(), 12);
    // cfg-read: the function's own vendor/device dword, and the TPH capability header (ID 0x17).
    assert_eq!(out_bytes(&r[0]), config_of(DEV)[..4]);
    assert_eq!(out_bytes(&r[1])[..2], [0x17, 0x00]);
    assert_eq!(
        (r[2]["ok"].as_bool(), r[3]["ret"].as_i64()),
        (Some(true), Some(0))
    );
    // A raw SET of entry 0 programs the tag GET_ST reports for that CPU.
    assert_eq!(r[4]["ret"].as_i64(), Some(0), "{}", r[4]);
    let tag = r[6]["tags"][0]["st"].as_u64().unwrap();
    assert_eq!(r[5]["entries"][0]["st"].as_u64(), Some(tag));
    // A raw GET returns the same tag in place of the CPU id.
    let got = out_bytes(&r[7]);
    assert_eq!(
        u64::from(u32::from_le_bytes(got[16..20].try_into().unwrap())),
        tag
    );
    // Writing Control = 0 through the config region disables TPH.
    assert_eq!(r[8]["ret"].as_i64(), Some(4), "{}", r[8]);
    assert_eq!(r[9]["control"]["raw"].as_u64(), Some(0));
    assert_eq!(out_bytes(&r[10]), [0, 0, 0, 0]);
    // A buffer shorter than the feature head never reaches the kernel.
    assert_eq!(r[11]["errno"].as_str(), Some("EFAULT"));
}

#[test]
fn session_v7_host_refuses_the_feature_ioctl_with_enotty() {
    let r = session(&["--emulated", "--unsafe-ds-mode", DEV]);
    assert_eq!(r[3]["errno"].as_str(), Some("ENOTTY"), "{}", r[3]);
    assert_eq!(out_bytes(&r[0]), config_of(DEV)[..4]);
}

#[test]
fn session_kernel_abi_unknown_on_an_emulated_host_is_an_error() {
    let out = tphctl_stdin(
        &["session", "--emulated", "--kernel-abi", "unknown", DEV],
        b"",
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("v7 or feature"), "{}", stderr(&out));
}

#[test]
fn session_feature_raw_commands_through_vfio_under_emulate_match_the_emulated_session() {
    let tphctl = env!("CARGO_BIN_EXE_tphctl");
    // Eight emulated CPUs, as the in-process session's host has.
    let args = [
        "emulate",
        "--emulated",
        "--kernel-abi",
        "feature",
        "--unsafe-ds-mode",
        "--cpus",
        "8",
        "--",
        tphctl,
        "session",
        "--json",
        "--vfio",
        DEV,
    ];
    let out = tphctl_stdin(&args, script().as_bytes());
    if out.status.code() == Some(2) && stderr(&out).contains("emulate:") {
        tph_testkit::skip(format_args!("{}", stderr(&out)));
        return;
    }
    assert_eq!(
        out.status.code(),
        Some(expected_status(&json_lines(&out))),
        "stderr: {}",
        stderr(&out)
    );
    let emulated = session(&[
        "--emulated",
        "--kernel-abi",
        "feature",
        "--unsafe-ds-mode",
        DEV,
    ]);
    let through_vfio = json_lines(&out);
    assert_eq!(through_vfio.len(), emulated.len(), "{}", stdout(&out));
    assert_eq!(through_vfio, emulated);
}
