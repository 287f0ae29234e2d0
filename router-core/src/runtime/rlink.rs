//! Router-to-router links: the runtime half of router clusters.
//!
//! The cluster protocol itself (ghosts, interest, calls across workers,
//! resync) is the sans-IO [`crate::engine::cluster`]; this module carries
//! its [`PeerMsg`]s between processes. A link is a proxy link
//! (`wamp_framing::link`: RawSocket handshake with serializer nibble `0xF`,
//! Ed25519 node-key proof, over TCP, TLS or a Unix socket) whose HELLO names
//! the dialing worker's **instance id**; after the proof both directions
//! carry [`LinkFrame::Peer`] frames, one cluster message each.
//!
//! * **Dialers**: each configured `rlinks` entry (or one started at run
//!   time with [`super::RouterNode::start_rlink`]) is a [`Dialer`] task on
//!   the realm's home shard: dial, serve, redial with backoff (100 ms
//!   doubling to `reconnect_max`).
//! * **Accepting**: a router accepts peer links on any RawSocket transport
//!   that accepts proxy links, for any realm it serves, from any key it
//!   trusts (the node's own key and `cryptosign-proxy` principals).
//! * **One link per pair**: when both workers list each other, two links
//!   can come up at once (after a partition heals, both dialers' pending
//!   connects complete together). The worker with the lower instance id
//!   decides: it keeps the pair's live link and refuses the other (unless
//!   the peer re-dialed, giving up the old one), and sends
//!   [`PeerMsg::Admitted`] first on the link it keeps; the other worker
//!   admits a link only on that verdict. So a link in use is never replaced
//!   by a second one (which would cancel the calls in flight on it), and
//!   the engine never sees a peer twice. A refused dialer stands by and
//!   dials again only when the pair has no link. A link that leads back to
//!   the worker itself (a shared `rlinks` list naming every worker) is
//!   noticed from the instance id and parked.
//! * **Liveness and bounds**: both ends ping every `ping_interval` and drop
//!   a link silent for `ping_timeout`; a peer whose queue exceeds
//!   `max_queue_bytes` is disconnected (counted), so a stuck worker cannot
//!   grow this one's memory. A dropped link is [`Realm::peer_down`]: calls
//!   in flight to it fail at once, its ghosts go. When it comes back, both
//!   sides resync in full ([`Realm::peer_up`]).
//! * **Readiness**: a worker reports ready once every configured link has
//!   either synced (the peer's [`PeerMsg::Synced`] arrived) or failed once;
//!   see [`super::RouterNode::wait_rlinks_settled`].
//!
//! [`Realm::peer_down`]: crate::engine::Realm::peer_down
//! [`Realm::peer_up`]: crate::engine::Realm::peer_up

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use wamp_framing::link::{self, LinkFrame, LinkHello};
use wamp_framing::rawsocket;

use super::conn::{feed_input, read_some, spawn_writer, with_timeout};
use super::dial::{self, DialAddr, DialTls};
use super::framer::{FrameEvent, Framer};
use super::notify::LocalNotify;
use super::outbound::{OutState, Outbound};
use super::setup::{ConnectionLimits, SlowConsumerPolicy};
use super::shard::{RealmHost, Shard};
use super::stream::Stream;
use super::tls::Tls;
use crate::engine::cluster::{PeerId, PeerMsg};

/// How long connecting plus the link handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// First wait between dial attempts (doubling up to `reconnect_max`).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// How often a standing-by dialer checks whether the pair lost its link.
const STANDBY_POLL: Duration = Duration::from_millis(250);
/// Ping interval, silence timeout and queue bound of accepted links whose
/// dialer did not say (the dialer's HELLO normally carries its `rlinks`
/// entry's ping settings, which the accepting side adopts).
pub const ACCEPTED_PING_INTERVAL: Duration = Duration::from_secs(1);
pub const ACCEPTED_PING_TIMEOUT: Duration = Duration::from_secs(5);
pub const ACCEPTED_MAX_QUEUE_BYTES: usize = 64 * 1024 * 1024;

