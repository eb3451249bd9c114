//! What the client is told about the function: regions (BARs, configuration space) and
//! interrupts, derived from the function's configuration bytes.

use tph_regs::caps::{find_cap, CAP_ID_EXP};
use tph_regs::msix::{MsixCap, MSIX_ENTRY_SIZE};

/// Region index of the configuration space (`VFIO_PCI_CONFIG_REGION_INDEX`).
pub const CONFIG_REGION: u32 = 7;
/// Regions a vfio-pci device has: BAR0..5, ROM, config, VGA (`VFIO_PCI_NUM_REGIONS`).
pub const NUM_REGIONS: u32 = 9;
/// IRQ index of INTx.
pub const IRQ_INTX: u32 = 0;
/// IRQ index of MSI.
pub const IRQ_MSI: u32 = 1;
/// IRQ index of MSI-X (`VFIO_PCI_MSIX_IRQ_INDEX`).
pub const IRQ_MSIX: u32 = 2;
/// IRQ indexes a vfio-pci device has: INTx, MSI, MSI-X, ERR, REQ (`VFIO_PCI_NUM_IRQS`).
pub const NUM_IRQS: u32 = 5;
/// Smallest BAR served (one page).
const MIN_BAR: u64 = 4096;
/// MSI capability ID.
const CAP_ID_MSI: u8 = 0x05;

/// The function as the client sees it: sizes of its regions and counts of its interrupts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Layout {
    /// Configuration space size: 4096 for a PCI Express function, else 256.
    pub config_size: u64,
    /// Size of each BAR (0: not served).
    pub bars: [u64; 6],
    /// The MSI-X capability (table and PBA locations).
    pub msix: Option<MsixCap>,
    /// INTx: the Interrupt Pin register is not 0.
    pub intx: bool,
    /// MSI vectors (0 without an MSI capability).
    pub msi_vectors: u32,
}

impl Layout {
    /// Derives the layout from configuration bytes. \[decision\] An `lspci` dump holds no BAR
    /// sizes, so only the BARs that hold the MSI-X table or PBA are served, each the smallest
    /// power of two (at least 4 KiB) that holds both; every other BAR is reported absent.
    pub fn of(config: &[u8]) -> Self {
        let config_size = if find_cap(config, CAP_ID_EXP).is_some() {
            4096
        } else {
            256
        };
        let msix = MsixCap::find(config);
        let mut bars = [0u64; 6];
        if let Some(m) = msix {
            let table_end = u64::from(m.table_offset) + u64::from(m.table_size) * MSIX_ENTRY_SIZE;
            let pba_end = u64::from(m.pba_offset) + pba_len(m.table_size);
            for (bir, end) in [(m.table_bir, table_end), (m.pba_bir, pba_end)] {
                if let Some(size) = bars.get_mut(usize::from(bir)) {
                    *size = (*size).max(end.max(MIN_BAR).next_power_of_two());
                }
            }
        }
        let msi_vectors = find_cap(config, CAP_ID_MSI)
            .and_then(|off| config.get(off + 2))
            .map_or(0, |ctrl| 1u32 << ((ctrl >> 1) & 7).min(5));
        Self {
            config_size,
            bars,
            msix,
            intx: config.get(0x3d).is_some_and(|pin| *pin != 0),
            msi_vectors,
        }
    }

    /// MSI-X vectors (0 without MSI-X).
    pub fn msix_vectors(&self) -> u32 {
        self.msix.map_or(0, |m| u32::from(m.table_size))
    }

    /// The size of region `index` (0: absent).
    pub fn region_size(&self, index: u32) -> u64 {
        match index {
            0..=5 => self.bars.get(index as usize).copied().unwrap_or(0),
            CONFIG_REGION => self.config_size,
            _ => 0,
        }
    }

    /// Interrupt count of IRQ `index`.
    pub fn irq_count(&self, index: u32) -> u32 {
        match index {
            IRQ_INTX => u32::from(self.intx),
            IRQ_MSI => self.msi_vectors,
            IRQ_MSIX => self.msix_vectors(),
            _ => 0,
        }
    }
}

/// Bytes of a PBA for `vectors` vectors (whole qwords).
pub fn pba_len(vectors: u16) -> u64 {
    u64::from(vectors).div_ceil(64) * 8
}

#[cfg(test)]
mod tests {
    use super::*;
    use tph_kernel::machines;

    #[test]
    fn msix_bar_holds_table_and_pba() {
        // 16 vectors: table 0x2000..0x2100, PBA 0x3000..0x3008 in BAR 0.
        let cfg = machines::endpoint(0x1001_1ab0, machines::TYPE_ENDPOINT, 16, None);
        let l = Layout::of(&cfg);
        assert_eq!(l.bars, [0x4000, 0, 0, 0, 0, 0]);
        assert_eq!((l.config_size, l.msix_vectors(), l.intx), (4096, 16, false));
        assert_eq!(l.region_size(CONFIG_REGION), 4096);
    }

    #[test]
    fn large_table_grows_the_bar() {
        // 2048 vectors from 0x2000: 0x8000 bytes, ends at 0xa000.
        let cfg = machines::endpoint(0x1000_1ab0, machines::TYPE_ENDPOINT, 2048, None);
        assert_eq!(Layout::of(&cfg).bars[0], 0x10000);
    }

    #[test]
    fn conventional_function_without_msix() {
        let mut cfg = vec![0u8; 256];
        cfg[0x3d] = 1;
        let l = Layout::of(&cfg);
        assert_eq!((l.config_size, l.bars, l.intx), (256, [0; 6], true));
        assert_eq!(l.irq_count(IRQ_MSIX), 0);
        assert_eq!(pba_len(65), 16);
    }
}
