//! The one home of `unsafe` in this crate: seccomp user notification, fd passing and the
//! child's pre-exec set-up for the syscall-boundary harness. Each `unsafe` block states the
//! invariant that makes it sound; callers above see safe functions over borrowed fds.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::process::Command;

use tph_client::Errno;

// ---- the child's eventfds ----

/// The thread-group id of thread `tid` (`Tgid:` of `/proc/<tid>/status`).
fn tgid_of(tid: u32) -> io::Result<i32> {
    let status = std::fs::read_to_string(format!("/proc/{tid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("Tgid:"))
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidData))
}

/// Adds 1 to the counter of the eventfd the child (thread `tid`) holds as `fd`, through a
/// duplicate of it (`pidfd_open`, `pidfd_getfd`), as the kernel's `eventfd_signal` would.
pub(crate) fn signal_child_eventfd(tid: u32, fd: i32) -> io::Result<()> {
    use std::io::Write;
    let tgid = tgid_of(tid)?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new fd or -1; no memory is passed.
    let pidfd = unsafe { libc::syscall(libc::SYS_pidfd_open, tgid, 0) };
    if pidfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    // SAFETY: pidfd_getfd takes a pidfd we own, the child's fd number and flags; it returns a
    // new fd or -1 and touches no memory of ours.
    let dup = unsafe { libc::syscall(libc::SYS_pidfd_getfd, pidfd.as_raw_fd(), fd, 0) };
    if dup < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel just returned this fd to us; nothing else owns it.
    let dup = unsafe { OwnedFd::from_raw_fd(dup as RawFd) };
    std::fs::File::from(dup).write_all(&1u64.to_ne_bytes())
}

// ---- seccomp user notification (the syscall-boundary harness) ----

const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
const BPF_RET_K: u16 = 0x06; // BPF_RET | BPF_K
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
const SECCOMP_DATA_ARG1_LO: u32 = 24; // args[1] low 32 bits (little-endian)

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> libc::sock_filter {
    libc::sock_filter { code, jt, jf, k }
}

/// A classic-BPF program: `ioctl` calls whose request is one of `requests`, and every call of
/// the syscalls in `whole`, go to the listener; everything else (and every other architecture's
/// calls) is allowed.
///
/// A classic-BPF conditional jump reaches at most 255 instructions ahead, so the lists are
/// bounded: a program whose jumps would not fit is refused ([`MAX_TRAPPED`]), never clamped.
pub(crate) fn notify_filter(
    requests: &[u32],
    whole: &[i64],
) -> Result<Vec<libc::sock_filter>, Errno> {
    let (n, w) = (requests.len(), whole.len());
    if n + w > MAX_TRAPPED {
        return Err(Errno::EINVAL);
    }
    let allow = 5 + w + n; // index of the ALLOW return
    let notify = allow + 1;
    // In range by the bound above: the farthest jump is from index 1 to `notify`.
    let jump = |from: usize, to: usize| u8::try_from(to - from - 1).unwrap_or(u8::MAX);
    let mut p = vec![
        insn(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARCH),
        insn(BPF_JEQ_K, 0, jump(1, allow), AUDIT_ARCH),
        insn(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_NR),
    ];
    for (i, nr) in whole.iter().enumerate() {
        p.push(insn(BPF_JEQ_K, jump(3 + i, notify), 0, *nr as u32));
    }
    p.push(insn(
        BPF_JEQ_K,
        0,
        jump(3 + w, allow),
        libc::SYS_ioctl as u32,
    ));
    p.push(insn(BPF_LD_W_ABS, 0, 0, SECCOMP_DATA_ARG1_LO));
    for (i, r) in requests.iter().enumerate() {
        p.push(insn(BPF_JEQ_K, jump(5 + w + i, notify), 0, *r));
    }
    p.push(insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_ALLOW));
    p.push(insn(BPF_RET_K, 0, 0, libc::SECCOMP_RET_USER_NOTIF));
    Ok(p)
}

/// The most requests plus whole syscalls one filter traps (every jump stays within 255).
pub(crate) const MAX_TRAPPED: usize = 248;

/// Bind mounts for a private mount namespace: (source, target) as C strings, made before fork.
pub(crate) type Binds = Vec<(std::ffi::CString, std::ffi::CString)>;

