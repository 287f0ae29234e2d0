//! The life of one connection.
//!
//! 1. **Opening** (on whichever shard accepted it): transport handshake
//!    (WebSocket upgrade or RawSocket handshake), then the first WAMP message,
//!    which must be HELLO, all within `open_handshake_timeout`.
//! 2. **Hand-off**: the realm named in HELLO has a home shard. The socket's
//!    fd, the framing state and the already-buffered bytes move there in one
//!    [`Handoff`] message (or stay, if this is the home shard).
//! 3. **Session** (on the home shard): a reader task feeds frames to the
//!    realm's engine; a writer task flushes the connection's [`Outbound`]
//!    buffer; an optional ping task checks liveness. Both tasks use their own
//!    dup of the socket fd so a read and a write can be in flight at once.

use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::cell::RefCell;

use bytes::Bytes;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use wamp_proto::{Dict, Message, Serializer, SessionId, Value};

use super::bind::dup;
use super::directory::SessionEntry;
use super::framer::{FrameEvent, FrameSender, Framer, HandshakeStep, TransportHandshake};
use super::outbound::{OutState, Outbound, Overflow};
use super::setup::SlowConsumerPolicy;
use super::shard::Shard;
use super::stream::{SharedStream, SocketKind, Stream};
use super::tls::Tls;
use crate::engine::handshake::{self, AuthOutcome};
use wamp_auth::{AuthHandshake, RealmFns, Time, TransportInfo};

/// ABORT reason sent to a consumer closed for falling behind. Junction's own
/// URI: the WAMP spec defines none for this.
pub const SLOW_CONSUMER_REASON: &str = "junction.error.slow_consumer";

/// How long a closed slow consumer gets to read its ABORT.
pub const SLOW_CONSUMER_GRACE: Duration = Duration::from_secs(2);

/// Read buffer size per connection.
const READ_CHUNK: usize = 64 * 1024;

thread_local! {
    /// The receive buffer every connection of this shard (thread) reads
    /// into, see [`read_shared`].
    static READ_BUF: RefCell<Vec<u8>> = RefCell::new(vec![0u8; READ_CHUNK]);
}

/// Holds one slot of a transport's connection limit; frees it on drop,
/// whichever shard the connection ends on.
pub struct ConnPermit(Arc<AtomicUsize>);

/// Why a connection got no [`ConnPermit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoPermit {
    /// The transport's `max_connections`.
    TransportLimit,
    /// The process's descriptor capacity ([`super::fdlimit`]).
    Descriptors,
}

impl ConnPermit {
    /// Takes a slot of the transport if fewer than `max` are taken, and one
    /// of the process's descriptor capacity.
    pub fn acquire(counter: &Arc<AtomicUsize>, max: usize) -> Result<ConnPermit, NoPermit> {
        let prev = counter.fetch_add(1, Ordering::AcqRel);
        if prev >= max {
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(NoPermit::TransportLimit);
        }
        if !super::fdlimit::take_slot() {
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(NoPermit::Descriptors);
        }
        Ok(ConnPermit(counter.clone()))
    }
}

impl Drop for ConnPermit {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
        super::fdlimit::give_slot();
    }
}

/// What the opening shard learned, moved to the realm's home shard.
pub struct Handoff {
    pub fd: RawFd,
    pub kind: SocketKind,
    pub transport: usize,
    pub framer: Framer,
    pub serializer: Serializer,
    pub join: JoinRequest,
    pub transport_details: Dict,
    pub permit: ConnPermit,
    /// The TLS session, if the transport is TLS (boxed: it is large, and
    /// the session task's future would carry it inline).
    pub tls: Option<Box<Tls>>,
}

/// The admitted identity from HELLO processing.
pub struct JoinRequest {
    /// The session ID, reserved in the directory when HELLO arrived.
    pub session: SessionId,
    /// For `WELCOME.Details.authextra`.
    pub authextra: Dict,
    pub realm: String,
    pub authid: String,
    pub authrole: String,
    pub authmethod: String,
    pub authprovider: String,
    pub hello_details: Dict,
}

/// Error while opening: what to log and count.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("peer closed the connection")]
    Closed,
    #[error("i/o error: {0}")]
    Io(std::io::Error),
    #[error("{0}")]
    Rejected(&'static str),
    #[error("TLS: {0}")]
    Tls(String),
}

/// What the opening phase needs from the worker it runs in: the router's
/// shards, or a proxy worker's. Implemented by [`Shard`] and by the proxy.
pub trait Gatekeeper: 'static {
    /// The transport's setup.
    fn transport_setup(&self, transport: usize) -> Arc<super::setup::TransportSetup>;
    /// Does the realm exist (may clients ask for it)?
    fn has_realm(&self, realm: &str) -> bool;
    /// Does the role exist on the realm?
    fn has_role(&self, realm: &str, role: &str) -> bool;
    /// The transport's failed-authentication budget.
    fn limiter(&self, transport: usize) -> Arc<std::sync::Mutex<wamp_auth::FailureLimiter>>;
    /// Counters.
    fn stats(&self) -> &super::shard::NodeStats;
    /// A session id for a session about to authenticate on `realm`.
    fn reserve_session(&self, realm: &str) -> SessionId;
    /// Releases a reserved id of a session that was not admitted.
    fn release_session(&self, id: SessionId);
    /// Calls a dynamic authenticator.
    fn call_authenticator(
        self: Rc<Self>,
        req: wamp_auth::DynamicAuthRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, wamp_auth::DynamicError>>>>;
    /// The router shard, if this is one (only routers accept proxy links).
    fn router_shard(self: &Rc<Self>) -> Option<Rc<Shard>>;
    /// What a `nodeinfo` web service shows.
    fn node_info(&self) -> serde_json::Value;
    /// What a `metrics` web service shows: the worker's counters as
    /// Prometheus text (see [`junction_web::Exposition`]).
    fn metrics(&self) -> String;
}

