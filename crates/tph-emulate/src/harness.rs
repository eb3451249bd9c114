//! The syscall-boundary harness: run a child process whose TPH ioctls are trapped with seccomp
//! user notification (`SECCOMP_RET_USER_NOTIF`) and answered by a handler in this process.
//!
//! The child installs the filter itself between `fork` and `exec` (only raw, async-signal-safe
//! syscalls there), sends the listener fd back over a socket pair, then `exec`s the program
//! unchanged. The supervisor reads and writes the trapped thread's argument memory through
//! `/proc/<tid>/mem`, checks the notification is still valid, and answers with the handler's
//! return value or errno. Every wait has a deadline; the child is killed if it is exceeded.
//!
//! ```no_run
//! use std::time::Duration;
//! use tph_emulate::harness::{supervise, ChildMemory, IoctlHandler, Trapped, TRAPPED_REQUESTS};
//! use tph_client::Errno;
//!
//! struct NoTph;
//! impl IoctlHandler for NoTph {
//!     fn ioctl(&mut self, _: &Trapped, _: &ChildMemory) -> Result<i32, Errno> {
//!         Err(Errno(19)) // ENODEV
//!     }
//! }
//! let cmd = std::process::Command::new("/usr/bin/true");
//! let out = supervise(cmd, &TRAPPED_REQUESTS, &mut NoTph, Duration::from_secs(10)).unwrap();
//! assert!(out.status.success());
//! ```

use std::fs::File;
use std::io::Read;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tph_client::abi;
use tph_client::Errno;

use crate::sys::{self, Ready};
use crate::Error;

/// The requests the harness traps by default: the TPH ioctl, MSI-X set-up and device reset.
pub const TRAPPED_REQUESTS: [u32; 3] = [
    abi::VFIO_DEVICE_PCI_TPH,
    abi::VFIO_DEVICE_SET_IRQS,
    abi::VFIO_DEVICE_RESET,
];

/// How long a poll waits before the supervisor checks the deadline and the child again.
const POLL_MS: i32 = 50;
/// How long the supervisor waits at most for the child to send its listener (it does so before
/// `exec`, so only a stuck fork takes this long).
const LISTENER_WAIT: Duration = Duration::from_secs(60);

/// One trapped system call; for `ioctl(fd, request, arg)` the fields name its arguments.
///
/// ```
/// let t = tph_emulate::harness::Trapped::new(1, libc::SYS_ioctl, [3, 0x3B7A, 0x1000, 0, 0, 0]);
/// assert_eq!((t.fd, t.arg), (3, 0x1000));
/// assert_eq!(t.request, tph_client::abi::VFIO_DEVICE_PCI_TPH);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Trapped {
    /// Thread id of the caller.
    pub pid: u32,
    /// The system call number.
    pub nr: i64,
    /// The raw arguments.
    pub args: [u64; 6],
    /// The fd argument, as a number in the child.
    pub fd: i32,
    /// The request number (low 32 bits, as the kernel uses it).
    pub request: u32,
    /// The argument pointer in the child.
    pub arg: u64,
}

impl Trapped {
    /// System call `nr` of thread `pid` with `args`, read as `ioctl(fd, request, arg)`: `fd`
    /// from the first argument, `request` from the low 32 bits of the second, `arg` the third
    /// (a handler test builds one; the supervisor builds every one it traps).
    pub fn new(pid: u32, nr: i64, args: [u64; 6]) -> Self {
        Self {
            pid,
            nr,
            args,
            fd: args[0] as i32,
            request: args[1] as u32,
            arg: args[2],
        }
    }
}

/// How the supervisor answers a trapped system call.
#[derive(Debug)]
#[non_exhaustive]
pub enum Reply {
    /// The call returns this value.
    Value(i64),
    /// The call fails with this errno.
    Fail(Errno),
    /// The kernel runs the call itself, as if it had not been trapped.
    Continue,
    /// A copy of this fd is installed in the child and the call returns its number.
    Fd(OwnedFd),
}

impl From<Result<i32, Errno>> for Reply {
    fn from(r: Result<i32, Errno>) -> Self {
        match r {
            Ok(v) => Reply::Value(i64::from(v)),
            Err(e) => Reply::Fail(e),
        }
    }
}

