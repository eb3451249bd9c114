//! A hostile guest: any sequence of configuration reads and writes (any offset, 1 to 8 bytes,
//! aimed at the TPH capability or anywhere), Vector Control writes and MSI-X table accesses of
//! any width and offset, on both kernel revisions, either device, gated or not. The layer must
//! never panic, never fail the VMM's path, and never let a guest's number reach the device.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = common::Cursor::new(data);
    let Some(mut vm) = common::vm(&mut c) else {
        return;
    };
    let ever = common::pinned(&vm);
    // The VMM enables some host vectors first (the table in MSI-X needs them).
    let n = u32::from(c.u8() % 17);
    if n > 0 {
        let _ = vm.v.host_msix_will_change();
        if let Some(fd) = vm.v.device().backend().fd() {
            let _ = fd.set_irqs(n);
        }
        let _ = vm.v.host_msix_enabled(n);
    }
    let cap = vm.v.cap_offset();
    let mut steps = 0;
    while !c.done() && steps < 64 {
        steps += 1;
        let op = c.u8();
        let len = usize::from(c.u8() % 9);
        match op % 6 {
            0 | 1 => {
                // Mostly inside the capability, sometimes anywhere.
                let offset = if op & 0x80 == 0 {
                    cap + u16::from(c.u8() % 48)
                } else {
                    c.u16()
                };
                let data = c.bytes(len);
                let _ = vm.v.write_config(offset, &data);
            }
            2 => {
                let mut buf = vec![0u8; len];
                let offset = c.u16();
                vm.v.read_config(offset, &mut buf);
            }
            3 => {
                let vector = c.u16() % 40;
                let value = c.u32();
                let _ = vm.v.write_vector_control(vector, value);
                let _ = vm.v.read_vector_control_st(vector);
            }
            4 => {
                let offset = u64::from(c.u16());
                let data = c.bytes(len);
                let _ = vm.v.write_msix_table(offset, &data);
            }
            _ => {
                let offset = u64::from(c.u32());
                let mut buf = vec![0u8; len];
                vm.v.read_msix_table(offset, &mut buf);
            }
        }
        common::check(&vm, &ever);
    }
    let _ = &vm.host;
});
