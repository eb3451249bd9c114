//! Reading AML bytes: opcodes, PkgLength, NameString, integer constants. Every read is checked
//! against the end of the current object, so truncated AML yields an error, never a panic.

use std::sync::Arc;

use super::namespace::{NamePath, Seg};
use crate::FirmwareError;

/// A position in one table's AML.
#[derive(Clone, Debug)]
pub struct Cursor {
    /// The table's AML body.
    pub code: Arc<[u8]>,
    /// Index of the table.
    pub table: usize,
    /// Next byte to read.
    pub pos: usize,
    /// One past the last byte of the enclosing object.
    pub end: usize,
}

/// "The AML ends in the middle of an object" error.
pub fn truncated(pos: usize) -> FirmwareError {
    FirmwareError::Aml(format!("AML truncated at offset {pos:#x}"))
}

impl Cursor {
    /// A cursor over `code[start..end]` (clamped to the code).
    pub fn new(code: Arc<[u8]>, table: usize, start: usize, end: usize) -> Self {
        let end = end.min(code.len());
        Self {
            code,
            table,
            pos: start,
            end,
        }
    }

    /// Whether bytes remain before `end`.
    pub fn more(&self) -> bool {
        self.pos < self.end
    }

    /// The next byte without consuming it.
    pub fn peek(&self) -> Option<u8> {
        self.peek_at(0)
    }

    /// The byte `n` ahead without consuming it.
    pub fn peek_at(&self, n: usize) -> Option<u8> {
        let at = self.pos.checked_add(n)?;
        if at < self.end {
            self.code.get(at).copied()
        } else {
            None
        }
    }

    /// Consumes one byte.
    pub fn byte(&mut self) -> Result<u8, FirmwareError> {
        let b = self.peek().ok_or_else(|| truncated(self.pos))?;
        self.pos += 1;
        Ok(b)
    }

    /// Consumes `n` bytes as a little-endian integer.
    pub fn le(&mut self, n: usize) -> Result<u64, FirmwareError> {
        (0..n).try_fold(0u64, |acc, i| Ok(acc | u64::from(self.byte()?) << (8 * i)))
    }

    /// Consumes `n` raw bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&[u8], FirmwareError> {
        let stop = self.pos.checked_add(n).filter(|s| *s <= self.end);
        let stop = stop.ok_or_else(|| truncated(self.pos))?;
        let out = self
            .code
            .get(self.pos..stop)
            .ok_or_else(|| truncated(self.pos))?;
        self.pos = stop;
        Ok(out)
    }

    /// Reads a PkgLength and returns the end offset of the object it measures.
    pub fn pkg_end(&mut self) -> Result<usize, FirmwareError> {
        let start = self.pos;
        let lead = self.byte()?;
        let follow = usize::from(lead >> 6);
        let mut len = if follow == 0 {
            usize::from(lead & 0x3f)
        } else {
            usize::from(lead & 0x0f)
        };
        for i in 0..follow {
            len |= usize::from(self.byte()?) << (4 + 8 * i);
        }
        let end = start
            .checked_add(len)
            .filter(|e| *e <= self.end && *e >= self.pos);
        end.ok_or_else(|| {
            FirmwareError::Aml(format!("PkgLength at {start:#x} runs past its scope"))
        })
    }

    /// Reads a PkgLength-encoded number that is not an object length (field widths).
    pub fn pkg_value(&mut self) -> Result<u64, FirmwareError> {
        let lead = self.byte()?;
        let follow = usize::from(lead >> 6);
        let mut v = if follow == 0 {
            u64::from(lead & 0x3f)
        } else {
            u64::from(lead & 0x0f)
        };
        for i in 0..follow {
            v |= u64::from(self.byte()?) << (4 + 8 * i);
        }
        Ok(v)
    }

    /// Reads a NUL-terminated string.
    pub fn cstring(&mut self) -> Result<Vec<u8>, FirmwareError> {
        let rest = self.code.get(self.pos..self.end).unwrap_or_default();
        let n = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| truncated(self.pos))?;
        let s = rest.get(..n).unwrap_or_default().to_vec();
        self.pos += n + 1;
        Ok(s)
    }

    /// Reads a NameString (root/parent prefixes, dual/multi/null name).
    pub fn name(&mut self) -> Result<NamePath, FirmwareError> {
        let mut p = NamePath::default();
        if self.peek() == Some(b'\\') {
            p.root = true;
            self.pos += 1;
        }
        while self.peek() == Some(b'^') {
            p.up += 1;
            self.pos += 1;
        }
        let count = match self.peek() {
            Some(0x00) => 0,
            Some(0x2e) => 2,
            Some(0x2f) => usize::from(self.peek_at(1).ok_or_else(|| truncated(self.pos))?),
            _ => 1,
        };
        match self.peek() {
            Some(0x00) | Some(0x2e) => self.pos += 1,
            Some(0x2f) => self.pos += 2,
            _ => {}
        }
        for _ in 0..count {
            p.segs.push(self.seg()?);
        }
        Ok(p)
    }

    fn seg(&mut self) -> Result<Seg, FirmwareError> {
        let at = self.pos;
        let b = self.bytes(4)?;
        let mut s = [0u8; 4];
        s.copy_from_slice(b);
        let lead_ok = s[0].is_ascii_uppercase() || s[0] == b'_';
        let rest_ok = s[1..]
            .iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_');
        if lead_ok && rest_ok {
            Ok(s)
        } else {
            Err(FirmwareError::Aml(format!("bad name segment at {at:#x}")))
        }
    }
}

/// Whether `b` can start a NameString.
pub fn is_name_start(b: u8) -> bool {
    b.is_ascii_uppercase() || matches!(b, b'_' | b'\\' | b'^' | 0x2e | 0x2f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cur(b: &[u8]) -> Cursor {
        Cursor::new(Arc::from(b), 0, 0, b.len())
    }

    #[test]
    fn pkglength_multi_byte_encoding_decodes() {
        // Lead 0x41: one follow byte, low nibble 1; follow 0x02 -> len 0x21.
        let mut data = vec![0x41, 0x02];
        data.resize(0x30, 0);
        let mut c = cur(&data);
        assert_eq!(c.pkg_end().unwrap(), 0x21);
    }

    #[test]
    fn pkglength_past_scope_is_an_error() {
        assert!(cur(&[0x3f]).pkg_end().is_err());
    }

    #[test]
    fn namestring_forms_parse() {
        let mut c = cur(b"\\/\x03_SB_PCI0_DSM");
        assert_eq!(c.name().unwrap().to_string(), "\\_SB_.PCI0._DSM");
        let mut c = cur(b"^.ABCDEFGH");
        assert_eq!(c.name().unwrap().to_string(), "^ABCD.EFGH");
        assert!(cur(b"AB").name().is_err());
    }

    /// A MultiNamePrefix cut before its segment count is truncated AML, not an empty name.
    #[test]
    fn multiname_without_count_is_truncated() {
        let err = cur(b"\\/").name().unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
