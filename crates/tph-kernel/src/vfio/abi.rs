//! The v7 UAPI at the byte level (`shared/spec/vfio-tph-v7.md` section 1).

/// `_IO(type, nr)` = `type << 8 | nr` (no size, no direction).
pub const fn io(ty: u8, nr: u8) -> u32 {
    (ty as u32) << 8 | nr as u32
}

/// `VFIO_TYPE` = `';'`.
pub const VFIO_TYPE: u8 = b';';
/// `VFIO_BASE`.
pub const VFIO_BASE: u8 = 100;
/// `VFIO_DEVICE_PCI_TPH` = `_IO(';', 100 + 22)` = 0x3B7A.
pub const VFIO_DEVICE_PCI_TPH: u32 = io(VFIO_TYPE, VFIO_BASE + 22);
/// `VFIO_DEVICE_RESET` = `_IO(';', 100 + 11)`.
pub const VFIO_DEVICE_RESET: u32 = io(VFIO_TYPE, VFIO_BASE + 11);

/// `VFIO_DEVICE_SET_IRQS` = `_IO(';', 100 + 10)`.
pub const VFIO_DEVICE_SET_IRQS: u32 = io(VFIO_TYPE, VFIO_BASE + 10);
/// `VFIO_PCI_MSIX_IRQ_INDEX`.
pub const MSIX_IRQ_INDEX: u32 = 2;
/// `VFIO_IRQ_SET_DATA_NONE`.
pub const IRQ_SET_DATA_NONE: u32 = 1 << 0;
/// `VFIO_IRQ_SET_DATA_EVENTFD`.
pub const IRQ_SET_DATA_EVENTFD: u32 = 1 << 2;
/// `VFIO_IRQ_SET_ACTION_TRIGGER`.
pub const IRQ_SET_ACTION_TRIGGER: u32 = 1 << 5;
/// `sizeof(struct vfio_irq_set)` without its data.
pub const IRQ_SET_SIZE: usize = 20;

/// Op codes.
pub const OP_GET_CAP: u32 = 0;
/// Enable TPH in one mode.
pub const OP_ENABLE: u32 = 1;
/// Disable TPH.
pub const OP_DISABLE: u32 = 2;
/// Steering tags for CPUs (DS mode).
pub const OP_GET_ST: u32 = 3;
/// Program ST table entries.
pub const OP_SET_ST: u32 = 4;

/// `VFIO_PCI_TPH_MODE_IV` (a bit, not the hardware encoding).
pub const MODE_IV: u8 = 1 << 0;
/// `VFIO_PCI_TPH_MODE_DS`.
pub const MODE_DS: u8 = 1 << 1;
/// `VFIO_PCI_TPH_MAX_ENTRIES`.
pub const MAX_ENTRIES: u32 = 2048;
/// `sizeof(struct vfio_device_pci_tph_op)`.
pub const OP_SIZE: usize = 16;
/// Offset of the union payload.
pub const PAYLOAD_OFFSET: u64 = 8;
/// Offset of `ents[0]` in the argument.
pub const ENTS_OFFSET: u64 = 16;
/// `sizeof(struct vfio_pci_tph_entry)`.
pub const ENTRY_SIZE: usize = 12;
/// Offset of `st` inside an entry.
pub const ENTRY_ST_OFFSET: u64 = 8;
/// `cpu` value of SET_ST that clears the entry to ST 0.
pub const CPU_CLEAR: u32 = 0xffff_ffff;

/// One decoded `struct vfio_pci_tph_entry`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Logical CPU, or [`CPU_CLEAR`].
    pub cpu: u32,
    /// 0 volatile, 1 persistent.
    pub mem_type: u8,
    /// Must be 0.
    pub reserved0: u8,
    /// ST table index (SET_ST).
    pub index: u16,
    /// Output tag (GET_ST).
    pub st: u16,
    /// Must be 0.
    pub reserved1: u16,
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([
        b.get(at).copied().unwrap_or(0),
        b.get(at + 1).copied().unwrap_or(0),
    ])
}

/// Little-endian u32 at `at` (missing bytes read as 0; callers pass full-size buffers).
pub fn le32(b: &[u8], at: usize) -> u32 {
    u32::from(le16(b, at)) | u32::from(le16(b, at + 2)) << 16
}

impl Entry {
    /// Decodes the first 12 bytes of `b` (missing bytes read as 0).
    pub fn decode(b: &[u8]) -> Self {
        let a: [u8; ENTRY_SIZE] = b
            .get(..ENTRY_SIZE)
            .and_then(|s| s.try_into().ok())
            .unwrap_or([0; ENTRY_SIZE]);
        Self {
            cpu: u32::from_le_bytes([a[0], a[1], a[2], a[3]]),
            mem_type: a[4],
            reserved0: a[5],
            index: u16::from_le_bytes([a[6], a[7]]),
            st: u16::from_le_bytes([a[8], a[9]]),
            reserved1: u16::from_le_bytes([a[10], a[11]]),
        }
    }
}

/// The argument bytes of an op with no entries (GET_CAP, ENABLE, DISABLE): 16 bytes.
pub fn encode_op(op: u32, payload: [u8; 8]) -> Vec<u8> {
    let mut v = Vec::with_capacity(OP_SIZE);
    v.extend_from_slice(&(OP_SIZE as u32).to_le_bytes());
    v.extend_from_slice(&op.to_le_bytes());
    v.extend_from_slice(&payload);
    v
}

