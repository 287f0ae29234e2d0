//! The `junction` command line: `check`, `start` failures, readiness and
//! graceful shutdown.

mod common;

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::{
    allow_all_role, free_port, junction_bin, node_config, rawsocket_tcp, rawsocket_unix, realm, temp_path,
    web_transport, JunctionProcess,
};
use serde_json::{json, Value};

fn run(args: &[&str]) -> Output {
    Command::new(junction_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("run junction {args:?}: {e}"))
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn write_temp(stem: &str, ext: &str, contents: &str) -> std::path::PathBuf {
    let p = temp_path(stem, ext);
    std::fs::write(&p, contents).expect("write temp config");
    p
}

fn valid_config() -> Value {
    node_config(
        vec![realm("realm1", vec![allow_all_role("anonymous")])],
        vec![web_transport(free_port(), json!({})), rawsocket_tcp(free_port())],
    )
}

#[test]
fn check_accepts_a_valid_json_config() {
    let p = write_temp("valid", "json", &valid_config().to_string());
    let out = run(&["check", "--config", p.to_str().unwrap()]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("configuration OK"), "stdout: {}", text(&out.stdout));
}

#[test]
fn check_accepts_a_valid_yaml_config() {
    let yaml = r#"
version: 2
workers:
  - type: router
    realms:
      - name: realm1
        roles:
          - name: anonymous
            permissions:
              - uri: ""
                match: prefix
                allow: {call: true, register: true, publish: true, subscribe: true}
    transports:
      - type: rawsocket
        endpoint: {type: tcp, port: 18181, interface: 127.0.0.1}
        serializers: [json, cbor]
"#;
    let p = write_temp("valid", "yaml", yaml);
    let out = run(&["check", "--config", p.to_str().unwrap()]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("configuration OK"), "stdout: {}", text(&out.stdout));
}

#[test]
fn check_accepts_the_embedded_default_config() {
    let out = run(&["default-config"]);
    assert!(out.status.success(), "default-config failed: {}", text(&out.stderr));
    let p = write_temp("default", "json", &text(&out.stdout));
    let check = run(&["check", "--config", p.to_str().unwrap()]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(check.status.code(), Some(0), "stderr: {}", text(&check.stderr));
    let v: Value = serde_json::from_slice(&out.stdout).expect("default config is JSON");
    let realms = &v["workers"][0]["realms"];
    assert_eq!(realms[0]["name"], "realm1", "default realm: {v}");
}

#[test]
fn check_reports_every_error_with_its_location() {
    let mut c = valid_config();
    c["workers"][0]["realms"][0]["roles"][0]["permissions"][0]["match"] = json!("sometimes");
    c["workers"][0]["transports"][0]["endpoint"]["port"] = json!(70000);
    c["workers"][0]["transports"][1]["serializers"] = json!(["xml"]);
    let p = write_temp("invalid", "json", &serde_json::to_string_pretty(&c).unwrap());
    let out = run(&["check", "--config", p.to_str().unwrap()]);
    let _ = std::fs::remove_file(&p);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "stdout: {} stderr: {stderr}", text(&out.stdout));
    assert!(!text(&out.stdout).contains("configuration OK"));
    let locations = [
        "workers[0].realms[0].roles[0].permissions[0].match",
        "workers[0].transports[0].endpoint.port",
        "workers[0].transports[1].serializers",
    ];
    let mut lines_used = Vec::new();
    for loc in locations {
        let line = stderr
            .lines()
            .position(|l| l.starts_with(loc) && l.contains(':'))
            .unwrap_or_else(|| panic!("no `{loc}: ...` line in stderr:\n{stderr}"));
        lines_used.push(line);
    }
    lines_used.sort();
    lines_used.dedup();
    assert_eq!(lines_used.len(), 3, "the three errors are not on three lines:\n{stderr}");
}

#[test]
fn check_reports_a_syntax_error() {
    let p = write_temp("syntax", "json", "{\"version\": 2, \"workers\": [");
    let out = run(&["check", "--config", p.to_str().unwrap()]);
    let _ = std::fs::remove_file(&p);
    assert_eq!(out.status.code(), Some(1), "stderr: {}", text(&out.stderr));
    assert!(!text(&out.stderr).trim().is_empty(), "no message for a syntax error");
}

#[test]
fn start_with_a_missing_config_fails_clearly() {
    let out = run(&["start", "--config", "/nonexistent/junction.json"]);
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "start succeeded without a config file");
    assert!(stderr.contains("/nonexistent/junction.json"), "message does not name the file: {stderr}");
    assert!(!text(&out.stdout).contains("junction: ready"), "claimed ready without a config");
}

#[test]
fn start_with_an_invalid_config_fails_with_locations() {
    let mut c = valid_config();
    c["workers"][0]["realms"][0]["roles"][0]["permissions"][0]["match"] = json!("sometimes");
    let p = write_temp("invalid-start", "json", &c.to_string());
    let out = run(&["start", "--config", p.to_str().unwrap()]);
    let _ = std::fs::remove_file(&p);
    assert!(!out.status.success(), "start accepted an invalid config");
    let stderr = text(&out.stderr);
    assert!(stderr.contains("workers[0].realms[0].roles[0].permissions[0].match"), "stderr: {stderr}");
}

#[test]
fn ready_once_then_graceful_shutdown_on_sigterm() {
    let sock = temp_path("cli", "sock");
    let config = node_config(
        vec![realm("realm1", vec![allow_all_role("anonymous")])],
        vec![web_transport(free_port(), json!({})), rawsocket_tcp(free_port()), rawsocket_unix(&sock)],
    );
    let mut node = JunctionProcess::start(config);
    assert!(sock.exists(), "unix socket {} not created by the time of ready", sock.display());
    assert!(node.is_running());
    let status = node.terminate(Duration::from_secs(15)).expect("no exit within 15 s of SIGTERM");
    assert_eq!(status.code(), Some(0), "exit status after SIGTERM: {status}");
    assert!(node.extra_stdout().is_empty(), "stdout after `junction: ready`: {:?}", node.extra_stdout());
    assert!(!sock.exists(), "unix socket {} left behind after shutdown", sock.display());
}

#[test]
fn second_node_on_a_taken_port_fails_clearly() {
    let port = free_port();
    let config = node_config(vec![realm("realm1", vec![allow_all_role("anonymous")])], vec![rawsocket_tcp(port)]);
    let _first = JunctionProcess::start(config.clone());
    let err = match JunctionProcess::try_start(config) {
        Ok(_) => panic!("a second node bound port {port} too"),
        Err(e) => e,
    };
    let stderr = err.split("--- junction stderr ---").nth(1).unwrap_or("");
    assert!(stderr.to_lowercase().contains("in use"), "no 'address in use' message:\n{err}");
    assert!(stderr.contains(&port.to_string()), "message does not name the port {port}:\n{err}");
}
