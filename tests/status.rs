//! `junction status --config FILE` against running nodes: a single router
//! (in the node process: sessions per realm from hand-written RawSocket
//! sessions) and a supervised node with two workers (pids as the
//! supervisor printed them; a worker killed with SIGKILL shows its new pid
//! and a restart); a stopped node is reported as not running.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use common::{allow_all_role, free_port, kill, realm, run_junction, temp_dir, wait_worker_restarted};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(20);

fn status(config: &Path) -> (bool, String) {
    let (st, out, err) =
        run_junction(&["status".as_ref(), "--config".as_ref(), config.as_os_str()], Duration::from_secs(10));
    (st.is_some_and(|s| s.success()), format!("{out}{err}"))
}

/// Runs `junction status` until its output satisfies `pred`.
fn status_until(config: &Path, what: &str, pred: impl Fn(bool, &str) -> bool) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (ok, out) = status(config);
        if pred(ok, &out) {
            return out;
        }
        assert!(Instant::now() < deadline, "status never showed {what}; last output:\n{out}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn raw_join(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(&[0x7F, 0xF1, 0, 0]).expect("handshake");
    let mut reply = [0u8; 4];
    s.read_exact(&mut reply).expect("handshake reply");
    let hello = json!([1, "realm1", {"roles": {"caller": {}}}]).to_string();
    let n = hello.len();
    let mut frame = vec![0, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    frame.extend_from_slice(hello.as_bytes());
    s.write_all(&frame).expect("HELLO");
    let mut h = [0u8; 4];
    s.read_exact(&mut h).expect("WELCOME header");
    let mut p = vec![0u8; ((h[1] as usize) << 16) | ((h[2] as usize) << 8) | h[3] as usize];
    s.read_exact(&mut p).expect("WELCOME");
    assert!(p.starts_with(b"[2,"), "expected WELCOME: {}", String::from_utf8_lossy(&p));
    s
}

fn router(id: &str, port: u16) -> serde_json::Value {
    json!({
        "type": "router", "id": id,
        "options": {"shards": 1, "pin_cores": false},
        "realms": [realm("realm1", vec![allow_all_role("anonymous")]), realm("realm2", vec![allow_all_role("anonymous")])],
        "transports": [{"type": "rawsocket", "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"}, "serializers": ["json"]}]
    })
}

#[test]
fn status_of_a_single_router_node_shows_sessions_per_realm() {
    let dir = temp_dir("status-single");
    let port = free_port();
    let (mut node, _) = common::try_start_in_dir(&dir, &json!({"version": 2, "workers": [router("r0", port)]}))
        .unwrap_or_else(|e| panic!("{e}"));
    let config = dir.join("config.json");
    let pid = node.pid();
    let _a = raw_join(port);
    let _b = raw_join(port);
    let out = status_until(&config, "two realm1 sessions", |ok, o| ok && o.contains("realm realm1: 2 sessions"));
    assert!(out.contains(&format!("node pid {pid}: running, up ")), "{out}");
    assert!(out.contains(&format!("worker 0 r0 (router): pid {pid}, started")), "{out}");
    assert!(out.contains("realm realm2: 0 sessions"), "{out}");
    assert!(dir.join(".junction").join("status.json").is_file());

    // Sessions leave: the count follows.
    drop(_a);
    status_until(&config, "one realm1 session", |ok, o| ok && o.contains("realm realm1: 1 sessions"));

    node.terminate(Duration::from_secs(10)).expect("node stopped");
    let (ok, out) = status(&config);
    assert!(!ok, "a stopped node must fail status:\n{out}");
    assert!(out.contains(&format!("node pid {pid}: not running")), "{out}");
}

#[test]
fn status_of_a_supervised_node_follows_worker_restarts() {
    let dir = temp_dir("status-supervised");
    let (p0, p1) = (free_port(), free_port());
    let (mut node, lines) =
        common::try_start_in_dir(&dir, &json!({"version": 2, "workers": [router("r0", p0), router("r1", p1)]}))
            .unwrap_or_else(|e| panic!("{e}"));
    let config = dir.join("config.json");
    let pids: Vec<u32> = lines.iter().filter_map(|l| common::worker_pid_line(l)).map(|(_, _, pid)| pid).collect();
    assert_eq!(pids.len(), 2, "{lines:?}");
    let out = status_until(&config, "both workers started", |ok, o| {
        ok && o.contains(&format!("worker 0 r0 (router): pid {}, started", pids[0]))
            && o.contains(&format!("worker 1 r1 (router): pid {}, started", pids[1]))
    });
    assert!(out.contains(&format!("node pid {}: running", node.pid())), "{out}");
    assert!(out.contains("restarts 0"), "{out}");
    assert!(out.contains("sessions per realm: not known to the supervisor"), "{out}");

    kill(pids[1], libc::SIGKILL);
    let new_pid = wait_worker_restarted(&node, 1, Duration::from_secs(30));
    assert_ne!(new_pid, pids[1]);
    let out = status_until(&config, "the restarted worker", |ok, o| {
        ok && o.contains(&format!("worker 1 r1 (router): pid {new_pid}, started"))
    });
    assert!(out.contains("restarts 1"), "{out}");

    node.terminate(Duration::from_secs(15)).expect("node stopped");
    let (ok, out) = status(&config);
    assert!(!ok, "a stopped node must fail status:\n{out}");
}
