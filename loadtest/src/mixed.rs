//! The `mixed` scenario: a pubsub load and an rpc load against the same
//! router at the same time, optionally with a slow trickle of session
//! establishments (connect + authenticate + GOODBYE), for one duration.
//!
//! Each part runs exactly as its own scenario would (own sessions, own
//! warmup and measurement window, started together), so its throughput and
//! latency are comparable with a solo run: the difference is the cost of
//! sharing the router. The report keeps the three parts apart.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Result};
use serde_json::json;
use wamp_proto::payload::decode_value;
use wamp_proto::{Dict, Message, Payload, RequestId, Value};

use crate::common::{report_ready, seed, ClientConfig};
use crate::conn::{Conn, ConnError};
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
    /// The sequence-checked part and what churned sessions do.
    pub seq: SeqParams,
}

/// The sequence-checked part (off when `rate` is 0).
#[derive(Clone, Debug, Default)]
pub struct SeqParams {
    /// Events per second per sequence publisher; 0 = no sequence part.
    pub rate: u64,
    /// Sequence publisher sessions.
    pub publishers: usize,
    /// Long-lived sequence checker sessions.
    pub subscribers: usize,
    /// Every N-th churned session closes its socket without GOODBYE (0: none).
    pub drop_every: u64,
    /// Milliseconds a churned session stays (subscribed) before it leaves.
    pub hold_ms: u64,
}

/// Topic of the sequence-checked events.
pub const SEQ_TOPIC: &str = "loadtest.soak.seq";
/// Procedure of the long-lived echo callee that churned sessions call.
pub const ECHO_PROC: &str = "loadtest.soak.echo";

/// The sequence-checked part's outcome.
#[derive(Clone, Debug, Default)]
pub struct SeqResult {
    /// PUBLISHes sent (all publishers, whole run).
    pub published: u64,
    /// PUBLISHED acknowledgements received.
    pub acked: u64,
    /// Deliveries expected at the long-lived checkers (published × checkers).
    pub expected: u64,
    /// Events received by the long-lived checkers.
    pub received: u64,
    /// Expected deliveries never received.
    pub lost: u64,
    /// Events received a second time.
    pub duplicated: u64,
    /// Events received after a later one of the same publisher.
    pub reordered: u64,
    /// Events checked by churned sessions.
    pub churn_events: u64,
    /// Gaps inside a churned session's stream (events missing between two received).
    pub churn_lost: u64,
    /// Repeats (or steps back) inside a churned session's stream.
    pub churn_duplicated: u64,
    /// Echo calls made by churned sessions.
    pub calls: u64,
    /// Of those, answered with the right echo.
    pub calls_ok: u64,
    /// Churned sessions that left with GOODBYE.
    pub goodbyes: u64,
    /// Churned sessions that closed the socket without GOODBYE.
    pub drops: u64,
    /// Errors of the part (publisher/checker/callee failures, ERRORs, bad echoes).
    pub errors: u64,
    /// First error, if any.
    pub first_error: Option<String>,
}

impl SeqResult {
    fn error(&mut self, e: impl ToString) {
        self.errors += 1;
        self.first_error.get_or_insert_with(|| e.to_string());
    }
    /// Lost, duplicated and reordered events and errors, all together.
    pub fn failures(&self) -> u64 {
        self.lost
            + self.duplicated
            + self.reordered
            + self.churn_lost
            + self.churn_duplicated
            + self.errors
            + (self.calls - self.calls_ok.min(self.calls))
    }
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
    /// The sequence-checked part, if on.
    pub seq: Option<SeqResult>,
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
        let t = self.trickle.as_ref().map_or(0, |t| {
            t.attempted - t.established.min(t.attempted) + t.seq.as_ref().map_or(0, SeqResult::failures)
        });
        self.pubsub.errors + self.rpc.errors + t
    }
}

/// Opens one session every `1/rate` s (sequentially), from `warmup` to
/// `warmup + duration`, recording those started after `warmup`.
fn trickle(cfg: &ClientConfig, rate: f64, warmup: f64, duration: f64, stop: &AtomicBool) -> TrickleResult {
    trickle_with(cfg, rate, warmup, duration, stop, None)
}

