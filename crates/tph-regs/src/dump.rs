//! Reader of `lspci -x` / `-xxx` / `-xxxx` text dumps, with or without the `-vvv` text and
//! with or without domains.
//!
//! A line at column 0 is either a device line (`[DDDD:]BB:DD.F <description>`) or a hex line
//! (`OFF: b0 b1 ...`, up to 16 bytes); indented lines are `-v` text and blank lines separate
//! devices. The configuration space of a function is as long as its highest hex line (64, 256
//! or 4096 bytes for what lspci writes): bytes past it are unavailable, as they are to
//! `lspci -F`; gaps between lines read as zero.
//!
//! Reading is streaming, linear and bounded ([`DumpLimits`]): a line longer than the limit, a
//! dump larger than the limit or with more functions than the limit is refused while it is
//! read, so memory stays under a fixed bound whatever the input. Errors name the line and
//! quote at most [`QUOTE_CHARS`] characters of it.

use std::collections::HashMap;
use std::io::BufRead;

use crate::machine::{Bdf, Function, Machine};
use crate::Error;

/// Largest configuration space (PCI Express extended space).
pub const CONFIG_MAX: usize = 4096;

/// Bytes of the configuration header every function keeps.
const HEADER_LEN: usize = 64;

/// Most characters of a bad line an error message quotes.
pub const QUOTE_CHARS: usize = 40;

/// Size limits of a dump, checked while reading.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DumpLimits {
    /// Most bytes in the whole dump.
    pub max_bytes: u64,
    /// Most bytes in one line (without its newline).
    pub max_line: usize,
    /// Most functions (device lines).
    pub max_functions: usize,
}

/// Most bytes of a dump: 512 MiB (a `-xxxx -vvv` dump of a 4,096-function server is about
/// 60 MB).
pub const DUMP_MAX_BYTES: u64 = 512 << 20;
/// Most bytes of one dump line: `-vvv` text lines are far shorter.
pub const DUMP_MAX_LINE: usize = 4096;
/// Most functions in one dump: 131,072, two whole PCI segments.
pub const DUMP_MAX_FUNCTIONS: usize = 1 << 17;

impl Default for DumpLimits {
    fn default() -> Self {
        Self::new()
    }
}

impl DumpLimits {
    /// The default limits ([`DUMP_MAX_BYTES`], [`DUMP_MAX_LINE`], [`DUMP_MAX_FUNCTIONS`]).
    ///
    /// ```
    /// use tph_regs::dump::DumpLimits;
    /// let l = DumpLimits::new().with_max_functions(16);
    /// assert_eq!((l.max_functions, l.max_line), (16, DumpLimits::default().max_line));
    /// ```
    pub const fn new() -> Self {
        Self {
            max_bytes: DUMP_MAX_BYTES,
            max_line: DUMP_MAX_LINE,
            max_functions: DUMP_MAX_FUNCTIONS,
        }
    }

    /// The same with at most `bytes` bytes in the whole dump.
    #[must_use]
    pub const fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = bytes;
        self
    }

    /// The same with at most `bytes` bytes in one line.
    #[must_use]
    pub const fn with_max_line(mut self, bytes: usize) -> Self {
        self.max_line = bytes;
        self
    }

    /// The same with at most `functions` functions.
    #[must_use]
    pub const fn with_max_functions(mut self, functions: usize) -> Self {
        self.max_functions = functions;
        self
    }
}

/// `line` quoted for an error message: at most [`QUOTE_CHARS`] characters, `...` when cut.
pub fn quote(line: &str) -> String {
    match line.char_indices().nth(QUOTE_CHARS) {
        Some((cut, _)) => format!("{:?}...", line.get(..cut).unwrap_or_default()),
        None => format!("{line:?}"),
    }
}

/// Parses a whole dump held in memory (with the default limits).
pub fn parse_lspci_dump(text: &str) -> Result<Machine, Error> {
    read_lspci_dump(text.as_bytes(), DumpLimits::default())
}

/// Reads a dump from `input` line by line, within `limits`.
pub fn read_lspci_dump(input: impl BufRead, limits: DumpLimits) -> Result<Machine, Error> {
    read_focused(input, limits, Keep::All)
}

