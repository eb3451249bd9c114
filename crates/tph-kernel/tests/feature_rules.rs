//! The feature revision of the kernel model (`later-revisions.md`, and the choices listed in
//! `docs/decisions.md`, "Feature revision (kernel model)"): one test per rule, each named after
//! it. Bytes go through the same `DeviceFd::ioctl` entry point as v7's.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::*;
use tph_acpi::MemType;
use tph_kernel::hw::{Access, Effect};
use tph_kernel::machines::TPH_AT;
use tph_kernel::vfio::abi::{
    self, encode_feature_st, feature_st_data, FEATURE_GET, FEATURE_PROBE, FEATURE_SET,
    VFIO_DEVICE_FEATURE,
};
use tph_kernel::vfio::SliceMemory;
use tph_kernel::{Errno, HostOptions, KernelAbi};

/// TPH Control in the config region of every default-machine device with TPH.
const CONTROL: u64 = TPH_AT as u64 + 8;
/// TPH Requester Capability register.
const CAPABILITY: u64 = TPH_AT as u64 + 4;
/// Hardware ST Mode Select values and Requester Enable encodings.
const HW_IV: u32 = 1;
const HW_DS: u32 = 2;
const REQ_TPH: u32 = 1;
const REQ_EXT: u32 = 3;
/// `cpu` value that clears an entry.
const CLEAR: u32 = 0xffff_ffff;

fn feature_opts(unsafe_ds: bool) -> HostOptions {
    HostOptions::new()
        .with_abi(KernelAbi::Feature)
        .with_unsafe_ds(unsafe_ds)
}

/// `bdf` on a feature-revision host with `enable_unsafe_tph` (the feature exists).
fn fx(bdf: &str) -> Fixture {
    Fixture::with(bdf, feature_opts(true))
}

/// `bdf` on a feature-revision host with `enable_unsafe_tph` off (the default).
fn fx_gated(bdf: &str) -> Fixture {
    Fixture::with(bdf, feature_opts(false))
}

fn call(f: &Fixture, arg: &mut [u8]) -> Result<i32, Errno> {
    f.fd.ioctl_bytes(VFIO_DEVICE_FEATURE, arg)
}

/// SET of `cpus` from `index` (volatile memory).
fn set(f: &Fixture, index: u16, cpus: &[u32]) -> Result<i32, Errno> {
    call(f, &mut encode_feature_st(FEATURE_SET, 0, index, cpus))
}

/// GET of `cpus` with memory-type flag `mem`: the tags.
fn get(f: &Fixture, mem: u32, cpus: &[u32]) -> Result<Vec<u32>, Errno> {
    let mut arg = encode_feature_st(FEATURE_GET, mem, 0, cpus);
    call(f, &mut arg)?;
    Ok(feature_st_data(&arg).unwrap())
}

/// A bare header (argsz 8) with `flags`.
fn head(flags: u32) -> Vec<u8> {
    let mut v = 8u32.to_le_bytes().to_vec();
    v.extend_from_slice(&flags.to_le_bytes());
    v
}

fn write_control(f: &Fixture, value: u32) -> Result<(), Errno> {
    f.fd.config_write(CONTROL, &value.to_le_bytes())
}

fn read_dword(f: &Fixture, offset: u64) -> u32 {
    let mut b = [0u8; 4];
    f.fd.config_read(offset, &mut b).expect("config read");
    u32::from_le_bytes(b)
}

/// Enables as the author's userspace does: the ST Mode Select value alone.
fn enable(f: &Fixture, mode: u32) {
    write_control(f, mode).expect("enable through Control");
}

// ---- revision selection ----

#[test]
fn abi_defaults_to_v7() {
    assert_eq!(HostOptions::default().abi, KernelAbi::V7);
}

