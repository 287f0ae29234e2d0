//! Shared helpers for Junction's end-to-end tests.
//!
//! These tests run the real `junction` binary (built by Cargo for the test,
//! `CARGO_BIN_EXE_junction`) and talk to it with real clients: the
//! unmodified Autobahn|Python client (scripts in `tests/python/`, run with
//! the interpreter named by `JUNCTION_PYTHON`, which `scripts/test.sh`
//! sets up), Autobahn|JS and wampy.js (scripts in `tests/js/`, run with
//! Node.js; `scripts/test.sh` installs them with `npm ci`) and hand-built
//! byte streams over std sockets.
//!
//! Nothing here sleeps and hopes: a node is usable once it printed
//! `junction: ready`; every wait has a deadline that fails the test with the
//! captured output instead of hanging.

#![allow(dead_code)] // each test file uses a different subset

pub mod faults;
pub mod master;
pub mod netns;
pub mod rawsocket;

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// How long a node may take to print `junction: ready`.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one Python client scenario may run before it is killed.
pub const PYTHON_TIMEOUT: Duration = Duration::from_secs(60);
/// The four serializers every scenario runs with.
pub const SERIALIZERS: [&str; 4] = ["json", "msgpack", "cbor", "flatbuffers"];
/// Most stderr bytes kept per process (the tail is what matters).
const STDERR_KEEP: usize = 256 * 1024;

/// Path of the binary under test.
pub fn junction_bin() -> &'static str {
    env!("CARGO_BIN_EXE_junction")
}

/// Directory of the Python client scripts.
/// A binary of the `loadtest` package (`loadtest`, `tcp-floor`) in this
/// build's profile, built next to `junction` (`cargo build` is a no-op when
/// it is up to date).
pub fn loadtest_package_bin(name: &str) -> PathBuf {
    let junction = Path::new(env!("CARGO_BIN_EXE_junction"));
    let profile_dir = junction.parent().expect("binary directory");
    let target_dir = profile_dir.parent().expect("target directory");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev".to_string(),
        Some(p) => p.to_string(),
    };
    let out = Command::new(env!("CARGO"))
        .args(["build", "--quiet", "-p", "loadtest", "--bin", name, "--profile", &profile])
        .env("CARGO_TARGET_DIR", target_dir)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo build -p loadtest");
    assert!(out.status.success(), "cargo build --bin {name} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let bin = profile_dir.join(name);
    assert!(bin.exists(), "{} missing after the build", bin.display());
    bin
}

pub fn python_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("python")
}

