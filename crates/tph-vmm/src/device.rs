//! The virtual TPH device: the guest's view of one passed-through function's TPH Requester
//! capability, and the translation of the guest's steering tags into host programming through
//! the client.

use tph_acpi::{StHalf, StInfo};
use tph_client::backend::Backend;
use tph_client::{CpuQuery, MemType, Mode, Steer, TphDevice};
use tph_regs::msix::MsixCap;
use tph_regs::tph::{ReqEnable, StLocation, StMode, TphControl, TphRequester, TPH_CTRL};

use crate::config::{VirtualCap, VmConfig};
use crate::error::Error;
use crate::fields::{self, Attr};
use crate::vtag::{Decoded, TagSpace, TagWidth};

/// Bytes of configuration space read from the host device (PCI Express: 4 KiB).
const CONFIG_SPACE: usize = 4096;

/// What the host holds in one steering table entry, as far as this layer knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum HostEntry {
    /// Never programmed by this layer, or a failed call left it unknown.
    Unknown,
    /// Cleared to tag 0.
    Clear,
    /// The tag of this host CPU for this memory type.
    Cpu(u32, MemType),
}

/// A Control write's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ControlChange {
    /// The guest enabled TPH (or changed mode or width while enabled).
    Enabled {
        /// The guest's ST mode.
        mode: StMode,
        /// The tag width it enabled.
        width: TagWidth,
    },
    /// The guest turned TPH off.
    Disabled,
    /// Nothing the device would act on changed.
    Unchanged,
    /// The host could not follow (see [`Effect::host_failures`]): the guest reads its Control
    /// with Requester Enable 0, TPH off, and may try again.
    HostFailed {
        /// The value the guest wrote (merged into the register).
        value: u32,
    },
    /// The write named a mode or requester type the virtual device does not offer (reserved
    /// values included) and was dropped: Control keeps its value.
    Refused {
        /// The value written (merged into the register).
        value: u32,
    },
}

/// An entry whose tag names no vCPU of this VM: cleared on the host instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Foreign {
    /// The table index.
    pub index: u16,
    /// The tag the guest wrote (in the enabled width).
    pub tag: u16,
}

impl Foreign {
    /// Entry `index` holding the foreign tag `tag` (to compare with an [`Effect`]).
    ///
    /// ```
    /// let f = tph_vmm::Foreign::new(2, 0x30);
    /// assert_eq!((f.index, f.tag), (2, 0x30));
    /// ```
    pub const fn new(index: u16, tag: u16) -> Self {
        Self { index, tag }
    }
}

/// What a trapped guest write did (house style: writes return effects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Effect {
    /// The Control register's change, when Control was written.
    pub control: Option<ControlChange>,
    /// Table entries whose guest value changed.
    pub entries: Vec<u16>,
    /// Entries now holding a foreign tag (never sent to the device).
    pub foreign: Vec<Foreign>,
    /// Calls made to the host (enable, disable, one SET_ST batch each).
    pub host_calls: u32,
    /// Host calls that failed, in order. The hook itself never fails on them: the guest sees
    /// what the host could do (TPH off when it could not be enabled, its own tags in the
    /// table either way), and the VMM logs or counts these.
    pub host_failures: Vec<HostFailure>,
}

impl Effect {
    /// Every host call this effect made succeeded.
    pub fn host_ok(&self) -> bool {
        self.host_failures.is_empty()
    }

    fn fail(&mut self, e: Error) {
        self.host_failures.push(HostFailure::from(e));
    }
}

/// A host call that failed under a hook (reported in [`Effect::host_failures`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HostFailure {
    /// What the layer asked the host for.
    pub op: &'static str,
    /// The kernel's errno, when the call failed with one.
    pub errno: Option<tph_client::Errno>,
    /// The client's explanation.
    pub message: String,
}

impl std::fmt::Display for HostFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "host {} failed: {}", self.op, self.message)
    }
}

impl std::error::Error for HostFailure {}

impl From<Error> for HostFailure {
    fn from(e: Error) -> Self {
        let errno = e.errno();
        match e {
            Error::Host { op, source } => Self {
                op,
                errno,
                message: source.to_string(),
            },
            other => Self {
                op: "host call",
                errno,
                message: other.to_string(),
            },
        }
    }
}

/// A trapped MSI-X Vector Control write: the ST half handled here, the mask bit for the VMM.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsixWrite {
    /// Vector Control bit 0 as the guest wrote it: the VMM masks or unmasks the vector.
    pub masked: bool,
    /// What the ST half did.
    pub effect: Effect,
}

/// Counters of what the guest tried (reported to the VMM, e.g. as metrics).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Entry writes whose tag named no vCPU of this VM.
    pub foreign_tags: u64,
    /// Control writes dropped (modes or types not offered, reserved values).
    pub refused_controls: u64,
    /// Host calls made so far.
    pub host_calls: u64,
}

