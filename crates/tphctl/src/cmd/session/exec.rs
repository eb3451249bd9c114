//! Runs session commands through the client, whatever the backend below it.

use std::sync::Arc;
use tph_client::backend::Backend;

use tph_acpi::{SteeringTagSource, TagWidth};
use tph_client::{Capabilities, CpuQuery, Errno, Error, MemType, Steer, TphDevice};
use tph_kernel::hw::Access;
use tph_regs::msix::MsixCap;
use tph_regs::tph::{ReqEnable, StLocation, TphControl, TphRequester};

use tphctl::session::Command;

/// The TPH registers of the device now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registers {
    /// Raw TPH Requester Control register.
    pub control: u32,
    /// Where the steering table lives.
    pub location: StLocation,
    /// Raw 16-bit entries (capability table, or Vector Control 31:16 of each MSI-X entry).
    pub st_table: Vec<u16>,
}

/// What a session needs beyond the client's calls: the parts that differ per backend.
pub trait SessionBackend: Backend {
    /// Closes the device and opens it again (TPH goes off at last close).
    fn reopen(&mut self) -> Result<(), Error>;
    /// The device's TPH registers and table now.
    fn registers(&mut self) -> Result<Registers, Error>;
    /// Hardware accesses since the last call (an error where nobody can see them).
    fn trace(&mut self) -> Result<Vec<Access>, Error>;
}

/// A command's result data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Data {
    /// Nothing beyond ok/error.
    None,
    /// `cap`.
    Cap(Capabilities),
    /// `get-st`: each query with its tag.
    Tags(Vec<(CpuQuery, u16)>),
    /// `show`.
    Show(Registers),
    /// `trace`.
    Trace(Vec<Access>),
    /// `raw`, `feature`, `cfg-read`, `cfg-write`: the return value (None on failure) and the
    /// argument bytes afterwards (the bytes read, for `cfg-read`).
    Raw {
        /// The ioctl's return value when it succeeded.
        ret: Option<i32>,
        /// The argument bytes after the call.
        out: Vec<u8>,
    },
}

/// The answer to one line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The line as given (trimmed).
    pub cmd: String,
    /// The errno when the kernel refused.
    pub errno: Option<Errno>,
    /// The message when the command failed.
    pub error: Option<String>,
    /// Something about a command that succeeded (a tag 0 written for want of a firmware tag).
    pub warning: Option<String>,
    /// The results.
    pub data: Data,
}

impl Reply {
    /// Whether the command succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    /// The answer to a line that is not a command.
    pub fn bad_line(cmd: &str, message: String) -> Self {
        Reply {
            cmd: cmd.to_string(),
            errno: None,
            error: Some(message),
            warning: None,
            data: Data::None,
        }
    }
}

/// The session's own MSI-X eventfds: the session is the driver here, so it owns them (the
/// client never does).
pub type Irqs = Vec<std::os::fd::OwnedFd>;

/// The device's limits, read from its configuration space when the session starts, so a
/// refusal can name the field and the limit it broke.
#[derive(Clone, Default)]
pub struct Limits {
    /// ST table entries (MSI-X vectors for a table in MSI-X).
    pub st_entries: Option<u16>,
    /// MSI-X vectors of the function.
    pub vectors: Option<u16>,
    /// Present CPUs (`0..cpus`).
    pub cpus: Option<u32>,
    /// The emulated host's firmware, to tell when SET_ST wrote tag 0 for want of a tag.
    pub firmware: Option<HostFirmware>,
}

/// The firmware an emulated host answers `_DSM` from, and its CPU -> UID map.
#[derive(Clone)]
pub struct HostFirmware {
    /// The `_DSM` answers.
    pub source: Arc<dyn SteeringTagSource>,
    /// UID of CPU n (n itself when not listed).
    pub cpu_uids: Vec<u32>,
}

impl HostFirmware {
    /// Which of `entries` got tag 0 because firmware has no valid tag for the CPU at the width
    /// `control` (the TPH Control register after the write) selects; `None` when all had one.
    fn untagged(&self, entries: &[Steer], control: u32) -> Option<String> {
        let width = match TphControl::from_bits(control).enable {
            ReqEnable::Tph => TagWidth::Bits8,
            ReqEnable::ExtTph => TagWidth::Bits16,
            _ => return None,
        };
        let missing: Vec<String> = entries
            .iter()
            .filter(|e| self.tag(e.cpu, e.mem, width).is_none())
            .map(|e| format!("entry {} (CPU {} {})", e.index, e.cpu, mem_word(e.mem)))
            .collect();
        (!missing.is_empty()).then(|| {
            format!(
                "firmware has no valid {}-bit tag for {}: tag 0 written (no steering)",
                width.bits(),
                missing.join(", ")
            )
        })
    }