#[test]
fn v7_host_answers_feature_ioctl_enotty() {
    let f = Fixture::new(CAP_DEV);
    let mut arg = head(FEATURE_PROBE | FEATURE_SET | abi::FEATURE_TPH_ST);
    assert_eq!(call(&f, &mut arg), Err(Errno::ENOTTY));
}

#[test]
fn feature_host_answers_v7_ioctl_enotty() {
    let f = fx(CAP_DEV);
    assert_eq!(f.get_cap(), Err(Errno::ENOTTY));
}

#[test]
fn other_revisions_ioctl_is_enotty_even_with_argsz_beyond_the_buffer() {
    let mut arg = head(FEATURE_SET | abi::FEATURE_TPH_ST);
    arg[0] = 64; // argsz claims more than the 8 bytes there
    assert_eq!(call(&Fixture::new(CAP_DEV), &mut arg), Err(Errno::ENOTTY));
    assert_eq!(call(&fx(CAP_DEV), &mut arg), Err(Errno::EFAULT));
    let f = fx(CAP_DEV);
    let mut v7_arg = abi::encode_op(abi::OP_GET_CAP, [0; 8]);
    v7_arg[0] = 64;
    assert_eq!(
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut v7_arg),
        Err(Errno::ENOTTY)
    );
}

#[test]
fn v7_host_drops_config_writes() {
    let f = Fixture::new(CAP_DEV);
    assert_eq!(write_control(&f, ctrl(HW_IV, REQ_TPH)), Ok(()));
    assert_eq!(f.control(), 0);
    assert!(f.hw_writes().is_empty());
}

// ---- VFIO_DEVICE_FEATURE generic checks ----

#[test]
fn feature_unreadable_head_is_efault() {
    let f = fx(CAP_DEV);
    let mut none: [u8; 0] = [];
    let r =
        f.fd.ioctl(VFIO_DEVICE_FEATURE, 0, &mut SliceMemory::new(&mut none));
    assert_eq!(r, Err(Errno::EFAULT));
}

#[test]
fn feature_argsz_below_header_is_einval() {
    let f = fx(CAP_DEV);
    let mut arg = head(FEATURE_PROBE | FEATURE_SET | abi::FEATURE_TPH_ST);
    arg[0] = 7;
    assert_eq!(call(&f, &mut arg), Err(Errno::EINVAL));
}

#[test]
fn feature_unknown_flag_bits_are_einval() {
    let f = fx(CAP_DEV);
    let mut arg = head(1 << 19 | FEATURE_PROBE | FEATURE_SET | abi::FEATURE_TPH_ST);
    assert_eq!(call(&f, &mut arg), Err(Errno::EINVAL));
}

#[test]
fn feature_get_and_set_together_without_probe_is_einval() {
    let f = fx(CAP_DEV);
    let mut arg = encode_feature_st(FEATURE_GET | FEATURE_SET, 0, 0, &[1]);
    assert_eq!(call(&f, &mut arg), Err(Errno::EINVAL));
}

#[test]
fn feature_no_direction_without_probe_is_einval() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    let mut arg = encode_feature_st(0, 0, 0, &[1]);
    assert_eq!(call(&f, &mut arg), Err(Errno::EINVAL));
}

#[test]
fn feature_unknown_feature_number_is_enotty() {
    let f = fx(CAP_DEV);
    let mut arg = head(FEATURE_PROBE | FEATURE_SET | 12);
    assert_eq!(call(&f, &mut arg), Err(Errno::ENOTTY));
}

// ---- PROBE and the module parameter ----

#[test]
fn probe_set_on_a_tph_device_is_supported() {
    let f = fx(CAP_DEV);
    let mut arg = head(FEATURE_PROBE | FEATURE_SET | abi::FEATURE_TPH_ST);
    assert_eq!(call(&f, &mut arg), Ok(0));
    assert_eq!(f.control(), 0, "PROBE changes nothing");
}

