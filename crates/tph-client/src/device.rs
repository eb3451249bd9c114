//! The revision-neutral safe API: one handle per VFIO device.

use std::collections::BTreeMap;
use std::fmt;
use std::os::fd::BorrowedFd;

use crate::backend::Backend;
use crate::error::{Errno, Error};
use crate::probe::{Probe, Revision};
use crate::{feature, v7};
use tph_abi::vfio::MSIX_IRQ_INDEX;
use tph_abi::{self as abi, TphEntry};
use tph_regs::msix::MsixCap;

/// A TPH mode a user can ask for.
///
/// ```
/// assert_eq!("ds".parse::<tph_client::Mode>().ok(), Some(tph_client::Mode::Ds));
/// assert_eq!(tph_client::Mode::Iv.to_string(), "IV");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Mode {
    /// Interrupt Vector mode: the kernel programs the steering table per vector.
    Iv,
    /// Device Specific mode: the driver places tags itself (needs the unsafe module parameter).
    Ds,
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Iv => "IV",
            Mode::Ds => "DS",
        })
    }
}

impl std::str::FromStr for Mode {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "iv" | "IV" => Ok(Mode::Iv),
            "ds" | "DS" => Ok(Mode::Ds),
            _ => Err(crate::Error::unknown_name("mode", s, "iv or ds")),
        }
    }
}

pub use tph_abi::MemType;

/// What the kernel offers for this device.
///
/// ```
/// let c = tph_client::Capabilities::new(true, false, 8);
/// assert!(c.iv && c.st_table_size == 8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Capabilities {
    /// Interrupt Vector mode can be enabled.
    pub iv: bool,
    /// Device Specific mode can be enabled (only shown when the host allows it).
    pub ds: bool,
    /// Steering table entries the kernel can program (0: no table).
    pub st_table_size: u16,
}

impl Capabilities {
    /// What a kernel offers: IV mode, DS mode, the table size (for tests and fakes; a driver
    /// gets them from [`TphDevice::capabilities`]).
    pub fn new(iv: bool, ds: bool, st_table_size: u16) -> Self {
        Self {
            iv,
            ds,
            st_table_size,
        }
    }
}

/// One steering table entry to program: table `index` gets the tag of `cpu`.
///
/// `#[non_exhaustive]`: build it with [`Steer::new`] (volatile memory) and
/// [`Steer::with_mem`].
///
/// ```
/// use tph_client::{MemType, Steer};
/// let s = Steer::new(3, 5).with_mem(MemType::Persistent);
/// assert_eq!((s.index, s.cpu, s.mem.uapi()), (3, 5, 1));
/// ```
///
/// A struct literal does not compile outside this crate:
///
/// ```compile_fail,E0639
/// let s = tph_client::Steer { index: 3, cpu: 5, mem: tph_client::MemType::Volatile };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Steer {
    /// Steering table index (the MSI-X vector for a table in MSI-X).
    pub index: u16,
    /// The CPU whose tag goes there.
    pub cpu: u32,
    /// Memory type of the tag.
    pub mem: MemType,
}

impl Steer {
    /// Table entry `index` gets the tag of `cpu` for volatile memory.
    ///
    /// ```
    /// use tph_client::{MemType, Steer};
    /// let s = Steer::new(0, 3);
    /// assert_eq!((s.index, s.cpu, s.mem), (0, 3, MemType::Volatile));
    /// ```
    pub const fn new(index: u16, cpu: u32) -> Self {
        Self {
            index,
            cpu,
            mem: MemType::Volatile,
        }
    }

    /// The same entry with the tag for memory type `mem`.
    ///
    /// ```
    /// use tph_client::{MemType, Steer};
    /// assert_eq!(Steer::new(0, 3).with_mem(MemType::Persistent).mem, MemType::Persistent);
    /// ```
    #[must_use]
    pub const fn with_mem(mut self, mem: MemType) -> Self {
        self.mem = mem;
        self
    }
}

