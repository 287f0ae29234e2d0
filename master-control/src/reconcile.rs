//! The reconcile loop's logic (sans-IO): from the master's objects of one
//! management realm, the **desired** state of its nodes (which workers,
//! transports, realms, router links, proxy connections and routes should
//! run where), compared with the **observed** state the nodes report, gives
//! the node API calls that close the gap ([`plan`]), starting what is
//! missing and stopping what the master started but no longer wants.
//!
//! What runs where (the reference's §6, with its defects fixed):
//! * an application realm started on a worker group: on every placement a
//!   router worker `<group>_<i>`, a RawSocket transport `tnp_<worker>` on a
//!   port of [`ROUTER_PORTRANGE`] whose `cryptosign-proxy` principals are
//!   the keys of **this management realm's** nodes (not every node of the
//!   master, §8.10), the realm `rlm_<arealm8>` with its roles, and a router
//!   link `rlk_<peer>_<port>` to every other worker of the group (a full
//!   mesh: the cluster is one router; the port in the id makes a peer that
//!   restarted on another port a new link);
//! * a web cluster started: on every member node `parallel` proxy workers
//!   `cpw-<wc8>-<i>` with a `web` transport `primary` on the cluster's port
//!   (shared by the parallel workers) serving its web services, the
//!   WebSocket services authenticating with the **principals and
//!   credentials of the application realms** started on the cluster (the
//!   reference never uses them, §2.4), and for every such realm a connection
//!   `cnc_<node>_<worker>_<port>` to each of its router workers (at the
//!   node's cluster address, §8.1) and a route from each of its roles to
//!   them.
//!
//! Changes reach running nodes without a restart: roles have ids that name
//! their configuration (`rle_<name>_<digest>`), so changed permissions are
//! a new role id that replaces the role in place before the old id is
//! dropped; a proxy transport whose configuration changed (web services,
//! the realms' principals and credentials) is replaced (stopped and started
//! again: new connections are refused for the moment in between,
//! established sessions stay).
//!
//! Only objects the master names (the prefixes above) are ever stopped: a
//! node's own configured workers and realms are left alone.

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};

/// The ports a router worker's proxy transport may take (the reference's).
pub const ROUTER_PORTRANGE: [u16; 2] = [10000, 10100];

/// Something that should run on a node.
#[derive(Debug, Clone, PartialEq)]
pub enum Want {
    Worker {
        worker: String,
        kind: &'static str,
    },
    Transport {
        worker: String,
        id: String,
        config: Json,
    },
    Realm {
        worker: String,
        id: String,
        config: Json,
    },
    /// A role of a realm, under an id that names its configuration
    /// (`rle_<name>_<hash>`): changed permissions are a new id, which
    /// replaces the role in place.
    Role {
        worker: String,
        realm_id: String,
        id: String,
        config: Json,
    },
    Link {
        worker: String,
        realm_id: String,
        id: String,
        config: Json,
    },
    Connection {
        worker: String,
        id: String,
        config: Json,
    },
    Route {
        worker: String,
        realm: String,
        roles: BTreeMap<String, Vec<String>>,
    },
}

/// A node API call: `crossbarfabriccenter.node.<node>[.worker.<worker>].<procedure>(args)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    pub node: String,
    pub worker: Option<String>,
    pub procedure: &'static str,
    pub args: Vec<Json>,
}

impl Action {
    /// The full URI of the call.
    pub fn uri(&self) -> String {
        match &self.worker {
            Some(w) => format!("crossbarfabriccenter.node.{}.worker.{w}.{}", self.node, self.procedure),
            None => format!("crossbarfabriccenter.node.{}.{}", self.node, self.procedure),
        }
    }
}