/// The virtual TPH device of one passed-through function (see the crate documentation).
#[derive(Debug)]
pub struct VirtualTph<B: Backend> {
    dev: TphDevice<B>,
    offset: u16,
    header: u32,
    vcap: VirtualCap,
    space: TagSpace,
    cfg: VmConfig,
    control: u32,
    table: Vec<u16>,
    host_mode: Option<Mode>,
    /// Under the unsafe DS option: the host tags the guest firmware hands out, to the vCPU and
    /// memory type each stands for (filled by `ds_firmware_results`).
    ds_tags: std::collections::HashMap<u16, (u32, MemType)>,
    host: Vec<HostEntry>,
    /// Entries that may hold a host tag this layer programmed (a SET_ST with a CPU was sent and
    /// no clear has succeeded since): the only entries the layer ever clears on its own.
    ours: Vec<bool>,
    /// The host mode this layer last enabled (to clear its entries on reset while the guest
    /// has TPH off).
    last_mode: Option<Mode>,
    host_vectors: u32,
    stats: Stats,
}

impl<B: Backend> VirtualTph<B> {
    /// Builds the virtual device over `dev` (the client handle of the host device): reads the
    /// host's configuration space and capabilities (one GET_CAP) and starts with the guest's
    /// TPH off and its table zero.
    pub fn new(mut dev: TphDevice<B>, cfg: VmConfig) -> Result<Self, Error> {
        let space = cfg.tag_space()?;
        let mut config = vec![0u8; CONFIG_SPACE];
        dev.read_config(0, &mut config)
            .map_err(Error::host("configuration read"))?;
        let req = match TphRequester::find(&config) {
            Some(Ok(r)) => r,
            _ => return Err(Error::NoTphCapability),
        };
        let offered = dev
            .capabilities()
            .map_err(Error::host("capability query"))?;
        let vectors = MsixCap::find(&config).map_or(0, |m| m.table_size);
        let vcap = VirtualCap::compute(
            &req.cap,
            &offered,
            cfg.host_upstream,
            cfg.unsafe_ds,
            vectors,
        );
        let header = u32::from_le_bytes(header_bytes(&config, req.offset));
        let n = usize::from(vcap.entries);
        Ok(Self {
            dev,
            offset: req.offset,
            header,
            vcap,
            space,
            cfg,
            control: 0,
            table: vec![0; n],
            host_mode: None,
            ds_tags: std::collections::HashMap::new(),
            host: vec![HostEntry::Unknown; n],
            ours: vec![false; n],
            last_mode: None,
            host_vectors: 0,
            stats: Stats::default(),
        })
    }

    /// Offset of the TPH capability in configuration space (the guest sees it there too).
    pub fn cap_offset(&self) -> u16 {
        self.offset
    }

    /// The virtual capability (what the guest reads, and its root port's completer).
    pub fn virtual_cap(&self) -> &VirtualCap {
        &self.vcap
    }

    /// The guest's tag space.
    pub fn tag_space(&self) -> TagSpace {
        self.space
    }

    /// The configuration this device was built with (the pinning as it is now).
    pub fn config(&self) -> &VmConfig {
        &self.cfg
    }

    /// The guest path allows extended TPH (16-bit tags in the firmware).
    pub fn extended(&self) -> bool {
        self.vcap.cap.ext
    }

    /// Whether configuration offset `offset` lies in the capability this layer virtualises
    /// (the VMM traps those and passes everything else through).
    pub fn handles(&self, offset: u16) -> bool {
        (self.offset..self.offset + self.vcap.len()).contains(&offset)
    }

    /// The Control register as the guest reads it.
    pub fn guest_control(&self) -> u32 {
        self.control
    }

    /// The steering table as the guest reads it (its own virtual tags).
    pub fn guest_table(&self) -> &[u16] {
        &self.table
    }

    /// What this layer believes each host entry holds.
    pub fn host_entries(&self) -> &[HostEntry] {
        &self.host
    }

    /// Counters of hostile or refused guest actions and host calls.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// The client handle below.
    pub fn device(&self) -> &TphDevice<B> {
        &self.dev
    }

    /// The client handle below, mutably (the VMM's MSI-X set-up goes through it).
    pub fn device_mut(&mut self) -> &mut TphDevice<B> {
        &mut self.dev
    }

    /// Gives the client handle back.
    pub fn into_device(self) -> TphDevice<B> {
        self.dev
    }

    /// The dword of the capability at relative offset `rel` (a multiple of 4) as the guest
    /// reads it.
    fn dword(&self, rel: u16) -> u32 {
        match rel {
            0 => self.header,
            4 => self.vcap.cap.to_bits(),
            8 => self.control,
            _ => {
                let i = usize::from((rel - 0xc) / 2);
                let e = |i: usize| u32::from(self.table.get(i).copied().unwrap_or(0));
                e(i) | e(i + 1) << 16
            }
        }
    }

