//! The vfio-user side of a served [`Function`]: region accesses split into register
//! accesses, the client's eventfds, DMA maps, reset, and the trace. [`Device`] implements
//! `vfio_user::ServerBackend`; [`Handle`] reaches the same state from other threads while the
//! server runs.

use std::fs::File;
use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use vfio_user::{DmaMapFlags, DmaUnmapFlags, ServerBackend};

use crate::function::Function;
use crate::layout::{pba_len, Layout, CONFIG_REGION, IRQ_MSIX, NUM_IRQS};

/// `VFIO_IRQ_SET_DATA_NONE`.
const DATA_NONE: u32 = 1;
/// `VFIO_IRQ_SET_DATA_EVENTFD`.
const DATA_EVENTFD: u32 = 4;
/// `VFIO_IRQ_SET_ACTION_TRIGGER`.
const ACTION_TRIGGER: u32 = 32;
/// Data-type bits of the flags.
const DATA_MASK: u32 = 7;
/// Action bits of the flags.
const ACTION_MASK: u32 = 0x38;

/// One DMA mapping of client memory, as the client announced it (recorded, never mapped: the
/// emulated function does no DMA).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DmaMap {
    /// Guest (IOVA) address.
    pub address: u64,
    /// Length in bytes.
    pub size: u64,
    /// Offset into the file descriptor the client passed.
    pub offset: u64,
    /// Readable by the device.
    pub read: bool,
    /// Writable by the device.
    pub write: bool,
    /// The client passed a file descriptor (memory the server could map).
    pub has_fd: bool,
}

/// What the server did, counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Counters {
    /// Region reads answered.
    pub reads: u64,
    /// Region writes taken.
    pub writes: u64,
    /// Device resets.
    pub resets: u64,
    /// `SET_IRQS` messages.
    pub set_irqs: u64,
    /// Interrupts signalled on a client eventfd.
    pub interrupts: u64,
    /// Interrupts left pending (no eventfd for the vector).
    pub pending: u64,
}

struct State<F> {
    function: F,
    layout: Layout,
    /// The client's eventfds per IRQ index and vector.
    eventfds: Vec<Vec<Option<File>>>,
    /// MSI-X Pending Bits (an interrupt with no eventfd to deliver it).
    pending: Vec<bool>,
    dma: Vec<DmaMap>,
    counters: Counters,
    trace: Option<Box<dyn Write + Send>>,
    lines: Vec<String>,
    trace_error: Option<io::Error>,
}

impl<F: Function> State<F> {
    fn event(&mut self, line: String) {
        self.flush_function_trace();
        self.lines.push(line);
        self.write_lines();
    }

    fn flush_function_trace(&mut self) {
        self.function.drain_trace(&mut self.lines);
    }

    fn write_lines(&mut self) {
        let Some(sink) = self.trace.as_mut() else {
            self.lines.clear();
            return;
        };
        for line in self.lines.drain(..) {
            if let Err(e) = writeln!(sink, "{line}") {
                self.trace_error.get_or_insert(e);
            }
        }
        if let Err(e) = sink.flush() {
            self.trace_error.get_or_insert(e);
        }
    }

    /// The client is gone: noted in the trace, then the function's hook (its trace lines
    /// follow).
    fn client_left(&mut self) {
        self.event("client left".into());
        self.function.client_left();
        self.done();
    }

    fn done(&mut self) {
        self.flush_function_trace();
        self.write_lines();
    }

