//! The first 64 bytes of configuration space: the common header and its type-0 (endpoint) and
//! type-1 (PCI-to-PCI bridge) layouts, decoded into types and encoded back.

use crate::bytes::{rd16, rd32, rd8, wr16, wr32, wr8};

/// Size of the header.
pub const HEADER_LEN: usize = 64;
/// Offset of the Command register.
pub const COMMAND: usize = 0x04;
/// Command bit 2: Bus Master Enable.
pub const COMMAND_MASTER: u16 = 1 << 2;
/// Command bit 10: Interrupt Disable (`PCI_COMMAND_INTX_DISABLE`).
pub const COMMAND_INTX_DISABLE: u16 = 1 << 10;
/// Offset of Bridge Control in a type 1 header.
pub const BRIDGE_CONTROL: usize = 0x3e;
/// Bridge Control bit 6: Secondary Bus Reset.
pub const BRIDGE_CTL_BUS_RESET: u16 = 1 << 6;

/// Fields shared by every header type (offsets 0x00..0x10, 0x34, 0x3c, 0x3d).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Header {
    /// 0x00.
    pub vendor_id: u16,
    /// 0x02.
    pub device_id: u16,
    /// 0x04.
    pub command: u16,
    /// 0x06.
    pub status: u16,
    /// 0x08.
    pub revision: u8,
    /// 0x09..0x0b: programming interface, sub-class, base class (24 bits).
    pub class: u32,
    /// 0x0c.
    pub cache_line_size: u8,
    /// 0x0d.
    pub latency_timer: u8,
    /// 0x0e bit 7.
    pub multi_function: bool,
    /// 0x0f.
    pub bist: u8,
    /// 0x34.
    pub cap_ptr: u8,
    /// 0x3c.
    pub interrupt_line: u8,
    /// 0x3d.
    pub interrupt_pin: u8,
    /// The layout-specific part (0x0e bits 6:0 select it).
    pub kind: HeaderKind,
}

/// The layout-specific part of the header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum HeaderKind {
    /// Type 0: an endpoint.
    Endpoint(Type0),
    /// Type 1: a PCI-to-PCI bridge.
    Bridge(Type1),
    /// Any other layout (2 = CardBus, others reserved): bytes 0x10..0x40 kept raw, except the
    /// capability pointer and interrupt registers decoded in [`Header`].
    Other {
        /// The 7-bit layout value.
        layout: u8,
        /// Bytes 0x10..0x40.
        #[cfg_attr(feature = "serde", serde(skip))]
        raw: [u8; 48],
    },
}

/// Type-0 specific registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Type0 {
    /// 0x10..0x28.
    pub bars: [u32; 6],
    /// 0x28.
    pub cardbus_cis: u32,
    /// 0x2c.
    pub subsystem_vendor_id: u16,
    /// 0x2e.
    pub subsystem_id: u16,
    /// 0x30.
    pub expansion_rom: u32,
    /// 0x35..0x3c (reserved).
    pub reserved: [u8; 7],
    /// 0x3e.
    pub min_gnt: u8,
    /// 0x3f.
    pub max_lat: u8,
}

/// Type-1 specific registers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Type1 {
    /// 0x10, 0x14.
    pub bars: [u32; 2],
    /// 0x18.
    pub primary_bus: u8,
    /// 0x19.
    pub secondary_bus: u8,
    /// 0x1a.
    pub subordinate_bus: u8,
    /// 0x1b.
    pub secondary_latency: u8,
    /// 0x1c.
    pub io_base: u8,
    /// 0x1d.
    pub io_limit: u8,
    /// 0x1e.
    pub secondary_status: u16,
    /// 0x20.
    pub memory_base: u16,
    /// 0x22.
    pub memory_limit: u16,
    /// 0x24.
    pub prefetch_base: u16,
    /// 0x26.
    pub prefetch_limit: u16,
    /// 0x28.
    pub prefetch_base_upper: u32,
    /// 0x2c.
    pub prefetch_limit_upper: u32,
    /// 0x30.
    pub io_base_upper: u16,
    /// 0x32.
    pub io_limit_upper: u16,
    /// 0x35..0x38 (reserved).
    pub reserved: [u8; 3],
    /// 0x38.
    pub expansion_rom: u32,
    /// 0x3e.
    pub bridge_control: u16,
}

