//! The differential machinery on a kernel trace written from mainline `drivers/pci/tph.c`'s
//! accesses (the facts the real 7.3 kernel's trace will be checked against on the rig): a
//! device with its table in the TPH capability (default machine 02:00.0: capability at 0x100,
//! Capability 0xf0307, 16 entries, extended TPH) behind a root port completing TPH only.
//!
//! What mainline does, register by register (device side only; the root port's DevCap2 is
//! another function, the port type is cached at enumeration):
//! - `pcie_enable_tph`: Capability (modes), Capability (extended TPH), Control read, Control
//!   write; an unsupported mode stops after the first read.
//! - `pcie_tph_set_st_entry` (table in the capability): Control read and write (requests
//!   off), Capability (location), Capability twice more (`pcie_tph_get_st_table_size`: its
//!   location, then its size), the entry, Control read and write (requests back on); an index
//!   beyond the table ends with Control = 0 (`pcie_disable_tph`).
//! - `pci_save_tph_state` / `pci_restore_tph_state`: Control read / write, then the size
//!   (two Capability reads), then each entry read / written.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;

use tph_acpi::{HostBridgeId, TableSource};
use tph_testkit::differential::{
    compare, parse_calls, windows, Difference, GuestPlatform, Normalise, MARKER,
};

const CALLS: &str = "\
[   12.001] tphtest: call 1 enable iv -> 0
[   12.002] tphtest: call 2 enable iv -> -16
[   12.003] tphtest: call 3 get_cpu_st 3 vm -> 0 0x03
[   12.004] tphtest: call 4 set_st_entry 0 0x3 -> 0
[   12.005] tphtest: call 5 set_st_entry 16 0x1 -> -6
[   12.006] tphtest: call 6 enable iv -> 0
[   12.007] tphtest: call 7 set_st_entry 0 0x3 -> 0
[   12.008] tphtest: call 8 reset -> 0
[   12.009] tphtest: call 9 disable -> 0
[   12.010] tphtest: call 10 enable 5 -> -22
[   12.011] tphtest: call 11 get_st_table_size -> 16
[   12.012] tphtest: call 12 get_st_table_loc -> 1
[   12.013] tphtest: call 13 get_st_modes -> 7
random kernel noise without the word
";

fn marker(n: u32) -> String {
    format!("cfg  wr 0x000/4 <- {:#x}: no change\n", MARKER | n)
}

/// The server's trace of the kernel doing the calls above (effects as the server prints them).
fn kernel_trace() -> String {
    let mut t = String::from("cfg  rd 0x000/4 = 0x10011ab0\nirqs msix 0+1: eventfds set\n");
    let cap = "cfg  rd 0x104/4 = 0xf0307\n";
    t += &marker(1);
    t += &format!("{cap}{cap}cfg  rd 0x108/4 = 0x0\ncfg  wr 0x108/4 <- 0x101: TPH Control: NS off -> IV TPH\n");
    t += &marker(2);
    t += &marker(3);
    t += &marker(4);
    let set_entry = |tag: u32| {
        format!(
            "cfg  rd 0x108/4 = 0x101\ncfg  wr 0x108/4 <- 0x1: x\n{cap}{cap}{cap}\
             cfg  wr 0x10c/2 <- {tag:#x}: x\ncfg  rd 0x108/4 = 0x1\ncfg  wr 0x108/4 <- 0x101: x\n"
        )
    };
    t += &set_entry(3);
    t += &marker(5);
    t += &format!("cfg  rd 0x108/4 = 0x101\ncfg  wr 0x108/4 <- 0x1: x\n{cap}{cap}{cap}cfg  wr 0x108/4 <- 0x0: x\n");
    t += &marker(6);
    t += &format!("{cap}{cap}cfg  rd 0x108/4 = 0x0\ncfg  wr 0x108/4 <- 0x101: x\n");
    t += &marker(7);
    t += &set_entry(3);
    t += &marker(8);
    // pci_reset_function: the PCI core's own saves (header, Express), the TPH save, FLR, the
    // restores; only the TPH capability's accesses are compared.
    t += "cfg  rd 0x004/4 = 0x100006\ncfg  rd 0x048/2 = 0x2810\ncfg  rd 0x108/4 = 0x101\n";
    t += &format!("{cap}{cap}cfg  rd 0x10c/2 = 0x3\n");
    for i in 1..16 {
        t += &format!("cfg  rd {:#05x}/2 = 0x0\n", 0x10c + 2 * i);
    }
    t += "cfg  wr 0x048/2 <- 0xa810: function level reset\ncfg  rd 0x000/4 = 0x10011ab0\n";
    t += &format!("cfg  wr 0x108/4 <- 0x101: x\n{cap}{cap}cfg  wr 0x10c/2 <- 0x3: x\n");
    for i in 1..16 {
        t += &format!("cfg  wr {:#05x}/2 <- 0x0: x\n", 0x10c + 2 * i);
    }
    t += "cfg  wr 0x004/2 <- 0x6: 0x0 -> 0x6\n";
    t += &marker(9);
    t += "cfg  wr 0x108/4 <- 0x0: x\n";
    t += &marker(10);
    t += cap;
    t += &marker(11);
    t += &format!("{cap}{cap}");
    t += &marker(12);
    t += cap;
    t += &marker(13);
    t += cap;
    t
}

