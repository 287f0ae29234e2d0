//! `crossbarfabriccenter.mrealm.webcluster.*`: web clusters (the proxy
//! workers' shared web transport), their member nodes and their web
//! services (REFERENCE §2.4).
//!
//! Web services are checked as Crossbar's node checks them (required keys
//! and their types per service type; unknown keys refused, except for the
//! open-ended `archive` and `wap` types), and stored with their
//! type-specific keys verbatim. A service on path `/` is refused: the proxy
//! transport serves its root itself, so it could never be reached (the
//! reference accepts it and answers 404, §8.9).

use serde_json::{json, Map, Value as Json};

use super::*;
use crate::error::ApiError;

const WC: &str = "web cluster";

/// The web service types (REFERENCE §2.4).
pub const SERVICE_TYPES: [&str; 14] = [
    "path",
    "redirect",
    "reverseproxy",
    "nodeinfo",
    "json",
    "cgi",
    "wsgi",
    "static",
    "websocket",
    "websocket-reverseproxy",
    "caller",
    "publisher",
    "archive",
    "wap",
];

/// WAMP serializers a `websocket` service may offer.
const SERIALIZERS: [&str; 5] = ["json", "msgpack", "cbor", "ubjson", "flatbuffers"];

#[derive(Clone, Copy)]
enum T {
    Str,
    Int,
    Bool,
    Dict,
    List,
    StrOrDict,
    Any,
}

/// Per type: its keys (name, required, type) and whether other keys pass.
fn service_spec(t: &str) -> (&'static [(&'static str, bool, T)], bool) {
    use T::*;
    match t {
        "path" => (&[("paths", true, Dict)], false),
        "redirect" => (&[("url", true, Str)], false),
        "reverseproxy" => (
            &[
                ("host", true, Str),
                ("port", false, Int),
                ("forwarded_port", false, Int),
                ("forwarded_proto", false, Str),
            ],
            false,
        ),
        "nodeinfo" => (&[], false),
        "json" => (&[("value", true, Any), ("options", false, Dict)], false),
        "cgi" => (&[("directory", true, Str), ("processor", true, Str)], false),
        "wsgi" => (
            &[("module", true, Str), ("object", true, Str), ("minthreads", false, Int), ("maxthreads", false, Int)],
            false,
        ),
        "static" => (
            &[("directory", false, Str), ("package", false, Str), ("resource", false, Str), ("options", false, Dict)],
            false,
        ),
        "websocket" => (
            &[
                ("url", false, Str),
                ("serializers", false, List),
                ("cookie", false, Dict),
                ("auth", false, Dict),
                ("options", false, Dict),
                ("debug", false, Bool),
            ],
            false,
        ),
        "websocket-reverseproxy" => (&[("url", false, Str), ("options", false, Dict), ("backend", true, Dict)], false),
        "caller" | "publisher" => (&[("realm", true, Str), ("role", true, Str), ("options", false, Dict)], false),
        "archive" => {
            (&[("archive", true, Str), ("origin", false, Str), ("download", false, Bool), ("cache", false, Bool)], true)
        }
        "wap" => (
            &[("templates", true, StrOrDict), ("sandbox", false, Bool), ("routes", true, List), ("wamp", true, Dict)],
            true,
        ),
        _ => (&[], false),
    }
}

fn type_ok(t: T, v: &Json) -> bool {
    match t {
        T::Str => v.is_string(),
        T::Int => v.is_i64() || v.is_u64(),
        T::Bool => v.is_boolean(),
        T::Dict => v.is_object(),
        T::List => v.is_array(),
        T::StrOrDict => v.is_string() || v.is_object(),
        T::Any => true,
    }
}

fn type_name(t: T) -> &'static str {
    match t {
        T::Str => "a string",
        T::Int => "an integer",
        T::Bool => "a bool",
        T::Dict => "a dict",
        T::List => "a list",
        T::StrOrDict => "a string or a dict",
        T::Any => "anything",
    }
}

