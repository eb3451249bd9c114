//! Machines: the set of functions with their configuration space, and the bus topology that
//! tells every endpoint its root port (or that it is a Root Complex integrated endpoint).

use std::fmt;
use std::str::FromStr;

use crate::express::{ExpressCap, PortType};
use crate::header::{Header, HeaderKind};
use crate::Error;

/// A PCI function address: domain, bus, device, function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
pub struct Bdf {
    /// PCI domain (segment).
    pub domain: u16,
    /// Bus number.
    pub bus: u8,
    /// Device number (0..=31).
    pub device: u8,
    /// Function number (0..=7).
    pub function: u8,
}

impl Bdf {
    /// Builds a BDF; `None` when device > 31 or function > 7.
    pub fn new(domain: u16, bus: u8, device: u8, function: u8) -> Option<Self> {
        (device < 32 && function < 8).then_some(Self {
            domain,
            bus,
            device,
            function,
        })
    }

    /// The address as lspci prints it: with the domain only when `show_domain`.
    pub fn lspci_str(&self, show_domain: bool) -> String {
        let short = format!("{:02x}:{:02x}.{:x}", self.bus, self.device, self.function);
        if show_domain {
            format!("{:04x}:{short}", self.domain)
        } else {
            short
        }
    }
}

impl fmt::Display for Bdf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lspci_str(true))
    }
}

fn hex_field<T: TryFrom<u32>>(s: &str, max_len: usize) -> Option<T> {
    let ok = !s.is_empty() && s.len() <= max_len && s.bytes().all(|b| b.is_ascii_hexdigit());
    ok.then(|| u32::from_str_radix(s, 16).ok())
        .flatten()
        .and_then(|v| T::try_from(v).ok())
}

fn parse_bdf(s: &str) -> Option<Bdf> {
    let (rest, func) = s.rsplit_once('.')?;
    let mut parts = rest.rsplitn(3, ':');
    let device = hex_field::<u8>(parts.next()?, 2)?;
    let bus = hex_field::<u8>(parts.next()?, 2)?;
    let domain = match parts.next() {
        Some(d) => hex_field::<u16>(d, 4)?,
        None => 0,
    };
    Bdf::new(domain, bus, device, hex_field::<u8>(func, 1)?)
}

impl FromStr for Bdf {
    type Err = Error;

    /// Accepts `BB:DD.F` and `DDDD:BB:DD.F`, hexadecimal, as lspci prints them.
    fn from_str(s: &str) -> Result<Self, Error> {
        parse_bdf(s).ok_or_else(|| Error::BadBdf(s.to_owned()))
    }
}

/// One function and the configuration bytes read from it (64, 256 or 4096 of them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Function {
    /// Its address.
    pub bdf: Bdf,
    /// Configuration space as read.
    pub config: Vec<u8>,
}

impl Function {
    /// The decoded header, `None` when fewer than 64 bytes were read.
    pub fn header(&self) -> Option<Header> {
        Header::decode(&self.config)
    }

    /// The PCI Express capability, if any.
    pub fn express(&self) -> Option<ExpressCap> {
        ExpressCap::find(&self.config)
    }

    /// The PCI Express device/port type, if the function has the capability.
    pub fn port_type(&self) -> Option<PortType> {
        self.express().map(|e| e.port_type())
    }

    /// Whether it is a Root Complex integrated endpoint.
    pub fn is_rciep(&self) -> bool {
        self.port_type() == Some(PortType::RcIntegratedEndpoint)
    }

    /// Secondary and subordinate bus numbers when it is a bridge (type-1 header).
    pub fn bridge_buses(&self) -> Option<(u8, u8)> {
        match self.header()?.kind {
            HeaderKind::Bridge(b) => Some((b.secondary_bus, b.subordinate_bus)),
            _ => None,
        }
    }
}

/// A machine: its functions, in the order they were read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Machine {
    /// Every function.
    pub functions: Vec<Function>,
}

/// Longest bridge chain followed upwards (one bridge per bus at most).
const MAX_DEPTH: usize = 256;

impl Machine {
    /// The function at `bdf`.
    pub fn function(&self, bdf: Bdf) -> Option<&Function> {
        self.functions.iter().find(|f| f.bdf == bdf)
    }

    /// Functions sorted by address, as lspci lists them.
    pub fn sorted(&self) -> Vec<&Function> {
        let mut v: Vec<&Function> = self.functions.iter().collect();
        v.sort_by_key(|f| f.bdf);
        v
    }

    /// Whether lspci would print domains: when any function has a non-zero domain.
    pub fn shows_domains(&self) -> bool {
        self.functions.iter().any(|f| f.bdf.domain != 0)
    }

