//! Register semantics of what the guest writes, declared once as data: the TPH Requester
//! capability, its ST table entries and the MSI-X Vector Control dword (`pci-tph-core.md`
//! section 1). Write masks are derived from these tables, never written as literals.
//!
//! The emulated hardware (`tph-kernel`) declares the same registers for the device model; this
//! crate may not depend on the model, so it declares them again and a test
//! (`tests/fields_match_model.rs`) checks both declarations give the same masks.

/// How a field answers writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attr {
    /// Read-only.
    Ro,
    /// Hardware-initialised, read-only to software.
    HwInit,
    /// Read-write.
    Rw,
    /// Reserved, preserved: reads 0 here, writes ignored.
    RsvdP,
}

/// One field of a 32-bit register at `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    /// Name as the spec writes it.
    pub name: &'static str,
    /// Byte offset of the register (from the capability start, or the MSI-X entry start).
    pub offset: u16,
    /// Lowest bit.
    pub lsb: u8,
    /// Width in bits.
    pub bits: u8,
    /// Write behaviour.
    pub attr: Attr,
}

impl Field {
    /// The field's bits within its register.
    pub fn mask(&self) -> u32 {
        let ones = if self.bits >= 32 {
            u32::MAX
        } else {
            (1u32 << self.bits) - 1
        };
        ones << self.lsb
    }
}

const fn f(name: &'static str, offset: u16, lsb: u8, bits: u8, attr: Attr) -> Field {
    Field {
        name,
        offset,
        lsb,
        bits,
        attr,
    }
}

use Attr::{HwInit, Ro, RsvdP, Rw};

/// TPH Requester capability header, Capability and Control registers.
pub const TPH: &[Field] = &[
    f("Extended Capability Header", 0x0, 0, 32, Ro),
    f("TPH Requester Capability", 0x4, 0, 32, HwInit),
    f("ST Mode Select", 0x8, 0, 3, Rw),
    f("Control reserved (7:3)", 0x8, 3, 5, RsvdP),
    f("TPH Requester Enable", 0x8, 8, 2, Rw),
    f("Control reserved (31:10)", 0x8, 10, 22, RsvdP),
];

/// Fields of ST table entry `index` (16 bits at 0xC + 2*index; two entries share a dword).
/// ST Upper is writable only when the capability offers extended TPH.
pub fn table_entry(index: u16, ext: bool) -> [Field; 2] {
    let upper = if ext { Rw } else { RsvdP };
    let offset = 0xc + 4 * (index / 2);
    let lsb = 16 * (index % 2) as u8;
    [
        f("ST Lower", offset, lsb, 8, Rw),
        f("ST Upper", offset, lsb + 8, 8, upper),
    ]
}

/// The Vector Control dword (+0xC) of an MSI-X entry when the steering table lives in the
/// MSI-X table.
pub const VECTOR_CONTROL_WITH_ST: &[Field] = &[
    f("Mask Bit", 0xc, 0, 1, Rw),
    f("Vector Control reserved", 0xc, 1, 15, RsvdP),
    f("ST Lower", 0xc, 16, 8, Rw),
    f("ST Upper", 0xc, 24, 8, Rw),
];

/// The Vector Control dword when the steering table is elsewhere (bits 31:1 reserved).
pub const VECTOR_CONTROL_PLAIN: &[Field] = &[
    f("Mask Bit", 0xc, 0, 1, Rw),
    f("Vector Control reserved", 0xc, 1, 31, RsvdP),
];

/// The bits of the register at `offset` that `fields` declare with `attr`.
///
/// ```
/// use tph_vmm::fields::{mask, Attr, TPH};
/// assert_eq!(mask(TPH, 0x8, Attr::Rw), 0x307);
/// ```
pub fn mask(fields: &[Field], offset: u16, attr: Attr) -> u32 {
    fields
        .iter()
        .filter(|x| x.offset == offset && x.attr == attr)
        .fold(0, |m, x| m | x.mask())
}

/// The writable bits of a 16-bit ST entry (0x00ff, or 0xffff with extended TPH).
pub fn entry_rw_mask(ext: bool) -> u16 {
    let [lower, upper] = table_entry(0, ext);
    mask(&[lower, upper], 0xc, Rw) as u16
}

/// The ST bits (31:16) of Vector Control that are writable, shifted down (0 when the table is
/// not in MSI-X).
pub fn vector_control_st_mask(st_in_msix: bool) -> u16 {
    let table = if st_in_msix {
        VECTOR_CONTROL_WITH_ST
    } else {
        VECTOR_CONTROL_PLAIN
    };
    (mask(table, 0xc, Rw) >> 16) as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiles(fields: &[Field], offset: u16) -> bool {
        let mut seen = 0u32;
        for x in fields.iter().filter(|x| x.offset == offset) {
            if seen & x.mask() != 0 {
                return false;
            }
            seen |= x.mask();
        }
        seen == u32::MAX
    }

    #[test]
    fn tables_declare_every_bit_exactly_once() {
        for off in [0x0, 0x4, 0x8] {
            assert!(tiles(TPH, off), "TPH register {off:#x}");
        }
        assert!(tiles(VECTOR_CONTROL_WITH_ST, 0xc));
        assert!(tiles(VECTOR_CONTROL_PLAIN, 0xc));
        for ext in [false, true] {
            let pair = [table_entry(0, ext), table_entry(1, ext)].concat();
            assert!(tiles(&pair, 0xc));
        }
    }

    #[test]
    fn entry_and_vector_control_masks_follow_the_tables() {
        assert_eq!(entry_rw_mask(false), 0x00ff);
        assert_eq!(entry_rw_mask(true), 0xffff);
        assert_eq!(vector_control_st_mask(true), 0xffff);
        assert_eq!(vector_control_st_mask(false), 0);
    }
}
