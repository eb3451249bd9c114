//! Firmware lookup as the kernel makes it (`firmware-dsm.md`; `drivers/pci/tph.c`
//! `tph_invoke_dsm`, `drivers/acpi/utils.c` `acpi_check_dsm`): the `_DSM` of the host bridge
//! above the device's root port, function 0's bitmap an Integer or a Buffer with bits 0 and
//! 15 both set, checked on every call. The firmware is `tests/data/two_segments.asl` (compiled
//! to `two_segments.aml`): four host bridges on three segments, each with its own method.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::sync::Arc;

use common::*;
use tph_acpi::{AmlSource, FirmwareError, HostBridgeId, MemType, SteeringTagSource};
use tph_kernel::machines::{self, spec, NS_IV_DS, TYPE_ENDPOINT};
use tph_kernel::vfio::abi::{self, TphEntry as Entry};
use tph_kernel::{Errno, Host, HostOptions};
use tph_regs::machine::{Function, Machine};
use tph_regs::tph::StLocation;

const AML: &[u8] = include_bytes!("data/two_segments.aml");
/// The root port completes TPH only: 8-bit tags, which the firmware marks valid.
const COMPLETER_TPH: u32 = 1;

/// (root port, its secondary bus's endpoint) per host bridge of the firmware.
const SEG0: (&str, &str) = ("0000:00:02.0", "0000:01:00.0"); // PC00: Integer bitmap
const SEG0_NO_BIT0: (&str, &str) = ("0000:40:02.0", "0000:41:00.0"); // PC40: bit 15 only
const SEG1: (&str, &str) = ("0001:80:02.0", "0001:81:00.0"); // PC80: Buffer bitmap
const SEG2_ONCE: (&str, &str) = ("0002:c0:02.0", "0002:c1:00.0"); // PCC0: advertises once

fn firmware() -> Arc<AmlSource> {
    Arc::new(AmlSource::from_tables(&[AML]).unwrap())
}

fn function(b: &str, config: Vec<u8>) -> Function {
    Function::new(bdf(b), config)
}

fn host(fw: Arc<AmlSource>) -> Host {
    let mut functions = Vec::new();
    for (port, dev) in [SEG0, SEG0_NO_BIT0, SEG1, SEG2_ONCE] {
        let secondary = bdf(dev).bus;
        functions.push(function(
            port,
            machines::root_port(COMPLETER_TPH, secondary),
        ));
        let tph = spec(NS_IV_DS, true, StLocation::Capability, 16);
        functions.push(function(dev, machines::endpoint(1, TYPE_ENDPOINT, 0, tph)));
    }
    let opts = HostOptions::new().with_firmware(fw);
    Host::new(Machine::new(functions), opts)
}

/// Enables IV on `dev` and programs entry 0 with CPU `cpu`: the SET_ST result and the tag.
fn steer(host: &Host, dev: &str, cpu: u32) -> (Result<i32, Errno>, u16) {
    let d = host.take_over(bdf(dev)).unwrap();
    let fd = d.open().unwrap();
    let mut arg = abi::encode_op(abi::OP_ENABLE, [abi::MODE_IV, 0, 0, 0, 0, 0, 0, 0]);
    fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg).unwrap();
    let mut arg = abi::encode_st_raw(abi::OP_SET_ST, &[Entry::new(cpu, 0, 0)]);
    let r = fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg);
    (r, d.snapshot().st_table[0])
}

fn id(segment: u16, bus: u8) -> HostBridgeId {
    HostBridgeId { segment, bus }
}

#[test]
fn firmware_lookup_uses_the_host_bridge_above_the_devices_root_port() {
    let h = host(firmware());
    // CPU 3 = UID 3: PC00 answers 0x10 + UID, PC80 answers 0x40 + UID.
    assert_eq!(steer(&h, SEG0.1, 3), (Ok(0), 0x13));
    assert_eq!(steer(&h, SEG1.1, 3), (Ok(0), 0x43));
}

#[test]
fn firmware_function_0_bitmap_is_accepted_as_integer_or_buffer() {
    let fw = firmware();
    let integer = fw.st_info_at(id(0, 0x00), 5).unwrap(); // PC00 returns 0x8001
    let buffer = fw.st_info_at(id(1, 0x80), 5).unwrap(); // PC80 returns {0x01, 0x80}
    assert_eq!(integer.st(MemType::Volatile), 0x15);
    assert_eq!(buffer.st(MemType::Volatile), 0x45);
}

#[test]
fn firmware_needs_bits_0_and_15_of_the_function_0_bitmap() {
    let fw = firmware();
    assert!(matches!(
        fw.st_info_at(id(0, 0x40), 1),
        Err(FirmwareError::NotAdvertised(path)) if path.ends_with("PC40")
    ));
    let h = host(fw);
    assert_eq!(
        steer(&h, SEG0_NO_BIT0.1, 1),
        (Err(Errno::EINVAL), 0),
        "the kernel's lookup fails: EINVAL, nothing written"
    );
}

#[test]
fn firmware_function_0_is_checked_on_every_call() {
    // PCC0 advertises the query on its first function-0 evaluation only.
    let fw = firmware();
    assert_eq!(
        fw.st_info_at(id(2, 0xc0), 2).unwrap().st(MemType::Volatile),
        0x62
    );
    assert!(matches!(
        fw.st_info_at(id(2, 0xc0), 2),
        Err(FirmwareError::NotAdvertised(_))
    ));
    // The same through the kernel: the first SET_ST resolves, the second is refused.
    let h = host(firmware());
    let d = h.take_over(bdf(SEG2_ONCE.1)).unwrap();
    let fd = d.open().unwrap();
    let mut arg = abi::encode_op(abi::OP_ENABLE, [abi::MODE_IV, 0, 0, 0, 0, 0, 0, 0]);
    fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg).unwrap();
    let set = |cpu| {
        let mut arg = abi::encode_st_raw(abi::OP_SET_ST, &[Entry::new(cpu, 0, 0)]);
        fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg)
    };
    assert_eq!(set(2), Ok(0));
    assert_eq!(set(4), Err(Errno::EINVAL));
    assert_eq!(
        d.snapshot().st_table[0],
        0x62,
        "the refused call wrote nothing"
    );
}

#[test]
fn firmware_lookup_for_a_bridge_the_namespace_lacks_is_einval() {
    let fw = firmware();
    assert_eq!(
        fw.st_info_at(id(3, 0), 1),
        Err(FirmwareError::NoBridge { segment: 3, bus: 0 })
    );
    // The first bridge that has the method is not a fallback.
    assert!(fw.st_info_at(id(0, 0x40), 1).is_err());
}
