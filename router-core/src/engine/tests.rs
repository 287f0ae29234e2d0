//! Engine tests: a realm driven in memory by sessions speaking different
//! serializers. Client messages are encoded and decoded with the session's
//! serializer first, so the engine sees exactly what the runtime would give
//! it (raw, undecoded payloads); output is decoded again for assertions.

use std::collections::HashMap;

use bytes::Bytes;
use wamp_proto::{code, Dict, List, Message, Payload, RegistrationId, RequestId, SessionId, SubscriptionId, Value};

use super::*;

// ---------------------------------------------------------------------------
// harness
// ---------------------------------------------------------------------------

/// One decoded output item.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Out {
    Msg(SessionId, Message),
    Close(SessionId),
    /// A meta event for the operator (only with `set_operator_events`).
    Operator(String, List),
}

pub(super) struct Harness {
    pub(super) realm: Realm,
    pub(super) serializers: HashMap<SessionId, Serializer>,
    pub(super) next: u64,
}

pub(super) fn open_role(name: &str) -> Role {
    Role {
        name: name.into(),
        permissions: vec![Permission {
            uri: "".into(),
            match_policy: MatchPolicy::Prefix,
            allow: Allow::ALL,
            disclose: Disclose::default(),
        }],
    }
}

pub(super) fn perm(uri: &str, m: MatchPolicy, allow: Allow, disclose: Disclose) -> Permission {
    Permission { uri: uri.into(), match_policy: m, allow, disclose }
}

impl Harness {
    pub(super) fn new() -> Harness {
        Harness::with_roles(vec![open_role("anonymous")])
    }

    pub(super) fn with_roles(roles: Vec<Role>) -> Harness {
        let spec = RealmSpec { name: "realm1".into(), roles };
        Harness { realm: Realm::new(spec, 42), serializers: HashMap::new(), next: 100 }
    }

    /// Joins a session and returns its id, asserting the WELCOME.
    pub(super) fn join(&mut self, ser: Serializer, role: &str) -> SessionId {
        self.next += 1;
        let sid = SessionId::from_valid(self.next);
        let info = SessionInfo {
            session: sid,
            serializer: ser,
            authid: format!("user-{}", self.next),
            authrole: role.into(),
            authmethod: "anonymous".into(),
            authprovider: "static".into(),
            transport: Dict::new(),
        };
        self.serializers.insert(sid, ser);
        self.realm.join(info, &Dict::new()).expect("join");
        let out = self.drain();
        assert!(
            matches!(&out[..], [Out::Msg(s, Message::Welcome { session, .. })] if *s == sid && *session == sid),
            "{out:?}"
        );
        sid
    }

    /// Sends `msg` as client `sid` would: encoded, then decoded again.
    pub(super) fn send(&mut self, sid: SessionId, msg: Message) {
        let ser = self.serializers[&sid];
        let bytes = ser.encode(&msg).expect("client encode");
        let decoded = ser.decode(&bytes).expect("client decode");
        self.realm.handle_message(sid, decoded);
    }

    pub(super) fn raw_drain(&mut self) -> Vec<Transmit> {
        std::iter::from_fn(|| self.realm.poll_transmit()).collect()
    }

    pub(super) fn drain(&mut self) -> Vec<Out> {
        let raw = self.raw_drain();
        raw.into_iter()
            .map(|t| match t {
                Transmit::Message { session, bytes } => {
                    let ser = self.serializers[&session];
                    Out::Msg(session, ser.decode(&bytes).expect("engine output decodes"))
                }
                Transmit::Close { session } => Out::Close(session),
                Transmit::Peer { peer, msg } => panic!("no peers in this harness, got {msg:?} for {peer}"),
                Transmit::Operator { topic, args } => Out::Operator(topic, args),
            })
            .collect()
    }

    /// Drains and expects exactly one message, to `sid`.
    pub(super) fn one(&mut self, sid: SessionId) -> Message {
        let out = self.drain();
        match &out[..] {
            [Out::Msg(s, m)] if *s == sid => m.clone(),
            _ => panic!("expected one message to {sid}, got {out:?}"),
        }
    }

    pub(super) fn subscribe(&mut self, sid: SessionId, req: u64, topic: &str) -> SubscriptionId {
        self.send(sid, Message::Subscribe { request: rid(req), options: Dict::new(), topic: topic.into() });
        match self.one(sid) {
            Message::Subscribed { request, subscription } if request == rid(req) => subscription,
            other => panic!("expected SUBSCRIBED, got {other:?}"),
        }
    }

    pub(super) fn register(&mut self, sid: SessionId, req: u64, procedure: &str) -> RegistrationId {
        self.send(sid, Message::Register { request: rid(req), options: Dict::new(), procedure: procedure.into() });
        match self.one(sid) {
            Message::Registered { request, registration } if request == rid(req) => registration,
            other => panic!("expected REGISTERED, got {other:?}"),
        }
    }

    pub(super) fn publish(&mut self, sid: SessionId, req: u64, topic: &str, options: Dict, payload: Payload) {
        self.send(sid, Message::Publish { request: rid(req), options, topic: topic.into(), payload });
    }

    pub(super) fn call(&mut self, sid: SessionId, req: u64, procedure: &str, payload: Payload) {
        self.send(sid, Message::Call { request: rid(req), options: Dict::new(), procedure: procedure.into(), payload });
    }
}

pub(super) fn rid(v: u64) -> RequestId {
    RequestId::from_valid(v)
}

pub(super) fn dict(items: Vec<(&str, Value)>) -> Dict {
    items.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
}

pub(super) fn args(items: Vec<Value>) -> Payload {
    Payload::values(Some(items), None)
}

pub(super) fn args_kwargs(a: List, k: Dict) -> Payload {
    Payload::values(Some(a), Some(k))
}

pub(super) fn values(p: &Payload) -> (Option<List>, Option<Dict>) {
    p.to_values().expect("payload decodes")
}

/// Asserts an ERROR reply and returns its args.
pub(super) fn expect_error(msg: &Message, rtype: u64, req: u64, uri: &str) {
    match msg {
        Message::Error { request_type, request, error, .. } => {
            assert_eq!((*request_type, *request, error.as_str()), (rtype, rid(req), uri), "{msg:?}");
        }
        other => panic!("expected ERROR {uri}, got {other:?}"),
    }
}

pub(super) fn expect_abort_and_close(out: &[Out], sid: SessionId, reason_uri: &str) {
    match out {
        [Out::Msg(s, Message::Abort { reason, details }), Out::Close(c)] => {
            assert_eq!((*s, *c), (sid, sid));
            assert_eq!(reason, reason_uri);
            assert!(details.get("message").and_then(Value::as_str).is_some_and(|m| !m.is_empty()));
        }
        _ => panic!("expected ABORT {reason_uri} + Close for {sid}, got {out:?}"),
    }
}

