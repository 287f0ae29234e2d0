//! One shard: a glommio executor pinned to a core, owning the realms homed on
//! it and the connections of their sessions. Shard state is `Rc`-owned by
//! the executor and never locked; shards talk only through typed channels
//! ([`ShardMsg`]).

use foldhash::{HashMap, HashMapExt};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use glommio::channels::shared_channel::ConnectedSender;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use wamp_auth::{DynamicAuthRequest, DynamicError, FailureLimiter};
use wamp_proto::{Dict, List, Message, SessionId, Value, MAX_ID};

use super::conn::{serve_session, Conn, Handoff};
use super::directory::{SessionDirectory, SessionEntry};
use super::notify::LocalNotify;
use super::outbound::Overflow;
use super::setup::{RouterSetup, SlowConsumerPolicy};
use crate::engine::{JoinError, Realm, RealmSpec, SessionInfo, Transmit};

/// Messages between shards.
pub enum ShardMsg {
    /// A connection whose HELLO names a realm homed on the receiving shard.
    Handoff(Box<Handoff>),
    /// An authenticated proxy link serving a realm homed on the receiving shard.
    LinkHandoff(Box<super::link::LinkHandoff>),
    /// Call a dynamic authenticator registered on a realm homed on the
    /// receiving shard; answer with `AuthResult` to shard `from`.
    AuthCall { token: u64, from: usize, realm: String, procedure: String, args: List },
    /// The outcome of an `AuthCall`.
    AuthResult { token: u64, result: Result<Value, DynamicError> },
}

/// Longest a dynamic authenticator may take.
pub const AUTHENTICATOR_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// An authenticator call this shard waits for.
#[derive(Default)]
struct PendingAuth {
    result: RefCell<Option<Result<Value, DynamicError>>>,
    done: LocalNotify,
}

/// Upper bounds (seconds) of [`LatencyHistogram`]'s buckets; one more
/// bucket takes the rest.
pub const LATENCY_BOUNDS: [f64; 13] =
    [5e-6, 1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 1e-1];

/// A histogram of durations in fixed buckets (relaxed atomics, so any
/// thread can observe and a scrape reads it at any time).
#[derive(Debug)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BOUNDS.len() + 1],
    sum_ns: AtomicU64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram { buckets: std::array::from_fn(|_| AtomicU64::new(0)), sum_ns: AtomicU64::new(0) }
    }
}