fn unique_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// A fresh path under the system temp dir, unique to this process and call
/// (short enough for a Unix socket path). Whatever is left at the path is
/// removed when the test process exits.
pub fn temp_path(stem: &str, ext: &str) -> PathBuf {
    static PATHS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn cleanup() {
        if let Ok(paths) = PATHS.lock() {
            for p in paths.iter() {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    // SAFETY: registers a plain extern "C" function; the test harness ends
    // with `process::exit`, which runs it.
    REGISTER.call_once(|| unsafe {
        libc::atexit(cleanup);
    });
    let p = std::env::temp_dir().join(format!("jt-{}-{}-{stem}.{ext}", std::process::id(), unique_id()));
    PATHS.lock().unwrap_or_else(|e| e.into_inner()).push(p.clone());
    p
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
///
/// Ports are taken from 20000..32000, below Linux's ephemeral range (so an
/// outgoing client connection cannot grab one between allocation and the
/// router's bind), starting at an offset derived from the pid (test binaries
/// run one after another, each with its own pid) and never handed out twice
/// within one process (tests in a file run in parallel threads).
pub fn free_port() -> u16 {
    static NEXT: OnceLock<Mutex<u32>> = OnceLock::new();
    let next = NEXT.get_or_init(|| Mutex::new((std::process::id() % 1000) * 12));
    let mut next = next.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..12_000 {
        let port = 20_000 + (*next % 12_000) as u16;
        *next += 1;
        if TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free TCP port in 20000..32000");
}

// ---------------------------------------------------------------- configs

/// A role allowed everything on every URI.
pub fn allow_all_role(name: &str) -> Value {
    json!({
        "name": name,
        "permissions": [{
            "uri": "", "match": "prefix",
            "allow": {"call": true, "register": true, "publish": true, "subscribe": true},
            "disclose": {"caller": false, "publisher": false}
        }]
    })
}

/// A role that may only subscribe, and only under `prefix`.
pub fn subscribe_only_role(name: &str, prefix: &str) -> Value {
    json!({
        "name": name,
        "permissions": [{
            "uri": prefix, "match": "prefix",
            "allow": {"call": false, "register": false, "publish": false, "subscribe": true},
            "disclose": {"caller": false, "publisher": false}
        }]
    })
}

/// A realm with the given roles.
pub fn realm(name: &str, roles: Vec<Value>) -> Value {
    json!({"name": name, "roles": roles})
}

/// A `web` transport serving WAMP-over-WebSocket on `/ws` only.
pub fn web_transport(port: u16, ws_options: Value) -> Value {
    json!({
        "type": "web",
        "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
        "paths": {"ws": {
            "type": "websocket",
            "serializers": SERIALIZERS,
            "options": ws_options
        }}
    })
}

/// A RawSocket transport on 127.0.0.1:`port`.
pub fn rawsocket_tcp(port: u16) -> Value {
    json!({
        "type": "rawsocket",
        "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
        "serializers": SERIALIZERS
    })
}

/// A RawSocket transport on a Unix domain socket.
pub fn rawsocket_unix(path: &Path) -> Value {
    json!({
        "type": "rawsocket",
        "endpoint": {"type": "unix", "path": path},
        "serializers": SERIALIZERS
    })
}

/// A whole node config: one router worker with two shards.
pub fn node_config(realms: Vec<Value>, transports: Vec<Value>) -> Value {
    json!({
        "version": 2,
        "workers": [{
            "type": "router",
            "options": {"shards": 2},
            "realms": realms,
            "transports": transports
        }]
    })
}

// ---------------------------------------------------------------- processes

/// Spawns `cmd` so that the child gets SIGKILL when this test process dies
/// (normally or not): `PR_SET_PDEATHSIG` fires when the *thread* that forked
/// exits, so the fork happens on one thread that lives as long as the
/// process. Nodes shared by a whole test file (in a `static`) are never
/// dropped; this is what stops them.
fn spawn_tied(mut cmd: Command) -> std::io::Result<Child> {
    type Req = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<Req>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Req>();
        thread::Builder::new()
            .name("spawner".into())
            .spawn(move || {
                // Lives until the process exits: `tx` sits in a static.
                for (mut cmd, reply) in rx {
                    // SAFETY: prctl is async-signal-safe; no allocation.
                    unsafe {
                        cmd.pre_exec(|| {
                            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                            Ok(())
                        });
                    }
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("spawn the spawner thread");
        Mutex::new(tx)
    });
    let (reply_tx, reply_rx) = mpsc::channel();
    cmd.stdin(Stdio::null());
    spawner.lock().unwrap_or_else(|e| e.into_inner()).send((cmd, reply_tx)).expect("spawner thread alive");
    reply_rx.recv().expect("spawner replied")
}

/// Captured output of a child, filled by a reader thread.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<VecDeque<u8>>>);

impl Captured {
    fn drain_from(&self, mut r: impl Read + Send + 'static) -> thread::JoinHandle<()> {
        let buf = self.0.clone();
        thread::spawn(move || {
            let mut chunk = [0u8; 8192];
            while let Ok(n) = r.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                let mut b = buf.lock().unwrap_or_else(|e| e.into_inner());
                b.extend(&chunk[..n]);
                let excess = b.len().saturating_sub(STDERR_KEEP);
                b.drain(..excess);
            }
        })
    }

    /// Everything captured so far (the last `STDERR_KEEP` bytes), lossy UTF-8.
    pub fn text(&self) -> String {
        let b = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (a, c) = b.as_slices();
        let mut v = a.to_vec();
        v.extend_from_slice(c);
        String::from_utf8_lossy(&v).into_owned()
    }
}

/// Waits for `child` to exit, at most `timeout`; `None` if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let deadline = Instant::now() + timeout;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) if Instant::now() >= deadline => return None,
            Ok(None) => thread::sleep(Duration::from_millis(10)),
            Err(e) => panic!("waiting for child: {e}"),
        }
    }
}

/// A running `junction start --config FILE` process.
///
/// Dropped: killed (SIGKILL), its config file removed, and its stderr
/// printed if the test is failing.
pub struct JunctionProcess {
    child: Child,
    stderr: Captured,
    config_path: PathBuf,
    /// Stdout lines after `junction: ready` (normally none).
    stdout: Mutex<mpsc::Receiver<String>>,
}

impl JunctionProcess {
    /// Writes `config` to a temp file, starts a node on it and waits until it
    /// printed `junction: ready`. Panics (with the node's stderr) if it does
    /// not within [`READY_TIMEOUT`].
    pub fn start(config: Value) -> JunctionProcess {
        match Self::try_start(config) {
            Ok(p) => p,
            Err(e) => panic!("{e}"),
        }
    }

    /// Like [`JunctionProcess::start`], but returns the failure (message with
    /// exit status and stderr) instead of panicking.
    pub fn try_start(config: Value) -> Result<JunctionProcess, String> {
        let config_path = temp_path("config", "json");
        std::fs::write(&config_path, serde_json::to_vec_pretty(&config).expect("serialize config"))
            .unwrap_or_else(|e| panic!("write {}: {e}", config_path.display()));
        let mut cmd = Command::new(junction_bin());
        cmd.arg("start").arg("--config").arg(&config_path);
        if std::env::var_os("JUNCTION_LOG").is_none() {
            cmd.env("JUNCTION_LOG", "info");
        }
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
        let mut child = spawn_tied(cmd).unwrap_or_else(|e| panic!("spawn {}: {e}", junction_bin()));

        let stderr = Captured::default();
        stderr.drain_from(child.stderr.take().expect("piped stderr"));
        let (tx, rx) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                match line {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            break;
                        }
                    }
                    Err(_) => break,
                }
            }
        });

        let deadline = Instant::now() + READY_TIMEOUT;
        let mut other = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.trim() == "junction: ready" => break,
                Ok(line) => other.push(line),
                Err(e) => {
                    let why = match e {
                        mpsc::RecvTimeoutError::Timeout => {
                            let _ = child.kill();
                            format!("did not print `junction: ready` within {READY_TIMEOUT:?}")
                        }
                        mpsc::RecvTimeoutError::Disconnected => "closed stdout before `junction: ready`".into(),
                    };
                    let status = wait_timeout(&mut child, Duration::from_secs(5));
                    // Give the stderr reader a moment to take the last bytes.
                    thread::sleep(Duration::from_millis(50));
                    let _ = std::fs::remove_file(&config_path);
                    return Err(format!(
                        "junction {why} (exit status: {status:?})\nconfig: {}\nstdout: {other:?}\n--- junction stderr ---\n{}",
                        serde_json::to_string(&config).unwrap_or_default(),
                        stderr.text()
                    ));
                }
            }
        }
        Ok(JunctionProcess { child, stderr, config_path, stdout: Mutex::new(rx) })
    }

    /// Stdout lines printed after `junction: ready` so far (non-blocking).
    pub fn extra_stdout(&self) -> Vec<String> {
        let rx = self.stdout.lock().unwrap_or_else(|e| e.into_inner());
        rx.try_iter().collect()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the node wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.text()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (at most `timeout`) for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }

    /// Sends SIGTERM and waits (at most `timeout`) for the exit.
    pub fn terminate(&mut self, timeout: Duration) -> Option<ExitStatus> {
        // SAFETY: plain kill(2) on our own child's pid (not yet reaped:
        // we own the `Child` and only reap through it).
        unsafe {
            libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM);
        }
        wait_timeout(&mut self.child, timeout)
    }

    /// Runs a Python client scenario; on failure the node's stderr is part
    /// of the panic message.
    pub fn python(&self, script: &str, args: &[&str]) -> Value {
        match run_python(script, args) {
            Ok(v) => v,
            Err(e) => panic!("{e}\n--- junction stderr (tail) ---\n{}", tail(&self.stderr(), 8000)),
        }
    }

    /// Runs a Node.js client scenario (`tests/js/`); on failure the node's
    /// stderr is part of the panic message.
    pub fn node(&self, script: &str, args: &[&str]) -> Value {
        match run_node(script, args) {
            Ok(v) => v,
            Err(e) => panic!("{e}\n--- junction stderr (tail) ---\n{}", tail(&self.stderr(), 8000)),
        }
    }
}

