//! `junction`: the node binary.
//!
//! `junction start [--config FILE]` runs a node (the embedded default config
//! when no file is given); `junction check --config FILE` validates a config
//! and reports every problem with its location; `junction key` prints the
//! node's public key; `junction status --config FILE` (or `--cbdir DIR`)
//! shows a running node's workers and sessions (see `status.rs`).
//!
//! A node with exactly one worker, a router, runs it inside the node process.
//! Any other node (several workers, or proxy workers) runs a **supervisor**
//! (Crossbar's node controller, for bare metal): one child process per worker
//! (the hidden `junction worker` subcommand), restarted when it dies, all
//! stopped together (see `supervisor.rs`).

mod edge;
mod signals;
mod status;
mod supervisor;
mod worker;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use junction_config::{NodeConfig, WorkerConfig};

#[derive(Parser)]
#[command(name = "junction", version, about = "Junction: a clustered, thread-per-core WAMP router")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a node.
    Start {
        /// Node config (JSON or YAML, Crossbar's node-config shape). Without it the embedded default runs.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `router_core=debug`.
        #[arg(long, default_value = "info", env = "JUNCTION_LOG")]
        log: String,
        /// Log line format on stderr: `text`, or `json` (one JSON object per line).
        #[arg(long, value_enum, default_value = "text", env = "JUNCTION_LOG_FORMAT")]
        log_format: LogFormat,
    },
    /// Validate a node config and report every problem with its location.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the embedded default config.
    DefaultConfig,
    /// Show a running node's workers (pids, state, uptime, restarts) and
    /// sessions per realm, from the status file the node keeps next to its
    /// key (exit status 1 if the node is not running).
    #[command(group = clap::ArgGroup::new("node").required(true).args(["config", "cbdir"]))]
    Status {
        /// The config the node was started with.
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// The node's directory: a managed node's `edge start --cbdir`, or
        /// the directory of a node's key (also tried: DIR/.junction).
        #[arg(long)]
        cbdir: Option<PathBuf>,
    },
    /// Print the node's public key (hex), creating the key file if missing.
    ///
    /// The key file is `controller.options.node_key` (relative to the config
    /// file's directory) or `<config dir>/.junction/key.priv` (the current
    /// directory without --config).
    Key {
        #[arg(long, short)]
        config: Option<PathBuf>,
    },
    /// The master node (`junction master start --cbdir DIR`): the management API.
    Master {
        #[command(subcommand)]
        command: MasterCommand,
    },
    /// A node managed by a master (`junction edge init|start|stop`).
    Edge {
        #[command(subcommand)]
        command: EdgeCommand,
    },
    /// Run one worker of a node (started by the node's supervisor).
    #[command(hide = true)]
    Worker {
        #[arg(long)]
        config: PathBuf,
        #[arg(long)]
        index: usize,
        #[arg(long, default_value = "info", env = "JUNCTION_LOG")]
        log: String,
        #[arg(long, value_enum, default_value = "text", env = "JUNCTION_LOG_FORMAT")]
        log_format: LogFormat,
    },
}

/// The format of log lines (`--log-format`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    /// Human-readable lines (tracing's default format).
    Text,
    /// One JSON object per line: `timestamp`, `level`, `fields` (with
    /// `message`), `target`, and the current spans.
    Json,
}

/// The log format of this process, set once from the command line before
/// logging starts (the supervisor passes it on to its worker children).
static LOG_FORMAT: std::sync::OnceLock<LogFormat> = std::sync::OnceLock::new();

/// True if this process logs JSON lines.
fn log_json() -> bool {
    LOG_FORMAT.get() == Some(&LogFormat::Json)
}

#[derive(Subcommand)]
enum EdgeCommand {
    /// Create DIR/.crossbar with the node key (key.priv, key.pub) and a starter config.json.
    Init {
        #[arg(long, default_value = ".")]
        appdir: PathBuf,
    },
    /// Run the node: its workers, and the uplink to the master
    /// (CROSSBAR_FABRIC_URL or controller.fabric.transport).
    Start {
        #[arg(long, default_value = ".crossbar")]
        cbdir: PathBuf,
        /// Log level or filter (trace, debug, info, warn, error, or tracing `EnvFilter` syntax).
        #[arg(long, default_value = "info", env = "JUNCTION_LOG")]
        loglevel: String,
        /// Colored log output (`true`/`false`).
        #[arg(long, default_value = "true", action = clap::ArgAction::Set)]
        color: bool,
    },
    /// Stop the node running from DIR (its node.pid).
    Stop {
        #[arg(long, default_value = ".crossbar")]
        cbdir: PathBuf,
    },
}

