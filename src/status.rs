//! `junction status`: what a running node is doing, from its status file.
//!
//! A node started by `junction start` or `junction edge start` writes
//! `status.json` next to its node key (`controller.options.node_key`'s
//! directory, by default `<config dir>/.junction/`; a managed node's
//! `--cbdir`): its pid, start time, config, its workers (index, id, type,
//! pid, state, when the current process became ready, restarts, sessions
//! per realm of a router worker) and the node's sessions per realm. It is
//! rewritten (write, then rename) when something changes and at least every
//! [`REFRESH`]. `junction status --config FILE` or `--cbdir DIR` reads it
//! and checks that the pids it names are alive.
//!
//! Worker processes of a supervised node each write their own small file,
//! `status.d/worker-<pid>.json` in the same directory (pid, sessions per
//! realm; see [`spawn_worker_writer`]); the supervisor's writer merges the
//! file of each worker's current pid into `status.json` and removes the
//! files of pids that are gone. Only router workers report realms: a
//! session that comes through a proxy worker is a session of the router
//! worker it is proxied to, and is counted there.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use junction_config::NodeConfig;
use serde_json::{json, Value};

use crate::supervisor::StatusTable;

/// The status file is rewritten at least this often while the node runs.
pub const REFRESH: Duration = Duration::from_secs(2);

/// How often the writer looks for changes.
const POLL: Duration = Duration::from_secs(1);

/// Where a node with `cfg` (config directory `dir`) keeps its status file.
pub fn status_path(cfg: &NodeConfig, dir: &Path) -> PathBuf {
    let key = crate::worker::node_key_path(cfg, dir);
    key.parent().map(Path::to_path_buf).unwrap_or_else(|| dir.to_path_buf()).join("status.json")
}

/// The directory of the worker processes' status files, next to `status`.
fn workers_dir(status: &Path) -> PathBuf {
    status.parent().map(Path::to_path_buf).unwrap_or_default().join("status.d")
}

/// The status file of worker process `pid` of the node whose status file
/// is `status`.
pub fn worker_file(status: &Path, pid: u32) -> PathBuf {
    workers_dir(status).join(format!("worker-{pid}.json"))
}

/// Sessions per realm of a router worker: every realm it serves, with 0
/// for a realm nobody joined.
fn realm_sessions(node: &router_core::runtime::RouterNode) -> serde_json::Map<String, Value> {
    let mut realms = serde_json::Map::new();
    for r in node.realm_names() {
        realms.insert(r, json!(0));
    }
    for (r, n) in node.directory.count_by_realm() {
        let slot = realms.entry(r.to_string()).or_insert(json!(0));
        *slot = json!(slot.as_u64().unwrap_or(0) + n as u64);
    }
    realms
}

/// Adds `from`'s counts into `into`.
fn add_realms(into: &mut serde_json::Map<String, Value>, from: &serde_json::Map<String, Value>) {
    for (r, n) in from {
        let slot = into.entry(r.clone()).or_insert(json!(0));
        *slot = json!(slot.as_u64().unwrap_or(0) + n.as_u64().unwrap_or(0));
    }
}

/// The realms in worker process `pid`'s own status file, if it wrote one.
fn read_worker_realms(status: &Path, pid: u32) -> Option<serde_json::Map<String, Value>> {
    let text = std::fs::read_to_string(worker_file(status, pid)).ok()?;
    let doc: Value = serde_json::from_str(&text).ok()?;
    if doc["pid"].as_u64() != Some(u64::from(pid)) {
        return None;
    }
    doc["realms"].as_object().cloned()
}

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What the writer describes.
pub enum Source {
    /// One router worker in the node process.
    InProcess { id: String, node: Arc<router_core::runtime::RouterNode> },
    /// The supervisor's worker table (and its workers' own status files).
    Supervised(StatusTable),
}