/// [`trickle`], with every session going through [`churn_session`] when
/// `churn` is given (its outcome counted there).
fn trickle_with(
    cfg: &ClientConfig,
    rate: f64,
    warmup: f64,
    duration: f64,
    stop: &AtomicBool,
    mut churn: Option<(&SeqParams, &mut SeqResult)>,
) -> TrickleResult {
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
        let elapsed = start.elapsed();
        i += 1;
        let close = |c: Conn, churn: &mut Option<(&SeqParams, &mut SeqResult)>| match churn {
            Some((p, out)) => churn_session(c, i as u64, p, out),
            None => {
                let mut c = c;
                c.goodbye();
            }
        };
        if !measured {
            match res {
                Ok((c, _)) => close(c, &mut churn),
                Err(e) => {
                    if let Some((_, out)) = &mut churn {
                        out.error(format!("churned session (warm-up): {e}"));
                    }
                }
            }
            continue;
        }
        r.attempted += 1;
        match res {
            Ok((c, _)) => {
                stats::record(&mut hist, elapsed.as_nanos() as u64);
                r.established += 1;
                close(c, &mut churn);
            }
            Err(e) => {
                r.first_error.get_or_insert_with(|| e.to_string());
            }
        }
    }
    r.latency = LatencySummary::from_histogram(&hist);
    r
}

/// `[a, b, …]` of a payload whose args are unsigned integers.
fn uints(payload: &Payload) -> Option<Vec<u64>> {
    let list = match payload {
        Payload::Raw { format, args: Some(b), .. } => match decode_value(*format, b).ok()? {
            Value::List(l) => l,
            _ => return None,
        },
        Payload::Values { args: Some(l), .. } => l.clone(),
        _ => return None,
    };
    list.iter().map(Value::as_u64).collect()
}

fn values(v: &[u64]) -> Payload {
    Payload::Values { args: Some(v.iter().map(|&x| Value::UInt(x)).collect()), kwargs: None }
}

/// Per-publisher bitsets of the sequence numbers seen.
#[derive(Debug, Default)]
struct SeqCheck {
    seen: Vec<Vec<u64>>,
    top: Vec<Option<u64>>,
    received: u64,
    duplicated: u64,
    reordered: u64,
}

impl SeqCheck {
    fn new(publishers: usize) -> SeqCheck {
        SeqCheck { seen: vec![Vec::new(); publishers], top: vec![None; publishers], ..SeqCheck::default() }
    }
    /// Records event `seq` of publisher `p`; false if `p` is out of range.
    fn record(&mut self, p: u64, seq: u64) -> bool {
        let Some(bits) = self.seen.get_mut(p as usize) else { return false };
        self.received += 1;
        let (w, b) = ((seq / 64) as usize, seq % 64);
        if bits.len() <= w {
            bits.resize(w + 1, 0);
        }
        if bits[w] & (1 << b) != 0 {
            self.duplicated += 1;
            return true;
        }
        bits[w] |= 1 << b;
        let top = &mut self.top[p as usize];
        match *top {
            Some(t) if seq < t => self.reordered += 1,
            _ => *top = Some(seq),
        }
        true
    }
    /// Distinct sequence numbers below `published[p]` seen, over all publishers.
    fn distinct_below(&self, published: &[u64]) -> u64 {
        self.seen
            .iter()
            .zip(published)
            .map(|(bits, &n)| {
                (0..n).filter(|&s| bits.get((s / 64) as usize).is_some_and(|w| w & (1 << (s % 64)) != 0)).count() as u64
            })
            .sum()
    }
}

