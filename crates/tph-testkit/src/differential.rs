//! The differential between a real kernel's PCI TPH core and the model's (`tph_kernel::core`):
//! the same calls on the same emulated function must give the same return values and the same
//! register accesses.
//!
//! The real side is a guest kernel driving a function served by `tphctl serve --trace` (crate
//! `tph-vfio-user`). A guest test module makes the calls, one at a time, and
//!
//! - before call `N` writes the marker dword [`MARKER`]` | N` to configuration offset 0 (the
//!   read-only Vendor/Device ID: the write changes nothing, and the server's trace shows it as
//!   `cfg  wr 0x000/4 <- 0x7470000N: no change`), so the trace splits into one window per call;
//! - logs each call as one line `call N OP ARGS -> RET [TAG]` (any prefix before `call`, e.g.
//!   the kernel log's timestamp, is skipped), OP and ARGS as [`Op`] parses them, RET the return
//!   value (0 for a `void` call), TAG the tag `pcie_tph_get_cpu_st` returned.
//!
//! [`expected`] runs the same calls on the model's core over a fresh function built from the
//! same configuration bytes, with the guest's platform ([`GuestPlatform`]: root port completer,
//! CPUs, firmware); [`compare`] normalises both sides ([`normalise`]) and lists every
//! difference. Each difference is a model bug or a decision (`docs/decisions.md`,
//! "Differential").

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use tph_acpi::{HostBridgeId, MemType, SteeringTagSource};
use tph_kernel::core::{MsiState, Platform, TphState};
use tph_kernel::hw::Function;
use tph_regs::caps::{DEVCTL_FLR, EXP_DEVCTL};
use tph_regs::tph::{StMode, TPH_TABLE};

use crate::Error;

/// High half of a marker dword (`"tp"`); the low half is the call's number.
pub const MARKER: u32 = 0x7470_0000;

/// A TPH core call the guest test makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `enable MODE`: `pcie_enable_tph(pdev, mode)`, MODE `ns`, `iv`, `ds` or a number (an
    /// unsupported mode).
    Enable(u8),
    /// `disable`: `pcie_disable_tph(pdev)`.
    Disable,
    /// `get_cpu_st CPU vm|pm`: `pcie_tph_get_cpu_st(pdev, mem, cpu, &tag)`.
    GetCpuSt {
        /// Logical CPU.
        cpu: u32,
        /// Memory type.
        mem: MemType,
    },
    /// `set_st_entry INDEX TAG`: `pcie_tph_set_st_entry(pdev, index, tag)`.
    SetStEntry {
        /// Table index.
        index: u16,
        /// Tag.
        tag: u16,
    },
    /// `msix N`: the guest allocated N MSI-X vectors (0: freed them); only the return value is
    /// compared (through QEMU the MSI-X set-up never reaches the device).
    Msix(u16),
    /// `reset`: `pci_reset_function(pdev)` (save, FLR, restore); only accesses inside the TPH
    /// capability are compared.
    Reset,
    /// `get_st_modes`: the modes bits (v7 exports it).
    GetStModes,
    /// `get_st_table_loc`: `pcie_tph_get_st_table_loc(pdev)` (the field, 0..3).
    GetStTableLoc,
    /// `get_st_table_size`: `pcie_tph_get_st_table_size(pdev)`.
    GetStTableSize,
}

/// One logged call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Call {
    /// Its number (the marker's low half).
    pub seq: u16,
    /// What was called.
    pub op: Op,
    /// The return value.
    pub ret: i64,
    /// The tag `get_cpu_st` gave.
    pub tag: Option<u16>,
}

fn number(s: &str) -> Option<u64> {
    match s.strip_prefix("0x") {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => s.parse().ok(),
    }
}

