//! System description table headers (ACPI 6.5 section 5.2.6): signature, length, revision,
//! checksum. Every table the evaluator loads passes through [`Sdt::parse`].

use crate::FirmwareError;

/// Length of the common header that starts every system description table.
pub const HEADER_LEN: usize = 36;

/// One system description table: its header fields and the bytes after the header.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sdt {
    /// Four-character signature, e.g. `DSDT`, `SSDT`, `APIC`.
    pub signature: [u8; 4],
    /// Header revision; for a DSDT below 2 the interpreter uses 32-bit integers.
    pub revision: u8,
    /// OEM table id (8 characters, space padded).
    pub oem_table_id: [u8; 8],
    /// The table body (everything after the 36-byte header, up to the header's length).
    pub body: Vec<u8>,
}

impl Sdt {
    /// Parses and checks a table: length field within the data, bytes summing to zero.
    pub fn parse(bytes: &[u8]) -> Result<Self, FirmwareError> {
        let bad = |why: String| FirmwareError::Table {
            table: sig_text(bytes.get(..4).unwrap_or(b"????")),
            why,
        };
        let header = bytes.get(..HEADER_LEN).ok_or_else(|| {
            bad(format!(
                "{} bytes is shorter than the 36-byte header",
                bytes.len()
            ))
        })?;
        let len = le32(header, 4) as usize;
        if len < HEADER_LEN || len > bytes.len() {
            return Err(bad(format!(
                "length field {len} but {} bytes present",
                bytes.len()
            )));
        }
        let table = bytes.get(..len).unwrap_or_default();
        let sum = table.iter().fold(0u8, |a, b| a.wrapping_add(*b));
        if sum != 0 {
            return Err(bad(format!(
                "checksum fails (bytes sum to {sum:#04x}, not 0)"
            )));
        }
        Ok(Self {
            signature: take(header, 0),
            revision: header.get(8).copied().unwrap_or(0),
            oem_table_id: take(header, 16),
            body: table.get(HEADER_LEN..).unwrap_or_default().to_vec(),
        })
    }

    /// The signature as text.
    pub fn name(&self) -> String {
        sig_text(&self.signature)
    }
}

fn take<const N: usize>(b: &[u8], at: usize) -> [u8; N] {
    let mut out = [0u8; N];
    if let Some(src) = b.get(at..at + N) {
        out.copy_from_slice(src);
    }
    out
}

/// Little-endian u32 at `at`, 0 when out of range.
pub fn le32(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(take(b, at))
}

/// Printable form of a 4-byte signature.
pub fn sig_text(sig: &[u8]) -> String {
    sig.iter()
        .map(|&c| if c.is_ascii_graphic() { c as char } else { '?' })
        .collect()
}

/// Recomputes byte 9 so the table sums to zero (used to build test tables).
pub fn fix_checksum(table: &mut [u8]) {
    if let Some(c) = table.get_mut(9) {
        *c = 0;
    }
    let sum = table.iter().fold(0u8, |a, b| a.wrapping_add(*b));
    if let Some(c) = table.get_mut(9) {
        *c = 0u8.wrapping_sub(sum);
    }
}

/// Wraps an AML body into a table with a valid header (signature, revision, checksum).
pub fn build(signature: &[u8; 4], revision: u8, body: &[u8]) -> Vec<u8> {
    let len = (HEADER_LEN + body.len()) as u32;
    let mut t = Vec::with_capacity(len as usize);
    t.extend_from_slice(signature);
    t.extend_from_slice(&len.to_le_bytes());
    t.push(revision);
    t.push(0);
    t.extend_from_slice(b"TPHRS TPHTABLE");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(b"TPHR");
    t.extend_from_slice(&1u32.to_le_bytes());
    t.extend_from_slice(body);
    fix_checksum(&mut t);
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sdt_built_table_round_trips() {
        let t = build(b"SSDT", 2, &[0xa3]);
        let sdt = Sdt::parse(&t).unwrap();
        assert_eq!(
            (sdt.name(), sdt.revision, sdt.body),
            ("SSDT".into(), 2, vec![0xa3])
        );
    }

    #[test]
    fn sdt_bad_checksum_is_rejected() {
        let mut t = build(b"DSDT", 2, &[0xa3]);
        t[40 - 4] ^= 1; // flip a body bit: the sum is no longer zero
        assert!(matches!(Sdt::parse(&t), Err(FirmwareError::Table { .. })));
    }

    #[test]
    fn sdt_length_beyond_data_is_rejected() {
        let t = build(b"DSDT", 2, &[0xa3, 0xa3]);
        assert!(Sdt::parse(&t[..37]).is_err());
        assert!(Sdt::parse(&t[..10]).is_err());
    }
}
