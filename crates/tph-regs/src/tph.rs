//! The TPH Requester extended capability (ID 0x17): Capability and Control registers.

/// Offset of the TPH Requester Capability register from the capability start.
pub const TPH_CAP: usize = 0x4;
/// Offset of the TPH Requester Control register.
pub const TPH_CTRL: usize = 0x8;
/// Offset of the first ST table entry (when the table lives in the capability).
pub const TPH_TABLE: usize = 0xC;
/// Most entries a table in the capability may hold.
pub const TPH_CAP_TABLE_MAX: u16 = 64;

/// ST Table Location, capability bits 10:9.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
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
}

/// ST Mode Select, Control bits 2:0.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize)]
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
