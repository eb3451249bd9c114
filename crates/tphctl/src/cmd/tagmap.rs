//! Reverse steering-tag lookup for `tphctl show`: which processor UIDs (and memory types)
//! firmware gives a tag, at the tag width the kernel would use.
//!
//! The kernel's `get_cpu_st` (pci-tph-core.md section 2) returns the 8-bit tag for requester
//! type 1 and the 16-bit tag for type 3, and only when the matching valid bit is set; otherwise
//! it succeeds with tag 0. So a tag is owned by (uid, memory type) exactly when that lookup
//! would return it with a set valid bit; tag 0 is also what a cleared entry holds and what an
//! invalid firmware answer turns into, so it is never a certain answer.
//!
//! Also home of the processor UID lists (`0-15,32`) that `show` and `st-map` take.

use std::collections::BTreeMap;

use tph_acpi::{FirmwareError, MemType, StInfo, SteeringTagSource};

/// Most UIDs one query may name (a typo such as `0-4294967295` must not run for hours).
pub const MAX_UIDS: usize = 65_536;

/// Both memory types, in the order owners are listed.
const MEM_TYPES: [MemType; 2] = [MemType::Volatile, MemType::Persistent];

/// Width of the tags the kernel hands out (shared with the kernel model's `get_cpu_st`).
pub use tph_acpi::TagWidth as Width;

/// One owner of a tag: a processor UID and the memory type it was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Owner {
    /// ACPI processor UID (as in the MADT; the emulated host maps CPU n to UID n).
    pub uid: u32,
    /// `vm` (volatile) or `pm` (persistent).
    #[serde(serialize_with = "serialize_mem")]
    pub mem: MemType,
}

fn serialize_mem<S: serde::Serializer>(mem: &MemType, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(mem_name(*mem))
}

/// `vm` or `pm`.
pub fn mem_name(mem: MemType) -> &'static str {
    match mem {
        MemType::Volatile => "vm",
        MemType::Persistent => "pm",
    }
}

/// Firmware answers for a set of UIDs, asked once and reused for every function and width.
#[derive(Debug, Default)]
pub struct Answers {
    /// UIDs with an answer, in the order asked.
    pub ok: Vec<(u32, StInfo)>,
    /// UIDs without one, and why.
    pub failed: Vec<(u32, FirmwareError)>,
}

/// Asks `source` for every UID.
pub fn query(source: &dyn SteeringTagSource, uids: &[u32]) -> Answers {
    let mut answers = Answers::default();
    for &uid in uids {
        match source.st_info(uid) {
            Ok(info) => answers.ok.push((uid, info)),
            Err(e) => answers.failed.push((uid, e)),
        }
    }
    answers
}

/// One warning line per distinct failure, naming its UIDs as ranges (`uids 4-7: ...`), so a
/// long UID list against a short table stays readable.
pub fn failure_lines(failed: &[(u32, FirmwareError)]) -> Vec<String> {
    let mut groups: Vec<(String, Vec<u32>)> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for (uid, e) in failed {
        let why = match e {
            FirmwareError::UnknownUid(_) => "no result from firmware".to_owned(),
            other => other.to_string(),
        };
        let at = *index.entry(why.clone()).or_insert_with(|| {
            groups.push((why, Vec::new()));
            groups.len() - 1
        });
        if let Some((_, uids)) = groups.get_mut(at) {
            uids.push(*uid);
        }
    }
    groups
        .into_iter()
        .map(|(why, uids)| {
            let noun = if uids.len() == 1 { "uid" } else { "uids" };
            format!("{noun} {}: {why}", uid_ranges(&uids))
        })
        .collect()
}

/// Tag -> owners, each list in UID order with `vm` before `pm`.
pub type OwnerMap = BTreeMap<u16, Vec<Owner>>;

/// Builds the reverse map of `answers` at `width`.
pub fn owner_map(answers: &[(u32, StInfo)], width: Width) -> OwnerMap {
    let mut map = OwnerMap::new();
    for &(uid, info) in answers {
        for mem in MEM_TYPES {
            if let Some(tag) = info.tag(mem, width) {
                map.entry(tag).or_default().push(Owner { uid, mem });
            }
        }
    }
    map
}

