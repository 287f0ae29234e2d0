//! Router clusters end to end: one realm served by three router workers
//! (child processes of one node supervisor) linked with `rlinks`, driven by
//! the real Autobahn|Python client with clients attached to different
//! workers (`tests/python/cluster.py`).
//!
//! Every worker lists all three workers in its `rlinks`, itself included:
//! the link to itself is noticed and parked, and the two links between each
//! pair are deduplicated to one.

mod common;

use std::sync::OnceLock;
use std::time::Duration;

use common::{
    kill, once_or_fail, python, start_in_dir_with_ports, temp_dir, wait_worker_restarted, JunctionProcess, LoadRun,
    SERIALIZERS,
};
use serde_json::{json, Value};

/// An `rlinks` entry to 127.0.0.1:`port`.
fn rlink(id: &str, port: u16) -> Value {
    json!({
        "id": id,
        "realm": "realm1",
        "transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": port}},
        "forward_local_events": true,
        "forward_remote_events": false,
        "forward_local_invocations": true,
        "forward_remote_invocations": false
    })
}

/// `anonymous` may do everything; callers and publishers are disclosed
/// under `com.cluster.disclosed.`.
fn role() -> Value {
    let all = json!({"call": true, "register": true, "publish": true, "subscribe": true});
    json!({
        "name": "anonymous",
        "permissions": [
            {"uri": "", "match": "prefix", "allow": all, "disclose": {"caller": false, "publisher": false}},
            {"uri": "com.cluster.disclosed.", "match": "prefix", "allow": all,
             "disclose": {"caller": true, "publisher": true}}
        ]
    })
}

/// Three router workers on `ports[0..3]`, each linked to all three, and
/// (with a fourth port) a proxy worker balancing realm1 round-robin over
/// the three.
fn cluster_config(ports: &[u16]) -> Value {
    let routers = &ports[..3];
    let links: Vec<Value> = routers.iter().enumerate().map(|(i, p)| rlink(&format!("to-r{i}"), *p)).collect();
    let mut workers: Vec<Value> = routers
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({
                "type": "router",
                "id": format!("r{i}"),
                "options": {"shards": 1},
                "realms": [{"name": "realm1", "roles": [role()], "rlinks": links}],
                "transports": [{
                    "type": "rawsocket",
                    "endpoint": {"type": "tcp", "port": p, "interface": "127.0.0.1"},
                    "serializers": SERIALIZERS
                }]
            })
        })
        .collect();
    if let Some(proxy_port) = ports.get(3) {
        let conn = |p: u16| {
            json!({"realm": "realm1", "transport": {"type": "rawsocket",
                   "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": p}}})
        };
        workers.push(json!({
            "type": "proxy",
            "id": "p0",
            "options": {"shards": 1, "balance": "round_robin"},
            "routes": {"realm1": {"*": ["c0", "c1", "c2"]}},
            "connections": {"c0": conn(routers[0]), "c1": conn(routers[1]), "c2": conn(routers[2])},
            "transports": [{
                "type": "rawsocket",
                "endpoint": {"type": "tcp", "port": proxy_port, "interface": "127.0.0.1"},
                "serializers": SERIALIZERS
            }]
        }));
    }
    json!({"version": 2, "workers": workers})
}

struct Cluster {
    node: JunctionProcess,
    ports: Vec<u16>,
}

impl Cluster {
    fn url(&self, i: usize) -> String {
        format!("rs://127.0.0.1:{}", self.ports[i])
    }

    fn python(&self, scenario: &str, serializer: &str) -> Value {
        let (a, b, c) = (self.url(0), self.url(1), self.url(2));
        self.python_at(scenario, serializer, [a, b, c])
    }

    fn python_at(&self, scenario: &str, serializer: &str, urls: [String; 3]) -> Value {
        let [a, b, c] = urls;
        self.node.python("cluster.py", &[&a, "realm1", serializer, "--scenario", scenario, "--peer", &b, "--peer", &c])
    }
}

fn cluster() -> &'static Cluster {
    static C: OnceLock<Result<Cluster, String>> = OnceLock::new();
    once_or_fail(&C, || {
        let dir = temp_dir("cluster");
        let (node, ports, _) = start_in_dir_with_ports(&dir, 4, cluster_config);
        Cluster { node, ports }
    })
}

