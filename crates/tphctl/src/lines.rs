//! Standard input of `session`, `vm` and `serve --vm`, one bounded line at a time: memory does
//! not follow the input, however long a line is or however many lines there are.

use std::io::{BufRead, Read};

/// Most bytes of one command line (a `raw` SET_ST of 2048 entries is 32 KiB of hex).
pub const MAX_LINE: usize = 1 << 16;

/// How much of a refused line its answer quotes (before [`crate::quote`] cuts it further).
const QUOTED: usize = 160;

/// A line that is not read as a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine {
    /// The line's start, quoted for the answer.
    pub quoted: String,
    /// Why it is refused, naming its line number.
    pub why: String,
}

/// One line of `input`, at most [`MAX_LINE`] bytes kept in `buf`: `None` at end of input, the
/// trimmed text, or for a line too long or not UTF-8 its quoted start and why it is refused.
/// The rest of a long line is read and dropped in the reader's own buffer-sized pieces, never
/// kept. `number` is the line's number, for the refusal.
pub fn read_bounded_line<'b>(
    input: &mut impl BufRead,
    buf: &'b mut Vec<u8>,
    number: usize,
) -> std::io::Result<Option<Result<&'b str, BadLine>>> {
    buf.clear();
    let n = Read::take(&mut *input, MAX_LINE as u64 + 1).read_until(b'\n', buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() != Some(&b'\n') && buf.len() > MAX_LINE {
        skip_line(input)?;
        let start = String::from_utf8_lossy(buf.get(..QUOTED).unwrap_or(buf)).into_owned();
        return Ok(Some(Err(BadLine {
            quoted: crate::quote(&start),
            why: format!("line {number}: longer than {MAX_LINE} bytes (the line limit)"),
        })));
    }
    match std::str::from_utf8(buf) {
        Ok(text) => Ok(Some(Ok(text.trim()))),
        Err(e) => {
            let good = String::from_utf8_lossy(buf.get(..e.valid_up_to()).unwrap_or_default());
            Ok(Some(Err(BadLine {
                quoted: crate::quote(good.trim()),
                why: format!(
                    "line {number}: not UTF-8 text (byte {} of the line is invalid)",
                    e.valid_up_to() + 1
                ),
            })))
        }
    }
}

/// Skips input up to and including the next newline, without keeping it.
fn skip_line(input: &mut impl BufRead) -> std::io::Result<()> {
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|&b| b == b'\n') {
            Some(at) => {
                input.consume(at + 1);
                return Ok(());
            }
            None => {
                let n = chunk.len();
                input.consume(n);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reader that hands out `len` bytes of `byte` then `tail`, and counts what it gave,
    /// without ever holding more than one small chunk.
    struct Endless {
        left: usize,
        byte: u8,
        tail: std::io::Cursor<Vec<u8>>,
        chunk: Vec<u8>,
        at: usize,
    }

    impl Endless {
        fn new(len: usize, byte: u8, tail: &[u8]) -> Self {
            Self {
                left: len,
                byte,
                tail: std::io::Cursor::new(tail.to_vec()),
                chunk: Vec::new(),
                at: 0,
            }
        }
    }

    impl Read for Endless {
        fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
            let n = {
                let chunk = self.fill_buf()?;
                let n = chunk.len().min(out.len());
                out[..n].copy_from_slice(&chunk[..n]);
                n
            };
            self.consume(n);
            Ok(n)
        }
    }

    impl BufRead for Endless {
        fn fill_buf(&mut self) -> std::io::Result<&[u8]> {
            if self.at == self.chunk.len() {
                self.at = 0;
                if self.left > 0 {
                    let n = self.left.min(4096);
                    self.left -= n;
                    self.chunk = vec![self.byte; n];
                } else {
                    self.chunk.clear();
                    return self.tail.fill_buf();
                }
            }
            Ok(&self.chunk[self.at..])
        }

        fn consume(&mut self, n: usize) {
            if self.chunk.is_empty() {
                self.tail.consume(n);
            } else {
                self.at += n;
            }
        }
    }

    #[test]
    fn a_line_of_megabytes_is_refused_with_its_number_and_the_next_line_is_read() {
        let mut input = Endless::new(8 << 20, b'x', b"\ncap\n");
        let mut buf = Vec::new();
        let bad = read_bounded_line(&mut input, &mut buf, 3)
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert_eq!(bad.why, "line 3: longer than 65536 bytes (the line limit)");
        assert!(bad.quoted.starts_with("\"xxxx") && bad.quoted.ends_with("..."));
        assert!(
            buf.capacity() <= 2 * (MAX_LINE + 1),
            "{} bytes kept",
            buf.capacity()
        );
        let next = read_bounded_line(&mut input, &mut buf, 4).unwrap().unwrap();
        assert_eq!(next, Ok("cap"));
        assert_eq!(read_bounded_line(&mut input, &mut buf, 5).unwrap(), None);
    }

    #[test]
    fn a_line_of_exactly_the_limit_is_read() {
        let mut text = vec![b'a'; MAX_LINE];
        text.push(b'\n');
        let mut input = std::io::Cursor::new(text);
        let mut buf = Vec::new();
        let line = read_bounded_line(&mut input, &mut buf, 1).unwrap().unwrap();
        assert_eq!(line.map(str::len), Ok(MAX_LINE));
    }

    #[test]
    fn a_line_not_utf8_names_the_bad_byte() {
        let mut input = std::io::Cursor::new(b"cap \xff\n".to_vec());
        let mut buf = Vec::new();
        let bad = read_bounded_line(&mut input, &mut buf, 2)
            .unwrap()
            .unwrap()
            .unwrap_err();
        assert_eq!(bad.quoted, "\"cap\"");
        assert_eq!(
            bad.why,
            "line 2: not UTF-8 text (byte 5 of the line is invalid)"
        );
    }

    #[test]
    fn lines_are_trimmed_and_the_last_needs_no_newline() {
        let mut input = std::io::Cursor::new(b"  enable iv \r\ncap".to_vec());
        let mut buf = Vec::new();
        let first = read_bounded_line(&mut input, &mut buf, 1).unwrap().unwrap();
        assert_eq!(first, Ok("enable iv"));
        let last = read_bounded_line(&mut input, &mut buf, 2).unwrap().unwrap();
        assert_eq!(last, Ok("cap"));
    }
}
