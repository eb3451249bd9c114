//! Reference model of the kernel side of VFIO PCIe TPH (v7): emulated PCIe hardware (`hw`),
//! the PCI TPH core (`core`), and the VFIO layer with the `VFIO_DEVICE_PCI_TPH` ioctl (`vfio`).
#![forbid(unsafe_code)]
