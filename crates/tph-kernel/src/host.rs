//! The emulated host: root ports and endpoints built from a [`Machine`], logical CPUs with
//! ACPI processor UIDs, host options, and the firmware steering-tag source.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use tph_acpi::{HostBridgeId, SteeringTagSource, TableSource};
use tph_regs::express::PortType;
use tph_regs::machine::{Bdf, Machine};

use crate::core::{read_devcap2, Platform};
use crate::hw;
use crate::vfio::{DeviceInner, VfioDevice};
use crate::Errno;

/// How state is restored after a reset (see `docs/decisions.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RestoreOrder {
    /// Mainline `pci_restore_state` order \[vfio\]: TPH Control (enabled) then the entries,
    /// both with Bus Master still off, then the config header, then MSI-X. The device's
    /// violation check (which looks at Requester Enable, the rule `set_st_entry` follows)
    /// records every entry written while Control is enabled.
    #[default]
    Mainline,
    /// Control without Requester Enable, the ST entries, the header, MSI-X, then the full
    /// Control: no ST entry is ever written while TPH is enabled.
    TableBeforeEnable,
}

/// Which locks a device's operations take (see `docs/decisions.md`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Locking {
    /// One lock for everything (TPH ioctl, SET_IRQS, reset, config accesses, open, close):
    /// \[decision\], stronger than the posted kernel.
    #[default]
    Serialised,
    /// As v7 was posted: the TPH ioctl and SET_IRQS under `igate`, `VFIO_DEVICE_RESET` under
    /// `memory_lock` only, config accesses under neither; a reset can run in the middle of
    /// SET_ST (the v8 review's finding; see `vfio::Interleave`).
    AsPosted,
}

/// Which kernel interface the host's vfio-pci speaks (see `docs/decisions.md`, "Feature
/// revision (kernel model)").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum KernelAbi {
    /// The v7 series: `VFIO_DEVICE_PCI_TPH` (0x3B7A); config-region writes have no effect.
    #[default]
    V7,
    /// The later feature revision (`later-revisions.md`): `VFIO_DEVICE_FEATURE` (0x3B75) with
    /// `VFIO_DEVICE_FEATURE_TPH_ST`, and a virtualised TPH capability in the config region
    /// whose Control register enables and disables TPH. 0x3B7A answers ENOTTY.
    Feature,
}

/// How the host's platform allocates MSI-X vectors (see `docs/decisions.md`, "SET_IRQS as
/// mainline"): the difference between a 6.1 kernel and a newer one on a platform whose MSI
/// domain allocates vectors dynamically (`pci_msix_can_alloc_dyn`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub enum MsixAlloc {
    /// Linux 6.1 (`vfio_msi_set_block` checks the block against the vectors allocated at
    /// enable): an enabled MSI-X block cannot grow (EINVAL), a loopback beyond the allocated
    /// vectors is EINVAL, and `VFIO_DEVICE_GET_IRQ_INFO` reports `NORESIZE` for MSI-X.
    Static,
    /// Linux 6.5 and later with dynamic MSI-X (x86, and every kernel the TPH series targets):
    /// an eventfd for a vector beyond the allocated ones allocates it while MSI-X stays
    /// enabled; no `NORESIZE` for MSI-X.
    #[default]
    Dynamic,
}