/// Reads a dump for work on one function, `focus`: every other endpoint keeps only its
/// 64-byte header (enough to list it; bridges keep everything, for the topology and the root
/// ports' registers), so memory follows what is used rather than the machine's size.
pub fn read_lspci_dump_for(
    input: impl BufRead,
    limits: DumpLimits,
    focus: Bdf,
) -> Result<Machine, Error> {
    read_focused(input, limits, Keep::Focus(focus))
}

/// How many leading bytes of an endpoint's configuration space a trimming reader keeps (see
/// [`read_lspci_dump_trimmed`]); the rest is dropped once the endpoint is read.
pub type Extent = fn(&[u8]) -> usize;

/// Reads a dump keeping of every endpoint only the first `extent(config)` bytes (bridges keep
/// everything, for the topology and the root ports' registers): a reader of one part of the
/// space (`tph-report` keeps what its verdict, report and lspci lines read) then holds a few
/// hundred bytes a function instead of 4 KiB.
pub fn read_lspci_dump_trimmed(
    input: impl BufRead,
    limits: DumpLimits,
    extent: Extent,
) -> Result<Machine, Error> {
    read_focused(input, limits, Keep::Extent(extent))
}

/// What the reader keeps of each endpoint once it is complete (bridges keep everything).
#[derive(Clone, Copy, Debug)]
enum Keep {
    /// Every byte.
    All,
    /// Every byte of this function; the header of the others.
    Focus(Bdf),
    /// The bytes this function of the endpoint's bytes says.
    Extent(Extent),
}

fn read_focused(input: impl BufRead, limits: DumpLimits, keep: Keep) -> Result<Machine, Error> {
    let mut reader = DumpReader::new(limits);
    reader.keep = keep;
    let mut input = input;
    // Lines are read in place in the reader's buffer; only a line split across two fills is
    // gathered in `buf`, which never holds more than the line limit allows.
    let mut buf = Vec::with_capacity(128);
    let most = limits.max_line + 2;
    let mut total: u64 = 0;
    let mut number = 0usize;
    let read_err = |e: std::io::Error| Error::DumpRead(e.to_string());
    loop {
        let chunk = input.fill_buf().map_err(read_err)?;
        if chunk.is_empty() {
            if buf.is_empty() {
                break;
            }
            number += 1;
            let line = line_text(&buf, number, limits.max_line)?;
            reader.line(number, line)?;
            break;
        }
        // A full hex row is 52 bytes with its newline (53 with a 3-digit offset, one more
        // with CR): tried first, so that nearly every line is found without a scan for its end.
        let row = if buf.is_empty() {
            [52, 53, 54].into_iter().find_map(|n: usize| {
                let raw = chunk.get(..n)?;
                let (off, bytes) = (raw.last() == Some(&b'\n')).then(|| full_hex_line(raw))??;
                Some((n, off, bytes))
            })
        } else {
            None
        };
        if let Some((used, off, bytes)) = row {
            total += used as u64;
            if total > limits.max_bytes {
                return Err(Error::DumpTooLarge {
                    what: "bytes",
                    limit: limits.max_bytes,
                });
            }
            number += 1;
            reader.hex(number, off, &bytes)?;
            input.consume(used);
            continue;
        }
        let (used, line_end) = match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => (at + 1, true),
            None => (chunk.len(), false),
        };
        total += used as u64;
        if total > limits.max_bytes {
            return Err(Error::DumpTooLarge {
                what: "bytes",
                limit: limits.max_bytes,
            });
        }
        if line_end && buf.is_empty() && used <= most {
            // The whole line is in the buffer: no copy; a full hex row as lspci writes it
            // (nearly every line of a dump) goes straight to its bytes.
            number += 1;
            let raw = chunk.get(..used).unwrap_or_default();
            match full_hex_line(raw) {
                Some((off, bytes)) => reader.hex(number, off, &bytes)?,
                None => reader.line(number, line_text(raw, number, limits.max_line)?)?,
            }
        } else {
            let room = most.saturating_sub(buf.len());
            buf.extend_from_slice(chunk.get(..used.min(room)).unwrap_or_default());
            if line_end || buf.len() >= most {
                number += 1;
                let line = line_text(&buf, number, limits.max_line)?;
                reader.line(number, line)?;
                buf.clear();
            }
        }
        input.consume(used);
    }
    reader.finish()
}

