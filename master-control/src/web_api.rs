//! The web service API of `web` transports (sans-IO), served by proxy
//! workers (`remote.proxy.*`) and router workers (`remote.router.*`) with
//! Crossbar's names and arguments: `get_web_transport_services(transport_id)`,
//! `get_web_transport_service(transport_id, path)`,
//! `start_web_transport_service(transport_id, path, config)`,
//! `stop_web_transport_service(transport_id, path)`.
//!
//! A service is added to or removed from the **running** transport: the
//! transport's configuration gets the path (or loses it), is checked as a
//! whole, and the running transport is given the new setup, which the
//! connections accepted from then on use (the listener and its port stay;
//! established connections are not touched).

use std::collections::BTreeMap;

use serde_json::{json, Value as Json};
use wamp_proto::{Dict, Value};

use crate::error::ApiError;
use crate::value::{from_json, to_json, Args};

/// Procedures of the web service API (suffixes).
pub const WEB_SERVICE_PROCEDURES: [&str; 4] = [
    "get_web_transport_services",
    "get_web_transport_service",
    "start_web_transport_service",
    "stop_web_transport_service",
];

/// What the API reads and does on the running worker.
pub struct WebTransports<'a> {
    /// The ids of the running transports.
    pub running: Vec<String>,
    /// The configuration a transport was started with (API-started ones;
    /// the caller keeps this map and it is updated on every change).
    pub configs: &'a mut BTreeMap<String, Json>,
    /// The start-up configuration of a transport of the worker's config.
    pub startup: &'a dyn Fn(&str) -> Option<Json>,
    /// Gives running transport `id` the services of `config`.
    pub replace: &'a dyn Fn(&str, &junction_config::TransportConfig) -> Result<(), String>,
}

impl<'a> WebTransports<'a> {
    /// The API over a worker whose running transports are `transports`
    /// (`{id, ...}` objects, as the worker controls list them).
    pub fn new(
        transports: &[Json],
        configs: &'a mut BTreeMap<String, Json>,
        startup: &'a dyn Fn(&str) -> Option<Json>,
        replace: &'a dyn Fn(&str, &junction_config::TransportConfig) -> Result<(), String>,
    ) -> WebTransports<'a> {
        let running = transports.iter().filter_map(|t| t.get("id").and_then(Json::as_str).map(str::to_owned)).collect();
        WebTransports { running, configs, startup, replace }
    }
}

fn not_running(m: impl Into<String>) -> ApiError {
    ApiError::new("crossbar.error.not_running", m)
}

/// The path as a key of `paths`: `/` stays, otherwise without the slashes
/// around it (`/myservice1` and `myservice1` are the same service).
pub fn normalize_path(path: &str) -> Result<String, ApiError> {
    let p = if path == "/" { "/" } else { path.trim_matches('/') };
    let ok = !p.is_empty()
        && p.len() <= 256
        && (p == "/" || p.split('/').all(|seg| !seg.is_empty() && seg != "." && seg != ".."))
        && p.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'/' | b'~'));
    if ok {
        Ok(p.to_owned())
    } else {
        Err(ApiError::invalid_argument(format!("invalid web service path {path:?}")))
    }
}