impl Drop for JunctionProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.config_path);
        if thread::panicking() {
            eprintln!("--- junction stderr (pid {}) ---\n{}", self.child.id(), tail(&self.stderr(), 16000));
        }
    }
}

/// The last `n` bytes of `s` (on a char boundary).
pub fn tail(s: &str, n: usize) -> &str {
    let mut start = s.len().saturating_sub(n);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

// ---------------------------------------------------------------- python

/// The interpreter that has Autobahn installed (`JUNCTION_PYTHON`).
pub fn python_interpreter() -> String {
    match std::env::var("JUNCTION_PYTHON") {
        Ok(p) if !p.is_empty() => p,
        _ => panic!(
            "JUNCTION_PYTHON is not set: these end-to-end tests need the Autobahn|Python client. \
             Run ./scripts/test.sh (it creates .venv and sets JUNCTION_PYTHON), or set \
             JUNCTION_PYTHON to a python with tests/python/requirements.txt installed."
        ),
    }
}

/// Runs `tests/python/<script> <args...>` with [`PYTHON_TIMEOUT`]; panics
/// unless it exits 0; returns its last stdout line parsed as JSON.
pub fn python(script: &str, args: &[&str]) -> Value {
    run_python(script, args).unwrap_or_else(|e| panic!("{e}"))
}

/// Like [`python`], returning the failure as a message.
pub fn run_python(script: &str, args: &[&str]) -> Result<Value, String> {
    run_python_in(None, script, args)
}

/// The client interpreter as a command, run inside network namespace
/// `netns` (`ip netns exec`) if given.
pub fn python_command(netns: Option<&str>) -> Command {
    match netns {
        None => Command::new(python_interpreter()),
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, &python_interpreter()]);
            c
        }
    }
}

