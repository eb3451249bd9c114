//! Function 0xF merged into a host bridge's existing `_DSM`, on the layout cloud-hypervisor
//! generates for its PCI segment 0 (`\_SB.PC00`), checked with ACPICA's `iasl` and `acpiexec`
//! and with `tph-acpi`.
//!
//! The fixture is written here from the facts of that layout (cloud-hypervisor's
//! `vmm/src/pci_segment.rs`): a Device with `_HID` PNP0A08, `_CID` PNP0A03, `_ADR`, `_SEG`,
//! `_UID`, `_CCA`, a bus-number range starting at 0 in `_CRS`, and a `_DSM` (NotSerialized) that
//! checks only the PCI firmware UUID, whatever the revision: function 0 returns
//! `Buffer { 0x21 }` (functions 0 and 5), function 5 returns `Zero`, anything else
//! `Buffer { 0x00 }`. The VMM's side of the merge is one rename: that method becomes
//! `ssdt::ORIGINAL_DSM`; the generated table adds the new `_DSM` next to it.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

#[path = "acpica/mod.rs"] // tph-acpi's ACPICA helpers (a link, packaged as a file)
mod common;

use std::path::PathBuf;
use std::process::Command;

use common::{acpiexec, acpiexec_args, compile, ours, require, same, scratch, write_tables};
use common::{Outcome, Printed};
use tph_acpi::aml::{Aml, Value};
use tph_acpi::dsm::{self, PCI_DSM_UUID};
use tph_acpi::{AmlSource, MemType, StInfo, SteeringTagSource, TagWidth};
use tph_vmm::ssdt::{self, SsdtSpec, ORIGINAL_DSM};
use tph_vmm::vtag::TagSpace;

/// The bridge's path.
const BRIDGE: &str = "\\_SB.PC00";

/// cloud-hypervisor's segment-0 host bridge, its own `_DSM` named `method` (`_DSM` as the VMM
/// ships it, or the merge's name).
fn pc00_dsdt(method: &str) -> String {
    bridge_dsdt(method, "Buffer (One) { 0x21 }")
}

/// The same bridge whose own function 0 answers `function_0` (ASL).
fn bridge_dsdt(method: &str, function_0: &str) -> String {
    format!(
        r#"DefinitionBlock ("", "DSDT", 6, "CLOUDH", "CHDSDT", 1)
{{
    Device (\_SB.PC00)
    {{
        Name (_HID, EisaId ("PNP0A08"))
        Name (_CID, EisaId ("PNP0A03"))
        Name (_ADR, Zero)
        Name (_SEG, Zero)
        Name (_UID, Zero)
        Name (_CCA, One)
        Name (SUPP, Zero)
        Method (_PXM, 0, NotSerialized) {{ Return (Zero) }}
        Method ({method}, 4, NotSerialized)
        {{
            If ((Arg0 == ToUUID ("{PCI_DSM_UUID}")))
            {{
                If ((Arg2 == Zero)) {{ Return ({function_0}) }}
                If ((Arg2 == 0x05)) {{ Return (Zero) }}
            }}
            Return (Buffer (One) {{ 0x00 }})
        }}
        Name (_CRS, ResourceTemplate ()
        {{
            WordBusNumber (ResourceProducer, MinFixed, MaxFixed, PosDecode,
                0x0000, 0x0000, 0x0000, 0x0000, 0x0001)
            IO (Decode16, 0x0CF8, 0x0CF8, 0x01, 0x08)
        }})
    }}
}}
"#
    )
}

/// The calls compared: (wrapper name, UUID, revision, function).
const CALLS: [(&str, &str, u64, u64); 8] = [
    ("\\F70", PCI_DSM_UUID, 7, 0),
    ("\\F75", PCI_DSM_UUID, 7, 5),
    ("\\F73", PCI_DSM_UUID, 7, 3),
    ("\\F20", PCI_DSM_UUID, 2, 0),
    ("\\F25", PCI_DSM_UUID, 2, 5),
    ("\\F2F", PCI_DSM_UUID, 2, 0xf),
    ("\\X70", "33DB4D5B-1FF7-401C-9657-7441C03DD766", 7, 0),
    ("\\X7F", "33DB4D5B-1FF7-401C-9657-7441C03DD766", 7, 0xf),
];

/// Methods acpiexec can call without arguments (one per row of [`CALLS`]) and `Q (uid)` for
/// function 0xF at revision 7.
fn wrappers() -> String {
    let mut methods = String::new();
    for (name, uuid, rev, function) in CALLS {
        let name = name.trim_start_matches('\\');
        methods += &format!(
            "    Method ({name}, 0, NotSerialized) {{ Return (\\_SB.PC00._DSM (ToUUID (\"{uuid}\"), {rev}, {function}, Package () {{}})) }}\n"
        );
    }
    format!(
        r#"DefinitionBlock ("", "SSDT", 2, "TPHVMM", "WRAPPERS", 1)
{{
    External (\_SB.PC00._DSM, MethodObj)
{methods}    Method (Q, 1, Serialized)
    {{
        Name (QPKG, Package () {{ Zero, Zero, Zero }})
        Store (Arg0, Index (QPKG, One))
        Return (\_SB.PC00._DSM (ToUUID ("{PCI_DSM_UUID}"), 7, 0x0F, QPKG))
    }}
}}
"#
    )
}

