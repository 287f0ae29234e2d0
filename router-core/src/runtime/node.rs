//! Starting a router worker: bind, spawn one pinned executor per shard,
//! wire the shard-to-shard channels, start accepting.

use std::os::fd::{AsRawFd, FromRawFd};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

use glommio::channels::shared_channel::{self, ConnectedSender, SharedReceiver, SharedSender};
use glommio::net::TcpListener;
use glommio::{LocalExecutorBuilder, Placement};

use super::bind::{bind, dup, BoundListener};
use super::conn::{open, serve_session, ConnPermit};
use super::directory::SessionDirectory;
use super::rlink::{RLinkError, RLinkSetup, RLinkStatus};
use super::setup::{EndpointSetup, RealmSetup, RealmTable, RouterSetup};
use super::shard::{NodeShared, NodeStats, Shard, ShardMsg};
use super::stream::{SocketKind, Stream};
use crate::RouterError;

/// Capacity of each shard-to-shard channel (hand-offs in flight).
const SHARD_CHANNEL_CAPACITY: usize = 1024;

/// A running router worker.
pub struct RouterNode {
    executors: Vec<glommio::ExecutorJoinHandle<()>>,
    /// The bound endpoints, in transport order (real ports if 0 was asked).
    pub endpoints: Vec<EndpointSetup>,
    /// Node-wide counters.
    pub stats: Arc<NodeStats>,
    /// The session directory.
    pub directory: Arc<SessionDirectory>,
    /// Router-to-router link counters.
    pub cluster: Arc<super::rlink::ClusterCounters>,
    /// This worker's instance id.
    pub instance: u64,
    setup: Arc<RouterSetup>,
    /// The realms being served (start-up and run-time ones).
    realms: Arc<super::setup::RealmTable>,
    /// The transports (start-up and run-time ones).
    transports: Arc<super::setup::TransportTable>,
    /// Serialises run-time transport starts and stops.
    transport_lock: std::sync::Mutex<()>,
    /// Run-time control of each shard.
    control: Vec<flume::Sender<Control>>,
    /// The worker's message traces (the management API's `tracing.*`).
    tracer: Arc<crate::engine::trace::Tracer>,
}

/// Why a realm could not be started or stopped at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RealmError {
    #[error("realm '{0}' is already running on this router worker")]
    Exists(String),
    #[error("no realm '{0}' on this router worker")]
    NoSuchRealm(String),
    #[error("invalid realm: {0}")]
    Invalid(String),
    #[error("realm '{realm}' has no role '{role}'")]
    NoSuchRole { realm: String, role: String },
    #[error("the router worker is not running")]
    NotRunning,
}

/// The answer to a router-originated call: the result, or the error URI and
/// message; or why the realm could not take it.
pub type InternalCallReply = Result<Result<wamp_proto::Value, (String, String)>, RealmError>;

/// Run-time requests to a shard (from [`RouterNode`]'s thread).
enum Control {
    StartLink { setup: RLinkSetup, reply: flume::Sender<Result<(), RLinkError>> },
    StopLink { realm: String, id: String, reply: flume::Sender<Result<(), RLinkError>> },
    Links { realm: String, reply: flume::Sender<Result<Vec<RLinkStatus>, RLinkError>> },
    Peers { realm: String, reply: flume::Sender<Result<Vec<super::rlink::PeerInfo>, RLinkError>> },
    StartRealm { setup: Arc<RealmSetup>, reply: flume::Sender<Result<(), RealmError>> },
    StopRealm { name: String, reply: flume::Sender<Result<usize, RealmError>> },
    SetRole { realm: String, role: crate::engine::Role, reply: flume::Sender<Result<(), RealmError>> },
    StartListener { index: usize, fd: i32, kind: SocketKind, reply: flume::Sender<()> },
    StopListener { index: usize, reply: flume::Sender<()> },
    RemoveRole { realm: String, name: String, reply: flume::Sender<Result<usize, RealmError>> },
    Roles { realm: String, reply: flume::Sender<Result<Vec<String>, RealmError>> },
    Tap { realm: String, reply: flume::Sender<Result<OperatorEvents, RealmError>> },
    MetaCall { realm: String, procedure: String, payload: wamp_proto::Payload, reply: flume::Sender<InternalCallReply> },
}

/// The meta events of a realm for its operator (see [`RouterNode::operator_events`]).
pub type OperatorEvents = flume::Receiver<(String, wamp_proto::List)>;

/// Most meta events waiting for the operator per tapped realm.
pub const OPERATOR_EVENTS_CAPACITY: usize = 4096;

/// How long a control request may wait for its shard.
const CONTROL_TIMEOUT: Duration = Duration::from_secs(10);

