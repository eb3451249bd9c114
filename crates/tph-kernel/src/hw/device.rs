//! One emulated PCIe function: configuration space, MSI-X table in BAR memory, trace,
//! violation log and fault injection.

use std::collections::VecDeque;

use tph_regs::caps::{
    find_cap, find_ext_cap, CAP_ID_EXP, CAP_ID_MSIX, CAP_ID_PM, DEVCAP_FLR, DEVCTL_FLR, EXP_DEVCAP,
    EXP_DEVCTL, EXT_CAP_ID_TPH, PM_CTRL, PM_CTRL_NO_SOFT_RESET, PM_CTRL_STATE_MASK,
};
use tph_regs::msix::{
    vector_control_st, MsixCap, MSIX_FLAGS, MSIX_FLAGS_ENABLE, MSIX_FLAGS_MASKALL,
    MSIX_VECTOR_CTRL, VECTOR_CTRL_MASKBIT,
};
use tph_regs::tph::{
    ReqEnable, StLocation, StMode, TphCapability, TphControl, TPH_CAP, TPH_CAP_TABLE_MAX, TPH_CTRL,
    TPH_TABLE,
};

use super::config::ConfigSpace;
use super::fields::{self, Field};
use super::trace::{Abort, Access, Effect, Violation};

/// Most trace entries kept; older ones are dropped (and counted) so an undrained trace stays
/// bounded.
pub const TRACE_CAPACITY: usize = 1 << 16;

/// Index of the Vector Control dword in an MSI-X entry.
const VECTOR_CTRL_DWORD: usize = MSIX_VECTOR_CTRL as usize / 4;
/// PowerState D3hot.
const D3HOT: u32 = 3;

/// Where the TPH Requester capability sits and what it says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TphLayout {
    /// Offset of the extended capability.
    pub offset: u16,
    /// The Capability register as built.
    pub cap: TphCapability,
}

impl TphLayout {
    /// Entries of the table inside the capability (0 when the table is elsewhere).
    pub fn cap_entries(&self) -> u16 {
        match self.cap.location {
            StLocation::Capability => self.cap.table_size.min(TPH_CAP_TABLE_MAX),
            _ => 0,
        }
    }
}

/// Where the MSI-X capability sits and its table size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct MsixLayout {
    /// Offset of the capability.
    pub offset: u16,
    /// Number of vectors (Table Size + 1).
    pub table_size: u16,
}

/// Masks of one 16-byte MSI-X entry, derived from a field table.
#[derive(Clone, Copy, Debug)]
struct EntryMasks {
    rw: [u32; 4],
    reset: [u32; 4],
}

impl EntryMasks {
    fn from_fields(fields: &[Field]) -> Self {
        let mut m = Self {
            rw: [0; 4],
            reset: [0; 4],
        };
        for f in fields {
            let (Some(rw), Some(reset)) = (
                m.rw.get_mut(usize::from(f.offset / 4)),
                m.reset.get_mut(usize::from(f.offset / 4)),
            ) else {
                continue;
            };
            if f.attr == fields::Attr::Rw {
                *rw |= f.mask() as u32;
                *reset |= f.reset << f.lsb;
            }
        }
        m
    }
}

/// An emulated PCIe function.
#[derive(Clone, Debug)]
pub struct Function {
    config: ConfigSpace,
    express: Option<u16>,
    pm: Option<u16>,
    msix: Option<MsixLayout>,
    tph: Option<TphLayout>,
    table: Vec<[u32; 4]>,
    entry: EntryMasks,
    trace: VecDeque<Access>,
    dropped: u64,
    violations: Vec<Violation>,
    fail_after: Option<u32>,
}

fn read_u32(b: &[u8], off: usize) -> Option<u32> {
    let end = off.checked_add(4)?;
    Some(u32::from_le_bytes(b.get(off..end)?.try_into().ok()?))
}

fn u16_of(v: usize) -> u16 {
    u16::try_from(v).unwrap_or(u16::MAX)
}

