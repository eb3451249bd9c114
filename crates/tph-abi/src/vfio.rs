//! The VFIO requests around the TPH calls: opening a device (legacy container and group, or the
//! device cdev bound to an iommufd), regions, MSI-X set-up and reset.
//!
//! Every request number the project issues or answers is a [`Request`] (a closed set: nothing
//! else can be passed to the client's syscall wrappers). Numbers are `_IO(';', 100 + n)`; the
//! iommufd commands share the `';'` type and start at 0x80.
//!
//! ```
//! use tph_abi::vfio::Request;
//! assert_eq!(Request::DeviceSetIrqs.number(), 0x3B6E);
//! assert_eq!(Request::from_number(0x3B7A), Some(Request::DevicePciTph));
//! ```

use std::mem::{offset_of, size_of};
use vfio_bindings::bindings::vfio as vb;

use crate::{io, VFIO_BASE, VFIO_TYPE};

const fn vfio(n: u8) -> u32 {
    io(VFIO_TYPE, VFIO_BASE + n)
}

macro_rules! requests {
    ($($(#[$doc:meta])* $name:ident = $num:expr,)*) => {
        /// A VFIO or iommufd ioctl request (see the module docs).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum Request {
            $($(#[$doc])* $name,)*
        }

        impl Request {
            /// Every request, in number order within each family.
            pub const ALL: &'static [Request] = &[$(Request::$name,)*];

            /// The ioctl request number.
            pub const fn number(self) -> u32 {
                match self {
                    $(Request::$name => $num,)*
                }
            }
        }
    };
}

requests! {
    /// `VFIO_GET_API_VERSION` (container): answers `VFIO_API_VERSION` (0).
    GetApiVersion = vfio(0),
    /// `VFIO_CHECK_EXTENSION` (container): is an IOMMU type available (argument: the type).
    CheckExtension = vfio(1),
    /// `VFIO_SET_IOMMU` (container): choose the IOMMU type (argument: the type).
    SetIommu = vfio(2),
    /// `VFIO_GROUP_GET_STATUS` (group): `struct vfio_group_status`.
    GroupGetStatus = vfio(3),
    /// `VFIO_GROUP_SET_CONTAINER` (group): pointer to the container fd.
    GroupSetContainer = vfio(4),
    /// `VFIO_GROUP_UNSET_CONTAINER` (group).
    GroupUnsetContainer = vfio(5),
    /// `VFIO_GROUP_GET_DEVICE_FD` (group): pointer to the device name; answers a new fd.
    GroupGetDeviceFd = vfio(6),
    /// `VFIO_DEVICE_GET_INFO`: `struct vfio_device_info`.
    DeviceGetInfo = vfio(7),
    /// `VFIO_DEVICE_GET_REGION_INFO`: [`RegionInfo`].
    DeviceGetRegionInfo = vfio(8),
    /// `VFIO_DEVICE_GET_IRQ_INFO`: `struct vfio_irq_info`.
    DeviceGetIrqInfo = vfio(9),
    /// `VFIO_DEVICE_SET_IRQS`: [`encode_msix_irq_set`].
    DeviceSetIrqs = vfio(10),
    /// `VFIO_DEVICE_RESET`: no argument.
    DeviceReset = vfio(11),
    /// `VFIO_IOMMU_GET_INFO` (type1 container): `struct vfio_iommu_type1_info` and its
    /// capability chain.
    IommuGetInfo = vfio(12),
    /// `VFIO_IOMMU_MAP_DMA` (type1 container): `struct vfio_iommu_type1_dma_map`.
    IommuMapDma = vfio(13),
    /// `VFIO_IOMMU_UNMAP_DMA` (type1 container): `struct vfio_iommu_type1_dma_unmap`.
    IommuUnmapDma = vfio(14),
    /// `VFIO_DEVICE_FEATURE`: the feature revision's TPH_ST calls.
    DeviceFeature = vfio(17),
    /// `VFIO_DEVICE_BIND_IOMMUFD` (device cdev): [`BindIommufd`].
    DeviceBindIommufd = vfio(18),
    /// `VFIO_DEVICE_ATTACH_IOMMUFD_PT` (device cdev): [`AttachIommufdPt`].
    DeviceAttachIommufdPt = vfio(19),
    /// `VFIO_DEVICE_DETACH_IOMMUFD_PT` (device cdev).
    DeviceDetachIommufdPt = vfio(20),
    /// `VFIO_DEVICE_PCI_TPH`: the v7 TPH ioctl.
    DevicePciTph = vfio(22),
    /// `IOMMU_DESTROY` (iommufd): destroy an object by id.
    IommuDestroy = io(VFIO_TYPE, 0x80),
    /// `IOMMU_IOAS_ALLOC` (iommufd): [`IoasAlloc`].
    IommuIoasAlloc = io(VFIO_TYPE, 0x81),
    /// `IOMMU_IOAS_MAP` (iommufd): `struct iommu_ioas_map`.
    IommuIoasMap = io(VFIO_TYPE, 0x85),
    /// `IOMMU_IOAS_UNMAP` (iommufd): `struct iommu_ioas_unmap`.
    IommuIoasUnmap = io(VFIO_TYPE, 0x86),
}

impl Request {
    /// The request with this number, if it is one of [`Request::ALL`].
    pub fn from_number(n: u32) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.number() == n)
    }
}

/// `VFIO_API_VERSION`.
pub const API_VERSION: i32 = vb::VFIO_API_VERSION as i32;
/// `VFIO_TYPE1_IOMMU`.
pub const TYPE1_IOMMU: u32 = vb::VFIO_TYPE1_IOMMU;
/// `VFIO_TYPE1v2_IOMMU`.
pub const TYPE1V2_IOMMU: u32 = vb::VFIO_TYPE1v2_IOMMU;
/// `VFIO_GROUP_FLAGS_VIABLE`: every device of the group is bound to vfio (or to no driver).
pub const GROUP_FLAGS_VIABLE: u32 = vb::VFIO_GROUP_FLAGS_VIABLE;
/// `VFIO_GROUP_FLAGS_CONTAINER_SET`.
pub const GROUP_FLAGS_CONTAINER_SET: u32 = vb::VFIO_GROUP_FLAGS_CONTAINER_SET;

/// `VFIO_PCI_CONFIG_REGION_INDEX`.
pub const CONFIG_REGION_INDEX: u32 = vb::VFIO_PCI_CONFIG_REGION_INDEX;
/// `VFIO_PCI_MSIX_IRQ_INDEX`.
pub const MSIX_IRQ_INDEX: u32 = vb::VFIO_PCI_MSIX_IRQ_INDEX;
/// `VFIO_IRQ_SET_DATA_NONE`.
pub const IRQ_SET_DATA_NONE: u32 = vb::VFIO_IRQ_SET_DATA_NONE;
/// `VFIO_IRQ_SET_DATA_BOOL`.
pub const IRQ_SET_DATA_BOOL: u32 = vb::VFIO_IRQ_SET_DATA_BOOL;
/// `VFIO_IRQ_SET_DATA_EVENTFD`.
pub const IRQ_SET_DATA_EVENTFD: u32 = vb::VFIO_IRQ_SET_DATA_EVENTFD;
/// `VFIO_IRQ_SET_ACTION_TRIGGER`.
pub const IRQ_SET_ACTION_TRIGGER: u32 = vb::VFIO_IRQ_SET_ACTION_TRIGGER;
/// `VFIO_IRQ_SET_ACTION_MASK`.
pub const IRQ_SET_ACTION_MASK: u32 = vb::VFIO_IRQ_SET_ACTION_MASK;
/// `VFIO_IRQ_SET_ACTION_UNMASK`.
pub const IRQ_SET_ACTION_UNMASK: u32 = vb::VFIO_IRQ_SET_ACTION_UNMASK;
/// `VFIO_IRQ_SET_DATA_TYPE_MASK`.
pub const IRQ_SET_DATA_TYPE_MASK: u32 = vb::VFIO_IRQ_SET_DATA_TYPE_MASK;
/// `VFIO_IRQ_SET_ACTION_TYPE_MASK`.
pub const IRQ_SET_ACTION_TYPE_MASK: u32 = vb::VFIO_IRQ_SET_ACTION_TYPE_MASK;
/// `VFIO_PCI_INTX_IRQ_INDEX`.
pub const INTX_IRQ_INDEX: u32 = vb::VFIO_PCI_INTX_IRQ_INDEX;
/// `VFIO_PCI_MSI_IRQ_INDEX`.
pub const MSI_IRQ_INDEX: u32 = vb::VFIO_PCI_MSI_IRQ_INDEX;
/// `VFIO_PCI_ERR_IRQ_INDEX`.
pub const ERR_IRQ_INDEX: u32 = vb::VFIO_PCI_ERR_IRQ_INDEX;
/// `VFIO_PCI_REQ_IRQ_INDEX`.
pub const REQ_IRQ_INDEX: u32 = vb::VFIO_PCI_REQ_IRQ_INDEX;
/// `VFIO_PCI_NUM_IRQS`.
pub const NUM_IRQS: u32 = vb::VFIO_PCI_NUM_IRQS;
/// `VFIO_IRQ_INFO_EVENTFD`.
pub const IRQ_INFO_EVENTFD: u32 = vb::VFIO_IRQ_INFO_EVENTFD;
/// `VFIO_IRQ_INFO_MASKABLE`.
pub const IRQ_INFO_MASKABLE: u32 = vb::VFIO_IRQ_INFO_MASKABLE;
/// `VFIO_IRQ_INFO_AUTOMASKED`.
pub const IRQ_INFO_AUTOMASKED: u32 = vb::VFIO_IRQ_INFO_AUTOMASKED;
/// `VFIO_IRQ_INFO_NORESIZE`: the index's vector count cannot change while it is enabled
/// (disable, then enable the new count).
pub const IRQ_INFO_NORESIZE: u32 = vb::VFIO_IRQ_INFO_NORESIZE;
/// `sizeof(struct vfio_irq_info)` (`argsz`, `flags`, `index`, `count`).
pub const IRQ_INFO_SIZE: usize = 16;
/// `sizeof(struct vfio_irq_set)` without its data (`argsz`, `flags`, `index`, `start`, `count`).
pub const IRQ_SET_HEADER_SIZE: usize = size_of::<IrqSet>();
/// `VFIO_REGION_INFO_FLAG_READ`.
pub const REGION_INFO_FLAG_READ: u32 = vb::VFIO_REGION_INFO_FLAG_READ;
/// `VFIO_REGION_INFO_FLAG_WRITE`.
pub const REGION_INFO_FLAG_WRITE: u32 = vb::VFIO_REGION_INFO_FLAG_WRITE;

/// `struct vfio_irq_set` without its variable data.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IrqSet {
    /// Bytes the caller provides, data included.
    pub argsz: u32,
    /// `IRQ_SET_DATA_*` | `IRQ_SET_ACTION_*`.
    pub flags: u32,
    /// IRQ index ([`MSIX_IRQ_INDEX`]).
    pub index: u32,
    /// First vector.
    pub start: u32,
    /// Number of vectors (0 with `DATA_NONE | ACTION_TRIGGER` disables the index).
    pub count: u32,
}

