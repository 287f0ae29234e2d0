//! Slow consumers and limits, end to end against the real `junction` binary.
//!
//! Every client here is hand-written over std sockets and speaks WAMP/JSON
//! over RawSocket or WebSocket, so the tests control exactly when a client
//! reads (a "slow consumer" is a client that simply stops reading, with a
//! small `SO_RCVBUF`).
//!
//! * **Slow subscriber, policy `close`**: a flood of 4 KiB events to a
//!   subscriber that does not read must not grow the router's memory; a
//!   healthy subscriber on the same topic still gets every event; a slow
//!   one that reads again at once finds `ABORT junction.error.slow_consumer`
//!   (WebSocket: then close 1008) and EOF; one that never reads is cut off
//!   by the router after the 2 s grace period (its socket is gone from
//!   `/proc/<pid>/fd`), without the ABORT.
//! * **Slow subscriber, policy `drop`**: same flood; the slow subscriber loses
//!   events but keeps its session.
//! * **Realm limits**: `max_sessions`, `max_pending_calls_per_session`,
//!   `default_call_timeout`; **transport limits**: RawSocket and WebSocket
//!   `max_message_size`.
//!
//! No test sleeps to wait for something it can observe: "the router closed
//! the slow consumer" is the `wamp.session.on_leave` meta event, "the queue
//! is drained" is the PONG to a PING sent after the flood, "the healthy
//! subscriber keeps up" is a shared counter the publisher waits on. The only
//! periodic thing is the RSS sampler.

mod common;

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::{allow_all_role, free_port, node_config, JunctionProcess};
use serde_json::{json, Value};

/// How long to wait for any single reply, close or EOF.
const READ_DEADLINE: Duration = Duration::from_secs(10);
/// Events published in a flood.
const EVENTS: usize = 10_000;
/// Payload string length of one flood event.
const EVENT_BYTES: usize = 4096;
/// How far the publisher may run ahead of the healthy subscriber (events).
const WINDOW: usize = 32;
/// `max_outbound_bytes` of the "tight" transports the slow consumers use.
const TIGHT_OUTBOUND: usize = 1 << 20;
/// `SO_RCVBUF` of a slow consumer: fixed (no autotuning), so little of the
/// flood hides in the client's kernel. Not smaller: on loopback (MSS 64 KiB)
/// a receive buffer below the MSS never opens its window by itself once
/// full, and the sender's zero-window probes back off to minutes.
const SLOW_RCVBUF: i32 = 128 * 1024;
/// Allowed RSS growth of the router during a flood (KiB).
const RSS_SLACK_KB: u64 = 64 * 1024;
/// Longest a whole flood may take.
const FLOOD_DEADLINE: Duration = Duration::from_secs(30);
/// The router's grace period for a closed slow consumer (conn.rs).
const SLOW_CONSUMER_GRACE: Duration = Duration::from_secs(2);
/// Junction's ABORT reason for a slow consumer.
const SLOW_CONSUMER_REASON: &str = "junction.error.slow_consumer";

// ------------------------------------------------------------ clients

/// Which wire protocol a [`Client`] speaks.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Wire {
    Rs,
    Ws,
}

/// One frame (or the lack of one) read from the router.
#[derive(Debug)]
enum Frame {
    Msg(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    /// WebSocket close frame: code and reason.
    Close(Option<u16>, String),
    /// Orderly EOF (also in the middle of a frame).
    Eof,
    /// Connection reset by the router.
    Reset,
    /// Nothing within [`READ_DEADLINE`].
    Timeout,
}

/// A WAMP/JSON client over RawSocket or WebSocket on std sockets.
struct Client {
    wire: Wire,
    r: BufReader<TcpStream>,
    w: TcpStream,
    /// RawSocket: the largest message the router announced it accepts.
    router_max: usize,
    next_req: u64,
    name: String,
}

/// The WebSocket client mask (any value is valid).
const MASK: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn io_frame_err(e: std::io::Error) -> Frame {
    match e.kind() {
        ErrorKind::UnexpectedEof => Frame::Eof,
        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted | ErrorKind::BrokenPipe => Frame::Reset,
        ErrorKind::WouldBlock | ErrorKind::TimedOut => Frame::Timeout,
        _ => panic!("read: {e}"),
    }
}

impl Client {
    /// Connects, optionally shrinking `SO_RCVBUF`, and completes the
    /// transport handshake (RawSocket/JSON, or a WebSocket upgrade to `/ws`
    /// with `wamp.2.json`).
    fn connect(wire: Wire, port: u16, rcvbuf: Option<i32>, name: &str) -> Client {
        let s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
        if let Some(n) = rcvbuf {
            set_rcvbuf(&s, n);
        }
        s.set_read_timeout(Some(READ_DEADLINE)).expect("set read timeout");
        s.set_write_timeout(Some(READ_DEADLINE)).expect("set write timeout");
        s.set_nodelay(true).ok();
        let w = s.try_clone().expect("clone socket");
        let mut c = Client {
            wire,
            r: BufReader::with_capacity(256 * 1024, s),
            w,
            router_max: 0,
            next_req: 1,
            name: name.into(),
        };
        match wire {
            Wire::Rs => {
                c.w.write_all(&[0x7F, 0xF1, 0, 0]).expect("send RawSocket handshake");
                let mut reply = [0u8; 4];
                c.r.read_exact(&mut reply).unwrap_or_else(|e| panic!("{name}: RawSocket handshake reply: {e}"));
                assert_eq!(reply[0], 0x7F, "{name}: handshake reply {reply:?}");
                assert_eq!(reply[1] & 0x0F, 1, "{name}: handshake refused: {reply:?}");
                c.router_max = 1 << (9 + (reply[1] >> 4));
            }
            Wire::Ws => {
                let req = "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                           Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                           Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n";
                c.w.write_all(req.as_bytes()).expect("send upgrade");
                let mut head = Vec::new();
                let mut b = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    assert!(head.len() < 16384, "{name}: response head too long");
                    c.r.read_exact(&mut b).unwrap_or_else(|e| {
                        panic!("{name}: reading the upgrade response: {e} after {:?}", String::from_utf8_lossy(&head))
                    });
                    head.push(b[0]);
                }
                let head = String::from_utf8_lossy(&head);
                assert!(head.starts_with("HTTP/1.1 101"), "{name}: upgrade refused: {head}");
            }
        }
        c
    }

