//! Fuzzes the outputs on every function the lspci dump reader yields (and on the raw input
//! taken as configuration bytes): the TPH verdict, the report extent, the lspci walk and
//! renderer, and the report of the whole machine; none may panic or hang.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tph_report::report::{report_machine, scan, ConfigOnly};

fn outputs(cfg: &[u8]) {
    let _ = tph_report::report::tph_presence(cfg);
    let _ = tph_report::source::reports_extent(cfg);
    let mut sink = Vec::new();
    for (off, v) in tph_report::lspci::lspci_tph_caps(cfg) {
        let _ = tph_report::lspci::write_tph_block(cfg, off, v, &mut sink);
    }
}

fuzz_target!(|data: &[u8]| {
    outputs(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(m) = tph_regs::parse_lspci_dump(text) {
            for f in &m.functions {
                outputs(&f.config);
            }
            let _ = report_machine(&m, &ConfigOnly);
            let _ = scan(&m, &ConfigOnly);
            let _ = tph_report::lspci::write_machine(&m, &mut Vec::new());
        }
    }
});

// Run (from crates/tph-report), with the dumps of tph-regs' fuzz crate as seeds:
//   cargo +nightly fuzz run report_and_lspci fuzz/corpus/report_and_lspci ../tph-regs/fuzz/seeds \
//     -- -max_total_time=60
