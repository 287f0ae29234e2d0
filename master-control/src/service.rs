//! The running master: its router, its backend sessions, and the glue
//! between WAMP and [`Master`].
//!
//! ```text
//!  management clients ──ws://HOST:PORT/ws──┐       (cryptosign, dynamic:
//!  managed nodes ──────────────────────────┤        com.crossbario.fabric.authenticate)
//!                                          ▼
//!            router-core worker: realm com.crossbario.fabric + one realm per mrealm
//!                                          ▲
//!            unix:<cbdir>/.junction/master.sock (cryptosign with the master's own key, role master)
//!                                          │
//!      backend sessions (one thread each): "global" on com.crossbario.fabric, one per mrealm
//!                                          │
//!                          Arc<Mutex<Master>> (+ the SQLite store)
//! ```
//!
//! Each backend session registers its realm's procedures (exact URIs, so
//! calls to anything else get `wamp.error.no_such_procedure` from the
//! router), answers invocations through [`Master::handle_call`], publishes
//! the resulting events and applies the other effects: a new management
//! realm starts its router realm and its backend session, a deleted one
//! stops both, an unpaired node's sessions are killed. The mrealm sessions
//! follow `wamp.session.on_join/on_leave` to track which nodes are online.
//! Sessions talk to each other through channels of [`Command`]s, polled
//! between reads (read timeout [`POLL`]).

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, SystemTime};

use serde_json::json;
use thiserror::Error;
use wamp_client::auth::Auth;
use wamp_client::conn::Conn;
use wamp_client::target::Target;
use wamp_client::{Session, SessionEvent};
use wamp_proto::{Dict, RequestId, Serializer, Value};

use crate::master::{self, Caller, Master, Publication, GLOBAL_REALM};
use crate::store::Store;

/// How long a backend session blocks in a read before it looks at its
/// command channel.
pub const POLL: Duration = Duration::from_millis(20);

/// The remote APIs (`crossbarfabriccenter.remote.<api>.<procedure>`).
pub const REMOTE_PREFIX: &str = "crossbarfabriccenter.remote.";
/// The nodes' bridged meta events: `crossbarfabriccenter.node.<authid>.worker.<worker>.realm.<realm_id>.root.<event>`.
const BRIDGED_META: &str = "crossbarfabriccenter.node..worker..realm..root.";

/// A node controller's announcement that its procedures are registered:
/// `crossbarfabriccenter.node.<authid>.on_ready()`; the node is online from then on.
const NODE_READY: &str = "crossbarfabriccenter.node..on_ready";

/// How long a forwarded remote call may take on the node.
pub const REMOTE_TIMEOUT: Duration = Duration::from_secs(30);

/// How the master runs.
#[derive(Debug, Clone)]
pub struct MasterSetup {
    /// The master's directory: `master.db`, `.junction/key.priv`, the socket.
    pub cbdir: PathBuf,
    /// The management transport (WebSocket, path `/ws`).
    pub listen: SocketAddr,
    /// The superuser's Ed25519 public key (64 hex digits); without it
    /// nobody can manage anything (nodes can still log in).
    pub superuser_key: Option<String>,
    /// Pair the node keys found in a directory (Crossbar's watch-to-pair).
    pub watch_to_pair: Option<crate::pairing::WatchToPair>,
}

/// How often the watch-to-pair directory is scanned.
pub const WATCH_PERIOD: Duration = Duration::from_secs(2);

