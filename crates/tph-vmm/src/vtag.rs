//! Virtual steering tags: what the guest's firmware hands out and how a tag the guest writes
//! names a vCPU and a memory type.
//!
//! The encoding (a decision listed in `docs/decisions.md`, "VM layer"): tag 0 means "no
//! steering"; the volatile-memory (VM) tag of vCPU `v` is `v + 1`; the persistent-memory (PM)
//! tag of vCPU `v` is `N + v + 1` for a VM of `N` vCPUs, valid only when `2N + 1` tags fit the
//! tag space (256 for 8-bit tags, 65536 for 16-bit extended tags). 255 vCPUs fit 8-bit VM tags.
//! The same number is used in both widths, so a guest that switches to extended TPH keeps its
//! tags.

pub use tph_abi::{MemType, TagWidth};
use tph_acpi::{StHalf, StInfo};

/// What a virtual tag names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Decoded {
    /// Tag 0: no steering.
    None,
    /// A vCPU of this VM and a memory type.
    Vcpu {
        /// The vCPU index.
        vcpu: u32,
        /// The memory type.
        mem: MemType,
    },
    /// A tag the firmware of this VM never hands out (hostile or stale guest).
    Foreign(u16),
}

/// Most vCPUs a VM may have: every VM tag must fit 16 bits.
pub const MAX_VCPUS: u32 = 0xffff;

/// The virtual tag space of one VM.
///
/// ```
/// use tph_vmm::vtag::{Decoded, MemType, TagSpace, TagWidth};
/// let s = TagSpace::new(8).unwrap();
/// assert_eq!(s.tag(3, MemType::Volatile, TagWidth::Bits8), Some(4));
/// assert_eq!(s.tag(3, MemType::Persistent, TagWidth::Bits8), Some(12));
/// assert_eq!(s.decode(12, TagWidth::Bits8), Decoded::Vcpu { vcpu: 3, mem: MemType::Persistent });
/// assert_eq!(s.decode(17, TagWidth::Bits8), Decoded::Foreign(17));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TagSpace {
    vcpus: u32,
}

impl TagSpace {
    /// The tag space of a VM with `vcpus` vCPUs (1..=[`MAX_VCPUS`]).
    pub fn new(vcpus: u32) -> Option<Self> {
        (1..=MAX_VCPUS).contains(&vcpus).then_some(Self { vcpus })
    }

    /// Number of vCPUs.
    pub fn vcpus(&self) -> u32 {
        self.vcpus
    }

    /// PM tags exist in `width`: `2N + 1` tags fit (`2N + 1 <= space`).
    pub fn pm_valid(&self, width: TagWidth) -> bool {
        2 * self.vcpus < width.space()
    }

    /// The tag of `vcpu` for `mem` in `width`, `None` when it does not fit (or no such vCPU).
    pub fn tag(&self, vcpu: u32, mem: MemType, width: TagWidth) -> Option<u16> {
        if vcpu >= self.vcpus {
            return None;
        }
        let t = match mem {
            MemType::Volatile => vcpu + 1,
            MemType::Persistent if self.pm_valid(width) => self.vcpus + vcpu + 1,
            MemType::Persistent => return None,
        };
        (t < width.space()).then_some(t as u16)
    }

    /// What the raw entry value `raw` names when the guest enabled tags of `width` (only the
    /// bits of that width count, as in hardware).
    pub fn decode(&self, raw: u16, width: TagWidth) -> Decoded {
        let t = u32::from(width.mask(raw));
        let n = self.vcpus;
        match t {
            0 => Decoded::None,
            t if t <= n => Decoded::Vcpu {
                vcpu: t - 1,
                mem: MemType::Volatile,
            },
            t if t <= 2 * n && self.pm_valid(width) => Decoded::Vcpu {
                vcpu: t - n - 1,
                mem: MemType::Persistent,
            },
            t => Decoded::Foreign(t as u16),
        }
    }

    /// The `_DSM` function 0xF result for `vcpu` (`firmware-dsm.md`): tags of both memory
    /// types in both widths, each marked valid where it exists; 16-bit tags only when
    /// `extended` (the guest path allows extended TPH).
    ///
    /// ```
    /// let s = tph_vmm::vtag::TagSpace::new(8).unwrap();
    /// // VM: st valid, tag 1; PM: st valid, tag 9.
    /// assert_eq!(s.st_info(0, false), tph_acpi::StInfo(0x0000_0901_0000_0101));
    /// ```
    pub fn st_info(&self, vcpu: u32, extended: bool) -> StInfo {
        let half = |mem: MemType| {
            StHalf::new(
                self.tag(vcpu, mem, TagWidth::Bits8).map(|t| t as u8),
                self.tag(vcpu, mem, TagWidth::Bits16).filter(|_| extended),
            )
        };
        StInfo::from_halves(half(MemType::Volatile), half(MemType::Persistent))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tagspace_255_vcpus_fit_8_bit_vm_tags_without_pm() {
        let s = TagSpace::new(255).unwrap();
        assert_eq!(s.tag(254, MemType::Volatile, TagWidth::Bits8), Some(255));
        assert_eq!(s.tag(0, MemType::Persistent, TagWidth::Bits8), None);
        assert_eq!(s.tag(0, MemType::Persistent, TagWidth::Bits16), Some(256));
    }

    #[test]
    fn tagspace_decode_inverts_tag_for_every_vcpu() {
        for n in [1, 8, 127, 128, 255] {
            let s = TagSpace::new(n).unwrap();
            for w in [TagWidth::Bits8, TagWidth::Bits16] {
                for v in 0..n {
                    for m in [MemType::Volatile, MemType::Persistent] {
                        if let Some(t) = s.tag(v, m, w) {
                            assert_eq!(s.decode(t, w), Decoded::Vcpu { vcpu: v, mem: m });
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn tagspace_8_bit_decode_ignores_st_upper() {
        let s = TagSpace::new(4).unwrap();
        assert_eq!(
            s.decode(0x0102, TagWidth::Bits8),
            Decoded::Vcpu {
                vcpu: 1,
                mem: MemType::Volatile
            }
        );
        assert_eq!(s.decode(0x0102, TagWidth::Bits16), Decoded::Foreign(0x0102));
    }

    #[test]
    fn tagspace_zero_and_too_many_vcpus_are_refused() {
        assert!(TagSpace::new(0).is_none());
        assert!(TagSpace::new(MAX_VCPUS + 1).is_none());
    }
}
