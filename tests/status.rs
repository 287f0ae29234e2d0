//! `junction status --config FILE` and `--cbdir DIR` against running
//! nodes: a single router (in the node process: sessions per realm from
//! hand-written RawSocket sessions), a supervised node with two workers
//! (pids as the supervisor printed them, sessions per realm per worker and
//! in total from the workers' own status files; a worker killed with
//! SIGKILL shows its new pid, a restart and loses its sessions) and a
//! managed node (`junction edge start --cbdir DIR`, its master away); a
//! stopped node is reported as not running, a directory with no node is a
//! clear error.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{allow_all_role, free_port, kill, realm, run_junction, temp_dir, wait_worker_restarted};
use serde_json::json;

const DEADLINE: Duration = Duration::from_secs(20);

fn status(config: &Path) -> (bool, String) {
    status_with("--config", config)
}

/// `junction status <flag> <path>`: (success, stdout and stderr).
fn status_with(flag: &str, path: &Path) -> (bool, String) {
    let (st, out, err) = run_junction(&["status".as_ref(), flag.as_ref(), path.as_os_str()], Duration::from_secs(10));
    (st.is_some_and(|s| s.success()), format!("{out}{err}"))
}

/// True if `out` has exactly this line.
fn has_line(out: &str, line: &str) -> bool {
    out.lines().any(|l| l == line)
}

/// Runs `junction status` until its output satisfies `pred`.
fn status_until(config: &Path, what: &str, pred: impl Fn(bool, &str) -> bool) -> String {
    status_until_with("--config", config, what, pred)
}

fn status_until_with(flag: &str, path: &Path, what: &str, pred: impl Fn(bool, &str) -> bool) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let (ok, out) = status_with(flag, path);
        if pred(ok, &out) {
            return out;
        }
        assert!(Instant::now() < deadline, "status never showed {what}; last output:\n{out}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn raw_join(port: u16) -> std::net::TcpStream {
    common::rawsocket::join(port, "realm1")
}

fn router(id: &str, port: u16) -> serde_json::Value {
    json!({
        "type": "router", "id": id,
        "options": {"shards": 1, "pin_cores": false},
        "realms": [realm("realm1", vec![allow_all_role("anonymous")]), realm("realm2", vec![allow_all_role("anonymous")])],
        "transports": [{"type": "rawsocket", "endpoint": {"type": "tcp", "port": port, "interface": "127.0.0.1"}, "serializers": ["json"]}]
    })
}

#[test]
fn status_of_a_single_router_node_shows_sessions_per_realm() {
    let dir = temp_dir("status-single");
    let port = free_port();
    let (mut node, _) = common::try_start_in_dir(&dir, &json!({"version": 2, "workers": [router("r0", port)]}))
        .unwrap_or_else(|e| panic!("{e}"));
    let config = dir.join("config.json");
    let pid = node.pid();
    let _a = raw_join(port);
    let _b = raw_join(port);
    let out = status_until(&config, "two realm1 sessions", |ok, o| ok && o.contains("realm realm1: 2 sessions"));
    assert!(out.contains(&format!("node pid {pid}: running, up ")), "{out}");
    assert!(out.contains(&format!("worker 0 r0 (router): pid {pid}, started")), "{out}");
    assert!(out.contains("realm realm2: 0 sessions"), "{out}");
    assert!(dir.join(".junction").join("status.json").is_file());
    // --cbdir: the key's directory, or the config's (its .junction).
    for d in [dir.join(".junction"), dir.clone()] {
        let (ok, o) = status_with("--cbdir", &d);
        assert!(ok && o.contains(&format!("node pid {pid}: running")), "{}: {o}", d.display());
    }

    // Sessions leave: the count follows.
    drop(_a);
    status_until(&config, "one realm1 session", |ok, o| ok && o.contains("realm realm1: 1 sessions"));

    node.terminate(Duration::from_secs(10)).expect("node stopped");
    let (ok, out) = status(&config);
    assert!(!ok, "a stopped node must fail status:\n{out}");
    assert!(out.contains(&format!("node pid {pid}: not running")), "{out}");
}