    /// Signals vector `vector` of IRQ `index`: its eventfd when the client gave one, else its
    /// pending bit (MSI-X only).
    fn trigger(&mut self, index: u32, vector: u32) -> bool {
        let fd = self
            .eventfds
            .get_mut(index as usize)
            .and_then(|v| v.get_mut(vector as usize))
            .and_then(Option::as_mut);
        let delivered = match fd {
            Some(f) => f.write_all(&1u64.to_ne_bytes()).is_ok(),
            None => false,
        };
        if delivered {
            self.counters.interrupts += 1;
        } else if index == IRQ_MSIX {
            if let Some(p) = self.pending.get_mut(vector as usize) {
                *p = true;
            }
            self.counters.pending += 1;
        }
        delivered
    }

    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        self.counters.reads += 1;
        let result = if region == CONFIG_REGION {
            self.config_access(offset, data.len(), |f, off, w, _| {
                Some(f.config_read(off, w))
            })
            .map(|values| fill(data, &values))
        } else {
            self.bar_read(region, offset, data)
        };
        self.done();
        result
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        self.counters.writes += 1;
        let result = if region == CONFIG_REGION {
            self.config_access(offset, data.len(), |f, off, w, at| {
                f.config_write(off, w, le(data, at, usize::from(w)));
                None
            })
            .map(|_| ())
        } else {
            self.bar_write(region, offset, data)
        };
        self.done();
        result
    }

    /// Splits a config access into naturally aligned accesses of 4, 2 or 1 bytes; `op` gets
    /// the function, offset, width and the byte index inside the access.
    fn config_access(
        &mut self,
        offset: u64,
        len: usize,
        mut op: impl FnMut(&mut F, u16, u8, usize) -> Option<u32>,
    ) -> io::Result<Vec<(usize, u8, u32)>> {
        let end = offset.saturating_add(len as u64);
        if end > self.layout.config_size {
            return Err(invalid(format!(
                "config access {offset:#x}+{len} beyond the {}-byte space",
                self.layout.config_size
            )));
        }
        let mut out = Vec::new();
        let mut at = 0usize;
        while at < len {
            let off = offset + at as u64;
            let left = len - at;
            let width: u8 = if off.is_multiple_of(4) && left >= 4 {
                4
            } else if off.is_multiple_of(2) && left >= 2 {
                2
            } else {
                1
            };
            let reg = u16::try_from(off).map_err(|_| invalid("config offset".into()))?;
            if let Some(v) = op(&mut self.function, reg, width, at) {
                out.push((at, width, v));
            }
            at += usize::from(width);
        }
        Ok(out)
    }

    fn bar_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        self.check_bar(region, offset, data.len())?;
        let mut at = 0usize;
        while at < data.len() {
            let off = offset + at as u64;
            let chunk = (4 - (off % 4) as usize).min(data.len() - at);
            let dword = match self.locate(region, off - off % 4) {
                Place::Table { vector, dword } => self.function.msix_read(vector, dword),
                Place::Pba { qword_bit } => {
                    let v = self.pba_dword(qword_bit);
                    self.lines.push(format!(
                        "pba  rd bar{region} +{:#x}/4 = {v:#x}",
                        off - off % 4
                    ));
                    v
                }
                Place::Other => {
                    self.lines.push(format!(
                        "bar{region} rd +{:#x}/4 = 0x0 (no register)",
                        off - off % 4
                    ));
                    0
                }
            };
            let shift = (off % 4) as usize;
            for i in 0..chunk {
                if let Some(b) = data.get_mut(at + i) {
                    *b = (dword >> (8 * (shift + i))) as u8;
                }
            }
            at += chunk;
        }
        Ok(())
    }

    fn bar_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        self.check_bar(region, offset, data.len())?;
        if !offset.is_multiple_of(4) || !data.len().is_multiple_of(4) {
            self.lines.push(format!(
                "bar{region} wr +{offset:#x}/{} dropped (not whole dwords)",
                data.len()
            ));
            return Ok(());
        }
        for at in (0..data.len()).step_by(4) {
            let off = offset + at as u64;
            let value = le(data, at, 4);
            match self.locate(region, off) {
                Place::Table { vector, dword } => self.function.msix_write(vector, dword, value),
                Place::Pba { .. } => self.lines.push(format!(
                    "bar{region} wr +{off:#x}/4 <- {value:#x}: dropped (PBA is read-only)"
                )),
                Place::Other => self.lines.push(format!(
                    "bar{region} wr +{off:#x}/4 <- {value:#x}: dropped (no register)"
                )),
            }
        }
        Ok(())
    }

    fn check_bar(&self, region: u32, offset: u64, len: usize) -> io::Result<()> {
        let size = self.layout.region_size(region);
        match offset.checked_add(len as u64) {
            Some(end) if end <= size => Ok(()),
            _ => Err(invalid(format!(
                "region {region} access {offset:#x}+{len} beyond its {size:#x} bytes"
            ))),
        }
    }

    fn locate(&self, region: u32, off: u64) -> Place {
        let Some(m) = self.layout.msix else {
            return Place::Other;
        };
        let table = u64::from(m.table_offset);
        let table_end = table + u64::from(m.table_size) * 16;
        if u32::from(m.table_bir) == region && (table..table_end).contains(&off) {
            return Place::Table {
                vector: ((off - table) / 16) as u16,
                dword: ((off - table) % 16) as u8,
            };
        }
        let pba = u64::from(m.pba_offset);
        if u32::from(m.pba_bir) == region && (pba..pba + pba_len(m.table_size)).contains(&off) {
            return Place::Pba {
                qword_bit: ((off - pba) * 8) as usize,
            };
        }
        Place::Other
    }

    /// The PBA dword whose first bit is vector `first`.
    fn pba_dword(&self, first: usize) -> u32 {
        (0..32).fold(0u32, |v, i| {
            let set = self.pending.get(first + i).copied().unwrap_or(false);
            v | u32::from(set) << i
        })
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        self.counters.set_irqs += 1;
        let result = self.apply_irqs(index, flags, start, count, fds);
        let outcome = match &result {
            Ok(what) => what.clone(),
            Err(e) => format!("refused ({e})"),
        };
        self.event(format!(
            "irqs {} {start}+{count}: {outcome}",
            irq_name(index)
        ));
        let changed =
            flags & DATA_MASK == DATA_EVENTFD || (flags & DATA_MASK == DATA_NONE && count == 0);
        if result.is_ok() && flags & ACTION_MASK == ACTION_TRIGGER && changed {
            let empty = Vec::new();
            let fds = self.eventfds.get(index as usize).unwrap_or(&empty);
            self.function.irqs_changed(index, fds);
            self.done();
        }
        result.map(|_| ())
    }

    fn apply_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<String> {
        let available = self.layout.irq_count(index);
        let end = start
            .checked_add(count)
            .filter(|e| *e <= available)
            .ok_or_else(|| {
                invalid(format!(
                    "vectors {start}+{count} beyond the {available} of {}",
                    irq_name(index)
                ))
            })?;
        if flags & ACTION_MASK != ACTION_TRIGGER {
            // Masking is the client's business (QEMU masks by taking eventfds away).
            return Ok("mask/unmask ignored".into());
        }
        let slots = self
            .eventfds
            .get_mut(index as usize)
            .ok_or_else(|| invalid(format!("no IRQ index {index}")))?;
        match flags & DATA_MASK {
            DATA_NONE if count == 0 => {
                slots.iter_mut().for_each(|s| *s = None);
                Ok("all disabled".into())
            }
            DATA_NONE => {
                let fired = (start..end).filter(|v| self.trigger(index, *v)).count();
                Ok(format!("triggered ({fired} signalled)"))
            }
            DATA_EVENTFD if fds.is_empty() => {
                for v in start..end {
                    if let Some(s) = slots.get_mut(v as usize) {
                        *s = None;
                    }
                }
                Ok("eventfds removed".into())
            }
            DATA_EVENTFD if fds.len() == count as usize => {
                for (v, fd) in (start..end).zip(fds) {
                    if let Some(s) = slots.get_mut(v as usize) {
                        *s = Some(fd);
                    }
                }
                Ok("eventfds set".into())
            }
            DATA_EVENTFD => Err(invalid(format!(
                "{} eventfds for {count} vectors",
                fds.len()
            ))),
            _ => Err(invalid(format!(
                "data type {:#x} not supported",
                flags & DATA_MASK
            ))),
        }
    }
}

