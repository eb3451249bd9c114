//! The clear errors: a socket in use, a file that is not a socket, a stale socket (replaced),
//! a client that does not speak vfio-user 0.x, a function that does not exist.
#![allow(clippy::unwrap_used)] // tests: a failed unwrap is a failed test

mod common;

use std::io::{Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};

use common::*;
use tph_vfio_user::{EmulatedFunction, Error, Server};

#[test]
fn a_socket_in_use_is_refused_and_left_in_place() {
    let s = serve("02:00.0");
    let err = Server::bind(&s.socket).unwrap_err();
    assert!(matches!(err, Error::SocketInUse(_)), "{err}");
    assert!(err.to_string().contains("in use"), "{err}");
    // The first server still works.
    let c = vfio_user::Client::new(&s.socket).unwrap();
    c.shutdown().unwrap();
    s.thread.join().unwrap().unwrap();
}

#[test]
fn a_file_that_is_not_a_socket_is_never_removed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.txt");
    std::fs::write(&path, "keep me").unwrap();
    let err = Server::bind(&path).unwrap_err();
    assert!(matches!(err, Error::NotASocket(_)), "{err}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), "keep me");
}

#[test]
fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stale.sock");
    drop(UnixListener::bind(&path).unwrap()); // the file stays, nobody listens
    assert!(path.exists());
    let server = Server::bind(&path).unwrap();
    assert!(UnixStream::connect(server.path()).is_ok());
    drop(server);
    assert!(!path.exists(), "the socket is removed with the server");
}

/// Sends `message` as the first message and returns the server's outcome and the reply.
fn first_message(message: &[u8]) -> (Error, Vec<u8>) {
    let s = serve("02:00.0");
    let mut raw = UnixStream::connect(&s.socket).unwrap();
    raw.write_all(message).unwrap();
    raw.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    raw.read_to_end(&mut reply).unwrap();
    (s.thread.join().unwrap().unwrap_err(), reply)
}

fn version_message(major: u16, minor: u16, caps: &str) -> Vec<u8> {
    let size = 16 + 4 + caps.len() + 1;
    let mut m = Vec::new();
    m.extend_from_slice(&7u16.to_le_bytes()); // message id
    m.extend_from_slice(&1u16.to_le_bytes()); // VFIO_USER_VERSION
    m.extend_from_slice(&(size as u32).to_le_bytes());
    m.extend_from_slice(&0u32.to_le_bytes()); // command
    m.extend_from_slice(&0u32.to_le_bytes());
    m.extend_from_slice(&major.to_le_bytes());
    m.extend_from_slice(&minor.to_le_bytes());
    m.extend_from_slice(caps.as_bytes());
    m.push(0);
    m
}

/// The error reply: message id 7 echoed, flags Reply|Error, errno ENOTSUP.
fn assert_error_reply(reply: &[u8], command: u16) {
    assert_eq!(reply.len(), 16, "{reply:?}");
    assert_eq!(u16::from_le_bytes([reply[0], reply[1]]), 7);
    assert_eq!(u16::from_le_bytes([reply[2], reply[3]]), command);
    assert_eq!(u32::from_le_bytes(reply[8..12].try_into().unwrap()), 0x21);
    assert_eq!(
        u32::from_le_bytes(reply[12..16].try_into().unwrap()),
        libc::ENOTSUP as u32
    );
}

#[test]
fn another_major_version_is_a_protocol_mismatch() {
    let (err, reply) = first_message(&version_message(1, 0, "{}"));
    assert!(matches!(err, Error::Protocol(_)), "{err}");
    assert_eq!(
        err.to_string(),
        "protocol mismatch: the client speaks vfio-user 1.0; this server speaks 0.x"
    );
    assert_error_reply(&reply, 1);
}

#[test]
fn a_first_message_that_is_not_version_is_a_protocol_mismatch() {
    // A region read (command 9) before any version negotiation.
    let mut m = version_message(0, 1, "{}");
    m[2..4].copy_from_slice(&9u16.to_le_bytes());
    let (err, reply) = first_message(&m[..16]);
    assert!(err.to_string().contains("command 9"), "{err}");
    assert_error_reply(&reply, 1);
}

#[test]
fn capabilities_that_are_not_json_are_a_protocol_mismatch() {
    let (err, _) = first_message(&version_message(0, 1, "max_msg_fds=8"));
    assert!(err.to_string().contains("JSON"), "{err}");
}

#[test]
fn a_client_that_leaves_mid_header_is_a_protocol_mismatch() {
    // A vhost-user style 12-byte header, then the client closes its side.
    let (err, _) = first_message(&[1, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0]);
    assert!(
        err.to_string().contains("before a whole message header"),
        "{err}"
    );
}

#[test]
fn a_function_that_does_not_exist_is_named() {
    let machine = tph_kernel::machines::default_machine();
    let err = EmulatedFunction::from_machine(&machine, "07:00.0".parse().unwrap()).unwrap_err();
    assert_eq!(err.to_string(), "no function 0000:07:00.0 in the machine");
    let err = EmulatedFunction::from_machine(&machine, "00:01.0".parse().unwrap()).unwrap_err();
    assert!(err.to_string().contains("is a bridge"), "{err}");
}