fn parse_op(words: &[&str]) -> Option<Op> {
    let n = |i: usize| words.get(i).and_then(|w| number(w));
    Some(match *words.first()? {
        "enable" => Op::Enable(match *words.get(1)? {
            "ns" => 0,
            "iv" => 1,
            "ds" => 2,
            other => u8::try_from(number(other)?).ok()?,
        }),
        "disable" => Op::Disable,
        "get_cpu_st" => Op::GetCpuSt {
            cpu: u32::try_from(n(1)?).ok()?,
            mem: match *words.get(2)? {
                "vm" => MemType::Volatile,
                "pm" => MemType::Persistent,
                _ => return None,
            },
        },
        "set_st_entry" => Op::SetStEntry {
            index: u16::try_from(n(1)?).ok()?,
            tag: u16::try_from(n(2)?).ok()?,
        },
        "msix" => Op::Msix(u16::try_from(n(1)?).ok()?),
        "reset" => Op::Reset,
        "get_st_modes" => Op::GetStModes,
        "get_st_table_loc" => Op::GetStTableLoc,
        "get_st_table_size" => Op::GetStTableSize,
        _ => return None,
    })
}

/// Reads the guest test's call log: every line holding `call N OP ARGS -> RET [TAG]`; other
/// lines are skipped.
pub fn parse_calls(log: &str) -> Result<Vec<Call>, Error> {
    let mut calls = Vec::new();
    for (line_no, line) in (1..).zip(log.lines()) {
        let Some(at) = line.find("call ") else {
            continue;
        };
        let bad = |why: &str| Error::CallLog {
            line: line_no,
            why: format!("{why}: {:?}", line.chars().take(80).collect::<String>()),
        };
        let text = line.get(at + 5..).unwrap_or("");
        let (call, result) = text.split_once("->").ok_or_else(|| bad("no `->`"))?;
        let words: Vec<&str> = call.split_whitespace().collect();
        let seq = words
            .first()
            .and_then(|w| number(w))
            .and_then(|n| u16::try_from(n).ok())
            .ok_or_else(|| bad("no call number"))?;
        let op = parse_op(words.get(1..).unwrap_or(&[])).ok_or_else(|| bad("unknown call"))?;
        let out: Vec<&str> = result.split_whitespace().collect();
        let ret = out
            .first()
            .and_then(|r| {
                r.parse::<i64>()
                    .ok()
                    .or_else(|| number(r).map(|v| v as i64))
            })
            .ok_or_else(|| bad("no return value"))?;
        let tag = match out.get(1) {
            Some(t) => Some(
                number(t)
                    .and_then(|v| u16::try_from(v).ok())
                    .ok_or_else(|| bad("bad tag"))?,
            ),
            None => None,
        };
        calls.push(Call { seq, op, ret, tag });
    }
    Ok(calls)
}

/// The guest's platform as its TPH core sees it.
#[derive(Clone, Debug)]
pub struct GuestPlatform {
    /// Device Capabilities 2 of the root port above the device (its TPH Completer field is
    /// what the rig's stand-in reports); `None`: the device is an RCiEP or has no root port.
    pub root_port_devcap2: Option<u32>,
    /// The host bridge above the root port.
    pub host_bridge: Option<HostBridgeId>,
    /// Logical CPUs `0..cpus`.
    pub cpus: u32,
    /// ACPI UID of CPU n (default: n).
    pub cpu_uids: Vec<u32>,
    /// The firmware's `_DSM` (the SSDT the guest loaded).
    pub firmware: Arc<dyn SteeringTagSource>,
    /// Booted with `pci=notph`.
    pub notph: bool,
}

impl Platform for GuestPlatform {
    fn notph(&self) -> bool {
        self.notph
    }
    fn root_port_devcap2(&self) -> Option<u32> {
        self.root_port_devcap2
    }
    fn host_bridge(&self) -> Option<HostBridgeId> {
        self.host_bridge
    }
    fn cpu_uid(&self, cpu: u32) -> Option<u32> {
        (cpu < self.cpus).then(|| self.cpu_uids.get(cpu as usize).copied().unwrap_or(cpu))
    }
    fn firmware(&self) -> &dyn SteeringTagSource {
        self.firmware.as_ref()
    }
}

/// What the model's core answered to one call, and the accesses it made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expected {
    /// The call's number.
    pub seq: u16,
    /// Return value.
    pub ret: i64,
    /// Tag (`get_cpu_st`).
    pub tag: Option<u16>,
    /// The accesses, as the trace shows them.
    pub accesses: Vec<String>,
}

fn errno_ret<T>(r: Result<T, tph_kernel::Errno>) -> i64 {
    match r {
        Ok(_) => 0,
        Err(e) => -i64::from(e.number()),
    }
}

