//! Hostile and unusual AML: bounded loops, recursion and nesting; operation regions with and
//! without a host handler; unsupported constructs skipped while the rest loads; and mutated
//! real tables that must never panic. Tables are assembled byte by byte here, so these tests
//! need no external tool.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tph_acpi::aml::table::{build, fix_checksum};
use tph_acpi::aml::{Aml, Limits, RegionHandler, Value};
use tph_acpi::FirmwareError;

/// PkgLength encoding of an object whose body (after the PkgLength) is `body` bytes long.
fn pkg(body: usize) -> Vec<u8> {
    if body + 1 < 0x40 {
        return vec![(body + 1) as u8];
    }
    if body + 2 < 0x1000 {
        let n = body + 2;
        return vec![0x40 | (n & 0xf) as u8, (n >> 4) as u8];
    }
    let n = body + 3;
    vec![0x80 | (n & 0xf) as u8, (n >> 4) as u8, (n >> 12) as u8]
}

/// `Method (NAME, args) { body }`.
fn method(name: &[u8; 4], args: u8, body: &[u8]) -> Vec<u8> {
    let inner = [name.as_slice(), &[args], body].concat();
    [vec![0x14], pkg(inner.len()), inner].concat()
}

fn dsdt(body: &[u8]) -> Vec<u8> {
    build(b"DSDT", 2, body)
}

fn load(body: &[u8]) -> Aml {
    Aml::load(&[&dsdt(body)]).expect("table header is valid")
}

#[test]
fn while_one_forever_stops_at_the_loop_limit() {
    // While (One) {}
    let mut aml = load(&method(b"SPIN", 0, &[0xa2, 0x02, 0x01]));
    let err = aml.evaluate("\\SPIN", &[]).unwrap_err();
    assert!(matches!(err, FirmwareError::Limit(_)), "{err}");
}

#[test]
fn unbounded_recursion_stops_at_the_depth_limit() {
    // Return (RECU ())
    let mut aml = load(&method(b"RECU", 0, b"\xa4RECU"));
    let err = aml.evaluate("\\RECU", &[]).unwrap_err();
    assert!(matches!(err, FirmwareError::Limit(_)), "{err}");
}

#[test]
fn deeply_nested_expression_is_refused_not_a_stack_overflow() {
    // Return (!!!!...!One) nested 100 000 deep.
    let body = [vec![0xa4], vec![0x92; 100_000], vec![0x01]].concat();
    let mut aml = load(&method(b"DEEP", 0, &body));
    let err = aml.evaluate("\\DEEP", &[]).unwrap_err();
    assert!(matches!(err, FirmwareError::Limit(_)), "{err}");
}

/// OperationRegion (GNVS, SystemMemory, 0x1000, 0x10)
/// Field (GNVS, ByteAcc, NoLock, Preserve) { FLD0, 8, FLD1, 4 }
fn region_table(extra: &[u8]) -> Vec<u8> {
    let region = b"\x5b\x80GNVS\x00\x0b\x00\x10\x0a\x10".to_vec();
    let list = b"GNVS\x01FLD0\x08FLD1\x04".to_vec();
    let field = [vec![0x5b, 0x81], pkg(list.len()), list].concat();
    [region, field, extra.to_vec()].concat()
}

#[test]
fn field_access_without_handler_names_the_region() {
    let mut aml = load(&region_table(&method(b"RD__", 0, b"\xa4FLD0")));
    let err = aml.evaluate("\\RD__", &[]).unwrap_err();
    assert_eq!(
        err,
        FirmwareError::NoRegionHandler {
            region: "\\GNVS".into(),
            space: 0
        }
    );
}

/// A memory of 16 bytes that records each access.
#[derive(Default)]
struct Recorder {
    mem: [u8; 16],
    log: Vec<String>,
}

impl RegionHandler for Recorder {
    fn read(&mut self, space: u8, addr: u64, width: u8) -> Result<u64, String> {
        self.log.push(format!("read {space} {addr:#x} {width}"));
        let i = addr.checked_sub(0x1000).ok_or("below region")? as usize;
        self.mem
            .get(i)
            .map(|b| u64::from(*b))
            .ok_or_else(|| "beyond region".into())
    }

    fn write(&mut self, space: u8, addr: u64, width: u8, value: u64) -> Result<(), String> {
        self.log
            .push(format!("write {space} {addr:#x} {width} {value:#x}"));
        let i = addr.checked_sub(0x1000).ok_or("below region")? as usize;
        *self.mem.get_mut(i).ok_or("beyond region")? = value as u8;
        Ok(())
    }
}

#[test]
fn field_access_goes_through_the_host_handler() {
    // Method (WR) { FLD1 = 0x0F  Return (FLD0) }: FLD1 is the low nibble of byte 1, so the
    // write is a read-modify-write of that byte (Preserve).
    let mut aml = load(&region_table(&method(
        b"WR__",
        0,
        b"\x70\x0a\x0fFLD1\xa4FLD0",
    )));
    let mut h = Recorder::default();
    h.mem[0] = 0x5a;
    h.mem[1] = 0xf0;
    let v = aml.evaluate_with("\\WR__", &[], Some(&mut h)).unwrap();
    assert_eq!(v, Value::Integer(0x5a));
    assert_eq!(h.mem[1], 0xff);
    assert_eq!(
        h.log,
        vec![
            "read 0 0x1001 1",
            "write 0 0x1001 1 0xff",
            "read 0 0x1000 1"
        ]
    );
}