    fn req(&mut self) -> u64 {
        let r = self.next_req;
        self.next_req += 1;
        r
    }

    /// Sends one frame: RawSocket type (0 message, 1 ping, 2 pong) or
    /// WebSocket opcode (1 text, 9 ping, 10 pong).
    fn send_frame(&mut self, kind: u8, payload: &[u8]) -> std::io::Result<()> {
        let n = payload.len();
        let mut v = Vec::with_capacity(n + 14);
        match self.wire {
            Wire::Rs => v.extend_from_slice(&[kind, (n >> 16) as u8, (n >> 8) as u8, n as u8]),
            Wire::Ws => {
                v.push(0x80 | kind);
                if n < 126 {
                    v.push(0x80 | n as u8);
                } else if n < 65536 {
                    v.push(0x80 | 126);
                    v.extend_from_slice(&(n as u16).to_be_bytes());
                } else {
                    v.push(0x80 | 127);
                    v.extend_from_slice(&(n as u64).to_be_bytes());
                }
                v.extend_from_slice(&MASK);
            }
        }
        let start = v.len();
        v.extend_from_slice(payload);
        if self.wire == Wire::Ws {
            for (i, b) in v[start..].iter_mut().enumerate() {
                *b ^= MASK[i % 4];
            }
        }
        self.w.write_all(&v)
    }

    /// Sends one WAMP message (raw JSON text).
    fn send_text(&mut self, text: &[u8]) {
        let kind = if self.wire == Wire::Rs { 0 } else { 1 };
        self.send_frame(kind, text).unwrap_or_else(|e| panic!("{}: send: {e}", self.name));
    }

    fn send(&mut self, msg: &Value) {
        self.send_text(msg.to_string().as_bytes());
    }

    fn ping(&mut self, payload: &[u8]) {
        let kind = if self.wire == Wire::Rs { 1 } else { 9 };
        self.send_frame(kind, payload).unwrap_or_else(|e| panic!("{}: send ping: {e}", self.name));
    }

    /// Reads the next frame; never panics on what the router does to the
    /// connection (EOF, reset, silence are results).
    fn next_frame(&mut self) -> Frame {
        match self.wire {
            Wire::Rs => {
                let mut h = [0u8; 4];
                if let Err(e) = self.r.read_exact(&mut h) {
                    return io_frame_err(e);
                }
                let n = ((h[1] as usize) << 16) | ((h[2] as usize) << 8) | h[3] as usize;
                let mut p = vec![0u8; n];
                if let Err(e) = self.r.read_exact(&mut p) {
                    return io_frame_err(e);
                }
                match h[0] & 0x07 {
                    0 => Frame::Msg(p),
                    1 => Frame::Ping(p),
                    2 => Frame::Pong(p),
                    t => panic!("{}: RawSocket frame of reserved type {t}", self.name),
                }
            }
            Wire::Ws => {
                let mut msg: Option<Vec<u8>> = None;
                loop {
                    let mut h = [0u8; 2];
                    if let Err(e) = self.r.read_exact(&mut h) {
                        return io_frame_err(e);
                    }
                    let (fin, opcode) = (h[0] & 0x80 != 0, h[0] & 0x0F);
                    assert!(h[1] & 0x80 == 0, "{}: the router masked a frame", self.name);
                    let mut n = (h[1] & 0x7F) as u64;
                    if n == 126 {
                        let mut b = [0u8; 2];
                        if let Err(e) = self.r.read_exact(&mut b) {
                            return io_frame_err(e);
                        }
                        n = u16::from_be_bytes(b) as u64;
                    } else if n == 127 {
                        let mut b = [0u8; 8];
                        if let Err(e) = self.r.read_exact(&mut b) {
                            return io_frame_err(e);
                        }
                        n = u64::from_be_bytes(b);
                    }
                    assert!(n <= 64 << 20, "{}: frame of {n} bytes", self.name);
                    let mut p = vec![0u8; n as usize];
                    if let Err(e) = self.r.read_exact(&mut p) {
                        return io_frame_err(e);
                    }
                    match opcode {
                        0..=2 => {
                            let m = msg.get_or_insert_with(Vec::new);
                            m.extend_from_slice(&p);
                            if fin {
                                return Frame::Msg(msg.take().unwrap_or_default());
                            }
                        }
                        8 => {
                            let code = (p.len() >= 2).then(|| u16::from_be_bytes([p[0], p[1]]));
                            let reason = String::from_utf8_lossy(p.get(2..).unwrap_or(&[])).into_owned();
                            return Frame::Close(code, reason);
                        }
                        9 => return Frame::Ping(p),
                        10 => return Frame::Pong(p),
                        o => panic!("{}: WebSocket frame with opcode {o}", self.name),
                    }
                }
            }
        }
    }