/// One churned session (already joined): subscribe to [`SEQ_TOPIC`], call
/// [`ECHO_PROC`], hold while checking the events' continuity, leave.
fn churn_session(mut c: Conn, i: u64, p: &SeqParams, out: &mut SeqResult) {
    let res = (|| -> Result<(), ConnError> {
        c.stream().set_read_timeout(Some(Duration::from_millis(20)))?;
        crate::common::subscribe(&mut c, SEQ_TOPIC, Duration::from_secs(5))?;
        c.push(&Message::Call {
            request: RequestId::from_valid(2),
            options: Dict::new(),
            procedure: ECHO_PROC.into(),
            payload: values(&[i]),
        })?;
        c.flush()?;
        out.calls += 1;
        let mut last: Vec<Option<u64>> = vec![None; p.publishers];
        let mut answered = false;
        let t0 = Instant::now();
        let hold = Duration::from_millis(p.hold_ms);
        while !(answered && t0.elapsed() >= hold) {
            if t0.elapsed() > hold + Duration::from_secs(5) {
                return Err(ConnError::Timeout("RESULT of the echo call"));
            }
            match c.recv()? {
                Some(Message::Event { payload, .. }) => match uints(&payload).as_deref() {
                    Some(&[pb, seq]) if (pb as usize) < last.len() => {
                        out.churn_events += 1;
                        match last[pb as usize] {
                            Some(l) if seq <= l => out.churn_duplicated += 1,
                            Some(l) => out.churn_lost += seq - l - 1,
                            None => {}
                        }
                        last[pb as usize] = Some(seq.max(last[pb as usize].unwrap_or(0)));
                    }
                    _ => return Err(ConnError::Protocol("malformed sequence event".into())),
                },
                Some(Message::Result { payload, .. }) => {
                    if uints(&payload).as_deref() == Some(&[i]) {
                        out.calls_ok += 1;
                    } else {
                        return Err(ConnError::Protocol("echo call returned the wrong value".into()));
                    }
                    answered = true;
                }
                Some(Message::Error { error, .. }) => return Err(ConnError::Refused(format!("CALL: {error}"))),
                Some(_) | None => {}
            }
        }
        Ok(())
    })();
    if let Err(e) = res {
        out.error(format!("churned session {i}: {e}"));
    }
    #[allow(clippy::manual_is_multiple_of)] // MSRV 1.85
    if p.drop_every > 0 && i % p.drop_every == 0 {
        // Abrupt: the socket closes (FIN, or RST with unread events) without GOODBYE.
        out.drops += 1;
        drop(c);
    } else {
        out.goodbyes += 1;
        c.goodbye();
    }
}

