//! The TPH Requester extended capability (ID 0x17): Capability and Control registers, the
//! in-capability ST table, and the requester type the core negotiates on enable.

use crate::bytes::{rd16, rd32, wr16, wr32};
use crate::Error;

/// Offset of the TPH Requester Capability register from the capability start.
pub const TPH_CAP: usize = 0x4;
/// Offset of the TPH Requester Control register.
pub const TPH_CTRL: usize = 0x8;
/// Offset of the first ST table entry (when the table lives in the capability).
pub const TPH_TABLE: usize = 0xC;
/// Most entries a table in the capability may hold.
pub const TPH_CAP_TABLE_MAX: u16 = 64;

/// `TryFrom<u8>` for a field enum: values wider than the field are an error; every in-range
/// value decodes, reserved ones to the explicit reserved variant.
macro_rules! field_try_from {
    ($ty:ty, $name:literal, $bits:literal) => {
        impl TryFrom<u8> for $ty {
            type Error = Error;

            fn try_from(v: u8) -> Result<Self, Error> {
                if u32::from(v) >> $bits != 0 {
                    return Err(Error::FieldRange {
                        field: $name,
                        bits: $bits,
                        value: v,
                    });
                }
                Ok(Self::from_field(v))
            }
        }
    };
}

field_try_from!(StLocation, "ST Table Location", 2);
field_try_from!(StMode, "ST Mode Select", 3);
field_try_from!(ReqEnable, "TPH Requester Enable", 2);
field_try_from!(CompleterSupport, "TPH Completer Supported", 2);

/// ST Table Location, capability bits 10:9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum StLocation {
    /// 0: no steering table.
    None,
    /// 1: table inside the TPH capability.
    Capability,
    /// 2: table in the MSI-X table (Vector Control 31:16).
    MsiX,
    /// 3: reserved encoding.
    Reserved(u8),
}

impl StLocation {
    /// Decodes the 2-bit field value.
    pub fn from_field(v: u8) -> Self {
        match v & 3 {
            0 => Self::None,
            1 => Self::Capability,
            2 => Self::MsiX,
            n => Self::Reserved(n),
        }
    }

    /// The 2-bit field value.
    pub fn field(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Capability => 1,
            Self::MsiX => 2,
            Self::Reserved(n) => n & 3,
        }
    }

    /// The field in its register position (bits 10:9): the `PCI_TPH_LOC_*` values
    /// (0x000, 0x200, 0x400, 0x600) that `pcie_tph_get_st_table_loc()` returns since the v7 fix.
    pub fn register_bits(self) -> u32 {
        u32::from(self.field()) << 9
    }
}

/// ST Mode Select, Control bits 2:0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum StMode {
    /// 0: No ST mode.
    NoSt,
    /// 1: Interrupt Vector mode.
    InterruptVector,
    /// 2: Device Specific mode.
    DeviceSpecific,
    /// 3..=7: reserved encodings.
    Reserved(u8),
}

impl StMode {
    /// Decodes the 3-bit field value.
    pub fn from_field(v: u8) -> Self {
        match v & 7 {
            0 => Self::NoSt,
            1 => Self::InterruptVector,
            2 => Self::DeviceSpecific,
            n => Self::Reserved(n),
        }
    }

    /// The 3-bit field value.
    pub fn field(self) -> u8 {
        match self {
            Self::NoSt => 0,
            Self::InterruptVector => 1,
            Self::DeviceSpecific => 2,
            Self::Reserved(n) => n & 7,
        }
    }
}

/// TPH Requester Enable, Control bits 9:8 (also the "requester type" the core negotiates).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum ReqEnable {
    /// 0: requests without TPH.
    Disabled,
    /// 1: TPH only (8-bit tags).
    Tph,
    /// 2: reserved encoding.
    Reserved,
    /// 3: TPH and extended TPH (16-bit tags).
    ExtTph,
}

impl ReqEnable {
    /// Decodes the 2-bit field value.
    pub fn from_field(v: u8) -> Self {
        match v & 3 {
            0 => Self::Disabled,
            1 => Self::Tph,
            2 => Self::Reserved,
            _ => Self::ExtTph,
        }
    }