    /// The next WAMP message; answers pings; `None` when the router closed.
    fn recv(&mut self) -> Option<Value> {
        loop {
            match self.next_frame() {
                Frame::Msg(b) => {
                    return Some(serde_json::from_slice(&b).unwrap_or_else(|e| {
                        panic!("{}: router sent invalid JSON ({e}): {:?}", self.name, String::from_utf8_lossy(&b))
                    }))
                }
                Frame::Ping(p) => {
                    let kind = if self.wire == Wire::Rs { 2 } else { 10 };
                    let _ = self.send_frame(kind, &p);
                }
                Frame::Pong(_) => {}
                Frame::Close(..) | Frame::Eof | Frame::Reset => return None,
                Frame::Timeout => panic!("{}: no message from the router within {READ_DEADLINE:?}", self.name),
            }
        }
    }

    fn expect(&mut self, what: &str) -> Value {
        let name = self.name.clone();
        self.recv().unwrap_or_else(|| panic!("{name}: connection closed while waiting for {what}"))
    }

    /// HELLO → WELCOME (session id) or ABORT (the message).
    fn join(&mut self, realm: &str) -> Result<u64, Value> {
        let roles = json!({
            "publisher": {}, "subscriber": {}, "caller": {},
            "callee": {"features": {"call_canceling": true}}
        });
        self.send(&json!([1, realm, {"roles": roles}]));
        let m = self.expect("WELCOME");
        match m[0].as_u64() {
            Some(2) => Ok(m[1].as_u64().unwrap_or_else(|| panic!("{}: WELCOME without session id: {m}", self.name))),
            Some(3) => Err(m),
            _ => panic!("{}: expected WELCOME or ABORT, got {m}", self.name),
        }
    }

    fn joined(wire: Wire, port: u16, rcvbuf: Option<i32>, realm: &str, name: &str) -> (Client, u64) {
        let mut c = Client::connect(wire, port, rcvbuf, name);
        match c.join(realm) {
            Ok(id) => (c, id),
            Err(abort) => panic!("{name}: HELLO to {realm} aborted: {abort}"),
        }
    }

    fn subscribe(&mut self, topic: &str) -> u64 {
        let req = self.req();
        self.send(&json!([32, req, {}, topic]));
        let m = self.expect("SUBSCRIBED");
        assert!(m[0] == 33 && m[1] == req, "{}: expected SUBSCRIBED {req}, got {m}", self.name);
        m[2].as_u64().expect("subscription id")
    }

    fn register(&mut self, procedure: &str) -> u64 {
        let req = self.req();
        self.send(&json!([64, req, {}, procedure]));
        let m = self.expect("REGISTERED");
        assert!(m[0] == 65 && m[1] == req, "{}: expected REGISTERED {req}, got {m}", self.name);
        m[2].as_u64().expect("registration id")
    }
}

/// The inode of the router's (`pid`) end of the TCP connection whose client
/// end is `client`, from `/proc/net/tcp`.
fn router_socket_inode(pid: u32, client: &TcpStream) -> u64 {
    let port = client.local_addr().expect("local addr").port();
    let want = format!("0100007F:{port:04X}");
    let table = std::fs::read_to_string(format!("/proc/{pid}/net/tcp")).expect("read /proc/<pid>/net/tcp");
    table
        .lines()
        .skip(1)
        .find_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (f.len() > 9 && f[2] == want).then(|| f[9].parse().ok()).flatten().filter(|i| *i != 0)
        })
        .unwrap_or_else(|| panic!("no router socket connected to 127.0.0.1:{port} in /proc/{pid}/net/tcp"))
}

/// Whether process `pid` has an fd open on socket `inode`.
fn holds_socket(pid: u32, inode: u64) -> bool {
    let target = format!("socket:[{inode}]");
    let Ok(dir) = std::fs::read_dir(format!("/proc/{pid}/fd")) else { return false };
    dir.flatten().any(|e| std::fs::read_link(e.path()).is_ok_and(|l| l.as_os_str() == target.as_str()))
}

fn set_rcvbuf(s: &TcpStream, n: i32) {
    // SAFETY: setsockopt on our own open socket with a correctly sized int.
    let r = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &n as *const i32 as *const libc::c_void,
            std::mem::size_of::<i32>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "setsockopt(SO_RCVBUF): {}", std::io::Error::last_os_error());
}

// ------------------------------------------------------------ memory

/// Resident set size of `pid` in KiB.
fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_else(|e| panic!("read status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no VmRSS in /proc/{pid}/status"))
}

/// Samples a process's RSS every few milliseconds until stopped; returns
/// the peak.
struct RssSampler {
    stop: Arc<AtomicBool>,
    handle: thread::JoinHandle<u64>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = thread::spawn(move || {
            let mut peak = 0;
            while !s.load(Ordering::Relaxed) {
                peak = peak.max(rss_kb(pid));
                thread::sleep(Duration::from_millis(5));
            }
            peak.max(rss_kb(pid))
        });
        RssSampler { stop, handle }
    }

    fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("sampler thread")
    }
}

// ------------------------------------------------------------ flood

/// Events the healthy subscriber has received; the publisher waits on it.
#[derive(Default)]
struct Counter {
    n: Mutex<(usize, bool)>,
    cv: Condvar,
}

impl Counter {
    fn set(&self, v: usize) {
        self.n.lock().unwrap_or_else(|e| e.into_inner()).0 = v;
        self.cv.notify_all();
    }

    fn fail(&self) {
        self.n.lock().unwrap_or_else(|e| e.into_inner()).1 = true;
        self.cv.notify_all();
    }

