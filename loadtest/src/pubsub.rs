//! The `pubsub` scenario: P publishers, S subscribers, T topics; publish →
//! event latency and delivery accounting.
//!
//! Subscriber `s` subscribes to topic `s % T`; publisher `p` cycles over all
//! topics starting at `p % T`. Every event carries the publisher's send
//! timestamp; only messages *sent* inside the measurement window (after the
//! warmup) count, and each of them is expected once per subscriber of its
//! topic, so `lost = expected − received`.
//!
//! With `--rate`, publishers run open-loop on a fixed schedule and stamp each
//! message with its scheduled send time (no coordinated omission).
//!
//! Flow control when unthrottled: every `ack_every`-th PUBLISH asks for
//! acknowledgement, and a publisher never has more than `window` such
//! acknowledgements outstanding, so at most `ack_every × window` messages
//! are in flight between the publisher and the router. For large payloads
//! `ack_every` is lowered so that those messages stay under
//! `max_inflight_bytes` ([`effective_ack_every`]): routers may (rightly)
//! disconnect a subscriber whose outgoing queue grows past a byte limit.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use serde_json::json;
use wamp_proto::{Dict, Message, RequestId, Value};

use crate::common::{report_ready, seed, spawn_progress, timestamp_of, ClientConfig, Clock, PayloadBuilder, Window};
use crate::conn::ConnError;
use crate::stats::{self, Counters, LatencySummary};

/// Parameters of the pubsub scenario.
#[derive(Clone, Debug)]
pub struct PubSubParams {
    /// Number of publisher sessions.
    pub publishers: usize,
    /// Number of subscriber sessions.
    pub subscribers: usize,
    /// Number of topics.
    pub topics: usize,
    /// Padding bytes per event.
    pub payload_size: usize,
    /// Messages per second per publisher (0: as fast as possible).
    pub rate: u64,
    /// Measured seconds.
    pub duration: f64,
    /// Unmeasured seconds before.
    pub warmup: f64,
    /// Ask for acknowledgement on every N-th publish.
    pub ack_every: u64,
    /// Most outstanding acknowledgements per publisher.
    pub window: u64,
    /// Most PUBLISH messages per write.
    pub batch: usize,
    /// Bound on payload bytes in flight per publisher (lowers `ack_every`).
    pub max_inflight_bytes: usize,
}

/// `ack_every`, lowered (to at least 1) so that `ack_every × window`
/// messages of `payload_size` bytes stay within `max_inflight_bytes`.
pub fn effective_ack_every(p: &PubSubParams) -> u64 {
    let per_msg = p.payload_size.max(64) as u64;
    let by_bytes = p.max_inflight_bytes as u64 / (per_msg * p.window.max(1));
    p.ack_every.min(by_bytes).max(1)
}

/// The outcome of one pubsub run.
#[derive(Clone, Debug)]
pub struct PubSubResult {
    /// PUBLISH messages sent inside the window.
    pub sent: u64,
    /// Deliveries expected for them.
    pub expected: u64,
    /// Deliveries received for them.
    pub delivered: u64,
    /// Events received in total (including warmup).
    pub received_total: u64,
    /// ERROR messages and failed clients.
    pub errors: u64,
    /// Publish → event latency.
    pub latency: LatencySummary,
    /// Measured seconds.
    pub duration_s: f64,
}

impl PubSubResult {
    /// Deliveries lost.
    pub fn lost(&self) -> u64 {
        self.expected.saturating_sub(self.delivered)
    }
    /// Events delivered per second.
    pub fn throughput(&self) -> f64 {
        self.delivered as f64 / self.duration_s
    }
    /// Publishes per second.
    pub fn publish_rate(&self) -> f64 {
        self.sent as f64 / self.duration_s
    }
}

/// Topic URI of topic `i`.
pub fn topic_uri(i: usize) -> String {
    format!("loadtest.topic.{i}")
}

/// Number of subscribers on each topic.
pub fn subscribers_per_topic(subscribers: usize, topics: usize) -> Vec<u64> {
    let mut v = vec![0u64; topics];
    for s in 0..subscribers {
        v[s % topics] += 1;
    }
    v
}

/// Deliveries expected for `sent_per_topic` publications.
pub fn expected_deliveries(sent_per_topic: &[u64], subs_per_topic: &[u64]) -> u64 {
    sent_per_topic.iter().zip(subs_per_topic).map(|(s, n)| s * n).sum()
}

struct SubOutcome {
    hist: Histogram<u64>,
    errors: u64,
}

struct PubOutcome {
    sent_per_topic: Vec<u64>,
    errors: u64,
}