/// One router-to-router link to dial (an `rlinks` entry).
#[derive(Clone, Debug)]
pub struct RLinkSetup {
    /// Unique among the realm's links.
    pub id: String,
    /// The realm (on both workers).
    pub realm: String,
    pub addr: DialAddr,
    pub tls: Option<DialTls>,
    /// This worker's name in the peer's logs.
    pub name: String,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub reconnect_max: Duration,
    pub max_queue_bytes: usize,
}

/// What a configured link is doing.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum RLinkState {
    /// Dialing (or waiting to redial).
    Connecting,
    /// Up; `synced` says whether the peer's initial state has arrived.
    Up,
    /// The pair's link is the one the peer dialed; this dialer waits.
    Standby,
    /// The address leads back to this worker; nothing to do.
    SelfLink,
    /// Stopped at run time.
    Stopped,
}

impl RLinkState {
    /// Lower-case name (status output).
    pub fn name(self) -> &'static str {
        match self {
            RLinkState::Connecting => "connecting",
            RLinkState::Up => "up",
            RLinkState::Standby => "standby",
            RLinkState::SelfLink => "self",
            RLinkState::Stopped => "stopped",
        }
    }
}

/// Status of one configured link.
#[derive(Clone, Debug)]
pub struct RLinkStatus {
    pub id: String,
    pub realm: String,
    /// Where it dials (`tcp:host:port`, `unix:path`).
    pub target: String,
    pub tls: bool,
    pub state: RLinkState,
    /// The peer's initial state arrived on the current link.
    pub synced: bool,
    /// The peer worker's name and instance id, once known.
    pub peer_name: Option<String>,
    pub peer_instance: Option<u64>,
    /// Times the link came up.
    pub ups: u64,
    pub last_error: Option<String>,
    /// When the link was started.
    pub started: SystemTime,
}

/// A live link to a peer worker (either direction).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub name: String,
    pub instance: u64,
    /// This worker dialed it (else the peer did).
    pub dialed_here: bool,
    /// The peer's initial state has arrived.
    pub synced: bool,
}

/// Node-wide cluster counters.
#[derive(Default, Debug)]
pub struct ClusterCounters {
    /// Peer links that came up (dialed or accepted, deduplicated ones not counted).
    pub links_up: AtomicU64,
    /// Peer links dropped as a duplicate of the pair's other link.
    pub links_deduplicated: AtomicU64,
    /// Peer links dropped because the peer did not drain its queue.
    pub queue_overflows: AtomicU64,
    /// Peer links dropped for silence.
    pub ping_timeouts: AtomicU64,
    /// Peer links dropped for a malformed cluster message.
    pub protocol_errors: AtomicU64,
    /// Cluster messages sent and received.
    pub messages_sent: AtomicU64,
    pub messages_received: AtomicU64,
    /// Configured links whose first attempt has not concluded yet.
    pub unsettled: AtomicUsize,
}

impl ClusterCounters {
    /// One-line summary for logs.
    pub fn summary(&self) -> String {
        let g = |a: &AtomicU64| a.load(Ordering::Relaxed);
        format!(
            "peer_links_up={} peer_links_deduplicated={} peer_queue_overflows={} peer_ping_timeouts={} peer_protocol_errors={} peer_messages_sent={} peer_messages_received={}",
            g(&self.links_up),
            g(&self.links_deduplicated),
            g(&self.queue_overflows),
            g(&self.ping_timeouts),
            g(&self.protocol_errors),
            g(&self.messages_sent),
            g(&self.messages_received),
        )
    }
}

/// A live link to a peer worker.
pub struct PeerLink {
    pub peer: PeerId,
    /// The peer's instance id and name.
    pub instance: u64,
    pub name: String,
    /// The instance id of the worker that dialed this link.
    pub dialer: u64,
    out: Rc<Outbound>,
    dead: Cell<bool>,
    synced: Cell<bool>,
}

impl PeerLink {
    fn kill(&self) {
        self.dead.set(true);
        self.out.abort();
    }
}

/// The peer links of one realm (owned by its [`RealmHost`]).
pub struct PeerLinks {
    /// This worker's instance id.
    pub instance: u64,
    links: RefCell<HashMap<PeerId, Rc<PeerLink>>>,
    next_peer: Cell<u32>,
    dialers: RefCell<Vec<Rc<Dialer>>>,
    counters: Arc<ClusterCounters>,
}