/// In the forked child (between fork and exec): a private mount namespace with `binds` mounted
/// over their targets. Nothing outside the child sees these mounts.
fn private_mounts(binds: &Binds) -> io::Result<()> {
    if binds.is_empty() {
        return Ok(());
    }
    let root = c"/";
    // SAFETY: unshare takes no pointers; every mount argument is either null (allowed for the
    // source/type/data of a propagation change or a bind) or a live NUL-terminated C string
    // from `binds`/`root`, which outlive the calls.
    unsafe {
        if libc::unshare(libc::CLONE_NEWNS) != 0 {
            return Err(io::Error::last_os_error());
        }
        let flags = libc::MS_REC | libc::MS_PRIVATE;
        let null = std::ptr::null();
        if libc::mount(null, root.as_ptr(), null, flags, std::ptr::null()) != 0 {
            return Err(io::Error::last_os_error());
        }
        for (src, dst) in binds {
            let flags = libc::MS_BIND | libc::MS_REC;
            if libc::mount(src.as_ptr(), dst.as_ptr(), null, flags, std::ptr::null()) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Space for one `SCM_RIGHTS` control message carrying one fd, 8-byte aligned.
#[repr(C, align(8))]
struct CmsgBuf([u8; 32]);

fn send_fd_raw(sock: RawFd, fd: RawFd) -> Result<(), io::Error> {
    let mut byte = [0u8; 1];
    let mut cbuf = CmsgBuf([0; 32]);
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: all-zero is a valid `msghdr` (null pointers, zero lengths).
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    // SAFETY: CMSG_SPACE is pure arithmetic on a constant.
    msg.msg_controllen = unsafe { libc::CMSG_SPACE(4) } as _;
    // SAFETY: `msg` points at `cbuf` (32 bytes >= CMSG_SPACE(4) = 24, 8-aligned), so the first
    // header and its 4 data bytes lie inside `cbuf`; `sendmsg` reads only the memory described.
    unsafe {
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        (*c).cmsg_level = libc::SOL_SOCKET;
        (*c).cmsg_type = libc::SCM_RIGHTS;
        (*c).cmsg_len = libc::CMSG_LEN(4) as _;
        std::ptr::write_unaligned(libc::CMSG_DATA(c).cast::<RawFd>(), fd);
        if libc::sendmsg(sock, &msg, 0) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Receives one fd sent with `SCM_RIGHTS` (honours the socket's read timeout).
pub(crate) fn recv_fd(sock: &UnixStream) -> Result<OwnedFd, io::Error> {
    let mut byte = [0u8; 1];
    let mut cbuf = CmsgBuf([0; 32]);
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    // SAFETY: all-zero is a valid `msghdr`.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = cbuf.0.as_mut_ptr().cast();
    msg.msg_controllen = cbuf.0.len() as _;
    // SAFETY: `msg` describes `byte` and `cbuf`, both live and writable for the call; the header
    // pointer from CMSG_FIRSTHDR is checked for null and lies inside `cbuf`; the received fd is
    // new in this process and owned by nobody else, so `OwnedFd` may take it.
    unsafe {
        if libc::recvmsg(sock.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
        let c = libc::CMSG_FIRSTHDR(&msg);
        if c.is_null() || (*c).cmsg_type != libc::SCM_RIGHTS {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "no fd received"));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<RawFd>());
        Ok(OwnedFd::from_raw_fd(fd))
    }
}

/// Makes `cmd`'s child install `filter` with a new listener before `exec` and send the listener
/// fd over `sock` (the child's end of a socket pair).
pub(crate) fn install_listener_before_exec(
    cmd: &mut Command,
    filter: Vec<libc::sock_filter>,
    binds: Binds,
    sock: OwnedFd,
) {
    let sock_raw = sock.as_raw_fd();
    let hook = move || -> io::Result<()> {
        let _keep_open = &sock;
        let prog = libc::sock_fprog {
            // At most MAX_TRAPPED + 7 instructions (`notify_filter`).
            len: filter.len() as u16,
            filter: filter.as_ptr().cast_mut(),
        };
        private_mounts(&binds)?;
        // SAFETY: runs in the forked child before exec, where only async-signal-safe raw syscalls
        // are made (no allocation; `private_mounts` likewise): prctl and seccomp read only
        // `prog`, which points into `filter`, alive for the whole closure; the listener fd is
        // ours to send.
        unsafe {
            if libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
                return Err(io::Error::last_os_error());
            }
            let fd = libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
                &prog as *const libc::sock_fprog,
            );
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // The listener fd is close-on-exec; it is not closed here because `close` itself
            // may be a trapped call, which nobody could answer before `exec`.
            send_fd_raw(sock_raw, fd as RawFd)
        }
    };
    // SAFETY: the hook is async-signal-safe (see above) and touches no lock or allocator, so it
    // is sound in the child of a multi-threaded parent.
    unsafe {
        cmd.pre_exec(hook);
    }
}

/// A seccomp notification: the trapped `ioctl` of one child thread.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Notif {
    pub id: u64,
    pub pid: u32,
    pub nr: i32,
    pub args: [u64; 6],
    /// The trapped thread's instruction pointer.
    pub ip: u64,
}

/// `SECCOMP_IOCTL_NOTIF_RECV`.
pub(crate) fn notif_recv(listener: BorrowedFd<'_>) -> Result<Notif, Errno> {
    // SAFETY: all-zero is a valid `seccomp_notif` and the kernel requires it zeroed.
    let mut n: libc::seccomp_notif = unsafe { std::mem::zeroed() };
    // SAFETY: `n` is a live, writable `seccomp_notif`, the exact type this request fills.
    Errno::result(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_RECV as _,
            &mut n as *mut libc::seccomp_notif,
        )
    })?;
    Ok(Notif {
        id: n.id,
        pid: n.pid,
        nr: n.data.nr,
        args: n.data.args,
        ip: n.data.instruction_pointer,
    })
}