/// What one worker runs, as its node reports it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ObservedWorker {
    pub kind: String,
    /// Transport id → port (if TCP).
    pub transports: BTreeMap<String, Option<u16>>,
    /// Router: realm ids; per realm, link ids.
    pub realms: BTreeMap<String, Vec<String>>,
    /// Router: per realm, role ids.
    pub roles: BTreeMap<String, Vec<String>>,
    /// Proxy: transport id → the configuration it was started with.
    pub transport_configs: BTreeMap<String, Json>,
    /// Proxy: connection ids.
    pub connections: Vec<String>,
    /// Proxy: (realm, route id, role → connection ids).
    pub routes: Vec<(String, String, BTreeMap<String, Vec<String>>)>,
}

/// What one node runs (`None` for a node that is offline: nothing is planned for it).
pub type Observed = BTreeMap<String, BTreeMap<String, ObservedWorker>>;

/// The inputs the desired state is computed from: the management realm's
/// nodes (oid → (authid, cluster address, public key)) and its objects by kind.
#[derive(Debug, Clone, Default)]
pub struct Objects {
    pub nodes: BTreeMap<String, (String, Option<String>, String)>,
    pub by_kind: BTreeMap<String, Vec<Json>>,
}

fn s<'a>(d: &'a Json, k: &str) -> &'a str {
    d.get(k).and_then(Json::as_str).unwrap_or("")
}

fn short(oid: &str) -> String {
    oid.chars().filter(|c| *c != '-').take(8).collect()
}

impl Objects {
    fn of(&self, kind: &str) -> &[Json] {
        self.by_kind.get(kind).map(Vec::as_slice).unwrap_or(&[])
    }

    fn running(&self, kind: &str) -> impl Iterator<Item = &Json> {
        self.of(kind).iter().filter(|o| matches!(s(o, "status"), "STARTING" | "RUNNING" | "DEGRADED"))
    }
}

