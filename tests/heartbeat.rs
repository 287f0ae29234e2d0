//! The router's auto-ping (`auto_ping_interval` / `auto_ping_timeout`),
//! driven per thread from one schedule (`router_core::runtime::heartbeat`):
//! raw RawSocket clients on real sockets, some answering the pings and
//! some silent. The silent ones are closed about interval + timeout after
//! they joined; the ones that answer stay and can still call.

mod common;

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use common::rawsocket::{frame, join, read_frame};
use common::{free_port, realm, JunctionProcess};

const INTERVAL_MS: u64 = 300;
const TIMEOUT_MS: u64 = 600;

/// A client that never answers: (pings seen, how long until the router closed it).
fn silent(port: u16) -> (u32, Duration) {
    let mut s = join(port, "realm1");
    let t0 = Instant::now();
    let mut pings = 0;
    while let Some((kind, _)) = read_frame(&mut s) {
        if kind == 1 {
            pings += 1;
        }
        assert!(t0.elapsed() < Duration::from_secs(5), "a silent client is never closed");
    }
    (pings, t0.elapsed())
}

/// A client that answers every ping for `hold`: (pings answered, the
/// result of a call made after it).
fn responsive(port: u16, hold: Duration) -> (u32, String) {
    let mut s = join(port, "realm1");
    s.set_read_timeout(Some(Duration::from_millis(100))).expect("timeout");
    let t0 = Instant::now();
    let mut pings = 0;
    let mut h = [0u8; 4];
    while t0.elapsed() < hold {
        match s.read_exact(&mut h) {
            Ok(()) => {
                let n = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
                let mut p = vec![0u8; n];
                s.read_exact(&mut p).expect("ping payload");
                if h[0] & 0x07 == 1 {
                    pings += 1;
                    s.write_all(&frame(2, &p)).expect("PONG");
                }
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("a client that answers was closed after {:?}: {e}", t0.elapsed()),
        }
    }
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    s.write_all(&frame(0, br#"[48,7,{},"wamp.session.count"]"#)).expect("CALL");
    loop {
        let (kind, p) = read_frame(&mut s).expect("RESULT");
        if kind == 1 {
            s.write_all(&frame(2, &p)).expect("PONG");
        } else {
            return (pings, String::from_utf8_lossy(&p).into_owned());
        }
    }
}

#[test]
fn silent_clients_are_closed_and_answering_ones_stay() {
    let port = free_port();
    let mut transport = common::rawsocket_tcp(port);
    transport["serializers"] = serde_json::json!(["json"]);
    transport["options"] = serde_json::json!({"auto_ping_interval": INTERVAL_MS, "auto_ping_timeout": TIMEOUT_MS});
    let node = JunctionProcess::start(common::node_config(
        vec![realm("realm1", vec![common::allow_all_role("anonymous")])],
        vec![transport],
    ));
    // Twenty of each at once, so the schedule holds many entries.
    let silent_runs: Vec<_> = (0..20).map(|_| std::thread::spawn(move || silent(port))).collect();
    let answering: Vec<_> =
        (0..20).map(|_| std::thread::spawn(move || responsive(port, Duration::from_millis(2_500)))).collect();
    let mut closed_after = Vec::new();
    for h in silent_runs {
        let (pings, after) = h.join().expect("silent client");
        assert!(pings >= 1, "a ping came before the close");
        closed_after.push(after);
    }
    let min = closed_after.iter().min().expect("runs");
    let max = closed_after.iter().max().expect("runs");
    // interval + timeout = 900 ms, within the schedule's 100 ms tick (and scheduling noise).
    assert!(*min >= Duration::from_millis(800), "closed too early: {min:?}\n{}", node.stderr());
    assert!(*max <= Duration::from_millis(2_500), "closed too late: {max:?}");
    for h in answering {
        let (pings, result) = h.join().expect("answering client");
        assert!(pings >= 2, "pinged while held: {pings}");
        assert!(result.starts_with("[50,7,"), "the session still answers: {result}");
    }
    eprintln!("measured: silent clients closed {min:?}-{max:?} after WELCOME (interval {INTERVAL_MS} ms, timeout {TIMEOUT_MS} ms)");
}