    /// A trapped guest configuration read of `buf.len()` bytes at `offset` (inside the
    /// capability; bytes outside read as 0).
    pub fn read_config(&self, offset: u16, buf: &mut [u8]) {
        buf.fill(0);
        for (at, b) in config_addresses(offset, buf.len()).zip(buf.iter_mut()) {
            *b = if self.handles(at) {
                let rel = at - self.offset;
                self.dword(rel & !3).to_le_bytes()[usize::from(rel & 3)]
            } else {
                0
            };
        }
    }

    /// A trapped guest configuration write of `data` at `offset` (1, 2 or 4 bytes; bytes
    /// outside the capability are ignored). Register semantics follow [`crate::fields`]:
    /// read-only and reserved bits are ignored; see [`ControlChange::Refused`] for Control.
    /// Never fails: what the host refused is in [`Effect::host_failures`].
    pub fn write_config(&mut self, offset: u16, data: &[u8]) -> Effect {
        let mut effect = Effect::default();
        let mut dwords: Vec<(u16, u32, u32)> = Vec::new();
        for (at, b) in config_addresses(offset, data.len()).zip(data) {
            if !self.handles(at) {
                continue;
            }
            let rel = at - self.offset;
            let lane = 8 * u32::from(rel & 3);
            match dwords.last_mut() {
                Some((r, v, m)) if *r == rel & !3 => {
                    *v |= u32::from(*b) << lane;
                    *m |= 0xff << lane;
                }
                _ => dwords.push((rel & !3, u32::from(*b) << lane, 0xff << lane)),
            }
        }
        for (rel, value, lanes) in dwords {
            let merged = (self.dword(rel) & !lanes) | value;
            match rel {
                0 | 4 => {} // header RO, Capability HwInit
                8 => effect.control = Some(self.write_control(merged, &mut effect)),
                _ => self.write_entries(rel, merged, lanes, &mut effect),
            }
        }
        effect
    }

    /// The entries of the table dword at `rel` whose byte lanes were written.
    fn write_entries(&mut self, rel: u16, merged: u32, lanes: u32, effect: &mut Effect) {
        let first = (rel - 0xc) / 2;
        let rw = fields::entry_rw_mask(self.vcap.cap.ext);
        let mut changed = Vec::new();
        for (k, index) in [(0u32, first), (1, first + 1)] {
            if (lanes >> (16 * k)) & 0xffff == 0 || usize::from(index) >= self.table.len() {
                continue;
            }
            changed.push((index, (merged >> (16 * k)) as u16 & rw));
        }
        self.set_guest_entries(&changed, effect)
    }

    /// A trapped guest write of Vector Control of MSI-X entry `vector` (the VMM traps the MSI-X
    /// table). The ST half (31:16) is this layer's when the table lives in MSI-X; bit 0 is the
    /// VMM's. Never fails: what the host refused is in [`Effect::host_failures`].
    pub fn write_vector_control(&mut self, vector: u16, value: u32) -> MsixWrite {
        let mut effect = Effect::default();
        let in_msix = self.vcap.cap.location == StLocation::MsiX;
        let st = (value >> 16) as u16 & fields::vector_control_st_mask(in_msix);
        if in_msix && usize::from(vector) < self.table.len() {
            self.set_guest_entries(&[(vector, st)], &mut effect);
        }
        let mask_bit = fields::vector_control_mask_bit();
        MsixWrite {
            masked: value & mask_bit != 0,
            effect,
        }
    }

    /// A trapped guest write of `data` at byte `offset` of the MSI-X table (the access as the
    /// guest made it: 4 bytes, or 8 bytes covering Message Data and Vector Control, or any
    /// other width a hostile guest tries). The layer takes the ST half (bytes 14 and 15 of
    /// each entry it covers) when the table lives in MSI-X; everything else, the mask bit
    /// included, stays the VMM's own emulation. Never fails.
    ///
    /// ```
    /// # let host = tph_kernel::Host::with_default_machine(Default::default());
    /// # let backend = tph_emu::EmulatedBackend::take_over(&host, "01:00.0".parse().unwrap()).unwrap();
    /// # let dev = tph_client::TphDevice::with_revision(backend, tph_client::Revision::V7).unwrap();
    /// # let cfg = tph_vmm::VmConfig::new(2).with_pins(&[(0, 5), (1, 6)]).unwrap();
    /// # let mut vtph = tph_vmm::VirtualTph::new(dev, cfg).unwrap();
    /// // The guest writes entry 3's Message Data and Vector Control (tag 2) in one qword.
    /// let qword = 0x4000u64 | (2u64 << 16 | 1) << 32;
    /// vtph.write_msix_table(3 * 16 + 8, &qword.to_le_bytes());
    /// assert_eq!(vtph.read_vector_control_st(3), 2);
    /// ```
    pub fn write_msix_table(&mut self, offset: u64, data: &[u8]) -> Effect {
        let mut effect = Effect::default();
        if self.vcap.cap.location != StLocation::MsiX {
            return effect;
        }
        let st_mask = fields::vector_control_st_mask(true);
        let mut writes: Vec<(u16, u16)> = Vec::new();
        for (at, b) in table_addresses(offset, data.len()).zip(data) {
            let (Ok(vector), byte) = (u16::try_from(at / 16), at % 16) else {
                break;
            };
            if byte < 14 || usize::from(vector) >= self.table.len() {
                continue;
            }
            let shift = 8 * (byte - 14);
            let lane = 0xffu16 << shift;
            let base = match writes.last() {
                Some(&(v, value)) if v == vector => value,
                _ => self.table[usize::from(vector)],
            };
            let value = ((base & !lane) | u16::from(*b) << shift) & st_mask;
            match writes.last_mut() {
                Some((v, w)) if *v == vector => *w = value,
                _ => writes.push((vector, value)),
            }
        }
        if !writes.is_empty() {
            self.set_guest_entries(&writes, &mut effect);
        }
        effect
    }