#[test]
fn probe_without_direction_on_a_tph_device_is_supported() {
    let f = fx(CAP_DEV);
    assert_eq!(
        call(&f, &mut head(FEATURE_PROBE | abi::FEATURE_TPH_ST)),
        Ok(0)
    );
}

#[test]
fn probe_get_and_set_is_supported() {
    let f = fx(CAP_DEV);
    let flags = FEATURE_PROBE | FEATURE_GET | FEATURE_SET | abi::FEATURE_TPH_ST;
    assert_eq!(call(&f, &mut head(flags)), Ok(0));
}

/// `later-revisions.md`: "This feature is gated by enable_unsafe_tph": the whole feature, and
/// a feature the host lacks is ENOTTY before any direction check.
#[test]
fn feature_without_enable_unsafe_tph_is_enotty_for_get_set_and_probe() {
    let f = fx_gated(CAP_DEV);
    for flags in [
        FEATURE_PROBE | FEATURE_SET,
        FEATURE_PROBE | FEATURE_GET,
        FEATURE_PROBE,
    ] {
        let mut arg = head(flags | abi::FEATURE_TPH_ST);
        assert_eq!(call(&f, &mut arg), Err(Errno::ENOTTY), "{flags:#x}");
    }
    assert_eq!(set(&f, 0, &[1]), Err(Errno::ENOTTY));
    assert_eq!(get(&f, 0, &[1]), Err(Errno::ENOTTY));
}

#[test]
fn control_write_enable_without_enable_unsafe_tph_is_eopnotsupp() {
    let f = fx_gated(CAP_DEV);
    assert_eq!(write_control(&f, HW_IV), Err(Errno::EOPNOTSUPP));
    assert_eq!(f.control(), 0);
    assert_eq!(write_control(&f, 0), Ok(()), "disabling is always fine");
}

#[test]
fn probe_without_tph_capability_is_enotty() {
    let f = fx(NO_TPH_DEV);
    let mut arg = head(FEATURE_PROBE | FEATURE_SET | abi::FEATURE_TPH_ST);
    assert_eq!(call(&f, &mut arg), Err(Errno::ENOTTY));
}

#[test]
fn probe_under_pci_notph_is_enotty() {
    let opts = feature_opts(true).with_notph(true);
    let f = Fixture::with(CAP_DEV, opts);
    let mut arg = head(FEATURE_PROBE | FEATURE_SET | abi::FEATURE_TPH_ST);
    assert_eq!(call(&f, &mut arg), Err(Errno::ENOTTY));
}

// ---- payload checks ----

#[test]
fn tph_st_argsz_without_payload_head_is_einval() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    let mut arg = head(FEATURE_SET | abi::FEATURE_TPH_ST);
    assert_eq!(call(&f, &mut arg), Err(Errno::EINVAL));
}

#[test]
fn tph_st_count_zero_is_einval() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    assert_eq!(set(&f, 0, &[]), Err(Errno::EINVAL));
}

#[test]
fn tph_st_count_above_2048_is_einval() {
    let f = fx(MSIX_DEV);
    f.fd.set_irqs(2048).unwrap();
    enable(&f, HW_IV);
    assert_eq!(set(&f, 0, &[1; 2048]), Ok(0), "2048 is the limit");
    assert_eq!(set(&f, 0, &[1; 2049]), Err(Errno::EINVAL));
}

#[test]
fn tph_st_argsz_short_of_data_is_einval() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    let mut arg = encode_feature_st(FEATURE_SET, 0, 0, &[1, 2]);
    arg[0] = 20; // room for one CPU id, count says two
    assert_eq!(call(&f, &mut arg), Err(Errno::EINVAL));
    assert_eq!(f.table(), vec![0; 16]);
}

#[test]
fn tph_st_reserved_payload_flags_are_einval() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    let mut arg = encode_feature_st(FEATURE_SET, 1 << 1, 0, &[1]);
    assert_eq!(call(&f, &mut arg), Err(Errno::EINVAL));
}

// ---- SET ----

