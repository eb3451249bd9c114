//! Migration state: the guest-visible TPH state, in a versioned byte format.
//!
//! Only what the guest can observe travels: the Capability it saw (to refuse a destination
//! that would show another one), Control, and the virtual table (in-capability entries or the
//! ST halves of the MSI-X Vector Control words). Host tags never travel: they are rebuilt on the
//! destination from its own pinning and kernel.
//!
//! Layout (little-endian): magic `TPHV`, version u16 (1), vCPUs u32, Capability u32, Control
//! u32, entry count u16, entries u16 each.

use crate::error::Error;

/// Magic at the start of the byte format.
pub const MAGIC: &[u8; 4] = b"TPHV";
/// Version of the byte format this crate writes and reads.
pub const VERSION: u16 = 1;
/// Bytes before the entries.
const HEAD: usize = 4 + 2 + 4 + 4 + 4 + 2;

/// The guest-visible TPH state of one device.
///
/// ```
/// use tph_vmm::state::VmState;
/// let s = VmState::new(2, 0x0003_0203, 0x101, vec![1, 2, 0, 3]);
/// assert_eq!(VmState::from_bytes(&s.to_bytes()).unwrap(), s);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct VmState {
    /// vCPUs of the VM (the tag space).
    pub vcpus: u32,
    /// The Capability register the guest saw.
    pub capability: u32,
    /// The Control register as the guest reads it.
    pub control: u32,
    /// The virtual steering table.
    pub table: Vec<u16>,
}

impl VmState {
    /// The state of a VM with `vcpus` vCPUs whose guest saw `capability`, reads `control`,
    /// and holds `table` (normally from [`VirtualTph::save`](crate::VirtualTph::save)).
    ///
    /// ```
    /// use tph_vmm::state::VmState;
    /// let s = VmState::new(2, 0x0003_0203, 0x101, vec![1, 2, 0, 3]);
    /// assert_eq!((s.vcpus, s.control, s.table.len()), (2, 0x101, 4));
    /// ```
    pub fn new(vcpus: u32, capability: u32, control: u32, table: Vec<u16>) -> Self {
        Self {
            vcpus,
            capability,
            control,
            table,
        }
    }

    /// Encodes the state.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEAD + 2 * self.table.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.vcpus.to_le_bytes());
        out.extend_from_slice(&self.capability.to_le_bytes());
        out.extend_from_slice(&self.control.to_le_bytes());
        let n = u16::try_from(self.table.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&n.to_le_bytes());
        for e in self.table.iter().take(usize::from(n)) {
            out.extend_from_slice(&e.to_le_bytes());
        }
        out
    }

    /// Decodes bytes written by [`VmState::to_bytes`]; refuses other magic, another version,
    /// truncated or trailing bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.get(..4) != Some(MAGIC.as_slice()) {
            return Err(Error::StateFormat("not TPH VM state (bad magic)"));
        }
        let u16_at = |at: usize| {
            bytes
                .get(at..at + 2)
                .map(|b| u16::from_le_bytes([b[0], b[1]]))
        };
        let u32_at = |at: usize| {
            bytes
                .get(at..at + 4)
                .and_then(|b| b.try_into().ok())
                .map(u32::from_le_bytes)
        };
        let truncated = Error::StateFormat("truncated");
        if u16_at(4) != Some(VERSION) {
            return Err(Error::StateFormat("unsupported version"));
        }
        let (Some(vcpus), Some(capability), Some(control), Some(n)) =
            (u32_at(6), u32_at(10), u32_at(14), u16_at(18))
        else {
            return Err(truncated);
        };
        let n = usize::from(n);
        if bytes.len() != HEAD + 2 * n {
            return Err(truncated);
        }
        let table = (0..n).filter_map(|i| u16_at(HEAD + 2 * i)).collect();
        Ok(Self {
            vcpus,
            capability,
            control,
            table,
        })
    }

    /// The destination shows the guest the same device: same vCPU count, same Capability,
    /// same table length.
    pub(crate) fn check_fits(
        &self,
        vcpus: u32,
        capability: u32,
        entries: usize,
    ) -> Result<(), Error> {
        if self.vcpus != vcpus {
            return Err(Error::StateMismatch(format!(
                "the guest had {} vCPUs, the destination VM {vcpus}",
                self.vcpus
            )));
        }
        if self.capability != capability {
            return Err(Error::StateMismatch(format!(
                "the guest saw TPH Capability {:#010x}, the destination offers {capability:#010x}",
                self.capability
            )));
        }
        if self.table.len() != entries {
            return Err(Error::StateMismatch(format!(
                "the guest had {} table entries, the destination {entries}",
                self.table.len()
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_bytes_refuses_bad_magic_version_and_length() {
        let s = VmState {
            vcpus: 1,
            capability: 3,
            control: 0,
            table: vec![7],
        };
        let good = s.to_bytes();
        let mut magic = good.clone();
        magic[0] = b'X';
        assert!(VmState::from_bytes(&magic).is_err());
        let mut version = good.clone();
        version[4] = 2;
        assert!(VmState::from_bytes(&version).is_err());
        assert!(VmState::from_bytes(&good[..good.len() - 1]).is_err());
        assert!(VmState::from_bytes(&[good.as_slice(), &[0]].concat()).is_err());
    }
}
