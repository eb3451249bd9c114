//! The Linux PCI TPH core (`drivers/pci/tph.c` behaviour plus the v7 series' fixes), acting on
//! an emulated [`Function`] only through configuration and MSI-X accesses.
//!
//! Rules cite `docs/spec/pci-tph-core.md` section 2 ("core" below).

use tph_acpi::{HostBridgeId, MemType, SteeringTagSource, TagWidth};
use tph_regs::caps::{EXP_DEVCAP2, EXP_FLAGS};
use tph_regs::express::PortType;
use tph_regs::msix::with_vector_control_st;
use tph_regs::tph::{
    negotiate, CompleterSupport, ReqEnable, StLocation, StMode, TphCapability, TphControl,
    Upstream, TPH_CAP, TPH_CTRL,
};

use crate::hw::{st_offset, Effect, Function};
use crate::Errno;

/// Vector Control's byte offset inside an MSI-X table entry.
const VECTOR_CTRL: u8 = tph_regs::msix::MSIX_VECTOR_CTRL as u8;

/// What the core needs from the rest of the host.
pub trait Platform {
    /// The host booted with `pci=notph`.
    fn notph(&self) -> bool;
    /// Device Capabilities 2 of the root port above the device, read through its config
    /// space; `None` when there is no root port.
    fn root_port_devcap2(&self) -> Option<u32>;
    /// The host bridge above the device's root port (`rp->bus->bridge`): the root port's
    /// segment and bus; `None` when there is no root port (`pcie_find_root_port()`; none for
    /// an RCiEP).
    fn host_bridge(&self) -> Option<HostBridgeId>;
    /// ACPI processor UID of logical CPU `cpu`; `None` when the CPU does not exist.
    fn cpu_uid(&self, cpu: u32) -> Option<u32>;
    /// The host bridge `_DSM` steering-tag source.
    fn firmware(&self) -> &dyn SteeringTagSource;
}

/// The kernel's MSI-X bookkeeping for one device (`msi_desc` per allocated vector).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsiState {
    /// MSI-X is enabled (`dev->msix_enabled`).
    pub enabled: bool,
    /// Cached Vector Control of each allocated vector, index = vector number.
    pub vector_ctrl: Vec<u32>,
    /// Cached message (address low, address high, data) of each allocated vector.
    pub messages: Vec<[u32; 3]>,
}

impl MsiState {
    /// MSI-X enabled with `vectors` allocated vectors, each unmasked (Vector Control 0) with an
    /// empty message, as after `pci_alloc_irq_vectors`.
    pub fn enabled(vectors: usize) -> Self {
        Self {
            enabled: true,
            vector_ctrl: vec![0; vectors],
            messages: vec![[0; 3]; vectors],
        }
    }
}

/// What save/restore keeps across a reset (core: only when the core enabled TPH).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SavedTph {
    /// The Control register.
    pub control: u32,
    /// The capability-located ST entries.
    pub entries: Vec<u16>,
}

/// Per-device TPH state (`tph_cap`, `tph_enabled`, `tph_mode`, `tph_req_type`), typed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TphState {
    cap: u16,
    /// The port type is RCiEP (`pci_pcie_type()`: from the Express Flags the PCI core cached at
    /// enumeration, so no access at enable time).
    rciep: bool,
    enabled: bool,
    mode: StMode,
    req_type: ReqEnable,
    saved: Option<SavedTph>,
}

impl Default for TphState {
    fn default() -> Self {
        Self {
            cap: 0,
            rciep: false,
            enabled: false,
            mode: StMode::NoSt,
            req_type: ReqEnable::Disabled,
            saved: None,
        }
    }
}

impl TphState {
    /// Core init: finds the capability and does **not** adopt a Control register left enabled
    /// by firmware or a previous owner.
    /// The device's port type is read here, untraced, as the PCI core caches Express Flags
    /// at enumeration (`pcie_flags_reg`).
    pub fn init(dev: &Function) -> Self {
        Self {
            cap: dev.tph().map_or(0, |t| t.offset),
            rciep: is_rciep(dev),
            ..Self::default()
        }
    }

