//! A migration stream is untrusted: any bytes go to the state decoder, and whatever it accepts
//! is restored onto a fresh device of either revision. Decoding never panics, what it accepts
//! encodes back to the same bytes, and a restore either refuses with a clear error or gives a
//! device whose guest reads exactly the restored state.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;
use tph_vmm::state::VmState;

fuzz_target!(|data: &[u8]| {
    let (head, stream) = data.split_at(data.len().min(12));
    let parsed = VmState::from_bytes(stream);
    let Ok(state) = parsed else {
        let e = parsed.unwrap_err();
        assert!(!e.to_string().is_empty());
        return;
    };
    assert_eq!(
        state.to_bytes(),
        stream,
        "decode then encode must give the bytes back"
    );
    let mut c = common::Cursor::new(head);
    let Some(vm) = common::vm(&mut c) else { return };
    let ever = common::pinned(&vm);
    let common::Vm { host, v, abi } = vm;
    let cfg = v.config().clone();
    let dev = v.into_device();
    match tph_vmm::VirtualTph::restore(dev, cfg, &state) {
        Ok(restored) => {
            // The guest reads what was saved, entries as the registers keep them (bits a
            // register does not have read 0).
            let saved = restored.save();
            assert_eq!(
                (
                    saved.vcpus,
                    saved.capability,
                    saved.control,
                    saved.table.len()
                ),
                (
                    state.vcpus,
                    state.capability,
                    state.control,
                    state.table.len()
                )
            );
            for (got, sent) in saved.table.iter().zip(&state.table) {
                assert_eq!(got & !sent, 0, "entry {got:#x} from {sent:#x}");
            }
            common::check(
                &common::Vm {
                    host,
                    v: restored,
                    abi,
                },
                &ever,
            );
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
