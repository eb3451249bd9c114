//! The 64-bit result of the `_DSM` steering-tag query.

/// Memory type a tag is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub enum MemType {
    /// Volatile memory (bits 31:0 of the result).
    Volatile,
    /// Persistent memory (bits 63:32 of the result).
    Persistent,
}

/// The `_DSM` function 0xF result: a little-endian u64 with a VM half and a PM half.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct StInfo(pub u64);

impl StInfo {
    fn half(self, mem: MemType) -> u32 {
        match mem {
            MemType::Volatile => self.0 as u32,
            MemType::Persistent => (self.0 >> 32) as u32,
        }
    }

    /// Bit 0 of the half: the 8-bit tag is valid.
    pub fn st_valid(self, mem: MemType) -> bool {
        self.half(mem) & 1 != 0
    }

    /// Bit 1 of the half: the 16-bit tag is valid.
    pub fn xst_valid(self, mem: MemType) -> bool {
        self.half(mem) & 2 != 0
    }

    /// Bit 2 of the half: processing hints are ignored (reported, unused by the kernel).
    pub fn ph_ignore(self, mem: MemType) -> bool {
        self.half(mem) & 4 != 0
    }

    /// Bits 15:8 of the half: the 8-bit tag.
    pub fn st(self, mem: MemType) -> u8 {
        (self.half(mem) >> 8) as u8
    }

    /// Bits 31:16 of the half: the 16-bit (extended) tag.
    pub fn xst(self, mem: MemType) -> u16 {
        (self.half(mem) >> 16) as u16
    }

    /// Decodes the first 8 bytes of a result buffer; `None` when it is shorter.
    pub fn from_buffer(buf: &[u8]) -> Option<Self> {
        let bytes: [u8; 8] = buf.get(..8)?.try_into().ok()?;
        Some(Self(u64::from_le_bytes(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stinfo_fields_follow_firmware_dsm_bit_table() {
        // VM: valid, xvalid, st 0x12, xst 0x3456; PM: valid only, ph_ignore, st 0x9a, xst 0xbcde.
        let v = StInfo(0xbcde_9a05_3456_1203);
        assert!(v.st_valid(MemType::Volatile) && v.xst_valid(MemType::Volatile));
        assert!(!v.ph_ignore(MemType::Volatile));
        assert_eq!(
            (v.st(MemType::Volatile), v.xst(MemType::Volatile)),
            (0x12, 0x3456)
        );
        assert!(v.st_valid(MemType::Persistent) && !v.xst_valid(MemType::Persistent));
        assert!(v.ph_ignore(MemType::Persistent));
        assert_eq!(
            (v.st(MemType::Persistent), v.xst(MemType::Persistent)),
            (0x9a, 0xbcde)
        );
    }

    #[test]
    fn stinfo_short_buffer_is_rejected() {
        assert_eq!(StInfo::from_buffer(&[1, 2, 3, 4, 5, 6, 7]), None);
        assert_eq!(
            StInfo::from_buffer(&[1, 0, 0, 0, 0, 0, 0, 0, 9]),
            Some(StInfo(1))
        );
    }
}
