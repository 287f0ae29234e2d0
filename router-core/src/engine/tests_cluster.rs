//! Cluster tests: three realms (workers) linked in memory. Every peer
//! message is encoded and decoded with the link codec on its way, as the
//! runtime would carry it; client messages go through their serializers.

use std::collections::HashMap;

use wamp_proto::{code, Dict, Message, Payload, SessionId, Value};

use super::tests::{args, dict, open_role, rid, values, Harness, Out};
use super::*;

struct Mesh {
    workers: Vec<Harness>,
    /// Client output per worker, in order.
    out: Vec<Vec<Out>>,
    /// Peer messages carried, per (from, to).
    carried: HashMap<(usize, usize), Vec<PeerMsg>>,
    /// Links that are cut.
    cut: Vec<(usize, usize)>,
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

impl Mesh {
    fn new(n: usize) -> Mesh {
        let mut workers = Vec::new();
        for i in 0..n {
            let mut h = Harness::with_roles(vec![open_role("anonymous")]);
            // Disjoint session ids per worker.
            h.next = 1000 * (i as u64 + 1);
            workers.push(h);
        }
        let mut m = Mesh { workers, out: vec![Vec::new(); n], carried: HashMap::new(), cut: Vec::new() };
        for i in 0..n {
            for j in 0..n {
                if i != j {
                    m.workers[i].realm.peer_up(PeerId(j as u32));
                }
            }
        }
        m.pump();
        m.carried.clear();
        m
    }

    /// Runs until no peer message is in flight.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.workers.len() {
                let raw = self.workers[i].raw_drain();
                for t in raw {
                    match t {
                        Transmit::Message { session, bytes } => {
                            let ser = self.workers[i].serializers[&session];
                            self.out[i].push(Out::Msg(session, ser.decode(&bytes).expect("output decodes")));
                        }
                        Transmit::Close { session } => self.out[i].push(Out::Close(session)),
                        Transmit::Operator { .. } => {}
                        Transmit::Peer { peer, msg } => {
                            let j = peer.0 as usize;
                            if self.cut.contains(&(i.min(j), i.max(j))) {
                                continue;
                            }
                            let bytes = msg.encode().expect("peer message encodes");
                            let decoded = PeerMsg::decode(&bytes).expect("peer message decodes");
                            self.carried.entry((i, j)).or_default().push(decoded.clone());
                            self.workers[j].realm.handle_peer(PeerId(i as u32), decoded);
                            moved = true;
                        }
                    }
                }
            }
            if !moved {
                break;
            }
        }
    }

    fn join(&mut self, w: usize, ser: Serializer) -> SessionId {
        self.join_with(w, ser, Dict::new())
    }

    fn join_with(&mut self, w: usize, ser: Serializer, hello: Dict) -> SessionId {
        let h = &mut self.workers[w];
        h.next += 1;
        let sid = SessionId::from_valid(h.next);
        let info = SessionInfo {
            session: sid,
            serializer: ser,
            authid: format!("user-{}", h.next),
            authrole: "anonymous".into(),
            authmethod: "anonymous".into(),
            authprovider: "static".into(),
            transport: Dict::new(),
        };
        h.serializers.insert(sid, ser);
        h.realm.join(info, &hello).expect("join");
        self.pump();
        self.take(w);
        sid
    }

    fn send(&mut self, w: usize, sid: SessionId, msg: Message) {
        self.workers[w].send(sid, msg);
        self.pump();
    }

    fn take(&mut self, w: usize) -> Vec<Out> {
        std::mem::take(&mut self.out[w])
    }

    /// Messages to `sid` on worker `w` since the last take.
    fn to(&mut self, w: usize, sid: SessionId) -> Vec<Message> {
        let out = self.take(w);
        out.into_iter()
            .filter_map(|o| match o {
                Out::Msg(s, m) if s == sid => Some(m),
                _ => None,
            })
            .collect()
    }

    fn subscribe(&mut self, w: usize, sid: SessionId, req: u64, topic: &str, policy: &str) -> u64 {
        let options = dict(vec![("match", s(policy))]);
        self.send(w, sid, Message::Subscribe { request: rid(req), options, topic: topic.into() });
        match &self.to(w, sid)[..] {
            [Message::Subscribed { subscription, .. }] => subscription.get(),
            other => panic!("expected SUBSCRIBED, got {other:?}"),
        }
    }

    fn register(&mut self, w: usize, sid: SessionId, req: u64, procedure: &str, options: Dict) -> u64 {
        self.send(w, sid, Message::Register { request: rid(req), options, procedure: procedure.into() });
        match &self.to(w, sid)[..] {
            [Message::Registered { registration, .. }] => registration.get(),
            other => panic!("expected REGISTERED, got {other:?}"),
        }
    }

    fn call(&mut self, w: usize, sid: SessionId, req: u64, procedure: &str, options: Dict, payload: Payload) {
        self.send(w, sid, Message::Call { request: rid(req), options, procedure: procedure.into(), payload });
    }

    fn meta(&mut self, w: usize, sid: SessionId, req: u64, procedure: &str, a: Vec<Value>) -> Value {
        self.call(w, sid, req, procedure, Dict::new(), args(a));
        match &self.to(w, sid)[..] {
            [Message::Result { payload, .. }] => {
                values(payload).0.and_then(|l| l.into_iter().next()).unwrap_or(Value::Null)
            }
            other => panic!("expected RESULT of {procedure}, got {other:?}"),
        }
    }

    fn publishes(&self, from: usize, to: usize) -> usize {
        self.carried.get(&(from, to)).map_or(0, |v| v.iter().filter(|m| matches!(m, PeerMsg::Publish { .. })).count())
    }
}

