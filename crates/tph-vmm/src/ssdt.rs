//! The guest's steering-tag firmware: a host-bridge `_DSM` (`firmware-dsm.md`) that gives
//! each vCPU's ACPI processor UID its virtual tags, in two forms:
//!
//! - [`generate`]: a standalone SSDT, for a host bridge that has no `_DSM` of its own (QEMU's
//!   q35 `PCI0`): load it with the guest's other tables (`-acpitable`);
//! - [`merged_dsm`] (terms for the bridge's `Device`) and [`generate_merged`] (the same as an
//!   SSDT): for a bridge that already has a `_DSM` with the same UUID (cloud-hypervisor's
//!   `PC00`, QEMU's arm64 and RISC-V host bridges). The VMM renames its own method to
//!   [`ORIGINAL_DSM`] (same body, same arguments); the new `_DSM` answers function 0xF, adds
//!   bits 0 and 15 to what the original's function 0 answers at revision 7, and hands every
//!   other call to the original unchanged.
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
//! The merged `_DSM` has the same function 0xF; the rest reads:
//!
//! ```text
//!             If (LEqual (Arg2, Zero)) {
//!                 Store (DSMO (Arg0, Arg1, Arg2, Arg3), Local3)
//!                 If (LEqual (ObjectType (Local3), 3)) {          // a Buffer bitmap
//!                     While (LLess (SizeOf (Local3), 2)) {
//!                         Concatenate (Local3, Buffer (One) { 0 }, Local3)
//!                     }
//!                     Store (Or (DerefOf (Index (Local3, Zero)), One), Index (Local3, Zero))
//!                     Store (Or (DerefOf (Index (Local3, One)), 0x80), Index (Local3, One))
//!                 }
//!                 If (LEqual (ObjectType (Local3), One)) {        // an Integer bitmap
//!                     Store (Or (Local3, 0x8001), Local3)
//!                 }
//!                 Return (Local3)
//!             }
//!         }
//!         Return (DSMO (Arg0, Arg1, Arg2, Arg3))
//! ```
//!
//! The 64-bit results are precomputed by the VMM and stored as 8-byte buffers, so the method
//! does no arithmetic wider than the loop counter: it runs unchanged under a revision-1 DSDT
//! (32-bit integers), as QEMU's q35 DSDT is. The UUID, revision, function and result layout
//! are `tph-acpi`'s ([`tph_acpi::dsm`], [`tph_acpi::StInfo`]), the same the host side reads.

use tph_acpi::dsm::{uuid_bytes, PCI_DSM_UUID, TPH_DSM_FUNCTION, TPH_DSM_REVISION};
use tph_acpi::StInfo;

use crate::aml::{self, ObjectType, TableId};
use crate::vtag::TagSpace;

/// Name of the UID/result table inside the bridge scope.
pub const TABLE_NAME: &str = "TPHT";

/// The name a VMM gives its own host-bridge `_DSM` when it merges function 0xF into it
/// ([`merged_dsm`]): the method keeps its body and its four arguments.
pub const ORIGINAL_DSM: &str = "DSMO";

/// What the firmware describes.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SsdtSpec {
    /// The host bridge device the `_DSM` goes into (it must exist in the guest's DSDT; for
    /// [`generate`] it must not have a `_DSM` of its own, for [`generate_merged`] its own is
    /// named [`ORIGINAL_DSM`]).
    pub bridge: String,
    /// ACPI processor UID of each vCPU, index = vCPU (QEMU and cloud-hypervisor: the index).
    pub uids: Vec<u32>,
    /// The guest path allows extended TPH (16-bit tags are reported valid).
    pub extended: bool,
}

impl SsdtSpec {
    /// The `_DSM` for host bridge `bridge` (an ACPI path such as `\_SB.PC00`), vCPU `n` with
    /// processor UID `uids[n]`, 16-bit tags reported valid when `extended`.
    ///
    /// ```
    /// use tph_vmm::ssdt::SsdtSpec;
    /// let spec = SsdtSpec::new("\\_SB.PC00", vec![0, 2], true);
    /// assert_eq!((spec.bridge.as_str(), spec.uids.len(), spec.extended), ("\\_SB.PC00", 2, true));
    /// ```
    pub fn new(bridge: impl Into<String>, uids: Vec<u32>, extended: bool) -> Self {
        Self {
            bridge: bridge.into(),
            uids,
            extended,
        }
    }

    /// The same under another host bridge.
    ///
    /// ```
    /// use tph_vmm::ssdt::SsdtSpec;
    /// let spec = SsdtSpec::identity(2, false).with_bridge("\\_SB.PC00");
    /// assert_eq!(spec.bridge, "\\_SB.PC00");
    /// ```
    #[must_use]
    pub fn with_bridge(mut self, bridge: impl Into<String>) -> Self {
        self.bridge = bridge.into();
        self
    }

