//! A hand-driven RawSocket client over a std socket: frames, and a JSON
//! join of a realm. For tests that need bytes no WAMP library sends (or
//! does not answer), such as silent clients and malformed frames.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// A RawSocket frame: type (0 = WAMP message, 1 = PING, 2 = PONG) + payload.
pub fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let n = payload.len();
    let mut v = vec![kind, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    v.extend_from_slice(payload);
    v
}

/// Reads one frame: (type, payload), `None` at EOF (or a read error).
pub fn read_frame(s: &mut TcpStream) -> Option<(u8, Vec<u8>)> {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).ok()?;
    let n = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
    let mut p = vec![0u8; n];
    s.read_exact(&mut p).ok()?;
    Some((h[0] & 0x07, p))
}

/// Connects and does the RawSocket handshake for JSON (reads time out
/// after 10 s).
pub fn connect_json(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
    s.write_all(&[0x7F, 0xF1, 0, 0]).expect("handshake");
    let mut reply = [0u8; 4];
    s.read_exact(&mut reply).expect("handshake reply");
    assert_eq!(reply[0], 0x7F, "RawSocket handshake accepted: {reply:?}");
    s
}

/// Joins `realm` over RawSocket/JSON as a caller; the stream after WELCOME.
pub fn join(port: u16, realm: &str) -> TcpStream {
    let mut s = connect_json(port);
    let hello = serde_json::json!([1, realm, {"roles": {"caller": {}}}]).to_string();
    s.write_all(&frame(0, hello.as_bytes())).expect("HELLO");
    let (kind, welcome) = read_frame(&mut s).expect("WELCOME");
    assert_eq!(kind, 0);
    assert!(welcome.starts_with(b"[2,"), "expected WELCOME: {}", String::from_utf8_lossy(&welcome));
    s
}
