//! The built-in default machine: synthesised configuration spaces covering every TPH shape the
//! model distinguishes.
//!
//! | BDF | what | TPH |
//! |---|---|---|
//! | 00:00.0 | host bridge | none |
//! | 00:01.0 | root port, completer TPH + extended TPH | - |
//! | 01:00.0 | NIC | NS/IV/DS, extended, table in MSI-X (2048 entries, 2048 vectors) |
//! | 00:02.0 | root port, completer TPH only | - |
//! | 02:00.0 | NIC | NS/IV/DS, extended, table in capability (16 entries), 16 vectors |
//! | 00:03.0 | root port, completer TPH + extended TPH | - |
//! | 03:00.0 | accelerator | NS/DS only, extended, no table |
//! | 00:04.0 | root port **without** TPH completer | - |
//! | 04:00.0 | NIC | NS/IV/DS, table in capability (8 entries): enable refused |
//! | 00:05.0 | Root Complex integrated endpoint | NS/IV/DS, extended, table in capability (8) |
//! | 00:06.0 | Root Complex integrated endpoint | none |

use tph_regs::caps::DEVCAP_FLR;
use tph_regs::machine::{Bdf, Function, Machine};
use tph_regs::tph::StLocation;

/// PCI Express device/port types used here: endpoint.
pub const TYPE_ENDPOINT: u16 = 0x0;
/// Root port.
pub const TYPE_ROOT_PORT: u16 = 0x4;
/// Root Complex integrated endpoint.
pub const TYPE_RCIEP: u16 = 0x9;
/// Offset of the synthesised PCI Express capability.
pub const EXP_AT: usize = 0x40;
/// Offset of the MSI-X capability.
pub const MSIX_AT: usize = 0x80;
/// Offset of the TPH Requester capability.
pub const TPH_AT: usize = 0x100;
/// DevCtl reset value: relaxed ordering, no snoop, 512-byte read requests.
const DEVCTL_DEFAULT: u16 = 0x2810;

/// What a synthesised TPH Requester capability holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TphSpec {
    /// Capability bits 2:0 (No-ST, IV, DS).
    pub modes: u32,
    /// Extended TPH requester supported.
    pub ext: bool,
    /// ST Table Location.
    pub location: StLocation,
    /// ST Table Size + 1 (1..=2048).
    pub entries: u16,
}

fn put(cfg: &mut [u8], off: usize, bytes: &[u8]) {
    if let Some(dst) = cfg.get_mut(off..off + bytes.len()) {
        dst.copy_from_slice(bytes);
    }
}

fn put16(cfg: &mut [u8], off: usize, v: u16) {
    put(cfg, off, &v.to_le_bytes());
}

fn put32(cfg: &mut [u8], off: usize, v: u32) {
    put(cfg, off, &v.to_le_bytes());
}

fn header(ids: u32, class: u32, header_type: u8) -> Vec<u8> {
    let mut cfg = vec![0u8; 4096];
    put32(&mut cfg, 0x00, ids);
    put16(&mut cfg, 0x04, 0x0006); // Memory Space + Bus Master
    put16(&mut cfg, 0x06, 0x0010); // Capabilities List
    put32(&mut cfg, 0x08, class << 8);
    put(&mut cfg, 0x0e, &[header_type]);
    put(&mut cfg, 0x34, &[EXP_AT as u8]);
    cfg
}

fn express(cfg: &mut [u8], port_type: u16, completer: u32, next: u8) {
    put(cfg, EXP_AT, &[0x10, next]);
    put16(cfg, EXP_AT + 0x2, 0x0002 | port_type << 4);
    put32(cfg, EXP_AT + 0x4, DEVCAP_FLR);
    put16(cfg, EXP_AT + 0x8, DEVCTL_DEFAULT);
    put32(cfg, EXP_AT + 0x24, completer << 12);
}

