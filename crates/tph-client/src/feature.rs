//! The feature-revision adapter (`later-revisions.md`): the same safe API over
//! `VFIO_DEVICE_FEATURE_TPH_ST` and a kernel-virtualised TPH Control register.
//!
//! This revision has no GET_CAP, ENABLE or DISABLE: capabilities are read from the TPH
//! capability in the config region, and TPH is enabled or disabled by writing the Control
//! register there. SET programs *contiguous* entries from one index with one memory type, so a
//! batch is sent as one call per contiguous run; if a later run fails, the runs already written
//! by this batch are cleared again (all or nothing, as in v7). Its layout is from the author's
//! userspace copy (May 2026); anything later is known by title only. Errno is explained as in
//! v7 (ENOTTY aside: no such ioctl), which the kernel model's feature revision confirms: it runs
//! v7's validation (`tph-kernel` `vfio/feature.rs`; `tests/conformance_feature.rs` here plays
//! the client's conformance scenarios against it).

use tph_regs::tph::{StLocation, TphRequester, TPH_CTRL};

use crate::abi::{self, TphEntry};
use crate::backend::Backend;
use crate::device::{Capabilities, Known, Mode};
use crate::error::{Errno, Error};
use crate::v7;

/// Size of the config space read to find the capability.
const CONFIG_SIZE: usize = 4096;
/// `vfio_device_feature` head + `vfio_device_feature_tph_st` head.
const HEAD: usize = 16;