    /// Offset of the TPH capability (0 = none).
    pub fn cap(&self) -> u16 {
        self.cap
    }

    /// `tph_enabled`.
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// `tph_mode` (ST Mode Select).
    pub fn mode(&self) -> StMode {
        self.mode
    }

    /// `tph_req_type` (the TPH Requester Enable value the core programmed).
    pub fn req_type(&self) -> ReqEnable {
        self.req_type
    }

    /// Forgets everything the core believed about enablement (used by the VFIO layer, which
    /// also writes Control = 0 in hardware at takeover and last close).
    pub fn forget(&mut self) {
        self.enabled = false;
        self.mode = StMode::NoSt;
        self.req_type = ReqEnable::Disabled;
        self.saved = None;
    }

    /// `pcie_enable_tph(mode)`, core "enable" steps 1-7: checks first, then one
    /// read-modify-write of Control, then the state.
    pub fn enable(
        &mut self,
        dev: &mut Function,
        plat: &dyn Platform,
        mode: StMode,
    ) -> Result<(), Errno> {
        if plat.notph() || self.cap == 0 {
            return Err(Errno::EINVAL);
        }
        if self.enabled {
            return Err(Errno::EBUSY);
        }
        if self.get_st_modes(dev) & (1 << mode.field()) == 0 {
            return Err(Errno::EINVAL);
        }
        let req_type = self.negotiate_req_type(dev, plat);
        if req_type == ReqEnable::Disabled {
            return Err(Errno::EINVAL);
        }
        let ctrl = TphControl::from_bits(self.cfg_read(dev, TPH_CTRL))
            .with_mode(mode)
            .with_enable(req_type);
        self.cfg_write(dev, TPH_CTRL, ctrl.to_bits());
        (self.mode, self.req_type, self.enabled) = (mode, req_type, true);
        Ok(())
    }

    /// Core enable step 5: 3 with extended TPH, else 1; limited by the root port's completer
    /// field unless the device is a Root Complex integrated endpoint (no root port: 0).
    /// The arithmetic is `tph_regs::tph::negotiate`; the inputs are read from hardware here.
    fn negotiate_req_type(&self, dev: &mut Function, plat: &dyn Platform) -> ReqEnable {
        let cap = TphCapability::from_bits(self.cfg_read(dev, TPH_CAP));
        let upstream = if self.rciep {
            Upstream::RcIntegrated
        } else {
            match plat.root_port_devcap2() {
                Some(v) => Upstream::RootPort(CompleterSupport::from_devcap2(v)),
                None => Upstream::NoRootPort,
            }
        };
        negotiate(&cap, upstream).unwrap_or(ReqEnable::Disabled)
    }

    /// `pcie_disable_tph()`: a no-op unless the core enabled TPH; writes Control = 0.
    pub fn disable(&mut self, dev: &mut Function) {
        if !self.enabled {
            return;
        }
        self.cfg_write(dev, TPH_CTRL, 0);
        self.forget();
    }

    /// `pcie_tph_set_st_entry(index, tag)`, core steps 1-6.
    pub fn set_st_entry(
        &mut self,
        dev: &mut Function,
        msi: &mut MsiState,
        index: u16,
        tag: u16,
    ) -> Result<(), Errno> {
        if self.cap == 0 || !self.enabled {
            return Err(Errno::EINVAL);
        }
        if self.mode == StMode::NoSt {
            return Ok(());
        }
        // Core step 3 (PCIe r6.2 sec 6.17.3): requests off while the entry changes. Unlike
        // tph.c, a Control write that did not land counts as a failure (step 5), so a table
        // write never follows a failed disable.
        let result = self
            .set_req_enable(dev, ReqEnable::Disabled)
            .and_then(|()| self.write_tag(dev, msi, index, tag))
            .and_then(|()| self.set_req_enable(dev, self.req_type));
        if let Err(e) = result {
            self.disable(dev);
            return Err(e);
        }
        Ok(())
    }

