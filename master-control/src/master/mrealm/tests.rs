//! The management-realm object APIs in memory (no sockets, no sleeps; time
//! is passed in): the reference transcript's flow for router clusters, web
//! clusters and application realms, and bad input for every family, each
//! answered with the exact error URI and changing nothing.

use serde_json::{json, Value as Json};

use super::super::*;
use super::kind;
use crate::value::{from_json, to_json};

const SU_KEY: &str = "21e834bd7452ab8a5f6ac28a764e92395aa71a07c3bb1681172e89ff07733237";
const MR: &str = "mr1";

fn t(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_000_000 + s)
}

fn t_ns(s: u64) -> u64 {
    (1_795_000_000 + s) * 1_000_000_000
}

fn su() -> Caller {
    Caller { realm: GLOBAL_REALM.into(), session: 1, authid: SUPERUSER.into(), authrole: ROLE_USER.into() }
}

fn owner() -> Caller {
    Caller { realm: MR.into(), session: 7, authid: SUPERUSER.into(), authrole: "owner".into() }
}

fn node_key(i: u8) -> String {
    format!("{:02x}", i + 0xa0).repeat(32)
}

/// A master with management realm `mr1` and `n` nodes paired to it
/// (`node1`…), all offline; returns the nodes' oids.
fn setup(n: u8) -> (Master, Vec<String>) {
    let mut m = Master::new(Store::in_memory().expect("store"), t(0), Some(SU_KEY.into())).expect("master");
    let mut d = Dict::new();
    d.insert("name".into(), Value::Str(MR.into()));
    m.handle_call(t(1), &su(), "crossbarfabriccenter.mrealm.create_mrealm", &[Value::Dict(d)], &Dict::new())
        .result
        .expect("mrealm");
    let nodes = (1..=n)
        .map(|i| {
            let args = [Value::Str(node_key(i)), Value::Str(MR.into()), Value::Str(format!("node{i}"))];
            let node = m
                .handle_call(t(2), &su(), "crossbarfabriccenter.mrealm.pair_node", &args, &Dict::new())
                .result
                .expect("pair");
            to_json(&node)["oid"].as_str().expect("oid").to_owned()
        })
        .collect();
    (m, nodes)
}

/// Calls `crossbarfabriccenter.mrealm.<p>` at `t(s)` with positional `args`
/// (a JSON array) and keyword `kwargs` (a JSON object).
fn call_kw(m: &mut Master, s: u64, c: &Caller, p: &str, args: Json, kwargs: Json) -> Outcome {
    let args: Vec<Value> = args.as_array().expect("args").iter().map(from_json).collect();
    let kw = match from_json(&kwargs) {
        Value::Dict(d) => d,
        _ => Dict::new(),
    };
    m.handle_call(t(s), c, &format!("crossbarfabriccenter.mrealm.{p}"), &args, &kw)
}

fn call(m: &mut Master, s: u64, p: &str, args: Json) -> Outcome {
    call_kw(m, s, &owner(), p, args, json!({}))
}

/// The result and the events (topic without `crossbarfabriccenter.mrealm.`,
/// payload) of a call that must succeed; every event is on the caller's
/// management realm.
fn ok(o: Outcome) -> (Json, Vec<(String, Json)>) {
    let v = match o.result {
        Ok(v) => to_json(&v),
        Err(e) => panic!("expected success, got {e}"),
    };
    assert!(o.effects.start_realms.is_empty() && o.effects.stop_realms.is_empty() && o.effects.kill.is_empty());
    let events = o
        .effects
        .publish
        .iter()
        .map(|p| {
            assert_eq!(p.realm, MR, "events go to the management realm");
            assert_eq!(p.args.len(), 1);
            (p.topic.strip_prefix("crossbarfabriccenter.mrealm.").expect("topic").to_owned(), to_json(&p.args[0]))
        })
        .collect();
    (v, events)
}

fn res(o: Outcome) -> Json {
    ok(o).0
}

fn topics(ev: &[(String, Json)]) -> Vec<&str> {
    ev.iter().map(|(t, _)| t.as_str()).collect()
}

/// The error (URI, message) of a call that must fail without effects.
fn fail(o: Outcome) -> (String, String) {
    assert_eq!(o.effects, Effects::default(), "a failed call has no effects");
    let e = o.result.expect_err("expected an error");
    (e.uri, e.message)
}

fn err(o: Outcome) -> String {
    fail(o).0
}

fn oid(v: &Json) -> String {
    v["oid"].as_str().expect("oid").to_owned()
}

fn keys(v: &Json) -> Vec<&str> {
    v.as_object().expect("object").keys().map(String::as_str).collect()
}

/// Everything the management realm holds.
fn snapshot(m: &Master) -> Vec<(String, String, Json)> {
    let mr = m.store.mrealm_by_name(MR).expect("get").expect("mrealm");
    m.store.all_objects(mr["oid"].as_str().expect("oid")).expect("objects")
}

/// Asserts that each call fails with its URI and leaves the state as it was.
fn refused(m: &mut Master, cases: Vec<(&str, Json, &str)>) {
    let before = snapshot(m);
    for (p, args, uri) in cases {
        let o = call(m, 50, p, args.clone());
        assert_eq!(err(o), uri, "{p}({args})");
        assert_eq!(snapshot(m), before, "{p}({args}) changed nothing");
    }
}

