//! One session command per stdin line.

use tph_client::{CpuQuery, MemType, Mode, Steer};

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
        /// Bytes to read (at most [`MAX_CFG_LEN`]).
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

fn number<T: TryFrom<u64>>(s: &str, what: &str) -> Result<T, String> {
    let v = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16),
        None => s.parse::<u64>(),
    };
    v.ok()
        .and_then(|v| T::try_from(v).ok())
        .ok_or_else(|| format!("bad {what} {}", quote(s)))
}

/// `s` quoted for a message, cut to its first 40 characters.
pub fn quote(s: &str) -> String {
    tph_regs::dump::quote(s)
}

fn cpu_mem(s: &str) -> Result<(u32, MemType), String> {
    let (cpu, mem) = match s.split_once(':') {
        Some((c, "vm")) => (c, MemType::Volatile),
        Some((c, "pm")) => (c, MemType::Persistent),
        Some((_, m)) => return Err(format!("bad memory type {} (vm or pm)", quote(m))),
        None => (s, MemType::Volatile),
    };
    Ok((number(cpu, "CPU")?, mem))
}

/// Most MSI-X vectors a function can have (the Table Size field is 11 bits).
pub const MAX_VECTORS: u32 = 2048;

/// The CPU value the ABI reserves to clear an entry (vfio-tph-v7.md, SET_ST).
const CLEAR_MARKER: u32 = u32::MAX;

fn steer(s: &str) -> Result<Steer, String> {
    let (index, rest) = s
        .split_once('=')
        .ok_or_else(|| format!("bad entry {} (INDEX=CPU[:vm|pm])", quote(s)))?;
    let (cpu, mem) = cpu_mem(rest)?;
    if cpu == CLEAR_MARKER {
        return Err(format!(
            "CPU {cpu:#x} is not a CPU (it is the ABI's clear marker): to clear entry {index}, \
             use `clear {index}`"
        ));
    }
    Ok(Steer::new(number(index, "index")?, cpu).with_mem(mem))
}

fn hex(cmd: &str, args: &[&str]) -> Result<Vec<u8>, String> {
    let s: String = args.concat();
    if s.is_empty() || !s.len().is_multiple_of(2) {
        return Err(format!("{cmd} needs an even number of hex digits"));
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|b| u8::from_str_radix(b, 16).ok())
                .ok_or_else(|| format!("bad hex byte at {i}"))
        })
        .collect()
}

fn cfg_len(len: usize, s: &str) -> Result<usize, String> {
    if len == 0 || len > MAX_CFG_LEN {
        return Err(format!("bad length {s:?} (1 to {MAX_CFG_LEN})"));
    }
    Ok(len)
}

fn at_least_one<T>(v: Vec<T>, cmd: &str) -> Result<Vec<T>, String> {
    if v.is_empty() {
        return Err(format!("{cmd} needs at least one argument"));
    }
    Ok(v)
}

fn no_args(cmd: Command, args: &[&str]) -> Result<Command, String> {
    match args {
        [] => Ok(cmd),
        _ => Err("takes no arguments".into()),
    }
}

/// `iv`/`ds`, or the names `list` and `show` print (`interrupt_vector`, `device_specific`).
fn mode(m: &str) -> Result<Mode, String> {
    match m {
        "interrupt_vector" => Ok(Mode::Iv),
        "device_specific" => Ok(Mode::Ds),
        other => other.parse().map_err(|_| {
            format!(
                "unknown mode {} (iv or interrupt_vector, ds or device_specific)",
                quote(other)
            )
        }),
    }
}

fn irqs(n: &str) -> Result<Command, String> {
    let n: u32 = number(n, "vector count")?;
    if n > MAX_VECTORS {
        return Err(format!(
            "irqs {n}: more than {MAX_VECTORS} vectors (the MSI-X limit)"
        ));
    }
    Ok(Command::Irqs(n))
}

