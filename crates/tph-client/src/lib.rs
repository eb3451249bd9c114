//! Safe userspace API for VFIO PCIe TPH, over a real kernel or the emulated kernel model.
