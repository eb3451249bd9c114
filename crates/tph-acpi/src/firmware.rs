//! One place that turns a user's firmware argument (a path) into a [`SteeringTagSource`]: a
//! table file of `UID 0xST_INFO` lines, an ASL file (compiled with the real `iasl` when opened),
//! one AML table (`.aml`, or `.dat` as `acpidump -b` writes it), or a folder of DSDT/SSDT
//! tables. Every consumer (the emulated host of `tphctl session`, `tphctl show`) opens firmware
//! through [`open`], so they accept the same things and say the same when something is wrong.
//!
//! An example ASL firmware, a host bridge `_DSM` answering from a package indexed by processor
//! UID, is `tests/data/firmware/tph-dsm.asl` (checked against `acpiexec` by the differential
//! tests). An ASL file is compiled on its own in a scratch folder: `Include ()` is not followed.

use std::path::Path;
use std::sync::Arc;

use crate::aml::{Aml, Skipped};
use crate::dsm::read_table_dir;
use crate::{AmlSource, FirmwareError, SteeringTagSource, TableSource};

/// What a firmware path holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FirmwareKind {
    /// Lines `UID 0xST_INFO` ([`TableSource::parse`]).
    Table,
    /// ASL source of one `DefinitionBlock`, compiled with `iasl`.
    Asl,
    /// One compiled definition block (DSDT or SSDT).
    Aml,
    /// A folder of `DSDT*`/`SSDT*` files (and maybe a MADT, `APIC*`).
    Dir,
}

impl FirmwareKind {
    /// How the kind is named in labels and messages.
    pub fn noun(self) -> &'static str {
        match self {
            Self::Table => "firmware table",
            Self::Asl => "ASL file",
            Self::Aml => "AML table",
            Self::Dir => "ACPI tables",
        }
    }
}

/// Opened firmware: the source and what the user should be told about it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Firmware {
    /// Answers the `_DSM` steering-tag query per processor UID.
    pub source: Arc<dyn SteeringTagSource>,
    /// What the path held.
    pub kind: FirmwareKind,
    /// A phrase naming the source: `firmware table fw.txt`,
    /// `ACPI tables dir (\_SB_.PCI0 _DSM)`, ...
    pub label: String,
    /// AML terms the loader could not run and skipped (empty for a table file).
    pub skipped: Vec<Skipped>,
}

fn io_error(path: &Path, e: &std::io::Error) -> FirmwareError {
    FirmwareError::Io {
        path: path.display().to_string(),
        why: e.to_string(),
    }
}

fn has_extension(path: &Path, exts: &[&str]) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// Whether `bytes` start with a system description table header: a printable 4-character
/// signature and a length field covering at least the 36-byte header and at most the file.
fn looks_like_sdt(bytes: &[u8]) -> bool {
    let (Some(sig), Some(len)) = (bytes.get(..4), bytes.get(4..8)) else {
        return false;
    };
    let len = len
        .iter()
        .rev()
        .fold(0usize, |a, &b| a << 8 | usize::from(b));
    sig.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_') && (36..=bytes.len()).contains(&len)
}

/// Most bytes of one firmware file (a table file, ASL, AML, or one table of a folder): ACPI
/// definition blocks of real servers are a few MB at most.
pub const FIRMWARE_MAX_BYTES: u64 = 16 << 20;

/// Reads `path` whole, refusing (while reading, not after) a file over [`FIRMWARE_MAX_BYTES`].
pub fn read_bounded(path: &Path) -> Result<Vec<u8>, FirmwareError> {
    use std::io::Read;
    let meta = std::fs::metadata(path).map_err(|e| io_error(path, &e))?;
    if !meta.is_file() {
        // A FIFO blocks at open until a writer comes; a device may never end.
        return Err(FirmwareError::Io {
            path: path.display().to_string(),
            why: "not a regular file (a FIFO, device or socket); give a regular file".into(),
        });
    }
    let file = std::fs::File::open(path).map_err(|e| io_error(path, &e))?;
    let mut bytes = Vec::new();
    file.take(FIRMWARE_MAX_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| io_error(path, &e))?;
    if bytes.len() as u64 > FIRMWARE_MAX_BYTES {
        return Err(FirmwareError::Io {
            path: path.display().to_string(),
            why: format!("larger than {FIRMWARE_MAX_BYTES} bytes (the firmware file limit)"),
        });
    }
    Ok(bytes)
}

