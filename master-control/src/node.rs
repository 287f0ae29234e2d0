//! The managed node's side of the management API (sans-IO): the procedures
//! a node registers on its management realm as
//! `crossbarfabriccenter.node.<authid>.<procedure>`, what they answer, and
//! the heartbeat it publishes. The master reaches them through
//! `crossbarfabriccenter.remote.node.<procedure>(node_oid, ...)`
//! ([`remote_target`]).
//!
//! The runtime (`junction edge start`) supplies a [`NodeView`] (its process
//! and workers, read from the supervisor) and carries out the returned
//! [`NodeAction`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::json;
use wamp_proto::{Dict, Value};

use crate::error::ApiError;
use crate::value::{from_json, Args};

/// Procedures of the node API (suffixes of `crossbarfabriccenter.node.<authid>.`).
/// The node's process procedures (`get_process_info`, `get_cpu_affinity`,
/// `get_system_stats`, ...) are [`crate::process`]'s.
pub const NODE_PROCEDURES: [&str; 7] =
    ["get_status", "get_workers", "get_worker", "shutdown", "start_worker", "stop_worker", "get_worker_log"];

/// Default number of log lines a node keeps per worker
/// (`controller.options.worker_log_lines`).
pub const DEFAULT_WORKER_LOG_LINES: usize = 500;
/// Largest `controller.options.worker_log_lines`.
pub const MAX_WORKER_LOG_LINES: usize = 100_000;
/// A captured log line longer than this is cut (at a character boundary).
pub const MAX_LOG_LINE: usize = 8192;
/// `get_worker_log`'s default `limit` (Crossbar's).
pub const DEFAULT_LOG_LIMIT: u64 = 100;

/// The recent log lines of one worker: a bounded ring (the oldest line
/// goes when a new one arrives at capacity). The node fills it from the
/// worker process's stderr, across restarts of the worker.
#[derive(Debug, Clone)]
pub struct LogRing {
    lines: std::collections::VecDeque<String>,
    capacity: usize,
    /// Lines ever pushed (dropped ones included).
    total: u64,
}

impl LogRing {
    /// An empty ring keeping at most `capacity` lines.
    pub fn new(capacity: usize) -> LogRing {
        LogRing { lines: std::collections::VecDeque::with_capacity(capacity.min(64)), capacity, total: 0 }
    }

    /// Appends a line (trailing whitespace dropped, cut at [`MAX_LOG_LINE`]
    /// bytes); empty lines are not kept.
    pub fn push(&mut self, line: &str) {
        let mut line = line.trim_end();
        if line.is_empty() || self.capacity == 0 {
            return;
        }
        if line.len() > MAX_LOG_LINE {
            let mut end = MAX_LOG_LINE;
            while !line.is_char_boundary(end) {
                end -= 1;
            }
            line = &line[..end];
        }
        if self.lines.len() == self.capacity {
            self.lines.pop_front();
        }
        self.lines.push_back(line.to_owned());
        self.total += 1;
    }

    /// The last `n` lines, oldest first.
    pub fn last(&self, n: usize) -> Vec<String> {
        self.lines.iter().skip(self.lines.len().saturating_sub(n)).cloned().collect()
    }

    /// Lines kept now.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// No line kept.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Lines ever pushed.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// The lines pushed after the first `seen` (of [`LogRing::total`]), at
    /// most `max` (the oldest of them first), and the new `seen`. Lines
    /// the ring dropped before they were read are skipped.
    pub fn since(&self, seen: u64, max: usize) -> (Vec<String>, u64) {
        let first_kept = self.total - self.lines.len() as u64;
        let from = seen.max(first_kept);
        let skip = usize::try_from(from - first_kept).unwrap_or(usize::MAX);
        let out: Vec<String> = self.lines.iter().skip(skip).take(max).cloned().collect();
        let seen = from + out.len() as u64;
        (out, seen)
    }
}

