//! The VFIO PCIe TPH kernel ABI, byte for byte: one definition shared by the client (what a driver
//! sends) and the reference kernel model (what it accepts).
//!
//! - The v7 `VFIO_DEVICE_PCI_TPH` ioctl (`docs/spec/vfio-tph-v7.md` section 1): [`TphOp`] and its
//!   union views [`TphCap`], [`TphCtrl`], [`TphSt`], and [`TphEntry`].
//! - The later feature revision (`docs/spec/later-revisions.md`): [`DeviceFeature`],
//!   [`FeatureTphSt`], [`encode_feature_st`].
//! - The VFIO requests around them ([`vfio`]): MSI-X set-up, reset, regions, and the legacy and
//!   cdev opening sequences.
//!
//! - The vocabulary every crate shares: [`Errno`], [`MemType`], [`TagWidth`].
//!
//! Structs are `#[repr(C)]` mirrors of the UAPI with compile-time size and offset assertions;
//! argument buffers are built and read with explicit little-endian byte encoding (never
//! `transmute`).
//!
//! ```
//! use tph_abi as abi;
//! assert_eq!(abi::VFIO_DEVICE_PCI_TPH, 0x3B7A);
//! let buf = abi::encode_get_cap();
//! assert_eq!(buf.len(), abi::OP_HEADER_SIZE);
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod errno;
mod tag;
pub mod vfio;

pub use errno::Errno;
pub use tag::{MemType, TagWidth};

use std::mem::{offset_of, size_of};

/// The VFIO ioctl type character, `';'`.
pub const VFIO_TYPE: u8 = b';';
/// The VFIO ioctl base number; VFIO ioctls are `_IO(';', VFIO_BASE + n)`.
pub const VFIO_BASE: u8 = 100;

/// `_IO(ty, nr)`: a Linux ioctl request number without direction or size bits.
///
/// ```
/// assert_eq!(tph_abi::io(b';', 122), 0x3B7A);
/// ```
pub const fn io(ty: u8, nr: u8) -> u32 {
    ((ty as u32) << 8) | nr as u32
}

/// `VFIO_DEVICE_PCI_TPH` = `_IO(';', 100 + 22)`, the v7 TPH ioctl (0x3B7A).
///
/// ```
/// assert_eq!(tph_abi::VFIO_DEVICE_PCI_TPH, 0x3B7A);
/// ```
pub const VFIO_DEVICE_PCI_TPH: u32 = vfio::Request::DevicePciTph.number();
/// `VFIO_DEVICE_SET_IRQS` = `_IO(';', 100 + 10)` (0x3B6E).
///
/// ```
/// assert_eq!(tph_abi::VFIO_DEVICE_SET_IRQS, 0x3B6E);
/// ```
pub const VFIO_DEVICE_SET_IRQS: u32 = vfio::Request::DeviceSetIrqs.number();
/// `VFIO_DEVICE_RESET` = `_IO(';', 100 + 11)` (0x3B6F).
///
/// ```
/// assert_eq!(tph_abi::VFIO_DEVICE_RESET, 0x3B6F);
/// ```
pub const VFIO_DEVICE_RESET: u32 = vfio::Request::DeviceReset.number();
/// `VFIO_DEVICE_FEATURE` = `_IO(';', 100 + 17)` (0x3B75), used by the later feature revision.
///
/// ```
/// assert_eq!(tph_abi::VFIO_DEVICE_FEATURE, 0x3B75);
/// ```
pub const VFIO_DEVICE_FEATURE: u32 = vfio::Request::DeviceFeature.number();

/// v7 op code: query capabilities.
pub const OP_GET_CAP: u32 = 0;
/// v7 op code: enable TPH in one mode.
pub const OP_ENABLE: u32 = 1;
/// v7 op code: disable TPH.
pub const OP_DISABLE: u32 = 2;
/// v7 op code: fetch steering tags for CPUs (DS mode).
pub const OP_GET_ST: u32 = 3;
/// v7 op code: program steering table entries.
pub const OP_SET_ST: u32 = 4;

/// UAPI mode bit: Interrupt Vector mode.
pub const MODE_IV: u8 = 1 << 0;
/// UAPI mode bit: Device Specific mode.
pub const MODE_DS: u8 = 1 << 1;