impl Gatekeeper for Shard {
    fn transport_setup(&self, transport: usize) -> Arc<super::setup::TransportSetup> {
        self.transports.get(transport).setup.clone()
    }
    fn has_realm(&self, realm: &str) -> bool {
        self.realm_table.get(realm).is_some()
    }
    fn has_role(&self, realm: &str, role: &str) -> bool {
        self.realm_table.has_role(realm, role)
    }
    fn limiter(&self, transport: usize) -> Arc<std::sync::Mutex<wamp_auth::FailureLimiter>> {
        Shard::limiter(self, transport)
    }
    fn stats(&self) -> &super::shard::NodeStats {
        &self.stats
    }
    fn reserve_session(&self, realm: &str) -> SessionId {
        let home = self.home_shard_of(realm);
        self.reserve_session_id(home, realm)
    }
    fn release_session(&self, id: SessionId) {
        self.directory.remove(id);
    }
    fn call_authenticator(
        self: Rc<Self>,
        req: wamp_auth::DynamicAuthRequest,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<Value, wamp_auth::DynamicError>>>> {
        Box::pin(async move { Shard::call_authenticator(&self, req).await })
    }
    fn router_shard(self: &Rc<Self>) -> Option<Rc<Shard>> {
        Some(self.clone())
    }
    fn node_info(&self) -> serde_json::Value {
        let realms = self.realm_table.names();
        serde_json::json!({
            "product": "Junction",
            "version": env!("CARGO_PKG_VERSION"),
            "worker": "router",
            "shards": self.setup.shards,
            "realms": realms,
            "sessions": self.directory.len(),
            "uptime_seconds": self.started.elapsed().as_secs(),
        })
    }
    fn metrics(&self) -> String {
        let mut e = junction_web::Exposition::new();
        e.gauge_family(
            "worker_up",
            "1 for a running worker, labelled with its type and Junction's version.",
            vec![(vec![("worker".into(), "router".into()), ("version".into(), env!("CARGO_PKG_VERSION").into())], 1)],
        );
        e.gauge("uptime_seconds", "Seconds since the worker started.", gauge(self.started.elapsed().as_secs()));
        e.gauge("shards", "Shards (threads) of the worker.", gauge(self.setup.shards as u64));
        e.gauge("sessions", "Sessions on the worker (admitted or authenticating).", gauge(self.directory.len() as u64));
        let mut per_realm: Vec<(String, usize)> = self.realm_table.names().into_iter().map(|r| (r, 0)).collect();
        for (realm, n) in self.directory.count_by_realm() {
            match per_realm.iter_mut().find(|(r, _)| **r == *realm) {
                Some(slot) => slot.1 += n,
                None => per_realm.push((realm.to_string(), n)),
            }
        }
        e.gauge_family(
            "realm_sessions",
            "Sessions per realm.",
            per_realm.into_iter().map(|(r, n)| (vec![("realm".to_owned(), r)], gauge(n as u64))).collect(),
        );
        self.stats.export(&mut e);
        super::shard::export_message_counts(&self.realm_table, &mut e);
        let c = &self.cluster;
        let g = |a: &std::sync::atomic::AtomicU64| a.load(Ordering::Relaxed);
        e.counter("cluster_links_up", "Router-to-router links that came up.", g(&c.links_up));
        e.counter(
            "cluster_links_deduplicated",
            "Router-to-router links dropped as a duplicate of the pair's other link.",
            g(&c.links_deduplicated),
        );
        e.counter(
            "cluster_queue_overflows",
            "Router-to-router links dropped because the peer did not drain its queue.",
            g(&c.queue_overflows),
        );
        e.counter("cluster_ping_timeouts", "Router-to-router links dropped for silence.", g(&c.ping_timeouts));
        e.counter(
            "cluster_protocol_errors",
            "Router-to-router links dropped for a malformed cluster message.",
            g(&c.protocol_errors),
        );
        e.counter("cluster_messages_sent", "Cluster messages sent to other router workers.", g(&c.messages_sent));
        e.counter(
            "cluster_messages_received",
            "Cluster messages received from other router workers.",
            g(&c.messages_received),
        );
        e.gauge(
            "cluster_links_unsettled",
            "Configured router-to-router links whose first attempt has not concluded.",
            gauge(c.unsettled.load(Ordering::Relaxed) as u64),
        );
        e.encode()
    }
}

/// A count as a gauge value (saturating).
pub fn gauge(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The opening phase with its deadline (`open_handshake_timeout`, `None`
/// when it passed), repeated for each request of a kept-alive HTTP
/// connection; never returns `Opening::Http { keep_alive: true, .. }`.
pub async fn open_phase<G: Gatekeeper>(
    gate: &Rc<G>,
    stream: &mut Stream,
    transport: usize,
    peer: &str,
) -> Option<Result<Opened, OpenError>> {
    let timeout = gate.transport_setup(transport).open_handshake_timeout;
    let mut resume = None;
    let mut served = false;
    loop {
        match with_timeout(timeout, open_inner(gate, stream, transport, peer, resume.take())).await {
            Some(Ok(Some(Opening::Http { keep_alive: true, resume: next }))) => {
                served = true;
                resume = Some(next);
            }
            // A kept-alive HTTP connection that the client closes, or leaves
            // idle, after its last request is done, not failed.
            Some(Err(OpenError::Closed)) | None if served => {
                return Some(Ok(Some(Opening::Http {
                    keep_alive: false,
                    resume: Resume { tls: None, rest: Vec::new() },
                })))
            }
            other => return other,
        }
    }
}

/// A connection's reader and writer sides over its one fd (see
/// [`SharedStream`]), and the fd (for [`Outbound`]).
pub fn split_fd(fd: RawFd, kind: SocketKind) -> std::io::Result<(SharedStream, SharedStream, RawFd)> {
    // SAFETY: `fd` is ours, an open, connected socket of `kind`.
    Ok(split_stream(unsafe { Stream::from_fd(kind, fd) }))
}

/// [`split_fd`] for a stream this shard already holds.
pub fn split_stream(stream: Stream) -> (SharedStream, SharedStream, RawFd) {
    let fd = stream.fd();
    let r = SharedStream::new(stream);
    (r.clone(), r, fd)
}

/// Waits until the connection has bytes, reads them into the shard's
/// shared receive buffer and hands them to `f` in the same poll: the
/// buffer is borrowed only while a read completes (glommio's streams wait
/// for readiness, then `recv` into the caller's buffer), so a connection
/// that waits holds none. `Ok(None)` on EOF.
pub async fn read_shared<R>(
    rstream: &mut (impl futures_lite::AsyncRead + Unpin),
    mut f: impl FnMut(&[u8]) -> R,
) -> std::io::Result<Option<R>> {
    use std::task::Poll;
    futures_lite::future::poll_fn(|cx| {
        READ_BUF.with(|buf| {
            let mut b = buf.borrow_mut();
            match std::pin::Pin::new(&mut *rstream).poll_read(cx, &mut b[..]) {
                Poll::Ready(Ok(0)) => Poll::Ready(Ok(None)),
                Poll::Ready(Ok(n)) => Poll::Ready(Ok(Some(f(&b[..n])))),
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                Poll::Pending => Poll::Pending,
            }
        })
    })
    .await
}

/// Waits for the next bytes of a connection (after yielding if this task
/// has run long); `None` on EOF or error, with `out` aborted.
pub async fn read_some(
    rstream: &mut (impl futures_lite::AsyncRead + Unpin),
    buf: &mut [u8],
    out: &Outbound,
) -> Option<usize> {
    // A flooding peer whose reads always complete at once must not starve
    // the other tasks of this shard (writers, timers, other sessions).
    glommio::yield_if_needed().await;
    match rstream.read(buf).await {
        Ok(0) | Err(_) => {
            out.abort();
            None
        }
        Ok(n) => Some(n),
    }
}

/// Feeds bytes read from a connection's socket to its framer, through TLS
/// when the connection has it (TLS output, e.g. a key update, wakes the
/// writer).
pub fn feed_input(
    tls: &Option<Rc<RefCell<Tls>>>,
    data: &[u8],
    plain: &mut Vec<u8>,
    framer: &mut Framer,
    out: &Outbound,
) -> Result<(), super::tls::TlsError> {
    match tls {
        None => {
            framer.feed(data);
            Ok(())
        }
        Some(t) => {
            plain.clear();
            let r = t.borrow_mut().feed(data, plain);
            framer.feed(plain);
            if t.borrow().wants_write() {
                out.notify.notify();
            }
            r
        }
    }
}

/// Starts the auto-ping of a connection (if its transport pings): a ping
/// every `interval`; no frame within `timeout` after it closes the
/// connection. Runs on the thread's schedule ([`super::heartbeat`]).
pub fn spawn_auto_ping(conn: &Rc<Conn>, settings: Option<(Duration, Duration, usize)>) {
    super::heartbeat::register(conn, settings);
}

/// Phase 1 for a freshly accepted connection.
pub async fn open(
    shard: Rc<Shard>,
    mut stream: Stream,
    kind: SocketKind,
    transport: usize,
    peer: String,
    permit: ConnPermit,
) {
    let result = open_phase(&shard, &mut stream, transport, &peer).await;
    match result {
        Some(Ok(Some(Opening::Http { .. }))) => {}
        Some(Ok(Some(Opening::Link(framer, id, tls)))) => {
            let home = shard.home_shard_of(&id.realm);
            let fd = match dup(stream.fd()) {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "dup failed during link hand-off");
                    return;
                }
            };
            drop(stream);
            let h = super::link::LinkHandoff {
                fd,
                kind,
                transport,
                framer,
                realm: id.realm,
                name: id.name,
                key: id.key,
                permit,
                tls,
                peer: id.peer,
                ping_ms: id.ping_ms,
            };
            shard.route_link(home, h).await;
        }
        Some(Ok(Some(Opening::Session(framer, serializer, join, transport_details, tls)))) => {
            let home = shard.home_shard_of(&join.realm);
            // The stream's fd stays open through the dup; dropping the stream closes the original.
            let fd = match dup(stream.fd()) {
                Ok(fd) => fd,
                Err(e) => {
                    tracing::warn!(%peer, error = %e, "dup failed during hand-off");
                    return;
                }
            };
            drop(stream);
            let tls = tls.map(Box::new);
            let h = Handoff { fd, kind, transport, framer, serializer, join, transport_details, permit, tls };
            shard.route_handoff(home, h).await;
        }
        Some(Ok(None)) => {
            // Refused with a reply already written (e.g. ABORT); close.
            shard.stats.opening_refused.fetch_add(1, Ordering::Relaxed);
        }
        Some(Err(e)) => {
            shard.stats.opening_failed.fetch_add(1, Ordering::Relaxed);
            match e {
                // The peer broke the transport or WAMP opening rules.
                OpenError::Rejected(_) | OpenError::Tls(_) => {
                    tracing::info!(%peer, transport = %shard.transport_setup(transport).id, error = %e, "connection refused while opening")
                }
                OpenError::Closed | OpenError::Io(_) => {
                    tracing::debug!(%peer, error = %e, "connection failed while opening")
                }
            }
        }
        None => {
            shard.stats.opening_timeouts.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(%peer, "opening handshake timed out");
        }
    }
}

/// What the opening phase produced (once per connection: not boxed).
#[allow(clippy::large_enum_variant)]
pub enum Opening {
    /// A client session, admitted.
    Session(Framer, Serializer, JoinRequest, Dict, Option<Tls>),
    /// A proxy link, authenticated.
    Link(Framer, super::link::LinkIdentity, Option<Tls>),
    /// A plain HTTP request was answered (web services). With
    /// `keep_alive`, run the opening phase again with `resume`.
    Http { keep_alive: bool, resume: Resume },
}

/// State carried from one HTTP request of a kept-alive connection to the
/// next opening phase: the TLS session and bytes already read.
pub struct Resume {
    pub tls: Option<Tls>,
    pub rest: Vec<u8>,
}

/// `None`: refused with a reply already written.
pub type Opened = Option<Opening>;

/// I/O of the opening phase: plain, or through TLS.
struct OpeningIo<'a> {
    stream: &'a mut Stream,
    tls: Option<Tls>,
    cipher: Vec<u8>,
}