impl PeerLinks {
    /// No links yet.
    pub fn new(instance: u64, counters: Arc<ClusterCounters>) -> PeerLinks {
        PeerLinks {
            instance,
            links: RefCell::new(HashMap::new()),
            next_peer: Cell::new(1),
            dialers: RefCell::new(Vec::new()),
            counters,
        }
    }

    /// Sends one cluster message (from the realm pump). A peer over its
    /// queue limit is disconnected.
    pub fn send(&self, peer: PeerId, msg: &PeerMsg) {
        let links = self.links.borrow();
        let Some(l) = links.get(&peer).filter(|l| !l.dead.get()) else { return };
        // Encoded straight into the link's outbound buffer.
        let mut failed: Option<String> = None;
        let r = l.out.push(|b| match link::write_peer_with(b, |b| msg.encode_into(b)) {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed = Some(format!("cannot be encoded: {e}")),
            Err(e) => failed = Some(e.to_string()),
        });
        if let Some(why) = failed {
            tracing::warn!(%peer, error = %why, "cluster message dropped");
            return;
        }
        if r.is_err() {
            self.counters.queue_overflows.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(%peer, peer_name = %l.name, "peer link queue limit exceeded; dropping the link (it resyncs when it returns)");
            l.kill();
            return;
        }
        self.counters.messages_sent.fetch_add(1, Ordering::Relaxed);
    }

    /// Stops every dialer and drops every link (the realm is stopping).
    pub fn stop_all(&self) {
        for d in self.dialers.borrow().iter() {
            if !d.stopped.get() {
                d.stopped.set(true);
                d.set_state(RLinkState::Stopped);
                d.settle();
                d.wake.notify();
                if let Some(l) = d.current.borrow_mut().take() {
                    l.kill();
                }
            }
        }
        for l in self.links.borrow().values() {
            l.kill();
        }
    }

    /// True if a live link to the worker with this instance id exists.
    pub fn has_instance(&self, instance: u64) -> bool {
        self.links.borrow().values().any(|l| l.instance == instance && !l.dead.get())
    }

    /// Number of live links.
    pub fn live(&self) -> usize {
        self.links.borrow().values().filter(|l| !l.dead.get()).count()
    }

    /// The live links (either direction), by peer name.
    pub fn peers(&self) -> Vec<PeerInfo> {
        let mut v: Vec<PeerInfo> = self
            .links
            .borrow()
            .values()
            .filter(|l| !l.dead.get())
            .map(|l| PeerInfo {
                name: l.name.clone(),
                instance: l.instance,
                dialed_here: l.dialer == self.instance,
                synced: l.synced.get(),
            })
            .collect();
        v.sort_by(|a, b| a.name.cmp(&b.name));
        v
    }

    /// Status of the configured links.
    pub fn status(&self) -> Vec<RLinkStatus> {
        self.dialers.borrow().iter().map(|d| d.status.borrow().clone()).collect()
    }

    /// Admits a link that finished its handshake (see [`verdict`]): `None`
    /// if it must go; otherwise the new link, after the one it replaces (if
    /// any) was taken down. `decider`: this worker has the lower instance id
    /// of the pair.
    fn admit(
        &self,
        host: &RealmHost,
        instance: u64,
        dialer: u64,
        name: &str,
        out: Rc<Outbound>,
        decider: bool,
    ) -> Option<Rc<PeerLink>> {
        let existing: Option<Rc<PeerLink>> =
            self.links.borrow().values().find(|l| l.instance == instance && !l.dead.get()).cloned();
        match verdict(decider, self.instance, existing.as_ref().map(|l| l.dialer), dialer) {
            Verdict::Reject => {
                self.counters.links_deduplicated.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer_name = %name, "second link between this pair of workers; keeping the first");
                return None;
            }
            Verdict::Replace => {
                if let Some(old) = existing {
                    self.counters.links_deduplicated.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(peer_name = %name, "the link between this pair of workers was replaced");
                    old.kill();
                    self.links.borrow_mut().remove(&old.peer);
                    host.peer_down(old.peer);
                }
            }
            Verdict::Admit => {}
        }
        let peer = PeerId(self.next_peer.get());
        self.next_peer.set(self.next_peer.get().wrapping_add(1).max(1));
        let l = Rc::new(PeerLink {
            peer,
            instance,
            name: name.to_owned(),
            dialer,
            out,
            dead: Cell::new(false),
            synced: Cell::new(false),
        });
        self.links.borrow_mut().insert(peer, l.clone());
        self.counters.links_up.fetch_add(1, Ordering::Relaxed);
        Some(l)
    }

    /// A link ended: forget it (once).
    fn remove(&self, l: &PeerLink) -> bool {
        l.dead.set(true);
        let mut links = self.links.borrow_mut();
        match links.get(&l.peer) {
            Some(x) if std::ptr::eq(Rc::as_ptr(x), l) => {
                links.remove(&l.peer);
                true
            }
            _ => false,
        }
    }
}