fn spec(vcpus: u32, extended: bool) -> SsdtSpec {
    SsdtSpec::new(BRIDGE, (0..vcpus).collect(), extended)
}

fn results(vcpus: u32, extended: bool) -> Vec<StInfo> {
    ssdt::virtual_results(&spec(vcpus, extended), &TagSpace::new(vcpus).unwrap()).unwrap()
}

struct Tables {
    original: Vec<u8>,
    renamed: Vec<u8>,
    merged: Vec<u8>,
    wrappers: Vec<u8>,
    /// acpiexec's files: the VMM's DSDT as shipped, and the merged set.
    original_files: Vec<PathBuf>,
    merged_files: Vec<PathBuf>,
}

fn tables(dir: &std::path::Path, vcpus: u32, extended: bool) -> Tables {
    let original = compile(dir, "original", &pc00_dsdt("_DSM"));
    let renamed = compile(dir, "renamed", &pc00_dsdt(ORIGINAL_DSM));
    let merged = ssdt::generate_merged(&spec(vcpus, extended), &results(vcpus, extended)).unwrap();
    let wrappers = compile(dir, "wrappers", &wrappers());
    let original_files = write_tables(dir, &[("dsdt_original", &original), ("w1", &wrappers)]);
    let merged_files = write_tables(
        dir,
        &[
            ("dsdt_renamed", &renamed),
            ("ssdt_merged", &merged),
            ("w2", &wrappers),
        ],
    );
    Tables {
        original,
        renamed,
        merged,
        wrappers,
        original_files,
        merged_files,
    }
}

fn names() -> Vec<&'static str> {
    CALLS.iter().map(|c| c.0).collect()
}

/// Every other function answers exactly as before; function 0 at revision 7 answers the
/// original bitmap with bits 0 and 15 added (`{ 0x21, 0x80 }`), in acpiexec and in tph-acpi.
#[test]
fn merged_dsm_keeps_every_other_answer_and_adds_function_0xf_to_function_0() {
    require("iasl");
    require("acpiexec");
    let dir = scratch();
    let t = tables(dir.path(), 4, false);
    let before = acpiexec(&t.original_files, &names());
    let after = acpiexec(&t.merged_files, &names());
    assert_eq!(
        before[0],
        Outcome::Value(Printed::Buffer(vec![0x21])),
        "the fixture answers as cloud-hypervisor's method: {before:?}"
    );
    assert_eq!(before[1], Outcome::Value(Printed::Integer(0)));
    for (i, (name, ..)) in CALLS.iter().enumerate() {
        let want = match i {
            0 => Outcome::Value(Printed::Buffer(vec![0x21, 0x80])),
            _ => before[i].clone(),
        };
        assert_eq!(after[i], want, "{name}: before {:?}", before[i]);
    }
    // tph-acpi agrees with acpiexec on both sets.
    for (tables, theirs) in [
        (vec![&t.original[..], &t.wrappers[..]], &before),
        (vec![&t.renamed[..], &t.merged[..], &t.wrappers[..]], &after),
    ] {
        let mut aml = Aml::load(&tables).unwrap();
        assert!(
            aml.report().skipped.is_empty(),
            "{:?}",
            aml.report().skipped
        );
        for (name, want) in names().iter().zip(theirs.iter()) {
            let got = ours(aml.evaluate(name, &[]));
            assert!(
                same(&got, want),
                "{name}: acpiexec {want:?}, tph-acpi {got:?}"
            );
        }
    }
}

/// Function 0xF answers every vCPU's UID with its virtual tags (8 zero bytes for a UID the VM
/// does not have), in acpiexec and in tph-acpi; the kernel's own check (function 0, bits 0 and
/// 15) passes, so the guest core finds this bridge.
#[test]
fn merged_dsm_answers_function_0xf_for_every_vcpu() {
    require("iasl");
    require("acpiexec");
    for (vcpus, extended) in [(4, false), (16, true)] {
        let dir = scratch();
        let t = tables(dir.path(), vcpus, extended);
        let uids: Vec<u32> = (0..vcpus).chain([vcpus, 4096]).collect();
        let calls: Vec<(String, Option<u64>)> = uids
            .iter()
            .map(|u| ("\\Q".to_string(), Some(u64::from(*u))))
            .collect();
        let theirs = acpiexec_args(&t.merged_files, &calls);
        let want = results(vcpus, extended);
        let mut aml = Aml::load(&[&t.renamed, &t.merged, &t.wrappers]).unwrap();
        for (uid, answer) in uids.iter().zip(&theirs) {
            let expected = want.get(*uid as usize).copied().unwrap_or(StInfo(0));
            assert_eq!(
                *answer,
                Outcome::Value(Printed::Buffer(expected.to_bytes().to_vec())),
                "{vcpus} vCPUs, uid {uid}"
            );
            let got = ours(aml.evaluate("\\Q", &[Value::Integer(u64::from(*uid))]));
            assert!(
                same(&got, answer),
                "uid {uid}: acpiexec {answer:?}, tph-acpi {got:?}"
            );
        }
        let source = AmlSource::from_tables(&[&t.renamed, &t.merged]).unwrap();
        assert_eq!(source.bridge().path, "\\_SB_.PC00");
        let width = if extended {
            TagWidth::Bits16
        } else {
            TagWidth::Bits8
        };
        let info = source.st_info(1).unwrap();
        assert_eq!(info.tag(MemType::Volatile, width), Some(2), "vCPU 1's tag");
    }
}

