//! Walks a `serde_json::Value` by hand, building the typed config with
//! defaults applied and collecting every shape problem (unknown keys, wrong
//! types, missing keys, unparseable values) with its location.
//!
//! Value checks that can be made on the typed config (ranges, duplicates,
//! URIs, unsupported features) live in `validate.rs`; the parser builds a
//! best-effort config even from a broken document so that those checks run
//! too, and list/array positions stay aligned with the source.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use serde_json::Value;
use wamp_proto::Serializer;

use crate::error::{index, join, Diags};
use crate::model::*;

type Map = serde_json::Map<String, Value>;

/// Crossbar worker types Junction knows by name but does not run.
const CROSSBAR_WORKER_TYPES: &[&str] =
    &["container", "guest", "websocket-testee", "marketmaker", "xbrmm", "hostmonitor"];

/// Crossbar transport types Junction knows by name but does not run.
const CROSSBAR_TRANSPORT_TYPES: &[&str] =
    &["universal", "mqtt", "flashpolicy", "stream", "websocket.testee", "stream.testee"];

/// Crossbar web path service types.
const CROSSBAR_WEB_SERVICES: &[&str] = &[
    "static",
    "wsgi",
    "redirect",
    "resource",
    "reverseproxy",
    "json",
    "cgi",
    "longpoll",
    "publisher",
    "caller",
    "webhook",
    "schemadoc",
    "path",
    "upload",
    "nodeinfo",
    "archive",
    "wap",
    "rawsocket",
];

/// Crossbar authentication method keys.
const AUTH_METHODS: &[&str] =
    &["anonymous", "ticket", "wampcra", "cryptosign", "cryptosign-proxy", "scram", "tls", "cookie"];

/// Parses a whole document.
pub(crate) fn parse_root(v: &Value, d: &mut Diags) -> NodeConfig {
    let mut cfg =
        NodeConfig { version: 2, controller: ControllerConfig::default(), workers: Vec::new(), warnings: Vec::new() };
    let Some(m) = object(v, "", d) else {
        return cfg;
    };
    check_keys(m, "", &["$schema", "version", "controller", "workers"], &[], d);
    if let Some(ver) = opt_uint(m, "version", "", u32::MAX as u64, d) {
        cfg.version = ver as u32;
    }
    if let Some(c) = m.get("controller") {
        cfg.controller = parse_controller(c, "controller", d);
    }
    match m.get("workers") {
        None => d.error("workers", "missing required key 'workers' (a list with one router worker)"),
        Some(w) => {
            if let Some(list) = array(w, "workers", d) {
                for (i, w) in list.iter().enumerate() {
                    cfg.workers.push(parse_worker(w, &index("workers", i), d));
                }
            }
        }
    }
    cfg
}

fn parse_controller(v: &Value, path: &str, d: &mut Diags) -> ControllerConfig {
    let mut c = ControllerConfig::default();
    let Some(m) = object(v, path, d) else {
        return c;
    };
    check_keys(
        m,
        path,
        &["id", "options", "fabric"],
        &[
            ("transport", "Junction has no controller transport"),
            ("transports", "Junction has no controller transport"),
            ("manhole", "Junction has no manhole"),
            ("extra", "not used"),
            ("connections", "not used"),
            ("enable_docker", "not used"),
        ],
        d,
    );
    c.id = opt_str(m, "id", path, d);
    if let Some(f) = m.get("fabric") {
        c.fabric = Some(parse_fabric(f, &join(path, "fabric"), d));
    }
    if let Some(o) = m.get("options") {
        let op = join(path, "options");
        if let Some(om) = object(o, &op, d) {
            c.options = om.clone();
            // Junction extension: the node key file.
            if let Some(k) = opt_str(om, "node_key", &op, d) {
                if k.is_empty() {
                    d.error(join(&op, "node_key"), "node_key must not be empty (a path to the node's key file)");
                }
            }
        }
    }
    c
}

/// `controller.fabric`: `{transport?: {type: websocket, url?, endpoint?:
/// {type: tcp, host, port}}, heartbeat?: {startup_delay, heartbeat_period}}`
/// (durations in seconds, as Crossbar).
fn parse_fabric(v: &Value, path: &str, d: &mut Diags) -> FabricConfig {
    let mut f = FabricConfig::default();
    let Some(m) = object(v, path, d) else { return f };
    check_keys(m, path, &["transport", "heartbeat"], &[], d);
    if let Some(t) = m.get("transport") {
        let tp = join(path, "transport");
        if let Some(tm) = object(t, &tp, d) {
            check_keys(tm, &tp, &["type", "url", "endpoint", "serializers", "options"], &[], d);
            match tm.get("type").and_then(Value::as_str) {
                Some("websocket") | None => {}
                Some(other) => {
                    d.error(join(&tp, "type"), format!("the master is reached over 'websocket', not '{other}'"))
                }
            }
            f.url = opt_str(tm, "url", &tp, d);
            if f.url.is_none() {
                if let Some(e) = tm.get("endpoint") {
                    let ep = join(&tp, "endpoint");
                    if let Some(em) = object(e, &ep, d) {
                        let host = opt_str(em, "host", &ep, d);
                        let port = opt_uint(em, "port", &ep, 65_535, d);
                        match (host, port) {
                            (Some(h), Some(p)) => f.url = Some(format!("ws://{h}:{p}/ws")),
                            _ => d.error(ep, "needs 'host' and 'port' (or give transport.url)"),
                        }
                    }
                }
            }
            if let Some(u) = &f.url {
                if !(u.starts_with("ws://") || u.starts_with("wss://")) {
                    d.error(join(&tp, "url"), format!("'{u}' is not a ws:// or wss:// URL"));
                }
            }
        }
    }
    if let Some(h) = m.get("heartbeat") {
        let hp = join(path, "heartbeat");
        if let Some(hm) = object(h, &hp, d) {
            check_keys(hm, &hp, &["startup_delay", "heartbeat_period"], &[], d);
            if let Some(s) = opt_uint(hm, "startup_delay", &hp, 3600, d) {
                f.startup_delay = std::time::Duration::from_secs(s);
            }
            if let Some(s) = opt_uint(hm, "heartbeat_period", &hp, 3600, d) {
                if s == 0 {
                    d.error(join(&hp, "heartbeat_period"), "must be at least 1 (seconds)");
                } else {
                    f.heartbeat_period = std::time::Duration::from_secs(s);
                }
            }
        }
    }
    f
}

fn parse_worker(v: &Value, path: &str, d: &mut Diags) -> WorkerConfig {
    let Some(m) = object(v, path, d) else {
        return WorkerConfig::Unsupported { kind: String::new() };
    };
    let Some(kind) = req_str(m, "type", path, d) else {
        return WorkerConfig::Unsupported { kind: String::new() };
    };
    match kind.as_str() {
        "router" => WorkerConfig::Router(parse_router(m, path, d)),
        "proxy" => WorkerConfig::Proxy(parse_proxy(m, path, d)),
        k => {
            if !CROSSBAR_WORKER_TYPES.contains(&k) {
                d.error(
                    join(path, "type"),
                    format!(
                        "unknown worker type '{k}' (expected 'router' or 'proxy'){}",
                        suggest(k, &["router", "proxy"])
                    ),
                );
            }
            WorkerConfig::Unsupported { kind: k.to_string() }
        }
    }
}

fn parse_router(m: &Map, path: &str, d: &mut Diags) -> RouterWorkerConfig {
    check_keys(
        m,
        path,
        &["type", "id", "options", "realms", "transports", "components"],
        &[("connections", "router connections are not used by Junction")],
        d,
    );
    let mut r = RouterWorkerConfig {
        id: opt_str(m, "id", path, d),
        options: RouterOptions::default(),
        realms: Vec::new(),
        transports: Vec::new(),
    };
    if let Some(o) = m.get("options") {
        r.options = parse_router_options(o, &join(path, "options"), d);
    }
    if let Some(c) = m.get("components") {
        let p = join(path, "components");
        if let Some(list) = array(c, &p, d) {
            if !list.is_empty() {
                d.error(
                    p,
                    "router components (application code embedded in the router) are not supported by Junction: run them as separate WAMP clients",
                );
            }
        }
    }
    if let Some(realms) = m.get("realms") {
        let p = join(path, "realms");
        if let Some(list) = array(realms, &p, d) {
            for (i, v) in list.iter().enumerate() {
                r.realms.push(parse_realm(v, &index(&p, i), d));
            }
        }
    }
    r.transports = parse_transports(m, path, "router", d);
    r
}

/// Crossbar worker options Junction ignores.
const WORKER_OPTIONS_IGNORED: &[(&str, &str)] = &[
    ("cpu_affinity", "use the Junction option 'pin_cores'"),
    ("pythonpath", "Junction runs no Python"),
    ("env", "Junction starts no worker processes"),
    ("reactor", "Junction does not use Twisted"),
    ("expose_controller", "not used"),
    ("expose_shared", "not used"),
    ("shutdown", "not used"),
    ("disabled", "not used"),
];

/// Parses the `transports` list of a worker (required).
fn parse_transports(m: &Map, path: &str, what: &str, d: &mut Diags) -> Vec<TransportConfig> {
    let mut out = Vec::new();
    match m.get("transports") {
        None => d.error(
            join(path, "transports"),
            format!("missing required key 'transports': a {what} without transports cannot be reached"),
        ),
        Some(t) => {
            let p = join(path, "transports");
            if let Some(list) = array(t, &p, d) {
                for (i, v) in list.iter().enumerate() {
                    out.push(parse_transport(v, &index(&p, i), d));
                }
            }
        }
    }
    out
}