/// `VFIO_PCI_TPH_MAX_ENTRIES`: the most entries one GET_ST/SET_ST call carries.
pub const MAX_ENTRIES: usize = 2048;
/// SET_ST `cpu` value that clears the entry at `index` to steering tag 0.
pub const CPU_CLEAR: u32 = 0xFFFF_FFFF;
/// Size of the fixed head of every v7 argument (`struct vfio_device_pci_tph_op`).
pub const OP_HEADER_SIZE: usize = size_of::<TphOp>();
/// Size of one `struct vfio_pci_tph_entry`.
pub const ENTRY_SIZE: usize = size_of::<TphEntry>();
/// The largest v7 argument: 16 + 2048 * 12 = 24,592 bytes.
pub const MAX_ARG_SIZE: usize = OP_HEADER_SIZE + MAX_ENTRIES * ENTRY_SIZE;

/// `struct vfio_device_pci_tph_op`: the 16-byte head of every v7 argument.
///
/// ```
/// let op = tph_abi::TphOp::from_bytes(&tph_abi::encode_disable()).unwrap();
/// assert_eq!((op.argsz, op.op), (16, tph_abi::OP_DISABLE));
/// ```
///
/// The C union payload is kept as its 8 raw bytes; [`TphCap`], [`TphCtrl`] and [`TphSt`] are its
/// typed views.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TphOp {
    /// Bytes the caller provides, this head included.
    pub argsz: u32,
    /// One of the `OP_*` codes.
    pub op: u32,
    /// The union payload (`cap`, `ctrl` or `st`).
    pub payload: [u8; 8],
}

/// `struct vfio_pci_tph_cap`: GET_CAP output at offset 8 (see [`decode_cap`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TphCap {
    /// `MODE_IV` / `MODE_DS` bits the kernel offers.
    pub supported_modes: u8,
    /// Must be 0.
    pub reserved0: u8,
    /// Number of steering table entries, 0 when there is no table.
    pub st_table_sz: u16,
    /// Must be 0.
    pub reserved: u32,
}

/// `struct vfio_pci_tph_ctrl`: ENABLE input at offset 8.
///
/// ```
/// let c = tph_abi::TphCtrl { mode: tph_abi::MODE_IV, reserved: [0; 7] };
/// assert_eq!(std::mem::size_of_val(&c), 8);
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TphCtrl {
    /// Exactly one `MODE_*` bit.
    pub mode: u8,
    /// Must be 0.
    pub reserved: [u8; 7],
}

/// `struct vfio_pci_tph_st`: GET_ST/SET_ST head at offset 8; entries follow at offset 16.
///
/// ```
/// assert_eq!(std::mem::size_of::<tph_abi::TphSt>(), 8);
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TphSt {
    /// Number of entries, 1..=2048.
    pub count: u32,
    /// Must be 0.
    pub reserved: u32,
}

/// `struct vfio_pci_tph_entry` (12 bytes; see [`TphEntry::to_bytes`]).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TphEntry {
    /// Logical CPU, or [`CPU_CLEAR`] in SET_ST.
    pub cpu: u32,
    /// 0 volatile memory, 1 persistent memory.
    pub mem_type: u8,
    /// Must be 0.
    pub reserved0: u8,
    /// SET_ST: steering table index; GET_ST: must be 0.
    pub index: u16,
    /// GET_ST: the tag written back; SET_ST: must be 0.
    pub st: u16,
    /// Must be 0.
    pub reserved1: u16,
}

/// `struct vfio_device_feature` head of the later feature revision.
///
/// ```
/// use tph_abi::{encode_feature_st, DeviceFeature, FEATURE_GET, FEATURE_TPH_ST};
/// // The head `encode_feature_st` writes: argsz, then GET (bit 16) with feature 13.
/// let f = DeviceFeature { argsz: 20, flags: FEATURE_GET | FEATURE_TPH_ST };
/// let arg = encode_feature_st(FEATURE_GET, 0, 0, &[5]);
/// assert_eq!(arg[..8], [f.argsz.to_le_bytes(), f.flags.to_le_bytes()].concat());
/// assert_eq!(arg[4..8], [0x0d, 0, 1, 0]);
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceFeature {
    /// Bytes the caller provides, head included.
    pub argsz: u32,
    /// Feature number in bits 15:0, `FEATURE_GET`/`SET`/`PROBE` above.
    pub flags: u32,
}

/// `struct vfio_device_feature_tph_st` payload of the later feature revision.
///
/// ```
/// assert_eq!(std::mem::offset_of!(tph_abi::FeatureTphSt, count), 6);
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FeatureTphSt {
    /// Bit 0: memory type (0 volatile, 1 persistent).
    pub flags: u32,
    /// First steering table index.
    pub index: u16,
    /// Number of contiguous entries, 1..=2048; `u32` CPU ids / tags follow.
    pub count: u16,
}

