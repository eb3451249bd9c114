//! `VFIO_DEVICE_SET_IRQS` and `VFIO_DEVICE_GET_IRQ_INFO` as mainline answers them
//! (`vfio_set_irqs_validate_and_prepare`, `vfio_pci_intrs.c`), the open-time Command and the
//! config region's Command writes (`vfio_pci_core_enable`, `vfio_pci_config.c`). The answers
//! Debian's 6.1 and 6.12 kernels gave a probe on a real vfio-pci device
//! (`shared/spec/real-linux-rig.md`, last section; issue 16) are marked "real kernels".
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use common::*;
use tph_kernel::vfio::abi::{self, TphEntry as Entry};
use tph_kernel::vfio::IrqSignal;
use tph_kernel::{Errno, Host, HostOptions, MsixAlloc};

const VC: u8 = 12;
const MASKED: u32 = 1;
const TRIGGER: u32 = abi::IRQ_SET_ACTION_TRIGGER;
const NONE: u32 = abi::IRQ_SET_DATA_NONE;
const BOOL: u32 = abi::IRQ_SET_DATA_BOOL;
const EVENTFD: u32 = abi::IRQ_SET_DATA_EVENTFD;
const MSIX: u32 = abi::MSIX_IRQ_INDEX;
/// MSI-X table size of `CAP_DEV` (16 vectors).
const CAP_DEV_VECTORS: u32 = 16;

/// A `vfio_irq_set` with `data` after the header.
fn irq_set(flags: u32, index: u32, start: u32, count: u32, data: &[u8]) -> Vec<u8> {
    let argsz = 20 + data.len() as u32;
    let mut b: Vec<u8> = [argsz, flags, index, start, count]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect();
    b.extend_from_slice(data);
    b
}

fn fds(fds: &[i32]) -> Vec<u8> {
    fds.iter().flat_map(|f| f.to_le_bytes()).collect()
}

fn set(
    f: &Fixture,
    flags: u32,
    index: u32,
    start: u32,
    count: u32,
    data: &[u8],
) -> Result<i32, Errno> {
    let mut arg = irq_set(flags, index, start, count, data);
    f.fd.ioctl_bytes(abi::VFIO_DEVICE_SET_IRQS, &mut arg)
}

fn static_host() -> HostOptions {
    HostOptions::new().with_msix_alloc(MsixAlloc::Static)
}

fn vector_controls(f: &Fixture) -> Vec<u32> {
    f.dev.with_hardware(|hw| hw.peek_vector_controls())
}

// ---- validation, for every index ----

#[test]
fn data_none_count_0_while_msix_is_off_is_einval() {
    // Real kernels: EINVAL (the model answered 0 before).
    let f = Fixture::new(CAP_DEV);
    assert_eq!(set(&f, NONE | TRIGGER, MSIX, 0, 0, &[]), Err(Errno::EINVAL));
    assert_eq!(f.fd.set_irqs(0), Err(Errno::EINVAL));
    assert!(f.hw_writes().is_empty(), "nothing written");
}

#[test]
fn start_at_or_past_the_table_size_is_einval_even_with_count_0() {
    // Real kernels: EINVAL (`start >= num_irqs`), before the handler runs.
    let f = Fixture::new(CAP_DEV);
    f.fd.set_irqs(2).unwrap();
    for flags in [NONE | TRIGGER, EVENTFD | TRIGGER, BOOL | TRIGGER] {
        let r = set(&f, flags, MSIX, CAP_DEV_VECTORS, 0, &[]);
        assert_eq!(r, Err(Errno::EINVAL), "{flags:#x}");
    }
    assert_eq!(f.dev.snapshot().msix_vectors, 2, "still on, unchanged");
    let r = set(
        &f,
        EVENTFD | TRIGGER,
        MSIX,
        CAP_DEV_VECTORS - 1,
        2,
        &fds(&[5, 6]),
    );
    assert_eq!(r, Err(Errno::EINVAL), "start + count beyond the table");
}

