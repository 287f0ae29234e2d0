//! Broker Advanced Profile tests: pattern-based subscriptions,
//! black/whitelisting, publisher exclusion and identification, retention,
//! event history (`wamp.subscription.get_events`), payload passthru and the
//! WELCOME announcement. Same harness as `tests.rs`.

use std::collections::HashMap;

use bytes::Bytes;
use wamp_proto::payload::encode_value;
use wamp_proto::{code, Dict, Message, Payload, PublicationId, SessionId, SubscriptionId, Value};

use super::tests::{args, dict, expect_error, open_role, perm, rid, values, Harness, Out};
use super::*;

fn harness_with(roles: Vec<Role>, broker: BrokerSpec) -> Harness {
    let spec = RealmSpec { name: "realm1".into(), roles };
    Harness { realm: Realm::new(spec, 42).with_broker_spec(broker), serializers: HashMap::new(), next: 100 }
}

fn opts(items: Vec<(&str, Value)>) -> Dict {
    dict(items)
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn ids(v: &[SessionId]) -> Value {
    Value::List(v.iter().map(|s| Value::UInt(s.get())).collect())
}

fn strs(v: &[&str]) -> Value {
    Value::List(v.iter().map(|x| s(x)).collect())
}

/// SUBSCRIBE with options; returns the SUBSCRIBED id (asserting it is the
/// first message) and whatever else was queued.
fn subscribe_with(h: &mut Harness, sid: SessionId, req: u64, topic: &str, options: Dict) -> (SubscriptionId, Vec<Out>) {
    h.send(sid, Message::Subscribe { request: rid(req), options, topic: topic.into() });
    let mut out = h.drain();
    assert!(!out.is_empty(), "no reply to SUBSCRIBE");
    match out.remove(0) {
        Out::Msg(s, Message::Subscribed { request, subscription }) if s == sid && request == rid(req) => {
            (subscription, out)
        }
        other => panic!("expected SUBSCRIBED, got {other:?}"),
    }
}

fn pattern(m: &str) -> Dict {
    opts(vec![("match", s(m))])
}

/// (receiver, subscription, publication, details) of every EVENT in `out`.
fn events(out: &[Out]) -> Vec<(SessionId, SubscriptionId, PublicationId, Dict)> {
    out.iter()
        .filter_map(|o| match o {
            Out::Msg(to, Message::Event { subscription, publication, details, .. }) => {
                Some((*to, *subscription, *publication, details.clone()))
            }
            _ => None,
        })
        .collect()
}

fn receivers(out: &[Out]) -> Vec<SessionId> {
    let mut v: Vec<_> = events(out).into_iter().map(|e| e.0).collect();
    v.sort();
    v
}

fn result_list(msg: Message) -> Vec<Dict> {
    match msg {
        Message::Result { payload, .. } => {
            let (a, _) = values(&payload);
            let a = a.expect("result args");
            assert_eq!(a.len(), 1, "one positional result");
            match &a[0] {
                Value::List(l) => l.iter().map(|e| e.as_dict().expect("event dict").clone()).collect(),
                other => panic!("expected a list, got {other:?}"),
            }
        }
        other => panic!("expected RESULT, got {other:?}"),
    }
}

fn get_events(h: &mut Harness, sid: SessionId, req: u64, a: Vec<Value>) {
    h.call(sid, req, "wamp.subscription.get_events", args(a));
}

// ---------------------------------------------------------------------------
// announcement
// ---------------------------------------------------------------------------

#[test]
fn welcome_announces_exactly_the_broker_features() {
    let mut h = Harness::new();
    let sid = SessionId::from_valid(7);
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
    h.realm.join(info, &Dict::new()).unwrap();
    let Message::Welcome { details, .. } = h.one(sid) else { panic!() };
    let features = details
        .get("roles")
        .and_then(Value::as_dict)
        .and_then(|r| r.get("broker"))
        .and_then(Value::as_dict)
        .and_then(|b| b.get("features"))
        .and_then(Value::as_dict)
        .expect("broker features");
    let mut names: Vec<&str> = features.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        vec![
            "event_history",
            "event_retention",
            "pattern_based_subscription",
            "payload_passthru_mode",
            "publisher_exclusion",
            "publisher_identification",
            "session_meta_api",
            "subscriber_blackwhite_listing",
            "subscription_meta_api",
            "subscription_revocation",
        ]
    );
    assert!(features.values().all(|v| *v == Value::Bool(true)));
}

// ---------------------------------------------------------------------------
// pattern-based subscriptions
// ---------------------------------------------------------------------------

