//! Register semantics of what the guest writes, from `tph-regs`' one set of field tables (the
//! same tables the emulated hardware in `tph-kernel` uses): the TPH Requester capability, its
//! ST table entries and the MSI-X Vector Control dword (`pci-tph-core.md` section 1). Write
//! masks are derived from the tables, never written as literals.

pub use tph_regs::fields::{
    tph_table_entry, Attr, Field, MSIX_ENTRY_PLAIN, MSIX_ENTRY_WITH_ST, TPH,
};

use tph_regs::msix::MSIX_VECTOR_CTRL;
use tph_regs::tph::TPH_TABLE;

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
        .fold(0, |m, x| m | x.mask() as u32)
}

/// The writable bits of a 16-bit ST entry (0x00ff, or 0xffff with extended TPH).
pub fn entry_rw_mask(ext: bool) -> u16 {
    let [lower, upper] = tph_table_entry(0, ext);
    mask(&[lower, upper], TPH_TABLE as u16, Attr::Rw) as u16
}

/// The ST bits (31:16) of Vector Control that are writable, shifted down (0 when the table is
/// not in MSI-X).
pub fn vector_control_st_mask(st_in_msix: bool) -> u16 {
    let table = if st_in_msix {
        MSIX_ENTRY_WITH_ST
    } else {
        MSIX_ENTRY_PLAIN
    };
    (mask(table, MSIX_VECTOR_CTRL as u16, Attr::Rw) >> 16) as u16
}

/// The mask bit of Vector Control (the half of a trapped Vector Control write the VMM keeps).
pub fn vector_control_mask_bit() -> u32 {
    mask(MSIX_ENTRY_WITH_ST, MSIX_VECTOR_CTRL as u16, Attr::Rw) & 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_and_vector_control_masks_follow_the_tables() {
        assert_eq!(entry_rw_mask(false), 0x00ff);
        assert_eq!(entry_rw_mask(true), 0xffff);
        assert_eq!(vector_control_st_mask(true), 0xffff);
        assert_eq!(vector_control_st_mask(false), 0);
        assert_eq!(vector_control_mask_bit(), 1);
    }
}
