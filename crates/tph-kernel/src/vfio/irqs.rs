//! `VFIO_DEVICE_SET_IRQS` and `VFIO_DEVICE_GET_IRQ_INFO` as mainline answers them
//! (`vfio_set_irqs_validate_and_prepare` in `vfio_main.c`; `vfio_pci_set_irqs_ioctl` and its
//! INTx, MSI/MSI-X, ERR and REQ handlers in `vfio_pci_intrs.c`; `vfio_pci_get_irq_count` and
//! the IRQ info of `vfio_pci_core.c`), over the PCI core's MSI-X (`drivers/pci/msi/msi.c`).
//!
//! The header is validated first, for every index the same way: `argsz`, the index, the flags,
//! `start` below the index's vector count **even when `count` is 0**, `start + count` within
//! it, exactly one data type and enough data. Then the index's handler:
//! - MSI / MSI-X trigger: `DATA_NONE` with `count 0` while the index is enabled disables it;
//!   eventfds enable it with `start + count` vectors when nothing is enabled (no vector asked:
//!   ERANGE from `pci_alloc_irq_vectors`), else set or remove (`fd < 0`) triggers in place;
//!   `DATA_NONE` / `DATA_BOOL` (loopback) signal the triggers of the block and change nothing,
//!   and are EINVAL while the index is not enabled. Growing an enabled block follows the host's
//!   [`MsixAlloc`].
//! - INTx: trigger (enable with an eventfd, `DATA_NONE count 0` disables, loopback), mask and
//!   unmask (INTx Disable in Command when the function supports INTx masking).
//! - ERR (PCI Express only) and REQ: one trigger each, set, removed (`fd -1`) or signalled.
//!
//! MSI-X enable is `msix_capability_init`: Enable + Function Mask, the vectors allocated with
//! each one's Vector Control **read from the device into the kernel's cache**
//! (`msix_prepare_msi_desc`), INTx disabled, then every table entry masked by writing Vector
//! Control = 1, then the function mask cleared. A vector whose trigger is set is unmasked from
//! the cache, so a re-allocated vector gets back the Vector Control (steering tag included)
//! the hardware held before the mask-all; entries nobody allocates keep Vector Control = 1.
//! Vector Control is always written from the cache (`msix_ctrl`), so a tag written behind the
//! kernel's back (through a mapping of the table) is overwritten at the next mask or unmask.

use tph_regs::header::{COMMAND, COMMAND_INTX_DISABLE};
use tph_regs::msix::{MSIX_FLAGS, MSIX_FLAGS_ENABLE, MSIX_FLAGS_MASKALL, VECTOR_CTRL_MASKBIT};

use super::abi;
use super::memory::UserMemory;
use super::DeviceState;
use crate::core::MsiState;
use crate::host::MsixAlloc;
use crate::hw;
use crate::Errno;

/// Vector Control's offset inside a table entry.
const VECTOR_CTRL: u8 = tph_regs::msix::MSIX_VECTOR_CTRL as u8;
/// `PCI_CAP_ID_MSI`, and Message Control's Enable bit and Multiple Message Capable field.
const CAP_ID_MSI: u16 = 0x05;
const MSI_FLAGS_ENABLE: u16 = 1 << 0;
const MSI_FLAGS_QMASK: u16 = 0x0e;
/// MSI-X Message Control's Table Size field (N - 1).
const MSIX_FLAGS_QSIZE: u32 = 0x7ff;
/// The header dword holding Interrupt Line (byte 0) and Interrupt Pin (byte 1).
pub(super) const INTERRUPT_LINE: u16 = 0x3c;
/// `offsetofend(struct vfio_irq_set, count)`.
const MINSZ: u32 = abi::IRQ_SET_HEADER_SIZE as u32;

/// Which interrupt VFIO has enabled (`vdev->irq_type`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum IrqType {
    /// `VFIO_PCI_NUM_IRQS`: none.
    #[default]
    None,
    Intx,
    Msi,
    Msix,
}