/// Decides what `path` holds: a folder is a table folder; `.asl`/`.dsl` is ASL and
/// `.aml`/`.dat` a compiled table; any other name is sniffed (a table header, then the word
/// `DefinitionBlock`), and is a table file otherwise. Returns the file's bytes too.
pub fn kind_of(path: &Path) -> Result<(FirmwareKind, Vec<u8>), FirmwareError> {
    if path.is_dir() {
        return Ok((FirmwareKind::Dir, Vec::new()));
    }
    let bytes = read_bounded(path)?;
    let kind = if has_extension(path, &["asl", "dsl"]) {
        FirmwareKind::Asl
    } else if has_extension(path, &["aml", "dat"]) || looks_like_sdt(&bytes) {
        FirmwareKind::Aml
    } else if String::from_utf8_lossy(&bytes).contains("DefinitionBlock") {
        FirmwareKind::Asl
    } else {
        FirmwareKind::Table
    };
    Ok((kind, bytes))
}

/// ASL compiled with `iasl` (feature `iasl`).
#[cfg(feature = "iasl")]
fn compile(asl: &str) -> Result<Vec<u8>, FirmwareError> {
    crate::iasl::compile_asl(asl)
}

/// Without the `iasl` feature there is no ASL compiler: say so and what to give instead.
#[cfg(not(feature = "iasl"))]
fn compile(_asl: &str) -> Result<Vec<u8>, FirmwareError> {
    Err(FirmwareError::Table {
        table: "ASL".into(),
        why: "this build cannot compile ASL (tph-acpi feature `iasl` is off); give compiled \
              tables (.aml) instead"
            .into(),
    })
}

/// Opens the firmware at `path`, whatever kind it is (see [`kind_of`]).
pub fn open(path: &Path) -> Result<Firmware, FirmwareError> {
    let (kind, bytes) = kind_of(path)?;
    open_as(path, kind, bytes)
}

/// Opens `path` as `kind`, from its `bytes` (ignored for [`FirmwareKind::Dir`], which reads
/// the folder): for callers that decided the kind already, e.g. an option that takes only
/// folders, or that name the kind in their error messages.
pub fn open_as(path: &Path, kind: FirmwareKind, bytes: Vec<u8>) -> Result<Firmware, FirmwareError> {
    let (source, skipped, bridge): (Arc<dyn SteeringTagSource>, _, _) = match kind {
        FirmwareKind::Table => (Arc::new(table(path, &bytes)?), Vec::new(), None),
        FirmwareKind::Asl => aml_firmware(&[compile(&text(path, &bytes)?)?])?,
        FirmwareKind::Aml => aml_firmware(&[definition_block(bytes)?])?,
        FirmwareKind::Dir => aml_firmware(&load_dir_tables(path)?)?,
    };
    let label = match bridge {
        Some(b) => format!("{} {} ({b} _DSM)", kind.noun(), path.display()),
        None => format!("{} {}", kind.noun(), path.display()),
    };
    Ok(Firmware {
        source,
        kind,
        label,
        skipped,
    })
}

/// [`open`], keeping only the source: what an emulated host (`HostOptions::firmware`) takes.
pub fn open_source(path: &Path) -> Result<Arc<dyn SteeringTagSource>, FirmwareError> {
    open(path).map(|f| f.source)
}

/// The file as text; an error names the line (and byte in it) that is not UTF-8.
fn text(path: &Path, bytes: &[u8]) -> Result<String, FirmwareError> {
    String::from_utf8(bytes.to_vec()).map_err(|e| {
        let good = bytes
            .get(..e.utf8_error().valid_up_to())
            .unwrap_or_default();
        let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
        let column = good.iter().rev().take_while(|&&b| b != b'\n').count() + 1;
        FirmwareError::Io {
            path: path.display().to_string(),
            why: format!("line {line}: not UTF-8 text (byte {column} of the line is invalid)"),
        }
    })
}

