//! The planner in memory: objects and observations in, calls out.

use super::*;

fn objects(arealm_status: &str) -> Objects {
    let mut o = Objects::default();
    o.nodes.insert("n1".into(), ("node1".into(), Some("10.0.0.1".into()), "aa".repeat(32)));
    o.nodes.insert("n2".into(), ("node2".into(), Some("10.0.0.2".into()), "bb".repeat(32)));
    let k = |v: Vec<Json>| v;
    o.by_kind.insert("workergroup".into(), k(vec![json!({"oid": "wg", "name": "wg1"})]));
    o.by_kind.insert(
        "placement".into(),
        k(vec![
            json!({"worker_group_oid": "wg", "node_oid": "n1", "worker_name": "wg1_1"}),
            json!({"worker_group_oid": "wg", "node_oid": "n2", "worker_name": "wg1_2"}),
        ]),
    );
    o.by_kind.insert(
        "arealm".into(),
        k(vec![json!({"oid": "ar00aa11-0000", "name": "app-realm1", "status": arealm_status, "workergroup_oid": "wg",
                      "webcluster_oid": "wc00bb22-0000", "enable_meta_api": true})]),
    );
    o.by_kind.insert("role".into(), k(vec![json!({"oid": "r1", "name": "app-role"})]));
    o.by_kind.insert("arealm_role".into(), k(vec![json!({"arealm_oid": "ar00aa11-0000", "role_oid": "r1"})]));
    o.by_kind.insert(
        "permission".into(),
        k(vec![json!({"role_oid": "r1", "uri": "com.example.", "match": "prefix", "allow_call": true, "allow_register": true,
                      "allow_publish": true, "allow_subscribe": true, "disclose_caller": false, "disclose_publisher": false})]),
    );
    o.by_kind.insert(
        "principal".into(),
        k(vec![json!({"oid": "p1", "arealm_oid": "ar00aa11-0000", "authid": "client1", "role_oid": "r1"})]),
    );
    o.by_kind.insert(
        "credential".into(),
        k(vec![json!({"principal_oid": "p1", "authmethod": "ticket", "authconfig": {"secret": "secret-ticket-1"}})]),
    );
    o.by_kind.insert(
        "webcluster".into(),
        k(vec![json!({"oid": "wc00bb22-0000", "status": "RUNNING", "tcp_port": 8190, "tcp_interface": "127.0.0.1"})]),
    );
    o.by_kind.insert(
        "webcluster_node".into(),
        k(vec![json!({"cluster_oid": "wc00bb22-0000", "node_oid": "n1", "parallel": 1})]),
    );
    o.by_kind.insert(
        "webservice".into(),
        k(vec![
            json!({"oid": "s1", "webcluster_oid": "wc00bb22-0000", "path": "ws", "type": "websocket", "serializers": ["cbor", "json"]}),
            json!({"oid": "s2", "webcluster_oid": "wc00bb22-0000", "path": "settings", "type": "json", "value": {"a": 1}}),
        ]),
    );
    o
}

fn procs(actions: &[Action]) -> Vec<String> {
    actions.iter().map(|a| format!("{}/{}:{}", a.node, a.worker.as_deref().unwrap_or("-"), a.procedure)).collect()
}