#[test]
fn the_router_cluster_flow_of_the_reference() {
    let (mut m, nodes) = setup(1);
    let node1 = &nodes[0];

    let (rc, ev) = ok(call(&mut m, 10, "routercluster.create_routercluster", json!([{"name": "rc1"}])));
    assert_eq!(keys(&rc), ["oid", "label", "description", "tags", "name", "status", "owner_oid", "changed"]);
    assert_eq!((&rc["name"], &rc["status"], &rc["changed"]), (&json!("rc1"), &json!("STOPPED"), &json!(t_ns(10))));
    assert_eq!((&rc["label"], &rc["description"], &rc["tags"]), (&Json::Null, &Json::Null, &Json::Null));
    assert!(rc["owner_oid"].is_string());
    assert_eq!(ev, [("routercluster.on_routercluster_created".to_owned(), rc.clone())]);
    let rc_oid = oid(&rc);

    assert_eq!(res(call(&mut m, 11, "routercluster.list_routerclusters", json!([]))), json!([rc_oid]));
    let names =
        call_kw(&mut m, 11, &owner(), "routercluster.list_routerclusters", json!([]), json!({"return_names": true}));
    assert_eq!(res(names), json!(["rc1"]));
    assert_eq!(res(call(&mut m, 11, "routercluster.get_routercluster", json!([rc_oid]))), rc);
    assert_eq!(res(call(&mut m, 11, "routercluster.get_routercluster_by_name", json!(["rc1"]))), rc);

    let (mb, ev) = ok(call(
        &mut m,
        12,
        "routercluster.add_routercluster_node",
        json!([rc_oid, node1, {"softlimit": 4, "hardlimit": 8}]),
    ));
    assert_eq!(mb, json!({"cluster_oid": rc_oid, "node_oid": node1, "softlimit": 4, "hardlimit": 8}));
    assert_eq!(ev, [("routercluster.on_routercluster_node_added".to_owned(), mb.clone())]);
    assert_eq!(res(call(&mut m, 12, "routercluster.list_routercluster_nodes", json!([rc_oid]))), json!([node1]));
    let names = call_kw(
        &mut m,
        12,
        &owner(),
        "routercluster.list_routercluster_nodes",
        json!([rc_oid]),
        json!({"return_names": true}),
    );
    assert_eq!(res(names), json!(["node1"]));
    let online = call_kw(
        &mut m,
        12,
        &owner(),
        "routercluster.list_routercluster_nodes",
        json!([rc_oid]),
        json!({"filter_by_status": "online"}),
    );
    assert_eq!(res(online), json!([]), "node1 is offline");
    assert_eq!(res(call(&mut m, 12, "routercluster.get_routercluster_node", json!([rc_oid, node1]))), mb);

    // The reference needs cluster_oid in the dict (§8.2); here it is optional, and checked if given.
    let (wg, ev) = ok(call(
        &mut m,
        13,
        "routercluster.add_routercluster_workergroup",
        json!([rc_oid, {"name": "wg1", "scale": 1, "cluster_oid": rc_oid}]),
    ));
    assert_eq!(keys(&wg), ["oid", "label", "description", "tags", "cluster_oid", "name", "scale", "status", "changed"]);
    assert_eq!((&wg["cluster_oid"], &wg["scale"], &wg["status"]), (&json!(rc_oid), &json!(1), &json!("STOPPED")));
    assert_eq!(ev, [("routercluster.on_workergroup_added".to_owned(), wg.clone())]);
    let wg_oid = oid(&wg);
    let wg2 = res(call(
        &mut m,
        13,
        "routercluster.add_routercluster_workergroup",
        json!([rc_oid, {"name": "wg2", "scale": 2}]),
    ));
    assert_eq!(
        res(call(&mut m, 14, "routercluster.list_routercluster_workergroups", json!([rc_oid]))),
        json!([wg_oid, oid(&wg2)])
    );
    let names = call_kw(
        &mut m,
        14,
        &owner(),
        "routercluster.list_routercluster_workergroups",
        json!([rc_oid]),
        json!({"return_names": true}),
    );
    assert_eq!(res(names), json!(["wg1", "wg2"]));
    assert_eq!(res(call(&mut m, 14, "routercluster.get_routercluster_workergroup", json!([rc_oid, wg_oid]))), wg);
    assert_eq!(res(call(&mut m, 14, "routercluster.get_routercluster_workergroup_by_name", json!(["rc1", "wg1"]))), wg);

    // Placements: not exposed by any procedure, kept for the reconcile loop.
    let p: Vec<Json> = m.workergroup_placements(MR, &wg_oid).expect("placements").iter().map(to_json).collect();
    assert_eq!(p.len(), 1);
    assert_eq!(
        keys(&p[0]),
        [
            "oid",
            "label",
            "description",
            "tags",
            "worker_group_oid",
            "cluster_oid",
            "node_oid",
            "worker_name",
            "status",
            "changed",
            "tcp_listening_port"
        ]
    );
    assert_eq!(
        (&p[0]["worker_name"], &p[0]["node_oid"], &p[0]["status"]),
        (&json!("wg1_1"), &json!(node1), &json!("STOPPED"))
    );
    let names: Vec<Json> = m
        .workergroup_placements(MR, &oid(&wg2))
        .expect("p")
        .iter()
        .map(|p| to_json(p)["worker_name"].clone())
        .collect();
    assert_eq!(names, [json!("wg2_1"), json!("wg2_2")]);

    // Start with the node offline: STARTING (with who), RUNNING once the node is online.
    let (st, ev) = ok(call(&mut m, 20, "routercluster.start_routercluster", json!([rc_oid])));
    let who = json!({"session": 7, "authid": "superuser", "authrole": "owner"});
    assert_eq!(st, json!({"oid": rc_oid, "status": "STARTING", "changed": t_ns(20), "who": who}));
    assert_eq!(ev, [("routercluster.on_routercluster_starting".to_owned(), st.clone())]);
    assert_eq!(res(call(&mut m, 21, "routercluster.get_routercluster", json!([rc_oid])))["status"], "STARTING");
    assert!(m.check_routerclusters(MR, t(21)).expect("check").is_empty(), "node1 is still offline");
    m.node_ready(MR, "node1", 99, t(22)).expect("online");
    let ev = m.check_routerclusters(MR, t(23)).expect("check");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].topic, "crossbarfabriccenter.mrealm.routercluster.on_routercluster_started");
    assert_eq!(to_json(&ev[0].args[0]), json!({"oid": rc_oid, "status": "RUNNING", "changed": t_ns(23)}));
    let running = res(call(&mut m, 24, "routercluster.get_routercluster", json!([rc_oid])));
    assert_eq!((&running["status"], &running["changed"]), (&json!("RUNNING"), &json!(t_ns(23))));
    assert_eq!(
        err(call(&mut m, 24, "routercluster.start_routercluster", json!([rc_oid]))),
        "crossbar.error.cannot_start"
    );
    let (uri, msg) = fail(call(&mut m, 24, "routercluster.delete_routercluster", json!([rc_oid])));
    assert_eq!(uri, "crossbar.error.not_stopped");
    assert!(msg.ends_with("currently in status \"RUNNING\""), "{msg}");
    assert_eq!(
        err(call(&mut m, 24, "routercluster.remove_routercluster_workergroup", json!([rc_oid, wg_oid]))),
        "crossbar.error.not_stopped"
    );

    // Stop reaches STOPPED (the reference stays STOPPING for ever, §8.3).
    let (sp, ev) = ok(call(&mut m, 30, "routercluster.stop_routercluster", json!([rc_oid])));
    assert_eq!(sp, json!({"oid": rc_oid, "status": "STOPPING", "changed": t_ns(30), "who": who}));
    assert_eq!(topics(&ev), ["routercluster.on_routercluster_stopping", "routercluster.on_routercluster_stopped"]);
    assert_eq!(ev[0].1, sp);
    assert_eq!(ev[1].1, json!({"oid": rc_oid, "status": "STOPPED", "changed": t_ns(30)}));
    assert_eq!(res(call(&mut m, 31, "routercluster.get_routercluster", json!([rc_oid])))["status"], "STOPPED");
    assert_eq!(
        err(call(&mut m, 31, "routercluster.stop_routercluster", json!([rc_oid]))),
        "crossbar.error.cannot_stop"
    );

    // With every member online, start goes on to RUNNING at once (starting, then started).
    let (_, ev) = ok(call(&mut m, 32, "routercluster.start_routercluster", json!([rc_oid])));
    assert_eq!(topics(&ev), ["routercluster.on_routercluster_starting", "routercluster.on_routercluster_started"]);
    ok(call(&mut m, 33, "routercluster.stop_routercluster", json!([rc_oid])));

    // Teardown, bottom-up; what others depend on cannot go first.
    assert_eq!(
        err(call(&mut m, 40, "routercluster.delete_routercluster", json!([rc_oid]))),
        "crossbar.error.dependent_objects"
    );
    assert_eq!(
        err(call(&mut m, 40, "routercluster.remove_routercluster_node", json!([rc_oid, node1]))),
        "crossbar.error.dependent_objects"
    );
    for w in [&wg, &wg2] {
        let (removed, ev) =
            ok(call(&mut m, 41, "routercluster.remove_routercluster_workergroup", json!([rc_oid, oid(w)])));
        assert_eq!(&removed, w);
        assert_eq!(ev, [("routercluster.on_workergroup_removed".to_owned(), removed.clone())]);
        assert!(m.workergroup_placements(MR, &oid(w)).expect("p").is_empty(), "placements go with their group");
    }
    let (removed, ev) = ok(call(&mut m, 42, "routercluster.remove_routercluster_node", json!([rc_oid, node1])));
    assert_eq!(removed, mb);
    assert_eq!(ev, [("routercluster.on_routercluster_node_removed".to_owned(), mb.clone())]);
    let (deleted, ev) = ok(call(&mut m, 43, "routercluster.delete_routercluster", json!([rc_oid])));
    assert_eq!(deleted["oid"], json!(rc_oid));
    assert_eq!(topics(&ev), ["routercluster.on_routercluster_deleted"]);
    assert_eq!(
        err(call(&mut m, 44, "routercluster.get_routercluster", json!([rc_oid]))),
        "crossbar.error.no_such_object"
    );
    assert_eq!(res(call(&mut m, 44, "routercluster.list_routerclusters", json!([]))), json!([]));
    assert!(snapshot(&m).is_empty(), "nothing left behind");
}

#[test]
fn placements_go_to_the_least_loaded_node_within_its_limits() {
    let (mut m, n) = setup(3);
    let rc = oid(&res(call(&mut m, 10, "routercluster.create_routercluster", json!([{"name": "rc1"}]))));
    res(call(&mut m, 11, "routercluster.add_routercluster_node", json!([rc, n[0], {"softlimit": 1}])));
    res(call(&mut m, 11, "routercluster.add_routercluster_node", json!([rc, n[1]])));
    res(call(&mut m, 11, "routercluster.add_routercluster_node", json!([rc, n[2], {"hardlimit": 1}])));
    let place = |m: &mut Master, name: &str, scale: u64| -> Vec<(String, String)> {
        let wg = oid(&res(call(
            m,
            12,
            "routercluster.add_routercluster_workergroup",
            json!([rc, {"name": name, "scale": scale}]),
        )));
        m.workergroup_placements(MR, &wg)
            .expect("p")
            .iter()
            .map(|p| {
                let p = to_json(p);
                (p["worker_name"].as_str().expect("n").to_owned(), p["node_oid"].as_str().expect("n").to_owned())
            })
            .collect()
    };
    let w = |name: &str, node: &String| (name.to_owned(), node.clone());
    // Fewest placements first, but above a softlimit only if nothing else is left, never at a hardlimit.
    assert_eq!(place(&mut m, "wga", 4), [w("wga_1", &n[0]), w("wga_2", &n[1]), w("wga_3", &n[2]), w("wga_4", &n[1])]);
    assert_eq!(place(&mut m, "wgb", 1), [w("wgb_1", &n[1])], "node1 is at its softlimit, node3 at its hardlimit");
    // Capacity: node3 is full; a softlimit is not a hardlimit.
    assert_eq!(place(&mut m, "wgc", 3).len(), 3);
    // All nodes at a hardlimit: nothing is placed, nothing is stored.
    let rc2 = oid(&res(call(&mut m, 13, "routercluster.create_routercluster", json!([{"name": "rc2"}]))));
    res(call(&mut m, 13, "routercluster.add_routercluster_node", json!([rc2, n[0], {"hardlimit": 2}])));
    refused(
        &mut m,
        vec![(
            "routercluster.add_routercluster_workergroup",
            json!([rc2, {"name": "big", "scale": 3}]),
            "wamp.error.invalid_configuration",
        )],
    );
    assert_eq!(place_count(&m), 4 + 1 + 3);
    fn place_count(m: &Master) -> usize {
        snapshot(m).iter().filter(|(k, _, _)| k == kind::PLACEMENT).count()
    }
}