const SERS: [Serializer; 3] = [Serializer::Json, Serializer::Msgpack, Serializer::Cbor];

// ---------------------------------------------------------------------------
// session lifecycle
// ---------------------------------------------------------------------------

#[test]
fn welcome_details_announce_identity_and_features() {
    for ser in SERS {
        let mut h = Harness::new();
        h.next += 1;
        let sid = SessionId::from_valid(h.next);
        h.serializers.insert(sid, ser);
        let info = SessionInfo {
            session: sid,
            serializer: ser,
            authid: "alice".into(),
            authrole: "anonymous".into(),
            authmethod: "anonymous".into(),
            authprovider: "static".into(),
            transport: Dict::new(),
        };
        h.realm.join(info, &Dict::new()).unwrap();
        let Message::Welcome { session, details } = h.one(sid) else { panic!("no WELCOME") };
        assert_eq!(session, sid);
        assert_eq!(details.get("realm").and_then(Value::as_str), Some("realm1"));
        assert_eq!(details.get("authid").and_then(Value::as_str), Some("alice"));
        assert_eq!(details.get("authrole").and_then(Value::as_str), Some("anonymous"));
        assert_eq!(details.get("authmethod").and_then(Value::as_str), Some("anonymous"));
        assert_eq!(details.get("authprovider").and_then(Value::as_str), Some("static"));
        let roles = details.get("roles").and_then(Value::as_dict).expect("roles");
        let features = |role: &str| -> Dict {
            roles
                .get(role)
                .and_then(Value::as_dict)
                .and_then(|r| r.get("features"))
                .and_then(Value::as_dict)
                .cloned()
                .expect(role)
        };
        let broker = features("broker");
        assert_eq!(broker.get("publisher_exclusion"), Some(&Value::Bool(true)));
        assert_eq!(broker.get("publisher_identification"), Some(&Value::Bool(true)));
        // The full list: tests_broker.rs; the meta API (on by default) adds
        // session_meta_api and subscription_meta_api (tests_meta.rs).
        assert_eq!(broker.len(), 10, "{broker:?}");
        let dealer = features("dealer");
        for f in [
            "caller_identification",
            "progressive_call_results",
            "progressive_call_invocations",
            "call_canceling",
            "call_timeout",
            "pattern_based_registration",
            "shared_registration",
            "sharded_registration",
            "registration_revocation",
        ] {
            assert_eq!(dealer.get(f), Some(&Value::Bool(true)), "{f}");
        }
        for f in ["session_meta_api", "registration_meta_api", "testament_meta_api"] {
            assert_eq!(dealer.get(f), Some(&Value::Bool(true)), "{f}");
        }
        assert_eq!(dealer.len(), 12, "{dealer:?}");
        assert_eq!(h.realm.session_count(), 1);
        assert_eq!(h.realm.name(), "realm1");
        assert!(h.realm.has_role("anonymous") && !h.realm.has_role("admin"));
    }
}

#[test]
fn join_refusals() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Json, "anonymous");
    // Duplicate id: refused, nothing queued, existing session untouched.
    let info = SessionInfo {
        session: a,
        serializer: Serializer::Json,
        authid: "x".into(),
        authrole: "anonymous".into(),
        authmethod: "anonymous".into(),
        authprovider: "static".into(),
        transport: Dict::new(),
    };
    assert_eq!(h.realm.join(info.clone(), &Dict::new()), Err(JoinError::SessionExists(a)));
    assert!(h.drain().is_empty());
    // Unknown role: ABORT no_such_role + Close.
    let b = SessionId::from_valid(999);
    h.serializers.insert(b, Serializer::Cbor);
    let err = h
        .realm
        .join(SessionInfo { session: b, serializer: Serializer::Cbor, authrole: "admin".into(), ..info }, &Dict::new());
    assert!(matches!(err, Err(JoinError::NoSuchRole { ref role, .. }) if role == "admin"), "{err:?}");
    expect_abort_and_close(&h.drain(), b, uris::NO_SUCH_ROLE);
    assert_eq!(h.realm.session_count(), 1);
}

#[test]
fn goodbye_flow_cleans_up() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Msgpack, "anonymous");
    let b = h.join(Serializer::Json, "anonymous");
    h.register(a, 1, "com.app.proc");
    h.subscribe(a, 2, "com.app.topic");
    h.send(a, Message::Goodbye { details: Dict::new(), reason: uris::CLOSE_REALM.into() });
    let out = h.drain();
    match &out[..] {
        [Out::Msg(s, Message::Goodbye { reason, .. }), Out::Close(c)] => {
            assert_eq!((*s, *c), (a, a));
            assert_eq!(reason, uris::GOODBYE_AND_OUT);
        }
        _ => panic!("{out:?}"),
    }
    assert_eq!(h.realm.session_count(), 1);
    assert_eq!(h.realm.dealer.len(), 0);
    assert_eq!(h.realm.broker.len(), 0);
    // The procedure is free again.
    h.register(b, 3, "com.app.proc");
    // Later messages for the gone session are ignored.
    h.realm.handle_message(a, Message::Goodbye { details: Dict::new(), reason: uris::CLOSE_REALM.into() });
    assert!(h.drain().is_empty());
}

#[test]
fn router_initiated_goodbye() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Cbor, "anonymous");
    let b = h.join(Serializer::Json, "anonymous");
    h.subscribe(a, 1, "t");
    h.realm.goodbye(a, uris::SYSTEM_SHUTDOWN, "bye now");
    match h.one(a) {
        Message::Goodbye { reason, details } => {
            assert_eq!(reason, uris::SYSTEM_SHUTDOWN);
            assert_eq!(details.get("message").and_then(Value::as_str), Some("bye now"));
        }
        other => panic!("{other:?}"),
    }
    // Detached at once: publications no longer reach it.
    h.publish(b, 2, "t", Dict::new(), Payload::EMPTY);
    assert!(h.drain().is_empty());
    // Other messages while closing are ignored, the reply closes.
    h.send(a, Message::Subscribe { request: rid(3), options: Dict::new(), topic: "t".into() });
    assert!(h.drain().is_empty());
    h.send(a, Message::Goodbye { details: Dict::new(), reason: uris::GOODBYE_AND_OUT.into() });
    assert_eq!(h.drain(), vec![Out::Close(a)]);
    assert_eq!(h.realm.session_count(), 1);
}

#[test]
fn external_abort() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Json, "anonymous");
    h.register(a, 1, "p");
    h.realm.abort(a, uris::PROTOCOL_VIOLATION, "undecodable message");
    let out = h.drain();
    expect_abort_and_close(&out, a, uris::PROTOCOL_VIOLATION);
    if let Out::Msg(_, Message::Abort { details, .. }) = &out[0] {
        assert_eq!(details.get("message").and_then(Value::as_str), Some("undecodable message"));
    }
    assert_eq!(h.realm.session_count(), 0);
    assert_eq!(h.realm.dealer.len(), 0);
    assert_eq!(h.realm.stats().protocol_violations, 1);
    // Unknown session: nothing.
    h.realm.abort(a, uris::PROTOCOL_VIOLATION, "again");
    assert!(h.drain().is_empty());
}

