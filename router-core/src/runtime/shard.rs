//! One shard: a glommio executor pinned to a core, owning the realms homed on
//! it and the connections of their sessions. Shard state is `Rc`-owned by
//! the executor and never locked; shards talk only through typed channels
//! ([`ShardMsg`]).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use glommio::channels::shared_channel::ConnectedSender;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use wamp_auth::{DynamicAuthRequest, DynamicError, FailureLimiter};
use wamp_proto::{Dict, Message, SessionId, Value, MAX_ID};

use super::conn::{serve_session, Conn, Handoff};
use super::directory::{SessionDirectory, SessionEntry};
use super::notify::LocalNotify;
use super::outbound::Overflow;
use super::setup::RouterSetup;
use crate::engine::{JoinError, Realm, RealmSpec, SessionInfo, Transmit};

/// Messages between shards.
pub enum ShardMsg {
    /// A connection whose HELLO names a realm homed on the receiving shard.
    Handoff(Box<Handoff>),
}

/// Node-wide counters (relaxed atomics; none is on the per-message path).
#[derive(Default, Debug)]
pub struct NodeStats {
    pub accepted: AtomicU64,
    pub refused_connection_limit: AtomicU64,
    pub opening_refused: AtomicU64,
    pub opening_failed: AtomicU64,
    pub opening_timeouts: AtomicU64,
    pub framing_errors: AtomicU64,
    pub protocol_violations: AtomicU64,
    pub slow_consumer_closes: AtomicU64,
    pub handoffs: AtomicU64,
    pub refused_session_limit: AtomicU64,
    pub auth_failures: AtomicU64,
    pub auth_rate_limited: AtomicU64,
}

impl NodeStats {
    /// One-line summary for logs.
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "accepted={} refused_connection_limit={} opening_refused={} opening_failed={} opening_timeouts={} framing_errors={} protocol_violations={} slow_consumer_closes={} handoffs={} refused_session_limit={} auth_failures={} auth_rate_limited={}",
            g(&self.accepted),
            g(&self.refused_connection_limit),
            g(&self.opening_refused),
            g(&self.opening_failed),
            g(&self.opening_timeouts),
            g(&self.framing_errors),
            g(&self.protocol_violations),
            g(&self.slow_consumer_closes),
            g(&self.handoffs),
            g(&self.refused_session_limit),
            g(&self.auth_failures),
            g(&self.auth_rate_limited),
        )
    }
}

/// State shared by all shards (read-only or lock-free).
pub struct NodeShared {
    pub setup: Arc<RouterSetup>,
    pub directory: Arc<SessionDirectory>,
    pub stats: Arc<NodeStats>,
    /// Open connections per transport.
    pub conn_counts: Vec<Arc<AtomicUsize>>,
}

/// See the module docs.
pub struct Shard {
    pub id: usize,
    pub setup: Arc<RouterSetup>,
    pub directory: Arc<SessionDirectory>,
    pub stats: Arc<NodeStats>,
    pub conn_counts: Vec<Arc<AtomicUsize>>,
    realms: HashMap<String, Rc<RealmHost>>,
    peers: Vec<Option<ConnectedSender<ShardMsg>>>,
    rng: RefCell<SmallRng>,
    /// Failed-authentication budgets per transport (per shard).
    limiters: Vec<RefCell<FailureLimiter>>,
}

impl Shard {
    /// Builds shard `id` with the realms homed on it.
    pub fn new(id: usize, shared: &NodeShared, peers: Vec<Option<ConnectedSender<ShardMsg>>>) -> Shard {
        let setup = shared.setup.clone();
        let mut seed_rng = SmallRng::from_entropy();
        let mut realms = HashMap::new();
        for r in &setup.realms {
            if setup.home_shard(r) == id {
                let spec = RealmSpec { name: r.name.clone(), roles: r.roles.clone() };
                let realm = Realm::new(spec, seed_rng.gen());
                realms.insert(r.name.clone(), Rc::new(RealmHost::new(realm, r.max_sessions, shared.stats.clone())));
            }
        }
        Shard {
            id,
            setup,
            directory: shared.directory.clone(),
            stats: shared.stats.clone(),
            conn_counts: shared.conn_counts.clone(),
            realms,
            peers,
            rng: RefCell::new(seed_rng),
            limiters: shared.setup.transports.iter().map(|t| RefCell::new(FailureLimiter::new(t.auth_limits.clone()))).collect(),
        }
    }