/// What the child sees besides the trapped calls: extra syscalls to trap whole (for example
/// `pread64` on a device fd), bind mounts in a private mount namespace (a fake `/sys` or
/// `/dev`; needs `CAP_SYS_ADMIN`), a file for its stdin, and whether it shares this process's
/// stdin, stdout and stderr instead of having its output collected.
///
/// ```
/// let s = tph_emulate::harness::Sandbox::default();
/// assert!(s.binds.is_empty() && s.syscalls.is_empty() && s.stdin.is_none() && !s.inherit_stdio);
/// assert!(!s.forward_signals);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Sandbox {
    /// System call numbers trapped whatever their arguments.
    pub syscalls: Vec<i64>,
    /// (source, target) directories bind-mounted in the child's private mount namespace.
    pub binds: Vec<(std::path::PathBuf, std::path::PathBuf)>,
    /// The child's stdin (default: `/dev/null`, or this process's with `inherit_stdio`).
    pub stdin: Option<std::path::PathBuf>,
    /// The child uses this process's stdin (unless `stdin` is set), stdout and stderr; then
    /// [`Supervised::stdout`] and [`Supervised::stderr`] are empty.
    pub inherit_stdio: bool,
    /// SIGINT, SIGTERM, SIGHUP and SIGQUIT do not end the supervisor: while the child runs
    /// they are held (in the calling thread, which must be the process's only thread so far)
    /// and each one a process sent is passed on to the child, whose calls are answered until it
    /// exits. A terminal's Ctrl-C or hang-up already reaches the child (it is in the same
    /// process group) and is not sent twice.
    pub forward_signals: bool,
}

impl Sandbox {
    /// The default: nothing trapped beyond the requests, no binds, stdin `/dev/null`, stdio
    /// captured, signals not forwarded.
    ///
    /// ```
    /// use tph_emulate::harness::Sandbox;
    /// let s = Sandbox::new().with_stdin("/tmp/script").with_inherit_stdio(true);
    /// assert_eq!(s.stdin.as_deref(), Some(std::path::Path::new("/tmp/script")));
    /// assert!(s.inherit_stdio && !s.forward_signals && s.binds.is_empty());
    /// ```
    pub fn new() -> Self {
        Self::default()
    }

    /// The same trapping `syscalls` whatever their arguments.
    #[must_use]
    pub fn with_syscalls(mut self, syscalls: Vec<i64>) -> Self {
        self.syscalls = syscalls;
        self
    }

    /// The same with `(source, target)` directories bind-mounted.
    #[must_use]
    pub fn with_binds(mut self, binds: Vec<(std::path::PathBuf, std::path::PathBuf)>) -> Self {
        self.binds = binds;
        self
    }

    /// The same with the child's stdin read from `path`.
    #[must_use]
    pub fn with_stdin(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.stdin = Some(path.into());
        self
    }

    /// The same sharing this process's stdio when `inherit`.
    #[must_use]
    pub fn with_inherit_stdio(mut self, inherit: bool) -> Self {
        self.inherit_stdio = inherit;
        self
    }

    /// The same passing SIGINT, SIGTERM, SIGHUP and SIGQUIT on to the child when `forward`.
    #[must_use]
    pub fn with_forward_signals(mut self, forward: bool) -> Self {
        self.forward_signals = forward;
        self
    }
}

/// The trapped thread's memory, read and written through `/proc/<tid>/mem`; handed to an
/// [`IoctlHandler`] by [`supervise`] (see the module example).
#[derive(Debug)]
pub struct ChildMemory {
    mem: File,
}

impl ChildMemory {
    /// This process's own memory (`/proc/self/mem`): to answer a call in-process the way the
    /// supervisor answers a trapped one (benchmarks of the trapping's cost).
    ///
    /// ```
    /// let mem = tph_emulate::harness::ChildMemory::of_self().unwrap();
    /// let x = 0x1234_5678u32;
    /// let mut b = [0u8; 4];
    /// mem.read(&x as *const u32 as u64, &mut b).unwrap();
    /// assert_eq!(u32::from_le_bytes(b), x);
    /// ```
    pub fn of_self() -> std::io::Result<Self> {
        let mem = File::options()
            .read(true)
            .write(true)
            .open("/proc/self/mem")?;
        Ok(Self { mem })
    }

