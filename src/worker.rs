//! One worker running in this process: a router worker or a proxy worker,
//! serving until SIGTERM/SIGINT, reloading TLS certificates on SIGHUP.
//!
//! Used both by the single-worker node (the worker runs inside the node
//! process) and by the hidden `junction worker` subcommand the supervisor
//! spawns for each worker of a multi-worker node.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use cluster_membership::NodeKey;
use junction_config::{NodeConfig, WorkerConfig};
use proxy_frontend::ProxyWorker;
use router_core::runtime::{EndpointSetup, RouterNode};

use crate::signals::{self, SignalSet};

/// What a worker child prints on stdout once it accepts connections.
pub const WORKER_READY_LINE: &str = "junction: worker ready";
/// Prefix of the line a worker child prints on stdout when it cannot start
/// (the rest is the error, on one line).
pub const WORKER_ERROR_PREFIX: &str = "junction: worker error: ";
/// Longest a router worker waits, before it reports ready, for its
/// configured rlinks to sync with their peers.
pub const RLINKS_SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);
/// Environment variable naming the master of a managed node: a worker
/// child that finds it opens its own uplink for the worker API.
pub const FABRIC_URL_ENV: &str = "CROSSBAR_FABRIC_URL";

/// Environment variable naming the supervisor's pid (set for worker
/// children, so a child whose supervisor is already gone exits at once).
pub const SUPERVISOR_PID_ENV: &str = "JUNCTION_SUPERVISOR_PID";

/// The worker type name as used in configs and in the supervisor's output.
pub fn kind_name(w: &WorkerConfig) -> &'static str {
    match w {
        WorkerConfig::Router(_) => "router",
        WorkerConfig::Proxy(_) => "proxy",
        WorkerConfig::Unsupported { .. } => "unsupported",
    }
}

/// The worker's config `id`, if it has one.
pub fn worker_id(w: &WorkerConfig) -> Option<String> {
    match w {
        WorkerConfig::Router(r) => r.id.clone(),
        WorkerConfig::Proxy(p) => p.id.clone(),
        WorkerConfig::Unsupported { .. } => None,
    }
}

/// A started worker.
pub enum Running {
    /// A router worker (shared with its management uplink, if any).
    Router(std::sync::Arc<RouterNode>),
    /// A proxy worker (shared with its management uplink, if any).
    Proxy(std::sync::Arc<ProxyWorker>),
}

impl Running {
    /// Starts worker `index` of `cfg` in this process. A router worker
    /// trusts proxy links proven with `key` (the node key) when one is given;
    /// a proxy worker needs the key. Relative paths resolve against
    /// `base_dir`.
    pub fn start(cfg: &NodeConfig, index: usize, key: Option<NodeKey>, base_dir: &Path) -> Result<Running> {
        match cfg.workers.get(index) {
            Some(WorkerConfig::Router(w)) => {
                let mut setup =
                    router_core::runtime::from_config::setup_from_worker_in(w, base_dir).context("configuration")?;
                if let Some(key) = &key {
                    setup.trusted_proxy_keys.push(key.public_bytes());
                }
                setup.node_key = key;
                let node = RouterNode::start(setup).context("starting the router worker")?;
                // A cluster member reports ready once it has learnt its peers'
                // state (or found them unreachable).
                if !node.wait_rlinks_settled(RLINKS_SETTLE_TIMEOUT) {
                    tracing::warn!(
                        "some rlinks have not synced within {RLINKS_SETTLE_TIMEOUT:?}; ready anyway (they keep trying)"
                    );
                }
                Ok(Running::Router(std::sync::Arc::new(node)))
            }
            Some(WorkerConfig::Proxy(_)) => {
                let key = key.ok_or_else(|| anyhow!("a proxy worker needs the node key"))?;
                Ok(Running::Proxy(std::sync::Arc::new(
                    ProxyWorker::start(cfg, index, key, base_dir).context("starting the proxy worker")?,
                )))
            }
            Some(WorkerConfig::Unsupported { kind }) => bail!("worker type {kind} is not supported"),
            None => bail!("the configuration has no worker {index} ({} workers)", cfg.workers.len()),
        }
    }

