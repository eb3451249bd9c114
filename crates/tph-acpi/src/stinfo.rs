//! The 64-bit result of the `_DSM` steering-tag query.

pub use tph_abi::{MemType, TagWidth};

/// One half of a `_DSM` function 0xF result (one memory type), as firmware builds it: the
/// tags it hands out (`None`: marked invalid) and the `ph_ignore` bit.
///
/// ```
/// use tph_acpi::{StHalf, StInfo};
/// let vm = StHalf::new(Some(0x12), Some(0x3456));
/// let pm = StHalf::new(Some(0x9a), None).with_ph_ignore(true);
/// assert_eq!(StInfo::from_halves(vm, pm), StInfo(0x0000_9a05_3456_1203));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct StHalf {
    /// The 8-bit tag (bits 15:8, valid bit 0).
    pub st: Option<u8>,
    /// The 16-bit extended tag (bits 31:16, valid bit 1).
    pub xst: Option<u16>,
    /// Bit 2: processing hints are ignored.
    pub ph_ignore: bool,
}

impl StHalf {
    /// A half handing out the 8-bit tag `st` and the 16-bit tag `xst` (`None`: marked
    /// invalid), processing hints not ignored.
    pub const fn new(st: Option<u8>, xst: Option<u16>) -> Self {
        Self {
            st,
            xst,
            ph_ignore: false,
        }
    }

    /// The same half with the `ph_ignore` bit as given.
    #[must_use]
    pub const fn with_ph_ignore(mut self, ph_ignore: bool) -> Self {
        self.ph_ignore = ph_ignore;
        self
    }

    fn bits(self) -> u32 {
        let st = self.st.map_or(0, |t| 1 | u32::from(t) << 8);
        let xst = self.xst.map_or(0, |t| 2 | u32::from(t) << 16);
        st | xst | u32::from(self.ph_ignore) << 2
    }
}

/// The `_DSM` function 0xF result: a little-endian u64 with a VM half and a PM half.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct StInfo(pub u64);

impl StInfo {
    /// The result with these halves (the one encoder of the bit layout: the firmware this
    /// workspace generates and the tables it answers from use it).
    pub fn from_halves(vm: StHalf, pm: StHalf) -> Self {
        Self(u64::from(vm.bits()) | u64::from(pm.bits()) << 32)
    }

    /// The half of `mem`, decoded.
    pub fn half_of(self, mem: MemType) -> StHalf {
        StHalf {
            st: self.st_valid(mem).then(|| self.st(mem)),
            xst: self.xst_valid(mem).then(|| self.xst(mem)),
            ph_ignore: self.ph_ignore(mem),
        }
    }

    /// The 8 bytes of the result buffer (little-endian).
    pub fn to_bytes(self) -> [u8; 8] {
        self.0.to_le_bytes()
    }

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

    /// The tag of this width for `mem`, or `None` when its valid bit is clear (the kernel then
    /// hands out tag 0).
    pub fn tag(self, mem: MemType, width: TagWidth) -> Option<u16> {
        match width {
            TagWidth::Bits8 if self.st_valid(mem) => Some(u16::from(self.st(mem))),
            TagWidth::Bits16 if self.xst_valid(mem) => Some(self.xst(mem)),
            _ => None,
        }
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
    fn tag_width_picks_st_or_xst_and_honours_valid_bits() {
        // VM: only the 16-bit tag valid (bit 1); PM: only the 8-bit tag valid (bit 32).
        let v = StInfo(0x800a_8a01_100a_0a02);
        assert_eq!(v.tag(MemType::Volatile, TagWidth::Bits8), None);
        assert_eq!(v.tag(MemType::Volatile, TagWidth::Bits16), Some(0x100a));
        assert_eq!(v.tag(MemType::Persistent, TagWidth::Bits8), Some(0x8a));
        assert_eq!(v.tag(MemType::Persistent, TagWidth::Bits16), None);
        assert_eq!(TagWidth::for_requester_type(2), None);
        assert_eq!(
            TagWidth::for_requester_type(3).map(TagWidth::bits),
            Some(16)
        );
    }

    #[test]
    fn halves_encode_and_decode_every_field() {
        for bits in [0u64, 0xbcde_9a05_3456_1203, 0x800a_8a01_100a_0a02, u64::MAX] {
            // Reserved bits 7:3 of each half do not survive; everything else does.
            let v = StInfo(bits & !(0xf8 | 0xf8 << 32));
            let back =
                StInfo::from_halves(v.half_of(MemType::Volatile), v.half_of(MemType::Persistent));
            // An invalid tag is encoded as 0 with its valid bit clear.
            let valid = |h: u64| {
                let st = if h & 1 != 0 { 0xff01 } else { 0 };
                let xst = if h & 2 != 0 { 0xffff_0002 } else { 0 };
                st | xst | 4
            };
            let mask = valid(bits & 0xffff_ffff) | valid(bits >> 32) << 32;
            assert_eq!(back, StInfo(v.0 & mask), "{bits:#x}");
        }
        assert_eq!(StInfo(0x1234).to_bytes()[..2], [0x34, 0x12]);
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
