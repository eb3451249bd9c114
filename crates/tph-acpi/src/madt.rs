//! The MADT (ACPI 6.5 section 5.2.12): which processors exist and their ACPI processor UIDs,
//! from Local APIC (type 0), Local x2APIC (type 9) and GICC (type 0xB) entries; and the mapping
//! of Linux logical CPU numbers to those UIDs through sysfs / `/proc/cpuinfo`.

use std::path::{Path, PathBuf};

use crate::aml::table::Sdt;
use crate::FirmwareError;

/// Which MADT entry described a processor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum CpuEntryKind {
    /// Processor Local APIC (type 0).
    LocalApic,
    /// Processor Local x2APIC (type 9).
    X2Apic,
    /// GIC CPU interface (type 0xB), Arm.
    Gicc,
}

/// One processor named by the MADT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct MadtCpu {
    /// ACPI processor UID (what the `_DSM` takes).
    pub uid: u32,
    /// Hardware id: APIC id, x2APIC id, or MPIDR.
    pub hw_id: u64,
    /// Entry type.
    pub kind: CpuEntryKind,
    /// Enabled (flags bit 0) or online capable (bit 1).
    pub usable: bool,
}

/// Parses a MADT ("APIC" table): header, checksum, then its interrupt-controller entries.
pub fn parse(bytes: &[u8]) -> Result<Vec<MadtCpu>, FirmwareError> {
    let sdt = Sdt::parse(bytes)?;
    if &sdt.signature != b"APIC" {
        return Err(FirmwareError::Madt(format!(
            "signature is {}, not APIC",
            sdt.name()
        )));
    }
    // The body starts with the local interrupt controller address and flags (8 bytes).
    let mut at = 8usize;
    let mut cpus = Vec::new();
    while let (Some(&kind), Some(&len)) = (sdt.body.get(at), sdt.body.get(at + 1)) {
        let len = usize::from(len);
        if len < 2 {
            return Err(FirmwareError::Madt(format!(
                "entry at body offset {at} has length {len}"
            )));
        }
        let e = sdt.body.get(at..at + len).ok_or_else(|| {
            FirmwareError::Madt(format!("entry at body offset {at} runs past the table"))
        })?;
        cpus.extend(entry(kind, e));
        at += len;
    }
    Ok(cpus)
}

/// The usable processors' UIDs, sorted, each once.
pub fn usable_uids(cpus: &[MadtCpu]) -> Vec<u32> {
    let mut uids: Vec<u32> = cpus.iter().filter(|c| c.usable).map(|c| c.uid).collect();
    uids.sort_unstable();
    uids.dedup();
    uids
}

/// The MADT file of a table folder: the first file, by name, whose name starts with `APIC`
/// (any case, any extension, as `acpidump -b` writes `apic.dat`); `None` when there is none or
/// the folder cannot be read.
pub fn find_in_dir(dir: &Path) -> Option<PathBuf> {
    let mut names: Vec<PathBuf> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.to_ascii_uppercase().starts_with("APIC"))
        })
        .collect();
    names.sort();
    names.into_iter().next()
}

fn le(e: &[u8], at: usize, n: usize) -> Option<u64> {
    let b = e.get(at..at + n)?;
    Some(b.iter().rev().fold(0u64, |a, &x| a << 8 | u64::from(x)))
}

fn usable(flags: u64) -> bool {
    flags & 3 != 0
}

fn entry(kind: u8, e: &[u8]) -> Option<MadtCpu> {
    match kind {
        0 => Some(MadtCpu {
            uid: le(e, 2, 1)? as u32,
            hw_id: le(e, 3, 1)?,
            kind: CpuEntryKind::LocalApic,
            usable: usable(le(e, 4, 4)?),
        }),
        9 => Some(MadtCpu {
            uid: le(e, 12, 4)? as u32,
            hw_id: le(e, 4, 4)?,
            kind: CpuEntryKind::X2Apic,
            usable: usable(le(e, 8, 4)?),
        }),
        0xb => Some(MadtCpu {
            uid: le(e, 8, 4)? as u32,
            hw_id: le(e, 68, 8)?,
            kind: CpuEntryKind::Gicc,
            usable: usable(le(e, 12, 4)?),
        }),
        _ => None,
    }
}

/// A Linux logical CPU and its ACPI processor UID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct CpuUid {
    /// Logical CPU number (`cpuN`).
    pub cpu: u32,
    /// ACPI processor UID.
    pub uid: u32,
}

impl CpuUid {
    /// Logical CPU `cpu` with processor UID `uid`.
    pub const fn new(cpu: u32, uid: u32) -> Self {
        Self { cpu, uid }
    }
}