/// One configured (dialing) link and its task.
pub struct Dialer {
    pub setup: RLinkSetup,
    status: RefCell<RLinkStatus>,
    stopped: Cell<bool>,
    wake: LocalNotify,
    /// The link this dialer currently serves.
    current: RefCell<Option<Rc<PeerLink>>>,
    /// Counted in `unsettled` until the first attempt concludes.
    settled: Cell<bool>,
    counters: Arc<ClusterCounters>,
}

impl Dialer {
    fn settle(&self) {
        if !self.settled.replace(true) {
            self.counters.unsettled.fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn set_state(&self, state: RLinkState) {
        self.status.borrow_mut().state = state;
    }

    /// Waits `d`, or less if the dialer is stopped.
    async fn pause(&self, d: Duration) {
        futures_lite::future::or(glommio::timer::sleep(d), self.wake.wait()).await;
    }
}

/// Error starting or stopping a link at run time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RLinkError {
    #[error("no realm '{0}' on this router worker")]
    NoSuchRealm(String),
    #[error("realm '{realm}' already has a link '{id}'")]
    Exists { realm: String, id: String },
    #[error("realm '{realm}' has no link '{id}'")]
    NoSuchLink { realm: String, id: String },
    #[error("this router worker has no node key, so it cannot prove itself to peers")]
    NoNodeKey,
    #[error("the router worker is not running")]
    NotRunning,
}

/// Starts a dialer for `setup` on this shard (the realm's home shard).
pub fn start(shard: &Rc<Shard>, host: &Rc<RealmHost>, setup: RLinkSetup, counted: bool) -> Result<(), RLinkError> {
    if shard.setup.node_key.is_none() {
        return Err(RLinkError::NoNodeKey);
    }
    let links = host.links();
    if links.dialers.borrow().iter().any(|d| d.setup.id == setup.id && !d.stopped.get()) {
        return Err(RLinkError::Exists { realm: setup.realm.clone(), id: setup.id.clone() });
    }
    links.dialers.borrow_mut().retain(|d| d.setup.id != setup.id);
    let status = RLinkStatus {
        id: setup.id.clone(),
        realm: setup.realm.clone(),
        target: setup.addr.to_string(),
        tls: setup.tls.is_some(),
        state: RLinkState::Connecting,
        synced: false,
        peer_name: None,
        peer_instance: None,
        ups: 0,
        last_error: None,
        started: SystemTime::now(),
    };
    let d = Rc::new(Dialer {
        setup,
        status: RefCell::new(status),
        stopped: Cell::new(false),
        wake: LocalNotify::default(),
        current: RefCell::new(None),
        settled: Cell::new(!counted),
        counters: links.counters.clone(),
    });
    links.dialers.borrow_mut().push(d.clone());
    glommio::spawn_local(run_dialer(shard.clone(), host.clone(), d)).detach();
    Ok(())
}

/// Stops the dialer `id` and drops the link it serves. (A link the peer
/// dialed stays up while the peer wants it.)
pub fn stop(host: &RealmHost, realm: &str, id: &str) -> Result<(), RLinkError> {
    let links = host.links();
    let d = links
        .dialers
        .borrow()
        .iter()
        .find(|d| d.setup.id == id && !d.stopped.get())
        .cloned()
        .ok_or_else(|| RLinkError::NoSuchLink { realm: realm.to_owned(), id: id.to_owned() })?;
    d.stopped.set(true);
    d.set_state(RLinkState::Stopped);
    d.settle();
    d.wake.notify();
    if let Some(l) = d.current.borrow_mut().take() {
        l.kill();
    }
    Ok(())
}

async fn run_dialer(shard: Rc<Shard>, host: Rc<RealmHost>, d: Rc<Dialer>) {
    let Some(key) = shard.setup.node_key.clone() else { return };
    let me = host.links().instance;
    let ms = |t: Duration| u64::try_from(t.as_millis()).unwrap_or(u64::MAX);
    let hello = LinkHello {
        realm: d.setup.realm.clone(),
        key: key.public_bytes(),
        name: d.setup.name.clone(),
        peer: Some(me),
        ping_ms: Some((ms(d.setup.ping_interval), ms(d.setup.ping_timeout))),
    };
    let mut backoff = FIRST_BACKOFF;
    let mut last_err: Option<String> = None;
    while !d.stopped.get() {
        // The pair already has a link (the peer dialed it): stand by.
        let known = d.status.borrow().peer_instance;
        if let Some(p) = known {
            if host.links().has_instance(p) {
                d.set_state(RLinkState::Standby);
                d.settle();
                d.pause(STANDBY_POLL).await;
                continue;
            }
        }
        d.set_state(RLinkState::Connecting);
        match with_timeout(CONNECT_TIMEOUT, dial::dial(&d.setup.addr, d.setup.tls.as_ref(), &hello, &key)).await {
            Some(Ok(dialed)) => {
                let Some(instance) = dialed.accept.instance else {
                    let e = "the other side accepted a proxy link, not a router link (an older Junction?)".to_owned();
                    tracing::warn!(rlink = %d.setup.id, error = %e, "rlink failed");
                    d.status.borrow_mut().last_error = Some(e);
                    d.settle();
                    d.pause(d.setup.reconnect_max).await;
                    continue;
                };
                if instance == me {
                    tracing::info!(rlink = %d.setup.id, target = %d.setup.addr, "rlink leads back to this worker; parked");
                    d.set_state(RLinkState::SelfLink);
                    d.settle();
                    while !d.stopped.get() {
                        d.wake.wait().await;
                    }
                    break;
                }
                d.status.borrow_mut().peer_instance = Some(instance);
                last_err = None;
                backoff = FIRST_BACKOFF;
                let conn = PeerConn {
                    stream: dialed.stream,
                    tls: dialed.tls,
                    framer: dialed.framer,
                    instance,
                    dialer: me,
                    name: dialed.accept.name.clone().unwrap_or_default(),
                    ping_interval: d.setup.ping_interval,
                    ping_timeout: d.setup.ping_timeout,
                    max_queue_bytes: d.setup.max_queue_bytes,
                };
                serve(shard.clone(), host.clone(), conn, Some(d.clone())).await;
                d.status.borrow_mut().synced = false;
            }
            Some(Err(e)) => {
                if last_err.as_deref() != Some(e.message.as_str()) {
                    tracing::warn!(rlink = %d.setup.id, target = %d.setup.addr, error = %e, "rlink failed; retrying");
                } else {
                    tracing::debug!(rlink = %d.setup.id, error = %e, "rlink failed");
                }
                d.status.borrow_mut().last_error = Some(e.message.clone());
                last_err = Some(e.message);
                d.settle();
            }
            None => {
                d.status.borrow_mut().last_error = Some("connect and handshake timed out".into());
                d.settle();
            }
        }
        if d.stopped.get() {
            break;
        }
        d.pause(backoff).await;
        backoff = (backoff * 2).min(d.setup.reconnect_max);
    }
    d.set_state(RLinkState::Stopped);
}

/// The ping interval and timeout an accepted link uses: the dialer's (from
/// its HELLO), kept within sane bounds, or the defaults.
pub fn accepted_ping(ping_ms: Option<(u64, u64)>) -> (Duration, Duration) {
    match ping_ms {
        Some((i, t)) => {
            let i = Duration::from_millis(i.clamp(50, 60_000));
            let t = Duration::from_millis(t.clamp(100, 600_000)).max(i * 2);
            (i, t)
        }
        None => (ACCEPTED_PING_INTERVAL, ACCEPTED_PING_TIMEOUT),
    }
}

/// An accepted peer link (after the proof), to serve on the realm's home
/// shard.
pub async fn serve_accepted(shard: Rc<Shard>, h: super::link::LinkHandoff, instance: u64) {
    let kind = h.kind;
    // SAFETY: the hand-off owns `fd`, an open connected socket of `kind`.
    let stream = unsafe { Stream::from_fd(kind, h.fd) };
    let Some(host) = shard.realm_host(&h.realm) else {
        tracing::error!(realm = %h.realm, "peer link hand-off to a shard that does not home the realm");
        return;
    };
    if instance == host.links().instance {
        // Our own dialer reached us; it notices from the instance id.
        return;
    }
    let (ping_interval, ping_timeout) = accepted_ping(h.ping_ms);
    let conn = PeerConn {
        stream,
        tls: h.tls,
        framer: h.framer,
        instance,
        dialer: instance,
        name: h.name,
        ping_interval,
        ping_timeout,
        max_queue_bytes: ACCEPTED_MAX_QUEUE_BYTES,
    };
    serve(shard, host, conn, None).await;
    drop(h.permit);
}

/// An established link, either direction.
struct PeerConn {
    stream: Stream,
    tls: Option<Tls>,
    framer: Framer,
    /// The peer's instance id, and the dialing side's.
    instance: u64,
    dialer: u64,
    name: String,
    ping_interval: Duration,
    ping_timeout: Duration,
    max_queue_bytes: usize,
}

/// Serves a link until it drops.
async fn serve(shard: Rc<Shard>, host: Rc<RealmHost>, c: PeerConn, dialer: Option<Rc<Dialer>>) {
    let PeerConn { stream, tls, mut framer, instance, dialer: dialed_by, name, .. } = c;
    let (mut rstream, wstream, write_fd) = super::conn::split_stream(stream);
    let tls = tls.map(|t| Rc::new(RefCell::new(t)));
    let limits = ConnectionLimits {
        max_connections: 1,
        max_outbound_bytes: c.max_queue_bytes,
        max_outbound_messages: usize::MAX / 2,
        slow_consumer_policy: SlowConsumerPolicy::Close,
    };
    let out = Rc::new(Outbound::new(write_fd, limits));
    let writer = spawn_writer(out.clone(), wstream, tls.clone());
    let peer_name = if name.is_empty() { format!("instance {instance:016x}") } else { name };
    let mut tmp = vec![0u8; 64 * 1024];
    let mut plain = Vec::new();
    // One link per pair, decided by the lower instance (see `verdict`).
    let decider = host.links().instance < instance;
    let mut early: Option<PeerMsg> = None;
    let admitted = if decider {
        let l = host.links().admit(&host, instance, dialed_by, &peer_name, out.clone(), true);
        if l.is_some() {
            let _ = out.push(|b| {
                let _ = link::write_peer_with(b, |b| PeerMsg::Admitted.encode_into(b));
            });
        }
        l
    } else {
        match with_timeout(c.ping_timeout, first_message(&mut rstream, &mut framer, &tls, &mut tmp, &mut plain, &out))
            .await
        {
            Some(Some(Ok(msg))) => {
                // A peer without verdicts (an older Junction) starts with
                // its state: take the link and keep the message.
                if !matches!(msg, PeerMsg::Admitted) {
                    early = Some(msg);
                }
                host.links().admit(&host, instance, dialed_by, &peer_name, out.clone(), false)
            }
            Some(Some(Err(e))) => {
                host.links().counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer_name = %peer_name, error = %e, "bad cluster message; dropping the peer link");
                None
            }
            // Refused by the decider (it keeps another link), or gone.
            _ => {
                host.links().counters.links_deduplicated.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(peer_name = %peer_name, "the peer keeps another link between this pair of workers");
                None
            }
        }
    };
    let Some(l) = admitted else {
        out.abort();
        drop(rstream);
        writer.await;
        if let Some(d) = &dialer {
            d.set_state(RLinkState::Standby);
            d.settle();
        }
        return;
    };
    let peer = l.peer;
    if let Some(d) = &dialer {
        *d.current.borrow_mut() = Some(l.clone());
        let mut s = d.status.borrow_mut();
        s.state = RLinkState::Up;
        s.ups += 1;
        s.peer_name = Some(peer_name.clone());
        s.last_error = None;
    }
    tracing::info!(realm = %host.name(), %peer, peer_name = %peer_name, dialed = dialer.is_some(),
        instance = %format_args!("{:016x}", host.links().instance), "peer link up");
    host.peer_up(peer);

