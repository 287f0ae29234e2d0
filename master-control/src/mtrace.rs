//! Management-realm traces (Crossbar's `MrealmController` tracing API):
//! one trace over several router workers on several nodes, driven from the
//! master with `crossbarfabriccenter.mrealm.create_trace / start_trace /
//! stop_trace / delete_trace / get_traces / get_trace / get_trace_data`.
//!
//! A trace names its `traced_workers` (`[[node, worker_id], ...]`, the node
//! by oid or authid), the worker trace options, and optionally the roles
//! that may read it (`eligible_reader_roles`, `exclude_reader_roles`).
//! Starting it starts a worker trace of the same id on each worker
//! (stopping one left running first); the answer lists what started and
//! what failed, as Crossbar's does. `get_trace_data` collects each
//! worker's records. Events go to `crossbarfabriccenter.mrealm.tracing.on_trace_*`,
//! to the eligible roles only.
//!
//! Traces live in the master's memory, as in Crossbar (a restarted master
//! has none; the worker traces keep running until stopped or their
//! duration ends). The node calls are made through [`NodeCalls`], so this
//! module is pure and tested with a fake.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::{json, Value as Json};
use wamp_proto::{Dict, Value};

use crate::error::ApiError;
use crate::value::{from_json, to_json, Args};

/// The procedures (full URIs), registered on every management realm.
pub const PROCEDURES: [&str; 7] = [
    "crossbarfabriccenter.mrealm.get_traces",
    "crossbarfabriccenter.mrealm.get_trace",
    "crossbarfabriccenter.mrealm.create_trace",
    "crossbarfabriccenter.mrealm.start_trace",
    "crossbarfabriccenter.mrealm.stop_trace",
    "crossbarfabriccenter.mrealm.delete_trace",
    "crossbarfabriccenter.mrealm.get_trace_data",
];

/// At most this many traces per management realm.
pub const MAX_TRACES: usize = 64;
/// At most this many workers per trace.
pub const MAX_WORKERS: usize = 256;

/// Calls into the nodes: `proc` of worker `worker` on node `authid`
/// (`crossbarfabriccenter.node.<authid>.worker.<worker>.<proc>`).
pub trait NodeCalls {
    fn call(&mut self, authid: &str, worker: &str, proc: &str, args: Vec<Value>) -> Result<Value, String>;
}

/// An event to publish, to `eligible` roles only (if given) and not to
/// `exclude` roles.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceEvent {
    pub topic: String,
    pub args: Vec<Value>,
    pub eligible: Option<Vec<String>>,
    pub exclude: Option<Vec<String>>,
}

struct MTrace {
    /// (node as given, node authid, worker id).
    workers: Vec<(String, String, String)>,
    options: Dict,
    eligible: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
    status: &'static str,
    created: SystemTime,
}

/// The traces of one management realm.
#[derive(Default)]
pub struct MrealmTraces {
    traces: BTreeMap<String, MTrace>,
}

fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn roles(a: &Args, pos: usize, name: &str) -> Result<Option<Vec<String>>, ApiError> {
    match a.get(pos, name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::List(l)) => l
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .map(Some)
            .ok_or_else(|| ApiError::invalid_argument(format!("{name} must be a list of role names"))),
        Some(_) => Err(ApiError::invalid_argument(format!("{name} must be a list of role names"))),
    }
}

impl MTrace {
    fn readable_by(&self, role: &str) -> bool {
        self.eligible.as_ref().is_none_or(|e| e.iter().any(|r| r == role))
            && !self.exclude.as_ref().is_some_and(|e| e.iter().any(|r| r == role))
    }

    fn marshal(&self, id: &str) -> Value {
        let workers: Vec<Json> = self.workers.iter().map(|(n, _, w)| json!([n, w])).collect();
        let mut v = json!({
            "id": id,
            "traced_workers": workers,
            "trace_options": to_json(&Value::Dict(self.options.clone())),
            "eligible_reader_roles": self.eligible,
            "exclude_reader_roles": self.exclude,
            "status": self.status,
            "created": iso(self.created),
        });
        if v["trace_options"].is_null() {
            v["trace_options"] = json!({});
        }
        from_json(&v)
    }
}

