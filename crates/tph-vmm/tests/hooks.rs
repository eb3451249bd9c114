//! The hooks a VMM calls, against a recording host: what reaches the host (every TPH call
//! counted), what is left on it, and that a host refusal never fails the VMM's own path.
//!
//! The host is the emulated kernel (v7 and feature revision) reached through the client; the
//! recording backend below sees every call the client makes and can make the next TPH calls
//! fail, as a kernel would.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::os::fd::BorrowedFd;
use std::sync::{Arc, Mutex};

use common::{config, host, host_tag, revision, HostDevice, ABIS_AND_GATES};
use tph_client::backend::Backend;
use tph_client::{Errno, MemType, Mode, Steer, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::KernelAbi;
use tph_vmm::vtag::TagWidth;
use tph_vmm::{ControlChange, Effect, VirtualTph};

/// A host call as the recording backend saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// `VFIO_DEVICE_PCI_TPH` (v7), `VFIO_DEVICE_FEATURE` or a config write (feature revision).
    Tph,
    /// `VFIO_DEVICE_SET_IRQS`.
    Irqs,
    /// `VFIO_DEVICE_RESET`.
    Reset,
}

#[derive(Debug, Default)]
struct Log {
    calls: Vec<Call>,
    /// Errno for the next TPH calls, one per call, front first.
    fail: Vec<Errno>,
}

/// The emulated backend with every call recorded.
#[derive(Debug)]
struct Recording {
    inner: EmulatedBackend,
    log: Arc<Mutex<Log>>,
}

impl Recording {
    fn tph(&self) -> Result<(), Errno> {
        let mut log = self.log.lock().unwrap();
        log.calls.push(Call::Tph);
        match log.fail.is_empty() {
            true => Ok(()),
            false => Err(log.fail.remove(0)),
        }
    }
}

impl Backend for Recording {
    fn tph_ioctl(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.tph()?;
        self.inner.tph_ioctl(arg)
    }
    fn set_msix(&mut self, start: u32, eventfds: &[BorrowedFd<'_>]) -> Result<(), Errno> {
        self.log.lock().unwrap().calls.push(Call::Irqs);
        self.inner.set_msix(start, eventfds)
    }
    fn reset(&mut self) -> Result<(), Errno> {
        self.log.lock().unwrap().calls.push(Call::Reset);
        self.inner.reset()
    }
    fn read_config(&self, offset: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.inner.read_config(offset, buf)
    }
    fn cpu_count(&self) -> Option<u32> {
        self.inner.cpu_count()
    }
    fn device_feature(&mut self, arg: &mut [u8]) -> Result<i32, Errno> {
        self.tph()?;
        self.inner.device_feature(arg)
    }
    fn write_config(&mut self, offset: u64, data: &[u8]) -> Result<(), Errno> {
        self.tph()?;
        self.inner.write_config(offset, data)
    }
}

/// EIO, a failed hardware access (Linux's errno 5).
const EIO: Errno = Errno(5);

/// EINVAL, a refusal in validation (Linux's errno 22).
const EINVAL: Errno = Errno(22);

/// Four vCPUs pinned to host CPUs 5, 6, 7 and 9.
const PINS: [Option<u32>; 4] = [Some(5), Some(6), Some(7), Some(9)];

struct Vm {
    _host: tph_kernel::Host,
    v: VirtualTph<Recording>,
    log: Arc<Mutex<Log>>,
    dev: HostDevice,
}

impl Vm {
    /// A VM on a fresh host: `unsafe_param` is the revision's module parameter.
    fn new(abi: KernelAbi, unsafe_param: bool, dev: HostDevice) -> Self {
        let host = host(abi, unsafe_param);
        let inner = EmulatedBackend::take_over(&host, dev.bdf().parse().unwrap()).unwrap();
        let log = Arc::new(Mutex::new(Log::default()));
        let rec = Recording {
            inner,
            log: log.clone(),
        };
        let client = TphDevice::with_revision(rec, revision(abi)).unwrap();
        let v = VirtualTph::new(client, config(dev, &PINS)).unwrap();
        // What building the device asked (configuration, GET_CAP) is the VMM's, not the guest's.
        log.lock().unwrap().calls.clear();
        Self {
            _host: host,
            v,
            log,
            dev,
        }
    }

