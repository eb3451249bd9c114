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

/// Starts `tphctl serve` and waits for its `listening on` line. Its stdin is a pipe the test
/// holds (`serve --vm` reads `pin` lines from it).
fn start(socket: &Path, extra: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let mut child = tphctl()
        .arg("serve")
        .arg("--vfio-user")
        .arg(socket)
        .args(extra)
        .stdin(Stdio::piped())
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
         reset (DEVICE_RESET): function level reset\n\
         client left\n"
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

/// `serve --vm` on 02:00.0 (table in the capability, 16 entries, host root port completes TPH
/// only): vCPU 0 on host CPU 5, vCPU 1 on 6; the built-in host firmware gives CPU n tag n.
fn start_vm(dir: &Path, extra: &[&str]) -> (Child, BufReader<std::process::ChildStdout>) {
    let socket = dir.join("tph.sock");
    let ssdt = dir.join("guest.aml");
    let state = dir.join("host.json");
    let mut args = vec![
        "--emulated",
        "02:00.0",
        "--vm",
        "--pin",
        "0:5,1:6",
        "--ssdt",
        ssdt.to_str().unwrap(),
        "--host-state",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    start(&socket, &args)
}

fn host_state(dir: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(dir.join("host.json")).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v[0]["tph"].clone()
}

#[test]
fn vm_guest_tags_reach_the_host_as_the_pinned_cpus_and_follow_a_repin() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let (mut child, mut out) = start_vm(dir.path(), &["--trace", trace.to_str().unwrap()]);
    // The SSDT is an ACPI table for -acpitable.
    let ssdt = std::fs::read(dir.path().join("guest.aml")).unwrap();
    assert_eq!(&ssdt[..4], b"SSDT");
    let mut c = vfio_user::Client::new(&dir.path().join("tph.sock")).unwrap();
    // The guest sees the virtual capability: IV offered, 16 entries in the capability, no
    // extended TPH (the host's root port completes TPH only).
    assert_eq!(read32(&mut c, 7, 0x104) & 0x07ff_0707, 0x000f_0203);
    // Its core enables IV with TPH requests and writes entry 0 = the virtual tag of vCPU 1 (2).
    c.region_write(7, 0x108, &0x101u32.to_le_bytes()).unwrap();
    c.region_write(7, 0x108, &0x001u32.to_le_bytes()).unwrap();
    c.region_write(7, 0x10c, &2u16.to_le_bytes()).unwrap();
    c.region_write(7, 0x108, &0x101u32.to_le_bytes()).unwrap();
    assert_eq!(
        read32(&mut c, 7, 0x10c) & 0xffff,
        2,
        "the guest reads its own tag"
    );
    // The VMM re-pins vCPU 1 while the guest runs.
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(b"pin 1:7\n").unwrap();
    let mut answer = String::new();
    out.read_line(&mut answer).unwrap();
    out.read_line(&mut answer).unwrap();
    assert_eq!(answer, "> pin 1:7\nok; host calls 1\n");
    c.shutdown().unwrap();
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(child.wait().unwrap().success(), "{rest}");
    // The host's entry 0 got host CPU 6's tag, then CPU 7's with the re-pin; when the client
    // left, the layer's reset cleared it.
    let t = std::fs::read_to_string(&trace).unwrap();
    let host_entry0: Vec<&str> = t
        .lines()
        .filter(|l| l.starts_with("host ") && l.contains("ST[0]: "))
        .filter_map(|l| l.split("ST[0]: ").nth(1))
        .collect();
    assert_eq!(
        host_entry0,
        [
            "0x0000 -> 0x0000",
            "0x0000 -> 0x0006",
            "0x0006 -> 0x0007",
            "0x0007 -> 0x0000"
        ],
        "{t}"
    );
    let tph = host_state(dir.path());
    assert_eq!(tph["control"]["raw"], 0);
    assert_eq!(tph["entries"][0]["st"], 0);
}

/// A client that goes away without a reset (QEMU killed, the guest powered off) leaves a host
/// function with TPH on and the guest's tags in it; the layer's reset hook runs when it
/// leaves, so the host ends off and clean, and the trace and stderr say so.
#[test]
fn vm_client_leaving_resets_the_host_tph_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let (mut child, mut out) = start_vm(dir.path(), &["--trace", trace.to_str().unwrap()]);
    let mut c = vfio_user::Client::new(&dir.path().join("tph.sock")).unwrap();
    // IV with TPH requests; entry 0 = vCPU 1's virtual tag (2), entry 1 = vCPU 0's (1).
    c.region_write(7, 0x108, &0x101u32.to_le_bytes()).unwrap();
    c.region_write(7, 0x10c, &2u16.to_le_bytes()).unwrap();
    c.region_write(7, 0x10e, &1u16.to_le_bytes()).unwrap();
    assert_eq!(read32(&mut c, 7, 0x10c), 0x0001_0002);
    // The client goes without a word (its socket closes, as when QEMU is killed).
    drop(c);
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert_eq!(
        err,
        "tphctl: serve: the client left; the VM layer reset the host function's TPH (host \
         calls 2): TPH off, none of the guest's tags left in the table\n"
    );
    // The host: off, every entry 0 (while the guest was there, host CPU 6's and 5's tags).
    let tph = host_state(dir.path());
    assert_eq!(tph["control"]["raw"], 0, "{tph}");
    let entries: Vec<u64> = tph["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["st"].as_u64().unwrap())
        .collect();
    assert_eq!(entries, vec![0; 16], "{tph}");
    let t = std::fs::read_to_string(&trace).unwrap();
    let tail: Vec<&str> = t.lines().skip_while(|l| *l != "client left").collect();
    assert_eq!(
        tail.first().copied(),
        Some("client left"),
        "no `client left` in the trace:\n{t}"
    );
    assert_eq!(
        tail.last().copied(),
        Some("vm client left: reset hook: host calls 2, control Disabled, entries [0, 1]"),
        "{t}"
    );
    let host: Vec<&str> = tail
        .iter()
        .filter(|l| l.starts_with("host "))
        .copied()
        .collect();
    assert!(
        host.iter().any(|l| l.contains("ST[0]: 0x0006 -> 0x0000"))
            && host.iter().any(|l| l.contains("ST[1]: 0x0005 -> 0x0000"))
            && host.last().is_some_and(|l| l.ends_with("-> NS off")),
        "the host's entries cleared, then TPH off:\n{t}"
    );
}

#[test]
fn vm_guest_flr_leaves_the_host_off_and_clean() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let (mut child, _out) = start_vm(dir.path(), &["--trace", trace.to_str().unwrap()]);
    let mut c = vfio_user::Client::new(&dir.path().join("tph.sock")).unwrap();
    c.region_write(7, 0x108, &0x101u32.to_le_bytes()).unwrap();
    c.region_write(7, 0x10c, &1u16.to_le_bytes()).unwrap();
    // Initiate Function Level Reset in Device Control (PCI Express capability at 0x40).
    c.region_write(7, 0x48, &0xa810u16.to_le_bytes()).unwrap();
    assert_eq!(
        read32(&mut c, 7, 0x108),
        0,
        "the guest's Control is back to 0"
    );
    c.shutdown().unwrap();
    assert!(child.wait().unwrap().success());
    let tph = host_state(dir.path());
    assert_eq!(tph["control"]["raw"], 0);
    assert_eq!(tph["entries"][0]["st"], 0);
    let t = std::fs::read_to_string(&trace).unwrap();
    assert!(t.contains("vm guest FLR: reset hook: host calls 2"), "{t}");
}