    /// Waits until the count reaches `target`; false on failure or deadline.
    fn wait_at_least(&self, target: usize, deadline: Instant) -> bool {
        let mut g = self.n.lock().unwrap_or_else(|e| e.into_inner());
        while g.0 < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if g.1 || left.is_zero() {
                return false;
            }
            g = self.cv.wait_timeout(g, left).unwrap_or_else(|e| e.into_inner()).0;
        }
        true
    }
}

/// A node for the flood tests: a roomy RawSocket transport (publisher,
/// healthy subscriber, watcher) and two "tight" transports (RawSocket and
/// WebSocket) with `max_outbound_bytes` = 1 MiB and the given policy.
struct FloodNode {
    process: JunctionProcess,
    fast: u16,
    tight_rs: u16,
    tight_ws: u16,
}

fn flood_node(policy: &str) -> FloodNode {
    let (fast, tight_rs, tight_ws) = (free_port(), free_port(), free_port());
    let limits = json!({"max_outbound_bytes": TIGHT_OUTBOUND, "slow_consumer_policy": policy});
    let config = node_config(
        vec![json!({"name": "realm1", "roles": [allow_all_role("anonymous")]})],
        vec![
            json!({
                "type": "rawsocket",
                "endpoint": {"type": "tcp", "port": fast, "interface": "127.0.0.1"},
                "serializers": ["json"]
            }),
            json!({
                "type": "rawsocket",
                "endpoint": {"type": "tcp", "port": tight_rs, "interface": "127.0.0.1"},
                "serializers": ["json"],
                "max_message_size": 65536,
                "options": limits
            }),
            json!({
                "type": "web",
                "endpoint": {"type": "tcp", "port": tight_ws, "interface": "127.0.0.1"},
                "options": limits,
                "paths": {"ws": {
                    "type": "websocket",
                    "serializers": ["json"],
                    "options": {"max_message_size": 65536, "max_frame_size": 65536}
                }}
            }),
        ],
    );
    FloodNode { process: JunctionProcess::start(config), fast, tight_rs, tight_ws }
}

/// Publishes [`EVENTS`] events `[seq, "xxxx…"]` to `com.flood`, never more
/// than [`WINDOW`] ahead of the healthy subscriber.
fn publish_flood(mut publisher: Client, healthy: Arc<Counter>, deadline: Instant) -> Result<(), String> {
    let filler = "x".repeat(EVENT_BYTES);
    for seq in 0..EVENTS {
        if seq >= WINDOW && !healthy.wait_at_least(seq - WINDOW + 1, deadline) {
            return Err(format!("publisher: the healthy subscriber stopped receiving (published {seq})"));
        }
        let msg = format!(r#"[16,{},{{}},"com.flood",[{seq},"{filler}"]]"#, seq + 1);
        publisher.send_frame(0, msg.as_bytes()).map_err(|e| format!("publisher: send #{seq}: {e}"))?;
    }
    Ok(())
}

/// The healthy subscriber: every event, in order, intact.
fn count_events(mut sub: Client, sub_id: u64, counter: Arc<Counter>) -> Result<usize, String> {
    let mut next = 0usize;
    let r = (|| {
        while next < EVENTS {
            match sub.next_frame() {
                Frame::Msg(b) => {
                    type Event<'a> = (u8, u64, u64, Value, (usize, &'a str));
                    let (code, sid, _, _, (seq, payload)): Event = serde_json::from_slice(&b).map_err(|e| {
                        format!(
                            "healthy: not a flood EVENT ({e}): {:?}",
                            String::from_utf8_lossy(&b[..b.len().min(200)])
                        )
                    })?;
                    if code != 36 || sid != sub_id || seq != next || payload.len() != EVENT_BYTES {
                        return Err(format!(
                            "healthy: expected event #{next} on {sub_id}, got code {code} sub {sid} seq {seq} ({} bytes)",
                            payload.len()
                        ));
                    }
                    next += 1;
                    counter.set(next);
                }
                Frame::Ping(_) | Frame::Pong(_) => {}
                other => return Err(format!("healthy: {other:?} after {next} events")),
            }
        }
        Ok(next)
    })();
    if r.is_err() {
        counter.fail();
    }
    r
}

/// What a slow consumer saw once it read again.
#[derive(Debug, Default)]
struct SlowReport {
    name: String,
    /// When the router's `on_leave` for this session arrived (close policy).
    left: bool,
    events: usize,
    /// Sequence numbers were strictly increasing.
    in_order: bool,
    /// Non-EVENT messages, in order.
    others: Vec<Value>,
    /// An EVENT came after a non-EVENT message (e.g. after the ABORT).
    event_after_other: bool,
    close: Option<(Option<u16>, String)>,
    /// How the connection ended: "eof", "reset", "timeout", "alive".
    end: &'static str,
    resume_to_end: Duration,
    pong: bool,
    published: bool,
    /// Late consumer: how long after its `on_leave` the router closed its
    /// socket (no fd of the router refers to it any more).
    released_after: Option<Duration>,
}