fn msix(cfg: &mut [u8], vectors: u16) {
    put(cfg, MSIX_AT, &[0x11, 0x00]);
    put16(cfg, MSIX_AT + 0x2, vectors - 1);
    put32(cfg, MSIX_AT + 0x4, MSIX_TABLE_OFFSET); // BAR 0
    put32(cfg, MSIX_AT + 0x8, pba_offset(vectors)); // PBA: BAR 0
}

/// Offset of the MSI-X table in BAR 0.
const MSIX_TABLE_OFFSET: u32 = 0x2000;

/// Offset of the PBA in BAR 0: the first 4 KiB boundary after the table (16 bytes a vector),
/// so the two never overlap and the PBA starts a page of its own, as real devices place it.
fn pba_offset(vectors: u16) -> u32 {
    let table_end = MSIX_TABLE_OFFSET + u32::from(vectors) * 16;
    table_end.next_multiple_of(0x1000)
}

fn tph(cfg: &mut [u8], spec: TphSpec) {
    put32(cfg, TPH_AT, 0x17 | 1 << 16);
    let cap = spec.modes
        | u32::from(spec.ext) << 8
        | spec.location.register_bits()
        | u32::from(spec.entries.clamp(1, 2048) - 1) << 16;
    put32(cfg, TPH_AT + 4, cap);
}

/// Configuration space of an endpoint (`port_type`: [`TYPE_ENDPOINT`] or [`TYPE_RCIEP`])
/// with FLR, `vectors` MSI-X vectors (0: no MSI-X) and an optional TPH capability.
pub fn endpoint(ids: u32, port_type: u16, vectors: u16, tph_spec: Option<TphSpec>) -> Vec<u8> {
    let mut cfg = header(ids, 0x02_00_00, 0x00);
    express(
        &mut cfg,
        port_type,
        0,
        if vectors > 0 { MSIX_AT as u8 } else { 0 },
    );
    if vectors > 0 {
        msix(&mut cfg, vectors);
    }
    if let Some(spec) = tph_spec {
        tph(&mut cfg, spec);
    }
    cfg
}

/// Configuration space of a root port whose DevCap2 TPH Completer field is `completer`
/// (0..=3) and whose secondary (and subordinate) bus is `secondary`.
pub fn root_port(completer: u32, secondary: u8) -> Vec<u8> {
    let mut cfg = header(0x1234_8086, 0x06_04_00, 0x01);
    put(&mut cfg, 0x18, &[0, secondary, secondary]);
    express(&mut cfg, TYPE_ROOT_PORT, completer, 0);
    cfg
}

fn host_bridge() -> Vec<u8> {
    let mut cfg = header(0x1230_8086, 0x06_00_00, 0x00);
    put16(&mut cfg, 0x06, 0);
    put(&mut cfg, 0x34, &[0]);
    cfg
}

fn f(bus: u8, device: u8, config: Vec<u8>) -> Option<Function> {
    Some(Function::new(Bdf::new(0, bus, device, 0)?, config))
}

/// No-ST, IV and DS supported.
pub const NS_IV_DS: u32 = 0b111;
/// No-ST and DS supported.
pub const NS_DS: u32 = 0b101;
impl TphSpec {
    /// A TPH Requester capability with `modes` (bits 2:0 of the Capability register), Extended
    /// TPH when `ext`, the ST table at `location` with `entries` entries (1..=2048).
    pub const fn new(modes: u32, ext: bool, location: StLocation, entries: u16) -> Self {
        Self {
            modes,
            ext,
            location,
            entries,
        }
    }
}

/// Shorthand for `Some(TphSpec::new(..))`, what [`endpoint`] takes.
pub fn spec(modes: u32, ext: bool, location: StLocation, entries: u16) -> Option<TphSpec> {
    Some(TphSpec::new(modes, ext, location, entries))
}

