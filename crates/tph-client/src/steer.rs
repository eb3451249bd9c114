//! Queue steering: the way drivers use TPH, on top of [`TphDevice`].
//!
//! A driver binds each queue (its MSI-X vector in IV mode, its device-specific slot in DS mode) to
//! the CPU that polls it. In IV mode the kernel programs the steering table; in DS mode the helper
//! returns the tag for the driver to write into its queue context. Every kernel call is batched:
//! binding N queues is one SET_ST (IV) or one GET_ST (DS) on v7; on the feature revision one
//! SET per contiguous run of slots (IV) or one GET per memory type (DS).
//!
//! ```
//! use tph_client::steer::{Placement, Queue};
//! let q = Queue::new(0, 3, 5);
//! assert_eq!(q.slot, 3);
//! let p = Placement::Programmed { index: 3 };
//! assert_eq!(p, Placement::Programmed { index: 3 });
//! ```

use std::collections::{BTreeMap, BTreeSet};

use crate::backend::Backend;
use crate::device::{CpuQuery, MemType, Mode, Steer, TphDevice};
use crate::error::Error;

/// One queue to steer.
///
/// `#[non_exhaustive]`: build it with [`Queue::new`].
///
/// ```compile_fail,E0639
/// let q = tph_client::steer::Queue { id: 0, slot: 3, cpu: 5 };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Queue {
    /// The driver's queue number.
    pub id: u16,
    /// Its MSI-X vector (IV mode) or device-specific slot (DS mode).
    pub slot: u16,
    /// The CPU that polls it.
    pub cpu: u32,
}

impl Queue {
    /// Queue `id`, whose MSI-X vector (IV mode) or device-specific slot (DS mode) is `slot`,
    /// polled by `cpu`.
    ///
    /// ```
    /// use tph_client::steer::Queue;
    /// let q = Queue::new(1, 4, 6);
    /// assert_eq!((q.id, q.slot, q.cpu), (1, 4, 6));
    /// ```
    pub const fn new(id: u16, slot: u16, cpu: u32) -> Self {
        Self { id, slot, cpu }
    }
}

/// Where a queue's tag went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Placement {
    /// IV mode: the kernel programmed steering table entry `index`.
    Programmed {
        /// The table index (the queue's vector).
        index: u16,
    },
    /// DS mode: the driver writes `tag` into the queue's context itself.
    Tag {
        /// The steering tag of the queue's CPU.
        tag: u16,
    },
}

/// Binds queues to CPUs on one device and keeps track of them until teardown.
///
/// ```
/// # use tph_client::backend::Backend;
/// # use tph_client::{Errno, Mode, Revision, TphDevice};
/// # #[derive(Debug, Default)]
/// # struct Ok0;
/// # impl Backend for Ok0 {
/// #     fn tph_ioctl(&mut self, _: &mut [u8]) -> Result<i32, Errno> { Ok(0) }
/// #     fn set_msix(&mut self, _: u32, _: &[std::os::fd::BorrowedFd<'_>]) -> Result<(), Errno> { Ok(()) }
/// #     fn reset(&mut self) -> Result<(), Errno> { Ok(()) }
/// #     fn read_config(&self, _: u64, _: &mut [u8]) -> Result<(), Errno> { Ok(()) }
/// #     fn cpu_count(&self) -> Option<u32> { Some(4) }
/// # }
/// use tph_client::steer::{Placement, Queue, QueueSteering};
/// let dev = TphDevice::with_revision(Ok0, Revision::V7).unwrap();
/// let mut s = QueueSteering::start(dev, Mode::Iv).unwrap();
/// let placed = s.bind(&[Queue::new(0, 0, 1), Queue::new(1, 1, 2)]).unwrap();
/// assert_eq!(placed[1], Placement::Programmed { index: 1 });
/// s.retarget(1, 3).unwrap();
/// assert_eq!(s.cpu_of(1), Some(3));
/// let _dev = s.teardown().unwrap();
/// ```
#[derive(Debug)]
pub struct QueueSteering<B: Backend> {
    dev: TphDevice<B>,
    mode: Mode,
    mem: MemType,
    queues: BTreeMap<u16, Queue>,
    /// Every table slot a SET_ST was sent for (IV mode) and not cleared since: teardown clears
    /// them all, even after a failed call left the kernel's view unknown.
    programmed: BTreeSet<u16>,
}