/// A `type: proxy` worker (Crossbar's shape).
fn parse_proxy(m: &Map, path: &str, d: &mut Diags) -> ProxyWorkerConfig {
    check_keys(m, path, &["type", "id", "options", "transports", "routes", "connections"], &[], d);
    let mut p = ProxyWorkerConfig {
        id: opt_str(m, "id", path, d),
        options: ProxyOptions::default(),
        transports: Vec::new(),
        routes: IndexMap::new(),
        connections: IndexMap::new(),
    };
    if let Some(o) = m.get("options") {
        p.options = parse_proxy_options(o, &join(path, "options"), d);
    }
    p.transports = parse_transports(m, path, "proxy", d);
    // Connections the parser could not read: routes naming them are not
    // reported again.
    let mut failed: Vec<&str> = Vec::new();
    match m.get("connections") {
        None => d.error(
            join(path, "connections"),
            "missing required key 'connections' (backend router connections, e.g. {\"router1\": {\"realm\": \"realm1\", \"transport\": {...}}})",
        ),
        Some(c) => {
            let cp = join(path, "connections");
            if let Some(cm) = object(c, &cp, d) {
                for (name, cv) in cm {
                    let np = join(&cp, name);
                    if name.is_empty() {
                        d.error(&np, "connection name must not be empty");
                        continue;
                    }
                    match parse_proxy_connection(cv, &np, d) {
                        Some(conn) => {
                            p.connections.insert(name.clone(), conn);
                        }
                        None => failed.push(name),
                    }
                }
                if p.connections.is_empty() && !failed.is_empty() {
                    d.poison(cp);
                }
            }
        }
    }
    match m.get("routes") {
        None => d.error(
            join(path, "routes"),
            "missing required key 'routes' (realm → authrole → connection, e.g. {\"realm1\": {\"*\": \"router1\"}})",
        ),
        Some(r) => {
            let rp = join(path, "routes");
            if let Some(rm) = object(r, &rp, d) {
                for (realm, roles) in rm {
                    let realm_p = join(&rp, realm);
                    let Some(roles_m) = object(roles, &realm_p, d) else {
                        d.poison(&realm_p);
                        continue;
                    };
                    let mut by_role = IndexMap::new();
                    for (role, target) in roles_m {
                        let role_p = join(&realm_p, role);
                        let names = match target {
                            Value::String(s) => vec![s.clone()],
                            Value::Array(list) => {
                                let mut names = Vec::with_capacity(list.len());
                                for (i, item) in list.iter().enumerate() {
                                    match item.as_str() {
                                        Some(s) => names.push(s.to_string()),
                                        None => wrong_type(&index(&role_p, i), "a connection name (string)", item, d),
                                    }
                                }
                                if names.len() != list.len() {
                                    d.poison(&role_p);
                                }
                                names
                            }
                            other => {
                                wrong_type(&role_p, "a connection name or a list of connection names", other, d);
                                Vec::new()
                            }
                        };
                        if names.iter().any(|n| failed.contains(&n.as_str())) {
                            d.poison(&role_p);
                        }
                        by_role.insert(role.clone(), names);
                    }
                    p.routes.insert(realm.clone(), by_role);
                }
            }
        }
    }
    p
}

fn parse_proxy_options(v: &Value, path: &str, d: &mut Diags) -> ProxyOptions {
    let mut o = ProxyOptions::default();
    let Some(m) = object(v, path, d) else {
        return o;
    };
    check_keys(
        m,
        path,
        &[
            "shards",
            "pin_cores",
            "title",
            "balance",
            "backend_ping_interval",
            "backend_ping_timeout",
            "backend_reconnect_max",
            "backend_max_outbound_bytes",
        ],
        WORKER_OPTIONS_IGNORED,
        d,
    );
    o.shards = opt_uint(m, "shards", path, usize::MAX as u64, d).map(|n| n as usize);
    if let Some(b) = opt_bool(m, "pin_cores", path, d) {
        o.pin_cores = b;
    }
    o.title = opt_str(m, "title", path, d);
    if let Some(b) = opt_str(m, "balance", path, d) {
        match b.as_str() {
            "round_robin" => o.balance = BalancePolicy::RoundRobin,
            "least_sessions" => o.balance = BalancePolicy::LeastSessions,
            other => d.error(
                join(path, "balance"),
                format!(
                    "invalid balance policy '{other}': expected 'round_robin' or 'least_sessions'{}",
                    suggest(other, &["round_robin", "least_sessions"])
                ),
            ),
        }
    }
    if let Some(t) = opt_ms(m, "backend_ping_interval", path, d) {
        o.backend_ping_interval = t;
    }
    if let Some(t) = opt_ms(m, "backend_ping_timeout", path, d) {
        o.backend_ping_timeout = t;
    }
    if let Some(t) = opt_ms(m, "backend_reconnect_max", path, d) {
        o.backend_reconnect_max = t;
    }
    if let Some(n) = opt_uint(m, "backend_max_outbound_bytes", path, usize::MAX as u64, d) {
        o.backend_max_outbound_bytes = n as usize;
    }
    o
}

/// Why a serializer setting of a proxy connection is ignored.
const LINK_SERIALIZER_IGNORED: &str =
    "the proxy-to-router link is Junction's own multiplexed protocol; each session keeps its client's serializer";

/// One entry of a proxy's `connections`.
fn parse_proxy_connection(v: &Value, path: &str, d: &mut Diags) -> Option<ProxyConnectionConfig> {
    let m = object(v, path, d)?;
    check_keys(m, path, &["realm", "transport", "auth"], &[("url", "not used: the address is transport.endpoint")], d);
    let realm = req_str(m, "realm", path, d);
    if let Some(a) = m.get("auth") {
        let ap = join(path, "auth");
        if let Some(am) = object(a, &ap, d) {
            for (key, cfg) in am {
                let mp = join(&ap, key);
                if key != "cryptosign-proxy" {
                    d.error(
                        &mp,
                        format!(
                            "authentication method '{key}' is not supported for proxy-to-router links: only 'cryptosign-proxy' (the default; the proxy proves the node key){}",
                            suggest(key, &["cryptosign-proxy"])
                        ),
                    );
                    continue;
                }
                let Some(cm) = object(cfg, &mp, d) else {
                    continue;
                };
                check_keys(cm, &mp, &["type"], &[], d);
                match opt_str(cm, "type", &mp, d).as_deref() {
                    None | Some("static") => {}
                    Some("dynamic") => d.error(
                        join(&mp, "type"),
                        "cryptosign-proxy type 'dynamic' is not supported: use 'static' (the proxy proves the node key)",
                    ),
                    Some(other) => d.error(
                        join(&mp, "type"),
                        format!("invalid type '{other}': expected 'static'{}", suggest(other, &["static"])),
                    ),
                }
            }
        }
    }
    let tp = join(path, "transport");
    let endpoint = match m.get("transport") {
        None => {
            d.error(
                &tp,
                "missing required key 'transport' (e.g. {\"type\": \"rawsocket\", \"endpoint\": {\"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": 8081}})",
            );
            None
        }
        Some(t) => parse_backend_transport(t, &tp, d),
    };
    Some(ProxyConnectionConfig { realm: realm?, endpoint: endpoint? })
}

/// The `transport` of a proxy connection: RawSocket to a router.
fn parse_backend_transport(v: &Value, path: &str, d: &mut Diags) -> Option<BackendEndpoint> {
    let m = object(v, path, d)?;
    let kind = req_str(m, "type", path, d)?;
    match kind.as_str() {
        "rawsocket" => {}
        "websocket" => {
            d.error(
                join(path, "type"),
                "transport type 'websocket' is not supported for proxy connections: Junction's proxy-to-router link is RawSocket (use 'rawsocket' and a router rawsocket endpoint)",
            );
            return None;
        }
        other => {
            d.error(
                join(path, "type"),
                format!("invalid transport type '{other}': expected 'rawsocket'{}", suggest(other, &["rawsocket"])),
            );
            return None;
        }
    }
    check_keys(
        m,
        path,
        &["type", "endpoint"],
        &[
            ("serializer", LINK_SERIALIZER_IGNORED),
            ("serializers", LINK_SERIALIZER_IGNORED),
            ("url", "not used: the address is 'endpoint'"),
            ("max_message_size", "the link carries messages up to the proxy transports' limits"),
            ("options", "not used"),
        ],
        d,
    );
    let ep = join(path, "endpoint");
    let Some(e) = m.get("endpoint") else {
        d.error(
            &ep,
            "missing required key 'endpoint' (e.g. {\"type\": \"tcp\", \"host\": \"127.0.0.1\", \"port\": 8081})",
        );
        return None;
    };
    let em = object(e, &ep, d)?;
    let etype = req_str(em, "type", &ep, d)?;
    // Crossbar's own examples put `serializer` into the endpoint.
    let ignored: &[(&str, &str)] = &[
        ("serializer", LINK_SERIALIZER_IGNORED),
        ("timeout", "Junction retries with backoff up to options.backend_reconnect_max"),
    ];
    match etype.as_str() {
        "tcp" => {
            check_keys(em, &ep, &["type", "host", "port", "version", "tls"], ignored, d);
            let tls = em.get("tls").and_then(|t| parse_backend_tls(t, &join(&ep, "tls"), d));
            if let Some(ver) = opt_uint(em, "version", &ep, u64::MAX, d) {
                if ver != 4 && ver != 6 {
                    d.error(join(&ep, "version"), format!("invalid IP version {ver}: expected 4 or 6"));
                }
            }
            let host = req_str(em, "host", &ep, d);
            if host.as_deref() == Some("") {
                d.error(join(&ep, "host"), "host must not be empty");
            } else if let Some(h) = &host {
                if h.chars().any(|c| c.is_whitespace() || c.is_control() || c == '/') {
                    d.error(
                        join(&ep, "host"),
                        format!("invalid host '{}': expected a host name or IP address", clip(h)),
                    );
                }
            }
            let port = req_uint(em, "port", &ep, u16::MAX as u64, d).map(|n| n as u16);
            if port == Some(0) {
                d.error(join(&ep, "port"), "port 0 is out of range: must be between 1 and 65535");
            }
            Some(BackendEndpoint::Tcp { host: host?, port: port?, tls })
        }
        "unix" => {
            check_keys(em, &ep, &["type", "path"], ignored, d);
            let p = req_str(em, "path", &ep, d)?;
            if p.is_empty() {
                d.error(join(&ep, "path"), "unix socket path must not be empty");
            } else if p.len() > MAX_UNIX_PATH_LEN {
                d.error(
                    join(&ep, "path"),
                    format!(
                        "unix socket path is {} bytes long: at most {MAX_UNIX_PATH_LEN} fit in sockaddr_un",
                        p.len()
                    ),
                );
            }
            Some(BackendEndpoint::Unix { path: PathBuf::from(p) })
        }
        other => {
            d.error(
                join(&ep, "type"),
                format!(
                    "invalid endpoint type '{other}': expected 'tcp' or 'unix'{}",
                    suggest(other, &["tcp", "unix"])
                ),
            );
            None
        }
    }
}

fn parse_router_options(v: &Value, path: &str, d: &mut Diags) -> RouterOptions {
    let mut o = RouterOptions::default();
    let Some(m) = object(v, path, d) else {
        return o;
    };
    check_keys(m, path, &["shards", "pin_cores", "title"], WORKER_OPTIONS_IGNORED, d);
    o.shards = opt_uint(m, "shards", path, usize::MAX as u64, d).map(|n| n as usize);
    if let Some(b) = opt_bool(m, "pin_cores", path, d) {
        o.pin_cores = b;
    }
    o.title = opt_str(m, "title", path, d);
    o
}

