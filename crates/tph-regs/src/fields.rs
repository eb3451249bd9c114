//! Register semantics as data: every modelled register field declared once as
//! (offset, bit range, attribute, reset value). Write masks and reset images are derived from
//! these tables (the emulated hardware's configuration space in `tph-kernel`, the VMM layer's
//! virtual capability in `tph-vmm`), never written as literals. One definition for both.

/// Software-visible behaviour of a register field.
///
/// Deliberately exhaustive (docs/decisions.md): whoever models registers must give every
/// attribute its semantics, so a new one (a sticky `RWS`, say) is meant to break their match
/// rather than fall into a wildcard arm that writes the wrong bits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attr {
    /// Read-only.
    Ro,
    /// Read-write.
    Rw,
    /// Read, write 1 to clear.
    Rw1c,
    /// Reserved, preserve: reads whatever is there, writes leave it unchanged.
    RsvdP,
    /// Hardware-initialised: read-only to software after reset.
    HwInit,
}

/// One field of one register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Field {
    /// Name, as in the PCIe specification.
    pub name: &'static str,
    /// Byte offset of the register from the start of its structure.
    pub offset: u16,
    /// Lowest bit of the field inside the register.
    pub lsb: u8,
    /// Width in bits (1..=32).
    pub bits: u8,
    /// Attribute.
    pub attr: Attr,
    /// Value after a conventional or function-level reset (only meaningful for RW / RW1C; the
    /// other attributes keep the value the structure was built with).
    pub reset: u32,
}

impl Field {
    /// Field `name` at bits `lsb..lsb + bits` of the register at `offset`, with attribute
    /// `attr`, reset value 0 (what a user declaring registers of its own needs, e.g. for the
    /// kernel model's `ConfigSpace::declare`).
    ///
    /// ```
    /// use tph_regs::fields::{Attr, Field};
    /// let f = Field::new("ST Mode Select", 0x8, 0, 3, Attr::Rw);
    /// assert_eq!((f.offset, f.lsb, f.bits, f.attr, f.reset), (0x8, 0, 3, Attr::Rw, 0));
    /// ```
    pub const fn new(name: &'static str, offset: u16, lsb: u8, bits: u8, attr: Attr) -> Self {
        Self {
            name,
            offset,
            lsb,
            bits,
            attr,
            reset: 0,
        }
    }

    /// The same field with the value `reset` after a conventional or function-level reset.
    #[must_use]
    pub const fn with_reset(mut self, reset: u32) -> Self {
        self.reset = reset;
        self
    }
}

const fn f(name: &'static str, offset: u16, lsb: u8, bits: u8, attr: Attr) -> Field {
    Field {
        name,
        offset,
        lsb,
        bits,
        attr,
        reset: 0,
    }
}

const fn fr(name: &'static str, offset: u16, lsb: u8, bits: u8, attr: Attr, reset: u32) -> Field {
    Field {
        name,
        offset,
        lsb,
        bits,
        attr,
        reset,
    }
}

impl Field {
    /// The field's bits as a mask over its register's 32-bit little-endian value.
    pub fn mask(&self) -> u64 {
        ((1u64 << self.bits) - 1) << self.lsb
    }
}

use Attr::{HwInit, Ro, RsvdP, Rw, Rw1c};

/// Vector Control's offset in an MSI-X entry, TPH Capability, Control and the first ST entry
/// in the TPH capability (`tph-regs`' one definition of each).
const VC: u16 = crate::msix::MSIX_VECTOR_CTRL as u16;
const T_CAP: u16 = crate::tph::TPH_CAP as u16;
const T_CTRL: u16 = crate::tph::TPH_CTRL as u16;
const T_TABLE: u16 = crate::tph::TPH_TABLE as u16;

