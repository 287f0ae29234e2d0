//! The router side of proxy links (protocol: `wamp_framing::link`).
//!
//! A proxy worker opens a link on one of this router's RawSocket endpoints,
//! proves it holds a trusted Ed25519 key, and names the realm the link
//! serves. The link then moves, like a session's connection, to that realm's
//! home shard, where every channel (`OPEN`) becomes a session of the realm
//! with the identity the proxy established: the session's messages travel as
//! `DATA` frames on the link's one socket, in the client's serializer, and
//! its outbound messages are queued on the link's shared [`Outbound`].

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use wamp_framing::link::{self, AuthCall, AuthResult, ChannelId, LinkAccept, LinkFrame, LinkHello, OpenRequest};
use wamp_proto::{Serializer, SessionId, Value};

use super::conn::{feed_input, read_some, spawn_writer, split_fd, Conn, ConnPermit};
use super::directory::{SessionDirectory, SessionEntry};
use super::framer::{FrameEvent, Framer};
use super::outbound::{OutState, Outbound};
use super::setup::ConnectionLimits;
use super::shard::Shard;
use super::stream::SocketKind;
use super::tls::Tls;
use crate::engine::handshake;

/// A link that sends nothing for this long is considered dead and closed,
/// when its proxy did not announce its ping settings (older proxies).
pub const LINK_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a proxy link may stay silent before the router closes it, and
/// how often that is checked. A proxy that announces its ping settings in
/// its HELLO (`ping: [interval_ms, timeout_ms]`) pings every interval
/// whatever the traffic, so silence for its own ping timeout means it is
/// gone (frozen, or the network between is cut): the router then ends its
/// sessions as fast as the proxy notices a dead router, and calls to
/// callees behind it fail instead of waiting for the proxy to come back.
/// Without the settings: [`LINK_IDLE_TIMEOUT`], checked every second.
pub fn proxy_link_idle(ping_ms: Option<(u64, u64)>) -> (Duration, Duration) {
    match ping_ms {
        Some(p) => {
            let (interval, timeout) = super::rlink::accepted_ping(Some(p));
            (timeout, interval.min(Duration::from_secs(1)))
        }
        None => (LINK_IDLE_TIMEOUT, Duration::from_secs(1)),
    }
}

/// Outbound queue floor of a link: it carries many sessions, so it gets at
/// least this much whatever the transport's per-connection limit.
const LINK_MIN_OUTBOUND_BYTES: usize = 256 * 1024 * 1024;
const LINK_MIN_OUTBOUND_MESSAGES: usize = 4 * 1024 * 1024;

/// The open channels of one link: channel → session. Shared by the link's
/// reader and the realm pump (which closes channels of sessions the engine
/// ended).
pub struct LinkChannels {
    map: RefCell<HashMap<ChannelId, (SessionId, Serializer)>>,
    directory: Arc<SessionDirectory>,
}

impl LinkChannels {
    /// The engine closed this channel's session: forget it.
    pub fn remove(&self, ch: ChannelId) {
        if let Some((session, _)) = self.map.borrow_mut().remove(&ch) {
            self.directory.remove(session);
        }
    }
}

/// An authenticated link, moved to its realm's home shard.
pub struct LinkHandoff {
    pub fd: RawFd,
    pub kind: SocketKind,
    pub transport: usize,
    pub framer: Framer,
    pub realm: String,
    /// The proxy's name and key (hex), for logs and session details.
    pub name: String,
    pub key: String,
    pub permit: ConnPermit,
    pub tls: Option<Tls>,
    /// A router-to-router link: the dialing worker's instance id.
    pub peer: Option<u64>,
    /// A router-to-router link: the dialer's ping settings (ms).
    pub ping_ms: Option<(u64, u64)>,
}

