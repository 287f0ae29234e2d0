//! WebSocket opening handshake tests.

use wamp_framing::websocket::{HandshakeError, HandshakeStatus, ServerHandshake, WebSocketConfig};
use wamp_framing::{WebSocket, WsEvent};
use wamp_proto::Serializer;

const SAMPLE_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";

fn request_with(extra: &[&str], skip: &[&str]) -> String {
    let base = [
        "GET /ws HTTP/1.1",
        "Host: server.example.com",
        "Upgrade: websocket",
        "Connection: Upgrade",
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version: 13",
        "Sec-WebSocket-Protocol: wamp.2.json",
    ];
    let mut s = String::new();
    for line in base {
        let name = line.split(':').next().unwrap_or("");
        if skip.iter().any(|k| name.eq_ignore_ascii_case(k) || line.starts_with(k)) {
            continue;
        }
        s.push_str(line);
        s.push_str("\r\n");
    }
    for e in extra {
        s.push_str(e);
        s.push_str("\r\n");
    }
    s.push_str("\r\n");
    s
}

fn config() -> WebSocketConfig {
    WebSocketConfig { paths: vec!["/ws".to_owned()], ..WebSocketConfig::default() }
}

fn run(req: &[u8], cfg: &WebSocketConfig) -> HandshakeStatus {
    let mut hs = ServerHandshake::new();
    hs.feed(req);
    hs.poll(cfg)
}

fn rejected(req: &str, cfg: &WebSocketConfig) -> (HandshakeError, String) {
    match run(req.as_bytes(), cfg) {
        HandshakeStatus::Rejected(r) => {
            let text = String::from_utf8(r.response.to_vec()).expect("response is ASCII");
            (r.error, text)
        }
        other => panic!("expected rejection, got {other:?}"),
    }
}

fn assert_well_formed_error(text: &str, status: u16) {
    let (head, body) = text.split_once("\r\n\r\n").expect("head/body separator");
    assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "status line: {head}");
    assert!(head.contains("\r\nContent-Type: text/plain"), "{head}");
    assert!(head.contains("\r\nConnection: close"), "{head}");
    let cl = head.lines().find_map(|l| l.strip_prefix("Content-Length: ")).expect("Content-Length");
    assert_eq!(cl.parse::<usize>().expect("number"), body.len());
    assert!(!body.trim().is_empty());
}

