//! The v7 adapter: the safe API's calls as `VFIO_DEVICE_PCI_TPH` ops, and the kernel's errno
//! turned into user terms (`vfio-tph-v7.md` section 2 says which errno means what). The
//! feature adapter explains its kernel's errno with the same functions: the feature revision
//! keeps v7's errno meanings (the kernel model runs the same validation for both).

use crate::backend::Backend;
use crate::device::{Capabilities, Known, Mode};
use crate::error::{Errno, Error};
use tph_abi::{self as abi, TphEntry};

const EINVAL: i32 = libc::EINVAL;

fn call(b: &mut dyn Backend, arg: &mut [u8]) -> Result<(), Errno> {
    b.tph_ioctl(arg).map(|_| ())
}

/// Refusals every op shares: no TPH (ENODEV) and unknown op (EOPNOTSUPP on GET_CAP/DISABLE).
fn common(op: &'static str, errno: Errno) -> Error {
    match errno.0 {
        libc::ENODEV => Error::NoTph { errno },
        libc::ENOTTY => Error::NoTphInterface {
            revision: crate::Revision::V7,
            errno,
        },
        _ => Error::Kernel { op, errno },
    }
}

pub(crate) fn get_cap(b: &mut dyn Backend) -> Result<Capabilities, Error> {
    let mut arg = abi::encode_get_cap();
    call(b, &mut arg).map_err(|e| common("GET_CAP", e))?;
    let cap = abi::decode_cap(&arg)?;
    Ok(Capabilities {
        iv: cap.supported_modes & abi::MODE_IV != 0,
        ds: cap.supported_modes & abi::MODE_DS != 0,
        st_table_size: cap.st_table_sz,
    })
}

pub(crate) fn enable(b: &mut dyn Backend, mode: Mode, _known: &Known) -> Result<(), Error> {
    let bits = match mode {
        Mode::Iv => abi::MODE_IV,
        Mode::Ds => abi::MODE_DS,
    };
    let mut arg = abi::encode_enable(bits);
    call(b, &mut arg).map_err(|errno| explain_enable("ENABLE", mode, errno))
}

/// A refused enable in user terms (`op` names the call for anything unexpected).
pub(crate) fn explain_enable(op: &'static str, mode: Mode, errno: Errno) -> Error {
    match errno.0 {
        libc::EBUSY => Error::AlreadyEnabled { errno },
        libc::EOPNOTSUPP if mode == Mode::Ds => Error::DsDisabled {
            errno,
            param: crate::probe::V7_PARAM,
        },
        EINVAL => Error::CannotEnable { mode, errno },
        _ => common(op, errno),
    }
}

pub(crate) fn disable(b: &mut dyn Backend) -> Result<(), Error> {
    let mut arg = abi::encode_disable();
    call(b, &mut arg).map_err(|e| common("DISABLE", e))
}

pub(crate) fn get_st(
    b: &mut dyn Backend,
    entries: &[TphEntry],
    known: &Known,
) -> Result<Vec<u16>, Error> {
    let mut arg = abi::encode_st(abi::OP_GET_ST, entries)?;
    if let Err(errno) = call(b, &mut arg) {
        return Err(explain_get_st("GET_ST", b, entries, known, errno));
    }
    Ok(abi::decode_tags(&arg, entries.len())?)
}

/// A refused tag query in user terms, from what the client knows (`op` names the call).
pub(crate) fn explain_get_st(
    op: &'static str,
    b: &dyn Backend,
    entries: &[TphEntry],
    known: &Known,
    errno: Errno,
) -> Error {
    match errno.0 {
        libc::EOPNOTSUPP => Error::DsDisabled {
            errno,
            param: crate::probe::V7_PARAM,
        },
        // With DS enabled the capability exists, so ENODEV is the core's root port lookup.
        libc::ENODEV if known.mode == Some(Mode::Ds) => Error::NoRootPort { errno },
        EINVAL if known.mode != Some(Mode::Ds) => Error::NotEnabled {
            ds_needed: true,
            errno,
        },
        EINVAL => missing_cpu(b, entries, errno).unwrap_or(Error::Kernel { op, errno }),
        _ => common(op, errno),
    }
}

/// The first CPU of the batch that is not present, as the kernel's reason for EINVAL.
fn missing_cpu(b: &dyn Backend, entries: &[TphEntry], errno: Errno) -> Option<Error> {
    let n = b.cpu_count()?;
    entries
        .iter()
        .find(|e| e.cpu != abi::CPU_CLEAR && e.cpu >= n)
        .map(|e| Error::NoSuchCpu { cpu: e.cpu, errno })
}

pub(crate) fn set_st(
    b: &mut dyn Backend,
    entries: &[TphEntry],
    known: &Known,
) -> Result<(), Error> {
    let mut arg = abi::encode_st(abi::OP_SET_ST, entries)?;
    call(b, &mut arg).map_err(|errno| explain_set_st("SET_ST", b, entries, known, errno))
}

/// A refused table update in user terms, from what the client knows (`op` names the call).
pub(crate) fn explain_set_st(
    op: &'static str,
    b: &dyn Backend,
    entries: &[TphEntry],
    known: &Known,
    errno: Errno,
) -> Error {
    match errno.0 {
        libc::ENODEV if known.caps.is_some_and(|c| c.st_table_size == 0) => {
            Error::NoTable { errno }
        }
        libc::ENXIO => Error::VectorNotEnabled {
            vector: first_vector_not_enabled(entries, known),
            errno,
        },
        EINVAL if known.mode.is_none() => Error::NotEnabled {
            ds_needed: false,
            errno,
        },
        EINVAL => index_out_of_range(entries, known, errno)
            .or_else(|| missing_cpu(b, entries, errno))
            .unwrap_or(Error::Kernel { op, errno }),
        _ => common(op, errno),
    }
}

fn first_vector_not_enabled(entries: &[TphEntry], known: &Known) -> Option<u16> {
    let enabled = known.msix.unwrap_or(0);
    entries
        .iter()
        .map(|e| e.index)
        .find(|&i| u32::from(i) >= enabled)
}

fn index_out_of_range(entries: &[TphEntry], known: &Known, errno: Errno) -> Option<Error> {
    let size = known.caps?.st_table_size;
    entries
        .iter()
        .find(|e| e.index >= size)
        .map(|e| Error::IndexOutOfRange {
            index: e.index,
            size,
            errno,
        })
}
