//! The guest-side truth rig: a VM whose guest kernel is the mainline PCI TPH core of
//! `tph-kernel` (enable, get_cpu_st through the generated `_DSM` run by `tph-acpi`,
//! set_st_entry), running against the virtual device and the virtual root port, on a host that
//! is the emulated kernel (v7 or feature revision) reached through the client.
//!
//! How a guest access reaches the virtual device: the guest core acts on a guest-side
//! `hw::Function` built from the guest's configuration space (the host's, with the TPH
//! capability as the virtual device reads it). Every write it makes is taken from that
//! function's access trace and delivered, in order, to the VMM's trap handlers, exactly as a
//! VMM traps them; afterwards the guest function is refreshed from the virtual device, so
//! every read the guest makes next returns what the virtual device says. A second function,
//! the *reference*, receives the same writes and is never refreshed: it applies the model's own
//! register semantics and is the oracle for what the guest must read back.
#![allow(dead_code)] // each test binary uses a subset

pub mod check;

use std::sync::{Arc, OnceLock};

use tph_acpi::{AmlSource, MemType, SteeringTagSource, TableSource, TagWidth};
use tph_client::{Revision, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::core::{read_devcap2, MsiState, Platform, TphState};
use tph_kernel::hw::{Access, Function};
use tph_kernel::{machines, Host, HostOptions, KernelAbi};
use tph_regs::tph::{StLocation, TPH_CTRL};
use tph_vmm::ssdt::{self, SsdtSpec};
use tph_vmm::{Effect, VirtualTph, VmConfig};

/// The hooks never fail on a host refusal (it is in the effect); the rig treats one as a
/// failure of the step.
pub fn host_ok(effect: Effect) -> Result<Effect, String> {
    match effect.host_failures.first() {
        Some(f) => Err(f.to_string()),
        None => Ok(effect),
    }
}

/// The VMM under test, seen through the calls a VMM's trap handlers make. The real layer
/// implements it; a test may wrap it in a deliberately broken translation.
pub trait Vmm {
    /// The virtual device (reads, state).
    fn vtph(&self) -> &VirtualTph<EmulatedBackend>;
    /// The virtual device, mutably.
    fn vtph_mut(&mut self) -> &mut VirtualTph<EmulatedBackend>;
    /// A trapped configuration write.
    fn write_config(&mut self, offset: u16, data: &[u8]) -> Result<Effect, String> {
        host_ok(self.vtph_mut().write_config(offset, data))
    }
    /// A trapped MSI-X Vector Control write.
    fn write_vector_control(&mut self, vector: u16, value: u32) -> Result<Effect, String> {
        host_ok(self.vtph_mut().write_vector_control(vector, value).effect)
    }
    /// The VMM re-pins a vCPU.
    fn pin(&mut self, vcpu: u32, cpu: Option<u32>) -> Result<Effect, String> {
        host_ok(self.vtph_mut().pin(vcpu, cpu).map_err(|e| e.to_string())?)
    }
}

impl Vmm for VirtualTph<EmulatedBackend> {
    fn vtph(&self) -> &VirtualTph<EmulatedBackend> {
        self
    }
    fn vtph_mut(&mut self) -> &mut VirtualTph<EmulatedBackend> {
        self
    }
}

/// The guest's DSDT: the host bridge only, revision 1 (32-bit integers), compiled by iasl once.
pub fn guest_dsdt() -> &'static [u8] {
    static DSDT: OnceLock<Vec<u8>> = OnceLock::new();
    DSDT.get_or_init(|| {
        let asl = r#"DefinitionBlock ("", "DSDT", 1, "TPHVMM", "GUESTDS", 1)
{
    Scope (\_SB) { Device (PCI0) { Name (_HID, EisaId ("PNP0A08")) Name (_UID, Zero) } }
}
"#;
        tph_acpi::iasl::compile_asl(asl).expect("iasl compiles the guest DSDT")
    })
}

/// The guest platform the core sees: the virtual root port, the guest's UIDs, the guest's
/// firmware (the generated SSDT run by tph-acpi).
pub struct GuestPlatform {
    pub root_port: std::sync::Mutex<Function>,
    pub uids: Vec<u32>,
    pub firmware: Arc<AmlSource>,
}

