//! Capability identifiers, offsets and bounded capability-list walkers.
//!
//! Walks follow the house rule for bounded walks: a step bound, the pointer's low two bits
//! masked, a stop below 0x40 (standard) or 0x100 (extended) and at 0 / all-ones, and loops,
//! bad pointers and short dumps reported as data ([`ChainEnd`]), never by hanging or panicking.

use crate::bytes::{rd16, rd32, rd8, wr16, wr32, wr8};
use crate::Error;

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
/// Offset of Device Capabilities inside the PCI Express capability.
pub const EXP_DEVCAP: usize = 0x4;
/// Device Capabilities bit 28: Function Level Reset Capability.
pub const DEVCAP_FLR: u32 = 1 << 28;
/// Offset of Device Control inside the PCI Express capability.
pub const EXP_DEVCTL: usize = 0x8;
/// Device Control bit 15: Initiate Function Level Reset.
pub const DEVCTL_FLR: u32 = 1 << 15;
/// Capability ID of PCI Power Management.
pub const CAP_ID_PM: u8 = 0x01;
/// Offset of PMCSR (Power Management Control/Status) inside the PM capability.
pub const PM_CTRL: usize = 0x4;
/// PMCSR bits 1:0: PowerState (0 D0, 3 D3hot).
pub const PM_CTRL_STATE_MASK: u32 = 0x3;
/// PMCSR bit 3: No_Soft_Reset (set: D3hot to D0 does not reset the function).
pub const PM_CTRL_NO_SOFT_RESET: u32 = 1 << 3;

/// Highest number of steps a walk takes before it reports a loop (48 standard capabilities fit
/// in 192 bytes; 480 extended ones in 3840 bytes).
const MAX_STD_STEPS: usize = 48;
const MAX_EXT_STEPS: usize = 480;

/// Status register bit 4: the capability list exists.
const STATUS_CAP_LIST: u16 = 0x10;
/// Offset of the Capabilities Pointer in both header types.
const CAP_PTR: usize = 0x34;
/// First offset of the extended configuration space.
pub const EXT_START: usize = 0x100;

/// One entry of a capability chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CapEntry {
    /// Offset of the capability header.
    pub offset: u16,
    /// Capability ID (8-bit for standard capabilities).
    pub id: u16,
    /// Capability version (extended capabilities only; 0 for standard ones).
    pub version: u8,
}

impl CapEntry {
    /// The capability with ID `id` and `version` whose header is at `offset`.
    pub const fn new(offset: u16, id: u16, version: u8) -> Self {
        Self {
            offset,
            id,
            version,
        }
    }
}

/// Why a walk stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "kind", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum ChainEnd {
    /// The chain ended normally (next pointer 0, or an empty extended space).
    Complete,
    /// The Status register says there is no capability list.
    NoList,
    /// A pointer led back to an offset already visited.
    Loop {
        /// The offset visited twice.
        at: u16,
    },
    /// A pointer below the legal range (0x40 standard, 0x100 extended).
    BadPointer {
        /// The illegal pointer value.
        at: u16,
    },
    /// The chain continues beyond the bytes that were read.
    Truncated {
        /// Offset of the first unreadable header.
        at: u16,
    },
}

/// A whole capability chain and how it ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CapChain {
    /// The capabilities in walk order.
    pub caps: Vec<CapEntry>,
    /// Why the walk stopped.
    pub end: ChainEnd,
}

impl CapChain {
    /// The first capability with `id`.
    pub fn find(&self, id: u16) -> Option<CapEntry> {
        self.caps.iter().copied().find(|c| c.id == id)
    }

    /// Whether the walk ended normally.
    pub fn is_complete(&self) -> bool {
        matches!(self.end, ChainEnd::Complete | ChainEnd::NoList)
    }
}

fn chain(caps: Vec<CapEntry>, end: ChainEnd) -> CapChain {
    CapChain { caps, end }
}

