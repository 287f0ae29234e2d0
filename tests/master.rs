//! The master node end to end: `junction master start` as a process, driven
//! by Autobahn|Python management clients (`tests/python/master.py`) over its
//! WebSocket management transport with cryptosign logins: the global realm
//! flow of Crossbar's reference (management realms, pairing, bad input),
//! a node logging in and going online and offline, unpairing and deleting,
//! and a `kill -9` of the master that loses nothing.

mod common;

use std::path::Path;
use std::process::Command;

use common::{free_port, junction_bin, python, spawn_until_ready, temp_dir};

use common::master::{start_edge, start_master, superuser_pub, url, GLOBAL, SUPERUSER_SEED};

const NODE_SEED: &str = "9b2c7e4a1f0d3e6b8a5c2f9e1d4b7a0c3e6f9b2d5a8c1e4f7b0a3d6c9e2f5b8a";

#[test]
fn management_flow_of_the_reference_with_a_node_logging_in() {
    let dir = temp_dir("master-flow");
    let su = superuser_pub(&dir);
    let port = free_port();
    let master = start_master(&dir.join("cbdir"), port, &su);
    for ser in ["json", "msgpack", "cbor"] {
        let r = master.python(
            "master.py",
            &[&url(port), GLOBAL, ser, "--scenario", "flow", "--superuser", SUPERUSER_SEED, "--node", NODE_SEED],
        );
        assert_eq!(r["ok"], true, "{ser}: {r}");
        assert_eq!(r["global_welcome"]["authid"], "superuser", "{r}");
        assert_eq!(r["global_welcome"]["authrole"], "user", "{r}");
        assert_eq!(r["status_type"], "domain");
        assert_eq!(r["status_keys"], serde_json::json!(["now", "realm", "started", "tick", "type", "uptime"]));
        assert_eq!(r["initial_mrealms"], serde_json::json!(["default"]), "{r}");
        assert_eq!(
            r["mrealm_keys"],
            serde_json::json!([
                "cf_container_worker",
                "cf_router_worker",
                "created",
                "description",
                "label",
                "name",
                "oid",
                "owner",
                "tags"
            ])
        );
        for k in [
            "node_realm_is_mrealm",
            "created_event_matches",
            "get_mrealm_matches",
            "get_by_name_matches",
            "paired_event_matches",
            "version_has_junction",
            "ready_event_node",
            "unpair_killed_node_session",
        ] {
            assert_eq!(r[k], true, "{ser}: {k}: {r}");
        }
        assert_eq!(r["names_after_create"].as_array().map(Vec::len), Some(2), "{r}");
        assert_eq!(r["names_after_errors"], r["names_after_create"], "bad input changed nothing: {r}");
        let e = &r["errors"];
        assert_eq!(e["duplicate"], "crossbar.error.already_exists");
        assert_eq!(e["bad_name"], "fabric.invalid-realm");
        assert_eq!(e["protected"], "fabric.invalid-realm");
        assert_eq!(e["not_a_dict"], "wamp.error.invalid_argument");
        assert_eq!(e["bad_oid"], "wamp.error.invalid_argument");
        assert_eq!(e["unknown_oid"], "crossbar.error.no_such_object");
        assert_eq!(e["unknown_proc"], "wamp.error.no_such_procedure");
        assert_eq!(e["pair_bad_key"], "wamp.error.invalid_argument");
        assert_eq!(e["pair_no_realm"], "fabric.no-such-realm");
        assert_eq!(r["pair_again"], "fabric.node-already-paired");
        assert_eq!(r["node_cluster_ip"], "127.0.0.1");
        assert_eq!(
            r["node_keys"],
            serde_json::json!([
                "authextra",
                "authid",
                "cluster_ip",
                "description",
                "label",
                "mrealm_oid",
                "oid",
                "owner_oid",
                "pubkey",
                "tags"
            ])
        );
        assert_eq!(r["mrealm_welcome"]["authrole"], "owner");
        assert_eq!(r["mrealm_status_type"], "management");
        assert_eq!(r["mrealm_nodes"].as_array().map(Vec::len), Some(1));
        assert_eq!(r["node_status_before"], "offline");
        // The node asked for the global realm and landed on its management realm.
        assert_eq!(r["node_welcome"]["authid"], "node1");
        assert_eq!(r["node_welcome"]["authrole"], "node-node1", "a role of its own");
        assert_eq!(r["node_own_register"], "<no error>", "{r}");
        assert_eq!(r["node_foreign_register"], "wamp.error.not_authorized", "no node takes another's procedures: {r}");
        assert_ne!(r["node_welcome"]["realm"], GLOBAL);
        assert_eq!(r["node_status_joined"], "offline", "online only once it can be called: {r}");
        assert_eq!(r["node_status_online"], "online");
        assert_eq!(r["online_names"], serde_json::json!(["node1"]));
        assert_eq!(r["node_left_reason"], "wamp.close.killed", "{r}");
        assert_eq!(r["node_after_unpair"], "fabric.auth-failed.node-unpaired", "{r}");
        assert_eq!(r["unpair_twice"], "fabric.node-not-paired");
        assert_eq!(r["mrealm_session_left"], "wamp.close.system_shutdown", "{r}");
        assert_eq!(r["get_deleted"], "crossbar.error.no_such_object");
        assert_eq!(r["names_after_delete"], serde_json::json!(["default"]));
        assert_eq!(r["join_deleted_mrealm"], "wamp.error.no_such_realm", "{r}");
    }
}