    /// Reads `buf.len()` bytes at `addr` in the child; EFAULT where it is not mapped.
    ///
    /// ```no_run
    /// # use tph_emulate::harness::{ChildMemory, IoctlHandler, Trapped};
    /// # use tph_client::Errno;
    /// struct Echo;
    /// impl IoctlHandler for Echo {
    ///     fn ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
    ///         let mut head = [0u8; 8];
    ///         mem.read(call.arg, &mut head)?;
    ///         Ok(head[4] as i32) // return the op code
    ///     }
    /// }
    /// ```
    pub fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), Errno> {
        self.mem
            .read_exact_at(buf, addr)
            .map_err(|_| Errno(libc::EFAULT))
    }

    /// Writes `data` at `addr` in the child; EFAULT where it is not mapped or writable.
    ///
    /// ```no_run
    /// # use tph_emulate::harness::{ChildMemory, IoctlHandler, Trapped};
    /// # use tph_client::Errno;
    /// struct CapIv8;
    /// impl IoctlHandler for CapIv8 {
    ///     fn ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno> {
    ///         mem.write(call.arg + 8, &[1, 0, 8, 0])?; // GET_CAP: IV, 8 entries
    ///         Ok(0)
    ///     }
    /// }
    /// ```
    pub fn write(&self, addr: u64, data: &[u8]) -> Result<(), Errno> {
        self.mem
            .write_all_at(data, addr)
            .map_err(|_| Errno(libc::EFAULT))
    }
}

/// Answers trapped calls (in practice: the kernel model, [`crate::model::ModelHandler`]).
///
/// ```
/// use tph_emulate::harness::{ChildMemory, IoctlHandler, Trapped};
/// use tph_client::Errno;
/// /// Says "not a TPH device" to everything.
/// struct NoTph;
/// impl IoctlHandler for NoTph {
///     fn ioctl(&mut self, _: &Trapped, _: &ChildMemory) -> Result<i32, Errno> {
///         Err(Errno::ENODEV)
///     }
/// }
/// ```
pub trait IoctlHandler {
    /// Handles one call; `Ok(v)` makes the child's ioctl return `v`, `Err(e)` fail with `e`.
    fn ioctl(&mut self, call: &Trapped, mem: &ChildMemory) -> Result<i32, Errno>;

    /// Handles any trapped call; by default `ioctl`s go to [`IoctlHandler::ioctl`] and other
    /// system calls run in the kernel as usual.
    fn handle(&mut self, call: &Trapped, mem: &ChildMemory) -> Reply {
        if call.nr == libc::SYS_ioctl {
            return Reply::from(self.ioctl(call, mem));
        }
        Reply::Continue
    }

    /// Told the child's number of an fd installed by a [`Reply::Fd`].
    fn fd_installed(&mut self, _child_fd: i32) {}
}

/// How a supervised child ended.
///
/// ```no_run
/// # use std::time::Duration;
/// # use tph_emulate::harness::*;
/// # struct H;
/// # impl IoctlHandler for H { fn ioctl(&mut self, _: &Trapped, _: &ChildMemory) -> Result<i32, tph_client::Errno> { Ok(0) } }
/// let out = supervise(std::process::Command::new("true"), &TRAPPED_REQUESTS, &mut H, Duration::from_secs(5)).unwrap();
/// assert_eq!((out.status.success(), out.answered), (true, 0));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub struct Supervised {
    /// Its exit status.
    pub status: ExitStatus,
    /// Everything it wrote to stdout.
    pub stdout: String,
    /// Everything it wrote to stderr.
    pub stderr: String,
    /// Number of calls answered.
    pub answered: usize,
}

/// Whether this kernel offers seccomp user notification (`/proc/sys/kernel/seccomp/actions_avail`).
///
/// ```
/// let _ = tph_emulate::harness::user_notif_available();
/// ```
pub fn user_notif_available() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
        .is_ok_and(|s| s.split_whitespace().any(|a| a == "user_notif"))
}

/// Kills the child on every early return so nothing is left blocked.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn harness_err(what: &'static str, source: std::io::Error) -> Error {
    Error::Harness { what, source }
}

fn reader(mut pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut s = String::new();
        if let Some(p) = pipe.as_mut() {
            let _ = p.read_to_string(&mut s);
        }
        s
    })
}

/// Runs `cmd` with `ioctl`s whose request is in `requests` answered by `handler`, until it exits
/// or `timeout` passes (then it is killed and [`Error::Timeout`] returned; `Duration::MAX`
/// never passes).
///
/// ```
/// use std::time::Duration;
/// use tph_emulate::harness::{supervise, user_notif_available, ChildMemory, IoctlHandler, Trapped};
/// struct Never;
/// impl IoctlHandler for Never {
///     fn ioctl(&mut self, _: &Trapped, _: &ChildMemory) -> Result<i32, tph_client::Errno> {
///         unreachable!("echo makes no TPH ioctl")
///     }
/// }
/// if user_notif_available() {
///     let mut cmd = std::process::Command::new("echo");
///     cmd.arg("hello");
///     let out = supervise(cmd, &[0x3B7A], &mut Never, Duration::from_secs(10)).unwrap();
///     assert_eq!(out.stdout, "hello\n");
/// }
/// ```
pub fn supervise(
    cmd: Command,
    requests: &[u32],
    handler: &mut dyn IoctlHandler,
    timeout: Duration,
) -> Result<Supervised, Error> {
    supervise_in(cmd, requests, &Sandbox::default(), handler, timeout)
}