    /// A trapped guest read of `buf.len()` bytes at byte `offset` of the MSI-X table: the VMM
    /// fills `buf` from its own emulation first, then this puts the guest's ST half (bytes 14
    /// and 15 of each entry) over it when the table lives in MSI-X.
    pub fn read_msix_table(&self, offset: u64, buf: &mut [u8]) {
        if self.vcap.cap.location != StLocation::MsiX {
            return;
        }
        for (at, b) in table_addresses(offset, buf.len()).zip(buf.iter_mut()) {
            let (Ok(vector), byte) = (u16::try_from(at / 16), at % 16) else {
                break;
            };
            if byte < 14 {
                continue;
            }
            if let Some(st) = self.table.get(usize::from(vector)) {
                *b = st.to_le_bytes()[usize::from(byte == 15)];
            }
        }
    }

    /// The ST half of Vector Control of `vector` as the guest reads it (the VMM merges its own
    /// mask bit into bits 15:0).
    pub fn read_vector_control_st(&self, vector: u16) -> u16 {
        if self.vcap.cap.location != StLocation::MsiX {
            return 0;
        }
        self.table.get(usize::from(vector)).copied().unwrap_or(0)
    }

    /// The VMM enabled host MSI-X vectors `0..count` (its `VFIO_DEVICE_SET_IRQS`): entries of
    /// a table in MSI-X can be programmed only on enabled vectors, so the ones waiting are
    /// programmed now (one batched call, only while the guest has TPH on). Never fails: what
    /// the host refused is in [`Effect::host_failures`].
    pub fn host_msix_enabled(&mut self, count: u32) -> Effect {
        self.host_vectors = count;
        self.dev.note_msix_vectors(count);
        let mut effect = Effect::default();
        if self.vcap.cap.location != StLocation::MsiX {
            return effect;
        }
        // The kernel re-allocated the vectors: what their Vector Control words hold now is
        // its business, so every entry is programmed again.
        self.host.iter_mut().for_each(|h| *h = HostEntry::Unknown);
        self.sync_all(&mut effect);
        effect
    }

    /// The VMM is about to change the host's MSI-X vectors (its `VFIO_DEVICE_SET_IRQS`): the
    /// entries this layer programmed are cleared first (one batched call), because the kernel
    /// cannot reach the table entry of a vector that is not enabled and a tag left there would
    /// outlive the vCPU's pinning. Only while the guest has TPH on: with TPH off the host is
    /// never enabled for it, the device does not use its table, and the next enable programs
    /// every entry again. Entries this layer never programmed are left alone. Never fails:
    /// what the host refused is in [`Effect::host_failures`]. Follow with
    /// [`VirtualTph::host_msix_enabled`].
    pub fn host_msix_will_change(&mut self) -> Effect {
        let mut effect = Effect::default();
        if self.vcap.cap.location != StLocation::MsiX || self.host_mode.is_none() {
            return effect;
        }
        let owned = self.owned_entries();
        self.clear_host(&owned, &mut effect);
        effect
    }

