//! Conformance: one test per rule of `docs/spec/vfio-tph-v7.md` (sections 1-3), named after
//! the rule. Devices are those of the built-in default machine (see `common`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::*;
use tph_acpi::MemType;
use tph_kernel::hw::{Access, Effect};
use tph_kernel::vfio::abi::{self, TphEntry as Entry};
use tph_kernel::vfio::{Fault, UserMemory, SLICE_BASE};
use tph_kernel::{Errno, Host, HostOptions, RestoreOrder};

const IV: u8 = abi::MODE_IV;
const DS: u8 = abi::MODE_DS;
/// Hardware Control encodings: IV = 1, DS = 2; requester type 1 (TPH) or 3 (TPH + ext).
const HW_IV: u32 = 1;
const HW_DS: u32 = 2;

// ---- section 1: the ABI ----

#[test]
fn abi_ioctl_is_io_semicolon_122() {
    assert_eq!(abi::VFIO_DEVICE_PCI_TPH, 0x3b7a);
    assert_eq!(abi::VFIO_DEVICE_PCI_TPH, u32::from(b';') << 8 | (100 + 22));
}

#[test]
fn abi_op_is_16_bytes_and_entries_start_at_offset_16() {
    let arg = abi::encode_st_raw(abi::OP_SET_ST, &[Entry::new(7, 1, 9)]);
    assert_eq!(abi::OP_HEADER_SIZE, 16);
    assert_eq!(arg.len(), 16 + 12);
    assert_eq!(&arg[16..20], &7u32.to_le_bytes(), "cpu at entry offset 0");
    assert_eq!(arg[20], 1, "mem_type at entry offset 4");
    assert_eq!(&arg[22..24], &9u16.to_le_bytes(), "index at entry offset 6");
    assert_eq!(16 + 2048 * 12, 24_592, "largest argument");
}

#[test]
fn unknown_request_is_enotty() {
    let f = Fixture::new(CAP_DEV);
    let mut arg = abi::encode_op(abi::OP_GET_CAP, [0; 8]);
    assert_eq!(f.fd.ioctl_bytes(0x3b79, &mut arg), Err(Errno::ENOTTY));
}

// ---- section 2, common steps ----

#[test]
fn common_1_argsz_below_16_is_einval() {
    let f = Fixture::new(CAP_DEV);
    for argsz in [0u32, 8, 15] {
        let mut arg = abi::encode_op(abi::OP_GET_CAP, [0; 8]);
        arg[0..4].copy_from_slice(&argsz.to_le_bytes());
        assert_eq!(
            f.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg),
            Err(Errno::EINVAL)
        );
    }
}

#[test]
fn common_1_unreadable_head_is_efault() {
    let f = Fixture::new(CAP_DEV);
    let mut short = [16u8, 0, 0];
    assert_eq!(
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut short),
        Err(Errno::EFAULT)
    );
    let mut buf = abi::encode_op(abi::OP_GET_CAP, [0; 8]);
    let mut mem = tph_kernel::vfio::SliceMemory::new(&mut buf);
    let r = f.fd.ioctl(abi::VFIO_DEVICE_PCI_TPH, 0x10, &mut mem);
    assert_eq!(r, Err(Errno::EFAULT), "unmapped pointer");
}

#[test]
fn common_1_argsz_beyond_buffer_is_efault() {
    let f = Fixture::new(CAP_DEV);
    let mut arg = abi::encode_op(abi::OP_GET_CAP, [0; 8]);
    arg[0..4].copy_from_slice(&64u32.to_le_bytes());
    assert_eq!(
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg),
        Err(Errno::EFAULT)
    );
}

/// Caller memory with the entries unmapped (head and payload readable).
struct HoleAfter16(Vec<u8>);

impl UserMemory for HoleAfter16 {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Fault> {
        let off = (addr - SLICE_BASE) as usize;
        if off + buf.len() > 16 {
            return Err(Fault::new(addr));
        }
        buf.copy_from_slice(&self.0[off..off + buf.len()]);
        Ok(())
    }

    fn write(&mut self, addr: u64, _data: &[u8]) -> Result<(), Fault> {
        Err(Fault::new(addr))
    }
}

