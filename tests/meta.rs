//! The WAMP meta API and session testaments end to end, with the real
//! Autobahn|Python client (`tests/python/meta.py --case NAME`).
//!
//! One node (two shards) serves the file. Tests that count or kill
//! sessions get realms of their own so parallel tests cannot disturb them:
//! `sessions` (homed on shard 0) and `sessions2` (homed on shard 1, to
//! check that each realm's answers are complete and separate whichever
//! shard the realm and its sessions' connections sit on). `nometa` has
//! `enable_meta_api: false`; everything else runs on `meta`.

mod common;

use std::sync::OnceLock;

use common::{
    allow_all_role, once_or_fail, rawsocket_tcp, rawsocket_tcp_auth, start_with_ports, web_transport, JunctionProcess,
};
use serde_json::{json, Value};

struct MetaNode {
    process: JunctionProcess,
    ws_port: u16,
    rs_port: u16,
    guest_port: u16,
}

fn node() -> &'static MetaNode {
    static NODE: OnceLock<Result<MetaNode, String>> = OnceLock::new();
    once_or_fail(&NODE, || {
        let roles = || vec![allow_all_role("anonymous"), allow_all_role("guest")];
        let (process, ports) = start_with_ports(3, |p| {
            json!({
                "version": 2,
                "workers": [{
                    "type": "router",
                    "options": {"shards": 2},
                    "realms": [
                        {"name": "meta", "roles": roles()},
                        {"name": "sessions", "roles": roles(), "options": {"home_shard": 0}},
                        {"name": "sessions2", "roles": roles(), "options": {"home_shard": 1}},
                        {"name": "nometa", "roles": roles(), "options": {"enable_meta_api": false}},
                    ],
                    "transports": [
                        web_transport(p[0], json!({})),
                        rawsocket_tcp(p[1]),
                        rawsocket_tcp_auth(p[2], json!({"anonymous": {"type": "static", "role": "guest"}})),
                    ]
                }]
            })
        });
        MetaNode { process, ws_port: ports[0], rs_port: ports[1], guest_port: ports[2] }
    })
}

fn case(case: &str, realm: &str, tr: &str, ser: &str) -> Value {
    let n = node();
    let url = match tr {
        "ws" => format!("ws://127.0.0.1:{}/ws", n.ws_port),
        _ => format!("rs://127.0.0.1:{}", n.rs_port),
    };
    let guest = format!("rs://127.0.0.1:{}", n.guest_port);
    let r = n
        .process
        .python("meta.py", &[&url, realm, ser, "--case", case, "--guest-url", &guest, "--realm2", "sessions2"]);
    assert_eq!(r["ok"], Value::Bool(true), "{r}");
    r
}

/// `wamp.session.count/list/get/kill/kill_by_authid/kill_by_authrole/
/// kill_all`, and a second realm on the other shard counting only its own.
#[test]
fn session_procedures() {
    let r = case("sessions", "sessions", "ws", "json");
    assert_eq!(r["counts"], json!([3, 3, 3]), "every session sees the same count: {r}");
    assert_eq!(r["list_ok"], true, "{r}");
    assert_eq!(
        r["get"],
        json!({"realm": "sessions", "session": r["get"]["session"], "authid": "victim",
        "authrole": "anonymous", "authmethod": "anonymous"}),
        "{r}"
    );
    assert_eq!(r["get_session_ok"], true, "{r}");
    assert_eq!(r["get_unknown"], "wamp.error.no_such_session", "{r}");
    assert_eq!(r["kill_left"], json!(["com.example.bye", "go away"]), "the killed session's onLeave: {r}");
    assert_eq!(r["kill_self"], "wamp.error.no_such_session", "{r}");
    assert_eq!(r["count_after_kill"], 2, "{r}");
    assert_eq!(r["kill_by_authid_ok"], true, "{r}");
    assert_eq!(r["kill_by_authid_reasons"], json!(["wamp.close.killed", "wamp.close.killed"]), "{r}");
    assert_eq!(r["guest_role"], "guest", "{r}");
    assert_eq!(r["kill_by_authrole_ok"], true, "{r}");
    assert_eq!(r["count_after_role_kill"], 2, "{r}");
    assert_eq!(r["kill_all"], 2, "kill_all returns how many it killed: {r}");
    assert_eq!(r["kill_all_left"], json!(["com.example.all", "com.example.all"]), "{r}");
    assert_eq!(r["count_after_kill_all"], 1, "{r}");
    assert_eq!(r["caller_alive"], true, "{r}");
    assert_eq!(r["realm2_counts"], json!([2, 2]), "{r}");
    assert_eq!(r["realm1_count_again"], 1, "{r}");
}

