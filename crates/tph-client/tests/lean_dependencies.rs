//! A driver that depends on `tph-client` gets the driver API and nothing of the model: no kernel
//! model, no AML interpreter, no serde, no KVM crates, and nothing of what `tphctl` reports (the
//! `tph-report` crate: JSON schema, lspci renderer) in its normal dependency tree (the rust-vmm
//! backend is an opt-in feature).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

fn tree(features: &[&str]) -> Option<String> {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args([
        "tree",
        "-e",
        "normal",
        "-p",
        "tph-client",
        "--prefix",
        "none",
        "--offline",
    ]);
    cmd.args([
        "--manifest-path",
        concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
    ]);
    for f in features {
        cmd.args(["--features", f]);
    }
    let out = cmd.output().ok()?;
    if !out.status.success() {
        tph_testkit::skip(format_args!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
        return None;
    }
    Some(String::from_utf8(out.stdout).unwrap())
}

fn crate_names(tree: &str) -> Vec<&str> {
    tree.lines()
        .filter_map(|l| l.split_whitespace().next())
        .collect()
}

#[test]
fn lean_client_default_tree_has_no_model_aml_serde_or_kvm() {
    let Some(t) = tree(&[]) else { return };
    let names = crate_names(&t);
    assert!(names.contains(&"tph-abi"), "{t}");
    for banned in [
        "tph-kernel",
        "tph-acpi",
        "tph-emu",
        "tph-emulate",
        "tph-testkit",
        "tph-report",
        "serde",
        "vfio-ioctls",
    ] {
        assert!(
            !names.contains(&banned),
            "{banned} in the default tree:\n{t}"
        );
    }
    assert!(!names.iter().any(|n| n.starts_with("kvm-")), "{t}");
}

/// The whole default tree, pinned: the ABI (with rust-vmm's `vfio-bindings` for the generic
/// VFIO constants, without its `vmm-sys-util` wrappers), the register model, `libc`, and
/// `thiserror` with its macro crates. A new dependency shows up here first.
#[test]
fn lean_client_default_tree_is_exactly_this() {
    let Some(t) = tree(&[]) else { return };
    let mut names = crate_names(&t);
    names.sort_unstable();
    names.dedup();
    let want = [
        "libc",
        "proc-macro2",
        "quote",
        "syn",
        "thiserror",
        "thiserror-impl",
        "tph-abi",
        "tph-client",
        "tph-regs",
        "unicode-ident",
        "vfio-bindings",
    ];
    assert_eq!(names, want, "{t}");
}

/// No feature of the client brings in what `tphctl` reports: the JSON report schema and the
/// lspci renderer live in `tph-report`, which a driver never compiles.
#[test]
fn lean_client_never_depends_on_the_report_crate() {
    for features in [
        &[][..],
        &["open"],
        &["vfio-ioctls"],
        &["open", "vfio-ioctls"],
    ] {
        let Some(t) = tree(features) else { return };
        let names = crate_names(&t);
        assert!(names.contains(&"tph-regs"), "{features:?}:\n{t}");
        assert!(!names.contains(&"tph-report"), "{features:?}:\n{t}");
    }
}

#[test]
fn lean_client_rust_vmm_backend_is_opt_in() {
    let Some(t) = tree(&["vfio-ioctls"]) else {
        return;
    };
    let names = crate_names(&t);
    assert!(names.contains(&"vfio-ioctls"), "{t}");
    assert!(!names.contains(&"tph-kernel"), "{t}");
}
