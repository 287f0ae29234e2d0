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
use std::sync::{mpsc, Arc, Mutex, RwLock};
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
use crate::setup::{BackendSetup, ProxySetup, RealmRoutes};
use crate::ProxyError;

/// One backend link the worker keeps (on every shard): connection `id`
/// to the routers of `setup.realm`.
#[derive(Debug)]
pub struct BackendEntry {
    pub id: String,
    pub setup: BackendSetup,
    pub stopped: std::sync::atomic::AtomicBool,
}

/// A route: for realm `realm`, role → backends (indices into the backend table).
#[derive(Debug, Clone)]
pub struct RouteEntry {
    pub id: String,
    pub realm: String,
    pub routes: RealmRoutes,
    /// Role → connection ids, as given (for the management API).
    pub config: Vec<(String, Vec<String>)>,
    pub stopped: bool,
}

/// State shared by the shards of a proxy worker.
pub struct ProxyShared {
    pub setup: Arc<ProxySetup>,
    pub stats: Arc<NodeStats>,
    /// The frontend transports (start-up and run-time ones).
    pub transports: Arc<router_core::runtime::setup::TransportTable>,
    /// Backend links, by index (append-only; stopped ones stay).
    pub backends: RwLock<Vec<Arc<BackendEntry>>>,
    /// Routes, by index (append-only; stopped ones stay).
    pub routes: RwLock<Vec<RouteEntry>>,
    /// Frontend sessions per shard (for node info).
    pub sessions: Vec<Arc<AtomicUsize>>,
}

impl ProxyShared {
    /// The backend candidates of a session of `(realm, role)`: the role's
    /// own route entries, else the `"*"` ones, over every live route of the
    /// realm; `None` if no route covers it.
    pub fn candidates(&self, realm: &str, role: &str) -> Option<Vec<usize>> {
        let routes = self.routes.read().unwrap_or_else(|e| e.into_inner());
        let live: Vec<&RouteEntry> = routes.iter().filter(|r| !r.stopped && r.realm == realm).collect();
        let mut own: Vec<usize> = Vec::new();
        for r in &live {
            if let Some(v) = r.routes.by_role.get(role) {
                for i in v {
                    if !own.contains(i) {
                        own.push(*i);
                    }
                }
            }
        }
        if own.is_empty() {
            for r in &live {
                if let Some(v) = &r.routes.any {
                    for i in v {
                        if !own.contains(i) {
                            own.push(*i);
                        }
                    }
                }
            }
        }
        (!own.is_empty()).then_some(own)
    }

    /// True if a live route names the realm.
    pub fn has_realm(&self, realm: &str) -> bool {
        self.routes.read().unwrap_or_else(|e| e.into_inner()).iter().any(|r| !r.stopped && r.realm == realm)
    }
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
    /// This shard's links, one per entry of the backend table.
    pub backends: RefCell<Vec<Rc<Backend>>>,
    /// Wakes the accept loop of each transport to stop it (by index).
    listener_stops: RefCell<HashMap<usize, Rc<router_core::runtime::notify::LocalNotify>>>,
    /// Round-robin position per (realm, role) route.
    rr: RefCell<HashMap<(String, String), usize>>,
    /// Frontend sessions on this shard.
    pub sessions: Cell<usize>,
}