impl Function {
    /// Builds a function from configuration bytes (an `lspci -xxxx` dump or synthesised).
    /// Capabilities are found with the bounded walkers of `tph-regs`; the header, PCI Express,
    /// MSI-X and TPH structures get their field tables, everything else is read-only.
    pub fn new(config: &[u8]) -> Self {
        let mut space = ConfigSpace::new(config);
        let bytes = space.bytes();
        let type0 = bytes.get(0x0e).is_some_and(|t| t & 0x7f == 0);
        let express = find_cap(bytes, CAP_ID_EXP);
        let pm = find_cap(bytes, CAP_ID_PM);
        // A capability whose registers run past the end of configuration space is not one
        // the function has (as `tph-regs` decodes it for the reports): no registers are
        // declared for it, rather than a table size or capability word of 0 made up.
        let msix = find_cap(bytes, CAP_ID_MSIX).and_then(|off| {
            let m = MsixCap::decode(bytes, off)?;
            Some(MsixLayout {
                offset: u16_of(off),
                table_size: m.table_size,
            })
        });
        let tph = find_ext_cap(bytes, EXT_CAP_ID_TPH).and_then(|off| {
            read_u32(bytes, off.checked_add(TPH_CTRL)?)?;
            Some(TphLayout {
                offset: u16_of(off),
                cap: TphCapability::from_bits(read_u32(bytes, off.checked_add(TPH_CAP)?)?),
            })
        });
        if type0 {
            space.declare(0, fields::HEADER);
        }
        if let Some(off) = pm {
            space.declare(off, fields::PM);
        }
        declare_caps(&mut space, express, msix, tph);
        let entry_fields = match tph.map(|t| t.cap.location) {
            Some(StLocation::MsiX) => fields::MSIX_ENTRY_WITH_ST,
            _ => fields::MSIX_ENTRY_PLAIN,
        };
        let entry = EntryMasks::from_fields(entry_fields);
        let n = msix.map_or(0, |m| usize::from(m.table_size));
        Self {
            config: space,
            express: express.map(u16_of),
            pm: pm.map(u16_of),
            msix,
            tph,
            table: vec![entry.reset; n],
            entry,
            trace: VecDeque::new(),
            dropped: 0,
            violations: Vec::new(),
            fail_after: None,
        }
    }

    /// Offset of the PCI Express capability.
    pub fn express(&self) -> Option<u16> {
        self.express
    }

    /// Offset of the PCI Power Management capability.
    pub fn pm(&self) -> Option<u16> {
        self.pm
    }

    /// Function Level Reset Capability (Device Capabilities bit 28), read without tracing.
    pub fn has_flr(&self) -> bool {
        self.express
            .and_then(|exp| self.config.read(usize::from(exp) + EXP_DEVCAP, 4))
            .is_some_and(|devcap| devcap & DEVCAP_FLR != 0)
    }

    /// A PM reset is possible: a PM capability whose No_Soft_Reset bit is clear (so the
    /// D3hot to D0 transition resets the function), read without tracing.
    pub fn has_pm_reset(&self) -> bool {
        self.pm
            .and_then(|pm| self.config.read(usize::from(pm) + PM_CTRL, 4))
            .is_some_and(|pmcsr| pmcsr & PM_CTRL_NO_SOFT_RESET == 0)
    }

    /// The link below the function's parent bridge was reset (secondary bus reset): the
    /// function returns to its reset state as by a function-level reset. Called by whoever
    /// toggles the bridge's Secondary Bus Reset bit (the model's VFIO layer); not traced here.
    pub fn secondary_bus_reset(&mut self) {
        self.function_level_reset();
    }

    /// The MSI-X capability.
    pub fn msix(&self) -> Option<MsixLayout> {
        self.msix
    }

    /// The TPH Requester capability.
    pub fn tph(&self) -> Option<TphLayout> {
        self.tph
    }

    /// Raw configuration bytes without tracing (an inspection view, not a hardware access).
    pub fn config_bytes(&self) -> &[u8] {
        self.config.bytes()
    }

