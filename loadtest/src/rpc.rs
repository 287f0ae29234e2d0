//! The `rpc` scenario: C callers keep W calls each in flight against K
//! callees; call → result latency.
//!
//! With one callee it registers `loadtest.echo`; with K > 1, callee `k`
//! registers `loadtest.echo.k` and every caller spreads its calls over all K
//! procedures round-robin. Callees echo the call's payload back in YIELD.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use serde_json::json;
use wamp_proto::{Dict, Message, RequestId};

use crate::common::{report_ready, seed, spawn_progress, ClientConfig, Clock, PayloadBuilder, Window};
use crate::conn::ConnError;
use crate::stats::{self, Counters, LatencySummary};

/// Parameters of the rpc scenario.
#[derive(Clone, Debug)]
pub struct RpcParams {
    /// Caller sessions.
    pub callers: usize,
    /// Callee sessions.
    pub callees: usize,
    /// Calls in flight per caller.
    pub concurrency: usize,
    /// Padding bytes per call (echoed back).
    pub payload_size: usize,
    /// Measured seconds.
    pub duration: f64,
    /// Unmeasured seconds before.
    pub warmup: f64,
}

/// The outcome of one rpc run.
#[derive(Clone, Debug)]
pub struct RpcResult {
    /// CALLs sent inside the window.
    pub sent: u64,
    /// RESULTs received for them.
    pub completed: u64,
    /// ERRORs and failed clients.
    pub errors: u64,
    /// Calls still unanswered when the run ended.
    pub unanswered: u64,
    /// Call → result latency.
    pub latency: LatencySummary,
    /// Measured seconds.
    pub duration_s: f64,
}

impl RpcResult {
    /// Completed calls per second.
    pub fn throughput(&self) -> f64 {
        self.completed as f64 / self.duration_s
    }
}

/// The procedure URI callee `k` registers (of `k_total`).
pub fn procedure_uri(k: usize, k_total: usize) -> String {
    if k_total <= 1 {
        "loadtest.echo".into()
    } else {
        format!("loadtest.echo.{k}")
    }
}

fn callee(
    cfg: &ClientConfig,
    k: usize,
    k_total: usize,
    ready: mpsc::Sender<Result<(), String>>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) -> u64 {
    let setup = (|| -> Result<_, ConnError> {
        let (mut c, _) = cfg.connect(seed(3, k))?;
        let procedure = procedure_uri(k, k_total);
        c.request(
            &Message::Register { request: RequestId::from_valid(1), options: Dict::new(), procedure },
            "REGISTER",
            cfg.timeout,
            |m| matches!(m, Message::Registered { .. }),
        )?;
        c.stream().set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(c)
    })();
    let Some(mut c) = report_ready(ready, setup, format_args!("callee {k}")) else {
        return 1;
    };
    let mut errors = 0;
    let res = (|| -> Result<(), ConnError> {
        while !stop.load(Ordering::Relaxed) {
            if !c.fill()? {
                continue;
            }
            while let Some(m) = c.poll_message()? {
                if let Message::Invocation { request, payload, .. } = m {
                    c.push(&Message::Yield { request, options: Dict::new(), payload })?;
                }
            }
            c.flush()?;
        }
        Ok(())
    })();
    if let Err(e) = res {
        if !stop.load(Ordering::Relaxed) {
            eprintln!("callee {k}: {e}");
            errors += 1;
            Counters::add(&counters.errors, 1);
        }
    }
    c.goodbye();
    errors
}

struct CallerOutcome {
    hist: Histogram<u64>,
    sent: u64,
    completed: u64,
    errors: u64,
    unanswered: u64,
}