impl OpeningIo<'_> {
    /// Reads until at least one byte of plaintext arrived; returns it.
    async fn recv(&mut self, plain: &mut Vec<u8>) -> Result<(), OpenError> {
        plain.clear();
        while plain.is_empty() {
            let tls = &mut self.tls;
            let cipher = &mut self.cipher;
            let fed = read_shared(self.stream, |raw| match tls {
                None => {
                    plain.extend_from_slice(raw);
                    Ok(())
                }
                Some(tls) => {
                    let r = tls.feed(raw, plain);
                    cipher.clear();
                    tls.take_ciphertext(cipher);
                    r
                }
            })
            .await
            .map_err(OpenError::Io)?;
            let Some(fed) = fed else { return Err(OpenError::Closed) };
            if !self.cipher.is_empty() {
                self.stream.write_all(&self.cipher).await.map_err(OpenError::Io)?;
                self.cipher.clear();
            }
            fed.map_err(|e| OpenError::Tls(e.to_string()))?;
        }
        Ok(())
    }

    /// Writes plaintext.
    async fn send(&mut self, data: &[u8]) -> Result<(), OpenError> {
        match &mut self.tls {
            None => self.stream.write_all(data).await.map_err(OpenError::Io),
            Some(tls) => {
                self.cipher.clear();
                tls.encrypt(data, &mut self.cipher).map_err(|e| OpenError::Tls(e.to_string()))?;
                self.stream.write_all(&self.cipher).await.map_err(OpenError::Io)
            }
        }
    }
}