/// Reloads the TLS files of every TLS transport; all are tried, the first
/// error is returned. `Ok(n)`: `n` transports reloaded.
pub fn reload_certificates(transports: &[super::setup::TransportSetup]) -> Result<usize, RouterError> {
    let mut n = 0;
    let mut first_err = None;
    for t in transports {
        if let Some(src) = &t.tls {
            match src.reload() {
                Ok(()) => n += 1,
                Err(e) => {
                    tracing::error!(transport = %t.id, error = %e, "TLS reload failed; keeping the previous certificate");
                    first_err.get_or_insert(e);
                }
            }
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(n),
    }
}

impl RouterNode {
    /// Binds every transport and starts the shards. Returns once every shard
    /// is accepting connections.
    pub fn start(setup: RouterSetup) -> Result<RouterNode, RouterError> {
        if setup.shards == 0 {
            return Err(RouterError::Setup("shards must be at least 1".into()));
        }
        let listeners: Vec<BoundListener> =
            setup.transports.iter().map(|t| bind(&t.endpoint)).collect::<Result<_, _>>()?;
        let endpoints = listeners.iter().map(|l| l.endpoint.clone()).collect();
        let n = setup.shards;
        let cpus: Vec<usize> = if setup.pin_cores { allowed_cpus()? } else { Vec::new() };
        let configured_links: usize = setup.realms.iter().map(|r| r.rlinks.len()).sum();
        if configured_links > 0 && setup.node_key.is_none() {
            return Err(RouterError::Setup(
                "rlinks need the node key (controller.options.node_key) to prove this worker to its peers".into(),
            ));
        }
        let cluster = Arc::new(super::rlink::ClusterCounters::default());
        cluster.unsettled.store(configured_links, Ordering::Relaxed);
        let shared = Arc::new(NodeShared {
            instance: rand::random::<u64>().max(1),
            cluster,
            realms: Arc::new(RealmTable::new(&setup)),
            transports: Arc::new(super::setup::TransportTable::new(&setup.transports)),
            setup: Arc::new(setup),
            directory: Arc::new(SessionDirectory::new()),
            stats: Arc::new(NodeStats::default()),
            tracer: Arc::default(),
        });
        // channels[i][j]: shard i -> shard j.
        let mut senders: Vec<Vec<Option<SharedSender<ShardMsg>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        let mut receivers: Vec<Vec<SharedReceiver<ShardMsg>>> = (0..n).map(|_| Vec::new()).collect();
        for (i, row) in senders.iter_mut().enumerate() {
            for (j, slot) in row.iter_mut().enumerate() {
                if i != j {
                    let (tx, rx) = shared_channel::new_bounded(SHARD_CHANNEL_CAPACITY);
                    *slot = Some(tx);
                    receivers[j].push(rx);
                }
            }
        }
        let (ready_tx, ready_rx) = mpsc::channel::<Result<usize, String>>();
        let mut executors = Vec::with_capacity(n);
        let mut control = Vec::with_capacity(n);
        for (i, (my_senders, my_receivers)) in senders.into_iter().zip(receivers).enumerate() {
            let (ctl_tx, ctl_rx) = flume::bounded::<Control>(64);
            control.push(ctl_tx);
            let placement = if cpus.is_empty() { Placement::Unbound } else { Placement::Fixed(cpus[i % cpus.len()]) };
            let mut fds = Vec::new();
            for l in &listeners {
                fds.push((
                    l.dup_fd().map_err(|e| RouterError::Bind { endpoint: l.endpoint.to_string(), source: e })?,
                    l.endpoint.clone(),
                ));
            }
            let shared = shared.clone();
            let ready = ready_tx.clone();
            let io_memory = shared.setup.io_memory;
            let ex = LocalExecutorBuilder::new(placement)
                .name(&format!("junction-shard-{i}"))
                .io_memory(io_memory)
                .ring_depth(RING_DEPTH)
                .spawn(move || async move { run_shard(i, shared, my_senders, my_receivers, fds, ready, ctl_rx).await })
                .map_err(|e| RouterError::Setup(format!("cannot start shard {i}: {e}")))?;
            executors.push(ex);
        }
        drop(ready_tx);
        for _ in 0..n {
            match ready_rx.recv_timeout(Duration::from_secs(30)) {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(RouterError::Setup(e)),
                Err(_) => return Err(RouterError::Setup("a shard did not start within 30 s".into())),
            }
        }
        drop(listeners);
        Ok(RouterNode {
            executors,
            endpoints,
            stats: shared.stats.clone(),
            directory: shared.directory.clone(),
            cluster: shared.cluster.clone(),
            instance: shared.instance,
            setup: shared.setup.clone(),
            realms: shared.realms.clone(),
            transports: shared.transports.clone(),
            transport_lock: std::sync::Mutex::new(()),
            control,
            tracer: shared.tracer.clone(),
        })
    }

    /// The worker's message traces, shared by all its realms: start and
    /// stop traces and read their records here (see
    /// [`crate::engine::trace`]).
    pub fn tracer(&self) -> Arc<crate::engine::trace::Tracer> {
        self.tracer.clone()
    }

    fn control<T>(
        &self,
        realm: &str,
        make: impl FnOnce(flume::Sender<Result<T, RLinkError>>) -> Control,
    ) -> Result<T, RLinkError> {
        let home = self.realms.home(realm).ok_or_else(|| RLinkError::NoSuchRealm(realm.to_owned()))?;
        let (tx, rx) = flume::bounded(1);
        self.control.get(home).ok_or(RLinkError::NotRunning)?.send(make(tx)).map_err(|_| RLinkError::NotRunning)?;
        rx.recv_timeout(CONTROL_TIMEOUT).map_err(|_| RLinkError::NotRunning)?
    }

    /// Starts a realm at run time (the management API's
    /// `start_router_realm`): it is homed on its shard (pinned, or by hash
    /// of the name), its configured `rlinks` start, and new sessions may
    /// join as soon as this returns.
    pub fn start_realm(&self, setup: RealmSetup) -> Result<(), RealmError> {
        if !wamp_proto::uri::is_valid_uri(&setup.name, false, false) {
            return Err(RealmError::Invalid(format!("'{}' is not a valid realm name (a WAMP URI)", setup.name)));
        }
        if !setup.rlinks.is_empty() && self.setup.node_key.is_none() {
            return Err(RealmError::Invalid("rlinks need the node key to prove this worker to its peers".into()));
        }
        if let Some(l) = setup.rlinks.iter().find(|l| l.realm != setup.name) {
            return Err(RealmError::Invalid(format!("rlink '{}' names realm '{}'", l.id, l.realm)));
        }
        if self.realms.get(&setup.name).is_some() {
            return Err(RealmError::Exists(setup.name));
        }
        let home = super::setup::home_shard_of(&setup, self.setup.shards);
        let (tx, rx) = flume::bounded(1);
        let msg = Control::StartRealm { setup: Arc::new(setup), reply: tx };
        self.control.get(home).ok_or(RealmError::NotRunning)?.send(msg).map_err(|_| RealmError::NotRunning)?;
        rx.recv_timeout(CONTROL_TIMEOUT).map_err(|_| RealmError::NotRunning)?
    }

    /// Stops a realm (started with the worker or at run time): new sessions
    /// are refused with `wamp.error.no_such_realm`, every session is closed
    /// with GOODBYE `wamp.close.system_shutdown`, its links stop. Returns
    /// the number of sessions closed.
    pub fn stop_realm(&self, name: &str) -> Result<usize, RealmError> {
        let home = self.realms.home(name).ok_or_else(|| RealmError::NoSuchRealm(name.to_owned()))?;
        let (tx, rx) = flume::bounded(1);
        let msg = Control::StopRealm { name: name.to_owned(), reply: tx };
        self.control.get(home).ok_or(RealmError::NotRunning)?.send(msg).map_err(|_| RealmError::NotRunning)?;
        rx.recv_timeout(CONTROL_TIMEOUT).map_err(|_| RealmError::NotRunning)?
    }

    /// The names of the realms being served, in start order.
    pub fn realm_names(&self) -> Vec<String> {
        self.realms.names()
    }

    fn realm_control<T>(
        &self,
        realm: &str,
        make: impl FnOnce(flume::Sender<Result<T, RealmError>>) -> Control,
    ) -> Result<T, RealmError> {
        let home = self.realms.home(realm).ok_or_else(|| RealmError::NoSuchRealm(realm.to_owned()))?;
        let (tx, rx) = flume::bounded(1);
        self.control.get(home).ok_or(RealmError::NotRunning)?.send(make(tx)).map_err(|_| RealmError::NotRunning)?;
        rx.recv_timeout(CONTROL_TIMEOUT).map_err(|_| RealmError::NotRunning)?
    }

    /// Starts a transport at run time (the management API's
    /// `start_router_transport`): binds it (port 0 picks a free port) and
    /// starts its accept loop on every shard. Returns its index and the
    /// endpoint it listens on. `proxy_keys`: node keys trusted for proxy
    /// links on this transport besides the worker's own.
    pub fn start_transport(
        &self,
        mut setup: super::setup::TransportSetup,
        proxy_keys: Vec<[u8; 32]>,
    ) -> Result<(usize, EndpointSetup), RouterError> {
        let _serial = self.transport_lock.lock().unwrap_or_else(|e| e.into_inner());
        if self.transports.all().iter().any(|t| t.setup.id == setup.id && !t.stopped.load(Ordering::Relaxed)) {
            return Err(RouterError::Setup(format!("a transport '{}' is running already", setup.id)));
        }
        let listener = bind(&setup.endpoint)?;
        setup.endpoint = listener.endpoint.clone();
        let kind = match &setup.endpoint {
            EndpointSetup::Tcp { .. } => SocketKind::Tcp,
            EndpointSetup::Unix { .. } => SocketKind::Unix,
        };
        let endpoint = setup.endpoint.clone();
        let index = self.transports.push(super::setup::TransportEntry::new(setup, proxy_keys));
        for ctl in &self.control {
            let fd = listener.dup_fd().map_err(|e| RouterError::Bind { endpoint: endpoint.to_string(), source: e })?;
            let (tx, rx) = flume::bounded(1);
            if ctl.send(Control::StartListener { index, fd, kind, reply: tx }).is_err()
                || rx.recv_timeout(CONTROL_TIMEOUT).is_err()
            {
                // SAFETY: the shard never took the fd.
                drop(unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) });
                return Err(RouterError::Setup("a shard did not take the new transport".into()));
            }
        }
        Ok((index, endpoint))
    }

    /// Stops the transport with config id `id`: it accepts no more
    /// connections (established ones stay). A Unix socket's file is removed.
    pub fn stop_transport(&self, id: &str) -> Result<(), RouterError> {
        let _serial = self.transport_lock.lock().unwrap_or_else(|e| e.into_inner());
        let all = self.transports.all();
        let (index, entry) = all
            .iter()
            .enumerate()
            .find(|(_, t)| t.setup.id == id && !t.stopped.load(Ordering::Relaxed))
            .ok_or_else(|| RouterError::Setup(format!("no running transport '{id}'")))?;
        entry.stopped.store(true, Ordering::Relaxed);
        for ctl in &self.control {
            let (tx, rx) = flume::bounded(1);
            if ctl.send(Control::StopListener { index, reply: tx }).is_ok() {
                let _ = rx.recv_timeout(CONTROL_TIMEOUT);
            }
        }
        if let EndpointSetup::Unix { path } = &entry.setup.endpoint {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    }

    /// Gives running transport `id` a new setup (its web services changed,
    /// `start_web_transport_service`): connections accepted from now on
    /// are served by it, established ones keep theirs; the listener and
    /// its port stay.
    pub fn replace_transport_setup(&self, id: &str, setup: super::setup::TransportSetup) -> Result<(), RouterError> {
        let _serial = self.transport_lock.lock().unwrap_or_else(|e| e.into_inner());
        let index = self
            .transports
            .all()
            .iter()
            .position(|t| t.setup.id == id && !t.stopped.load(Ordering::Relaxed))
            .ok_or_else(|| RouterError::Setup(format!("no running transport '{id}'")))?;
        if !self.transports.replace_setup(index, setup) {
            return Err(RouterError::Setup(format!("no running transport '{id}'")));
        }
        Ok(())
    }

    /// Every transport (start-up and run-time, stopped ones included), by index.
    pub fn transports(&self) -> Vec<Arc<super::setup::TransportEntry>> {
        self.transports.all()
    }

    /// Adds a role to a running realm, or replaces the permissions of the
    /// role of that name (the management API's `start_router_realm_role`;
    /// sessions of the role get the new permissions at once).
    pub fn set_realm_role(&self, realm: &str, role: crate::engine::Role) -> Result<(), RealmError> {
        if role.name.is_empty() {
            return Err(RealmError::Invalid("a role needs a name".into()));
        }
        let r = realm.to_owned();
        self.realm_control(realm, |reply| Control::SetRole { realm: r, role, reply })
    }

    /// Removes a role from a running realm; its sessions are closed.
    /// Returns how many.
    pub fn remove_realm_role(&self, realm: &str, name: &str) -> Result<usize, RealmError> {
        let (r, n) = (realm.to_owned(), name.to_owned());
        self.realm_control(realm, |reply| Control::RemoveRole { realm: r, name: n, reply })
    }

    /// Calls a meta procedure of a running realm as its operator (trusted,
    /// no session: the management API's `remote.realm.meta.*`): the result,
    /// or the WAMP error (URI, message).
    pub fn meta_call(
        &self,
        realm: &str,
        procedure: &str,
        payload: wamp_proto::Payload,
    ) -> Result<Result<wamp_proto::Value, (String, String)>, RealmError> {
        let (r, p) = (realm.to_owned(), procedure.to_owned());
        self.realm_control(realm, |reply| Control::MetaCall { realm: r, procedure: p, payload, reply })
    }

    /// From now on, the realm's meta events (`wamp.session.on_join`, ...)
    /// also arrive on the returned channel, as (topic, args): the
    /// management API's `bridge_meta_api`. Bounded: when the receiver lags
    /// behind by [`OPERATOR_EVENTS_CAPACITY`] events, newer ones are dropped.
    pub fn operator_events(&self, realm: &str) -> Result<OperatorEvents, RealmError> {
        let r = realm.to_owned();
        self.realm_control(realm, |reply| Control::Tap { realm: r, reply })
    }

    /// The roles of a running realm.
    pub fn realm_roles(&self, realm: &str) -> Result<Vec<String>, RealmError> {
        let r = realm.to_owned();
        self.realm_control(realm, |reply| Control::Roles { realm: r, reply })
    }

    /// Starts a router-to-router link at run time (the management API's
    /// `start_router_realm_link`).
    pub fn start_rlink(&self, setup: RLinkSetup) -> Result<(), RLinkError> {
        let realm = setup.realm.clone();
        self.control(&realm, |reply| Control::StartLink { setup, reply })
    }

    /// Stops a link started from config or at run time.
    pub fn stop_rlink(&self, realm: &str, id: &str) -> Result<(), RLinkError> {
        let (r, i) = (realm.to_owned(), id.to_owned());
        self.control(realm, |reply| Control::StopLink { realm: r, id: i, reply })
    }

    /// The realm's configured links and what they are doing.
    pub fn rlinks(&self, realm: &str) -> Result<Vec<RLinkStatus>, RLinkError> {
        let r = realm.to_owned();
        self.control(realm, |reply| Control::Links { realm: r, reply })
    }

    /// The realm's live links to peer workers (dialed or accepted).
    pub fn peers(&self, realm: &str) -> Result<Vec<super::rlink::PeerInfo>, RLinkError> {
        let r = realm.to_owned();
        self.control(realm, |reply| Control::Peers { realm: r, reply })
    }

    /// Waits (at most `timeout`) until every configured link has synced
    /// with its peer or failed once; `false` on timeout.
    pub fn wait_rlinks_settled(&self, timeout: Duration) -> bool {
        let until = std::time::Instant::now() + timeout;
        while self.cluster.unsettled.load(Ordering::Relaxed) > 0 {
            if std::time::Instant::now() >= until {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        true
    }

    /// Re-reads the certificate and key files of every TLS transport; new
    /// connections use them, established ones keep theirs. Returns how many
    /// transports were reloaded.
    pub fn reload_certificates(&self) -> Result<usize, RouterError> {
        let live: Vec<super::setup::TransportSetup> = self
            .transports
            .all()
            .iter()
            .filter(|t| !t.stopped.load(Ordering::Relaxed))
            .map(|t| (*t.setup).clone())
            .collect();
        reload_certificates(&live)
    }

    /// Blocks until every shard has stopped (they run until the process ends).
    pub fn join(self) {
        for e in self.executors {
            let _ = e.join();
        }
    }
}

async fn run_shard(
    id: usize,
    shared: Arc<NodeShared>,
    senders: Vec<Option<SharedSender<ShardMsg>>>,
    receivers: Vec<SharedReceiver<ShardMsg>>,
    listener_fds: Vec<(i32, EndpointSetup)>,
    ready: mpsc::Sender<Result<usize, String>>,
    control: flume::Receiver<Control>,
) {
    // Receivers first, each in its own task, so every sender's connect can complete.
    let shard_slot: Rc<std::cell::RefCell<Option<Rc<Shard>>>> = Rc::new(std::cell::RefCell::new(None));
    for rx in receivers {
        let slot = shard_slot.clone();
        glommio::spawn_local(async move {
            let rx = rx.connect().await;
            while let Some(msg) = rx.recv().await {
                // A peer may send before this shard has built its state (only
                // in the first moments after start-up): wait for it.
                let shard = loop {
                    if let Some(s) = slot.borrow().clone() {
                        break s;
                    }
                    glommio::timer::sleep(Duration::from_millis(1)).await;
                };
                match msg {
                    ShardMsg::Handoff(h) => {
                        glommio::spawn_local(serve_session(shard, *h)).detach();
                    }
                    ShardMsg::LinkHandoff(h) => match h.peer {
                        Some(instance) => {
                            glommio::spawn_local(super::rlink::serve_accepted(shard, *h, instance)).detach();
                        }
                        None => {
                            glommio::spawn_local(super::link::serve_link(shard, *h)).detach();
                        }
                    },
                    ShardMsg::AuthCall { token, from, realm, procedure, args } => {
                        shard.start_auth_call(token, from, realm, procedure, args);
                    }
                    ShardMsg::AuthResult { token, result } => {
                        let id = shard.id;
                        shard.deliver_auth_result(id, token, result);
                    }
                }
            }
        })
        .detach();
    }
    let mut peers: Vec<Option<ConnectedSender<ShardMsg>>> = Vec::with_capacity(senders.len());
    for s in senders {
        peers.push(match s {
            Some(s) => Some(s.connect().await),
            None => None,
        });
    }
    let shard = Rc::new(Shard::new(id, &shared, peers));
    *shard_slot.borrow_mut() = Some(shard.clone());
    for host in shard.realm_hosts() {
        glommio::spawn_local(host.clone().run_timer()).detach();
        glommio::spawn_local(host.clone().run_internal_results(shard.clone())).detach();
    }
    for r in &shared.setup.realms {
        let Some(host) = shard.realm_host(&r.name) else { continue };
        for l in &r.rlinks {
            if let Err(e) = super::rlink::start(&shard, &host, l.clone(), true) {
                tracing::error!(rlink = %l.id, error = %e, "cannot start rlink");
                shard.cluster.unsettled.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
    {
        let shard = shard.clone();
        let shared = shared.clone();
        glommio::spawn_local(async move {
            while let Ok(c) = control.recv_async().await {
                match c {
                    Control::StartLink { setup, reply } => {
                        let r = match shard.realm_host(&setup.realm) {
                            Some(host) => super::rlink::start(&shard, &host, setup, false),
                            None => Err(RLinkError::NoSuchRealm(setup.realm.clone())),
                        };
                        let _ = reply.send(r);
                    }
                    Control::StartRealm { setup, reply } => {
                        let r = match shard.add_realm(setup.clone(), &shared) {
                            None => Err(RealmError::Exists(setup.name.clone())),
                            Some(host) => {
                                glommio::spawn_local(host.clone().run_timer()).detach();
                                glommio::spawn_local(host.clone().run_internal_results(shard.clone())).detach();
                                for l in &setup.rlinks {
                                    if let Err(e) = super::rlink::start(&shard, &host, l.clone(), false) {
                                        tracing::error!(rlink = %l.id, error = %e, "cannot start rlink");
                                    }
                                }
                                tracing::info!(realm = %setup.name, shard = shard.id, "realm started");
                                Ok(())
                            }
                        };
                        let _ = reply.send(r);
                    }
                    Control::StopRealm { name, reply } => {
                        let r = shard.remove_realm(&name).ok_or_else(|| RealmError::NoSuchRealm(name.clone()));
                        if let Ok(n) = r {
                            tracing::info!(realm = %name, sessions = n, "realm stopped");
                        }
                        let _ = reply.send(r);
                    }
                    Control::SetRole { realm, role, reply } => {
                        let r = match shard.realm_host(&realm) {
                            Some(host) => {
                                host.set_role(&role);
                                // HELLO checks roles in the realm table.
                                shard.realm_table.update(&realm, |s| {
                                    s.roles.retain(|x| x.name != role.name);
                                    s.roles.push(role.clone());
                                });
                                Ok(())
                            }
                            None => Err(RealmError::NoSuchRealm(realm)),
                        };
                        let _ = reply.send(r);
                    }
                    Control::RemoveRole { realm, name, reply } => {
                        let r = match shard.realm_host(&realm) {
                            Some(host) => {
                                shard.realm_table.update(&realm, |s| s.roles.retain(|x| x.name != name));
                                host.remove_role(&name)
                                    .ok_or(RealmError::NoSuchRole { realm: realm.clone(), role: name })
                            }
                            None => Err(RealmError::NoSuchRealm(realm)),
                        };
                        let _ = reply.send(r);
                    }
                    Control::MetaCall { realm, procedure, payload, reply } => {
                        let r = shard
                            .realm_host(&realm)
                            .map(|h| h.operator_meta_call(&procedure, &payload))
                            .ok_or(RealmError::NoSuchRealm(realm));
                        let _ = reply.send(r);
                    }
                    Control::Tap { realm, reply } => {
                        let r = match shard.realm_host(&realm) {
                            Some(h) => {
                                let (tx, rx) = flume::bounded(OPERATOR_EVENTS_CAPACITY);
                                h.tap_operator_events(tx);
                                Ok(rx)
                            }
                            None => Err(RealmError::NoSuchRealm(realm)),
                        };
                        let _ = reply.send(r);
                    }
                    Control::Roles { realm, reply } => {
                        let r = shard.realm_host(&realm).map(|h| h.role_names()).ok_or(RealmError::NoSuchRealm(realm));
                        let _ = reply.send(r);
                    }
                    Control::StartListener { index, fd, kind, reply } => {
                        // SAFETY: `fd` is a dup of a bound, listening socket that this shard now owns.
                        let listener = unsafe { TcpListener::from_raw_fd(fd) };
                        spawn_accept_loop(&shard, listener, fd, kind, index);
                        let _ = reply.send(());
                    }
                    Control::StopListener { index, reply } => {
                        if let Some(stop) = shard.listener_stops.borrow().get(&index) {
                            stop.notify();
                        }
                        let _ = reply.send(());
                    }
                    Control::StopLink { realm, id, reply } => {
                        let r = match shard.realm_host(&realm) {
                            Some(host) => super::rlink::stop(&host, &realm, &id),
                            None => Err(RLinkError::NoSuchRealm(realm)),
                        };
                        let _ = reply.send(r);
                    }
                    Control::Links { realm, reply } => {
                        let r = match shard.realm_host(&realm) {
                            Some(host) => Ok(host.links().status()),
                            None => Err(RLinkError::NoSuchRealm(realm)),
                        };
                        let _ = reply.send(r);
                    }
                    Control::Peers { realm, reply } => {
                        let r = match shard.realm_host(&realm) {
                            Some(host) => Ok(host.links().peers()),
                            None => Err(RLinkError::NoSuchRealm(realm)),
                        };
                        let _ = reply.send(r);
                    }
                }
            }
        })
        .detach();
    }
    for (t, (fd, endpoint)) in listener_fds.into_iter().enumerate() {
        // SAFETY: `fd` is a dup of a bound, listening socket that this shard now owns.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        let kind = match endpoint {
            EndpointSetup::Tcp { .. } => SocketKind::Tcp,
            EndpointSetup::Unix { .. } => SocketKind::Unix,
        };
        spawn_accept_loop(&shard, listener, fd, kind, t);
    }
    if id == 0 {
        // Sessions over proxy links hold no connection of their own: count both.
        let directory = shard.directory.clone();
        let load = move || directory.len() + super::fdlimit::open_connections();
        glommio::spawn_local(trim_after_storms(load)).detach();
    }
    let _ = ready.send(Ok(id));
    // The executor lives as long as its tasks; park this one forever.
    std::future::pending::<()>().await;
}

/// Runs the accept loop of transport `t` on this shard until it is stopped.
fn spawn_accept_loop(shard: &Rc<Shard>, listener: TcpListener, fd: std::os::fd::RawFd, kind: SocketKind, t: usize) {
    let stop = Rc::new(super::notify::LocalNotify::default());
    shard.listener_stops.borrow_mut().insert(t, stop.clone());
    glommio::spawn_local(accept_loop(shard.clone(), listener, fd, kind, t, stop)).detach();
}

async fn accept_loop(
    shard: Rc<Shard>,
    listener: TcpListener,
    listener_fd: std::os::fd::RawFd,
    kind: SocketKind,
    transport: usize,
    stop: Rc<super::notify::LocalNotify>,
) {
    super::fdlimit::open_spare();
    let entry = shard.transports.get(transport);
    let max = entry.setup.limits.max_connections;
    loop {
        let next = futures_lite::future::or(async { Some(accept_stream(&listener, listener_fd, kind).await) }, async {
            stop.wait().await;
            None
        })
        .await;
        let Some(accepted) = next else {
            // Stopped: the listener (this shard's dup of it) closes when dropped.
            shard.listener_stops.borrow_mut().remove(&transport);
            return;
        };
        let Some((stream, peer)) = accepted else { continue };
        shard.stats.accepted.fetch_add(1, Ordering::Relaxed);
        let counter = &entry.conn_count;
        let permit = match ConnPermit::acquire(counter, max) {
            Ok(p) => p,
            Err(why) => {
                let c = match why {
                    super::conn::NoPermit::TransportLimit => &shard.stats.refused_connection_limit,
                    super::conn::NoPermit::Descriptors => &shard.stats.refused_fd_limit,
                };
                c.fetch_add(1, Ordering::Relaxed);
                glommio::spawn_local(super::conn::refuse_over_limit(shard.clone(), stream, transport)).detach();
                continue;
            }
        };
        glommio::spawn_local(open(shard.clone(), stream, kind, transport, peer, permit)).detach();
    }
}

/// Accepts one connection: the stream and the peer's address as Crossbar
/// writes it (`tcp4:1.2.3.4:5678`, `unix`). `None` after a failed accept
/// (backed off) or a failed Unix rewrap: call again.
pub async fn accept_stream(
    listener: &TcpListener,
    listener_fd: std::os::fd::RawFd,
    kind: SocketKind,
) -> Option<(Stream, String)> {
    let stream = match listener.accept().await {
        Ok(s) => s,
        Err(glommio::GlommioError::IoError(e)) if super::fdlimit::is_out_of_descriptors(&e) => {
            // Out of descriptors although under the connection capacity
            // (descriptors used elsewhere): shed the waiting connection
            // rather than leave it queued, unserved, in the backlog.
            let shed = super::fdlimit::shed_one(listener_fd);
            tracing::warn!(error = %e, shed, "accept failed: out of file descriptors");
            glommio::timer::sleep(Duration::from_millis(10)).await;
            return None;
        }
        Err(e) => {
            // Other failures: back off instead of spinning.
            tracing::warn!(error = %e, "accept failed");
            glommio::timer::sleep(Duration::from_millis(100)).await;
            return None;
        }
    };
    match kind {
        SocketKind::Tcp => {
            let _ = stream.set_nodelay(true);
            let peer = match stream.peer_addr() {
                Ok(std::net::SocketAddr::V4(a)) => format!("tcp4:{}:{}", a.ip(), a.port()),
                Ok(std::net::SocketAddr::V6(a)) => format!("tcp6:[{}]:{}", a.ip(), a.port()),
                Err(_) => "tcp:unknown".to_owned(),
            };
            Some((Stream::Tcp(stream), peer))
        }
        SocketKind::Unix => {
            // glommio's accept hands out a TcpStream; rewrap the fd as a Unix stream.
            let fd = dup(stream.as_raw_fd()).ok()?;
            drop(stream);
            // SAFETY: `fd` is a fresh dup of an accepted Unix stream socket.
            Some((unsafe { Stream::from_fd(SocketKind::Unix, fd) }, "unix".to_owned()))
        }
    }
}

/// The CPUs this process may run on (its affinity mask), ascending.
pub fn allowed_cpus() -> Result<Vec<usize>, RouterError> {
    // SAFETY: sched_getaffinity fills a zeroed cpu_set_t of the size we pass.
    let set = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        if libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) != 0 {
            return Err(RouterError::Setup(format!("cannot read CPU affinity: {}", std::io::Error::last_os_error())));
        }
        set
    };
    let cpus: Vec<usize> = (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `i` is below CPU_SETSIZE.
        .filter(|&i| unsafe { libc::CPU_ISSET(i, &set) })
        .collect();
    if cpus.is_empty() {
        return Err(RouterError::Setup("the process may run on no CPU".into()));
    }
    Ok(cpus)
}

/// io_uring ring depth per shard (glommio's default is 128). Every idle
/// connection has a poll request outstanding, and the kernel finds a poll
/// to cancel (at every close and hand-off) by walking a hash table whose
/// size follows the ring's: with 128 entries and 20,000 connections that
/// walk was 15 % of the router's CPU during a connection storm.
pub const RING_DEPTH: usize = 4096;

/// glibc's mmap threshold set by [`tune_allocator`]: larger allocations
/// (hash tables grown by a storm, big messages) get their own mapping,
/// which goes back to the system when freed.
pub const MMAP_THRESHOLD: usize = 256 * 1024;
/// glibc's trim threshold set by [`tune_allocator`]: free memory at the top
/// of an arena beyond this is returned as soon as it is freed.
pub const TRIM_THRESHOLD: usize = 1024 * 1024;

/// Fixes glibc's mmap and trim thresholds (see [`MMAP_THRESHOLD`],
/// [`TRIM_THRESHOLD`]); call it once, before any thread starts. By default
/// glibc raises both thresholds each time a large mapped block is freed (up
/// to 32 MiB and 64 MiB), and `malloc_trim` does not touch the top of a
/// thread's arena: after a connection storm the freed memory at the top of
/// each shard's arena stayed resident, and grew from one storm to the next
/// (measured, 19,500 sessions per storm: 11.6 MiB before, 21.9, 38.1, 38.4
/// MiB after three storms; with fixed thresholds 11.5 → 17.1, 18.2, 18.2).
/// Setting either threshold turns the dynamic adjustment off. An operator's
/// own `GLIBC_TUNABLES` with `malloc` settings wins: then nothing is changed.
/// Returns whether the thresholds were set.
pub fn tune_allocator() -> bool {
    if std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("malloc")) {
        return false;
    }
    #[cfg(target_env = "gnu")]
    // SAFETY: mallopt only sets allocator parameters; called before other threads allocate.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD as libc::c_int) == 1
            && libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD as libc::c_int) == 1
    }
    #[cfg(not(target_env = "gnu"))]
    false
}