/// Like [`run_python`], inside network namespace `netns` if given.
pub fn run_python_in(netns: Option<&str>, script: &str, args: &[&str]) -> Result<Value, String> {
    let interp = python_interpreter();
    let path = python_dir().join(script);
    let mut cmd = python_command(netns);
    cmd.arg(&path).args(args).current_dir(python_dir());
    cmd.env("PYTHONDONTWRITEBYTECODE", "1").env("PYTHONUNBUFFERED", "1");
    let what = format!("python {script} {}", args.join(" "));
    run_client(cmd, &format!("{interp} {}", path.display()), &what, PYTHON_TIMEOUT)
}

/// Runs a client scenario process (`spawn_what` names it in a spawn
/// error, `what` everywhere else), killing it after `timeout`; it must
/// exit 0, and its last non-empty stdout line is parsed as JSON.
fn run_client(mut cmd: Command, spawn_what: &str, what: &str, timeout: Duration) -> Result<Value, String> {
    cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| format!("cannot run {spawn_what}: {e}"))?;
    let out = Captured::default();
    let err = Captured::default();
    let t1 = out.drain_from(child.stdout.take().expect("piped stdout"));
    let t2 = err.drain_from(child.stderr.take().expect("piped stderr"));
    let status = wait_timeout(&mut child, timeout);
    let timed_out = status.is_none();
    if timed_out {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = t1.join();
    let _ = t2.join();
    let (stdout, stderr) = (out.text(), err.text());
    if timed_out {
        return Err(format!(
            "{what}: killed after {timeout:?}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}",
            tail(&stderr, 8000)
        ));
    }
    let status = status.expect("exited");
    if !status.success() {
        return Err(format!("{what}: {status}\n--- stdout ---\n{stdout}\n--- stderr ---\n{}", tail(&stderr, 8000)));
    }
    let last = stdout.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
    serde_json::from_str(last).map_err(|e| {
        format!("{what}: last stdout line is not JSON ({e}): {last:?}\n--- stderr ---\n{}", tail(&stderr, 8000))
    })
}

// ---------------------------------------------------------------- node

/// How long one Node.js client scenario may run before it is killed (the
/// scripts' own watchdog fires after 30 s).
pub const NODE_TIMEOUT: Duration = Duration::from_secs(60);

/// Directory of the JavaScript client scripts (Autobahn|JS, wampy.js).
pub fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests").join("js")
}

/// The Node.js interpreter: `JUNCTION_NODE` (set by `scripts/test.sh`) or
/// `node`. Panics, loudly, if the client libraries are not installed: the
/// JavaScript tests fail rather than pass without running.
pub fn node_interpreter() -> String {
    let modules = js_dir().join("node_modules");
    for pkg in ["autobahn", "wampy", "ws"] {
        if !modules.join(pkg).join("package.json").is_file() {
            panic!(
                "the JavaScript WAMP clients are not installed ({} has no {pkg}): these end-to-end \
                 tests need Node.js with Autobahn|JS and wampy.js. Run ./scripts/test.sh (it runs \
                 `npm ci` in tests/js when npm is available), or `npm ci --prefix tests/js`.",
                modules.display()
            );
        }
    }
    match std::env::var("JUNCTION_NODE") {
        Ok(p) if !p.is_empty() => p,
        _ => "node".to_owned(),
    }
}

/// Runs `node tests/js/<script> <args...>` with [`NODE_TIMEOUT`]; it must
/// exit 0; returns its last stdout line parsed as JSON.
pub fn run_node(script: &str, args: &[&str]) -> Result<Value, String> {
    let interp = node_interpreter();
    let path = js_dir().join(script);
    let mut cmd = Command::new(&interp);
    cmd.arg(&path).args(args).current_dir(js_dir());
    let what = format!("node {script} {}", args.join(" "));
    run_client(cmd, &format!("{interp} {}", path.display()), &what, NODE_TIMEOUT)
}

/// Like [`run_node`], panicking on failure.
pub fn node(script: &str, args: &[&str]) -> Value {
    run_node(script, args).unwrap_or_else(|e| panic!("{e}"))
}

