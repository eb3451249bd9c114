//! The vocabulary of steering tags shared by every crate: the memory type a tag is for and the
//! width of the tags a device uses.

/// The memory type a steering tag is for: the two halves of the firmware's `_DSM` result, and
/// the ABI's memory-type field (0 volatile, 1 persistent).
///
/// ```
/// use tph_abi::MemType;
/// assert_eq!(MemType::default(), MemType::Volatile);
/// assert_eq!(MemType::from_uapi(MemType::Persistent.uapi()), Some(MemType::Persistent));
/// assert_eq!(MemType::from_uapi(2), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum MemType {
    /// Volatile memory (`vm`; bits 31:0 of the `_DSM` result).
    #[default]
    Volatile,
    /// Persistent memory (`pm`; bits 63:32 of the `_DSM` result).
    Persistent,
}

impl MemType {
    /// The UAPI encoding (0 volatile, 1 persistent).
    pub fn uapi(self) -> u8 {
        match self {
            MemType::Volatile => 0,
            MemType::Persistent => 1,
        }
    }

    /// The memory type of a UAPI value; `None` for any other value than 0 and 1.
    pub fn from_uapi(value: u8) -> Option<Self> {
        match value {
            0 => Some(MemType::Volatile),
            1 => Some(MemType::Persistent),
            _ => None,
        }
    }
}

/// Width of the steering tags a device uses, from its negotiated requester type
/// (TPH Requester Enable, Control bits 9:8).
///
/// ```
/// use tph_abi::TagWidth;
/// assert_eq!(TagWidth::for_requester_type(3), Some(TagWidth::Bits16));
/// assert_eq!(TagWidth::Bits8.mask(0x1234), 0x34);
/// assert_eq!(TagWidth::Bits16.space(), 65536);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub enum TagWidth {
    /// Requester type 1 (TPH only): the 8-bit tag (ST Lower, the firmware's `st`).
    Bits8,
    /// Requester type 3 (TPH and extended TPH): the 16-bit tag (the firmware's `xst`).
    Bits16,
}

impl TagWidth {
    /// The width for a requester type; `None` for 0 (disabled) and the reserved 2.
    pub fn for_requester_type(requester_type: u8) -> Option<Self> {
        match requester_type {
            1 => Some(Self::Bits8),
            3 => Some(Self::Bits16),
            _ => None,
        }
    }

    /// 8 or 16.
    pub fn bits(self) -> u8 {
        match self {
            Self::Bits8 => 8,
            Self::Bits16 => 16,
        }
    }

    /// Number of tags of this width (256 or 65536).
    pub fn space(self) -> u32 {
        1 << self.bits()
    }

    /// `raw` reduced to the bits a device of this width uses.
    pub fn mask(self, raw: u16) -> u16 {
        match self {
            Self::Bits8 => raw & 0xff,
            Self::Bits16 => raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requester_types_0_and_2_have_no_width() {
        assert_eq!(TagWidth::for_requester_type(0), None);
        assert_eq!(TagWidth::for_requester_type(1), Some(TagWidth::Bits8));
        assert_eq!(TagWidth::for_requester_type(2), None);
        assert_eq!(TagWidth::for_requester_type(4), None);
    }

    #[test]
    fn uapi_values_round_trip() {
        for m in [MemType::Volatile, MemType::Persistent] {
            assert_eq!(MemType::from_uapi(m.uapi()), Some(m));
        }
        assert_eq!(MemType::Persistent.uapi(), 1);
        assert_eq!(TagWidth::Bits8.space(), 256);
        assert_eq!(TagWidth::Bits16.mask(0x1234), 0x1234);
    }
}
