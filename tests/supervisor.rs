//! The node supervisor: a node with several workers runs each as a child
//! process (`junction: worker <i> <type> pid <pid>` lines), restarts a
//! worker that dies, stops them all on SIGTERM, forwards SIGHUP, dies with
//! its children when killed, and fails the start naming a worker that
//! cannot start. Plus `junction key`.
//!
//! Every test writes its config into a directory of its own, so the node key
//! (`.junction/key.priv` next to the config) lands there.

mod common;

use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use common::{
    allow_all_role, free_port, proc_state, process_alive, python, rawsocket_tcp, realm, run_junction, temp_dir,
    try_start_in_dir, JunctionProcess,
};
use serde_json::{json, Value};

/// How long the supervisor may take to restart a killed worker.
const RESTART_TIMEOUT: Duration = Duration::from_secs(30);
/// Socket read/write deadline.
const IO_DEADLINE: Duration = Duration::from_secs(10);

/// A router worker (one shard) serving realm1 on RawSocket 127.0.0.1:`port`.
fn router_worker(id: &str, port: u16) -> Value {
    json!({
        "type": "router",
        "id": id,
        "options": {"shards": 1, "pin_cores": false},
        "realms": [realm("realm1", vec![allow_all_role("anonymous")])],
        "transports": [rawsocket_tcp(port)]
    })
}

/// A node with two router workers on `ports[0]` and `ports[1]`.
fn two_routers(ports: &[u16]) -> Value {
    json!({"version": 2, "workers": [router_worker("r0", ports[0]), router_worker("r1", ports[1])]})
}

/// A started two-router node: the process, its ports, its config dir and the
/// worker pids by index.
struct Node {
    process: JunctionProcess,
    ports: Vec<u16>,
    dir: std::path::PathBuf,
    pids: BTreeMap<usize, u32>,
}

/// Parses `junction: worker <i> <type> pid <pid>`.
fn pid_line(line: &str) -> Option<(usize, String, u32)> {
    let rest = line.trim().strip_prefix("junction: worker ")?;
    let mut f = rest.split(' ');
    let index = f.next()?.parse().ok()?;
    let kind = f.next()?.to_owned();
    (f.next()? == "pid").then_some(())?;
    let pid = f.next()?.parse().ok()?;
    f.next().is_none().then_some((index, kind, pid))
}

fn start_two_routers() -> Node {
    let mut last = String::new();
    for _ in 0..3 {
        let dir = temp_dir("sup");
        let ports = vec![free_port(), free_port()];
        match try_start_in_dir(&dir, &two_routers(&ports)) {
            Ok((process, lines)) => {
                let mut pids = BTreeMap::new();
                for l in &lines {
                    let (i, kind, pid) = pid_line(l).unwrap_or_else(|| panic!("unexpected stdout line {l:?}"));
                    assert_eq!(kind, "router", "{l}");
                    assert!(pids.insert(i, pid).is_none(), "worker {i} announced twice before ready: {lines:?}");
                }
                assert_eq!(pids.keys().copied().collect::<Vec<_>>(), vec![0, 1], "pid lines: {lines:?}");
                return Node { process, ports, dir, pids };
            }
            Err(e) if e.contains("in use") => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{last}")
}

// ------------------------------------------------------------ RawSocket/JSON

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(IO_DEADLINE)).expect("set read timeout");
    s.set_write_timeout(Some(IO_DEADLINE)).expect("set write timeout");
    s.set_nodelay(true).ok();
    s
}

