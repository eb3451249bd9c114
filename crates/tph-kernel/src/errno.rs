//! The crate's error type: a Linux errno, as the kernel boundary reports it.

/// A Linux errno. [`Errno::number`] is the value a real ioctl would put in `errno`,
/// [`Errno::name`] its symbolic name.
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, thiserror::Error)]
pub enum Errno {
    /// 5: a hardware access failed.
    #[error("EIO: input/output error")]
    EIO,
    /// 6: no such device or address (MSI-X vector not enabled, ST index beyond the table).
    #[error("ENXIO: no such device or address")]
    ENXIO,
    /// 9: the device is not open.
    #[error("EBADF: bad file descriptor")]
    EBADF,
    /// 14: the argument is not (fully) readable or writable.
    #[error("EFAULT: bad address")]
    EFAULT,
    /// 16: already enabled / already taken over.
    #[error("EBUSY: device or resource busy")]
    EBUSY,
    /// 19: required functionality not present.
    #[error("ENODEV: no such device")]
    ENODEV,
    /// 22: invalid argument.
    #[error("EINVAL: invalid argument")]
    EINVAL,
    /// 34: a range is empty (`pci_alloc_irq_vectors` asked for no vector).
    #[error("ERANGE: numerical result out of range")]
    ERANGE,
    /// 25: unknown ioctl request.
    #[error("ENOTTY: inappropriate ioctl for device")]
    ENOTTY,
    /// 95: operation not supported.
    #[error("EOPNOTSUPP: operation not supported")]
    EOPNOTSUPP,
}

impl Errno {
    /// Every variant, in numeric order.
    pub const ALL: [Errno; 10] = [
        Errno::EIO,
        Errno::ENXIO,
        Errno::EBADF,
        Errno::EFAULT,
        Errno::EBUSY,
        Errno::ENODEV,
        Errno::EINVAL,
        Errno::ENOTTY,
        Errno::ERANGE,
        Errno::EOPNOTSUPP,
    ];

    /// The Linux (x86-64 / arm64 generic) errno number.
    pub fn number(self) -> i32 {
        match self {
            Errno::EIO => 5,
            Errno::ENXIO => 6,
            Errno::EBADF => 9,
            Errno::EFAULT => 14,
            Errno::EBUSY => 16,
            Errno::ENODEV => 19,
            Errno::EINVAL => 22,
            Errno::ENOTTY => 25,
            Errno::ERANGE => 34,
            Errno::EOPNOTSUPP => 95,
        }
    }

    /// The symbolic name, e.g. `"EINVAL"`.
    pub fn name(self) -> &'static str {
        match self {
            Errno::EIO => "EIO",
            Errno::ENXIO => "ENXIO",
            Errno::EBADF => "EBADF",
            Errno::EFAULT => "EFAULT",
            Errno::EBUSY => "EBUSY",
            Errno::ENODEV => "ENODEV",
            Errno::EINVAL => "EINVAL",
            Errno::ENOTTY => "ENOTTY",
            Errno::ERANGE => "ERANGE",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
        }
    }

    /// The variant with Linux number `n`.
    pub fn from_number(n: i32) -> Option<Errno> {
        Errno::ALL.into_iter().find(|e| e.number() == n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_numbers_match_linux_asm_generic() {
        let pinned = [
            (Errno::EINVAL, 22),
            (Errno::EFAULT, 14),
            (Errno::EOPNOTSUPP, 95),
        ];
        for (e, n) in pinned {
            assert_eq!(e.number(), n);
            assert_eq!(Errno::from_number(n), Some(e));
        }
        assert_eq!(Errno::ENOTTY.name(), "ENOTTY");
    }
}
