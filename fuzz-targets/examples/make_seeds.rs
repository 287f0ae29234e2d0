//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`
//! (files named `seed-*`; what the fuzzer adds has other names).
//!
//!     cargo run -p fuzz-targets --example make_seeds [-- /path/to/wamp-testsuite]
//!
//! Sources: the WAMP test vectors of the shared wamp-testsuite (default
//! `../shared/wamp-testsuite` next to the checkout: every `bytes_hex` sample
//! of the four serializers Junction speaks, plus each JSON sample
//! re-encoded in the other three), the handshakes, frames and bodies the
//! crates' unit tests build, and junction-config's example files. Rerunning
//! it is idempotent (same names, same bytes).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use router_core::engine::authz::MatchPolicy;
use router_core::engine::cluster::{PeerMsg, RemoteSession};
use wamp_framing::link::{self, AuthCall, AuthResult, ChannelId, LinkAccept, LinkFrame, LinkHello, OpenRequest};
use wamp_framing::rawsocket::{self, FrameKind};
use wamp_framing::websocket::frame::{write_masked_frame, OpCode};
use wamp_proto::{Dict, Message, Payload, PublicationId, Serializer, SessionId, Value};

#[derive(Default)]
struct Seeds(BTreeMap<&'static str, BTreeMap<String, Vec<u8>>>);

impl Seeds {
    fn add(&mut self, target: &'static str, name: impl Into<String>, data: impl Into<Vec<u8>>) {
        let data = data.into();
        let set = self.0.entry(target).or_default();
        if set.values().any(|d| *d == data) {
            return;
        }
        set.insert(name.into(), data);
    }
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let suite = std::env::args().nth(1).map(PathBuf::from).unwrap_or_else(|| root.join("../shared/wamp-testsuite"));
    let mut s = Seeds::default();
    let messages = testsuite(&suite, &mut s);
    wamp_extras(&mut s);
    websocket(&messages, &mut s);
    raw(&messages, &mut s);
    links(&messages, &mut s);
    peers(&messages, &mut s);
    http(&mut s);
    config(&root, &mut s);

    let corpus = root.join("fuzz/corpus");
    for (target, files) in &s.0 {
        let dir = corpus.join(target);
        std::fs::create_dir_all(&dir).expect("create corpus dir");
        for (name, data) in files {
            std::fs::write(dir.join(format!("seed-{name}")), data).expect("write seed");
        }
        println!("{target}: {} seeds", files.len());
    }
}

/// Every sample of the test vectors; returns the JSON-decoded messages.
fn testsuite(dir: &Path, s: &mut Seeds) -> Vec<(String, Message)> {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort();
    assert!(!files.is_empty(), "no test vectors under {} (pass the wamp-testsuite path)", dir.display());
    let mut messages = Vec::new();
    for f in files {
        let stem = f.file_stem().and_then(|x| x.to_str()).unwrap_or("x").to_string();
        let text = std::fs::read_to_string(&f).expect("read test vector");
        let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else { continue };
        let Some(samples) = v.get("samples").and_then(|x| x.as_array()) else { continue };
        for (i, sample) in samples.iter().enumerate() {
            let Some(sers) = sample.get("serializers").and_then(|x| x.as_object()) else { continue };
            for (ser_name, target) in [
                ("json", "wamp_json"),
                ("msgpack", "wamp_msgpack"),
                ("cbor", "wamp_cbor"),
                ("flatbuffers", "wamp_flatbuffers"),
            ] {
                let Some(list) = sers.get(ser_name).and_then(|x| x.as_array()) else { continue };
                for (j, enc) in list.iter().enumerate() {
                    let Some(bytes) = enc.get("bytes_hex").and_then(|x| x.as_str()).and_then(wamp_proto::hex::decode)
                    else {
                        continue;
                    };
                    if ser_name == "json" {
                        if let Ok(m) = Serializer::Json.decode(&Bytes::from(bytes.clone())) {
                            messages.push((format!("{stem}-{i}-{j}"), m));
                        }
                    }
                    s.add(target, format!("suite-{stem}-{i}-{j}"), bytes);
                }
            }
        }
    }
    // Each message in the serializers its vector lacks.
    for (name, m) in &messages {
        for (ser, target) in [
            (Serializer::Msgpack, "wamp_msgpack"),
            (Serializer::Cbor, "wamp_cbor"),
            (Serializer::Flatbuffers, "wamp_flatbuffers"),
        ] {
            if let Ok(b) = ser.encode(m) {
                s.add(target, format!("suite-{name}-reenc"), b.to_vec());
            }
        }
    }
    messages
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else { return };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else if p.extension().is_some_and(|x| x == "json") && p.file_name().is_some_and(|n| n != "SCHEMA.json") {
            out.push(p);
        }
    }
}

