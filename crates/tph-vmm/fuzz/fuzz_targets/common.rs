//! What every target shares: a VM built from the input's first bytes (kernel revision, the
//! revision's unsafe parameter, which device, the unsafe DS option, vCPUs and their pins) on
//! the emulated host, a byte cursor, and the checks that must hold after every step.
#![allow(dead_code)] // each target uses a subset

use tph_acpi::{MemType, TableSource, TagWidth};
use tph_client::{Revision, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::{Host, HostOptions, KernelAbi};
use tph_regs::tph::{CompleterSupport, StLocation, Upstream};
use tph_vmm::{VirtualTph, VmConfig};

/// Host CPUs of the emulated host.
pub const HOST_CPUS: u32 = 16;

/// Reads the fuzz input front to back; past the end every read is 0.
pub struct Cursor<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    pub fn new(data: &'a [u8]) -> Self {
        Self { data, at: 0 }
    }

    pub fn done(&self) -> bool {
        self.at >= self.data.len()
    }

    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.at).copied().unwrap_or(0);
        self.at += 1;
        b
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.u8()).collect()
    }
}

pub struct Vm {
    pub host: Host,
    pub v: VirtualTph<EmulatedBackend>,
    pub abi: KernelAbi,
}

/// A VM from the input's first bytes; `None` when the layer refuses the configuration (which
/// is then a clear error, never a panic).
pub fn vm(c: &mut Cursor<'_>) -> Option<Vm> {
    let flags = c.u8();
    let abi = if flags & 1 == 0 {
        KernelAbi::V7
    } else {
        KernelAbi::Feature
    };
    let gate = flags & 2 != 0;
    let msix = flags & 4 != 0;
    let unsafe_ds = flags & 8 != 0;
    let vcpus = 1 + u32::from(c.u8() % 8);
    let host = Host::with_default_machine(
        HostOptions::new()
            .with_cpus(HOST_CPUS)
            .with_abi(abi)
            .with_unsafe_ds(gate),
    );
    let bdf = if msix { "01:00.0" } else { "02:00.0" };
    let backend = EmulatedBackend::take_over(&host, bdf.parse().ok()?).ok()?;
    let revision = match abi {
        KernelAbi::V7 => Revision::V7,
        KernelAbi::Feature => Revision::Feature,
        other => panic!("no client revision for {other:?}"),
    };
    let dev = TphDevice::with_revision(backend, revision).ok()?;
    let mut cfg = VmConfig::new(vcpus);
    for p in cfg.pins.iter_mut() {
        let b = c.u8();
        *p = (b & 0x80 == 0).then_some(u32::from(b) % HOST_CPUS);
    }
    cfg.unsafe_ds = unsafe_ds;
    cfg.host_upstream = Upstream::RootPort(if msix {
        CompleterSupport::TphAndExt
    } else {
        CompleterSupport::Tph
    });
    let v = VirtualTph::new(dev, cfg).ok()?;
    Some(Vm { host, v, abi })
}

fn host_tags(cpu: u32) -> [u16; 4] {
    let info = TableSource::default_st_info(cpu);
    let tag = |mem, width| info.tag(mem, width).unwrap_or(0);
    [
        tag(MemType::Volatile, TagWidth::Bits8),
        tag(MemType::Volatile, TagWidth::Bits16),
        tag(MemType::Persistent, TagWidth::Bits8),
        tag(MemType::Persistent, TagWidth::Bits16),
    ]
}

/// What must hold after every step: the emulated device saw no protocol violation, and while
/// the host has TPH on, every entry the kernel can reach holds 0 or a tag of a host CPU some
/// vCPU was ever pinned to (`ever`): a guest's own numbers never reach the device.
pub fn check(vm: &Vm, ever: &[u32]) {
    let dev = vm.v.device().backend().device();
    let violations = dev.violations();
    assert!(violations.is_empty(), "{violations:?}");
    let snap = dev.snapshot();
    if snap.control.unwrap_or(0) & 0x300 == 0 {
        return;
    }
    let msix = snap.location == Some(StLocation::MsiX);
    for (i, st) in snap.st_table.iter().enumerate() {
        if *st == 0 || (msix && i as u32 >= snap.msix_vectors) {
            continue;
        }
        assert!(
            ever.iter().any(|cpu| host_tags(*cpu).contains(st)),
            "host entry {i} holds {st:#x}, no tag of a host CPU of this VM {ever:?}"
        );
    }
    // The guest's reads never fail or panic, wherever they land.
    let mut buf = [0u8; 64];
    vm.v.read_config(vm.v.cap_offset(), &mut buf);
    vm.v.read_msix_table(0, &mut buf);
}

/// Host CPUs the configuration pins.
pub fn pinned(vm: &Vm) -> Vec<u32> {
    vm.v.config().pins.iter().flatten().copied().collect()
}