/// The VMM's DSDT as shipped (its `_DSM` not renamed) offers no function 0xF: the kernel's
/// check fails, so the guest core gets no tags from it (what the merge is for).
#[test]
fn unmerged_bridge_dsm_does_not_advertise_function_0xf() {
    require("iasl");
    let dir = scratch();
    let original = compile(dir.path(), "original", &pc00_dsdt("_DSM"));
    let mut aml = Aml::load(&[&original]).unwrap();
    let probe = dsm::probe(&mut aml);
    assert_eq!(probe.bridges.len(), 1);
    assert!(probe.tph_bridge.is_none());
}

/// `iasl -d` disassembles the merged SSDT (with the DSDT it refers to) and compiles the
/// disassembly back to a table that answers the same.
#[test]
fn merged_ssdt_disassembles_and_compiles_back_with_iasl() {
    require("iasl");
    let dir = scratch();
    let t = tables(dir.path(), 8, false);
    let ssdt = dir.path().join("merged.aml");
    let dsdt = dir.path().join("renamed.aml");
    std::fs::write(&ssdt, &t.merged).unwrap();
    std::fs::write(&dsdt, &t.renamed).unwrap();
    let d = Command::new("iasl")
        .arg("-e")
        .arg(&dsdt)
        .arg("-d")
        .arg(&ssdt)
        .output()
        .unwrap();
    let dsl = ssdt.with_extension("dsl");
    assert!(
        d.status.success() && dsl.exists(),
        "iasl -d failed:\n{}{}",
        String::from_utf8_lossy(&d.stdout),
        String::from_utf8_lossy(&d.stderr)
    );
    let text = std::fs::read_to_string(&dsl).unwrap();
    assert!(
        text.contains("External (_SB_.PC00.DSMO, MethodObj)"),
        "{text}"
    );
    assert!(text.contains("DSMO (Arg0, Arg1, Arg2, Arg3)"), "{text}");
    // iasl folds `Store (Or (a, b), target)` into `Or (a, b, target)`, so the sizes differ;
    // the answers must not.
    let back = compile(dir.path(), "back", &text);
    let files = write_tables(
        dir.path(),
        &[
            ("dsdt_back", &t.renamed),
            ("ssdt_back", &back),
            ("w3", &t.wrappers),
        ],
    );
    let calls: Vec<&str> = names();
    assert_eq!(acpiexec(&files, &calls), acpiexec(&t.merged_files, &calls));
}

/// The merge is the same terms whether the VMM splices them into its bridge's `Device` or
/// loads them as an SSDT.
#[test]
fn merged_dsm_terms_are_what_the_merged_ssdt_carries() {
    let terms = ssdt::merged_dsm(&spec(4, false), &results(4, false)).unwrap();
    let table = ssdt::generate_merged(&spec(4, false), &results(4, false)).unwrap();
    assert!(table.ends_with(&terms));
    assert!(ssdt::merged_dsm(&spec(4, false), &results(3, false)).is_none());
}

/// A bridge whose own function 0 answers an Integer bitmap (the kernel accepts both): the
/// merged answer is that Integer with bits 0 and 15 added.
#[test]
fn merged_dsm_adds_the_bits_to_an_integer_bitmap_too() {
    require("iasl");
    require("acpiexec");
    let dir = scratch();
    let renamed = compile(dir.path(), "renamed", &bridge_dsdt(ORIGINAL_DSM, "0x21"));
    let merged = ssdt::generate_merged(&spec(2, false), &results(2, false)).unwrap();
    let wrappers = compile(dir.path(), "wrappers", &wrappers());
    let files = write_tables(
        dir.path(),
        &[("dsdt", &renamed), ("ssdt", &merged), ("w", &wrappers)],
    );
    let theirs = acpiexec(&files, &["\\F70", "\\F20"]);
    assert_eq!(theirs[0], Outcome::Value(Printed::Integer(0x8021)));
    assert_eq!(
        theirs[1],
        Outcome::Value(Printed::Integer(0x21)),
        "revision 2: unchanged"
    );
    let mut aml = Aml::load(&[&renamed, &merged]).unwrap();
    let bridge = dsm::probe(&mut aml)
        .tph_bridge
        .expect("function 0xF advertised");
    assert!(dsm::supports_tph(&mut aml, &bridge).unwrap());
}