// ---------------------------------------------------------------- standard node

/// The static principals of the authentication tests (`tests/auth.rs`
/// with Autobahn|Python, `tests/js_clients.rs` with Autobahn|JS and
/// wampy.js): one node config, whichever client drives it.
pub mod principals {
    use serde_json::{json, Value};

    pub const TICKET_USER: &str = "joe";
    pub const TICKET: &str = "joe-ticket-8f2c";
    pub const CRA_USER: &str = "peter";
    pub const CRA_SECRET: &str = "peter-secret-41ab";
    pub const CRA_SALTED_USER: &str = "salty";
    pub const CRA_SALTED_PASSWORD: &str = "salty-password-7d1e";
    pub const CS_USER: &str = "client01@example.com";
    pub const SCRAM_USER: &str = "alice@example.com";
    pub const NOT_AUTHORIZED: &str = "wamp.error.not_authorized";
    /// The roles the principals get (each allowed everything).
    pub const ROLES: [&str; 4] = ["user", "admin", "device", "backend"];

    /// A transport `auth` block: ticket `joe` (role `user`), WAMP-CRA
    /// `peter` (plain, `user`) and `salty` (salted, `admin`), cryptosign
    /// `client01@example.com` with `cryptosign_pubkey` (`device`), and SCRAM
    /// `alice@example.com` (`backend`) if a credential is given; a failure
    /// budget no test reaches.
    pub fn auth_block(cryptosign_pubkey: &str, scram_credential: Option<&Value>) -> Value {
        let mut auth = json!({
            "ticket": {"type": "static", "principals": {
                TICKET_USER: {"ticket": TICKET, "role": "user"}
            }},
            "wampcra": {"type": "static", "users": {
                CRA_USER: {"secret": CRA_SECRET, "role": "user"},
                CRA_SALTED_USER: {"secret": CRA_SALTED_PASSWORD, "role": "admin",
                                  "salt": "salt-5f3a", "iterations": 100, "keylen": 32}
            }},
            "cryptosign": {"type": "static", "principals": {
                CS_USER: {"role": "device", "authorized_keys": [cryptosign_pubkey]}
            }},
            "options": {"max_failures": 100000}
        });
        if let Some(credential) = scram_credential {
            let mut scram = credential.clone();
            scram["role"] = json!("backend");
            auth["scram"] = json!({"type": "static", "principals": {SCRAM_USER: scram}});
        }
        auth
    }
}

/// A node with the usual test layout:
/// * realm `realm1`: role `anonymous` may do everything;
/// * realm `restricted`: role `anonymous` may only subscribe under `com.allowed.`;
/// * WebSocket at `ws://127.0.0.1:<port>/ws`, RawSocket TCP and Unix.
pub struct StandardNode {
    pub process: JunctionProcess,
    pub ws_port: u16,
    pub rs_port: u16,
    pub unix_path: PathBuf,
}

impl StandardNode {
    /// Starts a standard node; `ws_options` become the WebSocket `options`.
    pub fn start() -> StandardNode {
        Self::start_with(json!({}))
    }

    /// Starts a standard node with the given WebSocket `options`.
    pub fn start_with(ws_options: Value) -> StandardNode {
        // A port can be taken between `free_port` and the node's bind; try
        // again with new ports if that happened.
        let mut last = String::new();
        for _ in 0..3 {
            let (ws_port, rs_port) = (free_port(), free_port());
            let unix_path = temp_path("rs", "sock");
            let config = node_config(
                vec![
                    realm("realm1", vec![allow_all_role("anonymous")]),
                    realm("restricted", vec![subscribe_only_role("anonymous", "com.allowed.")]),
                ],
                vec![web_transport(ws_port, ws_options.clone()), rawsocket_tcp(rs_port), rawsocket_unix(&unix_path)],
            );
            match JunctionProcess::try_start(config) {
                Ok(process) => return StandardNode { process, ws_port, rs_port, unix_path },
                Err(e) if e.contains("in use") => last = e,
                Err(e) => panic!("{e}"),
            }
        }
        panic!("{last}")
    }

    /// `ws://127.0.0.1:<port>/ws`
    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.ws_port)
    }

    /// `rs://127.0.0.1:<port>`
    pub fn rs_url(&self) -> String {
        format!("rs://127.0.0.1:{}", self.rs_port)
    }

    /// `unix:<path>`
    pub fn unix_url(&self) -> String {
        format!("unix:{}", self.unix_path.display())
    }

    /// The URL for a transport name used in test names: `ws`, `rs`, `unix`.
    pub fn url(&self, transport: &str) -> String {
        match transport {
            "ws" => self.ws_url(),
            "rs" => self.rs_url(),
            "unix" => self.unix_url(),
            other => panic!("unknown transport {other}"),
        }
    }

    /// Runs a Python scenario against this node.
    pub fn python(&self, script: &str, args: &[&str]) -> Value {
        self.process.python(script, args)
    }

    /// Runs a Node.js scenario against this node.
    pub fn node(&self, script: &str, args: &[&str]) -> Value {
        self.process.node(script, args)
    }
}

