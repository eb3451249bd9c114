//! Property tests: the lspci walk, the TPH verdict and the report extent on arbitrary bytes
//! never panic, and cutting a space to its extents changes neither the lspci lines nor the
//! verdict.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use proptest::prelude::*;

use tph_report::lspci::{lspci_extent, lspci_tph_caps, write_tph_block};
use tph_report::report::{report_extent, tph_presence};

proptest! {
    #[test]
    fn lspci_walk_on_any_bytes_keeps_its_answer_within_its_extent(
        c in prop::collection::vec(any::<u8>(), 0..4097)
    ) {
        let caps = lspci_tph_caps(&c);
        let cut = &c[..lspci_extent(&c)];
        prop_assert_eq!(lspci_tph_caps(cut), caps.clone());
        for (off, v) in caps {
            let (mut full, mut short) = (Vec::new(), Vec::new());
            write_tph_block(&c, off, v, &mut full).expect("vec write");
            write_tph_block(cut, off, v, &mut short).expect("vec write");
            prop_assert_eq!(full, short);
        }
    }

    #[test]
    fn tph_verdict_on_any_bytes_is_the_same_within_its_extent(
        c in prop::collection::vec(any::<u8>(), 0..4097)
    ) {
        let cut = &c[..report_extent(&c)];
        prop_assert_eq!(tph_presence(cut), tph_presence(&c));
    }
}
