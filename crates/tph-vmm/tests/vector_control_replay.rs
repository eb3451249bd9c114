//! A guest kernel's MSI-X table and TPH Control traffic replayed into the layer's hooks, as a
//! VMM's MSI-X emulation would forward it, and the host checked to end with the tags of the
//! pinned host CPUs.
//!
//! The sequence is built from what mainline Linux does (drivers/pci/msi/msi.c and
//! drivers/pci/tph.c); the accesses are the ones a VMM's trap sees:
//! - `msix_capability_init`: each allocated vector's Vector Control is read into the kernel's
//!   cached control word (`msix_setup_msi_descs`), then every entry of the table is written
//!   with the mask bit alone, a 4-byte write (`msix_mask_all`);
//! - `__pci_write_msi_msg` for each vector while masked: address low, address high and data,
//!   4 bytes each; then the unmask writes the cached control word without the mask bit;
//! - `pcie_enable_tph`: TPH Control, a 4-byte configuration write;
//! - `pcie_tph_set_st_entry` per vector: Requester Enable cleared in Control, the tag put into
//!   bits 31:16 of the cached control word and that word written as 4 bytes
//!   (`pci_msix_write_tph_tag`), Requester Enable restored;
//! - later mask and unmask (interrupt moves): the cached control word, tag included, with the
//!   mask bit set or cleared.
//!
//! The PCIe specification lets software access the MSI-X table in aligned dwords or aligned
//! qwords; a guest that writes Message Data and Vector Control as one qword (not Linux) is
//! replayed too. When the real-guest rig records a 7.3 guest's writes, they replace
//! [`mainline_sequence`] as data.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::check::ABIS;
use common::{client, config, guest_dsdt, host_tag, HostDevice};
use tph_acpi::{AmlSource, MemType, SteeringTagSource, TagWidth};
use tph_kernel::KernelAbi;
use tph_vmm::ssdt::{self, SsdtSpec};
use tph_vmm::VirtualTph;

/// Vectors the guest driver allocates.
const VECTORS: u16 = 8;
/// Four vCPUs pinned to host CPUs 5, 6, 7 and 9.
const PINS: [Option<u32>; 4] = [Some(5), Some(6), Some(7), Some(9)];
/// TPH Control the guest core writes on this device (IV mode, extended TPH) and with
/// Requester Enable cleared.
const CONTROL_IV_EXT: u32 = 0x301;
const CONTROL_REQ_OFF: u32 = 0x001;

/// One access a VMM's trap sees.
#[derive(Debug, Clone, Copy)]
enum Access {
    /// A read of `width` bytes at this offset of the MSI-X table.
    TableRead { offset: u64, width: usize },
    /// A write of the low `width` bytes of `value` at this offset of the MSI-X table.
    TableWrite {
        offset: u64,
        width: usize,
        value: u64,
    },
    /// A 4-byte write of TPH Control.
    Control(u32),
}

/// The virtual tag the guest's firmware gives vCPU `vcpu` (the generated SSDT, run by
/// `tph-acpi` as the guest's ACPI would run it), 16-bit as the guest enabled extended TPH.
fn firmware_tag(firmware: &AmlSource, vcpu: u32) -> u16 {
    let info = firmware.st_info(vcpu).unwrap();
    info.tag(MemType::Volatile, TagWidth::Bits16).unwrap()
}

/// The vCPU whose tag the driver writes into `vector`.
fn vcpu_of(vector: u16) -> u32 {
    u32::from(vector) % PINS.len() as u32
}