impl Source {
    /// (workers, sessions per realm); `path` is the node's status file.
    fn snapshot(&self, path: &Path) -> (Vec<Value>, Option<Value>) {
        match self {
            Source::InProcess { id, node } => {
                let realms = realm_sessions(node);
                let w = json!({
                    "index": 0, "id": id, "kind": "router", "pid": std::process::id(), "status": "started",
                    "restarts": 0, "realms": realms,
                });
                (vec![w], Some(Value::Object(realms)))
            }
            Source::Supervised(t) => {
                let table = t.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let mut total = serde_json::Map::new();
                let workers = table
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        let realms = match (w.kind, w.pid) {
                            ("router", Some(pid)) => read_worker_realms(path, pid),
                            _ => None,
                        };
                        if let Some(r) = &realms {
                            add_realms(&mut total, r);
                        }
                        json!({
                            "index": i, "id": w.id, "kind": w.kind, "pid": w.pid, "status": w.status,
                            "started": w.started.map(unix), "restarts": w.restarts, "realms": realms,
                        })
                    })
                    .collect();
                // The files of worker processes that are gone (killed: a
                // worker that stops removes its own). Only dead pids: nodes
                // may share a directory.
                let live: Vec<u32> = table.iter().filter_map(|w| w.pid).collect();
                if let Ok(entries) = std::fs::read_dir(workers_dir(path)) {
                    for e in entries.flatten() {
                        let name = e.file_name();
                        let pid = name
                            .to_str()
                            .and_then(|n| n.strip_prefix("worker-"))
                            .and_then(|n| n.split('.').next())
                            .and_then(|n| n.parse::<u32>().ok());
                        if pid.is_some_and(|p| !live.contains(&p) && !alive(u64::from(p))) {
                            let _ = std::fs::remove_file(e.path());
                        }
                    }
                }
                (workers, Some(Value::Object(total)))
            }
        }
    }
}