impl IrqSet {
    /// Reads the head from the start of `b` (`None` when `b` is shorter).
    ///
    /// ```
    /// let b = tph_abi::vfio::encode_msix_irq_set(&[4, 5]);
    /// let s = tph_abi::vfio::IrqSet::from_bytes(&b).unwrap();
    /// assert_eq!((s.argsz, s.index, s.start, s.count), (28, 2, 0, 2));
    /// ```
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let [argsz, flags, index, start, count] = le_words(b)?;
        Some(Self {
            argsz,
            flags,
            index,
            start,
            count,
        })
    }

    /// The 20 little-endian bytes of this head.
    pub fn to_bytes(&self) -> [u8; IRQ_SET_HEADER_SIZE] {
        let mut b = [0u8; IRQ_SET_HEADER_SIZE];
        let words = [self.argsz, self.flags, self.index, self.start, self.count];
        for (chunk, w) in b.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        b
    }
}

/// `struct vfio_irq_set` for MSI-X: eventfd triggers for vectors `start..start + fds.len()`, or
/// (no fds) disable MSI-X.
///
/// ```
/// let b = tph_abi::vfio::encode_msix_irq_set(&[]);
/// assert_eq!(b.len(), 20);
/// ```
pub fn encode_msix_irq_set(fds: &[i32]) -> Vec<u8> {
    encode_msix_irq_set_at(0, fds)
}

