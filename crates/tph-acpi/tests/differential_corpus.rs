//! Differential test: hand-written `_DSM` implementations in the styles real firmware uses
//! (`tests/asl/*.asl`), compiled with the real `iasl`, evaluated by the real `acpiexec` and by
//! this crate. Every result must be identical, and the Rust-side TPH query (UUID buffer and
//! Arg3 package built in Rust) must decode exactly what ACPICA computed.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::path::Path;

use common::{acpiexec, compile, ours, require, same, scratch, write_tables, Outcome, Printed};
use tph_acpi::aml::Aml;
use tph_acpi::{dsm, StInfo};

/// Processor UIDs asked of every corpus `_DSM`: 0..=15 plus two beyond any small table.
const UIDS: [u32; 18] = [
    0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 0x20, 0x100,
];
const UUID: &str = "E5C937D0-3553-4D7A-9117-EA4D19C3434D";

/// Wrapper methods appended to the DSDT: function 0 at revisions 7 and 6, a foreign UUID, and
/// function 0xF for each UID.
fn wrappers(bridge: &str) -> (String, Vec<String>) {
    let call = |uuid: &str, rev: u32, func: u32, arg3: &str| {
        format!("{bridge}._DSM (ToUUID (\"{uuid}\"), {rev}, {func}, Package () {{{arg3}}})")
    };
    let mut asl = String::new();
    let mut names = Vec::new();
    let fixed = [
        call(UUID, 7, 0, ""),
        call(UUID, 6, 0, ""),
        call("00000000-0000-0000-0000-000000000000", 7, 0, ""),
    ];
    for (i, c) in fixed.iter().enumerate() {
        asl += &format!("    Method (W00{i}, 0, NotSerialized) {{ Return ({c}) }}\n");
        names.push(format!("W00{i}"));
    }
    for (i, uid) in UIDS.iter().enumerate() {
        let c = call(UUID, 7, 15, &format!("0, {uid:#x}, 0"));
        asl += &format!("    Method (UQ{i:02}, 0, NotSerialized) {{ Return ({c}) }}\n");
        names.push(format!("UQ{i:02}"));
    }
    (asl, names)
}

fn with_wrappers(dsdt: &str, extra: &str) -> String {
    let close = dsdt.rfind('}').expect("DefinitionBlock closing brace");
    format!("{}{extra}}}\n", &dsdt[..close])
}

fn bridge_of(asl: &str) -> String {
    asl.lines()
        .find_map(|l| l.strip_prefix("// tph-bridge: "))
        .unwrap_or("\\_SB.PCI0")
        .trim()
        .to_string()
}

/// What the kernel would decode from ACPICA's function 0xF result.
fn expected_query(o: &Outcome) -> Option<StInfo> {
    match o {
        Outcome::Value(Printed::Buffer(b)) => StInfo::from_buffer(b),
        _ => None,
    }
}

fn bit15(o: &Outcome) -> bool {
    matches!(o, Outcome::Value(Printed::Buffer(b)) if b.get(1).is_some_and(|x| x & 0x80 != 0))
}

