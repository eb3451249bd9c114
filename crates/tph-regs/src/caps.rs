//! Capability identifiers, offsets and bounded capability-list walkers.

/// Capability ID of the PCI Express capability.
pub const CAP_ID_EXP: u8 = 0x10;
/// Capability ID of MSI-X.
pub const CAP_ID_MSIX: u8 = 0x11;
/// Extended capability ID of the TPH Requester capability.
pub const EXT_CAP_ID_TPH: u16 = 0x0017;

/// Offset of the Device Capabilities 2 register inside the PCI Express capability.
pub const EXP_DEVCAP2: usize = 0x24;
/// Offset of the Flags register (device/port type in bits 7:4) inside the PCI Express capability.
pub const EXP_FLAGS: usize = 0x2;

/// Highest number of steps a walk takes before it reports a loop (48 standard capabilities fit
/// in 192 bytes; 480 extended ones in 3840 bytes).
const MAX_STD_STEPS: usize = 48;
const MAX_EXT_STEPS: usize = 480;

fn read_u16(cfg: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(cfg.get(off..off + 2)?.try_into().ok()?))
}

fn read_u32(cfg: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(cfg.get(off..off + 4)?.try_into().ok()?))
}

/// Offset of the first standard capability with `id`, or `None` when absent, the list is
/// disabled (Status bit 4 clear), or the walk hits a bad pointer, a loop or the end of `cfg`.
pub fn find_cap(cfg: &[u8], id: u8) -> Option<usize> {
    let status = read_u16(cfg, 0x06)?;
    if status & 0x10 == 0 {
        return None;
    }
    let mut ptr = usize::from(*cfg.get(0x34)? & 0xfc);
    for _ in 0..MAX_STD_STEPS {
        if ptr < 0x40 {
            return None;
        }
        let cap_id = *cfg.get(ptr)?;
        if cap_id == id {
            return Some(ptr);
        }
        ptr = usize::from(*cfg.get(ptr + 1)? & 0xfc);
    }
    None
}

/// Offset of the first extended capability with `id`, or `None` when absent, when `cfg` holds
/// no extended space, or on a bad pointer or loop.
pub fn find_ext_cap(cfg: &[u8], id: u16) -> Option<usize> {
    let mut ptr = 0x100usize;
    for _ in 0..MAX_EXT_STEPS {
        let header = read_u32(cfg, ptr)?;
        if header == 0 || header == u32::MAX {
            return None;
        }
        if (header & 0xffff) as u16 == id {
            return Some(ptr);
        }
        ptr = (header >> 20) as usize & 0xffc;
        if ptr < 0x100 {
            return None;
        }
    }
    None
}