#[test]
fn bad_router_cluster_input_is_refused_and_changes_nothing() {
    let (mut m, n) = setup(2);
    let rc = oid(&res(call(&mut m, 10, "routercluster.create_routercluster", json!([{"name": "rc1"}]))));
    let empty = oid(&res(call(&mut m, 10, "routercluster.create_routercluster", json!([{"name": "rc_empty"}]))));
    res(call(&mut m, 11, "routercluster.add_routercluster_node", json!([rc, n[0], {"hardlimit": 1}])));
    let wg = oid(&res(call(&mut m, 12, "routercluster.add_routercluster_workergroup", json!([rc, {"name": "wg1"}]))));
    // An object of another management realm, and a node paired elsewhere.
    let def_owner = Caller { realm: "default".into(), ..owner() };
    let other = call_kw(
        &mut m,
        12,
        &def_owner,
        "routercluster.create_routercluster",
        json!([{"name": "elsewhere"}]),
        json!({}),
    );
    assert_eq!(other.effects.publish[0].realm, "default", "on the caller's management realm");
    let other = oid(&to_json(&other.result.expect("created")));
    let args = [Value::Str(node_key(9)), Value::Str("default".into()), Value::Str("stranger".into())];
    let stranger =
        m.handle_call(t(12), &su(), "crossbarfabriccenter.mrealm.pair_node", &args, &Dict::new()).result.expect("pair");
    let stranger = to_json(&stranger)["oid"].as_str().expect("oid").to_owned();
    let nobody = "00000000-0000-4000-8000-000000000000";
    let ia = "wamp.error.invalid_argument";
    let ic = "wamp.error.invalid_configuration";
    let nso = "crossbar.error.no_such_object";
    refused(
        &mut m,
        vec![
            ("routercluster.create_routercluster", json!(["rc2"]), ia),
            ("routercluster.create_routercluster", json!([]), ia),
            ("routercluster.create_routercluster", json!([{}]), ic),
            ("routercluster.create_routercluster", json!([{"name": 5}]), ic),
            ("routercluster.create_routercluster", json!([{"name": "Bad Name"}]), ic),
            ("routercluster.create_routercluster", json!([{"name": "rc"}]), ic),
            ("routercluster.create_routercluster", json!([{"name": "rc2", "colour": "red"}]), ic),
            ("routercluster.create_routercluster", json!([{"name": "rc2", "tags": "x"}]), ic),
            ("routercluster.create_routercluster", json!([{"name": "rc1"}]), "crossbar.error.already_exists"),
            ("routercluster.get_routercluster", json!(["not-a-uuid"]), ia),
            ("routercluster.get_routercluster", json!([nobody]), nso),
            ("routercluster.get_routercluster", json!([other]), nso),
            ("routercluster.get_routercluster_by_name", json!(["elsewhere"]), nso),
            ("routercluster.get_routercluster_by_name", json!([3]), ia),
            ("routercluster.delete_routercluster", json!([other]), nso),
            ("routercluster.start_routercluster", json!([other]), nso),
            ("routercluster.list_routercluster_nodes", json!([nobody]), nso),
            ("routercluster.list_routercluster_nodes", json!([rc, false, "sleeping"]), ia),
            ("routercluster.list_routerclusters", json!(["yes"]), ia),
            ("routercluster.add_routercluster_node", json!([rc, nobody]), nso),
            ("routercluster.add_routercluster_node", json!([rc, stranger]), nso),
            ("routercluster.add_routercluster_node", json!([nobody, n[1]]), nso),
            ("routercluster.add_routercluster_node", json!([rc, n[0]]), "crossbar.error.already_exists"),
            ("routercluster.add_routercluster_node", json!([rc, n[1], {"softlimit": 0}]), ic),
            ("routercluster.add_routercluster_node", json!([rc, n[1], {"softlimit": 9, "hardlimit": 2}]), ic),
            ("routercluster.add_routercluster_node", json!([rc, n[1], {"hardlimit": "8"}]), ic),
            ("routercluster.add_routercluster_node", json!([rc, n[1], {"weight": 1}]), ic),
            ("routercluster.add_routercluster_node", json!([rc, n[1], "soft"]), ia),
            ("routercluster.get_routercluster_node", json!([rc, n[1]]), nso),
            ("routercluster.remove_routercluster_node", json!([rc, n[1]]), nso),
            ("routercluster.remove_routercluster_node", json!([rc, n[0]]), "crossbar.error.dependent_objects"),
            ("routercluster.add_routercluster_workergroup", json!([rc, {"name": "wg2", "scale": 0}]), ic),
            ("routercluster.add_routercluster_workergroup", json!([rc, {"name": "wg2", "scale": 129}]), ic),
            ("routercluster.add_routercluster_workergroup", json!([rc, {"name": "wg2", "scale": "2"}]), ic),
            ("routercluster.add_routercluster_workergroup", json!([rc, {"name": "wg2", "scale": 1.5}]), ic),
            ("routercluster.add_routercluster_workergroup", json!([rc, {"name": "wg-2"}]), ic),
            ("routercluster.add_routercluster_workergroup", json!([rc, {"name": "wg2", "cluster_oid": empty}]), ic),
            ("routercluster.add_routercluster_workergroup", json!([rc, {"name": "wg2", "cluster_oid": "x"}]), ic),
            ("routercluster.add_routercluster_workergroup", json!([rc, {"name": "wg2", "status": "RUNNING"}]), ic),
            (
                "routercluster.add_routercluster_workergroup",
                json!([rc, {"name": "wg1"}]),
                "crossbar.error.already_exists",
            ),
            ("routercluster.add_routercluster_workergroup", json!([empty, {"name": "wg2"}]), ic),
            ("routercluster.add_routercluster_workergroup", json!([rc, {"name": "wg2"}]), ic),
            ("routercluster.add_routercluster_workergroup", json!([nobody, {"name": "wg2"}]), nso),
            ("routercluster.get_routercluster_workergroup", json!([empty, wg]), nso),
            ("routercluster.get_routercluster_workergroup_by_name", json!(["rc1", "wg9"]), nso),
            ("routercluster.remove_routercluster_workergroup", json!([empty, wg]), nso),
            ("routercluster.stop_routercluster", json!([rc]), "crossbar.error.cannot_stop"),
            ("routercluster.no_such_thing", json!([]), "wamp.error.no_such_procedure"),
        ],
    );
    // A role that is not a management user's may not call.
    let node_caller = Caller { authrole: "node".into(), ..owner() };
    assert_eq!(
        err(call_kw(&mut m, 50, &node_caller, "routercluster.list_routerclusters", json!([]), json!({}))),
        "wamp.error.not_authorized"
    );

    // State rules: a RUNNING cluster cannot be deleted or started; a STOPPING one cannot be started.
    ok(call(&mut m, 60, "routercluster.start_routercluster", json!([empty])));
    let (uri, msg) = fail(call(&mut m, 61, "routercluster.delete_routercluster", json!([empty])));
    assert_eq!(
        (uri.as_str(), msg),
        (
            "crossbar.error.not_stopped",
            format!("router cluster with oid {empty} found, but currently in status \"RUNNING\"")
        )
    );
    refused(&mut m, vec![("routercluster.start_routercluster", json!([empty]), "crossbar.error.cannot_start")]);
    // (STOPPING lasts while the reconcile loop tears down; set it as that loop would.)
    let mrealm_oid = m.store.mrealm_by_name(MR).expect("get").expect("mr")["oid"].as_str().expect("oid").to_owned();
    let mut doc = m.store.object(kind::ROUTERCLUSTER, &mrealm_oid, &empty).expect("get").expect("rc");
    doc["status"] = json!("STOPPING");
    m.store.put_object(kind::ROUTERCLUSTER, &mrealm_oid, &empty, &doc).expect("put");
    let (uri, msg) = fail(call(&mut m, 62, "routercluster.start_routercluster", json!([empty])));
    assert_eq!(
        (uri.as_str(), msg.as_str()),
        ("crossbar.error.cannot_start", "cannot start routercluster currently in state STOPPING")
    );
    refused(
        &mut m,
        vec![
            ("routercluster.stop_routercluster", json!([empty]), "crossbar.error.cannot_stop"),
            ("routercluster.delete_routercluster", json!([empty]), "crossbar.error.not_stopped"),
        ],
    );
}

