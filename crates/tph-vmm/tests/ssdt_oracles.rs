//! The generated guest SSDT against the real ACPICA tools: `iasl -d` disassembles it and `iasl`
//! compiles the disassembly back; `acpiexec` (ACPICA's reference interpreter) and `tph-acpi`
//! evaluate its `_DSM` for every vCPU's UID and agree with each other and with the tag encoding,
//! for VMs of 1, 8, 64 and 255 vCPUs, loaded with a minimal revision-1 DSDT (32-bit integers,
//! as QEMU's q35 DSDT) compiled by `iasl` here.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

#[path = "acpica/mod.rs"] // tph-acpi's ACPICA helpers (a link, packaged as a file)
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{acpiexec, acpiexec_args, compile, ours, require, same, scratch, write_tables};
use common::{Outcome, Printed};
use tph_acpi::aml::{Aml, Value};
use tph_acpi::dsm::PCI_DSM_UUID as TPH_DSM_UUID;
use tph_acpi::{dsm, MemType, StInfo, TagWidth};
use tph_vmm::ssdt::{self, SsdtSpec};
use tph_vmm::vtag::TagSpace;

/// VM sizes the issue asks for.
const SIZES: [u32; 4] = [1, 8, 64, 255];
/// UID calls per acpiexec process (its `-b` line is cut near 1 KiB; one call is ~16 bytes).
const CALLS_PER_RUN: usize = 50;

/// The guest's DSDT: only the host bridge the SSDT's `External` names.
const DSDT: &str = r#"DefinitionBlock ("", "DSDT", 1, "TPHVMM", "GUESTDS", 1)
{
    Scope (\_SB)
    {
        Device (PCI0)
        {
            Name (_HID, EisaId ("PNP0A08"))
            Name (_CID, EisaId ("PNP0A03"))
            Name (_UID, Zero)
        }
    }
}
"#;

/// Wrappers acpiexec can call with one integer: function 0, and function 0xF for UID Arg0.
fn wrapper_asl() -> String {
    format!(
        r#"DefinitionBlock ("", "SSDT", 2, "TPHVMM", "WRAPPERS", 1)
{{
    External (\_SB.PCI0._DSM, MethodObj)
    Method (FZ, 0, NotSerialized)
    {{
        Return (\_SB.PCI0._DSM (ToUUID ("{TPH_DSM_UUID}"), 7, Zero, Package () {{}}))
    }}
    Method (FR6, 0, NotSerialized)
    {{
        Return (\_SB.PCI0._DSM (ToUUID ("{TPH_DSM_UUID}"), 6, Zero, Package () {{}}))
    }}
    Method (Q, 1, Serialized)
    {{
        Name (QPKG, Package () {{ Zero, Zero, Zero }})
        Store (Arg0, Index (QPKG, One))
        Return (\_SB.PCI0._DSM (ToUUID ("{TPH_DSM_UUID}"), 7, 0x0F, QPKG))
    }}
}}
"#
    )
}

struct Tables {
    dsdt: Vec<u8>,
    ssdt: Vec<u8>,
    wrappers: Vec<u8>,
    files: Vec<PathBuf>,
}

fn tables(dir: &Path, vcpus: u32, extended: bool) -> Tables {
    let dsdt = compile(dir, "dsdt", DSDT);
    let spec = SsdtSpec::identity(vcpus, extended);
    let ssdt = ssdt::generate(&spec, &TagSpace::new(vcpus).unwrap()).unwrap();
    let wrappers = compile(dir, "wrappers", &wrapper_asl());
    let files = write_tables(
        dir,
        &[("dsdt", &dsdt), ("ssdt", &ssdt), ("wrappers", &wrappers)],
    );
    Tables {
        dsdt,
        ssdt,
        wrappers,
        files,
    }
}

/// acpiexec's answers for `\Q uid` of every UID, in runs of [`CALLS_PER_RUN`].
fn acpiexec_queries(files: &[PathBuf], uids: &[u32]) -> Vec<Outcome> {
    // The runs are independent processes: run them side by side.
    std::thread::scope(|s| {
        let runs: Vec<_> = uids
            .chunks(CALLS_PER_RUN)
            .map(|chunk| {
                s.spawn(move || {
                    let calls: Vec<(String, Option<u64>)> = chunk
                        .iter()
                        .map(|u| ("\\Q".to_string(), Some(u64::from(*u))))
                        .collect();
                    acpiexec_args(files, &calls)
                })
            })
            .collect();
        runs.into_iter().flat_map(|r| r.join().unwrap()).collect()
    })
}

fn buffer_of(o: &Outcome) -> Option<StInfo> {
    match o {
        Outcome::Value(Printed::Buffer(b)) => StInfo::from_buffer(b),
        _ => None,
    }
}