    /// The guest reset the function (Function Level Reset, or the VM rebooted): the entries
    /// this layer programmed are cleared (one batched call), the host's TPH is disabled, and
    /// the virtual Control and steering table go back to their reset value 0. Call it before
    /// the VMM's own reset of the device and of its MSI-X emulation. A guest that left entries
    /// behind with TPH off (its driver disabled TPH without clearing them) has the host
    /// enabled in the mode they were programmed in just for the clear. A guest that never
    /// enabled TPH causes no host call. Never fails: what the host refused is in
    /// [`Effect::host_failures`].
    pub fn reset(&mut self) -> Effect {
        let mut effect = Effect::default();
        let owned = self.owned_entries();
        if let (None, Some(mode), false) = (self.host_mode, self.last_mode, owned.is_empty()) {
            self.host_call(&mut effect);
            match self.dev.enable(mode) {
                Ok(()) => self.host_mode = Some(mode),
                Err(e) => effect.fail(Error::host("enable (to clear on reset)")(e)),
            }
        }
        if self.host_mode.is_some() {
            self.clear_host(&owned, &mut effect);
            self.host_call(&mut effect);
            match self.dev.disable() {
                Ok(()) => self.host_mode = None,
                Err(e) => effect.fail(Error::host("disable")(e)),
            }
        }
        if self.width().is_some() {
            effect.control = Some(ControlChange::Disabled);
        }
        self.control = 0;
        for (i, e) in (0u16..).zip(self.table.iter_mut()) {
            if *e != 0 {
                effect.entries.push(i);
                *e = 0;
            }
        }
        effect
    }

    /// Entries that may hold a host tag this layer programmed and that the host can reach now.
    fn owned_entries(&self) -> Vec<u16> {
        (0u16..)
            .zip(&self.ours)
            .filter(|(i, ours)| **ours && self.programmable(*i))
            .map(|(i, _)| i)
            .collect()
    }

    /// One SET_ST clearing `indexes` (nothing when empty).
    fn clear_host(&mut self, indexes: &[u16], effect: &mut Effect) {
        if indexes.is_empty() {
            return;
        }
        self.host_call(effect);
        match self.dev.clear_entries(indexes) {
            Ok(()) => self.note_host(&[], indexes),
            Err(e) => {
                self.forget_host(&[], indexes);
                effect.fail(Error::host("steering table clearing")(e));
            }
        }
    }

    /// The guest firmware's `_DSM` results (one per vCPU, in the bit layout of
    /// `docs/spec/firmware-dsm.md`) while Device Specific mode is exposed with the unsafe option:
    /// the *host* tags of each vCPU's fixed host CPU, as the host kernel gives them (GET_ST in DS
    /// mode, both memory types, one call each; the device is enabled in DS just for the query
    /// when the guest has TPH off). In DS mode the guest driver writes tags into device-specific
    /// places the VMM cannot see, so only host tags steer anywhere; that is why the pinning is
    /// fixed and the option is unsafe. `None` without the option (the firmware then gives the
    /// virtual tags of [`TagSpace::st_info`]). An unpinned vCPU gets no valid tag. Call it when
    /// building the guest's tables (guest TPH off) or while the guest runs DS; while the host is
    /// in IV mode for the guest it is refused ([`Error::HostModeBusy`]).
    pub fn ds_firmware_results(&mut self) -> Result<Option<Vec<StInfo>>, Error> {
        if !(self.cfg.unsafe_ds && self.vcap.cap.ds) {
            return Ok(None);
        }
        if self.host_mode == Some(Mode::Iv) {
            return Err(Error::HostModeBusy);
        }
        let borrowed = self.host_mode.is_none();
        if borrowed {
            self.dev
                .enable(Mode::Ds)
                .map_err(Error::host("enable DS"))?;
        }
        let results = self.host_ds_tags();
        if borrowed {
            self.dev.disable().map_err(Error::host("disable"))?;
        }
        results.map(Some)
    }

    /// A guest tag: a host tag the firmware handed out under the unsafe DS option stands for its
    /// (fixed) vCPU; anything else is decoded as a virtual tag.
    fn decode(&self, raw: u16, width: TagWidth) -> Decoded {
        let tag = match width {
            TagWidth::Bits8 => raw & 0xff,
            TagWidth::Bits16 => raw,
        };
        match self.ds_tags.get(&tag) {
            Some(&(vcpu, mem)) if tag != 0 => Decoded::Vcpu { vcpu, mem },
            _ => self.space.decode(raw, width),
        }
    }

    /// GET_ST for every pinned vCPU's host CPU, both memory types, into `_DSM` results: the
    /// 8-bit field when the host path is TPH only, the 16-bit one with extended TPH.
    fn host_ds_tags(&mut self) -> Result<Vec<StInfo>, Error> {
        let pins = self.cfg.pins.clone();
        let cpus: Vec<u32> = pins.iter().flatten().copied().collect();
        let query = |mem| -> Vec<CpuQuery> {
            cpus.iter()
                .map(|&cpu| CpuQuery::new(cpu).with_mem(mem))
                .collect()
        };
        let (vm, pm) = if cpus.is_empty() {
            (Vec::new(), Vec::new())
        } else {
            let vm = self.dev.steering_tags(&query(MemType::Volatile));
            let vm = vm.map_err(Error::host("GET_ST"))?;
            let pm = self.dev.steering_tags(&query(MemType::Persistent));
            (vm, pm.map_err(Error::host("GET_ST"))?)
        };
        let ext = self.vcap.cap.ext;
        let half = |tag: u16| match ext {
            true => StHalf::new(None, Some(tag)),
            false => StHalf::new(Some(tag as u8), None),
        };
        let mut at = 0;
        let mut results = Vec::with_capacity(pins.len());
        for (vcpu, pin) in (0u32..).zip(&pins) {
            if pin.is_none() {
                results.push(StInfo(0));
                continue;
            }
            for (tag, mem) in [(vm[at], MemType::Volatile), (pm[at], MemType::Persistent)] {
                self.ds_tags.entry(tag).or_insert((vcpu, mem));
            }
            results.push(StInfo::from_halves(half(vm[at]), half(pm[at])));
            at += 1;
        }
        Ok(results)
    }