    /// The bound endpoints, in transport order.
    pub fn endpoints(&self) -> &[EndpointSetup] {
        match self {
            Running::Router(n) => &n.endpoints,
            Running::Proxy(p) => &p.endpoints,
        }
    }

    /// Re-reads the TLS files of every TLS transport; `Ok(n)`: `n` reloaded.
    pub fn reload_certificates(&self) -> Result<usize, String> {
        match self {
            Running::Router(n) => n.reload_certificates().map_err(|e| e.to_string()),
            Running::Proxy(p) => p.reload_certificates().map_err(|e| e.to_string()),
        }
    }

    /// One-line counters summary for logs.
    pub fn summary(&self) -> String {
        match self {
            Running::Router(n) => {
                format!("sessions={} {} {}", n.directory.len(), n.stats.summary(), n.cluster.summary())
            }
            Running::Proxy(p) => p.summary(),
        }
    }

    /// Serves until SIGTERM/SIGINT (then exits the process with status 0);
    /// SIGHUP reloads TLS certificates. `signals` must have been blocked
    /// (with [`signals::block`]) before the worker started its threads.
    pub fn serve(self, signals: &SignalSet) -> ! {
        loop {
            let sig = signals::wait(signals);
            if sig == libc::SIGHUP {
                match self.reload_certificates() {
                    Ok(n) => tracing::info!(transports = n, "SIGHUP: TLS certificates reloaded"),
                    Err(e) => tracing::error!(error = %e, "SIGHUP: TLS certificate reload failed"),
                }
                continue;
            }
            tracing::info!(signal = sig, stats = %self.summary(), "shutting down");
            stopping();
            if let Some(path) = WORKER_STATUS_FILE.get() {
                let _ = std::fs::remove_file(path);
            }
            for ep in self.endpoints() {
                if let EndpointSetup::Unix { path } = ep {
                    let _ = std::fs::remove_file(path);
                }
            }
            // Sessions end with their sockets when the process exits; clients
            // see the connection close and reconnect.
            std::process::exit(0);
        }
    }
}

/// This worker process's own status file (see `status.rs`), removed when
/// it stops.
static WORKER_STATUS_FILE: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Prints `line` on stdout and flushes; a closed stdout is ignored (the
/// reader went away; that must not take the node down).
pub fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// The process is ready: prints `line` and, under systemd with
/// `Type=notify` (`NOTIFY_SOCKET` set), tells the service manager
/// (`READY=1`, `STATUS=line`).
pub fn ready(line: &str) {
    say(line);
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Ready, sd_notify::NotifyState::Status(line)]) {
        tracing::warn!(error = %e, "sd_notify READY=1 failed");
    }
}

/// The process is stopping: `STOPPING=1` to the service manager, if any.
pub fn stopping() {
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]) {
        tracing::warn!(error = %e, "sd_notify STOPPING=1 failed");
    }
}

/// The node key file: `controller.options.node_key` (relative to
/// `config_dir`) or `<config_dir>/.junction/key.priv`.
pub fn node_key_path(cfg: &NodeConfig, config_dir: &Path) -> PathBuf {
    match cfg.controller.node_key() {
        Some(p) if p.is_absolute() => p,
        Some(p) => config_dir.join(p),
        None => config_dir.join(".junction").join("key.priv"),
    }
}

/// Loads (or creates) the node key, with the file named in the error.
pub fn load_node_key(cfg: &NodeConfig, config_dir: &Path) -> Result<NodeKey> {
    let path = node_key_path(cfg, config_dir);
    NodeKey::load_or_create(&path).with_context(|| format!("node key {}", path.display()))
}

