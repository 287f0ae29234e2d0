//! Dealer tests for the Advanced Profile RPC features (see the `dealer`
//! module docs), driven in memory through the harness of `tests.rs`. Time
//! is driven explicitly with `set_now`/`handle_timeout`; nothing sleeps.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use wamp_proto::{code, Dict, Message, Payload, RegistrationId, RequestId, SessionId, Value};

use super::tests::{args, dict, expect_abort_and_close, expect_error, rid, values, Harness, Out};
use super::*;

/// `HELLO.Details` announcing `callee` and `caller` role features.
fn hello(callee: &[&str], caller: &[&str]) -> Dict {
    let feats = |names: &[&str]| -> Value {
        let f: Dict = names.iter().map(|n| ((*n).to_owned(), Value::Bool(true))).collect();
        Value::Dict(dict(vec![("features", Value::Dict(f))]))
    };
    dict(vec![("roles", Value::Dict(dict(vec![("callee", feats(callee)), ("caller", feats(caller))])))])
}

const CANCELING: &[&str] = &["call_canceling"];
const STREAMING: &[&str] = &["call_canceling", "progressive_call_invocations", "progressive_call_results"];

impl Harness {
    /// Joins a session that sent `hello_details`.
    fn join_with(&mut self, ser: Serializer, hello_details: Dict) -> SessionId {
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
        self.serializers.insert(sid, ser);
        self.realm.join(info, &hello_details).expect("join");
        assert!(matches!(self.one(sid), Message::Welcome { .. }));
        sid
    }

    fn register_opts(&mut self, sid: SessionId, req: u64, procedure: &str, options: Dict) -> Message {
        self.send(sid, Message::Register { request: rid(req), options, procedure: procedure.into() });
        self.one(sid)
    }

    fn register_ok(&mut self, sid: SessionId, req: u64, procedure: &str, options: Dict) -> RegistrationId {
        match self.register_opts(sid, req, procedure, options) {
            Message::Registered { request, registration } if request == rid(req) => registration,
            other => panic!("expected REGISTERED, got {other:?}"),
        }
    }

    fn call_opts(&mut self, sid: SessionId, req: u64, procedure: &str, options: Dict, payload: Payload) {
        self.send(sid, Message::Call { request: rid(req), options, procedure: procedure.into(), payload });
    }

    /// Expects exactly one INVOCATION, to `callee`.
    fn invocation(&mut self, callee: SessionId) -> (RequestId, RegistrationId, Dict, Payload) {
        match self.one(callee) {
            Message::Invocation { request, registration, details, payload } => {
                (request, registration, details, payload)
            }
            other => panic!("expected INVOCATION, got {other:?}"),
        }
    }

    /// Calls `procedure` and returns the callee the INVOCATION went to.
    fn invoked_callee(&mut self, caller: SessionId, req: u64, procedure: &str, options: Dict) -> SessionId {
        self.call_opts(caller, req, procedure, options, Payload::EMPTY);
        match &self.drain()[..] {
            [Out::Msg(s, Message::Invocation { .. })] => *s,
            other => panic!("expected one INVOCATION, got {other:?}"),
        }
    }

    fn yield_(&mut self, callee: SessionId, inv: RequestId, options: Dict, payload: Payload) {
        self.send(callee, Message::Yield { request: inv, options, payload });
    }
}

fn opt(k: &str, v: Value) -> Dict {
    dict(vec![(k, v)])
}

fn s(v: &str) -> Value {
    Value::Str(v.into())
}

fn expect_result(msg: Message, req: u64, progress: bool) -> Payload {
    match msg {
        Message::Result { request, details, payload } => {
            assert_eq!(request, rid(req));
            assert_eq!(details.get("progress").and_then(Value::as_bool) == Some(true), progress, "{details:?}");
            payload
        }
        other => panic!("expected RESULT, got {other:?}"),
    }
}

