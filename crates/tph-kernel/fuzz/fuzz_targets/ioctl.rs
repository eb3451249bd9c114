//! Fuzzes the `VFIO_DEVICE_PCI_TPH` entry point: the first bytes pick the device, host
//! options and a prepared state (TPH enabled or not, MSI-X vectors); the rest is a sequence
//! of ioctls `[len, kind, arg bytes...]` issued in order (`kind` picks VFIO_DEVICE_PCI_TPH
//! mostly, else VFIO_DEVICE_SET_IRQS, VFIO_DEVICE_RESET or an arbitrary request). Asserts: no
//! panic, and the device never records a TPH spec violation except mainline's own MSI-X enable
//! hazard: a SET_IRQS that turns MSI-X on while TPH is on rewrites tags by masking every entry
//! and unmasks re-allocated vectors with their cached tags (`msix_capability_init`).
#![no_main]

use libfuzzer_sys::fuzz_target;
use tph_kernel::hw::Violation;
use tph_kernel::vfio::abi;
use tph_kernel::{Host, HostOptions, RestoreOrder};

const DEVICES: [&str; 5] = ["01:00.0", "02:00.0", "03:00.0", "00:05.0", "00:06.0"];

fuzz_target!(|data: &[u8]| {
    let [sel, prep, rest @ ..] = data else {
        return;
    };
    let host = Host::with_default_machine(
        HostOptions::new()
            .with_unsafe_ds(sel & 0x80 != 0)
            .with_notph(sel & 0x40 == 0x40 && sel & 0x20 == 0x20)
            // The order that writes no entry while enabled: mainline's is flagged by design.
            .with_restore_order(RestoreOrder::TableBeforeEnable),
    );
    let bdf = DEVICES[usize::from(sel % 5)].parse().expect("bdf");
    let dev = host.take_over(bdf).expect("take over");
    let fd = dev.open().expect("open");
    let _ = fd.set_irqs(u32::from(prep & 0x1f));
    let mode = if prep & 0x20 != 0 {
        abi::MODE_DS
    } else {
        abi::MODE_IV
    };
    if prep & 0x40 != 0 {
        let mut arg = abi::encode_op(abi::OP_ENABLE, [mode, 0, 0, 0, 0, 0, 0, 0]);
        let _ = fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg);
    }
    let mut rest = rest;
    while let [len, kind, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let mut arg = tail[..n].to_vec();
        let request = match kind {
            0..=219 => abi::VFIO_DEVICE_PCI_TPH,
            220..=239 => abi::VFIO_DEVICE_SET_IRQS,
            240..=247 => abi::VFIO_DEVICE_RESET,
            _ => u32::from(*kind) << 8 | u32::from(*len),
        };
        let seen = dev.violations().len();
        let msix_was_on = dev.snapshot().msix_vectors > 0;
        let _ = fd.ioctl_bytes(request, &mut arg);
        let turned_msix_on = !msix_was_on && dev.snapshot().msix_vectors > 0;
        let new = dev.violations().split_off(seen);
        let hazard = request == abi::VFIO_DEVICE_SET_IRQS
            && turned_msix_on
            && new
                .iter()
                .all(|v| matches!(v, Violation::StWriteWhileEnabled { .. }));
        assert!(new.is_empty() || hazard, "{new:?}");
        rest = &tail[n..];
    }
    fd.close();
    assert_eq!(dev.snapshot().control.unwrap_or(0), 0);
});