/// `junction worker --config FILE --index I`: the child process the
/// supervisor runs for one worker. Never returns.
pub fn run_child(config: &Path, index: usize, log: &str) -> ! {
    // First thing: die with the supervisor. PR_SET_PDEATHSIG is also set
    // between fork and exec by the supervisor; setting it again is harmless.
    // SAFETY: plain prctl/getppid calls.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
        if let Some(expected) = std::env::var(SUPERVISOR_PID_ENV).ok().and_then(|s| s.parse::<libc::pid_t>().ok()) {
            if libc::getppid() != expected {
                // The supervisor died before we set up the death signal.
                std::process::exit(1);
            }
        }
    }
    let signals = signals::block();
    let traced = crate::init_tracing(log);
    let _span = tracing::info_span!("worker", index).entered();
    let result = (|| -> Result<(Running, PathBuf)> {
        traced?;
        let cfg = crate::load_config(config, false)?;
        let dir = crate::config_dir(config)?;
        let key = load_node_key(&cfg, &dir)?;
        Ok((Running::start(&cfg, index, Some(key), &dir)?, crate::status::status_path(&cfg, &dir)))
    })();
    match result {
        Ok((running, node_status)) => {
            if let Running::Router(node) = &running {
                let _ = WORKER_STATUS_FILE.set(crate::status::worker_file(&node_status, std::process::id()));
                crate::status::spawn_worker_writer(&node_status, node.clone());
            }
            for ep in running.endpoints() {
                tracing::info!(endpoint = %ep, "listening");
            }
            if let Err(e) = start_worker_uplink(config, index, &running) {
                tracing::error!(error = %format!("{e:#}"), "cannot start the worker's uplink to the master; serving without it");
            }
            say(WORKER_READY_LINE);
            running.serve(&signals)
        }
        Err(e) => {
            let text = format!("{e:#}");
            eprintln!("junction worker {index}: {text}");
            say(&format!("{WORKER_ERROR_PREFIX}{}", text.replace('\n', " | ")));
            std::process::exit(1)
        }
    }
}

/// The running router worker, as the worker API sees it.
struct RouterControlImpl {
    node: std::sync::Arc<RouterNode>,
    name: String,
    base_dir: PathBuf,
    /// The worker's transports in its start-up config (JSON), by id.
    startup: std::collections::HashMap<String, serde_json::Value>,
    /// Bridged realms: (realm id, their meta events).
    bridges: std::cell::RefCell<Vec<(String, router_core::runtime::node::OperatorEvents)>>,
}

impl master_control::worker::RouterControl for RouterControlImpl {
    fn realm_names(&self) -> Vec<String> {
        self.node.realm_names()
    }

    fn start_realm(&self, realm: &junction_config::RealmConfig) -> Result<(), String> {
        let setup = router_core::runtime::from_config::realm_setup(realm, &self.name, &self.base_dir)
            .map_err(|e| e.to_string())?;
        self.node.start_realm(setup).map_err(|e| e.to_string())
    }

    fn stop_realm(&self, name: &str) -> Result<usize, String> {
        self.node.stop_realm(name).map_err(|e| e.to_string())
    }

    fn start_link(&self, realm: &str, link: &junction_config::RLinkConfig) -> Result<(), String> {
        let setup = router_core::runtime::from_config::rlink_setup(link, &self.name, &self.base_dir)
            .map_err(|e| e.to_string())?;
        debug_assert_eq!(setup.realm, realm);
        self.node.start_rlink(setup).map_err(|e| e.to_string())
    }

    fn stop_link(&self, realm: &str, id: &str) -> Result<(), String> {
        self.node.stop_rlink(realm, id).map_err(|e| e.to_string())
    }

    fn links(&self, realm: &str) -> Result<Vec<serde_json::Value>, String> {
        let links = self.node.rlinks(realm).map_err(|e| e.to_string())?;
        Ok(links
            .into_iter()
            .map(|l| {
                serde_json::json!({
                    "id": l.id, "realm": l.realm, "target": l.target, "tls": l.tls,
                    "state": format!("{:?}", l.state).to_lowercase(), "synced": l.synced,
                    "peer": l.peer_name,
                })
            })
            .collect())
    }