fn c_path(p: &std::path::Path) -> Result<std::ffi::CString, Error> {
    std::ffi::CString::new(p.as_os_str().as_encoded_bytes())
        .map_err(|e| harness_err("path with NUL", e.into()))
}

/// [`supervise`] with a [`Sandbox`]: extra trapped syscalls, bind mounts, stdin.
///
/// ```no_run
/// use std::time::Duration;
/// use tph_emulate::harness::{supervise_in, ChildMemory, IoctlHandler, Sandbox, Trapped};
/// struct Pass;
/// impl IoctlHandler for Pass {
///     fn ioctl(&mut self, _: &Trapped, _: &ChildMemory) -> Result<i32, tph_client::Errno> { Ok(0) }
/// }
/// let sandbox = Sandbox::new().with_binds(vec![("/tmp/fake-sys".into(), "/sys".into())]);
/// let cmd = std::process::Command::new("ls");
/// let out = supervise_in(cmd, &[], &sandbox, &mut Pass, Duration::from_secs(5)).unwrap();
/// println!("{}", out.stdout);
/// ```
pub fn supervise_in(
    mut cmd: Command,
    requests: &[u32],
    sandbox: &Sandbox,
    handler: &mut dyn IoctlHandler,
    timeout: Duration,
) -> Result<Supervised, Error> {
    // Held before anything is spawned, so threads started below inherit the mask; the child
    // unblocks them before `exec`.
    let held =
        if sandbox.forward_signals {
            Some(sys::HeldSignals::hold().map_err(|e| {
                harness_err("holding signals", std::io::Error::from_raw_os_error(e.0))
            })?)
        } else {
            None
        };
    let (parent, child_end) = UnixStream::pair().map_err(|e| harness_err("socketpair", e))?;
    parent
        .set_read_timeout(Some(timeout.min(LISTENER_WAIT)))
        .map_err(|e| harness_err("socket timeout", e))?;
    let stdin = match &sandbox.stdin {
        Some(p) => {
            Stdio::from(File::open(p).map_err(|e| harness_err("opening the child's stdin", e))?)
        }
        None if sandbox.inherit_stdio => Stdio::inherit(),
        None => Stdio::null(),
    };
    cmd.stdin(stdin);
    if sandbox.inherit_stdio {
        cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    } else {
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    }
    let binds = sandbox
        .binds
        .iter()
        .map(|(s, d)| Ok((c_path(s)?, c_path(d)?)))
        .collect::<Result<Vec<_>, Error>>()?;
    let filter =
        sys::notify_filter(requests, &sandbox.syscalls).map_err(|_| Error::TooManyTrapped {
            count: requests.len() + sandbox.syscalls.len(),
            max: sys::MAX_TRAPPED,
        })?;
    sys::install_listener_before_exec(&mut cmd, filter, binds, OwnedFd::from(child_end));
    if held.is_some() {
        sys::unblock_forwarded_before_exec(&mut cmd);
    }
    let mut guard = Guard(
        cmd.spawn()
            .map_err(|e| harness_err("spawning the child", e))?,
    );
    drop(cmd); // closes our copy of the child's socket end
    let listener = sys::recv_fd(&parent).map_err(|e| harness_err("receiving the listener", e))?;
    // Linux 6.6+: the trapped thread and the supervisor hand over on one CPU, which makes a
    // trapped call several times cheaper; older kernels refuse the flag and keep the usual
    // wake-up.
    let _ = sys::notif_sync_wake_up(listener.as_fd());
    let out = reader(guard.0.stdout.take());
    let err = reader(guard.0.stderr.take());
    let deadline = Instant::now().checked_add(timeout);
    let answered = serve(&mut guard.0, &listener, handler, deadline, held.as_ref())?;
    let status = guard
        .0
        .wait()
        .map_err(|e| harness_err("waiting for the child", e))?;
    Ok(Supervised {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
        answered,
    })
}