impl LatencyHistogram {
    /// Counts one duration.
    pub fn observe(&self, d: std::time::Duration) {
        let s = d.as_secs_f64();
        let i = LATENCY_BOUNDS.iter().position(|&b| s <= b).unwrap_or(LATENCY_BOUNDS.len());
        self.buckets[i].fetch_add(1, Ordering::Relaxed);
        self.sum_ns.fetch_add(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// (sum in seconds, per-bucket counts with their upper bounds, the last
    /// `+Inf`).
    pub fn snapshot(&self) -> (f64, Vec<(f64, u64)>) {
        let bounds = LATENCY_BOUNDS.iter().copied().chain([f64::INFINITY]);
        let buckets = bounds.zip(&self.buckets).map(|(b, n)| (b, n.load(Ordering::Relaxed))).collect();
        (self.sum_ns.load(Ordering::Relaxed) as f64 / 1e9, buckets)
    }
}

/// Node-wide counters (relaxed atomics; none is on the per-message path).
#[derive(Default, Debug)]
pub struct NodeStats {
    pub accepted: AtomicU64,
    pub refused_connection_limit: AtomicU64,
    /// Connections refused because the process is at its descriptor
    /// capacity (see `fdlimit`).
    pub refused_fd_limit: AtomicU64,
    pub opening_refused: AtomicU64,
    pub opening_failed: AtomicU64,
    pub opening_timeouts: AtomicU64,
    pub framing_errors: AtomicU64,
    pub protocol_violations: AtomicU64,
    pub slow_consumer_closes: AtomicU64,
    pub slow_consumer_events_dropped: AtomicU64,
    pub handoffs: AtomicU64,
    pub refused_session_limit: AtomicU64,
    pub auth_failures: AtomicU64,
    pub auth_rate_limited: AtomicU64,
    pub proxy_links: AtomicU64,
    pub proxy_links_refused: AtomicU64,
    /// Bytes read from client connections (after TLS: ciphertext).
    pub bytes_received: AtomicU64,
    /// Bytes queued for client sockets now (a gauge: pending and being
    /// written, summed over connections).
    pub outbound_queued_bytes: Arc<AtomicU64>,
    /// Per read batch of a client connection: from the read returning to
    /// the routed messages queued for their connections (decoding,
    /// authorization, routing, encoding; one observation per batch).
    pub routing_batch: LatencyHistogram,
}

impl NodeStats {
    /// Adds every counter to a metrics exposition (`junction_<name>_total`).
    pub fn export(&self, e: &mut junction_web::Exposition) {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        e.counter("connections_accepted", "Connections accepted.", g(&self.accepted));
        e.counter(
            "connections_refused_limit",
            "Connections refused for the transport's connection limit.",
            g(&self.refused_connection_limit),
        );
        e.counter(
            "connections_refused_fd_limit",
            "Connections refused because the process is at its file-descriptor capacity.",
            g(&self.refused_fd_limit),
        );
        e.gauge(
            "connection_capacity",
            "Connections this process can hold (open-files limit less a reserve).",
            i64::try_from(super::fdlimit::capacity()).unwrap_or(i64::MAX),
        );
        e.counter(
            "opening_refused",
            "Connections refused while opening, with a reply (ABORT, HTTP error).",
            g(&self.opening_refused),
        );
        e.counter("opening_failed", "Connections that failed while opening.", g(&self.opening_failed));
        e.counter("opening_timeouts", "Connections whose opening handshake timed out.", g(&self.opening_timeouts));
        e.counter("framing_errors", "Sessions closed for a framing error.", g(&self.framing_errors));
        e.counter("protocol_violations", "Sessions aborted for an undecodable message.", g(&self.protocol_violations));
        e.counter("slow_consumer_closes", "Sessions closed for falling behind.", g(&self.slow_consumer_closes));
        e.counter(
            "slow_consumer_events_dropped",
            "EVENTs dropped for slow consumers (drop policy).",
            g(&self.slow_consumer_events_dropped),
        );
        e.counter("handoffs", "Sessions handed to their realm's home shard.", g(&self.handoffs));
        e.counter(
            "refused_session_limit",
            "Sessions refused for a realm's session limit.",
            g(&self.refused_session_limit),
        );
        e.counter("auth_failures", "Failed authentications.", g(&self.auth_failures));
        e.counter(
            "auth_rate_limited",
            "Authentications refused by the failed-authentication budget.",
            g(&self.auth_rate_limited),
        );
        e.counter("proxy_links", "Proxy links accepted.", g(&self.proxy_links));
        e.counter("proxy_links_refused", "Proxy links refused.", g(&self.proxy_links_refused));
        e.counter(
            "bytes_received",
            "Bytes read from client connections (as received, TLS included).",
            g(&self.bytes_received),
        );
        e.gauge(
            "outbound_queued_bytes",
            "Bytes queued for client sockets now (pending and being written, all connections).",
            i64::try_from(self.outbound_queued_bytes.load(Ordering::Relaxed)).unwrap_or(i64::MAX),
        );
        let (sum, buckets) = self.routing_batch.snapshot();
        e.histogram(
            "routing_batch_seconds",
            "Per read batch of a client connection: time from the read to the routed messages queued for their connections.",
            sum,
            buckets,
        );
    }

    /// One-line summary for logs.
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "accepted={} refused_connection_limit={} refused_fd_limit={} opening_refused={} opening_failed={} opening_timeouts={} framing_errors={} protocol_violations={} slow_consumer_closes={} slow_consumer_events_dropped={} handoffs={} refused_session_limit={} auth_failures={} auth_rate_limited={} proxy_links={} proxy_links_refused={}",
            g(&self.accepted),
            g(&self.refused_connection_limit),
            g(&self.refused_fd_limit),
            g(&self.opening_refused),
            g(&self.opening_failed),
            g(&self.opening_timeouts),
            g(&self.framing_errors),
            g(&self.protocol_violations),
            g(&self.slow_consumer_closes),
            g(&self.slow_consumer_events_dropped),
            g(&self.handoffs),
            g(&self.refused_session_limit),
            g(&self.auth_failures),
            g(&self.auth_rate_limited),
            g(&self.proxy_links),
            g(&self.proxy_links_refused),
        )
    }
}

