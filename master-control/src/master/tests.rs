//! The management API in memory: no sockets, no sleeps; time is passed in.

use super::*;

const SU_KEY: &str = "21e834bd7452ab8a5f6ac28a764e92395aa71a07c3bb1681172e89ff07733237";
const NODE_KEY: &str = "a93e4376c2e74f79031bb92653b7fc5a0baf1aab28de78f2771f193864f9b314";

fn t(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_795_000_000 + s)
}

fn master() -> Master {
    Master::new(Store::in_memory().expect("store"), t(0), Some(SU_KEY.to_uppercase())).expect("master")
}

fn su() -> Caller {
    Caller { realm: GLOBAL_REALM.into(), session: 1, authid: SUPERUSER.into(), authrole: ROLE_USER.into() }
}

fn owner(realm: &str) -> Caller {
    Caller { realm: realm.into(), session: 2, authid: SUPERUSER.into(), authrole: "owner".into() }
}

fn s(x: &str) -> Value {
    Value::Str(x.into())
}

fn call(m: &mut Master, c: &Caller, p: &str, args: Vec<Value>) -> Outcome {
    m.handle_call(t(12), c, &format!("crossbarfabriccenter.{p}"), &args, &Dict::new())
}

fn ok(o: Outcome) -> (Value, Effects) {
    match o.result {
        Ok(v) => (v, o.effects),
        Err(e) => panic!("expected success, got {e}"),
    }
}

fn err(o: Outcome) -> String {
    assert_eq!(o.effects, Effects::default(), "a failed call has no effects");
    o.result.expect_err("expected an error").uri
}

fn get<'a>(v: &'a Value, k: &str) -> &'a Value {
    v.as_dict().and_then(|d| d.get(k)).unwrap_or(&Value::Null)
}

fn mrealm_dict(name: &str) -> Value {
    let mut d = Dict::new();
    d.insert("name".into(), s(name));
    Value::Dict(d)
}

#[test]
fn status_license_version() {
    let mut m = master();
    let (st, fx) = ok(call(&mut m, &su(), "domain.get_status", vec![]));
    assert_eq!(get(&st, "type"), &s("domain"));
    assert_eq!(get(&st, "realm"), &s(GLOBAL_REALM));
    assert_eq!(get(&st, "uptime"), &s("12 seconds"));
    assert_eq!(get(&st, "tick"), &Value::UInt(1));
    assert!(get(&st, "now").as_str().is_some_and(|n| n.ends_with('Z')));
    assert_eq!(fx, Effects::default());
    assert!(ok(call(&mut m, &su(), "domain.get_license", vec![])).0.as_dict().is_some());
    assert!(get(&ok(call(&mut m, &su(), "domain.get_version", vec![])).0, "junction_ver").as_str().is_some());
}

#[test]
fn a_fresh_master_has_the_default_mrealm_and_mrealms_are_created_listed_and_found() {
    let mut m = master();
    assert_eq!(m.mrealm_names().expect("names"), ["default"]);
    let mut kw = Dict::new();
    kw.insert("return_names".into(), Value::Bool(true));
    let names =
        |m: &mut Master| m.handle_call(t(1), &su(), "crossbarfabriccenter.mrealm.list_mrealms", &[], &kw).result;
    assert_eq!(names(&mut m), Ok(Value::List(vec![s("default")])));

    let (mr, fx) = ok(call(&mut m, &su(), "mrealm.create_mrealm", vec![mrealm_dict("mrealm1")]));
    assert_eq!(get(&mr, "name"), &s("mrealm1"));
    assert_eq!(fx.start_realms, ["mrealm1"]);
    assert_eq!(fx.publish.len(), 1);
    assert_eq!(fx.publish[0].topic, "crossbarfabriccenter.mrealm.on_mrealm_created");
    assert_eq!(fx.publish[0].args, vec![mr.clone()]);
    let oid = get(&mr, "oid").as_str().expect("oid").to_owned();
    assert_eq!(get(&mr, "created").as_u64(), Some(1_795_000_012_000_000), "created is in µs");
    for k in ["label", "description", "tags", "cf_router_worker", "cf_container_worker"] {
        assert_eq!(get(&mr, k), &Value::Null, "{k}");
    }
    assert!(get(&mr, "owner").as_str().is_some());

    assert_eq!(ok(call(&mut m, &su(), "mrealm.get_mrealm", vec![s(&oid)])).0, mr);
    assert_eq!(ok(call(&mut m, &su(), "mrealm.get_mrealm_by_name", vec![s("mrealm1")])).0, mr);
    assert_eq!(names(&mut m), Ok(Value::List(vec![s("default"), s("mrealm1")])));
    let oids = ok(call(&mut m, &su(), "mrealm.list_mrealms", vec![])).0;
    assert_eq!(oids.as_list().map(Vec::len), Some(2));

    // The default mrealm is created once only: deleting it sticks across restarts.
    let def = ok(call(&mut m, &su(), "mrealm.get_mrealm_by_name", vec![s("default")])).0;
    ok(call(&mut m, &su(), "mrealm.delete_mrealm", vec![get(&def, "oid").clone()]));
    let store = std::mem::replace(&mut m.store, Store::in_memory().expect("store"));
    let m2 = Master::new(store, t(100), None).expect("restart");
    assert_eq!(m2.mrealm_names().expect("names"), ["mrealm1"]);
}