    fn tph_calls(&self) -> usize {
        let log = self.log.lock().unwrap();
        log.calls.iter().filter(|c| **c == Call::Tph).count()
    }

    fn fail_next(&self, errnos: &[Errno]) {
        self.log.lock().unwrap().fail = errnos.to_vec();
    }

    fn snapshot(&self) -> tph_kernel::TphSnapshot {
        self.v.device().backend().inner.device().snapshot()
    }

    fn host_table(&self) -> Vec<u16> {
        self.snapshot().st_table
    }

    fn host_tph_on(&self) -> bool {
        self.snapshot().control.unwrap_or(0) & 0x300 != 0
    }

    /// The VMM's interrupt set-up for `n` host vectors, with the hooks around it.
    fn irqs(&mut self, n: u32) -> (Effect, Effect) {
        let before = self.v.host_msix_will_change();
        let fd = self.v.device().backend().inner.fd().unwrap();
        // Disabling MSI-X that is off is EINVAL (mainline), so only what is needed.
        if self.snapshot().msix_vectors > 0 {
            fd.set_irqs(0).unwrap();
        }
        if n > 0 {
            fd.set_irqs(n).unwrap();
        }
        let after = self.v.host_msix_enabled(n);
        (before, after)
    }

    fn cap(&self) -> u16 {
        self.v.cap_offset()
    }

    /// The Control value the guest core writes for IV mode on this device's root port.
    fn iv_control(&self) -> u32 {
        match self.dev {
            HostDevice::MsixTable => 0x301,
            HostDevice::CapTable => 0x101,
        }
    }

    fn width(&self) -> TagWidth {
        match self.dev {
            HostDevice::MsixTable => TagWidth::Bits16,
            HostDevice::CapTable => TagWidth::Bits8,
        }
    }

