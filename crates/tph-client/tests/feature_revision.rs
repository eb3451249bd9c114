//! The feature-revision adapter against a recording fake of that kernel: a config space whose
//! TPH Control register the fake virtualises, and `VFIO_DEVICE_FEATURE` calls recorded byte for
//! byte, failing on command.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tph_client::abi::{CPU_CLEAR, FEATURE_GET, FEATURE_SET, FEATURE_TPH_ST};
use tph_client::backend::Backend;
use tph_client::{CpuQuery, Errno, Error, MemType, Mode, Revision, Steer, TphDevice};

/// Where the fake's TPH capability sits.
const TPH: usize = 0x100;

#[derive(Debug, Default)]
struct FeatureKernel {
    cfg: Vec<u8>,
    calls: Vec<Vec<u8>>,
    fail_call: Option<usize>,
}

impl FeatureKernel {
    /// TPH Requester capability: NS+IV+DS, extended, table in MSI-X with 64 entries.
    fn new() -> Self {
        let mut cfg = vec![0u8; 4096];
        cfg[TPH..TPH + 4].copy_from_slice(&(0x17u32 | 1 << 16).to_le_bytes());
        let cap: u32 = 0x7 | 1 << 8 | 2 << 9 | 63 << 16;
        cfg[TPH + 4..TPH + 8].copy_from_slice(&cap.to_le_bytes());
        FeatureKernel {
            cfg,
            ..Default::default()
        }
    }

    fn control(&self) -> u32 {
        u32::from_le_bytes(self.cfg[TPH + 8..TPH + 12].try_into().unwrap())
    }
}

fn word(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().unwrap())
}

impl Backend for FeatureKernel {
    fn tph_ioctl(&mut self, _arg: &mut [u8]) -> Result<i32, Errno> {
        panic!("the feature revision must not send the v7 ioctl");
    }
    fn set_msix(&mut self, _start: u32, _fds: &[std::os::fd::BorrowedFd<'_>]) -> Result<(), Errno> {
        Ok(())
    }
    fn reset(&mut self) -> Result<(), Errno> {
        Ok(())
    }
    fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        let o = offset as usize;
        buf.copy_from_slice(&self.cfg[o..o + buf.len()]);
        Ok(())
    }
    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        let o = offset as usize;
        self.cfg[o..o + data.len()].copy_from_slice(data);
        Ok(())
    }
    fn cpu_count(&self) -> Option<u32> {
        Some(8)
    }
    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.calls.push(arg.to_vec());
        if self.fail_call == Some(self.calls.len() - 1) {
            return Err(Errno(libc::EIO));
        }
        if word(arg, 4) & FEATURE_GET != 0 {
            for i in 0..usize::from(u16::from_le_bytes([arg[14], arg[15]])) {
                let at = 16 + 4 * i;
                let tag = word(arg, at) + 0x100 * (word(arg, 8) + 1);
                arg[at..at + 4].copy_from_slice(&tag.to_le_bytes());
            }
        }
        Ok(0)
    }
}

fn dev() -> TphDevice<FeatureKernel> {
    TphDevice::with_revision(FeatureKernel::new(), Revision::Feature).unwrap()
}

fn set_call(mem: u32, index: u16, cpus: &[u32]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&(16 + 4 * cpus.len() as u32).to_le_bytes());
    b.extend_from_slice(&(FEATURE_SET | FEATURE_TPH_ST).to_le_bytes());
    b.extend_from_slice(&mem.to_le_bytes());
    b.extend_from_slice(&index.to_le_bytes());
    b.extend_from_slice(&(cpus.len() as u16).to_le_bytes());
    for c in cpus {
        b.extend_from_slice(&c.to_le_bytes());
    }
    b
}

fn steer(index: u16, cpu: u32) -> Steer {
    Steer {
        index,
        cpu,
        mem: MemType::Volatile,
    }
}

#[test]
fn feature_capabilities_come_from_config_space() {
    let mut d = dev();
    let c = d.capabilities().unwrap();
    assert_eq!((c.iv, c.ds, c.st_table_size), (true, true, 64));
    assert!(d.backend().calls.is_empty(), "no ioctl needed");
}

#[test]
fn feature_enable_writes_virtualised_control() {
    let mut d = dev();
    d.enable(Mode::Iv).unwrap();
    assert_eq!(d.backend().control(), 0x301, "IV, TPH + extended TPH");
    assert!(matches!(
        d.enable(Mode::Iv),
        Err(Error::AlreadyEnabled { .. })
    ));
    d.disable().unwrap();
    assert_eq!(d.backend().control(), 0);
}

#[test]
fn feature_set_st_one_call_per_contiguous_run() {
    let mut d = dev();
    d.enable(Mode::Iv).unwrap();
    d.set_entries(&[steer(0, 1), steer(1, 2), steer(5, 3)])
        .unwrap();
    assert_eq!(
        d.backend().calls,
        vec![set_call(0, 0, &[1, 2]), set_call(0, 5, &[3])]
    );
}

#[test]
fn feature_set_st_failure_rolls_back_earlier_runs() {
    let mut d = dev();
    d.enable(Mode::Iv).unwrap();
    d.backend_mut().fail_call = Some(1);
    let err = d
        .set_entries(&[steer(0, 1), steer(1, 2), steer(5, 3)])
        .unwrap_err();
    assert_eq!(err.errno(), Some(Errno(libc::EIO)));
    let calls = &d.backend().calls;
    assert_eq!(calls.len(), 3);
    assert_eq!(
        calls[2],
        set_call(0, 0, &[CPU_CLEAR, CPU_CLEAR]),
        "first run cleared again"
    );
}

#[test]
fn feature_clear_sends_all_ones_cpu() {
    let mut d = dev();
    d.enable(Mode::Iv).unwrap();
    d.clear_entries(&[7, 8]).unwrap();
    assert_eq!(
        d.backend().calls,
        vec![set_call(0, 7, &[CPU_CLEAR, CPU_CLEAR])]
    );
}

#[test]
fn feature_get_st_groups_by_memory_type_and_keeps_order() {
    let mut d = dev();
    d.enable(Mode::Ds).unwrap();
    let q = [
        CpuQuery {
            cpu: 1,
            mem: MemType::Volatile,
        },
        CpuQuery {
            cpu: 2,
            mem: MemType::Persistent,
        },
        CpuQuery {
            cpu: 3,
            mem: MemType::Volatile,
        },
    ];
    // The fake answers tag = cpu + 0x100 (volatile) or cpu + 0x200 (persistent).
    assert_eq!(d.steering_tags(&q).unwrap(), vec![0x101, 0x202, 0x103]);
    assert_eq!(d.backend().calls.len(), 2);
}

#[test]
fn feature_get_st_outside_ds_mode_sends_nothing() {
    let mut d = dev();
    let q = [CpuQuery {
        cpu: 1,
        mem: MemType::Volatile,
    }];
    assert!(matches!(
        d.steering_tags(&q),
        Err(Error::NotEnabled {
            ds_needed: true,
            ..
        })
    ));
    assert!(d.backend().calls.is_empty());
}