#[test]
fn pubsub_across_three_workers() {
    for ser in ["json", "msgpack", "cbor"] {
        let r = cluster().python("pubsub", ser);
        assert_eq!(r["ok"], true, "{ser}: {r}");
        assert_eq!(r["same_subscription_id"], true, "{ser}: {r}");
        assert_eq!(r["lookup_agrees"], true, "{ser}: {r}");
        assert_eq!(r["in_order_exactly_once"], json!({"local": true, "b": true, "c": true}), "{ser}: {r}");
        assert_eq!(r["prefix_events"], json!([0, 1, 2, 3, 4]), "{ser}: {r}");
        assert!(r["prefix_topic"].as_str().is_some_and(|t| t.ends_with(".p.sub")), "{ser}: {r}");
        assert_eq!(r["wildcard_events"], json!([0, 1, 2, 3, 4]), "{ser}: {r}");
        assert!(r["wildcard_topic"].as_str().is_some_and(|t| t.ends_with(".w.x")), "{ser}: {r}");
        assert_eq!(r["publisher_not_disclosed"], true, "{ser}: {r}");
        assert_eq!(r["c_got"], json!(["only-c", "not-b", "all"]), "{ser}: {r}");
        assert_eq!(r["b_got"], json!(["all"]), "{ser}: {r}");
        assert_eq!(r["local_got"], json!(["not-b", "all"]), "{ser}: {r}");
        assert_eq!(r["disclosed_publisher_ok"], true, "{ser}: {r}");
        assert_eq!(r["from_c"], json!(["from-c", "from-c", "from-c"]), "{ser}: {r}");
        assert_eq!(r["unsubscribe_converged"], true, "{ser}: {r}");
    }
}

#[test]
fn rpc_across_three_workers() {
    for ser in ["json", "msgpack", "cbor"] {
        let r = cluster().python("rpc", ser);
        assert_eq!(r["ok"], true, "{ser}: {r}");
        assert_eq!(r["echo_ok"], true, "{ser}: {r}");
        assert_eq!(r["who_undisclosed"], Value::Null, "{ser}: {r}");
        assert_eq!(r["who_disclosed_ok"], true, "{ser}: {r}");
        assert!(r["fail_error"].as_str().is_some_and(|e| e.ends_with(".error.bad")), "{ser}: {r}");
        assert_eq!(r["fail_args"], json!(["bad thing", 42]), "{ser}: {r}");
        assert_eq!(r["progress"], json!([0, 1, 2, 3, 4]), "{ser}: {r}");
        assert_eq!(r["progressive_result"], "done", "{ser}: {r}");
        assert_eq!(r["timeout_error"], "wamp.error.timeout", "{ser}: {r}");
        assert_eq!(r["cancel_error"], "cancelled", "{ser}: {r}");
        assert_eq!(r["callee_interrupted"], 2, "{ser}: {r}");
        assert_eq!(r["roundrobin_counts"], json!({"b": 3, "c": 3}), "{ser}: {r}");
        assert_eq!(r["pattern_exact"], "exact", "{ser}: {r}");
        assert_eq!(r["pattern_prefix"], "prefix", "{ser}: {r}");
        assert_eq!(r["pattern_wildcard_vs_prefix"], "prefix", "{ser}: {r}");
        assert_eq!(r["missing_error"], "wamp.error.no_such_procedure", "{ser}: {r}");
        assert_eq!(r["after_leave_error"], "wamp.error.no_such_procedure", "{ser}: {r}");
    }
}

