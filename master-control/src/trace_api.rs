//! The message tracing API of a router worker (sans-IO over the worker's
//! [`Tracer`]): `get_traces`, `get_trace`, `start_trace`, `stop_trace`,
//! `get_trace_data`, with Crossbar's arguments and result shapes, reached
//! through `crossbarfabriccenter.remote.tracing.<procedure>(node_oid,
//! worker_id, ...)`. The records come from `router_core::engine::trace`.
//!
//! Junction traces at Crossbar's `trace_level: "message"` without payloads:
//! `trace_level: "action"`, `trace_app_payload: true` and `persist: true`
//! are refused (`crossbar.error.invalid_configuration`). A trace keeps a
//! bounded ring of records (`max_records`, a Junction option); stopped
//! traces stay readable until [`trace::MAX_TRACES`] newer ones push them out.

use std::time::{Duration, SystemTime};

use router_core::engine::trace::{self, Trace, TraceError, TraceOptions, TraceRecord, Tracer};
use serde_json::json;
use wamp_proto::{Dict, Value};

use crate::error::ApiError;
use crate::value::{from_json, Args};

/// Procedures of the tracing API (suffixes of the worker's prefix).
pub const TRACING_PROCEDURES: [&str; 5] = ["get_traces", "get_trace", "start_trace", "stop_trace", "get_trace_data"];

fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_micros(t).to_string()
}

fn api_error(e: TraceError) -> ApiError {
    let uri = match &e {
        TraceError::NoSuchTrace(_) => "crossbar.error.no_such_object",
        TraceError::AlreadyRunning(_) => "crossbar.error.already_running",
        TraceError::NotRunning(_) => "crossbar.error.not_running",
        TraceError::TooMany => "crossbar.error.cannot_start",
        TraceError::BadId(_) => "wamp.error.invalid_argument",
    };
    ApiError::new(uri, e.to_string())
}

/// Crossbar's trace object (`FabricRouterTrace.marshal`).
pub fn trace_json(t: &Trace, node_id: &str, worker_id: &str, now: SystemTime) -> Value {
    from_json(&json!({
        "id": t.id,
        "node_id": node_id,
        "worker_id": worker_id,
        "persistent_id": null,
        "status": t.status.as_str(),
        "started": iso(t.started),
        "ended": t.ended.map(iso),
        "runtime": t.runtime(now).as_secs_f64(),
        "options": {
            "trace_level": "message",
            "trace_app_payload": false,
            "batching_period": t.options.batching_period,
            "persist": false,
            "duration": t.options.duration.map(|d| d.as_secs()),
            "limit": null,
            "max_records": t.options.max_records,
        },
        "next_period": 0,
        "next_seq": t.next_seq(),
        "records": t.len(),
    }))
}

/// Crossbar's trace record (`TracedMessage.marshal`), without payload.
pub fn record_json(r: &TraceRecord) -> Value {
    from_json(&json!({
        "seq": r.seq,
        "ts": r.ts,
        "pc": r.pc,
        "direction": r.direction.as_str(),
        "realm": &*r.realm,
        "session_id": r.session,
        "authid": &*r.authid,
        "authrole": &*r.authrole,
        "msg_type": r.msg_type,
        "uri": r.uri.as_deref(),
        "correlation": null,
        "correlation_uri": r.uri.as_deref(),
        "correlation_is_anchor": null,
        "correlation_is_last": null,
        "enc_algo": null,
        "enc_key": null,
        "enc_serializer": null,
        "serializations": {},
    }))
}

fn bad_option(m: impl Into<String>) -> ApiError {
    ApiError::new("crossbar.error.invalid_configuration", format!("invalid tracing options: {}", m.into()))
}

fn int_in(d: &Dict, key: &str, lo: u64, hi: u64) -> Result<Option<u64>, ApiError> {
    match d.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::UInt(n)) if (lo..=hi).contains(n) => Ok(Some(*n)),
        Some(Value::Int(n)) if *n >= 0 && (lo..=hi).contains(&(*n as u64)) => Ok(Some(*n as u64)),
        Some(v) => Err(bad_option(format!("{key} must be an integer [{lo}, {hi}], was {v:?}"))),
    }
}