#[test]
fn set_needs_tph_enabled() {
    let f = fx(CAP_DEV);
    assert_eq!(set(&f, 0, &[1]), Err(Errno::EINVAL));
}

#[test]
fn set_without_table_is_enodev() {
    let f = fx(DS_ONLY_DEV);
    enable(&f, HW_DS);
    assert_eq!(set(&f, 0, &[1]), Err(Errno::ENODEV));
}

#[test]
fn set_programs_contiguous_entries_from_index() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV); // behind a TPH-only root port: 8-bit tags
    assert_eq!(set(&f, 3, &[1, 2, 5]), Ok(0));
    let tag = |uid| u16::from(default_info(uid).st(MemType::Volatile));
    let mut want = vec![0u16; 16];
    want[3..6].copy_from_slice(&[tag(1), tag(2), tag(5)]);
    assert_eq!(f.table(), want);
}

#[test]
fn set_persistent_flag_selects_pm_tags() {
    let f = fx(MSIX_DEV);
    f.fd.set_irqs(4).unwrap();
    enable(&f, HW_IV); // extended TPH end to end: 16-bit tags
    let mut arg = encode_feature_st(FEATURE_SET, abi::TPH_ST_FLAG_MEM_TYPE, 2, &[6]);
    assert_eq!(call(&f, &mut arg), Ok(0));
    assert_eq!(f.table()[2], default_info(6).xst(MemType::Persistent));
}

#[test]
fn set_all_ones_cpu_clears_entry() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    set(&f, 0, &[1, 2, 3]).unwrap();
    assert_eq!(set(&f, 1, &[CLEAR]), Ok(0));
    let t = f.table();
    assert_eq!((t[0] != 0, t[1], t[2] != 0), (true, 0, true));
}

#[test]
fn set_index_plus_count_beyond_table_is_einval_and_writes_nothing() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    f.trace();
    assert_eq!(set(&f, 14, &[1, 2, 3]), Err(Errno::EINVAL)); // 14, 15, 16 of 16
    assert!(f.hw_writes().is_empty());
    assert_eq!(set(&f, 0xffff, &[1, 2]), Err(Errno::EINVAL), "index wraps");
}

#[test]
fn set_cpu_not_present_is_einval_and_writes_nothing() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    f.trace();
    assert_eq!(set(&f, 0, &[1, 99]), Err(Errno::EINVAL));
    assert!(f.hw_writes().is_empty());
    assert_eq!(f.control(), ctrl(HW_IV, REQ_TPH), "TPH stays as it was");
}

#[test]
fn set_msix_vector_not_enabled_is_enxio() {
    let f = fx(MSIX_DEV);
    f.fd.set_irqs(2).unwrap();
    enable(&f, HW_IV);
    assert_eq!(
        set(&f, 1, &[1, 2]),
        Err(Errno::ENXIO),
        "vector 2 is not enabled"
    );
    assert_eq!(&f.table()[..2], &[0, 0]);
}

#[test]
fn set_write_failure_rolls_back_every_entry_of_the_call() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    set(&f, 5, &[7]).unwrap();
    // Per entry the core makes 2 config writes before the table write and one after: let
    // entries 0 and 1 land and the table write of entry 2 fail.
    f.dev.inject_write_failure(3 + 3 + 1);
    assert_eq!(set(&f, 0, &[1, 2, 3]), Err(Errno::EIO));
    assert_eq!(&f.table()[..3], &[0, 0, 0], "rolled back to ST 0");
    assert_ne!(f.table()[5], 0, "entries outside the call untouched");
    assert_eq!(f.control(), 0, "the core disabled TPH on the failed write");
}

// ---- GET ----

