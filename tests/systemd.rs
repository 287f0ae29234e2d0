//! The systemd units in `scripts/systemd/` (systemd itself is not needed):
//! every `ExecStart`/`ExecStartPre` line names a real `junction` subcommand
//! whose `--help` succeeds and lists each flag the line passes; the units set
//! the limits docs/operations.md promises; the example config passes
//! `junction check`.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::run_junction;

const UNITS: [&str; 3] = ["junction.service", "junction-master.service", "junction-edge.service"];

fn systemd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts").join("systemd")
}

fn unit(name: &str) -> String {
    let path = systemd_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `Key=value` lines of a unit (comments and sections skipped).
fn settings(text: &str) -> Vec<(&str, &str)> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';') && !l.starts_with('['))
        .filter_map(|l| l.split_once('='))
        .collect()
}

fn run(args: &[&str]) -> (bool, String) {
    let os: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
    let (status, out, err) = run_junction(&os, Duration::from_secs(20));
    (status.is_some_and(|s| s.success()), format!("{out}{err}"))
}

#[test]
fn exec_lines_use_existing_subcommands_and_flags() {
    let mut checked = 0;
    for name in UNITS {
        let text = unit(name);
        for (key, value) in settings(&text) {
            if key != "ExecStart" && key != "ExecStartPre" {
                continue;
            }
            // systemd's prefixes: - (ignore failure), @, +, !, !!, :.
            let line = value.trim_start_matches(['-', '@', '+', '!', ':']);
            let mut words = line.split_whitespace();
            let exe = words.next().unwrap_or_default();
            assert_eq!(exe, "/usr/local/bin/junction", "{name}: {key}={value}");
            let words: Vec<&str> = words.collect();
            let subcommand: Vec<&str> = words.iter().copied().take_while(|w| !w.starts_with('-')).collect();
            assert!(!subcommand.is_empty(), "{name}: {key} names no subcommand");
            let mut help_args = subcommand.clone();
            help_args.push("--help");
            let (ok, help) = run(&help_args);
            assert!(ok, "{name}: `junction {}` failed:\n{help}", help_args.join(" "));
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                let flag = flag.split('=').next().unwrap_or(flag);
                assert!(
                    help.contains(&format!("{flag} "))
                        || help.contains(&format!("{flag}\n"))
                        || help.contains(&format!("{flag} <")),
                    "{name}: `junction {}` has no flag {flag}:\n{help}",
                    subcommand.join(" ")
                );
            }
            checked += 1;
        }
    }
    // junction: check + start; master: start; edge: start.
    assert_eq!(checked, 4);
    // The check above can fail: an unknown subcommand is refused.
    let (ok, _) = run(&["no-such-subcommand", "--help"]);
    assert!(!ok);
}

#[test]
fn units_set_the_limits_user_and_state_directory() {
    for (name, state) in [
        ("junction.service", "junction"),
        ("junction-master.service", "junction-master"),
        ("junction-edge.service", "junction-edge"),
    ] {
        let text = unit(name);
        let s = settings(&text);
        let get = |k: &str| s.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        assert_eq!(get("LimitNOFILE"), Some("1048576"), "{name}");
        assert_eq!(get("LimitMEMLOCK"), Some("infinity"), "{name}");
        assert_eq!(get("User"), Some("junction"), "{name}");
        assert_eq!(get("Group"), Some("junction"), "{name}");
        assert_eq!(get("Type"), Some("notify"), "{name}");
        assert_eq!(get("NotifyAccess"), Some("main"), "{name}");
        assert_eq!(get("StateDirectory"), Some(state), "{name}");
        assert_eq!(get("WantedBy"), Some("multi-user.target"), "{name}");
    }
    let text = unit("junction.service");
    let s = settings(&text);
    assert!(
        s.iter().any(|(k, v)| *k == "ExecStartPre" && v.contains("check --config /etc/junction/config.json")),
        "junction.service must check its config first"
    );
    let start = s.iter().find(|(k, _)| *k == "ExecStart").map(|(_, v)| *v).unwrap_or_default();
    assert!(start.contains("start --config /etc/junction/config.json"), "{start}");
    let master = unit("junction-master.service");
    assert!(master.contains("master start --cbdir /var/lib/junction-master"), "{master}");
    let edge = unit("junction-edge.service");
    assert!(edge.contains("edge start --cbdir /var/lib/junction-edge/.crossbar"), "{edge}");
}