/// Feature number of `VFIO_DEVICE_FEATURE_TPH_ST` in the feature revision.
pub const FEATURE_TPH_ST: u32 = 13;
/// `VFIO_DEVICE_FEATURE_GET` flag.
pub const FEATURE_GET: u32 = vfio_bindings::bindings::vfio::VFIO_DEVICE_FEATURE_GET;
/// `VFIO_DEVICE_FEATURE_SET` flag.
pub const FEATURE_SET: u32 = vfio_bindings::bindings::vfio::VFIO_DEVICE_FEATURE_SET;
/// `VFIO_DEVICE_FEATURE_PROBE` flag.
pub const FEATURE_PROBE: u32 = vfio_bindings::bindings::vfio::VFIO_DEVICE_FEATURE_PROBE;
/// `flags` bits 15:0 of `struct vfio_device_feature`: the feature number.
pub const FEATURE_MASK: u32 = vfio_bindings::bindings::vfio::VFIO_DEVICE_FEATURE_MASK;
/// `sizeof(struct vfio_device_feature)` without `data[]` (`argsz`, `flags`).
pub const FEATURE_HEAD_SIZE: usize = size_of::<DeviceFeature>();
/// `sizeof(struct vfio_device_feature_tph_st)` without `data[]` (`flags`, `index`, `count`).
pub const TPH_ST_HEAD_SIZE: usize = size_of::<FeatureTphSt>();
/// Offset of `data[0]` (CPU ids in, tags out) in a whole TPH_ST feature argument.
pub const TPH_ST_DATA_OFFSET: u64 = (FEATURE_HEAD_SIZE + TPH_ST_HEAD_SIZE) as u64;
/// `vfio_device_feature_tph_st.flags` bit 0: memory type (0 volatile, 1 persistent).
pub const TPH_ST_FLAG_MEM_TYPE: u32 = 1;
/// Offset of the union payload in a v7 argument.
pub const PAYLOAD_OFFSET: u64 = offset_of!(TphOp, payload) as u64;
/// Offset of `ents[0]` in a v7 GET_ST/SET_ST argument.
pub const ENTS_OFFSET: u64 = OP_HEADER_SIZE as u64;
/// Offset of `st` inside a [`TphEntry`].
pub const ENTRY_ST_OFFSET: u64 = offset_of!(TphEntry, st) as u64;

// Layout pins against the spec tables (vfio-tph-v7.md section 1, later-revisions.md).
const _: () = {
    assert!(size_of::<TphOp>() == 16);
    assert!(offset_of!(TphOp, argsz) == 0);
    assert!(offset_of!(TphOp, op) == 4);
    assert!(offset_of!(TphOp, payload) == 8);
    assert!(size_of::<TphCap>() == 8);
    assert!(offset_of!(TphCap, supported_modes) == 0);
    assert!(offset_of!(TphCap, reserved0) == 1);
    assert!(offset_of!(TphCap, st_table_sz) == 2);
    assert!(offset_of!(TphCap, reserved) == 4);
    assert!(size_of::<TphCtrl>() == 8);
    assert!(offset_of!(TphCtrl, reserved) == 1);
    assert!(size_of::<TphSt>() == 8);
    assert!(offset_of!(TphSt, reserved) == 4);
    assert!(size_of::<TphEntry>() == 12);
    assert!(offset_of!(TphEntry, cpu) == 0);
    assert!(offset_of!(TphEntry, mem_type) == 4);
    assert!(offset_of!(TphEntry, reserved0) == 5);
    assert!(offset_of!(TphEntry, index) == 6);
    assert!(offset_of!(TphEntry, st) == 8);
    assert!(offset_of!(TphEntry, reserved1) == 10);
    assert!(size_of::<DeviceFeature>() == 8);
    assert!(size_of::<FeatureTphSt>() == 8);
    assert!(offset_of!(FeatureTphSt, index) == 4);
    assert!(offset_of!(FeatureTphSt, count) == 6);
    assert!(MAX_ARG_SIZE == 24_592);
};

/// Why an argument buffer could not be built or read.
///
/// ```
/// use tph_abi::{encode_st, AbiError, OP_GET_ST};
/// assert_eq!(encode_st(OP_GET_ST, &[]), Err(AbiError::BadCount(0)));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AbiError {
    /// GET_ST/SET_ST batches carry 1..=2048 entries.
    #[error("{0} entries in one call; the kernel takes 1 to 2048")]
    BadCount(usize),
    /// A buffer is shorter than the structure read from it.
    #[error("argument buffer of {len} bytes is shorter than the {need} bytes needed")]
    Short {
        /// Bytes available.
        len: usize,
        /// Bytes needed.
        need: usize,
    },
}

