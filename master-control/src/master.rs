//! The management API's logic: what each `crossbarfabriccenter.*` call does
//! to the master's state, what it answers, which events it publishes and
//! what the runtime must then do (start or stop a management realm's
//! router realm, close a node's session).
//!
//! [`Master::handle_call`] is sans-IO: the clock comes in as an argument,
//! the result is data ([`Outcome`]), and the only side effect is the store.
//! The service ([`crate::service`]) carries calls in from WAMP and carries
//! [`Effects`] out.

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value as Json};
use wamp_proto::{Dict, Value};

use crate::error::{self, ApiError, StoreError};
use crate::store::Store;
use crate::value::{from_json, to_json, Args};

/// The global realm (Crossbar's domain realm).
pub const GLOBAL_REALM: &str = "com.crossbario.fabric";
/// The dynamic authenticator of the management transport.
pub const AUTHENTICATOR: &str = "com.crossbario.fabric.authenticate";
/// The superuser's authid.
pub const SUPERUSER: &str = "superuser";
/// Role of management users on the global realm.
pub const ROLE_USER: &str = "user";
/// The role a managed node asks for (HELLO `authrole`); on its management
/// realm it gets its own role, [`node_role`].
pub const ROLE_NODE: &str = "node";

/// The role of node `authid` on its management realm: it may register and
/// publish under `crossbarfabriccenter.node.<authid>.` only (no node can
/// take another's procedures), and publish its heartbeats.
pub fn node_role(authid: &str) -> String {
    format!("node-{authid}")
}

/// Is `role` a node's role?
pub fn is_node_role(role: &str) -> bool {
    role.strip_prefix("node-").is_some_and(|a| !a.is_empty())
}

/// The configuration of [`node_role`] (Crossbar's role format).
pub fn node_role_config(authid: &str) -> Json {
    json!({"name": node_role(authid), "permissions": [
        {"uri": format!("crossbarfabriccenter.node.{authid}."), "match": "prefix",
         "allow": {"call": false, "register": true, "publish": true, "subscribe": false},
         "disclose": {"caller": false, "publisher": true}},
        {"uri": "crossbarfabriccenter.node.on_heartbeat", "match": "exact",
         "allow": {"call": false, "register": false, "publish": true, "subscribe": false},
         "disclose": {"caller": false, "publisher": true}},
        {"uri": "crossbarfabriccenter.node.on_worker_heartbeat", "match": "exact",
         "allow": {"call": false, "register": false, "publish": true, "subscribe": false},
         "disclose": {"caller": false, "publisher": true}}
    ]})
}
/// Roles a management user may ask for on a management realm
/// (`owner` when none is asked for).
pub const MREALM_USER_ROLES: [&str; 5] = ["guest", "developer", "operator", "admin", "owner"];

/// May a management user with `role` call `procedure` on a management
/// realm? `owner` and `admin`: everything. `operator` and `developer`:
/// everything but creating, deleting, adding and removing objects (they
/// start, stop and inspect, and use the remote APIs). `guest`: only what
/// reads (`get_*`, `list_*`, `stat_*`, also through `remote.*`).
pub fn mrealm_role_allows(role: &str, procedure: &str) -> bool {
    let last = procedure.rsplit('.').next().unwrap_or("");
    let reads = ["get_", "list_", "stat_"].iter().any(|p| last.starts_with(p))
        || procedure.starts_with("crossbarfabriccenter.remote.realm.meta.")
            && [
                "count",
                "list",
                "get",
                "lookup",
                "match",
                "list_callees",
                "count_callees",
                "list_subscribers",
                "count_subscribers",
            ]
            .contains(&last);
    match role {
        "owner" | "admin" => true,
        "operator" | "developer" => {
            reads || !["create_", "delete_", "add_", "remove_", "pair_", "unpair_"].iter().any(|p| last.starts_with(p))
        }
        "guest" => reads,
        _ => false,
    }
}

/// Realm-name prefixes reserved for the system (Crossbar's list).
const PROTECTED_PREFIXES: [&str; 14] = [
    "io.crossbar",
    "com.crossbario",
    "de.crossbario",
    "crossbar",
    "crossbar-wamp",
    "crossbarfabric",
    "crossbarfabric-wamp",
    "crossbarfabriccenter",
    "crossbario",
    "fabric",
    "autobahn",
    "wamp",
    "ws.wamp",
    "io.wamp",
];

/// Procedures of the global realm (role `user`).
pub const GLOBAL_PROCEDURES: [&str; 14] = [
    "crossbarfabriccenter.domain.get_status",
    "crossbarfabriccenter.domain.get_license",
    "crossbarfabriccenter.domain.get_version",
    "crossbarfabriccenter.mrealm.list_mrealms",
    "crossbarfabriccenter.mrealm.get_mrealm",
    "crossbarfabriccenter.mrealm.get_mrealm_by_name",
    "crossbarfabriccenter.mrealm.create_mrealm",
    "crossbarfabriccenter.mrealm.delete_mrealm",
    "crossbarfabriccenter.mrealm.delete_mrealm_by_name",
    "crossbarfabriccenter.mrealm.pair_node",
    "crossbarfabriccenter.mrealm.unpair_node",
    "crossbarfabriccenter.mrealm.unpair_node_by_pubkey",
    "crossbarfabriccenter.mrealm.get_node_by_name",
    "crossbarfabriccenter.mrealm.list_nodes",
];