fn table(path: &Path, bytes: &[u8]) -> Result<TableSource, FirmwareError> {
    TableSource::parse(&text(path, bytes)?)
}

/// A single table given as firmware must be a definition block: a MADT or FADT holds no
/// `_DSM`, and saying so beats "no host bridge".
fn definition_block(bytes: Vec<u8>) -> Result<Vec<u8>, FirmwareError> {
    match bytes.get(..4) {
        Some(b"DSDT" | b"SSDT") => Ok(bytes),
        sig => Err(FirmwareError::Table {
            table: String::from_utf8_lossy(sig.unwrap_or_default()).into_owned(),
            why: "not a definition block (DSDT or SSDT)".into(),
        }),
    }
}

/// Every `DSDT*`/`SSDT*` file in `dir`, sorted by name; an error when there is none.
pub fn load_dir_tables(dir: &Path) -> Result<Vec<Vec<u8>>, FirmwareError> {
    let tables = read_table_dir(dir)?;
    if tables.is_empty() {
        return Err(FirmwareError::Io {
            path: dir.display().to_string(),
            why: "no DSDT or SSDT file found".into(),
        });
    }
    Ok(tables)
}

/// Loads the tables of `dir` into one namespace (see [`load_dir_tables`]).
pub fn load_dir(dir: &Path) -> Result<Aml, FirmwareError> {
    let tables = load_dir_tables(dir)?;
    let refs: Vec<&[u8]> = tables.iter().map(Vec::as_slice).collect();
    Aml::load(&refs)
}

type AmlParts = (Arc<dyn SteeringTagSource>, Vec<Skipped>, Option<String>);

fn aml_firmware(tables: &[Vec<u8>]) -> Result<AmlParts, FirmwareError> {
    let refs: Vec<&[u8]> = tables.iter().map(Vec::as_slice).collect();
    let aml = Aml::load(&refs)?;
    let skipped = aml.report().skipped.clone();
    let source = AmlSource::from_aml(aml)?;
    let bridge = source.bridge().path.clone();
    Ok((Arc::new(source), skipped, Some(bridge)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdt_header_sniffing_needs_signature_and_plausible_length() {
        let mut t = b"SSDT".to_vec();
        t.extend_from_slice(&40u32.to_le_bytes());
        t.resize(40, 0);
        assert!(looks_like_sdt(&t));
        assert!(!looks_like_sdt(&t[..39]), "length beyond the file");
        assert!(!looks_like_sdt(
            b"0 0x0000000000000a01\n1 0x1\n0123456789012345678901234"
        ));
        assert!(!looks_like_sdt(b"SSDT"));
    }

    #[test]
    fn skipped_term_displays_table_offset_scope_and_cause() {
        let s = Skipped {
            table: 1,
            offset: 0x1a,
            opcode: 0x5b,
            scope: "\\_SB_".into(),
            why: "bad opcode".into(),
        };
        assert_eq!(
            s.to_string(),
            "table 1 offset 0x1a in \\_SB_: skipped: bad opcode"
        );
    }

    #[test]
    fn non_definition_block_table_is_refused_by_signature() {
        let err = definition_block(b"APIC....".to_vec()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "table APIC: not a definition block (DSDT or SSDT)"
        );
    }

    #[test]
    fn firmware_file_over_the_limit_is_refused_without_reading_it_whole() {
        let dir = std::env::temp_dir().join(format!("tph-acpi-big-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("big.txt");
        let f = std::fs::File::create(&path).expect("create");
        // A sparse file: 1 GiB long, no disk blocks.
        f.set_len(1 << 30).expect("set_len");
        let err = kind_of(&path).expect_err("over the limit");
        std::fs::remove_dir_all(&dir).expect("clean up");
        assert!(
            err.to_string()
                .ends_with("larger than 16777216 bytes (the firmware file limit)"),
            "{err}"
        );
    }

    #[test]
    fn firmware_text_not_utf8_names_the_line_and_byte() {
        let err = text(Path::new("fw.txt"), b"0 0x1\n1 0x\xff2\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "fw.txt: line 2: not UTF-8 text (byte 5 of the line is invalid)"
        );
    }
}
