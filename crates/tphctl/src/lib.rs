//! The command languages of `tphctl session` and `tphctl vm`, as a library.
//!
//! The `tphctl` binary reads its standard input through [`lines`] and parses each line with
//! [`session::parse`] or [`vm::parse`]; what a command does, and how its answer is printed, stays
//! in the binary. The parsers are pure (a line in, a typed command or a [`ParseError`] out; no
//! I/O, no printing), so the fuzz crate (`crates/tphctl/fuzz`) links them without the binary.
//! Drivers have no use for this crate: it is the command line's, and `tph-client` and `tph-vmm`
//! do not depend on it.
#![forbid(unsafe_code)]

mod error;
pub mod lines;
pub mod session;
pub mod vm;

pub use error::ParseError;

/// `text` quoted for a message, cut to its first 40 characters (as dump errors quote a line).
pub fn quote(text: &str) -> String {
    tph_regs::dump::quote(text)
}

/// Most MSI-X vectors a function can have (the Table Size field is 11 bits).
pub const MAX_VECTORS: u32 = 2048;

/// A number as the languages write one: decimal, or hexadecimal after `0x` (or `0X`), fitting
/// `T`; `what` names it in the error.
pub(crate) fn number<T: TryFrom<u64>>(text: &str, what: &'static str) -> Result<T, ParseError> {
    let v = match text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => text.parse::<u64>(),
    };
    v.ok()
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| ParseError::BadNumber {
            what,
            text: text.to_owned(),
        })
}

/// `CPU`, `CPU:vm` or `CPU:pm` (`what` names the CPU in the error).
pub(crate) fn cpu_mem(
    text: &str,
    what: &'static str,
) -> Result<(u32, tph_client::MemType), ParseError> {
    use tph_client::MemType;
    let (cpu, mem) = match text.split_once(':') {
        Some((c, "vm")) => (c, MemType::Volatile),
        Some((c, "pm")) => (c, MemType::Persistent),
        Some((_, m)) => return Err(ParseError::BadMemType(m.to_owned())),
        None => (text, MemType::Volatile),
    };
    Ok((number(cpu, what)?, mem))
}
