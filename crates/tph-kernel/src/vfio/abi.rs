//! The kernel ABI the model accepts: the one definition in `tph-abi`, re-exported under the
//! path the VFIO layer uses (`docs/spec/vfio-tph-v7.md` section 1, `later-revisions.md`).

pub use tph_abi::vfio::{
    CONFIG_REGION_INDEX, ERR_IRQ_INDEX, INTX_IRQ_INDEX, IRQ_INFO_AUTOMASKED, IRQ_INFO_EVENTFD,
    IRQ_INFO_MASKABLE, IRQ_INFO_NORESIZE, IRQ_INFO_SIZE, IRQ_SET_ACTION_MASK,
    IRQ_SET_ACTION_TRIGGER, IRQ_SET_ACTION_TYPE_MASK, IRQ_SET_ACTION_UNMASK, IRQ_SET_DATA_BOOL,
    IRQ_SET_DATA_EVENTFD, IRQ_SET_DATA_NONE, IRQ_SET_DATA_TYPE_MASK, IRQ_SET_HEADER_SIZE,
    MSIX_IRQ_INDEX, MSI_IRQ_INDEX, NUM_IRQS, REQ_IRQ_INDEX,
};
/// `VFIO_DEVICE_GET_IRQ_INFO`.
pub const VFIO_DEVICE_GET_IRQ_INFO: u32 = tph_abi::vfio::Request::DeviceGetIrqInfo.number();
pub use tph_abi::*;