#[test]
fn bad_mrealm_input_is_refused_with_crossbar_errors_and_changes_nothing() {
    let mut m = master();
    assert_eq!(
        err(call(&mut m, &su(), "mrealm.create_mrealm", vec![mrealm_dict("default")])),
        "crossbar.error.already_exists"
    );
    for bad in ["ab", "1abc", "with space", "crossbar-x", "wamp.x", "com.crossbario.x", ""] {
        assert_eq!(
            err(call(&mut m, &su(), "mrealm.create_mrealm", vec![mrealm_dict(bad)])),
            "fabric.invalid-realm",
            "{bad:?}"
        );
    }
    assert_eq!(err(call(&mut m, &su(), "mrealm.create_mrealm", vec![s("not a dict")])), "wamp.error.invalid_argument");
    assert_eq!(err(call(&mut m, &su(), "mrealm.create_mrealm", vec![])), "wamp.error.invalid_argument");
    let mut d = Dict::new();
    d.insert("name".into(), Value::UInt(3));
    assert_eq!(err(call(&mut m, &su(), "mrealm.create_mrealm", vec![Value::Dict(d)])), "wamp.error.invalid_argument");
    let mut d = Dict::new();
    d.insert("name".into(), s("okname"));
    d.insert("tags".into(), s("not-a-list"));
    assert_eq!(err(call(&mut m, &su(), "mrealm.create_mrealm", vec![Value::Dict(d)])), "wamp.error.invalid_argument");
    assert_eq!(err(call(&mut m, &su(), "mrealm.get_mrealm", vec![s("not-a-uuid")])), "wamp.error.invalid_argument");
    let nobody = uuid::Uuid::new_v4().to_string();
    assert_eq!(err(call(&mut m, &su(), "mrealm.get_mrealm", vec![s(&nobody)])), "crossbar.error.no_such_object");
    assert_eq!(err(call(&mut m, &su(), "mrealm.get_mrealm_by_name", vec![s("nope")])), "crossbar.error.no_such_object");
    assert_eq!(err(call(&mut m, &su(), "mrealm.delete_mrealm", vec![s(&nobody)])), "crossbar.error.no_such_object");
    assert_eq!(m.mrealm_names().expect("names"), ["default"], "nothing changed");
    // Only role `user` may use the global API; an unknown procedure is no_such_procedure.
    let node = Caller { authrole: "node".into(), ..su() };
    assert_eq!(err(call(&mut m, &node, "mrealm.list_mrealms", vec![])), "wamp.error.not_authorized");
    assert_eq!(err(call(&mut m, &su(), "mrealm.get_status", vec![])), "wamp.error.no_such_procedure");
}