/// Applies the starts of `plan` to `observed` as the nodes would (ports
/// 10000 + n for router transports), and the stops.
fn apply(observed: &mut Observed, actions: &[Action]) {
    let mut next_port = 10000u16;
    for a in actions {
        let node = observed.entry(a.node.clone()).or_default();
        match a.procedure {
            "start_worker" => {
                let kind = a.args[1].as_str().unwrap_or_default().to_owned();
                node.insert(
                    a.args[0].as_str().unwrap_or_default().into(),
                    ObservedWorker { kind, ..Default::default() },
                );
            }
            "stop_worker" => {
                node.remove(a.args[0].as_str().unwrap_or_default());
            }
            _ => {
                let w = node.get_mut(a.worker.as_deref().unwrap_or_default()).expect("worker exists");
                let arg = |i: usize| a.args[i].as_str().unwrap_or_default().to_owned();
                match a.procedure {
                    "start_router_transport" => {
                        w.transports.insert(arg(0), Some(next_port));
                        next_port += 1;
                    }
                    "start_proxy_transport" => {
                        w.transports.insert(arg(0), Some(8190));
                        w.transport_configs.insert(arg(0), a.args[1].clone());
                    }
                    "start_router_realm_role" => w.roles.entry(arg(0)).or_default().push(arg(1)),
                    "stop_router_realm_role" => w.roles.entry(arg(0)).or_default().retain(|r| *r != arg(1)),
                    "start_router_realm" => {
                        w.realms.insert(arg(0), Vec::new());
                    }
                    "start_router_realm_link" => w.realms.get_mut(&arg(0)).expect("realm").push(arg(1)),
                    "start_proxy_connection" => w.connections.push(arg(0)),
                    "start_proxy_realm_route" => {
                        let roles: BTreeMap<String, Vec<String>> =
                            serde_json::from_value(a.args[1].clone()).expect("roles");
                        let id = format!("route{:03}", w.routes.len());
                        w.routes.push((arg(0), id, roles));
                    }
                    "stop_router_realm" => {
                        w.realms.remove(&arg(0));
                    }
                    "stop_router_realm_link" => w.realms.get_mut(&arg(0)).expect("realm").retain(|l| *l != arg(1)),
                    "stop_router_transport" | "stop_proxy_transport" => {
                        w.transports.remove(&arg(0));
                        w.transport_configs.remove(&arg(0));
                    }
                    "stop_proxy_connection" => w.connections.retain(|c| *c != arg(0)),
                    "stop_proxy_realm_route" => w.routes.retain(|(_, id, _)| *id != arg(1)),
                    other => panic!("unexpected {other}"),
                }
            }
        }
    }
}