    /// The bridge directly above `bdf`: the one whose secondary bus is `bdf`'s bus, else the
    /// narrowest bridge whose secondary..=subordinate range covers it.
    pub fn parent_bridge(&self, bdf: Bdf) -> Option<Bdf> {
        let covering = self
            .functions
            .iter()
            .filter(|f| f.bdf != bdf && f.bdf.domain == bdf.domain);
        let mut best: Option<(u16, Bdf)> = None;
        for f in covering {
            let Some((sec, sub)) = f.bridge_buses() else {
                continue;
            };
            if sec == 0 || sec > bdf.bus || bdf.bus > sub {
                continue;
            }
            let width = if sec == bdf.bus {
                0
            } else {
                u16::from(sub - sec) + 1
            };
            if !matches!(best, Some((w, _)) if w <= width) {
                best = Some((width, f.bdf));
            }
        }
        best.map(|(_, b)| b)
    }

    /// The bridges above `bdf`, nearest first (bounded; stops on a cycle).
    pub fn upstream_bridges(&self, bdf: Bdf) -> Vec<Bdf> {
        let mut chain = Vec::new();
        let mut cur = bdf;
        while chain.len() < MAX_DEPTH {
            match self.parent_bridge(cur) {
                Some(p) if p != bdf && !chain.contains(&p) => {
                    chain.push(p);
                    cur = p;
                }
                _ => break,
            }
        }
        chain
    }

    /// The root port above `bdf` (walking bridges by secondary/subordinate bus numbers);
    /// `None` for a Root Complex integrated endpoint or when no root port covers its bus.
    pub fn root_port_of(&self, bdf: Bdf) -> Option<Bdf> {
        if self.function(bdf).is_some_and(Function::is_rciep) {
            return None;
        }
        self.upstream_bridges(bdf)
            .into_iter()
            .find(|b| self.function(*b).and_then(Function::port_type) == Some(PortType::RootPort))
    }

    /// Whether the function at `bdf` is a Root Complex integrated endpoint.
    pub fn is_rciep(&self, bdf: Bdf) -> bool {
        self.function(bdf).is_some_and(Function::is_rciep)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bdf(s: &str) -> Bdf {
        s.parse().expect("valid test BDF")
    }

    #[test]
    fn bdf_parse_with_and_without_domain_agree() {
        assert_eq!(bdf("19:00.0"), bdf("0000:19:00.0"));
        assert_eq!(bdf("0001:6a:1f.7").to_string(), "0001:6a:1f.7");
        assert_eq!(bdf("6a:01.0").lspci_str(false), "6a:01.0");
    }

    /// Fixture builder: a function with a PCI Express capability of `port_type`, and bus
    /// numbers when `buses` is given (type-1 header).
    fn func(at: &str, port_type: u8, buses: Option<(u8, u8)>) -> Function {
        let mut config = vec![0u8; 256];
        config[0x06] = 0x10;
        config[0x34] = 0x40;
        config[0x40] = 0x10;
        config[0x42] = 0x02 | port_type << 4;
        if let Some((sec, sub)) = buses {
            config[0x0e] = 1;
            config[0x19] = sec;
            config[0x1a] = sub;
        }
        Function {
            bdf: bdf(at),
            config,
        }
    }

    #[test]
    fn root_port_of_walks_switch_to_root_port() {
        // Root port 00:01.0 -> switch upstream 01:00.0 -> downstream 02:03.0 -> endpoint.
        let m = Machine {
            functions: vec![
                func("00:01.0", 4, Some((1, 3))),
                func("01:00.0", 5, Some((2, 3))),
                func("02:03.0", 6, Some((3, 3))),
                func("03:00.0", 0, None),
            ],
        };
        assert_eq!(m.root_port_of(bdf("03:00.0")), Some(bdf("00:01.0")));
        assert_eq!(m.upstream_bridges(bdf("03:00.0")).len(), 3);
    }

    #[test]
    fn root_port_of_rciep_is_none_even_below_a_port() {
        let m = Machine {
            functions: vec![func("00:01.0", 4, Some((1, 1))), func("01:00.0", 9, None)],
        };
        assert_eq!(m.root_port_of(bdf("01:00.0")), None);
        assert!(m.is_rciep(bdf("01:00.0")));
    }

    #[test]
    fn upstream_bridges_cycle_terminates() {
        // Two bridges claiming each other's bus: bounded walk, no hang.
        let m = Machine {
            functions: vec![
                func("01:00.0", 6, Some((2, 2))),
                func("02:00.0", 6, Some((1, 1))),
                func("02:01.0", 0, None),
            ],
        };
        assert_eq!(
            m.upstream_bridges(bdf("02:01.0")),
            vec![bdf("01:00.0"), bdf("02:00.0")]
        );
        assert_eq!(m.root_port_of(bdf("02:01.0")), None);
    }

    #[test]
    fn bdf_parse_out_of_range_or_garbage_is_error() {
        for s in [
            "",
            "19:20.0",
            "19:00.8",
            "119:00.0",
            "x:00.0",
            "19.00.0",
            "00000:19:00.0",
            "19:00.",
            ":00.0",
            "+1:00.0",
        ] {
            assert!(s.parse::<Bdf>().is_err(), "{s:?} accepted");
        }
    }
}