#[test]
fn header_checks_come_first_for_every_index() {
    let f = Fixture::new(CAP_DEV);
    let short = |argsz: u32| {
        let mut arg = irq_set(EVENTFD | TRIGGER, MSIX, 0, 1, &fds(&[5]));
        arg[..4].copy_from_slice(&argsz.to_le_bytes());
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_SET_IRQS, &mut arg)
    };
    assert_eq!(short(19), Err(Errno::EINVAL), "argsz below the header");
    assert_eq!(short(20), Err(Errno::EINVAL), "no room for the fd");
    assert_eq!(
        set(&f, NONE | TRIGGER, 5, 0, 1, &[]),
        Err(Errno::EINVAL),
        "index 5"
    );
    assert_eq!(
        set(&f, NONE | TRIGGER | 0x40, MSIX, 0, 1, &[]),
        Err(Errno::EINVAL),
        "flag 0x40"
    );
    assert_eq!(
        set(&f, NONE | BOOL | TRIGGER, MSIX, 0, 1, &[1]),
        Err(Errno::EINVAL),
        "two types"
    );
    assert_eq!(
        set(&f, TRIGGER, MSIX, 0, 1, &[]),
        Err(Errno::EINVAL),
        "no data type"
    );
    assert_eq!(
        set(&f, NONE, MSIX, 0, 1, &[]),
        Err(Errno::ENOTTY),
        "no action"
    );
    assert_eq!(
        set(&f, NONE | abi::IRQ_SET_ACTION_MASK, MSIX, 0, 1, &[]),
        Err(Errno::ENOTTY),
        "MSI-X has no mask action"
    );
    // The default machine's functions have no Interrupt Pin and no MSI capability: no vector.
    assert_eq!(
        set(&f, EVENTFD | TRIGGER, abi::INTX_IRQ_INDEX, 0, 1, &fds(&[5])),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        set(&f, EVENTFD | TRIGGER, abi::MSI_IRQ_INDEX, 0, 1, &fds(&[5])),
        Err(Errno::EINVAL)
    );
}

#[test]
fn get_irq_info_reports_every_index_and_noresize_per_host() {
    let info = |opts: HostOptions, bdf_s: &str| {
        let f = Fixture::with(bdf_s, opts);
        (0..6)
            .map(|i| f.fd.irq_info(i).map(|x| (x.flags, x.count)))
            .collect::<Vec<_>>()
    };
    let (ev, nr) = (abi::IRQ_INFO_EVENTFD, abi::IRQ_INFO_NORESIZE);
    let intx = ev | abi::IRQ_INFO_MASKABLE | abi::IRQ_INFO_AUTOMASKED;
    // 6.1 (static): NORESIZE on every index but INTx.
    assert_eq!(
        info(static_host(), CAP_DEV),
        [
            Ok((intx, 0)),
            Ok((ev | nr, 0)),
            Ok((ev | nr, 16)),
            Ok((ev | nr, 1)),
            Ok((ev | nr, 1)),
            Err(Errno::EINVAL)
        ]
    );
    // Dynamic MSI-X: MSI-X can grow.
    assert_eq!(info(HostOptions::default(), CAP_DEV)[2], Ok((ev, 16)));
    // Byte level: argsz below 16 is EINVAL; flags and count come back.
    let f = Fixture::new(MSIX_DEV);
    let mut arg = [16u32, 0, 2, 0]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect::<Vec<_>>();
    assert_eq!(
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_GET_IRQ_INFO, &mut arg),
        Ok(0)
    );
    assert_eq!(arg[4..8], ev.to_le_bytes());
    assert_eq!(arg[12..16], 2048u32.to_le_bytes());
    arg[..4].copy_from_slice(&15u32.to_le_bytes());
    assert_eq!(
        f.fd.ioctl_bytes(abi::VFIO_DEVICE_GET_IRQ_INFO, &mut arg),
        Err(Errno::EINVAL)
    );
}

// ---- MSI-X ----

#[test]
fn eventfd_block_of_count_0_is_a_no_op_not_a_disable() {
    // Real kernels: 0, MSI-X stays on with its vectors.
    for opts in [HostOptions::default(), static_host()] {
        let f = Fixture::with(CAP_DEV, opts);
        f.fd.set_irqs(3).unwrap();
        f.trace();
        assert_eq!(set(&f, EVENTFD | TRIGGER, MSIX, 0, 0, &[]), Ok(0));
        assert!(f.hw_writes().is_empty());
        assert_eq!(f.dev.snapshot().msix_vectors, 3);
    }
}

#[test]
fn eventfd_block_of_count_0_while_msix_is_off_asks_for_no_vector_erange() {
    // `vfio_msi_enable(start + count = 0)`: `pci_alloc_irq_vectors(1, 0)` is -ERANGE.
    let f = Fixture::new(CAP_DEV);
    assert_eq!(
        set(&f, EVENTFD | TRIGGER, MSIX, 0, 0, &[]),
        Err(Errno::ERANGE)
    );
    assert_eq!(f.dev.snapshot().msix_vectors, 0);
}

