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
//!   is away it keeps retrying (backoff up to [`UPLINK_BACKOFF_MAX`]); the
//!   workers keep serving meanwhile. `shutdown` from the master stops the
//!   node like SIGTERM does.
//! * `stop --cbdir DIR` sends SIGTERM to the node named in `DIR/node.pid`
//!   and waits for it to exit.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::{bail, Context, Result};
use cluster_membership::NodeKey;
use master_control::node::{self, NodeAction, NodeIdentity, NodeView, WorkerView};
use wamp_client::auth::Auth;
use wamp_client::conn::Conn;
use wamp_client::target::Target;
use wamp_client::{Session, SessionEvent};
use wamp_proto::{Dict, Serializer, Value};

use crate::supervisor::{self, StatusTable};
use crate::signals;

/// Longest wait between two attempts to reach the master.
pub const UPLINK_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a node key that the master does not know waits before retrying.
pub const UNPAIRED_RETRY: Duration = Duration::from_secs(10);
/// How long the uplink blocks in a read before it looks at its timers.
const POLL: Duration = Duration::from_millis(100);

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
        ip.parse::<std::net::IpAddr>().with_context(|| format!("CROSSBAR_NODE_CLUSTER_IP={ip:?} is not an IP address"))?;
        tags.push(("node-cluster-ip".into(), ip));
    }
    let head: String = tags.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
    let public = format!("{head}public-key-ed25519: {}\n", key.public_hex());
    let private = format!(
        "# Junction node private key - KEEP THIS SAFE!\n\n{public}private-key-ed25519: {}\n",
        hex(&key.seed())
    );
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
    let cbdir = std::path::absolute(cbdir).with_context(|| format!("{}: cannot make the path absolute", cbdir.display()))?;
    let cfg_path = cbdir.join("config.json");
    let mut cfg = junction_config::load(&cfg_path)
        .and_then(|c| c.validate().map(|_| c))
        .map_err(|e| anyhow::anyhow!("{}: invalid configuration:\n{e}", cfg_path.display()))?;
    for w in &cfg.warnings {
        tracing::warn!("{}: {w}", cfg_path.display());
    }
    let fabric = cfg.controller.fabric.clone().unwrap_or_default();
    let url = std::env::var("CROSSBAR_FABRIC_URL").ok().or(fabric.url.clone()).context(
        "no master to connect to: set CROSSBAR_FABRIC_URL or controller.fabric.transport in config.json",
    )?;
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
    std::fs::write(&effective, serde_json::to_vec_pretty(&raw)?)?;

    let pid_path = cbdir.join("node.pid");
    std::fs::write(&pid_path, serde_json::json!({"pid": std::process::id(), "type": "edge"}).to_string())?;

    let status: StatusTable = Arc::new(std::sync::Mutex::new(Vec::new()));
    let up = Uplink {
        target,
        seed: key.seed(),
        pubkey: key.public_hex(),
        cluster_ip,
        status: status.clone(),
        started: SystemTime::now(),
        cbdir: cbdir.display().to_string(),
        period: fabric.heartbeat_period,
        startup_delay: fabric.startup_delay,
    };
    tracing::info!(master = %url, public_key = %key.public_hex(), "managed node starting");
    std::thread::Builder::new().name("uplink".into()).spawn(move || up.run()).context("starting the uplink")?;
    let r = supervisor::run(&cfg, &effective, &cbdir, log, signals, Some(status));
    let _ = std::fs::remove_file(&pid_path);
    r
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

/// The node's session to its master.
struct Uplink {
    target: Target,
    seed: [u8; 32],
    pubkey: String,
    cluster_ip: Option<String>,
    status: StatusTable,
    started: SystemTime,
    cbdir: String,
    period: Duration,
    startup_delay: Duration,
}

enum Ended {
    /// The master asked the node to shut down.
    Shutdown,
    /// The session ran and was lost (retry soon).
    Lost(String),
    /// The master refused the node (retry later).
    Refused(String),
}

impl Uplink {
    fn run(self) {
        let mut backoff = Duration::from_millis(250);
        loop {
            match self.session() {
                Ended::Shutdown => {
                    tracing::info!("the master asked this node to shut down");
                    // The supervisor's signal thread takes it from here (SIGTERM semantics).
                    // SAFETY: plain kill(2) on our own pid.
                    unsafe { libc::kill(libc::getpid(), libc::SIGTERM) };
                    return;
                }
                Ended::Lost(e) => {
                    tracing::warn!(error = %e, retry_in = ?backoff, "master unreachable or session lost; the workers keep serving");
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(UPLINK_BACKOFF_MAX);
                }
                Ended::Refused(e) => {
                    tracing::warn!(error = %e, retry_in = ?UNPAIRED_RETRY, "the master refused this node (is it paired?)");
                    std::thread::sleep(UNPAIRED_RETRY);
                }
            }
        }
    }