    let last_seen = Rc::new(Cell::new(Instant::now()));
    let ping = {
        let (out, last_seen, counters) = (out.clone(), last_seen.clone(), host.links().counters.clone());
        let (interval, timeout) = (c.ping_interval, c.ping_timeout);
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(interval).await;
                if out.state() != OutState::Open {
                    break;
                }
                if last_seen.get().elapsed() > timeout {
                    counters.ping_timeouts.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("peer link silent for {timeout:?}; dropping it");
                    out.abort();
                    break;
                }
                out.push_control(|b| rawsocket::write_frame(b, rawsocket::FrameKind::Ping, b"jc"));
            }
        })
        .detach()
    };

    let counters = host.links().counters.clone();
    // A cluster message from the peer (the first one may have been read
    // while waiting for the verdict).
    let on_message = |msg: PeerMsg| {
        counters.messages_received.fetch_add(1, Ordering::Relaxed);
        match msg {
            PeerMsg::Admitted => return,
            PeerMsg::Synced => {
                l.synced.set(true);
                if let Some(d) = &dialer {
                    d.status.borrow_mut().synced = true;
                    d.settle();
                }
                tracing::info!(%peer, peer_name = %l.name,
                    instance = %format_args!("{:016x}", host.links().instance), "peer state synced");
            }
            _ => {}
        }
        host.handle_peer(peer, msg);
    };
    if let Some(msg) = early.take() {
        on_message(msg);
    }
    'outer: loop {
        let mut handled = 0usize;
        loop {
            if l.dead.get() {
                break 'outer;
            }
            match framer.next_event() {
                Ok(None) => break,
                Ok(Some(FrameEvent::Message(payload))) => {
                    handled += 1;
                    match decode(payload) {
                        Ok(msg) => on_message(msg),
                        Err(e) => {
                            counters.protocol_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(%peer, error = %e, "bad cluster message; dropping the peer link");
                            out.abort();
                            break 'outer;
                        }
                    }
                    if handled.is_multiple_of(256) {
                        host.pump();
                    }
                }
                Ok(Some(FrameEvent::Ping)) => out.push_control(|b| framer.drain_transmit(b)),
                Ok(Some(FrameEvent::Pong)) => {}
                Ok(Some(FrameEvent::Close { .. })) | Err(_) => {
                    out.abort();
                    break 'outer;
                }
            }
        }
        host.pump();
        if out.state() != OutState::Open {
            break;
        }
        let Some(n) = read_some(&mut rstream, &mut tmp, &out).await else { break };
        let now = Instant::now();
        last_seen.set(now);
        host.set_now(now);
        host.set_wall_clock(SystemTime::now());
        if feed_input(&tls, &tmp[..n], &mut plain, &mut framer, &out).is_err() {
            out.abort();
            break;
        }
    }
    out.abort();
    if host.links().remove(&l) {
        host.peer_down(peer);
    }
    if let Some(d) = &dialer {
        d.current.borrow_mut().take();
    }
    tracing::info!(realm = %host.name(), %peer, peer_name = %l.name,
        instance = %format_args!("{:016x}", host.links().instance), "peer link down");
    drop(rstream);
    writer.await;
    drop(ping);
    let _ = shard;
}

