//! Hostile and broken peers, spoken by hand over std sockets: bad RawSocket
//! handshakes, oversized frames, malformed WAMP, bad WebSocket upgrades,
//! silent clients. The router must answer as the protocols say (or close),
//! never hang, and keep serving everyone else.
//!
//! Every wait here is for an event (a reply, or EOF) with a read deadline.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{allow_all_role, free_port, node_config, realm, temp_path, JunctionProcess};
use serde_json::{json, Value};

/// Handshake timeouts configured on the test node.
const HANDSHAKE_TIMEOUT_MS: u64 = 500;
/// The RawSocket `max_message_size` configured on the test node (2^12).
const RS_MAX_MESSAGE: usize = 4096;
/// How long to wait for any single reply or close.
const READ_DEADLINE: Duration = Duration::from_secs(5);

struct Node {
    process: JunctionProcess,
    ws_port: u16,
    rs_port: u16,
    unix_path: PathBuf,
}

fn node() -> &'static Node {
    static NODE: OnceLock<Result<Node, String>> = OnceLock::new();
    common::once_or_fail(&NODE, || {
        let (ws_port, rs_port) = (free_port(), free_port());
        let unix_path = temp_path("bad", "sock");
        let config = node_config(
            vec![realm("realm1", vec![allow_all_role("anonymous")])],
            vec![
                json!({
                    "type": "web",
                    "endpoint": {"type": "tcp", "port": ws_port, "interface": "127.0.0.1"},
                    "paths": {"ws": {
                        "type": "websocket",
                        "serializers": ["json", "msgpack", "cbor", "flatbuffers"],
                        "options": {"open_handshake_timeout": HANDSHAKE_TIMEOUT_MS}
                    }}
                }),
                json!({
                    "type": "rawsocket",
                    "endpoint": {"type": "tcp", "port": rs_port, "interface": "127.0.0.1"},
                    "serializers": ["json", "msgpack", "cbor", "flatbuffers"],
                    "max_message_size": RS_MAX_MESSAGE,
                    "options": {"handshake_timeout": HANDSHAKE_TIMEOUT_MS}
                }),
                json!({
                    "type": "rawsocket",
                    "endpoint": {"type": "unix", "path": unix_path},
                    "serializers": ["json"],
                    "options": {"handshake_timeout": HANDSHAKE_TIMEOUT_MS}
                }),
            ],
        );
        Node { process: JunctionProcess::start(config), ws_port, rs_port, unix_path }
    })
}

fn connect(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).unwrap_or_else(|e| panic!("connect 127.0.0.1:{port}: {e}"));
    s.set_read_timeout(Some(READ_DEADLINE)).expect("set read timeout");
    // A server that stops reading without closing must not hang a test.
    s.set_write_timeout(Some(READ_DEADLINE)).expect("set write timeout");
    s.set_nodelay(true).ok();
    s
}

/// What a read loop ended with.
#[derive(Debug, PartialEq)]
enum End {
    /// Orderly EOF or connection reset: the server closed the connection.
    Closed,
    /// Nothing happened before the deadline.
    TimedOut,
}

/// Reads everything until the peer closes or `deadline` passes.
fn read_to_end(s: &mut impl Read, deadline: Duration) -> (Vec<u8>, End) {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return (got, End::Closed),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                assert!(got.len() < 1 << 20, "server sent more than 1 MiB to a broken peer");
            }
            Err(e) if matches!(e.kind(), ErrorKind::ConnectionReset | ErrorKind::BrokenPipe) => {
                return (got, End::Closed)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if start.elapsed() >= deadline {
                    return (got, End::TimedOut);
                }
            }
            Err(e) => panic!("read: {e}"),
        }
        if start.elapsed() >= deadline {
            return (got, End::TimedOut);
        }
    }
}

/// Reads exactly `n` bytes (panics on EOF or deadline).
fn read_exact(s: &mut impl Read, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    s.read_exact(&mut v).unwrap_or_else(|e| panic!("reading {n} bytes: {e}"));
    v
}