#[test]
fn nodes_pair_authenticate_go_online_and_unpair() {
    let mut m = master();
    ok(call(&mut m, &su(), "mrealm.create_mrealm", vec![mrealm_dict("mrealm1")]));
    let mut extra = Dict::new();
    extra.insert("on_start_apply_config".into(), Value::Bool(false));
    let (node, fx) = ok(call(
        &mut m,
        &su(),
        "mrealm.pair_node",
        vec![s(NODE_KEY), s("mrealm1"), s("node1"), Value::Dict(extra.clone()), s("10.0.0.7")],
    ));
    assert_eq!(get(&node, "authid"), &s("node1"));
    assert_eq!(get(&node, "pubkey"), &s(NODE_KEY));
    assert_eq!(get(&node, "cluster_ip"), &s("10.0.0.7"), "pair_node records the cluster address");
    assert_eq!(fx.publish[0].topic, "crossbarfabriccenter.mrealm.on_node_paired");
    let node_oid = get(&node, "oid").as_str().expect("oid").to_owned();

    assert_eq!(
        err(call(&mut m, &su(), "mrealm.pair_node", vec![s(NODE_KEY), s("mrealm1"), s("node2")])),
        "fabric.node-already-paired"
    );
    assert_eq!(
        err(call(&mut m, &su(), "mrealm.pair_node", vec![s("abcd"), s("mrealm1"), s("node2")])),
        "wamp.error.invalid_argument"
    );
    let other = "b".repeat(64);
    assert_eq!(
        err(call(&mut m, &su(), "mrealm.pair_node", vec![s(&other), s("nope"), s("n")])),
        "fabric.no-such-realm"
    );
    assert_eq!(
        err(call(&mut m, &su(), "mrealm.pair_node", vec![s(&other), s("mrealm1"), s("node1")])),
        "crossbar.error.already_exists"
    );
    assert_eq!(
        err(call(&mut m, &su(), "mrealm.pair_node", vec![s(&other), s("mrealm1"), s("n"), Value::Null, s("nowhere")])),
        "wamp.error.invalid_argument"
    );

    // The node logs in: any realm it asks for, it lands on its mrealm with role node.
    let mut details = Dict::new();
    details.insert("authmethod".into(), s("cryptosign"));
    details.insert("authrole".into(), s("node"));
    let mut ae = Dict::new();
    ae.insert("pubkey".into(), s(NODE_KEY));
    details.insert("authextra".into(), Value::Dict(ae));
    let p = m.authenticate(GLOBAL_REALM, &details).expect("paired node accepted");
    assert_eq!(get(&p, "realm"), &s("mrealm1"));
    assert_eq!(get(&p, "role"), &s("node-node1"), "a role of its own");
    assert_eq!(get(&p, "authid"), &s("node1"));
    assert_eq!(get(&p, "extra"), &Value::Dict(extra));

    // Offline until its session joins, then online; offline again when it leaves.
    let mr = owner("mrealm1");
    let status = |m: &mut Master| get(&ok(call(m, &mr, "mrealm.get_node", vec![s(&node_oid)])).0, "status").clone();
    assert_eq!(status(&mut m), s("offline"));
    // Joined is not online yet: the node's procedures may not be registered.
    m.node_joined("mrealm1", "node1", 77, t(4));
    m.node_joined("mrealm1", "node1", 76, t(4)); // one of its workers
    assert_eq!(status(&mut m), s("offline"));
    let ev = m.node_ready("mrealm1", "node1", 77, t(5)).expect("ready event");
    assert_eq!(ev.topic, "crossbarfabriccenter.mrealm.on_node_ready");
    assert_eq!(ev.args[0], s(&node_oid));
    assert_eq!(status(&mut m), s("online"));
    let mut kw = Dict::new();
    kw.insert("status".into(), s("online"));
    kw.insert("return_names".into(), Value::Bool(true));
    let online = m.handle_call(t(6), &mr, "crossbarfabriccenter.mrealm.get_nodes", &[], &kw).result;
    assert_eq!(online, Ok(Value::List(vec![s("node1")])));
    assert_eq!(get(&ok(call(&mut m, &mr, "mrealm.get_node_by_authid", vec![s("node1")])).0, "oid"), &s(&node_oid));
    assert!(m.session_left("mrealm1", 99, t(7)).is_none(), "not the node's session");
    assert!(m.session_left("mrealm1", 76, t(7)).is_none(), "a worker's session");
    assert_eq!(status(&mut m), s("online"));
    let ev = m.session_left("mrealm1", 77, t(8)).expect("shutdown event");
    assert_eq!(ev.topic, "crossbarfabriccenter.mrealm.on_node_shutdown");
    assert_eq!(status(&mut m), s("offline"));

    // A node that does not announce itself (Crossbar's nodes) is online
    // from its first heartbeat.
    m.node_joined("mrealm1", "node1", 80, t(8));
    let hb = Value::Dict(Dict::new());
    let ev = m.heartbeat("mrealm1", "node1", 80, &hb, t(8)).expect("ready on the first heartbeat");
    assert_eq!(ev.topic, "crossbarfabriccenter.mrealm.on_node_ready");
    assert!(m.heartbeat("mrealm1", "node1", 80, &hb, t(8)).is_none(), "once");
    assert_eq!(status(&mut m), s("online"));
    m.session_left("mrealm1", 80, t(8)).expect("offline again");

    // Unpair: the node's sessions are to be killed, and it can no longer log in.
    assert!(m.node_ready("mrealm1", "ghost", 79, t(9)).is_none(), "not a paired node");
    m.node_ready("mrealm1", "node1", 78, t(9)).expect("online again");
    let (un, fx) = ok(call(&mut m, &su(), "mrealm.unpair_node", vec![s(&node_oid)]));
    assert_eq!(get(&un, "authid"), &Value::Null);
    assert_eq!(get(&un, "killed"), &Value::List(vec![Value::UInt(78)]));
    assert_eq!(fx.kill, vec![("mrealm1".to_owned(), "node1".to_owned())]);
    let topics: Vec<(&str, &str)> = fx.publish.iter().map(|p| (p.realm.as_str(), p.topic.as_str())).collect();
    assert_eq!(
        topics,
        [
            ("mrealm1", "crossbarfabriccenter.mrealm.on_node_shutdown"),
            (GLOBAL_REALM, "crossbarfabriccenter.mrealm.on_node_unpaired")
        ]
    );
    assert_eq!(m.authenticate(GLOBAL_REALM, &details).expect_err("unpaired").uri, "fabric.auth-failed.node-unpaired");
    assert_eq!(err(call(&mut m, &su(), "mrealm.unpair_node", vec![s(&node_oid)])), "fabric.node-not-paired");
    // ... and it can be paired again, elsewhere.
    ok(call(&mut m, &su(), "mrealm.pair_node", vec![s(NODE_KEY), s("default"), s("node1")]));
    let (un, _) = ok(call(&mut m, &su(), "mrealm.unpair_node_by_pubkey", vec![s(NODE_KEY)]));
    assert_eq!(get(&un, "oid"), &s(&node_oid), "the same node object");
}

