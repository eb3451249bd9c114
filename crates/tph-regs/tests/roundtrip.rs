//! Property tests: encoding round-trips, and malformed input never panics.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use proptest::prelude::*;

use tph_regs::caps::{walk_caps, walk_ext_caps, ChainEnd};
use tph_regs::dump::write_lspci_dump;
use tph_regs::header::Header;
use tph_regs::machine::{Bdf, Function, Machine};
use tph_regs::msix::MsixCap;
use tph_regs::tph::{
    negotiate, CompleterSupport, ReqEnable, TphCapability, TphControl, TphRequester, Upstream,
};

fn bdf() -> impl Strategy<Value = Bdf> {
    (any::<u16>(), any::<u8>(), 0u8..32, 0u8..8)
        .prop_map(|(d, b, dev, f)| Bdf::new(d, b, dev, f).expect("in range"))
}

proptest! {
    #[test]
    fn tph_capability_bits_round_trip(v in any::<u32>()) {
        prop_assert_eq!(TphCapability::from_bits(v).to_bits(), v);
    }

    #[test]
    fn tph_control_bits_round_trip(v in any::<u32>()) {
        prop_assert_eq!(TphControl::from_bits(v).to_bits(), v);
    }

    #[test]
    fn header_bytes_round_trip(bytes in prop::array::uniform32(any::<u8>()), tail in prop::array::uniform32(any::<u8>())) {
        let mut c = [0u8; 64];
        c[..32].copy_from_slice(&bytes);
        c[32..].copy_from_slice(&tail);
        let h = Header::decode(&c).expect("64 bytes");
        let mut out = c;
        h.encode(&mut out).expect("fits");
        // Type-2 (and reserved) layouts keep 0x10..0x40 raw; every layout round-trips.
        prop_assert_eq!(out, c);
    }

    #[test]
    fn msix_registers_round_trip(ctrl in any::<u16>(), table in any::<u32>(), pba in any::<u32>()) {
        let mut c = vec![0u8; 0x50];
        c[0x42..0x44].copy_from_slice(&ctrl.to_le_bytes());
        c[0x44..0x48].copy_from_slice(&table.to_le_bytes());
        c[0x48..0x4c].copy_from_slice(&pba.to_le_bytes());
        let m = MsixCap::decode(&c, 0x40).expect("fits");
        let mut out = vec![0u8; 0x50];
        m.encode(&mut out).expect("fits");
        prop_assert_eq!(&out[0x42..0x4c], &c[0x42..0x4c]);
    }

    #[test]
    fn tph_requester_round_trip(
        off in (0x40usize..0x3f0).prop_map(|o| o * 4),
        version in 0u32..16, next in 0u32..0x1000,
        cap in any::<u32>(), ctrl in any::<u32>(),
        fill in any::<u8>(),
    ) {
        let mut c = vec![fill; 4096];
        c[off..off + 4].copy_from_slice(&(0x17 | version << 16 | (next & 0xffc) << 20).to_le_bytes());
        c[off + 4..off + 8].copy_from_slice(&cap.to_le_bytes());
        c[off + 8..off + 12].copy_from_slice(&ctrl.to_le_bytes());
        let t = TphRequester::decode(&c, off).expect("registers fit");
        let mut out = vec![fill; 4096];
        t.encode(&mut out).expect("fits");
        let end = off + t.len();
        prop_assert_eq!(&out[off..end], &c[off..end]);
        prop_assert!(t.table.len() <= 64);
    }

    #[test]
    fn walkers_terminate_without_panic_on_any_bytes(c in prop::collection::vec(any::<u8>(), 0..4097)) {
        let s = walk_caps(&c);
        prop_assert!(s.caps.len() <= 48);
        let e = walk_ext_caps(&c);
        prop_assert!(e.caps.len() <= 960);
        let _ = TphRequester::find(&c);
        let _ = MsixCap::find(&c);
        if matches!(e.end, ChainEnd::Complete) {
            prop_assert!(e.caps.iter().all(|x| x.offset >= 0x100));
        }
    }

    #[test]
    fn dump_parser_never_panics(s in "\\PC{0,400}") {
        let _ = tph_regs::parse_lspci_dump(&s);
    }

    #[test]
    fn dump_parser_never_panics_on_dump_like_lines(lines in prop::collection::vec(
        prop_oneof![
            "[0-9a-f]{1,4}:[0-9a-f]{1,3}\\.[0-9a-f]{1,2}( .*)?",
            "[0-9a-f]{1,4}:( [0-9a-f]{1,3}){0,18}",
            "\t.*",
            "",
        ], 0..40)) {
        let _ = tph_regs::parse_lspci_dump(&lines.join("\n"));
    }

    #[test]
    fn dump_write_parse_round_trips(fs in prop::collection::btree_map(bdf(), prop::sample::select(vec![64usize, 256, 4096]), 1..6), fill in any::<u8>()) {
        let functions = fs.into_iter().map(|(bdf, len)| Function::new(bdf, vec![fill; len])).collect();
        let m = Machine::new(functions);
        let mut s = String::new();
        write_lspci_dump(&m, &mut s).expect("string write");
        prop_assert_eq!(tph_regs::parse_lspci_dump(&s).expect("parses"), m);
    }

    #[test]
    fn bdf_display_parse_round_trips(b in bdf()) {
        prop_assert_eq!(b.to_string().parse::<Bdf>().expect("parses"), b);
        if b.domain == 0 {
            prop_assert_eq!(b.lspci_str(false).parse::<Bdf>().expect("parses"), b);
        }
    }

    #[test]
    fn negotiate_never_exceeds_own_type_and_rciep_ignores_completer(cap in any::<u32>(), comp in 0u32..4) {
        let cap = TphCapability::from_bits(cap);
        let own = if cap.ext { 3 } else { 1 };
        let up = Upstream::RootPort(CompleterSupport::from_devcap2(comp << 12));
        if let Ok(t) = negotiate(&cap, up) {
            prop_assert!(t.field() <= own && t.field() <= comp as u8 && t != ReqEnable::Disabled);
        }
        prop_assert_eq!(negotiate(&cap, Upstream::RcIntegrated).map(ReqEnable::field), Ok(own));
    }
}