    fn tag(&self, cpu: u32, mem: MemType, width: TagWidth) -> Option<u16> {
        let uid = usize::try_from(cpu)
            .ok()
            .and_then(|i| self.cpu_uids.get(i).copied())
            .unwrap_or(cpu);
        let mem = match mem {
            MemType::Volatile => tph_acpi::MemType::Volatile,
            MemType::Persistent => tph_acpi::MemType::Persistent,
        };
        self.source.st_info(uid).ok()?.tag(mem, width)
    }
}

fn mem_word(m: MemType) -> &'static str {
    match m {
        MemType::Volatile => "vm",
        MemType::Persistent => "pm",
    }
}

impl Limits {
    /// The limits in `config` (the function's configuration space) on a host of `cpus` CPUs.
    pub fn of(config: &[u8], cpus: Option<u32>) -> Self {
        let vectors = MsixCap::find(config).map(|m| m.table_size);
        let tph = TphRequester::find(config).and_then(Result::ok);
        let st_entries = tph.and_then(|t| match t.cap.location {
            StLocation::Capability => Some(t.cap.table_size),
            StLocation::MsiX => vectors,
            _ => None,
        });
        Self {
            st_entries,
            vectors,
            cpus,
            firmware: None,
        }
    }

    /// A sentence naming the limit `cmd` broke, when the kernel said EINVAL with `message`
    /// (nothing the message already says).
    fn explain(&self, cmd: &Command, message: &str) -> Option<String> {
        let cpu_out = |cpu: u32| self.cpus.is_some_and(|n| cpu >= n);
        let past = |i: u16| self.st_entries.is_some_and(|n| i >= n);
        let (cpus, entries) = match cmd {
            Command::Irqs(n) => {
                let max = self.vectors?;
                return (*n > u32::from(max))
                    .then(|| format!("irqs {n}: the function has {max} MSI-X vectors"));
            }
            Command::GetSt(q) => (q.iter().map(|q| q.cpu).collect(), Vec::new()),
            Command::SetSt(e) => (
                e.iter().map(|e| e.cpu).collect(),
                e.iter().map(|e| e.index).collect(),
            ),
            Command::Clear(i) => (Vec::new(), i.clone()),
            _ => return None,
        };
        let mut why = Vec::new();
        if let (Some(i), Some(n)) = (entries.into_iter().find(|&i| past(i)), self.st_entries)
            && !message.contains(&format!("index {i} "))
        {
            why.push(format!(
                "index {i} is past the {n}-entry ST table (0-{})",
                n - 1
            ));
        }
        if let (Some(c), Some(n)) = (cpus.into_iter().find(|&c| cpu_out(c)), self.cpus) {
            match message.contains(&format!("CPU {c} ")) {
                true => why.push(format!("present CPUs: 0-{}", n - 1)),
                false => why.push(format!("CPU {c} is past the present CPUs 0-{}", n - 1)),
            }
        }
        (!why.is_empty()).then(|| why.join("; "))
    }
}

/// Runs line `number` against `dev` and says what happened; never fails.
pub fn run_line<B: SessionBackend>(
    dev: &mut TphDevice<B>,
    irqs: &mut Irqs,
    line: &str,
    number: usize,
    limits: &Limits,
) -> Reply {
    let cmd = match tphctl::session::parse(line) {
        Ok(c) => c,
        Err(e) => {
            let shown = tphctl::quote(line);
            return Reply::bad_line(shown.trim_matches('"'), format!("line {number}: {e}"));
        }
    };
    let get_st = matches!(cmd, Command::GetSt(_));
    let explain = |cmd: &Command, message: &str| limits.explain(cmd, message);
    let asked = cmd.clone();
    let (result, data_on_error) = match cmd {
        Command::Raw(bytes) => return raw(dev, line, bytes),
        Command::Feature(bytes) => return feature(dev, line, bytes),
        Command::CfgRead { offset, len } => return cfg_read(dev, line, offset, len),
        Command::CfgWrite { offset, data } => return cfg_write(dev, line, offset, data),
        other => (execute(dev, irqs, other), Data::None),
    };
    match result {
        Ok(data) => {
            let warning = match &asked {
                Command::SetSt(entries) => limits.firmware.as_ref().and_then(|f| {
                    let control = dev.backend_mut().registers().ok()?.control;
                    f.untagged(entries, control)
                }),
                _ => None,
            };
            Reply {
                cmd: line.to_string(),
                errno: None,
                error: None,
                warning,
                data,
            }
        }
        Err(e) => {
            let message = super::super::client_error(&e);
            let hint = match e.errno().map(|n| n.name()) {
                Some("EOPNOTSUPP") if get_st => GET_ST_HINT.to_owned(),
                Some("EINVAL") => explain(&asked, &message)
                    .map(|why| format!("; {why}"))
                    .unwrap_or_default(),
                _ => String::new(),
            };
            Reply {
                cmd: line.to_string(),
                errno: e.errno(),
                error: Some(format!("{message}{hint}")),
                warning: None,
                data: data_on_error,
            }
        }
    }
}

