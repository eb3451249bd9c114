//! The `tphctl vm` language: one command per line, the guest's side unless noted, and the
//! `--pin` list (`tphctl vm`, `tphctl serve --vm`).

use tph_client::MemType;
use tph_regs::tph::StMode;

use crate::{cpu_mem, number, ParseError, MAX_VECTORS};

/// A parsed `vm` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Command {
    /// `dsm VCPU[:vm|pm]`: the guest firmware's tag for the vCPU.
    Dsm {
        /// The vCPU.
        vcpu: u32,
        /// Memory type of the tag.
        mem: MemType,
    },
    /// `enable iv|ds|ns`: the guest writes Control with this mode.
    Enable(StMode),
    /// `disable`: the guest turns TPH off.
    Disable,
    /// `irqs N`: the guest enables MSI-X vectors 0..N-1.
    Irqs(u32),
    /// `write INDEX TAG`: a raw tag into the guest's ST entry.
    Write {
        /// The entry.
        index: u16,
        /// The tag.
        tag: u16,
    },
    /// `pin VCPU:PCPU|none` (the VMM's side): re-pin a vCPU, or unpin it.
    Pin(Pin),
    /// `reset`: the guest resets the function (FLR, or the VM reboots).
    Reset,
    /// `guest`: Control and table as the guest reads them.
    Guest,
    /// `host`: the physical device's Control and table.
    Host,
}

/// One vCPU's pinning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pin {
    /// The vCPU.
    pub vcpu: u32,
    /// The host CPU it runs on (`None`: unpinned).
    pub cpu: Option<u32>,
}

/// The commands, as an unknown one's error lists them.
const COMMANDS: &str = "dsm, enable, disable, irqs, write, pin, reset, guest, host; tphctl vm \
                        --help explains them";

/// Most vCPUs of a VM: KVM's largest x86 VM (`KVM_MAX_VCPUS`, 4096).
pub const MAX_VCPUS: u32 = 4096;

/// `VCPU:PCPU`, or `VCPU:none` (also `VCPU:-`) for an unpinned vCPU.
pub fn parse_pin(text: &str) -> Result<Pin, ParseError> {
    let (v, c) = text
        .split_once(':')
        .ok_or_else(|| ParseError::NotAPin(text.to_owned()))?;
    let vcpu = number(v, "vCPU")?;
    let cpu = match c {
        "none" | "-" => None,
        c => Some(number(c, "host CPU")?),
    };
    Ok(Pin { vcpu, cpu })
}

/// `--pin VCPU:PCPU,...`: each vCPU below [`MAX_VCPUS`] and named once, each host CPU below
/// `host_cpus`; checked before anything is allocated for them.
pub fn parse_pins(text: &str, host_cpus: u32) -> Result<Vec<(u32, u32)>, ParseError> {
    let mut pins: Vec<(u32, u32)> = Vec::new();
    for pair in text.split(',') {
        let (v, c) = pair
            .split_once(':')
            .ok_or_else(|| ParseError::NotAPin(pair.to_owned()))?;
        let (vcpu, cpu) = (number(v.trim(), "vCPU")?, number(c.trim(), "host CPU")?);
        if vcpu >= MAX_VCPUS {
            return Err(ParseError::VcpuBeyondLimit {
                vcpu,
                max: MAX_VCPUS,
            });
        }
        if cpu >= host_cpus {
            return Err(ParseError::NoHostCpu { cpu, host_cpus });
        }
        if pins.iter().any(|(w, _)| *w == vcpu) {
            return Err(ParseError::PinnedTwice(vcpu));
        }
        pins.push((vcpu, cpu));
    }
    Ok(pins)
}

fn mode(m: &str) -> Result<StMode, ParseError> {
    match m {
        "ns" => Ok(StMode::NoSt),
        "iv" => Ok(StMode::InterruptVector),
        "ds" => Ok(StMode::DeviceSpecific),
        other => Err(ParseError::UnknownMode {
            text: other.to_owned(),
            known: "iv, ds or ns",
        }),
    }
}