impl Platform for GuestPlatform {
    fn notph(&self) -> bool {
        false
    }
    fn root_port_devcap2(&self) -> Option<u32> {
        let mut port = self.root_port.lock().unwrap_or_else(|e| e.into_inner());
        read_devcap2(&mut port)
    }
    /// The guest's one host bridge, `\_SB.PCI0` (segment 0, root bus 0).
    fn host_bridge(&self) -> Option<tph_acpi::HostBridgeId> {
        Some(tph_acpi::HostBridgeId { segment: 0, bus: 0 })
    }
    fn cpu_uid(&self, cpu: u32) -> Option<u32> {
        self.uids.get(cpu as usize).copied()
    }
    fn firmware(&self) -> &dyn SteeringTagSource {
        self.firmware.as_ref()
    }
}

/// Which host device the VM gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostDevice {
    /// 02:00.0: table in the TPH capability (16 entries), root port completes TPH only.
    CapTable,
    /// 01:00.0: table in MSI-X (2048 vectors), extended TPH, root port completes extended TPH.
    MsixTable,
}

impl HostDevice {
    pub fn bdf(self) -> &'static str {
        match self {
            HostDevice::CapTable => "02:00.0",
            HostDevice::MsixTable => "01:00.0",
        }
    }

    /// The host root port's completer (what a VMM reads from sysfs).
    pub fn upstream(self) -> tph_regs::tph::Upstream {
        use tph_regs::tph::{CompleterSupport, Upstream};
        match self {
            HostDevice::CapTable => Upstream::RootPort(CompleterSupport::Tph),
            HostDevice::MsixTable => Upstream::RootPort(CompleterSupport::TphAndExt),
        }
    }
}

/// Both revisions, each with its unsafe module parameter off (the default) and on.
pub const ABIS_AND_GATES: [(KernelAbi, bool); 4] = [
    (KernelAbi::V7, false),
    (KernelAbi::V7, true),
    (KernelAbi::Feature, false),
    (KernelAbi::Feature, true),
];

/// Host CPUs of the emulated host.
pub const HOST_CPUS: u32 = 16;
/// Entries the guest touches (the MSI-X device has 2048; the rig refreshes only these).
pub const GUEST_ENTRIES: u16 = 16;

/// A VM with one passed-through device.
pub struct Rig<V: Vmm> {
    pub host: Host,
    pub vmm: V,
    pub guest: Function,
    pub reference: Function,
    pub platform: GuestPlatform,
    pub core: TphState,
    pub msi: MsiState,
    pub cap: u16,
    pub location: StLocation,
    /// Every host CPU a vCPU was ever pinned to.
    pub ever_pinned: Vec<u32>,
    /// Host device violations accepted as mainline's own (the first this many): the MSI-X
    /// mask-all of `msix_capability_init` rewrites Vector Control while TPH is on.
    pub accepted_violations: usize,
}

/// A host whose TPH interface exists: a feature-revision host needs `enable_unsafe_tph`, which
/// gates the whole TPH_ST feature (the series author's header); a v7 host keeps DS hidden.
pub fn host_with_tph(abi: KernelAbi) -> Host {
    host(abi, abi == KernelAbi::Feature)
}

/// The host of a VM: the default machine with [`HOST_CPUS`] CPUs, `abi`, the revision's unsafe
/// parameter as given.
pub fn host(abi: KernelAbi, unsafe_ds: bool) -> Host {
    Host::with_default_machine(
        HostOptions::new()
            .with_cpus(HOST_CPUS)
            .with_abi(abi)
            .with_unsafe_ds(unsafe_ds),
    )
}

pub fn revision(abi: KernelAbi) -> Revision {
    match abi {
        KernelAbi::V7 => Revision::V7,
        KernelAbi::Feature => Revision::Feature,
        other => panic!("no client revision for {other:?}"),
    }
}

/// The client handle of `dev` on `host`.
pub fn client(host: &Host, dev: HostDevice, abi: KernelAbi) -> TphDevice<EmulatedBackend> {
    let backend = EmulatedBackend::take_over(host, dev.bdf().parse().unwrap()).unwrap();
    TphDevice::with_revision(backend, revision(abi)).unwrap()
}

/// The VMM's configuration for `pins` (index = vCPU).
pub fn config(dev: HostDevice, pins: &[Option<u32>]) -> VmConfig {
    let mut cfg = VmConfig::new(pins.len() as u32);
    cfg.pins = pins.to_vec();
    cfg.host_upstream = dev.upstream();
    cfg
}