fn tph(b: &mut dyn Backend) -> Result<TphRequester, Error> {
    let mut cfg = vec![0u8; CONFIG_SIZE];
    b.read_config(0, &mut cfg).map_err(|errno| Error::Backend {
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

pub(crate) fn get_cap(b: &mut dyn Backend) -> Result<Capabilities, Error> {
    let t = tph(b)?;
    let table = matches!(t.cap.location, StLocation::Capability | StLocation::MsiX);
    Ok(Capabilities {
        iv: t.cap.iv,
        ds: t.cap.ds,
        st_table_size: if table { t.cap.table_size } else { 0 },
    })
}

fn write_control(b: &mut dyn Backend, t: &TphRequester, value: u32) -> Result<u32, Errno> {
    let at = u64::from(t.offset) + TPH_CTRL as u64;
    b.write_config(at, &value.to_le_bytes())?;
    let mut back = [0u8; 4];
    b.read_config(at, &mut back)?;
    Ok(u32::from_le_bytes(back))
}

pub(crate) fn enable(b: &mut dyn Backend, mode: Mode) -> Result<(), Error> {
    let t = tph(b)?;
    if t.control.to_bits() & 0x300 != 0 {
        return Err(Error::AlreadyEnabled {
            errno: Errno(libc::EBUSY),
        });
    }
    let st_mode = match mode {
        Mode::Iv => 1,
        Mode::Ds => 2,
    };
    let req = if t.cap.ext { 3 } else { 1 }; // 16-bit tags when the device can
    let want = st_mode | req << 8;
    let got = write_control(b, &t, want).map_err(|errno| {
        in_feature_terms(v7::explain_enable("writing TPH Control", mode, errno))
    })?;
    // The kernel virtualises Control: what reads back is what it accepted.
    if got & 0x307 == 0 || got & 0x7 != st_mode {
        return Err(Error::CannotEnable {
            mode,
            errno: Errno::EINVAL,
        });
    }
    Ok(())
}

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
fn encode(set: bool, mem_type: u8, index: u16, data: &[u32]) -> Result<Vec<u8>, Error> {
    if data.is_empty() || data.len() > abi::MAX_ENTRIES {
        return Err(abi::AbiError::BadCount(data.len()).into());
    }
    let argsz = (HEAD + 4 * data.len()) as u32;
    let dir = if set {
        abi::FEATURE_SET
    } else {
        abi::FEATURE_GET
    };
    let mut b = Vec::with_capacity(argsz as usize);
    b.extend_from_slice(&argsz.to_le_bytes());
    b.extend_from_slice(&(dir | abi::FEATURE_TPH_ST).to_le_bytes());
    b.extend_from_slice(&u32::from(mem_type & 1).to_le_bytes());
    b.extend_from_slice(&index.to_le_bytes());
    b.extend_from_slice(&(data.len() as u16).to_le_bytes());
    for d in data {
        b.extend_from_slice(&d.to_le_bytes());
    }
    Ok(b)
}

fn decode_data(buf: &[u8], n: usize) -> Vec<u32> {
    (0..n)
        .map(|i| {
            buf.get(HEAD + 4 * i..HEAD + 4 * i + 4)
                .and_then(|s| <[u8; 4]>::try_from(s).ok())
                .map_or(0, u32::from_le_bytes)
        })
        .collect()
}

/// ENOTTY: this kernel has no `VFIO_DEVICE_FEATURE`; anything else is explained as v7's
/// errno of the same call would be.
fn explain(errno: Errno, as_v7: impl FnOnce(Errno) -> Error) -> Error {
    match errno.0 {
        libc::ENOTTY => Error::NoTphInterface {
            revision: crate::Revision::Feature,
            errno,
        },
        _ => in_feature_terms(as_v7(errno)),
    }
}

/// v7's explanation with this revision's names: its DS gate is `enable_unsafe_tph`.
fn in_feature_terms(e: Error) -> Error {
    match e {
        Error::DsDisabled { errno, .. } => Error::DsDisabled {
            errno,
            param: crate::probe::FEATURE_PARAM,
        },
        other => other,
    }
}

pub(crate) fn get_st(
    b: &mut dyn Backend,
    entries: &[TphEntry],
    known: &Known,
) -> Result<Vec<u16>, Error> {
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
        let mut arg = encode(false, mem_type, 0, &cpus)?;
        if let Err(errno) = b.device_feature(&mut arg) {
            return Err(explain(errno, |e| {
                v7::explain_get_st("TPH_ST GET", b, entries, known, e)
            }));
        }
        for (&i, tag) in picked.iter().zip(decode_data(&arg, cpus.len())) {
            if let Some(t) = tags.get_mut(i) {
                *t = tag as u16;
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
    entries: &[TphEntry],
    known: &Known,
) -> Result<(), Error> {
    if entries.is_empty() || entries.len() > abi::MAX_ENTRIES {
        return Err(abi::AbiError::BadCount(entries.len()).into());
    }
    let runs = runs(entries);
    for (done, (mem, index, cpus)) in runs.iter().enumerate() {
        let mut arg = encode(true, *mem, *index, cpus)?;
        if let Err(errno) = b.device_feature(&mut arg) {
            rollback(b, runs.get(..done).unwrap_or(&[]));
            return Err(explain(errno, |e| {
                v7::explain_set_st("TPH_ST SET", b, entries, known, e)
            }));
        }
    }
    Ok(())
}

/// Clears what earlier runs of a failed batch wrote (best effort: the batch already failed).
fn rollback(b: &mut dyn Backend, written: &[(u8, u16, Vec<u32>)]) {
    for (mem, index, cpus) in written {
        let clear = vec![abi::CPU_CLEAR; cpus.len()];
        if let Ok(mut arg) = encode(true, *mem, *index, &clear) {
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
        let b = encode(true, 1, 5, &[7, 8]).unwrap();
        assert_eq!(b.len(), 24);
        assert_eq!(&b[0..4], &24u32.to_le_bytes());
        assert_eq!(&b[4..8], &(abi::FEATURE_SET | 13).to_le_bytes());
        assert_eq!(&b[8..12], &1u32.to_le_bytes());
        assert_eq!(&b[12..14], &5u16.to_le_bytes());
        assert_eq!(&b[14..16], &2u16.to_le_bytes());
        assert_eq!(&b[16..20], &7u32.to_le_bytes());
    }
}
