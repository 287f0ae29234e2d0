//! Backend links: the proxy side of `wamp_framing::link`.
//!
//! Each proxy shard keeps one long-lived link per configured backend
//! connection (per router worker and realm). A link task connects, proves
//! the node key, and then carries the channels of every frontend session
//! the shard routed to it. When the link drops, every session on it is
//! closed with a clear reason and the task reconnects with backoff; while it
//! is down the link is unhealthy and the balancer skips it.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use router_core::runtime::conn::{feed_input, read_some, spawn_writer, with_timeout};
use router_core::runtime::dial::{self, Dialed, LINK_MAX_FRAME};
use router_core::runtime::framer::FrameEvent;
use router_core::runtime::outbound::{OutState, Outbound};
use router_core::runtime::ConnectionLimits;
use wamp_auth::DynamicError;
use wamp_framing::link::{self, AuthCall, AuthResult, ChannelId, LinkFrame, LinkHello, OpenRequest};
use wamp_framing::rawsocket;
use wamp_proto::Value;

use crate::front::FrontSession;
use crate::setup::{BackendSetup, ProxySetup};

/// How long connecting plus the link handshake may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a dynamic authenticator call through a link may take.
const AUTH_CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// The link is down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkDown;

/// A waiting authenticator call.
#[derive(Default)]
struct PendingCall {
    result: RefCell<Option<AuthResult>>,
    done: router_core::runtime::notify::LocalNotify,
}

/// The live part of a link (present while it is up).
struct Live {
    out: Rc<Outbound>,
    /// Largest WAMP message the router accepts.
    max_message_size: usize,
}

/// One backend link of one proxy shard.
pub struct Backend {
    /// Index in the setup's backends.
    pub index: usize,
    pub setup: BackendSetup,
    live: RefCell<Option<Live>>,
    channels: RefCell<HashMap<ChannelId, Rc<FrontSession>>>,
    next_channel: Cell<u32>,
    calls: RefCell<HashMap<u32, Rc<PendingCall>>>,
    next_token: Cell<u32>,
    /// Times the link came up (for logs and node info).
    pub ups: Cell<u64>,
    /// Stopped at run time: the link closes and is not redialed.
    stopped: Cell<bool>,
}

impl Backend {
    /// A link that is not connected yet.
    pub fn new(index: usize, setup: BackendSetup) -> Backend {
        Backend {
            index,
            setup,
            live: RefCell::new(None),
            channels: RefCell::new(HashMap::new()),
            next_channel: Cell::new(1),
            calls: RefCell::new(HashMap::new()),
            next_token: Cell::new(1),
            ups: Cell::new(0),
            stopped: Cell::new(false),
        }
    }

    /// Stops the link for good: it closes (its sessions end) and is not
    /// redialed.
    pub fn stop(&self) {
        self.stopped.set(true);
        if let Some(live) = self.live.borrow().as_ref() {
            live.out.abort();
        }
    }

    /// True once stopped.
    pub fn is_stopped(&self) -> bool {
        self.stopped.get()
    }

    /// Is the link up (may new sessions go to it)?
    pub fn healthy(&self) -> bool {
        !self.stopped.get() && self.live.borrow().as_ref().is_some_and(|l| l.out.state() == OutState::Open)
    }

    /// Sessions currently carried.
    pub fn sessions(&self) -> usize {
        self.channels.borrow().len()
    }

    /// Opens a channel for an authenticated frontend session. `Err` if the
    /// link is down.
    pub fn open(&self, front: Rc<FrontSession>, req: &OpenRequest) -> Result<ChannelId, LinkDown> {
        let live = self.live.borrow();
        let Some(live) = live.as_ref().filter(|l| l.out.state() == OutState::Open) else { return Err(LinkDown) };
        let mut ch = self.next_channel.get();
        {
            let chans = self.channels.borrow();
            while ch == 0 || chans.contains_key(&ChannelId(ch)) {
                ch = ch.wrapping_add(1);
            }
        }
        self.next_channel.set(ch.wrapping_add(1));
        let ch = ChannelId(ch);
        self.channels.borrow_mut().insert(ch, front);
        let body = req.encode();
        live.out.push_control(|b| LinkFrame::Open { channel: ch, body }.write(b));
        Ok(ch)
    }

