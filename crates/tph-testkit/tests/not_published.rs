//! Test kits are never published: `tph-testkit` is `publish = false`, and no published crate
//! (every workspace member without `publish = false`) reaches it through its normal or build
//! dependencies, directly or through another crate. Dev-dependencies are fine: `cargo package`
//! drops a path-only dev-dependency.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::collections::{BTreeSet, HashMap};
use std::process::Command;

use serde_json::Value;

const TEST_KIT: &str = "tph-testkit";

/// `cargo metadata` of the workspace, with its resolved dependency graph.
fn metadata() -> Value {
    let out = Command::new(env!("CARGO"))
        .args([
            "metadata",
            "--format-version",
            "1",
            "--offline",
            "--manifest-path",
        ])
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "cargo metadata failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A package's `publish` field: `null` when it may go to any registry, `[]` for
/// `publish = false`.
fn published(package: &Value) -> bool {
    match &package["publish"] {
        Value::Null => true,
        Value::Array(registries) => !registries.is_empty(),
        other => panic!("unexpected publish field {other}"),
    }
}

/// The names of the packages `root` reaches through normal and build edges of the resolved
/// graph (dev edges are not followed), with the path to each.
fn shipped_closure(meta: &Value, root: &str) -> HashMap<String, String> {
    let names: HashMap<&str, &str> = meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    let nodes: HashMap<&str, &Value> = meta["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let mut reached = HashMap::new();
    let mut stack = vec![(root.to_owned(), names[root].to_owned())];
    let mut seen = BTreeSet::new();
    while let Some((id, path)) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        reached.insert(names[id.as_str()].to_owned(), path.clone());
        for dep in nodes[id.as_str()]["deps"].as_array().unwrap() {
            let shipped = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].as_str() != Some("dev"));
            if shipped {
                let pkg = dep["pkg"].as_str().unwrap();
                stack.push((pkg.to_owned(), format!("{path} -> {}", names[pkg])));
            }
        }
    }
    reached
}

/// The published workspace members and the test kit's own entry.
fn members(meta: &Value) -> Vec<&Value> {
    let ids: BTreeSet<&str> = meta["workspace_members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.as_str().unwrap())
        .collect();
    meta["packages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| ids.contains(p["id"].as_str().unwrap()))
        .collect()
}

#[test]
fn the_test_kit_is_not_published() {
    let meta = metadata();
    let kit = members(&meta)
        .into_iter()
        .find(|p| p["name"] == TEST_KIT)
        .unwrap();
    assert!(!published(kit), "{TEST_KIT} must keep `publish = false`");
}

#[test]
fn no_published_crate_ships_the_test_kit() {
    let meta = metadata();
    let published: Vec<&Value> = members(&meta)
        .into_iter()
        .filter(|p| published(p))
        .collect();
    // The list the workspace ships; a crate that stops being published or a new one shows here.
    let names: BTreeSet<&str> = published
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert!(
        names.contains("tphctl") && names.contains("tph-emulate"),
        "{names:?}"
    );
    for p in published {
        let name = p["name"].as_str().unwrap();
        // Direct dependencies, as the manifest declares them (also catches an optional or
        // target-specific one that this platform's resolve leaves out).
        for dep in p["dependencies"].as_array().unwrap() {
            assert!(
                !(dep["name"] == TEST_KIT && dep["kind"].as_str() != Some("dev")),
                "{name} depends on {TEST_KIT} outside its dev-dependencies: {dep}"
            );
        }
        // And through other crates, in the resolved graph.
        let reached = shipped_closure(&meta, p["id"].as_str().unwrap());
        if let Some(path) = reached.get(TEST_KIT) {
            panic!("the published {name} ships {TEST_KIT}: {path}");
        }
    }
}

/// Every published crate is kept as a published crate must be: a CHANGELOG with an
/// "Unreleased" section, a public-API snapshot, and a place in `.ci/package-check` (which tests
/// it as crates.io would serve it). A crate added to the workspace without them fails here.
#[test]
fn every_published_crate_has_a_changelog_a_snapshot_and_a_package_check() {
    let meta = metadata();
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
    let script = std::fs::read_to_string(format!("{root}/.ci/package-check")).unwrap();
    let checked: BTreeSet<&str> = script
        .lines()
        .find_map(|l| l.strip_prefix("crates=("))
        .and_then(|l| l.strip_suffix(')'))
        .expect("package-check lists its crates on one `crates=(...)` line")
        .split_whitespace()
        .collect();
    let mut missing = Vec::new();
    for p in members(&meta).into_iter().filter(|p| published(p)) {
        let name = p["name"].as_str().unwrap();
        let dir = std::path::Path::new(p["manifest_path"].as_str().unwrap())
            .parent()
            .unwrap()
            .to_owned();
        let changelog = std::fs::read_to_string(dir.join("CHANGELOG.md")).unwrap_or_default();
        if !changelog.lines().any(|l| l == "## Unreleased") {
            missing.push(format!(
                "{name}: CHANGELOG.md with a `## Unreleased` section"
            ));
        }
        let snapshot = format!("{}/tests/public-api/{name}.rs", env!("CARGO_MANIFEST_DIR"));
        if !std::path::Path::new(&snapshot).is_file() {
            missing.push(format!("{name}: public-API snapshot {snapshot}"));
        }
        if !checked.contains(name) {
            missing.push(format!("{name}: an entry in .ci/package-check"));
        }
    }
    assert!(
        missing.is_empty(),
        "published crates lack:\n{}",
        missing.join("\n")
    );
}