/// The built-in machine (see the module table).
pub fn default_machine() -> Machine {
    let functions = [
        f(0, 0, host_bridge()),
        f(0, 1, root_port(3, 1)),
        f(
            1,
            0,
            endpoint(
                0x1000_1ab0,
                TYPE_ENDPOINT,
                2048,
                spec(NS_IV_DS, true, StLocation::MsiX, 2048),
            ),
        ),
        f(0, 2, root_port(1, 2)),
        f(
            2,
            0,
            endpoint(
                0x1001_1ab0,
                TYPE_ENDPOINT,
                16,
                spec(NS_IV_DS, true, StLocation::Capability, 16),
            ),
        ),
        f(0, 3, root_port(3, 3)),
        f(
            3,
            0,
            endpoint(
                0x2000_1ab0,
                TYPE_ENDPOINT,
                8,
                spec(NS_DS, true, StLocation::None, 1),
            ),
        ),
        f(0, 4, root_port(0, 4)),
        f(
            4,
            0,
            endpoint(
                0x1002_1ab0,
                TYPE_ENDPOINT,
                8,
                spec(NS_IV_DS, false, StLocation::Capability, 8),
            ),
        ),
        f(
            0,
            5,
            endpoint(
                0x3000_1ab0,
                TYPE_RCIEP,
                8,
                spec(NS_IV_DS, true, StLocation::Capability, 8),
            ),
        ),
        f(0, 6, endpoint(0x3001_1ab0, TYPE_RCIEP, 4, None)),
    ];
    Machine::new(functions.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bdf(s: &str) -> Bdf {
        s.parse().expect("test BDF")
    }

    #[test]
    fn default_machine_topology_matches_table() {
        let m = default_machine();
        assert_eq!(m.functions.len(), 11);
        assert_eq!(m.root_port_of(bdf("01:00.0")), Some(bdf("00:01.0")));
        assert_eq!(m.root_port_of(bdf("04:00.0")), Some(bdf("00:04.0")));
        assert!(m.is_rciep(bdf("00:05.0")));
        assert_eq!(m.root_port_of(bdf("00:05.0")), None);
    }

    #[test]
    fn default_machine_tph_shapes_decode() {
        let m = default_machine();
        let loc = |s: &str| {
            let cfg = &m.function(bdf(s)).expect("present").config;
            let v = u32::from_le_bytes(cfg[TPH_AT + 4..TPH_AT + 8].try_into().expect("4"));
            tph_regs::tph::TphCapability::from_bits(v)
        };
        assert_eq!(loc("01:00.0").location, StLocation::MsiX);
        assert_eq!(loc("01:00.0").table_size, 2048);
        assert_eq!(loc("02:00.0").location, StLocation::Capability);
        assert_eq!(loc("03:00.0").location, StLocation::None);
        assert!(!loc("03:00.0").iv && loc("03:00.0").ds);
        assert!(!loc("04:00.0").ext);
    }

    #[test]
    fn msix_table_and_pba_never_overlap() {
        let m = default_machine();
        for func in &m.functions {
            let cfg = &func.config;
            if cfg[MSIX_AT] != 0x11 {
                continue;
            }
            let vectors =
                u32::from(u16::from_le_bytes([cfg[MSIX_AT + 2], cfg[MSIX_AT + 3]]) & 0x7ff) + 1;
            let word = |o: usize| u32::from_le_bytes(cfg[o..o + 4].try_into().expect("4"));
            let table = word(MSIX_AT + 4) & !7;
            let pba = word(MSIX_AT + 8) & !7;
            assert!(
                table + vectors * 16 <= pba,
                "{}: table overlaps PBA",
                func.bdf
            );
            assert_eq!(pba % 0x1000, 0, "{}: PBA not page aligned", func.bdf);
        }
        let nic = &m.function(bdf("01:00.0")).expect("present").config;
        assert_eq!(
            u32::from_le_bytes(nic[MSIX_AT + 8..MSIX_AT + 12].try_into().expect("4")),
            0xa000
        );
    }
}
