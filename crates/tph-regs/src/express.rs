//! The PCI Express capability (ID 0x10): device/port type and the DevCap2 TPH completer field.

use crate::bytes::{rd16, rd32, wr16, wr32};
use crate::caps::{find_cap, CAP_ID_EXP, EXP_DEVCAP2, EXP_FLAGS};
use crate::tph::CompleterSupport;

/// Device/Port Type, PCI Express Capabilities register bits 7:4.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum PortType {
    /// 0: PCI Express Endpoint.
    Endpoint,
    /// 1: Legacy PCI Express Endpoint.
    LegacyEndpoint,
    /// 4: Root Port of a Root Complex.
    RootPort,
    /// 5: Upstream Port of a switch.
    UpstreamPort,
    /// 6: Downstream Port of a switch.
    DownstreamPort,
    /// 7: PCI Express to PCI/PCI-X bridge.
    PcieToPciBridge,
    /// 8: PCI/PCI-X to PCI Express bridge.
    PciToPcieBridge,
    /// 9: Root Complex Integrated Endpoint.
    RcIntegratedEndpoint,
    /// 10: Root Complex Event Collector.
    RcEventCollector,
    /// Any other value.
    Reserved(u8),
}

impl PortType {
    /// The type in PCI Express Capabilities (Flags) bits 7:4.
    pub fn from_exp_flags(flags: u16) -> Self {
        Self::from_field(((flags >> 4) & 0xf) as u8)
    }

    /// Decodes the 4-bit field.
    pub fn from_field(v: u8) -> Self {
        match v & 0xf {
            0 => Self::Endpoint,
            1 => Self::LegacyEndpoint,
            4 => Self::RootPort,
            5 => Self::UpstreamPort,
            6 => Self::DownstreamPort,
            7 => Self::PcieToPciBridge,
            8 => Self::PciToPcieBridge,
            9 => Self::RcIntegratedEndpoint,
            10 => Self::RcEventCollector,
            n => Self::Reserved(n),
        }
    }

    /// The 4-bit field value.
    pub fn field(self) -> u8 {
        match self {
            Self::Endpoint => 0,
            Self::LegacyEndpoint => 1,
            Self::RootPort => 4,
            Self::UpstreamPort => 5,
            Self::DownstreamPort => 6,
            Self::PcieToPciBridge => 7,
            Self::PciToPcieBridge => 8,
            Self::RcIntegratedEndpoint => 9,
            Self::RcEventCollector => 10,
            Self::Reserved(n) => n & 0xf,
        }
    }

    /// A short human name, as lspci words it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Endpoint => "Endpoint",
            Self::LegacyEndpoint => "Legacy Endpoint",
            Self::RootPort => "Root Port",
            Self::UpstreamPort => "Upstream Port",
            Self::DownstreamPort => "Downstream Port",
            Self::PcieToPciBridge => "PCI-Express to PCI/PCI-X Bridge",
            Self::PciToPcieBridge => "PCI/PCI-X to PCI-Express Bridge",
            Self::RcIntegratedEndpoint => "Root Complex Integrated Endpoint",
            Self::RcEventCollector => "Root Complex Event Collector",
            Self::Reserved(_) => "Unknown type",
        }
    }
}

impl TryFrom<u8> for PortType {
    type Error = crate::Error;

    /// Values wider than the 4-bit field are an error; unassigned ones decode to `Reserved`.
    fn try_from(v: u8) -> Result<Self, crate::Error> {
        if v > 0xf {
            return Err(crate::Error::FieldRange {
                field: "Device/Port Type",
                bits: 4,
                value: v,
            });
        }
        Ok(Self::from_field(v))
    }
}

/// The parts of the PCI Express capability TPH depends on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct ExpressCap {
    /// Offset of the capability in configuration space.
    pub offset: u16,
    /// The PCI Express Capabilities register (+0x2).
    pub flags: u16,
    /// Device Capabilities 2 (+0x24), `None` when it lies beyond the bytes read.
    pub devcap2: Option<u32>,
}

impl ExpressCap {
    /// Finds and decodes the capability; `None` when the function has none.
    pub fn find(cfg: &[u8]) -> Option<Self> {
        let offset = find_cap(cfg, CAP_ID_EXP)?;
        Some(Self {
            offset: offset as u16,
            flags: rd16(cfg, offset + EXP_FLAGS)?,
            devcap2: rd32(cfg, offset + EXP_DEVCAP2),
        })
    }

    /// Capability version, bits 3:0.
    pub fn version(&self) -> u8 {
        (self.flags & 0xf) as u8
    }

    /// Device/port type, bits 7:4.
    pub fn port_type(&self) -> PortType {
        PortType::from_exp_flags(self.flags)
    }

    /// TPH Completer Supported from DevCap2 (`None` when DevCap2 was not read).
    pub fn completer(&self) -> Option<CompleterSupport> {
        self.devcap2.map(CompleterSupport::from_devcap2)
    }

    /// Writes the flags and DevCap2 registers back into `cfg`; `None` when they do not fit.
    pub fn encode(&self, cfg: &mut [u8]) -> Option<()> {
        let off = usize::from(self.offset);
        wr16(cfg, off + EXP_FLAGS, self.flags)?;
        match self.devcap2 {
            Some(v) => wr32(cfg, off + EXP_DEVCAP2, v),
            None => Some(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_type_field_round_trips_all_values() {
        for v in 0..16u8 {
            assert_eq!(PortType::from_field(v).field(), v);
        }
    }

    #[test]
    fn express_cap_rciep_with_ext_completer_decodes() {
        let mut cfg = vec![0u8; 256];
        cfg[0x06] = 0x10;
        cfg[0x34] = 0x40;
        cfg[0x40] = CAP_ID_EXP;
        // Flags: version 2, type 9 (RCiEP).
        cfg[0x42] = 0x92;
        // DevCap2 bits 13:12 = 3: TPH and extended TPH completer.
        cfg[0x64..0x68].copy_from_slice(&0x3000u32.to_le_bytes());
        let e = ExpressCap::find(&cfg).expect("capability present");
        assert_eq!(e.port_type(), PortType::RcIntegratedEndpoint);
        assert_eq!(e.version(), 2);
        assert_eq!(e.completer(), Some(CompleterSupport::TphAndExt));
    }
}