/// Reads a resumed slow consumer until `stop` says so (or the connection ends).
fn drain(sub: &mut Client, report: &mut SlowReport, mut stop: impl FnMut(&Frame) -> bool) {
    let started = Instant::now();
    let mut last_seq: Option<u64> = None;
    report.in_order = true;
    loop {
        let f = sub.next_frame();
        if stop(&f) {
            report.end = "alive";
            break;
        }
        match f {
            Frame::Msg(b) => {
                let m: Value =
                    serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{}: invalid JSON: {e}", report.name));
                if m[0] == 36 {
                    report.events += 1;
                    report.event_after_other |= !report.others.is_empty();
                    let seq = m[4][0].as_u64().unwrap_or(u64::MAX);
                    report.in_order &=
                        last_seq.is_none_or(|l| seq > l) && m[4][1].as_str().map(str::len) == Some(EVENT_BYTES);
                    last_seq = Some(seq);
                } else {
                    report.others.push(m);
                }
            }
            Frame::Ping(p) => {
                let kind = if sub.wire == Wire::Rs { 2 } else { 10 };
                let _ = sub.send_frame(kind, &p);
            }
            Frame::Pong(_) => report.pong = true,
            Frame::Close(code, reason) => report.close = Some((code, reason)),
            Frame::Eof => {
                report.end = "eof";
                break;
            }
            Frame::Reset => {
                report.end = "reset";
                break;
            }
            Frame::Timeout => {
                report.end = "timeout";
                break;
            }
        }
    }
    report.resume_to_end = started.elapsed();
}

/// Subscribes to `wamp.session.on_leave` and reports each leaving session
/// to the matching `targets` channel and to `all`.
fn watch_leaves(mut watcher: Client, targets: Vec<(u64, mpsc::Sender<Instant>)>, all: Arc<Mutex<Vec<u64>>>) {
    thread::spawn(move || loop {
        match watcher.next_frame() {
            Frame::Msg(b) => {
                let Ok(m) = serde_json::from_slice::<Value>(&b) else { return };
                if m[0] == 36 {
                    if let Some(id) = m[4][0].as_u64() {
                        all.lock().unwrap_or_else(|e| e.into_inner()).push(id);
                        for (t, tx) in &targets {
                            if *t == id {
                                let _ = tx.send(Instant::now());
                            }
                        }
                    }
                }
            }
            Frame::Timeout | Frame::Ping(_) | Frame::Pong(_) => {}
            _ => return,
        }
    });
}

/// Everything a flood test observed.
struct FloodResult {
    baseline_kb: u64,
    peak_kb: u64,
    after_kb: u64,
    healthy: Result<usize, String>,
    publisher: Result<(), String>,
    slow: Vec<SlowReport>,
    left: Vec<u64>,
    slow_ids: Vec<u64>,
}

/// Runs one flood: a healthy subscriber, a publisher, and slow subscribers
/// (RawSocket and WebSocket on the tight transports, plus for `close` a
/// "late" RawSocket one that only reads after the flood).
fn run_flood(node: &FloodNode, policy: &str) -> FloodResult {
    let pid = node.process.pid();
    let (mut watcher, _) = Client::joined(Wire::Rs, node.fast, None, "realm1", "watcher");
    watcher.subscribe("wamp.session.on_leave");
    let (mut healthy, _) = Client::joined(Wire::Rs, node.fast, None, "realm1", "healthy");
    let healthy_sub = healthy.subscribe("com.flood");
    let (publisher, _) = Client::joined(Wire::Rs, node.fast, None, "realm1", "publisher");

    let mut slow = Vec::new();
    let mut specs = vec![(Wire::Rs, node.tight_rs, "slow-rs"), (Wire::Ws, node.tight_ws, "slow-ws")];
    if policy == "close" {
        specs.push((Wire::Rs, node.tight_rs, "late-rs"));
    }
    for (wire, port, name) in specs {
        let (mut c, id) = Client::joined(wire, port, Some(SLOW_RCVBUF), "realm1", name);
        c.subscribe("com.flood");
        slow.push((c, id));
    }
    let slow_ids: Vec<u64> = slow.iter().map(|(_, id)| *id).collect();

    let baseline_kb = rss_kb(pid);
    let sampler = RssSampler::start(pid);
    let deadline = Instant::now() + FLOOD_DEADLINE;

    // Slow consumers: wait for their signal, then read.
    let left_log = Arc::new(Mutex::new(Vec::new()));
    let mut targets = Vec::new();
    let mut flood_done = Vec::new();
    let mut slow_threads = Vec::new();
    let mut late = None;
    for (mut c, id) in slow {
        let (tx, rx) = mpsc::channel::<Instant>();
        let name = c.name.clone();
        if name.starts_with("late") {
            let inode = router_socket_inode(pid, &c.w);
            targets.push((id, tx));
            late = Some((c, rx, inode));
            continue;
        }
        if policy == "close" {
            targets.push((id, tx));
        } else {
            flood_done.push(tx);
        }
        let policy = policy.to_owned();
        slow_threads.push(thread::spawn(move || {
            let mut report = SlowReport { name, ..Default::default() };
            let waited = rx.recv_timeout(deadline.saturating_duration_since(Instant::now()) + Duration::from_secs(5));
            report.left = policy == "close" && waited.is_ok();
            if waited.is_err() {
                report.end = "never signalled";
                return (report, c);
            }
            if policy == "close" {
                drain(&mut c, &mut report, |_| false);
            } else {
                // Everything queued before the PONG arrives before it.
                c.ping(b"drain");
                drain(&mut c, &mut report, |f| matches!(f, Frame::Pong(p) if p == b"drain"));
                if report.end == "alive" {
                    report.pong = true;
                    c.send(&json!([16, 900, {"acknowledge": true}, "com.after", []]));
                    match c.recv() {
                        Some(m) => {
                            report.published = m[0] == 17 && m[1] == 900;
                            if !report.published {
                                report.others.push(m);
                            }
                        }
                        None => report.end = "closed after PONG",
                    }
                }
            }
            // The client lives on until the leave log has been read.
            (report, c)
        }));
    }
    watch_leaves(watcher, targets, left_log.clone());

    let counter = Arc::new(Counter::default());
    let c2 = counter.clone();
    let healthy_thread = thread::spawn(move || count_events(healthy, healthy_sub, c2));
    let c3 = counter.clone();
    let publisher_thread = thread::spawn(move || publish_flood(publisher, c3, deadline));

    let publisher = publisher_thread.join().expect("publisher thread");
    if publisher.is_err() {
        counter.fail();
    }
    let healthy = healthy_thread.join().expect("healthy thread");
    eprintln!(
        "{policy}: flood of {EVENTS} events done in {:?}",
        FLOOD_DEADLINE.saturating_sub(deadline.saturating_duration_since(Instant::now()))
    );
    for tx in flood_done {
        let _ = tx.send(Instant::now());
    }
    let mut reports = Vec::new();
    let mut alive = Vec::new();
    for t in slow_threads {
        let (report, c) = t.join().expect("slow thread");
        reports.push(report);
        alive.push(c);
    }
    if let Some((mut c, rx, inode)) = late {
        // Never read until the router has let go of the socket: the grace
        // period, then the forced close.
        let mut report = SlowReport { name: c.name.clone(), ..Default::default() };
        if let Ok(left_at) = rx.recv_timeout(Duration::from_secs(5)) {
            report.left = true;
            let limit = left_at + SLOW_CONSUMER_GRACE + Duration::from_secs(5);
            while Instant::now() < limit {
                if !holds_socket(pid, inode) {
                    report.released_after = Some(left_at.elapsed());
                    break;
                }
                thread::sleep(Duration::from_millis(10));
            }
        }
        drain(&mut c, &mut report, |_| false);
        reports.push(report);
    }
    let peak_kb = sampler.stop();
    let after_kb = rss_kb(pid);
    let left = left_log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    drop(alive);
    FloodResult { baseline_kb, peak_kb, after_kb, healthy, publisher, slow: reports, left, slow_ids }
}