fn bytes<const N: usize>(cfg: &[u8], off: usize) -> Option<[u8; N]> {
    cfg.get(off..off + N)?.try_into().ok()
}

fn dwords<const N: usize>(cfg: &[u8], off: usize) -> Option<[u32; N]> {
    let mut out = [0u32; N];
    for (i, d) in out.iter_mut().enumerate() {
        *d = rd32(cfg, off + 4 * i)?;
    }
    Some(out)
}

impl Type0 {
    fn decode(c: &[u8]) -> Option<Self> {
        Some(Self {
            bars: dwords(c, 0x10)?,
            cardbus_cis: rd32(c, 0x28)?,
            subsystem_vendor_id: rd16(c, 0x2c)?,
            subsystem_id: rd16(c, 0x2e)?,
            expansion_rom: rd32(c, 0x30)?,
            reserved: bytes(c, 0x35)?,
            min_gnt: rd8(c, 0x3e)?,
            max_lat: rd8(c, 0x3f)?,
        })
    }

    fn encode(&self, c: &mut [u8]) -> Option<()> {
        for (i, b) in self.bars.iter().enumerate() {
            wr32(c, 0x10 + 4 * i, *b)?;
        }
        wr32(c, 0x28, self.cardbus_cis)?;
        wr16(c, 0x2c, self.subsystem_vendor_id)?;
        wr16(c, 0x2e, self.subsystem_id)?;
        wr32(c, 0x30, self.expansion_rom)?;
        c.get_mut(0x35..0x3c)?.copy_from_slice(&self.reserved);
        wr8(c, 0x3e, self.min_gnt)?;
        wr8(c, 0x3f, self.max_lat)
    }
}

impl Type1 {
    fn decode(c: &[u8]) -> Option<Self> {
        Some(Self {
            bars: dwords(c, 0x10)?,
            primary_bus: rd8(c, 0x18)?,
            secondary_bus: rd8(c, 0x19)?,
            subordinate_bus: rd8(c, 0x1a)?,
            secondary_latency: rd8(c, 0x1b)?,
            io_base: rd8(c, 0x1c)?,
            io_limit: rd8(c, 0x1d)?,
            secondary_status: rd16(c, 0x1e)?,
            memory_base: rd16(c, 0x20)?,
            memory_limit: rd16(c, 0x22)?,
            prefetch_base: rd16(c, 0x24)?,
            prefetch_limit: rd16(c, 0x26)?,
            prefetch_base_upper: rd32(c, 0x28)?,
            prefetch_limit_upper: rd32(c, 0x2c)?,
            io_base_upper: rd16(c, 0x30)?,
            io_limit_upper: rd16(c, 0x32)?,
            reserved: bytes(c, 0x35)?,
            expansion_rom: rd32(c, 0x38)?,
            bridge_control: rd16(c, 0x3e)?,
        })
    }

    fn encode(&self, c: &mut [u8]) -> Option<()> {
        wr32(c, 0x10, self.bars[0])?;
        wr32(c, 0x14, self.bars[1])?;
        let buses = [
            self.primary_bus,
            self.secondary_bus,
            self.subordinate_bus,
            self.secondary_latency,
        ];
        c.get_mut(0x18..0x1c)?.copy_from_slice(&buses);
        wr8(c, 0x1c, self.io_base)?;
        wr8(c, 0x1d, self.io_limit)?;
        wr16(c, 0x1e, self.secondary_status)?;
        wr16(c, 0x20, self.memory_base)?;
        wr16(c, 0x22, self.memory_limit)?;
        wr16(c, 0x24, self.prefetch_base)?;
        wr16(c, 0x26, self.prefetch_limit)?;
        wr32(c, 0x28, self.prefetch_base_upper)?;
        wr32(c, 0x2c, self.prefetch_limit_upper)?;
        wr16(c, 0x30, self.io_base_upper)?;
        wr16(c, 0x32, self.io_limit_upper)?;
        c.get_mut(0x35..0x38)?.copy_from_slice(&self.reserved);
        wr32(c, 0x38, self.expansion_rom)?;
        wr16(c, 0x3e, self.bridge_control)
    }
}

