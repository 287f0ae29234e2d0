//! Dynamic authentication end to end: a ticket transport whose
//! authenticator is a procedure (`com.example.authenticate`) registered by
//! a real Autobahn|Python component on another realm (`authrealm`, joined
//! through an anonymous transport with role `authenticator`).
//!
//! The node has two shards and the two realms are homed on different ones
//! (`home_shard` 0 and 1), so the router's call to the authenticator
//! crosses shards whichever shard the login connection lands on.
//!
//! One scenario (`tests/python/dynauth.py`) runs every step in order with
//! one authenticator session — the authenticator registers a single
//! procedure, so parallel scenarios would collide — and each test below
//! asserts one part of its report.

mod common;

use std::sync::OnceLock;

use common::{
    once_or_fail, rawsocket_tcp_auth, start_in_dir_with_ports, start_with_ports, temp_dir, websocket_transport_auth,
    JunctionProcess,
};
use serde_json::{json, Value};

struct Report {
    _process: JunctionProcess,
    r: Value,
}

fn ticket_auth(procedure: &str) -> Value {
    json!({"ticket": {"type": "dynamic", "authenticator": procedure, "authenticator-realm": "authrealm"}})
}

fn report() -> &'static Value {
    static REPORT: OnceLock<Result<Report, String>> = OnceLock::new();
    let rep = once_or_fail(&REPORT, || {
        let (process, ports) = start_with_ports(3, |p| {
            json!({
                "version": 2,
                "workers": [{
                    "type": "router",
                    "options": {"shards": 2},
                    "realms": [
                        {"name": "realm1", "options": {"home_shard": 1}, "roles": [{"name": "user", "permissions": [{
                            "uri": "", "match": "prefix",
                            "allow": {"call": true, "register": true, "publish": true, "subscribe": true}
                        }]}]},
                        {"name": "authrealm", "options": {"home_shard": 0}, "roles": [{"name": "authenticator", "permissions": [{
                            "uri": "com.example.", "match": "prefix", "allow": {"register": true}
                        }]}]}
                    ],
                    "transports": [
                        websocket_transport_auth(p[0], ticket_auth("com.example.authenticate")),
                        websocket_transport_auth(p[1], ticket_auth("com.example.nobody")),
                        rawsocket_tcp_auth(p[2], json!({"anonymous": {"type": "static", "role": "authenticator"}})),
                    ]
                }]
            })
        });
        run_scenario(process, &ports)
    });
    &rep.r
}

/// Runs `dynauth.py` against a node whose ports are: the ticket transport,
/// the transport with an unregistered authenticator, the authenticator's
/// RawSocket transport.
fn run_scenario(process: JunctionProcess, ports: &[u16]) -> Report {
    let url = format!("ws://127.0.0.1:{}", ports[0]);
    let nobody = format!("ws://127.0.0.1:{}", ports[1]);
    let auth = format!("rs://127.0.0.1:{}", ports[2]);
    let r =
        process.python("dynauth.py", &[&url, "realm1", "cbor", "--authenticator-url", &auth, "--nobody-url", &nobody]);
    assert_eq!(r["ok"], Value::Bool(true), "{r}");
    Report { _process: process, r }
}

/// A good ticket joins with the authenticator's role and `authextra`, as
/// the requested authid, and the session works (a meta call sees the same
/// identity); four logins, so both shards' connections are covered.
#[test]
fn good_ticket_joins_with_returned_role_and_extra() {
    let r = report();
    for (i, g) in r["good"].as_array().expect("good list").iter().enumerate() {
        let authid = format!("user{i}");
        assert_eq!(g["joined"], true, "{g}");
        assert_eq!(g["authid"], authid.as_str(), "{g}");
        assert_eq!(g["authrole"], "user", "{g}");
        assert_eq!(g["authmethod"], "ticket", "{g}");
        assert_eq!(g["realm"], "realm1", "{g}");
        assert_eq!(g["authextra"]["hello"], authid.as_str(), "authextra from the authenticator: {g}");
        assert_eq!(g["meta_authid"], authid.as_str(), "{g}");
    }
}

/// The authenticator is called with Crossbar's `(realm, authid, details)`:
/// the login realm, the requested authid, `details.authmethod` and
/// `details.ticket`.
#[test]
fn authenticator_sees_realm_authid_and_ticket() {
    let r = report();
    assert_eq!(r["calls"][0], json!(["realm1", "user0", "ticket", "good-user0"]), "{r}");
    // good ×4, renamed, bad: six calls; the unregistered procedure is never
    // reached by this component.
    assert_eq!(r["calls"].as_array().map(Vec::len), Some(6), "{r}");
}

/// An `authid` in the authenticator's answer replaces the requested one.
#[test]
fn authenticator_may_assign_authid() {
    let r = report();
    assert_eq!(r["renamed"]["joined"], true, "{r}");
    assert_eq!(r["renamed"]["authid"], "renamed-by-authenticator", "{r}");
    assert_eq!(r["renamed"]["meta_authid"], "renamed-by-authenticator", "{r}");
}

