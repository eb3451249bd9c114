//! Shared harness for the differential tests: compile ASL with the real `iasl`, evaluate with
//! the real `acpiexec` (ACPICA's reference interpreter), parse what it prints, and compare with
//! this crate's evaluator.
#![allow(dead_code)] // each test binary uses a subset

use std::path::{Path, PathBuf};
use std::process::Command;

use tph_acpi::aml::Value;

/// Fails the test with a clear message when an oracle tool is not installed.
pub fn require(tool: &str) {
    let ok = Command::new(tool).arg("-v").output().is_ok();
    assert!(ok, "`{tool}` is not installed: these tests need the real ACPICA tools (Debian/Ubuntu package `acpica-tools`)");
}

/// A scratch directory removed at drop.
pub fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("tph-acpi-diff")
        .tempdir()
        .expect("create a temporary directory")
}

/// Compiles `asl` (a whole DefinitionBlock) with iasl; returns the AML table bytes.
pub fn compile(dir: &Path, name: &str, asl: &str) -> Vec<u8> {
    let src = dir.join(format!("{name}.asl"));
    std::fs::write(&src, asl).expect("write ASL");
    let out = dir.join(name);
    let r = Command::new("iasl")
        .arg("-p")
        .arg(&out)
        .arg(&src)
        .output()
        .expect("run iasl");
    let aml = out.with_extension("aml");
    assert!(
        r.status.success() && aml.exists(),
        "iasl failed on {name}:\n{}\n{}",
        String::from_utf8_lossy(&r.stdout),
        String::from_utf8_lossy(&r.stderr)
    );
    std::fs::read(aml).expect("read AML")
}

/// Writes tables to files for acpiexec.
pub fn write_tables(dir: &Path, tables: &[(&str, &[u8])]) -> Vec<PathBuf> {
    tables
        .iter()
        .map(|(n, t)| {
            let p = dir.join(format!("{n}.aml"));
            std::fs::write(&p, t).expect("write AML");
            p
        })
        .collect()
}

/// What acpiexec reported for one evaluation.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    /// A value, in the shape acpiexec prints.
    Value(Printed),
    /// Evaluation failed (the ACPICA status, e.g. `AE_AML_DIVIDE_BY_ZERO`).
    Failed(String),
    /// No object returned.
    Nothing,
}

/// A value as acpiexec prints it (references reduced to their presence).
#[derive(Clone, Debug, PartialEq)]
pub enum Printed {
    Integer(u64),
    String(Vec<u8>),
    Buffer(Vec<u8>),
    Package(Vec<Printed>),
    Reference,
    Null,
}

/// Runs acpiexec in batch mode over `tables`, evaluating each of `methods` (no arguments).
pub fn acpiexec(tables: &[PathBuf], methods: &[&str]) -> Vec<Outcome> {
    acpiexec_args(
        tables,
        &methods
            .iter()
            .map(|m| (m.to_string(), None))
            .collect::<Vec<_>>(),
    )
}

/// Like [`acpiexec`], each method with an optional integer argument (acpiexec reads it as
/// decimal).
pub fn acpiexec_args(tables: &[PathBuf], calls: &[(String, Option<u64>)]) -> Vec<Outcome> {
    let methods = calls;
    let cmds: Vec<String> = calls
        .iter()
        .map(|(m, a)| match a {
            Some(v) => format!("evaluate {m} {v}"),
            None => format!("evaluate {m}"),
        })
        .collect();
    let batch = cmds.join(";");
    assert!(
        batch.len() < 1000,
        "acpiexec truncates -b command lines above ~1 KiB"
    );
    let out = Command::new("acpiexec")
        .arg("-b")
        .arg(&batch)
        .args(tables)
        .output()
        .expect("run acpiexec");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let outcomes = parse_output(&text);
    assert_eq!(
        outcomes.len(),
        methods.len(),
        "acpiexec output not understood:\n{text}"
    );
    outcomes
}