/// Reads `start_trace`'s `trace_options` (Crossbar's checks, plus
/// Junction's `max_records`).
pub fn parse_options(o: Option<&Dict>) -> Result<TraceOptions, ApiError> {
    let mut opts = TraceOptions::default();
    let Some(d) = o else { return Ok(opts) };
    const KNOWN: [&str; 6] =
        ["trace_level", "trace_app_payload", "batching_period", "persist", "duration", "max_records"];
    if let Some(k) = d.keys().find(|k| !KNOWN.contains(&k.as_str())) {
        return Err(bad_option(format!("unknown option '{k}' (known: {})", KNOWN.join(", "))));
    }
    match d.get("trace_level") {
        None | Some(Value::Null) => {}
        Some(Value::Str(s)) if s == "message" => {}
        Some(Value::Str(s)) if s == "action" => {
            return Err(bad_option("trace_level \"action\" is not supported by Junction (use \"message\")"))
        }
        Some(v) => {
            return Err(bad_option(format!("trace_level must be one of [\"message\", \"action\"], but was {v:?}")))
        }
    }
    for key in ["trace_app_payload", "persist"] {
        match d.get(key) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(Value::Bool(true)) => {
                return Err(bad_option(format!(
                    "{key} is not supported by Junction (traces never hold payloads and are kept in memory)"
                )))
            }
            Some(v) => return Err(bad_option(format!("{key} must be of type bool, was {v:?}"))),
        }
    }
    if let Some(b) = int_in(d, "batching_period", 10, 10_000)? {
        opts.batching_period = b;
    }
    opts.duration = int_in(d, "duration", 1, 86_400)?.map(Duration::from_secs);
    if let Some(m) = int_in(d, "max_records", 1, trace::MAX_MAX_RECORDS as u64)? {
        opts.max_records = m as usize;
    }
    Ok(opts)
}

fn opt_seq(a: &Args<'_>, pos: usize, name: &str) -> Result<Option<u64>, ApiError> {
    match a.get(pos, name) {
        None => Ok(None),
        Some(Value::UInt(n)) => Ok(Some(*n)),
        Some(Value::Int(n)) if *n >= 0 => Ok(Some(*n as u64)),
        Some(_) => Err(ApiError::invalid_argument(format!(
            "{}: argument '{name}' must be a non-negative integer",
            a.procedure
        ))),
    }
}

/// An event the worker publishes under its prefix: (suffix, args).
pub type TraceEvent = (String, Vec<Value>);

/// Answers tracing procedure `proc`; a started or stopped trace also gives
/// the event to publish (`on_trace_started` / `on_trace_stopped` with
/// `(trace_id, trace)`).
pub fn handle(
    tracer: &Tracer,
    node_id: &str,
    worker_id: &str,
    now: SystemTime,
    proc: &str,
    args: &[Value],
    kwargs: &Dict,
) -> Result<(Value, Option<TraceEvent>), ApiError> {
    let a = Args { procedure: proc, args, kwargs };
    let event = |name: &str, id: &str, v: &Value| Some((name.to_owned(), vec![Value::Str(id.to_owned()), v.clone()]));
    match proc {
        "get_traces" => {
            let all = a.flag(0, "include_stopped")?;
            let mut ids = tracer.with(|st| st.ids(all));
            ids.sort();
            Ok((Value::List(ids.into_iter().map(Value::Str).collect()), None))
        }
        "get_trace" => {
            let id = a.str(0, "trace_id")?;
            let v = tracer.with(|st| st.get(id).map(|t| trace_json(t, node_id, worker_id, now))).map_err(api_error)?;
            Ok((v, None))
        }
        "start_trace" => {
            let id = a.opt_str(0, "trace_id")?;
            let opts = parse_options(a.opt_dict(1, "trace_options")?)?;
            let v = tracer
                .with(|st| st.start(id, opts, now).map(|t| (t.id.clone(), trace_json(t, node_id, worker_id, now))))
                .map_err(api_error)?;
            let ev = event("on_trace_started", &v.0, &v.1);
            Ok((v.1, ev))
        }
        "stop_trace" => {
            let id = a.str(0, "trace_id")?;
            let v = tracer
                .with(|st| st.stop(id, now).map(|t| trace_json(t, node_id, worker_id, now)))
                .map_err(api_error)?;
            let ev = event("on_trace_stopped", id, &v);
            Ok((v, ev))
        }
        "get_trace_data" => {
            let id = a.str(0, "trace_id")?;
            let from = opt_seq(&a, 1, "from_seq")?;
            let to = opt_seq(&a, 2, "to_seq")?;
            let limit = opt_seq(&a, 3, "limit")?.unwrap_or(100);
            if limit as usize > trace::MAX_DATA_LIMIT {
                return Err(ApiError::invalid_argument(format!(
                    "get_trace_data: limit {limit} is too large (at most {})",
                    trace::MAX_DATA_LIMIT
                )));
            }
            let recs = tracer.with(|st| st.data(id, from, to, limit as usize)).map_err(api_error)?;
            Ok((Value::List(recs.iter().map(record_json).collect()), None))
        }
        _ => Err(ApiError::new("wamp.error.no_such_procedure", format!("no tracing procedure '{proc}'"))),
    }
}

