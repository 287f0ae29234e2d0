//! `junction edge init|start|stop`: a node managed by a master (Crossbar's
//! "edge" personality).
//!
//! * `init --appdir DIR` writes `DIR/.crossbar/key.priv` and `key.pub`
//!   (Crossbar's key file format, with the `node-authid` and
//!   `node-cluster-ip` tags from `CROSSBAR_NODE_ID` and
//!   `CROSSBAR_NODE_CLUSTER_IP`) and a starter `config.json`.
//! * `start --cbdir DIR` runs the node: the supervisor runs the workers of
//!   `DIR/config.json` (possibly none), and an **uplink** thread keeps a
//!   session to the master (`CROSSBAR_FABRIC_URL`, else
//!   `controller.fabric.transport`) open: cryptosign with the node key,
//!   authrole `node`; the master puts it on its management realm. The
//!   uplink registers the node API (`crossbarfabriccenter.node.<authid>.*`,
//!   see `master_control::node`) and publishes heartbeats. While the master
//!   is away it keeps retrying (backoff up to
//!   `master_control::uplink::BACKOFF_MAX`); the workers keep serving
//!   meanwhile. Each worker process opens an uplink of its own for the
//!   worker API (see `worker.rs`). `shutdown` from the master stops the
//!   node like SIGTERM does.
//! * `stop --cbdir DIR` sends SIGTERM to the node named in `DIR/node.pid`
//!   and waits for it to exit.
//!
//! A running node keeps `DIR/status.json` (see `status.rs`), which
//! `junction status --cbdir DIR` shows.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use cluster_membership::NodeKey;
use master_control::node::{self, NodeAction, NodeIdentity, NodeView, WorkerView};
use master_control::uplink::{self, UplinkHandler, UplinkSetup};
use wamp_client::target::Target;
use wamp_proto::{Dict, Value};

use crate::supervisor::{self, StatusTable};
use crate::{signals, worker};

/// `junction edge init --appdir DIR`.
pub fn init(appdir: &Path) -> Result<PathBuf> {
    let cbdir = appdir.join(".crossbar");
    let priv_path = cbdir.join("key.priv");
    if priv_path.exists() {
        bail!("{} exists: this node is initialised already (its key is kept)", priv_path.display());
    }
    std::fs::create_dir_all(&cbdir).with_context(|| format!("creating {}", cbdir.display()))?;
    let key = NodeKey::generate();
    let mut tags = vec![
        ("creator".to_owned(), format!("junction {}", env!("CARGO_PKG_VERSION"))),
        ("created-at".to_owned(), humantime_now()),
    ];
    if let Ok(id) = std::env::var("CROSSBAR_NODE_ID") {
        tags.push(("node-authid".into(), id));
    }
    if let Ok(ip) = std::env::var("CROSSBAR_NODE_CLUSTER_IP") {
        ip.parse::<std::net::IpAddr>()
            .with_context(|| format!("CROSSBAR_NODE_CLUSTER_IP={ip:?} is not an IP address"))?;
        tags.push(("node-cluster-ip".into(), ip));
    }
    let head: String = tags.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    let public = format!("{head}public-key-ed25519: {}\n", key.public_hex());
    let private =
        format!("# Junction node private key - KEEP THIS SAFE!\n\n{public}private-key-ed25519: {}\n", hex(&key.seed()));
    write_new(&priv_path, &private, 0o600)?;
    write_new(&cbdir.join("key.pub"), &format!("# Junction node public key\n\n{public}"), 0o644)?;
    let config = serde_json::json!({
        "version": 2,
        "controller": {
            "options": {"shutdown": ["shutdown_on_shutdown_requested"]},
            "fabric": {"heartbeat": {"startup_delay": 5, "heartbeat_period": 10}}
        },
        "workers": []
    });
    let cfg_path = cbdir.join("config.json");
    if !cfg_path.exists() {
        write_new(&cfg_path, &serde_json::to_string_pretty(&config).unwrap_or_default(), 0o644)?;
    }
    Ok(cbdir)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn humantime_now() -> String {
    humantime::format_rfc3339_seconds(SystemTime::now()).to_string()
}

fn write_new(path: &Path, text: &str, mode: u32) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// The `tag: value` lines of a key file.
fn key_tag(path: &Path, tag: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == tag).then(|| v.trim().to_owned())
    })
}

