//! The per-backend parts of a session: emulated machine or real VFIO device.

use std::os::fd::BorrowedFd;

use tph_client::backend::{Backend, FdBackend};
use tph_client::open::{open_vfio, VfioOpened, VfioPaths};
use tph_client::{Bdf, Errno, Error};
use tph_emu::EmulatedBackend;
use tph_kernel::hw::Access;
use tph_regs::msix::{vector_control_st, MsixCap, MSIX_ENTRY_SIZE, MSIX_VECTOR_CTRL};
use tph_regs::tph::{StLocation, TphRequester};

use super::exec::{Registers, SessionBackend};

/// The device's config space (as read) has no TPH Requester capability: the same words as a
/// kernel's ENODEV for it.
fn no_tph() -> Error {
    Error::NoTph {
        errno: Errno::ENODEV,
    }
}

impl SessionBackend for EmulatedBackend {
    fn reopen(&mut self) -> Result<(), Error> {
        EmulatedBackend::reopen(self).map_err(|errno| Error::Backend {
            op: "reopening the device",
            errno,
        })
    }

    fn registers(&mut self) -> Result<Registers, Error> {
        let snap = self.device().snapshot();
        let (Some(control), Some(location)) = (snap.control, snap.location) else {
            return Err(no_tph());
        };
        Ok(Registers {
            control,
            location,
            st_table: snap.st_table,
        })
    }

    fn trace(&mut self) -> Result<Vec<Access>, Error> {
        Ok(self.device().drain_trace())
    }
}

/// A real device opened through VFIO, remembering how to open it again.
pub struct RealDevice {
    backend: Option<FdBackend<VfioOpened>>,
    bdf: Bdf,
    paths: VfioPaths,
}

impl RealDevice {
    /// Opens `bdf` through VFIO (the session owns the opened device, as a driver would).
    pub fn open(bdf: Bdf, paths: VfioPaths) -> Result<Self, Error> {
        let backend = FdBackend::new(open_vfio(bdf, &paths)?);
        Ok(Self {
            backend: Some(backend),
            bdf,
            paths,
        })
    }

    fn inner(&mut self) -> Result<&mut FdBackend<VfioOpened>, Errno> {
        self.backend.as_mut().ok_or(Errno::EBADF) // closed and not reopened
    }

    fn opened(&self) -> Result<&FdBackend<VfioOpened>, Errno> {
        self.backend.as_ref().ok_or(Errno::EBADF)
    }

    /// The tags in the MSI-X table, read through a mapping of its BAR as a driver reads it
    /// (vfio-pci's region `pread` shows the table as 0xff bytes).
    fn msix_table(&mut self, cfg: &[u8], size: u16) -> Result<Vec<u16>, Error> {
        let msix = MsixCap::find(cfg).ok_or_else(no_tph)?;
        let b = self.opened().map_err(|errno| Error::Backend {
            op: "reading MSI-X",
            errno,
        })?;
        let map = b
            .map_region(u32::from(msix.table_bir))
            .map_err(|errno| Error::Backend {
                op: "mapping the MSI-X table's BAR",
                errno,
            })?;
        let n = size.min(msix.table_size);
        (0..u64::from(n))
            .map(|i| {
                let at = u64::from(msix.table_offset) + i * MSIX_ENTRY_SIZE + MSIX_VECTOR_CTRL;
                map.read_u32(at)
                    .map(vector_control_st)
                    .ok_or(Error::Backend {
                        op: "reading the MSI-X table (beyond its BAR)",
                        errno: Errno::EINVAL,
                    })
            })
            .collect()
    }
}

impl Backend for RealDevice {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.inner()?.tph_ioctl(arg)
    }

    fn set_msix(&mut self, start: u32, eventfds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        self.inner()?.set_msix(start, eventfds)
    }

    fn reset(&mut self) -> Result<(), Errno> {
        self.inner()?.reset()
    }

    fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.opened()?.read_config(offset, buf)
    }

    fn irq_info(&self, index: u32) -> Result<tph_client::abi::vfio::IrqInfo, Errno> {
        self.opened()?.irq_info(index)
    }

    fn cpu_count(&self) -> Option<u32> {
        self.backend.as_ref().and_then(Backend::cpu_count)
    }

    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.inner()?.device_feature(arg)
    }

    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.inner()?.write_config(offset, data)
    }
}

impl SessionBackend for RealDevice {
    fn reopen(&mut self) -> Result<(), Error> {
        drop(self.backend.take()); // last close first: TPH goes off
        self.backend = Some(FdBackend::new(open_vfio(self.bdf, &self.paths)?));
        Ok(())
    }

    fn registers(&mut self) -> Result<Registers, Error> {
        let mut cfg = vec![0u8; 4096];
        let b = self.opened().map_err(|errno| Error::Backend {
            op: "reading config",
            errno,
        })?;
        // A PCI Express function has 4 KiB of config space, a conventional one 256 bytes (VFIO
        // refuses reads beyond the function's size).
        if let Err(errno) = b.read_config(0, &mut cfg) {
            cfg.truncate(256);
            b.read_config(0, &mut cfg).map_err(|_| Error::Backend {
                op: "reading config",
                errno,
            })?;
        }
        let tph = TphRequester::find(&cfg)
            .and_then(Result::ok)
            .ok_or_else(no_tph)?;
        let st_table = match tph.cap.location {
            StLocation::MsiX => self.msix_table(&cfg, tph.cap.table_size)?,
            _ => tph.table,
        };
        Ok(Registers {
            control: tph.control.to_bits(),
            location: tph.cap.location,
            st_table,
        })
    }

    fn trace(&mut self) -> Result<Vec<Access>, Error> {
        Err(Error::Backend {
            op: "tracing hardware accesses (only an emulated machine can)",
            errno: Errno::EOPNOTSUPP,
        })
    }
}
