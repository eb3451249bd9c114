//! The VFIO layer: takeover, open / last close, `VFIO_DEVICE_RESET`, MSI-X vectors as through
//! `VFIO_DEVICE_SET_IRQS`, config region reads and writes, and the TPH interface of the host's
//! kernel revision ([`crate::KernelAbi`]): `VFIO_DEVICE_PCI_TPH` (0x3B7A, v7) or
//! `VFIO_DEVICE_FEATURE` (0x3B75) with `VFIO_DEVICE_FEATURE_TPH_ST` plus the virtualised TPH
//! Control register (the feature revision).
//!
//! Locking follows [`crate::Locking`]: by default every operation of a device takes the
//! device's one lock for its whole duration, so ioctls, resets, opens, closes and config
//! accesses are serialised (`vfio-tph-v7.md` section 2, common step 5, a \[decision\] stronger
//! than the posted kernel); `Locking::AsPosted` takes the posted kernel's locks instead.
//! Mainline VFIO behaviour (`vfio-tph-v7.md` section 3, "What mainline VFIO itself does") lives
//! in `lifecycle.rs` (reset at first open and last close, reset methods and restore order),
//! `irqs.rs` (`VFIO_DEVICE_SET_IRQS`, MSI-X, the mmapped table) and `config.rs` (the config
//! region).

pub mod abi;
mod config;
mod feature;
mod irqs;
mod lifecycle;
mod memory;
mod tph;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tph_regs::machine::Bdf;
use tph_regs::tph::{StLocation, TPH_CTRL};

use crate::core::{MsiState, TphState};
use crate::host::{DevicePlatform, HostShared, KernelAbi, Links, Locking};
use crate::hw::{self, Access, Violation};
use crate::Errno;

pub use irqs::{AnyEventfd, EventfdCheck, IrqInfo, IrqSignal};
pub use lifecycle::{Interleave, ResetMethod};
pub use memory::{Fault, SliceMemory, UserMemory, SLICE_BASE};

/// A test's hook at an interleaving point (see [`VfioDevice::set_interleave_hook`]).
type Hook = Arc<dyn Fn(Interleave) + Send + Sync>;

/// Everything behind a device's lock.
#[derive(Debug)]
pub(crate) struct DeviceState {
    pub(crate) hw: hw::Function,
    pub(crate) tph: TphState,
    pub(crate) msi: MsiState,
    /// VFIO's interrupt contexts (`vfio_pci_intrs.c`).
    pub(crate) irqs: irqs::IrqState,
    taken: bool,
    open_fds: u32,
    /// What first open saved after its reset (`pci_store_saved_state`): the Command register.
    open_state: Option<u16>,
    /// The virtual Interrupt Line (`vconfig`; userspace writes it, the hardware keeps its own).
    vconfig_line: u8,
}

/// One device of a host (shared by its handles).
pub(crate) struct DeviceInner {
    bdf: Bdf,
    root_port: Option<Arc<Mutex<hw::Function>>>,
    host_bridge: Option<tph_acpi::HostBridgeId>,
    /// The parent bridge that can reset the device's link: its root port, when the device is
    /// alone on the bus below it (`pci_parent_bus_reset`).
    bus_reset_port: Option<Arc<Mutex<hw::Function>>>,
    /// Config region bytes that belong to no capability (raw access), by offset.
    unassigned: Vec<bool>,
    host: Arc<HostShared>,
    state: Mutex<DeviceState>,
    /// `vdev->igate` (as posted: the TPH ioctl and SET_IRQS).
    igate: Mutex<()>,
    /// `vdev->memory_lock` (as posted: reset).
    memory_lock: Mutex<()>,
    hook: Mutex<Option<Hook>>,
}