fn serve(
    child: &mut Child,
    listener: &OwnedFd,
    handler: &mut dyn IoctlHandler,
    deadline: Option<Instant>,
    signals: Option<&sys::HeldSignals>,
) -> Result<usize, Error> {
    let mut answered = 0;
    let mut mems = MemCache::default();
    loop {
        if deadline.is_some_and(|d| Instant::now() > d) {
            return Err(Error::Timeout);
        }
        let polled = sys::poll_in_or(listener.as_fd(), signals.map(sys::HeldSignals::fd), POLL_MS);
        if matches!(polled, Ok((_, true))) {
            forward(child, signals);
        }
        match polled.map(|(ready, _)| ready) {
            Ok(Ready::In) => answered += usize::from(answer_one(listener, handler, &mut mems)),
            Ok(Ready::Hangup) => return Ok(answered),
            Ok(Ready::Timeout) => {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return Ok(answered);
                }
            }
            Err(errno) => {
                return Err(Error::Harness {
                    what: "polling the listener",
                    source: std::io::Error::from_raw_os_error(errno.0),
                })
            }
        }
    }
}

/// Passes every held signal a process sent on to the child (best effort: it may have exited).
fn forward(child: &Child, signals: Option<&sys::HeldSignals>) {
    let Some(held) = signals else { return };
    while let Some((signal, from_a_process)) = held.next() {
        if from_a_process {
            let _ = sys::send_signal(child.id(), signal);
        }
    }
}

/// The `/proc/<tid>/mem` files of the threads that made trapped calls, kept open between
/// calls: opening one per call is a third of a trapped call's cost. A kept file is used again
/// only if it still reads the trapped thread's code at its instruction pointer: the file of a
/// thread whose process has exited or exec'd another program reads nothing (its memory is
/// gone), and is replaced by a fresh open, checked as every open is (notification still
/// valid after it). A thread id reused by another process while the first one lives cannot
/// happen (ids are unique among live threads).
#[derive(Default)]
struct MemCache(std::collections::HashMap<u32, File>);

/// Threads whose files are kept at most (a program with more gets them reopened).
const MEM_CACHE_MAX: usize = 256;

impl MemCache {
    /// The memory of thread `pid` trapped at `ip`: the kept file when it still reads there,
    /// else a fresh open.
    fn take(&mut self, pid: u32, ip: u64) -> std::io::Result<File> {
        if let Some(f) = self.0.remove(&pid)
            && f.read_exact_at(&mut [0u8; 1], ip).is_ok()
        {
            return Ok(f);
        }
        File::options()
            .read(true)
            .write(true)
            .open(format!("/proc/{pid}/mem"))
    }

    fn keep(&mut self, pid: u32, f: File) {
        if self.0.len() >= MEM_CACHE_MAX {
            self.0.clear();
        }
        self.0.insert(pid, f);
    }
}

/// Receives and answers one notification; false when it vanished (the thread died).
fn answer_one(listener: &OwnedFd, handler: &mut dyn IoctlHandler, mems: &mut MemCache) -> bool {
    let Ok(n) = sys::notif_recv(listener.as_fd()) else {
        return false;
    };
    let call = Trapped::new(n.pid, i64::from(n.nr), n.args);
    let mem = mems.take(n.pid, n.ip);
    // The id check after opening makes sure `pid` still names the trapped thread.
    if !sys::notif_id_valid(listener.as_fd(), n.id) {
        return false;
    }
    let reply = match mem {
        Ok(mem) => {
            let child = ChildMemory { mem };
            let reply = handler.handle(&call, &child);
            mems.keep(n.pid, child.mem);
            reply
        }
        Err(_) => Reply::Fail(Errno(libc::EFAULT)),
    };
    send(listener, n.id, reply, handler)
}

fn send(listener: &OwnedFd, id: u64, reply: Reply, handler: &mut dyn IoctlHandler) -> bool {
    let fd = listener.as_fd();
    match reply {
        Reply::Value(v) => {
            sys::notif_send(fd, id, Ok(i32::try_from(v).unwrap_or(i32::MAX))).is_ok()
        }
        Reply::Fail(e) => sys::notif_send(fd, id, Err(e)).is_ok(),
        Reply::Continue => sys::notif_continue(fd, id).is_ok(),
        Reply::Fd(owned) => match sys::notif_addfd_send(fd, id, owned.as_fd()) {
            Ok(child_fd) => {
                handler.fd_installed(child_fd);
                true
            }
            // The fd could not be installed: the call fails instead of waiting forever.
            Err(e) => sys::notif_send(fd, id, Err(e)).is_ok(),
        },
    }
}