fn ws_service() -> Json {
    json!({"type": "websocket", "serializers": ["cbor", "msgpack", "json"],
           "options": {"allowed_origins": ["*"], "allow_null_origin": true, "enable_webstatus": false},
           "auth": {"ticket": {"type": "static", "principals": {"client1": {"ticket": "secret-ticket-1", "role": "app-role"}}}}})
}

#[test]
fn the_web_cluster_flow_of_the_reference() {
    let (mut m, nodes) = setup(1);
    let node1 = &nodes[0];
    let def = json!({"name": "wc1", "tcp_port": 8190, "tcp_shared": true, "tcp_interface": "127.0.0.1",
                     "http_access_log": true, "http_display_tracebacks": true});
    let (wc, ev) = ok(call(&mut m, 10, "webcluster.create_webcluster", json!([def])));
    let wc_oid = oid(&wc);
    let expected = json!({
        "oid": wc_oid, "label": null, "description": null, "tags": null, "name": "wc1", "status": "STOPPED",
        "owner_oid": wc["owner_oid"], "changed": t_ns(10), "tcp_version": null, "tcp_port": 8190, "tcp_shared": true,
        "tcp_interface": "127.0.0.1", "tcp_backlog": null, "tls_key": null, "tls_certificate": null,
        "tls_chain_certificates": null, "tls_ca_certificates": null, "tls_dhparam": null, "tls_ciphers": null,
        "http_client_timeout": null, "http_hsts": null, "http_hsts_max_age": null, "http_access_log": true,
        "http_display_tracebacks": true
    });
    assert_eq!(wc, expected);
    assert_eq!(keys(&wc), keys(&expected), "the reference's key order");
    assert_eq!(ev, [("webcluster.on_webcluster_created".to_owned(), wc.clone())]);
    assert_eq!(res(call(&mut m, 11, "webcluster.list_webclusters", json!([]))), json!([wc_oid]));
    assert_eq!(res(call(&mut m, 11, "webcluster.list_webclusters", json!([true]))), json!(["wc1"]));
    assert_eq!(res(call(&mut m, 11, "webcluster.get_webcluster", json!([wc_oid]))), wc);
    assert_eq!(res(call(&mut m, 11, "webcluster.get_webcluster_by_name", json!(["wc1"]))), wc);

    let (mb, ev) = ok(call(
        &mut m,
        12,
        "webcluster.add_webcluster_node",
        json!([wc_oid, node1, {"parallel": 1, "standby": false}]),
    ));
    assert_eq!(mb, json!({"cluster_oid": wc_oid, "node_oid": node1, "parallel": 1, "standby": false}));
    assert_eq!(ev, [("webcluster.on_webcluster_node_added".to_owned(), mb.clone())]);
    assert_eq!(res(call(&mut m, 12, "webcluster.list_webcluster_nodes", json!([wc_oid]))), json!([node1]));
    assert_eq!(res(call(&mut m, 12, "webcluster.list_webcluster_nodes", json!([wc_oid, true]))), json!(["node1"]));
    assert_eq!(res(call(&mut m, 12, "webcluster.get_webcluster_node", json!([wc_oid, node1]))), mb);

    let mut services = Vec::new();
    for (path, def) in [
        ("ws", ws_service()),
        ("settings", json!({"type": "json", "value": {"scenario": "master_scenario", "hello": "world"}})),
        ("info", json!({"type": "nodeinfo"})),
    ] {
        let (ws, ev) = ok(call(&mut m, 13, "webcluster.add_webcluster_service", json!([wc_oid, path, def])));
        let mut expected = json!({"oid": ws["oid"], "label": null, "description": null, "tags": null, "webcluster_oid": wc_oid, "path": path});
        for (k, v) in def.as_object().expect("def") {
            expected[k] = v.clone();
        }
        assert_eq!(ws, expected, "type-specific keys pass verbatim");
        assert_eq!(keys(&ws)[..7], ["oid", "label", "description", "tags", "webcluster_oid", "path", "type"]);
        assert_eq!(ev, [("webcluster.on_webservice_added".to_owned(), ws.clone())]);
        services.push(ws);
    }
    let listed = res(call(&mut m, 14, "webcluster.list_webcluster_services", json!([wc_oid])));
    assert_eq!(listed, json!({"info": services[2]["oid"], "settings": services[1]["oid"], "ws": services[0]["oid"]}));
    assert_eq!(
        res(call(&mut m, 14, "webcluster.get_webcluster_service", json!([wc_oid, services[0]["oid"]]))),
        services[0]
    );
    assert_eq!(res(call(&mut m, 14, "webcluster.get_webcluster_service_by_path", json!([wc_oid, "ws"]))), services[0]);

    // Start: STARTING until the proxies run (the reconcile loop says so); no services may be added meanwhile.
    let (st, ev) = ok(call(&mut m, 20, "webcluster.start_webcluster", json!([wc_oid])));
    let who = json!({"session": 7, "authid": "superuser", "authrole": "owner"});
    assert_eq!(st, json!({"oid": wc_oid, "status": "STARTING", "changed": t_ns(20), "who": who}));
    assert_eq!(ev, [("webcluster.on_webcluster_starting".to_owned(), st.clone())]);
    assert_eq!(res(call(&mut m, 21, "webcluster.get_webcluster", json!([wc_oid])))["status"], "STARTING");
    refused(
        &mut m,
        vec![(
            "webcluster.add_webcluster_service",
            json!([wc_oid, "more", {"type": "nodeinfo"}]),
            "crossbar.error.cannot_start",
        )],
    );
    let ev = m.object_running(MR, "webcluster", &wc_oid, t(22)).expect("running");
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0].topic, "crossbarfabriccenter.mrealm.webcluster.on_webcluster_started");
    assert_eq!(to_json(&ev[0].args[0]), json!({"oid": wc_oid, "status": "RUNNING", "changed": t_ns(22)}));
    assert_eq!(res(call(&mut m, 23, "webcluster.get_webcluster", json!([wc_oid])))["status"], "RUNNING");
    assert_eq!(err(call(&mut m, 23, "webcluster.delete_webcluster", json!([wc_oid]))), "crossbar.error.not_stopped");

    let (sp, ev) = ok(call(&mut m, 30, "webcluster.stop_webcluster", json!([wc_oid])));
    assert_eq!(sp, json!({"oid": wc_oid, "status": "STOPPING", "changed": t_ns(30), "who": who}));
    assert_eq!(topics(&ev), ["webcluster.on_webcluster_stopping", "webcluster.on_webcluster_stopped"]);
    assert_eq!(ev[1].1, json!({"oid": wc_oid, "status": "STOPPED", "changed": t_ns(30)}));
    assert_eq!(res(call(&mut m, 31, "webcluster.get_webcluster", json!([wc_oid])))["status"], "STOPPED");

    // Teardown as in the transcript (services, node, cluster) — the delete now works.
    assert_eq!(
        err(call(&mut m, 40, "webcluster.delete_webcluster", json!([wc_oid]))),
        "crossbar.error.dependent_objects"
    );
    for ws in &services {
        let (removed, ev) = ok(call(&mut m, 41, "webcluster.remove_webcluster_service", json!([wc_oid, ws["oid"]])));
        assert_eq!(&removed, ws);
        assert_eq!(ev, [("webcluster.on_webservice_removed".to_owned(), ws.clone())]);
    }
    assert_eq!(
        err(call(&mut m, 41, "webcluster.delete_webcluster", json!([wc_oid]))),
        "crossbar.error.dependent_objects"
    );
    let (removed, ev) = ok(call(&mut m, 42, "webcluster.remove_webcluster_node", json!([wc_oid, node1])));
    assert_eq!(removed, mb);
    assert_eq!(ev, [("webcluster.on_webcluster_node_removed".to_owned(), mb)]);
    let (deleted, ev) = ok(call(&mut m, 43, "webcluster.delete_webcluster", json!([wc_oid])));
    assert_eq!(deleted["oid"], json!(wc_oid));
    assert_eq!(topics(&ev), ["webcluster.on_webcluster_deleted"]);
    assert!(snapshot(&m).is_empty(), "nothing left behind");
}

