//! The VFIO layer: takeover, open / last close, `VFIO_DEVICE_RESET`, MSI-X vectors as through
//! `VFIO_DEVICE_SET_IRQS`, config region reads and writes, and the TPH interface of the host's
//! kernel revision ([`crate::KernelAbi`]): `VFIO_DEVICE_PCI_TPH` (0x3B7A, v7) or
//! `VFIO_DEVICE_FEATURE` (0x3B75) with `VFIO_DEVICE_FEATURE_TPH_ST` plus the virtualised TPH
//! Control register (the feature revision).
//!
//! Every operation of a device takes the device's one lock for its whole duration, so ioctls,
//! resets, opens and closes are serialised (`vfio-tph-v7.md` section 2, common step 5).

pub mod abi;
mod feature;
mod memory;
mod tph;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tph_regs::machine::Bdf;
use tph_regs::tph::{StLocation, TPH_CTRL};

use crate::core::{MsiState, TphState};
use crate::host::{DevicePlatform, HostShared, KernelAbi, RestoreOrder};
use crate::hw::{self, Access, Violation};
use crate::Errno;

pub use memory::{Fault, SliceMemory, UserMemory, SLICE_BASE};

/// MSI-X Message Control bits (upper half of the capability's first dword).
const MSIX_ENABLE: u32 = 1 << 15;
const MSIX_MASKALL: u32 = 1 << 14;
/// Vector Control mask bit.
const VECTOR_MASKED: u32 = 1;
/// Device Control offset in the PCI Express capability, and Initiate FLR.
const EXP_DEVCTL: u16 = 0x8;
const DEVCTL_FLR: u32 = 1 << 15;
/// Device Capabilities: Function Level Reset Capability.
const EXP_DEVCAP: u16 = 0x4;
const DEVCAP_FLR: u32 = 1 << 28;
/// Configuration space size visible through the config region.
const CONFIG_REGION_SIZE: u64 = 4096;

/// Everything behind a device's lock.
#[derive(Debug)]
pub(crate) struct DeviceState {
    pub(crate) hw: hw::Function,
    pub(crate) tph: TphState,
    pub(crate) msi: MsiState,
    taken: bool,
    open_fds: u32,
}

/// One device of a host (shared by its handles).
#[derive(Debug)]
pub(crate) struct DeviceInner {
    bdf: Bdf,
    root_port: Option<Arc<Mutex<hw::Function>>>,
    host: Arc<HostShared>,
    state: Mutex<DeviceState>,
}