/// [`encode_msix_irq_set`] starting at vector `start` (an in-place update of some vectors).
pub fn encode_msix_irq_set_at(start: u32, fds: &[i32]) -> Vec<u8> {
    let argsz = IRQ_SET_HEADER_SIZE + 4 * fds.len();
    let flags = if fds.is_empty() {
        IRQ_SET_DATA_NONE | IRQ_SET_ACTION_TRIGGER
    } else {
        IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER
    };
    let head = IrqSet {
        argsz: u32::try_from(argsz).unwrap_or(u32::MAX),
        flags,
        index: MSIX_IRQ_INDEX,
        start: if fds.is_empty() { 0 } else { start },
        count: u32::try_from(fds.len()).unwrap_or(u32::MAX),
    };
    let mut b = Vec::with_capacity(argsz);
    b.extend_from_slice(&head.to_bytes());
    for fd in fds {
        b.extend_from_slice(&fd.to_le_bytes());
    }
    b
}

/// Reads `count` from an encoded `vfio_irq_set` when it targets MSI-X (0 when it disables).
///
/// ```
/// let b = tph_abi::vfio::encode_msix_irq_set(&[5, 6, 7]);
/// assert_eq!(tph_abi::vfio::decode_msix_irq_count(&b), Some(3));
/// ```
pub fn decode_msix_irq_count(b: &[u8]) -> Option<u32> {
    let s = IrqSet::from_bytes(b)?;
    if s.index != MSIX_IRQ_INDEX {
        return None;
    }
    Some(if s.flags & IRQ_SET_DATA_NONE != 0 {
        0
    } else {
        s.count
    })
}