fn parse_realm(v: &Value, path: &str, d: &mut Diags) -> RealmConfig {
    let mut r = RealmConfig {
        name: String::new(),
        roles: Vec::new(),
        options: RealmOptions::default(),
        store: None,
        rlinks: Vec::new(),
    };
    let Some(m) = object(v, path, d) else {
        return r;
    };
    check_keys(m, path, &["name", "roles", "options", "id", "store", "rlinks"], &[], d);
    if let Some(n) = req_str(m, "name", path, d) {
        r.name = n;
    }
    opt_str(m, "id", path, d);
    if let Some(roles) = m.get("roles") {
        let p = join(path, "roles");
        if let Some(list) = array(roles, &p, d) {
            for (i, v) in list.iter().enumerate() {
                r.roles.push(parse_role(v, &index(&p, i), d));
            }
        }
    }
    if let Some(o) = m.get("options") {
        r.options = parse_realm_options(o, &join(path, "options"), d);
    }
    if let Some(s) = m.get("store") {
        r.store = parse_store(s, &join(path, "store"), d);
    }
    if let Some(l) = m.get("rlinks") {
        let p = join(path, "rlinks");
        if let Some(list) = array(l, &p, d) {
            for (i, v) in list.iter().enumerate() {
                let ip = index(&p, i);
                if let Some(link) = parse_rlink(v, &ip, &r.name, d) {
                    if r.rlinks.iter().any(|x| x.id == link.id) {
                        d.error(join(&ip, "id"), format!("duplicate rlink id '{}'", link.id));
                    }
                    r.rlinks.push(link);
                }
            }
        }
    }
    r
}

/// A router-to-router link (`rlinks` entry, Crossbar's shape; see
/// [`RLinkConfig`] for the fixed flags).
fn parse_rlink(v: &Value, path: &str, realm_name: &str, d: &mut Diags) -> Option<RLinkConfig> {
    let m = object(v, path, d)?;
    check_keys(
        m,
        path,
        &[
            "id",
            "realm",
            "transport",
            "forward_local_events",
            "forward_remote_events",
            "forward_local_invocations",
            "forward_remote_invocations",
            "authid",
            "exclude_authid",
            "ping_interval",
            "ping_timeout",
            "reconnect_max",
            "max_queue_bytes",
        ],
        &[],
        d,
    );
    let id = req_str(m, "id", path, d);
    if id.as_deref() == Some("") {
        d.error(join(path, "id"), "rlink id must not be empty");
    }
    let realm = req_str(m, "realm", path, d);
    if let Some(r) = &realm {
        if !realm_name.is_empty() && r != realm_name {
            d.error(
                join(path, "realm"),
                format!(
                    "rlink realm '{r}' differs from the realm it belongs to ('{realm_name}'): a Junction cluster serves one realm on every worker"
                ),
            );
        }
    }
    for (key, want, why) in [
        ("forward_local_events", true, "a worker that kept its publications from a peer would make the realm behave differently depending on where a subscriber is attached"),
        ("forward_local_invocations", true, "a worker that hid its callees from a peer would make the realm behave differently depending on where a caller is attached"),
        ("forward_remote_events", false, "Junction links form a full mesh and never relay: every worker receives each event from the publisher's worker directly (relaying is what makes Crossbar rlinks deliver twice and loop)"),
        ("forward_remote_invocations", false, "Junction links form a full mesh and never relay: a call goes straight to the callee's worker (relaying is what makes Crossbar rlinks loop)"),
    ] {
        if let Some(b) = opt_bool(m, key, path, d) {
            if b != want {
                d.error(join(path, key), format!("{key} must be {want} in Junction: {why}"));
            }
        }
    }
    let authid = opt_str(m, "authid", path, d);
    if let Some(x) = m.get("exclude_authid") {
        let xp = join(path, "exclude_authid");
        if let Some(list) = array(x, &xp, d) {
            if !list.is_empty() {
                d.error(
                    xp,
                    "exclude_authid is not supported by Junction: every session of a cluster realm is visible on every worker (the cluster is one router)",
                );
            }
        }
    }
    let ping_interval = opt_ms(m, "ping_interval", path, d).and_then(nonzero).unwrap_or(Duration::from_secs(1));
    let ping_timeout = opt_ms(m, "ping_timeout", path, d).and_then(nonzero).unwrap_or(Duration::from_secs(5));
    if ping_timeout <= ping_interval {
        d.error(join(path, "ping_timeout"), "ping_timeout must be longer than ping_interval");
    }
    let reconnect_max = opt_ms(m, "reconnect_max", path, d).and_then(nonzero).unwrap_or(Duration::from_secs(5));
    let max_queue_bytes = opt_uint(m, "max_queue_bytes", path, u64::MAX, d)
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX))
        .unwrap_or(DEFAULT_RLINK_MAX_QUEUE_BYTES);
    if max_queue_bytes < 1024 * 1024 {
        d.error(join(path, "max_queue_bytes"), "max_queue_bytes must be at least 1048576 (1 MiB)");
    }
    let tp = join(path, "transport");
    let endpoint = match m.get("transport") {
        None => {
            d.error(
                &tp,
                "missing required key 'transport' (e.g. {\"type\": \"rawsocket\", \"endpoint\": {\"type\": \"tcp\", \"host\": \"10.0.0.2\", \"port\": 8081}})",
            );
            None
        }
        Some(t) => parse_backend_transport(t, &tp, d),
    };
    Some(RLinkConfig {
        id: id?,
        realm: realm?,
        endpoint: endpoint?,
        authid,
        ping_interval,
        ping_timeout,
        reconnect_max,
        max_queue_bytes,
    })
}

/// Crossbar's realm `store`: `{type: "memory", limit?, "event-history"?:
/// [{uri, match?, limit?}], "call-queue"?}` (see Crossbar's
/// `personality.create_realm_store` and `router/realmstore.py`).
fn parse_store(v: &Value, path: &str, d: &mut Diags) -> Option<StoreConfig> {
    let m = object(v, path, d)?;
    let kind = req_str(m, "type", path, d);
    let cfxdb_keys = ["path", "maxsize", "maxbuffer", "buffertime", "readonly", "sync"];
    let mut known = vec!["type", "limit", "event-history", "call-queue"];
    if kind.as_deref() == Some("cfxdb") {
        known.extend_from_slice(&cfxdb_keys);
    }
    check_keys(m, path, &known, &[], d);
    match kind.as_deref() {
        Some("memory") => {}
        Some("cfxdb") => d.error(
            join(path, "type"),
            "store type 'cfxdb' (persistent event store) is not supported by Junction: use 'memory'",
        ),
        Some(other) => d.error(
            join(path, "type"),
            format!("invalid store type '{other}': expected 'memory'{}", suggest(other, &["memory"])),
        ),
        None => {}
    }
    if let Some(cq) = m.get("call-queue") {
        let cp = join(path, "call-queue");
        if let Some(list) = array(cq, &cp, d) {
            if !list.is_empty() {
                d.warn(
                    cp,
                    "Crossbar option 'call-queue' is ignored by Junction (calls to procedures nobody has registered fail at once with wamp.error.no_such_procedure)",
                );
            }
        }
    }
    let limit =
        opt_uint(m, "limit", path, usize::MAX as u64, d).map(|n| n as usize).unwrap_or(DEFAULT_EVENT_HISTORY_LIMIT);
    let mut event_history = Vec::new();
    if let Some(eh) = m.get("event-history") {
        let ep = join(path, "event-history");
        if let Some(list) = array(eh, &ep, d) {
            for (i, item) in list.iter().enumerate() {
                let ip = index(&ep, i);
                let Some(em) = object(item, &ip, d) else {
                    continue;
                };
                check_keys(em, &ip, &["uri", "match", "limit"], &[], d);
                let uri = req_str(em, "uri", &ip, d).unwrap_or_default();
                let match_policy = match opt_str(em, "match", &ip, d).as_deref() {
                    None | Some("exact") => MatchPolicy::Exact,
                    Some("prefix") => MatchPolicy::Prefix,
                    Some("wildcard") => MatchPolicy::Wildcard,
                    Some(other) => {
                        d.error(
                            join(&ip, "match"),
                            format!(
                                "invalid match policy '{other}': expected 'exact', 'prefix' or 'wildcard'{}",
                                suggest(other, &["exact", "prefix", "wildcard"])
                            ),
                        );
                        MatchPolicy::Exact
                    }
                };
                let entry_limit = opt_uint(em, "limit", &ip, usize::MAX as u64, d).map(|n| n as usize).unwrap_or(limit);
                event_history.push(EventHistoryConfig { uri, match_policy, limit: entry_limit });
            }
        }
    }
    Some(StoreConfig { kind: StoreKind::Memory, limit, event_history })
}

fn parse_realm_options(v: &Value, path: &str, d: &mut Diags) -> RealmOptions {
    let mut o = RealmOptions::default();
    let Some(m) = object(v, path, d) else {
        return o;
    };
    check_keys(
        m,
        path,
        &[
            "home_shard",
            "max_sessions",
            "enable_meta_api",
            "uri_check",
            "max_pending_calls_per_session",
            "default_call_timeout",
            "max_call_timeout",
            "kill_grace",
            "max_retained_topics",
            "max_stored_payload",
        ],
        &[
            (
                "bridge_meta_api",
                "only a realm started through the management API bridges its meta events to the master",
            ),
            ("event_dispatching_chunk_size", "Junction dispatches without chunking"),
            ("enable_authorization_cache", "not used"),
        ],
        d,
    );
    o.home_shard = opt_uint(m, "home_shard", path, usize::MAX as u64, d).map(|n| n as usize);
    if let Some(n) = opt_uint(m, "max_sessions", path, usize::MAX as u64, d) {
        o.max_sessions = n as usize;
    }
    if let Some(b) = opt_bool(m, "enable_meta_api", path, d) {
        o.enable_meta_api = b;
    }
    let dl = &mut o.dealer;
    if let Some(n) = opt_uint(m, "max_pending_calls_per_session", path, usize::MAX as u64, d) {
        dl.max_pending_calls_per_session = n as usize;
    }
    if let Some(t) = opt_ms(m, "default_call_timeout", path, d) {
        dl.default_call_timeout = nonzero(t);
    }
    if let Some(t) = opt_ms(m, "max_call_timeout", path, d) {
        dl.max_call_timeout = nonzero(t);
    }
    if let Some(t) = opt_ms(m, "kill_grace", path, d) {
        dl.kill_grace = t;
    }
    if let Some(n) = opt_uint(m, "max_retained_topics", path, usize::MAX as u64, d) {
        o.broker.max_retained_topics = n as usize;
    }
    if let Some(n) = opt_uint(m, "max_stored_payload", path, usize::MAX as u64, d) {
        o.broker.max_stored_payload = n as usize;
    }
    if let Some(s) = opt_str(m, "uri_check", path, d) {
        match s.as_str() {
            "loose" => o.uri_check = UriCheck::Loose,
            "strict" => o.uri_check = UriCheck::Strict,
            other => d.error(
                join(path, "uri_check"),
                format!(
                    "invalid value '{other}': expected 'loose' or 'strict'{}",
                    suggest(other, &["loose", "strict"])
                ),
            ),
        }
    }
    o
}