#[test]
fn example_config_passes_check() {
    let path = systemd_dir().join("config.json");
    let (ok, out) = run(&["check", "--config", path.to_str().expect("UTF-8 path")]);
    assert!(ok && out.contains("configuration OK"), "{out}");
    let text = std::fs::read_to_string(&path).expect("read");
    // The node key lives in the state directory, not next to the config.
    assert!(text.contains(r#""node_key": "/var/lib/junction/key.priv""#), "{text}");
    assert!(text.contains(r#""type": "metrics""#), "{text}");
}

/// A router worker config on a free port (`copies` workers: 1 runs in the
/// `junction start` process itself, 2 under the supervisor).
fn notify_config(copies: usize) -> serde_json::Value {
    let workers: Vec<serde_json::Value> = (0..copies)
        .map(|i| {
            serde_json::json!({
                "type": "router", "id": format!("router{i}"), "options": {"shards": 1, "pin_cores": false},
                "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [
                    {"uri": "", "match": "prefix", "allow": {"call": true, "register": true, "publish": true, "subscribe": true}}]}]}],
                "transports": [{"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": common::free_port()},
                                "auth": {"anonymous": {"type": "static", "role": "anonymous"}}}]
            })
        })
        .collect();
    serde_json::json!({"version": 2, "controller": {}, "workers": workers})
}

/// `Type=notify`: with `NOTIFY_SOCKET` set, the node sends `READY=1` (with
/// its ready line as `STATUS=`) once, when every worker is ready (never a
/// worker of its own), and `STOPPING=1` on SIGTERM.
#[test]
fn sd_notify_ready_once_then_stopping() {
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixDatagram;
    use std::process::{Command, Stdio};
    for copies in [1, 2] {
        let sock_path = common::temp_path("notify", "sock");
        let _ = std::fs::remove_file(&sock_path);
        let sock = UnixDatagram::bind(&sock_path).expect("bind the notify socket");
        sock.set_read_timeout(Some(Duration::from_secs(30))).expect("timeout");
        let config = common::temp_path("notify", "json");
        std::fs::write(&config, serde_json::to_vec(&notify_config(copies)).expect("json")).expect("write config");
        let mut child = Command::new(common::junction_bin())
            .args(["start", "--config"])
            .arg(&config)
            .env("NOTIFY_SOCKET", &sock_path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn junction");
        let pid = child.id() as libc::pid_t;
        let mut buf = [0u8; 4096];
        let n = sock.recv(&mut buf).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("{copies} worker(s): no READY=1 within 30 s: {e}")
        });
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(msg.lines().any(|l| l == "READY=1"), "{copies} worker(s): {msg:?}");
        assert!(msg.lines().any(|l| l == "STATUS=junction: ready"), "{copies} worker(s): {msg:?}");
        // By then the ready line is out.
        let mut out = BufReader::new(child.stdout.take().expect("stdout"));
        let mut ready = false;
        let mut line = String::new();
        while out.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            if line.trim() == "junction: ready" {
                ready = true;
                break;
            }
            line.clear();
        }
        assert!(ready, "{copies} worker(s): no ready line");
        // Nothing else (a worker must not report readiness of its own).
        sock.set_read_timeout(Some(Duration::from_millis(1500))).expect("timeout");
        if let Ok(n) = sock.recv(&mut buf) {
            let _ = child.kill();
            panic!("{copies} worker(s): unexpected second notification {:?}", String::from_utf8_lossy(&buf[..n]));
        }
        // SAFETY: signals our own child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        sock.set_read_timeout(Some(Duration::from_secs(20))).expect("timeout");
        let n = sock.recv(&mut buf).unwrap_or_else(|e| {
            let _ = child.kill();
            panic!("{copies} worker(s): no STOPPING=1 after SIGTERM: {e}")
        });
        let msg = String::from_utf8_lossy(&buf[..n]).to_string();
        assert!(msg.lines().any(|l| l == "STOPPING=1"), "{copies} worker(s): {msg:?}");
        let status = child.wait().expect("wait");
        assert!(status.success(), "{copies} worker(s): exit {status}");
        let _ = std::fs::remove_file(&sock_path);
    }
}
