//! Advanced-profile features end to end with the real Autobahn|Python
//! client (`tests/python/advanced.py --case NAME`), one test per feature:
//!
//! * pub/sub: pattern-based subscriptions (prefix, wildcard), publisher
//!   identification, black/whitelisting by session id, authid and authrole,
//!   event retention, event history (realm `store`), acknowledgement;
//! * RPC: shared registrations (roundrobin, first, last, random) and the
//!   invocation-policy conflict, sharded registrations (`rkey`), pattern
//!   registrations, caller identification, progressive call results,
//!   progressive call invocations (the negative case: Autobahn cannot send
//!   them), call canceling in every mode and router-enforced call timeouts;
//! * meta API: `wamp.registration.remove_callee` (registration revocation).
//!
//! Options Autobahn 26 cannot express (`disclose_me` on CALL and PUBLISH,
//! `rkey` and `progress` on CALL, CANCEL modes, `invoke: "sharded"`) are
//! sent by the script through Autobahn's own message classes with extra
//! options, so those cases use JSON, MessagePack or CBOR (Flatbuffers
//! messages have fixed fields).
//!
//! One node serves the whole file: realm `realm1` with roles `anonymous`
//! (WebSocket and RawSocket transports) and `guest` (a second RawSocket
//! transport), both allowed everything, and event history on
//! [`HISTORY_TOPIC`].

mod common;

use std::sync::OnceLock;

use common::{
    allow_all_role, once_or_fail, rawsocket_tcp, rawsocket_tcp_auth, start_with_ports, web_transport, JunctionProcess,
};
use serde_json::{json, Value};

/// The topic with an event history of 5.
const HISTORY_TOPIC: &str = "com.example.history";

struct AdvNode {
    process: JunctionProcess,
    ws_port: u16,
    rs_port: u16,
    guest_port: u16,
}

impl AdvNode {
    fn url(&self, tr: &str) -> String {
        match tr {
            "ws" => format!("ws://127.0.0.1:{}/ws", self.ws_port),
            "rs" => format!("rs://127.0.0.1:{}", self.rs_port),
            other => panic!("unknown transport {other}"),
        }
    }
}

fn node() -> &'static AdvNode {
    static NODE: OnceLock<Result<AdvNode, String>> = OnceLock::new();
    once_or_fail(&NODE, || {
        let (process, ports) = start_with_ports(3, |p| {
            json!({
                "version": 2,
                "workers": [{
                    "type": "router",
                    "options": {"shards": 2},
                    "realms": [{
                        "name": "realm1",
                        "roles": [allow_all_role("anonymous"), allow_all_role("guest")],
                        "store": {"type": "memory", "event-history": [{"uri": HISTORY_TOPIC, "limit": 5}]}
                    }],
                    "transports": [
                        web_transport(p[0], json!({})),
                        rawsocket_tcp(p[1]),
                        rawsocket_tcp_auth(p[2], json!({"anonymous": {"type": "static", "role": "guest"}})),
                    ]
                }]
            })
        });
        AdvNode { process, ws_port: ports[0], rs_port: ports[1], guest_port: ports[2] }
    })
}

/// Runs `advanced.py --case <case>` over transport `tr` with serializer `ser`.
fn case(case: &str, tr: &str, ser: &str) -> Value {
    let n = node();
    let url = n.url(tr);
    let guest = format!("rs://127.0.0.1:{}", n.guest_port);
    let r = n.process.python(
        "advanced.py",
        &[&url, "realm1", ser, "--case", case, "--guest-url", &guest, "--history-topic", HISTORY_TOPIC],
    );
    assert_eq!(r["ok"], Value::Bool(true), "{r}");
    r
}

// ------------------------------------------------------------ basic (all serializers)

fn advanced(tr: &str, ser: &str) -> Value {
    let r = case("basic", tr, ser);
    assert_eq!(r["round_robin"], json!({"s1": 2, "s2": 2}), "{r}");
    r
}

/// Registering a procedure that is already registered with another
/// invocation policy: the spec's error URI, or Crossbar.io's.
#[test]
fn invocation_policy_conflict_uri() {
    let r = advanced("ws", "json");
    let conflict = r["policy_conflict"].as_str().unwrap_or_default();
    assert!(
        conflict == "wamp.error.procedure_exists_invocation_policy_conflict"
            || conflict == "wamp.error.procedure_exists_with_different_invocation_policy",
        "expected wamp.error.procedure_exists_invocation_policy_conflict (WAMP spec) or \
         wamp.error.procedure_exists_with_different_invocation_policy (Crossbar.io), got {conflict:?}"
    );
}