/// `struct vfio_irq_info`: what `VFIO_DEVICE_GET_IRQ_INFO` answers for one IRQ index.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IrqInfo {
    /// Bytes the caller provides.
    pub argsz: u32,
    /// `IRQ_INFO_*`.
    pub flags: u32,
    /// IRQ index (in).
    pub index: u32,
    /// Vectors the index has.
    pub count: u32,
}

impl IrqInfo {
    /// The query for IRQ index `index`: `argsz` set, everything else 0.
    pub fn query(index: u32) -> Self {
        Self {
            argsz: IRQ_INFO_SIZE as u32,
            index,
            ..Self::default()
        }
    }

    /// The 16 little-endian bytes.
    ///
    /// ```
    /// use tph_abi::vfio::IrqInfo;
    /// let b = IrqInfo::query(2).to_bytes();
    /// assert_eq!(IrqInfo::from_bytes(&b), Some(IrqInfo::query(2)));
    /// ```
    pub fn to_bytes(&self) -> [u8; IRQ_INFO_SIZE] {
        let mut b = [0u8; IRQ_INFO_SIZE];
        let words = [self.argsz, self.flags, self.index, self.count];
        for (chunk, w) in b.chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// Reads it from the start of `b` (`None` when `b` is shorter).
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let [argsz, flags, index, count] = le_words(b)?;
        Some(Self {
            argsz,
            flags,
            index,
            count,
        })
    }

    /// Whether the index's vector count cannot change while it is enabled
    /// ([`IRQ_INFO_NORESIZE`]).
    pub fn noresize(&self) -> bool {
        self.flags & IRQ_INFO_NORESIZE != 0
    }
}

