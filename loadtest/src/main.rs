//! `loadtest`: command-line front end. See the library docs for what each
//! scenario does.
//!
//! Router clusters: `pubsub --sub-url URL` (repeatable) puts the subscribers
//! on other routers than the publishers (`--url`), round-robin; `rpc
//! --callee-url URL` does the same for the callees. `--pid` may be repeated
//! (or given as `--pid A,B`): every process is sampled and the router figures
//! are their sum, so "router CPU per message" covers the whole cluster.
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
    /// Router process to sample (CPU time, RSS) at start and end. Repeatable (or
    /// comma-separated) for a router made of several processes: the router figures are
    /// then the sum over all of them, and the JSON report lists each under "pids".
    #[arg(long, global = true, value_name = "PID", value_delimiter = ',')]
    pid: Vec<u32>,
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
    /// Router URL for the subscribers (repeatable, e.g. the other members of a router
    /// cluster): subscriber i connects to the (i mod n)-th --sub-url, publishers stay on
    /// --url. Default: everyone on --url.
    #[arg(long = "sub-url", value_name = "URL")]
    sub_urls: Vec<String>,
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
    /// Router URL for the callees (repeatable, e.g. the other members of a router
    /// cluster): callee k connects to the (k mod n)-th --callee-url, callers stay on
    /// --url. Default: everyone on --url.
    #[arg(long = "callee-url", value_name = "URL")]
    callee_urls: Vec<String>,
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
    /// Local address to connect from (repeatable: round-robin), e.g.
    /// 127.0.0.2: one source address has about 28,000 ephemeral ports
    /// towards one router address.
    #[arg(long = "source", value_name = "ADDR")]
    sources: Vec<std::net::IpAddr>,
    /// With --pid: seconds to wait after the sessions closed before the
    /// router's "after close" RSS and descriptor sample.
    #[arg(long, default_value_t = 3.0)]
    settle: f64,
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
    /// Sequence-checked events per second per sequence publisher, for the
    /// whole run (0 = off). Needs --connect-rate: churned sessions then
    /// subscribe, call an echo procedure and check their events too.
    #[arg(long, default_value_t = 0)]
    seq_rate: u64,
    /// Sequence publisher sessions.
    #[arg(long, default_value_t = 2)]
    seq_publishers: usize,
    /// Long-lived sequence checker sessions.
    #[arg(long, default_value_t = 2)]
    seq_subscribers: usize,
    /// With --seq-rate: every N-th churned session closes its TCP socket
    /// without GOODBYE (0 = none).
    #[arg(long, default_value_t = 0)]
    drop_every: u64,
    /// With --seq-rate: milliseconds each churned session stays subscribed.
    #[arg(long, default_value_t = 100)]
    churn_hold_ms: u64,
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

/// The scenario's split-off sessions: the flag, who uses it, and its URLs
/// (`--sub-url` for pubsub, `--callee-url` for rpc; none otherwise).
fn split_urls(scenario: &Scenario) -> (&'static str, &'static str, &[String]) {
    match scenario {
        Scenario::Pubsub(a) => ("sub-url", "subscribers", &a.sub_urls),
        Scenario::Rpc(a) => ("callee-url", "callees", &a.callee_urls),
        Scenario::Connect(_) | Scenario::Mixed(_) => ("", "", &[]),
    }
}

/// Rejects a process given twice (its CPU would be counted twice).
fn check_pids(pids: &[u32]) -> Result<()> {
    for (i, p) in pids.iter().enumerate() {
        if pids[..i].contains(p) {
            bail!("--pid {p} given more than once");
        }
    }
    Ok(())
}

/// The report's `"router"` object for the processes `pids` and their deltas
/// `per_pid`: the summed figures, `pid` (the first process, as with a single
/// `--pid`) and `pids` (each process's own figures); `null` without `--pid`.
fn router_json(pids: &[u32], per_pid: &[ProcDelta], delivered: u64) -> Json {
    let Some(&first) = pids.first() else {
        return Json::Null;
    };
    let mut j = ProcDelta::sum(per_pid).to_json(delivered);
    j["pid"] = json!(first);
    j["pids"] = pids
        .iter()
        .zip(per_pid)
        .map(|(&p, d)| {
            let mut e = json!({ "pid": p });
            if let (Json::Object(e), Json::Object(f)) = (&mut e, d.to_json(delivered)) {
                e.extend(f);
            }
            e
        })
        .collect();
    j
}

/// [`router_json`] of the measurement window: summed figures and per pid,
/// CPU only (RSS is the whole run's).
fn router_json_window(pids: &[u32], per_pid: &[ProcDelta], delivered: u64) -> Json {
    let strip = |mut j: Json| {
        if let Json::Object(m) = &mut j {
            m.retain(|k, _| k.starts_with("cpu"));
        }
        j
    };
    let mut j = strip(ProcDelta::sum(per_pid).to_json(delivered));
    j["pids"] = pids
        .iter()
        .zip(per_pid)
        .map(|(&p, d)| {
            let mut e = strip(d.to_json(delivered));
            e["pid"] = json!(p);
            e
        })
        .collect();
    j
}