macro_rules! cases {
    ($($name:ident: $tr:literal $ser:literal;)*) => {$(
        #[test]
        fn $name() {
            advanced($tr, $ser);
        }
    )*};
}

cases! {
    ws_json: "ws" "json";
    ws_msgpack: "ws" "msgpack";
    ws_cbor: "ws" "cbor";
    ws_flatbuffers: "ws" "flatbuffers";
    rs_json: "rs" "json";
    rs_msgpack: "rs" "msgpack";
    rs_cbor: "rs" "cbor";
    rs_flatbuffers: "rs" "flatbuffers";
}

// ------------------------------------------------------------ RPC

/// Progressive call results: three interim results in order, then the
/// final one; a caller that did not ask gets only the final result and the
/// callee is not offered progress.
#[test]
fn progressive_call_results() {
    let r = case("progressive_results", "rs", "cbor");
    assert_eq!(r["progress"], json!([[0, "p0"], [1, "p1"], [2, "p2"]]), "{r}");
}

/// Progressive call invocations: Autobahn 26 cannot send them (no
/// `progress` on its CALL, no `progressive_call_invocations` caller
/// feature). With the feature announced and the CALL sent raw, a stock
/// Autobahn callee (which does not announce it) must not be invoked: the
/// caller gets `wamp.error.feature_not_supported` and stays attached.
#[test]
fn progressive_call_invocations_to_unsupporting_callee() {
    let r = case("progressive_invocations", "ws", "json");
    assert_eq!(r["error"], "wamp.error.feature_not_supported", "{r}");
}

/// Call canceling: Autobahn's `future.cancel()` (no mode: the default
/// killnowait interrupts the callee); `skip` answers `canceled` and leaves
/// the callee alone; `kill` interrupts and ends the call with the callee's
/// reply; `killnowait` answers `canceled` at once and interrupts.
#[test]
fn call_canceling_modes() {
    let r = case("cancel", "ws", "json");
    assert_eq!(r["native_interrupted"], true, "{r}");
    assert_eq!(r["skip"], "wamp.error.canceled", "{r}");
    assert_eq!(r["skip_interrupted"], false, "skip must not INTERRUPT the callee: {r}");
    assert_eq!(r["kill"], "com.example.killed", "kill: the callee's reply ends the call: {r}");
    assert_eq!(r["kill_interrupted"], true, "{r}");
    assert_eq!(r["killnowait"], "wamp.error.canceled", "{r}");
    assert_eq!(r["killnowait_interrupted"], true, "{r}");
}

/// Router-enforced call timeout (300 ms) against a stuck callee:
/// `wamp.error.timeout` promptly, INTERRUPT to the callee; a call answered
/// within its timeout succeeds.
#[test]
fn call_timeout() {
    let r = case("call_timeout", "rs", "json");
    assert_eq!(r["error"], "wamp.error.timeout", "{r}");
    let elapsed = r["elapsed"].as_f64().unwrap_or(f64::MAX);
    assert!((0.25..5.0).contains(&elapsed), "timeout after {elapsed}s: {r}");
    assert_eq!(r["in_time"], "finished", "{r}");
}

/// Caller identification with `disclose_me`: session id, authid and
/// authrole in INVOCATION details; nothing without it.
#[test]
fn caller_identification_disclose_me() {
    let r = case("caller_disclose", "ws", "json");
    assert_eq!(r["seen"][0][1], "carol", "{r}");
    assert_eq!(r["seen"][1], json!([null, null, null]), "{r}");
}

/// Pattern-based registrations: prefix (string-based) and wildcard with
/// `details.procedure`, exact wins over prefix, no match is
/// `no_such_procedure`.
#[test]
fn pattern_based_registrations() {
    let r = case("pattern_registrations", "rs", "msgpack");
    assert_eq!(r["prefix"][0], "prefix", "{r}");
    assert_eq!(r["wild"][0], "wild", "{r}");
    assert_eq!(r["exact"][0], "exact", "{r}");
    assert_eq!(r["unmatched"], "wamp.error.no_such_procedure", "{r}");
}

