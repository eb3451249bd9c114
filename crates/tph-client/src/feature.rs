//! The feature-revision adapter (`later-revisions.md`): the same safe API over
//! `VFIO_DEVICE_FEATURE_TPH_ST` and a kernel-virtualised TPH Control register.
//!
//! This revision has no GET_CAP, ENABLE or DISABLE: capabilities are read from the TPH
//! capability in the config region, and TPH is enabled by writing the ST Mode Select value
//! *alone* to Control there (1 IV, 2 DS; the kernel chooses the requester type) and disabled
//! by writing 0, exactly as the series author's own userspace does. The feature number is
//! contested (four pending series claim 13): it lives in one place ([`Feature`], default
//! `tph_abi::FEATURE_TPH_ST`, overridable with `TphDevice::with_feature_number`) and is
//! confirmed with `VFIO_DEVICE_FEATURE_PROBE` before the first GET or SET that uses it. SET
//! programs *contiguous* entries from one index with one memory type, so a batch is sent as one
//! call per contiguous run. All or nothing, as in v7: a batch of several runs is first checked
//! whole as the kernel would check it (nothing is sent when that finds a refusal); if the kernel
//! still refuses a later run in validation (a CPU the firmware has no tag for, a vector the
//! client did not know was off), the runs already written get back what this handle last
//! programmed there (cleared where it never did). A failed hardware write is the exception:
//! the core turns TPH off and nothing can be written afterwards. Errno is explained as in v7, except ENOTTY (no
//! such feature here: the number, or `enable_unsafe_tph` off, which gates the whole feature)
//! and EOPNOTSUPP from a Control write (the same gate).

use tph_regs::tph::{ReqEnable, StLocation, StMode, TphControl, TphRequester, TPH_CTRL};

use crate::backend::Backend;
use std::collections::BTreeMap;

use crate::device::{Capabilities, Known, Mode, SET_VALIDATION};
use crate::error::{Errno, Error};
use crate::v7;
use tph_abi::{self as abi, TphEntry};

/// Size of the config space read to find the capability (a conventional function's config
/// region is 256 bytes: beyond it the kernel answers EFAULT, so the read is retried short).
const CONFIG_SIZE: usize = 4096;
/// Size of a conventional function's configuration space.
const CONFIG_SIZE_CONVENTIONAL: usize = 256;
/// `vfio_device_feature` head + `vfio_device_feature_tph_st` head.
const HEAD: usize = abi::TPH_ST_DATA_OFFSET as usize;

/// The `VFIO_DEVICE_FEATURE` number of TPH_ST this handle uses, and the directions PROBE has
/// confirmed for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Feature {
    /// The feature number (bits 15:0 of `flags`).
    pub number: u32,
    /// Directions (`FEATURE_GET` / `FEATURE_SET` bits) PROBE confirmed.
    pub confirmed: u32,
}

impl Default for Feature {
    fn default() -> Self {
        Self {
            number: abi::FEATURE_TPH_ST,
            confirmed: 0,
        }
    }
}

fn tph(b: &mut dyn Backend) -> Result<TphRequester, Error> {
    let mut cfg = vec![0u8; CONFIG_SIZE];
    let read = b.read_config(0, &mut cfg).or_else(|errno| {
        // EFAULT: a conventional function, whose config region ends at 256 bytes.
        cfg.truncate(CONFIG_SIZE_CONVENTIONAL);
        match errno.0 {
            libc::EFAULT => b.read_config(0, &mut cfg),
            _ => Err(errno),
        }
    });
    read.map_err(|errno| Error::Backend {
        op: "reading configuration space",
        errno,
    })?;
    match TphRequester::find(&cfg) {
        Some(Ok(t)) => Ok(t),
        _ => Err(Error::NoTph {
            errno: Errno::ENODEV,
        }),
    }
}

/// The modes the kernel lets this device use: none while PROBE says the feature is missing
/// (`enable_unsafe_tph` off gates all of TPH on this revision), else the capability's.
pub(crate) fn get_cap(b: &mut dyn Backend, feature: &mut Feature) -> Result<Capabilities, Error> {
    let t = tph(b)?;
    let table = matches!(t.cap.location, StLocation::Capability | StLocation::MsiX);
    let usable = confirm(b, feature, abi::FEATURE_SET).is_ok();
    Ok(Capabilities {
        iv: usable && t.cap.iv,
        ds: usable && t.cap.ds,
        st_table_size: if table { t.cap.table_size } else { 0 },
    })
}

