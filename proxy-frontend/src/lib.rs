//! # proxy-frontend: proxy workers (web clusters)
//!
//! **What it is.** Junction's proxy worker: the internet-facing connection
//! layer of a deployment. A proxy worker
//!
//! - listens on the same transports a router does (WebSocket, RawSocket over
//!   TCP or Unix sockets, `web` transports with paths), with TLS by rustls,
//!   with every serializer, sharing ports with sibling proxy processes
//!   (`endpoint.shared` → `SO_REUSEPORT`);
//! - authenticates clients itself with the same methods and config shape as
//!   a router (anonymous, ticket, WAMP-CRA, cryptosign, SCRAM, TLS client
//!   certificates, dynamic authenticators called on the backend realm over
//!   the link). A client never gets a role it was not granted: anonymous
//!   clients get the configured anonymous role;
//! - picks a router worker for each authenticated session by
//!   `(realm, authrole)` from `routes`, balancing across a worker group
//!   (round-robin or least-sessions) and skipping unhealthy links;
//! - carries the session over a **proxy link** (`wamp_framing::link`): a
//!   few long-lived, multiplexed connections per router worker, proven with
//!   the node's Ed25519 key, on which the router admits the session with the
//!   identity the proxy established. After authentication the proxy forwards
//!   the client's messages byte for byte; it never decodes or re-encodes
//!   them;
//! - closes the sessions of a router worker that goes away with a clear
//!   reason (`junction.close.router_lost`), sends new sessions to the
//!   survivors at once, and reconnects when the worker is back.
//!
//! Each shard (a pinned glommio executor) owns its clients and its own links;
//! shards share only read-only setup and counters.
//!
//! **What it is not.** It is not a router: it keeps no subscriptions or
//! registrations, applies no authorization (the router does, with the
//! forwarded role), and never routes a message between two clients itself.
//! It does not speak Crossbar's proxy-to-router protocol (WAMP sessions with
//! `cryptosign-proxy` authentication, one connection per session); Junction
//! proxies talk only to Junction routers.

pub mod backend;
pub mod front;
pub mod node;
pub mod setup;

use std::path::Path;
use std::sync::Arc;

pub use router_core::runtime::EndpointSetup;

/// Errors starting or running a proxy worker.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The configuration cannot be run.
    #[error("{0}")]
    Setup(String),
}

/// A running proxy worker (this process).
pub struct ProxyWorker {
    /// The bound frontend endpoints, in transport order.
    pub endpoints: Vec<EndpointSetup>,
    shared: Arc<node::ProxyShared>,
    controls: Vec<flume::Sender<node::ProxyControl>>,
    /// Serialises run-time changes.
    change: std::sync::Mutex<()>,
}

/// A proxy connection as the management API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionInfo {
    pub id: String,
    pub realm: String,
    pub address: String,
    pub stopped: bool,
}

/// A route as the management API shows it: (id, realm, role → connection
/// ids, stopped).
pub type RouteInfo = (String, String, Vec<(String, Vec<String>)>, bool);

/// How long a run-time change may wait for a shard.
const CONTROL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

impl ProxyWorker {
    /// Starts proxy worker `worker` (index into `cfg.workers`, which must be
    /// a proxy worker). `key` is the node key it proves itself with to router
    /// workers; relative paths in the config resolve against `base_dir`.
    /// Returns once every shard accepts connections.
    pub fn start(
        cfg: &junction_config::NodeConfig,
        worker: usize,
        key: cluster_membership::NodeKey,
        base_dir: &Path,
    ) -> Result<ProxyWorker, ProxyError> {
        let setup = setup::ProxySetup::from_config(cfg, worker, key, base_dir)?;
        let (endpoints, shared, controls) = node::start(setup)?;
        Ok(ProxyWorker { endpoints, shared, controls, change: std::sync::Mutex::new(()) })
    }

    fn each_shard(&self, make: impl Fn(flume::Sender<()>) -> node::ProxyControl) -> Result<(), ProxyError> {
        for c in &self.controls {
            let (tx, rx) = flume::bounded(1);
            c.send(make(tx)).map_err(|_| ProxyError::Setup("a proxy shard is gone".into()))?;
            rx.recv_timeout(CONTROL_TIMEOUT).map_err(|_| ProxyError::Setup("a proxy shard did not answer".into()))?;
        }
        Ok(())
    }

