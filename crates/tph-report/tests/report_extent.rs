//! Reading a dump for reports only (`read_lspci_dump_for_reports`, what `tphctl list/show`
//! use) keeps a few hundred bytes a TPH endpoint instead of 4 KiB, and must not change any
//! verdict, report or lspci line: checked on random extended-capability chains (loops, zero and all-ones
//! headers, pointers below 0x100 or past the end, several TPH capabilities, cut dumps).

use tph_regs::dump::{read_lspci_dump, write_lspci_dump, DumpLimits};
use tph_regs::machine::{Bdf, Function, Machine};
use tph_report::report::{report_all, tph_presence, ConfigOnly};
use tph_report::source::read_lspci_dump_for_reports;

/// Fixed-seed generator: the same functions on every run.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1);
        (self.0 >> 33) % n
    }
}

/// A PCI Express endpoint with a random extended chain of up to 6 capabilities.
fn function(rng: &mut Rng, bdf: Bdf) -> Function {
    let mut cfg = vec![0u8; 4096];
    cfg[0x06] = 0x10; // capability list
    cfg[0x34] = 0x40;
    cfg[0x40] = 0x10; // PCI Express, endpoint
    cfg[0x42] = 0x02;
    let mut at = 0x100;
    for step in 0..rng.below(7) {
        let id: u32 = if rng.below(3) == 0 {
            0x17
        } else {
            rng.below(0x30) as u32
        };
        let next = match rng.below(10) {
            0 => 0,     // end
            1 => 0x100, // loop to the start
            2 => 0x40,  // below the extended space
            _ => (0x100 + rng.below(0xefc) as usize) & 0xffc,
        };
        let header = id | (rng.below(16) as u32) << 16 | (next as u32) << 20;
        let header = if step == 0 && rng.below(20) == 0 {
            u32::MAX
        } else {
            header
        };
        cfg[at..at + 4].copy_from_slice(&header.to_le_bytes());
        if at + 8 <= 4096 {
            let cap = rng.below(1 << 27) as u32; // modes, location, size
            cfg[at + 4..at + 8].copy_from_slice(&cap.to_le_bytes());
        }
        for b in cfg.iter_mut().skip(at + 8).take(140) {
            *b = rng.below(256) as u8;
        }
        if next == 0 {
            break;
        }
        at = next;
    }
    if rng.below(8) == 0 {
        let cut = (0x100 + rng.below(0xf00) as usize) & !0xf;
        cfg.truncate(cut);
    }
    Function::new(bdf, cfg)
}

#[test]
fn reading_for_reports_changes_no_verdict_and_no_report() {
    let mut rng = Rng(0x5eed_1234_abcd_0042);
    let functions = (0..2000)
        .map(|i| {
            let bdf = Bdf::new(0, 1 + (i / 256) as u8, ((i / 8) % 32) as u8, (i % 8) as u8);
            function(&mut rng, bdf.expect("valid"))
        })
        .collect();
    let mut text = String::new();
    write_lspci_dump(&Machine::new(functions), &mut text).expect("string write");
    let whole = read_lspci_dump(text.as_bytes(), DumpLimits::default()).expect("parses");
    let kept = read_lspci_dump_for_reports(text.as_bytes(), DumpLimits::default()).expect("parses");
    let (mut present, mut saved) = (0, 0);
    for (w, k) in whole.functions.iter().zip(&kept.functions) {
        assert_eq!(
            tph_presence(&w.config),
            tph_presence(&k.config),
            "{}",
            w.bdf
        );
        present += usize::from(matches!(
            tph_presence(&w.config),
            tph_report::report::TphPresence::Present(_)
        ));
        saved += w.config.len() - k.config.len();
    }
    let reports = |m: &Machine| format!("{:?}", report_all(m, &ConfigOnly));
    assert_eq!(reports(&whole), reports(&kept));
    let lspci = |m: &Machine| {
        let mut out = Vec::new();
        tph_report::lspci::write_machine(m, &mut out).expect("vec write");
        out
    };
    assert_eq!(lspci(&whole), lspci(&kept));
    assert!(present > 300, "only {present} functions with TPH generated");
    assert!(saved > 2000 * 2048, "only {saved} bytes saved");
}