// ---------------------------------------------------------------------------
// publish / subscribe
// ---------------------------------------------------------------------------

#[test]
fn subscribe_publish_event_across_serializers() {
    let mut h = Harness::new();
    let p = h.join(Serializer::Json, "anonymous");
    let s1 = h.join(Serializer::Msgpack, "anonymous");
    let s2 = h.join(Serializer::Cbor, "anonymous");
    let id_p = h.subscribe(p, 1, "com.app.topic");
    let id1 = h.subscribe(s1, 1, "com.app.topic");
    let id2 = h.subscribe(s2, 7, "com.app.topic");
    assert_eq!(id_p, id1, "one subscription per topic");
    assert_eq!(id1, id2);
    assert_eq!(h.subscribe(s1, 2, "com.app.topic"), id1, "subscribing twice gives the same id");
    let other = h.subscribe(s1, 3, "com.app.other");
    assert_ne!(other, id1);

    let kw = dict(vec![("k", Value::Str("v".into()))]);
    h.publish(p, 10, "com.app.topic", Dict::new(), args_kwargs(vec![Value::UInt(1), "two".into()], kw.clone()));
    let out = h.drain();
    assert_eq!(out.len(), 2, "publisher excluded by default, no PUBLISHED: {out:?}");
    let mut seen_pub = None;
    for o in &out {
        let Out::Msg(target, Message::Event { subscription, publication, details, payload }) = o else {
            panic!("{o:?}")
        };
        assert!(*target == s1 || *target == s2);
        assert_eq!(*subscription, id1);
        assert!(details.is_empty(), "no disclosure by default: {details:?}");
        assert_eq!(values(payload), (Some(vec![Value::UInt(1), "two".into()]), Some(kw.clone())));
        assert!(publication.get() >= 1 && publication.get() <= wamp_proto::MAX_ID);
        assert!(seen_pub.is_none_or(|p| p == *publication), "same publication id for all");
        seen_pub = Some(*publication);
    }

    // acknowledge + exclude_me=false: the publisher gets the event and PUBLISHED.
    let opts = dict(vec![("acknowledge", Value::Bool(true)), ("exclude_me", Value::Bool(false))]);
    h.publish(p, 11, "com.app.topic", opts, args(vec![Value::Bool(true)]));
    let out = h.drain();
    assert_eq!(out.len(), 4, "{out:?}");
    let pubs: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Out::Msg(_, Message::Event { publication, .. }) => Some(*publication),
            _ => None,
        })
        .collect();
    assert_eq!(pubs.len(), 3);
    assert!(out.iter().any(|o| matches!(o, Out::Msg(s, Message::Event { .. }) if *s == p)));
    match out.last() {
        Some(Out::Msg(s, Message::Published { request, publication })) => {
            assert_eq!((*s, *request), (p, rid(11)));
            assert!(pubs.iter().all(|x| x == publication));
            assert_ne!(Some(*publication), seen_pub);
        }
        other => panic!("expected PUBLISHED last, got {other:?}"),
    }

    // Publication to a topic nobody subscribed: only PUBLISHED.
    h.publish(p, 12, "com.app.nobody", dict(vec![("acknowledge", Value::Bool(true))]), Payload::EMPTY);
    assert!(matches!(h.one(p), Message::Published { request, .. } if request == rid(12)));
    let st = h.realm.stats();
    assert_eq!(st.publications, 3);
    assert_eq!(st.events_delivered, 5);
}

#[test]
fn unsubscribe_and_errors() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Json, "anonymous");
    let b = h.join(Serializer::Cbor, "anonymous");
    let c = h.join(Serializer::Msgpack, "anonymous");
    let id = h.subscribe(a, 1, "t");
    assert_eq!(h.subscribe(b, 1, "t"), id);
    // Unknown subscription id.
    h.send(a, Message::Unsubscribe { request: rid(2), subscription: SubscriptionId::from_valid(12345) });
    expect_error(&h.one(a), code::UNSUBSCRIBE, 2, uris::NO_SUCH_SUBSCRIPTION);
    // Existing subscription, but c is not a subscriber.
    h.send(c, Message::Unsubscribe { request: rid(3), subscription: id });
    expect_error(&h.one(c), code::UNSUBSCRIBE, 3, uris::NO_SUCH_SUBSCRIPTION);
    // a unsubscribes; b still gets events, a does not.
    h.send(a, Message::Unsubscribe { request: rid(4), subscription: id });
    assert!(matches!(h.one(a), Message::Unsubscribed { request, .. } if request == rid(4)));
    h.send(a, Message::Unsubscribe { request: rid(5), subscription: id });
    expect_error(&h.one(a), code::UNSUBSCRIBE, 5, uris::NO_SUCH_SUBSCRIPTION);
    h.publish(c, 6, "t", Dict::new(), args(vec![Value::UInt(6)]));
    assert!(matches!(h.one(b), Message::Event { subscription, .. } if subscription == id));
    assert_eq!(h.realm.broker.len(), 1);
    // Last subscriber leaves: subscription deleted.
    h.send(b, Message::Unsubscribe { request: rid(7), subscription: id });
    assert!(matches!(h.one(b), Message::Unsubscribed { .. }));
    assert_eq!(h.realm.broker.len(), 0);
    h.publish(c, 8, "t", Dict::new(), Payload::EMPTY);
    assert!(h.drain().is_empty());
}