/// A web service path: `/`-separated segments of letters, digits and
/// `- . _ ~` (not `.` or `..`), no leading or trailing `/`; not the root.
fn check_path(path: &str) -> Result<(), ApiError> {
    if path.is_empty() || path == "/" {
        return Err(ApiError::invalid_argument(format!(
            "web service path {path:?} cannot work: the web cluster's transport serves its root path itself, \
             so a service there is never reached; use a sub-path such as \"ws\" or \"info\""
        )));
    }
    let seg_ok = |s: &str| {
        !s.is_empty() && s != "." && s != ".." && s.chars().all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
    };
    if !path.split('/').all(seg_ok) {
        return Err(ApiError::invalid_argument(format!(
            "invalid web service path {path:?}: '/'-separated segments of letters, digits and - . _ ~, \
             with no leading, trailing or double '/'"
        )));
    }
    Ok(())
}

/// Checks a web service definition of type `t` (the reference answers
/// `wamp.error.invalid_argument` for these).
fn check_service(t: &str, m: &Map<String, Json>) -> Result<(), ApiError> {
    let bad =
        |msg: String| ApiError::invalid_argument(format!("invalid webservice configuration for type \"{t}\": {msg}"));
    let (spec, open) = service_spec(t);
    for (k, required, ty) in spec {
        match m.get(*k) {
            // A required key of any type may be null (a json service's value).
            None if *required => return Err(bad(format!("missing '{k}'"))),
            Some(Json::Null) if *required && !matches!(ty, T::Any) => return Err(bad(format!("missing '{k}'"))),
            Some(v) if !v.is_null() && !type_ok(*ty, v) => {
                return Err(bad(format!("'{k}' must be {}, not {v}", type_name(*ty))))
            }
            _ => {}
        }
    }
    if !open {
        let common = ["type", "id", "label", "description", "tags", "path", "webcluster_oid"];
        if let Some(k) = m.keys().find(|k| !common.contains(&k.as_str()) && !spec.iter().any(|(s, _, _)| s == k)) {
            let mut allowed: Vec<&str> = spec.iter().map(|(s, _, _)| *s).collect();
            allowed.extend(["id", "label", "description", "tags"]);
            return Err(bad(format!("unknown attribute '{k}' (allowed: {})", allowed.join(", "))));
        }
    }
    match t {
        "static" => {
            let has = |k: &str| m.get(k).is_some_and(|v| !v.is_null());
            if has("directory") == (has("package") || has("resource")) || has("package") != has("resource") {
                return Err(bad("needs either 'directory', or 'package' and 'resource'".into()));
            }
        }
        "websocket" => {
            if let Some(Json::Array(l)) = m.get("serializers") {
                if let Some(s) = l.iter().find(|s| !s.as_str().is_some_and(|s| SERIALIZERS.contains(&s))) {
                    return Err(bad(format!("unknown serializer {s} (known: {})", SERIALIZERS.join(", "))));
                }
            }
        }
        "reverseproxy" => {
            for k in ["port", "forwarded_port"] {
                if let Some(p) = m.get(k).and_then(Json::as_i64) {
                    if !(1..=65_535).contains(&p) {
                        return Err(bad(format!("'{k}' must be from 1 to 65535, not {p}")));
                    }
                }
            }
        }
        _ => {}
    }
    Ok(())
}

