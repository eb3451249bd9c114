//! Whole scripts in process: the first byte picks the language (`session` or `vm`), the
//! kernel revision and the unsafe parameter; the rest is a script read with the bounded line
//! reader and parsed with the library's parsers, each command then run through the same
//! library calls `tphctl session` and `tphctl vm` make: against a function of the emulated
//! default machine (session), or against `tph-vmm`'s virtual device in front of it (vm, whose
//! first line is its `--pin` list). Asserts: no panic, and memory bounded (libFuzzer's RSS
//! limit; at most 64 commands and 32 MSI-X eventfds per script).
//!
//! Seeds: `fuzz/seeds/scripts` (the test scripts with a language byte in front):
//!   cargo +nightly fuzz run scripts fuzz/corpus/scripts fuzz/seeds/scripts
#![no_main]

use std::os::fd::{AsFd, OwnedFd};

use libfuzzer_sys::fuzz_target;
use tph_client::backend::Backend;
use tph_client::{Revision, TphDevice};
use tph_emu::EmulatedBackend;
use tph_kernel::{Host, HostOptions, KernelAbi};
use tphctl::lines::read_bounded_line;

const DEVICES: [&str; 5] = ["01:00.0", "02:00.0", "03:00.0", "00:05.0", "00:06.0"];
const HOST_CPUS: u32 = 16;
const MAX_COMMANDS: usize = 64;
const MAX_IRQS: u32 = 32;

fn eventfds(n: u32) -> Option<Vec<OwnedFd>> {
    (0..n.min(MAX_IRQS))
        .map(|_| tph_client::backend::eventfd().ok())
        .collect()
}

/// The script's command lines (comments and blank lines left out, refused lines too).
fn lines(script: &[u8]) -> Vec<String> {
    let mut input = std::io::Cursor::new(script);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    for number in 1..=MAX_COMMANDS {
        match read_bounded_line(&mut input, &mut buf, number) {
            Ok(Some(Ok(line))) if line.is_empty() || line.starts_with('#') => {}
            Ok(Some(Ok(line))) => out.push(line.to_string()),
            Ok(Some(Err(_))) => {}
            Ok(None) | Err(_) => break,
        }
    }
    out
}

fn session(host: &Host, revision: Revision, device: u8, script: &[String]) {
    use tphctl::session::Command;
    let Some(bdf) = DEVICES[usize::from(device % 5)].parse().ok() else {
        return;
    };
    let Ok(backend) = EmulatedBackend::take_over(host, bdf) else {
        return;
    };
    let Ok(mut dev) = TphDevice::with_revision(backend, revision) else {
        return;
    };
    let mut irqs: Vec<OwnedFd> = Vec::new();
    for line in script {
        let Ok(cmd) = tphctl::session::parse(line) else {
            continue;
        };
        match cmd {
            Command::Cap => {
                let _ = dev.capabilities();
            }
            Command::Enable(mode) => {
                let _ = dev.enable(mode);
            }
            Command::Disable => {
                let _ = dev.disable();
            }
            Command::Irqs(n) => {
                let Some(fresh) = eventfds(n) else { continue };
                let fds: Vec<_> = fresh.iter().map(AsFd::as_fd).collect();
                if dev.enable_msix(&fds).is_ok() {
                    irqs = fresh;
                }
            }
            Command::GetSt(q) => {
                let _ = dev.steering_tags(&q);
            }
            Command::SetSt(e) => {
                let _ = dev.set_entries(&e);
            }
            Command::Clear(i) => {
                let _ = dev.clear_entries(&i);
            }
            Command::Reset => {
                let _ = dev.reset();
            }
            Command::Reopen | Command::Show | Command::Trace => {
                let _ = dev.backend().device().snapshot();
            }
            Command::Raw(mut bytes) => {
                let _ = dev.raw_ioctl(&mut bytes);
            }
            Command::Feature(mut bytes) => {
                let _ = dev.backend_mut().device_feature(&mut bytes);
            }
            Command::CfgRead { offset, len } => {
                let mut buf = vec![0u8; len];
                let _ = dev.backend().read_config(offset, &mut buf);
            }
            Command::CfgWrite { offset, data } => {
                let _ = dev.backend_mut().write_config(offset, &data);
            }
        }
    }
    drop(irqs);
}

fn vm(host: &Host, revision: Revision, device: u8, unsafe_ds: bool, script: &[String]) {
    use tphctl::vm::{Command, Pin};
    let Some((pins, script)) = script.split_first() else {
        return;
    };
    let Ok(pins) = tphctl::vm::parse_pins(pins, HOST_CPUS) else {
        return;
    };
    let vcpus = pins.iter().map(|(v, _)| v + 1).max().unwrap_or(1);
    let Ok(cfg) = tph_vmm::VmConfig::new(vcpus).with_pins(&pins) else {
        return;
    };
    let mut cfg = cfg;
    cfg.unsafe_ds = unsafe_ds;
    let Some(bdf) = DEVICES[usize::from(device % 5)].parse().ok() else {
        return;
    };
    let Ok(backend) = EmulatedBackend::take_over(host, bdf) else {
        return;
    };
    let Ok(dev) = TphDevice::with_revision(backend, revision) else {
        return;
    };
    let Ok(mut v) = tph_vmm::VirtualTph::new(dev, cfg) else {
        return;
    };
    let mut irqs: Vec<OwnedFd> = Vec::new();
    for line in script {
        let Ok(cmd) = tphctl::vm::parse(line) else {
            continue;
        };
        match cmd {
            Command::Dsm { vcpu, .. } => {
                let _ = v.config().uids.get(vcpu as usize).copied();
            }
            Command::Enable(mode) => {
                let _ = v.write_guest_control(Some(mode));
            }
            Command::Disable => {
                let _ = v.write_guest_control(None);
            }
            Command::Irqs(n) => {
                let _ = v.host_msix_will_change();
                let Some(fresh) = eventfds(n) else { continue };
                let fds: Vec<_> = fresh.iter().map(AsFd::as_fd).collect();
                if v.device_mut().enable_msix(&fds).is_ok() {
                    irqs = fresh;
                    let _ = v.host_msix_enabled(n.min(MAX_IRQS));
                }
            }
            Command::Write { index, tag } => {
                let _ = v.write_guest_entry(index, tag);
            }
            Command::Pin(Pin { vcpu, cpu }) => {
                let _ = v.pin(vcpu, cpu);
            }
            Command::Reset => {
                let _ = v.reset();
            }
            Command::Guest => {
                let _ = (v.guest_control(), v.guest_table().len());
            }
            Command::Host => {
                let _ = v.device().backend().device().snapshot();
            }
        }
    }
    drop(irqs);
    let _ = v.device_mut().backend_mut().cpu_count();
}

fuzz_target!(|data: &[u8]| {
    let Some((&sel, script)) = data.split_first() else {
        return;
    };
    let abi = if sel & 2 == 0 {
        KernelAbi::V7
    } else {
        KernelAbi::Feature
    };
    let revision = match abi {
        KernelAbi::V7 => Revision::V7,
        KernelAbi::Feature => Revision::Feature,
        other => panic!("no client revision for {other:?}"),
    };
    let unsafe_ds = sel & 4 != 0;
    let host = Host::with_default_machine(
        HostOptions::new()
            .with_cpus(HOST_CPUS)
            .with_abi(abi)
            .with_unsafe_ds(unsafe_ds),
    );
    let script = lines(script);
    if sel & 1 == 0 {
        session(&host, revision, sel >> 3, &script);
    } else {
        vm(&host, revision, sel >> 3, unsafe_ds, &script);
    }
});
