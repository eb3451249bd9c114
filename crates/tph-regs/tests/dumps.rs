//! Every shared real dump parses, and the topology and TPH facts the spec README states hold.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::PathBuf;

use tph_regs::express::PortType;
use tph_regs::machine::{Bdf, Machine};
use tph_regs::tph::{
    negotiate, CompleterSupport, EnableRefusal, ReqEnable, StLocation, StMode, TphRequester,
    Upstream,
};

fn data(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

fn load(name: &str) -> (String, Machine) {
    let text = std::fs::read_to_string(data(name)).expect("fixture readable");
    let m = tph_regs::parse_lspci_dump(&text).expect("fixture parses");
    (text, m)
}

fn bdf(s: &str) -> Bdf {
    s.parse().expect("valid BDF")
}

fn tph(m: &Machine, s: &str) -> TphRequester {
    let f = m.function(bdf(s)).expect("function present");
    TphRequester::find(&f.config)
        .expect("has TPH")
        .expect("TPH fits")
}

/// Number of device lines: lines at column 0 that are not hex lines.
fn device_lines(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with([' ', '\t']))
        .filter(|l| l.split_once(": ").is_none_or(|(o, _)| o.len() > 3))
        .count()
}

#[test]
fn every_shared_dump_parses_one_function_per_device_line() {
    for entry in std::fs::read_dir(data("")).expect("data dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("utf-8 name")
            .to_owned();
        let (text, m) = load(&name);
        assert_eq!(m.functions.len(), device_lines(&text), "{name}");
        assert!(
            m.functions
                .iter()
                .all(|f| [64, 256, 4096].contains(&f.config.len())),
            "{name}"
        );
    }
}

#[test]
fn dsa_is_rciep_with_ds_tph_only_control_and_two_entries() {
    let (_, m) = load("intel-dsa-pri-pasid.lspci");
    let b = bdf("6a:01.0");
    assert!(m.is_rciep(b));
    assert_eq!(m.root_port_of(b), None);
    let t = tph(&m, "6a:01.0");
    assert_eq!(t.offset, 0x160);
    assert_eq!(
        (t.control.mode, t.control.enable),
        (StMode::DeviceSpecific, ReqEnable::Tph)
    );
    assert_eq!(t.cap.location, StLocation::Capability);
    assert_eq!(t.table, vec![0x0000, 0x000a]);
    assert_eq!(
        negotiate(&t.cap, Upstream::RcIntegrated),
        Ok(ReqEnable::Tph)
    );
}

#[test]
fn cxl_0d93_has_extended_tph_16_entries_no_st_clear() {
    let (_, m) = load("intel-0d93-cxl.lspci");
    let t = tph(&m, "6b:00.0");
    assert_eq!(t.offset, 0x5b0);
    assert!(t.cap.ext);
    assert!(!t.cap.no_st);
    assert_eq!(t.cap.table_size, 16);
    assert_eq!(t.table.len(), 16);
    assert!(m.is_rciep(bdf("6b:00.0")));
}

#[test]
fn i350s_root_port_has_no_completer_so_enable_fails() {
    let (_, m) = load("machine-23c7a39.lspci");
    for func in 0..4 {
        let b = Bdf::new(0, 1, 0, func).expect("valid");
        let rp = m.root_port_of(b).expect("I350 sits below a root port");
        let port = m
            .function(rp)
            .and_then(|f| f.express())
            .expect("root port is PCIe");
        assert_eq!(port.port_type(), PortType::RootPort);
        assert_eq!(port.completer(), Some(CompleterSupport::None));
        let t = tph(&m, &b.to_string());
        let up = Upstream::RootPort(CompleterSupport::None);
        assert_eq!(negotiate(&t.cap, up), Err(EnableRefusal::NoCompleter));
    }
}

#[test]
fn machines_without_tph_have_no_tph_function() {
    for name in [
        "machine-02daadc.lspci",
        "machine-362f18e.lspci",
        "machine-caf6526.lspci",
    ] {
        let (_, m) = load(name);
        assert!(
            m.functions
                .iter()
                .all(|f| TphRequester::find(&f.config).is_none()),
            "{name}"
        );
    }
}

/// Topology as `lspci -t -F machine-23c7a39.lspci` draws it:
/// `1d.2-[04-08]----00.0-[05-08]----00.0-[06-07]----00.0-[07]----00.0`, and
/// `1d.0-[03]--+-00.0 / 00.1`.
#[test]
fn machine_23c7a39_bridge_chain_matches_lspci_tree() {
    let (_, m) = load("machine-23c7a39.lspci");
    let chain = m.upstream_bridges(bdf("07:00.0"));
    let expect: Vec<Bdf> = ["06:00.0", "05:00.0", "04:00.0", "00:1d.2"]
        .map(bdf)
        .to_vec();
    assert_eq!(chain, expect);
    assert_eq!(m.root_port_of(bdf("07:00.0")), Some(bdf("00:1d.2")));
    assert_eq!(m.root_port_of(bdf("03:00.1")), Some(bdf("00:1d.0")));
    // Functions on bus 0 have no bridge above them.
    assert_eq!(m.root_port_of(bdf("00:14.0")), None);
    assert!(m.upstream_bridges(bdf("00:1d.2")).is_empty());
}

/// `lspci -t -F machine-02daadc.lspci`: `0a.0-[02]----00.0`, `01.0-[01]--+-05.0`.
#[test]
fn machine_02daadc_parents_match_lspci_tree() {
    let (_, m) = load("machine-02daadc.lspci");
    assert_eq!(m.parent_bridge(bdf("02:00.0")), Some(bdf("00:0a.0")));
    assert_eq!(m.parent_bridge(bdf("01:05.1")), Some(bdf("00:01.0")));
}