/// A long-lived checker: subscribes, then records every event until `stop`.
fn seq_subscriber(
    cfg: &ClientConfig,
    index: usize,
    publishers: usize,
    ready: mpsc::Sender<Result<(), String>>,
    received: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<SeqCheck, String> {
    let setup = crate::common::connect_subscribed(cfg, seed(11, index), SEQ_TOPIC, Duration::from_millis(100));
    let Some(mut c) = report_ready(ready, setup, format_args!("sequence checker {index}")) else {
        return Err(format!("sequence checker {index}: setup failed"));
    };
    let mut check = SeqCheck::new(publishers);
    while !stop.load(Ordering::Relaxed) {
        match c.recv() {
            Ok(Some(Message::Event { payload, .. })) => match uints(&payload).as_deref() {
                Some(&[p, seq]) if check.record(p, seq) => {
                    received.fetch_add(1, Ordering::Relaxed);
                }
                _ => return Err(format!("sequence checker {index}: malformed event")),
            },
            Ok(_) => {}
            Err(e) => return Err(format!("sequence checker {index}: {e}")),
        }
    }
    c.goodbye();
    Ok(check)
}

/// A sequence publisher: `[index, seq]` at `rate`/s, each acknowledged, until
/// `stop`; then waits (up to 5 s) for the outstanding acknowledgements.
/// Returns (published, acknowledged, errors, first error).
fn seq_publisher(
    cfg: &ClientConfig,
    index: usize,
    rate: u64,
    ready: mpsc::Sender<Result<(), String>>,
    start: Arc<Barrier>,
    stop: Arc<AtomicBool>,
) -> PublisherOutcome {
    let conn = cfg.connect(seed(12, index)).map(|(c, _)| c);
    let Some(mut c) = report_ready(ready, conn, format_args!("sequence publisher {index}")) else {
        start.wait();
        return (0, 0, 1, Some(format!("sequence publisher {index}: setup failed")));
    };
    start.wait();
    let (mut sent, mut acked, mut errors, mut first) = (0u64, 0u64, 0u64, None);
    let mut ack = Dict::new();
    ack.insert("acknowledge".into(), Value::Bool(true));
    let interval = Duration::from_secs_f64(1.0 / rate.max(1) as f64);
    let t0 = Instant::now();
    let mut drain_until: Option<Instant> = None;
    let res = (|| -> Result<(), ConnError> {
        c.stream().set_read_timeout(Some(Duration::from_millis(2)))?;
        loop {
            if drain_until.is_none() && stop.load(Ordering::Relaxed) {
                drain_until = Some(Instant::now() + Duration::from_secs(5));
            }
            match drain_until {
                Some(d) if acked >= sent || Instant::now() > d => return Ok(()),
                Some(_) => {}
                None => {
                    let due = (t0.elapsed().as_secs_f64() / interval.as_secs_f64()) as u64 + 1;
                    while sent < due {
                        c.push(&Message::Publish {
                            request: RequestId::from_valid(sent + 1),
                            options: ack.clone(),
                            topic: SEQ_TOPIC.into(),
                            payload: values(&[index as u64, sent]),
                        })?;
                        sent += 1;
                    }
                    c.flush()?;
                }
            }
            c.fill()?;
            while let Some(m) = c.poll_message()? {
                match m {
                    Message::Published { .. } => acked += 1,
                    Message::Error { error, .. } => {
                        errors += 1;
                        first.get_or_insert_with(|| format!("sequence publisher {index}: PUBLISH error {error}"));
                    }
                    _ => {}
                }
            }
        }
    })();
    if let Err(e) = res {
        errors += 1;
        first.get_or_insert_with(|| format!("sequence publisher {index}: {e}"));
    }
    c.goodbye();
    (sent, acked, errors, first)
}

/// The long-lived echo callee of [`ECHO_PROC`].
fn echo_callee(
    cfg: &ClientConfig,
    ready: mpsc::Sender<Result<(), String>>,
    stop: Arc<AtomicBool>,
) -> Result<u64, String> {
    let setup = (|| -> Result<_, ConnError> {
        let (mut c, _) = cfg.connect(seed(13, 0))?;
        c.request(
            &Message::Register { request: RequestId::from_valid(1), options: Dict::new(), procedure: ECHO_PROC.into() },
            "REGISTER",
            cfg.timeout,
            |m| matches!(m, Message::Registered { .. }),
        )?;
        c.stream().set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(c)
    })();
    let Some(mut c) = report_ready(ready, setup, format_args!("echo callee")) else {
        return Err("echo callee: setup failed".into());
    };
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        match c.recv() {
            Ok(Some(Message::Invocation { request, payload, .. })) => {
                n += 1;
                let r = c.push(&Message::Yield { request, options: Dict::new(), payload }).and_then(|_| c.flush());
                if let Err(e) = r {
                    return Err(format!("echo callee: {e}"));
                }
            }
            Ok(_) => {}
            Err(e) => return Err(format!("echo callee: {e}")),
        }
    }
    c.goodbye();
    Ok(n)
}

/// A sequence publisher's (published, acknowledged, errors, first error).
type PublisherOutcome = (u64, u64, u64, Option<String>);

/// The long-lived sessions of the sequence part, running.
struct SeqPart {
    pubs: Vec<thread::JoinHandle<PublisherOutcome>>,
    subs: Vec<thread::JoinHandle<Result<SeqCheck, String>>>,
    callee: thread::JoinHandle<Result<u64, String>>,
    received: Arc<AtomicU64>,
    pub_stop: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
}