fn assert_common(r: &FloodResult, node: &FloodNode) {
    let summary = format!(
        "RSS baseline {} KiB, peak {} KiB, after {} KiB; slow: {:#?}",
        r.baseline_kb, r.peak_kb, r.after_kb, r.slow
    );
    eprintln!("{summary}");
    if let Err(e) = &r.publisher {
        panic!("{e}\n{summary}\n{}", common::tail(&node.process.stderr(), 4000));
    }
    match &r.healthy {
        Ok(n) => assert_eq!(*n, EVENTS, "healthy subscriber missed events; {summary}"),
        Err(e) => panic!("{e}\n{summary}\n{}", common::tail(&node.process.stderr(), 4000)),
    }
    assert!(
        r.peak_kb <= r.baseline_kb + RSS_SLACK_KB && r.after_kb <= r.baseline_kb + RSS_SLACK_KB,
        "router memory grew by more than {RSS_SLACK_KB} KiB during a flood to slow consumers; {summary}"
    );
    for s in &r.slow {
        assert!(s.events < EVENTS, "{}: received all {EVENTS} events while not reading; {summary}", s.name);
        assert!(s.in_order, "{}: events out of order or damaged; {summary}", s.name);
    }
}

// ------------------------------------------------------------ slow consumer tests

/// Policy `close`: the slow consumers are closed (on_leave); those that read
/// again at once are told why (ABORT `junction.error.slow_consumer`;
/// WebSocket close 1008) and hung up on; the one that does not read is
/// hung up on after the grace period; the router's memory stays bounded and
/// the healthy subscriber gets every event.
#[test]
fn slow_subscriber_policy_close() {
    let node = flood_node("close");
    let r = run_flood(&node, "close");
    assert_common(&r, &node);
    for s in &r.slow {
        let ctx = format!("{s:#?}");
        assert!(s.left, "{}: the router never reported the slow session as left: {ctx}", s.name);
        assert!(matches!(s.end, "eof" | "reset"), "{}: connection not closed: {ctx}", s.name);
        let aborts: Vec<&Value> = s.others.iter().filter(|m| m[0] == 3).collect();
        for a in &aborts {
            assert_eq!(a[2], SLOW_CONSUMER_REASON, "{}: ABORT reason: {ctx}", s.name);
        }
        assert!(s.others.iter().all(|m| m[0] == 3), "{}: unexpected non-EVENT messages: {ctx}", s.name);
        assert!(!s.event_after_other, "{}: EVENTs after the ABORT: {ctx}", s.name);
        if s.name.starts_with("late") {
            // Never read until the router closed the socket: the forced
            // close after the grace period. The router's writer was stuck
            // on older events, so the ABORT never got out; what the
            // consumer finds is some events (maybe a truncated frame) and EOF.
            let released = s.released_after.unwrap_or_else(|| {
                panic!(
                    "{}: the router still holds the socket {SLOW_CONSUMER_GRACE:?} + 5 s after the close: {ctx}",
                    s.name
                )
            });
            assert!(
                released + Duration::from_millis(300) >= SLOW_CONSUMER_GRACE,
                "{}: socket released after {released:?}, before the grace period: {ctx}",
                s.name
            );
            assert!(aborts.is_empty(), "{}: ABORT got out although the writer was stuck: {ctx}", s.name);
            continue;
        }
        // Resumed as soon as the router reported the close: within the
        // grace period, so the ABORT must be there, then the hang-up.
        assert_eq!(aborts.len(), 1, "{}: expected one ABORT {SLOW_CONSUMER_REASON}: {ctx}", s.name);
        assert!(
            s.resume_to_end < SLOW_CONSUMER_GRACE + Duration::from_secs(3),
            "{}: hang-up took {:?}: {ctx}",
            s.name,
            s.resume_to_end
        );
        if s.name.ends_with("ws") {
            assert_eq!(
                s.close.as_ref().and_then(|c| c.0),
                Some(1008),
                "{}: expected WebSocket close 1008 after the ABORT: {ctx}",
                s.name
            );
        }
    }
}

