//! Meta API tests: session, subscription and registration meta procedures
//! and events, testaments, router-originated (internal) calls and the
//! meta-API switch (see the `meta` and `internal` modules).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use wamp_proto::{code, Dict, List, Message, Payload, RegistrationId, SessionId, SubscriptionId, Value};

use super::tests::{args, args_kwargs, dict, expect_error, open_role, perm, rid, values, Harness, Out};
use super::*;

// ---------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn u(v: u64) -> Value {
    Value::UInt(v)
}

impl Harness {
    /// Joins with a chosen authid.
    fn join_as(&mut self, ser: Serializer, authid: &str, role: &str) -> SessionId {
        self.next += 1;
        let sid = SessionId::from_valid(self.next);
        let mut transport = Dict::new();
        transport.insert("type".into(), s("websocket"));
        let info = SessionInfo {
            session: sid,
            serializer: ser,
            authid: authid.into(),
            authrole: role.into(),
            authmethod: "ticket".into(),
            authprovider: "static".into(),
            transport,
        };
        self.serializers.insert(sid, ser);
        self.realm.join(info, &Dict::new()).expect("join");
        sid
    }

    /// Calls `procedure` with `payload` and returns the RESULT's payload
    /// (panics on anything else).
    fn meta_ok(&mut self, sid: SessionId, req: u64, procedure: &str, payload: Payload) -> (Option<List>, Option<Dict>) {
        self.call(sid, req, procedure, payload);
        match self.one(sid) {
            Message::Result { request, payload, .. } if request == rid(req) => values(&payload),
            other => panic!("expected RESULT for {procedure}, got {other:?}"),
        }
    }

    /// The single positional result of a meta call.
    fn meta_value(&mut self, sid: SessionId, req: u64, procedure: &str, a: Vec<Value>) -> Value {
        let (a, _) = self.meta_ok(sid, req, procedure, args(a));
        let a = a.expect("positional result");
        assert_eq!(a.len(), 1, "{procedure}: {a:?}");
        a.into_iter().next().unwrap_or(Value::Null)
    }

    /// Calls a kill procedure: returns its single result and the other
    /// output (GOODBYEs, events).
    fn kill_call(&mut self, sid: SessionId, req: u64, procedure: &str, a: Vec<Value>) -> (Value, Vec<Out>) {
        self.call(sid, req, procedure, args(a));
        let out = self.drain();
        let result = out.iter().find_map(|o| match o {
            Out::Msg(s, Message::Result { request, payload, .. }) if *s == sid && *request == rid(req) => {
                values(payload).0.and_then(|a| a.into_iter().next())
            }
            _ => None,
        });
        (result.unwrap_or_else(|| panic!("no RESULT for {procedure}: {out:?}")), out)
    }

    fn meta_err(&mut self, sid: SessionId, req: u64, procedure: &str, payload: Payload, uri: &str) {
        self.call(sid, req, procedure, payload);
        expect_error(&self.one(sid), code::CALL, req, uri);
    }

    fn subscribe_opts(&mut self, sid: SessionId, req: u64, topic: &str, options: Dict) -> SubscriptionId {
        self.send(sid, Message::Subscribe { request: rid(req), options, topic: topic.into() });
        match self.one(sid) {
            Message::Subscribed { subscription, .. } => subscription,
            other => panic!("expected SUBSCRIBED, got {other:?}"),
        }
    }

