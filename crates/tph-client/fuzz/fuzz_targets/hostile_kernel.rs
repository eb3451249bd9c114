//! The client must not panic whatever a kernel answers: every reply byte, return value and errno
//! comes from the fuzzer, and the client's decoders also see the raw input.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tph_client::abi;
use tph_client::backend::Backend;
use tph_client::{CpuQuery, Errno, MemType, Mode, Revision, Steer, TphDevice};

/// Answers every call from the fuzz input: an errno byte (0 = success), then bytes written over
/// the argument.
#[derive(Debug)]
struct Hostile {
    input: Vec<u8>,
    /// Read position (a `Cell`: config reads take `&self`).
    at: std::cell::Cell<usize>,
}

impl Hostile {
    fn take(&self, n: usize) -> &[u8] {
        let start = self.at.get().min(self.input.len());
        let end = (start + n).min(self.input.len());
        self.at.set(end);
        &self.input[start..end]
    }

    fn answer(&self, arg: &mut [u8]) -> Result<i32, Errno> {
        let errno = self.take(1).first().copied().unwrap_or(0);
        let n = self.take(1).first().copied().unwrap_or(0) as usize;
        let bytes = self.take(n).to_vec();
        for (a, b) in arg.iter_mut().zip(bytes) {
            *a = b;
        }
        if errno == 0 { Ok(0) } else { Err(Errno(i32::from(errno))) }
    }
}

impl Backend for Hostile {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.answer(arg)
    }
    fn set_msix(&mut self, _start: u32, _fds: &[std::os::fd::BorrowedFd<'_>]) -> Result<(), Errno> {
        self.answer(&mut []).map(|_| ())
    }
    fn reset(&mut self) -> Result<(), Errno> {
        self.answer(&mut []).map(|_| ())
    }
    fn read_config(&self, _offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.answer(buf).map(|_| ())
    }
    fn cpu_count(&self) -> Option<u32> {
        Some(8)
    }
    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.answer(arg)
    }
    fn write_config(&mut self, _offset: u64, _data: &[u8]) -> Result<(), Errno> {
        self.answer(&mut []).map(|_| ())
    }
}

fn ops(dev: &mut TphDevice<Hostile>) {
    let _ = dev.capabilities();
    let _ = dev.enable(Mode::Iv);
    let irqs: Vec<_> = (0..4).filter_map(|_| tph_client::backend::eventfd().ok()).collect();
    let fds: Vec<_> = irqs.iter().map(std::os::fd::AsFd::as_fd).collect();
    let _ = dev.enable_msix(&fds);
    let steer = [Steer::new(0, 1), Steer::new(3, 99).with_mem(MemType::Persistent)];
    let _ = dev.set_entries(&steer);
    let _ = dev.clear_entries(&[0, 3, 9]);
    let _ = dev.enable(Mode::Ds);
    let _ = dev.steering_tags(&[CpuQuery::new(2), CpuQuery::new(9).with_mem(MemType::Persistent)]);
    let _ = dev.reset();
    let _ = dev.disable();
}

fuzz_target!(|data: &[u8]| {
    let _ = abi::TphOp::from_bytes(data);
    let _ = abi::decode_cap(data);
    let _ = abi::decode_entries(data, data.first().copied().unwrap_or(0) as usize);
    let _ = tph_client::abi::vfio::decode_msix_irq_count(data);
    for revision in [Revision::V7, Revision::Feature] {
        let backend = Hostile { input: data.to_vec(), at: std::cell::Cell::new(0) };
        if let Ok(mut dev) = TphDevice::with_revision(backend, revision) {
            ops(&mut dev);
            let mut raw = data.to_vec();
            let _ = dev.raw_ioctl(&mut raw);
        }
    }
});