#[test]
fn management_realm_objects_end_to_end() {
    use serde_json::json;
    let dir = temp_dir("master-objects");
    let su = superuser_pub(&dir);
    let port = free_port();
    let master = start_master(&dir.join("cbdir"), port, &su);
    for ser in ["json", "cbor"] {
        let r = master.python(
            "master.py",
            &[&url(port), GLOBAL, ser, "--scenario", "objects", "--superuser", SUPERUSER_SEED, "--node", NODE_SEED],
        );
        assert_eq!(r["ok"], true, "{ser}: {r}");
        // Shapes (REFERENCE §3).
        assert_eq!(
            r["rc_keys"],
            json!(["changed", "description", "label", "name", "oid", "owner_oid", "status", "tags"]),
            "{r}"
        );
        assert_eq!(r["rc_status"], "STOPPED");
        assert_eq!(r["rc_names"], json!(["rc1"]));
        assert_eq!(r["rc_member"]["softlimit"], 4);
        assert_eq!(r["rc_member"]["hardlimit"], 8);
        assert_eq!(r["rc_node_names"], json!(["node1"]));
        assert_eq!(
            r["wg_keys"],
            json!(["changed", "cluster_oid", "description", "label", "name", "oid", "scale", "status", "tags"])
        );
        assert_eq!(
            r["wc_keys"],
            json!([
                "changed",
                "description",
                "http_access_log",
                "http_client_timeout",
                "http_display_tracebacks",
                "http_hsts",
                "http_hsts_max_age",
                "label",
                "name",
                "oid",
                "owner_oid",
                "status",
                "tags",
                "tcp_backlog",
                "tcp_interface",
                "tcp_port",
                "tcp_shared",
                "tcp_version",
                "tls_ca_certificates",
                "tls_certificate",
                "tls_chain_certificates",
                "tls_ciphers",
                "tls_dhparam",
                "tls_key"
            ])
        );
        assert_eq!(
            r["wc_defaults"],
            json!({"tcp_version": null, "tcp_backlog": null, "tls_key": null, "http_hsts": null, "tcp_port": 8190, "tcp_shared": true})
        );
        assert_eq!(r["wc_member"]["parallel"], 1);
        assert_eq!(r["wc_member"]["standby"], false);
        assert_eq!(
            r["ws_keys"],
            json!([
                "auth",
                "description",
                "label",
                "oid",
                "options",
                "path",
                "serializers",
                "tags",
                "type",
                "webcluster_oid"
            ])
        );
        assert_eq!(r["role_keys"], json!(["created", "description", "label", "name", "oid", "owner", "tags"]));
        assert_eq!(
            r["perm_keys"],
            json!([
                "allow_call",
                "allow_publish",
                "allow_register",
                "allow_subscribe",
                "cache",
                "created",
                "description",
                "disclose_caller",
                "disclose_publisher",
                "label",
                "match",
                "oid",
                "owner",
                "role_oid",
                "tags",
                "uri",
                "uri_check_level"
            ])
        );
        assert_eq!(
            r["arealm_keys"],
            json!([
                "bridge_meta_api",
                "changed",
                "datamarket_oid",
                "description",
                "enable_meta_api",
                "label",
                "name",
                "oid",
                "owner_oid",
                "status",
                "tags",
                "webcluster_oid",
                "workergroup_oid"
            ])
        );
        assert_eq!(r["arealm_role_names"], json!(["app-role"]));
        assert_eq!(
            r["principal_keys"],
            json!(["arealm_oid", "authextra", "authid", "description", "label", "modified", "oid", "role_oid", "tags"])
        );
        assert_eq!(r["principal_names"], json!(["client1"]));
        assert_eq!(
            r["credential"],
            json!({"authmethod": "ticket", "realm": "app-realm1", "authid": "client1", "authconfig": {"secret": "secret-ticket-1"}})
        );
        for k in [
            "rc_get_matches",
            "rc_by_name_matches",
            "wg_cluster_matches",
            "wg_by_name_matches",
            "ws_verbatim",
            "services_listed",
            "ws_by_path_matches",
            "perms_by_uri_match",
            "credentials_listed",
            "credential_get_matches",
            "created_event_matches",
        ] {
            assert_eq!(r[k], true, "{ser}: {k}: {r}");
        }
        // Status: start (the node never connects, so STARTING), stop reaching STOPPED.
        let who = json!({"session": r["rc_start"]["who"]["session"], "authid": "superuser", "authrole": "owner"});
        for k in ["rc_start", "wc_start", "arealm_start"] {
            assert_eq!(r[k]["status"], "STARTING", "{k}: {r}");
            assert_eq!(r[k]["who"], who, "{k}");
        }
        assert!(r["rc_start"]["who"]["session"].as_u64().is_some_and(|s| s > 0), "{r}");
        assert_eq!(r["rc_status_started"], "STARTING");
        assert_eq!(r["router_workers"], json!(["wg1_1"]));
        for k in ["arealm_stop", "wc_stop", "rc_stop"] {
            assert_eq!(r[k]["status"], "STOPPING", "{k}: {r}");
        }
        for k in ["arealm_status_stopped", "wc_status_stopped", "rc_status_stopped"] {
            assert_eq!(r[k], "STOPPED", "{k}: {r}");
        }
        assert_eq!(r["stopped_events"][0]["status"], "STOPPED");
        assert_eq!(r["left"], json!({"routerclusters": [], "webclusters": [], "roles": [], "arealms": []}));
        let e = &r["errors"];
        for (k, uri) in [
            ("rc_duplicate", "crossbar.error.already_exists"),
            ("rc_bad_name", "wamp.error.invalid_configuration"),
            ("rc_bad_oid", "wamp.error.invalid_argument"),
            ("rc_unknown", "crossbar.error.no_such_object"),
            ("wg_scale", "wamp.error.invalid_configuration"),
            ("rc_node_in_use", "crossbar.error.dependent_objects"),
            ("rc_start_again", "crossbar.error.cannot_start"),
            ("rc_delete_started", "crossbar.error.not_stopped"),
            ("ws_root", "wamp.error.invalid_argument"),
            ("ws_bad_type", "wamp.error.invalid_argument"),
            ("wc_bad_port", "wamp.error.invalid_configuration"),
            ("ws_while_started", "crossbar.error.cannot_start"),
            ("perm_bad_match", "wamp.error.invalid_configuration"),
            ("perm_bad_uri", "wamp.error.invalid_argument"),
            ("cred_bad", "crossbar.error.invalid_config"),
            ("role_in_use", "crossbar.error.dependent_objects"),
            ("arealm_delete_started", "crossbar.error.not_stopped"),
            ("wc_stop_in_use", "crossbar.error.dependent_objects"),
            ("rc_stop_again", "crossbar.error.cannot_stop"),
            ("rc_deleted", "crossbar.error.no_such_object"),
        ] {
            assert_eq!(e[k], uri, "{ser}: {k}: {r}");
        }
        // The events (REFERENCE §4, plus the ones the reference never reaches), in order.
        let events: Vec<&str> = r["events"].as_array().expect("events").iter().filter_map(|t| t.as_str()).collect();
        let expected = [
            "routercluster.on_routercluster_created",
            "routercluster.on_routercluster_node_added",
            "routercluster.on_workergroup_added",
            "routercluster.on_routercluster_starting",
            "webcluster.on_webcluster_created",
            "webcluster.on_webcluster_node_added",
            "webcluster.on_webservice_added",
            "webcluster.on_webservice_added",
            "webcluster.on_webservice_added",
            "webcluster.on_webcluster_starting",
            "arealm.on_role_created",
            "arealm.on_permission_added",
            "arealm.on_arealm_created",
            "arealm.on_arealm_role_added",
            "arealm.on_principal_created",
            "arealm.on_arealm_starting",
            "arealm.on_arealm_stopping",
            "arealm.on_arealm_stopped",
            "webcluster.on_webcluster_stopping",
            "webcluster.on_webcluster_stopped",
            "routercluster.on_routercluster_stopping",
            "routercluster.on_routercluster_stopped",
            "arealm.on_principal_removed",
            "arealm.on_arealm_role_removed",
            "arealm.on_arealm_deleted",
            "arealm.on_permission_removed",
            "arealm.on_role_deleted",
            "webcluster.on_webservice_removed",
            "webcluster.on_webservice_removed",
            "webcluster.on_webservice_removed",
            "webcluster.on_webcluster_node_removed",
            "webcluster.on_webcluster_deleted",
            "routercluster.on_workergroup_removed",
            "routercluster.on_routercluster_node_removed",
            "routercluster.on_routercluster_deleted",
        ];
        assert_eq!(events, expected, "{ser}: {r}");
    }
}