/// Shared registrations `first`, `last` and `random` (roundrobin is in the
/// basic scenario).
#[test]
fn shared_registration_first_last_random() {
    let r = case("shared_policies", "ws", "cbor");
    assert_eq!(r["first"], json!({"s1": 4, "s2": 0}), "{r}");
    assert_eq!(r["last"], json!({"s1": 0, "s2": 4}), "{r}");
    let (a, b) = (r["random"]["s1"].as_u64().unwrap_or(0), r["random"]["s2"].as_u64().unwrap_or(0));
    assert_eq!(a + b, 40, "{r}");
    // Both callees are chosen (all 40 to one of them: probability 2^-39).
    assert!(a > 0 && b > 0, "random served only one callee: {r}");
}

/// Sharded registrations: the same `rkey` (string or integer) reaches the
/// same callee every time, 24 keys spread over more than one of three
/// callees, no `rkey` is `invalid_argument`, a different policy on the same
/// procedure is refused.
#[test]
fn sharded_registration_rkey() {
    let r = case("sharded", "ws", "json");
    assert_eq!(r["stable"], true, "{r}");
    assert!(r["callees_used"].as_u64().unwrap_or(0) >= 2, "24 keys all on one callee: {r}");
    assert_eq!(r["no_rkey"], "wamp.error.invalid_argument", "{r}");
    assert_eq!(r["mixed_policy"], "wamp.error.procedure_exists_with_different_invocation_policy", "{r}");
}

// ------------------------------------------------------------ pub/sub

/// Publisher identification with `disclose_me` (sent raw: Autobahn 26
/// dropped it from `PublishOptions`); nothing without it.
#[test]
fn publisher_identification_disclose_me() {
    let r = case("publisher_disclose", "rs", "cbor");
    assert_eq!(r["disclosed"][1].as_u64().map(|id| id > 0), Some(true), "{r}");
    assert_eq!(r["disclosed"][2], "paula", "{r}");
    assert_eq!(r["disclosed"][3], "anonymous", "{r}");
}

/// Subscriber black/whitelisting by session id, authid and authrole, and
/// the combination (present eligible list AND no exclude list).
#[test]
fn subscriber_black_white_listing() {
    let r = case("black_white", "ws", "json");
    assert_eq!(r["got"]["alice"], json!(["eligible", "exclude_authid", "exclude_authrole"]), "{r}");
    assert_eq!(
        r["got"]["bob"],
        json!(["exclude", "eligible_authid", "exclude_authrole", "eligible_and_exclude"]),
        "{r}"
    );
    assert_eq!(r["got"]["gary"], json!(["exclude", "exclude_authid", "eligible_authrole"]), "{r}");
}

/// Event retention: the latest retained event goes to a late subscriber
/// with `get_retained` (flagged `retained`), not to one without.
#[test]
fn event_retention() {
    let r = case("retention", "ws", "msgpack");
    assert_eq!(r["late"], json!([["second", true], ["live", null]]), "{r}");
    assert_eq!(r["plain"], json!([["live", null]]), "{r}");
}

/// Event history: 7 events on a topic with `limit: 5`;
/// `wamp.subscription.get_events(sub, 10)` gives the latest five, newest
/// first; a subscription without history is `history_unavailable`.
#[test]
fn event_history() {
    let r = case("history", "rs", "json");
    let tag = r["tag"].clone();
    let want: Vec<Value> = (2..7).rev().map(|i| json!([tag.clone(), i])).collect();
    assert_eq!(r["args"], Value::Array(want), "{r}");
    assert_eq!(r["same_sub"], true, "the subscriber shares the history subscription: {r}");
    assert_eq!(r["topics"], json!(vec![HISTORY_TOPIC; 5]), "{r}");
    assert_eq!(r["unavailable"], "wamp.error.history_unavailable", "{r}");
}

// ------------------------------------------------------------ meta API revocation

/// `wamp.registration.remove_callee` from another session: an empty
/// result, the callee (Autobahn announces `registration_revocation`) gets
/// `UNREGISTERED [0, {registration, reason}]`, later CALLs are
/// `wamp.error.no_such_procedure` and removing again is
/// `wamp.error.no_such_registration`.
#[test]
fn registration_remove_callee() {
    let r = case("remove_callee", "ws", "msgpack");
    assert_eq!(r["removed"], Value::Null, "{r}");
    assert_eq!(r["after"], "wamp.error.no_such_procedure", "{r}");
    assert_eq!(r["again"], "wamp.error.no_such_registration", "{r}");
    assert_eq!(r["revoked"], json!([[r["registration"], "com.example.maintenance"]]), "{r}");
}