/// The owners of `tag` (empty when none).
pub fn owners(map: &OwnerMap, tag: u16) -> &[Owner] {
    map.get(&tag).map_or(&[], Vec::as_slice)
}

/// What an entry's tag says about its CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TagState {
    /// A non-zero tag firmware gives the listed owners.
    Owned,
    /// Tag 0 that firmware gives the listed owners; also what a cleared entry holds.
    OwnedOrCleared,
    /// Tag 0 that no UID asked for owns: cleared, or a CPU whose firmware tag was invalid.
    ClearedUnknown,
    /// A non-zero tag no UID asked for owns.
    NoCpu,
}

impl TagState {
    /// The state of `tag` given its owners.
    pub fn of(tag: u16, owners: &[Owner]) -> Self {
        match (tag, owners.is_empty()) {
            (0, false) => Self::OwnedOrCleared,
            (0, true) => Self::ClearedUnknown,
            (_, false) => Self::Owned,
            (_, true) => Self::NoCpu,
        }
    }

    /// Snake-case name (the JSON `owner_state`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Owned => "owned",
            Self::OwnedOrCleared => "owned_or_cleared",
            Self::ClearedUnknown => "cleared_unknown",
            Self::NoCpu => "no_cpu",
        }
    }
}

/// Text for an entry: `uid 0 (vm), uid 1 (vm, pm)`, or `no CPU ...` with the caveats.
pub fn owners_text(tag: u16, owners: &[Owner]) -> String {
    let listed = group_by_uid(owners)
        .iter()
        .map(|(uid, mems)| format!("uid {uid} ({})", mems.join(", ")))
        .collect::<Vec<_>>()
        .join(", ");
    match TagState::of(tag, owners) {
        TagState::Owned => listed,
        TagState::OwnedOrCleared => format!("{listed}, or a cleared entry"),
        TagState::ClearedUnknown => "no CPU (cleared/unknown)".into(),
        TagState::NoCpu => "no CPU".into(),
    }
}

fn group_by_uid(owners: &[Owner]) -> Vec<(u32, Vec<&'static str>)> {
    let mut out: Vec<(u32, Vec<&'static str>)> = Vec::new();
    for o in owners {
        match out.last_mut() {
            Some((uid, mems)) if *uid == o.uid => mems.push(mem_name(o.mem)),
            _ => out.push((o.uid, vec![mem_name(o.mem)])),
        }
    }
    out
}

/// Parses `0-15,32,0x40` into a sorted list of at most [`MAX_UIDS`]; a UID named twice
/// (`0-3,2`) or an empty list is an error.
pub fn parse_uids(list: &str) -> Result<Vec<u32>, String> {
    let mut out = Vec::new();
    for part in list.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (uid_num(a)?, uid_num(b)?),
            None => (uid_num(part)?, uid_num(part)?),
        };
        if lo > hi {
            return Err(format!("range {part} runs backwards"));
        }
        let span = usize::try_from(hi - lo).unwrap_or(usize::MAX);
        if span >= MAX_UIDS.saturating_sub(out.len()) {
            return Err(format!("more than {MAX_UIDS} UIDs"));
        }
        out.extend(lo..=hi);
    }
    if out.is_empty() {
        return Err("empty list".into());
    }
    out.sort_unstable();
    if let Some(w) = out.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("UID {} given twice", w[0]));
    }
    Ok(out)
}

fn uid_num(s: &str) -> Result<u32, String> {
    let s = s.trim();
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u32::from_str_radix(h, 16),
        None => s.parse(),
    };
    r.map_err(|e| format!("bad UID {s:?}: {e}"))
}