/// Type 0 configuration header (offsets from 0). BAR sizing is not modelled: BARs are HwInit.
pub const HEADER: &[Field] = &[
    f("Vendor ID", 0x00, 0, 16, Ro),
    f("Device ID", 0x00, 16, 16, Ro),
    f("I/O Space Enable", 0x04, 0, 1, Rw),
    f("Memory Space Enable", 0x04, 1, 1, Rw),
    f("Bus Master Enable", 0x04, 2, 1, Rw),
    f("Special Cycle / MWI / VGA Snoop", 0x04, 3, 3, Ro),
    f("Parity Error Response", 0x04, 6, 1, Rw),
    f("IDSEL Stepping", 0x04, 7, 1, Ro),
    f("SERR# Enable", 0x04, 8, 1, Rw),
    f("Fast Back-to-Back Enable", 0x04, 9, 1, Ro),
    f("Interrupt Disable", 0x04, 10, 1, Rw),
    f("Command reserved", 0x04, 11, 5, RsvdP),
    f("Status reserved", 0x04, 16, 3, RsvdP),
    f("Interrupt Status", 0x04, 19, 1, Ro),
    f("Capabilities List", 0x04, 20, 1, Ro),
    f("66 MHz / UDF / Fast B2B", 0x04, 21, 3, Ro),
    f("Master Data Parity Error", 0x04, 24, 1, Rw1c),
    f("DEVSEL Timing", 0x04, 25, 2, Ro),
    f("Signaled Target Abort", 0x04, 27, 1, Rw1c),
    f("Received Target Abort", 0x04, 28, 1, Rw1c),
    f("Received Master Abort", 0x04, 29, 1, Rw1c),
    f("Signaled System Error", 0x04, 30, 1, Rw1c),
    f("Detected Parity Error", 0x04, 31, 1, Rw1c),
    f("Revision ID / Class Code", 0x08, 0, 32, Ro),
    f("Cache Line Size", 0x0c, 0, 8, Rw),
    f("Latency Timer / Header Type / BIST", 0x0c, 8, 24, Ro),
    f("BAR0", 0x10, 0, 32, HwInit),
    f("BAR1", 0x14, 0, 32, HwInit),
    f("BAR2", 0x18, 0, 32, HwInit),
    f("BAR3", 0x1c, 0, 32, HwInit),
    f("BAR4", 0x20, 0, 32, HwInit),
    f("BAR5", 0x24, 0, 32, HwInit),
    f("Cardbus CIS Pointer", 0x28, 0, 32, Ro),
    f("Subsystem IDs", 0x2c, 0, 32, Ro),
    f("Expansion ROM Base", 0x30, 0, 32, HwInit),
    f("Capabilities Pointer", 0x34, 0, 8, Ro),
    f("Header reserved", 0x34, 8, 24, RsvdP),
    f("Header reserved 2", 0x38, 0, 32, RsvdP),
    f("Interrupt Line", 0x3c, 0, 8, Rw),
    f("Interrupt Pin / Min_Gnt / Max_Lat", 0x3c, 8, 24, Ro),
];

