//! `loadtest`: command-line front end. See the library docs for what each
//! scenario does.
//!
//! Exit status: 0 on success, 1 if the run could not be carried out (bad
//! arguments, router unreachable, setup failed), 2 if it completed but saw
//! errors (ERROR replies, dropped connections).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::{json, Value as Json};

use loadtest::auth::{parse_key, Auth};
use loadtest::common::ClientConfig;
use loadtest::procstat::{sample_pid, sample_self, ProcDelta};
use loadtest::report::{resource_rows, table, Outcome};
use loadtest::stats::round2;
use loadtest::target::Target;
use loadtest::{connect, mixed, pubsub, rpc};
use wamp_proto::Serializer;

#[derive(Parser, Debug)]
#[command(
    name = "loadtest",
    version,
    about = "Measure any WAMP router: throughput, latency percentiles, CPU and memory"
)]
struct Cli {
    /// Router URL: ws[s]://host:port/path, rs[s]://host:port or unix:/path.
    #[arg(long, short = 'u', global = true, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// Realm to join.
    #[arg(long, global = true, default_value = "realm1")]
    realm: String,
    /// authid sent in HELLO (needed for ticket; optional for cryptosign).
    #[arg(long, global = true)]
    authid: Option<String>,
    /// Ticket authentication: answer the CHALLENGE with this secret.
    #[arg(long, global = true)]
    ticket: Option<String>,
    /// Cryptosign authentication: Ed25519 private seed, 64 hex digits.
    #[arg(long, global = true)]
    cryptosign_key: Option<String>,
    /// wss:// / rss://: trust the CA certificates in this PEM file (default: system bundle).
    #[arg(long, global = true)]
    ca: Option<PathBuf>,
    /// wss:// / rss://: accept ANY server certificate. UNSAFE: only for benchmarking routers
    /// with self-signed certificates; never where the connection must be trusted.
    #[arg(long, global = true)]
    insecure: bool,
    /// Serializer: json, msgpack, cbor or flatbuffers.
    #[arg(long, global = true, default_value = "json")]
    serializer: String,
    /// Router process to sample (CPU time, RSS) at start and end.
    #[arg(long, global = true)]
    pid: Option<u32>,
    /// Write the JSON report to this file.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Output format on stdout.
    #[arg(long, global = true, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Second router URL: run alternately against --url and this, --rounds times each.
    #[arg(long, global = true)]
    compare: Option<String>,
    /// Router process of the --compare target.
    #[arg(long, global = true)]
    compare_pid: Option<u32>,
    /// Rounds per target with --compare.
    #[arg(long, global = true, default_value_t = 3)]
    rounds: usize,
    /// Connect/handshake/join timeout, seconds.
    #[arg(long, global = true, default_value_t = 10.0)]
    timeout: f64,
    /// No progress lines on stderr.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    #[command(subcommand)]
    scenario: Scenario,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
enum Scenario {
    /// Publishers → topics → subscribers: publish→event latency, delivery.
    Pubsub(PubSubArgs),
    /// Callers → callees: call→result latency, calls/s.
    Rpc(RpcArgs),
    /// Session establishment storm (incl. authentication), then hold the sessions idle.
    Connect(ConnectArgs),
    /// Pubsub and rpc loads at once (plus an optional connect trickle), reported per part.
    Mixed(MixedArgs),
}

#[derive(Args, Debug)]
struct PubSubArgs {
    /// Publisher sessions.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Subscriber sessions.
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// Topics (subscriber s subscribes to topic s % T; publishers cycle over all).
    #[arg(long, default_value_t = 1)]
    topics: usize,
    /// Padding bytes per event.
    #[arg(long, default_value_t = 64)]
    payload_size: usize,
    /// Messages per second per publisher; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured warmup seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
    /// Request acknowledgement on every N-th PUBLISH (flow control).
    #[arg(long, default_value_t = 32)]
    ack_every: u64,
    /// Most outstanding acknowledgements per publisher (in flight ≤ ack-every × ack-window).
    #[arg(long, default_value_t = 8)]
    ack_window: u64,
    /// Most PUBLISH messages per write.
    #[arg(long, default_value_t = 32)]
    batch: usize,
    /// Bound on payload bytes in flight per publisher; lowers --ack-every for large payloads.
    #[arg(long, default_value_t = 1 << 20)]
    max_inflight_bytes: usize,
}

#[derive(Args, Debug)]
struct RpcArgs {
    /// Caller sessions.
    #[arg(long, default_value_t = 1)]
    callers: usize,
    /// Callee sessions (1: one shared procedure; K>1: K procedures).
    #[arg(long, default_value_t = 1)]
    callees: usize,
    /// Calls in flight per caller.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Padding bytes per call (echoed back).
    #[arg(long, default_value_t = 64)]
    payload_size: usize,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured warmup seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
}

#[derive(Args, Debug)]
struct ConnectArgs {
    /// Sessions to open.
    #[arg(long, default_value_t = 1000)]
    sessions: usize,
    /// Threads opening sessions.
    #[arg(long, default_value_t = 8)]
    concurrency: usize,
    /// Seconds to hold the sessions idle afterwards.
    #[arg(long, default_value_t = 5.0)]
    hold: f64,
}

#[derive(Args, Debug)]
struct MixedArgs {
    /// Publisher sessions.
    #[arg(long, default_value_t = 1)]
    publishers: usize,
    /// Subscriber sessions.
    #[arg(long, default_value_t = 1)]
    subscribers: usize,
    /// Topics.
    #[arg(long, default_value_t = 1)]
    topics: usize,
    /// Messages per second per publisher; 0 = as fast as possible.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Caller sessions.
    #[arg(long, default_value_t = 1)]
    callers: usize,
    /// Callee sessions.
    #[arg(long, default_value_t = 1)]
    callees: usize,
    /// Calls in flight per caller.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Padding bytes per event and per call.
    #[arg(long, default_value_t = 64)]
    payload_size: usize,
    /// Sessions per second opened and closed alongside (0 = none).
    #[arg(long, default_value_t = 0.0)]
    connect_rate: f64,
    /// Measured seconds.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Unmeasured warmup seconds.
    #[arg(long, default_value_t = 2.0)]
    warmup: f64,
}

/// One run against one target.
struct Run {
    outcome: Outcome,
    json: Json,
    title: String,
}

fn check_secs(name: &str, v: f64) -> Result<()> {
    if !(v.is_finite() && (0.0..=86_400.0).contains(&v)) {
        bail!("--{name} must be between 0 and 86400 seconds");
    }
    Ok(())
}

fn run_once(cli: &Cli, url: &str, pid: Option<u32>) -> Result<Run> {
    let target = Target::parse(url)?;
    let serializer = Serializer::from_name(&cli.serializer)
        .ok_or_else(|| anyhow!("unknown serializer {:?} (json, msgpack, cbor, flatbuffers)", cli.serializer))?;
    check_secs("timeout", cli.timeout)?;
    let tls = if target.is_tls() {
        if cli.insecure && !cli.quiet {
            eprintln!("loadtest: --insecure: server certificates are NOT verified (benchmarking only)");
        }
        Some(loadtest::tls::client_config(cli.ca.as_deref(), cli.insecure)?)
    } else {
        None
    };
    let auth = Auth {
        authid: cli.authid.clone(),
        ticket: cli.ticket.clone(),
        cryptosign: cli.cryptosign_key.as_deref().map(parse_key).transpose()?,
    };
    let auth_name = auth.methods().join("+");
    let cfg = ClientConfig {
        target: target.clone(),
        realm: cli.realm.clone(),
        serializer,
        timeout: Duration::from_secs_f64(cli.timeout.max(0.1)),
        tls,
        auth,
    };
    let router0 = match pid {
        Some(p) => Some(sample_pid(p).with_context(|| format!("cannot read /proc/{p}"))?),
        None => None,
    };
    let self0 = sample_self();
    let wall0 = Instant::now();
    let (name, params, outcome) = match &cli.scenario {
        Scenario::Pubsub(a) => {
            check_secs("duration", a.duration)?;
            check_secs("warmup", a.warmup)?;
            let p = pubsub::PubSubParams {
                publishers: a.publishers,
                subscribers: a.subscribers,
                topics: a.topics,
                payload_size: a.payload_size,
                rate: a.rate,
                duration: a.duration,
                warmup: a.warmup,
                ack_every: a.ack_every,
                window: a.ack_window,
                batch: a.batch,
                max_inflight_bytes: a.max_inflight_bytes,
            };
            let r = pubsub::run(&cfg, &p, cli.quiet)?;
            ("pubsub", pubsub::params_json(&p), Outcome::from(&r))
        }
        Scenario::Rpc(a) => {
            check_secs("duration", a.duration)?;
            check_secs("warmup", a.warmup)?;
            let p = rpc::RpcParams {
                callers: a.callers,
                callees: a.callees,
                concurrency: a.concurrency,
                payload_size: a.payload_size,
                duration: a.duration,
                warmup: a.warmup,
            };
            let r = rpc::run(&cfg, &p, cli.quiet)?;
            ("rpc", rpc::params_json(&p), Outcome::from(&r))
        }
        Scenario::Connect(a) => {
            check_secs("hold", a.hold)?;
            let p = connect::ConnectParams { sessions: a.sessions, concurrency: a.concurrency, hold: a.hold };
            let r = connect::run(&cfg, &p, cli.quiet)?;
            ("connect", connect::params_json(&p), Outcome::from(&r))
        }
        Scenario::Mixed(a) => {
            check_secs("duration", a.duration)?;
            check_secs("warmup", a.warmup)?;
            let p = mixed::MixedParams {
                pubsub: pubsub::PubSubParams {
                    publishers: a.publishers,
                    subscribers: a.subscribers,
                    topics: a.topics,
                    payload_size: a.payload_size,
                    rate: a.rate,
                    duration: a.duration,
                    warmup: a.warmup,
                    ack_every: 32,
                    window: 8,
                    batch: 32,
                    max_inflight_bytes: 1 << 20,
                },
                rpc: rpc::RpcParams {
                    callers: a.callers,
                    callees: a.callees,
                    concurrency: a.concurrency,
                    payload_size: a.payload_size,
                    duration: a.duration,
                    warmup: a.warmup,
                },
                connect_rate: a.connect_rate,
            };
            let r = mixed::run(&cfg, &p, cli.quiet)?;
            ("mixed", mixed::params_json(&p), Outcome::from(&r))
        }
    };
    let wall = wall0.elapsed().as_secs_f64();
    let self_d = ProcDelta::between(self0, sample_self(), wall);
    let router_d = match (pid, router0) {
        (Some(p), Some(r0)) => {
            Some(ProcDelta::between(r0, sample_pid(p).with_context(|| format!("router {p} vanished"))?, wall))
        }
        _ => None,
    };
    let mut outcome = outcome;
    if let Some(d) = &router_d {
        resource_rows(&mut outcome.rows, "router", d, outcome.delivered);
    }
    resource_rows(&mut outcome.rows, "loadtest", &self_d, outcome.delivered);
    let json = json!({
        "scenario": name,
        "target": target.to_string(),
        "realm": cfg.realm,
        "auth": auth_name,
        "serializer": serializer.name(),
        "params": params,
        "results": outcome.results,
        "router": router_d.map(|d| { let mut j = d.to_json(outcome.delivered); j["pid"] = json!(pid); j }),
        "loadgen": self_d.to_json(outcome.delivered),
        "wall_s": round2(wall),
    });
    let title = format!("loadtest {name} → {target} ({serializer}, realm {}, auth {auth_name})", cfg.realm);
    Ok(Run { outcome, json, title })
}

fn main() {
    let cli = Cli::parse();
    match real_main(&cli) {
        Ok(0) => {}
        Ok(errors) => {
            eprintln!("loadtest: run completed with {errors} errors");
            std::process::exit(2);
        }
        Err(e) => {
            eprintln!("loadtest: error: {e:#}");
            std::process::exit(1);
        }
    }
}

/// Sum of `results.errors` over every run in the document.
fn count_errors(doc: &Json) -> u64 {
    match doc {
        Json::Object(m) => {
            let own = m.get("results").and_then(|r| r.get("errors")).and_then(Json::as_u64).unwrap_or(0);
            own + m.iter().filter(|(k, _)| *k != "results").map(|(_, v)| count_errors(v)).sum::<u64>()
        }
        Json::Array(a) => a.iter().map(count_errors).sum(),
        _ => 0,
    }
}

/// Runs and reports; returns the number of errors seen.
fn real_main(cli: &Cli) -> Result<u64> {
    let doc = match &cli.compare {
        None => {
            let run = run_once(cli, &cli.url, cli.pid)?;
            if cli.format == Format::Table {
                print!("{}", table(&run.title, &run.outcome.rows));
            }
            run.json
        }
        Some(b) => compare(cli, b)?,
    };
    let text = serde_json::to_string_pretty(&doc)?;
    if cli.format == Format::Json {
        println!("{text}");
    }
    if let Some(path) = &cli.json {
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(count_errors(&doc))
}

/// Runs alternately against A and B and prints per-round ratios B/A.
fn compare(cli: &Cli, url_b: &str) -> Result<Json> {
    if cli.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    let mut rounds = Vec::new();
    let mut rows = Vec::new();
    let (mut log_tp, mut log_p99) = (0.0f64, 0.0f64);
    for i in 0..cli.rounds {
        if !cli.quiet {
            eprintln!("compare: round {}/{}: A = {}", i + 1, cli.rounds, cli.url);
        }
        let a = run_once(cli, &cli.url, cli.pid)?;
        if !cli.quiet {
            eprintln!("compare: round {}/{}: B = {url_b}", i + 1, cli.rounds);
        }
        let b = run_once(cli, url_b, cli.compare_pid)?;
        let tp_ratio = ratio(b.outcome.throughput, a.outcome.throughput);
        let p99_ratio = ratio(b.outcome.latency.p99_us, a.outcome.latency.p99_us);
        log_tp += tp_ratio.ln();
        log_p99 += p99_ratio.ln();
        rows.push((
            format!("round {}", i + 1),
            format!(
                "A {:.0} {u}, p99 {:.1} µs | B {:.0} {u}, p99 {:.1} µs | B/A throughput {:.3}, p99 {:.3}",
                a.outcome.throughput,
                a.outcome.latency.p99_us,
                b.outcome.throughput,
                b.outcome.latency.p99_us,
                tp_ratio,
                p99_ratio,
                u = a.outcome.unit,
            ),
        ));
        rounds.push(
            json!({ "a": a.json, "b": b.json, "throughput_ratio_b_over_a": tp_ratio, "p99_ratio_b_over_a": p99_ratio }),
        );
    }
    let n = cli.rounds as f64;
    let (gm_tp, gm_p99) = ((log_tp / n).exp(), (log_p99 / n).exp());
    rows.push(("geometric mean B/A".into(), format!("throughput {gm_tp:.3}, p99 latency {gm_p99:.3}")));
    if cli.format == Format::Table {
        print!("{}", table(&format!("loadtest compare: A = {}  B = {url_b}", cli.url), &rows));
    }
    Ok(json!({
        "compare": { "a": cli.url, "b": url_b, "rounds": cli.rounds,
                     "geomean_throughput_ratio_b_over_a": gm_tp, "geomean_p99_ratio_b_over_a": gm_p99 },
        "rounds": rounds,
    }))
}

fn ratio(b: f64, a: f64) -> f64 {
    if a > 0.0 && b > 0.0 {
        b / a
    } else {
        f64::NAN
    }
}