    /// The guest writes tag `tag` into its entry `index` wherever the table lives, as 4-byte
    /// accesses (a config dword, or Vector Control with the vector unmasked).
    fn guest_entry(&mut self, index: u16, tag: u16) -> Effect {
        match self.dev {
            HostDevice::CapTable => {
                // The entry's dword holds two entries: keep the neighbour.
                let at = self.cap() + 0xc + 2 * (index & !1);
                let mut dword = [0u8; 4];
                self.v.read_config(at, &mut dword);
                let lane = usize::from(index & 1) * 2;
                dword[lane..lane + 2].copy_from_slice(&tag.to_le_bytes());
                self.v.write_config(at, &dword)
            }
            HostDevice::MsixTable => self.v.write_msix_table(
                u64::from(index) * 16 + 12,
                &(u32::from(tag) << 16).to_le_bytes(),
            ),
        }
    }
}

fn ok(effect: Effect) -> Effect {
    assert!(effect.host_ok(), "host refused: {:?}", effect.host_failures);
    effect
}

/// A guest that never enables TPH: it reads the capability, its driver sets up MSI-X (mask
/// all, program each vector's message with 4- and 8-byte writes, unmask), the VMM changes the
/// host's vectors twice, the guest reboots. Not one TPH call reaches the host, on either
/// revision, gated or not.
#[test]
fn guest_that_never_touches_tph_causes_no_host_tph_call() {
    for (abi, gate) in ABIS_AND_GATES {
        for dev in [HostDevice::CapTable, HostDevice::MsixTable] {
            let mut vm = Vm::new(abi, gate, dev);
            let mut regs = [0u8; 12];
            vm.v.read_config(vm.cap(), &mut regs);
            let (a, b) = vm.irqs(8);
            for e in [a, b] {
                assert_eq!(ok(e).host_calls, 0);
            }
            for vector in 0..8u64 {
                let at = vector * 16;
                ok(vm.v.write_msix_table(at + 12, &1u32.to_le_bytes())); // msix_mask_all
                ok(vm.v.write_msix_table(at, &0xfee0_0000u64.to_le_bytes()));
                // Message Data and Vector Control (unmasked) in one aligned qword.
                ok(vm.v.write_msix_table(at + 8, &0x4021u64.to_le_bytes()));
                assert!(!vm.v.write_vector_control(vector as u16, 0).masked);
            }
            let (a, b) = vm.irqs(2);
            for e in [a, b] {
                assert_eq!(ok(e).host_calls, 0);
            }
            assert_eq!(ok(vm.v.reset()).host_calls, 0);
            vm.irqs(0);
            assert_eq!(
                vm.tph_calls(),
                0,
                "{abi:?} gate {gate} {dev:?}: {:?}",
                vm.log.lock().unwrap().calls
            );
            assert_eq!(vm.v.stats().host_calls, 0);
        }
    }
}

/// MSI-X changes clear exactly the entries the layer programmed: an entry programmed behind
/// the layer's back keeps its tag, and entries the layer cleared or never touched cost nothing.
#[test]
fn msix_change_clears_only_what_the_layer_programmed() {
    for abi in common::check::ABIS {
        let mut vm = Vm::new(abi, abi == KernelAbi::Feature, HostDevice::MsixTable);
        vm.irqs(16);
        let iv = vm.iv_control();
        let e = ok(vm.v.write_config(vm.cap() + 8, &iv.to_le_bytes()));
        assert!(matches!(e.control, Some(ControlChange::Enabled { .. })));
        ok(vm.guest_entry(1, 2)); // vCPU 1 -> host CPU 6
        ok(vm.guest_entry(3, 4)); // vCPU 3 -> host CPU 9
                                  // Someone else (not this layer) programs entry 5 through the same handle.
        let steer = [Steer::new(5, 11)];
        vm.v.device_mut().set_entries(&steer).unwrap();
        let w = vm.width();
        let t = vm.host_table();
        assert_eq!(
            (t[1], t[3]),
            (
                host_tag(6, MemType::Volatile, w),
                host_tag(9, MemType::Volatile, w)
            )
        );
        let effect = ok(vm.v.host_msix_will_change());
        assert_eq!(effect.host_calls, 1, "{abi:?}: one batched clear");
        let t = vm.host_table();
        assert_eq!((t[1], t[3]), (0, 0), "{abi:?}");
        assert_eq!(
            t[5],
            host_tag(11, MemType::Volatile, w),
            "{abi:?}: not ours, left alone"
        );
        // Nothing of ours is left: a second change costs nothing.
        assert_eq!(ok(vm.v.host_msix_will_change()).host_calls, 0);
        // The vectors come back: the guest's tags are programmed again, in one call.
        let fd = vm.v.device().backend().inner.fd().unwrap();
        fd.set_irqs(0).unwrap();
        fd.set_irqs(16).unwrap();
        ok(vm.v.host_msix_enabled(16));
        let t = vm.host_table();
        assert_eq!(
            (t[1], t[3]),
            (
                host_tag(6, MemType::Volatile, w),
                host_tag(9, MemType::Volatile, w)
            )
        );
    }
}

/// With the guest's TPH off, MSI-X changes never turn the host's TPH on (the bug: three
/// host calls at every change, and `Err(TphDisabled)` on a gated feature-revision host).
#[test]
fn msix_change_with_guest_tph_off_never_enables_the_host() {
    for abi in common::check::ABIS {
        let mut vm = Vm::new(abi, abi == KernelAbi::Feature, HostDevice::MsixTable);
        vm.irqs(16);
        let iv = vm.iv_control();
        ok(vm.v.write_config(vm.cap() + 8, &iv.to_le_bytes()));
        ok(vm.guest_entry(2, 1));
        ok(vm.v.write_config(vm.cap() + 8, &0u32.to_le_bytes())); // guest: TPH off
        assert!(!vm.host_tph_on());
        let calls = vm.tph_calls();
        let (a, b) = vm.irqs(4);
        assert_eq!((ok(a).host_calls, ok(b).host_calls), (0, 0));
        assert_eq!(vm.tph_calls(), calls, "{abi:?}");
        assert!(!vm.host_tph_on(), "{abi:?}");
    }
}

/// A guest FLR (or a VM reboot): the host ends with TPH off and the layer's entries cleared,
/// the guest reads every register at its reset value; a second reset costs nothing.
#[test]
fn reset_leaves_the_host_off_and_clean_and_the_registers_at_reset_values() {
    for abi in common::check::ABIS {
        for dev in [HostDevice::CapTable, HostDevice::MsixTable] {
            let mut vm = Vm::new(abi, abi == KernelAbi::Feature, dev);
            vm.irqs(16);
            let iv = vm.iv_control();
            ok(vm.v.write_config(vm.cap() + 8, &iv.to_le_bytes()));
            for (i, tag) in [(0u16, 1u16), (1, 2), (7, 4)] {
                ok(vm.guest_entry(i, tag));
            }
            assert!(vm.host_tph_on());
            let e = ok(vm.v.reset());
            assert_eq!(e.control, Some(ControlChange::Disabled));
            assert_eq!(e.entries, vec![0, 1, 7]);
            assert!(!vm.host_tph_on(), "{abi:?} {dev:?}");
            assert!(vm.host_table().iter().all(|st| *st == 0), "{abi:?} {dev:?}");
            assert_eq!(vm.v.guest_control(), 0);
            assert!(vm.v.guest_table().iter().all(|t| *t == 0));
            let mut regs = vec![0u8; usize::from(vm.v.virtual_cap().len())];
            vm.v.read_config(vm.cap(), &mut regs);
            assert_eq!(&regs[8..12], &[0; 4], "Control reads 0");
            assert!(regs[12..].iter().all(|b| *b == 0), "the table reads 0");
            assert_eq!(vm.v.read_vector_control_st(1), 0);
            let calls = vm.tph_calls();
            assert_eq!(ok(vm.v.reset()).host_calls, 0);
            assert_eq!(vm.tph_calls(), calls);
            // The next guest starts from scratch and works.
            ok(vm.v.write_config(vm.cap() + 8, &iv.to_le_bytes()));
            ok(vm.guest_entry(0, 3));
            assert_eq!(
                vm.host_table()[0],
                host_tag(7, MemType::Volatile, vm.width())
            );
        }
    }
}

/// A guest that turned TPH off with tags still in its table and then reboots: the host is
/// enabled in the mode the tags were programmed in just to clear them, and left off.
#[test]
fn reset_after_guest_disabled_tph_clears_the_entries_it_left() {
    for abi in common::check::ABIS {
        let mut vm = Vm::new(abi, abi == KernelAbi::Feature, HostDevice::CapTable);
        ok(vm.v.write_config(vm.cap() + 8, &0x101u32.to_le_bytes()));
        ok(vm.guest_entry(4, 2));
        ok(vm.v.write_config(vm.cap() + 8, &0u32.to_le_bytes()));
        assert_ne!(
            vm.host_table()[4],
            0,
            "pcie_disable_tph leaves the table as it is"
        );
        let e = ok(vm.v.reset());
        assert_eq!(e.host_calls, 3, "{abi:?}: enable, clear, disable");
        assert_eq!(vm.host_table()[4], 0);
        assert!(!vm.host_tph_on());
    }
}

/// Host refusals come back inside the effect: the hooks return normally, the guest reads its
/// own tags, and a refused enable leaves the guest reading TPH off.
#[test]
fn host_failures_are_reported_in_the_effect_never_as_a_failed_hook() {
    for abi in common::check::ABIS {
        let mut vm = Vm::new(abi, abi == KernelAbi::Feature, HostDevice::MsixTable);
        vm.irqs(16);
        let iv = vm.iv_control();
        vm.fail_next(&[EIO]);
        let e = vm.v.write_config(vm.cap() + 8, &iv.to_le_bytes());
        assert!(
            matches!(e.control, Some(ControlChange::HostFailed { .. })),
            "{e:?}"
        );
        assert_eq!(e.host_failures.len(), 1, "{abi:?}");
        assert_eq!(vm.v.guest_control() & 0x300, 0, "the guest reads TPH off");
        // Enabled on a second try; then a SET_ST refused in validation (the kernel changed
        // nothing and TPH stays on).
        ok(vm.v.write_config(vm.cap() + 8, &iv.to_le_bytes()));
        vm.fail_next(&[EINVAL]);
        let e = vm.guest_entry(6, 2);
        assert_eq!(e.host_failures.len(), 1);
        assert_eq!(e.host_failures[0].errno, Some(EINVAL));
        assert_eq!(vm.v.guest_table()[6], 2, "the guest reads its own tag");
        vm.fail_next(&[EIO]);
        let e = vm.v.host_msix_will_change();
        // Entry 6 may hold our tag (the failed call): it is one of ours to clear.
        assert_eq!((e.host_calls, e.host_failures.len()), (1, 1), "{abi:?}");
        assert!(!e.host_failures[0].to_string().is_empty());
    }
}

/// A feature-revision host with `enable_unsafe_tph` off (its default): the guest is offered
/// No-ST only, enabling it costs no host call, and nothing the VMM does fails or reaches the
/// host.
#[test]
fn gated_feature_revision_host_offers_no_st_only_and_is_never_called() {
    for dev in [HostDevice::CapTable, HostDevice::MsixTable] {
        let mut vm = Vm::new(KernelAbi::Feature, false, dev);
        let cap = vm.v.virtual_cap().cap;
        assert!(cap.no_st && !cap.iv && !cap.ds, "{cap:?}");
        vm.irqs(16);
        let iv = vm.iv_control();
        let e = ok(vm.v.write_config(vm.cap() + 8, &iv.to_le_bytes()));
        assert!(matches!(e.control, Some(ControlChange::Refused { .. })));
        let no_st = iv & !7;
        let e = ok(vm.v.write_config(vm.cap() + 8, &no_st.to_le_bytes()));
        assert!(matches!(e.control, Some(ControlChange::Enabled { .. })));
        ok(vm.guest_entry(0, 1));
        vm.irqs(8);
        ok(vm.v.reset());
        assert_eq!(
            vm.tph_calls(),
            0,
            "{dev:?}: {:?}",
            vm.log.lock().unwrap().calls
        );
        assert!(matches!(
            vm.v.device_mut().enable(Mode::Iv),
            Err(tph_client::Error::TphDisabled { .. })
        ));
    }
}

/// Accesses at the very end of the offset spaces are cut there, never wrapped to offset 0 (a
/// guest's 4-byte write at configuration offset 0xFFFE once panicked on overflow; found by the
/// `guest_accesses` fuzz target).
#[test]
fn accesses_at_the_end_of_the_address_space_are_cut_not_wrapped() {
    let mut vm = Vm::new(KernelAbi::V7, false, HostDevice::MsixTable);
    let cap = vm.cap();
    let control = 0x301u32.to_le_bytes();
    ok(vm.v.write_config(cap + 8, &control));
    let e = vm.v.write_config(0xfffe, &[0xff; 4]);
    assert_eq!(
        e,
        Effect::default(),
        "nothing of the capability was written"
    );
    let mut buf = [0xaa; 8];
    vm.v.read_config(0xfffc, &mut buf);
    assert_eq!(buf, [0; 8]);
    assert_eq!(
        vm.v.write_msix_table(u64::MAX - 1, &[0xff; 4]),
        Effect::default()
    );
    vm.v.read_msix_table(u64::MAX, &mut buf);
    assert_eq!(vm.v.guest_control(), 0x301);
}