impl Master {
    pub(super) fn webcluster_call(&self, cx: &mut Cx, p: &str) -> Result<Json, ApiError> {
        match p {
            "list_webclusters" => {
                let names = cx.a.flag(0, "return_names")?;
                Ok(list_of(&self.objs(cx, WEBCLUSTER)?, names, "name"))
            }
            "get_webcluster" => {
                let oid = cx.a.oid(0, "webcluster_oid")?;
                self.obj(cx, WEBCLUSTER, &oid, WC)
            }
            "get_webcluster_by_name" => {
                let name = cx.a.str(0, "webcluster_name")?;
                self.by_name(cx, WEBCLUSTER, name)?
                    .ok_or_else(|| ApiError::no_such_object(format!("no web cluster named \"{name}\" found")))
            }
            "create_webcluster" => self.create_webcluster(cx),
            "delete_webcluster" => {
                let oid = cx.a.oid(0, "webcluster_oid")?;
                let wc = self.obj(cx, WEBCLUSTER, &oid, WC)?;
                WEBCLUSTER_LC.require_stopped(&wc)?;
                if let Some(s) = self.objs_where(cx, WEBSERVICE, "webcluster_oid", &oid)?.first() {
                    return Err(ApiError::dependent_objects(format!(
                        "cannot delete web cluster {oid}: it has web service \"{}\" ({}) (remove it first)",
                        str_of(s, "path").unwrap_or_default(),
                        oid_of(s)
                    )));
                }
                if let Some(m) = self.objs_where(cx, WEBCLUSTER_NODE, "cluster_oid", &oid)?.first() {
                    return Err(ApiError::dependent_objects(format!(
                        "cannot delete web cluster {oid}: node {} is a member (remove it first)",
                        str_of(m, "node_oid").unwrap_or_default()
                    )));
                }
                self.no_started_arealm(cx, "webcluster_oid", &oid, &format!("delete web cluster {oid}"))?;
                cx.delete(WEBCLUSTER, &oid);
                cx.publish("webcluster.on_webcluster_deleted", &wc);
                Ok(wc)
            }
            "start_webcluster" => {
                let oid = cx.a.oid(0, "webcluster_oid")?;
                let mut wc = self.obj(cx, WEBCLUSTER, &oid, WC)?;
                // RUNNING once the reconcile loop has started the proxy workers (Master::object_running).
                WEBCLUSTER_LC.start(cx, &mut wc, json!({}))
            }
            "stop_webcluster" => {
                let oid = cx.a.oid(0, "webcluster_oid")?;
                let mut wc = self.obj(cx, WEBCLUSTER, &oid, WC)?;
                WEBCLUSTER_LC.check_stoppable(&wc)?;
                self.no_started_arealm(cx, "webcluster_oid", &oid, &format!("stop web cluster {oid}"))?;
                WEBCLUSTER_LC.stop(cx, &mut wc, |_| ())
            }
            "list_webcluster_nodes" => {
                let oid = cx.a.oid(0, "webcluster_oid")?;
                let names = cx.a.flag(1, "return_names")?;
                let status = cx.status_filter(2, "filter_by_status", &["online", "offline"])?;
                self.obj(cx, WEBCLUSTER, &oid, WC)?;
                self.list_members(cx, WEBCLUSTER_NODE, &oid, names, status.as_deref())
            }
            "get_webcluster_node" => {
                let (oid, node) = (cx.a.oid(0, "webcluster_oid")?, cx.a.oid(1, "node_oid")?);
                self.obj(cx, WEBCLUSTER, &oid, WC)?;
                self.wc_membership(cx, &oid, &node)
            }
            "add_webcluster_node" => {
                let (oid, node) = (cx.a.oid(0, "webcluster_oid")?, cx.a.oid(1, "node_oid")?);
                let config = cx.opt_def_arg(2, "config")?;
                let d = Def::new(
                    &config,
                    "web cluster node configuration",
                    INVALID_CONFIGURATION,
                    &["parallel", "standby"],
                    false,
                )?;
                let parallel = d.int("parallel", 1, 64)?.unwrap_or(1);
                let standby = d.bool("standby")?.unwrap_or(false);
                self.obj(cx, WEBCLUSTER, &oid, WC)?;
                self.mrealm_node(cx, &node)?;
                let key = format!("{oid}/{node}");
                if self.store.object(WEBCLUSTER_NODE, &cx.mrealm, &key)?.is_some() {
                    return Err(ApiError::already_exists(format!(
                        "node {node} is already a member of web cluster {oid}"
                    )));
                }
                let m = json!({"cluster_oid": oid, "node_oid": node, "parallel": parallel, "standby": standby});
                cx.put(WEBCLUSTER_NODE, &key, &m);
                cx.publish("webcluster.on_webcluster_node_added", &m);
                Ok(m)
            }
            "remove_webcluster_node" => {
                let (oid, node) = (cx.a.oid(0, "webcluster_oid")?, cx.a.oid(1, "node_oid")?);
                self.obj(cx, WEBCLUSTER, &oid, WC)?;
                let m = self.wc_membership(cx, &oid, &node)?;
                cx.delete(WEBCLUSTER_NODE, &format!("{oid}/{node}"));
                cx.publish("webcluster.on_webcluster_node_removed", &m);
                Ok(m)
            }
            "add_webcluster_service" => self.add_webcluster_service(cx),
            "list_webcluster_services" => {
                let oid = cx.a.oid(0, "webcluster_oid")?;
                self.obj(cx, WEBCLUSTER, &oid, WC)?;
                let services = self.objs_where(cx, WEBSERVICE, "webcluster_oid", &oid)?;
                let mut paths: Vec<(&str, &str)> =
                    services.iter().map(|s| (str_of(s, "path").unwrap_or_default(), oid_of(s))).collect();
                paths.sort_unstable();
                Ok(Json::Object(paths.into_iter().map(|(p, o)| (p.to_owned(), json!(o))).collect()))
            }
            "get_webcluster_service" => {
                let (oid, ws) = (cx.a.oid(0, "webcluster_oid")?, cx.a.oid(1, "webservice_oid")?);
                self.obj(cx, WEBCLUSTER, &oid, WC)?;
                self.webservice_of(cx, &oid, &ws)
            }
            "get_webcluster_service_by_path" => {
                let oid = cx.a.oid(0, "webcluster_oid")?;
                let path = cx.a.str(1, "path")?;
                self.obj(cx, WEBCLUSTER, &oid, WC)?;
                self.objs_where(cx, WEBSERVICE, "webcluster_oid", &oid)?
                    .into_iter()
                    .find(|s| str_of(s, "path") == Some(path))
                    .ok_or_else(|| {
                        ApiError::no_such_object(format!("no web service on path \"{path}\" in web cluster {oid}"))
                    })
            }
            "remove_webcluster_service" => {
                let (oid, ws) = (cx.a.oid(0, "webcluster_oid")?, cx.a.oid(1, "webservice_oid")?);
                self.obj(cx, WEBCLUSTER, &oid, WC)?;
                let s = self.webservice_of(cx, &oid, &ws)?;
                cx.delete(WEBSERVICE, &ws);
                cx.publish("webcluster.on_webservice_removed", &s);
                Ok(s)
            }
            _ => Err(cx.no_such_procedure()),
        }
    }

