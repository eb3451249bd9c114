//! MSI-X (capability ID 0x11): table size, BIR/offset, enable, and the steering tag field of
//! each entry's Vector Control word.

use crate::bytes::{rd16, rd32, wr16, wr32};
use crate::caps::{find_cap, CAP_ID_MSIX};

/// Size in bytes of one MSI-X table entry.
pub const MSIX_ENTRY_SIZE: u64 = 16;
/// Offset of the Vector Control dword inside an entry.
pub const MSIX_VECTOR_CTRL: u64 = 0xC;
/// Offset of Message Control inside the capability.
pub const MSIX_FLAGS: usize = 0x2;
/// Message Control bit 15: MSI-X Enable.
pub const MSIX_FLAGS_ENABLE: u16 = 1 << 15;
/// Message Control bit 14: Function Mask.
pub const MSIX_FLAGS_MASKALL: u16 = 1 << 14;
/// Vector Control bit 0: Mask Bit (`PCI_MSIX_ENTRY_CTRL_MASKBIT`).
pub const VECTOR_CTRL_MASKBIT: u32 = 1;

/// The MSI-X capability, decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct MsixCap {
    /// Offset of the capability in configuration space.
    pub offset: u16,
    /// Message Control bit 15.
    pub enabled: bool,
    /// Message Control bit 14.
    pub function_mask: bool,
    /// Message Control bits 10:0 plus one: the number of vectors (1..=2048).
    pub table_size: u16,
    /// Table BIR, bits 2:0 of the Table Offset/BIR register.
    pub table_bir: u8,
    /// Table offset within the BAR (bits 31:3, 8-byte aligned).
    pub table_offset: u32,
    /// PBA BIR.
    pub pba_bir: u8,
    /// PBA offset within the BAR.
    pub pba_offset: u32,
    /// Message Control bits 13:11 (reserved), kept for round-trips.
    pub reserved_ctrl: u8,
}

impl MsixCap {
    /// Finds and decodes the capability; `None` when absent or beyond the bytes read.
    pub fn find(cfg: &[u8]) -> Option<Self> {
        Self::decode(cfg, find_cap(cfg, CAP_ID_MSIX)?)
    }

    /// Decodes the capability at `offset`.
    pub fn decode(cfg: &[u8], offset: usize) -> Option<Self> {
        let ctrl = rd16(cfg, offset.saturating_add(2))?;
        let table = rd32(cfg, offset.saturating_add(4))?;
        let pba = rd32(cfg, offset.saturating_add(8))?;
        Some(Self {
            offset: offset as u16,
            enabled: ctrl & MSIX_FLAGS_ENABLE != 0,
            function_mask: ctrl & MSIX_FLAGS_MASKALL != 0,
            table_size: (ctrl & 0x7ff) + 1,
            table_bir: (table & 7) as u8,
            table_offset: table & !7,
            pba_bir: (pba & 7) as u8,
            pba_offset: pba & !7,
            reserved_ctrl: ((ctrl >> 11) & 7) as u8,
        })
    }

    /// The Message Control register value.
    pub fn control_bits(&self) -> u16 {
        (self.table_size.clamp(1, 2048) - 1)
            | u16::from(self.reserved_ctrl & 7) << 11
            | if self.function_mask {
                MSIX_FLAGS_MASKALL
            } else {
                0
            }
            | if self.enabled { MSIX_FLAGS_ENABLE } else { 0 }
    }

    /// Writes Message Control, Table and PBA registers back at `self.offset`.
    pub fn encode(&self, cfg: &mut [u8]) -> Option<()> {
        let off = usize::from(self.offset);
        wr16(cfg, off + 2, self.control_bits())?;
        wr32(
            cfg,
            off + 4,
            (self.table_offset & !7) | u32::from(self.table_bir & 7),
        )?;
        wr32(
            cfg,
            off + 8,
            (self.pba_offset & !7) | u32::from(self.pba_bir & 7),
        )
    }

    /// Byte offset, within the table's BAR, of vector `index`'s Vector Control dword.
    pub fn vector_control_offset(&self, index: u16) -> u64 {
        u64::from(self.table_offset) + u64::from(index) * MSIX_ENTRY_SIZE + MSIX_VECTOR_CTRL
    }
}

/// The steering tag held in Vector Control bits 31:16.
pub fn vector_control_st(vector_control: u32) -> u16 {
    (vector_control >> 16) as u16
}

/// Vector Control with bits 31:16 replaced by `st`; the mask bit and other low bits are kept.
pub fn with_vector_control_st(vector_control: u32, st: u16) -> u32 {
    (vector_control & 0xffff) | u32::from(st) << 16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msix_dsa_registers_decode() {
        // Intel DSA: Message Control 0x8008, table BAR 0 at 0x2000, PBA BAR 0 at 0x3000.
        let mut cfg = vec![0u8; 256];
        cfg[0x06] = 0x10;
        cfg[0x34] = 0x80;
        cfg[0x80] = CAP_ID_MSIX;
        cfg[0x82..0x84].copy_from_slice(&0x8008u16.to_le_bytes());
        cfg[0x84..0x88].copy_from_slice(&0x2000u32.to_le_bytes());
        cfg[0x88..0x8c].copy_from_slice(&0x3000u32.to_le_bytes());
        let m = MsixCap::find(&cfg).expect("present");
        assert!(m.enabled);
        assert_eq!((m.table_size, m.table_bir, m.table_offset), (9, 0, 0x2000));
        assert_eq!(m.vector_control_offset(1), 0x2000 + 16 + 12);
        let mut out = vec![0u8; 256];
        m.encode(&mut out).expect("fits");
        assert_eq!(out[0x82..0x8c], cfg[0x82..0x8c]);
    }

    #[test]
    fn vector_control_st_keeps_mask_bit() {
        let vc = with_vector_control_st(0x0000_0001, 0xabcd);
        assert_eq!(vc, 0xabcd_0001);
        assert_eq!(vector_control_st(vc), 0xabcd);
    }
}
