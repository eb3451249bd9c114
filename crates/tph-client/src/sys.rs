//! The one home of `unsafe` in the client: the raw system calls.
//!
//! Every wrapper checks its own invariants, so the safe functions here are sound whatever their
//! callers pass: requests are a closed set ([`Request`]), each with the argument shape the
//! kernel expects; a buffer argument must hold the request's fixed head and an `argsz` (its
//! first `u32`) no larger than the buffer, so the kernel never reads or writes past it. Each
//! `unsafe` block states the invariant that makes it sound.
#![allow(unsafe_code)]

#[cfg(feature = "open")]
use std::ffi::CStr;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use tph_abi::vfio::Request;

use crate::error::Errno;

/// How a request passes its argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Arg {
    /// No argument.
    None,
    /// An integer value (not a pointer).
    Value,
    /// A pointer to a buffer that starts with a `u32` size (`argsz`, or iommufd's `size`); the
    /// kernel copies at least `min` bytes before it looks at that size.
    Sized { min: usize },
    /// A pointer to one `int` holding a descriptor (`VFIO_GROUP_SET_CONTAINER`).
    FdPtr,
    /// A pointer to a NUL-terminated device name (`VFIO_GROUP_GET_DEVICE_FD`).
    Name,
}

/// The argument shape of each request the client issues (linux/vfio.h, linux/iommufd.h).
fn arg_of(request: Request) -> Option<Arg> {
    Some(match request {
        Request::GetApiVersion | Request::DeviceReset | Request::GroupUnsetContainer => Arg::None,
        Request::CheckExtension | Request::SetIommu => Arg::Value,
        Request::GroupSetContainer => Arg::FdPtr,
        Request::GroupGetDeviceFd => Arg::Name,
        // The v7 op head and the feature head are 8 bytes; the kernel reads them first.
        Request::DevicePciTph | Request::DeviceFeature => Arg::Sized { min: 8 },
        Request::GroupGetStatus => Arg::Sized { min: 8 },
        Request::DeviceGetRegionInfo => Arg::Sized { min: 32 },
        Request::DeviceSetIrqs => Arg::Sized { min: 20 },
        Request::DeviceBindIommufd => Arg::Sized { min: 16 },
        Request::DeviceAttachIommufdPt | Request::IommuIoasAlloc => Arg::Sized { min: 12 },
        Request::IommuDestroy => Arg::Sized { min: 8 },
        _ => return None,
    })
}

fn expect(request: Request, shape: fn(Arg) -> bool) -> Result<Arg, Errno> {
    match arg_of(request) {
        Some(arg) if shape(arg) => Ok(arg),
        _ => Err(Errno::EINVAL),
    }
}

/// `ioctl(fd, request, arg)` for a request whose argument is a sized buffer. Refused with EFAULT
/// (what the kernel answers for memory that is not there) when `arg` is shorter than the
/// request's fixed head or its leading size field claims more than `arg.len()` bytes; EINVAL
/// for a request that takes no buffer.
pub(crate) fn ioctl_buf(
    fd: BorrowedFd<'_>,
    request: Request,
    arg: &mut [u8],
) -> Result<i32, Errno> {
    let Arg::Sized { min } = expect(request, |a| matches!(a, Arg::Sized { .. }))? else {
        return Err(Errno::EINVAL);
    };
    let size = tph_abi::le32(arg, 0).map_err(|_| Errno(libc::EFAULT))? as usize;
    if arg.len() < min || size > arg.len() {
        return Err(Errno(libc::EFAULT));
    }
    // SAFETY: `fd` is live for the borrow; `arg` is valid and writable for `arg.len()` bytes,
    // which is at least the fixed head the kernel copies first (`min`, per `arg_of`) and at least
    // the size field that bounds everything else it reads or writes (checked just above). The
    // buffer outlives the call.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), request.number() as _, arg.as_mut_ptr()) })
}

/// `ioctl(fd, request)` for a request without an argument.
pub(crate) fn ioctl_none(fd: BorrowedFd<'_>, request: Request) -> Result<i32, Errno> {
    expect(request, |a| a == Arg::None)?;
    // SAFETY: `fd` is live for the borrow and the request takes no argument (checked), so no
    // memory is passed to the kernel.
    Errno::result(unsafe { libc::ioctl(fd.as_raw_fd(), request.number() as _) })
}

