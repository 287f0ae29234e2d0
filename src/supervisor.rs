//! The node supervisor: one child process per worker (Crossbar's node
//! controller model, for bare metal).
//!
//! The supervisor loads (or creates) the node key once, then spawns
//! `<this exe> worker --config <abs path> --index <i> --log <filter>` for
//! every worker. Each child gets `PR_SET_PDEATHSIG = SIGTERM` between fork
//! and exec (and again first thing in `main`), so no worker outlives a
//! killed node. Children print `junction: worker ready` on stdout once they
//! listen; the supervisor reads each child's stdout on a thread of its own
//! and prints `junction: ready` once every worker is ready. A worker that
//! exits (or is not ready within [`READY_TIMEOUT`]) during startup fails the
//! start: the others are stopped and the error names the worker.
//!
//! After startup a worker that dies is restarted, with a backoff starting at
//! [`BACKOFF_MIN`], doubling up to [`BACKOFF_MAX`], reset once a worker ran
//! for [`HEALTHY_AFTER`]. For every (re)start the supervisor prints
//! `junction: worker <i> <type> pid <pid>`, and `junction: worker <i> ready`
//! when a restarted worker is back.
//!
//! Signals: SIGTERM/SIGINT stop every child (SIGTERM, then SIGKILL after
//! [`STOP_GRACE`]) and end the node with status 0; SIGHUP is forwarded to
//! every child (they reload their TLS certificates).
//!
//! All children are spawned and reaped by the supervisor's main thread
//! (`PR_SET_PDEATHSIG` fires when the *thread* that forked exits, and
//! reaping in one place rules out signalling a recycled pid).

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use junction_config::{NodeConfig, WorkerConfig};

use crate::signals::{self, SignalSet};
use crate::worker::{self, say, SUPERVISOR_PID_ENV, WORKER_ERROR_PREFIX, WORKER_READY_LINE};

/// How long a worker may take to print `junction: worker ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// First restart delay.
pub const BACKOFF_MIN: Duration = Duration::from_millis(250);
/// Largest restart delay.
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// A worker that ran this long before dying restarts after [`BACKOFF_MIN`].
pub const HEALTHY_AFTER: Duration = Duration::from_secs(30);
/// How long children get to exit after SIGTERM before SIGKILL.
pub const STOP_GRACE: Duration = Duration::from_secs(5);
/// How often children are polled for exit.
const POLL: Duration = Duration::from_millis(50);

/// A worker as the node's management API shows it (`get_workers`,
/// `get_worker`), kept current by the supervisor.
#[derive(Clone, Debug)]
pub struct WorkerStatus {
    /// The worker's config `id`, or `worker<index>`.
    pub id: String,
    pub kind: &'static str,
    /// The current process, if one runs.
    pub pid: Option<u32>,
    /// `starting`, `started` or `restarting` (dead, respawn pending).
    pub status: &'static str,
    /// When the worker was first started.
    pub created: std::time::SystemTime,
    /// When its current process became ready.
    pub started: Option<std::time::SystemTime>,
    /// How long its current process took to become ready.
    pub startup_time: Option<Duration>,
    /// How often it was restarted.
    pub restarts: u32,
}

/// The supervisor's workers, shared with the node's management uplink.
pub type StatusTable = Arc<Mutex<Vec<WorkerStatus>>>;

/// The recent log lines of each worker (by its index in the status table),
/// captured from the worker processes' stderr (and stray stdout lines) for
/// the management API's `get_worker_log`. Each worker has a bounded ring
/// ([`master_control::node::LogRing`]) that outlives its restarts. The
/// lines are still written to the supervisor's stderr as they arrive.
#[derive(Clone, Debug)]
pub struct WorkerLogs {
    capacity: usize,
    rings: Arc<Mutex<std::collections::HashMap<usize, master_control::node::LogRing>>>,
}

impl WorkerLogs {
    /// Rings of `capacity` lines per worker.
    pub fn new(capacity: usize) -> WorkerLogs {
        WorkerLogs { capacity, rings: Arc::default() }
    }

    fn push(&self, index: usize, line: &str) {
        let mut r = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        r.entry(index).or_insert_with(|| master_control::node::LogRing::new(self.capacity)).push(line);
    }

