//! The config region as mainline `vfio_pci_config.c` serves it (`vfio-tph-v7.md` section 3,
//! [vfio]): an access beyond the function's config size (256 bytes for a conventional
//! function, 4 KiB for PCI Express) is EFAULT; bytes in no capability ("unassigned") are read
//! and written raw; the TPH capability has no write permission (writes dropped), except that
//! the feature revision virtualises its Control register (`feature.rs`).
//!
//! [decision] The model does not emulate vfio's virtualised header and capability write
//! permissions: writes to the header and to any capability other than TPH Control are
//! dropped. A capability's extent is its known length (PCI Express 0x3C, PM 8, MSI-X 12, TPH
//! 0xC plus its in-capability table) or, for any other capability, up to the next one (or the
//! end of its space).

use tph_regs::caps::{
    walk_caps, walk_ext_caps, CapEntry, CAP_ID_EXP, CAP_ID_MSIX, CAP_ID_PM, EXT_CAP_ID_TPH,
    EXT_START,
};
use tph_regs::header::{COMMAND, COMMAND_INTX_DISABLE, HEADER_LEN};
use tph_regs::tph::TPH_TABLE;

use super::{feature, irqs, DeviceInner, DeviceState};
use crate::host::KernelAbi;
use crate::hw;
use crate::Errno;

/// Cache Line Size, Latency Timer and BIST: header bytes mainline passes through.
const CACHE_LINE: usize = 0x0c;
const LATENCY: usize = 0x0d;
const BIST: usize = 0x0f;
/// Config size of a conventional (non-Express) function.
const CONVENTIONAL_SIZE: usize = 256;
/// Config size of a PCI Express function.
const EXPRESS_SIZE: usize = 4096;

/// The function's config size, as `pdev->cfg_size`.
fn config_size(hw: &hw::Function) -> usize {
    match hw.express() {
        Some(_) => EXPRESS_SIZE,
        None => CONVENTIONAL_SIZE,
    }
}

/// One flag per config byte: `true` where no capability (nor the header) lies.
pub(super) fn unassigned_map(hw: &hw::Function) -> Vec<bool> {
    let size = config_size(hw);
    let mut map = vec![true; size];
    mark(&mut map, 0, HEADER_LEN);
    let bytes = hw.config_bytes();
    let std = walk_caps(bytes).caps;
    mark_chain(&mut map, &std, HEADER_LEN..CONVENTIONAL_SIZE, |c| {
        std_len(c)
    });
    if size > CONVENTIONAL_SIZE {
        let ext = walk_ext_caps(bytes).caps;
        let tph_len = hw
            .tph()
            .map_or(TPH_TABLE, |t| TPH_TABLE + 2 * usize::from(t.cap_entries()));
        mark_chain(&mut map, &ext, EXT_START..size, |c| {
            (c.id == EXT_CAP_ID_TPH).then_some(tph_len)
        });
    }
    map
}

/// Known lengths of standard capabilities (`pci_cap_length` / `vfio_cap_len`).
fn std_len(c: &CapEntry) -> Option<usize> {
    match u8::try_from(c.id).ok()? {
        CAP_ID_EXP => Some(0x3c),
        CAP_ID_PM => Some(8),
        CAP_ID_MSIX => Some(12),
        _ => None,
    }
}

/// Marks each capability of `chain` (within `space`) as assigned: its known length, else up
/// to the next capability's offset or the end of `space`.
fn mark_chain(
    map: &mut [bool],
    chain: &[CapEntry],
    space: std::ops::Range<usize>,
    known: impl Fn(&CapEntry) -> Option<usize>,
) {
    let mut starts: Vec<usize> = chain.iter().map(|c| usize::from(c.offset)).collect();
    starts.sort_unstable();
    for c in chain {
        let at = usize::from(c.offset);
        let next = starts
            .iter()
            .copied()
            .find(|s| *s > at)
            .unwrap_or(space.end);
        let len = known(c).unwrap_or(next - at);
        mark(map, at, len);
    }
}

fn mark(map: &mut [bool], at: usize, len: usize) {
    let end = at.saturating_add(len).min(map.len());
    if let Some(bytes) = map.get_mut(at.min(end)..end) {
        bytes.iter_mut().for_each(|b| *b = false);
    }
}

