//! DMA mappings of the fake host: the type1 IOMMU of a legacy container
//! (`drivers/vfio/vfio_iommu_type1.c`: `VFIO_IOMMU_GET_INFO`, `VFIO_IOMMU_MAP_DMA`,
//! `VFIO_IOMMU_UNMAP_DMA`) and an iommufd IOAS (`drivers/iommu/iommufd/ioas.c`:
//! `IOMMU_IOAS_MAP`, `IOMMU_IOAS_UNMAP`), validated and answered as mainline does, recorded per
//! container or IOAS. No device does DMA: the mappings are kept, not used.
//!
//! The emulated IOMMU is an Intel VT-d one with a 48-bit address width: page sizes 4 KiB,
//! 2 MiB and 1 GiB, and every IOVA usable but the interrupt window `0xfee00000..=0xfeefffff`
//! (the reserved MSI region the kernel excludes).

use std::collections::BTreeMap;

use tph_client::Errno;

use crate::harness::ChildMemory;

/// `iommu->pgsize_bitmap`: 4 KiB | 2 MiB | 1 GiB.
pub(crate) const PGSIZE_BITMAP: u64 = 0x4020_1000;
/// The smallest page: every address and size is aligned to it.
const PGSIZE: u64 = 4096;
/// The usable IOVA ranges (inclusive ends).
pub(crate) const IOVA_RANGES: [(u64, u64); 2] = [(0, 0xfedf_ffff), (0xfef0_0000, (1 << 48) - 1)];
/// `dma_entry_limit`, the module parameter's default (`U16_MAX`).
pub(crate) const DMA_ENTRY_LIMIT: u32 = 65535;

const MAP_FLAG_READ: u32 = 1 << 0;
const MAP_FLAG_WRITE: u32 = 1 << 1;
const MAP_FLAG_VADDR: u32 = 1 << 2;
const UNMAP_FLAG_GET_DIRTY_BITMAP: u32 = 1 << 0;
const UNMAP_FLAG_ALL: u32 = 1 << 1;
const UNMAP_FLAG_VADDR: u32 = 1 << 2;
/// `VFIO_IOMMU_INFO_PGSIZES`, `VFIO_IOMMU_INFO_CAPS`.
const INFO_PGSIZES: u32 = 1 << 0;
const INFO_CAPS: u32 = 1 << 1;
/// Capability ids of `VFIO_IOMMU_GET_INFO`.
const CAP_IOVA_RANGE: u16 = 1;
const CAP_MIGRATION: u16 = 2;
const CAP_DMA_AVAIL: u16 = 3;
/// `DIRTY_BITMAP_SIZE_MAX`: the bitmap bytes for `INT_MAX` pages.
const DIRTY_BITMAP_SIZE_MAX: u64 = 0x1000_0000;

/// Little-endian `u32` at `at` of an argument copied in from the program; a word past its
/// end was never copied (EFAULT, as the kernel's `copy_from_user` fails), never read as 0.
fn le32(b: &[u8], at: usize) -> Result<u32, Errno> {
    b.get(at..)
        .and_then(<[u8]>::first_chunk)
        .map(|w| u32::from_le_bytes(*w))
        .ok_or(Errno::EFAULT)
}

/// Little-endian `u64` at `at`, as [`le32`].
fn le64(b: &[u8], at: usize) -> Result<u64, Errno> {
    b.get(at..)
        .and_then(<[u8]>::first_chunk)
        .map(|w| u64::from_le_bytes(*w))
        .ok_or(Errno::EFAULT)
}

/// Whether `[start, start + len)` is all mapped memory of the child (the kernel pins it at map
/// time and fails with EFAULT where nothing is mapped): one byte of each page is read.
fn pinnable(mem: &ChildMemory, start: u64, len: u64) -> bool {
    let mut byte = [0u8; 1];
    let mut page = start;
    while page < start + len {
        if mem.read(page, &mut byte).is_err() {
            return false;
        }
        page += PGSIZE;
    }
    true
}

fn iova_valid(start: u64, last: u64) -> bool {
    IOVA_RANGES.iter().any(|&(s, e)| start >= s && last <= e)
}