    fn view(&self) -> NodeView {
        let workers = self
            .status
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
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

    fn session(&self) -> Ended {
        let tls = if self.target.is_tls() {
            match wamp_client::tls::client_config(None, false) {
                Ok(t) => Some(t),
                Err(e) => return Ended::Lost(format!("TLS: {e}")),
            }
        } else {
            None
        };
        let mut conn = match Conn::open_with(&self.target, tls.as_ref(), Serializer::Msgpack, Duration::from_secs(10), 7) {
            Ok(c) => c,
            Err(e) => return Ended::Lost(e.to_string()),
        };
        let mut extra = Dict::new();
        if let Some(ip) = &self.cluster_ip {
            extra.insert("cluster_ip".into(), Value::Str(ip.clone()));
        }
        let auth = Auth { cryptosign: Some(self.seed), authrole: Some("node".into()), authextra: extra, ..Auth::default() };
        let session = match conn.join_with(master_control::master::GLOBAL_REALM, &auth, Duration::from_secs(10)) {
            Ok(s) => s,
            Err(e) => {
                let e = e.to_string();
                return if e.contains("ABORT") { Ended::Refused(e) } else { Ended::Lost(e) };
            }
        };
        let w = conn.welcome_details();
        let s = |k: &str| w.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
        let id = NodeIdentity {
            authid: s("authid"),
            pubkey: self.pubkey.clone(),
            mrealm: s("realm"),
            session: session.get(),
            extra: w.get("authextra").and_then(Value::as_dict).cloned().unwrap_or_default(),
        };
        tracing::info!(authid = %id.authid, mrealm = %id.mrealm, session = id.session, "connected to the master");
        if let Err(e) = conn.stream().set_read_timeout(Some(POLL)) {
            return Ended::Lost(e.to_string());
        }
        let mut sess = Session::new();
        for p in node::NODE_PROCEDURES {
            sess.register(&node::procedure_uri(&id.authid, p), Dict::new());
        }
        let mut next_beat = Instant::now() + self.startup_delay;
        let mut seq = 0u64;
        loop {
            if Instant::now() >= next_beat {
                seq += 1;
                let hb = node::heartbeat(&id, &self.view(), seq, self.period, SystemTime::now());
                sess.publish("crossbarfabriccenter.node.on_heartbeat", vec![Value::Str(id.authid.clone()), hb], Dict::new(), Dict::new());
                next_beat = Instant::now() + self.period;
            }
            while let Some(m) = sess.poll_transmit() {
                if let Err(e) = conn.push(&m) {
                    return Ended::Lost(e.to_string());
                }
            }
            if let Err(e) = conn.flush() {
                return Ended::Lost(e.to_string());
            }
            let msg = match conn.recv() {
                Ok(Some(m)) => m,
                Ok(None) => continue,
                Err(e) => return Ended::Lost(e.to_string()),
            };
            match sess.handle(msg) {
                Ok(SessionEvent::Invocation { request, procedure, args, kwargs, .. }) => {
                    let prefix = format!("crossbarfabriccenter.node.{}.", id.authid);
                    let proc = procedure.strip_prefix(&prefix).unwrap_or(&procedure);
                    let (r, action) = node::handle(&id, &self.view(), SystemTime::now(), proc, &args, &kwargs);
                    match r {
                        Ok(v) => sess.yield_result(request, vec![v], Dict::new()),
                        Err(e) => sess.yield_error(request, &e.uri, vec![Value::Str(e.message)], Dict::new()),
                    }
                    if action == NodeAction::Shutdown {
                        while let Some(m) = sess.poll_transmit() {
                            let _ = conn.push(&m);
                        }
                        let _ = conn.flush();
                        return Ended::Shutdown;
                    }
                }
                Ok(SessionEvent::Error { error, args, .. }) => {
                    let msg = args.first().and_then(Value::as_str).unwrap_or("").to_owned();
                    tracing::warn!(%error, %msg, "the master refused a registration or publication");
                }
                Ok(SessionEvent::Closed { reason, message }) => {
                    return Ended::Lost(format!("the master closed the session: {reason} {}", message.unwrap_or_default()));
                }
                Ok(_) => {}
                Err(e) => return Ended::Lost(format!("protocol error from the master: {e}")),
            }
        }
    }
}