#[test]
fn rfc_sample_key_gives_exact_101() {
    let req = request_with(&[], &[]);
    let HandshakeStatus::Accepted(a) = run(req.as_bytes(), &config()) else { panic!("not accepted") };
    assert_eq!(
        &a.response[..],
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: wamp.2.json\r\n\r\n"
    );
    assert_eq!(a.serializer, Serializer::Json);
    assert_eq!(a.request.protocol, Some("wamp.2.json"));
    assert_eq!(a.request.path, "/ws");
    assert!(a.leftover.is_empty());
    assert_eq!(wamp_framing::websocket::accept_key(SAMPLE_KEY), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

#[test]
fn request_details_are_reported() {
    let req = "GET /ws?x=1 HTTP/1.1\r\nhost: h.example\r\nUser-Agent: AutobahnPython/23\r\n\
X-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2\r\nupgrade: WebSocket\r\n\
connection: keep-alive, UPGRADE\r\nsec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
sec-websocket-version: 13\r\nOrigin: https://app.example.com\r\n\
Sec-WebSocket-Protocol: foo, wamp.2.cbor\r\nSec-WebSocket-Protocol: wamp.2.json\r\n\r\n";
    let HandshakeStatus::Accepted(a) = run(req.as_bytes(), &config()) else { panic!("not accepted") };
    let r = &a.request;
    assert_eq!(r.path, "/ws");
    assert_eq!(r.query.as_deref(), Some("x=1"));
    assert_eq!(r.host.as_deref(), Some("h.example"));
    assert_eq!(r.user_agent.as_deref(), Some("AutobahnPython/23"));
    assert_eq!(r.origin.as_deref(), Some("https://app.example.com"));
    assert_eq!(r.x_forwarded_for.as_deref(), Some("10.0.0.1, 10.0.0.2"));
    assert_eq!(r.header("USER-AGENT"), Some("AutobahnPython/23"));
    // First client-offered acceptable protocol wins (cbor before json).
    assert_eq!(a.serializer, Serializer::Cbor);
    assert_eq!(r.protocol, Some("wamp.2.cbor"));
    assert!(std::str::from_utf8(&a.response).expect("ascii").contains("\r\nSec-WebSocket-Protocol: wamp.2.cbor\r\n"));
}

#[test]
fn client_order_decides_among_accepted_serializers() {
    let cfg = WebSocketConfig { serializers: vec![Serializer::Json, Serializer::Cbor], ..config() };
    let req = request_with(
        &["Sec-WebSocket-Protocol: wamp.2.msgpack, wamp.2.json, wamp.2.cbor"],
        &["Sec-WebSocket-Protocol"],
    );
    let HandshakeStatus::Accepted(a) = run(req.as_bytes(), &cfg) else { panic!("not accepted") };
    assert_eq!(a.serializer, Serializer::Json);
}

#[test]
fn split_byte_by_byte_equals_one_shot() {
    let mut req = request_with(&["User-Agent: test"], &[]).into_bytes();
    let tail = [0x81u8, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    req.extend_from_slice(&tail);
    let HandshakeStatus::Accepted(one) = run(&req, &config()) else { panic!("one-shot not accepted") };
    let mut hs = ServerHandshake::new();
    let head_len = req.len() - tail.len();
    let mut result = None;
    for (i, b) in req.iter().enumerate() {
        hs.feed(std::slice::from_ref(b));
        if result.is_none() {
            match hs.poll(&config()) {
                HandshakeStatus::Partial => assert!(i + 1 < head_len, "partial after full head at {i}"),
                HandshakeStatus::Accepted(a) => {
                    assert_eq!(i + 1, head_len, "accepted early at {i}");
                    result = Some(a);
                }
                HandshakeStatus::Rejected(r) => panic!("rejected: {:?}", r.error),
            }
        }
    }
    let a = result.expect("accepted");
    assert_eq!(a.response, one.response);
    assert_eq!(a.request, one.request);
    // Bytes fed after acceptance are not part of the handshake; the one-shot
    // leftover is the frame stream start.
    assert_eq!(&one.leftover[..], &tail[..]);
    assert!(a.leftover.is_empty());
    let mut ws = WebSocket::with_buffer(one.leftover, Default::default());
    assert_eq!(
        ws.poll_event().expect("ok"),
        Some(WsEvent::Message { binary: false, data: bytes::Bytes::from_static(b"Hello") })
    );
}

#[test]
fn rejections_map_to_status_codes() {
    let cfg = config();
    let cases: Vec<(String, u16)> = vec![
        (request_with(&[], &[]).replacen("GET", "POST", 1), 405),
        (request_with(&[], &[]).replacen("HTTP/1.1", "HTTP/1.0", 1), 400),
        (request_with(&[], &[]).replacen("/ws", "/other", 1), 404),
        (request_with(&[], &[]).replacen("/ws", "/ws/", 1), 404),
        (request_with(&[], &["Host"]), 400),
        (request_with(&[], &["Upgrade"]), 400),
        (request_with(&["Upgrade: h2c"], &["Upgrade"]), 400),
        (request_with(&[], &["Connection"]), 400),
        (request_with(&["Connection: keep-alive"], &["Connection"]), 400),
        (request_with(&[], &["Sec-WebSocket-Version"]), 426),
        (request_with(&["Sec-WebSocket-Version: 8"], &["Sec-WebSocket-Version"]), 426),
        (request_with(&[], &["Sec-WebSocket-Key"]), 400),
        (request_with(&["Sec-WebSocket-Key: c2hvcnQ="], &["Sec-WebSocket-Key"]), 400),
        (request_with(&["Sec-WebSocket-Key: !!notbase64!!"], &["Sec-WebSocket-Key"]), 400),
        (request_with(&["Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="], &[]), 400),
        (request_with(&[], &["Sec-WebSocket-Protocol"]), 400),
        (request_with(&["Sec-WebSocket-Protocol: wamp.2.ubjson, mqtt"], &["Sec-WebSocket-Protocol"]), 400),
        ("GARBAGE\r\n\r\n".to_owned(), 400),
        ("GET /ws HTTP/1.1\r\nBad Header\r\n\r\n".to_owned(), 400),
    ];
    for (req, status) in cases {
        let (err, text) = rejected(&req, &cfg);
        assert_eq!(err.status(), status, "request {req:?} gave {err:?}");
        assert_well_formed_error(&text, status);
    }
}

#[test]
fn version_mismatch_advertises_13() {
    let req = request_with(&["Sec-WebSocket-Version: 8"], &["Sec-WebSocket-Version"]);
    let (err, text) = rejected(&req, &config());
    assert!(matches!(err, HandshakeError::Version(ref v) if v == "8"));
    assert!(text.contains("\r\nSec-WebSocket-Version: 13\r\n"));
}

#[test]
fn unsupported_subprotocol_body_is_clear() {
    let cfg = WebSocketConfig { serializers: vec![Serializer::Cbor], ..config() };
    let (err, text) = rejected(&request_with(&[], &[]), &cfg);
    assert!(matches!(err, HandshakeError::UnsupportedSubprotocol { .. }));
    assert!(text.contains("wamp.2.json"), "{text}");
    assert!(text.contains("supported: wamp.2.cbor"), "{text}");
}

#[test]
fn missing_subprotocol_is_configurable() {
    let req = request_with(&[], &["Sec-WebSocket-Protocol"]);
    let (err, _) = rejected(&req, &config());
    assert!(matches!(err, HandshakeError::NoSubprotocol(_)));

    let lenient = WebSocketConfig { require_subprotocol: false, ..config() };
    let HandshakeStatus::Accepted(a) = run(req.as_bytes(), &lenient) else { panic!("not accepted") };
    assert_eq!(a.serializer, Serializer::Json);
    assert_eq!(a.request.protocol, None);
    assert!(!std::str::from_utf8(&a.response).expect("ascii").contains("Sec-WebSocket-Protocol"));

    // Lenient, but JSON not accepted: still rejected.
    let no_json = WebSocketConfig { serializers: vec![Serializer::Msgpack], ..lenient };
    let (err, _) = rejected(&req, &no_json);
    assert!(matches!(err, HandshakeError::NoSubprotocol(_)));
}

#[test]
fn origin_check() {
    let with_list = |list: &[&str]| WebSocketConfig {
        allowed_origins: Some(list.iter().map(|s| s.to_string()).collect()),
        ..config()
    };
    let req = request_with(&["Origin: https://app.example.com"], &[]);
    let accepted = |cfg: &WebSocketConfig| matches!(run(req.as_bytes(), cfg), HandshakeStatus::Accepted(_));
    assert!(accepted(&config()), "no list = no check");
    assert!(accepted(&with_list(&["*"])));
    assert!(accepted(&with_list(&["https://APP.example.com"])));
    assert!(accepted(&with_list(&["http://x", "https://*.example.com"])));
    assert!(!accepted(&with_list(&["https://other.example.com"])));
    assert!(!accepted(&with_list(&["http://*.example.com"])));
    assert!(!accepted(&with_list(&[])));
    let (err, text) = rejected(&req, &with_list(&["https://other.example.com"]));
    assert_eq!(err.status(), 403);
    assert_well_formed_error(&text, 403);
    // No Origin header (non-browser client) is allowed even with a list.
    let plain = request_with(&[], &[]);
    assert!(matches!(run(plain.as_bytes(), &with_list(&["https://other.example.com"])), HandshakeStatus::Accepted(_)));
}

#[test]
fn empty_path_list_accepts_any_path() {
    let cfg = WebSocketConfig::default();
    let req = request_with(&[], &[]).replacen("/ws", "/anything", 1);
    assert!(matches!(run(req.as_bytes(), &cfg), HandshakeStatus::Accepted(_)));
}

#[test]
fn oversized_head_is_431_even_before_completion() {
    let mut cfg = config();
    cfg.limits.max_handshake_size = 256;
    let mut hs = ServerHandshake::new();
    hs.feed(b"GET /ws HTTP/1.1\r\nX-Pad: ");
    assert_eq!(hs.poll(&cfg), HandshakeStatus::Partial);
    hs.feed(&[b'a'; 300]);
    let HandshakeStatus::Rejected(r) = hs.poll(&cfg) else { panic!("expected 431") };
    assert_eq!(r.error, HandshakeError::HeadTooLarge(256));
    assert_well_formed_error(std::str::from_utf8(&r.response).expect("ascii"), 431);

    // Complete but too large.
    let req = request_with(&[&format!("X-Pad: {}", "b".repeat(300))], &[]);
    let (err, _) = rejected(&req, &cfg);
    assert_eq!(err.status(), 431);
    // A complete request just under the limit passes.
    cfg.limits.max_handshake_size = request_with(&[], &[]).len();
    assert!(matches!(run(request_with(&[], &[]).as_bytes(), &cfg), HandshakeStatus::Accepted(_)));
}

#[test]
fn too_many_headers_is_431() {
    let pads: Vec<String> = (0..80).map(|i| format!("X-H{i}: v")).collect();
    let refs: Vec<&str> = pads.iter().map(String::as_str).collect();
    let (err, _) = rejected(&request_with(&refs, &[]), &config());
    assert_eq!(err, HandshakeError::TooManyHeaders);
    assert_eq!(err.status(), 431);
}

#[test]
fn finished_handshake_ignores_further_input() {
    let mut hs = ServerHandshake::new();
    hs.feed(request_with(&[], &[]).as_bytes());
    assert!(matches!(hs.poll(&config()), HandshakeStatus::Accepted(_)));
    hs.feed(request_with(&[], &[]).as_bytes());
    assert_eq!(hs.poll(&config()), HandshakeStatus::Partial);
    assert_eq!(hs.read_buf().len(), 0);
}