fn send_msg(s: &mut TcpStream, msg: &Value) {
    let payload = msg.to_string();
    let n = payload.len();
    let mut frame = vec![0u8, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    frame.extend_from_slice(payload.as_bytes());
    s.write_all(&frame).unwrap_or_else(|e| panic!("send {msg}: {e}"));
}

/// Next WAMP message (answers PINGs); panics on EOF or deadline.
fn recv_msg(s: &mut TcpStream) -> Value {
    loop {
        let mut h = [0u8; 4];
        s.read_exact(&mut h).unwrap_or_else(|e| panic!("reading a RawSocket frame header: {e}"));
        let n = ((h[1] as usize) << 16) | ((h[2] as usize) << 8) | h[3] as usize;
        let mut payload = vec![0u8; n];
        s.read_exact(&mut payload).unwrap_or_else(|e| panic!("reading a {n}-byte frame: {e}"));
        match h[0] & 7 {
            0 => {
                return serde_json::from_slice(&payload)
                    .unwrap_or_else(|e| panic!("invalid JSON ({e}): {:?}", String::from_utf8_lossy(&payload)))
            }
            1 => {
                let mut pong = vec![2u8, h[1], h[2], h[3]];
                pong.extend_from_slice(&payload);
                s.write_all(&pong).expect("send PONG");
            }
            _ => {}
        }
    }
}

/// RawSocket handshake + HELLO → WELCOME on realm1; returns the session.
fn rs_session(port: u16) -> TcpStream {
    let mut s = connect(port);
    s.write_all(&[0x7F, 0xF1, 0, 0]).expect("send handshake");
    let mut reply = [0u8; 4];
    s.read_exact(&mut reply).expect("handshake reply");
    assert_eq!(reply, [0x7F, 0xF1, 0, 0], "handshake reply");
    send_msg(&mut s, &json!([1, "realm1", {"roles": {"subscriber": {}, "publisher": {}}}]));
    let welcome = recv_msg(&mut s);
    assert_eq!(welcome[0], 2, "expected WELCOME, got {welcome}");
    assert!(welcome[1].as_u64().is_some_and(|id| (1..=1u64 << 53).contains(&id)), "session id: {welcome}");
    s
}

/// SUBSCRIBE → SUBSCRIBED on an open session (proves the session is alive).
fn subscribe(s: &mut TcpStream, request: u64) {
    send_msg(s, &json!([32, request, {}, "com.example.topic"]));
    let reply = recv_msg(s);
    assert_eq!(reply[0], 33, "expected SUBSCRIBED, got {reply}");
    assert_eq!(reply[1], request, "{reply}");
}

/// A session on `port` can be opened and used.
fn serves(port: u16) {
    let mut s = rs_session(port);
    subscribe(&mut s, 1);
}

/// Polls `cond` until it holds or `timeout` passes.
fn eventually(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

fn kill(pid: u32, sig: i32) {
    // SAFETY: plain kill(2).
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}

// ------------------------------------------------------------ tests

#[test]
fn two_router_workers_serve_as_children_of_the_node() {
    let node = start_two_routers();
    let node_pid = node.process.pid();
    for (&i, &pid) in &node.pids {
        let (state, ppid) = proc_state(pid).unwrap_or_else(|| panic!("worker {i} (pid {pid}) does not exist"));
        assert_ne!(state, 'Z', "worker {i} is a zombie");
        assert_eq!(ppid, node_pid, "worker {i} (pid {pid}) is not a child of the node");
    }
    assert_ne!(node.pids[&0], node.pids[&1]);
    for &port in &node.ports {
        serves(port);
    }
    // The real Autobahn client works against each worker.
    for &port in &node.ports {
        let url = format!("rs://127.0.0.1:{port}");
        let r = python("pubsub.py", &[&url, "realm1", "json"]);
        assert_eq!(r["ok"], Value::Bool(true), "{r}");
        assert_eq!(r["sub_events"], 3, "{r}");
    }
    // The node key was created next to the config.
    let key = std::fs::read_to_string(node.dir.join(".junction").join("key.priv")).expect("node key file");
    assert!(key.contains("private-key-ed25519:"), "{key}");
}

#[test]
fn sighup_is_forwarded_to_every_worker() {
    let mut node = start_two_routers();
    let count = |n: &Node| n.process.stderr().matches("SIGHUP: TLS certificates reloaded").count();
    assert_eq!(count(&node), 0);
    kill(node.process.pid(), libc::SIGHUP);
    assert!(eventually(Duration::from_secs(10), || count(&node) == 2), "stderr:\n{}", node.process.stderr());
    assert!(node.process.is_running(), "the node exited on SIGHUP");
    for (&i, &pid) in &node.pids {
        assert!(process_alive(pid), "worker {i} exited on SIGHUP");
    }
    assert!(node.process.extra_stdout().is_empty(), "no restart expected");
    for &port in &node.ports {
        serves(port);
    }
}

#[test]
fn a_killed_worker_is_restarted_while_the_other_keeps_serving() {
    let node = start_two_routers();
    let old = node.pids[&0];
    // A session on the other worker, open across the restart.
    let mut other = rs_session(node.ports[1]);
    kill(old, libc::SIGKILL);

    let deadline = Instant::now() + RESTART_TIMEOUT;
    let mut seen = Vec::new();
    let mut new_pid = None;
    while !seen.iter().any(|l: &String| l.trim() == "junction: worker 0 ready") {
        assert!(Instant::now() < deadline, "worker 0 not back within {RESTART_TIMEOUT:?}; stdout: {seen:?}");
        for l in node.process.extra_stdout() {
            if let Some((i, kind, pid)) = pid_line(&l) {
                assert_eq!((i, kind.as_str()), (0, "router"), "only worker 0 restarts: {l}");
                new_pid = Some(pid);
            }
            seen.push(l);
        }
        thread::sleep(Duration::from_millis(20));
    }
    let new_pid = new_pid.unwrap_or_else(|| panic!("no new pid line before `worker 0 ready`: {seen:?}"));
    assert_ne!(new_pid, old, "same pid after a restart");
    assert_eq!(proc_state(new_pid).map(|(_, ppid)| ppid), Some(node.process.pid()), "new worker's parent");
    assert!(!process_alive(old), "the killed worker {old} still runs");
    assert!(node.process.stderr().contains("worker exited; restarting"), "the exit is logged");

    serves(node.ports[0]);
    // The other worker never went away: same pid, its session still works.
    assert!(process_alive(node.pids[&1]), "worker 1 died");
    subscribe(&mut other, 7);
    serves(node.ports[1]);
}

#[test]
fn sigterm_stops_the_node_and_every_worker() {
    let mut node = start_two_routers();
    let status = node.process.terminate(Duration::from_secs(15)).expect("node did not exit within 15 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status {status}\nstderr:\n{}", node.process.stderr());
    for (&i, &pid) in &node.pids {
        assert!(
            eventually(Duration::from_secs(2), || !process_alive(pid)),
            "worker {i} (pid {pid}) survived the node's SIGTERM"
        );
    }
    for &port in &node.ports {
        assert!(TcpListener::bind(("127.0.0.1", port)).is_ok(), "port {port} still taken after the node stopped");
    }
}

#[test]
fn a_killed_node_leaves_no_orphan_worker() {
    let node = start_two_routers();
    kill(node.process.pid(), libc::SIGKILL);
    for (&i, &pid) in &node.pids {
        assert!(
            eventually(Duration::from_secs(10), || !process_alive(pid)),
            "worker {i} (pid {pid}) outlived its killed node"
        );
    }
}

#[test]
fn key_prints_a_stable_public_key() {
    let dir = temp_dir("key");
    let config = dir.join("config.json");
    std::fs::write(&config, two_routers(&[free_port(), free_port()]).to_string()).expect("write config");
    let key = |config: &Path| -> String {
        let (status, out, err) =
            run_junction(&[OsStr::new("key"), OsStr::new("--config"), config.as_os_str()], Duration::from_secs(20));
        assert_eq!(status.and_then(|s| s.code()), Some(0), "junction key: {status:?}\nstderr: {err}");
        let hex = out.trim().to_owned();
        assert_eq!(hex.len(), 64, "not 64 hex digits: {out:?}");
        assert!(hex.bytes().all(|b| b.is_ascii_hexdigit()), "not hex: {hex:?}");
        hex
    };
    let first = key(&config);
    assert_eq!(key(&config), first, "the key changed between two calls");
    let file = std::fs::read_to_string(dir.join(".junction").join("key.priv")).expect("key file created");
    assert!(file.contains(&format!("public-key-ed25519: {first}")), "{file}");

    // controller.options.node_key, relative to the config's directory.
    let mut cfg = two_routers(&[free_port(), free_port()]);
    cfg["controller"] = json!({"options": {"node_key": "keys/node.priv"}});
    let other_config = dir.join("other.json");
    std::fs::write(&other_config, cfg.to_string()).expect("write config");
    let other = key(&other_config);
    assert_ne!(other, first, "a different key file gives a different key");
    assert!(dir.join("keys").join("node.priv").is_file(), "node_key file not created where configured");
    assert_eq!(key(&other_config), other);
}

#[test]
fn a_worker_that_cannot_start_fails_the_node_start() {
    let dir = temp_dir("fail");
    // Worker 1's port is held by this test.
    let held = TcpListener::bind(("127.0.0.1", 0)).expect("bind a port to hold");
    let taken = held.local_addr().expect("local addr").port();
    let config = dir.join("config.json");
    std::fs::write(&config, two_routers(&[free_port(), taken]).to_string()).expect("write config");
    let (status, out, err) =
        run_junction(&[OsStr::new("start"), OsStr::new("--config"), config.as_os_str()], Duration::from_secs(90));
    let status = status.unwrap_or_else(|| panic!("junction start did not exit\nstdout: {out}\nstderr: {err}"));
    assert!(!status.success(), "junction start succeeded with a taken port\nstdout: {out}\nstderr: {err}");
    assert!(!out.contains("junction: ready"), "ready although a worker failed: {out}");
    let last = err.lines().rev().find(|l| l.starts_with("junction: ")).unwrap_or("");
    assert!(last.contains("worker 1 (router \"r1\") failed to start"), "stderr: {err}");
    assert!(last.to_lowercase().contains("in use"), "the worker's error is in the message: {last}");
    // The worker that did start was stopped with the node.
    for pid in out.lines().filter_map(pid_line).map(|(_, _, pid)| pid) {
        assert!(eventually(Duration::from_secs(2), || !process_alive(pid)), "worker pid {pid} survived: {out}");
    }
    drop(held);
}

/// A node with a router worker (`ports[0]`: proxy links, trusted by the node
/// key alone) and a proxy worker (`ports[1]`: anonymous clients, routed to
/// the router).
fn router_and_proxy(ports: &[u16]) -> Value {
    let mut router = router_worker("r0", ports[0]);
    router["transports"][0]["auth"] = json!({"cryptosign-proxy": {"type": "static", "principals": {}}});
    json!({"version": 2, "workers": [
        router,
        {
            "type": "proxy",
            "id": "p0",
            "options": {"shards": 1, "pin_cores": false},
            "transports": [{
                "type": "rawsocket",
                "endpoint": {"type": "tcp", "port": ports[1], "interface": "127.0.0.1"},
                "serializers": common::SERIALIZERS,
                "auth": {"anonymous": {"type": "static", "role": "anonymous"}}
            }],
            "connections": {"router1": {"realm": "realm1", "transport": {
                "type": "rawsocket",
                "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": ports[0]}
            }}},
            "routes": {"realm1": {"*": "router1"}}
        }
    ]})
}

/// A session through the proxy; the router may still be (re)connecting, so
/// a refused or closed attempt is retried until `timeout`.
fn proxy_session_eventually(port: u16, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        let attempt = std::panic::catch_unwind(|| serves(port));
        match attempt {
            Ok(()) => return,
            Err(e) if Instant::now() >= deadline => std::panic::resume_unwind(e),
            Err(_) => thread::sleep(Duration::from_millis(200)),
        }
    }
}