#[test]
fn common_1_unreadable_entries_is_efault() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    let arg = abi::encode_st_raw(abi::OP_SET_ST, &[Entry::new(1, 0, 0)]);
    let mut mem = HoleAfter16(arg);
    let r = f.fd.ioctl(abi::VFIO_DEVICE_PCI_TPH, SLICE_BASE, &mut mem);
    assert_eq!(r, Err(Errno::EFAULT));
    assert_eq!(f.table()[0], 0);
}

#[test]
fn common_2_unknown_op_is_eopnotsupp() {
    let f = Fixture::new(CAP_DEV);
    for op in [5u32, 0x100, u32::MAX] {
        assert_eq!(f.op(op, [0; 8]), Err(Errno::EOPNOTSUPP), "op {op}");
    }
}

#[test]
fn common_3_no_tph_capability_is_enodev() {
    let f = Fixture::new(NO_TPH_DEV);
    assert_eq!(f.get_cap(), Err(Errno::ENODEV));
    assert_eq!(f.enable(IV), Err(Errno::ENODEV));
}

#[test]
fn common_3_pci_notph_is_enodev() {
    let f = Fixture::with(CAP_DEV, HostOptions::new().with_notph(true));
    assert_eq!(f.get_cap(), Err(Errno::ENODEV));
    assert_eq!(f.enable(IV), Err(Errno::ENODEV));
}

#[test]
fn common_2_unknown_op_checked_before_enodev() {
    let f = Fixture::new(NO_TPH_DEV);
    assert_eq!(f.op(9, [0; 8]), Err(Errno::EOPNOTSUPP));
}

#[test]
fn common_4_enable_reserved_nonzero_is_einval() {
    let f = Fixture::new(CAP_DEV);
    for i in 1..8 {
        let mut p = [IV, 0, 0, 0, 0, 0, 0, 0];
        p[i] = 1;
        assert_eq!(
            f.op(abi::OP_ENABLE, p),
            Err(Errno::EINVAL),
            "reserved byte {i}"
        );
    }
    assert_eq!(f.control(), 0);
}

#[test]
fn common_4_st_reserved_word_nonzero_is_einval() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    let mut arg = abi::encode_st_raw(abi::OP_SET_ST, &[Entry::new(1, 0, 0)]);
    arg[12] = 1;
    assert_eq!(
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg),
        Err(Errno::EINVAL)
    );
}

#[test]
fn common_4_entry_reserved_fields_nonzero_is_einval() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    let mut e = Entry::new(1, 0, 0);
    e.reserved0 = 1;
    assert_eq!(f.set_st(&[e]), Err(Errno::EINVAL));
    let mut e = Entry::new(1, 0, 0);
    e.reserved1 = 0x8000;
    assert_eq!(f.set_st(&[e]), Err(Errno::EINVAL));
}

// ---- GET_CAP ----

#[test]
fn get_cap_hides_ds_without_unsafe_parameter() {
    assert_eq!(Fixture::new(CAP_DEV).get_cap(), Ok((IV, 16)));
}

#[test]
fn get_cap_reports_ds_with_unsafe_parameter() {
    assert_eq!(Fixture::unsafe_ds(CAP_DEV).get_cap(), Ok((IV | DS, 16)));
}

#[test]
fn get_cap_reports_iv_iff_advertised() {
    assert_eq!(Fixture::new(DS_ONLY_DEV).get_cap(), Ok((0, 0)));
    assert_eq!(Fixture::unsafe_ds(DS_ONLY_DEV).get_cap(), Ok((DS, 0)));
}

#[test]
fn get_cap_st_table_sz_counts_msix_located_table() {
    assert_eq!(Fixture::new(MSIX_DEV).get_cap(), Ok((IV, 2048)));
}

#[test]
fn get_cap_st_table_sz_is_zero_without_table() {
    assert_eq!(
        Fixture::unsafe_ds(DS_ONLY_DEV).get_cap().map(|c| c.1),
        Ok(0)
    );
}