/// `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP` (include/uapi/linux/seccomp.h).
const NOTIF_FD_SYNC_WAKE_UP: libc::c_ulong = 1;

/// `SECCOMP_IOCTL_NOTIF_SET_FLAGS` with `SECCOMP_USER_NOTIF_FD_SYNC_WAKE_UP`: the kernel wakes
/// the supervisor and the trapped thread synchronously (Linux 6.6+; EINVAL before).
pub(crate) fn notif_sync_wake_up(listener: BorrowedFd<'_>) -> Result<(), Errno> {
    // SAFETY: this request takes its flags by value; no memory is passed.
    Errno::result(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SET_FLAGS as _,
            NOTIF_FD_SYNC_WAKE_UP,
        )
    })
    .map(|_| ())
}

/// `SECCOMP_IOCTL_NOTIF_ID_VALID`: the trapped thread is still waiting for this answer.
pub(crate) fn notif_id_valid(listener: BorrowedFd<'_>, id: u64) -> bool {
    let mut id = id;
    // SAFETY: `id` is a live u64, the type this request reads.
    let rc = unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ID_VALID as _,
            &mut id as *mut u64,
        )
    };
    rc == 0
}

/// `SECCOMP_IOCTL_NOTIF_SEND`: the trapped syscall returns `Ok(val)` or fails with the errno.
pub(crate) fn notif_send(
    listener: BorrowedFd<'_>,
    id: u64,
    result: Result<i32, Errno>,
) -> Result<(), Errno> {
    let (val, error) = match result {
        Ok(v) => (i64::from(v), 0),
        Err(e) => (0, -e.0),
    };
    send_resp(listener, id, val, error, 0)
}

/// `SECCOMP_IOCTL_NOTIF_SEND` with `SECCOMP_USER_NOTIF_FLAG_CONTINUE`: the kernel runs the
/// trapped syscall itself, as if it had not been trapped.
pub(crate) fn notif_continue(listener: BorrowedFd<'_>, id: u64) -> Result<(), Errno> {
    let flags = libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32;
    send_resp(listener, id, 0, 0, flags)
}

fn send_resp(
    listener: BorrowedFd<'_>,
    id: u64,
    val: i64,
    error: i32,
    flags: u32,
) -> Result<(), Errno> {
    let mut resp = libc::seccomp_notif_resp {
        id,
        val,
        error,
        flags,
    };
    // SAFETY: `resp` is a live `seccomp_notif_resp`, the type this request reads.
    Errno::result(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_SEND as _,
            &mut resp as *mut libc::seccomp_notif_resp,
        )
    })
    .map(|_| ())
}

/// `SECCOMP_IOCTL_NOTIF_ADDFD` with `SECCOMP_ADDFD_FLAG_SEND`: installs a copy of `fd` in the
/// trapped process and makes the trapped syscall return its number, which is returned here too.
pub(crate) fn notif_addfd_send(
    listener: BorrowedFd<'_>,
    id: u64,
    fd: BorrowedFd<'_>,
) -> Result<i32, Errno> {
    let mut add = libc::seccomp_notif_addfd {
        id,
        flags: libc::SECCOMP_ADDFD_FLAG_SEND as u32,
        srcfd: fd.as_raw_fd() as u32,
        newfd: 0,
        newfd_flags: libc::O_CLOEXEC as u32,
    };
    // SAFETY: `add` is a live `seccomp_notif_addfd`, the type this request reads; `fd` is live
    // for the call (the kernel duplicates it into the target).
    Errno::result(unsafe {
        libc::ioctl(
            listener.as_raw_fd(),
            libc::SECCOMP_IOCTL_NOTIF_ADDFD as _,
            &mut add as *mut libc::seccomp_notif_addfd,
        )
    })
}

