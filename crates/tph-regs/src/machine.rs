//! Machines: the set of functions with their configuration space, and the bus topology that
//! tells every endpoint its root port (or that it is a Root Complex integrated endpoint).

use std::collections::HashMap;
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

/// Why a text is not a BDF (the `problem` of [`Error::BadBdf`]).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BdfProblem {
    /// No `.` before the function number.
    NoFunction,
    /// Not one or two `:` before the `.`.
    Separators,
    /// A field is empty.
    Missing {
        /// `domain`, `bus`, `device` or `function`.
        field: &'static str,
    },
    /// A field is not 1 to `max_digits` hexadecimal digits.
    NotHex {
        /// The field.
        field: &'static str,
        /// Its text, quoted and cut to a short prefix.
        text: String,
        /// The most digits it may have.
        max_digits: u8,
    },
    /// A field is above its limit (device 0x1f, function 7).
    TooLarge {
        /// The field.
        field: &'static str,
        /// Its value.
        value: u32,
        /// Its limit.
        max: u32,
    },
}

impl fmt::Display for BdfProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoFunction => f.write_str("no `.` before the function number"),
            Self::Separators => f.write_str("expected one or two `:`"),
            Self::Missing { field } => write!(f, "the {field} is missing"),
            Self::NotHex {
                field,
                text,
                max_digits,
            } => write!(f, "the {field} {text} is not 1 to {max_digits} hex digits"),
            Self::TooLarge { field, value, max } => {
                write!(f, "the {field} {value:#x} is above its limit {max:#x}")
            }
        }
    }
}

/// One hex field of a BDF: 1 to `max_digits` digits, at most `max`.
fn hex_field(s: &str, field: &'static str, max_digits: u8, max: u32) -> Result<u32, BdfProblem> {
    if s.is_empty() {
        return Err(BdfProblem::Missing { field });
    }
    let not_hex = || BdfProblem::NotHex {
        field,
        text: crate::dump::quote(s),
        max_digits,
    };
    if s.len() > usize::from(max_digits) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(not_hex());
    }
    let value = u32::from_str_radix(s, 16).map_err(|_| not_hex())?;
    if value > max {
        return Err(BdfProblem::TooLarge { field, value, max });
    }
    Ok(value)
}

fn parse_bdf(s: &str) -> Result<Bdf, BdfProblem> {
    let (rest, func) = s.rsplit_once('.').ok_or(BdfProblem::NoFunction)?;
    let parts: Vec<&str> = rest.split(':').collect();
    let (domain, bus, device) = match parts.as_slice() {
        [b, d] => ("0", *b, *d),
        [dom, b, d] => (*dom, *b, *d),
        _ => return Err(BdfProblem::Separators),
    };
    // Each field is checked against its limit, so the narrowing below keeps every bit.
    let domain = hex_field(domain, "domain", 4, 0xffff)? as u16;
    let bus = hex_field(bus, "bus", 2, 0xff)? as u8;
    let device = hex_field(device, "device", 2, 0x1f)? as u8;
    let function = hex_field(func, "function", 1, 7)? as u8;
    Ok(Bdf {
        domain,
        bus,
        device,
        function,
    })
}

impl FromStr for Bdf {
    type Err = Error;

    /// Accepts `BB:DD.F` and `DDDD:BB:DD.F`, hexadecimal, as lspci prints them.
    fn from_str(s: &str) -> Result<Self, Error> {
        parse_bdf(s).map_err(|problem| Error::BadBdf {
            text: crate::dump::quote(s),
            problem,
        })
    }
}

/// One function and the configuration bytes read from it (64, 256 or 4096 of them).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Function {
    /// Its address.
    pub bdf: Bdf,
    /// Configuration space as read.
    pub config: Vec<u8>,
}