#[test]
fn fan_out_shares_one_allocation_and_passes_raw_payload_through() {
    let mut h = Harness::new();
    let p = h.join(Serializer::Json, "anonymous");
    let json_subs: Vec<_> = (0..3).map(|_| h.join(Serializer::Json, "anonymous")).collect();
    let mp_subs: Vec<_> = (0..2).map(|_| h.join(Serializer::Msgpack, "anonymous")).collect();
    let cbor_sub = h.join(Serializer::Cbor, "anonymous");
    let fb_sub = h.join(Serializer::Flatbuffers, "anonymous");
    for (i, s) in json_subs.iter().chain(&mp_subs).chain([&cbor_sub, &fb_sub]).enumerate() {
        h.subscribe(*s, i as u64 + 1, "com.fan");
    }
    // The publisher's bytes, as the runtime would have received them; the
    // payload uses unusual but valid JSON spacing that any re-encoding
    // would normalize away.
    let wire = Bytes::from_static(br#"[16, 77, {}, "com.fan", [1,  2.5,"x" ], {"a" :[true,null]}]"#);
    let msg = Serializer::Json.decode(&wire).expect("decode publish");
    let (raw_args, raw_kwargs) = match &msg {
        Message::Publish { payload: Payload::Raw { args, kwargs, .. }, .. } => {
            (args.clone().unwrap(), kwargs.clone().unwrap())
        }
        other => panic!("decoder did not keep the payload raw: {other:?}"),
    };
    assert_eq!(&raw_args[..], br#"[1,  2.5,"x" ]"#);
    h.realm.handle_message(p, msg);
    let raw = h.raw_drain();
    assert_eq!(raw.len(), 7);
    let bytes_of = |sid: SessionId| -> Bytes {
        raw.iter()
            .find_map(|t| match t {
                Transmit::Message { session, bytes } if *session == sid => Some(bytes.clone()),
                _ => None,
            })
            .expect("event for subscriber")
    };
    let j0 = bytes_of(json_subs[0]);
    for s in &json_subs[1..] {
        assert_eq!(bytes_of(*s).as_ptr(), j0.as_ptr(), "JSON subscribers share one allocation");
    }
    let m0 = bytes_of(mp_subs[0]);
    assert_eq!(bytes_of(mp_subs[1]).as_ptr(), m0.as_ptr(), "msgpack subscribers share one allocation");
    assert_ne!(m0.as_ptr(), j0.as_ptr());
    // Byte-identical pass-through for the same format.
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
    assert!(find(&j0, &raw_args), "raw args spliced verbatim: {:?}", String::from_utf8_lossy(&j0));
    assert!(find(&j0, &raw_kwargs), "raw kwargs spliced verbatim");
    match Serializer::Json.decode(&j0).unwrap() {
        Message::Event { payload: Payload::Raw { args, kwargs, .. }, .. } => {
            assert_eq!(args.as_deref(), Some(&raw_args[..]));
            assert_eq!(kwargs.as_deref(), Some(&raw_kwargs[..]));
        }
        other => panic!("{other:?}"),
    }
    // Transcoded for the others, same values.
    let expected = (
        Some(vec![Value::UInt(1), Value::Float(2.5), "x".into()]),
        Some(dict(vec![("a", Value::List(vec![Value::Bool(true), Value::Null]))])),
    );
    for (sid, ser) in
        [(mp_subs[0], Serializer::Msgpack), (cbor_sub, Serializer::Cbor), (fb_sub, Serializer::Flatbuffers)]
    {
        match ser.decode(&bytes_of(sid)).unwrap() {
            Message::Event { payload, .. } => assert_eq!(values(&payload), expected),
            other => panic!("{other:?}"),
        }
    }
    assert_ne!(bytes_of(fb_sub).as_ptr(), bytes_of(cbor_sub).as_ptr());
    assert_eq!(h.realm.stats().events_delivered, 7);
}

#[test]
fn publisher_disclosure() {
    let disclosing = Role {
        name: "loud".into(),
        permissions: vec![perm("", MatchPolicy::Prefix, Allow::ALL, Disclose { caller: true, publisher: true })],
    };
    let mut h = Harness::with_roles(vec![open_role("anonymous"), disclosing]);
    let quiet = h.join(Serializer::Json, "anonymous");
    let loud = h.join(Serializer::Msgpack, "loud");
    let sub = h.join(Serializer::Cbor, "anonymous");
    h.subscribe(sub, 1, "t");
    let publisher_of = |m: Message| match m {
        Message::Event { details, .. } => details,
        other => panic!("{other:?}"),
    };
    // Role forces disclosure.
    h.publish(loud, 1, "t", Dict::new(), Payload::EMPTY);
    let d = publisher_of(h.one(sub));
    assert_eq!(d.get("publisher").and_then(Value::as_u64), Some(loud.get()));
    assert_eq!(d.get("publisher_authid").and_then(Value::as_str), Some(format!("user-{}", loud.get()).as_str()));
    assert_eq!(d.get("publisher_authrole").and_then(Value::as_str), Some("loud"));
    // No disclosure by default.
    h.publish(quiet, 2, "t", Dict::new(), Payload::EMPTY);
    assert!(!publisher_of(h.one(sub)).contains_key("publisher"));
    // disclose_me on request.
    h.publish(quiet, 3, "t", dict(vec![("disclose_me", Value::Bool(true))]), Payload::EMPTY);
    assert_eq!(publisher_of(h.one(sub)).get("publisher").and_then(Value::as_u64), Some(quiet.get()));
}

// ---------------------------------------------------------------------------
// RPC
// ---------------------------------------------------------------------------

#[test]
fn register_call_yield_result() {
    let mut h = Harness::new();
    let callee = h.join(Serializer::Cbor, "anonymous");
    let caller = h.join(Serializer::Json, "anonymous");
    let other = h.join(Serializer::Msgpack, "anonymous");
    let reg = h.register(callee, 1, "com.app.add");

    // Second registration of the same procedure.
    h.send(other, Message::Register { request: rid(2), options: Dict::new(), procedure: "com.app.add".into() });
    expect_error(&h.one(other), code::REGISTER, 2, uris::PROCEDURE_ALREADY_EXISTS);

    // CALL -> INVOCATION (sequential invocation ids per callee).
    let kw = dict(vec![("z", Value::Int(-3))]);
    h.call(caller, 50, "com.app.add", args_kwargs(vec![Value::UInt(2), Value::UInt(3)], kw.clone()));
    let (inv1, details) = match h.one(callee) {
        Message::Invocation { request, registration, details, payload } => {
            assert_eq!(registration, reg);
            assert_eq!(values(&payload), (Some(vec![Value::UInt(2), Value::UInt(3)]), Some(kw.clone())));
            (request, details)
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(inv1, rid(1));
    assert!(details.is_empty(), "no caller disclosure by default: {details:?}");
    h.call(other, 60, "com.app.add", args(vec![Value::UInt(10)]));
    let inv2 = match h.one(callee) {
        Message::Invocation { request, .. } => request,
        other => panic!("{other:?}"),
    };
    assert_eq!(inv2, rid(2));

    // Replies out of order, each to its own caller.
    h.send(callee, Message::Yield { request: inv2, options: Dict::new(), payload: args(vec![Value::UInt(10)]) });
    match h.one(other) {
        Message::Result { request, payload, .. } => {
            assert_eq!(request, rid(60));
            assert_eq!(values(&payload).0, Some(vec![Value::UInt(10)]));
        }
        m => panic!("{m:?}"),
    }
    h.send(
        callee,
        Message::Error {
            request_type: code::INVOCATION,
            request: inv1,
            details: Dict::new(),
            error: "com.app.error.overflow".into(),
            payload: args_kwargs(vec!["too big".into()], dict(vec![("limit", Value::UInt(4))])),
        },
    );
    match h.one(caller) {
        Message::Error { request_type, request, error, payload, .. } => {
            assert_eq!((request_type, request, error.as_str()), (code::CALL, rid(50), "com.app.error.overflow"));
            assert_eq!(values(&payload), (Some(vec!["too big".into()]), Some(dict(vec![("limit", Value::UInt(4))]))));
        }
        m => panic!("{m:?}"),
    }

    // Unknown procedure.
    h.call(caller, 51, "com.app.nope", Payload::EMPTY);
    expect_error(&h.one(caller), code::CALL, 51, uris::NO_SUCH_PROCEDURE);

    // Unregister: wrong session / unknown id / ok / twice.
    h.send(other, Message::Unregister { request: rid(3), registration: reg });
    expect_error(&h.one(other), code::UNREGISTER, 3, uris::NO_SUCH_REGISTRATION);
    h.send(callee, Message::Unregister { request: rid(4), registration: RegistrationId::from_valid(1) });
    expect_error(&h.one(callee), code::UNREGISTER, 4, uris::NO_SUCH_REGISTRATION);
    h.send(callee, Message::Unregister { request: rid(5), registration: reg });
    assert!(matches!(h.one(callee), Message::Unregistered { request, .. } if request == rid(5)));
    h.send(callee, Message::Unregister { request: rid(6), registration: reg });
    expect_error(&h.one(callee), code::UNREGISTER, 6, uris::NO_SUCH_REGISTRATION);
    h.call(caller, 52, "com.app.add", Payload::EMPTY);
    expect_error(&h.one(caller), code::CALL, 52, uris::NO_SUCH_PROCEDURE);
    assert_eq!(h.realm.stats().calls, 2);
}

#[test]
fn flatbuffers_sessions_route_like_the_others() {
    let mut h = Harness::new();
    let fb = h.join(Serializer::Flatbuffers, "anonymous");
    let js = h.join(Serializer::Json, "anonymous");
    let sub = h.subscribe(fb, 1, "com.fb.topic");
    h.publish(js, 2, "com.fb.topic", Dict::new(), args(vec![Value::UInt(7)]));
    match h.one(fb) {
        Message::Event { subscription, payload, .. } => {
            assert_eq!(subscription, sub);
            assert_eq!(values(&payload).0, Some(vec![Value::UInt(7)]));
        }
        m => panic!("{m:?}"),
    }
    h.register(fb, 3, "com.fb.proc");
    h.call(js, 4, "com.fb.proc", args(vec!["q".into()]));
    let Message::Invocation { request, payload, .. } = h.one(fb) else { panic!() };
    assert_eq!(values(&payload).0, Some(vec!["q".into()]));
    h.send(fb, Message::Yield { request, options: Dict::new(), payload: args(vec!["a".into()]) });
    match h.one(js) {
        Message::Result { request, payload, .. } => {
            assert_eq!(request, rid(4));
            assert_eq!(values(&payload).0, Some(vec!["a".into()]));
        }
        m => panic!("{m:?}"),
    }
}

#[test]
fn self_call_works() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Msgpack, "anonymous");
    h.register(a, 1, "echo");
    h.call(a, 2, "echo", args(vec!["hi".into()]));
    let Message::Invocation { request, payload, .. } = h.one(a) else { panic!() };
    h.send(a, Message::Yield { request, options: Dict::new(), payload });
    match h.one(a) {
        Message::Result { request, payload, .. } => {
            assert_eq!(request, rid(2));
            assert_eq!(values(&payload).0, Some(vec!["hi".into()]));
        }
        m => panic!("{m:?}"),
    }
}

#[test]
fn callee_leaves_with_pending_call_cancels_it() {
    let mut h = Harness::new();
    let callee = h.join(Serializer::Json, "anonymous");
    let caller = h.join(Serializer::Cbor, "anonymous");
    h.register(callee, 1, "slow");
    h.call(caller, 9, "slow", Payload::EMPTY);
    assert!(matches!(h.one(callee), Message::Invocation { .. }));
    h.realm.leave(callee);
    expect_error(&h.one(caller), code::CALL, 9, uris::CANCELED);
    assert_eq!(h.realm.session_count(), 1);
    assert_eq!(h.realm.dealer.len(), 0);
    h.call(caller, 10, "slow", Payload::EMPTY);
    expect_error(&h.one(caller), code::CALL, 10, uris::NO_SUCH_PROCEDURE);
}

#[test]
fn caller_leaves_late_yield_is_dropped() {
    let mut h = Harness::new();
    let callee = h.join(Serializer::Msgpack, "anonymous");
    let caller = h.join(Serializer::Json, "anonymous");
    h.register(callee, 1, "slow");
    h.call(caller, 9, "slow", Payload::EMPTY);
    let Message::Invocation { request, .. } = h.one(callee) else { panic!() };
    h.realm.leave(caller);
    assert!(h.drain().is_empty(), "nothing queued on leave");
    h.send(callee, Message::Yield { request, options: Dict::new(), payload: Payload::EMPTY });
    assert!(h.drain().is_empty(), "late YIELD dropped, callee not aborted");
    assert_eq!(h.realm.stats().stale_replies, 1);
    assert_eq!(h.realm.stats().protocol_violations, 0);
    assert_eq!(h.realm.session_count(), 1);
    // A reply for an id never issued is a violation.
    h.send(callee, Message::Yield { request: rid(99), options: Dict::new(), payload: Payload::EMPTY });
    expect_abort_and_close(&h.drain(), callee, uris::PROTOCOL_VIOLATION);
}

#[test]
fn caller_disclosure() {
    let disclosing = Role {
        name: "loud".into(),
        permissions: vec![perm("", MatchPolicy::Prefix, Allow::ALL, Disclose { caller: true, publisher: false })],
    };
    let mut h = Harness::with_roles(vec![open_role("anonymous"), disclosing]);
    let callee = h.join(Serializer::Cbor, "anonymous");
    let loud = h.join(Serializer::Json, "loud");
    let quiet = h.join(Serializer::Msgpack, "anonymous");
    h.register(callee, 1, "p");
    let details_of = |m: Message| match m {
        Message::Invocation { details, .. } => details,
        other => panic!("{other:?}"),
    };
    h.call(loud, 1, "p", Payload::EMPTY);
    let d = details_of(h.one(callee));
    assert_eq!(d.get("caller").and_then(Value::as_u64), Some(loud.get()));
    assert_eq!(d.get("caller_authrole").and_then(Value::as_str), Some("loud"));
    assert!(d.get("caller_authid").and_then(Value::as_str).is_some());
    h.call(quiet, 1, "p", Payload::EMPTY);
    assert!(details_of(h.one(callee)).is_empty());
    h.send(
        quiet,
        Message::Call {
            request: rid(2),
            options: dict(vec![("disclose_me", Value::Bool(true))]),
            procedure: "p".into(),
            payload: Payload::EMPTY,
        },
    );
    assert_eq!(details_of(h.one(callee)).get("caller").and_then(Value::as_u64), Some(quiet.get()));
}

// ---------------------------------------------------------------------------
// authorization and URIs
// ---------------------------------------------------------------------------

#[test]
fn authorization_denials_for_each_action() {
    // "restricted" may subscribe and call under com.ok., nothing else; the
    // exact permission on com.ok.locked denies everything.
    let restricted = Role {
        name: "restricted".into(),
        permissions: vec![
            perm(
                "com.ok.",
                MatchPolicy::Prefix,
                Allow { call: true, register: false, publish: false, subscribe: true },
                Disclose::default(),
            ),
            perm("com.ok.locked", MatchPolicy::Exact, Allow::NONE, Disclose::default()),
        ],
    };
    let mut h = Harness::with_roles(vec![open_role("anonymous"), restricted]);
    let r = h.join(Serializer::Msgpack, "restricted");
    let admin = h.join(Serializer::Json, "anonymous");

    h.send(r, Message::Subscribe { request: rid(1), options: Dict::new(), topic: "com.other".into() });
    expect_error(&h.one(r), code::SUBSCRIBE, 1, uris::NOT_AUTHORIZED);
    h.send(r, Message::Subscribe { request: rid(2), options: Dict::new(), topic: "com.ok.locked".into() });
    expect_error(&h.one(r), code::SUBSCRIBE, 2, uris::NOT_AUTHORIZED);
    let sub = h.subscribe(r, 3, "com.ok.news");

    h.send(r, Message::Register { request: rid(4), options: Dict::new(), procedure: "com.ok.proc".into() });
    expect_error(&h.one(r), code::REGISTER, 4, uris::NOT_AUTHORIZED);

    h.register(admin, 5, "com.ok.proc");
    h.register(admin, 6, "com.other.proc");
    h.register(admin, 7, "com.ok.locked");
    h.call(r, 8, "com.other.proc", Payload::EMPTY);
    expect_error(&h.one(r), code::CALL, 8, uris::NOT_AUTHORIZED);
    h.call(r, 9, "com.ok.locked", Payload::EMPTY);
    expect_error(&h.one(r), code::CALL, 9, uris::NOT_AUTHORIZED);
    h.call(r, 10, "com.ok.proc", Payload::EMPTY);
    assert!(matches!(h.one(admin), Message::Invocation { .. }));

    // Publish: ERROR only with acknowledge; silent drop otherwise, counted.
    h.publish(r, 11, "com.ok.news", dict(vec![("acknowledge", Value::Bool(true))]), Payload::EMPTY);
    expect_error(&h.one(r), code::PUBLISH, 11, uris::NOT_AUTHORIZED);
    h.subscribe(admin, 12, "com.ok.news");
    h.publish(r, 13, "com.ok.news", Dict::new(), Payload::EMPTY);
    assert!(h.drain().is_empty(), "denied publication neither answered nor delivered");
    assert_eq!(h.realm.stats().publishes_dropped_unauthorized, 2);
    assert_eq!(h.realm.stats().publications, 0);
    // Admin's publications reach the restricted subscriber.
    h.publish(admin, 14, "com.ok.news", Dict::new(), Payload::EMPTY);
    assert!(matches!(h.one(r), Message::Event { subscription, .. } if subscription == sub));
}

#[test]
fn invalid_and_reserved_uris() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Cbor, "anonymous");
    let ack = || dict(vec![("acknowledge", Value::Bool(true))]);
    for (i, bad) in ["", "a..b", "with space", "a.#.b", ".a", "a."].iter().enumerate() {
        let base = 10 * i as u64;
        h.send(a, Message::Subscribe { request: rid(base + 1), options: Dict::new(), topic: (*bad).into() });
        expect_error(&h.one(a), code::SUBSCRIBE, base + 1, uris::INVALID_URI);
        h.publish(a, base + 2, bad, ack(), Payload::EMPTY);
        expect_error(&h.one(a), code::PUBLISH, base + 2, uris::INVALID_URI);
        h.send(a, Message::Register { request: rid(base + 3), options: Dict::new(), procedure: (*bad).into() });
        expect_error(&h.one(a), code::REGISTER, base + 3, uris::INVALID_URI);
        h.call(a, base + 4, bad, Payload::EMPTY);
        expect_error(&h.one(a), code::CALL, base + 4, uris::INVALID_URI);
    }
    // Invalid topic without acknowledge: silent.
    h.publish(a, 100, "a b", Dict::new(), Payload::EMPTY);
    assert!(h.drain().is_empty());
    // Reserved wamp. prefix for register and publish.
    h.send(a, Message::Register { request: rid(101), options: Dict::new(), procedure: "wamp.session.count".into() });
    expect_error(&h.one(a), code::REGISTER, 101, uris::INVALID_URI);
    h.publish(a, 102, "wamp.session.on_join", ack(), Payload::EMPTY);
    expect_error(&h.one(a), code::PUBLISH, 102, uris::INVALID_URI);
    // Unsupported pattern options.
    let regex = dict(vec![("match", Value::Str("regex".into()))]);
    h.send(a, Message::Subscribe { request: rid(103), options: regex, topic: "com".into() });
    expect_error(&h.one(a), code::SUBSCRIBE, 103, uris::INVALID_ARGUMENT);
    let fuzzy = dict(vec![("match", Value::Str("fuzzy".into()))]);
    h.send(a, Message::Register { request: rid(104), options: fuzzy, procedure: "com".into() });
    expect_error(&h.one(a), code::REGISTER, 104, uris::INVALID_ARGUMENT);
    assert_eq!(h.realm.stats().publishes_dropped_invalid, 8);
}