#[test]
fn bad_web_cluster_input_is_refused_and_changes_nothing() {
    let (mut m, n) = setup(1);
    let wc = oid(&res(call(&mut m, 10, "webcluster.create_webcluster", json!([{"name": "wc1"}]))));
    let wc2 = oid(&res(call(&mut m, 10, "webcluster.create_webcluster", json!([{"name": "wc2"}]))));
    let ws = oid(&res(call(&mut m, 11, "webcluster.add_webcluster_service", json!([wc, "ws", ws_service()]))));
    let ia = "wamp.error.invalid_argument";
    let ic = "wamp.error.invalid_configuration";
    let nso = "crossbar.error.no_such_object";
    let svc = |def: Json| json!([wc, "p", def]);
    refused(
        &mut m,
        vec![
            ("webcluster.create_webcluster", json!([{}]), ic),
            ("webcluster.create_webcluster", json!([{"name": "wc1"}]), "crossbar.error.already_exists"),
            ("webcluster.create_webcluster", json!([{"name": "wc3", "tcp_port": 0}]), ic),
            ("webcluster.create_webcluster", json!([{"name": "wc3", "tcp_port": 70000}]), ic),
            ("webcluster.create_webcluster", json!([{"name": "wc3", "tcp_port": "8080"}]), ic),
            ("webcluster.create_webcluster", json!([{"name": "wc3", "tcp_version": 5}]), ic),
            ("webcluster.create_webcluster", json!([{"name": "wc3", "tcp_shared": "yes"}]), ic),
            ("webcluster.create_webcluster", json!([{"name": "wc3", "tcp_interface": "nowhere"}]), ic),
            ("webcluster.create_webcluster", json!([{"name": "wc3", "tls_key": "k.pem"}]), ic),
            ("webcluster.create_webcluster", json!([{"name": "wc3", "tls_ciphers": "HIGH"}]), ic),
            (
                "webcluster.create_webcluster",
                json!([{"name": "wc3", "tls_key": "k", "tls_certificate": "c", "tls_ca_certificates": "ca"}]),
                ic,
            ),
            ("webcluster.create_webcluster", json!([{"name": "wc3", "http_hsts_max_age": -1}]), ic),
            ("webcluster.create_webcluster", json!([{"name": "wc3", "tcp_ports": 80}]), ic),
            ("webcluster.get_webcluster", json!(["nope"]), ia),
            ("webcluster.get_webcluster_by_name", json!(["wc9"]), nso),
            ("webcluster.add_webcluster_node", json!([wc, n[0], {"parallel": 0}]), ic),
            ("webcluster.add_webcluster_node", json!([wc, n[0], {"standby": "no"}]), ic),
            ("webcluster.add_webcluster_node", json!([wc, "00000000-0000-4000-8000-000000000000"]), nso),
            ("webcluster.get_webcluster_node", json!([wc, n[0]]), nso),
            ("webcluster.remove_webcluster_node", json!([wc, n[0]]), nso),
            // The root path cannot work (reference §8.9), nor can malformed paths.
            ("webcluster.add_webcluster_service", json!([wc, "/", {"type": "nodeinfo"}]), ia),
            ("webcluster.add_webcluster_service", json!([wc, "", {"type": "nodeinfo"}]), ia),
            ("webcluster.add_webcluster_service", json!([wc, "/info", {"type": "nodeinfo"}]), ia),
            ("webcluster.add_webcluster_service", json!([wc, "a//b", {"type": "nodeinfo"}]), ia),
            ("webcluster.add_webcluster_service", json!([wc, "a b", {"type": "nodeinfo"}]), ia),
            (
                "webcluster.add_webcluster_service",
                json!([wc, "ws", {"type": "nodeinfo"}]),
                "crossbar.error.already_exists",
            ),
            ("webcluster.add_webcluster_service", svc(json!({})), ia),
            ("webcluster.add_webcluster_service", svc(json!({"type": "ftp"})), ia),
            ("webcluster.add_webcluster_service", svc(json!({"type": "json"})), ia),
            ("webcluster.add_webcluster_service", svc(json!({"type": "redirect", "url": 5})), ia),
            ("webcluster.add_webcluster_service", svc(json!({"type": "nodeinfo", "colour": "red"})), ia),
            ("webcluster.add_webcluster_service", svc(json!({"type": "static"})), ia),
            (
                "webcluster.add_webcluster_service",
                svc(json!({"type": "static", "directory": "d", "package": "p", "resource": "r"})),
                ia,
            ),
            ("webcluster.add_webcluster_service", svc(json!({"type": "websocket", "serializers": ["xml"]})), ia),
            ("webcluster.add_webcluster_service", svc(json!({"type": "reverseproxy", "host": "h", "port": 0})), ia),
            ("webcluster.add_webcluster_service", svc(json!({"type": "caller", "realm": "r"})), ia),
            ("webcluster.add_webcluster_service", svc(json!({"type": "nodeinfo", "path": "elsewhere"})), ia),
            ("webcluster.add_webcluster_service", json!([wc, "p", "nodeinfo"]), ia),
            (
                "webcluster.add_webcluster_service",
                json!(["00000000-0000-4000-8000-000000000000", "p", {"type": "nodeinfo"}]),
                nso,
            ),
            ("webcluster.get_webcluster_service", json!([wc2, ws]), nso),
            ("webcluster.get_webcluster_service_by_path", json!([wc, "nope"]), nso),
            ("webcluster.remove_webcluster_service", json!([wc2, ws]), nso),
            ("webcluster.delete_webcluster", json!([wc]), "crossbar.error.dependent_objects"),
            ("webcluster.stop_webcluster", json!([wc]), "crossbar.error.cannot_stop"),
        ],
    );
    // Every type the reference accepts is accepted with its required keys.
    let ok_defs = [
        json!({"type": "path", "paths": {}}),
        json!({"type": "redirect", "url": "https://example.com"}),
        json!({"type": "reverseproxy", "host": "example.com", "port": 80}),
        json!({"type": "nodeinfo"}),
        json!({"type": "json", "value": null}),
        json!({"type": "cgi", "directory": "cgi", "processor": "python3"}),
        json!({"type": "wsgi", "module": "app", "object": "app"}),
        json!({"type": "static", "directory": "web"}),
        json!({"type": "websocket"}),
        json!({"type": "websocket-reverseproxy", "backend": {"type": "websocket"}}),
        json!({"type": "caller", "realm": "r1", "role": "anonymous"}),
        json!({"type": "publisher", "realm": "r1", "role": "anonymous"}),
        json!({"type": "archive", "archive": "web.zip", "mime_types": {}}),
        json!({"type": "wap", "templates": "t", "routes": [], "wamp": {}}),
    ];
    for (i, def) in ok_defs.iter().enumerate() {
        ok(call(&mut m, 60, "webcluster.add_webcluster_service", json!([wc2, format!("s{i}/x"), def])));
    }
    let services = res(call(&mut m, 61, "webcluster.list_webcluster_services", json!([wc2])));
    assert_eq!(services.as_object().map(|o| o.len()), Some(super::webcluster::SERVICE_TYPES.len()));
}

/// A router cluster with node1 and worker group wg1, and a web cluster;
/// returns (rc, wg, wc) oids.
fn clusters(m: &mut Master, node: &str) -> (String, String, String) {
    let rc = oid(&res(call(m, 5, "routercluster.create_routercluster", json!([{"name": "rc1"}]))));
    res(call(m, 5, "routercluster.add_routercluster_node", json!([rc, node])));
    let wg =
        oid(&res(call(m, 5, "routercluster.add_routercluster_workergroup", json!([rc, {"name": "wg1", "scale": 1}]))));
    let wc = oid(&res(call(m, 5, "webcluster.create_webcluster", json!([{"name": "wc1", "tcp_port": 8190}]))));
    (rc, wg, wc)
}