fn parse_role(v: &Value, path: &str, d: &mut Diags) -> RoleConfig {
    let mut r = RoleConfig { name: String::new(), permissions: Vec::new(), authorizer: None };
    let Some(m) = object(v, path, d) else {
        return r;
    };
    check_keys(m, path, &["name", "permissions", "authorizer", "id"], &[], d);
    if let Some(n) = req_str(m, "name", path, d) {
        r.name = n;
    }
    opt_str(m, "id", path, d);
    r.authorizer = opt_str(m, "authorizer", path, d);
    if let Some(perms) = m.get("permissions") {
        let p = join(path, "permissions");
        if let Some(list) = array(perms, &p, d) {
            for (i, v) in list.iter().enumerate() {
                r.permissions.push(parse_permission(v, &index(&p, i), d));
            }
        }
    }
    r
}

fn parse_permission(v: &Value, path: &str, d: &mut Diags) -> PermissionConfig {
    let mut p = PermissionConfig {
        uri: String::new(),
        match_policy: MatchPolicy::Exact,
        allow: Allow::default(),
        disclose: Disclose::default(),
        cache: false,
    };
    let Some(m) = object(v, path, d) else {
        return p;
    };
    check_keys(m, path, &["uri", "match", "allow", "disclose", "cache"], &[], d);
    if let Some(u) = req_str(m, "uri", path, d) {
        p.uri = u;
    }
    match opt_str(m, "match", path, d) {
        Some(s) => match s.as_str() {
            "exact" => p.match_policy = MatchPolicy::Exact,
            "prefix" => p.match_policy = MatchPolicy::Prefix,
            "wildcard" => p.match_policy = MatchPolicy::Wildcard,
            other => d.error(
                join(path, "match"),
                format!(
                    "invalid match policy '{other}': expected 'exact', 'prefix' or 'wildcard'{}",
                    suggest(other, &["exact", "prefix", "wildcard"])
                ),
            ),
        },
        None if !m.contains_key("match") => {
            // Crossbar's legacy form: "com.example.*" (or "*") without a
            // `match` means a prefix pattern.
            if let Some(stripped) = p.uri.strip_suffix('*') {
                p.uri = stripped.to_string();
                p.match_policy = MatchPolicy::Prefix;
            }
        }
        None => {}
    }
    if let Some(a) = m.get("allow") {
        let ap = join(path, "allow");
        if let Some(am) = object(a, &ap, d) {
            check_keys(am, &ap, &["call", "register", "publish", "subscribe"], &[], d);
            p.allow = Allow {
                call: opt_bool(am, "call", &ap, d).unwrap_or(false),
                register: opt_bool(am, "register", &ap, d).unwrap_or(false),
                publish: opt_bool(am, "publish", &ap, d).unwrap_or(false),
                subscribe: opt_bool(am, "subscribe", &ap, d).unwrap_or(false),
            };
        }
    }
    if let Some(a) = m.get("disclose") {
        let dp = join(path, "disclose");
        if let Some(dm) = object(a, &dp, d) {
            check_keys(dm, &dp, &["caller", "publisher"], &[], d);
            p.disclose = Disclose {
                caller: opt_bool(dm, "caller", &dp, d).unwrap_or(false),
                publisher: opt_bool(dm, "publisher", &dp, d).unwrap_or(false),
            };
        }
    }
    if let Some(c) = opt_bool(m, "cache", path, d) {
        p.cache = c;
    }
    p
}

const WS_OPTION_KEYS: &[&str] = &[
    "max_frame_size",
    "max_message_size",
    "auto_ping_interval",
    "auto_ping_timeout",
    "auto_ping_size",
    "open_handshake_timeout",
    "close_handshake_timeout",
    "allowed_origins",
    "require_websocket_subprotocol",
    "tcp_nodelay",
];

const LIMIT_KEYS: &[&str] = &["max_connections", "max_outbound_bytes", "max_outbound_messages", "slow_consumer_policy"];

const WS_IGNORED: &[(&str, &str)] = &[
    ("external_port", "not used"),
    ("enable_hixie76", "Junction speaks RFC 6455 only"),
    ("enable_hybi10", "Junction speaks RFC 6455 only"),
    ("enable_rfc6455", "Junction always speaks RFC 6455"),
    ("enable_webstatus", "Junction serves no status page"),
    ("validate_utf8", "Junction always validates UTF-8 text frames"),
    ("mask_server_frames", "servers never mask frames"),
    ("require_masked_client_frames", "Junction always requires masked client frames"),
    ("apply_mask", "not used"),
    ("auto_fragment_size", "Junction does not fragment outgoing messages"),
    ("fail_by_drop", "not used"),
    ("echo_close_codereason", "not used"),
    ("enable_flash_policy", "Flash is not supported"),
    ("flash_policy", "Flash is not supported"),
    ("compression", "WebSocket compression is not supported yet"),
    ("show_server_version", "not used"),
    ("auto_ping_restart_on_any_traffic", "not used"),
    ("max_connections_per_ip", "not used"),
    ("trustXForwardedFor", "not used"),
    ("trust_x_forwarded_for", "not used"),
    (
        "allow_null_origin",
        "an 'Origin: null' header is matched against allowed_origins like any other: list \"null\" to admit it",
    ),
];

fn parse_transport(v: &Value, path: &str, d: &mut Diags) -> TransportConfig {
    let mut t = TransportConfig {
        id: None,
        kind: TransportKind::Unsupported { kind: String::new() },
        endpoint: Endpoint::Tcp {
            interface: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            portrange: None,
            backlog: DEFAULT_BACKLOG,
            shared: false,
            tls: None,
        },
        limits: ConnectionLimits::default(),
    };
    let Some(m) = object(v, path, d) else {
        d.poison(join(path, "endpoint"));
        return t;
    };
    let Some(kind) = req_str(m, "type", path, d) else {
        d.poison(join(path, "endpoint"));
        return t;
    };
    let debug_ignored: &[(&str, &str)] = &[
        ("debug", "use RUST_LOG / --log-level"),
        ("debug_traffic", "use RUST_LOG / --log-level"),
        ("cookie", "cookie tracking is not supported yet"),
    ];
    match kind.as_str() {
        "websocket" => {
            check_keys(m, path, &["type", "id", "endpoint", "url", "serializers", "options", "auth"], debug_ignored, d);
            let (svc, limits) = parse_websocket_service(m, path, true, d);
            t.kind = TransportKind::WebSocket(svc);
            t.limits = limits;
        }
        "rawsocket" => {
            check_keys(
                m,
                path,
                &["type", "id", "endpoint", "serializers", "max_message_size", "options", "auth"],
                debug_ignored,
                d,
            );
            let mut rs = RawSocketTransport {
                serializers: parse_serializers(m, path, d),
                options: RawSocketOptions::default(),
                auth: parse_auth(m, path, d),
            };
            // Crossbar's docs put `max_message_size` on the transport, its
            // checkconfig and runtime read `options.max_message_size`: both
            // are accepted.
            let top_size = opt_uint(m, "max_message_size", path, usize::MAX as u64, d);
            if let Some(n) = top_size {
                rs.options.max_message_size = n as usize;
            }
            if let Some(o) = m.get("options") {
                let op = join(path, "options");
                if let Some(om) = object(o, &op, d) {
                    let mut known =
                        vec!["max_message_size", "handshake_timeout", "auto_ping_interval", "auto_ping_timeout"];
                    known.extend_from_slice(LIMIT_KEYS);
                    check_keys(om, &op, &known, &[], d);
                    if let Some(n) = opt_uint(om, "max_message_size", &op, usize::MAX as u64, d) {
                        let at = join(&op, "max_message_size");
                        match top_size {
                            Some(top) if top != n => d.error(
                                &at,
                                format!(
                                    "max_message_size {n} conflicts with {top} given at {}: give it once (Crossbar's place is options.max_message_size)",
                                    join(path, "max_message_size")
                                ),
                            ),
                            Some(_) => {}
                            None => {
                                rs.options.max_message_size = n as usize;
                                // Report a range problem here, where the
                                // value is, not at the transport-level key.
                                if let Some(why) =
                                    crate::validate::rawsocket_size_problem(n as usize)
                                {
                                    d.error(&at, why);
                                }
                                d.poison(join(path, "max_message_size"));
                            }
                        }
                    }
                    if let Some(t) = opt_ms(om, "handshake_timeout", &op, d) {
                        rs.options.handshake_timeout = t;
                    }
                    if let Some(t) = opt_ms(om, "auto_ping_interval", &op, d) {
                        rs.options.auto_ping_interval = nonzero(t);
                    }
                    if let Some(t) = opt_ms(om, "auto_ping_timeout", &op, d) {
                        rs.options.auto_ping_timeout = nonzero(t);
                    }
                    t.limits = parse_limits(om, &op, d);
                }
            }
            t.kind = TransportKind::RawSocket(rs);
        }
        "web" => {
            check_keys(m, path, &["type", "id", "endpoint", "paths", "options"], debug_ignored, d);
            let mut web = WebTransport { paths: IndexMap::new() };
            match m.get("paths") {
                None => d.error(
                    join(path, "paths"),
                    "missing required key 'paths' (e.g. {\"ws\": {\"type\": \"websocket\"}})",
                ),
                Some(p) => {
                    let pp = join(path, "paths");
                    if let Some(pm) = object(p, &pp, d) {
                        for (key, sv) in pm {
                            let sp = join(&pp, key);
                            web.paths.insert(key.clone(), parse_web_service(sv, &sp, d));
                        }
                    }
                }
            }
            if let Some(o) = m.get("options") {
                let op = join(path, "options");
                if let Some(om) = object(o, &op, d) {
                    check_keys(
                        om,
                        &op,
                        LIMIT_KEYS,
                        &[
                            ("access_log", "not used"),
                            ("display_tracebacks", "not used"),
                            ("hsts", "Junction sends no HSTS header"),
                            ("hsts_max_age", "Junction sends no HSTS header"),
                            ("client_timeout", "not used"),
                        ],
                        d,
                    );
                    t.limits = parse_limits(om, &op, d);
                }
            }
            t.kind = TransportKind::Web(web);
        }
        other => {
            if !CROSSBAR_TRANSPORT_TYPES.contains(&other) {
                d.error(
                    join(path, "type"),
                    format!(
                        "unknown transport type '{other}' (expected 'websocket', 'rawsocket' or 'web'){}",
                        suggest(other, &["websocket", "rawsocket", "web"])
                    ),
                );
            }
            t.kind = TransportKind::Unsupported { kind: other.to_string() };
            d.poison(join(path, "endpoint"));
            return t;
        }
    }
    t.id = opt_str(m, "id", path, d);
    match m.get("endpoint") {
        None => d.error(
            join(path, "endpoint"),
            "missing required key 'endpoint' (e.g. {\"type\": \"tcp\", \"port\": 8080})",
        ),
        Some(e) => match parse_endpoint(e, &join(path, "endpoint"), d) {
            Some(ep) => t.endpoint = ep,
            None => d.poison(join(path, "endpoint")),
        },
    }
    t
}