/// Adds the realms' message counts (see `engine::msgcount`) to a metrics
/// exposition: `junction_messages_received_total{realm,type}`,
/// `junction_messages_sent_total{realm,type}` and
/// `junction_message_bytes_sent_total{realm}`.
pub fn export_message_counts(realms: &super::setup::RealmTable, e: &mut junction_web::Exposition) {
    let all = realms.message_counts();
    let label = |realm: &str, t: &str| vec![("realm".to_owned(), realm.to_owned()), ("type".to_owned(), t.to_owned())];
    let mut received = Vec::new();
    let mut sent = Vec::new();
    let mut bytes = Vec::new();
    for (realm, c) in &all {
        received.extend(c.received_by_type().into_iter().map(|(t, n)| (label(realm, t), n)));
        sent.extend(c.sent_by_type().into_iter().map(|(t, n)| (label(realm, t), n)));
        bytes.push((vec![("realm".to_owned(), realm.clone())], c.bytes_sent()));
    }
    e.counter_family(
        "messages_received",
        "WAMP messages received from established sessions, per realm and message type.",
        received,
    );
    e.counter_family(
        "messages_sent",
        "WAMP messages queued for sessions, per realm and message type (a fanned-out EVENT once per receiver).",
        sent,
    );
    e.counter_family(
        "message_bytes_sent",
        "Bytes of the WAMP messages queued for sessions, per realm (encoded messages, without transport framing).",
        bytes,
    );
}

/// State shared by all shards (read-only or lock-free).
pub struct NodeShared {
    pub setup: Arc<RouterSetup>,
    pub directory: Arc<SessionDirectory>,
    pub stats: Arc<NodeStats>,
    /// The transports (start-up and run-time ones).
    pub transports: Arc<super::setup::TransportTable>,
    /// This worker's instance id (router-to-router links tell workers
    /// apart by it), drawn at start.
    pub instance: u64,
    /// Router-to-router link counters.
    pub cluster: Arc<super::rlink::ClusterCounters>,
    /// The realms being served (start-up and run-time ones).
    pub realms: Arc<super::setup::RealmTable>,
    /// The worker's message traces, shared by its realms.
    pub tracer: Arc<crate::engine::trace::Tracer>,
}

/// See the module docs.
pub struct Shard {
    pub id: usize,
    pub setup: Arc<RouterSetup>,
    pub directory: Arc<SessionDirectory>,
    pub stats: Arc<NodeStats>,
    /// The worker's transports.
    pub transports: Arc<super::setup::TransportTable>,
    /// The realms being served by the worker (every shard's view).
    pub realm_table: Arc<super::setup::RealmTable>,
    /// The realms homed on this shard.
    realms: RefCell<HashMap<String, Rc<RealmHost>>>,
    /// Wakes the accept loop of each transport to stop it (by index).
    pub listener_stops: RefCell<HashMap<usize, Rc<super::notify::LocalNotify>>>,
    peers: Vec<Option<ConnectedSender<ShardMsg>>>,
    rng: RefCell<SmallRng>,
    /// Authenticator calls awaiting their result, by token.
    pending_auth: RefCell<HashMap<u64, Rc<PendingAuth>>>,
    next_token: Cell<u64>,
    /// When the shard started (node info).
    pub started: Instant,
    /// This worker's instance id (see [`NodeShared::instance`]).
    pub instance: u64,
    pub cluster: Arc<super::rlink::ClusterCounters>,
}

impl Shard {
    /// Builds shard `id` with the realms homed on it.
    pub fn new(id: usize, shared: &NodeShared, peers: Vec<Option<ConnectedSender<ShardMsg>>>) -> Shard {
        let setup = shared.setup.clone();
        let mut seed_rng = SmallRng::from_entropy();
        let mut realms = HashMap::new();
        for r in &setup.realms {
            if setup.home_shard(r) == id {
                let host = RealmHost::build(r, seed_rng.gen(), shared);
                shared.realms.set_counts(&r.name, host.message_counts());
                realms.insert(r.name.clone(), Rc::new(host));
            }
        }
        let realms = RefCell::new(realms);
        Shard {
            listener_stops: RefCell::new(HashMap::new()),
            realm_table: shared.realms.clone(),
            id,
            setup,
            directory: shared.directory.clone(),
            stats: shared.stats.clone(),
            transports: shared.transports.clone(),
            realms,
            peers,
            rng: RefCell::new(seed_rng),
            pending_auth: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            started: Instant::now(),
            instance: shared.instance,
            cluster: shared.cluster.clone(),
        }
    }