#[allow(clippy::too_many_arguments)]
fn subscriber(
    cfg: &ClientConfig,
    index: usize,
    topic: String,
    ready: mpsc::Sender<Result<(), String>>,
    clock: Clock,
    window: Arc<Window>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
) -> SubOutcome {
    let mut out = SubOutcome { hist: stats::new_histogram(), errors: 0 };
    let setup = crate::common::connect_subscribed(cfg, seed(1, index), &topic, Duration::from_millis(100));
    let Some(mut c) = report_ready(ready, setup, format_args!("subscriber {index}")) else {
        out.errors += 1;
        return out;
    };
    let (mut recv, mut in_win) = (0u64, 0u64);
    while !stop.load(Ordering::Relaxed) {
        match c.recv() {
            Ok(Some(Message::Event { payload, .. })) => {
                let now = clock.now_ns();
                recv += 1;
                if let Some(ts) = timestamp_of(&payload) {
                    if window.contains(ts) {
                        in_win += 1;
                        stats::record(&mut out.hist, now.saturating_sub(ts));
                    }
                } else {
                    out.errors += 1;
                }
                // Publish counters in chunks to keep cache-line traffic low.
                if recv >= 256 {
                    Counters::add(&counters.received, recv);
                    Counters::add(&counters.received_in_window, in_win);
                    (recv, in_win) = (0, 0);
                }
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                Counters::add(&counters.received, recv);
                Counters::add(&counters.received_in_window, in_win);
                (recv, in_win) = (0, 0);
            }
            Err(e) => {
                eprintln!("subscriber {index}: {e}");
                out.errors += 1;
                break;
            }
        }
    }
    Counters::add(&counters.received, recv);
    Counters::add(&counters.received_in_window, in_win);
    c.goodbye();
    out
}

#[allow(clippy::too_many_arguments)]
fn publisher(
    cfg: &ClientConfig,
    p: &PubSubParams,
    index: usize,
    ready: mpsc::Sender<Result<(), String>>,
    start: Arc<Barrier>,
    clock: Clock,
    window: Arc<Window>,
    counters: Arc<Counters>,
) -> PubOutcome {
    let mut out = PubOutcome { sent_per_topic: vec![0; p.topics], errors: 0 };
    let conn = cfg.connect(seed(2, index)).map(|(c, _)| c);
    let Some(mut c) = report_ready(ready, conn, format_args!("publisher {index}")) else {
        out.errors += 1;
        start.wait();
        return out;
    };
    start.wait();
    let topics: Vec<String> = (0..p.topics).map(topic_uri).collect();
    let builder = PayloadBuilder::new(cfg.serializer, p.payload_size);
    let mut ack_opts = Dict::new();
    ack_opts.insert("acknowledge".into(), Value::Bool(true));
    let no_opts = Dict::new();
    let ack_every = effective_ack_every(p);
    let (mut acks_sent, mut acks_recv) = (0u64, 0u64);
    let mut seq = 0u64;
    let mut topic_i = index % p.topics;
    let interval_ns = if p.rate > 0 { 1_000_000_000 / p.rate.max(1) } else { 0 };
    let first_due = clock.now_ns();
    let end = window.end();
    let result = (|| -> Result<(), ConnError> {
        loop {
            // Handle acknowledgements already received, then wait while the window is full.
            loop {
                while let Some(m) = c.poll_message()? {
                    match m {
                        Message::Published { .. } => acks_recv += 1,
                        Message::Error { .. } => {
                            acks_recv += 1;
                            out.errors += 1;
                            Counters::add(&counters.errors, 1);
                        }
                        _ => {}
                    }
                }
                if acks_sent.saturating_sub(acks_recv) < p.window {
                    break;
                }
                c.flush()?;
                if !c.fill()? {
                    return Err(ConnError::Timeout("PUBLISHED acknowledgements"));
                }
            }
            let mut now = clock.now_ns();
            if now >= end {
                return Ok(());
            }
            let n = if interval_ns > 0 {
                let due = first_due + seq * interval_ns;
                if now < due {
                    thread::sleep(Duration::from_nanos((due - now).min(end - now)));
                    continue;
                }
                // All messages due by now (catch up after a stall), capped per write.
                (((now - due) / interval_ns) as usize + 1).min(p.batch)
            } else {
                p.batch
            };
            for _ in 0..n {
                if interval_ns > 0 {
                    // Open loop: stamp the *intended* send time, so a late
                    // sender (or a stalled router) shows up as latency
                    // instead of being hidden (coordinated omission).
                    now = first_due + seq * interval_ns;
                }
                seq += 1;
                #[allow(clippy::manual_is_multiple_of)] // MSRV 1.85
                let ack = seq % ack_every == 0;
                let options = if ack { ack_opts.clone() } else { no_opts.clone() };
                let msg = Message::Publish {
                    request: RequestId::from_valid(seq & ((1 << 53) - 1)),
                    options,
                    topic: topics[topic_i].clone(),
                    payload: builder.build(now),
                };
                c.push(&msg)?;
                if ack {
                    acks_sent += 1;
                }
                if window.contains(now) {
                    out.sent_per_topic[topic_i] += 1;
                }
                topic_i = (topic_i + 1) % p.topics;
                now = clock.now_ns();
            }
            c.flush()?;
            Counters::add(&counters.sent, n as u64);
        }
    })();
    if let Err(e) = result {
        eprintln!("publisher {index}: {e}");
        out.errors += 1;
        Counters::add(&counters.errors, 1);
    }
    c.goodbye();
    out
}