/// One [`StandardNode`] per test binary, started by the first test that
/// asks. Never dropped; killed when the test process exits.
pub fn shared_node() -> &'static StandardNode {
    static NODE: OnceLock<Result<StandardNode, String>> = OnceLock::new();
    once_or_fail(&NODE, StandardNode::start)
}

/// Initializes `cell` with `init()` once per process. If `init` panicked,
/// that first test fails with the full message and every later caller
/// fails with a short pointer to it (instead of retrying, slowly, per test).
pub fn once_or_fail<T>(cell: &'static OnceLock<Result<T, String>>, init: impl FnOnce() -> T) -> &'static T {
    let mut first = None;
    let r = cell.get_or_init(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(init)).map_err(|e| {
            let msg = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "panic".into());
            first = Some(msg.clone());
            msg
        })
    });
    match (r, first) {
        (Ok(v), _) => v,
        (Err(_), Some(msg)) => panic!("{msg}"),
        (Err(msg), None) => panic!(
            "the node shared by this test file failed to start (full report in the first failing test): {}",
            msg.lines().next().unwrap_or("")
        ),
    }
}

// ---------------------------------------------------------------- temp dirs

/// A fresh, empty directory under the system temp dir, unique to this
/// process and call; it is removed with its contents when the test process
/// exits.
pub fn temp_dir(stem: &str) -> PathBuf {
    static DIRS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
    static REGISTER: std::sync::Once = std::sync::Once::new();
    extern "C" fn cleanup() {
        if let Ok(dirs) = DIRS.lock() {
            for d in dirs.iter() {
                let _ = std::fs::remove_dir_all(d);
            }
        }
    }
    // SAFETY: registers a plain extern "C" function; the test harness ends
    // with `process::exit`, which runs it.
    REGISTER.call_once(|| unsafe {
        libc::atexit(cleanup);
    });
    let d = std::env::temp_dir().join(format!("jt-{}-{}-{stem}", std::process::id(), unique_id()));
    std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("create {}: {e}", d.display()));
    DIRS.lock().unwrap_or_else(|e| e.into_inner()).push(d.clone());
    d
}

// ---------------------------------------------------------------- custom nodes

/// Starts a node on `n` fresh ports with the config `make(&ports)` builds,
/// retrying with new ports (up to 3 times) if a port was taken between
/// [`free_port`] and the node's bind. Returns the process and its ports.
pub fn start_with_ports(n: usize, make: impl Fn(&[u16]) -> Value) -> (JunctionProcess, Vec<u16>) {
    let mut last = String::new();
    for _ in 0..3 {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        match JunctionProcess::try_start(make(&ports)) {
            Ok(p) => return (p, ports),
            Err(e) if e.contains("in use") => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{last}")
}

/// A plain `websocket` transport (all serializers) with an `auth` block.
pub fn websocket_transport_auth(port: u16, auth: Value) -> Value {
    json!({
        "type": "websocket",
        "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
        "serializers": SERIALIZERS,
        "auth": auth
    })
}

/// A RawSocket TCP transport (all serializers) with an `auth` block.
pub fn rawsocket_tcp_auth(port: u16, auth: Value) -> Value {
    json!({
        "type": "rawsocket",
        "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"},
        "serializers": SERIALIZERS,
        "auth": auth
    })
}

// ---------------------------------------------------------------- supervised nodes

/// Like [`JunctionProcess::try_start`], but the config is written to
/// `dir/config.json` (so files the node keeps next to its config, such as
/// `.junction/key.priv`, land in `dir`), and the stdout lines printed before
/// `junction: ready` (the supervisor's `junction: worker <i> <type> pid <pid>`
/// lines) are returned with the process.
pub fn try_start_in_dir(dir: &Path, config: &Value) -> Result<(JunctionProcess, Vec<String>), String> {
    try_start_in_dir_netns(dir, config, None)
}

/// Like [`try_start_in_dir`], with the node inside network namespace
/// `netns` (`ip netns exec`, which execs the node: the process is the node).
pub fn try_start_in_dir_netns(
    dir: &Path,
    config: &Value,
    netns: Option<&str>,
) -> Result<(JunctionProcess, Vec<String>), String> {
    let config_path = dir.join("config.json");
    std::fs::write(&config_path, serde_json::to_vec_pretty(config).expect("serialize config"))
        .unwrap_or_else(|e| panic!("write {}: {e}", config_path.display()));
    let mut cmd = match netns {
        None => Command::new(junction_bin()),
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, junction_bin()]);
            c
        }
    };
    cmd.arg("start").arg("--config").arg(&config_path);
    spawn_until_ready(cmd, "junction: ready", config_path)
}