/// The mappings of one type1 container (public for benchmarks: the in-process answer to a
/// `VFIO_IOMMU_MAP_DMA` the supervisor gives a trapped one).
///
/// ```
/// use tph_emulate::harness::ChildMemory;
/// use tph_emulate::vfio_host::Type1;
/// let page = vec![0u8; 8192];
/// let vaddr = (page.as_ptr() as u64 + 4095) & !4095;
/// let mut arg = Vec::new();
/// for v in [32u32, 3] { arg.extend_from_slice(&v.to_le_bytes()); } // argsz, READ | WRITE
/// for v in [vaddr, 0x10_0000, 4096] { arg.extend_from_slice(&v.to_le_bytes()); }
/// let mut iommu = Type1::new(3);
/// let mem = ChildMemory::of_self().unwrap();
/// assert_eq!(iommu.map(arg.as_ptr() as u64, &mem), Ok(0));
/// assert_eq!(iommu.len(), 1);
/// ```
#[derive(Debug, Clone)]
pub struct Type1 {
    /// `VFIO_TYPE1v2_IOMMU` (unmaps must not bisect a mapping).
    v2: bool,
    /// iova -> (size, vaddr).
    maps: BTreeMap<u64, (u64, u64)>,
    avail: u32,
}

impl Type1 {
    /// An empty container IOMMU of `iommu_type` (`VFIO_TYPE1_IOMMU` 1 or `VFIO_TYPE1v2_IOMMU`
    /// 3).
    pub fn new(iommu_type: u64) -> Self {
        Self {
            v2: iommu_type == 3,
            maps: BTreeMap::new(),
            avail: DMA_ENTRY_LIMIT,
        }
    }

    /// Number of mappings.
    pub fn len(&self) -> usize {
        self.maps.len()
    }

    /// No mapping.
    pub fn is_empty(&self) -> bool {
        self.maps.is_empty()
    }

    /// `vfio_find_dma`: a mapping that overlaps `[start, start + size)` (with `size` 0: one
    /// that strictly contains `start`).
    fn find(&self, start: u64, size: u64) -> Option<(u64, u64)> {
        let end = start.saturating_add(size);
        self.maps
            .range(..end.max(start.saturating_add(1)))
            .next_back()
            .map(|(&iova, &(len, _))| (iova, len))
            .filter(|&(iova, len)| end > iova && start < iova + len)
    }

    /// `VFIO_IOMMU_GET_INFO`: page sizes, then the migration, DMA-available and IOVA-range
    /// capabilities in mainline's order (written when `argsz` leaves room, else `argsz` says
    /// how much is needed).
    pub fn get_info(&self, arg: u64, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut head = [0u8; 16];
        mem.read(arg, &mut head)?;
        let argsz = le32(&head, 0)?;
        if argsz < 16 {
            return Err(Errno::EINVAL);
        }
        let caps = self.info_caps();
        let info_size = 24u32;
        let mut out = Vec::with_capacity(24);
        let flags = INFO_PGSIZES | INFO_CAPS;
        let (argsz_out, cap_offset) = if argsz < info_size + caps.len() as u32 {
            (info_size + caps.len() as u32, 0)
        } else {
            mem.write(arg + u64::from(info_size), &caps)?;
            (argsz, info_size)
        };
        out.extend_from_slice(&argsz_out.to_le_bytes());
        out.extend_from_slice(&flags.to_le_bytes());
        out.extend_from_slice(&PGSIZE_BITMAP.to_le_bytes());
        if argsz >= 20 {
            out.extend_from_slice(&cap_offset.to_le_bytes());
        }
        mem.write(arg, &out).map(|()| 0)
    }

    /// The capability chain, offsets as the user sees them (after the 24-byte info).
    fn info_caps(&self) -> Vec<u8> {
        let mut chain: Vec<(u16, Vec<u8>)> = Vec::new();
        let mut mig = Vec::new();
        mig.extend_from_slice(&0u32.to_le_bytes()); // flags
        mig.extend_from_slice(&0u32.to_le_bytes()); // padding
        mig.extend_from_slice(&PGSIZE.to_le_bytes()); // smallest page
        mig.extend_from_slice(&DIRTY_BITMAP_SIZE_MAX.to_le_bytes());
        chain.push((CAP_MIGRATION, mig));
        chain.push((CAP_DMA_AVAIL, self.avail.to_le_bytes().to_vec()));
        let mut ranges = Vec::new();
        ranges.extend_from_slice(&(IOVA_RANGES.len() as u32).to_le_bytes());
        ranges.extend_from_slice(&0u32.to_le_bytes());
        for (s, e) in IOVA_RANGES {
            ranges.extend_from_slice(&s.to_le_bytes());
            ranges.extend_from_slice(&e.to_le_bytes());
        }
        chain.push((CAP_IOVA_RANGE, ranges));
        info_chain(&chain, 24)
    }

