//! The listening socket and one client's session: rust-vmm's `vfio_user::Server` answers the
//! protocol; this module adds the checks around it (a socket in use, a stale socket, a client
//! that does not speak vfio-user).

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use vfio_bindings::bindings::vfio::{
    vfio_region_info, VFIO_IRQ_INFO_EVENTFD, VFIO_IRQ_INFO_NORESIZE, VFIO_REGION_INFO_FLAG_READ,
    VFIO_REGION_INFO_FLAG_WRITE,
};
use vfio_user::{IrqInfo, ServerRegion};
use vmm_sys_util::sock_ctrl_msg::ScmSocket;

use crate::backend::Device;
use crate::function::Function;
use crate::layout::{Layout, NUM_IRQS, NUM_REGIONS};
use crate::Error;

/// `VFIO_USER_VERSION`.
const CMD_VERSION: u16 = 1;
/// The protocol major version this server speaks (the vfio-user specification's 0.1).
const MAJOR: u16 = 0;
/// Size of the message header.
const HEADER: usize = 16;
/// Largest version message taken (header, version, capabilities JSON).
const MAX_VERSION_MESSAGE: u32 = 64 * 1024;
/// How long a new client has to send its version message.
pub const VERSION_TIMEOUT: Duration = Duration::from_secs(10);
/// Most file descriptors one message carries (the protocol's limit).
const MAX_FDS: usize = 16;

/// A bound vfio-user socket, removed again when dropped.
#[derive(Debug)]
pub struct Server {
    listener: UnixListener,
    path: PathBuf,
}

/// How a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// The client's protocol version (major, minor).
    pub client_version: (u16, u16),
}

