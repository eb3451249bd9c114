//! The feature-revision adapter against a recording fake of that kernel: a config space whose
//! TPH Control register the fake virtualises as the series author's kernel does (the ST Mode
//! Select value written alone enables, the kernel choosing the requester type; 0 disables),
//! `VFIO_DEVICE_FEATURE` calls recorded byte for byte (PROBE calls apart), failing on command,
//! and answering ENOTTY for a feature number other than its own.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use tph_client::abi::{
    CPU_CLEAR, FEATURE_GET, FEATURE_MASK, FEATURE_PROBE, FEATURE_SET, FEATURE_TPH_ST,
};
use tph_client::backend::Backend;
use tph_client::{CpuQuery, Errno, Error, MemType, Mode, Revision, Steer, TphDevice};

/// Where the fake's TPH capability sits.
const TPH: usize = 0x100;

/// Requester Enable the fake programs on enable: TPH + extended TPH.
const REQ_EXT: u32 = 3 << 8;

#[derive(Debug, Default)]
struct FeatureKernel {
    cfg: Vec<u8>,
    /// GET and SET calls, byte for byte.
    calls: Vec<Vec<u8>>,
    /// PROBE calls' `flags`.
    probes: Vec<u32>,
    /// Every config write (offset, bytes).
    writes: Vec<(u64, Vec<u8>)>,
    fail_call: Option<usize>,
    /// The feature number this kernel gives TPH_ST.
    number: u32,
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
            number: FEATURE_TPH_ST,
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
        self.writes.push((offset, data.to_vec()));
        if offset == (TPH + 8) as u64 {
            let mode = u32::from(data[0] & 7);
            let programmed = if mode == 0 { 0 } else { mode | REQ_EXT };
            self.cfg[TPH + 8..TPH + 12].copy_from_slice(&programmed.to_le_bytes());
        }
        Ok(())
    }
    fn cpu_count(&self) -> Option<u32> {
        Some(8)
    }
    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        let flags = word(arg, 4);
        if flags & FEATURE_MASK != self.number {
            self.probes.push(flags);
            return Err(Errno(libc::ENOTTY));
        }
        if flags & FEATURE_PROBE != 0 {
            self.probes.push(flags);
            return Ok(0);
        }
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
    Steer::new(index, cpu)
}

#[test]
fn feature_capabilities_come_from_config_space_after_a_probe() {
    let mut d = dev();
    let c = d.capabilities().unwrap();
    assert_eq!((c.iv, c.ds, c.st_table_size), (true, true, 64));
    assert!(d.backend().calls.is_empty(), "no GET or SET needed");
    assert_eq!(d.backend().probes, [FEATURE_PROBE | FEATURE_SET | 13]);
}

/// The author's userspace: enable = the ST Mode Select value alone (Requester Enable bits 0),
/// disable = 0; the kernel programs the requester type.
#[test]
fn feature_enable_writes_the_mode_alone_and_disable_writes_zero() {
    let mut d = dev();
    d.enable(Mode::Iv).unwrap();
    let control = (TPH + 8) as u64;
    assert_eq!(d.backend().writes, [(control, 1u32.to_le_bytes().to_vec())]);
    assert_eq!(
        d.backend().control(),
        1 | REQ_EXT,
        "what the kernel programmed"
    );
    assert!(matches!(
        d.enable(Mode::Iv),
        Err(Error::AlreadyEnabled { .. })
    ));
    d.disable().unwrap();
    assert_eq!(
        d.backend().writes[1],
        (control, 0u32.to_le_bytes().to_vec())
    );
    assert_eq!(d.backend().control(), 0);
    d.enable(Mode::Ds).unwrap();
    assert_eq!(
        d.backend().writes[2],
        (control, 2u32.to_le_bytes().to_vec())
    );
}

#[test]
fn feature_number_override_is_confirmed_by_probe_before_use() {
    let mut kernel = FeatureKernel::new();
    kernel.number = 21; // a kernel that numbered TPH_ST differently
    let mut d = TphDevice::with_revision(kernel, Revision::Feature)
        .unwrap()
        .with_feature_number(21);
    d.enable(Mode::Iv).unwrap();
    d.set_entries(&[steer(4, 1)]).unwrap();
    assert_eq!(d.backend().probes, [FEATURE_PROBE | FEATURE_SET | 21]);
    assert_eq!(word(&d.backend().calls[0], 4), FEATURE_SET | 21);
    d.set_entries(&[steer(5, 1)]).unwrap();
    assert_eq!(d.backend().probes.len(), 1, "confirmed once");
}

#[test]
fn feature_number_the_kernel_lacks_is_refused_after_the_probe_alone() {
    let mut kernel = FeatureKernel::new();
    kernel.number = 21;
    let mut d = TphDevice::with_revision(kernel, Revision::Feature).unwrap();
    d.enable(Mode::Iv).unwrap();
    let err = d.set_entries(&[steer(4, 1)]).unwrap_err();
    assert!(
        matches!(err, Error::FeatureUnavailable { feature: 13, .. }),
        "{err:?}"
    );
    assert_eq!(err.errno(), Some(Errno(libc::ENOTTY)));
    assert!(
        d.backend().calls.is_empty(),
        "no SET under an unconfirmed number"
    );
    let caps = d.capabilities().unwrap();
    assert_eq!((caps.iv, caps.ds), (false, false), "nothing usable");
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
        CpuQuery::new(1),
        CpuQuery::new(2).with_mem(MemType::Persistent),
        CpuQuery::new(3),
    ];
    // The fake answers tag = cpu + 0x100 (volatile) or cpu + 0x200 (persistent).
    assert_eq!(d.steering_tags(&q).unwrap(), vec![0x101, 0x202, 0x103]);
    assert_eq!(d.backend().calls.len(), 2);
}

#[test]
fn feature_get_st_outside_ds_mode_sends_nothing() {
    let mut d = dev();
    let q = [CpuQuery::new(1)];
    assert!(matches!(
        d.steering_tags(&q),
        Err(Error::NotEnabled {
            ds_needed: true,
            ..
        })
    ));
    assert!(d.backend().calls.is_empty());
}