    /// Starts a backend connection at run time: connection `id` to the
    /// router workers of `realm` at `addr` (the management API's
    /// `start_proxy_connection`). One link per shard, as for configured
    /// connections.
    pub fn start_connection(
        &self,
        id: &str,
        realm: &str,
        addr: setup::BackendAddr,
        tls: Option<(Arc<rustls::ClientConfig>, String)>,
    ) -> Result<(), ProxyError> {
        let _g = self.change.lock().unwrap_or_else(|e| e.into_inner());
        let index = {
            let mut b = self.shared.backends.write().unwrap_or_else(|e| e.into_inner());
            if b.iter()
                .any(|e| e.id == id && e.setup.realm == realm && !e.stopped.load(std::sync::atomic::Ordering::Relaxed))
            {
                return Err(ProxyError::Setup(format!("connection '{id}' to realm '{realm}' is running already")));
            }
            b.push(Arc::new(node::BackendEntry {
                id: id.to_owned(),
                setup: setup::BackendSetup { name: id.to_owned(), realm: realm.to_owned(), addr, tls },
                stopped: Default::default(),
            }));
            b.len() - 1
        };
        self.each_shard(|reply| node::ProxyControl::AddBackend { index, reply })
    }

    /// Stops every link of connection `id`; refused while a live route
    /// uses it. Returns how many links stopped.
    pub fn stop_connection(&self, id: &str) -> Result<usize, ProxyError> {
        let _g = self.change.lock().unwrap_or_else(|e| e.into_inner());
        let entries = self.shared.backends.read().unwrap_or_else(|e| e.into_inner()).clone();
        let idx: Vec<usize> = entries
            .iter()
            .enumerate()
            .filter(|(_, e)| e.id == id && !e.stopped.load(std::sync::atomic::Ordering::Relaxed))
            .map(|(i, _)| i)
            .collect();
        if idx.is_empty() {
            return Err(ProxyError::Setup(format!("no running connection '{id}'")));
        }
        let routes = self.shared.routes.read().unwrap_or_else(|e| e.into_inner());
        if let Some(r) =
            routes.iter().find(|r| !r.stopped && r.config.iter().any(|(_, ids)| ids.iter().any(|c| c == id)))
        {
            return Err(ProxyError::Setup(format!(
                "route '{}' of realm '{}' uses connection '{id}': stop it first",
                r.id, r.realm
            )));
        }
        drop(routes);
        for &index in &idx {
            entries[index].stopped.store(true, std::sync::atomic::Ordering::Relaxed);
            self.each_shard(|reply| node::ProxyControl::StopBackend { index, reply })?;
        }
        Ok(idx.len())
    }

