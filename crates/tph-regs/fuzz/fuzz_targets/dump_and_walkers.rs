//! Fuzzes the lspci dump reader and, on every function it yields (and on the raw input taken
//! as configuration bytes), the capability walkers and decoders: none may panic or hang. (The
//! report and the lspci renderer are fuzzed by `tph-report`'s `report_and_lspci`.)
#![no_main]

use libfuzzer_sys::fuzz_target;

fn decode_all(cfg: &[u8]) {
    let _ = tph_regs::caps::walk_caps(cfg);
    let _ = tph_regs::caps::walk_ext_caps(cfg);
    let _ = tph_regs::header::Header::decode(cfg);
    let _ = tph_regs::express::ExpressCap::find(cfg);
    let _ = tph_regs::msix::MsixCap::find(cfg);
    let _ = tph_regs::tph::TphRequester::find(cfg);
}

fuzz_target!(|data: &[u8]| {
    decode_all(data);
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(m) = tph_regs::parse_lspci_dump(text) {
            for f in &m.functions {
                decode_all(&f.config);
                let _ = m.root_port_of(f.bdf);
            }
            let t = m.topology();
            for f in &m.functions {
                let _ = t.root_port_of(f);
            }
        }
    }
});

// Run (from crates/tph-regs):
//   cargo +nightly fuzz run dump_and_walkers fuzz/corpus/dump_and_walkers fuzz/seeds -- -max_total_time=60