/// All clients through one proxy worker that balances realm1 round-robin
/// over the three router workers: they see one router.
#[test]
fn through_a_proxy_the_cluster_is_one_router() {
    let c = cluster();
    let proxy = c.url(3);
    let urls = || [proxy.clone(), proxy.clone(), proxy.clone()];
    let r = c.python_at("pubsub", "msgpack", urls());
    assert_eq!(r["in_order_exactly_once"], json!({"local": true, "b": true, "c": true}), "{r}");
    assert_eq!(r["c_got"], json!(["only-c", "not-b", "all"]), "{r}");
    assert_eq!(r["from_c"], json!(["from-c", "from-c", "from-c"]), "{r}");
    assert_eq!(r["same_subscription_id"], true, "{r}");
    let r = c.python_at("rpc", "json", urls());
    assert_eq!(r["echo_ok"], true, "{r}");
    assert_eq!(r["roundrobin_counts"], json!({"b": 3, "c": 3}), "{r}");
    assert_eq!(r["progress"], json!([0, 1, 2, 3, 4]), "{r}");
    assert_eq!(r["cancel_error"], "cancelled", "{r}");
    assert_eq!(r["after_leave_error"], "wamp.error.no_such_procedure", "{r}");
    let r = c.python_at("meta", "json", urls());
    assert_eq!(r["lists_agree"], true, "{r}");
    assert_eq!(r["killed_reason"], "com.cluster.kicked", "{r}");
    assert_eq!(r["testament"], json!(["bye"]), "{r}");
}

#[test]
fn session_meta_api_covers_the_cluster() {
    let r = cluster().python("meta", "json");
    assert_eq!(r["ok"], true, "{r}");
    assert_eq!(r["counts_agree"], true, "{r}");
    assert_eq!(r["count_covers"], true, "{r}");
    assert_eq!(r["lists_agree"], true, "{r}");
    assert_eq!(r["get_remote_session"], true, "{r}");
    assert_eq!(r["get_remote_authrole"], "anonymous", "{r}");
    assert_eq!(r["killed_reason"], "com.cluster.kicked", "{r}");
    assert_eq!(r["testament"], json!(["bye"]), "{r}");
    assert_eq!(r["gone_everywhere"], true, "{r}");
}

/// Calls from worker 0 to round-robin callees on workers 1 and 2 in a loop;
/// worker 2 is SIGKILLed. No call hangs (calls in flight to it fail at once
/// with `wamp.error.canceled`, later ones go to the callee on worker 1); the
/// supervisor restarts it, it resyncs with the others without their
/// restart, and its callee (reconnected) is called again.
#[test]
fn a_worker_dies_under_load_and_the_cluster_converges_again() {
    let dir = temp_dir("cluster-kill");
    let (node, ports, pids) = start_in_dir_with_ports(&dir, 3, cluster_config);
    let url = |i: usize| format!("rs://127.0.0.1:{}", ports[i]);
    let (u0, u1, u2) = (url(0), url(1), url(2));
    let load = LoadRun::start(
        "cluster.py",
        &[&u0, "realm1", "msgpack", "--scenario", "load", "--peer", &u1, "--peer", &u2, "--bound", "5"],
    );
    load.wait_ready(Duration::from_secs(60));
    std::thread::sleep(Duration::from_secs(1));
    let victim = pids[&2];
    kill(victim, libc::SIGKILL);
    let new_pid = wait_worker_restarted(&node, 2, Duration::from_secs(30));
    assert_ne!(new_pid, victim);
    // The restarted worker learns the cluster's state, and the others learn
    // its subscriptions, without a restart of the others.
    let conv = python("cluster.py", &[&u2, "realm1", "json", "--scenario", "converge", "--peer", &u0, "--peer", &u1]);
    assert_eq!(conv["ok"], true, "{conv}");
    let before = load.mark(Duration::from_secs(10));
    std::thread::sleep(Duration::from_secs(2));
    let stats = load.stop(Duration::from_secs(30));
    eprintln!("load across the kill: {before} -> {stats}");
    assert_eq!(stats["hangs"], 0, "{stats}");
    let errors = stats["errors"].as_object().expect("errors").clone();
    for (k, _) in &errors {
        assert!(
            ["wamp.error.canceled", "wamp.error.no_such_procedure"].contains(&k.as_str()),
            "unexpected error {k}: {stats}"
        );
    }
    assert!(stats["reconnects"].as_u64().unwrap_or(0) >= 1, "the callee on the killed worker reconnects: {stats}");
    let served_after = stats["served"][&u2].as_u64().unwrap_or(0);
    let served_before = before["served"][&u2].as_u64().unwrap_or(0);
    assert!(served_after > served_before, "the restarted worker's callee is called again: {before} -> {stats}");
    assert!(stats["ok"].as_u64().unwrap_or(0) > before["ok"].as_u64().unwrap_or(0), "{stats}");
}