/// A log line as Crossbar's log record: a JSON object line (`--log-format
/// json`) as a dict, any other line as a string.
pub fn log_record(line: String) -> Value {
    match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(j @ serde_json::Value::Object(_)) => from_json(&j),
        _ => Value::Str(line),
    }
}

/// `get_worker_log(worker_id, limit=100)`: the worker's last `limit` log
/// records, oldest first. A line that is a JSON object (`--log-format
/// json`) is a dict (Crossbar's rich log record), any other line a string.
/// `lines(worker_id, limit)` reads the ring of a worker of `view`.
pub fn worker_log(
    view: &NodeView,
    args: &[Value],
    kwargs: &Dict,
    lines: impl Fn(&str, usize) -> Vec<String>,
) -> Result<Value, ApiError> {
    let a = Args { procedure: "get_worker_log", args, kwargs };
    let wid = a.str(0, "worker_id")?;
    let limit = match a.get(1, "limit") {
        None => DEFAULT_LOG_LIMIT,
        Some(Value::UInt(n)) => *n,
        Some(Value::Int(n)) if *n >= 0 => *n as u64,
        Some(_) => {
            return Err(ApiError::invalid_argument("get_worker_log: argument 'limit' must be a non-negative integer"))
        }
    };
    if !view.workers.iter().any(|w| w.id == wid) {
        return Err(ApiError::new("crossbar.error.no_such_worker", format!("no worker with ID '{wid}'")));
    }
    let n = usize::try_from(limit).unwrap_or(usize::MAX);
    Ok(Value::List(lines(wid, n).into_iter().map(log_record).collect()))
}

/// Checks a worker id (it names files and URI components): 1 to 64 of
/// ASCII letters, digits, `_` and `-`.
pub fn check_worker_id(id: &str) -> Result<(), ApiError> {
    if (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        Ok(())
    } else {
        Err(ApiError::invalid_argument(format!("invalid worker id {id:?}: 1 to 64 of letters, digits, '_' and '-'")))
    }
}

/// The worker configuration `start_worker(worker_id, worker_type,
/// worker_options)` asks for: a router or proxy worker with no realms,
/// transports, routes or connections (the master starts those next).
/// Junction reads `shards` and `pin_cores` from `worker_options`, and a
/// whole worker configuration from `worker_options.config` (Junction
/// extension); Crossbar's process options (`env`, `title`, `extra`,
/// `python`, `pythonpath`, `cpu_affinity`) are accepted and ignored.
pub fn worker_config(
    worker_id: &str,
    worker_type: &str,
    options: Option<&Dict>,
) -> Result<serde_json::Value, ApiError> {
    check_worker_id(worker_id)?;
    let opts = options.map(|o| crate::value::to_json(&Value::Dict(o.clone()))).unwrap_or_else(|| json!({}));
    let known = ["env", "title", "extra", "python", "pythonpath", "cpu_affinity", "shards", "pin_cores", "config"];
    if let Some(k) = opts.as_object().and_then(|o| o.keys().find(|k| !known.contains(&k.as_str()))) {
        return Err(ApiError::invalid_argument(format!("start_worker: unknown worker option '{k}'")));
    }
    let mut w = match opts.get("config") {
        Some(serde_json::Value::Object(c)) => serde_json::Value::Object(c.clone()),
        Some(_) => return Err(ApiError::invalid_argument("start_worker: worker_options.config must be a dict")),
        None => match worker_type {
            "router" => json!({"realms": [], "transports": []}),
            "proxy" => json!({"transports": [], "routes": {}, "connections": {}}),
            other => {
                return Err(ApiError::new(
                    "crossbar.error.invalid_configuration",
                    format!("worker type '{other}' is not supported (router or proxy)"),
                ))
            }
        },
    };
    if !matches!(worker_type, "router" | "proxy") {
        return Err(ApiError::new(
            "crossbar.error.invalid_configuration",
            format!("worker type '{worker_type}' is not supported (router or proxy)"),
        ));
    }
    w["type"] = json!(worker_type);
    w["id"] = json!(worker_id);
    let mut o = w.get("options").cloned().unwrap_or_else(|| json!({}));
    for k in ["shards", "pin_cores"] {
        if let Some(v) = opts.get(k) {
            o[k] = v.clone();
        }
    }
    w["options"] = o;
    Ok(w)
}

