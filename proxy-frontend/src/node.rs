//! Running a proxy worker: bind the frontend transports, start one pinned
//! executor per shard; each shard accepts clients, authenticates them, and
//! keeps its own links to the router workers. Shards share nothing but
//! read-only setup, counters and the failed-authentication budgets: a
//! frontend session lives and dies on the shard that accepted it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::FromRawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};
use junction_config::BalancePolicy;
use rand::Rng;
use router_core::runtime::bind::{bind, BoundListener};
use router_core::runtime::conn::{open_phase, ConnPermit, Gatekeeper, Opening};
use router_core::runtime::node::{accept_stream, allowed_cpus};
use router_core::runtime::setup::TransportSetup;
use router_core::runtime::stream::SocketKind;
use router_core::runtime::{EndpointSetup, NodeStats};
use wamp_auth::{DynamicAuthRequest, DynamicError, FailureLimiter};
use wamp_proto::{SessionId, Value, MAX_ID};

use crate::backend::Backend;
use crate::front::{serve_front, Admitted};
use crate::setup::ProxySetup;
use crate::ProxyError;

/// State shared by the shards of a proxy worker.
pub struct ProxyShared {
    pub setup: Arc<ProxySetup>,
    pub stats: Arc<NodeStats>,
    pub conn_counts: Vec<Arc<AtomicUsize>>,
    pub limiters: Vec<Arc<Mutex<FailureLimiter>>>,
    /// The transports' setups, shared with the opening phase.
    pub transports: Vec<Arc<TransportSetup>>,
    /// Frontend sessions per shard (for node info).
    pub sessions: Vec<Arc<AtomicUsize>>,
}

/// Why no backend was picked for a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoBackend {
    /// `routes` has no entry for the realm and role.
    NoRoute,
    /// Every link of the route is down.
    NoneHealthy,
}

/// One proxy shard (see the module docs).
pub struct ProxyShard {
    pub id: usize,
    pub setup: Arc<ProxySetup>,
    pub stats: Arc<NodeStats>,
    shared: Arc<ProxyShared>,
    /// This shard's links, one per configured backend connection.
    pub backends: Vec<Rc<Backend>>,
    /// Round-robin position per (realm, role) route.
    rr: RefCell<HashMap<(String, String), usize>>,
    /// Frontend sessions on this shard.
    pub sessions: Cell<usize>,
}

impl ProxyShard {
    /// Picks a healthy backend for a new session of `(realm, role)` by the
    /// configured balance policy; `None` if the route has none.
    pub fn pick_backend(&self, realm: &str, role: &str) -> Result<Rc<Backend>, NoBackend> {
        let candidates = self.setup.routes.get(realm).and_then(|r| r.for_role(role)).ok_or(NoBackend::NoRoute)?;
        let healthy: Vec<&Rc<Backend>> =
            candidates.iter().filter_map(|i| self.backends.get(*i)).filter(|b| b.healthy()).collect();
        if healthy.is_empty() {
            return Err(NoBackend::NoneHealthy);
        }
        let mut rr = self.rr.borrow_mut();
        let pos = rr.entry((realm.to_owned(), role.to_owned())).or_insert(0);
        let start = *pos;
        *pos = pos.wrapping_add(1);
        let pick = match self.setup.balance {
            BalancePolicy::RoundRobin => healthy[start % healthy.len()],
            BalancePolicy::LeastSessions => {
                // Fewest sessions; ties broken round-robin.
                let n = healthy.len();
                let min = healthy.iter().map(|b| b.sessions()).min().unwrap_or(0);
                (0..n).map(|k| healthy[(start + k) % n]).find(|b| b.sessions() == min).unwrap_or(healthy[0])
            }
        };
        Ok(pick.clone())
    }

    /// Frontend sessions on every shard of this worker.
    pub fn total_sessions(&self) -> usize {
        self.shared.sessions.iter().map(|s| s.load(Ordering::Relaxed)).sum()
    }
}