/// The first `N` bytes of `b`, or how many were missing.
fn prefix<const N: usize>(b: &[u8]) -> Result<&[u8; N], AbiError> {
    b.first_chunk::<N>().ok_or(AbiError::Short {
        len: b.len(),
        need: N,
    })
}

impl TphOp {
    /// The 16 little-endian bytes of this head.
    ///
    /// ```
    /// let op = tph_abi::TphOp { argsz: 16, op: 2, payload: [0; 8] };
    /// assert_eq!(&op.to_bytes()[..8], &[16, 0, 0, 0, 2, 0, 0, 0]);
    /// ```
    pub fn to_bytes(&self) -> [u8; 16] {
        let mut b = [0u8; 16];
        b[0..4].copy_from_slice(&self.argsz.to_le_bytes());
        b[4..8].copy_from_slice(&self.op.to_le_bytes());
        b[8..16].copy_from_slice(&self.payload);
        b
    }

    /// Reads a head from the start of `b`.
    ///
    /// ```
    /// let b = [16, 0, 0, 0, 0, 0, 0, 0, 3, 0, 8, 0, 0, 0, 0, 0];
    /// let op = tph_abi::TphOp::from_bytes(&b).unwrap();
    /// assert_eq!(op.argsz, 16);
    /// ```
    pub fn from_bytes(b: &[u8]) -> Result<Self, AbiError> {
        let [a0, a1, a2, a3, o0, o1, o2, o3, payload @ ..] = *prefix::<OP_HEADER_SIZE>(b)?;
        Ok(Self {
            argsz: u32::from_le_bytes([a0, a1, a2, a3]),
            op: u32::from_le_bytes([o0, o1, o2, o3]),
            payload,
        })
    }
}

impl TphCap {
    /// Reads the capability payload (8 bytes).
    ///
    /// ```
    /// let cap = tph_abi::TphCap::from_bytes(&[1, 0, 8, 0, 0, 0, 0, 0]).unwrap();
    /// assert_eq!((cap.supported_modes, cap.st_table_sz), (1, 8));
    /// ```
    pub fn from_bytes(b: &[u8]) -> Result<Self, AbiError> {
        let [supported_modes, reserved0, s0, s1, r0, r1, r2, r3] = *prefix::<8>(b)?;
        Ok(Self {
            supported_modes,
            reserved0,
            st_table_sz: u16::from_le_bytes([s0, s1]),
            reserved: u32::from_le_bytes([r0, r1, r2, r3]),
        })
    }

    /// The 8 little-endian bytes of this payload.
    ///
    /// ```
    /// let cap = tph_abi::TphCap { supported_modes: 3, st_table_sz: 0x102, ..Default::default() };
    /// assert_eq!(cap.to_bytes(), [3, 0, 2, 1, 0, 0, 0, 0]);
    /// ```
    pub fn to_bytes(&self) -> [u8; 8] {
        let mut b = [0u8; 8];
        b[0] = self.supported_modes;
        b[1] = self.reserved0;
        b[2..4].copy_from_slice(&self.st_table_sz.to_le_bytes());
        b[4..8].copy_from_slice(&self.reserved.to_le_bytes());
        b
    }
}

impl TphEntry {
    /// The 12 little-endian bytes of this entry.
    ///
    /// ```
    /// let e = tph_abi::TphEntry { cpu: 5, index: 3, ..Default::default() };
    /// assert_eq!(e.to_bytes(), [5, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0]);
    /// ```
    pub fn to_bytes(&self) -> [u8; 12] {
        let mut b = [0u8; 12];
        b[0..4].copy_from_slice(&self.cpu.to_le_bytes());
        b[4] = self.mem_type;
        b[5] = self.reserved0;
        b[6..8].copy_from_slice(&self.index.to_le_bytes());
        b[8..10].copy_from_slice(&self.st.to_le_bytes());
        b[10..12].copy_from_slice(&self.reserved1.to_le_bytes());
        b
    }