#[test]
fn get_replaces_cpu_ids_with_tags_in_place() {
    let f = fx(MSIX_DEV);
    enable(&f, HW_DS);
    let want = |uid, m| u32::from(default_info(uid).xst(m));
    assert_eq!(
        get(&f, 0, &[5, 0, 7]),
        Ok(vec![
            want(5, MemType::Volatile),
            want(0, MemType::Volatile),
            want(7, MemType::Volatile)
        ])
    );
    assert_eq!(get(&f, 1, &[6]), Ok(vec![want(6, MemType::Persistent)]));
}

#[test]
fn get_needs_ds_mode_enabled() {
    let f = fx(CAP_DEV);
    assert_eq!(get(&f, 0, &[1]), Err(Errno::EINVAL), "TPH off");
    enable(&f, HW_IV);
    assert_eq!(get(&f, 0, &[1]), Err(Errno::EINVAL), "IV mode");
}

#[test]
fn get_unused_index_must_be_zero() {
    let f = fx(MSIX_DEV);
    enable(&f, HW_DS);
    let mut arg = encode_feature_st(FEATURE_GET, 0, 1, &[1]);
    assert_eq!(call(&f, &mut arg), Err(Errno::EINVAL));
}

#[test]
fn get_cpu_not_present_is_einval_and_writes_nothing_back() {
    let f = fx(MSIX_DEV);
    enable(&f, HW_DS);
    let mut arg = encode_feature_st(FEATURE_GET, 0, 0, &[1, 8]);
    assert_eq!(call(&f, &mut arg), Err(Errno::EINVAL));
    assert_eq!(
        feature_st_data(&arg),
        Ok(vec![1, 8]),
        "CPU ids left as they were"
    );
}

// ---- the virtualised TPH Control register (primary evidence: the author's userspace) ----

#[test]
fn control_write_of_the_mode_alone_enables_with_the_negotiated_requester_type() {
    let f = fx(CAP_DEV); // extended-capable, root port completes TPH only
    assert_eq!(write_control(&f, HW_IV), Ok(()));
    assert_eq!(f.control(), ctrl(HW_IV, REQ_TPH));
    assert_eq!(
        read_dword(&f, CONTROL),
        ctrl(HW_IV, REQ_TPH),
        "reads give back what the kernel programmed"
    );
    assert!(f.dev.snapshot().core_enabled);
    let g = fx(MSIX_DEV); // extended TPH end to end
    assert_eq!(write_control(&g, HW_IV), Ok(()));
    assert_eq!(read_dword(&g, CONTROL), ctrl(HW_IV, REQ_EXT));
}

#[test]
fn control_write_ds_mode_enables_ds() {
    let f = fx(DS_ONLY_DEV);
    assert_eq!(write_control(&f, HW_DS), Ok(()));
    assert_eq!(f.control(), ctrl(HW_DS, REQ_EXT));
}

#[test]
fn control_write_requester_enable_bits_are_ignored() {
    // The kernel owns Requester Enable: a written type (even the reserved 2) changes nothing.
    for written in [REQ_TPH, 2, REQ_EXT] {
        let f = fx(MSIX_DEV);
        assert_eq!(write_control(&f, ctrl(HW_IV, written)), Ok(()), "{written}");
        assert_eq!(f.control(), ctrl(HW_IV, REQ_EXT), "{written}");
    }
}

#[test]
fn control_write_zero_disables_and_is_fine_when_off() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    assert_eq!(write_control(&f, 0), Ok(()));
    assert_eq!(f.control(), 0);
    assert!(!f.dev.snapshot().core_enabled);
    assert_eq!(write_control(&f, 0), Ok(()));
}

#[test]
fn control_write_mode_the_device_lacks_is_einval() {
    let f = fx(DS_ONLY_DEV);
    assert_eq!(write_control(&f, HW_IV), Err(Errno::EINVAL));
    assert_eq!(f.control(), 0);
}