#[test]
fn kill_9_of_the_master_loses_nothing() {
    let dir = temp_dir("master-restart");
    let su = superuser_pub(&dir);
    let cbdir = dir.join("cbdir");
    let port = free_port();
    let mut master = start_master(&cbdir, port, &su);
    let created = master.python(
        "master.py",
        &[&url(port), GLOBAL, "msgpack", "--scenario", "create", "--superuser", SUPERUSER_SEED, "--name", "survivor"],
    );
    assert_eq!(created["ok"], true, "{created}");
    common::kill(master.pid(), libc::SIGKILL);
    let _ = master.terminate(std::time::Duration::from_secs(5));
    drop(master);

    let master = start_master(&cbdir, port, &su);
    let r = python(
        "master.py",
        &[&url(port), GLOBAL, "json", "--scenario", "verify", "--superuser", SUPERUSER_SEED, "--name", "survivor"],
    );
    assert_eq!(r["ok"], true, "{r}\n{}", master.stderr());
    assert_eq!(r["oid"], created["oid"], "same object after the restart");
    assert_eq!(r["names"], serde_json::json!(["default", "survivor"]));
    assert_eq!(r["mrealm_status_realm"], "survivor", "the management realm runs again");
}

#[test]
fn without_the_superuser_key_nobody_manages() {
    let dir = temp_dir("master-nokey");
    let other = dir.join("other.pub");
    let k = cluster_membership::NodeKey::generate();
    std::fs::write(&other, format!("public-key-ed25519: {}\n", k.public_hex())).expect("write");
    let port = free_port();
    let _master = start_master(&dir.join("cbdir"), port, &other);
    let r = common::run_python(
        "master.py",
        &[&url(port), GLOBAL, "json", "--scenario", "create", "--superuser", SUPERUSER_SEED, "--name", "nope"],
    );
    let e = r.expect_err("a key that is not the superuser's is refused");
    assert!(e.contains("refused") && e.contains("fabric.auth-failed.node-unpaired"), "{e}");
}