/// Gives memory back to the operating system after many connections
/// closed (run it on one shard of a process). glibc's allocator keeps the
/// freed memory of each shard thread's arena (measured: 8,000 idle sessions
/// took a router from 9 to 79 MiB, and it stayed there after they all
/// closed); `malloc_trim(0)` returns the free pages of every arena. Checked
/// every 2 s, trimming (then again 1, 3, 6, 10 and 20 s later) only when `load` (connections,
/// sessions) fell by at least 1,000 and by half since its peak, so a steady
/// process never pays for it.
/// Seconds between the follow-up trims after a storm (see
/// [`trim_after_storms`]).
const AFTER_STORM_TRIMS: [u64; 5] = [1, 2, 3, 4, 10];

pub async fn trim_after_storms(load: impl Fn() -> usize) {
    fn trim(now: usize, peak: usize) {
        let started = std::time::Instant::now();
        // SAFETY: malloc_trim only walks the allocator's own arenas.
        let released = unsafe { libc::malloc_trim(0) };
        let rss_kib = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
            .map(|pages| pages * 4);
        tracing::debug!(connections = now, peak, released = released != 0, took = ?started.elapsed(), ?rss_kib, "memory trimmed after connections closed");
    }
    let mut peak = 0usize;
    loop {
        glommio::timer::sleep(Duration::from_secs(2)).await;
        let now = load();
        peak = peak.max(now);
        if peak - now >= 1000 && now <= peak / 2 {
            trim(now, peak);
            // What the closed connections held is freed only some seconds
            // after the count fell (their heartbeat timers and tasks end
            // later): measured, a trim right at the drop left 64 of 84 MiB
            // resident after 10,000 sessions closed, one 30 s later 16 MiB.
            // So trim again as that memory comes free.
            for wait in AFTER_STORM_TRIMS {
                glommio::timer::sleep(Duration::from_secs(wait)).await;
                trim(load(), peak);
            }
            peak = load();
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_env = "gnu")]
    fn allocator_thresholds_are_fixed_unless_the_operator_set_malloc_tunables() {
        let before = std::env::var_os("GLIBC_TUNABLES");
        std::env::set_var("GLIBC_TUNABLES", "glibc.malloc.arena_max=4");
        assert!(!super::tune_allocator(), "the operator's malloc tunables win");
        std::env::remove_var("GLIBC_TUNABLES");
        assert!(super::tune_allocator(), "glibc accepted both thresholds");
        if let Some(v) = before {
            std::env::set_var("GLIBC_TUNABLES", v);
        }
    }
}