/// Procedures of every management realm (management users): the node
/// views, then the management-realm object APIs ([`mrealm`]).
pub const MREALM_PROCEDURES: [&str; 68] = [
    "crossbarfabriccenter.mrealm.get_status",
    "crossbarfabriccenter.mrealm.get_nodes",
    "crossbarfabriccenter.mrealm.get_node",
    "crossbarfabriccenter.mrealm.get_node_by_authid",
    // crossbarfabriccenter.mrealm.routercluster.* (mrealm/routercluster.rs)
    "crossbarfabriccenter.mrealm.routercluster.list_routerclusters",
    "crossbarfabriccenter.mrealm.routercluster.get_routercluster",
    "crossbarfabriccenter.mrealm.routercluster.get_routercluster_by_name",
    "crossbarfabriccenter.mrealm.routercluster.create_routercluster",
    "crossbarfabriccenter.mrealm.routercluster.delete_routercluster",
    "crossbarfabriccenter.mrealm.routercluster.start_routercluster",
    "crossbarfabriccenter.mrealm.routercluster.stop_routercluster",
    "crossbarfabriccenter.mrealm.routercluster.list_routercluster_nodes",
    "crossbarfabriccenter.mrealm.routercluster.get_routercluster_node",
    "crossbarfabriccenter.mrealm.routercluster.add_routercluster_node",
    "crossbarfabriccenter.mrealm.routercluster.remove_routercluster_node",
    "crossbarfabriccenter.mrealm.routercluster.list_routercluster_workergroups",
    "crossbarfabriccenter.mrealm.routercluster.get_routercluster_workergroup",
    "crossbarfabriccenter.mrealm.routercluster.get_routercluster_workergroup_by_name",
    "crossbarfabriccenter.mrealm.routercluster.add_routercluster_workergroup",
    "crossbarfabriccenter.mrealm.routercluster.remove_routercluster_workergroup",
    // crossbarfabriccenter.mrealm.webcluster.* (mrealm/webcluster.rs)
    "crossbarfabriccenter.mrealm.webcluster.list_webclusters",
    "crossbarfabriccenter.mrealm.webcluster.get_webcluster",
    "crossbarfabriccenter.mrealm.webcluster.get_webcluster_by_name",
    "crossbarfabriccenter.mrealm.webcluster.create_webcluster",
    "crossbarfabriccenter.mrealm.webcluster.delete_webcluster",
    "crossbarfabriccenter.mrealm.webcluster.start_webcluster",
    "crossbarfabriccenter.mrealm.webcluster.stop_webcluster",
    "crossbarfabriccenter.mrealm.webcluster.list_webcluster_nodes",
    "crossbarfabriccenter.mrealm.webcluster.get_webcluster_node",
    "crossbarfabriccenter.mrealm.webcluster.add_webcluster_node",
    "crossbarfabriccenter.mrealm.webcluster.remove_webcluster_node",
    "crossbarfabriccenter.mrealm.webcluster.add_webcluster_service",
    "crossbarfabriccenter.mrealm.webcluster.list_webcluster_services",
    "crossbarfabriccenter.mrealm.webcluster.get_webcluster_service",
    "crossbarfabriccenter.mrealm.webcluster.get_webcluster_service_by_path",
    "crossbarfabriccenter.mrealm.webcluster.remove_webcluster_service",
    // crossbarfabriccenter.mrealm.arealm.* (mrealm/arealm.rs)
    "crossbarfabriccenter.mrealm.arealm.list_roles",
    "crossbarfabriccenter.mrealm.arealm.get_role",
    "crossbarfabriccenter.mrealm.arealm.get_role_by_name",
    "crossbarfabriccenter.mrealm.arealm.create_role",
    "crossbarfabriccenter.mrealm.arealm.delete_role",
    "crossbarfabriccenter.mrealm.arealm.list_role_permissions",
    "crossbarfabriccenter.mrealm.arealm.get_role_permissions_by_uri",
    "crossbarfabriccenter.mrealm.arealm.get_role_permission",
    "crossbarfabriccenter.mrealm.arealm.add_role_permission",
    "crossbarfabriccenter.mrealm.arealm.remove_role_permission",
    "crossbarfabriccenter.mrealm.arealm.list_arealms",
    "crossbarfabriccenter.mrealm.arealm.get_arealm",
    "crossbarfabriccenter.mrealm.arealm.get_arealm_by_name",
    "crossbarfabriccenter.mrealm.arealm.create_arealm",
    "crossbarfabriccenter.mrealm.arealm.delete_arealm",
    "crossbarfabriccenter.mrealm.arealm.start_arealm",
    "crossbarfabriccenter.mrealm.arealm.stop_arealm",
    "crossbarfabriccenter.mrealm.arealm.stat_arealm",
    "crossbarfabriccenter.mrealm.arealm.list_router_workers",
    "crossbarfabriccenter.mrealm.arealm.list_arealm_roles",
    "crossbarfabriccenter.mrealm.arealm.get_arealm_role",
    "crossbarfabriccenter.mrealm.arealm.add_arealm_role",
    "crossbarfabriccenter.mrealm.arealm.remove_arealm_role",
    "crossbarfabriccenter.mrealm.arealm.list_principals",
    "crossbarfabriccenter.mrealm.arealm.get_principal",
    "crossbarfabriccenter.mrealm.arealm.get_principal_by_name",
    "crossbarfabriccenter.mrealm.arealm.add_principal",
    "crossbarfabriccenter.mrealm.arealm.remove_principal",
    "crossbarfabriccenter.mrealm.arealm.list_principal_credentials",
    "crossbarfabriccenter.mrealm.arealm.get_principal_credential",
    "crossbarfabriccenter.mrealm.arealm.add_principal_credential",
    "crossbarfabriccenter.mrealm.arealm.remove_principal_credential",
];

/// Who is calling (from the INVOCATION's caller disclosure).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The realm the call was made on.
    pub realm: String,
    pub session: u64,
    pub authid: String,
    pub authrole: String,
}

/// An event to publish.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    pub realm: String,
    pub topic: String,
    pub args: Vec<Value>,
}