/// `len` bytes at `offset` lie within the function's config size, else EFAULT.
fn check_range(hw: &hw::Function, offset: u64, len: usize) -> Result<usize, Errno> {
    let start = usize::try_from(offset).map_err(|_| Errno::EFAULT)?;
    let end = start.checked_add(len).ok_or(Errno::EFAULT)?;
    if end > config_size(hw) {
        return Err(Errno::EFAULT);
    }
    Ok(start)
}

/// A config-region read: dword hardware reads underneath (virtualised on a feature host).
/// The model's device lock is taken (it guards the model's memory); no kernel lock is.
pub(super) fn read(inner: &DeviceInner, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
    let mut st = inner.lock();
    check_range(&st.hw, offset, buf.len())?;
    let plat = inner.platform();
    let virt = inner.abi() == KernelAbi::Feature;
    let mut dword = None;
    for (at, b) in (offset..).zip(buf.iter_mut()) {
        let base = (at & !3) as u16;
        let value = match dword {
            Some((b0, v)) if b0 == base => v,
            _ if virt => {
                let v = feature::virt_read(&mut st, &plat, base);
                virt_header(&st, base, v)
            }
            _ => {
                let phys = st.hw.config_read(base, 4);
                virt_header(&st, base, phys)
            }
        };
        dword = Some((base, value));
        *b = (value >> (8 * (at & 3))) as u8;
    }
    Ok(())
}

/// A config-region write: unassigned bytes go to hardware one byte at a time (raw), the rest
/// is dropped, except TPH Control on a feature host (its errno is the write's).
pub(super) fn write(inner: &DeviceInner, offset: u64, data: &[u8]) -> Result<(), Errno> {
    let mut st = inner.lock();
    let start = check_range(&st.hw, offset, data.len())?;
    write_header(&mut st, start, data);
    for (at, b) in (start..).zip(data) {
        if inner.unassigned.get(at) == Some(&true) {
            st.hw.config_write(at as u16, 1, u32::from(*b));
        }
    }
    if inner.abi() != KernelAbi::Feature {
        return Ok(());
    }
    feature::config_write(&mut st, &inner.platform(), offset, data)
}

/// The header as `vfio_pci_config.c` virtualises it for reads: Command's INTx Disable and the
/// Interrupt Line come from the virtual config space, the rest from the hardware.
fn virt_header(st: &DeviceState, base: u16, phys: u32) -> u32 {
    match base {
        b if b == COMMAND as u16 => {
            let intx = u32::from(COMMAND_INTX_DISABLE);
            (phys & !intx) | if st.irqs.virq_disabled { intx } else { 0 }
        }
        irqs::INTERRUPT_LINE => (phys & !0xff) | u32::from(st.vconfig_line),
        _ => phys,
    }
}

/// Header writes with the permissions of `init_pci_cap_basic_perm`: every Command bit but
/// INTx Disable goes to the hardware (one write of the bytes given), INTx Disable is virtual
/// (`vfio_pci_intx_mask` / `unmask` follow it); Cache Line Size, Latency Timer and BIST are
/// written raw; the Interrupt Line is virtual. Every other header byte is dropped (the BARs,
/// which mainline virtualises, included).
fn write_header(st: &mut DeviceState, start: usize, data: &[u8]) {
    let cmd = COMMAND;
    let lo = start.max(cmd);
    let hi = (start + data.len()).min(cmd + 2);
    if lo < hi {
        let phys = st.hw.config_read(cmd as u16, 4) as u16;
        let mut new = phys.to_le_bytes();
        new[lo - cmd..hi - cmd].copy_from_slice(&data[lo - start..hi - start]);
        let user = u16::from_le_bytes(new);
        let intx = COMMAND_INTX_DISABLE;
        let value = (user & !intx) | (phys & intx);
        let width = (hi - lo) as u8;
        let shift = 8 * (lo - cmd);
        st.hw
            .config_write(lo as u16, width, u32::from(value) >> shift & mask(width));
        irqs::virtual_intx_disable(st, user & intx != 0);
    }
    for (at, b) in (start..).zip(data) {
        match at {
            CACHE_LINE | LATENCY | BIST => {
                st.hw.config_write(at as u16, 1, u32::from(*b));
            }
            a if a == usize::from(irqs::INTERRUPT_LINE) => st.vconfig_line = *b,
            _ => {}
        }
    }
}

fn mask(width: u8) -> u32 {
    match width {
        1 => 0xff,
        2 => 0xffff,
        _ => u32::MAX,
    }
}
