//! [`Recorder`]: a backend that records every call and answers from a queue of replies.

use std::collections::VecDeque;
use std::os::fd::BorrowedFd;

use super::Backend;
use crate::error::Errno;

/// One call the client made through a [`Recorder`], with the argument bytes as the client sent
/// them (before any reply filled them in).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Call {
    /// `VFIO_DEVICE_PCI_TPH` (the v7 ioctl) with its argument.
    Tph(Vec<u8>),
    /// `VFIO_DEVICE_FEATURE` (the feature revision) with its argument.
    Feature(Vec<u8>),
    /// `VFIO_DEVICE_SET_IRQS` on MSI-X: `count` eventfds from vector `start` (0: disable).
    SetMsix {
        /// First vector.
        start: u32,
        /// Number of eventfds.
        count: usize,
    },
    /// `VFIO_DEVICE_RESET`.
    Reset,
    /// A configuration-space write.
    WriteConfig {
        /// Offset in configuration space.
        offset: u64,
        /// The bytes written.
        data: Vec<u8>,
    },
}

/// What a [`Recorder`] answers the next kernel call (`VFIO_DEVICE_PCI_TPH` or
/// `VFIO_DEVICE_FEATURE`) with.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reply {
    /// Success with this return value; the argument is left as sent.
    Return(i32),
    /// Failure with this errno.
    Fail(Errno),
    /// Success (0) after writing `bytes` into the argument at `offset`, as the kernel writes its
    /// answer into the caller's buffer (bytes beyond the argument are dropped).
    Fill {
        /// Where in the argument.
        offset: usize,
        /// What the kernel writes there.
        bytes: Vec<u8>,
    },
}

/// A backend that talks to no kernel: it records every call the client makes and answers the
/// kernel calls from replies queued with [`Recorder::reply`] (success, 0, when none is queued).
/// For unit tests of driver code and for examples: it shows exactly what the client sends, and
/// it checks nothing (the kernel's rules are the kernel's; `tph-emu` runs the kernel model).
///
/// ```
/// use tph_client::backend::{Call, Recorder, Reply};
/// use tph_client::{abi, Revision, TphDevice};
///
/// // GET_CAP answers at offset 8: IV supported, 16 table entries.
/// let mut rec = Recorder::new();
/// rec.reply(Reply::Fill { offset: 8, bytes: vec![abi::MODE_IV, 0, 16, 0] });
/// let mut dev = TphDevice::with_revision(rec, Revision::V7).unwrap();
/// let caps = dev.capabilities().unwrap();
/// assert_eq!((caps.iv, caps.ds, caps.st_table_size), (true, false, 16));
/// assert_eq!(dev.backend().calls(), [Call::Tph(abi::encode_get_cap())]);
/// ```
#[derive(Debug, Default)]
pub struct Recorder {
    calls: Vec<Call>,
    replies: VecDeque<Reply>,
    cpus: Option<u32>,
    config: Vec<u8>,
}

impl Recorder {
    /// A recorder with no CPU count, no configuration space and no queued reply.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reports `cpus` present CPUs (what the client uses to explain EINVAL).
    pub fn with_cpus(mut self, cpus: u32) -> Self {
        self.cpus = Some(cpus);
        self
    }

    /// Configuration space that reads answer from (beyond it, reads fail with EINVAL).
    pub fn with_config(mut self, config: Vec<u8>) -> Self {
        self.config = config;
        self
    }

    /// Queues the answer to the next kernel call.
    pub fn reply(&mut self, reply: Reply) -> &mut Self {
        self.replies.push_back(reply);
        self
    }

    /// Every call made so far, oldest first.
    pub fn calls(&self) -> &[Call] {
        &self.calls
    }

    /// Takes the calls made so far, leaving none.
    pub fn take_calls(&mut self) -> Vec<Call> {
        std::mem::take(&mut self.calls)
    }

    fn answer(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        match self.replies.pop_front() {
            None => Ok(0),
            Some(Reply::Return(rc)) => Ok(rc),
            Some(Reply::Fail(errno)) => Err(errno),
            Some(Reply::Fill { offset, bytes }) => {
                let dst = arg.iter_mut().skip(offset);
                for (d, s) in dst.zip(bytes) {
                    *d = s;
                }
                Ok(0)
            }
        }
    }
}

impl Backend for Recorder {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.calls.push(Call::Tph(arg.to_vec()));
        self.answer(arg)
    }

    fn set_msix(&mut self, start: u32, eventfds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        self.calls.push(Call::SetMsix {
            start,
            count: eventfds.len(),
        });
        Ok(())
    }

    fn reset(&mut self) -> Result<(), Errno> {
        self.calls.push(Call::Reset);
        Ok(())
    }

    fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let start = usize::try_from(offset).map_err(|_| Errno::EINVAL)?;
        let end = start.checked_add(buf.len()).ok_or(Errno::EINVAL)?;
        let src = self.config.get(start..end).ok_or(Errno::EINVAL)?;
        buf.copy_from_slice(src);
        Ok(())
    }

    fn cpu_count(&self) -> Option<u32> {
        self.cpus
    }

    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.calls.push(Call::Feature(arg.to_vec()));
        self.answer(arg)
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.calls.push(Call::WriteConfig {
            offset,
            data: data.to_vec(),
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_are_used_in_order_then_success() {
        let mut r = Recorder::new();
        r.reply(Reply::Fail(Errno::ENODEV))
            .reply(Reply::Fill {
                offset: 2,
                bytes: vec![7, 8, 9],
            })
            .reply(Reply::Return(5));
        let mut arg = [0u8; 4];
        assert_eq!(r.tph_ioctl(&mut arg), Err(Errno::ENODEV));
        assert_eq!(r.tph_ioctl(&mut arg), Ok(0));
        assert_eq!(arg, [0, 0, 7, 8], "bytes beyond the argument are dropped");
        assert_eq!(r.device_feature(&mut arg), Ok(5));
        assert_eq!(r.tph_ioctl(&mut arg), Ok(0));
        assert_eq!(r.calls().len(), 4);
        assert_eq!(r.calls()[2], Call::Feature(vec![0, 0, 7, 8]));
        assert_eq!(r.take_calls().len(), 4);
        assert!(r.calls().is_empty());
    }

    #[test]
    fn config_reads_beyond_the_given_space_fail() {
        let r = Recorder::new().with_config(vec![0x86, 0x80, 0x34, 0x12]);
        let mut id = [0u8; 4];
        assert_eq!(r.read_config(0, &mut id), Ok(()));
        assert_eq!(id, [0x86, 0x80, 0x34, 0x12]);
        assert_eq!(r.read_config(2, &mut id), Err(Errno::EINVAL));
        assert_eq!(r.read_config(u64::MAX, &mut id), Err(Errno::EINVAL));
    }
}
