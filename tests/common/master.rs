//! Helpers of the master and managed-node tests: the superuser's key, a
//! master and an edge node started as processes, `junction edge init`.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{junction_bin, spawn_until_ready, JunctionProcess};

/// The superuser's Ed25519 seed (its `key.pub` is [`superuser_pub`]).
pub const SUPERUSER_SEED: &str = "4d0f2f1e5bd1a7c55dd3a6f1d1c7e3b0a99be0e6c7a3f0d2e5b8c1a4f7e0d3b6";
/// The master's global realm.
pub const GLOBAL: &str = "com.crossbario.fabric";

/// Writes the superuser's `key.pub` (Crossbar's format) into `dir`.
pub fn superuser_pub(dir: &Path) -> PathBuf {
    let key = cluster_membership::NodeKey::from_seed(cluster_membership::parse_hex32(SUPERUSER_SEED).expect("seed"));
    let path = dir.join("superuser.pub");
    std::fs::write(&path, format!("creator: test\npublic-key-ed25519: {}\n", key.public_hex())).expect("write key.pub");
    path
}

/// The master's management URL on loopback port `port`.
pub fn url(port: u16) -> String {
    format!("ws://127.0.0.1:{port}/ws")
}

/// `junction master start` with `cmd`'s program (a plain command or one
/// inside a namespace), waiting for its ready line.
pub fn start_master_with(mut cmd: Command, cbdir: &Path, port: u16, superuser: &Path) -> JunctionProcess {
    cmd.args(["master", "start", "--cbdir"]).arg(cbdir).args(["--listen", &format!("127.0.0.1:{port}")]);
    cmd.env("CROSSBAR_FABRIC_SUPERUSER", superuser);
    let (p, _) =
        spawn_until_ready(cmd, "junction: master ready", cbdir.join("no-config")).unwrap_or_else(|e| panic!("{e}"));
    p
}

/// `junction master start` on loopback port `port`.
pub fn start_master(cbdir: &Path, port: u16, superuser: &Path) -> JunctionProcess {
    start_master_with(Command::new(junction_bin()), cbdir, port, superuser)
}

/// `junction edge start` of `cbdir`, connecting to the master on `master_port`.
pub fn start_edge(cbdir: &Path, master_port: u16) -> JunctionProcess {
    let mut cmd = Command::new(junction_bin());
    cmd.args(["edge", "start", "--cbdir"]).arg(cbdir).args(["--color", "false"]);
    cmd.env("CROSSBAR_FABRIC_URL", url(master_port));
    let (p, _) = spawn_until_ready(cmd, "junction: ready", cbdir.join("no-config")).unwrap_or_else(|e| panic!("{e}"));
    p
}

/// `junction edge init` of node `id` (cluster address 127.0.0.1) in
/// `appdir`: its cbdir, and the key.pub text.
pub fn edge_init_text(appdir: &Path, id: &str) -> (PathBuf, String) {
    let out = Command::new(junction_bin())
        .args(["edge", "init", "--appdir"])
        .arg(appdir)
        .env("CROSSBAR_NODE_ID", id)
        .env("CROSSBAR_NODE_CLUSTER_IP", "127.0.0.1")
        .output()
        .expect("run edge init");
    assert!(out.status.success(), "edge init: {}", String::from_utf8_lossy(&out.stderr));
    let cbdir = appdir.join(".crossbar");
    let public = std::fs::read_to_string(cbdir.join("key.pub")).expect("key.pub");
    (cbdir, public)
}

/// The public key (hex) of a key.pub text.
pub fn public_key(key_pub: &str) -> String {
    key_pub.lines().find_map(|l| l.strip_prefix("public-key-ed25519: ")).expect("public key line").to_owned()
}

/// [`edge_init_text`], returning the cbdir and the node's public key.
pub fn edge_init(appdir: &Path, id: &str) -> (PathBuf, String) {
    let (cbdir, public) = edge_init_text(appdir, id);
    (cbdir, public_key(&public))
}

/// Creates management realm `mrealm` on the master at `port` and pairs the
/// node key `pubkey` to it as `node1` (master.py's `pair` scenario, as the
/// superuser); panics with the master's log if that fails.
pub fn pair(master: &JunctionProcess, port: u16, mrealm: &str, pubkey: &str) {
    let paired = master.python(
        "master.py",
        &[
            &url(port),
            GLOBAL,
            "json",
            "--scenario",
            "pair",
            "--superuser",
            SUPERUSER_SEED,
            "--name",
            mrealm,
            "--node-pubkey",
            pubkey,
        ],
    );
    assert_eq!(paired["ok"], true, "{paired}");
}

/// Rewrites the starter `config.json` in `cbdir` (after `edit` looked at or
/// changed it): heartbeats every second from the start, and one router
/// worker `app1` with `shards` shards serving realm `realm1` (anonymous
/// allowed everything) on RawSocket port `app_port`.
pub fn set_app_worker(cbdir: &Path, app_port: u16, shards: u32, edit: impl FnOnce(&mut serde_json::Value)) {
    let cfg_path = cbdir.join("config.json");
    let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&cfg_path).expect("config")).expect("json");
    edit(&mut cfg);
    cfg["controller"]["fabric"]["heartbeat"] = serde_json::json!({"startup_delay": 0, "heartbeat_period": 1});
    cfg["workers"] = serde_json::json!([{
        "type": "router", "id": "app1", "options": {"shards": shards},
        "realms": [super::realm("realm1", vec![super::allow_all_role("anonymous")])],
        "transports": [super::rawsocket_tcp(app_port)]
    }]);
    std::fs::write(&cfg_path, serde_json::to_vec_pretty(&cfg).expect("json")).expect("write config");
}