    /// Lines of worker `index` after the first `seen`, at most `max`, and
    /// the new `seen` ([`master_control::node::LogRing::since`]).
    pub fn since(&self, index: usize, seen: u64, max: usize) -> (Vec<String>, u64) {
        let r = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        r.get(&index).map_or((Vec::new(), seen), |ring| ring.since(seen, max))
    }

    /// Lines worker `index` ever logged.
    pub fn total(&self, index: usize) -> u64 {
        let r = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        r.get(&index).map_or(0, master_control::node::LogRing::total)
    }

    /// The last `n` lines of worker `index`, oldest first.
    pub fn last(&self, index: usize, n: usize) -> Vec<String> {
        let r = self.rings.lock().unwrap_or_else(|e| e.into_inner());
        r.get(&index).map(|ring| ring.last(n)).unwrap_or_default()
    }
}

fn update(table: &Option<StatusTable>, index: usize, f: impl FnOnce(&mut WorkerStatus)) {
    if let Some(t) = table {
        if let Some(w) = t.lock().unwrap_or_else(|e| e.into_inner()).get_mut(index) {
            f(w);
        }
    }
}

/// Run-time requests to the supervisor (from a managed node's uplink).
pub enum Control {
    /// Start a worker from `config` (a node config holding just that
    /// worker, already written to `path`); the reply comes once it is ready
    /// (its status) or failed to start.
    Start { id: String, kind: &'static str, path: PathBuf, reply: mpsc::Sender<Result<WorkerStatus, String>> },
    /// Stop worker `id` (SIGTERM, then SIGKILL after [`STOP_GRACE`]); it is
    /// not restarted.
    Stop { id: String, reply: mpsc::Sender<Result<WorkerStatus, String>> },
}

/// What the helper threads report to the main loop.
enum Event {
    /// A signal arrived.
    Signal(i32),
    /// Worker `index`, spawn number `generation`, printed its ready line.
    Ready { index: usize, generation: u64 },
    /// A run-time request.
    Control(Control),
}

/// Where a worker is in its life.
enum State {
    /// Spawned at `since`, not ready yet.
    Starting { since: Instant },
    /// Ready since `since`.
    Running { since: Instant },
    /// Dead; respawn at `at`.
    Waiting { at: Instant },
}

/// One worker's process.
struct Slot {
    index: usize,
    kind: &'static str,
    /// The config file the child reads, and the worker's index in it.
    config: PathBuf,
    config_index: usize,
    /// Stopped at run time: never respawned.
    removed: bool,
    /// A run-time start waiting for this worker to become ready.
    pending: Option<mpsc::Sender<Result<WorkerStatus, String>>>,
    /// Spawn counter, so that a late event of a previous process is ignored.
    generation: u64,
    child: Option<Child>,
    /// The stdout reader of the current child.
    reader: Option<JoinHandle<()>>,
    /// The last `junction: worker error:` text the current child printed.
    error: Arc<Mutex<Option<String>>>,
    state: State,
    backoff: Duration,
}

impl Slot {
    /// `worker 1 (router "r1")`
    fn name(&self, cfg: &NodeConfig) -> String {
        let id = match cfg.workers.get(self.index) {
            Some(WorkerConfig::Router(r)) => r.id.as_deref(),
            Some(WorkerConfig::Proxy(p)) => p.id.as_deref(),
            _ => None,
        };
        match id {
            Some(id) => format!("worker {} ({} {id:?})", self.index, self.kind),
            None => format!("worker {} ({})", self.index, self.kind),
        }
    }
}

/// The supervisor's fixed inputs.
struct Spawner {
    exe: PathBuf,
    log: String,
    pid: u32,
    events: mpsc::Sender<Event>,
    status: Option<StatusTable>,
    /// Capture the workers' logs (managed nodes).
    logs: Option<WorkerLogs>,
}

impl Spawner {
    /// Spawns the worker of `slot` and prints its pid line.
    fn spawn(&self, slot: &mut Slot) -> Result<()> {
        slot.generation += 1;
        let mut cmd = Command::new(&self.exe);
        cmd.arg("worker")
            .arg("--config")
            .arg(&slot.config)
            .arg("--index")
            .arg(slot.config_index.to_string())
            .arg("--log")
            .arg(&self.log)
            .arg("--log-format")
            .arg(if crate::log_json() { "json" } else { "text" })
            .env(SUPERVISOR_PID_ENV, self.pid.to_string())
            // Readiness is the node's to report, once every worker is ready.
            .env_remove("NOTIFY_SOCKET")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(if self.logs.is_some() { Stdio::piped() } else { Stdio::inherit() });
        let parent = self.pid as libc::pid_t;
        // SAFETY: only async-signal-safe calls (prctl, getppid, _exit)
        // between fork and exec; no allocation.
        unsafe {
            cmd.pre_exec(move || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                if libc::getppid() != parent {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().with_context(|| format!("spawning {}", self.exe.display()))?;
        let pid = child.id();
        update(&self.status, slot.index, |w| {
            w.pid = Some(pid);
            w.status = "starting";
            w.started = None;
            if slot.generation > 1 {
                w.restarts += 1;
            }
        });
        say(&format!("junction: worker {} {} pid {pid}", slot.index, slot.kind));
        tracing::info!(worker = slot.index, kind = slot.kind, pid, "worker started");

        let error = Arc::new(Mutex::new(None));
        let stdout = child.stdout.take().context("child stdout")?;
        if let (Some(logs), Some(stderr)) = (self.logs.clone(), child.stderr.take()) {
            let index = slot.index;
            thread::Builder::new()
                .name(format!("worker{index}-stderr"))
                .spawn(move || capture_stderr(stderr, index, &logs))
                .context("spawning a stderr reader thread")?;
        }
        let logs = self.logs.clone();
        let (tx, index, generation, err) = (self.events.clone(), slot.index, slot.generation, error.clone());
        let reader = thread::Builder::new()
            .name(format!("worker{index}-stdout"))
            .spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let line = line.trim_end();
                    if line == WORKER_READY_LINE {
                        let _ = tx.send(Event::Ready { index, generation });
                    } else if let Some(e) = line.strip_prefix(WORKER_ERROR_PREFIX) {
                        *err.lock().unwrap_or_else(|p| p.into_inner()) = Some(e.to_owned());
                    } else if !line.is_empty() {
                        tracing::info!(worker = index, "stdout: {line}");
                        if let Some(l) = &logs {
                            l.push(index, line);
                        }
                    }
                }
            })
            .context("spawning a stdout reader thread")?;
        slot.child = Some(child);
        slot.reader = Some(reader);
        slot.error = error;
        slot.state = State::Starting { since: Instant::now() };
        Ok(())
    }
}

/// Copies a worker's stderr to ours, line by line, keeping each line in the
/// worker's log ring. Ends when the worker's end of the pipe closes.
fn capture_stderr(stderr: std::process::ChildStderr, index: usize, logs: &WorkerLogs) {
    use std::io::Write;
    let mut r = BufReader::new(stderr);
    let mut buf = Vec::with_capacity(256);
    loop {
        buf.clear();
        match r.read_until(b'\n', &mut buf) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                // Ours first: the node's log stays what it was without capture.
                let _ = std::io::stderr().lock().write_all(&buf);
                logs.push(index, &String::from_utf8_lossy(&buf));
            }
        }
    }
}