#[test]
fn loopback_signals_the_triggers_and_changes_nothing() {
    // Real kernels: DATA_NONE / DATA_BOOL with count > 0 signal the eventfds.
    let f = Fixture::new(CAP_DEV);
    assert_eq!(
        set(&f, EVENTFD | TRIGGER, MSIX, 0, 3, &fds(&[10, -1, 12])),
        Ok(0)
    );
    f.trace();
    assert_eq!(set(&f, NONE | TRIGGER, MSIX, 0, 3, &[]), Ok(0));
    assert_eq!(set(&f, BOOL | TRIGGER, MSIX, 0, 3, &[0, 1, 1]), Ok(0));
    assert!(f.hw_writes().is_empty(), "no hardware write");
    let sig = |vector, fd| IrqSignal::new(MSIX, vector, fd);
    assert_eq!(
        f.dev.drain_irq_signals(),
        [sig(0, 10), sig(2, 12), sig(2, 12)]
    );
    assert_eq!(f.dev.snapshot().msix_vectors, 3);
}

#[test]
fn loopback_while_msix_is_off_is_einval() {
    let f = Fixture::new(CAP_DEV);
    assert_eq!(set(&f, NONE | TRIGGER, MSIX, 0, 1, &[]), Err(Errno::EINVAL));
    assert_eq!(
        set(&f, BOOL | TRIGGER, MSIX, 0, 1, &[1]),
        Err(Errno::EINVAL)
    );
}

#[test]
fn fd_minus_1_removes_a_trigger_and_masks_the_vector_which_stays_allocated() {
    let f = Fixture::new(CAP_DEV);
    f.fd.set_irqs(2).unwrap();
    assert_eq!(vector_controls(&f)[..2], [0, 0]);
    assert_eq!(set(&f, EVENTFD | TRIGGER, MSIX, 1, 1, &fds(&[-1])), Ok(0));
    assert_eq!(vector_controls(&f)[..2], [0, MASKED]);
    assert_eq!(f.dev.snapshot().msix_vectors, 2, "still allocated");
    f.fd.trigger_irqs(MSIX, 0, 2).unwrap();
    assert_eq!(
        f.dev.drain_irq_signals().len(),
        1,
        "vector 1 has no trigger"
    );
}

#[test]
fn growing_an_enabled_block_follows_the_host() {
    // Real kernels: 6.1 EINVAL (NORESIZE); 6.12 with dynamic allocation grows in place.
    let f = Fixture::with(CAP_DEV, static_host());
    f.fd.set_irqs(2).unwrap();
    assert_eq!(f.fd.set_irqs(4), Err(Errno::EINVAL));
    assert_eq!(f.dev.snapshot().msix_vectors, 2);
    assert_eq!(vector_controls(&f)[..2], [0, 0], "nothing touched");
    assert_eq!(
        set(&f, NONE | TRIGGER, MSIX, 1, 2, &[]),
        Err(Errno::EINVAL),
        "loopback beyond"
    );

    let g = Fixture::new(CAP_DEV);
    g.fd.set_irqs(2).unwrap();
    assert_eq!(g.fd.set_irqs(4), Ok(()));
    assert_eq!(g.dev.snapshot().msix_vectors, 4);
    assert_eq!(vector_controls(&g)[..5], [0, 0, 0, 0, MASKED]);
}

#[test]
fn a_failing_eventfd_removes_the_triggers_the_block_set() {
    struct OnlyBelow(i32);
    impl tph_kernel::vfio::EventfdCheck for OnlyBelow {
        fn check(&self, fd: i32) -> Result<(), Errno> {
            if fd < self.0 {
                Ok(())
            } else {
                Err(Errno::EBADF)
            }
        }
    }
    let f = Fixture::new(CAP_DEV);
    f.fd.set_irqs(3).unwrap();
    let mut arg = irq_set(EVENTFD | TRIGGER, MSIX, 0, 3, &fds(&[1, 2, 99]));
    let mut mem = tph_kernel::vfio::SliceMemory::new(&mut arg);
    let r = f.fd.ioctl_with_eventfds(
        abi::VFIO_DEVICE_SET_IRQS,
        tph_kernel::vfio::SLICE_BASE,
        &mut mem,
        &OnlyBelow(50),
    );
    assert_eq!(r, Err(Errno::EBADF));
    assert_eq!(
        vector_controls(&f)[..3],
        [MASKED; 3],
        "vectors 0..3 released"
    );
    assert_eq!(f.dev.snapshot().msix_vectors, 3, "MSI-X stays on");
}