/// Parses one non-empty line; `Err` is the message for a bad line.
pub fn parse(line: &str) -> Result<Command, String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let (name, args) = words.split_first().ok_or("empty line")?;
    match *name {
        "cap" => no_args(Command::Cap, args),
        "disable" => no_args(Command::Disable, args),
        "reset" => no_args(Command::Reset, args),
        "reopen" => no_args(Command::Reopen, args),
        "show" => no_args(Command::Show, args),
        "trace" => no_args(Command::Trace, args),
        "enable" => match args {
            [m] => Ok(Command::Enable(mode(m)?)),
            _ => Err("usage: enable iv|ds (or interrupt_vector|device_specific)".into()),
        },
        "irqs" => match args {
            [n] => irqs(n),
            _ => Err("usage: irqs N".into()),
        },
        "get-st" => {
            let q: Result<Vec<_>, _> = args.iter().map(|a| cpu_mem(a)).collect();
            let q = q?.into_iter().map(|(cpu, mem)| CpuQuery::new(cpu).with_mem(mem)).collect();
            Ok(Command::GetSt(at_least_one(q, "get-st")?))
        }
        "set-st" => Ok(Command::SetSt(at_least_one(
            args.iter().map(|a| steer(a)).collect::<Result<_, _>>()?,
            "set-st",
        )?)),
        "clear" => Ok(Command::Clear(at_least_one(
            args.iter().map(|a| number(a, "index")).collect::<Result<_, _>>()?,
            "clear",
        )?)),
        "raw" => Ok(Command::Raw(hex("raw", args)?)),
        "feature" => Ok(Command::Feature(hex("feature", args)?)),
        "cfg-read" => match args {
            [off, len] => Ok(Command::CfgRead {
                offset: number(off, "offset")?,
                len: number::<usize>(len, "length")
                    .and_then(|l| cfg_len(l, len))?,
            }),
            _ => Err("usage: cfg-read OFF LEN".into()),
        },
        "cfg-write" => match args {
            [off, bytes @ ..] if !bytes.is_empty() => Ok(Command::CfgWrite {
                offset: number(off, "offset")?,
                data: hex("cfg-write", bytes)?,
            }),
            _ => Err("usage: cfg-write OFF HEX".into()),
        },
        other => Err(format!(
            "unknown command {} (cap, enable, disable, irqs, get-st, set-st, clear, reset, reopen, show, trace, raw, feature, cfg-read, cfg-write)",
            quote(other)
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_set_st_reads_index_cpu_and_memory_type() {
        let c = parse("set-st 0=1 3=0x2:pm").unwrap();
        let want = vec![
            Steer::new(0, 1),
            Steer::new(3, 2).with_mem(MemType::Persistent),
        ];
        assert_eq!(c, Command::SetSt(want));
    }

    #[test]
    fn parse_get_st_without_cpus_is_error() {
        assert!(parse("get-st").unwrap_err().contains("at least one"));
    }

    #[test]
    fn parse_raw_joins_hex_words() {
        assert_eq!(
            parse("raw 1000 0000").unwrap(),
            Command::Raw(vec![0x10, 0, 0, 0])
        );
        assert!(parse("raw 123").is_err());
    }

    #[test]
    fn parse_cfg_read_takes_offset_and_bounded_length() {
        let want = Command::CfgRead {
            offset: 0x108,
            len: 4,
        };
        assert_eq!(parse("cfg-read 0x108 4").unwrap(), want);
        assert!(parse("cfg-read 0 0").unwrap_err().contains("bad length"));
        assert!(parse("cfg-read 0 4097").unwrap_err().contains("bad length"));
        assert!(parse("cfg-read 0").unwrap_err().contains("usage"));
    }

    #[test]
    fn parse_cfg_write_and_feature_read_hex_bytes_in_memory_order() {
        let want = Command::CfgWrite {
            offset: 0x108,
            data: vec![2, 0, 0, 0],
        };
        assert_eq!(parse("cfg-write 0x108 0200 0000").unwrap(), want);
        assert!(parse("cfg-write 0x108").unwrap_err().contains("usage"));
        assert_eq!(
            parse("feature 08000000 0d000500").unwrap(),
            Command::Feature(vec![8, 0, 0, 0, 0x0d, 0, 5, 0])
        );
        assert!(parse("feature 0").unwrap_err().contains("even number"));
    }

    #[test]
    fn parse_unknown_command_lists_commands() {
        assert!(parse("frob")
            .unwrap_err()
            .contains("unknown command \"frob\""));
    }

    #[test]
    fn parse_bad_mode_is_error() {
        assert!(parse("enable ns").is_err());
        assert!(parse("get-st 1:xx").unwrap_err().contains("memory type"));
    }
}
