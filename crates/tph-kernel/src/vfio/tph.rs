//! `VFIO_DEVICE_PCI_TPH`: decoding the argument from caller memory and running each op
//! (`vfio-tph-v7.md` section 2). Called with the device lock held.
//!
//! The validation and programming steps both kernel revisions share (count limits, the DS
//! gate, per-entry checks, tag resolution, all-or-nothing writes) are `pub(super)` here and
//! used by `feature.rs` too.

use tph_acpi::MemType;
use tph_regs::tph::{StLocation, StMode, TphCapability, TPH_CAP};

use super::abi::{self, TphEntry as Entry};
use super::memory::UserMemory;
use super::DeviceState;
use crate::core::Platform;
use crate::host::DevicePlatform;
use crate::Errno;

pub(super) fn read_bytes<const N: usize>(
    mem: &dyn UserMemory,
    addr: u64,
) -> Result<[u8; N], Errno> {
    let mut b = [0u8; N];
    mem.read(addr, &mut b).map_err(|_| Errno::EFAULT)?;
    Ok(b)
}

pub(super) fn at(arg: u64, off: u64) -> Result<u64, Errno> {
    arg.checked_add(off).ok_or(Errno::EFAULT)
}

/// The whole ioctl: common steps 1-4, then the op.
pub(super) fn ioctl(
    st: &mut DeviceState,
    plat: &DevicePlatform<'_>,
    arg: u64,
    mem: &mut dyn UserMemory,
) -> Result<i32, Errno> {
    // Common step 1: the 8-byte head; argsz < 16 is EINVAL.
    let [a0, a1, a2, a3, o0, o1, o2, o3] = read_bytes::<8>(mem, arg)?;
    let (argsz, op) = (
        u32::from_le_bytes([a0, a1, a2, a3]),
        u32::from_le_bytes([o0, o1, o2, o3]),
    );
    if (argsz as usize) < abi::OP_HEADER_SIZE {
        return Err(Errno::EINVAL);
    }
    // Step 2: unknown op.
    if op > abi::OP_SET_ST {
        return Err(Errno::EOPNOTSUPP);
    }
    // Step 3: no capability or pci=notph.
    if st.tph.cap() == 0 || plat.notph() {
        return Err(Errno::ENODEV);
    }
    let payload: [u8; 8] = read_bytes(mem, at(arg, abi::PAYLOAD_OFFSET)?)?;
    let req = Request {
        arg,
        argsz,
        payload,
    };
    match op {
        abi::OP_GET_CAP => get_cap(st, plat, &req, mem),
        abi::OP_ENABLE => enable(st, plat, &req),
        abi::OP_DISABLE => {
            st.tph.disable(&mut st.hw);
            Ok(0)
        }
        abi::OP_GET_ST => get_st(st, plat, &req, mem),
        _ => set_st(st, plat, &req, mem),
    }
}

struct Request {
    arg: u64,
    argsz: u32,
    payload: [u8; 8],
}

/// The unsafe module parameter: v7's `enable_unsafe_tph_ds_mode` gates DS mode; the feature
/// revision's `enable_unsafe_tph` gates the whole feature.
pub(super) fn unsafe_gate(plat: &DevicePlatform<'_>) -> bool {
    plat.host.options.unsafe_ds
}