/// Maps logical CPUs to UIDs: `cpuN/firmware_node/uid` under `sys_cpu` when present, else the
/// `apicid` lines of `cpuinfo` matched against the MADT's APIC ids.
pub fn cpu_uids(sys_cpu: &Path, cpuinfo: &str, madt: &[MadtCpu]) -> Vec<CpuUid> {
    let by_apic = apic_ids(cpuinfo);
    by_apic
        .iter()
        .filter_map(|&(cpu, apic)| {
            let fw = std::fs::read_to_string(sys_cpu.join(format!("cpu{cpu}/firmware_node/uid")));
            let uid = match fw.ok().and_then(|s| s.trim().parse().ok()) {
                Some(u) => Some(u),
                None => madt
                    .iter()
                    .find(|m| m.hw_id == apic && m.kind != CpuEntryKind::Gicc)
                    .map(|m| m.uid),
            };
            uid.map(|uid| CpuUid { cpu, uid })
        })
        .collect()
}

/// `(processor, apicid)` pairs from `/proc/cpuinfo` text.
pub fn apic_ids(cpuinfo: &str) -> Vec<(u32, u64)> {
    let mut out = Vec::new();
    let mut cpu = None;
    for line in cpuinfo.lines() {
        let mut kv = line.splitn(2, ':').map(str::trim);
        match (kv.next(), kv.next()) {
            (Some("processor"), Some(v)) => cpu = v.parse().ok(),
            (Some("apicid"), Some(v)) => {
                if let (Some(c), Ok(a)) = (cpu, v.parse()) {
                    out.push((c, a));
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aml::table::build;

    fn madt(entries: &[&[u8]]) -> Vec<u8> {
        let mut body = vec![0, 0, 0xe0, 0xfe, 1, 0, 0, 0];
        for e in entries {
            body.extend_from_slice(e);
        }
        build(b"APIC", 5, &body)
    }

    #[test]
    fn madt_local_apic_x2apic_and_gicc_entries_give_uids() {
        let lapic: &[u8] = &[0, 8, 3, 5, 1, 0, 0, 0]; // uid 3, APIC id 5, enabled
        let x2: &[u8] = &[9, 16, 0, 0, 0x00, 0x01, 0, 0, 2, 0, 0, 0, 0x2a, 0, 0, 0]; // id 0x100, online capable, uid 42
        let mut gicc = vec![0u8; 80];
        gicc[0] = 0xb;
        gicc[1] = 80;
        gicc[8] = 7; // uid 7
        gicc[12] = 1; // enabled
        gicc[68] = 0x11; // MPIDR 0x11
        let cpus = parse(&madt(&[lapic, x2, &gicc])).unwrap();
        let got: Vec<(u32, u64, bool)> = cpus.iter().map(|c| (c.uid, c.hw_id, c.usable)).collect();
        assert_eq!(got, vec![(3, 5, true), (42, 0x100, true), (7, 0x11, true)]);
    }

    #[test]
    fn usable_uids_are_sorted_unique_and_skip_disabled_entries() {
        let cpu = |uid, usable| MadtCpu {
            uid,
            hw_id: 0,
            kind: CpuEntryKind::LocalApic,
            usable,
        };
        let cpus = [cpu(3, true), cpu(1, true), cpu(3, true), cpu(2, false)];
        assert_eq!(usable_uids(&cpus), vec![1, 3]);
    }

    #[test]
    fn find_in_dir_takes_the_first_apic_file_by_name() {
        let dir = tempfile::tempdir().unwrap();
        for name in ["DSDT.dat", "apic2.dat", "APIC.dat"] {
            std::fs::write(dir.path().join(name), b"x").unwrap();
        }
        std::fs::create_dir(dir.path().join("APIC0")).unwrap(); // a folder is not a table
        assert_eq!(find_in_dir(dir.path()), Some(dir.path().join("APIC.dat")));
        assert_eq!(find_in_dir(&dir.path().join("missing")), None);
    }

    #[test]
    fn madt_zero_length_entry_is_an_error_not_a_hang() {
        assert!(parse(&madt(&[&[0, 0, 1, 1]])).is_err());
    }

    #[test]
    fn host_madt_fixture_parses() {
        let cpus = parse(include_bytes!("../tests/data/host-apic.dat")).unwrap();
        assert!(!cpus.is_empty());
    }

    #[test]
    fn cpuinfo_apicids_map_through_madt() {
        let cpus = [MadtCpu {
            uid: 10,
            hw_id: 2,
            kind: CpuEntryKind::LocalApic,
            usable: true,
        }];
        let info = "processor\t: 0\napicid\t\t: 2\n\nprocessor\t: 1\napicid\t\t: 9\n";
        let got = cpu_uids(Path::new("/nonexistent"), info, &cpus);
        assert_eq!(got, vec![CpuUid { cpu: 0, uid: 10 }]);
    }
}