#[test]
fn the_superuser_is_user_on_the_global_realm_and_owner_on_mrealms() {
    let mut m = master();
    let su_details = |role: Option<&str>| {
        let mut d = Dict::new();
        d.insert("authmethod".into(), s("cryptosign"));
        if let Some(r) = role {
            d.insert("authrole".into(), s(r));
        }
        let mut ae = Dict::new();
        ae.insert("pubkey".into(), s(SU_KEY));
        d.insert("authextra".into(), Value::Dict(ae));
        d
    };
    let g = m.authenticate(GLOBAL_REALM, &su_details(None)).expect("superuser");
    assert_eq!((get(&g, "authid"), get(&g, "role")), (&s("superuser"), &s("user")));
    let o = m.authenticate("default", &su_details(None)).expect("superuser on an mrealm");
    assert_eq!((get(&o, "role"), get(&o, "realm")), (&s("owner"), &s("default")));
    assert_eq!(get(&m.authenticate("default", &su_details(Some("guest"))).expect("guest"), "role"), &s("guest"));
    assert!(m.authenticate("default", &su_details(Some("root"))).is_err());
    assert_eq!(m.authenticate("nope", &su_details(None)).expect_err("no mrealm").uri, "wamp.error.no_such_realm");
    // Another key, or another method, is refused.
    let mut d = su_details(None);
    d.insert(
        "authextra".into(),
        Value::Dict({
            let mut ae = Dict::new();
            ae.insert("pubkey".into(), s(&"c".repeat(64)));
            ae
        }),
    );
    assert!(m.authenticate(GLOBAL_REALM, &d).is_err());
    let mut d = su_details(None);
    d.insert("authmethod".into(), s("ticket"));
    assert!(m.authenticate(GLOBAL_REALM, &d).is_err());

    let (st, _) = ok(call(&mut m, &owner("default"), "mrealm.get_status", vec![]));
    assert_eq!((get(&st, "type"), get(&st, "realm")), (&s("management"), &s("default")));
}