/// The node's identity on its management realm (from WELCOME).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeIdentity {
    pub authid: String,
    pub pubkey: String,
    pub mrealm: String,
    pub session: u64,
    pub extra: Dict,
}

/// One worker as the supervisor reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerView {
    pub id: String,
    pub kind: String,
    pub pid: Option<u32>,
    /// `starting`, `started` or `restarting`.
    pub status: String,
    pub created: SystemTime,
    pub started: Option<SystemTime>,
    pub startup_time: Option<Duration>,
}

/// The node process and its workers.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeView {
    pub started: SystemTime,
    pub pid: u32,
    pub cbdir: String,
    pub workers: Vec<WorkerView>,
}

/// What the runtime must do after a node procedure answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeAction {
    None,
    /// Stop every worker and exit (after the answer went out).
    Shutdown,
}

fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// The full URI of node procedure `proc` for node `authid`.
pub fn procedure_uri(authid: &str, proc: &str) -> String {
    format!("crossbarfabriccenter.node.{authid}.{proc}")
}

fn worker_json(w: &WorkerView, now: SystemTime) -> Value {
    let uptime = w.started.and_then(|s| now.duration_since(s).ok()).map(|d| d.as_secs_f64());
    from_json(&json!({
        "id": w.id,
        "pid": w.pid,
        "type": w.kind,
        "status": w.status,
        "created": iso(w.created),
        "started": w.started.map(iso),
        "startup_time": w.startup_time.map(|d| d.as_secs_f64()),
        "uptime": uptime,
    }))
}

/// Answers node procedure `proc` (the URI suffix).
pub fn handle(
    id: &NodeIdentity,
    view: &NodeView,
    now: SystemTime,
    proc: &str,
    args: &[Value],
    kwargs: &Dict,
) -> (Result<Value, ApiError>, NodeAction) {
    let a = Args { procedure: proc, args, kwargs };
    match proc {
        "get_status" => {
            let mut by_type = serde_json::Map::new();
            for w in view.workers.iter().filter(|w| w.status == "started") {
                let n = by_type.get(&w.kind).and_then(serde_json::Value::as_u64).unwrap_or(0);
                by_type.insert(w.kind.clone(), json!(n + 1));
            }
            let mut st = from_json(&json!({
                "title": format!("Junction {}", env!("CARGO_PKG_VERSION")),
                "started": iso(view.started),
                "controller_pid": view.pid,
                "running_workers": view.workers.iter().filter(|w| w.status == "started").count(),
                "workers_by_type": by_type,
                "directory": view.cbdir,
                "pubkey": id.pubkey,
                "ethadr": null,
                "management_realm": id.mrealm,
                "management_node_id": id.authid,
                "management_session_id": id.session,
                "has_docker": false,
            }));
            if let Value::Dict(d) = &mut st {
                d.insert("management_node_extra".into(), Value::Dict(id.extra.clone()));
            }
            (Ok(st), NodeAction::None)
        }
        "get_workers" => {
            (Ok(Value::List(view.workers.iter().map(|w| Value::Str(w.id.clone())).collect())), NodeAction::None)
        }
        "get_worker" => {
            let r =
                a.str(0, "worker_id").and_then(|wid| {
                    view.workers.iter().find(|w| w.id == wid).map(|w| worker_json(w, now)).ok_or_else(|| {
                        ApiError::new("crossbar.error.no_such_worker", format!("no worker with ID '{wid}'"))
                    })
                });
            (r, NodeAction::None)
        }
        "shutdown" => {
            let r = from_json(&json!({"who": null, "when": iso(now), "restart": false, "mode": "shutdown"}));
            (Ok(r), NodeAction::Shutdown)
        }
        _ => (
            Err(ApiError::new("wamp.error.no_such_procedure", format!("no node procedure '{proc}'"))),
            NodeAction::None,
        ),
    }
}

