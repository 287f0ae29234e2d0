//! Turning a validated node config into a [`RouterSetup`].

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use junction_config::{
    Endpoint, MatchPolicy as CfgMatch, NodeConfig, RawSocketTransport, RealmConfig, RouterWorkerConfig,
    TransportConfig, TransportKind, WebService, WebSocketService,
};

use super::setup::{
    ConnectionLimits, EndpointSetup, FramingSetup, RawSocketSetup, RealmSetup, RouterSetup, SlowConsumerPolicy,
    TransportSetup, WsServiceSetup,
};
use crate::engine::{Allow, BrokerSpec, DealerConfig, Disclose, HistorySpec, MatchPolicy, Permission, Role};
use crate::RouterError;

/// Locked memory glommio reserves per shard for its I/O buffers. Junction's
/// network I/O does not use them, so this is kept small (see
/// docs/architecture.md, "locked memory").
pub const DEFAULT_IO_MEMORY: usize = 512 * 1024;

/// Largest HTTP request head accepted in a WebSocket upgrade.
pub const MAX_HANDSHAKE_SIZE: usize = 16 * 1024;

/// Without auto-ping configured, a peer still has this long to answer a ping
/// we never send; kept for completeness of the setup.
const NO_PING_TIMEOUT: Duration = Duration::from_secs(3600);

/// Builds the router worker's setup from a validated config.
pub fn setup_from_config(cfg: &NodeConfig) -> Result<RouterSetup, RouterError> {
    let worker = cfg.router().ok_or_else(|| RouterError::Setup("the configuration has no router worker".into()))?;
    setup_from_worker(worker)
}

/// Builds the setup of one router worker.
pub fn setup_from_worker(w: &RouterWorkerConfig) -> Result<RouterSetup, RouterError> {
    setup_from_worker_in(w, Path::new("."))
}

/// The setup of one realm of a router worker called `worker_name` (its
/// `rlinks` resolve relative paths against `base_dir`). Also used for
/// realms started at run time.
pub fn realm_setup(r: &RealmConfig, worker_name: &str, base_dir: &Path) -> Result<RealmSetup, RouterError> {
    let rlinks = r.rlinks.iter().map(|l| rlink_setup(l, worker_name, base_dir)).collect::<Result<Vec<_>, _>>()?;
    Ok(RealmSetup {
        name: r.name.clone(),
        rlinks,
        home_shard: r.options.home_shard,
        max_sessions: r.options.max_sessions,
        enable_meta_api: r.options.enable_meta_api,
        dealer: DealerConfig {
            max_pending_calls_per_session: r.options.dealer.max_pending_calls_per_session,
            default_call_timeout: r.options.dealer.default_call_timeout,
            max_call_timeout: r.options.dealer.max_call_timeout,
            kill_grace: r.options.dealer.kill_grace,
        },
        broker: BrokerSpec {
            max_retained_topics: r.options.broker.max_retained_topics,
            max_stored_payload: r.options.broker.max_stored_payload,
            history: r
                .store
                .iter()
                .flat_map(|st| &st.event_history)
                .map(|h| HistorySpec { uri: h.uri.clone(), match_policy: match_policy(h.match_policy), limit: h.limit })
                .collect(),
        },
        roles: r.roles.iter().map(role_from_config).collect(),
    })
}

/// The engine's form of a configured role.
pub fn role_from_config(role: &junction_config::RoleConfig) -> Role {
    Role {
        name: role.name.clone(),
        permissions: role
            .permissions
            .iter()
            .map(|p| Permission {
                uri: p.uri.clone(),
                match_policy: match_policy(p.match_policy),
                allow: Allow {
                    call: p.allow.call,
                    register: p.allow.register,
                    publish: p.allow.publish,
                    subscribe: p.allow.subscribe,
                },
                disclose: Disclose { caller: p.disclose.caller, publisher: p.disclose.publisher },
            })
            .collect(),
    }
}