#[test]
fn control_write_reserved_mode_is_the_cores_einval_and_never_reaches_hardware() {
    let f = fx(MSIX_DEV);
    f.trace();
    for mode in 3..8 {
        assert_eq!(write_control(&f, mode), Err(Errno::EINVAL), "{mode}");
    }
    assert_eq!(f.control(), 0);
    assert!(f.hw_writes().is_empty());
    assert!(f.violations().is_empty(), "{:?}", f.violations());
}

#[test]
fn control_write_without_root_port_completer_is_einval() {
    let f = fx(NO_COMPLETER_DEV);
    assert_eq!(write_control(&f, HW_IV), Err(Errno::EINVAL));
    assert_eq!(f.control(), 0);
}

#[test]
fn control_write_under_pci_notph_is_einval() {
    let opts = feature_opts(true).with_notph(true);
    let f = Fixture::with(CAP_DEV, opts);
    assert_eq!(write_control(&f, HW_IV), Err(Errno::EINVAL));
}

#[test]
fn control_write_while_enabled_is_the_cores_ebusy() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    assert_eq!(write_control(&f, HW_DS), Err(Errno::EBUSY));
    assert_eq!(write_control(&f, HW_IV), Err(Errno::EBUSY), "same mode too");
    assert_eq!(f.control(), ctrl(HW_IV, REQ_TPH));
}

#[test]
fn control_write_not_covering_the_mode_byte_is_dropped() {
    let f = fx(CAP_DEV);
    f.trace();
    assert_eq!(f.fd.config_write(CONTROL + 1, &[REQ_EXT as u8]), Ok(()));
    assert_eq!(f.fd.config_write(CONTROL + 2, &[0xff, 0xff]), Ok(()));
    assert_eq!(f.control(), 0);
    assert!(f.hw_writes().is_empty());
    assert_eq!(
        f.fd.config_write(CONTROL, &[HW_IV as u8]),
        Ok(()),
        "byte 0 acts"
    );
    assert_eq!(f.control(), ctrl(HW_IV, REQ_TPH));
}

#[test]
fn control_enable_core_rules_carry_over_set_and_last_close() {
    let f = fx(CAP_DEV);
    enable(&f, HW_IV);
    f.trace();
    set(&f, 0, &[1]).unwrap();
    let writes = f.hw_writes();
    let requests_off_first = matches!(
        writes.first(),
        Some(Access::ConfigWrite { effect: Effect::TphControl { new, .. }, .. })
            if new.enable.field() == 0
    );
    assert!(requests_off_first, "{writes:?}");
    let Fixture { dev, fd, .. } = f;
    fd.close();
    assert_eq!(dev.snapshot().control, Some(0), "last close turns TPH off");
}

// ---- other config writes and the virtualised reads ----

#[test]
fn config_writes_outside_control_are_dropped() {
    let f = fx(CAP_DEV);
    for (offset, bytes) in [
        (0x10u64, vec![0xff; 4]), // BAR 0 (virtual in mainline: hardware untouched)
        (CAPABILITY, vec![0xff; 4]), // TPH Capability (read-only)
        (TPH_AT as u64 + 0xc, vec![0x55, 0]), // ST table entry 0: only SET programs it
    ] {
        assert_eq!(f.fd.config_write(offset, &bytes), Ok(()), "{offset:#x}");
    }
    assert!(f.hw_writes().is_empty());
    assert_eq!(f.table(), vec![0; 16]);
}

#[test]
fn config_write_beyond_the_config_size_is_efault() {
    let f = fx(CAP_DEV);
    assert_eq!(f.fd.config_write(0xffe, &[0; 4]), Err(Errno::EFAULT));
}

#[test]
fn config_read_of_the_capability_register_is_hardware() {
    let raw = fx(CAP_DEV)
        .dev
        .with_hardware(|hw| hw.config_read(CAPABILITY as u16, 4));
    assert_eq!(read_dword(&fx(CAP_DEV), CAPABILITY), raw);
    assert_eq!(read_dword(&fx_gated(CAP_DEV), CAPABILITY), raw);
}