/// What to do with a link whose handshake just completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// The pair has no link: this one carries it.
    Admit,
    /// This one carries the pair; the live one goes.
    Replace,
    /// The pair keeps its live link; this one goes.
    Reject,
}

/// One link per pair of workers, decided by ONE of them, so that a link
/// both ends use is never replaced because a second one came up (that
/// would cancel the calls in flight on it and drop the peer's state for a
/// moment). The **decider** is the worker with the lower instance id: it
/// keeps the pair's live link and refuses any other, except a new link
/// from the same peer dialer (the peer gave up on the old one; it is gone
/// there). It then sends [`PeerMsg::Admitted`] first on the link it keeps.
/// The other worker admits a link only on that verdict and then drops any
/// link it still had to the decider (the decider holds no other link, so
/// that one is dead already). `existing_dialer`: who dialed the pair's
/// live link, if it has one here.
fn verdict(decider: bool, me: u64, existing_dialer: Option<u64>, new_dialer: u64) -> Verdict {
    match existing_dialer {
        None => Verdict::Admit,
        Some(_) if !decider => Verdict::Replace,
        Some(d) if d == new_dialer && new_dialer != me => Verdict::Replace,
        Some(_) => Verdict::Reject,
    }
}

/// Reads (answering pings) until the first cluster message of a link; the
/// side that is not the decider waits so for the decider's verdict. `None`
/// if the link closes or breaks first.
async fn first_message(
    rstream: &mut super::stream::SharedStream,
    framer: &mut Framer,
    tls: &Option<Rc<RefCell<Tls>>>,
    tmp: &mut [u8],
    plain: &mut Vec<u8>,
    out: &Rc<Outbound>,
) -> Option<Result<PeerMsg, String>> {
    loop {
        loop {
            match framer.next_event() {
                Ok(None) => break,
                Ok(Some(FrameEvent::Message(payload))) => return Some(decode(payload)),
                Ok(Some(FrameEvent::Ping)) => out.push_control(|b| framer.drain_transmit(b)),
                Ok(Some(FrameEvent::Pong)) => {}
                Ok(Some(FrameEvent::Close { .. })) | Err(_) => return None,
            }
        }
        if out.state() != OutState::Open {
            return None;
        }
        let n = read_some(rstream, tmp, out).await?;
        if feed_input(tls, &tmp[..n], plain, framer, out).is_err() {
            return None;
        }
    }
}