#[test]
fn table_level_endless_loops_are_skipped_within_the_step_budget() {
    // While (One) { While (One) {} } at table level, then Name (NEXT, One).
    let body = b"\xa2\x05\x01\xa2\x02\x01\x08NEXT\x01";
    let aml = load(body);
    assert_eq!(aml.report().skipped.len(), 1, "{:?}", aml.report().skipped);
    assert!(aml.find("\\NEXT").is_some());
}

#[test]
fn unsupported_construct_is_skipped_and_the_rest_loads() {
    // Scope (\_SB) { Name (AAAA, One)  <bogus 0x5b 0xfe>  Name (LOST, One) }  Name (BBBB, 2)
    let inner = b"\\_SB_\x08AAAA\x01\x5b\xfe\x08LOST\x01".to_vec();
    let scope = [vec![0x10], pkg(inner.len()), inner].concat();
    let body = [scope, b"\x08BBBB\x0a\x02".to_vec()].concat();
    let mut aml = load(&body);
    let skipped = &aml.report().skipped;
    assert_eq!(skipped.len(), 1, "{skipped:?}");
    assert_eq!(skipped[0].scope, "\\_SB_");
    assert!(skipped[0].why.contains("0x5bfe"), "{}", skipped[0].why);
    assert_eq!(aml.evaluate("\\_SB.AAAA", &[]).unwrap(), Value::Integer(1));
    assert_eq!(aml.evaluate("\\BBBB", &[]).unwrap(), Value::Integer(2));
}

#[test]
fn loop_copying_a_large_buffer_stops_at_the_copy_budget() {
    // Local0 = Buffer (0x80000) {}  While (One) { Local1 = Local0 }
    let body = b"\x70\x11\x06\x0c\x00\x00\x08\x00\x60\xa2\x05\x01\x70\x60\x61";
    let mut aml = load(&method(b"COPY", 0, body));
    let err = aml.evaluate("\\COPY", &[]).unwrap_err();
    assert!(err.to_string().contains("copied"), "{err}");
}

#[test]
fn huge_buffer_request_is_refused() {
    // Return (Buffer (0xFFFFFFFF) {})
    let mut aml = load(&method(b"HUGE", 0, b"\xa4\x11\x06\x0c\xff\xff\xff\xff"));
    assert!(matches!(
        aml.evaluate("\\HUGE", &[]),
        Err(FirmwareError::Limit(_))
    ));
}

/// Deterministic xorshift, so failures reproduce.
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

#[test]
fn mutated_host_dsdt_never_panics() {
    let original = include_bytes!("data/host-dsdt.dat");
    let limits = Limits::new().with_max_steps(20_000);
    let mut seed = 0x7ab1_e5ee_d000_0001u64;
    for round in 0..400 {
        let mut t = original.to_vec();
        for _ in 0..1 + next(&mut seed) % 8 {
            let i = 36 + (next(&mut seed) as usize) % (t.len() - 36);
            t[i] = next(&mut seed) as u8;
        }
        if round % 5 == 0 {
            let keep = 36 + (next(&mut seed) as usize) % (t.len() - 36);
            t.truncate(keep);
            t[4..8].copy_from_slice(&(keep as u32).to_le_bytes());
        }
        fix_checksum(&mut t);
        let Ok(mut aml) = Aml::load_with(&[&t], limits) else {
            continue;
        };
        for m in aml.methods() {
            let args = [
                Value::Integer(round),
                Value::Integer(5),
                Value::Integer(0xf),
                Value::Package(vec![]),
            ];
            let _ = aml.evaluate_node(m, &args, None);
        }
    }
}

/// Inputs `cargo fuzz run load_eval` found crashing or hanging (fixed since): a reference cycle
/// that overflowed the stack, FindSetLeftBit underflowing with 32-bit integers, and nested
/// table-level While loops that swallowed their own limit errors while loading.
const FUZZ_FINDINGS: [&[u8]; 3] = [
    include_bytes!("data/fuzz-reference-cycle.bin"),
    include_bytes!("data/fuzz-findsetleftbit-narrow.bin"),
    include_bytes!("data/fuzz-load-nested-while.bin"),
];

#[test]
fn fuzz_findings_evaluate_without_panic() {
    for input in FUZZ_FINDINGS {
        // The fuzz target's framing: byte 0 picks the revision, the rest is the AML body.
        let table = build(b"DSDT", input[0] & 3, &input[1..]);
        let mut aml = Aml::load(&[&table]).unwrap();
        let args = [
            Value::Integer(1),
            Value::Buffer(vec![0; 16]),
            Value::Integer(0xf),
            Value::Package(vec![Value::Integer(0)]),
        ];
        for m in aml.methods() {
            let _ = aml.evaluate_node(m, &args, None);
        }
    }
}