/// Why the master could not start.
#[derive(Debug, Error)]
pub enum ServiceError {
    #[error("{0}")]
    Store(#[from] crate::StoreError),
    #[error("node key: {0}")]
    Key(#[from] cluster_membership::KeyError),
    #[error("the master's router: {0}")]
    Router(String),
    #[error("backend session on '{realm}': {message}")]
    Backend { realm: String, message: String },
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Reads the public key from a key file in Crossbar's format (`key.pub`, or
/// `key.priv`): the `public-key-ed25519: <64 hex>` line.
pub fn read_public_key_file(path: &Path) -> Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    for line in text.lines() {
        if let Some((tag, v)) = line.split_once(':') {
            let v = v.trim();
            if tag.trim() == "public-key-ed25519" && v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Ok(v.to_ascii_lowercase());
            }
        }
    }
    Err(format!("{}: no 'public-key-ed25519: <64 hex digits>' line", path.display()))
}

/// Requests between backend sessions.
enum Command {
    Publish(Publication),
    /// Close every session of `authid` on this session's realm.
    Kill(String),
    /// Leave and end the thread (the realm is stopping).
    Stop,
}

/// A running master.
pub struct MasterService {
    router: Arc<router_core::runtime::RouterNode>,
    /// The WebSocket endpoint actually bound.
    pub endpoint: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    master: Mutex<Master>,
    sessions: Mutex<HashMap<String, Sender<Command>>>,
    router: Arc<router_core::runtime::RouterNode>,
    socket: PathBuf,
    seed: [u8; 32],
    cbdir: PathBuf,
}

impl Shared {
    fn master(&self) -> MutexGuard<'_, Master> {
        self.master.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn send(&self, realm: &str, cmd: Command) {
        if let Some(tx) = self.sessions.lock().unwrap_or_else(|e| e.into_inner()).get(realm) {
            let _ = tx.send(cmd);
        }
    }
}

/// Scans the watch-to-pair directory every [`WATCH_PERIOD`] and pairs the
/// keys the master has never seen (see [`crate::pairing`]). Each problem
/// (a malformed key file, a refused pairing) is logged once.
fn watch_to_pair(shared: &Arc<Shared>, w: &crate::pairing::WatchToPair) {
    tracing::info!(dir = %w.dir.display(), write_pairing_file = w.write_pairing_file, "watch-to-pair: pairing the node keys found here to management realm 'default'");
    let mut reported: std::collections::HashSet<(PathBuf, String)> = std::collections::HashSet::new();
    // Keys the master knows (paired now or once): never looked up again.
    let mut known: std::collections::HashSet<String> = std::collections::HashSet::new();
    loop {
        let (keys, errors) = crate::pairing::scan(&w.dir, w.pattern.as_ref());
        for (path, e) in errors {
            if reported.insert((path.clone(), e.clone())) {
                tracing::warn!(path = %path.display(), error = %e, "watch-to-pair: not a node key");
            }
        }
        for key in keys {
            if known.contains(&key.pubkey) {
                continue;
            }
            let now = SystemTime::now();
            let r = shared.master().auto_pair(now, &key);
            if r.is_ok() {
                known.insert(key.pubkey.clone());
            }
            match r {
                Ok(None) => {}
                Ok(Some((node, fx))) => {
                    let oid = node.get("oid").and_then(serde_json::Value::as_str).unwrap_or_default().to_owned();
                    tracing::info!(authid = %key.authid, pubkey = %key.pubkey, node_oid = %oid, cbdir = %key.cbdir.display(), "watch-to-pair: node paired to management realm 'default'");
                    for p in fx.publish {
                        shared.send(&p.realm.clone(), Command::Publish(p));
                    }
                    if w.write_pairing_file {
                        write_activation(shared, w, &key, &oid);
                    }
                }
                Err(e) => {
                    if reported.insert((key.cbdir.clone(), e.message.clone())) {
                        tracing::warn!(authid = %key.authid, cbdir = %key.cbdir.display(), error = %e.uri, message = %e.message, "watch-to-pair: node not paired");
                    }
                }
            }
        }
        std::thread::sleep(WATCH_PERIOD);
    }
}

/// Writes `key.activate` beside a key just paired (never over an existing one).
fn write_activation(shared: &Shared, w: &crate::pairing::WatchToPair, key: &crate::pairing::FoundKey, node_oid: &str) {
    use std::io::Write;
    let path = key.cbdir.join("key.activate");
    let mrealm_oid = shared.master().mrealm_oid(crate::pairing::DEFAULT_MREALM).unwrap_or_default();
    let now = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let text = crate::pairing::activation_text(key, node_oid, &mrealm_oid, &w.management_url, &now);
    let r = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()));
    match r {
        Ok(()) => tracing::info!(path = %path.display(), "watch-to-pair: activation file written"),
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "watch-to-pair: activation file not written"),
    }
}

/// Adds (or replaces) a role of a running realm of the master's router.
fn ensure_role(shared: &Shared, realm: &str, role: &serde_json::Value) -> Result<(), String> {
    let cfg = junction_config::parse_realm(&json!({"name": realm, "roles": [role]})).map_err(|e| e.to_string())?;
    let r = cfg.roles.first().ok_or("no role")?;
    shared
        .router
        .set_realm_role(realm, router_core::runtime::from_config::role_from_config(r))
        .map_err(|e| e.to_string())
}

/// The roles of the global realm.
fn global_realm() -> serde_json::Value {
    json!({
        "name": GLOBAL_REALM,
        "roles": [
            {"name": master::ROLE_USER, "permissions": [{"uri": "crossbarfabriccenter.", "match": "prefix",
                "allow": {"call": true, "subscribe": true}, "disclose": {"caller": true}}]},
            {"name": "master", "permissions": [{"uri": "", "match": "prefix",
                "allow": {"call": true, "register": true, "publish": true, "subscribe": true}}]}
        ]
    })
}

/// The roles of a management realm's router realm.
fn mrealm_realm(name: &str) -> serde_json::Value {
    let mut roles: Vec<serde_json::Value> = master::MREALM_USER_ROLES
        .iter()
        .map(|r| {
            json!({"name": r, "permissions": [{"uri": "crossbarfabriccenter.", "match": "prefix",
                "allow": {"call": true, "subscribe": true}, "disclose": {"caller": true}}]})
        })
        .collect();
    roles.push(json!({"name": "master", "permissions": [{"uri": "", "match": "prefix",
        "allow": {"call": true, "register": true, "publish": true, "subscribe": true}}]}));
    json!({"name": name, "roles": roles, "options": {"enable_meta_api": true}})
}

fn realm_setup(v: &serde_json::Value) -> Result<router_core::runtime::setup::RealmSetup, ServiceError> {
    let cfg = junction_config::parse_realm(v).map_err(|e| ServiceError::Router(e.to_string()))?;
    router_core::runtime::from_config::realm_setup(&cfg, "master", Path::new("."))
        .map_err(|e| ServiceError::Router(e.to_string()))
}

