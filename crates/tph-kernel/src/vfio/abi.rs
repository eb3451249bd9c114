//! The kernel ABI the model accepts: the one definition in `tph-abi`, re-exported under the
//! path the VFIO layer uses (`docs/spec/vfio-tph-v7.md` section 1, `later-revisions.md`).

pub use tph_abi::vfio::{
    CONFIG_REGION_INDEX, IRQ_SET_ACTION_TRIGGER, IRQ_SET_DATA_EVENTFD, IRQ_SET_DATA_NONE,
    IRQ_SET_HEADER_SIZE, MSIX_IRQ_INDEX,
};
pub use tph_abi::*;