// ---------------------------------------------------------------------------
// protocol violations
// ---------------------------------------------------------------------------

#[test]
fn protocol_violations_abort_only_the_offender() {
    let bad_messages = vec![
        Message::Hello { realm: "realm1".into(), details: Dict::new() },
        Message::Welcome { session: SessionId::from_valid(5), details: Dict::new() },
        Message::Event {
            subscription: SubscriptionId::from_valid(1),
            publication: wamp_proto::PublicationId::from_valid(2),
            details: Dict::new(),
            payload: Payload::EMPTY,
        },
        Message::Invocation {
            request: rid(1),
            registration: RegistrationId::from_valid(1),
            details: Dict::new(),
            payload: Payload::EMPTY,
        },
        Message::Result { request: rid(1), details: Dict::new(), payload: Payload::EMPTY },
        Message::Published { request: rid(1), publication: wamp_proto::PublicationId::from_valid(3) },
        Message::Error {
            request_type: code::CALL,
            request: rid(1),
            details: Dict::new(),
            error: "x.y".into(),
            payload: Payload::EMPTY,
        },
        Message::Error {
            request_type: code::INVOCATION,
            request: rid(77),
            details: Dict::new(),
            error: "x.y".into(),
            payload: Payload::EMPTY,
        },
        Message::Yield { request: rid(1), options: Dict::new(), payload: Payload::EMPTY },
    ];
    let n = bad_messages.len() as u64;
    for (i, bad) in bad_messages.into_iter().enumerate() {
        for ser in Serializer::ALL {
            let mut h = Harness::new();
            let good = h.join(Serializer::Json, "anonymous");
            let evil = h.join(ser, "anonymous");
            h.subscribe(good, 1, "t");
            h.subscribe(evil, 1, "t");
            h.register(evil, 2, "evil.proc");
            h.send(evil, bad.clone());
            expect_abort_and_close(&h.drain(), evil, uris::PROTOCOL_VIOLATION);
            assert_eq!(h.realm.session_count(), 1, "case {i}");
            assert_eq!(h.realm.stats().protocol_violations, 1);
            // The good session is unaffected; the offender's state is gone.
            h.publish(good, 3, "t", dict(vec![("exclude_me", Value::Bool(false))]), Payload::EMPTY);
            assert!(matches!(h.one(good), Message::Event { .. }), "case {i}");
            h.register(good, 4, "evil.proc");
        }
    }
    assert!(n >= 9);
}