impl MasterService {
    /// Opens the state, starts the router and the backend sessions; returns
    /// once the management transport accepts logins.
    pub fn start(setup: MasterSetup) -> Result<MasterService, ServiceError> {
        std::fs::create_dir_all(setup.cbdir.join(".junction"))?;
        let store = Store::open(&setup.cbdir.join("master.db"))?;
        let key = cluster_membership::NodeKey::load_or_create(&setup.cbdir.join(".junction").join("key.priv"))?;
        let now = SystemTime::now();
        let master = Master::new(store, now, setup.superuser_key.clone())?;
        let socket = setup.cbdir.join(".junction").join("master.sock");
        if socket.exists() {
            std::fs::remove_file(&socket)?;
        }
        let mut realms = vec![global_realm()];
        for name in master.mrealm_names()? {
            realms.push(mrealm_realm(&name));
        }
        let cfg = json!({
            "version": 2,
            "controller": {"id": "master", "options": {}},
            "workers": [{
                "type": "router", "id": "master",
                "options": {"shards": 1, "pin_cores": false},
                "realms": realms,
                "transports": [
                    {"type": "web",
                     "endpoint": {"type": "tcp", "interface": setup.listen.ip().to_string(), "port": setup.listen.port()},
                     "paths": {"ws": {"type": "websocket",
                        "serializers": ["json", "msgpack", "cbor"],
                        "auth": {"cryptosign": {"type": "dynamic", "authenticator": master::AUTHENTICATOR,
                                                "authenticator-realm": GLOBAL_REALM}}}}},
                    {"type": "rawsocket", "endpoint": {"type": "unix", "path": socket.display().to_string()},
                     "serializers": ["msgpack"],
                     "auth": {"cryptosign": {"type": "static", "principals": {
                        "master": {"authorized_keys": [key.public_hex()], "role": "master"}}}}}
                ]
            }]
        });
        let cfg = junction_config::parse_str(&cfg.to_string(), junction_config::Format::Json)
            .map_err(|e| ServiceError::Router(format!("internal router config: {e}")))?;
        let rsetup = router_core::setup_from_config(&cfg).map_err(|e| ServiceError::Router(e.to_string()))?;
        let router =
            Arc::new(router_core::runtime::RouterNode::start(rsetup).map_err(|e| ServiceError::Router(e.to_string()))?);
        let endpoint = match router.endpoints.first() {
            Some(router_core::runtime::EndpointSetup::Tcp { addr, .. }) => *addr,
            _ => setup.listen,
        };
        let names = master.mrealm_names()?;
        let shared = Arc::new(Shared {
            master: Mutex::new(master),
            sessions: Mutex::new(HashMap::new()),
            router: router.clone(),
            socket,
            seed: key.seed(),
            cbdir: setup.cbdir.clone(),
        });
        start_backend(&shared, GLOBAL_REALM)?;
        for name in names {
            shared.master().realm_started(&name, now);
            start_backend(&shared, &name)?;
        }
        if let Some(w) = setup.watch_to_pair.clone() {
            let shared = shared.clone();
            std::thread::Builder::new().name("watch-to-pair".into()).spawn(move || watch_to_pair(&shared, &w))?;
        }
        Ok(MasterService { router, endpoint, shared })
    }

    /// The master's directory.
    pub fn cbdir(&self) -> &Path {
        &self.shared.cbdir
    }

    /// Blocks until the router stops (it runs until the process ends).
    pub fn join(self) {
        drop(self.shared);
        if let Ok(r) = Arc::try_unwrap(self.router) {
            r.join();
        } else {
            loop {
                std::thread::park();
            }
        }
    }
}

/// How often the reconcile loop of a management realm runs.
pub const RECONCILE_PERIOD: Duration = Duration::from_secs(2);
/// How long one call of the reconcile loop to a node may take.
const RECONCILE_CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The reconcile loop of management realm `realm` (one thread): every
/// [`RECONCILE_PERIOD`], read what its online nodes run, plan with
/// [`crate::reconcile::plan`], make the calls, and mark the application
/// realms and web clusters `RUNNING` once nothing is left to start. Ends
/// when the realm is gone.
fn reconciler(shared: Arc<Shared>, realm: String) {
    let mut conn_state: Option<(Conn, Session)> = None;
    loop {
        std::thread::sleep(RECONCILE_PERIOD);
        if !shared.router.realm_names().iter().any(|r| r == &realm) {
            return;
        }
        if conn_state.is_none() {
            match connect(&shared, &realm) {
                Ok(c) => conn_state = Some((c, Session::new())),
                Err(e) => {
                    tracing::warn!(%realm, error = %e, "reconcile session");
                    continue;
                }
            }
        }
        let Some((conn, sess)) = conn_state.as_mut() else { continue };
        if let Err(e) = reconcile_pass(&shared, &realm, conn, sess) {
            tracing::warn!(%realm, error = %e, "reconcile pass failed; reconnecting");
            conn_state = None;
        }
    }
}

/// The management realm's trace API (`crate::mtrace`) on a session of its
/// own: each call is handled to its end (the node calls are blocking), so
/// invocations that arrive meanwhile wait in a queue. Ends when the realm
/// is gone; reconnects if the session breaks.
fn mrealm_traces(shared: Arc<Shared>, realm: String) {
    let mut traces = crate::mtrace::MrealmTraces::default();
    loop {
        if !shared.router.realm_names().iter().any(|r| r == &realm) {
            return;
        }
        match traces_session(&shared, &realm, &mut traces) {
            Ok(()) => return,
            Err(e) => {
                tracing::warn!(%realm, error = %e, "trace API session; reconnecting");
                std::thread::sleep(RECONCILE_PERIOD.min(Duration::from_secs(1)));
            }
        }
    }
}

/// Node calls of the trace API, on the trace session; other invocations
/// arriving during a call are queued.
struct TraceCalls<'a> {
    conn: &'a mut Conn,
    s: &'a mut Session,
    queued: &'a mut std::collections::VecDeque<SessionEvent>,
}

impl crate::mtrace::NodeCalls for TraceCalls<'_> {
    fn call(&mut self, authid: &str, worker: &str, proc: &str, args: Vec<Value>) -> Result<Value, String> {
        let uri = format!("crossbarfabriccenter.node.{authid}.worker.{worker}.{proc}");
        let req = self.s.call(&uri, args, Dict::new(), Dict::new());
        flush(self.conn, self.s)?;
        let deadline = std::time::Instant::now() + RECONCILE_CALL_TIMEOUT;
        loop {
            if std::time::Instant::now() > deadline {
                return Err(format!("{uri}: no answer within {RECONCILE_CALL_TIMEOUT:?}"));
            }
            let Some(m) = self.conn.recv().map_err(|e| e.to_string())? else { continue };
            match self.s.handle(m).map_err(|e| e.to_string())? {
                SessionEvent::Result { request, args, progress: false, .. } if request == req => {
                    return Ok(args.into_iter().next().unwrap_or(Value::Null));
                }
                SessionEvent::Error { request, error, args, .. } if request == req => {
                    let msg = args.first().and_then(Value::as_str).unwrap_or("").to_owned();
                    return Err(format!("{error}: {msg}"));
                }
                e @ (SessionEvent::Invocation { .. } | SessionEvent::Event { .. }) => self.queued.push_back(e),
                SessionEvent::Closed { reason, .. } => return Err(format!("trace session closed: {reason}")),
                _ => {}
            }
        }
    }
}

