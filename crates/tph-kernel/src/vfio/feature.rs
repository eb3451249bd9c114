//! The feature revision (`later-revisions.md`): `VFIO_DEVICE_FEATURE` with
//! `VFIO_DEVICE_FEATURE_TPH_ST`, and the virtualised TPH capability in the config region (reads
//! of the capability, writes of TPH Control that enable and disable TPH through the core).
//! Called with the device lock held. Every choice the spec leaves open is a [decision] listed in
//! `docs/decisions.md`, "Feature revision (kernel model)".

use tph_regs::caps::{walk_ext_caps, EXT_CAP_ID_TPH};
use tph_regs::tph::{ReqEnable, StMode, TphCapability, TphControl, TPH_CAP, TPH_CTRL};

use super::abi::{self, TphEntry as Entry};
use super::memory::UserMemory;
use super::tph::{self, at, read_bytes};
use super::DeviceState;
use crate::core::Platform;
use crate::host::DevicePlatform;
use crate::Errno;

/// Every flag bit the ioctl knows: the feature number and the three directions.
const KNOWN_FLAGS: u32 =
    abi::FEATURE_MASK | abi::FEATURE_GET | abi::FEATURE_SET | abi::FEATURE_PROBE;

/// `VFIO_DEVICE_FEATURE`: the generic checks, then TPH_ST's PROBE / GET / SET.
pub(super) fn ioctl(
    st: &mut DeviceState,
    plat: &DevicePlatform<'_>,
    arg: u64,
    mem: &mut dyn UserMemory,
) -> Result<i32, Errno> {
    let head: [u8; abi::FEATURE_HEAD_SIZE] = read_bytes(mem, arg)?;
    let (argsz, flags) = (abi::le32(&head, 0), abi::le32(&head, 4));
    if (argsz as usize) < abi::FEATURE_HEAD_SIZE || flags & !KNOWN_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let dirs = flags & (abi::FEATURE_GET | abi::FEATURE_SET);
    let probe = flags & abi::FEATURE_PROBE != 0;
    if !probe && dirs == abi::FEATURE_GET | abi::FEATURE_SET {
        return Err(Errno::EINVAL);
    }
    if flags & abi::FEATURE_MASK != abi::FEATURE_TPH_ST {
        return Err(Errno::ENOTTY);
    }
    if dirs & !supported_directions(st, plat) != 0 {
        return Err(Errno::EINVAL);
    }
    if probe {
        return Ok(0);
    }
    match dirs {
        abi::FEATURE_GET => get(st, plat, arg, argsz, mem),
        abi::FEATURE_SET => set(st, plat, arg, argsz, mem),
        _ => Err(Errno::EINVAL),
    }
}

/// The directions TPH_ST supports on this device: none without a (visible) TPH capability or
/// with `pci=notph`; SET with one; GET also when the DS-mode parameter is on.
fn supported_directions(st: &DeviceState, plat: &DevicePlatform<'_>) -> u32 {
    if st.tph.cap() == 0 || plat.notph() {
        return 0;
    }
    if tph::ds_gate(plat) {
        abi::FEATURE_GET | abi::FEATURE_SET
    } else {
        abi::FEATURE_SET
    }
}

/// The payload head: (memory type, index, count) after `argsz` room for `count` words and the
/// reserved flag bits (EINVAL) are checked.
fn payload(arg: u64, argsz: u32, mem: &dyn UserMemory) -> Result<(u8, u16, u32), Errno> {
    if (argsz as usize) < abi::FEATURE_HEAD_SIZE + abi::TPH_ST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    let p: [u8; abi::TPH_ST_HEAD_SIZE] = read_bytes(mem, at(arg, 8)?)?;
    let st_flags = abi::le32(&p, 0);
    if st_flags & !abi::TPH_ST_FLAG_MEM_TYPE != 0 {
        return Err(Errno::EINVAL);
    }
    let [_, _, _, _, i0, i1, c0, c1] = p;
    let (index, count) = (u16::from_le_bytes([i0, i1]), u16::from_le_bytes([c0, c1]));
    let head = abi::TPH_ST_DATA_OFFSET as usize;
    tph::check_count(u32::from(count), argsz, head, 4)?;
    Ok((st_flags as u8, index, u32::from(count)))
}