#[test]
fn get_cap_writes_only_within_argsz() {
    let f = Fixture::new(CAP_DEV);
    let mut buf = abi::encode_op(abi::OP_GET_CAP, [0xaa; 8]);
    buf.extend_from_slice(&[0x55; 8]);
    assert_eq!(f.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut buf), Ok(0));
    assert_eq!(&buf[8..16], &[IV, 0, 16, 0, 0, 0, 0, 0]);
    assert_eq!(&buf[16..], &[0x55; 8], "bytes beyond argsz untouched");
}

// ---- ENABLE / DISABLE ----

#[test]
fn enable_mode_must_be_exactly_iv_or_ds() {
    let f = Fixture::unsafe_ds(CAP_DEV);
    for mode in [0u8, IV | DS, 4, 0x80] {
        assert_eq!(f.enable(mode), Err(Errno::EINVAL), "mode {mode:#x}");
    }
    assert_eq!(f.control(), 0);
}

#[test]
fn enable_ds_without_unsafe_parameter_is_eopnotsupp() {
    let f = Fixture::new(CAP_DEV);
    assert_eq!(f.enable(DS), Err(Errno::EOPNOTSUPP));
    assert_eq!(f.control(), 0);
}

#[test]
fn enable_iv_programs_mode_and_negotiated_requester_type() {
    let f = Fixture::new(MSIX_DEV);
    assert_eq!(f.enable(IV), Ok(0));
    assert_eq!(
        f.control(),
        ctrl(HW_IV, 3),
        "ext requester below an ext completer"
    );
    let g = Fixture::new(CAP_DEV);
    g.enable(IV).unwrap();
    assert_eq!(g.control(), ctrl(HW_IV, 1), "root port completes TPH only");
}

#[test]
fn enable_already_enabled_is_ebusy() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    assert_eq!(f.enable(IV), Err(Errno::EBUSY));
}

#[test]
fn enable_mode_the_device_lacks_is_einval() {
    let f = Fixture::unsafe_ds(DS_ONLY_DEV);
    assert_eq!(f.enable(IV), Err(Errno::EINVAL));
    assert_eq!(f.enable(DS), Ok(0));
}

#[test]
fn enable_root_port_without_completer_is_einval() {
    let f = Fixture::new(NO_COMPLETER_DEV);
    assert_eq!(f.enable(IV), Err(Errno::EINVAL));
    assert_eq!(f.control(), 0);
}

#[test]
fn enable_reads_root_port_devcap2() {
    let f = Fixture::new(NO_COMPLETER_DEV);
    f.dev.drain_root_port_trace();
    assert_eq!(f.enable(IV), Err(Errno::EINVAL));
    let port = f.dev.drain_root_port_trace();
    // DevCap2 sits at +0x24 of the PCI Express capability (0x40 in the default machine).
    assert!(matches!(
        port[..],
        [Access::ConfigRead {
            offset: 0x64,
            width: 4,
            value: 0
        }]
    ));
}

#[test]
fn enable_rciep_skips_root_port_check() {
    let f = Fixture::new(RCIEP_DEV);
    assert!(f.dev.drain_root_port_trace().is_empty());
    assert_eq!(f.enable(IV), Ok(0));
    assert_eq!(f.control(), ctrl(HW_IV, 3));
}

#[test]
fn disable_writes_control_zero() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    assert_eq!(f.disable(), Ok(0));
    assert_eq!(f.control(), 0);
    assert_eq!(f.enable(IV), Ok(0), "enable works again after disable");
}

#[test]
fn disable_when_already_off_succeeds() {
    let f = Fixture::new(CAP_DEV);
    assert_eq!(f.disable(), Ok(0));
    assert!(f.hw_writes().is_empty(), "nothing written");
}

// ---- GET_ST ----

#[test]
fn get_st_without_unsafe_parameter_is_eopnotsupp() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    assert_eq!(f.get_st(&[(0, 0)]), Err(Errno::EOPNOTSUPP));
}

#[test]
fn get_st_tph_off_is_einval() {
    let f = Fixture::unsafe_ds(CAP_DEV);
    assert_eq!(f.get_st(&[(0, 0)]), Err(Errno::EINVAL));
}

#[test]
fn get_st_in_iv_mode_is_einval() {
    let f = Fixture::unsafe_ds(CAP_DEV);
    f.enable(IV).unwrap();
    assert_eq!(f.get_st(&[(0, 0)]), Err(Errno::EINVAL));
}