/// GET_CAP: IV iff advertised; DS only with the unsafe module parameter; `st_table_sz` =
/// field + 1 for a table in the capability or MSI-X, else 0 [decision].
fn get_cap(
    st: &mut DeviceState,
    plat: &DevicePlatform<'_>,
    req: &Request,
    mem: &mut dyn UserMemory,
) -> Result<i32, Errno> {
    let modes = st.tph.get_st_modes(&mut st.hw);
    let mut supported = 0u8;
    if modes & (1 << StMode::InterruptVector.field()) != 0 {
        supported |= abi::MODE_IV;
    }
    if modes & (1 << StMode::DeviceSpecific.field()) != 0 && unsafe_gate(plat) {
        supported |= abi::MODE_DS;
    }
    let size = st_table_sz(st);
    let mut out = [0u8; 8];
    out[0] = supported;
    out[2..4].copy_from_slice(&size.to_le_bytes());
    let room = (req.argsz as usize - abi::OP_HEADER_SIZE / 2).min(out.len());
    let out = out.get(..room).unwrap_or(&out);
    mem.write(at(req.arg, abi::PAYLOAD_OFFSET)?, out)
        .map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

/// ST Table Size field + 1 when the table is in the capability or the MSI-X table, else 0.
pub(super) fn st_table_sz(st: &mut DeviceState) -> u16 {
    let loc = st.tph.get_st_table_loc(&mut st.hw);
    if !matches!(loc, StLocation::Capability | StLocation::MsiX) {
        return 0;
    }
    TphCapability::from_bits(st.hw.config_read(st.tph.cap() + TPH_CAP as u16, 4)).table_size
}

/// ENABLE: reserved zero, exactly one mode bit, DS gate (EOPNOTSUPP [decision]), then the core.
fn enable(st: &mut DeviceState, plat: &DevicePlatform<'_>, req: &Request) -> Result<i32, Errno> {
    let [mode, reserved @ ..] = req.payload;
    if reserved.iter().any(|b| *b != 0) {
        return Err(Errno::EINVAL);
    }
    let hw_mode = match mode {
        abi::MODE_IV => StMode::InterruptVector,
        abi::MODE_DS if unsafe_gate(plat) => StMode::DeviceSpecific,
        abi::MODE_DS => return Err(Errno::EOPNOTSUPP),
        _ => return Err(Errno::EINVAL),
    };
    st.tph.enable(&mut st.hw, plat, hw_mode)?;
    Ok(0)
}

/// Reads `count` (1..=2048, with argsz room for it) entries after checking the reserved word.
fn st_payload_count(req: &Request) -> Result<u32, Errno> {
    let [c0, c1, c2, c3, r0, r1, r2, r3] = req.payload;
    if u32::from_le_bytes([r0, r1, r2, r3]) != 0 {
        return Err(Errno::EINVAL);
    }
    Ok(u32::from_le_bytes([c0, c1, c2, c3]))
}

/// `count` is 1..=2048 and `argsz` has room for `head` bytes plus `count` elements of
/// `elem` bytes, else EINVAL; the length of the element array.
pub(super) fn check_count(
    count: u32,
    argsz: u32,
    head: usize,
    elem: usize,
) -> Result<usize, Errno> {
    if count == 0 || count as usize > abi::MAX_ENTRIES {
        return Err(Errno::EINVAL);
    }
    let len = elem * count as usize;
    if (argsz as usize) < head + len {
        return Err(Errno::EINVAL);
    }
    Ok(len)
}

/// Reads the raw entry array (`count` 1..=2048 entries, with `argsz` room for them).
fn read_entries(req: &Request, count: u32, mem: &dyn UserMemory) -> Result<Vec<u8>, Errno> {
    let len = check_count(count, req.argsz, abi::OP_HEADER_SIZE, abi::ENTRY_SIZE)?;
    let mut raw = vec![0u8; len];
    mem.read(at(req.arg, abi::ENTS_OFFSET)?, &mut raw)
        .map_err(|_| Errno::EFAULT)?;
    Ok(raw)
}

fn entries(raw: &[u8]) -> impl Iterator<Item = Entry> + '_ {
    raw.as_chunks::<{ abi::ENTRY_SIZE }>()
        .0
        .iter()
        .map(Entry::from_array)
}

pub(super) fn mem_type(v: u8) -> Result<MemType, Errno> {
    match v {
        0 => Ok(MemType::Volatile),
        1 => Ok(MemType::Persistent),
        _ => Err(Errno::EINVAL),
    }
}

fn present(plat: &DevicePlatform<'_>, cpu: u32) -> bool {
    cpu < plat.host.options.cpus
}

/// GET_ST: DS gate, DS mode enabled, count/argsz, every entry validated, every tag resolved,
/// and only then the `st` fields written back.
fn get_st(
    st: &mut DeviceState,
    plat: &DevicePlatform<'_>,
    req: &Request,
    mem: &mut dyn UserMemory,
) -> Result<i32, Errno> {
    let count = st_payload_count(req)?;
    if !unsafe_gate(plat) {
        return Err(Errno::EOPNOTSUPP);
    }
    if !st.tph.enabled() || st.tph.mode() != StMode::DeviceSpecific {
        return Err(Errno::EINVAL);
    }
    let mut raw = read_entries(req, count, mem)?;
    // One pass: each entry is validated, then its tag resolved straight into the local copy.
    // An invalid entry anywhere (EINVAL) outranks a resolution failure seen earlier, exactly as
    // if every entry had been validated first; user memory is written once, at the end, and
    // only when every entry was valid and every tag resolved.
    let mut resolve_err = None;
    for out in raw.as_chunks_mut::<{ abi::ENTRY_SIZE }>().0 {
        let e = Entry::from_array(out);
        let mem_type = validate_get_entry(plat, &e)?;
        if resolve_err.is_some() {
            continue;
        }
        match st.tph.get_cpu_st(plat, mem_type, e.cpu) {
            Ok(tag) => put_st(out, tag),
            Err(err) => resolve_err = Some(err),
        }
    }
    if let Some(err) = resolve_err {
        return Err(err);
    }
    // One copy back of the entry array: only the `st` fields differ from what was read, and
    // nothing is written unless every tag resolved.
    mem.write(at(req.arg, abi::ENTS_OFFSET)?, &raw)
        .map_err(|_| Errno::EFAULT)?;
    Ok(0)
}