/// The node keys of a RawSocket transport's `cryptosign-proxy` principals.
pub fn transport_proxy_keys(t: &TransportConfig) -> Result<Vec<[u8; 32]>, RouterError> {
    let mut out = Vec::new();
    if let TransportKind::RawSocket(rs) = &t.kind {
        for keys in rs.auth.proxy_principals().into_iter().flat_map(|p| p.values()) {
            for k in keys {
                let key = wamp_framing::link::parse_hex32(k)
                    .ok_or_else(|| RouterError::Setup(format!("cryptosign-proxy key '{k}' is not 64 hex digits")))?;
                if !out.contains(&key) {
                    out.push(key);
                }
            }
        }
    }
    Ok(out)
}

/// Builds the setup of one router worker; relative paths (static web
/// directories) resolve against `base_dir` (the config file's directory).
pub fn setup_from_worker_in(w: &RouterWorkerConfig, base_dir: &Path) -> Result<RouterSetup, RouterError> {
    let worker_name = w.id.clone().unwrap_or_else(|| "router".to_owned());
    let realms = w.realms.iter().map(|r| realm_setup(r, &worker_name, base_dir)).collect::<Result<Vec<_>, _>>()?;
    // Keys the mock challenges for unknown authids (so a HELLO does not
    // reveal which accounts exist); fresh per process.
    let secret: [u8; 32] = rand::random();
    let transports = w
        .transports
        .iter()
        .enumerate()
        .map(|(i, t)| transport_setup(i, t, secret, base_dir))
        .collect::<Result<Vec<_>, _>>()?;
    // Proxies allowed to open links: keys of `cryptosign-proxy` principals
    // (the runtime adds the node's own key).
    let mut trusted_proxy_keys = Vec::new();
    for t in &w.transports {
        for key in transport_proxy_keys(t)? {
            if !trusted_proxy_keys.contains(&key) {
                trusted_proxy_keys.push(key);
            }
        }
    }
    Ok(RouterSetup {
        shards: w.options.effective_shards(),
        pin_cores: w.options.pin_cores,
        io_memory: DEFAULT_IO_MEMORY,
        realms,
        transports,
        trusted_proxy_keys,
        node_key: None,
        name: worker_name,
    })
}

/// Where a dialed link goes, and its TLS (paths relative to `base_dir`).
pub fn dial_target(
    ep: &junction_config::BackendEndpoint,
    base_dir: &Path,
) -> Result<(super::dial::DialAddr, Option<super::dial::DialTls>), RouterError> {
    use super::dial::DialAddr;
    let abs = |p: &std::path::PathBuf| if p.is_absolute() { p.clone() } else { base_dir.join(p) };
    Ok(match ep {
        junction_config::BackendEndpoint::Tcp { host, port, tls } => {
            let tls = match tls {
                Some(t) => {
                    let files = super::tls::ClientTlsFiles {
                        ca_certificates: t.ca_certificates.iter().map(abs).collect(),
                        client_cert: t.client_cert.as_ref().map(|(c, k)| (abs(c), abs(k))),
                    };
                    Some((super::tls::client_config(&files)?, t.hostname.clone().unwrap_or_else(|| host.clone())))
                }
                None => None,
            };
            (DialAddr::Tcp { host: host.clone(), port: *port }, tls)
        }
        junction_config::BackendEndpoint::Unix { path } => (DialAddr::Unix(abs(path)), None),
    })
}

/// One configured router-to-router link.
pub fn rlink_setup(
    l: &junction_config::RLinkConfig,
    worker_name: &str,
    base_dir: &Path,
) -> Result<super::rlink::RLinkSetup, RouterError> {
    let (addr, tls) =
        dial_target(&l.endpoint, base_dir).map_err(|e| RouterError::Setup(format!("rlink '{}': {e}", l.id)))?;
    Ok(super::rlink::RLinkSetup {
        id: l.id.clone(),
        realm: l.realm.clone(),
        addr,
        tls,
        name: l.authid.clone().unwrap_or_else(|| worker_name.to_owned()),
        ping_interval: l.ping_interval,
        ping_timeout: l.ping_timeout,
        reconnect_max: l.reconnect_max,
        max_queue_bytes: l.max_queue_bytes,
    })
}

