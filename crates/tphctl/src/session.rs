//! The `tphctl session` language: one command per line.

use tph_client::{CpuQuery, Mode, Steer};

use crate::{cpu_mem, number, ParseError, MAX_VECTORS};

/// A parsed session command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `cap`: GET_CAP.
    Cap,
    /// `enable iv|ds`.
    Enable(Mode),
    /// `disable`.
    Disable,
    /// `irqs N`: enable MSI-X vectors 0..N-1 (0 disables).
    Irqs(u32),
    /// `get-st CPU[:vm|pm]...`.
    GetSt(Vec<CpuQuery>),
    /// `set-st INDEX=CPU[:vm|pm]...`.
    SetSt(Vec<Steer>),
    /// `clear INDEX...`.
    Clear(Vec<u16>),
    /// `reset`: function-level reset.
    Reset,
    /// `reopen`: close the device and open it again.
    Reopen,
    /// `show`: TPH registers and steering table now.
    Show,
    /// `trace`: hardware accesses since the last `trace`.
    Trace,
    /// `raw HEX`: these bytes as the `VFIO_DEVICE_PCI_TPH` argument.
    Raw(Vec<u8>),
    /// `feature HEX`: these bytes as the `VFIO_DEVICE_FEATURE` argument.
    Feature(Vec<u8>),
    /// `cfg-read OFF LEN`: LEN bytes of the config region at OFF.
    CfgRead {
        /// Offset in the config region.
        offset: u64,
        /// Bytes to read (1 to [`MAX_CFG_LEN`]).
        len: usize,
    },
    /// `cfg-write OFF HEX`: these bytes written to the config region at OFF.
    CfgWrite {
        /// Offset in the config region.
        offset: u64,
        /// The bytes, in memory order.
        data: Vec<u8>,
    },
}

/// The most bytes one `cfg-read` reads (a PCI Express function's whole config space).
pub const MAX_CFG_LEN: usize = 4096;

/// The commands, as an unknown one's error lists them.
const COMMANDS: &str = "cap, enable, disable, irqs, get-st, set-st, clear, reset, reopen, show, \
                        trace, raw, feature, cfg-read, cfg-write";

/// The CPU value the ABI reserves to clear an entry (vfio-tph-v7.md, SET_ST).
const CLEAR_MARKER: u32 = u32::MAX;

fn steer(s: &str) -> Result<Steer, ParseError> {
    let (index, rest) = s
        .split_once('=')
        .ok_or_else(|| ParseError::BadEntry(s.to_owned()))?;
    let index = number(index, "index")?;
    let (cpu, mem) = cpu_mem(rest, "CPU")?;
    if cpu == CLEAR_MARKER {
        return Err(ParseError::ClearMarker { index });
    }
    Ok(Steer::new(index, cpu).with_mem(mem))
}