#[test]
fn get_st_returns_firmware_tag_of_enabled_width() {
    let f = Fixture::unsafe_ds(MSIX_DEV);
    f.enable(DS).unwrap();
    assert_eq!(f.control(), ctrl(HW_DS, 3));
    let (vm, pm) = (default_info(5), default_info(6));
    assert_eq!(
        f.get_st(&[(5, 0), (6, 1)]),
        Ok(vec![vm.xst(MemType::Volatile), pm.xst(MemType::Persistent)]),
        "requester type 3: 16-bit tags"
    );
}

#[test]
fn get_st_8bit_tag_when_root_port_completes_tph_only() {
    let f = Fixture::unsafe_ds(CAP_DEV);
    f.enable(DS).unwrap();
    let want = u16::from(default_info(5).st(MemType::Persistent));
    assert_eq!(f.get_st(&[(5, 1)]), Ok(vec![want]));
}

#[test]
fn get_st_count_out_of_range_is_einval() {
    let f = Fixture::unsafe_ds(MSIX_DEV);
    f.enable(DS).unwrap();
    assert_eq!(f.get_st(&[]), Err(Errno::EINVAL), "count 0");
    let many = vec![(0, 0); 2049];
    assert_eq!(f.get_st(&many), Err(Errno::EINVAL), "count 2049");
    assert_eq!(f.get_st(&vec![(0, 0); 2048]).map(|v| v.len()), Ok(2048));
}

#[test]
fn get_st_argsz_smaller_than_count_is_einval() {
    let f = Fixture::unsafe_ds(MSIX_DEV);
    f.enable(DS).unwrap();
    let mut arg = abi::encode_st_raw(abi::OP_GET_ST, &[Entry::new(0, 0, 0); 2]);
    arg[0..4].copy_from_slice(&(16u32 + 12).to_le_bytes());
    assert_eq!(
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg),
        Err(Errno::EINVAL)
    );
}

#[test]
fn get_st_cpu_not_present_is_einval() {
    let f = Fixture::unsafe_ds(MSIX_DEV);
    f.enable(DS).unwrap();
    assert_eq!(f.get_st(&[(8, 0)]), Err(Errno::EINVAL), "8 CPUs: 0..=7");
    assert_eq!(f.get_st(&[(abi::CPU_CLEAR, 0)]), Err(Errno::EINVAL));
}

#[test]
fn get_st_mem_type_above_1_is_einval() {
    let f = Fixture::unsafe_ds(MSIX_DEV);
    f.enable(DS).unwrap();
    assert_eq!(f.get_st(&[(0, 2)]), Err(Errno::EINVAL));
}

#[test]
fn get_st_unused_index_and_st_must_be_zero() {
    let f = Fixture::unsafe_ds(MSIX_DEV);
    f.enable(DS).unwrap();
    for (index, st) in [(1u16, 0u16), (0, 1)] {
        let mut e = Entry::new(0, 0, index);
        e.st = st;
        let mut arg = abi::encode_st_raw(abi::OP_GET_ST, &[e]);
        assert_eq!(
            f.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg),
            Err(Errno::EINVAL)
        );
    }
}

#[test]
fn get_st_validates_every_entry_before_writing_output() {
    let f = Fixture::unsafe_ds(MSIX_DEV);
    f.enable(DS).unwrap();
    let mut arg = abi::encode_st_raw(abi::OP_GET_ST, &[Entry::new(1, 0, 0), Entry::new(1, 7, 0)]);
    assert_eq!(
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        st_fields(&arg),
        vec![0, 0],
        "no tag written for the valid first entry"
    );
}

#[test]
fn get_st_firmware_failure_is_einval_and_writes_nothing() {
    let opts = unsafe_opts().with_firmware(table_firmware(&[(0, 0x0000_0000_0102_0303)]));
    let f = Fixture::with(MSIX_DEV, opts);
    f.enable(DS).unwrap();
    let mut arg = abi::encode_st_raw(abi::OP_GET_ST, &[Entry::new(0, 0, 0), Entry::new(1, 0, 0)]);
    assert_eq!(
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg),
        Err(Errno::EINVAL)
    );
    assert_eq!(st_fields(&arg), vec![0, 0]);
}