    /// Reads `width` (1, 2, 4) bytes at `offset`; all ones when out of range or misaligned.
    pub fn config_read(&mut self, offset: u16, width: u8) -> u32 {
        let value = if aligned(offset, width) {
            self.config
                .read(usize::from(offset), usize::from(width))
                .unwrap_or(u32::MAX)
        } else {
            u32::MAX
        };
        self.record(Access::ConfigRead {
            offset,
            width,
            value,
        });
        value
    }

    /// Writes `width` (1, 2, 4) bytes at `offset` and returns what changed.
    pub fn config_write(&mut self, offset: u16, width: u8, value: u32) -> Effect {
        let effect = self.apply_config_write(offset, width, value);
        self.record(Access::ConfigWrite {
            offset,
            width,
            value,
            effect,
        });
        effect
    }

    /// Reads the dword at byte `offset` (0, 4, 8, 12) of MSI-X entry `vector`; all ones when
    /// there is no such entry.
    pub fn msix_read(&mut self, vector: u16, offset: u8) -> u32 {
        let value = self
            .entry_dword(vector, offset)
            .copied()
            .unwrap_or(u32::MAX);
        self.record(Access::MsixRead {
            vector,
            offset,
            value,
        });
        value
    }

    /// Writes the dword at byte `offset` of MSI-X entry `vector` and returns what changed.
    pub fn msix_write(&mut self, vector: u16, offset: u8, value: u32) -> Effect {
        let effect = self.apply_msix_write(vector, offset, value);
        self.record(Access::MsixWrite {
            vector,
            offset,
            value,
            effect,
        });
        effect
    }

    /// Makes the write after the next `n` successful writes (config or MSI-X) abort once.
    pub fn fail_write_after(&mut self, n: u32) {
        self.fail_after = Some(n);
    }

    /// Takes the trace recorded since the last drain.
    pub fn drain_trace(&mut self) -> Vec<Access> {
        self.trace.drain(..).collect()
    }

    /// Trace entries dropped because the trace was full.
    pub fn dropped_trace_entries(&self) -> u64 {
        self.dropped
    }

    /// Every spec violation observed since construction.
    pub fn violations(&self) -> &[Violation] {
        &self.violations
    }

    /// The TPH Control register, read without tracing (inspection view).
    pub fn peek_tph_control(&self) -> Option<u32> {
        let t = self.tph?;
        self.config.read(usize::from(t.offset) + TPH_CTRL, 4)
    }

    /// The raw 16-bit ST entries (from the capability or the MSI-X table), without tracing.
    pub fn peek_st_table(&self) -> Vec<u16> {
        let Some(t) = self.tph else {
            return Vec::new();
        };
        let n = usize::from(t.cap.table_size);
        match t.cap.location {
            StLocation::Capability => (0..t.cap_entries())
                .filter_map(|i| self.config.read(st_offset(t.offset, i), 2))
                .map(|v| v as u16)
                .collect(),
            StLocation::MsiX => self
                .table
                .iter()
                .take(n)
                .map(|e| vector_control_st(e[VECTOR_CTRL_DWORD]))
                .collect(),
            _ => Vec::new(),
        }
    }

    /// The raw MSI-X Vector Control dwords, without tracing.
    pub fn peek_vector_controls(&self) -> Vec<u32> {
        self.table.iter().map(|e| e[VECTOR_CTRL_DWORD]).collect()
    }

    /// The whole MSI-X table (each entry's four dwords), without tracing: what a userspace
    /// mapping of the table shows.
    pub fn peek_msix_table(&self) -> &[[u32; 4]] {
        &self.table
    }

    fn record(&mut self, a: Access) {
        if self.trace.len() >= TRACE_CAPACITY {
            self.trace.pop_front();
            self.dropped += 1;
        }
        self.trace.push_back(a);
    }

    fn injected_failure(&mut self) -> bool {
        match self.fail_after {
            Some(0) => {
                self.fail_after = None;
                true
            }
            Some(n) => {
                self.fail_after = Some(n - 1);
                false
            }
            None => false,
        }
    }

    fn entry_dword(&self, vector: u16, offset: u8) -> Option<&u32> {
        if !offset.is_multiple_of(4) {
            return None;
        }
        self.table
            .get(usize::from(vector))?
            .get(usize::from(offset / 4))
    }