fn traces_session(shared: &Arc<Shared>, realm: &str, traces: &mut crate::mtrace::MrealmTraces) -> Result<(), String> {
    let mut conn = connect(shared, realm)?;
    conn.stream().set_read_timeout(Some(POLL * 10)).map_err(|e| e.to_string())?;
    let mut s = Session::new();
    let mut regs: Vec<RequestId> = crate::mtrace::PROCEDURES.iter().map(|p| s.register(p, Dict::new())).collect();
    // The workers' batches (forwarded by the backend), re-published for the traces of this realm.
    regs.push(s.subscribe("crossbarfabriccenter.remote.tracing.on_trace_data", Dict::new()));
    flush(&mut conn, &mut s)?;
    let mut queued = std::collections::VecDeque::new();
    loop {
        if !shared.router.realm_names().iter().any(|r| r == realm) {
            return Ok(());
        }
        let ev = match queued.pop_front() {
            Some(ev) => ev,
            None => {
                flush(&mut conn, &mut s)?;
                let Some(m) = conn.recv().map_err(|e| e.to_string())? else { continue };
                s.handle(m).map_err(|e| e.to_string())?
            }
        };
        match ev {
            SessionEvent::Invocation { request, procedure, args, kwargs, details, .. } => {
                let role = details.get("caller_authrole").and_then(Value::as_str).unwrap_or("").to_owned();
                if !master::mrealm_role_allows(&role, &procedure) {
                    let msg = format!("{procedure}: not available to role '{role}'");
                    s.yield_error(request, "wamp.error.not_authorized", vec![Value::Str(msg)], Dict::new());
                    continue;
                }
                let resolve = |n: &str| shared.master().node_authid_in(realm, n);
                let mut calls = TraceCalls { conn: &mut conn, s: &mut s, queued: &mut queued };
                let (r, events) =
                    traces.handle(&role, &procedure, &args, &kwargs, &resolve, &mut calls, SystemTime::now());
                match r {
                    Ok(v) => s.yield_result(request, vec![v], Dict::new()),
                    Err(e) => s.yield_error(request, &e.uri, vec![Value::Str(e.message)], Dict::new()),
                }
                for e in events {
                    publish_trace_event(&mut s, e);
                }
            }
            SessionEvent::Event { args, .. } => {
                if let Some(e) = traces.trace_data(&args) {
                    publish_trace_event(&mut s, e);
                }
            }
            SessionEvent::Error { request, error, args, .. } if regs.contains(&request) => {
                let msg = args.first().and_then(Value::as_str).unwrap_or("").to_owned();
                return Err(format!("could not register or subscribe: {error} {msg}"));
            }
            SessionEvent::Closed { reason, .. } => return Err(format!("closed: {reason}")),
            _ => {}
        }
    }
}

/// Publishes a trace event to its reader roles only.
fn publish_trace_event(s: &mut Session, e: crate::mtrace::TraceEvent) {
    let mut opts = Dict::new();
    let list = |l: Vec<String>| Value::List(l.into_iter().map(Value::Str).collect());
    if let Some(l) = e.eligible {
        opts.insert("eligible_authrole".into(), list(l));
    }
    if let Some(l) = e.exclude {
        opts.insert("exclude_authrole".into(), list(l));
    }
    s.publish(&e.topic, e.args, Dict::new(), opts);
}

/// One blocking call on the reconcile session.
fn call_sync(conn: &mut Conn, s: &mut Session, uri: &str, args: Vec<Value>) -> Result<Result<Value, String>, String> {
    let req = s.call(uri, args, Dict::new(), Dict::new());
    flush(conn, s)?;
    let deadline = std::time::Instant::now() + RECONCILE_CALL_TIMEOUT;
    loop {
        if std::time::Instant::now() > deadline {
            return Err(format!("{uri}: no answer within {RECONCILE_CALL_TIMEOUT:?}"));
        }
        let Some(m) = conn.recv().map_err(|e| e.to_string())? else { continue };
        match s.handle(m).map_err(|e| e.to_string())? {
            SessionEvent::Result { request, args, progress: false, .. } if request == req => {
                return Ok(Ok(args.into_iter().next().unwrap_or(Value::Null)));
            }
            SessionEvent::Error { request, error, args, .. } if request == req => {
                let msg = args.first().and_then(Value::as_str).unwrap_or("").to_owned();
                return Ok(Err(format!("{error}: {msg}")));
            }
            SessionEvent::Closed { reason, .. } => return Err(format!("reconcile session closed: {reason}")),
            _ => {}
        }
    }
}

fn strings(v: &Value) -> Vec<String> {
    v.as_list().map(|l| l.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()).unwrap_or_default()
}