/// The text of one raw line: without its line ending, within the length limit, UTF-8.
fn line_text(buf: &[u8], number: usize, max_line: usize) -> Result<&str, Error> {
    let body = buf.strip_suffix(b"\n").unwrap_or(buf);
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let syntax = |what: String| Error::DumpSyntax { line: number, what };
    if body.len() > max_line {
        let start = String::from_utf8_lossy(body.get(..QUOTE_CHARS * 4).unwrap_or(body));
        return Err(syntax(format!(
            "longer than {max_line} bytes (the line limit): {}",
            quote(&start)
        )));
    }
    std::str::from_utf8(body).map_err(|e| {
        let good = String::from_utf8_lossy(body.get(..e.valid_up_to()).unwrap_or_default());
        syntax(format!(
            "not UTF-8 text (byte {} of the line is invalid), after {}",
            e.valid_up_to() + 1,
            quote(&good)
        ))
    })
}

/// The state of a dump being read.
struct DumpReader {
    limits: DumpLimits,
    functions: Vec<Function>,
    /// Device line of each function read, in order, to name the first of a duplicate.
    lines: Vec<usize>,
    /// Functions by address, built only once a dump leaves address order (lspci writes it
    /// sorted, so the usual check is one comparison with the highest address so far).
    seen: Option<HashMap<Bdf, usize>>,
    /// Line of each hex row of the current function (0: not given yet).
    rows: Box<[usize; CONFIG_MAX / 16]>,
    /// Line of the current function's device line.
    device_line: usize,
    /// Whether a non-empty line of any kind was read (for the "empty dump" error).
    any_text: bool,
    /// What to keep of each endpoint.
    keep: Keep,
}

impl DumpReader {
    fn new(limits: DumpLimits) -> Self {
        Self {
            limits,
            functions: Vec::new(),
            lines: Vec::new(),
            seen: None,
            rows: Box::new([0; CONFIG_MAX / 16]),
            device_line: 0,
            any_text: false,
            keep: Keep::All,
        }
    }

    fn line(&mut self, number: usize, raw: &str) -> Result<(), Error> {
        let line = raw.trim_end();
        if line.is_empty() {
            return Ok(());
        }
        self.any_text = true;
        if line.starts_with([' ', '\t']) {
            return Ok(());
        }
        let syntax = |what: String| Error::DumpSyntax { line: number, what };
        match hex_line(line).map_err(syntax)? {
            Some((off, (bytes, n))) => self.hex(number, off, bytes.get(..n).unwrap_or_default()),
            None => self.device(number, line),
        }
    }

    fn hex(&mut self, number: usize, off: usize, bytes: &[u8]) -> Result<(), Error> {
        self.any_text = true;
        let syntax = |what: String| Error::DumpSyntax { line: number, what };
        let Some(f) = self.functions.last_mut() else {
            return Err(syntax("hex bytes before any device line".into()));
        };
        let slot = self
            .rows
            .get_mut(off / 16)
            .ok_or_else(|| syntax("offset".into()))?;
        if *slot != 0 {
            return Err(syntax(format!(
                "offset {off:#x} of {} appears twice (first on line {})",
                f.bdf, *slot
            )));
        }
        *slot = number;
        put_bytes(&mut f.config, off, bytes);
        Ok(())
    }

    fn device(&mut self, number: usize, line: &str) -> Result<(), Error> {
        let syntax = |what: String| Error::DumpSyntax { line: number, what };
        self.check_last()?;
        let word = line.split_whitespace().next().unwrap_or_default();
        let bdf: Bdf = word.parse().map_err(|_| {
            syntax(format!(
                "neither a device line (`[DDDD:]BB:DD.F ...`) nor a hex line (`OFF: hh hh ...`): {}",
                quote(line)
            ))
        })?;
        if let Some(first) = self.first_line_of(bdf, number) {
            return Err(syntax(format!(
                "function {bdf} appears twice (first on line {first})"
            )));
        }
        if self.functions.len() >= self.limits.max_functions {
            return Err(Error::DumpTooLarge {
                what: "functions",
                limit: self.limits.max_functions as u64,
            });
        }
        self.functions.push(Function {
            bdf,
            // One allocation for the whole space (lspci -xxxx writes 4096 bytes); a shorter
            // function gives the rest back when it is complete.
            config: Vec::with_capacity(CONFIG_MAX),
        });
        self.rows.fill(0);
        self.device_line = number;
        Ok(())
    }