/// `ioctl(fd, request, value)` for a request whose argument is an integer, not a pointer.
#[cfg(any(test, feature = "open"))]
pub(crate) fn ioctl_value(fd: BorrowedFd<'_>, request: Request, value: u32) -> Result<i32, Errno> {
    expect(request, |a| a == Arg::Value)?;
    // SAFETY: `fd` is live for the borrow; the request takes its argument by value (checked), so
    // the kernel dereferences nothing.
    Errno::result(unsafe {
        libc::ioctl(
            fd.as_raw_fd(),
            request.number() as _,
            value as libc::c_ulong,
        )
    })
}

/// `VFIO_GROUP_SET_CONTAINER`: puts `group` into `container`.
#[cfg(feature = "open")]
pub(crate) fn group_set_container(
    group: BorrowedFd<'_>,
    container: BorrowedFd<'_>,
) -> Result<(), Errno> {
    let request = Request::GroupSetContainer;
    expect(request, |a| a == Arg::FdPtr)?;
    let raw: libc::c_int = container.as_raw_fd();
    // SAFETY: both fds are live for their borrows; the kernel reads one `int` through the
    // pointer, which points to `raw`, alive for the call.
    Errno::result(unsafe { libc::ioctl(group.as_raw_fd(), request.number() as _, &raw) })
        .map(|_| ())
}