/// What mainline Linux makes a device's MSI-X table and TPH Control see while a driver
/// allocates `VECTORS` vectors out of a table of `table_size`, enables TPH in IV mode, steers
/// each vector to a vCPU and later moves interrupts around (see the file's documentation).
fn mainline_sequence(table_size: u16, tags: &[u16]) -> Vec<Access> {
    const CTRL: u64 = 12;
    const MASK: u32 = 1;
    let entry = |v: u16| u64::from(v) * 16;
    let mut seq = Vec::new();
    let mut cached = vec![MASK; usize::from(VECTORS)]; // reset value: masked, tag 0
    for v in 0..VECTORS {
        seq.push(Access::TableRead {
            offset: entry(v) + CTRL,
            width: 4,
        });
    }
    for v in 0..table_size {
        seq.push(Access::TableWrite {
            offset: entry(v) + CTRL,
            width: 4,
            value: u64::from(MASK),
        });
    }
    for v in 0..VECTORS {
        let c = &mut cached[usize::from(v)];
        for (off, value) in [(0, 0xfee0_0000u64), (4, 0), (8, 0x4020 + u64::from(v))] {
            seq.push(Access::TableWrite {
                offset: entry(v) + off,
                width: 4,
                value,
            });
        }
        *c &= !MASK;
        seq.push(Access::TableWrite {
            offset: entry(v) + CTRL,
            width: 4,
            value: u64::from(*c),
        });
    }
    seq.push(Access::Control(CONTROL_IV_EXT));
    for v in 0..VECTORS {
        let c = &mut cached[usize::from(v)];
        *c = (*c & 0xffff) | u32::from(tags[vcpu_of(v) as usize]) << 16;
        seq.push(Access::Control(CONTROL_REQ_OFF));
        seq.push(Access::TableWrite {
            offset: entry(v) + CTRL,
            width: 4,
            value: u64::from(*c),
        });
        seq.push(Access::TableRead {
            offset: entry(v) + CTRL,
            width: 4,
        });
        seq.push(Access::Control(CONTROL_IV_EXT));
    }
    for v in (0..VECTORS).rev() {
        let c = cached[usize::from(v)];
        for value in [c | MASK, c] {
            seq.push(Access::TableWrite {
                offset: entry(v) + CTRL,
                width: 4,
                value: u64::from(value),
            });
        }
    }
    seq
}

/// A guest (not Linux) that rewrites Message Data and Vector Control of `vector` in one
/// aligned qword, steering it to `tag`, unmasked.
fn qword_write(vector: u16, tag: u16) -> Access {
    let data = 0x4040u64 + u64::from(vector);
    Access::TableWrite {
        offset: u64::from(vector) * 16 + 8,
        width: 8,
        value: data | u64::from(tag) << 48,
    }
}

struct Replayed {
    host_calls: u32,
    /// The mask bit of the last Vector Control write of each vector, as the layer reported it.
    masked: Vec<Option<bool>>,
}

/// Replays `seq` into the hooks as a VMM's MSI-X emulation forwards it (table accesses through
/// `write_msix_table` and `read_msix_table`, Control through `write_config`); every hook's
/// effect must be free of host failures.
fn replay(v: &mut VirtualTph<tph_emu::EmulatedBackend>, seq: &[Access]) -> Replayed {
    let cap = v.cap_offset();
    let mut out = Replayed {
        host_calls: 0,
        masked: vec![None; usize::from(VECTORS)],
    };
    for a in seq {
        let effect = match *a {
            Access::TableRead { offset, width } => {
                let mut buf = vec![0u8; width];
                v.read_msix_table(offset, &mut buf);
                continue;
            }
            Access::TableWrite {
                offset,
                width,
                value,
            } => {
                let bytes = value.to_le_bytes();
                let effect = v.write_msix_table(offset, &bytes[..width]);
                // A qword at 8 or a dword at 12 writes Vector Control.
                let vector = (offset / 16) as u16;
                let ctrl = match (offset % 16, width) {
                    (12, 4) => Some(value as u32),
                    (8, 8) => Some((value >> 32) as u32),
                    _ => None,
                };
                if let (Some(ctrl), Some(slot)) = (ctrl, out.masked.get_mut(usize::from(vector))) {
                    *slot = Some(ctrl & 1 != 0);
                }
                effect
            }
            Access::Control(value) => v.write_config(cap + 8, &value.to_le_bytes()),
        };
        assert!(effect.host_ok(), "{a:?}: {:?}", effect.host_failures);
        out.host_calls += effect.host_calls;
    }
    out
}

