//! The `mixed` scenario: a pubsub load and an rpc load against the same
//! router at the same time, optionally with a slow trickle of session
//! establishments (connect + authenticate + GOODBYE), for one duration.
//!
//! Each part runs exactly as its own scenario would (own sessions, own
//! warmup and measurement window, started together), so its throughput and
//! latency are comparable with a solo run: the difference is the cost of
//! sharing the router. The report keeps the three parts apart.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use serde_json::json;

use crate::common::{seed, ClientConfig};
use crate::pubsub::{self, PubSubParams, PubSubResult};
use crate::rpc::{self, RpcParams, RpcResult};
use crate::stats::{self, round2, LatencySummary};

/// Parameters of the mixed scenario.
#[derive(Clone, Debug)]
pub struct MixedParams {
    /// The pubsub part.
    pub pubsub: PubSubParams,
    /// The rpc part.
    pub rpc: RpcParams,
    /// Sessions per second opened (and closed) alongside; 0 = none.
    pub connect_rate: f64,
}

/// The session trickle's outcome.
#[derive(Clone, Debug, Default)]
pub struct TrickleResult {
    /// Sessions attempted inside the measurement window.
    pub attempted: u64,
    /// Sessions established inside the window.
    pub established: u64,
    /// First failure, if any.
    pub first_error: Option<String>,
    /// Connect + handshake + authentication latency.
    pub latency: LatencySummary,
}

/// The outcome of one mixed run.
#[derive(Clone, Debug)]
pub struct MixedResult {
    /// The pubsub part.
    pub pubsub: PubSubResult,
    /// The rpc part.
    pub rpc: RpcResult,
    /// The session trickle (if `connect_rate > 0`).
    pub trickle: Option<TrickleResult>,
}

impl MixedResult {
    /// Errors of all parts.
    pub fn errors(&self) -> u64 {
        let t = self.trickle.as_ref().map_or(0, |t| t.attempted - t.established.min(t.attempted));
        self.pubsub.errors + self.rpc.errors + t
    }
}

/// Opens one session every `1/rate` s (sequentially), from `warmup` to
/// `warmup + duration`, recording those started after `warmup`.
fn trickle(cfg: &ClientConfig, rate: f64, warmup: f64, duration: f64, stop: &AtomicBool) -> TrickleResult {
    let mut hist = stats::new_histogram();
    let mut r = TrickleResult::default();
    let t0 = Instant::now();
    let (w, end) = (Duration::from_secs_f64(warmup), Duration::from_secs_f64(warmup + duration));
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut i = 0usize;
    let mut next = t0;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now - t0 >= end {
            break;
        }
        if now < next {
            thread::sleep((next - now).min(Duration::from_millis(50)));
            continue;
        }
        next += period;
        let measured = now - t0 >= w;
        let start = Instant::now();
        let res = cfg.connect(seed(9, i));
        i += 1;
        if !measured {
            if let Ok((mut c, _)) = res {
                c.goodbye();
            }
            continue;
        }
        r.attempted += 1;
        match res {
            Ok((mut c, _)) => {
                stats::record(&mut hist, start.elapsed().as_nanos() as u64);
                r.established += 1;
                c.goodbye();
            }
            Err(e) => {
                r.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    r.latency = LatencySummary::from_histogram(&hist);
    r
}

/// Runs the scenario.
pub fn run(cfg: &ClientConfig, p: &MixedParams, quiet: bool) -> Result<MixedResult> {
    if !(p.connect_rate.is_finite() && p.connect_rate >= 0.0) {
        return Err(anyhow!("--connect-rate must be a non-negative number"));
    }
    let stop = Arc::new(AtomicBool::new(false));
    let ps = {
        let (cfg, pp) = (cfg.clone(), p.pubsub.clone());
        thread::Builder::new().name("mixed-pubsub".into()).spawn(move || pubsub::run(&cfg, &pp, quiet))?
    };
    let rp = {
        let (cfg, rp) = (cfg.clone(), p.rpc.clone());
        thread::Builder::new().name("mixed-rpc".into()).spawn(move || rpc::run(&cfg, &rp, quiet))?
    };
    let tr = if p.connect_rate > 0.0 {
        let (cfg, rate, stop) = (cfg.clone(), p.connect_rate, stop.clone());
        let (warmup, duration) = (p.pubsub.warmup, p.pubsub.duration);
        Some(
            thread::Builder::new()
                .name("mixed-connect".into())
                .spawn(move || trickle(&cfg, rate, warmup, duration, &stop))?,
        )
    } else {
        None
    };
    let ps = ps.join().map_err(|_| anyhow!("pubsub part panicked"));
    let rp = rp.join().map_err(|_| anyhow!("rpc part panicked"));
    // If a part failed early the trickle must not outlive the run.
    stop.store(true, Ordering::Relaxed);
    let trickle = match tr {
        Some(h) => Some(h.join().map_err(|_| anyhow!("connect part panicked"))?),
        None => None,
    };
    let pubsub = ps?.map_err(|e| e.context("pubsub part"))?;
    let rpc = rp?.map_err(|e| e.context("rpc part"))?;
    Ok(MixedResult { pubsub, rpc, trickle })
}

/// JSON description of the parameters.
pub fn params_json(p: &MixedParams) -> serde_json::Value {
    json!({
        "pubsub": pubsub::params_json(&p.pubsub),
        "rpc": rpc::params_json(&p.rpc),
        "connect_rate_per_s": p.connect_rate,
    })
}

/// JSON of the trickle part.
pub fn trickle_json(t: &TrickleResult, duration_s: f64) -> serde_json::Value {
    json!({
        "attempted": t.attempted, "established": t.established,
        "errors": t.attempted - t.established.min(t.attempted),
        "first_error": t.first_error,
        "throughput_sessions_per_s": round2(if duration_s > 0.0 { t.established as f64 / duration_s } else { 0.0 }),
        "latency": t.latency.to_json(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Auth;
    use crate::target::Target;
    use std::net::TcpListener;

    #[test]
    fn trickle_counts_failures_and_stops() {
        // A port that refuses connections: every attempt fails quickly.
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let cfg = ClientConfig {
            target: Target::parse(&format!("rs://127.0.0.1:{port}")).unwrap(),
            realm: "r".into(),
            serializer: wamp_proto::Serializer::Json,
            timeout: Duration::from_secs(1),
            tls: None,
            auth: Auth::default(),
        };
        let stop = AtomicBool::new(false);
        let t0 = Instant::now();
        let r = trickle(&cfg, 50.0, 0.1, 0.3, &stop);
        assert!(t0.elapsed() < Duration::from_secs(2));
        // ~15 attempts in the 0.3 s window at 50/s; none succeed.
        assert!((5..=25).contains(&r.attempted), "{}", r.attempted);
        assert_eq!(r.established, 0);
        assert!(r.first_error.is_some());
        let m = MixedResult {
            pubsub: PubSubResult {
                sent: 0,
                expected: 0,
                delivered: 0,
                received_total: 0,
                errors: 1,
                latency: LatencySummary::default(),
                duration_s: 1.0,
            },
            rpc: RpcResult {
                sent: 0,
                completed: 0,
                errors: 2,
                unanswered: 0,
                latency: LatencySummary::default(),
                duration_s: 1.0,
            },
            trickle: Some(r.clone()),
        };
        assert_eq!(m.errors(), 3 + r.attempted);
        assert_eq!(trickle_json(&r, 0.3)["errors"], r.attempted);
    }
}