#[derive(Subcommand)]
enum MasterCommand {
    /// Run the master: state in DIR/master.db, management transport on
    /// ws://HOST:PORT/ws (global realm com.crossbario.fabric).
    Start {
        /// The master's directory (created if missing).
        #[arg(long, default_value = ".crossbar")]
        cbdir: PathBuf,
        /// Where the management WebSocket transport listens (default
        /// 127.0.0.1:9000, or the config's `listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// The superuser's public key file (Crossbar's key.pub format);
        /// default: the config's `superuser`.
        #[arg(long, env = "CROSSBAR_FABRIC_SUPERUSER")]
        superuser: Option<PathBuf>,
        /// The master's config file (JSON: `listen`, `superuser`,
        /// `auto_default_mrealm`; relative paths relative to the file).
        /// Default: `<cbdir>/master.json` if it exists.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Pair every node key (`key.pub`) found under DIR's subdirectories
        /// to management realm `default` (Crossbar's watch-to-pair).
        #[arg(long, env = "CROSSBAR_WATCH_TO_PAIR")]
        watch_to_pair: Option<PathBuf>,
        /// Log filter (tracing `EnvFilter` syntax).
        #[arg(long, default_value = "info", env = "JUNCTION_LOG")]
        log: String,
    },
}

fn main() -> ExitCode {
    // Before any thread: fixed malloc thresholds, so memory freed after a
    // connection storm goes back to the system (router_core::runtime::node::tune_allocator).
    router_core::runtime::node::tune_allocator();
    let cli = Cli::parse();
    match cli.command {
        Command::Start { config, log, log_format } => {
            let _ = LOG_FORMAT.set(log_format);
            match start(config, &log) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("junction: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Check { config } => check(&config),
        Command::Status { config, cbdir } => {
            let r = match (config, cbdir) {
                (Some(config), _) => {
                    load_config(&config, false).and_then(|cfg| status::show(&cfg, &config_dir(&config)?))
                }
                (None, Some(dir)) => status::show_cbdir(&dir),
                (None, None) => Err(anyhow::anyhow!("--config FILE or --cbdir DIR is required")),
            };
            match r {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::FAILURE,
                Err(e) => {
                    eprintln!("junction: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::DefaultConfig => {
            println!("{}", junction_config::DEFAULT_CONFIG_JSON);
            ExitCode::SUCCESS
        }
        Command::Key { config } => match key(config.as_deref()) {
            Ok(hex) => {
                println!("{hex}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("junction: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Worker { config, index, log, log_format } => {
            let _ = LOG_FORMAT.set(log_format);
            worker::run_child(&config, index, &log)
        }
        Command::Edge { command } => {
            let r = match command {
                EdgeCommand::Init { appdir } => edge::init(&appdir).map(|cbdir| {
                    println!("junction: node initialised in {}", cbdir.display());
                }),
                EdgeCommand::Start { cbdir, loglevel, color } => edge::start(&cbdir, &loglevel, color),
                EdgeCommand::Stop { cbdir } => edge::stop(&cbdir),
            };
            match r {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("junction: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Master { command: MasterCommand::Start { cbdir, listen, superuser, config, watch_to_pair, log } } => {
            match master_start(cbdir, listen, superuser, config, watch_to_pair, &log) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("junction: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

fn check(path: &Path) -> ExitCode {
    match junction_config::load(path).and_then(|c| c.validate().map(|_| c)) {
        Ok(cfg) => {
            for w in &cfg.warnings {
                eprintln!("warning: {w}");
            }
            println!("configuration OK");
            ExitCode::SUCCESS
        }
        Err(errors) => {
            for w in &errors.warnings {
                eprintln!("warning: {w}");
            }
            eprintln!("{}: {} problem(s):", path.display(), errors.len());
            eprintln!("{errors}");
            ExitCode::FAILURE
        }
    }
}

/// Installs the stderr log subscriber (text, or JSON lines with
/// `--log-format json`), then raises the open-files limit.
fn init_tracing(log: &str) -> Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(log).context("invalid --log filter")?;
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    if log_json() {
        builder.json().with_current_span(true).with_span_list(false).init();
    } else {
        builder.with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr())).init();
    }
    raise_fd_limit();
    Ok(())
}

/// Raises the soft open-files limit to the hard one and sets the
/// connection capacity it allows (one descriptor per connection, less a
/// reserve; see `router_core::runtime::fdlimit`); logs both.
pub fn raise_fd_limit() {
    use router_core::runtime::fdlimit;
    match fdlimit::raise_nofile() {
        Ok(l) => {
            let capacity = fdlimit::capacity_for(l.soft);
            fdlimit::set_capacity(capacity);
            if l.soft < 65_536 {
                tracing::info!(
                    before = l.before, soft = l.soft, hard = l.hard, connections = capacity,
                    "open-files limit raised to the hard limit; raise the hard limit (LimitNOFILE=, ulimit -Hn) for more connections"
                );
            } else {
                tracing::info!(
                    before = l.before,
                    soft = l.soft,
                    hard = l.hard,
                    connections = capacity,
                    "open-files limit raised to the hard limit"
                );
            }
        }
        Err(e) => tracing::warn!(error = %e, "cannot read or raise the open-files limit"),
    }
}

/// Loads and validates a config file; warnings are logged if `warn`
/// (worker children leave that to their supervisor).
fn load_config(path: &Path, warn: bool) -> Result<NodeConfig> {
    let cfg =
        junction_config::load(path).map_err(|e| anyhow::anyhow!("{}: invalid configuration:\n{e}", path.display()))?;
    cfg.validate().map_err(|e| anyhow::anyhow!("{}: invalid configuration:\n{e}", path.display()))?;
    if warn {
        for w in &cfg.warnings {
            tracing::warn!("{}: {w}", path.display());
        }
    }
    Ok(cfg)
}

/// The directory of a config file, absolute.
fn config_dir(path: &Path) -> Result<PathBuf> {
    let abs =
        std::path::absolute(path).with_context(|| format!("{}: cannot make the path absolute", path.display()))?;
    Ok(abs.parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("/")))
}

fn start(config: Option<PathBuf>, log: &str) -> Result<()> {
    // Before any thread exists, so every thread inherits the mask.
    let signals = signals::block();
    init_tracing(log)?;
    let (cfg, dir) = match &config {
        Some(path) => (load_config(path, true)?, config_dir(path)?),
        None => (junction_config::default_config(), std::env::current_dir().context("current directory")?),
    };
    if let [WorkerConfig::Router(w)] = cfg.workers.as_slice() {
        // One router worker: it runs in this process; it needs the node key
        // only to dial router-to-router links.
        let key =
            if w.realms.iter().any(|r| !r.rlinks.is_empty()) { Some(worker::load_node_key(&cfg, &dir)?) } else { None };
        let running = worker::Running::start(&cfg, 0, key, &dir)?;
        for ep in running.endpoints() {
            tracing::info!(endpoint = %ep, "listening");
        }
        worker::ready("junction: ready");
        if let (Some(path), worker::Running::Router(node)) = (&config, &running) {
            let id = worker::worker_id(&cfg.workers[0]).unwrap_or_else(|| "worker0".into());
            let source = status::Source::InProcess { id, node: node.clone() };
            status::spawn_writer(status::status_path(&cfg, &dir), std::path::absolute(path).ok(), source);
        }
        running.serve(&signals)
    }
    let path = config.context("a node with several workers needs --config")?;
    let path =
        std::path::absolute(&path).with_context(|| format!("{}: cannot make the path absolute", path.display()))?;
    let table = supervisor::StatusTable::default();
    let status_file = status::status_path(&cfg, &dir);
    status::spawn_writer(status_file.clone(), Some(path.clone()), status::Source::Supervised(table.clone()));
    let r = supervisor::run(&cfg, &path, &dir, log, signals, Some(table), None, None);
    let _ = std::fs::remove_file(&status_file);
    r
}

/// `junction master start`.
/// The master's config file: `{"listen": "HOST:PORT", "superuser": "key.pub path"}`.
/// The master's config file (`master.json`).
#[derive(Default)]
struct MasterFileConfig {
    listen: Option<std::net::SocketAddr>,
    superuser: Option<PathBuf>,
    /// Crossbar's `auto_default_mrealm`: `{enabled, watch_to_pair,
    /// watch_to_pair_pattern, write_pairing_file, management_url}`.
    watch_to_pair: Option<PathBuf>,
    watch_to_pair_pattern: Option<String>,
    write_pairing_file: bool,
    management_url: Option<String>,
}

fn master_config(path: &Path) -> Result<MasterFileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let v: serde_json::Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
    let obj = v.as_object().with_context(|| format!("{}: must be a JSON object", path.display()))?;
    if let Some(k) = obj.keys().find(|k| !["listen", "superuser", "auto_default_mrealm"].contains(&k.as_str())) {
        anyhow::bail!("{}: unknown key '{k}' (known: listen, superuser, auto_default_mrealm)", path.display());
    }
    let listen = match obj.get("listen") {
        None => None,
        Some(serde_json::Value::String(s)) => {
            Some(s.parse().with_context(|| format!("{}: listen {s:?} is not HOST:PORT", path.display()))?)
        }
        Some(_) => anyhow::bail!("{}: listen must be a string HOST:PORT", path.display()),
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let superuser = match obj.get("superuser") {
        None => None,
        Some(serde_json::Value::String(s)) => Some(dir.join(s)),
        Some(_) => anyhow::bail!("{}: superuser must be the path of a key.pub file", path.display()),
    };
    let mut out = MasterFileConfig { listen, superuser, ..MasterFileConfig::default() };
    if let Some(a) = obj.get("auto_default_mrealm") {
        let a = a.as_object().with_context(|| format!("{}: auto_default_mrealm must be an object", path.display()))?;
        const KNOWN: [&str; 5] =
            ["enabled", "watch_to_pair", "watch_to_pair_pattern", "write_pairing_file", "management_url"];
        if let Some(k) = a.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            anyhow::bail!("{}: auto_default_mrealm: unknown key '{k}' (known: {})", path.display(), KNOWN.join(", "));
        }
        let text = |k: &str| -> Result<Option<String>> {
            match a.get(k) {
                None | Some(serde_json::Value::Null) => Ok(None),
                Some(serde_json::Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => anyhow::bail!("{}: auto_default_mrealm.{k} must be a string", path.display()),
            }
        };
        let flag = |k: &str| -> Result<bool> {
            match a.get(k) {
                None => Ok(false),
                Some(serde_json::Value::Bool(b)) => Ok(*b),
                Some(_) => anyhow::bail!("{}: auto_default_mrealm.{k} must be true or false", path.display()),
            }
        };
        // Crossbar watches only with `enabled: true`; so does Junction.
        if flag("enabled")? {
            out.watch_to_pair = text("watch_to_pair")?.map(|d| dir.join(d));
        }
        out.watch_to_pair_pattern = text("watch_to_pair_pattern")?;
        out.write_pairing_file = flag("write_pairing_file")?;
        out.management_url = text("management_url")?;
    }
    Ok(out)
}

fn master_start(
    cbdir: PathBuf,
    listen: Option<std::net::SocketAddr>,
    superuser: Option<PathBuf>,
    config: Option<PathBuf>,
    watch_to_pair: Option<PathBuf>,
    log: &str,
) -> Result<()> {
    let signals = signals::block();
    init_tracing(log)?;
    let config = config.or_else(|| Some(cbdir.join("master.json")).filter(|p| p.exists()));
    let file = match &config {
        Some(p) => master_config(p)?,
        None => MasterFileConfig::default(),
    };
    let listen = listen.or(file.listen).unwrap_or_else(|| std::net::SocketAddr::from(([127, 0, 0, 1], 9000)));
    let superuser = superuser.or(file.superuser);
    let watch_to_pair = match watch_to_pair.or(file.watch_to_pair) {
        None => None,
        Some(dir) => {
            if !dir.is_dir() {
                anyhow::bail!("watch-to-pair: {} is not a directory", dir.display());
            }
            let pattern = file
                .watch_to_pair_pattern
                .as_deref()
                .map(master_control::pairing::pattern)
                .transpose()
                .map_err(|e| anyhow::anyhow!("auto_default_mrealm.watch_to_pair_pattern: {e}"))?;
            let url = file.management_url.clone().unwrap_or_else(|| format!("ws://{listen}/ws"));
            Some(master_control::pairing::WatchToPair {
                dir,
                pattern,
                write_pairing_file: file.write_pairing_file,
                management_url: url,
            })
        }
    };
    let superuser_key = match &superuser {
        Some(p) => {
            Some(master_control::service::read_public_key_file(p).map_err(|e| anyhow::anyhow!("superuser key: {e}"))?)
        }
        None => {
            tracing::warn!(
                "no superuser key (CROSSBAR_FABRIC_SUPERUSER or --superuser): nobody can use the management API"
            );
            None
        }
    };
    let cbdir =
        std::path::absolute(&cbdir).with_context(|| format!("{}: cannot make the path absolute", cbdir.display()))?;
    let service = master_control::MasterService::start(master_control::MasterSetup {
        cbdir: cbdir.clone(),
        listen,
        superuser_key,
        watch_to_pair,
    })
    .context("the master did not start")?;
    tracing::info!(cbdir = %cbdir.display(), "master state in {}", cbdir.join("master.db").display());
    worker::ready(&format!("junction: master ready on ws://{}/ws", service.endpoint));
    loop {
        let sig = signals::wait(&signals);
        if sig != libc::SIGHUP {
            tracing::info!(signal = sig, "master shutting down");
            worker::stopping();
            let _ = std::fs::remove_file(cbdir.join(".junction").join("master.sock"));
            std::process::exit(0);
        }
    }
}

/// `junction key`: the node's public key, hex.
fn key(config: Option<&Path>) -> Result<String> {
    let (cfg, dir) = match config {
        Some(path) => (
            junction_config::load(path)
                .map_err(|e| anyhow::anyhow!("{}: invalid configuration:\n{e}", path.display()))?,
            config_dir(path)?,
        ),
        None => (junction_config::default_config(), std::env::current_dir().context("current directory")?),
    };
    Ok(worker::load_node_key(&cfg, &dir)?.public_hex())
}