fn callee_hello() -> Dict {
    let mut f = Dict::new();
    for k in ["call_canceling", "progressive_call_invocations", "progressive_call_results"] {
        f.insert(k.into(), Value::Bool(true));
    }
    let mut callee = Dict::new();
    callee.insert("features".into(), Value::Dict(f.clone()));
    let mut roles = Dict::new();
    roles.insert("callee".into(), Value::Dict(callee.clone()));
    roles.insert("caller".into(), Value::Dict(callee));
    dict(vec![("roles", Value::Dict(roles))])
}

#[test]
fn events_reach_every_worker_once_with_one_forward_per_peer() {
    let mut m = Mesh::new(3);
    let publisher = m.join(0, Serializer::Json);
    let b1 = m.join(1, Serializer::Cbor);
    let b2 = m.join(1, Serializer::Msgpack);
    let c1 = m.join(2, Serializer::Json);
    let c2 = m.join(2, Serializer::Flatbuffers);
    let exact_b = m.subscribe(1, b1, 1, "com.app.t", "exact");
    assert_eq!(m.subscribe(1, b2, 1, "com.app.t", "exact"), exact_b);
    let prefix_c = m.subscribe(2, c1, 1, "com.app", "prefix");
    let wild_c = m.subscribe(2, c2, 1, "com..t", "wildcard");
    // Same (policy, topic), same id on every worker.
    let a_sub = m.join(0, Serializer::Json);
    assert_eq!(m.subscribe(0, a_sub, 1, "com.app.t", "exact"), exact_b);
    m.carried.clear();

    let payload = args(vec![s("hello"), Value::UInt(7)]);
    m.send(
        0,
        publisher,
        Message::Publish { request: rid(5), options: Dict::new(), topic: "com.app.t".into(), payload },
    );
    // One forward per peer, although each has two subscribers.
    assert_eq!(m.publishes(0, 1), 1);
    assert_eq!(m.publishes(0, 2), 1);
    // Nothing is relayed further.
    assert_eq!(m.publishes(1, 2) + m.publishes(2, 1) + m.publishes(1, 0) + m.publishes(2, 0), 0);
    let local = m.to(0, a_sub);
    assert_eq!(local.len(), 1, "{local:?}");
    let Message::Event { publication, .. } = &local[0] else { panic!("{local:?}") };
    let out_b = m.take(1);
    let out_c = m.take(2);
    for (w, out, expect) in
        [(1, &out_b, vec![(b1, exact_b), (b2, exact_b)]), (2, &out_c, vec![(c1, prefix_c), (c2, wild_c)])]
    {
        assert_eq!(out.len(), 2, "worker {w}: {out:?}");
        for (sid, sub) in expect {
            let ev = out.iter().find_map(|o| match o {
                Out::Msg(x, Message::Event { subscription, publication: p, payload, details }) if *x == sid => {
                    Some((subscription.get(), *p, values(payload).0, details.clone()))
                }
                _ => None,
            });
            let (got_sub, p, a, details) = ev.unwrap_or_else(|| panic!("no EVENT for {sid} on {w}: {out:?}"));
            assert_eq!(got_sub, sub);
            assert_eq!(p, *publication, "the publication id is the same everywhere");
            assert_eq!(a, Some(vec![s("hello"), Value::UInt(7)]));
            if sub != exact_b {
                assert_eq!(details.get("topic"), Some(&s("com.app.t")), "pattern EVENTs name the topic");
            }
        }
    }
}