    /// Reads an entry from the start of `b`.
    ///
    /// ```
    /// let b = [5, 0, 0, 0, 1, 0, 0, 0, 0x34, 0x12, 0, 0];
    /// let e = tph_abi::TphEntry::from_bytes(&b).unwrap();
    /// assert_eq!((e.cpu, e.mem_type, e.st), (5, 1, 0x1234));
    /// ```
    pub fn from_bytes(b: &[u8]) -> Result<Self, AbiError> {
        Ok(Self::from_array(prefix::<ENTRY_SIZE>(b)?))
    }

    /// Reads an entry from its 12 bytes.
    ///
    /// ```
    /// let e = tph_abi::TphEntry::from_array(&[5, 0, 0, 0, 1, 0, 2, 0, 0x34, 0x12, 0, 0]);
    /// assert_eq!((e.cpu, e.mem_type, e.index, e.st), (5, 1, 2, 0x1234));
    /// ```
    pub fn from_array(b: &[u8; ENTRY_SIZE]) -> Self {
        let [c0, c1, c2, c3, mem_type, reserved0, i0, i1, s0, s1, r0, r1] = *b;
        Self {
            cpu: u32::from_le_bytes([c0, c1, c2, c3]),
            mem_type,
            reserved0,
            index: u16::from_le_bytes([i0, i1]),
            st: u16::from_le_bytes([s0, s1]),
            reserved1: u16::from_le_bytes([r0, r1]),
        }
    }
}

fn head(op: u32, argsz: usize, payload: [u8; 8]) -> [u8; 16] {
    let argsz = u32::try_from(argsz).unwrap_or(u32::MAX);
    TphOp { argsz, op, payload }.to_bytes()
}

/// The 16-byte GET_CAP argument.
///
/// ```
/// let b = tph_abi::encode_get_cap();
/// assert_eq!(b, [16, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
/// ```
pub fn encode_get_cap() -> Vec<u8> {
    head(OP_GET_CAP, OP_HEADER_SIZE, [0; 8]).to_vec()
}

/// The 16-byte ENABLE argument for UAPI mode bits `mode`.
///
/// ```
/// let b = tph_abi::encode_enable(tph_abi::MODE_DS);
/// assert_eq!(&b[4..9], &[1, 0, 0, 0, 2]);
/// ```
pub fn encode_enable(mode: u8) -> Vec<u8> {
    head(OP_ENABLE, OP_HEADER_SIZE, [mode, 0, 0, 0, 0, 0, 0, 0]).to_vec()
}

/// The 16-byte DISABLE argument.
///
/// ```
/// assert_eq!(tph_abi::encode_disable()[4], 2);
/// ```
pub fn encode_disable() -> Vec<u8> {
    head(OP_DISABLE, OP_HEADER_SIZE, [0; 8]).to_vec()
}

/// A GET_ST or SET_ST argument carrying `entries` (1..=2048 of them).
///
/// ```
/// use tph_abi::{encode_st, TphEntry, OP_SET_ST};
/// let b = encode_st(OP_SET_ST, &[TphEntry { cpu: 1, index: 2, ..Default::default() }]).unwrap();
/// assert_eq!(b.len(), 28);
/// assert!(encode_st(OP_SET_ST, &[]).is_err());
/// ```
pub fn encode_st(op: u32, entries: &[TphEntry]) -> Result<Vec<u8>, AbiError> {
    if entries.is_empty() || entries.len() > MAX_ENTRIES {
        return Err(AbiError::BadCount(entries.len()));
    }
    Ok(encode_st_raw(op, entries))
}

/// Reads the `st` field of `count` entries from a GET_ST argument after the call.
///
/// ```
/// use tph_abi::{decode_tags, encode_st, TphEntry, OP_GET_ST};
/// let b = encode_st(OP_GET_ST, &[TphEntry { cpu: 7, st: 0x44, ..Default::default() }]).unwrap();
/// assert_eq!(decode_tags(&b, 1).unwrap(), vec![0x44]);
/// ```
pub fn decode_tags(buf: &[u8], count: usize) -> Result<Vec<u16>, AbiError> {
    if count > MAX_ENTRIES {
        return Err(AbiError::BadCount(count));
    }
    Ok(decode_entries(buf, count)?.iter().map(|e| e.st).collect())
}

