//! Large messages on the zero-copy write path: payloads of at least
//! `SHARE_MIN` bytes are queued by reference and written with vectored
//! `sendmsg` calls that the kernel may take only in part. A subscriber that
//! stalls while large and small events pile up for it (so that its socket
//! fills and writes stop part-way) must then receive every event, intact
//! and in order: straight from a router worker over TCP and over a Unix
//! socket, and through a proxy worker (both hops of which forward by
//! reference).

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use common::rawsocket::frame;
use common::{allow_all_role, free_port, realm, temp_path, JunctionProcess};
use serde_json::{json, Value};

/// Events per run: a third small (copied), the rest large (shared).
const EVENTS: usize = 60;

fn tcp(port: u16) -> Value {
    json!({"type": "tcp", "port": port, "interface": "127.0.0.1"})
}

struct Node {
    _process: JunctionProcess,
    direct: u16,
    proxied: u16,
    unix: PathBuf,
}

fn start_node() -> Node {
    let (direct, link, proxied) = (free_port(), free_port(), free_port());
    let unix = temp_path("large", "sock");
    let anon = json!({"anonymous": {"type": "static", "role": "anonymous"}});
    let config = json!({
        "version": 2,
        "workers": [
            {
                "type": "router", "id": "r0",
                "options": {"shards": 1, "pin_cores": false},
                "realms": [realm("realm1", vec![allow_all_role("anonymous")])],
                "transports": [
                    {"type": "rawsocket", "endpoint": tcp(direct), "serializers": ["json"], "auth": anon},
                    {"type": "rawsocket", "endpoint": {"type": "unix", "path": unix}, "serializers": ["json"], "auth": anon},
                    {"type": "rawsocket", "endpoint": tcp(link),
                     "auth": {"cryptosign-proxy": {"type": "static", "principals": {}}}}
                ]
            },
            {
                "type": "proxy", "id": "p0",
                "options": {"shards": 1, "pin_cores": false},
                "routes": {"realm1": {"*": "c0"}},
                "connections": {"c0": {"realm": "realm1", "transport": {"type": "rawsocket",
                    "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": link}}}},
                "transports": [{"type": "rawsocket", "endpoint": tcp(proxied), "serializers": ["json"], "auth": anon}]
            }
        ]
    });
    Node { _process: JunctionProcess::start(config), direct, proxied, unix }
}

/// Where a client connects.
#[derive(Clone, Copy)]
enum Dial<'a> {
    Tcp(u16),
    Unix(&'a PathBuf),
}

/// A TCP or Unix stream socket.
trait Sock: Read + Write {}
impl Sock for TcpStream {}
impl Sock for UnixStream {}

fn send(s: &mut dyn Sock, msg: &Value) {
    s.write_all(&frame(0, msg.to_string().as_bytes())).expect("send");
}

fn recv(s: &mut dyn Sock, what: &str) -> Value {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).unwrap_or_else(|e| panic!("connection lost waiting for {what}: {e}"));
    assert_eq!(h[0] & 0x07, 0, "a WAMP message frame while waiting for {what}");
    let n = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
    let mut body = vec![0u8; n];
    s.read_exact(&mut body).unwrap_or_else(|e| panic!("connection lost reading {what}: {e}"));
    serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{what}: bad JSON ({e})"))
}

fn join(to: Dial) -> Box<dyn Sock> {
    let timeout = Some(Duration::from_secs(30));
    let mut s: Box<dyn Sock> = match to {
        Dial::Tcp(port) => {
            let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            s.set_read_timeout(timeout).expect("timeout");
            Box::new(s)
        }
        Dial::Unix(path) => {
            let s = UnixStream::connect(path).expect("connect");
            s.set_read_timeout(timeout).expect("timeout");
            Box::new(s)
        }
    };
    // RawSocket handshake: JSON, the longest messages.
    s.write_all(&[0x7F, 0xF1, 0, 0]).expect("handshake");
    let mut reply = [0u8; 4];
    s.read_exact(&mut reply).expect("handshake reply");
    assert_eq!(reply[0], 0x7F, "RawSocket handshake accepted: {reply:?}");
    send(&mut *s, &json!([1, "realm1", {"roles": {"subscriber": {}, "publisher": {}}}]));
    let w = recv(&mut *s, "WELCOME");
    assert_eq!(w[0], 2, "WELCOME expected: {w}");
    s
}

/// The event `seq`'s filler: small for every third, else 1 KiB to ~300 KiB.
fn filler(seq: usize) -> String {
    let len = if seq % 3 == 0 { 20 + seq } else { 1024 + (seq * 7919) % 300_000 };
    let c = char::from(b'a' + (seq % 26) as u8);
    std::iter::repeat_n(c, len).collect()
}

fn stalled_subscriber_gets_every_event(to: Dial, topic: &str) {
    let mut sub = join(to);
    send(&mut *sub, &json!([32, 1, {}, topic]));
    let subscribed = recv(&mut *sub, "SUBSCRIBED");
    assert_eq!(subscribed[0], 33, "{subscribed}");
    let mut publisher = join(to);
    let mut total = 0;
    for seq in 0..EVENTS {
        let f = filler(seq);
        total += f.len();
        let opts = if seq == EVENTS - 1 { json!({"acknowledge": true}) } else { json!({}) };
        send(&mut *publisher, &json!([16, seq + 1, opts, topic, [seq, f]]));
    }
    // The router has routed them all once the last one is acknowledged;
    // the subscriber has read none yet.
    let published = recv(&mut *publisher, "PUBLISHED");
    assert_eq!(published[0], 17, "{published}");
    assert_eq!(published[1], EVENTS, "{published}");
    assert!(total > 3 << 20, "enough to fill the subscriber's socket: {total} bytes");
    for seq in 0..EVENTS {
        let e = recv(&mut *sub, &format!("EVENT {seq}"));
        assert_eq!(e[0], 36, "EVENT expected, got {}", &e.to_string()[..200.min(e.to_string().len())]);
        assert_eq!(e[4][0], seq, "events in order");
        let got = e[4][1].as_str().unwrap_or_default();
        assert!(got == filler(seq), "event {seq}: {} bytes arrived, {} sent, or altered", got.len(), filler(seq).len());
    }
}

#[test]
fn a_stalled_subscriber_gets_large_events_intact_direct_and_through_a_proxy() {
    let node = start_node();
    stalled_subscriber_gets_every_event(Dial::Tcp(node.direct), "com.large.direct");
    stalled_subscriber_gets_every_event(Dial::Unix(&node.unix), "com.large.unix");
    stalled_subscriber_gets_every_event(Dial::Tcp(node.proxied), "com.large.proxied");
}