/// What `node` runs, read through its node and worker APIs.
fn observe(
    conn: &mut Conn,
    s: &mut Session,
    node: &str,
) -> Result<BTreeMap<String, crate::reconcile::ObservedWorker>, String> {
    let n = |p: &str| format!("crossbarfabriccenter.node.{node}.{p}");
    let w = |worker: &str, p: &str| format!("crossbarfabriccenter.node.{node}.worker.{worker}.{p}");
    let workers = call_sync(conn, s, &n("get_workers"), vec![])??;
    let mut out = BTreeMap::new();
    for id in strings(&workers) {
        let info = call_sync(conn, s, &n("get_worker"), vec![Value::Str(id.clone())])??;
        let kind = info.as_dict().and_then(|d| d.get("type")).and_then(Value::as_str).unwrap_or("").to_owned();
        let mut ow = crate::reconcile::ObservedWorker { kind: kind.clone(), ..Default::default() };
        // A worker whose API is not registered yet reports nothing this pass.
        let transports = if kind == "router" {
            call_sync(conn, s, &w(&id, "get_router_transports"), vec![])?
        } else {
            call_sync(conn, s, &w(&id, "get_proxy_transports"), vec![])?
        };
        let Ok(transports) = transports else {
            out.insert(id, ow);
            continue;
        };
        for t in transports.as_list().cloned().unwrap_or_default() {
            match &t {
                Value::Str(tid) => {
                    ow.transports.insert(tid.clone(), None);
                }
                Value::Dict(d) => {
                    let tid = d.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
                    let port = d.get("port").and_then(Value::as_u64).and_then(|p| u16::try_from(p).ok());
                    ow.transports.insert(tid, port);
                }
                _ => {}
            }
        }
        if kind == "router" {
            for rid in strings(&call_sync(conn, s, &w(&id, "get_router_realms"), vec![])??) {
                let links = call_sync(conn, s, &w(&id, "get_router_realm_links"), vec![Value::Str(rid.clone())])?
                    .unwrap_or(Value::Null);
                let roles = call_sync(conn, s, &w(&id, "get_router_realm_roles"), vec![Value::Str(rid.clone())])?
                    .unwrap_or(Value::Null);
                ow.roles.insert(rid.clone(), strings(&roles));
                ow.realms.insert(rid, strings(&links));
            }
        } else {
            for tid in ow.transports.keys().cloned().collect::<Vec<_>>() {
                let t = call_sync(conn, s, &w(&id, "get_proxy_transport"), vec![Value::Str(tid.clone())])?
                    .unwrap_or(Value::Null);
                let cfg = t
                    .as_dict()
                    .and_then(|d| d.get("config"))
                    .map(crate::value::to_json)
                    .unwrap_or(serde_json::Value::Null);
                ow.transport_configs.insert(tid, cfg);
            }
            ow.connections = strings(&call_sync(conn, s, &w(&id, "get_proxy_connections"), vec![])??);
            for realm in strings(&call_sync(conn, s, &w(&id, "get_proxy_routes"), vec![])??) {
                let routes = call_sync(conn, s, &w(&id, "list_proxy_realm_routes"), vec![Value::Str(realm.clone())])??;
                for r in routes.as_list().cloned().unwrap_or_default() {
                    let d = r.as_dict().cloned().unwrap_or_default();
                    let rid = d.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
                    let cfg = d.get("config").map(crate::value::to_json).unwrap_or(serde_json::Value::Null);
                    let roles: BTreeMap<String, Vec<String>> = cfg
                        .as_object()
                        .map(|o| {
                            o.iter()
                                .map(|(k, v)| {
                                    let ids = match v {
                                        serde_json::Value::String(x) => vec![x.clone()],
                                        serde_json::Value::Array(a) => {
                                            a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()
                                        }
                                        _ => Vec::new(),
                                    };
                                    (k.clone(), ids)
                                })
                                .collect()
                        })
                        .unwrap_or_default();
                    ow.routes.push((realm.clone(), rid, roles));
                }
            }
        }
        out.insert(id, ow);
    }
    Ok(out)
}

fn reconcile_pass(shared: &Arc<Shared>, realm: &str, conn: &mut Conn, s: &mut Session) -> Result<(), String> {
    let (objects, online) = shared.master().reconcile_inputs(realm).map_err(|e| e.to_string())?;
    let mut observed: crate::reconcile::Observed = BTreeMap::new();
    for node in &online {
        match observe(conn, s, node) {
            Ok(o) => {
                observed.insert(node.clone(), o);
            }
            Err(e) => tracing::debug!(%realm, %node, error = %e, "node not observable this pass"),
        }
    }
    let actions = crate::reconcile::plan(&objects, &observed);
    for a in &actions {
        let args = a.args.iter().map(crate::value::from_json).collect();
        match call_sync(conn, s, &a.uri(), args)? {
            Ok(_) => {
                tracing::info!(%realm, node = %a.node, worker = a.worker.as_deref().unwrap_or(""), call = a.procedure, "reconcile")
            }
            Err(e) => tracing::warn!(%realm, node = %a.node, call = a.procedure, error = %e, "reconcile call failed"),
        }
    }
    if actions.is_empty() && crate::reconcile::complete(&objects, &observed) {
        let now = SystemTime::now();
        let mut events = Vec::new();
        {
            let mut m = shared.master();
            for kind in ["arealm", "webcluster"] {
                for o in objects.by_kind.get(kind).map(Vec::as_slice).unwrap_or(&[]) {
                    if o.get("status").and_then(serde_json::Value::as_str) == Some("STARTING") {
                        let oid = o.get("oid").and_then(serde_json::Value::as_str).unwrap_or("");
                        if let Ok(ev) = m.object_running(realm, kind, oid, now) {
                            events.extend(ev);
                        }
                    }
                }
            }
            if let Ok(ev) = m.check_routerclusters(realm, now) {
                events.extend(ev);
            }
        }
        for p in events {
            s.publish(&p.topic, p.args, Dict::new(), Dict::new());
        }
        flush(conn, s)?;
    }
    Ok(())
}