/// Reads `count` entries from a GET_ST/SET_ST argument after the call.
///
/// ```
/// use tph_abi::{decode_entries, encode_st, TphEntry, OP_GET_ST};
/// let e = TphEntry { cpu: 7, st: 0x44, ..Default::default() };
/// let b = encode_st(OP_GET_ST, &[e]).unwrap();
/// assert_eq!(decode_entries(&b, 1).unwrap(), vec![e]);
/// ```
pub fn decode_entries(buf: &[u8], count: usize) -> Result<Vec<TphEntry>, AbiError> {
    if count > MAX_ENTRIES {
        return Err(AbiError::BadCount(count));
    }
    let short = || AbiError::Short {
        len: buf.len(),
        need: OP_HEADER_SIZE + count * ENTRY_SIZE,
    };
    let (entries, _) = buf.get(OP_HEADER_SIZE..).ok_or_else(short)?.as_chunks();
    let entries = entries.get(..count).ok_or_else(short)?;
    Ok(entries.iter().map(TphEntry::from_array).collect())
}

/// Reads the GET_CAP payload from a GET_CAP argument after the call.
///
/// ```
/// let mut b = tph_abi::encode_get_cap();
/// b[8] = 1;
/// b[10] = 64;
/// assert_eq!(tph_abi::decode_cap(&b).unwrap().st_table_sz, 64);
/// ```
pub fn decode_cap(buf: &[u8]) -> Result<TphCap, AbiError> {
    let [_, _, _, _, _, _, _, _, cap @ ..] = *prefix::<OP_HEADER_SIZE>(buf)?;
    TphCap::from_bytes(&cap)
}

/// Little-endian `u32` at `at` in `b`; [`AbiError::Short`] when `b` ends before its last byte.
///
/// ```
/// use tph_abi::{le32, AbiError};
/// assert_eq!(le32(&[1, 2, 3, 4], 0), Ok(0x0403_0201));
/// assert_eq!(le32(&[1, 2], 0), Err(AbiError::Short { len: 2, need: 4 }));
/// ```
pub fn le32(b: &[u8], at: usize) -> Result<u32, AbiError> {
    b.get(at..)
        .and_then(<[u8]>::first_chunk::<4>)
        .map(|w| u32::from_le_bytes(*w))
        .ok_or(AbiError::Short {
            len: b.len(),
            need: at.saturating_add(4),
        })
}

impl TphEntry {
    /// An entry for SET_ST/GET_ST input: `cpu`, `mem_type`, `index`, everything else 0.
    ///
    /// ```
    /// let e = tph_abi::TphEntry::new(3, 1, 5);
    /// assert_eq!((e.cpu, e.mem_type, e.index, e.st), (3, 1, 5, 0));
    /// ```
    pub fn new(cpu: u32, mem_type: u8, index: u16) -> Self {
        Self {
            cpu,
            mem_type,
            index,
            ..Self::default()
        }
    }
}

/// The 16-byte argument of an op without entries (GET_CAP, ENABLE, DISABLE) with a raw payload:
/// for building any op code, valid or not (tests, fuzzers, the kernel model's own checks).
///
/// ```
/// let b = tph_abi::encode_op(9, [1, 2, 3, 4, 5, 6, 7, 8]);
/// assert_eq!(&b[..9], &[16, 0, 0, 0, 9, 0, 0, 0, 1]);
/// ```
pub fn encode_op(op: u32, payload: [u8; 8]) -> Vec<u8> {
    head(op, OP_HEADER_SIZE, payload).to_vec()
}

/// A GET_ST/SET_ST argument with any number of `entries`, 0 and more than 2048 included (the
/// kernel is the one that refuses them; [`encode_st`] is the checked form a client uses).
///
/// ```
/// use tph_abi::{encode_st_raw, OP_SET_ST};
/// let b = encode_st_raw(OP_SET_ST, &[]);
/// assert_eq!((b.len(), b[8]), (16, 0));
/// ```
pub fn encode_st_raw(op: u32, entries: &[TphEntry]) -> Vec<u8> {
    let count = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    let mut payload = [0u8; 8];
    payload[0..4].copy_from_slice(&count.to_le_bytes());
    let argsz = OP_HEADER_SIZE + entries.len() * ENTRY_SIZE;
    let mut buf = Vec::with_capacity(argsz);
    buf.extend_from_slice(&head(op, argsz, payload));
    for e in entries {
        buf.extend_from_slice(&e.to_bytes());
    }
    buf
}