    fn set_role(&self, realm: &str, role: &junction_config::RoleConfig) -> Result<(), String> {
        self.node
            .set_realm_role(realm, router_core::runtime::from_config::role_from_config(role))
            .map_err(|e| e.to_string())
    }

    fn remove_role(&self, realm: &str, role: &str) -> Result<usize, String> {
        self.node.remove_realm_role(realm, role).map_err(|e| e.to_string())
    }

    fn transports(&self) -> Vec<serde_json::Value> {
        self.node
            .transports()
            .iter()
            .filter(|t| !t.stopped.load(std::sync::atomic::Ordering::Relaxed))
            .map(|t| transport_info(&t.setup))
            .collect()
    }

    fn start_transport(
        &self,
        id: &str,
        transport: &junction_config::TransportConfig,
    ) -> Result<serde_json::Value, String> {
        let mut t = transport.clone();
        t.id = Some(id.to_owned());
        let keys = router_core::runtime::from_config::transport_proxy_keys(&t).map_err(|e| e.to_string())?;
        let index = self.node.transports().len();
        let setup = router_core::runtime::from_config::transport_setup(index, &t, rand_secret(), &self.base_dir)
            .map_err(|e| e.to_string())?;
        let (_, endpoint) = self.node.start_transport(setup, keys).map_err(|e| e.to_string())?;
        let mut info = serde_json::json!({"id": id, "endpoint": endpoint.to_string()});
        if let EndpointSetup::Tcp { addr, .. } = endpoint {
            info["port"] = serde_json::json!(addr.port());
        }
        Ok(info)
    }

    fn stop_transport(&self, id: &str) -> Result<(), String> {
        self.node.stop_transport(id).map_err(|e| e.to_string())
    }

    fn tracer(&self) -> std::sync::Arc<router_core::engine::trace::Tracer> {
        self.node.tracer()
    }

    fn startup_transport_config(&self, id: &str) -> Option<serde_json::Value> {
        self.startup.get(id).cloned()
    }

    fn replace_transport(&self, id: &str, transport: &junction_config::TransportConfig) -> Result<(), String> {
        let setup = rebuilt_setup(id, transport, self.node.transports().len(), &self.base_dir)?;
        self.node.replace_transport_setup(id, setup).map_err(|e| e.to_string())
    }

    fn bridge_meta(&self, realm_id: &str, realm: &str) -> Result<(), String> {
        let rx = self.node.operator_events(realm).map_err(|e| e.to_string())?;
        self.bridges.borrow_mut().push((realm_id.to_owned(), rx));
        Ok(())
    }

    fn meta_call(
        &self,
        realm: &str,
        procedure: &str,
        args: Vec<wamp_proto::Value>,
        kwargs: wamp_proto::Dict,
    ) -> Result<wamp_proto::Value, (String, String)> {
        let payload = wamp_proto::Payload::values(Some(args), (!kwargs.is_empty()).then_some(kwargs));
        match self.node.meta_call(realm, procedure, payload) {
            Ok(r) => r,
            Err(e) => Err(("crossbar.error.no_such_object".into(), e.to_string())),
        }
    }
}

/// `{id, type, endpoint, port?}` of a transport.
fn transport_info(t: &router_core::runtime::setup::TransportSetup) -> serde_json::Value {
    let kind = match &t.framing {
        router_core::runtime::setup::FramingSetup::RawSocket(_) => "rawsocket",
        _ => "web",
    };
    let mut info = serde_json::json!({"id": t.id, "type": kind, "endpoint": t.endpoint.to_string()});
    if let EndpointSetup::Tcp { addr, .. } = &t.endpoint {
        info["port"] = serde_json::json!(addr.port());
    }
    info
}

