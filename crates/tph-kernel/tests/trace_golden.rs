//! Golden files for the trace text (`Display` of every hardware access) of whole scenarios.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test -p tph-kernel --test trace_golden`.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::*;
use tph_kernel::vfio::abi::{self, TphEntry as Entry};

fn check(name: &str, text: &str) {
    let path = format!("{}/tests/golden/{name}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, text).expect("write golden");
    }
    let want = std::fs::read_to_string(&path).expect("golden file");
    assert_eq!(text, want, "{name} differs; UPDATE_GOLDEN=1 regenerates it");
}

fn trace_text(f: &Fixture) -> String {
    f.trace().iter().map(|a| format!("{a}\n")).collect()
}

#[test]
fn trace_of_iv_steering_on_msix_table_matches_golden() {
    let f = Fixture::new(MSIX_DEV);
    let mut out = String::from("# set_irqs(2)\n");
    f.fd.set_irqs(2).unwrap();
    out += &trace_text(&f);
    out += "# ENABLE(IV)\n";
    f.enable(abi::MODE_IV).unwrap();
    out += &trace_text(&f);
    out += "# SET_ST index 1 = CPU 3 (VM)\n";
    f.set_st(&[Entry::new(3, 0, 1)]).unwrap();
    out += &trace_text(&f);
    out += "# close (last fd)\n";
    let Fixture { dev, fd, .. } = f;
    fd.close();
    out += &dev
        .drain_trace()
        .iter()
        .map(|a| format!("{a}\n"))
        .collect::<String>();
    check("iv_msix_steering.trace", &out);
}

#[test]
fn trace_of_reset_with_capability_table_matches_golden() {
    let f = Fixture::new(CAP_DEV);
    f.enable(abi::MODE_IV).unwrap();
    f.set_st(&[Entry::new(2, 0, 0)]).unwrap();
    f.trace();
    f.fd.reset().unwrap();
    check("reset_cap_table.trace", &trace_text(&f));
}