/// Traces whose duration ran out since the last look: their
/// `on_trace_stopped` events.
/// At most this many records go into one `on_trace_data` batch; the rest
/// follow in the next ones (or are read with `get_trace_data`).
pub const MAX_BATCH: usize = 1000;

/// Where the streaming of each running trace stands: the next record to
/// send, when the next batch is due, and the batch count.
#[derive(Debug, Default)]
pub struct StreamState {
    traces: std::collections::HashMap<String, (u64, SystemTime, u64)>,
}

/// The `on_trace_data(trace_id, period, records)` batches due at `now`:
/// for each running trace, every `batching_period` ms, the records taken
/// since the last batch (at most [`MAX_BATCH`]). `period` is `{period,
/// from_seq, to_seq, time}`; a batch with no record is not sent.
pub fn stream(tracer: &Tracer, st: &mut StreamState, now: SystemTime) -> Vec<TraceEvent> {
    tracer.with(|ts| {
        let running: Vec<String> = ts.ids(false);
        st.traces.retain(|id, _| running.contains(id));
        let mut out = Vec::new();
        for id in running {
            let Ok(t) = ts.get(&id) else { continue };
            let period = Duration::from_millis(t.options.batching_period);
            let entry = st.traces.entry(id.clone()).or_insert((0, t.started + period, 0));
            if now < entry.1 {
                continue;
            }
            entry.1 = now + period;
            let recs = t.data(entry.0, u64::MAX, MAX_BATCH);
            let (Some(first), Some(last)) = (recs.first().map(|r| r.seq), recs.last().map(|r| r.seq)) else {
                continue;
            };
            entry.0 = last + 1;
            entry.2 += 1;
            let period = from_json(&json!({"period": entry.2, "from_seq": first, "to_seq": last, "time": iso(now)}));
            out.push((
                "on_trace_data".to_owned(),
                vec![Value::Str(id), period, Value::List(recs.iter().map(record_json).collect())],
            ));
        }
        out
    })
}