#[test]
fn client_abort_and_cancel() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Json, "anonymous");
    let b = h.join(Serializer::Json, "anonymous");
    h.register(b, 1, "p");
    h.call(a, 2, "p", Payload::EMPTY);
    let Message::Invocation { request, .. } = h.one(b) else { panic!() };
    // b did not announce call_canceling: CANCEL acts as skip, the caller
    // gets `canceled` at once and the late YIELD is dropped.
    h.send(a, Message::Cancel { request: rid(2), options: Dict::new() });
    expect_error(&h.one(a), code::CALL, 2, uris::CANCELED);
    h.send(b, Message::Yield { request, options: Dict::new(), payload: Payload::EMPTY });
    assert!(h.drain().is_empty());
    // A client ABORT closes without reply.
    h.send(b, Message::Abort { details: Dict::new(), reason: "wamp.close.system_shutdown".into() });
    assert_eq!(h.drain(), vec![Out::Close(b)]);
    assert_eq!(h.realm.session_count(), 1);
    assert_eq!(h.realm.dealer.len(), 0);
}

#[test]
fn stats_count_messages() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Json, "anonymous");
    let b = h.join(Serializer::Msgpack, "anonymous");
    h.subscribe(b, 1, "t");
    h.publish(a, 2, "t", Dict::new(), Payload::EMPTY);
    h.drain();
    let st = *h.realm.stats();
    assert_eq!(st.sessions_joined, 2);
    assert_eq!(st.messages_in, 2);
    // 2 WELCOME + SUBSCRIBED + EVENT
    assert_eq!(st.messages_out, 4);
    assert_eq!(st.events_delivered, 1);
}

