//! The BARs of an emulated function: where they are and how big (the `resource` lines of sysfs,
//! the VFIO region info), and their memory, kept in the device's backing file.
//!
//! A device fd under the fake host is a sparse file whose bytes at `index << 40` are BAR
//! `index` (the offset vfio-pci gives the region), so a program's `mmap` of a BAR maps real,
//! shared pages. The supervisor reads and writes the same file: `pread`/`pwrite` on a BAR
//! region reach those bytes (the MSI-X table excluded, as `vfio_pci_bar_rw` excludes it), and
//! around every call on the device the MSI-X table in the file and the model's table are
//! reconciled ([`BarMemory::pull`], [`BarMemory::push`]): what the program wrote through its
//! mapping reaches the model's table as a write through the mapping would reach hardware, and
//! what the kernel or the device changed is what the mapping shows. The PBA reads as the
//! device's (no interrupt is ever pending: none fires).

use std::fs::File;
use std::os::unix::fs::FileExt;

use tph_kernel::vfio::VfioDevice;
use tph_regs::caps::{find_cap, CAP_ID_EXP};
use tph_regs::msix::{MsixCap, MSIX_ENTRY_SIZE};

use tph_client::Errno;

/// Region offsets within the device fd: index << 40, as vfio-pci does.
pub(crate) const REGION_SHIFT: u32 = 40;
/// The page size mappings are made of.
const PAGE: u64 = 4096;
/// `IORESOURCE_IO`, `IORESOURCE_MEM`, `IORESOURCE_PREFETCH`, `IORESOURCE_MEM_64`,
/// `IORESOURCE_SIZEALIGN` (include/linux/ioport.h).
const IORESOURCE_IO: u64 = 0x100;
const IORESOURCE_MEM: u64 = 0x200;
const IORESOURCE_PREFETCH: u64 = 0x2000;
const IORESOURCE_MEM_64: u64 = 0x10_0000;
const IORESOURCE_SIZEALIGN: u64 = 0x4_0000;
/// Lines of a function's sysfs `resource` file: 6 BARs, the ROM, 6 SR-IOV BARs
/// (`PCI_BRIDGE_RESOURCES` with `CONFIG_PCI_IOV`, as Debian builds it).
const RESOURCE_LINES: usize = 13;
/// Where BARs whose register holds no address are placed (see [`layout`]).
const SYNTH_BASE: u64 = 0x1000_0000_0000;

/// One implemented BAR.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bar {
    /// Bus address of its first byte.
    pub start: u64,
    /// Its size in bytes (a power of two).
    pub size: u64,
    /// The kernel's resource flags (`IORESOURCE_*` with the register's low bits).
    pub flags: u64,
}

impl Bar {
    /// A memory BAR (only those can be mapped).
    pub fn is_mem(&self) -> bool {
        self.flags & IORESOURCE_MEM != 0
    }
}

/// Where an emulated function's BARs are, and where its MSI-X table lives in them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    /// BAR 0..5 (the upper half of a 64-bit BAR is `None`).
    pub bars: [Option<Bar>; 6],
    /// The MSI-X capability, when the function has one.
    pub msix: Option<MsixCap>,
    /// Config space size (`pdev->cfg_size`): 4096 for PCI Express, 256 otherwise.
    pub cfg_size: u64,
}

fn dword(config: &[u8], at: usize) -> u32 {
    config
        .get(at..at + 4)
        .and_then(|s| <[u8; 4]>::try_from(s).ok())
        .map_or(0, u32::from_le_bytes)
}

