//! The worker API of a managed proxy worker (sans-IO over a
//! [`ProxyControl`]): the procedures a proxy worker process registers on its
//! master as `crossbarfabriccenter.node.<authid>.worker.<id>.<procedure>`,
//! reached through `crossbarfabriccenter.remote.proxy.<procedure>(node_oid,
//! worker_id, ...)`: frontend transports, backend connections and routes,
//! with Crossbar's argument shapes.
//!
//! Crossbar's connections are realm-less and a route names the realm; a
//! Junction proxy link serves one realm. So `start_proxy_connection` stores
//! the connection, and each route starts (once) the connection's link for
//! the route's realm; a connection whose config names a `realm` (Junction
//! extension) starts its link at once.

use std::collections::BTreeMap;
use std::time::SystemTime;

use serde_json::{json, Value as Json};
use wamp_proto::{Dict, Value};

use crate::error::ApiError;
use crate::value::{from_json, to_json, Args};

/// What the worker API needs from a running proxy worker.
pub trait ProxyControl {
    /// Starts the link of connection `id` (its validated config) for `realm`.
    fn start_link(
        &self,
        id: &str,
        realm: &str,
        connection: &junction_config::ProxyConnectionConfig,
    ) -> Result<(), String>;
    /// Stops every link of connection `id`.
    fn stop_links(&self, id: &str) -> Result<(), String>;
    /// Starts a route; its id.
    fn start_route(&self, realm: &str, roles: &[(String, Vec<String>)]) -> Result<String, String>;
    /// Stops a route.
    fn stop_route(&self, realm: &str, id: &str) -> Result<(), String>;
    /// Starts a frontend transport under `id`; `{id, type, endpoint, port?}`.
    fn start_transport(&self, id: &str, transport: &junction_config::TransportConfig) -> Result<Json, String>;
    /// Stops a frontend transport.
    fn stop_transport(&self, id: &str) -> Result<(), String>;
    /// The running frontend transports as `{id, type, endpoint, port?}`.
    fn transports(&self) -> Vec<Json>;
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

/// Procedures of the proxy worker API (suffixes).
pub const PROXY_PROCEDURES: [&str; 13] = [
    "get_proxy_transports",
    "get_proxy_transport",
    "start_proxy_transport",
    "stop_proxy_transport",
    "get_proxy_connections",
    "get_proxy_connection",
    "start_proxy_connection",
    "stop_proxy_connection",
    "get_proxy_routes",
    "list_proxy_realm_routes",
    "get_proxy_realm_route",
    "start_proxy_realm_route",
    "stop_proxy_realm_route",
];

struct Connection {
    config: Json,
    parsed: Json,
    started: SystemTime,
    /// Realms its link runs for.
    realms: Vec<String>,
}

struct Route {
    realm: String,
    config: Json,
    started: SystemTime,
}

/// See the module docs.
pub struct ProxyWorkerApi {
    worker_id: String,
    connections: BTreeMap<String, Connection>,
    routes: BTreeMap<String, Route>,
    /// The configurations transports were started with through the API.
    transport_configs: BTreeMap<String, Json>,
    /// Lifecycle events to publish (topic suffix, args).
    events: Vec<(String, Vec<Value>)>,
}

fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn err(uri: &str, m: impl Into<String>) -> ApiError {
    ApiError::new(uri, m)
}

impl ProxyWorkerApi {
    /// The API of proxy worker `worker_id`.
    pub fn new(worker_id: &str) -> ProxyWorkerApi {
        ProxyWorkerApi {
            worker_id: worker_id.to_owned(),
            connections: BTreeMap::new(),
            routes: BTreeMap::new(),
            transport_configs: BTreeMap::new(),
            events: Vec::new(),
        }
    }

    /// The full URIs to register for node `authid`.
    pub fn procedures(&self, authid: &str) -> Vec<String> {
        PROXY_PROCEDURES
            .iter()
            .chain(crate::web_api::WEB_SERVICE_PROCEDURES.iter())
            .map(|p| format!("crossbarfabriccenter.node.{authid}.worker.{}.{p}", self.worker_id))
            .collect()
    }

