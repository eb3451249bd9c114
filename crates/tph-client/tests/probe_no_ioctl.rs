//! The revision probe decides from sysfs names alone: on an unknown kernel nothing is sent.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tph_client::backend::Backend;
use tph_client::{Errno, Error, Probe, Revision, TphDevice};

/// Counts every call into the kernel; answers none of them.
#[derive(Debug, Default)]
struct CountingBackend(Arc<AtomicUsize>);

impl CountingBackend {
    fn bump(&self) -> Result<(), Errno> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Err(Errno(libc::ENOTTY))
    }
}

impl Backend for CountingBackend {
    fn tph_ioctl(&mut self, _arg: &mut [u8]) -> Result<i32, Errno> {
        self.bump().map(|_| 0)
    }
    fn set_msix(&mut self, _start: u32, _fds: &[std::os::fd::BorrowedFd<'_>]) -> Result<(), Errno> {
        self.bump()
    }
    fn reset(&mut self) -> Result<(), Errno> {
        self.bump()
    }
    fn read_config(&self, _offset: u64, _buf: &mut [u8]) -> Result<(), Errno> {
        self.bump()
    }
    fn cpu_count(&self) -> Option<u32> {
        None
    }
}

/// A fake sysfs with vfio_pci's parameter files named `params`.
struct FakeSysfs(PathBuf);

impl FakeSysfs {
    fn new(name: &str, params: &[&str]) -> Self {
        let root = std::env::temp_dir().join(format!("tph-probe-{name}-{}", std::process::id()));
        let dir = root.join("module/vfio_pci/parameters");
        std::fs::create_dir_all(&dir).unwrap();
        for p in params {
            std::fs::write(dir.join(p), "N\n").unwrap();
        }
        FakeSysfs(root)
    }
}

impl Drop for FakeSysfs {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn probe_unknown_kernel_issues_no_ioctl() {
    let sysfs = FakeSysfs::new("unknown", &["disable_vga", "nointxmask"]);
    let calls = Arc::new(AtomicUsize::new(0));
    let r = TphDevice::with_probe(CountingBackend(calls.clone()), &Probe::new(&sysfs.0));
    assert!(matches!(
        r,
        Err(Error::NoInterface {
            revision: Revision::Unknown
        })
    ));
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "the probe must not touch the device"
    );
}

#[test]
fn probe_feature_kernel_opens_without_ioctl() {
    let sysfs = FakeSysfs::new("feature", &["enable_unsafe_tph"]);
    let calls = Arc::new(AtomicUsize::new(0));
    let dev = TphDevice::with_probe(CountingBackend(calls.clone()), &Probe::new(&sysfs.0)).unwrap();
    assert_eq!(dev.revision(), Revision::Feature);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "opening decides from sysfs only"
    );
}

#[test]
fn probe_v7_kernel_opens_without_ioctl() {
    let sysfs = FakeSysfs::new("v7", &["enable_unsafe_tph_ds_mode"]);
    let calls = Arc::new(AtomicUsize::new(0));
    let dev = TphDevice::with_probe(CountingBackend(calls.clone()), &Probe::new(&sysfs.0)).unwrap();
    assert_eq!(dev.revision(), Revision::V7);
    assert_eq!(
        calls.load(Ordering::SeqCst),
        0,
        "opening decides from sysfs only"
    );
}
