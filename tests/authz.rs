//! Authorization and realm admission end to end with the real
//! Autobahn|Python client, for every serializer over WebSocket and
//! RawSocket/TCP (and Unix for one serializer).
//!
//! The shared node's realm `restricted` gives `anonymous` only
//! `subscribe` under the `com.allowed.` prefix.

mod common;

use common::shared_node;
use serde_json::Value;

fn denied(tr: &str, ser: &str) {
    let node = shared_node();
    let r = node.python("authz.py", &[&node.url(tr), "restricted", ser]);
    assert_eq!(r["ok"], Value::Bool(true), "{r}");
    for what in ["subscribe_other", "publish", "register", "call"] {
        assert_eq!(r[what], "wamp.error.not_authorized", "{what}: {r}");
    }
}

fn no_such_realm(tr: &str, ser: &str) {
    let node = shared_node();
    let r = node.python("abort.py", &[&node.url(tr), "no.such.realm", ser]);
    assert_eq!(r["ok"], Value::Bool(true), "{r}");
    assert_eq!(r["reason"], "wamp.error.no_such_realm", "{r}");
}

macro_rules! cases {
    ($($name:ident: $f:ident $tr:literal $ser:literal;)*) => {$(
        #[test]
        fn $name() {
            $f($tr, $ser);
        }
    )*};
}

cases! {
    denied_ws_json: denied "ws" "json";
    denied_ws_msgpack: denied "ws" "msgpack";
    denied_ws_cbor: denied "ws" "cbor";
    denied_ws_flatbuffers: denied "ws" "flatbuffers";
    denied_rs_json: denied "rs" "json";
    denied_rs_msgpack: denied "rs" "msgpack";
    denied_rs_cbor: denied "rs" "cbor";
    denied_rs_flatbuffers: denied "rs" "flatbuffers";
    denied_unix_cbor: denied "unix" "cbor";
    no_such_realm_ws_json: no_such_realm "ws" "json";
    no_such_realm_ws_msgpack: no_such_realm "ws" "msgpack";
    no_such_realm_ws_cbor: no_such_realm "ws" "cbor";
    no_such_realm_ws_flatbuffers: no_such_realm "ws" "flatbuffers";
    no_such_realm_rs_json: no_such_realm "rs" "json";
    no_such_realm_rs_msgpack: no_such_realm "rs" "msgpack";
    no_such_realm_rs_cbor: no_such_realm "rs" "cbor";
    no_such_realm_rs_flatbuffers: no_such_realm "rs" "flatbuffers";
    no_such_realm_unix_json: no_such_realm "unix" "json";
}