fn run_once(cli: &Cli, url: &str, pids: &[u32]) -> Result<Run> {
    let target = Target::parse(url)?;
    check_pids(pids)?;
    let (split_flag, split_who, split_list) = split_urls(&cli.scenario);
    let split_targets = split_list
        .iter()
        .map(|u| Target::parse(u).with_context(|| format!("--{split_flag}")))
        .collect::<Result<Vec<_>>>()?;
    let serializer = Serializer::from_name(&cli.serializer)
        .ok_or_else(|| anyhow!("unknown serializer {:?} (json, msgpack, cbor, flatbuffers)", cli.serializer))?;
    check_secs("timeout", cli.timeout)?;
    let tls = if target.is_tls() || split_targets.iter().any(Target::is_tls) {
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
        ..Auth::default()
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
    // Subscribers (pubsub) or callees (rpc) on other routers; empty: all on `cfg`.
    let split_cfgs: Vec<ClientConfig> =
        split_targets.iter().map(|t| ClientConfig { target: t.clone(), ..cfg.clone() }).collect();
    let router0 = pids
        .iter()
        .map(|&p| sample_pid(p).with_context(|| format!("cannot read /proc/{p}")))
        .collect::<Result<Vec<_>>>()?;
    let self0 = sample_self();
    loadtest::procstat::watch_window(pids);
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
            let r = pubsub::run_split(&cfg, &split_cfgs, &p, cli.quiet)?;
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
            let r = rpc::run_split(&cfg, &split_cfgs, &p, cli.quiet)?;
            ("rpc", rpc::params_json(&p), Outcome::from(&r))
        }
        Scenario::Connect(a) => {
            check_secs("hold", a.hold)?;
            check_secs("settle", a.settle)?;
            let p = connect::ConnectParams {
                sessions: a.sessions,
                concurrency: a.concurrency,
                hold: a.hold,
                sources: a.sources.clone(),
                pids: pids.to_vec(),
                settle: a.settle,
            };
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
                seq: mixed::SeqParams {
                    rate: a.seq_rate,
                    publishers: a.seq_publishers,
                    subscribers: a.seq_subscribers,
                    drop_every: a.drop_every,
                    hold_ms: a.churn_hold_ms,
                },
            };
            let r = mixed::run(&cfg, &p, cli.quiet)?;
            ("mixed", mixed::params_json(&p), Outcome::from(&r))
        }
    };
    let wall = wall0.elapsed().as_secs_f64();
    let self_d = ProcDelta::between(self0, sample_self(), wall);
    let per_pid = pids
        .iter()
        .zip(&router0)
        .map(|(&p, &r0)| {
            Ok(ProcDelta::between(r0, sample_pid(p).with_context(|| format!("router {p} vanished"))?, wall))
        })
        .collect::<Result<Vec<_>>>()?;
    // Several router processes (a cluster): the router figures are their sum.
    let router_d = (!pids.is_empty()).then(|| ProcDelta::sum(&per_pid));
    let mut outcome = outcome;
    if let Some(d) = &router_d {
        if pids.len() > 1 {
            let list = pids.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
            outcome.rows.push(("router processes".into(), format!("{} (pids {list}), figures summed", pids.len())));
        }
        resource_rows(&mut outcome.rows, "router", d, outcome.delivered);
        if pids.len() > 1 {
            for (p, d) in pids.iter().zip(&per_pid) {
                resource_rows(&mut outcome.rows, &format!("router pid {p}"), d, outcome.delivered);
            }
        }
    }
    // The same processes over the measurement window alone.
    let window = loadtest::procstat::take_window();
    if let Some(w) = &window {
        let d = ProcDelta::sum(&w.per_pid);
        let per = if outcome.delivered > 0 {
            format!(", {:.2} CPU-µs/msg", d.cpu_us as f64 / outcome.delivered as f64)
        } else {
            String::new()
        };
        outcome.rows.push((
            "router CPU, window".into(),
            format!("{:.2} s ({:.2} cores over {:.1} s){per}", d.cpu_us as f64 / 1e6, d.cores, w.wall_s),
        ));
    }
    resource_rows(&mut outcome.rows, "loadtest", &self_d, outcome.delivered);
    let mut router_json = router_json(pids, &per_pid, outcome.delivered);
    if let Some(w) = &window {
        let mut j = router_json_window(pids, &w.per_pid, outcome.delivered);
        j["wall_s"] = json!(round2(w.wall_s));
        router_json["window"] = j;
    }
    let mut json = json!({
        "scenario": name,
        "target": target.to_string(),
        "realm": cfg.realm,
        "auth": auth_name,
        "serializer": serializer.name(),
        "params": params,
        "results": outcome.results,
        "router": router_json,
        "loadgen": self_d.to_json(outcome.delivered),
        "wall_s": round2(wall),
    });
    let mut title = format!("loadtest {name} → {target}");
    if !split_targets.is_empty() {
        let list = split_targets.iter().map(Target::to_string).collect::<Vec<_>>();
        title += &format!(", {split_who} → {}", list.join(", "));
        // "sub_targets" (pubsub) or "callee_targets" (rpc), only when given.
        let key = if split_who == "subscribers" { "sub_targets" } else { "callee_targets" };
        json[key] = json!(list);
    }
    title += &format!(" ({serializer}, realm {}, auth {auth_name})", cfg.realm);
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
            let run = run_once(cli, &cli.url, &cli.pid)?;
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
    let (split_flag, _, split_list) = split_urls(&cli.scenario);
    if !split_list.is_empty() {
        bail!("--{split_flag} cannot be combined with --compare (it would apply to both targets)");
    }
    let mut rounds = Vec::new();
    let mut rows = Vec::new();
    let (mut log_tp, mut log_p99) = (0.0f64, 0.0f64);
    for i in 0..cli.rounds {
        if !cli.quiet {
            eprintln!("compare: round {}/{}: A = {}", i + 1, cli.rounds, cli.url);
        }
        let a = run_once(cli, &cli.url, &cli.pid)?;
        if !cli.quiet {
            eprintln!("compare: round {}/{}: B = {url_b}", i + 1, cli.rounds);
        }
        let b = run_once(cli, url_b, cli.compare_pid.as_slice())?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("loadtest").chain(args.iter().copied())).expect("valid arguments")
    }

    #[test]
    fn pid_is_repeatable_and_comma_separated() {
        assert!(parse(&["pubsub"]).pid.is_empty());
        assert_eq!(parse(&["--pid", "7", "pubsub"]).pid, vec![7]);
        assert_eq!(parse(&["--pid", "7", "--pid", "9", "rpc"]).pid, vec![7, 9]);
        assert_eq!(parse(&["rpc", "--pid", "7,9,11"]).pid, vec![7, 9, 11]);
        assert!(check_pids(&[7, 9, 11]).is_ok());
        assert!(check_pids(&[7, 9, 7]).is_err());
        assert_eq!(parse(&["--compare", "ws://b/ws", "--compare-pid", "3", "pubsub"]).compare_pid, Some(3));
    }

    #[test]
    fn split_urls_per_scenario() {
        let cli = parse(&["-u", "ws://a:1/ws", "pubsub", "--sub-url", "ws://b:2/ws", "--sub-url", "rs://c:3"]);
        let (flag, who, urls) = split_urls(&cli.scenario);
        assert_eq!((flag, who), ("sub-url", "subscribers"));
        assert_eq!(urls, ["ws://b:2/ws", "rs://c:3"]);
        assert_eq!(cli.url, "ws://a:1/ws");
        let cli = parse(&["rpc", "--callee-url", "ws://b:2/ws"]);
        assert_eq!(split_urls(&cli.scenario).2, ["ws://b:2/ws"]);
        assert!(split_urls(&parse(&["pubsub"]).scenario).2.is_empty());
        assert!(split_urls(&parse(&["connect"]).scenario).2.is_empty());
        // Each flag belongs to its own scenario.
        assert!(Cli::try_parse_from(["loadtest", "rpc", "--sub-url", "ws://b/ws"]).is_err());
        assert!(Cli::try_parse_from(["loadtest", "pubsub", "--callee-url", "ws://b/ws"]).is_err());
    }

    #[test]
    fn router_json_sums_and_lists_processes() {
        assert_eq!(router_json(&[], &[], 10), Json::Null);
        let d =
            |cpu_us, rss| ProcDelta { cpu_us, cores: cpu_us as f64 / 1e6, rss_start_kib: rss, rss_end_kib: rss + 10 };
        // One process: the old fields, plus a one-entry "pids".
        let one = router_json(&[42], &[d(1_000_000, 100)], 1000);
        assert_eq!(one["pid"], 42);
        assert_eq!(one["cpu_us"], 1_000_000);
        assert_eq!(one["cpu_us_per_msg"], 1000.0);
        assert_eq!(one["rss_growth_kib"], 10);
        assert_eq!(one["pids"].as_array().map(Vec::len), Some(1));
        // Three processes: summed top level, each one under "pids".
        let all = router_json(&[1, 2, 3], &[d(1_000_000, 100), d(2_000_000, 200), d(500_000, 50)], 1000);
        assert_eq!(all["pid"], 1);
        assert_eq!(all["cpu_us"], 3_500_000);
        assert_eq!(all["cpu_cores"], 3.5);
        assert_eq!(all["cpu_us_per_msg"], 3500.0);
        assert_eq!(all["rss_start_kib"], 350);
        assert_eq!(all["rss_end_kib"], 380);
        assert_eq!(all["rss_growth_kib"], 30);
        let pids = all["pids"].as_array().expect("pids list");
        assert_eq!(pids.len(), 3);
        assert_eq!(pids[1]["pid"], 2);
        assert_eq!(pids[1]["cpu_us"], 2_000_000);
        assert_eq!(pids[1]["cpu_us_per_msg"], 2000.0);
        assert_eq!(pids[2]["rss_end_kib"], 60);
    }
}