impl IrqType {
    fn index(self) -> Option<u32> {
        match self {
            IrqType::None => None,
            IrqType::Intx => Some(abi::INTX_IRQ_INDEX),
            IrqType::Msi => Some(abi::MSI_IRQ_INDEX),
            IrqType::Msix => Some(abi::MSIX_IRQ_INDEX),
        }
    }
}

/// VFIO's interrupt contexts for one device. Triggers are the caller's eventfd numbers.
#[derive(Clone, Debug, Default)]
pub(crate) struct IrqState {
    pub(crate) kind: IrqType,
    /// MSI / MSI-X: one context per vector VFIO knows (`num_ctx`), its trigger if any.
    vectors: Vec<Option<i32>>,
    /// INTx: the trigger, the unmask eventfd, masked, and the virtual INTx Disable
    /// (`virq_disabled`, set through the config region's Command).
    intx_trigger: Option<i32>,
    intx_unmask: Option<i32>,
    intx_masked: bool,
    pub(crate) virq_disabled: bool,
    err: Option<i32>,
    req: Option<i32>,
    /// Whether the function supports INTx masking (`pci_intx_mask_supported` at first open).
    pub(crate) pci_2_3: bool,
    /// Loopback signals not yet collected ([`IrqSignal`]).
    pub(crate) signals: Vec<IrqSignal>,
}

/// One eventfd signal the kernel sent (a loopback `DATA_NONE` / `DATA_BOOL` trigger).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IrqSignal {
    /// The IRQ index (`VFIO_PCI_*_IRQ_INDEX`).
    pub index: u32,
    /// The vector within the index.
    pub vector: u32,
    /// The eventfd the caller gave for it.
    pub fd: i32,
}

impl IrqSignal {
    /// A signal on vector `vector` of IRQ index `index` through eventfd `fd` (to compare with
    /// what [`VfioDevice::drain_irq_signals`](crate::VfioDevice::drain_irq_signals) returns).
    pub const fn new(index: u32, vector: u32, fd: i32) -> Self {
        Self { index, vector, fd }
    }
}

/// The caller's file descriptors as the kernel resolves an eventfd (`eventfd_ctx_fdget`).
pub trait EventfdCheck {
    /// `Ok` when `fd` (>= 0) is an open eventfd of the caller; EBADF when it is not open,
    /// EINVAL when it is not an eventfd.
    fn check(&self, fd: i32) -> Result<(), Errno>;
}

/// Every fd >= 0 is an eventfd (callers in the same process, tests).
#[derive(Clone, Copy, Debug, Default)]
pub struct AnyEventfd;

impl EventfdCheck for AnyEventfd {
    fn check(&self, _fd: i32) -> Result<(), Errno> {
        Ok(())
    }
}

/// `VFIO_IRQ_INFO_*` flags and the vector count of one index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IrqInfo {
    /// `VFIO_IRQ_INFO_*`.
    pub flags: u32,
    /// Vectors the index has (`vfio_pci_get_irq_count`).
    pub count: u32,
}

impl IrqInfo {
    /// An index with `flags` (`VFIO_IRQ_INFO_*`) and `count` vectors.
    pub const fn new(flags: u32, count: u32) -> Self {
        Self { flags, count }
    }
}

/// The payload after the header.
enum Data {
    None,
    Bool(Vec<u8>),
    Eventfd(Vec<i32>),
}

impl Data {
    /// Loopback: whether vector `i` of the block is to be signalled.
    fn fires(&self, i: usize) -> bool {
        match self {
            Data::None => true,
            Data::Bool(b) => b.get(i).is_some_and(|v| *v != 0),
            Data::Eventfd(_) => false,
        }
    }
}

/// The host behaviour SET_IRQS depends on.
pub(super) struct IrqHost<'a> {
    pub(super) alloc: MsixAlloc,
    pub(super) fds: &'a dyn EventfdCheck,
}