fn vm(
    abi: KernelAbi,
) -> (
    tph_kernel::Host,
    VirtualTph<tph_emu::EmulatedBackend>,
    AmlSource,
) {
    let dev = HostDevice::MsixTable;
    let host = common::host_with_tph(abi);
    let mut v = VirtualTph::new(client(&host, dev, abi), config(dev, &PINS)).unwrap();
    let spec = SsdtSpec::new("\\_SB.PCI0", v.config().uids.clone(), v.extended());
    let table = ssdt::generate(&spec, &v.tag_space()).unwrap();
    let firmware = AmlSource::from_tables(&[guest_dsdt(), &table]).unwrap();
    // The VMM enables the host's vectors when the guest enables MSI-X.
    assert!(v.host_msix_will_change().host_ok());
    v.device()
        .backend()
        .fd()
        .unwrap()
        .set_irqs(u32::from(VECTORS))
        .unwrap();
    assert!(v.host_msix_enabled(u32::from(VECTORS)).host_ok());
    (host, v, firmware)
}

fn host_table(v: &VirtualTph<tph_emu::EmulatedBackend>) -> Vec<u16> {
    v.device().backend().device().snapshot().st_table
}

#[test]
fn mainline_vector_control_writes_leave_the_pinned_cpus_tags_on_the_host() {
    for abi in ABIS {
        let (_host, mut v, firmware) = vm(abi);
        let tags: Vec<u16> = (0..4).map(|c| firmware_tag(&firmware, c)).collect();
        let table_size = v.virtual_cap().entries;
        let r = replay(&mut v, &mainline_sequence(table_size, &tags));
        let t = host_table(&v);
        for vector in 0..VECTORS {
            let pin = PINS[vcpu_of(vector) as usize].unwrap();
            assert_eq!(
                t[usize::from(vector)],
                host_tag(pin, MemType::Volatile, TagWidth::Bits16),
                "{abi:?}: vector {vector}"
            );
            assert_eq!(
                v.read_vector_control_st(vector),
                tags[vcpu_of(vector) as usize]
            );
            let mut ctrl = [0u8; 4];
            v.read_msix_table(u64::from(vector) * 16 + 12, &mut ctrl);
            assert_eq!(
                u16::from_le_bytes([ctrl[2], ctrl[3]]),
                tags[vcpu_of(vector) as usize]
            );
            assert_eq!(r.masked[usize::from(vector)], Some(false), "ends unmasked");
        }
        assert!(
            t[usize::from(VECTORS)..].iter().all(|st| *st == 0),
            "{abi:?}"
        );
        // Mask and unmask traffic carries the same tags: it costs the host nothing.
        let tail: Vec<Access> = mainline_sequence(table_size, &tags)
            .into_iter()
            .rev()
            .take(2 * usize::from(VECTORS))
            .collect();
        assert_eq!(replay(&mut v, &tail).host_calls, 0, "{abi:?}");
        // A re-pin while the guest runs moves them.
        assert!(v.pin(1, Some(12)).unwrap().host_ok());
        for vector in (0..VECTORS).filter(|v| vcpu_of(*v) == 1) {
            assert_eq!(
                host_table(&v)[usize::from(vector)],
                host_tag(12, MemType::Volatile, TagWidth::Bits16)
            );
        }
    }
}

#[test]
fn qword_writes_of_message_data_and_vector_control_steer_too() {
    for abi in ABIS {
        let (_host, mut v, firmware) = vm(abi);
        let tags: Vec<u16> = (0..4).map(|c| firmware_tag(&firmware, c)).collect();
        let table_size = v.virtual_cap().entries;
        replay(&mut v, &mainline_sequence(table_size, &tags));
        // Vector 5 to vCPU 3, vector 6 to no steering, both as qwords.
        let r = replay(&mut v, &[qword_write(5, tags[3]), qword_write(6, 0)]);
        assert_eq!(r.host_calls, 2, "{abi:?}: one SET_ST per write");
        let t = host_table(&v);
        assert_eq!(
            t[5],
            host_tag(9, MemType::Volatile, TagWidth::Bits16),
            "{abi:?}"
        );
        assert_eq!(t[6], 0, "{abi:?}");
        assert_eq!(r.masked[5], Some(false));
        // Message Data alone (a dword at 8) leaves the tag as it is.
        let r = replay(
            &mut v,
            &[Access::TableWrite {
                offset: 5 * 16 + 8,
                width: 4,
                value: 0x4099,
            }],
        );
        assert_eq!(r.host_calls, 0);
        assert_eq!(v.read_vector_control_st(5), tags[3]);
    }
}