impl SeqPart {
    /// Checkers and callee first, then the publishers, released together.
    fn start(cfg: &ClientConfig, p: &SeqParams) -> Result<SeqPart> {
        if p.publishers == 0 || p.subscribers == 0 {
            bail!("--seq-publishers and --seq-subscribers must be at least 1");
        }
        let received = Arc::new(AtomicU64::new(0));
        let (pub_stop, stop) = (Arc::new(AtomicBool::new(false)), Arc::new(AtomicBool::new(false)));
        let (tx, rx) = mpsc::channel();
        let callee = {
            let (cfg, tx, stop) = (cfg.clone(), tx.clone(), stop.clone());
            thread::Builder::new().name("seq-callee".into()).spawn(move || echo_callee(&cfg, tx, stop))?
        };
        let mut subs = Vec::new();
        for s in 0..p.subscribers {
            let (cfg, tx, received, stop, np) = (cfg.clone(), tx.clone(), received.clone(), stop.clone(), p.publishers);
            subs.push(
                thread::Builder::new()
                    .name(format!("seq-sub{s}"))
                    .spawn(move || seq_subscriber(&cfg, s, np, tx, received, stop))?,
            );
        }
        let timeout = cfg.timeout + Duration::from_millis(100 * (p.subscribers + p.publishers + 1) as u64);
        let ready = crate::common::collect_ready(rx, p.subscribers + 1, timeout, "sequence part");
        let start = Arc::new(Barrier::new(p.publishers + 1));
        let (tx, rx) = mpsc::channel();
        let mut pubs = Vec::new();
        let mut part = SeqPart { pubs: Vec::new(), subs, callee, received, pub_stop: pub_stop.clone(), stop };
        if let Err(e) = ready {
            part.stop.store(true, Ordering::Relaxed);
            return Err(e);
        }
        for i in 0..p.publishers {
            let (cfg, tx, start, pub_stop, rate) = (cfg.clone(), tx.clone(), start.clone(), pub_stop.clone(), p.rate);
            pubs.push(
                thread::Builder::new()
                    .name(format!("seq-pub{i}"))
                    .spawn(move || seq_publisher(&cfg, i, rate, tx, start, pub_stop))?,
            );
        }
        drop(tx);
        let ready = crate::common::collect_ready(rx, p.publishers, timeout, "sequence part");
        // Publishers whose setup failed still wait at the barrier.
        start.wait();
        part.pubs = pubs;
        if let Err(e) = ready {
            part.pub_stop.store(true, Ordering::Relaxed);
            part.stop.store(true, Ordering::Relaxed);
            return Err(e);
        }
        Ok(part)
    }

    /// Stops publishing, drains (up to 10 s, or 2 s without progress) and checks.
    fn finish(self, mut out: SeqResult) -> Result<SeqResult> {
        self.pub_stop.store(true, Ordering::Relaxed);
        let mut published = Vec::new();
        for h in self.pubs {
            let (sent, acked, errors, first) = h.join().map_err(|_| anyhow!("sequence publisher panicked"))?;
            published.push(sent);
            out.published += sent;
            out.acked += acked;
            out.errors += errors;
            if let Some(e) = first {
                out.first_error.get_or_insert(e);
            }
        }
        let n_subs = self.subs.len() as u64;
        out.expected = out.published * n_subs;
        let deadline = Instant::now() + Duration::from_secs(10);
        let (mut last, mut since) = (self.received.load(Ordering::Relaxed), Instant::now());
        while Instant::now() < deadline {
            let got = self.received.load(Ordering::Relaxed);
            if got >= out.expected {
                break;
            }
            if got != last {
                (last, since) = (got, Instant::now());
            } else if since.elapsed() > Duration::from_secs(2) {
                break;
            }
            thread::sleep(Duration::from_millis(20));
        }
        self.stop.store(true, Ordering::Relaxed);
        for h in self.subs {
            match h.join().map_err(|_| anyhow!("sequence checker panicked"))? {
                Ok(check) => {
                    out.received += check.received;
                    out.duplicated += check.duplicated;
                    out.reordered += check.reordered;
                    out.lost += published.iter().sum::<u64>() - check.distinct_below(&published);
                }
                Err(e) => {
                    out.lost += published.iter().sum::<u64>();
                    out.error(e);
                }
            }
        }
        if let Err(e) = self.callee.join().map_err(|_| anyhow!("echo callee panicked"))? {
            out.error(e);
        }
        Ok(out)
    }
}