fn check_one(dir: &Path, path: &Path) -> Vec<String> {
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("x")
        .to_string();
    let text = std::fs::read_to_string(path).expect("read corpus file");
    let bridge = bridge_of(&text);
    let (extra, names) = wrappers(&bridge);
    // The wrappers go into the last table, so the `_DSM` they call is already declared.
    let ssdt = path.with_extension("ssdt.asl");
    let ssdt = ssdt
        .exists()
        .then(|| std::fs::read_to_string(&ssdt).expect("read SSDT"));
    let dsdt = if ssdt.is_some() {
        text.clone()
    } else {
        with_wrappers(&text, &extra)
    };
    let mut tables = vec![(
        format!("{name}-dsdt"),
        compile(dir, &format!("{name}-dsdt"), &dsdt),
    )];
    if let Some(s) = ssdt {
        let s = with_wrappers(&s, &extra);
        tables.push((
            format!("{name}-ssdt"),
            compile(dir, &format!("{name}-ssdt"), &s),
        ));
    }
    let refs: Vec<(&str, &[u8])> = tables
        .iter()
        .map(|(n, t)| (n.as_str(), t.as_slice()))
        .collect();
    let files = write_tables(dir, &refs);
    let method_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let theirs = acpiexec(&files, &method_refs);

    let bytes: Vec<&[u8]> = tables.iter().map(|(_, t)| t.as_slice()).collect();
    let mut aml = Aml::load(&bytes).expect("our loader accepts the tables");
    let mut failures = Vec::new();
    if !aml.report().skipped.is_empty() {
        failures.push(format!("{name}: loader skipped {:?}", aml.report().skipped));
    }
    for (m, want) in names.iter().zip(&theirs) {
        let got = ours(aml.evaluate(&format!("\\{m}"), &[]));
        if !same(&got, want) {
            failures.push(format!("{name}: {m}: acpiexec {want:?}, ours {got:?}"));
        }
    }
    failures.extend(check_query(&name, &bytes, &bridge, &theirs));
    failures
}

/// The Rust-side query against what acpiexec computed through the wrappers.
fn check_query(name: &str, tables: &[&[u8]], bridge: &str, theirs: &[Outcome]) -> Vec<String> {
    let mut aml = Aml::load(tables).expect("load");
    let probe = dsm::probe(&mut aml);
    let mut failures = Vec::new();
    let want_path = bridge.to_string();
    let found = probe.tph_bridge.clone();
    if bit15(&theirs[0]) != found.is_some() {
        failures.push(format!(
            "{name}: probe found {found:?}, acpiexec function 0 gave {:?}",
            theirs[0]
        ));
    }
    let Some(b) = found else { return failures };
    let canon = |p: &str| p.replace(['.', '_'], "");
    if canon(&b.path) != canon(&want_path) {
        failures.push(format!(
            "{name}: probe chose {}, expected {want_path}",
            b.path
        ));
    }
    for (uid, o) in UIDS.iter().zip(&theirs[3..]) {
        let got = dsm::query(&mut aml, &b, *uid).ok();
        if got != expected_query(o) {
            failures.push(format!(
                "{name}: query uid {uid}: ours {got:?}, acpiexec {o:?}"
            ));
        }
    }
    failures
}

