//! The revision-neutral safe API: one handle per VFIO device.

use std::fmt;

use crate::abi::{self, TphEntry};
use crate::backend::Backend;
use crate::error::{Errno, Error};
use crate::probe::{Probe, Revision};
use crate::v7;

/// A TPH mode a user can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "iv" | "IV" => Ok(Mode::Iv),
            "ds" | "DS" => Ok(Mode::Ds),
            _ => Err(format!("unknown mode {s:?} (iv or ds)")),
        }
    }
}

/// The memory type a steering tag is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MemType {
    /// Volatile memory (`vm`).
    #[default]
    Volatile,
    /// Persistent memory (`pm`).
    Persistent,
}

impl MemType {
    /// The UAPI encoding (0 volatile, 1 persistent).
    ///
    /// ```
    /// assert_eq!(tph_client::MemType::Persistent.uapi(), 1);
    /// ```
    pub fn uapi(self) -> u8 {
        match self {
            MemType::Volatile => 0,
            MemType::Persistent => 1,
        }
    }
}

/// What the kernel offers for this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Interrupt Vector mode can be enabled.
    pub iv: bool,
    /// Device Specific mode can be enabled (only shown when the host allows it).
    pub ds: bool,
    /// Steering table entries the kernel can program (0: no table).
    pub st_table_size: u16,
}

/// One steering table entry to program: table `index` gets the tag of `cpu`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Steer {
    /// Steering table index (the MSI-X vector for a table in MSI-X).
    pub index: u16,
    /// The CPU whose tag goes there.
    pub cpu: u32,
    /// Memory type of the tag.
    pub mem: MemType,
}

/// A CPU whose tag to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuQuery {
    /// The logical CPU.
    pub cpu: u32,
    /// Memory type of the tag.
    pub mem: MemType,
}

/// What the client knows about the device, used to explain refusals.
#[derive(Debug, Clone, Default)]
pub(crate) struct Known {
    pub caps: Option<Capabilities>,
    pub mode: Option<Mode>,
    pub msix: Option<u32>,
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
/// #     fn set_msix(&mut self, _: u32) -> Result<(), Errno> { Ok(()) }
/// #     fn reset(&mut self) -> Result<(), Errno> { Ok(()) }
/// #     fn read_config(&mut self, _: u64, _: &mut [u8]) -> Result<(), Errno> { Ok(()) }
/// #     fn cpu_count(&self) -> Option<u32> { None }
/// # }
/// // Without evidence of a v7 kernel, nothing is ever sent.
/// let err = TphDevice::open(Nothing, &Probe::new("/nonexistent")).unwrap_err();
/// assert!(err.to_string().contains("no VFIO TPH interface"));
/// ```
#[derive(Debug)]
pub struct TphDevice<B: Backend> {
    backend: B,
    revision: Revision,
    known: Known,
}

impl<B: Backend> TphDevice<B> {
    /// Probes the kernel revision (without any ioctl) and wraps `backend`.
    ///
    /// Refuses with [`Error::NoInterface`] unless the probe finds a revision this client speaks.
    pub fn open(backend: B, probe: &Probe) -> Result<Self, Error> {
        Self::with_revision(backend, probe.run().revision)
    }

    /// Wraps `backend` for a kernel known to speak `revision`.
    ///
    /// Only the v7 adapter exists so far; the feature revision is refused honestly.
    pub fn with_revision(backend: B, revision: Revision) -> Result<Self, Error> {
        match revision {
            Revision::V7 => Ok(Self {
                backend,
                revision,
                known: Known::default(),
            }),
            Revision::Feature | Revision::Unknown => Err(Error::NoInterface { revision }),
        }
    }

    /// The kernel revision this handle speaks.
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// The backend below (for emulation-only extras such as traces).
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The backend below, mutably.
    pub fn backend_mut(&mut self) -> &mut B {
        &mut self.backend
    }

    /// Unwraps the backend.
    pub fn into_backend(self) -> B {
        self.backend
    }