fn expect_interrupt(msg: Message, inv: RequestId, mode: &str) {
    match msg {
        Message::Interrupt { request, options } => {
            assert_eq!(request, inv);
            assert_eq!(options.get("mode").and_then(Value::as_str), Some(mode), "{options:?}");
        }
        other => panic!("expected INTERRUPT, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// progressive call results
// ---------------------------------------------------------------------------

#[test]
fn progressive_call_results() {
    let mut h = Harness::new();
    let callee = h.join_with(Serializer::Cbor, hello(STREAMING, &[]));
    let caller = h.join(Serializer::Json, "anonymous");
    h.register(callee, 1, "com.stream");
    h.call_opts(caller, 7, "com.stream", opt("receive_progress", Value::Bool(true)), args(vec![Value::UInt(3)]));
    let (inv, _, details, _) = h.invocation(callee);
    assert_eq!(details.get("receive_progress"), Some(&Value::Bool(true)));
    for i in 0..3u64 {
        h.yield_(callee, inv, opt("progress", Value::Bool(true)), args(vec![Value::UInt(i)]));
        let p = expect_result(h.one(caller), 7, true);
        assert_eq!(values(&p).0, Some(vec![Value::UInt(i)]));
    }
    h.yield_(callee, inv, Dict::new(), args(vec![s("done")]));
    assert_eq!(values(&expect_result(h.one(caller), 7, false)).0, Some(vec![s("done")]));
    // The call is over: a further YIELD is stale, not a violation.
    h.yield_(callee, inv, opt("progress", Value::Bool(true)), Payload::EMPTY);
    assert!(h.drain().is_empty());
    assert_eq!(h.realm.stats().stale_replies, 1);

    // A caller that did not ask for progress gets only the final result.
    h.call(caller, 8, "com.stream", Payload::EMPTY);
    let (inv, _, details, _) = h.invocation(callee);
    assert!(!details.contains_key("receive_progress"));
    h.yield_(callee, inv, opt("progress", Value::Bool(true)), args(vec![s("partial")]));
    assert!(h.drain().is_empty(), "unrequested progressive result dropped");
    h.yield_(callee, inv, Dict::new(), args(vec![s("final")]));
    assert_eq!(values(&expect_result(h.one(caller), 8, false)).0, Some(vec![s("final")]));
}

// ---------------------------------------------------------------------------
// progressive call invocations
// ---------------------------------------------------------------------------

#[test]
fn progressive_call_invocations_stream_to_one_callee() {
    let mut h = Harness::new();
    // Two callees on a round-robin registration: the stream must stick.
    let c1 = h.join_with(Serializer::Msgpack, hello(STREAMING, &[]));
    let c2 = h.join_with(Serializer::Json, hello(STREAMING, &[]));
    let caller = h.join_with(Serializer::Json, hello(&[], &["progressive_call_invocations"]));
    let rr = opt("invoke", s("roundrobin"));
    let reg = h.register_ok(c1, 1, "com.upload", rr.clone());
    assert_eq!(h.register_ok(c2, 1, "com.upload", rr), reg);

    let first = dict(vec![
        ("progress", Value::Bool(true)),
        ("disclose_me", Value::Bool(true)),
        ("receive_progress", Value::Bool(true)),
    ]);
    h.call_opts(caller, 5, "com.upload", first, args(vec![Value::UInt(0)]));
    let (inv, r, details, p) = h.invocation(c1);
    assert_eq!(r, reg);
    assert_eq!(details.get("progress"), Some(&Value::Bool(true)));
    assert_eq!(details.get("caller").and_then(Value::as_u64), Some(caller.get()));
    assert_eq!(values(&p).0, Some(vec![Value::UInt(0)]));
    // Continuations: options other than progress are ignored (frozen).
    for i in 1..=2u64 {
        h.call_opts(caller, 5, "com.upload", opt("progress", Value::Bool(true)), args(vec![Value::UInt(i)]));
        let (inv_i, _, details, p) = h.invocation(c1);
        assert_eq!(inv_i, inv, "same invocation id for every chunk");
        assert_eq!(details.get("progress"), Some(&Value::Bool(true)));
        assert_eq!(details.get("caller").and_then(Value::as_u64), Some(caller.get()), "disclosure frozen");
        assert_eq!(values(&p).0, Some(vec![Value::UInt(i)]));
        // Progressive results interleave.
        h.yield_(c1, inv, opt("progress", Value::Bool(true)), args(vec![Value::UInt(10 + i)]));
        assert_eq!(values(&expect_result(h.one(caller), 5, true)).0, Some(vec![Value::UInt(10 + i)]));
    }
    // The final chunk: no progress.
    h.call_opts(caller, 5, "com.upload", Dict::new(), args(vec![s("end")]));
    let (inv_f, _, details, _) = h.invocation(c1);
    assert_eq!(inv_f, inv);
    assert!(!details.contains_key("progress"));
    assert!(details.contains_key("receive_progress"));
    h.yield_(c1, inv, Dict::new(), args(vec![s("ok")]));
    expect_result(h.one(caller), 5, false);
    // A new call goes round-robin to c2.
    h.call(caller, 6, "com.upload", Payload::EMPTY);
    h.invocation(c2);
    assert_eq!(h.realm.stats().calls, 2, "continuations are not new calls");
}

#[test]
fn progressive_call_invocations_refusals_and_races() {
    let mut h = Harness::new();
    let plain_callee = h.join_with(Serializer::Json, hello(CANCELING, &[]));
    let streaming_callee = h.join_with(Serializer::Json, hello(STREAMING, &[]));
    let caller = h.join_with(Serializer::Cbor, hello(&[], &["progressive_call_invocations"]));
    h.register(plain_callee, 1, "com.plain");
    h.register(streaming_callee, 1, "com.stream");
    let progress = || opt("progress", Value::Bool(true));

    // Callee without the feature: application error.
    h.call_opts(caller, 1, "com.plain", progress(), Payload::EMPTY);
    expect_error(&h.one(caller), code::CALL, 1, uris::FEATURE_NOT_SUPPORTED);

    // The callee ends the stream early with ERROR; late continuations are
    // discarded silently instead of starting new calls.
    h.call_opts(caller, 2, "com.stream", progress(), Payload::EMPTY);
    let (inv, ..) = h.invocation(streaming_callee);
    h.send(
        streaming_callee,
        Message::Error {
            request_type: code::INVOCATION,
            request: inv,
            details: Dict::new(),
            error: "com.app.full".into(),
            payload: Payload::EMPTY,
        },
    );
    expect_error(&h.one(caller), code::CALL, 2, "com.app.full");
    h.call_opts(caller, 2, "com.stream", progress(), Payload::EMPTY);
    h.call_opts(caller, 2, "com.stream", Dict::new(), Payload::EMPTY);
    assert!(h.drain().is_empty(), "continuations of an ended stream are dropped");

    // A continuation naming another procedure is a violation.
    h.call_opts(caller, 3, "com.stream", progress(), Payload::EMPTY);
    h.invocation(streaming_callee);
    h.call_opts(caller, 3, "com.plain", progress(), Payload::EMPTY);
    // The aborted caller's open stream is interrupted at the callee.
    interrupted_then_aborted(&h.drain(), streaming_callee, rid(2), caller);

    // Reusing the id of a call in flight that is not a stream: violation.
    let caller2 = h.join(Serializer::Json, "anonymous");
    h.call(caller2, 4, "com.plain", Payload::EMPTY);
    h.invocation(plain_callee);
    h.call(caller2, 4, "com.plain", Payload::EMPTY);
    interrupted_then_aborted(&h.drain(), plain_callee, rid(1), caller2);

    // A caller that did not announce the feature: violation (spec).
    let caller3 = h.join(Serializer::Json, "anonymous");
    h.call_opts(caller3, 1, "com.stream", progress(), Payload::EMPTY);
    expect_abort_and_close(&h.drain(), caller3, uris::PROTOCOL_VIOLATION);
    assert_eq!(h.realm.stats().protocol_violations, 3);
}

/// `[INTERRUPT killnowait to callee, ABORT protocol_violation + Close to offender]`.
fn interrupted_then_aborted(out: &[Out], callee: SessionId, inv: RequestId, offender: SessionId) {
    match out.first() {
        Some(Out::Msg(s, m)) if *s == callee => expect_interrupt(m.clone(), inv, "killnowait"),
        other => panic!("expected INTERRUPT to {callee}, got {other:?} in {out:?}"),
    }
    expect_abort_and_close(&out[1..], offender, uris::PROTOCOL_VIOLATION);
}

// ---------------------------------------------------------------------------
// call canceling
// ---------------------------------------------------------------------------

/// A realm with a canceling-capable callee `c` registered on "p", a caller
/// `a` with a call (request 9) pending; returns (h, a, c, invocation id).
fn pending_call(callee_features: &[&str]) -> (Harness, SessionId, SessionId, RequestId) {
    let mut h = Harness::new();
    let c = h.join_with(Serializer::Msgpack, hello(callee_features, &[]));
    let a = h.join(Serializer::Json, "anonymous");
    h.register(c, 1, "p");
    h.call(a, 9, "p", Payload::EMPTY);
    let (inv, ..) = h.invocation(c);
    (h, a, c, inv)
}

fn cancel(h: &mut Harness, a: SessionId, mode: Option<&str>) {
    let options = mode.map(|m| opt("mode", s(m))).unwrap_or_default();
    h.send(a, Message::Cancel { request: rid(9), options });
}

#[test]
fn cancel_skip() {
    let (mut h, a, c, inv) = pending_call(CANCELING);
    cancel(&mut h, a, Some("skip"));
    // No INTERRUPT, the caller is answered at once.
    expect_error(&h.one(a), code::CALL, 9, uris::CANCELED);
    h.yield_(c, inv, Dict::new(), Payload::EMPTY);
    assert!(h.drain().is_empty(), "late YIELD dropped");
    assert_eq!(h.realm.stats().calls_canceled, 1);
    assert_eq!(h.realm.stats().protocol_violations, 0);
    // A second CANCEL for the finished call is ignored.
    cancel(&mut h, a, Some("skip"));
    assert!(h.drain().is_empty());
}

#[test]
fn cancel_killnowait_is_the_default() {
    for mode in [Some("killnowait"), None] {
        let (mut h, a, c, inv) = pending_call(CANCELING);
        cancel(&mut h, a, mode);
        let out = h.drain();
        assert_eq!(out.len(), 2, "{out:?}");
        for o in out {
            match o {
                Out::Msg(s, m) if s == c => expect_interrupt(m, inv, "killnowait"),
                Out::Msg(s, m) if s == a => expect_error(&m, code::CALL, 9, uris::CANCELED),
                other => panic!("{other:?}"),
            }
        }
        // The callee's answer to the interrupt is dropped.
        h.send(
            c,
            Message::Error {
                request_type: code::INVOCATION,
                request: inv,
                details: Dict::new(),
                error: uris::CANCELED.into(),
                payload: Payload::EMPTY,
            },
        );
        assert!(h.drain().is_empty());
    }
}

#[test]
fn cancel_kill_waits_for_the_callee() {
    let (mut h, a, c, inv) = pending_call(CANCELING);
    cancel(&mut h, a, Some("kill"));
    expect_interrupt(h.one(c), inv, "kill");
    // Repeated kill: nothing more.
    cancel(&mut h, a, Some("kill"));
    assert!(h.drain().is_empty());
    // Progressive results after the kill are not passed on; the callee's
    // final ERROR is.
    h.send(
        c,
        Message::Error {
            request_type: code::INVOCATION,
            request: inv,
            details: Dict::new(),
            error: uris::CANCELED.into(),
            payload: args(vec![s("interrupted")]),
        },
    );
    expect_error(&h.one(a), code::CALL, 9, uris::CANCELED);

    // kill, then the callee finishes first: the caller gets the RESULT.
    let (mut h, a, c, inv) = pending_call(CANCELING);
    cancel(&mut h, a, Some("kill"));
    expect_interrupt(h.one(c), inv, "kill");
    h.yield_(c, inv, Dict::new(), args(vec![s("finished anyway")]));
    assert_eq!(values(&expect_result(h.one(a), 9, false)).0, Some(vec![s("finished anyway")]));

    // kill escalated to skip: answered now, no second INTERRUPT.
    let (mut h, a, c, inv) = pending_call(CANCELING);
    cancel(&mut h, a, Some("kill"));
    expect_interrupt(h.one(c), inv, "kill");
    cancel(&mut h, a, Some("killnowait"));
    expect_error(&h.one(a), code::CALL, 9, uris::CANCELED);
}

#[test]
fn cancel_kill_of_a_stuck_callee_ends_after_the_grace_period() {
    let t0 = Instant::now();
    let mut h = Harness::new();
    h.realm.set_dealer_config(DealerConfig { kill_grace: Duration::from_secs(2), ..DealerConfig::default() });
    h.realm.set_now(t0);
    let c = h.join_with(Serializer::Cbor, hello(CANCELING, &[]));
    let a = h.join(Serializer::Json, "anonymous");
    h.register(c, 1, "p");
    h.call(a, 9, "p", Payload::EMPTY);
    let (inv, ..) = h.invocation(c);
    assert_eq!(h.realm.poll_timeout(), None);
    h.realm.set_now(t0 + Duration::from_secs(1));
    cancel(&mut h, a, Some("kill"));
    expect_interrupt(h.one(c), inv, "kill");
    assert_eq!(h.realm.poll_timeout(), Some(t0 + Duration::from_secs(3)));
    h.realm.handle_timeout(t0 + Duration::from_millis(2999));
    assert!(h.drain().is_empty());
    h.realm.handle_timeout(t0 + Duration::from_secs(3));
    expect_error(&h.one(a), code::CALL, 9, uris::CANCELED);
    assert_eq!(h.realm.poll_timeout(), None);
}

#[test]
fn cancel_falls_back_to_skip_without_callee_support() {
    for mode in ["kill", "killnowait"] {
        let (mut h, a, c, inv) = pending_call(&[]);
        cancel(&mut h, a, Some(mode));
        // No INTERRUPT to a callee that cannot handle it.
        expect_error(&h.one(a), code::CALL, 9, uris::CANCELED);
        h.yield_(c, inv, Dict::new(), Payload::EMPTY);
        assert!(h.drain().is_empty());
    }
}

#[test]
fn cancel_with_unknown_mode_or_request() {
    let (mut h, a, c, inv) = pending_call(CANCELING);
    cancel(&mut h, a, Some("explode"));
    expect_error(&h.one(a), code::CANCEL, 9, uris::INVALID_ARGUMENT);
    // Unknown request: ignored.
    h.send(a, Message::Cancel { request: rid(1234), options: Dict::new() });
    assert!(h.drain().is_empty());
    // The call is still pending and completes.
    h.yield_(c, inv, Dict::new(), Payload::EMPTY);
    expect_result(h.one(a), 9, false);
}

// ---------------------------------------------------------------------------
// call timeouts
// ---------------------------------------------------------------------------

#[test]
fn call_timeout_from_the_caller() {
    let t0 = Instant::now();
    for features in [CANCELING, &[][..]] {
        let mut h = Harness::new();
        h.realm.set_now(t0);
        let c = h.join_with(Serializer::Json, hello(features, &[]));
        let a = h.join(Serializer::Msgpack, "anonymous");
        h.register(c, 1, "slow");
        h.call_opts(a, 3, "slow", opt("timeout", Value::UInt(1500)), Payload::EMPTY);
        let (inv, _, details, _) = h.invocation(c);
        assert!(!details.contains_key("timeout"), "not forwarded");
        assert_eq!(h.realm.poll_timeout(), Some(t0 + Duration::from_millis(1500)));
        h.realm.handle_timeout(t0 + Duration::from_millis(1499));
        assert!(h.drain().is_empty());
        h.realm.handle_timeout(t0 + Duration::from_millis(1500));
        let out = h.drain();
        let interrupts = out.iter().filter(|o| matches!(o, Out::Msg(s, Message::Interrupt { .. }) if *s == c)).count();
        assert_eq!(interrupts, usize::from(!features.is_empty()), "{out:?}");
        let err = out
            .iter()
            .find_map(|o| match o {
                Out::Msg(s, m @ Message::Error { .. }) if *s == a => Some(m.clone()),
                _ => None,
            })
            .expect("timeout error");
        expect_error(&err, code::CALL, 3, uris::TIMEOUT);
        assert_eq!(h.realm.poll_timeout(), None);
        h.yield_(c, inv, Dict::new(), Payload::EMPTY);
        assert!(h.drain().is_empty(), "late YIELD dropped");
        assert_eq!(h.realm.stats().calls_timed_out, 1);
    }
}

#[test]
fn call_timeout_disarmed_by_the_answer_and_realm_limits() {
    let t0 = Instant::now();
    let mut h = Harness::new();
    h.realm.set_dealer_config(DealerConfig {
        default_call_timeout: Some(Duration::from_secs(5)),
        max_call_timeout: Some(Duration::from_secs(20)),
        ..DealerConfig::default()
    });
    h.realm.set_now(t0);
    let c = h.join(Serializer::Json, "anonymous");
    let a = h.join(Serializer::Json, "anonymous");
    h.register(c, 1, "p");
    // Answered in time: no timer left.
    h.call_opts(a, 1, "p", opt("timeout", Value::UInt(100)), Payload::EMPTY);
    let (inv, ..) = h.invocation(c);
    h.yield_(c, inv, Dict::new(), Payload::EMPTY);
    expect_result(h.one(a), 1, false);
    assert_eq!(h.realm.poll_timeout(), None);
    // No timeout option: the realm default.
    h.call(a, 2, "p", Payload::EMPTY);
    h.invocation(c);
    assert_eq!(h.realm.poll_timeout(), Some(t0 + Duration::from_secs(5)));
    // A larger timeout is capped.
    h.realm.set_now(t0 + Duration::from_secs(1));
    h.call_opts(a, 3, "p", opt("timeout", Value::UInt(60_000)), Payload::EMPTY);
    h.invocation(c);
    h.realm.handle_timeout(t0 + Duration::from_secs(5));
    expect_error(&h.one(a), code::CALL, 2, uris::TIMEOUT);
    assert_eq!(h.realm.poll_timeout(), Some(t0 + Duration::from_secs(21)));
    // Time never goes backwards.
    h.realm.set_now(t0);
    h.realm.handle_timeout(t0 + Duration::from_secs(21));
    expect_error(&h.one(a), code::CALL, 3, uris::TIMEOUT);
}

// ---------------------------------------------------------------------------
// pattern-based registrations
// ---------------------------------------------------------------------------

#[test]
fn pattern_registrations_and_precedence() {
    let mut h = Harness::new();
    let exact = h.join(Serializer::Json, "anonymous");
    let short = h.join(Serializer::Json, "anonymous");
    let long = h.join(Serializer::Json, "anonymous");
    let wild_late = h.join(Serializer::Json, "anonymous");
    let wild_early = h.join(Serializer::Json, "anonymous");
    let caller = h.join(Serializer::Cbor, "anonymous");
    let prefix = || opt("match", s("prefix"));
    let wildcard = || opt("match", s("wildcard"));
    let r_exact = h.register_ok(exact, 1, "a1.b2.c3.d4.e55", Dict::new());
    let r_short = h.register_ok(short, 1, "a1.b2", prefix());
    let r_long = h.register_ok(long, 1, "a1.b2.c3", prefix());
    let r_late = h.register_ok(wild_late, 1, "w1.b2..d4.e5", wildcard());
    let r_early = h.register_ok(wild_early, 1, "w1..c3.d4.e5", wildcard());
    // The same URI may be registered again under another policy.
    let other = h.join(Serializer::Json, "anonymous");
    h.register_ok(other, 1, "a1.b2.c3.d4.e55", prefix());

    let cases = [
        ("a1.b2.c3.d4.e55", exact, r_exact),
        ("a1.b2.c3.d98.e74", long, r_long),
        ("a1.b2.c4.d5.e6", short, r_short),
        ("a1.b2x", short, r_short),
        ("w1.b2.c33.d4.e5", wild_late, r_late),
        ("w1.b22.c3.d4.e5", wild_early, r_early),
        // Both wildcards match: the later first wildcard wins.
        ("w1.b2.c3.d4.e5", wild_late, r_late),
    ];
    for (i, (uri, who, reg)) in cases.iter().enumerate() {
        h.call(caller, i as u64 + 1, uri, Payload::EMPTY);
        let (_, r, details, _) = h.invocation(*who);
        assert_eq!(r, *reg, "{uri}");
        // Pattern matches carry the called URI, exact ones do not.
        let expect_procedure = *who != exact;
        assert_eq!(details.get("procedure").and_then(Value::as_str) == Some(*uri), expect_procedure, "{uri}");
    }
    // Component counts must match for wildcards; no match at all.
    h.call(caller, 50, "w1.x.c3.d4", Payload::EMPTY);
    expect_error(&h.one(caller), code::CALL, 50, uris::NO_SUCH_PROCEDURE);
    h.call(caller, 51, "b.c", Payload::EMPTY);
    expect_error(&h.one(caller), code::CALL, 51, uris::NO_SUCH_PROCEDURE);

    // A catch-all prefix never captures the router's wamp. procedures.
    h.register_ok(other, 2, "", prefix());
    h.call(caller, 52, "zzz", Payload::EMPTY);
    h.invocation(other);
    h.call(caller, 53, "wamp.nonexistent.proc", Payload::EMPTY);
    expect_error(&h.one(caller), code::CALL, 53, uris::NO_SUCH_PROCEDURE);

    // Unregistering the longer prefix falls back to the shorter one.
    h.send(long, Message::Unregister { request: rid(9), registration: r_long });
    assert!(matches!(h.one(long), Message::Unregistered { .. }));
    h.call(caller, 54, "a1.b2.c3.x", Payload::EMPTY);
    h.invocation(short);
}

#[test]
fn pattern_registration_refusals() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Json, "anonymous");
    // Empty components are only allowed in patterns.
    expect_error(&h.register_opts(a, 1, "a..b", Dict::new()), code::REGISTER, 1, uris::INVALID_URI);
    expect_error(&h.register_opts(a, 2, "a. .b", opt("match", s("wildcard"))), code::REGISTER, 2, uris::INVALID_URI);
    expect_error(&h.register_opts(a, 3, "a.b", opt("match", s("regex"))), code::REGISTER, 3, uris::INVALID_ARGUMENT);
    expect_error(&h.register_opts(a, 4, "wamp.", opt("match", s("prefix"))), code::REGISTER, 4, uris::INVALID_URI);
    h.register_ok(a, 5, "a..b", opt("match", s("wildcard")));
    expect_error(
        &h.register_opts(a, 6, "a..b", opt("match", s("wildcard"))),
        code::REGISTER,
        6,
        uris::PROCEDURE_ALREADY_EXISTS,
    );
}

// ---------------------------------------------------------------------------
// shared registrations
// ---------------------------------------------------------------------------

#[test]
fn shared_registration_policies() {
    let mut h = Harness::new();
    let caller = h.join(Serializer::Json, "anonymous");
    let callees: Vec<SessionId> = (0..3).map(|_| h.join(Serializer::Msgpack, "anonymous")).collect();
    for (proc_, policy) in [("rr", "roundrobin"), ("first", "first"), ("last", "last"), ("rand", "random")] {
        let mut id = None;
        for c in &callees {
            let r = h.register_ok(*c, 1, proc_, opt("invoke", s(policy)));
            assert_eq!(*id.get_or_insert(r), r, "one registration shared by all callees");
        }
    }
    // Request ids stay unique: the calls are left pending.
    let mut req = 100;
    let mut picks = |h: &mut Harness, p: &str, n: u64| -> Vec<SessionId> {
        (0..n)
            .map(|_| {
                req += 1;
                h.invoked_callee(caller, req, p, Dict::new())
            })
            .collect()
    };
    let rr = picks(&mut h, "rr", 6);
    assert_eq!(rr, [&callees[..], &callees[..]].concat(), "round robin in registration order");
    assert!(picks(&mut h, "first", 3).iter().all(|c| *c == callees[0]));
    assert!(picks(&mut h, "last", 3).iter().all(|c| *c == callees[2]));
    let random: HashSet<SessionId> = picks(&mut h, "rand", 60).into_iter().collect();
    assert_eq!(random.len(), 3, "random reaches every callee");

    // Hot stand-by: the first callee leaves, the next one takes over; its
    // pending call is canceled.
    h.call(caller, 200, "first", Payload::EMPTY);
    h.invocation(callees[0]);
    h.realm.leave(callees[0]);
    let mut canceled = HashSet::new();
    for o in h.drain() {
        match o {
            Out::Msg(s, Message::Error { request_type: code::CALL, request, error, .. }) if s == caller => {
                assert_eq!(error, uris::CANCELED);
                canceled.insert(request);
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(canceled.contains(&rid(200)), "all of its pending calls are canceled: {canceled:?}");
    assert_eq!(h.invoked_callee(caller, 201, "first", Dict::new()), callees[1]);
    // Round robin over the remaining two.
    let rr: HashSet<SessionId> = picks(&mut h, "rr", 2).into_iter().collect();
    assert_eq!(rr, callees[1..].iter().copied().collect());
}

#[test]
fn shared_registration_conflicts() {
    let mut h = Harness::new();
    let a = h.join(Serializer::Json, "anonymous");
    let b = h.join(Serializer::Json, "anonymous");
    // single (default) vs anything.
    h.register_ok(a, 1, "single", Dict::new());
    let m = h.register_opts(b, 2, "single", opt("invoke", s("roundrobin")));
    expect_error(&m, code::REGISTER, 2, uris::PROCEDURE_ALREADY_EXISTS);
    // Different shared policies.
    let reg = h.register_ok(a, 3, "shared", opt("invoke", s("roundrobin")));
    let m = h.register_opts(b, 4, "shared", opt("invoke", s("random")));
    expect_error(&m, code::REGISTER, 4, uris::PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY);
    // `single` against a shared registration is a policy conflict
    // (Crossbar's order of checks).
    let m = h.register_opts(b, 5, "shared", Dict::new());
    expect_error(&m, code::REGISTER, 5, uris::PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY);
    // The same session twice.
    let m = h.register_opts(a, 6, "shared", opt("invoke", s("roundrobin")));
    expect_error(&m, code::REGISTER, 6, uris::PROCEDURE_ALREADY_EXISTS);
    let m = h.register_opts(a, 7, "x", opt("invoke", s("sometimes")));
    expect_error(&m, code::REGISTER, 7, uris::INVALID_ARGUMENT);
    // Unregister keeps the registration for the others; the last one
    // deletes it.
    assert_eq!(h.register_ok(b, 8, "shared", opt("invoke", s("roundrobin"))), reg);
    assert_eq!(h.realm.dealer.len(), 2);
    h.send(a, Message::Unregister { request: rid(9), registration: reg });
    assert!(matches!(h.one(a), Message::Unregistered { .. }));
    assert_eq!(h.invoked_callee(a, 10, "shared", Dict::new()), b);
    h.send(b, Message::Unregister { request: rid(11), registration: reg });
    assert!(matches!(h.one(b), Message::Unregistered { .. }));
    assert_eq!(h.realm.dealer.len(), 1);
    h.call(a, 12, "shared", Payload::EMPTY);
    expect_error(&h.one(a), code::CALL, 12, uris::NO_SUCH_PROCEDURE);
}

// ---------------------------------------------------------------------------
// sharded registrations
// ---------------------------------------------------------------------------

#[test]
fn sharded_registration_routes_by_key() {
    let mut h = Harness::new();
    let caller = h.join(Serializer::Json, "anonymous");
    let callees: Vec<SessionId> = (0..4).map(|_| h.join(Serializer::Cbor, "anonymous")).collect();
    for c in &callees {
        h.register_ok(*c, 1, "db.get", opt("invoke", s("sharded")));
    }
    let key = |k: &str| opt("rkey", s(k));
    let keys: Vec<String> = (0..200).map(|i| format!("user-{i}")).collect();
    let mut req = 0;
    let mut route = |h: &mut Harness, k: &str| {
        req += 1;
        h.invoked_callee(caller, req, "db.get", key(k))
    };
    let before: Vec<SessionId> = keys.iter().map(|k| route(&mut h, k)).collect();
    // Deterministic: the same key, the same callee.
    for (k, c) in keys.iter().zip(&before).take(20) {
        assert_eq!(route(&mut h, k), *c);
    }
    // Every callee gets a share.
    let used: HashSet<SessionId> = before.iter().copied().collect();
    assert_eq!(used.len(), 4);
    // Integer keys work too.
    let i1 = h.invoked_callee(caller, 10_000, "db.get", opt("rkey", Value::UInt(42)));
    assert_eq!(h.invoked_callee(caller, 10_001, "db.get", opt("rkey", Value::UInt(42))), i1);

    // A callee leaves: only its keys move.
    let gone = callees[1];
    h.realm.leave(gone);
    h.drain();
    let mut moved = 0;
    for (k, c) in keys.iter().zip(&before) {
        let now = route(&mut h, k);
        assert_ne!(now, gone);
        if *c != gone {
            assert_eq!(now, *c, "key {k} of a remaining callee must not move");
        } else {
            moved += 1;
        }
    }
    assert!(moved > 0 && moved < keys.len() / 2, "moved {moved}");

    // No (usable) routing key.
    h.call(caller, 20_000, "db.get", Payload::EMPTY);
    expect_error(&h.one(caller), code::CALL, 20_000, uris::INVALID_ARGUMENT);
    h.call_opts(caller, 20_001, "db.get", opt("rkey", Value::List(vec![])), Payload::EMPTY);
    expect_error(&h.one(caller), code::CALL, 20_001, uris::INVALID_ARGUMENT);
    // Policy mismatch.
    let newcomer = h.join(Serializer::Json, "anonymous");
    let m = h.register_opts(newcomer, 1, "db.get", opt("invoke", s("roundrobin")));
    expect_error(&m, code::REGISTER, 1, uris::PROCEDURE_EXISTS_WITH_DIFFERENT_INVOCATION_POLICY);
}

// ---------------------------------------------------------------------------
// registration revocation
// ---------------------------------------------------------------------------

#[test]
fn registration_revocation() {
    let mut h = Harness::new();
    let aware = h.join_with(Serializer::Json, hello(&["registration_revocation"], &[]));
    let unaware = h.join_with(Serializer::Msgpack, hello(&[], &[]));
    let caller = h.join(Serializer::Json, "anonymous");
    let reg = h.register_ok(aware, 1, "svc", opt("invoke", s("roundrobin")));
    h.register_ok(unaware, 1, "svc", opt("invoke", s("roundrobin")));
    // A call in flight survives the revocation.
    h.call(caller, 5, "svc", Payload::EMPTY);
    let (inv, ..) = h.invocation(aware);

    assert!(h.realm.revoke_registration(reg, "wamp.error.unregistered"));
    match h.one(aware) {
        Message::Unregistered { request, details: Some(d) } => {
            assert_eq!(request.get(), 0);
            assert_eq!(d.get("registration").and_then(Value::as_u64), Some(reg.get()));
            assert_eq!(d.get("reason").and_then(Value::as_str), Some("wamp.error.unregistered"));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(h.realm.dealer.len(), 0);
    h.call(caller, 6, "svc", Payload::EMPTY);
    expect_error(&h.one(caller), code::CALL, 6, uris::NO_SUCH_PROCEDURE);
    h.yield_(aware, inv, Dict::new(), Payload::EMPTY);
    expect_result(h.one(caller), 5, false);
    // The callees no longer hold it; revoking again fails.
    h.send(unaware, Message::Unregister { request: rid(2), registration: reg });
    expect_error(&h.one(unaware), code::UNREGISTER, 2, uris::NO_SUCH_REGISTRATION);
    assert!(!h.realm.revoke_registration(reg, "again"));
    // The procedure can be registered anew.
    h.register_ok(unaware, 3, "svc", Dict::new());
}

// ---------------------------------------------------------------------------
// limits and departures
// ---------------------------------------------------------------------------

#[test]
fn pending_calls_per_session_limit() {
    let mut h = Harness::new();
    h.realm.set_dealer_config(DealerConfig { max_pending_calls_per_session: 2, ..DealerConfig::default() });
    let c = h.join(Serializer::Json, "anonymous");
    let a = h.join(Serializer::Json, "anonymous");
    let b = h.join(Serializer::Json, "anonymous");
    h.register(c, 1, "p");
    h.call(a, 1, "p", Payload::EMPTY);
    let (inv1, ..) = h.invocation(c);
    h.call(a, 2, "p", Payload::EMPTY);
    h.invocation(c);
    h.call(a, 3, "p", Payload::EMPTY);
    match h.one(a) {
        Message::Error { request, error, payload, .. } => {
            assert_eq!((request, error.as_str()), (rid(3), uris::TOO_MANY_PENDING_CALLS));
            let msg = values(&payload).0.and_then(|a| a.first().cloned());
            assert!(msg.as_ref().and_then(Value::as_str).is_some_and(|m| m.contains('2')), "{msg:?}");
        }
        other => panic!("{other:?}"),
    }
    // The limit is per session.
    h.call(b, 1, "p", Payload::EMPTY);
    h.invocation(c);
    // One answered: room again.
    h.yield_(c, inv1, Dict::new(), Payload::EMPTY);
    expect_result(h.one(a), 1, false);
    h.call(a, 4, "p", Payload::EMPTY);
    h.invocation(c);
}

#[test]
fn caller_leaving_interrupts_a_canceling_callee() {
    let (mut h, a, c, inv) = pending_call(CANCELING);
    h.realm.leave(a);
    expect_interrupt(h.one(c), inv, "killnowait");
    h.yield_(c, inv, Dict::new(), Payload::EMPTY);
    assert!(h.drain().is_empty());
    assert_eq!(h.realm.stats().protocol_violations, 0);
}

#[test]
fn caller_goodbye_with_timed_call_disarms_the_timer() {
    let t0 = Instant::now();
    let mut h = Harness::new();
    h.realm.set_now(t0);
    let c = h.join(Serializer::Json, "anonymous");
    let a = h.join(Serializer::Json, "anonymous");
    h.register(c, 1, "p");
    h.call_opts(a, 1, "p", opt("timeout", Value::UInt(10)), Payload::EMPTY);
    h.invocation(c);
    assert!(h.realm.poll_timeout().is_some());
    h.send(a, Message::Goodbye { details: Dict::new(), reason: uris::CLOSE_REALM.into() });
    h.drain();
    assert_eq!(h.realm.poll_timeout(), None);
    // And a callee leaving disarms the timers of its invocations.
    let a = h.join(Serializer::Json, "anonymous");
    h.call_opts(a, 2, "p", opt("timeout", Value::UInt(10)), Payload::EMPTY);
    h.invocation(c);
    h.realm.leave(c);
    expect_error(&h.one(a), code::CALL, 2, uris::CANCELED);
    assert_eq!(h.realm.poll_timeout(), None);
    h.realm.handle_timeout(t0 + Duration::from_secs(1));
    assert!(h.drain().is_empty());
}

#[test]
fn hello_features_are_read_leniently() {
    let f = dealer::PeerFeatures::from_hello(&hello(&["call_cancelling", "registration_revocation"], &[]));
    assert!(f.callee_canceling && f.callee_revocation && !f.callee_progressive_invocations);
    let junk = dict(vec![("roles", Value::List(vec![]))]);
    assert_eq!(dealer::PeerFeatures::from_hello(&junk), dealer::PeerFeatures::default());
    let bad = dict(vec![("roles", Value::Dict(dict(vec![("callee", s("x"))])))]);
    assert_eq!(dealer::PeerFeatures::from_hello(&bad), dealer::PeerFeatures::default());
}

#[test]
fn callee_leaving_mid_stream_ends_the_stream() {
    let mut h = Harness::new();
    let callee = h.join_with(Serializer::Json, hello(STREAMING, &[]));
    let caller = h.join_with(Serializer::Msgpack, hello(&[], &["progressive_call_invocations"]));
    h.register(callee, 1, "up");
    h.call_opts(caller, 1, "up", opt("progress", Value::Bool(true)), Payload::EMPTY);
    h.invocation(callee);
    h.realm.leave(callee);
    expect_error(&h.one(caller), code::CALL, 1, uris::CANCELED);
    // A new callee appears; the old stream's continuation must not start a
    // new call on it.
    let callee2 = h.join_with(Serializer::Json, hello(STREAMING, &[]));
    h.register(callee2, 1, "up");
    h.call_opts(caller, 1, "up", Dict::new(), Payload::EMPTY);
    assert!(h.drain().is_empty());
    assert_eq!(h.realm.stats().calls, 1);
    // New request ids work.
    h.call(caller, 2, "up", Payload::EMPTY);
    h.invocation(callee2);
}
