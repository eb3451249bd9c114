//! What a server serves: a [`Function`], register by register. [`EmulatedFunction`] is the
//! model's emulated hardware (`tph_kernel::hw::Function`) as it is, for a guest kernel to
//! drive directly.

use tph_kernel::hw;
use tph_regs::machine::{Bdf, Machine};

use crate::layout::Layout;
use crate::Error;

/// One PCI function behind a vfio-user server. Accesses arrive naturally aligned: config
/// accesses of 1, 2 or 4 bytes inside [`Layout::config_size`], MSI-X table accesses as whole
/// dwords of one entry (a qword access arrives as two).
pub trait Function: Send {
    /// Regions and interrupts as the client is told them.
    fn layout(&self) -> &Layout;
    /// Reads `width` bytes of configuration space at `offset`.
    fn config_read(&mut self, offset: u16, width: u8) -> u32;
    /// Writes `width` bytes of configuration space at `offset`.
    fn config_write(&mut self, offset: u16, width: u8, value: u32);
    /// Reads dword `offset` (0, 4, 8, 12) of MSI-X table entry `vector`.
    fn msix_read(&mut self, vector: u16, offset: u8) -> u32;
    /// Writes dword `offset` of MSI-X table entry `vector`.
    fn msix_write(&mut self, vector: u16, offset: u8, value: u32);
    /// The client reset the device (`VFIO_USER_DEVICE_RESET`).
    fn reset(&mut self);
    /// The client's interrupt set-up changed: `eventfds` holds, per vector of IRQ `index`,
    /// the client's eventfd (`None`: the vector has none). The default does nothing.
    fn irqs_changed(&mut self, index: u32, eventfds: &[Option<std::fs::File>]) {
        let _ = (index, eventfds);
    }
    /// The client left (it closed its socket: QEMU was killed, the guest powered off) or
    /// the session ended on an error; no access follows. A VMM's view puts the host device
    /// it fronts back in a safe state here ([`crate::VmFunction`] runs the layer's reset, so
    /// the host does not keep steering with the guest's tags). The default does nothing
    /// (the model's hardware stays as the guest left it, as a real device would).
    fn client_left(&mut self) {}
    /// Moves the trace lines recorded since the last call into `out`, in the vocabulary of
    /// `tphctl session --trace` (each `tph_kernel::hw::Access` as it displays).
    fn drain_trace(&mut self, out: &mut Vec<String>);
}

/// The model's emulated hardware of one function, served as it is: a guest kernel reads and
/// writes its registers directly (its own PCI TPH core enables TPH and writes the tables).
#[derive(Debug)]
pub struct EmulatedFunction {
    hw: hw::Function,
    layout: Layout,
}

impl EmulatedFunction {
    /// The function built from configuration bytes (an `lspci -xxxx` dump's or synthesised).
    pub fn new(config: &[u8]) -> Self {
        Self {
            hw: hw::Function::new(config),
            layout: Layout::of(config),
        }
    }

    /// The function at `bdf` of `machine`. Fails when there is none or it is a bridge (a
    /// bridge's secondary bus cannot be served through vfio-user).
    pub fn from_machine(machine: &Machine, bdf: Bdf) -> Result<Self, Error> {
        let f = machine
            .function(bdf)
            .ok_or_else(|| Error::Function(format!("no function {bdf} in the machine")))?;
        if f.bridge_buses().is_some() {
            return Err(Error::Function(format!(
                "{bdf} is a bridge; only endpoints can be served"
            )));
        }
        Ok(Self::new(&f.config))
    }

    /// The emulated hardware (inspection: snapshots, violations, untraced peeks).
    pub fn hardware(&self) -> &hw::Function {
        &self.hw
    }

    /// The emulated hardware, mutable (e.g. to inject a failure).
    pub fn hardware_mut(&mut self) -> &mut hw::Function {
        &mut self.hw
    }
}

impl Function for EmulatedFunction {
    fn layout(&self) -> &Layout {
        &self.layout
    }

    fn config_read(&mut self, offset: u16, width: u8) -> u32 {
        self.hw.config_read(offset, width)
    }

    fn config_write(&mut self, offset: u16, width: u8, value: u32) {
        self.hw.config_write(offset, width, value);
    }

    fn msix_read(&mut self, vector: u16, offset: u8) -> u32 {
        self.hw.msix_read(vector, offset)
    }

    fn msix_write(&mut self, vector: u16, offset: u8, value: u32) {
        self.hw.msix_write(vector, offset, value);
    }

    /// \[decision\] A vfio-user device reset is a function-level reset of the hardware
    /// (every register, the MSI-X table included, back to its reset value), as vfio-pci's
    /// `VFIO_DEVICE_RESET` does through FLR; the hardware traces no access for it (the
    /// server's trace has its own line).
    fn reset(&mut self) {
        self.hw.secondary_bus_reset();
    }

    fn drain_trace(&mut self, out: &mut Vec<String>) {
        out.extend(self.hw.drain_trace().iter().map(ToString::to_string));
    }
}