    /// The connections (one entry per link target), stopped ones included.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.shared
            .backends
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|e| ConnectionInfo {
                id: e.id.clone(),
                realm: e.setup.realm.clone(),
                address: e.setup.addr.to_string(),
                stopped: e.stopped.load(std::sync::atomic::Ordering::Relaxed),
            })
            .collect()
    }

    /// Starts a route of `realm`: role → connection ids (`"*"` for every
    /// other role), each connection running for that realm. Returns the
    /// route id (`routeNNN`, Crossbar's naming).
    pub fn start_route(&self, realm: &str, roles: &[(String, Vec<String>)]) -> Result<String, ProxyError> {
        let _g = self.change.lock().unwrap_or_else(|e| e.into_inner());
        if roles.is_empty() {
            return Err(ProxyError::Setup("a route needs at least one role".into()));
        }
        let entries = self.shared.backends.read().unwrap_or_else(|e| e.into_inner()).clone();
        let mut rr = setup::RealmRoutes::default();
        for (role, ids) in roles {
            if ids.is_empty() {
                return Err(ProxyError::Setup(format!("role '{role}' names no connection")));
            }
            let mut ix = Vec::new();
            for id in ids {
                let i = entries
                    .iter()
                    .position(|e| {
                        &e.id == id && e.setup.realm == realm && !e.stopped.load(std::sync::atomic::Ordering::Relaxed)
                    })
                    .ok_or_else(|| ProxyError::Setup(format!("no running connection '{id}' for realm '{realm}'")))?;
                ix.push(i);
            }
            if role == "*" {
                rr.any = Some(ix);
            } else {
                rr.by_role.insert(role.clone(), ix);
            }
        }
        let mut routes = self.shared.routes.write().unwrap_or_else(|e| e.into_inner());
        let id = format!("route{:03}", routes.len());
        routes.push(node::RouteEntry {
            id: id.clone(),
            realm: realm.to_owned(),
            routes: rr,
            config: roles.to_vec(),
            stopped: false,
        });
        Ok(id)
    }

    /// Stops route `id` of `realm`: no new session is routed by it
    /// (sessions already routed stay).
    pub fn stop_route(&self, realm: &str, id: &str) -> Result<(), ProxyError> {
        let _g = self.change.lock().unwrap_or_else(|e| e.into_inner());
        let mut routes = self.shared.routes.write().unwrap_or_else(|e| e.into_inner());
        let r = routes
            .iter_mut()
            .find(|r| r.id == id && r.realm == realm && !r.stopped)
            .ok_or_else(|| ProxyError::Setup(format!("no running route '{id}' on realm '{realm}'")))?;
        r.stopped = true;
        Ok(())
    }

    /// The routes (stopped ones included).
    pub fn routes(&self) -> Vec<RouteInfo> {
        self.shared
            .routes
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|r| (r.id.clone(), r.realm.clone(), r.config.clone(), r.stopped))
            .collect()
    }

    /// Starts a frontend transport at run time (`start_proxy_transport`);
    /// its index and the endpoint it listens on.
    pub fn start_transport(
        &self,
        mut setup: router_core::runtime::setup::TransportSetup,
    ) -> Result<(usize, EndpointSetup), ProxyError> {
        let _g = self.change.lock().unwrap_or_else(|e| e.into_inner());
        use std::sync::atomic::Ordering::Relaxed;
        if self.shared.transports.all().iter().any(|t| t.setup.id == setup.id && !t.stopped.load(Relaxed)) {
            return Err(ProxyError::Setup(format!("a transport '{}' is running already", setup.id)));
        }
        let listener =
            router_core::runtime::bind::bind(&setup.endpoint).map_err(|e| ProxyError::Setup(e.to_string()))?;
        setup.endpoint = listener.endpoint.clone();
        let kind = match &setup.endpoint {
            EndpointSetup::Tcp { .. } => router_core::runtime::stream::SocketKind::Tcp,
            EndpointSetup::Unix { .. } => router_core::runtime::stream::SocketKind::Unix,
        };
        let endpoint = setup.endpoint.clone();
        let index = self.shared.transports.push(router_core::runtime::setup::TransportEntry::new(setup, Vec::new()));
        for c in &self.controls {
            let fd = listener.dup_fd().map_err(|e| ProxyError::Setup(format!("{endpoint}: {e}")))?;
            let (tx, rx) = flume::bounded(1);
            c.send(node::ProxyControl::StartListener { index, fd, kind, reply: tx })
                .map_err(|_| ProxyError::Setup("a proxy shard is gone".into()))?;
            rx.recv_timeout(CONTROL_TIMEOUT).map_err(|_| ProxyError::Setup("a proxy shard did not answer".into()))?;
        }
        Ok((index, endpoint))
    }

    /// Stops frontend transport `id` (established sessions stay).
    pub fn stop_transport(&self, id: &str) -> Result<(), ProxyError> {
        let _g = self.change.lock().unwrap_or_else(|e| e.into_inner());
        use std::sync::atomic::Ordering::Relaxed;
        let all = self.shared.transports.all();
        let (index, entry) = all
            .iter()
            .enumerate()
            .find(|(_, t)| t.setup.id == id && !t.stopped.load(Relaxed))
            .ok_or_else(|| ProxyError::Setup(format!("no running transport '{id}'")))?;
        entry.stopped.store(true, Relaxed);
        self.each_shard(|reply| node::ProxyControl::StopListener { index, reply })
    }

    /// Gives running frontend transport `id` a new setup (its web services
    /// changed, `start_web_transport_service`): connections accepted from
    /// now on are served by it, established ones keep theirs; the listener
    /// and its port stay.
    pub fn replace_transport_setup(
        &self,
        id: &str,
        setup: router_core::runtime::setup::TransportSetup,
    ) -> Result<(), ProxyError> {
        let _g = self.change.lock().unwrap_or_else(|e| e.into_inner());
        use std::sync::atomic::Ordering::Relaxed;
        let index = self
            .shared
            .transports
            .all()
            .iter()
            .position(|t| t.setup.id == id && !t.stopped.load(Relaxed))
            .ok_or_else(|| ProxyError::Setup(format!("no running transport '{id}'")))?;
        if !self.shared.transports.replace_setup(index, setup) {
            return Err(ProxyError::Setup(format!("no running transport '{id}'")));
        }
        Ok(())
    }

    /// Every frontend transport (stopped ones included).
    pub fn transports(&self) -> Vec<Arc<router_core::runtime::setup::TransportEntry>> {
        self.shared.transports.all()
    }

    /// Re-reads TLS certificates and keys of every TLS transport; new
    /// connections use them, established ones keep theirs.
    pub fn reload_certificates(&self) -> Result<usize, ProxyError> {
        let live: Vec<router_core::runtime::setup::TransportSetup> = self
            .shared
            .transports
            .all()
            .iter()
            .filter(|t| !t.stopped.load(std::sync::atomic::Ordering::Relaxed))
            .map(|t| (*t.setup).clone())
            .collect();
        router_core::runtime::node::reload_certificates(&live).map_err(|e| ProxyError::Setup(e.to_string()))
    }

    /// One-line counters summary for logs.
    pub fn summary(&self) -> String {
        let sessions: usize = self.shared.sessions.iter().map(|s| s.load(std::sync::atomic::Ordering::Relaxed)).sum();
        format!("sessions={sessions} {}", self.shared.stats.summary())
    }
}
