//! Generated server-sized machines for scale tests and benchmarks: root ports, each with a bus
//! of TPH endpoints (configuration spaces from `tph_kernel::machines`), written as a compact
//! `lspci -xxxx`-style dump or as a sysfs tree that both tphctl and the real lspci read.
#![allow(dead_code)] // each user (test binary, example) uses a subset

use std::io::Write;
use std::path::Path;

use tph_kernel::machines::{endpoint, root_port, spec, NS_IV_DS, TYPE_ENDPOINT};
use tph_regs::machine::{Bdf, Function};
use tph_regs::tph::StLocation;

/// Functions below one root port (devices 0-7, functions 0-7 of its secondary bus).
const PER_PORT: usize = 64;
/// Root ports per PCI domain: bus 0 devices 1-31, functions 0-7.
const PORTS_PER_DOMAIN: usize = 31 * 8;

/// The functions of a machine of `n` functions (root ports included), in address order:
/// port `k` of a domain sits at 00:(k/8+1).(k%8) with secondary bus k+1, whose endpoints
/// each have a TPH Requester capability (No-ST/IV/DS, 8-entry table in the capability).
pub fn functions(n: usize) -> impl Iterator<Item = Function> {
    (0..n).map(|i| {
        let (port, slot) = (i / (PER_PORT + 1), i % (PER_PORT + 1));
        let (domain, k) = (port / PORTS_PER_DOMAIN, port % PORTS_PER_DOMAIN);
        let bus = (k + 1) as u8;
        let (bdf, config) = if slot == 0 {
            let at = Bdf::new(domain as u16, 0, (k / 8 + 1) as u8, (k % 8) as u8);
            (at, root_port(3, bus))
        } else {
            let e = slot - 1;
            let ids = 0x1000_1ab0 | ((e as u32) << 16);
            let cfg = endpoint(
                ids,
                TYPE_ENDPOINT,
                8,
                spec(NS_IV_DS, true, StLocation::Capability, 8),
            );
            (
                Bdf::new(domain as u16, bus, (e / 8) as u8, (e % 8) as u8),
                cfg,
            )
        };
        Function::new(bdf.expect("generated addresses are valid"), config)
    })
}

/// Writes `n` functions as a dump: every non-zero 16-byte row plus the last one (so each
/// function is 4096 bytes long; rows left out read as zero).
pub fn write_dump(n: usize, out: &mut impl Write) -> std::io::Result<()> {
    write_rows(n, false, out)
}

/// Writes `n` functions as `lspci -xxxx` does: all 256 rows of each.
pub fn write_full_dump(n: usize, out: &mut impl Write) -> std::io::Result<()> {
    write_rows(n, true, out)
}

fn write_rows(n: usize, all_rows: bool, out: &mut impl Write) -> std::io::Result<()> {
    for f in functions(n) {
        writeln!(out, "{} Device", f.bdf)?;
        let last = f.config.len() / 16 - 1;
        for (row, chunk) in f.config.chunks(16).enumerate() {
            if !all_rows && row != last && chunk.iter().all(|&b| b == 0) {
                continue;
            }
            write!(out, "{:03x}:", row * 16)?;
            for b in chunk {
                write!(out, " {b:02x}")?;
            }
            writeln!(out)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

/// Writes `n` functions as `ROOT/bus/pci/devices/DDDD:BB:DD.F/`: `config` (4096 bytes) and
/// the attribute files lspci's sysfs access method reads (`vendor`, `device`, `class`,
/// `irq`, `resource`).
pub fn write_sysfs(n: usize, root: &Path) -> std::io::Result<()> {
    let devices = root.join("bus/pci/devices");
    std::fs::create_dir_all(&devices)?;
    let resource = "0x0000000000000000 0x0000000000000000 0x0000000000000000\n".repeat(13);
    for f in functions(n) {
        let dir = devices.join(f.bdf.to_string());
        std::fs::create_dir_all(&dir)?;
        let word = |at: usize| u16::from_le_bytes([f.config[at], f.config[at + 1]]);
        let class = u32::from_le_bytes([f.config[8], f.config[9], f.config[10], f.config[11]]) >> 8;
        std::fs::write(dir.join("config"), &f.config)?;
        std::fs::write(dir.join("vendor"), format!("{:#06x}\n", word(0)))?;
        std::fs::write(dir.join("device"), format!("{:#06x}\n", word(2)))?;
        std::fs::write(dir.join("class"), format!("{class:#08x}\n"))?;
        std::fs::write(dir.join("irq"), "0\n")?;
        std::fs::write(dir.join("resource"), &resource)?;
    }
    Ok(())
}