    /// The 2-bit field value.
    pub fn field(self) -> u8 {
        match self {
            Self::Disabled => 0,
            Self::Tph => 1,
            Self::Reserved => 2,
            Self::ExtTph => 3,
        }
    }
}

/// The TPH Requester Capability register (+0x4), decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TphCapability {
    /// Bit 0: No ST mode supported.
    pub no_st: bool,
    /// Bit 1: Interrupt Vector mode supported.
    pub iv: bool,
    /// Bit 2: Device Specific mode supported.
    pub ds: bool,
    /// Bit 8: Extended TPH requester supported.
    pub ext: bool,
    /// Bits 10:9.
    pub location: StLocation,
    /// Bits 26:16 plus one: the number of ST table entries (1..=2048).
    pub table_size: u16,
    /// Bits the decoder does not name (kept so that encoding round-trips).
    pub other_bits: u32,
}

const CAP_KNOWN: u32 = 0x7 | 0x100 | 0x600 | 0x07ff_0000;

impl TphCapability {
    /// Decodes the register value.
    pub fn from_bits(v: u32) -> Self {
        Self {
            no_st: v & 1 != 0,
            iv: v & 2 != 0,
            ds: v & 4 != 0,
            ext: v & 0x100 != 0,
            location: StLocation::from_field(((v >> 9) & 3) as u8),
            table_size: ((v >> 16) & 0x7ff) as u16 + 1,
            other_bits: v & !CAP_KNOWN,
        }
    }

    /// Encodes back to the register value.
    pub fn to_bits(&self) -> u32 {
        let size = u32::from(self.table_size.clamp(1, 2048) - 1);
        u32::from(self.no_st)
            | u32::from(self.iv) << 1
            | u32::from(self.ds) << 2
            | u32::from(self.ext) << 8
            | u32::from(self.location.field()) << 9
            | size << 16
            | (self.other_bits & !CAP_KNOWN)
    }

    /// The mode bits 2:0 as the core's `get_st_modes()` returns them.
    pub fn modes(&self) -> u8 {
        (self.to_bits() & 7) as u8
    }
}

/// The TPH Requester Control register (+0x8), decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TphControl {
    /// Bits 2:0.
    pub mode: StMode,
    /// Bits 9:8.
    pub enable: ReqEnable,
    /// Bits the decoder does not name (reserved; kept for round-trips).
    pub other_bits: u32,
}

const CTRL_KNOWN: u32 = 0x7 | 0x300;

impl TphControl {
    /// The Control value selecting `mode` with requester enable `enable`, every other bit 0.
    ///
    /// ```
    /// use tph_regs::tph::{ReqEnable, StMode, TphControl};
    /// assert_eq!(TphControl::new(StMode::InterruptVector, ReqEnable::Tph).to_bits(), 0x101);
    /// ```
    pub const fn new(mode: StMode, enable: ReqEnable) -> Self {
        Self {
            mode,
            enable,
            other_bits: 0,
        }
    }

    /// The same value selecting `mode` (the other bits as they were).
    #[must_use]
    pub const fn with_mode(mut self, mode: StMode) -> Self {
        self.mode = mode;
        self
    }

    /// The same value with requester enable `enable` (the other bits as they were).
    ///
    /// ```
    /// use tph_regs::tph::{ReqEnable, TphControl};
    /// let off = TphControl::from_bits(0x0101).with_enable(ReqEnable::Disabled);
    /// assert_eq!(off.to_bits(), 0x0001);
    /// ```
    #[must_use]
    pub const fn with_enable(mut self, enable: ReqEnable) -> Self {
        self.enable = enable;
        self
    }

    /// Decodes the register value.
    pub fn from_bits(v: u32) -> Self {
        Self {
            mode: StMode::from_field((v & 7) as u8),
            enable: ReqEnable::from_field(((v >> 8) & 3) as u8),
            other_bits: v & !CTRL_KNOWN,
        }
    }

    /// Encodes back to the register value.
    pub fn to_bits(&self) -> u32 {
        u32::from(self.mode.field())
            | u32::from(self.enable.field()) << 8
            | (self.other_bits & !CTRL_KNOWN)
    }
}

/// TPH Completer Supported, PCI Express DevCap2 bits 13:12.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum CompleterSupport {
    /// 0: no TPH completer.
    None,
    /// 1: TPH only.
    Tph,
    /// 2: reserved.
    Reserved,
    /// 3: TPH and extended TPH.
    TphAndExt,
}