/// Walks the standard capability list of `cfg`.
pub fn walk_caps(cfg: &[u8]) -> CapChain {
    let mut caps = Vec::new();
    let Some(status) = rd16(cfg, 0x06) else {
        return chain(caps, ChainEnd::Truncated { at: 0x06 });
    };
    if status & STATUS_CAP_LIST == 0 {
        return chain(caps, ChainEnd::NoList);
    }
    let Some(first) = rd8(cfg, CAP_PTR) else {
        return chain(caps, ChainEnd::Truncated { at: CAP_PTR as u16 });
    };
    let mut ptr = usize::from(first & 0xfc);
    for _ in 0..MAX_STD_STEPS {
        if ptr == 0 {
            return chain(caps, ChainEnd::Complete);
        }
        if ptr < 0x40 {
            return chain(caps, ChainEnd::BadPointer { at: ptr as u16 });
        }
        if caps.iter().any(|c| usize::from(c.offset) == ptr) {
            return chain(caps, ChainEnd::Loop { at: ptr as u16 });
        }
        let (Some(id), Some(next)) = (rd8(cfg, ptr), rd8(cfg, ptr + 1)) else {
            return chain(caps, ChainEnd::Truncated { at: ptr as u16 });
        };
        caps.push(CapEntry {
            offset: ptr as u16,
            id: u16::from(id),
            version: 0,
        });
        ptr = usize::from(next & 0xfc);
    }
    chain(caps, ChainEnd::Loop { at: ptr as u16 })
}

/// Walks the extended capability list of `cfg` (empty and `Truncated` when `cfg` holds no
/// extended space).
pub fn walk_ext_caps(cfg: &[u8]) -> CapChain {
    let mut caps = Vec::new();
    let mut ptr = EXT_START;
    for _ in 0..MAX_EXT_STEPS {
        if caps.iter().any(|c: &CapEntry| usize::from(c.offset) == ptr) {
            return chain(caps, ChainEnd::Loop { at: ptr as u16 });
        }
        let Some(header) = rd32(cfg, ptr) else {
            return chain(caps, ChainEnd::Truncated { at: ptr as u16 });
        };
        if header == 0 || header == u32::MAX {
            return chain(caps, ChainEnd::Complete);
        }
        let version = ((header >> 16) & 0xf) as u8;
        caps.push(CapEntry {
            offset: ptr as u16,
            id: (header & 0xffff) as u16,
            version,
        });
        ptr = (header >> 20) as usize & 0xffc;
        if ptr == 0 {
            return chain(caps, ChainEnd::Complete);
        }
        if ptr < EXT_START {
            return chain(caps, ChainEnd::BadPointer { at: ptr as u16 });
        }
    }
    chain(caps, ChainEnd::Loop { at: ptr as u16 })
}

/// Encodes an extended capability header: ID 15:0, version 19:16, next 31:20.
pub fn ext_header(id: u16, version: u8, next: u16) -> u32 {
    u32::from(id) | u32::from(version & 0xf) << 16 | u32::from(next & 0xffc) << 20
}

fn chain_error(what: &'static str, offset: usize, len: usize) -> Error {
    Error::Truncated { what, offset, len }
}

/// Writes a standard capability chain: Status bit 4, the Capabilities Pointer, and each
/// entry's ID and next pointer linking the entries in order (the last one ends the list).
/// Capability bodies are left as they are.
pub fn write_caps(cfg: &mut [u8], caps: &[CapEntry]) -> Result<(), Error> {
    let len = cfg.len();
    let status = rd16(cfg, 0x06).ok_or(chain_error("Status register", 0x06, len))?;
    let first = caps.first().map_or(0, |c| c.offset as u8);
    wr16(cfg, 0x06, status | STATUS_CAP_LIST).ok_or(chain_error("Status register", 0x06, len))?;
    wr8(cfg, CAP_PTR, first).ok_or(chain_error("Capabilities Pointer", CAP_PTR, len))?;
    for (i, c) in caps.iter().enumerate() {
        let next = caps.get(i + 1).map_or(0, |n| n.offset as u8);
        let off = usize::from(c.offset);
        wr8(cfg, off, c.id as u8)
            .and_then(|()| wr8(cfg, off + 1, next))
            .ok_or(chain_error("capability header", off, len))?;
    }
    Ok(())
}

