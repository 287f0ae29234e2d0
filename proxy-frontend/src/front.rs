//! Frontend sessions: an authenticated client connection, carried on a
//! channel of a backend link.
//!
//! The proxy never decodes a client's messages after authentication: each
//! frame's payload goes to the router as a link DATA frame, byte for byte,
//! and each DATA frame from the router is framed for the client (WebSocket or
//! RawSocket, through TLS if the client uses it). The client-facing queue has
//! the transport's limits and slow-consumer policy, as on a router.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use futures_lite::AsyncWriteExt;
use router_core::engine::handshake;
use router_core::runtime::conn::{
    detail_str, drain_until_closed, feed_input, log_close, read_shared, spawn_auto_ping, spawn_writer, Conn,
    ConnPermit, JoinRequest, LINGER,
};
use router_core::runtime::framer::{FrameEvent, Framer};
use router_core::runtime::outbound::{OutState, Outbound};
use router_core::runtime::setup::SlowConsumerPolicy;
use router_core::runtime::stream::{SocketKind, Stream};
use router_core::runtime::tls::Tls;
use wamp_framing::link::{ChannelId, OpenRequest};
use wamp_proto::{Dict, Message, Serializer, Value};

use crate::backend::Backend;
use crate::node::{NoBackend, ProxyShard};

/// ABORT reason when no router worker can take a new session.
pub const NO_ROUTER_REASON: &str = "junction.error.router_unavailable";

/// GOODBYE reason when the router worker of an established session is gone.
pub const ROUTER_LOST_REASON: &str = "junction.close.router_lost";

/// One client session at the proxy.
pub struct FrontSession {
    conn: Rc<Conn>,
    backend: RefCell<Option<(Rc<Backend>, ChannelId)>>,
    /// Something came back from the router (WELCOME at least).
    welcomed: Cell<bool>,
    shard: Rc<ProxyShard>,
    /// Why the router side ended the session, for its closing log line.
    ended: Cell<Option<&'static str>>,
}