/// [`QueueSteering::teardown`] failed: the error, and the device given back (nothing lost).
#[non_exhaustive]
pub struct TeardownError<B: Backend> {
    /// The first failure (clearing the entries, or disabling TPH).
    pub error: Error,
    /// The device, with whatever state the failed calls left.
    pub device: TphDevice<B>,
}

impl<B: Backend> std::fmt::Debug for TeardownError<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeardownError")
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

impl<B: Backend> std::fmt::Display for TeardownError<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "queue steering teardown failed: {}", self.error)
    }
}

impl<B: Backend> std::error::Error for TeardownError<B> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<B: Backend> QueueSteering<B> {
    /// Enables TPH in `mode` on `dev` (one ENABLE) and starts with no queues bound.
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder};
    /// # use tph_client::{abi, Mode, Revision, TphDevice};
    /// use tph_client::steer::QueueSteering;
    /// let dev = TphDevice::with_revision(Recorder::new(), Revision::V7).unwrap();
    /// let mut s = QueueSteering::start(dev, Mode::Iv).unwrap();
    /// assert_eq!(s.mode(), Mode::Iv);
    /// assert_eq!(s.device().backend().calls(), [Call::Tph(abi::encode_enable(abi::MODE_IV))]);
    /// ```
    pub fn start(mut dev: TphDevice<B>, mode: Mode) -> Result<Self, Error> {
        dev.enable(mode)?;
        Ok(Self {
            dev,
            mode,
            mem: MemType::Volatile,
            queues: BTreeMap::new(),
            programmed: BTreeSet::new(),
        })
    }

    /// The mode in use (see [`QueueSteering::start`]).
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The CPU queue `id` is bound to (see the type's example).
    pub fn cpu_of(&self, id: u16) -> Option<u32> {
        self.queues.get(&id).map(|q| q.cpu)
    }

    /// The device underneath.
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Mode, Revision, TphDevice};
    /// # use tph_client::steer::QueueSteering;
    /// # let dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// let mut s = QueueSteering::start(dev, Mode::Iv).unwrap();
    /// s.device().backend_mut().reply(Reply::Fill { offset: 8, bytes: vec![abi::MODE_IV, 0, 16, 0] });
    /// assert_eq!(s.device().capabilities().unwrap().st_table_size, 16);
    /// ```
    pub fn device(&mut self) -> &mut TphDevice<B> {
        &mut self.dev
    }

    /// Binds `queues` in one batch ([`TphDevice::set_entries`] says how many calls that is per
    /// kernel revision); all or nothing. Returns each queue's placement in order.
    ///
    /// A queue already bound is re-bound: in IV mode its old slot is cleared in the same call
    /// when it moves to another slot. Refused before any call: the same queue id twice, the same
    /// slot for two queues (in this call, or taken by another bound queue), or CPU `0xFFFFFFFF`.
    ///
    /// In DS mode the placements are tags for the driver to write:
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Mode, Revision, TphDevice};
    /// # use tph_client::steer::QueueSteering;
    /// # let dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// use tph_client::steer::{Placement, Queue};
    /// let mut s = QueueSteering::start(dev, Mode::Ds).unwrap();
    /// // GET_ST: the kernel writes CPU 2's tag into the entry's `st` field.
    /// let st = (abi::ENTS_OFFSET + abi::ENTRY_ST_OFFSET) as usize;
    /// s.device().backend_mut().reply(Reply::Fill { offset: st, bytes: vec![0x21, 0] });
    /// let placed = s.bind(&[Queue::new(0, 0, 2)]).unwrap();
    /// assert_eq!(placed, [Placement::Tag { tag: 0x21 }]);
    /// ```
    pub fn bind(&mut self, queues: &[Queue]) -> Result<Vec<Placement>, Error> {
        self.check_bind(queues)?;
        let vacated: Vec<u16> = queues
            .iter()
            .filter_map(|q| self.queues.get(&q.id).map(|old| old.slot))
            .filter(|slot| !queues.iter().any(|q| q.slot == *slot))
            .collect();
        let placed = self.place(queues, &vacated)?;
        for q in queues {
            self.queues.insert(q.id, *q);
        }
        Ok(placed)
    }

    /// The refusals of [`QueueSteering::bind`], checked before any kernel call.
    fn check_bind(&self, queues: &[Queue]) -> Result<(), Error> {
        let (mut ids, mut slots) = (BTreeSet::new(), BTreeSet::new());
        for q in queues {
            if q.cpu == crate::abi::CPU_CLEAR {
                return Err(Error::ClearValueAsCpu(q.cpu));
            }
            if !ids.insert(q.id) {
                return Err(Error::DuplicateQueue(q.id));
            }
            if !slots.insert(q.slot) {
                return Err(Error::DuplicateSlot(q.slot));
            }
        }
        let taken = self
            .queues
            .values()
            .find(|b| slots.contains(&b.slot) && !ids.contains(&b.id));
        match taken {
            Some(b) => Err(Error::DuplicateSlot(b.slot)),
            None => Ok(()),
        }
    }

    /// Moves queue `id` to `cpu` (its thread moved): one kernel call on either revision. See the
    /// type's example.
    pub fn retarget(&mut self, id: u16, cpu: u32) -> Result<Placement, Error> {
        let Some(old) = self.queues.get(&id).copied() else {
            return Err(Error::UnknownQueue(id));
        };
        if cpu == crate::abi::CPU_CLEAR {
            return Err(Error::ClearValueAsCpu(cpu));
        }
        let moved = Queue { cpu, ..old };
        let placed = self.place(&[moved], &[])?;
        self.queues.insert(id, moved);
        let answered = placed.len();
        <[Placement; 1]>::try_from(placed)
            .map(|[one]| one)
            .map_err(|_| Error::ShortAnswer {
                op: "placing a queue",
                asked: 1,
                answered,
            })
    }

    /// Clears every entry it ever programmed (one batch, IV mode), then disables TPH (one
    /// DISABLE) even when the clear failed. When a failed table write made the kernel turn TPH
    /// off (the core does that), the entries written before it are still in the table: TPH is
    /// enabled again just to clear them. On failure the device comes back in the error.
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Mode, Revision, TphDevice};
    /// # use tph_client::steer::QueueSteering;
    /// # let dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// use tph_client::steer::Queue;
    /// let mut s = QueueSteering::start(dev, Mode::Iv).unwrap();
    /// s.bind(&[Queue::new(0, 4, 1)]).unwrap();
    /// let dev = s.teardown().unwrap();
    /// // The last two calls: the entry cleared, then TPH disabled.
    /// let clear = abi::encode_st(abi::OP_SET_ST, &[abi::TphEntry::new(abi::CPU_CLEAR, 0, 4)]).unwrap();
    /// let calls = dev.backend().calls();
    /// assert_eq!(calls[calls.len() - 2..], [Call::Tph(clear), Call::Tph(abi::encode_disable())]);
    /// ```
    pub fn teardown(mut self) -> Result<TphDevice<B>, TeardownError<B>> {
        let slots: Vec<u16> = self.programmed.iter().copied().collect();
        let cleared = if slots.is_empty() {
            Ok(())
        } else if self.dev.believed_mode().is_none() {
            // The kernel only writes entries while TPH is on.
            self.dev
                .enable(self.mode)
                .and_then(|()| self.dev.clear_entries(&slots))
        } else {
            self.dev.clear_entries(&slots)
        };
        let disabled = self.dev.disable();
        match cleared.and(disabled) {
            Ok(()) => Ok(self.dev),
            Err(error) => Err(TeardownError {
                error,
                device: self.dev,
            }),
        }
    }

    fn place(&mut self, queues: &[Queue], vacated: &[u16]) -> Result<Vec<Placement>, Error> {
        match self.mode {
            Mode::Iv => {
                let steer: Vec<Steer> = queues
                    .iter()
                    .map(|q| Steer {
                        index: q.slot,
                        cpu: q.cpu,
                        mem: self.mem,
                    })
                    .collect();
                // Counted as programmed before the call: a failure may leave any of them written.
                self.programmed.extend(queues.iter().map(|q| q.slot));
                self.dev.program(&steer, vacated)?;
                for slot in vacated {
                    self.programmed.remove(slot);
                }
                Ok(queues
                    .iter()
                    .map(|q| Placement::Programmed { index: q.slot })
                    .collect())
            }
            Mode::Ds => {
                let cpus: Vec<CpuQuery> = queues
                    .iter()
                    .map(|q| CpuQuery {
                        cpu: q.cpu,
                        mem: self.mem,
                    })
                    .collect();
                let tags = self.dev.steering_tags(&cpus)?;
                if tags.len() != queues.len() {
                    return Err(Error::ShortAnswer {
                        op: "GET_ST",
                        asked: queues.len(),
                        answered: tags.len(),
                    });
                }
                Ok(tags.into_iter().map(|tag| Placement::Tag { tag }).collect())
            }
        }
    }
}