    fn tph_enabled(&self) -> bool {
        self.peek_tph_control()
            .is_some_and(|c| TphControl::from_bits(c).enable != ReqEnable::Disabled)
    }

    fn apply_config_write(&mut self, offset: u16, width: u8, value: u32) -> Effect {
        if !aligned(offset, width) {
            return Effect::Aborted(Abort::Misaligned);
        }
        let (off, w) = (usize::from(offset), usize::from(width));
        let Some(old) = self.config.read(off, w) else {
            return Effect::Aborted(Abort::OutOfRange);
        };
        if self.injected_failure() {
            return Effect::Aborted(Abort::Injected);
        }
        let first_entry = self.st_entry_at(offset, width);
        if let (Some(index), true) = (first_entry, self.tph_enabled()) {
            self.violations
                .push(Violation::StWriteWhileEnabled { index });
        }
        let entry_before = first_entry.map(|i| self.raw_st(i));
        let ctrl_before = self.peek_tph_control();
        if self.config.write(off, w, value).is_none() {
            return Effect::Aborted(Abort::OutOfRange);
        }
        if let (Some(index), Some(old)) = (first_entry, entry_before) {
            let new = self.raw_st(index);
            return Effect::StEntry { index, old, new };
        }
        self.classify(offset, width, old, ctrl_before)
    }

    fn raw_st(&self, index: u16) -> u16 {
        self.tph
            .and_then(|t| self.config.read(st_offset(t.offset, index), 2))
            .map_or(0, |v| v as u16)
    }

    /// The first capability ST entry a write of `width` bytes at `offset` touches.
    fn st_entry_at(&self, offset: u16, width: u8) -> Option<u16> {
        let t = self.tph?;
        let start = t.offset + TPH_TABLE as u16;
        let end = start + 2 * t.cap_entries();
        let last = offset + u16::from(width);
        if last <= start || offset >= end {
            return None;
        }
        Some(offset.saturating_sub(start) / 2)
    }

    fn classify(&mut self, offset: u16, width: u8, old: u32, ctrl: Option<u32>) -> Effect {
        let new = self
            .config
            .read(usize::from(offset), usize::from(width))
            .unwrap_or(old);
        if let Some(e) = self.classify_tph(offset, width, ctrl) {
            return e;
        }
        if let Some(e) = self.classify_msix(offset, width, old, new) {
            return e;
        }
        if self.flr_requested(offset, width, new) || self.pm_reset(offset, width, old, new) {
            self.function_level_reset();
            return Effect::FunctionReset;
        }
        if old == new {
            Effect::NoChange
        } else {
            Effect::Changed { old, new }
        }
    }

    fn classify_tph(&mut self, offset: u16, width: u8, before: Option<u32>) -> Option<Effect> {
        let reg = self.tph?.offset + TPH_CTRL as u16;
        if !overlaps(offset, width, reg, 4) {
            return None;
        }
        let old = TphControl::from_bits(before.unwrap_or(0));
        let new = TphControl::from_bits(self.peek_tph_control().unwrap_or(0));
        if let StMode::Reserved(n) = new.mode {
            self.violations.push(Violation::ReservedStMode(n));
        }
        if new.enable == ReqEnable::Reserved {
            self.violations.push(Violation::ReservedRequesterEnable(2));
        }
        Some(Effect::TphControl { old, new })
    }

    fn classify_msix(&mut self, offset: u16, width: u8, old: u32, new: u32) -> Option<Effect> {
        let m = self.msix?;
        if !overlaps(offset, width, m.offset + MSIX_FLAGS as u16, 2) || old == new {
            return None;
        }
        let ctrl = self
            .config
            .read(usize::from(m.offset) + MSIX_FLAGS, 2)
            .unwrap_or(0) as u16;
        Some(Effect::MsixControl {
            enabled: ctrl & MSIX_FLAGS_ENABLE != 0,
            function_mask: ctrl & MSIX_FLAGS_MASKALL != 0,
        })
    }