/// `struct vfio_region_info` (without capabilities).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RegionInfo {
    /// Bytes the caller provides.
    pub argsz: u32,
    /// `REGION_INFO_FLAG_*`.
    pub flags: u32,
    /// Region index (in).
    pub index: u32,
    /// Offset of the first capability, 0 for none.
    pub cap_offset: u32,
    /// Region size in bytes.
    pub size: u64,
    /// Offset of the region within the device fd (for `pread`/`pwrite`/`mmap`).
    pub offset: u64,
}

/// `sizeof(struct vfio_region_info)`.
pub const REGION_INFO_SIZE: usize = size_of::<RegionInfo>();

impl RegionInfo {
    /// The query for region `index`: `argsz` set, everything else 0.
    pub fn query(index: u32) -> Self {
        Self {
            argsz: REGION_INFO_SIZE as u32,
            index,
            ..Self::default()
        }
    }

    /// The 32 little-endian bytes.
    ///
    /// ```
    /// use tph_abi::vfio::RegionInfo;
    /// let b = RegionInfo::query(7).to_bytes();
    /// assert_eq!(RegionInfo::from_bytes(&b), Some(RegionInfo::query(7)));
    /// ```
    pub fn to_bytes(&self) -> [u8; REGION_INFO_SIZE] {
        let mut b = [0u8; REGION_INFO_SIZE];
        let words = [self.argsz, self.flags, self.index, self.cap_offset];
        for (chunk, w) in b[..16].chunks_exact_mut(4).zip(words) {
            chunk.copy_from_slice(&w.to_le_bytes());
        }
        b[16..24].copy_from_slice(&self.size.to_le_bytes());
        b[24..32].copy_from_slice(&self.offset.to_le_bytes());
        b
    }

    /// Reads it from the start of `b` (`None` when shorter than 32 bytes).
    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        let [argsz, flags, index, cap_offset, s0, s1, o0, o1] = le_words(b)?;
        let q = |lo: u32, hi: u32| u64::from(lo) | u64::from(hi) << 32;
        Some(Self {
            argsz,
            flags,
            index,
            cap_offset,
            size: q(s0, s1),
            offset: q(o0, o1),
        })
    }
}

/// `struct vfio_group_status`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct GroupStatus {
    /// Bytes the caller provides (8).
    pub argsz: u32,
    /// `GROUP_FLAGS_*`.
    pub flags: u32,
}

/// `struct vfio_device_bind_iommufd`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BindIommufd {
    /// Bytes the caller provides (16).
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// The iommufd to bind to.
    pub iommufd: i32,
    /// Out: the device's id in that iommufd.
    pub out_devid: u32,
}

/// `struct vfio_device_attach_iommufd_pt`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttachIommufdPt {
    /// Bytes the caller provides (12).
    pub argsz: u32,
    /// Must be 0.
    pub flags: u32,
    /// The IOAS or HWPT to attach to.
    pub pt_id: u32,
}

/// `struct iommu_ioas_alloc`.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct IoasAlloc {
    /// Bytes the caller provides (12).
    pub size: u32,
    /// Must be 0.
    pub flags: u32,
    /// Out: the new IOAS id.
    pub out_ioas_id: u32,
}

/// The first `W` little-endian 32-bit words of `b` (`None` when `b` is shorter).
fn le_words<const W: usize>(b: &[u8]) -> Option<[u32; W]> {
    let (words, _) = b.as_chunks::<4>();
    Some(words.first_chunk::<W>()?.map(u32::from_le_bytes))
}

/// Byte encoding of the structs made of 32-bit words only.
macro_rules! word_struct {
    ($ty:ident { $($field:ident: $fty:ty),* }) => {
        impl $ty {
            /// The little-endian bytes of every field, in order.
            pub fn to_bytes(&self) -> Vec<u8> {
                let mut b = Vec::with_capacity(size_of::<Self>());
                $(b.extend_from_slice(&self.$field.to_le_bytes());)*
                b
            }

            /// Reads every field from the start of `b` (`None` when `b` is shorter).
            pub fn from_bytes(b: &[u8]) -> Option<Self> {
                let [$($field),*] = le_words(b)?;
                Some(Self { $($field: $field as $fty),* })
            }
        }
    };
}