/// Host configuration.
///
/// `#[non_exhaustive]`: a later kernel knob becomes a new field without breaking callers. Start
/// from [`HostOptions::new`] (or `Default`) and set what differs with the `with_*` methods; the
/// fields stay public to read and to assign.
///
/// ```
/// use tph_kernel::{Host, HostOptions, KernelAbi};
/// let opts = HostOptions::new().with_cpus(4).with_abi(KernelAbi::Feature).with_unsafe_ds(true);
/// assert_eq!((opts.cpus, opts.abi), (4, KernelAbi::Feature));
/// let host = Host::with_default_machine(opts);
/// assert_eq!(host.cpus().len(), 4);
/// ```
///
/// A struct literal does not compile outside this crate, which is the point:
///
/// ```compile_fail,E0639
/// let opts = tph_kernel::HostOptions { cpus: 4, ..Default::default() };
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HostOptions {
    /// `nr_cpu_ids`: CPUs `0..cpus` are present.
    pub cpus: u32,
    /// ACPI processor UID of CPU n is `cpu_uids[n]` when given, else n.
    pub cpu_uids: Vec<u32>,
    /// Present but offline CPUs (still valid for steering-tag lookups).
    pub offline: Vec<u32>,
    /// Booted with `pci=notph`.
    pub notph: bool,
    /// vfio-pci module parameter `enable_unsafe_tph_ds_mode` (v7: gates DS mode), called
    /// `enable_unsafe_tph` in the feature revision (gates the whole TPH_ST feature and enabling
    /// TPH through Control).
    pub unsafe_ds: bool,
    /// The host bridge `_DSM` source; default [`TableSource::default_for_all`].
    pub firmware: Arc<dyn SteeringTagSource>,
    /// Restore order after a function reset.
    pub restore_order: RestoreOrder,
    /// The locks the VFIO layer takes.
    pub locking: Locking,
    /// The kernel interface (default v7).
    pub abi: KernelAbi,
    /// MSI-X vector allocation (default dynamic, as on the kernels TPH needs).
    pub msix_alloc: MsixAlloc,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            cpus: 8,
            cpu_uids: Vec::new(),
            offline: Vec::new(),
            notph: false,
            unsafe_ds: false,
            firmware: Arc::new(TableSource::default_for_all()),
            restore_order: RestoreOrder::default(),
            locking: Locking::default(),
            abi: KernelAbi::default(),
            msix_alloc: MsixAlloc::default(),
        }
    }
}

impl HostOptions {
    /// The defaults: 8 CPUs (UID n for CPU n, all online), TPH allowed, no unsafe modes, the
    /// documented firmware table, mainline restore order, serialised locking, the v7 ABI,
    /// dynamic MSI-X.
    pub fn new() -> Self {
        Self::default()
    }

    /// `nr_cpu_ids`: CPUs `0..cpus` are present.
    #[must_use]
    pub fn with_cpus(mut self, cpus: u32) -> Self {
        self.cpus = cpus;
        self
    }

    /// The ACPI processor UID of each CPU, by CPU number (CPUs beyond the list have UID n).
    #[must_use]
    pub fn with_cpu_uids(mut self, uids: Vec<u32>) -> Self {
        self.cpu_uids = uids;
        self
    }

    /// CPUs present but offline.
    #[must_use]
    pub fn with_offline(mut self, offline: Vec<u32>) -> Self {
        self.offline = offline;
        self
    }

    /// Booted with `pci=notph` when `true`.
    #[must_use]
    pub fn with_notph(mut self, notph: bool) -> Self {
        self.notph = notph;
        self
    }

    /// The vfio-pci module parameter that gates DS mode (v7) or the whole feature (feature
    /// revision).
    #[must_use]
    pub fn with_unsafe_ds(mut self, unsafe_ds: bool) -> Self {
        self.unsafe_ds = unsafe_ds;
        self
    }

    /// The host bridges' steering-tag `_DSM`.
    #[must_use]
    pub fn with_firmware(mut self, firmware: Arc<dyn SteeringTagSource>) -> Self {
        self.firmware = firmware;
        self
    }

    /// The restore order after a function reset.
    #[must_use]
    pub fn with_restore_order(mut self, order: RestoreOrder) -> Self {
        self.restore_order = order;
        self
    }

    /// The locks the VFIO layer takes.
    #[must_use]
    pub fn with_locking(mut self, locking: Locking) -> Self {
        self.locking = locking;
        self
    }