impl Gatekeeper for ProxyShard {
    fn transport_setup(&self, transport: usize) -> Arc<TransportSetup> {
        self.shared.transports[transport].clone()
    }
    fn has_realm(&self, realm: &str) -> bool {
        self.setup.routes.contains_key(realm)
    }
    fn has_role(&self, realm: &str, role: &str) -> bool {
        self.setup.routes.get(realm).is_some_and(|r| r.for_role(role).is_some())
    }
    fn limiter(&self, transport: usize) -> Arc<Mutex<FailureLimiter>> {
        self.shared.limiters[transport].clone()
    }
    fn stats(&self) -> &NodeStats {
        &self.stats
    }
    fn reserve_session(&self, _realm: &str) -> SessionId {
        // Only used in challenges; the router assigns the session's real ID.
        SessionId::from_valid(rand::thread_rng().gen_range(1..=MAX_ID))
    }
    fn release_session(&self, _id: SessionId) {}
    fn call_authenticator(
        self: Rc<Self>,
        req: DynamicAuthRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, DynamicError>>>> {
        Box::pin(async move {
            let link = self.backends.iter().find(|b| b.setup.realm == req.realm && b.healthy()).cloned();
            match link {
                Some(b) => b.auth_call(req.realm, req.procedure, req.args).await,
                None => Err(DynamicError {
                    error: "wamp.error.no_such_realm".into(),
                    message: Some(format!("no router link for the authenticator realm '{}'", req.realm)),
                }),
            }
        })
    }
    fn router_shard(self: &Rc<Self>) -> Option<Rc<router_core::runtime::shard::Shard>> {
        None
    }
    fn node_info(&self) -> serde_json::Value {
        let backends: Vec<serde_json::Value> = self
            .backends
            .iter()
            .map(|b| {
                serde_json::json!({
                    "connection": b.setup.name,
                    "realm": b.setup.realm,
                    "address": b.setup.addr.to_string(),
                    "healthy": b.healthy(),
                    "sessions_on_this_shard": b.sessions(),
                })
            })
            .collect();
        let uptime = self.setup.started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
        serde_json::json!({
            "product": "Junction",
            "version": env!("CARGO_PKG_VERSION"),
            "worker": "proxy",
            "name": self.setup.name,
            "shards": self.setup.shards,
            "sessions": self.total_sessions(),
            "uptime_seconds": uptime,
            "backends": backends,
        })
    }
}

/// Starts the shards; returns once all accept connections.
pub fn start(setup: ProxySetup) -> Result<(Vec<EndpointSetup>, Arc<ProxyShared>), ProxyError> {
    if setup.shards == 0 {
        return Err(ProxyError::Setup("shards must be at least 1".into()));
    }
    let listeners: Vec<BoundListener> = setup
        .transports
        .iter()
        .map(|t| bind(&t.endpoint))
        .collect::<Result<_, _>>()
        .map_err(|e| ProxyError::Setup(e.to_string()))?;
    let endpoints: Vec<EndpointSetup> = listeners.iter().map(|l| l.endpoint.clone()).collect();
    let n = setup.shards;
    let cpus: Vec<usize> =
        if setup.pin_cores { allowed_cpus().map_err(|e| ProxyError::Setup(e.to_string()))? } else { Vec::new() };
    let shared = Arc::new(ProxyShared {
        conn_counts: setup.transports.iter().map(|_| Arc::new(AtomicUsize::new(0))).collect(),
        limiters: setup.transports.iter().map(|t| Arc::new(Mutex::new(FailureLimiter::new(t.auth_limits)))).collect(),
        transports: setup.transports.iter().cloned().map(Arc::new).collect(),
        sessions: (0..n).map(|_| Arc::new(AtomicUsize::new(0))).collect(),
        setup: Arc::new(setup),
        stats: Arc::new(NodeStats::default()),
    });
    let (ready_tx, ready_rx) = mpsc::channel::<usize>();
    for i in 0..n {
        let placement = if cpus.is_empty() { Placement::Unbound } else { Placement::Fixed(cpus[i % cpus.len()]) };
        let mut fds = Vec::new();
        for l in &listeners {
            let fd = l.dup_fd().map_err(|e| ProxyError::Setup(format!("{}: {e}", l.endpoint)))?;
            fds.push((fd, l.endpoint.clone()));
        }
        let shared = shared.clone();
        let ready = ready_tx.clone();
        LocalExecutorBuilder::new(placement)
            .name(&format!("junction-proxy-{i}"))
            .io_memory(shared.setup.io_memory)
            .spawn(move || async move { run_shard(i, shared, fds, ready).await })
            .map_err(|e| ProxyError::Setup(format!("cannot start proxy shard {i}: {e}")))?;
    }
    drop(ready_tx);
    for _ in 0..n {
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| ProxyError::Setup("a proxy shard did not start within 30 s".into()))?;
    }
    drop(listeners);
    Ok((endpoints, shared))
}

