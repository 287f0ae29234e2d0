//! A corpus of bad credentials against a real node, sent by hand-driven
//! sessions (`wamp-client` connections: we write HELLO and AUTHENTICATE
//! ourselves, so we can replay and forge): replayed and forged cryptosign
//! signatures, a wrong channel binding, an oversized authextra, unknown
//! authids, wrong tickets and WAMP-CRA signatures. Every one must be
//! refused with the same ABORT as a plain wrong password (nothing tells an
//! attacker which part was wrong), none may reach the realm, and every
//! failure is counted (`auth_failures` in the node's stats).

mod common;

use std::time::Duration;

use common::principals::{auth_block, CRA_USER, CS_USER, NOT_AUTHORIZED, TICKET, TICKET_USER};
use common::{allow_all_role, free_port, node_config, realm, JunctionProcess};
use serde_json::json;
use wamp_client::auth::{public_key_hex, sign_challenge};
use wamp_client::conn::Conn;
use wamp_client::target::Target;
use wamp_proto::{Dict, Message, Serializer, Value};

const SEED: [u8; 32] = [7; 32];

fn hello(authid: &str, methods: &[&str], extra: Dict) -> Message {
    let mut roles = Dict::new();
    roles.insert("caller".into(), Value::Dict(Dict::new()));
    let mut d = Dict::new();
    d.insert("roles".into(), Value::Dict(roles));
    d.insert("authid".into(), Value::Str(authid.into()));
    d.insert("authmethods".into(), Value::List(methods.iter().map(|m| Value::Str((*m).into())).collect()));
    if !extra.is_empty() {
        d.insert("authextra".into(), Value::Dict(extra));
    }
    Message::Hello { realm: "realm1".into(), details: d }
}

/// What the router did: WELCOME, ABORT (reason, message), or a CHALLENGE.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    Welcome,
    Abort(String, String),
    Challenge(String, Dict),
    Closed,
}

struct Raw {
    conn: Conn,
}

impl Raw {
    fn open(port: u16) -> Raw {
        let target = Target::parse(&format!("rs://127.0.0.1:{port}")).expect("target");
        let conn = Conn::open(&target, Serializer::Json, Duration::from_secs(10), 1).expect("transport");
        conn.stream().set_read_timeout(Some(Duration::from_millis(200))).expect("timeout");
        Raw { conn }
    }

    fn send(&mut self, m: &Message) -> Step {
        if self.conn.push(m).and_then(|_| self.conn.flush()).is_err() {
            return Step::Closed;
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            match self.conn.recv() {
                Ok(Some(Message::Welcome { .. })) => return Step::Welcome,
                Ok(Some(Message::Abort { reason, details })) => {
                    let msg = details.get("message").and_then(Value::as_str).unwrap_or("").to_owned();
                    return Step::Abort(reason, msg);
                }
                Ok(Some(Message::Challenge { method, extra })) => return Step::Challenge(method, extra),
                Ok(Some(other)) => panic!("unexpected {other:?}"),
                Ok(None) if std::time::Instant::now() < deadline => continue,
                Ok(None) => panic!("no answer within 10 s"),
                Err(_) => return Step::Closed,
            }
        }
    }
}

fn authenticate(signature: &str) -> Message {
    Message::Authenticate { signature: signature.into(), extra: Dict::new() }
}

fn challenge_bytes(extra: &Dict) -> [u8; 32] {
    let hex = extra.get("challenge").and_then(Value::as_str).expect("challenge");
    let mut c = [0u8; 32];
    for (i, b) in c.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    c
}

fn pubkey_extra() -> Dict {
    let mut e = Dict::new();
    e.insert("pubkey".into(), Value::Str(public_key_hex(&SEED)));
    e
}

fn auth_failures(stderr: &str) -> Option<u64> {
    let line = stderr.lines().rev().find(|l| l.contains("auth_failures="))?;
    let v = line.split("auth_failures=").nth(1)?.split(|c: char| !c.is_ascii_digit()).next()?;
    v.parse().ok()
}

