//! The `metrics` web service: a router worker's and a proxy worker's
//! counters in Prometheus' text format, scraped over HTTP with a plain TCP
//! client while Autobahn|Python sessions (`rpc.py`) and hand-written
//! RawSocket sessions come and go. Every scrape must parse line by line as
//! `name{labels} value` (or a `#` comment line) and the counters must move
//! with the traffic.

mod common;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{allow_all_role, free_port, node_config, realm, run_junction, temp_dir, temp_path, JunctionProcess};
use serde_json::{json, Value};

const IO_DEADLINE: Duration = Duration::from_secs(10);

/// One parsed scrape: `name{labels}` (labels as written) → value.
type Samples = BTreeMap<String, f64>;

/// `GET /metrics` over a fresh TCP connection; returns the parsed samples.
fn scrape(port: u16) -> Samples {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(IO_DEADLINE)).expect("timeout");
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").expect("request");
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("response");
    let text = String::from_utf8(raw).expect("UTF-8 response");
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no end of head: {text}"));
    assert!(head.starts_with("HTTP/1.1 200 "), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("content-type: application/openmetrics-text; version=1.0.0"), "{head}");
    parse(body)
}

/// Parses an exposition: every line is `# TYPE|HELP|UNIT ...`, `# EOF`
/// (last), or `name{labels} value`.
fn parse(body: &str) -> Samples {
    let mut out = Samples::new();
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.last(), Some(&"# EOF"), "exposition must end with # EOF:\n{body}");
    for line in &lines[..lines.len() - 1] {
        if let Some(c) = line.strip_prefix("# ") {
            let kind = c.split(' ').next().unwrap_or("");
            assert!(["TYPE", "HELP", "UNIT"].contains(&kind), "bad comment line {line:?}");
            continue;
        }
        let (series, value) = split_sample(line).unwrap_or_else(|| panic!("not `name{{labels}} value`: {line:?}"));
        let v: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(out.insert(series.to_owned(), v).is_none(), "duplicate series {series}");
    }
    out
}

/// `name{labels} value` → (`name{labels}`, `value`), checking the name's
/// characters and the label syntax (`key="escaped value"`, comma-separated).
fn split_sample(line: &str) -> Option<(&str, &str)> {
    let b = line.as_bytes();
    let mut i = 0;
    let name_ok =
        |c: u8, first: bool| c.is_ascii_alphabetic() || c == b'_' || c == b':' || (!first && c.is_ascii_digit());
    if b.is_empty() || !name_ok(b[0], true) {
        return None;
    }
    while i < b.len() && name_ok(b[i], i == 0) {
        i += 1;
    }
    if i < b.len() && b[i] == b'{' {
        i += 1;
        loop {
            let start = i;
            while i < b.len() && name_ok(b[i], i == start) {
                i += 1;
            }
            if i == start || b.get(i) != Some(&b'=') || b.get(i + 1) != Some(&b'"') {
                return None;
            }
            i += 2;
            while i < b.len() && b[i] != b'"' {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1; // closing quote
            match b.get(i) {
                Some(b',') => i += 1,
                Some(b'}') => {
                    i += 1;
                    break;
                }
                _ => return None,
            }
        }
    }
    if b.get(i) != Some(&b' ') {
        return None;
    }
    let value = &line[i + 1..];
    (!value.is_empty() && !value.contains(' ')).then_some((&line[..i], value))
}

fn get(s: &Samples, series: &str) -> f64 {
    *s.get(series).unwrap_or_else(|| panic!("no series {series} in {s:#?}"))
}

/// A RawSocket/JSON session joined by hand: (the stream, its session id).
fn raw_join(port: u16, realm: &str) -> (TcpStream, u64) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(IO_DEADLINE)).expect("timeout");
    s.write_all(&[0x7F, 0xF1, 0, 0]).expect("handshake");
    let mut reply = [0u8; 4];
    s.read_exact(&mut reply).expect("handshake reply");
    assert_eq!(reply[0], 0x7F, "{reply:?}");
    send(&mut s, json!([1, realm, {"roles": {"caller": {}}}]).to_string().as_bytes());
    let welcome = recv(&mut s);
    assert_eq!(welcome[0], 2, "expected WELCOME: {welcome}");
    let id = welcome[1].as_u64().expect("session id");
    (s, id)
}

fn send(s: &mut TcpStream, payload: &[u8]) {
    let n = payload.len();
    let mut v = vec![0, (n >> 16) as u8, (n >> 8) as u8, n as u8];
    v.extend_from_slice(payload);
    s.write_all(&v).expect("send");
}