impl Server {
    /// Listens on `path`. A socket nobody accepts on (left by a server that died) is replaced;
    /// a socket another server listens on is [`Error::SocketInUse`]; any other file there is
    /// [`Error::NotASocket`] and is left alone.
    pub fn bind(path: &Path) -> Result<Self, Error> {
        if let Ok(meta) = std::fs::symlink_metadata(path) {
            if !meta.file_type().is_socket() {
                return Err(Error::NotASocket(path.to_path_buf()));
            }
            if listening(path) {
                return Err(Error::SocketInUse(path.to_path_buf()));
            }
            std::fs::remove_file(path).map_err(|source| Error::Bind {
                path: path.to_path_buf(),
                source,
            })?;
        }
        let listener = UnixListener::bind(path).map_err(|source| Error::Bind {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Self {
            listener,
            path: path.to_path_buf(),
        })
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Accepts one client and serves `device` to it until it leaves. The client's first
    /// message must be a vfio-user version message of major version 0 within
    /// [`VERSION_TIMEOUT`], else [`Error::Protocol`] (the client gets an error reply first);
    /// from then on every message goes to rust-vmm's server, relayed through an in-process
    /// socket pair (so the version could be checked first).
    /// A connection closed before its first byte (a probe) is not a client: the server
    /// accepts the next one. When the session ends, on the client leaving or on an error,
    /// the function's [`Function::client_left`] runs before this returns.
    pub fn serve<F: Function>(&self, device: &mut Device<F>) -> Result<Session, Error> {
        let (client, (message, version)) = loop {
            let (mut client, _) = self.listener.accept().map_err(|source| Error::Io {
                context: "accepting a client",
                source,
            })?;
            if let Some(first) = read_version(&mut client)? {
                break (client, first);
            }
        };
        let inner = InnerServer::new(&device.layout())?;
        let mut to_server = inner.connect()?;
        to_server.write_all(&message).map_err(|source| Error::Io {
            context: "relaying the version message",
            source,
        })?;
        let relay = Relay::start(client, to_server)?;
        let served = inner.server.run(device);
        relay.finish();
        device.client_left();
        served?;
        Ok(Session {
            client_version: version,
        })
    }

    /// Serves `device` with rust-vmm's server accepting on the socket itself, without the
    /// version check (the server takes any version) and without the relay: the lowest
    /// latency, for a VMM that trusts its client. Consumes the socket. As with
    /// [`Server::serve`], the function's [`Function::client_left`] runs when the session
    /// ends.
    pub fn serve_unchecked<F: Function>(self, device: &mut Device<F>) -> Result<(), Error> {
        let layout = device.layout();
        let fd = OwnedFd::from(self.listener.try_clone().map_err(|source| Error::Io {
            context: "duplicating the listening socket",
            source,
        })?);
        let server = vfio_user::Server::from_owned_fd(fd, true, irqs(&layout), regions(&layout));
        let served = server.run(device);
        device.client_left();
        served?;
        Ok(())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether a socket at `path` is listening, from `/proc/net/unix` (connecting to find out
/// would take the other server's next accept). Without `/proc`, a connection decides.
fn listening(path: &Path) -> bool {
    /// `__SO_ACCEPTCON` in the Flags column: a listening socket.
    const ACCEPTCON: u32 = 1 << 16;
    let Ok(table) = std::fs::read_to_string("/proc/net/unix") else {
        return UnixStream::connect(path).is_ok();
    };
    let wanted = path.as_os_str().as_encoded_bytes();
    table.lines().skip(1).any(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let flags = cols.get(3).and_then(|f| u32::from_str_radix(f, 16).ok());
        cols.get(7).is_some_and(|p| p.as_bytes() == wanted)
            && flags.is_some_and(|f| f & ACCEPTCON != 0)
    })
}

/// Reads the client's first message and checks that it is a version message this server can
/// answer; returns the message's bytes and the client's version, or `None` when the client
/// left before sending a byte.
#[allow(clippy::type_complexity)]
fn read_version(client: &mut UnixStream) -> Result<Option<(Vec<u8>, (u16, u16))>, Error> {
    client
        .set_read_timeout(Some(VERSION_TIMEOUT))
        .map_err(|source| Error::Io {
            context: "setting a timeout",
            source,
        })?;
    let mut header = [0u8; HEADER];
    match client.read(&mut header[..1]) {
        Ok(0) => return Ok(None),
        Ok(_) => {}
        Err(e) => return Err(mismatch(client, 0, &no_header(&e))),
    }
    client
        .read_exact(&mut header[1..])
        .map_err(|e| mismatch(client, 0, &no_header(&e)))?;
    let id = u16::from_le_bytes([header[0], header[1]]);
    let command = u16::from_le_bytes([header[2], header[3]]);
    let size = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    let flags = u32::from_le_bytes([header[8], header[9], header[10], header[11]]);
    if command != CMD_VERSION || flags & 0xf != 0 {
        return Err(mismatch(
            client,
            id,
            &format!(
                "the first message is command {command} (flags {flags:#x}), not a vfio-user \
                 version command (1)"
            ),
        ));
    }
    if !(HEADER as u32 + 5..=MAX_VERSION_MESSAGE).contains(&size) {
        return Err(mismatch(
            client,
            id,
            &format!("a version message of {size} bytes"),
        ));
    }
    let mut body = vec![0u8; size as usize - HEADER];
    client.read_exact(&mut body).map_err(|e| {
        mismatch(
            client,
            id,
            &format!("the version message is cut short ({e})"),
        )
    })?;
    let major = u16::from_le_bytes([body[0], body[1]]);
    let minor = u16::from_le_bytes([body[2], body[3]]);
    if major != MAJOR {
        return Err(mismatch(
            client,
            id,
            &format!("the client speaks vfio-user {major}.{minor}; this server speaks {MAJOR}.x"),
        ));
    }
    let caps = &body[4..];
    let json_ok = caps.last() == Some(&0)
        && caps[..caps.len() - 1].iter().all(|b| *b != 0)
        && caps.first() == Some(&b'{');
    if !json_ok {
        return Err(mismatch(
            client,
            id,
            "the version message's capabilities are not a NUL-terminated JSON object",
        ));
    }
    client.set_read_timeout(None).map_err(|source| Error::Io {
        context: "clearing a timeout",
        source,
    })?;
    let mut message = header.to_vec();
    message.extend_from_slice(&body);
    Ok(Some((message, (major, minor))))
}

fn no_header(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
            "the client sent no vfio-user version message within {} s",
            VERSION_TIMEOUT.as_secs()
        ),
        _ => format!("the client left before a whole message header ({e})"),
    }
}

/// Answers message `id` with an error (`ENOTSUP`) and gives the mismatch.
fn mismatch(client: &mut UnixStream, id: u16, why: &str) -> Error {
    let mut reply = [0u8; HEADER];
    reply[0..2].copy_from_slice(&id.to_le_bytes());
    reply[2..4].copy_from_slice(&CMD_VERSION.to_le_bytes());
    reply[4..8].copy_from_slice(&(HEADER as u32).to_le_bytes());
    // Reply (1) with the error bit (1 << 5).
    reply[8..12].copy_from_slice(&(1u32 | 1 << 5).to_le_bytes());
    reply[12..16].copy_from_slice(&(libc::ENOTSUP as u32).to_le_bytes());
    let _ = client.write_all(&reply);
    Error::Protocol(why.to_string())
}

/// rust-vmm's server on a private abstract-namespace socket.
struct InnerServer {
    server: vfio_user::Server,
    address: SocketAddr,
}

impl InnerServer {
    fn new(layout: &Layout) -> Result<Self, Error> {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "tph-vfio-user-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let io = |context| move |source| Error::Io { context, source };
        let address =
            SocketAddr::from_abstract_name(name.as_bytes()).map_err(io("naming a socket"))?;
        let listener = UnixListener::bind_addr(&address).map_err(io("binding a socket"))?;
        let server = vfio_user::Server::from_owned_fd(
            OwnedFd::from(listener),
            true,
            irqs(layout),
            regions(layout),
        );
        Ok(Self { server, address })
    }

    fn connect(&self) -> Result<UnixStream, Error> {
        UnixStream::connect_addr(&self.address).map_err(|source| Error::Io {
            context: "connecting to the server",
            source,
        })
    }
}

/// Copies the client's messages (with their file descriptors) to the server and the
/// server's replies back.
struct Relay {
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Relay {
    fn start(client: UnixStream, server: UnixStream) -> Result<Self, Error> {
        let io = |source| Error::Io {
            context: "duplicating a socket",
            source,
        };
        let (client2, server2) = (
            client.try_clone().map_err(io)?,
            server.try_clone().map_err(io)?,
        );
        let up = std::thread::spawn(move || forward_with_fds(&client, &server));
        let down = std::thread::spawn(move || {
            let (mut from, mut to) = (server2, client2);
            let mut buf = vec![0u8; 64 * 1024];
            while let Ok(n) = from.read(&mut buf) {
                let Some(data) = buf.get(..n).filter(|d| !d.is_empty()) else {
                    break;
                };
                if to.write_all(data).is_err() {
                    break;
                }
            }
            let _ = to.shutdown(std::net::Shutdown::Both);
        });
        Ok(Self {
            threads: vec![up, down],
        })
    }

    fn finish(self) {
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Client to server: bytes and the descriptors that came with them, until the client leaves.
fn forward_with_fds(from: &UnixStream, to: &UnixStream) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let mut fds = [0 as RawFd; MAX_FDS];
        let mut iov = [libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        }];
        // SAFETY: `iov` points into `buf`, which outlives the call and is not otherwise
        // borrowed; `fds` has room for MAX_FDS descriptors.
        let received = unsafe { from.recv_with_fds(&mut iov, &mut fds) };
        let Ok((n, nfds)) = received else { break };
        // SAFETY: the kernel just installed these `nfds` descriptors for this process; each is
        // owned here once and closed after forwarding.
        let owned: Vec<File> = fds[..nfds]
            .iter()
            .map(|fd| unsafe { File::from_raw_fd(*fd) })
            .collect();
        if n == 0 {
            break;
        }
        let raw: Vec<RawFd> = owned.iter().map(AsRawFd::as_raw_fd).collect();
        let Some(data) = buf.get(..n) else { break };
        if send_all(to, data, &raw).is_err() {
            break;
        }
    }
    let _ = to.shutdown(std::net::Shutdown::Write);
}

fn send_all(to: &UnixStream, data: &[u8], fds: &[RawFd]) -> io::Result<()> {
    let mut sent = to.send_with_fds(&[data], fds).map_err(io::Error::from)?;
    while let Some(rest) = data.get(sent..).filter(|r| !r.is_empty()) {
        sent += to.send_with_fds(&[rest], &[]).map_err(io::Error::from)?;
    }
    Ok(())
}

/// The regions as `VFIO_USER_DEVICE_GET_REGION_INFO` reports them: read/write, never mmap
/// (every access comes as a message, so every access is traced).
fn regions(layout: &Layout) -> Vec<ServerRegion> {
    (0..NUM_REGIONS)
        .map(|index| {
            let size = layout.region_size(index);
            ServerRegion {
                region_info: vfio_region_info {
                    argsz: std::mem::size_of::<vfio_region_info>() as u32,
                    flags: if size > 0 {
                        VFIO_REGION_INFO_FLAG_READ | VFIO_REGION_INFO_FLAG_WRITE
                    } else {
                        0
                    },
                    index,
                    cap_offset: 0,
                    size,
                    offset: 0,
                },
                sparse_areas: Vec::new(),
                mmap_fd: None,
            }
        })
        .collect()
}

/// The interrupts as `VFIO_USER_DEVICE_GET_IRQ_INFO` reports them (eventfd triggered; MSI
/// and MSI-X without resizing while enabled, as vfio-pci without dynamic allocation).
fn irqs(layout: &Layout) -> Vec<IrqInfo> {
    (0..NUM_IRQS)
        .map(|index| {
            let count = layout.irq_count(index);
            IrqInfo {
                index,
                flags: match (count, index) {
                    (0, _) => 0,
                    (_, 0) => VFIO_IRQ_INFO_EVENTFD,
                    _ => VFIO_IRQ_INFO_EVENTFD | VFIO_IRQ_INFO_NORESIZE,
                },
                count,
            }
        })
        .collect()
}