    /// The home shard of a realm (this shard if it is not served).
    pub fn home_shard_of(&self, realm: &str) -> usize {
        self.realm_table.home(realm).unwrap_or(self.id)
    }

    /// The setup of a realm being served.
    pub fn realm_setup(&self, realm: &str) -> Option<Arc<super::setup::RealmSetup>> {
        self.realm_table.get(realm)
    }

    /// Every realm homed here.
    pub fn realm_hosts(&self) -> Vec<Rc<RealmHost>> {
        self.realms.borrow().values().cloned().collect()
    }

    /// The realm host for a realm homed here.
    pub fn realm_host(&self, realm: &str) -> Option<Rc<RealmHost>> {
        self.realms.borrow().get(realm).cloned()
    }

    /// Builds the host of a realm started at run time on this shard (its
    /// home) and publishes it in the realm table; false if a realm of that
    /// name is served already.
    pub fn add_realm(&self, setup: Arc<super::setup::RealmSetup>, shared: &NodeShared) -> Option<Rc<RealmHost>> {
        if self.realm_table.get(&setup.name).is_some() || self.realms.borrow().contains_key(&setup.name) {
            return None;
        }
        let seed = self.rng.borrow_mut().gen();
        let host = Rc::new(RealmHost::build(&setup, seed, shared));
        self.realms.borrow_mut().insert(setup.name.clone(), host.clone());
        // Published last: hand-offs find the host as soon as the table names the realm.
        let name = setup.name.clone();
        if !self.realm_table.insert(setup) {
            self.realms.borrow_mut().remove(&host.name());
            return None;
        }
        self.realm_table.set_counts(&name, host.message_counts());
        Some(host)
    }

    /// Stops a realm homed here: it leaves the realm table first (new
    /// sessions and links are refused), then every session is closed with
    /// GOODBYE `wamp.close.system_shutdown` and its links stop. Returns the
    /// number of sessions closed, `None` if the realm is not homed here.
    pub fn remove_realm(&self, name: &str) -> Option<usize> {
        let host = self.realms.borrow_mut().remove(name)?;
        self.realm_table.remove(name);
        Some(host.stop())
    }

    /// Sends an opened connection to its home shard, or serves it here.
    pub async fn route_handoff(self: &Rc<Self>, home: usize, h: Handoff) {
        if home == self.id {
            // A task of its own: the opening task's future (about 24 KB:
            // TLS, handshakes, authentication) must not stay allocated for
            // the life of the session (its own future is about 3 KB).
            glommio::spawn_local(serve_session(self.clone(), h)).detach();
            return;
        }
        self.stats.handoffs.fetch_add(1, Ordering::Relaxed);
        match self.peers.get(home).and_then(|p| p.as_ref()) {
            Some(tx) => {
                if let Err(e) = tx.send(ShardMsg::Handoff(Box::new(h))).await {
                    tracing::error!(home, error = %e, "hand-off channel closed");
                }
            }
            None => tracing::error!(home, "no channel to home shard"),
        }
    }

    /// Sends an authenticated proxy link to its realm's home shard, or serves it here.
    pub async fn route_link(self: &Rc<Self>, home: usize, h: super::link::LinkHandoff) {
        if home == self.id {
            // A task of its own, as for sessions (see `route_handoff`).
            glommio::spawn_local(super::link::serve_link(self.clone(), h)).detach();
            return;
        }
        self.stats.handoffs.fetch_add(1, Ordering::Relaxed);
        match self.peers.get(home).and_then(|p| p.as_ref()) {
            Some(tx) => {
                if let Err(e) = tx.send(ShardMsg::LinkHandoff(Box::new(h))).await {
                    tracing::error!(home, error = %e, "hand-off channel closed");
                }
            }
            None => tracing::error!(home, "no channel to home shard"),
        }
    }

    /// The failed-authentication budget of a transport, shared by all
    /// shards. A mutex, not a channel: it is taken once per HELLO and per
    /// failed authentication, never per message, and is held for a hash-map
    /// lookup. A poisoned lock (a panic elsewhere) is recovered, not fatal.
    pub fn limiter(&self, transport: usize) -> Arc<std::sync::Mutex<FailureLimiter>> {
        self.transports.get(transport).limiter.clone()
    }