/// `vfio_pci_get_irq_count`.
pub(super) fn irq_count(st: &mut DeviceState, index: u32) -> u32 {
    match index {
        abi::INTX_IRQ_INDEX => u32::from(st.hw.config_read(INTERRUPT_LINE, 4) & 0xff00 != 0),
        abi::MSI_IRQ_INDEX => msi_cap(&st.hw).map_or(0, |at| {
            let flags = st.hw.config_read(at + 2, 2) as u16;
            1 << ((flags & MSI_FLAGS_QMASK) >> 1)
        }),
        abi::MSIX_IRQ_INDEX => {
            msix_ctrl_off(st).map_or(0, |at| (st.hw.config_read(at, 2) & MSIX_FLAGS_QSIZE) + 1)
        }
        abi::ERR_IRQ_INDEX => u32::from(st.hw.express().is_some()),
        abi::REQ_IRQ_INDEX => 1,
        _ => 0,
    }
}

/// `VFIO_DEVICE_GET_IRQ_INFO` for `index`: EINVAL past the indexes and for ERR on a function
/// that is not PCI Express. INTx is maskable and automasked; every other index is `NORESIZE`
/// except MSI-X on a host that allocates MSI-X vectors dynamically.
pub(super) fn irq_info(
    st: &mut DeviceState,
    alloc: MsixAlloc,
    index: u32,
) -> Result<IrqInfo, Errno> {
    let pcie = st.hw.express().is_some();
    if index >= abi::NUM_IRQS || (index == abi::ERR_IRQ_INDEX && !pcie) {
        return Err(Errno::EINVAL);
    }
    let mut flags = abi::IRQ_INFO_EVENTFD;
    if index == abi::INTX_IRQ_INDEX {
        flags |= abi::IRQ_INFO_MASKABLE | abi::IRQ_INFO_AUTOMASKED;
    } else if index != abi::MSIX_IRQ_INDEX || alloc == MsixAlloc::Static {
        flags |= abi::IRQ_INFO_NORESIZE;
    }
    Ok(IrqInfo {
        flags,
        count: irq_count(st, index),
    })
}