/// The bytes of hex `words` joined (`0200 0000` is 2, 0, 0, 0).
fn hex(cmd: &'static str, words: &[&str]) -> Result<Vec<u8>, ParseError> {
    let digits: String = words.concat();
    if digits.is_empty() || !digits.len().is_multiple_of(2) {
        return Err(ParseError::OddHex { cmd });
    }
    (0..digits.len())
        .step_by(2)
        .map(|at| {
            digits
                .get(at..at + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or(ParseError::BadHex { at })
        })
        .collect()
}

fn cfg_len(text: &str) -> Result<usize, ParseError> {
    let bad = || ParseError::BadLength {
        text: text.to_owned(),
        max: MAX_CFG_LEN,
    };
    let len: usize = number(text, "length").map_err(|_| bad())?;
    if len == 0 || len > MAX_CFG_LEN {
        return Err(bad());
    }
    Ok(len)
}

fn at_least_one<T>(v: Vec<T>, cmd: &'static str) -> Result<Vec<T>, ParseError> {
    if v.is_empty() {
        return Err(ParseError::NeedsArguments { cmd });
    }
    Ok(v)
}

/// `iv`/`ds`, or the names `list` and `show` print (`interrupt_vector`, `device_specific`).
fn mode(m: &str) -> Result<Mode, ParseError> {
    match m {
        "iv" | "IV" | "interrupt_vector" => Ok(Mode::Iv),
        "ds" | "DS" | "device_specific" => Ok(Mode::Ds),
        other => Err(ParseError::UnknownMode {
            text: other.to_owned(),
            known: "iv or interrupt_vector, ds or device_specific",
        }),
    }
}

fn irqs(n: &str) -> Result<Command, ParseError> {
    let n: u32 = number(n, "vector count")?;
    if n > MAX_VECTORS {
        return Err(ParseError::TooManyVectors(n));
    }
    Ok(Command::Irqs(n))
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
        "cap" => no_args("cap", Command::Cap),
        "disable" => no_args("disable", Command::Disable),
        "reset" => no_args("reset", Command::Reset),
        "reopen" => no_args("reopen", Command::Reopen),
        "show" => no_args("show", Command::Show),
        "trace" => no_args("trace", Command::Trace),
        "enable" => match args {
            [m] => Ok(Command::Enable(mode(m)?)),
            _ => Err(ParseError::Usage(
                "enable iv|ds (or interrupt_vector|device_specific)",
            )),
        },
        "irqs" => match args {
            [n] => irqs(n),
            _ => Err(ParseError::Usage("irqs N")),
        },
        "get-st" => {
            let q = args
                .iter()
                .map(|a| cpu_mem(a, "CPU").map(|(cpu, mem)| CpuQuery::new(cpu).with_mem(mem)))
                .collect::<Result<_, _>>()?;
            Ok(Command::GetSt(at_least_one(q, "get-st")?))
        }
        "set-st" => {
            let entries = args.iter().map(|a| steer(a)).collect::<Result<_, _>>()?;
            Ok(Command::SetSt(at_least_one(entries, "set-st")?))
        }
        "clear" => {
            let indexes = args
                .iter()
                .map(|a| number(a, "index"))
                .collect::<Result<_, _>>()?;
            Ok(Command::Clear(at_least_one(indexes, "clear")?))
        }
        "raw" => Ok(Command::Raw(hex("raw", args)?)),
        "feature" => Ok(Command::Feature(hex("feature", args)?)),
        "cfg-read" => match args {
            [off, len] => Ok(Command::CfgRead {
                offset: number(off, "offset")?,
                len: cfg_len(len)?,
            }),
            _ => Err(ParseError::Usage("cfg-read OFF LEN")),
        },
        "cfg-write" => match args {
            [off, bytes @ ..] if !bytes.is_empty() => Ok(Command::CfgWrite {
                offset: number(off, "offset")?,
                data: hex("cfg-write", bytes)?,
            }),
            _ => Err(ParseError::Usage("cfg-write OFF HEX")),
        },
        other => Err(ParseError::UnknownCommand {
            name: other.to_owned(),
            known: COMMANDS,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tph_client::MemType;

    fn error(line: &str) -> String {
        parse(line).unwrap_err().to_string()
    }

    #[test]
    fn commands_without_arguments() {
        let cases = [
            ("cap", Command::Cap),
            ("disable", Command::Disable),
            ("reset", Command::Reset),
            ("reopen", Command::Reopen),
            ("show", Command::Show),
            ("trace", Command::Trace),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line), Ok(want), "{line}");
            assert_eq!(
                error(&format!("{line} 1")),
                format!("{line} takes no arguments")
            );
        }
    }

    #[test]
    fn enable_takes_the_short_and_the_list_names_of_a_mode() {
        for (word, mode) in [
            ("iv", Mode::Iv),
            ("interrupt_vector", Mode::Iv),
            ("ds", Mode::Ds),
            ("device_specific", Mode::Ds),
        ] {
            assert_eq!(parse(&format!("enable {word}")), Ok(Command::Enable(mode)));
        }
        assert_eq!(
            error("enable ns"),
            "unknown mode \"ns\" (iv or interrupt_vector, ds or device_specific)"
        );
        assert_eq!(
            error("enable"),
            "usage: enable iv|ds (or interrupt_vector|device_specific)"
        );
        assert_eq!(error("enable iv ds"), error("enable"));
    }

    #[test]
    fn irqs_takes_0_to_2048_vectors() {
        assert_eq!(parse("irqs 0"), Ok(Command::Irqs(0)));
        assert_eq!(parse("irqs 0x800"), Ok(Command::Irqs(2048)));
        assert_eq!(
            error("irqs 2049"),
            "irqs 2049: more than 2048 vectors (the MSI-X limit)"
        );
        assert_eq!(error("irqs many"), "bad vector count \"many\"");
        assert_eq!(error("irqs 4294967296"), "bad vector count \"4294967296\"");
        assert_eq!(error("irqs"), "usage: irqs N");
    }

    #[test]
    fn set_st_reads_index_cpu_and_memory_type() {
        let want = vec![
            Steer::new(0, 1),
            Steer::new(3, 2).with_mem(MemType::Persistent),
        ];
        assert_eq!(parse("set-st 0=1 3=0x2:pm"), Ok(Command::SetSt(want)));
        assert_eq!(error("set-st 1"), "bad entry \"1\" (INDEX=CPU[:vm|pm])");
        assert_eq!(error("set-st x=1"), "bad index \"x\"");
        assert_eq!(error("set-st 65536=1"), "bad index \"65536\"");
        assert_eq!(error("set-st 1=2:xx"), "bad memory type \"xx\" (vm or pm)");
        assert_eq!(error("set-st"), "set-st needs at least one argument");
    }

    #[test]
    fn set_st_refuses_the_clear_marker_naming_clear() {
        for line in ["set-st 5=4294967295", "set-st 5=0xffffffff:pm"] {
            assert_eq!(
                error(line),
                "CPU 0xffffffff is not a CPU (it is the ABI's clear marker): to clear entry 5, \
                 use `clear 5`"
            );
        }
        // One below the marker is a CPU (the kernel judges whether it is present).
        assert!(parse("set-st 5=0xfffffffe").is_ok());
    }

    #[test]
    fn get_st_and_clear_take_one_or_more() {
        let want = vec![
            CpuQuery::new(3),
            CpuQuery::new(4).with_mem(MemType::Persistent),
        ];
        assert_eq!(parse("get-st 3:vm 4:pm"), Ok(Command::GetSt(want)));
        assert_eq!(error("get-st"), "get-st needs at least one argument");
        assert_eq!(error("get-st 1:xx"), "bad memory type \"xx\" (vm or pm)");
        assert_eq!(parse("clear 0 0x1f"), Ok(Command::Clear(vec![0, 31])));
        assert_eq!(error("clear"), "clear needs at least one argument");
    }

    #[test]
    fn raw_and_feature_join_hex_words_in_memory_order() {
        assert_eq!(
            parse("raw 1000 0000"),
            Ok(Command::Raw(vec![0x10, 0, 0, 0]))
        );
        assert_eq!(
            parse("feature 08000000 0d000500"),
            Ok(Command::Feature(vec![8, 0, 0, 0, 0x0d, 0, 5, 0]))
        );
        assert_eq!(error("raw 123"), "raw needs an even number of hex digits");
        assert_eq!(error("raw"), "raw needs an even number of hex digits");
        assert_eq!(
            error("feature 0"),
            "feature needs an even number of hex digits"
        );
        assert_eq!(error("raw 00zz"), "bad hex byte at 2");
        // A multi-byte character is no hex digit, whatever byte boundary it straddles.
        assert_eq!(error("raw 0é0"), "bad hex byte at 0");
    }

    #[test]
    fn cfg_read_takes_an_offset_and_a_bounded_length() {
        assert_eq!(
            parse("cfg-read 0x108 4"),
            Ok(Command::CfgRead {
                offset: 0x108,
                len: 4
            })
        );
        assert_eq!(
            parse("cfg-read 0 4096"),
            Ok(Command::CfgRead {
                offset: 0,
                len: MAX_CFG_LEN
            })
        );
        assert_eq!(error("cfg-read 0 0"), "bad length \"0\" (1 to 4096)");
        assert_eq!(error("cfg-read 0 4097"), "bad length \"4097\" (1 to 4096)");
        assert_eq!(error("cfg-read 0 x"), "bad length \"x\" (1 to 4096)");
        assert_eq!(error("cfg-read x 4"), "bad offset \"x\"");
        assert_eq!(error("cfg-read 0"), "usage: cfg-read OFF LEN");
    }

    #[test]
    fn cfg_write_takes_an_offset_and_hex_bytes() {
        assert_eq!(
            parse("cfg-write 0x108 0200 0000"),
            Ok(Command::CfgWrite {
                offset: 0x108,
                data: vec![2, 0, 0, 0]
            })
        );
        assert_eq!(error("cfg-write 0x108"), "usage: cfg-write OFF HEX");
        assert_eq!(error("cfg-write"), "usage: cfg-write OFF HEX");
    }

    #[test]
    fn unknown_and_empty_lines() {
        assert_eq!(
            error("frob"),
            format!("unknown command \"frob\" ({COMMANDS})")
        );
        assert_eq!(parse("   "), Err(ParseError::Empty));
    }

    #[test]
    fn errors_quote_at_most_40_characters_of_a_word() {
        let long = "z".repeat(60_000);
        let e = error(&format!("irqs {long}"));
        assert_eq!(e, format!("bad vector count \"{}\"...", "z".repeat(40)));
        let e = error(&long);
        assert!(e.len() < COMMANDS.len() + 80, "{}", e.len());
    }
}