/// `junction edge init` in `appdir` (node id node1, cluster address
/// 127.0.0.1); returns the node's cbdir and public key.
fn edge_init(appdir: &Path) -> (std::path::PathBuf, String) {
    edge_init_as(appdir, "node1")
}

fn edge_init_as(appdir: &Path, id: &str) -> (std::path::PathBuf, String) {
    let (cbdir, public) = common::master::edge_init_text(appdir, id);
    assert!(
        public.contains(&format!("node-authid: {id}")) && public.contains("node-cluster-ip: 127.0.0.1"),
        "{public}"
    );
    assert!(!public.contains("private"), "key.pub holds no secret: {public}");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(cbdir.join("key.priv")).expect("key.priv").permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "key.priv is private");
    let key = common::master::public_key(&public);
    // A second init keeps the key.
    let again = Command::new(junction_bin()).args(["edge", "init", "--appdir"]).arg(appdir).output().expect("run");
    assert!(!again.status.success(), "a second init must not replace the key");
    (cbdir, key)
}

#[test]
fn an_edge_node_is_driven_by_its_master_and_keeps_serving_without_it() {
    let dir = temp_dir("master-edge");
    let su = superuser_pub(&dir);
    let (cbdir, node_key) = edge_init(&dir.join("node1"));
    // The node serves an application realm of its own (a router worker from its config).
    let app_port = free_port();
    common::master::set_app_worker(&cbdir, app_port, 1, |cfg| {
        assert!(cfg["controller"]["fabric"].is_object(), "starter config is a managed node: {cfg}");
    });

    let port = free_port();
    let cbdir_m = dir.join("master");
    let mut master = start_master(&cbdir_m, port, &su);
    common::master::pair(&master, port, "edge-mr", &node_key);
    let mut node = start_edge(&cbdir, port);
    let edge_args = |extra: &[&str]| {
        let mut a = vec![
            url(port),
            GLOBAL.into(),
            "msgpack".into(),
            "--scenario".into(),
            "edge".into(),
            "--superuser".into(),
            SUPERUSER_SEED.into(),
            "--name".into(),
            "edge-mr".into(),
        ];
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };
    let run = |extra: &[&str]| {
        let a = edge_args(extra);
        common::run_python("master.py", &a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let app_url = format!("rs://127.0.0.1:{app_port}");
    let r = run(&["--app-url", &app_url])
        .unwrap_or_else(|e| panic!("{e}\n--- node ---\n{}\n--- master ---\n{}", node.stderr(), master.stderr()));
    // The worker API: the master starts and stops a realm on the node's router worker.
    let w = &r["worker_api"];
    assert_eq!(w["realms_before"], serde_json::json!(["realm1"]), "{w}");
    assert_eq!(w["started_id"], "rlm_tenant2");
    assert_eq!(w["realm_started_event"], serde_json::json!(["node1", "app1", "rlm_tenant2"]), "{w}");
    assert_eq!(w["raw_realm_started"], "rlm_tenant2");
    assert_eq!(w["heartbeat_event"], serde_json::json!(["node1", true]));
    assert_eq!(w["realms_after"], serde_json::json!(["realm1", "rlm_tenant2"]), "{w}");
    assert_eq!(w["by_name_id"], "rlm_tenant2");
    assert_eq!(w["transports"], 1);
    assert_eq!(w["errors"]["bad_config"], "crossbar.error.invalid_configuration");
    assert_eq!(w["errors"]["again"], "crossbar.error.already_exists");
    assert_eq!(w["errors"]["unknown_worker"], "crossbar.error.no_such_worker");
    assert_eq!(w["errors"]["unknown_realm"], "crossbar.error.no_such_object");
    assert_eq!(w["app_joined"], true, "a client joins the realm the master started: {w}");
    assert_eq!(w["meta_count"], 1, "{w}");
    assert_eq!(w["bridged_on_join"], serde_json::json!(["node1", "app1", "rlm_tenant2", true]), "bridge_meta_api: {w}");
    assert_eq!(w["meta_list_len"], 1);
    assert_eq!(w["stats_sessions"], 1);
    assert_eq!(w["meta_unknown_realm"], "crossbar.error.no_such_object");
    assert_eq!(w["killed"], 1);
    assert_eq!(w["killed_reason"], "wamp.close.killed");
    assert_eq!(w["sessions_closed"], 1);
    assert_eq!(w["app_left"], "wamp.close.system_shutdown");
    assert_eq!(w["app_after_stop"], "wamp.error.no_such_realm");
    assert_eq!(w["realms_final"], serde_json::json!(["realm1"]));
    assert!(w["role_join_before"].as_str().is_some_and(|r| r.starts_with("wamp.error.")), "{w}");
    assert_eq!(w["roles_t3"], serde_json::json!(["rle_anon"]));
    assert_eq!(w["role_join_after"], true, "{w}");
    assert_eq!(w["role_sessions_closed"], 1);
    assert_eq!(w["role_member_left"], "wamp.close.system_shutdown");
    // Workers started and stopped at run time.
    assert_eq!(w["new_worker"], serde_json::json!({"id": "wg1_1", "type": "router", "status": "started"}), "{w}");
    assert_eq!(w["new_worker_has_pid"], true);
    assert_eq!(w["workers_with_new"], serde_json::json!(["app1", "wg1_1"]));
    assert_eq!(w["new_worker_realms"], serde_json::json!([]));
    assert_eq!(w["new_worker_realms_after"], serde_json::json!(["rlm_wg"]));
    assert_eq!(w["transport_port_in_range"], true, "{w}");
    assert_eq!(w["wg_client_joined"], true, "a client joins over the transport the master started: {w}");
    assert_eq!(w["transport_errors"]["again"], "crossbar.error.already_exists");
    assert_eq!(w["transport_errors"]["bad"], "crossbar.error.invalid_configuration");
    assert_eq!(w["transport_ids"], serde_json::json!(["tnp_wg1_1"]));
    assert_eq!(w["transport_ids_after_stop"], serde_json::json!([]));
    // A proxy worker built at run time routes a client to the router worker.
    let px = &w["proxy"];
    assert_eq!(px["connection_id"], "cnc_node1_wg1_1", "{px}");
    assert_eq!(px["route_id"], "route000");
    assert_eq!(
        px["events"],
        serde_json::json!({"proxy_started": ["node1", "cpw-1"], "route_started": ["node1", "cpw-1", "route000"],
                           "connection_starting": ["cpw-1", {"id": "cnc_node1_wg1_1"}]}),
        "{px}"
    );
    assert_eq!(px["routes"], serde_json::json!(["wg-realm"]));
    assert_eq!(px["errors"]["dependent"], "crossbar.error.dependent_objects");
    assert_eq!(px["errors"]["no_connection"], "crossbar.error.no_such_object");
    assert_eq!(px["errors"]["bad_connection"], "crossbar.error.invalid_configuration");
    assert_eq!(px["client_realm"], "wg-realm");
    assert!(px["client_session_count"].as_u64().is_some_and(|n| n >= 1), "{px}");
    assert_eq!(px["after_route_stop"], "wamp.error.no_such_realm", "{px}");
    assert_eq!(px["transports_after"], serde_json::json!([]));
    let we = &w["worker_errors"];
    assert_eq!(we["again"], "crossbar.error.worker_already_running", "{we}");
    assert_eq!(we["bad_type"], "crossbar.error.invalid_configuration");
    assert_eq!(we["bad_id"], "wamp.error.invalid_argument");
    assert_eq!(we["bad_option"], "wamp.error.invalid_argument");
    assert_eq!(we["stop_unknown"], "crossbar.error.no_such_worker");
    assert_eq!(w["stopped_worker"], "wg1_1");
    assert_eq!(w["workers_after_stop"], serde_json::json!(["app1"]));
    assert_eq!(w["stopped_worker_api"], "crossbar.error.no_such_worker");
    assert_eq!(r["status"]["management_node_id"], "node1", "{r}");
    assert_eq!(r["status"]["management_realm"], "edge-mr");
    assert_eq!(r["status"]["pubkey"], serde_json::Value::String(node_key.clone()));
    assert_eq!(r["status"]["running_workers"], 1);
    assert_eq!(r["status"]["controller_pid"], node.pid());
    assert_eq!(r["workers"], serde_json::json!(["app1"]));
    assert_eq!(r["worker"]["type"], "router");
    assert_eq!(r["worker"]["status"], "started");
    assert_eq!(r["no_such_worker"], "crossbar.error.no_such_worker");
    assert_eq!(r["unknown_node"], "crossbar.error.no_such_object");
    assert_eq!(r["unknown_remote"], "wamp.error.no_such_procedure");
    assert!(r["heartbeat_seq"].as_u64().is_some_and(|s| s >= 1), "{r}");
    assert_eq!(r["cluster_ip"], "127.0.0.1", "the node reported its cluster address: {r}");

    // The master dies: the node keeps serving its application realm.
    common::kill(master.pid(), libc::SIGKILL);
    let _ = master.terminate(std::time::Duration::from_secs(5));
    drop(master);
    let app = python("rpc.py", &[&format!("rs://127.0.0.1:{app_port}"), "realm1", "json"]);
    assert_eq!(app["ok"], true, "the node serves without its master: {app}");
    assert!(node.is_running());

    // The master returns: the node reconnects by itself and comes online again.
    let master = start_master(&cbdir_m, port, &su);
    let r = run(&["--shutdown"])
        .unwrap_or_else(|e| panic!("{e}\n--- node ---\n{}\n--- master ---\n{}", node.stderr(), master.stderr()));
    assert_eq!(r["workers"], serde_json::json!(["app1"]), "{r}");
    // remote.node.shutdown: the node answers first (the reference's node goes away unanswered), then stops.
    assert_eq!(r["shutdown"], "<no error>", "{r}");
    assert_eq!(r["status_after_shutdown"], "offline", "{r}");
    let status = node.wait_exit(std::time::Duration::from_secs(15));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "the node stopped cleanly: {}", node.stderr());
    assert!(!cbdir.join("node.pid").exists(), "node.pid removed");
}

#[test]
fn edge_stop_stops_a_running_node() {
    let dir = temp_dir("edge-stop");
    let (cbdir, _) = edge_init(&dir.join("n"));
    // No master anywhere: the node runs (and keeps retrying) anyway.
    let mut node = start_edge(&cbdir, free_port());
    let out =
        Command::new(junction_bin()).args(["edge", "stop", "--cbdir"]).arg(&cbdir).output().expect("run edge stop");
    assert!(out.status.success(), "edge stop: {}", String::from_utf8_lossy(&out.stderr));
    let status = node.wait_exit(std::time::Duration::from_secs(10));
    assert_eq!(status.and_then(|s| s.code()), Some(0), "{}", node.stderr());
    let again = Command::new(junction_bin()).args(["edge", "stop", "--cbdir"]).arg(&cbdir).output().expect("run");
    assert!(!again.status.success(), "nothing left to stop");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("no node is running"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[test]
fn an_application_realm_on_a_worker_group_over_two_nodes_behind_a_web_cluster() {
    let dir = temp_dir("master-arealm");
    let su = superuser_pub(&dir);
    let (cb1, key1) = edge_init(&dir.join("node1"));
    let (cb2, key2) = edge_init_as(&dir.join("node2"), "node2");
    for cb in [&cb1, &cb2] {
        let p = cb.join("config.json");
        let mut cfg: serde_json::Value = serde_json::from_slice(&std::fs::read(&p).expect("config")).expect("json");
        cfg["controller"]["fabric"]["heartbeat"] = serde_json::json!({"startup_delay": 0, "heartbeat_period": 1});
        std::fs::write(&p, serde_json::to_vec_pretty(&cfg).expect("json")).expect("write");
    }
    let port = free_port();
    let mut master = start_master(&dir.join("master"), port, &su);
    let paired = master.python(
        "master.py",
        &[
            &url(port),
            GLOBAL,
            "json",
            "--scenario",
            "pair_two",
            "--superuser",
            SUPERUSER_SEED,
            "--name",
            "mr-app",
            "--node-pubkey",
            &key1,
            "--node-pubkey2",
            &key2,
        ],
    );
    assert_eq!(paired["ok"], true, "{paired}");
    let node1 = start_edge(&cb1, port);
    let node2 = start_edge(&cb2, port);
    let web_port = free_port().to_string();
    let r = common::run_python(
        "master.py",
        &[
            &url(port),
            GLOBAL,
            "json",
            "--scenario",
            "arealm_flow",
            "--superuser",
            SUPERUSER_SEED,
            "--name",
            "mr-app",
            "--web-port",
            &web_port,
            "--timeout",
            "120",
            "--phase",
            "setup",
        ],
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n--- master ---\n{}\n--- node1 ---\n{}\n--- node2 ---\n{}",
            master.stderr(),
            node1.stderr(),
            node2.stderr()
        )
    });
    assert_eq!(r["arealm_status"], "RUNNING", "{r}");
    assert_eq!(r["webcluster_status"], "RUNNING", "{r}");
    // One router worker per placement, one per node; the proxy on node1.
    let n1: Vec<String> = serde_json::from_value(r["node1_workers"].clone()).expect("list");
    let n2: Vec<String> = serde_json::from_value(r["node2_workers"].clone()).expect("list");
    assert!(n1.iter().any(|w| w.starts_with("wg1_")) && n2.iter().any(|w| w.starts_with("wg1_")), "{r}");
    assert!(n1.iter().any(|w| w.starts_with("cpw-")), "{r}");
    // Principals stored on the master authenticate clients at the web cluster.
    assert_eq!(r["client_roles"], serde_json::json!(["app-role", "app-role"]));
    assert!(r["wrong_ticket"].as_str().is_some_and(|e| e.starts_with("wamp.error.")), "{r}");
    // Clients of the web cluster reach each other whichever worker they landed on.
    assert_eq!(r["call"], 5);
    assert_eq!(r["event"], "hello");
    assert_eq!(r["session_count"], 2, "the meta API shows the whole cluster: {r}");
    assert_eq!(r["client3_role"], "app-role", "a principal added at run time reaches the web cluster: {r}");
    assert_eq!(r["worker_restarted"], true);
    assert_eq!(r["after_kill_sessions"], 4, "after kill -9 of a router worker the cluster serves again: {r}");

    // kill -9 of the master while all this runs: nothing is lost, the nodes
    // reconnect, the reconcile loop finds everything in place (no doubles).
    common::kill(master.pid(), libc::SIGKILL);
    let _ = master.terminate(std::time::Duration::from_secs(5));
    drop(master);
    let master = start_master(&dir.join("master"), port, &su);
    let r = common::run_python(
        "master.py",
        &[
            &url(port),
            GLOBAL,
            "cbor",
            "--scenario",
            "arealm_check",
            "--superuser",
            SUPERUSER_SEED,
            "--name",
            "mr-app",
            "--web-port",
            &web_port,
            "--timeout",
            "120",
        ],
    )
    .unwrap_or_else(|e| {
        panic!(
            "{e}\n--- master ---\n{}\n--- node1 ---\n{}\n--- node2 ---\n{}",
            master.stderr(),
            node1.stderr(),
            node2.stderr()
        )
    });
    assert_eq!(r["arealm_status_after_restart"], "RUNNING", "{r}");
    assert_eq!(r["node1_workers_after_restart"], serde_json::json!(n1), "the same workers: {r}");
    assert_eq!(r["node2_workers_after_restart"], serde_json::json!(n2));
    assert_eq!(r["node1_workers_later"], serde_json::json!(n1), "nothing started twice: {r}");
    assert_eq!(r["wg1_1_realms"].as_array().map(Vec::len), Some(1), "one application realm on wg1_1: {r}");
    assert!(r["client_after_restart"].as_u64().is_some_and(|n| n >= 1), "{r}");
    // Stopping stops: the workers are gone from the nodes.
    assert_eq!(r["node1_workers_after"], serde_json::json!([]), "{r}");
    assert_eq!(r["arealm_after"], "STOPPED");
}

#[test]
fn the_master_reads_listen_and_superuser_from_its_config_file() {
    let dir = temp_dir("master-config");
    let su = superuser_pub(&dir);
    let cbdir = dir.join("cbdir");
    std::fs::create_dir_all(&cbdir).expect("cbdir");
    let port = free_port();
    std::fs::write(
        cbdir.join("master.json"),
        serde_json::json!({"listen": format!("127.0.0.1:{port}"), "superuser": su.display().to_string()}).to_string(),
    )
    .expect("write master.json");
    let mut cmd = Command::new(junction_bin());
    cmd.args(["master", "start", "--cbdir"]).arg(&cbdir).env_remove("CROSSBAR_FABRIC_SUPERUSER");
    let (master, _) =
        spawn_until_ready(cmd, "junction: master ready", cbdir.join("no-config")).unwrap_or_else(|e| panic!("{e}"));
    let r = master.python(
        "master.py",
        &[&url(port), GLOBAL, "json", "--scenario", "create", "--superuser", SUPERUSER_SEED, "--name", "from-config"],
    );
    assert_eq!(r["ok"], true, "{r}");
    drop(master);
    // A bad config file is a clear error at start.
    let bad = dir.join("bad.json");
    std::fs::write(&bad, r#"{"listen": "127.0.0.1:1", "superusr": "x"}"#).expect("write");
    let (status, _, err) = common::run_junction(
        &[
            "master".as_ref(),
            "start".as_ref(),
            "--cbdir".as_ref(),
            cbdir.as_os_str(),
            "--config".as_ref(),
            bad.as_os_str(),
        ],
        std::time::Duration::from_secs(10),
    );
    assert!(status.is_some_and(|s| !s.success()), "{err}");
    assert!(err.contains("unknown key 'superusr'"), "{err}");
}

/// Watch-to-pair (Crossbar's `auto_default_mrealm`): the master pairs the
/// node keys it finds, writes their activation files, and a node started
/// with no master URL at all finds its master there.
#[test]
fn watch_to_pair_pairs_the_keys_it_finds_and_nodes_activate_themselves() {
    let dir = temp_dir("master-watch");
    let su = superuser_pub(&dir);
    let nodes = dir.join("nodes");
    let (cbdir1, _) = common::master::edge_init_text(&nodes.join("node1"), "node1");
    // A node key without a node-authid tag: paired as node-<8 hex digits>.
    let init = Command::new(junction_bin())
        .args(["edge", "init", "--appdir"])
        .arg(nodes.join("anon"))
        .env_remove("CROSSBAR_NODE_ID")
        .output()
        .expect("edge init");
    assert!(init.status.success());
    let anon_key = common::master::public_key(
        &std::fs::read_to_string(nodes.join("anon/.crossbar/key.pub")).expect("anon key.pub"),
    );
    // Not a key: logged, nothing else.
    std::fs::create_dir_all(nodes.join("junk/.crossbar")).expect("mkdir");
    std::fs::write(nodes.join("junk/.crossbar/key.pub"), "public-key-ed25519: nope\n").expect("write");

    let port = free_port();
    let cbdir_m = dir.join("master");
    std::fs::create_dir_all(&cbdir_m).expect("mkdir");
    std::fs::write(
        cbdir_m.join("master.json"),
        serde_json::json!({"auto_default_mrealm": {"enabled": true, "watch_to_pair": "../nodes", "write_pairing_file": true}})
            .to_string(),
    )
    .expect("master.json");
    let master = start_master(&cbdir_m, port, &su);
    // A key that appears while the master runs is found by a later scan.
    common::master::edge_init_text(&nodes.join("node3"), "node3");

    // node1's activation file names the master; the node needs nothing else.
    let activate = cbdir1.join("key.activate");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !activate.exists() {
        assert!(std::time::Instant::now() < deadline, "no key.activate\n{}", master.stderr());
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let text = std::fs::read_to_string(&activate).expect("key.activate");
    assert!(text.contains(&format!("management-url: ws://127.0.0.1:{port}/ws")), "{text}");
    assert!(text.contains("node-authid: node1") && text.contains("management-realm: default"), "{text}");
    let mut cmd = Command::new(junction_bin());
    cmd.args(["edge", "start", "--cbdir"]).arg(&cbdir1).args(["--color", "false"]).env_remove("CROSSBAR_FABRIC_URL");
    let (node, _) =
        spawn_until_ready(cmd, "junction: ready", cbdir1.join("no-config")).unwrap_or_else(|e| panic!("{e}"));

    let anon = format!("node-{}", &anon_key[..8]);
    let r = master.python(
        "master.py",
        &[
            &url(port),
            GLOBAL,
            "json",
            "--scenario",
            "watch",
            "--superuser",
            SUPERUSER_SEED,
            "--name",
            &format!("node1,node3,{anon}"),
        ],
    );
    assert_eq!(r["ok"], true, "{r}\n--- node ---\n{}", node.stderr());
    assert_eq!(r["node1_cluster_ip"], "127.0.0.1", "the key's node-cluster-ip: {r}");
    assert_eq!(r["node1_workers"], serde_json::json!([]));
    let left = r["names_after_unpair"].as_array().expect("names");
    assert_eq!(left.len(), 2, "the unpaired key stays unpaired: {r}");
    assert!(left.contains(&"node1".into()), "{r}");
    assert_eq!(r["paired_events_after_unpair"], 0, "{r}");
    let log = master.stderr();
    assert_eq!(log.matches("watch-to-pair: not a node key").count(), 1, "the junk key is logged once:\n{log}");
    drop(node);
    drop(master);
}