    /// The kernel interface.
    #[must_use]
    pub fn with_abi(mut self, abi: KernelAbi) -> Self {
        self.abi = abi;
        self
    }

    /// How MSI-X vectors are allocated.
    #[must_use]
    pub fn with_msix_alloc(mut self, msix_alloc: MsixAlloc) -> Self {
        self.msix_alloc = msix_alloc;
        self
    }
}

/// One logical CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize))]
#[non_exhaustive]
pub struct Cpu {
    /// Logical CPU number.
    pub id: u32,
    /// ACPI processor UID (MADT).
    pub uid: u32,
    /// Online.
    pub online: bool,
}

/// What every device of a host shares.
#[derive(Debug)]
pub(crate) struct HostShared {
    pub(crate) options: HostOptions,
}

impl HostShared {
    pub(crate) fn cpu_uid(&self, cpu: u32) -> Option<u32> {
        if cpu >= self.options.cpus {
            return None;
        }
        let idx = usize::try_from(cpu).ok()?;
        Some(self.options.cpu_uids.get(idx).copied().unwrap_or(cpu))
    }
}

/// The [`Platform`] one device sees: its host and its root port.
pub(crate) struct DevicePlatform<'a> {
    pub(crate) host: &'a HostShared,
    pub(crate) root_port: Option<&'a Mutex<hw::Function>>,
    /// The host bridge above the root port: its segment and bus.
    pub(crate) host_bridge: Option<HostBridgeId>,
}

impl Platform for DevicePlatform<'_> {
    fn notph(&self) -> bool {
        self.host.options.notph
    }

    fn root_port_devcap2(&self) -> Option<u32> {
        let port = self.root_port?;
        let mut port = port
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        read_devcap2(&mut port)
    }

    fn host_bridge(&self) -> Option<HostBridgeId> {
        self.host_bridge
    }

    fn cpu_uid(&self, cpu: u32) -> Option<u32> {
        self.host.cpu_uid(cpu)
    }

    fn firmware(&self) -> &dyn SteeringTagSource {
        self.host.options.firmware.as_ref()
    }
}

/// How a device hangs in the topology: the root port above it (for DevCap2), the host bridge
/// above that (for firmware), the port that can reset its link.
pub(crate) struct Links {
    pub(crate) root_port: Option<Arc<Mutex<hw::Function>>>,
    pub(crate) host_bridge: Option<HostBridgeId>,
    pub(crate) bus_reset_port: Option<Arc<Mutex<hw::Function>>>,
}

/// Where `bdf` hangs in `machine`; `port` gives the emulated root port at an address (built on
/// first use).
fn links(
    machine: &Machine,
    bdf: Bdf,
    port: impl Fn(Bdf) -> Option<Arc<Mutex<hw::Function>>>,
) -> Links {
    let root = machine.root_port_of(bdf);
    Links {
        root_port: root.and_then(&port),
        host_bridge: root.map(|p| HostBridgeId {
            segment: p.domain,
            bus: p.bus,
        }),
        bus_reset_port: bus_reset_port(machine, bdf, port),
    }
}

/// The root port that can reset `bdf`'s link (`pci_parent_bus_reset`): its parent bridge is a
/// root port of the machine and `bdf` is the only function on the bus below it.
/// Looked up when the device is first taken over (one pass over the functions then).
fn bus_reset_port(
    machine: &Machine,
    bdf: Bdf,
    port: impl FnOnce(Bdf) -> Option<Arc<Mutex<hw::Function>>>,
) -> Option<Arc<Mutex<hw::Function>>> {
    let parent = machine.parent_bridge(bdf)?;
    let alone = machine
        .functions
        .iter()
        .all(|f| f.bdf == bdf || f.bdf.domain != bdf.domain || f.bdf.bus != bdf.bus);
    if !alone {
        return None;
    }
    port(parent)
}