    /// Re-pins `vcpu` to `host_cpu` (`None`: unpinned). Every entry holding one of its tags is
    /// re-targeted in one batched call (cleared while unpinned). Errors are the VMM's own
    /// mistakes only (no such vCPU, the clear value as a CPU, a fixed pinning); what the host
    /// refused is in [`Effect::host_failures`].
    pub fn pin(&mut self, vcpu: u32, host_cpu: Option<u32>) -> Result<Effect, Error> {
        let vcpus = self.space.vcpus();
        if self.cfg.unsafe_ds && self.vcap.cap.ds {
            return Err(Error::FixedPinning);
        }
        if host_cpu == Some(tph_abi::CPU_CLEAR) {
            return Err(Error::ClearValueAsCpu(tph_abi::CPU_CLEAR));
        }
        let slot = self
            .cfg
            .pins
            .get_mut(vcpu as usize)
            .ok_or(Error::NoSuchVcpu { vcpu, vcpus })?;
        *slot = host_cpu;
        let mut effect = Effect::default();
        let width = self.width();
        let owned: Vec<u16> = (0u16..)
            .zip(&self.table)
            .filter(|(_, t)| {
                width.is_some_and(
                    |w| matches!(self.decode(**t, w), Decoded::Vcpu { vcpu: v, .. } if v == vcpu),
                )
            })
            .map(|(i, _)| i)
            .collect();
        self.sync(&owned, &mut effect);
        Ok(effect)
    }

    /// The guest plays itself (tools and tests): a raw write of `value` into its ST entry
    /// `index` wherever the table lives (a 16-bit config write into the capability, or the ST
    /// half of Vector Control with the vector unmasked). Error for an index beyond the table.
    pub fn write_guest_entry(&mut self, index: u16, value: u16) -> Result<Effect, Error> {
        if usize::from(index) >= self.table.len() {
            return Err(Error::NoSuchEntry {
                index,
                entries: self.vcap.entries,
            });
        }
        match self.vcap.cap.location {
            StLocation::Capability => {
                let at = self.offset + tph_regs::tph::TPH_TABLE as u16 + 2 * index;
                Ok(self.write_config(at, &value.to_le_bytes()))
            }
            _ => Ok(self
                .write_vector_control(index, u32::from(value) << 16)
                .effect),
        }
    }

    /// The guest plays itself: writes `mode` into Control with the widest requester type its
    /// root port completes (TPH Requester Enable 3 on an extended path, else 1), or Control 0
    /// for `None`.
    pub fn write_guest_control(&mut self, mode: Option<StMode>) -> Effect {
        let value = match mode {
            None => 0,
            Some(mode) => {
                let enable = if self.extended() {
                    ReqEnable::ExtTph
                } else {
                    ReqEnable::Tph
                };
                TphControl::new(mode, enable).to_bits()
            }
        };
        let at = self.offset + TPH_CTRL as u16;
        self.write_config(at, &value.to_le_bytes())
    }

    /// The tag width the guest enabled, `None` while its TPH is off.
    pub fn guest_width(&self) -> Option<TagWidth> {
        self.width()
    }

    /// The tag width the guest enabled, `None` while its TPH is off.
    fn width(&self) -> Option<TagWidth> {
        match TphControl::from_bits(self.control).enable {
            ReqEnable::Tph => Some(TagWidth::Bits8),
            ReqEnable::ExtTph => Some(TagWidth::Bits16),
            _ => None,
        }
    }

    /// Stores guest entry values, counts foreign tags, programs the host when enabled.
    fn set_guest_entries(&mut self, writes: &[(u16, u16)], effect: &mut Effect) {
        let width = self.width().unwrap_or(if self.vcap.cap.ext {
            TagWidth::Bits16
        } else {
            TagWidth::Bits8
        });
        let mut indexes = Vec::with_capacity(writes.len());
        for &(index, value) in writes {
            if let Some(slot) = self.table.get_mut(usize::from(index)) {
                *slot = value;
                indexes.push(index);
                effect.entries.push(index);
            }
            if let Decoded::Foreign(tag) = self.decode(value, width) {
                self.stats.foreign_tags += 1;
                effect.foreign.push(Foreign { index, tag });
            }
        }
        self.sync(&indexes, effect);
    }