#[test]
fn get_st_uses_acpi_uid_of_the_cpu() {
    let opts = unsafe_opts().with_cpu_uids(vec![10, 11, 12]);
    let f = Fixture::with(MSIX_DEV, opts);
    f.enable(DS).unwrap();
    let want = default_info(12).xst(MemType::Volatile);
    assert_eq!(f.get_st(&[(2, 0)]), Ok(vec![want]));
    assert_eq!(
        f.get_st(&[(3, 0)]).map(|v| v[0]),
        Ok(default_info(3).xst(MemType::Volatile))
    );
}

#[test]
fn get_st_rciep_has_no_root_port_enodev() {
    // pci-tph-core.md: get_cpu_st finds the root port first; an RCiEP has none.
    let f = Fixture::unsafe_ds(RCIEP_DEV);
    f.enable(DS).unwrap();
    assert_eq!(f.get_st(&[(0, 0)]), Err(Errno::ENODEV));
}

#[test]
fn get_st_invalid_entry_outranks_an_earlier_resolution_failure() {
    // [decision] validation of all entries happens before any tag is resolved: on an RCiEP the
    // first (valid) entry would fail with ENODEV, but the second has mem_type 7, so EINVAL.
    let f = Fixture::unsafe_ds(RCIEP_DEV);
    f.enable(DS).unwrap();
    let mut arg = abi::encode_st_raw(abi::OP_GET_ST, &[Entry::new(0, 0, 0), Entry::new(1, 7, 0)]);
    assert_eq!(
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg),
        Err(Errno::EINVAL)
    );
    assert_eq!(st_fields(&arg), vec![0, 0]);
}

// ---- SET_ST ----

#[test]
fn set_st_tph_off_is_einval() {
    let f = Fixture::new(CAP_DEV);
    assert_eq!(f.set_st(&[Entry::new(1, 0, 0)]), Err(Errno::EINVAL));
}

#[test]
fn set_st_without_table_is_enodev() {
    let f = Fixture::unsafe_ds(DS_ONLY_DEV);
    f.enable(DS).unwrap();
    assert_eq!(f.set_st(&[Entry::new(1, 0, 0)]), Err(Errno::ENODEV));
}

#[test]
fn set_st_count_out_of_range_is_einval() {
    let f = Fixture::new(MSIX_DEV);
    f.fd.set_irqs(2048).unwrap();
    f.enable(IV).unwrap();
    assert_eq!(f.set_st(&[]), Err(Errno::EINVAL));
    let many: Vec<Entry> = (0..2049)
        .map(|i| Entry::new(0, 0, (i % 2048) as u16))
        .collect();
    assert_eq!(f.set_st(&many), Err(Errno::EINVAL));
}

#[test]
fn set_st_index_beyond_table_is_einval() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    assert_eq!(f.set_st(&[Entry::new(1, 0, 16)]), Err(Errno::EINVAL));
    assert_eq!(f.set_st(&[Entry::new(1, 0, 15)]), Ok(0));
}

#[test]
fn set_st_cpu_not_present_is_einval() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    assert_eq!(f.set_st(&[Entry::new(8, 0, 0)]), Err(Errno::EINVAL));
}

#[test]
fn set_st_mem_type_above_1_is_einval() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    assert_eq!(f.set_st(&[Entry::new(1, 2, 0)]), Err(Errno::EINVAL));
}

#[test]
fn set_st_unused_st_field_must_be_zero() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    let mut e = Entry::new(1, 0, 0);
    e.st = 5;
    assert_eq!(f.set_st(&[e]), Err(Errno::EINVAL));
}

#[test]
fn set_st_cpu_all_ones_clears_entry() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 2)]).unwrap();
    assert_eq!(f.table()[2], 3);
    assert_eq!(f.set_st(&[Entry::new(abi::CPU_CLEAR, 0, 2)]), Ok(0));
    assert_eq!(f.table()[2], 0);
}