/// Starts the backend session of `realm` and waits until its procedures are
/// registered.
fn start_backend(shared: &Arc<Shared>, realm: &str) -> Result<(), ServiceError> {
    let (tx, rx) = mpsc::channel();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    shared.sessions.lock().unwrap_or_else(|e| e.into_inner()).insert(realm.to_owned(), tx);
    let (sh, r) = (shared.clone(), realm.to_owned());
    std::thread::Builder::new()
        .name(format!("master-{}", if realm == GLOBAL_REALM { "global" } else { realm }))
        .spawn(move || backend(sh, r, rx, ready_tx))?;
    match ready_rx.recv_timeout(Duration::from_secs(10)) {
        Ok(Ok(())) => {
            if realm != GLOBAL_REALM {
                let (sh, r) = (shared.clone(), realm.to_owned());
                std::thread::Builder::new().name(format!("reconcile-{realm}")).spawn(move || reconciler(sh, r))?;
                let (sh, r) = (shared.clone(), realm.to_owned());
                std::thread::Builder::new().name(format!("traces-{realm}")).spawn(move || mrealm_traces(sh, r))?;
            }
            Ok(())
        }
        Ok(Err(message)) => Err(ServiceError::Backend { realm: realm.to_owned(), message }),
        Err(_) => Err(ServiceError::Backend { realm: realm.to_owned(), message: "not ready within 10 s".into() }),
    }
}

fn connect(shared: &Shared, realm: &str) -> Result<Conn, String> {
    let target = Target::parse(&format!("unix:{}", shared.socket.display())).map_err(|e| e.to_string())?;
    let mut conn =
        Conn::open(&target, Serializer::Msgpack, Duration::from_secs(10), rand_seed()).map_err(|e| e.to_string())?;
    let auth = Auth { authid: Some("master".into()), cryptosign: Some(shared.seed), ..Auth::default() };
    conn.join_with(realm, &auth, Duration::from_secs(10)).map_err(|e| e.to_string())?;
    conn.stream().set_read_timeout(Some(POLL)).map_err(|e| e.to_string())?;
    Ok(conn)
}

fn rand_seed() -> u64 {
    SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(1, |d| d.as_nanos() as u64) | 1
}

fn flush(conn: &mut Conn, s: &mut Session) -> Result<(), String> {
    while let Some(m) = s.poll_transmit() {
        conn.push(&m).map_err(|e| e.to_string())?;
    }
    conn.flush().map_err(|e| e.to_string())
}

/// One backend session (see the module docs); reconnects while its realm runs.
fn backend(shared: Arc<Shared>, realm: String, rx: Receiver<Command>, ready: Sender<Result<(), String>>) {
    let mut ready = Some(ready);
    loop {
        match run_session(&shared, &realm, &rx, &mut ready) {
            Ok(()) => break,
            Err(e) => {
                if let Some(r) = ready.take() {
                    let _ = r.send(Err(e));
                    break;
                }
                if !shared.router.realm_names().iter().any(|r| r == &realm) {
                    break;
                }
                tracing::warn!(%realm, error = %e, "master backend session lost; reconnecting");
                std::thread::sleep(Duration::from_millis(200));
            }
        }
    }
    shared.sessions.lock().unwrap_or_else(|e| e.into_inner()).remove(&realm);
}