/// PROBE for `direction` once per handle; ENOTTY (or EINVAL: a direction the device lacks)
/// means the feature is not there under this number.
fn confirm(b: &mut dyn Backend, feature: &mut Feature, direction: u32) -> Result<(), Error> {
    if feature.confirmed & direction == direction {
        return Ok(());
    }
    let flags = abi::FEATURE_PROBE | direction | (feature.number & abi::FEATURE_MASK);
    let argsz = abi::FEATURE_HEAD_SIZE as u32;
    let mut arg = [argsz.to_le_bytes(), flags.to_le_bytes()].concat();
    match b.device_feature(&mut arg) {
        Ok(_) => {
            feature.confirmed |= direction;
            Ok(())
        }
        Err(errno) => Err(Error::FeatureUnavailable {
            feature: feature.number,
            param: crate::probe::FEATURE_PARAM,
            errno,
        }),
    }
}

fn write_control(b: &mut dyn Backend, t: &TphRequester, value: u32) -> Result<u32, Errno> {
    let at = u64::from(t.offset) + TPH_CTRL as u64;
    b.write_config(at, &value.to_le_bytes())?;
    let mut back = [0u8; 4];
    b.read_config(at, &mut back)?;
    Ok(u32::from_le_bytes(back))
}

/// Enable as the author's userspace does: the ST Mode Select value alone; the kernel picks the
/// requester type, and what reads back is what it programmed.
pub(crate) fn enable(b: &mut dyn Backend, mode: Mode) -> Result<(), Error> {
    let t = tph(b)?;
    if t.control.enable != ReqEnable::Disabled {
        return Err(Error::AlreadyEnabled {
            errno: Errno(libc::EBUSY),
        });
    }
    let st_mode = match mode {
        Mode::Iv => StMode::InterruptVector,
        Mode::Ds => StMode::DeviceSpecific,
    };
    let got = write_control(b, &t, u32::from(st_mode.field()))
        .map(TphControl::from_bits)
        .map_err(|errno| explain_enable(mode, errno))?;
    if got.enable == ReqEnable::Disabled || got.mode != st_mode {
        return Err(Error::CannotEnable {
            mode,
            errno: Errno::EINVAL,
        });
    }
    Ok(())
}

/// EOPNOTSUPP from a Control write is the `enable_unsafe_tph` gate, for either mode; the rest
/// as v7's ENABLE.
fn explain_enable(mode: Mode, errno: Errno) -> Error {
    match errno.0 {
        libc::EOPNOTSUPP => Error::TphDisabled {
            errno,
            param: crate::probe::FEATURE_PARAM,
        },
        _ => v7::explain_enable("writing TPH Control", mode, errno),
    }
}

/// Disable as the author's userspace does: write 0.
pub(crate) fn disable(b: &mut dyn Backend) -> Result<(), Error> {
    let t = tph(b)?;
    write_control(b, &t, 0)
        .map(|_| ())
        .map_err(|errno| Error::Kernel {
            op: "writing TPH Control",
            errno,
        })
}

/// `VFIO_DEVICE_FEATURE` argument: GET or SET of `data` (CPU ids) from `index`.
fn encode(
    feature: &Feature,
    direction: u32,
    mem_type: u8,
    index: u16,
    data: &[u32],
) -> Result<Vec<u8>, Error> {
    if data.is_empty() || data.len() > abi::MAX_ENTRIES {
        return Err(abi::AbiError::BadCount(data.len()).into());
    }
    let flags = u32::from(mem_type) & abi::TPH_ST_FLAG_MEM_TYPE;
    Ok(abi::encode_feature_st_with(
        feature.number,
        direction,
        flags,
        index,
        data,
    ))
}

fn decode_data(buf: &[u8], n: usize) -> Result<Vec<u32>, Error> {
    let mut words = abi::feature_st_data(buf)?;
    if words.len() < n {
        let need = HEAD + 4 * n;
        return Err(abi::AbiError::Short {
            len: buf.len(),
            need,
        }
        .into());
    }
    words.truncate(n);
    Ok(words)
}

/// ENOTTY: the feature is not (or no longer) there under this number; anything else is
/// explained as v7's errno of the same call would be.
fn explain(feature: &Feature, errno: Errno, as_v7: impl FnOnce(Errno) -> Error) -> Error {
    match errno.0 {
        libc::ENOTTY => Error::FeatureUnavailable {
            feature: feature.number,
            param: crate::probe::FEATURE_PARAM,
            errno,
        },
        _ => as_v7(errno),
    }
}