/// What the runtime must do after a call.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Effects {
    /// Events, in order.
    pub publish: Vec<Publication>,
    /// Management realms whose router realm must start (by name).
    pub start_realms: Vec<String>,
    /// Management realms whose router realm must stop (by name).
    pub stop_realms: Vec<String>,
    /// Sessions to close: (realm, authid). When the result is a node
    /// object, the runtime adds `killed` (the closed session ids) to it.
    pub kill: Vec<(String, String)>,
}

/// A call's result plus what follows from it.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub result: Result<Value, ApiError>,
    pub effects: Effects,
}

/// Run-time view of a node (not stored: it is rebuilt as nodes connect).
#[derive(Debug, Clone, Default)]
struct Live {
    /// Sessions of the node on its management realm (its controller's and
    /// its workers').
    sessions: Vec<u64>,
    /// The controller session that announced it is ready (its procedures
    /// are registered): the node is online while that session lasts.
    ready: Option<u64>,
    /// The node's last heartbeat (its `timestamp`, ns) and when it came.
    heartbeat: Option<Json>,
    last_seen_ns: u64,
}

impl Live {
    fn online(&self) -> bool {
        self.ready.is_some_and(|r| self.sessions.contains(&r))
    }
}

/// See the module docs.
pub struct Master {
    store: Store,
    started: SystemTime,
    /// When each management realm's router realm started (by name).
    realm_started: HashMap<String, SystemTime>,
    /// Superuser key (64 hex digits, lower case).
    superuser_key: Option<String>,
    superuser_oid: String,
    live: HashMap<String, Live>,
    version: String,
}

fn ns(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// "12 seconds", "3 minutes", "2 hours", "5 days".
fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    let (n, unit) = match s {
        0..=59 => (s, "second"),
        60..=3599 => (s / 60, "minute"),
        3600..=86_399 => (s / 3600, "hour"),
        _ => (s / 86_400, "day"),
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// Checks a management realm name (Crossbar's rules: a letter, then 2..254
/// of letters, digits, `_ - @ .`; no reserved prefix).
pub fn check_mrealm_name(name: &str) -> Result<(), ApiError> {
    let mut chars = name.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    let rest_ok = chars.all(|c| c.is_ascii_alphanumeric() || "_-@.".contains(c));
    if !first_ok || !rest_ok || !(3..=255).contains(&name.len()) {
        return Err(ApiError::new(
            error::INVALID_REALM,
            format!(
                "invalid realm name \"{name}\" - must match regular expression ^[A-Za-z][A-Za-z0-9_\\-@\\.]{{2,254}}$"
            ),
        ));
    }
    if let Some(p) = PROTECTED_PREFIXES.iter().find(|p| name.starts_with(**p)) {
        return Err(ApiError::new(
            error::INVALID_REALM,
            format!("invalid realm name \"{name}\": names starting with \"{p}\" are protected"),
        ));
    }
    Ok(())
}

fn str_of<'a>(d: &'a Json, k: &str) -> Option<&'a str> {
    d.get(k).and_then(Json::as_str)
}

impl Master {
    /// The master over `store`, started at `now`; `superuser_key` is the
    /// superuser's Ed25519 public key (hex). Creates the superuser's user
    /// record and, on a fresh database, the management realm `default`.
    pub fn new(store: Store, now: SystemTime, superuser_key: Option<String>) -> Result<Master, StoreError> {
        let superuser_oid = match store.user_by_authid(SUPERUSER)? {
            Some(u) => str_of(&u, "oid").unwrap_or_default().to_owned(),
            None => {
                let oid = uuid::Uuid::new_v4().to_string();
                store.put_user(&oid, SUPERUSER, &json!({"oid": oid, "authid": SUPERUSER, "email": SUPERUSER}))?;
                oid
            }
        };
        let mut m = Master {
            store,
            started: now,
            realm_started: HashMap::new(),
            superuser_key: superuser_key.map(|k| k.to_ascii_lowercase()),
            superuser_oid,
            live: HashMap::new(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
        };
        if m.store.meta("default_mrealm")?.is_none() {
            // Crossbar's master starts with a management realm "default" (made once: it may be deleted).
            if m.store.mrealm_by_name("default")?.is_none() {
                m.create(now, "default", None).map_err(|e| StoreError::Init(e.to_string()))?;
            }
            m.store.set_meta("default_mrealm", "created")?;
        }
        Ok(m)
    }

    /// Names of every management realm (their router realms must run).
    pub fn mrealm_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(self.store.mrealms()?.iter().filter_map(|m| str_of(m, "name").map(str::to_owned)).collect())
    }

    /// The runtime started the router realm of management realm `name`.
    pub fn realm_started(&mut self, name: &str, now: SystemTime) {
        self.realm_started.insert(name.to_owned(), now);
    }

    /// Every key that may log in to the management transport as a node
    /// (paired nodes), for the runtime's information.
    pub fn paired_node_count(&self) -> Result<usize, StoreError> {
        Ok(self.store.all_nodes()?.iter().filter(|n| str_of(n, "mrealm_oid").is_some()).count())
    }

    // ------------------------------------------------------------ authentication

