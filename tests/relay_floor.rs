//! `tcp-floor relay`, the proxy-hop floor of `scripts/bench/proxy_floor.sh`,
//! really is a hop: real WAMP sessions (`loadtest rpc`, WebSocket + CBOR)
//! reach a real router through it and every call is answered, its CPU is
//! sampled like a worker's, and the connection pairs it held are closed once
//! the clients leave (its descriptor count returns to what it was).

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

struct Relay(Child);

impl Drop for Relay {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn fd_count(pid: u32) -> usize {
    let n = std::fs::read_dir(format!("/proc/{pid}/fd")).map(|d| d.count()).expect("the relay is running");
    assert!(n >= 4, "a running relay holds stdio, its listener and its epoll descriptor: {n}");
    n
}

fn wait_listening(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "relay did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn wamp_calls_go_through_the_relay_and_its_pairs_close_after() {
    let node = common::StandardNode::start();
    let port = common::free_port();
    let relay = Relay(
        Command::new(common::loadtest_package_bin("tcp-floor"))
            .args([
                "relay",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--upstream",
                &format!("127.0.0.1:{}", node.ws_port),
            ])
            .stdout(Stdio::null())
            .spawn()
            .expect("start tcp-floor relay"),
    );
    wait_listening(port);
    // The probe connection of wait_listening is relayed and then closed too.
    let pid = relay.0.id();
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut idle_fds = fd_count(pid);
    while Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let now = fd_count(pid);
        if now == idle_fds {
            break;
        }
        idle_fds = now;
    }

    let json = common::temp_path("relay-rpc", "json");
    let out = Command::new(common::loadtest_package_bin("loadtest"))
        .args(["-q", "rpc", "--duration", "1", "--warmup", "0.5", "--callers", "2", "--callees", "1"])
        .args(["--concurrency", "4", "--payload-size", "64", "--serializer", "cbor"])
        .args(["-u", &format!("ws://127.0.0.1:{port}/ws"), "--pid", &format!("{},{pid}", node.process.pid())])
        .arg("--json")
        .arg(&json)
        .output()
        .expect("run loadtest");
    assert!(out.status.success(), "loadtest through the relay failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON report");
    let _ = std::fs::remove_file(&json);
    let r = &report["results"];
    let delivered = r["delivered"].as_u64().expect("results.delivered");
    assert!(delivered > 100, "too few calls answered through the relay: {r}");
    assert_eq!(r["errors"].as_u64(), Some(0), "{r}");
    assert_eq!(r["lost"].as_u64(), Some(0), "{r}");
    let pids = report["router"]["window"]["pids"].as_array().expect("router.window.pids");
    assert_eq!(pids[1]["pid"].as_u64(), Some(pid as u64), "{pids:?}");
    assert!(pids[1]["cpu_us"].as_u64() > Some(0), "the relay did the work, so it used CPU: {pids:?}");

    // Every session is gone: the relay closes both sides of each pair.
    let deadline = Instant::now() + Duration::from_secs(10);
    while fd_count(pid) != idle_fds {
        assert!(Instant::now() < deadline, "relay holds {} descriptors, {idle_fds} before the load", fd_count(pid));
        std::thread::sleep(Duration::from_millis(50));
    }
}