impl ProxyShard {
    /// Picks a healthy backend for a new session of `(realm, role)` by the
    /// configured balance policy; `None` if the route has none.
    pub fn pick_backend(&self, realm: &str, role: &str) -> Result<Rc<Backend>, NoBackend> {
        let candidates = self.shared.candidates(realm, role).ok_or(NoBackend::NoRoute)?;
        let backends = self.backends.borrow();
        let healthy: Vec<&Rc<Backend>> =
            candidates.iter().filter_map(|i| backends.get(*i)).filter(|b| b.healthy()).collect();
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
        self.shared.transports.get(transport).setup.clone()
    }
    fn has_realm(&self, realm: &str) -> bool {
        self.shared.has_realm(realm)
    }
    fn has_role(&self, realm: &str, role: &str) -> bool {
        self.shared.candidates(realm, role).is_some()
    }
    fn limiter(&self, transport: usize) -> Arc<Mutex<FailureLimiter>> {
        self.shared.transports.get(transport).limiter.clone()
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
            let link = self.backends.borrow().iter().find(|b| b.setup.realm == req.realm && b.healthy()).cloned();
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
            .borrow()
            .iter()
            .filter(|b| !b.is_stopped())
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
    fn metrics(&self) -> String {
        use router_core::runtime::conn::gauge;
        let mut e = junction_web::Exposition::new();
        e.gauge_family(
            "worker_up",
            "1 for a running worker, labelled with its type and Junction's version.",
            vec![(vec![("worker".into(), "proxy".into()), ("version".into(), env!("CARGO_PKG_VERSION").into())], 1)],
        );
        let uptime = self.setup.started.elapsed().map(|d| d.as_secs()).unwrap_or(0);
        e.gauge("uptime_seconds", "Seconds since the worker started.", gauge(uptime));
        e.gauge("shards", "Shards (threads) of the worker.", gauge(self.setup.shards as u64));
        e.gauge("sessions", "Frontend sessions on the worker.", gauge(self.total_sessions() as u64));
        self.stats.export(&mut e);
        // Each shard keeps its own link per connection: this shard's view.
        let shard = self.id.to_string();
        let backends = self.backends.borrow();
        let live: Vec<&Rc<Backend>> = backends.iter().filter(|b| !b.is_stopped()).collect();
        let labels = |b: &Backend| {
            vec![
                ("connection".to_owned(), b.setup.name.clone()),
                ("realm".to_owned(), b.setup.realm.clone()),
                ("address".to_owned(), b.setup.addr.to_string()),
                ("shard".to_owned(), shard.clone()),
            ]
        };
        e.gauge_family(
            "backend_link_up",
            "1 if this shard's link of a connection to a router worker is up, else 0.",
            live.iter().map(|b| (labels(b), i64::from(b.healthy()))).collect(),
        );
        e.gauge_family(
            "backend_sessions",
            "Sessions carried on this shard's link of a connection.",
            live.iter().map(|b| (labels(b), gauge(b.sessions() as u64))).collect(),
        );
        e.encode()
    }
}

/// Run-time requests to a proxy shard.
pub enum ProxyControl {
    /// Create the link of backend table entry `index` on this shard.
    AddBackend { index: usize, reply: flume::Sender<()> },
    /// Stop the link of entry `index` (its sessions end).
    StopBackend { index: usize, reply: flume::Sender<()> },
    /// Accept on this shard's dup `fd` of transport `index`.
    StartListener { index: usize, fd: i32, kind: SocketKind, reply: flume::Sender<()> },
    /// Stop accepting on transport `index`.
    StopListener { index: usize, reply: flume::Sender<()> },
}

/// What [`start`] returns: the bound endpoints, the shared state and one
/// control channel per shard.
pub type Started = (Vec<EndpointSetup>, Arc<ProxyShared>, Vec<flume::Sender<ProxyControl>>);

/// Starts the shards; returns once all accept connections: the bound
/// endpoints, the shared state, and each shard's control channel.
pub fn start(setup: ProxySetup) -> Result<Started, ProxyError> {
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
    let backends = setup
        .backends
        .iter()
        .map(|b| Arc::new(BackendEntry { id: b.name.clone(), setup: b.clone(), stopped: Default::default() }))
        .collect();
    let mut routes: Vec<RouteEntry> = Vec::new();
    for (realm, rr) in &setup.routes {
        let config: Vec<(String, Vec<String>)> = rr
            .by_role
            .iter()
            .map(|(role, ix)| (role.clone(), ix.iter().map(|i| setup.backends[*i].name.clone()).collect()))
            .chain(
                rr.any.iter().map(|ix| ("*".to_owned(), ix.iter().map(|i| setup.backends[*i].name.clone()).collect())),
            )
            .collect();
        routes.push(RouteEntry {
            id: format!("route{:03}", routes.len()),
            realm: realm.clone(),
            routes: rr.clone(),
            config,
            stopped: false,
        });
    }
    let shared = Arc::new(ProxyShared {
        transports: Arc::new(router_core::runtime::setup::TransportTable::new(&setup.transports)),
        backends: RwLock::new(backends),
        routes: RwLock::new(routes),
        sessions: (0..n).map(|_| Arc::new(AtomicUsize::new(0))).collect(),
        setup: Arc::new(setup),
        stats: Arc::new(NodeStats::default()),
    });
    let (ready_tx, ready_rx) = mpsc::channel::<usize>();
    let mut controls = Vec::with_capacity(n);
    for i in 0..n {
        let placement = if cpus.is_empty() { Placement::Unbound } else { Placement::Fixed(cpus[i % cpus.len()]) };
        let mut fds = Vec::new();
        for l in &listeners {
            let fd = l.dup_fd().map_err(|e| ProxyError::Setup(format!("{}: {e}", l.endpoint)))?;
            fds.push((fd, l.endpoint.clone()));
        }
        let shared = shared.clone();
        let ready = ready_tx.clone();
        let (ctl_tx, ctl_rx) = flume::bounded::<ProxyControl>(64);
        controls.push(ctl_tx);
        LocalExecutorBuilder::new(placement)
            .name(&format!("junction-proxy-{i}"))
            .io_memory(shared.setup.io_memory)
            .ring_depth(router_core::runtime::node::RING_DEPTH)
            .spawn(move || async move { run_shard(i, shared, fds, ready, ctl_rx).await })
            .map_err(|e| ProxyError::Setup(format!("cannot start proxy shard {i}: {e}")))?;
    }
    drop(ready_tx);
    for _ in 0..n {
        ready_rx
            .recv_timeout(Duration::from_secs(30))
            .map_err(|_| ProxyError::Setup("a proxy shard did not start within 30 s".into()))?;
    }
    drop(listeners);
    Ok((endpoints, shared, controls))
}

async fn run_shard(
    id: usize,
    shared: Arc<ProxyShared>,
    fds: Vec<(i32, EndpointSetup)>,
    ready: mpsc::Sender<usize>,
    control: flume::Receiver<ProxyControl>,
) {
    let entries = shared.backends.read().unwrap_or_else(|e| e.into_inner()).clone();
    let backends: Vec<Rc<Backend>> =
        entries.iter().enumerate().map(|(i, b)| Rc::new(Backend::new(i, b.setup.clone()))).collect();
    let shard = Rc::new(ProxyShard {
        id,
        setup: shared.setup.clone(),
        stats: shared.stats.clone(),
        shared: shared.clone(),
        backends: RefCell::new(backends.clone()),
        listener_stops: RefCell::new(HashMap::new()),
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
        spawn_accept_loop(&shard, listener, fd, kind, t);
    }
    {
        let shard = shard.clone();
        glommio::spawn_local(async move {
            while let Ok(c) = control.recv_async().await {
                match c {
                    ProxyControl::AddBackend { index, reply } => {
                        let entry = shard.shared.backends.read().unwrap_or_else(|e| e.into_inner()).get(index).cloned();
                        if let Some(e) = entry {
                            let mut list = shard.backends.borrow_mut();
                            // Entries arrive in table order on every shard.
                            if list.len() == index {
                                let b = Rc::new(Backend::new(index, e.setup.clone()));
                                list.push(b.clone());
                                glommio::spawn_local(b.run(shard.setup.clone())).detach();
                            }
                        }
                        let _ = reply.send(());
                    }
                    ProxyControl::StopBackend { index, reply } => {
                        if let Some(b) = shard.backends.borrow().get(index) {
                            b.stop();
                        }
                        let _ = reply.send(());
                    }
                    ProxyControl::StartListener { index, fd, kind, reply } => {
                        // SAFETY: `fd` is a dup of a bound, listening socket that this shard now owns.
                        let listener = unsafe { TcpListener::from_raw_fd(fd) };
                        spawn_accept_loop(&shard, listener, fd, kind, index);
                        let _ = reply.send(());
                    }
                    ProxyControl::StopListener { index, reply } => {
                        if let Some(stop) = shard.listener_stops.borrow().get(&index) {
                            stop.notify();
                        }
                        let _ = reply.send(());
                    }
                }
            }
        })
        .detach();
    }
    if id == 0 {
        glommio::spawn_local(router_core::runtime::node::trim_after_storms(
            router_core::runtime::fdlimit::open_connections,
        ))
        .detach();
    }
    let _ = ready.send(id);
    std::future::pending::<()>().await;
}

fn spawn_accept_loop(
    shard: &Rc<ProxyShard>,
    listener: TcpListener,
    fd: std::os::fd::RawFd,
    kind: SocketKind,
    t: usize,
) {
    let stop = Rc::new(router_core::runtime::notify::LocalNotify::default());
    shard.listener_stops.borrow_mut().insert(t, stop.clone());
    glommio::spawn_local(accept_loop(shard.clone(), listener, fd, kind, t, stop)).detach();
}

async fn accept_loop(
    shard: Rc<ProxyShard>,
    listener: TcpListener,
    listener_fd: std::os::fd::RawFd,
    kind: SocketKind,
    transport: usize,
    stop: Rc<router_core::runtime::notify::LocalNotify>,
) {
    router_core::runtime::fdlimit::open_spare();
    let entry = shard.shared.transports.get(transport);
    let max = entry.setup.limits.max_connections;
    loop {
        let next = futures_lite::future::or(async { Some(accept_stream(&listener, listener_fd, kind).await) }, async {
            stop.wait().await;
            None
        })
        .await;
        let Some(accepted) = next else {
            shard.listener_stops.borrow_mut().remove(&transport);
            return;
        };
        let Some((stream, peer)) = accepted else { continue };
        shard.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let permit = match ConnPermit::acquire(&entry.conn_count, max) {
            Ok(p) => p,
            Err(why) => {
                let c = match why {
                    router_core::runtime::conn::NoPermit::TransportLimit => &shard.stats.refused_connection_limit,
                    router_core::runtime::conn::NoPermit::Descriptors => &shard.stats.refused_fd_limit,
                };
                c.fetch_add(1, Ordering::Relaxed);
                glommio::spawn_local(router_core::runtime::conn::refuse_over_limit_on(entry.setup.clone(), stream))
                    .detach();
                continue;
            }
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
            // A task of its own: this opening task's future (TLS,
            // handshakes, authentication: about 24 KB) must not stay
            // allocated for the session's life.
            glommio::spawn_local(serve_front(shard, a)).detach();
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
