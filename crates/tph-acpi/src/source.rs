//! The seam between the kernel model and firmware: a source of `_DSM` results per processor UID.

use std::collections::BTreeMap;

use crate::{StHalf, StInfo};

/// Why firmware gave no steering-tag result.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirmwareError {
    /// The source has no result for this ACPI processor UID.
    #[error("firmware has no steering tag for processor UID {0}")]
    UnknownUid(u32),
    /// A line of a table file could not be parsed.
    #[error("line {line}: {why}")]
    Parse {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        why: String,
    },
    /// The `_DSM` method failed or is absent (message from the evaluator).
    #[error("_DSM evaluation failed: {0}")]
    Method(String),
    /// A system description table is malformed (header, length, checksum).
    #[error("table {table}: {why}")]
    Table {
        /// Signature of the table.
        table: String,
        /// What is wrong with it.
        why: String,
    },
    /// A file or directory of tables could not be read.
    #[error("{path}: {why}")]
    Io {
        /// The path.
        path: String,
        /// The operating system's message.
        why: String,
    },
    /// A name is not in the namespace.
    #[error("{0} not found in the ACPI namespace")]
    NotFound(String),
    /// AML evaluation failed (bad operand type, index out of range, divide by zero, ...).
    #[error("AML: {0}")]
    Aml(String),
    /// AML touched an operation region and the host supplied no handler for it.
    #[error("no handler for operation region {region} (space {space:#04x})")]
    NoRegionHandler {
        /// Namespace path of the region.
        region: String,
        /// Its address space id (0 memory, 1 I/O, 2 PCI config, ...).
        space: u8,
    },
    /// Execution exceeded a bound (loop iterations, call depth, total steps, allocation size).
    #[error("AML execution limit reached: {0}")]
    Limit(String),
    /// No host bridge advertises the TPH steering-tag function (rev 7, function 0xF).
    #[error("no host bridge implements the TPH _DSM (revision 7, function 0xF); host bridges found: {}", list_or_none(.bridges))]
    NoTphDsm {
        /// Paths of the host bridges found (PNP0A08/PNP0A03).
        bridges: Vec<String>,
    },
    /// No host bridge of the namespace is the one asked for (segment and root bus).
    #[error("no host bridge for segment {segment:#x} bus {bus:#x} in the ACPI namespace")]
    NoBridge {
        /// PCI segment asked for.
        segment: u16,
        /// Root bus asked for.
        bus: u8,
    },
    /// The bridge's `_DSM` function 0 does not advertise functions 0 and 0xF at revision 7
    /// (`acpi_check_dsm`).
    #[error("{0}._DSM does not advertise the TPH query (function 0 bitmap lacks bit 0 or 15)")]
    NotAdvertised(String),
    /// The `_DSM` returned something other than a buffer of at least 8 bytes.
    #[error("_DSM result is {0}, not a buffer of at least 8 bytes")]
    BadResult(String),
    /// The MADT is malformed.
    #[error("MADT: {0}")]
    Madt(String),
}

fn list_or_none(v: &[String]) -> String {
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// A PCI host bridge as the kernel finds it for a device: the root bus above the device's
/// root port (`rp->bus->bridge`), named by its PCI segment (`_SEG`) and root bus number
/// (`_BBN`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct HostBridgeId {
    /// PCI segment (domain).
    pub segment: u16,
    /// Root bus number.
    pub bus: u8,
}

/// Anything that answers the host bridge `_DSM` steering-tag query for a processor UID.
pub trait SteeringTagSource: Send + Sync + std::fmt::Debug {
    /// The 64-bit function 0xF result for `uid` from the source's default bridge, or why
    /// there is none.
    fn st_info(&self, uid: u32) -> Result<StInfo, FirmwareError>;

    /// The result of the `_DSM` of host bridge `bridge` (the one above a device's root port,
    /// as the kernel asks). A source without per-bridge firmware answers as [`Self::st_info`].
    fn st_info_at(&self, bridge: HostBridgeId, uid: u32) -> Result<StInfo, FirmwareError> {
        let _ = bridge;
        self.st_info(uid)
    }
}

/// `_DSM` results from a table, one per UID.
///
/// With no table given ([`TableSource::default_for_all`]) every UID `u` gets a deterministic result:
/// VM tag `u & 0xff`, VM extended tag `0x100 + u`, PM tag `0x80 | (u & 0x7f)`, PM extended tag
/// `0x8000 | u`, all valid, `ph_ignore` clear.
#[derive(Clone, Debug, Default)]
pub struct TableSource {
    table: BTreeMap<u32, StInfo>,
    synthesize: bool,
}

impl TableSource {
    /// A source that answers every UID with the documented synthetic default.
    pub fn default_for_all() -> Self {
        Self {
            table: BTreeMap::new(),
            synthesize: true,
        }
    }

