//! Operating logs: a node started with `--log debug` tells each session's
//! open and close (session id, realm, authid, authrole, transport, peer,
//! close reason), and protocol violations and refusals with the peer's
//! address; with `--log-format json` every stderr line is a JSON object
//! carrying the same fields.
//!
//! Clients: Autobahn|Python (`rpc.py`: two sessions that join, call and
//! leave; `abort.py`: a HELLO for a realm that does not exist) and a
//! hand-written RawSocket peer that sends garbage after its WELCOME.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::{allow_all_role, free_port, junction_bin, node_config, realm, temp_path, JunctionProcess};
use serde_json::{json, Value};

/// How long a log line may take to show up.
const LOG_DEADLINE: Duration = Duration::from_secs(10);

/// A node on a WebSocket and a RawSocket transport, with `--log debug`
/// and the given extra arguments; returns it with (ws port, rs port).
fn start(extra: &[&str]) -> (JunctionProcess, u16, u16) {
    let (ws_port, rs_port) = (free_port(), free_port());
    let config = node_config(
        vec![realm("realm1", vec![allow_all_role("anonymous")]), {
            let mut small = realm("small", vec![allow_all_role("anonymous")]);
            small["options"] = json!({"max_sessions": 1});
            small
        }],
        vec![
            json!({
                "type": "web",
                "id": "ws-front",
                "endpoint": {"type": "tcp", "port": ws_port, "interface": "127.0.0.1"},
                "paths": {"ws": {"type": "websocket", "serializers": ["json", "msgpack", "cbor", "flatbuffers"]}}
            }),
            json!({
                "type": "rawsocket",
                "id": "rs-front",
                "endpoint": {"type": "tcp", "port": rs_port, "interface": "127.0.0.1"},
                "serializers": ["json"]
            }),
        ],
    );
    let path = temp_path("logs", "json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).expect("serialize")).expect("write config");
    let mut cmd = Command::new(junction_bin());
    cmd.arg("start").arg("--config").arg(&path).arg("--log").arg("debug").args(extra);
    let (node, _) = common::spawn_until_ready(cmd, "junction: ready", path).unwrap_or_else(|e| panic!("{e}"));
    (node, ws_port, rs_port)
}

/// Not a WAMP message in any serializer.
const GARBAGE: &[u8] = b"\x01\x02 this is not json";

/// A RawSocket JSON frame.
fn rs_frame(payload: &[u8]) -> Vec<u8> {
    common::rawsocket::frame(0, payload)
}

/// Reads one RawSocket frame's payload (`None` on EOF).
fn rs_read(s: &mut TcpStream) -> Option<Vec<u8>> {
    common::rawsocket::read_frame(s).map(|(_, p)| p)
}

/// Joins realm1 over RawSocket/JSON by hand, then sends `bad` (a frame
/// that is not JSON, or a message not allowed once joined); returns (session id, the peer address the router sees, the
/// ABORT it answered).
fn violate(rs_port: u16, bad: &[u8]) -> (u64, String, Value) {
    let (mut s, peer, welcome) = raw_hello(rs_port, "realm1");
    assert_eq!(welcome[0], 2, "expected WELCOME, got {welcome}");
    let session = welcome[1].as_u64().expect("session id");
    s.write_all(&rs_frame(bad)).expect("bad frame");
    let abort: Value = serde_json::from_slice(&rs_read(&mut s).expect("ABORT")).expect("JSON");
    (session, peer, abort)
}

/// A RawSocket/JSON HELLO for `realm`: (the stream, the peer address the
/// router sees, its answer).
fn raw_hello(rs_port: u16, realm: &str) -> (TcpStream, String, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", rs_port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(5))).expect("timeout");
    let peer = format!("tcp4:127.0.0.1:{}", s.local_addr().expect("local addr").port());
    s.write_all(&[0x7F, 0xF1, 0, 0]).expect("handshake");
    let mut reply = [0u8; 4];
    s.read_exact(&mut reply).expect("handshake reply");
    assert_eq!(reply[0], 0x7F, "handshake refused: {reply:?}");
    let hello = json!([1, realm, {"roles": {"caller": {}}}]).to_string();
    s.write_all(&rs_frame(hello.as_bytes())).expect("HELLO");
    let answer: Value = serde_json::from_slice(&rs_read(&mut s).expect("HELLO answer")).expect("JSON");
    (s, peer, answer)
}

/// Waits until `pred` holds for some stderr line of `node`; returns it.
fn wait_line(node: &JunctionProcess, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + LOG_DEADLINE;
    loop {
        let err = node.stderr();
        if let Some(l) = err.lines().find(|l| pred(l)) {
            return l.to_owned();
        }
        if Instant::now() > deadline {
            panic!("no log line {what} within {LOG_DEADLINE:?}; stderr:\n{}", common::tail(&err, 8000));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn text_logs_show_session_lifecycle_violations_and_refusals() {
    let (node, ws_port, rs_port) = start(&[]);

    // Two Autobahn sessions (caller and callee) join, work and leave.
    let url = format!("ws://127.0.0.1:{ws_port}/ws");
    let r = node.python("rpc.py", &[&url, "realm1", "json"]);
    assert_eq!(r["ok"], Value::Bool(true), "{r}");
    let open = wait_line(&node, "for an Autobahn session open", |l| {
        l.contains("session open") && l.contains("realm=realm1") && l.contains("transport=ws-front")
    });
    assert!(open.contains("DEBUG"), "{open}");
    assert!(open.contains("authrole=anonymous") && open.contains("authid="), "{open}");
    assert!(open.contains("peer=tcp4:127.0.0.1:"), "{open}");
    let session = open
        .split_whitespace()
        .find_map(|w| w.strip_prefix("session="))
        .unwrap_or_else(|| panic!("no session= in {open}"))
        .to_owned();
    let close = wait_line(&node, "for that session's close", |l| {
        l.contains("session closed") && l.contains(&format!("session={session} "))
    });
    // Autobahn leaves with GOODBYE wamp.close.normal.
    assert!(close.contains("reason=wamp.close.normal"), "{close}");
    assert!(close.contains("realm=realm1") && close.contains("authrole=anonymous"), "{close}");

    // A peer that sends garbage after joining.
    let (id, peer, abort) = violate(rs_port, GARBAGE);
    assert_eq!(abort[0], 3, "{abort}");
    assert_eq!(abort[2], "wamp.error.protocol_violation", "{abort}");
    let needle = format!("session={id} ");
    let open = wait_line(&node, "for the raw session's open", |l| l.contains("session open") && l.contains(&needle));
    assert!(open.contains(&format!("peer={peer}")) && open.contains("transport=rs-front"), "{open}");
    let violation =
        wait_line(&node, "for the protocol violation", |l| l.contains("protocol violation") && l.contains(&needle));
    assert!(violation.contains(" INFO ") || violation.contains("INFO"), "{violation}");
    assert!(violation.contains(&format!("peer={peer}")), "{violation}");
    let close =
        wait_line(&node, "for the raw session's close", |l| l.contains("session closed") && l.contains(&needle));
    assert!(close.contains("reason=wamp.error.protocol_violation"), "{close}");
    assert!(close.contains("INFO"), "a close for an error is logged at info: {close}");
    assert!(close.contains(&format!("peer={peer}")), "{close}");

    // A well-formed message the session may not send (HELLO again): the
    // engine decides the violation; the runtime logs it with the peer.
    let (id, peer, abort) = violate(rs_port, br#"[1, "realm1", {"roles": {"caller": {}}}]"#);
    assert_eq!(abort[2], "wamp.error.protocol_violation", "{abort}");
    let needle = format!("session={id} ");
    let violation = wait_line(&node, "for the engine's protocol violation", |l| {
        l.contains("protocol violation; the router aborted") && l.contains(&needle)
    });
    assert!(violation.contains(&format!("peer={peer}")) && violation.contains("wamp_message=HELLO"), "{violation}");
    let close = wait_line(&node, "for its close", |l| l.contains("session closed") && l.contains(&needle));
    assert!(close.contains("reason=wamp.error.protocol_violation"), "{close}");

    // A realm at its session limit refuses the next session, with the peer.
    let (_first, _, welcome) = raw_hello(rs_port, "small");
    assert_eq!(welcome[0], 2, "{welcome}");
    let (_second, peer, abort) = raw_hello(rs_port, "small");
    assert_eq!(abort[0], 3, "{abort}");
    let refused = wait_line(&node, "for the session-limit refusal", |l| {
        l.contains("session refused") && l.contains("realm=small") && l.contains(&format!("peer={peer}"))
    });
    assert!(refused.contains("max_sessions = 1"), "{refused}");

    // A HELLO for a realm that does not exist is refused, with the peer.
    let r = node.python("abort.py", &[&url, "no.such.realm", "json"]);
    assert_eq!(r["reason"], "wamp.error.no_such_realm", "{r}");
    let refused = wait_line(&node, "for the refusal", |l| l.contains("session refused") && l.contains("no.such.realm"));
    assert!(
        refused.contains("reason=wamp.error.no_such_realm") && refused.contains("peer=tcp4:127.0.0.1:"),
        "{refused}"
    );
}

#[test]
fn json_logs_are_one_object_per_line_with_the_session_fields() {
    let (node, _ws_port, rs_port) = start(&["--log-format", "json"]);
    let (id, peer, abort) = violate(rs_port, GARBAGE);
    assert_eq!(abort[2], "wamp.error.protocol_violation", "{abort}");
    let id = id.to_string();
    let matching = |msg: &'static str| {
        let id = id.clone();
        move |l: &str| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| {
                v["fields"]["message"].as_str().is_some_and(|m| m.contains(msg))
                    && v["fields"]["session"] == id.as_str()
            })
        }
    };
    wait_line(&node, "(JSON) for the close", matching("session closed"));
    let err = node.stderr();
    let lines: Vec<Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("stderr line is not JSON ({e}): {l}")))
        .collect();
    assert!(lines.iter().all(Value::is_object), "{err}");
    assert!(lines.iter().all(|v| v["level"].is_string() && v["timestamp"].is_string()), "{err}");
    let find = |msg: &str| {
        lines
            .iter()
            .find(|v| {
                v["fields"]["message"].as_str().is_some_and(|m| m.contains(msg))
                    && v["fields"]["session"] == id.as_str()
            })
            .unwrap_or_else(|| panic!("no JSON line {msg:?} for session {id}:\n{err}"))
    };
    let open = find("session open");
    assert_eq!(open["level"], "DEBUG", "{open}");
    assert_eq!(open["fields"]["realm"], "realm1", "{open}");
    assert_eq!(open["fields"]["authrole"], "anonymous", "{open}");
    assert_eq!(open["fields"]["transport"], "rs-front", "{open}");
    assert_eq!(open["fields"]["peer"], peer.as_str(), "{open}");
    assert!(open["fields"]["authid"].is_string(), "{open}");
    let violation = find("protocol violation");
    assert_eq!(violation["level"], "INFO", "{violation}");
    assert_eq!(violation["fields"]["peer"], peer.as_str(), "{violation}");
    let close = find("session closed");
    assert_eq!(close["fields"]["reason"], "wamp.error.protocol_violation", "{close}");
    assert_eq!(close["fields"]["peer"], peer.as_str(), "{close}");
    assert_eq!(close["fields"]["realm"], "realm1", "{close}");
}
