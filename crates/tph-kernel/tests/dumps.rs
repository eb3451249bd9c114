//! Scenarios on real `lspci -xxxx` dumps (copied into `tests/data/`).
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::*;
use tph_kernel::vfio::abi;
use tph_kernel::{Errno, Host, HostOptions};

fn host(file: &str, opts: HostOptions) -> Host {
    let path = format!("{}/tests/data/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(path).expect("dump");
    Host::new(tph_regs::parse_lspci_dump(&text).expect("parse"), opts)
}

fn tph_devices(h: &Host) -> Vec<String> {
    h.machine()
        .functions
        .iter()
        .filter(|f| tph_regs::caps::find_ext_cap(&f.config, 0x17).is_some())
        .map(|f| f.bdf.lspci_str(false))
        .collect()
}

#[test]
fn machine_23c7a39_i350s_refuse_enable_with_einval() {
    let h = host("machine-23c7a39.lspci", unsafe_opts());
    let i350s = tph_devices(&h);
    assert_eq!(i350s.len(), 4, "{i350s:?}");
    for b in &i350s {
        let f = Fixture::on(host("machine-23c7a39.lspci", unsafe_opts()), b);
        assert_eq!(f.get_cap(), Ok((abi::MODE_DS, 8)), "{b}");
        assert_eq!(
            f.enable(abi::MODE_DS),
            Err(Errno::EINVAL),
            "{b}: no TPH completer"
        );
        assert_eq!(f.control(), 0);
    }
    drop(h);
}

#[test]
fn machine_23c7a39_i350_ds_without_unsafe_parameter_is_eopnotsupp() {
    let h = host("machine-23c7a39.lspci", HostOptions::default());
    let b = tph_devices(&h).remove(0);
    let f = Fixture::on(h, &b);
    assert_eq!(f.get_cap(), Ok((0, 8)));
    assert_eq!(f.enable(abi::MODE_DS), Err(Errno::EOPNOTSUPP));
}

#[test]
fn intel_dsa_firmware_left_control_is_cleared_at_takeover() {
    let h = host("intel-dsa-pri-pasid.lspci", HostOptions::default());
    let b = bdf("6a:01.0");
    let cfg = &h.machine().function(b).expect("DSA").config;
    assert_eq!(
        &cfg[0x168..0x16c],
        &0x102u32.to_le_bytes(),
        "dump: DS, TPH only"
    );
    let dev = h.take_over(b).expect("take over");
    assert_eq!(dev.snapshot().control, Some(0));
    assert!(dev.violations().is_empty());
    assert_eq!(
        dev.snapshot().st_table,
        vec![0, 0x000a],
        "entries left as they are"
    );
}

#[test]
fn intel_dsa_rciep_enables_ds_but_has_no_root_port_for_tags() {
    let h = host("intel-dsa-pri-pasid.lspci", unsafe_opts());
    let f = Fixture::on(h, "6a:01.0");
    assert_eq!(f.get_cap(), Ok((abi::MODE_DS, 2)));
    assert_eq!(f.enable(abi::MODE_DS), Ok(0), "RCiEP: no completer check");
    assert_eq!(f.control(), ctrl(2, 1), "no extended requester: TPH only");
    assert_eq!(f.get_st(&[(0, 0)]), Err(Errno::ENODEV));
}

#[test]
fn intel_0d93_advertises_no_mode_so_enable_is_einval() {
    let h = host("intel-0d93-cxl.lspci", unsafe_opts());
    let b = tph_devices(&h).remove(0);
    let f = Fixture::on(h, &b);
    assert_eq!(f.get_cap(), Ok((0, 16)));
    assert_eq!(f.enable(abi::MODE_IV), Err(Errno::EINVAL));
    assert_eq!(f.enable(abi::MODE_DS), Err(Errno::EINVAL));
}

#[test]
fn machine_02daadc_without_tph_answers_enodev_everywhere() {
    let h = host("machine-02daadc.lspci", unsafe_opts());
    assert!(tph_devices(&h).is_empty());
    let devices = h.devices();
    assert!(devices.len() > 5, "{devices:?}");
    for b in devices {
        let dev = h.take_over(b).expect("take over");
        let fd = dev.open().expect("open");
        let mut arg = abi::encode_op(abi::OP_GET_CAP, [0; 8]);
        let r = fd.ioctl_bytes(abi::VFIO_DEVICE_PCI_TPH, &mut arg);
        assert_eq!(r, Err(Errno::ENODEV), "{b}");
        let mut header = [0u8; 64];
        fd.config_read(0, &mut header).expect("config read");
        assert_eq!(
            &header[..4],
            &h.machine().function(b).expect("fn").config[..4]
        );
        let _ = fd.reset();
        fd.close();
        assert!(dev.violations().is_empty());
    }
}
