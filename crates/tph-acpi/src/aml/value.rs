//! AML data: integers, strings, buffers, packages, references, and the implicit conversions
//! between them (ACPI 6.5 section 19.3.5), as ACPICA performs them.

use crate::FirmwareError;

/// A place a reference points at.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Ref {
    /// A namespace node.
    Node(usize),
    /// `LocalN` of call frame `frame`.
    Local(usize, u8),
    /// `ArgN` of call frame `frame`.
    Arg(usize, u8),
    /// Element `index` of the package, buffer or string at the inner place.
    Elem(Box<Ref>, usize),
    /// A temporary value (writes to it are lost).
    Temp(Box<Value>),
}

/// An AML value.
#[derive(Clone, Debug, PartialEq, Default)]
#[non_exhaustive]
pub enum Value {
    /// No value (an unset local, a method that returned nothing, an empty package slot).
    #[default]
    Uninitialized,
    /// An integer (64-bit; 32-bit for tables of revision below 2).
    Integer(u64),
    /// A string (ASCII bytes, no terminator).
    String(Vec<u8>),
    /// A buffer.
    Buffer(Vec<u8>),
    /// A package.
    Package(Vec<Value>),
    /// A reference (RefOf, Index, a name in a package).
    Reference(Ref),
}

impl Value {
    /// The ObjectType number.
    pub fn type_code(&self) -> u64 {
        match self {
            Self::Uninitialized => 0,
            Self::Integer(_) => 1,
            Self::String(_) => 2,
            Self::Buffer(_) => 3,
            Self::Package(_) => 4,
            Self::Reference(_) => 20,
        }
    }

    /// Short type name for messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Uninitialized => "uninitialized",
            Self::Integer(_) => "an integer",
            Self::String(_) => "a string",
            Self::Buffer(_) => "a buffer",
            Self::Package(_) => "a package",
            Self::Reference(_) => "a reference",
        }
    }
}

/// Integer width rules of the running table set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Width {
    /// Bytes per integer: 8, or 4 for a DSDT of revision below 2.
    pub bytes: usize,
}

impl Width {
    /// All ones in this width (`Ones`, logical true).
    pub fn ones(self) -> u64 {
        if self.bytes == 4 {
            0xffff_ffff
        } else {
            u64::MAX
        }
    }

    /// Truncates to this width.
    pub fn trunc(self, v: u64) -> u64 {
        v & self.ones()
    }

    /// Implicit conversion to an integer.
    pub fn to_int(self, v: &Value) -> Result<u64, FirmwareError> {
        match v {
            Value::Integer(i) => Ok(self.trunc(*i)),
            Value::Buffer(b) => Ok(self.buf_to_int(b)),
            Value::String(s) => Ok(self.trunc(hex_prefix(s))),
            other => Err(type_err("an integer", other)),
        }
    }

    fn buf_to_int(self, b: &[u8]) -> u64 {
        b.iter()
            .take(self.bytes)
            .rev()
            .fold(0u64, |a, &x| (a << 8) | u64::from(x))
    }

    /// Implicit conversion to a buffer.
    pub fn to_buf(self, v: &Value) -> Result<Vec<u8>, FirmwareError> {
        match v {
            Value::Integer(i) => Ok(i
                .to_le_bytes()
                .get(..self.bytes)
                .unwrap_or_default()
                .to_vec()),
            Value::Buffer(b) => Ok(b.clone()),
            Value::String(s) if s.is_empty() => Ok(Vec::new()),
            Value::String(s) => Ok(s.iter().copied().chain([0]).collect()),
            other => Err(type_err("a buffer", other)),
        }
    }

    /// Implicit conversion to a string (integers as fixed-width hex, buffers as `0xNN` list).
    pub fn to_str(self, v: &Value) -> Result<Vec<u8>, FirmwareError> {
        match v {
            Value::Integer(i) => {
                Ok(format!("{:0w$X}", self.trunc(*i), w = self.bytes * 2).into_bytes())
            }
            Value::String(s) => Ok(s.clone()),
            Value::Buffer(b) => Ok(join_bytes(b, " ", |x| format!("0x{x:02X}"))),
            other => Err(type_err("a string", other)),
        }
    }
}

/// Joins formatted bytes with a separator.
pub fn join_bytes(b: &[u8], sep: &str, f: impl Fn(u8) -> String) -> Vec<u8> {
    let parts: Vec<String> = b.iter().map(|&x| f(x)).collect();
    parts.join(sep).into_bytes()
}

/// A string's leading hex digits as an integer (implicit string-to-integer conversion).
fn hex_prefix(s: &[u8]) -> u64 {
    let t: Vec<u8> = s
        .iter()
        .copied()
        .skip_while(|c| c.is_ascii_whitespace())
        .collect();
    let digits = t
        .strip_prefix(b"0x")
        .or_else(|| t.strip_prefix(b"0X"))
        .unwrap_or(&t);
    digits
        .iter()
        .map_while(|c| (*c as char).to_digit(16))
        .fold(0u64, |a, d| (a << 4) | u64::from(d))
}

/// `ToInteger` of a string: decimal, or hex with a `0x` prefix.
pub fn explicit_str_to_int(s: &[u8]) -> u64 {
    let t: Vec<u8> = s
        .iter()
        .copied()
        .skip_while(|c| c.is_ascii_whitespace())
        .collect();
    if t.starts_with(b"0x") || t.starts_with(b"0X") {
        return hex_prefix(&t);
    }
    t.iter()
        .map_while(|c| (*c as char).to_digit(10))
        .fold(0u64, |a, d| a.wrapping_mul(10).wrapping_add(u64::from(d)))
}

/// An operand-type error.
pub fn type_err(want: &str, got: &Value) -> FirmwareError {
    FirmwareError::Aml(format!(
        "operand is {} where {want} is needed",
        got.type_name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const W64: Width = Width { bytes: 8 };
    const W32: Width = Width { bytes: 4 };

    #[test]
    fn conversion_buffer_to_integer_takes_low_bytes_le() {
        let b = Value::Buffer(vec![1, 2, 3, 4, 5, 6, 7, 8, 9]);
        assert_eq!(W64.to_int(&b).unwrap(), 0x0807_0605_0403_0201);
        assert_eq!(W32.to_int(&b).unwrap(), 0x0403_0201);
    }

    #[test]
    fn conversion_string_to_buffer_keeps_terminator() {
        assert_eq!(W64.to_buf(&Value::String(b"ab".to_vec())).unwrap(), b"ab\0");
    }

    #[test]
    fn conversion_to_string_matches_acpica_forms() {
        assert_eq!(
            W64.to_str(&Value::Integer(0x1234)).unwrap(),
            b"0000000000001234"
        );
        assert_eq!(
            W64.to_str(&Value::Buffer(vec![1, 0xab])).unwrap(),
            b"0x01 0xAB"
        );
    }

    #[test]
    fn conversion_strings_to_integer_hex_and_decimal() {
        assert_eq!(W64.to_int(&Value::String(b"1f z".to_vec())).unwrap(), 0x1f);
        assert_eq!(explicit_str_to_int(b"123"), 123);
        assert_eq!(explicit_str_to_int(b"0x1F"), 0x1f);
    }
}
