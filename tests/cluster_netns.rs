//! A router cluster over three **nodes**, each in its own network
//! namespace: one `junction start` per namespace (a single router worker
//! with its own node key), linked with `rlinks` over a bridge that lives in
//! a fourth namespace, so no interface of the topology is in the root
//! namespace. The test creates and removes the namespaces itself; clients
//! run inside the namespaces too (`ip netns exec`), so no traffic leaves
//! them.
//!
//! Covered: publish/subscribe and RPC with clients on different nodes, and
//! a partition of one node (its bridge port down) that the others notice
//! (its subscriptions and registrations disappear) and that heals by itself
//! (they come back, and the partitioned node's own sessions survive).

mod common;

use std::path::Path;
use std::time::Duration;

use common::netns::Topology;
use common::{run_junction, run_python_in, temp_dir, try_start_in_dir_netns, JunctionProcess, LoadRun, SERIALIZERS};
use serde_json::{json, Value};

const PORT: u16 = 8080;

/// Node `i`'s config: one router worker serving realm1 on its address,
/// trusting the other nodes' keys, linked to every node (itself included).
fn node_config(t: &Topology, i: usize, keys: &[String]) -> Value {
    let links: Vec<Value> = (0..t.nodes.len())
        .map(|j| {
            json!({
                "id": format!("to-n{j}"),
                "realm": "realm1",
                "transport": {"type": "rawsocket",
                              "endpoint": {"type": "tcp", "host": t.addr(j), "port": PORT}},
                "ping_interval": 200,
                "ping_timeout": 1000,
                "reconnect_max": 1000
            })
        })
        .collect();
    let principals: serde_json::Map<String, Value> = keys
        .iter()
        .enumerate()
        .filter(|(j, _)| *j != i)
        .map(|(j, k)| (format!("node{j}"), json!({"authorized_keys": [k]})))
        .collect();
    json!({
        "version": 2,
        "controller": {"id": format!("node{i}")},
        "workers": [{
            "type": "router",
            "id": format!("node{i}"),
            "options": {"shards": 1},
            "realms": [{"name": "realm1", "roles": [{
                "name": "anonymous",
                "permissions": [{"uri": "", "match": "prefix",
                                 "allow": {"call": true, "register": true, "publish": true, "subscribe": true}}]
            }], "rlinks": links}],
            "transports": [{
                "type": "rawsocket",
                "endpoint": {"type": "tcp", "port": PORT, "interface": t.addr(i)},
                "serializers": SERIALIZERS,
                "auth": {"anonymous": {"type": "static", "role": "anonymous"},
                         "cryptosign-proxy": {"type": "static", "principals": principals}}
            }]
        }]
    })
}

/// The node key of node `i` configured in `dir` (created on first use).
fn node_key(t: &Topology, i: usize, dir: &Path) -> String {
    let config = dir.join("config.json");
    std::fs::write(&config, node_config(t, i, &[]).to_string()).expect("write config");
    let (status, out, err) =
        run_junction(&[std::ffi::OsStr::new("key"), "--config".as_ref(), config.as_os_str()], Duration::from_secs(30));
    assert!(status.is_some_and(|s| s.success()), "junction key: {err}");
    out.trim().to_owned()
}

fn py(ns: &str, args: &[&str]) -> Value {
    match run_python_in(Some(ns), "cluster.py", args) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn three_nodes_in_namespaces_act_as_one_router_and_heal_a_partition() {
    let t = Topology::new(3);
    let dirs: Vec<_> = (0..3).map(|i| temp_dir(&format!("netns-node{i}"))).collect();
    let keys: Vec<String> = dirs.iter().enumerate().map(|(i, d)| node_key(&t, i, d)).collect();
    assert!(keys.iter().all(|k| k.len() == 64), "{keys:?}");
    let mut nodes: Vec<JunctionProcess> = Vec::new();
    for (i, dir) in dirs.iter().enumerate().take(3) {
        let (p, _) = try_start_in_dir_netns(dir, &node_config(&t, i, &keys), Some(&t.nodes[i]))
            .unwrap_or_else(|e| panic!("node{i}: {e}"));
        nodes.push(p);
    }
    let (u0, u1, u2) = (t.url(0), t.url(1), t.url(2));
    let (n0, n1, n2) = (t.nodes[0].as_str(), t.nodes[1].as_str(), t.nodes[2].as_str());

    let r = py(n0, &[&u0, "realm1", "msgpack", "--scenario", "pubsub", "--peer", &u1, "--peer", &u2]);
    assert_eq!(r["in_order_exactly_once"], json!({"local": true, "b": true, "c": true}), "{r}");
    assert_eq!(r["same_subscription_id"], true, "{r}");
    assert_eq!(r["from_c"], json!(["from-c", "from-c", "from-c"]), "{r}");
    let r = py(n1, &[&u1, "realm1", "json", "--scenario", "rpc", "--peer", &u0, "--peer", &u2]);
    assert_eq!(r["echo_ok"], true, "{r}");
    assert_eq!(r["progress"], json!([0, 1, 2, 3, 4]), "{r}");
    assert_eq!(r["roundrobin_counts"], json!({"b": 3, "c": 3}), "{r}");
    assert_eq!(r["cancel_error"], "cancelled", "{r}");
    let r = py(n2, &[&u2, "realm1", "cbor", "--scenario", "meta", "--peer", &u0, "--peer", &u1]);
    assert_eq!(r["lists_agree"], true, "{r}");
    assert_eq!(r["killed_reason"], "com.cluster.kicked", "{r}");

    // A session on node 2 holds a subscription and a registration.
    let topic = format!("com.netns.held.{}", std::process::id());
    let holder =
        LoadRun::start_in(Some(n2), "cluster.py", &[&u2, "realm1", "json", "--scenario", "hold", "--topic", &topic]);
    holder.wait_ready(Duration::from_secs(30));
    let expect = |ns: &str, url: &str, count: &str, within: &str| {
        py(
            ns,
            &[url, "realm1", "json", "--scenario", "expect", "--topic", &topic, "--count", count, "--within", within],
        )
    };
    let r = expect(n0, &u0, "1", "10");
    assert_eq!(r["call"], "held", "{r}");

    // Partition node 2: the others drop its state once its links time out.
    t.set_port(2, false);
    let r = expect(n0, &u0, "0", "20");
    assert_eq!(r["call_error"], "wamp.error.no_such_procedure", "{r}");
    eprintln!("partition noticed by node0 after {} ms", r["after_ms"]);
    let r = expect(n1, &u1, "0", "20");
    assert_eq!(r["call_error"], "wamp.error.no_such_procedure", "{r}");
    // The others still serve each other.
    let r = py(n0, &[&u0, "realm1", "json", "--scenario", "converge", "--peer", &u1]);
    assert_eq!(r["ok"], true, "{r}");

    // Heal: the links come back by themselves and everything converges.
    t.set_port(2, true);
    let r = expect(n0, &u0, "1", "30");
    assert_eq!(r["call"], "held", "{r}");
    eprintln!("partition healed at node0 after {} ms", r["after_ms"]);
    let r = expect(n1, &u1, "1", "30");
    assert_eq!(r["call"], "held", "{r}");
    let r = holder.stop(Duration::from_secs(20));
    assert_eq!(r["still_attached"], true, "the partitioned node's own session survives: {r}");
    for (i, n) in nodes.iter_mut().enumerate() {
        assert!(n.is_running(), "node{i} exited:\n{}", n.stderr());
    }
}
