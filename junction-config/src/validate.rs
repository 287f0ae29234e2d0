//! Semantic checks on the typed config: ranges, duplicates, URIs, and
//! features this version of Junction does not support.

use std::collections::HashMap;

use wamp_proto::Serializer;

use crate::error::{index, join, Diags};
use crate::model::*;

/// Runs every check, collecting errors and warnings.
pub(crate) fn check(cfg: &NodeConfig, d: &mut Diags) {
    if cfg.version != 2 {
        d.error(
            "version",
            format!(
                "unsupported config version {}: Junction reads version 2 configs (Crossbar's current format)",
                cfg.version
            ),
        );
    }
    if cfg.workers.is_empty() && cfg.controller.fabric.is_none() {
        // A managed node (controller.fabric) may start empty: its master starts the workers.
        d.error("workers", "no workers: at least one router or proxy worker is required");
    }
    // A managed node's master gives its workers transports at run time.
    let managed = cfg.controller.fabric.is_some();
    for (i, w) in cfg.workers.iter().enumerate() {
        let wp = index("workers", i);
        match w {
            WorkerConfig::Router(r) => check_router(r, &wp, managed, d),
            WorkerConfig::Proxy(p) => check_proxy(p, &wp, managed, d),
            WorkerConfig::Unsupported { kind } => {
                d.error(join(&wp, "type"), format!("worker type {kind} is not supported by this version of Junction"))
            }
        }
    }
    check_listen_conflicts(cfg, d);
    check_local_backends(cfg, d);
    if let Some(v) = cfg.controller.options.get("node_key") {
        if !matches!(v, serde_json::Value::String(s) if !s.is_empty()) {
            d.error(
                "controller.options.node_key",
                "node_key must be a non-empty string (a path to the node's key file)",
            );
        }
    }
}

/// The worker a transport belongs to: what realms and roles mean there.
#[derive(Clone, Copy)]
enum Worker<'a> {
    Router(&'a RouterWorkerConfig),
    Proxy(&'a ProxyWorkerConfig),
}

impl Worker<'_> {
    /// Whether the worker names any realm (router realms, proxy routes).
    fn knows_realms(&self) -> bool {
        match self {
            Worker::Router(r) => !r.realms.is_empty(),
            Worker::Proxy(p) => !p.routes.is_empty(),
        }
    }

    fn has_realm(&self, realm: &str) -> bool {
        match self {
            Worker::Router(r) => r.realms.iter().any(|x| x.name == realm),
            Worker::Proxy(p) => p.routes.contains_key(realm),
        }
    }

    fn realm_has_role(&self, realm: &str, role: &str) -> bool {
        match self {
            Worker::Router(r) => r.realms.iter().any(|x| x.name == realm && x.role(role).is_some()),
            Worker::Proxy(p) => p.route(realm, role).is_some(),
        }
    }

    fn any_realm_has_role(&self, role: &str) -> bool {
        match self {
            Worker::Router(r) => r.realms.iter().any(|x| x.role(role).is_some()),
            Worker::Proxy(p) => p.routes.keys().any(|realm| p.route(realm, role).is_some()),
        }
    }

    /// "is not configured" / "is not routed".
    fn realm_missing(&self) -> &'static str {
        match self {
            Worker::Router(_) => "is not configured",
            Worker::Proxy(_) => "has no route on this proxy",
        }
    }

    /// "is not defined on" / "has no route on".
    fn role_missing(&self) -> &'static str {
        match self {
            Worker::Router(_) => "is not defined on",
            Worker::Proxy(_) => "has no route on",
        }
    }
}

fn check_shards(shards: Option<usize>, op: &str, d: &mut Diags) {
    if let Some(n) = shards {
        if n == 0 || n > MAX_SHARDS {
            d.error(
                join(op, "shards"),
                format!("shards must be between 1 and {MAX_SHARDS} (got {n}); omit it to use one shard per core"),
            );
        }
    }
}