/// The desired state: node authid → wants, in start order.
pub fn desired(o: &Objects, observed: &Observed) -> BTreeMap<String, Vec<Want>> {
    let mut out: BTreeMap<String, Vec<Want>> = BTreeMap::new();
    let authid = |node_oid: &str| o.nodes.get(node_oid).map(|n| n.0.clone());
    // The observed port of a worker's proxy transport.
    let port_of = |node: &str, worker: &str| -> Option<u16> {
        observed.get(node)?.get(worker)?.transports.get(&format!("tnp_{worker}")).copied().flatten()
    };

    // Application realms on worker groups.
    let mut arealm_workers: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for ar in o.running("arealm") {
        let wg = s(ar, "workergroup_oid");
        let placements: Vec<&Json> = o.of("placement").iter().filter(|p| s(p, "worker_group_oid") == wg).collect();
        let realm_id = format!("rlm_{}", short(s(ar, "oid")));
        let roles = arealm_roles(o, ar);
        let workers: Vec<(String, String)> = placements
            .iter()
            .filter_map(|p| Some((authid(s(p, "node_oid"))?, s(p, "worker_name").to_owned())))
            .collect();
        for (node, worker) in &workers {
            let w = out.entry(node.clone()).or_default();
            w.push(Want::Worker { worker: worker.clone(), kind: "router" });
            let principals: serde_json::Map<String, Json> = o
                .nodes
                .values()
                .map(|(a, _, key)| {
                    (a.clone(), json!({"realm": s(ar, "name"), "role": "rlink", "authorized_keys": [key]}))
                })
                .collect();
            w.push(Want::Transport {
                worker: worker.clone(),
                id: format!("tnp_{worker}"),
                config: json!({"type": "rawsocket", "endpoint": {"type": "tcp", "portrange": ROUTER_PORTRANGE},
                               "serializers": ["cbor", "msgpack", "json"],
                               "auth": {"cryptosign-proxy": {"type": "static", "principals": principals}}}),
            });
            w.push(Want::Realm {
                worker: worker.clone(),
                id: realm_id.clone(),
                config: {
                    let bridge = ar.get("bridge_meta_api").and_then(Json::as_bool).unwrap_or(false);
                    let meta = bridge || ar.get("enable_meta_api").and_then(Json::as_bool).unwrap_or(true);
                    json!({"name": s(ar, "name"), "options": {"enable_meta_api": meta, "bridge_meta_api": bridge}})
                },
            });
            for role in &roles {
                w.push(Want::Role {
                    worker: worker.clone(),
                    realm_id: realm_id.clone(),
                    id: format!("rle_{}_{}", s(role, "name"), digest(role)),
                    config: role.clone(),
                });
            }
            for (peer_node, peer) in &workers {
                if peer == worker {
                    continue;
                }
                let (Some(port), Some(host)) = (port_of(peer_node, peer), cluster_ip(o, peer_node)) else { continue };
                w.push(Want::Link {
                    worker: worker.clone(),
                    realm_id: realm_id.clone(),
                    // The id names the peer's port: a restarted peer on another port is a new link.
                    id: format!("rlk_{peer}_{port}"),
                    config: json!({"realm": s(ar, "name"),
                                   "transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": host, "port": port}},
                                   "forward_local_events": true, "forward_remote_events": false,
                                   "forward_local_invocations": true, "forward_remote_invocations": false}),
                });
            }
        }
        arealm_workers.insert(s(ar, "oid").to_owned(), workers);
    }

    // Web clusters.
    for wc in o.running("webcluster") {
        let wc_oid = s(wc, "oid");
        let services: Vec<&Json> = o.of("webservice").iter().filter(|w| s(w, "webcluster_oid") == wc_oid).collect();
        let realms: Vec<&Json> = o.running("arealm").filter(|a| s(a, "webcluster_oid") == wc_oid).collect();
        let mut paths = serde_json::Map::new();
        for svc in &services {
            let mut cfg = (*svc).clone();
            if let Some(m) = cfg.as_object_mut() {
                for k in ["oid", "label", "description", "tags", "path", "webcluster_oid"] {
                    m.remove(k);
                }
            }
            if s(svc, "type") == "websocket" {
                cfg["auth"] = websocket_auth(o, &realms, cfg.get("auth"));
            }
            paths.insert(s(svc, "path").trim_start_matches('/').to_owned(), cfg);
        }
        let port = wc.get("tcp_port").and_then(Json::as_u64).unwrap_or(8080);
        let interface = wc.get("tcp_interface").and_then(Json::as_str).unwrap_or("0.0.0.0");
        for m in o.of("webcluster_node").iter().filter(|m| s(m, "cluster_oid") == wc_oid) {
            let Some(node) = authid(s(m, "node_oid")) else { continue };
            let parallel = m.get("parallel").and_then(Json::as_u64).unwrap_or(1);
            for i in 0..parallel {
                let worker = format!("cpw-{}-{i}", short(wc_oid));
                let w = out.entry(node.clone()).or_default();
                w.push(Want::Worker { worker: worker.clone(), kind: "proxy" });
                w.push(Want::Transport {
                    worker: worker.clone(),
                    id: "primary".into(),
                    config: json!({"type": "web",
                                   "endpoint": {"type": "tcp", "port": port, "interface": interface, "shared": true},
                                   "paths": paths}),
                });
                for ar in &realms {
                    let workers = arealm_workers.get(s(ar, "oid")).cloned().unwrap_or_default();
                    let mut conns = Vec::new();
                    for (rnode, rworker) in &workers {
                        let (Some(rport), Some(host)) = (port_of(rnode, rworker), cluster_ip(o, rnode)) else {
                            continue;
                        };
                        let id = format!("cnc_{rnode}_{rworker}_{rport}");
                        w.push(Want::Connection {
                            worker: worker.clone(),
                            id: id.clone(),
                            config: json!({"realm": s(ar, "name"),
                                           "transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": host, "port": rport}}}),
                        });
                        conns.push(id);
                    }
                    if conns.is_empty() {
                        continue;
                    }
                    let roles: BTreeMap<String, Vec<String>> = arealm_roles(o, ar)
                        .iter()
                        .filter_map(|r| r.get("name").and_then(Json::as_str))
                        .map(|n| (n.to_owned(), conns.clone()))
                        .collect();
                    if !roles.is_empty() {
                        w.push(Want::Route { worker: worker.clone(), realm: s(ar, "name").to_owned(), roles });
                    }
                }
            }
        }
    }
    out
}

