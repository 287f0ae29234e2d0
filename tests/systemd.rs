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
                    help.contains(&format!("{flag} ")) || help.contains(&format!("{flag}\n")) || help.contains(&format!("{flag} <")),
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
        assert_eq!(get("Type"), Some("simple"), "{name}");
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