impl HeaderKind {
    fn decode(c: &[u8], layout: u8) -> Option<Self> {
        Some(match layout {
            0 => Self::Endpoint(Type0::decode(c)?),
            1 => Self::Bridge(Type1::decode(c)?),
            _ => Self::Other {
                layout,
                raw: bytes(c, 0x10)?,
            },
        })
    }

    /// The 7-bit layout value (0x0e bits 6:0).
    pub fn layout(&self) -> u8 {
        match self {
            Self::Endpoint(_) => 0,
            Self::Bridge(_) => 1,
            Self::Other { layout, .. } => layout & 0x7f,
        }
    }

    fn encode(&self, c: &mut [u8]) -> Option<()> {
        match self {
            Self::Endpoint(t) => t.encode(c),
            Self::Bridge(t) => t.encode(c),
            Self::Other { raw, .. } => {
                c.get_mut(0x10..0x40)?.copy_from_slice(raw);
                Some(())
            }
        }
    }
}

impl Header {
    /// Decodes the header; `None` when `cfg` is shorter than 64 bytes.
    pub fn decode(c: &[u8]) -> Option<Self> {
        let ht = rd8(c, 0x0e)?;
        let class = rd32(c, 0x08)? >> 8;
        Some(Self {
            vendor_id: rd16(c, 0x00)?,
            device_id: rd16(c, 0x02)?,
            command: rd16(c, 0x04)?,
            status: rd16(c, 0x06)?,
            revision: rd8(c, 0x08)?,
            class,
            cache_line_size: rd8(c, 0x0c)?,
            latency_timer: rd8(c, 0x0d)?,
            multi_function: ht & 0x80 != 0,
            bist: rd8(c, 0x0f)?,
            cap_ptr: rd8(c, 0x34)?,
            interrupt_line: rd8(c, 0x3c)?,
            interrupt_pin: rd8(c, 0x3d)?,
            kind: HeaderKind::decode(c, ht & 0x7f)?,
        })
    }

    /// Encodes into the first 64 bytes of `c`; `None` (possibly partly written) when `c` is
    /// shorter than 64 bytes.
    pub fn encode(&self, c: &mut [u8]) -> Option<()> {
        self.kind.encode(c.get_mut(..HEADER_LEN)?)?;
        wr16(c, 0x00, self.vendor_id)?;
        wr16(c, 0x02, self.device_id)?;
        wr16(c, 0x04, self.command)?;
        wr16(c, 0x06, self.status)?;
        wr32(
            c,
            0x08,
            u32::from(self.revision) | (self.class & 0xff_ffff) << 8,
        )?;
        wr8(c, 0x0c, self.cache_line_size)?;
        wr8(c, 0x0d, self.latency_timer)?;
        wr8(
            c,
            0x0e,
            self.kind.layout() | u8::from(self.multi_function) << 7,
        )?;
        wr8(c, 0x0f, self.bist)?;
        wr8(c, 0x34, self.cap_ptr)?;
        wr8(c, 0x3c, self.interrupt_line)?;
        wr8(c, 0x3d, self.interrupt_pin)
    }

    /// The 64 header bytes.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        // A 64-byte buffer always holds the header.
        let _ = self.encode(&mut b);
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_short_input_is_none() {
        assert_eq!(Header::decode(&[0u8; 63]), None);
    }

    #[test]
    fn header_type1_buses_decode_and_round_trip() {
        let mut c = [0u8; 64];
        c[0x0e] = 0x81;
        c[0x18..0x1b].copy_from_slice(&[0, 1, 3]);
        let h = Header::decode(&c).expect("64 bytes");
        let HeaderKind::Bridge(b) = h.kind else {
            panic!("not a bridge: {h:?}")
        };
        assert_eq!((b.secondary_bus, b.subordinate_bus), (1, 3));
        assert!(h.multi_function);
        assert_eq!(h.to_bytes(), c);
    }
}
