//! The property checker: what must hold after every guest or VMM action.

use tph_kernel::KernelAbi;
use tph_regs::tph::StLocation;
use tph_vmm::vtag::{Decoded, TagWidth};

use super::{host_tag, Rig, Vmm, GUEST_ENTRIES};
use tph_vmm::vtag::MemType;

fn width_of(control: u32) -> Option<TagWidth> {
    match (control >> 8) & 3 {
        1 => Some(TagWidth::Bits8),
        3 => Some(TagWidth::Bits16),
        _ => None,
    }
}

fn allowed(cpus: &[u32], widths: &[TagWidth], st: u16) -> bool {
    st == 0
        || cpus.iter().any(|c| {
            widths.iter().any(|w| {
                [MemType::Volatile, MemType::Persistent]
                    .iter()
                    .any(|m| host_tag(*c, *m, *w) == st)
            })
        })
}

/// Checks the four properties; `Err` names the first one broken.
pub fn check<V: Vmm>(rig: &Rig<V>) -> Result<(), String> {
    let v = rig.vmm.vtph();
    let dev = v.device().backend().device();
    let snap = dev.snapshot();
    let violations = &dev.violations()[rig.accepted_violations..];
    if !violations.is_empty() {
        return Err(format!(
            "the host device recorded violations: {violations:?}"
        ));
    }
    let host_width = width_of(snap.control.unwrap_or(0));
    let guest_width = width_of(v.guest_control());
    if host_width.is_some() != guest_width.is_some() {
        return Err(format!(
            "host Control {:#x} and guest Control {:#x} disagree on enablement",
            snap.control.unwrap_or(0),
            v.guest_control()
        ));
    }
    host_only_pinned_tags(rig, &snap.st_table, snap.msix_vectors, host_width)?;
    if let (Some(hw), Some(gw)) = (host_width, guest_width) {
        translation(rig, &snap.st_table, snap.msix_vectors, hw, gw)?;
    }
    guest_reads_its_own_tags(rig)
}

/// Property 1: the host table only holds 0 or tags of host CPUs this VM is pinned to (while
/// the host has TPH on; while it is off the table is not in use and may still hold tags of
/// CPUs the VM was pinned to before, re-targeted on the next enable). The same holds for the
/// entries of MSI-X vectors the host has not enabled: the kernel cannot reach them, and the
/// MSI-X hooks never enable the host's TPH to clear them while the guest has it off; they are
/// programmed when their vector is enabled again.
fn host_only_pinned_tags<V: Vmm>(
    rig: &Rig<V>,
    table: &[u16],
    host_vectors: u32,
    host_width: Option<TagWidth>,
) -> Result<(), String> {
    let pinned: Vec<u32> = rig
        .vmm
        .vtph()
        .config()
        .pins
        .iter()
        .flatten()
        .copied()
        .collect();
    for (i, st) in table.iter().enumerate() {
        let unreachable = rig.location == StLocation::MsiX && i as u32 >= host_vectors;
        let ok = match host_width {
            Some(w) if !unreachable => allowed(&pinned, &[w], *st),
            _ => allowed(&rig.ever_pinned, &[TagWidth::Bits8, TagWidth::Bits16], *st),
        };
        if !ok {
            return Err(format!(
                "host entry {i} holds tag {st:#x}, not a tag of a host CPU the VM is pinned to {pinned:?} (host width {host_width:?})"
            ));
        }
    }
    Ok(())
}

/// Property 2: every entry the guest programmed with vCPU v's tag holds the host tag of
/// pin(v) (0 while v is unpinned; 0 for tag 0, foreign tags and No-ST mode).
fn translation<V: Vmm>(
    rig: &Rig<V>,
    table: &[u16],
    host_vectors: u32,
    host_width: TagWidth,
    guest_width: TagWidth,
) -> Result<(), String> {
    let v = rig.vmm.vtph();
    let no_st = v.guest_control() & 7 == 0;
    let n = GUEST_ENTRIES.min(v.guest_table().len() as u16);
    for i in 0..n {
        if rig.location == StLocation::MsiX && u32::from(i) >= host_vectors {
            continue; // not programmable until the VMM enables the vector
        }
        let raw = v.guest_table()[usize::from(i)];
        let want = match v.tag_space().decode(raw, guest_width) {
            Decoded::Vcpu { vcpu, mem } if !no_st => {
                v.config().pins[vcpu as usize].map_or(0, |c| host_tag(c, mem, host_width))
            }
            _ => 0,
        };
        let got = table[usize::from(i)];
        if got != want {
            return Err(format!(
                "entry {i}: guest tag {raw:#x} ({:?}) should be host tag {want:#x}, host holds {got:#x}; pins {:?}",
                v.tag_space().decode(raw, guest_width),
                v.config().pins
            ));
        }
    }
    Ok(())
}

/// Property 3: the guest reads back its own virtual tags (what the model's register semantics
/// make of its writes), never host tags.
fn guest_reads_its_own_tags<V: Vmm>(rig: &Rig<V>) -> Result<(), String> {
    let v = rig.vmm.vtph();
    let want = rig.reference_table();
    let got: Vec<u16> = v.guest_table().iter().take(want.len()).copied().collect();
    if got != want {
        return Err(format!("the guest reads {got:x?}, it wrote {want:x?}"));
    }
    if rig.location == StLocation::Capability {
        let mut bytes = vec![0u8; 2 * want.len()];
        v.read_config(rig.cap + 0xc, &mut bytes);
        let read: Vec<u16> = bytes
            .chunks(2)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .collect();
        if read != want {
            return Err(format!(
                "config reads give {read:x?}, the guest wrote {want:x?}"
            ));
        }
    }
    Ok(())
}

/// Both kernel revisions.
pub const ABIS: [KernelAbi; 2] = [KernelAbi::V7, KernelAbi::Feature];