#[test]
fn config_read_under_pci_notph_hides_tph_capability() {
    let opts = feature_opts(true).with_notph(true);
    let f = Fixture::with(CAP_DEV, opts);
    let mut cfg = vec![0u8; 4096];
    f.fd.config_read(0, &mut cfg).unwrap();
    let tph = tph_regs::caps::find_ext_cap(&cfg, tph_regs::caps::EXT_CAP_ID_TPH);
    assert_eq!(tph, None);
    let visible = fx_gated(CAP_DEV);
    visible.fd.config_read(0, &mut cfg).unwrap();
    let tph = tph_regs::caps::find_ext_cap(&cfg, tph_regs::caps::EXT_CAP_ID_TPH);
    assert_eq!(tph, Some(TPH_AT));
}

// ---- the two revisions share one validation and programming path ----

mod differential {
    use super::*;
    use proptest::prelude::*;
    use tph_kernel::vfio::abi::TphEntry as Entry;

    /// Devices with a table (capability, MSI-X) and without one.
    const DEVICES: [&str; 3] = [CAP_DEV, MSIX_DEV, DS_ONLY_DEV];

    /// Mostly present CPUs, some absent (8+) and the clear value.
    fn cpu() -> impl Strategy<Value = u32> {
        prop_oneof![8 => 0u32..8, 1 => 8u32..12, 1 => Just(CLEAR)]
    }

    /// The same device on a v7 host and on a feature host, both enabled in `mode` (hardware
    /// encoding; IV unless the device lacks it) with `vectors` MSI-X vectors.
    fn pair(bdf: &str, vectors: u32, ds: bool) -> (Fixture, Fixture) {
        let v7 = Fixture::with(bdf, HostOptions::new().with_unsafe_ds(true));
        let feature = fx(bdf);
        let _ = v7.fd.set_irqs(vectors);
        let _ = feature.fd.set_irqs(vectors);
        let (v7_mode, hw_mode) = if ds {
            (abi::MODE_DS, HW_DS)
        } else {
            (abi::MODE_IV, HW_IV)
        };
        let enabled = v7.enable(v7_mode).is_ok();
        assert_eq!(write_control(&feature, hw_mode).is_ok(), enabled);
        (v7, feature)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(200))]

        /// A feature SET of a contiguous run answers and programs exactly as v7 SET_ST of the
        /// same entries.
        #[test]
        fn feature_set_equals_v7_set_st_of_the_same_run(
            dev in 0usize..3,
            vectors in 0u32..20,
            ds in any::<bool>(),
            index in 0u16..20,
            mem in 0u8..2,
            cpus in proptest::collection::vec(cpu(), 1..6),
        ) {
            let (v7, feature) = pair(DEVICES[dev], vectors, ds);
            let entries: Vec<Entry> = (index..)
                .zip(&cpus)
                .map(|(i, c)| Entry::new(*c, mem, i))
                .collect();
            let mut arg = encode_feature_st(FEATURE_SET, u32::from(mem), index, &cpus);
            prop_assert_eq!(call(&feature, &mut arg), v7.set_st(&entries));
            prop_assert_eq!(feature.table(), v7.table());
            prop_assert_eq!(feature.control(), v7.control());
        }

        /// A feature GET answers exactly as v7 GET_ST of the same CPUs.
        #[test]
        fn feature_get_equals_v7_get_st_of_the_same_cpus(
            dev in 0usize..3,
            ds in any::<bool>(),
            mem in 0u8..2,
            cpus in proptest::collection::vec(cpu(), 1..6),
        ) {
            let (v7, feature) = pair(DEVICES[dev], 0, ds);
            let queries: Vec<(u32, u8)> = cpus.iter().map(|c| (*c, mem)).collect();
            let want = v7.get_st(&queries).map(|t| t.into_iter().map(u32::from).collect());
            prop_assert_eq!(get(&feature, u32::from(mem), &cpus), want);
        }
    }
}