/// The opening phase of a client connection on any worker (see [`Gatekeeper`]):
/// TLS, transport handshake, HELLO and authentication.
pub async fn open_inner<G: Gatekeeper>(
    shard: &Rc<G>,
    stream: &mut Stream,
    transport: usize,
    peer: &str,
    resume: Option<Resume>,
) -> Result<Opened, OpenError> {
    let setup = shard.transport_setup(transport);
    let (tls, mut pending) = match resume {
        Some(r) => (r.tls, r.rest),
        None => match &setup.tls {
            Some(src) => (Some(Tls::new(&src.current()).map_err(|e| OpenError::Tls(e.to_string()))?), Vec::new()),
            None => (None, Vec::new()),
        },
    };
    let mut io = OpeningIo { stream, tls, cipher: Vec::new() };
    let mut plain = Vec::new();
    let mut hs = TransportHandshake::new(&setup);
    let is_raw = matches!(setup.framing, super::setup::FramingSetup::RawSocket(_));
    let mut head: Vec<u8> = Vec::new();
    // Transport handshake.
    let (mut framer, serializer, mut details, auth) = loop {
        if pending.is_empty() {
            io.recv(&mut plain).await?;
        } else {
            plain = std::mem::take(&mut pending);
        }
        if is_raw && head.len() < 2 {
            head.extend_from_slice(&plain);
            if head.len() >= 2 && wamp_framing::link::is_link_handshake(&head) {
                return match shard.router_shard() {
                    Some(router) => open_link(&router, &mut io, head, transport, peer).await,
                    None => {
                        let code = wamp_framing::rawsocket::HandshakeErrorCode::SerializerUnsupported;
                        let _ = io.send(&wamp_framing::rawsocket::error_reply(code)).await;
                        Err(OpenError::Rejected("proxy link to a worker that is not a router"))
                    }
                };
            }
        }
        match hs.feed(&plain) {
            HandshakeStep::NeedMore => continue,
            HandshakeStep::Reject { reply, reason } => {
                if !reply.is_empty() {
                    let _ = io.send(&reply).await;
                }
                return Err(OpenError::Rejected(reason));
            }
            HandshakeStep::Http { request, site, rest } => {
                let keep_alive = serve_http(&mut io, shard.as_ref(), &request, &site).await?;
                return Ok(Some(Opening::Http { keep_alive, resume: Resume { tls: io.tls.take(), rest } }));
            }
            HandshakeStep::Done { reply, framer, serializer, details, auth } => {
                io.send(&reply).await?;
                break (framer, serializer, details, auth);
            }
        }
    };
    details.insert("type".into(), Value::from(framer.transport_type()));
    details.insert("peer".into(), Value::from(peer.to_owned()));
    details.insert("transport_id".into(), Value::from(setup.id.clone()));
    details.insert("serializer".into(), Value::from(serializer.name()));
    if let Some(tls) = &io.tls {
        details.insert("tls".into(), Value::Bool(true));
        if let Some(v) = tls.version() {
            details.insert("tls_version".into(), Value::from(v));
        }
    }
    // WAMP opening: HELLO, then (depending on the method) CHALLENGE /
    // AUTHENTICATE rounds, or a dynamic authenticator call.
    let sender = framer.sender();
    let mut session: Option<(Reserved, AuthHandshake, Dict)> = None;
    // The realm HELLO asked for (for log lines).
    let mut hello_realm = String::new();
    let realms = RealmFns(|r: &str| shard.has_realm(r), |r: &str, role: &str| shard.has_role(r, role));
    let result = loop {
        let msg = match framer.next_event() {
            Err(_) => {
                let mut out = Vec::new();
                framer.drain_transmit(&mut out);
                let _ = io.send(&out).await;
                break Err(OpenError::Rejected("framing error before WELCOME"));
            }
            Ok(Some(FrameEvent::Message(bytes))) => bytes,
            Ok(Some(FrameEvent::Ping)) => {
                let mut out = Vec::new();
                framer.drain_transmit(&mut out);
                io.send(&out).await?;
                continue;
            }
            Ok(Some(FrameEvent::Pong)) => continue,
            Ok(Some(FrameEvent::Close { .. })) => {
                let mut out = Vec::new();
                framer.drain_transmit(&mut out);
                let _ = io.send(&out).await;
                break Err(OpenError::Closed);
            }
            Ok(None) => {
                if let Err(e) = io.recv(&mut plain).await {
                    break Err(e);
                }
                framer.feed(&plain);
                continue;
            }
        };
        let now = Instant::now();
        let outcome = match (serializer.decode(&msg), &mut session) {
            (Err(e), _) => AuthOutcome::Abort {
                message: handshake::abort_message("wamp.error.protocol_violation", &e.to_string()),
                failed: false,
            },
            (Ok(msg), None) => match handshake::check_hello(Some(serializer), msg) {
                Err(abort) => AuthOutcome::Abort { message: abort, failed: false },
                Ok((realm, hello_details)) => {
                    hello_realm.clone_from(&realm);
                    let checked =
                        shard.limiter(transport).lock().unwrap_or_else(|e| e.into_inner()).check(peer_key(peer), now);
                    if let Err(retry) = checked {
                        shard.stats().auth_rate_limited.fetch_add(1, Ordering::Relaxed);
                        handshake::auth_outcome(wamp_auth::rate_limited(retry), &hello_details)
                    } else {
                        let id = shard.reserve_session(&realm);
                        let info = TransportInfo {
                            peer: peer.to_owned(),
                            tls_unique: None,
                            tls_exporter: io.tls.as_ref().and_then(|t| t.channel_binding()),
                            peer_cert_der: io.tls.as_ref().and_then(|t| t.peer_certificate()),
                            details: details.clone(),
                        };
                        let mut ah = AuthHandshake::new(auth.clone(), info, id);
                        let step =
                            ah.handle_hello(&realm, &hello_details, Time::now(), &realms, &mut rand::thread_rng());
                        let outcome = handshake::auth_outcome(step, &hello_details);
                        let gate: Rc<dyn ReleaseId> = shard.clone();
                        session = Some((Reserved { gate, id: Some(id) }, ah, hello_details));
                        outcome
                    }
                }
            },
            (Ok(Message::Authenticate { signature, extra }), Some((_, ah, hello_details))) => {
                let step = ah.handle_authenticate(&signature, &extra, now, &realms);
                handshake::auth_outcome(step, hello_details)
            }
            (Ok(other), Some(_)) => AuthOutcome::Abort {
                message: handshake::abort_message(
                    "wamp.error.protocol_violation",
                    &format!("expected AUTHENTICATE, got {}", other.name()),
                ),
                failed: false,
            },
        };
        // A dynamic authenticator may answer with another step; loop until
        // the outcome is final or needs the client.
        let mut outcome = outcome;
        while let AuthOutcome::Dynamic(req) = outcome {
            let result = shard.clone().call_authenticator(req).await;
            outcome = match &mut session {
                Some((_, ah, hello_details)) => {
                    let step = ah.resume_dynamic(result, Time::now(), &realms, &mut rand::thread_rng());
                    handshake::auth_outcome(step, hello_details)
                }
                None => AuthOutcome::Abort {
                    message: handshake::abort_message("wamp.error.not_authorized", "authentication failed"),
                    failed: false,
                },
            };
        }
        match outcome {
            AuthOutcome::Join {
                realm,
                authid,
                authrole,
                authmethod,
                authprovider,
                authextra,
                details: hello_details,
            } => {
                let Some((mut reserved, _, _)) = session.take() else {
                    break Err(OpenError::Rejected("join without a session"));
                };
                let join = JoinRequest {
                    session: reserved.keep(),
                    realm,
                    authid,
                    authrole,
                    authmethod,
                    authprovider,
                    authextra,
                    hello_details,
                };
                return Ok(Some(Opening::Session(framer, serializer, join, details, io.tls)));
            }
            AuthOutcome::Challenge(challenge) => {
                let mut out = Vec::new();
                match serializer.encode(&challenge) {
                    Ok(bytes) => {
                        let _ = sender.message(&bytes, &mut out);
                    }
                    Err(_) => break Err(OpenError::Rejected("cannot encode CHALLENGE")),
                }
                io.send(&out).await?;
            }
            AuthOutcome::Abort { message, failed } => {
                log_refusal(&message, failed, peer, &setup.id, &hello_realm, session.as_ref().map(|s| &s.2));
                if failed {
                    shard.stats().auth_failures.fetch_add(1, Ordering::Relaxed);
                    shard
                        .limiter(transport)
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .record_failure(peer_key(peer), Instant::now());
                }
                let mut out = Vec::new();
                if let Ok(bytes) = serializer.encode(&message) {
                    let _ = sender.message(&bytes, &mut out);
                }
                sender.close(Some(1000), "", &mut out);
                let _ = io.send(&out).await;
                // Dropping the reservation releases the session id.
                drop(session.take());
                return Ok(None);
            }
            AuthOutcome::Dynamic(_) => break Err(OpenError::Rejected("dynamic authentication did not finish")),
        }
    };
    // `session` (if any) releases its reserved id when dropped here, or
    // when the opening timeout drops this whole future.
    drop(session);
    result
}