#[test]
fn set_st_capability_table_writes_8bit_tags_behind_tph_only_port() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 0), Entry::new(4, 1, 1)])
        .unwrap();
    let (vm, pm) = (default_info(3), default_info(4));
    let want = [
        u16::from(vm.st(MemType::Volatile)),
        u16::from(pm.st(MemType::Persistent)),
    ];
    assert_eq!(&f.table()[..2], &want);
}

#[test]
fn set_st_msix_table_writes_16bit_tags_into_vector_control() {
    let f = Fixture::new(MSIX_DEV);
    f.fd.set_irqs(4).unwrap();
    f.enable(IV).unwrap();
    f.set_st(&[Entry::new(2, 0, 3)]).unwrap();
    assert_eq!(f.table()[3], default_info(2).xst(MemType::Volatile));
    let vc = f.dev.with_hardware(|hw| hw.peek_vector_controls()[3]);
    assert_eq!(vc & 1, 0, "vector stays unmasked");
}

#[test]
fn set_st_msix_vector_not_enabled_is_enxio() {
    let f = Fixture::new(MSIX_DEV);
    f.enable(IV).unwrap();
    assert_eq!(f.set_st(&[Entry::new(1, 0, 0)]), Err(Errno::ENXIO));
    f.fd.set_irqs(2).unwrap();
    assert_eq!(f.set_st(&[Entry::new(1, 0, 1)]), Ok(0));
    assert_eq!(f.set_st(&[Entry::new(1, 0, 2)]), Err(Errno::ENXIO));
}

#[test]
fn set_st_validation_failure_changes_nothing() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    let before = (f.control(), f.table());
    f.trace();
    let bad = [
        Entry::new(1, 0, 0),
        Entry::new(2, 0, 1),
        Entry::new(3, 0, 99),
    ];
    assert_eq!(f.set_st(&bad), Err(Errno::EINVAL));
    assert_eq!((f.control(), f.table()), before);
    assert!(f.hw_writes().is_empty(), "no hardware write");
}

#[test]
fn set_st_firmware_failure_changes_nothing() {
    let opts = HostOptions::new().with_firmware(table_firmware(&[(1, default_info(1).0)]));
    let f = Fixture::with(CAP_DEV, opts);
    f.enable(IV).unwrap();
    f.trace();
    assert_eq!(
        f.set_st(&[Entry::new(1, 0, 0), Entry::new(2, 0, 1)]),
        Err(Errno::EINVAL)
    );
    assert_eq!(f.table(), vec![0; 16]);
    assert!(f.hw_writes().is_empty());
    assert_eq!(f.control(), ctrl(HW_IV, 1), "TPH stays as it was");
}

#[test]
fn set_st_write_failure_rolls_back_every_entry_of_the_call() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    f.set_st(&[Entry::new(7, 0, 5)]).unwrap();
    // Per entry the core makes 2 config writes before the table write (Requester Enable off)
    // and one after; let entries 0 and 1 land and the table write of entry 2 fail.
    f.dev.inject_write_failure(3 + 3 + 1);
    let call = [
        Entry::new(1, 0, 0),
        Entry::new(2, 0, 1),
        Entry::new(3, 0, 2),
    ];
    assert_eq!(f.set_st(&call), Err(Errno::EIO));
    assert_eq!(&f.table()[..3], &[0, 0, 0], "rolled back to ST 0");
    assert_eq!(f.table()[5], 7, "entries outside the call untouched");
    assert_eq!(f.control(), 0, "the core disabled TPH on the failed write");
    assert!(f.violations().is_empty(), "{:?}", f.violations());
}

#[test]
fn set_st_clears_requester_enable_around_each_write() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    f.trace();
    f.set_st(&[Entry::new(1, 0, 0)]).unwrap();
    let controls: Vec<Effect> = f
        .hw_writes()
        .into_iter()
        .filter_map(|a| match a {
            Access::ConfigWrite { effect, .. } => Some(effect),
            _ => None,
        })
        .collect();
    assert!(matches!(controls[0], Effect::TphControl { new, .. } if new.enable.field() == 0));
    assert!(matches!(
        controls[1],
        Effect::StEntry {
            index: 0,
            new: 1,
            ..
        }
    ));
    assert!(matches!(controls[2], Effect::TphControl { new, .. } if new.enable.field() == 1));
    assert!(f.violations().is_empty());
}