fn run_session(
    shared: &Arc<Shared>,
    realm: &str,
    rx: &Receiver<Command>,
    ready: &mut Option<Sender<Result<(), String>>>,
) -> Result<(), String> {
    let mut conn = connect(shared, realm)?;
    let mut s = Session::new();
    let global = realm == GLOBAL_REALM;
    let mut procs: Vec<&str> =
        if global { master::GLOBAL_PROCEDURES.to_vec() } else { master::MREALM_PROCEDURES.to_vec() };
    if global {
        procs.push(master::AUTHENTICATOR);
    }
    let mut waiting = Vec::new();
    for p in &procs {
        waiting.push(s.register(p, Dict::new()));
    }
    if !global {
        // The remote APIs, forwarded to the nodes.
        let mut prefix = Dict::new();
        prefix.insert("match".into(), Value::Str("prefix".into()));
        waiting.push(s.register(REMOTE_PREFIX, prefix));
        for t in ["wamp.session.on_join", "wamp.session.on_leave", "crossbarfabriccenter.node.on_heartbeat"] {
            waiting.push(s.subscribe(t, Dict::new()));
        }
        // The nodes' bridged realm meta events (bridge_meta_api).
        let mut wildcard = Dict::new();
        wildcard.insert("match".into(), Value::Str("wildcard".into()));
        waiting.push(s.subscribe(BRIDGED_META, wildcard.clone()));
        waiting.push(s.subscribe(NODE_READY, wildcard.clone()));
        // The nodes' and workers' lifecycle and trace events, re-published
        // as crossbarfabriccenter.remote.<api>.<event>(node, [worker,] *args).
        for (_, level, topic) in crate::lifecycle::FORWARDED {
            waiting.push(s.subscribe(&crate::lifecycle::pattern(level, topic), wildcard.clone()));
        }
    }
    flush(&mut conn, &mut s)?;
    // Kill requests waiting for their RESULT: call request → (nothing to do; logged).
    let mut kills: HashMap<RequestId, String> = HashMap::new();
    // Remote calls forwarded to a node: our CALL → the INVOCATION to answer.
    let mut forwards: HashMap<RequestId, RequestId> = HashMap::new();
    // Sessions that joined before this one subscribed (a node that
    // reconnected while the master restarted): wamp.session.list, then
    // wamp.session.get of each, handled like on_join.
    let mut lookups: HashMap<RequestId, bool> = HashMap::new();
    loop {
        while let Ok(cmd) = rx.try_recv() {
            match cmd {
                Command::Publish(p) => {
                    s.publish(&p.topic, p.args, Dict::new(), Dict::new());
                }
                Command::Kill(authid) => {
                    let mut kw = Dict::new();
                    kw.insert("reason".into(), Value::Str("wamp.close.killed".into()));
                    kw.insert("message".into(), Value::Str("the node was unpaired".into()));
                    let r = s.call("wamp.session.kill_by_authid", vec![Value::Str(authid.clone())], kw, Dict::new());
                    kills.insert(r, authid);
                }
                Command::Stop => {
                    s.goodbye();
                    let _ = flush(&mut conn, &mut s);
                    return Ok(());
                }
            }
        }
        flush(&mut conn, &mut s)?;
        let msg = match conn.recv() {
            Ok(Some(m)) => m,
            Ok(None) => continue,
            Err(e) => return Err(e.to_string()),
        };
        let ev = s.handle(msg).map_err(|e| e.to_string())?;
        match ev {
            SessionEvent::Registered { request, .. } | SessionEvent::Subscribed { request, .. } => {
                waiting.retain(|r| *r != request);
                if waiting.is_empty() {
                    if !global {
                        lookups.insert(s.call("wamp.session.list", Vec::new(), Dict::new(), Dict::new()), true);
                    }
                    if let Some(r) = ready.take() {
                        let _ = r.send(Ok(()));
                    }
                }
            }
            SessionEvent::Error { request, error, args, kwargs } => {
                if let Some(inv) = forwards.remove(&request) {
                    s.yield_error(inv, &error, args, kwargs);
                } else if lookups.remove(&request).is_some() {
                    // The session left meanwhile.
                } else if let Some(authid) = kills.remove(&request) {
                    tracing::warn!(%realm, %authid, %error, "could not close the sessions of an unpaired node");
                } else if waiting.contains(&request) {
                    let msg = args.first().and_then(Value::as_str).unwrap_or("").to_owned();
                    return Err(format!("could not register or subscribe: {error} {msg}"));
                }
            }
            SessionEvent::Result { request, args, kwargs, progress } => {
                if progress {
                    continue;
                }
                if let Some(inv) = forwards.remove(&request) {
                    s.yield_result(inv, args, kwargs);
                } else if let Some(list) = lookups.remove(&request) {
                    if list {
                        let ids = args.first().and_then(Value::as_list).cloned().unwrap_or_default();
                        for id in ids {
                            lookups.insert(s.call("wamp.session.get", vec![id], Dict::new(), Dict::new()), false);
                        }
                    } else {
                        on_event(shared, realm, &mut s, "wamp.session.on_join", &args, &Dict::new());
                    }
                }
                kills.remove(&request);
            }
            SessionEvent::Invocation { request, procedure, args, kwargs, details, .. }
                if procedure.starts_with(REMOTE_PREFIX) =>
            {
                let role = details.get("caller_authrole").and_then(Value::as_str).unwrap_or("");
                let target = if master::mrealm_role_allows(role, &procedure) {
                    let m = shared.master();
                    crate::node::remote_target(&procedure, &args, |n| m.node_authid_in(realm, n))
                } else {
                    Err(crate::ApiError::not_authorized(format!("{procedure}: not available to role '{role}'")))
                };
                match target {
                    Ok((uri, rest)) => {
                        let mut opts = Dict::new();
                        opts.insert("timeout".into(), Value::UInt(REMOTE_TIMEOUT.as_millis() as u64));
                        let c = s.call(&uri, rest, kwargs, opts);
                        forwards.insert(c, request);
                    }
                    Err(e) => s.yield_error(request, &e.uri, vec![Value::Str(e.message)], Dict::new()),
                }
            }
            SessionEvent::Invocation { request, procedure, args, kwargs, details, .. } => {
                answer(shared, realm, &mut s, request, &procedure, &args, &kwargs, &details);
            }
            SessionEvent::Event { topic, args, details, .. } => {
                on_event(shared, realm, &mut s, &topic, &args, &details)
            }
            SessionEvent::Closed { reason, .. } => {
                let _ = flush(&mut conn, &mut s);
                return if reason == "wamp.close.system_shutdown" {
                    Ok(())
                } else {
                    Err(format!("session closed: {reason}"))
                };
            }
            _ => {}
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn answer(
    shared: &Arc<Shared>,
    realm: &str,
    s: &mut Session,
    request: RequestId,
    procedure: &str,
    args: &[Value],
    kwargs: &Dict,
    details: &Dict,
) {
    if procedure == master::AUTHENTICATOR {
        let (req_realm, auth_details) = match (args.first(), args.get(2)) {
            (Some(Value::Str(r)), Some(Value::Dict(d))) => (r.clone(), d.clone()),
            _ => {
                s.yield_error(
                    request,
                    "wamp.error.invalid_argument",
                    vec![Value::Str("bad authenticator call".into())],
                    Dict::new(),
                );
                return;
            }
        };
        let outcome = shared.master().authenticate(&req_realm, &auth_details);
        match outcome {
            Ok(p) => {
                // A node gets a role of its own on its management realm, made here.
                let d = p.as_dict();
                let role = d.and_then(|d| d.get("role")).and_then(Value::as_str).unwrap_or("");
                if master::is_node_role(role) {
                    let realm = d.and_then(|d| d.get("realm")).and_then(Value::as_str).unwrap_or("").to_owned();
                    let authid = d.and_then(|d| d.get("authid")).and_then(Value::as_str).unwrap_or("");
                    if let Err(e) = ensure_role(shared, &realm, &master::node_role_config(authid)) {
                        tracing::error!(%realm, %authid, error = %e, "cannot make the node's role");
                        s.yield_error(request, "wamp.error.not_authorized", vec![Value::Str(e)], Dict::new());
                        return;
                    }
                }
                s.yield_result(request, vec![p], Dict::new())
            }
            Err(e) => {
                tracing::info!(realm = %req_realm, error = %e, "management login refused");
                s.yield_error(request, &e.uri, vec![Value::Str(e.message)], Dict::new());
            }
        }
        return;
    }
    let caller = Caller {
        realm: realm.to_owned(),
        session: details.get("caller").and_then(Value::as_u64).unwrap_or(0),
        authid: details.get("caller_authid").and_then(Value::as_str).unwrap_or("").to_owned(),
        authrole: details.get("caller_authrole").and_then(Value::as_str).unwrap_or("").to_owned(),
    };
    let now = SystemTime::now();
    let outcome = shared.master().handle_call(now, &caller, procedure, args, kwargs);
    let fx = outcome.effects;
    for name in &fx.start_realms {
        match realm_setup(&mrealm_realm(name))
            .and_then(|r| shared.router.start_realm(r).map_err(|e| ServiceError::Router(e.to_string())))
        {
            Ok(()) => {
                shared.master().realm_started(name, now);
                // Registered before the call returns: the caller may use the realm at once.
                if let Err(e) = start_backend(shared, name) {
                    tracing::error!(realm = %name, error = %e, "management realm backend did not start");
                }
            }
            Err(e) => tracing::error!(realm = %name, error = %e, "cannot start the management realm's router realm"),
        }
    }
    for (r, authid) in &fx.kill {
        shared.send(r, Command::Kill(authid.clone()));
    }
    for name in &fx.stop_realms {
        shared.send(name, Command::Stop);
        if let Err(e) = shared.router.stop_realm(name) {
            tracing::warn!(realm = %name, error = %e, "stopping the management realm's router realm");
        }
    }
    match outcome.result {
        Ok(v) => s.yield_result(request, vec![v], Dict::new()),
        Err(e) => s.yield_error(request, &e.uri, vec![Value::Str(e.message)], Dict::new()),
    }
    for p in fx.publish {
        if p.realm == realm {
            s.publish(&p.topic, p.args, Dict::new(), Dict::new());
        } else {
            shared.send(&p.realm.clone(), Command::Publish(p));
        }
    }
}

fn on_event(shared: &Arc<Shared>, realm: &str, s: &mut Session, topic: &str, args: &[Value], details: &Dict) {
    let now = SystemTime::now();
    let event = match topic {
        "wamp.session.on_join" => {
            let Some(d) = args.first().and_then(Value::as_dict) else { return };
            if !d.get("authrole").and_then(Value::as_str).is_some_and(master::is_node_role) {
                return;
            }
            let authid = d.get("authid").and_then(Value::as_str).unwrap_or("");
            let session = d.get("session").and_then(Value::as_u64).unwrap_or(0);
            shared.master().node_joined(realm, authid, session, now);
            None
        }
        "wamp.session.on_leave" => {
            let Some(session) = args.first().and_then(Value::as_u64) else { return };
            shared.master().session_left(realm, session, now)
        }
        t if t.starts_with("crossbarfabriccenter.node.") && t.contains(".root.") => {
            // Re-published as the reference does: remote.realm.meta.<event>(node, worker, realm_id, *args).
            let parts: Vec<&str> = t.split('.').collect();
            let publisher = details.get("publisher_authid").and_then(Value::as_str);
            if let [_, _, authid, "worker", worker, "realm", realm_id, "root", event] = parts.as_slice() {
                if publisher == Some(*authid) {
                    let mut a = vec![
                        Value::Str((*authid).to_owned()),
                        Value::Str((*worker).to_owned()),
                        Value::Str((*realm_id).to_owned()),
                    ];
                    a.extend(args.iter().cloned());
                    let topic = format!("crossbarfabriccenter.remote.realm.meta.{}", event.replace('-', "."));
                    s.publish(&topic, a, Dict::new(), Dict::new());
                } else {
                    tracing::warn!(%realm, %t, ?publisher, "bridged meta event from another node ignored");
                }
            }
            None
        }
        t if t.starts_with("crossbarfabriccenter.node.") && t.ends_with(".on_ready") => {
            // Only the node itself can announce it (the publisher is disclosed).
            let parts: Vec<&str> = t.split('.').collect();
            let publisher = details.get("publisher_authid").and_then(Value::as_str);
            let session = details.get("publisher").and_then(Value::as_u64);
            match (parts.as_slice(), session) {
                ([_, _, authid, "on_ready"], Some(session)) if publisher == Some(*authid) => {
                    shared.master().node_ready(realm, authid, session, now)
                }
                _ => {
                    tracing::warn!(%realm, %t, ?publisher, "ready announcement from another node ignored");
                    None
                }
            }
        }
        "crossbarfabriccenter.node.on_heartbeat" => {
            // Only a node's own heartbeat counts (the publisher is disclosed).
            let publisher = details.get("publisher_authid").and_then(Value::as_str);
            let session = details.get("publisher").and_then(Value::as_u64);
            match (args.first(), args.get(1), session) {
                (Some(Value::Str(authid)), Some(hb), Some(session)) if publisher == Some(authid.as_str()) => {
                    // Crossbar's master forwards it as remote.node.on_node_heartbeat(node, hb).
                    let fwd = vec![Value::Str(authid.clone()), hb.clone()];
                    s.publish("crossbarfabriccenter.remote.node.on_node_heartbeat", fwd, Dict::new(), Dict::new());
                    shared.master().heartbeat(realm, authid, session, hb, now)
                }
                _ => {
                    tracing::warn!(%realm, ?publisher, "heartbeat for another node (or without a disclosed publisher) ignored");
                    None
                }
            }
        }
        t if t.starts_with("crossbarfabriccenter.node.") => {
            let publisher = details.get("publisher_authid").and_then(Value::as_str);
            match crate::lifecycle::forward(t, publisher, args) {
                Some((topic, a)) => {
                    s.publish(&topic, a, Dict::new(), Dict::new());
                }
                None => tracing::warn!(%realm, %t, ?publisher, "node event not forwarded (not one of its own)"),
            }
            None
        }
        _ => None,
    };
    if let Some(p) = event {
        s.publish(&p.topic, p.args, Dict::new(), Dict::new());
    }
}
