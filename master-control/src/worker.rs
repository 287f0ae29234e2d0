//! The worker API of a managed router worker (sans-IO over a
//! [`RouterControl`]): the procedures a router worker process registers on
//! its master as `crossbarfabriccenter.node.<authid>.worker.<id>.<procedure>`,
//! reached through `crossbarfabriccenter.remote.router.<procedure>(node_oid,
//! worker_id, ...)`.
//!
//! Crossbar identifies a worker's realms by an id of its choosing
//! (`rlm_1449b574`) next to the realm name; this module keeps that mapping
//! and the configurations the realms and links were started with, and asks
//! the [`RouterControl`] (the running `router-core` worker) to do the work.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::{json, Value as Json};
use wamp_proto::{Dict, Value};

use crate::error::ApiError;
use crate::value::{from_json, to_json, Args};

/// What the worker API needs from a running router worker.
pub trait RouterControl {
    /// Names of the realms being served.
    fn realm_names(&self) -> Vec<String>;
    /// Starts a realm from its (validated) configuration.
    fn start_realm(&self, realm: &junction_config::RealmConfig) -> Result<(), String>;
    /// Stops a realm; the number of sessions closed.
    fn stop_realm(&self, name: &str) -> Result<usize, String>;
    /// Starts a router-to-router link of realm `realm`.
    fn start_link(&self, realm: &str, link: &junction_config::RLinkConfig) -> Result<(), String>;
    /// Stops a link.
    fn stop_link(&self, realm: &str, id: &str) -> Result<(), String>;
    /// The links of a realm, each as `{id, state, peer?, ...}`.
    fn links(&self, realm: &str) -> Result<Vec<Json>, String>;
    /// The worker's transports as `{id, type, endpoint}`.
    fn transports(&self) -> Vec<Json>;
    /// Adds (or replaces) a role of a running realm.
    fn set_role(&self, realm: &str, role: &junction_config::RoleConfig) -> Result<(), String>;
    /// Removes a role; the number of its sessions closed.
    fn remove_role(&self, realm: &str, role: &str) -> Result<usize, String>;
    /// Starts a transport under `id`; what it listens on (`{id, type, endpoint, port?}`).
    fn start_transport(&self, id: &str, transport: &junction_config::TransportConfig) -> Result<Json, String>;
    /// Stops the transport `id`.
    fn stop_transport(&self, id: &str) -> Result<(), String>;
    /// Calls a meta procedure of a running realm as its operator: the
    /// result, or the WAMP error (URI, message).
    fn meta_call(
        &self,
        realm: &str,
        procedure: &str,
        args: Vec<Value>,
        kwargs: Dict,
    ) -> Result<Value, (String, String)>;
    /// From now on, forward the meta events of realm `realm` (id
    /// `realm_id`) to the master (`bridge_meta_api`).
    fn bridge_meta(&self, realm_id: &str, realm: &str) -> Result<(), String>;
    /// The worker's message traces (`tracing.*`).
    fn tracer(&self) -> std::sync::Arc<router_core::engine::trace::Tracer>;
    /// The configuration of transport `id` of the worker's start-up config
    /// (JSON), for the web service API.
    fn startup_transport_config(&self, _id: &str) -> Option<Json> {
        None
    }
    /// Gives running transport `id` the services of `transport` (same
    /// endpoint; `start_web_transport_service`).
    fn replace_transport(&self, id: &str, _transport: &junction_config::TransportConfig) -> Result<(), String> {
        Err(format!("transport '{id}' cannot be changed at run time"))
    }
}

/// The topic a bridged meta event of realm `realm_id` is published on:
/// `crossbarfabriccenter.node.<authid>.worker.<worker>.realm.<realm_id>.root.<event>`
/// with the event's dots as dashes (`wamp-session-on_join`), the reference's.
pub fn bridged_topic(authid: &str, worker: &str, realm_id: &str, event: &str) -> String {
    format!("crossbarfabriccenter.node.{authid}.worker.{worker}.realm.{realm_id}.root.{}", event.replace('.', "-"))
}

/// Meta procedures a worker serves for its realms as
/// `crossbarfabriccenter.node.<authid>.worker.<id>.<procedure>(realm_id, ...)`
/// (the management API's `remote.realm.meta.<procedure>`).
pub const META_PROCEDURES: [&str; 19] = [
    "wamp.session.count",
    "wamp.session.list",
    "wamp.session.get",
    "wamp.session.kill",
    "wamp.session.kill_by_authid",
    "wamp.session.kill_by_authrole",
    "wamp.session.kill_all",
    "wamp.registration.list",
    "wamp.registration.lookup",
    "wamp.registration.match",
    "wamp.registration.get",
    "wamp.registration.list_callees",
    "wamp.registration.count_callees",
    "wamp.subscription.list",
    "wamp.subscription.lookup",
    "wamp.subscription.match",
    "wamp.subscription.get",
    "wamp.subscription.list_subscribers",
    "wamp.subscription.count_subscribers",
];

