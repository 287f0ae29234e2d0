//! `junction status`: what a running node is doing, from its status file.
//!
//! A node started by `junction start` writes `status.json` next to its node
//! key (`controller.options.node_key`'s directory, by default
//! `<config dir>/.junction/`): its pid, start time, config, its workers
//! (index, id, type, pid, state, when the current process became ready,
//! restarts) and, for a node whose router runs in the node process,
//! sessions per realm. It is rewritten (write, then rename) when something
//! changes and at least every [`REFRESH`]. `junction status --config FILE`
//! reads it and checks that the pids it names are alive.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
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

fn unix(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// What the writer describes.
pub enum Source {
    /// One router worker in the node process.
    InProcess { id: String, node: Arc<router_core::runtime::RouterNode> },
    /// The supervisor's worker table.
    Supervised(StatusTable),
}

impl Source {
    fn snapshot(&self) -> (Vec<Value>, Option<Value>) {
        match self {
            Source::InProcess { id, node } => {
                let mut realms = serde_json::Map::new();
                for r in node.realm_names() {
                    realms.insert(r, json!(0));
                }
                for (r, n) in node.directory.count_by_realm() {
                    let slot = realms.entry(r.to_string()).or_insert(json!(0));
                    *slot = json!(slot.as_u64().unwrap_or(0) + n as u64);
                }
                let w = json!({"index": 0, "id": id, "kind": "router", "pid": std::process::id(), "status": "started", "restarts": 0});
                (vec![w], Some(Value::Object(realms)))
            }
            Source::Supervised(t) => {
                let table = t.lock().unwrap_or_else(|e| e.into_inner()).clone();
                let workers = table
                    .iter()
                    .enumerate()
                    .map(|(i, w)| {
                        json!({
                            "index": i, "id": w.id, "kind": w.kind, "pid": w.pid, "status": w.status,
                            "started": w.started.map(unix), "restarts": w.restarts,
                        })
                    })
                    .collect();
                (workers, None)
            }
        }
    }
}

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
            let snap = source.snapshot();
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
    pid > 0 && (unsafe { libc::kill(pid, 0) } == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

fn ago(secs: u64) -> String {
    humantime::format_duration(Duration::from_secs(secs)).to_string()
}

/// `junction status --config FILE`: prints the node's state; `Ok(false)`
/// if the node is not running.
pub fn show(cfg: &NodeConfig, dir: &Path) -> Result<bool> {
    let path = status_path(cfg, dir);
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("{}: no status file (is the node started with this config?)", path.display()))?;
    let doc: Value = serde_json::from_str(&text).with_context(|| format!("{}: not a status file", path.display()))?;
    let now = unix(SystemTime::now());
    let pid = doc["pid"].as_u64().unwrap_or(0);
    let running = alive(pid);
    let updated = doc["updated"].as_u64().unwrap_or(0);
    let started = doc["started"].as_u64().unwrap_or(0);
    if !running {
        println!("node pid {pid}: not running (status file {} last written {} ago)", path.display(), ago(now.saturating_sub(updated)));
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
    for w in doc["workers"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
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
    }
    match doc["realms"].as_object() {
        Some(realms) => {
            for (r, n) in realms {
                println!("realm {r}: {n} sessions");
            }
        }
        None => println!("sessions per realm: not known to the supervisor (see each worker's metrics service)"),
    }
    Ok(true)
}