/// Builds the setup of one listening transport (`i` = its index, for its default id;
/// `secret` keys mock challenges for unknown authids).
pub fn transport_setup(
    i: usize,
    t: &TransportConfig,
    secret: [u8; 32],
    base_dir: &Path,
) -> Result<TransportSetup, RouterError> {
    let id = t.id.clone().unwrap_or_else(|| format!("transport{i}"));
    let endpoint = match &t.endpoint {
        Endpoint::Tcp { interface, port, portrange, backlog, shared, .. } => EndpointSetup::Tcp {
            addr: SocketAddr::new(*interface, *port),
            backlog: *backlog,
            reuse_port: *shared,
            portrange: *portrange,
        },
        Endpoint::Unix { path, .. } => EndpointSetup::Unix { path: path.clone() },
    };
    let limits = ConnectionLimits {
        max_connections: t.limits.max_connections,
        max_outbound_bytes: t.limits.max_outbound_bytes,
        max_outbound_messages: t.limits.max_outbound_messages,
        slow_consumer_policy: match t.limits.slow_consumer_policy {
            junction_config::SlowConsumerPolicy::Close => SlowConsumerPolicy::Close,
            junction_config::SlowConsumerPolicy::Drop => SlowConsumerPolicy::Drop,
        },
    };
    let mut limiter = None;
    let (framing, open_timeout) = match &t.kind {
        TransportKind::WebSocket(ws) => {
            let svc = ws_service(None, ws, secret)?;
            limiter = Some(wamp_auth::LimiterConfig::from(&ws.auth.options));
            (FramingSetup::WebSocket { services: vec![svc], site: None }, ws.options.open_handshake_timeout)
        }
        TransportKind::Web(web) => {
            let mut services = Vec::new();
            let mut timeout = Duration::ZERO;
            let mut site: Vec<(String, junction_web::Service)> = Vec::new();
            let web_err = |path: &str, e: junction_web::WebError| {
                RouterError::Setup(format!("transport {id}: web service at path '{path}': {e}"))
            };
            for (path, svc) in &web.paths {
                let mount = if path == "/" { "/".to_owned() } else { path.trim_matches('/').to_owned() };
                match svc {
                    WebService::WebSocket(ws) => {
                        let p = if path == "/" { "/".to_owned() } else { format!("/{}", path.trim_start_matches('/')) };
                        services.push(ws_service(Some(p), ws, secret)?);
                        limiter.get_or_insert_with(|| wamp_auth::LimiterConfig::from(&ws.auth.options));
                        timeout = timeout.max(ws.options.open_handshake_timeout);
                    }
                    WebService::Static(st) => {
                        let dir = if st.directory.is_absolute() {
                            st.directory.clone()
                        } else {
                            base_dir.join(&st.directory)
                        };
                        let mut svc = junction_web::StaticService::new(&dir)
                            .and_then(|s| s.with_default_file(&st.default_file))
                            .map_err(|e| web_err(path, e))?
                            .with_directory_listing(st.enable_directory_listing)
                            .with_cache_timeout(st.cache_timeout);
                        for (ext, mime) in &st.mime_types {
                            svc = svc.with_mime_type(ext, mime);
                        }
                        site.push((mount, junction_web::Service::Static(svc)));
                    }
                    WebService::Redirect(r) => {
                        let svc = junction_web::Service::redirect(&r.url, r.status).map_err(|e| web_err(path, e))?;
                        site.push((mount, svc));
                    }
                    WebService::Json(j) => {
                        let svc = junction_web::JsonService::new(
                            &j.value,
                            j.prettify,
                            j.allow_cross_origin,
                            j.discourage_caching,
                        )
                        .map_err(|e| web_err(path, e))?;
                        site.push((mount, junction_web::Service::Json(svc)));
                    }
                    WebService::NodeInfo => site.push((mount, junction_web::Service::NodeInfo)),
                    WebService::Metrics => site.push((mount, junction_web::Service::Metrics)),
                    other => {
                        return Err(RouterError::Setup(format!(
                            "transport {id}: web service type '{}' at path '{path}' is not supported yet",
                            other.type_name()
                        )))
                    }
                }
            }
            if timeout == Duration::ZERO {
                timeout = junction_config::WebSocketOptions::default().open_handshake_timeout;
            }
            let site = if site.is_empty() {
                None
            } else {
                Some(std::sync::Arc::new(junction_web::WebSite::new(site).map_err(|e| web_err("", e))?))
            };
            (FramingSetup::WebSocket { services, site }, timeout)
        }
        TransportKind::RawSocket(rs) => {
            limiter = Some(wamp_auth::LimiterConfig::from(&rs.auth.options));
            (FramingSetup::RawSocket(raw_socket(rs, secret)?), rs.options.handshake_timeout)
        }
        TransportKind::Unsupported { kind } => {
            return Err(RouterError::Setup(format!("transport {id}: type '{kind}' is not supported")))
        }
    };
    let tls = match &t.endpoint {
        Endpoint::Tcp { tls: Some(c), .. } => Some(super::tls::TlsSource::load(super::tls::TlsFiles {
            certificate: c.certificate.clone(),
            key: c.key.clone(),
            chain_certificates: c.chain_certificates.clone(),
            ca_certificates: c.ca_certificates.clone(),
            require_client_cert: c.require_client_cert,
        })?),
        _ => None,
    };
    Ok(TransportSetup {
        id,
        endpoint,
        framing,
        open_handshake_timeout: open_timeout,
        max_handshake_size: MAX_HANDSHAKE_SIZE,
        limits,
        auth_limits: limiter
            .unwrap_or_else(|| wamp_auth::LimiterConfig::from(&junction_config::AuthOptions::default())),
        tls,
    })
}