impl DeviceInner {
    pub(crate) fn new(
        bdf: Bdf,
        config: &[u8],
        root_port: Option<Arc<Mutex<hw::Function>>>,
        host: Arc<HostShared>,
    ) -> Self {
        let hw = hw::Function::new(config);
        let tph = TphState::init(&hw);
        Self {
            bdf,
            root_port,
            host,
            state: Mutex::new(DeviceState {
                hw,
                tph,
                msi: MsiState::default(),
                taken: false,
                open_fds: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, DeviceState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn abi(&self) -> KernelAbi {
        self.host.options.abi
    }

    fn platform(&self) -> DevicePlatform<'_> {
        DevicePlatform {
            host: &self.host,
            root_port: self.root_port.as_deref(),
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

    /// Opens a device fd. The first open changes nothing in hardware.
    pub fn open(&self) -> Result<DeviceFd, Errno> {
        let mut st = self.inner.lock();
        st.open_fds = st.open_fds.checked_add(1).ok_or(Errno::EBUSY)?;
        Ok(DeviceFd {
            inner: Arc::clone(&self.inner),
            closed: AtomicBool::new(false),
        })
    }

    /// Number of open fds.
    pub fn open_count(&self) -> u32 {
        self.inner.lock().open_fds
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
    /// Answers `VFIO_DEVICE_RESET`, `VFIO_DEVICE_SET_IRQS` (MSI-X), and the TPH ioctl of the
    /// host's [`KernelAbi`]: `VFIO_DEVICE_PCI_TPH` (v7) or `VFIO_DEVICE_FEATURE` (feature
    /// revision); returns the ioctl's return value (0) or the errno. Other requests, the other
    /// revision's TPH ioctl included, give ENOTTY.
    pub fn ioctl(&self, request: u32, arg: u64, mem: &mut dyn UserMemory) -> Result<i32, Errno> {
        let abi = self.inner.abi();
        match request {
            abi::VFIO_DEVICE_PCI_TPH if abi == KernelAbi::V7 => {
                let mut st = self.inner.lock();
                tph::ioctl(&mut st, &self.inner.platform(), arg, mem)
            }
            abi::VFIO_DEVICE_FEATURE if abi == KernelAbi::Feature => {
                let mut st = self.inner.lock();
                feature::ioctl(&mut st, &self.inner.platform(), arg, mem)
            }
            abi::VFIO_DEVICE_RESET => self.reset().map(|()| 0),
            abi::VFIO_DEVICE_SET_IRQS => self.set_irqs_ioctl(arg, mem),
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
        if sized && buf.len() >= 4 {
            let argsz = abi::le32(buf, 0);
            if usize::try_from(argsz).map_or(true, |a| a > buf.len()) {
                return Err(Errno::EFAULT);
            }
        }
        self.ioctl(request, SLICE_BASE, &mut SliceMemory::new(buf))
    }

    /// `VFIO_DEVICE_SET_IRQS` on the MSI-X index: enables vectors `0..count` (unmasked, tags
    /// preserved); `count == 0` disables MSI-X. EINVAL without MSI-X or beyond its table.
    pub fn set_irqs(&self, count: u32) -> Result<(), Errno> {
        let mut st = self.inner.lock();
        let size = st.hw.msix().map_or(0, |m| u32::from(m.table_size));
        if count > size {
            return Err(Errno::EINVAL);
        }
        msix_disable(&mut st);
        if count > 0 {
            msix_enable(&mut st, count);
        }
        Ok(())
    }

    /// `VFIO_DEVICE_SET_IRQS` at the byte level, MSI-X index only: `DATA_NONE | TRIGGER` with
    /// `count == 0` disables, `DATA_EVENTFD | TRIGGER` with `start == 0` enables `count`
    /// vectors (the eventfds must be readable; they are not otherwise modelled). Anything else
    /// is EINVAL.
    fn set_irqs_ioctl(&self, arg: u64, mem: &mut dyn UserMemory) -> Result<i32, Errno> {
        let mut head = [0u8; abi::IRQ_SET_HEADER_SIZE];
        mem.read(arg, &mut head).map_err(|_| Errno::EFAULT)?;
        let word = |i: usize| abi::le32(&head, 4 * i);
        let (argsz, flags, index, start, count) = (word(0), word(1), word(2), word(3), word(4));
        let data_len = 4 * u64::from(count);
        if (argsz as usize) < abi::IRQ_SET_HEADER_SIZE || index != abi::MSIX_IRQ_INDEX || start != 0
        {
            return Err(Errno::EINVAL);
        }
        let count = match flags {
            f if f == abi::IRQ_SET_DATA_NONE | abi::IRQ_SET_ACTION_TRIGGER && count == 0 => 0,
            f if f == abi::IRQ_SET_DATA_EVENTFD | abi::IRQ_SET_ACTION_TRIGGER => {
                if u64::from(argsz) < abi::IRQ_SET_HEADER_SIZE as u64 + data_len {
                    return Err(Errno::EINVAL);
                }
                let mut fds = vec![0u8; usize::try_from(data_len).map_err(|_| Errno::EINVAL)?];
                let data = arg
                    .checked_add(abi::IRQ_SET_HEADER_SIZE as u64)
                    .ok_or(Errno::EFAULT)?;
                mem.read(data, &mut fds).map_err(|_| Errno::EFAULT)?;
                count
            }
            _ => return Err(Errno::EINVAL),
        };
        self.set_irqs(count).map(|()| 0)
    }

    /// `VFIO_DEVICE_RESET`: function level reset with the PCI core's save/restore around it.
    /// EINVAL when the function cannot do FLR.
    pub fn reset(&self) -> Result<(), Errno> {
        let mut st = self.inner.lock();
        let order = self.inner.host.options.restore_order;
        function_reset(&mut st, order)
    }

    /// Reads the config region at `offset` into `buf` (dword accesses underneath). EINVAL
    /// beyond 4 KiB. On a feature-revision host the TPH capability reads virtualised (DS
    /// hidden while the DS parameter is off; the capability unlinked under `pci=notph`).
    pub fn config_read(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        config_range(offset, buf.len())?;
        let mut st = self.inner.lock();
        let plat = self.inner.platform();
        let virt = self.inner.abi() == KernelAbi::Feature;
        let mut dword = None;
        for (at, b) in (offset..).zip(buf.iter_mut()) {
            let base = (at & !3) as u16;
            let value = match dword {
                Some((b0, v)) if b0 == base => v,
                _ if virt => feature::virt_read(&mut st, &plat, base),
                _ => st.hw.config_read(base, 4),
            };
            dword = Some((base, value));
            *b = (value >> (8 * (at & 3))) as u8;
        }
        Ok(())
    }

    /// Writes `data` to the config region at `offset` (`pwrite` on the region). EINVAL beyond
    /// 4 KiB. On a v7 host every write is accepted and dropped (v7 has no config-write path).
    /// On a feature-revision host only TPH Control is writable: writing it enables or
    /// disables TPH through the core, and the core's refusal is the write's errno (Control
    /// then unchanged); other bytes are accepted and dropped.
    pub fn config_write(&self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        config_range(offset, data.len())?;
        if self.inner.abi() != KernelAbi::Feature {
            return Ok(());
        }
        let mut st = self.inner.lock();
        feature::config_write(&mut st, &self.inner.platform(), offset, data)
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
            clear_tph(&mut st);
            msix_disable(&mut st);
        }
    }
}

impl Drop for DeviceFd {
    fn drop(&mut self) {
        self.release();
    }
}

/// `len` bytes at `offset` lie within the config region, else EINVAL.
fn config_range(offset: u64, len: usize) -> Result<(), Errno> {
    let end = offset.checked_add(len as u64).ok_or(Errno::EINVAL)?;
    if end > CONFIG_REGION_SIZE {
        return Err(Errno::EINVAL);
    }
    Ok(())
}

fn msix_ctrl_off(st: &DeviceState) -> Option<u16> {
    st.hw.msix().map(|m| m.offset + 2)
}

/// A message address / data for `vector` (the model has no interrupt controller; the values
/// only need to be distinct and survive a reset).
fn message_for(vector: u16) -> [u32; 3] {
    [
        0xfee0_0000 | u32::from(vector) << 12,
        0,
        0x4000 | u32::from(vector),
    ]
}

fn write_message(hw: &mut hw::Function, vector: u16, msg: [u32; 3]) {
    for (offset, value) in [0u8, 4, 8].into_iter().zip(msg) {
        hw.msix_write(vector, offset, value);
    }
}

fn msix_enable(st: &mut DeviceState, count: u32) {
    let Some(ctrl) = msix_ctrl_off(st) else {
        return;
    };
    let v = st.hw.config_read(ctrl, 2);
    st.hw.config_write(ctrl, 2, v | MSIX_ENABLE | MSIX_MASKALL);
    let mut msi = MsiState {
        enabled: true,
        ..MsiState::default()
    };
    for vector in (0..count).filter_map(|v| u16::try_from(v).ok()) {
        let msg = message_for(vector);
        write_message(&mut st.hw, vector, msg);
        let vc = st.hw.msix_read(vector, 12) & !VECTOR_MASKED;
        st.hw.msix_write(vector, 12, vc);
        msi.vector_ctrl.push(vc);
        msi.messages.push(msg);
    }
    st.hw
        .config_write(ctrl, 2, (v | MSIX_ENABLE) & !MSIX_MASKALL);
    st.msi = msi;
}

fn msix_disable(st: &mut DeviceState) {
    let Some(ctrl) = msix_ctrl_off(st).filter(|_| st.msi.enabled) else {
        return;
    };
    let n = st.msi.vector_ctrl.len();
    for vector in (0..n).filter_map(|v| u16::try_from(v).ok()) {
        let vc = st.hw.msix_read(vector, 12);
        st.hw.msix_write(vector, 12, vc | VECTOR_MASKED);
    }
    let v = st.hw.config_read(ctrl, 2);
    st.hw
        .config_write(ctrl, 2, v & !(MSIX_ENABLE | MSIX_MASKALL));
    st.msi = MsiState::default();
}

/// MSI-X restore after a reset: enable with all vectors masked, write each allocated vector's
/// cached message and Vector Control (its steering tag included), then unmask the function.
fn msix_restore(st: &mut DeviceState) {
    let Some(ctrl) = msix_ctrl_off(st).filter(|_| st.msi.enabled) else {
        return;
    };
    st.hw.config_write(ctrl, 2, MSIX_ENABLE | MSIX_MASKALL);
    let cached = st.msi.clone();
    for (vector, (vc, msg)) in (0u16..).zip(cached.vector_ctrl.iter().zip(&cached.messages)) {
        write_message(&mut st.hw, vector, *msg);
        st.hw.msix_write(vector, 12, *vc);
    }
    st.hw.config_write(ctrl, 2, MSIX_ENABLE);
}

fn function_reset(st: &mut DeviceState, order: RestoreOrder) -> Result<(), Errno> {
    let exp = st.hw.express().ok_or(Errno::EINVAL)?;
    if st.hw.config_read(exp + EXP_DEVCAP, 4) & DEVCAP_FLR == 0 {
        return Err(Errno::EINVAL);
    }
    st.tph.save(&mut st.hw);
    let command = st.hw.config_read(0x4, 2);
    let devctl = st.hw.config_read(exp + EXP_DEVCTL, 2);
    st.hw.config_write(exp + EXP_DEVCTL, 2, devctl | DEVCTL_FLR);
    st.hw.config_write(exp + EXP_DEVCTL, 2, devctl);
    st.hw.config_write(0x4, 2, command);
    match order {
        RestoreOrder::TableBeforeEnable => {
            st.tph.restore_table(&mut st.hw);
            msix_restore(st);
            st.tph.restore_enable(&mut st.hw);
        }
        RestoreOrder::Mainline => {
            st.tph.restore_mainline(&mut st.hw);
            msix_restore(st);
        }
    }
    Ok(())
}