// ---- section 3: module parameter and lifecycle ----

#[test]
fn module_parameter_defaults_to_off() {
    assert!(!HostOptions::default().unsafe_ds);
}

#[test]
fn takeover_clears_firmware_left_control() {
    let host = Host::with_default_machine(HostOptions::default());
    let dev = host.take_over(bdf(CAP_DEV)).unwrap();
    let fd = dev.open().unwrap();
    let mut arg = abi::encode_op(abi::OP_ENABLE, [IV, 0, 0, 0, 0, 0, 0, 0]);
    fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg).unwrap();
    assert_ne!(dev.snapshot().control, Some(0));
    drop(host);
    // A fresh host whose hardware starts with Control left enabled by "firmware".
    let host = Host::with_default_machine(HostOptions::default());
    let mut m = host.machine().clone();
    let f = m
        .functions
        .iter_mut()
        .find(|f| f.bdf == bdf(CAP_DEV))
        .unwrap();
    f.config[0x108..0x10c].copy_from_slice(&0x102u32.to_le_bytes());
    let host = Host::new(m, HostOptions::default());
    let dev = host.take_over(bdf(CAP_DEV)).unwrap();
    assert_eq!(dev.snapshot().control, Some(0));
    assert!(!dev.snapshot().core_enabled);
}

#[test]
fn takeover_twice_is_ebusy() {
    let host = Host::with_default_machine(HostOptions::default());
    host.take_over(bdf(CAP_DEV)).unwrap();
    assert_eq!(host.take_over(bdf(CAP_DEV)).err(), Some(Errno::EBUSY));
    assert_eq!(host.take_over(bdf("0f:00.0")).err(), Some(Errno::ENODEV));
}

#[test]
fn last_close_disables_tph_in_hardware() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 1)]).unwrap();
    let Fixture { dev, fd, .. } = f;
    fd.close();
    let snap = dev.snapshot();
    assert_eq!(snap.control, Some(0));
    assert!(!snap.core_enabled);
    assert_eq!(
        snap.st_table[1], 0,
        "mainline resets at last close and restores the open-time state (0 after the open-time reset)"
    );
}

#[test]
fn close_of_a_non_last_fd_keeps_tph() {
    let f = Fixture::new(CAP_DEV);
    let second = f.dev.open().unwrap();
    f.enable(IV).unwrap();
    second.close();
    assert_eq!(f.control(), ctrl(HW_IV, 1));
}

#[test]
fn last_close_releases_msix_vectors() {
    let f = Fixture::new(MSIX_DEV);
    f.fd.set_irqs(4).unwrap();
    let Fixture { dev, fd, .. } = f;
    drop(fd);
    assert_eq!(dev.snapshot().msix_vectors, 0);
    let vcs = dev.with_hardware(|hw| hw.peek_vector_controls());
    assert!(
        vcs.iter().take(4).all(|v| v & 1 == 1),
        "vectors masked again"
    );
}

#[test]
fn reopen_after_close_starts_with_tph_off() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    let Fixture { dev, fd, host } = f;
    fd.close();
    let fd = dev.open().unwrap();
    let g = Fixture { host, dev, fd };
    assert_eq!(g.enable(IV), Ok(0), "core state was cleared: no EBUSY");
}

#[test]
fn reset_keeps_enabled_tph_and_capability_entries() {
    let opts = HostOptions::new().with_restore_order(RestoreOrder::TableBeforeEnable);
    let f = Fixture::with(CAP_DEV, opts);
    f.enable(IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 1), Entry::new(4, 0, 15)])
        .unwrap();
    let before = (f.control(), f.table());
    assert_eq!(f.fd.reset(), Ok(()));
    assert_eq!((f.control(), f.table()), before);
    assert!(f.violations().is_empty(), "{:?}", f.violations());
    assert!(f.trace().iter().any(|a| matches!(
        a,
        Access::ConfigWrite {
            effect: Effect::FunctionReset,
            ..
        }
    )));
}

