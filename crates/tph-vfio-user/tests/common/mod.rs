//! Shared by the scenario tests: a served function on a temporary socket, in a thread, with
//! its trace captured.

#![allow(dead_code)]

use std::io::{self, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use tph_vfio_user::{Device, EmulatedFunction, Error, Handle, Server, Session};

/// A trace sink the test can read back.
#[derive(Clone, Default)]
pub struct SharedBuf(pub Arc<Mutex<Vec<u8>>>);

impl Write for SharedBuf {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl SharedBuf {
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }
}

/// One function of the default machine served on a socket in a temporary directory.
pub struct Served {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub trace: SharedBuf,
    pub handle: Handle<EmulatedFunction>,
    pub thread: JoinHandle<Result<Session, Error>>,
}

pub fn serve(bdf: &str) -> Served {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tph.sock");
    let machine = tph_kernel::machines::default_machine();
    let function = EmulatedFunction::from_machine(&machine, bdf.parse().unwrap()).unwrap();
    let trace = SharedBuf::default();
    let mut device = Device::new(function, Some(Box::new(trace.clone())));
    let handle = device.handle();
    let server = Server::bind(&socket).unwrap();
    let thread = std::thread::spawn(move || server.serve(&mut device));
    Served {
        dir,
        socket,
        trace,
        handle,
        thread,
    }
}

pub fn read32(c: &mut vfio_user::Client, region: u32, off: u64) -> u32 {
    let mut b = [0u8; 4];
    c.region_read(region, off, &mut b).unwrap();
    u32::from_le_bytes(b)
}

pub fn write32(c: &mut vfio_user::Client, region: u32, off: u64, v: u32) {
    c.region_write(region, off, &v.to_le_bytes()).unwrap();
}

pub fn write16(c: &mut vfio_user::Client, region: u32, off: u64, v: u16) {
    c.region_write(region, off, &v.to_le_bytes()).unwrap();
}