/// Runs `calls` on the model's core over a fresh function built from `config`.
pub fn expected(config: &[u8], platform: &GuestPlatform, calls: &[Call]) -> Vec<Expected> {
    let mut dev = Function::new(config);
    let mut core = TphState::init(&dev);
    let mut msi = MsiState::default();
    calls
        .iter()
        .map(|call| {
            let (ret, tag) = run(&mut dev, &mut core, &mut msi, platform, call.op);
            let accesses = dev.drain_trace().iter().map(ToString::to_string).collect();
            Expected {
                seq: call.seq,
                ret,
                tag,
                accesses,
            }
        })
        .collect()
}

fn run(
    dev: &mut Function,
    core: &mut TphState,
    msi: &mut MsiState,
    plat: &GuestPlatform,
    op: Op,
) -> (i64, Option<u16>) {
    match op {
        Op::Enable(mode) => {
            let mode = StMode::from_field(mode & 7);
            (errno_ret(core.enable(dev, plat, mode)), None)
        }
        Op::Disable => {
            core.disable(dev);
            (0, None)
        }
        Op::GetCpuSt { cpu, mem } => match core.get_cpu_st(plat, mem, cpu) {
            Ok(tag) => (0, Some(tag)),
            Err(e) => (-i64::from(e.number()), Some(0)),
        },
        Op::SetStEntry { index, tag } => (errno_ret(core.set_st_entry(dev, msi, index, tag)), None),
        Op::Msix(n) => {
            msi.enabled = n > 0;
            msi.vector_ctrl = vec![0; usize::from(n)];
            msi.messages = vec![[0; 3]; usize::from(n)];
            (0, None)
        }
        Op::Reset => {
            core.save(dev);
            if let Some(exp) = dev.express() {
                let devctl = exp + EXP_DEVCTL as u16;
                let value = dev.config_read(devctl, 2);
                dev.config_write(devctl, 2, value | DEVCTL_FLR);
            }
            core.restore_mainline(dev);
            (0, None)
        }
        Op::GetStModes => (i64::from(core.get_st_modes(dev)), None),
        // Mainline returns the field (0..3); the v7 series' fix, in register position, is
        // not in the kernels the rig boots.
        Op::GetStTableLoc => (i64::from(core.get_st_table_loc(dev).field()), None),
        Op::GetStTableSize => (i64::from(core.get_st_table_size(dev)), None),
    }
}

/// How [`normalise`] treats a trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Normalise {
    /// Offset of the TPH capability (its registers and table are what a reset window keeps).
    pub tph: u16,
    /// Entries of the table inside the capability.
    pub cap_entries: u16,
    /// MSI-X table accesses reach the device: false through QEMU, whose own MSI-X emulation
    /// keeps the table (`real-linux-rig.md`), so both sides drop them.
    pub msix_reaches_device: bool,
}

impl Normalise {
    /// For the function in `config`, through QEMU.
    pub fn for_config(config: &[u8]) -> Self {
        let f = Function::new(config);
        let (tph, cap_entries) = f.tph().map_or((0, 0), |t| (t.offset, t.cap_entries()));
        Self {
            tph,
            cap_entries,
            msix_reaches_device: false,
        }
    }

    fn in_tph(&self, line: &str) -> bool {
        let Some((offset, width)) = config_offset(line) else {
            return false;
        };
        let end = u32::from(self.tph) + TPH_TABLE as u32 + 2 * u32::from(self.cap_entries);
        self.tph != 0
            && u32::from(offset) + u32::from(width) > u32::from(self.tph)
            && u32::from(offset) < end
    }
}

/// `(offset, width)` of a `cfg` trace line.
fn config_offset(line: &str) -> Option<(u16, u8)> {
    let rest = line
        .strip_prefix("cfg  rd ")
        .or_else(|| line.strip_prefix("cfg  wr "))?;
    let (reg, _) = rest.split_once(' ')?;
    let (off, width) = reg.split_once('/')?;
    let off = u16::from_str_radix(off.strip_prefix("0x")?, 16).ok()?;
    Some((off, width.parse().ok()?))
}

