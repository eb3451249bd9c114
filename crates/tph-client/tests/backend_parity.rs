//! The two real backends tell the same truth: `FdBackend` (on the client's own opener) and
//! `VfioBackend` (on a device opened by rust-vmm's `vfio-ioctls`, as a VMM has it) give the same
//! result, errno included, for the same kernel answer: config reads and writes through the
//! region (in and beyond the config space), reset, MSI-X set-up, and the TPH calls of both kernel
//! revisions. The kernel is the model behind the fake VFIO host, across the real syscall
//! boundary.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::os::fd::AsFd;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use tph_client::abi;
use tph_client::backend::{Backend, FdBackend, VfioBackend};
use tph_client::open::{open_vfio, VfioInterface, VfioPaths};
use tph_emulate::harness::{supervise_in, user_notif_available, Supervised};
use tph_emulate::vfio_host::{FakeVfioTree, VfioHostHandler, TRAPPED_VFIO_REQUESTS};
use tph_kernel::{Host, HostOptions, KernelAbi};
use tph_regs::machine::Bdf;

const CHILD_ENV: &str = "TPH_CLIENT_PARITY_CHILD";
const TIMEOUT: Duration = Duration::from_secs(60);
/// The default machine's NIC: TPH capability at 0x100 (Control at 0x108), table in MSI-X.
const NIC: &str = "01:00.0";
const TPH_CONTROL: u64 = 0x108;

fn show<T: std::fmt::Debug>(r: Result<T, tph_client::Errno>) -> String {
    match r {
        Ok(v) => format!("ok {v:?}"),
        Err(e) => format!("err {}", e.name()),
    }
}

/// The same calls on any backend, one `@@ name: result` line each.
fn exercise(tag: &str, b: &mut dyn Backend, revision: &str) {
    let mut id = [0u8; 4];
    println!(
        "@@ {tag} cfg-read 0: {}",
        show(b.read_config(0, &mut id).map(|()| id))
    );
    let mut past = [0u8; 8];
    println!(
        "@@ {tag} cfg-read past end: {}",
        show(b.read_config(4092, &mut past))
    );
    let irqs: Vec<_> = (0..2)
        .map(|_| tph_client::backend::eventfd().unwrap())
        .collect();
    let fds: Vec<_> = irqs.iter().map(AsFd::as_fd).collect();
    println!("@@ {tag} msix 2: {}", show(b.set_msix(0, &fds)));
    println!("@@ {tag} reset: {}", show(b.reset()));
    if revision == "feature" {
        let on = b.write_config(TPH_CONTROL, &1u32.to_le_bytes());
        println!("@@ {tag} control <- iv: {}", show(on));
        let mut ctl = [0u8; 4];
        let read = b.read_config(TPH_CONTROL, &mut ctl).map(|()| ctl);
        println!("@@ {tag} control: {}", show(read));
        let mut set = abi::encode_feature_st(abi::FEATURE_SET, 0, 1, &[3]);
        println!("@@ {tag} feature set: {}", show(b.device_feature(&mut set)));
        let mut bad = abi::encode_feature_st(abi::FEATURE_SET, 0, 4000, &[3]);
        println!(
            "@@ {tag} feature set 4000: {}",
            show(b.device_feature(&mut bad))
        );
        println!(
            "@@ {tag} control <- 0: {}",
            show(b.write_config(TPH_CONTROL, &[0; 4]))
        );
    } else {
        let mut cap = abi::encode_get_cap();
        let got = b
            .tph_ioctl(&mut cap)
            .map(|_| abi::decode_cap(&cap).map(|c| c.st_table_sz));
        println!("@@ {tag} get-cap: {}", show(got));
        let mut bad = abi::encode_op(9, [0; 8]);
        println!("@@ {tag} op 9: {}", show(b.tph_ioctl(&mut bad)));
        let mut feat = abi::encode_feature_st(abi::FEATURE_GET | abi::FEATURE_PROBE, 0, 0, &[0]);
        println!(
            "@@ {tag} feature on v7: {}",
            show(b.device_feature(&mut feat))
        );
    }
}

fn child(revision: &str) {
    let paths = VfioPaths::new().with_interface(VfioInterface::Legacy);
    let opened = open_vfio(NIC.parse().unwrap(), &paths).unwrap();
    exercise("raw", &mut FdBackend::new(&opened), revision);
    drop(opened);
    let container = Arc::new(vfio_ioctls::VfioContainer::new(None).unwrap());
    let sysfs = std::path::Path::new("/sys/bus/pci/devices/0000:01:00.0");
    let dev = vfio_ioctls::VfioDevice::new(sysfs, container, false).unwrap();
    exercise("rust-vmm", &mut VfioBackend::new(&dev), revision);
}