    /// The dynamic authenticator (`com.crossbario.fabric.authenticate(realm,
    /// authid, details)`), for cryptosign logins on the management
    /// transport:
    /// * the superuser's key: authid `superuser`, role `user` on the global
    ///   realm, `owner` (or the requested one of [`MREALM_USER_ROLES`]) on a
    ///   management realm;
    /// * a paired node's key: its authid, role `node`, its management realm
    ///   (whatever realm it asked for), its `authextra`;
    /// * anything else is refused.
    pub fn authenticate(&mut self, realm: &str, details: &Dict) -> Result<Value, ApiError> {
        let method = details.get("authmethod").and_then(Value::as_str).unwrap_or("");
        if method != "cryptosign" {
            return Err(ApiError::new("wamp.error.not_authorized", "the management transport only accepts cryptosign"));
        }
        let extra = details.get("authextra").and_then(Value::as_dict);
        let Some(pubkey) = extra.and_then(|e| e.get("pubkey")).and_then(Value::as_str).filter(|k| is_hex64(k)) else {
            return Err(ApiError::new(
                "wamp.error.not_authorized",
                "cryptosign needs authextra.pubkey (64 hex digits)",
            ));
        };
        let pubkey = pubkey.to_ascii_lowercase();
        let requested_role = details.get("authrole").and_then(Value::as_str);
        let mut principal = Dict::new();
        principal.insert("pubkey".into(), Value::Str(pubkey.clone()));
        if self.superuser_key.as_deref() == Some(pubkey.as_str()) && requested_role != Some(ROLE_NODE) {
            let role = if realm == GLOBAL_REALM {
                ROLE_USER.to_owned()
            } else {
                if self.store.mrealm_by_name(realm)?.is_none() {
                    return Err(ApiError::new("wamp.error.no_such_realm", format!("no management realm '{realm}'")));
                }
                match requested_role {
                    None => "owner".to_owned(),
                    Some(r) if MREALM_USER_ROLES.contains(&r) => r.to_owned(),
                    Some(r) => {
                        return Err(ApiError::new(
                            "wamp.error.not_authorized",
                            format!("no role '{r}' for management users"),
                        ))
                    }
                }
            };
            principal.insert("authid".into(), Value::Str(SUPERUSER.into()));
            principal.insert("role".into(), Value::Str(role));
            principal.insert("realm".into(), Value::Str(realm.to_owned()));
            return Ok(Value::Dict(principal));
        }
        let node = self.store.node_by_pubkey(&pubkey)?;
        let paired = node.as_ref().and_then(|n| Some((n, str_of(n, "mrealm_oid")?, str_of(n, "authid")?)));
        let Some((node, mrealm_oid, authid)) = paired else {
            return Err(ApiError::new(
                error::AUTH_NODE_UNPAIRED,
                format!("no node with public key {pubkey} is paired"),
            ));
        };
        let Some(mrealm) = self.store.mrealm(mrealm_oid)? else {
            return Err(ApiError::new(error::AUTH_NODE_UNPAIRED, "the node's management realm no longer exists"));
        };
        let mut node = node.clone();
        // A node reports its cluster address (key.pub's node-cluster-ip tag) when it logs in.
        if let Some(ip) = extra.and_then(|e| e.get("cluster_ip")).and_then(Value::as_str) {
            if str_of(&node, "cluster_ip") != Some(ip) && ip.parse::<std::net::IpAddr>().is_ok() {
                node["cluster_ip"] = Json::String(ip.to_owned());
                self.store.put_node(&node)?;
            }
        }
        principal.insert("authid".into(), Value::Str(authid.to_owned()));
        principal.insert("role".into(), Value::Str(node_role(authid)));
        principal.insert("realm".into(), Value::Str(str_of(&mrealm, "name").unwrap_or_default().to_owned()));
        let extra = node.get("authextra").map(from_json).and_then(|v| v.as_dict().cloned()).unwrap_or_default();
        principal.insert("extra".into(), Value::Dict(extra));
        Ok(Value::Dict(principal))
    }

    /// The authid of the node `node` (its oid, or its authid) paired to
    /// management realm `realm`.
    pub fn node_authid_in(&self, realm: &str, node: &str) -> Option<String> {
        let m = self.store.mrealm_by_name(realm).ok()??;
        let moid = str_of(&m, "oid")?;
        let n = match self.store.node(node).ok()? {
            Some(n) if str_of(&n, "mrealm_oid") == Some(moid) => n,
            _ => self.store.node_by_authid(moid, node).ok()??,
        };
        str_of(&n, "authid").map(str::to_owned)
    }

    /// What the reconcile loop plans from for management realm `realm`: its
    /// paired nodes and its objects, and the authids of its nodes that are
    /// online now.
    pub fn reconcile_inputs(&self, realm: &str) -> Result<(crate::reconcile::Objects, Vec<String>), ApiError> {
        let m = self
            .store
            .mrealm_by_name(realm)?
            .ok_or_else(|| ApiError::no_such_object(format!("no management realm '{realm}'")))?;
        let moid = str_of(&m, "oid").unwrap_or_default().to_owned();
        let mut o = crate::reconcile::Objects::default();
        let mut online = Vec::new();
        for n in self.store.nodes_of(&moid)? {
            let (Some(oid), Some(authid)) = (str_of(&n, "oid"), str_of(&n, "authid")) else { continue };
            let ip = str_of(&n, "cluster_ip").map(str::to_owned);
            o.nodes
                .insert(oid.to_owned(), (authid.to_owned(), ip, str_of(&n, "pubkey").unwrap_or_default().to_owned()));
            if self.live.get(oid).is_some_and(Live::online) {
                online.push(authid.to_owned());
            }
        }
        for (kind, _, doc) in self.store.all_objects(&moid)? {
            o.by_kind.entry(kind).or_default().push(doc);
        }
        Ok((o, online))
    }

    // ------------------------------------------------------------ node liveness

    /// A session with role `node` joined management realm `realm` as
    /// `authid` (the node's controller or one of its workers). The node is
    /// not online yet: its controller announces when its procedures are
    /// registered ([`Master::node_ready`]).
    pub fn node_joined(&mut self, realm: &str, authid: &str, session: u64, now: SystemTime) {
        let Some(oid) = self.node_oid(realm, authid) else { return };
        let live = self.live.entry(oid).or_default();
        if !live.sessions.contains(&session) {
            live.sessions.push(session);
        }
        live.last_seen_ns = ns(now);
    }