/// Parses `url`, `serializers`, `options`, `auth` of a WebSocket transport or
/// web path service. Connection limits are accepted in `options` only for a
/// top-level transport (`top_level`).
fn parse_websocket_service(
    m: &Map,
    path: &str,
    top_level: bool,
    d: &mut Diags,
) -> (WebSocketService, ConnectionLimits) {
    let mut svc = WebSocketService {
        url: opt_str(m, "url", path, d),
        serializers: parse_serializers(m, path, d),
        options: WebSocketOptions::default(),
        auth: parse_auth(m, path, d),
    };
    let mut limits = ConnectionLimits::default();
    if let Some(o) = m.get("options") {
        let op = join(path, "options");
        if let Some(om) = object(o, &op, d) {
            let mut known = WS_OPTION_KEYS.to_vec();
            if top_level {
                known.extend_from_slice(LIMIT_KEYS);
            } else {
                for k in LIMIT_KEYS {
                    if om.contains_key(*k) {
                        d.error(
                            join(&op, k),
                            format!("'{k}' is a per-transport limit: put it in the web transport's 'options'"),
                        );
                    }
                }
                known.extend_from_slice(LIMIT_KEYS);
            }
            check_keys(om, &op, &known, WS_IGNORED, d);
            let o = &mut svc.options;
            if let Some(n) = opt_uint(om, "max_frame_size", &op, usize::MAX as u64, d) {
                o.max_frame_size = n as usize;
            }
            if let Some(n) = opt_uint(om, "max_message_size", &op, usize::MAX as u64, d) {
                o.max_message_size = n as usize;
            }
            if let Some(t) = opt_ms(om, "auto_ping_interval", &op, d) {
                o.auto_ping_interval = nonzero(t);
            }
            if let Some(t) = opt_ms(om, "auto_ping_timeout", &op, d) {
                o.auto_ping_timeout = nonzero(t);
            }
            if let Some(n) = opt_uint(om, "auto_ping_size", &op, usize::MAX as u64, d) {
                o.auto_ping_size = n as usize;
            }
            if let Some(t) = opt_ms(om, "open_handshake_timeout", &op, d) {
                o.open_handshake_timeout = t;
            }
            if let Some(t) = opt_ms(om, "close_handshake_timeout", &op, d) {
                o.close_handshake_timeout = t;
            }
            if let Some(v) = om.get("allowed_origins") {
                let ap = join(&op, "allowed_origins");
                if let Some(list) = array(v, &ap, d) {
                    let mut origins = Vec::with_capacity(list.len());
                    for (i, item) in list.iter().enumerate() {
                        match item.as_str() {
                            Some(s) => origins.push(s.to_string()),
                            None => wrong_type(&index(&ap, i), "a string", item, d),
                        }
                    }
                    o.allowed_origins = origins;
                }
            }
            if let Some(b) = opt_bool(om, "require_websocket_subprotocol", &op, d) {
                o.require_subprotocol = b;
            }
            if let Some(b) = opt_bool(om, "tcp_nodelay", &op, d) {
                o.tcp_nodelay = b;
            }
            if top_level {
                limits = parse_limits(om, &op, d);
            }
        }
    }
    (svc, limits)
}

fn parse_web_service(v: &Value, path: &str, d: &mut Diags) -> WebService {
    let Some(m) = object(v, path, d) else {
        return WebService::Other { kind: String::new() };
    };
    let Some(kind) = req_str(m, "type", path, d) else {
        return WebService::Other { kind: String::new() };
    };
    match kind.as_str() {
        "websocket" => {
            check_keys(
                m,
                path,
                &["type", "id", "url", "serializers", "options", "auth"],
                &[
                    ("debug", "use RUST_LOG / --log-level"),
                    ("debug_traffic", "use RUST_LOG / --log-level"),
                    ("cookie", "cookie tracking is not supported yet"),
                ],
                d,
            );
            opt_str(m, "id", path, d);
            let (svc, _) = parse_websocket_service(m, path, false, d);
            WebService::WebSocket(svc)
        }
        "static" => parse_static(m, path, d),
        "redirect" => {
            check_keys(m, path, &["type", "url", "options"], &[], d);
            let url = req_str(m, "url", path, d);
            let mut status = DEFAULT_REDIRECT_STATUS;
            if let Some(o) = m.get("options") {
                let op = join(path, "options");
                if let Some(om) = object(o, &op, d) {
                    check_keys(om, &op, &["status"], &[], d);
                    if let Some(n) = opt_uint(om, "status", &op, u64::MAX, d) {
                        match REDIRECT_STATUSES.iter().find(|s| u64::from(**s) == n) {
                            Some(s) => status = *s,
                            None => d.error(
                                join(&op, "status"),
                                format!("invalid redirect status {n}: expected 301, 302, 303, 307 or 308"),
                            ),
                        }
                    }
                }
            }
            match url {
                Some(url) => WebService::Redirect(RedirectService { url, status }),
                None => {
                    d.poison(path);
                    WebService::Redirect(RedirectService { url: String::new(), status })
                }
            }
        }
        "json" => {
            check_keys(m, path, &["type", "value", "options"], &[], d);
            let mut svc = JsonService {
                value: Value::Null,
                prettify: false,
                allow_cross_origin: false,
                discourage_caching: false,
            };
            match m.get("value") {
                Some(v) => svc.value = v.clone(),
                None => d.error(join(path, "value"), "missing required key 'value' (the JSON document to serve)"),
            }
            if let Some(o) = m.get("options") {
                let op = join(path, "options");
                if let Some(om) = object(o, &op, d) {
                    check_keys(om, &op, &["prettify", "allow_cross_origin", "discourage_caching"], &[], d);
                    svc.prettify = opt_bool(om, "prettify", &op, d).unwrap_or(false);
                    svc.allow_cross_origin = opt_bool(om, "allow_cross_origin", &op, d).unwrap_or(false);
                    svc.discourage_caching = opt_bool(om, "discourage_caching", &op, d).unwrap_or(false);
                }
            }
            WebService::Json(svc)
        }
        "nodeinfo" => {
            check_keys(m, path, &["type"], &[], d);
            WebService::NodeInfo
        }
        // Junction's own: the worker's counters in Prometheus' text format.
        "metrics" => {
            check_keys(m, path, &["type"], &[], d);
            WebService::Metrics
        }
        _ => {
            if !CROSSBAR_WEB_SERVICES.contains(&kind.as_str()) {
                let mut names = vec!["websocket", "metrics"];
                names.extend_from_slice(CROSSBAR_WEB_SERVICES);
                d.error(join(path, "type"), format!("unknown web service type '{kind}'{}", suggest(&kind, &names)));
            }
            WebService::Other { kind }
        }
    }
}

/// `{type: static, directory, options: {enable_directory_listing,
/// mime_types, cache_timeout, default_file}}` (Crossbar's shape; its
/// `package`/`resource` form is refused).
fn parse_static(m: &Map, path: &str, d: &mut Diags) -> WebService {
    check_keys(m, path, &["type", "directory", "package", "resource", "options"], &[], d);
    let mut svc = StaticService {
        directory: PathBuf::new(),
        enable_directory_listing: false,
        mime_types: IndexMap::new(),
        cache_timeout: Some(DEFAULT_STATIC_CACHE_TIMEOUT),
        default_file: DEFAULT_STATIC_DEFAULT_FILE.to_string(),
    };
    let package = m.contains_key("package") || m.contains_key("resource");
    if package {
        let key = if m.contains_key("package") { "package" } else { "resource" };
        d.error(
            join(path, key),
            "serving files from a Python package ('package'/'resource') is not supported: use 'directory'",
        );
    }
    match opt_str(m, "directory", path, d) {
        Some(dir) if dir.is_empty() => d.error(join(path, "directory"), "directory must not be empty"),
        Some(dir) => svc.directory = PathBuf::from(dir),
        None if m.contains_key("directory") => d.poison(join(path, "directory")),
        None if package => {}
        None => d.error(join(path, "directory"), "missing required key 'directory' (the directory to serve)"),
    }
    if let Some(o) = m.get("options") {
        let op = join(path, "options");
        if let Some(om) = object(o, &op, d) {
            check_keys(om, &op, &["enable_directory_listing", "mime_types", "cache_timeout", "default_file"], &[], d);
            if let Some(b) = opt_bool(om, "enable_directory_listing", &op, d) {
                svc.enable_directory_listing = b;
            }
            if let Some(n) = opt_uint(om, "cache_timeout", &op, MAX_STATIC_CACHE_TIMEOUT_SECS, d) {
                svc.cache_timeout = nonzero(Duration::from_secs(n));
            }
            if let Some(f) = opt_str(om, "default_file", &op, d) {
                let valid = !f.is_empty()
                    && f != "."
                    && f != ".."
                    && !f.chars().any(|c| c == '/' || c == '\\' || c.is_control());
                if valid {
                    svc.default_file = f;
                } else {
                    d.error(
                        join(&op, "default_file"),
                        format!("invalid default_file '{}': expected a single file name such as index.html", clip(&f)),
                    );
                }
            }
            if let Some(mt) = om.get("mime_types") {
                let mp = join(&op, "mime_types");
                if let Some(mm) = object(mt, &mp, d) {
                    for (ext, ty) in mm {
                        let ep = join(&mp, ext);
                        let Some(ty) = ty.as_str() else {
                            wrong_type(&ep, "a media type (string) such as \"text/plain\"", ty, d);
                            continue;
                        };
                        let bare = ext.strip_prefix('.').unwrap_or(ext);
                        if bare.is_empty() || bare.chars().any(|c| c == '/' || c.is_whitespace() || c.is_control()) {
                            d.error(&ep, format!("invalid extension '{}': expected e.g. \".svg\"", clip(ext)));
                        } else if !valid_media_type(ty) {
                            d.error(
                                &ep,
                                format!(
                                    "invalid media type '{}': expected type/subtype such as \"image/svg+xml\"",
                                    clip(ty)
                                ),
                            );
                        } else {
                            svc.mime_types.insert(ext.clone(), ty.to_string());
                        }
                    }
                }
            }
        }
    }
    WebService::Static(svc)
}