#[test]
fn vm_guest_that_never_touches_tph_causes_no_host_tph_call() {
    let dir = tempfile::tempdir().unwrap();
    let trace = dir.path().join("trace.txt");
    let (mut child, _out) = start_vm(dir.path(), &["--trace", trace.to_str().unwrap()]);
    let mut c = vfio_user::Client::new(&dir.path().join("tph.sock")).unwrap();
    // Enumeration-like reads, MSI-X set-up with two eventfds, a device reset.
    assert_eq!(read32(&mut c, 7, 0), 0x1001_1ab0);
    let fds: Vec<std::os::fd::OwnedFd> = (0..2)
        .map(|_| tph_client::backend::eventfd().unwrap())
        .collect();
    let raw: Vec<i32> = fds.iter().map(std::os::fd::AsRawFd::as_raw_fd).collect();
    c.set_irqs(2, 4 | 32, 0, 2, &raw).unwrap();
    c.reset().unwrap();
    c.shutdown().unwrap();
    assert!(child.wait().unwrap().success());
    let t = std::fs::read_to_string(&trace).unwrap();
    assert!(t.contains("vm host MSI-X 2 vectors: host calls 0"), "{t}");
    assert!(
        !t.lines().any(|l| l.starts_with("host cfg  wr 0x108")),
        "host TPH Control was written:\n{t}"
    );
    assert!(
        !t.contains("host calls 1") && !t.contains("host calls 2"),
        "{t}"
    );
}

