//! `junction`: the node binary.
//!
//! `junction start [--config FILE]` runs a node (the embedded default config
//! when no file is given); `junction check --config FILE` validates a config
//! and reports every problem with its location.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use router_core::runtime::{EndpointSetup, RouterNode};

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
    },
    /// Validate a node config and report every problem with its location.
    Check {
        #[arg(long, short)]
        config: PathBuf,
    },
    /// Print the embedded default config.
    DefaultConfig,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Start { config, log } => match start(config, &log) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("junction: {e:#}");
                ExitCode::FAILURE
            }
        },
        Command::Check { config } => check(&config),
        Command::DefaultConfig => {
            println!("{}", junction_config::DEFAULT_CONFIG_JSON);
            ExitCode::SUCCESS
        }
    }
}

fn check(path: &std::path::Path) -> ExitCode {
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

fn start(config: Option<PathBuf>, log: &str) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(log).context("invalid --log filter")?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cfg = match &config {
        Some(path) => {
            let cfg = junction_config::load(path)
                .map_err(|e| anyhow::anyhow!("{}: invalid configuration:\n{e}", path.display()))?;
            cfg.validate().map_err(|e| anyhow::anyhow!("{}: invalid configuration:\n{e}", path.display()))?;
            for w in &cfg.warnings {
                tracing::warn!("{}: {w}", path.display());
            }
            cfg
        }
        None => junction_config::default_config(),
    };
    let setup = router_core::setup_from_config(&cfg).context("configuration")?;
    let signals = block_signals();
    let node = RouterNode::start(setup).context("starting the router worker")?;
    for ep in &node.endpoints {
        tracing::info!(endpoint = %ep, "listening");
    }
    println!("junction: ready");
    use std::io::Write;
    std::io::stdout().flush().ok();
    let sig = wait_signal(&signals);
    tracing::info!(signal = sig, sessions = node.directory.len(), stats = %node.stats.summary(), "shutting down");
    for ep in &node.endpoints {
        if let EndpointSetup::Unix { path } = ep {
            let _ = std::fs::remove_file(path);
        }
    }
    // Sessions end with their sockets when the process exits; clients see
    // the connection close and reconnect.
    std::process::exit(0);
}

/// Blocks SIGTERM/SIGINT/SIGHUP in this thread and every thread it spawns,
/// so they can be taken synchronously with `sigwait`.
fn block_signals() -> libc::sigset_t {
    // SAFETY: plain POSIX signal-mask calls on a local sigset.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, libc::SIGTERM);
        libc::sigaddset(&mut set, libc::SIGINT);
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        set
    }
}

fn wait_signal(set: &libc::sigset_t) -> i32 {
    let mut sig: libc::c_int = 0;
    // SAFETY: `set` was initialized by `block_signals`.
    unsafe {
        libc::sigwait(set, &mut sig);
    }
    sig
}