    /// Draws a node-unique random session id for a session that will live
    /// on shard `home`, and reserves it in the directory (identity filled in
    /// once authentication completes).
    pub fn reserve_session_id(&self, home: usize, realm: &str) -> SessionId {
        let realm: Arc<str> = realm.into();
        let empty: Arc<str> = "".into();
        loop {
            let id = SessionId::from_valid(self.rng.borrow_mut().gen_range(1..=MAX_ID));
            let entry =
                SessionEntry { shard: home, realm: realm.clone(), authid: empty.clone(), authrole: empty.clone() };
            if self.directory.try_insert(id, entry) {
                return id;
            }
        }
    }

    /// Reserves the given session id if no other session holds it.
    pub fn try_reserve_session_id(&self, id: SessionId, home: usize, realm: &str) -> Option<SessionId> {
        let empty: Arc<str> = "".into();
        let entry = SessionEntry { shard: home, realm: realm.into(), authid: empty.clone(), authrole: empty };
        self.directory.try_insert(id, entry).then_some(id)
    }

    /// Calls a dynamic authenticator procedure on its realm's home shard
    /// (`(realm, authid, details)`, as Crossbar) and waits for the outcome.
    pub async fn call_authenticator(self: &Rc<Self>, req: DynamicAuthRequest) -> Result<Value, DynamicError> {
        let fail = |error: &str, message: &str| DynamicError { error: error.into(), message: Some(message.into()) };
        let Some(home) = self.realm_table.home(&req.realm) else {
            return Err(fail("wamp.error.no_such_realm", "the authenticator realm does not exist"));
        };
        let token = self.next_token.get();
        self.next_token.set(token + 1);
        let pending = Rc::new(PendingAuth::default());
        self.pending_auth.borrow_mut().insert(token, pending.clone());
        let msg = (req.realm, req.procedure, req.args);
        if home == self.id {
            self.start_auth_call(token, self.id, msg.0, msg.1, msg.2);
        } else {
            let sent = match self.peers.get(home).and_then(|p| p.as_ref()) {
                Some(tx) => tx
                    .send(ShardMsg::AuthCall { token, from: self.id, realm: msg.0, procedure: msg.1, args: msg.2 })
                    .await
                    .is_ok(),
                None => false,
            };
            if !sent {
                self.pending_auth.borrow_mut().remove(&token);
                return Err(fail("wamp.error.canceled", "the authenticator realm's shard is unreachable"));
            }
        }
        let waited = super::conn::with_timeout(AUTHENTICATOR_TIMEOUT, async {
            while pending.result.borrow().is_none() {
                pending.done.wait().await;
            }
        })
        .await;
        self.pending_auth.borrow_mut().remove(&token);
        let result = pending.result.borrow_mut().take();
        match (waited, result) {
            (Some(()), Some(r)) => r,
            _ => Err(fail("wamp.error.timeout", "the dynamic authenticator did not answer in time")),
        }
    }

    /// On the home shard: issues the router-originated call.
    pub fn start_auth_call(self: &Rc<Self>, token: u64, from: usize, realm: String, procedure: String, args: List) {
        let Some(host) = self.realm_host(&realm) else {
            let err = DynamicError { error: "wamp.error.no_such_realm".into(), message: None };
            self.deliver_auth_result(from, token, Err(err));
            return;
        };
        if let Err(e) = host.internal_call(from, token, &procedure, args) {
            self.deliver_auth_result(from, token, Err(e));
        }
        host.pump();
        self.drain_auth_results(&host);
    }

    /// Sends finished router-originated calls back to their shards.
    pub fn drain_auth_results(self: &Rc<Self>, host: &RealmHost) {
        for (from, token, result) in host.take_internal_results() {
            self.deliver_auth_result(from, token, result);
        }
    }

    /// Completes an authenticator call here, or forwards the result.
    pub fn deliver_auth_result(self: &Rc<Self>, to: usize, token: u64, result: Result<Value, DynamicError>) {
        if to == self.id {
            if let Some(p) = self.pending_auth.borrow().get(&token) {
                *p.result.borrow_mut() = Some(result);
                p.done.notify();
            }
            return;
        }
        let shard = self.clone();
        glommio::spawn_local(async move {
            if let Some(tx) = shard.peers.get(to).and_then(|p| p.as_ref()) {
                let _ = tx.send(ShardMsg::AuthResult { token, result }).await;
            }
        })
        .detach();
    }
}

