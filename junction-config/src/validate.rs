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
    if cfg.workers.is_empty() {
        d.error("workers", "no workers: exactly one router worker is required");
    }
    let mut routers = 0usize;
    for (i, w) in cfg.workers.iter().enumerate() {
        let wp = index("workers", i);
        match w {
            WorkerConfig::Router(r) => {
                routers += 1;
                if routers > 1 {
                    d.error(
                        join(&wp, "type"),
                        "more than one router worker is not supported in this version of Junction: use one router worker (it scales over cores with options.shards)",
                    );
                }
                check_router(r, &wp, d);
            }
            WorkerConfig::Proxy(_) => {
                d.error(join(&wp, "type"), "worker type proxy is not supported yet by this version of Junction")
            }
            WorkerConfig::Unsupported { kind } => {
                d.error(join(&wp, "type"), format!("worker type {kind} is not supported by this version of Junction"))
            }
        }
    }
    if routers == 0 && !cfg.workers.is_empty() {
        d.error("workers", "no router worker: exactly one is required");
    }
}

fn check_router(r: &RouterWorkerConfig, path: &str, d: &mut Diags) {
    let op = join(path, "options");
    if let Some(n) = r.options.shards {
        if n == 0 || n > MAX_SHARDS {
            d.error(
                join(&op, "shards"),
                format!("shards must be between 1 and {MAX_SHARDS} (got {n}); omit it to use one shard per core"),
            );
        }
    }

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
        d.error(&tp, "no transports: a router without transports cannot be reached");
    }
    for (i, t) in r.transports.iter().enumerate() {
        let p = index(&tp, i);
        check_transport(t, &p, r, d);
        for (j, earlier) in r.transports[..i].iter().enumerate() {
            if endpoints_conflict(&earlier.endpoint, &t.endpoint) {
                let at = match t.endpoint {
                    Endpoint::Tcp { .. } => "port",
                    Endpoint::Unix { .. } => "path",
                };
                d.error(
                    join(&join(&p, "endpoint"), at),
                    format!("endpoint {} conflicts with {} of {}", t.endpoint, earlier.endpoint, index(&tp, j)),
                );
                break;
            }
        }
    }
}

fn endpoints_conflict(a: &Endpoint, b: &Endpoint) -> bool {
    match (a, b) {
        (Endpoint::Tcp { interface: ia, port: pa, .. }, Endpoint::Tcp { interface: ib, port: pb, .. }) => {
            pa == pb && (ia == ib || ia.is_unspecified() || ib.is_unspecified())
        }
        (Endpoint::Unix { path: pa, .. }, Endpoint::Unix { path: pb, .. }) => pa == pb,
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

fn check_transport(t: &TransportConfig, path: &str, r: &RouterWorkerConfig, d: &mut Diags) {
    match &t.endpoint {
        Endpoint::Tcp { port, backlog, .. } => {
            let ep = join(path, "endpoint");
            if *port == 0 {
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
            check_auth(&rs.auth, path, r, endpoint_tls(t), d);
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
                    WebService::Other { kind } => d.error(
                        join(&sp, "type"),
                        format!("web service '{kind}' is not supported on router workers in this version of Junction (only 'websocket')"),
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

fn check_ws_service(ws: &WebSocketService, path: &str, r: &RouterWorkerConfig, tls: Option<&TlsConfig>, d: &mut Diags) {
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
    check_auth(&ws.auth, path, r, tls, d);
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

fn check_auth(auth: &TransportAuth, path: &str, r: &RouterWorkerConfig, tls: Option<&TlsConfig>, d: &mut Diags) {
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
    r: &RouterWorkerConfig,
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
fn check_principal_role(role: &str, realm: Option<&str>, path: &str, who: &str, r: &RouterWorkerConfig, d: &mut Diags) {
    if r.realms.is_empty() {
        return;
    }
    if let Some(realm) = realm {
        match r.realms.iter().find(|x| x.name == realm) {
            None => {
                d.warn(join(path, "realm"), format!("realm '{realm}' is not configured: {who} will be refused"));
                return;
            }
            Some(x) if x.role(role).is_none() => {
                d.warn(
                    join(path, "role"),
                    format!("role '{role}' is not defined on realm '{realm}': {who} will be refused"),
                );
                return;
            }
            Some(_) => return,
        }
    }
    if !r.realms.iter().any(|x| x.role(role).is_some()) {
        d.warn(join(path, "role"), format!("role '{role}' is not defined on any realm: {who} will be refused"));
    }
}

fn check_dynamic(dy: &DynamicAuthenticator, mp: &str, r: &RouterWorkerConfig, d: &mut Diags) {
    if let Err(why) = check_uri(&dy.authenticator, MatchPolicy::Exact) {
        d.error(join(mp, "authenticator"), format!("invalid authenticator URI '{}': {why}", dy.authenticator));
    }
    if let Some(realm) = &dy.authenticator_realm {
        if !r.realms.iter().any(|x| &x.name == realm) {
            d.error(
                join(mp, "authenticator-realm"),
                format!("authenticator-realm '{realm}' is not a configured realm"),
            );
        } else if let Some(role) = &dy.authenticator_role {
            let has = r.realms.iter().any(|x| &x.name == realm && x.role(role).is_some());
            if !has {
                d.error(
                    join(mp, "authenticator-role"),
                    format!("authenticator-role '{role}' is not defined on realm '{realm}'"),
                );
            }
        }
    }
}