#[test]
fn roles_are_added_changed_and_removed_at_run_time() {
    let mut h = Harness::with_roles(vec![open_role("anonymous")]);
    assert!(!h.realm.has_role("app"));
    // A role that may only subscribe under com.app.
    let sub_only = Role {
        name: "app".into(),
        permissions: vec![perm(
            "com.app.",
            MatchPolicy::Prefix,
            Allow { subscribe: true, ..Allow::default() },
            Disclose::default(),
        )],
    };
    h.realm.set_role(&sub_only);
    assert!(h.realm.has_role("app"));
    assert_eq!(h.realm.role_names(), ["anonymous", "app"]);
    let a = h.join(Serializer::Json, "app");
    h.subscribe(a, 1, "com.app.x");
    h.send(a, Message::Register { request: rid(2), options: Dict::new(), procedure: "com.app.p".into() });
    assert!(matches!(h.one(a), Message::Error { error, .. } if error == "wamp.error.not_authorized"));
    // Changed in place: the same session may now register.
    let wider = Role {
        name: "app".into(),
        permissions: vec![perm("com.app.", MatchPolicy::Prefix, Allow::ALL, Disclose::default())],
    };
    h.realm.set_role(&wider);
    h.register(a, 3, "com.app.p");
    assert_eq!(h.realm.role_names(), ["anonymous", "app"], "replaced, not added");
    // Removed: its sessions are closed, other roles are untouched.
    let other = h.join(Serializer::Json, "anonymous");
    assert_eq!(h.realm.remove_role("app"), Some(1));
    let out = h.drain();
    assert!(
        out.iter().any(|o| matches!(o, Out::Msg(s, Message::Goodbye { reason, .. }) if *s == a && reason == "wamp.close.system_shutdown")),
        "{out:?}"
    );
    assert!(!out.iter().any(|o| matches!(o, Out::Msg(s, Message::Goodbye { .. }) if *s == other)));
    assert!(!h.realm.has_role("app"));
    assert_eq!(h.realm.remove_role("app"), None);
    assert_eq!(h.realm.role_names(), ["anonymous"]);
}

#[test]
fn the_operator_calls_meta_procedures_without_a_session() {
    let mut h = Harness::new();
    h.realm =
        Realm::new(RealmSpec { name: "realm1".into(), roles: vec![open_role("anonymous")] }, 7).with_meta_api(true);
    let a = h.join(Serializer::Json, "anonymous");
    let _b = h.join(Serializer::Json, "anonymous");
    assert_eq!(h.realm.operator_meta_call("wamp.session.count", &Payload::EMPTY), Ok(Value::UInt(2)));
    let authid = format!("user-{}", a.get());
    let by = Payload::values(Some(vec![Value::Str(authid)]), None);
    assert_eq!(h.realm.operator_meta_call("wamp.session.kill_by_authid", &by), Ok(Value::UInt(1)));
    let out = h.drain();
    assert!(out.iter().any(|o| matches!(o, Out::Msg(s, Message::Goodbye { .. }) if *s == a)), "{out:?}");
    assert_eq!(h.realm.operator_meta_call("wamp.session.count", &Payload::EMPTY), Ok(Value::UInt(1)));
    let e = h.realm.operator_meta_call("wamp.session.add_testament", &Payload::EMPTY).unwrap_err();
    assert!(e.0.starts_with("wamp.error."), "{e:?}");
    assert_eq!(
        h.realm.operator_meta_call("com.example.x", &Payload::EMPTY).unwrap_err().0,
        "wamp.error.no_such_procedure"
    );
}

#[test]
fn meta_events_reach_the_operator_when_tapped() {
    let mut h = Harness::new();
    h.realm =
        Realm::new(RealmSpec { name: "realm1".into(), roles: vec![open_role("anonymous")] }, 7).with_meta_api(true);
    h.realm.set_operator_events(true);
    h.next += 1;
    let sid = SessionId::from_valid(h.next);
    let info = SessionInfo {
        session: sid,
        serializer: Serializer::Json,
        authid: "a".into(),
        authrole: "anonymous".into(),
        authmethod: "anonymous".into(),
        authprovider: "static".into(),
        transport: Dict::new(),
    };
    h.serializers.insert(sid, Serializer::Json);
    h.realm.join(info, &Dict::new()).expect("join");
    let out = h.drain();
    let joined = out.iter().find_map(|o| match o {
        Out::Operator(t, a) if t == "wamp.session.on_join" => Some(a.clone()),
        _ => None,
    });
    let details = joined.expect("on_join for the operator, with nobody subscribed");
    assert_eq!(details[0].as_dict().and_then(|d| d.get("session")), Some(&Value::UInt(sid.get())));
    h.realm.leave(sid);
    assert!(h.drain().iter().any(|o| matches!(o, Out::Operator(t, _) if t == "wamp.session.on_leave")));
}