/// Runs the scenario.
pub fn run(cfg: &ClientConfig, p: &MixedParams, quiet: bool) -> Result<MixedResult> {
    if !(p.connect_rate.is_finite() && p.connect_rate >= 0.0) {
        return Err(anyhow!("--connect-rate must be a non-negative number"));
    }
    let seq_on = p.seq.rate > 0;
    if seq_on && p.connect_rate <= 0.0 {
        return Err(anyhow!("--seq-rate needs --connect-rate (the churned sessions)"));
    }
    let seq = if seq_on { Some(SeqPart::start(cfg, &p.seq).map_err(|e| e.context("sequence part"))?) } else { None };
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
        let (cfg, rate, stop, sp) = (cfg.clone(), p.connect_rate, stop.clone(), p.seq.clone());
        let (warmup, duration) = (p.pubsub.warmup, p.pubsub.duration);
        Some(thread::Builder::new().name("mixed-connect".into()).spawn(move || {
            if seq_on {
                let mut out = SeqResult::default();
                let mut t = trickle_with(&cfg, rate, warmup, duration, &stop, Some((&sp, &mut out)));
                t.seq = Some(out);
                t
            } else {
                trickle(&cfg, rate, warmup, duration, &stop)
            }
        })?)
    } else {
        None
    };
    let ps = ps.join().map_err(|_| anyhow!("pubsub part panicked"));
    let rp = rp.join().map_err(|_| anyhow!("rpc part panicked"));
    // If a part failed early the trickle must not outlive the run.
    stop.store(true, Ordering::Relaxed);
    let mut trickle = match tr {
        Some(h) => Some(h.join().map_err(|_| anyhow!("connect part panicked"))?),
        None => None,
    };
    if let Some(part) = seq {
        let churn = trickle.as_mut().and_then(|t| t.seq.take()).unwrap_or_default();
        let r = part.finish(churn)?;
        if !quiet {
            eprintln!(
                "sequence check: {} published, {} deliveries expected, {} received, {} lost, {} duplicated, \
                 {} reordered; churned sessions: {} events checked, {} gaps, {} repeats, {}/{} echo calls ok, \
                 {} GOODBYE, {} dropped; {} errors{}",
                r.published,
                r.expected,
                r.received,
                r.lost,
                r.duplicated,
                r.reordered,
                r.churn_events,
                r.churn_lost,
                r.churn_duplicated,
                r.calls_ok,
                r.calls,
                r.goodbyes,
                r.drops,
                r.errors,
                r.first_error.as_ref().map(|e| format!(" (first: {e})")).unwrap_or_default()
            );
        }
        if let Some(t) = trickle.as_mut() {
            t.seq = Some(r);
        }
    }
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
        "seq": (p.seq.rate > 0).then(|| json!({
            "rate_per_publisher": p.seq.rate, "publishers": p.seq.publishers, "subscribers": p.seq.subscribers,
            "drop_every": p.seq.drop_every, "churn_hold_ms": p.seq.hold_ms,
        })),
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
        "seq": t.seq.as_ref().map(seq_json),
    })
}

/// JSON of the sequence part (`errors` = all its failures).
pub fn seq_json(r: &SeqResult) -> serde_json::Value {
    json!({
        "published": r.published, "acked": r.acked, "expected": r.expected, "received": r.received,
        "lost": r.lost, "duplicated": r.duplicated, "reordered": r.reordered,
        "churn_events_checked": r.churn_events, "churn_lost": r.churn_lost, "churn_duplicated": r.churn_duplicated,
        "calls": r.calls, "calls_ok": r.calls_ok, "goodbyes": r.goodbyes, "drops": r.drops,
        "errors": r.failures(), "first_error": r.first_error,
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

    #[test]
    fn seq_check_counts_duplicates_reorders_and_losses() {
        let mut c = SeqCheck::new(2);
        for s in [0, 1, 2, 2, 4, 3, 70] {
            assert!(c.record(0, s));
        }
        assert!(c.record(1, 0));
        assert!(!c.record(2, 0), "unknown publisher");
        assert_eq!((c.received, c.duplicated, c.reordered), (8, 1, 1));
        // Publisher 0 sent 0..=70 (71), publisher 1 sent 0..=1 (2): seen 6 + 1.
        assert_eq!(c.distinct_below(&[71, 2]), 7);
        let r = SeqResult { lost: 2, duplicated: 1, calls: 3, calls_ok: 2, ..SeqResult::default() };
        assert_eq!(r.failures(), 4);
        assert_eq!(seq_json(&r)["errors"], 4);
    }

    #[test]
    fn seq_payload_roundtrip() {
        assert_eq!(uints(&values(&[3, 9])), Some(vec![3, 9]));
        let mut b = Vec::new();
        wamp_proto::payload::encode_value(
            wamp_proto::PayloadFormat::Cbor,
            &Value::List(vec![Value::UInt(1), Value::UInt(2)]),
            &mut b,
        )
        .unwrap();
        let raw = Payload::Raw { format: wamp_proto::PayloadFormat::Cbor, args: Some(b.into()), kwargs: None };
        assert_eq!(uints(&raw), Some(vec![1, 2]));
    }
}