#[test]
fn pattern_subscriptions_deliver_once_per_matching_subscription() {
    let mut h = Harness::new();
    let p = h.join(Serializer::Json, "anonymous");
    let a = h.join(Serializer::Msgpack, "anonymous");
    let b = h.join(Serializer::Cbor, "anonymous");
    let exact = h.subscribe(a, 1, "com.app.user.login");
    let (prefix, _) = subscribe_with(&mut h, a, 2, "com.app.", pattern("prefix"));
    let (wild, _) = subscribe_with(&mut h, b, 3, "com..user.login", pattern("wildcard"));
    // Same pattern, other session: same subscription.
    let (prefix_b, _) = subscribe_with(&mut h, b, 4, "com.app.", pattern("prefix"));
    assert_eq!(prefix_b, prefix);
    // Explicit "exact" is the default policy.
    let (exact_b, _) = subscribe_with(&mut h, b, 5, "com.app.user.login", pattern("exact"));
    assert_eq!(exact_b, exact);
    assert!(exact != prefix && prefix != wild && exact != wild);
    assert_eq!(h.realm.broker.len(), 3);

    h.publish(p, 10, "com.app.user.login", Dict::new(), args(vec![Value::UInt(1)]));
    let out = h.drain();
    let ev = events(&out);
    // a: exact + prefix; b: exact + prefix + wildcard.
    assert_eq!(ev.len(), 5, "{out:?}");
    assert!(ev.iter().all(|e| e.2 == ev[0].2), "one publication id");
    let mut got: Vec<(SessionId, SubscriptionId)> = ev.iter().map(|e| (e.0, e.1)).collect();
    got.sort();
    let mut want = vec![(a, exact), (a, prefix), (b, exact), (b, prefix), (b, wild)];
    want.sort();
    assert_eq!(got, want);
    for (_, sub, _, details) in &ev {
        if *sub == exact {
            assert!(!details.contains_key("topic"), "no topic for exact subscriptions");
        } else {
            assert_eq!(details.get("topic"), Some(&s("com.app.user.login")));
        }
    }

    // Only the prefix matches: string prefix, not component prefix.
    h.publish(p, 11, "com.app.other", Dict::new(), Payload::EMPTY);
    let ev = events(&h.drain());
    assert_eq!(ev.len(), 2);
    assert!(ev.iter().all(|e| e.1 == prefix && e.3.get("topic") == Some(&s("com.app.other"))));
    // The wildcard only: component count must match, prefix does not apply.
    h.publish(p, 12, "com.web.user.login", Dict::new(), Payload::EMPTY);
    let ev = events(&h.drain());
    assert_eq!(ev.iter().map(|e| (e.0, e.1)).collect::<Vec<_>>(), vec![(b, wild)]);
    h.publish(p, 13, "com.web.user.login.x", Dict::new(), Payload::EMPTY);
    assert!(h.drain().is_empty());

    // Unsubscribing a pattern subscription deletes it once empty.
    h.send(b, Message::Unsubscribe { request: rid(20), subscription: wild });
    assert!(matches!(h.one(b), Message::Unsubscribed { .. }));
    h.publish(p, 21, "com.web.user.login", Dict::new(), Payload::EMPTY);
    assert!(h.drain().is_empty());
    assert_eq!(h.realm.broker.len(), 2);
    // Leaving cleans up the others.
    h.realm.leave(a);
    h.realm.leave(b);
    assert_eq!(h.realm.broker.len(), 0);
    assert_eq!(h.realm.broker_stats().subscriptions, 0);
}