    fn wc_membership(&self, cx: &Cx, wc: &str, node: &str) -> Result<Json, ApiError> {
        self.store.object(WEBCLUSTER_NODE, &cx.mrealm, &format!("{wc}/{node}"))?.ok_or_else(|| {
            ApiError::no_such_object(format!("no association between node {node} and webcluster {wc} found"))
        })
    }

    fn webservice_of(&self, cx: &Cx, wc: &str, ws: &str) -> Result<Json, ApiError> {
        match self.store.object(WEBSERVICE, &cx.mrealm, ws)? {
            Some(s) if str_of(&s, "webcluster_oid") == Some(wc) => Ok(s),
            _ => Err(ApiError::no_such_object(format!("no web service with oid {ws} found in web cluster {wc}"))),
        }
    }

    fn create_webcluster(&self, cx: &mut Cx) -> Result<Json, ApiError> {
        let def = cx.def_arg(0, "webcluster")?;
        let d = Def::new(
            &def,
            "web cluster configuration",
            INVALID_CONFIGURATION,
            &[
                "name",
                "tcp_version",
                "tcp_port",
                "tcp_shared",
                "tcp_interface",
                "tcp_backlog",
                "tls_key",
                "tls_certificate",
                "tls_chain_certificates",
                "tls_ca_certificates",
                "tls_dhparam",
                "tls_ciphers",
                "http_client_timeout",
                "http_hsts",
                "http_hsts_max_age",
                "http_access_log",
                "http_display_tracebacks",
            ],
            true,
        )?;
        let name = d.str("name")?.ok_or_else(|| d.err("missing \"name\""))?;
        check_item_name(name, "web cluster")?;
        let tcp_version = d.int("tcp_version", 4, 6)?;
        if tcp_version == Some(5) {
            return Err(d.err("'tcp_version' must be 4 or 6"));
        }
        let interface = d.str("tcp_interface")?;
        if let Some(i) = interface {
            if i.parse::<std::net::IpAddr>().is_err() {
                return Err(d.err(format!("'tcp_interface' must be an IP address, not {i:?}")));
            }
        }
        let (key, cert) = (d.str("tls_key")?, d.str("tls_certificate")?);
        let tls_rest = ["tls_chain_certificates", "tls_ca_certificates", "tls_dhparam", "tls_ciphers"];
        if key.is_some() != cert.is_some() || (key.is_none() && tls_rest.iter().any(|k| d.get(k).is_some())) {
            return Err(d.err("TLS needs both 'tls_key' and 'tls_certificate' (and the other tls_* only with them)"));
        }
        if self.by_name(cx, WEBCLUSTER, name)?.is_some() {
            return Err(ApiError::already_exists(format!("duplicate name \"{name}\" in web cluster configuration")));
        }
        let oid = new_oid();
        let wc = merged(
            merged(json!({"oid": oid}), d.meta()?),
            json!({
                "name": name, "status": "STOPPED", "owner_oid": cx.owner, "changed": cx.ns(),
                "tcp_version": tcp_version,
                "tcp_port": d.int("tcp_port", 1, 65_535)?,
                "tcp_shared": d.bool("tcp_shared")?,
                "tcp_interface": interface,
                "tcp_backlog": d.int("tcp_backlog", 1, 1_000_000)?,
                "tls_key": key,
                "tls_certificate": cert,
                "tls_chain_certificates": d.str_list("tls_chain_certificates")?,
                "tls_ca_certificates": d.str_list("tls_ca_certificates")?,
                "tls_dhparam": d.str("tls_dhparam")?,
                "tls_ciphers": d.str("tls_ciphers")?,
                "http_client_timeout": d.int("http_client_timeout", 1, 86_400)?,
                "http_hsts": d.bool("http_hsts")?,
                "http_hsts_max_age": d.int("http_hsts_max_age", 0, i64::from(u32::MAX))?,
                "http_access_log": d.bool("http_access_log")?,
                "http_display_tracebacks": d.bool("http_display_tracebacks")?,
            }),
        );
        cx.put(WEBCLUSTER, &oid, &wc);
        cx.publish("webcluster.on_webcluster_created", &wc);
        Ok(wc)
    }