/// What `poll` saw on one fd.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Ready {
    /// Data to read.
    In,
    /// The other side is gone (no filter users left).
    Hangup,
    /// Nothing within the timeout.
    Timeout,
}

/// Waits up to `timeout_ms` for `fd` to be readable.
pub(crate) fn poll_in(fd: BorrowedFd<'_>, timeout_ms: i32) -> Result<Ready, Errno> {
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: `p` is one live `pollfd` and the count passed is 1.
    let rc = unsafe { libc::poll(&mut p, 1, timeout_ms) };
    if rc < 0 {
        let e = Errno::last();
        return if e.0 == libc::EINTR {
            Ok(Ready::Timeout)
        } else {
            Err(e)
        };
    }
    Ok(match rc {
        0 => Ready::Timeout,
        _ if p.revents & libc::POLLIN != 0 => Ready::In,
        _ => Ready::Hangup,
    })
}

// ---- signals forwarded to the supervised program ----

/// The signals a supervisor forwards: the ones that end a program by default and that a user
/// sends to stop it (Ctrl-C, Ctrl-\\, a closed terminal, `kill`).
pub(crate) const FORWARDED: [i32; 4] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGQUIT];

/// `si_code` of a signal the kernel generated itself (a terminal's Ctrl-C or hang-up goes to
/// its whole foreground process group, the supervised program included).
const SI_KERNEL: i32 = 0x80;

/// [`FORWARDED`] blocked in the calling thread (and the threads it starts) and readable from a
/// signalfd instead; dropping it drains what is pending and restores the previous mask.
pub(crate) struct HeldSignals {
    fd: OwnedFd,
    old: libc::sigset_t,
}

fn forwarded_set() -> libc::sigset_t {
    // SAFETY: `sigemptyset` initialises the zeroed set; `sigaddset` adds valid signal numbers.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for s in FORWARDED {
            libc::sigaddset(&mut set, s);
        }
        set
    }
}

impl HeldSignals {
    /// Blocks [`FORWARDED`] in this thread and opens a non-blocking signalfd for them.
    pub(crate) fn hold() -> Result<Self, Errno> {
        let set = forwarded_set();
        // SAFETY: a zeroed `sigset_t` is a valid value for the kernel to fill in.
        let mut old: libc::sigset_t = unsafe { std::mem::zeroed() };
        // SAFETY: `set` and `old` are live, initialised sets.
        let rc = unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, &mut old) };
        if rc != 0 {
            return Err(Errno(rc));
        }
        // SAFETY: -1 asks for a new fd; `set` is initialised; the flags are valid.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            let e = Errno::last();
            // SAFETY: `old` is the mask read above.
            unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut()) };
            return Err(e);
        }
        // SAFETY: `fd` was just returned by signalfd and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Self { fd, old })
    }

    /// The signalfd, to poll.
    pub(crate) fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// The next pending signal and whether a process (not the kernel for a terminal) sent it.
    pub(crate) fn next(&self) -> Option<(i32, bool)> {
        // SAFETY: a zeroed `signalfd_siginfo` is plain data.
        let mut info: libc::signalfd_siginfo = unsafe { std::mem::zeroed() };
        let size = std::mem::size_of::<libc::signalfd_siginfo>();
        // SAFETY: `info` is a live buffer of `size` bytes.
        let n = unsafe {
            libc::read(
                self.fd.as_raw_fd(),
                std::ptr::addr_of_mut!(info).cast(),
                size,
            )
        };
        (usize::try_from(n).ok() == Some(size))
            .then_some((info.ssi_signo as i32, info.ssi_code != SI_KERNEL))
    }
}

impl Drop for HeldSignals {
    fn drop(&mut self) {
        while self.next().is_some() {}
        // SAFETY: `self.old` is the mask `pthread_sigmask` gave back in `hold`.
        unsafe { libc::pthread_sigmask(libc::SIG_SETMASK, &self.old, std::ptr::null_mut()) };
    }
}