/// Policy `drop`: the slow consumers lose events but keep their sessions
/// (a PING is answered after the queued events, a PUBLISH is acknowledged);
/// memory bounded; the healthy subscriber gets every event.
#[test]
fn slow_subscriber_policy_drop() {
    let node = flood_node("drop");
    let r = run_flood(&node, "drop");
    assert_common(&r, &node);
    for s in &r.slow {
        let ctx = format!("{s:#?}");
        assert_eq!(s.end, "alive", "{}: connection did not survive: {ctx}", s.name);
        assert!(s.pong, "{}: no PONG after the queued events: {ctx}", s.name);
        assert!(s.published, "{}: PUBLISH after the flood not acknowledged: {ctx}", s.name);
        assert!(s.events > 0, "{}: received no events at all: {ctx}", s.name);
        assert!(s.others.is_empty(), "{}: unexpected messages: {ctx}", s.name);
        assert!(s.close.is_none(), "{}: WebSocket close: {ctx}", s.name);
    }
    for id in &r.slow_ids {
        assert!(!r.left.contains(id), "slow session {id} left under the drop policy: {:?}", r.left);
    }
}

// ------------------------------------------------------------ realm and transport limits

struct LimitsNode {
    /// Kept so the node lives as long as the test process.
    _process: JunctionProcess,
    rs: u16,
    ws: u16,
}

/// Realms `capped` (max_sessions 2), `pending` (2 pending calls per
/// session), `timeout` (default call timeout 300 ms), `realm1`; RawSocket
/// and WebSocket with `max_message_size` 1024.
fn limits_node() -> &'static LimitsNode {
    static NODE: OnceLock<Result<LimitsNode, String>> = OnceLock::new();
    common::once_or_fail(&NODE, || {
        let (rs, ws) = (free_port(), free_port());
        let roles = json!([allow_all_role("anonymous")]);
        let config = node_config(
            vec![
                json!({"name": "realm1", "roles": roles}),
                json!({"name": "capped", "roles": roles, "options": {"max_sessions": 2}}),
                json!({"name": "pending", "roles": roles, "options": {"max_pending_calls_per_session": 2}}),
                json!({"name": "timeout", "roles": roles, "options": {"default_call_timeout": 300}}),
            ],
            vec![
                json!({
                    "type": "rawsocket",
                    "endpoint": {"type": "tcp", "port": rs, "interface": "127.0.0.1"},
                    "serializers": ["json"],
                    "max_message_size": 1024
                }),
                json!({
                    "type": "web",
                    "endpoint": {"type": "tcp", "port": ws, "interface": "127.0.0.1"},
                    "paths": {"ws": {
                        "type": "websocket",
                        "serializers": ["json"],
                        "options": {"max_message_size": 1024}
                    }}
                }),
            ],
        );
        LimitsNode { _process: JunctionProcess::start(config), rs, ws }
    })
}

#[test]
fn max_sessions_refuses_the_third_hello() {
    let n = limits_node();
    let (mut a, _) = Client::joined(Wire::Rs, n.rs, None, "capped", "a");
    let (_b, _) = Client::joined(Wire::Rs, n.rs, None, "capped", "b");
    let mut c = Client::connect(Wire::Rs, n.rs, None, "c");
    let abort = c.join("capped").expect_err("third session on a realm with max_sessions 2 was welcomed");
    assert_eq!(abort[2], "wamp.error.not_authorized", "{abort}");
    let msg = abort[1]["message"].as_str().unwrap_or("");
    assert!(msg.contains("max_sessions"), "ABORT message does not name the limit: {abort}");
    assert_eq!(c.recv(), None, "connection not closed after the ABORT");
    // Another realm is unaffected.
    let (_other, _) = Client::joined(Wire::Rs, n.rs, None, "realm1", "other");
    // Once a session leaves, there is room again.
    a.send(&json!([6, {}, "wamp.close.close_realm"]));
    let bye = a.expect("GOODBYE");
    assert_eq!(bye[0], 6, "expected GOODBYE, got {bye}");
    let (_d, _) = Client::joined(Wire::Rs, n.rs, None, "capped", "d");
}