impl MrealmTraces {
    fn event(&self, id: &str, topic: &str, mut args: Vec<Value>) -> TraceEvent {
        let t = self.traces.get(id);
        args.insert(0, Value::Str(id.to_owned()));
        TraceEvent {
            topic: format!("crossbarfabriccenter.mrealm.tracing.{topic}"),
            args,
            eligible: t.and_then(|t| t.eligible.clone()),
            exclude: t.and_then(|t| t.exclude.clone()),
        }
    }

    /// The trace `id`, if `role` may read it (others see no trace at all).
    fn readable(&self, id: &str, role: &str) -> Result<&MTrace, ApiError> {
        self.traces
            .get(id)
            .filter(|t| t.readable_by(role))
            .ok_or_else(|| ApiError::no_such_object(format!("no trace with ID '{id}'")))
    }

    /// A worker's batch of trace records (`crossbarfabriccenter.remote.tracing.on_trace_data(node_authid,
    /// worker_id, trace_id, period, records)`, as the master forwards it):
    /// the `mrealm.tracing.on_trace_data(node_authid, worker_id, trace_id,
    /// period, records)` to publish if it belongs to a running trace of
    /// this realm on that worker (to its reader roles), else `None`.
    pub fn trace_data(&self, args: &[Value]) -> Option<TraceEvent> {
        let (Some(authid), Some(worker), Some(id)) =
            (args.first()?.as_str(), args.get(1)?.as_str(), args.get(2)?.as_str())
        else {
            return None;
        };
        let t = self.traces.get(id).filter(|t| t.status == "running")?;
        if !t.workers.iter().any(|(_, a, w)| a == authid && w == worker) {
            return None;
        }
        Some(TraceEvent {
            topic: "crossbarfabriccenter.mrealm.tracing.on_trace_data".into(),
            args: args.to_vec(),
            eligible: t.eligible.clone(),
            exclude: t.exclude.clone(),
        })
    }

    /// Handles `proc` (a full URI of [`PROCEDURES`]) for a caller with
    /// management role `role` (already allowed to call it). `resolve` maps
    /// a node (oid or authid) of this management realm to its authid.
    #[allow(clippy::too_many_arguments)]
    pub fn handle(
        &mut self,
        role: &str,
        proc: &str,
        args: &[Value],
        kwargs: &Dict,
        resolve: &dyn Fn(&str) -> Option<String>,
        nodes: &mut dyn NodeCalls,
        now: SystemTime,
    ) -> (Result<Value, ApiError>, Vec<TraceEvent>) {
        let a = Args { procedure: proc, args, kwargs };
        let name = proc.rsplit('.').next().unwrap_or(proc);
        let mut events = Vec::new();
        let r = self.dispatch(role, name, &a, resolve, nodes, now, &mut events);
        (r, events)
    }