    fn flr_requested(&self, offset: u16, width: u8, new: u32) -> bool {
        let Some(exp) = self.express.filter(|_| self.has_flr()) else {
            return false;
        };
        let reg = exp + EXP_DEVCTL as u16;
        // Accesses are naturally aligned and Device Control is dword aligned, so an access that
        // covers bit 15 starts at the register (bit 15 of the value) or one byte in (bit 7).
        match offset.checked_sub(reg) {
            Some(0) if width >= 2 => new & DEVCTL_FLR != 0,
            Some(1) => new & (DEVCTL_FLR >> 8) != 0,
            _ => false,
        }
    }

    /// A dword write of PMCSR taking PowerState from D3hot to D0 with No_Soft_Reset clear
    /// (PCI PM 1.2: an internal reset to the default state).
    fn pm_reset(&self, offset: u16, width: u8, old: u32, new: u32) -> bool {
        let Some(pm) = self.pm.filter(|_| self.has_pm_reset()) else {
            return false;
        };
        offset == pm + PM_CTRL as u16
            && width == 4
            && old & PM_CTRL_STATE_MASK == D3HOT
            && new & PM_CTRL_STATE_MASK == 0
    }

    fn function_level_reset(&mut self) {
        self.config.reset();
        let reset = self.entry.reset;
        self.table.iter_mut().for_each(|e| *e = reset);
    }

    fn apply_msix_write(&mut self, vector: u16, offset: u8, value: u32) -> Effect {
        let Some(&old) = self.entry_dword(vector, offset) else {
            return Effect::Aborted(Abort::OutOfRange);
        };
        if self.injected_failure() {
            return Effect::Aborted(Abort::Injected);
        }
        let mask = self
            .entry
            .rw
            .get(usize::from(offset / 4))
            .copied()
            .unwrap_or(0);
        let new = (old & !mask) | (value & mask);
        if u64::from(offset) == MSIX_VECTOR_CTRL {
            self.check_vector_st(vector, old, new);
        }
        if let Some(slot) = self
            .table
            .get_mut(usize::from(vector))
            .and_then(|e| e.get_mut(usize::from(offset / 4)))
        {
            *slot = new;
        }
        match offset {
            o if u64::from(o) == MSIX_VECTOR_CTRL => Effect::VectorControl {
                vector,
                masked: new & VECTOR_CTRL_MASKBIT != 0,
                st: vector_control_st(new),
            },
            _ if old == new => Effect::NoChange,
            _ => Effect::Changed { old, new },
        }
    }

    fn check_vector_st(&mut self, vector: u16, old: u32, new: u32) {
        let Some(t) = self.tph.filter(|t| t.cap.location == StLocation::MsiX) else {
            return;
        };
        let st_changed = vector_control_st(old) != vector_control_st(new);
        if st_changed && self.tph_enabled() {
            self.violations
                .push(Violation::StWriteWhileEnabled { index: vector });
        }
        if st_changed && vector >= t.cap.table_size {
            self.violations.push(Violation::StIndexBeyondTable {
                index: vector,
                size: t.cap.table_size,
            });
        }
    }
}

fn declare_caps(
    space: &mut ConfigSpace,
    express: Option<usize>,
    msix: Option<MsixLayout>,
    tph: Option<TphLayout>,
) {
    if let Some(off) = express {
        space.declare(off, fields::EXPRESS);
    }
    if let Some(m) = msix {
        space.declare(usize::from(m.offset), fields::MSIX);
    }
    if let Some(t) = tph {
        let base = usize::from(t.offset);
        space.declare(base, fields::TPH);
        for i in 0..t.cap_entries() {
            space.declare(base, &fields::tph_table_entry(i, t.cap.ext));
        }
    }
}

/// Byte offset of capability ST entry `index`.
pub fn st_offset(tph: u16, index: u16) -> usize {
    usize::from(tph) + TPH_TABLE + 2 * usize::from(index)
}

fn aligned(offset: u16, width: u8) -> bool {
    matches!(width, 1 | 2 | 4) && offset.is_multiple_of(u16::from(width))
}

fn overlaps(offset: u16, width: u8, reg: u16, reg_len: u16) -> bool {
    offset < reg + reg_len && reg < offset + u16::from(width)
}