    /// Node `authid`'s controller (session `session`) announced that its
    /// procedures are registered (`crossbarfabriccenter.node.<authid>.on_ready`,
    /// or its first heartbeat): the node is online, and calls to it will find
    /// a callee. Returns the `on_node_ready` event.
    pub fn node_ready(&mut self, realm: &str, authid: &str, session: u64, now: SystemTime) -> Option<Publication> {
        let oid = self.node_oid(realm, authid)?;
        let live = self.live.entry(oid.clone()).or_default();
        if !live.sessions.contains(&session) {
            live.sessions.push(session);
        }
        live.ready = Some(session);
        live.last_seen_ns = ns(now);
        Some(self.node_event(realm, "crossbarfabriccenter.mrealm.on_node_ready", &oid, authid, "online", now))
    }

    fn node_oid(&self, realm: &str, authid: &str) -> Option<String> {
        let mrealm = self.store.mrealm_by_name(realm).ok()??;
        let node = self.store.node_by_authid(str_of(&mrealm, "oid")?, authid).ok()??;
        str_of(&node, "oid").map(str::to_owned)
    }

    /// A session left management realm `realm`; if it was the node's ready
    /// controller session, the node is offline. Returns the
    /// `on_node_shutdown` event then.
    pub fn session_left(&mut self, realm: &str, session: u64, now: SystemTime) -> Option<Publication> {
        let (oid, offline) = self.live.iter_mut().find_map(|(oid, l)| {
            let before = l.sessions.len();
            let was_online = l.online();
            l.sessions.retain(|s| *s != session);
            if l.ready == Some(session) {
                l.ready = None;
            }
            (l.sessions.len() != before).then(|| (oid.clone(), was_online && !l.online()))
        })?;
        if !offline {
            return None;
        }
        let node = self.store.node(&oid).ok()??;
        let authid = str_of(&node, "authid").unwrap_or_default().to_owned();
        Some(self.node_event(realm, "crossbarfabriccenter.mrealm.on_node_shutdown", &oid, &authid, "offline", now))
    }

    /// A node's heartbeat (`crossbarfabriccenter.node.on_heartbeat(authid, hb)`)
    /// from its session `session`. A node that has not announced itself
    /// ready is online from its first heartbeat on (Crossbar's nodes do not
    /// announce, and heartbeat once their bridge is registered): returns the
    /// `on_node_ready` event then.
    pub fn heartbeat(
        &mut self,
        realm: &str,
        authid: &str,
        session: u64,
        hb: &Value,
        now: SystemTime,
    ) -> Option<Publication> {
        let oid = self.node_oid(realm, authid)?;
        let live = self.live.entry(oid).or_default();
        live.heartbeat = Some(to_json(hb));
        live.last_seen_ns = ns(now);
        if live.online() {
            return None;
        }
        self.node_ready(realm, authid, session, now)
    }

    fn node_event(
        &self,
        realm: &str,
        topic: &str,
        oid: &str,
        authid: &str,
        status: &str,
        now: SystemTime,
    ) -> Publication {
        let info = json!({"id": oid, "authid": authid, "status": status, "last_active": ns(now), "workers": {}, "time": ns(now)});
        Publication {
            realm: realm.to_owned(),
            topic: topic.to_owned(),
            args: vec![Value::Str(oid.to_owned()), from_json(&info)],
        }
    }

    fn with_live(&self, mut node: Json) -> Json {
        let live = str_of(&node, "oid").and_then(|o| self.live.get(o));
        let online = live.is_some_and(Live::online);
        node["heartbeat"] = live.and_then(|l| l.heartbeat.clone()).unwrap_or(Json::Null);
        node["timestamp"] = live.map_or(Json::Null, |l| Json::from(l.last_seen_ns));
        node["status"] = Json::String(if online { "online" } else { "offline" }.into());
        node
    }

    // ------------------------------------------------------------ watch-to-pair

    /// Pairs `key` (found by a watch-to-pair scan) to the management realm
    /// `default`, as the superuser's `pair_node` would, if the master has
    /// never seen its public key: `Ok(None)` if it has (paired, or unpaired
    /// since: unpairing is not undone). On success: the node and the
    /// `on_node_paired` event to publish.
    pub fn auto_pair(
        &mut self,
        now: SystemTime,
        key: &crate::pairing::FoundKey,
    ) -> Result<Option<(Json, Effects)>, ApiError> {
        if self.store.node_by_pubkey(&key.pubkey)?.is_some() {
            return Ok(None);
        }
        let caller =
            Caller { realm: GLOBAL_REALM.into(), session: 0, authid: SUPERUSER.into(), authrole: ROLE_USER.into() };
        let args = [
            Value::Str(key.pubkey.clone()),
            Value::Str(crate::pairing::DEFAULT_MREALM.into()),
            Value::Str(key.authid.clone()),
            Value::Null,
            key.cluster_ip.clone().map_or(Value::Null, Value::Str),
        ];
        let out = self.handle_call(now, &caller, "crossbarfabriccenter.mrealm.pair_node", &args, &Dict::new());
        out.result.map(|node| Some((to_json(&node), out.effects)))
    }

    /// The oid of management realm `name`.
    pub fn mrealm_oid(&self, name: &str) -> Option<String> {
        self.store.mrealm_by_name(name).ok()?.and_then(|m| str_of(&m, "oid").map(str::to_owned))
    }

    // ------------------------------------------------------------ calls