#[test]
fn enable_caches_vector_control_before_masking_every_entry() {
    // Real kernels: a re-allocated vector keeps the tag the hardware held.
    let f = Fixture::new(MSIX_DEV);
    f.fd.msix_mmap_write(0, VC, 0x0042_0001); // a tag in an entry that will be allocated
    f.fd.msix_mmap_write(9, VC, 0x0043_0001); // and in one that will not
    f.fd.set_irqs(1).unwrap();
    let vc = vector_controls(&f);
    assert_eq!(
        vc[0], 0x0042_0000,
        "cached before the mask-all, then unmasked"
    );
    assert_eq!(vc[9], MASKED, "mask-all: Vector Control = 1");
}

#[test]
fn session_irqs_4_enable_set_st_irqs_2_keeps_the_tag() {
    // `tphctl session`: irqs 4, enable iv, set-st 0=3, irqs 2 (MSI-X off, then 2 vectors).
    let f = Fixture::new(MSIX_DEV);
    f.fd.set_irqs(4).unwrap();
    f.enable(abi::MODE_IV).unwrap();
    f.set_st(&[Entry::new(3, 0, 0)]).unwrap();
    let tag = f.table()[0];
    f.fd.set_irqs(0).unwrap();
    f.fd.set_irqs(2).unwrap();
    assert_ne!(tag, 0);
    assert_eq!(
        f.table()[0],
        tag,
        "TPH on over the programmed entry, not a zero table"
    );
}

// ---- ERR and REQ ----

#[test]
fn err_and_req_triggers_are_set_signalled_and_removed() {
    let f = Fixture::new(CAP_DEV);
    for index in [abi::ERR_IRQ_INDEX, abi::REQ_IRQ_INDEX] {
        assert_eq!(
            set(&f, NONE | TRIGGER, index, 0, 1, &[]),
            Err(Errno::EINVAL),
            "no trigger yet"
        );
        assert_eq!(
            set(&f, EVENTFD | TRIGGER, index, 0, 0, &[]),
            Err(Errno::EINVAL),
            "count 0"
        );
        assert_eq!(
            set(&f, BOOL | TRIGGER, index, 0, 0, &[]),
            Err(Errno::EINVAL),
            "count 0"
        );
        assert_eq!(set(&f, EVENTFD | TRIGGER, index, 0, 1, &fds(&[7])), Ok(0));
        assert_eq!(set(&f, NONE | TRIGGER, index, 0, 1, &[]), Ok(0));
        assert_eq!(set(&f, BOOL | TRIGGER, index, 0, 1, &[1]), Ok(0));
        assert_eq!(f.dev.drain_irq_signals(), [IrqSignal::new(index, 0, 7); 2]);
        assert_eq!(set(&f, EVENTFD | TRIGGER, index, 0, 1, &fds(&[-1])), Ok(0));
        assert_eq!(
            set(&f, NONE | TRIGGER, index, 0, 1, &[]),
            Err(Errno::EINVAL),
            "removed"
        );
        assert_eq!(set(&f, EVENTFD | TRIGGER, index, 0, 1, &fds(&[8])), Ok(0));
        assert_eq!(
            set(&f, NONE | TRIGGER, index, 0, 0, &[]),
            Ok(0),
            "count 0 releases"
        );
        assert_eq!(
            set(&f, NONE | TRIGGER, index, 0, 1, &[]),
            Err(Errno::EINVAL)
        );
    }
    assert!(f.hw_writes().is_empty(), "no hardware involved");
}

// ---- INTx ----

/// The default machine's `bdf_s` with Interrupt Pin A.
fn with_pin(bdf_s: &str) -> Fixture {
    let mut m = Host::with_default_machine(HostOptions::default())
        .machine()
        .clone();
    let func = m
        .functions
        .iter_mut()
        .find(|x| x.bdf == bdf(bdf_s))
        .unwrap();
    func.config[0x3d] = 1;
    Fixture::on(Host::new(m, HostOptions::default()), bdf_s)
}