/// A CPU whose tag to fetch.
///
/// `#[non_exhaustive]`: build it with [`CpuQuery::new`] (volatile memory) and
/// [`CpuQuery::with_mem`].
///
/// ```
/// use tph_client::{CpuQuery, MemType};
/// let q = CpuQuery::new(2);
/// assert_eq!((q.cpu, q.mem), (2, MemType::Volatile));
/// ```
///
/// A struct literal does not compile outside this crate:
///
/// ```compile_fail,E0639
/// let q = tph_client::CpuQuery { cpu: 2, mem: tph_client::MemType::Volatile };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CpuQuery {
    /// The logical CPU.
    pub cpu: u32,
    /// Memory type of the tag.
    pub mem: MemType,
}

impl CpuQuery {
    /// The tag of `cpu` for volatile memory.
    ///
    /// ```
    /// use tph_client::{CpuQuery, MemType};
    /// assert_eq!(CpuQuery::new(7).mem, MemType::Volatile);
    /// ```
    pub const fn new(cpu: u32) -> Self {
        Self {
            cpu,
            mem: MemType::Volatile,
        }
    }

    /// The same query for memory type `mem`.
    ///
    /// ```
    /// use tph_client::{CpuQuery, MemType};
    /// let q = CpuQuery::new(7).with_mem(MemType::Persistent);
    /// assert_eq!((q.cpu, q.mem), (7, MemType::Persistent));
    /// ```
    #[must_use]
    pub const fn with_mem(mut self, mem: MemType) -> Self {
        self.mem = mem;
        self
    }
}

/// The errno a table write is refused with in validation, before any hardware write.
pub(crate) const SET_VALIDATION: [i32; 5] = [
    libc::EINVAL,
    libc::ENXIO,
    libc::ENODEV,
    libc::EOPNOTSUPP,
    libc::ENOTTY,
];

/// What the client knows about the device, used to explain refusals.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known {
    pub caps: Option<Capabilities>,
    pub mode: Option<Mode>,
    pub msix: Option<u32>,
    /// What this handle last programmed at each table index (CPU, UAPI memory type;
    /// `CPU_CLEAR` for a cleared entry): what a batch that fails part-way puts back. An index
    /// missing here holds a value this handle never wrote; it is put back as cleared (ST 0).
    pub table: BTreeMap<u16, (u32, u8)>,
}

/// What the client knows of MSI-X.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MsixState {
    Off,
    /// On with this many vectors (this handle enabled them).
    On(u32),
    /// On (or unknown) with a vector count this handle did not set.
    OnUnknown,
}

/// A safe handle over one VFIO device's TPH interface.
///
/// ```
/// use tph_client::{Probe, Revision, TphDevice};
/// # use tph_client::{backend::Backend, Errno};
/// # #[derive(Debug)]
/// # struct Nothing;
/// # impl Backend for Nothing {
/// #     fn tph_ioctl(&mut self, _: &mut [u8]) -> Result<i32, Errno> { Err(Errno(25)) }
/// #     fn set_msix(&mut self, _: u32, _: &[std::os::fd::BorrowedFd<'_>]) -> Result<(), Errno> { Ok(()) }
/// #     fn reset(&mut self) -> Result<(), Errno> { Ok(()) }
/// #     fn read_config(&self, _: u64, _: &mut [u8]) -> Result<(), Errno> { Ok(()) }
/// #     fn cpu_count(&self) -> Option<u32> { None }
/// # }
/// // Without evidence of a v7 kernel, nothing is ever sent.
/// let err = TphDevice::with_probe(Nothing, &Probe::new("/nonexistent")).unwrap_err();
/// assert!(err.to_string().contains("no VFIO TPH interface"));
/// ```
#[derive(Debug)]
pub struct TphDevice<B: Backend> {
    backend: B,
    revision: Revision,
    known: Known,
    feature: feature::Feature,
}