    /// The home shard of a realm (which must exist in the setup).
    pub fn home_shard_of(&self, realm: &str) -> usize {
        match self.setup.realm(realm) {
            Some(r) => self.setup.home_shard(r),
            None => self.id,
        }
    }

    /// Every realm homed here.
    pub fn realm_hosts(&self) -> impl Iterator<Item = &Rc<RealmHost>> {
        self.realms.values()
    }

    /// The realm host for a realm homed here.
    pub fn realm_host(&self, realm: &str) -> Option<Rc<RealmHost>> {
        self.realms.get(realm).cloned()
    }

    /// Sends an opened connection to its home shard, or serves it here.
    pub async fn route_handoff(self: &Rc<Self>, home: usize, h: Handoff) {
        if home == self.id {
            serve_session(self.clone(), h).await;
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

    /// The failed-authentication budget of a transport.
    pub fn limiter(&self, transport: usize) -> std::cell::RefMut<'_, FailureLimiter> {
        self.limiters[transport].borrow_mut()
    }

    /// Draws a node-unique random session id for a session that will live
    /// on shard `home`, and reserves it in the directory (identity filled in
    /// once authentication completes).
    pub fn reserve_session_id(&self, home: usize, realm: &str) -> SessionId {
        let realm: Arc<str> = realm.into();
        let empty: Arc<str> = "".into();
        loop {
            let id = SessionId::from_valid(self.rng.borrow_mut().gen_range(1..=MAX_ID));
            let entry = SessionEntry { shard: home, realm: realm.clone(), authid: empty.clone(), authrole: empty.clone() };
            if self.directory.try_insert(id, entry) {
                return id;
            }
        }
    }

    /// Calls a dynamic authenticator procedure on its realm's home shard.
    pub async fn call_authenticator(self: &Rc<Self>, req: DynamicAuthRequest) -> Result<Value, DynamicError> {
        let _ = &req;
        Err(DynamicError {
            error: "wamp.error.not_authorized".into(),
            message: Some("dynamic authenticators are not available in this build".into()),
        })
    }
}

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
}

impl RealmHost {
    fn new(realm: Realm, max_sessions: usize, stats: Arc<NodeStats>) -> Self {
        RealmHost {
            realm: RefCell::new(realm),
            conns: RefCell::new(HashMap::new()),
            max_sessions,
            stats,
            armed: Cell::new(None),
            timer: LocalNotify::default(),
        }
    }

    /// Tells the engine the time before a batch of messages.
    pub fn set_now(&self, now: Instant) {
        self.realm.borrow_mut().set_now(now);
    }

    /// The realm's timer: sleeps until the engine's earliest deadline (call
    /// timeouts, cancel grace periods), fires it, and re-arms. Runs for the
    /// life of the shard.
    pub async fn run_timer(self: Rc<Self>) {
        loop {
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
        if self.conns.borrow_mut().remove(&session).is_some() {
            self.realm.borrow_mut().leave(session);
        }
    }

    /// Moves everything the engine produced into the connections' outbound
    /// buffers. Slow consumers over their limits are closed.
    pub fn pump(&self) {
        let mut realm = self.realm.borrow_mut();
        let mut conns = self.conns.borrow_mut();
        let mut overflowed: Vec<(SessionId, Overflow)> = Vec::new();
        loop {
            while let Some(t) = realm.poll_transmit() {
                match t {
                    Transmit::Message { session, bytes } => {
                        if let Some(c) = conns.get(&session) {
                            if let Err(o) = c.send_message(&bytes) {
                                overflowed.push((session, o));
                            }
                        }
                    }
                    Transmit::Close { session } => {
                        if let Some(c) = conns.remove(&session) {
                            let sender = c.sender;
                            c.out.push_control(|b| sender.close(Some(1000), "", b));
                            c.out.close_after_flush();
                        }
                    }
                }
            }
            if overflowed.is_empty() {
                break;
            }
            for (session, o) in overflowed.drain(..) {
                if let Some(c) = conns.remove(&session) {
                    self.stats.slow_consumer_closes.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%session, overflow = ?o, "outbound queue limit exceeded; closing slow consumer");
                    c.out.abort();
                    realm.leave(session);
                }
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
