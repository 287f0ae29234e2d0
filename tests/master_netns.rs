//! The master and two managed nodes on three hosts: each in its own network
//! namespace (veth pairs on a bridge in a fourth namespace that the test
//! creates and removes; no interface in the root namespace). The nodes
//! report their cluster addresses (`node-cluster-ip` in their keys), and the
//! master builds an application realm on a worker group over both nodes
//! behind a web cluster on node1: the router link between the workers and
//! the proxy's connection to node2's worker go to the other host's address
//! (the reference never records cluster addresses, §8.1, so its proxy
//! connections have no host). The clients run inside node1's namespace.

mod common;

use std::path::Path;
use std::process::Command;

use common::netns::Topology;
use common::{junction_bin, run_python_in, spawn_until_ready, temp_dir, JunctionProcess};

const SUPERUSER_SEED: &str = "4d0f2f1e5bd1a7c55dd3a6f1d1c7e3b0a99be0e6c7a3f0d2e5b8c1a4f7e0d3b6";
const GLOBAL: &str = "com.crossbario.fabric";
const MASTER_PORT: u16 = 9000;

fn in_ns(ns: &str, args: &[&std::ffi::OsStr]) -> Command {
    let mut c = Command::new("ip");
    c.args(["netns", "exec", ns]).arg(junction_bin()).args(args);
    c
}

fn edge_init(appdir: &Path, id: &str, ip: &str) -> (std::path::PathBuf, String) {
    let out = Command::new(junction_bin())
        .args(["edge", "init", "--appdir"])
        .arg(appdir)
        .env("CROSSBAR_NODE_ID", id)
        .env("CROSSBAR_NODE_CLUSTER_IP", ip)
        .output()
        .expect("run edge init");
    assert!(out.status.success(), "edge init: {}", String::from_utf8_lossy(&out.stderr));
    let cbdir = appdir.join(".crossbar");
    let public = std::fs::read_to_string(cbdir.join("key.pub")).expect("key.pub");
    let key = public.lines().find_map(|l| l.strip_prefix("public-key-ed25519: ")).expect("key").to_owned();
    let p = cbdir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).expect("config")).expect("json");
    cfg["controller"]["fabric"]["heartbeat"] = serde_json::json!({"startup_delay": 0, "heartbeat_period": 1});
    std::fs::write(&p, serde_json::to_vec_pretty(&cfg).expect("json")).expect("write");
    (cbdir, key)
}

fn py(ns: &str, args: &[&str], procs: &[&JunctionProcess]) -> serde_json::Value {
    match run_python_in(Some(ns), "master.py", args) {
        Ok(v) => v,
        Err(e) => {
            let logs: Vec<String> = procs.iter().map(|p| p.stderr()).collect();
            panic!("{e}\n--- processes ---\n{}", logs.join("\n-----\n"))
        }
    }
}

#[test]
fn master_and_two_nodes_on_three_hosts_build_a_router_cluster_behind_a_web_cluster() {
    let t = Topology::new(3);
    let dir = temp_dir("master-netns");
    let su_key = cluster_membership::NodeKey::from_seed(cluster_membership::parse_hex32(SUPERUSER_SEED).expect("seed"));
    let su = dir.join("superuser.pub");
    std::fs::write(&su, format!("public-key-ed25519: {}\n", su_key.public_hex())).expect("write");
    let (cb1, key1) = edge_init(&dir.join("node1"), "node1", &t.addr(1));
    let (cb2, key2) = edge_init(&dir.join("node2"), "node2", &t.addr(2));

    let listen = format!("{}:{MASTER_PORT}", t.addr(0));
    let mut cmd = in_ns(
        &t.nodes[0],
        &[
            "master".as_ref(),
            "start".as_ref(),
            "--cbdir".as_ref(),
            dir.join("master").as_os_str(),
            "--listen".as_ref(),
            listen.as_ref(),
        ],
    );
    cmd.env("CROSSBAR_FABRIC_SUPERUSER", &su);
    let (master, _) =
        spawn_until_ready(cmd, "junction: master ready", dir.join("no-config")).unwrap_or_else(|e| panic!("{e}"));
    let url = format!("ws://{listen}/ws");
    let paired = py(
        &t.nodes[1],
        &[
            &url,
            GLOBAL,
            "json",
            "--scenario",
            "pair_two",
            "--superuser",
            SUPERUSER_SEED,
            "--name",
            "mr-hosts",
            "--node-pubkey",
            &key1,
            "--node-pubkey2",
            &key2,
        ],
        &[&master],
    );
    assert_eq!(paired["ok"], true, "{paired}");
    let start_edge = |cb: &Path, ns: &str| {
        let mut c = in_ns(
            ns,
            &[
                "edge".as_ref(),
                "start".as_ref(),
                "--cbdir".as_ref(),
                cb.as_os_str(),
                "--color".as_ref(),
                "false".as_ref(),
            ],
        );
        c.env("CROSSBAR_FABRIC_URL", &url);
        spawn_until_ready(c, "junction: ready", dir.join("no-config")).unwrap_or_else(|e| panic!("{e}")).0
    };
    let node1 = start_edge(&cb1, &t.nodes[1]);
    let node2 = start_edge(&cb2, &t.nodes[2]);
    let r = py(
        &t.nodes[1],
        &[
            &url,
            GLOBAL,
            "cbor",
            "--scenario",
            "arealm_flow",
            "--superuser",
            SUPERUSER_SEED,
            "--name",
            "mr-hosts",
            "--web-port",
            "8190",
            "--timeout",
            "120",
        ],
        &[&master, &node1, &node2],
    );
    assert_eq!(r["arealm_status"], "RUNNING", "{r}");
    assert_eq!(r["call"], 5, "a call from a client on one worker to a callee on the other host: {r}");
    assert_eq!(r["event"], "hello");
    assert_eq!(r["session_count"], 2);
    assert_eq!(r["after_kill_sessions"], 4, "{r}");
    assert_eq!(r["node1_workers_after"], serde_json::json!([]), "{r}");
    assert_eq!(r["arealm_after"], "STOPPED");
}