/// Who opened a link, once proven.
pub struct LinkIdentity {
    pub realm: String,
    /// The proxy's name and key (hex).
    pub name: String,
    pub key: String,
    /// A router-to-router link: the dialing worker's instance id.
    pub peer: Option<u64>,
    /// A router-to-router link: the dialer's ping settings (ms).
    pub ping_ms: Option<(u64, u64)>,
}

/// Outcome of one step of the link's proof exchange.
pub enum LinkStep {
    /// Send this (already framed) and wait for more.
    Reply(Vec<u8>),
    /// Send this; the link is accepted.
    Accepted(Vec<u8>, LinkIdentity),
    /// Send this, then close: refused (`failed` = a bad proof, counted
    /// against the peer's failure budget).
    Refused { reply: Vec<u8>, failed: bool, reason: String },
}

/// The proof exchange, sans-IO: feed link frames, get replies.
pub struct LinkAuth {
    trusted: Vec<[u8; 32]>,
    max_message_size: usize,
    /// This worker's instance id and name (told to dialing router workers).
    instance: u64,
    name: String,
    hello: Option<(LinkHello, [u8; 32])>,
}

impl LinkAuth {
    /// A new exchange against the router's trusted keys; `instance` is this
    /// worker's instance id.
    pub fn new(trusted: Vec<[u8; 32]>, max_message_size: usize, instance: u64, name: String) -> LinkAuth {
        LinkAuth { trusted, max_message_size, instance, name, hello: None }
    }

    fn refuse(reason: &str, message: &str, failed: bool) -> LinkStep {
        let mut reply = Vec::new();
        LinkFrame::Refuse(link::encode_refuse(reason, message)).write(&mut reply);
        LinkStep::Refused { reply, failed, reason: message.to_owned() }
    }

    /// One frame from the proxy. `realm_exists` checks the realm named in
    /// HELLO; `challenge` is 32 fresh random bytes (used for HELLO).
    pub fn handle(
        &mut self,
        frame: Result<LinkFrame, link::LinkError>,
        realm_exists: impl Fn(&str) -> bool,
        challenge: [u8; 32],
    ) -> LinkStep {
        match (frame, self.hello.take()) {
            (Ok(LinkFrame::Hello(body)), None) => match LinkHello::decode(&body) {
                Err(e) => Self::refuse("wamp.error.protocol_violation", &e.to_string(), false),
                Ok(h) if !realm_exists(&h.realm) => Self::refuse(
                    "wamp.error.no_such_realm",
                    &format!("no realm '{}' on this router worker", h.realm),
                    false,
                ),
                Ok(h) => {
                    self.hello = Some((h, challenge));
                    let mut reply = Vec::new();
                    LinkFrame::Challenge(challenge).write(&mut reply);
                    LinkStep::Reply(reply)
                }
            },
            (Ok(LinkFrame::Proof(sig)), Some((h, challenge))) => {
                let valid = cluster_membership::verify(&h.key, &link::proof_message(&challenge), &sig);
                if !valid {
                    return Self::refuse("wamp.error.not_authorized", "invalid link proof signature", true);
                }
                if !self.trusted.contains(&h.key) {
                    return Self::refuse(
                        "wamp.error.not_authorized",
                        &format!(
                            "{} key {} is not trusted by this router worker",
                            if h.peer.is_some() { "router" } else { "proxy" },
                            link::hex(&h.key)
                        ),
                        true,
                    );
                }
                let mut reply = Vec::new();
                let instance = h.peer.map(|_| self.instance);
                let name = h.peer.map(|_| self.name.clone());
                LinkFrame::Accept(
                    LinkAccept { max_message_size: self.max_message_size as u64, instance, name }.encode(),
                )
                .write(&mut reply);
                let opened = LinkIdentity {
                    realm: h.realm,
                    name: h.name,
                    key: link::hex(&h.key),
                    peer: h.peer,
                    ping_ms: h.ping_ms,
                };
                LinkStep::Accepted(reply, opened)
            }
            (Err(e), _) => Self::refuse("wamp.error.protocol_violation", &e.to_string(), false),
            (Ok(_), _) => {
                Self::refuse("wamp.error.protocol_violation", "unexpected frame during the link handshake", false)
            }
        }
    }
}