    /// `VFIO_IOMMU_MAP_DMA` with its argument at `arg` in `mem`.
    pub fn map(&mut self, arg: u64, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut m = [0u8; 32];
        mem.read(arg, &mut m)?;
        let (argsz, flags) = (le32(&m, 0)?, le32(&m, 4)?);
        let (vaddr, iova, size) = (le64(&m, 8)?, le64(&m, 16)?, le64(&m, 24)?);
        if argsz < 32 || flags & !(MAP_FLAG_READ | MAP_FLAG_WRITE | MAP_FLAG_VADDR) != 0 {
            return Err(Errno::EINVAL);
        }
        let prot = flags & (MAP_FLAG_READ | MAP_FLAG_WRITE) != 0;
        let set_vaddr = flags & MAP_FLAG_VADDR != 0;
        if prot == set_vaddr {
            return Err(Errno::EINVAL);
        }
        if size == 0 || (size | iova | vaddr) & (PGSIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        if iova.checked_add(size - 1).is_none() || vaddr.checked_add(size - 1).is_none() {
            return Err(Errno::EINVAL);
        }
        let found = self.find(iova, size);
        if set_vaddr {
            // No mapping here ever has its vaddr invalidated (UNMAP_DMA's VADDR flag is
            // refused), so a found one is never waiting for a new address.
            return Err(if found.is_none() {
                Errno(libc::ENOENT)
            } else {
                Errno::EINVAL
            });
        }
        if found.is_some() {
            return Err(Errno(libc::EEXIST));
        }
        if self.avail == 0 {
            return Err(Errno(libc::ENOSPC));
        }
        if !iova_valid(iova, iova + size - 1) {
            return Err(Errno::EINVAL);
        }
        if !pinnable(mem, vaddr, size) {
            return Err(Errno(libc::EFAULT));
        }
        self.avail -= 1;
        self.maps.insert(iova, (size, vaddr));
        Ok(0)
    }

    /// `VFIO_IOMMU_UNMAP_DMA` with its argument at `arg` in `mem`: the unmapped size is
    /// written back into the argument.
    pub fn unmap(&mut self, arg: u64, mem: &ChildMemory) -> Result<i32, Errno> {
        let mut u = [0u8; 24];
        mem.read(arg, &mut u)?;
        let (argsz, flags) = (le32(&u, 0)?, le32(&u, 4)?);
        let (iova, mut size) = (le64(&u, 8)?, le64(&u, 16)?);
        let known = UNMAP_FLAG_GET_DIRTY_BITMAP | UNMAP_FLAG_ALL | UNMAP_FLAG_VADDR;
        if argsz < 24 || flags & !known != 0 {
            return Err(Errno::EINVAL);
        }
        // Dirty tracking is never started and no vaddr update is offered (CHECK_EXTENSION
        // answers 0 for VFIO_UPDATE_VADDR): both are refused as mainline refuses them then.
        if flags & (UNMAP_FLAG_GET_DIRTY_BITMAP | UNMAP_FLAG_VADDR) != 0 {
            return Err(Errno::EINVAL);
        }
        if iova & (PGSIZE - 1) != 0 {
            return Err(Errno::EINVAL);
        }
        let all = flags & UNMAP_FLAG_ALL != 0;
        if all {
            if iova != 0 || size != 0 {
                return Err(Errno::EINVAL);
            }
            size = u64::MAX;
        } else if size == 0 || size & (PGSIZE - 1) != 0 || iova.checked_add(size - 1).is_none() {
            return Err(Errno::EINVAL);
        }
        if self.v2 && !all {
            if self.find(iova, 1).is_some_and(|(s, _)| s != iova) {
                return Err(Errno::EINVAL);
            }
            let last = iova + (size - 1);
            if self
                .find(last, 0)
                .is_some_and(|(s, l)| s + l != iova + size)
            {
                return Err(Errno::EINVAL);
            }
        }
        let end = iova.saturating_add(size);
        let first = self
            .maps
            .range(..end)
            .filter(|&(&s, &(l, _))| s + l > iova)
            .map(|(&s, _)| s)
            .collect::<Vec<_>>();
        let mut unmapped = 0u64;
        for start in first {
            if !self.v2 && iova > start {
                break;
            }
            if let Some((len, _)) = self.maps.remove(&start) {
                unmapped += len;
                self.avail += 1;
            }
        }
        mem.write(arg + 16, &unmapped.to_le_bytes())?;
        Ok(0)
    }
}

/// A capability chain of `(id, body)` (version 1 each, each 8-byte aligned), its `next` links
/// offset by `shift` (where the chain lands in the user's buffer), the last link 0.
pub(crate) fn info_chain(caps: &[(u16, Vec<u8>)], shift: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, (id, body)) in caps.iter().enumerate() {
        let size = (8 + body.len()).next_multiple_of(8);
        let next = if i + 1 == caps.len() {
            0
        } else {
            shift + (out.len() + size) as u32
        };
        out.extend_from_slice(&id.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes());
        out.extend_from_slice(&next.to_le_bytes());
        out.extend_from_slice(body);
        out.resize(out.len().next_multiple_of(8), 0);
    }
    out
}