#[test]
fn status_of_a_supervised_node_follows_worker_restarts() {
    let dir = temp_dir("status-supervised");
    let (p0, p1) = (free_port(), free_port());
    let (mut node, lines) =
        common::try_start_in_dir(&dir, &json!({"version": 2, "workers": [router("r0", p0), router("r1", p1)]}))
            .unwrap_or_else(|e| panic!("{e}"));
    let config = dir.join("config.json");
    let pids: Vec<u32> = lines.iter().filter_map(|l| common::worker_pid_line(l)).map(|(_, _, pid)| pid).collect();
    assert_eq!(pids.len(), 2, "{lines:?}");
    let out = status_until(&config, "both workers started", |ok, o| {
        ok && o.contains(&format!("worker 0 r0 (router): pid {}, started", pids[0]))
            && o.contains(&format!("worker 1 r1 (router): pid {}, started", pids[1]))
    });
    assert!(out.contains(&format!("node pid {}: running", node.pid())), "{out}");
    assert!(out.contains("restarts 0"), "{out}");

    // Sessions per realm, per worker and in total, from the workers' own files.
    let _a = raw_join(p0);
    let _b = raw_join(p0);
    let _c = raw_join(p1);
    let out = status_until(&config, "three realm1 sessions", |ok, o| ok && has_line(o, "realm realm1: 3 sessions"));
    let lines: Vec<&str> = out.lines().collect();
    let w0 = lines.iter().position(|l| l.starts_with("worker 0 ")).expect("worker 0 line");
    let w1 = lines.iter().position(|l| l.starts_with("worker 1 ")).expect("worker 1 line");
    assert!(lines[w0 + 1..w1].contains(&"  realm realm1: 2 sessions"), "{out}");
    assert!(lines[w0 + 1..w1].contains(&"  realm realm2: 0 sessions"), "{out}");
    assert!(lines[w1 + 1..].contains(&"  realm realm1: 1 sessions"), "{out}");
    assert!(has_line(&out, "realm realm2: 0 sessions"), "{out}");
    let workers_dir = dir.join(".junction").join("status.d");
    for pid in &pids {
        assert!(workers_dir.join(format!("worker-{pid}.json")).is_file(), "worker {pid}'s status file");
    }

    kill(pids[1], libc::SIGKILL);
    let new_pid = wait_worker_restarted(&node, 1, Duration::from_secs(30));
    assert_ne!(new_pid, pids[1]);
    // The killed worker's session went with it.
    let out = status_until(&config, "the restarted worker", |ok, o| {
        ok && o.contains(&format!("worker 1 r1 (router): pid {new_pid}, started"))
            && has_line(o, "realm realm1: 2 sessions")
    });
    assert!(out.contains("restarts 1"), "{out}");
    let deadline = Instant::now() + DEADLINE;
    while workers_dir.join(format!("worker-{}.json", pids[1])).exists() {
        assert!(Instant::now() < deadline, "the killed worker's status file stays");
        std::thread::sleep(Duration::from_millis(100));
    }

    node.terminate(Duration::from_secs(15)).expect("node stopped");
    let (ok, out) = status(&config);
    assert!(!ok, "a stopped node must fail status:\n{out}");
}

#[test]
fn status_of_a_managed_node_by_its_cbdir() {
    let dir = temp_dir("status-edge");
    let appdir = dir.join("app");
    let (st, out, err) = run_junction(
        &["edge".as_ref(), "init".as_ref(), "--appdir".as_ref(), appdir.as_os_str()],
        Duration::from_secs(10),
    );
    assert!(st.is_some_and(|s| s.success()), "{out}{err}");
    let cbdir = appdir.join(".crossbar");

    // Before the node runs: a clear error, as for a directory that does not exist.
    let (ok, out) = status_with("--cbdir", &cbdir);
    assert!(!ok && out.contains("no node is running from this directory"), "{out}");
    let (ok, out) = status_with("--cbdir", &dir.join("nowhere"));
    assert!(!ok && out.contains("no such directory"), "{out}");

    let (p0, p1) = (free_port(), free_port());
    let cfg_path = cbdir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg_path).expect("config")).expect("json");
    cfg["workers"] = json!([router("r0", p0), router("r1", p1)]);
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).expect("json")).expect("write config");
    // The master is away (nothing listens there): the node serves anyway.
    let mut cmd = std::process::Command::new(common::junction_bin());
    cmd.args(["edge", "start", "--cbdir"]).arg(&cbdir).args(["--color", "false"]);
    cmd.env("CROSSBAR_FABRIC_URL", format!("ws://127.0.0.1:{}/ws", free_port()));
    let (mut node, lines) =
        common::spawn_until_ready(cmd, "junction: ready", cbdir.join("no-config")).unwrap_or_else(|e| panic!("{e}"));
    let pids: Vec<u32> = lines.iter().filter_map(|l| common::worker_pid_line(l)).map(|(_, _, pid)| pid).collect();
    assert_eq!(pids.len(), 2, "{lines:?}");

    let _a = raw_join(p1);
    let out = status_until_with("--cbdir", &cbdir, "the workers and a realm1 session", |ok, o| {
        ok && has_line(o, "realm realm1: 1 sessions")
    });
    assert!(out.contains(&format!("node pid {}: running, up ", node.pid())), "{out}");
    assert!(out.contains(&format!("config {}", std::path::absolute(&cfg_path).expect("abs").display())), "{out}");
    assert!(out.contains(&format!("worker 0 r0 (router): pid {}, started", pids[0])), "{out}");
    assert!(out.contains(&format!("worker 1 r1 (router): pid {}, started", pids[1])), "{out}");
    assert!(has_line(&out, "realm realm2: 0 sessions"), "{out}");
    assert!(cbdir.join("status.json").is_file());

    let (st, out, err) =
        run_junction(&["edge".as_ref(), "stop".as_ref(), "--cbdir".as_ref(), cbdir.as_os_str()], DEADLINE);
    assert!(st.is_some_and(|s| s.success()), "{out}{err}");
    let _ = node.terminate(Duration::from_secs(10));
    let (ok, out) = status_with("--cbdir", &cbdir);
    assert!(!ok && out.contains("no node is running from this directory"), "{out}");
}