/// The node's heartbeat (`crossbarfabriccenter.node.on_heartbeat(authid, hb)`).
pub fn heartbeat(id: &NodeIdentity, view: &NodeView, seq: u64, period: Duration, now: SystemTime) -> Value {
    let mut workers = serde_json::Map::new();
    workers.insert("controller".into(), json!(1));
    for w in view.workers.iter().filter(|w| w.status == "started") {
        let n = workers.get(&w.kind).and_then(serde_json::Value::as_u64).unwrap_or(0);
        workers.insert(w.kind.clone(), json!(n + 1));
    }
    from_json(&json!({
        "timestamp": ns(now),
        "period": period.as_secs(),
        "mrealm_id": id.mrealm,
        "seq": seq,
        "workers": workers,
        "state": "running",
    }))
}

/// Where the master forwards `crossbarfabriccenter.remote.<api>.<proc>(node,
/// [worker_id,] *args)`: the node's own procedure
/// `crossbarfabriccenter.node.<authid>[.worker.<worker_id>].<proc>` and the
/// remaining arguments. `node_authid` maps the first argument (a node oid,
/// or for `realm.meta` the node authid as the reference takes it) to the
/// node's authid.
pub fn remote_target(
    procedure: &str,
    args: &[Value],
    node_authid: impl Fn(&str) -> Option<String>,
) -> Result<(String, Vec<Value>), ApiError> {
    let rest = procedure
        .strip_prefix("crossbarfabriccenter.remote.")
        .ok_or_else(|| ApiError::new("wamp.error.no_such_procedure", format!("'{procedure}' is not a remote API")))?;
    let (api, proc) = rest
        .rsplit_once('.')
        .ok_or_else(|| ApiError::new("wamp.error.no_such_procedure", format!("'{procedure}' names no procedure")))?;
    let node = match args.first() {
        Some(Value::Str(s)) => s.as_str(),
        _ => return Err(ApiError::invalid_argument(format!("{procedure}: the first argument must be the node (oid)"))),
    };
    let authid = node_authid(node)
        .ok_or_else(|| ApiError::no_such_object(format!("no node '{node}' in this management realm")))?;
    if api == "node" {
        return Ok((procedure_uri(&authid, proc), args[1..].to_vec()));
    }
    if api == "docker" || api == "container" {
        return Err(ApiError::new(
            "crossbar.error.feature_unavailable",
            format!("{procedure}: Junction has no {api} workers (application components run as ordinary WAMP clients)"),
        ));
    }
    let proc = short_name(api, proc).unwrap_or(proc);
    let worker = match args.get(1) {
        Some(Value::Str(s)) if !s.is_empty() && !s.contains('.') => s.clone(),
        _ => return Err(ApiError::invalid_argument(format!("{procedure}: the second argument must be the worker id"))),
    };
    // `remote.realm.meta.<...>` keeps its dotted tail (the meta procedure).
    let proc = rest.strip_prefix("realm.meta.").unwrap_or(proc);
    Ok((format!("crossbarfabriccenter.node.{authid}.worker.{worker}.{proc}"), args[2..].to_vec()))
}