    /// The documented synthetic result for `uid`.
    pub fn default_st_info(uid: u32) -> StInfo {
        let vm = StHalf {
            st: Some(uid as u8),
            xst: Some(0x100u32.wrapping_add(uid) as u16),
            ph_ignore: false,
        };
        let pm = StHalf {
            st: Some(0x80 | (uid & 0x7f) as u8),
            xst: Some((0x8000 | uid) as u16),
            ph_ignore: false,
        };
        StInfo::from_halves(vm, pm)
    }

    /// A source answering exactly from `table`.
    pub fn from_map(table: BTreeMap<u32, StInfo>) -> Self {
        Self {
            table,
            synthesize: false,
        }
    }

    /// Parses lines `UID 0xST_INFO` (decimal or 0x-hex UID; `#` starts a comment). A UID
    /// given twice, or a table without any line, is an error.
    pub fn parse(text: &str) -> Result<Self, FirmwareError> {
        let mut table = BTreeMap::new();
        let mut first_line = BTreeMap::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let parse = |why| FirmwareError::Parse { line: i + 1, why };
            let (uid, info) = parse_line(line).map_err(parse)?;
            if let Some(first) = first_line.insert(uid, i + 1) {
                return Err(parse(format!(
                    "UID {uid} given twice (first on line {first})"
                )));
            }
            table.insert(uid, info);
        }
        if table.is_empty() {
            return Err(FirmwareError::Parse {
                line: text.lines().count(),
                why: "end of the table without any `UID 0xST_INFO` line (an empty table)".into(),
            });
        }
        Ok(Self::from_map(table))
    }
}

/// `s` quoted for an error message, cut to its first 40 characters.
fn quote(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((cut, _)) => format!("{:?}...", s.get(..cut).unwrap_or_default()),
        None => format!("{s:?}"),
    }
}

fn parse_num(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("bad number {}: {e}", quote(s)))
}

fn parse_line(line: &str) -> Result<(u32, StInfo), String> {
    let mut it = line.split_whitespace();
    let (Some(uid), Some(st), None) = (it.next(), it.next(), it.next()) else {
        return Err(format!("expected `UID 0xST_INFO`, got {}", quote(line)));
    };
    let uid = u32::try_from(parse_num(uid)?).map_err(|_| format!("UID {uid} exceeds 32 bits"))?;
    Ok((uid, StInfo(parse_num(st)?)))
}

impl SteeringTagSource for TableSource {
    fn st_info(&self, uid: u32) -> Result<StInfo, FirmwareError> {
        match self.table.get(&uid) {
            Some(v) => Ok(*v),
            None if self.synthesize => Ok(Self::default_st_info(uid)),
            None => Err(FirmwareError::UnknownUid(uid)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemType;

    #[test]
    fn table_file_lines_parse_with_comments_and_hex() {
        let src = TableSource::parse("# uid st_info\n0 0x0000000000000a01\n0x10 0x1  # cpu16\n\n")
            .unwrap();
        assert_eq!(src.st_info(0).unwrap().st(MemType::Volatile), 0x0a);
        assert_eq!(src.st_info(16).unwrap(), StInfo(1));
        assert_eq!(src.st_info(1), Err(FirmwareError::UnknownUid(1)));
    }

    #[test]
    fn table_file_bad_line_names_line_number() {
        let err = TableSource::parse("0 0x1\nzero 0x2\n").unwrap_err();
        assert!(
            matches!(err, FirmwareError::Parse { line: 2, .. }),
            "{err:?}"
        );
    }

    #[test]
    fn default_source_is_deterministic_and_valid() {
        let src = TableSource::default_for_all();
        let v = src.st_info(5).unwrap();
        assert_eq!(
            (v.st(MemType::Volatile), v.xst(MemType::Volatile)),
            (5, 0x105)
        );
        assert_eq!(
            (v.st(MemType::Persistent), v.xst(MemType::Persistent)),
            (0x85, 0x8005)
        );
        assert!(v.st_valid(MemType::Persistent) && v.xst_valid(MemType::Volatile));
    }

    #[test]
    fn table_file_uid_given_twice_is_an_error_naming_both_lines() {
        let err = TableSource::parse("1 0x1\n2 0x1\n0x1 0x3\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 3: UID 1 given twice (first on line 1)"
        );
    }

    #[test]
    fn table_file_without_any_line_is_an_error_not_an_empty_table() {
        let err = TableSource::parse("# only a comment\n\n").unwrap_err();
        assert!(err.to_string().contains("an empty table"), "{err}");
    }

    #[test]
    fn table_file_bad_line_quotes_at_most_40_characters() {
        let line = format!("7 0x1 {}", "z".repeat(1000));
        let err = TableSource::parse(&line).unwrap_err().to_string();
        assert!(err.len() < 120, "{err}");
        assert!(err.ends_with("..."), "{err}");
    }
}