impl CompleterSupport {
    /// Decodes from the whole DevCap2 register.
    pub fn from_devcap2(devcap2: u32) -> Self {
        match (devcap2 >> 12) & 3 {
            0 => Self::None,
            1 => Self::Tph,
            2 => Self::Reserved,
            _ => Self::TphAndExt,
        }
    }

    /// Decodes the 2-bit field value.
    pub fn from_field(v: u8) -> Self {
        Self::from_devcap2(u32::from(v & 3) << 12)
    }

    /// The 2-bit field value.
    pub fn field(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Tph => 1,
            Self::Reserved => 2,
            Self::TphAndExt => 3,
        }
    }
}

/// Where a function sits, as far as the enable-time completer check is concerned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(
    feature = "serde",
    serde(tag = "kind", content = "completer", rename_all = "snake_case")
)]
#[non_exhaustive]
pub enum Upstream {
    /// A Root Complex integrated endpoint: no root port check.
    RcIntegrated,
    /// Below a root port whose DevCap2 reports this completer support.
    RootPort(CompleterSupport),
    /// No root port found above the function (the kernel then uses completer type 0).
    NoRootPort,
}

/// Why the core would refuse `enable` (pci-tph-core.md section 2, enable steps 4 and 6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[cfg_attr(feature = "serde", serde(tag = "kind", rename_all = "snake_case"))]
#[non_exhaustive]
pub enum EnableRefusal {
    /// Step 4: the requested mode bit is not set in capability bits 2:0.
    #[error("mode {mode} is not supported by the capability (EINVAL)")]
    ModeNotSupported {
        /// The mode asked for (after `& 7`).
        mode: u8,
    },
    /// Step 5/6: no root port above the function, so the requester type becomes 0.
    #[error("no root port above the function: requester type 0 (EINVAL)")]
    NoRootPort,
    /// Step 5/6: the root port reports no TPH completer, so the requester type becomes 0.
    #[error("the root port has no TPH completer: requester type 0 (EINVAL)")]
    NoCompleter,
}

/// The requester type the core would program on enable (pci-tph-core.md section 2, enable
/// steps 5-6): 3 if extended TPH is supported, else 1; unless the function is a Root Complex
/// integrated endpoint, the minimum of that and the root port's completer field (no root port
/// gives 0); 0 refuses. A root port reporting the reserved completer value 2 yields
/// [`ReqEnable::Reserved`], which the core would write as is.
pub fn negotiate(cap: &TphCapability, upstream: Upstream) -> Result<ReqEnable, EnableRefusal> {
    let own: u8 = if cap.ext { 3 } else { 1 };
    let limit = match upstream {
        Upstream::RcIntegrated => own,
        Upstream::RootPort(c) => c.field(),
        Upstream::NoRootPort => 0,
    };
    match (own.min(limit), upstream) {
        (0, Upstream::NoRootPort) => Err(EnableRefusal::NoRootPort),
        (0, _) => Err(EnableRefusal::NoCompleter),
        (t, _) => Ok(ReqEnable::from_field(t)),
    }
}

/// [`negotiate`] preceded by the mode check of enable step 4 (`mode & 7` must be a supported
/// mode bit; No-ST is not special-cased).
pub fn negotiate_enable(
    cap: &TphCapability,
    mode: u8,
    upstream: Upstream,
) -> Result<ReqEnable, EnableRefusal> {
    let mode = mode & 7;
    if mode >= 3 || cap.modes() & (1 << mode) == 0 {
        return Err(EnableRefusal::ModeNotSupported { mode });
    }
    negotiate(cap, upstream)
}

/// The whole TPH Requester capability of one function, decoded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TphRequester {
    /// Offset of the capability header.
    pub offset: u16,
    /// Capability version (header bits 19:16).
    pub version: u8,
    /// Next capability pointer (header bits 31:20).
    pub next: u16,
    /// The Capability register.
    pub cap: TphCapability,
    /// The Control register.
    pub control: TphControl,
    /// ST table entries held in the capability (empty unless location = capability); at most
    /// 64 even when the size field claims more.
    pub table: Vec<u16>,
    /// Whether the configuration bytes read end before the last entry.
    pub table_truncated: bool,
}