    #[allow(clippy::too_many_arguments)]
    fn dispatch(
        &mut self,
        role: &str,
        name: &str,
        a: &Args,
        resolve: &dyn Fn(&str) -> Option<String>,
        nodes: &mut dyn NodeCalls,
        now: SystemTime,
        events: &mut Vec<TraceEvent>,
    ) -> Result<Value, ApiError> {
        match name {
            "get_traces" => Ok(Value::List(
                self.traces.iter().filter(|(_, t)| t.readable_by(role)).map(|(id, _)| Value::Str(id.clone())).collect(),
            )),
            // Crossbar answers null (silently) for a trace the caller may not read.
            "get_trace" => {
                let id = a.str(0, "trace_id")?;
                Ok(self.traces.get(id).filter(|t| t.readable_by(role)).map_or(Value::Null, |t| t.marshal(id)))
            }
            "create_trace" => {
                let id = a.str(0, "trace_id")?;
                if id.is_empty() || id.len() > 128 || id.contains(char::is_whitespace) {
                    return Err(ApiError::invalid_argument("trace_id must be 1 to 128 characters without spaces"));
                }
                if self.traces.contains_key(id) {
                    return Err(ApiError::already_exists(format!("a trace with ID '{id}' exists")));
                }
                if self.traces.len() >= MAX_TRACES {
                    return Err(ApiError::new(
                        "crossbar.error.cannot_start",
                        format!("at most {MAX_TRACES} traces per management realm; delete one first"),
                    ));
                }
                let list = match a.get(1, "traced_workers") {
                    Some(Value::List(l)) if !l.is_empty() && l.len() <= MAX_WORKERS => l,
                    _ => {
                        return Err(ApiError::invalid_argument(format!(
                            "traced_workers must be a list of 1 to {MAX_WORKERS} [node, worker_id] pairs"
                        )))
                    }
                };
                let mut workers = Vec::new();
                for p in list {
                    let pair = p.as_list().filter(|l| l.len() == 2);
                    let (Some(node), Some(worker)) =
                        (pair.and_then(|l| l[0].as_str()), pair.and_then(|l| l[1].as_str()))
                    else {
                        return Err(ApiError::invalid_argument("traced_workers: each entry is [node, worker_id]"));
                    };
                    let authid = resolve(node).ok_or_else(|| {
                        ApiError::no_such_object(format!("no node '{node}' in this management realm"))
                    })?;
                    if worker.is_empty() || worker.contains('.') {
                        return Err(ApiError::invalid_argument(format!("traced_workers: bad worker id '{worker}'")));
                    }
                    if !workers.iter().any(|(_, a, w)| a == &authid && w == worker) {
                        workers.push((node.to_owned(), authid, worker.to_owned()));
                    }
                }
                let options = a.opt_dict(2, "trace_options")?.cloned().unwrap_or_default();
                let eligible = roles(a, 3, "eligible_reader_roles")?;
                let exclude = roles(a, 4, "exclude_reader_roles")?;
                let t = MTrace { workers, options, eligible, exclude, status: "stopped", created: now };
                let v = t.marshal(id);
                self.traces.insert(id.to_owned(), t);
                events.push(self.event(id, "on_trace_created", vec![v.clone()]));
                Ok(v)
            }
            "start_trace" => {
                let id = a.str(0, "trace_id")?.to_owned();
                let t = self.readable(&id, role)?;
                if t.status != "stopped" {
                    return Err(ApiError::new(
                        "crossbar.error.already_running",
                        format!("trace '{id}' is {} (stop it first)", t.status),
                    ));
                }
                let (workers, options) = (t.workers.clone(), t.options.clone());
                events.push(self.event(&id, "on_trace_starting", vec![]));
                let (mut started, mut failed) = (Vec::new(), Vec::new());
                for (node, authid, worker) in &workers {
                    // A worker trace of this id left running (by a master that restarted) is stopped first.
                    let r = stop_if_running(nodes, authid, worker, &id).and_then(|()| {
                        nodes.call(
                            authid,
                            worker,
                            "start_trace",
                            vec![Value::Str(id.clone()), Value::Dict(options.clone())],
                        )
                    });
                    match r {
                        Ok(v) => started.push(v),
                        Err(e) => failed.push(failure(node, worker, &e)),
                    }
                }
                if let Some(t) = self.traces.get_mut(&id) {
                    t.status = "running";
                }
                let out = from_json(&json!({"started": [], "failed": failed}));
                let out = with_list(out, "started", started);
                events.push(self.event(&id, "on_trace_started", vec![out.clone()]));
                Ok(out)
            }
            "stop_trace" => {
                let id = a.str(0, "trace_id")?.to_owned();
                let t = self.readable(&id, role)?;
                if t.status != "running" && t.status != "stopping_failed" {
                    return Err(ApiError::new("crossbar.error.not_running", format!("trace '{id}' is {}", t.status)));
                }
                let workers = t.workers.clone();
                events.push(self.event(&id, "on_trace_stopping", vec![]));
                let (mut stopped, mut failed) = (Vec::new(), Vec::new());
                for (node, authid, worker) in &workers {
                    match running(nodes, authid, worker, &id) {
                        Ok(true) => match nodes.call(authid, worker, "stop_trace", vec![Value::Str(id.clone())]) {
                            Ok(v) => stopped.push(v),
                            Err(e) => failed.push(failure(node, worker, &e)),
                        },
                        Ok(false) => {}
                        Err(e) => failed.push(failure(node, worker, &e)),
                    }
                }
                if let Some(t) = self.traces.get_mut(&id) {
                    t.status = if failed.is_empty() { "stopped" } else { "stopping_failed" };
                }
                let out = from_json(&json!({"stopped": [], "failed": failed}));
                let out = with_list(out, "stopped", stopped);
                events.push(self.event(&id, "on_trace_stopped", vec![out.clone()]));
                Ok(out)
            }
            "delete_trace" => {
                let id = a.str(0, "trace_id")?.to_owned();
                let t = self.readable(&id, role)?;
                if t.status != "stopped" && t.status != "stopping_failed" {
                    return Err(ApiError::new(
                        "crossbar.error.cannot_delete",
                        format!("trace '{id}' is {} (stop it first)", t.status),
                    ));
                }
                let v = t.marshal(&id);
                events.push(self.event(&id, "on_trace_deleted", vec![v.clone()]));
                self.traces.remove(&id);
                Ok(v)
            }
            "get_trace_data" => {
                let id = a.str(0, "trace_id")?.to_owned();
                let limit = match a.get(1, "limit") {
                    None | Some(Value::Null) => Value::Null,
                    Some(v @ Value::UInt(_)) => v.clone(),
                    Some(_) => return Err(ApiError::invalid_argument("limit must be a non-negative integer")),
                };
                let t = self.readable(&id, role)?;
                let mut out: BTreeMap<String, BTreeMap<String, Json>> = BTreeMap::new();
                for (node, authid, worker) in &t.workers {
                    let mut args = vec![Value::Str(id.clone()), Value::UInt(0), Value::Null];
                    if limit != Value::Null {
                        args.push(limit.clone());
                    }
                    let entry = match nodes.call(authid, worker, "get_trace_data", args) {
                        Ok(data) => json!({"success": true, "data": to_json(&data)}),
                        Err(e) => json!({"success": false, "data": e}),
                    };
                    out.entry(node.clone()).or_default().insert(worker.clone(), entry);
                }
                Ok(from_json(&json!(out)))
            }
            _ => Err(ApiError::new("wamp.error.no_such_procedure", format!("no trace procedure '{name}'"))),
        }
    }
}