/// The byte-level `VFIO_DEVICE_GET_IRQ_INFO`: `argsz` below 16 is EINVAL; flags and count are
/// written back.
pub(super) fn irq_info_ioctl(
    st: &mut DeviceState,
    alloc: MsixAlloc,
    arg: u64,
    mem: &mut dyn UserMemory,
) -> Result<i32, Errno> {
    let mut info = [0u8; abi::IRQ_INFO_SIZE];
    mem.read(arg, &mut info).map_err(|_| Errno::EFAULT)?;
    let head = abi::vfio::IrqInfo::from_bytes(&info).ok_or(Errno::EFAULT)?;
    if (head.argsz as usize) < abi::IRQ_INFO_SIZE {
        return Err(Errno::EINVAL);
    }
    let got = irq_info(st, alloc, head.index)?;
    info[4..8].copy_from_slice(&got.flags.to_le_bytes());
    info[12..16].copy_from_slice(&got.count.to_le_bytes());
    mem.write(arg, &info).map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

/// The byte-level `VFIO_DEVICE_SET_IRQS`: validated as `vfio_set_irqs_validate_and_prepare`,
/// the data copied in (EFAULT), then `vfio_pci_set_irqs_ioctl`.
pub(super) fn set_irqs_ioctl(
    st: &mut DeviceState,
    host: &IrqHost<'_>,
    arg: u64,
    mem: &dyn UserMemory,
) -> Result<i32, Errno> {
    let mut head = [0u8; abi::IRQ_SET_HEADER_SIZE];
    mem.read(arg, &mut head).map_err(|_| Errno::EFAULT)?;
    let abi::vfio::IrqSet {
        argsz,
        flags,
        index,
        start,
        count,
    } = abi::vfio::IrqSet::from_bytes(&head).ok_or(Errno::EFAULT)?;
    let max = irq_count(st, index);
    let known = abi::IRQ_SET_DATA_TYPE_MASK | abi::IRQ_SET_ACTION_TYPE_MASK;
    if argsz < MINSZ || index >= abi::NUM_IRQS || count >= u32::MAX - start || flags & !known != 0 {
        return Err(Errno::EINVAL);
    }
    if start >= max || start + count > max {
        return Err(Errno::EINVAL);
    }
    let size: u32 = match flags & abi::IRQ_SET_DATA_TYPE_MASK {
        abi::IRQ_SET_DATA_NONE => 0,
        abi::IRQ_SET_DATA_BOOL => 1,
        abi::IRQ_SET_DATA_EVENTFD => 4,
        _ => return Err(Errno::EINVAL),
    };
    let len = u64::from(count) * u64::from(size);
    if size != 0 && u64::from(argsz - MINSZ) < len {
        return Err(Errno::EINVAL);
    }
    let mut raw = vec![0u8; usize::try_from(len).map_err(|_| Errno::EINVAL)?];
    if !raw.is_empty() {
        let at = arg.checked_add(u64::from(MINSZ)).ok_or(Errno::EFAULT)?;
        mem.read(at, &mut raw).map_err(|_| Errno::EFAULT)?;
    }
    let data = match size {
        0 => Data::None,
        1 => Data::Bool(raw),
        _ => Data::Eventfd(
            raw.as_chunks::<4>()
                .0
                .iter()
                .map(|w| i32::from_le_bytes(*w))
                .collect(),
        ),
    };
    dispatch(st, host, flags, index, start, count, &data).map(|()| 0)
}

/// `vfio_pci_set_irqs_ioctl`: the handler of the index and action; none: ENOTTY.
fn dispatch(
    st: &mut DeviceState,
    host: &IrqHost<'_>,
    flags: u32,
    index: u32,
    start: u32,
    count: u32,
    data: &Data,
) -> Result<(), Errno> {
    let action = flags & abi::IRQ_SET_ACTION_TYPE_MASK;
    let trigger = action == abi::IRQ_SET_ACTION_TRIGGER;
    match index {
        abi::INTX_IRQ_INDEX if action == abi::IRQ_SET_ACTION_MASK => {
            intx_mask(st, start, count, data)
        }
        abi::INTX_IRQ_INDEX if action == abi::IRQ_SET_ACTION_UNMASK => {
            intx_unmask(st, host, start, count, data)
        }
        abi::INTX_IRQ_INDEX if trigger => intx_trigger(st, host, start, count, data),
        abi::MSI_IRQ_INDEX | abi::MSIX_IRQ_INDEX if trigger => {
            msi_trigger(st, host, index, start, count, data)
        }
        abi::ERR_IRQ_INDEX if trigger && st.hw.express().is_some() => {
            let mut ctx = st.irqs.err;
            let r = single_trigger(&mut st.irqs.signals, host, index, &mut ctx, count, data);
            st.irqs.err = ctx;
            r
        }
        abi::REQ_IRQ_INDEX if trigger => {
            let mut ctx = st.irqs.req;
            let r = single_trigger(&mut st.irqs.signals, host, index, &mut ctx, count, data);
            st.irqs.req = ctx;
            r
        }
        _ => Err(Errno::ENOTTY),
    }
}

/// `vfio_pci_set_ctx_trigger_single` (ERR, REQ): `DATA_NONE` signals (count 1) or releases
/// (count 0) an existing trigger and is EINVAL without one; `DATA_BOOL` signals; an eventfd
/// sets the trigger, -1 removes it, other negative fds change nothing.
fn single_trigger(
    signals: &mut Vec<IrqSignal>,
    host: &IrqHost<'_>,
    index: u32,
    ctx: &mut Option<i32>,
    count: u32,
    data: &Data,
) -> Result<(), Errno> {
    match data {
        Data::None => match *ctx {
            Some(fd) if count > 0 => {
                signals.push(IrqSignal {
                    index,
                    vector: 0,
                    fd,
                });
                Ok(())
            }
            Some(_) => {
                *ctx = None;
                Ok(())
            }
            None => Err(Errno::EINVAL),
        },
        Data::Bool(_) if count == 0 => Err(Errno::EINVAL),
        Data::Bool(_) => {
            if let (true, Some(fd)) = (data.fires(0), *ctx) {
                signals.push(IrqSignal {
                    index,
                    vector: 0,
                    fd,
                });
            }
            Ok(())
        }
        Data::Eventfd(_) if count == 0 => Err(Errno::EINVAL),
        Data::Eventfd(fds) => {
            let fd = fds.first().copied().unwrap_or(-1);
            if fd == -1 {
                *ctx = None;
            } else if fd >= 0 {
                host.fds.check(fd)?;
                *ctx = Some(fd);
            }
            Ok(())
        }
    }
}

// ---- INTx ----

/// `vfio_pci_set_intx_trigger`.
fn intx_trigger(
    st: &mut DeviceState,
    host: &IrqHost<'_>,
    start: u32,
    count: u32,
    data: &Data,
) -> Result<(), Errno> {
    let is_intx = st.irqs.kind == IrqType::Intx;
    if is_intx && count == 0 && matches!(data, Data::None) {
        intx_disable(st);
        return Ok(());
    }
    if !(is_intx || st.irqs.kind == IrqType::None) || start != 0 || count != 1 {
        return Err(Errno::EINVAL);
    }
    if let Data::Eventfd(fds) = data {
        let fd = fds.first().copied().unwrap_or(-1);
        if fd >= 0 {
            host.fds.check(fd)?;
        }
        if !is_intx {
            intx_enable(st);
        }
        st.irqs.intx_trigger = (fd >= 0).then_some(fd);
        return Ok(());
    }
    if !is_intx {
        return Err(Errno::EINVAL);
    }
    if data.fires(0) {
        send_intx(st);
    }
    Ok(())
}

/// `vfio_intx_enable`: the virtual INTx mask restored (INTx Disable in hardware when the
/// function supports masking).
fn intx_enable(st: &mut DeviceState) {
    st.irqs.intx_masked = st.irqs.virq_disabled;
    if st.irqs.pci_2_3 {
        let masked = st.irqs.intx_masked;
        pci_intx(&mut st.hw, !masked);
    }
    st.irqs.kind = IrqType::Intx;
}

fn intx_disable(st: &mut DeviceState) {
    st.irqs.intx_trigger = None;
    st.irqs.intx_unmask = None;
    st.irqs.kind = IrqType::None;
}

/// `vfio_send_intx_eventfd`.
fn send_intx(st: &mut DeviceState) {
    if let (IrqType::Intx, false, Some(fd)) =
        (st.irqs.kind, st.irqs.virq_disabled, st.irqs.intx_trigger)
    {
        st.irqs.signals.push(IrqSignal {
            index: abi::INTX_IRQ_INDEX,
            vector: 0,
            fd,
        });
    }
}

/// `vfio_pci_set_intx_mask`: only while INTx is enabled, one vector; an eventfd is ENOTTY.
fn intx_mask(st: &mut DeviceState, start: u32, count: u32, data: &Data) -> Result<(), Errno> {
    if st.irqs.kind != IrqType::Intx || start != 0 || count != 1 {
        return Err(Errno::EINVAL);
    }
    match data {
        Data::Eventfd(_) => Err(Errno::ENOTTY),
        _ => {
            if data.fires(0) {
                intx_set_masked(st, true);
            }
            Ok(())
        }
    }
}

/// `vfio_pci_set_intx_unmask`: only while INTx is enabled, one vector; an eventfd sets (or,
/// negative, removes) the unmask eventfd.
fn intx_unmask(
    st: &mut DeviceState,
    host: &IrqHost<'_>,
    start: u32,
    count: u32,
    data: &Data,
) -> Result<(), Errno> {
    if st.irqs.kind != IrqType::Intx || start != 0 || count != 1 {
        return Err(Errno::EINVAL);
    }
    match data {
        Data::Eventfd(fds) => {
            let fd = fds.first().copied().unwrap_or(-1);
            if fd >= 0 {
                host.fds.check(fd)?;
            }
            st.irqs.intx_unmask = (fd >= 0).then_some(fd);
        }
        _ => {
            if data.fires(0) {
                intx_set_masked(st, false);
            }
        }
    }
    Ok(())
}

/// `vfio_pci_intx_mask` / `vfio_pci_intx_unmask` while INTx is enabled (the model's device
/// never has an interrupt pending, so an unmask always succeeds).
fn intx_set_masked(st: &mut DeviceState, mask: bool) {
    if mask && !st.irqs.intx_masked {
        if st.irqs.pci_2_3 {
            pci_intx(&mut st.hw, false);
        }
        st.irqs.intx_masked = true;
    } else if !mask && st.irqs.intx_masked && !st.irqs.virq_disabled {
        if st.irqs.pci_2_3 {
            pci_intx(&mut st.hw, true);
        }
        st.irqs.intx_masked = false;
    }
}

/// The virtual INTx Disable bit of Command changed (a config-region write):
/// `vfio_pci_intx_mask` / `unmask`, which, INTx not in use, make the physical bit follow the
/// virtual one on a function that supports masking.
pub(super) fn virtual_intx_disable(st: &mut DeviceState, disable: bool) {
    if disable == st.irqs.virq_disabled {
        return;
    }
    if st.irqs.kind != IrqType::Intx {
        st.irqs.virq_disabled = disable;
        if st.irqs.pci_2_3 {
            pci_intx(&mut st.hw, !disable);
        }
        return;
    }
    if disable {
        st.irqs.virq_disabled = true;
        intx_set_masked(st, true);
    } else {
        st.irqs.virq_disabled = false;
        intx_set_masked(st, false);
    }
}

/// `pci_intx`: INTx Disable cleared (`enable`) or set, written only when it changes.
pub(super) fn pci_intx(hw: &mut hw::Function, enable: bool) {
    let old = hw.config_read(COMMAND as u16, 2) as u16;
    let new = match enable {
        true => old & !COMMAND_INTX_DISABLE,
        false => old | COMMAND_INTX_DISABLE,
    };
    if new != old {
        hw.config_write(COMMAND as u16, 2, u32::from(new));
    }
}

// ---- MSI and MSI-X ----

/// `vfio_pci_set_msi_trigger`.
fn msi_trigger(
    st: &mut DeviceState,
    host: &IrqHost<'_>,
    index: u32,
    start: u32,
    count: u32,
    data: &Data,
) -> Result<(), Errno> {
    let is_this = st.irqs.kind.index() == Some(index);
    if is_this && count == 0 && matches!(data, Data::None) {
        disable(st);
        return Ok(());
    }
    if !(is_this || st.irqs.kind == IrqType::None) {
        return Err(Errno::EINVAL);
    }
    if let Data::Eventfd(fds) = data {
        if is_this {
            return set_block(st, host, start, fds);
        }
        msi_enable(st, index, start + count)?;
        let r = set_block(st, host, start, fds);
        if r.is_err() {
            disable(st);
        }
        return r;
    }
    let beyond = u64::from(start) + u64::from(count) > st.irqs.vectors.len() as u64;
    if !is_this || (host.alloc == MsixAlloc::Static && beyond) {
        return Err(Errno::EINVAL);
    }
    for (i, vector) in (start..start + count).enumerate() {
        let trigger = st.irqs.vectors.get(vector as usize).copied().flatten();
        if let (Some(fd), true) = (trigger, data.fires(i)) {
            st.irqs.signals.push(IrqSignal { index, vector, fd });
        }
    }
    Ok(())
}

/// `vfio_msi_enable`: `pci_alloc_irq_vectors(1, nvec)` (no vector: ERANGE), then VFIO's
/// contexts for them.
fn msi_enable(st: &mut DeviceState, index: u32, nvec: u32) -> Result<(), Errno> {
    if nvec == 0 {
        return Err(Errno::ERANGE);
    }
    if index == abi::MSIX_IRQ_INDEX {
        msix_capability_init(st, nvec);
        st.irqs.kind = IrqType::Msix;
    } else {
        msi_capability_init(st, nvec);
        st.irqs.kind = IrqType::Msi;
    }
    st.irqs.vectors = vec![None; nvec as usize];
    Ok(())
}

/// `vfio_msi_set_block`. A 6.1 host ([`MsixAlloc::Static`]) checks the block against the
/// vectors allocated at enable first (EINVAL); a dynamic host allocates a vector when an eventfd
/// names one beyond them. A failure removes the triggers of the block set so far.
fn set_block(
    st: &mut DeviceState,
    host: &IrqHost<'_>,
    start: u32,
    fds: &[i32],
) -> Result<(), Errno> {
    let n = st.irqs.vectors.len() as u64;
    let end = u64::from(start) + fds.len() as u64;
    if host.alloc == MsixAlloc::Static && (u64::from(start) >= n || end > n) {
        return Err(Errno::EINVAL);
    }
    for (vector, fd) in (start..).zip(fds) {
        if let Err(e) = set_vector_signal(st, host, vector, *fd) {
            for undo in start..=vector {
                let _ = set_vector_signal(st, host, undo, -1);
            }
            return Err(e);
        }
    }
    Ok(())
}

/// `vfio_msi_set_vector_signal`: an existing trigger is released (the vector masked from the
/// cache; it stays allocated); a new one is requested: the vector allocated if it is not (a
/// dynamic host only; else EINVAL), the eventfd resolved, the vector unmasked from the cache.
fn set_vector_signal(
    st: &mut DeviceState,
    host: &IrqHost<'_>,
    vector: u32,
    fd: i32,
) -> Result<(), Errno> {
    let v = vector as usize;
    let msix = st.irqs.kind == IrqType::Msix;
    if st.irqs.vectors.get(v).copied().flatten().is_some() {
        if msix {
            write_cached(st, vector as u16, true);
        }
        st.irqs.vectors[v] = None;
    }
    if fd < 0 {
        return Ok(());
    }
    if v >= st.irqs.vectors.len() {
        if !msix || host.alloc == MsixAlloc::Static {
            return Err(Errno::EINVAL);
        }
        while st.irqs.vectors.len() <= v {
            let next = st.irqs.vectors.len() as u16;
            allocate(st, next);
            st.irqs.vectors.push(None);
        }
    }
    host.fds.check(fd)?;
    if msix {
        write_cached(st, vector as u16, false);
    }
    st.irqs.vectors[v] = Some(fd);
    Ok(())
}

/// `vfio_msi_disable`: every trigger released, then `pci_free_irq_vectors`.
pub(super) fn disable(st: &mut DeviceState) {
    let kind = st.irqs.kind;
    for vector in 0..st.irqs.vectors.len() {
        if st.irqs.vectors[vector].take().is_some() && kind == IrqType::Msix {
            write_cached(st, vector as u16, true);
        }
    }
    match kind {
        IrqType::Msix => msix_shutdown(st),
        IrqType::Msi => msi_shutdown(st),
        _ => {}
    }
    st.irqs.vectors.clear();
    st.irqs.kind = IrqType::None;
}

/// Everything VFIO's interrupts hold released (`vfio_pci_core_disable` and close).
pub(super) fn release_all(st: &mut DeviceState) {
    match st.irqs.kind {
        IrqType::Msi | IrqType::Msix => disable(st),
        IrqType::Intx => intx_disable(st),
        IrqType::None => {}
    }
    st.irqs.err = None;
    st.irqs.req = None;
    st.irqs.virq_disabled = false;
    st.irqs.signals.clear();
}

/// `msix_capability_init`: Enable + Function Mask; `count` vectors allocated, each one's
/// Vector Control read into the cache; INTx disabled; every entry masked (Vector Control = 1);
/// Function Mask cleared.
fn msix_capability_init(st: &mut DeviceState, count: u32) {
    let Some(ctrl) = msix_ctrl_off(st) else {
        return;
    };
    let flags = st.hw.config_read(ctrl, 2) as u16;
    let masked_on = flags | MSIX_FLAGS_ENABLE | MSIX_FLAGS_MASKALL;
    st.hw.config_write(ctrl, 2, u32::from(masked_on));
    st.msi = MsiState {
        enabled: true,
        ..MsiState::default()
    };
    for vector in 0..count {
        allocate(st, vector as u16);
    }
    pci_intx(&mut st.hw, false);
    let size = st.hw.msix().map_or(0, |m| m.table_size);
    for vector in 0..size {
        st.hw.msix_write(vector, VECTOR_CTRL, VECTOR_CTRL_MASKBIT);
    }
    let on = (flags | MSIX_FLAGS_ENABLE) & !MSIX_FLAGS_MASKALL;
    st.hw.config_write(ctrl, 2, u32::from(on));
}

/// One more allocated vector (`msix_prepare_msi_desc`): Vector Control read from the device
/// into the cache, the message written.
fn allocate(st: &mut DeviceState, vector: u16) {
    let vc = st.hw.msix_read(vector, VECTOR_CTRL);
    let msg = message_for(vector);
    write_message(&mut st.hw, vector, msg);
    st.msi.vector_ctrl.push(vc);
    st.msi.messages.push(msg);
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

/// `pci_msix_shutdown`: every allocated vector masked from the cache, MSI-X disabled, INTx
/// enabled again; the kernel's vectors forgotten.
fn msix_shutdown(st: &mut DeviceState) {
    let Some(ctrl) = msix_ctrl_off(st).filter(|_| st.msi.enabled) else {
        return;
    };
    for vector in 0..st.msi.vector_ctrl.len() as u16 {
        write_cached(st, vector, true);
    }
    let flags = st.hw.config_read(ctrl, 2) as u16;
    let off = flags & !MSIX_FLAGS_ENABLE;
    st.hw.config_write(ctrl, 2, u32::from(off));
    pci_intx(&mut st.hw, true);
    st.msi = MsiState::default();
}

/// `msi_capability_init` reduced to what the device sees: Enable with the vectors as Multiple
/// Message Enable, INTx disabled (the model keeps no MSI message state).
fn msi_capability_init(st: &mut DeviceState, count: u32) {
    let Some(at) = msi_cap(&st.hw) else {
        return;
    };
    let flags = st.hw.config_read(at + 2, 2) as u16;
    let mme = (count.next_power_of_two().trailing_zeros() as u16 & 0x7) << 4;
    st.hw.config_write(
        at + 2,
        2,
        u32::from((flags & !0x70) | mme | MSI_FLAGS_ENABLE),
    );
    pci_intx(&mut st.hw, false);
}

fn msi_shutdown(st: &mut DeviceState) {
    let Some(at) = msi_cap(&st.hw) else {
        return;
    };
    let flags = st.hw.config_read(at + 2, 2) as u16;
    st.hw
        .config_write(at + 2, 2, u32::from(flags & !MSI_FLAGS_ENABLE));
    pci_intx(&mut st.hw, true);
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

fn msi_cap(hw: &hw::Function) -> Option<u16> {
    tph_regs::caps::walk_caps(hw.config_bytes())
        .caps
        .iter()
        .find(|c| c.id == CAP_ID_MSI)
        .map(|c| c.offset)
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