/// A bad ticket: ABORT with the authenticator's error URI and message.
#[test]
fn bad_ticket_aborts_with_authenticator_error() {
    let r = report();
    assert_eq!(r["bad"]["joined"], false, "{r}");
    assert_eq!(r["bad"]["reason"], "com.example.invalid_ticket", "{r}");
    assert_eq!(r["bad"]["message"], "bad ticket", "{r}");
}

/// An authenticator procedure nobody registered: refused at once (not a
/// hang until a timeout) with `no_such_procedure`.
#[test]
fn unregistered_authenticator_refuses_promptly() {
    let r = report();
    assert_eq!(r["nobody"]["joined"], false, "{r}");
    assert_eq!(r["nobody"]["reason"], "wamp.error.no_such_procedure", "{r}");
    let elapsed = r["nobody"]["elapsed"].as_f64().unwrap_or(f64::MAX);
    assert!(elapsed < 5.0, "refusal took {elapsed}s: {r}");
}

/// After the authenticator left, a good ticket is refused promptly too.
#[test]
fn departed_authenticator_refuses_promptly() {
    let r = report();
    assert_eq!(r["gone"]["joined"], false, "{r}");
    assert_eq!(r["gone"]["reason"], "wamp.error.no_such_procedure", "{r}");
    let elapsed = r["gone"]["elapsed"].as_f64().unwrap_or(f64::MAX);
    assert!(elapsed < 5.0, "refusal took {elapsed}s: {r}");
    assert_eq!(r["calls_after_gone"], 0, "{r}");
}

/// The same scenario with the ticket transports on a **proxy worker**: the
/// proxy calls the authenticator registered on the router (through its
/// proxy link to `authrealm`), then forwards the admitted session to the
/// router worker of `realm1`.
fn proxy_report() -> &'static Value {
    static REPORT: OnceLock<Result<Report, String>> = OnceLock::new();
    let rep = once_or_fail(&REPORT, || {
        let (process, ports, _) = start_in_dir_with_ports(&temp_dir("dynauth-proxy"), 3, |p| {
            let link = |realm: &str| {
                json!({"realm": realm, "transport": {"type": "rawsocket",
                    "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": p[2]}}})
            };
            json!({
                "version": 2,
                "workers": [
                    {
                        "type": "router",
                        "options": {"shards": 2},
                        "realms": [
                            {"name": "realm1", "options": {"home_shard": 1}, "roles": [{"name": "user", "permissions": [{
                                "uri": "", "match": "prefix",
                                "allow": {"call": true, "register": true, "publish": true, "subscribe": true}
                            }]}]},
                            {"name": "authrealm", "options": {"home_shard": 0}, "roles": [{"name": "authenticator", "permissions": [{
                                "uri": "com.example.", "match": "prefix", "allow": {"register": true}
                            }]}]}
                        ],
                        "transports": [
                            rawsocket_tcp_auth(p[2], json!({"anonymous": {"type": "static", "role": "authenticator"}})),
                        ]
                    },
                    {
                        "type": "proxy",
                        "options": {"shards": 2},
                        "routes": {"realm1": {"user": "r1"}, "authrealm": {"authenticator": "a1"}},
                        "connections": {"r1": link("realm1"), "a1": link("authrealm")},
                        "transports": [
                            websocket_transport_auth(p[0], ticket_auth("com.example.authenticate")),
                            websocket_transport_auth(p[1], ticket_auth("com.example.nobody")),
                        ]
                    }
                ]
            })
        });
        run_scenario(process, &ports)
    });
    &rep.r
}

/// Through a proxy: good tickets join with the authenticator's role, extra
/// and (renamed) authid, also as the router sees them (meta API); a bad
/// ticket gets the authenticator's error; an unregistered authenticator
/// refuses promptly.
#[test]
fn proxy_calls_the_authenticator_on_the_router() {
    let r = proxy_report();
    for (i, g) in r["good"].as_array().expect("good list").iter().enumerate() {
        let authid = format!("user{i}");
        assert_eq!(g["joined"], true, "{g}");
        assert_eq!(g["authid"], authid.as_str(), "{g}");
        assert_eq!(g["authrole"], "user", "{g}");
        assert_eq!(g["authmethod"], "ticket", "{g}");
        assert_eq!(g["authextra"]["hello"], authid.as_str(), "{g}");
        assert_eq!(g["meta_authid"], authid.as_str(), "the router sees the proxy's identity: {g}");
    }
    assert_eq!(r["calls"][0], json!(["realm1", "user0", "ticket", "good-user0"]), "{r}");
    assert_eq!(r["renamed"]["authid"], "renamed-by-authenticator", "{r}");
    assert_eq!(r["renamed"]["meta_authid"], "renamed-by-authenticator", "{r}");
    assert_eq!(r["bad"]["joined"], false, "{r}");
    assert_eq!(r["bad"]["reason"], "com.example.invalid_ticket", "{r}");
    assert_eq!(r["bad"]["message"], "bad ticket", "{r}");
    assert_eq!(r["nobody"]["reason"], "wamp.error.no_such_procedure", "{r}");
    assert!(r["nobody"]["elapsed"].as_f64().unwrap_or(f64::MAX) < 5.0, "{r}");
    assert_eq!(r["gone"]["reason"], "wamp.error.no_such_procedure", "{r}");
}