/// Writes an extended capability chain: each entry's header linking the entries in order
/// (the last one's next pointer is 0). The first entry belongs at 0x100.
pub fn write_ext_caps(cfg: &mut [u8], caps: &[CapEntry]) -> Result<(), Error> {
    let len = cfg.len();
    for (i, c) in caps.iter().enumerate() {
        let next = caps.get(i + 1).map_or(0, |n| n.offset);
        let off = usize::from(c.offset);
        wr32(cfg, off, ext_header(c.id, c.version, next)).ok_or(chain_error(
            "extended capability header",
            off,
            len,
        ))?;
    }
    Ok(())
}

/// Offset of the first standard capability with `id`, or `None` when absent, the list is
/// disabled (Status bit 4 clear), or the walk hits a bad pointer, a loop or the end of `cfg`
/// before finding it.
pub fn find_cap(cfg: &[u8], id: u8) -> Option<usize> {
    walk_caps(cfg)
        .find(u16::from(id))
        .map(|c| usize::from(c.offset))
}

/// Offset of the first extended capability with `id`, or `None` when absent, when `cfg` holds
/// no extended space, or on a bad pointer or loop before finding it.
pub fn find_ext_cap(cfg: &[u8], id: u16) -> Option<usize> {
    walk_ext_caps(cfg).find(id).map(|c| usize::from(c.offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4096-byte space with the capability list enabled.
    fn space() -> Vec<u8> {
        let mut cfg = vec![0u8; 4096];
        cfg[0x06] = 0x10;
        cfg
    }

    #[test]
    fn walk_caps_two_entries_complete() {
        let mut cfg = space();
        cfg[0x34] = 0x40;
        cfg[0x40] = 0x10;
        cfg[0x41] = 0x80;
        cfg[0x80] = 0x11;
        let c = walk_caps(&cfg);
        assert_eq!(c.end, ChainEnd::Complete);
        assert_eq!(c.caps.len(), 2);
        assert_eq!(find_cap(&cfg, CAP_ID_MSIX), Some(0x80));
    }

    #[test]
    fn walk_caps_self_loop_reports_loop() {
        let mut cfg = space();
        cfg[0x34] = 0x40;
        cfg[0x40] = 0x05;
        cfg[0x41] = 0x40;
        assert_eq!(walk_caps(&cfg).end, ChainEnd::Loop { at: 0x40 });
    }

    #[test]
    fn walk_caps_pointer_into_header_is_bad_pointer() {
        let mut cfg = space();
        cfg[0x34] = 0x40;
        cfg[0x41] = 0x20;
        assert_eq!(walk_caps(&cfg).end, ChainEnd::BadPointer { at: 0x20 });
    }

    #[test]
    fn walk_caps_status_bit_clear_is_no_list() {
        let mut cfg = space();
        cfg[0x06] = 0;
        cfg[0x34] = 0x40;
        assert_eq!(walk_caps(&cfg).end, ChainEnd::NoList);
    }

    #[test]
    fn walk_caps_pointer_past_64_byte_dump_is_truncated() {
        let mut cfg = space();
        cfg[0x34] = 0x80;
        cfg.truncate(64);
        assert_eq!(walk_caps(&cfg).end, ChainEnd::Truncated { at: 0x80 });
    }

    #[test]
    fn walk_ext_caps_loop_and_bad_pointer_reported() {
        let mut cfg = space();
        cfg[0x100..0x104].copy_from_slice(&0x1001_0017u32.to_le_bytes());
        assert_eq!(walk_ext_caps(&cfg).end, ChainEnd::Loop { at: 0x100 });
        cfg[0x100..0x104].copy_from_slice(&0x0801_0017u32.to_le_bytes());
        assert_eq!(walk_ext_caps(&cfg).end, ChainEnd::BadPointer { at: 0x80 });
        assert_eq!(find_ext_cap(&cfg, EXT_CAP_ID_TPH), Some(0x100));
    }

    #[test]
    fn walk_ext_caps_256_byte_space_is_truncated_and_empty() {
        let cfg = vec![0u8; 256];
        let c = walk_ext_caps(&cfg);
        assert!(c.caps.is_empty());
        assert_eq!(c.end, ChainEnd::Truncated { at: 0x100 });
    }
}