impl TphRequester {
    /// Finds the first TPH Requester capability in the extended list and decodes it.
    pub fn find(cfg: &[u8]) -> Option<Result<Self, Error>> {
        crate::caps::find_ext_cap(cfg, crate::caps::EXT_CAP_ID_TPH).map(|o| Self::decode(cfg, o))
    }

    /// Decodes the capability at `offset`; an error when its registers lie beyond `cfg`.
    pub fn decode(cfg: &[u8], offset: usize) -> Result<Self, Error> {
        let truncated = |what| Error::Truncated {
            what,
            offset,
            len: cfg.len(),
        };
        let header = rd32(cfg, offset).ok_or_else(|| truncated("TPH capability header"))?;
        let cap = rd32(cfg, offset.saturating_add(TPH_CAP))
            .ok_or_else(|| truncated("TPH Capability register"))?;
        let ctrl = rd32(cfg, offset.saturating_add(TPH_CTRL))
            .ok_or_else(|| truncated("TPH Control register"))?;
        let cap = TphCapability::from_bits(cap);
        let (table, table_truncated) = read_table(cfg, offset, &cap);
        Ok(Self {
            offset: offset as u16,
            version: ((header >> 16) & 0xf) as u8,
            next: ((header >> 20) & 0xffc) as u16,
            cap,
            control: TphControl::from_bits(ctrl),
            table,
            table_truncated,
        })
    }

    /// Writes header, registers and in-capability table entries back into `cfg`.
    pub fn encode(&self, cfg: &mut [u8]) -> Result<(), Error> {
        let offset = usize::from(self.offset);
        let header = u32::from(crate::caps::EXT_CAP_ID_TPH)
            | u32::from(self.version & 0xf) << 16
            | u32::from(self.next & 0xffc) << 20;
        let fits = wr32(cfg, offset, header)
            .and_then(|()| wr32(cfg, offset + TPH_CAP, self.cap.to_bits()))
            .and_then(|()| wr32(cfg, offset + TPH_CTRL, self.control.to_bits()))
            .and_then(|()| {
                self.table
                    .iter()
                    .enumerate()
                    .try_for_each(|(i, e)| wr16(cfg, offset + TPH_TABLE + 2 * i, *e))
            });
        fits.ok_or(Error::Truncated {
            what: "TPH capability",
            offset,
            len: cfg.len(),
        })
    }

    /// Length in bytes of the capability structure (0xC, plus 2 per in-capability entry).
    pub fn len(&self) -> usize {
        TPH_TABLE + 2 * self.table.len()
    }