/// Procedures of the router worker API (suffixes).
pub const ROUTER_PROCEDURES: [&str; 23] = [
    "get_router_components",
    "get_router_component",
    "start_router_component",
    "stop_router_component",
    "kill_by_authid",
    "get_router_realm_stats",
    "start_router_transport",
    "stop_router_transport",
    "get_router_realm_roles",
    "get_router_realm_role",
    "start_router_realm_role",
    "stop_router_realm_role",
    "get_router_realms",
    "get_router_realm",
    "get_router_realm_by_name",
    "start_router_realm",
    "stop_router_realm",
    "get_router_realm_links",
    "get_router_realm_link",
    "start_router_realm_link",
    "stop_router_realm_link",
    "get_router_transports",
    "get_router_transport",
];

struct RealmEntry {
    name: String,
    config: Json,
    created: SystemTime,
    links: BTreeMap<String, Json>,
    /// Role id → (role name, configuration) for roles started through the API.
    roles: BTreeMap<String, (String, Json)>,
}

/// See the module docs.
pub struct RouterWorkerApi {
    worker_id: String,
    /// Realm id → entry, for the realms started through this API or found
    /// running (start-up config realms get their name as id).
    realms: BTreeMap<String, RealmEntry>,
    /// The node's authid (traces name it).
    node_id: String,
    /// Events to publish under the worker's prefix (suffix, args).
    events: Vec<crate::trace_api::TraceEvent>,
    /// The streaming of running traces (`on_trace_data`).
    streams: crate::trace_api::StreamState,
    /// The configurations transports were started with through the API
    /// (and changed by the web service API).
    transport_configs: BTreeMap<String, Json>,
}

fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

impl RouterWorkerApi {
    /// The API of worker `worker_id`.
    pub fn new(worker_id: &str) -> RouterWorkerApi {
        RouterWorkerApi {
            worker_id: worker_id.to_owned(),
            realms: BTreeMap::new(),
            node_id: String::new(),
            events: Vec::new(),
            streams: Default::default(),
            transport_configs: BTreeMap::new(),
        }
    }

    /// The node's authid, once the uplink knows it.
    pub fn set_node_id(&mut self, authid: &str) {
        if self.node_id != authid {
            self.node_id = authid.to_owned();
        }
    }

    /// Events to publish now, as full topics of node `authid`
    /// (`crossbarfabriccenter.node.<authid>.worker.<id>.on_trace_started`,
    /// `…on_trace_stopped`, also for traces whose duration ran out).
    pub fn take_events(&mut self, ctl: &dyn RouterControl, authid: &str, now: SystemTime) -> Vec<(String, Vec<Value>)> {
        let tracer = ctl.tracer();
        if tracer.is_active() {
            // Batches of the running traces that are due, then the stop of
            // those whose duration ran out (their last records stay
            // readable with get_trace_data).
            let batches = crate::trace_api::stream(&tracer, &mut self.streams, now);
            self.events.extend(batches);
            let expired = crate::trace_api::expired(&tracer, authid, &self.worker_id, now);
            self.events.extend(expired);
        }
        let prefix = format!("crossbarfabriccenter.node.{authid}.worker.{}.", self.worker_id);
        self.events.drain(..).map(|(suffix, args)| (format!("{prefix}{suffix}"), args)).collect()
    }

    /// The worker's id.
    pub fn worker_id(&self) -> &str {
        &self.worker_id
    }

    /// The full URIs to register for node `authid`.
    pub fn procedures(&self, authid: &str) -> Vec<String> {
        ROUTER_PROCEDURES
            .iter()
            .chain(META_PROCEDURES.iter())
            .chain(crate::trace_api::TRACING_PROCEDURES.iter())
            .chain(crate::web_api::WEB_SERVICE_PROCEDURES.iter())
            .map(|p| format!("crossbarfabriccenter.node.{authid}.worker.{}.{p}", self.worker_id))
            .collect()
    }