/// Logs why a client was refused before WELCOME: failed authentication at
/// warn, protocol violations and other refusals at info, with the peer.
fn log_refusal(message: &Message, failed: bool, peer: &str, transport: &str, realm: &str, hello: Option<&Dict>) {
    let (reason, detail) = match message {
        Message::Abort { reason, details } => {
            (reason.as_str(), details.get("message").and_then(|v| v.as_str()).unwrap_or(""))
        }
        _ => ("", ""),
    };
    let authid = hello.and_then(|d| d.get("authid")).and_then(|v| v.as_str()).unwrap_or("");
    if failed {
        tracing::warn!(%peer, %transport, %realm, %authid, %reason, %detail, "authentication failed");
    } else if reason == "wamp.error.protocol_violation" {
        tracing::info!(%peer, %transport, %realm, %reason, %detail, "protocol violation before WELCOME; refused");
    } else {
        tracing::info!(%peer, %transport, %realm, %authid, %reason, %detail, "session refused");
    }
}

/// A string entry of a transport details dict (`""` if absent).
pub fn detail_str<'a>(details: &'a Dict, key: &str) -> &'a str {
    details.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

/// Answers one plain HTTP request with the transport's web site; returns
/// whether the connection stays open for another request.
async fn serve_http<G: Gatekeeper>(
    io: &mut OpeningIo<'_>,
    gate: &G,
    request: &junction_web::ParsedRequest,
    site: &junction_web::WebSite,
) -> Result<bool, OpenError> {
    let refs = request.header_refs();
    let req = request.request(&refs);
    let resp = site.respond(&req, &GateInfo(gate));
    let keep_alive = request.keep_alive();
    let mut head = Vec::with_capacity(512);
    resp.write_head(&mut head, keep_alive);
    io.send(&head).await?;
    if resp.head_only {
        return Ok(keep_alive);
    }
    match &resp.body {
        junction_web::Body::Empty => {}
        junction_web::Body::Bytes(b) => io.send(b).await?,
        junction_web::Body::File { path, offset, len } => {
            // Static files are read in chunks straight from the page cache;
            // a file that shrank since its metadata was read ends the
            // connection (the promised Content-Length cannot be met).
            use std::io::{Read, Seek, SeekFrom};
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(path)
                .map_err(OpenError::Io)?;
            f.seek(SeekFrom::Start(*offset)).map_err(OpenError::Io)?;
            let mut left = *len;
            let mut chunk = vec![0u8; 64 * 1024];
            while left > 0 {
                let want = chunk.len().min(usize::try_from(left).unwrap_or(usize::MAX));
                let n = f.read(&mut chunk[..want]).map_err(OpenError::Io)?;
                if n == 0 {
                    return Err(OpenError::Rejected("static file shrank while being sent"));
                }
                io.send(&chunk[..n]).await?;
                left -= n as u64;
                glommio::yield_if_needed().await;
            }
        }
    }
    Ok(keep_alive)
}

/// Adapter: a worker as the node-info and metrics source of a web site
/// (each asked only when its service is requested).
struct GateInfo<'a, G>(&'a G);

impl<G: Gatekeeper> junction_web::NodeInfoSource for GateInfo<'_, G> {
    fn node_info(&self) -> serde_json::Value {
        self.0.node_info()
    }
    fn metrics(&self) -> String {
        self.0.metrics()
    }
}

/// The opening phase of a proxy link: the link handshake, then the proof
/// exchange ([`super::link::LinkAuth`]).
async fn open_link(
    shard: &Rc<Shard>,
    io: &mut OpeningIo<'_>,
    mut buf: Vec<u8>,
    transport: usize,
    peer: &str,
) -> Result<Opened, OpenError> {
    use super::link::{LinkAuth, LinkStep};
    use wamp_framing::link::LinkFrame;
    use wamp_framing::rawsocket;
    let entry = shard.transports.get(transport);
    let setup = &entry.setup;
    let mut trusted = shard.setup.trusted_proxy_keys.clone();
    trusted.extend(entry.proxy_keys.iter().copied().filter(|k| !shard.setup.trusted_proxy_keys.contains(k)));
    if trusted.is_empty() {
        let _ = io.send(&rawsocket::error_reply(rawsocket::HandshakeErrorCode::SerializerUnsupported)).await;
        shard.stats.proxy_links_refused.fetch_add(1, Ordering::Relaxed);
        return Err(OpenError::Rejected("proxy link on a router worker that trusts no proxy key"));
    }
    let mut plain = Vec::new();
    while buf.len() < 4 {
        io.recv(&mut plain).await?;
        buf.extend_from_slice(&plain);
    }
    // No failed-authentication budget here: an Ed25519 proof cannot be
    // guessed, and counting a misconfigured proxy's refusals against its
    // address would lock out a correctly configured proxy on the same host.
    let max = match &setup.framing {
        super::setup::FramingSetup::RawSocket(rs) => rs.max_message_size,
        super::setup::FramingSetup::WebSocket { .. } => return Err(OpenError::Rejected("link on WebSocket")),
    };
    io.send(&wamp_framing::link::server_handshake_reply(max)).await?;
    let mut framer = Framer::raw_link(&buf[4..], (max + 5).min(rawsocket::MAX_FRAME_PAYLOAD));
    let mut auth = LinkAuth::new(trusted, max, shard.instance, shard.setup.name.clone());
    loop {
        match framer.next_event() {
            Ok(None) => {
                io.recv(&mut plain).await?;
                framer.feed(&plain);
            }
            Ok(Some(FrameEvent::Message(payload))) => {
                let step =
                    auth.handle(LinkFrame::decode(payload), |r| shard.realm_table.get(r).is_some(), rand::random());
                match step {
                    LinkStep::Reply(r) => io.send(&r).await?,
                    LinkStep::Accepted(r, id) => {
                        io.send(&r).await?;
                        return Ok(Some(Opening::Link(framer, id, io.tls.take())));
                    }
                    LinkStep::Refused { reply, failed, reason } => {
                        let _ = io.send(&reply).await;
                        shard.stats.proxy_links_refused.fetch_add(1, Ordering::Relaxed);
                        if failed {
                            shard.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
                        }
                        tracing::warn!(%peer, %reason, "proxy link refused");
                        return Ok(None);
                    }
                }
            }
            Ok(Some(FrameEvent::Ping)) => {
                let mut out = Vec::new();
                framer.drain_transmit(&mut out);
                io.send(&out).await?;
            }
            Ok(Some(FrameEvent::Pong)) => {}
            Ok(Some(FrameEvent::Close { .. })) | Err(_) => {
                return Err(OpenError::Rejected("framing error in the proxy link handshake"))
            }
        }
    }
}