impl FrontSession {
    /// A message from the router for the client. `false` if the client was
    /// closed for falling behind (the caller closes the channel).
    pub fn deliver(&self, bytes: &bytes::Bytes) -> bool {
        self.welcomed.set(true);
        match self.conn.send_message(bytes) {
            Ok(()) => true,
            Err(o) => {
                if self.conn.policy == SlowConsumerPolicy::Drop && self.conn.is_event(bytes) {
                    self.shard.stats.slow_consumer_events_dropped.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                self.shard.stats.slow_consumer_closes.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(session = %self.conn.session, overflow = ?o, "outbound queue limit exceeded; closing slow consumer");
                self.ended.set(Some(router_core::runtime::conn::SLOW_CONSUMER_REASON));
                self.backend.borrow_mut().take();
                self.conn.close_slow_consumer(o);
                false
            }
        }
    }

    /// The router ended the session (after GOODBYE or ABORT): hang up.
    pub fn router_closed(&self) {
        if self.ended.get().is_none() {
            self.ended.set(Some("closed by the router"));
        }
        self.backend.borrow_mut().take();
        self.conn.close_session();
    }

    /// The link to the router dropped: tell the client why, then hang up.
    pub fn backend_lost(&self) {
        self.backend.borrow_mut().take();
        let msg = "the router worker serving this session is unavailable; reconnect";
        let message = if self.welcomed.get() {
            let mut d = Dict::new();
            d.insert("message".into(), Value::from(msg));
            self.ended.set(Some(ROUTER_LOST_REASON));
            Message::Goodbye { details: d, reason: ROUTER_LOST_REASON.into() }
        } else {
            self.ended.set(Some(NO_ROUTER_REASON));
            handshake::abort_message(NO_ROUTER_REASON, msg)
        };
        self.send_final(&message);
    }

    /// Sends one last message, then closes the connection.
    fn send_final(&self, message: &Message) {
        if let Ok(bytes) = self.conn.serializer.encode(message) {
            let _ = self.conn.send_message(&bytes);
        }
        self.conn.close_session();
    }
}

/// Refuses an authenticated client before any channel exists: ABORT, close.
async fn refuse(
    mut stream: Stream,
    framer: &Framer,
    serializer: Serializer,
    tls: Option<Tls>,
    reason: &str,
    msg: &str,
) {
    let sender = framer.sender();
    let mut out = Vec::new();
    if let Ok(bytes) = handshake::encode_abort(serializer, reason, msg) {
        let _ = sender.message(&bytes, &mut out);
    }
    sender.close(Some(1000), "", &mut out);
    if let Some(mut tls) = tls {
        let plain = std::mem::take(&mut out);
        let _ = tls.encrypt(&plain, &mut out);
    }
    let _ = stream.write_all(&out).await;
}

/// Everything the opening phase produced for one client.
pub struct Admitted {
    pub stream: Stream,
    pub kind: SocketKind,
    pub transport: usize,
    pub permit: ConnPermit,
    pub framer: Framer,
    pub serializer: Serializer,
    pub join: JoinRequest,
    pub details: Dict,
    pub tls: Option<Tls>,
}

/// Serves an authenticated client: picks a router, opens a channel, and
/// shuttles frames until either side ends.
pub async fn serve_front(shard: Rc<ProxyShard>, a: Admitted) {
    let Admitted { stream, kind: _, transport, permit, mut framer, serializer, join, details, tls } = a;
    let backend = match shard.pick_backend(&join.realm, &join.authrole) {
        Ok(b) => b,
        Err(why) => {
            shard.stats.opening_refused.fetch_add(1, Ordering::Relaxed);
            let (reason, msg) = match why {
                NoBackend::NoRoute => (
                    "wamp.error.no_such_role",
                    format!("no route for role '{}' on realm '{}'", join.authrole, join.realm),
                ),
                NoBackend::NoneHealthy => (
                    NO_ROUTER_REASON,
                    format!("no router worker is available for realm '{}' and role '{}'", join.realm, join.authrole),
                ),
            };
            tracing::warn!(
                realm = %join.realm, role = %join.authrole, authid = %join.authid,
                peer = %detail_str(&details, "peer"), ?why, "cannot route the session"
            );
            refuse(stream, &framer, serializer, tls, reason, &msg).await;
            return;
        }
    };
    let setup = router_core::runtime::conn::Gatekeeper::transport_setup(&*shard, transport);
    // One fd per connection: reader and writer share the stream.
    let (mut rstream, wstream, write_fd) = router_core::runtime::conn::split_stream(stream);
    let tls = tls.map(|t| Rc::new(RefCell::new(t)));
    let conn = Rc::new(Conn {
        session: join.session,
        serializer,
        policy: setup.limits.slow_consumer_policy,
        out: Rc::new(
            Outbound::new(write_fd, setup.limits.clone()).with_gauge(shard.stats.outbound_queued_bytes.clone()),
        ),
        sender: framer.sender(),
        last_seen: Cell::new(Instant::now()),
        link: None,
    });
    conn.out.set_linger(LINGER);
    let writer = spawn_writer(conn.out.clone(), wstream, tls.clone());
    let front = Rc::new(FrontSession {
        conn: conn.clone(),
        backend: RefCell::new(None),
        welcomed: Cell::new(false),
        shard: shard.clone(),
        ended: Cell::new(None),
    });
    let peer = detail_str(&details, "peer").to_owned();
    let transport_id = detail_str(&details, "transport_id").to_owned();
    let logged = (join.realm.clone(), join.authid.clone(), join.authrole.clone());
    let req = OpenRequest {
        realm: join.realm,
        authid: join.authid,
        authrole: join.authrole,
        authmethod: join.authmethod,
        authprovider: join.authprovider,
        authextra: join.authextra,
        hello_details: join.hello_details,
        transport: details,
        serializer,
        session: Some(join.session),
    };
    match backend.open(front.clone(), &req) {
        Ok(ch) => {
            tracing::debug!(
                session = %join.session, realm = %logged.0, authid = %logged.1, authrole = %logged.2,
                authmethod = %req.authmethod, transport = %transport_id, %peer, backend = %backend.setup.name,
                "session open (proxied)"
            );
            *front.backend.borrow_mut() = Some((backend, ch));
        }
        Err(_) => front.backend_lost(),
    }
    let mut close_reason: Option<String> = None;
    shard.sessions.set(shard.sessions.get() + 1);

    spawn_auto_ping(&conn, framer.ping_settings());

    let mut plain = Vec::new();
    'outer: loop {
        loop {
            match framer.next_event() {
                Ok(None) => break,
                Ok(Some(FrameEvent::Message(bytes))) => {
                    let target = front.backend.borrow().clone();
                    if let Some((b, ch)) = target {
                        if let Err(reason) = b.send(ch, &bytes) {
                            tracing::warn!(session = %join.session, %peer, %reason, "cannot forward a client message; closing the session");
                            close_reason = Some(format!("{NO_ROUTER_REASON}: {reason}"));
                            b.close(ch);
                            front.backend.borrow_mut().take();
                            front.send_final(&handshake::abort_message(NO_ROUTER_REASON, reason));
                            break 'outer;
                        }
                    }
                }
                Ok(Some(FrameEvent::Ping)) => conn.out.push_control(|b| framer.drain_transmit(b)),
                Ok(Some(FrameEvent::Pong)) => {}
                Ok(Some(FrameEvent::Close { .. })) => {
                    close_reason = Some("transport closed by the peer".into());
                    conn.out.push_control(|b| framer.drain_transmit(b));
                    conn.out.close_after_flush();
                    break 'outer;
                }
                Err(e) => {
                    shard.stats.framing_errors.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(session = %join.session, %peer, reason = %e.reason, "framing error; closing");
                    close_reason = Some(format!("framing error: {}", e.reason));
                    conn.out.push_control(|b| framer.drain_transmit(b));
                    conn.out.close_after_flush();
                    break 'outer;
                }
            }
        }
        if conn.out.state() != OutState::Open {
            break;
        }
        let open_before = conn.out.state() == OutState::Open;
        // Into the shard's shared receive buffer: an idle client holds none.
        glommio::yield_if_needed().await;
        let fed = read_shared(&mut rstream, |bytes| {
            shard.stats.bytes_received.fetch_add(bytes.len() as u64, Ordering::Relaxed);
            feed_input(&tls, bytes, &mut plain, &mut framer, &conn.out)
        })
        .await;
        let Ok(Some(fed)) = fed else {
            conn.out.abort();
            if open_before && front.ended.get().is_none() {
                close_reason = Some("transport closed by the peer".into());
            }
            break;
        };
        conn.last_seen.set(Instant::now());
        if let Err(e) = fed {
            close_reason = Some(format!("TLS error: {e}"));
            conn.out.close_after_flush();
            break;
        }
    }
    let reason = close_reason.or_else(|| front.ended.get().map(str::to_owned)).unwrap_or_else(|| "closed".into());
    log_close(join.session, (&logged.0, &logged.1, &logged.2), &transport_id, &peer, &reason);
    let target = front.backend.borrow_mut().take();
    if let Some((b, ch)) = target {
        b.close(ch);
    }
    shard.sessions.set(shard.sessions.get().saturating_sub(1));
    // Lingering close (see `Outbound::set_linger`): the client reads its
    // GOODBYE or ABORT before the connection closes.
    if conn.out.state() == OutState::Closing {
        drain_until_closed(&mut rstream, &conn.out).await;
    }
    drop(rstream);
    writer.await;
    drop(permit);
}