#[allow(clippy::too_many_arguments)]
fn caller(
    cfg: &ClientConfig,
    p: &RpcParams,
    index: usize,
    ready: mpsc::Sender<Result<(), String>>,
    start: Arc<Barrier>,
    clock: Clock,
    window: Arc<Window>,
    counters: Arc<Counters>,
) -> CallerOutcome {
    let mut out = CallerOutcome { hist: stats::new_histogram(), sent: 0, completed: 0, errors: 0, unanswered: 0 };
    let conn = cfg.connect(seed(4, index)).map(|(c, _)| c);
    let Some(mut c) = report_ready(ready, conn, format_args!("caller {index}")) else {
        out.errors += 1;
        start.wait();
        return out;
    };
    start.wait();
    let procs: Vec<String> = (0..p.callees.max(1)).map(|k| procedure_uri(k, p.callees)).collect();
    let builder = PayloadBuilder::new(cfg.serializer, p.payload_size);
    let mut inflight: HashMap<u64, u64> = HashMap::with_capacity(p.concurrency * 2);
    let mut req = 0u64;
    let mut proc_i = index % procs.len();
    let end = window.end();
    let drain_deadline = end + 5_000_000_000;
    let res = (|| -> Result<(), ConnError> {
        loop {
            let now = clock.now_ns();
            if now < end {
                let mut n = 0u64;
                while inflight.len() < p.concurrency {
                    req += 1;
                    let ts = clock.now_ns();
                    c.push(&Message::Call {
                        request: RequestId::from_valid(req),
                        options: Dict::new(),
                        procedure: procs[proc_i].clone(),
                        payload: builder.build(ts),
                    })?;
                    proc_i = (proc_i + 1) % procs.len();
                    inflight.insert(req, ts);
                    if window.contains(ts) {
                        out.sent += 1;
                    }
                    n += 1;
                }
                c.flush()?;
                Counters::add(&counters.sent, n);
            } else if inflight.is_empty() || now > drain_deadline {
                return Ok(());
            }
            if !c.fill()? {
                return Err(ConnError::Timeout("RESULT"));
            }
            let mut done = 0;
            while let Some(m) = c.poll_message()? {
                let now = clock.now_ns();
                match m {
                    Message::Result { request, .. } => {
                        if let Some(ts) = inflight.remove(&request.get()) {
                            done += 1;
                            if window.contains(ts) {
                                out.completed += 1;
                                stats::record(&mut out.hist, now.saturating_sub(ts));
                            }
                        }
                    }
                    Message::Error { request, error, .. } if inflight.remove(&request.get()).is_some() => {
                        if out.errors == 0 {
                            eprintln!("caller {index}: CALL error {error}");
                        }
                        out.errors += 1;
                        Counters::add(&counters.errors, 1);
                    }
                    _ => {}
                }
            }
            Counters::add(&counters.received, done);
        }
    })();
    if let Err(e) = res {
        eprintln!("caller {index}: {e}");
        out.errors += 1;
        Counters::add(&counters.errors, 1);
    }
    out.unanswered = inflight.len() as u64;
    c.goodbye();
    out
}

/// Runs the scenario with every session on `cfg`'s router.
pub fn run(cfg: &ClientConfig, p: &RpcParams, quiet: bool) -> Result<RpcResult> {
    run_split(cfg, &[], p, quiet)
}

/// The configuration callee `k` connects with: `callee_cfgs[k % n]`, or
/// `cfg` when `callee_cfgs` is empty.
pub fn callee_config<'a>(cfg: &'a ClientConfig, callee_cfgs: &'a [ClientConfig], k: usize) -> &'a ClientConfig {
    if callee_cfgs.is_empty() {
        cfg
    } else {
        &callee_cfgs[k % callee_cfgs.len()]
    }
}