/// Answers a connection refused for the transport's connection limit in its
/// own protocol (RawSocket error 4, HTTP 503) and closes it.
pub async fn refuse_over_limit(shard: Rc<Shard>, stream: Stream, transport: usize) {
    let setup = shard.transport_setup(transport);
    refuse_over_limit_on(setup, stream).await
}

/// [`refuse_over_limit`] for any worker's transport.
pub async fn refuse_over_limit_on(setup: Arc<super::setup::TransportSetup>, mut stream: Stream) {
    let hs = TransportHandshake::new(&setup);
    let mut buf = [0u8; 1024];
    // Wait (briefly) for the client's handshake so the reply is read as one.
    let _ = with_timeout(Duration::from_secs(2), stream.read(&mut buf)).await;
    let _ = stream.write_all(&hs.over_limit_reply()).await;
}

/// A session id reserved in the directory at HELLO; released on drop unless
/// the session was admitted (`keep`). Dropping covers every way out of the
/// opening phase, including its timeout cancelling the future.
struct Reserved {
    gate: Rc<dyn ReleaseId>,
    id: Option<SessionId>,
}

/// Object-safe part of [`Gatekeeper`] for [`Reserved`].
trait ReleaseId {
    fn release(&self, id: SessionId);
}

impl<G: Gatekeeper> ReleaseId for G {
    fn release(&self, id: SessionId) {
        self.release_session(id);
    }
}

impl Reserved {
    /// The session was admitted: the id stays reserved for it.
    fn keep(&mut self) -> SessionId {
        self.id.take().unwrap_or(SessionId::from_valid(0))
    }
}

impl Drop for Reserved {
    fn drop(&mut self) {
        if let Some(id) = self.id.take() {
            self.gate.release(id);
        }
    }
}

/// The failure limiter's key for a peer: its address without the port
/// (`tcp4:10.0.0.1:5555` → `tcp4:10.0.0.1`), so reconnecting does not reset
/// the budget.
fn peer_key(peer: &str) -> &str {
    match peer.rsplit_once(':') {
        Some((host, port)) if peer.starts_with("tcp") && port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => peer,
    }
}

/// Runs `fut` with a deadline; `None` on timeout.
pub async fn with_timeout<T>(d: Duration, fut: impl std::future::Future<Output = T>) -> Option<T> {
    futures_lite::future::or(async { Some(fut.await) }, async {
        glommio::timer::sleep(d).await;
        None
    })
    .await
}

/// One established session's connection, on its home shard.
pub struct Conn {
    pub session: SessionId,
    /// The session's serializer (to recognise EVENTs under the drop policy).
    pub serializer: Serializer,
    /// What to do when the outbound queue is full.
    pub policy: SlowConsumerPolicy,
    /// The connection's outbound side; shared by every session of a proxy link.
    pub out: Rc<Outbound>,
    pub sender: FrameSender,
    /// When the last PONG (or any frame) arrived, for auto-ping.
    pub last_seen: std::cell::Cell<Instant>,
    /// Set for a session carried on a proxy link: its channel there.
    pub link: Option<(Rc<super::link::LinkChannels>, wamp_framing::link::ChannelId)>,
}

impl Conn {
    /// True if `bytes` is an EVENT (decoded only on the overflow path).
    pub fn is_event(&self, bytes: &Bytes) -> bool {
        matches!(self.serializer.decode(bytes), Ok(Message::Event { .. }))
    }

    /// Closes a consumer that fell behind: drops what it has not taken,
    /// sends ABORT with the reason, and hangs up, forcibly if it still does
    /// not read within [`SLOW_CONSUMER_GRACE`].
    pub fn close_slow_consumer(self: &Rc<Self>, overflow: Overflow) {
        let what = match overflow {
            Overflow::Bytes => "bytes",
            Overflow::Messages => "messages",
        };
        let msg = format!("slow consumer: the outbound queue limit ({what}) was exceeded");
        self.out.discard_pending();
        if let Ok(bytes) = handshake::encode_abort(self.serializer, SLOW_CONSUMER_REASON, &msg) {
            let sender = self.sender;
            self.out.push_control(|b| {
                let _ = sender.message(&bytes, b);
                sender.close(Some(1008), "slow consumer", b);
            });
        }
        self.out.close_after_flush();
        let me = self.clone();
        glommio::spawn_local(async move {
            glommio::timer::sleep(SLOW_CONSUMER_GRACE).await;
            if me.out.state() != OutState::Closed {
                me.out.abort();
            }
        })
        .detach();
    }

    /// The engine closed the session: close its transport (or, on a proxy
    /// link, its channel) after what is queued.
    pub fn close_session(&self) {
        match &self.link {
            Some((channels, ch)) => {
                let ch = *ch;
                channels.remove(ch);
                self.out.push_control(|b| wamp_framing::link::write_close(b, ch));
            }
            None => {
                let sender = self.sender;
                self.out.push_control(|b| sender.close(Some(1000), "", b));
                self.out.close_after_flush();
            }
        }
    }