    /// Handles one management call.
    pub fn handle_call(
        &mut self,
        now: SystemTime,
        caller: &Caller,
        procedure: &str,
        args: &[Value],
        kwargs: &Dict,
    ) -> Outcome {
        let mut effects = Effects::default();
        let a = Args { procedure, args, kwargs };
        let result = self.dispatch(now, caller, &a, &mut effects);
        if result.is_err() {
            // A failed call changes nothing and announces nothing.
            effects = Effects::default();
        }
        Outcome { result, effects }
    }

    fn dispatch(&mut self, now: SystemTime, caller: &Caller, a: &Args, fx: &mut Effects) -> Result<Value, ApiError> {
        let global = caller.realm == GLOBAL_REALM;
        let name = a.procedure.strip_prefix("crossbarfabriccenter.").unwrap_or(a.procedure);
        if global {
            if caller.authrole != ROLE_USER {
                return Err(ApiError::not_authorized(format!(
                    "{}: not available to role '{}' on the global realm",
                    a.procedure, caller.authrole
                )));
            }
        } else if !mrealm_role_allows(&caller.authrole, a.procedure) {
            return Err(ApiError::not_authorized(format!(
                "{}: not available to role '{}'",
                a.procedure, caller.authrole
            )));
        }
        match (global, name) {
            (true, "domain.get_status") => Ok(self.status("domain", GLOBAL_REALM, self.started, now)),
            (true, "domain.get_license") => Ok(from_json(&json!({
                "product": "junction",
                "description": "Junction master: no limit on managed nodes.",
                "terms": "https://www.apache.org/licenses/LICENSE-2.0",
                "features": {"xbr": false},
                "limits": {}
            }))),
            (true, "domain.get_version") => Ok(from_json(&json!({
                "executable": std::env::current_exe().map(|p| p.display().to_string()).unwrap_or_default(),
                "platform": format!("{}-{}", std::env::consts::OS, std::env::consts::ARCH),
                "machine": std::env::consts::ARCH,
                "junction_ver": self.version,
            }))),
            (true, "mrealm.list_mrealms") => {
                let names = a.flag(0, "return_names")?;
                let all = self.store.mrealms()?;
                let mut out: Vec<Value> = all
                    .iter()
                    .filter_map(|m| str_of(m, if names { "name" } else { "oid" }).map(|s| Value::Str(s.to_owned())))
                    .collect();
                if names {
                    out.sort_by(|x, y| x.as_str().cmp(&y.as_str()));
                }
                Ok(Value::List(out))
            }
            (true, "mrealm.get_mrealm") => {
                let oid = a.oid(0, "mrealm_oid")?;
                self.store
                    .mrealm(&oid)?
                    .map(|m| from_json(&m))
                    .ok_or_else(|| ApiError::no_such_object(format!("no management realm with oid {oid}")))
            }
            (true, "mrealm.get_mrealm_by_name") => {
                let n = a.str(0, "mrealm_name")?;
                self.store
                    .mrealm_by_name(n)?
                    .map(|m| from_json(&m))
                    .ok_or_else(|| ApiError::no_such_object(format!("no management realm with name {n}")))
            }
            (true, "mrealm.create_mrealm") => {
                let obj = a.dict(0, "mrealm")?;
                let name = match obj.get("name") {
                    Some(Value::Str(s)) => s.clone(),
                    _ => return Err(ApiError::invalid_argument("create_mrealm: 'name' (a string) is required")),
                };
                let m = self.create(now, &name, Some(obj))?;
                fx.start_realms.push(name);
                fx.publish.push(Publication {
                    realm: GLOBAL_REALM.into(),
                    topic: "crossbarfabriccenter.mrealm.on_mrealm_created".into(),
                    args: vec![m.clone()],
                });
                Ok(m)
            }
            (true, "mrealm.delete_mrealm") | (true, "mrealm.delete_mrealm_by_name") => {
                let m = if name.ends_with("_by_name") {
                    let n = a.str(0, "mrealm_name")?;
                    self.store
                        .mrealm_by_name(n)?
                        .ok_or_else(|| ApiError::no_such_object(format!("no management realm with name \"{n}\"")))?
                } else {
                    let oid = a.oid(0, "mrealm_oid")?;
                    self.store
                        .mrealm(&oid)?
                        .ok_or_else(|| ApiError::no_such_object(format!("no management realm with ID \"{oid}\"")))?
                };
                let cascade = a.flag(1, "cascade")?;
                self.delete(now, caller, &m, cascade, fx)
            }
            (true, "mrealm.pair_node") => {
                let pubkey = a.str(0, "pubkey")?.to_ascii_lowercase();
                if !is_hex64(&pubkey) {
                    return Err(ApiError::invalid_argument(
                        "pair_node: 'pubkey' must be 64 hex digits (an Ed25519 public key)",
                    ));
                }
                let realm_name = a.str(1, "realm_name")?;
                let authid = a.str(2, "authid")?;
                if authid.is_empty() || authid.len() > 255 || authid.contains(char::is_whitespace) {
                    return Err(ApiError::invalid_argument(
                        "pair_node: 'authid' must be a non-empty name without spaces",
                    ));
                }
                let authextra = a.opt_dict(3, "authextra")?;
                let cluster_ip = a.opt_str(4, "cluster_ip")?;
                if let Some(ip) = cluster_ip {
                    if ip.parse::<std::net::IpAddr>().is_err() {
                        return Err(ApiError::invalid_argument(format!(
                            "pair_node: 'cluster_ip' {ip:?} is not an IP address"
                        )));
                    }
                }
                let mrealm = self.store.mrealm_by_name(realm_name)?.ok_or_else(|| {
                    ApiError::new(error::NO_SUCH_REALM, format!("no realm named \"{realm_name}\" exists"))
                })?;
                let mrealm_oid = str_of(&mrealm, "oid").unwrap_or_default().to_owned();
                let mut node = match self.store.node_by_pubkey(&pubkey)? {
                    Some(n) if str_of(&n, "mrealm_oid").is_some() => {
                        return Err(ApiError::new(
                            error::NODE_ALREADY_PAIRED,
                            "node with given pubkey is already paired to a realm",
                        ))
                    }
                    Some(n) => n,
                    None => json!({"oid": uuid::Uuid::new_v4().to_string(), "label": null, "description": null,
                                   "tags": null, "pubkey": pubkey, "cluster_ip": null}),
                };
                if self.store.node_by_authid(&mrealm_oid, authid)?.is_some() {
                    return Err(ApiError::already_exists(format!(
                        "a node with authid \"{authid}\" is already paired to management realm \"{realm_name}\""
                    )));
                }
                node["owner_oid"] = Json::String(self.superuser_oid.clone());
                node["mrealm_oid"] = Json::String(mrealm_oid);
                node["authid"] = Json::String(authid.to_owned());
                node["authextra"] = authextra.map_or(Json::Null, |d| to_json(&Value::Dict(d.clone())));
                if let Some(ip) = cluster_ip {
                    node["cluster_ip"] = Json::String(ip.to_owned());
                }
                self.store.put_node(&node)?;
                let v = from_json(&node);
                fx.publish.push(Publication {
                    realm: GLOBAL_REALM.into(),
                    topic: "crossbarfabriccenter.mrealm.on_node_paired".into(),
                    args: vec![v.clone()],
                });
                Ok(v)
            }
            (true, "mrealm.unpair_node") | (true, "mrealm.unpair_node_by_pubkey") => {
                let node = if name.ends_with("_by_pubkey") {
                    let k = a.str(0, "pubkey")?.to_ascii_lowercase();
                    self.store
                        .node_by_pubkey(&k)?
                        .ok_or_else(|| ApiError::no_such_object(format!("no node with pubkey {k}")))?
                } else {
                    let oid = a.oid(0, "node_oid")?;
                    self.store.node(&oid)?.ok_or_else(|| ApiError::no_such_object(format!("no node with oid {oid}")))?
                };
                self.unpair(now, node, fx)
            }
            (true, "mrealm.get_node_by_name") => {
                let (mn, nn) = (a.str(0, "mrealm_name")?, a.str(1, "node_name")?);
                let m = self
                    .store
                    .mrealm_by_name(mn)?
                    .ok_or_else(|| ApiError::no_such_object(format!("no management realm with name {mn}")))?;
                let n = self.store.node_by_authid(str_of(&m, "oid").unwrap_or_default(), nn)?;
                n.map(|n| from_json(&self.with_live(n)))
                    .ok_or_else(|| ApiError::no_such_object(format!("no node named {nn} in management realm {mn}")))
            }
            (true, "mrealm.list_nodes") => {
                let all = self.store.all_nodes()?;
                Ok(Value::List(all.iter().filter_map(|n| str_of(n, "oid").map(|s| Value::Str(s.to_owned()))).collect()))
            }
            (false, "mrealm.get_status") => {
                let started = self.realm_started.get(&caller.realm).copied().unwrap_or(self.started);
                Ok(self.status("management", &caller.realm, started, now))
            }
            (false, "mrealm.get_nodes") => {
                let status = a.opt_str(0, "status")?;
                if let Some(s) = status {
                    if s != "online" && s != "offline" {
                        return Err(ApiError::invalid_argument(format!(
                            "get_nodes: status must be \"online\" or \"offline\", not {s:?}"
                        )));
                    }
                }
                let names = a.flag(1, "return_names")?;
                let m = self.mrealm_of(caller)?;
                let nodes = self.store.nodes_of(str_of(&m, "oid").unwrap_or_default())?;
                Ok(Value::List(
                    nodes
                        .into_iter()
                        .map(|n| self.with_live(n))
                        .filter(|n| status.is_none_or(|s| str_of(n, "status") == Some(s)))
                        .filter_map(|n| {
                            str_of(&n, if names { "authid" } else { "oid" }).map(|s| Value::Str(s.to_owned()))
                        })
                        .collect(),
                ))
            }
            (false, "mrealm.get_node") => {
                let oid = a.oid(0, "node_oid")?;
                let m = self.mrealm_of(caller)?;
                match self.store.node(&oid)? {
                    Some(n) if str_of(&n, "mrealm_oid") == str_of(&m, "oid") => Ok(from_json(&self.with_live(n))),
                    _ => Err(ApiError::no_such_object(format!("no node with oid {oid} in this management realm"))),
                }
            }
            (false, "mrealm.get_node_by_authid") => {
                let authid = a.str(0, "node_authid")?;
                let m = self.mrealm_of(caller)?;
                match self.store.node_by_authid(str_of(&m, "oid").unwrap_or_default(), authid)? {
                    Some(n) => Ok(from_json(&self.with_live(n))),
                    None => {
                        Err(ApiError::no_such_object(format!("no node with authid {authid} in this management realm")))
                    }
                }
            }
            (false, n)
                if ["mrealm.routercluster.", "mrealm.webcluster.", "mrealm.arealm."]
                    .iter()
                    .any(|p| n.starts_with(p)) =>
            {
                self.mrealm_object_call(now, caller, a, n, fx)
            }
            _ => Err(ApiError::new(
                "wamp.error.no_such_procedure",
                format!("no procedure '{}' on this realm", a.procedure),
            )),
        }
    }