/// An emulated host. Cheap to share: devices keep their own `Arc`s.
///
/// Building one is O(1) in the machine's size: a device (and its root port's emulated
/// function) is built when it is first taken over, so memory follows what is used.
#[derive(Debug)]
pub struct Host {
    shared: Arc<HostShared>,
    machine: Machine,
    devices: Mutex<BTreeMap<Bdf, Arc<DeviceInner>>>,
    ports: Mutex<BTreeMap<Bdf, Arc<Mutex<hw::Function>>>>,
}

impl Host {
    /// Builds a host from `machine`: every root port becomes an emulated function the core
    /// reads DevCap2 from; every type-0 function becomes a device that can be taken over
    /// (both built on first use).
    pub fn new(machine: Machine, options: HostOptions) -> Self {
        Self {
            shared: Arc::new(HostShared { options }),
            machine,
            devices: Mutex::new(BTreeMap::new()),
            ports: Mutex::new(BTreeMap::new()),
        }
    }

    /// The device at `bdf`, built on first use; `None` when no type-0 function is there.
    fn device(&self, bdf: Bdf) -> Option<Arc<DeviceInner>> {
        let mut devices = lock(&self.devices);
        if let Some(dev) = devices.get(&bdf) {
            return Some(Arc::clone(dev));
        }
        let f = self.machine.function(bdf).filter(|f| is_device(f))?;
        let links = links(&self.machine, bdf, |p| self.port(p));
        let dev = Arc::new(DeviceInner::new(
            bdf,
            &f.config,
            links,
            Arc::clone(&self.shared),
        ));
        devices.insert(bdf, Arc::clone(&dev));
        Some(dev)
    }

    /// The emulated root port at `bdf`, built on first use (shared by every device below it).
    fn port(&self, bdf: Bdf) -> Option<Arc<Mutex<hw::Function>>> {
        let mut ports = lock(&self.ports);
        if let Some(p) = ports.get(&bdf) {
            return Some(Arc::clone(p));
        }
        let f = self.machine.function(bdf)?;
        if f.port_type() != Some(PortType::RootPort) {
            return None;
        }
        let port = Arc::new(Mutex::new(hw::Function::new(&f.config)));
        ports.insert(bdf, Arc::clone(&port));
        Some(port)
    }

    /// A host running the built-in [`crate::machines::default_machine`].
    pub fn with_default_machine(options: HostOptions) -> Self {
        Self::new(crate::machines::default_machine(), options)
    }

    /// The machine the host was built from.
    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// The options it runs with.
    pub fn options(&self) -> &HostOptions {
        &self.shared.options
    }

    /// Addresses of the devices (type-0 functions), sorted.
    pub fn devices(&self) -> Vec<Bdf> {
        let mut v: Vec<Bdf> = self
            .machine
            .functions
            .iter()
            .filter(|f| is_device(f))
            .map(|f| f.bdf)
            .collect();
        v.sort_unstable();
        v
    }

    /// Logical CPUs with their UIDs.
    pub fn cpus(&self) -> Vec<Cpu> {
        (0..self.shared.options.cpus)
            .map(|id| Cpu {
                id,
                uid: self.shared.cpu_uid(id).unwrap_or(id),
                online: !self.shared.options.offline.contains(&id),
            })
            .collect()
    }

    /// vfio-pci takes the device at `bdf` over (bind/probe): TPH Control is written to 0 in
    /// hardware and the core's state cleared. ENODEV when there is no such device, EBUSY when
    /// vfio-pci already owns it.
    pub fn take_over(&self, bdf: Bdf) -> Result<VfioDevice, Errno> {
        let dev = self.device(bdf).ok_or(Errno::ENODEV)?;
        dev.take_over()?;
        Ok(VfioDevice::from_inner(dev))
    }
}

/// Whether `f` can be taken over: a type-0 function with a readable header.
fn is_device(f: &tph_regs::machine::Function) -> bool {
    f.bridge_buses().is_none() && f.header().is_some()
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