#[test]
fn no_forward_without_interest_and_interest_follows_unsubscribe() {
    let mut m = Mesh::new(3);
    let publisher = m.join(0, Serializer::Json);
    let b = m.join(1, Serializer::Json);
    let sub = m.subscribe(1, b, 1, "com.x", "exact");
    m.carried.clear();
    m.send(
        0,
        publisher,
        Message::Publish { request: rid(1), options: Dict::new(), topic: "com.y".into(), payload: Payload::EMPTY },
    );
    m.send(
        0,
        publisher,
        Message::Publish { request: rid(2), options: Dict::new(), topic: "com.x".into(), payload: Payload::EMPTY },
    );
    assert_eq!(m.publishes(0, 1), 1, "only com.x goes to worker 1");
    assert_eq!(m.publishes(0, 2), 0, "worker 2 has no subscriber");
    assert_eq!(m.to(1, b).len(), 1);
    m.send(1, b, Message::Unsubscribe { request: rid(3), subscription: wamp_proto::SubscriptionId::from_valid(sub) });
    m.take(1);
    m.carried.clear();
    m.send(
        0,
        publisher,
        Message::Publish { request: rid(4), options: Dict::new(), topic: "com.x".into(), payload: Payload::EMPTY },
    );
    assert_eq!(m.publishes(0, 1), 0, "interest withdrawn");
}

