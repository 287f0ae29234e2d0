//! [`FailureLimiter`]: a bounded per-peer budget of failed authentications.
//!
//! Each peer address has a budget of `max_failures` failures per `window`,
//! refilled continuously (a token bucket: one failure "drains" one token,
//! tokens come back at `max_failures / window`). While the bucket is empty,
//! [`FailureLimiter::check`] refuses new attempts with the time until one
//! token is back. At most `max_peers` addresses are tracked; beyond that the
//! least recently failed one is forgotten, so memory stays bounded whatever
//! peers do. Sans-IO: the caller passes `now`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// Settings of a [`FailureLimiter`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimiterConfig {
    /// Failures allowed per window (at least 1).
    pub max_failures: u32,
    /// The window (non-zero).
    pub window: Duration,
    /// Most peers tracked (at least 1).
    pub max_peers: usize,
}

impl Default for LimiterConfig {
    fn default() -> Self {
        LimiterConfig { max_failures: 10, window: Duration::from_secs(60), max_peers: 65_536 }
    }
}

impl From<&junction_config::AuthOptions> for LimiterConfig {
    fn from(o: &junction_config::AuthOptions) -> Self {
        LimiterConfig { max_failures: o.max_failures, window: o.failure_window, max_peers: o.max_tracked_peers }
    }
}

/// The peer must wait this long before trying again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Time until the next attempt is allowed.
    pub after: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    /// Failures "in the bucket" at `at` (0..=max, fractional).
    level: f64,
    at: Instant,
    /// Key into `order`.
    seq: u64,
}

/// Per-peer failure budget; see the module docs.
#[derive(Debug)]
pub struct FailureLimiter {
    cfg: LimiterConfig,
    peers: HashMap<String, Bucket>,
    /// seq → peer, oldest first (for eviction).
    order: BTreeMap<u64, String>,
    next_seq: u64,
}

impl FailureLimiter {
    /// A limiter with `cfg` (zero values are raised to 1 / 1 ms).
    pub fn new(mut cfg: LimiterConfig) -> Self {
        cfg.max_failures = cfg.max_failures.max(1);
        cfg.max_peers = cfg.max_peers.max(1);
        if cfg.window.is_zero() {
            cfg.window = Duration::from_millis(1);
        }
        FailureLimiter { cfg, peers: HashMap::new(), order: BTreeMap::new(), next_seq: 0 }
    }

    fn level_at(&self, b: &Bucket, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(b.at).as_secs_f64();
        let rate = self.cfg.max_failures as f64 / self.cfg.window.as_secs_f64();
        (b.level - elapsed * rate).max(0.0)
    }

    /// May `peer` attempt to authenticate now?
    pub fn check(&self, peer: &str, now: Instant) -> Result<(), Retry> {
        let Some(b) = self.peers.get(peer) else { return Ok(()) };
        let level = self.level_at(b, now);
        let max = self.cfg.max_failures as f64;
        if level <= max - 1.0 {
            return Ok(());
        }
        let rate = max / self.cfg.window.as_secs_f64();
        let wait = (level - (max - 1.0)) / rate;
        Err(Retry { after: Duration::from_secs_f64(wait.max(0.001)) })
    }

    /// Records one failed authentication of `peer`.
    pub fn record_failure(&mut self, peer: &str, now: Instant) {
        let max = self.cfg.max_failures as f64;
        let seq = self.next_seq;
        self.next_seq += 1;
        if let Some(b) = self.peers.get(peer).copied() {
            let level = (self.level_at(&b, now) + 1.0).min(max);
            self.order.remove(&b.seq);
            self.order.insert(seq, peer.to_owned());
            self.peers.insert(peer.to_owned(), Bucket { level, at: now, seq });
            return;
        }
        while self.peers.len() >= self.cfg.max_peers {
            let Some((_, oldest)) = self.order.pop_first() else { break };
            self.peers.remove(&oldest);
        }
        self.order.insert(seq, peer.to_owned());
        self.peers.insert(peer.to_owned(), Bucket { level: 1.0, at: now, seq });
    }

    /// Forgets `peer` (e.g. after a successful authentication, if desired).
    pub fn forget(&mut self, peer: &str) {
        if let Some(b) = self.peers.remove(peer) {
            self.order.remove(&b.seq);
        }
    }

    /// Peers currently tracked.
    pub fn tracked(&self) -> usize {
        self.peers.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lim(max: u32, secs: u64, peers: usize) -> FailureLimiter {
        FailureLimiter::new(LimiterConfig { max_failures: max, window: Duration::from_secs(secs), max_peers: peers })
    }

    #[test]
    fn budget_then_refill() {
        let t0 = Instant::now();
        let mut l = lim(3, 60, 10);
        for _ in 0..3 {
            assert_eq!(l.check("a", t0), Ok(()));
            l.record_failure("a", t0);
        }
        let r = l.check("a", t0).expect_err("over budget");
        assert!(r.after > Duration::from_secs(19) && r.after <= Duration::from_secs(20), "{r:?}");
        // Other peers are unaffected.
        assert_eq!(l.check("b", t0), Ok(()));
        // One token comes back after window / max.
        assert!(l.check("a", t0 + Duration::from_secs(19)).is_err());
        assert_eq!(l.check("a", t0 + Duration::from_secs(20)), Ok(()));
        l.record_failure("a", t0 + Duration::from_secs(20));
        assert!(l.check("a", t0 + Duration::from_secs(21)).is_err());
        // A full window later everything is forgotten.
        assert_eq!(l.check("a", t0 + Duration::from_secs(100)), Ok(()));
    }

    #[test]
    fn bounded_memory_evicts_oldest() {
        let t0 = Instant::now();
        let mut l = lim(1, 60, 2);
        l.record_failure("a", t0);
        l.record_failure("b", t0);
        l.record_failure("a", t0); // refreshes a
        l.record_failure("c", t0); // evicts b
        assert_eq!(l.tracked(), 2);
        assert!(l.check("a", t0).is_err());
        assert!(l.check("c", t0).is_err());
        assert_eq!(l.check("b", t0), Ok(()));
        for i in 0..1000 {
            l.record_failure(&format!("p{i}"), t0);
        }
        assert_eq!(l.tracked(), 2);
        l.forget("p999");
        assert_eq!(l.tracked(), 1);
        assert_eq!(l.check("p999", t0), Ok(()));
    }
}
