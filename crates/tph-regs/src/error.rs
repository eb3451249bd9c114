//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading or decoding configuration space.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A BDF string is not `[DDDD:]BB:DD.F` in hexadecimal.
    #[error("invalid BDF {text}: {problem} (expected [DDDD:]BB:DD.F in hexadecimal)")]
    BadBdf {
        /// The text offered, quoted and cut to a short prefix.
        text: String,
        /// Which field is wrong, and how.
        problem: crate::machine::BdfProblem,
    },
    /// A line of an lspci dump could not be understood.
    #[error("line {line}: {what}")]
    DumpSyntax {
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        what: String,
    },
    /// A function has no configuration bytes at all.
    #[error(
        "line {line}: function {bdf} has no hex lines: the dump must hold configuration bytes \
         (`lspci -xxxx`, with or without -vvv)"
    )]
    EmptyFunction {
        /// The function.
        bdf: String,
        /// Its device line.
        line: usize,
    },
    /// A dump holds no function at all.
    #[error("{}", if *.text { "no device line: this is not an lspci dump (`lspci -xxxx`)" } else { "the dump is empty (expected the output of `lspci -xxxx`)" })]
    EmptyDump {
        /// Whether it held any non-blank line.
        text: bool,
    },
    /// A dump or tree exceeds a size limit (see `tph_regs::dump::DumpLimits`).
    #[error("more than {limit} {what} (the limit)")]
    DumpTooLarge {
        /// `bytes` or `functions`.
        what: &'static str,
        /// The limit.
        limit: u64,
    },
    /// A dump could not be read.
    #[error("reading the dump: {0}")]
    DumpRead(String),
    /// A file or directory could not be read.
    #[error("cannot read {}", path.display())]
    Io {
        /// What was being read.
        path: PathBuf,
        /// The underlying cause.
        #[source]
        source: std::io::Error,
    },
    /// A register lies (partly) beyond the configuration bytes that were read.
    #[error("{what} at {offset:#x} lies beyond the {len} bytes of configuration space read")]
    Truncated {
        /// The structure being read.
        what: &'static str,
        /// Its offset.
        offset: usize,
        /// How many bytes were available.
        len: usize,
    },
    /// A value does not fit the register field it is meant for.
    #[error("{value} does not fit the {bits}-bit {field} field")]
    FieldRange {
        /// The field.
        field: &'static str,
        /// Its width.
        bits: u8,
        /// The value offered.
        value: u8,
    },
    /// The MSI-X table could not be read from the BAR's resource file.
    #[error("cannot read the MSI-X table of {bdf} from {}: {why}", path.display())]
    MsixTable {
        /// The function.
        bdf: String,
        /// The resource file.
        path: PathBuf,
        /// Why not.
        why: String,
    },
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