async fn run_shard(id: usize, shared: Arc<ProxyShared>, fds: Vec<(i32, EndpointSetup)>, ready: mpsc::Sender<usize>) {
    let backends: Vec<Rc<Backend>> =
        shared.setup.backends.iter().enumerate().map(|(i, b)| Rc::new(Backend::new(i, b.clone()))).collect();
    let shard = Rc::new(ProxyShard {
        id,
        setup: shared.setup.clone(),
        stats: shared.stats.clone(),
        shared: shared.clone(),
        backends: backends.clone(),
        rr: RefCell::new(HashMap::new()),
        sessions: Cell::new(0),
    });
    for b in backends {
        glommio::spawn_local(b.run(shared.setup.clone())).detach();
    }
    // Publish this shard's session count for node info.
    {
        let shard = shard.clone();
        let slot = shared.sessions[id].clone();
        glommio::spawn_local(async move {
            loop {
                slot.store(shard.sessions.get(), Ordering::Relaxed);
                glommio::timer::sleep(Duration::from_millis(500)).await;
            }
        })
        .detach();
    }
    for (t, (fd, endpoint)) in fds.into_iter().enumerate() {
        // SAFETY: `fd` is a dup of a bound, listening socket that this shard now owns.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        let kind = match endpoint {
            EndpointSetup::Tcp { .. } => SocketKind::Tcp,
            EndpointSetup::Unix { .. } => SocketKind::Unix,
        };
        glommio::spawn_local(accept_loop(shard.clone(), listener, kind, t)).detach();
    }
    let _ = ready.send(id);
    std::future::pending::<()>().await;
}

async fn accept_loop(shard: Rc<ProxyShard>, listener: TcpListener, kind: SocketKind, transport: usize) {
    let max = shard.setup.transports[transport].limits.max_connections;
    loop {
        let Some((stream, peer)) = accept_stream(&listener, kind).await else { continue };
        shard.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let Some(permit) = ConnPermit::acquire(&shard.shared.conn_counts[transport], max) else {
            shard.stats.refused_connection_limit.fetch_add(1, Ordering::Relaxed);
            let setup = shard.shared.transports[transport].clone();
            glommio::spawn_local(router_core::runtime::conn::refuse_over_limit_on(setup, stream)).detach();
            continue;
        };
        glommio::spawn_local(open_client(shard.clone(), stream, kind, transport, peer, permit)).detach();
    }
}

async fn open_client(
    shard: Rc<ProxyShard>,
    mut stream: router_core::runtime::stream::Stream,
    kind: SocketKind,
    transport: usize,
    peer: String,
    permit: ConnPermit,
) {
    match open_phase(&shard, &mut stream, transport, &peer).await {
        Some(Ok(Some(Opening::Http { .. }))) => {}
        Some(Ok(Some(Opening::Session(framer, serializer, join, details, tls)))) => {
            let a = Admitted { stream, kind, transport, permit, framer, serializer, join, details, tls };
            serve_front(shard, a).await;
        }
        Some(Ok(Some(Opening::Link(..)))) => {
            tracing::warn!(%peer, "proxy link opened on a proxy worker; closing");
        }
        Some(Ok(None)) => {
            shard.stats.opening_refused.fetch_add(1, Ordering::Relaxed);
        }
        Some(Err(e)) => {
            shard.stats.opening_failed.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, error = %e, "connection failed while opening");
        }
        None => {
            shard.stats.opening_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "opening handshake timed out");
        }
    }
}