fn recv(s: &mut TcpStream) -> Value {
    let mut h = [0u8; 4];
    s.read_exact(&mut h).expect("frame header");
    let n = ((h[1] as usize) << 16) | ((h[2] as usize) << 8) | h[3] as usize;
    let mut p = vec![0u8; n];
    s.read_exact(&mut p).expect("frame");
    serde_json::from_slice(&p).expect("JSON")
}

/// Scrapes until `pred` holds (at most `timeout`); returns that scrape.
fn scrape_until(port: u16, what: &str, timeout: Duration, pred: impl Fn(&Samples) -> bool) -> Samples {
    let deadline = Instant::now() + timeout;
    loop {
        let s = scrape(port);
        if pred(&s) {
            return s;
        }
        assert!(Instant::now() < deadline, "{what} not seen within {timeout:?}: {s:#?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn router_metrics_follow_the_traffic() {
    let (web, rs) = (free_port(), free_port());
    let config = node_config(
        vec![realm("realm1", vec![allow_all_role("anonymous")]), realm("realm2", vec![allow_all_role("anonymous")])],
        vec![
            json!({
                "type": "web",
                "endpoint": {"type": "tcp", "port": web, "interface": "127.0.0.1"},
                "paths": {
                    "ws": {"type": "websocket", "serializers": ["json", "msgpack", "cbor"]},
                    "metrics": {"type": "metrics"}
                }
            }),
            json!({"type": "rawsocket", "endpoint": {"type": "tcp", "port": rs, "interface": "127.0.0.1"}, "serializers": ["json"]}),
        ],
    );
    let node = JunctionProcess::start(config);

    let before = scrape(web);
    assert_eq!(get(&before, r#"junction_realm_sessions{realm="realm1"}"#), 0.0);
    assert_eq!(get(&before, r#"junction_realm_sessions{realm="realm2"}"#), 0.0);
    assert_eq!(get(&before, "junction_protocol_violations_total"), 0.0);
    assert_eq!(get(&before, r#"junction_worker_up{worker="router",version="0.1.0"}"#), 1.0);
    assert!(before.contains_key("junction_cluster_messages_sent_total"), "{before:#?}");

    // Autobahn traffic in the background while raw sessions come and go.
    let url = format!("ws://127.0.0.1:{web}/ws");
    let traffic = std::thread::spawn(move || common::python("rpc.py", &[&url, "realm1", "json"]));
    let (mut a, _) = raw_join(rs, "realm2");
    let (_b, _) = raw_join(rs, "realm2");
    let during = scrape(web);
    assert_eq!(get(&during, r#"junction_realm_sessions{realm="realm2"}"#), 2.0, "{during:#?}");
    assert!(get(&during, "junction_sessions") >= 2.0, "{during:#?}");
    // One of them commits a protocol violation and is aborted.
    send(&mut a, b"\x00 not json");
    let abort = recv(&mut a);
    assert_eq!(abort[2], "wamp.error.protocol_violation", "{abort}");
    let r = traffic.join().expect("traffic thread");
    assert_eq!(r["ok"], Value::Bool(true), "{r}\n{}", node.stderr());

    let after = scrape_until(web, "realm2 back to 1 session", IO_DEADLINE, |s| {
        s.get(r#"junction_realm_sessions{realm="realm2"}"#) == Some(&1.0)
    });
    assert_eq!(get(&after, "junction_protocol_violations_total"), 1.0, "{after:#?}");
    // The rpc.py caller and callee, two raw sessions and the scrapes in between.
    let accepted = |s: &Samples| get(s, "junction_connections_accepted_total");
    assert!(accepted(&after) >= accepted(&before) + 5.0, "before {before:#?} after {after:#?}");
    assert!(get(&after, "junction_uptime_seconds") >= get(&before, "junction_uptime_seconds"));
    // rpc.py's calls, results and events after the opening handshakes.
    let received = |s: &Samples| get(s, "junction_bytes_received_total");
    assert!(received(&after) >= received(&before) + 500.0, "before {before:#?} after {after:#?}");
    // Nothing is waiting for a socket once the traffic is over (the gauge
    // follows every queue, including those of closed connections).
    assert_eq!(get(&after, "junction_outbound_queued_bytes"), 0.0, "{after:#?}");
    assert!(get(&after, "junction_connection_capacity") > 0.0, "{after:#?}");
    assert_eq!(get(&after, r#"junction_realm_sessions{realm="realm1"}"#), 0.0, "{after:#?}");
    // The routing-time histogram counted rpc.py's read batches: count and
    // +Inf bucket agree, buckets are cumulative, the sum is a plausible time.
    let batches = |s: &Samples| get(s, "junction_routing_batch_seconds_count");
    assert!(batches(&after) >= batches(&before) + 10.0, "before {before:#?} after {after:#?}");
    assert_eq!(get(&after, r#"junction_routing_batch_seconds_bucket{le="+Inf"}"#), batches(&after), "{after:#?}");
    let le = |b: &str| get(&after, &format!(r#"junction_routing_batch_seconds_bucket{{le="{b}"}}"#));
    assert!(le("0.00001") <= le("0.0001") && le("0.0001") <= le("0.1") && le("0.1") <= batches(&after), "{after:#?}");
    let sum = get(&after, "junction_routing_batch_seconds_sum");
    assert!(sum > 0.0 && sum < batches(&after) * 1.0, "sum {sum}: {after:#?}");
}

#[test]
fn proxy_metrics_show_backend_links_and_sessions() {
    let dir = temp_dir("metrics-proxy");
    let make = |p: &[u16]| {
        json!({"version": 2, "workers": [
            {
                "type": "router", "id": "r0",
                "options": {"shards": 1, "pin_cores": false},
                "realms": [realm("realm1", vec![allow_all_role("anonymous")])],
                "transports": [{
                    "type": "rawsocket",
                    "endpoint": {"type": "tcp", "port": p[0], "interface": "127.0.0.1"},
                    "auth": {"cryptosign-proxy": {"type": "static", "principals": {}}}
                }]
            },
            {
                "type": "proxy", "id": "p0",
                "options": {"shards": 1, "pin_cores": false, "backend_reconnect_max": 500},
                "routes": {"realm1": {"*": "c0"}},
                "connections": {"c0": {"realm": "realm1", "transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": p[0]}}}},
                "transports": [
                    {
                        "type": "web",
                        "endpoint": {"type": "tcp", "port": p[1], "interface": "127.0.0.1"},
                        "paths": {"ws": {"type": "websocket", "serializers": ["json"]}, "metrics": {"type": "metrics"}}
                    },
                    {"type": "rawsocket", "endpoint": {"type": "tcp", "port": p[2], "interface": "127.0.0.1"}, "serializers": ["json"]}
                ]
            }
        ]})
    };
    let (node, p, _) = common::start_in_dir_with_ports(&dir, 3, make);
    let link = format!(r#"{{connection="c0",realm="realm1",address="tcp:127.0.0.1:{}",shard="0"}}"#, p[0]);
    let up = format!("junction_backend_link_up{link}");
    let before = scrape_until(p[1], "the backend link up", Duration::from_secs(20), |s| s.get(&up) == Some(&1.0));
    assert_eq!(get(&before, r#"junction_worker_up{worker="proxy",version="0.1.0"}"#), 1.0);
    assert_eq!(get(&before, &format!("junction_backend_sessions{link}")), 0.0);

    let (_s, _) = raw_join(p[2], "realm1");
    // The worker's total is published by each shard every 500 ms.
    let during = scrape_until(p[1], "one proxied session", IO_DEADLINE, |s| s.get("junction_sessions") == Some(&1.0));
    assert_eq!(get(&during, &format!("junction_backend_sessions{link}")), 1.0, "{during:#?}");

    let url = format!("ws://127.0.0.1:{}/ws", p[1]);
    let r = node.python("rpc.py", &[&url, "realm1", "json"]);
    assert_eq!(r["ok"], Value::Bool(true), "{r}");
    let after = scrape(p[1]);
    let accepted = |s: &Samples| get(s, "junction_connections_accepted_total");
    assert!(accepted(&after) >= accepted(&before) + 4.0, "before {before:#?} after {after:#?}");
}

#[test]
fn check_accepts_the_metrics_service_and_refuses_extra_keys() {
    let path = temp_path("metrics-check", "json");
    let mut config = node_config(
        vec![realm("realm1", vec![allow_all_role("anonymous")])],
        vec![json!({
            "type": "web",
            "endpoint": {"type": "tcp", "port": 8080},
            "paths": {"metrics": {"type": "metrics"}}
        })],
    );
    std::fs::write(&path, config.to_string()).expect("write");
    let (status, out, err) = run_junction(&["check".as_ref(), "--config".as_ref(), path.as_os_str()], IO_DEADLINE);
    assert!(status.is_some_and(|s| s.success()), "{out}{err}");
    assert!(out.contains("configuration OK"), "{out}");

    config["workers"][0]["transports"][0]["paths"]["metrics"]["path"] = json!("/x");
    std::fs::write(&path, config.to_string()).expect("write");
    let (status, _, err) = run_junction(&["check".as_ref(), "--config".as_ref(), path.as_os_str()], IO_DEADLINE);
    assert!(status.is_some_and(|s| !s.success()), "{err}");
    assert!(err.contains(r#"paths.metrics.path"#) && err.contains("unknown key 'path'"), "{err}");
}

/// `series` in `s`, 0 if absent.
fn value(s: &Samples, series: &str) -> f64 {
    s.get(series).copied().unwrap_or(0.0)
}

#[test]
fn message_counters_per_type_follow_autobahn_traffic() {
    let (web, rs) = (free_port(), free_port());
    let config = node_config(
        vec![realm("realm1", vec![allow_all_role("anonymous")])],
        vec![
            json!({
                "type": "web",
                "endpoint": {"type": "tcp", "port": web, "interface": "127.0.0.1"},
                "paths": {"ws": {"type": "websocket", "serializers": ["json", "msgpack", "cbor"]}, "metrics": {"type": "metrics"}}
            }),
            json!({"type": "rawsocket", "endpoint": {"type": "tcp", "port": rs, "interface": "127.0.0.1"}, "serializers": ["cbor", "json"]}),
        ],
    );
    let node = JunctionProcess::start(config);
    let rx = |t: &str| format!(r#"junction_messages_received_total{{realm="realm1",type="{t}"}}"#);
    let tx = |t: &str| format!(r#"junction_messages_sent_total{{realm="realm1",type="{t}"}}"#);
    let bytes = r#"junction_message_bytes_sent_total{realm="realm1"}"#;

    let before = scrape(web);
    for t in ["CALL", "PUBLISH", "YIELD", "REGISTER", "SUBSCRIBE", "GOODBYE"] {
        assert_eq!(get(&before, &rx(t)), 0.0, "{t}: {before:#?}");
    }
    for t in ["WELCOME", "RESULT", "INVOCATION", "EVENT", "PUBLISHED"] {
        assert_eq!(get(&before, &tx(t)), 0.0, "{t}: {before:#?}");
    }

    // Scrapes run while the client works.
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let scraper = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let s = scrape(web);
                assert!(s.contains_key(r#"junction_messages_sent_total{realm="realm1",type="EVENT"}"#));
                n += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            n
        })
    };
    let (calls, publishes, subscribers) = (25.0, 20.0, 3.0);
    let url = format!("rs://127.0.0.1:{rs}");
    let r = node
        .python("traffic.py", &[&url, "realm1", "cbor", "--calls", "25", "--publishes", "20", "--subscribers", "3"]);
    assert_eq!(r["ok"], Value::Bool(true), "{r}");
    assert_eq!(r["events"].as_f64(), Some(publishes * subscribers), "{r}");
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let scrapes = scraper.join().expect("scraper");
    assert!(scrapes >= 1);

    // The client's sessions close with GOODBYE; wait for their counts.
    let sessions = 2.0 + subscribers;
    let after = scrape_until(web, "the client's GOODBYEs", IO_DEADLINE, |s| value(s, &rx("GOODBYE")) >= sessions);
    let moved_rx = |t: &str| get(&after, &rx(t)) - get(&before, &rx(t));
    let moved_tx = |t: &str| get(&after, &tx(t)) - get(&before, &tx(t));
    assert!(moved_rx("CALL") >= calls, "CALL {} {after:#?}", moved_rx("CALL"));
    assert!(moved_rx("YIELD") >= calls, "YIELD {}", moved_rx("YIELD"));
    assert!(moved_rx("PUBLISH") >= publishes, "PUBLISH {}", moved_rx("PUBLISH"));
    assert!(moved_rx("REGISTER") >= 1.0 && moved_rx("SUBSCRIBE") >= subscribers);
    assert!(moved_tx("INVOCATION") >= calls && moved_tx("RESULT") >= calls, "{after:#?}");
    assert!(moved_tx("PUBLISHED") >= publishes, "{after:#?}");
    assert!(moved_tx("EVENT") >= publishes * subscribers, "EVENT {} {after:#?}", moved_tx("EVENT"));
    assert!(moved_tx("WELCOME") >= sessions && moved_tx("GOODBYE") >= sessions, "{after:#?}");
    assert!(moved_tx("REGISTERED") >= 1.0 && moved_tx("SUBSCRIBED") >= subscribers, "{after:#?}");
    // Nothing this traffic does is answered with ERROR.
    assert_eq!(moved_tx("ERROR"), 0.0, "{after:#?}");
    // Each message at least a few bytes.
    let sent: f64 = ["WELCOME", "RESULT", "INVOCATION", "EVENT", "PUBLISHED", "REGISTERED", "SUBSCRIBED", "GOODBYE"]
        .iter()
        .map(|t| moved_tx(t))
        .sum();
    assert!(get(&after, bytes) - get(&before, bytes) >= 3.0 * sent, "{after:#?}");
}