/// `0-7,32` for a sorted list.
pub fn uid_ranges(uids: &[u32]) -> String {
    let mut runs: Vec<(u32, u32)> = Vec::new();
    for &u in uids {
        match runs.last_mut() {
            Some((_, hi)) if hi.checked_add(1) == Some(u) => *hi = u,
            _ => runs.push((u, u)),
        }
    }
    runs.iter()
        .map(|&(lo, hi)| {
            if lo == hi {
                lo.to_string()
            } else {
                format!("{lo}-{hi}")
            }
        })
        .collect::<Vec<_>>()
        .join(",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use tph_acpi::TableSource;

    /// A `_DSM` answer from its halves: `valid` bits 1:0, 8-bit tag, 16-bit tag
    /// (firmware-dsm.md bit table).
    fn info(vm: (u64, u64, u64), pm: (u64, u64, u64)) -> StInfo {
        let half = |(valid, st, xst): (u64, u64, u64)| valid | st << 8 | xst << 16;
        StInfo(half(vm) | half(pm) << 32)
    }

    const VM: MemType = MemType::Volatile;
    const PM: MemType = MemType::Persistent;

    #[test]
    fn width_follows_requester_type_1_and_3_only() {
        assert_eq!(Width::for_requester_type(1), Some(Width::Bits8));
        assert_eq!(Width::for_requester_type(3), Some(Width::Bits16));
        assert_eq!(Width::for_requester_type(0), None);
        assert_eq!(Width::for_requester_type(2), None);
    }

    #[test]
    fn tag_uses_st_at_8_bits_and_xst_at_16_bits() {
        let v = info((0b11, 0x0a, 0x100a), (0b11, 0x8a, 0x800a));
        assert_eq!(v.tag(VM, Width::Bits8), Some(0x0a));
        assert_eq!(v.tag(VM, Width::Bits16), Some(0x100a));
        assert_eq!(v.tag(PM, Width::Bits8), Some(0x8a));
        assert_eq!(v.tag(PM, Width::Bits16), Some(0x800a));
    }

    #[test]
    fn tag_invalid_bit_for_width_owns_nothing() {
        // VM: only the 16-bit tag valid; PM: only the 8-bit tag valid.
        let v = info((0b10, 0x0a, 0x100a), (0b01, 0x8a, 0x800a));
        assert_eq!(v.tag(VM, Width::Bits8), None);
        assert_eq!(v.tag(VM, Width::Bits16), Some(0x100a));
        assert_eq!(v.tag(PM, Width::Bits16), None);
    }

    #[test]
    fn owner_map_lists_every_sharer_in_uid_then_vm_pm_order() {
        let answers = [
            (0, info((1, 0x0a, 0), (1, 0x0b, 0))),
            (1, info((1, 0x0a, 0), (1, 0x0a, 0))),
            (2, info((0, 0x0a, 0), (0, 0x0a, 0))), // 8-bit tags invalid: no owner
        ];
        let map = owner_map(&answers, Width::Bits8);
        let want = [
            Owner { uid: 0, mem: VM },
            Owner { uid: 1, mem: VM },
            Owner { uid: 1, mem: PM },
        ];
        assert_eq!(owners(&map, 0x0a), want);
        assert_eq!(owners(&map, 0x0b), [Owner { uid: 0, mem: PM }]);
        assert!(owners(&map, 0x0c).is_empty());
    }

    #[test]
    fn query_keeps_failed_uids_with_their_error() {
        let src = TableSource::parse("1 0x0a01\n").expect("table");
        let a = query(&src, &[0, 1]);
        assert_eq!(a.ok, vec![(1, StInfo(0x0a01))]);
        assert_eq!(a.failed, vec![(0, FirmwareError::UnknownUid(0))]);
    }

    #[test]
    fn failure_lines_group_uids_per_cause() {
        let failed = [
            (4, FirmwareError::UnknownUid(4)),
            (5, FirmwareError::UnknownUid(5)),
            (6, FirmwareError::Aml("divide by zero".into())),
            (9, FirmwareError::UnknownUid(9)),
        ];
        assert_eq!(
            failure_lines(&failed),
            [
                "uids 4-5,9: no result from firmware",
                "uid 6: AML: divide by zero"
            ]
        );
    }

    #[test]
    fn tag_state_zero_is_never_a_certain_owner() {
        let one = [Owner { uid: 3, mem: VM }];
        assert_eq!(TagState::of(0, &one), TagState::OwnedOrCleared);
        assert_eq!(TagState::of(0, &[]), TagState::ClearedUnknown);
        assert_eq!(TagState::of(0x0a, &one), TagState::Owned);
        assert_eq!(TagState::of(0x0a, &[]), TagState::NoCpu);
    }

    #[test]
    fn owners_text_groups_memory_types_per_uid() {
        let o = [
            Owner { uid: 0, mem: VM },
            Owner { uid: 1, mem: VM },
            Owner { uid: 1, mem: PM },
        ];
        assert_eq!(owners_text(0x0a, &o), "uid 0 (vm), uid 1 (vm, pm)");
        assert_eq!(owners_text(0, &o[..1]), "uid 0 (vm), or a cleared entry");
        assert_eq!(owners_text(0, &[]), "no CPU (cleared/unknown)");
        assert_eq!(owners_text(5, &[]), "no CPU");
    }

    #[test]
    fn owner_json_names_memory_type_vm_or_pm() {
        let j = serde_json::to_string(&Owner { uid: 7, mem: PM }).expect("json");
        assert_eq!(j, r#"{"uid":7,"mem":"pm"}"#);
    }

    /// Tags the kernel model writes for CPUs 0-7 (one SET_ST, entry i = CPU i, all of one
    /// memory type) on an emulated device enabled in IV mode, read back from the hardware.
    fn kernel_tags(bdf: &str, mem_type: u8) -> Vec<u16> {
        use tph_kernel::vfio::abi;
        let host = tph_kernel::Host::with_default_machine(tph_kernel::HostOptions::default());
        let dev = host
            .take_over(bdf.parse().expect("bdf"))
            .expect("take over");
        let fd = dev.open().expect("open");
        if bdf == "01:00.0" {
            fd.set_irqs(8)
                .expect("MSI-X vectors 0-7 for the MSI-X-located table");
        }
        let mut arg = abi::encode_op(abi::OP_ENABLE, [abi::MODE_IV, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg), Ok(0));
        let entries: Vec<abi::TphEntry> = (0..8)
            .map(|c| abi::TphEntry::new(c, mem_type, c as u16))
            .collect();
        let mut arg = abi::encode_st_raw(abi::OP_SET_ST, &entries);
        assert_eq!(fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg), Ok(0));
        dev.snapshot().st_table
    }

    #[test]
    fn owners_of_kernel_written_tags_include_the_cpu_asked_for() {
        // 02:00.0 negotiates requester type 1 (8-bit tags), 01:00.0 type 3 (16-bit; its table
        // is in MSI-X); the emulated host maps CPU n to UID n and answers with
        // TableSource::default_for_all.
        let answers = query(&TableSource::default_for_all(), &(0..8).collect::<Vec<_>>());
        for (bdf, width) in [("02:00.0", Width::Bits8), ("01:00.0", Width::Bits16)] {
            let map = owner_map(&answers.ok, width);
            for (mem_type, mem) in [(0, VM), (1, PM)] {
                let tags = kernel_tags(bdf, mem_type);
                for cpu in 0..8u32 {
                    let tag = tags[cpu as usize];
                    let want = Owner { uid: cpu, mem };
                    assert!(
                        owners(&map, tag).contains(&want),
                        "{bdf} cpu {cpu} {mem:?}: tag {tag:#x} owners {:?}",
                        owners(&map, tag)
                    );
                }
            }
        }
    }

    #[test]
    fn uid_list_ranges_and_singles_parse() {
        assert_eq!(
            parse_uids("0-3,32, 0x10").expect("valid"),
            vec![0, 1, 2, 3, 16, 32]
        );
    }

    #[test]
    fn uid_list_with_a_uid_twice_is_an_error_naming_it() {
        assert_eq!(parse_uids("0-3,2").unwrap_err(), "UID 2 given twice");
        assert_eq!(parse_uids("7,7").unwrap_err(), "UID 7 given twice");
    }

    #[test]
    fn uid_list_bad_forms_are_errors() {
        assert!(parse_uids("5-1").is_err());
        assert!(parse_uids("x").is_err());
        assert!(parse_uids("").is_err());
        assert!(parse_uids("0-4294967295").is_err());
        assert!(parse_uids("0-65535").is_ok());
        assert!(parse_uids("0-65535,70000").is_err());
    }

    #[test]
    fn uid_ranges_compresses_runs() {
        assert_eq!(uid_ranges(&[0, 1, 2, 3, 16, 32, 33]), "0-3,16,32-33");
        assert_eq!(uid_ranges(&[u32::MAX]), "4294967295");
        assert_eq!(uid_ranges(&[]), "");
    }
}