const IOAS_MAP_FIXED_IOVA: u32 = 1 << 0;
const IOAS_MAP_WRITEABLE: u32 = 1 << 1;
const IOAS_MAP_READABLE: u32 = 1 << 2;

/// The areas of one iommufd IOAS.
#[derive(Debug, Clone, Default)]
pub(crate) struct Ioas {
    /// iova -> length.
    areas: BTreeMap<u64, u64>,
}

impl Ioas {
    /// Number of areas.
    pub fn len(&self) -> usize {
        self.areas.len()
    }

    fn overlaps(&self, start: u64, last: u64) -> bool {
        self.areas
            .range(..=last)
            .next_back()
            .is_some_and(|(&s, &l)| s + l > start)
    }

    /// The lowest free IOVA aligned to `align` that holds `len` bytes (first fit; never in
    /// the first page, as `iopt_alloc_iova` starts its search at `PAGE_SIZE`).
    fn alloc(&self, len: u64, align: u64) -> Option<u64> {
        for (s, e) in IOVA_RANGES {
            let mut at = s.max(PGSIZE).next_multiple_of(align);
            loop {
                let last = at.checked_add(len - 1)?;
                if last > e {
                    break;
                }
                match self.areas.range(..=last).next_back() {
                    Some((&a, &l)) if a + l > at => at = (a + l).next_multiple_of(align),
                    _ => return Some(at),
                }
            }
        }
        None
    }

    /// `IOMMU_IOAS_MAP` (argument `struct iommu_ioas_map`, 40 bytes, already read).
    pub fn map(&mut self, cmd: &mut [u8; 40], mem: &ChildMemory) -> Result<(), Errno> {
        let flags = le32(cmd, 4)?;
        let known = IOAS_MAP_FIXED_IOVA | IOAS_MAP_WRITEABLE | IOAS_MAP_READABLE;
        if flags & !known != 0 || le32(cmd, 12)? != 0 {
            return Err(Errno::EOPNOTSUPP);
        }
        let (user_va, length, iova) = (le64(cmd, 16)?, le64(cmd, 24)?, le64(cmd, 32)?);
        if iova == u64::MAX || length == u64::MAX {
            return Err(Errno(libc::EOVERFLOW));
        }
        if flags & (IOAS_MAP_WRITEABLE | IOAS_MAP_READABLE) == 0 || length == 0 {
            return Err(Errno::EINVAL);
        }
        let iova = if flags & IOAS_MAP_FIXED_IOVA != 0 {
            if iova & (PGSIZE - 1) != 0 {
                return Err(Errno::EINVAL);
            }
            let last = iova.checked_add(length - 1).ok_or(Errno(libc::EOVERFLOW))?;
            if !iova_valid(iova, last) {
                return Err(Errno::EINVAL);
            }
            if self.overlaps(iova, last) {
                return Err(Errno(libc::EEXIST));
            }
            iova
        } else {
            // Keep the alignment of the user address (up to the length), as the kernel does
            // to give huge pages a chance.
            let by_len = length.next_power_of_two().max(PGSIZE);
            let by_addr = if user_va == 0 {
                by_len
            } else {
                1 << user_va.trailing_zeros()
            };
            self.alloc(length, by_len.min(by_addr).max(PGSIZE))
                .ok_or(Errno(libc::ENOSPC))?
        };
        if !pinnable(mem, user_va & !(PGSIZE - 1), length) {
            return Err(Errno(libc::EFAULT));
        }
        self.areas.insert(iova, length);
        cmd[32..40].copy_from_slice(&iova.to_le_bytes());
        Ok(())
    }

