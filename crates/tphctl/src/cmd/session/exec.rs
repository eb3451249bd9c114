//! Runs session commands through the client, whatever the backend below it.

use tph_client::backend::Backend;
use tph_client::{Capabilities, CpuQuery, Errno, Error, TphDevice};
use tph_regs::tph::StLocation;

use super::parse::Command;

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
    /// Hardware accesses since the last call, one line each (an error where nobody can see them).
    fn trace(&mut self) -> Result<Vec<String>, Error>;
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
    Trace(Vec<String>),
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
    /// The results.
    pub data: Data,
}

impl Reply {
    /// Whether the command succeeded.
    pub fn ok(&self) -> bool {
        self.error.is_none()
    }

    fn bad_line(cmd: &str, message: String) -> Self {
        Reply {
            cmd: cmd.to_string(),
            errno: None,
            error: Some(message),
            data: Data::None,
        }
    }
}

/// The session's own MSI-X eventfds: the session is the driver here, so it owns them (the
/// client never does).
pub type Irqs = Vec<std::os::fd::OwnedFd>;

/// Runs one line against `dev` and says what happened; never fails.
pub fn run_line<B: SessionBackend>(dev: &mut TphDevice<B>, irqs: &mut Irqs, line: &str) -> Reply {
    let cmd = match super::parse::parse(line) {
        Ok(c) => c,
        Err(msg) => return Reply::bad_line(line, msg),
    };
    let (result, data_on_error) = match cmd {
        Command::Raw(bytes) => return raw(dev, line, bytes),
        Command::Feature(bytes) => return feature(dev, line, bytes),
        Command::CfgRead { offset, len } => return cfg_read(dev, line, offset, len),
        Command::CfgWrite { offset, data } => return cfg_write(dev, line, offset, data),
        other => (execute(dev, irqs, other), Data::None),
    };
    match result {
        Ok(data) => Reply {
            cmd: line.to_string(),
            errno: None,
            error: None,
            data,
        },
        Err(e) => Reply {
            cmd: line.to_string(),
            errno: e.errno(),
            error: Some(e.to_string()),
            data: data_on_error,
        },
    }
}

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
