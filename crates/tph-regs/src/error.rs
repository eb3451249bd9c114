//! The crate's error type.

use std::path::PathBuf;

/// Everything that can go wrong while reading or decoding configuration space.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A BDF string is not `[DDDD:]BB:DD.F` in hexadecimal.
    #[error("invalid BDF {0:?}: expected [DDDD:]BB:DD.F in hexadecimal")]
    BadBdf(String),
    /// A line of an lspci dump could not be understood.
    #[error("line {line}: {what}")]
    DumpSyntax {
        /// 1-based line number.
        line: usize,
        /// What was wrong with it.
        what: String,
    },
    /// The same function appears twice in one dump or tree.
    #[error("function {0} appears twice")]
    DuplicateFunction(String),
    /// A function has no configuration bytes at all.
    #[error("function {0} has no configuration space bytes")]
    EmptyFunction(String),
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
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