/// Writes, ignoring errors caused by the server having closed already.
fn write_lenient(s: &mut impl Write, bytes: &[u8]) {
    if let Err(e) = s.write_all(bytes) {
        assert!(
            matches!(e.kind(), ErrorKind::BrokenPipe | ErrorKind::ConnectionReset),
            "write failed unexpectedly: {e}"
        );
    }
}

// ------------------------------------------------------------ RawSocket helpers

/// RawSocket serializer ids.
const RS_JSON: u8 = 1;

/// Client handshake asking for max length 2^(9+len_exp) and `serializer`.
fn rs_hello(len_exp: u8, serializer: u8) -> [u8; 4] {
    [0x7F, (len_exp << 4) | serializer, 0, 0]
}

/// A RawSocket frame: type (0 = WAMP message, 1 = PING, 2 = PONG) + payload.
fn rs_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    common::rawsocket::frame(kind, payload)
}

/// Reads one RawSocket frame: (type, payload). None on EOF.
fn rs_read_frame(s: &mut impl Read) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 4];
    match s.read_exact(&mut h) {
        Ok(()) => {}
        Err(e) if matches!(e.kind(), ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset) => return None,
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
            panic!("the router neither answered nor closed the connection within {READ_DEADLINE:?}")
        }
        Err(e) => panic!("reading a RawSocket frame header: {e}"),
    }
    let n = ((h[1] as usize) << 16) | ((h[2] as usize) << 8) | h[3] as usize;
    assert!(n <= 1 << 24, "frame length {n}");
    Some((h[0] & 0x07, read_exact(s, n)))
}

/// Reads WAMP messages (JSON) until EOF; answers PINGs.
fn rs_read_messages_until_close(s: &mut (impl Read + Write)) -> Vec<Value> {
    let mut msgs = Vec::new();
    while let Some((kind, payload)) = rs_read_frame(s) {
        match kind {
            0 => {
                msgs.push(serde_json::from_slice(&payload).unwrap_or_else(|e| {
                    panic!("server sent invalid JSON ({e}): {:?}", String::from_utf8_lossy(&payload))
                }))
            }
            1 => write_lenient(s, &rs_frame(2, &payload)),
            _ => {}
        }
        assert!(msgs.len() < 100, "server keeps talking to a broken peer: {msgs:?}");
    }
    msgs
}

/// Opens a RawSocket/JSON session on realm1: handshake, HELLO, WELCOME.
fn rs_json_session(port: u16) -> TcpStream {
    let mut s = connect(port);
    s.write_all(&rs_hello(0xF, RS_JSON)).expect("send handshake");
    let reply = read_exact(&mut s, 4);
    assert_eq!(reply[0], 0x7F, "handshake reply magic: {reply:?}");
    assert_eq!(reply[1] & 0x0F, RS_JSON, "handshake reply serializer: {reply:?}");
    assert_eq!(&reply[2..], &[0, 0], "handshake reply reserved bytes: {reply:?}");
    let hello = json!([1, "realm1", {"roles": {"publisher": {}, "subscriber": {}, "caller": {}, "callee": {}}}]);
    s.write_all(&rs_frame(0, hello.to_string().as_bytes())).expect("send HELLO");
    let (kind, payload) = rs_read_frame(&mut s).expect("WELCOME frame");
    assert_eq!(kind, 0, "expected a WAMP message frame");
    let welcome: Value = serde_json::from_slice(&payload).expect("WELCOME is JSON");
    assert_eq!(welcome[0], 2, "expected WELCOME, got {welcome}");
    assert!(welcome[1].as_u64().is_some_and(|id| (1..=1u64 << 53).contains(&id)), "session id: {welcome}");
    s
}

fn assert_abort(msgs: &[Value], reason: &str) {
    assert!(msgs.iter().any(|m| m[0] == 3 && m[2] == reason), "expected ABORT {reason}, got {msgs:?}");
}

// ------------------------------------------------------------ RawSocket abuse

