//! The one errno type of the crates: a Linux errno value as the kernel boundary reports it.

use std::fmt;

/// A Linux errno value (positive, e.g. 22 for `EINVAL`): what a failed VFIO call leaves in
/// `errno`, and what the kernel model answers with. Any value can be carried; the constants name
/// the ones this interface produces or meets.
///
/// ```
/// use tph_abi::Errno;
/// let e = Errno(22);
/// assert_eq!(e, Errno::EINVAL);
/// assert_eq!(e.name(), "EINVAL");
/// assert_eq!(e.to_string(), "EINVAL (22)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Errno(pub i32);

// The Linux asm-generic numbers (x86-64 and arm64 share them).
impl Errno {
    /// 1: operation not permitted.
    pub const EPERM: Errno = Errno(1);
    /// 2: no such file or directory.
    pub const ENOENT: Errno = Errno(2);
    /// 3: no such process.
    pub const ESRCH: Errno = Errno(3);
    /// 5: input/output error (a hardware access failed).
    pub const EIO: Errno = Errno(5);
    /// 6: no such device or address (MSI-X vector not enabled, ST index beyond the table).
    pub const ENXIO: Errno = Errno(6);
    /// 7: argument list too long.
    pub const E2BIG: Errno = Errno(7);
    /// 9: bad file descriptor (the device is not open).
    pub const EBADF: Errno = Errno(9);
    /// 11: try again.
    pub const EAGAIN: Errno = Errno(11);
    /// 12: out of memory.
    pub const ENOMEM: Errno = Errno(12);
    /// 13: permission denied.
    pub const EACCES: Errno = Errno(13);
    /// 14: bad address (the argument is not fully readable or writable).
    pub const EFAULT: Errno = Errno(14);
    /// 16: device or resource busy (already enabled, already taken over).
    pub const EBUSY: Errno = Errno(16);
    /// 19: no such device (required functionality not present).
    pub const ENODEV: Errno = Errno(19);
    /// 22: invalid argument.
    pub const EINVAL: Errno = Errno(22);
    /// 25: inappropriate ioctl for device (unknown request).
    pub const ENOTTY: Errno = Errno(25);
    /// 28: no space left on device.
    pub const ENOSPC: Errno = Errno(28);
    /// 34: result out of range.
    pub const ERANGE: Errno = Errno(34);
    /// 38: function not implemented.
    pub const ENOSYS: Errno = Errno(38);
    /// 77: file descriptor in bad state.
    pub const EBADFD: Errno = Errno(77);
    /// 95: operation not supported.
    pub const EOPNOTSUPP: Errno = Errno(95);
    /// 110: connection timed out.
    pub const ETIMEDOUT: Errno = Errno(110);
}

/// (errno, name) of every named errno, in numeric order.
const NAMES: &[(Errno, &str)] = &[
    (Errno::EPERM, "EPERM"),
    (Errno::ENOENT, "ENOENT"),
    (Errno::ESRCH, "ESRCH"),
    (Errno::EIO, "EIO"),
    (Errno::ENXIO, "ENXIO"),
    (Errno::E2BIG, "E2BIG"),
    (Errno::EBADF, "EBADF"),
    (Errno::EAGAIN, "EAGAIN"),
    (Errno::ENOMEM, "ENOMEM"),
    (Errno::EACCES, "EACCES"),
    (Errno::EFAULT, "EFAULT"),
    (Errno::EBUSY, "EBUSY"),
    (Errno::ENODEV, "ENODEV"),
    (Errno::EINVAL, "EINVAL"),
    (Errno::ENOTTY, "ENOTTY"),
    (Errno::ENOSPC, "ENOSPC"),
    (Errno::ERANGE, "ERANGE"),
    (Errno::ENOSYS, "ENOSYS"),
    (Errno::EBADFD, "EBADFD"),
    (Errno::EOPNOTSUPP, "EOPNOTSUPP"),
    (Errno::ETIMEDOUT, "ETIMEDOUT"),
];

impl Errno {
    /// The number, as `errno` holds it.
    ///
    /// ```
    /// assert_eq!(tph_abi::Errno::ENOTTY.number(), 25);
    /// ```
    pub fn number(self) -> i32 {
        self.0
    }

    /// The symbolic name (`"EINVAL"`), or `"E?"` for a value this crate does not name.
    ///
    /// ```
    /// assert_eq!(tph_abi::Errno(95).name(), "EOPNOTSUPP");
    /// assert_eq!(tph_abi::Errno(4242).name(), "E?");
    /// ```
    pub fn name(self) -> &'static str {
        NAMES
            .iter()
            .find(|(e, _)| *e == self)
            .map_or("E?", |(_, n)| n)
    }

    /// The errno of a name such as `"ENXIO"`.
    ///
    /// ```
    /// assert_eq!(tph_abi::Errno::from_name("ENXIO"), Some(tph_abi::Errno(6)));
    /// assert_eq!(tph_abi::Errno::from_name("ENOPE"), None);
    /// ```
    pub fn from_name(name: &str) -> Option<Self> {
        NAMES.iter().find(|(_, n)| *n == name).map(|(e, _)| *e)
    }

    /// The errno of an I/O error, `EIO` when it carries none.
    ///
    /// ```
    /// let io = std::io::Error::from_raw_os_error(13);
    /// assert_eq!(tph_abi::Errno::from_io(&io), tph_abi::Errno::EACCES);
    /// let other = std::io::Error::other("no errno");
    /// assert_eq!(tph_abi::Errno::from_io(&other), tph_abi::Errno::EIO);
    /// ```
    pub fn from_io(e: &std::io::Error) -> Self {
        Errno(e.raw_os_error().unwrap_or(Self::EIO.0))
    }

    /// The calling thread's `errno` now (right after a failed system call).
    pub fn last() -> Self {
        Self::from_io(&std::io::Error::last_os_error())
    }

    /// A system call's `int` return value: negative means failure with [`Errno::last`].
    ///
    /// ```
    /// assert_eq!(tph_abi::Errno::result(3), Ok(3));
    /// ```
    pub fn result(rc: i32) -> Result<i32, Self> {
        if rc < 0 {
            return Err(Self::last());
        }
        Ok(rc)
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.name(), self.0)
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for std::io::Error {
    fn from(e: Errno) -> Self {
        std::io::Error::from_raw_os_error(e.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_in_numeric_order() {
        for pair in NAMES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{pair:?}");
        }
        for (e, n) in NAMES {
            assert_eq!(e.name(), *n);
            assert_eq!(Errno::from_name(n), Some(*e));
        }
    }

    /// The numbers are the C library's (the kernel's own), name by name.
    #[test]
    fn numbers_match_the_c_library() {
        let libc_numbers = [
            libc::EPERM,
            libc::ENOENT,
            libc::ESRCH,
            libc::EIO,
            libc::ENXIO,
            libc::E2BIG,
            libc::EBADF,
            libc::EAGAIN,
            libc::ENOMEM,
            libc::EACCES,
            libc::EFAULT,
            libc::EBUSY,
            libc::ENODEV,
            libc::EINVAL,
            libc::ENOTTY,
            libc::ENOSPC,
            libc::ERANGE,
            libc::ENOSYS,
            libc::EBADFD,
            libc::EOPNOTSUPP,
            libc::ETIMEDOUT,
        ];
        let ours: Vec<i32> = NAMES.iter().map(|(e, _)| e.0).collect();
        assert_eq!(ours, libc_numbers);
        let io = std::io::Error::from(Errno::ENOENT);
        assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    }
}