    /// Writes `tag` to table entry `index` wherever the table lives, without the enable
    /// checks of [`TphState::set_st_entry`]. The VFIO layer uses it to roll entries back after
    /// a failed SET_ST, when the core has already turned TPH off.
    pub fn write_tag(
        &self,
        dev: &mut Function,
        msi: &mut MsiState,
        index: u16,
        tag: u16,
    ) -> Result<(), Errno> {
        match self.get_st_table_loc(dev) {
            StLocation::Capability => self.write_tag_to_cap(dev, index, tag),
            StLocation::MsiX => write_tag_to_msix(dev, msi, index, tag),
            // No table, a reserved location, or one this model does not know: mainline's
            // `default:` case.
            _ => Err(Errno::EINVAL),
        }
    }

    fn write_tag_to_cap(&self, dev: &mut Function, index: u16, tag: u16) -> Result<(), Errno> {
        if index >= self.get_st_table_size(dev) {
            return Err(Errno::ENXIO);
        }
        let off = u16::try_from(st_offset(self.cap, index)).map_err(|_| Errno::ENXIO)?;
        effect_result(dev.config_write(off, 2, u32::from(tag)))
    }

    fn set_req_enable(&self, dev: &mut Function, req: ReqEnable) -> Result<(), Errno> {
        let ctrl = TphControl::from_bits(self.cfg_read(dev, TPH_CTRL)).with_enable(req);
        effect_result(dev.config_write(self.cap + TPH_CTRL as u16, 4, ctrl.to_bits()))
    }

    /// `pcie_tph_get_cpu_st(mem_type, cpu)`: the `_DSM` of the host bridge above the
    /// device's root port for the CPU's ACPI UID; the tag width follows the **enabled**
    /// requester type; an invalid tag is success with tag 0.
    /// The CPU is converted to its UID before the root port is looked for (7.3's
    /// `acpi_get_cpu_uid` first), so a CPU the host lacks is EINVAL even without a root port.
    pub fn get_cpu_st<P: Platform + ?Sized>(
        &self,
        plat: &P,
        mem: MemType,
        cpu: u32,
    ) -> Result<u16, Errno> {
        let uid = plat.cpu_uid(cpu).ok_or(Errno::EINVAL)?;
        let bridge = plat.host_bridge().ok_or(Errno::ENODEV)?;
        let info = plat
            .firmware()
            .st_info_at(bridge, uid)
            .map_err(|_| Errno::EINVAL)?;
        let width = TagWidth::for_requester_type(self.req_type.field());
        Ok(width.and_then(|w| info.tag(mem, w)).unwrap_or(0))
    }

    /// `pcie_tph_get_st_table_loc()` with the v7 fix: the location as a type (its
    /// `PCI_TPH_LOC_*` register-positioned value is [`StLocation::register_bits`]), none
    /// without a capability.
    pub fn get_st_table_loc(&self, dev: &mut Function) -> StLocation {
        if self.cap == 0 {
            return StLocation::None;
        }
        self.capability(dev).location
    }

    fn capability(&self, dev: &mut Function) -> TphCapability {
        TphCapability::from_bits(self.cfg_read(dev, TPH_CAP))
    }

    /// `pcie_tph_get_st_table_size()`: field + 1 when the table is in the capability, else 0.
    /// Two reads of the Capability register, as mainline: the location
    /// (`pcie_tph_get_st_table_loc`), then the size.
    pub fn get_st_table_size(&self, dev: &mut Function) -> u16 {
        if self.get_st_table_loc(dev) != StLocation::Capability {
            return 0;
        }
        self.capability(dev).table_size
    }

    /// `pcie_tph_get_st_modes()` (exported by v7): capability bits 2:0, 0 without capability.
    pub fn get_st_modes(&self, dev: &mut Function) -> u8 {
        if self.cap == 0 {
            return 0;
        }
        self.capability(dev).modes()
    }

    /// Save before a reset: only when the core enabled TPH; Control and capability entries.
    pub fn save(&mut self, dev: &mut Function) {
        if !self.enabled {
            self.saved = None;
            return;
        }
        let control = self.cfg_read(dev, TPH_CTRL);
        let entries = (0..self.get_st_table_size(dev))
            .map(|i| self.read_cap_entry(dev, i))
            .collect();
        self.saved = Some(SavedTph { control, entries });
    }