/// `junction edge start --cbdir DIR`.
pub fn start(cbdir: &Path, log: &str, color: bool) -> Result<()> {
    let signals = signals::block();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(log).context("invalid --loglevel")?)
        .with_writer(std::io::stderr)
        .with_ansi(color && std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    crate::raise_fd_limit();
    let cbdir =
        std::path::absolute(cbdir).with_context(|| format!("{}: cannot make the path absolute", cbdir.display()))?;
    let cfg_path = cbdir.join("config.json");
    let mut cfg = junction_config::load(&cfg_path)
        .and_then(|c| c.validate().map(|_| c))
        .map_err(|e| anyhow::anyhow!("{}: invalid configuration:\n{e}", cfg_path.display()))?;
    for w in &cfg.warnings {
        tracing::warn!("{}: {w}", cfg_path.display());
    }
    let fabric = cfg.controller.fabric.clone().unwrap_or_default();
    // As Crossbar's node: the activation file the master's watch-to-pair
    // wrote, then the environment, then the config.
    let activation = key_tag(&cbdir.join("key.activate"), "management-url").filter(|u| !u.is_empty());
    if let Some(u) = &activation {
        tracing::info!(url = %u, "master named by {}", cbdir.join("key.activate").display());
    }
    let url = activation
        .or_else(|| std::env::var("CROSSBAR_FABRIC_URL").ok())
        .or(fabric.url.clone())
        .context("no master to connect to: set CROSSBAR_FABRIC_URL or controller.fabric.transport in config.json (or let the master's watch-to-pair write key.activate)")?;
    let target = Target::parse(&url).with_context(|| format!("master URL {url:?}"))?;
    let key_path = cbdir.join("key.priv");
    let key = NodeKey::load_or_create(&key_path).with_context(|| format!("node key {}", key_path.display()))?;
    let cluster_ip = key_tag(&key_path, "node-cluster-ip");

    // The workers read the node key from the effective config.
    cfg.controller.options.insert("node_key".into(), serde_json::Value::String(key_path.display().to_string()));
    let effective = cbdir.join(".junction").join("node.json");
    std::fs::create_dir_all(effective.parent().unwrap_or(&cbdir))?;
    let mut raw: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cfg_path)?)?;
    raw["controller"]["options"]["node_key"] = serde_json::Value::String(key_path.display().to_string());
    if raw["controller"].get("fabric").is_none() {
        // Marks the workers' configs as managed (transports may come later).
        raw["controller"]["fabric"] = serde_json::json!({});
    }
    std::fs::write(&effective, serde_json::to_vec_pretty(&raw)?)?;

    let pid_path = cbdir.join("node.pid");
    std::fs::write(&pid_path, serde_json::json!({"pid": std::process::id(), "type": "edge"}).to_string())?;

    let status: StatusTable = Arc::new(std::sync::Mutex::new(Vec::new()));
    let logs = supervisor::WorkerLogs::new(worker_log_lines(&cfg).with_context(|| format!("{}", cfg_path.display()))?);
    let mut authextra = Dict::new();
    if let Some(ip) = &cluster_ip {
        authextra.insert("cluster_ip".into(), Value::Str(ip.clone()));
    }
    let setup = UplinkSetup {
        target,
        seed: key.seed(),
        authextra,
        name: "node".into(),
        period: fabric.heartbeat_period,
        first_after: fabric.startup_delay,
    };
    let (ctl_tx, ctl_rx) = std::sync::mpsc::channel();
    let mut handler = NodeUplink {
        status: status.clone(),
        started: SystemTime::now(),
        cbdir: cbdir.display().to_string(),
        period: fabric.heartbeat_period,
        control: ctl_tx,
        controller: raw["controller"].clone(),
        logs: logs.clone(),
        process: master_control::process::ProcessApi::new(
            "controller",
            "controller",
            master_control::process::process_start_time(),
        ),
        logs_seen: Default::default(),
    };
    // Worker processes open their own uplinks (the worker API) to the same master.
    std::env::set_var(worker::FABRIC_URL_ENV, &url);
    tracing::info!(master = %url, public_key = %key.public_hex(), "managed node starting");
    std::thread::Builder::new()
        .name("uplink".into())
        .spawn(move || {
            uplink::run(&setup, &mut handler);
            tracing::info!("the master asked this node to shut down");
            // The supervisor's signal thread takes it from here (SIGTERM semantics).
            // SAFETY: plain kill(2) on our own pid.
            unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
        })
        .context("starting the uplink")?;
    // `junction status --cbdir DIR` reads it (DIR is the key's directory).
    let status_file = crate::status::status_path(&cfg, &cbdir);
    crate::status::spawn_writer(
        status_file.clone(),
        Some(cfg_path.clone()),
        crate::status::Source::Supervised(status.clone()),
    );
    let r = supervisor::run(&cfg, &effective, &cbdir, log, signals, Some(status), Some(ctl_rx), Some(logs));
    let _ = std::fs::remove_file(&status_file);
    let _ = std::fs::remove_file(&pid_path);
    r
}

