//! `VFIO_DEVICE_SET_IRQS` for MSI-X as mainline does it (`vfio_pci_intrs.c`, `msi.c`;
//! `vfio-tph-v7.md` section 3, [vfio]): `start` may be non-zero; with MSI-X off the first call
//! allocates `start + count` vectors, and `msix_capability_init` first masks **every** table
//! entry by writing Vector Control = 1 (which zeroes the steering tags of entries nobody
//! allocates); with MSI-X on, a call updates its block in place. Vector Control is always
//! written from the kernel's cached copy (`msix_ctrl`), so a tag written behind the kernel's
//! back (through a mapping of the table) is overwritten at the next mask or unmask.

use tph_regs::msix::{MSIX_FLAGS, MSIX_FLAGS_ENABLE, MSIX_FLAGS_MASKALL, VECTOR_CTRL_MASKBIT};

use super::abi;
use super::memory::UserMemory;
use super::DeviceState;
use crate::core::MsiState;
use crate::hw;
use crate::Errno;

/// Vector Control's offset inside a table entry.
const VECTOR_CTRL: u8 = tph_regs::msix::MSIX_VECTOR_CTRL as u8;

/// Decodes a `VFIO_DEVICE_SET_IRQS` argument for the MSI-X index: `DATA_NONE | TRIGGER`
/// with `count == 0` (disable: an empty block), or `DATA_EVENTFD | TRIGGER` with `count`
/// fds (-1 removes a trigger); the block's start and one entry per fd. Else EINVAL.
pub(super) fn decode(arg: u64, mem: &dyn UserMemory) -> Result<(u32, Vec<bool>), Errno> {
    let mut head = [0u8; abi::IRQ_SET_HEADER_SIZE];
    mem.read(arg, &mut head).map_err(|_| Errno::EFAULT)?;
    let word = |i: usize| abi::le32(&head, 4 * i);
    let (argsz, flags, index, start, count) = (word(0), word(1), word(2), word(3), word(4));
    if (argsz as usize) < abi::IRQ_SET_HEADER_SIZE || index != abi::MSIX_IRQ_INDEX {
        return Err(Errno::EINVAL);
    }
    let none = abi::IRQ_SET_DATA_NONE | abi::IRQ_SET_ACTION_TRIGGER;
    let eventfd = abi::IRQ_SET_DATA_EVENTFD | abi::IRQ_SET_ACTION_TRIGGER;
    match flags {
        f if f == none && count == 0 => Ok((0, Vec::new())),
        f if f == eventfd => read_fds(arg, argsz, count, mem).map(|fds| (start, fds)),
        _ => Err(Errno::EINVAL),
    }
}

/// The `count` fds after the header: `true` for an eventfd, `false` for -1.
fn read_fds(arg: u64, argsz: u32, count: u32, mem: &dyn UserMemory) -> Result<Vec<bool>, Errno> {
    let len = 4 * u64::from(count);
    if u64::from(argsz) < abi::IRQ_SET_HEADER_SIZE as u64 + len {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; usize::try_from(len).map_err(|_| Errno::EINVAL)?];
    let data = arg
        .checked_add(abi::IRQ_SET_HEADER_SIZE as u64)
        .ok_or(Errno::EFAULT)?;
    mem.read(data, &mut raw).map_err(|_| Errno::EFAULT)?;
    Ok(raw
        .chunks_exact(4)
        .map(|w| abi::le32(w, 0) as i32 >= 0)
        .collect())
}

/// One SET_IRQS block: empty disables; `start + len` beyond the table is EINVAL (`max`
/// check of `vfio_pci_set_irqs_ioctl`); MSI-X off: enable with `start + len` vectors; then
/// every vector of the block gets its trigger set or removed in place.
pub(super) fn set_block(st: &mut DeviceState, start: u32, triggers: &[bool]) -> Result<(), Errno> {
    if triggers.is_empty() {
        disable(st);
        return Ok(());
    }
    let size = st.hw.msix().map_or(0, |m| u32::from(m.table_size));
    let end = u32::try_from(triggers.len())
        .ok()
        .and_then(|n| start.checked_add(n))
        .filter(|end| *end <= size)
        .ok_or(Errno::EINVAL)?;
    if !st.msi.enabled {
        enable(st, end);
    }
    for (vector, on) in (start..end).zip(triggers) {
        set_trigger(st, vector as u16, *on);
    }
    Ok(())
}

