//! `tphctl serve --vfio-user`: the command serves a function to a vfio-user client (rust-vmm's,
//! which speaks QEMU's protocol) until it leaves, writes the trace, and gives clear errors for
//! a function that does not exist, a socket in use and a protocol mismatch.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};

fn tphctl() -> Command {
    Command::new(env!("CARGO_BIN_EXE_tphctl"))
}

/// Starts `tphctl serve` and waits for its `listening on` line.
fn start(socket: &Path, extra: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = tphctl()
        .arg("serve")
        .arg("--vfio-user")
        .arg(socket)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    assert_eq!(line, format!("listening on {}\n", socket.display()));
    (child, out)
}

fn read32(c: &mut vfio_user::Client, region: u32, off: u64) -> u32 {
    let mut b = [0u8; 4];
    c.region_read(region, off, &mut b).unwrap();
    u32::from_le_bytes(b)
}

#[test]
fn serves_until_the_client_leaves_and_writes_the_trace() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tph.sock");
    let trace = dir.path().join("trace.txt");
    let trace_arg = trace.to_str().unwrap();
    let (mut child, mut out) = start(&socket, &["--emulated", "02:00.0", "--trace", trace_arg]);
    let mut c = vfio_user::Client::new(&socket).unwrap();
    assert_eq!(read32(&mut c, 7, 0x104), 0x000f_0307);
    c.region_write(7, 0x108, &0x101u32.to_le_bytes()).unwrap();
    assert_eq!(read32(&mut c, 7, 0x108), 0x101);
    c.reset().unwrap();
    c.shutdown().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(
        rest,
        "client (vfio-user 0.1) left: 2 reads, 1 writes, 1 resets, 0 SET_IRQS, 0 interrupts \
         signalled\n"
    );
    assert_eq!(
        std::fs::read_to_string(&trace).unwrap(),
        "cfg  rd 0x104/4 = 0xf0307\n\
         cfg  wr 0x108/4 <- 0x101: TPH Control: NS off -> IV TPH\n\
         cfg  rd 0x108/4 = 0x101\n\
         reset (DEVICE_RESET): function level reset\n"
    );
    assert!(
        !socket.exists(),
        "the socket is removed when the server ends"
    );
}

#[test]
fn a_function_that_does_not_exist_is_status_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = tphctl()
        .args(["serve", "--emulated", "07:00.0", "--vfio-user"])
        .arg(dir.path().join("s"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "tphctl: serve: no function 0000:07:00.0 in the machine\n"
    );
    assert!(!dir.path().join("s").exists(), "nothing listened");
}

#[test]
fn a_socket_in_use_is_status_2_and_the_first_server_keeps_its_client() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tph.sock");
    let (mut first, _out) = start(&socket, &["--emulated", "02:00.0"]);
    let second = tphctl()
        .args(["serve", "--emulated", "02:00.0", "--vfio-user"])
        .arg(&socket)
        .output()
        .unwrap();
    assert_eq!(second.status.code(), Some(2));
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("the socket is in use (another server accepts connections on it)"),
        "{err}"
    );
    let c = vfio_user::Client::new(&socket).unwrap();
    c.shutdown().unwrap();
    assert!(first.wait().unwrap().success());
}

#[test]
fn a_client_of_another_protocol_is_status_2() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tph.sock");
    let (mut child, _out) = start(&socket, &["--emulated", "02:00.0"]);
    // A vhost-user GET_FEATURES header (request 1, flags 1, size 0): 12 bytes, then the
    // client closes its side.
    let mut raw = UnixStream::connect(&socket).unwrap();
    raw.write_all(&[1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0])
        .unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(
        err.contains("protocol mismatch: the client left before a whole message header"),
        "{err}"
    );
}