#[test]
#[ignore = "child half of the backend_parity tests; run by the supervisor"]
fn parity_child_half() {
    if let Ok(revision) = std::env::var(CHILD_ENV) {
        child(&revision);
    }
}

fn run(abi: KernelAbi, revision: &str) -> Option<Supervised> {
    if !user_notif_available() {
        tph_testkit::skip(format_args!(
            "this kernel refuses seccomp user notification"
        ));
        return None;
    }
    let bdf: Bdf = NIC.parse().unwrap();
    let opts = HostOptions::new().with_abi(abi).with_unsafe_ds(true);
    let host = Host::with_default_machine(opts);
    let root = std::env::temp_dir().join(format!("tph-parity-{revision}-{}", std::process::id()));
    let tree = FakeVfioTree::create(root, bdf, 8).unwrap();
    let mut handler = VfioHostHandler::new(host.take_over(bdf).unwrap(), bdf).unwrap();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "parity_child_half", "--include-ignored"])
        .args(["--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, revision);
    match supervise_in(
        cmd,
        &TRAPPED_VFIO_REQUESTS,
        &tree.sandbox(),
        &mut handler,
        TIMEOUT,
    ) {
        Err(tph_emulate::Error::Harness { source, .. })
            if source.raw_os_error() == Some(libc::EPERM) =>
        {
            tph_testkit::skip(format_args!(
                "no permission for a private mount namespace (needs CAP_SYS_ADMIN)"
            ));
            None
        }
        r => Some(r.unwrap()),
    }
}

/// `(raw, rust-vmm)` results per call name, in order.
fn pairs(out: &Supervised) -> Vec<(String, String, String)> {
    let lines: Vec<(&str, &str, &str)> = out
        .stdout
        .lines()
        .filter_map(|l| l.split_once("@@ ").map(|(_, r)| r))
        .filter_map(|l| {
            let (tag, rest) = l.split_once(' ')?;
            let (name, result) = rest.split_once(": ")?;
            Some((tag, name, result))
        })
        .collect();
    let raw: Vec<_> = lines.iter().filter(|l| l.0 == "raw").collect();
    let vmm: Vec<_> = lines.iter().filter(|l| l.0 == "rust-vmm").collect();
    assert_eq!(
        raw.len(),
        vmm.len(),
        "both backends ran every call:\n{}\n{}",
        out.stdout,
        out.stderr
    );
    raw.iter()
        .zip(vmm)
        .map(|(r, v)| {
            assert_eq!(r.1, v.1);
            (r.1.to_string(), r.2.to_string(), v.2.to_string())
        })
        .collect()
}

fn assert_same(pairs: &[(String, String, String)]) {
    for (name, raw, vmm) in pairs {
        assert_eq!(raw, vmm, "{name}: FdBackend and VfioBackend disagree");
    }
}

fn result<'a>(pairs: &'a [(String, String, String)], name: &str) -> &'a str {
    &pairs
        .iter()
        .find(|p| p.0 == name)
        .unwrap_or_else(|| panic!("no {name}"))
        .1
}

#[test]
fn backend_parity_v7_same_answers_from_both_real_backends() {
    let Some(out) = run(KernelAbi::V7, "v7") else {
        return;
    };
    assert!(out.status.success(), "{}\n{}", out.stderr, out.stdout);
    let p = pairs(&out);
    assert_eq!(p.len(), 7, "{}", out.stdout);
    assert_same(&p);
    // The answers are the kernel's, not invented by a backend.
    assert!(result(&p, "cfg-read 0").starts_with("ok "), "{p:?}");
    assert!(result(&p, "cfg-read past end").starts_with("err "), "{p:?}");
    assert_eq!(result(&p, "get-cap"), "ok Ok(2048)");
    assert_eq!(result(&p, "op 9"), "err EOPNOTSUPP");
    assert_eq!(result(&p, "feature on v7"), "err ENOTTY");
}

#[test]
fn backend_parity_feature_revision_same_answers_from_both_real_backends() {
    let Some(out) = run(KernelAbi::Feature, "feature") else {
        return;
    };
    assert!(out.status.success(), "{}\n{}", out.stderr, out.stdout);
    let p = pairs(&out);
    assert_eq!(p.len(), 9, "{}", out.stdout);
    assert_same(&p);
    assert!(result(&p, "feature set 4000").starts_with("err "), "{p:?}");
    assert_eq!(result(&p, "control <- 0"), "ok ()");
}