#[test]
fn a_proxy_worker_reaches_its_router_worker_with_the_node_key() {
    let dir = temp_dir("proxy");
    let ports = vec![free_port(), free_port()];
    let (node, lines) = try_start_in_dir(&dir, &router_and_proxy(&ports)).unwrap_or_else(|e| panic!("{e}"));
    let kinds: Vec<(usize, String)> = lines.iter().filter_map(|l| pid_line(l)).map(|(i, k, _)| (i, k)).collect();
    assert_eq!(kinds, vec![(0, "router".to_owned()), (1, "proxy".to_owned())], "{lines:?}");
    let router_pid = lines.iter().filter_map(|l| pid_line(l)).find(|(i, _, _)| *i == 0).map(|(_, _, p)| p);
    let router_pid = router_pid.unwrap_or_else(|| panic!("no router pid: {lines:?}"));

    proxy_session_eventually(ports[1], Duration::from_secs(15));
    let url = format!("rs://127.0.0.1:{}", ports[1]);
    let r = node.python("pubsub.py", &[&url, "realm1", "cbor"]);
    assert_eq!(r["ok"], Value::Bool(true), "{r}");

    // The router worker dies and comes back; the proxy reconnects to it.
    kill(router_pid, libc::SIGKILL);
    let deadline = Instant::now() + RESTART_TIMEOUT;
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.trim() == "junction: worker 0 ready") {
        assert!(Instant::now() < deadline, "router worker not back: {seen:?}");
        seen.extend(node.extra_stdout());
        thread::sleep(Duration::from_millis(20));
    }
    proxy_session_eventually(ports[1], Duration::from_secs(15));
}
