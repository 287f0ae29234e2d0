//! File descriptors: one per connection, a capacity from the open-files
//! limit, and clean refusals beyond it. The router runs as a real process
//! whose `RLIMIT_NOFILE` the test lowers (so the limit is small enough to
//! reach); clients are raw RawSocket/JSON sessions over loopback.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

/// The open-files limit the router gets (soft and hard).
const NOFILE: u64 = 256;
/// `router_core::runtime::fdlimit::FD_RESERVE`.
const RESERVE: usize = 128;

fn start_limited(port: u16) -> JunctionProcess {
    let cfg = node_config(vec![realm("realm1", vec![allow_all_role("anonymous")])], vec![rawsocket_tcp(port)]);
    let path = temp_path("fds", "json");
    std::fs::write(&path, cfg.to_string()).expect("write config");
    let mut cmd = Command::new(junction_bin());
    cmd.arg("start").arg("--config").arg(&path);
    // SAFETY: only setrlimit between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let rl = libc::rlimit { rlim_cur: NOFILE, rlim_max: NOFILE };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    spawn_until_ready(cmd, "junction: ready", path).map(|(p, _)| p).unwrap_or_else(|e| panic!("{e}"))
}

fn fd_count(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).unwrap_or(0)
}

/// The outcome of one RawSocket/JSON session attempt.
// The streams are held open, the strings shown by `{:?}` in failed assertions.
#[allow(dead_code)]
#[derive(Debug)]
enum Attempt {
    /// WELCOME received; the connection is kept open.
    Joined(TcpStream),
    /// The router answered the RawSocket handshake with this error code.
    Refused(u8),
    /// Anything else (closed, timed out, garbage).
    Failed(String),
}

fn attempt(port: u16) -> Attempt {
    let mut s = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(s) => s,
        Err(e) => return Attempt::Failed(format!("connect: {e}")),
    };
    let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
    // RawSocket handshake: magic, max length 2^24 (0xF), JSON (1).
    if let Err(e) = s.write_all(&[0x7F, 0xF1, 0, 0]) {
        return Attempt::Failed(format!("write handshake: {e}"));
    }
    let mut reply = [0u8; 4];
    if let Err(e) = s.read_exact(&mut reply) {
        return Attempt::Failed(format!("read handshake reply: {e}"));
    }
    if reply[0] != 0x7F {
        return Attempt::Failed(format!("bad handshake reply {reply:?}"));
    }
    if reply[1] & 0x0F == 0 {
        return Attempt::Refused(reply[1] >> 4);
    }
    let hello = br#"[1,"realm1",{"roles":{"subscriber":{}}}]"#;
    let len = hello.len();
    let mut frame = vec![0u8, (len >> 16) as u8, (len >> 8) as u8, len as u8];
    frame.extend_from_slice(hello);
    if let Err(e) = s.write_all(&frame) {
        return Attempt::Failed(format!("write HELLO: {e}"));
    }
    let mut head = [0u8; 4];
    if let Err(e) = s.read_exact(&mut head) {
        return Attempt::Failed(format!("read WELCOME header: {e}"));
    }
    let n = (usize::from(head[1]) << 16) | (usize::from(head[2]) << 8) | usize::from(head[3]);
    let mut body = vec![0u8; n];
    if let Err(e) = s.read_exact(&mut body) {
        return Attempt::Failed(format!("read WELCOME: {e}"));
    }
    if body.starts_with(b"[2,") {
        Attempt::Joined(s)
    } else {
        Attempt::Failed(format!("not a WELCOME: {}", String::from_utf8_lossy(&body)))
    }
}

#[test]
fn one_descriptor_per_connection_and_clean_refusals_beyond_the_capacity() {
    let port = free_port();
    let node = start_limited(port);
    let pid = node.pid();
    let capacity = NOFILE as usize - RESERVE;
    // The capacity is logged at start-up.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !node.stderr().contains(&format!("connections={capacity}")) {
        assert!(Instant::now() < deadline, "no capacity line in:\n{}", node.stderr());
        std::thread::sleep(Duration::from_millis(20));
    }
    let base = fd_count(pid);

    // Up to the capacity: every session joins, each holding one descriptor.
    let mut held = Vec::new();
    for i in 0..capacity {
        match attempt(port) {
            Attempt::Joined(s) => held.push(s),
            other => panic!("session {i} of {capacity}: {other:?}\n{}", tail(&node.stderr(), 3000)),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(5);
    while fd_count(pid) < base + capacity && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let per = fd_count(pid) - base;
    assert!(per >= capacity && per <= capacity + 2, "{per} descriptors for {capacity} connections (base {base})");

    // Beyond it: refused at once with RawSocket's "maximum connection count
    // reached" (4), never left hanging.
    for i in 0..20 {
        let started = Instant::now();
        match attempt(port) {
            Attempt::Refused(code) => assert_eq!(code, 4, "refusal {i}"),
            other => panic!("connection {i} over the capacity: {other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(5), "refusal {i} took {:?}", started.elapsed());
    }

    // Closing some frees their slots for new sessions.
    held.truncate(capacity - 10);
    std::thread::sleep(Duration::from_millis(300));
    for i in 0..10 {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            match attempt(port) {
                Attempt::Joined(s) => {
                    held.push(s);
                    break;
                }
                Attempt::Refused(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
                other => panic!("session {i} after closing ten: {other:?}"),
            }
        }
    }
    assert_eq!(held.len(), capacity);
    drop(held);
    let mut node = node;
    node.terminate(Duration::from_secs(10));
    let err = node.stderr();
    let counted: u64 = err
        .split("refused_fd_limit=")
        .nth(1)
        .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(counted >= 20, "the refusals are counted ({counted}): {}", tail(&err, 2000));
}