word_struct!(GroupStatus {
    argsz: u32,
    flags: u32
});
word_struct!(BindIommufd {
    argsz: u32,
    flags: u32,
    iommufd: i32,
    out_devid: u32
});
word_struct!(AttachIommufdPt {
    argsz: u32,
    flags: u32,
    pt_id: u32
});
word_struct!(IoasAlloc {
    size: u32,
    flags: u32,
    out_ioas_id: u32
});

impl GroupStatus {
    /// The query: `argsz` set, flags 0.
    pub fn query() -> Self {
        Self {
            argsz: size_of::<Self>() as u32,
            flags: 0,
        }
    }
}

impl IoasAlloc {
    /// The query: `size` set, everything else 0.
    pub fn query() -> Self {
        Self {
            size: size_of::<Self>() as u32,
            ..Self::default()
        }
    }
}

impl BindIommufd {
    /// Binding to `iommufd`.
    pub fn to(iommufd: i32) -> Self {
        Self {
            argsz: size_of::<Self>() as u32,
            iommufd,
            ..Self::default()
        }
    }
}

impl AttachIommufdPt {
    /// Attaching to IOAS or HWPT `pt_id`.
    pub fn to(pt_id: u32) -> Self {
        Self {
            argsz: size_of::<Self>() as u32,
            flags: 0,
            pt_id,
        }
    }
}

// Layout pins (linux/vfio.h, linux/iommufd.h).
const _: () = {
    assert!(size_of::<IrqSet>() == 20);
    assert!(offset_of!(IrqSet, start) == 12);
    assert!(size_of::<RegionInfo>() == 32);
    assert!(offset_of!(RegionInfo, size) == 16);
    assert!(offset_of!(RegionInfo, offset) == 24);
    assert!(size_of::<GroupStatus>() == 8);
    assert!(size_of::<BindIommufd>() == 16);
    assert!(offset_of!(BindIommufd, out_devid) == 12);
    assert!(size_of::<AttachIommufdPt>() == 12);
    assert!(size_of::<IoasAlloc>() == 12);
};

#[cfg(test)]
mod tests {
    use super::*;

    /// The generic VFIO structures have the layout of rust-vmm's `vfio-bindings` (generated
    /// from the kernel's UAPI header): the same field offsets, and a size that is the whole
    /// struct or, for the two iommufd calls that grew since (`token_uuid_ptr`, `pasid`), the
    /// kernel's `minsz` (it accepts that `argsz` from older callers).
    #[test]
    fn layouts_match_vfio_bindings() {
        macro_rules! same_offsets {
            ($ours:ty, $theirs:ty, $($f:ident),+) => {
                $(assert_eq!(
                    offset_of!($ours, $f),
                    offset_of!($theirs, $f),
                    concat!(stringify!($ours), ".", stringify!($f))
                );)+
            };
        }
        same_offsets!(
            RegionInfo,
            vb::vfio_region_info,
            argsz,
            flags,
            index,
            cap_offset,
            size,
            offset
        );
        same_offsets!(GroupStatus, vb::vfio_group_status, argsz, flags);
        same_offsets!(IrqSet, vb::vfio_irq_set, argsz, flags, index, start, count);
        same_offsets!(
            BindIommufd,
            vb::vfio_device_bind_iommufd,
            argsz,
            flags,
            iommufd,
            out_devid
        );
        same_offsets!(
            AttachIommufdPt,
            vb::vfio_device_attach_iommufd_pt,
            argsz,
            flags,
            pt_id
        );
        same_offsets!(crate::DeviceFeature, vb::vfio_device_feature, argsz, flags);
        assert_eq!(size_of::<RegionInfo>(), size_of::<vb::vfio_region_info>());
        assert_eq!(size_of::<GroupStatus>(), size_of::<vb::vfio_group_status>());
        assert_eq!(IRQ_SET_HEADER_SIZE, size_of::<vb::vfio_irq_set>());
        assert_eq!(
            crate::FEATURE_HEAD_SIZE,
            size_of::<vb::vfio_device_feature>()
        );
        assert_eq!(
            size_of::<BindIommufd>(),
            offset_of!(vb::vfio_device_bind_iommufd, token_uuid_ptr)
        );
        assert_eq!(
            size_of::<AttachIommufdPt>(),
            offset_of!(vb::vfio_device_attach_iommufd_pt, pasid)
        );
    }