/// PCI Express capability (offsets from the capability start). Link and slot registers are
/// modelled coarsely (read-only) since TPH never touches them.
pub const EXPRESS: &[Field] = &[
    f("Capability Header", 0x00, 0, 16, Ro),
    f("PCI Express Capabilities", 0x00, 16, 16, Ro),
    f("Device Capabilities", 0x04, 0, 32, Ro),
    f("Correctable Error Reporting Enable", 0x08, 0, 1, Rw),
    f("Non-Fatal Error Reporting Enable", 0x08, 1, 1, Rw),
    f("Fatal Error Reporting Enable", 0x08, 2, 1, Rw),
    f("Unsupported Request Reporting Enable", 0x08, 3, 1, Rw),
    fr("Enable Relaxed Ordering", 0x08, 4, 1, Rw, 1),
    f("Max_Payload_Size", 0x08, 5, 3, Rw),
    f("Extended Tag Field Enable", 0x08, 8, 1, Rw),
    f("Phantom Functions Enable", 0x08, 9, 1, Rw),
    f("Aux Power PM Enable", 0x08, 10, 1, Rw),
    fr("Enable No Snoop", 0x08, 11, 1, Rw, 1),
    fr("Max_Read_Request_Size", 0x08, 12, 3, Rw, 2),
    f("Initiate Function Level Reset", 0x08, 15, 1, Rw),
    f("Correctable Error Detected", 0x08, 16, 1, Rw1c),
    f("Non-Fatal Error Detected", 0x08, 17, 1, Rw1c),
    f("Fatal Error Detected", 0x08, 18, 1, Rw1c),
    f("Unsupported Request Detected", 0x08, 19, 1, Rw1c),
    f("AUX Power / Transactions Pending", 0x08, 20, 2, Ro),
    f("Device Status reserved", 0x08, 22, 10, RsvdP),
    f("Link Capabilities", 0x0c, 0, 32, Ro),
    f("Link Control / Status", 0x10, 0, 32, Ro),
    f("Slot Capabilities", 0x14, 0, 32, Ro),
    f("Slot Control / Status", 0x18, 0, 32, Ro),
    f("Root Control / Capabilities", 0x1c, 0, 32, Ro),
    f("Root Status", 0x20, 0, 32, Ro),
    f("Device Capabilities 2", 0x24, 0, 32, HwInit),
    f("Device Control 2 (low)", 0x28, 0, 11, Rw),
    f("Device Control 2 (high)", 0x28, 11, 5, Ro),
    f("Device Status 2", 0x28, 16, 16, RsvdP),
    f("Link Capabilities 2", 0x2c, 0, 32, Ro),
    f("Link Control 2 / Status 2", 0x30, 0, 32, Ro),
];

/// MSI-X capability (offsets from the capability start).
pub const MSIX: &[Field] = &[
    f("Capability Header", 0x00, 0, 16, Ro),
    f("Table Size", 0x00, 16, 11, Ro),
    f("Message Control reserved", 0x00, 27, 3, RsvdP),
    f("Function Mask", 0x00, 30, 1, Rw),
    f("MSI-X Enable", 0x00, 31, 1, Rw),
    f("Table Offset / BIR", 0x04, 0, 32, Ro),
    f("PBA Offset / BIR", 0x08, 0, 32, Ro),
];

/// PCI Power Management capability (offsets from the capability start).
pub const PM: &[Field] = &[
    f("Capability Header", 0x00, 0, 16, Ro),
    f("Power Management Capabilities", 0x00, 16, 16, Ro),
    f("PowerState", 0x04, 0, 2, Rw),
    f("PMCSR reserved", 0x04, 2, 1, RsvdP),
    f("No_Soft_Reset", 0x04, 3, 1, Ro),
    f("PMCSR reserved 2", 0x04, 4, 4, RsvdP),
    f("PME_En", 0x04, 8, 1, Rw),
    f("Data_Select / Data_Scale", 0x04, 9, 6, Ro),
    f("PME_Status", 0x04, 15, 1, Rw1c),
    f("PMCSR_BSE / Data", 0x04, 16, 16, Ro),
];

/// One 16-byte MSI-X table entry when the steering table lives in the MSI-X table.
pub const MSIX_ENTRY_WITH_ST: &[Field] = &[
    f("Message Address alignment", 0x0, 0, 2, Ro),
    f("Message Address", 0x0, 2, 30, Rw),
    f("Message Upper Address", 0x4, 0, 32, Rw),
    f("Message Data", 0x8, 0, 32, Rw),
    fr("Mask Bit", VC, 0, 1, Rw, 1),
    f("Vector Control reserved", VC, 1, 15, RsvdP),
    f("ST Lower", VC, 16, 8, Rw),
    f("ST Upper", VC, 24, 8, Rw),
];

/// One MSI-X table entry when the steering table does not live there (bits 31:16 reserved).
pub const MSIX_ENTRY_PLAIN: &[Field] = &[
    f("Message Address alignment", 0x0, 0, 2, Ro),
    f("Message Address", 0x0, 2, 30, Rw),
    f("Message Upper Address", 0x4, 0, 32, Rw),
    f("Message Data", 0x8, 0, 32, Rw),
    fr("Mask Bit", VC, 0, 1, Rw, 1),
    f("Vector Control reserved", VC, 1, 31, RsvdP),
];