impl<B: Backend> TphDevice<B> {
    /// Probes the kernel revision (without any ioctl) and wraps `backend`.
    ///
    /// Refuses with [`Error::NoInterface`] unless the probe finds a revision this client speaks.
    ///
    /// ```
    /// # use tph_client::backend::Recorder;
    /// use tph_client::{Probe, Revision, TphDevice};
    /// let probe = Probe::new("/sys").with_override(Revision::V7);
    /// let dev = TphDevice::with_probe(Recorder::new(), &probe).unwrap();
    /// assert_eq!(dev.revision(), Revision::V7);
    /// assert!(dev.backend().calls().is_empty(), "probing sends nothing");
    /// ```
    pub fn with_probe(backend: B, probe: &Probe) -> Result<Self, Error> {
        Self::with_revision(backend, probe.run().revision)
    }

    /// Wraps `backend` for a kernel known to speak `revision`.
    ///
    /// `Revision::Unknown` is refused: nothing is ever sent to a kernel nobody identified.
    ///
    /// ```
    /// # use tph_client::backend::Recorder;
    /// use tph_client::{Revision, TphDevice};
    /// assert!(TphDevice::with_revision(Recorder::new(), Revision::Unknown).is_err());
    /// ```
    pub fn with_revision(backend: B, revision: Revision) -> Result<Self, Error> {
        match revision {
            Revision::V7 | Revision::Feature => Ok(Self {
                backend,
                revision,
                known: Known::default(),
                feature: feature::Feature::default(),
            }),
            Revision::Unknown => Err(Error::NoInterface { revision }),
        }
    }

    /// Uses `number` as the `VFIO_DEVICE_FEATURE` number of TPH_ST (feature revision only;
    /// default `tph_abi::FEATURE_TPH_ST`, 13, which four pending series claim). The number is
    /// confirmed with `VFIO_DEVICE_FEATURE_PROBE` before the first call that uses it.
    ///
    /// ```
    /// # use tph_client::backend::Recorder;
    /// use tph_client::{Revision, TphDevice};
    /// let dev = TphDevice::with_revision(Recorder::new(), Revision::Feature).unwrap();
    /// let dev = dev.with_feature_number(14);
    /// assert_eq!(dev.feature_number(), 14);
    /// ```
    pub fn with_feature_number(mut self, number: u16) -> Self {
        self.feature = feature::Feature {
            number: u32::from(number),
            confirmed: 0,
        };
        self
    }

    /// The `VFIO_DEVICE_FEATURE` number of TPH_ST this handle uses (feature revision).
    pub fn feature_number(&self) -> u32 {
        self.feature.number
    }

    /// The kernel revision this handle speaks.
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// assert_eq!(dev.revision(), Revision::V7);
    /// ```
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The backend below (for emulation-only extras such as traces).
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// dev.capabilities().unwrap();
    /// assert_eq!(dev.backend().calls(), [Call::Tph(abi::encode_get_cap())]);
    /// ```
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend below, mutably.
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// dev.backend_mut().reply(Reply::Fail(Errno::ENODEV));
    /// assert!(dev.capabilities().is_err());
    /// ```
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Unwraps the backend.
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// dev.disable().unwrap();
    /// let recorder = dev.into_backend();
    /// assert_eq!(recorder.calls(), [Call::Tph(abi::encode_disable())]);
    /// ```
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// The modes and table size the kernel offers (v7: one GET_CAP; feature revision: a
    /// config-region read of the capability and, once per handle, one PROBE).
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// // The kernel answers GET_CAP at offset 8: IV supported, 16 table entries.
    /// dev.backend_mut().reply(Reply::Fill { offset: 8, bytes: vec![abi::MODE_IV, 0, 16, 0] });
    /// let caps = dev.capabilities().unwrap();
    /// assert_eq!((caps.iv, caps.ds, caps.st_table_size), (true, false, 16));
    /// ```
    pub fn capabilities(&mut self) -> Result<Capabilities, Error> {
        let caps = match self.revision {
            Revision::Feature => feature::get_cap(&mut self.backend, &mut self.feature)?,
            _ => v7::get_cap(&mut self.backend)?,
        };
        self.known.caps = Some(caps);
        Ok(caps)
    }