/// The setup of running transport `id` from its changed configuration.
fn rebuilt_setup(
    id: &str,
    transport: &junction_config::TransportConfig,
    index: usize,
    base_dir: &Path,
) -> Result<router_core::runtime::setup::TransportSetup, String> {
    let mut t = transport.clone();
    t.id = Some(id.to_owned());
    router_core::runtime::from_config::transport_setup(index, &t, rand_secret(), base_dir).map_err(|e| e.to_string())
}

/// The transports of worker `index` in the JSON config file `config`, by
/// id (those the web service API may change); empty for a YAML file.
fn startup_transports(config: &Path, index: usize) -> std::collections::HashMap<String, serde_json::Value> {
    let raw = std::fs::read_to_string(config).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok());
    let list = raw
        .as_ref()
        .and_then(|r| r.pointer(&format!("/workers/{index}/transports")))
        .and_then(serde_json::Value::as_array);
    list.into_iter().flatten().filter_map(|t| Some((t.get("id")?.as_str()?.to_owned(), t.clone()))).collect()
}

/// A fresh key for the mock challenges of a run-time transport.
fn rand_secret() -> [u8; 32] {
    let mut s = [0u8; 32];
    let seed = cluster_membership::NodeKey::generate().seed();
    s.copy_from_slice(&seed);
    s
}

/// The running proxy worker, as the worker API sees it.
struct ProxyControlImpl {
    proxy: std::sync::Arc<ProxyWorker>,
    base_dir: PathBuf,
    /// The worker's transports in its start-up config (JSON), by id.
    startup: std::collections::HashMap<String, serde_json::Value>,
}

impl master_control::proxy::ProxyControl for ProxyControlImpl {
    fn start_link(&self, id: &str, realm: &str, c: &junction_config::ProxyConnectionConfig) -> Result<(), String> {
        let (addr, tls) =
            router_core::runtime::from_config::dial_target(&c.endpoint, &self.base_dir).map_err(|e| e.to_string())?;
        self.proxy.start_connection(id, realm, addr, tls).map_err(|e| e.to_string())
    }

    fn stop_links(&self, id: &str) -> Result<(), String> {
        self.proxy.stop_connection(id).map(|_| ()).map_err(|e| e.to_string())
    }

    fn start_route(&self, realm: &str, roles: &[(String, Vec<String>)]) -> Result<String, String> {
        self.proxy.start_route(realm, roles).map_err(|e| e.to_string())
    }

    fn stop_route(&self, realm: &str, id: &str) -> Result<(), String> {
        self.proxy.stop_route(realm, id).map_err(|e| e.to_string())
    }

    fn start_transport(
        &self,
        id: &str,
        transport: &junction_config::TransportConfig,
    ) -> Result<serde_json::Value, String> {
        let mut t = transport.clone();
        t.id = Some(id.to_owned());
        let index = self.proxy.transports().len();
        let setup = router_core::runtime::from_config::transport_setup(index, &t, rand_secret(), &self.base_dir)
            .map_err(|e| e.to_string())?;
        let (_, endpoint) = self.proxy.start_transport(setup).map_err(|e| e.to_string())?;
        let mut info = serde_json::json!({"id": id, "endpoint": endpoint.to_string()});
        if let EndpointSetup::Tcp { addr, .. } = endpoint {
            info["port"] = serde_json::json!(addr.port());
        }
        Ok(info)
    }

    fn stop_transport(&self, id: &str) -> Result<(), String> {
        self.proxy.stop_transport(id).map_err(|e| e.to_string())
    }

    fn startup_transport_config(&self, id: &str) -> Option<serde_json::Value> {
        self.startup.get(id).cloned()
    }

    fn replace_transport(&self, id: &str, transport: &junction_config::TransportConfig) -> Result<(), String> {
        let setup = rebuilt_setup(id, transport, self.proxy.transports().len(), &self.base_dir)?;
        self.proxy.replace_transport_setup(id, setup).map_err(|e| e.to_string())
    }