fn config() -> Vec<u8> {
    let m = tph_kernel::machines::default_machine();
    m.function("02:00.0".parse().unwrap())
        .unwrap()
        .config
        .clone()
}

fn platform() -> GuestPlatform {
    GuestPlatform {
        root_port_devcap2: Some(1 << 12), // TPH Completer Supported: TPH only
        host_bridge: Some(HostBridgeId { segment: 0, bus: 0 }),
        cpus: 4,
        cpu_uids: Vec::new(),
        firmware: Arc::new(TableSource::default_for_all()),
        notph: false,
    }
}

#[test]
fn the_call_log_is_read_and_noise_skipped() {
    let calls = parse_calls(CALLS).unwrap();
    assert_eq!(calls.len(), 13);
    assert_eq!((calls[2].ret, calls[2].tag), (0, Some(3)));
    assert_eq!(calls[4].ret, -6);
    let err = parse_calls("x call 1 frobnicate -> 0\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "call log line 1: unknown call: \"x call 1 frobnicate -> 0\""
    );
}

#[test]
fn the_trace_splits_at_markers_and_drops_what_precedes_the_first() {
    let w = windows(&kernel_trace());
    assert_eq!(w.len(), 13);
    assert!(
        w[&2].is_empty() && w[&3].is_empty(),
        "EBUSY and get_cpu_st touch no register"
    );
    assert_eq!(w[&1].len(), 4);
}

#[test]
fn the_model_core_does_what_mainline_does() {
    let calls = parse_calls(CALLS).unwrap();
    let how = Normalise::for_config(&config());
    let diffs = compare(&config(), &platform(), &calls, &kernel_trace(), &how);
    let text: String = diffs.iter().map(|d| format!("{d}\n")).collect();
    assert!(diffs.is_empty(), "{text}");
}

#[test]
fn a_different_return_value_and_a_missing_access_are_reported() {
    let calls =
        parse_calls(&CALLS.replace("call 13 get_st_modes -> 7", "call 13 get_st_modes -> 3"))
            .unwrap();
    // The kernel's call 9 wrote nothing.
    let trace = kernel_trace().replace(
        &format!("{}cfg  wr 0x108/4 <- 0x0: x\n", marker(9)),
        &marker(9),
    );
    let how = Normalise::for_config(&config());
    let diffs = compare(&config(), &platform(), &calls, &trace, &how);
    assert_eq!(diffs.len(), 2, "{diffs:?}");
    assert!(
        matches!(&diffs[0], Difference::Accesses { call, model, real }
        if call.seq == 9 && real.is_empty() && model == &["cfg  wr 0x108/4 <- 0x0"])
    );
    assert!(matches!(&diffs[1], Difference::Return { call, model: 7, .. } if call.seq == 13));
    assert!(
        diffs[1].to_string().contains("the kernel returned 3"),
        "{}",
        diffs[1]
    );
}

#[test]
fn a_call_without_its_marker_is_reported() {
    let calls = parse_calls("call 14 disable -> 0\n").unwrap();
    let how = Normalise::for_config(&config());
    let diffs = compare(&config(), &platform(), &calls, &kernel_trace(), &how);
    assert!(
        matches!(diffs.as_slice(), [Difference::NoWindow { .. }]),
        "{diffs:?}"
    );
}