    fn add_webcluster_service(&self, cx: &mut Cx) -> Result<Json, ApiError> {
        let oid = cx.a.oid(0, "webcluster_oid")?;
        let path = cx.a.str(1, "path")?;
        let def = cx.def_arg(2, "webservice")?;
        check_path(path)?;
        let m = def.as_object().cloned().unwrap_or_default();
        let t = match m.get("type") {
            Some(Json::String(t)) if SERVICE_TYPES.contains(&t.as_str()) => t.clone(),
            Some(Json::String(t)) => {
                return Err(ApiError::invalid_argument(format!(
                    "invalid webservice type \"{t}\" (one of {})",
                    SERVICE_TYPES.join(", ")
                )))
            }
            Some(_) | None => return Err(ApiError::invalid_argument("missing type in webservice")),
        };
        check_service(&t, &m)?;
        for (k, want) in [("path", path), ("webcluster_oid", oid.as_str())] {
            if let Some(v) = m.get(k).filter(|v| !v.is_null()) {
                if v.as_str() != Some(want) {
                    return Err(ApiError::invalid_argument(format!(
                        "invalid webservice configuration for type \"{t}\": '{k}' {v} differs from the argument ({want:?})"
                    )));
                }
            }
        }
        let d = Def { map: &m, what: "webservice configuration", uri: "wamp.error.invalid_argument" };
        let mut wc = self.obj(cx, WEBCLUSTER, &oid, WC)?;
        match status_of(&wc) {
            "STOPPED" | "PAUSED" => {}
            s => {
                return Err(ApiError::new(
                    CANNOT_START,
                    format!("cannot add web service to webcluster currently in state {s}"),
                ));
            }
        }
        if let Some(other) =
            self.objs_where(cx, WEBSERVICE, "webcluster_oid", &oid)?.iter().find(|s| str_of(s, "path") == Some(path))
        {
            return Err(ApiError::already_exists(format!(
                "web cluster {oid} already has a web service on path \"{path}\" ({})",
                oid_of(other)
            )));
        }
        let ws_oid = new_oid();
        let mut ws =
            merged(merged(json!({"oid": ws_oid}), d.meta()?), json!({"webcluster_oid": oid, "path": path, "type": t}));
        if let Some(o) = ws.as_object_mut() {
            for (k, v) in &m {
                if !["type", "label", "description", "tags", "path", "webcluster_oid"].contains(&k.as_str()) {
                    o.insert(k.clone(), v.clone());
                }
            }
        }
        wc["changed"] = json!(cx.ns());
        cx.put(WEBCLUSTER, &oid, &wc);
        cx.put(WEBSERVICE, &ws_oid, &ws);
        cx.publish("webcluster.on_webservice_added", &ws);
        Ok(ws)
    }
}
