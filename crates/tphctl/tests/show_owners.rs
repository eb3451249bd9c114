//! `tphctl show` naming the CPUs each ST table entry's tag belongs to: the real Intel DSA dump
//! (entries 0x0000 and 0x000a, requester type 1, so 8-bit tags) against a firmware table file
//! and against ACPI tables compiled with the real `iasl` (UIDs from the real host MADT), and the
//! emulated default machine with its default firmware. Text goldens in
//! `tests/golden/show_owners_*` (regenerate with `UPDATE_GOLDEN=1`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{acpi_data, golden, stderr, stdout, tphctl};
use serde_json::{json, Value};

/// The DSA dump: RCiEP 6a:01.0, ST table [0] = 0x0000, [1] = 0x000a, 8-bit tags.
fn dsa_dump() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tph-regs/tests/data/intel-dsa-pri-pasid.lspci")
}

/// A firmware table (`UID 0xST_INFO`). Per half: bit 0 8-bit tag valid, bit 1 16-bit tag
/// valid, bits 15:8 the 8-bit tag, 31:16 the 16-bit tag; VM half low, PM half high.
const FIRMWARE: &str = "\
# uid  st_info
0 0x00000b01100a0a03  # VM 8-bit 0x0a (16-bit 0x100a), PM 8-bit 0x0b
1 0x00000a0100000a01  # VM 8-bit 0x0a, PM 8-bit 0x0a: one UID owns the tag twice
2 0x00000000000a0a02  # VM 8-bit 0x0a but only the 16-bit tag valid: owns no 8-bit tag
3 0x0000000000000001  # VM 8-bit 0x00 valid: owns tag 0
";

/// ACPI firmware: host bridge `_DSM` (revision 7, function 0xF) answering from a table
/// indexed by UID: UID 0 VM 8-bit 0x0a; UID 1 VM 8-bit 0x00 and PM 8-bit 0x0a.
const ASL: &str = r#"DefinitionBlock ("", "DSDT", 2, "TPHT", "OWNERS", 1)
{
    Scope (\_SB)
    {
        Name (TAGS, Package () { 0x00000B01100A0A03, 0x00000A0100000001 })
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Method (_DSM, 4, Serialized)
            {
                If (Arg0 == ToUUID ("E5C937D0-3553-4D7A-9117-EA4D19C3434D"))
                {
                    If (Arg2 == Zero) { Return (Buffer () { 0x01, 0x80 }) }
                    If (Arg2 == 0x0F)
                    {
                        Local0 = DerefOf (Arg3 [One])
                        If (Local0 < SizeOf (TAGS)) { Return (ToBuffer (DerefOf (TAGS [Local0]))) }
                        Return (Buffer (8) { 0 })
                    }
                }
                Return (Buffer (One) { 0x00 })
            }
        }
    }
}
"#;

/// A work folder holding `fw.txt` (the firmware table above).
fn workdir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("fw.txt"), FIRMWARE).expect("write fw.txt");
    dir
}

fn dsa_args<'a>(dump: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["show", "--dump", dump.to_str().expect("utf-8 path")];
    args.extend_from_slice(extra);
    args
}

fn parse(o: &Output) -> Value {
    assert!(o.status.success(), "{o:?}");
    serde_json::from_slice(&o.stdout).expect("valid JSON")
}

#[test]
fn show_owners_dsa_firmware_file_text_matches_golden_and_failed_lookup_exits_2() {
    let (dir, dump) = (workdir(), dsa_dump());
    let out = tphctl(
        dir.path(),
        &dsa_args(&dump, &["--firmware", "fw.txt", "--uids", "0-4"]),
    );
    // UID 4 is not in the table: named once on stderr, the rest still annotated, and the
    // failed lookup is in the exit status.
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    golden("show_owners_dsa_firmware.txt", &stdout(&out));
    assert_eq!(
        stderr(&out),
        "tphctl: firmware lookup failed: uid 4: no result from firmware\n"
    );
    let all_known = tphctl(
        dir.path(),
        &dsa_args(&dump, &["--firmware", "fw.txt", "--uids", "0-3"]),
    );
    assert_eq!(all_known.status.code(), Some(0), "{}", stderr(&all_known));
}