fn check_router(r: &RouterWorkerConfig, path: &str, managed: bool, d: &mut Diags) {
    check_shards(r.options.shards, &join(path, "options"), d);

    let rp = join(path, "realms");
    if r.realms.is_empty() {
        d.warn(&rp, "no realms are configured: no client will be able to join");
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, realm) in r.realms.iter().enumerate() {
        let p = index(&rp, i);
        if let Some(first) = names.get(realm.name.as_str()) {
            d.error(
                join(&p, "name"),
                format!("duplicate realm name '{}' (also at {})", realm.name, index(&rp, *first)),
            );
        } else {
            names.insert(&realm.name, i);
        }
        check_realm(realm, &p, r.options.shards, d);
    }

    let tp = join(path, "transports");
    if r.transports.is_empty() {
        if managed {
            d.warn(&tp, "no transports yet: the master must start one before clients can reach this router");
        } else {
            d.error(&tp, "no transports: a router without transports cannot be reached");
        }
    }
    for (i, t) in r.transports.iter().enumerate() {
        check_transport(t, &index(&tp, i), Worker::Router(r), d);
    }
}

fn check_proxy(p: &ProxyWorkerConfig, path: &str, managed: bool, d: &mut Diags) {
    let op = join(path, "options");
    let o = &p.options;
    check_shards(o.shards, &op, d);
    for (key, t) in [
        ("backend_ping_interval", o.backend_ping_interval),
        ("backend_ping_timeout", o.backend_ping_timeout),
        ("backend_reconnect_max", o.backend_reconnect_max),
    ] {
        if t.is_zero() {
            d.error(join(&op, key), format!("{key} must be greater than 0"));
        }
    }
    let biggest = p.transports.iter().map(TransportConfig::max_message_size).max().unwrap_or(0);
    if o.backend_max_outbound_bytes < biggest.max(MIN_MESSAGE_SIZE) {
        d.error(
            join(&op, "backend_max_outbound_bytes"),
            format!(
                "backend_max_outbound_bytes ({}) is smaller than the largest max_message_size of this proxy's transports ({}): a maximal message could never be forwarded",
                o.backend_max_outbound_bytes,
                biggest.max(MIN_MESSAGE_SIZE)
            ),
        );
    }

    let tp = join(path, "transports");
    if p.transports.is_empty() {
        if managed {
            d.warn(&tp, "no transports yet: the master must start one before clients can reach this proxy");
        } else {
            d.error(&tp, "no transports: a proxy without transports cannot be reached");
        }
    }
    for (i, t) in p.transports.iter().enumerate() {
        check_transport(t, &index(&tp, i), Worker::Proxy(p), d);
    }

    let cp = join(path, "connections");
    if p.connections.is_empty() {
        if managed {
            d.warn(&cp, "no connections yet: the master must start one before sessions can be forwarded");
        } else {
            d.error(&cp, "no connections: a proxy needs at least one router connection to forward sessions to");
        }
    }
    for (name, c) in &p.connections {
        let np = join(&cp, name);
        if let Err(why) = check_uri(&c.realm, MatchPolicy::Exact) {
            d.error(join(&np, "realm"), format!("invalid realm name '{}': {why}", c.realm));
        }
        if let BackendEndpoint::Unix { path: up } = &c.endpoint {
            if up.as_os_str().len() > MAX_UNIX_PATH_LEN {
                d.error(
                    join(&join(&join(&np, "transport"), "endpoint"), "path"),
                    format!(
                        "unix socket path is {} bytes long: at most {MAX_UNIX_PATH_LEN} fit in sockaddr_un",
                        up.as_os_str().len()
                    ),
                );
            }
        }
        let used = p.routes.values().any(|roles| roles.values().any(|names| names.contains(name)));
        if !used {
            d.warn(&np, format!("connection '{name}' is not used by any route"));
        }
    }

    let rp = join(path, "routes");
    if p.routes.is_empty() {
        if managed {
            d.warn(&rp, "no routes yet: the master must start one before sessions can be forwarded");
        } else {
            d.error(
                &rp,
                "no routes: the proxy could not forward any session (e.g. {\"realm1\": {\"*\": \"router1\"}})",
            );
        }
    }
    let conn_names: Vec<&str> = p.connections.keys().map(String::as_str).collect();
    for (realm, roles) in &p.routes {
        let realm_p = join(&rp, realm);
        if let Err(why) = check_uri(realm, MatchPolicy::Exact) {
            d.error(&realm_p, format!("invalid realm name '{realm}': {why}"));
        }
        if roles.is_empty() {
            d.error(&realm_p, format!("realm '{realm}' has no routes: map authroles (or \"*\") to connections"));
        }
        for (role, names) in roles {
            let role_p = join(&realm_p, role);
            if role.is_empty() {
                d.error(&role_p, "role name must not be empty (use \"*\" for any role)");
            } else if role.chars().any(char::is_whitespace) {
                d.error(&role_p, format!("invalid role name '{role}': contains whitespace"));
            }
            if names.is_empty() {
                d.error(&role_p, "no connections listed: name at least one");
            }
            for (i, name) in names.iter().enumerate() {
                // A single name is written without a list.
                let at = if names.len() == 1 { role_p.clone() } else { index(&role_p, i) };
                if names[..i].contains(name) {
                    d.warn(&at, format!("connection '{name}' is listed more than once"));
                    continue;
                }
                match p.connections.get(name) {
                    None => d.error(
                        &at,
                        format!(
                            "unknown connection '{name}': not in this worker's 'connections'{}",
                            crate::parse::suggest(name, &conn_names)
                        ),
                    ),
                    Some(c) if &c.realm != realm => d.error(
                        &at,
                        format!(
                            "connection '{name}' serves realm '{}', not '{realm}': a route may only use connections of its realm",
                            c.realm
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
    }
}

/// Warns when a proxy connection points at a router transport of this node
/// (loopback or local unix path) that cannot take proxy links.
fn check_local_backends(cfg: &NodeConfig, d: &mut Diags) {
    for (pi, p) in cfg.proxies() {
        for (name, c) in &p.connections {
            let target =
                cfg.routers().flat_map(|(ri, r)| r.transports.iter().enumerate().map(move |(ti, t)| (ri, ti, t)));
            for (ri, ti, t) in target {
                let same = match (&c.endpoint, &t.endpoint) {
                    (BackendEndpoint::Tcp { host, port, .. }, Endpoint::Tcp { interface, port: lp, .. }) => {
                        let local = host == "localhost"
                            || host.parse::<std::net::IpAddr>().is_ok_and(|a| a.is_loopback() || a == *interface);
                        port == lp && local && (interface.is_unspecified() || interface.is_loopback())
                    }
                    (BackendEndpoint::Unix { path }, Endpoint::Unix { path: lp, .. }) => path == lp,
                    _ => false,
                };
                if !same {
                    continue;
                }
                let at = join(&join(&index("workers", pi), "connections"), name);
                let router_t = index(&join(&index("workers", ri), "transports"), ti);
                match &t.kind {
                    // Same node: the router trusts the node key on every
                    // rawsocket transport, with or without principals.
                    TransportKind::RawSocket(_) => {}
                    _ => d.warn(
                        at,
                        format!("connection '{name}' goes to {router_t}, which is not a rawsocket transport: the proxy link will fail"),
                    ),
                }
            }
        }
    }
}

/// One listening endpoint of some worker.
struct Listener<'a> {
    at: String,
    endpoint: &'a Endpoint,
    worker: usize,
    proxy: bool,
    kind: &'a TransportKind,
}

impl Listener<'_> {
    fn shared(&self) -> bool {
        matches!(self.endpoint, Endpoint::Tcp { shared: true, .. })
    }

    fn tls(&self) -> Option<&TlsConfig> {
        match self.endpoint {
            Endpoint::Tcp { tls, .. } => tls.as_ref(),
            Endpoint::Unix { .. } => None,
        }
    }
}

/// Two transports may not listen on the same address, in one worker or
/// across workers, unless both belong to (different) proxy workers and both
/// set `shared: true` (`SO_REUSEPORT`), with alike transports.
fn check_listen_conflicts(cfg: &NodeConfig, d: &mut Diags) {
    let mut seen: Vec<Listener<'_>> = Vec::new();
    for (wi, w) in cfg.workers.iter().enumerate() {
        let (transports, proxy) = match w {
            WorkerConfig::Router(r) => (&r.transports, false),
            WorkerConfig::Proxy(p) => (&p.transports, true),
            WorkerConfig::Unsupported { .. } => continue,
        };
        let tp = join(&index("workers", wi), "transports");
        for (ti, t) in transports.iter().enumerate() {
            let me = Listener { at: index(&tp, ti), endpoint: &t.endpoint, worker: wi, proxy, kind: &t.kind };
            let key = match t.endpoint {
                Endpoint::Tcp { .. } => "port",
                Endpoint::Unix { .. } => "path",
            };
            let loc = join(&join(&me.at, "endpoint"), key);
            for other in &seen {
                if !endpoints_conflict(other.endpoint, me.endpoint) {
                    continue;
                }
                let sharing = me.proxy && other.proxy && me.shared() && other.shared();
                if sharing && me.worker != other.worker {
                    if me.kind != other.kind || me.tls() != other.tls() {
                        d.error(
                            &loc,
                            format!(
                                "shared endpoint {} is also used by {}, configured differently: connections are spread over every process on a shared port, so their transports (type, paths, serializers, options, auth, TLS) must be alike",
                                me.endpoint, other.at
                            ),
                        );
                        break;
                    }
                    continue;
                }
                let hint = if sharing {
                    " (two transports of one worker cannot share a port)"
                } else if me.proxy && other.proxy {
                    " (proxy workers may share a port when each of them sets 'shared': true)"
                } else {
                    ""
                };
                d.error(
                    &loc,
                    format!("endpoint {} conflicts with {} of {}{hint}", me.endpoint, other.endpoint, other.at),
                );
                break;
            }
            seen.push(me);
        }
    }
}

fn endpoints_conflict(a: &Endpoint, b: &Endpoint) -> bool {
    match (a, b) {
        (Endpoint::Tcp { interface: ia, port: pa, .. }, Endpoint::Tcp { interface: ib, port: pb, .. }) => {
            *pa != 0 && pa == pb && (ia == ib || ia.is_unspecified() || ib.is_unspecified())
        }
        (Endpoint::Unix { path: pa, .. }, Endpoint::Unix { path: pb, .. }) => !pa.as_os_str().is_empty() && pa == pb,
        _ => false,
    }
}

fn check_realm(realm: &RealmConfig, path: &str, shards: Option<usize>, d: &mut Diags) {
    if let Err(why) = check_uri(&realm.name, MatchPolicy::Exact) {
        d.error(join(path, "name"), format!("invalid realm name '{}': {why}", realm.name));
    } else if realm.name.len() > 255 {
        d.error(join(path, "name"), "realm name is longer than 255 bytes");
    }
    let op = join(path, "options");
    if let (Some(home), Some(n)) = (realm.options.home_shard, shards) {
        if home >= n {
            d.error(
                join(&op, "home_shard"),
                format!("home_shard {home} does not exist: the worker has {n} shard(s), numbered from 0"),
            );
        }
    }
    if realm.options.max_sessions == 0 {
        d.error(join(&op, "max_sessions"), "max_sessions must be at least 1");
    }
    let dl = &realm.options.dealer;
    if dl.max_pending_calls_per_session == 0 {
        d.error(join(&op, "max_pending_calls_per_session"), "max_pending_calls_per_session must be at least 1");
    }
    if let (Some(def), Some(max)) = (dl.default_call_timeout, dl.max_call_timeout) {
        if def > max {
            d.warn(
                join(&op, "default_call_timeout"),
                format!(
                    "default_call_timeout ({} ms) is longer than max_call_timeout ({} ms): calls are cut off at max_call_timeout",
                    def.as_millis(),
                    max.as_millis()
                ),
            );
        }
    }
    if let Some(store) = &realm.store {
        check_store(store, &join(path, "store"), d);
    }
    let rp = join(path, "roles");
    if realm.roles.is_empty() {
        d.error(&rp, format!("realm '{}' has no roles: no session could ever be authorized on it", realm.name));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, role) in realm.roles.iter().enumerate() {
        let p = index(&rp, i);
        if role.name.is_empty() {
            d.error(join(&p, "name"), "role name must not be empty");
        } else if role.name.chars().any(char::is_whitespace) {
            d.error(join(&p, "name"), format!("invalid role name '{}': contains whitespace", role.name));
        } else if let Some(first) = names.get(role.name.as_str()) {
            d.error(
                join(&p, "name"),
                format!(
                    "duplicate role name '{}' in realm '{}' (also at {})",
                    role.name,
                    realm.name,
                    index(&rp, *first)
                ),
            );
        } else {
            names.insert(&role.name, i);
        }
        check_role(role, &p, d);
    }
}

fn check_store(store: &StoreConfig, path: &str, d: &mut Diags) {
    let range = 1..=MAX_EVENT_HISTORY_LIMIT;
    if !range.contains(&store.limit) {
        d.error(
            join(path, "limit"),
            format!("limit {} is out of range: must be between 1 and {MAX_EVENT_HISTORY_LIMIT}", store.limit),
        );
    }
    let ep = join(path, "event-history");
    let mut seen: HashMap<(&str, MatchPolicy), usize> = HashMap::new();
    for (i, h) in store.event_history.iter().enumerate() {
        let at = index(&ep, i);
        if let Err(why) = check_uri(&h.uri, h.match_policy) {
            d.error(
                join(&at, "uri"),
                format!("invalid topic '{}' for match '{}': {why}", h.uri, h.match_policy.name()),
            );
        }
        // An entry without its own limit inherits the store's, which is
        // reported above.
        if !range.contains(&h.limit) && (h.limit != store.limit || range.contains(&store.limit)) {
            d.error(
                join(&at, "limit"),
                format!("limit {} is out of range: must be between 1 and {MAX_EVENT_HISTORY_LIMIT}", h.limit),
            );
        }
        if let Some(first) = seen.get(&(h.uri.as_str(), h.match_policy)) {
            d.error(
                join(&at, "uri"),
                format!(
                    "duplicate event-history entry for '{}' with match '{}' (also at {})",
                    h.uri,
                    h.match_policy.name(),
                    index(&ep, *first)
                ),
            );
        } else {
            seen.insert((h.uri.as_str(), h.match_policy), i);
        }
    }
}

fn check_role(role: &RoleConfig, path: &str, d: &mut Diags) {
    if role.authorizer.is_some() {
        d.error(join(path, "authorizer"), "dynamic authorizers are not supported yet: list static 'permissions'");
    } else if role.permissions.is_empty() {
        d.warn(
            join(path, "permissions"),
            format!("role '{}' has no permissions: its sessions can do nothing", role.name),
        );
    }
    let pp = join(path, "permissions");
    let mut seen: HashMap<(&str, MatchPolicy), usize> = HashMap::new();
    for (i, p) in role.permissions.iter().enumerate() {
        let at = index(&pp, i);
        if let Err(why) = check_uri(&p.uri, p.match_policy) {
            d.error(join(&at, "uri"), format!("invalid URI '{}' for match '{}': {why}", p.uri, p.match_policy.name()));
        }
        if let Some(first) = seen.get(&(p.uri.as_str(), p.match_policy)) {
            d.error(
                join(&at, "uri"),
                format!(
                    "duplicate permission for uri '{}' with match '{}' (also at {})",
                    p.uri,
                    p.match_policy.name(),
                    index(&pp, *first)
                ),
            );
        } else {
            seen.insert((p.uri.as_str(), p.match_policy), i);
        }
    }
}

/// Loose WAMP URI rules: components separated by `.`, containing no
/// whitespace and no `#`. Exact URIs have no empty components; a prefix may be
/// empty or end in `.`; a wildcard pattern may have empty components (but is
/// not empty).
pub(crate) fn check_uri(uri: &str, policy: MatchPolicy) -> Result<(), String> {
    if uri.chars().any(|c| c.is_whitespace() || c == '#') {
        return Err("URIs must not contain whitespace or '#'".to_string());
    }
    match policy {
        MatchPolicy::Exact => {
            if uri.is_empty() {
                return Err("must not be empty (use match 'prefix' with uri \"\" to match everything)".to_string());
            }
            if uri.split('.').any(str::is_empty) {
                return Err("empty URI component (leading, trailing or double '.')".to_string());
            }
        }
        MatchPolicy::Prefix => {
            if uri.is_empty() {
                return Ok(());
            }
            let comps: Vec<&str> = uri.split('.').collect();
            let last = comps.len() - 1;
            if comps.iter().enumerate().any(|(i, c)| c.is_empty() && i != last) {
                return Err("empty URI component (leading or double '.')".to_string());
            }
        }
        MatchPolicy::Wildcard => {
            if uri.is_empty() {
                return Err("must not be empty (use match 'prefix' with uri \"\" to match everything)".to_string());
            }
        }
    }
    Ok(())
}

fn check_transport(t: &TransportConfig, path: &str, r: Worker<'_>, d: &mut Diags) {
    match &t.endpoint {
        Endpoint::Tcp { port, portrange, backlog, .. } => {
            let ep = join(path, "endpoint");
            if *port == 0 && portrange.is_none() {
                d.error(join(&ep, "port"), "port 0 is out of range: must be between 1 and 65535");
            }
            check_backlog(*backlog, &ep, d);
        }
        Endpoint::Unix { path: p, backlog } => {
            let ep = join(path, "endpoint");
            let len = p.as_os_str().len();
            if len == 0 {
                d.error(join(&ep, "path"), "unix socket path must not be empty");
            } else if len > MAX_UNIX_PATH_LEN {
                d.error(
                    join(&ep, "path"),
                    format!("unix socket path is {len} bytes long: at most {MAX_UNIX_PATH_LEN} fit in sockaddr_un"),
                );
            }
            check_backlog(*backlog, &ep, d);
        }
    }
    let op = join(path, "options");
    let lim = &t.limits;
    if lim.max_connections == 0 {
        d.error(join(&op, "max_connections"), "max_connections must be at least 1");
    }
    if lim.max_outbound_messages == 0 {
        d.error(join(&op, "max_outbound_messages"), "max_outbound_messages must be at least 1");
    }
    let biggest = t.max_message_size();
    if lim.max_outbound_bytes < biggest {
        d.error(
            join(&op, "max_outbound_bytes"),
            format!(
                "max_outbound_bytes ({}) is smaller than this transport's max_message_size ({biggest}): a maximal message could never be queued",
                lim.max_outbound_bytes
            ),
        );
    }
    match &t.kind {
        TransportKind::WebSocket(ws) => check_ws_service(ws, path, r, endpoint_tls(t), d),
        TransportKind::RawSocket(rs) => {
            check_serializers(&rs.serializers, path, d);
            if let Some(why) = rawsocket_size_problem(rs.options.max_message_size) {
                d.error(join(path, "max_message_size"), why);
            }
            if rs.options.handshake_timeout.is_zero() {
                d.error(join(&op, "handshake_timeout"), "handshake_timeout must be greater than 0");
            }
            if rs.options.auto_ping_timeout.is_some() && rs.options.auto_ping_interval.is_none() {
                d.warn(join(&op, "auto_ping_timeout"), "auto_ping_timeout has no effect without auto_ping_interval");
            }
            check_auth(&rs.auth, path, r, endpoint_tls(t), true, d);
        }
        TransportKind::Web(web) => {
            let pp = join(path, "paths");
            if web.paths.is_empty() {
                d.error(&pp, "no paths: add e.g. {\"ws\": {\"type\": \"websocket\"}}");
            }
            for (key, svc) in &web.paths {
                let sp = join(&pp, key);
                let valid_key = key == "/"
                    || (!key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || "-_.~".contains(c)));
                if !valid_key {
                    d.error(
                        &sp,
                        format!("invalid path '{key}': use '/' for the root or a single path segment such as 'ws' (no slashes)"),
                    );
                }
                match svc {
                    WebService::WebSocket(ws) => check_ws_service(ws, &sp, r, endpoint_tls(t), d),
                    WebService::Static(_) | WebService::Json(_) | WebService::NodeInfo | WebService::Metrics => {}
                    WebService::Redirect(rd) => {
                        let visible = rd.url.bytes().all(|b| (0x21..0x7f).contains(&b));
                        if rd.url.is_empty() {
                            d.error(join(&sp, "url"), "url must not be empty");
                        } else if !visible {
                            d.error(
                                join(&sp, "url"),
                                "invalid url: only visible ASCII is allowed (percent-encode spaces and other characters)",
                            );
                        }
                        if !REDIRECT_STATUSES.contains(&rd.status) {
                            d.error(
                                join(&join(&sp, "options"), "status"),
                                format!("invalid redirect status {}: expected 301, 302, 303, 307 or 308", rd.status),
                            );
                        }
                    }
                    WebService::Other { kind } => d.error(
                        join(&sp, "type"),
                        format!("web service '{kind}' is not supported by this version of Junction (use websocket, static, redirect, json, nodeinfo or metrics)"),
                    ),
                }
            }
        }
        TransportKind::Unsupported { kind } => d.error(
            join(path, "type"),
            format!(
                "transport type {kind} is not supported by this version of Junction (use websocket, rawsocket or web)"
            ),
        ),
    }
}

/// Why `n` is not a valid RawSocket `max_message_size`, if it is not.
pub(crate) fn rawsocket_size_problem(n: usize) -> Option<String> {
    if (MIN_MESSAGE_SIZE..=MAX_RAWSOCKET_MESSAGE_SIZE).contains(&n) {
        None
    } else {
        Some(format!("max_message_size {n} is out of range for RawSocket: must be between {MIN_MESSAGE_SIZE} and {MAX_RAWSOCKET_MESSAGE_SIZE} (16 MiB)"))
    }
}

fn check_backlog(backlog: u32, ep: &str, d: &mut Diags) {
    if !(1..=65535).contains(&backlog) {
        d.error(join(ep, "backlog"), format!("backlog {backlog} is out of range: must be between 1 and 65535"));
    }
}

fn endpoint_tls(t: &TransportConfig) -> Option<&TlsConfig> {
    match &t.endpoint {
        Endpoint::Tcp { tls, .. } => tls.as_ref(),
        Endpoint::Unix { .. } => None,
    }
}

fn check_ws_service(ws: &WebSocketService, path: &str, r: Worker<'_>, tls: Option<&TlsConfig>, d: &mut Diags) {
    check_serializers(&ws.serializers, path, d);
    if let Some(url) = &ws.url {
        if !(url.starts_with("ws://") || url.starts_with("wss://")) {
            d.error(join(path, "url"), format!("invalid url '{url}': must start with ws:// or wss://"));
        }
    }
    let op = join(path, "options");
    let o = &ws.options;
    for (key, n) in [("max_frame_size", o.max_frame_size), ("max_message_size", o.max_message_size)] {
        if !(MIN_MESSAGE_SIZE..=MAX_WEBSOCKET_MESSAGE_SIZE).contains(&n) {
            d.error(
                join(&op, key),
                format!("{key} {n} is out of range: must be between {MIN_MESSAGE_SIZE} and {MAX_WEBSOCKET_MESSAGE_SIZE} (64 MiB)"),
            );
        }
    }
    if !(4..=125).contains(&o.auto_ping_size) {
        d.error(
            join(&op, "auto_ping_size"),
            format!("auto_ping_size {} is out of range: must be between 4 and 125", o.auto_ping_size),
        );
    }
    if o.open_handshake_timeout.is_zero() {
        d.error(
            join(&op, "open_handshake_timeout"),
            "open_handshake_timeout must be greater than 0 (Junction always bounds the handshake)",
        );
    }
    if o.auto_ping_timeout.is_some() && o.auto_ping_interval.is_none() {
        d.warn(join(&op, "auto_ping_timeout"), "auto_ping_timeout has no effect without auto_ping_interval");
    }
    for (i, origin) in o.allowed_origins.iter().enumerate() {
        if origin.is_empty() {
            d.error(index(&join(&op, "allowed_origins"), i), "origin pattern must not be empty");
        }
    }
    check_auth(&ws.auth, path, r, tls, false, d);
}

fn check_serializers(list: &[Serializer], path: &str, d: &mut Diags) {
    let sp = join(path, "serializers");
    if list.is_empty() {
        d.error(&sp, "at least one serializer is required");
    }
    for (i, s) in list.iter().enumerate() {
        if list[..i].contains(s) {
            d.error(&sp, format!("serializer '{s}' is listed more than once"));
        }
    }
}

/// `rawsocket`: the transport is a RawSocket one (where `cryptosign-proxy`
/// may be configured).
fn check_auth(
    auth: &TransportAuth,
    path: &str,
    r: Worker<'_>,
    tls: Option<&TlsConfig>,
    rawsocket: bool,
    d: &mut Diags,
) {
    let ap = join(path, "auth");
    if auth.methods.is_empty() {
        d.error(&ap, "no authentication methods: no session could join through this transport");
    }
    let op = join(&ap, "options");
    let o = &auth.options;
    if o.challenge_timeout.is_zero() {
        d.error(join(&op, "challenge_timeout"), "challenge_timeout must be greater than 0");
    }
    if o.max_failures == 0 {
        d.error(join(&op, "max_failures"), "max_failures must be at least 1");
    }
    if o.failure_window.is_zero() {
        d.error(join(&op, "failure_window"), "failure_window must be greater than 0");
    }
    if o.max_tracked_peers == 0 {
        d.error(join(&op, "max_tracked_peers"), "max_tracked_peers must be at least 1");
    }
    for m in &auth.methods {
        let mp = join(&ap, m.name());
        match m {
            AuthMethod::Anonymous { role, realm, .. } => {
                check_principal_role(role, realm.as_deref(), &mp, "anonymous sessions", r, d);
            }
            AuthMethod::AnonymousDynamic(dy) => check_dynamic(dy, &mp, r, d),
            AuthMethod::Ticket(p) => check_provider(p, &mp, r, d, |t| (&t.role, &t.realm)),
            AuthMethod::WampCra(p) => check_provider(p, &mp, r, d, |t| (&t.role, &t.realm)),
            AuthMethod::Scram(p) => check_provider(p, &mp, r, d, |t| (&t.role, &t.realm)),
            AuthMethod::Cryptosign(p) => {
                check_provider(p, &mp, r, d, |t| (&t.role, &t.realm));
                if let AuthProvider::Static(principals) = p {
                    let mut seen: HashMap<&str, &str> = HashMap::new();
                    for (authid, pr) in principals {
                        for k in &pr.authorized_keys {
                            if let Some(other) = seen.insert(k, authid) {
                                if other != authid {
                                    d.warn(
                                        join(&join(&mp, "principals"), authid),
                                        format!("public key {k} is also authorized for '{other}': clients using it must send their authid"),
                                    );
                                }
                            }
                        }
                    }
                }
            }
            AuthMethod::Tls(p) => {
                check_provider(p, &mp, r, d, |t| (&t.role, &t.realm));
                match tls {
                    None => {
                        d.error(&mp, "tls authentication needs a TLS endpoint ('endpoint.tls' with 'ca_certificates')")
                    }
                    Some(t) if t.ca_certificates.is_empty() => d.error(
                        &mp,
                        "tls authentication needs client certificates: add 'ca_certificates' to 'endpoint.tls'",
                    ),
                    Some(_) => {}
                }
            }
            AuthMethod::CryptosignProxy { principals } => match r {
                Worker::Proxy(_) => d.error(
                    &mp,
                    "cryptosign-proxy authenticates proxy workers to routers: it belongs on a router's rawsocket transport, not on a proxy's transports",
                ),
                Worker::Router(_) if !rawsocket => d.error(
                    &mp,
                    "cryptosign-proxy is only accepted on rawsocket transports: Junction's proxy-to-router link is RawSocket",
                ),
                Worker::Router(_) => {
                    if principals.is_empty() {
                        d.warn(join(&mp, "principals"), "no principals: only proxy workers of this node (holding its node key) can open links to this transport");
                    }
                }
            },
            AuthMethod::Unsupported { method, kind } => {
                let what = match kind.as_deref() {
                    Some(k) => format!("{method} ({k})"),
                    None => method.clone(),
                };
                d.error(
                    join(&ap, method.split(' ').next().unwrap_or(method)),
                    format!("authentication method {what} is not supported by this version of Junction"),
                );
            }
        }
    }
}

fn check_provider<P>(
    p: &AuthProvider<P>,
    mp: &str,
    r: Worker<'_>,
    d: &mut Diags,
    role_of: impl Fn(&P) -> (&String, &Option<String>),
) {
    match p {
        AuthProvider::Dynamic(dy) => check_dynamic(dy, mp, r, d),
        AuthProvider::Static(principals) => {
            let key = if mp.ends_with("wampcra") { "users" } else { "principals" };
            let pp = join(mp, key);
            if principals.is_empty() {
                d.warn(&pp, "no principals: nobody can authenticate with this method");
            }
            for (authid, pr) in principals {
                let (role, realm) = role_of(pr);
                check_principal_role(
                    role,
                    realm.as_deref(),
                    &join(&pp, authid),
                    &format!("principal '{authid}'"),
                    r,
                    d,
                );
            }
        }
    }
}

/// Warns when `role` is defined nowhere it could be used.
fn check_principal_role(role: &str, realm: Option<&str>, path: &str, who: &str, r: Worker<'_>, d: &mut Diags) {
    if !r.knows_realms() {
        return;
    }
    if let Some(realm) = realm {
        if !r.has_realm(realm) {
            d.warn(join(path, "realm"), format!("realm '{realm}' {}: {who} will be refused", r.realm_missing()));
        } else if !r.realm_has_role(realm, role) {
            d.warn(
                join(path, "role"),
                format!("role '{role}' {} realm '{realm}': {who} will be refused", r.role_missing()),
            );
        }
        return;
    }
    if !r.any_realm_has_role(role) {
        d.warn(join(path, "role"), format!("role '{role}' {} any realm: {who} will be refused", r.role_missing()));
    }
}

fn check_dynamic(dy: &DynamicAuthenticator, mp: &str, r: Worker<'_>, d: &mut Diags) {
    if let Err(why) = check_uri(&dy.authenticator, MatchPolicy::Exact) {
        d.error(join(mp, "authenticator"), format!("invalid authenticator URI '{}': {why}", dy.authenticator));
    }
    if let Some(realm) = &dy.authenticator_realm {
        if !r.has_realm(realm) {
            let what = match r {
                Worker::Router(_) => "is not a configured realm",
                Worker::Proxy(_) => "has no route on this proxy",
            };
            d.error(join(mp, "authenticator-realm"), format!("authenticator-realm '{realm}' {what}"));
        } else if let Some(role) = &dy.authenticator_role {
            if !r.realm_has_role(realm, role) {
                d.error(
                    join(mp, "authenticator-role"),
                    format!("authenticator-role '{role}' {} realm '{realm}'", r.role_missing()),
                );
            }
        }
    }
}