/// A short stable digest of a configuration (FNV-1a of its JSON text).
fn digest(v: &Json) -> String {
    let mut h: u64 = 0xcbf29ce484222325;
    for b in v.to_string().as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{:08x}", h as u32)
}

fn cluster_ip(o: &Objects, node_authid: &str) -> Option<String> {
    o.nodes.values().find(|n| n.0 == node_authid).and_then(|n| n.1.clone())
}

/// The roles of an application realm in Junction's (Crossbar's) realm format.
fn arealm_roles(o: &Objects, ar: &Json) -> Vec<Json> {
    let mut out = Vec::new();
    for link in o.of("arealm_role").iter().filter(|l| s(l, "arealm_oid") == s(ar, "oid")) {
        let Some(role) = o.of("role").iter().find(|r| s(r, "oid") == s(link, "role_oid")) else { continue };
        let perms: Vec<Json> = o
            .of("permission")
            .iter()
            .filter(|p| s(p, "role_oid") == s(role, "oid"))
            .map(|p| {
                let b = |k: &str| p.get(k).and_then(Json::as_bool).unwrap_or(false);
                json!({"uri": s(p, "uri"), "match": if s(p, "match").is_empty() { "exact" } else { s(p, "match") },
                       "allow": {"call": b("allow_call"), "register": b("allow_register"), "publish": b("allow_publish"), "subscribe": b("allow_subscribe")},
                       "disclose": {"caller": b("disclose_caller"), "publisher": b("disclose_publisher")}})
            })
            .collect();
        out.push(json!({"name": s(role, "name"), "permissions": perms}));
    }
    out
}

/// A WebSocket service's `auth`: its own block, plus the principals and
/// credentials of the application realms started on the web cluster.
fn websocket_auth(o: &Objects, realms: &[&Json], own: Option<&Json>) -> Json {
    let mut auth = own.cloned().filter(Json::is_object).unwrap_or_else(|| json!({}));
    for ar in realms {
        for p in o.of("principal").iter().filter(|p| s(p, "arealm_oid") == s(ar, "oid")) {
            let role =
                o.of("role").iter().find(|r| s(r, "oid") == s(p, "role_oid")).map(|r| s(r, "name")).unwrap_or("");
            for c in o.of("credential").iter().filter(|c| s(c, "principal_oid") == s(p, "oid")) {
                let cfg = c.get("authconfig").cloned().unwrap_or(Json::Null);
                let authid = s(p, "authid").to_owned();
                let (method, key, entry) = match s(c, "authmethod") {
                    "ticket" => {
                        ("ticket", "principals", json!({"ticket": cfg["secret"], "role": role, "realm": s(ar, "name")}))
                    }
                    "wampcra" => {
                        let mut e = json!({"secret": cfg["secret"], "role": role, "realm": s(ar, "name")});
                        for k in ["salt", "iterations", "keylen"] {
                            if !cfg[k].is_null() {
                                e[k] = cfg[k].clone();
                            }
                        }
                        ("wampcra", "users", e)
                    }
                    "cryptosign" => (
                        "cryptosign",
                        "principals",
                        json!({"authorized_keys": cfg["authorized_keys"], "role": role, "realm": s(ar, "name")}),
                    ),
                    "scram" => {
                        let mut e = cfg.clone();
                        e["role"] = json!(role);
                        e["realm"] = json!(s(ar, "name"));
                        ("scram", "principals", e)
                    }
                    _ => continue,
                };
                let m = &mut auth[method];
                if !m.is_object() {
                    *m = json!({"type": "static", key: {}});
                }
                if m.get(key).is_none() {
                    m[key] = json!({});
                }
                m[key][authid] = entry;
            }
        }
    }
    auth
}

