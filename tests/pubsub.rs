//! Pub/sub end to end with the real Autobahn|Python client: every
//! serializer over WebSocket, RawSocket/TCP and RawSocket/Unix, plus mixed
//! serializer and transport pairs (the router transcodes payloads).
//!
//! One node serves the whole file; each scenario uses unique topic URIs, so
//! the tests run in parallel without interfering.

mod common;

use common::shared_node;
use serde_json::Value;

/// Runs `pubsub.py` with the subscriber on (`sub_tr`, `sub_ser`) and the
/// publisher on (`pub_tr`, `pub_ser`) and checks the reported outcome.
fn pubsub(sub_tr: &str, sub_ser: &str, pub_tr: &str, pub_ser: &str) {
    let node = shared_node();
    let (sub_url, pub_url) = (node.url(sub_tr), node.url(pub_tr));
    let r =
        node.python("pubsub.py", &[&sub_url, "realm1", sub_ser, "--pub-url", &pub_url, "--pub-serializer", pub_ser]);
    assert_eq!(r["ok"], Value::Bool(true), "{r}");
    let id = r["publication_id"].as_u64().unwrap_or_else(|| panic!("no publication id: {r}"));
    assert!((1..=1u64 << 53).contains(&id), "publication id {id} outside 1..=2^53");
    assert_eq!(r["sub_events"], 3, "{r}");
    assert_eq!(r["publisher_first_own_event"], "second", "{r}");
}

macro_rules! same {
    ($($name:ident: $tr:literal, $ser:literal;)*) => {$(
        #[test]
        fn $name() {
            pubsub($tr, $ser, $tr, $ser);
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
    unix_cbor: "unix", "cbor";
}

macro_rules! mixed {
    ($($name:ident: $sub_tr:literal $sub_ser:literal <- $pub_tr:literal $pub_ser:literal;)*) => {$(
        #[test]
        fn $name() {
            pubsub($sub_tr, $sub_ser, $pub_tr, $pub_ser);
        }
    )*};
}

mixed! {
    mixed_rs_cbor_from_ws_json: "rs" "cbor" <- "ws" "json";
    mixed_ws_json_from_rs_cbor: "ws" "json" <- "rs" "cbor";
    mixed_ws_json_from_ws_msgpack: "ws" "json" <- "ws" "msgpack";
    mixed_ws_msgpack_from_ws_json: "ws" "msgpack" <- "ws" "json";
    mixed_rs_msgpack_from_ws_flatbuffers: "rs" "msgpack" <- "ws" "flatbuffers";
    mixed_ws_flatbuffers_from_rs_json: "ws" "flatbuffers" <- "rs" "json";
    mixed_ws_json_from_rs_flatbuffers: "ws" "json" <- "rs" "flatbuffers";
    mixed_unix_msgpack_from_ws_cbor: "unix" "msgpack" <- "ws" "cbor";
}