fn decode(payload: Bytes) -> Result<PeerMsg, String> {
    match LinkFrame::decode(payload).map_err(|e| e.to_string())? {
        LinkFrame::Peer(body) => PeerMsg::decode(&body).map_err(|e| e.to_string()),
        other => Err(format!("unexpected link frame on a peer link: {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::{verdict, Verdict};

    const LOW: u64 = 0x10;
    const HIGH: u64 = 0x20;

    #[test]
    fn the_first_link_of_a_pair_is_admitted_on_both_sides() {
        assert_eq!(verdict(true, LOW, None, HIGH), Verdict::Admit);
        assert_eq!(verdict(true, LOW, None, LOW), Verdict::Admit);
        assert_eq!(verdict(false, HIGH, None, LOW), Verdict::Admit);
    }

    #[test]
    fn the_decider_keeps_a_live_link_whoever_dials_the_second() {
        // The live link was dialed by the decider; the peer's dial arrives.
        assert_eq!(verdict(true, LOW, Some(LOW), HIGH), Verdict::Reject);
        // The live link was dialed by the peer; the decider's own dial completes.
        assert_eq!(verdict(true, LOW, Some(HIGH), LOW), Verdict::Reject);
    }

    #[test]
    fn a_peer_that_redials_replaces_the_link_it_gave_up() {
        assert_eq!(verdict(true, LOW, Some(HIGH), HIGH), Verdict::Replace);
    }

    #[test]
    fn the_other_side_follows_the_decider() {
        // It only asks once the decider admitted the link, so whatever it
        // still holds is gone at the decider.
        assert_eq!(verdict(false, HIGH, Some(HIGH), LOW), Verdict::Replace);
        assert_eq!(verdict(false, HIGH, Some(LOW), LOW), Verdict::Replace);
    }

    /// Two links between a pair, completing in every order at each end: the
    /// decider admits exactly one, so the pair never flaps a link it uses.
    #[test]
    fn overlapping_dials_end_with_one_link_and_no_replacement() {
        let dials = [LOW, HIGH];
        for first in 0..2 {
            let second = 1 - first;
            let mut live: Option<u64> = None;
            let mut admitted = 0;
            let mut replaced = 0;
            for d in [dials[first], dials[second]] {
                match verdict(true, LOW, live, d) {
                    Verdict::Admit => {
                        admitted += 1;
                        live = Some(d);
                    }
                    Verdict::Replace => replaced += 1,
                    Verdict::Reject => {}
                }
            }
            assert_eq!((admitted, replaced), (1, 0), "first dial by {:x}", dials[first]);
        }
    }
}