    /// `vcpus` vCPUs with UID = vCPU index under `\_SB.PCI0`.
    pub fn identity(vcpus: u32, extended: bool) -> Self {
        Self {
            bridge: "\\_SB.PCI0".to_string(),
            uids: (0..vcpus).collect(),
            extended,
        }
    }
}

/// The `_DSM` result of every vCPU (index = vCPU) in the tag space `space`: its virtual tags.
/// `None` when the vCPU count differs from the UID count.
///
/// ```
/// use tph_vmm::{ssdt, vtag::TagSpace};
/// let r = ssdt::virtual_results(&ssdt::SsdtSpec::identity(2, false), &TagSpace::new(2).unwrap());
/// assert_eq!(r.unwrap()[1], TagSpace::new(2).unwrap().st_info(1, false));
/// ```
pub fn virtual_results(spec: &SsdtSpec, space: &TagSpace) -> Option<Vec<StInfo>> {
    let n = u32::try_from(spec.uids.len()).ok()?;
    (n == space.vcpus()).then(|| (0..n).map(|v| space.st_info(v, spec.extended)).collect())
}

/// The `Package { UID, Buffer (8) }` each UID maps to.
fn result_entries(spec: &SsdtSpec, results: &[StInfo]) -> Vec<Vec<u8>> {
    spec.uids
        .iter()
        .zip(results)
        .map(|(uid, info)| {
            aml::package(&[aml::int(u64::from(*uid)), aml::buffer(&info.to_bytes())])
        })
        .collect()
}

/// The condition both `_DSM`s start with: the PCI firmware UUID and revision 7.
fn uuid_and_revision() -> Option<Vec<u8>> {
    let uuid = uuid_bytes(PCI_DSM_UUID)?;
    Some(aml::land(
        &aml::lequal(&aml::arg(0), &aml::buffer(&uuid)),
        &aml::lequal(&aml::arg(1), &aml::int(TPH_DSM_REVISION)),
    ))
}

/// `If (LEqual (Arg2, 0x0F)) { .. }`: the UID lookup in the table of `count` entries.
fn function_f(count: usize) -> Vec<u8> {
    let (arg3, l0, l1, l2) = (aml::arg(3), aml::local(0), aml::local(1), aml::local(2));
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
    aml::if_(
        &aml::lequal(&aml::arg(2), &aml::int(TPH_DSM_FUNCTION)),
        &query,
    )
}

/// Function 0's bitmap bits this `_DSM` adds: bit 0 (other functions exist) and bit 0xF.
const FUNCTION_BITS: u64 = 1 | 1 << TPH_DSM_FUNCTION;

/// The standalone `_DSM` method (see the module documentation).
fn dsm_method(count: usize) -> Option<Vec<u8>> {
    let bits = FUNCTION_BITS.to_le_bytes();
    let functions = [
        aml::if_(
            &aml::lequal(&aml::arg(2), &aml::int(0)),
            &aml::return_(&aml::buffer(&bits[..2])),
        ),
        function_f(count),
    ]
    .concat();
    let terms = [
        aml::if_(&uuid_and_revision()?, &functions),
        aml::return_(&aml::buffer(&[0])),
    ]
    .concat();
    Some(aml::method("_DSM", 4, true, &terms))
}

/// The merged `_DSM` method (see the module documentation): function 0xF here, every other
/// call to [`ORIGINAL_DSM`], function 0 of revision 7 with bits 0 and 15 added.
fn merged_dsm_method(count: usize) -> Option<Vec<u8>> {
    let args: Vec<Vec<u8>> = (0..4).map(aml::arg).collect();
    let original = aml::call(ORIGINAL_DSM, &args);
    let l3 = aml::local(3);
    let bits = FUNCTION_BITS.to_le_bytes();
    let set_byte = |i: u64, bit: u8| {
        aml::store(
            &aml::or(
                &aml::deref_of(&aml::index(&l3, &aml::int(i))),
                &aml::int(bit.into()),
            ),
            &aml::index(&l3, &aml::int(i)),
        )
    };
    let in_buffer = [
        aml::while_(
            &aml::lless(&aml::size_of(&l3), &aml::int(2)),
            &aml::concatenate(&l3, &aml::buffer(&[0]), &l3),
        ),
        set_byte(0, bits[0]),
        set_byte(1, bits[1]),
    ]
    .concat();
    let is = |ty: u64| aml::lequal(&aml::object_type(&l3), &aml::int(ty));
    const INTEGER: u64 = 1;
    const BUFFER: u64 = 3;
    let function_0 = [
        aml::store(&original, &l3),
        aml::if_(&is(BUFFER), &in_buffer),
        aml::if_(
            &is(INTEGER),
            &aml::store(&aml::or(&l3, &aml::int(FUNCTION_BITS)), &l3),
        ),
        aml::return_(&l3),
    ]
    .concat();
    let functions = [
        function_f(count),
        aml::if_(&aml::lequal(&aml::arg(2), &aml::int(0)), &function_0),
    ]
    .concat();
    let terms = [
        aml::if_(&uuid_and_revision()?, &functions),
        aml::return_(&original),
    ]
    .concat();
    Some(aml::method("_DSM", 4, true, &terms))
}