/// The BARs of a function with config space `config` at `bdf16` (bus << 8 | devfn).
///
/// Config dumps hold BAR addresses but not sizes (sizing needs writes). A BAR is implemented
/// when its register holds an address or the MSI-X table or PBA lives in it; its size is the
/// smallest power of two of at least a page that covers the MSI-X structures it holds (one
/// page when it holds none; 256 bytes for an I/O BAR). A memory BAR whose register reads 0
/// (the built-in machine assigns no addresses) is placed at `0x1000_0000_0000 + bdf16 << 28 +
/// index << 24`, as a kernel would assign it somewhere.
pub(crate) fn layout(config: &[u8], bdf16: u16) -> Layout {
    let type0 = config.get(0x0e).is_some_and(|t| t & 0x7f == 0);
    let msix = MsixCap::find(config);
    let cfg_size = if find_cap(config, CAP_ID_EXP).is_some() && config.len() > 256 {
        4096
    } else {
        256
    };
    let mut bars = [None; 6];
    let mut i = 0;
    while type0 && i < 6 {
        let reg = dword(config, 0x10 + 4 * i);
        let holds = msix_end_in(msix.as_ref(), i as u8);
        let io = reg & 1 == 1;
        let mem64 = !io && (reg >> 1) & 3 == 2 && i < 5;
        let addr = if io {
            u64::from(reg & !3)
        } else if mem64 {
            u64::from(reg & !0xf) | u64::from(dword(config, 0x14 + 4 * i)) << 32
        } else {
            u64::from(reg & !0xf)
        };
        if addr != 0 || holds > 0 {
            bars[i] = Some(if io {
                Bar {
                    start: addr,
                    size: 256,
                    flags: IORESOURCE_IO | IORESOURCE_SIZEALIGN | u64::from(reg & 3),
                }
            } else {
                let mut flags = IORESOURCE_MEM | IORESOURCE_SIZEALIGN | u64::from(reg & 0xf);
                if mem64 {
                    flags |= IORESOURCE_MEM_64;
                }
                if reg & 8 != 0 {
                    flags |= IORESOURCE_PREFETCH;
                }
                let start = if addr != 0 {
                    addr
                } else {
                    SYNTH_BASE + (u64::from(bdf16) << 28) + ((i as u64) << 24)
                };
                Bar {
                    start,
                    size: holds.max(PAGE).next_power_of_two(),
                    flags,
                }
            });
        }
        i += if mem64 { 2 } else { 1 };
    }
    Layout {
        bars,
        msix,
        cfg_size,
    }
}

/// The end (exclusive byte offset) of the MSI-X structures that live in BAR `bir`; 0 when none.
fn msix_end_in(msix: Option<&MsixCap>, bir: u8) -> u64 {
    let Some(m) = msix else { return 0 };
    let table = (m.table_bir == bir)
        .then(|| u64::from(m.table_offset) + MSIX_ENTRY_SIZE * u64::from(m.table_size));
    let pba = (m.pba_bir == bir)
        .then(|| u64::from(m.pba_offset) + u64::from(m.table_size).div_ceil(64) * 8);
    table.unwrap_or(0).max(pba.unwrap_or(0))
}

/// [`layout`] of the function at `bdf`.
pub(crate) fn layout_of(config: &[u8], bdf: tph_regs::machine::Bdf) -> Layout {
    let devfn = (u16::from(bdf.device) << 3) | u16::from(bdf.function);
    layout(config, (u16::from(bdf.bus) << 8) | devfn)
}

impl Layout {
    /// The function's sysfs `resource` file, byte for byte (`resource_show`): 13 lines of
    /// start, end and flags, zeros for what is not implemented.
    pub fn resource_file(&self) -> String {
        (0..RESOURCE_LINES)
            .map(|i| match self.bars.get(i).copied().flatten() {
                Some(b) => format!(
                    "0x{:016x} 0x{:016x} 0x{:016x}\n",
                    b.start,
                    b.start + b.size - 1,
                    b.flags
                ),
                None => format!("0x{0:016x} 0x{0:016x} 0x{0:016x}\n", 0),
            })
            .collect()
    }

    /// BAR `index`, when implemented.
    pub fn bar(&self, index: u32) -> Option<Bar> {
        self.bars
            .get(usize::try_from(index).ok()?)
            .copied()
            .flatten()
    }