#[test]
fn intx_trigger_mask_unmask_and_msix_exclusion() {
    let f = with_pin(CAP_DEV);
    let intx = abi::INTX_IRQ_INDEX;
    let command = || f.dev.with_hardware(|hw| hw.config_read(4, 2)) & 0x400;
    assert_eq!(f.fd.irq_info(intx).map(|i| i.count), Ok(1));
    assert_eq!(
        set(&f, NONE | TRIGGER, intx, 0, 1, &[]),
        Err(Errno::EINVAL),
        "not enabled"
    );
    assert_eq!(set(&f, EVENTFD | TRIGGER, intx, 0, 1, &fds(&[4])), Ok(0));
    assert_eq!(command(), 0, "unmasked");
    assert_eq!(
        f.fd.set_irqs(1),
        Err(Errno::EINVAL),
        "MSI-X while INTx is on"
    );
    assert_eq!(
        set(&f, NONE | abi::IRQ_SET_ACTION_MASK, intx, 0, 1, &[]),
        Ok(0)
    );
    assert_eq!(command(), 0x400, "masked through INTx Disable");
    assert_eq!(
        set(
            &f,
            EVENTFD | abi::IRQ_SET_ACTION_MASK,
            intx,
            0,
            1,
            &fds(&[5])
        ),
        Err(Errno::ENOTTY)
    );
    assert_eq!(
        set(&f, BOOL | abi::IRQ_SET_ACTION_UNMASK, intx, 0, 1, &[1]),
        Ok(0)
    );
    assert_eq!(command(), 0);
    assert_eq!(set(&f, NONE | TRIGGER, intx, 0, 1, &[]), Ok(0));
    assert_eq!(f.dev.drain_irq_signals(), [IrqSignal::new(intx, 0, 4)]);
    assert_eq!(set(&f, NONE | TRIGGER, intx, 0, 0, &[]), Ok(0), "disable");
    assert_eq!(f.fd.set_irqs(1), Ok(()), "MSI-X now");
    assert_eq!(command(), 0x400, "MSI-X enable disables INTx");
}

// ---- open and Command ----

#[test]
fn first_open_clears_bus_master() {
    // Real kernels: `pci_clear_master` in `vfio_pci_core_enable`.
    let host = Host::with_default_machine(HostOptions::default());
    let dev = host.take_over(bdf(CAP_DEV)).unwrap();
    let before = dev.with_hardware(|hw| hw.config_read(4, 2));
    assert_eq!(
        before & 0x4,
        0x4,
        "the machine's function has Bus Master on"
    );
    let fd = dev.open().unwrap();
    let mut cmd = [0u8; 2];
    fd.config_read(4, &mut cmd).unwrap();
    assert_eq!(u16::from_le_bytes(cmd) & 0x4, 0);
    assert_eq!(
        dev.with_hardware(|hw| hw.config_read(4, 2)) & 0x4,
        0,
        "in hardware"
    );
}

#[test]
fn command_writes_take_effect_and_intx_disable_is_virtual() {
    // Real kernels: userspace sets Bus Master through the config region.
    let f = Fixture::new(CAP_DEV);
    let hw = || f.dev.with_hardware(|hw| hw.config_read(4, 2));
    let read = || {
        let mut b = [0u8; 2];
        f.fd.config_read(4, &mut b).unwrap();
        u16::from_le_bytes(b)
    };
    f.fd.config_write(4, &0x0006u16.to_le_bytes()).unwrap();
    assert_eq!((read(), hw()), (0x6, 0x6), "Bus Master on");
    f.fd.config_write(4, &[0x02]).unwrap();
    assert_eq!((read(), hw()), (0x2, 0x2), "a byte write");
    f.fd.config_write(5, &[0x04]).unwrap();
    assert_eq!(read(), 0x402, "INTx Disable reads back");
    assert_eq!(
        hw(),
        0x402,
        "and, INTx not in use, the hardware bit follows it"
    );
    f.fd.config_write(0x3c, &[0x5a]).unwrap();
    let mut line = [0u8; 1];
    f.fd.config_read(0x3c, &mut line).unwrap();
    assert_eq!(line[0], 0x5a, "Interrupt Line is virtual");
    assert_eq!(
        f.dev.with_hardware(|hw| hw.config_read(0x3c, 1)),
        0,
        "hardware untouched"
    );
    f.fd.config_write(0x0c, &[0x10]).unwrap();
    assert_eq!(
        f.dev.with_hardware(|hw| hw.config_read(0x0c, 1)),
        0x10,
        "cache line raw"
    );
}