pub(crate) fn get_st(
    b: &mut dyn Backend,
    feature: &mut Feature,
    entries: &[TphEntry],
    known: &Known,
) -> Result<Vec<u16>, Error> {
    confirm(b, feature, abi::FEATURE_GET)?;
    if known.mode != Some(Mode::Ds) {
        return Err(Error::NotEnabled {
            ds_needed: true,
            errno: Errno::EINVAL,
        });
    }
    let mut tags = vec![0u16; entries.len()];
    for mem_type in [0u8, 1] {
        let picked: Vec<usize> = (0..entries.len())
            .filter(|&i| entries.get(i).is_some_and(|e| e.mem_type == mem_type))
            .collect();
        if picked.is_empty() {
            continue;
        }
        let cpus: Vec<u32> = picked
            .iter()
            .filter_map(|&i| entries.get(i))
            .map(|e| e.cpu)
            .collect();
        let mut arg = encode(feature, abi::FEATURE_GET, mem_type, 0, &cpus)?;
        if let Err(errno) = b.device_feature(&mut arg) {
            return Err(explain(feature, errno, |e| {
                v7::explain_get_st("TPH_ST GET", b, entries, known, e)
            }));
        }
        for (&i, tag) in picked.iter().zip(decode_data(&arg, cpus.len())?) {
            if let Some(t) = tags.get_mut(i) {
                *t = u16::try_from(tag).map_err(|_| Error::WideTag {
                    op: "TPH_ST GET",
                    tag,
                })?;
            }
        }
    }
    Ok(tags)
}

/// Contiguous runs (same memory type, consecutive indexes) in the caller's order.
fn runs(entries: &[TphEntry]) -> Vec<(u8, u16, Vec<u32>)> {
    let mut out: Vec<(u8, u16, Vec<u32>)> = Vec::new();
    for e in entries {
        match out.last_mut() {
            Some((m, start, cpus))
                if *m == e.mem_type
                    && u32::from(*start) + cpus.len() as u32 == u32::from(e.index) =>
            {
                cpus.push(e.cpu)
            }
            _ => out.push((e.mem_type, e.index, vec![e.cpu])),
        }
    }
    out
}

pub(crate) fn set_st(
    b: &mut dyn Backend,
    feature: &mut Feature,
    entries: &[TphEntry],
    known: &Known,
) -> Result<(), Error> {
    if entries.is_empty() || entries.len() > abi::MAX_ENTRIES {
        return Err(abi::AbiError::BadCount(entries.len()).into());
    }
    confirm(b, feature, abi::FEATURE_SET)?;
    let runs = runs(entries);
    if runs.len() > 1 {
        // The kernel validates each call on its own: the whole batch is checked here first,
        // as the kernel would check it, so a refusal it can foresee sends nothing.
        if let Some(err) = precheck(b, entries, known)? {
            return Err(err);
        }
    }
    for (done, (mem, index, cpus)) in runs.iter().enumerate() {
        let mut arg = encode(feature, abi::FEATURE_SET, *mem, *index, cpus)?;
        if let Err(errno) = b.device_feature(&mut arg) {
            if SET_VALIDATION.contains(&errno.0) {
                // Refused in validation (TPH still on): the earlier runs go back to what this
                // handle knew was there. After a failed hardware write the core has turned
                // TPH off and no entry can be written any more.
                put_back(b, feature, runs.get(..done).unwrap_or(&[]), &known.table);
            }
            return Err(explain(feature, errno, |e| {
                v7::explain_set_st("TPH_ST SET", b, entries, known, e)
            }));
        }
    }
    Ok(())
}

/// The kernel's per-entry checks of SET, in its order (index within the table: EINVAL; CPU
/// present: EINVAL; for a table in MSI-X, the vector enabled: ENXIO), on what the client knows
/// (a check whose input is unknown is left to the kernel). Only while TPH is believed on and the
/// table located: otherwise the kernel refuses the first call whole.
fn precheck(
    b: &mut dyn Backend,
    entries: &[TphEntry],
    known: &Known,
) -> Result<Option<Error>, Error> {
    if known.mode.is_none() {
        return Ok(None);
    }
    let t = tph(b)?;
    let msix = match t.cap.location {
        StLocation::Capability => false,
        StLocation::MsiX => true,
        // No table, a reserved location or one this client does not know: the kernel decides.
        _ => return Ok(None),
    };
    let cpus = b.cpu_count();
    let errno = entries.iter().find_map(|e| {
        if e.index >= t.cap.table_size
            || (e.cpu != abi::CPU_CLEAR && cpus.is_some_and(|n| e.cpu >= n))
        {
            Some(Errno::EINVAL)
        } else if msix && known.msix.is_some_and(|n| u32::from(e.index) >= n) {
            Some(Errno(libc::ENXIO))
        } else {
            None
        }
    });
    Ok(errno.map(|errno| v7::explain_set_st("TPH_ST SET", b, entries, known, errno)))
}