/// `wamp.session.on_join` (the `get` dict) and `on_leave` (`[id, authid,
/// authrole]`).
#[test]
fn session_events() {
    let r = case("session_events", "meta", "rs", "cbor");
    assert_eq!(r["join"], json!({"realm": "meta", "authid": "joiner", "authrole": "anonymous"}), "{r}");
    assert_eq!(r["leave"], json!(["joiner", "anonymous"]), "{r}");
}

fn check_pattern_meta(r: &Value, verbs: [&str; 4]) {
    for k in ["listed", "session_list", "lookup_ok", "match_ok", "get_uri_ok", "created_iso", "members_ok"] {
        assert_eq!(r[k], true, "{k}: {r}");
    }
    assert_eq!(r["lookup_prefix"], Value::Null, "no prefix subscription/registration on that URI: {r}");
    assert_eq!(r["match_none"], Value::Null, "{r}");
    assert_eq!(r["count"], 1, "{r}");
    let events: Vec<Value> = verbs.iter().map(|v| json!([v, true])).collect();
    assert_eq!(r["events"], Value::Array(events), "{r}");
}

/// `wamp.subscription.list/lookup/match/get/list_subscribers/
/// count_subscribers` and `on_create/on_subscribe/on_unsubscribe/on_delete`.
#[test]
fn subscription_meta() {
    let r = case("subscription_meta", "meta", "ws", "msgpack");
    check_pattern_meta(&r, ["on_create", "on_subscribe", "on_unsubscribe", "on_delete"]);
    assert_eq!(r["get"]["match"], "exact", "{r}");
    assert_eq!(r["get_unknown"], "wamp.error.no_such_subscription", "{r}");
    assert_eq!(r["after_delete"], "wamp.error.no_such_subscription", "{r}");
}

/// `wamp.registration.list/lookup/match/get/list_callees/count_callees` and
/// `on_create/on_register/on_unregister/on_delete`.
#[test]
fn registration_meta() {
    let r = case("registration_meta", "meta", "rs", "json");
    check_pattern_meta(&r, ["on_create", "on_register", "on_unregister", "on_delete"]);
    assert_eq!(r["get"]["match"], "exact", "{r}");
    assert_eq!(r["get"]["invoke"], "single", "{r}");
    assert_eq!(r["get_unknown"], "wamp.error.no_such_registration", "{r}");
    assert_eq!(r["after_delete"], "wamp.error.no_such_registration", "{r}");
}

/// `enable_meta_api: false`: the procedures do not exist, WELCOME does not
/// announce the meta features, no meta events.
#[test]
fn meta_api_disabled() {
    let r = case("disabled", "nometa", "ws", "json");
    for p in ["wamp.session.count", "wamp.session.list", "wamp.subscription.list", "wamp.registration.list"] {
        assert_eq!(r[p], "wamp.error.no_such_procedure", "{p}: {r}");
    }
    assert_ne!(r["broker_session_meta_api"], true, "{r}");
    assert_ne!(r["dealer_registration_meta_api"], true, "{r}");
    assert_eq!(r["on_join_events"], 0, "{r}");
}

/// The same realm with the meta API on announces it (the positive side of
/// [`meta_api_disabled`]'s WELCOME check).
#[test]
fn meta_api_announced() {
    let r = case("disabled", "meta", "rs", "json");
    assert_eq!(r["wamp.session.count"], "<no error>", "{r}");
    assert_eq!(r["broker_session_meta_api"], true, "{r}");
    assert_eq!(r["dealer_registration_meta_api"], true, "{r}");
}

/// Testaments: added, then the transport is dropped → published (args and
/// kwargs intact); flushed → nothing published when that session leaves.
#[test]
fn testaments() {
    let r = case("testament", "meta", "ws", "json");
    assert_eq!(r["pub_id_int"], true, "{r}");
    assert_eq!(r["flushed"], 1, "{r}");
    assert_eq!(r["bad_topic"], "wamp.error.invalid_uri", "{r}");
    assert_eq!(r["event_ok"], true, "{r}");
    assert_eq!(r["after_flush"], json!([["marker"], {}]), "a flushed testament was published: {r}");
}
