//! Remote procedure calls end to end with the real Autobahn|Python client:
//! every serializer over WebSocket, RawSocket/TCP and RawSocket/Unix, plus
//! caller and callee on different serializers and transports.
//!
//! One node serves the whole file; each scenario uses unique procedure URIs.

mod common;

use common::shared_node;
use serde_json::{json, Value};

/// Runs `rpc.py` with the caller on (`caller_tr`, `caller_ser`) and the
/// callee on (`callee_tr`, `callee_ser`) and checks the reported outcome.
fn rpc(caller_tr: &str, caller_ser: &str, callee_tr: &str, callee_ser: &str) {
    let node = shared_node();
    let (caller_url, callee_url) = (node.url(caller_tr), node.url(callee_tr));
    let r = node.python(
        "rpc.py",
        &[&caller_url, "realm1", caller_ser, "--callee-url", &callee_url, "--callee-serializer", callee_ser],
    );
    assert_eq!(r["ok"], Value::Bool(true), "{r}");
    assert_eq!(r["sum"], json!((1u64 << 52) + 3), "{r}");
    assert_eq!(r["app_error"]["error"], "com.example.error.foo", "{r}");
    // Autobahn 26.10.2 misreads args/kwargs of FlatBuffers ERRORs (see
    // FLATBUFFERS_ERROR_BUG in rpc.py): the payload is checked for every
    // other caller serializer, whatever the callee's.
    let payload_checked = caller_ser != "flatbuffers";
    assert_eq!(r["app_error_payload_checked"], json!(payload_checked), "{r}");
    if payload_checked {
        assert_eq!(r["app_error"]["args"], json!(["bad thing", 42]), "{r}");
        assert_eq!(r["app_error"]["kwargs"], json!({"detail": {"k": {"bytes": "0001ff"}}}), "{r}");
    }
    assert_eq!(r["missing_error"], "wamp.error.no_such_procedure", "{r}");
    assert_eq!(r["double_register_error"], "wamp.error.procedure_already_exists", "{r}");
    assert_eq!(r["after_unregister_error"], "wamp.error.no_such_procedure", "{r}");
}

macro_rules! same {
    ($($name:ident: $tr:literal, $ser:literal;)*) => {$(
        #[test]
        fn $name() {
            rpc($tr, $ser, $tr, $ser);
        }
    )*};
}

same! {
    ws_json: "ws", "json";
    ws_msgpack: "ws", "msgpack";
    ws_cbor: "ws", "cbor";
    ws_flatbuffers: "ws", "flatbuffers";
    rs_json: "rs", "json";
    rs_msgpack: "rs", "msgpack";
    rs_cbor: "rs", "cbor";
    rs_flatbuffers: "rs", "flatbuffers";
    unix_json: "unix", "json";
    unix_msgpack: "unix", "msgpack";
}

macro_rules! mixed {
    ($($name:ident: $caller_tr:literal $caller_ser:literal -> $callee_tr:literal $callee_ser:literal;)*) => {$(
        #[test]
        fn $name() {
            rpc($caller_tr, $caller_ser, $callee_tr, $callee_ser);
        }
    )*};
}

mixed! {
    mixed_ws_json_to_rs_cbor: "ws" "json" -> "rs" "cbor";
    mixed_rs_msgpack_to_ws_json: "rs" "msgpack" -> "ws" "json";
    mixed_ws_flatbuffers_to_ws_msgpack: "ws" "flatbuffers" -> "ws" "msgpack";
    mixed_rs_json_to_ws_flatbuffers: "rs" "json" -> "ws" "flatbuffers";
    mixed_unix_cbor_to_ws_json: "unix" "cbor" -> "ws" "json";
}
