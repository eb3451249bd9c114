//! The guest's steering-tag firmware: an SSDT whose host-bridge `_DSM` (`firmware-dsm.md`)
//! gives each vCPU's ACPI processor UID its virtual tags.
//!
//! The ASL equivalent of what [`generate`] emits (for `N` vCPUs, bridge `\_SB.PCI0`):
//!
//! ```text
//! External (\_SB.PCI0, DeviceObj)
//! Scope (\_SB.PCI0) {
//!     Name (TPHT, Package () { Package () { UID0, Buffer (8) { .. } }, .. })
//!     Method (_DSM, 4, Serialized) {
//!         If (LAnd (LEqual (Arg0, ToUUID ("E5C937D0-3553-4D7A-9117-EA4D19C3434D")),
//!                   LEqual (Arg1, 7))) {
//!             If (LEqual (Arg2, Zero)) { Return (Buffer (2) { 0x01, 0x80 }) }
//!             If (LEqual (Arg2, 0x0F)) {
//!                 Store (DerefOf (Index (Arg3, One)), Local1)
//!                 Store (Zero, Local0)
//!                 While (LLess (Local0, N)) {
//!                     Store (DerefOf (Index (TPHT, Local0)), Local2)
//!                     If (LEqual (DerefOf (Index (Local2, Zero)), Local1)) {
//!                         Return (DerefOf (Index (Local2, One)))
//!                     }
//!                     Increment (Local0)
//!                 }
//!                 Return (Buffer (8) { 0, 0, 0, 0, 0, 0, 0, 0 })
//!             }
//!         }
//!         Return (Buffer (One) { 0x00 })
//!     }
//! }
//! ```
//!
//! The 64-bit results are precomputed by the VMM and stored as 8-byte buffers, so the method
//! does no arithmetic wider than the loop counter: it runs unchanged under a revision-1 DSDT
//! (32-bit integers), as QEMU's q35 DSDT is.

use crate::aml::{self, ObjectType, TableId};
use crate::vtag::TagSpace;

/// The PCI Firmware `_DSM` UUID (`firmware-dsm.md`).
pub const TPH_DSM_UUID: &str = "E5C937D0-3553-4D7A-9117-EA4D19C3434D";
/// The `_DSM` revision that defines function 0xF.
pub const TPH_DSM_REVISION: u64 = 7;
/// Function index of the steering-tag query.
pub const TPH_DSM_FUNCTION: u64 = 0xf;
/// Name of the UID/result table inside the bridge scope.
pub const TABLE_NAME: &str = "TPHT";

/// What the SSDT describes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsdtSpec {
    /// The host bridge device the `_DSM` goes into (it must exist in the guest's DSDT and must
    /// not have a `_DSM` of its own).
    pub bridge: String,
    /// ACPI processor UID of each vCPU, index = vCPU (QEMU and cloud-hypervisor: the index).
    pub uids: Vec<u32>,
    /// The guest path allows extended TPH (16-bit tags are reported valid).
    pub extended: bool,
}

impl SsdtSpec {
    /// `vcpus` vCPUs with UID = vCPU index under `\_SB.PCI0`.
    pub fn identity(vcpus: u32, extended: bool) -> Self {
        Self {
            bridge: "\\_SB.PCI0".to_string(),
            uids: (0..vcpus).collect(),
            extended,
        }
    }
}

/// A GUID in ACPI's mixed-endian byte order (what `ToUUID` compiles to); `None` if malformed.
///
/// ```
/// let b = tph_vmm::ssdt::uuid_bytes(tph_vmm::ssdt::TPH_DSM_UUID).unwrap();
/// assert_eq!(b[..4], [0xd0, 0x37, 0xc9, 0xe5]);
/// ```
pub fn uuid_bytes(text: &str) -> Option<[u8; 16]> {
    // (hex digits, stored little-endian) of each group.
    const LAYOUT: [(usize, bool); 5] = [(8, true), (4, true), (4, true), (4, false), (12, false)];
    let groups: Vec<&str> = text.split('-').collect();
    if groups.len() != LAYOUT.len() {
        return None;
    }
    let mut out = Vec::with_capacity(16);
    for (g, (want, swap)) in groups.iter().zip(LAYOUT) {
        if g.len() != want {
            return None;
        }
        let mut bytes = (0..want)
            .step_by(2)
            .map(|i| u8::from_str_radix(g.get(i..i + 2)?, 16).ok())
            .collect::<Option<Vec<u8>>>()?;
        if swap {
            bytes.reverse();
        }
        out.extend(bytes);
    }
    out.try_into().ok()
}

/// The 8-byte result buffer each UID maps to.
fn result_buffers(spec: &SsdtSpec, results: &[u64]) -> Vec<Vec<u8>> {
    spec.uids
        .iter()
        .zip(results)
        .map(|(uid, info)| {
            aml::package(&[aml::int(u64::from(*uid)), aml::buffer(&info.to_le_bytes())])
        })
        .collect()
}

