//! Operating a managed node through the master, end to end: `junction
//! master start` and `junction edge start` as processes, driven by
//! Autobahn|Python management clients (`tests/python/master_ops.py`):
//! worker logs (`remote.node.get_worker_log`), message tracing
//! (`remote.tracing.*`, with application clients calling and publishing
//! while a trace runs), the web service API of proxy workers
//! (`remote.proxy.*_web_transport_service*`, checked over HTTP) and the
//! process APIs of the node and its workers (`remote.node.get_system_stats`,
//! `remote.worker.set_cpu_affinity`, ..., checked against `/proc`).

mod common;

use std::path::Path;

use common::{free_port, junction_bin, temp_dir};
use serde_json::json;

use common::master::{start_edge, start_master, superuser_pub, url, GLOBAL, SUPERUSER_SEED};

/// `junction edge init` as node1; the cbdir and the node's public key.
fn edge_init(appdir: &Path) -> (std::path::PathBuf, String) {
    common::master::edge_init(appdir, "node1")
}

#[test]
fn worker_logs_tracing_and_web_services_through_the_master() {
    let dir = temp_dir("master-ops");
    let su = superuser_pub(&dir);
    let (cbdir, node_key) = edge_init(&dir.join("node1"));
    let app_port = free_port();
    common::master::set_app_worker(&cbdir, app_port, 1, |cfg| {
        cfg["controller"]["options"]["worker_log_lines"] = json!(200);
    });

    let port = free_port();
    let master = start_master(&dir.join("master"), port, &su);
    common::master::pair(&master, port, "ops-mr", &node_key);
    let node = start_edge(&cbdir, port);
    let app_url = format!("rs://127.0.0.1:{app_port}");
    let web_port = free_port().to_string();
    let r = common::run_python(
        "master_ops.py",
        &[
            &url(port),
            GLOBAL,
            "msgpack",
            "--scenario",
            "ops",
            "--superuser",
            SUPERUSER_SEED,
            "--name",
            "ops-mr",
            "--app-url",
            &app_url,
            "--web-port",
            &web_port,
            "--timeout",
            "90",
        ],
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n--- node ---\n{}\n--- master ---\n{}",
            common::tail(&node.stderr(), 6000),
            common::tail(&master.stderr(), 3000)
        )
    });

    // Worker logs: the worker's own lines (captured from its stderr), bounded.
    let l = &r["logs"];
    assert_eq!(l["is_list"], true, "{l}");
    assert_eq!(l["has_listening"], true, "the worker's start-up lines are there: {l}");
    assert_eq!(l["refused"], "wamp.error.no_such_realm", "{l}");
    assert_eq!(l["live_log"], json!(["node1", "app1"]), "the refusal reached remote.worker.on_worker_log: {l}");
    assert_eq!(l["at_most_ring"], true, "controller.options.worker_log_lines bounds it: {l}");
    assert_eq!(l["limit_1"], 1);
    assert_eq!(l["kw_limit"], 2);
    assert_eq!(l["default_limit_ok"], true);
    assert_eq!(
        l["errors"],
        json!({"no_worker": "crossbar.error.no_such_worker", "bad_limit": "wamp.error.invalid_argument",
                                   "negative": "wamp.error.invalid_argument", "bad_id": "wamp.error.invalid_argument"}),
        "{l}"
    );
    // The node's own stderr still shows the worker's lines.
    assert!(node.stderr().contains("listening"), "worker lines still reach the node's log");

    // Tracing.
    let mt = &r["mtrace"];
    assert_eq!(mt["created"]["status"], "stopped", "{mt}");
    assert_eq!(mt["created"]["eligible_reader_roles"], json!(["owner"]));
    assert_eq!(mt["traces"], json!(["mt1"]));
    assert_eq!(mt["started_ids"], json!(["mt1"]), "{mt}");
    assert_eq!(mt["failed"], json!([["node1", "ghost", "crossbar.error.no_such_worker"]]), "{mt}");
    assert_eq!(mt["worker_trace"], "running");
    assert_eq!(mt["data_app1"], json!([true, true]), "the worker's records, the client's CALL among them: {mt}");
    assert_eq!(mt["data_ghost"], false);
    assert_eq!(mt["stream"], json!(["node1", "app1", "mt1", true, true, true]), "on_trace_data batches: {mt}");
    assert_eq!(
        mt["errors"],
        json!({"again": "crossbar.error.already_running", "delete_running": "crossbar.error.cannot_delete",
               "create_again": "crossbar.error.already_exists", "unknown_node": "crossbar.error.no_such_object",
               "bad_workers": "wamp.error.invalid_argument", "unknown": "crossbar.error.no_such_object"}),
        "{mt}"
    );
    assert_eq!(mt["stopped_ids"], json!(["mt1"]));
    assert_eq!(mt["status_after_stop"], "stopping_failed", "the ghost worker could not be reached: {mt}");
    assert_eq!(mt["worker_trace_after"], "stopped");
    assert_eq!(mt["traces_after_delete"], json!([]));
    assert_eq!(mt["event_ids"], json!(["mt1"]));
    let t = &r["tracing"];
    assert_eq!(t["before"], json!([]), "{t}");
    assert_eq!(
        t["started"],
        json!({"id": "t1", "status": "running", "node_id": "node1", "worker_id": "app1", "next_seq": 0}),
        "{t}"
    );
    assert_eq!(
        t["trace_keys"],
        json!([
            "ended",
            "id",
            "next_period",
            "next_seq",
            "node_id",
            "options",
            "persistent_id",
            "records",
            "runtime",
            "started",
            "status",
            "worker_id"
        ])
    );
    assert_eq!(t["running"], json!(["t1"]));
    assert_eq!(t["call_result"], 42);
    for pair in [
        "rx:Call",
        "tx:Invocation",
        "rx:Yield",
        "tx:Result",
        "rx:Register",
        "tx:Registered",
        "rx:Subscribe",
        "tx:Subscribed",
        "rx:Publish",
        "tx:Event",
        "tx:Published",
    ] {
        assert!(t["pairs"].as_array().is_some_and(|p| p.contains(&json!(pair))), "{pair} traced: {t}");
    }
    assert_eq!(t["uris"], json!(["com.example.double", "com.example.topic"]), "{t}");
    assert_eq!(t["seq_contiguous"], true);
    assert_eq!(
        t["record_keys"],
        json!([
            "authid",
            "authrole",
            "correlation",
            "correlation_is_anchor",
            "correlation_is_last",
            "correlation_uri",
            "direction",
            "enc_algo",
            "enc_key",
            "enc_serializer",
            "msg_type",
            "pc",
            "realm",
            "seq",
            "serializations",
            "session_id",
            "ts",
            "uri"
        ])
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
    assert_eq!(
        t["started_event"],
        json!(["node1", "app1", "t1"]),
        "on_trace_started reaches the management realm: {t}"
    );
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
        ("unknown_worker", "crossbar.error.no_such_worker"),
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
        assert_eq!(
            x["started"],
            json!({"transport_id": "web1", "path": "extra", "config": {"type": "json", "value": {"added": "at run time"}}})
        );
        assert_eq!(
            x["extra_after_start"],
            json!([200, {"added": "at run time"}]),
            "the running transport serves it: {api}: {x}"
        );
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

/// The CPU ids of a kernel CPU list (`0-3,8`).
fn cpu_list(text: &str) -> Vec<u64> {
    let mut out = Vec::new();
    for part in text.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => out.extend(a.parse::<u64>().unwrap()..=b.parse::<u64>().unwrap()),
            None => out.push(part.parse().unwrap()),
        }
    }
    out
}

