//! Every JSON document described in `crates/tphctl/README-json.md` is checked against the real
//! output: each field the tables name appears in the output of its subcommand, and the output
//! holds no field the tables do not name.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// Documented fields the tests cannot produce, and why.
const NOT_PRODUCIBLE: &[(&str, &str)] = &[(
    "st-map cpu",
    "logical CPU numbers come from this host's /sys tables only, not from --tables",
)];

/// Field paths per document (`show`, `list`, `session`, `st-map`, `vm`) from the doc's tables:
/// the backticked names in each row's first cell.
fn documented() -> Vec<(String, BTreeSet<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README-json.md");
    let text = std::fs::read_to_string(path).expect("README-json.md");
    let mut docs: Vec<(String, BTreeSet<String>)> = Vec::new();
    let (mut section, mut targets): (Vec<&str>, Vec<&str>) = (Vec::new(), Vec::new());
    for line in text.lines() {
        if let Some(h) = line.strip_prefix("## ") {
            section = ["show", "list", "session", "st-map", "vm"]
                .into_iter()
                .filter(|c| h.contains(&format!("tphctl {c} ")))
                .collect();
            targets = section.clone();
        } else if line.starts_with("### Unknown verdicts") {
            targets = vec!["list", "show"];
        } else if line.starts_with("### ") {
            targets = section.clone();
        }
        let Some(first) = line.strip_prefix("| ").and_then(|l| l.split(" |").next()) else {
            continue;
        };
        for name in first.split('`').skip(1).step_by(2) {
            for t in &targets {
                match docs.iter_mut().find(|(d, _)| d == t) {
                    Some((_, set)) => {
                        set.insert(name.to_owned());
                    }
                    None => docs.push((t.to_string(), BTreeSet::from([name.to_owned()]))),
                }
            }
        }
    }
    docs
}

/// Every path in `v`: `a`, `a.b`, `a[]`, `a[].c`.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                out.insert(p.clone());
                paths(child, &p, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                paths(item, &format!("{prefix}[]"), out);
            }
        }
        _ => {}
    }
}

/// The paths of every element of top-level arrays (or of each JSON line).
fn output_paths(docs: &[Value]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for d in docs {
        match d {
            Value::Array(items) => items.iter().for_each(|i| paths(i, "", &mut out)),
            other => paths(other, "", &mut out),
        }
    }
    out
}

fn json(o: &std::process::Output) -> Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| panic!("{e}: {o:?}"))
}

fn data(name: &str) -> PathBuf {
    common::tests_dir(&format!("data/{name}"))
}

fn outputs(dir: &Path) -> Vec<(&'static str, Vec<Value>)> {
    let dsa = data("intel-dsa-pri-pasid.lspci");
    let dsa = dsa.to_str().expect("utf-8");
    let short = common::cut_to_256(&data("intel-dsa-pri-pasid.lspci"), dir);
    let short = short.to_str().expect("utf-8");
    let run = |args: &[&str]| json(&common::tphctl(dir, args));
    let session = common::tphctl_stdin(
        &[
            "session",
            "--emulated",
            "03:00.0",
            "--unsafe-ds-mode",
            "--json",
        ],
        b"cap\nenable ds\nget-st 1\nshow\nirqs 2\ntrace\nraw 10\nfrob\n",
    );
    // UID 0's firmware answer has no valid bit: set-st for CPU 0 writes tag 0, with a warning.
    std::fs::write(dir.join("fw0.txt"), "0 0x0\n").expect("write firmware");
    let warned = common::tphctl_stdin(
        &["session", "--emulated", "02:00.0", "--json", "--firmware"]
            .into_iter()
            .chain([dir.join("fw0.txt").to_str().expect("utf-8")])
            .collect::<Vec<_>>(),
        b"enable iv\nset-st 0=0\nshow\n",
    );
    let vm = common::tphctl_stdin(
        &["vm", "--emulated", "02:00.0", "--pin", "0:1,1:2", "--json"],
        b"guest\nenable iv\ndsm 1\nwrite 0 1\nhost\nreset\nbogus\n",
    );
    let tables = tempfile::tempdir().expect("temp dir");
    common::iasl(
        &common::acpi_data("asl/helper_methods.asl"),
        &tables.path().join("DSDT"),
    );
    let failing = tempfile::tempdir().expect("temp dir");
    common::iasl(
        &common::acpi_data("asl/string_ids_multi_bridge.asl"),
        &failing.path().join("DSDT"),
    );
    let st_map = |t: &Path, uids: &str| {
        let t = t.to_str().expect("utf-8");
        run(&["st-map", "--tables", t, "--uids", uids, "--json"])
    };
    vec![
        (
            "show",
            vec![
                run(&["show", "--dump", dsa, "--json"]),
                run(&["show", "--emulated", "--json"]),
                run(&["show", "--dump", short, "--json"]),
            ],
        ),
        (
            "list",
            vec![
                run(&["list", "--emulated", "--json"]),
                run(&["list", "--dump", short, "--json"]),
            ],
        ),
        (
            "session",
            [common::json_lines(&session), common::json_lines(&warned)].concat(),
        ),
        (
            "st-map",
            vec![st_map(tables.path(), "0-1"), st_map(failing.path(), "4-6")],
        ),
        ("vm", common::json_lines(&vm)),
    ]
}

#[test]
fn every_documented_json_field_is_in_real_output_and_every_output_field_is_documented() {
    let dir = tempfile::tempdir().expect("temp dir");
    let docs = documented();
    let produced = outputs(dir.path());
    assert_eq!(
        docs.len(),
        5,
        "sections for show, list, session, st-map, vm"
    );
    for (cmd, printed) in produced {
        let fields = &docs_of(&docs, cmd);
        let actual = output_paths(&printed);
        for f in fields {
            let exempt = NOT_PRODUCIBLE
                .iter()
                .any(|(k, _)| *k == format!("{cmd} {f}"));
            assert!(
                exempt || actual.contains(f),
                "{cmd}: documented field {f} not in the output"
            );
        }
        for a in &actual {
            let containers = fields.iter().any(|f| f.starts_with(&format!("{a}.")));
            assert!(
                fields.contains(a) || containers,
                "{cmd}: output field {a} is not documented"
            );
        }
    }
}

fn docs_of(docs: &[(String, BTreeSet<String>)], cmd: &str) -> BTreeSet<String> {
    docs.iter()
        .find(|(d, _)| d == cmd)
        .map(|(_, s)| s.clone())
        .unwrap_or_else(|| panic!("no section for {cmd}"))
}