    /// REGISTERs and returns the reply (meta events to others are dropped).
    fn register_with(&mut self, sid: SessionId, req: u64, procedure: &str, options: Dict) -> Message {
        self.send(sid, Message::Register { request: rid(req), options, procedure: procedure.into() });
        let out = self.drain();
        let mine: Vec<Message> = out
            .iter()
            .filter_map(|o| match o {
                Out::Msg(s, m) if *s == sid => Some(m.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(mine.len(), 1, "{out:?}");
        mine.into_iter().next().unwrap_or(Message::Abort { details: Dict::new(), reason: String::new() })
    }
}

/// The EVENTs in `out` to `to`, as (args, kwargs).
fn events_to(out: &[Out], to: SessionId) -> Vec<(List, Dict)> {
    out.iter()
        .filter_map(|o| match o {
            Out::Msg(s, Message::Event { payload, .. }) if *s == to => {
                let (a, k) = values(payload);
                Some((a.unwrap_or_default(), k.unwrap_or_default()))
            }
            _ => None,
        })
        .collect()
}

/// The EVENTs in `out` to `to` on subscription `sub`.
fn events_on(out: &[Out], to: SessionId, sub: SubscriptionId) -> Vec<List> {
    out.iter()
        .filter_map(|o| match o {
            Out::Msg(s, Message::Event { subscription, payload, .. }) if *s == to && *subscription == sub => {
                Some(values(payload).0.unwrap_or_default())
            }
            _ => None,
        })
        .collect()
}

fn features(details: &Dict, role: &str) -> Vec<String> {
    let mut names: Vec<String> = details
        .get("roles")
        .and_then(Value::as_dict)
        .and_then(|r| r.get(role))
        .and_then(Value::as_dict)
        .and_then(|r| r.get("features"))
        .and_then(Value::as_dict)
        .map(|f| f.keys().cloned().collect())
        .unwrap_or_default();
    names.sort();
    names
}

fn welcome_details(h: &mut Harness) -> Dict {
    let sid = h.join_as(Serializer::Json, "w", "anonymous");
    match h.one(sid) {
        Message::Welcome { details, .. } => details,
        other => panic!("expected WELCOME, got {other:?}"),
    }
}

fn ids(v: &Value) -> Vec<u64> {
    v.as_list().expect("list").iter().map(|x| x.as_u64().expect("id")).collect()
}

// ---------------------------------------------------------------------------
// switch and WELCOME
// ---------------------------------------------------------------------------

#[test]
fn welcome_announces_meta_features_only_when_enabled() {
    let mut h = Harness::new();
    assert!(h.realm.meta_config().enabled, "on by default");
    let d = welcome_details(&mut h);
    let broker = features(&d, "broker");
    let dealer = features(&d, "dealer");
    for f in ["session_meta_api", "subscription_meta_api"] {
        assert!(broker.iter().any(|x| x == f), "broker {f}: {broker:?}");
    }
    for f in ["session_meta_api", "registration_meta_api", "testament_meta_api"] {
        assert!(dealer.iter().any(|x| x == f), "dealer {f}: {dealer:?}");
    }
    assert!(!broker.iter().any(|x| x == "registration_meta_api"));

    let mut off = Harness::new();
    off.realm =
        Realm::new(RealmSpec { name: "realm1".into(), roles: vec![open_role("anonymous")] }, 1).with_meta_api(false);
    let d = welcome_details(&mut off);
    let all: Vec<String> = features(&d, "broker").into_iter().chain(features(&d, "dealer")).collect();
    assert!(!all.iter().any(|f| f.contains("meta_api")), "{all:?}");
    assert_eq!(features(&d, "broker").len(), 8);
    assert_eq!(features(&d, "dealer").len(), 9);
}

#[test]
fn meta_disabled_means_no_procedures_and_no_events() {
    let mut h = Harness::new();
    h.realm =
        Realm::new(RealmSpec { name: "realm1".into(), roles: vec![open_role("anonymous")] }, 1).with_meta_api(false);
    let a = h.join(Serializer::Json, "anonymous");
    let on_join = h.subscribe(a, 1, "wamp.session.on_join");
    let _ = on_join;
    for (i, p) in
        ["wamp.session.count", "wamp.subscription.list", "wamp.registration.list", "wamp.session.add_testament"]
            .iter()
            .enumerate()
    {
        h.meta_err(a, 10 + i as u64, p, Payload::EMPTY, uris::NO_SUCH_PROCEDURE);
    }
    let _b = h.join(Serializer::Json, "anonymous"); // asserts only a WELCOME is queued
    assert!(h.drain().is_empty());
    // get_events is not part of the switch (it belongs to event history).
    h.meta_err(a, 20, "wamp.subscription.get_events", args(vec![u(1)]), uris::NO_SUCH_SUBSCRIPTION);
}

#[test]
fn meta_calls_need_call_permission() {
    let limited = Role {
        name: "limited".into(),
        permissions: vec![
            perm("com.", MatchPolicy::Prefix, Allow::ALL, Disclose::default()),
            perm("wamp.session.count", MatchPolicy::Exact, Allow::ALL, Disclose::default()),
        ],
    };
    let mut h = Harness::with_roles(vec![open_role("anonymous"), limited]);
    let l = h.join(Serializer::Msgpack, "limited");
    assert_eq!(h.meta_value(l, 1, "wamp.session.count", vec![]), u(1));
    h.meta_err(l, 2, "wamp.session.list", Payload::EMPTY, uris::NOT_AUTHORIZED);
    h.meta_err(l, 3, "wamp.session.kill_all", Payload::EMPTY, uris::NOT_AUTHORIZED);
    h.meta_err(
        l,
        4,
        "wamp.session.add_testament",
        args(vec![s("com.x"), Value::List(vec![]), Value::Dict(Dict::new())]),
        uris::NOT_AUTHORIZED,
    );
    // Nor may it subscribe to meta events.
    h.send(l, Message::Subscribe { request: rid(5), options: Dict::new(), topic: "wamp.session.on_join".into() });
    expect_error(&h.one(l), code::SUBSCRIBE, 5, uris::NOT_AUTHORIZED);
}

// ---------------------------------------------------------------------------
// session meta API
// ---------------------------------------------------------------------------

#[test]
fn session_count_list_get() {
    let mut h = Harness::with_roles(vec![open_role("anonymous"), open_role("admin")]);
    let a = h.join_as(Serializer::Json, "alice", "admin");
    let b = h.join_as(Serializer::Cbor, "bob", "anonymous");
    let c = h.join_as(Serializer::Msgpack, "carol", "anonymous");
    h.drain();
    assert_eq!(h.meta_value(a, 1, "wamp.session.count", vec![]), u(3));
    assert_eq!(h.meta_value(a, 2, "wamp.session.count", vec![Value::List(vec![s("admin")])]), u(1));
    assert_eq!(ids(&h.meta_value(a, 3, "wamp.session.list", vec![])), vec![a.get(), b.get(), c.get()]);
    let (r, _) = h.meta_ok(
        a,
        4,
        "wamp.session.list",
        Payload::values(None, Some(dict(vec![("filter_authroles", Value::List(vec![s("anonymous")]))]))),
    );
    assert_eq!(ids(&r.unwrap()[0]), vec![b.get(), c.get()]);
    h.meta_err(a, 5, "wamp.session.count", args(vec![s("admin")]), uris::INVALID_ARGUMENT);

    let d = h.meta_value(b, 6, "wamp.session.get", vec![u(c.get())]);
    let d = d.as_dict().expect("details");
    assert_eq!(d.get("session"), Some(&u(c.get())));
    assert_eq!(d.get("authid"), Some(&s("carol")));
    assert_eq!(d.get("authrole"), Some(&s("anonymous")));
    assert_eq!(d.get("authmethod"), Some(&s("ticket")));
    assert_eq!(d.get("authprovider"), Some(&s("static")));
    assert_eq!(d.get("realm"), Some(&s("realm1")));
    assert_eq!(d.get("transport").and_then(Value::as_dict).and_then(|t| t.get("type")), Some(&s("websocket")));
    h.meta_err(b, 7, "wamp.session.get", args(vec![u(999_999)]), uris::NO_SUCH_SESSION);
    h.meta_err(b, 8, "wamp.session.get", args(vec![s("x")]), uris::INVALID_ARGUMENT);
    h.meta_err(b, 9, "wamp.session.get", Payload::EMPTY, uris::INVALID_ARGUMENT);
}

#[test]
fn on_join_and_on_leave_events() {
    let mut h = Harness::new();
    let obs = h.join_as(Serializer::Json, "observer", "anonymous");
    h.drain();
    let on_join = h.subscribe(obs, 1, "wamp.session.on_join");
    let on_leave = h.subscribe(obs, 2, "wamp.session.on_leave");

    let b = h.join_as(Serializer::Cbor, "bob", "anonymous");
    let out = h.drain();
    // WELCOME first, then the event.
    assert!(matches!(&out[0], Out::Msg(s, Message::Welcome { .. }) if *s == b), "{out:?}");
    let ev = events_on(&out, obs, on_join);
    assert_eq!(ev.len(), 1, "{out:?}");
    let d = ev[0][0].as_dict().expect("details dict");
    assert_eq!(d.get("session"), Some(&u(b.get())));
    assert_eq!(d.get("authid"), Some(&s("bob")));
    assert_eq!(d.get("authrole"), Some(&s("anonymous")));
    assert!(events_to(&out, b).is_empty());

    // Transport lost.
    h.realm.leave(b);
    let out = h.drain();
    assert_eq!(events_on(&out, obs, on_leave), vec![vec![u(b.get()), s("bob"), s("anonymous")]]);

    // Clean GOODBYE: the reply comes first, then the event.
    let c = h.join_as(Serializer::Msgpack, "carol", "anonymous");
    h.drain();
    h.send(c, Message::Goodbye { details: Dict::new(), reason: "wamp.close.normal".into() });
    let out = h.drain();
    assert!(matches!(&out[0], Out::Msg(s, Message::Goodbye { .. }) if *s == c), "{out:?}");
    assert_eq!(events_on(&out, obs, on_leave), vec![vec![u(c.get()), s("carol"), s("anonymous")]]);

    // The observer's own departure reaches nobody; no event for ABORT twice.
    h.send(obs, Message::Abort { details: Dict::new(), reason: "wamp.close.normal".into() });
    assert_eq!(h.drain(), vec![Out::Close(obs)]);
}

#[test]
fn kill_closes_the_target_with_goodbye() {
    let mut h = Harness::new();
    let a = h.join_as(Serializer::Json, "admin", "anonymous");
    let b = h.join_as(Serializer::Cbor, "bob", "anonymous");
    h.drain();
    let leave = h.subscribe(a, 1, "wamp.session.on_leave");

    // Self, unknown, bad reason.
    h.meta_err(a, 2, "wamp.session.kill", args(vec![u(a.get())]), uris::NO_SUCH_SESSION);
    h.meta_err(a, 3, "wamp.session.kill", args(vec![u(424_242)]), uris::NO_SUCH_SESSION);
    h.meta_err(
        a,
        4,
        "wamp.session.kill",
        Payload::values(Some(vec![u(b.get())]), Some(dict(vec![("reason", s("not a uri"))]))),
        uris::INVALID_URI,
    );

    // Default reason, no message.
    h.call(a, 5, "wamp.session.kill", args(vec![u(b.get())]));
    let out = h.drain();
    let bye = out.iter().find_map(|o| match o {
        Out::Msg(s, Message::Goodbye { reason, details }) if *s == b => Some((reason.clone(), details.clone())),
        _ => None,
    });
    assert_eq!(bye, Some((uris::CLOSE_KILLED.to_owned(), Dict::new())), "{out:?}");
    assert!(out
        .iter()
        .any(|o| matches!(o, Out::Msg(s, Message::Result { request, .. }) if *s == a && *request == rid(5))));
    assert_eq!(events_on(&out, a, leave), vec![vec![u(b.get()), s("bob"), s("anonymous")]]);
    // Already closing: not a session any more.
    h.meta_err(a, 6, "wamp.session.kill", args(vec![u(b.get())]), uris::NO_SUCH_SESSION);
    assert_eq!(h.meta_value(a, 7, "wamp.session.count", vec![]), u(1));
    // Its GOODBYE reply closes it.
    h.send(b, Message::Goodbye { details: Dict::new(), reason: uris::GOODBYE_AND_OUT.into() });
    assert_eq!(h.drain(), vec![Out::Close(b)]);

    // Custom reason and message, as keywords.
    let c = h.join_as(Serializer::Json, "carol", "anonymous");
    h.drain();
    let kw = dict(vec![("reason", s("com.app.banned")), ("message", s("go away"))]);
    h.call(a, 8, "wamp.session.kill", Payload::values(Some(vec![u(c.get())]), Some(kw)));
    let out = h.drain();
    let bye = out.iter().find_map(|o| match o {
        Out::Msg(s, Message::Goodbye { reason, details }) if *s == c => {
            Some((reason.clone(), details.get("message").cloned()))
        }
        _ => None,
    });
    assert_eq!(bye, Some(("com.app.banned".to_owned(), Some(s("go away")))));
}

#[test]
fn kill_by_authid_authrole_and_all() {
    let mut h = Harness::with_roles(vec![open_role("anonymous"), open_role("worker")]);
    let admin = h.join_as(Serializer::Json, "dup", "anonymous");
    let d1 = h.join_as(Serializer::Json, "dup", "anonymous");
    let d2 = h.join_as(Serializer::Cbor, "dup", "worker");
    let _w = h.join_as(Serializer::Msgpack, "w", "worker");
    let other = h.join_as(Serializer::Json, "other", "anonymous");
    h.drain();
    // The caller shares the authid but is spared.
    let (killed, out) = h.kill_call(admin, 1, "wamp.session.kill_by_authid", vec![s("dup")]);
    assert_eq!(killed, u(2), "the spec's count|int");
    for t in [d1, d2] {
        assert!(out.iter().any(|o| matches!(o, Out::Msg(s, Message::Goodbye { .. }) if *s == t)), "{out:?}");
    }
    let (killed, _) = h.kill_call(admin, 2, "wamp.session.kill_by_authrole", vec![s("worker")]);
    assert_eq!(killed, u(1), "d2 is already closing");
    assert_eq!(h.meta_value(admin, 3, "wamp.session.kill_by_authrole", vec![s("nobody")]), u(0));
    h.meta_err(admin, 4, "wamp.session.kill_by_authid", Payload::EMPTY, uris::INVALID_ARGUMENT);

    // kill_all: the victims subscribed to on_leave never see each other leave.
    let v1 = h.join_as(Serializer::Json, "v1", "anonymous");
    let v2 = h.join_as(Serializer::Json, "v2", "anonymous");
    h.drain();
    h.subscribe(v1, 1, "wamp.session.on_leave");
    h.subscribe(v2, 1, "wamp.session.on_leave");
    let leave = h.subscribe(admin, 10, "wamp.session.on_leave");
    let (n, out) = h.kill_call(admin, 11, "wamp.session.kill_all", vec![]);
    assert_eq!(n, u(3)); // other, v1, v2
    assert!(events_to(&out, v1).is_empty() && events_to(&out, v2).is_empty(), "{out:?}");
    let mut left: Vec<u64> = events_on(&out, admin, leave).iter().map(|e| e[0].as_u64().unwrap()).collect();
    left.sort_unstable();
    assert_eq!(left, vec![other.get(), v1.get(), v2.get()]);
    assert_eq!(h.meta_value(admin, 12, "wamp.session.count", vec![]), u(1));
}

// ---------------------------------------------------------------------------
// subscription meta API
// ---------------------------------------------------------------------------

#[test]
fn subscription_meta_procedures() {
    let mut h = Harness::with_roles(vec![open_role("anonymous"), open_role("trusted")]);
    h.realm.set_wall_clock(UNIX_EPOCH + Duration::from_millis(1_714_564_800_123));
    let a = h.join(Serializer::Json, "anonymous");
    let b = h.join(Serializer::Cbor, "anonymous");
    let exact = h.subscribe(a, 1, "com.app.topic");
    assert_eq!(h.subscribe(b, 1, "com.app.topic"), exact);
    let prefix = h.subscribe_opts(a, 2, "com.app", dict(vec![("match", s("prefix"))]));
    let wild = h.subscribe_opts(b, 2, "com..topic", dict(vec![("match", s("wildcard"))]));
    let meta = h.subscribe(a, 3, "wamp.session.on_join");

    let list = h.meta_value(a, 10, "wamp.subscription.list", vec![]);
    let list = list.as_dict().expect("dict");
    assert_eq!(ids(&list["exact"]), vec![exact.get()], "the wamp. subscription is protected");
    assert_eq!(ids(&list["prefix"]), vec![prefix.get()]);
    assert_eq!(ids(&list["wildcard"]), vec![wild.get()]);
    // A session's own list includes everything.
    let mine = h.meta_value(a, 11, "wamp.subscription.list", vec![u(a.get())]);
    let mut e = ids(&mine.as_dict().unwrap()["exact"]);
    e.sort_unstable();
    let mut want = vec![exact.get(), meta.get()];
    want.sort_unstable();
    assert_eq!(e, want);
    h.meta_err(a, 12, "wamp.subscription.list", args(vec![u(5)]), uris::NO_SUCH_SESSION);

    assert_eq!(h.meta_value(a, 20, "wamp.subscription.lookup", vec![s("com.app.topic")]), u(exact.get()));
    let prefix_opts = Value::Dict(dict(vec![("match", s("prefix"))]));
    assert_eq!(h.meta_value(a, 21, "wamp.subscription.lookup", vec![s("com.app"), prefix_opts]), u(prefix.get()));
    assert_eq!(h.meta_value(a, 22, "wamp.subscription.lookup", vec![s("com.app")]), Value::Null);
    assert_eq!(h.meta_value(a, 23, "wamp.subscription.lookup", vec![s("wamp.session.on_join")]), Value::Null);

    let mut m = ids(&h.meta_value(a, 30, "wamp.subscription.match", vec![s("com.app.topic")]));
    m.sort_unstable();
    let mut want = vec![exact.get(), prefix.get(), wild.get()];
    want.sort_unstable();
    assert_eq!(m, want);
    assert_eq!(h.meta_value(a, 31, "wamp.subscription.match", vec![s("org.none")]), Value::Null);

    let g = h.meta_value(a, 40, "wamp.subscription.get", vec![u(prefix.get())]);
    let g = g.as_dict().unwrap();
    assert_eq!(g.get("id"), Some(&u(prefix.get())));
    assert_eq!(g.get("uri"), Some(&s("com.app")));
    assert_eq!(g.get("match"), Some(&s("prefix")));
    assert_eq!(g.get("created"), Some(&s("2024-05-01T12:00:00.123Z")));
    h.meta_err(a, 41, "wamp.subscription.get", args(vec![u(meta.get())]), uris::NOT_AUTHORIZED);
    h.meta_err(a, 42, "wamp.subscription.get", args(vec![u(77)]), uris::NO_SUCH_SUBSCRIPTION);

    assert_eq!(
        ids(&h.meta_value(a, 50, "wamp.subscription.list_subscribers", vec![u(exact.get())])),
        vec![a.get(), b.get()]
    );
    assert_eq!(h.meta_value(a, 51, "wamp.subscription.count_subscribers", vec![u(exact.get())]), u(2));
    h.meta_err(a, 52, "wamp.subscription.count_subscribers", args(vec![u(77)]), uris::NO_SUCH_SUBSCRIPTION);

    // A trusted caller sees protected subscriptions too.
    let t = h.join_as(Serializer::Json, "t", "trusted");
    h.drain();
    let list = h.meta_value(t, 60, "wamp.subscription.list", vec![]);
    assert_eq!(ids(&list.as_dict().unwrap()["exact"]).len(), 2);
    assert_eq!(h.meta_value(t, 61, "wamp.subscription.count_subscribers", vec![u(meta.get())]), u(1));
}

#[test]
fn subscription_meta_events() {
    let mut h = Harness::new();
    let obs = h.join(Serializer::Json, "anonymous");
    let topics = ["on_create", "on_subscribe", "on_unsubscribe", "on_delete"];
    let subs: Vec<SubscriptionId> = topics
        .iter()
        .enumerate()
        .map(|(i, t)| h.subscribe(obs, i as u64 + 1, &format!("wamp.subscription.{t}")))
        .collect();
    let a = h.join(Serializer::Cbor, "anonymous");
    let b = h.join(Serializer::Msgpack, "anonymous");
    h.drain();

    h.send(a, Message::Subscribe { request: rid(1), options: Dict::new(), topic: "com.x".into() });
    let out = h.drain();
    let Out::Msg(_, Message::Subscribed { subscription: x, .. }) = out[0].clone() else {
        panic!("SUBSCRIBED first: {out:?}")
    };
    let created = events_on(&out, obs, subs[0]);
    assert_eq!(created.len(), 1);
    assert_eq!(created[0][0], u(a.get()));
    let d = created[0][1].as_dict().unwrap();
    assert_eq!((d.get("id"), d.get("uri"), d.get("match")), (Some(&u(x.get())), Some(&s("com.x")), Some(&s("exact"))));
    assert_eq!(d.get("created"), Some(&Value::Null), "no wall clock given");
    assert_eq!(events_on(&out, obs, subs[1]), vec![vec![u(a.get()), u(x.get())]]);

    // A second subscriber: on_subscribe only; a repeated subscribe: nothing.
    h.send(b, Message::Subscribe { request: rid(1), options: Dict::new(), topic: "com.x".into() });
    let out = h.drain();
    assert_eq!(events_on(&out, obs, subs[0]).len(), 0);
    assert_eq!(events_on(&out, obs, subs[1]), vec![vec![u(b.get()), u(x.get())]]);
    h.send(b, Message::Subscribe { request: rid(2), options: Dict::new(), topic: "com.x".into() });
    let out = h.drain();
    assert!(matches!(&out[..], [Out::Msg(s, Message::Subscribed { .. })] if *s == b), "{out:?}");

    // Unsubscribe: on_unsubscribe; the last one also on_delete.
    h.send(a, Message::Unsubscribe { request: rid(3), subscription: x });
    let out = h.drain();
    assert_eq!(events_on(&out, obs, subs[2]), vec![vec![u(a.get()), u(x.get())]]);
    assert!(events_on(&out, obs, subs[3]).is_empty());
    h.realm.leave(b);
    let out = h.drain();
    assert_eq!(events_on(&out, obs, subs[2]), vec![vec![u(b.get()), u(x.get())]]);
    assert_eq!(events_on(&out, obs, subs[3]), vec![vec![u(b.get()), u(x.get())]]);

    // No events about subscriptions to wamp. topics.
    let c = h.join(Serializer::Json, "anonymous");
    h.drain();
    h.subscribe(c, 1, "wamp.session.on_leave");
    assert!(h.drain().is_empty());
}

// ---------------------------------------------------------------------------
// registration meta API
// ---------------------------------------------------------------------------

#[test]
fn registration_meta_procedures_and_events() {
    let mut h = Harness::new();
    h.realm.set_wall_clock(UNIX_EPOCH + Duration::from_secs(951_782_400)); // 2000-02-29
    let obs = h.join(Serializer::Json, "anonymous");
    let topics = ["on_create", "on_register", "on_unregister", "on_delete"];
    let subs: Vec<SubscriptionId> = topics
        .iter()
        .enumerate()
        .map(|(i, t)| h.subscribe(obs, i as u64 + 1, &format!("wamp.registration.{t}")))
        .collect();
    let a = h.join(Serializer::Cbor, "anonymous");
    let b = h.join(Serializer::Msgpack, "anonymous");
    h.drain();

    let rr = dict(vec![("invoke", s("roundrobin"))]);
    h.send(a, Message::Register { request: rid(1), options: rr.clone(), procedure: "com.rpc".into() });
    let out = h.drain();
    let Out::Msg(_, Message::Registered { registration: r, .. }) = out[0].clone() else { panic!("{out:?}") };
    let created = events_on(&out, obs, subs[0]);
    assert_eq!(created.len(), 1);
    let d = created[0][1].as_dict().unwrap();
    assert_eq!(d.get("invoke"), Some(&s("roundrobin")));
    assert_eq!(d.get("created"), Some(&s("2000-02-29T00:00:00.000Z")));
    assert_eq!(events_on(&out, obs, subs[1]), vec![vec![u(a.get()), u(r.get())]]);
    let Message::Registered { registration: r2, .. } = h.register_with(b, 1, "com.rpc", rr) else { panic!() };
    assert_eq!(r2, r);
    let p = match h.register_with(b, 2, "com.pre", dict(vec![("match", s("prefix"))])) {
        Message::Registered { registration, .. } => registration,
        other => panic!("{other:?}"),
    };
    h.drain();

    let list = h.meta_value(obs, 10, "wamp.registration.list", vec![]);
    let list = list.as_dict().unwrap();
    assert_eq!(
        (ids(&list["exact"]), ids(&list["prefix"]), ids(&list["wildcard"])),
        (vec![r.get()], vec![p.get()], vec![])
    );
    let mine = h.meta_value(obs, 11, "wamp.registration.list", vec![u(b.get())]);
    assert_eq!(ids(&mine.as_dict().unwrap()["prefix"]), vec![p.get()]);
    assert_eq!(h.meta_value(obs, 12, "wamp.registration.lookup", vec![s("com.rpc")]), u(r.get()));
    assert_eq!(h.meta_value(obs, 13, "wamp.registration.lookup", vec![s("com.pre")]), Value::Null);
    let po = Value::Dict(dict(vec![("match", s("prefix"))]));
    assert_eq!(h.meta_value(obs, 14, "wamp.registration.lookup", vec![s("com.pre"), po]), u(p.get()));
    assert_eq!(h.meta_value(obs, 15, "wamp.registration.match", vec![s("com.pre.x")]), u(p.get()));
    assert_eq!(h.meta_value(obs, 16, "wamp.registration.match", vec![s("com.rpc")]), u(r.get()));
    assert_eq!(h.meta_value(obs, 17, "wamp.registration.match", vec![s("org.x")]), Value::Null);
    let g = h.meta_value(obs, 18, "wamp.registration.get", vec![u(r.get())]);
    let g = g.as_dict().unwrap();
    assert_eq!(
        (g.get("uri"), g.get("match"), g.get("invoke")),
        (Some(&s("com.rpc")), Some(&s("exact")), Some(&s("roundrobin")))
    );
    assert_eq!(ids(&h.meta_value(obs, 19, "wamp.registration.list_callees", vec![u(r.get())])), vec![a.get(), b.get()]);
    assert_eq!(h.meta_value(obs, 20, "wamp.registration.count_callees", vec![u(r.get())]), u(2));
    h.meta_err(obs, 21, "wamp.registration.get", args(vec![u(3)]), uris::NO_SUCH_REGISTRATION);
    h.meta_err(obs, 22, "wamp.registration.list_callees", Payload::EMPTY, uris::INVALID_ARGUMENT);

    // Unregister, then the last callee leaves: on_unregister, on_delete.
    h.send(a, Message::Unregister { request: rid(5), registration: r });
    let out = h.drain();
    assert_eq!(events_on(&out, obs, subs[2]), vec![vec![u(a.get()), u(r.get())]]);
    assert!(events_on(&out, obs, subs[3]).is_empty());
    h.realm.leave(b);
    let out = h.drain();
    let mut unreg = events_on(&out, obs, subs[2]);
    unreg.sort_by_key(|e| e[1].as_u64());
    let mut want = vec![vec![u(b.get()), u(r.get())], vec![u(b.get()), u(p.get())]];
    want.sort_by_key(|e| e[1].as_u64());
    assert_eq!(unreg, want);
    assert_eq!(events_on(&out, obs, subs[3]).len(), 2);
    h.meta_err(obs, 30, "wamp.registration.count_callees", args(vec![u(r.get())]), uris::NO_SUCH_REGISTRATION);
}

#[test]
fn invocation_policy_conflict_uses_crossbars_uri() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Json, "anonymous");
    let b = h.join(Serializer::Json, "anonymous");
    let rr = dict(vec![("invoke", s("roundrobin"))]);
    assert!(matches!(h.register_with(a, 1, "p", rr.clone()), Message::Registered { .. }));
    assert!(matches!(h.register_with(b, 1, "p", rr), Message::Registered { .. }));
    // The end-to-end scenario: an existing callee asks for `single`.
    let m = h.register_with(b, 2, "p", dict(vec![("invoke", s("single"))]));
    expect_error(&m, code::REGISTER, 2, uris::PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY);
    let m = h.register_with(b, 3, "p", Dict::new());
    expect_error(&m, code::REGISTER, 3, uris::PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY);
    // A `single` registration admits nobody, whatever the policy.
    assert!(matches!(h.register_with(a, 4, "q", Dict::new()), Message::Registered { .. }));
    let m = h.register_with(b, 5, "q", dict(vec![("invoke", s("random"))]));
    expect_error(&m, code::REGISTER, 5, uris::PROCEDURE_ALREADY_EXISTS);
}

// ---------------------------------------------------------------------------
// testaments
// ---------------------------------------------------------------------------

fn add_testament(h: &mut Harness, sid: SessionId, req: u64, topic: &str, a: Vec<Value>, kw: Dict) -> Message {
    h.call(sid, req, "wamp.session.add_testament", args(vec![s(topic), Value::List(a), Value::Dict(kw)]));
    h.one(sid)
}

#[test]
fn testaments_fire_when_the_session_ends() {
    for end in ["leave", "goodbye", "abort", "kill"] {
        let mut h = Harness::new();
        let obs = h.join(Serializer::Json, "anonymous");
        let t = h.subscribe(obs, 1, "com.will");
        let w = h.join(Serializer::Cbor, "anonymous");
        h.drain();
        let Message::Result { payload, .. } =
            add_testament(&mut h, w, 1, "com.will", vec![s("bye")], dict(vec![("k", u(1))]))
        else {
            panic!()
        };
        let pub_id = values(&payload).0.unwrap()[0].as_u64().expect("publication id");
        match end {
            "leave" => h.realm.leave(w),
            "goodbye" => h.send(w, Message::Goodbye { details: Dict::new(), reason: "wamp.close.normal".into() }),
            "abort" => h.realm.abort(w, "wamp.error.protocol_violation", "x"),
            _ => h.call(obs, 9, "wamp.session.kill", args(vec![u(w.get())])),
        }
        let out = h.drain();
        let ev: Vec<_> = out
            .iter()
            .filter_map(|o| match o {
                Out::Msg(s, Message::Event { subscription, publication, payload, .. })
                    if *s == obs && *subscription == t =>
                {
                    Some((publication.get(), values(payload)))
                }
                _ => None,
            })
            .collect();
        assert_eq!(ev, vec![(pub_id, (Some(vec![s("bye")]), Some(dict(vec![("k", u(1))]))))], "{end}: {out:?}");
        // Exactly once, even if the transport then goes away too.
        h.realm.leave(w);
        assert!(events_to(&h.drain(), obs).is_empty());
    }
}

#[test]
fn testament_scopes_order_flush_and_options() {
    let mut h = Harness::new();
    let obs = h.join(Serializer::Json, "anonymous");
    let t = h.subscribe(obs, 1, "com.will");
    let w = h.join(Serializer::Msgpack, "anonymous");
    h.drain();
    let add = |h: &mut Harness, req: u64, n: u64, scope: &str| {
        let kw = dict(vec![
            ("scope", s(scope)),
            ("publish_options", Value::Dict(dict(vec![("disclose_me", Value::Bool(true))]))),
        ]);
        h.call(
            w,
            req,
            "wamp.session.add_testament",
            Payload::values(Some(vec![s("com.will"), Value::List(vec![u(n)]), Value::Dict(Dict::new())]), Some(kw)),
        );
        assert!(matches!(h.one(w), Message::Result { .. }));
    };
    add(&mut h, 1, 1, "destroyed");
    add(&mut h, 2, 2, "detached");
    add(&mut h, 3, 3, "destroyed");
    add(&mut h, 4, 4, "detached");
    // Flush the detached ones: count returned.
    assert_eq!(h.meta_value(w, 5, "wamp.session.flush_testaments", vec![s("detached")]), u(2));
    add(&mut h, 6, 6, "detached");
    h.meta_err(w, 7, "wamp.session.flush_testaments", args(vec![s("forever")]), uris::TESTAMENT_ERROR);
    h.realm.leave(w);
    let out = h.drain();
    let got: Vec<List> = events_on(&out, obs, t);
    assert_eq!(got, vec![vec![u(6)], vec![u(1)], vec![u(3)]], "detached first, then destroyed, in order");
    let publisher = out.iter().find_map(|o| match o {
        Out::Msg(_, Message::Event { details, .. }) => details.get("publisher").cloned(),
        _ => None,
    });
    assert_eq!(publisher, Some(u(w.get())), "disclose_me honoured");
}

#[test]
fn testament_refusals_and_limit() {
    let pubonly = Role {
        name: "nopub".into(),
        permissions: vec![
            perm("wamp.session.", MatchPolicy::Prefix, Allow::ALL, Disclose::default()),
            perm("com.ok", MatchPolicy::Exact, Allow::ALL, Disclose::default()),
        ],
    };
    let mut h = Harness::with_roles(vec![open_role("anonymous"), pubonly]);
    h.realm.set_meta_config(MetaConfig { max_testaments: 2, ..MetaConfig::default() });
    let w = h.join(Serializer::Json, "nopub");
    h.drain();
    expect_error(&add_testament(&mut h, w, 1, "com.secret", vec![], Dict::new()), code::CALL, 1, uris::NOT_AUTHORIZED);
    expect_error(
        &add_testament(&mut h, w, 2, "wamp.session.on_join", vec![], Dict::new()),
        code::CALL,
        2,
        uris::INVALID_URI,
    );
    expect_error(&add_testament(&mut h, w, 3, "bad topic", vec![], Dict::new()), code::CALL, 3, uris::INVALID_URI);
    let kw = dict(vec![("scope", s("sometime"))]);
    h.meta_err(
        w,
        4,
        "wamp.session.add_testament",
        Payload::values(Some(vec![s("com.ok"), Value::List(vec![]), Value::Dict(Dict::new())]), Some(kw)),
        uris::TESTAMENT_ERROR,
    );
    let kw = dict(vec![("publish_options", Value::Dict(dict(vec![("eligible", s("x"))])))]);
    h.meta_err(
        w,
        5,
        "wamp.session.add_testament",
        Payload::values(Some(vec![s("com.ok"), Value::List(vec![]), Value::Dict(Dict::new())]), Some(kw)),
        uris::INVALID_ARGUMENT,
    );
    h.meta_err(w, 6, "wamp.session.add_testament", args(vec![s("com.ok"), s("notalist")]), uris::INVALID_ARGUMENT);
    assert!(matches!(add_testament(&mut h, w, 7, "com.ok", vec![], Dict::new()), Message::Result { .. }));
    assert!(matches!(add_testament(&mut h, w, 8, "com.ok", vec![], Dict::new()), Message::Result { .. }));
    expect_error(&add_testament(&mut h, w, 9, "com.ok", vec![], Dict::new()), code::CALL, 9, uris::TESTAMENT_ERROR);
    // Payload size bound (the CALL arrives raw, as from a transport).
    h.realm.set_meta_config(MetaConfig { max_testament_payload: 16, ..MetaConfig::default() });
    assert_eq!(h.meta_value(w, 10, "wamp.session.flush_testaments", vec![]), u(2));
    let big = add_testament(&mut h, w, 11, "com.ok", vec![s(&"x".repeat(100))], Dict::new());
    expect_error(&big, code::CALL, 11, uris::TESTAMENT_ERROR);
}

// ---------------------------------------------------------------------------
// router-originated calls
// ---------------------------------------------------------------------------

fn invocation(h: &mut Harness, callee: SessionId) -> (wamp_proto::RequestId, RegistrationId, Dict, Payload) {
    match h.one(callee) {
        Message::Invocation { request, registration, details, payload } => (request, registration, details, payload),
        other => panic!("expected INVOCATION, got {other:?}"),
    }
}

#[test]
fn internal_call_results_and_errors() {
    let mut h = Harness::new();
    let auth = h.join(Serializer::Msgpack, "anonymous");
    let reg = h.register(auth, 1, "com.auth");
    assert!(h.realm.poll_internal_result().is_none());

    // Crossbar's authenticator call shape: (realm, authid, details).
    let details = dict(vec![("authmethod", s("ticket"))]);
    h.realm
        .internal_call(7, "com.auth", vec![s("realm1"), s("joe"), Value::Dict(details.clone())], Dict::new())
        .unwrap();
    assert_eq!(h.realm.internal_calls_pending(), 1);
    let (inv, r, d, p) = invocation(&mut h, auth);
    assert_eq!(r, reg);
    assert!(d.get("caller").is_none(), "no caller disclosure: {d:?}");
    assert_eq!(values(&p).0, Some(vec![s("realm1"), s("joe"), Value::Dict(details)]));
    assert!(h.realm.poll_internal_result().is_none(), "pending");
    h.send(auth, Message::Yield { request: inv, options: Dict::new(), payload: args(vec![s("admin")]) });
    assert!(h.drain().is_empty(), "nothing for any session");
    assert_eq!(h.realm.poll_internal_result(), Some((7, Ok(s("admin")))));
    assert_eq!(h.realm.internal_calls_pending(), 0);

    // kwargs-only result; empty result.
    h.realm.internal_call(8, "com.auth", vec![], Dict::new()).unwrap();
    let (inv, ..) = invocation(&mut h, auth);
    let kw = dict(vec![("role", s("user"))]);
    h.send(
        auth,
        Message::Yield { request: inv, options: Dict::new(), payload: Payload::values(None, Some(kw.clone())) },
    );
    assert_eq!(h.realm.poll_internal_result(), Some((8, Ok(Value::Dict(kw)))));
    h.realm.internal_call(9, "com.auth", vec![], Dict::new()).unwrap();
    let (inv, ..) = invocation(&mut h, auth);
    h.send(auth, Message::Yield { request: inv, options: Dict::new(), payload: Payload::EMPTY });
    assert_eq!(h.realm.poll_internal_result(), Some((9, Ok(Value::Null))));

    // ERROR from the callee.
    h.realm.internal_call(10, "com.auth", vec![], Dict::new()).unwrap();
    let (inv, ..) = invocation(&mut h, auth);
    h.send(
        auth,
        Message::Error {
            request_type: code::INVOCATION,
            request: inv,
            details: Dict::new(),
            error: "wamp.error.not_authorized".into(),
            payload: args(vec![s("no such user")]),
        },
    );
    assert_eq!(
        h.realm.poll_internal_result(),
        Some((10, Err(("wamp.error.not_authorized".to_owned(), "no such user".to_owned()))))
    );

    // Duplicate token while pending.
    h.realm.internal_call(11, "com.auth", vec![], Dict::new()).unwrap();
    assert_eq!(h.realm.internal_call(11, "com.auth", vec![], Dict::new()), Err(InternalCallError::DuplicateToken(11)));
    h.drain();

    // No such procedure: reported at once.
    h.realm.internal_call(12, "com.nothing", vec![], Dict::new()).unwrap();
    let (t, r) = h.realm.poll_internal_result().unwrap();
    assert_eq!((t, r.unwrap_err().0), (12, uris::NO_SUCH_PROCEDURE.to_owned()));
    h.realm.internal_call(13, "bad uri", vec![], Dict::new()).unwrap();
    assert_eq!(h.realm.poll_internal_result().unwrap().1.unwrap_err().0, uris::INVALID_URI);

    // The callee leaves: the pending call 11 is canceled.
    h.realm.leave(auth);
    assert_eq!(
        h.realm.poll_internal_result().map(|(t, r)| (t, r.unwrap_err().0)),
        Some((11, uris::CANCELED.to_owned()))
    );
    assert!(h.realm.poll_internal_result().is_none());
    assert_eq!(h.realm.internal_calls_pending(), 0);
}

#[test]
fn internal_call_timeout_and_limit() {
    let mut h = Harness::new();
    let callee = h.join(Serializer::Json, "anonymous");
    h.register(callee, 1, "com.slow");
    let t0 = Instant::now();
    h.realm.set_now(t0);
    h.realm.internal_call_with_timeout(1, "com.slow", vec![], Dict::new(), Some(Duration::from_secs(2))).unwrap();
    let (inv, ..) = invocation(&mut h, callee);
    assert_eq!(h.realm.poll_timeout(), Some(t0 + Duration::from_secs(2)));
    h.realm.handle_timeout(t0 + Duration::from_secs(1));
    assert!(h.realm.poll_internal_result().is_none());
    h.realm.handle_timeout(t0 + Duration::from_secs(2));
    assert_eq!(h.realm.poll_internal_result().map(|(t, r)| (t, r.unwrap_err().0)), Some((1, uris::TIMEOUT.to_owned())));
    // A late reply is stale and produces nothing.
    h.send(callee, Message::Yield { request: inv, options: Dict::new(), payload: Payload::EMPTY });
    assert!(h.realm.poll_internal_result().is_none());
    assert!(h.drain().is_empty());

    // Limit of calls in flight.
    h.realm.set_dealer_config(DealerConfig { max_pending_calls_per_session: 2, ..DealerConfig::default() });
    h.realm.internal_call(2, "com.slow", vec![], Dict::new()).unwrap();
    h.realm.internal_call(3, "com.slow", vec![], Dict::new()).unwrap();
    assert_eq!(h.realm.internal_call(4, "com.slow", vec![], Dict::new()), Err(InternalCallError::TooManyPending(2)));
}

#[test]
fn iso8601_formatting() {
    let t = |ms: u64| meta::iso8601(UNIX_EPOCH + Duration::from_millis(ms));
    assert_eq!(t(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(t(951_782_400_000 + 3_723_004), "2000-02-29T01:02:03.004Z");
    assert_eq!(t(4_102_444_799_999), "2099-12-31T23:59:59.999Z");
    let _ = SystemTime::now();
}

// ---------------------------------------------------------------------------
// revocation through the meta API
// ---------------------------------------------------------------------------

impl Harness {
    /// Joins an `anonymous` session that announced `features` under `role`.
    fn join_announcing(&mut self, ser: Serializer, role: &str, features: &[&str]) -> SessionId {
        self.next += 1;
        let sid = SessionId::from_valid(self.next);
        let info = SessionInfo {
            session: sid,
            serializer: ser,
            authid: format!("user-{}", self.next),
            authrole: "anonymous".into(),
            authmethod: "anonymous".into(),
            authprovider: "static".into(),
            transport: Dict::new(),
        };
        let f: Dict = features.iter().map(|n| ((*n).to_owned(), Value::Bool(true))).collect();
        let roles = dict(vec![(role, Value::Dict(dict(vec![("features", Value::Dict(f))])))]);
        self.serializers.insert(sid, ser);
        self.realm.join(info, &dict(vec![("roles", Value::Dict(roles))])).expect("join");
        assert!(matches!(self.one(sid), Message::Welcome { .. }));
        sid
    }
}

/// The RESULT to `sid` for request `req` is empty; returns the other output.
fn split_empty_result(out: Vec<Out>, sid: SessionId, req: u64) -> Vec<Out> {
    let (results, rest): (Vec<Out>, Vec<Out>) = out
        .into_iter()
        .partition(|o| matches!(o, Out::Msg(s, Message::Result { request, .. }) if *s == sid && *request == rid(req)));
    match &results[..] {
        [Out::Msg(_, Message::Result { payload, .. })] => assert_eq!(values(payload), (None, None)),
        other => panic!("expected one RESULT, got {other:?} (rest {rest:?})"),
    }
    rest
}

#[test]
fn registration_remove_callee() {
    let mut h = Harness::new();
    let aware = h.join_announcing(Serializer::Json, "callee", &["registration_revocation"]);
    let unaware = h.join_announcing(Serializer::Msgpack, "callee", &[]);
    let admin = h.join(Serializer::Json, "anonymous");
    let roundrobin = dict(vec![("invoke", s("roundrobin"))]);
    h.send(aware, Message::Register { request: rid(1), options: roundrobin.clone(), procedure: "svc".into() });
    let Message::Registered { registration: reg, .. } = h.one(aware) else { panic!("not registered") };
    h.send(unaware, Message::Register { request: rid(1), options: roundrobin, procedure: "svc".into() });
    assert!(matches!(h.one(unaware), Message::Registered { registration, .. } if registration == reg));
    let other = h.register(unaware, 2, "other");
    h.subscribe(admin, 3, "wamp.registration.on_unregister");

    // Errors first: nothing changes.
    let rm = "wamp.registration.remove_callee";
    h.meta_err(admin, 10, rm, args(vec![u(reg.get()), u(999_999)]), uris::NO_SUCH_SESSION);
    h.meta_err(admin, 11, rm, args(vec![u(424_242), u(aware.get())]), uris::NO_SUCH_REGISTRATION);
    h.meta_err(admin, 12, rm, args(vec![u(other.get()), u(aware.get())]), uris::NO_SUCH_REGISTRATION);
    h.meta_err(admin, 13, rm, args(vec![u(reg.get()), u(aware.get()), s("not a uri")]), uris::INVALID_URI);
    h.meta_err(admin, 14, rm, args(vec![s("x"), u(aware.get())]), uris::INVALID_ARGUMENT);
    assert_eq!(h.meta_value(admin, 15, "wamp.registration.count_callees", vec![u(reg.get())]), u(2));

    // The aware callee is told, with the reason.
    h.call(admin, 20, rm, args(vec![u(reg.get()), u(aware.get()), s("com.example.maintenance")]));
    let rest = split_empty_result(h.drain(), admin, 20);
    let unregistered: Vec<&Dict> = rest
        .iter()
        .filter_map(|o| match o {
            Out::Msg(to, Message::Unregistered { request, details: Some(d) }) if *to == aware => {
                assert_eq!(request.get(), 0);
                Some(d)
            }
            _ => None,
        })
        .collect();
    assert_eq!(unregistered.len(), 1, "{rest:?}");
    assert_eq!(unregistered[0].get("registration"), Some(&u(reg.get())));
    assert_eq!(unregistered[0].get("reason"), Some(&s("com.example.maintenance")));
    assert_eq!(events_to(&rest, admin), vec![(vec![u(aware.get()), u(reg.get())], Dict::new())]);
    assert!(rest.iter().all(|o| !matches!(o, Out::Msg(to, _) if *to == unaware)), "{rest:?}");
    assert_eq!(
        h.meta_value(admin, 21, "wamp.registration.list_callees", vec![u(reg.get())]),
        Value::List(vec![u(unaware.get())])
    );
    // Calls go to the remaining callee only.
    h.call(admin, 22, "svc", Payload::EMPTY);
    assert!(matches!(h.one(unaware), Message::Invocation { registration, .. } if registration == reg));
    // The revoked callee no longer holds it.
    h.send(aware, Message::Unregister { request: rid(4), registration: reg });
    expect_error(&h.one(aware), code::UNREGISTER, 4, uris::NO_SUCH_REGISTRATION);
    h.meta_err(admin, 23, rm, args(vec![u(reg.get()), u(aware.get())]), uris::NO_SUCH_REGISTRATION);

    // The unaware callee is removed silently (keyword arguments); the
    // registration goes with its last callee.
    let kw = args_kwargs(vec![], dict(vec![("registration_id", u(reg.get())), ("callee_id", u(unaware.get()))]));
    h.call(admin, 30, rm, kw);
    let rest = split_empty_result(h.drain(), admin, 30);
    assert!(rest.iter().all(|o| !matches!(o, Out::Msg(to, _) if *to == unaware || *to == aware)), "{rest:?}");
    h.call(admin, 31, "svc", Payload::EMPTY);
    expect_error(&h.one(admin), code::CALL, 31, uris::NO_SUCH_PROCEDURE);
    h.send(unaware, Message::Unregister { request: rid(5), registration: reg });
    expect_error(&h.one(unaware), code::UNREGISTER, 5, uris::NO_SUCH_REGISTRATION);
    // Its other registration is untouched.
    assert_eq!(h.meta_value(admin, 32, "wamp.registration.count_callees", vec![u(other.get())]), u(1));

    // The public engine call does the same.
    assert!(h.realm.revoke_callee(other, unaware, None));
    assert!(h.drain().iter().all(|o| !matches!(o, Out::Msg(to, _) if *to == unaware)));
    assert!(!h.realm.revoke_callee(other, unaware, None));
}

#[test]
fn subscription_remove_subscriber() {
    let mut h = Harness::new();
    let aware = h.join_announcing(Serializer::Json, "subscriber", &["subscription_revocation"]);
    let unaware = h.join_announcing(Serializer::Cbor, "subscriber", &[]);
    let admin = h.join(Serializer::Json, "anonymous");
    let sub = h.subscribe(aware, 1, "com.topic");
    assert_eq!(h.subscribe(unaware, 1, "com.topic"), sub);
    let other = h.subscribe(unaware, 2, "com.other");

    let rm = "wamp.subscription.remove_subscriber";
    h.meta_err(admin, 10, rm, args(vec![u(sub.get()), u(999_999)]), uris::NO_SUCH_SESSION);
    h.meta_err(admin, 11, rm, args(vec![u(424_242), u(aware.get())]), uris::NO_SUCH_SUBSCRIPTION);
    h.meta_err(admin, 12, rm, args(vec![u(other.get()), u(aware.get())]), uris::NO_SUCH_SUBSCRIPTION);
    h.meta_err(admin, 13, rm, args(vec![u(sub.get()), u(aware.get()), u(7)]), uris::INVALID_ARGUMENT);

    h.call(admin, 20, rm, args(vec![u(sub.get()), u(aware.get()), s("com.example.bye")]));
    let rest = split_empty_result(h.drain(), admin, 20);
    match &rest[..] {
        [Out::Msg(to, Message::Unsubscribed { request, details: Some(d) })] if *to == aware => {
            assert_eq!(request.get(), 0);
            assert_eq!(d.get("subscription"), Some(&u(sub.get())));
            assert_eq!(d.get("reason"), Some(&s("com.example.bye")));
        }
        other => panic!("expected UNSUBSCRIBED to {aware}, got {other:?}"),
    }
    // Events now reach the remaining subscriber only.
    h.publish(admin, 21, "com.topic", Dict::new(), args(vec![u(1)]));
    let out = h.drain();
    assert_eq!(events_on(&out, unaware, sub).len(), 1, "{out:?}");
    assert!(events_to(&out, aware).is_empty(), "{out:?}");
    h.send(aware, Message::Unsubscribe { request: rid(3), subscription: sub });
    expect_error(&h.one(aware), code::UNSUBSCRIBE, 3, uris::NO_SUCH_SUBSCRIPTION);

    // Silent removal of the unaware subscriber; the subscription is deleted.
    h.call(admin, 30, rm, args(vec![u(sub.get()), u(unaware.get())]));
    assert!(split_empty_result(h.drain(), admin, 30).is_empty());
    h.meta_err(admin, 31, "wamp.subscription.get", args(vec![u(sub.get())]), uris::NO_SUCH_SUBSCRIPTION);
    assert_eq!(h.meta_value(admin, 32, "wamp.subscription.count_subscribers", vec![u(other.get())]), u(1));
    assert!(h.realm.revoke_subscriber(other, unaware, Some("com.example.x")));
    assert!(h.drain().is_empty());
    assert!(!h.realm.revoke_subscriber(other, unaware, None));
}

#[test]
fn remove_callee_needs_call_permission() {
    let limited = Role {
        name: "limited".into(),
        permissions: vec![perm("com.", MatchPolicy::Prefix, Allow::ALL, Disclose::default())],
    };
    let mut h = Harness::with_roles(vec![open_role("anonymous"), limited]);
    let callee = h.join(Serializer::Json, "anonymous");
    let reg = h.register(callee, 1, "com.svc");
    let sub = h.subscribe(callee, 2, "com.topic");
    let l = h.join(Serializer::Json, "limited");
    let a = args(vec![u(reg.get()), u(callee.get())]);
    h.meta_err(l, 1, "wamp.registration.remove_callee", a, uris::NOT_AUTHORIZED);
    let a = args(vec![u(sub.get()), u(callee.get())]);
    h.meta_err(l, 2, "wamp.subscription.remove_subscriber", a, uris::NOT_AUTHORIZED);
    // Nothing was removed.
    h.call(l, 3, "com.svc", Payload::EMPTY);
    assert!(matches!(h.one(callee), Message::Invocation { .. }));
}