    /// The procedure suffix of a full URI of this worker, if it is one.
    pub fn suffix<'a>(&self, authid: &str, procedure: &'a str) -> Option<&'a str> {
        procedure.strip_prefix(&format!("crossbarfabriccenter.node.{authid}.worker.{}.", self.worker_id))
    }

    /// Realms running that this API has not seen yet (from the start-up
    /// config) get an entry under their name; realms gone are dropped.
    fn sync(&mut self, ctl: &dyn RouterControl, now: SystemTime) {
        let names = ctl.realm_names();
        self.realms.retain(|_, e| names.contains(&e.name));
        for n in names {
            if !self.realms.values().any(|e| e.name == n) {
                self.realms.insert(
                    n.clone(),
                    RealmEntry {
                        name: n.clone(),
                        config: json!({"name": n}),
                        created: now,
                        links: BTreeMap::new(),
                        roles: BTreeMap::new(),
                    },
                );
            }
        }
    }

    fn realm_json(&self, id: &str, e: &RealmEntry) -> Value {
        from_json(&json!({
            "id": id,
            "config": e.config,
            "created": iso(e.created),
            "rlinks": e.links.keys().collect::<Vec<_>>(),
            "has_router": true,
            "has_service_session": false,
        }))
    }

    fn entry(&self, id: &str) -> Result<&RealmEntry, ApiError> {
        self.realms.get(id).ok_or_else(|| {
            ApiError::new(
                "crossbar.error.no_such_object",
                format!("no realm with ID '{id}' on worker '{}'", self.worker_id),
            )
        })
    }

    /// Answers one worker API call (`proc` is the URI suffix).
    pub fn handle(
        &mut self,
        ctl: &dyn RouterControl,
        now: SystemTime,
        proc: &str,
        args: &[Value],
        kwargs: &Dict,
    ) -> Result<Value, ApiError> {
        // Lifecycle events (crate::lifecycle): the change announced, then its result.
        self.events.extend(crate::lifecycle::before(proc, args));
        let r = self.handle_call(ctl, now, proc, args, kwargs);
        if let Ok(v) = &r {
            self.events.extend(crate::lifecycle::after(proc, args, v));
        }
        r
    }

    fn handle_call(
        &mut self,
        ctl: &dyn RouterControl,
        now: SystemTime,
        proc: &str,
        args: &[Value],
        kwargs: &Dict,
    ) -> Result<Value, ApiError> {
        self.sync(ctl, now);
        let a = Args { procedure: proc, args, kwargs };
        match proc {
            "get_router_realms" => Ok(Value::List(self.realms.keys().map(|k| Value::Str(k.clone())).collect())),
            "get_router_realm" => {
                let id = a.str(0, "realm_id")?;
                Ok(self.realm_json(id, self.entry(id)?))
            }
            "get_router_realm_by_name" => {
                let name = a.str(0, "realm_name")?;
                let (id, e) = self.realms.iter().find(|(_, e)| e.name == name).ok_or_else(|| {
                    ApiError::new(
                        "crossbar.error.no_such_object",
                        format!("no realm named '{name}' on worker '{}'", self.worker_id),
                    )
                })?;
                Ok(self.realm_json(id, e))
            }
            "start_router_realm" => {
                let id = a.str(0, "realm_id")?.to_owned();
                let config = a.dict(1, "realm_config")?;
                if self.realms.contains_key(&id) {
                    return Err(ApiError::already_exists(format!(
                        "a realm with ID '{id}' is running on worker '{}'",
                        self.worker_id
                    )));
                }
                let cfg_json = to_json(&Value::Dict(config.clone()));
                // A realm may start with no roles (Crossbar's master adds them with
                // start_router_realm_role); the check needs one, so lend it one.
                let no_roles = cfg_json.get("roles").is_none_or(|r| r.as_array().is_some_and(Vec::is_empty));
                let mut checked = cfg_json.clone();
                if no_roles {
                    checked["roles"] = json!([{"name": "realm-check", "permissions": []}]);
                }
                let mut cfg = junction_config::parse_realm(&checked)
                    .map_err(|e| ApiError::new("crossbar.error.invalid_configuration", e.to_string()))?;
                if no_roles {
                    cfg.roles.clear();
                }
                if !cfg.rlinks.is_empty() {
                    return Err(ApiError::new(
                        "crossbar.error.invalid_configuration",
                        "start the realm's links with start_router_realm_link",
                    ));
                }
                if self.realms.values().any(|e| e.name == cfg.name) {
                    return Err(ApiError::already_exists(format!(
                        "realm '{}' is running on worker '{}'",
                        cfg.name, self.worker_id
                    )));
                }
                ctl.start_realm(&cfg).map_err(|e| ApiError::new("crossbar.error.cannot_start", e))?;
                let bridge = cfg_json.pointer("/options/bridge_meta_api").and_then(Json::as_bool) == Some(true);
                if bridge {
                    if let Err(e) = ctl.bridge_meta(&id, &cfg.name) {
                        let _ = ctl.stop_realm(&cfg.name);
                        return Err(ApiError::new("crossbar.error.cannot_start", format!("bridge_meta_api: {e}")));
                    }
                }
                let entry = RealmEntry {
                    name: cfg.name.clone(),
                    config: cfg_json,
                    created: now,
                    links: BTreeMap::new(),
                    roles: BTreeMap::new(),
                };
                let v = self.realm_json(&id, &entry);
                self.realms.insert(id, entry);
                Ok(v)
            }
            "stop_router_realm" => {
                let id = a.str(0, "realm_id")?.to_owned();
                let name = self.entry(&id)?.name.clone();
                let closed = ctl.stop_realm(&name).map_err(|e| ApiError::new("crossbar.error.cannot_stop", e))?;
                let e = self.realms.remove(&id);
                let mut v = e.map(|e| self.realm_json(&id, &e)).unwrap_or(Value::Null);
                if let Value::Dict(d) = &mut v {
                    d.insert("stopped".into(), Value::Str(iso(now)));
                    d.insert("sessions_closed".into(), Value::UInt(closed as u64));
                }
                Ok(v)
            }
            "get_router_realm_links" => {
                let id = a.str(0, "realm_id")?;
                let e = self.entry(id)?;
                let live = ctl.links(&e.name).map_err(|m| ApiError::new("crossbar.error.no_such_object", m))?;
                Ok(Value::List(live.iter().filter_map(|l| l.get("id").map(from_json)).collect()))
            }
            "get_router_realm_link" => {
                let (id, link) = (a.str(0, "realm_id")?, a.str(1, "link_id")?);
                let e = self.entry(id)?;
                let live = ctl.links(&e.name).map_err(|m| ApiError::new("crossbar.error.no_such_object", m))?;
                let l =
                    live.into_iter().find(|l| l.get("id").and_then(Json::as_str) == Some(link)).ok_or_else(|| {
                        ApiError::new("crossbar.error.no_such_object", format!("no link '{link}' on realm '{id}'"))
                    })?;
                let mut l = l;
                l["config"] = e.links.get(link).cloned().unwrap_or(Json::Null);
                Ok(from_json(&l))
            }
            "start_router_realm_link" => {
                let (id, link) = (a.str(0, "realm_id")?.to_owned(), a.str(1, "link_id")?.to_owned());
                let config = a.dict(2, "link_config")?;
                let name = self.entry(&id)?.name.clone();
                let mut lj = to_json(&Value::Dict(config.clone()));
                lj["id"] = Json::String(link.clone());
                if lj.get("realm").is_none() {
                    lj["realm"] = Json::String(name.clone());
                }
                // Checked as part of a realm (the role only satisfies the realm rules).
                let wrapper =
                    json!({"name": name, "roles": [{"name": "link-check", "permissions": []}], "rlinks": [lj]});
                let cfg = junction_config::parse_realm(&wrapper)
                    .map_err(|e| ApiError::new("crossbar.error.invalid_configuration", e.to_string()))?;
                let l =
                    cfg.rlinks.into_iter().next().ok_or_else(|| ApiError::invalid_argument("no link configuration"))?;
                ctl.start_link(&name, &l).map_err(|e| ApiError::new("crossbar.error.cannot_start", e))?;
                if let Some(e) = self.realms.get_mut(&id) {
                    e.links.insert(link.clone(), lj.clone());
                }
                Ok(from_json(&json!({"id": link, "realm": name, "config": lj, "started": iso(now)})))
            }
            "stop_router_realm_link" => {
                let (id, link) = (a.str(0, "realm_id")?.to_owned(), a.str(1, "link_id")?.to_owned());
                let name = self.entry(&id)?.name.clone();
                ctl.stop_link(&name, &link).map_err(|e| ApiError::new("crossbar.error.no_such_object", e))?;
                if let Some(e) = self.realms.get_mut(&id) {
                    e.links.remove(&link);
                }
                Ok(from_json(&json!({"id": link, "realm": name, "stopped": iso(now)})))
            }
            "get_router_realm_roles" => {
                let id = a.str(0, "realm_id")?;
                let e = self.entry(id)?;
                let mut ids: Vec<Value> = e.roles.keys().map(|k| Value::Str(k.clone())).collect();
                // Roles from the realm's own configuration, by name.
                if let Some(Json::Array(rs)) = e.config.get("roles") {
                    for r in rs {
                        if let Some(n) = r.get("name").and_then(Json::as_str) {
                            if !e.roles.values().any(|(name, _)| name == n) {
                                ids.push(Value::Str(n.to_owned()));
                            }
                        }
                    }
                }
                Ok(Value::List(ids))
            }
            "get_router_realm_role" => {
                let (id, rid) = (a.str(0, "realm_id")?, a.str(1, "role_id")?);
                let e = self.entry(id)?;
                let config = match e.roles.get(rid) {
                    Some((_, c)) => c.clone(),
                    None => e
                        .config
                        .get("roles")
                        .and_then(Json::as_array)
                        .and_then(|rs| rs.iter().find(|r| r.get("name").and_then(Json::as_str) == Some(rid)).cloned())
                        .ok_or_else(|| {
                            ApiError::new("crossbar.error.no_such_object", format!("no role '{rid}' on realm '{id}'"))
                        })?,
                };
                Ok(from_json(&json!({"id": rid, "config": config})))
            }
            // Crossbar runs Python components inside router workers;
            // Junction's router workers run none (components connect as
            // ordinary WAMP clients).
            "get_router_components" => Ok(Value::List(Vec::new())),
            "get_router_component" | "stop_router_component" => {
                let cid = a.str(0, "component_id")?;
                Err(ApiError::no_such_object(format!("no component '{cid}' in router worker '{}'", self.worker_id)))
            }
            "start_router_component" => {
                a.str(0, "component_id")?;
                Err(ApiError::new(
                    "crossbar.error.feature_unavailable",
                    "start_router_component: Junction's router workers do not host components; run the component as a WAMP client connected to a transport of this router",
                ))
            }
            "start_router_realm_role" => {
                let (id, rid) = (a.str(0, "realm_id")?.to_owned(), a.str(1, "role_id")?.to_owned());
                let config = a.dict(2, "role_config")?;
                let name = self.entry(&id)?.name.clone();
                if self.entry(&id)?.roles.contains_key(&rid) {
                    return Err(ApiError::already_exists(format!("role '{rid}' is running on realm '{id}'")));
                }
                let rj = to_json(&Value::Dict(config.clone()));
                let cfg = junction_config::parse_realm(&json!({"name": name, "roles": [rj]}))
                    .map_err(|e| ApiError::new("crossbar.error.invalid_configuration", e.to_string()))?;
                let role =
                    cfg.roles.into_iter().next().ok_or_else(|| ApiError::invalid_argument("no role configuration"))?;
                ctl.set_role(&name, &role).map_err(|e| ApiError::new("crossbar.error.cannot_start", e))?;
                if let Some(e) = self.realms.get_mut(&id) {
                    e.roles.insert(rid.clone(), (role.name.clone(), rj.clone()));
                }
                Ok(from_json(&json!({"id": rid, "config": rj, "started": iso(now)})))
            }
            "stop_router_realm_role" => {
                let (id, rid) = (a.str(0, "realm_id")?.to_owned(), a.str(1, "role_id")?.to_owned());
                let e = self.entry(&id)?;
                let name = e.name.clone();
                let (role_name, _) = e.roles.get(&rid).cloned().ok_or_else(|| {
                    ApiError::new("crossbar.error.no_such_object", format!("no role '{rid}' on realm '{id}'"))
                })?;
                // A role replaced under a new id (new permissions) keeps running:
                // stopping the old id then only forgets it.
                let still_used = e.roles.iter().any(|(other, (n, _))| other != &rid && n == &role_name);
                let closed = if still_used {
                    0
                } else {
                    ctl.remove_role(&name, &role_name).map_err(|e| ApiError::new("crossbar.error.no_such_object", e))?
                };
                if let Some(e) = self.realms.get_mut(&id) {
                    e.roles.remove(&rid);
                }
                Ok(from_json(&json!({"id": rid, "stopped": iso(now), "sessions_closed": closed})))
            }
            "start_router_transport" => {
                let tid = a.str(0, "transport_id")?;
                if tid.is_empty() || tid.len() > 128 {
                    return Err(ApiError::invalid_argument("transport_id must be 1 to 128 characters"));
                }
                let config = a.dict(1, "transport_config")?;
                let cfg = junction_config::parse_router_transport(&to_json(&Value::Dict(config.clone())))
                    .map_err(|e| ApiError::new("crossbar.error.invalid_configuration", e.to_string()))?;
                if ctl.transports().iter().any(|t| t.get("id").and_then(Json::as_str) == Some(tid)) {
                    return Err(ApiError::already_exists(format!(
                        "a transport '{tid}' is running on worker '{}'",
                        self.worker_id
                    )));
                }
                let info =
                    ctl.start_transport(tid, &cfg).map_err(|e| ApiError::new("crossbar.error.cannot_listen", e))?;
                self.transport_configs.insert(tid.to_owned(), to_json(&Value::Dict(config.clone())));
                let mut v = from_json(&info);
                if let Value::Dict(d) = &mut v {
                    d.insert("config".into(), Value::Dict(config.clone()));
                    d.insert("created_at".into(), Value::Str(iso(now)));
                }
                Ok(v)
            }
            "stop_router_transport" => {
                let tid = a.str(0, "transport_id")?;
                ctl.stop_transport(tid).map_err(|e| ApiError::new("crossbar.error.no_such_object", e))?;
                self.transport_configs.remove(tid);
                Ok(from_json(&json!({"id": tid, "stopped": iso(now)})))
            }
            p if crate::web_api::WEB_SERVICE_PROCEDURES.contains(&p) => {
                let startup = |id: &str| ctl.startup_transport_config(id);
                let replace = |id: &str, t: &junction_config::TransportConfig| ctl.replace_transport(id, t);
                crate::web_api::WebTransports::new(&ctl.transports(), &mut self.transport_configs, &startup, &replace)
                    .handle(p, args, kwargs)
            }
            p if crate::trace_api::TRACING_PROCEDURES.contains(&p) => {
                let (v, ev) =
                    crate::trace_api::handle(&ctl.tracer(), &self.node_id, &self.worker_id, now, p, args, kwargs)?;
                self.events.extend(ev);
                Ok(v)
            }
            p if META_PROCEDURES.contains(&p) => {
                let id = a.str(0, "realm_id")?;
                let name = self.entry(id)?.name.clone();
                ctl.meta_call(&name, p, args[1..].to_vec(), kwargs.clone())
                    .map_err(|(u, m)| ApiError { uri: u, message: m })
            }
            "kill_by_authid" => {
                let id = a.str(0, "realm_id")?;
                let authid = a.str(1, "authid")?;
                let name = self.entry(id)?.name.clone();
                let mut kw = Dict::new();
                for (i, k) in [(2, "reason"), (3, "message")] {
                    if let Some(v) = a.opt_str(i, k)? {
                        kw.insert(k.into(), Value::Str(v.to_owned()));
                    }
                }
                let n = ctl
                    .meta_call(&name, "wamp.session.kill_by_authid", vec![Value::Str(authid.to_owned())], kw)
                    .map_err(|(u, m)| ApiError { uri: u, message: m })?;
                Ok(from_json(&json!({"realm": name, "authid": authid, "killed": to_json(&n)})))
            }
            "get_router_realm_stats" => {
                let only = a.opt_str(0, "realm_id")?.map(str::to_owned);
                let mut out = Dict::new();
                for (id, e) in &self.realms {
                    if only.as_ref().is_some_and(|o| o != id) {
                        continue;
                    }
                    let sessions =
                        ctl.meta_call(&e.name, "wamp.session.count", Vec::new(), Dict::new()).unwrap_or(Value::Null);
                    let roles = e.config.get("roles").and_then(Json::as_array).map_or(0, Vec::len) + e.roles.len();
                    out.insert(
                        id.clone(),
                        from_json(&json!({"name": e.name, "sessions": to_json(&sessions), "roles": roles})),
                    );
                }
                if let Some(o) = only.filter(|o| !out.contains_key(o)) {
                    return Err(ApiError::new("crossbar.error.no_such_object", format!("no realm with ID '{o}'")));
                }
                Ok(Value::Dict(out))
            }
            "get_router_transports" => Ok(Value::List(ctl.transports().iter().map(from_json).collect())),
            "get_router_transport" => {
                let tid = a.str(0, "transport_id")?;
                ctl.transports()
                    .into_iter()
                    .find(|t| t.get("id").and_then(Json::as_str) == Some(tid))
                    .map(|t| from_json(&t))
                    .ok_or_else(|| {
                        ApiError::new("crossbar.error.no_such_object", format!("no transport with ID '{tid}'"))
                    })
            }
            _ => Err(ApiError::new("wamp.error.no_such_procedure", format!("no worker procedure '{proc}'"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// An in-memory stand-in for a router worker (the real one is driven end to end).
    #[derive(Default)]
    struct Fake {
        realms: RefCell<Vec<String>>,
        links: RefCell<Vec<(String, String)>>,
        roles: RefCell<Vec<(String, String)>>,
        tracer: std::sync::Arc<router_core::engine::trace::Tracer>,
    }

    impl RouterControl for Fake {
        fn realm_names(&self) -> Vec<String> {
            self.realms.borrow().clone()
        }
        fn start_realm(&self, realm: &junction_config::RealmConfig) -> Result<(), String> {
            self.realms.borrow_mut().push(realm.name.clone());
            Ok(())
        }
        fn stop_realm(&self, name: &str) -> Result<usize, String> {
            self.realms.borrow_mut().retain(|r| r != name);
            Ok(3)
        }
        fn start_link(&self, realm: &str, link: &junction_config::RLinkConfig) -> Result<(), String> {
            self.links.borrow_mut().push((realm.into(), link.id.clone()));
            Ok(())
        }
        fn stop_link(&self, realm: &str, id: &str) -> Result<(), String> {
            let before = self.links.borrow().len();
            self.links.borrow_mut().retain(|(r, i)| !(r == realm && i == id));
            if self.links.borrow().len() == before {
                Err(format!("no link '{id}'"))
            } else {
                Ok(())
            }
        }
        fn links(&self, realm: &str) -> Result<Vec<Json>, String> {
            Ok(self
                .links
                .borrow()
                .iter()
                .filter(|(r, _)| r == realm)
                .map(|(_, i)| json!({"id": i, "state": "connecting"}))
                .collect())
        }
        fn transports(&self) -> Vec<Json> {
            vec![json!({"id": "tnp1", "type": "rawsocket"})]
        }
        fn set_role(&self, realm: &str, role: &junction_config::RoleConfig) -> Result<(), String> {
            self.roles.borrow_mut().push((realm.into(), role.name.clone()));
            Ok(())
        }
        fn remove_role(&self, realm: &str, role: &str) -> Result<usize, String> {
            self.roles.borrow_mut().retain(|(r, n)| !(r == realm && n == role));
            Ok(2)
        }
        fn start_transport(&self, id: &str, _t: &junction_config::TransportConfig) -> Result<Json, String> {
            Ok(json!({"id": id, "port": 10000}))
        }
        fn stop_transport(&self, id: &str) -> Result<(), String> {
            if id == "tnp1" {
                Ok(())
            } else {
                Err(format!("no transport '{id}'"))
            }
        }
        fn bridge_meta(&self, _realm_id: &str, _realm: &str) -> Result<(), String> {
            Ok(())
        }
        fn tracer(&self) -> std::sync::Arc<router_core::engine::trace::Tracer> {
            self.tracer.clone()
        }
        fn meta_call(
            &self,
            realm: &str,
            procedure: &str,
            args: Vec<Value>,
            _kw: Dict,
        ) -> Result<Value, (String, String)> {
            match procedure {
                "wamp.session.count" if self.realms.borrow().iter().any(|r| r == realm) => Ok(Value::UInt(3)),
                "wamp.session.kill_by_authid" => Ok(Value::UInt(args.len() as u64)),
                _ => Err(("wamp.error.no_such_procedure".into(), procedure.into())),
            }
        }
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    fn realm_cfg(name: &str) -> Value {
        from_json(&json!({"name": name, "roles": [{"name": "app", "permissions": [{"uri": "", "match": "prefix",
            "allow": {"call": true, "register": true, "publish": true, "subscribe": true}}]}]}))
    }

    #[test]
    fn realms_and_links_start_list_and_stop() {
        let fake = Fake::default();
        fake.realms.borrow_mut().push("config-realm".into());
        let mut api = RouterWorkerApi::new("wg1_1");
        let now = SystemTime::UNIX_EPOCH;
        let call = |api: &mut RouterWorkerApi, p: &str, a: Vec<Value>| api.handle(&fake, now, p, &a, &Dict::new());
        assert_eq!(call(&mut api, "get_router_realms", vec![]), Ok(Value::List(vec![s("config-realm")])));
        let r = call(&mut api, "start_router_realm", vec![s("rlm_1"), realm_cfg("app-realm1")]).expect("start");
        assert_eq!(r.as_dict().and_then(|d| d.get("id")), Some(&s("rlm_1")));
        assert_eq!(fake.realm_names(), ["config-realm", "app-realm1"]);
        assert_eq!(
            call(&mut api, "start_router_realm", vec![s("rlm_1"), realm_cfg("other")]).unwrap_err().uri,
            "crossbar.error.already_exists"
        );
        assert_eq!(
            call(&mut api, "start_router_realm", vec![s("rlm_2"), realm_cfg("app-realm1")]).unwrap_err().uri,
            "crossbar.error.already_exists"
        );
        let bad = from_json(
            &json!({"name": "x", "roles": [{"name": "r", "permissions": [{"uri": "", "match": "sideways"}]}]}),
        );
        assert_eq!(
            call(&mut api, "start_router_realm", vec![s("rlm_3"), bad]).unwrap_err().uri,
            "crossbar.error.invalid_configuration"
        );
        assert_eq!(
            call(&mut api, "start_router_realm", vec![s("rlm_3"), s("nope")]).unwrap_err().uri,
            "wamp.error.invalid_argument"
        );
        let by_name = call(&mut api, "get_router_realm_by_name", vec![s("app-realm1")]).expect("by name");
        assert_eq!(by_name.as_dict().and_then(|d| d.get("id")), Some(&s("rlm_1")));

        let link = from_json(
            &json!({"transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": "10.0.0.2", "port": 10000}},
            "forward_local_events": true, "forward_remote_events": false,
            "forward_local_invocations": true, "forward_remote_invocations": false}),
        );
        call(&mut api, "start_router_realm_link", vec![s("rlm_1"), s("rlk_1"), link]).expect("link");
        assert_eq!(call(&mut api, "get_router_realm_links", vec![s("rlm_1")]), Ok(Value::List(vec![s("rlk_1")])));
        let bad_link =
            from_json(&json!({"transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": "h", "port": 1}},
            "forward_remote_events": true}));
        assert_eq!(
            call(&mut api, "start_router_realm_link", vec![s("rlm_1"), s("rlk_2"), bad_link]).unwrap_err().uri,
            "crossbar.error.invalid_configuration"
        );
        call(&mut api, "stop_router_realm_link", vec![s("rlm_1"), s("rlk_1")]).expect("stop link");
        assert_eq!(
            call(&mut api, "stop_router_realm_link", vec![s("rlm_1"), s("rlk_1")]).unwrap_err().uri,
            "crossbar.error.no_such_object"
        );

        // Roles at run time, under Crossbar's role ids.
        let role = from_json(&json!({"name": "app-role", "permissions": [{"uri": "com.example.", "match": "prefix",
            "allow": {"call": true, "register": true, "publish": true, "subscribe": true}}]}));
        call(&mut api, "start_router_realm_role", vec![s("rlm_1"), s("rle_1"), role.clone()]).expect("role");
        assert_eq!(fake.roles.borrow().as_slice(), [("app-realm1".to_owned(), "app-role".to_owned())]);
        assert_eq!(
            call(&mut api, "start_router_realm_role", vec![s("rlm_1"), s("rle_1"), role]).unwrap_err().uri,
            "crossbar.error.already_exists"
        );
        let roles = call(&mut api, "get_router_realm_roles", vec![s("rlm_1")]).expect("roles");
        assert_eq!(roles, Value::List(vec![s("rle_1"), s("app")]));
        assert!(call(&mut api, "get_router_realm_role", vec![s("rlm_1"), s("rle_1")]).is_ok());
        let bad_role = from_json(&json!({"name": "x", "permissions": [{"uri": "a b", "match": "exact"}]}));
        assert_eq!(
            call(&mut api, "start_router_realm_role", vec![s("rlm_1"), s("rle_2"), bad_role]).unwrap_err().uri,
            "crossbar.error.invalid_configuration"
        );
        let st = call(&mut api, "stop_router_realm_role", vec![s("rlm_1"), s("rle_1")]).expect("stop role");
        assert_eq!(st.as_dict().and_then(|d| d.get("sessions_closed")), Some(&Value::UInt(2)));
        assert!(fake.roles.borrow().is_empty());
        assert_eq!(
            call(&mut api, "stop_router_realm_role", vec![s("rlm_1"), s("rle_1")]).unwrap_err().uri,
            "crossbar.error.no_such_object"
        );
        // A realm may start with no roles at all.
        call(&mut api, "start_router_realm", vec![s("rlm_9"), from_json(&json!({"name": "bare"}))])
            .expect("bare realm");

        let stopped = call(&mut api, "stop_router_realm", vec![s("rlm_1")]).expect("stop");
        assert_eq!(stopped.as_dict().and_then(|d| d.get("sessions_closed")), Some(&Value::UInt(3)));
        assert_eq!(
            call(&mut api, "get_router_realm", vec![s("rlm_1")]).unwrap_err().uri,
            "crossbar.error.no_such_object"
        );
        assert_eq!(fake.realm_names(), ["config-realm", "bare"]);
        assert_eq!(call(&mut api, "get_router_transport", vec![s("tnp1")]).map(|_| ()), Ok(()));
        let tc = from_json(&json!({"type": "rawsocket", "endpoint": {"type": "tcp", "portrange": [10000, 10100]},
            "serializers": ["cbor"]}));
        let t = call(&mut api, "start_router_transport", vec![s("tnp2"), tc.clone()]).expect("transport");
        assert_eq!(t.as_dict().and_then(|d| d.get("port")), Some(&Value::UInt(10000)));
        assert_eq!(
            call(&mut api, "start_router_transport", vec![s("tnp1"), tc]).unwrap_err().uri,
            "crossbar.error.already_exists"
        );
        let bad = from_json(&json!({"type": "rawsocket", "endpoint": {"type": "tcp", "port": 0}}));
        assert_eq!(
            call(&mut api, "start_router_transport", vec![s("tnp3"), bad]).unwrap_err().uri,
            "crossbar.error.invalid_configuration"
        );
        assert!(call(&mut api, "stop_router_transport", vec![s("tnp1")]).is_ok());
        assert_eq!(
            call(&mut api, "stop_router_transport", vec![s("zz")]).unwrap_err().uri,
            "crossbar.error.no_such_object"
        );
        assert_eq!(call(&mut api, "nope", vec![]).unwrap_err().uri, "wamp.error.no_such_procedure");
        // Meta procedures of a realm, by realm id, as the operator.
        assert_eq!(call(&mut api, "wamp.session.count", vec![s("config-realm")]), Ok(Value::UInt(3)));
        assert_eq!(
            call(&mut api, "wamp.session.count", vec![s("rlm_none")]).unwrap_err().uri,
            "crossbar.error.no_such_object"
        );
        let k = call(&mut api, "kill_by_authid", vec![s("config-realm"), s("joe")]).expect("kill");
        assert_eq!(k.as_dict().and_then(|d| d.get("killed")), Some(&Value::UInt(1)));
        let st = call(&mut api, "get_router_realm_stats", vec![]).expect("stats");
        assert_eq!(
            st.as_dict().and_then(|d| d.get("config-realm")).and_then(|r| r.as_dict()).and_then(|r| r.get("sessions")),
            Some(&Value::UInt(3))
        );
        assert_eq!(api.procedures("node1").len(), ROUTER_PROCEDURES.len() + META_PROCEDURES.len() + 5 + 4);
        // Lifecycle events of the changes above, under the worker's prefix.
        let ev = api.take_events(&fake, "node1", now);
        let topics: Vec<&str> =
            ev.iter().filter_map(|e| e.0.strip_prefix("crossbarfabriccenter.node.node1.worker.wg1_1.")).collect();
        assert_eq!(topics.len(), ev.len(), "all under the prefix: {topics:?}");
        for t in ["on_router_realm_starting", "on_router_realm_started", "on_realm_started", "on_router_realm_stopped"]
        {
            assert!(topics.contains(&t), "{t}: {topics:?}");
        }
        let tnp3: Vec<&str> = ev
            .iter()
            .filter(|e| e.1.first().and_then(Value::as_dict).and_then(|d| d.get("id")) == Some(&s("tnp3")))
            .map(|e| e.0.as_str())
            .collect();
        assert_eq!(
            tnp3,
            ["crossbarfabriccenter.node.node1.worker.wg1_1.on_router_transport_starting"],
            "a failed start: announced, never started"
        );
        // Tracing, with its events under the worker's prefix.
        api.set_node_id("node1");
        let t = call(&mut api, "start_trace", vec![s("t1")]).expect("trace");
        assert_eq!(t.as_dict().and_then(|d| d.get("node_id")), Some(&s("node1")));
        call(&mut api, "stop_trace", vec![s("t1")]).expect("stop trace");
        let ev = api.take_events(&fake, "node1", now);
        assert_eq!(
            ev.iter().map(|e| e.0.as_str()).collect::<Vec<_>>(),
            [
                "crossbarfabriccenter.node.node1.worker.wg1_1.on_trace_started",
                "crossbarfabriccenter.node.node1.worker.wg1_1.on_trace_stopped"
            ]
        );
        assert!(api.take_events(&fake, "node1", now).is_empty());
        assert_eq!(
            api.suffix("node1", "crossbarfabriccenter.node.node1.worker.wg1_1.get_router_realms"),
            Some("get_router_realms")
        );
    }
}