#[test]
fn pattern_subscription_errors() {
    let restricted = Role {
        name: "restricted".into(),
        permissions: vec![perm(
            "com.public.",
            MatchPolicy::Prefix,
            Allow { call: false, register: false, publish: false, subscribe: true },
            Disclose::default(),
        )],
    };
    let mut h = Harness::with_roles(vec![open_role("anonymous"), restricted]);
    let a = h.join(Serializer::Json, "anonymous");
    let r = h.join(Serializer::Cbor, "restricted");
    for (i, bad) in [s("regex"), s(""), Value::UInt(1), Value::Null].into_iter().enumerate() {
        let req = i as u64 + 1;
        h.send(a, Message::Subscribe { request: rid(req), options: opts(vec![("match", bad)]), topic: "com".into() });
        expect_error(&h.one(a), code::SUBSCRIBE, req, uris::INVALID_ARGUMENT);
    }
    // Empty components: only last for prefix, anywhere for wildcard.
    h.send(a, Message::Subscribe { request: rid(10), options: pattern("prefix"), topic: "com..x".into() });
    expect_error(&h.one(a), code::SUBSCRIBE, 10, uris::INVALID_URI);
    h.send(a, Message::Subscribe { request: rid(11), options: pattern("wildcard"), topic: "com.#.x".into() });
    expect_error(&h.one(a), code::SUBSCRIBE, 11, uris::INVALID_URI);
    h.send(a, Message::Subscribe { request: rid(12), options: Dict::new(), topic: "com..x".into() });
    expect_error(&h.one(a), code::SUBSCRIBE, 12, uris::INVALID_URI);
    let deep = vec!["a"; 200].join(".");
    h.send(a, Message::Subscribe { request: rid(13), options: pattern("wildcard"), topic: deep });
    expect_error(&h.one(a), code::SUBSCRIBE, 13, uris::INVALID_URI);
    subscribe_with(&mut h, a, 14, "com..x", pattern("wildcard"));
    subscribe_with(&mut h, a, 15, "com.x.", pattern("prefix"));
    // Authorization applies to the pattern string itself.
    h.send(r, Message::Subscribe { request: rid(16), options: pattern("prefix"), topic: "com.".into() });
    expect_error(&h.one(r), code::SUBSCRIBE, 16, uris::NOT_AUTHORIZED);
    h.send(r, Message::Subscribe { request: rid(17), options: pattern("wildcard"), topic: "com..x".into() });
    expect_error(&h.one(r), code::SUBSCRIBE, 17, uris::NOT_AUTHORIZED);
    subscribe_with(&mut h, r, 18, "com.public.news.", pattern("prefix"));
}