/// The short names of Crossbar's Management API document
/// (`remote.router.get_realms`, `remote.proxy.start_transport`, ...) for
/// the worker procedures the master forwards to
/// (`get_router_realms`, `start_proxy_transport`, ...).
fn short_name(api: &str, proc: &str) -> Option<&'static str> {
    const ROUTER: [(&str, &str); 20] = [
        ("get_realms", "get_router_realms"),
        ("get_realm", "get_router_realm"),
        ("start_realm", "start_router_realm"),
        ("stop_realm", "stop_router_realm"),
        ("get_realm_roles", "get_router_realm_roles"),
        ("get_realm_role", "get_router_realm_role"),
        ("start_realm_role", "start_router_realm_role"),
        ("stop_realm_role", "stop_router_realm_role"),
        ("get_transports", "get_router_transports"),
        ("get_transport", "get_router_transport"),
        ("start_transport", "start_router_transport"),
        ("stop_transport", "stop_router_transport"),
        ("get_transport_services", "get_web_transport_services"),
        ("get_transport_service", "get_web_transport_service"),
        ("start_transport_service", "start_web_transport_service"),
        ("stop_transport_service", "stop_web_transport_service"),
        ("get_components", "get_router_components"),
        ("get_component", "get_router_component"),
        ("start_component", "start_router_component"),
        ("stop_component", "stop_router_component"),
    ];
    const PROXY: [(&str, &str); 8] = [
        ("get_transports", "get_proxy_transports"),
        ("get_transport", "get_proxy_transport"),
        ("start_transport", "start_proxy_transport"),
        ("stop_transport", "stop_proxy_transport"),
        ("get_transport_services", "get_web_transport_services"),
        ("get_transport_service", "get_web_transport_service"),
        ("start_transport_service", "start_web_transport_service"),
        ("stop_transport_service", "stop_web_transport_service"),
    ];
    let table: &[(&str, &'static str)] = match api {
        "router" => &ROUTER,
        "proxy" => &PROXY,
        _ => return None,
    };
    table.iter().find(|(short, _)| *short == proc).map(|(_, long)| *long)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_short_names_and_missing_worker_kinds() {
        let authid = |n: &str| (n == "oid1").then(|| "node1".to_owned());
        let a = |v: &[&str]| v.iter().map(|s| Value::Str((*s).into())).collect::<Vec<_>>();
        let (uri, rest) =
            remote_target("crossbarfabriccenter.remote.router.get_realms", &a(&["oid1", "w1"]), authid).expect("alias");
        assert_eq!(uri, "crossbarfabriccenter.node.node1.worker.w1.get_router_realms");
        assert!(rest.is_empty());
        let (uri, rest) =
            remote_target("crossbarfabriccenter.remote.proxy.start_transport", &a(&["oid1", "p1", "t1"]), authid)
                .expect("alias");
        assert_eq!(uri, "crossbarfabriccenter.node.node1.worker.p1.start_proxy_transport");
        assert_eq!(rest, a(&["t1"]));
        let (uri, _) =
            remote_target("crossbarfabriccenter.remote.router.get_router_realms", &a(&["oid1", "w1"]), authid)
                .expect("long name");
        assert_eq!(uri, "crossbarfabriccenter.node.node1.worker.w1.get_router_realms");
        let e = remote_target("crossbarfabriccenter.remote.docker.get_containers", &a(&["oid1"]), authid).unwrap_err();
        assert_eq!(e.uri, "crossbar.error.feature_unavailable");
        let e =
            remote_target("crossbarfabriccenter.remote.router.get_realms", &a(&["oid9", "w1"]), authid).unwrap_err();
        assert_eq!(e.uri, "crossbar.error.no_such_object");
    }

    fn id() -> NodeIdentity {
        NodeIdentity {
            authid: "node1".into(),
            pubkey: "ab".into(),
            mrealm: "mr".into(),
            session: 7,
            extra: Dict::new(),
        }
    }

    fn view() -> NodeView {
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        NodeView {
            started: t0,
            pid: 42,
            cbdir: "/n/.crossbar".into(),
            workers: vec![
                WorkerView {
                    id: "r1".into(),
                    kind: "router".into(),
                    pid: Some(43),
                    status: "started".into(),
                    created: t0,
                    started: Some(t0 + Duration::from_secs(1)),
                    startup_time: Some(Duration::from_millis(500)),
                },
                WorkerView {
                    id: "p1".into(),
                    kind: "proxy".into(),
                    pid: None,
                    status: "restarting".into(),
                    created: t0,
                    started: None,
                    startup_time: None,
                },
            ],
        }
    }

    fn get<'a>(v: &'a Value, k: &str) -> &'a Value {
        v.as_dict().and_then(|d| d.get(k)).unwrap_or(&Value::Null)
    }

    #[test]
    fn status_workers_and_shutdown() {
        let now = UNIX_EPOCH + Duration::from_secs(1_010);
        let (st, act) = handle(&id(), &view(), now, "get_status", &[], &Dict::new());
        let st = st.expect("status");
        assert_eq!(act, NodeAction::None);
        assert_eq!(get(&st, "running_workers"), &Value::UInt(1));
        assert_eq!(get(&st, "management_node_id"), &Value::Str("node1".into()));
        assert_eq!(get(&st, "controller_pid"), &Value::UInt(42));
        let (ws, _) = handle(&id(), &view(), now, "get_workers", &[], &Dict::new());
        assert_eq!(ws, Ok(Value::List(vec![Value::Str("r1".into()), Value::Str("p1".into())])));
        let (w, _) = handle(&id(), &view(), now, "get_worker", &[Value::Str("r1".into())], &Dict::new());
        let w = w.expect("worker");
        assert_eq!(get(&w, "type"), &Value::Str("router".into()));
        assert_eq!(get(&w, "uptime"), &Value::Float(9.0));
        let (missing, _) = handle(&id(), &view(), now, "get_worker", &[Value::Str("zz".into())], &Dict::new());
        assert_eq!(missing.expect_err("no such worker").uri, "crossbar.error.no_such_worker");
        let (bad, _) = handle(&id(), &view(), now, "get_worker", &[Value::UInt(1)], &Dict::new());
        assert_eq!(bad.expect_err("type").uri, "wamp.error.invalid_argument");
        assert_eq!(handle(&id(), &view(), now, "shutdown", &[], &Dict::new()).1, NodeAction::Shutdown);
        let hb = heartbeat(&id(), &view(), 3, Duration::from_secs(10), now);
        assert_eq!(get(&hb, "seq"), &Value::UInt(3));
        assert_eq!(get(get(&hb, "workers"), "router"), &Value::UInt(1));
    }

    #[test]
    fn new_log_lines_are_read_once_in_bounded_batches() {
        let mut ring = LogRing::new(4);
        assert_eq!(ring.since(0, 10), (Vec::<String>::new(), 0));
        for l in ["a", "b", "c"] {
            ring.push(l);
        }
        assert_eq!(ring.since(0, 2), (vec!["a".to_owned(), "b".to_owned()], 2), "at most max");
        assert_eq!(ring.since(2, 10), (vec!["c".to_owned()], 3));
        assert_eq!(ring.since(3, 10), (Vec::<String>::new(), 3), "nothing new");
        for l in ["d", "e", "f", "g", "h"] {
            ring.push(l);
        }
        // d was dropped by the ring before it was read: skipped.
        assert_eq!(ring.since(3, 10), (vec!["e".into(), "f".into(), "g".into(), "h".into()], 8));
    }

    #[test]
    fn worker_logs_are_a_bounded_ring_read_newest_last() {
        let mut ring = LogRing::new(3);
        for l in ["one", "", "two\n", "three", "{\"level\":\"INFO\",\"fields\":{\"message\":\"four\"}}"] {
            ring.push(l);
        }
        assert_eq!(ring.len(), 3);
        assert_eq!(ring.total(), 4);
        assert_eq!(ring.last(2), ["three", "{\"level\":\"INFO\",\"fields\":{\"message\":\"four\"}}"]);
        assert_eq!(ring.last(10).len(), 3);
        let long = "é".repeat(MAX_LOG_LINE);
        ring.push(&long);
        assert!(ring.last(1)[0].len() <= MAX_LOG_LINE);
        let mut off = LogRing::new(0);
        off.push("x");
        assert!(off.is_empty());

        let v = view();
        let lines = |w: &str, n: usize| if w == "r1" { ring.last(n) } else { Vec::new() };
        let r = worker_log(&v, &[Value::Str("r1".into()), Value::UInt(2)], &Dict::new(), lines).expect("log");
        let Value::List(recs) = r else { panic!("a list") };
        assert_eq!(recs.len(), 2);
        assert_eq!(get(&recs[0], "level"), &Value::Str("INFO".into()), "a JSON line is a dict");
        assert!(matches!(&recs[1], Value::Str(s) if s.starts_with('é')));
        let all = worker_log(&v, &[Value::Str("r1".into())], &Dict::new(), lines).expect("default limit");
        assert_eq!(all.as_list().map(Vec::len), Some(3));
        let e = |a: &[Value]| worker_log(&v, a, &Dict::new(), lines).expect_err("error").uri;
        assert_eq!(e(&[Value::Str("zz".into())]), "crossbar.error.no_such_worker");
        assert_eq!(e(&[Value::UInt(3)]), "wamp.error.invalid_argument");
        assert_eq!(e(&[Value::Str("r1".into()), Value::Str("10".into())]), "wamp.error.invalid_argument");
        assert_eq!(e(&[Value::Str("r1".into()), Value::Int(-1)]), "wamp.error.invalid_argument");
        assert_eq!(e(&[]), "wamp.error.invalid_argument");
    }

    #[test]
    fn start_worker_options_become_a_worker_config() {
        let w = worker_config("wg1_1", "router", None).expect("router");
        assert_eq!(w, json!({"type": "router", "id": "wg1_1", "options": {}, "realms": [], "transports": []}));
        let mut o = Dict::new();
        o.insert("shards".into(), Value::UInt(2));
        o.insert("title".into(), Value::Str("ignored".into()));
        assert_eq!(worker_config("p", "proxy", Some(&o)).expect("proxy")["options"], json!({"shards": 2}));
        assert_eq!(worker_config("x", "container", None).unwrap_err().uri, "crossbar.error.invalid_configuration");
        assert_eq!(worker_config("../etc", "router", None).unwrap_err().uri, "wamp.error.invalid_argument");
        assert_eq!(worker_config("", "router", None).unwrap_err().uri, "wamp.error.invalid_argument");
        let mut bad = Dict::new();
        bad.insert("sharts".into(), Value::UInt(2));
        assert_eq!(worker_config("w", "router", Some(&bad)).unwrap_err().uri, "wamp.error.invalid_argument");
    }

    #[test]
    fn remote_calls_map_to_node_and_worker_procedures() {
        let lookup = |n: &str| (n == "oid-1" || n == "node1").then(|| "node1".to_owned());
        let s = |x: &str| Value::Str(x.into());
        assert_eq!(
            remote_target("crossbarfabriccenter.remote.node.get_worker", &[s("oid-1"), s("wg1_1")], lookup),
            Ok(("crossbarfabriccenter.node.node1.get_worker".into(), vec![s("wg1_1")]))
        );
        assert_eq!(
            remote_target("crossbarfabriccenter.remote.router.get_router_realms", &[s("oid-1"), s("wg1_1")], lookup),
            Ok(("crossbarfabriccenter.node.node1.worker.wg1_1.get_router_realms".into(), vec![]))
        );
        assert_eq!(
            remote_target(
                "crossbarfabriccenter.remote.realm.meta.wamp.session.count",
                &[s("node1"), s("w"), s("rlm")],
                lookup
            ),
            Ok(("crossbarfabriccenter.node.node1.worker.w.wamp.session.count".into(), vec![s("rlm")]))
        );
        let e = |r: Result<(String, Vec<Value>), ApiError>| r.expect_err("error").uri;
        assert_eq!(
            e(remote_target("crossbarfabriccenter.remote.node.get_status", &[s("nope")], lookup)),
            "crossbar.error.no_such_object"
        );
        assert_eq!(
            e(remote_target("crossbarfabriccenter.remote.node.get_status", &[], lookup)),
            "wamp.error.invalid_argument"
        );
        assert_eq!(
            e(remote_target("crossbarfabriccenter.remote.router.x", &[s("oid-1")], lookup)),
            "wamp.error.invalid_argument"
        );
        assert_eq!(
            e(remote_target("crossbarfabriccenter.remote.router.x", &[s("oid-1"), s("a.b")], lookup)),
            "wamp.error.invalid_argument"
        );
    }
}