    /// Enables TPH in `mode` (v7: one ENABLE; feature revision: one Control write through the
    /// config region, read back).
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// use tph_client::{Error, Mode};
    /// dev.enable(Mode::Iv).unwrap();
    /// assert_eq!(dev.backend().calls(), [Call::Tph(abi::encode_enable(abi::MODE_IV))]);
    /// // A second ENABLE: the kernel answers EBUSY.
    /// dev.backend_mut().reply(Reply::Fail(Errno::EBUSY));
    /// assert!(matches!(dev.enable(Mode::Iv), Err(Error::AlreadyEnabled { .. })));
    /// ```
    pub fn enable(&mut self, mode: Mode) -> Result<(), Error> {
        match self.revision {
            Revision::Feature => feature::enable(&mut self.backend, mode)?,
            _ => v7::enable(&mut self.backend, mode, &self.known)?,
        }
        self.known.mode = Some(mode);
        Ok(())
    }

    /// Disables TPH (v7: one DISABLE; feature revision: a Control write of 0; also fine when
    /// already off).
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// dev.enable(tph_client::Mode::Iv).unwrap();
    /// dev.disable().unwrap();
    /// dev.disable().unwrap(); // also fine when already off
    /// assert_eq!(dev.backend().calls().last(), Some(&Call::Tph(abi::encode_disable())));
    /// ```
    pub fn disable(&mut self) -> Result<(), Error> {
        match self.revision {
            Revision::Feature => feature::disable(&mut self.backend)?,
            _ => v7::disable(&mut self.backend)?,
        }
        self.known.mode = None;
        Ok(())
    }

    /// The steering tags of `cpus`, in order (DS mode only; v7: one GET_ST; feature revision:
    /// one GET per memory type in the batch).
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// use tph_client::{CpuQuery, Mode};
    /// dev.enable(Mode::Ds).unwrap();
    /// // The kernel writes each tag into the `st` field of its entry.
    /// let st = (abi::ENTS_OFFSET + abi::ENTRY_ST_OFFSET) as usize;
    /// dev.backend_mut().reply(Reply::Fill { offset: st, bytes: vec![0x12, 0] });
    /// let q = [CpuQuery::new(1)];
    /// assert_eq!(dev.steering_tags(&q).unwrap(), [0x12]);
    /// ```
    pub fn steering_tags(&mut self, cpus: &[CpuQuery]) -> Result<Vec<u16>, Error> {
        let entries: Vec<TphEntry> = cpus
            .iter()
            .map(|q| TphEntry {
                cpu: q.cpu,
                mem_type: q.mem.uapi(),
                ..TphEntry::default()
            })
            .collect();
        match self.revision {
            Revision::Feature => {
                feature::get_st(&mut self.backend, &mut self.feature, &entries, &self.known)
            }
            _ => v7::get_st(&mut self.backend, &entries, &self.known),
        }
    }