fn read_data(arg: u64, count: u32, mem: &dyn UserMemory) -> Result<Vec<u32>, Errno> {
    let mut raw = vec![0u8; 4 * count as usize];
    mem.read(at(arg, abi::TPH_ST_DATA_OFFSET)?, &mut raw)
        .map_err(|_| Errno::EFAULT)?;
    Ok(raw.chunks_exact(4).map(|w| abi::le32(w, 0)).collect())
}

/// GET: DS mode enabled (EINVAL), `index` 0 (unused, EINVAL), count/argsz, every CPU present,
/// every tag resolved, then all tags written over the CPU ids in one copy.
fn get(
    st: &mut DeviceState,
    plat: &DevicePlatform<'_>,
    arg: u64,
    argsz: u32,
    mem: &mut dyn UserMemory,
) -> Result<i32, Errno> {
    if !st.tph.enabled() || StMode::from_field(st.tph.mode()) != StMode::DeviceSpecific {
        return Err(Errno::EINVAL);
    }
    let (mem_type, index, count) = payload(arg, argsz, mem)?;
    if index != 0 {
        return Err(Errno::EINVAL);
    }
    let queries: Vec<(u32, u8)> = read_data(arg, count, mem)?
        .into_iter()
        .map(|cpu| (cpu, mem_type))
        .collect();
    let tags = tph::resolve_tags(st, plat, &queries)?;
    let out: Vec<u8> = tags
        .iter()
        .flat_map(|t| u32::from(*t).to_le_bytes())
        .collect();
    mem.write(at(arg, abi::TPH_ST_DATA_OFFSET)?, &out)
        .map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

/// SET: TPH enabled, a table, count/argsz, `index + count` within the table, then the shared
/// all-or-nothing programming of entries `index..index + count`.
fn set(
    st: &mut DeviceState,
    plat: &DevicePlatform<'_>,
    arg: u64,
    argsz: u32,
    mem: &mut dyn UserMemory,
) -> Result<i32, Errno> {
    let msix = tph::set_preconditions(st)?;
    let (mem_type, index, count) = payload(arg, argsz, mem)?;
    let cpus = read_data(arg, count, mem)?;
    let entries = (u32::from(index)..)
        .zip(cpus)
        .map(|(i, cpu)| {
            let index = u16::try_from(i).map_err(|_| Errno::EINVAL)?;
            Ok(Entry::new(cpu, mem_type, index))
        })
        .collect::<Result<Vec<Entry>, Errno>>()?;
    tph::program(st, plat, &entries, msix)
}

// ---- The config region: the virtualised TPH capability ----

/// The dword at `base` (4-aligned) as userspace reads it through the config region: hardware,
/// except that with `pci=notph` the TPH capability is unlinked from the extended chain, and
/// that the DS-mode bit of the Capability register reads 0 while the DS parameter is off.
pub(super) fn virt_read(st: &mut DeviceState, plat: &DevicePlatform<'_>, base: u16) -> u32 {
    let value = st.hw.config_read(base, 4);
    let cap = st.tph.cap();
    if cap == 0 {
        return value;
    }
    if plat.notph() {
        return hide_tph(st, base, value);
    }
    if base == cap + TPH_CAP as u16 && !tph::ds_gate(plat) {
        let cap = TphCapability {
            ds: false,
            ..TphCapability::from_bits(value)
        };
        return cap.to_bits();
    }
    value
}

/// With the TPH capability hidden: the header of the capability before it points past it; a
/// TPH capability first in the chain keeps its place with ID and version 0 (so the walk goes
/// on), as vfio-pci hides a first extended capability.
fn hide_tph(st: &DeviceState, base: u16, value: u32) -> u32 {
    let chain = walk_ext_caps(st.hw.config_bytes()).caps;
    let Some(pos) = chain.iter().position(|c| c.id == EXT_CAP_ID_TPH) else {
        return value;
    };
    let tph_at = chain.get(pos).map_or(0, |c| c.offset);
    let tph_next = abi::le32(st.hw.config_bytes(), usize::from(tph_at)) & 0xfff0_0000;
    match pos.checked_sub(1).and_then(|p| chain.get(p)) {
        None if base == tph_at => tph_next,
        Some(prev) if base == prev.offset => (value & 0x000f_ffff) | tph_next,
        _ => value,
    }
}

/// A config-region write of `data` at `offset` (bounds already checked). Only TPH Control is
/// writable; every other byte is accepted and dropped. Control is merged byte-wise with its
/// current value and handed to [`write_control`]; its errno is the write's.
pub(super) fn config_write(
    st: &mut DeviceState,
    plat: &DevicePlatform<'_>,
    offset: u64,
    data: &[u8],
) -> Result<(), Errno> {
    let cap = st.tph.cap();
    if cap == 0 {
        return Ok(());
    }
    let ctrl = u64::from(cap) + TPH_CTRL as u64;
    let mut value = st.hw.peek_tph_control().unwrap_or(0).to_le_bytes();
    let mut touched = false;
    for (addr, b) in (offset..).zip(data) {
        if let Some(slot) = addr
            .checked_sub(ctrl)
            .and_then(|i| value.get_mut(i as usize))
        {
            *slot = *b;
            touched = true;
        }
    }
    if !touched {
        return Ok(());
    }
    write_control(st, plat, u32::from_le_bytes(value))
}

/// A write of TPH Control: Requester Enable 0 disables through the core (and stores the mode
/// field; a reserved mode is refused with EINVAL, DS without the DS parameter with EOPNOTSUPP,
/// neither written to hardware); otherwise enable through the core with mode bits 2:0, DS only
/// with the DS parameter (EOPNOTSUPP), reserved Requester Enable 2 refused (EINVAL), and a
/// requested type below what the core negotiates refused (EINVAL). Rewriting the enabled value
/// is a no-op.
fn write_control(st: &mut DeviceState, plat: &DevicePlatform<'_>, value: u32) -> Result<(), Errno> {
    let ctrl = TphControl::from_bits(value);
    match ctrl.enable {
        ReqEnable::Disabled => store_disabled(st, plat, ctrl.mode),
        ReqEnable::Reserved => Err(Errno::EINVAL),
        _ if !ds_allowed(plat, ctrl.mode) => Err(Errno::EOPNOTSUPP),
        ReqEnable::Tph | ReqEnable::ExtTph => enable_from_control(st, plat, ctrl),
    }
}

/// The DS gate: DS mode only with the module parameter.
fn ds_allowed(plat: &DevicePlatform<'_>, mode: StMode) -> bool {
    mode != StMode::DeviceSpecific || tph::ds_gate(plat)
}

/// Requester Enable 0: disable through the core and store the mode. A reserved mode is EINVAL;
/// DS without the parameter (EOPNOTSUPP) and a mode the device lacks (EINVAL) are refused too,
/// because the core re-enables with a read-modify-write of Control, so a stored mode would go
/// live if a later enable write were lost. Nothing refused is stored.
fn store_disabled(
    st: &mut DeviceState,
    plat: &DevicePlatform<'_>,
    mode: StMode,
) -> Result<(), Errno> {
    if let StMode::Reserved(_) = mode {
        return Err(Errno::EINVAL);
    }
    if !ds_allowed(plat, mode) {
        return Err(Errno::EOPNOTSUPP);
    }
    let bits = mode.field();
    if bits != 0 && st.tph.get_st_modes(&mut st.hw) & (1 << bits) == 0 {
        return Err(Errno::EINVAL);
    }
    st.tph.disable(&mut st.hw);
    store_mode(st, u32::from(bits));
    Ok(())
}

/// Requester Enable 1 or 3: enable through the core, refusing a requested type below what it
/// negotiates; rewriting the enabled mode with an acceptable type is a no-op.
fn enable_from_control(
    st: &mut DeviceState,
    plat: &DevicePlatform<'_>,
    ctrl: TphControl,
) -> Result<(), Errno> {
    let (mode, req) = (ctrl.mode.field(), ctrl.enable.field());
    if st.tph.enabled() && st.tph.mode() == mode && req >= st.tph.req_type() {
        return Ok(());
    }
    st.tph
        .enable_requesting(&mut st.hw, plat, mode, |negotiated| {
            if req < negotiated {
                return Err(Errno::EINVAL);
            }
            Ok(())
        })
}

/// With requests disabled, the ST Mode Select field is plain read/write: a later write that
/// only sets Requester Enable enables in the mode stored here.
fn store_mode(st: &mut DeviceState, mode: u32) {
    let cap = st.tph.cap();
    if st.hw.peek_tph_control() != Some(mode) {
        st.hw.config_write(cap + TPH_CTRL as u16, 4, mode);
    }
}