/// Spawns `cmd` (a `junction` command line, stdout and stderr captured) and
/// waits until it prints a line starting with `ready` (at most
/// [`READY_TIMEOUT`]); returns the process and the lines printed before.
/// `config_path` is removed when the process is dropped.
pub fn spawn_until_ready(
    mut cmd: Command,
    ready: &str,
    config_path: PathBuf,
) -> Result<(JunctionProcess, Vec<String>), String> {
    if std::env::var_os("JUNCTION_LOG").is_none() {
        cmd.env("JUNCTION_LOG", "info");
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = spawn_tied(cmd).unwrap_or_else(|e| panic!("spawn {}: {e}", junction_bin()));
    let stderr = Captured::default();
    stderr.drain_from(child.stderr.take().expect("piped stderr"));
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().expect("piped stdout");
    thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(l) = line else { break };
            if tx.send(l).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + READY_TIMEOUT;
    let mut before = Vec::new();
    loop {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(line) if line.trim().starts_with(ready) => break,
            Ok(line) => before.push(line),
            Err(e) => {
                if matches!(e, mpsc::RecvTimeoutError::Timeout) {
                    let _ = child.kill();
                }
                let status = wait_timeout(&mut child, Duration::from_secs(10));
                thread::sleep(Duration::from_millis(50));
                let _ = std::fs::remove_file(&config_path);
                return Err(format!(
                    "junction did not print `{ready}` ({e:?}; exit status: {status:?})\nstdout: {before:?}\n--- junction stderr ---\n{}",
                    stderr.text()
                ));
            }
        }
    }
    Ok((JunctionProcess { child, stderr, config_path, stdout: Mutex::new(rx) }, before))
}

/// Runs `junction <args>` to completion (at most `timeout`, then it is
/// killed): (exit status, stdout, stderr).
pub fn run_junction(args: &[&std::ffi::OsStr], timeout: Duration) -> (Option<ExitStatus>, String, String) {
    let mut cmd = Command::new(junction_bin());
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = spawn_tied(cmd).unwrap_or_else(|e| panic!("spawn {}: {e}", junction_bin()));
    let (out, err) = (Captured::default(), Captured::default());
    let t1 = out.drain_from(child.stdout.take().expect("piped stdout"));
    let t2 = err.drain_from(child.stderr.take().expect("piped stderr"));
    let status = wait_timeout(&mut child, timeout);
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let _ = t1.join();
    let _ = t2.join();
    (status, out.text(), err.text())
}

/// `(state, parent pid)` of process `pid` from `/proc/<pid>/stat`; `None`
/// if there is no such process.
pub fn proc_state(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may contain spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some((state, ppid))
}

/// Whether process `pid` exists and is not a zombie.
pub fn process_alive(pid: u32) -> bool {
    matches!(proc_state(pid), Some((s, _)) if s != 'Z')
}

// ---------------------------------------------------------------- nodes with worker pids

/// Parses the supervisor's `junction: worker <i> <type> pid <pid>` line.
pub fn worker_pid_line(line: &str) -> Option<(usize, String, u32)> {
    let rest = line.trim().strip_prefix("junction: worker ")?;
    let mut f = rest.split(' ');
    let index = f.next()?.parse().ok()?;
    let kind = f.next()?.to_owned();
    (f.next()? == "pid").then_some(())?;
    let pid = f.next()?.parse().ok()?;
    f.next().is_none().then_some((index, kind, pid))
}

/// Starts a node whose config lives in `dir` (see [`try_start_in_dir`]) on
/// `n` fresh ports, retrying with new ports (up to 3 times) if a port was
/// taken meanwhile. Returns the process, its ports and the worker pids by
/// index (from the `junction: worker <i> <type> pid <pid>` lines).
pub fn start_in_dir_with_ports(
    dir: &Path,
    n: usize,
    make: impl Fn(&[u16]) -> Value,
) -> (JunctionProcess, Vec<u16>, std::collections::BTreeMap<usize, u32>) {
    let mut last = String::new();
    for _ in 0..3 {
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        match try_start_in_dir(dir, &make(&ports)) {
            Ok((process, lines)) => {
                let pids = lines.iter().filter_map(|l| worker_pid_line(l)).map(|(i, _, pid)| (i, pid)).collect();
                return (process, ports, pids);
            }
            Err(e) if e.contains("in use") => last = e,
            Err(e) => panic!("{e}"),
        }
    }
    panic!("{last}")
}

