//! The VMM's side, interleaved with a guest using TPH: re-pins (any vCPU, any CPU, unpinned),
//! MSI-X vector changes with the hooks around them, resets, firmware results, migration save,
//! and host hardware writes made to fail at any point. No hook may panic; host failures come
//! back in effects; the host never holds a tag of a CPU the VM was never pinned to.
#![no_main]

#[path = "common.rs"]
mod common;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut c = common::Cursor::new(data);
    let Some(mut vm) = common::vm(&mut c) else {
        return;
    };
    let mut ever = common::pinned(&vm);
    let cap = vm.v.cap_offset();
    let vcpus = vm.v.config().vcpus();
    let mut steps = 0;
    while !c.done() && steps < 48 {
        steps += 1;
        match c.u8() % 9 {
            0 => {
                let vcpu = u32::from(c.u8()) % (vcpus + 1); // sometimes one too many
                let b = c.u8();
                let cpu = (b & 0x80 == 0).then_some(u32::from(b) % common::HOST_CPUS);
                if let Ok(effect) = vm.v.pin(vcpu, cpu) {
                    let _ = effect.host_ok();
                }
                ever.extend(cpu);
            }
            1 => {
                let n = u32::from(c.u8() % 33);
                let _ = vm.v.host_msix_will_change();
                if let Some(fd) = vm.v.device().backend().fd() {
                    if n > 0 && vm.v.device().backend().device().snapshot().msix_vectors > 0 {
                        let _ = fd.set_irqs(0);
                    }
                    let _ = fd.set_irqs(n);
                }
                let _ = vm.v.host_msix_enabled(n);
            }
            2 => {
                let _ = vm.v.reset();
            }
            3 => {
                // The guest enables or disables (any Control value).
                let value = u32::from(c.u16());
                let _ = vm.v.write_config(cap + 8, &value.to_le_bytes());
            }
            4 => {
                let index = c.u16() % 24;
                let value = c.u16();
                let _ = vm.v.write_guest_entry(index, value);
            }
            5 => {
                let _ = vm.v.ds_firmware_results();
            }
            6 => {
                // The next hardware write of the device fails (then the kernel disables TPH).
                let after = u32::from(c.u8() % 4);
                vm.v.device().backend().device().inject_write_failure(after);
            }
            7 => {
                let state = vm.v.save();
                assert_eq!(
                    tph_vmm::state::VmState::from_bytes(&state.to_bytes()).ok(),
                    Some(state)
                );
            }
            _ => {
                let vector = c.u16() % 24;
                let value = c.u32();
                let _ = vm.v.write_vector_control(vector, value);
            }
        }
        common::check(&vm, &ever);
    }
    let _ = &vm.host;
});