/// `type/subtype[; params]` in visible ASCII.
fn valid_media_type(t: &str) -> bool {
    let main = t.split(';').next().unwrap_or("").trim();
    let mut parts = main.splitn(2, '/');
    let ok_token = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_graphic() && b != b'/');
    matches!((parts.next(), parts.next()), (Some(a), Some(b)) if ok_token(a) && ok_token(b))
        && t.bytes().all(|b| (0x20..0x7f).contains(&b))
}

fn parse_limits(om: &Map, op: &str, d: &mut Diags) -> ConnectionLimits {
    let mut l = ConnectionLimits::default();
    if let Some(n) = opt_uint(om, "max_connections", op, usize::MAX as u64, d) {
        l.max_connections = n as usize;
    }
    if let Some(n) = opt_uint(om, "max_outbound_bytes", op, usize::MAX as u64, d) {
        l.max_outbound_bytes = n as usize;
    }
    if let Some(n) = opt_uint(om, "max_outbound_messages", op, usize::MAX as u64, d) {
        l.max_outbound_messages = n as usize;
    }
    if let Some(s) = opt_str(om, "slow_consumer_policy", op, d) {
        match s.as_str() {
            "close" => l.slow_consumer_policy = SlowConsumerPolicy::Close,
            "drop" => l.slow_consumer_policy = SlowConsumerPolicy::Drop,
            other => d.error(
                join(op, "slow_consumer_policy"),
                format!("invalid value '{other}': expected 'close' or 'drop'{}", suggest(other, &["close", "drop"])),
            ),
        }
    }
    l
}

fn parse_serializers(m: &Map, path: &str, d: &mut Diags) -> Vec<Serializer> {
    let Some(v) = m.get("serializers") else {
        return Serializer::ALL.to_vec();
    };
    let sp = join(path, "serializers");
    let Some(list) = array(v, &sp, d) else {
        return Serializer::ALL.to_vec();
    };
    let mut out = Vec::with_capacity(list.len());
    let errors_before = d.errors.len();
    for (i, item) in list.iter().enumerate() {
        let ip = index(&sp, i);
        let Some(name) = item.as_str() else {
            wrong_type(&ip, "a serializer name (string)", item, d);
            continue;
        };
        match Serializer::from_name(name) {
            Some(s) => out.push(s),
            None if name == "ubjson" => d.warn(
                ip,
                "serializer 'ubjson' is valid in Crossbar but not supported by Junction; it is ignored (Junction speaks json, msgpack, cbor, flatbuffers)",
            ),
            None => d.error(
                ip,
                format!(
                    "unknown serializer '{name}' (expected json, msgpack, cbor or flatbuffers){}",
                    suggest(name, &["json", "msgpack", "cbor", "flatbuffers"])
                ),
            ),
        }
    }
    if d.errors.len() > errors_before {
        // Checks of the list as a whole (empty, duplicates) would mislead.
        d.poison(sp);
    }
    out
}

fn parse_auth(m: &Map, path: &str, d: &mut Diags) -> TransportAuth {
    let Some(v) = m.get("auth") else {
        return TransportAuth::default();
    };
    let ap = join(path, "auth");
    let Some(am) = object(v, &ap, d) else {
        return TransportAuth::default();
    };
    let mut auth = TransportAuth { methods: Vec::new(), options: AuthOptions::default() };
    for (key, cfg) in am {
        let mp = join(&ap, key);
        if key == "options" {
            auth.options = parse_auth_options(cfg, &mp, d);
            continue;
        }
        if !AUTH_METHODS.contains(&key.as_str()) {
            d.error(&mp, format!("unknown authentication method '{key}'{}", suggest(key, AUTH_METHODS)));
            continue;
        }
        let Some(cm) = object(cfg, &mp, d) else {
            continue;
        };
        if let Some(method) = parse_auth_method(key, cm, &mp, d) {
            auth.methods.push(method);
        }
    }
    auth
}

fn parse_auth_options(v: &Value, path: &str, d: &mut Diags) -> AuthOptions {
    let mut o = AuthOptions::default();
    let Some(m) = object(v, path, d) else {
        return o;
    };
    check_keys(
        m,
        path,
        &["challenge_timeout", "max_failures", "failure_window", "max_tracked_peers", "max_authextra_size"],
        &[],
        d,
    );
    if let Some(n) = opt_uint(m, "max_authextra_size", path, 16 << 20, d) {
        o.max_authextra_size = n as usize;
    }
    if let Some(t) = opt_ms(m, "challenge_timeout", path, d) {
        o.challenge_timeout = t;
    }
    if let Some(n) = opt_uint(m, "max_failures", path, u32::MAX as u64, d) {
        o.max_failures = n as u32;
    }
    if let Some(t) = opt_ms(m, "failure_window", path, d) {
        o.failure_window = t;
    }
    if let Some(n) = opt_uint(m, "max_tracked_peers", path, usize::MAX as u64, d) {
        o.max_tracked_peers = n as usize;
    }
    o
}

/// Keys of a dynamic authenticator block.
const DYNAMIC_KEYS: &[&str] = &["type", "authenticator", "authenticator-realm", "authenticator-role"];

fn parse_auth_method(key: &str, cm: &Map, mp: &str, d: &mut Diags) -> Option<AuthMethod> {
    let kind = opt_str(cm, "type", mp, d);
    let unsupported = |kind: Option<String>| AuthMethod::Unsupported { method: key.to_string(), kind };
    if key == "cookie" {
        return Some(unsupported(kind));
    }
    if key == "cryptosign-proxy" {
        return parse_cryptosign_proxy(cm, kind, mp, d);
    }
    match kind.as_deref() {
        None if key == "anonymous" => {}
        None => {
            d.error(join(mp, "type"), "missing required key 'type' ('static' or 'dynamic')");
            return None;
        }
        Some("static") | Some("dynamic") => {}
        Some("function") => return Some(unsupported(kind)),
        Some(other) => {
            d.error(
                join(mp, "type"),
                format!(
                    "invalid type '{other}': expected 'static' or 'dynamic'{}",
                    suggest(other, &["static", "dynamic"])
                ),
            );
            return None;
        }
    }
    if kind.as_deref() == Some("dynamic") {
        check_keys(cm, mp, DYNAMIC_KEYS, &[], d);
        let dynamic = DynamicAuthenticator {
            authenticator: req_str(cm, "authenticator", mp, d)?,
            authenticator_realm: opt_str(cm, "authenticator-realm", mp, d),
            authenticator_role: opt_str(cm, "authenticator-role", mp, d),
        };
        return Some(match key {
            "anonymous" => AuthMethod::AnonymousDynamic(dynamic),
            "ticket" => AuthMethod::Ticket(AuthProvider::Dynamic(dynamic)),
            "wampcra" => AuthMethod::WampCra(AuthProvider::Dynamic(dynamic)),
            "cryptosign" => AuthMethod::Cryptosign(AuthProvider::Dynamic(dynamic)),
            "scram" => AuthMethod::Scram(AuthProvider::Dynamic(dynamic)),
            _ => AuthMethod::Tls(AuthProvider::Dynamic(dynamic)),
        });
    }
    // type: static (or anonymous without a type).
    match key {
        "anonymous" => {
            check_keys(cm, mp, &["type", "role", "authid", "realm"], &[], d);
            Some(AuthMethod::Anonymous {
                role: opt_str(cm, "role", mp, d).unwrap_or_else(|| "anonymous".to_string()),
                authid: opt_str(cm, "authid", mp, d),
                realm: opt_str(cm, "realm", mp, d),
            })
        }
        "ticket" => {
            check_keys(cm, mp, &["type", "principals"], &[], d);
            let p = principals(cm, "principals", mp, d, |pm, pp, d| {
                check_keys(pm, pp, &["ticket", "role", "realm"], &[], d);
                Some(TicketPrincipal {
                    ticket: req_str(pm, "ticket", pp, d)?,
                    role: req_str(pm, "role", pp, d)?,
                    realm: opt_str(pm, "realm", pp, d),
                })
            });
            Some(AuthMethod::Ticket(AuthProvider::Static(p)))
        }
        "wampcra" => {
            check_keys(cm, mp, &["type", "users"], &[], d);
            let p = principals(cm, "users", mp, d, |pm, pp, d| {
                check_keys(pm, pp, &["secret", "role", "realm", "salt", "iterations", "keylen"], &[], d);
                let secret = req_str(pm, "secret", pp, d);
                let role = req_str(pm, "role", pp, d);
                let realm = opt_str(pm, "realm", pp, d);
                let salt = opt_str(pm, "salt", pp, d);
                let iterations = opt_uint(pm, "iterations", pp, 1_000_000, d);
                let keylen = opt_uint(pm, "keylen", pp, 256, d);
                let salt = match (salt, iterations, keylen) {
                    (None, None, None) => None,
                    (Some(salt), iterations, keylen) => {
                        // Autobahn's defaults for derive_key.
                        let iterations = iterations.unwrap_or(1000) as u32;
                        let keylen = keylen.unwrap_or(32) as u32;
                        if iterations == 0 {
                            d.error(join(pp, "iterations"), "iterations must be at least 1");
                        }
                        if keylen == 0 {
                            d.error(join(pp, "keylen"), "keylen must be at least 1");
                        }
                        Some(WampCraSalt { salt, iterations, keylen })
                    }
                    (None, _, _) => {
                        d.error(join(pp, "salt"), "'iterations'/'keylen' given without 'salt'");
                        None
                    }
                };
                Some(WampCraUser { secret: secret?, role: role?, realm, salt })
            });
            Some(AuthMethod::WampCra(AuthProvider::Static(p)))
        }
        "cryptosign" => {
            check_keys(cm, mp, &["type", "principals", "trustroots"], &[], d);
            if cm.contains_key("trustroots") {
                if cm.contains_key("principals") {
                    d.error(join(mp, "trustroots"), "'principals' and 'trustroots' cannot both be given");
                }
                return Some(AuthMethod::Unsupported { method: "cryptosign (trustroots)".to_string(), kind });
            }
            let p = principals(cm, "principals", mp, d, |pm, pp, d| {
                check_keys(pm, pp, &["authorized_keys", "role", "realm"], &[], d);
                let role = req_str(pm, "role", pp, d);
                let realm = opt_str(pm, "realm", pp, d);
                let keys = authorized_keys(pm, pp, d);
                Some(CryptosignPrincipal { authorized_keys: keys, role: role?, realm })
            });
            Some(AuthMethod::Cryptosign(AuthProvider::Static(p)))
        }
        "scram" => {
            check_keys(cm, mp, &["type", "principals"], &[], d);
            let p = principals(cm, "principals", mp, d, |pm, pp, d| {
                check_keys(
                    pm,
                    pp,
                    &["kdf", "iterations", "memory", "salt", "stored-key", "server-key", "role", "realm"],
                    &[],
                    d,
                );
                let kdf = match req_str(pm, "kdf", pp, d).as_deref() {
                    Some("argon2id-13") | Some("argon2id13") => Some(ScramKdf::Argon2id13),
                    Some("pbkdf2") => Some(ScramKdf::Pbkdf2),
                    Some(other) => {
                        d.error(
                            join(pp, "kdf"),
                            format!("invalid kdf '{}': expected 'argon2id-13' or 'pbkdf2'", clip(other)),
                        );
                        None
                    }
                    None => None,
                };
                let iterations = req_uint(pm, "iterations", pp, u32::MAX as u64, d);
                let memory = match kdf {
                    Some(ScramKdf::Argon2id13) => req_uint(pm, "memory", pp, u32::MAX as u64, d),
                    _ => Some(opt_uint(pm, "memory", pp, u32::MAX as u64, d).unwrap_or(0)),
                };
                if iterations == Some(0) {
                    d.error(join(pp, "iterations"), "iterations must be at least 1");
                }
                let hex_key = |k: &str, len: Option<usize>, d: &mut Diags| -> Option<String> {
                    let s = req_str(pm, k, pp, d)?;
                    let ok = match len {
                        Some(n) => is_hex(&s, n),
                        None => !s.is_empty() && s.len() % 2 == 0 && s.len() <= 1024 && is_hex(&s, s.len()),
                    };
                    if !ok {
                        let what = match len {
                            Some(n) => format!("{n} hex digits"),
                            None => "an even number of hex digits".to_string(),
                        };
                        d.error(join(pp, k), format!("invalid {k}: expected {what}"));
                        return None;
                    }
                    Some(s.to_ascii_lowercase())
                };
                let salt = hex_key("salt", None, d);
                let stored_key = hex_key("stored-key", Some(64), d);
                let server_key = hex_key("server-key", Some(64), d);
                let role = req_str(pm, "role", pp, d);
                let realm = opt_str(pm, "realm", pp, d);
                Some(ScramPrincipal {
                    kdf: kdf?,
                    iterations: iterations? as u32,
                    memory: memory? as u32,
                    salt: salt?,
                    stored_key: stored_key?,
                    server_key: server_key?,
                    role: role?,
                    realm,
                })
            });
            Some(AuthMethod::Scram(AuthProvider::Static(p)))
        }
        _ => {
            // tls
            check_keys(cm, mp, &["type", "principals"], &[], d);
            let p = principals(cm, "principals", mp, d, |pm, pp, d| {
                check_keys(pm, pp, &["certificate-sha1", "certificate-cn", "role", "realm"], &[], d);
                let sha1 = opt_str(pm, "certificate-sha1", pp, d).and_then(|s| {
                    let norm: String = s.chars().filter(|c| *c != ':').collect();
                    if is_hex(&norm, 40) {
                        Some(norm.to_ascii_uppercase())
                    } else {
                        d.error(
                            join(pp, "certificate-sha1"),
                            "invalid certificate-sha1: expected a SHA-1 fingerprint (40 hex digits, colons allowed)",
                        );
                        None
                    }
                });
                let cn = opt_str(pm, "certificate-cn", pp, d);
                if !pm.contains_key("certificate-sha1") && !pm.contains_key("certificate-cn") {
                    d.error(
                        join(pp, "certificate-sha1"),
                        "missing required key 'certificate-sha1' (or Junction's 'certificate-cn')",
                    );
                }
                Some(TlsPrincipal {
                    certificate_sha1: sha1,
                    certificate_cn: cn,
                    role: req_str(pm, "role", pp, d)?,
                    realm: opt_str(pm, "realm", pp, d),
                })
            });
            Some(AuthMethod::Tls(AuthProvider::Static(p)))
        }
    }
}