/// GET_ST answers only in DS mode, and the DS gate is checked first (vfio-tph-v7.md, GET_ST):
/// in IV mode the gate's refusal alone would read as if IV were the problem's cause.
const GET_ST_HINT: &str = "; get-st answers only in DS mode (`enable ds`, which this host \
                           refuses without the unsafe DS parameter)";

/// `irqs N`: N fresh eventfds of the session's, wired to vectors 0..N (0 disables MSI-X); the
/// old ones are closed once the kernel has the new set.
fn set_irqs<B: SessionBackend>(
    dev: &mut TphDevice<B>,
    irqs: &mut Irqs,
    n: u32,
) -> Result<(), Error> {
    use std::os::fd::AsFd;
    let fresh = (0..n)
        .map(|_| tph_client::backend::eventfd())
        .collect::<Result<Irqs, _>>()
        .map_err(|errno| Error::Backend {
            op: "creating eventfds",
            errno,
        })?;
    let fds: Vec<_> = fresh.iter().map(AsFd::as_fd).collect();
    dev.enable_msix(&fds)?;
    *irqs = fresh;
    Ok(())
}

fn execute<B: SessionBackend>(
    dev: &mut TphDevice<B>,
    irqs: &mut Irqs,
    cmd: Command,
) -> Result<Data, Error> {
    match cmd {
        Command::Cap => dev.capabilities().map(Data::Cap),
        Command::Enable(mode) => dev.enable(mode).map(|()| Data::None),
        Command::Disable => dev.disable().map(|()| Data::None),
        Command::Irqs(n) => set_irqs(dev, irqs, n).map(|()| Data::None),
        Command::GetSt(q) => {
            let tags = dev.steering_tags(&q)?;
            Ok(Data::Tags(q.into_iter().zip(tags).collect()))
        }
        Command::SetSt(entries) => dev.set_entries(&entries).map(|()| Data::None),
        Command::Clear(indexes) => dev.clear_entries(&indexes).map(|()| Data::None),
        Command::Reset => dev.reset().map(|()| Data::None),
        Command::Reopen => {
            dev.backend_mut().reopen()?;
            dev.forget_state();
            Ok(Data::None)
        }
        Command::Show => dev.backend_mut().registers().map(Data::Show),
        Command::Trace => dev.backend_mut().trace().map(Data::Trace),
        // Raw calls are answered by `raw_reply`.
        Command::Raw(_)
        | Command::Feature(_)
        | Command::CfgRead { .. }
        | Command::CfgWrite { .. } => Ok(Data::None),
    }
}

/// The answer to a raw call: its return value or errno, and the bytes afterwards.
fn raw_reply(line: &str, result: Result<i32, Errno>, out: Vec<u8>) -> Reply {
    let (ret, errno) = match result {
        Ok(v) => (Some(v), None),
        Err(e) => (None, Some(e)),
    };
    Reply {
        cmd: line.to_string(),
        errno,
        error: errno.map(|e| format!("the kernel refused the raw call: {e}")),
        warning: None,
        data: Data::Raw { ret, out },
    }
}

fn raw<B: SessionBackend>(dev: &mut TphDevice<B>, line: &str, mut bytes: Vec<u8>) -> Reply {
    let result = dev.raw_ioctl(&mut bytes);
    raw_reply(line, result, bytes)
}

/// `feature HEX`: sent whatever the revision (`VFIO_DEVICE_FEATURE` is a mainline ioctl; a
/// kernel without TPH_ST refuses the feature number). A buffer shorter than its head or than
/// its `argsz` is refused before the kernel sees it (EFAULT).
fn feature<B: SessionBackend>(dev: &mut TphDevice<B>, line: &str, mut bytes: Vec<u8>) -> Reply {
    let result = dev.backend_mut().device_feature(&mut bytes);
    raw_reply(line, result, bytes)
}

fn cfg_read<B: SessionBackend>(
    dev: &mut TphDevice<B>,
    line: &str,
    offset: u64,
    len: usize,
) -> Reply {
    let mut buf = vec![0u8; len];
    let result = dev.backend().read_config(offset, &mut buf);
    let ret = i32::try_from(len).unwrap_or(i32::MAX);
    match result {
        Ok(()) => raw_reply(line, Ok(ret), buf),
        Err(e) => raw_reply(line, Err(e), Vec::new()),
    }
}

fn cfg_write<B: SessionBackend>(
    dev: &mut TphDevice<B>,
    line: &str,
    offset: u64,
    data: Vec<u8>,
) -> Reply {
    let result = dev.backend_mut().write_config(offset, &data);
    let ret = i32::try_from(data.len()).unwrap_or(i32::MAX);
    raw_reply(line, result.map(|()| ret), Vec::new())
}