pub fn expired(tracer: &Tracer, node_id: &str, worker_id: &str, now: SystemTime) -> Vec<TraceEvent> {
    tracer.with(|st| {
        st.expire(now)
            .into_iter()
            .filter_map(|id| {
                st.get(&id).ok().map(|t| {
                    (
                        "on_trace_stopped".to_owned(),
                        vec![Value::Str(id.clone()), trace_json(t, node_id, worker_id, now)],
                    )
                })
            })
            .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use router_core::engine::trace::{Direction, Traced};
    use std::time::UNIX_EPOCH;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn get<'a>(v: &'a Value, k: &str) -> &'a Value {
        v.as_dict().and_then(|d| d.get(k)).unwrap_or(&Value::Null)
    }

    fn opts(items: &[(&str, Value)]) -> Value {
        Value::Dict(items.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect())
    }

    #[test]
    fn start_read_and_stop_traces_with_crossbar_shapes_and_errors() {
        let tracer = Tracer::default();
        let now = UNIX_EPOCH + Duration::from_secs(1_000);
        let call = |p: &str, a: Vec<Value>| handle(&tracer, "node1", "w1", now, p, &a, &Dict::new());
        assert_eq!(call("get_traces", vec![]).map(|r| r.0), Ok(Value::List(vec![])));
        let (t, ev) = call(
            "start_trace",
            vec![s("t1"), opts(&[("max_records", Value::UInt(2)), ("batching_period", Value::UInt(50))])],
        )
        .expect("start");
        assert_eq!(get(&t, "status"), &s("running"));
        assert_eq!(get(&t, "node_id"), &s("node1"));
        assert_eq!(get(get(&t, "options"), "max_records"), &Value::UInt(2));
        assert_eq!(get(get(&t, "options"), "batching_period"), &Value::UInt(50));
        assert_eq!(get(get(&t, "options"), "duration"), &Value::Null);
        assert_eq!(ev.map(|e| e.0), Some("on_trace_started".into()));
        let (auto, _) = call("start_trace", vec![]).expect("auto id");
        assert_eq!(get(&auto, "id"), &s("trace1"));
        assert_eq!(call("get_traces", vec![]).map(|r| r.0), Ok(Value::List(vec![s("t1"), s("trace1")])));

        for code in [wamp_proto::code::CALL, wamp_proto::code::RESULT, wamp_proto::code::PUBLISH] {
            tracer.record([Traced {
                direction: Direction::Rx,
                realm: "r",
                session: 5,
                authid: "a",
                authrole: "b",
                code,
                uri: Some("com.x"),
            }]);
        }
        let (data, _) = call("get_trace_data", vec![s("t1"), Value::UInt(0)]).expect("data");
        let recs = data.as_list().cloned().unwrap_or_default();
        assert_eq!(recs.len(), 2, "ring of 2");
        assert_eq!(get(&recs[0], "seq"), &Value::UInt(1));
        assert_eq!(get(&recs[0], "msg_type"), &s("Result"));
        assert_eq!(get(&recs[1], "direction"), &s("rx"));
        assert_eq!(get(&recs[1], "session_id"), &Value::UInt(5));
        assert_eq!(get(&recs[1], "uri"), &s("com.x"));
        let (one, _) =
            call("get_trace_data", vec![s("t1"), Value::UInt(1), Value::UInt(1), Value::UInt(5)]).expect("range");
        assert_eq!(one.as_list().map(Vec::len), Some(1));

        let (stopped, ev) = call("stop_trace", vec![s("t1")]).expect("stop");
        assert_eq!(get(&stopped, "status"), &s("stopped"));
        assert_eq!(get(&stopped, "next_seq"), &Value::UInt(3));
        assert_eq!(ev.map(|e| e.0), Some("on_trace_stopped".into()));
        assert_eq!(call("get_traces", vec![]).map(|r| r.0), Ok(Value::List(vec![s("trace1")])));
        assert_eq!(
            call("get_traces", vec![Value::Bool(true)]).map(|r| r.0),
            Ok(Value::List(vec![s("t1"), s("trace1")]))
        );

        let e = |p: &str, a: Vec<Value>| call(p, a).expect_err("error").uri;
        assert_eq!(e("start_trace", vec![s("trace1")]), "crossbar.error.already_running");
        assert_eq!(e("stop_trace", vec![s("t1")]), "crossbar.error.not_running");
        assert_eq!(e("stop_trace", vec![s("zz")]), "crossbar.error.no_such_object");
        assert_eq!(e("get_trace", vec![s("zz")]), "crossbar.error.no_such_object");
        assert_eq!(e("get_trace", vec![Value::UInt(1)]), "wamp.error.invalid_argument");
        assert_eq!(e("get_trace_data", vec![s("t1"), s("0")]), "wamp.error.invalid_argument");
        assert_eq!(
            e("get_trace_data", vec![s("t1"), Value::UInt(0), Value::Null, Value::UInt(10_001)]),
            "wamp.error.invalid_argument"
        );
        assert_eq!(e("start_trace", vec![s("a b")]), "wamp.error.invalid_argument");
        assert_eq!(e("start_trace", vec![s("x"), s("opts")]), "wamp.error.invalid_argument");
        for bad in [
            opts(&[("trace_level", s("action"))]),
            opts(&[("trace_level", s("bytes"))]),
            opts(&[("trace_app_payload", Value::Bool(true))]),
            opts(&[("persist", Value::UInt(1))]),
            opts(&[("batching_period", Value::UInt(5))]),
            opts(&[("duration", Value::UInt(0))]),
            opts(&[("max_records", Value::UInt(0))]),
            opts(&[("filters", Value::Null)]),
        ] {
            assert_eq!(e("start_trace", vec![s("x"), bad]), "crossbar.error.invalid_configuration");
        }
        assert_eq!(e("nope", vec![]), "wamp.error.no_such_procedure");
    }

    #[test]
    fn a_trace_that_ran_its_duration_reports_its_stop() {
        let tracer = Tracer::default();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        handle(&tracer, "n", "w", t0, "start_trace", &[s("d"), opts(&[("duration", Value::UInt(2))])], &Dict::new())
            .expect("start");
        assert!(expired(&tracer, "n", "w", t0 + Duration::from_secs(1)).is_empty());
        let ev = expired(&tracer, "n", "w", t0 + Duration::from_secs(2));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].0, "on_trace_stopped");
        assert_eq!(get(&ev[0].1[1], "status"), &s("stopped"));
        assert!(!tracer.is_active());
    }

    #[test]
    fn running_traces_stream_their_new_records_every_batching_period() {
        let tracer = Tracer::default();
        let t0 = UNIX_EPOCH + Duration::from_secs(1_000);
        let ms = |n| t0 + Duration::from_millis(n);
        let call = |p: &str, a: Vec<Value>| handle(&tracer, "node1", "w1", t0, p, &a, &Dict::new());
        call("start_trace", vec![s("t1"), opts(&[("batching_period", Value::UInt(50))])]).expect("start");
        let record = |n: usize| {
            for _ in 0..n {
                tracer.record([Traced {
                    direction: Direction::Tx,
                    realm: "r",
                    session: 9,
                    authid: "a",
                    authrole: "b",
                    code: wamp_proto::code::EVENT,
                    uri: None,
                }]);
            }
        };
        let mut st = StreamState::default();
        record(3);
        assert!(stream(&tracer, &mut st, ms(10)).is_empty(), "not due before one period");
        let ev = stream(&tracer, &mut st, ms(50));
        assert_eq!(ev.len(), 1);
        assert_eq!(ev[0].0, "on_trace_data");
        assert_eq!(ev[0].1[0], s("t1"));
        let period = &ev[0].1[1];
        assert_eq!(
            (get(period, "period"), get(period, "from_seq"), get(period, "to_seq")),
            (&Value::UInt(1), &Value::UInt(0), &Value::UInt(2))
        );
        assert_eq!(ev[0].1[2].as_list().map(Vec::len), Some(3));
        record(2);
        assert!(stream(&tracer, &mut st, ms(60)).is_empty(), "the next period has not come");
        let ev = stream(&tracer, &mut st, ms(110));
        assert_eq!(get(&ev[0].1[1], "from_seq"), &Value::UInt(3), "only what is new");
        assert_eq!(ev[0].1[2].as_list().map(Vec::len), Some(2));
        assert!(stream(&tracer, &mut st, ms(200)).is_empty(), "no record, no batch");
        // More than a batch: the rest follows in the next one.
        record(MAX_BATCH + 5);
        let ev = stream(&tracer, &mut st, ms(300));
        assert_eq!(ev[0].1[2].as_list().map(Vec::len), Some(MAX_BATCH));
        let ev = stream(&tracer, &mut st, ms(400));
        assert_eq!(ev[0].1[2].as_list().map(Vec::len), Some(5));
        call("stop_trace", vec![s("t1")]).expect("stop");
        record(1);
        assert!(stream(&tracer, &mut st, ms(500)).is_empty(), "a stopped trace streams nothing");
        assert!(st.traces.is_empty());
    }
}