/// Runs the scenario with every session on `cfg`'s router.
pub fn run(cfg: &ClientConfig, p: &PubSubParams, quiet: bool) -> Result<PubSubResult> {
    run_split(cfg, &[], p, quiet)
}

/// The configuration subscriber `s` connects with: `sub_cfgs[s % n]`, or
/// `cfg` when `sub_cfgs` is empty.
pub fn subscriber_config<'a>(cfg: &'a ClientConfig, sub_cfgs: &'a [ClientConfig], s: usize) -> &'a ClientConfig {
    if sub_cfgs.is_empty() {
        cfg
    } else {
        &sub_cfgs[s % sub_cfgs.len()]
    }
}

/// Runs the scenario with publishers on `cfg` and subscribers spread
/// round-robin over `sub_cfgs` (subscriber `s` on `sub_cfgs[s % n]`), e.g.
/// the members of a router cluster; an empty `sub_cfgs` means `cfg` for
/// everyone, as [`run`].
pub fn run_split(cfg: &ClientConfig, sub_cfgs: &[ClientConfig], p: &PubSubParams, quiet: bool) -> Result<PubSubResult> {
    if p.publishers == 0 || p.topics == 0 || p.ack_every == 0 || p.window == 0 || p.batch == 0 {
        bail!("publishers, topics, ack-every, window and batch must be at least 1");
    }
    let clock = Clock::new();
    let window = Arc::new(Window::default());
    let counters = Arc::new(Counters::default());
    let stop = Arc::new(AtomicBool::new(false));
    let setup_timeout = cfg.timeout + Duration::from_millis(100 * (p.subscribers + p.publishers) as u64);

    // Subscribers first, all subscribed before anyone publishes.
    let (tx, rx) = mpsc::channel();
    let mut subs = Vec::with_capacity(p.subscribers);
    for s in 0..p.subscribers {
        let (cfg, tx, window, counters, stop) =
            (subscriber_config(cfg, sub_cfgs, s).clone(), tx.clone(), window.clone(), counters.clone(), stop.clone());
        let topic = topic_uri(s % p.topics);
        subs.push(
            thread::Builder::new()
                .name(format!("sub{s}"))
                .stack_size(256 << 10)
                .spawn(move || subscriber(&cfg, s, topic, tx, clock, window, counters, stop))
                .context("spawning subscriber")?,
        );
    }
    drop(tx);
    let sub_ready = crate::common::collect_ready(rx, p.subscribers, setup_timeout, "clients");

    let (tx, rx) = mpsc::channel();
    let start = Arc::new(Barrier::new(p.publishers + 1));
    let mut pubs = Vec::with_capacity(p.publishers);
    if sub_ready.is_ok() {
        for i in 0..p.publishers {
            let (cfg, p2, tx, start, window, counters) =
                (cfg.clone(), p.clone(), tx.clone(), start.clone(), window.clone(), counters.clone());
            pubs.push(
                thread::Builder::new()
                    .name(format!("pub{i}"))
                    .stack_size(256 << 10)
                    .spawn(move || publisher(&cfg, &p2, i, tx, start, clock, window, counters))
                    .context("spawning publisher")?,
            );
        }
    }
    drop(tx);
    let pub_ready = if sub_ready.is_ok() {
        crate::common::collect_ready(rx, p.publishers, setup_timeout, "clients")
    } else {
        Ok(())
    };

    // Fix the window and release the publishers.
    let t0 = clock.now_ns();
    let win_start = t0 + (p.warmup * 1e9) as u64;
    let win_end = win_start + (p.duration * 1e9) as u64;
    window.set(win_start, win_end);
    crate::procstat::window_fixed(Duration::from_secs_f64(p.warmup), Duration::from_secs_f64(p.duration));
    let failed = sub_ready.as_ref().err().or(pub_ready.as_ref().err()).map(|e| e.to_string());
    if failed.is_some() {
        // Publishers that did connect must not run: an already-passed window.
        window.set(0, 0);
    }
    let progress_stop = Arc::new(AtomicBool::new(false));
    let progress = spawn_progress("pubsub", counters.clone(), progress_stop.clone(), quiet);
    if sub_ready.is_ok() {
        start.wait();
    }

    let mut sent_per_topic = vec![0u64; p.topics];
    let mut errors = 0u64;
    for h in pubs {
        let o = h.join().map_err(|_| anyhow!("publisher thread panicked"))?;
        for (a, b) in sent_per_topic.iter_mut().zip(&o.sent_per_topic) {
            *a += b;
        }
        errors += o.errors;
    }
    let subs_per_topic = subscribers_per_topic(p.subscribers, p.topics);
    let expected = expected_deliveries(&sent_per_topic, &subs_per_topic);
    // Drain: wait for outstanding deliveries, up to 10 s or 2 s without progress.
    let drain_deadline = Instant::now() + Duration::from_secs(10);
    let (mut last, mut last_change) = (Counters::get(&counters.received_in_window), Instant::now());
    while failed.is_none() && Instant::now() < drain_deadline {
        let got = Counters::get(&counters.received_in_window);
        if got >= expected {
            break;
        }
        if got != last {
            (last, last_change) = (got, Instant::now());
        } else if last_change.elapsed() > Duration::from_secs(2) {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    stop.store(true, Ordering::Relaxed);
    let mut hist = stats::new_histogram();
    for h in subs {
        let o = h.join().map_err(|_| anyhow!("subscriber thread panicked"))?;
        let _ = hist.add(&o.hist);
        errors += o.errors;
    }
    progress_stop.store(true, Ordering::Relaxed);
    let _ = progress.join();
    if let Some(e) = failed {
        bail!("setup failed: {e}");
    }
    Ok(PubSubResult {
        sent: sent_per_topic.iter().sum(),
        expected,
        delivered: Counters::get(&counters.received_in_window),
        received_total: Counters::get(&counters.received),
        errors,
        latency: LatencySummary::from_histogram(&hist),
        duration_s: p.duration,
    })
}

/// JSON description of the parameters.
pub fn params_json(p: &PubSubParams) -> serde_json::Value {
    json!({
        "publishers": p.publishers, "subscribers": p.subscribers, "topics": p.topics,
        "payload_size": p.payload_size, "rate_per_publisher": p.rate, "duration_s": p.duration,
        "warmup_s": p.warmup, "ack_every": p.ack_every, "ack_every_effective": effective_ack_every(p), "ack_window": p.window,
        "batch": p.batch, "max_inflight_bytes": p.max_inflight_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_deliveries_follow_topic_assignment() {
        // 5 subscribers on 2 topics: topic 0 has subs 0,2,4; topic 1 has 1,3.
        let spt = subscribers_per_topic(5, 2);
        assert_eq!(spt, vec![3, 2]);
        assert_eq!(expected_deliveries(&[10, 7], &spt), 44);
        // More topics than subscribers: some topics have nobody.
        assert_eq!(subscribers_per_topic(1, 3), vec![1, 0, 0]);
        assert_eq!(expected_deliveries(&[5, 5, 5], &[1, 0, 0]), 5);
    }

    #[test]
    fn ack_every_shrinks_for_large_payloads() {
        let p = PubSubParams {
            publishers: 1,
            subscribers: 1,
            topics: 1,
            payload_size: 64,
            rate: 0,
            duration: 1.0,
            warmup: 0.0,
            ack_every: 32,
            window: 8,
            batch: 32,
            max_inflight_bytes: 1 << 20,
        };
        assert_eq!(effective_ack_every(&p), 32);
        // 70 kB × 8 acks: 1 MiB allows 1 message per ack.
        assert_eq!(effective_ack_every(&PubSubParams { payload_size: 70_000, ..p.clone() }), 1);
        // 8 kB: 1 MiB / (8 kB × 8) = 16.
        assert_eq!(effective_ack_every(&PubSubParams { payload_size: 8192, ..p.clone() }), 16);
        // Never below 1, even for payloads larger than the bound.
        assert_eq!(effective_ack_every(&PubSubParams { payload_size: 10 << 20, ..p }), 1);
    }

    #[test]
    fn result_arithmetic() {
        let r = PubSubResult {
            sent: 100,
            expected: 300,
            delivered: 290,
            received_total: 350,
            errors: 0,
            latency: LatencySummary::default(),
            duration_s: 2.0,
        };
        assert_eq!(r.lost(), 10);
        assert_eq!(r.throughput(), 145.0);
        assert_eq!(r.publish_rate(), 50.0);
        let over = PubSubResult { delivered: 400, ..r };
        assert_eq!(over.lost(), 0);
    }
}
