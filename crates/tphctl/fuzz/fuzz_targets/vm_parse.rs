//! Fuzzes the `tphctl vm` language and its `--pin` list: the input is a whole script, read
//! line by line with the bounded reader `vm` uses, each line parsed, and each line also read
//! as a `--pin` list against a host of 1 to 256 CPUs (the first byte). Asserts, beyond no
//! panic: refusals stay short, a parsed command written back canonically parses the same, and
//! an accepted pin list keeps every vCPU below 4096, once, on a present host CPU.
//!
//! Seeds: the vm scripts of the tests and the README's examples (`fuzz/seeds/vm_parse`):
//!   cargo +nightly fuzz run vm_parse fuzz/corpus/vm_parse fuzz/seeds/vm_parse
#![no_main]

use libfuzzer_sys::fuzz_target;
use tph_client::MemType;
use tph_regs::tph::StMode;
use tphctl::vm::{parse, parse_pins, Command, Pin, MAX_VCPUS};

const MAX_MESSAGE: usize = 400;

fn canonical(cmd: &Command) -> String {
    match *cmd {
        Command::Dsm { vcpu, mem } => {
            let m = match mem {
                MemType::Volatile => "vm",
                MemType::Persistent => "pm",
            };
            format!("dsm {vcpu}:{m}")
        }
        Command::Enable(StMode::NoSt) => "enable ns".into(),
        Command::Enable(StMode::InterruptVector) => "enable iv".into(),
        Command::Enable(StMode::DeviceSpecific) => "enable ds".into(),
        Command::Enable(other) => panic!("a mode the language has no word for: {other:?}"),
        Command::Disable => "disable".into(),
        Command::Irqs(n) => format!("irqs {n:#x}"),
        Command::Write { index, tag } => format!("write {index} {tag:#x}"),
        Command::Pin(Pin { vcpu, cpu: Some(c) }) => format!("pin {vcpu}:{c}"),
        Command::Pin(Pin { vcpu, cpu: None }) => format!("pin {vcpu}:none"),
        Command::Guest => "guest".into(),
        Command::Reset => "reset".into(),
        Command::Host => "host".into(),
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&cpus, script)) = data.split_first() else {
        return;
    };
    let host_cpus = u32::from(cpus) + 1;
    let mut input = std::io::Cursor::new(script);
    let mut buf = Vec::new();
    for number in 1.. {
        let line = match tphctl::lines::read_bounded_line(&mut input, &mut buf, number) {
            Ok(Some(Ok(line))) => line,
            Ok(Some(Err(bad))) => {
                assert!(bad.quoted.len() <= MAX_MESSAGE, "{}", bad.quoted.len());
                continue;
            }
            Ok(None) => break,
            Err(e) => panic!("an in-memory read failed: {e}"),
        };
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parsed = parse(line);
        match &parsed {
            Ok(cmd) => {
                let again = canonical(cmd);
                assert_eq!(parse(&again).as_ref(), Ok(cmd), "{line:?} -> {again:?}");
            }
            Err(e) => {
                let text = e.to_string();
                assert!(text.len() <= MAX_MESSAGE, "{} bytes: {text}", text.len());
            }
        }
        match parse_pins(line, host_cpus) {
            Ok(pins) => {
                for (i, &(vcpu, cpu)) in pins.iter().enumerate() {
                    assert!(vcpu < MAX_VCPUS && cpu < host_cpus, "{line:?}: {pins:?}");
                    assert!(
                        pins[..i].iter().all(|&(v, _)| v != vcpu),
                        "{line:?}: {pins:?}"
                    );
                }
            }
            Err(e) => {
                let text = e.to_string();
                assert!(text.len() <= MAX_MESSAGE, "{} bytes: {text}", text.len());
            }
        }
    }
});