/// One GET_ST entry: reserved fields, `index` and `st` zero, a present CPU, memory type 0 or 1
/// (all EINVAL); the memory type it asks for.
fn validate_get_entry(plat: &DevicePlatform<'_>, e: &Entry) -> Result<MemType, Errno> {
    let reserved = e.reserved0 != 0 || e.reserved1 != 0 || e.index != 0 || e.st != 0;
    if reserved || !present(plat, e.cpu) {
        return Err(Errno::EINVAL);
    }
    mem_type(e.mem_type)
}

/// Writes `tag` into the `st` field of one raw entry.
fn put_st(entry: &mut [u8], tag: u16) {
    if let Some(field) = entry.get_mut(abi::ENTRY_ST_OFFSET as usize..abi::ENTRY_SIZE - 2) {
        field.copy_from_slice(&tag.to_le_bytes());
    }
}

/// Validates every (CPU, memory type) query (present CPU, type 0 or 1: EINVAL), then resolves
/// every tag through the core; nothing is returned unless all resolved.
pub(super) fn resolve_tags(
    st: &DeviceState,
    plat: &DevicePlatform<'_>,
    queries: &[(u32, u8)],
) -> Result<Vec<u16>, Errno> {
    for (cpu, mem) in queries {
        if !present(plat, *cpu) {
            return Err(Errno::EINVAL);
        }
        mem_type(*mem)?;
    }
    queries
        .iter()
        .map(|(cpu, mem)| st.tph.get_cpu_st(plat, mem_type(*mem)?, *cpu))
        .collect()
}

/// SET_ST: enabled, table located, count/argsz, every entry validated and every tag resolved
/// before the first hardware write [decision]; all or nothing with rollback to ST 0.
fn set_st(
    st: &mut DeviceState,
    plat: &DevicePlatform<'_>,
    req: &Request,
    mem: &mut dyn UserMemory,
) -> Result<i32, Errno> {
    let count = st_payload_count(req)?;
    let msix = set_preconditions(st)?;
    let entries: Vec<Entry> = entries(&read_entries(req, count, mem)?).collect();
    program(st, plat, &entries, msix)
}

/// SET's state checks: TPH enabled (EINVAL [core]), a table in the capability or the MSI-X
/// table (ENODEV [decision]). Whether the table is in MSI-X.
pub(super) fn set_preconditions(st: &mut DeviceState) -> Result<bool, Errno> {
    if !st.tph.enabled() {
        return Err(Errno::EINVAL);
    }
    match st.tph.get_st_table_loc(&mut st.hw) {
        StLocation::Capability => Ok(false),
        StLocation::MsiX => Ok(true),
        // No table, a reserved location, or one this model does not know.
        _ => Err(Errno::ENODEV),
    }
}

/// Validates every entry, resolves every tag, and only then writes them all or nothing.
pub(super) fn program(
    st: &mut DeviceState,
    plat: &DevicePlatform<'_>,
    entries: &[Entry],
    msix: bool,
) -> Result<i32, Errno> {
    let size = st_table_sz(st);
    for e in entries {
        validate_set_entry(st, plat, e, size, msix)?;
    }
    let writes = entries
        .iter()
        .map(|e| resolve_set_tag(st, plat, e).map(|tag| (e.index, tag)))
        .collect::<Result<Vec<(u16, u16)>, Errno>>()?;
    write_all_or_nothing(st, &writes)
}

fn validate_set_entry(
    st: &DeviceState,
    plat: &DevicePlatform<'_>,
    e: &Entry,
    size: u16,
    msix: bool,
) -> Result<(), Errno> {
    if e.index >= size || e.reserved0 != 0 || e.reserved1 != 0 || e.st != 0 {
        return Err(Errno::EINVAL);
    }
    if e.cpu != abi::CPU_CLEAR && !present(plat, e.cpu) {
        return Err(Errno::EINVAL);
    }
    mem_type(e.mem_type)?;
    let vector_ready = st.msi.enabled && usize::from(e.index) < st.msi.vector_ctrl.len();
    if msix && !vector_ready {
        return Err(Errno::ENXIO);
    }
    Ok(())
}

fn resolve_set_tag(st: &DeviceState, plat: &DevicePlatform<'_>, e: &Entry) -> Result<u16, Errno> {
    if e.cpu == abi::CPU_CLEAR {
        return Ok(0);
    }
    st.tph.get_cpu_st(plat, mem_type(e.mem_type)?, e.cpu)
}

/// Writes each entry through the core; on a failure every entry this call touched (the
/// failing one included) is written back to ST 0, with TPH already off (the core disabled it).
fn write_all_or_nothing(st: &mut DeviceState, writes: &[(u16, u16)]) -> Result<i32, Errno> {
    for (n, (index, tag)) in writes.iter().enumerate() {
        if let Err(e) = st.tph.set_st_entry(&mut st.hw, &mut st.msi, *index, *tag) {
            for (index, _) in writes.iter().take(n + 1) {
                // Best effort: a rollback write that fails too leaves that entry as it is.
                let _ = st.tph.write_tag(&mut st.hw, &mut st.msi, *index, 0);
            }
            return Err(e);
        }
    }
    Ok(0)
}
