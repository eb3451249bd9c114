//! A VMM's view served to a guest: `tph-vmm`'s virtual TPH function in front of a host
//! function opened through `tph-client` (any [`Backend`]: a real VFIO fd, or the emulated host
//! of `tph-emu`). The TPH capability is the layer's (guest tags name vCPUs; the host gets the
//! tags of the pinned host CPUs); the rest of configuration space passes through to the host;
//! the MSI-X table is the VMM's own emulation with Vector Control's steering-tag half handed to
//! the layer; the client's MSI-X eventfds become the host's MSI-X set-up; a guest FLR or a
//! device reset runs the layer's reset hook, then resets the host function; when the client
//! leaves, the layer's reset hook runs too, so the host ends with TPH off and the entries the
//! layer programmed cleared (a VMM that lost its guest does not leave the device steering DMA
//! with the guest's tags).

use std::fs::File;
use std::os::fd::{AsFd, BorrowedFd};

use tph_client::backend::Backend;
use tph_regs::caps::{DEVCTL_FLR, EXP_DEVCTL};
use tph_vmm::{Effect, VirtualTph};

use crate::function::Function;
use crate::layout::{Layout, IRQ_MSIX};

/// Where the host's own trace comes from (the emulated host's hardware accesses); lines are
/// added to the server's trace prefixed `host `.
pub type HostTrace = Box<dyn FnMut(&mut Vec<String>) + Send>;

/// `tph-vmm`'s virtual function in front of a host function (see the module docs).
pub struct VmFunction<B: Backend> {
    vtph: VirtualTph<B>,
    layout: Layout,
    /// Device Control of the host's PCI Express capability (where a guest FLR is written).
    devctl: Option<u16>,
    /// The VMM's MSI-X table emulation: address low, high, data, Vector Control (mask bit).
    table: Vec<[u32; 4]>,
    /// Eventfds made for vectors the client left without one (the host enables a contiguous
    /// block).
    fillers: Vec<std::os::fd::OwnedFd>,
    lines: Vec<String>,
    host_trace: Option<HostTrace>,
    host_failures: u64,
    /// What the reset hook did when the client left.
    left: Option<Effect>,
}

impl<B: Backend> std::fmt::Debug for VmFunction<B> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VmFunction")
            .field("layout", &self.layout)
            .field("host_failures", &self.host_failures)
            .finish_non_exhaustive()
    }
}

fn masked_table(n: u32) -> Vec<[u32; 4]> {
    vec![[0, 0, 0, 1]; n as usize]
}

impl<B: Backend> VmFunction<B> {
    /// Serves `vtph`; `config` is the host function's configuration space (the layout, the
    /// BARs and the MSI-X table size come from it).
    pub fn new(vtph: VirtualTph<B>, config: &[u8], host_trace: Option<HostTrace>) -> Self {
        let layout = Layout::of(config);
        let devctl = tph_regs::caps::find_cap(config, tph_regs::caps::CAP_ID_EXP)
            .and_then(|exp| u16::try_from(exp + EXP_DEVCTL).ok());
        Self {
            table: masked_table(layout.msix_vectors()),
            vtph,
            layout,
            devctl,
            fillers: Vec::new(),
            lines: Vec::new(),
            host_trace,
            host_failures: 0,
            left: None,
        }
    }

    /// The virtual TPH device (e.g. to re-pin a vCPU while the guest runs).
    pub fn vtph(&self) -> &VirtualTph<B> {
        &self.vtph
    }

    /// The virtual TPH device, mutable.
    pub fn vtph_mut(&mut self) -> &mut VirtualTph<B> {
        &mut self.vtph
    }

    /// What the layer's reset hook did when the client left (`None` while it is connected):
    /// its host calls, and the host failures that may have left the device steering.
    pub fn client_left_effect(&self) -> Option<&Effect> {
        self.left.as_ref()
    }

    /// Host calls that failed under the hooks so far.
    pub fn host_failures(&self) -> u64 {
        self.host_failures
    }

    /// Records what a hook did, as one trace line (with its host failures).
    pub fn note_effect(&mut self, what: &str, effect: &Effect) {
        let mut line = format!("vm {what}: host calls {}", effect.host_calls);
        if let Some(c) = &effect.control {
            line += &format!(", control {c:?}");
        }
        if !effect.entries.is_empty() {
            line += &format!(", entries {:?}", effect.entries);
        }
        for f in &effect.foreign {
            line += &format!(", foreign tag {:#x} at {}", f.tag, f.index);
        }
        for f in &effect.host_failures {
            line += &format!(", {f}");
        }
        self.host_failures += effect.host_failures.len() as u64;
        self.lines.push(line);
    }

    fn host_read(&mut self, offset: u16, width: u8) -> u32 {
        let mut buf = [0u8; 4];
        let slice = &mut buf[..usize::from(width)];
        match self
            .vtph
            .device()
            .backend()
            .read_config(u64::from(offset), slice)
        {
            Ok(()) => u32::from_le_bytes(buf),
            Err(e) => {
                self.lines.push(format!(
                    "vm cfg rd {offset:#05x}/{width}: host refused ({e})"
                ));
                u32::MAX
            }
        }
    }