    /// Queues one encoded WAMP message.
    /// A large message is queued by reference, not copied
    /// ([`Outbound::push_payload`]).
    pub fn send_message(&self, bytes: &Bytes) -> Result<(), Overflow> {
        let len = bytes.len();
        if let Some((_, ch)) = &self.link {
            let ch = *ch;
            if len > wamp_framing::link::MAX_DATA_LEN {
                tracing::warn!(session = %self.session, len, "message exceeds the link frame limit; dropped");
                return Ok(());
            }
            return self.out.push_payload(
                |buf| {
                    let _ = wamp_framing::link::write_data_header(buf, ch, len);
                },
                bytes,
            );
        }
        let sender = self.sender;
        if len > sender.max_payload() {
            tracing::warn!(session = %self.session, len, "message exceeds the peer's maximum message size; dropped");
            return Ok(());
        }
        self.out.push_payload(|buf| sender.message_header(len, buf), bytes)
    }
}

/// Phase 3: serve an established session on its home shard.
pub async fn serve_session(shard: Rc<Shard>, h: Handoff) {
    let Handoff { fd, kind, transport, mut framer, serializer, join, transport_details, permit, tls } = h;
    let tls: Option<Rc<RefCell<Tls>>> = tls.map(|t| Rc::new(RefCell::new(*t)));
    let setup = shard.transport_setup(transport);
    let (mut rstream, mut wstream, write_fd) = match split_fd(fd, kind) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e, "dup failed");
            shard.directory.remove(join.session);
            return;
        }
    };
    // The realm may have been stopped while the session authenticated.
    let refusal = match shard.realm_host(&join.realm) {
        None => Err(("wamp.error.no_such_realm", format!("no realm '{}' exists on this router", join.realm))),
        Some(h) if h.is_stopped() => {
            Err(("wamp.error.no_such_realm", format!("no realm '{}' exists on this router", join.realm)))
        }
        Some(h) => match h.at_capacity() {
            Some(limit) => {
                shard.stats.refused_session_limit.fetch_add(1, Ordering::Relaxed);
                let msg = format!("realm '{}' has reached its session limit (max_sessions = {limit})", join.realm);
                Err(("wamp.error.not_authorized", msg))
            }
            None => Ok(h),
        },
    };
    let host = match refusal {
        Ok(h) => h,
        Err((reason, msg)) => {
            tracing::info!(
                session = %join.session, realm = %join.realm, authid = %join.authid,
                peer = %detail_str(&transport_details, "peer"), %reason, detail = %msg, "session refused"
            );
            shard.directory.remove(join.session);
            let mut out = Vec::new();
            let sender = framer.sender();
            if let Ok(bytes) = handshake::encode_abort(serializer, reason, &msg) {
                let _ = sender.message(&bytes, &mut out);
            }
            sender.close(Some(1000), "", &mut out);
            if let Some(tls) = &tls {
                let plain = std::mem::take(&mut out);
                let _ = tls.borrow_mut().encrypt(&plain, &mut out);
            }
            let _ = wstream.write_all(&out).await;
            return;
        }
    };
    let session = join.session;
    let peer = detail_str(&transport_details, "peer").to_owned();
    let transport_id = detail_str(&transport_details, "transport_id").to_owned();
    shard.directory.update(
        session,
        SessionEntry {
            shard: shard.id,
            realm: join.realm.as_str().into(),
            authid: join.authid.as_str().into(),
            authrole: join.authrole.as_str().into(),
        },
    );
    let conn = Rc::new(Conn {
        session,
        serializer,
        policy: setup.limits.slow_consumer_policy,
        out: Rc::new(
            Outbound::new(write_fd, setup.limits.clone()).with_gauge(shard.stats.outbound_queued_bytes.clone()),
        ),
        sender: framer.sender(),
        last_seen: std::cell::Cell::new(Instant::now()),
        link: None,
    });
    host.attach(conn.clone());
    let info = crate::engine::SessionInfo {
        session,
        serializer,
        authid: join.authid.clone(),
        authrole: join.authrole.clone(),
        authmethod: join.authmethod.clone(),
        authprovider: join.authprovider.clone(),
        transport: transport_details,
    };
    host.set_now(Instant::now());
    host.set_wall_clock(std::time::SystemTime::now());
    let joined = match host.join(info, &join.hello_details, join.authextra.clone()) {
        Ok(()) => {
            tracing::debug!(
                %session, realm = %join.realm, authid = %join.authid, authrole = %join.authrole,
                authmethod = %join.authmethod, transport = %transport_id, %peer, "session open"
            );
            true
        }
        Err(e) => {
            tracing::warn!(%session, realm = %join.realm, authid = %join.authid, %peer, error = %e, "join refused");
            false
        }
    };
    host.pump();

    // Writer task.
    let writer = spawn_writer(conn.out.clone(), wstream, tls.clone());

    // Auto-ping (on the thread's schedule).
    spawn_auto_ping(&conn, framer.ping_settings());

    // Reader loop (this task). `close_reason` says why the session ended,
    // for its closing log line.
    let mut close_reason: Option<String> = None;
    let mut plain = Vec::new();
    'outer: loop {
        // Drain everything already buffered.
        let mut handled = 0usize;
        // The reason of a GOODBYE or ABORT in this batch, and the last
        // message type: if the router closes the session while handling
        // this batch, that is why (the engine ends a session from its own
        // messages only for GOODBYE, ABORT or a protocol violation).
        let mut bye: Option<String> = None;
        let mut last_type = "";
        let slow_before = shard.stats.slow_consumer_closes.load(Ordering::Relaxed);
        loop {
            match framer.next_event() {
                Ok(None) => break,
                Ok(Some(FrameEvent::Message(bytes))) => {
                    handled += 1;
                    match serializer.decode(&bytes) {
                        Ok(msg) => {
                            last_type = msg.name();
                            if let Message::Goodbye { reason, .. } | Message::Abort { reason, .. } = &msg {
                                bye = Some(reason.clone());
                            }
                            host.handle(session, msg);
                        }
                        Err(e) => {
                            shard.stats.protocol_violations.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(
                                %session, realm = %join.realm, %peer, detail = %e,
                                "protocol violation: undecodable message; aborting the session"
                            );
                            close_reason.get_or_insert_with(|| "wamp.error.protocol_violation".into());
                            host.abort(session, "wamp.error.protocol_violation", &e.to_string());
                        }
                    }
                    if handled.is_multiple_of(256) {
                        host.pump();
                    }
                }
                Ok(Some(FrameEvent::Ping)) => {
                    conn.out.push_control(|b| framer.drain_transmit(b));
                }
                Ok(Some(FrameEvent::Pong)) => {}
                Ok(Some(FrameEvent::Close { .. })) => {
                    close_reason.get_or_insert_with(|| "transport closed by the peer".into());
                    conn.out.push_control(|b| framer.drain_transmit(b));
                    conn.out.close_after_flush();
                    break 'outer;
                }
                Err(e) => {
                    shard.stats.framing_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(%session, realm = %join.realm, %peer, reason = %e.reason, "framing error; closing");
                    close_reason.get_or_insert_with(|| format!("framing error: {}", e.reason));
                    conn.out.push_control(|b| framer.drain_transmit(b));
                    conn.out.close_after_flush();
                    break 'outer;
                }
            }
        }
        host.pump();
        if handled > 0 {
            // `last_seen` is when this batch's read returned.
            shard.stats.routing_batch.observe(conn.last_seen.get().elapsed());
        }
        if conn.out.state() != OutState::Open {
            if close_reason.is_none() {
                let reason = if let Some(r) = bye {
                    r
                } else if shard.stats.slow_consumer_closes.load(Ordering::Relaxed) != slow_before {
                    SLOW_CONSUMER_REASON.to_owned()
                } else if handled > 0 {
                    tracing::info!(
                        %session, realm = %join.realm, %peer, wamp_message = %last_type,
                        "protocol violation; the router aborted the session"
                    );
                    "wamp.error.protocol_violation".to_owned()
                } else {
                    "closed by the router".to_owned()
                };
                close_reason = Some(reason);
            }
            break;
        }
        glommio::yield_if_needed().await;
        let fed = read_shared(&mut rstream, |bytes| {
            shard.stats.bytes_received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            feed_input(&tls, bytes, &mut plain, &mut framer, &conn.out)
        })
        .await;
        let fed = match fed {
            Ok(Some(fed)) => fed,
            r => {
                // The router closing the session (kill, role or realm
                // removed, shutdown, auto-ping, ...) shuts the socket down,
                // which ends this read too.
                let reason = match (conn.out.state(), r) {
                    (OutState::Open, Ok(_)) => "transport closed by the peer".to_owned(),
                    (OutState::Open, Err(e)) => format!("transport error: {e}"),
                    _ => "closed by the router".to_owned(),
                };
                close_reason.get_or_insert(reason);
                conn.out.abort();
                break;
            }
        };
        if plain.capacity() > super::outbound::KEEP_WHEN_IDLE {
            plain = Vec::new();
        }
        let now = Instant::now();
        conn.last_seen.set(now);
        host.set_now(now);
        host.set_wall_clock(std::time::SystemTime::now());
        if let Err(e) = fed {
            tracing::info!(%session, %peer, error = %e, "TLS error; closing");
            close_reason.get_or_insert_with(|| format!("TLS error: {e}"));
            conn.out.close_after_flush();
            break;
        }
    }
    if joined {
        log_close(
            session,
            (&join.realm, &join.authid, &join.authrole),
            &transport_id,
            &peer,
            close_reason.as_deref().unwrap_or("closed"),
        );
    }
    host.detach(session);
    host.pump();
    shard.directory.remove(session);
    drop(rstream);
    writer.await;
    drop(permit);
}

