//! Operating a managed node through the master, end to end: `junction
//! master start` and `junction edge start` as processes, driven by
//! Autobahn|Python management clients (`tests/python/master_ops.py`):
//! worker logs (`remote.node.get_worker_log`), message tracing
//! (`remote.tracing.*`, with application clients calling and publishing
//! while a trace runs) and the web service API of proxy workers
//! (`remote.proxy.*_web_transport_service*`, checked over HTTP).

mod common;

use std::path::Path;
use std::process::Command;

use common::{free_port, junction_bin, spawn_until_ready, temp_dir, JunctionProcess};
use serde_json::json;

const SUPERUSER_SEED: &str = "4d0f2f1e5bd1a7c55dd3a6f1d1c7e3b0a99be0e6c7a3f0d2e5b8c1a4f7e0d3b6";
const GLOBAL: &str = "com.crossbario.fabric";

fn superuser_pub(dir: &Path) -> std::path::PathBuf {
    let key = cluster_membership::NodeKey::from_seed(cluster_membership::parse_hex32(SUPERUSER_SEED).expect("seed"));
    let path = dir.join("superuser.pub");
    std::fs::write(&path, format!("creator: test\npublic-key-ed25519: {}\n", key.public_hex())).expect("write key.pub");
    path
}

fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/ws")
}

fn start_master(cbdir: &Path, port: u16, superuser: &Path) -> JunctionProcess {
    let mut cmd = Command::new(junction_bin());
    cmd.args(["master", "start", "--cbdir"]).arg(cbdir).args(["--listen", &format!("127.0.0.1:{port}")]);
    cmd.env("CROSSBAR_FABRIC_SUPERUSER", superuser);
    let (p, _) = spawn_until_ready(cmd, "junction: master ready", cbdir.join("no-config")).unwrap_or_else(|e| panic!("{e}"));
    p
}

/// `junction edge init` as node1; the cbdir and the node's public key.
fn edge_init(appdir: &Path) -> (std::path::PathBuf, String) {
    let out = Command::new(junction_bin())
        .args(["edge", "init", "--appdir"])
        .arg(appdir)
        .env("CROSSBAR_NODE_ID", "node1")
        .env("CROSSBAR_NODE_CLUSTER_IP", "127.0.0.1")
        .output()
        .expect("run edge init");
    assert!(out.status.success(), "edge init: {}", String::from_utf8_lossy(&out.stderr));
    let cbdir = appdir.join(".crossbar");
    let public = std::fs::read_to_string(cbdir.join("key.pub")).expect("key.pub");
    let key = public.lines().find_map(|l| l.strip_prefix("public-key-ed25519: ")).expect("public key").to_owned();
    (cbdir, key)
}

fn start_edge(cbdir: &Path, master_port: u16) -> JunctionProcess {
    let mut cmd = Command::new(junction_bin());
    cmd.args(["edge", "start", "--cbdir"]).arg(cbdir).args(["--color", "false"]);
    cmd.env("CROSSBAR_FABRIC_URL", url(master_port));
    let (p, _) = spawn_until_ready(cmd, "junction: ready", cbdir.join("no-config")).unwrap_or_else(|e| panic!("{e}"));
    p
}