    fn is_flr(&self, offset: u16, width: u8, value: u32) -> bool {
        match self.devctl.and_then(|d| offset.checked_sub(d)) {
            Some(0) if width >= 2 => value & DEVCTL_FLR != 0,
            Some(1) => value & (DEVCTL_FLR >> 8) != 0,
            _ => false,
        }
    }

    /// The guest reset the function: the layer's hook first (it clears what it programmed and
    /// turns host TPH off), then the host function's reset and the MSI-X emulation's.
    fn guest_reset(&mut self, why: &str) {
        let effect = self.vtph.reset();
        self.note_effect(&format!("{why}: reset hook"), &effect);
        if let Err(e) = self.vtph.device_mut().backend_mut().reset() {
            self.lines
                .push(format!("vm {why}: host reset failed ({e})"));
        }
        self.table = masked_table(self.layout.msix_vectors());
    }
}

impl<B: Backend + Send> Function for VmFunction<B> {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn config_read(&mut self, offset: u16, width: u8) -> u32 {
        if self.vtph.handles(offset) {
            let mut buf = [0u8; 4];
            self.vtph
                .read_config(offset, &mut buf[..usize::from(width)]);
            let value = u32::from_le_bytes(buf);
            self.lines
                .push(format!("vm cfg rd {offset:#05x}/{width} = {value:#x}"));
            return value;
        }
        self.host_read(offset, width)
    }

    fn config_write(&mut self, offset: u16, width: u8, value: u32) {
        let bytes = value.to_le_bytes();
        let data = &bytes[..usize::from(width)];
        if self.vtph.handles(offset) {
            let effect = self.vtph.write_config(offset, data);
            self.note_effect(
                &format!("cfg wr {offset:#05x}/{width} <- {value:#x}"),
                &effect,
            );
            return;
        }
        if self.is_flr(offset, width, value) {
            self.guest_reset("guest FLR");
            return;
        }
        if let Err(e) = self
            .vtph
            .device_mut()
            .backend_mut()
            .write_config(u64::from(offset), data)
        {
            self.lines.push(format!(
                "vm cfg wr {offset:#05x}/{width} <- {value:#x}: host refused ({e})"
            ));
        }
    }

    fn msix_read(&mut self, vector: u16, offset: u8) -> u32 {
        let Some(entry) = self.table.get(usize::from(vector)) else {
            return u32::MAX;
        };
        let dword = entry.get(usize::from(offset / 4)).copied().unwrap_or(0);
        if offset == 12 {
            return dword & 1 | u32::from(self.vtph.read_vector_control_st(vector)) << 16;
        }
        dword
    }

    fn msix_write(&mut self, vector: u16, offset: u8, value: u32) {
        let Some(slot) = self
            .table
            .get_mut(usize::from(vector))
            .and_then(|e| e.get_mut(usize::from(offset / 4)))
        else {
            return;
        };
        if offset != 12 {
            *slot = value;
            return;
        }
        *slot = value & 1;
        let w = self.vtph.write_vector_control(vector, value);
        self.note_effect(
            &format!(
                "msix wr vec {vector} +0xc <- {value:#x} (masked {})",
                w.masked
            ),
            &w.effect,
        );
    }

    fn reset(&mut self) {
        self.guest_reset("device reset");
    }

    fn irqs_changed(&mut self, index: u32, eventfds: &[Option<File>]) {
        if index != IRQ_MSIX {
            return;
        }
        let before = self.vtph.host_msix_will_change();
        self.note_effect("MSI-X will change", &before);
        let n = eventfds
            .iter()
            .rposition(Option::is_some)
            .map_or(0, |i| i + 1);
        let result = if n == 0 {
            self.vtph.device_mut().disable_msix()
        } else {
            while self.fillers.len() < n {
                match tph_client::backend::eventfd() {
                    Ok(e) => self.fillers.push(e),
                    Err(e) => {
                        self.lines.push(format!("vm MSI-X: no eventfd ({e})"));
                        return;
                    }
                }
            }
            let fds: Vec<BorrowedFd<'_>> = eventfds[..n]
                .iter()
                .zip(&self.fillers)
                .map(|(client, filler)| match client {
                    Some(f) => f.as_fd(),
                    None => filler.as_fd(),
                })
                .collect();
            self.vtph.device_mut().enable_msix(&fds)
        };
        match result {
            Ok(()) => {
                let after = self.vtph.host_msix_enabled(n as u32);
                self.note_effect(&format!("host MSI-X {n} vectors"), &after);
            }
            Err(e) => self
                .lines
                .push(format!("vm host MSI-X {n} vectors failed ({e})")),
        }
    }

    /// The layer's reset hook (the guest is gone, so the host must not keep its tags); no
    /// host reset (the VMM may still read the host function before it closes it).
    fn client_left(&mut self) {
        let effect = self.vtph.reset();
        self.note_effect("client left: reset hook", &effect);
        self.left = Some(effect);
    }

    fn drain_trace(&mut self, out: &mut Vec<String>) {
        if let Some(t) = self.host_trace.as_mut() {
            let mut host = Vec::new();
            t(&mut host);
            out.extend(host.into_iter().map(|l| format!("host {l}")));
        }
        out.append(&mut self.lines);
    }
}