fn with_list(mut v: Value, key: &str, items: Vec<Value>) -> Value {
    if let Value::Dict(d) = &mut v {
        d.insert(key.into(), Value::List(items));
    }
    v
}

fn failure(node: &str, worker: &str, error: &str) -> Json {
    json!({"node_id": node, "worker_id": worker, "error": error})
}

/// Is worker trace `id` running on `worker`?
fn running(nodes: &mut dyn NodeCalls, authid: &str, worker: &str, id: &str) -> Result<bool, String> {
    let traces = nodes.call(authid, worker, "get_traces", vec![])?;
    if !traces.as_list().is_some_and(|l| l.iter().any(|v| v.as_str() == Some(id))) {
        return Ok(false);
    }
    let t = nodes.call(authid, worker, "get_trace", vec![Value::Str(id.to_owned())])?;
    Ok(t.as_dict().and_then(|d| d.get("status")).and_then(Value::as_str) == Some("running"))
}

fn stop_if_running(nodes: &mut dyn NodeCalls, authid: &str, worker: &str, id: &str) -> Result<(), String> {
    if running(nodes, authid, worker, id)? {
        nodes.call(authid, worker, "stop_trace", vec![Value::Str(id.to_owned())])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::{Duration, UNIX_EPOCH};

    /// Two nodes; node2's worker w9 does not exist.
    #[derive(Default)]
    struct Fake {
        running: BTreeSet<(String, String, String)>,
        calls: Vec<String>,
    }

    impl NodeCalls for Fake {
        fn call(&mut self, authid: &str, worker: &str, proc: &str, args: Vec<Value>) -> Result<Value, String> {
            self.calls.push(format!("{authid}/{worker}/{proc}"));
            if worker == "w9" {
                return Err("crossbar.error.no_such_worker: no worker with ID 'w9'".into());
            }
            let id = args.first().and_then(Value::as_str).unwrap_or("").to_owned();
            let key = (authid.to_owned(), worker.to_owned(), id.clone());
            let s = |x: &str| Value::Str(x.into());
            match proc {
                "get_traces" => Ok(Value::List(self.running.iter().map(|(_, _, i)| s(i)).collect())),
                "get_trace" => {
                    Ok(from_json(&json!({"status": if self.running.contains(&key) { "running" } else { "stopped" }})))
                }
                "start_trace" => {
                    self.running.insert(key);
                    Ok(from_json(&json!({"id": id, "node_id": authid, "worker_id": worker})))
                }
                "stop_trace" => {
                    self.running.remove(&key);
                    Ok(from_json(&json!({"id": id, "status": "stopped"})))
                }
                "get_trace_data" => Ok(Value::List(vec![s("record")])),
                _ => Err("no such procedure".into()),
            }
        }
    }

    fn resolve(n: &str) -> Option<String> {
        match n {
            "oid-1" | "node1" => Some("node1".into()),
            "oid-2" => Some("node2".into()),
            _ => None,
        }
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn pair(n: &str, w: &str) -> Value {
        Value::List(vec![s(n), s(w)])
    }

    #[test]
    fn a_trace_over_several_workers_from_create_to_delete() {
        let mut t = MrealmTraces::default();
        let mut f = Fake::default();
        let now = UNIX_EPOCH + Duration::from_secs(100);
        let call = |t: &mut MrealmTraces, f: &mut Fake, role: &str, p: &str, args: Vec<Value>| {
            t.handle(role, &format!("crossbarfabriccenter.mrealm.{p}"), &args, &Dict::new(), &resolve, f, now)
        };
        let workers = Value::List(vec![pair("oid-1", "w1"), pair("node1", "w2"), pair("oid-2", "w9")]);
        let admins = Value::List(vec![s("admin"), s("owner")]);
        let (r, ev) = call(&mut t, &mut f, "owner", "create_trace", vec![s("t1"), workers, Value::Null, admins]);
        let created = r.expect("created");
        assert_eq!(created.as_dict().and_then(|d| d.get("status")), Some(&s("stopped")));
        assert_eq!(ev[0].topic, "crossbarfabriccenter.mrealm.tracing.on_trace_created");
        assert_eq!(ev[0].eligible, Some(vec!["admin".into(), "owner".into()]));
        // Readers outside the eligible roles see no trace.
        assert_eq!(call(&mut t, &mut f, "guest", "get_traces", vec![]).0, Ok(Value::List(vec![])));
        assert_eq!(call(&mut t, &mut f, "guest", "get_trace", vec![s("t1")]).0, Ok(Value::Null));
        let e = call(&mut t, &mut f, "operator", "start_trace", vec![s("t1")]).0.unwrap_err();
        assert_eq!(e.uri, "crossbar.error.no_such_object");
        assert_eq!(call(&mut t, &mut f, "admin", "get_traces", vec![]).0, Ok(Value::List(vec![s("t1")])));

        // A worker trace left running by an earlier master is stopped first.
        f.running.insert(("node1".into(), "w1".into(), "t1".into()));
        let (r, ev) = call(&mut t, &mut f, "owner", "start_trace", vec![s("t1")]);
        let st = r.expect("started");
        let d = st.as_dict().expect("dict");
        assert_eq!(d.get("started").and_then(Value::as_list).map(Vec::len), Some(2));
        let failed = d.get("failed").and_then(Value::as_list).expect("failed");
        assert_eq!(failed.len(), 1, "w9 does not exist: {failed:?}");
        assert_eq!(failed[0].as_dict().and_then(|d| d.get("node_id")), Some(&s("oid-2")));
        assert!(f.calls.contains(&"node1/w1/stop_trace".to_owned()), "{:?}", f.calls);
        let topics: Vec<&str> = ev.iter().map(|e| e.topic.as_str()).collect();
        assert_eq!(
            topics,
            [
                "crossbarfabriccenter.mrealm.tracing.on_trace_starting",
                "crossbarfabriccenter.mrealm.tracing.on_trace_started"
            ]
        );
        assert_eq!(f.running.len(), 2);
        // Batches of its workers are re-published (to its readers); others are not.
        let batch = |n: &str, w: &str, id: &str| vec![s(n), s(w), s(id), Value::Dict(Dict::new()), Value::List(vec![])];
        let ev = t.trace_data(&batch("node1", "w1", "t1")).expect("a traced worker");
        assert_eq!(ev.topic, "crossbarfabriccenter.mrealm.tracing.on_trace_data");
        assert_eq!(ev.eligible, Some(vec!["admin".into(), "owner".into()]));
        assert!(t.trace_data(&batch("node2", "w1", "t1")).is_none(), "not one of its workers");
        assert!(t.trace_data(&batch("node1", "w1", "other")).is_none(), "no such trace");
        assert!(t.trace_data(&[s("node1")]).is_none(), "malformed");
        let e = call(&mut t, &mut f, "owner", "start_trace", vec![s("t1")]).0.unwrap_err();
        assert_eq!(e.uri, "crossbar.error.already_running");
        let e = call(&mut t, &mut f, "owner", "delete_trace", vec![s("t1")]).0.unwrap_err();
        assert_eq!(e.uri, "crossbar.error.cannot_delete");

        let data = call(&mut t, &mut f, "owner", "get_trace_data", vec![s("t1"), Value::UInt(5)]).0.expect("data");
        let j = to_json(&data);
        assert_eq!(j["oid-1"]["w1"], json!({"success": true, "data": ["record"]}));
        assert_eq!(j["node1"]["w2"]["success"], true);
        assert_eq!(j["oid-2"]["w9"]["success"], false);

        // Stopping: w9 fails again, so the trace is stopping_failed (and may be stopped again, or deleted).
        let st = call(&mut t, &mut f, "owner", "stop_trace", vec![s("t1")]).0.expect("stopped");
        assert_eq!(st.as_dict().and_then(|d| d.get("stopped")).and_then(Value::as_list).map(Vec::len), Some(2));
        assert!(f.running.is_empty());
        let tr = call(&mut t, &mut f, "owner", "get_trace", vec![s("t1")]).0.expect("trace");
        assert_eq!(tr.as_dict().and_then(|d| d.get("status")), Some(&s("stopping_failed")));
        let (r, ev) = call(&mut t, &mut f, "owner", "delete_trace", vec![s("t1")]);
        assert!(r.is_ok());
        assert_eq!(ev[0].topic, "crossbarfabriccenter.mrealm.tracing.on_trace_deleted");
        assert_eq!(call(&mut t, &mut f, "owner", "get_traces", vec![]).0, Ok(Value::List(vec![])));
    }

    #[test]
    fn bad_input_is_refused_and_changes_nothing() {
        let mut t = MrealmTraces::default();
        let mut f = Fake::default();
        let now = UNIX_EPOCH;
        let mut create = |args: Vec<Value>| {
            let (r, ev) = t.handle(
                "owner",
                "crossbarfabriccenter.mrealm.create_trace",
                &args,
                &Dict::new(),
                &resolve,
                &mut f,
                now,
            );
            assert!(ev.is_empty() || r.is_ok());
            r.map_err(|e| e.uri)
        };
        let bad = |x: &str| Err::<Value, String>(x.to_owned());
        assert_eq!(create(vec![s("t"), Value::List(vec![])]), bad("wamp.error.invalid_argument"));
        assert_eq!(create(vec![s("t"), Value::List(vec![s("node1")])]), bad("wamp.error.invalid_argument"));
        assert_eq!(create(vec![s("t"), Value::List(vec![pair("nope", "w1")])]), bad("crossbar.error.no_such_object"));
        assert_eq!(create(vec![s("t"), Value::List(vec![pair("node1", "a.b")])]), bad("wamp.error.invalid_argument"));
        assert_eq!(create(vec![s("t t"), Value::List(vec![pair("node1", "w1")])]), bad("wamp.error.invalid_argument"));
        let ok = vec![s("t"), Value::List(vec![pair("node1", "w1")]), Value::Null, s("admin")];
        assert_eq!(create(ok), bad("wamp.error.invalid_argument"), "roles must be a list");
        assert!(create(vec![s("t"), Value::List(vec![pair("node1", "w1")])]).is_ok());
        assert_eq!(create(vec![s("t"), Value::List(vec![pair("node1", "w1")])]), bad("crossbar.error.already_exists"));
        assert!(f.calls.is_empty(), "creating calls no node");
        let e = t
            .handle("owner", "crossbarfabriccenter.mrealm.stop_trace", &[s("t")], &Dict::new(), &resolve, &mut f, now)
            .0
            .unwrap_err();
        assert_eq!(e.uri, "crossbar.error.not_running");
        let e = t
            .handle(
                "owner",
                "crossbarfabriccenter.mrealm.get_trace_data",
                &[s("zz")],
                &Dict::new(),
                &resolve,
                &mut f,
                now,
            )
            .0
            .unwrap_err();
        assert_eq!(e.uri, "crossbar.error.no_such_object");
    }
}