/// The `_DSM` method body (see the module documentation).
fn dsm_method(count: usize, uuid: &[u8; 16]) -> Vec<u8> {
    let (arg0, arg1, arg2, arg3) = (aml::arg(0), aml::arg(1), aml::arg(2), aml::arg(3));
    let (l0, l1, l2) = (aml::local(0), aml::local(1), aml::local(2));
    let table = aml::name(TABLE_NAME);
    let found = aml::if_(
        &aml::lequal(&aml::deref_of(&aml::index(&l2, &aml::int(0))), &l1),
        &aml::return_(&aml::deref_of(&aml::index(&l2, &aml::int(1)))),
    );
    let body = [
        aml::store(&aml::deref_of(&aml::index(&table, &l0)), &l2),
        found,
        aml::increment(&l0),
    ]
    .concat();
    let query = [
        aml::store(&aml::deref_of(&aml::index(&arg3, &aml::int(1))), &l1),
        aml::store(&aml::int(0), &l0),
        aml::while_(&aml::lless(&l0, &aml::int(count as u64)), &body),
        aml::return_(&aml::buffer(&[0; 8])),
    ]
    .concat();
    let functions = [
        aml::if_(
            &aml::lequal(&arg2, &aml::int(0)),
            // Function 0: bit 0 (other functions exist) and bit 15 (function 0xF).
            &aml::return_(&aml::buffer(&[0x01, 0x80])),
        ),
        aml::if_(&aml::lequal(&arg2, &aml::int(TPH_DSM_FUNCTION)), &query),
    ]
    .concat();
    let guard = aml::land(
        &aml::lequal(&arg0, &aml::buffer(uuid)),
        &aml::lequal(&arg1, &aml::int(TPH_DSM_REVISION)),
    );
    let terms = [
        aml::if_(&guard, &functions),
        aml::return_(&aml::buffer(&[0])),
    ]
    .concat();
    aml::method("_DSM", 4, true, &terms)
}

/// The SSDT bytes for `spec` in the tag space `space` (its vCPU count must equal the UID
/// count; `None` otherwise).
///
/// ```
/// use tph_vmm::{ssdt, vtag::TagSpace};
/// let spec = ssdt::SsdtSpec::identity(4, false);
/// let t = ssdt::generate(&spec, &TagSpace::new(4).unwrap()).unwrap();
/// assert_eq!(&t[..4], b"SSDT");
/// assert_eq!(t.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
/// ```
pub fn generate(spec: &SsdtSpec, space: &TagSpace) -> Option<Vec<u8>> {
    let results: Vec<u64> = (0..space.vcpus())
        .map(|v| space.st_info(v, spec.extended))
        .collect();
    generate_with_results(spec, &results)
}

/// [`generate`] with the `_DSM` result of each vCPU given (index = vCPU): the host tags of
/// `VirtualTph::ds_firmware_results` under the unsafe DS option. `None` when the counts differ.
pub fn generate_with_results(spec: &SsdtSpec, results: &[u64]) -> Option<Vec<u8>> {
    if results.len() != spec.uids.len() {
        return None;
    }
    let uuid = uuid_bytes(TPH_DSM_UUID)?;
    let entries = result_buffers(spec, results);
    let inside = [
        aml::name_obj(TABLE_NAME, &aml::package(&entries)),
        dsm_method(entries.len(), &uuid),
    ]
    .concat();
    let terms = [
        aml::external(&spec.bridge, ObjectType::Device),
        aml::scope(&spec.bridge, &inside),
    ]
    .concat();
    let id = TableId {
        signature: b"SSDT",
        revision: 2,
        oem_id: b"TPHVMM",
        oem_table_id: b"TPHVTAGS",
        oem_revision: 1,
    };
    Some(aml::table(&id, &terms))
}

/// `EisaId ("PNP0A08")`: a PCI Express host bridge.
pub const PNP0A08: u32 = 0x080a_d041;

/// A minimal DSDT (revision 1: 32-bit integers, as QEMU's q35 DSDT) that only declares the
/// host bridge `\_SB.PCI0` with `_HID` PNP0A08: for tools and tests that evaluate the SSDT
/// without a VMM's own DSDT.
///
/// ```
/// let d = tph_vmm::ssdt::bridge_dsdt();
/// assert_eq!((&d[..4], d[8]), (&b"DSDT"[..], 1));
/// ```
pub fn bridge_dsdt() -> Vec<u8> {
    let hid = aml::name_obj("_HID", &aml::int(u64::from(PNP0A08)));
    // At the top of a table a relative `_SB` is `\_SB` (and one byte shorter, as iasl emits).
    let terms = aml::scope("_SB", &aml::device("PCI0", &hid));
    let id = TableId {
        signature: b"DSDT",
        revision: 1,
        oem_id: b"TPHVMM",
        oem_table_id: b"GUESTDS\0",
        oem_revision: 1,
    };
    aml::table(&id, &terms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_bytes_refuses_malformed_text() {
        assert!(uuid_bytes("E5C937D0-3553-4D7A-9117").is_none());
        assert!(uuid_bytes("E5C937D0-3553-4D7A-9117-EA4D19C3434Z").is_none());
        assert!(uuid_bytes("E5C937D0-3553-4D7A-9117-EA4D19C3434D-00").is_none());
    }

    #[test]
    fn generate_refuses_uid_count_mismatch() {
        let spec = SsdtSpec::identity(3, false);
        assert!(generate(&spec, &TagSpace::new(4).unwrap()).is_none());
    }
}