    /// The procedure suffix of a full URI of this worker, if it is one.
    pub fn suffix<'a>(&self, authid: &str, procedure: &'a str) -> Option<&'a str> {
        procedure.strip_prefix(&format!("crossbarfabriccenter.node.{authid}.worker.{}.", self.worker_id))
    }

    /// Checks a connection config as a Junction proxy connection for `realm`.
    fn parse_connection(config: &Json, realm: &str) -> Result<junction_config::ProxyConnectionConfig, ApiError> {
        let mut c = config.clone();
        c["realm"] = json!(realm);
        // Crossbar's extras on a connection (`auth`, `transport.url`,
        // `transport.serializer`) do not apply to a proxy link.
        if let Some(o) = c.as_object_mut() {
            o.remove("auth");
        }
        if let Some(t) = c.get_mut("transport").and_then(Json::as_object_mut) {
            t.remove("url");
            t.remove("serializer");
            t.remove("serializers");
        }
        let wrapped = json!({"version": 2, "workers": [{
            "type": "proxy",
            "transports": [{"type": "rawsocket", "endpoint": {"type": "unix", "path": "/nonexistent/junction-proxy-check"}}],
            "routes": {realm: {"*": ["c"]}},
            "connections": {"c": c}
        }]});
        let cfg = junction_config::parse_str(&wrapped.to_string(), junction_config::Format::Json).map_err(|e| {
            err("crossbar.error.invalid_configuration", e.to_string().replace("workers[0].connections.c", "connection"))
        })?;
        let p = cfg.workers.into_iter().find_map(|w| match w {
            junction_config::WorkerConfig::Proxy(p) => Some(p),
            _ => None,
        });
        p.and_then(|p| p.connections.into_iter().next().map(|(_, c)| c))
            .ok_or_else(|| err("crossbar.error.invalid_configuration", "the connection could not be read"))
    }

    fn start_link_for(&mut self, ctl: &dyn ProxyControl, id: &str, realm: &str) -> Result<(), ApiError> {
        let c = self
            .connections
            .get(id)
            .ok_or_else(|| err("crossbar.error.no_such_object", format!("no connection '{id}'")))?;
        if c.realms.iter().any(|r| r == realm) {
            return Ok(());
        }
        let parsed = Self::parse_connection(&c.parsed, realm)?;
        ctl.start_link(id, realm, &parsed).map_err(|e| err("crossbar.error.cannot_start", e))?;
        if let Some(c) = self.connections.get_mut(id) {
            c.realms.push(realm.to_owned());
        }
        Ok(())
    }

    /// Answers one worker API call (`proc` is the URI suffix).
    pub fn handle(
        &mut self,
        ctl: &dyn ProxyControl,
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

    /// Events to publish now, as full topics of node `authid`
    /// (`crossbarfabriccenter.node.<authid>.worker.<id>.on_proxy_route_started`, ...).
    pub fn take_events(&mut self, authid: &str) -> Vec<(String, Vec<Value>)> {
        let prefix = format!("crossbarfabriccenter.node.{authid}.worker.{}.", self.worker_id);
        self.events.drain(..).map(|(suffix, args)| (format!("{prefix}{suffix}"), args)).collect()
    }

    fn handle_call(
        &mut self,
        ctl: &dyn ProxyControl,
        now: SystemTime,
        proc: &str,
        args: &[Value],
        kwargs: &Dict,
    ) -> Result<Value, ApiError> {
        let a = Args { procedure: proc, args, kwargs };
        match proc {
            "get_proxy_transports" => {
                Ok(Value::List(ctl.transports().iter().filter_map(|t| t.get("id").map(from_json)).collect()))
            }
            "get_proxy_transport" => {
                let tid = a.str(0, "transport_id")?;
                ctl.transports()
                    .into_iter()
                    .find(|t| t.get("id").and_then(Json::as_str) == Some(tid))
                    .map(|mut t| {
                        t["config"] = self.transport_configs.get(tid).cloned().unwrap_or(Json::Null);
                        from_json(&t)
                    })
                    .ok_or_else(|| err("crossbar.error.no_such_object", format!("no transport '{tid}'")))
            }
            "start_proxy_transport" => {
                let tid = a.str(0, "transport_id")?;
                let config = a.dict(1, "transport_config")?;
                let cfg = junction_config::parse_router_transport(&to_json(&Value::Dict(config.clone())))
                    .map_err(|e| err("crossbar.error.invalid_configuration", e.to_string()))?;
                if ctl.transports().iter().any(|t| t.get("id").and_then(Json::as_str) == Some(tid)) {
                    return Err(ApiError::already_exists(format!(
                        "a transport '{tid}' is running on worker '{}'",
                        self.worker_id
                    )));
                }
                let mut info = ctl.start_transport(tid, &cfg).map_err(|e| err("crossbar.error.cannot_listen", e))?;
                info["config"] = to_json(&Value::Dict(config.clone()));
                self.transport_configs.insert(tid.to_owned(), info["config"].clone());
                info["created_at"] = json!(iso(now));
                Ok(from_json(&info))
            }
            "stop_proxy_transport" => {
                let tid = a.str(0, "transport_id")?;
                ctl.stop_transport(tid).map_err(|e| err("crossbar.error.no_such_object", e))?;
                self.transport_configs.remove(tid);
                Ok(from_json(&json!({"id": tid, "stopped": iso(now)})))
            }
            "get_proxy_connections" => {
                Ok(Value::List(self.connections.keys().map(|k| Value::Str(k.clone())).collect()))
            }
            "get_proxy_connection" => {
                let id = a.str(0, "connection_id")?;
                let c = self
                    .connections
                    .get(id)
                    .ok_or_else(|| err("crossbar.error.no_such_object", format!("no connection '{id}'")))?;
                Ok(from_json(&json!({"id": id, "config": c.config, "started": iso(c.started), "stopped": null,
                                     "realms": c.realms, "state": 3})))
            }
            "start_proxy_connection" => {
                let id = a.str(0, "connection_id")?;
                let config = to_json(&Value::Dict(a.dict(1, "connection_config")?.clone()));
                if id.is_empty() || id.len() > 128 {
                    return Err(ApiError::invalid_argument("connection_id must be 1 to 128 characters"));
                }
                if self.connections.contains_key(id) {
                    return Err(ApiError::already_exists(format!(
                        "connection '{id}' is running on worker '{}'",
                        self.worker_id
                    )));
                }
                // Checked now (with a placeholder realm), so a bad one is refused here.
                let realm = config.get("realm").and_then(Json::as_str).map(str::to_owned);
                Self::parse_connection(&config, realm.as_deref().unwrap_or("check"))?;
                self.connections.insert(
                    id.to_owned(),
                    Connection { config: config.clone(), parsed: config.clone(), started: now, realms: Vec::new() },
                );
                if let Some(r) = realm {
                    if let Err(e) = self.start_link_for(ctl, id, &r) {
                        self.connections.remove(id);
                        return Err(e);
                    }
                }
                Ok(from_json(&json!({"id": id, "config": config, "started": iso(now), "state": 3})))
            }
            "stop_proxy_connection" => {
                let id = a.str(0, "connection_id")?;
                if !self.connections.contains_key(id) {
                    return Err(err("crossbar.error.no_such_object", format!("no connection '{id}'")));
                }
                if let Some((rid, r)) = self.routes.iter().find(|(_, r)| route_uses(&r.config, id)) {
                    return Err(err(
                        "crossbar.error.dependent_objects",
                        format!("route '{rid}' of realm '{}' uses connection '{id}': stop it first", r.realm),
                    ));
                }
                let had_links = self.connections.get(id).is_some_and(|c| !c.realms.is_empty());
                if had_links {
                    ctl.stop_links(id).map_err(|e| err("crossbar.error.cannot_stop", e))?;
                }
                self.connections.remove(id);
                Ok(from_json(&json!({"id": id, "stopped": iso(now)})))
            }
            "get_proxy_routes" => {
                let mut realms: Vec<&String> = self.routes.values().map(|r| &r.realm).collect();
                realms.sort();
                realms.dedup();
                Ok(Value::List(realms.into_iter().map(|r| Value::Str(r.clone())).collect()))
            }
            "list_proxy_realm_routes" => {
                let realm = a.str(0, "realm_name")?;
                Ok(Value::List(
                    self.routes
                        .iter()
                        .filter(|(_, r)| r.realm == realm)
                        .map(|(id, r)| from_json(&route_json(id, r)))
                        .collect(),
                ))
            }
            "get_proxy_realm_route" => {
                let (realm, rid) = (a.str(0, "realm_name")?, a.str(1, "route_id")?);
                self.routes
                    .get(rid)
                    .filter(|r| r.realm == realm)
                    .map(|r| from_json(&route_json(rid, r)))
                    .ok_or_else(|| err("crossbar.error.no_such_object", format!("no route '{rid}' on realm '{realm}'")))
            }
            "start_proxy_realm_route" => {
                let realm = a.str(0, "realm_name")?.to_owned();
                let config = a.dict(1, "route_config")?;
                if !wamp_proto::uri::is_valid_uri(&realm, false, false) {
                    return Err(ApiError::invalid_argument(format!("'{realm}' is not a valid realm name")));
                }
                let mut roles: Vec<(String, Vec<String>)> = Vec::new();
                for (role, v) in config {
                    let ids: Vec<String> = match v {
                        Value::Str(s) => vec![s.clone()],
                        Value::List(l) if !l.is_empty() && l.iter().all(|x| matches!(x, Value::Str(_))) => {
                            l.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect()
                        }
                        _ => {
                            return Err(ApiError::invalid_argument(format!(
                                "route role '{role}': a connection id or a list of them"
                            )))
                        }
                    };
                    for id in &ids {
                        if !self.connections.contains_key(id) {
                            return Err(err(
                                "crossbar.error.no_such_object",
                                format!("no connection '{id}' (start it first)"),
                            ));
                        }
                    }
                    roles.push((role.clone(), ids));
                }
                if roles.is_empty() {
                    return Err(ApiError::invalid_argument("a route maps at least one role to connections"));
                }
                for (_, ids) in &roles {
                    for id in ids {
                        self.start_link_for(ctl, id, &realm)?;
                    }
                }
                let rid = ctl.start_route(&realm, &roles).map_err(|e| err("crossbar.error.cannot_start", e))?;
                let cfg = to_json(&Value::Dict(config.clone()));
                let r = Route { realm: realm.clone(), config: cfg, started: now };
                let v = from_json(&route_json(&rid, &r));
                self.routes.insert(rid, r);
                Ok(v)
            }
            "stop_proxy_realm_route" => {
                let (realm, rid) = (a.str(0, "realm_name")?, a.str(1, "route_id")?.to_owned());
                if self.routes.get(&rid).is_none_or(|r| r.realm != realm) {
                    return Err(err("crossbar.error.no_such_object", format!("no route '{rid}' on realm '{realm}'")));
                }
                ctl.stop_route(realm, &rid).map_err(|e| err("crossbar.error.no_such_object", e))?;
                let r = self.routes.remove(&rid);
                let mut v = r.map(|r| route_json(&rid, &r)).unwrap_or(Json::Null);
                v["stopped"] = json!(iso(now));
                v["state"] = json!(4);
                Ok(from_json(&v))
            }
            p if crate::web_api::WEB_SERVICE_PROCEDURES.contains(&p) => {
                let startup = |id: &str| ctl.startup_transport_config(id);
                let replace = |id: &str, t: &junction_config::TransportConfig| ctl.replace_transport(id, t);
                crate::web_api::WebTransports::new(&ctl.transports(), &mut self.transport_configs, &startup, &replace)
                    .handle(p, args, kwargs)
            }
            _ => Err(err("wamp.error.no_such_procedure", format!("no worker procedure '{proc}'"))),
        }
    }
}