/// TPH Requester capability header, Capability and Control registers.
pub const TPH: &[Field] = &[
    f("Extended Capability Header", 0x0, 0, 32, Ro),
    f("TPH Requester Capability", T_CAP, 0, 32, HwInit),
    f("ST Mode Select", T_CTRL, 0, 3, Rw),
    f("Control reserved (7:3)", T_CTRL, 3, 5, RsvdP),
    f("TPH Requester Enable", T_CTRL, 8, 2, Rw),
    f("Control reserved (31:10)", T_CTRL, 10, 22, RsvdP),
];

/// Fields of ST table entry `index` (16 bits at 0xC + 2*index; two entries share a dword).
/// The upper byte is writable only with extended TPH.
pub fn tph_table_entry(index: u16, ext: bool) -> [Field; 2] {
    let upper = if ext { Rw } else { RsvdP };
    let offset = T_TABLE + 4 * (index / 2);
    let lsb = 16 * (index % 2) as u8;
    [
        f("ST Lower", offset, lsb, 8, Rw),
        f("ST Upper", offset, lsb + 8, 8, upper),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masks(fields: &[Field], offset: u16, attr: Attr) -> u32 {
        fields
            .iter()
            .filter(|x| x.offset == offset && x.attr == attr)
            .fold(0u32, |m, x| m | x.mask() as u32)
    }

    fn assert_tiles(fields: &[Field]) {
        let mut offsets: Vec<u16> = fields.iter().map(|x| x.offset).collect();
        offsets.dedup();
        for off in offsets {
            let mut seen = 0u64;
            for x in fields.iter().filter(|x| x.offset == off) {
                assert_eq!(seen & x.mask(), 0, "{} overlaps at {off:#x}", x.name);
                seen |= x.mask();
            }
            assert_eq!(seen, 0xffff_ffff, "register {off:#x} not fully declared");
        }
    }

    #[test]
    fn tables_declare_every_bit_exactly_once() {
        for t in [
            HEADER,
            EXPRESS,
            PM,
            MSIX,
            MSIX_ENTRY_WITH_ST,
            MSIX_ENTRY_PLAIN,
            TPH,
        ] {
            assert_tiles(t);
        }
        for ext in [true, false] {
            let pair = [tph_table_entry(6, ext), tph_table_entry(7, ext)].concat();
            assert_tiles(&pair);
        }
    }

    #[test]
    fn tph_control_rw_bits_match_pci_tph_core_section_1() {
        // Control: ST Mode Select 2:0 and TPH Requester Enable 9:8 are the only RW bits.
        assert_eq!(masks(TPH, 0x8, Rw), 0x0000_0307);
        // Capability register is never writable.
        assert_eq!(masks(TPH, 0x4, Rw), 0);
    }

    #[test]
    fn msix_rw_bits_match_pcie_spec() {
        // Message Control: Function Mask (bit 14) and MSI-X Enable (bit 15) of the upper word.
        assert_eq!(masks(MSIX, 0x0, Rw), 0xc000_0000);
        // Vector Control: mask bit 0; ST in 31:16 only when the table holds steering tags.
        assert_eq!(masks(MSIX_ENTRY_WITH_ST, 0xc, Rw), 0xffff_0001);
        assert_eq!(masks(MSIX_ENTRY_PLAIN, 0xc, Rw), 0x0000_0001);
    }

    #[test]
    fn st_table_upper_byte_writable_only_with_extended_tph() {
        let ext = [tph_table_entry(0, true), tph_table_entry(1, true)].concat();
        let plain = [tph_table_entry(0, false), tph_table_entry(1, false)].concat();
        assert_eq!(masks(&ext, 0xc, Rw), 0xffff_ffff);
        assert_eq!(masks(&plain, 0xc, Rw), 0x00ff_00ff);
    }

    #[test]
    fn express_devcap2_is_not_writable() {
        // DevCap2 holds the TPH Completer Supported field (13:12) the core negotiates against.
        assert_eq!(masks(EXPRESS, 0x24, Rw), 0);
        assert_eq!(masks(EXPRESS, 0x24, HwInit), 0xffff_ffff);
    }
}