#[test]
fn worker_logs_tracing_and_web_services_through_the_master() {
    let dir = temp_dir("master-ops");
    let su = superuser_pub(&dir);
    let (cbdir, node_key) = edge_init(&dir.join("node1"));
    let app_port = free_port();
    let cfg_path = cbdir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg_path).expect("config")).expect("json");
    cfg["controller"]["fabric"]["heartbeat"] = json!({"startup_delay": 0, "heartbeat_period": 1});
    cfg["controller"]["options"]["worker_log_lines"] = json!(200);
    cfg["workers"] = json!([{
        "type": "router", "id": "app1", "options": {"shards": 1},
        "realms": [common::realm("realm1", vec![common::allow_all_role("anonymous")])],
        "transports": [common::rawsocket_tcp(app_port)]
    }]);
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).expect("json")).expect("write config");

    let port = free_port();
    let master = start_master(&dir.join("master"), port, &su);
    let paired = master.python(
        "master.py",
        &[&url(port), GLOBAL, "json", "--scenario", "pair", "--superuser", SUPERUSER_SEED, "--name", "ops-mr", "--node-pubkey", &node_key],
    );
    assert_eq!(paired["ok"], true, "{paired}");
    let node = start_edge(&cbdir, port);
    let app_url = format!("rs://127.0.0.1:{app_port}");
    let web_port = free_port().to_string();
    let r = common::run_python(
        "master_ops.py",
        &[&url(port), GLOBAL, "msgpack", "--scenario", "ops", "--superuser", SUPERUSER_SEED, "--name", "ops-mr",
          "--app-url", &app_url, "--web-port", &web_port, "--timeout", "90"],
    )
    .unwrap_or_else(|e| panic!("{e}\n--- node ---\n{}\n--- master ---\n{}", common::tail(&node.stderr(), 6000), common::tail(&master.stderr(), 3000)));

    // Worker logs: the worker's own lines (captured from its stderr), bounded.
    let l = &r["logs"];
    assert_eq!(l["is_list"], true, "{l}");
    assert_eq!(l["has_listening"], true, "the worker's start-up lines are there: {l}");
    assert_eq!(l["at_most_ring"], true, "controller.options.worker_log_lines bounds it: {l}");
    assert_eq!(l["limit_1"], 1);
    assert_eq!(l["kw_limit"], 2);
    assert_eq!(l["default_limit_ok"], true);
    assert_eq!(l["errors"], json!({"no_worker": "crossbar.error.no_such_worker", "bad_limit": "wamp.error.invalid_argument",
                                   "negative": "wamp.error.invalid_argument", "bad_id": "wamp.error.invalid_argument"}), "{l}");
    // The node's own stderr still shows the worker's lines.
    assert!(node.stderr().contains("listening"), "worker lines still reach the node's log");

    // Tracing.
    let t = &r["tracing"];
    assert_eq!(t["before"], json!([]), "{t}");
    assert_eq!(t["started"], json!({"id": "t1", "status": "running", "node_id": "node1", "worker_id": "app1", "next_seq": 0}), "{t}");
    assert_eq!(
        t["trace_keys"],
        json!(["ended", "id", "next_period", "next_seq", "node_id", "options", "persistent_id", "records", "runtime", "started", "status", "worker_id"])
    );
    assert_eq!(t["running"], json!(["t1"]));
    assert_eq!(t["call_result"], 42);
    for pair in ["rx:Call", "tx:Invocation", "rx:Yield", "tx:Result", "rx:Register", "tx:Registered", "rx:Subscribe",
                 "tx:Subscribed", "rx:Publish", "tx:Event", "tx:Published"] {
        assert!(t["pairs"].as_array().is_some_and(|p| p.contains(&json!(pair))), "{pair} traced: {t}");
    }
    assert_eq!(t["uris"], json!(["com.example.double", "com.example.topic"]), "{t}");
    assert_eq!(t["seq_contiguous"], true);
    assert_eq!(
        t["record_keys"],
        json!(["authid", "authrole", "correlation", "correlation_is_anchor", "correlation_is_last", "correlation_uri", "direction",
               "enc_algo", "enc_key", "enc_serializer", "msg_type", "pc", "realm", "seq", "serializations", "session_id", "ts", "uri"])
    );
    assert_eq!(t["call_traced_with_caller"], true, "{t}");
    assert_eq!(t["invocation_to_callee"], true, "{t}");
    assert_eq!(t["window_seqs"], json!([1, 2]));
    assert_eq!(t["last_2"], 2);
    assert_eq!(t["get_status"], "running");
    assert_eq!(t["stopped_status"], "stopped");
    assert_eq!(t["no_growth_after_stop"], true, "{t}");
    assert_eq!(t["after_stop"], json!([]));
    assert_eq!(t["with_stopped"], json!(["t1"]));
    assert_eq!(t["started_event"], json!(["node1", "app1", "t1"]), "on_trace_started reaches the management realm: {t}");
    assert_eq!(t["stopped_event"], json!(["node1", "app1", "t1", "stopped"]));
    assert_eq!(t["t2_status"], "stopped", "a trace with a duration stops by itself");
    assert_eq!(t["t2_event"], "t2");
    let e = &t["errors"];
    for (k, uri) in [
        ("bad_level", "crossbar.error.invalid_configuration"),
        ("payload", "crossbar.error.invalid_configuration"),
        ("bad_options", "wamp.error.invalid_argument"),
        ("unknown_trace", "crossbar.error.no_such_object"),
        ("stop_unknown", "crossbar.error.no_such_object"),
        ("stop_stopped", "crossbar.error.not_running"),
        ("big_limit", "wamp.error.invalid_argument"),
        ("bad_seq", "wamp.error.invalid_argument"),
        ("unknown_worker", "wamp.error.no_such_procedure"),
        ("not_implemented", "wamp.error.no_such_procedure"),
        ("again", "crossbar.error.already_running"),
    ] {
        assert_eq!(e[k], uri, "{k}: {t}");
    }

    // Web services added to and removed from running web transports.
    let w = &r["web"];
    for (api, extra) in [("proxy", vec![]), ("router", vec!["ws"])] {
        let x = &w[api];
        let with = |mut v: Vec<&'static str>| {
            v.extend(extra.iter().copied());
            json!(v)
        };
        assert_eq!(x["services_before"], with(vec!["info"]), "{api}: {x}");
        assert_eq!(x["info_before"], json!([200, {"hello": "world"}]), "{api}: {x}");
        assert_eq!(x["extra_before"], 404, "{api}: {x}");
        assert_eq!(x["started"], json!({"transport_id": "web1", "path": "extra", "config": {"type": "json", "value": {"added": "at run time"}}}));
        assert_eq!(x["extra_after_start"], json!([200, {"added": "at run time"}]), "the running transport serves it: {api}: {x}");
        assert_eq!(x["info_after_start"], 200);
        assert_eq!(x["services_after_start"], with(vec!["extra", "info"]));
        assert_eq!(x["get_service"]["config"], json!({"type": "json", "value": {"added": "at run time"}}));
        assert_eq!(
            x["errors"],
            json!({"again": "crossbar.error.already_running", "no_transport": "crossbar.error.not_running",
                   "no_type": "wamp.error.invalid_argument", "bad_service": "crossbar.error.invalid_configuration",
                   "bad_path": "wamp.error.invalid_argument", "stop_unknown": "crossbar.error.not_running",
                   "get_unknown": "crossbar.error.not_running"}),
            "{api}: {x}"
        );
        assert_eq!(x["stopped"], json!({"transport_id": "web1", "path": "extra"}));
        assert_eq!(x["extra_after_stop"], 404, "removed from the running transport: {api}: {x}");
        assert_eq!(x["info_after_stop"], json!([200, {"hello": "world"}]));
        assert_eq!(x["services_after_stop"], with(vec!["info"]));
    }
    assert_eq!(w["proxy_not_web"], "crossbar.error.not_running", "{w}");
    assert_eq!(w["router_ws_after_changes"], true, "the WAMP path keeps working: {w}");
    drop(node);
    drop(master);
}