    /// Forwards one client message. `Err(reason)` if it cannot be carried.
    /// A large message goes by reference to the received bytes, not copied.
    pub fn send(&self, ch: ChannelId, bytes: &Bytes) -> Result<(), &'static str> {
        let live = self.live.borrow();
        let Some(live) = live.as_ref() else { return Err("the router link is down") };
        let len = bytes.len();
        if len > live.max_message_size {
            return Err("message exceeds the router's maximum message size");
        }
        if len > link::MAX_DATA_LEN {
            return Err("message exceeds the link frame limit");
        }
        let header = |b: &mut Vec<u8>| {
            let _ = link::write_data_header(b, ch, len);
        };
        live.out.push_payload(header, bytes).map_err(|_| "the router link's queue is full")
    }

    /// The frontend session ended: close its channel.
    pub fn close(&self, ch: ChannelId) {
        if self.channels.borrow_mut().remove(&ch).is_some() {
            if let Some(live) = self.live.borrow().as_ref() {
                live.out.push_control(|b| link::write_close(b, ch));
            }
        }
    }

    /// Calls a dynamic authenticator on the router over this link.
    pub async fn auth_call(
        &self,
        realm: String,
        procedure: String,
        args: wamp_proto::List,
    ) -> Result<Value, DynamicError> {
        let fail = |error: &str, message: &str| DynamicError { error: error.into(), message: Some(message.into()) };
        let token = self.next_token.get();
        self.next_token.set(token.wrapping_add(1));
        let pending = Rc::new(PendingCall::default());
        {
            let live = self.live.borrow();
            let Some(live) = live.as_ref() else {
                return Err(fail("wamp.error.canceled", "the router link is down"));
            };
            self.calls.borrow_mut().insert(token, pending.clone());
            let body = AuthCall { realm, procedure, args }.encode();
            live.out.push_control(|b| LinkFrame::AuthCall { token, body }.write(b));
        }
        let waited = with_timeout(AUTH_CALL_TIMEOUT, async {
            while pending.result.borrow().is_none() {
                pending.done.wait().await;
            }
        })
        .await;
        self.calls.borrow_mut().remove(&token);
        let result = pending.result.borrow_mut().take();
        match (waited, result) {
            (Some(()), Some(AuthResult::Ok(v))) => Ok(v),
            (Some(()), Some(AuthResult::Err { error, message })) => Err(DynamicError { error, message }),
            _ => Err(fail("wamp.error.timeout", "the dynamic authenticator did not answer in time")),
        }
    }

    /// Runs the link for the life of the shard: connect, serve, reconnect.
    pub async fn run(self: Rc<Self>, setup: std::sync::Arc<ProxySetup>) {
        let mut backoff = Duration::from_millis(100);
        let mut last_err: Option<String> = None;
        while !self.stopped.get() {
            match with_timeout(CONNECT_TIMEOUT, self.connect(&setup)).await {
                Some(Ok(_)) if self.stopped.get() => return,
                Some(Ok((io, max))) => {
                    backoff = Duration::from_millis(100);
                    last_err = None;
                    self.ups.set(self.ups.get() + 1);
                    tracing::info!(backend = %self.setup.name, realm = %self.setup.realm, tls = io.tls.is_some(), "router link up");
                    self.serve(&setup, io, max).await;
                    tracing::warn!(backend = %self.setup.name, "router link down; reconnecting");
                }
                Some(Err(e)) => {
                    // Log each new reason once at warn (a refused key, a bad
                    // certificate), repeats at debug.
                    if last_err.as_deref() != Some(e.as_str()) {
                        tracing::warn!(backend = %self.setup.name, addr = %self.setup.addr, error = %e, "router link failed; retrying");
                    } else {
                        tracing::debug!(backend = %self.setup.name, error = %e, "router link failed");
                    }
                    last_err = Some(e);
                }
                None => tracing::debug!(backend = %self.setup.name, "router link handshake timed out"),
            }
            glommio::timer::sleep(backoff).await;
            backoff = (backoff * 2).min(setup.reconnect_max);
        }
    }

    /// Connects and runs the link handshake (through TLS if configured).
    async fn connect(&self, setup: &ProxySetup) -> Result<(Dialed, usize), String> {
        let hello = LinkHello {
            realm: self.setup.realm.clone(),
            key: setup.key.public_bytes(),
            name: setup.name.clone(),
            peer: None,
            // The router drops the link if we fall silent for our own ping
            // timeout (we ping every interval), as we do if it does.
            ping_ms: Some((
                u64::try_from(setup.ping_interval.as_millis()).unwrap_or(u64::MAX),
                u64::try_from(setup.ping_timeout.as_millis()).unwrap_or(u64::MAX),
            )),
        };
        match dial::dial(&self.setup.addr, self.setup.tls.as_ref(), &hello, &setup.key).await {
            Ok(d) => {
                let max = usize::try_from(d.accept.max_message_size).unwrap_or(usize::MAX).min(LINK_MAX_FRAME - 5);
                Ok((d, max))
            }
            Err(e) => {
                if e.refused {
                    tracing::error!(backend = %self.setup.name, error = %e, "the router refused the link");
                }
                Err(e.message)
            }
        }
    }

    /// Serves an established link until it drops.
    async fn serve(self: &Rc<Self>, setup: &ProxySetup, io: Dialed, max: usize) {
        let Dialed { stream, tls, mut framer, .. } = io;
        let tls = tls.map(|t| Rc::new(RefCell::new(t)));
        // One fd for the link: reader and writer share the stream.
        let (mut rstream, wstream, write_fd) = router_core::runtime::conn::split_stream(stream);
        let limits = ConnectionLimits {
            max_connections: 1,
            max_outbound_bytes: setup.link_max_outbound_bytes,
            max_outbound_messages: usize::MAX / 2,
            slow_consumer_policy: router_core::runtime::setup::SlowConsumerPolicy::Close,
        };
        let out = Rc::new(Outbound::new(write_fd, limits));
        let writer = spawn_writer(out.clone(), wstream, tls.clone());
        *self.live.borrow_mut() = Some(Live { out: out.clone(), max_message_size: max });
        let last_seen = Rc::new(Cell::new(Instant::now()));
        let ping = {
            let out = out.clone();
            let last_seen = last_seen.clone();
            let (interval, timeout) = (setup.ping_interval, setup.ping_timeout);
            glommio::spawn_local(async move {
                loop {
                    glommio::timer::sleep(interval).await;
                    if out.state() != OutState::Open {
                        break;
                    }
                    if last_seen.get().elapsed() > timeout {
                        tracing::warn!("router link did not answer pings for {timeout:?}; dropping it");
                        out.abort();
                        break;
                    }
                    out.push_control(|b| rawsocket::write_frame(b, rawsocket::FrameKind::Ping, b"jp"));
                }
            })
            .detach()
        };
        let mut tmp = vec![0u8; 64 * 1024];
        let mut plain = Vec::new();
        'outer: loop {
            loop {
                match framer.next_event() {
                    Ok(None) => break,
                    Ok(Some(FrameEvent::Message(payload))) => {
                        if let Err(e) = self.handle(payload) {
                            tracing::warn!(backend = %self.setup.name, error = %e, "router link protocol error");
                            out.abort();
                            break 'outer;
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
            if out.state() != OutState::Open {
                break;
            }
            let Some(n) = read_some(&mut rstream, &mut tmp, &out).await else { break };
            last_seen.set(Instant::now());
            if let Err(e) = feed_input(&tls, &tmp[..n], &mut plain, &mut framer, &out) {
                tracing::warn!(backend = %self.setup.name, error = %e, "router link TLS error");
                out.abort();
                break;
            }
        }
        // Down: nothing more goes to this link; every session on it ends.
        *self.live.borrow_mut() = None;
        let fronts: Vec<Rc<FrontSession>> = self.channels.borrow_mut().drain().map(|(_, f)| f).collect();
        for f in fronts {
            f.backend_lost();
        }
        for (_, c) in self.calls.borrow_mut().drain() {
            *c.result.borrow_mut() = Some(AuthResult::Err {
                error: "wamp.error.canceled".into(),
                message: Some("the router link went down".into()),
            });
            c.done.notify();
        }
        drop(rstream);
        writer.await;
        drop(ping);
    }

    /// One frame from the router.
    fn handle(&self, payload: Bytes) -> Result<(), String> {
        match LinkFrame::decode(payload).map_err(|e| e.to_string())? {
            LinkFrame::Data { channel, bytes } => {
                let front = self.channels.borrow().get(&channel).cloned();
                if let Some(f) = front {
                    if !f.deliver(&bytes) {
                        // The client could not take it (slow consumer closed).
                        self.close(channel);
                    }
                }
                Ok(())
            }
            LinkFrame::Close { channel } => {
                let front = self.channels.borrow_mut().remove(&channel);
                if let Some(f) = front {
                    f.router_closed();
                }
                Ok(())
            }
            LinkFrame::AuthResult { token, body } => {
                let r = AuthResult::decode(&body).map_err(|e| e.to_string())?;
                if let Some(c) = self.calls.borrow().get(&token) {
                    *c.result.borrow_mut() = Some(r);
                    c.done.notify();
                }
                Ok(())
            }
            other => Err(format!("unexpected frame from the router: {other:?}")),
        }
    }
}
