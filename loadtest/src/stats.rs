//! Latency histograms and their summary, and shared live counters.

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use serde_json::{json, Value as Json};

/// Highest latency we track: 60 s in nanoseconds (larger values are clamped).
pub const MAX_LATENCY_NS: u64 = 60_000_000_000;

/// A latency histogram in nanoseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // Bounds are constants known valid: 1 ns .. 60 s, 3 digits.
    Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3).unwrap_or_else(|_| unreachable!("valid histogram bounds"))
}

/// Records one latency (ns), clamped into the histogram's range.
pub fn record(h: &mut Histogram<u64>, ns: u64) {
    let _ = h.record(ns.clamp(1, MAX_LATENCY_NS));
}

/// Percentile summary of a latency histogram, in microseconds.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LatencySummary {
    /// Number of samples.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Maximum.
    pub max_us: f64,
}

impl LatencySummary {
    /// Summarizes a nanosecond histogram.
    pub fn from_histogram(h: &Histogram<u64>) -> LatencySummary {
        if h.is_empty() {
            return LatencySummary::default();
        }
        let us = |ns: u64| ns as f64 / 1000.0;
        LatencySummary {
            count: h.len(),
            mean_us: h.mean() / 1000.0,
            p50_us: us(h.value_at_quantile(0.50)),
            p90_us: us(h.value_at_quantile(0.90)),
            p99_us: us(h.value_at_quantile(0.99)),
            p999_us: us(h.value_at_quantile(0.999)),
            max_us: us(h.max()),
        }
    }

    /// As a JSON object.
    pub fn to_json(&self) -> Json {
        json!({
            "count": self.count,
            "mean_us": round2(self.mean_us),
            "p50_us": round2(self.p50_us),
            "p90_us": round2(self.p90_us),
            "p99_us": round2(self.p99_us),
            "p99_9_us": round2(self.p999_us),
            "max_us": round2(self.max_us),
        })
    }
}

/// Rounds to two decimals (for readable JSON).
pub fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Counters shared by all worker threads, read by the progress printer.
#[derive(Debug, Default)]
pub struct Counters {
    /// Messages (PUBLISH/CALL) sent, all phases.
    pub sent: AtomicU64,
    /// Deliveries (EVENT/RESULT) received, all phases.
    pub received: AtomicU64,
    /// Deliveries of messages sent inside the measurement window.
    pub received_in_window: AtomicU64,
    /// ERROR messages and failed sessions.
    pub errors: AtomicU64,
}

impl Counters {
    /// Adds `n` to a counter.
    pub fn add(c: &AtomicU64, n: u64) {
        if n != 0 {
            c.fetch_add(n, Ordering::Relaxed);
        }
    }
    /// Reads a counter.
    pub fn get(c: &AtomicU64) -> u64 {
        c.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_uniform_samples() {
        let mut h = new_histogram();
        // 1..=10000 µs, one sample each.
        for us in 1..=10_000u64 {
            record(&mut h, us * 1000);
        }
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 10_000);
        // 3 significant digits: within 0.1 %.
        let close = |got: f64, want: f64| (got - want).abs() <= want * 0.001 + 0.001;
        assert!(close(s.p50_us, 5000.0), "p50 {}", s.p50_us);
        assert!(close(s.p90_us, 9000.0), "p90 {}", s.p90_us);
        assert!(close(s.p99_us, 9900.0), "p99 {}", s.p99_us);
        assert!(close(s.p999_us, 9990.0), "p99.9 {}", s.p999_us);
        assert!(close(s.max_us, 10_000.0), "max {}", s.max_us);
        assert!(close(s.mean_us, 5000.5), "mean {}", s.mean_us);
        let j = s.to_json();
        assert_eq!(j["count"], 10_000);
        assert!(j["p99_us"].as_f64().unwrap() > 9800.0);
    }

    #[test]
    fn empty_and_out_of_range() {
        let h = new_histogram();
        assert_eq!(LatencySummary::from_histogram(&h), LatencySummary::default());
        let mut h = new_histogram();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        let s = LatencySummary::from_histogram(&h);
        assert_eq!(s.count, 2);
        assert!(s.max_us >= 59_000_000.0);
    }

    #[test]
    fn merged_histograms_add_up() {
        let mut a = new_histogram();
        let mut b = new_histogram();
        for i in 0..100 {
            record(&mut a, 1_000 + i);
            record(&mut b, 1_000_000 + i);
        }
        a.add(&b).unwrap();
        let s = LatencySummary::from_histogram(&a);
        assert_eq!(s.count, 200);
        assert!(s.p50_us < 2.0);
        assert!(s.p90_us > 999.0);
    }
}
