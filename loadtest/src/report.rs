//! Turning scenario results into one JSON document and a human table.

use serde_json::{json, Value as Json};

use crate::connect::ConnectResult;
use crate::mixed::{trickle_json, MixedResult};
use crate::procstat::ProcDelta;
use crate::pubsub::PubSubResult;
use crate::rpc::RpcResult;
use crate::stats::{round2, LatencySummary};

/// What every scenario result offers to the report.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Scenario-specific results as JSON.
    pub results: Json,
    /// Messages delivered (events, results, sessions) for per-message CPU.
    pub delivered: u64,
    /// Headline throughput (events/s, calls/s, sessions/s).
    pub throughput: f64,
    /// Unit of `throughput`.
    pub unit: &'static str,
    /// Headline latency.
    pub latency: LatencySummary,
    /// Rows for the human table.
    pub rows: Vec<(String, String)>,
}

fn fmt_rate(x: f64) -> String {
    if x >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if x >= 1e3 {
        format!("{:.1} k", x / 1e3)
    } else {
        format!("{x:.1}")
    }
}

fn latency_rows(rows: &mut Vec<(String, String)>, what: &str, l: &LatencySummary) {
    rows.push((
        format!("{what} latency µs"),
        format!(
            "p50 {:.1}  p90 {:.1}  p99 {:.1}  p99.9 {:.1}  max {:.1}  (n={})",
            l.p50_us, l.p90_us, l.p99_us, l.p999_us, l.max_us, l.count
        ),
    ));
}

impl From<&PubSubResult> for Outcome {
    fn from(r: &PubSubResult) -> Outcome {
        let mut rows = vec![
            ("published (in window)".into(), r.sent.to_string()),
            ("expected deliveries".into(), r.expected.to_string()),
            ("delivered".into(), r.delivered.to_string()),
            ("lost".into(), r.lost().to_string()),
            ("errors".into(), r.errors.to_string()),
            ("publish rate".into(), format!("{} msg/s", fmt_rate(r.publish_rate()))),
            ("delivery throughput".into(), format!("{} events/s", fmt_rate(r.throughput()))),
        ];
        latency_rows(&mut rows, "publish→event", &r.latency);
        Outcome {
            results: json!({
                "sent": r.sent, "expected": r.expected, "delivered": r.delivered, "lost": r.lost(),
                "received_total": r.received_total, "errors": r.errors,
                "publish_rate_per_s": round2(r.publish_rate()),
                "throughput_events_per_s": round2(r.throughput()),
                "latency": r.latency.to_json(),
            }),
            delivered: r.delivered,
            throughput: r.throughput(),
            unit: "events/s",
            latency: r.latency.clone(),
            rows,
        }
    }
}

impl From<&RpcResult> for Outcome {
    fn from(r: &RpcResult) -> Outcome {
        let mut rows = vec![
            ("calls sent (in window)".into(), r.sent.to_string()),
            ("calls completed".into(), r.completed.to_string()),
            ("lost (unanswered)".into(), r.unanswered.to_string()),
            ("errors".into(), r.errors.to_string()),
            ("throughput".into(), format!("{} calls/s", fmt_rate(r.throughput()))),
        ];
        latency_rows(&mut rows, "call→result", &r.latency);
        Outcome {
            results: json!({
                "sent": r.sent, "delivered": r.completed, "lost": r.unanswered, "errors": r.errors,
                "throughput_calls_per_s": round2(r.throughput()), "latency": r.latency.to_json(),
            }),
            delivered: r.completed,
            throughput: r.throughput(),
            unit: "calls/s",
            latency: r.latency.clone(),
            rows,
        }
    }
}

impl From<&ConnectResult> for Outcome {
    fn from(r: &ConnectResult) -> Outcome {
        let mut rows = vec![
            ("sessions attempted".into(), r.attempted.to_string()),
            ("sessions established".into(), r.established.to_string()),
            ("failed".into(), r.failed.to_string()),
            ("storm duration".into(), format!("{:.3} s", r.storm_s)),
            ("session rate".into(), format!("{} sessions/s", fmt_rate(r.rate()))),
            (format!("alive after {:.0}s hold", r.hold_s), r.alive_after_hold.to_string()),
        ];
        if let Some(e) = &r.first_error {
            rows.push(("first error".into(), e.clone()));
        }
        let mut footprint = serde_json::Value::Null;
        if let Some([before, held, after]) = r.router {
            let est = r.established.max(1);
            let per_kib = held.rss_kib.saturating_sub(before.rss_kib) as f64 / est as f64;
            let per_fd = held.fds.saturating_sub(before.fds) as f64 / est as f64;
            rows.push((
                "router RSS held".into(),
                format!(
                    "{:.1} → {:.1} MiB ({per_kib:.2} KiB per session); after close {:.1} MiB",
                    before.rss_kib as f64 / 1024.0,
                    held.rss_kib as f64 / 1024.0,
                    after.rss_kib as f64 / 1024.0
                ),
            ));
            rows.push((
                "router fds held".into(),
                format!("{} → {} ({per_fd:.2} per session); after close {}", before.fds, held.fds, after.fds),
            ));
            footprint = json!({
                "rss_kib": {"before": before.rss_kib, "held": held.rss_kib, "after_close": after.rss_kib},
                "fds": {"before": before.fds, "held": held.fds, "after_close": after.fds},
                "rss_kib_per_session": (per_kib * 100.0).round() / 100.0,
                "fds_per_session": (per_fd * 100.0).round() / 100.0,
            });
        }
        latency_rows(&mut rows, "connect", &r.latency);
        Outcome {
            results: json!({
                "sent": r.attempted, "delivered": r.established, "lost": r.attempted - r.established.min(r.attempted),
                "errors": r.failed, "first_error": r.first_error, "storm_s": round2(r.storm_s),
                "throughput_sessions_per_s": round2(r.rate()), "alive_after_hold": r.alive_after_hold,
                "dropped_during_hold": r.established.saturating_sub(r.alive_after_hold),
                "hold_s": r.hold_s, "latency": r.latency.to_json(), "router_footprint": footprint,
            }),
            delivered: r.established,
            throughput: r.rate(),
            unit: "sessions/s",
            latency: r.latency.clone(),
            rows,
        }
    }
}