#[test]
fn deleting_an_mrealm_with_nodes_needs_cascade() {
    let mut m = master();
    let (mr, _) = ok(call(&mut m, &su(), "mrealm.create_mrealm", vec![mrealm_dict("mrealm1")]));
    let oid = get(&mr, "oid").clone();
    ok(call(&mut m, &su(), "mrealm.pair_node", vec![s(NODE_KEY), s("mrealm1"), s("node1")]));
    assert_eq!(err(call(&mut m, &su(), "mrealm.delete_mrealm", vec![oid.clone()])), "crossbar.error.dependent_objects");
    let (d, fx) = ok(call(&mut m, &su(), "mrealm.delete_mrealm", vec![oid.clone(), Value::Bool(true)]));
    assert_eq!(get(&d, "name"), &s("mrealm1"));
    assert_eq!(get(&d, "unpaired").as_list().map(Vec::len), Some(1));
    assert_eq!(fx.stop_realms, ["mrealm1"]);
    assert_eq!(fx.kill, vec![("mrealm1".to_owned(), "node1".to_owned())]);
    let topics: Vec<&str> = fx.publish.iter().map(|p| p.topic.as_str()).collect();
    assert_eq!(
        topics,
        ["crossbarfabriccenter.mrealm.on_node_unpaired", "crossbarfabriccenter.mrealm.on_mrealm_deleted"]
    );
    assert_eq!(err(call(&mut m, &su(), "mrealm.get_mrealm", vec![oid])), "crossbar.error.no_such_object");
    assert_eq!(m.mrealm_names().expect("names"), ["default"]);
}

#[test]
fn management_roles_from_guest_to_owner() {
    let p = |x: &str| format!("crossbarfabriccenter.{x}");
    for role in ["owner", "admin"] {
        assert!(mrealm_role_allows(role, &p("mrealm.arealm.delete_arealm")));
        assert!(mrealm_role_allows(role, &p("remote.node.shutdown")));
    }
    for role in ["operator", "developer"] {
        assert!(mrealm_role_allows(role, &p("mrealm.arealm.start_arealm")));
        assert!(mrealm_role_allows(role, &p("remote.router.start_router_realm")));
        assert!(!mrealm_role_allows(role, &p("mrealm.arealm.create_role")));
        assert!(!mrealm_role_allows(role, &p("mrealm.webcluster.remove_webcluster_node")));
    }
    assert!(mrealm_role_allows("guest", &p("mrealm.get_nodes")));
    assert!(mrealm_role_allows("guest", &p("remote.node.get_status")));
    assert!(mrealm_role_allows("guest", &p("remote.realm.meta.wamp.session.count")));
    assert!(!mrealm_role_allows("guest", &p("remote.realm.meta.wamp.session.kill_all")));
    assert!(!mrealm_role_allows("guest", &p("mrealm.arealm.start_arealm")));
    assert!(!mrealm_role_allows("guest", &p("remote.node.shutdown")));
    assert!(!mrealm_role_allows("nobody", &p("mrealm.get_nodes")));
    // Through the API: a guest reads, and is refused a change that leaves the state as it was.
    let mut m = master();
    ok(call(&mut m, &su(), "mrealm.create_mrealm", vec![mrealm_dict("mrealm1")]));
    let guest = Caller { authrole: "guest".into(), ..owner("mrealm1") };
    assert!(call(&mut m, &guest, "mrealm.get_status", vec![]).result.is_ok());
    let mut d = Dict::new();
    d.insert("name".into(), s("rc1"));
    assert_eq!(
        err(call(&mut m, &guest, "mrealm.routercluster.create_routercluster", vec![Value::Dict(d)])),
        "wamp.error.not_authorized"
    );
    assert_eq!(
        ok(call(&mut m, &owner("mrealm1"), "mrealm.routercluster.list_routerclusters", vec![])).0,
        Value::List(vec![])
    );
}