impl std::fmt::Debug for DeviceInner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceInner")
            .field("bdf", &self.bdf)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl DeviceInner {
    pub(crate) fn new(bdf: Bdf, config: &[u8], links: Links, host: Arc<HostShared>) -> Self {
        let hw = hw::Function::new(config);
        let tph = TphState::init(&hw);
        Self {
            bdf,
            root_port: links.root_port,
            host_bridge: links.host_bridge,
            bus_reset_port: links.bus_reset_port,
            unassigned: config::unassigned_map(&hw),
            host,
            state: Mutex::new(DeviceState {
                hw,
                tph,
                msi: MsiState::default(),
                irqs: irqs::IrqState::default(),
                taken: false,
                open_fds: 0,
                open_state: None,
                vconfig_line: 0,
            }),
            igate: Mutex::new(()),
            memory_lock: Mutex::new(()),
            hook: Mutex::new(None),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn locking(&self) -> Locking {
        self.host.options.locking
    }

    /// Takes `igate` when the locking is as posted (the TPH ioctl, SET_IRQS).
    fn igate(&self) -> Option<MutexGuard<'_, ()>> {
        (self.locking() == Locking::AsPosted)
            .then(|| self.igate.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Runs the test hook, if any, at `point`.
    fn interleave(&self, point: Interleave) {
        let hook = self
            .hook
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(h) = hook {
            h(point);
        }
    }

    fn abi(&self) -> KernelAbi {
        self.host.options.abi
    }

    fn platform(&self) -> DevicePlatform<'_> {
        DevicePlatform {
            host: &self.host,
            root_port: self.root_port.as_deref(),
            host_bridge: self.host_bridge,
        }
    }

    pub(crate) fn take_over(&self) -> Result<(), Errno> {
        let mut st = self.lock();
        if st.taken {
            return Err(Errno::EBUSY);
        }
        st.taken = true;
        clear_tph(&mut st);
        Ok(())
    }
}

/// A `vfio_irq_set` header for `count` vectors and `data` bytes (appended by the caller).
fn irq_set(flags: u32, index: u32, start: u32, count: usize, data: usize) -> Vec<u8> {
    let count = u32::try_from(count).unwrap_or(u32::MAX);
    let data = u32::try_from(data).unwrap_or(u32::MAX);
    let argsz = (abi::IRQ_SET_HEADER_SIZE as u32).saturating_add(data);
    [argsz, flags, index, start, count]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect()
}

/// Writes Control = 0 in hardware and clears the core's state, whatever the core believed
/// ([decision] takeover / last close; `vfio-tph-v7.md` section 3).
fn clear_tph(st: &mut DeviceState) {
    let cap = st.tph.cap();
    if cap != 0 {
        st.hw.config_write(cap + TPH_CTRL as u16, 4, 0);
    }
    st.tph.forget();
}

/// The TPH registers of a device as they are in hardware now (an inspection view: reading it
/// is not a traced hardware access).
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct TphSnapshot {
    /// The raw TPH Requester Control register; `None` without the capability.
    pub control: Option<u32>,
    /// Where the steering table lives; `None` without the capability.
    pub location: Option<StLocation>,
    /// The raw 16-bit ST entries, from the capability or from the MSI-X table (the first
    /// ST-Table-Size vectors).
    pub st_table: Vec<u16>,
    /// Whether the core believes it enabled TPH.
    pub core_enabled: bool,
    /// MSI-X vectors enabled through [`DeviceFd::set_irqs`].
    pub msix_vectors: u32,
}

/// A device vfio-pci has taken over ([`crate::Host::take_over`]). Cloning gives another
/// handle to the same device. `Send + Sync`.
#[derive(Clone, Debug)]
pub struct VfioDevice {
    inner: Arc<DeviceInner>,
}

impl VfioDevice {
    pub(crate) fn from_inner(inner: Arc<DeviceInner>) -> Self {
        Self { inner }
    }

    /// The device's address.
    pub fn bdf(&self) -> Bdf {
        self.inner.bdf
    }

    /// Number of present CPUs of the host (`nr_cpu_ids`).
    pub fn cpu_count(&self) -> u32 {
        self.inner.host.options.cpus
    }

    /// Opens a device fd. The first open resets the function when it has a reset method and
    /// saves the state after it (`vfio_pci_core_enable`; see [`VfioDevice::reset_method`]).
    pub fn open(&self) -> Result<DeviceFd, Errno> {
        let mut st = self.inner.lock();
        let fds = st.open_fds.checked_add(1).ok_or(Errno::EBUSY)?;
        if fds == 1 {
            lifecycle::first_open(&self.inner, &mut st);
        }
        st.open_fds = fds;
        Ok(DeviceFd {
            inner: Arc::clone(&self.inner),
            closed: AtomicBool::new(false),
        })
    }

    /// Number of open fds.
    pub fn open_count(&self) -> u32 {
        self.inner.lock().open_fds
    }

    /// The reset method `VFIO_DEVICE_RESET`, first open and last close use (the first the
    /// function has of FLR, PM reset, bus reset); `None`: `reset_works` is false.
    pub fn reset_method(&self) -> Option<ResetMethod> {
        lifecycle::reset_method(&self.inner, &self.inner.lock())
    }

    /// Installs `hook`, run at each interleaving point of the device's operations (see
    /// [`Interleave`]). Under `Locking::Serialised` it runs with the device lock held, so
    /// whatever it starts on another thread waits for the operation to end; under
    /// `Locking::AsPosted` it runs with only the locks the posted kernel holds there.
    pub fn set_interleave_hook(&self, hook: impl Fn(Interleave) + Send + Sync + 'static) {
        *self
            .inner
            .hook
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(hook));
    }

    /// The TPH registers and table as they are in hardware now.
    pub fn snapshot(&self) -> TphSnapshot {
        let st = self.inner.lock();
        TphSnapshot {
            control: st.hw.peek_tph_control(),
            location: st.hw.tph().map(|t| t.cap.location),
            st_table: st.hw.peek_st_table(),
            core_enabled: st.tph.enabled(),
            msix_vectors: u32::try_from(st.msi.vector_ctrl.len()).unwrap_or(u32::MAX),
        }
    }

    /// Hardware accesses since the last drain (each has a `Display`).
    pub fn drain_trace(&self) -> Vec<Access> {
        self.inner.lock().hw.drain_trace()
    }

    /// Accesses made to the root port above the device (DevCap2 reads during ENABLE) since
    /// the last drain; empty without a root port. The port is shared by every device below it.
    pub fn drain_root_port_trace(&self) -> Vec<Access> {
        self.inner.root_port.as_ref().map_or_else(Vec::new, |p| {
            p.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .drain_trace()
        })
    }

    /// Whether config byte `offset` lies in no capability (nor the header): the config region
    /// reads and writes it raw.
    pub fn is_unassigned(&self, offset: u16) -> bool {
        self.inner.unassigned.get(usize::from(offset)) == Some(&true)
    }

    /// The eventfd signals the kernel sent (loopback triggers) since the last drain.
    pub fn drain_irq_signals(&self) -> Vec<IrqSignal> {
        std::mem::take(&mut self.inner.lock().irqs.signals)
    }

    /// Every TPH spec violation the device has observed.
    pub fn violations(&self) -> Vec<Violation> {
        self.inner.lock().hw.violations().to_vec()
    }

    /// Makes the device abort one write after `n` more successful writes (fault injection for
    /// rollback tests).
    pub fn inject_write_failure(&self, n: u32) {
        self.inner.lock().hw.fail_write_after(n);
    }

    /// Runs `f` on the emulated hardware directly, under the device lock (for benchmarks that
    /// issue the bare accesses an op makes, and for tests that arrange hardware state).
    pub fn with_hardware<R>(&self, f: impl FnOnce(&mut hw::Function) -> R) -> R {
        f(&mut self.inner.lock().hw)
    }
}

/// An open VFIO device fd. Closing it (or dropping it) when it is the device's last open fd
/// turns TPH off in hardware and releases the MSI-X vectors. `Send + Sync`.
#[derive(Debug)]
pub struct DeviceFd {
    inner: Arc<DeviceInner>,
    closed: AtomicBool,
}

impl DeviceFd {
    /// The device this fd belongs to.
    pub fn device(&self) -> VfioDevice {
        VfioDevice::from_inner(Arc::clone(&self.inner))
    }

    /// The ioctl entry point: `request` with argument pointer `arg` in the caller's `mem`.
    /// Answers `VFIO_DEVICE_RESET`, `VFIO_DEVICE_SET_IRQS` and `VFIO_DEVICE_GET_IRQ_INFO`
    /// (every index, see `irqs.rs`; any fd >= 0 is taken for an eventfd: see
    /// [`DeviceFd::ioctl_with_eventfds`]), and the TPH ioctl of the host's [`KernelAbi`]:
    /// `VFIO_DEVICE_PCI_TPH` (v7) or `VFIO_DEVICE_FEATURE` (feature revision); returns the
    /// ioctl's return value (0) or the errno. Other requests, the other revision's TPH ioctl
    /// included, give ENOTTY.
    pub fn ioctl(&self, request: u32, arg: u64, mem: &mut dyn UserMemory) -> Result<i32, Errno> {
        self.ioctl_with_eventfds(request, arg, mem, &AnyEventfd)
    }

    /// [`DeviceFd::ioctl`] with the caller's eventfds resolved by `fds` (`eventfd_ctx_fdget`:
    /// EBADF, EINVAL), as a host serving another process does.
    pub fn ioctl_with_eventfds(
        &self,
        request: u32,
        arg: u64,
        mem: &mut dyn UserMemory,
        fds: &dyn EventfdCheck,
    ) -> Result<i32, Errno> {
        let abi = self.inner.abi();
        match request {
            abi::VFIO_DEVICE_PCI_TPH if abi == KernelAbi::V7 => {
                let _igate = self.inner.igate();
                let mut st = self.inner.lock();
                tph::ioctl(&mut st, &self.inner.platform(), arg, mem)
            }
            abi::VFIO_DEVICE_FEATURE if abi == KernelAbi::Feature => {
                let _igate = self.inner.igate();
                let mut st = self.inner.lock();
                feature::ioctl(&mut st, &self.inner.platform(), arg, mem)
            }
            abi::VFIO_DEVICE_RESET => self.reset().map(|()| 0),
            abi::VFIO_DEVICE_SET_IRQS => {
                let _igate = self.inner.igate();
                let mut st = self.inner.lock();
                let host = irqs::IrqHost {
                    alloc: self.inner.host.options.msix_alloc,
                    fds,
                };
                irqs::set_irqs_ioctl(&mut st, &host, arg, mem)
            }
            abi::VFIO_DEVICE_GET_IRQ_INFO => {
                let mut st = self.inner.lock();
                irqs::irq_info_ioctl(&mut st, self.inner.host.options.msix_alloc, arg, mem)
            }
            _ => Err(Errno::ENOTTY),
        }
    }

    /// [`DeviceFd::ioctl`] with the argument in `buf` (mapped at [`SLICE_BASE`]); for the
    /// requests the host answers whose argument starts with `argsz`, EFAULT when it exceeds
    /// `buf.len()` (the other revision's TPH ioctl stays ENOTTY whatever its bytes).
    pub fn ioctl_bytes(&self, request: u32, buf: &mut [u8]) -> Result<i32, Errno> {
        let tph_request = match self.inner.abi() {
            KernelAbi::V7 => abi::VFIO_DEVICE_PCI_TPH,
            KernelAbi::Feature => abi::VFIO_DEVICE_FEATURE,
        };
        let sized = request == tph_request || request == abi::VFIO_DEVICE_SET_IRQS;
        if let (true, Ok(argsz)) = (sized, abi::le32(buf, 0))
            && usize::try_from(argsz).map_or(true, |a| a > buf.len())
        {
            return Err(Errno::EFAULT);
        }
        self.ioctl(request, SLICE_BASE, &mut SliceMemory::new(buf))
    }

    /// `VFIO_DEVICE_GET_IRQ_INFO` for `index`: flags (`NORESIZE` for MSI-X only on a
    /// [`crate::MsixAlloc::Static`] host) and vector count.
    pub fn irq_info(&self, index: u32) -> Result<IrqInfo, Errno> {
        let mut st = self.inner.lock();
        irqs::irq_info(&mut st, self.inner.host.options.msix_alloc, index)
    }

    /// `VFIO_DEVICE_SET_IRQS` on the MSI-X index with eventfds for vectors `0..count` (enables
    /// MSI-X when it is off, else sets the triggers in place); `count == 0` is `DATA_NONE`
    /// with count 0: disables MSI-X when it is on, EINVAL when it is off.
    pub fn set_irqs(&self, count: u32) -> Result<(), Errno> {
        self.set_irqs_block(0, &vec![true; count as usize])
    }

    /// `VFIO_DEVICE_SET_IRQS` on the MSI-X index for vectors `start..start + triggers.len()`
    /// (`true`: an eventfd, `false`: fd -1, the trigger removed); an empty block is `DATA_NONE`
    /// with count 0 at `start`. See `irqs.rs`.
    pub fn set_irqs_block(&self, start: u32, triggers: &[bool]) -> Result<(), Errno> {
        let fds: Vec<i32> = triggers
            .iter()
            .map(|on| if *on { i32::MAX } else { -1 })
            .collect();
        self.set_irqs_eventfds(abi::MSIX_IRQ_INDEX, start, &fds)
    }

    /// `VFIO_DEVICE_SET_IRQS` `DATA_EVENTFD | ACTION_TRIGGER` on `index` for vectors
    /// `start..start + fds.len()` (no fds: `DATA_NONE` with count 0).
    pub fn set_irqs_eventfds(&self, index: u32, start: u32, fds: &[i32]) -> Result<(), Errno> {
        let data = match fds.is_empty() {
            true => abi::IRQ_SET_DATA_NONE,
            false => abi::IRQ_SET_DATA_EVENTFD,
        };
        let flags = data | abi::IRQ_SET_ACTION_TRIGGER;
        let mut arg = irq_set(flags, index, start, fds.len(), 4 * fds.len());
        for fd in fds {
            arg.extend_from_slice(&fd.to_le_bytes());
        }
        self.ioctl_bytes(abi::VFIO_DEVICE_SET_IRQS, &mut arg)
            .map(drop)
    }

    /// A loopback `VFIO_DEVICE_SET_IRQS` (`DATA_NONE | ACTION_TRIGGER`) of `count` vectors from
    /// `start` on `index`: the kernel signals their triggers ([`VfioDevice::drain_irq_signals`]).
    pub fn trigger_irqs(&self, index: u32, start: u32, count: u32) -> Result<(), Errno> {
        let flags = abi::IRQ_SET_DATA_NONE | abi::IRQ_SET_ACTION_TRIGGER;
        let mut arg = irq_set(flags, index, start, count as usize, 0);
        self.ioctl_bytes(abi::VFIO_DEVICE_SET_IRQS, &mut arg)
            .map(drop)
    }

    /// `VFIO_DEVICE_RESET`: `pci_reset_function` with the method the function has, the PCI
    /// core's save/restore around it (Bus Master off meanwhile) in the host's
    /// [`crate::RestoreOrder`]. EINVAL when the function has no reset method.
    pub fn reset(&self) -> Result<(), Errno> {
        lifecycle::reset(&self.inner)
    }

    /// Reads the config region at `offset` into `buf` (dword accesses underneath). EFAULT
    /// beyond the function's config size (256 bytes conventional, 4 KiB PCI Express). On a
    /// feature-revision host the TPH capability reads virtualised (unlinked under `pci=notph`).
    pub fn config_read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        config::read(&self.inner, offset, buf)
    }

    /// Writes `data` to the config region at `offset` (`pwrite` on the region). EFAULT beyond
    /// the function's config size. Bytes in no capability ("unassigned") go to hardware raw;
    /// the header and capabilities are dropped, except that on a feature-revision host writing
    /// TPH Control enables or disables TPH through the core (its refusal is the write's errno).
    pub fn config_write(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        config::write(&self.inner, offset, data)
    }

    /// Reads the dword at byte `offset` (0, 4, 8, 12) of MSI-X table entry `vector` through
    /// a userspace mapping of the BAR (`VFIO_REGION_INFO_CAP_MSIX_MAPPABLE`): no kernel
    /// involvement, no cache update.
    pub fn msix_mmap_read(&self, vector: u16, offset: u8) -> u32 {
        self.inner.lock().hw.msix_read(vector, offset)
    }

    /// Writes the dword at byte `offset` of MSI-X table entry `vector` through the mapping:
    /// straight to the device, behind the kernel's cached Vector Control.
    pub fn msix_mmap_write(&self, vector: u16, offset: u8, value: u32) {
        self.inner.lock().hw.msix_write(vector, offset, value);
    }

    /// Closes the fd; the last close disables TPH in hardware and releases MSI-X.
    pub fn close(self) {
        self.release();
    }

    fn release(&self) {
        if self.closed.swap(true, Ordering::SeqCst) {
            return;
        }
        let mut st = self.inner.lock();
        st.open_fds = st.open_fds.saturating_sub(1);
        if st.open_fds == 0 {
            lifecycle::last_close(&self.inner, &mut st);
        }
    }
}

impl Drop for DeviceFd {
    fn drop(&mut self) {
        self.release();
    }
}