#[test]
fn show_owners_dsa_json_lists_every_sharer_and_only_valid_tags() {
    let (dir, dump) = (workdir(), dsa_dump());
    let v = parse(&tphctl(
        dir.path(),
        &dsa_args(&dump, &["--firmware", "fw.txt", "--cpus", "4", "--json"]),
    ));
    let tph = &v[0]["tph"];
    assert_eq!(tph["owners_width"], 8);
    assert_eq!(tph["owners_uids"], "0-3");
    assert_eq!(tph["owners_source"], "firmware table fw.txt");
    let e0 = &tph["entries"][0];
    assert_eq!(
        (e0["st"].clone(), e0["owner_state"].clone()),
        (json!(0), json!("owned_or_cleared"))
    );
    assert_eq!(e0["owners"], json!([{"uid": 3, "mem": "vm"}]));
    // UID 2's 8-bit VM tag is 0x0a too, but its valid bit is clear: not an owner.
    let e1 = &tph["entries"][1];
    assert_eq!(
        (e1["st"].clone(), e1["owner_state"].clone()),
        (json!(10), json!("owned"))
    );
    assert_eq!(
        e1["owners"],
        json!([{"uid": 0, "mem": "vm"}, {"uid": 1, "mem": "vm"}, {"uid": 1, "mem": "pm"}])
    );
}

#[test]
fn show_owners_dsa_no_matching_uid_says_no_cpu() {
    let (dir, dump) = (workdir(), dsa_dump());
    // UID 2 owns no 8-bit tag, so neither entry has an owner.
    let out = tphctl(
        dir.path(),
        &dsa_args(&dump, &["--firmware", "fw.txt", "--uids", "2"]),
    );
    let text = stdout(&out);
    assert!(
        text.contains("\t\t[0] 0x0000  no CPU (cleared/unknown)\n"),
        "{text}"
    );
    assert!(text.contains("\t\t[1] 0x000a  no CPU\n"), "{text}");
    let v = parse(&tphctl(
        dir.path(),
        &dsa_args(&dump, &["--firmware", "fw.txt", "--uids", "2", "--json"]),
    ));
    assert_eq!(v[0]["tph"]["entries"][0]["owner_state"], "cleared_unknown");
    assert_eq!(v[0]["tph"]["entries"][1]["owner_state"], "no_cpu");
    assert_eq!(v[0]["tph"]["entries"][1]["owners"], json!([]));
}

/// A `--tables` folder: the ASL above compiled by the real `iasl`, and the real host MADT
/// (processor UIDs 0 and 1).
fn tables_dir(work: &Path) -> PathBuf {
    let dir = work.join("tables");
    std::fs::create_dir_all(&dir).expect("mkdir tables");
    std::fs::copy(acpi_data("data/host-apic.dat"), dir.join("APIC.dat")).expect("copy MADT");
    std::fs::write(work.join("owners.asl"), ASL).expect("write ASL");
    common::iasl(&work.join("owners.asl"), &dir.join("DSDT"));
    dir
}

#[test]
fn show_owners_dsa_acpi_tables_uids_from_madt_match_golden() {
    let (dir, dump) = (workdir(), dsa_dump());
    tables_dir(dir.path());
    let out = tphctl(dir.path(), &dsa_args(&dump, &["--tables", "tables"]));
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
    golden("show_owners_dsa_tables.txt", &stdout(&out));
    let v = parse(&tphctl(
        dir.path(),
        &dsa_args(&dump, &["--tables", "tables", "--json"]),
    ));
    let tph = &v[0]["tph"];
    assert_eq!(tph["owners_uids"], "0-1");
    assert_eq!(
        tph["entries"][0]["owners"],
        json!([{"uid": 1, "mem": "vm"}])
    );
    assert_eq!(
        tph["entries"][1]["owners"],
        json!([{"uid": 0, "mem": "vm"}, {"uid": 1, "mem": "pm"}])
    );
}

#[test]
fn show_owners_tables_without_madt_ask_default_uids_with_a_warning() {
    let (dir, dump) = (workdir(), dsa_dump());
    let tables = tables_dir(dir.path());
    std::fs::remove_file(tables.join("APIC.dat")).expect("drop the MADT");
    let out = tphctl(
        dir.path(),
        &dsa_args(&dump, &["--tables", "tables", "--json"]),
    );
    assert_eq!(
        stderr(&out),
        "tphctl: warning: no MADT (APIC*) in tables: asking UIDs 0-7\n"
    );
    let v = parse(&out);
    assert_eq!(v[0]["tph"]["owners_uids"], "0-7");
    // UIDs 2-7 get an all-invalid answer from the _DSM: the owners are unchanged.
    assert_eq!(
        v[0]["tph"]["entries"][1]["owners"],
        json!([{"uid": 0, "mem": "vm"}, {"uid": 1, "mem": "pm"}])
    );
}

fn function<'a>(v: &'a Value, bdf: &str) -> &'a Value {
    v.as_array()
        .and_then(|a| a.iter().find(|f| f["bdf"] == bdf))
        .unwrap_or_else(|| panic!("{bdf} in {v}"))
}