impl From<&MixedResult> for Outcome {
    /// Headline numbers are the pubsub part's; every part has its own rows
    /// and JSON object, and `errors` is the sum.
    fn from(r: &MixedResult) -> Outcome {
        let ps = Outcome::from(&r.pubsub);
        let rp = Outcome::from(&r.rpc);
        let mut rows: Vec<(String, String)> =
            ps.rows.iter().map(|(k, v)| (format!("pubsub: {k}"), v.clone())).collect();
        rows.extend(rp.rows.iter().map(|(k, v)| (format!("rpc: {k}"), v.clone())));
        let mut results = json!({ "errors": r.errors(), "pubsub": ps.results, "rpc": rp.results });
        let mut delivered = ps.delivered + rp.delivered;
        if let Some(t) = &r.trickle {
            let d = r.pubsub.duration_s;
            let tj = trickle_json(t, d);
            rows.push((
                "connect: sessions".into(),
                format!(
                    "{} of {} established ({} sessions/s)",
                    t.established, t.attempted, tj["throughput_sessions_per_s"]
                ),
            ));
            if let Some(e) = &t.first_error {
                rows.push(("connect: first error".into(), e.clone()));
            }
            latency_rows(&mut rows, "connect: connect", &t.latency);
            results["connect"] = tj;
            delivered += t.established;
        }
        Outcome { results, delivered, throughput: ps.throughput, unit: ps.unit, latency: ps.latency, rows }
    }
}

/// Appends resource rows (router and load generator) to the table.
pub fn resource_rows(rows: &mut Vec<(String, String)>, who: &str, d: &ProcDelta, delivered: u64) {
    let per =
        if delivered > 0 { format!(", {:.2} CPU-µs/msg", d.cpu_us as f64 / delivered as f64) } else { String::new() };
    rows.push((format!("{who} CPU"), format!("{:.2} s ({:.2} cores){per}", d.cpu_us as f64 / 1e6, d.cores)));
    rows.push((
        format!("{who} RSS"),
        format!(
            "{:.1} → {:.1} MiB ({:+.1} MiB)",
            d.rss_start_kib as f64 / 1024.0,
            d.rss_end_kib as f64 / 1024.0,
            (d.rss_end_kib as f64 - d.rss_start_kib as f64) / 1024.0
        ),
    ));
}

/// Renders `rows` as a two-column table under `title`.
pub fn table(title: &str, rows: &[(String, String)]) -> String {
    let w = rows.iter().map(|(k, _)| k.chars().count()).max().unwrap_or(0);
    let mut s = format!("{title}\n{}\n", "─".repeat(title.chars().count().max(20)));
    for (k, v) in rows {
        let pad = w - k.chars().count();
        s.push_str(&format!("  {k}{}  {v}\n", " ".repeat(pad)));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_aligns_columns() {
        let t = table("T", &[("a".into(), "1".into()), ("long key".into(), "2".into())]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "T");
        assert_eq!(lines[2], "  a         1");
        assert_eq!(lines[3], "  long key  2");
    }

    #[test]
    fn pubsub_outcome_json() {
        let r = PubSubResult {
            sent: 10,
            expected: 20,
            delivered: 18,
            received_total: 25,
            errors: 1,
            latency: LatencySummary { count: 18, p50_us: 5.0, ..LatencySummary::default() },
            duration_s: 2.0,
        };
        let o = Outcome::from(&r);
        assert_eq!(o.results["lost"], 2);
        assert_eq!(o.results["throughput_events_per_s"], 9.0);
        assert_eq!(o.results["latency"]["p50_us"], 5.0);
        assert_eq!(o.delivered, 18);
        assert!(o.rows.iter().any(|(k, v)| k == "lost" && v == "2"));
    }
}