/// Distinct dword-aligned offsets at least 16 bytes apart, in [lo, hi).
fn spaced_offsets(lo: usize, hi: usize, max: usize) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::btree_set((lo / 16)..(hi / 16), 0..max)
        .prop_map(|s| s.into_iter().map(|o| o * 16).collect::<Vec<_>>())
        .prop_shuffle()
}

proptest! {
    #[test]
    fn ext_chain_write_then_walk_round_trips(
        offs in spaced_offsets(0x110, 0x1000, 12),
        ids in prop::collection::vec(1u16..0xfffe, 13),
        versions in prop::collection::vec(0u8..16, 13),
    ) {
        use tph_regs::caps::{write_ext_caps, CapEntry};
        let mut all = vec![0x100usize];
        all.extend(offs);
        let caps: Vec<CapEntry> = all.iter().enumerate()
            .map(|(i, &o)| CapEntry::new(o as u16, ids[i], versions[i]))
            .collect();
        let mut cfg = vec![0u8; 4096];
        write_ext_caps(&mut cfg, &caps).expect("fits");
        let walked = walk_ext_caps(&cfg);
        prop_assert_eq!(walked.end, ChainEnd::Complete);
        prop_assert_eq!(walked.caps, caps);
    }

    #[test]
    fn std_chain_write_then_walk_round_trips(
        offs in spaced_offsets(0x40, 0x100, 12),
        ids in prop::collection::vec(any::<u8>(), 12),
    ) {
        use tph_regs::caps::{write_caps, CapEntry};
        let caps: Vec<CapEntry> = offs.iter().enumerate()
            .map(|(i, &o)| CapEntry::new(o as u16, u16::from(ids[i]), 0))
            .collect();
        let mut cfg = vec![0u8; 256];
        write_caps(&mut cfg, &caps).expect("fits");
        let walked = walk_caps(&cfg);
        prop_assert_eq!(walked.end, ChainEnd::Complete);
        prop_assert_eq!(walked.caps, caps);
    }
}