#[test]
fn black_and_whitelists_and_disclosure_apply_across_workers() {
    let mut m = Mesh::new(2);
    let publisher = m.join(0, Serializer::Json);
    let b1 = m.join(1, Serializer::Json);
    let b2 = m.join(1, Serializer::Cbor);
    m.subscribe(1, b1, 1, "com.t", "exact");
    m.subscribe(1, b2, 1, "com.t", "exact");
    let options = dict(vec![("exclude", Value::List(vec![Value::UInt(b1.get())])), ("disclose_me", Value::Bool(true))]);
    m.send(0, publisher, Message::Publish { request: rid(1), options, topic: "com.t".into(), payload: Payload::EMPTY });
    let out = m.take(1);
    let got: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Out::Msg(x, Message::Event { details, .. }) => Some((*x, details.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(got.len(), 1, "b1 is excluded by session id: {out:?}");
    assert_eq!(got[0].0, b2);
    assert_eq!(got[0].1.get("publisher"), Some(&Value::UInt(publisher.get())));
    // eligible_authid picks b1 only.
    let options = dict(vec![("eligible_authid", Value::List(vec![s(&format!("user-{}", b1.get()))]))]);
    m.send(0, publisher, Message::Publish { request: rid(2), options, topic: "com.t".into(), payload: Payload::EMPTY });
    let out = m.take(1);
    let to: Vec<_> = out
        .iter()
        .filter_map(|o| match o {
            Out::Msg(x, Message::Event { .. }) => Some(*x),
            _ => None,
        })
        .collect();
    assert_eq!(to, vec![b1], "{out:?}");
}

#[test]
fn retained_events_reach_every_worker() {
    let mut m = Mesh::new(3);
    let publisher = m.join(0, Serializer::Json);
    let options = dict(vec![("retain", Value::Bool(true))]);
    m.send(
        0,
        publisher,
        Message::Publish { request: rid(1), options, topic: "com.r".into(), payload: args(vec![s("kept")]) },
    );
    let late = m.join(2, Serializer::Msgpack);
    let options = dict(vec![("get_retained", Value::Bool(true))]);
    m.send(2, late, Message::Subscribe { request: rid(1), options, topic: "com.r".into() });
    let msgs = m.to(2, late);
    assert!(
        matches!(&msgs[..], [Message::Subscribed { .. }, Message::Event { details, payload, .. }]
        if details.get("retained") == Some(&Value::Bool(true)) && values(payload).0 == Some(vec![s("kept")])),
        "{msgs:?}"
    );
}

#[test]
fn calls_reach_callees_on_other_workers_with_progress_and_errors() {
    let mut m = Mesh::new(3);
    let caller = m.join_with(0, Serializer::Json, callee_hello());
    let callee = m.join_with(1, Serializer::Cbor, callee_hello());
    let reg = m.register(1, callee, 1, "com.add", Dict::new());
    // The same id on the caller's worker (registration meta API).
    let other = m.join(0, Serializer::Json);
    assert_eq!(m.meta(0, other, 1, "wamp.registration.lookup", vec![s("com.add")]), Value::UInt(reg));

    let options = dict(vec![("receive_progress", Value::Bool(true)), ("disclose_me", Value::Bool(true))]);
    m.call(0, caller, 7, "com.add", options, args(vec![Value::UInt(2), Value::UInt(3)]));
    let inv = m.to(1, callee);
    let [Message::Invocation { request: inv_id, registration, details, payload }] = &inv[..] else { panic!("{inv:?}") };
    assert_eq!(registration.get(), reg);
    assert_eq!(details.get("caller"), Some(&Value::UInt(caller.get())));
    assert_eq!(details.get("receive_progress"), Some(&Value::Bool(true)));
    assert_eq!(values(payload).0, Some(vec![Value::UInt(2), Value::UInt(3)]));
    assert!(
        m.carried.get(&(0, 2)).is_none_or(|v| !v.iter().any(|x| matches!(x, PeerMsg::ToSession { .. }))),
        "the call goes only to the callee's worker"
    );
    let inv_id = *inv_id;
    m.send(
        1,
        callee,
        Message::Yield {
            request: inv_id,
            options: dict(vec![("progress", Value::Bool(true))]),
            payload: args(vec![Value::UInt(1)]),
        },
    );
    m.send(1, callee, Message::Yield { request: inv_id, options: Dict::new(), payload: args(vec![Value::UInt(5)]) });
    let res = m.to(0, caller);
    assert!(
        matches!(&res[..], [Message::Result { request: r1, details: d1, .. }, Message::Result { request: r2, details: d2, payload }]
        if *r1 == rid(7) && *r2 == rid(7) && d1.get("progress") == Some(&Value::Bool(true)) && d2.get("progress").is_none()
           && values(payload).0 == Some(vec![Value::UInt(5)])),
        "{res:?}"
    );

    // An application error comes back as such.
    m.call(0, caller, 8, "com.add", Dict::new(), Payload::EMPTY);
    let inv = m.to(1, callee);
    let [Message::Invocation { request, .. }] = &inv[..] else { panic!("{inv:?}") };
    m.send(
        1,
        callee,
        Message::Error {
            request_type: code::INVOCATION,
            request: *request,
            details: Dict::new(),
            error: "com.err.bad".into(),
            payload: args(vec![s("no")]),
        },
    );
    let res = m.to(0, caller);
    assert!(
        matches!(&res[..], [Message::Error { request_type: code::CALL, request, error, .. }] if *request == rid(8) && error == "com.err.bad"),
        "{res:?}"
    );
}

#[test]
fn shared_registration_policy_spans_the_cluster() {
    let mut m = Mesh::new(3);
    let rr = dict(vec![("invoke", s("roundrobin"))]);
    let a = m.join(0, Serializer::Json);
    let b = m.join(1, Serializer::Json);
    let ra = m.register(0, a, 1, "com.rr", rr.clone());
    let rb = m.register(1, b, 1, "com.rr", rr);
    assert_eq!(ra, rb, "one registration, same id on both workers");
    let caller = m.join(2, Serializer::Json);
    let mut hits = [0, 0];
    for i in 0..6 {
        m.call(2, caller, 10 + i, "com.rr", Dict::new(), Payload::EMPTY);
        for (w, sid) in [(0usize, a), (1, b)] {
            for msg in m.to(w, sid) {
                if let Message::Invocation { request, .. } = msg {
                    hits[w] += 1;
                    m.send(w, sid, Message::Yield { request, options: Dict::new(), payload: Payload::EMPTY });
                }
            }
        }
        assert!(matches!(&m.to(2, caller)[..], [Message::Result { .. }]));
    }
    assert_eq!(hits, [3, 3], "roundrobin over the callees of both workers");
    // A single registration elsewhere in the cluster is refused here.
    let c = m.join(2, Serializer::Json);
    m.register(0, a, 2, "com.single", Dict::new());
    m.send(2, c, Message::Register { request: rid(3), options: Dict::new(), procedure: "com.single".into() });
    let r = m.to(2, c);
    assert!(matches!(&r[..], [Message::Error { error, .. }] if error == uris::PROCEDURE_ALREADY_EXISTS), "{r:?}");
}

#[test]
fn cancel_and_timeout_across_workers() {
    let mut m = Mesh::new(2);
    let caller = m.join(0, Serializer::Json);
    let callee = m.join_with(1, Serializer::Json, callee_hello());
    m.register(1, callee, 1, "com.slow", Dict::new());
    m.call(0, caller, 1, "com.slow", Dict::new(), Payload::EMPTY);
    let inv = m.to(1, callee);
    let [Message::Invocation { request: inv1, .. }] = &inv[..] else { panic!("{inv:?}") };
    let inv1 = *inv1;
    m.send(0, caller, Message::Cancel { request: rid(1), options: dict(vec![("mode", s("killnowait"))]) });
    let r = m.to(0, caller);
    assert!(matches!(&r[..], [Message::Error { error, .. }] if error == uris::CANCELED), "{r:?}");
    let i = m.to(1, callee);
    assert!(matches!(&i[..], [Message::Interrupt { request, .. }] if *request == inv1), "{i:?}");
    // A late reply is dropped on the callee's worker.
    m.send(1, callee, Message::Yield { request: inv1, options: Dict::new(), payload: Payload::EMPTY });
    assert!(m.to(0, caller).is_empty());

    // Timeout: enforced by the caller's worker, the callee is interrupted.
    let t0 = std::time::Instant::now();
    m.workers[0].realm.set_now(t0);
    m.call(0, caller, 2, "com.slow", dict(vec![("timeout", Value::UInt(100))]), Payload::EMPTY);
    let inv = m.to(1, callee);
    assert!(matches!(&inv[..], [Message::Invocation { .. }]), "{inv:?}");
    m.workers[0].realm.handle_timeout(t0 + std::time::Duration::from_millis(150));
    m.pump();
    let r = m.to(0, caller);
    assert!(matches!(&r[..], [Message::Error { error, .. }] if error == uris::TIMEOUT), "{r:?}");
    let i = m.to(1, callee);
    assert!(matches!(&i[..], [Message::Interrupt { .. }]), "{i:?}");
}

#[test]
fn session_meta_api_is_cluster_wide_and_kill_reaches_the_owner() {
    let mut m = Mesh::new(3);
    let a = m.join(0, Serializer::Json);
    let b = m.join(1, Serializer::Json);
    let _c = m.join(2, Serializer::Json);
    assert_eq!(m.meta(0, a, 1, "wamp.session.count", vec![]), Value::UInt(3));
    let got = m.meta(0, a, 2, "wamp.session.get", vec![Value::UInt(b.get())]);
    assert_eq!(got.as_dict().and_then(|d| d.get("authid")), Some(&s(&format!("user-{}", b.get()))));
    // on_join of a session on another worker is seen here (published by its worker).
    m.subscribe(0, a, 3, "wamp.session.on_join", "exact");
    let d = m.join(2, Serializer::Json);
    let ev = m.to(0, a);
    assert!(matches!(&ev[..], [Message::Event { .. }]), "exactly one on_join: {ev:?}");
    // kill from worker 0 closes the session on worker 1.
    m.meta(0, a, 4, "wamp.session.kill", vec![Value::UInt(b.get())]);
    let bye = m.to(1, b);
    assert!(matches!(&bye[..], [Message::Goodbye { reason, .. }] if reason == uris::CLOSE_KILLED), "{bye:?}");
    m.send(1, b, Message::Goodbye { details: Dict::new(), reason: uris::GOODBYE_AND_OUT.into() });
    m.take(1);
    assert_eq!(m.meta(0, a, 5, "wamp.session.count", vec![]), Value::UInt(3), "a, c, d");
    assert_eq!(m.meta(2, d, 6, "wamp.session.count", vec![]), Value::UInt(3));
    // kill_by_authid counts sessions on every worker.
    let n = m.meta(0, a, 7, "wamp.session.kill_by_authid", vec![s(&format!("user-{}", d.get()))]);
    assert_eq!(n, Value::UInt(1));
}

#[test]
fn a_lost_peer_fails_calls_in_flight_and_its_state_disappears_then_resyncs() {
    let mut m = Mesh::new(2);
    let caller = m.join(0, Serializer::Json);
    let callee = m.join_with(1, Serializer::Json, callee_hello());
    m.register(1, callee, 1, "com.p", Dict::new());
    let sub = m.join(1, Serializer::Json);
    m.subscribe(1, sub, 1, "com.ev", "exact");
    m.call(0, caller, 1, "com.p", Dict::new(), Payload::EMPTY);
    assert_eq!(m.to(1, callee).len(), 1);
    assert_eq!(m.workers[0].realm.ghost_count(), 2);
    // The link dies.
    m.cut.push((0, 1));
    m.workers[0].realm.peer_down(PeerId(1));
    m.workers[1].realm.peer_down(PeerId(0));
    m.pump();
    let r = m.to(0, caller);
    assert!(matches!(&r[..], [Message::Error { error, .. }] if error == uris::CANCELED), "no caller hangs: {r:?}");
    let i = m.to(1, callee);
    assert!(matches!(&i[..], [Message::Interrupt { .. }]), "the callee is told: {i:?}");
    assert_eq!(m.workers[0].realm.ghost_count(), 0);
    m.call(0, caller, 2, "com.p", Dict::new(), Payload::EMPTY);
    let r = m.to(0, caller);
    assert!(matches!(&r[..], [Message::Error { error, .. }] if error == uris::NO_SUCH_PROCEDURE), "{r:?}");
    // The link heals: state converges without restarting anyone.
    m.cut.clear();
    m.workers[0].realm.peer_up(PeerId(1));
    m.workers[1].realm.peer_up(PeerId(0));
    m.pump();
    assert_eq!(m.workers[0].realm.ghost_count(), 2);
    m.call(0, caller, 3, "com.p", Dict::new(), Payload::EMPTY);
    assert!(matches!(&m.to(1, callee)[..], [Message::Invocation { .. }]));
    m.send(
        0,
        caller,
        Message::Publish { request: rid(4), options: Dict::new(), topic: "com.ev".into(), payload: Payload::EMPTY },
    );
    assert!(matches!(&m.to(1, sub)[..], [Message::Event { .. }]));
}

#[test]
fn peer_codec_roundtrips_and_rejects_garbage() {
    let msgs = vec![
        PeerMsg::Synced,
        PeerMsg::SessionLeave(SessionId::from_valid(9)),
        PeerMsg::Subscribe { session: SessionId::from_valid(3), policy: MatchPolicy::Wildcard, topic: "a..c".into() },
        PeerMsg::Register {
            session: SessionId::from_valid(3),
            policy: MatchPolicy::Prefix,
            procedure: "a.b".into(),
            invoke: "roundrobin".into(),
        },
        PeerMsg::SessionJoin(RemoteSession {
            session: SessionId::from_valid(4),
            authid: "joe".into(),
            authrole: "user".into(),
            authmethod: "ticket".into(),
            authprovider: "static".into(),
            transport: dict(vec![("peer", s("tcp4:1.2.3.4:5"))]),
            serializer: Serializer::Cbor,
            roles: Dict::new(),
        }),
    ];
    for msg in msgs {
        let b = msg.encode().expect("encode");
        assert_eq!(PeerMsg::decode(&b).expect("decode"), msg);
    }
    for garbage in [&b""[..], &[1u8], &[200, 2, 0], &[9, 2, 0, 0], &[1, 99, 1, 2, 3]] {
        assert!(PeerMsg::decode(&bytes::Bytes::copy_from_slice(garbage)).is_err(), "{garbage:?}");
    }
}

#[test]
fn event_history_is_kept_on_every_worker() {
    let mut m = Mesh::new(3);
    for w in &mut m.workers {
        w.realm.broker.configure(BrokerSpec {
            history: vec![HistorySpec { uri: "com.h".into(), match_policy: MatchPolicy::Exact, limit: 10 }],
            ..BrokerSpec::default()
        });
    }
    let publisher = m.join(0, Serializer::Json);
    for i in 0..3u64 {
        m.send(
            0,
            publisher,
            Message::Publish {
                request: rid(i + 1),
                options: Dict::new(),
                topic: "com.h".into(),
                payload: args(vec![Value::UInt(i)]),
            },
        );
    }
    // No subscriber anywhere, yet every worker's history has every event.
    for w in 0..3 {
        let reader = m.join(w, Serializer::Json);
        let sub = m.meta(w, reader, 1, "wamp.subscription.lookup", vec![s("com.h")]);
        let events = m.meta(w, reader, 2, "wamp.subscription.get_events", vec![sub]);
        let Value::List(events) = events else { panic!("worker {w}: {events:?}") };
        assert_eq!(events.len(), 3, "worker {w}: {events:?}");
    }
    assert_eq!(m.publishes(0, 1), 3);
    assert_eq!(m.publishes(0, 2), 3);
}

#[test]
fn subscription_create_and_delete_meta_events_fire_once_per_cluster() {
    let mut m = Mesh::new(3);
    let watcher = m.join(0, Serializer::Json);
    m.subscribe(0, watcher, 1, "wamp.subscription.on_create", "exact");
    m.subscribe(0, watcher, 2, "wamp.subscription.on_delete", "exact");
    let a = m.join(1, Serializer::Json);
    let b = m.join(2, Serializer::Json);
    let sa = m.subscribe(1, a, 1, "com.t", "exact");
    let sb = m.subscribe(2, b, 1, "com.t", "exact");
    assert_eq!(sa, sb);
    m.send(
        1,
        a,
        Message::Unsubscribe { request: rid(2), subscription: wamp_proto::SubscriptionId::new(sa).expect("id") },
    );
    m.send(
        2,
        b,
        Message::Unsubscribe { request: rid(2), subscription: wamp_proto::SubscriptionId::new(sb).expect("id") },
    );
    let events: Vec<u64> = m
        .to(0, watcher)
        .into_iter()
        .filter_map(|msg| match msg {
            Message::Event { subscription, .. } => Some(subscription.get()),
            _ => None,
        })
        .collect();
    // One on_create (first subscriber in the cluster), one on_delete (last).
    assert_eq!(events.len(), 2, "{events:?}");
    assert_ne!(events[0], events[1], "one of each: {events:?}");
}

fn revocable_callee_hello() -> Dict {
    let mut f = Dict::new();
    f.insert("registration_revocation".into(), Value::Bool(true));
    let mut callee = Dict::new();
    callee.insert("features".into(), Value::Dict(f));
    let mut roles = Dict::new();
    roles.insert("callee".into(), Value::Dict(callee));
    roles.insert("caller".into(), Value::Dict(Dict::new()));
    dict(vec![("roles", Value::Dict(roles))])
}

/// Cuts every link, runs `f`, then heals them all (both sides resync).
fn partitioned(m: &mut Mesh, f: impl FnOnce(&mut Mesh)) {
    let n = m.workers.len();
    for i in 0..n {
        for j in 0..n {
            if i < j {
                m.cut.push((i, j));
            }
            if i != j {
                m.workers[i].realm.peer_down(PeerId(j as u32));
            }
        }
    }
    m.pump();
    f(m);
    m.cut.clear();
    for i in 0..n {
        for j in 0..n {
            if i != j {
                m.workers[i].realm.peer_up(PeerId(j as u32));
            }
        }
    }
    m.pump();
}

/// Two workers accept `single` registrations of one procedure before they
/// hear of each other (here: during a partition). Every worker settles it
/// the same way: the callee with the lower session id keeps it, the other
/// is revoked (UNREGISTERED with a reason), and calls from anywhere reach
/// the one that is left.
#[test]
fn clashing_single_registrations_settle_on_one_callee_everywhere() {
    let mut m = Mesh::new(3);
    let caller0 = m.join(0, Serializer::Json);
    let caller2 = m.join(2, Serializer::Msgpack);
    let (mut a, mut b) = (SessionId::from_valid(1), SessionId::from_valid(1));
    partitioned(&mut m, |m| {
        a = m.join_with(1, Serializer::Json, revocable_callee_hello());
        b = m.join_with(2, Serializer::Cbor, revocable_callee_hello());
        m.register(1, a, 1, "com.single", Dict::new());
        m.register(2, b, 1, "com.single", Dict::new());
    });
    assert!(a < b);
    let revoked = m.to(2, b);
    assert!(
        matches!(&revoked[..], [Message::Unregistered { request, details: Some(d) }]
            if request.get() == 0 && d.get("reason") == Some(&s(uris::PROCEDURE_ALREADY_EXISTS))),
        "the loser is told: {revoked:?}"
    );
    assert!(m.to(1, a).is_empty(), "the winner keeps it");
    for (w, caller) in [(0, caller0), (2, caller2)] {
        m.call(w, caller, 10, "com.single", Dict::new(), Payload::EMPTY);
        assert!(matches!(&m.to(1, a)[..], [Message::Invocation { .. }]), "a call from worker {w} reaches the winner");
        assert!(m.to(2, b).is_empty());
        let id = m.meta(w, caller, 11, "wamp.registration.lookup", vec![s("com.single")]);
        let callees = m.meta(w, caller, 12, "wamp.registration.list_callees", vec![id]);
        assert_eq!(callees, Value::List(vec![Value::UInt(a.get())]), "worker {w}");
    }
    // The loser may register again: the procedure is taken.
    m.send(2, b, Message::Register { request: rid(2), options: Dict::new(), procedure: "com.single".into() });
    let r = m.to(2, b);
    assert!(matches!(&r[..], [Message::Error { error, .. }] if error == uris::PROCEDURE_ALREADY_EXISTS), "{r:?}");
}

/// The same for a shared registration whose policies clash: the side with
/// the lowest callee session id keeps its policy and callees.
#[test]
fn clashing_invocation_policies_settle_on_one_side() {
    let mut m = Mesh::new(2);
    let caller = m.join(0, Serializer::Json);
    let (mut a1, mut a2, mut b) = (SessionId::from_valid(1), SessionId::from_valid(1), SessionId::from_valid(1));
    partitioned(&mut m, |m| {
        a1 = m.join_with(0, Serializer::Json, revocable_callee_hello());
        a2 = m.join_with(0, Serializer::Json, revocable_callee_hello());
        b = m.join_with(1, Serializer::Json, revocable_callee_hello());
        let rr = dict(vec![("invoke", s("roundrobin"))]);
        m.register(0, a1, 1, "com.shared", rr.clone());
        m.register(0, a2, 1, "com.shared", rr);
        m.register(1, b, 1, "com.shared", dict(vec![("invoke", s("random"))]));
    });
    assert!(a1 < b && a2 < b);
    assert!(matches!(&m.to(1, b)[..], [Message::Unregistered { .. }]));
    for i in 0..4u64 {
        m.call(0, caller, 20 + i, "com.shared", Dict::new(), Payload::EMPTY);
    }
    let invocations = m
        .take(0)
        .into_iter()
        .filter(|o| matches!(o, Out::Msg(to, Message::Invocation { .. }) if *to == a1 || *to == a2))
        .count();
    assert_eq!(invocations, 4);
    assert!(m.to(1, b).is_empty());
    let id = m.meta(0, caller, 30, "wamp.registration.lookup", vec![s("com.shared")]);
    let reg = m.meta(0, caller, 31, "wamp.registration.get", vec![id]);
    assert_eq!(reg.as_dict().and_then(|d| d.get("invoke")), Some(&s("roundrobin")), "{reg:?}");
}