impl Rig<VirtualTph<EmulatedBackend>> {
    /// A VM of `pins.len()` vCPUs on a fresh host.
    pub fn new(abi: KernelAbi, dev: HostDevice, pins: &[Option<u32>]) -> Self {
        let host = host_with_tph(abi);
        let vtph = VirtualTph::new(client(&host, dev, abi), config(dev, pins)).unwrap();
        Rig::with_vmm(host, vtph)
    }
}

impl<V: Vmm> Rig<V> {
    /// The guest around an already built VMM.
    pub fn with_vmm(host: Host, mut vmm: V) -> Self {
        // Under the unsafe DS option the guest firmware gives the host tags of the pinning.
        let ds_results = vmm.vtph_mut().ds_firmware_results().unwrap();
        let v = vmm.vtph();
        let cap = v.cap_offset();
        let mut config = vec![0u8; 4096];
        v.device().read_config(0, &mut config).unwrap();
        let len = usize::from(v.virtual_cap().len());
        v.read_config(cap, &mut config[usize::from(cap)..usize::from(cap) + len]);
        let guest = Function::new(&config);
        let reference = Function::new(&config);
        let mut port = machines::root_port(0, 1);
        let at = machines::EXP_AT + 0x24;
        let devcap2 = u32::from_le_bytes(port[at..at + 4].try_into().unwrap());
        port[at..at + 4].copy_from_slice(&v.virtual_cap().root_port_devcap2(devcap2).to_le_bytes());
        let uids = v.config().uids.clone();
        let spec = SsdtSpec::new("\\_SB.PCI0", uids.clone(), v.extended());
        let ssdt = match &ds_results {
            Some(results) => ssdt::generate_with_results(&spec, results),
            None => ssdt::generate(&spec, &v.tag_space()),
        }
        .unwrap();
        let firmware = Arc::new(AmlSource::from_tables(&[guest_dsdt(), &ssdt]).unwrap());
        let ever_pinned = v.config().pins.iter().flatten().copied().collect();
        let location = v.virtual_cap().cap.location;
        let core = TphState::init(&guest);
        Self {
            host,
            vmm,
            guest,
            reference,
            platform: GuestPlatform {
                root_port: std::sync::Mutex::new(Function::new(&port)),
                uids,
                firmware,
            },
            core,
            msi: MsiState::default(),
            cap,
            location,
            ever_pinned,
            accepted_violations: 0,
        }
    }

    /// Delivers the guest's writes to the VMM (and the reference), then refreshes the guest's
    /// view from the virtual device. Host-call failures are returned.
    pub fn deliver(&mut self) -> Result<(), String> {
        let mut result = Ok(());
        for a in self.guest.drain_trace() {
            let r = match a {
                Access::ConfigWrite {
                    offset,
                    width,
                    value,
                    ..
                } => {
                    self.reference.config_write(offset, width, value);
                    let bytes = value.to_le_bytes();
                    self.vmm
                        .write_config(offset, &bytes[..usize::from(width)])
                        .map(drop)
                }
                Access::MsixWrite {
                    vector,
                    offset: 12,
                    value,
                    ..
                } => {
                    self.reference.msix_write(vector, 12, value);
                    self.vmm.write_vector_control(vector, value).map(drop)
                }
                _ => Ok(()),
            };
            if result.is_ok() {
                result = r;
            }
        }
        self.refresh();
        result
    }

    /// The guest function reads what the virtual device says from now on.
    fn refresh(&mut self) {
        let v = self.vmm.vtph();
        let ctrl = self.cap + TPH_CTRL as u16;
        self.guest.config_write(ctrl, 4, v.guest_control());
        let n = GUEST_ENTRIES.min(v.guest_table().len() as u16);
        for i in 0..n {
            let st = v.guest_table()[usize::from(i)];
            match self.location {
                StLocation::Capability => {
                    self.guest
                        .config_write(self.cap + 0xc + 2 * i, 2, u32::from(st));
                }
                _ => {
                    let low = self.guest.msix_read(i, 12) & 0xffff;
                    self.guest.msix_write(i, 12, low | u32::from(st) << 16);
                }
            }
        }
        self.guest.drain_trace();
    }

