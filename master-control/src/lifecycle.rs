//! Lifecycle events of the worker and node APIs, and how the master
//! forwards them.
//!
//! A worker announces what its API starts and stops, with Crossbar's
//! topics under its own prefix
//! (`crossbarfabriccenter.node.<authid>.worker.<id>.on_router_realm_started`,
//! `…on_proxy_route_stopped`, ...): a `…_starting` / `…_stopping` event
//! with the object's ids before the change, and `…_started` / `…_stopped`
//! with the call's result once it succeeded (nothing more if it failed).
//! The node does the same for the workers it starts and stops
//! (`crossbarfabriccenter.node.<authid>.on_router_starting`, ...).
//!
//! The master re-publishes them on the management realm as
//! `crossbarfabriccenter.remote.<api>.<topic>(node_authid, [worker_id,]
//! *args)`, as Crossbar's master does (its `RemoteApi.EVENTS`), when the
//! publisher is the node itself. Everything here is pure: tables and
//! functions over values.

use wamp_proto::{Dict, Value};

/// Whose events: the node controller's or a worker's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Node,
    Worker,
}

/// The events the master forwards: (remote API, level, topic).
pub const FORWARDED: [(&str, Level, &str); 40] = [
    ("router", Level::Worker, "on_router_realm_starting"),
    ("router", Level::Worker, "on_router_realm_started"),
    ("router", Level::Worker, "on_router_realm_stopping"),
    ("router", Level::Worker, "on_router_realm_stopped"),
    ("router", Level::Worker, "on_router_realm_role_starting"),
    ("router", Level::Worker, "on_router_realm_role_started"),
    ("router", Level::Worker, "on_router_realm_role_stopping"),
    ("router", Level::Worker, "on_router_realm_role_stopped"),
    ("router", Level::Worker, "on_router_transport_starting"),
    ("router", Level::Worker, "on_router_transport_started"),
    ("router", Level::Worker, "on_router_transport_stopping"),
    ("router", Level::Worker, "on_router_transport_stopped"),
    ("router", Level::Worker, "on_web_transport_service_starting"),
    ("router", Level::Worker, "on_web_transport_service_started"),
    ("router", Level::Worker, "on_web_transport_service_stopping"),
    ("router", Level::Worker, "on_web_transport_service_stopped"),
    ("router", Level::Worker, "on_router_realm_link_started"),
    ("router", Level::Worker, "on_router_realm_link_stopped"),
    ("proxy", Level::Worker, "on_proxy_transport_starting"),
    ("proxy", Level::Worker, "on_proxy_transport_started"),
    ("proxy", Level::Worker, "on_proxy_transport_stopping"),
    ("proxy", Level::Worker, "on_proxy_transport_stopped"),
    ("proxy", Level::Worker, "on_proxy_connection_starting"),
    ("proxy", Level::Worker, "on_proxy_connection_started"),
    ("proxy", Level::Worker, "on_proxy_connection_stopping"),
    ("proxy", Level::Worker, "on_proxy_connection_stopped"),
    ("proxy", Level::Worker, "on_proxy_route_starting"),
    ("proxy", Level::Worker, "on_proxy_route_started"),
    ("proxy", Level::Worker, "on_proxy_route_stopping"),
    ("proxy", Level::Worker, "on_proxy_route_stopped"),
    ("tracing", Level::Worker, "on_trace_started"),
    ("tracing", Level::Worker, "on_trace_stopped"),
    ("tracing", Level::Worker, "on_trace_data"),
    ("worker", Level::Worker, "on_worker_log"),
    ("node", Level::Node, "on_router_starting"),
    ("node", Level::Node, "on_router_started"),
    ("node", Level::Node, "on_proxy_starting"),
    ("node", Level::Node, "on_proxy_started"),
    ("node", Level::Node, "on_worker_stopping"),
    ("node", Level::Node, "on_worker_stopped"),
];

/// The wildcard subscription of a forwarded event
/// (`crossbarfabriccenter.node..worker..<topic>`).
pub fn pattern(level: Level, topic: &str) -> String {
    match level {
        Level::Node => format!("crossbarfabriccenter.node..{topic}"),
        Level::Worker => format!("crossbarfabriccenter.node..worker..{topic}"),
    }
}