impl Function {
    /// The function at `bdf` whose configuration space reads as `config` (64 to 4096 bytes
    /// for a useful one; fewer decode as absent).
    ///
    /// ```
    /// use tph_regs::machine::{Bdf, Function};
    /// let f = Function::new("01:00.0".parse().unwrap(), vec![0; 64]);
    /// assert_eq!((f.bdf.bus, f.config.len()), (1, 64));
    /// ```
    pub fn new(bdf: Bdf, config: Vec<u8>) -> Self {
        Self { bdf, config }
    }

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
#[non_exhaustive]
pub struct Machine {
    /// Every function.
    pub functions: Vec<Function>,
}

/// Longest bridge chain followed upwards (one bridge per bus at most).
const MAX_DEPTH: usize = 256;

impl Machine {
    /// A machine of `functions`, in that order.
    ///
    /// ```
    /// use tph_regs::machine::{Function, Machine};
    /// let m = Machine::new(vec![Function::new("01:00.0".parse().unwrap(), vec![0; 64])]);
    /// assert_eq!(m.functions.len(), 1);
    /// ```
    pub fn new(functions: Vec<Function>) -> Self {
        Self { functions }
    }

    /// The function at `bdf` (a scan: for many lookups build a [`Topology`]).
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

    /// The index of every function and of every bus's parent bridge, built in one pass:
    /// what answers many topology questions in linear total time.
    pub fn topology(&self) -> Topology<'_> {
        Topology::new(self)
    }

    /// The bridge directly above `bdf` (see [`Topology::parent_bridge`]).
    pub fn parent_bridge(&self, bdf: Bdf) -> Option<Bdf> {
        self.topology().parent_bridge(bdf)
    }

    /// The bridges above `bdf`, nearest first (see [`Topology::upstream_bridges`]).
    pub fn upstream_bridges(&self, bdf: Bdf) -> Vec<Bdf> {
        self.topology().upstream_bridges(bdf)
    }

    /// The root port above `bdf` (see [`Topology::root_port_of`]); `None` also when no
    /// function is at `bdf`.
    pub fn root_port_of(&self, bdf: Bdf) -> Option<Bdf> {
        self.topology().root_port_of(self.function(bdf)?)
    }

    /// Whether the function at `bdf` is a Root Complex integrated endpoint.
    pub fn is_rciep(&self, bdf: Bdf) -> bool {
        self.function(bdf).is_some_and(Function::is_rciep)
    }
}

/// A parent-bridge candidate for one bus: (width of its bus range, index of the bridge).
type Candidate = (u16, usize);

/// The two best candidates of one bus, best first (the second answers for the best itself).
type BusParents = [Option<Candidate>; 2];

/// Bridges by address and parent-bridge candidates by bus, for one machine.
///
/// Building it costs one pass over the functions plus, per bridge, one step per bus it
/// covers (at most 256); every question after that is a hash lookup per bridge level.
pub struct Topology<'m> {
    machine: &'m Machine,
    bridges: HashMap<Bdf, usize>,
    buses: HashMap<u16, Box<[BusParents; 256]>>,
}

impl<'m> Topology<'m> {
    fn new(machine: &'m Machine) -> Self {
        let mut bridges = HashMap::new();
        let mut buses: HashMap<u16, Box<[BusParents; 256]>> = HashMap::new();
        for (i, f) in machine.functions.iter().enumerate() {
            let Some((sec, sub)) = f.bridge_buses() else {
                continue;
            };
            bridges.entry(f.bdf).or_insert(i);
            if sec == 0 || sub < sec {
                continue;
            }
            let domain = buses
                .entry(f.bdf.domain)
                .or_insert_with(|| Box::new([[None; 2]; 256]));
            for bus in sec..=sub {
                // The bridge whose secondary bus it is, else the narrowest range covering it.
                let width = if bus == sec {
                    0
                } else {
                    u16::from(sub - sec) + 1
                };
                offer(&mut domain[usize::from(bus)], (width, i));
            }
        }
        Self {
            machine,
            bridges,
            buses,
        }
    }

    /// The bridge (type-1 function) at `bdf`.
    pub fn bridge(&self, bdf: Bdf) -> Option<&'m Function> {
        self.bridges
            .get(&bdf)
            .and_then(|&i| self.machine.functions.get(i))
    }

    /// The bridge directly above `bdf`: the one whose secondary bus is `bdf`'s bus, else the
    /// narrowest bridge whose secondary..=subordinate range covers it (the first read on a
    /// tie), never `bdf` itself.
    pub fn parent_bridge(&self, bdf: Bdf) -> Option<Bdf> {
        let parents = self.buses.get(&bdf.domain)?.get(usize::from(bdf.bus))?;
        parents
            .iter()
            .flatten()
            .filter_map(|&(_, i)| self.machine.functions.get(i))
            .map(|f| f.bdf)
            .find(|&b| b != bdf)
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

    /// The root port above `f` (walking bridges by secondary/subordinate bus numbers);
    /// `None` for a Root Complex integrated endpoint or when no root port covers its bus.
    pub fn root_port_of(&self, f: &Function) -> Option<Bdf> {
        if f.is_rciep() {
            return None;
        }
        self.upstream_bridges(f.bdf)
            .into_iter()
            .find(|b| self.bridge(*b).and_then(Function::port_type) == Some(PortType::RootPort))
    }
}