#[test]
fn messages_are_counted_per_type_and_fan_out_once_per_receiver() {
    let mut h = Harness::new();
    let counts = h.realm.message_counts();
    let publisher = h.join(Serializer::Json, "anonymous");
    let subs = [
        h.join(Serializer::Msgpack, "anonymous"),
        h.join(Serializer::Cbor, "anonymous"),
        h.join(Serializer::Json, "anonymous"),
    ];
    let callee = h.join(Serializer::Cbor, "anonymous");
    assert_eq!(counts.sent_of(code::WELCOME), 5);
    for (i, s) in subs.iter().enumerate() {
        h.subscribe(*s, 1 + i as u64, "com.example.topic");
    }
    h.register(callee, 1, "com.example.proc");
    let b0 = counts.bytes_sent();
    let len = |out: &[Transmit]| -> u64 {
        out.iter().map(|t| if let Transmit::Message { bytes, .. } = t { bytes.len() as u64 } else { 0 }).sum()
    };
    for req in 10..12 {
        h.publish(
            publisher,
            req,
            "com.example.topic",
            dict(vec![("acknowledge", Value::Bool(true))]),
            args(vec![Value::UInt(req)]),
        );
    }
    h.call(publisher, 20, "com.example.proc", args(vec![Value::UInt(1)]));
    let mut invocation = None;
    let out = h.raw_drain();
    let mut queued = len(&out);
    for t in out {
        if let Transmit::Message { session, bytes: b } = &t {
            if *session == callee {
                if let Ok(Message::Invocation { request, .. }) = Serializer::Cbor.decode(b) {
                    invocation = Some(request);
                }
            }
        }
    }
    let request = invocation.expect("an INVOCATION for the callee");
    h.send(callee, Message::Yield { request, options: Dict::new(), payload: args(vec![Value::UInt(2)]) });
    let rest = h.raw_drain();
    assert_eq!(rest.len(), 1, "one RESULT: {rest:?}");
    queued += len(&rest);
    assert_eq!(counts.bytes_sent() - b0, queued, "bytes of EVENTs (three serializers), PUBLISHED, INVOCATION, RESULT");

    assert_eq!(counts.received_of(code::SUBSCRIBE), 3);
    assert_eq!(counts.received_of(code::REGISTER), 1);
    assert_eq!(counts.received_of(code::PUBLISH), 2);
    assert_eq!(counts.received_of(code::CALL), 1);
    assert_eq!(counts.received_of(code::YIELD), 1);
    assert_eq!(counts.sent_of(code::SUBSCRIBED), 3);
    assert_eq!(counts.sent_of(code::REGISTERED), 1);
    assert_eq!(counts.sent_of(code::EVENT), 6, "two publications, three receivers each");
    assert_eq!(counts.sent_of(code::PUBLISHED), 2);
    assert_eq!(counts.sent_of(code::INVOCATION), 1);
    assert_eq!(counts.sent_of(code::RESULT), 1);
    assert_eq!(counts.sent_of(code::ERROR), 0);
    // Bytes: every queued message's encoded length (re-drive to measure).
    let mut h2 = Harness::new();
    let c2 = h2.realm.message_counts();
    let a = h2.join(Serializer::Json, "anonymous");
    let before = c2.bytes_sent();
    h2.call(a, 1, "com.example.nobody", args(vec![]));
    let out = h2.raw_drain();
    let len: usize = out.iter().map(|t| if let Transmit::Message { bytes, .. } = t { bytes.len() } else { 0 }).sum();
    assert!(len > 0);
    assert_eq!(c2.bytes_sent(), before + len as u64);
    assert_eq!(c2.sent_of(code::ERROR), 1);
    // A message for a session the realm does not know is not counted.
    h2.realm.handle_message(SessionId::from_valid(999), Message::Goodbye { details: Dict::new(), reason: "x".into() });
    assert_eq!(c2.received_of(code::GOODBYE), 0);
}

#[test]
fn traces_record_received_and_queued_messages_only_while_running() {
    use std::sync::Arc;
    use trace::{Direction, TraceOptions, Tracer};
    let tracer = Arc::new(Tracer::default());
    let mut h = Harness::new();
    h.realm.set_tracer(tracer.clone());
    let p = h.join(Serializer::Json, "anonymous");
    let s = h.join(Serializer::Cbor, "anonymous");
    h.subscribe(s, 1, "com.app.topic");
    // Nothing is recorded before a trace runs.
    h.publish(p, 2, "com.app.topic", Dict::new(), Payload::EMPTY);
    h.drain();
    tracer
        .with(|st| st.start(Some("t1"), TraceOptions::default(), std::time::SystemTime::now()).map(|_| ()))
        .expect("start");
    let ack = dict(vec![("acknowledge", Value::Bool(true))]);
    h.publish(p, 3, "com.app.topic", ack, args(vec![Value::UInt(1)]));
    assert_eq!(h.drain().len(), 2, "EVENT and PUBLISHED");
    h.call(p, 4, "com.app.none", Payload::EMPTY);
    h.drain();
    let recs = tracer.with(|st| st.data("t1", None, None, 100)).expect("data");
    let seen: Vec<(Direction, &str, u64, Option<&str>)> =
        recs.iter().map(|r| (r.direction, r.msg_type, r.session, r.uri.as_deref())).collect();
    assert_eq!(
        seen,
        [
            (Direction::Rx, "Publish", p.get(), Some("com.app.topic")),
            (Direction::Tx, "Event", s.get(), Some("com.app.topic")),
            (Direction::Tx, "Published", p.get(), None),
            (Direction::Rx, "Call", p.get(), Some("com.app.none")),
            (Direction::Tx, "Error", p.get(), Some("wamp.error.no_such_procedure")),
        ]
    );
    assert_eq!(&*recs[1].authid, format!("user-{}", s.get()), "a queued message carries its receiver's identity");
    assert!(recs.iter().all(|r| &*r.realm == "realm1" && &*r.authrole == "anonymous"));
    assert_eq!(recs.iter().map(|r| r.seq).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
    tracer.with(|st| st.stop("t1", std::time::SystemTime::now()).map(|_| ())).expect("stop");
    h.publish(p, 5, "com.app.topic", Dict::new(), Payload::EMPTY);
    h.drain();
    assert_eq!(tracer.with(|st| st.get("t1").map(|t| t.next_seq())), Ok(5), "nothing after the stop");
}
