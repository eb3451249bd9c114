//! Mainline VFIO's device lifecycle (`vfio-tph-v7.md` section 3, "What mainline VFIO itself
//! does", [vfio]): the reset method a function has (`reset_works`), `pci_reset_function` with
//! the PCI core's save / Bus Master off / reset / restore, the reset at first open
//! (`vfio_pci_core_enable`) and at last close (`vfio_pci_core_disable`), and the points where
//! the posted kernel's locking lets another operation in.

use std::sync::PoisonError;

use tph_regs::caps::{DEVCTL_FLR, EXP_DEVCTL, PM_CTRL, PM_CTRL_STATE_MASK};
use tph_regs::header::{
    BRIDGE_CONTROL, BRIDGE_CTL_BUS_RESET, COMMAND, COMMAND_INTX_DISABLE, COMMAND_MASTER,
};

use super::{clear_tph, irqs, DeviceInner, DeviceState};
use crate::host::{Locking, RestoreOrder};
use crate::Errno;

/// How the function can be reset, in the order `pci_reset_fn_methods` tries them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResetMethod {
    /// Function Level Reset (Device Capabilities FLR bit).
    Flr,
    /// PM reset: D3hot to D0 with No_Soft_Reset clear.
    Pm,
    /// Secondary bus reset by the parent root port, the device alone on its bus.
    Bus,
}

/// A point inside an operation where the posted kernel's locks let another operation run
/// (a test hook runs there; see `VfioDevice::set_interleave_hook`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Interleave {
    /// `VFIO_DEVICE_RESET` after the reset was started and before state is restored (the
    /// 100 ms an FLR takes). As posted, reset holds `memory_lock` only, so the TPH ioctl
    /// (under `igate`) can run here: the race the v8 review found.
    ResetWait,
}

/// The first reset method the function has; `None`: `reset_works` is false.
pub(super) fn reset_method(inner: &DeviceInner, st: &DeviceState) -> Option<ResetMethod> {
    if st.hw.has_flr() {
        return Some(ResetMethod::Flr);
    }
    if st.hw.has_pm_reset() {
        return Some(ResetMethod::Pm);
    }
    inner.bus_reset_port.as_ref().map(|_| ResetMethod::Bus)
}

/// `vfio_pci_core_enable`: Bus Master cleared (`pci_clear_master`: "don't allow our initial
/// saved state to include busmaster"), `pci_try_reset_function` (when a method exists), the
/// state after it saved (`pci_store_saved_state`; the model keeps the Command register), INTx
/// masking probed (`pci_intx_mask_supported`: INTx Disable toggled and put back) and, when
/// supported, INTx Disable cleared; then the virtual config space starts from the hardware
/// (`vfio_config_init`: the virtual INTx Disable and Interrupt Line).
pub(super) fn first_open(inner: &DeviceInner, st: &mut DeviceState) {
    let command = read_command(st);
    if command & COMMAND_MASTER != 0 {
        write_command(st, command & !COMMAND_MASTER);
    }
    if let Some(method) = reset_method(inner, st) {
        let command = save_and_disable(st);
        start_reset(inner, st, method);
        restore(st, command, inner.host.options.restore_order);
    }
    st.open_state = Some(read_command(st));
    st.irqs.pci_2_3 = intx_mask_supported(st);
    let command = read_command(st);
    if st.irqs.pci_2_3 && command & COMMAND_INTX_DISABLE != 0 {
        write_command(st, command & !COMMAND_INTX_DISABLE);
    }
    st.irqs.virq_disabled = read_command(st) & COMMAND_INTX_DISABLE != 0;
    st.vconfig_line = st.hw.config_read(irqs::INTERRUPT_LINE, 4) as u8;
}

/// `pci_intx_mask_supported`: INTx Disable flipped; when it took (and nothing else changed),
/// it is put back and masking is supported.
fn intx_mask_supported(st: &mut DeviceState) -> bool {
    let orig = read_command(st);
    write_command(st, orig ^ COMMAND_INTX_DISABLE);
    let new = read_command(st);
    let supported = (new ^ orig) & !COMMAND_INTX_DISABLE == 0 && (new ^ orig) != 0;
    if supported {
        write_command(st, orig);
    }
    supported
}