#[test]
fn ssdt_disassembles_and_compiles_back_with_iasl() {
    require("iasl");
    for vcpus in SIZES {
        let dir = scratch();
        let spec = SsdtSpec::identity(vcpus, vcpus > 200);
        let aml = ssdt::generate(&spec, &TagSpace::new(vcpus).unwrap()).unwrap();
        let file = dir.path().join("vtags.aml");
        std::fs::write(&file, &aml).unwrap();
        let d = Command::new("iasl").arg("-d").arg(&file).output().unwrap();
        let dsl = file.with_extension("dsl");
        assert!(
            d.status.success() && dsl.exists(),
            "iasl -d failed for {vcpus} vCPUs:\n{}",
            String::from_utf8_lossy(&d.stdout)
        );
        let text = std::fs::read_to_string(&dsl).unwrap();
        assert!(text.contains("Method (_DSM, 4, Serialized)"), "{text}");
        assert!(
            text.contains("ToUUID (\"e5c937d0-3553-4d7a-9117-ea4d19c3434d\")")
                || text.contains("ToUUID (\"E5C937D0-3553-4D7A-9117-EA4D19C3434D\")"),
            "{text}"
        );
        let back = compile(dir.path(), "back", &text);
        // The recompiled table says the same things: same size of definitions.
        assert_eq!(back.len(), aml.len(), "{vcpus} vCPUs: recompiled length");
    }
}

#[test]
fn ssdt_dsm_matches_acpiexec_and_tph_acpi_for_every_vcpu() {
    require("iasl");
    require("acpiexec");
    // Every size with 8-bit tags; the extended variant (same loop, other buffers) for the
    // sizes whose acpiexec runs are short (its interpreter walks the table once per UID).
    let cases = SIZES
        .iter()
        .map(|n| (*n, false))
        .chain(SIZES.iter().filter(|n| **n <= 64).map(|n| (*n, true)));
    for (vcpus, extended) in cases {
        {
            let dir = scratch();
            let t = tables(dir.path(), vcpus, extended);
            // Every vCPU, plus UIDs the VM does not have.
            let uids: Vec<u32> = (0..vcpus).chain([vcpus, vcpus + 7, 4096]).collect();
            let theirs = acpiexec_queries(&t.files, &uids);
            let mut aml = Aml::load(&[&t.dsdt, &t.ssdt, &t.wrappers]).unwrap();
            assert!(
                aml.report().skipped.is_empty(),
                "{:?}",
                aml.report().skipped
            );
            let space = TagSpace::new(vcpus).unwrap();
            for (uid, want) in uids.iter().zip(&theirs) {
                let got = ours(aml.evaluate("\\Q", &[Value::Integer(u64::from(*uid))]));
                assert!(
                    same(&got, want),
                    "{vcpus} vCPUs uid {uid}: acpiexec {want:?}, tph-acpi {got:?}"
                );
                let expected = if *uid < vcpus {
                    space.st_info(*uid, extended)
                } else {
                    StInfo(0) // unknown UID: 8 zero bytes
                };
                assert_eq!(buffer_of(want), Some(expected), "uid {uid}");
            }
        }
    }
}

#[test]
fn ssdt_function_0_advertises_bits_0_and_15_and_other_revisions_nothing() {
    require("iasl");
    require("acpiexec");
    let dir = scratch();
    let t = tables(dir.path(), 8, false);
    let theirs = acpiexec(&t.files, &["\\FZ", "\\FR6"]);
    assert_eq!(theirs[0], Outcome::Value(Printed::Buffer(vec![0x01, 0x80])));
    assert_eq!(theirs[1], Outcome::Value(Printed::Buffer(vec![0x00])));
    let mut aml = Aml::load(&[&t.dsdt, &t.ssdt]).unwrap();
    let probe = dsm::probe(&mut aml);
    let bridge = probe.tph_bridge.expect("tph-acpi finds the generated _DSM");
    assert!(dsm::supports_tph(&mut aml, &bridge).unwrap());
}

#[test]
fn ssdt_tags_fit_8_bits_when_the_guest_path_is_tph_only() {
    require("iasl");
    for vcpus in SIZES {
        let dir = scratch();
        let t = tables(dir.path(), vcpus, false);
        let mut aml = Aml::load(&[&t.dsdt, &t.ssdt]).unwrap();
        let bridge = dsm::probe(&mut aml).tph_bridge.unwrap();
        for uid in 0..vcpus {
            let info = dsm::query(&mut aml, &bridge, uid).unwrap();
            // TPH only: the 8-bit VM tag is valid and is uid + 1; no 16-bit tag is offered.
            assert_eq!(
                info.tag(MemType::Volatile, TagWidth::Bits8),
                Some((uid + 1) as u16)
            );
            assert!(!info.xst_valid(MemType::Volatile) && !info.xst_valid(MemType::Persistent));
            // PM tags exist only while 2N + 1 <= 256.
            assert_eq!(
                info.st_valid(MemType::Persistent),
                2 * vcpus < 256,
                "uid {uid}"
            );
        }
    }
}

#[test]
fn bridge_dsdt_terms_equal_what_iasl_compiles() {
    require("iasl");
    let dir = scratch();
    let asl = r#"DefinitionBlock ("", "DSDT", 1, "TPHVMM", "GUESTDS", 1)
{
    Scope (\_SB) { Device (PCI0) { Name (_HID, EisaId ("PNP0A08")) } }
}
"#;
    let theirs = compile(dir.path(), "bridge", asl);
    let ours = ssdt::bridge_dsdt();
    // The header's creator fields differ (iasl writes its own); the definitions must not.
    assert_eq!(ours[ssdt_header()..], theirs[ssdt_header()..]);
    let mut aml = Aml::load(&[&ours]).unwrap();
    assert_eq!(dsm::host_bridges(&mut aml).len(), 1);
}

/// Bytes of an ACPI table header (ACPI 6.5 table 5.4).
fn ssdt_header() -> usize {
    36
}