/// The marker number of a trace line, if it is one.
fn marker(line: &str) -> Option<u16> {
    let value = line
        .strip_prefix("cfg  wr 0x000/4 <- 0x")?
        .split(':')
        .next()?;
    let v = u32::from_str_radix(value, 16).ok()?;
    (v & 0xffff_0000 == MARKER).then_some((v & 0xffff) as u16)
}

/// Splits a server trace into the accesses after each marker (keyed by call number); what
/// precedes the first marker (enumeration, driver probe) is dropped.
pub fn windows(trace: &str) -> BTreeMap<u16, Vec<String>> {
    let mut out: BTreeMap<u16, Vec<String>> = BTreeMap::new();
    let mut current = None;
    for line in trace.lines() {
        if let Some(n) = marker(line) {
            current = Some(n);
            out.entry(n).or_default();
            continue;
        }
        if let Some(w) = current.and_then(|n| out.get_mut(&n)) {
            w.push(line.to_string());
        }
    }
    out
}

/// Keeps the register accesses a call's comparison looks at: `cfg` and `msix` lines (server
/// events go), MSI-X table lines only when they reach the device, and for `reset` and `msix`
/// calls only what lies inside the TPH capability (the rest of `pci_reset_function` and of
/// the MSI-X set-up is the PCI core's and QEMU's, not the TPH core's). A write keeps its
/// register and value, not the effect the device reported (the same device on both sides;
/// a different state shows in the values read).
pub fn normalise(lines: &[String], op: Op, how: &Normalise) -> Vec<String> {
    lines
        .iter()
        .filter(|l| l.starts_with("cfg  ") || (how.msix_reaches_device && l.starts_with("msix ")))
        .filter(|l| !matches!(op, Op::Reset | Op::Msix(_)) || how.in_tph(l))
        .map(|l| match l.split_once(" <- ") {
            Some((reg, value)) => {
                format!("{reg} <- {}", value.split(':').next().unwrap_or(value))
            }
            None => l.clone(),
        })
        .collect()
}

/// One way the real kernel and the model disagree.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Difference {
    /// A logged call whose marker is not in the trace.
    NoWindow {
        /// The call.
        call: Call,
    },
    /// Different return values (or tags).
    Return {
        /// The call.
        call: Call,
        /// The model's return value.
        model: i64,
        /// The model's tag.
        model_tag: Option<u16>,
    },
    /// Different register accesses.
    Accesses {
        /// The call.
        call: Call,
        /// The model's, normalised.
        model: Vec<String>,
        /// The real kernel's, normalised.
        real: Vec<String>,
    },
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Difference::NoWindow { call } => {
                write!(f, "call {} {:?}: no marker in the trace", call.seq, call.op)
            }
            Difference::Return {
                call,
                model,
                model_tag,
            } => write!(
                f,
                "call {} {:?}: the kernel returned {} (tag {:?}), the model {} (tag {:?})",
                call.seq, call.op, call.ret, call.tag, model, model_tag
            ),
            Difference::Accesses { call, model, real } => {
                writeln!(f, "call {} {:?}: accesses differ", call.seq, call.op)?;
                writeln!(f, "  kernel:")?;
                for l in real {
                    writeln!(f, "    {l}")?;
                }
                writeln!(f, "  model:")?;
                for l in model {
                    writeln!(f, "    {l}")?;
                }
                Ok(())
            }
        }
    }
}

/// Compares the guest's `calls` and the server's `trace` with the model's answers on the
/// function `config`: every difference, in call order (empty: the model's core does what the
/// kernel did).
pub fn compare(
    config: &[u8],
    platform: &GuestPlatform,
    calls: &[Call],
    trace: &str,
    how: &Normalise,
) -> Vec<Difference> {
    let windows = windows(trace);
    let mut out = Vec::new();
    for (call, model) in calls.iter().zip(expected(config, platform, calls)) {
        if call.ret != model.ret || (call.tag.is_some() && call.tag != model.tag) {
            out.push(Difference::Return {
                call: *call,
                model: model.ret,
                model_tag: model.tag,
            });
        }
        let Some(window) = windows.get(&call.seq) else {
            out.push(Difference::NoWindow { call: *call });
            continue;
        };
        let real = normalise(window, call.op, how);
        let model = normalise(&model.accesses, call.op, how);
        if real != model {
            out.push(Difference::Accesses {
                call: *call,
                model,
                real,
            });
        }
    }
    out
}