/// The `authorized_keys` list of a cryptosign principal: 64 hex digits
/// each, lowercased; at least one.
fn authorized_keys(pm: &Map, pp: &str, d: &mut Diags) -> Vec<String> {
    let kp = join(pp, "authorized_keys");
    let mut keys = Vec::new();
    match pm.get("authorized_keys") {
        None => d.error(&kp, "missing required key 'authorized_keys'"),
        Some(v) => {
            if let Some(list) = array(v, &kp, d) {
                for (i, k) in list.iter().enumerate() {
                    let ip = index(&kp, i);
                    match k.as_str() {
                        Some(s) if is_hex(s, 64) => keys.push(s.to_ascii_lowercase()),
                        Some(s) => d.error(
                            ip,
                            format!("invalid public key '{}': expected 64 hex digits (an Ed25519 public key)", clip(s)),
                        ),
                        None => wrong_type(&ip, "a string (hex public key)", k, d),
                    }
                }
                if list.is_empty() {
                    d.error(&kp, "at least one authorized key is required");
                }
            }
        }
    }
    keys
}

/// `cryptosign-proxy` on a router transport: `{type: static, principals:
/// {name: {authorized_keys: [...], realm?, role?}}}`.
fn parse_cryptosign_proxy(cm: &Map, kind: Option<String>, mp: &str, d: &mut Diags) -> Option<AuthMethod> {
    match kind.as_deref() {
        Some("static") => {}
        None => {
            d.error(join(mp, "type"), "missing required key 'type' ('static')");
            return None;
        }
        // Reported by validation, like other unsupported methods.
        Some("dynamic") => return Some(AuthMethod::Unsupported { method: "cryptosign-proxy".into(), kind }),
        Some(other) => {
            d.error(
                join(mp, "type"),
                format!("invalid type '{other}': expected 'static'{}", suggest(other, &["static", "dynamic"])),
            );
            return None;
        }
    }
    check_keys(cm, mp, &["type", "principals"], &[], d);
    let principals = principals(cm, "principals", mp, d, |pm, pp, d| {
        check_keys(pm, pp, &["authorized_keys", "realm", "role"], &[], d);
        for k in ["realm", "role"] {
            if opt_str(pm, k, pp, d).is_some() {
                d.warn(
                    join(pp, k),
                    format!("Crossbar option '{k}' is ignored by Junction (a proxy link forwards each session with the realm and role its proxy authenticated)"),
                );
            }
        }
        Some(authorized_keys(pm, pp, d))
    });
    Some(AuthMethod::CryptosignProxy { principals })
}

/// Parses the principal map `key` (authid → principal) of a static method.
fn principals<P>(
    cm: &Map,
    key: &str,
    mp: &str,
    d: &mut Diags,
    mut parse: impl FnMut(&Map, &str, &mut Diags) -> Option<P>,
) -> IndexMap<String, P> {
    let mut out = IndexMap::new();
    let pp = join(mp, key);
    let Some(v) = cm.get(key) else {
        d.error(&pp, format!("missing required key '{key}' for static authentication"));
        return out;
    };
    let Some(pm) = object(v, &pp, d) else {
        return out;
    };
    for (authid, pv) in pm {
        let ip = join(&pp, authid);
        if authid.is_empty() {
            d.error(&ip, "authid must not be empty");
            continue;
        }
        let Some(m) = object(pv, &ip, d) else {
            continue;
        };
        if let Some(p) = parse(m, &ip, d) {
            out.insert(authid.clone(), p);
        }
    }
    out
}

/// `tls` of a proxy connection's endpoint (client side).
fn parse_backend_tls(v: &Value, path: &str, d: &mut Diags) -> Option<BackendTls> {
    let m = object(v, path, d)?;
    check_keys(m, path, &["ca_certificates", "hostname", "certificate", "key"], &[], d);
    let mut ca_certificates = Vec::new();
    let kp = join(path, "ca_certificates");
    match m.get("ca_certificates") {
        None => d.error(
            &kp,
            "missing required key 'ca_certificates': the PEM CA file(s) the router's certificate must chain to",
        ),
        Some(v) => {
            if let Some(list) = array(v, &kp, d) {
                for (i, item) in list.iter().enumerate() {
                    match item.as_str() {
                        Some(s) if !s.is_empty() => ca_certificates.push(PathBuf::from(s)),
                        Some(_) => d.error(index(&kp, i), "path must not be empty"),
                        None => wrong_type(&index(&kp, i), "a string (file path)", item, d),
                    }
                }
                if list.is_empty() {
                    d.error(&kp, "at least one CA certificate file is required");
                }
            }
        }
    }
    let hostname = match m.get("hostname") {
        None => None,
        Some(Value::String(h)) if !h.is_empty() => Some(h.clone()),
        Some(other) => {
            wrong_type(&join(path, "hostname"), "a non-empty string", other, d);
            None
        }
    };
    let file = |k: &str, d: &mut Diags| match m.get(k) {
        None => None,
        Some(Value::String(p)) if !p.is_empty() => Some(PathBuf::from(p)),
        Some(other) => {
            wrong_type(&join(path, k), "a file path", other, d);
            None
        }
    };
    let cert = file("certificate", d);
    let key = file("key", d);
    let client_cert = match (cert, key) {
        (Some(c), Some(k)) => Some((c, k)),
        (None, None) => None,
        _ => {
            d.error(path, "'certificate' and 'key' go together (client certificate for mutual TLS)");
            None
        }
    };
    Some(BackendTls { ca_certificates, hostname, client_cert })
}