    /// Programs `entries` into the steering table, all or nothing.
    ///
    /// Calls: v7 sends one SET_ST, which the kernel validates whole before its first write. The
    /// feature revision writes contiguous entries of one memory type per call, so the batch is
    /// one SET per contiguous run: with more than one run the client first checks the whole
    /// batch as the kernel would (table size, present CPUs, enabled MSI-X vectors, as far as it
    /// knows them) and sends nothing when that finds a refusal; when the kernel still refuses a
    /// later run, the runs already written get back what this handle last programmed there
    /// (tag 0 where it never did). After a failed hardware write (not a refusal) the core has
    /// turned TPH off on either revision ([`TphDevice::believed_mode`] says so).
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// use tph_client::{Mode, Steer};
    /// dev.enable(Mode::Iv).unwrap();
    /// dev.set_entries(&[Steer::new(0, 1)]).unwrap();
    /// // v7: one SET_ST with the entry (CPU 1, volatile, index 0).
    /// let sent = abi::encode_st(abi::OP_SET_ST, &[abi::TphEntry::new(1, 0, 0)]).unwrap();
    /// assert_eq!(dev.backend().calls().last(), Some(&Call::Tph(sent)));
    /// ```
    ///
    /// `0xFFFFFFFF` is the ABI's clear value, not a CPU: such an entry is refused before anything
    /// is sent ([`Error::ClearValueAsCpu`]); clearing is [`TphDevice::clear_entries`].
    pub fn set_entries(&mut self, entries: &[Steer]) -> Result<(), Error> {
        self.program(entries, &[])
    }

    /// Programs `set` and clears `clear` in one batch (all or nothing, calls as
    /// [`TphDevice::set_entries`]), `set` first:
    /// what a VMM re-targeting a vCPU's entries needs (some move, some are cleared).
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// use tph_client::{Mode, Steer};
    /// dev.enable(Mode::Iv).unwrap();
    /// dev.program(&[Steer::new(0, 3)], &[1]).unwrap();
    /// // v7: one SET_ST, the set entry first, then the cleared one.
    /// let entries = [abi::TphEntry::new(3, 0, 0), abi::TphEntry::new(abi::CPU_CLEAR, 0, 1)];
    /// let sent = abi::encode_st(abi::OP_SET_ST, &entries).unwrap();
    /// assert_eq!(dev.backend().calls().last(), Some(&Call::Tph(sent)));
    /// ```
    pub fn program(&mut self, set: &[Steer], clear: &[u16]) -> Result<(), Error> {
        if let Some(s) = set.iter().find(|s| s.cpu == abi::CPU_CLEAR) {
            return Err(Error::ClearValueAsCpu(s.cpu));
        }
        let steer = set.iter().map(|s| TphEntry {
            cpu: s.cpu,
            mem_type: s.mem.uapi(),
            index: s.index,
            ..TphEntry::default()
        });
        let cleared = clear.iter().map(|&index| TphEntry {
            cpu: abi::CPU_CLEAR,
            index,
            ..TphEntry::default()
        });
        let raw: Vec<TphEntry> = steer.chain(cleared).collect();
        self.set_raw_entries(&raw)
    }

    /// Clears the entries at `indexes` to steering tag 0 (entries with `cpu = 0xFFFFFFFF`,
    /// calls as [`TphDevice::set_entries`]).
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// use tph_client::Mode;
    /// dev.enable(Mode::Iv).unwrap();
    /// dev.clear_entries(&[2]).unwrap();
    /// let sent = abi::encode_st(abi::OP_SET_ST, &[abi::TphEntry::new(abi::CPU_CLEAR, 0, 2)]).unwrap();
    /// assert_eq!(dev.backend().calls().last(), Some(&Call::Tph(sent)));
    /// ```
    pub fn clear_entries(&mut self, indexes: &[u16]) -> Result<(), Error> {
        self.program(&[], indexes)
    }

    fn set_raw_entries(&mut self, raw: &[TphEntry]) -> Result<(), Error> {
        let r = match self.revision {
            Revision::Feature => {
                feature::set_st(&mut self.backend, &mut self.feature, raw, &self.known)
            }
            _ => v7::set_st(&mut self.backend, raw, &self.known),
        };
        match &r {
            Ok(()) => {
                for e in raw {
                    self.known.table.insert(e.index, (e.cpu, e.mem_type));
                }
            }
            Err(e) if e.errno().is_some_and(|n| !SET_VALIDATION.contains(&n.0)) => {
                // A refusal in validation changes nothing; any other failure is a failed
                // hardware write, after which the core has disabled TPH entirely [core] and
                // the batch's entries hold values nobody can name.
                self.known.mode = None;
                for e in raw {
                    self.known.table.remove(&e.index);
                }
            }
            Err(_) => {}
        }
        r
    }