/// A `key: value` line of `/proc/<pid>/status`.
fn proc_status(pid: u64, key: &str) -> String {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("{key} in /proc/{pid}/status"))
        .trim()
        .to_owned()
}

/// The CPUs every thread of process `pid` may run on (each thread's set).
fn thread_affinities(pid: u64) -> Vec<Vec<u64>> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("tasks")
        .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("status")).ok())
        .filter_map(|t| t.lines().find_map(|l| l.strip_prefix("Cpus_allowed_list:")).map(cpu_list))
        .collect()
}

#[test]
fn process_apis_of_the_node_and_its_workers() {
    let dir = temp_dir("master-process");
    let su = superuser_pub(&dir);
    let (cbdir, node_key) = edge_init(&dir.join("node1"));
    let app_port = free_port();
    common::master::set_app_worker(&cbdir, app_port, 2, |_| {});
    let port = free_port();
    let master = start_master(&dir.join("master"), port, &su);
    common::master::pair(&master, port, "proc-mr", &node_key);
    let node = start_edge(&cbdir, port);
    let r = common::run_python(
        "master_ops.py",
        &[
            &url(port),
            GLOBAL,
            "cbor",
            "--scenario",
            "process",
            "--superuser",
            SUPERUSER_SEED,
            "--name",
            "proc-mr",
            "--app-url",
            "rs://127.0.0.1:1",
            "--timeout",
            "90",
        ],
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n--- node ---\n{}\n--- master ---\n{}",
            common::tail(&node.stderr(), 6000),
            common::tail(&master.stderr(), 3000)
        )
    });

    let online =
        cpu_list(&std::fs::read_to_string("/sys/devices/system/cpu/online").expect("online CPUs")).len() as u64;
    let meminfo_total = proc_status_like("/proc/meminfo", "MemTotal") * 1024;
    let exe = std::fs::canonicalize(junction_bin()).expect("binary");
    let node_pid = u64::from(node.pid());

    // Checks every process answers alike; `pid` is the process's.
    let common_checks = |name: &str, x: &serde_json::Value, pid: u64, kind: &str| {
        assert_eq!(x["cpu_count"], online, "{name}: get_cpu_count is the online CPUs: {x}");
        assert!(
            x["physical"].is_null() || x["physical"].as_u64().is_some_and(|p| p >= 1 && p <= online),
            "{name}: {x}"
        );
        let cpus = x["cpus"].as_array().expect("get_cpus").clone();
        assert!(!cpus.is_empty() && cpus.len() as u64 <= online, "{name}: {x}");
        assert_eq!(x["affinity_before"], json!(cpus), "{name}: nothing pinned yet: {x}");
        let info = &x["info"];
        assert_eq!(info["pid"], pid, "{name}: get_process_info is the real process: {x}");
        assert_eq!(
            x["info_keys"],
            json!(["descriptors", "files", "pid", "sockets", "started", "threads", "uptime"]),
            "{name}"
        );
        assert!(info["threads"].as_u64().is_some_and(|t| t >= 2), "{name}: {info}");
        assert!(info["descriptors"].as_u64().is_some_and(|d| d >= 3), "{name}: {info}");
        assert!(
            info["sockets"]
                .as_array()
                .is_some_and(|s| s.iter().any(|s| s["type"] == "tcp4" && s["status"] == "ESTABLISHED")),
            "{name}: its uplink to the master is an open TCP socket: {info}"
        );
        assert_eq!(
            x["stats_keys"],
            json!([
                "cpu_percent",
                "mem_percent",
                "nonvoluntary",
                "pid",
                "reads",
                "resident",
                "status",
                "system",
                "time",
                "ts",
                "user",
                "virtual",
                "voluntary",
                "writes"
            ]),
            "{name}: Crossbar's ProcessInfo.get_stats keys"
        );
        let st = &x["stats"];
        assert_eq!(st["pid"], pid);
        let rss = proc_status(pid, "VmRSS").trim_end_matches(" kB").trim().parse::<u64>().expect("VmRSS") * 1024;
        let resident = st["resident"].as_u64().expect("resident");
        assert!(resident > rss / 2 && resident < rss * 2, "{name}: resident {resident} vs /proc VmRSS {rss}");
        assert!(st["virtual"].as_u64().is_some_and(|v| v >= resident), "{name}: {st}");
        assert!(st["voluntary"].as_u64().is_some_and(|v| v >= 1), "{name}: {st}");
        assert!(
            st["user"].as_f64().is_some() && st["system"].as_f64().is_some() && st["cpu_percent"].as_f64().is_some()
        );
        let mp = st["mem_percent"].as_f64().expect("mem_percent");
        assert!((mp - resident as f64 / meminfo_total as f64 * 100.0).abs() < 1.0, "{name}: {st}");
        let mon = &x["monitor"];
        assert_eq!(x["monitor_first_has_rates"], false, "{name}");
        assert_eq!(mon["type"], kind, "{name}: {mon}");
        assert_eq!(mon["pid"], pid);
        for k in ["cpu_user_per_sec", "cpu_system_per_sec", "num_ctx_switches_voluntary_per_sec", "read_ios_per_sec"] {
            assert!(mon.get(k).is_some(), "{name}: {k} from the second poll on: {mon}");
        }
        for k in ["tick", "timestamp", "last_period", "elapsed", "exe", "name", "cmdline", "created"] {
            assert!(x["monitor_verbose_keys"].as_array().unwrap().contains(&json!(k)), "{name}: verbose {k}");
        }
        assert!(x["uptime"].as_f64().is_some_and(|u| u > 0.0 && u < 300.0), "{name}: {x}");
        assert!(
            x["utcnow"].as_str().is_some_and(|t| t.ends_with('Z'))
                && x["started"].as_str().is_some_and(|t| t.ends_with('Z'))
        );
        for (k, v) in x["errors"].as_object().expect("errors") {
            assert_eq!(v, "wamp.error.invalid_argument", "{name}: {k}: {x}");
        }
        assert_eq!(x["errors"].as_object().unwrap().len(), 9);
        assert_eq!(x["affinity_after_errors"], x["affinity_before"], "{name}: refused changes changed nothing");
        assert_eq!(x["set_first"], json!([cpus[0]]), "{name}: {x}");
        assert_eq!(x["read_first"], json!([cpus[0]]), "{name}: read back");
        assert_eq!(x["set_all_absolute"], json!(cpus), "{name}: {x}");
        assert_eq!(x["read_all"], json!(cpus), "{name}: {x}");
        assert_eq!(x["set_last"], json!([cpus[cpus.len() - 1]]));
        assert_eq!(x["read_last"], json!([cpus[cpus.len() - 1]]));
        cpus
    };

    // The node controller.
    let n = &r["node"];
    assert_eq!(r["node_status"]["controller_pid"], node_pid);
    let node_cpus = common_checks("node", n, node_pid, "controller");
    // It was set back to all its CPUs.
    for set in thread_affinities(node_pid) {
        assert_eq!(json!(set), json!(node_cpus), "every node thread is back on every CPU");
    }
    let s = &n["system"];
    assert_eq!(n["system_first_has_rates"], false);
    let keys = &n["system_keys"];
    for k in [
        "user",
        "nice",
        "system",
        "idle",
        "iowait",
        "irq",
        "softirq",
        "steal",
        "guest",
        "guest_nice",
        "freq",
        "ctx_switches",
        "interrupts",
        "soft_interrupts",
    ] {
        assert!(keys["cpu"].as_array().unwrap().contains(&json!(k)), "cpu.{k}: {keys}");
    }
    for k in
        ["total", "available", "percent", "used", "free", "active", "inactive", "buffers", "cached", "shared", "slab"]
    {
        assert!(keys["memory"].as_array().unwrap().contains(&json!(k)), "memory.{k}: {keys}");
    }
    for k in [
        "bytes_sent",
        "bytes_recv",
        "packets_sent",
        "packets_recv",
        "errin",
        "errout",
        "dropin",
        "dropout",
        "connection",
        "bytes_recv_per_sec",
    ] {
        assert!(keys["network"].as_array().unwrap().contains(&json!(k)), "network.{k}: {keys}");
    }
    for k in [
        "read_count",
        "write_count",
        "read_bytes",
        "write_bytes",
        "read_time",
        "write_time",
        "read_merged_count",
        "write_merged_count",
        "busy_time",
        "read_bytes_per_sec",
    ] {
        assert!(keys["disk"].as_array().unwrap().contains(&json!(k)), "disk.{k}: {keys}");
    }
    assert_eq!(s["memory"]["total"], meminfo_total, "memory.total is /proc/meminfo's MemTotal: {s}");
    assert!(s["memory"]["available"].as_u64().is_some_and(|a| a > 0 && a <= meminfo_total));
    assert!(s["network"]["bytes_recv"].as_u64().is_some_and(|b| b > 0), "loopback traffic at least: {s}");
    assert!(s["network"]["connection"]["AF_INET"].as_u64().is_some_and(|c| c >= 1), "{s}");
    let cpu_sum: f64 = ["user", "nice", "system", "idle", "iowait", "irq", "softirq", "steal"]
        .iter()
        .map(|k| s["cpu"][k].as_f64().unwrap())
        .sum();
    assert!((cpu_sum - 100.0).abs() < 1.5, "CPU percentages add up: {s}");
    let boot_uptime =
        std::fs::read_to_string("/proc/uptime").unwrap().split_whitespace().next().unwrap().parse::<f64>().unwrap();
    let up = s["uptime"].as_u64().expect("uptime") as f64 / 1e9;
    assert!(up <= boot_uptime && boot_uptime - up < 120.0, "uptime {up} s vs /proc/uptime {boot_uptime}");

    // Router worker app1: its own process, a child of the node.
    let app_pid = r["app1_worker"]["pid"].as_u64().expect("app1 pid");
    assert_ne!(app_pid, node_pid);
    assert_eq!(std::fs::canonicalize(format!("/proc/{app_pid}/exe")).expect("exe"), exe);
    assert_eq!(proc_status(app_pid, "PPid"), node_pid.to_string(), "the worker is the node's child");
    assert_eq!(r["app1_status"]["pid"], app_pid);
    assert_eq!(r["app1_status"]["id"], "app1");
    assert_eq!(r["app1_status"]["type"], "router");
    assert_eq!(r["app1_status"]["status"], "started");
    let app_cpus = common_checks("app1", &r["app1"], app_pid, "router");
    assert!(
        r["app1"]["info"]["sockets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["type"] == "tcp4" && s["status"] == "LISTEN" && s["local"] == format!("127.0.0.1:{app_port}")),
        "app1 listens on its transport: {}",
        r["app1"]["info"]
    );
    assert_eq!(r["app1_pythonpath"], json!([]));
    // Left on its last CPU: every thread of the worker (both shards, the uplink, ...) is.
    let last = app_cpus[app_cpus.len() - 1].as_u64().unwrap();
    let sets = thread_affinities(app_pid);
    assert!(sets.len() >= 3, "{sets:?}");
    for set in &sets {
        assert_eq!(set, &vec![last], "every thread of app1 is on CPU {last}: {sets:?}");
    }

    // Proxy worker px2, started at run time.
    let px_pid = r["px2_worker"]["pid"].as_u64().expect("px2 pid");
    assert_eq!(proc_status(px_pid, "PPid"), node_pid.to_string());
    assert_eq!(r["px2_status"]["pid"], px_pid);
    assert_eq!(r["px2_status"]["type"], "proxy");
    assert_eq!(r["px2_ready_event"], json!({"type": "proxy", "id": "px2", "pid": px_pid}), "on_worker_ready");
    assert_eq!(r["px2_status_at_ready"], "started");
    let px_cpus = common_checks("px2", &r["px2"], px_pid, "proxy");
    for set in thread_affinities(px_pid) {
        assert_eq!(json!(set), json!(px_cpus), "px2 set back to all its CPUs");
    }

    assert_eq!(
        r["errors"],
        json!({"unknown_worker": "crossbar.error.no_such_worker", "unknown_worker_set": "crossbar.error.no_such_worker",
               "unknown_router_worker": "crossbar.error.no_such_worker", "not_implemented": "wamp.error.no_such_procedure",
               "add_pythonpath": "crossbar.error.feature_unavailable", "add_pythonpath_bad": "wamp.error.invalid_argument",
               "no_worker_id": "wamp.error.invalid_argument", "unknown_node": "crossbar.error.no_such_object",
               "node_system_on_worker": "wamp.error.no_such_procedure"}),
        "{}",
        r["errors"]
    );
    // Process statistics monitoring, trigger_gc, node id, manhole,
    // profilers, worker shutdown, short names, absent worker kinds.
    let n = &r["native"];
    assert_eq!(n["monitoring_set"], serde_json::Value::Null, "{n}");
    assert_eq!(n["stats_set_event"], 0.2);
    let seqs: Vec<u64> = n["stats_seqs"].as_array().expect("seqs").iter().filter_map(|v| v.as_u64()).collect();
    assert!(seqs.len() == 3 && seqs.windows(2).all(|w| w[1] == w[0] + 1), "on_process_stats numbered: {n}");
    assert_eq!(n["stats_pid"], app_pid, "app1's own statistics");
    assert!(n["stats_after_off"].as_u64().expect("count") <= 1, "monitoring stops (one may be in flight): {n}");
    assert_eq!(n["node_stats_pid"], node_pid);
    assert!(n["gc_ms"].is_u64() && n["node_gc_ms"].is_u64(), "trigger_gc answers its duration in ms: {n}");
    assert_eq!(n["gc_event"], json!(["duration", "freed", "requester"]));
    assert_eq!(n["node_id"], "node1");
    assert_eq!(n["set_same_node_id"], serde_json::Value::Null);
    assert_eq!(n["manhole"], serde_json::Value::Null);
    assert_eq!(n["profilers"], json!([]));
    assert_eq!(n["realms_short"], n["realms_long"], "remote.router.get_realms is get_router_realms: {n}");
    assert_eq!(n["realms_long"], json!(["realm1"]));
    assert_eq!(n["components"], json!([]));
    assert_eq!(
        n["errors"],
        json!({"interval_bad": "wamp.error.invalid_argument", "interval_tiny": "wamp.error.invalid_argument",
               "set_other_node_id": "crossbar.error.invalid_configuration",
               "start_manhole": "crossbar.error.feature_unavailable", "stop_manhole": "crossbar.error.not_started",
               "start_profiler": "wamp.error.invalid_argument", "get_profile": "crossbar.error.no_such_object",
               "start_component": "crossbar.error.feature_unavailable", "docker": "crossbar.error.feature_unavailable",
               "container": "crossbar.error.feature_unavailable", "shutdown_unknown": "crossbar.error.no_such_worker"}),
        "{}",
        n["errors"]
    );
    assert!(n["workers_with_px3"].as_array().is_some_and(|w| w.contains(&json!("px3"))), "{n}");
    assert_eq!(n["shutdown"], serde_json::Value::Null);
    assert_eq!(n["shutdown_event"], json!(["when", "who"]));
    for k in ["workers_after_shutdown", "workers_later"] {
        assert!(!n[k].as_array().is_some_and(|w| w.contains(&json!("px3"))), "{k}: px3 stopped for good: {n}");
    }
    drop(node);
    drop(master);
}

/// A `key: value` line of a `/proc` file such as `/proc/meminfo` (the number).
fn proc_status_like(path: &str, key: &str) -> u64 {
    let text = std::fs::read_to_string(path).expect("read /proc");
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {path}"))
}