/// Is `id` of `worker` something the master names (so it may stop it)?
fn managed_worker(worker: &str, o: &Objects) -> bool {
    o.of("webcluster").iter().any(|wc| worker.starts_with(&format!("cpw-{}-", short(s(wc, "oid")))))
        || o.of("workergroup").iter().any(|g| {
            worker.strip_prefix(&format!("{}_", s(g, "name"))).is_some_and(|n| n.chars().all(|c| c.is_ascii_digit()))
        })
}

/// The calls that bring the observed nodes to the desired state: starts in
/// dependency order (worker, transport, realm, link, connection, route),
/// then stops of what the master started and no longer wants (routes,
/// connections, links, realms, transports, workers). Offline nodes
/// (missing from `observed`) get nothing.
pub fn plan(o: &Objects, observed: &Observed) -> Vec<Action> {
    let want = desired(o, observed);
    let mut starts = Vec::new();
    let mut stops = Vec::new();
    let act = |node: &str, worker: Option<&str>, procedure: &'static str, args: Vec<Json>| Action {
        node: node.to_owned(),
        worker: worker.map(str::to_owned),
        procedure,
        args,
    };
    for (node, obs) in observed {
        let wants = want.get(node).cloned().unwrap_or_default();
        for w in &wants {
            match w {
                Want::Worker { worker, kind } if !obs.contains_key(worker) => {
                    starts.push(act(node, None, "start_worker", vec![json!(worker), json!(kind), json!({})]))
                }
                Want::Transport { worker, id, config }
                    if obs.get(worker).is_some_and(|ow| !ow.transports.contains_key(id)) =>
                {
                    let p =
                        if obs[worker].kind == "proxy" { "start_proxy_transport" } else { "start_router_transport" };
                    starts.push(act(node, Some(worker), p, vec![json!(id), config.clone()]));
                }
                // A proxy transport whose configuration changed (a web service, a
                // principal or credential of its realms): replaced, stop then start.
                Want::Transport { worker, id, config }
                    if obs.get(worker).is_some_and(|ow| {
                        ow.kind == "proxy" && ow.transport_configs.get(id).is_some_and(|c| !c.is_null() && c != config)
                    }) =>
                {
                    starts.push(act(node, Some(worker), "stop_proxy_transport", vec![json!(id)]));
                    starts.push(act(node, Some(worker), "start_proxy_transport", vec![json!(id), config.clone()]));
                }
                Want::Role { worker, realm_id, id, config } => {
                    let has = obs
                        .get(worker)
                        .filter(|ow| ow.realms.contains_key(realm_id))
                        .map(|ow| ow.roles.get(realm_id).is_some_and(|r| r.contains(id)));
                    if has == Some(false) {
                        starts.push(act(
                            node,
                            Some(worker),
                            "start_router_realm_role",
                            vec![json!(realm_id), json!(id), config.clone()],
                        ));
                    }
                }
                Want::Realm { worker, id, config } if obs.get(worker).is_some_and(|ow| !ow.realms.contains_key(id)) => {
                    starts.push(act(node, Some(worker), "start_router_realm", vec![json!(id), config.clone()]));
                }
                Want::Link { worker, realm_id, id, config } => {
                    let has = obs.get(worker).and_then(|ow| ow.realms.get(realm_id)).map(|l| l.contains(id));
                    if has == Some(false) {
                        starts.push(act(
                            node,
                            Some(worker),
                            "start_router_realm_link",
                            vec![json!(realm_id), json!(id), config.clone()],
                        ));
                    }
                }
                Want::Connection { worker, id, config }
                    if obs.get(worker).is_some_and(|ow| !ow.connections.contains(id)) =>
                {
                    starts.push(act(node, Some(worker), "start_proxy_connection", vec![json!(id), config.clone()]));
                }
                Want::Route { worker, realm, roles }
                    if obs
                        .get(worker)
                        .is_some_and(|ow| !ow.routes.iter().any(|(r, _, rr)| r == realm && rr == roles)) =>
                {
                    starts.push(act(node, Some(worker), "start_proxy_realm_route", vec![json!(realm), json!(roles)]));
                }
                _ => {}
            }
        }
        // Stops: only what the master names, inside workers the master manages.
        for (worker, ow) in obs {
            if !managed_worker(worker, o) {
                continue;
            }
            let wanted_worker = wants.iter().any(|w| matches!(w, Want::Worker { worker: x, .. } if x == worker));
            if !wanted_worker {
                stops.push(act(node, None, "stop_worker", vec![json!(worker)]));
                continue;
            }
            for (realm, id, roles) in &ow.routes {
                if !wants.iter().any(|w| matches!(w, Want::Route { worker: x, realm: r, roles: rr } if x == worker && r == realm && rr == roles)) {
                    stops.push(act(node, Some(worker), "stop_proxy_realm_route", vec![json!(realm), json!(id)]));
                }
            }
            for id in &ow.connections {
                if !wants
                    .iter()
                    .any(|w| matches!(w, Want::Connection { worker: x, id: i, .. } if x == worker && i == id))
                {
                    stops.push(act(node, Some(worker), "stop_proxy_connection", vec![json!(id)]));
                }
            }
            for (realm_id, links) in &ow.realms {
                let realm_wanted = wants
                    .iter()
                    .any(|w| matches!(w, Want::Realm { worker: x, id, .. } if x == worker && id == realm_id));
                for l in links.iter().filter(|l| l.starts_with("rlk_")) {
                    let wanted = wants.iter().any(
                        |w| matches!(w, Want::Link { worker: x, realm_id: r, id, .. } if x == worker && r == realm_id && id == l),
                    );
                    if !wanted && realm_wanted {
                        stops.push(act(node, Some(worker), "stop_router_realm_link", vec![json!(realm_id), json!(l)]));
                    }
                }
                if realm_wanted {
                    for r in ow
                        .roles
                        .get(realm_id)
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                        .iter()
                        .filter(|r| r.starts_with("rle_"))
                    {
                        let wanted = wants.iter().any(
                            |w| matches!(w, Want::Role { worker: x, realm_id: rr, id, .. } if x == worker && rr == realm_id && id == r),
                        );
                        if !wanted {
                            stops.push(act(
                                node,
                                Some(worker),
                                "stop_router_realm_role",
                                vec![json!(realm_id), json!(r)],
                            ));
                        }
                    }
                }
                if !realm_wanted && realm_id.starts_with("rlm_") {
                    stops.push(act(node, Some(worker), "stop_router_realm", vec![json!(realm_id)]));
                }
            }
            for id in ow.transports.keys() {
                let named = id.starts_with("tnp_") || id == "primary";
                if named
                    && !wants
                        .iter()
                        .any(|w| matches!(w, Want::Transport { worker: x, id: i, .. } if x == worker && i == id))
                {
                    let p = if ow.kind == "proxy" { "stop_proxy_transport" } else { "stop_router_transport" };
                    stops.push(act(node, Some(worker), p, vec![json!(id)]));
                }
            }
        }
    }
    starts.extend(stops);
    starts
}

/// True if every desired thing of the objects runs (the object can become
/// `RUNNING`): for an application realm, its realm on every placement (and
/// the links between them); for a web cluster, its transports and routes.
pub fn complete(o: &Objects, observed: &Observed) -> bool {
    let want = desired(o, observed);
    plan(o, observed).iter().all(|a| a.procedure.starts_with("stop_")) && want.keys().all(|n| observed.contains_key(n))
}

#[cfg(test)]
mod tests;