    fn transports(&self) -> Vec<serde_json::Value> {
        self.proxy
            .transports()
            .iter()
            .filter(|t| !t.stopped.load(std::sync::atomic::Ordering::Relaxed))
            .map(|t| transport_info(&t.setup))
            .collect()
    }
}

/// The worker API a managed worker serves.
enum WorkerApis {
    Router(master_control::worker::RouterWorkerApi, RouterControlImpl),
    Proxy(master_control::proxy::ProxyWorkerApi, ProxyControlImpl),
}

struct WorkerUplink {
    apis: WorkerApis,
    worker_id: String,
    /// The process API (`remote.worker.*`: CPU affinity, process stats, ...).
    process: master_control::process::ProcessApi,
}

impl WorkerUplink {
    fn prefix(&self, authid: &str) -> String {
        format!("crossbarfabriccenter.node.{authid}.worker.{}.", self.worker_id)
    }
}

impl master_control::uplink::UplinkHandler for WorkerUplink {
    fn procedures(&self, id: &master_control::node::NodeIdentity) -> Vec<String> {
        let mut p = match &self.apis {
            WorkerApis::Router(api, _) => api.procedures(&id.authid),
            WorkerApis::Proxy(api, _) => api.procedures(&id.authid),
        };
        let prefix = self.prefix(&id.authid);
        p.extend(
            master_control::process::PROCESS_PROCEDURES
                .iter()
                .chain(master_control::process::WORKER_ONLY_PROCEDURES.iter())
                .chain(["get_node_id", "set_node_id"].iter())
                .map(|proc| format!("{prefix}{proc}")),
        );
        p
    }

    fn call(
        &mut self,
        id: &master_control::node::NodeIdentity,
        procedure: &str,
        args: &[wamp_proto::Value],
        kwargs: &wamp_proto::Dict,
    ) -> (Result<wamp_proto::Value, master_control::ApiError>, master_control::node::NodeAction) {
        let now = std::time::SystemTime::now();
        let missing = || {
            master_control::ApiError::new(
                "wamp.error.no_such_procedure",
                format!("not a procedure of this worker: {procedure}"),
            )
        };
        let prefix = self.prefix(&id.authid);
        match procedure.strip_prefix(&prefix) {
            // The node id is the node's authid on the master (it comes
            // with the pairing): it can be read, and "set" only to itself.
            Some("get_node_id") => {
                return (Ok(wamp_proto::Value::Str(id.authid.clone())), master_control::node::NodeAction::None)
            }
            Some("set_node_id") => {
                let a = master_control::value::Args { procedure: "set_node_id", args, kwargs };
                let r = a.str(0, "node_id").and_then(|n| {
                    if n == id.authid {
                        Ok(wamp_proto::Value::Null)
                    } else {
                        Err(master_control::ApiError::new(
                            "crossbar.error.invalid_configuration",
                            format!("set_node_id: this node is '{}' on its master (from the pairing); pair it again under '{n}' to rename it", id.authid),
                        ))
                    }
                });
                return (r, master_control::node::NodeAction::None);
            }
            _ => {}
        }
        if let Some(r) = procedure.strip_prefix(&prefix).and_then(|p| self.process.handle(p, args, kwargs)) {
            return (r, master_control::node::NodeAction::None);
        }
        let r = match &mut self.apis {
            WorkerApis::Router(api, ctl) => match api.suffix(&id.authid, procedure) {
                Some(p) => {
                    api.set_node_id(&id.authid);
                    api.handle(ctl, now, p, args, kwargs)
                }
                None => Err(missing()),
            },
            WorkerApis::Proxy(api, ctl) => match api.suffix(&id.authid, procedure) {
                Some(p) => api.handle(ctl, now, p, args, kwargs),
                None => Err(missing()),
            },
        };
        (r, master_control::node::NodeAction::None)
    }