/// `VFIO_GROUP_GET_DEVICE_FD`: the device called `name` in `group`, as a new owned fd.
#[cfg(feature = "open")]
pub(crate) fn group_get_device_fd(group: BorrowedFd<'_>, name: &CStr) -> Result<OwnedFd, Errno> {
    let request = Request::GroupGetDeviceFd;
    expect(request, |a| a == Arg::Name)?;
    // SAFETY: `group` is live for the borrow; `name` is a NUL-terminated string alive for the
    // call, and the kernel reads it up to the NUL only.
    let fd = Errno::result(unsafe {
        libc::ioctl(group.as_raw_fd(), request.number() as _, name.as_ptr())
    })?;
    // SAFETY: on success the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `pread(fd, buf, offset)` until `buf` is full; a short read at the end is EIO (a VFIO region
/// read never ends early unless the kernel refuses part of it).
pub(crate) fn pread_exact(fd: BorrowedFd<'_>, buf: &mut [u8], offset: u64) -> Result<(), Errno> {
    let mut done = 0;
    while done < buf.len() {
        let at = libc::off_t::try_from(offset + done as u64).map_err(|_| Errno::EINVAL)?;
        let rest = &mut buf[done..];
        // SAFETY: `fd` is live for the borrow; the kernel writes at most `rest.len()` bytes into
        // `rest`, a valid writable slice alive for the call.
        let n = unsafe { libc::pread(fd.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len(), at) };
        match n {
            n if n < 0 => return Err(Errno::last()),
            0 => return Err(Errno(libc::EIO)),
            n => done += n as usize,
        }
    }
    Ok(())
}

/// `pwrite(fd, data, offset)` until all of `data` is written; a zero-byte write is EIO.
pub(crate) fn pwrite_all(fd: BorrowedFd<'_>, data: &[u8], offset: u64) -> Result<(), Errno> {
    let mut done = 0;
    while done < data.len() {
        let at = libc::off_t::try_from(offset + done as u64).map_err(|_| Errno::EINVAL)?;
        let rest = &data[done..];
        // SAFETY: `fd` is live for the borrow; the kernel reads at most `rest.len()` bytes from
        // `rest`, a valid slice alive for the call.
        let n = unsafe { libc::pwrite(fd.as_raw_fd(), rest.as_ptr().cast(), rest.len(), at) };
        match n {
            n if n < 0 => return Err(Errno::last()),
            0 => return Err(Errno(libc::EIO)),
            n => done += n as usize,
        }
    }
    Ok(())
}

/// A read-only shared mapping of `len` bytes of a file at `offset` (a VFIO region mapped with
/// `mmap`), unmapped on drop. Reads are volatile: the bytes are device memory.
#[derive(Debug)]
pub(crate) struct SharedMap {
    addr: std::ptr::NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; reading it from another thread is
// as sound as from this one (only volatile reads are made, never references into it).
unsafe impl Send for SharedMap {}
// SAFETY: as above; `&SharedMap` only offers volatile reads.
unsafe impl Sync for SharedMap {}

impl SharedMap {
    /// `mmap(NULL, len, PROT_READ, MAP_SHARED, fd, offset)`.
    pub(crate) fn new(fd: BorrowedFd<'_>, offset: u64, len: usize) -> Result<Self, Errno> {
        if len == 0 {
            return Err(Errno::EINVAL);
        }
        let off = libc::off_t::try_from(offset).map_err(|_| Errno::EINVAL)?;
        // SAFETY: a new mapping at an address the kernel chooses (NULL hint) overlaps no memory
        // of this program; `fd` is live for the borrow (the mapping keeps its own reference).
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                off,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(Errno::last());
        }
        let addr = std::ptr::NonNull::new(p.cast::<u8>()).ok_or(Errno::EINVAL)?;
        Ok(Self { addr, len })
    }

    /// The little-endian dword at byte `at` (4-aligned, inside the mapping), read once.
    pub(crate) fn read_u32(&self, at: usize) -> Option<u32> {
        if !at.is_multiple_of(4) || at.checked_add(4)? > self.len {
            return None;
        }
        // SAFETY: `at + 4 <= len` and `at` is 4-aligned on a page-aligned base, so the read is
        // an aligned u32 inside the live mapping; volatile, as device memory may change.
        let v = unsafe { std::ptr::read_volatile(self.addr.as_ptr().add(at).cast::<u32>()) };
        Some(u32::from_le(v))
    }
}

impl Drop for SharedMap {
    fn drop(&mut self) {
        // SAFETY: `addr`/`len` are exactly what mmap returned and nothing refers into the
        // mapping past this point.
        unsafe {
            libc::munmap(self.addr.as_ptr().cast(), self.len);
        }
    }
}

/// `eventfd(0, EFD_CLOEXEC)`: a new eventfd owned by the caller.
pub(crate) fn eventfd() -> Result<OwnedFd, Errno> {
    // SAFETY: eventfd takes no pointers.
    let fd = Errno::result(unsafe { libc::eventfd(0, libc::EFD_CLOEXEC) })?;
    // SAFETY: on success the kernel returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Borrows the descriptor a `vfio_ioctls::VfioDevice` owns (it implements `AsRawFd` only).
#[cfg(feature = "vfio-ioctls")]
pub(crate) fn vfio_device_fd(dev: &vfio_ioctls::VfioDevice) -> BorrowedFd<'_> {
    // SAFETY: a `VfioDevice` owns its device file and closes it only when dropped, so the
    // descriptor stays open for as long as the borrow of `dev` that bounds the result.
    unsafe { BorrowedFd::borrow_raw(dev.as_raw_fd()) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    #[test]
    fn ioctl_buf_refuses_argsz_beyond_buffer_before_any_call() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let mut arg = [17, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        let r = ioctl_buf(f.as_fd(), Request::DevicePciTph, &mut arg);
        assert_eq!(r, Err(Errno(libc::EFAULT)));
    }

    #[test]
    fn ioctl_buf_refuses_buffer_shorter_than_the_fixed_head() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let mut arg = [4, 0, 0, 0];
        assert_eq!(
            ioctl_buf(f.as_fd(), Request::DevicePciTph, &mut arg),
            Err(Errno(libc::EFAULT))
        );
        let mut info = [16u8; 16]; // region info needs 32 bytes whatever argsz says
        info[..4].copy_from_slice(&16u32.to_le_bytes());
        let r = ioctl_buf(f.as_fd(), Request::DeviceGetRegionInfo, &mut info);
        assert_eq!(r, Err(Errno(libc::EFAULT)));
    }

    #[test]
    fn wrappers_refuse_requests_of_another_shape() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let mut arg = [8, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            ioctl_buf(f.as_fd(), Request::DeviceReset, &mut arg),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            ioctl_none(f.as_fd(), Request::DevicePciTph),
            Err(Errno::EINVAL)
        );
        assert_eq!(
            ioctl_value(f.as_fd(), Request::DeviceReset, 1),
            Err(Errno::EINVAL)
        );
    }

    #[test]
    fn ioctl_on_a_non_vfio_fd_is_the_kernels_enotty() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let mut arg = tph_abi::encode_get_cap();
        assert_eq!(
            ioctl_buf(f.as_fd(), Request::DevicePciTph, &mut arg),
            Err(Errno(libc::ENOTTY))
        );
        assert_eq!(
            ioctl_none(f.as_fd(), Request::DeviceReset),
            Err(Errno(libc::ENOTTY))
        );
    }

    #[test]
    fn pread_exact_at_end_of_file_is_eio() {
        let f = std::fs::File::open("/dev/null").unwrap();
        let mut b = [0u8; 4];
        assert_eq!(pread_exact(f.as_fd(), &mut b, 0), Err(Errno(libc::EIO)));
    }
}
