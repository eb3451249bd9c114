//! Emulated PCIe hardware: a function whose configuration space, MSI-X table and TPH
//! capability honour register semantics declared as data, with a trace of every access and a
//! log of TPH spec violations.

pub mod config;
mod device;
pub use tph_regs::fields;
mod trace;

pub use device::{st_offset, Function, MsixLayout, TphLayout, TRACE_CAPACITY};
pub use trace::{Abort, Access, Effect, Violation};
