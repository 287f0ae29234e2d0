//! The `metrics` service's exposition text: Prometheus/OpenMetrics text
//! format, built per scrape from the counters the runtime keeps.
//!
//! The runtime's counters are plain atomics; [`Exposition`] copies their
//! current values into a fresh `prometheus-client` registry and encodes it,
//! so the format (escaping, `_total` suffixes, `# TYPE`/`# HELP` lines,
//! `# EOF`) is the crate's, not ours.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

/// Label pairs of one sample.
pub type Labels = Vec<(String, String)>;

/// One scrape's metrics, every name prefixed with `junction_`.
pub struct Exposition {
    registry: Registry,
}

impl Default for Exposition {
    fn default() -> Self {
        Self::new()
    }
}

impl Exposition {
    /// An empty exposition.
    pub fn new() -> Exposition {
        Exposition { registry: Registry::with_prefix("junction") }
    }

    /// A monotonic counter (exposed as `junction_<name>_total`).
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        let c: Counter<u64> = Counter::default();
        c.inc_by(value);
        self.registry.register(name, help, c);
    }

    /// A gauge (`junction_<name>`).
    pub fn gauge(&mut self, name: &str, help: &str, value: i64) {
        let g: Gauge = Gauge::default();
        g.set(value);
        self.registry.register(name, help, g);
    }

    /// A gauge with one sample per label set.
    pub fn gauge_family(&mut self, name: &str, help: &str, samples: Vec<(Labels, i64)>) {
        let f: Family<Labels, Gauge> = Family::default();
        for (labels, v) in samples {
            f.get_or_create(&labels).set(v);
        }
        self.registry.register(name, help, f);
    }

    /// A monotonic counter with one sample per label set
    /// (`junction_<name>_total{...}`).
    pub fn counter_family(&mut self, name: &str, help: &str, samples: Vec<(Labels, u64)>) {
        let f: Family<Labels, Counter<u64>> = Family::default();
        for (labels, v) in samples {
            f.get_or_create(&labels).inc_by(v);
        }
        self.registry.register(name, help, f);
    }

    /// A histogram from counts kept elsewhere: `buckets` are (upper bound,
    /// observations in that bucket alone, not cumulative), the last bound
    /// `f64::INFINITY`; `sum` is in the unit of the bounds.
    pub fn histogram(&mut self, name: &str, help: &str, sum: f64, buckets: Vec<(f64, u64)>) {
        let count = buckets.iter().map(|(_, n)| n).sum();
        self.registry.register(name, help, ConstHistogram { sum, count, buckets });
    }

    /// The text exposition (OpenMetrics text, which Prometheus reads).
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// A histogram's values at one scrape (see [`Exposition::histogram`]).
#[derive(Debug)]
struct ConstHistogram {
    sum: f64,
    count: u64,
    buckets: Vec<(f64, u64)>,
}

impl EncodeMetric for ConstHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_histogram::<NoLabelSet>(self.sum, self.count, &self.buckets, None)
    }
    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// The `Content-Type` of [`Exposition::encode`]'s output.
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