#[test]
fn corpus_dsm_results_match_acpiexec() {
    require("iasl");
    require("acpiexec");
    let dir = scratch();
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/asl");
    let mut files: Vec<_> = std::fs::read_dir(&corpus)
        .expect("corpus dir")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.to_string_lossy().ends_with(".asl") && !p.to_string_lossy().ends_with(".ssdt.asl")
        })
        .collect();
    files.sort();
    assert!(files.len() >= 10, "corpus has {} programs", files.len());
    let failures: Vec<String> = std::thread::scope(|s| {
        let handles: Vec<_> = files
            .iter()
            .map(|f| s.spawn(|| check_one(dir.path(), f)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("corpus thread"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The example firmware bundled for `tphctl session --firmware` (tests/data/firmware) computes
/// the same tags under ACPICA as under this crate, so its golden session output is ACPICA's.
#[test]
fn example_firmware_matches_acpiexec() {
    require("iasl");
    require("acpiexec");
    let dir = scratch();
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/firmware/tph-dsm.asl");
    let failures = check_one(dir.path(), &path);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// `\_OSI` answers for the interface strings firmware asks about. acpiexec removes
/// "Windows 2006" from its list for its own testing, so that one string is not compared (this
/// crate answers true, as ACPICA's default list in a kernel does).
#[test]
fn osi_answers_match_acpiexec() {
    require("iasl");
    require("acpiexec");
    const ASKED: [&str; 12] = [
        "Windows 2001",
        "Windows 2009",
        "Windows 2015",
        "Windows 2019",
        "Windows 2020",
        "Linux",
        "Darwin",
        "Module Device",
        "3.0 Thermal Model",
        "Extended Address Space Descriptor",
        "Windows 2000 SP1",
        "",
    ];
    let dir = scratch();
    let methods: String = ASKED
        .iter()
        .enumerate()
        .map(|(i, s)| format!("    Method (OS{i:02}, 0) {{ Return (\\_OSI (\"{s}\")) }}\n"))
        .collect();
    let asl =
        format!("DefinitionBlock (\"\", \"DSDT\", 2, \"TPHT\", \"OSI\", 1)\n{{\n{methods}}}\n");
    let table = compile(dir.path(), "osi", &asl);
    let files = write_tables(dir.path(), &[("osi", &table)]);
    let names: Vec<String> = (0..ASKED.len()).map(|i| format!("OS{i:02}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let theirs = acpiexec(&files, &refs);
    let mut aml = Aml::load(&[&table]).unwrap();
    for ((m, s), want) in names.iter().zip(ASKED).zip(&theirs) {
        let got = ours(aml.evaluate(&format!("\\{m}"), &[]));
        assert!(
            same(&got, want),
            "_OSI({s:?}): acpiexec {want:?}, ours {got:?}"
        );
    }
}

/// Argument passing: ACPICA shares a buffer or package passed as an argument with the caller
/// (element stores and buffer fields in the callee change the caller's object), copies
/// integers, replaces the arg on a whole-arg store, and writes through a RefOf argument.
#[test]
fn argument_passing_matches_acpiexec() {
    require("iasl");
    require("acpiexec");
    let asl = r#"DefinitionBlock ("", "DSDT", 2, "TPHT", "ARGS", 1)
{
    Method (MODP, 1) { Arg0 [0] = 0x99  Return (0) }
    Method (MODB, 1) { Arg0 [0] = 0x77  Return (0) }
    Method (MODI, 1) { Arg0 = 0x55  Return (0) }
    Method (MODF, 2, Serialized) { CreateDWordField (Arg0, 4, PM) PM = Arg1 Return (0) }
    Method (MODR, 1) { Arg0 = Buffer () { 5 } Return (0) }
    Name (GPKG, Package (2) { 1, 2 })
    Name (RBUF, Buffer (8) {})
    Method (A1, 0) { Local4 = Package (2) { 1, 2 }  MODP (Local4)  Return (DerefOf (Local4 [0])) }
    Method (A2, 0) { Local5 = Buffer (2) { 1, 2 }  MODB (Local5)  Return (Local5) }
    Method (A3, 0) { Local1 = 3  MODI (Local1)  Return (Local1) }
    Method (A4, 0) { MODP (GPKG)  Return (DerefOf (GPKG [0])) }
    Method (A5, 0) { Local1 = 3  MODI (RefOf (Local1))  Return (Local1) }
    Method (A6, 0) { Local4 = Package (2) { 1, 2 }  Local3 = Local4  Local3 [0] = 7  Return (DerefOf (Local4 [0])) }
    Method (A7, 0) { MODF (RBUF, 0xCAFE)  Return (RBUF) }
    Method (A8, 0) { Local5 = Buffer (2) { 1, 2 }  MODR (Local5)  Return (Local5) }
}
"#;
    let dir = scratch();
    let table = compile(dir.path(), "args", asl);
    let files = write_tables(dir.path(), &[("args", &table)]);
    let names = ["A1", "A2", "A3", "A4", "A5", "A6", "A7", "A8"];
    let theirs = acpiexec(&files, &names);
    let mut aml = Aml::load(&[&table]).unwrap();
    for (m, want) in names.iter().zip(&theirs) {
        let got = ours(aml.evaluate(&format!("\\{m}"), &[]));
        assert!(same(&got, want), "{m}: acpiexec {want:?}, ours {got:?}");
    }
}