#[test]
fn reset_restores_msix_located_tags_with_msix() {
    let opts = HostOptions::new().with_restore_order(RestoreOrder::TableBeforeEnable);
    let f = Fixture::with(MSIX_DEV, opts);
    f.fd.set_irqs(8).unwrap();
    f.enable(IV).unwrap();
    f.set_st(&[Entry::new(5, 1, 7)]).unwrap();
    let before = (f.control(), f.table());
    let message = |f: &Fixture| {
        f.dev
            .with_hardware(|hw| (0..4u8).map(|d| hw.msix_read(7, 4 * d)).collect::<Vec<_>>())
    };
    let msg_before = message(&f);
    let mut arg = Vec::new();
    assert_eq!(f.fd.ioctl_bytes(abi::VFIO_DEVICE_RESET, &mut arg), Ok(0));
    assert_eq!((f.control(), f.table()), before);
    assert_eq!(
        message(&f),
        msg_before,
        "address, data and Vector Control restored"
    );
    assert!(f.violations().is_empty(), "{:?}", f.violations());
}

#[test]
fn reset_of_disabled_tph_leaves_it_off() {
    let f = Fixture::new(CAP_DEV);
    f.enable(IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 1)]).unwrap();
    f.disable().unwrap();
    f.fd.reset().unwrap();
    assert_eq!(f.control(), 0);
    assert_eq!(
        f.table()[1],
        0,
        "FLR reset the table; the core had nothing saved"
    );
}

#[test]
fn reset_mainline_restore_order_writes_table_while_enabled() {
    let opts = HostOptions::new().with_restore_order(RestoreOrder::Mainline);
    let f = Fixture::with(CAP_DEV, opts);
    f.enable(IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 1)]).unwrap();
    f.fd.reset().unwrap();
    assert_eq!(f.table()[1], 3);
    assert!(
        !f.violations().is_empty(),
        "mainline order: Control before entries"
    );
}

#[test]
fn config_region_read_returns_config_space() {
    let f = Fixture::new(CAP_DEV);
    let mut ids = [0u8; 4];
    f.fd.config_read(0, &mut ids).unwrap();
    let want = f.dev.with_hardware(|hw| hw.config_bytes()[..4].to_vec());
    assert_eq!(ids.to_vec(), want);
    let mut over = [0u8; 8];
    assert_eq!(f.fd.config_read(4092, &mut over), Err(Errno::EFAULT));
    f.trace();
    let mut unaligned = [0u8; 6];
    f.fd.config_read(6, &mut unaligned).unwrap();
    let want = f.dev.with_hardware(|hw| hw.config_bytes()[6..12].to_vec());
    assert_eq!(unaligned.to_vec(), want);
    assert_eq!(f.trace().len(), 2, "two dword reads: 0x4 and 0x8");
}

fn irq_set(flags: u32, count: u32) -> Vec<u8> {
    let mut v = Vec::new();
    let argsz = abi::IRQ_SET_HEADER_SIZE as u32 + 4 * count;
    for w in [argsz, flags, abi::MSIX_IRQ_INDEX, 0, count] {
        v.extend_from_slice(&w.to_le_bytes());
    }
    for fd in 0..count {
        v.extend_from_slice(&(100 + fd).to_le_bytes());
    }
    v
}

#[test]
fn set_irqs_ioctl_enables_and_disables_msix_vectors() {
    let f = Fixture::new(MSIX_DEV);
    let on = abi::IRQ_SET_DATA_EVENTFD | abi::IRQ_SET_ACTION_TRIGGER;
    let off = abi::IRQ_SET_DATA_NONE | abi::IRQ_SET_ACTION_TRIGGER;
    let mut arg = irq_set(on, 3);
    assert_eq!(f.fd.ioctl_bytes(abi::VFIO_DEVICE_SET_IRQS, &mut arg), Ok(0));
    assert_eq!(f.dev.snapshot().msix_vectors, 3);
    let mut arg = irq_set(off, 0);
    assert_eq!(f.fd.ioctl_bytes(abi::VFIO_DEVICE_SET_IRQS, &mut arg), Ok(0));
    assert_eq!(f.dev.snapshot().msix_vectors, 0);
    let mut bad = irq_set(on, 3);
    bad[8] = 1; // MSI index, not modelled
    assert_eq!(
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_SET_IRQS, &mut bad),
        Err(Errno::EINVAL)
    );
}