#[test]
fn an_arealm_on_two_nodes_and_a_web_cluster_converge_and_tear_down() {
    let o = objects("STARTING");
    let mut observed: Observed = BTreeMap::new();
    observed.insert("node1".into(), BTreeMap::new());
    observed.insert("node2".into(), BTreeMap::new());
    // A node's own worker is never touched.
    observed
        .get_mut("node1")
        .unwrap()
        .insert("app1".into(), ObservedWorker { kind: "router".into(), ..Default::default() });

    let p1 = plan(&o, &observed);
    assert_eq!(
        procs(&p1),
        ["node1/-:start_worker", "node1/-:start_worker", "node2/-:start_worker"],
        "workers first (wg1_1, cpw, wg1_2)"
    );
    apply(&mut observed, &p1);
    let p2 = plan(&o, &observed);
    assert!(procs(&p2).contains(&"node1/wg1_1:start_router_transport".to_owned()), "{:?}", procs(&p2));
    assert!(procs(&p2).contains(&"node2/wg1_2:start_router_realm".to_owned()));
    assert!(procs(&p2).contains(&"node1/cpw-wc00bb22-0:start_proxy_transport".to_owned()));
    // Ports are not known yet: no links, no connections.
    assert!(!p2.iter().any(|a| a.procedure == "start_router_realm_link" || a.procedure == "start_proxy_connection"));
    // The transport's proxy principals are this mrealm's node keys; the realm has the arealm's role.
    let t = p2.iter().find(|a| a.procedure == "start_router_transport").expect("transport");
    assert_eq!(
        t.args[1]["auth"]["cryptosign-proxy"]["principals"]["node2"]["authorized_keys"],
        json!(["bb".repeat(32)])
    );
    let r = p2.iter().find(|a| a.procedure == "start_router_realm").expect("realm");
    assert_eq!(r.args[0], json!("rlm_ar00aa11"));
    assert!(r.args[1].get("roles").is_none(), "roles follow once the realm runs");
    // The web cluster's WebSocket service authenticates the arealm's principals.
    let pt = p2.iter().find(|a| a.procedure == "start_proxy_transport").expect("proxy transport");
    assert_eq!(pt.args[1]["endpoint"]["port"], 8190);
    assert_eq!(
        pt.args[1]["paths"]["ws"]["auth"]["ticket"]["principals"]["client1"],
        json!({"ticket": "secret-ticket-1", "role": "app-role", "realm": "app-realm1"})
    );
    assert_eq!(pt.args[1]["paths"]["settings"]["type"], "json");
    apply(&mut observed, &p2);

    let p3 = plan(&o, &observed);
    let names = procs(&p3);
    let role = p3.iter().find(|a| a.procedure == "start_router_realm_role").expect("role");
    assert!(role.args[1].as_str().is_some_and(|id| id.starts_with("rle_app-role_")), "{:?}", role.args);
    assert_eq!(role.args[2]["permissions"][0]["allow"]["call"], true);
    assert!(names.contains(&"node1/wg1_1:start_router_realm_link".to_owned()), "{names:?}");
    assert!(names.contains(&"node2/wg1_2:start_router_realm_link".to_owned()));
    assert_eq!(names.iter().filter(|n| n.ends_with("start_proxy_connection")).count(), 2, "one per router worker");
    let link = p3
        .iter()
        .find(|a| a.worker.as_deref() == Some("wg1_1") && a.procedure == "start_router_realm_link")
        .expect("link");
    assert_eq!(
        link.args[2]["transport"]["endpoint"],
        json!({"type": "tcp", "host": "10.0.0.2", "port": 10001}),
        "at the peer's cluster address"
    );
    assert_eq!(link.args[1], json!("rlk_wg1_2_10001"));
    // The route comes after its connections in the same pass.
    let conn_at = names.iter().rposition(|n| n.ends_with("start_proxy_connection")).expect("connections");
    let route_at = names.iter().position(|n| n.ends_with("start_proxy_realm_route")).expect("route");
    assert!(conn_at < route_at, "{names:?}");
    let route = &p3[route_at];
    assert_eq!(route.args[1]["app-role"], json!(["cnc_node1_wg1_1_10000", "cnc_node2_wg1_2_10001"]));
    assert!(!complete(&o, &observed));
    apply(&mut observed, &p3);
    assert!(plan(&o, &observed).is_empty(), "converged");
    assert!(complete(&o, &observed));

    // Changes to the running realm reach the nodes without a restart:
    // a permission changes (the role is replaced under a new id, the old id dropped) ...
    let mut changed = o.clone();
    changed.by_kind.get_mut("permission").unwrap()[0]["allow_publish"] = json!(false);
    let up = plan(&changed, &observed);
    let names = procs(&up);
    assert_eq!(names.iter().filter(|n| n.ends_with("start_router_realm_role")).count(), 2, "{names:?}");
    assert_eq!(names.iter().filter(|n| n.ends_with("stop_router_realm_role")).count(), 2, "{names:?}");
    let first_stop = names.iter().position(|n| n.ends_with("stop_router_realm_role")).expect("stop");
    let last_start = names.iter().rposition(|n| n.ends_with("start_router_realm_role")).expect("start");
    assert!(last_start < first_stop, "new permissions first: {names:?}");
    apply(&mut observed, &up);
    assert!(plan(&changed, &observed).is_empty());
    // ... and a new principal reaches the web cluster (its transport is replaced).
    changed
        .by_kind
        .get_mut("principal")
        .unwrap()
        .push(json!({"oid": "p2", "arealm_oid": "ar00aa11-0000", "authid": "client2", "role_oid": "r1"}));
    changed
        .by_kind
        .get_mut("credential")
        .unwrap()
        .push(json!({"principal_oid": "p2", "authmethod": "ticket", "authconfig": {"secret": "s2"}}));
    let up = plan(&changed, &observed);
    assert_eq!(procs(&up), ["node1/cpw-wc00bb22-0:stop_proxy_transport", "node1/cpw-wc00bb22-0:start_proxy_transport"]);
    assert_eq!(up[1].args[1]["paths"]["ws"]["auth"]["ticket"]["principals"]["client2"]["ticket"], "s2");
    apply(&mut observed, &up);
    assert!(plan(&changed, &observed).is_empty());

    // The application realm is stopped: its realm, links, transports, workers, connections and route go.
    let stopped = objects("STOPPED");
    let down = plan(&stopped, &observed);
    let names = procs(&down);
    assert!(
        names.contains(&"node1/-:stop_worker".to_owned()) && names.contains(&"node2/-:stop_worker".to_owned()),
        "{names:?}"
    );
    assert!(names.contains(&"node1/cpw-wc00bb22-0:stop_proxy_realm_route".to_owned()));
    assert_eq!(names.iter().filter(|n| n.ends_with("stop_proxy_connection")).count(), 2);
    assert!(!down.iter().any(|a| a.args.first() == Some(&json!("app1"))), "the node's own worker stays");
    apply(&mut observed, &down);
    assert!(plan(&stopped, &observed).is_empty());
    assert!(observed["node1"].contains_key("app1"));
    assert!(observed["node1"].contains_key("cpw-wc00bb22-0"), "the web cluster still runs");
}

#[test]
fn offline_nodes_get_nothing() {
    let o = objects("RUNNING");
    let mut observed: Observed = BTreeMap::new();
    observed.insert("node2".into(), BTreeMap::new());
    let p = plan(&o, &observed);
    assert!(p.iter().all(|a| a.node == "node2"), "{:?}", procs(&p));
    assert!(!complete(&o, &observed), "node1 is missing");
}