fn rs_bad_magic() {
    let mut s = connect(node().rs_port);
    write_lenient(&mut s, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    let (got, end) = read_to_end(&mut s, READ_DEADLINE);
    assert_eq!(end, End::Closed, "connection with bad magic not closed");
    assert!(got.is_empty(), "server replied to bad magic: {got:?}");
}

fn rs_garbage() {
    let mut s = connect(node().rs_port);
    // Valid magic, then reserved bytes set and garbage after.
    write_lenient(&mut s, &[0x7F, 0xF1, 0xFF, 0xFF, 0xDE, 0xAD, 0xBE, 0xEF, 0x00, 0x13]);
    let (got, end) = read_to_end(&mut s, READ_DEADLINE);
    assert_eq!(end, End::Closed, "connection sending garbage not closed (got {got:?})");
    if !got.is_empty() {
        // An error handshake: 0x7F, error code in the high nibble, 0, 0.
        assert_eq!(got.len(), 4, "unexpected reply to garbage: {got:?}");
        assert_eq!(got[0], 0x7F, "reply magic: {got:?}");
        assert!(got[1] >> 4 != 0 && got[1] & 0x0F == 0, "not an error reply: {got:?}");
    }
}

fn rs_unknown_serializer() {
    let mut s = connect(node().rs_port);
    s.write_all(&rs_hello(0xF, 0x0E)).expect("send handshake");
    let (got, end) = read_to_end(&mut s, READ_DEADLINE);
    assert_eq!(got, vec![0x7F, 0x10, 0x00, 0x00], "expected error reply 1 (serializer unsupported)");
    assert_eq!(end, End::Closed, "connection not closed after the error reply");
}

fn rs_oversized_frame() {
    let mut s = connect(node().rs_port);
    s.write_all(&rs_hello(0xF, RS_JSON)).expect("send handshake");
    let reply = read_exact(&mut s, 4);
    assert_eq!(reply[0], 0x7F, "handshake reply: {reply:?}");
    // The router announces its own maximum: 2^(9+L) must not exceed the
    // configured max_message_size.
    let announced = 1usize << (9 + (reply[1] >> 4));
    assert!(announced <= RS_MAX_MESSAGE, "router announced {announced} > configured {RS_MAX_MESSAGE}");
    // A frame header claiming 1 MiB, and a little of it.
    write_lenient(&mut s, &[0, 0x10, 0, 0]);
    write_lenient(&mut s, &[b'['; 512]);
    let (_, end) = read_to_end(&mut s, READ_DEADLINE);
    assert_eq!(end, End::Closed, "connection with an oversized frame not closed");
}

fn rs_silent_client() {
    let started = Instant::now();
    let mut s = connect(node().rs_port);
    let (got, end) = read_to_end(&mut s, READ_DEADLINE);
    assert_eq!(end, End::Closed, "silent RawSocket client not closed within {READ_DEADLINE:?}");
    assert!(got.is_empty(), "server sent {got:?} to a silent client");
    assert!(
        started.elapsed() >= Duration::from_millis(HANDSHAKE_TIMEOUT_MS / 2),
        "closed after {:?}, before the handshake timeout",
        started.elapsed()
    );
}

fn rs_no_hello_after_handshake() {
    let mut s = connect(node().rs_port);
    s.write_all(&rs_hello(0xF, RS_JSON)).expect("send handshake");
    let reply = read_exact(&mut s, 4);
    assert_eq!(reply[0], 0x7F, "handshake reply: {reply:?}");
    // Never send HELLO: the open handshake timeout covers it.
    let (_, end) = read_to_end(&mut s, READ_DEADLINE);
    assert_eq!(end, End::Closed, "session without HELLO not closed within {READ_DEADLINE:?}");
}

fn rs_malformed_after_welcome() {
    let mut s = rs_json_session(node().rs_port);
    // PUBLISH with a string request id.
    s.write_all(&rs_frame(0, br#"[16, "notanid", {}]"#)).expect("send bad PUBLISH");
    let msgs = rs_read_messages_until_close(&mut s);
    assert_abort(&msgs, "wamp.error.protocol_violation");
}

fn rs_invalid_json_after_welcome() {
    let mut s = rs_json_session(node().rs_port);
    s.write_all(&rs_frame(0, br#"[16, 1, {}, "com.x", [1, 2"#)).expect("send truncated JSON");
    let msgs = rs_read_messages_until_close(&mut s);
    // The session ends; if the router says why, it is a protocol violation.
    assert!(
        msgs.iter().all(|m| m[0] != 3 || m[2] == "wamp.error.protocol_violation"),
        "unexpected ABORT reason: {msgs:?}"
    );
}

fn rs_message_before_hello() {
    let mut s = connect(node().rs_port);
    s.write_all(&rs_hello(0xF, RS_JSON)).expect("send handshake");
    let _ = read_exact(&mut s, 4);
    s.write_all(&rs_frame(0, br#"[32, 1, {}, "com.x"]"#)).expect("send SUBSCRIBE");
    let msgs = rs_read_messages_until_close(&mut s);
    assert!(msgs.iter().all(|m| m[0] != 2), "router WELCOMEd a session that never said HELLO: {msgs:?}");
    assert!(
        msgs.iter().all(|m| m[0] == 3 && m[2] == "wamp.error.protocol_violation"),
        "expected nothing or ABORT protocol_violation: {msgs:?}"
    );
}

fn rs_hello_unknown_realm() {
    let mut s = connect(node().rs_port);
    s.write_all(&rs_hello(0xF, RS_JSON)).expect("send handshake");
    let _ = read_exact(&mut s, 4);
    let hello = json!([1, "no.such.realm", {"roles": {"subscriber": {}}}]);
    s.write_all(&rs_frame(0, hello.to_string().as_bytes())).expect("send HELLO");
    let msgs = rs_read_messages_until_close(&mut s);
    assert_abort(&msgs, "wamp.error.no_such_realm");
}

fn unix_bad_magic() {
    let mut s = UnixStream::connect(&node().unix_path).expect("connect unix socket");
    s.set_read_timeout(Some(READ_DEADLINE)).expect("set read timeout");
    write_lenient(&mut s, b"\x00\x00\x00\x00garbage");
    let (got, end) = read_to_end(&mut s, READ_DEADLINE);
    assert_eq!(end, End::Closed, "unix connection with bad magic not closed");
    assert!(got.is_empty(), "server replied to bad magic: {got:?}");
}

fn rs_half_close_mid_frame() {
    let mut s = rs_json_session(node().rs_port);
    // Half a frame, then FIN.
    write_lenient(&mut s, &[0, 0, 0, 100, b'[', b'1']);
    s.shutdown(Shutdown::Write).ok();
    let (_, end) = read_to_end(&mut s, READ_DEADLINE);
    assert_eq!(end, End::Closed, "connection that sent half a frame and FIN not closed");
}

// ------------------------------------------------------------ WebSocket abuse

fn http_status(request: &str) -> String {
    let mut s = connect(node().ws_port);
    write_lenient(&mut s, request.as_bytes());
    let (got, _) = read_to_end(&mut s, READ_DEADLINE);
    let text = String::from_utf8_lossy(&got).into_owned();
    text.lines().next().unwrap_or("").to_string()
}

fn upgrade_request(path: &str, key: &str, protocol: Option<&str>) -> String {
    let mut r = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
    );
    if let Some(p) = protocol {
        r.push_str(&format!("Sec-WebSocket-Protocol: {p}\r\n"));
    }
    r.push_str("\r\n");
    r
}

/// The RFC 6455 section 1.3 example key.
const GOOD_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn ws_good_upgrade() {
    let mut s = connect(node().ws_port);
    s.write_all(upgrade_request("/ws", GOOD_KEY, Some("wamp.2.json")).as_bytes()).expect("send upgrade");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert!(head.len() < 16384, "response head too long");
        match s.read(&mut b) {
            Ok(1) => head.push(b[0]),
            other => panic!("reading the upgrade response: {other:?} after {:?}", String::from_utf8_lossy(&head)),
        }
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "upgrade refused: {head}");
    // RFC 6455 section 1.3 gives the accept value for this key.
    assert!(head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="), "bad accept header: {head}");
    assert!(head.contains("sec-websocket-protocol: wamp.2.json"), "subprotocol not confirmed: {head}");
}

fn ws_bad_key() {
    let status = http_status(&upgrade_request("/ws", "not a valid key!", Some("wamp.2.json")));
    assert!(status.starts_with("HTTP/1.1 400"), "bad key gave {status:?}");
}

fn ws_no_subprotocol() {
    let status = http_status(&upgrade_request("/ws", GOOD_KEY, None));
    assert!(status.starts_with("HTTP/1.1 400"), "upgrade without subprotocol gave {status:?}");
}

fn ws_unknown_subprotocol() {
    let status = http_status(&upgrade_request("/ws", GOOD_KEY, Some("wamp.2.xml")));
    assert!(status.starts_with("HTTP/1.1 400"), "unknown subprotocol gave {status:?}");
}

fn ws_wrong_path() {
    let status = http_status(&upgrade_request("/nope", GOOD_KEY, Some("wamp.2.json")));
    assert!(status.starts_with("HTTP/1.1 404"), "wrong path gave {status:?}");
}

fn ws_not_http() {
    let mut s = connect(node().ws_port);
    write_lenient(&mut s, &[0x7F, 0xF1, 0, 0, 0xFF, 0xFE, 0x00, 0x0D, 0x0A, 0x0D, 0x0A]);
    let (got, end) = read_to_end(&mut s, READ_DEADLINE);
    assert_eq!(end, End::Closed, "non-HTTP bytes on the WebSocket port: connection not closed");
    let text = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || text.starts_with("HTTP/1.1 400"), "unexpected reply: {text:?}");
}

fn ws_silent_client() {
    let mut s = connect(node().ws_port);
    let (got, end) = read_to_end(&mut s, READ_DEADLINE);
    assert_eq!(end, End::Closed, "silent WebSocket client not closed within {READ_DEADLINE:?}");
    let text = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || text.starts_with("HTTP/1.1 408"), "unexpected reply: {text:?}");
}

fn ws_huge_header() {
    let mut s = connect(node().ws_port);
    let mut req = String::from("GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\n");
    for i in 0..2000 {
        req.push_str(&format!("X-Filler-{i}: {}\r\n", "a".repeat(60)));
    }
    write_lenient(&mut s, req.as_bytes());
    let (got, end) = read_to_end(&mut s, READ_DEADLINE);
    assert_eq!(end, End::Closed, "endless request head: connection not closed");
    let text = String::from_utf8_lossy(&got);
    assert!(got.is_empty() || text.starts_with("HTTP/1.1 4"), "unexpected reply: {text:?}");
}

// ------------------------------------------------------------ tests

macro_rules! tests {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                super::$name();
            }
        )*

        /// Every kind of abuse again, several times, then a normal
        /// Autobahn pub/sub on the same node: the router is unaffected.
        #[test]
        fn router_survives_abuse() {
            for _ in 0..3 {
                $(super::$name();)*
            }
            let n = super::node();
            let url = format!("ws://127.0.0.1:{}/ws", n.ws_port);
            let rs = format!("rs://127.0.0.1:{}", n.rs_port);
            // Small "big" payload: this node's RawSocket max is 4 KiB.
            let args = [&*url, "realm1", "cbor", "--pub-url", &rs, "--pub-serializer", "json", "--big-bytes", "1024"];
            let r = n.process.python("pubsub.py", &args);
            assert_eq!(r["ok"], true, "{r}");
            assert_eq!(r["sub_events"], 3, "{r}");
        }
    };
}

mod abuse {
    tests!(
        rs_bad_magic,
        rs_garbage,
        rs_unknown_serializer,
        rs_oversized_frame,
        rs_silent_client,
        rs_no_hello_after_handshake,
        rs_malformed_after_welcome,
        rs_invalid_json_after_welcome,
        rs_message_before_hello,
        rs_hello_unknown_realm,
        rs_half_close_mid_frame,
        unix_bad_magic,
        ws_good_upgrade,
        ws_bad_key,
        ws_no_subprotocol,
        ws_unknown_subprotocol,
        ws_wrong_path,
        ws_not_http,
        ws_silent_client,
        ws_huge_header,
    );
}