    /// Guest: `pcie_enable_tph(mode)` (mode: 0 No-ST, 1 IV, 2 DS).
    pub fn guest_enable(
        &mut self,
        mode: u8,
    ) -> (Result<(), tph_kernel::Errno>, Result<(), String>) {
        let mode = tph_regs::tph::StMode::from_field(mode);
        let r = self.core.enable(&mut self.guest, &self.platform, mode);
        (r, self.deliver())
    }

    /// Guest: `pcie_disable_tph()`.
    pub fn guest_disable(&mut self) -> Result<(), String> {
        self.core.disable(&mut self.guest);
        self.deliver()
    }

    /// Guest: `pcie_tph_get_cpu_st(mem, vcpu)`.
    pub fn guest_tag(&self, vcpu: u32, mem: MemType) -> Result<u16, tph_kernel::Errno> {
        self.core.get_cpu_st(&self.platform, mem, vcpu)
    }

    /// Guest: `pcie_tph_set_st_entry(index, tag)`.
    pub fn guest_set_entry(
        &mut self,
        index: u16,
        tag: u16,
    ) -> (Result<(), tph_kernel::Errno>, Result<(), String>) {
        let r = self
            .core
            .set_st_entry(&mut self.guest, &mut self.msi, index, tag);
        (r, self.deliver())
    }

    /// Hostile guest: a raw 16-bit write of `raw` into entry `index`, bypassing the core.
    pub fn guest_raw_entry(&mut self, index: u16, raw: u16) -> Result<(), String> {
        match self.location {
            StLocation::Capability => {
                self.guest
                    .config_write(self.cap + 0xc + 2 * index, 2, u32::from(raw));
            }
            _ => {
                let low = self.guest.msix_read(index, 12) & 0xffff;
                self.guest.msix_write(index, 12, low | u32::from(raw) << 16);
            }
        }
        self.deliver()
    }

    /// Hostile guest: a raw Control write, bypassing the core.
    pub fn guest_raw_control(&mut self, value: u32) -> Result<(), String> {
        self.guest
            .config_write(self.cap + TPH_CTRL as u16, 4, value);
        self.deliver()
    }

    /// Guest enables MSI-X vectors `0..n`; the VMM enables them on the host and tells the
    /// virtual device.
    pub fn irqs(&mut self, n: u16) -> Result<(), String> {
        self.msi = MsiState::enabled(usize::from(n));
        self.msi.enabled = n > 0;
        self.msi.vector_ctrl = (0..n).map(|v| self.guest.msix_read(v, 12)).collect();
        self.guest.drain_trace();
        let v = self.vmm.vtph_mut();
        host_ok(v.host_msix_will_change())?;
        let fd = v.device().backend().fd().unwrap();
        // Mainline updates an enabled MSI-X block in place (vectors above the block stay
        // allocated), so a VMM that changes the vector count disables MSI-X first; disabling
        // MSI-X that is off is EINVAL.
        if v.device().backend().device().snapshot().msix_vectors > 0 {
            fd.set_irqs(0).unwrap();
        }
        if n > 0 {
            fd.set_irqs(u32::from(n)).unwrap();
        }
        host_ok(v.host_msix_enabled(u32::from(n))).map(drop)
    }

    /// The VMM re-pins `vcpu`.
    pub fn repin(&mut self, vcpu: u32, cpu: Option<u32>) -> Result<(), String> {
        if let Some(c) = cpu {
            self.ever_pinned.push(c);
        }
        self.vmm.pin(vcpu, cpu).map(drop)
    }

    /// The reference's table (what the guest's writes leave under the model's semantics).
    pub fn reference_table(&self) -> Vec<u16> {
        let n = usize::from(GUEST_ENTRIES);
        match self.location {
            StLocation::Capability => self.reference.peek_st_table().into_iter().take(n).collect(),
            _ => self
                .reference
                .peek_vector_controls()
                .into_iter()
                .take(n)
                .map(|c| (c >> 16) as u16)
                .collect(),
        }
    }
}

/// The host tag firmware gives host CPU `cpu` (the emulated host's default firmware, UID =
/// CPU number).
pub fn host_tag(cpu: u32, mem: MemType, width: TagWidth) -> u16 {
    TableSource::default_st_info(cpu)
        .tag(mem, width)
        .unwrap_or(0)
}