    /// Wires MSI-X vectors `0..eventfds.len()`, and only those, to the caller's eventfds through
    /// the kernel (`VFIO_DEVICE_SET_IRQS`), as IV mode with the table in MSI-X needs. The caller
    /// keeps owning the eventfds and receives the interrupts; no eventfds disables MSI-X
    /// ([`TphDevice::disable_msix`]). A driver that sets MSI-X up itself tells the client with
    /// [`TphDevice::note_msix_vectors`] instead.
    ///
    /// The kernel updates an enabled block in place: vectors past it stay allocated, so fewer
    /// vectors than before take MSI-X off first; more vectors than before grow the block in
    /// place where the kernel allocates vectors dynamically, and take MSI-X off first where
    /// `VFIO_DEVICE_GET_IRQ_INFO` says `NORESIZE` (Linux 6.1; also assumed when the backend
    /// cannot ask).
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// # use std::os::fd::AsFd;
    /// let irqs: Vec<_> = (0..4).map(|_| tph_client::backend::eventfd().unwrap()).collect();
    /// let fds: Vec<_> = irqs.iter().map(|f| f.as_fd()).collect();
    /// dev.enable_msix(&fds).unwrap();
    /// assert!(dev.backend().calls().contains(&Call::SetMsix { start: 0, count: 4 }));
    /// ```
    pub fn enable_msix(&mut self, eventfds: &[BorrowedFd<'_>]) -> Result<(), Error> {
        let count = u32::try_from(eventfds.len()).map_err(|_| Error::Backend {
            op: "enabling MSI-X vectors",
            errno: Errno::EINVAL,
        })?;
        if count == 0 {
            return self.disable_msix();
        }
        let off_first = match self.msix_state() {
            MsixState::Off => false,
            MsixState::On(k) => k > count || (k < count && self.msix_noresize()),
            // A count this handle did not set: the kernel enables or updates in place.
            MsixState::OnUnknown => false,
        };
        if off_first {
            self.send_msix_disable()?;
        }
        self.backend
            .set_msix(0, eventfds)
            .map_err(|errno| Error::Backend {
                op: "enabling MSI-X vectors",
                errno,
            })?;
        self.known.msix = Some(count);
        Ok(())
    }

    /// Disables MSI-X through the kernel (`DATA_NONE` with count 0), only when it is on: the
    /// kernel refuses that call with EINVAL while MSI-X is off. Whether it is on comes from what
    /// this handle enabled or, when it does not know, from MSI-X Message Control in config
    /// space.
    pub fn disable_msix(&mut self) -> Result<(), Error> {
        if !self.msix_on() {
            self.known.msix = Some(0);
            return Ok(());
        }
        self.send_msix_disable()
    }

    fn send_msix_disable(&mut self) -> Result<(), Error> {
        self.backend
            .set_msix(0, &[])
            .map_err(|errno| Error::Backend {
                op: "disabling MSI-X",
                errno,
            })?;
        self.known.msix = Some(0);
        Ok(())
    }

    /// Whether MSI-X is on, as far as this handle enabled it.
    fn msix_state(&self) -> MsixState {
        match self.known.msix {
            Some(0) => MsixState::Off,
            Some(k) => MsixState::On(k),
            None => MsixState::OnUnknown,
        }
    }

    /// Whether MSI-X is on: what this handle enabled, else the Enable bit of Message Control
    /// (unreadable: taken as on, so the kernel decides).
    fn msix_on(&self) -> bool {
        if self.msix_state() != MsixState::OnUnknown {
            return self.msix_state() != MsixState::Off;
        }
        let mut cfg = [0u8; 256];
        let cap = self
            .backend
            .read_config(0, &mut cfg)
            .ok()
            .and(MsixCap::find(&cfg));
        cap.is_none_or(|c| c.enabled)
    }

    /// Whether the kernel says the MSI-X block cannot grow while enabled (`NORESIZE`), or
    /// cannot be asked.
    fn msix_noresize(&self) -> bool {
        self.backend
            .irq_info(MSIX_IRQ_INDEX)
            .map_or(true, |info| info.noresize())
    }

    /// Tells the client that the driver enabled MSI-X vectors `0..count` itself (its own
    /// `VFIO_DEVICE_SET_IRQS`), so a refusal for a vector beyond them is explained as such. The
    /// kernel still checks every vector a table write names.
    pub fn note_msix_vectors(&mut self, count: u32) {
        self.known.msix = Some(count);
    }

    /// Function-level reset of the device (TPH state survives when the kernel enabled it).
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// dev.enable(tph_client::Mode::Iv).unwrap();
    /// dev.reset().unwrap();
    /// assert_eq!(dev.backend().calls().last(), Some(&Call::Reset));
    /// ```
    pub fn reset(&mut self) -> Result<(), Error> {
        if self.known.mode.is_none() {
            // Nothing restores a table the kernel did not save: its values are the device's.
            self.known.table.clear();
        }
        self.backend.reset().map_err(|errno| Error::Backend {
            op: "device reset",
            errno,
        })
    }

    /// Reads `buf.len()` bytes of configuration space at `offset`.
    ///
    /// ```
    /// # use tph_client::backend::Recorder;
    /// # use tph_client::{Revision, TphDevice};
    /// let recorder = Recorder::new().with_config(vec![0x86, 0x80, 0x34, 0x12]);
    /// let dev = TphDevice::with_revision(recorder, Revision::V7).unwrap();
    /// let mut id = [0u8; 4];
    /// dev.read_config(0, &mut id).unwrap();
    /// assert_eq!(id, [0x86, 0x80, 0x34, 0x12]);
    /// ```
    pub fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.backend
            .read_config(offset, buf)
            .map_err(|errno| Error::Backend {
                op: "reading configuration space",
                errno,
            })
    }