    fn mrealm_of(&self, caller: &Caller) -> Result<Json, ApiError> {
        self.store
            .mrealm_by_name(&caller.realm)?
            .ok_or_else(|| ApiError::no_such_object(format!("no management realm '{}'", caller.realm)))
    }

    fn status(&self, kind: &str, realm: &str, started: SystemTime, now: SystemTime) -> Value {
        let up = now.duration_since(started).unwrap_or_default();
        from_json(&json!({
            "type": kind,
            "realm": realm,
            "now": rfc3339(now),
            "started": rfc3339(started),
            "uptime": uptime(up),
            "tick": up.as_secs() / 10,
        }))
    }

    fn create(&mut self, now: SystemTime, name: &str, obj: Option<&Dict>) -> Result<Value, ApiError> {
        check_mrealm_name(name)?;
        if self.store.mrealm_by_name(name)?.is_some() {
            return Err(ApiError::already_exists(format!("management realm with name \"{name}\" already exists")));
        }
        let text = |k: &str| -> Result<Json, ApiError> {
            match obj.and_then(|o| o.get(k)) {
                None | Some(Value::Null) => Ok(Json::Null),
                Some(Value::Str(s)) => Ok(Json::String(s.clone())),
                Some(_) => Err(ApiError::invalid_argument(format!("create_mrealm: '{k}' must be a string"))),
            }
        };
        let tags = match obj.and_then(|o| o.get("tags")) {
            None | Some(Value::Null) => Json::Null,
            Some(Value::List(l)) if l.iter().all(|t| matches!(t, Value::Str(_))) => to_json(&Value::List(l.clone())),
            Some(_) => return Err(ApiError::invalid_argument("create_mrealm: 'tags' must be a list of strings")),
        };
        let oid = uuid::Uuid::new_v4().to_string();
        let created_us = now.duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(0));
        let doc = json!({
            "oid": oid, "label": text("label")?, "description": text("description")?, "tags": tags,
            "name": name, "created": created_us, "owner": self.superuser_oid,
            "cf_router_worker": null, "cf_container_worker": null
        });
        if !self.store.insert_mrealm(&oid, name, &doc)? {
            return Err(ApiError::already_exists(format!("management realm with name \"{name}\" already exists")));
        }
        Ok(from_json(&doc))
    }

    fn delete(
        &mut self,
        now: SystemTime,
        caller: &Caller,
        m: &Json,
        cascade: bool,
        fx: &mut Effects,
    ) -> Result<Value, ApiError> {
        let oid = str_of(m, "oid").unwrap_or_default().to_owned();
        let name = str_of(m, "name").unwrap_or_default().to_owned();
        let paired = self.store.nodes_of(&oid)?;
        if !paired.is_empty() && !cascade {
            let first = str_of(&paired[0], "oid").unwrap_or_default();
            return Err(ApiError::dependent_objects(format!(
                "cannot delete management realm - dependent object exists and cascade not set: paired node {first}"
            )));
        }
        let mut unpaired = Vec::new();
        for n in paired {
            let v = self.unpair(now, n, fx)?;
            if let Some(o) = v.as_dict().and_then(|d| d.get("oid")).cloned() {
                unpaired.push(o);
            }
        }
        self.store.delete_mrealm(&oid)?;
        self.realm_started.remove(&name);
        fx.stop_realms.push(name.clone());
        let created_us = m.get("created").and_then(Json::as_u64).unwrap_or(0);
        let deleted = json!({
            "oid": oid, "name": name,
            "created": rfc3339(UNIX_EPOCH + Duration::from_micros(created_us)),
            "deleted": rfc3339(now),
            "owner": str_of(m, "owner"),
            "caller": caller.authid,
        });
        let mut d = from_json(&deleted);
        if let Value::Dict(dd) = &mut d {
            dd.insert("unpaired".into(), Value::List(unpaired));
        }
        fx.publish.push(Publication {
            realm: GLOBAL_REALM.into(),
            topic: "crossbarfabriccenter.mrealm.on_mrealm_deleted".into(),
            args: vec![d.clone()],
        });
        Ok(d)
    }

    fn unpair(&mut self, now: SystemTime, mut node: Json, fx: &mut Effects) -> Result<Value, ApiError> {
        let Some(mrealm_oid) = str_of(&node, "mrealm_oid").map(str::to_owned) else {
            let oid = str_of(&node, "oid").unwrap_or_default();
            return Err(ApiError::new(error::NODE_NOT_PAIRED, format!("cannot unpair node {oid}: node is not paired")));
        };
        let authid = str_of(&node, "authid").map(str::to_owned);
        let mrealm_name = self.store.mrealm(&mrealm_oid)?.and_then(|m| str_of(&m, "name").map(str::to_owned));
        if let (Some(authid), Some(name)) = (&authid, &mrealm_name) {
            fx.kill.push((name.clone(), authid.clone()));
        }
        node["authid"] = Json::Null;
        node["authextra"] = Json::Null;
        node["mrealm_oid"] = Json::Null;
        self.store.put_node(&node)?;
        let live = str_of(&node, "oid").and_then(|o| self.live.remove(o)).unwrap_or_default();
        let sessions = live.sessions.clone();
        if let (true, Some(name), Some(oid)) = (live.online(), &mrealm_name, str_of(&node, "oid")) {
            // It was online: closing its sessions takes it offline now.
            let ev = self.node_event(
                name,
                "crossbarfabriccenter.mrealm.on_node_shutdown",
                oid,
                authid.as_deref().unwrap_or(""),
                "offline",
                now,
            );
            fx.publish.push(ev);
        }
        // The reply keeps the old mrealm (as the reference does) and lists the sessions closed.
        node["mrealm_oid"] = Json::String(mrealm_oid);
        node["killed"] = json!(sessions);
        let v = from_json(&node);
        fx.publish.push(Publication {
            realm: GLOBAL_REALM.into(),
            topic: "crossbarfabriccenter.mrealm.on_node_unpaired".into(),
            args: vec![v.clone()],
        });
        Ok(v)
    }
}

pub mod mrealm;

#[cfg(test)]
mod tests;