    /// The byte range of the MSI-X table in BAR `index` (`vdev->msix_offset`, `msix_size`).
    pub fn table_in(&self, index: u32) -> Option<(u64, u64)> {
        let m = self.msix.filter(|m| u32::from(m.table_bir) == index)?;
        let start = u64::from(m.table_offset);
        Some((start, start + MSIX_ENTRY_SIZE * u64::from(m.table_size)))
    }

    /// How long the backing file must be for every BAR to be mapped whole.
    pub fn file_len(&self) -> u64 {
        (0..6u32)
            .filter_map(|i| {
                let b = self.bar(i)?;
                Some((u64::from(i) << REGION_SHIFT) + b.size.div_ceil(PAGE) * PAGE)
            })
            .max()
            .unwrap_or(0)
    }
}

/// One device's BAR memory: its backing file, and the MSI-X table as last put there.
#[derive(Debug)]
pub(crate) struct BarMemory {
    file: File,
    layout: Layout,
    /// The table bytes last written to the file (what the program's mapping showed then).
    shown: Vec<u8>,
    /// Where the table starts in the file.
    table_at: u64,
    /// Where the PBA starts in the file and how long it is (outside the table).
    pba: Option<(u64, usize)>,
}

impl BarMemory {
    /// The memory of a device with `layout`, in `file` (made long enough, sparse), the MSI-X
    /// table filled from the model.
    pub fn new(file: File, layout: Layout, dev: &VfioDevice) -> std::io::Result<Self> {
        if file.metadata()?.len() < layout.file_len() {
            file.set_len(layout.file_len())?;
        }
        let (table_at, table_len, pba) = match layout.msix {
            Some(m) => {
                let at = (u64::from(m.table_bir) << REGION_SHIFT) + u64::from(m.table_offset);
                let len = usize::from(m.table_size) * MSIX_ENTRY_SIZE as usize;
                let pba_at = (u64::from(m.pba_bir) << REGION_SHIFT) + u64::from(m.pba_offset);
                let pba_len = usize::from(m.table_size).div_ceil(64) * 8;
                (at, len, Some((pba_at, pba_len)))
            }
            None => (0, 0, None),
        };
        let mut mem = Self {
            file,
            layout,
            shown: vec![0; table_len],
            table_at,
            pba,
        };
        mem.write_table(dev)?;
        Ok(mem)
    }

    /// Before the model acts on the device: every Vector Control or message dword the program
    /// changed through its mapping since [`BarMemory::push`] is written to the device's table
    /// (as a write through the mapping reaches hardware, behind the kernel).
    pub fn pull(&mut self, dev: &VfioDevice) {
        if self.shown.is_empty() {
            return;
        }
        let mut now = vec![0u8; self.shown.len()];
        if self.file.read_exact_at(&mut now, self.table_at).is_err() {
            return;
        }
        for (i, (new, old)) in now
            .chunks_exact(4)
            .zip(self.shown.chunks_exact(4))
            .enumerate()
        {
            if new != old {
                let v = u32::from_le_bytes([new[0], new[1], new[2], new[3]]);
                let (vector, offset) = ((i / 4) as u16, (i % 4 * 4) as u8);
                dev.with_hardware(|f| f.msix_write(vector, offset, v));
            }
        }
        // The mapping shows what the program wrote until the device's own value replaces it:
        // a bit the device does not keep (read-only, reserved) reads back as the device holds.
        self.shown = now;
        let _ = self.write_table(dev);
    }

    /// After the model acted: the table in the mapping is the device's again, and the PBA
    /// reads as the device's (no interrupt is pending).
    pub fn push(&mut self, dev: &VfioDevice) {
        let _ = self.write_table(dev);
    }