#[test]
fn show_owners_emulated_default_firmware_matches_golden() {
    let dir = workdir();
    let out = tphctl(dir.path(), &["show", "--emulated"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    golden("show_owners_emulated.txt", &stdout(&out));
    let v = parse(&tphctl(dir.path(), &["show", "--emulated", "--json"]));
    // Default firmware: UID u has VM 8-bit tag u and 16-bit tag 0x100 + u, so a cleared
    // entry (0) is UID 0's 8-bit VM tag but nobody's 16-bit tag.
    let nic8 = &function(&v, "0000:02:00.0")["tph"];
    assert_eq!(nic8["owners_width"], 8);
    assert_eq!(
        nic8["entries"][0]["owners"],
        json!([{"uid": 0, "mem": "vm"}])
    );
    assert_eq!(nic8["entries"][0]["owner_state"], "owned_or_cleared");
    let rciep = &function(&v, "0000:00:05.0")["tph"];
    assert_eq!(rciep["owners_width"], 16);
    assert_eq!(rciep["entries"][0]["owner_state"], "cleared_unknown");
    // 04:00.0 sits below a root port without a TPH completer: enable fails, no width.
    let refused = &function(&v, "0000:04:00.0")["tph"];
    assert_eq!(refused["owners_width"], Value::Null);
    assert!(refused["owners_note"]
        .as_str()
        .is_some_and(|n| n.contains("enable would fail")));
    assert_eq!(refused["entries"][0]["owner_state"], Value::Null);
}

#[test]
fn show_without_firmware_has_no_owner_fields() {
    let (dir, dump) = (workdir(), dsa_dump());
    let v = parse(&tphctl(dir.path(), &dsa_args(&dump, &["--json"])));
    assert!(v[0]["tph"].get("owners_width").is_none());
    assert!(v[0]["tph"]["entries"][1].get("owners").is_none());
    assert!(!stdout(&tphctl(dir.path(), &dsa_args(&dump, &[]))).contains("tag owners"));
}

#[test]
fn show_owners_argument_errors_exit_2_printed_once() {
    let (dir, dump) = (workdir(), dsa_dump());
    std::fs::write(dir.path().join("bad.txt"), "0 0x1\nzero 0x2\n").expect("write");
    let cases: [(&[&str], &str); 4] = [
        (
            &["--uids", "0-3"],
            "tphctl: --uids/--cpus: need --firmware, --tables or --emulated",
        ),
        (
            &["--firmware", "fw.txt", "--uids", "9-2"],
            "tphctl: --uids: range 9-2 runs backwards",
        ),
        (
            &["--firmware", "fw.txt", "--cpus", "0"],
            "tphctl: --cpus: must be at least 1",
        ),
        (
            &["--firmware", "bad.txt"],
            "tphctl: reading firmware table bad.txt: line 2: ",
        ),
    ];
    for (extra, want) in cases {
        let out = tphctl(dir.path(), &dsa_args(&dump, extra));
        assert_eq!(out.status.code(), Some(2), "{extra:?}");
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{extra:?}: {err}");
        assert!(err.starts_with(want), "{extra:?}: {err}");
    }
    let lspci = tphctl(
        dir.path(),
        &dsa_args(&dump, &["--lspci", "--firmware", "fw.txt"]),
    );
    assert_eq!(
        lspci.status.code(),
        Some(2),
        "clap refuses --lspci with --firmware"
    );
}

#[test]
fn show_owners_firmware_asl_or_aml_agrees_with_the_tables_folder() {
    let (dir, dump) = (workdir(), dsa_dump());
    tables_dir(dir.path());
    let owners = |extra: &[&str]| {
        let mut args = extra.to_vec();
        args.extend(["--uids", "0-1", "--json"]);
        let v = parse(&tphctl(dir.path(), &dsa_args(&dump, &args)));
        (
            v[0]["tph"]["entries"].clone(),
            v[0]["tph"]["owners_source"].clone(),
        )
    };
    let (want, _) = owners(&["--tables", "tables"]);
    let cases = [
        ("owners.asl", "ASL file owners.asl (\\_SB_.PCI0 _DSM)"),
        (
            "tables/DSDT.aml",
            "AML table tables/DSDT.aml (\\_SB_.PCI0 _DSM)",
        ),
        ("tables", "ACPI tables tables (\\_SB_.PCI0 _DSM)"),
    ];
    for (path, label) in cases {
        let (entries, source) = owners(&["--firmware", path]);
        assert_eq!(entries, want, "{path}");
        assert_eq!(source, label);
    }
}