/// The closing log line of a session: debug for ordinary ends, info when
/// the reason is an error (`wamp.error.*`, `junction.error.*`, framing or
/// TLS errors).
pub fn log_close(session: SessionId, join: (&str, &str, &str), transport: &str, peer: &str, reason: &str) {
    let (realm, authid, authrole) = join;
    let error = reason.contains(".error.") || reason.starts_with("framing error") || reason.starts_with("TLS error");
    if error {
        tracing::info!(
            %session, %realm, %authid, %authrole, %transport, %peer, %reason, "session closed"
        );
    } else {
        tracing::debug!(
            %session, %realm, %authid, %authrole, %transport, %peer, %reason, "session closed"
        );
    }
}

/// How long a lingering close ([`Outbound::set_linger`]) waits for the peer
/// to close its side.
pub const LINGER: Duration = Duration::from_secs(2);

/// The reader's half of a lingering close ([`Outbound::set_linger`]): reads
/// and drops what the peer still sends until it closes its side or the
/// writer shuts the socket down, then marks the outbound side closed.
pub async fn drain_until_closed(rstream: &mut (impl futures_lite::AsyncRead + Unpin), out: &Outbound) {
    while let Ok(Some(())) = read_shared(rstream, |_| ()).await {}
    out.abort();
}

/// Writes all of `buf` with vectored writes (continuing partial ones).
async fn write_vectored_all(
    w: &mut (impl futures_lite::AsyncWrite + Unpin),
    buf: &super::outbound::WireBuf,
) -> std::io::Result<()> {
    let total = buf.len();
    let mut done = 0;
    let mut iov = Vec::new();
    while done < total {
        buf.slices_from(done, &mut iov);
        match w.write_vectored(&iov).await {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The writer task of a connection: flushes `out` (through TLS if set)
/// until it closes; then shuts the socket down and closes its fd. A batch
/// with shared payloads goes out in vectored writes ([`WireBuf`]).
///
/// [`WireBuf`]: super::outbound::WireBuf
pub fn spawn_writer(
    out: Rc<Outbound>,
    mut wstream: impl futures_lite::AsyncWrite + Unpin + 'static,
    tls: Option<Rc<RefCell<Tls>>>,
) -> glommio::task::JoinHandle<()> {
    glommio::spawn_local(async move {
        let mut spare = super::outbound::WireBuf::default();
        let mut cipher = Vec::new();
        let mut flushed_close = false;
        loop {
            let tls_pending = tls.as_ref().is_some_and(|t| t.borrow().wants_write());
            if out.is_idle() && !tls_pending {
                match out.state() {
                    OutState::Open => {}
                    OutState::Closing => {
                        flushed_close = true;
                        break;
                    }
                    OutState::Closed => break,
                }
                out.release_idle(&mut spare);
                if cipher.capacity() <= super::outbound::KEEP_WHEN_IDLE {
                    cipher = Vec::new();
                }
                out.notify.wait().await;
                continue;
            }
            if out.state() == OutState::Closed {
                break;
            }
            out.take(&mut spare);
            let sent = match (&tls, spare.as_flat()) {
                (None, Some(flat)) => wstream.write_all(flat).await,
                (None, None) => write_vectored_all(&mut wstream, &spare).await,
                (Some(t), _) => {
                    cipher.clear();
                    let mut r = Ok(());
                    spare.for_each_piece(|p| {
                        if r.is_ok() {
                            r = t.borrow_mut().encrypt(p, &mut cipher);
                        }
                    });
                    if let Err(e) = r {
                        tracing::warn!(error = %e, "TLS error; closing connection");
                        break;
                    }
                    wstream.write_all(&cipher).await
                }
            };
            if sent.is_err() {
                break;
            }
            // Let go of shared payloads now, not at the next write.
            spare.clear();
            out.written();
        }
        if let (true, Some(linger)) = (flushed_close, out.linger()) {
            out.shutdown_write();
            let deadline = Instant::now() + linger;
            while out.state() != OutState::Closed {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() || with_timeout(left, out.notify.wait()).await.is_none() {
                    break;
                }
            }
        }
        out.finish();
        drop(wstream);
    })
    .detach()
}