/// Serves an authenticated link on its realm's home shard.
pub async fn serve_link(shard: Rc<Shard>, h: LinkHandoff) {
    if let Some(instance) = h.peer {
        return super::rlink::serve_accepted(shard, h, instance).await;
    }
    let LinkHandoff { fd, kind, transport, mut framer, realm, name, key, permit, tls, ping_ms, .. } = h;
    let tls: Option<Rc<RefCell<Tls>>> = tls.map(|t| Rc::new(RefCell::new(t)));
    let setup = shard.transports.get(transport).setup.clone();
    let (mut rstream, wstream, write_fd) = match split_fd(fd, kind) {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!(error = %e, "dup failed");
            return;
        }
    };
    let Some(host) = shard.realm_host(&realm) else {
        tracing::error!(%realm, "link hand-off to a shard that does not home the realm");
        return;
    };
    let mut limits: ConnectionLimits = setup.limits.clone();
    limits.max_outbound_bytes = limits.max_outbound_bytes.max(LINK_MIN_OUTBOUND_BYTES);
    limits.max_outbound_messages = limits.max_outbound_messages.max(LINK_MIN_OUTBOUND_MESSAGES);
    let out = Rc::new(Outbound::new(write_fd, limits));
    let writer = spawn_writer(out.clone(), wstream, tls.clone());
    let channels = Rc::new(LinkChannels { map: RefCell::new(HashMap::new()), directory: shard.directory.clone() });
    let last_seen = Rc::new(Cell::new(Instant::now()));
    tracing::info!(%realm, proxy = %name, %key, "proxy link up");
    shard.stats.proxy_links.fetch_add(1, Ordering::Relaxed);

    // Idle watchdog: the proxy pings; silence means it is gone.
    let (idle_timeout, idle_tick) = proxy_link_idle(ping_ms);
    let idle = {
        let out = out.clone();
        let last_seen = last_seen.clone();
        let proxy = name.clone();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(idle_tick).await;
                if out.state() != OutState::Open {
                    break;
                }
                if last_seen.get().elapsed() > idle_timeout {
                    tracing::warn!(%proxy, "proxy link silent for {idle_timeout:?}; closing it (its sessions end)");
                    out.abort();
                    break;
                }
            }
        })
        .detach()
    };

    let ctx = LinkCtx {
        shard: shard.clone(),
        host: host.clone(),
        out: out.clone(),
        channels: channels.clone(),
        realm,
        name,
        transport,
    };
    let mut tmp = vec![0u8; 64 * 1024];
    let mut plain = Vec::new();
    'outer: loop {
        let mut handled = 0usize;
        loop {
            match framer.next_event() {
                Ok(None) => break,
                Ok(Some(FrameEvent::Message(payload))) => {
                    handled += 1;
                    if let Err(reason) = ctx.handle(payload) {
                        tracing::warn!(proxy = %ctx.name, %reason, "proxy link protocol error; closing the link");
                        shard.stats.protocol_violations.fetch_add(1, Ordering::Relaxed);
                        out.close_after_flush();
                        break 'outer;
                    }
                    if handled.is_multiple_of(256) {
                        host.pump();
                    }
                }
                Ok(Some(FrameEvent::Ping)) => out.push_control(|b| framer.drain_transmit(b)),
                Ok(Some(FrameEvent::Pong)) => {}
                Ok(Some(FrameEvent::Close { .. })) | Err(_) => {
                    shard.stats.framing_errors.fetch_add(1, Ordering::Relaxed);
                    out.close_after_flush();
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
        host.set_wall_clock(std::time::SystemTime::now());
        if feed_input(&tls, &tmp[..n], &mut plain, &mut framer, &out).is_err() {
            out.close_after_flush();
            break;
        }
    }
    // Every session of the link ends with it.
    let sessions: Vec<SessionId> = channels.map.borrow_mut().drain().map(|(_, (s, _))| s).collect();
    for s in &sessions {
        host.detach(*s);
        shard.directory.remove(*s);
    }
    host.pump();
    tracing::info!(realm = %ctx.realm, proxy = %ctx.name, sessions = sessions.len(), "proxy link down");
    drop(rstream);
    writer.await;
    drop(idle);
    drop(permit);
}

struct LinkCtx {
    shard: Rc<Shard>,
    host: Rc<super::shard::RealmHost>,
    out: Rc<Outbound>,
    channels: Rc<LinkChannels>,
    realm: String,
    name: String,
    transport: usize,
}

impl LinkCtx {
    /// One frame from the proxy; `Err` = protocol violation (close the link).
    fn handle(&self, payload: Bytes) -> Result<(), String> {
        match LinkFrame::decode(payload).map_err(|e| e.to_string())? {
            LinkFrame::Data { channel, bytes } => {
                let entry = self.channels.map.borrow().get(&channel).copied();
                // Data for a channel the router already closed: the proxy has
                // not seen the CLOSE yet. Drop it.
                if let Some((session, serializer)) = entry {
                    match serializer.decode(&bytes) {
                        Ok(msg) => self.host.handle(session, msg),
                        Err(e) => {
                            self.shard.stats.protocol_violations.fetch_add(1, Ordering::Relaxed);
                            self.host.abort(session, "wamp.error.protocol_violation", &e.to_string());
                        }
                    }
                }
                Ok(())
            }
            LinkFrame::Open { channel, body } => {
                self.open(channel, &body);
                Ok(())
            }
            LinkFrame::Close { channel } => {
                let gone = self.channels.map.borrow_mut().remove(&channel);
                if let Some((session, _)) = gone {
                    self.host.detach(session);
                    self.shard.directory.remove(session);
                }
                Ok(())
            }
            LinkFrame::AuthCall { token, body } => {
                let call = AuthCall::decode(&body).map_err(|e| e.to_string())?;
                let shard = self.shard.clone();
                let out = self.out.clone();
                glommio::spawn_local(async move {
                    let req = wamp_auth::DynamicAuthRequest {
                        procedure: call.procedure,
                        realm: call.realm,
                        role: None,
                        args: call.args,
                    };
                    let result = match shard.call_authenticator(req).await {
                        Ok(v) => AuthResult::Ok(v),
                        Err(e) => AuthResult::Err { error: e.error, message: e.message },
                    };
                    out.push_control(|b| LinkFrame::AuthResult { token, body: result.encode() }.write(b));
                })
                .detach();
                Ok(())
            }
            other => Err(format!("unexpected link frame {other:?}")),
        }
    }

    /// Refuses a channel: ABORT (in the client's serializer) and CLOSE.
    fn refuse(&self, channel: ChannelId, serializer: Serializer, reason: &str, message: &str) {
        if let Ok(bytes) = handshake::encode_abort(serializer, reason, message) {
            self.out.push_control(|b| {
                let _ = link::write_data(b, channel, &bytes);
                link::write_close(b, channel);
            });
        }
    }

    /// Admits a forwarded session.
    fn open(&self, channel: ChannelId, body: &Bytes) {
        let req = match OpenRequest::decode(body) {
            Ok(r) => r,
            Err(e) => {
                self.refuse(channel, Serializer::Json, "wamp.error.protocol_violation", &e.to_string());
                return;
            }
        };
        let ser = req.serializer;
        if self.channels.map.borrow().contains_key(&channel) {
            self.refuse(channel, ser, "wamp.error.protocol_violation", "channel already open");
            return;
        }
        if req.realm != self.realm {
            let msg = format!("this link serves realm '{}', not '{}'", self.realm, req.realm);
            self.refuse(channel, ser, "wamp.error.no_such_realm", &msg);
            return;
        }
        if self.host.is_stopped() {
            // Stopped at run time (perhaps started again since: a new link reaches the new realm).
            let msg = format!("realm '{}' was stopped on this router", self.realm);
            self.refuse(channel, ser, "wamp.error.no_such_realm", &msg);
            self.out.abort();
            return;
        }
        let role_exists = self.shard.realm_table.has_role(&req.realm, &req.authrole);
        if !role_exists {
            let msg = format!("no role '{}' on realm '{}'", req.authrole, req.realm);
            self.refuse(channel, ser, "wamp.error.no_such_role", &msg);
            return;
        }
        if let Some(limit) = self.host.at_capacity() {
            self.shard.stats.refused_session_limit.fetch_add(1, Ordering::Relaxed);
            let msg = format!("realm '{}' has reached its session limit (max_sessions = {limit})", req.realm);
            self.refuse(channel, ser, "wamp.error.not_authorized", &msg);
            return;
        }
        // The id the proxy drew (and showed in WAMP-CRA challenges) if it is
        // free here, so CHALLENGE and WELCOME agree; a fresh one otherwise.
        let session = req
            .session
            .and_then(|id| self.shard.try_reserve_session_id(id, self.shard.id, &req.realm))
            .unwrap_or_else(|| self.shard.reserve_session_id(self.shard.id, &req.realm));
        self.shard.directory.update(
            session,
            SessionEntry {
                shard: self.shard.id,
                realm: req.realm.as_str().into(),
                authid: req.authid.as_str().into(),
                authrole: req.authrole.as_str().into(),
            },
        );
        self.channels.map.borrow_mut().insert(channel, (session, ser));
        let setup = self.shard.transports.get(self.transport).setup.clone();
        let conn = Rc::new(Conn {
            session,
            serializer: ser,
            policy: setup.limits.slow_consumer_policy,
            out: self.out.clone(),
            sender: super::framer::FrameSender::Raw { peer_max: wamp_framing::rawsocket::MAX_FRAME_PAYLOAD },
            last_seen: Cell::new(Instant::now()),
            link: Some((self.channels.clone(), channel)),
        });
        self.host.attach(conn);
        let mut transport = req.transport;
        transport.insert("proxy".into(), Value::from(self.name.as_str()));
        let info = crate::engine::SessionInfo {
            session,
            serializer: ser,
            authid: req.authid,
            authrole: req.authrole,
            authmethod: req.authmethod,
            authprovider: req.authprovider,
            transport,
        };
        if let Err(e) = self.host.join(info, &req.hello_details, req.authextra) {
            tracing::warn!(%session, error = %e, "forwarded join refused");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proxy_link_is_dropped_after_the_proxys_own_ping_timeout() {
        // Announced settings: silence for the proxy's ping timeout, checked
        // at least every interval.
        assert_eq!(proxy_link_idle(Some((500, 1500))), (Duration::from_millis(1500), Duration::from_millis(500)));
        assert_eq!(proxy_link_idle(Some((1000, 3000))), (Duration::from_secs(3), Duration::from_secs(1)));
        assert_eq!(proxy_link_idle(Some((5000, 20_000))), (Duration::from_secs(20), Duration::from_secs(1)));
        // Kept sane: at least two intervals, within the peer-link clamps.
        assert_eq!(proxy_link_idle(Some((1000, 100))), (Duration::from_secs(2), Duration::from_secs(1)));
        assert_eq!(proxy_link_idle(Some((0, 0))), (Duration::from_millis(100), Duration::from_millis(50)));
        // A proxy that announces nothing: the old 30 s.
        assert_eq!(proxy_link_idle(None), (LINK_IDLE_TIMEOUT, Duration::from_secs(1)));
    }
}
