//! Bounds-checked little-endian access to configuration-space bytes.

/// The byte at `off`, or `None` beyond the end.
pub fn rd8(cfg: &[u8], off: usize) -> Option<u8> {
    cfg.get(off).copied()
}

/// The little-endian 16-bit word at `off`, or `None` when it does not fit.
pub fn rd16(cfg: &[u8], off: usize) -> Option<u16> {
    let b = cfg.get(off..off.checked_add(2)?)?;
    Some(u16::from_le_bytes([*b.first()?, *b.get(1)?]))
}

/// The little-endian 32-bit dword at `off`, or `None` when it does not fit.
pub fn rd32(cfg: &[u8], off: usize) -> Option<u32> {
    let b: [u8; 4] = cfg.get(off..off.checked_add(4)?)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

/// Writes `v` at `off`; `None` (and nothing written) when it does not fit.
pub fn wr16(cfg: &mut [u8], off: usize, v: u16) -> Option<()> {
    cfg.get_mut(off..off.checked_add(2)?)?
        .copy_from_slice(&v.to_le_bytes());
    Some(())
}

/// Writes `v` at `off`; `None` (and nothing written) when it does not fit.
pub fn wr32(cfg: &mut [u8], off: usize, v: u32) -> Option<()> {
    cfg.get_mut(off..off.checked_add(4)?)?
        .copy_from_slice(&v.to_le_bytes());
    Some(())
}

/// Writes the byte `v` at `off`; `None` when beyond the end.
pub fn wr8(cfg: &mut [u8], off: usize, v: u8) -> Option<()> {
    *cfg.get_mut(off)? = v;
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rd32_past_end_is_none() {
        assert_eq!(rd32(&[1, 2, 3], 0), None);
        assert_eq!(rd32(&[1, 2, 3, 4], usize::MAX), None);
    }

    #[test]
    fn wr16_then_rd16_round_trips() {
        let mut b = [0u8; 4];
        assert_eq!(wr16(&mut b, 2, 0xbeef), Some(()));
        assert_eq!(rd16(&b, 2), Some(0xbeef));
        assert_eq!(wr16(&mut b, 3, 1), None);
    }
}