fn match_policy(m: CfgMatch) -> MatchPolicy {
    match m {
        CfgMatch::Exact => MatchPolicy::Exact,
        CfgMatch::Prefix => MatchPolicy::Prefix,
        CfgMatch::Wildcard => MatchPolicy::Wildcard,
    }
}

fn auth_config(
    auth: &junction_config::TransportAuth,
    secret: [u8; 32],
) -> Result<Arc<wamp_auth::AuthConfig>, RouterError> {
    wamp_auth::AuthConfig::from_transport_auth(auth, secret)
        .map(Arc::new)
        .map_err(|e| RouterError::Setup(format!("authentication: {e}")))
}

fn ws_service(path: Option<String>, ws: &WebSocketService, secret: [u8; 32]) -> Result<WsServiceSetup, RouterError> {
    let o = &ws.options;
    Ok(WsServiceSetup {
        path,
        serializers: ws.serializers.clone(),
        max_frame_size: o.max_frame_size,
        max_message_size: o.max_message_size,
        allowed_origins: o.allowed_origins.clone(),
        require_subprotocol: o.require_subprotocol,
        auto_ping_interval: o.auto_ping_interval,
        auto_ping_timeout: o.auto_ping_timeout.or(o.auto_ping_interval).unwrap_or(NO_PING_TIMEOUT),
        auto_ping_size: o.auto_ping_size,
        auth: auth_config(&ws.auth, secret)?,
    })
}

fn raw_socket(rs: &RawSocketTransport, secret: [u8; 32]) -> Result<RawSocketSetup, RouterError> {
    let o = &rs.options;
    Ok(RawSocketSetup {
        serializers: rs.serializers.clone(),
        max_message_size: o.max_message_size,
        auto_ping_interval: o.auto_ping_interval,
        auto_ping_timeout: o.auto_ping_timeout.or(o.auto_ping_interval).unwrap_or(NO_PING_TIMEOUT),
        auth: auth_config(&rs.auth, secret)?,
    })
}