/// `msix_capability_init`: Message Control enable + function mask, every table entry masked
/// (Vector Control written whole with the mask bit: tags zeroed), `count` vectors allocated
/// with Vector Control cached from the device, function mask cleared.
fn enable(st: &mut DeviceState, count: u32) {
    let Some(ctrl) = msix_ctrl_off(st) else {
        return;
    };
    let flags = st.hw.config_read(ctrl, 2) as u16;
    let masked_on = flags | MSIX_FLAGS_ENABLE | MSIX_FLAGS_MASKALL;
    st.hw.config_write(ctrl, 2, u32::from(masked_on));
    let size = st.hw.msix().map_or(0, |m| m.table_size);
    for vector in 0..size {
        st.hw.msix_write(vector, VECTOR_CTRL, VECTOR_CTRL_MASKBIT);
    }
    st.msi = MsiState {
        enabled: true,
        ..MsiState::default()
    };
    st.triggers.clear();
    for vector in 0..count {
        allocate(st, vector as u16);
    }
    let on = (flags | MSIX_FLAGS_ENABLE) & !MSIX_FLAGS_MASKALL;
    st.hw.config_write(ctrl, 2, u32::from(on));
}

/// One more allocated vector: message written, Vector Control cached from the device
/// (`msix_prepare_msi_desc`), no trigger yet.
fn allocate(st: &mut DeviceState, vector: u16) {
    let msg = message_for(vector);
    write_message(&mut st.hw, vector, msg);
    let vc = st.hw.msix_read(vector, VECTOR_CTRL);
    st.msi.vector_ctrl.push(vc);
    st.msi.messages.push(msg);
    st.triggers.push(false);
}

/// `vfio_msi_set_vector_signal`: an existing trigger is released (the vector masked from the
/// cache); a new one is requested (unmasked from the cache). Vectors beyond the allocation are
/// allocated on demand (dynamic MSI-X). A removed trigger leaves the vector allocated and
/// masked [decision].
fn set_trigger(st: &mut DeviceState, vector: u16, on: bool) {
    while st.msi.vector_ctrl.len() <= usize::from(vector) {
        let next = st.msi.vector_ctrl.len() as u16;
        allocate(st, next);
    }
    if st.triggers.get(usize::from(vector)) == Some(&true) {
        write_cached(st, vector, true);
    }
    if on {
        write_cached(st, vector, false);
    }
    if let Some(t) = st.triggers.get_mut(usize::from(vector)) {
        *t = on;
    }
}

/// Masks or unmasks `vector` by writing the cached Vector Control with the mask bit set or
/// clear (`pci_msix_write_vector_ctrl` from `desc->pci.msix_ctrl`).
fn write_cached(st: &mut DeviceState, vector: u16, masked: bool) {
    let Some(cached) = st.msi.vector_ctrl.get_mut(usize::from(vector)) else {
        return;
    };
    *cached = match masked {
        true => *cached | VECTOR_CTRL_MASKBIT,
        false => *cached & !VECTOR_CTRL_MASKBIT,
    };
    let value = *cached;
    st.hw.msix_write(vector, VECTOR_CTRL, value);
}

/// `vfio_msi_disable` / `pci_disable_msix`: every allocated vector masked from the cache,
/// MSI-X disabled, the kernel's vectors and VFIO's triggers forgotten.
pub(super) fn disable(st: &mut DeviceState) {
    let Some(ctrl) = msix_ctrl_off(st).filter(|_| st.msi.enabled) else {
        return;
    };
    for vector in 0..st.msi.vector_ctrl.len() as u16 {
        write_cached(st, vector, true);
    }
    let flags = st.hw.config_read(ctrl, 2) as u16;
    let off = flags & !(MSIX_FLAGS_ENABLE | MSIX_FLAGS_MASKALL);
    st.hw.config_write(ctrl, 2, u32::from(off));
    st.msi = MsiState::default();
    st.triggers.clear();
}

/// `pci_restore_msi_state` for MSI-X: enable with the function masked, each allocated vector's
/// cached message and Vector Control (its steering tag included), then unmask the function.
pub(super) fn restore(st: &mut DeviceState) {
    let Some(ctrl) = msix_ctrl_off(st).filter(|_| st.msi.enabled) else {
        return;
    };
    let masked_on = MSIX_FLAGS_ENABLE | MSIX_FLAGS_MASKALL;
    st.hw.config_write(ctrl, 2, u32::from(masked_on));
    let cached = st.msi.clone();
    for (vector, (vc, msg)) in (0u16..).zip(cached.vector_ctrl.iter().zip(&cached.messages)) {
        write_message(&mut st.hw, vector, *msg);
        st.hw.msix_write(vector, VECTOR_CTRL, *vc);
    }
    st.hw.config_write(ctrl, 2, u32::from(MSIX_FLAGS_ENABLE));
}

fn msix_ctrl_off(st: &DeviceState) -> Option<u16> {
    st.hw.msix().map(|m| m.offset + MSIX_FLAGS as u16)
}

/// A message address / data for `vector` (the model has no interrupt controller; the values
/// only need to be distinct and survive a reset).
fn message_for(vector: u16) -> [u32; 3] {
    [
        0xfee0_0000 | u32::from(vector) << 12,
        0,
        0x4000 | u32::from(vector),
    ]
}

fn write_message(hw: &mut hw::Function, vector: u16, msg: [u32; 3]) {
    for (offset, value) in [0u8, 4, 8].into_iter().zip(msg) {
        hw.msix_write(vector, offset, value);
    }
}