#[test]
fn pattern_fan_out_shares_bytes_per_subscription_and_serializer() {
    let mut h = Harness::new();
    let p = h.join(Serializer::Json, "anonymous");
    let js: Vec<_> = (0..3).map(|_| h.join(Serializer::Json, "anonymous")).collect();
    let mp: Vec<_> = (0..2).map(|_| h.join(Serializer::Msgpack, "anonymous")).collect();
    for (i, sid) in js.iter().chain(&mp).enumerate() {
        subscribe_with(&mut h, *sid, i as u64 + 1, "com.fan.", pattern("prefix"));
        h.subscribe(*sid, i as u64 + 100, "com.fan.x");
    }
    let wire = Bytes::from_static(br#"[16, 9, {}, "com.fan.x", [1,  "y" ]]"#);
    let msg = Serializer::Json.decode(&wire).unwrap();
    h.realm.handle_message(p, msg);
    let raw = h.raw_drain();
    assert_eq!(raw.len(), 10, "two events per subscriber");
    // Per receiver: the (prefix, exact) event bytes.
    let mut per: HashMap<SessionId, Vec<Bytes>> = HashMap::new();
    for t in &raw {
        if let Transmit::Message { session, bytes } = t {
            per.entry(*session).or_default().push(bytes.clone());
        }
    }
    let first = |sid: SessionId, i: usize| per[&sid][i].as_ptr();
    for k in 0..2 {
        for sid in &js[1..] {
            assert_eq!(first(*sid, k), first(js[0], k), "JSON subscribers share one allocation");
        }
        assert_eq!(first(mp[1], k), first(mp[0], k), "msgpack subscribers share one allocation");
    }
    assert_ne!(first(js[0], 0), first(js[0], 1), "different subscriptions encode separately");
    // The raw args are spliced verbatim for JSON in both events.
    for b in &per[&js[0]] {
        assert!(b.windows(br#"[1,  "y" ]"#.len()).any(|w| w == br#"[1,  "y" ]"#), "{b:?}");
    }
    for b in &per[&mp[0]] {
        let Message::Event { payload, .. } = Serializer::Msgpack.decode(b).unwrap() else { panic!() };
        assert_eq!(values(&payload).0, Some(vec![Value::UInt(1), s("y")]));
    }
    assert_eq!(h.realm.stats().events_delivered, 10);
}

// ---------------------------------------------------------------------------
// publisher exclusion / identification / acknowledge
// ---------------------------------------------------------------------------

#[test]
fn publisher_exclusion_identification_and_ack_order_with_patterns() {
    let mut h = Harness::new();
    let p = h.join(Serializer::Json, "anonymous");
    let a = h.join(Serializer::Cbor, "anonymous");
    for sid in [p, a] {
        subscribe_with(&mut h, sid, 1, "t.", pattern("prefix"));
    }
    // Default: the publisher is excluded even through a pattern.
    h.publish(p, 2, "t.x", Dict::new(), Payload::EMPTY);
    assert_eq!(receivers(&h.drain()), vec![a]);
    // exclude_me=false, disclose_me, acknowledge: PUBLISHED comes last.
    let o = opts(vec![
        ("exclude_me", Value::Bool(false)),
        ("disclose_me", Value::Bool(true)),
        ("acknowledge", Value::Bool(true)),
    ]);
    h.publish(p, 3, "t.x", o, Payload::EMPTY);
    let out = h.drain();
    assert_eq!(receivers(&out), vec![p, a]);
    for (_, _, _, d) in events(&out) {
        assert_eq!(d.get("publisher").and_then(Value::as_u64), Some(p.get()));
        assert_eq!(d.get("publisher_authrole"), Some(&s("anonymous")));
        assert_eq!(d.get("topic"), Some(&s("t.x")));
    }
    assert!(
        matches!(out.last(), Some(Out::Msg(s, Message::Published { request, .. })) if *s == p && *request == rid(3))
    );
    // Malformed exclude_me is ignored (treated as absent).
    h.publish(p, 4, "t.x", opts(vec![("exclude_me", s("no"))]), Payload::EMPTY);
    assert_eq!(receivers(&h.drain()), vec![a]);
}

// ---------------------------------------------------------------------------
// black/whitelisting
// ---------------------------------------------------------------------------

#[test]
fn subscriber_black_and_whitelisting() {
    let mut h = Harness::with_roles(vec![open_role("anonymous"), open_role("admin")]);
    let p = h.join(Serializer::Json, "anonymous");
    let a = h.join(Serializer::Json, "anonymous");
    let b = h.join(Serializer::Msgpack, "admin");
    let c = h.join(Serializer::Cbor, "admin");
    for sid in [p, a, b, c] {
        h.subscribe(sid, 1, "t");
    }
    let authid = |sid: SessionId| format!("user-{}", sid.get());
    let cases: Vec<(Dict, Vec<SessionId>)> = vec![
        (Dict::new(), vec![a, b, c]),
        (opts(vec![("exclude", ids(&[a]))]), vec![b, c]),
        (opts(vec![("eligible", ids(&[a, c]))]), vec![a, c]),
        // eligible ∩ not excluded (the spec's example).
        (opts(vec![("eligible", ids(&[a, b, c])), ("exclude", ids(&[a]))]), vec![b, c]),
        // A present but empty whitelist admits nobody.
        (opts(vec![("eligible", Value::List(vec![]))]), vec![]),
        (opts(vec![("eligible_authrole", strs(&["admin"]))]), vec![b, c]),
        (opts(vec![("exclude_authrole", strs(&["admin"]))]), vec![a]),
        (opts(vec![("eligible_authid", strs(&[&authid(a), &authid(c)]))]), vec![a, c]),
        (opts(vec![("exclude_authid", strs(&[&authid(c)]))]), vec![a, b]),
        (opts(vec![("eligible_authrole", strs(&["admin"])), ("exclude_authid", strs(&[&authid(b)]))]), vec![c]),
        (opts(vec![("eligible_authid", strs(&[&authid(a)])), ("eligible_authrole", strs(&["admin"]))]), vec![]),
        // The publisher stays excluded even when eligible, unless exclude_me=false.
        (opts(vec![("eligible", ids(&[p, a]))]), vec![a]),
        (opts(vec![("eligible", ids(&[p, a])), ("exclude_me", Value::Bool(false))]), vec![p, a]),
        (opts(vec![("exclude_me", Value::Bool(false)), ("exclude_authrole", strs(&["anonymous"]))]), vec![b, c]),
        // Unknown session ids are harmless.
        (opts(vec![("exclude", ids(&[SessionId::from_valid(999_999)]))]), vec![a, b, c]),
    ];
    for (i, (o, want)) in cases.into_iter().enumerate() {
        h.publish(p, 10 + i as u64, "t", o.clone(), Payload::EMPTY);
        assert_eq!(receivers(&h.drain()), want, "case {i}: {o:?}");
    }
    // Malformed lists refuse the publication.
    let bad = [
        ("exclude", strs(&["x"])),
        ("eligible", Value::UInt(5)),
        ("eligible_authid", Value::List(vec![Value::UInt(1)])),
        ("exclude_authrole", s("admin")),
    ];
    let before = h.realm.stats().publishes_dropped_invalid;
    for (i, (k, v)) in bad.into_iter().enumerate() {
        let req = 50 + i as u64;
        h.publish(p, req, "t", opts(vec![(k, v.clone()), ("acknowledge", Value::Bool(true))]), Payload::EMPTY);
        expect_error(&h.one(p), code::PUBLISH, req, uris::INVALID_ARGUMENT);
        h.publish(p, req + 10, "t", opts(vec![(k, v)]), Payload::EMPTY);
        assert!(h.drain().is_empty(), "dropped silently without acknowledge");
    }
    assert_eq!(h.realm.stats().publishes_dropped_invalid, before + 8);
}

// ---------------------------------------------------------------------------
// retention
// ---------------------------------------------------------------------------

#[test]
fn retained_event_delivered_after_subscribed() {
    let mut h = Harness::with_roles(vec![open_role("anonymous"), open_role("admin")]);
    let p = h.join(Serializer::Json, "anonymous");
    let retain = || opts(vec![("retain", Value::Bool(true))]);
    // No subscribers yet; the second retained publication replaces the first.
    h.publish(p, 1, "sensor.temp", retain(), args(vec![Value::UInt(20)]));
    h.publish(
        p,
        2,
        "sensor.temp",
        opts(vec![("retain", Value::Bool(true)), ("disclose_me", Value::Bool(true))]),
        args(vec![Value::UInt(21)]),
    );
    // Not retained: does not replace.
    h.publish(p, 3, "sensor.temp", Dict::new(), args(vec![Value::UInt(99)]));
    h.publish(p, 4, "sensor.hum", retain(), args(vec![Value::UInt(50)]));
    assert!(h.drain().is_empty());
    assert_eq!(h.realm.broker_stats().retained_topics, 2);

    let a = h.join(Serializer::Msgpack, "anonymous");
    // Without get_retained: nothing.
    let (_, rest) = subscribe_with(&mut h, a, 1, "sensor.temp", Dict::new());
    assert!(rest.is_empty());
    // With it: SUBSCRIBED, then the latest retained event.
    let (sub, rest) = subscribe_with(&mut h, a, 2, "sensor.temp", opts(vec![("get_retained", Value::Bool(true))]));
    match &rest[..] {
        [Out::Msg(to, Message::Event { subscription, details, payload, .. })] => {
            assert_eq!((*to, *subscription), (a, sub));
            assert_eq!(details.get("retained"), Some(&Value::Bool(true)));
            assert_eq!(details.get("publisher").and_then(Value::as_u64), Some(p.get()));
            assert!(!details.contains_key("topic"));
            assert_eq!(values(payload).0, Some(vec![Value::UInt(21)]));
        }
        other => panic!("{other:?}"),
    }
    // Pattern subscription: every matching topic's retained event, with topic.
    let b = h.join(Serializer::Cbor, "anonymous");
    let o = opts(vec![("match", s("prefix")), ("get_retained", Value::Bool(true))]);
    let (psub, rest) = subscribe_with(&mut h, b, 1, "sensor.", o);
    let ev = events(&rest);
    assert_eq!(ev.len(), 2, "{rest:?}");
    let mut topics: Vec<_> = ev.iter().map(|e| e.3.get("topic").cloned().unwrap()).collect();
    topics.sort_by_key(|t| format!("{t:?}"));
    assert_eq!(topics, vec![s("sensor.hum"), s("sensor.temp")]);
    assert!(ev.iter().all(|e| e.1 == psub && e.3.get("retained") == Some(&Value::Bool(true))));
    // Topics without a retained event: nothing.
    let (_, rest) = subscribe_with(&mut h, b, 2, "other", opts(vec![("get_retained", Value::Bool(true))]));
    assert!(rest.is_empty());

    // Retained events honour the black/whitelists of their publication.
    let o = opts(vec![("retain", Value::Bool(true)), ("eligible_authrole", strs(&["admin"]))]);
    h.publish(p, 5, "secret", o, args(vec![s("s")]));
    h.drain();
    let gr = || opts(vec![("get_retained", Value::Bool(true))]);
    let (_, rest) = subscribe_with(&mut h, a, 3, "secret", gr());
    assert!(rest.is_empty(), "not eligible: {rest:?}");
    let adm = h.join(Serializer::Json, "admin");
    let (_, rest) = subscribe_with(&mut h, adm, 1, "secret", gr());
    assert_eq!(receivers(&rest), vec![adm]);
    let o = opts(vec![("retain", Value::Bool(true)), ("exclude", ids(&[adm]))]);
    h.publish(p, 6, "secret2", o, Payload::EMPTY);
    h.drain();
    let (_, rest) = subscribe_with(&mut h, adm, 2, "secret2", gr());
    assert!(rest.is_empty());
    let (_, rest) = subscribe_with(&mut h, a, 4, "secret2", gr());
    assert_eq!(receivers(&rest), vec![a]);
    assert_eq!(h.realm.broker_stats().retained_delivered, 5);
}

#[test]
fn retention_is_bounded() {
    let spec = BrokerSpec { max_retained_topics: 2, max_stored_payload: 16, ..BrokerSpec::default() };
    let mut h = harness_with(vec![open_role("anonymous")], spec);
    let p = h.join(Serializer::Json, "anonymous");
    let retain = || opts(vec![("retain", Value::Bool(true))]);
    h.publish(p, 1, "a", retain(), args(vec![Value::UInt(1)]));
    h.publish(p, 2, "b", retain(), args(vec![Value::UInt(2)]));
    // Full: a new topic is declined, existing topics still update.
    h.publish(p, 3, "c", retain(), args(vec![Value::UInt(3)]));
    h.publish(p, 4, "a", retain(), args(vec![Value::UInt(4)]));
    let st = h.realm.broker_stats();
    assert_eq!((st.retained_topics, st.retained_stored, st.retained_declined), (2, 3, 1));
    let s1 = h.join(Serializer::Json, "anonymous");
    let gr = || opts(vec![("get_retained", Value::Bool(true))]);
    let (_, rest) = subscribe_with(&mut h, s1, 1, "c", gr());
    assert!(rest.is_empty());
    let (_, rest) = subscribe_with(&mut h, s1, 2, "a", gr());
    match &rest[..] {
        [Out::Msg(_, Message::Event { payload, .. })] => assert_eq!(values(payload).0, Some(vec![Value::UInt(4)])),
        other => panic!("{other:?}"),
    }
    // A payload over the size limit is not retained and clears the topic
    // (a stale value must not be served).
    h.publish(p, 5, "a", retain(), args(vec![s("this payload is longer than sixteen bytes")]));
    h.drain();
    let (_, rest) = subscribe_with(&mut h, s1, 3, "a", gr());
    assert!(rest.is_empty());
    assert_eq!(h.realm.broker_stats().retained_topics, 1);
    assert_eq!(h.realm.broker_stats().retained_declined, 2);
}

// ---------------------------------------------------------------------------
// event history
// ---------------------------------------------------------------------------

fn history_spec() -> BrokerSpec {
    BrokerSpec {
        history: vec![
            HistorySpec { uri: "com.hist".into(), match_policy: MatchPolicy::Exact, limit: 3 },
            HistorySpec { uri: "com.logs.".into(), match_policy: MatchPolicy::Prefix, limit: 10 },
        ],
        ..BrokerSpec::default()
    }
}

#[test]
fn event_history_ring_and_get_events() {
    let mut h = harness_with(vec![open_role("anonymous"), open_role("admin")], history_spec());
    let p = h.join(Serializer::Json, "anonymous");
    // History subscriptions exist from the start.
    assert_eq!(h.realm.broker.len(), 2);
    for i in 1..=5u64 {
        h.publish(p, i, "com.hist", Dict::new(), args(vec![Value::UInt(i)]));
    }
    h.publish(p, 6, "com.logs.auth", opts(vec![("disclose_me", Value::Bool(true))]), args(vec![s("login")]));
    h.publish(p, 7, "com.logs.basket", Dict::new(), Payload::values(None, Some(dict(vec![("n", Value::UInt(2))]))));
    // Session-id lists: not stored. authrole lists: stored, filtered on read.
    h.publish(p, 8, "com.hist", opts(vec![("exclude", ids(&[SessionId::from_valid(5)]))]), args(vec![Value::UInt(8)]));
    h.publish(p, 9, "com.hist", opts(vec![("eligible_authrole", strs(&["admin"]))]), args(vec![Value::UInt(9)]));
    assert!(h.drain().is_empty());
    assert_eq!(h.realm.broker_stats().history_skipped, 1);

    // A session subscribing to the same topic shares the history subscription.
    let a = h.join(Serializer::Msgpack, "anonymous");
    let hist = h.subscribe(a, 1, "com.hist");
    let (logs, _) = subscribe_with(&mut h, a, 2, "com.logs.", pattern("prefix"));
    assert_eq!(h.realm.broker.len(), 2);

    // Newest first, limited by the ring (3) and the filter (9 is admin-only).
    get_events(&mut h, a, 10, vec![Value::UInt(hist.get())]);
    let evs = result_list(h.one(a));
    let nums: Vec<_> = evs.iter().map(|e| e.get("args").cloned().unwrap()).collect();
    assert_eq!(nums, vec![Value::List(vec![Value::UInt(5)]), Value::List(vec![Value::UInt(4)])]);
    let e = &evs[0];
    assert_eq!(e.get("subscription").and_then(Value::as_u64), Some(hist.get()));
    assert_eq!(e.get("topic"), Some(&s("com.hist")));
    assert_eq!(e.get("realm"), Some(&s("realm1")));
    assert!(e.get("publication").and_then(Value::as_u64).is_some());
    assert!(!e.contains_key("session_id"), "publisher not disclosed");
    assert!(!e.contains_key("kwargs"));
    // limit as second argument.
    get_events(&mut h, a, 11, vec![Value::UInt(hist.get()), Value::UInt(1)]);
    assert_eq!(result_list(h.one(a)).len(), 1);
    // An admin also sees the admin-only event.
    let adm = h.join(Serializer::Cbor, "admin");
    get_events(&mut h, adm, 12, vec![Value::UInt(hist.get())]);
    let evs = result_list(h.one(adm));
    assert_eq!(evs.len(), 3);
    assert_eq!(evs[0].get("args"), Some(&Value::List(vec![Value::UInt(9)])));

    // Prefix history: topics and disclosure.
    get_events(&mut h, a, 13, vec![Value::UInt(logs.get())]);
    let evs = result_list(h.one(a));
    assert_eq!(evs.len(), 2);
    assert_eq!(evs[0].get("topic"), Some(&s("com.logs.basket")));
    assert_eq!(evs[0].get("kwargs"), Some(&Value::Dict(dict(vec![("n", Value::UInt(2))]))));
    assert!(!evs[0].contains_key("args"));
    let d = evs[1].get("details").and_then(Value::as_dict).unwrap();
    assert_eq!(d.get("topic"), Some(&s("com.logs.auth")));
    assert_eq!(evs[1].get("session_id").and_then(Value::as_u64), Some(p.get()));
    assert_eq!(evs[1].get("authrole"), Some(&s("anonymous")));

    // The history subscription survives its last subscriber.
    h.realm.leave(a);
    assert_eq!(h.realm.broker.len(), 2);
    get_events(&mut h, adm, 14, vec![Value::UInt(hist.get())]);
    assert_eq!(result_list(h.one(adm)).len(), 3);
}

#[test]
fn get_events_errors() {
    // "user" may subscribe to com.hist and call get_events, but nothing on com.logs.
    let user = Role {
        name: "user".into(),
        permissions: vec![
            perm("com.hist", MatchPolicy::Exact, Allow { subscribe: true, ..Allow::NONE }, Disclose::default()),
            perm(
                "wamp.subscription.get_events",
                MatchPolicy::Exact,
                Allow { call: true, ..Allow::NONE },
                Disclose::default(),
            ),
        ],
    };
    let nocall = Role {
        name: "nocall".into(),
        permissions: vec![perm("com.", MatchPolicy::Prefix, Allow::ALL, Disclose::default())],
    };
    let mut h = harness_with(vec![open_role("anonymous"), user, nocall], history_spec());
    let a = h.join(Serializer::Json, "anonymous");
    let u = h.join(Serializer::Msgpack, "user");
    let n = h.join(Serializer::Cbor, "nocall");
    let hist = h.subscribe(a, 1, "com.hist");
    let (logs, _) = subscribe_with(&mut h, a, 2, "com.logs.", pattern("prefix"));
    let plain = h.subscribe(a, 3, "com.plain");

    // The role may not call the procedure.
    get_events(&mut h, n, 1, vec![Value::UInt(hist.get())]);
    expect_error(&h.one(n), code::CALL, 1, uris::NOT_AUTHORIZED);
    // May call it, but may not subscribe to the subscription's topic.
    get_events(&mut h, u, 2, vec![Value::UInt(logs.get())]);
    expect_error(&h.one(u), code::CALL, 2, uris::NOT_AUTHORIZED);
    get_events(&mut h, u, 3, vec![Value::UInt(hist.get())]);
    assert!(result_list(h.one(u)).is_empty());
    // No history on that subscription.
    get_events(&mut h, a, 4, vec![Value::UInt(plain.get())]);
    expect_error(&h.one(a), code::CALL, 4, super::broker_meta::HISTORY_UNAVAILABLE);
    // Unknown subscription.
    get_events(&mut h, a, 5, vec![Value::UInt(424242)]);
    expect_error(&h.one(a), code::CALL, 5, uris::NO_SUCH_SUBSCRIPTION);
    // Bad arguments.
    for (i, bad) in
        [vec![], vec![s("x")], vec![Value::UInt(hist.get()), Value::UInt(0)], vec![Value::UInt(hist.get()), s("ten")]]
            .into_iter()
            .enumerate()
    {
        let req = 10 + i as u64;
        get_events(&mut h, a, req, bad);
        expect_error(&h.one(a), code::CALL, req, uris::INVALID_ARGUMENT);
    }
    // Other wamp.* procedures still go to the dealer (no such procedure).
    h.call(a, 20, "wamp.subscription.no_such_meta_procedure", Payload::EMPTY);
    expect_error(&h.one(a), code::CALL, 20, uris::NO_SUCH_PROCEDURE);
    // A subscription id of a deleted subscription is unknown.
    h.send(a, Message::Unsubscribe { request: rid(21), subscription: plain });
    h.drain();
    get_events(&mut h, a, 22, vec![Value::UInt(plain.get())]);
    expect_error(&h.one(a), code::CALL, 22, uris::NO_SUCH_SUBSCRIPTION);
}

// ---------------------------------------------------------------------------
// payload passthru
// ---------------------------------------------------------------------------

#[test]
fn payload_passthru_options_forwarded_and_payload_untouched() {
    let mut h = harness_with(
        vec![open_role("anonymous")],
        BrokerSpec {
            history: vec![HistorySpec { uri: "com.e2e".into(), match_policy: MatchPolicy::Exact, limit: 5 }],
            ..BrokerSpec::default()
        },
    );
    let p = h.join(Serializer::Msgpack, "anonymous");
    let m = h.join(Serializer::Msgpack, "anonymous");
    let c = h.join(Serializer::Cbor, "anonymous");
    let j = h.join(Serializer::Json, "anonymous");
    let sub = h.subscribe(m, 1, "com.e2e");
    h.subscribe(c, 1, "com.e2e");
    h.subscribe(j, 1, "com.e2e");
    // Opaque bytes that are not valid msgpack/cbor of anything sensible.
    let opaque = Bytes::from_static(b"\xc1\xff\x00ciphertext\x9f");
    let ppt = dict(vec![
        ("ppt_scheme", s("wamp")),
        ("ppt_serializer", s("cbor")),
        ("ppt_cipher", s("xsalsa20poly1305")),
        ("ppt_keyid", s("GTtQ37XGJO2O4R8Dvx4AUo8pe61D9evNSpGMDQWdOh1=")),
    ]);
    let mut o = ppt.clone();
    o.insert("retain".into(), Value::Bool(true));
    let wire =
        Value::List(vec![Value::UInt(16), Value::UInt(1), Value::Dict(o), s("com.e2e"), Value::Bytes(opaque.clone())]);
    let mut buf = Vec::new();
    encode_value(wamp_proto::PayloadFormat::Msgpack, &wire, &mut buf).unwrap();
    let msg = Serializer::Msgpack.decode(&Bytes::from(buf)).unwrap();
    h.realm.handle_message(p, msg);
    let raw = h.raw_drain();
    assert_eq!(raw.len(), 3);
    for t in raw {
        let Transmit::Message { session, bytes } = t else { panic!() };
        let ser = h.serializers[&session];
        if ser == Serializer::Msgpack {
            assert!(bytes.windows(opaque.len()).any(|w| w == &opaque[..]), "spliced verbatim");
        }
        let v = wamp_proto::payload::decode_value(ser.payload_format(), &bytes).unwrap();
        let l = v.as_list().unwrap();
        assert_eq!(l[4], Value::Bytes(opaque.clone()), "{ser}: binary payload delivered as-is");
        let details = l[3].as_dict().unwrap();
        for (k, v) in &ppt {
            assert_eq!(details.get(k), Some(v), "{ser}: {k} forwarded");
        }
        assert!(!details.contains_key("retain"), "only ppt options are forwarded");
    }
    // Retained and history copies keep the passthru options and the bytes.
    let (_, rest) = subscribe_with(&mut h, m, 2, "com.e2e", opts(vec![("get_retained", Value::Bool(true))]));
    match &rest[..] {
        [Out::Msg(_, Message::Event { details, .. })] => {
            assert_eq!(details.get("ppt_scheme"), Some(&s("wamp")));
            assert_eq!(details.get("retained"), Some(&Value::Bool(true)));
        }
        other => panic!("{other:?}"),
    }
    get_events(&mut h, m, 3, vec![Value::UInt(sub.get())]);
    let evs = result_list(h.one(m));
    assert_eq!(evs.len(), 1);
    assert_eq!(evs[0].get("args"), Some(&Value::Bytes(opaque)));
    let d = evs[0].get("details").and_then(Value::as_dict).unwrap();
    assert_eq!(d.get("ppt_cipher"), Some(&s("xsalsa20poly1305")));
}