/// Runs the scenario with callers on `cfg` and callees spread round-robin
/// over `callee_cfgs` (callee `k` on `callee_cfgs[k % n]`), e.g. the members
/// of a router cluster; an empty `callee_cfgs` means `cfg` for everyone, as
/// [`run`].
pub fn run_split(cfg: &ClientConfig, callee_cfgs: &[ClientConfig], p: &RpcParams, quiet: bool) -> Result<RpcResult> {
    if p.callers == 0 || p.callees == 0 || p.concurrency == 0 {
        bail!("callers, callees and concurrency must be at least 1");
    }
    let clock = Clock::new();
    let window = Arc::new(Window::default());
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let setup_timeout = cfg.timeout + Duration::from_millis(100 * (p.callers + p.callees) as u64);

    let (tx, rx) = mpsc::channel();
    let mut callees = Vec::new();
    for k in 0..p.callees {
        let (cfg, tx, counters, stop) =
            (callee_config(cfg, callee_cfgs, k).clone(), tx.clone(), counters.clone(), stop.clone());
        let kt = p.callees;
        callees.push(
            thread::Builder::new()
                .name(format!("callee{k}"))
                .stack_size(256 << 10)
                .spawn(move || callee(&cfg, k, kt, tx, counters, stop))
                .context("spawning callee")?,
        );
    }
    drop(tx);
    let mut failure = crate::common::collect_ready(rx, p.callees, setup_timeout, "clients").err();

    let (tx, rx) = mpsc::channel();
    let start = Arc::new(Barrier::new(p.callers + 1));
    let mut callers = Vec::new();
    if failure.is_none() {
        for i in 0..p.callers {
            let (cfg, p2, tx, start, window, counters) =
                (cfg.clone(), p.clone(), tx.clone(), start.clone(), window.clone(), counters.clone());
            callers.push(
                thread::Builder::new()
                    .name(format!("caller{i}"))
                    .stack_size(256 << 10)
                    .spawn(move || caller(&cfg, &p2, i, tx, start, clock, window, counters))
                    .context("spawning caller")?,
            );
        }
        drop(tx);
        failure = crate::common::collect_ready(rx, p.callers, setup_timeout, "clients").err();
        let t0 = clock.now_ns();
        let ws = t0 + (p.warmup * 1e9) as u64;
        if failure.is_some() {
            window.set(0, 0);
        } else {
            window.set(ws, ws + (p.duration * 1e9) as u64);
            crate::procstat::window_fixed(Duration::from_secs_f64(p.warmup), Duration::from_secs_f64(p.duration));
        }
    }
    let progress_stop = Arc::new(AtomicBool::new(false));
    let progress = spawn_progress("rpc", counters.clone(), progress_stop.clone(), quiet);
    if !callers.is_empty() {
        start.wait();
    }
    let mut hist = stats::new_histogram();
    let (mut sent, mut completed, mut errors, mut unanswered) = (0, 0, 0, 0);
    for h in callers {
        let o = h.join().map_err(|_| anyhow!("caller thread panicked"))?;
        let _ = hist.add(&o.hist);
        sent += o.sent;
        completed += o.completed;
        errors += o.errors;
        unanswered += o.unanswered;
    }
    stop.store(true, Ordering::Relaxed);
    for h in callees {
        errors += h.join().map_err(|_| anyhow!("callee thread panicked"))?;
    }
    progress_stop.store(true, Ordering::Relaxed);
    let _ = progress.join();
    if let Some(e) = failure {
        bail!("setup failed: {e}");
    }
    Ok(RpcResult {
        sent,
        completed,
        errors,
        unanswered,
        latency: LatencySummary::from_histogram(&hist),
        duration_s: p.duration,
    })
}

/// JSON description of the parameters.
pub fn params_json(p: &RpcParams) -> serde_json::Value {
    json!({
        "callers": p.callers, "callees": p.callees, "concurrency": p.concurrency,
        "payload_size": p.payload_size, "duration_s": p.duration, "warmup_s": p.warmup,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn procedure_names() {
        assert_eq!(procedure_uri(0, 1), "loadtest.echo");
        assert_eq!(procedure_uri(2, 3), "loadtest.echo.2");
        let r = RpcResult {
            sent: 10,
            completed: 8,
            errors: 0,
            unanswered: 0,
            latency: LatencySummary::default(),
            duration_s: 4.0,
        };
        assert_eq!(r.throughput(), 2.0);
    }
}