/// Sends `signal` (`TERM`, `INT`) to the server, as a shell or a service manager does.
fn kill(child: &Child, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal}");
}

fn stderr_of(child: &mut Child) -> String {
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

/// SIGTERM while a guest holds tags in the host: the session ends as when the client leaves
/// (the layer's reset hook, `--host-state` and the trace written, the socket removed), and the
/// exit status says the signal (128 + 15).
#[test]
fn vm_sigterm_ends_the_session_with_the_host_reset() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tph.sock");
    let trace = dir.path().join("trace.txt");
    let (mut child, mut out) = start_vm(dir.path(), &["--trace", trace.to_str().unwrap()]);
    let mut c = vfio_user::Client::new(&socket).unwrap();
    c.region_write(7, 0x108, &0x101u32.to_le_bytes()).unwrap();
    c.region_write(7, 0x10c, &2u16.to_le_bytes()).unwrap();
    assert_eq!(read32(&mut c, 7, 0x10c) & 0xffff, 2);
    kill(&child, "TERM");
    let status = child.wait().unwrap();
    let err = stderr_of(&mut child);
    assert_eq!(status.code(), Some(128 + 15), "{err}");
    assert_eq!(
        err,
        "tphctl: serve: SIGTERM: stopping; a session ends as if its client had left\n\
         tphctl: serve: the client left; the VM layer reset the host function's TPH (host \
         calls 2): TPH off, none of the guest's tags left in the table\n"
    );
    let mut rest = String::new();
    out.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("client (vfio-user 0.1) left: "), "{rest}");
    let tph = host_state(dir.path());
    assert_eq!(tph["control"]["raw"], 0, "{tph}");
    assert_eq!(tph["entries"][0]["st"], 0, "{tph}");
    let t = std::fs::read_to_string(&trace).unwrap();
    assert!(
        t.contains("signal SIGTERM: ending the session\nclient left\n"),
        "{t}"
    );
    assert!(
        t.ends_with("vm client left: reset hook: host calls 2, control Disabled, entries [0]\n"),
        "{t}"
    );
    assert!(!socket.exists(), "the socket is removed");
    drop(c);
}

/// SIGINT (Ctrl-C) before any client came: `serve` ends at once, removes its socket, and the
/// exit status says the signal (128 + 2).
#[test]
fn sigint_before_a_client_ends_serve_and_removes_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("tph.sock");
    let (mut child, _out) = start(&socket, &["--emulated", "02:00.0"]);
    kill(&child, "INT");
    let status = child.wait().unwrap();
    let err = stderr_of(&mut child);
    assert_eq!(status.code(), Some(128 + 2), "{err}");
    assert_eq!(
        err,
        "tphctl: serve: SIGINT: stopping; a session ends as if its client had left\n"
    );
    assert!(!socket.exists(), "the socket is removed");
}