#[test]
fn forged_replayed_and_malformed_credentials_are_all_refused_alike_and_counted() {
    let port = free_port();
    let mut auth = auth_block(&public_key_hex(&SEED), None);
    auth["options"] = json!({"max_failures": 1000});
    let config = node_config(
        vec![realm("realm1", common::principals::ROLES.map(allow_all_role).to_vec())],
        vec![
            json!({"type": "rawsocket", "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"}, "auth": auth}),
        ],
    );
    let mut node = JunctionProcess::start(config);

    // The reference refusal: a wrong ticket.
    let mut r = Raw::open(port);
    assert!(matches!(r.send(&hello(TICKET_USER, &["ticket"], Dict::new())), Step::Challenge(m, _) if m == "ticket"));
    let reference = r.send(&authenticate("wrong-ticket"));
    let Step::Abort(ref_reason, ref_msg) = reference.clone() else { panic!("expected ABORT, got {reference:?}") };
    assert_eq!(ref_reason, NOT_AUTHORIZED);
    let mut failures = 1u64;

    // A good cryptosign login, whose signature is then replayed.
    let mut good = Raw::open(port);
    let Step::Challenge(_, extra) = good.send(&hello(CS_USER, &["cryptosign"], pubkey_extra())) else {
        panic!("challenge")
    };
    let signature = sign_challenge(&SEED, &challenge_bytes(&extra));
    assert_eq!(good.send(&authenticate(&signature)), Step::Welcome, "the genuine login works");

    let mut cases: Vec<(&str, Step)> = Vec::new();
    // Replay: yesterday's signature against today's challenge.
    let mut r = Raw::open(port);
    assert!(matches!(r.send(&hello(CS_USER, &["cryptosign"], pubkey_extra())), Step::Challenge(..)));
    cases.push(("replayed cryptosign signature", r.send(&authenticate(&signature))));
    // Forged: a signature of the right shape by another key.
    let mut r = Raw::open(port);
    let Step::Challenge(_, extra) = r.send(&hello(CS_USER, &["cryptosign"], pubkey_extra())) else {
        panic!("challenge")
    };
    cases
        .push(("signature by another key", r.send(&authenticate(&sign_challenge(&[9; 32], &challenge_bytes(&extra))))));
    // Malformed signatures.
    for (what, sig) in [
        ("short signature", "abcd".to_owned()),
        ("non-hex signature", "zz".repeat(96)),
        ("empty signature", String::new()),
    ] {
        let mut r = Raw::open(port);
        assert!(matches!(r.send(&hello(CS_USER, &["cryptosign"], pubkey_extra())), Step::Challenge(..)));
        cases.push((what, r.send(&authenticate(&sig))));
    }
    // Unknown principals: they get a challenge too (no account probing), then the same refusal.
    let mut r = Raw::open(port);
    let first = r.send(&hello("nobody@example.com", &["ticket"], Dict::new()));
    assert!(matches!(first, Step::Challenge(..)), "an unknown authid is challenged like a known one: {first:?}");
    cases.push(("unknown ticket authid", r.send(&authenticate(TICKET))));
    let mut r = Raw::open(port);
    let first = r.send(&hello("nobody", &["wampcra"], Dict::new()));
    assert!(matches!(first, Step::Challenge(..)), "{first:?}");
    cases.push(("unknown WAMP-CRA user", r.send(&authenticate("AAAA"))));
    let mut r = Raw::open(port);
    assert!(matches!(r.send(&hello(CRA_USER, &["wampcra"], Dict::new())), Step::Challenge(..)));
    cases.push(("wrong WAMP-CRA signature", r.send(&authenticate("bm90IGEgc2lnbmF0dXJl"))));
    // An unknown cryptosign key.
    let mut r = Raw::open(port);
    let mut other = Dict::new();
    other.insert("pubkey".into(), Value::Str(public_key_hex(&[3; 32])));
    let step = r.send(&hello(CS_USER, &["cryptosign"], other));
    let step = match step {
        Step::Challenge(_, extra) => r.send(&authenticate(&sign_challenge(&[3; 32], &challenge_bytes(&extra)))),
        s => s,
    };
    cases.push(("unknown cryptosign key", step));

    for (what, step) in &cases {
        failures += 1;
        assert_eq!(
            step,
            &Step::Abort(ref_reason.clone(), ref_msg.clone()),
            "{what}: refused exactly like a wrong password"
        );
    }

    // Refused outright, before any challenge (these say why: they are not guesses).
    let mut r = Raw::open(port);
    let mut cb = pubkey_extra();
    cb.insert("channel_binding".into(), Value::Str("tls-unique".into()));
    let step = r.send(&hello(CS_USER, &["cryptosign"], cb));
    assert!(
        matches!(&step, Step::Abort(reason, _) if reason.starts_with("wamp.error.")),
        "channel binding without TLS: {step:?}"
    );
    let mut r = Raw::open(port);
    let mut big = pubkey_extra();
    big.insert("junk".into(), Value::Str("x".repeat(600_000)));
    let step = r.send(&hello(CS_USER, &["cryptosign"], big));
    assert!(
        matches!(&step, Step::Abort(reason, msg) if reason == "wamp.error.invalid_argument" && msg.contains("authextra")),
        "oversized authextra (max_authextra_size, 16 KiB by default): {step:?}"
    );

    // None of it reached the realm: the genuine session is alone.
    let count = Message::Call {
        request: wamp_proto::RequestId::from_valid(1),
        options: Dict::new(),
        procedure: "wamp.session.count".into(),
        payload: wamp_proto::Payload::EMPTY,
    };
    good.conn.push(&count).and_then(|_| good.conn.flush()).expect("call");
    let n = loop {
        match good.conn.recv() {
            Ok(Some(Message::Result { payload, .. })) => {
                break payload.to_values().expect("values").0.and_then(|a| a.first().cloned())
            }
            Ok(Some(Message::Error { error, .. })) => panic!("count: {error}"),
            Ok(_) => continue,
            Err(e) => panic!("{e}"),
        }
    };
    assert_eq!(n, Some(Value::UInt(1)), "no forged session joined");

    // Every refused login was counted.
    let _ = node.terminate(Duration::from_secs(5));
    let counted = auth_failures(&node.stderr()).expect("the stats line on shutdown");
    assert!(counted >= failures, "{counted} auth failures counted, {failures} refused");
}