    /// Whether the structure holds no table (length 0xC).
    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

fn read_table(cfg: &[u8], offset: usize, cap: &TphCapability) -> (Vec<u16>, bool) {
    if cap.location != StLocation::Capability {
        return (Vec::new(), false);
    }
    let n = usize::from(cap.table_size.min(TPH_CAP_TABLE_MAX));
    let table: Vec<u16> = (0..n)
        .map_while(|i| rd16(cfg, offset.saturating_add(TPH_TABLE + 2 * i)))
        .collect();
    let truncated = table.len() < n;
    (table, truncated)
}

/// ST lower byte of a capability table entry (bits 7:0).
pub fn st_lower(entry: u16) -> u8 {
    (entry & 0xff) as u8
}

/// ST upper byte of a capability table entry (bits 15:8, used with extended TPH only).
pub fn st_upper(entry: u16) -> u8 {
    (entry >> 8) as u8
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(ext: bool) -> TphCapability {
        TphCapability::from_bits(0x0000_0205 | u32::from(ext) << 8)
    }

    #[test]
    fn field_enums_try_from_round_trip_in_range_and_reject_wider() {
        for v in 0..8u8 {
            assert_eq!(StMode::try_from(v).map(StMode::field).ok(), Some(v));
        }
        for v in 0..4u8 {
            assert_eq!(StLocation::try_from(v).map(StLocation::field).ok(), Some(v));
            assert_eq!(ReqEnable::try_from(v).map(ReqEnable::field).ok(), Some(v));
            assert_eq!(
                CompleterSupport::try_from(v)
                    .map(CompleterSupport::field)
                    .ok(),
                Some(v)
            );
        }
        assert_eq!(StLocation::try_from(3).ok(), Some(StLocation::Reserved(3)));
        assert!(StMode::try_from(8).is_err());
        assert!(ReqEnable::try_from(4).is_err());
        assert!(StLocation::try_from(0xff).is_err());
    }

    #[test]
    fn negotiate_rciep_ignores_root_port_and_uses_ext() {
        assert_eq!(
            negotiate(&cap(true), Upstream::RcIntegrated),
            Ok(ReqEnable::ExtTph)
        );
        assert_eq!(
            negotiate(&cap(false), Upstream::RcIntegrated),
            Ok(ReqEnable::Tph)
        );
    }

    #[test]
    fn negotiate_root_port_without_completer_refuses() {
        let up = Upstream::RootPort(CompleterSupport::None);
        assert_eq!(negotiate(&cap(false), up), Err(EnableRefusal::NoCompleter));
        assert_eq!(
            negotiate(&cap(true), Upstream::NoRootPort),
            Err(EnableRefusal::NoRootPort)
        );
    }

    #[test]
    fn negotiate_takes_minimum_with_completer_including_reserved() {
        let tph_only = Upstream::RootPort(CompleterSupport::Tph);
        assert_eq!(negotiate(&cap(true), tph_only), Ok(ReqEnable::Tph));
        let reserved = Upstream::RootPort(CompleterSupport::Reserved);
        assert_eq!(negotiate(&cap(true), reserved), Ok(ReqEnable::Reserved));
        assert_eq!(negotiate(&cap(false), reserved), Ok(ReqEnable::Tph));
    }

    #[test]
    fn negotiate_enable_unsupported_mode_refuses_first() {
        // cap(false) supports No-ST and DS (bits 0 and 2), not IV.
        let r = negotiate_enable(&cap(false), 1, Upstream::RcIntegrated);
        assert_eq!(r, Err(EnableRefusal::ModeNotSupported { mode: 1 }));
        assert_eq!(
            negotiate_enable(&cap(false), 8 | 2, Upstream::RcIntegrated),
            Ok(ReqEnable::Tph)
        );
    }

    #[test]
    fn requester_dsa_bytes_decode_entries() {
        // Intel DSA capability at 0x160 as dumped: DS, table in capability with 2 entries,
        // Control 0x102 (DS, TPH only), entries 0x0000 and 0x000a.
        let mut cfg = vec![0u8; 0x180];
        cfg[0x160..0x170].copy_from_slice(&[
            0x17, 0x00, 0x01, 0x17, 0x05, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00,
            0x0a, 0x00,
        ]);
        let t = TphRequester::decode(&cfg, 0x160).expect("fits");
        assert_eq!((t.version, t.next), (1, 0x170));
        assert_eq!(t.control.mode, StMode::DeviceSpecific);
        assert_eq!(t.control.enable, ReqEnable::Tph);
        assert_eq!(t.table, vec![0x0000, 0x000a]);
        let mut out = vec![0u8; 0x180];
        t.encode(&mut out).expect("fits");
        assert_eq!(out[0x160..0x170], cfg[0x160..0x170]);
    }

    #[test]
    fn requester_offset_near_usize_max_is_error_not_overflow() {
        assert!(TphRequester::decode(&[0u8; 16], usize::MAX - 1).is_err());
        assert!(crate::msix::MsixCap::decode(&[0u8; 16], usize::MAX - 1).is_none());
    }

    #[test]
    fn requester_near_end_is_truncation_error_or_flag() {
        let mut cfg = vec![0u8; 4096];
        cfg[0xff8..0xffc].copy_from_slice(&0x0001_0017u32.to_le_bytes());
        assert!(TphRequester::decode(&cfg, 0xff8).is_err());
        // Table of 64 entries at 0xf00 needs 0xf0c + 128 > 0x1000? no: fits; use 0xfa0.
        cfg[0xfa4..0xfa8].copy_from_slice(&0x003f_0200u32.to_le_bytes());
        let t = TphRequester::decode(&cfg, 0xfa0).expect("registers fit");
        assert!(t.table_truncated);
        assert_eq!(t.table.len(), (0x1000 - 0xfac) / 2);
    }
}
