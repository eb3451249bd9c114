//! The caller's memory, as the ioctl entry point sees it (`copy_from_user` / `copy_to_user`).

/// An access to caller memory that is not mapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Fault {
    /// First address that could not be accessed.
    pub addr: u64,
}

impl Fault {
    /// A fault at `addr`, what a [`UserMemory`] implementation returns for an unmapped address.
    pub const fn new(addr: u64) -> Self {
        Self { addr }
    }
}

/// Memory of the process that issued the ioctl (possibly another process, for a supervisor).
pub trait UserMemory {
    /// Copies `buf.len()` bytes from `addr`.
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault>;
    /// Copies `data` to `addr`.
    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault>;
}

/// Address at which [`SliceMemory`] maps its slice (non-zero so that address 0 faults).
pub const SLICE_BASE: u64 = 0x7f00_0000_0000;

/// An in-process byte buffer mapped at [`SLICE_BASE`]; everything else faults.
#[derive(Debug)]
pub struct SliceMemory<'a> {
    bytes: &'a mut [u8],
}

impl<'a> SliceMemory<'a> {
    /// Maps `bytes` at [`SLICE_BASE`].
    pub fn new(bytes: &'a mut [u8]) -> Self {
        Self { bytes }
    }

    fn range(&self, addr: u64, len: usize) -> Result<std::ops::Range<usize>, Fault> {
        let start = addr
            .checked_sub(SLICE_BASE)
            .and_then(|o| usize::try_from(o).ok())
            .ok_or(Fault { addr })?;
        let end = start.checked_add(len).ok_or(Fault { addr })?;
        if end > self.bytes.len() {
            let first_bad = SLICE_BASE + self.bytes.len().max(start) as u64;
            return Err(Fault { addr: first_bad });
        }
        Ok(start..end)
    }
}

impl UserMemory for SliceMemory<'_> {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let r = self.range(addr, buf.len())?;
        let src = self.bytes.get(r).ok_or(Fault { addr })?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn write(&mut self, addr: u64, data: &[u8]) -> Result<(), Fault> {
        let r = self.range(addr, data.len())?;
        let dst = self.bytes.get_mut(r).ok_or(Fault { addr })?;
        dst.copy_from_slice(data);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_memory_faults_outside_the_slice() {
        let mut b = [1u8, 2, 3, 4];
        let mut m = SliceMemory::new(&mut b);
        let mut out = [0u8; 2];
        assert_eq!(m.read(SLICE_BASE + 2, &mut out), Ok(()));
        assert_eq!(out, [3, 4]);
        assert!(m.read(SLICE_BASE + 3, &mut out).is_err());
        assert!(m.read(0, &mut out).is_err());
        assert!(m.write(u64::MAX, &[1]).is_err());
        assert_eq!(m.write(SLICE_BASE, &[9]), Ok(()));
    }
}