    /// What the host entry `index` should hold now (`None`: the host is not programmed).
    fn desired(&self, index: u16) -> Option<HostEntry> {
        let ctrl = TphControl::from_bits(self.control);
        let width = self.width()?;
        if ctrl.mode == StMode::NoSt {
            return Some(HostEntry::Clear);
        }
        let raw = self.table.get(usize::from(index)).copied()?;
        Some(match self.decode(raw, width) {
            Decoded::Vcpu { vcpu, mem } => match self.cfg.pins.get(vcpu as usize) {
                Some(Some(cpu)) => HostEntry::Cpu(*cpu, mem),
                // Unpinned policy: cleared until pinned.
                _ => HostEntry::Clear,
            },
            Decoded::None | Decoded::Foreign(_) => HostEntry::Clear,
        })
    }

    /// The host can take a SET_ST for `index` now.
    fn programmable(&self, index: u16) -> bool {
        match self.vcap.cap.location {
            StLocation::Capability => usize::from(index) < self.table.len(),
            StLocation::MsiX => u32::from(index) < self.host_vectors,
            _ => false,
        }
    }

    fn sync_all(&mut self, effect: &mut Effect) {
        let all: Vec<u16> = (0..self.vcap.entries).collect();
        self.sync(&all, effect);
    }

    /// [`VirtualTph::try_sync`], a failure reported in `effect`.
    fn sync(&mut self, indexes: &[u16], effect: &mut Effect) {
        if let Err(e) = self.try_sync(indexes, effect) {
            effect.fail(e);
        }
    }

    /// Brings the host entries at `indexes` to what they should hold: one SET_ST batch for
    /// the ones that differ, only while the host is enabled for this guest.
    fn try_sync(&mut self, indexes: &[u16], effect: &mut Effect) -> Result<(), Error> {
        if self.host_mode.is_none() {
            return Ok(());
        }
        let (mut set, mut clear) = (Vec::new(), Vec::new());
        for &i in indexes {
            let Some(want) = self.desired(i).filter(|_| self.programmable(i)) else {
                continue;
            };
            if self.host.get(usize::from(i)) == Some(&want) {
                continue;
            }
            match want {
                HostEntry::Cpu(cpu, mem) => set.push(Steer::new(i, cpu).with_mem(mem)),
                HostEntry::Clear => clear.push(i),
                HostEntry::Unknown => {}
            }
        }
        if set.is_empty() && clear.is_empty() {
            return Ok(());
        }
        self.host_call(effect);
        for s in &set {
            if let Some(o) = self.ours.get_mut(usize::from(s.index)) {
                *o = true;
            }
        }
        match self.dev.program(&set, &clear) {
            Ok(()) => {
                self.note_host(&set, &clear);
                Ok(())
            }
            Err(e) => {
                self.forget_host(&set, &clear);
                Err(Error::host("steering table programming")(e))
            }
        }
    }

    fn note_host(&mut self, set: &[Steer], clear: &[u16]) {
        for s in set {
            if let Some(h) = self.host.get_mut(usize::from(s.index)) {
                *h = HostEntry::Cpu(s.cpu, s.mem);
            }
        }
        for i in clear {
            if let Some(h) = self.host.get_mut(usize::from(*i)) {
                *h = HostEntry::Clear;
            }
            if let Some(o) = self.ours.get_mut(usize::from(*i)) {
                *o = false;
            }
        }
    }

    /// After a failed batch: its entries are unknown; a failed hardware write made the kernel
    /// turn TPH off (the client notices and says so).
    fn forget_host(&mut self, set: &[Steer], clear: &[u16]) {
        for i in set.iter().map(|s| s.index).chain(clear.iter().copied()) {
            if let Some(h) = self.host.get_mut(usize::from(i)) {
                *h = HostEntry::Unknown;
            }
        }
        if self.dev.believed_mode().is_none() {
            self.host_mode = None;
        }
    }

    fn host_call(&mut self, effect: &mut Effect) {
        effect.host_calls += 1;
        self.stats.host_calls += 1;
    }

    /// The guest wrote Control (already merged with the bytes it did not write).
    fn write_control(&mut self, merged: u32, effect: &mut Effect) -> ControlChange {
        let value = merged & fields::mask(fields::TPH, TPH_CTRL as u16, Attr::Rw);
        let ctrl = TphControl::from_bits(value);
        if !self.offers(&ctrl) {
            self.stats.refused_controls += 1;
            return ControlChange::Refused { value: merged };
        }
        let before = (self.control, self.width());
        self.control = value;
        if let Err(e) = self.apply_host_mode(effect) {
            // The guest sees TPH off when the host could not follow.
            let off = ctrl.with_enable(ReqEnable::Disabled);
            self.control = off.to_bits();
            effect.fail(e);
            return ControlChange::HostFailed { value: merged };
        }
        self.sync_all(effect);
        match self.width() {
            None if before.1.is_some() => ControlChange::Disabled,
            Some(width) if before != (value, Some(width)) => ControlChange::Enabled {
                mode: ctrl.mode,
                width,
            },
            _ => ControlChange::Unchanged,
        }
    }