/// The message `session` could not take, from the pump's overflow list.
fn dropped_bytes(list: &mut Vec<(SessionId, Bytes)>, session: SessionId) -> Bytes {
    match list.iter().position(|(s, _)| *s == session) {
        Some(i) => list.swap_remove(i).1,
        None => Bytes::new(),
    }
}

/// A finished router-originated call: (caller index, call id, outcome).
type InternalDone = (usize, u64, Result<Value, DynamicError>);

/// A realm homed on this shard, with the connections of its sessions.
pub struct RealmHost {
    realm: RefCell<Realm>,
    conns: RefCell<HashMap<SessionId, Rc<Conn>>>,
    max_sessions: usize,
    stats: Arc<NodeStats>,
    /// The deadline the timer task sleeps towards, if any.
    armed: Cell<Option<Instant>>,
    /// Wakes the timer task when an earlier deadline appears.
    timer: LocalNotify,
    /// Router-originated calls in flight: engine token → (shard, token).
    internal: RefCell<HashMap<u64, (usize, u64)>>,
    next_internal: Cell<u64>,
    /// Finished router-originated calls, for the shard to deliver.
    internal_done: RefCell<Vec<InternalDone>>,
    /// Wakes the delivery task when `internal_done` fills.
    internal_notify: LocalNotify,
    /// Links to the other workers of the realm's cluster.
    links: super::rlink::PeerLinks,
    /// Set once the realm was stopped: its tasks end, new sessions are refused.
    stopped: Cell<bool>,
    /// Where meta events for the operator go (`RouterNode::operator_events`).
    operator_tx: RefCell<Option<flume::Sender<(String, wamp_proto::List)>>>,
}

impl RealmHost {
    /// The host of `r` (engine realm with its roles, limits, broker and
    /// dealer settings, and an empty set of peer links).
    pub(crate) fn build(r: &super::setup::RealmSetup, seed: u64, shared: &NodeShared) -> RealmHost {
        let spec = RealmSpec { name: r.name.clone(), roles: r.roles.clone() };
        let mut realm = Realm::new(spec, seed).with_broker_spec(r.broker.clone()).with_meta_api(r.enable_meta_api);
        realm.set_dealer_config(r.dealer.clone());
        realm.set_tracer(shared.tracer.clone());
        let links = super::rlink::PeerLinks::new(shared.instance, shared.cluster.clone());
        RealmHost::new(realm, r.max_sessions, shared.stats.clone(), links)
    }

    /// Adds or replaces a role (see `Realm::set_role`).
    pub fn set_role(&self, role: &crate::engine::Role) {
        self.realm.borrow_mut().set_role(role);
        self.pump();
    }

    /// Removes a role and closes its sessions; `None` if there is no such role.
    pub fn remove_role(&self, name: &str) -> Option<usize> {
        let n = self.realm.borrow_mut().remove_role(name);
        self.pump();
        n
    }

    /// A meta procedure called by the operator (see `Realm::operator_meta_call`).
    pub fn operator_meta_call(
        &self,
        procedure: &str,
        payload: &wamp_proto::Payload,
    ) -> Result<Value, (String, String)> {
        let r = self.realm.borrow_mut().operator_meta_call(procedure, payload);
        self.pump();
        r
    }

    /// The realm's messages per type (see `engine::msgcount`).
    pub fn message_counts(&self) -> Arc<crate::engine::MessageCounts> {
        self.realm.borrow().message_counts()
    }

    /// The realm's role names.
    pub fn role_names(&self) -> Vec<String> {
        self.realm.borrow().role_names()
    }

