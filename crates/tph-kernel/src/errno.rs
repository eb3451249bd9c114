//! The crate's error type: a Linux errno, as the kernel boundary reports it. It is the one errno
//! type of the crates, [`tph_abi::Errno`]: the model answers with the values a real ioctl puts in
//! `errno`.

pub use tph_abi::Errno;