/// Shapes the codec unit tests exercise that the vectors lack.
fn wamp_extras(s: &mut Seeds) {
    let json: &[(&str, &str)] = &[
        ("kwargs", r#"[16,1,{"acknowledge":true},"com.t",[1,2.5,-3,null,true],{"k":{"n":[{}]}}]"#),
        ("binary", r#"[48,2,{},"com.p",["\u0000AAEC"]]"#),
        ("ppt", r#"[16,3,{"ppt_scheme":"x","enc_algo":"a"},"com.t",["\u0000AAEC"]]"#),
        ("unicode", r#"[36,1,2,{},["\u00e9\ud83d\ude00"],{"\u00e9":1}]"#),
        ("bigint", r#"[8,48,9007199254740992,{},"wamp.error.x",[18446744073709551615,-9223372036854775808,1e308]]"#),
        ("unsubscribed-details", r#"[35,0,{"subscription":5,"reason":"wamp.error.revoked"}]"#),
        ("deep", &format!("[16,1,{{}},\"t\",[{}{}]]", "[".repeat(60), "]".repeat(60))),
    ];
    for (name, text) in json {
        s.add("wamp_json", format!("extra-{name}"), text.as_bytes());
        if let Ok(m) = Serializer::Json.decode(&Bytes::from(text.as_bytes().to_vec())) {
            for (ser, target) in [
                (Serializer::Msgpack, "wamp_msgpack"),
                (Serializer::Cbor, "wamp_cbor"),
                (Serializer::Flatbuffers, "wamp_flatbuffers"),
            ] {
                if let Ok(b) = ser.encode(&m) {
                    s.add(target, format!("extra-{name}"), b.to_vec());
                }
            }
        }
    }
    // JavaScript undefined in an Options dict (wampy.js): MessagePack ext 0
    // and CBOR simple value 23.
    s.add("wamp_msgpack", "extra-undefined", b"\x94\x20\x01\x81\xa5match\xd4\x00\x00\xa1t".to_vec());
    s.add("wamp_cbor", "extra-undefined", b"\x84\x18\x20\x01\xa1\x65match\xf7\x61t".to_vec());
}

fn ws_upgrade(path: &str, protocols: &str, extra: &str) -> String {
    format!(
        "GET {path} HTTP/1.1\r\nHost: localhost:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n{protocols}{extra}\r\n"
    )
}

fn websocket(messages: &[(String, Message)], s: &mut Seeds) {
    // Handshakes: byte 0 is the target's configuration byte.
    let proto = |p: &str| format!("Sec-WebSocket-Protocol: {p}\r\n");
    let cases: Vec<(&str, u8, String)> = vec![
        ("json", 0x00, ws_upgrade("/ws", &proto("wamp.2.json"), "")),
        ("cbor-msgpack", 0x00, ws_upgrade("/ws", &proto("wamp.2.cbor, wamp.2.msgpack"), "")),
        ("flatbuffers-trickle", 0x03, ws_upgrade("/ws?x=1", &proto("wamp.2.flatbuffers"), "User-Agent: t\r\n")),
        ("origin-ok", 0x10, ws_upgrade("/ws", &proto("wamp.2.cbor"), "Origin: https://a.example.com\r\n")),
        ("origin-bad", 0x10, ws_upgrade("/ws", &proto("wamp.2.json"), "Origin: https://evil.test\r\n")),
        ("wrong-path", 0x10, ws_upgrade("/other", &proto("wamp.2.json"), "")),
        ("no-protocol", 0x20, ws_upgrade("/", "", "X-Forwarded-For: 1.2.3.4, 5.6.7.8\r\n")),
        ("no-protocol-required", 0x00, ws_upgrade("/", "", "")),
        ("unknown-protocol", 0x00, ws_upgrade("/ws", &proto("mqtt"), "")),
        ("small-limit", 0x40, ws_upgrade("/ws", &proto("wamp.2.json"), &"X-Pad: aaaaaaaaaaaaaaaaaaaa\r\n".repeat(10))),
        ("post", 0x00, "POST /ws HTTP/1.1\r\nHost: a\r\n\r\n".into()),
        ("http10", 0x00, "GET /ws HTTP/1.0\r\nHost: a\r\n\r\n".into()),
        ("bad-key", 0x00, ws_upgrade("/ws", &proto("wamp.2.json"), "Sec-WebSocket-Key: x\r\n")),
        ("lf-only", 0x05, ws_upgrade("/ws", &proto("wamp.2.json"), "").replace("\r\n", "\n")),
    ];
    for (name, cfg, text) in cases {
        let mut v = vec![cfg];
        v.extend_from_slice(text.as_bytes());
        s.add("ws_handshake", format!("unit-{name}"), v);
    }
    // With a first frame right behind the head.
    let mut v = vec![0x00];
    v.extend_from_slice(ws_upgrade("/ws", &proto("wamp.2.json"), "").as_bytes());
    write_masked_frame(&mut v, OpCode::Text, true, [1, 2, 3, 4], br#"[1,"realm1",{}]"#);
    s.add("ws_handshake", "unit-with-frame", v);

    // Frames (raw mode): byte 0 = chunking / limits.
    let key = [0x37, 0xfa, 0x21, 0x3d];
    let mut frames: Vec<(&str, u8, Vec<u8>)> = Vec::new();
    let mut f = Vec::new();
    write_masked_frame(&mut f, OpCode::Text, true, key, br#"[1,"realm1",{"roles":{"caller":{}}}]"#);
    frames.push(("text", 0x00, f.clone()));
    frames.push(("text-trickle", 0x01, f));
    let mut f = Vec::new();
    write_masked_frame(&mut f, OpCode::Binary, false, key, b"\x83\x01");
    write_masked_frame(&mut f, OpCode::Ping, true, key, b"ping");
    write_masked_frame(&mut f, OpCode::Continuation, true, key, b"\x66realm1\xa0");
    write_masked_frame(&mut f, OpCode::Pong, true, key, b"");
    frames.push(("fragmented-ping", 0x00, f));
    let mut f = Vec::new();
    write_masked_frame(&mut f, OpCode::Text, false, key, "caf\u{e9}".as_bytes().split_at(4).0);
    write_masked_frame(&mut f, OpCode::Continuation, true, key, "caf\u{e9}".as_bytes().split_at(4).1);
    frames.push(("utf8-split", 0x00, f));
    let mut f = Vec::new();
    write_masked_frame(&mut f, OpCode::Close, true, key, b"\x03\xe8bye");
    frames.push(("close", 0x00, f));
    let mut f = Vec::new();
    write_masked_frame(&mut f, OpCode::Binary, true, key, &[7u8; 300]);
    frames.push(("len16", 0x00, f.clone()));
    frames.push(("len16-small-limits", 0x10, f));
    frames.push(("len64", 0x00, b"\x82\xff\x00\x00\x00\x00\x00\x01\x00\x00\x01\x02\x03\x04".to_vec()));
    frames.push(("unmasked", 0x00, b"\x81\x05hello".to_vec()));
    frames.push(("rsv", 0x00, b"\xc1\x80\x00\x00\x00\x00".to_vec()));
    let mut f = Vec::new();
    write_masked_frame(&mut f, OpCode::Text, true, key, b"\xff\xfe");
    frames.push(("bad-utf8", 0x00, f));
    for (name, m) in messages.iter().take(8) {
        let mut f = Vec::new();
        if let Ok(b) = Serializer::Json.encode(m) {
            write_masked_frame(&mut f, OpCode::Text, true, key, &b);
            frames.push(("suite", 0x00, f));
            let _ = name;
        }
    }
    for (i, (name, cfg, bytes)) in frames.into_iter().enumerate() {
        let mut v = vec![cfg];
        v.extend_from_slice(&bytes);
        s.add("ws_frames", format!("unit-{i:02}-{name}"), v);
    }
    // Round-trip mode records: [flags, len, payload].
    let mut v = vec![0x20];
    for (flags, payload) in
        [(0u8, &b"[6,{},\"x\"]"[..]), (1, b"\x01\x02\x03"), (2, "h\u{e9}llo".as_bytes()), (7, b"abcdef")]
    {
        v.push(flags);
        v.push(payload.len() as u8);
        v.extend_from_slice(payload);
    }
    s.add("ws_frames", "unit-roundtrip", v);
}

fn raw(messages: &[(String, Message)], s: &mut Seeds) {
    for (i, ser) in Serializer::ALL.into_iter().enumerate() {
        let mut v = vec![0x00];
        v.extend_from_slice(&rawsocket::client_handshake(ser, 1 << 16));
        for (_, m) in messages.iter().skip(i * 3).take(3) {
            if let Ok(b) = ser.encode(m) {
                rawsocket::write_frame(&mut v, FrameKind::Message, &b);
            }
        }
        rawsocket::write_frame(&mut v, FrameKind::Ping, b"12345678");
        rawsocket::write_frame(&mut v, FrameKind::Pong, b"");
        s.add("rawsocket", format!("unit-{ser}"), v);
    }
    let cases: &[(&str, &[u8])] = &[
        ("small-limit", b"\x10\x7f\x31\x00\x00\x00\x00\x02\x01\xff"),
        ("trickle", b"\x01\x7f\xf3\x00\x00\x01\x00\x00\x04ping"),
        ("bad-magic", b"\x00GET / HTTP/1.1\r\n"),
        ("reserved", b"\x00\x7f\x12\x00\x01"),
        ("ubjson", b"\x00\x7f\x14\x00\x00"),
        ("bad-frame-type", b"\x00\x7f\xf1\x00\x00\x03\x00\x00\x00"),
        ("reserved-bits", b"\x00\x7f\xf1\x00\x00\x08\x00\x00\x00"),
        ("link", b"\x00\x7f\xff\x00\x00"),
        ("reply-error", b"\x00\x7f\x40\x00\x00"),
    ];
    for (name, bytes) in cases {
        s.add("rawsocket", format!("unit-{name}"), bytes.to_vec());
    }
}

fn payload_of(frame: &LinkFrame) -> Vec<u8> {
    let mut out = Vec::new();
    frame.write(&mut out);
    out.split_off(4)
}

fn links(messages: &[(String, Message)], s: &mut Seeds) {
    let hello = LinkHello { realm: "realm1".into(), key: [0xab; 32], name: "proxy1".into(), peer: None, ping_ms: None };
    let peer_hello = LinkHello { peer: Some(u64::MAX), ping_ms: Some((200, 1000)), ..hello.clone() };
    let mut extra = Dict::new();
    extra.insert("x".into(), Value::from(1u64));
    let mut transport = Dict::new();
    transport.insert("peer".into(), Value::from("tcp4:1.2.3.4:5"));
    let open = OpenRequest {
        realm: "realm1".into(),
        authid: "joe".into(),
        authrole: "user".into(),
        authmethod: "ticket".into(),
        authprovider: "static".into(),
        authextra: extra,
        hello_details: Dict::new(),
        transport,
        serializer: Serializer::Cbor,
        session: Some(SessionId::from_valid(77)),
    };
    let call = AuthCall { realm: "auth".into(), procedure: "com.auth".into(), args: vec![Value::from("a")] };
    let frames = vec![
        ("hello", LinkFrame::Hello(hello.encode())),
        ("peer-hello", LinkFrame::Hello(peer_hello.encode())),
        ("challenge", LinkFrame::Challenge([3; 32])),
        ("proof", LinkFrame::Proof([4; 64])),
        (
            "accept",
            LinkFrame::Accept(
                LinkAccept { max_message_size: 1 << 20, instance: Some(42), name: Some("r2".into()) }.encode(),
            ),
        ),
        ("refuse", LinkFrame::Refuse(link::encode_refuse("wamp.error.not_authorized", "untrusted"))),
        ("open", LinkFrame::Open { channel: ChannelId(7), body: open.encode() }),
        ("close", LinkFrame::Close { channel: ChannelId(7) }),
        ("auth-call", LinkFrame::AuthCall { token: 9, body: call.encode() }),
        ("auth-ok", LinkFrame::AuthResult { token: 9, body: AuthResult::Ok(Value::from("role1")).encode() }),
        (
            "auth-err",
            LinkFrame::AuthResult {
                token: 10,
                body: AuthResult::Err { error: "wamp.error.not_authorized".into(), message: Some("no".into()) }
                    .encode(),
            },
        ),
        ("peer", LinkFrame::Peer(Bytes::from_static(b"\x07\x02"))),
    ];
    for (name, f) in frames {
        s.add("link_frame", format!("unit-{name}"), payload_of(&f));
    }
    for (name, m) in messages.iter().take(4) {
        if let Ok(b) = Serializer::Json.encode(m) {
            s.add(
                "link_frame",
                format!("data-{name}"),
                payload_of(&LinkFrame::Data { channel: ChannelId(1), bytes: b }),
            );
        }
    }
    s.add("link_frame", "unit-truncated", vec![11, 0, 0]);
}

/// Cluster messages, as the engine's unit tests build them.
fn peers(messages: &[(String, Message)], s: &mut Seeds) {
    let sid = SessionId::from_valid(4242);
    let mut roles = Dict::new();
    roles.insert("callee".into(), Value::Dict(Dict::new()));
    let mut transport = Dict::new();
    transport.insert("type".into(), Value::from("websocket"));
    let mut receivers = Dict::new();
    receivers.insert("exclude".into(), Value::List(vec![Value::UInt(7)]));
    let mut details = Dict::new();
    details.insert("publisher".into(), Value::UInt(9));
    let mut msgs = vec![
        (
            "join",
            PeerMsg::SessionJoin(RemoteSession {
                session: sid,
                authid: "joe".into(),
                authrole: "user".into(),
                authmethod: "ticket".into(),
                authprovider: "static".into(),
                transport,
                serializer: Serializer::Json,
                roles,
            }),
        ),
        ("leave", PeerMsg::SessionLeave(sid)),
        ("sub", PeerMsg::Subscribe { session: sid, policy: MatchPolicy::Prefix, topic: "com.a".into() }),
        ("unsub", PeerMsg::Unsubscribe { session: sid, policy: MatchPolicy::Wildcard, topic: "com..b".into() }),
        (
            "reg",
            PeerMsg::Register {
                session: sid,
                policy: MatchPolicy::Exact,
                procedure: "com.p".into(),
                invoke: "roundrobin".into(),
            },
        ),
        ("unreg", PeerMsg::Unregister { session: sid, policy: MatchPolicy::Exact, procedure: "com.p".into() }),
        ("synced", PeerMsg::Synced),
        ("admitted", PeerMsg::Admitted),
        (
            "publish",
            PeerMsg::Publish {
                publication: PublicationId::from_valid(77),
                topic: "com.t".into(),
                details,
                receivers,
                retain: true,
                payload: Payload::Values { args: Some(vec![Value::from("x")]), kwargs: None },
            },
        ),
    ];
    for (i, (_, m)) in messages.iter().enumerate().take(6) {
        let session = sid;
        let msg = m.clone();
        msgs.push((
            if i % 2 == 0 { "to" } else { "from" },
            if i % 2 == 0 { PeerMsg::ToSession { session, msg } } else { PeerMsg::FromSession { session, msg } },
        ));
    }
    for (i, (name, m)) in msgs.into_iter().enumerate() {
        let Ok(b) = m.encode() else { continue };
        s.add("link_frame", format!("peer-{i:02}-{name}"), payload_of(&LinkFrame::Peer(b.clone())));
        s.add("peer_msg", format!("unit-{i:02}-{name}"), b.to_vec());
    }
}

fn http(s: &mut Seeds) {
    let cases: &[(&str, &str)] = &[
        ("root", "GET / HTTP/1.1\r\nHost: a\r\n\r\n"),
        ("file", "GET /docs/a.txt HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"),
        ("range", "GET /docs/a.txt HTTP/1.1\r\nHost: a\r\nRange: bytes=2-5\r\n\r\n"),
        ("suffix-range", "GET /docs/a.txt HTTP/1.1\r\nRange: bytes=-3\r\n\r\n"),
        ("etag", "GET /style.css HTTP/1.1\r\nIf-None-Match: W/\"x\", *\r\n\r\n"),
        ("ims", "HEAD /index.html HTTP/1.1\r\nIf-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n\r\n"),
        ("listing", "GET /docs/ HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
        ("escaped", "GET /docs/sub%20dir/b.json?v=1 HTTP/1.1\r\n\r\n"),
        ("traversal", "GET /docs/%2e%2e/%2e%2e/etc/passwd HTTP/1.1\r\n\r\n"),
        ("dir-redirect", "GET /docs HTTP/1.1\r\n\r\n"),
        ("info-json", "GET /info HTTP/1.1\r\nAccept: application/json\r\n\r\n"),
        ("info-html", "GET /info/ HTTP/1.1\r\nAccept: text/html\r\n\r\n"),
        ("json", "GET /j HTTP/1.1\r\n\r\n"),
        ("redirect", "GET /r/anything HTTP/1.1\r\n\r\n"),
        ("metrics", "GET /metrics HTTP/1.1\r\n\r\n"),
        ("post", "POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"),
        ("chunked", "GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"),
        ("bad-length", "GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
        ("partial", "GET / HTTP/1.1\r\nHost"),
        ("lf", "GET /style.css HTTP/1.1\nHost: a\n\n"),
    ];
    for (name, text) in cases {
        s.add("http_request", format!("unit-{name}"), text.as_bytes());
    }
}

fn config(root: &Path, s: &mut Seeds) {
    s.add("config", "default-config", junction_config::DEFAULT_CONFIG_JSON.as_bytes());
    let dir = root.join("junction-config/examples");
    let mut files: Vec<PathBuf> =
        std::fs::read_dir(&dir).expect("junction-config/examples").flatten().map(|e| e.path()).collect();
    files.sort();
    for p in files {
        if p.is_file() && p.extension().is_some_and(|x| x == "json" || x == "yaml") {
            let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("x").to_string();
            s.add("config", format!("example-{name}"), std::fs::read(&p).expect("read example"));
        }
    }
    let cases: &[(&str, &str)] = &[
        (
            "realm",
            r#"{"name":"realm1","roles":[{"name":"anonymous","permissions":[{"uri":"","match":"prefix","allow":{"call":true}}]}]}"#,
        ),
        ("transport", r#"{"type":"websocket","endpoint":{"type":"tcp","port":8080},"serializers":["json","cbor"]}"#),
        ("yaml-min", "version: 2\nworkers:\n  - type: router\n    realms: []\n    transports: []\n"),
        ("empty", ""),
        ("anchors", "a: &x [1, 2]\nb: *x\nc: {<<: {d: 1}}\n"),
    ];
    for (name, text) in cases {
        s.add("config", format!("unit-{name}"), text.as_bytes());
    }
}