    fn write_table(&mut self, dev: &VfioDevice) -> std::io::Result<()> {
        if self.shown.is_empty() {
            return Ok(());
        }
        let table: Vec<u8> = dev
            .with_hardware(|f| f.peek_msix_table().to_vec())
            .iter()
            .flat_map(|e| e.iter().flat_map(|d| d.to_le_bytes()))
            .collect();
        for (i, (new, old)) in table
            .chunks_exact(4)
            .zip(self.shown.chunks_exact_mut(4))
            .enumerate()
        {
            if new != old {
                self.file.write_all_at(new, self.table_at + 4 * i as u64)?;
                old.copy_from_slice(new);
            }
        }
        if let Some((at, len)) = self.pba {
            let mut pba = vec![0u8; len];
            self.file.read_exact_at(&mut pba, at)?;
            let table = self.table_at..self.table_at + self.shown.len() as u64;
            if pba.iter().any(|&b| b != 0) && !table.contains(&at) {
                self.file.write_all_at(&vec![0u8; len], at)?;
            }
        }
        Ok(())
    }

    /// `pread` (or, with `write`, `pwrite`) of `data.len()` bytes at `pos` of BAR `index`, as
    /// `vfio_pci_bar_rw`: EINVAL for a BAR that is not implemented or at or past its end, the
    /// length cut at the end, the MSI-X table excluded (reads give 0xff, writes are dropped).
    /// Returns how many bytes were done.
    pub fn rw(&self, index: u32, pos: u64, data: &mut [u8], write: bool) -> Result<usize, Errno> {
        let bar = self.layout.bar(index).ok_or(Errno::EINVAL)?;
        if pos >= bar.size {
            return Err(Errno::EINVAL);
        }
        let n = usize::try_from((bar.size - pos).min(data.len() as u64)).unwrap_or(0);
        let (x_start, x_end) = self.layout.table_in(index).unwrap_or((0, 0));
        let base = u64::from(index) << REGION_SHIFT;
        let mut done = 0;
        while done < n {
            let at = pos + done as u64;
            let left = (n - done) as u64;
            // The run up to the next edge of the excluded range.
            let (excluded, run) = if at < x_start {
                (false, left.min(x_start - at))
            } else if at < x_end {
                (true, left.min(x_end - at))
            } else {
                (false, left)
            };
            let chunk = &mut data[done..done + run as usize];
            let r = match (excluded, write) {
                (true, true) => Ok(()),
                (true, false) => {
                    chunk.fill(0xff);
                    Ok(())
                }
                (false, true) => self.file.write_all_at(chunk, base + at),
                (false, false) => self.file.read_exact_at(chunk, base + at),
            };
            r.map_err(|e| Errno::from_io(&e))?;
            done += run as usize;
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nic_config() -> Vec<u8> {
        let host = tph_kernel::Host::with_default_machine(Default::default());
        host.machine()
            .function("01:00.0".parse().unwrap())
            .unwrap()
            .config
            .clone()
    }

    #[test]
    fn layout_of_the_nic_places_bar0_with_the_msix_table_and_pba() {
        let l = layout(&nic_config(), 0x0100);
        let bar0 = l.bar(0).unwrap();
        // 2048 vectors at 0x2000: the table ends at 0xa000, so 64 KiB.
        assert_eq!(bar0.size, 0x1_0000);
        assert_eq!(bar0.start, 0x1000_0000_0000 + (0x0100 << 28));
        assert_eq!(bar0.flags, 0x40200);
        assert!((1..6).all(|i| l.bar(i).is_none()));
        assert_eq!(l.table_in(0), Some((0x2000, 0xa000)));
        assert_eq!(l.cfg_size, 4096);
    }

    #[test]
    fn resource_file_has_13_lines_in_the_kernel_format() {
        let text = layout(&nic_config(), 0x0100).resource_file();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 13);
        assert_eq!(
            lines[0],
            "0x0000101000000000 0x000010100000ffff 0x0000000000040200"
        );
        assert_eq!(
            lines[1],
            "0x0000000000000000 0x0000000000000000 0x0000000000000000"
        );
    }

    /// The NIC taken over and opened, and its BAR memory in a fresh temporary file.
    fn nic_memory(dir: &std::path::Path) -> (tph_kernel::vfio::DeviceFd, BarMemory) {
        let host = tph_kernel::Host::with_default_machine(Default::default());
        let bdf = "01:00.0".parse().unwrap();
        let dev = host.take_over(bdf).unwrap();
        let fd = dev.open().unwrap();
        let file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(dir.join("bars"))
            .unwrap();
        let mem = BarMemory::new(file, layout_of(&nic_config(), bdf), &dev).unwrap();
        (fd, mem)
    }

    fn file_dword(dir: &std::path::Path, at: u64) -> u32 {
        let f = File::open(dir.join("bars")).unwrap();
        let mut b = [0u8; 4];
        f.read_exact_at(&mut b, at).unwrap();
        u32::from_le_bytes(b)
    }

    #[test]
    fn the_mapping_and_the_model_table_follow_each_other() {
        let dir = std::env::temp_dir().join(format!("tph-bars-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (fd, mut mem) = nic_memory(&dir);
        let dev = fd.device();
        let vc5 = 0x2000 + 5 * 16 + 12;
        // After the first open every vector is masked, in the device and in the mapping.
        assert_eq!(file_dword(&dir, vc5), 1);
        // The program writes vector 5's message data through its mapping: at its next call
        // on the device the write reaches the table (traced as a hardware access).
        let f = File::options().write(true).open(dir.join("bars")).unwrap();
        f.write_all_at(&0x1234u32.to_le_bytes(), 0x2000 + 5 * 16 + 8)
            .unwrap();
        dev.drain_trace();
        mem.pull(&dev);
        assert_eq!(dev.with_hardware(|h| h.peek_msix_table()[5][2]), 0x1234);
        assert_eq!(dev.drain_trace().len(), 1);
        // The kernel unmasks vectors 0..4: the mapping shows it after the call.
        fd.set_irqs(4).unwrap();
        mem.push(&dev);
        assert_eq!(file_dword(&dir, 0x2000 + 12), 0);
        assert_eq!(file_dword(&dir, vc5), 1);
        // pread of the table: 0xff; outside it, the device memory.
        let mut buf = [0u8; 8];
        assert_eq!(mem.rw(0, 0x2000 - 4, &mut buf, false), Ok(8));
        assert_eq!(buf, [0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(mem.rw(0, 0x1_0000, &mut buf, false), Err(Errno::EINVAL));
        assert_eq!(mem.rw(1, 0, &mut buf, false), Err(Errno::EINVAL));
        drop(mem);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn bits_the_device_does_not_keep_read_back_as_the_device_holds_them() {
        let dir = std::env::temp_dir().join(format!("tph-bars-ro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (fd, mut mem) = nic_memory(&dir);
        let dev = fd.device();
        let addr5 = 0x2000 + 5 * 16;
        // Message Address bits 1:0 are read-only zero: the program writes them through its
        // mapping, and after its next call the mapping shows what the device kept.
        // Twice: the second time the device's value does not change at all.
        let f = File::options().write(true).open(dir.join("bars")).unwrap();
        f.write_all_at(&0xfee0_0000u32.to_le_bytes(), addr5)
            .unwrap();
        mem.pull(&dev);
        f.write_all_at(&0xfee0_0003u32.to_le_bytes(), addr5)
            .unwrap();
        mem.pull(&dev);
        assert_eq!(
            dev.with_hardware(|h| h.peek_msix_table()[5][0]),
            0xfee0_0000
        );
        assert_eq!(file_dword(&dir, addr5), 0xfee0_0000);
        // And it stays so across the call.
        mem.push(&dev);
        assert_eq!(file_dword(&dir, addr5), 0xfee0_0000);
        drop(mem);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_64_bit_prefetchable_bar_from_a_dump_keeps_its_address_and_flags() {
        let mut cfg = vec![0u8; 256];
        cfg[0x10..0x14].copy_from_slice(&0xfe00_000cu32.to_le_bytes());
        cfg[0x14..0x18].copy_from_slice(&0x0000_0038u32.to_le_bytes());
        let l = layout(&cfg, 0);
        let b = l.bar(0).unwrap();
        assert_eq!((b.start, b.size, b.flags), (0x38_fe00_0000, 4096, 0x14220c));
        assert!(l.bar(1).is_none(), "the upper half is not a BAR");
        assert_eq!(l.cfg_size, 256);
    }
}