fn route_uses(config: &Json, id: &str) -> bool {
    config.as_object().is_some_and(|o| {
        o.values().any(|v| match v {
            Json::String(s) => s == id,
            Json::Array(a) => a.iter().any(|x| x.as_str() == Some(id)),
            _ => false,
        })
    })
}

fn route_json(id: &str, r: &Route) -> Json {
    json!({"realm": r.realm, "id": id, "config": r.config, "started": iso(r.started), "stopped": null, "state": 3})
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// An in-memory stand-in for a proxy worker (the real one is driven end to end).
    #[derive(Default)]
    struct Fake {
        links: RefCell<Vec<(String, String)>>,
        routes: RefCell<Vec<String>>,
    }

    impl ProxyControl for Fake {
        fn start_link(&self, id: &str, realm: &str, _c: &junction_config::ProxyConnectionConfig) -> Result<(), String> {
            self.links.borrow_mut().push((id.into(), realm.into()));
            Ok(())
        }
        fn stop_links(&self, id: &str) -> Result<(), String> {
            self.links.borrow_mut().retain(|(i, _)| i != id);
            Ok(())
        }
        fn start_route(&self, _realm: &str, _roles: &[(String, Vec<String>)]) -> Result<String, String> {
            let id = format!("route{:03}", self.routes.borrow().len());
            self.routes.borrow_mut().push(id.clone());
            Ok(id)
        }
        fn stop_route(&self, _realm: &str, id: &str) -> Result<(), String> {
            self.routes.borrow_mut().retain(|r| r != id);
            Ok(())
        }
        fn start_transport(&self, id: &str, _t: &junction_config::TransportConfig) -> Result<Json, String> {
            Ok(json!({"id": id, "port": 8190}))
        }
        fn stop_transport(&self, _id: &str) -> Result<(), String> {
            Ok(())
        }
        fn transports(&self) -> Vec<Json> {
            vec![json!({"id": "primary"})]
        }
    }

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn connections_routes_and_transports_in_crossbars_shapes() {
        let fake = Fake::default();
        let mut api = ProxyWorkerApi::new("cpw-1");
        let now = SystemTime::UNIX_EPOCH;
        let mut call = |p: &str, a: Vec<Value>| api.handle(&fake, now, p, &a, &Dict::new());
        // The reference's connection config: no realm, Crossbar-only keys.
        let conn = from_json(
            &json!({"transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": 10000},
            "url": "ws://node1", "serializer": "cbor"}, "auth": {"cryptosign-proxy": {"type": "static"}}}),
        );
        call("start_proxy_connection", vec![s("cnc_node1_wg1_1"), conn.clone()]).expect("connection");
        assert!(fake.links.borrow().is_empty(), "no realm yet: no link");
        assert_eq!(
            call("start_proxy_connection", vec![s("cnc_node1_wg1_1"), conn]).unwrap_err().uri,
            "crossbar.error.already_exists"
        );
        let bad = from_json(
            &json!({"transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": "h", "port": 0}}}),
        );
        assert_eq!(
            call("start_proxy_connection", vec![s("bad"), bad]).unwrap_err().uri,
            "crossbar.error.invalid_configuration"
        );
        let mut route = Dict::new();
        route.insert("app-role".into(), s("cnc_node1_wg1_1"));
        let r = call("start_proxy_realm_route", vec![s("app-realm1"), Value::Dict(route)]).expect("route");
        assert_eq!(r.as_dict().and_then(|d| d.get("id")), Some(&s("route000")));
        assert_eq!(fake.links.borrow().as_slice(), [("cnc_node1_wg1_1".to_owned(), "app-realm1".to_owned())]);
        assert_eq!(call("get_proxy_routes", vec![]), Ok(Value::List(vec![s("app-realm1")])));
        assert!(call("get_proxy_realm_route", vec![s("app-realm1"), s("route000")]).is_ok());
        let mut bad_route = Dict::new();
        bad_route.insert("r".into(), s("nope"));
        assert_eq!(
            call("start_proxy_realm_route", vec![s("x"), Value::Dict(bad_route)]).unwrap_err().uri,
            "crossbar.error.no_such_object"
        );
        assert_eq!(
            call("stop_proxy_connection", vec![s("cnc_node1_wg1_1")]).unwrap_err().uri,
            "crossbar.error.dependent_objects"
        );
        call("stop_proxy_realm_route", vec![s("app-realm1"), s("route000")]).expect("stop route");
        call("stop_proxy_connection", vec![s("cnc_node1_wg1_1")]).expect("stop connection");
        assert!(fake.links.borrow().is_empty());
        assert_eq!(call("get_proxy_connections", vec![]), Ok(Value::List(vec![])));
        let t = from_json(&json!({"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8190}}));
        assert_eq!(
            call("start_proxy_transport", vec![s("primary"), t]).unwrap_err().uri,
            "crossbar.error.already_exists"
        );
        assert_eq!(call("get_proxy_transports", vec![]), Ok(Value::List(vec![s("primary")])));
    }
}