/// The management event for a node event on `topic` published by
/// `publisher` (the disclosed authid): `None` if it is not forwarded, or
/// the publisher is not the node the topic names (no node speaks for
/// another).
pub fn forward(topic: &str, publisher: Option<&str>, args: &[Value]) -> Option<(String, Vec<Value>)> {
    let parts: Vec<&str> = topic.split('.').collect();
    let (authid, worker, event) = match parts.as_slice() {
        ["crossbarfabriccenter", "node", authid, "worker", worker, event] => (*authid, Some(*worker), *event),
        ["crossbarfabriccenter", "node", authid, event] => (*authid, None, *event),
        _ => return None,
    };
    let level = if worker.is_some() { Level::Worker } else { Level::Node };
    let (api, _, _) = FORWARDED.iter().find(|(_, l, t)| *l == level && *t == event)?;
    if publisher != Some(authid) {
        return None;
    }
    let mut a = vec![Value::Str(authid.to_owned())];
    if let Some(w) = worker {
        a.push(Value::Str(w.to_owned()));
    }
    a.extend(args.iter().cloned());
    Some((format!("crossbarfabriccenter.remote.{api}.{event}"), a))
}

fn dict(pairs: &[(&str, Value)]) -> Value {
    let mut d = Dict::new();
    for (k, v) in pairs {
        d.insert((*k).into(), v.clone());
    }
    Value::Dict(d)
}

fn arg(args: &[Value], i: usize) -> Value {
    args.get(i).cloned().unwrap_or(Value::Null)
}

/// The objects a worker API call starts or stops: (topic stem, the ids of
/// the `…_starting`/`…_stopping` event, starting?), or `None` for a call
/// that changes nothing.
fn changes(proc: &str, args: &[Value]) -> Option<(&'static str, Value, bool)> {
    let id = |k: &str, i: usize| dict(&[(k, arg(args, i))]);
    let realm_and = |k: &str| dict(&[("realm_id", arg(args, 0)), (k, arg(args, 1))]);
    Some(match proc {
        "start_router_realm" => ("on_router_realm", id("id", 0), true),
        "stop_router_realm" => ("on_router_realm", id("id", 0), false),
        "start_router_realm_role" => ("on_router_realm_role", realm_and("id"), true),
        "stop_router_realm_role" => ("on_router_realm_role", realm_and("id"), false),
        "start_router_transport" => ("on_router_transport", id("id", 0), true),
        "stop_router_transport" => ("on_router_transport", id("id", 0), false),
        "start_router_realm_link" => ("on_router_realm_link", realm_and("id"), true),
        "stop_router_realm_link" => ("on_router_realm_link", realm_and("id"), false),
        "start_web_transport_service" | "stop_web_transport_service" => (
            "on_web_transport_service",
            dict(&[("transport_id", arg(args, 0)), ("path", arg(args, 1))]),
            proc.starts_with("start"),
        ),
        "start_proxy_transport" => ("on_proxy_transport", id("id", 0), true),
        "stop_proxy_transport" => ("on_proxy_transport", id("id", 0), false),
        "start_proxy_connection" => ("on_proxy_connection", id("id", 0), true),
        "stop_proxy_connection" => ("on_proxy_connection", id("id", 0), false),
        "start_proxy_realm_route" => ("on_proxy_route", id("realm", 0), true),
        "stop_proxy_realm_route" => ("on_proxy_route", dict(&[("realm", arg(args, 0)), ("id", arg(args, 1))]), false),
        _ => return None,
    })
}

/// The event announcing that `proc(args)` is about to change something
/// (`…_starting` / `…_stopping` with the ids), if it changes anything.
pub fn before(proc: &str, args: &[Value]) -> Option<(String, Vec<Value>)> {
    let (stem, ids, start) = changes(proc, args)?;
    // Crossbar announces links only once they are up or down.
    if stem == "on_router_realm_link" {
        return None;
    }
    Some((format!("{stem}_{}", if start { "starting" } else { "stopping" }), vec![ids]))
}