/// The child starts with [`FORWARDED`] unblocked again: a blocked mask survives `fork` and
/// `exec`, and the supervisor holds those signals while the child runs.
pub(crate) fn unblock_forwarded_before_exec(cmd: &mut Command) {
    let set = forwarded_set();
    // SAFETY: the closure runs in the forked child before exec and calls only
    // `pthread_sigmask`, which is async-signal-safe, on a set built before the fork.
    unsafe {
        cmd.pre_exec(move || {
            let rc = libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            if rc != 0 {
                return Err(io::Error::from_raw_os_error(rc));
            }
            Ok(())
        });
    }
}

/// Sends `signal` to process `pid`.
pub(crate) fn send_signal(pid: u32, signal: i32) -> Result<(), Errno> {
    let pid = libc::pid_t::try_from(pid).map_err(|_| Errno::EINVAL)?;
    // SAFETY: kill has no memory arguments.
    let rc = unsafe { libc::kill(pid, signal) };
    if rc < 0 {
        return Err(Errno::last());
    }
    Ok(())
}

/// Waits up to `timeout_ms` for `fd` to be readable, or for `also` (when given) to be: whether
/// `also` is readable besides what `fd` shows.
pub(crate) fn poll_in_or(
    fd: BorrowedFd<'_>,
    also: Option<BorrowedFd<'_>>,
    timeout_ms: i32,
) -> Result<(Ready, bool), Errno> {
    let Some(also) = also else {
        return poll_in(fd, timeout_ms).map(|r| (r, false));
    };
    let mut p = [
        libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: also.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: `p` is an array of two live `pollfd`s and the count passed is 2.
    let rc = unsafe { libc::poll(p.as_mut_ptr(), 2, timeout_ms) };
    if rc < 0 {
        let e = Errno::last();
        return if e.0 == libc::EINTR {
            Ok((Ready::Timeout, false))
        } else {
            Err(e)
        };
    }
    let [main, other] = p;
    let ready = match main.revents {
        0 => Ready::Timeout,
        r if r & libc::POLLIN != 0 => Ready::In,
        _ => Ready::Hangup,
    };
    Ok((ready, other.revents & libc::POLLIN != 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_filter_jumps_land_on_returns() {
        let p = notify_filter(&[0x3B7A, 0x3B6E], &[]).unwrap();
        assert_eq!(p.len(), 9);
        // arch mismatch and nr mismatch jump to ALLOW (index 7).
        assert_eq!(1 + 1 + p[1].jf as usize, 7);
        assert_eq!(3 + 1 + p[3].jf as usize, 7);
        // each request match jumps to NOTIFY (index 8).
        assert_eq!(5 + 1 + p[5].jt as usize, 8);
        assert_eq!(6 + 1 + p[6].jt as usize, 8);
        assert_eq!(p[7].k, libc::SECCOMP_RET_ALLOW);
        assert_eq!(p[8].k, libc::SECCOMP_RET_USER_NOTIF);
    }

    #[test]
    fn notify_filter_whole_syscalls_jump_to_notify() {
        let p = notify_filter(&[0x3B7A], &[libc::SYS_pread64]).unwrap();
        assert_eq!(p.len(), 9);
        assert_eq!(p[3].k, libc::SYS_pread64 as u32);
        assert_eq!(3 + 1 + p[3].jt as usize, 8); // NOTIFY
        assert_eq!(4 + 1 + p[4].jf as usize, 7); // not ioctl: ALLOW
        assert_eq!(6 + 1 + p[6].jt as usize, 8);
    }

    #[test]
    fn seccomp_ioctl_numbers_match_uapi() {
        assert_eq!(libc::SECCOMP_IOCTL_NOTIF_RECV, 0xC050_2100);
        assert_eq!(libc::SECCOMP_IOCTL_NOTIF_SEND, 0xC018_2101);
        assert_eq!(libc::SECCOMP_IOCTL_NOTIF_ID_VALID, 0x4008_2102);
    }

    #[test]
    fn notify_filter_too_many_requests_is_refused_not_clamped() {
        let many: Vec<u32> = (0..=MAX_TRAPPED as u32).collect();
        assert_eq!(notify_filter(&many, &[]).unwrap_err(), Errno::EINVAL);
        let p = notify_filter(&many[..MAX_TRAPPED], &[]).unwrap();
        let last = p.len() - 3; // the last request comparison
        assert_eq!(1 + 1 + p[1].jf as usize, p.len() - 2); // arch mismatch: ALLOW, the farthest jump
        assert_eq!(last + 1 + p[last].jt as usize, p.len() - 1); // match: NOTIFY
    }
}