    fn read_cap_entry(&self, dev: &mut Function, index: u16) -> u16 {
        u16::try_from(st_offset(self.cap, index)).map_or(0, |off| dev.config_read(off, 2) as u16)
    }

    /// Mainline restore order: Control first (Requester Enable included), then the entries.
    /// This writes the table while TPH is enabled, which the device records as a violation.
    pub fn restore_mainline(&self, dev: &mut Function) {
        let Some(saved) = self.saved.as_ref().filter(|_| self.enabled) else {
            return;
        };
        self.cfg_write(dev, TPH_CTRL, saved.control);
        self.restore_entries(dev, &saved.entries);
    }

    /// Safe restore, first half: Control without Requester Enable, then the entries.
    /// Finish with [`TphState::restore_enable`] (after MSI-X restore).
    pub fn restore_table(&self, dev: &mut Function) {
        let Some(saved) = self.saved.as_ref().filter(|_| self.enabled) else {
            return;
        };
        let ctrl = TphControl::from_bits(saved.control).with_enable(ReqEnable::Disabled);
        self.cfg_write(dev, TPH_CTRL, ctrl.to_bits());
        self.restore_entries(dev, &saved.entries);
    }

    /// Safe restore, second half: the saved Control, Requester Enable included.
    pub fn restore_enable(&self, dev: &mut Function) {
        if let Some(saved) = self.saved.as_ref().filter(|_| self.enabled) {
            self.cfg_write(dev, TPH_CTRL, saved.control);
        }
    }

    /// The saved entries, as many as `pcie_tph_get_st_table_size()` says now (mainline asks
    /// again at restore).
    fn restore_entries(&self, dev: &mut Function, entries: &[u16]) {
        let n = usize::from(self.get_st_table_size(dev));
        for (i, e) in (0u16..).zip(entries.iter().take(n)) {
            if let Ok(off) = u16::try_from(st_offset(self.cap, i)) {
                dev.config_write(off, 2, u32::from(*e));
            }
        }
    }

    fn cfg_read(&self, dev: &mut Function, reg: usize) -> u32 {
        dev.config_read(self.cap + reg as u16, 4)
    }

    /// Config writes of the core ignore the result, as `pci_write_config_dword` callers in
    /// `tph.c` do.
    fn cfg_write(&self, dev: &mut Function, reg: usize, value: u32) {
        dev.config_write(self.cap + reg as u16, 4, value);
    }
}

fn effect_result(e: Effect) -> Result<(), Errno> {
    if e.is_ok() {
        Ok(())
    } else {
        Err(Errno::EIO)
    }
}

/// Core set_st_entry step 4, MSI-X (`pci_msix_write_tph_tag`): MSI-X enabled and a vector
/// allocated at `index`, else ENXIO; the tag goes into the kernel's **cached** Vector Control
/// (31:16, mask bit kept), the cache is written to the device and read back to flush; no
/// check against ST Table Size.
fn write_tag_to_msix(
    dev: &mut Function,
    msi: &mut MsiState,
    index: u16,
    tag: u16,
) -> Result<(), Errno> {
    let Some(cached) = msi
        .vector_ctrl
        .get_mut(usize::from(index))
        .filter(|_| msi.enabled)
    else {
        return Err(Errno::ENXIO);
    };
    *cached = with_vector_control_st(*cached, tag);
    effect_result(dev.msix_write(index, VECTOR_CTRL, *cached))?;
    dev.msix_read(index, VECTOR_CTRL);
    Ok(())
}

fn is_rciep(dev: &Function) -> bool {
    let Some(exp) = dev.express() else {
        return false;
    };
    let at = usize::from(exp) + EXP_FLAGS;
    let flags = dev
        .config_bytes()
        .get(at..at + 2)
        .map_or(0, |b| u16::from_le_bytes([b[0], b[1]]));
    PortType::from_exp_flags(flags) == PortType::RcIntegratedEndpoint
}

/// Reads Device Capabilities 2 of a (root port) function through its config space.
pub fn read_devcap2(port: &mut Function) -> Option<u32> {
    let exp = port.express()?;
    Some(port.config_read(exp + EXP_DEVCAP2 as u16, 4))
}