enum Place {
    Table { vector: u16, dword: u8 },
    Pba { qword_bit: usize },
    Other,
}

fn irq_name(index: u32) -> &'static str {
    match index {
        0 => "intx",
        1 => "msi",
        2 => "msix",
        3 => "err",
        4 => "req",
        _ => "unknown",
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

/// Little-endian value of `width` bytes of `data` at `at`.
fn le(data: &[u8], at: usize, width: usize) -> u32 {
    data.get(at..at + width)
        .unwrap_or(&[])
        .iter()
        .rev()
        .fold(0u32, |v, b| v << 8 | u32::from(*b))
}

fn fill(data: &mut [u8], values: &[(usize, u8, u32)]) {
    for (at, width, v) in values {
        for i in 0..usize::from(*width) {
            if let Some(b) = data.get_mut(at + i) {
                *b = (v >> (8 * i)) as u8;
            }
        }
    }
}

/// A served function with its vfio-user state; give it to [`crate::Server::serve`].
pub struct Device<F> {
    state: Arc<Mutex<State<F>>>,
}

/// Reaches a [`Device`] from another thread while the server runs (clone it freely).
pub struct Handle<F> {
    state: Arc<Mutex<State<F>>>,
}

impl<F> Clone for Handle<F> {
    fn clone(&self) -> Self {
        Self {
            state: Arc::clone(&self.state),
        }
    }
}

fn lock<F>(m: &Mutex<State<F>>) -> MutexGuard<'_, State<F>> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl<F: Function> Device<F> {
    /// Serves `function`; `trace`, when given, receives one line per access and event.
    pub fn new(function: F, trace: Option<Box<dyn Write + Send>>) -> Self {
        let layout = function.layout().clone();
        let eventfds = (0..NUM_IRQS)
            .map(|i| (0..layout.irq_count(i)).map(|_| None).collect())
            .collect();
        let pending = vec![false; layout.msix_vectors() as usize];
        Self {
            state: Arc::new(Mutex::new(State {
                function,
                layout,
                eventfds,
                pending,
                dma: Vec::new(),
                counters: Counters::default(),
                trace,
                lines: Vec::new(),
                trace_error: None,
            })),
        }
    }

    /// A handle to the same state.
    pub fn handle(&self) -> Handle<F> {
        Handle {
            state: Arc::clone(&self.state),
        }
    }

    /// The session ended: runs [`Function::client_left`] (the server calls it).
    pub(crate) fn client_left(&self) {
        lock(&self.state).client_left();
    }

    pub(crate) fn layout(&self) -> Layout {
        lock(&self.state).layout.clone()
    }
}