/// In a worker process of a supervised node: starts the thread that keeps
/// this process's own status file current (sessions per realm of a router
/// worker) for the supervisor to merge. `node_status` is the node's status
/// file. Failures are logged once.
pub fn spawn_worker_writer(node_status: &Path, node: Arc<router_core::runtime::RouterNode>) {
    let pid = std::process::id();
    let path = worker_file(node_status, pid);
    let spawned = std::thread::Builder::new().name("status-file".into()).spawn(move || {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let mut last = None;
        let mut written = std::time::Instant::now();
        let mut warned = false;
        loop {
            let realms = realm_sessions(&node);
            if last.as_ref() != Some(&realms) || written.elapsed() >= REFRESH {
                let doc = json!({"pid": pid, "updated": unix(SystemTime::now()), "realms": realms});
                match write_atomic(&path, &doc) {
                    Ok(()) => warned = false,
                    Err(e) if !warned => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot write the worker status file");
                        warned = true;
                    }
                    Err(_) => {}
                }
                last = Some(realms);
                written = std::time::Instant::now();
            }
            std::thread::sleep(WORKER_POLL);
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the worker status file thread");
    }
}

/// How often a worker looks for changes (more often than the node's
/// writer, so the node's file lags by at most about one [`POLL`] more).
const WORKER_POLL: Duration = Duration::from_millis(500);

/// Starts the thread that keeps `path` current; a failure to write is
/// logged once (the node runs on without a status file).
pub fn spawn_writer(path: PathBuf, config: Option<PathBuf>, source: Source) {
    let started = unix(SystemTime::now());
    let pid = std::process::id();
    let spawned = std::thread::Builder::new().name("status-file".into()).spawn(move || {
        if let Some(parent) = path.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let mut last: Option<(Vec<Value>, Option<Value>)> = None;
        let mut written = std::time::Instant::now();
        let mut warned = false;
        loop {
            let snap = source.snapshot(&path);
            if last.as_ref() != Some(&snap) || written.elapsed() >= REFRESH {
                let doc = json!({
                    "pid": pid,
                    "started": started,
                    "updated": unix(SystemTime::now()),
                    "config": config.as_ref().map(|p| p.display().to_string()),
                    "workers": snap.0,
                    "realms": snap.1,
                });
                match write_atomic(&path, &doc) {
                    Ok(()) => warned = false,
                    Err(e) if !warned => {
                        tracing::warn!(path = %path.display(), error = %e, "cannot write the status file");
                        warned = true;
                    }
                    Err(_) => {}
                }
                last = Some(snap);
                written = std::time::Instant::now();
            }
            std::thread::sleep(POLL);
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "cannot start the status file thread");
    }
}

fn write_atomic(path: &Path, doc: &Value) -> std::io::Result<()> {
    // Per process, so that nodes sharing a directory never trip over each
    // other's temporary file.
    let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec_pretty(doc).map_err(std::io::Error::other)?)?;
    std::fs::rename(&tmp, path)
}

fn alive(pid: u64) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else { return false };
    // SAFETY: kill(2) with signal 0 only checks that the process exists.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

fn ago(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// `junction status --config FILE`: prints the node's state; `Ok(false)`
/// if the node is not running.
pub fn show(cfg: &NodeConfig, dir: &Path) -> Result<bool> {
    let path = status_path(cfg, dir);
    if !path.exists() {
        bail!("{}: no status file (is the node started with this config?)", path.display());
    }
    show_file(&path)
}

/// `junction status --cbdir DIR`: the node whose status file is in DIR (a
/// managed node's `--cbdir`, or the directory of a node's key), or in
/// `DIR/.junction` (the default key directory of a node whose config is in
/// DIR).
pub fn show_cbdir(dir: &Path) -> Result<bool> {
    if !dir.is_dir() {
        bail!("{}: no such directory", dir.display());
    }
    let candidates = [dir.join("status.json"), dir.join(".junction").join("status.json")];
    match candidates.iter().find(|p| p.is_file()) {
        Some(path) => show_file(path),
        None => bail!(
            "{}: no node is running from this directory (no status.json in it or in its .junction; \
             `junction edge start --cbdir DIR` and `junction start` with its node key in DIR write one)",
            dir.display()
        ),
    }
}

fn show_file(path: &Path) -> Result<bool> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("{}: cannot read the status file", path.display()))?;
    let doc: Value = serde_json::from_str(&text).with_context(|| format!("{}: not a status file", path.display()))?;
    let now = unix(SystemTime::now());
    let pid = doc["pid"].as_u64().unwrap_or(0);
    let running = alive(pid);
    let updated = doc["updated"].as_u64().unwrap_or(0);
    let started = doc["started"].as_u64().unwrap_or(0);
    if !running {
        println!(
            "node pid {pid}: not running (status file {} last written {} ago)",
            path.display(),
            ago(now.saturating_sub(updated))
        );
        return Ok(false);
    }
    let stale = now.saturating_sub(updated) > 3 * REFRESH.as_secs();
    println!(
        "node pid {pid}: running, up {}{}",
        ago(now.saturating_sub(started)),
        if stale { " (status file not updated recently)" } else { "" }
    );
    if let Some(c) = doc["config"].as_str() {
        println!("config {c}");
    }
    let list = doc["workers"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let workers = list.len();
    for w in list {
        let wpid = w["pid"].as_u64();
        let state = match wpid {
            Some(p) if alive(p) => w["status"].as_str().unwrap_or("?").to_owned(),
            Some(_) => "dead".to_owned(),
            None => w["status"].as_str().unwrap_or("?").to_owned(),
        };
        let up = w["started"].as_u64().map(|s| format!(", up {}", ago(now.saturating_sub(s)))).unwrap_or_default();
        println!(
            "worker {} {} ({}): pid {}, {state}{up}, restarts {}",
            w["index"],
            w["id"].as_str().unwrap_or("?"),
            w["kind"].as_str().unwrap_or("?"),
            wpid.map(|p| p.to_string()).unwrap_or_else(|| "-".into()),
            w["restarts"].as_u64().unwrap_or(0),
        );
        if workers > 1 {
            match w["realms"].as_object() {
                Some(realms) => {
                    for (r, n) in realms {
                        println!("  realm {r}: {n} sessions");
                    }
                }
                None if w["kind"] == "router" && w["status"] == "started" => println!("  sessions: not reported yet"),
                None => {}
            }
        }
    }
    match doc["realms"].as_object() {
        Some(realms) if realms.is_empty() && workers == 0 => println!("no workers"),
        Some(realms) => {
            for (r, n) in realms {
                println!("realm {r}: {n} sessions");
            }
        }
        None => println!("sessions per realm: not known"),
    }
    Ok(true)
}
