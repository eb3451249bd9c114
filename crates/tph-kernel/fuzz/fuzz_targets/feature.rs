//! Fuzzes the feature revision's entry points: `VFIO_DEVICE_FEATURE` and config-region writes
//! (the virtualised TPH Control register) and reads. The first bytes pick the device, host
//! options and MSI-X vectors; the rest is a sequence `[len, kind, bytes...]`: `kind` < 160 sends
//! the bytes as a `VFIO_DEVICE_FEATURE` argument (flags forced to TPH_ST for most), < 230 writes
//! them to the config region at an offset near TPH Control, else reads the config region.
//! Asserts: no panic, no TPH spec violation, TPH off after the last close.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tph_kernel::vfio::abi;
use tph_kernel::{Host, HostOptions, KernelAbi, RestoreOrder};

const DEVICES: [&str; 5] = ["01:00.0", "02:00.0", "03:00.0", "00:05.0", "00:06.0"];
/// TPH Control of the default machine's devices.
const CONTROL: u64 = 0x108;

fuzz_target!(|data: &[u8]| {
    let [sel, prep, rest @ ..] = data else {
        return;
    };
    let host = Host::with_default_machine(
        HostOptions::new()
            .with_abi(KernelAbi::Feature)
            .with_unsafe_ds(sel & 0x80 != 0)
            .with_notph(sel & 0x60 == 0x60)
            // The order that writes no entry while enabled: mainline's is flagged by design.
            .with_restore_order(RestoreOrder::TableBeforeEnable),
    );
    let bdf = DEVICES[usize::from(sel % 5)].parse().expect("bdf");
    let dev = host.take_over(bdf).expect("take over");
    let fd = dev.open().expect("open");
    let _ = fd.set_irqs(u32::from(prep & 0x1f));
    let mut rest = rest;
    while let [len, kind, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let mut arg = tail[..n].to_vec();
        match kind {
            0..=159 => {
                if kind % 4 != 0 && arg.len() >= 8 {
                    let dirs = u32::from_le_bytes([arg[4], arg[5], arg[6], arg[7]]) & 0x7_0000;
                    arg[4..8].copy_from_slice(&(dirs | abi::FEATURE_TPH_ST).to_le_bytes());
                }
                let _ = fd.ioctl_bytes(abi::VFIO_DEVICE_FEATURE, &mut arg);
            }
            160..=229 => {
                let offset = CONTROL + u64::from(*kind % 8) - 4;
                let _ = fd.config_write(offset, &arg);
            }
            _ => {
                let _ = fd.config_read(u64::from(*len) * 16, &mut arg);
            }
        }
        rest = &tail[n..];
    }
    assert!(dev.violations().is_empty(), "{:?}", dev.violations());
    fd.close();
    assert_eq!(dev.snapshot().control.unwrap_or(0), 0);
});
