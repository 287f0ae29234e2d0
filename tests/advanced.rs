//! Advanced-profile features end to end with the real Autobahn|Python
//! client: pattern-based subscriptions (prefix, wildcard) and shared
//! registrations (round robin), for every serializer over WebSocket and
//! RawSocket/TCP.

mod common;

use common::shared_node;
use serde_json::{json, Value};

fn advanced(tr: &str, ser: &str) -> Value {
    let node = shared_node();
    let r = node.python("advanced.py", &[&node.url(tr), "realm1", ser]);
    assert_eq!(r["ok"], Value::Bool(true), "{r}");
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