/// Writes back, over what the runs of a failed batch already wrote, what this handle last
/// programmed there (cleared where it never programmed the entry). Best effort: the batch has
/// already failed, and its error is what the caller hears.
fn put_back(
    b: &mut dyn Backend,
    feature: &Feature,
    written: &[(u8, u16, Vec<u32>)],
    table: &BTreeMap<u16, (u32, u8)>,
) {
    let mut before: BTreeMap<u16, TphEntry> = BTreeMap::new();
    for (_, start, cpus) in written {
        for index in (*start..).take(cpus.len()) {
            let (cpu, mem_type) = table.get(&index).copied().unwrap_or((abi::CPU_CLEAR, 0));
            before.insert(
                index,
                TphEntry {
                    cpu,
                    index,
                    mem_type,
                    ..TphEntry::default()
                },
            );
        }
    }
    let entries: Vec<TphEntry> = before.into_values().collect();
    for (mem, index, cpus) in runs(&entries) {
        if let Ok(mut arg) = encode(feature, abi::FEATURE_SET, mem, index, &cpus) {
            let _ = b.device_feature(&mut arg);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(index: u16, cpu: u32, mem_type: u8) -> TphEntry {
        TphEntry {
            cpu,
            index,
            mem_type,
            ..TphEntry::default()
        }
    }

    /// A backend whose GET answers every CPU with `tag` (PROBE succeeds).
    struct Answers {
        tag: u32,
    }

    impl Backend for Answers {
        fn tph_ioctl(&mut self, _arg: &mut [u8]) -> Result<i32, Errno> {
            Err(Errno(libc::ENOTTY))
        }
        fn set_msix(&mut self, _: u32, _: &[std::os::fd::BorrowedFd<'_>]) -> Result<(), Errno> {
            Ok(())
        }
        fn reset(&mut self) -> Result<(), Errno> {
            Ok(())
        }
        fn read_config(&self, _offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
            buf.fill(0);
            Ok(())
        }
        fn cpu_count(&self) -> Option<u32> {
            Some(4)
        }
        fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
            for word in arg.get_mut(HEAD..).unwrap_or_default().chunks_exact_mut(4) {
                word.copy_from_slice(&self.tag.to_le_bytes());
            }
            Ok(0)
        }
    }

    fn ds_known() -> Known {
        Known {
            mode: Some(Mode::Ds),
            ..Known::default()
        }
    }

    #[test]
    fn get_st_refuses_a_tag_wider_than_16_bits() {
        let mut b = Answers { tag: 0x1_0005 };
        let err = get_st(&mut b, &mut Feature::default(), &[e(0, 1, 0)], &ds_known())
            .expect_err("a 17-bit tag is not a steering tag");
        assert!(
            matches!(err, Error::WideTag { tag: 0x1_0005, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("0x10005"), "{err}");
    }

    #[test]
    fn get_st_passes_a_16_bit_tag_on() {
        let mut b = Answers { tag: 0xbeef };
        let tags = get_st(
            &mut b,
            &mut Feature::default(),
            &[e(0, 1, 0), e(1, 2, 1)],
            &ds_known(),
        )
        .expect("16-bit tags");
        assert_eq!(tags, vec![0xbeef, 0xbeef]);
    }

    #[test]
    fn runs_split_on_gaps_and_memory_type() {
        let r = runs(&[e(0, 1, 0), e(1, 2, 0), e(3, 3, 0), e(4, 4, 1)]);
        assert_eq!(
            r,
            vec![(0, 0, vec![1, 2]), (0, 3, vec![3]), (1, 4, vec![4])]
        );
    }

    #[test]
    fn encode_matches_feature_layout() {
        let b = encode(&Feature::default(), abi::FEATURE_SET, 1, 5, &[7, 8]).unwrap();
        assert_eq!(b.len(), 24);
        assert_eq!(&b[0..4], &24u32.to_le_bytes());
        assert_eq!(&b[4..8], &(abi::FEATURE_SET | 13).to_le_bytes());
        assert_eq!(&b[8..12], &1u32.to_le_bytes());
        assert_eq!(&b[12..14], &5u16.to_le_bytes());
        assert_eq!(&b[14..16], &2u16.to_le_bytes());
        assert_eq!(&b[16..20], &7u32.to_le_bytes());
    }
}