    /// True once the realm was stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.get()
    }

    /// Stops the realm: closes every session with GOODBYE
    /// `wamp.close.system_shutdown`, stops its links and ends its tasks.
    /// Returns the number of sessions closed.
    fn stop(&self) -> usize {
        self.stopped.set(true);
        let sessions: Vec<SessionId> = self.conns.borrow().keys().copied().collect();
        {
            let mut realm = self.realm.borrow_mut();
            for &s in &sessions {
                realm.goodbye(s, "wamp.close.system_shutdown", "the realm was stopped");
            }
        }
        self.pump();
        self.links.stop_all();
        self.timer.notify();
        self.internal_notify.notify();
        sessions.len()
    }
    fn new(realm: Realm, max_sessions: usize, stats: Arc<NodeStats>, links: super::rlink::PeerLinks) -> Self {
        RealmHost {
            links,
            realm: RefCell::new(realm),
            conns: RefCell::new(HashMap::new()),
            max_sessions,
            stats,
            armed: Cell::new(None),
            timer: LocalNotify::default(),
            internal: RefCell::new(HashMap::new()),
            next_internal: Cell::new(1),
            internal_done: RefCell::new(Vec::new()),
            internal_notify: LocalNotify::default(),
            stopped: Cell::new(false),
            operator_tx: RefCell::new(None),
        }
    }

    /// Hands this realm's meta events to `tx` from now on.
    pub fn tap_operator_events(&self, tx: flume::Sender<(String, wamp_proto::List)>) {
        self.realm.borrow_mut().set_operator_events(true);
        *self.operator_tx.borrow_mut() = Some(tx);
    }

    /// The realm's links to the other workers of its cluster.
    pub fn links(&self) -> &super::rlink::PeerLinks {
        &self.links
    }

    /// A link to a peer worker is up (sends it this worker's state).
    pub fn peer_up(&self, peer: crate::engine::cluster::PeerId) {
        self.realm.borrow_mut().peer_up(peer);
        self.pump();
    }

    /// A link to a peer worker is gone.
    pub fn peer_down(&self, peer: crate::engine::cluster::PeerId) {
        self.realm.borrow_mut().peer_down(peer);
        self.pump();
    }

    /// One cluster message from a peer (pump afterwards, or in batches).
    pub fn handle_peer(&self, peer: crate::engine::cluster::PeerId, msg: crate::engine::cluster::PeerMsg) {
        self.realm.borrow_mut().handle_peer(peer, msg);
    }

    /// Sessions of this realm on this worker and on its peers, and the
    /// realm's cluster counters.
    pub fn cluster_view(&self) -> (usize, usize, crate::engine::cluster::ClusterStats) {
        let realm = self.realm.borrow();
        (self.conns.borrow().len(), realm.ghost_count(), realm.cluster_stats())
    }

    /// Starts a router-originated call (a dynamic authenticator).
    pub fn internal_call(&self, from: usize, token: u64, procedure: &str, args: List) -> Result<(), DynamicError> {
        let id = self.next_internal.get();
        self.next_internal.set(id + 1);
        let now = Instant::now();
        let mut realm = self.realm.borrow_mut();
        realm.set_now(now);
        realm.internal_call_with_timeout(id, procedure, args, Dict::new(), Some(AUTHENTICATOR_TIMEOUT)).map_err(
            |e| DynamicError {
                error: "wamp.error.canceled".into(),
                message: Some(format!("cannot call the authenticator: {e}")),
            },
        )?;
        self.internal.borrow_mut().insert(id, (from, token));
        Ok(())
    }

    /// Router-originated calls that finished since the last call.
    pub fn take_internal_results(&self) -> Vec<(usize, u64, Result<Value, DynamicError>)> {
        std::mem::take(&mut *self.internal_done.borrow_mut())
    }

    /// Delivers finished router-originated calls (runs for the life of the shard).
    pub async fn run_internal_results(self: Rc<Self>, shard: Rc<Shard>) {
        while !self.stopped.get() {
            self.internal_notify.wait().await;
            shard.drain_auth_results(&self);
        }
    }

    /// Tells the engine the time before a batch of messages.
    pub fn set_now(&self, now: Instant) {
        self.realm.borrow_mut().set_now(now);
    }

    /// Tells the engine the wall-clock time (meta API `created` stamps).
    pub fn set_wall_clock(&self, now: std::time::SystemTime) {
        self.realm.borrow_mut().set_wall_clock(now);
    }

    /// The realm's timer: sleeps until the engine's earliest deadline (call
    /// timeouts, cancel grace periods), fires it, and re-arms. Runs for the
    /// life of the shard.
    pub async fn run_timer(self: Rc<Self>) {
        while !self.stopped.get() {
            let deadline = self.realm.borrow().poll_timeout();
            self.armed.set(deadline);
            match deadline {
                None => self.timer.wait().await,
                Some(d) => {
                    let now = Instant::now();
                    if d > now {
                        // Wake at the deadline, or earlier if a sooner one is set.
                        futures_lite::future::or(glommio::timer::sleep(d - now), self.timer.wait()).await;
                    }
                    let now = Instant::now();
                    if now >= d {
                        self.realm.borrow_mut().handle_timeout(now);
                        self.pump();
                    }
                }
            }
        }
    }

    /// `Some(limit)` if the realm has reached its session limit.
    pub fn at_capacity(&self) -> Option<usize> {
        (self.conns.borrow().len() >= self.max_sessions).then_some(self.max_sessions)
    }

    /// The realm's name.
    pub fn name(&self) -> String {
        self.realm.borrow().name().to_owned()
    }

    /// Registers a session's connection (before `join`).
    pub fn attach(&self, conn: Rc<Conn>) {
        self.conns.borrow_mut().insert(conn.session, conn);
    }

    /// Admits the session into the realm (queues WELCOME).
    pub fn join(&self, info: SessionInfo, hello_details: &Dict, authextra: Dict) -> Result<(), JoinError> {
        self.realm.borrow_mut().join_with_authextra(info, hello_details, authextra)
    }

    /// One message from a session.
    pub fn handle(&self, session: SessionId, msg: Message) {
        self.realm.borrow_mut().handle_message(session, msg);
    }

    /// Aborts a session (queues ABORT + close).
    pub fn abort(&self, session: SessionId, reason: &str, detail: &str) {
        self.realm.borrow_mut().abort(session, reason, detail);
    }

    /// The session's transport is gone.
    pub fn detach(&self, session: SessionId) {
        let removed = {
            let mut conns = self.conns.borrow_mut();
            let removed = conns.remove(&session).is_some();
            crate::engine::shrink_if_mostly_empty(&mut conns);
            removed
        };
        if removed {
            self.realm.borrow_mut().leave(session);
        }
    }

    /// Moves everything the engine produced into the connections' outbound
    /// buffers. Slow consumers over their limits are closed.
    pub fn pump(&self) {
        let mut realm = self.realm.borrow_mut();
        let mut conns = self.conns.borrow_mut();
        let mut overflowed: Vec<(SessionId, Overflow)> = Vec::new();
        // The message each overflowing session could not take (to tell EVENTs apart).
        let mut last_dropped: Vec<(SessionId, Bytes)> = Vec::new();
        loop {
            while let Some(t) = realm.poll_transmit() {
                match t {
                    Transmit::Message { session, bytes } => {
                        if let Some(c) = conns.get(&session) {
                            if let Err(o) = c.send_message(&bytes) {
                                overflowed.push((session, o));
                                last_dropped.push((session, bytes));
                            }
                        }
                    }
                    Transmit::Close { session } => {
                        if let Some(c) = conns.remove(&session) {
                            c.close_session();
                        }
                    }
                    Transmit::Peer { peer, msg } => self.links.send(peer, &msg),
                    Transmit::Operator { topic, args } => {
                        if let Some(tx) = self.operator_tx.borrow().as_ref() {
                            // Bounded: a slow operator loses events, the realm never waits.
                            let _ = tx.try_send((topic, args));
                        }
                    }
                }
            }
            if overflowed.is_empty() {
                break;
            }
            for (session, o) in overflowed.drain(..) {
                let Some(c) = conns.get(&session).cloned() else { continue };
                if c.link.is_some() {
                    // A proxy link that does not drain its queue is stuck as a
                    // whole: drop the link (its reader detaches every session;
                    // the proxy reconnects).
                    conns.remove(&session);
                    tracing::warn!(%session, overflow = ?o, "proxy link outbound queue limit exceeded; closing the link");
                    c.out.abort();
                    realm.leave(session);
                    continue;
                }
                if c.policy == SlowConsumerPolicy::Drop && c.is_event(&dropped_bytes(&mut last_dropped, session)) {
                    self.stats.slow_consumer_events_dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                conns.remove(&session);
                self.stats.slow_consumer_closes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(%session, overflow = ?o, "outbound queue limit exceeded; closing slow consumer");
                c.close_slow_consumer(o);
                realm.leave(session);
            }
        }
        while let Some((id, result)) = realm.poll_internal_result() {
            if let Some((from, token)) = self.internal.borrow_mut().remove(&id) {
                let result = result.map_err(|(error, message)| DynamicError { error, message: Some(message) });
                self.internal_done.borrow_mut().push((from, token, result));
                self.internal_notify.notify();
            }
        }
        if let Some(d) = realm.poll_timeout() {
            if self.armed.get().is_none_or(|a| d < a) {
                self.armed.set(Some(d));
                self.timer.notify();
            }
        }
    }
}