/// The events once `proc(args)` succeeded with `result`: `…_started` /
/// `…_stopped` with the result (and for realms Crossbar's older
/// `on_realm_started(realm_id)` / `on_realm_stopped(realm_id)`).
pub fn after(proc: &str, args: &[Value], result: &Value) -> Vec<(String, Vec<Value>)> {
    let Some((stem, _, start)) = changes(proc, args) else { return Vec::new() };
    let mut out = vec![(format!("{stem}_{}", if start { "started" } else { "stopped" }), vec![result.clone()])];
    if stem == "on_router_realm" {
        out.push((format!("on_realm_{}", if start { "started" } else { "stopped" }), vec![arg(args, 0)]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn worker_calls_announce_their_changes() {
        let args = [s("rlm_1"), Value::Dict(Dict::new())];
        let (t, a) = before("start_router_realm", &args).expect("starting");
        assert_eq!(t, "on_router_realm_starting");
        assert_eq!(a, vec![dict(&[("id", s("rlm_1"))])]);
        let ev = after("start_router_realm", &args, &s("result"));
        let topics: Vec<&str> = ev.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(topics, ["on_router_realm_started", "on_realm_started"]);
        assert_eq!(ev[0].1, vec![s("result")]);
        assert_eq!(ev[1].1, vec![s("rlm_1")]);
        let (t, a) = before("stop_web_transport_service", &[s("web1"), s("info")]).expect("stopping");
        assert_eq!(t, "on_web_transport_service_stopping");
        assert_eq!(a, vec![dict(&[("transport_id", s("web1")), ("path", s("info"))])]);
        assert!(before("get_router_realms", &[]).is_none());
        assert!(after("get_router_realms", &[], &Value::Null).is_empty());
        assert!(before("start_router_realm_link", &args).is_none(), "links: only started/stopped");
        assert_eq!(after("stop_router_realm_link", &args, &Value::Null)[0].0, "on_router_realm_link_stopped");
        // Every event announced is one the master forwards (or on_realm_*).
        for p in [
            "start_router_realm",
            "stop_router_realm_role",
            "start_router_transport",
            "start_web_transport_service",
            "stop_proxy_realm_route",
            "start_proxy_connection",
            "stop_proxy_transport",
        ] {
            let mut all: Vec<String> = before(p, &args).into_iter().map(|e| e.0).collect();
            all.extend(after(p, &args, &Value::Null).into_iter().map(|e| e.0));
            for t in all.iter().filter(|t| !t.starts_with("on_realm_")) {
                assert!(FORWARDED.iter().any(|(_, l, f)| *l == Level::Worker && f == t), "{t} is forwarded");
            }
        }
    }

    #[test]
    fn the_master_forwards_a_nodes_own_events_only() {
        let t = "crossbarfabriccenter.node.node1.worker.w1.on_router_realm_started";
        let (topic, args) = forward(t, Some("node1"), &[s("x")]).expect("forwarded");
        assert_eq!(topic, "crossbarfabriccenter.remote.router.on_router_realm_started");
        assert_eq!(args, vec![s("node1"), s("w1"), s("x")]);
        assert!(forward(t, Some("node2"), &[]).is_none(), "another node's claim");
        assert!(forward(t, None, &[]).is_none(), "no disclosed publisher");
        let (topic, args) =
            forward("crossbarfabriccenter.node.node1.on_proxy_started", Some("node1"), &[]).expect("node event");
        assert_eq!(topic, "crossbarfabriccenter.remote.node.on_proxy_started");
        assert_eq!(args, vec![s("node1")]);
        assert!(forward("crossbarfabriccenter.node.node1.worker.w1.on_process_stats", Some("node1"), &[]).is_none());
        assert!(forward("crossbarfabriccenter.node.node1.on_router_realm_started", Some("node1"), &[]).is_none());
        assert_eq!(pattern(Level::Worker, "on_x"), "crossbarfabriccenter.node..worker..on_x");
        assert_eq!(pattern(Level::Node, "on_x"), "crossbarfabriccenter.node..on_x");
    }
}