/// Waits (at most `timeout`) until the supervisor of `node` printed
/// `junction: worker <index> ready` after a restart; returns the new pid of
/// the worker (from its `pid` line).
pub fn wait_worker_restarted(node: &JunctionProcess, index: usize, timeout: Duration) -> u32 {
    let deadline = Instant::now() + timeout;
    let mut seen = Vec::new();
    let mut pid = None;
    let ready = format!("junction: worker {index} ready");
    loop {
        for l in node.extra_stdout() {
            if let Some((i, _, p)) = worker_pid_line(&l) {
                if i == index {
                    pid = Some(p);
                }
            }
            seen.push(l);
        }
        if seen.iter().any(|l| l.trim() == ready) {
            return pid.unwrap_or_else(|| panic!("no pid line for worker {index} before it was ready: {seen:?}"));
        }
        assert!(Instant::now() < deadline, "worker {index} not back within {timeout:?}; stdout: {seen:?}");
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------- load scripts

/// A long-running client script (a load loop) that prints
/// `{"ready": true}` once running and its statistics as its last line after
/// `stop` on stdin.
pub struct LoadRun {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    stderr: Arc<Mutex<String>>,
}

impl LoadRun {
    /// Runs `tests/python/<script> <args...>`.
    pub fn start(script: &str, args: &[&str]) -> LoadRun {
        Self::start_in(None, script, args)
    }

    /// Like [`LoadRun::start`], inside network namespace `netns` if given.
    pub fn start_in(netns: Option<&str>, script: &str, args: &[&str]) -> LoadRun {
        let mut cmd = python_command(netns);
        cmd.arg(python_dir().join(script))
            .args(args)
            .current_dir(python_dir())
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("run {script}: {e}"));
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let out = child.stdout.take().expect("piped stdout");
        thread::spawn(move || {
            for l in BufReader::new(out).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut err = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = err.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap_or_else(|e| e.into_inner()).push_str(&String::from_utf8_lossy(&buf[..n]));
            }
        });
        LoadRun { child, stdin, lines, stderr }
    }

    pub fn stderr(&self) -> String {
        tail(&self.stderr.lock().unwrap_or_else(|e| e.into_inner()), 6000).to_owned()
    }

    /// Waits for `{"ready": true}`.
    pub fn wait_ready(&self, timeout: Duration) {
        match self.lines.recv_timeout(timeout) {
            Ok(l) if l.contains("\"ready\": true") => {}
            other => panic!("load clients not ready: {other:?}\n--- stderr ---\n{}", self.stderr()),
        }
    }

    /// Asks for intermediate statistics (`mark` on stdin, answered with a
    /// `{"mark": ...}` line); returns them.
    pub fn mark(&self, timeout: Duration) -> Value {
        if let Some(mut s) = self.stdin.as_ref() {
            let _ = s.write_all(b"mark\n");
        }
        let deadline = Instant::now() + timeout;
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) if l.contains("\"mark\"") => {
                    let v: Value = serde_json::from_str(&l).unwrap_or_else(|e| panic!("mark line not JSON ({e}): {l}"));
                    return v["mark"].clone();
                }
                Ok(_) => {}
                Err(e) => panic!("no mark line within {timeout:?} ({e:?})\n--- stderr ---\n{}", self.stderr()),
            }
        }
    }

    /// Tells the clients to stop; returns their statistics.
    pub fn stop(mut self, timeout: Duration) -> Value {
        if let Some(mut s) = self.stdin.take() {
            let _ = s.write_all(b"stop\n");
        }
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            match self.lines.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(l) if !l.trim().is_empty() => last = l,
                Ok(_) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    panic!("load clients did not stop within {timeout:?}\n--- stderr ---\n{}", self.stderr())
                }
            }
        }
        let status = self.child.wait().expect("wait for the load script");
        assert!(status.success(), "load script: {status}\nlast line: {last}\n--- stderr ---\n{}", self.stderr());
        serde_json::from_str(&last).unwrap_or_else(|e| panic!("last line not JSON ({e}): {last}"))
    }
}

impl Drop for LoadRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends `sig` to `pid` (a worker pid the supervisor printed).
pub fn kill(pid: u32, sig: i32) {
    // SAFETY: plain kill(2) on a worker pid the supervisor printed.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    assert_eq!(rc, 0, "kill({pid}, {sig}): {}", std::io::Error::last_os_error());
}