    /// The modes and table size the kernel offers (one GET_CAP).
    pub fn capabilities(&mut self) -> Result<Capabilities, Error> {
        let caps = v7::get_cap(&mut self.backend)?;
        self.known.caps = Some(caps);
        Ok(caps)
    }

    /// Enables TPH in `mode` (one ENABLE).
    pub fn enable(&mut self, mode: Mode) -> Result<(), Error> {
        v7::enable(&mut self.backend, mode, &self.known)?;
        self.known.mode = Some(mode);
        Ok(())
    }

    /// Disables TPH (one DISABLE; also fine when already off).
    pub fn disable(&mut self) -> Result<(), Error> {
        v7::disable(&mut self.backend)?;
        self.known.mode = None;
        Ok(())
    }

    /// The steering tags of `cpus`, in order (one GET_ST; DS mode only).
    pub fn steering_tags(&mut self, cpus: &[CpuQuery]) -> Result<Vec<u16>, Error> {
        let entries: Vec<TphEntry> = cpus
            .iter()
            .map(|q| TphEntry {
                cpu: q.cpu,
                mem_type: q.mem.uapi(),
                ..TphEntry::default()
            })
            .collect();
        v7::get_st(&mut self.backend, &entries, &self.known)
    }

    /// Programs `entries` into the steering table, all or nothing (one SET_ST).
    pub fn set_entries(&mut self, entries: &[Steer]) -> Result<(), Error> {
        let raw: Vec<TphEntry> = entries
            .iter()
            .map(|s| TphEntry {
                cpu: s.cpu,
                mem_type: s.mem.uapi(),
                index: s.index,
                ..TphEntry::default()
            })
            .collect();
        self.set_raw_entries(&raw)
    }

    /// Clears the entries at `indexes` to steering tag 0 (one SET_ST with `cpu = 0xFFFFFFFF`).
    pub fn clear_entries(&mut self, indexes: &[u16]) -> Result<(), Error> {
        let raw: Vec<TphEntry> = indexes
            .iter()
            .map(|&index| TphEntry {
                cpu: abi::CPU_CLEAR,
                index,
                ..TphEntry::default()
            })
            .collect();
        self.set_raw_entries(&raw)
    }

    fn set_raw_entries(&mut self, raw: &[TphEntry]) -> Result<(), Error> {
        let r = v7::set_st(&mut self.backend, raw, &self.known);
        let validation = [libc::EINVAL, libc::ENXIO, libc::ENODEV, libc::EOPNOTSUPP];
        if matches!(r, Err(ref e) if e.errno().is_some_and(|n| !validation.contains(&n.0))) {
            // A refusal in validation changes nothing; any other failure is a failed hardware
            // write, after which the core has disabled TPH entirely [core].
            self.known.mode = None;
        }
        r
    }

    /// Enables MSI-X vectors `0..count` (0 disables MSI-X), as IV mode with an MSI-X table needs.
    pub fn enable_msix(&mut self, count: u32) -> Result<(), Error> {
        self.backend
            .set_msix(count)
            .map_err(|errno| Error::Backend {
                op: "enabling MSI-X vectors",
                errno,
            })?;
        self.known.msix = Some(count);
        Ok(())
    }

    /// Function-level reset of the device (TPH state survives when the kernel enabled it).
    pub fn reset(&mut self) -> Result<(), Error> {
        self.backend.reset().map_err(|errno| Error::Backend {
            op: "device reset",
            errno,
        })
    }

    /// Reads `buf.len()` bytes of configuration space at `offset`.
    pub fn read_config(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.backend
            .read_config(offset, buf)
            .map_err(|errno| Error::Backend {
                op: "reading configuration space",
                errno,
            })
    }

    /// Sends `arg` unchanged as the TPH ioctl argument (for diagnostics); the kernel's answer.
    pub fn raw_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.backend.tph_ioctl(arg)
    }

    /// Forgets what the client believed about the device (after a close and reopen).
    pub fn forget_state(&mut self) {
        self.known = Known::default();
    }
}