/// The error text a dead child printed (waits briefly for its stdout reader
/// to see the end of the pipe).
fn child_error(slot: &mut Slot) -> Option<String> {
    if let Some(reader) = slot.reader.take() {
        let deadline = Instant::now() + Duration::from_secs(1);
        while !reader.is_finished() && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        if reader.is_finished() {
            let _ = reader.join();
        }
    }
    slot.error.lock().unwrap_or_else(|p| p.into_inner()).clone()
}

/// Runs the supervisor for `cfg` (loaded from `config`, an absolute path in
/// `config_dir`) until SIGTERM/SIGINT (`Ok`) or a failed start (`Err`).
/// `signals` must have been blocked before any thread was started.
/// `status`, when given, is kept current with every worker's process and
/// state (the managed node's uplink reads it); `logs`, when given, captures
/// each worker's log lines.
#[allow(clippy::too_many_arguments)]
pub fn run(
    cfg: &NodeConfig,
    config: &Path,
    config_dir: &Path,
    log: &str,
    signals: SignalSet,
    status: Option<StatusTable>,
    control: Option<mpsc::Receiver<Control>>,
    logs: Option<WorkerLogs>,
) -> Result<()> {
    // Created once here, so the children only read it.
    let key = worker::load_node_key(cfg, config_dir)?;
    tracing::info!(public_key = %key.public_hex(), workers = cfg.workers.len(), "node supervisor starting");

    let (tx, rx) = mpsc::channel();
    let sig_tx = tx.clone();
    thread::Builder::new()
        .name("signals".into())
        .spawn(move || loop {
            if sig_tx.send(Event::Signal(signals::wait(&signals))).is_err() {
                break;
            }
        })
        .context("spawning the signal thread")?;
    if let Some(control) = control {
        let ctl_tx = tx.clone();
        thread::Builder::new()
            .name("supervisor-control".into())
            .spawn(move || {
                while let Ok(c) = control.recv() {
                    if ctl_tx.send(Event::Control(c)).is_err() {
                        break;
                    }
                }
            })
            .context("spawning the control thread")?;
    }

    let spawner = Spawner {
        exe: std::env::current_exe().context("the path of this executable")?,
        log: log.to_owned(),
        pid: std::process::id(),
        events: tx,
        status: status.clone(),
        logs,
    };
    if let Some(t) = &status {
        let now = std::time::SystemTime::now();
        *t.lock().unwrap_or_else(|e| e.into_inner()) = cfg
            .workers
            .iter()
            .enumerate()
            .map(|(i, w)| WorkerStatus {
                id: worker::worker_id(w).unwrap_or_else(|| format!("worker{i}")),
                kind: worker::kind_name(w),
                pid: None,
                status: "starting",
                created: now,
                started: None,
                startup_time: None,
                restarts: 0,
            })
            .collect();
    }
    let mut slots: Vec<Slot> = cfg
        .workers
        .iter()
        .enumerate()
        .map(|(index, w)| Slot {
            index,
            kind: worker::kind_name(w),
            config: config.to_path_buf(),
            config_index: index,
            removed: false,
            pending: None,
            generation: 0,
            child: None,
            reader: None,
            error: Arc::new(Mutex::new(None)),
            state: State::Waiting { at: Instant::now() },
            backoff: BACKOFF_MIN,
        })
        .collect();

    // ---- startup: every worker must become ready.
    for i in 0..slots.len() {
        if let Err(e) = spawner.spawn(&mut slots[i]) {
            stop_all(&mut slots);
            return Err(e.context(slots[i].name(cfg)));
        }
    }
    let deadline = Instant::now() + READY_TIMEOUT;
    while !slots.iter().all(|s| matches!(s.state, State::Running { .. })) {
        match rx.recv_timeout(POLL) {
            Ok(Event::Signal(libc::SIGHUP)) => forward(&slots, libc::SIGHUP),
            Ok(Event::Signal(sig)) => {
                tracing::info!(signal = sig, "shutting down during startup");
                stop_all(&mut slots);
                return Ok(());
            }
            Ok(Event::Ready { index, generation }) => mark_ready(&mut slots, index, generation, false, &status),
            Ok(Event::Control(c)) => refuse(c, "the node is still starting its workers"),
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => bail!("internal: event channel closed"),
        }
        for i in 0..slots.len() {
            let exited = match slots[i].child.as_mut().map(Child::try_wait) {
                Some(Ok(Some(status))) => Some(status),
                _ => None,
            };
            if let Some(status) = exited {
                slots[i].child = None;
                let why = match child_error(&mut slots[i]) {
                    Some(e) => format!("{e} ({})", describe(status)),
                    None => format!("{} (see its log above)", describe(status)),
                };
                let name = slots[i].name(cfg);
                stop_all(&mut slots);
                bail!("{name} failed to start: {why}");
            }
        }
        if Instant::now() >= deadline {
            let late: Vec<String> =
                slots.iter().filter(|s| matches!(s.state, State::Starting { .. })).map(|s| s.name(cfg)).collect();
            stop_all(&mut slots);
            bail!("{} not ready within {READY_TIMEOUT:?}", late.join(", "));
        }
    }
    crate::worker::ready("junction: ready");
    tracing::info!("all workers ready");

    // ---- running: restart workers that die.
    loop {
        match rx.recv_timeout(POLL) {
            Ok(Event::Signal(libc::SIGHUP)) => {
                tracing::info!("SIGHUP: forwarding to the workers");
                forward(&slots, libc::SIGHUP);
            }
            Ok(Event::Signal(sig)) => {
                tracing::info!(signal = sig, "shutting down");
                crate::worker::stopping();
                stop_all(&mut slots);
                return Ok(());
            }
            Ok(Event::Ready { index, generation }) => mark_ready(&mut slots, index, generation, true, &status),
            Ok(Event::Control(Control::Start { id, kind, path, reply })) => {
                if slots.iter().any(|s| !s.removed && status_id(&status, s.index).as_deref() == Some(id.as_str())) {
                    let _ = reply.send(Err(format!("a worker with ID '{id}' is already running")));
                    continue;
                }
                let index = slots.len();
                if let Some(t) = &status {
                    t.lock().unwrap_or_else(|e| e.into_inner()).push(WorkerStatus {
                        id: id.clone(),
                        kind,
                        pid: None,
                        status: "starting",
                        created: std::time::SystemTime::now(),
                        started: None,
                        startup_time: None,
                        restarts: 0,
                    });
                }
                slots.push(Slot {
                    index,
                    kind,
                    config: path,
                    config_index: 0,
                    removed: false,
                    pending: Some(reply),
                    generation: 0,
                    child: None,
                    reader: None,
                    error: Arc::new(Mutex::new(None)),
                    state: State::Waiting { at: Instant::now() },
                    backoff: BACKOFF_MIN,
                });
                if let Err(e) = spawner.spawn(&mut slots[index]) {
                    fail_start(&mut slots[index], &status, format!("{e:#}"));
                }
            }
            Ok(Event::Control(Control::Stop { id, reply })) => {
                let found = slots
                    .iter()
                    .position(|s| !s.removed && status_id(&status, s.index).as_deref() == Some(id.as_str()));
                let Some(i) = found else {
                    let _ = reply.send(Err(format!("no worker with ID '{id}'")));
                    continue;
                };
                stop_all(&mut slots[i..=i]);
                slots[i].removed = true;
                if let Some(p) = slots[i].pending.take() {
                    let _ = p.send(Err("stopped before it was ready".into()));
                }
                update(&status, i, |w| {
                    w.pid = None;
                    w.status = "stopped";
                });
                tracing::info!(worker = i, %id, "worker stopped at run time");
                let st = status.as_ref().and_then(|t| t.lock().unwrap_or_else(|e| e.into_inner()).get(i).cloned());
                let _ = reply.send(st.ok_or_else(|| "no status".to_owned()));
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => bail!("internal: event channel closed"),
        }
        let now = Instant::now();
        for slot in &mut slots {
            if let Some(child) = slot.child.as_mut() {
                match child.try_wait() {
                    Ok(Some(status)) => {
                        let pid = child.id();
                        slot.child = None;
                        if slot.pending.is_some() {
                            // Started at run time and died before it was ready: report, do not restart.
                            let why = match child_error(slot) {
                                Some(e) => format!("{e} ({})", describe(status)),
                                None => describe(status),
                            };
                            fail_start(slot, &spawner.status, why);
                            continue;
                        }
                        update(&spawner.status, slot.index, |w| {
                            w.pid = None;
                            w.status = "restarting";
                        });
                        let error = child_error(slot);
                        if let State::Running { since } = slot.state {
                            if now.duration_since(since) >= HEALTHY_AFTER {
                                slot.backoff = BACKOFF_MIN;
                            }
                        }
                        let delay = slot.backoff;
                        slot.backoff = (slot.backoff * 2).min(BACKOFF_MAX);
                        slot.state = State::Waiting { at: now + delay };
                        tracing::warn!(
                            worker = slot.index,
                            kind = slot.kind,
                            pid,
                            status = %describe(status),
                            error = error.as_deref().unwrap_or(""),
                            restart_in = ?delay,
                            "worker exited; restarting"
                        );
                    }
                    Ok(None) => {
                        if let State::Starting { since } = slot.state {
                            if now.duration_since(since) >= READY_TIMEOUT {
                                tracing::error!(
                                    worker = slot.index,
                                    pid = child.id(),
                                    "worker not ready within {READY_TIMEOUT:?}; killing it"
                                );
                                let _ = child.kill();
                                // Reaped (and restarted) on the next poll.
                                slot.state = State::Starting { since: now };
                            }
                        }
                    }
                    Err(e) => tracing::error!(worker = slot.index, error = %e, "waiting for worker"),
                }
            } else if let State::Waiting { at } = slot.state {
                if now >= at && !slot.removed {
                    if let Err(e) = spawner.spawn(slot) {
                        let delay = slot.backoff;
                        slot.backoff = (slot.backoff * 2).min(BACKOFF_MAX);
                        slot.state = State::Waiting { at: now + delay };
                        tracing::error!(worker = slot.index, error = %format!("{e:#}"), retry_in = ?delay, "cannot restart worker");
                    }
                }
            }
        }
    }
}

/// Marks worker `index` ready if `generation` is its current process.
fn mark_ready(slots: &mut [Slot], index: usize, generation: u64, announce: bool, status: &Option<StatusTable>) {
    let Some(slot) = slots.get_mut(index) else { return };
    let State::Starting { since } = slot.state else { return };
    if slot.generation != generation {
        return;
    }
    slot.state = State::Running { since: Instant::now() };
    update(status, index, |w| {
        w.status = "started";
        w.started = Some(std::time::SystemTime::now());
        w.startup_time = Some(since.elapsed());
    });
    if let Some(p) = slot.pending.take() {
        let st = status.as_ref().and_then(|t| t.lock().unwrap_or_else(|e| e.into_inner()).get(index).cloned());
        let _ = p.send(st.ok_or_else(|| "no status".to_owned()));
    }
    tracing::info!(worker = index, kind = slot.kind, "worker ready");
    if announce {
        say(&format!("junction: worker {index} ready"));
    }
}

/// Answers a run-time request that cannot be served now.
fn refuse(c: Control, why: &str) {
    match c {
        Control::Start { reply, .. } | Control::Stop { reply, .. } => {
            let _ = reply.send(Err(why.to_owned()));
        }
    }
}

/// The id of worker `index` in the status table.
fn status_id(status: &Option<StatusTable>, index: usize) -> Option<String> {
    status.as_ref()?.lock().unwrap_or_else(|e| e.into_inner()).get(index).map(|w| w.id.clone())
}

/// A run-time start failed: tell the caller, drop the worker.
fn fail_start(slot: &mut Slot, status: &Option<StatusTable>, why: String) {
    slot.removed = true;
    update(status, slot.index, |w| {
        w.pid = None;
        w.status = "stopped";
    });
    tracing::warn!(worker = slot.index, error = %why, "worker started at run time failed");
    if let Some(p) = slot.pending.take() {
        let _ = p.send(Err(why));
    }
}

/// Sends `sig` to every live child.
fn forward(slots: &[Slot], sig: i32) {
    for child in slots.iter().filter_map(|s| s.child.as_ref()) {
        // Not reaped yet (only the main thread reaps), so the pid is ours.
        signals::send(child.id(), sig);
    }
}

/// SIGTERM to every child, up to [`STOP_GRACE`] for them to exit, SIGKILL
/// for the rest; every child is reaped.
fn stop_all(slots: &mut [Slot]) {
    forward(slots, libc::SIGTERM);
    let deadline = Instant::now() + STOP_GRACE;
    loop {
        let mut left = 0;
        for slot in slots.iter_mut() {
            if let Some(child) = slot.child.as_mut() {
                match child.try_wait() {
                    Ok(None) => left += 1,
                    _ => slot.child = None,
                }
            }
        }
        if left == 0 {
            return;
        }
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    for slot in slots.iter_mut() {
        if let Some(mut child) = slot.child.take() {
            tracing::warn!(
                worker = slot.index,
                pid = child.id(),
                "worker did not stop within {STOP_GRACE:?}; killing it"
            );
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `exit status 1` / `killed by signal 9`.
fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => status.to_string(),
    }
}