/// The argument bytes of GET_ST / SET_ST with `entries`.
pub fn encode_st(op: u32, entries: &[Entry]) -> Vec<u8> {
    let argsz = OP_SIZE + ENTRY_SIZE * entries.len();
    let mut v = Vec::with_capacity(argsz);
    v.extend_from_slice(&(argsz as u32).to_le_bytes());
    v.extend_from_slice(&op.to_le_bytes());
    v.extend_from_slice(&(entries.len() as u32).to_le_bytes());
    v.extend_from_slice(&0u32.to_le_bytes());
    for e in entries {
        v.extend_from_slice(&e.cpu.to_le_bytes());
        v.extend_from_slice(&[e.mem_type, e.reserved0]);
        v.extend_from_slice(&e.index.to_le_bytes());
        v.extend_from_slice(&e.st.to_le_bytes());
        v.extend_from_slice(&e.reserved1.to_le_bytes());
    }
    v
}

impl Entry {
    /// An entry with `cpu`, `mem_type`, `index` and everything else 0.
    pub fn new(cpu: u32, mem_type: u8, index: u16) -> Self {
        Self {
            cpu,
            mem_type,
            reserved0: 0,
            index,
            st: 0,
            reserved1: 0,
        }
    }
}

// ---- The feature revision (`shared/spec/later-revisions.md`) ----

/// `VFIO_DEVICE_FEATURE` = `_IO(';', 100 + 17)` = 0x3B75.
pub const VFIO_DEVICE_FEATURE: u32 = io(VFIO_TYPE, VFIO_BASE + 17);
/// `flags` bits 15:0: the feature number.
pub const FEATURE_MASK: u32 = 0xffff;
/// `VFIO_DEVICE_FEATURE_GET`.
pub const FEATURE_GET: u32 = 1 << 16;
/// `VFIO_DEVICE_FEATURE_SET`.
pub const FEATURE_SET: u32 = 1 << 17;
/// `VFIO_DEVICE_FEATURE_PROBE`.
pub const FEATURE_PROBE: u32 = 1 << 18;
/// `VFIO_DEVICE_FEATURE_TPH_ST`.
pub const FEATURE_TPH_ST: u32 = 13;
/// `sizeof(struct vfio_device_feature)` without `data[]` (`argsz`, `flags`).
pub const FEATURE_HEAD_SIZE: usize = 8;
/// `sizeof(struct vfio_device_feature_tph_st)` without `data[]` (`flags`, `index`, `count`).
pub const TPH_ST_HEAD_SIZE: usize = 8;
/// Offset of `data[0]` in the whole argument.
pub const TPH_ST_DATA_OFFSET: u64 = (FEATURE_HEAD_SIZE + TPH_ST_HEAD_SIZE) as u64;
/// `vfio_device_feature_tph_st.flags` bit 0: memory type (0 volatile, 1 persistent).
pub const TPH_ST_FLAG_MEM_TYPE: u32 = 1;

/// The argument bytes of `VFIO_DEVICE_FEATURE` for TPH_ST: `direction` (GET, SET, with or
/// without PROBE), payload `flags`, `index`, and `data` (CPU ids); `argsz` covers it all.
pub fn encode_feature_st(direction: u32, st_flags: u32, index: u16, data: &[u32]) -> Vec<u8> {
    let argsz = FEATURE_HEAD_SIZE + TPH_ST_HEAD_SIZE + 4 * data.len();
    let count = u16::try_from(data.len()).unwrap_or(u16::MAX);
    let mut v = Vec::with_capacity(argsz);
    v.extend_from_slice(&(argsz as u32).to_le_bytes());
    v.extend_from_slice(&(direction | FEATURE_TPH_ST).to_le_bytes());
    v.extend_from_slice(&st_flags.to_le_bytes());
    v.extend_from_slice(&index.to_le_bytes());
    v.extend_from_slice(&count.to_le_bytes());
    for d in data {
        v.extend_from_slice(&d.to_le_bytes());
    }
    v
}

/// The `data[]` words of a TPH_ST argument (tags after a GET).
pub fn feature_st_data(arg: &[u8]) -> Vec<u32> {
    arg.get(TPH_ST_DATA_OFFSET as usize..)
        .unwrap_or(&[])
        .chunks_exact(4)
        .map(|w| le32(w, 0))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_number_is_0x3b7a() {
        assert_eq!(VFIO_DEVICE_PCI_TPH, 0x3b7a);
        assert_eq!(VFIO_DEVICE_RESET, 0x3b6f);
        assert_eq!(VFIO_DEVICE_SET_IRQS, 0x3b6e);
        assert_eq!(VFIO_DEVICE_FEATURE, 0x3b75);
    }

    #[test]
    fn feature_st_layout_matches_spec_table() {
        let b = encode_feature_st(FEATURE_SET, 1, 0x0203, &[0x0a0b_0c0d]);
        assert_eq!(b.len(), 20);
        assert_eq!(le32(&b, 0), 20);
        assert_eq!(le32(&b, 4), FEATURE_SET | 13);
        assert_eq!(le32(&b, 8), 1); // flags: persistent memory
        assert_eq!(&b[12..16], &[3, 2, 1, 0]); // index 0x0203, count 1
        assert_eq!(feature_st_data(&b), [0x0a0b_0c0d]);
    }

    #[test]
    fn entry_layout_round_trips_through_encode() {
        let e = Entry {
            cpu: 0x0102_0304,
            mem_type: 1,
            reserved0: 2,
            index: 0x0506,
            st: 0x0708,
            reserved1: 0x090a,
        };
        let b = encode_st(OP_SET_ST, &[e]);
        assert_eq!(b.len(), 16 + 12);
        assert_eq!(&b[16..28], &[4, 3, 2, 1, 1, 2, 6, 5, 8, 7, 0xa, 9]);
        assert_eq!(Entry::decode(&b[16..]), e);
        assert_eq!(le32(&b, 0), 28);
    }
}