/// The SSDT bytes for `spec` in the tag space `space` (its vCPU count must equal the UID
/// count; `None` otherwise): a standalone `_DSM` for a bridge that has none.
///
/// ```
/// use tph_vmm::{ssdt, vtag::TagSpace};
/// let spec = ssdt::SsdtSpec::identity(4, false);
/// let t = ssdt::generate(&spec, &TagSpace::new(4).unwrap()).unwrap();
/// assert_eq!(&t[..4], b"SSDT");
/// assert_eq!(t.iter().fold(0u8, |s, b| s.wrapping_add(*b)), 0);
/// ```
pub fn generate(spec: &SsdtSpec, space: &TagSpace) -> Option<Vec<u8>> {
    generate_with_results(spec, &virtual_results(spec, space)?)
}

/// [`generate`] with the `_DSM` result of each vCPU given (index = vCPU): the host tags of
/// `VirtualTph::ds_firmware_results` under the unsafe DS option. `None` when the counts differ.
pub fn generate_with_results(spec: &SsdtSpec, results: &[StInfo]) -> Option<Vec<u8>> {
    if results.len() != spec.uids.len() {
        return None;
    }
    let entries = result_entries(spec, results);
    let inside = [
        aml::name_obj(TABLE_NAME, &aml::package(&entries)),
        dsm_method(entries.len())?,
    ]
    .concat();
    let terms = [
        aml::external(&spec.bridge, ObjectType::Device),
        aml::scope(&spec.bridge, &inside),
    ]
    .concat();
    Some(aml::table(&ssdt_id(), &terms))
}

/// The terms a VMM puts inside its host bridge's `Device` (next to its own `_DSM`, renamed
/// [`ORIGINAL_DSM`]) to merge function 0xF into it: the result table and the new `_DSM`.
/// `results` as for [`generate_with_results`] ([`virtual_results`], or the host tags under the
/// unsafe DS option); `None` when the counts differ.
///
/// ```
/// use tph_vmm::{ssdt, vtag::TagSpace};
/// let spec = ssdt::SsdtSpec::identity(2, false);
/// let results = ssdt::virtual_results(&spec, &TagSpace::new(2).unwrap()).unwrap();
/// let terms = ssdt::merged_dsm(&spec, &results).unwrap();
/// // A Name (TPHT) and a Method (_DSM) calling DSMO: bytes for the VMM's Device body.
/// assert_eq!(&terms[..5], b"\x08TPHT");
/// assert!(terms.windows(4).any(|w| w == b"DSMO"));
/// ```
pub fn merged_dsm(spec: &SsdtSpec, results: &[StInfo]) -> Option<Vec<u8>> {
    if results.len() != spec.uids.len() {
        return None;
    }
    let entries = result_entries(spec, results);
    Some(
        [
            aml::name_obj(TABLE_NAME, &aml::package(&entries)),
            merged_dsm_method(entries.len())?,
        ]
        .concat(),
    )
}

/// [`merged_dsm`] as an SSDT: for a VMM whose DSDT names its bridge's own method
/// [`ORIGINAL_DSM`] and that adds tables rather than editing its bridge's `Device`.
pub fn generate_merged(spec: &SsdtSpec, results: &[StInfo]) -> Option<Vec<u8>> {
    let inside = merged_dsm(spec, results)?;
    let original = format!("{}.{ORIGINAL_DSM}", spec.bridge);
    let terms = [
        aml::external(&spec.bridge, ObjectType::Device),
        aml::external(&original, ObjectType::Method(4)),
        aml::scope(&spec.bridge, &inside),
    ]
    .concat();
    Some(aml::table(&ssdt_id(), &terms))
}

fn ssdt_id() -> TableId<'static> {
    TableId {
        signature: b"SSDT",
        revision: 2,
        oem_id: b"TPHVMM",
        oem_table_id: b"TPHVTAGS",
        oem_revision: 1,
    }
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
    fn generate_refuses_uid_count_mismatch() {
        let spec = SsdtSpec::identity(3, false);
        assert!(generate(&spec, &TagSpace::new(4).unwrap()).is_none());
    }
}