/// Parses one line (already trimmed; comments are the reader's business).
pub fn parse(line: &str) -> Result<Command, ParseError> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (&name, args) = words.split_first().ok_or(ParseError::Empty)?;
    let no_args = |cmd: &'static str, c: Command| match args {
        [] => Ok(c),
        _ => Err(ParseError::TakesNoArguments { cmd }),
    };
    match name {
        "dsm" => match args {
            [arg] => {
                let (vcpu, mem) = cpu_mem(arg, "vCPU")?;
                Ok(Command::Dsm { vcpu, mem })
            }
            _ => Err(ParseError::Usage("dsm VCPU[:vm|pm]")),
        },
        "enable" => match args {
            [m] => Ok(Command::Enable(mode(m)?)),
            _ => Err(ParseError::Usage("enable iv|ds|ns")),
        },
        "disable" => no_args("disable", Command::Disable),
        "irqs" => match args {
            [n] => match number(n, "vector count")? {
                n if n > MAX_VECTORS => Err(ParseError::TooManyVectors(n)),
                n => Ok(Command::Irqs(n)),
            },
            _ => Err(ParseError::Usage("irqs N")),
        },
        "write" => match args {
            [index, tag] => {
                let index = number(index, "index")?;
                let tag: u64 = number(tag, "tag")?;
                let tag = u16::try_from(tag).map_err(|_| ParseError::WideTag(tag))?;
                Ok(Command::Write { index, tag })
            }
            _ => Err(ParseError::Usage("write INDEX TAG")),
        },
        "pin" => match args {
            [arg] => Ok(Command::Pin(parse_pin(arg)?)),
            _ => Err(ParseError::Usage("pin VCPU:PCPU|none")),
        },
        "reset" => no_args("reset", Command::Reset),
        "guest" => no_args("guest", Command::Guest),
        "host" => no_args("host", Command::Host),
        other => Err(ParseError::UnknownCommand {
            name: other.to_owned(),
            known: COMMANDS,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(line: &str) -> String {
        parse(line).unwrap_err().to_string()
    }

    #[test]
    fn dsm_takes_a_vcpu_and_a_memory_type() {
        let dsm = |vcpu, mem| Ok(Command::Dsm { vcpu, mem });
        assert_eq!(parse("dsm 1"), dsm(1, MemType::Volatile));
        assert_eq!(parse("dsm 0x2:pm"), dsm(2, MemType::Persistent));
        assert_eq!(error("dsm 1:xx"), "bad memory type \"xx\" (vm or pm)");
        assert_eq!(error("dsm one"), "bad vCPU \"one\"");
        assert_eq!(error("dsm"), "usage: dsm VCPU[:vm|pm]");
    }

    #[test]
    fn enable_takes_the_three_modes_a_guest_can_write() {
        assert_eq!(parse("enable ns"), Ok(Command::Enable(StMode::NoSt)));
        assert_eq!(
            parse("enable iv"),
            Ok(Command::Enable(StMode::InterruptVector))
        );
        assert_eq!(
            parse("enable ds"),
            Ok(Command::Enable(StMode::DeviceSpecific))
        );
        assert_eq!(error("enable xx"), "unknown mode \"xx\" (iv, ds or ns)");
        assert_eq!(error("enable"), "usage: enable iv|ds|ns");
        assert_eq!(parse("disable"), Ok(Command::Disable));
        assert_eq!(error("disable now"), "disable takes no arguments");
    }

    #[test]
    fn irqs_takes_0_to_2048_vectors() {
        assert_eq!(parse("irqs 4"), Ok(Command::Irqs(4)));
        assert_eq!(
            error("irqs 2049"),
            "irqs 2049: more than 2048 vectors (the MSI-X limit)"
        );
        assert_eq!(
            error("irqs 4000000000000"),
            "bad vector count \"4000000000000\""
        );
    }

    #[test]
    fn write_takes_an_index_and_a_16_bit_tag() {
        assert_eq!(
            parse("write 3 0xffff"),
            Ok(Command::Write {
                index: 3,
                tag: 0xffff
            })
        );
        assert_eq!(error("write 0 0x10000"), "tag 0x10000 does not fit 16 bits");
        assert_eq!(error("write 65536 1"), "bad index \"65536\"");
        assert_eq!(error("write 0"), "usage: write INDEX TAG");
    }

    #[test]
    fn pin_takes_a_host_cpu_or_none() {
        let pin = |vcpu, cpu| Ok(Command::Pin(Pin { vcpu, cpu }));
        assert_eq!(parse("pin 1:6"), pin(1, Some(6)));
        assert_eq!(parse("pin 1:none"), pin(1, None));
        assert_eq!(parse("pin 1:-"), pin(1, None));
        assert_eq!(error("pin 1"), "\"1\" is not VCPU:PCPU");
        assert_eq!(error("pin x:1"), "bad vCPU \"x\"");
        assert_eq!(error("pin 1:x"), "bad host CPU \"x\"");
    }

    #[test]
    fn reset_takes_no_arguments() {
        assert_eq!(parse("reset"), Ok(Command::Reset));
        assert_eq!(parse("  reset "), Ok(Command::Reset));
        assert_eq!(error("reset 1"), "reset takes no arguments");
        assert_eq!(
            error("resets"),
            format!("unknown command \"resets\" ({COMMANDS})")
        );
    }

    #[test]
    fn guest_host_and_unknown_commands() {
        assert_eq!(parse("guest"), Ok(Command::Guest));
        assert_eq!(parse("host"), Ok(Command::Host));
        assert_eq!(error("host 1"), "host takes no arguments");
        assert_eq!(
            error("bogus line"),
            format!("unknown command \"bogus\" ({COMMANDS})")
        );
        assert_eq!(parse(""), Err(ParseError::Empty));
    }

    #[test]
    fn pins_are_checked_against_the_vm_and_host_limits() {
        assert_eq!(parse_pins("0:2,1:3", 8), Ok(vec![(0, 2), (1, 3)]));
        assert_eq!(parse_pins(" 0 : 7", 8), Ok(vec![(0, 7)]));
        let e = |text, cpus| parse_pins(text, cpus).unwrap_err().to_string();
        assert_eq!(e("0-1", 8), "\"0-1\" is not VCPU:PCPU");
        assert_eq!(
            e("4096:1", 8),
            "vCPU 4096 is beyond the largest VM (4096 vCPUs, KVM's limit)"
        );
        assert_eq!(parse_pins("4095:1", 8).map(|p| p.len()), Ok(1));
        assert_eq!(
            e("0:8", 8),
            "host CPU 8 is not present (the emulated host has 8 CPUs, 0-7; --cpus N gives it \
             more)"
        );
        assert_eq!(e("1:0,1:1", 8), "vCPU 1 is pinned twice");
        assert_eq!(
            e("4000000000:1", 8),
            "vCPU 4000000000 is beyond the largest VM (4096 vCPUs, KVM's limit)"
        );
        assert_eq!(e("1:0,", 8), "\"\" is not VCPU:PCPU");
    }
}