impl<F: Function> Handle<F> {
    /// Signals MSI-X vector `vector` (the device raises an interrupt): on the client's eventfd
    /// when it gave one, else the vector's pending bit is set. True when signalled.
    pub fn trigger_msix(&self, vector: u32) -> bool {
        let mut st = lock(&self.state);
        let delivered = st.trigger(IRQ_MSIX, vector);
        st.event(format!(
            "interrupt msix {vector}: {}",
            if delivered { "signalled" } else { "pending" }
        ));
        delivered
    }

    /// Runs `f` on the function (e.g. to inspect it or, in a VMM, to act on it).
    pub fn with_function<R>(&self, f: impl FnOnce(&mut F) -> R) -> R {
        let mut st = lock(&self.state);
        let r = f(&mut st.function);
        st.done();
        r
    }

    /// The DMA maps the client holds now.
    pub fn dma_maps(&self) -> Vec<DmaMap> {
        lock(&self.state).dma.clone()
    }

    /// Vectors of IRQ `index` that have a client eventfd.
    pub fn eventfd_vectors(&self, index: u32) -> Vec<u32> {
        let st = lock(&self.state);
        st.eventfds.get(index as usize).map_or(Vec::new(), |v| {
            (0u32..)
                .zip(v)
                .filter(|(_, f)| f.is_some())
                .map(|(i, _)| i)
                .collect()
        })
    }

    /// What the server did so far.
    pub fn counters(&self) -> Counters {
        lock(&self.state).counters
    }

    /// Adds a line to the trace (e.g. a VMM's own event).
    pub fn note(&self, line: impl Into<String>) {
        lock(&self.state).event(line.into());
    }

    /// The first error writing the trace, taken.
    pub fn take_trace_error(&self) -> Option<io::Error> {
        lock(&self.state).trace_error.take()
    }
}

impl<F: Function> ServerBackend for Device<F> {
    fn region_read(&mut self, region: u32, offset: u64, data: &mut [u8]) -> io::Result<()> {
        lock(&self.state).region_read(region, offset, data)
    }

    fn region_write(&mut self, region: u32, offset: u64, data: &[u8]) -> io::Result<()> {
        lock(&self.state).region_write(region, offset, data)
    }

    fn dma_map(
        &mut self,
        flags: DmaMapFlags,
        offset: u64,
        address: u64,
        size: u64,
        fd: Option<File>,
    ) -> io::Result<()> {
        let map = DmaMap {
            address,
            size,
            offset,
            read: flags.contains(DmaMapFlags::READ),
            write: flags.contains(DmaMapFlags::WRITE),
            has_fd: fd.is_some(),
        };
        let mut st = lock(&self.state);
        st.event(format!(
            "dma map {address:#x}+{size:#x}{}{}{}",
            if map.read { " r" } else { "" },
            if map.write { " w" } else { "" },
            if map.has_fd { " fd" } else { "" }
        ));
        st.dma.push(map);
        Ok(())
    }

    fn dma_unmap(&mut self, flags: DmaUnmapFlags, address: u64, size: u64) -> io::Result<()> {
        let mut st = lock(&self.state);
        let before = st.dma.len();
        let all = flags.contains(DmaUnmapFlags::UNMAP_ALL);
        st.dma
            .retain(|m| !all && (m.address != address || m.size != size));
        let removed = before - st.dma.len();
        st.event(format!(
            "dma unmap {address:#x}+{size:#x} ({removed} removed)"
        ));
        if removed == 0 {
            return Err(invalid(format!("no DMA map at {address:#x}+{size:#x}")));
        }
        Ok(())
    }

    fn reset(&mut self) -> io::Result<()> {
        let mut st = lock(&self.state);
        st.counters.resets += 1;
        st.function.reset();
        st.pending.iter_mut().for_each(|p| *p = false);
        st.event("reset (DEVICE_RESET): function level reset".into());
        Ok(())
    }

    fn set_irqs(
        &mut self,
        index: u32,
        flags: u32,
        start: u32,
        count: u32,
        fds: Vec<File>,
    ) -> io::Result<()> {
        lock(&self.state).set_irqs(index, flags, start, count, fds)
    }
}