    /// The device line of an earlier function at `bdf` (now on line `number`), if any.
    fn first_line_of(&mut self, bdf: Bdf, number: usize) -> Option<usize> {
        let sorted_so_far = self.seen.is_none();
        if sorted_so_far && self.functions.last().is_none_or(|f| f.bdf < bdf) {
            self.lines.push(number);
            return None;
        }
        let (functions, lines) = (&self.functions, &self.lines);
        let seen = self.seen.get_or_insert_with(|| {
            functions
                .iter()
                .map(|f| f.bdf)
                .zip(lines.iter().copied())
                .collect()
        });
        let first = seen.get(&bdf).copied();
        if first.is_none() {
            seen.insert(bdf, number);
            self.lines.push(number);
        }
        first
    }

    /// The function read last must hold at least one byte; out of focus, an endpoint keeps
    /// only its header.
    fn check_last(&mut self) -> Result<(), Error> {
        let Some(f) = self.functions.last_mut() else {
            return Ok(());
        };
        if f.config.is_empty() {
            return Err(Error::EmptyFunction {
                bdf: f.bdf.to_string(),
                line: self.device_line,
            });
        }
        let keep = match self.keep {
            _ if f.bridge_buses().is_some() => f.config.len(),
            Keep::All => f.config.len(),
            Keep::Focus(b) if b == f.bdf => f.config.len(),
            Keep::Focus(_) => HEADER_LEN,
            Keep::Extent(extent) => extent(&f.config),
        };
        f.config.truncate(keep);
        f.config.shrink_to_fit();
        Ok(())
    }

