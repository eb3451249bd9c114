//! Configuration-space storage whose write behaviour is derived from the field tables.

use super::fields::{Attr, Field};

/// Size of PCI Express configuration space.
pub const CONFIG_SIZE: usize = 4096;

/// Bytes plus per-byte write masks and the reset image, all derived from field tables.
#[derive(Clone, Debug)]
pub struct ConfigSpace {
    bytes: Vec<u8>,
    rw: Vec<u8>,
    w1c: Vec<u8>,
    reset: Vec<u8>,
}

impl ConfigSpace {
    /// Wraps `initial` (padded with zeros to 4 KiB, truncated beyond). Until fields are declared
    /// with [`ConfigSpace::declare`], every byte is read-only and resets to its initial value.
    pub fn new(initial: &[u8]) -> Self {
        let mut bytes = vec![0u8; CONFIG_SIZE];
        let n = initial.len().min(CONFIG_SIZE);
        if let (Some(dst), Some(src)) = (bytes.get_mut(..n), initial.get(..n)) {
            dst.copy_from_slice(src);
        }
        Self {
            reset: bytes.clone(),
            rw: vec![0; CONFIG_SIZE],
            w1c: vec![0; CONFIG_SIZE],
            bytes,
        }
    }

    /// Applies a field table located at `base`: RW / RW1C bits become writable and their reset
    /// value is recorded in the reset image.
    pub fn declare(&mut self, base: usize, fields: &[Field]) {
        for field in fields {
            let reg = base + usize::from(field.offset);
            let mask = field.mask();
            let reset = u64::from(field.reset) << field.lsb;
            for i in 0..4usize {
                let m = (mask >> (8 * i)) as u8;
                let r = (reset >> (8 * i)) as u8;
                self.apply_byte(reg + i, m, r, field.attr);
            }
        }
    }

    fn apply_byte(&mut self, at: usize, m: u8, r: u8, attr: Attr) {
        let target = match attr {
            Attr::Rw => &mut self.rw,
            Attr::Rw1c => &mut self.w1c,
            Attr::Ro | Attr::RsvdP | Attr::HwInit => return,
        };
        if let Some(b) = target.get_mut(at) {
            *b |= m;
        }
        if let Some(b) = self.reset.get_mut(at) {
            *b = (*b & !m) | (r & m);
        }
    }

    /// Reads `width` (1, 2 or 4) bytes at `off`; `None` when out of range.
    pub fn read(&self, off: usize, width: usize) -> Option<u32> {
        let b = self.bytes.get(off..off.checked_add(width)?)?;
        Some(b.iter().rev().fold(0u32, |v, x| v << 8 | u32::from(*x)))
    }

    /// Writes `width` bytes of `value` at `off` through the masks; `None` when out of range.
    pub fn write(&mut self, off: usize, width: usize, value: u32) -> Option<()> {
        let end = off.checked_add(width)?;
        let (b, rw, w1c) = (
            self.bytes.get_mut(off..end)?,
            self.rw.get(off..end)?,
            self.w1c.get(off..end)?,
        );
        for (i, ((byte, m), c)) in b.iter_mut().zip(rw).zip(w1c).enumerate() {
            let v = (value >> (8 * i)) as u8;
            *byte = ((*byte & !m) | (v & m)) & !(v & c);
        }
        Some(())
    }

    /// Returns every byte to its reset value.
    pub fn reset(&mut self) {
        self.bytes.copy_from_slice(&self.reset);
    }

    /// The raw bytes (a config region read sees these).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The RW mask of the 32-bit register at `off` (for tests and documentation).
    pub fn rw_mask(&self, off: usize) -> u32 {
        off.checked_add(4)
            .and_then(|end| self.rw.get(off..end))
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fields;
    use super::*;

    #[test]
    fn undeclared_bytes_ignore_writes() {
        let mut c = ConfigSpace::new(&[0xaa; 64]);
        c.write(0x10, 4, 0).unwrap();
        assert_eq!(c.read(0x10, 4), Some(0xaaaa_aaaa));
    }

    #[test]
    fn rw1c_bits_clear_on_one_and_keep_on_zero() {
        let mut init = [0u8; 64];
        init[7] = 0x30; // Status: Received Target Abort (bit 12) and Received Master Abort (13)
        let mut c = ConfigSpace::new(&init);
        c.declare(0, fields::HEADER);
        c.write(0x06, 2, 0x1000).unwrap();
        assert_eq!(c.read(0x06, 2), Some(0x2000));
    }

    #[test]
    fn reset_restores_declared_reset_values_only() {
        let mut c = ConfigSpace::new(&[0u8; 0x100]);
        c.declare(0x40, fields::EXPRESS);
        c.write(0x48, 2, 0x0000).unwrap();
        c.reset();
        // Device Control resets to RO-enable (bit 4), No Snoop (bit 11), MRRS 512 B (2 << 12).
        assert_eq!(c.read(0x48, 2), Some(0x2810));
    }

    #[test]
    fn out_of_range_access_is_none() {
        let mut c = ConfigSpace::new(&[]);
        assert_eq!(c.read(4095, 2), None);
        assert_eq!(c.write(4094, 4, 1), None);
        assert_eq!(c.read(4092, 4), Some(0));
    }
}
