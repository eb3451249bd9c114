//! System description table headers (ACPI 6.5 section 5.2.6): signature, length, revision,
//! checksum. Every table the evaluator loads passes through [`Sdt::parse`].

use crate::FirmwareError;

/// Length of the common header that starts every system description table.
pub const HEADER_LEN: usize = 36;

/// One system description table: its header fields and the bytes after the header.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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
        let header: &[u8; HEADER_LEN] = bytes.first_chunk().ok_or_else(|| {
            bad(format!(
                "{} bytes is shorter than the 36-byte header",
                bytes.len()
            ))
        })?;
        let [s0, s1, s2, s3, l0, l1, l2, l3, revision, _checksum, _, _, _, _, _, _, t0, t1, t2, t3, t4, t5, t6, t7, ..] =
            *header;
        let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
        let short = || {
            bad(format!(
                "length field {len} but {} bytes present",
                bytes.len()
            ))
        };
        let table = bytes.get(..len).ok_or_else(short)?;
        let body = table.get(HEADER_LEN..).ok_or_else(short)?;
        let sum = table.iter().fold(0u8, |a, b| a.wrapping_add(*b));
        if sum != 0 {
            return Err(bad(format!(
                "checksum fails (bytes sum to {sum:#04x}, not 0)"
            )));
        }
        Ok(Self {
            signature: [s0, s1, s2, s3],
            revision,
            oem_table_id: [t0, t1, t2, t3, t4, t5, t6, t7],
            body: body.to_vec(),
        })
    }

    /// The signature as text.
    pub fn name(&self) -> String {
        sig_text(&self.signature)
    }
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

    #[test]
    fn sdt_length_field_below_the_header_is_rejected_naming_it() {
        let mut t = build(b"SSDT", 2, &[]);
        t[4..8].copy_from_slice(&35u32.to_le_bytes());
        fix_checksum(&mut t);
        let e = Sdt::parse(&t).unwrap_err().to_string();
        assert!(e.contains("length field 35 but 36 bytes present"), "{e}");
    }
}
