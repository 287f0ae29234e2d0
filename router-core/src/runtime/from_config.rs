//! Turning a validated node config into a [`RouterSetup`].

use std::net::SocketAddr;
use std::time::Duration;

use junction_config::{
    Endpoint, MatchPolicy as CfgMatch, NodeConfig, RawSocketTransport, RouterWorkerConfig, TransportConfig, TransportKind,
    WebService, WebSocketService,
};

use super::setup::{
    ConnectionLimits, EndpointSetup, FramingSetup, RawSocketSetup, RealmSetup, RouterSetup, TransportSetup, WsServiceSetup,
};
use crate::engine::{Allow, Disclose, MatchPolicy, Permission, Role};
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
    let realms = w
        .realms
        .iter()
        .map(|r| RealmSetup {
            name: r.name.clone(),
            home_shard: r.options.home_shard,
            max_sessions: r.options.max_sessions,
            roles: r
                .roles
                .iter()
                .map(|role| Role {
                    name: role.name.clone(),
                    permissions: role
                        .permissions
                        .iter()
                        .map(|p| Permission {
                            uri: p.uri.clone(),
                            match_policy: match p.match_policy {
                                CfgMatch::Exact => MatchPolicy::Exact,
                                CfgMatch::Prefix => MatchPolicy::Prefix,
                                CfgMatch::Wildcard => MatchPolicy::Wildcard,
                            },
                            allow: Allow {
                                call: p.allow.call,
                                register: p.allow.register,
                                publish: p.allow.publish,
                                subscribe: p.allow.subscribe,
                            },
                            disclose: Disclose { caller: p.disclose.caller, publisher: p.disclose.publisher },
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    let transports = w.transports.iter().enumerate().map(|(i, t)| transport(i, t)).collect::<Result<Vec<_>, _>>()?;
    Ok(RouterSetup {
        shards: w.options.effective_shards(),
        pin_cores: w.options.pin_cores,
        io_memory: DEFAULT_IO_MEMORY,
        realms,
        transports,
    })
}

fn transport(i: usize, t: &TransportConfig) -> Result<TransportSetup, RouterError> {
    let id = t.id.clone().unwrap_or_else(|| format!("transport{i}"));
    let endpoint = match &t.endpoint {
        Endpoint::Tcp { interface, port, backlog, .. } => {
            EndpointSetup::Tcp { addr: SocketAddr::new(*interface, *port), backlog: *backlog }
        }
        Endpoint::Unix { path, .. } => EndpointSetup::Unix { path: path.clone() },
    };
    let limits = ConnectionLimits {
        max_connections: t.limits.max_connections,
        max_outbound_bytes: t.limits.max_outbound_bytes,
        max_outbound_messages: t.limits.max_outbound_messages,
    };
    let (framing, open_timeout) = match &t.kind {
        TransportKind::WebSocket(ws) => {
            let svc = ws_service(None, ws);
            (FramingSetup::WebSocket { services: vec![svc] }, ws.options.open_handshake_timeout)
        }
        TransportKind::Web(web) => {
            let mut services = Vec::new();
            let mut timeout = Duration::ZERO;
            for (path, svc) in &web.paths {
                match svc {
                    WebService::WebSocket(ws) => {
                        let p = if path == "/" { "/".to_owned() } else { format!("/{}", path.trim_start_matches('/')) };
                        services.push(ws_service(Some(p), ws));
                        timeout = timeout.max(ws.options.open_handshake_timeout);
                    }
                    WebService::Other { kind } => {
                        return Err(RouterError::Setup(format!(
                            "transport {id}: web service type '{kind}' at path '{path}' is not supported on router workers"
                        )))
                    }
                }
            }
            (FramingSetup::WebSocket { services }, timeout)
        }
        TransportKind::RawSocket(rs) => (FramingSetup::RawSocket(raw_socket(rs)), rs.options.handshake_timeout),
        TransportKind::Unsupported { kind } => {
            return Err(RouterError::Setup(format!("transport {id}: type '{kind}' is not supported")))
        }
    };
    Ok(TransportSetup {
        id,
        endpoint,
        framing,
        open_handshake_timeout: open_timeout,
        max_handshake_size: MAX_HANDSHAKE_SIZE,
        limits,
        tls: None,
    })
}

fn anonymous_role(auth: &junction_config::TransportAuth) -> String {
    auth.anonymous_role().unwrap_or("anonymous").to_owned()
}

fn ws_service(path: Option<String>, ws: &WebSocketService) -> WsServiceSetup {
    let o = &ws.options;
    WsServiceSetup {
        path,
        serializers: ws.serializers.clone(),
        max_frame_size: o.max_frame_size,
        max_message_size: o.max_message_size,
        allowed_origins: o.allowed_origins.clone(),
        require_subprotocol: o.require_subprotocol,
        auto_ping_interval: o.auto_ping_interval,
        auto_ping_timeout: o.auto_ping_timeout.or(o.auto_ping_interval).unwrap_or(NO_PING_TIMEOUT),
        auto_ping_size: o.auto_ping_size,
        anonymous_role: anonymous_role(&ws.auth),
    }
}

fn raw_socket(rs: &RawSocketTransport) -> RawSocketSetup {
    let o = &rs.options;
    RawSocketSetup {
        serializers: rs.serializers.clone(),
        max_message_size: o.max_message_size,
        auto_ping_interval: o.auto_ping_interval,
        auto_ping_timeout: o.auto_ping_timeout.or(o.auto_ping_interval).unwrap_or(NO_PING_TIMEOUT),
        anonymous_role: anonymous_role(&rs.auth),
    }
}
