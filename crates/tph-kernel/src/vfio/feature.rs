//! The feature revision (`later-revisions.md`): `VFIO_DEVICE_FEATURE` with
//! `VFIO_DEVICE_FEATURE_TPH_ST`, and the virtualised TPH capability in the config region (reads
//! of the capability, writes of TPH Control that enable and disable TPH through the core).
//! Called with the device lock held. Every choice the spec leaves open is a [decision] listed in
//! `docs/decisions.md`, "Feature revision (kernel model)".

use tph_regs::caps::{walk_ext_caps, EXT_CAP_ID_TPH};
use tph_regs::tph::{StMode, TphControl, TPH_CTRL};

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
    let [a0, a1, a2, a3, f0, f1, f2, f3] = read_bytes::<{ abi::FEATURE_HEAD_SIZE }>(mem, arg)?;
    let (argsz, flags) = (
        u32::from_le_bytes([a0, a1, a2, a3]),
        u32::from_le_bytes([f0, f1, f2, f3]),
    );
    if (argsz as usize) < abi::FEATURE_HEAD_SIZE || flags & !KNOWN_FLAGS != 0 {
        return Err(Errno::EINVAL);
    }
    let dirs = flags & (abi::FEATURE_GET | abi::FEATURE_SET);
    let probe = flags & abi::FEATURE_PROBE != 0;
    if !probe && dirs == abi::FEATURE_GET | abi::FEATURE_SET {
        return Err(Errno::EINVAL);
    }
    if flags & abi::FEATURE_MASK != abi::FEATURE_TPH_ST || !available(st, plat) {
        return Err(Errno::ENOTTY);
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

/// TPH_ST exists on this device: a (visible) TPH capability, no `pci=notph`, and the
/// `enable_unsafe_tph` parameter on ("This feature is gated by enable_unsafe_tph": the whole
/// feature, GET and SET alike). Where it does not, the answer is ENOTTY before any direction
/// check, mainline's answer for a feature a device or host lacks (`later-revisions.md`).
fn available(st: &DeviceState, plat: &DevicePlatform<'_>) -> bool {
    st.tph.cap() != 0 && !plat.notph() && tph::unsafe_gate(plat)
}

/// The payload head: (memory type, index, count) after `argsz` room for `count` words and the
/// reserved flag bits (EINVAL) are checked.
fn payload(arg: u64, argsz: u32, mem: &dyn UserMemory) -> Result<(u8, u16, u32), Errno> {
    if (argsz as usize) < abi::FEATURE_HEAD_SIZE + abi::TPH_ST_HEAD_SIZE {
        return Err(Errno::EINVAL);
    }
    let [f0, f1, f2, f3, i0, i1, c0, c1] =
        read_bytes::<{ abi::TPH_ST_HEAD_SIZE }>(mem, at(arg, 8)?)?;
    let st_flags = u32::from_le_bytes([f0, f1, f2, f3]);
    if st_flags & !abi::TPH_ST_FLAG_MEM_TYPE != 0 {
        return Err(Errno::EINVAL);
    }
    let (index, count) = (u16::from_le_bytes([i0, i1]), u16::from_le_bytes([c0, c1]));
    let head = abi::TPH_ST_DATA_OFFSET as usize;
    tph::check_count(u32::from(count), argsz, head, 4)?;
    Ok((st_flags as u8, index, u32::from(count)))
}

fn read_data(arg: u64, count: u32, mem: &dyn UserMemory) -> Result<Vec<u32>, Errno> {
    let mut raw = vec![0u8; 4 * count as usize];
    mem.read(at(arg, abi::TPH_ST_DATA_OFFSET)?, &mut raw)
        .map_err(|_| Errno::EFAULT)?;
    let (words, _) = raw.as_chunks::<4>();
    Ok(words.iter().map(|w| u32::from_le_bytes(*w)).collect())
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
    if !st.tph.enabled() || st.tph.mode() != StMode::DeviceSpecific {
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

/// The dword at `base` (4-aligned) as userspace reads it through the config region: hardware
/// (Control reads back what the kernel programmed), except that with `pci=notph` the TPH
/// capability is unlinked from the extended chain [decision, after v19's "Hide TPH capability
/// when TPH is unsupported"].
pub(super) fn virt_read(st: &mut DeviceState, plat: &DevicePlatform<'_>, base: u16) -> u32 {
    let value = st.hw.config_read(base, 4);
    if st.tph.cap() == 0 || !plat.notph() {
        return value;
    }
    hide_tph(st, base, value)
}

/// With the TPH capability hidden: the header of the capability before it points past it; a
/// TPH capability first in the chain keeps its place with ID and version 0 (so the walk goes
/// on), as vfio-pci hides a first extended capability.
fn hide_tph(st: &DeviceState, base: u16, value: u32) -> u32 {
    let chain = walk_ext_caps(st.hw.config_bytes()).caps;
    let Some(pos) = chain.iter().position(|c| c.id == EXT_CAP_ID_TPH) else {
        return value;
    };
    let Some(tph_at) = chain.get(pos).map(|c| c.offset) else {
        return value;
    };
    // The walk reports only headers inside configuration space, so the word is there; were it
    // not, nothing would be hidden.
    let Ok(header) = abi::le32(st.hw.config_bytes(), usize::from(tph_at)) else {
        return value;
    };
    let tph_next = header & 0xfff0_0000;
    match pos.checked_sub(1).and_then(|p| chain.get(p)) {
        None if base == tph_at => tph_next,
        Some(prev) if base == prev.offset => (value & 0x000f_ffff) | tph_next,
        _ => value,
    }
}

/// A config-region write of `data` at `offset` (bounds already checked). Only the ST Mode
/// Select byte of TPH Control (capability + 0x8) is acted on; a write that does not cover it,
/// and every other byte, is accepted and dropped [decision]. The written ST Mode Select value
/// goes to [`write_mode`]; its errno is the write's.
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
    let Some(mode) = ctrl
        .checked_sub(offset)
        .and_then(|i| usize::try_from(i).ok())
        .and_then(|i| data.get(i))
    else {
        return Ok(());
    };
    write_mode(st, plat, *mode)
}

/// A write of TPH Control as the author's userspace makes it (`later-revisions.md`, primary
/// evidence): ST Mode Select 0 disables through the core (a no-op when off); any other value
/// enables in that mode through the core, which negotiates the requester type as
/// `pcie_enable_tph` does and keeps its errno (EINVAL for a reserved mode or one the device
/// lacks, EBUSY when enabled, EINVAL without a completer or under `pci=notph`). Requester
/// Enable and reserved bits of the written value are ignored: the kernel owns them
/// [decision]. With `enable_unsafe_tph` off, enabling is refused with EOPNOTSUPP (v7's errno
/// for its gate) [decision].
fn write_mode(st: &mut DeviceState, plat: &DevicePlatform<'_>, written: u8) -> Result<(), Errno> {
    let mode = TphControl::from_bits(u32::from(written)).mode;
    if mode == StMode::NoSt {
        st.tph.disable(&mut st.hw);
        return Ok(());
    }
    if !tph::unsafe_gate(plat) {
        return Err(Errno::EOPNOTSUPP);
    }
    st.tph.enable(&mut st.hw, plat, mode)
}