    /// Sends `arg` unchanged as the v7 TPH ioctl argument (for diagnostics); the kernel's
    /// answer. On a kernel of another revision nothing is sent: ENOTTY.
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// dev.backend_mut().reply(Reply::Fill { offset: 10, bytes: vec![16, 0] });
    /// let mut arg = abi::encode_get_cap();
    /// assert_eq!(dev.raw_ioctl(&mut arg), Ok(0));
    /// assert_eq!(arg[10], 16); // st_table_sz
    /// ```
    pub fn raw_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        if self.revision != Revision::V7 {
            // 0x3B7A means something else (or nothing) on other kernels: never send it there.
            return Err(Errno(libc::ENOTTY));
        }
        self.backend.tph_ioctl(arg)
    }

    /// The mode the client believes TPH is enabled in (`None`: off, or a failed table write made
    /// the kernel turn it off). A belief, not a register read: another program or a reset the
    /// client did not see can change the device underneath.
    pub fn believed_mode(&self) -> Option<Mode> {
        self.known.mode
    }

    /// Forgets what the client believed about the device (after a close and reopen).
    ///
    /// ```
    /// # use tph_client::backend::{Call, Recorder, Reply};
    /// # use tph_client::{abi, Errno, Revision, TphDevice};
    /// # let mut dev = TphDevice::with_revision(Recorder::new().with_cpus(8), Revision::V7).unwrap();
    /// dev.enable(tph_client::Mode::Iv).unwrap();
    /// dev.forget_state();
    /// assert_eq!(dev.believed_mode(), None);
    /// ```
    pub fn forget_state(&mut self) {
        self.known = Known::default();
        self.feature.confirmed = 0;
    }
}