/// Parses every evaluation report in acpiexec's output.
pub fn parse_output(text: &str) -> Vec<Outcome> {
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let l = lines[i];
        i += 1;
        if l.starts_with("Evaluation of ") && l.contains(" failed with status ") {
            let status = l.rsplit(' ').next().unwrap_or("").to_string();
            out.push(Outcome::Failed(status));
        } else if l.starts_with("No object was returned") {
            out.push(Outcome::Nothing);
        } else if l.starts_with("Evaluation of ") && l.contains(" returned object ") {
            let (v, next) = parse_value(&lines, i);
            out.push(Outcome::Value(v));
            i = next;
        }
    }
    out
}

fn parse_value(lines: &[&str], i: usize) -> (Printed, usize) {
    let l = lines.get(i).map(|s| s.trim_start()).unwrap_or("");
    if let Some(rest) = l.strip_prefix("[Integer] = ") {
        return (
            Printed::Integer(u64::from_str_radix(rest.trim(), 16).expect("integer")),
            i + 1,
        );
    }
    if l.starts_with("[String]") {
        let q = l.find('"').expect("string quote");
        return (Printed::String(unescape(&l[q + 1..l.len() - 1])), i + 1);
    }
    if l.starts_with("[Buffer]") {
        return parse_buffer(lines, i, l);
    }
    if let Some(rest) = l.strip_prefix("[Package] Contains ") {
        let n: usize = rest
            .split(' ')
            .next()
            .and_then(|s| s.parse().ok())
            .expect("count");
        let mut items = Vec::new();
        let mut at = i + 1;
        for _ in 0..n {
            let (v, next) = parse_value(lines, at);
            items.push(v);
            at = next;
        }
        return (Printed::Package(items), at);
    }
    if l.starts_with("[Null Object]") {
        return (Printed::Null, i + 1);
    }
    if l.starts_with("[Object Reference]") {
        return (Printed::Reference, i + 1);
    }
    panic!("unrecognised acpiexec value line {l:?}");
}

fn parse_buffer(lines: &[&str], i: usize, l: &str) -> (Printed, usize) {
    let len_hex = l.split_whitespace().nth(2).expect("buffer length");
    let len = usize::from_str_radix(len_hex, 16).expect("buffer length");
    let mut bytes = Vec::new();
    let mut at = i;
    let mut first = l
        .split_once(" = ")
        .map(|(_, r)| r.to_string())
        .unwrap_or_default();
    while bytes.len() < len {
        let src = if at == i {
            std::mem::take(&mut first)
        } else {
            lines[at].to_string()
        };
        if let Some((_, hex)) = src.split_once(": ") {
            let hex = hex.split("//").next().unwrap_or("");
            bytes.extend(
                hex.split_whitespace()
                    .map(|h| u8::from_str_radix(h, 16).expect("hex byte")),
            );
        }
        at += 1;
    }
    (Printed::Buffer(bytes), at.max(i + 1))
}

fn unescape(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.bytes();
    while let Some(c) = chars.next() {
        if c == b'\\' {
            if let Some(n) = chars.next() {
                out.push(n);
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Our value in the shape acpiexec prints.
pub fn printed(v: &Value) -> Outcome {
    match v {
        Value::Uninitialized => Outcome::Nothing,
        other => Outcome::Value(shape(other)),
    }
}

fn shape(v: &Value) -> Printed {
    match v {
        Value::Integer(i) => Printed::Integer(*i),
        Value::String(s) => Printed::String(s.clone()),
        Value::Buffer(b) => Printed::Buffer(b.clone()),
        Value::Package(p) => Printed::Package(p.iter().map(shape).collect()),
        Value::Reference(_) => Printed::Reference,
        Value::Uninitialized => Printed::Null,
        other => panic!("no acpiexec shape known for {other:?}"),
    }
}

/// Our outcome for an evaluation result.
pub fn ours(r: Result<Value, tph_acpi::FirmwareError>) -> Outcome {
    match r {
        Ok(v) => printed(&v),
        Err(e) => Outcome::Failed(e.to_string()),
    }
}

/// Equal, treating any two failures as equal (status codes are ACPICA's, messages ours).
pub fn same(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Failed(_), Outcome::Failed(_)) => true,
        _ => a == b,
    }
}

/// A small deterministic generator (xorshift64*), so generated programs are reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// Picks one of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}