    fn finish(mut self) -> Result<Machine, Error> {
        self.check_last()?;
        if self.functions.is_empty() {
            return Err(Error::EmptyDump {
                text: self.any_text,
            });
        }
        Ok(Machine {
            functions: self.functions,
        })
    }
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
    if let Some(full) = full_row(rest) {
        return Some((full, LINE_BYTES));
    }
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

/// `OFF: hh hh ... hh` with 16 bytes exactly as lspci writes it (2 or 3 offset digits, a
/// multiple of 16 in the configuration space), line ending included; `None` for anything
/// else, which [`hex_line`] then reads (or refuses, naming why).
fn full_hex_line(raw: &[u8]) -> Option<(usize, [u8; LINE_BYTES])> {
    let body = raw.strip_suffix(b"\n")?;
    let body = body.strip_suffix(b"\r").unwrap_or(body);
    let digits = match body {
        [_, _, b':', b' ', ..] => 2,
        [_, _, _, b':', b' ', ..] => 3,
        _ => return None,
    };
    let off = body.get(..digits)?.iter().try_fold(0usize, |acc, &d| {
        let v = HEX[usize::from(d)];
        (v < 16).then_some(acc << 4 | usize::from(v))
    })?;
    if off % 16 != 0 || off >= CONFIG_MAX {
        return None;
    }
    full_row(body.get(digits + 2..)?).map(|bytes| (off, bytes))
}

/// The row lspci writes almost always: 16 `hh` pairs separated by single spaces (47 bytes).
fn full_row(rest: &[u8]) -> Option<[u8; LINE_BYTES]> {
    if rest.len() != 3 * LINE_BYTES - 1 {
        return None;
    }
    let mut bytes = [0u8; LINE_BYTES];
    let (mut bad, mut gaps) = (0u8, 0u8);
    for (slot, pair) in bytes.iter_mut().zip(rest.chunks(3)) {
        if let [hi, lo, rest @ ..] = pair {
            let (hi, lo) = (HEX[usize::from(*hi)], HEX[usize::from(*lo)]);
            bad |= hi | lo;
            *slot = hi << 4 | (lo & 0xf);
            if let [sep] = rest {
                gaps |= sep ^ b' ';
            }
        }
    }
    (bad & 0xf0 == 0 && gaps == 0).then_some(bytes)
}

/// Value of each hex digit; 0xff for any other byte.
const HEX: [u8; 256] = {
    let mut t = [0xffu8; 256];
    let mut i = 0;
    while i < 10 {
        t[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        t[b'a' as usize + i] = 10 + i as u8;
        t[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    t
};

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
    use std::io::Read;

    #[test]
    fn lines_split_across_buffer_fills_read_as_whole_lines() {
        let text = "00:00.0 Host bridge: X\n00: 86 80 21 15 06 04 10 00 01 00 00 06 00 00 00 00\n\
                    10: 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00\n\n\
                    00:01.0 Device\r\n00: 86 80 22 15\n30: 01 02";
        let whole = parse_lspci_dump(text).expect("valid dump");
        for capacity in [1, 2, 5, 16, 47, 48, 64, 1 << 16] {
            let input = std::io::BufReader::with_capacity(capacity, text.as_bytes());
            let m = read_lspci_dump(input, DumpLimits::default()).expect("valid dump");
            assert_eq!(m.functions, whole.functions, "buffer of {capacity} bytes");
        }
        assert_eq!(
            whole.functions[1].config.get(0x30..0x32),
            Some(&[1u8, 2][..])
        );
    }

    #[test]
    fn a_line_over_the_limit_is_refused_whatever_the_buffer() {
        let limits = DumpLimits {
            max_line: 8,
            ..DumpLimits::default()
        };
        let text = "00:00.0 Host bridge\n";
        for capacity in [1, 4, 64] {
            let input = std::io::BufReader::with_capacity(capacity, text.as_bytes());
            let err = read_lspci_dump(input, limits).expect_err("line of 19 bytes");
            assert!(err.to_string().contains("longer than 8 bytes"), "{err}");
        }
    }

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

    /// Limits small enough to reach in a test.
    fn tiny(max_bytes: u64, max_line: usize, max_functions: usize) -> DumpLimits {
        DumpLimits {
            max_bytes,
            max_line,
            max_functions,
        }
    }

    #[test]
    fn dump_more_functions_than_the_limit_is_refused_while_reading() {
        let text = "00:01.0 x\n00: 00\n00:02.0 x\n00: 00\n00:03.0 x\n00: 00\n";
        let e = read_lspci_dump(text.as_bytes(), tiny(1 << 20, 64, 2)).expect_err("limit");
        assert_eq!(e.to_string(), "more than 2 functions (the limit)");
    }

    #[test]
    fn dump_larger_than_the_byte_limit_is_refused_while_reading() {
        let text: String = (0..32)
            .map(|d| format!("00:{d:02x}.0 x\n00: 00\n"))
            .collect();
        let e = read_lspci_dump(text.as_bytes(), tiny(64, 64, 1000)).expect_err("limit");
        assert_eq!(e.to_string(), "more than 64 bytes (the limit)");
    }

    #[test]
    fn dump_endless_line_is_refused_quoting_a_short_prefix() {
        // An endless line without a newline (as /dev/zero or a one-line file gives).
        let endless = std::io::repeat(b'a').take(10 << 20);
        let e = read_lspci_dump(std::io::BufReader::new(endless), DumpLimits::default())
            .expect_err("too long");
        let msg = e.to_string();
        assert!(msg.starts_with("line 1: longer than 4096 bytes"), "{msg}");
        assert!(msg.len() < 120, "a short prefix only: {msg}");
    }

    #[test]
    fn dump_not_utf8_names_the_line_and_byte() {
        let e = parse_lspci_dump_bytes(b"00:01.0 x\n00: 00 \xff\n").expect_err("not UTF-8");
        assert_eq!(
            e.to_string(),
            "line 2: not UTF-8 text (byte 8 of the line is invalid), after \"00: 00 \""
        );
    }

    fn parse_lspci_dump_bytes(b: &[u8]) -> Result<Machine, Error> {
        read_lspci_dump(b, DumpLimits::default())
    }

    #[test]
    fn dump_duplicated_offset_is_an_error_naming_both_lines() {
        let e = parse_lspci_dump("00:01.0 x\n00: 01\n10: 02\n00: 03\n").expect_err("dup");
        assert_eq!(
            e.to_string(),
            "line 4: offset 0x0 of 0000:00:01.0 appears twice (first on line 2)"
        );
    }

    #[test]
    fn dump_duplicated_function_is_an_error_naming_both_lines() {
        let e = parse_lspci_dump("00:01.0 x\n00: 00\n\n0000:00:01.0 y\n00: 00\n").expect_err("dup");
        assert_eq!(
            e.to_string(),
            "line 4: function 0000:00:01.0 appears twice (first on line 1)"
        );
    }

    #[test]
    fn dump_empty_or_blank_is_an_error_not_an_empty_machine() {
        let empty = parse_lspci_dump("").expect_err("empty");
        assert!(matches!(empty, Error::EmptyDump { text: false }), "{empty}");
        let blank = parse_lspci_dump("\n\n  \n").expect_err("blank");
        assert!(matches!(blank, Error::EmptyDump { .. }), "{blank}");
        let text_only = parse_lspci_dump("\tControl: I/O-\n").expect_err("no device");
        assert!(
            text_only.to_string().contains("not an lspci dump"),
            "{text_only}"
        );
    }

    #[test]
    fn dump_vvv_text_without_hex_hints_lspci_xxxx() {
        let text = "00:01.0 Ethernet controller: X\n\tControl: I/O-\n\n00:02.0 Y\n";
        let e = parse_lspci_dump(text).expect_err("no bytes");
        let msg = e.to_string();
        assert!(
            msg.starts_with("line 1: function 0000:00:01.0 has no hex lines"),
            "{msg}"
        );
        assert!(msg.contains("lspci -xxxx"), "{msg}");
    }

    #[test]
    fn dump_bad_line_error_quotes_at_most_40_characters() {
        let line = format!("zz {}", "y".repeat(500));
        let e = parse_lspci_dump(&format!("00:01.0 x\n00: 00\n{line}\n")).expect_err("bad");
        let msg = e.to_string();
        assert!(msg.starts_with("line 3: neither a device line"), "{msg}");
        assert!(msg.ends_with(&format!("{:?}...", &line[..40])), "{msg}");
    }

    #[test]
    fn dump_read_for_one_function_keeps_only_headers_of_other_endpoints() {
        // Three 256-byte functions: endpoints 01:00.0 and 01:00.1, bridge 00:01.0.
        let row = |off: usize, b: u8| format!("{off:02x}: {}\n", format!("{b:02x} ").repeat(16));
        let function = |bdf: &str, header_type: u8| {
            let mut text = format!("{bdf} x\n");
            for off in (0..256).step_by(16) {
                text += &row(off, if off == 0 { 0x11 } else { 0 });
            }
            text.replace(
                "00: 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11 11",
                &format!("00: 11 11 11 11 11 11 11 11 11 11 11 11 11 11 {header_type:02x} 11"),
            )
        };
        let text = function("00:01.0", 1) + &function("01:00.0", 0) + &function("01:00.1", 0);
        let focus: Bdf = "01:00.1".parse().expect("bdf");
        let m = read_lspci_dump_for(text.as_bytes(), DumpLimits::default(), focus).expect("valid");
        let lens: Vec<usize> = m.functions.iter().map(|f| f.config.len()).collect();
        assert_eq!(
            lens,
            [256, 64, 256],
            "bridge whole, other endpoint a header, focus whole"
        );
        let all = read_lspci_dump(text.as_bytes(), DumpLimits::default()).expect("valid");
        assert_eq!(all.functions[1].config[..64], m.functions[1].config[..]);
    }

    #[test]
    fn dump_out_of_order_duplicate_is_found_after_sorted_functions() {
        let text = "00:01.0 x\n00: 00\n00:03.0 x\n00: 00\n00:02.0 x\n00: 00\n00:01.0 y\n00: 00\n";
        let e = parse_lspci_dump(text).expect_err("dup");
        assert_eq!(
            e.to_string(),
            "line 7: function 0000:00:01.0 appears twice (first on line 1)"
        );
        let fine = "00:02.0 x\n00: 00\n00:01.0 x\n00: 00\n00:03.0 x\n00: 00\n";
        assert_eq!(parse_lspci_dump(fine).expect("valid").functions.len(), 3);
    }
}