    /// The virtual device offers this mode and requester type (reserved values never).
    fn offers(&self, ctrl: &TphControl) -> bool {
        let cap = &self.vcap.cap;
        let mode = match ctrl.mode {
            StMode::NoSt => cap.no_st,
            StMode::InterruptVector => cap.iv,
            StMode::DeviceSpecific => cap.ds,
            // Reserved, or a mode this layer does not know: never offered.
            _ => false,
        };
        let enable = match ctrl.enable {
            ReqEnable::Disabled => true,
            ReqEnable::Tph => self.vcap.completer.field() >= 1,
            ReqEnable::ExtTph => cap.ext,
            // Reserved, or a requester type this layer does not know: never offered.
            _ => false,
        };
        mode && enable
    }

    /// The host mode the guest's Control asks for: IV for IV, and for No-ST when the host has
    /// IV (every entry then cleared: each request carries tag 0, as No-ST does); DS for DS.
    fn wanted_host_mode(&self) -> Option<Mode> {
        self.width()?;
        match TphControl::from_bits(self.control).mode {
            StMode::InterruptVector => Some(Mode::Iv),
            StMode::NoSt if self.vcap.cap.iv => Some(Mode::Iv),
            StMode::DeviceSpecific => Some(Mode::Ds),
            _ => None,
        }
    }

    /// Guest enable/disable become host enable/disable (a mode change is both).
    fn apply_host_mode(&mut self, effect: &mut Effect) -> Result<(), Error> {
        let want = self.wanted_host_mode();
        if want == self.host_mode {
            return Ok(());
        }
        if self.host_mode.is_some() {
            self.host_call(effect);
            self.dev.disable().map_err(Error::host("disable"))?;
            self.host_mode = None;
        }
        if let Some(mode) = want {
            self.host_call(effect);
            self.dev.enable(mode).map_err(Error::host("enable"))?;
            self.host_mode = Some(mode);
            self.last_mode = Some(mode);
        }
        Ok(())
    }

    /// The guest-visible state, for migration (see [`crate::state::VmState`]).
    pub fn save(&self) -> crate::state::VmState {
        crate::state::VmState {
            vcpus: self.space.vcpus(),
            capability: self.vcap.cap.to_bits(),
            control: self.control,
            table: self.table.clone(),
        }
    }

    /// Builds the virtual device on the destination host (`dev`, `cfg` with that host's
    /// pinning) and restores the guest-visible `state`; when the guest had TPH enabled, the host
    /// is enabled and every programmable entry programmed (one batched call). Refused when the
    /// guest would see another capability or another vCPU count.
    pub fn restore(
        dev: TphDevice<B>,
        cfg: VmConfig,
        state: &crate::state::VmState,
    ) -> Result<Self, Error> {
        let mut v = Self::new(dev, cfg)?;
        state.check_fits(v.space.vcpus(), v.vcap.cap.to_bits(), v.table.len())?;
        let control = TphControl::from_bits(state.control);
        let rw = fields::mask(fields::TPH, TPH_CTRL as u16, Attr::Rw);
        if state.control & !rw != 0 || !v.offers(&control) {
            return Err(Error::StateMismatch(format!(
                "Control {:#x} is not a value this device accepts",
                state.control
            )));
        }
        // Entries as the register semantics would have kept them.
        let entry_rw = match v.vcap.cap.location {
            StLocation::MsiX => fields::vector_control_st_mask(true),
            _ => fields::entry_rw_mask(v.vcap.cap.ext),
        };
        v.table = state.table.iter().map(|e| e & entry_rw).collect();
        v.control = state.control;
        let mut effect = Effect::default();
        v.apply_host_mode(&mut effect)?;
        let all: Vec<u16> = (0..v.vcap.entries).collect();
        v.try_sync(&all, &mut effect)?;
        Ok(v)
    }
}

/// The configuration offsets of an access of `len` bytes at `offset`, cut where the 16-bit
/// offset space ends (a guest access is never wrapped around to offset 0).
fn config_addresses(offset: u16, len: usize) -> impl Iterator<Item = u16> {
    (0..len).map_while(move |i| offset.checked_add(u16::try_from(i).ok()?))
}

/// The MSI-X table offsets of an access of `len` bytes at `offset`, cut where `u64` ends.
fn table_addresses(offset: u64, len: usize) -> impl Iterator<Item = u64> {
    (0..len).map_while(move |i| offset.checked_add(u64::try_from(i).ok()?))
}

fn header_bytes(config: &[u8], offset: u16) -> [u8; 4] {
    let at = usize::from(offset);
    config
        .get(at..at + 4)
        .and_then(|b| b.try_into().ok())
        .unwrap_or([0; 4])
}