/// The argument of `VFIO_DEVICE_FEATURE` for TPH_ST: `direction` ([`FEATURE_GET`] or
/// [`FEATURE_SET`], with or without [`FEATURE_PROBE`]), payload `st_flags`, first `index`, and
/// `data` (CPU ids); `argsz` covers it all. `count` is `data.len()` (saturating at `u16::MAX`).
///
/// ```
/// use tph_abi::{encode_feature_st, FEATURE_SET};
/// let b = encode_feature_st(FEATURE_SET, 1, 0x0203, &[0x0a0b_0c0d]);
/// assert_eq!(b.len(), 20);
/// assert_eq!(&b[12..16], &[3, 2, 1, 0]);
/// ```
pub fn encode_feature_st(direction: u32, st_flags: u32, index: u16, data: &[u32]) -> Vec<u8> {
    encode_feature_st_with(FEATURE_TPH_ST, direction, st_flags, index, data)
}

/// [`encode_feature_st`] for a feature number other than the default [`FEATURE_TPH_ST`] (a
/// kernel that numbered the feature differently; the client confirms it with PROBE first).
pub fn encode_feature_st_with(
    feature: u32,
    direction: u32,
    st_flags: u32,
    index: u16,
    data: &[u32],
) -> Vec<u8> {
    let argsz = FEATURE_HEAD_SIZE + TPH_ST_HEAD_SIZE + 4 * data.len();
    let count = u16::try_from(data.len()).unwrap_or(u16::MAX);
    let mut v = Vec::with_capacity(argsz);
    let argsz = u32::try_from(argsz).unwrap_or(u32::MAX);
    v.extend_from_slice(&argsz.to_le_bytes());
    v.extend_from_slice(&(direction | (feature & FEATURE_MASK)).to_le_bytes());
    v.extend_from_slice(&st_flags.to_le_bytes());
    v.extend_from_slice(&index.to_le_bytes());
    v.extend_from_slice(&count.to_le_bytes());
    for d in data {
        v.extend_from_slice(&d.to_le_bytes());
    }
    v
}