fn parse_tls(v: &Value, path: &str, d: &mut Diags) -> Option<TlsConfig> {
    let m = object(v, path, d)?;
    check_keys(
        m,
        path,
        &[
            "key",
            "certificate",
            "chain_certificates",
            "ca_certificates",
            "require_client_certificate",
            "ciphers",
            "dhparam",
        ],
        &[],
        d,
    );
    if m.contains_key("dhparam") {
        d.warn(
            join(path, "dhparam"),
            "Crossbar option 'dhparam' is ignored by Junction (it offers no finite-field DH cipher suites)",
        );
    }
    let paths = |k: &str, d: &mut Diags| -> Vec<PathBuf> {
        let mut out = Vec::new();
        let kp = join(path, k);
        if let Some(v) = m.get(k) {
            if let Some(list) = array(v, &kp, d) {
                for (i, item) in list.iter().enumerate() {
                    match item.as_str() {
                        Some(s) if !s.is_empty() => out.push(PathBuf::from(s)),
                        Some(_) => d.error(index(&kp, i), "path must not be empty"),
                        None => wrong_type(&index(&kp, i), "a string (file path)", item, d),
                    }
                }
            }
        }
        out
    };
    let chain_certificates = paths("chain_certificates", d);
    let ca_certificates = paths("ca_certificates", d);
    let key = req_str(m, "key", path, d);
    let certificate = req_str(m, "certificate", path, d);
    for (k, v) in [("key", &key), ("certificate", &certificate)] {
        if v.as_deref() == Some("") {
            d.error(join(path, k), "path must not be empty");
        }
    }
    let require_client_cert = opt_bool(m, "require_client_certificate", path, d).unwrap_or(!ca_certificates.is_empty());
    if require_client_cert && ca_certificates.is_empty() {
        d.error(
            join(path, "require_client_certificate"),
            "client certificates cannot be required without 'ca_certificates' to verify them against",
        );
    }
    Some(TlsConfig {
        key: PathBuf::from(key?),
        certificate: PathBuf::from(certificate?),
        chain_certificates,
        ca_certificates,
        require_client_cert,
        ciphers: opt_str(m, "ciphers", path, d),
    })
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// At most 40 characters of `s`, for messages.
fn clip(s: &str) -> String {
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.to_string(),
    }
}

fn req_uint(m: &Map, key: &str, path: &str, max: u64, d: &mut Diags) -> Option<u64> {
    if !m.contains_key(key) {
        d.error(join(path, key), format!("missing required key '{key}'"));
        return None;
    }
    opt_uint(m, key, path, max, d)
}

fn parse_endpoint(v: &Value, path: &str, d: &mut Diags) -> Option<Endpoint> {
    let m = object(v, path, d)?;
    let kind = req_str(m, "type", path, d)?;
    match kind.as_str() {
        "tcp" => {
            check_keys(
                m,
                path,
                &["type", "port", "portrange", "interface", "backlog", "shared", "version", "tls"],
                &[],
                d,
            );
            let portrange = match m.get("portrange") {
                None => None,
                Some(Value::Array(a)) if a.len() == 2 => match (a[0].as_u64(), a[1].as_u64()) {
                    (Some(lo), Some(hi)) if 1 <= lo && lo <= hi && hi <= u16::MAX as u64 => {
                        Some((lo as u16, hi as u16))
                    }
                    _ => {
                        d.error(
                            join(path, "portrange"),
                            "portrange must be [low, high] with 1 <= low <= high <= 65535",
                        );
                        None
                    }
                },
                Some(_) => {
                    d.error(join(path, "portrange"), "portrange must be a list [low, high]");
                    None
                }
            };
            if portrange.is_some() && m.contains_key("port") {
                d.error(join(path, "portrange"), "give either 'port' or 'portrange', not both");
            }
            let tls = m.get("tls").and_then(|t| parse_tls(t, &join(path, "tls"), d));
            let mut v6 = false;
            if let Some(ver) = opt_uint(m, "version", path, u64::MAX, d) {
                match ver {
                    4 => {}
                    6 => v6 = true,
                    other => d.error(join(path, "version"), format!("invalid IP version {other}: expected 4 or 6")),
                }
            }
            let mut interface = if v6 { IpAddr::V6(Ipv6Addr::UNSPECIFIED) } else { IpAddr::V4(Ipv4Addr::UNSPECIFIED) };
            if let Some(s) = opt_str(m, "interface", path, d) {
                match s.parse::<IpAddr>() {
                    Ok(a) => {
                        if a.is_ipv6() != v6 && m.contains_key("version") {
                            d.error(join(path, "interface"), format!("interface '{s}' does not match 'version'"));
                        }
                        interface = a;
                    }
                    Err(_) if s.is_empty() => {}
                    Err(_) => d.error(
                        join(path, "interface"),
                        format!("invalid interface '{s}': expected an IP address such as 127.0.0.1 or ::1"),
                    ),
                }
            }
            let port = match m.get("port") {
                None if portrange.is_some() => portrange.map_or(0, |(lo, _)| lo),
                None => {
                    d.error(join(path, "port"), "missing required key 'port'");
                    0
                }
                Some(Value::String(s)) if s.starts_with('$') => {
                    d.error(
                        join(path, "port"),
                        format!("environment variable references ('{s}') are not supported: give the port number"),
                    );
                    0
                }
                Some(p) => match p.as_u64() {
                    Some(n) if n <= u16::MAX as u64 => n as u16,
                    Some(n) => {
                        d.error(join(path, "port"), format!("port {n} is out of range: must be between 1 and 65535"));
                        0
                    }
                    None if p.is_i64() => {
                        d.error(join(path, "port"), format!("port {p} is out of range: must be between 1 and 65535"));
                        0
                    }
                    None => {
                        wrong_type(&join(path, "port"), "an integer", p, d);
                        0
                    }
                },
            };
            let backlog = opt_uint(m, "backlog", path, u32::MAX as u64, d).map(|n| n as u32).unwrap_or(DEFAULT_BACKLOG);
            let shared = opt_bool(m, "shared", path, d).unwrap_or(false);
            Some(Endpoint::Tcp { interface, port, portrange, backlog, shared, tls })
        }
        "unix" => {
            check_keys(m, path, &["type", "path", "backlog"], &[], d);
            let p = req_str(m, "path", path, d).unwrap_or_default();
            let backlog = opt_uint(m, "backlog", path, u32::MAX as u64, d).map(|n| n as u32).unwrap_or(DEFAULT_BACKLOG);
            Some(Endpoint::Unix { path: PathBuf::from(p), backlog })
        }
        other => {
            d.error(
                join(path, "type"),
                format!(
                    "invalid endpoint type '{other}': expected 'tcp' or 'unix'{}",
                    suggest(other, &["tcp", "unix"])
                ),
            );
            None
        }
    }
}

// ---------------------------------------------------------------------------
// Generic helpers

fn nonzero(t: Duration) -> Option<Duration> {
    if t.is_zero() {
        None
    } else {
        Some(t)
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

fn wrong_type(path: &str, expected: &str, got: &Value, d: &mut Diags) {
    d.error(path, format!("expected {expected}, found {}", type_name(got)));
}

fn object<'v>(v: &'v Value, path: &str, d: &mut Diags) -> Option<&'v Map> {
    match v {
        Value::Object(m) => Some(m),
        other => {
            wrong_type(path, "an object", other, d);
            None
        }
    }
}

fn array<'v>(v: &'v Value, path: &str, d: &mut Diags) -> Option<&'v Vec<Value>> {
    match v {
        Value::Array(a) => Some(a),
        other => {
            wrong_type(path, "a list", other, d);
            None
        }
    }
}

/// Reports every key of `m` that is neither in `known` nor in `ignored`
/// (error, with a suggestion), and warns about `ignored` Crossbar keys.
fn check_keys(m: &Map, path: &str, known: &[&str], ignored: &[(&str, &str)], d: &mut Diags) {
    for k in m.keys() {
        if known.contains(&k.as_str()) {
            continue;
        }
        if let Some((_, why)) = ignored.iter().find(|(name, _)| *name == k) {
            d.warn(join(path, k), format!("Crossbar option '{k}' is ignored by Junction ({why})"));
            continue;
        }
        d.error(join(path, k), format!("unknown key '{k}'{}", suggest(k, known)));
    }
}

fn req_str(m: &Map, key: &str, path: &str, d: &mut Diags) -> Option<String> {
    if !m.contains_key(key) {
        d.error(join(path, key), format!("missing required key '{key}'"));
        return None;
    }
    opt_str(m, key, path, d)
}

fn opt_str(m: &Map, key: &str, path: &str, d: &mut Diags) -> Option<String> {
    match m.get(key)? {
        Value::String(s) => Some(s.clone()),
        other => {
            wrong_type(&join(path, key), "a string", other, d);
            None
        }
    }
}

fn opt_bool(m: &Map, key: &str, path: &str, d: &mut Diags) -> Option<bool> {
    match m.get(key)? {
        Value::Bool(b) => Some(*b),
        other => {
            wrong_type(&join(path, key), "a boolean (true/false)", other, d);
            None
        }
    }
}

/// A non-negative integer no larger than `max`.
fn opt_uint(m: &Map, key: &str, path: &str, max: u64, d: &mut Diags) -> Option<u64> {
    let v = m.get(key)?;
    match v.as_u64() {
        Some(n) if n <= max => Some(n),
        Some(n) => {
            d.error(join(path, key), format!("value {n} is too large (at most {max})"));
            None
        }
        None if v.is_i64() => {
            d.error(join(path, key), format!("expected a non-negative integer, found {v}"));
            None
        }
        None => {
            wrong_type(&join(path, key), "a non-negative integer", v, d);
            None
        }
    }
}

/// A duration given in milliseconds (at most one day).
fn opt_ms(m: &Map, key: &str, path: &str, d: &mut Diags) -> Option<Duration> {
    let v = m.get(key)?;
    match v.as_u64() {
        Some(n) if n <= 86_400_000 => Some(Duration::from_millis(n)),
        Some(n) => {
            d.error(join(path, key), format!("{n} ms is too long (at most 86400000 ms, one day)"));
            None
        }
        None => {
            wrong_type(&join(path, key), "a duration in milliseconds (non-negative integer)", v, d);
            None
        }
    }
}

/// `" (did you mean 'x'?)"` when a known name is close to `got`.
pub(crate) fn suggest(got: &str, known: &[&str]) -> String {
    let best = known.iter().map(|k| (levenshtein(got, k), *k)).min_by_key(|(dist, _)| *dist);
    match best {
        Some((dist, k)) if dist > 0 && dist <= (got.chars().count().max(k.len()) / 3).max(1) => {
            format!(" (did you mean '{k}'?)")
        }
        _ => String::new(),
    }
}

/// Optimal-string-alignment distance (edits, with adjacent transpositions
/// counting as one).
fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().take(64).collect();
    let b: Vec<char> = b.chars().take(64).collect();
    let w = b.len() + 1;
    let mut t = vec![0usize; (a.len() + 1) * w];
    for i in 0..=a.len() {
        for j in 0..=b.len() {
            t[i * w + j] = if i == 0 {
                j
            } else if j == 0 {
                i
            } else {
                let cost = usize::from(a[i - 1] != b[j - 1]);
                let mut v = (t[(i - 1) * w + j - 1] + cost).min(t[(i - 1) * w + j] + 1).min(t[i * w + j - 1] + 1);
                if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                    v = v.min(t[(i - 2) * w + j - 2] + 1);
                }
                v
            };
        }
    }
    t[a.len() * w + b.len()]
}
