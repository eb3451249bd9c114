//! Reader of `lspci -x` / `-xxx` / `-xxxx` text dumps, with or without the `-vvv` text and
//! with or without domains.
//!
//! A line at column 0 is either a device line (`[DDDD:]BB:DD.F <description>`) or a hex line
//! (`OFF: b0 b1 ...`, up to 16 bytes); indented lines are `-v` text and blank lines separate
//! devices. The configuration space of a function is as long as its highest hex line (64, 256
//! or 4096 bytes for what lspci writes): bytes past it are unavailable, as they are to
//! `lspci -F`; gaps between lines read as zero.

use crate::machine::{Bdf, Function, Machine};
use crate::Error;

/// Largest configuration space (PCI Express extended space).
pub const CONFIG_MAX: usize = 4096;

/// Parses a whole dump.
pub fn parse_lspci_dump(text: &str) -> Result<Machine, Error> {
    let mut functions: Vec<Function> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim_end();
        if line.is_empty() || line.starts_with([' ', '\t']) {
            continue;
        }
        let syntax = |what: String| Error::DumpSyntax { line: i + 1, what };
        if let Some((off, (bytes, n))) = hex_line(line).map_err(syntax)? {
            let f = functions
                .last_mut()
                .ok_or_else(|| syntax("hex bytes before any device line".into()))?;
            put_bytes(&mut f.config, off, bytes.get(..n).unwrap_or_default());
        } else {
            start_function(&mut functions, line).map_err(syntax)?;
        }
    }
    functions.iter_mut().try_for_each(finish_function)?;
    Ok(Machine { functions })
}

fn start_function(functions: &mut Vec<Function>, line: &str) -> Result<(), String> {
    let word = line.split_whitespace().next().unwrap_or_default();
    let bdf: Bdf = word
        .parse()
        .map_err(|_| format!("neither a device line nor a hex line: {line:?}"))?;
    if functions.iter().any(|f| f.bdf == bdf) {
        return Err(format!("function {bdf} appears twice"));
    }
    functions.push(Function {
        bdf,
        config: Vec::new(),
    });
    Ok(())
}

/// Most bytes one hex line carries.
const LINE_BYTES: usize = 16;

/// The bytes of one hex line.
type LineBytes = ([u8; LINE_BYTES], usize);

/// `Ok(Some)` for a hex line, `Ok(None)` for a line that is not one, `Err` for a malformed one.
fn hex_line(line: &str) -> Result<Option<(usize, LineBytes)>, String> {
    // The offset has 1 to 3 hex digits, so the colon is among the first four bytes.
    let Some(colon) = line.bytes().take(4).position(|b| b == b':') else {
        return Ok(None);
    };
    let (off, rest) = (
        line.get(..colon).unwrap_or_default(),
        line.get(colon + 1..).unwrap_or_default(),
    );
    let Some(rest) = rest.strip_prefix(' ') else {
        return Ok(None);
    };
    if off.is_empty() || !off.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(None);
    }
    let off = usize::from_str_radix(off, 16).map_err(|e| e.to_string())?;
    if off % 16 != 0 || off >= CONFIG_MAX {
        return Err(format!(
            "hex line offset {off:#x} is not a multiple of 16 below 0x1000"
        ));
    }
    if let Some(fast) = canonical_bytes(rest.as_bytes()) {
        return Ok(Some((off, fast)));
    }
    let mut bytes = [0u8; LINE_BYTES];
    let mut n = 0;
    for word in rest.split_ascii_whitespace() {
        let slot = bytes
            .get_mut(n)
            .ok_or_else(|| format!("hex line at {off:#x} holds more than 16 bytes"))?;
        *slot = parse_byte(word)?;
        n += 1;
    }
    if n == 0 {
        return Err(format!("hex line at {off:#x} holds no bytes"));
    }
    Ok(Some((off, (bytes, n))))
}

/// Fast path for the layout lspci writes: `hh` pairs separated by single spaces. `None` for
/// anything else, which the general path then parses (or rejects).
fn canonical_bytes(rest: &[u8]) -> Option<LineBytes> {
    let mut bytes = [0u8; LINE_BYTES];
    let mut n = 0;
    let mut words = rest.chunks(3);
    for slot in bytes.iter_mut() {
        let Some(word) = words.next() else { break };
        let (hi, lo, sep) = match *word {
            [hi, lo] => (hi, lo, b' '),
            [hi, lo, sep] => (hi, lo, sep),
            _ => return None,
        };
        if sep != b' ' {
            return None;
        }
        *slot = hex_digit(hi)? << 4 | hex_digit(lo)?;
        n += 1;
    }
    (n > 0 && words.next().is_none()).then_some((bytes, n))
}

fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn parse_byte(s: &str) -> Result<u8, String> {
    match *s.as_bytes() {
        [hi, lo] => hex_digit(hi).zip(hex_digit(lo)).map(|(h, l)| h << 4 | l),
        _ => None,
    }
    .ok_or_else(|| format!("{s:?} is not a hex byte"))
}

fn put_bytes(config: &mut Vec<u8>, off: usize, bytes: &[u8]) {
    let end = off + bytes.len();
    if config.len() < end {
        config.resize(end, 0);
    }
    if let Some(dst) = config.get_mut(off..end) {
        dst.copy_from_slice(bytes);
    }
}

/// Checks a finished function: it must hold at least one byte.
fn finish_function(f: &mut Function) -> Result<(), Error> {
    if f.config.is_empty() {
        return Err(Error::EmptyFunction(f.bdf.to_string()));
    }
    Ok(())
}

/// Renders `machine` back as an `lspci -xxxx`-style dump (device lines carry no description).
pub fn write_lspci_dump(machine: &Machine, out: &mut impl std::fmt::Write) -> std::fmt::Result {
    let domains = machine.shows_domains();
    for f in &machine.functions {
        writeln!(out, "{} Device", f.bdf.lspci_str(domains))?;
        for (row, chunk) in f.config.chunks(16).enumerate() {
            write!(out, "{:02x}:", row * 16)?;
            chunk.iter().try_for_each(|b| write!(out, " {b:02x}"))?;
            writeln!(out)?;
        }
        writeln!(out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dump_with_domain_and_vvv_text_parses() {
        let text = "0001:19:00.0 Ethernet controller: X\n\tControl: I/O-\n00: 86 80 21 15\n";
        let m = parse_lspci_dump(text).expect("valid dump");
        assert_eq!(m.functions.len(), 1);
        assert_eq!(m.functions[0].bdf.to_string(), "0001:19:00.0");
        assert_eq!(m.functions[0].config, [0x86, 0x80, 0x21, 0x15]);
    }

    #[test]
    fn dump_length_is_highest_line_end_with_gaps_zero() {
        let m = parse_lspci_dump("00:01.0 x\n00: 01\n100: 17 00 01 00\n").expect("valid");
        assert_eq!(m.functions[0].config.len(), 0x104);
        assert_eq!(m.functions[0].config[1..0x100], [0u8; 0xff]);
    }

    #[test]
    fn dump_hex_before_device_is_error_with_line() {
        let e = parse_lspci_dump("\n00: 00 01\n").expect_err("must fail");
        assert!(matches!(e, Error::DumpSyntax { line: 2, .. }), "{e}");
    }

    #[test]
    fn dump_fast_and_general_paths_agree() {
        let canonical = parse_lspci_dump("00:01.0 x\n00: 0a 0B ff\n").expect("valid");
        let spaced = parse_lspci_dump("00:01.0 x\n00:  0a   0B\tff\n").expect("valid");
        assert_eq!(canonical, spaced);
        assert_eq!(canonical.functions[0].config, [0x0a, 0x0b, 0xff]);
        assert!(parse_lspci_dump("00:01.0 x\n00: 0a 0b \n").is_ok());
        assert!(parse_lspci_dump(&format!("00:01.0 x\n00:{}\n", " 00".repeat(17))).is_err());
    }

    #[test]
    fn dump_bad_byte_and_bad_offset_are_errors() {
        assert!(parse_lspci_dump("00:01.0 x\n00: 0g\n").is_err());
        assert!(parse_lspci_dump("00:01.0 x\n08: 00\n").is_err());
        assert!(parse_lspci_dump("00:01.0 x\n").is_err());
        assert!(parse_lspci_dump("00:01.0 x\n00: 00\n00:01.0 y\n00: 00\n").is_err());
    }

    #[test]
    fn dump_write_then_parse_round_trips() {
        let m = parse_lspci_dump("0002:01:00.1 x\n00: 01 02\n100: 17\n").expect("valid");
        let mut s = String::new();
        write_lspci_dump(&m, &mut s).expect("string write");
        assert_eq!(parse_lspci_dump(&s).expect("re-parse"), m);
    }
}