/// The `data[]` words of a TPH_ST feature argument (the tags after a GET): every whole word
/// after the 16-byte head. [`AbiError::Short`] when `arg` ends inside the head or inside a word.
///
/// ```
/// use tph_abi::{encode_feature_st, feature_st_data, AbiError, FEATURE_GET};
/// let b = encode_feature_st(FEATURE_GET, 0, 0, &[7, 9]);
/// assert_eq!(feature_st_data(&b), Ok(vec![7, 9]));
/// assert_eq!(feature_st_data(&b[..22]), Err(AbiError::Short { len: 22, need: 24 }));
/// ```
pub fn feature_st_data(arg: &[u8]) -> Result<Vec<u32>, AbiError> {
    let head = TPH_ST_DATA_OFFSET as usize;
    let data = arg.get(head..).ok_or(AbiError::Short {
        len: arg.len(),
        need: head,
    })?;
    let (words, rest) = data.as_chunks::<4>();
    if !rest.is_empty() {
        return Err(AbiError::Short {
            len: arg.len(),
            need: arg.len() + 4 - rest.len(),
        });
    }
    Ok(words.iter().map(|w| u32::from_le_bytes(*w)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ioctl_numbers_match_spec() {
        assert_eq!(VFIO_DEVICE_PCI_TPH, 0x3B7A);
        assert_eq!(VFIO_DEVICE_SET_IRQS, 0x3B6E);
        assert_eq!(VFIO_DEVICE_RESET, 0x3B6F);
        assert_eq!(VFIO_DEVICE_FEATURE, 0x3B75);
    }

    #[test]
    fn struct_sizes_and_offsets_match_spec_tables() {
        assert_eq!(size_of::<TphOp>(), 16);
        assert_eq!(size_of::<TphCap>(), 8);
        assert_eq!(size_of::<TphCtrl>(), 8);
        assert_eq!(size_of::<TphSt>(), 8);
        assert_eq!(size_of::<TphEntry>(), 12);
        assert_eq!(offset_of!(TphEntry, index), 6);
        assert_eq!(offset_of!(TphEntry, st), 8);
        assert_eq!(offset_of!(TphCap, st_table_sz), 2);
        assert_eq!(MAX_ARG_SIZE, 24_592);
    }

    #[test]
    fn encode_st_full_batch_has_spec_size() {
        let entries = vec![TphEntry::default(); MAX_ENTRIES];
        let buf = encode_st(OP_SET_ST, &entries).unwrap();
        assert_eq!(buf.len(), 24_592);
        assert_eq!(le32(&buf, 0), Ok(24_592));
        assert_eq!(le32(&buf, 8), Ok(2048));
    }

    #[test]
    fn encode_st_over_cap_is_refused() {
        let entries = vec![TphEntry::default(); MAX_ENTRIES + 1];
        assert_eq!(
            encode_st(OP_GET_ST, &entries),
            Err(AbiError::BadCount(2049))
        );
    }

    #[test]
    fn entry_bytes_place_every_field_at_its_offset() {
        let e = TphEntry {
            cpu: 0x0403_0201,
            mem_type: 5,
            reserved0: 6,
            index: 0x0807,
            st: 0x0a09,
            reserved1: 0x0c0b,
        };
        assert_eq!(e.to_bytes(), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        assert_eq!(TphEntry::from_bytes(&e.to_bytes()), Ok(e));
    }

    #[test]
    fn decode_entries_short_buffer_is_error() {
        let buf = encode_get_cap();
        assert_eq!(
            decode_entries(&buf, 1),
            Err(AbiError::Short { len: 16, need: 28 })
        );
    }

    #[test]
    fn feature_st_layout_matches_spec_table() {
        let b = encode_feature_st(FEATURE_SET, 1, 0x0203, &[0x0a0b_0c0d]);
        assert_eq!(b.len(), 20);
        assert_eq!(le32(&b, 0), Ok(20));
        assert_eq!(le32(&b, 4), Ok(FEATURE_SET | 13));
        assert_eq!(le32(&b, 8), Ok(1)); // flags: persistent memory
        assert_eq!(&b[12..16], &[3, 2, 1, 0]); // index 0x0203, count 1
        assert_eq!(feature_st_data(&b), Ok(vec![0x0a0b_0c0d]));
        assert_eq!(TPH_ST_DATA_OFFSET, 16);
    }

    #[test]
    fn raw_st_and_checked_st_agree_where_both_apply() {
        let e = [TphEntry::new(1, 0, 2), TphEntry::new(3, 1, 4)];
        assert_eq!(
            encode_st(OP_SET_ST, &e).unwrap(),
            encode_st_raw(OP_SET_ST, &e)
        );
        assert_eq!(PAYLOAD_OFFSET, 8);
        assert_eq!(ENTS_OFFSET, 16);
        assert_eq!(ENTRY_ST_OFFSET, 8);
    }

    /// Short input is an error naming how many bytes were needed, never zeros made up for the
    /// missing bytes.
    #[test]
    fn short_input_is_an_error_not_zero_filled() {
        let full = TphEntry::new(0x0102_0304, 1, 9).to_bytes();
        assert_eq!(
            TphEntry::from_bytes(&full),
            Ok(TphEntry::new(0x0102_0304, 1, 9))
        );
        assert_eq!(
            TphEntry::from_bytes(&full[..5]),
            Err(AbiError::Short { len: 5, need: 12 })
        );
        assert_eq!(
            le32(&[1, 2, 3], 0),
            Err(AbiError::Short { len: 3, need: 4 })
        );
        assert_eq!(
            le32(&[1, 2, 3, 4, 5], 2),
            Err(AbiError::Short { len: 5, need: 6 })
        );
        assert_eq!(
            le32(&[1, 2, 3, 4], usize::MAX),
            Err(AbiError::Short {
                len: 4,
                need: usize::MAX
            })
        );
        assert_eq!(le32(&[0, 1, 2, 3, 4], 1), Ok(0x0403_0201));
        assert_eq!(
            TphCap::from_bytes(&[1, 0, 8]),
            Err(AbiError::Short { len: 3, need: 8 })
        );
        assert_eq!(
            TphOp::from_bytes(&[16, 0, 0, 0, 0, 0, 0, 0]),
            Err(AbiError::Short { len: 8, need: 16 })
        );
        // A GET_CAP answer cut inside its payload: the whole 16 bytes are needed.
        let cap = encode_get_cap();
        assert_eq!(
            decode_cap(&cap[..12]),
            Err(AbiError::Short { len: 12, need: 16 })
        );
        let b = encode_feature_st(FEATURE_GET, 0, 0, &[7, 9]);
        assert_eq!(
            feature_st_data(&b[..21]),
            Err(AbiError::Short { len: 21, need: 24 })
        );
        assert_eq!(
            feature_st_data(&b[..15]),
            Err(AbiError::Short { len: 15, need: 16 })
        );
        assert_eq!(feature_st_data(&b[..16]), Ok(vec![]));
        let st = encode_st(OP_GET_ST, &[TphEntry::new(1, 0, 0); 2]).unwrap();
        assert_eq!(
            decode_tags(&st[..39], 2),
            Err(AbiError::Short { len: 39, need: 40 })
        );
        assert_eq!(decode_tags(&st, 2), Ok(vec![0, 0]));
    }
}