#[test]
fn the_application_realm_flow_of_the_reference() {
    let (mut m, nodes) = setup(1);
    let (rc, wg, wc) = clusters(&mut m, &nodes[0]);

    let (role, ev) = ok(call(&mut m, 10, "arealm.create_role", json!([{"name": "app-role"}])));
    let role_oid = oid(&role);
    assert_eq!(
        role,
        json!({"oid": role_oid, "label": null, "description": null, "tags": null, "name": "app-role", "created": t_ns(10), "owner": null})
    );
    assert_eq!(keys(&role), ["oid", "label", "description", "tags", "name", "created", "owner"]);
    assert_eq!(ev, [("arealm.on_role_created".to_owned(), role.clone())]);
    let def = json!({"match": "prefix", "allow_call": true, "allow_register": true, "allow_publish": true, "allow_subscribe": true,
                     "disclose_caller": true, "disclose_publisher": true, "cache": true});
    let (perm, ev) = ok(call(&mut m, 11, "arealm.add_role_permission", json!([role_oid, "com.example.", def])));
    let perm_oid = oid(&perm);
    let expected = json!({"oid": perm_oid, "label": null, "description": null, "tags": null, "role_oid": role_oid,
        "uri": "com.example.", "uri_check_level": null, "match": "prefix", "allow_call": true, "allow_register": true,
        "allow_publish": true, "allow_subscribe": true, "disclose_caller": true, "disclose_publisher": true, "cache": true,
        "created": null, "owner": null});
    assert_eq!(perm, expected);
    assert_eq!(keys(&perm), keys(&expected));
    assert_eq!(ev, [("arealm.on_permission_added".to_owned(), perm.clone())]);
    // A second permission, exact, with defaults (false) for what is not given.
    let p2 = res(call(
        &mut m,
        11,
        "arealm.add_role_permission",
        json!([role_oid, "com.admin.reset", {"allow_call": true, "uri_check_level": "strict"}]),
    ));
    assert_eq!(
        (&p2["match"], &p2["allow_call"], &p2["allow_publish"], &p2["uri_check_level"]),
        (&json!("exact"), &json!(true), &json!(false), &json!("strict"))
    );
    assert_eq!(res(call(&mut m, 12, "arealm.list_roles", json!([]))), json!([role_oid]));
    assert_eq!(res(call(&mut m, 12, "arealm.list_roles", json!([true]))), json!(["app-role"]));
    assert_eq!(res(call(&mut m, 12, "arealm.get_role", json!([role_oid]))), role);
    assert_eq!(res(call(&mut m, 12, "arealm.get_role_by_name", json!(["app-role"]))), role);
    assert_eq!(
        res(call(&mut m, 12, "arealm.list_role_permissions", json!([role_oid]))),
        json!([oid(&p2), perm_oid]),
        "by URI"
    );
    assert_eq!(res(call(&mut m, 12, "arealm.get_role_permission", json!([role_oid, perm_oid]))), perm);
    assert_eq!(
        res(call(&mut m, 12, "arealm.get_role_permissions_by_uri", json!([role_oid, "com.example."]))),
        json!([perm])
    );
    assert_eq!(
        res(call(&mut m, 12, "arealm.get_role_permissions_by_uri", json!([role_oid, "com."]))).as_array().map(Vec::len),
        Some(2)
    );
    assert_eq!(res(call(&mut m, 12, "arealm.list_role_permissions", json!([role_oid, "org."]))), json!([]));

    let (ar, ev) = ok(call(
        &mut m,
        13,
        "arealm.create_arealm",
        json!([{"name": "app-realm1", "enable_meta_api": true, "bridge_meta_api": true}]),
    ));
    let ar_oid = oid(&ar);
    let expected = json!({"oid": ar_oid, "label": null, "description": null, "tags": null, "name": "app-realm1", "status": "STOPPED",
        "workergroup_oid": null, "webcluster_oid": null, "datamarket_oid": null, "changed": t_ns(13), "owner_oid": ar["owner_oid"],
        "enable_meta_api": true, "bridge_meta_api": true});
    assert_eq!(ar, expected);
    assert_eq!(keys(&ar), keys(&expected));
    assert_eq!(ev, [("arealm.on_arealm_created".to_owned(), ar.clone())]);
    assert_eq!(res(call(&mut m, 14, "arealm.list_arealms", json!([]))), json!([ar_oid]));
    assert_eq!(res(call(&mut m, 14, "arealm.list_arealms", json!([true]))), json!(["app-realm1"]));
    assert_eq!(res(call(&mut m, 14, "arealm.get_arealm", json!([ar_oid]))), ar);
    assert_eq!(res(call(&mut m, 14, "arealm.get_arealm_by_name", json!(["app-realm1"]))), ar);

    let (assoc, ev) = ok(call(&mut m, 15, "arealm.add_arealm_role", json!([ar_oid, role_oid, {}])));
    assert_eq!(assoc, json!({"arealm_oid": ar_oid, "role_oid": role_oid}));
    assert_eq!(ev, [("arealm.on_arealm_role_added".to_owned(), assoc.clone())]);
    assert_eq!(res(call(&mut m, 15, "arealm.list_arealm_roles", json!([ar_oid]))), json!([role_oid]));
    assert_eq!(res(call(&mut m, 15, "arealm.list_arealm_roles", json!([ar_oid, true]))), json!(["app-role"]));
    assert_eq!(res(call(&mut m, 15, "arealm.get_arealm_role", json!([ar_oid, role_oid]))), assoc);

    let (pr, ev) = ok(call(
        &mut m,
        16,
        "arealm.add_principal",
        json!([ar_oid, {"authid": "client1", "role_oid": role_oid, "authextra": {"color": "blue"}}]),
    ));
    let pr_oid = oid(&pr);
    let expected = json!({"oid": pr_oid, "label": null, "description": null, "tags": null, "modified": t_ns(16), "arealm_oid": ar_oid,
        "authid": "client1", "role_oid": role_oid, "authextra": {"color": "blue"}});
    assert_eq!(pr, expected);
    assert_eq!(keys(&pr), keys(&expected));
    assert_eq!(ev, [("arealm.on_principal_created".to_owned(), pr.clone())]);
    assert_eq!(res(call(&mut m, 16, "arealm.list_principals", json!([ar_oid]))), json!([pr_oid]));
    assert_eq!(res(call(&mut m, 16, "arealm.list_principals", json!([ar_oid, true]))), json!(["client1"]));
    assert_eq!(res(call(&mut m, 16, "arealm.get_principal", json!([ar_oid, pr_oid]))), pr);
    assert_eq!(res(call(&mut m, 16, "arealm.get_principal_by_name", json!([ar_oid, "client1"]))), pr);

    let (cred, ev) = ok(call(
        &mut m,
        17,
        "arealm.add_principal_credential",
        json!([ar_oid, pr_oid, {"authmethod": "ticket", "authconfig": {"secret": "secret-ticket-1"}}]),
    ));
    let cred_oid = oid(&cred);
    let expected = json!({"oid": cred_oid, "created": t_ns(17), "authmethod": "ticket", "realm": "app-realm1", "authid": "client1",
        "authconfig": {"secret": "secret-ticket-1"}, "principal_oid": pr_oid});
    assert_eq!(cred, expected);
    assert_eq!(keys(&cred), keys(&expected));
    assert!(ev.is_empty(), "credentials hold secrets: no event");
    // The other methods, each with its shape.
    for c in [
        json!({"authmethod": "wampcra", "authconfig": {"secret": "s3cr3t", "salt": "salt123", "iterations": 100, "keylen": 16}}),
        json!({"authmethod": "cryptosign", "authconfig": {"authorized_keys": ["92b450bb5fb168b396ad2bde633825662665b4cb73c1243ce5e834971c9354f5"]}}),
        json!({"authmethod": "scram", "authconfig": {"kdf": "argon2id-13", "iterations": 4096, "memory": 512, "salt": "a1b2", "stored-key": "00ff", "server-key": "ff00"}}),
    ] {
        ok(call(&mut m, 17, "arealm.add_principal_credential", json!([ar_oid, pr_oid, c])));
    }
    let creds = res(call(&mut m, 17, "arealm.list_principal_credentials", json!([ar_oid, pr_oid])));
    assert_eq!(creds.as_array().map(Vec::len), Some(4));
    assert_eq!(creds[0], json!(cred_oid));
    assert_eq!(res(call(&mut m, 17, "arealm.get_principal_credential", json!([ar_oid, pr_oid, cred_oid]))), cred);

    // Start on the worker group and the web cluster: STARTING until the reconcile loop has it running.
    let (st, ev) = ok(call(&mut m, 20, "arealm.start_arealm", json!([ar_oid, wg, wc])));
    let who = json!({"session": 7, "authid": "superuser", "authrole": "owner"});
    assert_eq!(
        st,
        json!({"oid": ar_oid, "status": "STARTING", "router_workergroup_oid": wg, "changed": t_ns(20), "who": who})
    );
    assert_eq!(keys(&st), ["oid", "status", "router_workergroup_oid", "changed", "who"]);
    assert_eq!(ev, [("arealm.on_arealm_starting".to_owned(), st.clone())]);
    let got = res(call(&mut m, 21, "arealm.get_arealm", json!([ar_oid])));
    assert_eq!(
        (&got["status"], &got["workergroup_oid"], &got["webcluster_oid"]),
        (&json!("STARTING"), &json!(wg), &json!(wc))
    );
    assert_eq!(res(call(&mut m, 21, "arealm.list_router_workers", json!([ar_oid]))), json!(["wg1_1"]));
    let stat = res(call(&mut m, 21, "arealm.stat_arealm", json!([ar_oid])));
    assert_eq!((&stat["status"], &stat["roles"], &stat["principals"]), (&json!("STARTING"), &json!(1), &json!(1)));
    assert_eq!(stat["router_workers"], json!([{"worker_name": "wg1_1", "node_oid": nodes[0], "status": "STOPPED"}]));
    let (uri, msg) = fail(call(&mut m, 21, "arealm.delete_arealm", json!([ar_oid])));
    assert_eq!(
        (uri.as_str(), msg),
        (
            "crossbar.error.not_stopped",
            format!("application realm with oid {ar_oid} found, but currently in status \"STARTING\"")
        )
    );
    // What a started realm uses cannot go away or stop under it.
    ok(call(&mut m, 21, "webcluster.start_webcluster", json!([wc])));
    refused(
        &mut m,
        vec![
            ("routercluster.remove_routercluster_workergroup", json!([rc, wg]), "crossbar.error.dependent_objects"),
            ("webcluster.delete_webcluster", json!([wc]), "crossbar.error.not_stopped"),
        ],
    );
    ok(call(&mut m, 21, "routercluster.start_routercluster", json!([rc])));
    refused(
        &mut m,
        vec![
            ("routercluster.stop_routercluster", json!([rc]), "crossbar.error.dependent_objects"),
            ("webcluster.stop_webcluster", json!([wc]), "crossbar.error.dependent_objects"),
            ("routercluster.start_routercluster", json!([rc]), "crossbar.error.cannot_start"),
            ("arealm.start_arealm", json!([ar_oid, wg, wc]), "crossbar.error.cannot_start"),
        ],
    );
    let ev = m.object_running(MR, "arealm", &ar_oid, t(22)).expect("running");
    assert_eq!(ev[0].topic, "crossbarfabriccenter.mrealm.arealm.on_arealm_started");
    assert_eq!(to_json(&ev[0].args[0]), json!({"oid": ar_oid, "status": "RUNNING", "changed": t_ns(22)}));
    assert_eq!(
        m.object_running(MR, "arealm", &ar_oid, t(22)).expect_err("not STARTING").uri,
        "crossbar.error.cannot_start"
    );

    // Stop reaches STOPPED, and a runtime error never happens (§8.4).
    let (sp, ev) = ok(call(&mut m, 30, "arealm.stop_arealm", json!([ar_oid])));
    assert_eq!(sp, json!({"oid": ar_oid, "status": "STOPPING", "changed": t_ns(30), "who": who}));
    assert_eq!(topics(&ev), ["arealm.on_arealm_stopping", "arealm.on_arealm_stopped"]);
    let got = res(call(&mut m, 31, "arealm.get_arealm", json!([ar_oid])));
    assert_eq!(
        (&got["status"], &got["workergroup_oid"], &got["webcluster_oid"]),
        (&json!("STOPPED"), &Json::Null, &Json::Null)
    );
    assert_eq!(res(call(&mut m, 31, "arealm.list_router_workers", json!([ar_oid]))), json!([]));
    ok(call(&mut m, 31, "webcluster.stop_webcluster", json!([wc])));
    ok(call(&mut m, 31, "routercluster.stop_routercluster", json!([rc])));

    // Teardown as in the transcript, where the reference failed (NotImplemented, not_stopped, the wrong event).
    refused(
        &mut m,
        vec![
            ("arealm.remove_principal", json!([ar_oid, pr_oid]), "crossbar.error.dependent_objects"),
            ("arealm.remove_arealm_role", json!([ar_oid, role_oid]), "crossbar.error.dependent_objects"),
            ("arealm.delete_arealm", json!([ar_oid]), "crossbar.error.dependent_objects"),
            ("arealm.delete_role", json!([role_oid]), "crossbar.error.dependent_objects"),
        ],
    );
    for c in creds.as_array().expect("creds") {
        let (removed, ev) = ok(call(&mut m, 40, "arealm.remove_principal_credential", json!([ar_oid, pr_oid, c])));
        assert_eq!(removed["oid"], *c);
        assert!(ev.is_empty());
    }
    let (removed, ev) = ok(call(&mut m, 41, "arealm.remove_principal", json!([ar_oid, pr_oid])));
    assert_eq!(removed, pr);
    assert_eq!(ev, [("arealm.on_principal_removed".to_owned(), pr)]);
    let (removed, ev) = ok(call(&mut m, 42, "arealm.remove_arealm_role", json!([ar_oid, role_oid])));
    assert_eq!(removed, assoc);
    assert_eq!(ev, [("arealm.on_arealm_role_removed".to_owned(), assoc)]);
    let (deleted, ev) = ok(call(&mut m, 43, "arealm.delete_arealm", json!([ar_oid])));
    assert_eq!(deleted["oid"], json!(ar_oid));
    assert_eq!(topics(&ev), ["arealm.on_arealm_deleted"]);
    for p in [&perm, &p2] {
        let (removed, ev) = ok(call(&mut m, 44, "arealm.remove_role_permission", json!([role_oid, p["oid"]])));
        assert_eq!(&removed, p);
        assert_eq!(
            ev,
            [("arealm.on_permission_removed".to_owned(), removed.clone())],
            "not on_arealm_role_removed (§4)"
        );
    }
    let (deleted, ev) = ok(call(&mut m, 45, "arealm.delete_role", json!([role_oid])));
    assert_eq!(deleted, role);
    assert_eq!(ev, [("arealm.on_role_deleted".to_owned(), role)]);
    assert_eq!(res(call(&mut m, 46, "arealm.list_roles", json!([]))), json!([]));
    assert_eq!(res(call(&mut m, 46, "arealm.list_arealms", json!([]))), json!([]));
    // The clusters are torn down as before.
    res(call(&mut m, 47, "routercluster.remove_routercluster_workergroup", json!([rc, wg])));
    res(call(&mut m, 47, "routercluster.remove_routercluster_node", json!([rc, nodes[0]])));
    res(call(&mut m, 47, "routercluster.delete_routercluster", json!([rc])));
    res(call(&mut m, 47, "webcluster.delete_webcluster", json!([wc])));
    assert!(snapshot(&m).is_empty(), "nothing left behind");
}