#[test]
fn max_pending_calls_per_session() {
    let n = limits_node();
    let (mut callee, _) = Client::joined(Wire::Rs, n.rs, None, "pending", "callee");
    callee.register("com.stuck");
    let (mut caller, _) = Client::joined(Wire::Rs, n.rs, None, "pending", "caller");
    for req in 1..=3 {
        caller.send(&json!([48, req, {}, "com.stuck", [req]]));
    }
    let err = caller.expect("ERROR for the third call");
    assert_eq!(err[0], 8, "expected ERROR, got {err}");
    assert_eq!((err[1].clone(), err[2].clone()), (json!(48), json!(3)), "{err}");
    assert_eq!(err[4], "junction.error.too_many_pending_calls", "{err}");
    // The first two were forwarded.
    let inv1 = callee.expect("INVOCATION 1");
    let inv2 = callee.expect("INVOCATION 2");
    assert!(inv1[0] == 68 && inv2[0] == 68, "{inv1} {inv2}");
    assert_eq!((inv1[4][0].clone(), inv2[4][0].clone()), (json!(1), json!(2)), "{inv1} {inv2}");
    // Answering one makes room for another.
    callee.send(&json!([70, inv1[1], {}, ["one"]]));
    let res = caller.expect("RESULT 1");
    assert_eq!((res[0].clone(), res[1].clone(), res[3].clone()), (json!(50), json!(1), json!(["one"])), "{res}");
    caller.send(&json!([48, 4, {}, "com.stuck", [4]]));
    let inv4 = callee.expect("INVOCATION 4");
    assert_eq!((inv4[0].clone(), inv4[4][0].clone()), (json!(68), json!(4)), "{inv4}");
    callee.send(&json!([70, inv4[1], {}, ["four"]]));
    let res = caller.expect("RESULT 4");
    assert_eq!((res[0].clone(), res[1].clone(), res[3].clone()), (json!(50), json!(4), json!(["four"])), "{res}");
}

#[test]
fn default_call_timeout() {
    let n = limits_node();
    let (mut callee, _) = Client::joined(Wire::Rs, n.rs, None, "timeout", "callee");
    callee.register("com.stuck");
    let (mut caller, _) = Client::joined(Wire::Rs, n.rs, None, "timeout", "caller");
    let sent = Instant::now();
    caller.send(&json!([48, 1, {}, "com.stuck", []]));
    let err = caller.expect("ERROR wamp.error.timeout");
    let took = sent.elapsed();
    assert_eq!((err[0].clone(), err[1].clone(), err[2].clone()), (json!(8), json!(48), json!(1)), "{err}");
    assert_eq!(err[4], "wamp.error.timeout", "{err}");
    assert!(took >= Duration::from_millis(280), "timed out after {took:?}, before default_call_timeout 300 ms");
    assert!(took < Duration::from_secs(3), "timeout took {took:?}");
    // The callee (which announced call_canceling) is told.
    let inv = callee.expect("INVOCATION");
    assert_eq!(inv[0], 68, "{inv}");
    let int = callee.expect("INTERRUPT");
    assert_eq!((int[0].clone(), int[1].clone()), (json!(69), inv[1].clone()), "{int}");
    assert_eq!(int[2]["reason"], "wamp.error.timeout", "{int}");
    // A late YIELD is dropped; the caller gets nothing more, and its
    // session still works.
    callee.send(&json!([70, inv[1], {}, ["late"]]));
    caller.send(&json!([16, 7, {"acknowledge": true}, "com.ping", []]));
    let next = caller.expect("PUBLISHED");
    assert_eq!((next[0].clone(), next[1].clone()), (json!(17), json!(7)), "late result leaked to the caller: {next}");
}

#[test]
fn rawsocket_max_message_size() {
    let n = limits_node();
    let (mut c, _) = Client::joined(Wire::Rs, n.rs, None, "realm1", "rs-size");
    assert!(c.router_max <= 1024, "router announced {} > max_message_size 1024", c.router_max);
    let small = "s".repeat(900);
    c.send(&json!([16, 1, {"acknowledge": true}, "com.size", [small]]));
    let ok = c.expect("PUBLISHED for a message under the limit");
    assert_eq!((ok[0].clone(), ok[1].clone()), (json!(17), json!(1)), "{ok}");
    let big = "b".repeat(2048);
    let _ = c.send_frame(0, json!([16, 2, {"acknowledge": true}, "com.size", [big]]).to_string().as_bytes());
    let mut got = Vec::new();
    let end = loop {
        match c.next_frame() {
            Frame::Msg(b) => got.push(String::from_utf8_lossy(&b).into_owned()),
            Frame::Ping(_) | Frame::Pong(_) => {}
            other => break other,
        }
    };
    assert!(matches!(end, Frame::Eof | Frame::Reset), "2 KiB message: connection not closed ({end:?}); got {got:?}");
    assert!(got.iter().all(|m| !m.starts_with("[17,")), "oversized PUBLISH was acknowledged: {got:?}");
}

#[test]
fn websocket_max_message_size() {
    let n = limits_node();
    let (mut c, _) = Client::joined(Wire::Ws, n.ws, None, "realm1", "ws-size");
    let small = "s".repeat(900);
    c.send(&json!([16, 1, {"acknowledge": true}, "com.size", [small]]));
    let ok = c.expect("PUBLISHED for a message under the limit");
    assert_eq!((ok[0].clone(), ok[1].clone()), (json!(17), json!(1)), "{ok}");
    let big = "b".repeat(2048);
    let _ = c.send_frame(1, json!([16, 2, {"acknowledge": true}, "com.size", [big]]).to_string().as_bytes());
    let mut got = Vec::new();
    let end = loop {
        match c.next_frame() {
            Frame::Msg(b) => got.push(String::from_utf8_lossy(&b).into_owned()),
            Frame::Ping(_) | Frame::Pong(_) => {}
            other => break other,
        }
    };
    match end {
        Frame::Close(code, reason) => {
            assert_eq!(code, Some(1009), "close reason {reason:?}; got {got:?}");
            let _ = c.send_frame(8, &1009u16.to_be_bytes());
        }
        other => panic!("2 KiB message: expected close 1009, got {other:?}; messages {got:?}"),
    }
    assert!(got.iter().all(|m| !m.starts_with("[17,")), "oversized PUBLISH was acknowledged: {got:?}");
    assert!(matches!(c.next_frame(), Frame::Eof | Frame::Reset), "connection not closed after close 1009");
}