/// `vfio_pci_core_disable`: TPH off [decision, v7 changelog], Bus Master cleared, every
/// interrupt released (`SET_IRQS` `DATA_NONE` count 0 on the enabled index, the ERR and REQ
/// triggers), Command = INTx disable, the function reset when it can be, then the open-time
/// state restored. TPH is no longer enabled, so its save/restore writes nothing and the ST
/// entries and MSI-X tags are what the reset left (as at open).
pub(super) fn last_close(inner: &DeviceInner, st: &mut DeviceState) {
    clear_tph(st);
    let command = read_command(st);
    if command & COMMAND_MASTER != 0 {
        write_command(st, command & !COMMAND_MASTER);
    }
    irqs::release_all(st);
    write_command(st, COMMAND_INTX_DISABLE);
    if let Some(method) = reset_method(inner, st) {
        start_reset(inner, st, method);
    }
    if let Some(command) = st.open_state.take() {
        write_command(st, command);
    }
}

/// `VFIO_DEVICE_RESET`. As posted, reset holds `memory_lock` and not `igate`, and the
/// model's device lock is dropped while the reset completes ([`Interleave::ResetWait`]).
pub(super) fn reset(inner: &DeviceInner) -> Result<(), Errno> {
    let order = inner.host.options.restore_order;
    let _memory = (inner.locking() == Locking::AsPosted).then(|| {
        inner
            .memory_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    });
    let mut st = inner.lock();
    let method = reset_method(inner, &st).ok_or(Errno::EINVAL)?;
    let command = save_and_disable(&mut st);
    start_reset(inner, &mut st, method);
    if inner.locking() == Locking::AsPosted {
        drop(st);
        inner.interleave(Interleave::ResetWait);
        st = inner.lock();
    } else {
        inner.interleave(Interleave::ResetWait);
    }
    restore(&mut st, command, order);
    Ok(())
}

/// `pci_dev_save_and_disable`: the core saves TPH (when it enabled it), then Command is
/// written with Bus Master off. Returns the saved Command.
fn save_and_disable(st: &mut DeviceState) -> u16 {
    st.tph.save(&mut st.hw);
    let command = read_command(st);
    write_command(st, COMMAND_INTX_DISABLE);
    command
}

/// `pci_restore_state` in the host's order. Mainline: TPH (Control first, then the entries)
/// before the config header, so Bus Master is still off while TPH is restored; MSI-X last.
fn restore(st: &mut DeviceState, command: u16, order: RestoreOrder) {
    match order {
        RestoreOrder::Mainline => {
            st.tph.restore_mainline(&mut st.hw);
            write_command(st, command);
            irqs::restore(st);
        }
        RestoreOrder::TableBeforeEnable => {
            st.tph.restore_table(&mut st.hw);
            write_command(st, command);
            irqs::restore(st);
            st.tph.restore_enable(&mut st.hw);
        }
    }
}

/// Starts (and, in the model, completes) the reset with `method`.
fn start_reset(inner: &DeviceInner, st: &mut DeviceState, method: ResetMethod) {
    match method {
        ResetMethod::Flr => flr(st),
        ResetMethod::Pm => pm_reset(st),
        ResetMethod::Bus => bus_reset(inner, st),
    }
}

/// `pcie_flr`: Initiate FLR in Device Control.
fn flr(st: &mut DeviceState) {
    let Some(at) = st.hw.express().map(|e| e + EXP_DEVCTL as u16) else {
        return;
    };
    let devctl = st.hw.config_read(at, 2);
    st.hw.config_write(at, 2, devctl | DEVCTL_FLR);
    st.hw.config_write(at, 2, devctl);
}

/// `pci_pm_reset`: PMCSR to D3hot, then back to D0.
fn pm_reset(st: &mut DeviceState) {
    let Some(at) = st.hw.pm().map(|p| p + PM_CTRL as u16) else {
        return;
    };
    let pmcsr = st.hw.config_read(at, 4) & !PM_CTRL_STATE_MASK;
    st.hw.config_write(at, 4, pmcsr | PM_CTRL_STATE_MASK);
    st.hw.config_write(at, 4, pmcsr);
}

/// `pci_parent_bus_reset`: the root port's Secondary Bus Reset set and cleared; the link
/// reset returns the device to its reset state.
fn bus_reset(inner: &DeviceInner, st: &mut DeviceState) {
    let Some(port) = inner.bus_reset_port.as_ref() else {
        return;
    };
    {
        let mut port = port.lock().unwrap_or_else(PoisonError::into_inner);
        let at = BRIDGE_CONTROL as u16;
        let ctl = port.config_read(at, 2);
        port.config_write(at, 2, ctl | u32::from(BRIDGE_CTL_BUS_RESET));
        port.config_write(at, 2, ctl);
    }
    st.hw.secondary_bus_reset();
}

fn read_command(st: &mut DeviceState) -> u16 {
    st.hw.config_read(COMMAND as u16, 2) as u16
}

fn write_command(st: &mut DeviceState, command: u16) {
    st.hw.config_write(COMMAND as u16, 2, u32::from(command));
}
