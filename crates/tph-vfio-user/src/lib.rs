//! Serves one emulated PCIe function of the model (`tph_kernel::hw::Function`: configuration
//! space, the MSI-X table and PBA, FLR, the TPH Requester capability and its steering-tag
//! table) as a vfio-user device, so a real guest kernel under QEMU (`-device vfio-user-pci`)
//! drives the model's hardware with its own PCI TPH core. Built on rust-vmm's `vfio_user`
//! crate; a VMM that speaks vfio-user embeds it, `tphctl serve` wraps it.
//!
//! - [`Function`]: what is served, register by register; [`EmulatedFunction`] is the model's
//!   hardware as it is. A VMM serves its own view (e.g. `tph-vmm`'s virtual function in
//!   front of a host device) by implementing the trait; [`VmFunction`] is that view: the
//!   guest sees `tph-vmm`'s virtual TPH capability in front of a host function opened through
//!   `tph-client` (its tags name vCPUs; the host gets the pinned host CPUs' tags).
//! - [`Device`]: the vfio-user side: configuration space as region 7, the BARs that hold the
//!   MSI-X table and PBA, the client's eventfds from `SET_IRQS` (interrupts signalled on
//!   them, [`Handle::trigger_msix`]), DMA maps recorded, device reset as FLR, and a trace of
//!   every access with its effect in the vocabulary of `tphctl session --trace`.
//! - [`Server`]: the socket (a socket in use and a file that is not a socket are refused, a
//!   stale one replaced) and one session until the client leaves (a client that does not
//!   speak vfio-user 0.x is refused with [`Error::Protocol`]); when it ends, the function's
//!   [`Function::client_left`] runs, and a [`Stopper`] ends it from another thread.
//!
//! ```no_run
//! use tph_vfio_user::{Device, EmulatedFunction, Server};
//!
//! let machine = tph_kernel::machines::default_machine();
//! let function = EmulatedFunction::from_machine(&machine, "02:00.0".parse().unwrap()).unwrap();
//! let mut device = Device::new(function, Some(Box::new(std::io::stderr())));
//! let server = Server::bind("/tmp/tph.sock".as_ref()).unwrap();
//! // qemu-system-x86_64 ... -device '{"driver":"vfio-user-pci","socket":{"path":"/tmp/tph.sock","type":"unix"}}'
//! server.serve(&mut device).unwrap(); // returns when QEMU goes away
//! ```

mod backend;
mod error;
mod function;
pub mod layout;
mod server;
mod vm;

pub use backend::{Counters, Device, DmaMap, Handle};
pub use error::Error;
pub use function::{EmulatedFunction, Function};
pub use layout::Layout;
pub use server::{Server, Session, Stopper, VERSION_TIMEOUT};
pub use vm::{HostTrace, VmFunction};
