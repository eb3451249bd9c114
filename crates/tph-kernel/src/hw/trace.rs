//! What the emulated device reports: access trace entries, write effects, spec violations.

use std::fmt;

use tph_regs::tph::{ReqEnable, StMode, TphControl};

/// Why a write did not reach the register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Abort {
    /// A failure injected with [`super::Function::fail_write_after`] (models a device that
    /// stopped answering, e.g. surprise removal).
    Injected,
    /// Offset or vector outside the structure.
    OutOfRange,
    /// Width not 1, 2 or 4, or the access is not naturally aligned.
    Misaligned,
}

/// What a write changed, as the model and tests match on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Effect {
    /// No software-visible bit changed.
    NoChange,
    /// Bits changed in a register without a modelled side effect.
    Changed {
        /// Value before.
        old: u32,
        /// Value after.
        new: u32,
    },
    /// The TPH Requester Control register changed.
    TphControl {
        /// Decoded value before.
        old: TphControl,
        /// Decoded value after.
        new: TphControl,
    },
    /// An ST table entry in the TPH capability was written (first entry the write touches).
    StEntry {
        /// Entry index.
        index: u16,
        /// Entry before.
        old: u16,
        /// Entry after.
        new: u16,
    },
    /// MSI-X Message Control changed.
    MsixControl {
        /// MSI-X Enable after the write.
        enabled: bool,
        /// Function Mask after the write.
        function_mask: bool,
    },
    /// An MSI-X Vector Control dword was written.
    VectorControl {
        /// Vector number.
        vector: u16,
        /// Mask bit after the write.
        masked: bool,
        /// Steering tag (bits 31:16) after the write.
        st: u16,
    },
    /// Initiate Function Level Reset was written: every register returned to its reset value.
    FunctionReset,
    /// The write did not happen.
    Aborted(Abort),
}

impl Effect {
    /// True unless the write was aborted.
    pub fn is_ok(&self) -> bool {
        !matches!(self, Effect::Aborted(_))
    }
}

/// A violation of the PCIe TPH rules the device observed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Violation {
    /// An ST table entry was written while TPH Requester Enable was set (PCIe r6.2 sec 6.17.3).
    StWriteWhileEnabled {
        /// Entry (or MSI-X vector) index.
        index: u16,
    },
    /// A reserved ST Mode Select encoding (3..=7) was written to Control.
    ReservedStMode(u8),
    /// The reserved TPH Requester Enable encoding (2) was written to Control.
    ReservedRequesterEnable(u8),
    /// A steering tag was written to an MSI-X vector at or beyond ST Table Size.
    StIndexBeyondTable {
        /// Vector index written.
        index: u16,
        /// Entries the ST table has.
        size: u16,
    },
}

/// One hardware access as the device saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Access {
    /// Configuration read.
    ConfigRead {
        /// Byte offset.
        offset: u16,
        /// Width in bytes.
        width: u8,
        /// Value returned.
        value: u32,
    },
    /// Configuration write.
    ConfigWrite {
        /// Byte offset.
        offset: u16,
        /// Width in bytes.
        width: u8,
        /// Value written.
        value: u32,
        /// What it changed.
        effect: Effect,
    },
    /// MSI-X table read (BAR memory).
    MsixRead {
        /// Vector.
        vector: u16,
        /// Byte offset inside the 16-byte entry.
        offset: u8,
        /// Value returned.
        value: u32,
    },
    /// MSI-X table write (BAR memory).
    MsixWrite {
        /// Vector.
        vector: u16,
        /// Byte offset inside the 16-byte entry.
        offset: u8,
        /// Value written.
        value: u32,
        /// What it changed.
        effect: Effect,
    },
}

fn mode_name(m: StMode) -> String {
    match m {
        StMode::NoSt => "NS".into(),
        StMode::InterruptVector => "IV".into(),
        StMode::DeviceSpecific => "DS".into(),
        StMode::Reserved(n) => format!("Reserved ({n})"),
        other => format!("unknown ({other:?})"),
    }
}

fn enable_name(e: ReqEnable) -> String {
    match e {
        ReqEnable::Disabled => "off".into(),
        ReqEnable::Tph => "TPH".into(),
        ReqEnable::Reserved => "Reserved (2)".into(),
        ReqEnable::ExtTph => "TPH+ExtTPH".into(),
        other => format!("unknown ({other:?})"),
    }
}

fn ctrl(c: &TphControl) -> String {
    format!("{} {}", mode_name(c.mode), enable_name(c.enable))
}

impl fmt::Display for Effect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Effect::NoChange => write!(f, "no change"),
            Effect::Changed { old, new } => write!(f, "{old:#x} -> {new:#x}"),
            Effect::TphControl { old, new } => {
                write!(f, "TPH Control: {} -> {}", ctrl(old), ctrl(new))
            }
            Effect::StEntry { index, old, new } => {
                write!(f, "ST[{index}]: {old:#06x} -> {new:#06x}")
            }
            Effect::MsixControl {
                enabled,
                function_mask,
            } => write!(
                f,
                "MSI-X Enable{} Masked{}",
                pm(*enabled),
                pm(*function_mask)
            ),
            Effect::VectorControl { vector, masked, st } => {
                write!(f, "vector {vector}: Masked{} ST {st:#06x}", pm(*masked))
            }
            Effect::FunctionReset => write!(f, "function level reset"),
            Effect::Aborted(a) => write!(f, "aborted ({a:?})"),
        }
    }
}

fn pm(b: bool) -> char {
    if b {
        '+'
    } else {
        '-'
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Access::ConfigRead {
                offset,
                width,
                value,
            } => write!(f, "cfg  rd {offset:#05x}/{width} = {value:#x}"),
            Access::ConfigWrite {
                offset,
                width,
                value,
                effect,
            } => write!(f, "cfg  wr {offset:#05x}/{width} <- {value:#x}: {effect}"),
            Access::MsixRead {
                vector,
                offset,
                value,
            } => write!(f, "msix rd vec {vector} +{offset:#x} = {value:#x}"),
            Access::MsixWrite {
                vector,
                offset,
                value,
                effect,
            } => write!(
                f,
                "msix wr vec {vector} +{offset:#x} <- {value:#x}: {effect}"
            ),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Violation::StWriteWhileEnabled { index } => {
                write!(f, "ST entry {index} written while TPH Requester Enable set")
            }
            Violation::ReservedStMode(n) => write!(f, "reserved ST Mode Select {n} written"),
            Violation::ReservedRequesterEnable(n) => {
                write!(f, "reserved TPH Requester Enable {n} written")
            }
            Violation::StIndexBeyondTable { index, size } => {
                write!(
                    f,
                    "ST written to vector {index} beyond a {size}-entry table"
                )
            }
        }
    }
}