/// Keeps the two best candidates, ordered by width then by reading order.
fn offer(slot: &mut BusParents, c: Candidate) {
    match *slot {
        [Some(best), _] if best.0 <= c.0 => {
            if slot[1].is_none_or(|second| second.0 > c.0) {
                slot[1] = Some(c);
            }
        }
        [best, _] => *slot = [Some(c), best],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bdf(s: &str) -> Bdf {
        s.parse().expect("valid test BDF")
    }

    fn problem(s: &str) -> BdfProblem {
        match s.parse::<Bdf>() {
            Err(Error::BadBdf { problem, .. }) => problem,
            other => panic!("{s}: {other:?}"),
        }
    }

    #[test]
    fn bdf_parse_errors_name_the_field_and_its_limit() {
        assert_eq!(problem("01:00"), BdfProblem::NoFunction);
        assert_eq!(problem("0:0:0:0.0"), BdfProblem::Separators);
        assert_eq!(problem(":00.0"), BdfProblem::Missing { field: "bus" });
        assert_eq!(
            problem("01:20.0"),
            BdfProblem::TooLarge {
                field: "device",
                value: 0x20,
                max: 0x1f
            }
        );
        assert!(matches!(
            problem("0g:00.0"),
            BdfProblem::NotHex {
                field: "bus",
                max_digits: 2,
                ..
            }
        ));
        assert_eq!(bdf("ffff:ff:1f.7").to_string(), "ffff:ff:1f.7");
        assert_eq!(
            "01:20.0".parse::<Bdf>().unwrap_err().to_string(),
            "invalid BDF \"01:20.0\": the device 0x20 is above its limit 0x1f \
             (expected [DDDD:]BB:DD.F in hexadecimal)"
        );
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

    #[test]
    fn bdf_parse_error_names_the_wrong_field_and_its_limit() {
        let why = |s: &str| s.parse::<Bdf>().expect_err("invalid").to_string();
        assert!(why("19:20.0").contains("the device 0x20 is above its limit 0x1f"));
        assert!(why("19:00.8").contains("the function 0x8 is above its limit 0x7"));
        assert!(why("119:00.0").contains("the bus \"119\" is not 1 to 2 hex digits"));
        assert!(why("19-00.0").contains("expected one or two `:`"));
        assert!(why("19:00").contains("no `.` before the function number"));
        assert!(why(":00.0").contains("the bus is missing"));
    }

    #[test]
    fn topology_parent_is_the_secondary_bus_owner_then_the_narrowest_range() {
        // Bridge A covers buses 1-9, bridge B (read later) 2-3; bus 2 is B's secondary bus,
        // bus 5 only A covers, and bus 3 both cover: B is narrower.
        let m = Machine {
            functions: vec![
                func("00:01.0", 4, Some((1, 9))),
                func("01:00.0", 6, Some((2, 3))),
                func("02:00.0", 0, None),
                func("03:00.0", 0, None),
                func("05:00.0", 0, None),
            ],
        };
        let t = m.topology();
        assert_eq!(t.parent_bridge(bdf("02:00.0")), Some(bdf("01:00.0")));
        assert_eq!(t.parent_bridge(bdf("03:00.0")), Some(bdf("01:00.0")));
        assert_eq!(t.parent_bridge(bdf("05:00.0")), Some(bdf("00:01.0")));
        assert_eq!(t.parent_bridge(bdf("01:00.0")), Some(bdf("00:01.0")));
        let f = m.function(bdf("03:00.0")).expect("present");
        assert_eq!(t.root_port_of(f), Some(bdf("00:01.0")));
    }
}
