//! The `#[non_exhaustive]` `Loaded`, built the only way another crate can: through its
//! constructor (this file is a crate of its own, so a struct literal would not compile).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tph_regs::machine::{Function, Machine};
use tph_report::report::{report_machine, ConfigOnly};
use tph_report::source::{Loaded, DUMP_FIX};

#[test]
fn loaded_new_has_no_fix_until_with_unread_fix() {
    // One function of 64 zero bytes: no capability list, so no report.
    let machine = Machine::new(vec![Function::new("00:00.0".parse().unwrap(), vec![0; 64])]);
    let loaded = Loaded::new(machine.clone(), Box::new(ConfigOnly));
    assert_eq!(loaded.machine, machine);
    assert_eq!(loaded.unread_fix, "");
    assert!(report_machine(&loaded.machine, loaded.msix.as_ref()).is_empty());
    assert_eq!(loaded.with_unread_fix(DUMP_FIX).unread_fix, DUMP_FIX);
}