/// `controller.options.worker_log_lines`: how many log lines the node keeps
/// per worker for `get_worker_log` (default
/// [`node::DEFAULT_WORKER_LOG_LINES`], at most [`node::MAX_WORKER_LOG_LINES`];
/// 0 keeps none).
fn worker_log_lines(cfg: &junction_config::NodeConfig) -> Result<usize> {
    match cfg.controller.options.get("worker_log_lines") {
        None => Ok(node::DEFAULT_WORKER_LOG_LINES),
        Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
            Some(n) if n <= node::MAX_WORKER_LOG_LINES => Ok(n),
            _ => bail!(
                "controller.options.worker_log_lines: expected an integer 0..={}, got {v}",
                node::MAX_WORKER_LOG_LINES
            ),
        },
    }
}

/// `junction edge stop --cbdir DIR`.
pub fn stop(cbdir: &Path) -> Result<()> {
    let pid_path = cbdir.join("node.pid");
    let text = std::fs::read_to_string(&pid_path)
        .with_context(|| format!("{}: no node is running from this directory", pid_path.display()))?;
    let pid = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["pid"].as_u64())
        .and_then(|p| i32::try_from(p).ok())
        .with_context(|| format!("{}: not a node pid file", pid_path.display()))?;
    // SAFETY: plain kill(2).
    if unsafe { libc::kill(pid, libc::SIGTERM) } != 0 {
        let _ = std::fs::remove_file(&pid_path);
        bail!("node pid {pid} is not running (stale {} removed)", pid_path.display());
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    // Gone, or a zombie its parent has not reaped yet (it has exited).
    let running = |pid: i32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next()))
            .is_some_and(|state| state != 'Z' && state != 'X')
    };
    while running(pid) {
        if Instant::now() > deadline {
            bail!("node pid {pid} did not stop within 15 s");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// The node's side of the uplink: the node API and its heartbeat.
struct NodeUplink {
    status: StatusTable,
    started: SystemTime,
    cbdir: String,
    period: Duration,
    /// Run-time worker start/stop.
    control: std::sync::mpsc::Sender<supervisor::Control>,
    /// The effective config's `controller` (with the node key and fabric),
    /// copied into the config file of each worker started at run time.
    controller: serde_json::Value,
    /// The workers' recent log lines (`get_worker_log`).
    logs: supervisor::WorkerLogs,
    /// The controller's process API (CPU affinity, process and system stats).
    process: master_control::process::ProcessApi,
    /// Log lines already published as `on_worker_log`, per worker slot.
    logs_seen: std::collections::HashMap<usize, u64>,
}

/// At most this many log lines per worker go out as `on_worker_log` events
/// per uplink poll (100 ms); more wait for the next polls, and what the
/// worker's ring drops meanwhile is not published.
const LOG_EVENTS_PER_POLL: usize = 100;

/// How long `start_worker` waits for the new worker to become ready.
const START_WORKER_TIMEOUT: Duration = Duration::from_secs(60);

fn worker_status_json(w: &supervisor::WorkerStatus) -> Value {
    let iso = |t: SystemTime| humantime::format_rfc3339_millis(t).to_string();
    master_control::value::from_json(&serde_json::json!({
        "id": w.id, "type": w.kind, "pid": w.pid, "status": w.status,
        "created": iso(w.created), "started": w.started.map(iso),
        "startup_time": w.startup_time.map(|d| d.as_secs_f64()),
    }))
}

impl NodeUplink {
    fn view(&self) -> NodeView {
        let workers = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .filter(|w| w.status != "stopped")
            .map(|w| WorkerView {
                id: w.id.clone(),
                kind: w.kind.to_owned(),
                pid: w.pid,
                status: w.status.to_owned(),
                created: w.created,
                started: w.started,
                startup_time: w.startup_time,
            })
            .collect();
        NodeView { started: self.started, pid: std::process::id(), cbdir: self.cbdir.clone(), workers }
    }
}

impl NodeUplink {
    /// `start_worker(worker_id, worker_type, worker_options=None)`.
    fn start_worker(&self, args: &[Value], kwargs: &Dict) -> Result<Value, master_control::ApiError> {
        use master_control::ApiError;
        let a = master_control::value::Args { procedure: "start_worker", args, kwargs };
        let id = a.str(0, "worker_id")?.to_owned();
        let kind = a.str(1, "worker_type")?.to_owned();
        let worker = node::worker_config(&id, &kind, a.opt_dict(2, "worker_options")?)?;
        let kind: &'static str = if kind == "router" { "router" } else { "proxy" };
        let cfg = serde_json::json!({"version": 2, "controller": self.controller, "workers": [worker]});
        let text = serde_json::to_string_pretty(&cfg).unwrap_or_default();
        junction_config::parse_str(&text, junction_config::Format::Json)
            .and_then(|c| c.validate().map(|_| c))
            .map_err(|e| ApiError::new("crossbar.error.invalid_configuration", e.to_string()))?;
        let dir = Path::new(&self.cbdir).join(".junction").join("workers");
        let path = dir.join(format!("{id}.json"));
        std::fs::create_dir_all(&dir)
            .and_then(|_| std::fs::write(&path, text))
            .map_err(|e| ApiError::new("crossbar.error.cannot_start", format!("writing {}: {e}", path.display())))?;
        let (tx, rx) = std::sync::mpsc::channel();
        self.control
            .send(supervisor::Control::Start { id: id.clone(), kind, path, reply: tx })
            .map_err(|_| ApiError::new("crossbar.error.cannot_start", "the node is shutting down"))?;
        match rx.recv_timeout(START_WORKER_TIMEOUT) {
            Ok(Ok(w)) => Ok(worker_status_json(&w)),
            Ok(Err(e)) if e.contains("already running") => {
                Err(ApiError::new("crossbar.error.worker_already_running", e))
            }
            Ok(Err(e)) => Err(ApiError::new("crossbar.error.cannot_start", e)),
            Err(_) => Err(ApiError::new(
                "crossbar.error.cannot_start",
                format!("worker '{id}' not ready within {START_WORKER_TIMEOUT:?}"),
            )),
        }
    }

    /// `stop_worker(worker_id, kill=False)`.
    fn stop_worker(&self, args: &[Value], kwargs: &Dict) -> Result<Value, master_control::ApiError> {
        use master_control::ApiError;
        let a = master_control::value::Args { procedure: "stop_worker", args, kwargs };
        let id = a.str(0, "worker_id")?.to_owned();
        let kill = a.flag(1, "kill")?;
        let (tx, rx) = std::sync::mpsc::channel();
        self.control
            .send(supervisor::Control::Stop { id: id.clone(), reply: tx })
            .map_err(|_| ApiError::new("crossbar.error.cannot_stop", "the node is shutting down"))?;
        match rx.recv_timeout(supervisor::STOP_GRACE * 2) {
            Ok(Ok(w)) => {
                let _ = std::fs::remove_file(
                    Path::new(&self.cbdir).join(".junction").join("workers").join(format!("{id}.json")),
                );
                Ok(master_control::value::from_json(&serde_json::json!({
                    "id": id, "type": w.kind, "kill": kill, "who": null,
                    "when": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
                })))
            }
            Ok(Err(e)) => Err(ApiError::new("crossbar.error.no_such_worker", e)),
            Err(_) => Err(ApiError::new("crossbar.error.cannot_stop", format!("worker '{id}' did not stop in time"))),
        }
    }
}

impl UplinkHandler for NodeUplink {
    fn procedures(&self, id: &NodeIdentity) -> Vec<String> {
        let mut p: Vec<String> = node::NODE_PROCEDURES
            .iter()
            .chain(master_control::process::PROCESS_PROCEDURES.iter())
            .chain(master_control::process::NODE_ONLY_PROCEDURES.iter())
            .map(|p| node::procedure_uri(&id.authid, p))
            .collect();
        // Calls for a worker whose process has not registered the
        // procedure (unknown worker, or one not connected yet) land here.
        p.push(node::procedure_uri(&id.authid, "worker."));
        p
    }

    fn call(
        &mut self,
        id: &NodeIdentity,
        procedure: &str,
        args: &[Value],
        kwargs: &Dict,
    ) -> (Result<Value, master_control::ApiError>, NodeAction) {
        let prefix = format!("crossbarfabriccenter.node.{}.", id.authid);
        let proc = procedure.strip_prefix(&prefix).unwrap_or(procedure);
        if let Some(rest) = proc.strip_prefix("worker.") {
            let (wid, wproc) = rest.split_once('.').unwrap_or((rest, ""));
            let known = self.view().workers.iter().any(|w| w.id == wid);
            if known && wproc == "shutdown" {
                // Crossbar's worker `shutdown()`: the worker stops for good
                // (it is not restarted), announced with on_shutdown_requested.
                let wid = wid.to_owned();
                let r = self.stop_worker(&[Value::Str(wid.clone())], &Dict::new()).map(|_| {
                    let when = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
                    self.process.push_event(
                        &format!("worker.{wid}.on_shutdown_requested"),
                        vec![master_control::value::from_json(&serde_json::json!({"who": null, "when": when}))],
                    );
                    Value::Null
                });
                return (r, NodeAction::None);
            }
            let e = if known {
                master_control::ApiError::new(
                    "wamp.error.no_such_procedure",
                    format!("worker '{wid}' has no procedure '{wproc}' (or is not connected to the master right now)"),
                )
            } else {
                master_control::ApiError::new("crossbar.error.no_such_worker", format!("no worker with ID '{wid}'"))
            };
            return (Err(e), NodeAction::None);
        }
        if let Some(r) = self.process.handle(proc, args, kwargs) {
            return (r, NodeAction::None);
        }
        match proc {
            "start_worker" | "stop_worker" => {
                // Lifecycle events, as Crossbar's node: on_router_starting /
                // on_proxy_starting, then …_started with the worker; on_worker_stopping/stopped.
                let id = args.first().cloned().unwrap_or(Value::Null);
                let kind = match args.get(1) {
                    Some(Value::Str(k)) if k == "router" || k == "proxy" => k.clone(),
                    _ => "worker".into(),
                };
                let start = proc == "start_worker";
                let stem = if start { format!("on_{kind}") } else { "on_worker".to_owned() };
                // A start of no known worker type announces nothing (it fails).
                let announce = !(start && kind == "worker");
                if announce {
                    let ids = master_control::value::from_json(&serde_json::json!({"id": id.as_str(), "type": kind}));
                    let phase = if start { "starting" } else { "stopping" };
                    self.process.push_event(&format!("{stem}_{phase}"), vec![ids]);
                }
                let r = if start { self.start_worker(args, kwargs) } else { self.stop_worker(args, kwargs) };
                if let (true, Ok(v)) = (announce, &r) {
                    self.process
                        .push_event(&format!("{stem}_{}", if start { "started" } else { "stopped" }), vec![v.clone()]);
                }
                (r, NodeAction::None)
            }
            "get_worker_log" => {
                // The ring of the worker's current slot (a worker stopped and
                // started again under the same id starts a new one).
                let index = |wid: &str| {
                    let t = self.status.lock().unwrap_or_else(|e| e.into_inner());
                    t.iter().rposition(|w| w.id == wid && w.status != "stopped")
                };
                let r = node::worker_log(&self.view(), args, kwargs, |wid, n| {
                    index(wid).map(|i| self.logs.last(i, n)).unwrap_or_default()
                });
                (r, NodeAction::None)
            }
            _ => node::handle(id, &self.view(), SystemTime::now(), proc, args, kwargs),
        }
    }

    fn periodic(&mut self, id: &NodeIdentity, seq: u64) -> Option<(String, Vec<Value>)> {
        let hb = node::heartbeat(id, &self.view(), seq, self.period, SystemTime::now());
        Some(("crossbarfabriccenter.node.on_heartbeat".into(), vec![Value::Str(id.authid.clone()), hb]))
    }

    fn events(&mut self, id: &NodeIdentity) -> Vec<(String, Vec<Value>)> {
        let mut out: Vec<(String, Vec<Value>)> = self
            .process
            .take_events(std::time::Instant::now())
            .into_iter()
            .map(|(suffix, args)| (node::procedure_uri(&id.authid, &suffix), args))
            .collect();
        // Crossbar's on_worker_log: each new line of a worker's log, as its log record.
        let slots: Vec<(usize, String)> = {
            let t = self.status.lock().unwrap_or_else(|e| e.into_inner());
            t.iter().enumerate().filter(|(_, w)| w.status != "stopped").map(|(i, w)| (i, w.id.clone())).collect()
        };
        for (i, wid) in slots {
            // A worker first seen here starts from now (its history is get_worker_log's).
            let seen = *self.logs_seen.entry(i).or_insert_with(|| self.logs.total(i));
            let (lines, seen) = self.logs.since(i, seen, LOG_EVENTS_PER_POLL);
            self.logs_seen.insert(i, seen);
            if lines.is_empty() {
                continue;
            }
            let topic = node::procedure_uri(&id.authid, &format!("worker.{wid}.on_worker_log"));
            out.extend(lines.into_iter().map(|l| (topic.clone(), vec![node::log_record(l)])));
        }
        out
    }

    fn ready(&self, id: &NodeIdentity) -> Option<(String, Vec<Value>)> {
        Some((node::procedure_uri(&id.authid, "on_ready"), vec![Value::Str(id.authid.clone())]))
    }
}
