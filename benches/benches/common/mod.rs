//! Fixtures shared by the benchmark targets: the criterion configuration,
//! payloads, and a ready-made realm.
#![allow(dead_code)] // each bench target uses a different subset

use std::time::Duration;

use bytes::Bytes;
use criterion::Criterion;
use router_core::engine::{Allow, Disclose, MatchPolicy, Permission, Realm, RealmSpec, Role, SessionInfo, Transmit};
use wamp_proto::{Dict, List, Message, Payload, RequestId, Serializer, SessionId, Value};

/// Short measurements so the whole suite runs in a few minutes on 2 cores.
pub fn config() -> Criterion {
    Criterion::default().warm_up_time(Duration::from_secs(1)).measurement_time(Duration::from_secs(3)).sample_size(30)
}

/// A small application payload: about 100 bytes of args + kwargs in JSON.
pub fn small_payload() -> Payload {
    let args: List = vec![Value::UInt(42), Value::Str("hello, world!".into()), Value::Float(3.25), Value::Bool(true)];
    let mut kwargs = Dict::new();
    kwargs.insert("user".into(), Value::Str("alice@example".into()));
    kwargs.insert("count".into(), Value::UInt(17));
    kwargs.insert("tags".into(), Value::List(vec![Value::Str("red".into()), Value::Str("blue".into())]));
    kwargs.insert("ok".into(), Value::Bool(false));
    Payload::values(Some(args), Some(kwargs))
}

/// A larger payload: about 4 KiB of args + kwargs in JSON (a list of
/// records, as a typical "list query" result).
pub fn large_payload() -> Payload {
    let records: List = (0..57u64)
        .map(|i| {
            let mut r = Dict::new();
            r.insert("id".into(), Value::UInt(1000 + i));
            r.insert("name".into(), Value::Str(format!("item-{i:04}")));
            r.insert("price".into(), Value::Float(i as f64 * 1.5 + 0.25));
            r.insert("stock".into(), Value::UInt(i * 7));
            r.insert("active".into(), Value::Bool(i % 2 == 0));
            Value::Dict(r)
        })
        .collect();
    let mut kwargs = Dict::new();
    kwargs.insert("page".into(), Value::UInt(1));
    kwargs.insert("total".into(), Value::UInt(57));
    Payload::values(Some(vec![Value::List(records)]), Some(kwargs))
}

/// Encoded size of `payload`'s args + kwargs in JSON (for labelling).
pub fn json_payload_len(payload: &Payload) -> usize {
    let e = payload.encoded_in(wamp_proto::PayloadFormat::Json).expect("fixture payload encodes");
    e.args.map_or(0, |b| b.len()) + e.kwargs.map_or(0, |b| b.len())
}

/// A PUBLISH to `topic` carrying `payload`.
pub fn publish_msg(topic: &str, payload: Payload) -> Message {
    Message::Publish { request: RequestId::from_valid(1), options: Dict::new(), topic: topic.to_owned(), payload }
}

/// `msg` encoded in `ser` and decoded again, so that its payload is
/// `Payload::Raw` exactly as the router receives it from a peer.
pub fn as_received(ser: Serializer, msg: &Message) -> (Bytes, Message) {
    let bytes = ser.encode(msg).expect("fixture encodes");
    let decoded = ser.decode(&bytes).expect("fixture decodes");
    assert!(matches!(decoded_payload(&decoded), Some(Payload::Raw { .. })), "decoders keep payloads raw");
    (bytes, decoded)
}

fn decoded_payload(msg: &Message) -> Option<&Payload> {
    match msg {
        Message::Publish { payload, .. }
        | Message::Call { payload, .. }
        | Message::Yield { payload, .. }
        | Message::Event { payload, .. } => Some(payload),
        _ => None,
    }
}

/// The role every benchmark session joins under: everything allowed.
pub const ROLE: &str = "anonymous";

/// A realm with one role allowing everything (a single prefix permission).
pub fn open_realm() -> Realm {
    let role = Role {
        name: ROLE.into(),
        permissions: vec![Permission {
            uri: String::new(),
            match_policy: MatchPolicy::Prefix,
            allow: Allow::ALL,
            disclose: Disclose::default(),
        }],
    };
    Realm::new(RealmSpec { name: "realm1".into(), roles: vec![role] }, 7)
}

/// Joins session `id` with serializer `ser` and discards the WELCOME.
pub fn join(realm: &mut Realm, id: u64, ser: Serializer) -> SessionId {
    let session = SessionId::from_valid(id);
    let info = SessionInfo {
        session,
        serializer: ser,
        authid: format!("client-{id}"),
        authrole: ROLE.into(),
        authmethod: "anonymous".into(),
        authprovider: "static".into(),
        transport: Dict::new(),
    };
    realm.join(info, &Dict::new()).expect("join succeeds");
    drain(realm);
    session
}

/// Drains all queued transmits; returns how many `Transmit::Message`s there
/// were and their total size.
pub fn drain(realm: &mut Realm) -> (usize, usize) {
    let (mut n, mut bytes) = (0, 0);
    while let Some(t) = realm.poll_transmit() {
        if let Transmit::Message { bytes: b, .. } = t {
            n += 1;
            bytes += b.len();
        }
    }
    (n, bytes)
}

/// Handles `msg` from `session` and returns the single reply it produced,
/// decoded with `ser` (panics otherwise: a fixture bug).
pub fn request(realm: &mut Realm, session: SessionId, ser: Serializer, msg: Message) -> Message {
    realm.handle_message(session, msg);
    let mut replies = Vec::new();
    while let Some(t) = realm.poll_transmit() {
        if let Transmit::Message { bytes, .. } = t {
            replies.push(ser.decode(&bytes).expect("router output decodes"));
        }
    }
    assert_eq!(replies.len(), 1, "expected exactly one reply, got {replies:?}");
    replies.remove(0)
}