    #[test]
    fn request_numbers_match_linux_vfio_h() {
        assert_eq!(Request::GetApiVersion.number(), 0x3B64);
        assert_eq!(Request::GroupGetDeviceFd.number(), 0x3B6A);
        assert_eq!(Request::DeviceGetRegionInfo.number(), 0x3B6C);
        assert_eq!(Request::DeviceSetIrqs.number(), 0x3B6E);
        assert_eq!(Request::DeviceReset.number(), 0x3B6F);
        assert_eq!(Request::DeviceFeature.number(), 0x3B75);
        assert_eq!(Request::DeviceBindIommufd.number(), 0x3B76);
        assert_eq!(Request::DevicePciTph.number(), 0x3B7A);
        assert_eq!(Request::IommuIoasAlloc.number(), 0x3B81);
        // linux/vfio.h: VFIO_BASE + 12, 13, 14; linux/iommufd.h: IOMMUFD_CMD_IOAS_MAP 0x85.
        assert_eq!(Request::IommuGetInfo.number(), 0x3B70);
        assert_eq!(Request::IommuMapDma.number(), 0x3B71);
        assert_eq!(Request::IommuUnmapDma.number(), 0x3B72);
        assert_eq!(Request::IommuIoasMap.number(), 0x3B85);
        assert_eq!(Request::IommuIoasUnmap.number(), 0x3B86);
    }

    #[test]
    fn request_numbers_are_distinct_and_round_trip() {
        for r in Request::ALL {
            assert_eq!(Request::from_number(r.number()), Some(*r));
        }
        assert_eq!(Request::from_number(0x3B7B), None);
    }

    #[test]
    fn irq_set_layout_is_vfio_irq_set() {
        let b = encode_msix_irq_set(&[10, 11]);
        assert_eq!(b.len(), 28);
        assert_eq!(&b[0..4], &28u32.to_le_bytes());
        assert_eq!(
            &b[4..8],
            &(IRQ_SET_DATA_EVENTFD | IRQ_SET_ACTION_TRIGGER).to_le_bytes()
        );
        assert_eq!(&b[8..12], &2u32.to_le_bytes());
        assert_eq!(&b[16..20], &2u32.to_le_bytes());
        assert_eq!(&b[20..24], &10i32.to_le_bytes());
    }

    #[test]
    fn irq_set_with_start_places_it_at_offset_12() {
        let b = encode_msix_irq_set_at(3, &[9]);
        assert_eq!(&b[12..16], &3u32.to_le_bytes());
    }

    #[test]
    fn irq_set_empty_decodes_as_disable() {
        assert_eq!(decode_msix_irq_count(&encode_msix_irq_set(&[])), Some(0));
    }

    #[test]
    fn word_structs_round_trip_and_place_fields_in_order() {
        let b = BindIommufd::to(9).to_bytes();
        assert_eq!(b, [16, 0, 0, 0, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(BindIommufd::from_bytes(&b), Some(BindIommufd::to(9)));
        assert_eq!(IoasAlloc::query().to_bytes().len(), 12);
        assert_eq!(
            GroupStatus::from_bytes(&[8, 0, 0, 0, 1, 0, 0, 0]).map(|g| g.flags),
            Some(1)
        );
        assert_eq!(AttachIommufdPt::from_bytes(&[0; 11]), None);
    }

    #[test]
    fn region_info_offset_field_at_24() {
        let info = RegionInfo {
            offset: 0x0700_0000_0000,
            ..RegionInfo::query(CONFIG_REGION_INDEX)
        };
        let b = info.to_bytes();
        assert_eq!(&b[24..32], &0x0700_0000_0000_u64.to_le_bytes());
        assert_eq!(RegionInfo::from_bytes(&b), Some(info));
    }
}