#[test]
fn bad_application_realm_input_is_refused_and_changes_nothing() {
    let (mut m, nodes) = setup(1);
    let (_rc, wg, wc) = clusters(&mut m, &nodes[0]);
    let role = oid(&res(call(&mut m, 10, "arealm.create_role", json!([{"name": "app-role"}]))));
    let loose = oid(&res(call(&mut m, 10, "arealm.create_role", json!([{"name": "unassociated"}]))));
    res(call(&mut m, 10, "arealm.add_role_permission", json!([role, "com.example.", {"match": "prefix"}])));
    let ar = oid(&res(call(&mut m, 11, "arealm.create_arealm", json!([{"name": "app-realm1"}]))));
    let ar2 = oid(&res(call(&mut m, 11, "arealm.create_arealm", json!([{"name": "app-realm2"}]))));
    res(call(&mut m, 11, "arealm.add_arealm_role", json!([ar, role])));
    let pr = oid(&res(call(&mut m, 12, "arealm.add_principal", json!([ar, {"authid": "client1", "role_oid": role}]))));
    let cred = oid(&res(call(
        &mut m,
        12,
        "arealm.add_principal_credential",
        json!([ar, pr, {"authmethod": "ticket", "authconfig": {"secret": "s"}}]),
    )));
    let nobody = "00000000-0000-4000-8000-000000000000";
    let ia = "wamp.error.invalid_argument";
    let ic = "wamp.error.invalid_configuration";
    let icr = "crossbar.error.invalid_config";
    let nso = "crossbar.error.no_such_object";
    let ae = "crossbar.error.already_exists";
    let dep = "crossbar.error.dependent_objects";
    let perm = |uri: &str, def: Json| json!([role, uri, def]);
    let cr = |method: &str, config: Json| json!([ar, pr, {"authmethod": method, "authconfig": config}]);
    refused(
        &mut m,
        vec![
            // roles
            ("arealm.create_role", json!([{}]), ic),
            ("arealm.create_role", json!([{"name": ""}]), ic),
            ("arealm.create_role", json!([{"name": "a role"}]), ic),
            ("arealm.create_role", json!([{"name": "rlink"}]), ic),
            ("arealm.create_role", json!([{"name": "app-role"}]), ae),
            ("arealm.create_role", json!([{"name": "r2", "permissions": []}]), ic),
            ("arealm.get_role", json!([nobody]), nso),
            ("arealm.get_role_by_name", json!(["nope"]), nso),
            ("arealm.delete_role", json!([role]), dep),
            ("arealm.delete_role", json!([nobody]), nso),
            // permissions
            ("arealm.add_role_permission", perm("com.x", json!({"match": "regex"})), ic),
            ("arealm.add_role_permission", perm("com..x", json!({})), ia),
            ("arealm.add_role_permission", perm("com.x.", json!({"match": "exact"})), ia),
            ("arealm.add_role_permission", perm("", json!({"match": "wildcard"})), ia),
            ("arealm.add_role_permission", perm("com..x.", json!({"match": "prefix"})), ia),
            ("arealm.add_role_permission", perm("com.my topic", json!({})), ia),
            ("arealm.add_role_permission", perm("com.My.x", json!({"uri_check_level": "strict"})), ia),
            ("arealm.add_role_permission", perm("com.x", json!({"uri_check_level": "medium"})), ic),
            ("arealm.add_role_permission", perm("com.x", json!({"allow_call": "yes"})), ic),
            ("arealm.add_role_permission", perm("com.x", json!({"allow": {"call": true}})), ic),
            ("arealm.add_role_permission", perm("com.example.", json!({"match": "prefix"})), ae),
            ("arealm.add_role_permission", json!([nobody, "com.x", {}]), nso),
            ("arealm.add_role_permission", json!([role, 5, {}]), ia),
            ("arealm.get_role_permission", json!([loose, nobody]), nso),
            ("arealm.remove_role_permission", json!([role, nobody]), nso),
            // application realms
            ("arealm.create_arealm", json!([{}]), ic),
            ("arealm.create_arealm", json!([{"name": "with space"}]), ic),
            ("arealm.create_arealm", json!([{"name": "a..b"}]), ic),
            ("arealm.create_arealm", json!([{"name": "crossbar.internal"}]), ic),
            ("arealm.create_arealm", json!([{"name": "app-realm1"}]), ae),
            ("arealm.create_arealm", json!([{"name": "r3", "enable_meta_api": "yes"}]), ic),
            ("arealm.create_arealm", json!([{"name": "r3", "status": "RUNNING"}]), ic),
            ("arealm.get_arealm", json!(["x"]), ia),
            ("arealm.get_arealm_by_name", json!(["nope"]), nso),
            ("arealm.start_arealm", json!([ar, nobody, wc]), nso),
            ("arealm.start_arealm", json!([ar, wg, nobody]), nso),
            ("arealm.start_arealm", json!([ar, wg]), ia),
            ("arealm.start_arealm", json!([ar, wc, wg]), nso),
            ("arealm.stop_arealm", json!([ar]), "crossbar.error.cannot_stop"),
            ("arealm.delete_arealm", json!([ar]), dep),
            ("arealm.stat_arealm", json!([nobody]), nso),
            ("arealm.list_router_workers", json!([nobody]), nso),
            // roles of a realm
            ("arealm.add_arealm_role", json!([ar, nobody]), nso),
            ("arealm.add_arealm_role", json!([nobody, role]), nso),
            ("arealm.add_arealm_role", json!([ar, role]), ae),
            ("arealm.add_arealm_role", json!([ar2, role, {"weight": 1}]), ic),
            ("arealm.add_arealm_role", json!([ar2, role, {"role_oid": loose}]), ic),
            ("arealm.get_arealm_role", json!([ar2, role]), nso),
            ("arealm.remove_arealm_role", json!([ar2, role]), nso),
            ("arealm.remove_arealm_role", json!([ar, role]), dep),
            // principals
            ("arealm.add_principal", json!([ar, {"role_oid": role}]), icr),
            ("arealm.add_principal", json!([ar, {"authid": "a b", "role_oid": role}]), icr),
            ("arealm.add_principal", json!([ar, {"authid": "client2"}]), icr),
            ("arealm.add_principal", json!([ar, {"authid": "client2", "role_oid": "r"}]), ia),
            ("arealm.add_principal", json!([ar, {"authid": "client2", "role_oid": nobody}]), nso),
            ("arealm.add_principal", json!([ar, {"authid": "client2", "role_oid": loose}]), nso),
            ("arealm.add_principal", json!([ar, {"authid": "client2", "role_oid": role, "authextra": "x"}]), icr),
            ("arealm.add_principal", json!([ar, {"authid": "client2", "role_oid": role, "secret": "x"}]), icr),
            ("arealm.add_principal", json!([ar, {"authid": "client1", "role_oid": role}]), ae),
            ("arealm.add_principal", json!([ar2, {"authid": "client1", "role_oid": role}]), nso),
            ("arealm.get_principal", json!([ar2, pr]), nso),
            ("arealm.get_principal_by_name", json!([ar, "nope"]), nso),
            ("arealm.remove_principal", json!([ar, pr]), dep),
            ("arealm.remove_principal", json!([ar2, pr]), nso),
            // credentials
            ("arealm.add_principal_credential", json!([ar, pr, {"authmethod": "anonymous"}]), icr),
            ("arealm.add_principal_credential", json!([ar, pr, {"authmethod": "wampcra"}]), icr),
            ("arealm.add_principal_credential", json!([ar, pr, {"authmethod": "ticket", "secret": "s"}]), icr),
            ("arealm.add_principal_credential", cr("ticket", json!({"secret": "s2"})), ae),
            ("arealm.add_principal_credential", cr("wampcra", json!({})), icr),
            ("arealm.add_principal_credential", cr("wampcra", json!({"secret": "s", "iterations": "100"})), icr),
            ("arealm.add_principal_credential", cr("wampcra", json!({"secret": "s", "keylen": 0})), icr),
            ("arealm.add_principal_credential", cr("wampcra", json!({"secret": "s", "pepper": "p"})), icr),
            ("arealm.add_principal_credential", cr("cryptosign", json!({"authorized_keys": []})), icr),
            ("arealm.add_principal_credential", cr("cryptosign", json!({"authorized_keys": ["abc"]})), icr),
            ("arealm.add_principal_credential", cr("cryptosign", json!({"authorized_keys": "x"})), icr),
            (
                "arealm.add_principal_credential",
                cr(
                    "scram",
                    json!({"iterations": 1, "memory": 1, "salt": "aa", "stored-key": "aa", "server-key": "aa"}),
                ),
                icr,
            ),
            (
                "arealm.add_principal_credential",
                cr(
                    "scram",
                    json!({"kdf": "md5", "iterations": 1, "memory": 1, "salt": "aa", "stored-key": "aa", "server-key": "aa"}),
                ),
                icr,
            ),
            (
                "arealm.add_principal_credential",
                cr(
                    "scram",
                    json!({"kdf": "pbkdf2", "iterations": 1, "memory": 1, "salt": "not hex", "stored-key": "aa", "server-key": "aa"}),
                ),
                icr,
            ),
            (
                "arealm.add_principal_credential",
                json!([ar2, pr, {"authmethod": "ticket", "authconfig": {"secret": "s"}}]),
                nso,
            ),
            ("arealm.get_principal_credential", json!([ar, pr, nobody]), nso),
            ("arealm.remove_principal_credential", json!([ar2, pr, cred]), nso),
            ("arealm.remove_principal_credential", json!([ar, pr, nobody]), nso),
            ("arealm.no_such_thing", json!([]), "wamp.error.no_such_procedure"),
        ],
    );
}

#[test]
fn every_listed_procedure_is_served_and_nothing_else() {
    let (mut m, _) = setup(0);
    let mut seen = std::collections::HashSet::new();
    for p in MREALM_PROCEDURES {
        assert!(seen.insert(p), "{p} listed twice");
        let o = m.handle_call(t(5), &owner(), p, &[], &Dict::new());
        if let Err(e) = o.result {
            assert_ne!(e.uri, "wamp.error.no_such_procedure", "{p} is listed but not served");
        }
    }
    let families = ["routercluster.", "webcluster.", "arealm."];
    let n = MREALM_PROCEDURES.iter().filter(|p| families.iter().any(|f| p.contains(&format!(".mrealm.{f}")))).count();
    assert_eq!(n, 16 + 16 + 32);
    // Not on the global realm.
    let o =
        m.handle_call(t(5), &su(), "crossbarfabriccenter.mrealm.routercluster.list_routerclusters", &[], &Dict::new());
    assert_eq!(o.result.expect_err("global").uri, "wamp.error.no_such_procedure");
}