    /// `IOMMU_IOAS_UNMAP` (argument `struct iommu_ioas_unmap`, 24 bytes, already read): every
    /// area inside the range goes; one that crosses its edges, or none at all, is ENOENT.
    pub fn unmap(&mut self, cmd: &mut [u8; 24]) -> Result<(), Errno> {
        let (iova, length) = (le64(cmd, 8)?, le64(cmd, 16)?);
        let unmapped = if iova == 0 && length == u64::MAX {
            let all: u64 = self.areas.values().sum();
            self.areas.clear();
            all
        } else {
            if iova == u64::MAX || length == u64::MAX {
                return Err(Errno(libc::EOVERFLOW));
            }
            if length == 0 {
                return Err(Errno::EINVAL);
            }
            let last = iova.checked_add(length - 1).ok_or(Errno(libc::EOVERFLOW))?;
            let hit: Vec<(u64, u64)> = self
                .areas
                .range(..=last)
                .filter(|&(&s, &l)| s + l > iova)
                .map(|(&s, &l)| (s, l))
                .collect();
            if hit.is_empty() || hit.iter().any(|&(s, l)| s < iova || s + l - 1 > last) {
                return Err(Errno(libc::ENOENT));
            }
            hit.iter()
                .map(|&(s, l)| {
                    self.areas.remove(&s);
                    l
                })
                .sum()
        };
        cmd[16..24].copy_from_slice(&unmapped.to_le_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn argument_words_past_the_bytes_copied_in_are_efault_not_zero() {
        let arg = [1u8, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0];
        assert_eq!(le32(&arg, 4), Ok(2));
        assert_eq!(le32(&arg, 8), Err(Errno::EFAULT));
        assert_eq!(le32(&arg, usize::MAX), Err(Errno::EFAULT));
        assert_eq!(le64(&arg, 0), Ok(0x2_0000_0001));
        assert_eq!(le64(&arg, 4), Err(Errno::EFAULT));
    }

    #[test]
    fn info_chain_links_each_capability_to_the_next_and_ends_with_zero() {
        let chain = info_chain(&[(2, vec![0; 24]), (3, vec![7, 0, 0, 0])], 24);
        assert_eq!(chain.len(), 32 + 16);
        assert_eq!(le32(&chain, 4), Ok(24 + 32), "next of the first: after it");
        assert_eq!(u16::from_le_bytes([chain[32], chain[33]]), 3);
        assert_eq!(le32(&chain, 36), Ok(0), "the last links nowhere");
    }

    #[test]
    fn find_matches_vfio_find_dma_overlap_rules() {
        let mut t = Type1::new(3);
        t.maps.insert(0x1000, (0x2000, 0));
        assert_eq!(t.find(0x0, 0x1000), None);
        assert_eq!(t.find(0x0, 0x1001), Some((0x1000, 0x2000)));
        assert_eq!(t.find(0x2fff, 1), Some((0x1000, 0x2000)));
        assert_eq!(t.find(0x3000, 0x1000), None);
        assert_eq!(t.find(0x1000, 0), None, "size 0: strictly inside only");
        assert_eq!(t.find(0x1800, 0), Some((0x1000, 0x2000)));
    }

    /// `VFIO_IOMMU_MAP_DMA`'s argument for one 4 KiB page, in this process's memory.
    fn map_arg(vaddr: u64, iova: u64) -> [u8; 32] {
        let mut a = [0u8; 32];
        a[0..4].copy_from_slice(&32u32.to_le_bytes());
        a[4..8].copy_from_slice(&(MAP_FLAG_READ | MAP_FLAG_WRITE).to_le_bytes());
        a[8..16].copy_from_slice(&vaddr.to_le_bytes());
        a[16..24].copy_from_slice(&iova.to_le_bytes());
        a[24..32].copy_from_slice(&PGSIZE.to_le_bytes());
        a
    }

    #[test]
    fn map_dma_runs_out_at_the_dma_entry_limit_with_enospc() {
        let mem = ChildMemory::of_self().unwrap();
        let page = vec![0u8; 2 * PGSIZE as usize];
        let va = (page.as_ptr() as u64).next_multiple_of(PGSIZE);
        let mut t = Type1::new(3);
        for i in 0..u64::from(DMA_ENTRY_LIMIT) {
            let a = map_arg(va, 0x1000_0000 + i * PGSIZE);
            assert_eq!(t.map(a.as_ptr() as u64, &mem), Ok(0), "mapping {i}");
        }
        let a = map_arg(va, 0x1000_0000 + u64::from(DMA_ENTRY_LIMIT) * PGSIZE);
        assert_eq!(t.map(a.as_ptr() as u64, &mem), Err(Errno(libc::ENOSPC)));
        assert_eq!(t.len(), DMA_ENTRY_LIMIT as usize);
    }

    #[test]
    fn ioas_first_fit_skips_areas_and_keeps_alignment() {
        let mut a = Ioas::default();
        assert_eq!(a.alloc(0x1000, 0x1000), Some(0x1000), "never page 0");
        a.areas.insert(0x1000, 0x2000);
        assert_eq!(a.alloc(0x1000, 0x1000), Some(0x3000));
        assert_eq!(a.alloc(0x4000, 0x4000), Some(0x4000));
    }
}