    /// Crossbar's `on_worker_ready({type, id, pid})`, once the worker's
    /// procedures are registered: from then on the master's calls reach it.
    fn ready(&self, id: &master_control::node::NodeIdentity) -> Option<(String, Vec<wamp_proto::Value>)> {
        let kind = match &self.apis {
            WorkerApis::Router(..) => "router",
            WorkerApis::Proxy(..) => "proxy",
        };
        let info = serde_json::json!({"type": kind, "id": self.worker_id, "pid": std::process::id()});
        Some((format!("{}on_worker_ready", self.prefix(&id.authid)), vec![master_control::value::from_json(&info)]))
    }

    fn events(&mut self, id: &master_control::node::NodeIdentity) -> Vec<(String, Vec<wamp_proto::Value>)> {
        let prefix = self.prefix(&id.authid);
        let mut out: Vec<_> = self
            .process
            .take_events(std::time::Instant::now())
            .into_iter()
            .map(|(suffix, args)| (format!("{prefix}{suffix}"), args))
            .collect();
        let (api, ctl) = match &mut self.apis {
            WorkerApis::Router(api, ctl) => (api, ctl),
            WorkerApis::Proxy(api, _) => {
                out.extend(api.take_events(&id.authid));
                return out;
            }
        };
        out.extend(api.take_events(ctl, &id.authid, std::time::SystemTime::now()));
        ctl.bridges.borrow_mut().retain(|(realm_id, rx)| loop {
            match rx.try_recv() {
                Ok((topic, args)) => out
                    .push((master_control::worker::bridged_topic(&id.authid, api.worker_id(), realm_id, &topic), args)),
                Err(flume::TryRecvError::Empty) => break true,
                // The realm stopped.
                Err(flume::TryRecvError::Disconnected) => break false,
            }
        });
        out
    }
}

/// In a managed node (the supervisor passed the master's URL), a router
/// worker opens its own session to the master and serves the worker API.
fn start_worker_uplink(config: &Path, index: usize, running: &Running) -> Result<()> {
    let Ok(url) = std::env::var(FABRIC_URL_ENV) else { return Ok(()) };
    let cfg = crate::load_config(config, false)?;
    let dir = crate::config_dir(config)?;
    let worker_id = cfg.workers.get(index).and_then(worker_id).unwrap_or_else(|| format!("worker{index}"));
    let key = load_node_key(&cfg, &dir)?;
    let target = wamp_client::target::Target::parse(&url).with_context(|| format!("master URL {url:?}"))?;
    let mut extra = wamp_proto::Dict::new();
    extra.insert("worker".into(), wamp_proto::Value::Str(worker_id.clone()));
    let setup = master_control::uplink::UplinkSetup {
        target,
        seed: key.seed(),
        authextra: extra,
        name: format!("worker {worker_id}"),
        period: std::time::Duration::from_secs(3600),
        first_after: std::time::Duration::from_secs(3600),
    };
    let kind = match running {
        Running::Router(_) => "router",
        Running::Proxy(_) => "proxy",
    };
    let process =
        master_control::process::ProcessApi::new(&worker_id, kind, master_control::process::process_start_time());
    let uplink_worker_id = worker_id.clone();
    let apis = match running {
        Running::Router(node) => WorkerApis::Router(
            master_control::worker::RouterWorkerApi::new(&worker_id),
            RouterControlImpl {
                node: node.clone(),
                name: worker_id,
                base_dir: dir,
                startup: startup_transports(config, index),
                bridges: Default::default(),
            },
        ),
        Running::Proxy(proxy) => WorkerApis::Proxy(
            master_control::proxy::ProxyWorkerApi::new(&worker_id),
            ProxyControlImpl { proxy: proxy.clone(), base_dir: dir, startup: startup_transports(config, index) },
        ),
    };
    let mut handler = WorkerUplink { apis, worker_id: uplink_worker_id, process };
    std::thread::Builder::new()
        .name("worker-uplink".into())
        .spawn(move || master_control::uplink::run(&setup, &mut handler))
        .context("spawning the worker uplink")?;
    Ok(())
}