impl WebTransports<'_> {
    /// The running web transport `tid` and its configuration.
    fn web_config(&self, tid: &str) -> Result<Json, ApiError> {
        if !self.running.iter().any(|r| r == tid) {
            return Err(not_running(format!("no transport with ID '{tid}'")));
        }
        let cfg = self
            .configs
            .get(tid)
            .cloned()
            .or_else(|| (self.startup)(tid))
            .ok_or_else(|| not_running(format!("transport '{tid}' has no configuration this API can change")))?;
        if cfg.get("type").and_then(Json::as_str) != Some("web") {
            return Err(not_running(format!("transport '{tid}' is not a Web transport")));
        }
        Ok(cfg)
    }

    fn apply(&mut self, tid: &str, cfg: Json) -> Result<(), ApiError> {
        let parsed = junction_config::parse_router_transport(&cfg)
            .map_err(|e| ApiError::new("crossbar.error.invalid_configuration", e.to_string()))?;
        (self.replace)(tid, &parsed).map_err(|e| ApiError::new("crossbar.error.invalid_configuration", e))?;
        self.configs.insert(tid.to_owned(), cfg);
        Ok(())
    }

    /// Answers web service procedure `proc`.
    pub fn handle(&mut self, proc: &str, args: &[Value], kwargs: &Dict) -> Result<Value, ApiError> {
        let a = Args { procedure: proc, args, kwargs };
        let tid = a.str(0, "transport_id")?.to_owned();
        match proc {
            "get_web_transport_services" => {
                let cfg = self.web_config(&tid)?;
                let mut paths: Vec<String> =
                    cfg.get("paths").and_then(Json::as_object).map(|p| p.keys().cloned().collect()).unwrap_or_default();
                paths.sort();
                Ok(Value::List(paths.into_iter().map(Value::Str).collect()))
            }
            "get_web_transport_service" => {
                let path = normalize_path(a.str(1, "path")?)?;
                let cfg = self.web_config(&tid)?;
                let svc = cfg
                    .pointer(&format!("/paths/{}", path.replace('~', "~0").replace('/', "~1")))
                    .cloned()
                    .ok_or_else(|| not_running(format!("Web transport {tid}: no service running on path '{path}'")))?;
                Ok(from_json(&json!({"transport_id": tid, "path": path, "config": svc})))
            }
            "start_web_transport_service" => {
                let path = normalize_path(a.str(1, "path")?)?;
                let config = a.dict(2, "config")?;
                let svc = to_json(&Value::Dict(config.clone()));
                if svc.get("type").and_then(Json::as_str).is_none() {
                    return Err(ApiError::invalid_argument("config parameter must be dict with type attribute"));
                }
                let mut cfg = self.web_config(&tid)?;
                let paths = cfg.get_mut("paths").and_then(Json::as_object_mut);
                let paths = match paths {
                    Some(p) => p,
                    None => {
                        cfg["paths"] = json!({});
                        cfg["paths"].as_object_mut().ok_or_else(|| ApiError::invalid_argument("paths"))?
                    }
                };
                if paths.contains_key(&path) {
                    return Err(ApiError::new(
                        "crossbar.error.already_running",
                        format!("Cannot start service on Web transport \"{tid}\": a service is already running on path \"{path}\""),
                    ));
                }
                paths.insert(path.clone(), svc.clone());
                self.apply(&tid, cfg)?;
                Ok(from_json(&json!({"transport_id": tid, "path": path, "config": svc})))
            }
            "stop_web_transport_service" => {
                let path = normalize_path(a.str(1, "path")?)?;
                let mut cfg = self.web_config(&tid)?;
                let removed = cfg.get_mut("paths").and_then(Json::as_object_mut).and_then(|p| p.remove(&path));
                if removed.is_none() {
                    return Err(not_running(format!(
                        "Cannot stop service on Web transport {tid}: no service running on path '{path}'"
                    )));
                }
                self.apply(&tid, cfg)?;
                Ok(from_json(&json!({"transport_id": tid, "path": path})))
            }
            _ => Err(ApiError::new("wamp.error.no_such_procedure", format!("no web service procedure '{proc}'"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    fn s(x: &str) -> Value {
        Value::Str(x.into())
    }

    #[test]
    fn services_are_added_to_and_removed_from_a_running_web_transport() {
        let web = json!({"type": "web", "endpoint": {"type": "tcp", "port": 8080},
                         "paths": {"ws": {"type": "websocket"}, "info": {"type": "json", "value": {"a": 1}}}});
        let raw = json!({"type": "rawsocket", "endpoint": {"type": "tcp", "port": 8081}});
        let startup = move |id: &str| match id {
            "web1" => Some(web.clone()),
            "raw1" => Some(raw.clone()),
            _ => None,
        };
        let applied = RefCell::new(Vec::new());
        let replace = |id: &str, _c: &junction_config::TransportConfig| {
            applied.borrow_mut().push(id.to_owned());
            Ok(())
        };
        let mut configs = BTreeMap::new();
        let mut api = WebTransports {
            running: vec!["web1".into(), "raw1".into()],
            configs: &mut configs,
            startup: &startup,
            replace: &replace,
        };
        let call = |api: &mut WebTransports, p: &str, a: Vec<Value>| api.handle(p, &a, &Dict::new());
        assert_eq!(
            call(&mut api, "get_web_transport_services", vec![s("web1")]),
            Ok(Value::List(vec![s("info"), s("ws")]))
        );
        let svc = from_json(&json!({"type": "json", "value": [1, 2]}));
        let r =
            call(&mut api, "start_web_transport_service", vec![s("web1"), s("/extra"), svc.clone()]).expect("start");
        assert_eq!(r.as_dict().and_then(|d| d.get("path")), Some(&s("extra")));
        assert_eq!(applied.borrow().as_slice(), ["web1"]);
        assert_eq!(
            call(&mut api, "get_web_transport_services", vec![s("web1")]),
            Ok(Value::List(vec![s("extra"), s("info"), s("ws")]))
        );
        let got = call(&mut api, "get_web_transport_service", vec![s("web1"), s("extra")]).expect("get");
        assert_eq!(got.as_dict().and_then(|d| d.get("config")), Some(&svc));
        let e = |api: &mut WebTransports, p: &str, a: Vec<Value>| call(api, p, a).expect_err("error").uri;
        assert_eq!(
            e(&mut api, "start_web_transport_service", vec![s("web1"), s("extra"), svc.clone()]),
            "crossbar.error.already_running"
        );
        assert_eq!(
            e(&mut api, "start_web_transport_service", vec![s("nope"), s("x"), svc.clone()]),
            "crossbar.error.not_running"
        );
        assert_eq!(
            e(&mut api, "start_web_transport_service", vec![s("raw1"), s("x"), svc.clone()]),
            "crossbar.error.not_running"
        );
        assert_eq!(
            e(&mut api, "start_web_transport_service", vec![s("web1"), s("x"), s("json")]),
            "wamp.error.invalid_argument"
        );
        assert_eq!(
            e(&mut api, "start_web_transport_service", vec![s("web1"), s("x"), from_json(&json!({"value": 1}))]),
            "wamp.error.invalid_argument"
        );
        assert_eq!(
            e(&mut api, "start_web_transport_service", vec![s("web1"), s("../etc"), svc.clone()]),
            "wamp.error.invalid_argument"
        );
        assert_eq!(
            e(
                &mut api,
                "start_web_transport_service",
                vec![s("web1"), s("bad"), from_json(&json!({"type": "teleport"}))]
            ),
            "crossbar.error.invalid_configuration"
        );
        assert_eq!(e(&mut api, "get_web_transport_service", vec![s("web1"), s("gone")]), "crossbar.error.not_running");
        assert_eq!(e(&mut api, "get_web_transport_services", vec![Value::UInt(1)]), "wamp.error.invalid_argument");
        let st = call(&mut api, "stop_web_transport_service", vec![s("web1"), s("extra")]).expect("stop");
        assert_eq!(st, from_json(&json!({"transport_id": "web1", "path": "extra"})));
        assert_eq!(
            e(&mut api, "stop_web_transport_service", vec![s("web1"), s("extra")]),
            "crossbar.error.not_running"
        );
        assert_eq!(
            call(&mut api, "get_web_transport_services", vec![s("web1")]),
            Ok(Value::List(vec![s("info"), s("ws")]))
        );
        assert_eq!(applied.borrow().len(), 2, "bad configurations were never applied");
        assert_eq!(normalize_path("/").as_deref(), Ok("/"));
        assert_eq!(normalize_path("/a/b/").as_deref(), Ok("a/b"));
        assert!(normalize_path("a//b").is_err());
        assert!(normalize_path("").is_err());
    }
}
