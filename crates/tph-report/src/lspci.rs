//! lspci-style rendering of the TPH Requester capability (pciutils 3.9 `lspci -vvv`).
//!
//! What lspci prints is a fact this module reproduces (pci-tph-core.md section 3): it shows
//! extended capabilities only for functions with a PCI Express or PCI-X capability, walks the
//! extended list from 0x100 following every next pointer (masked with ~3, stopping at 0, at an
//! all-zero or all-ones header, at the end of the bytes read, or at an offset already visited,
//! which it reports as `<chain looped>`), and for TPH prints the title line and, when the
//! Capability register is readable, up to four detail lines.

use std::io::{self, Write};

use tph_regs::caps::{walk_caps, EXT_CAP_ID_TPH, EXT_START};
use tph_regs::machine::{Function, Machine};
use tph_regs::tph::{StLocation, TphCapability, TPH_CAP};

use crate::rd32;

/// PCI-X capability ID: lspci also walks the extended list for PCI-X 2.0 functions.
const CAP_ID_PCIX: u16 = 0x07;
/// PCI Express capability ID.
const CAP_ID_EXP: u16 = 0x10;
/// Offsets a 4096-byte space can hold, one per dword.
const EXT_DWORDS: usize = 1024;

/// Offsets and version of each TPH capability lspci would print for `cfg`.
pub fn lspci_tph_caps(cfg: &[u8]) -> Vec<(usize, u8)> {
    let mut found = Vec::new();
    walk_like_lspci(cfg, |at, header| {
        if header & 0xffff == u32::from(EXT_CAP_ID_TPH) {
            found.push((at, ((header >> 16) & 0xf) as u8));
        }
    });
    found
}

/// How many leading bytes of `cfg` [`write_function`] reads: the standard space, every
/// extended header lspci's walk reads (the one that ends it too) and each TPH Capability
/// register. Bytes past it can be dropped without changing the output.
pub fn lspci_extent(cfg: &[u8]) -> usize {
    let mut end = EXT_START;
    let last = walk_like_lspci(cfg, |at, header| {
        let tph = header & 0xffff == u32::from(EXT_CAP_ID_TPH);
        end = end.max(at + if tph { TPH_CAP + 4 } else { 4 });
    });
    end.max(last.map_or(0, |at| at + 4)).min(cfg.len())
}

/// lspci's extended capability walk (PCI Express or PCI-X functions only): calls `visit`
/// for each capability; returns the offset whose header ended the walk (0, all-ones or past
/// the end), `None` when it ended on a loop or never started.
fn walk_like_lspci(cfg: &[u8], mut visit: impl FnMut(usize, u32)) -> Option<usize> {
    let std_caps = walk_caps(cfg);
    if std_caps.find(CAP_ID_EXP).is_none() && std_caps.find(CAP_ID_PCIX).is_none() {
        return None;
    }
    let mut seen = [false; EXT_DWORDS];
    let mut at = EXT_START;
    while at != 0 {
        let Some(header) = rd32(cfg, at).filter(|h| *h != 0 && *h != u32::MAX) else {
            return Some(at);
        };
        match seen.get_mut(at / 4) {
            Some(s) if !*s => *s = true,
            _ => return None,
        }
        visit(at, header);
        at = (header >> 20) as usize & !3;
    }
    None
}

/// Writes the lines `lspci -vvv` prints for the TPH capability at `offset`.
pub fn write_tph_block(
    cfg: &[u8],
    offset: usize,
    version: u8,
    out: &mut impl Write,
) -> io::Result<()> {
    writeln!(
        out,
        "\tCapabilities: [{offset:03x} v{version}] Transaction Processing Hints"
    )?;
    let Some(bits) = rd32(cfg, offset.saturating_add(TPH_CAP)) else {
        return Ok(());
    };
    let cap = TphCapability::from_bits(bits);
    if cap.iv {
        writeln!(out, "\t\tInterrupt vector mode supported")?;
    }
    if cap.ds {
        writeln!(out, "\t\tDevice specific mode supported")?;
    }
    if cap.ext {
        writeln!(out, "\t\tExtended requester support")?;
    }
    let table = match cap.location {
        StLocation::None => "No steering table available",
        StLocation::Capability => "Steering table in TPH capability structure",
        StLocation::MsiX => "Steering table in MSI-X table",
        StLocation::Reserved(_) => "Reserved steering table location",
        // A location tph-regs decodes and this renderer has no lspci text for.
        _ => "Unknown steering table location",
    };
    writeln!(out, "\t\t{table}")
}

/// Writes, for `f` if lspci shows a TPH capability for it, its BDF line then the TPH blocks.
/// Returns whether anything was written.
pub fn write_function(f: &Function, show_domain: bool, out: &mut impl Write) -> io::Result<bool> {
    let caps = lspci_tph_caps(&f.config);
    if caps.is_empty() {
        return Ok(false);
    }
    writeln!(out, "{}", f.bdf.lspci_str(show_domain))?;
    for (offset, version) in caps {
        write_tph_block(&f.config, offset, version, out)?;
    }
    Ok(true)
}

/// Writes the parity output for every function of `m`, in lspci's order (sorted by address,
/// domains shown when any function has a non-zero domain). Returns how many were written.
pub fn write_machine(m: &Machine, out: &mut impl Write) -> io::Result<usize> {
    let domains = m.shows_domains();
    let mut n = 0;
    for f in m.sorted() {
        n += usize::from(write_function(f, domains, out)?);
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 4096-byte space with a PCI Express capability at 0x40 and `ext` as (offset, header,
    /// capability register) triples.
    fn space(ext: &[(usize, u32, u32)]) -> Vec<u8> {
        let mut cfg = vec![0u8; 4096];
        cfg[0x06] = 0x10;
        cfg[0x34] = 0x40;
        cfg[0x40] = 0x10;
        for (off, header, cap) in ext {
            cfg[*off..*off + 4].copy_from_slice(&header.to_le_bytes());
            cfg[*off + 4..*off + 8].copy_from_slice(&cap.to_le_bytes());
        }
        cfg
    }

    fn render(cfg: &[u8], off: usize, v: u8) -> String {
        let mut out = Vec::new();
        write_tph_block(cfg, off, v, &mut out).expect("vec write");
        String::from_utf8(out).expect("ascii")
    }

    #[test]
    fn tph_block_dsa_value_prints_ds_and_capability_table() {
        let cfg = space(&[(0x100, 0x0001_0017, 0x0001_0205)]);
        assert_eq!(
            render(&cfg, 0x100, 1),
            "\tCapabilities: [100 v1] Transaction Processing Hints\n\
             \t\tDevice specific mode supported\n\
             \t\tSteering table in TPH capability structure\n"
        );
    }

    #[test]
    fn tph_block_cap_register_past_end_prints_title_only() {
        let cfg = space(&[(0x100, 0xffc1_0017, 0)]);
        assert_eq!(
            render(&cfg, 0xffc, 1),
            "\tCapabilities: [ffc v1] Transaction Processing Hints\n"
        );
    }

    #[test]
    fn lspci_walk_without_express_cap_shows_nothing() {
        let mut cfg = space(&[(0x100, 0x0001_0017, 0)]);
        cfg[0x40] = 0x05;
        assert!(lspci_tph_caps(&cfg).is_empty());
    }

    #[test]
    fn lspci_walk_loop_stops_after_first_visit() {
        let cfg = space(&[(0x100, 0x2001_0001, 0), (0x200, 0x1002_0017, 0)]);
        assert_eq!(lspci_tph_caps(&cfg), vec![(0x200, 2)]);
    }
}
