//! Glue between the runtime and `wamp-framing`: one type for "the transport
//! handshake of this connection" and one for "its frame stream", whichever
//! of WebSocket and RawSocket it speaks.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use wamp_framing::rawsocket::{self, FrameKind, RawSocketConfig, RawSocketDecoder, RawSocketEvent};
use wamp_framing::websocket;
use wamp_proto::{Dict, Serializer, Value};

use super::setup::{FramingSetup, TransportSetup};

/// Result of feeding handshake bytes.
pub enum HandshakeStep {
    /// Not enough bytes yet.
    NeedMore,
    /// Refused: write `reply` (possibly empty), then close.
    Reject { reply: Vec<u8>, reason: &'static str },
    /// A plain HTTP request for a web service of a `web` transport: answer
    /// it with `site`; `rest` are the bytes after its head (pipelined).
    Http { request: junction_web::ParsedRequest, site: std::sync::Arc<junction_web::WebSite>, rest: Vec<u8> },
    /// Accepted: write `reply`; the connection now speaks frames.
    Done {
        reply: Vec<u8>,
        framer: Framer,
        serializer: Serializer,
        details: Dict,
        auth: std::sync::Arc<wamp_auth::AuthConfig>,
    },
}

/// The transport handshake of one connection.
pub enum TransportHandshake {
    Raw { buf: BytesMut, config: RawSocketConfig, setup: super::setup::RawSocketSetup },
    Ws { buf: BytesMut, setup: TransportSetup },
}

impl TransportHandshake {
    /// Starts the handshake for a connection on `setup`.
    pub fn new(setup: &TransportSetup) -> TransportHandshake {
        match &setup.framing {
            FramingSetup::RawSocket(rs) => TransportHandshake::Raw {
                buf: BytesMut::with_capacity(64),
                config: RawSocketConfig {
                    max_message_size: rs.max_message_size,
                    serializers: rs.serializers.clone(),
                    min_peer_max_length: 512,
                },
                setup: rs.clone(),
            },
            FramingSetup::WebSocket { .. } => {
                TransportHandshake::Ws { buf: BytesMut::with_capacity(1024), setup: setup.clone() }
            }
        }
    }

    /// The reply for a connection refused because the transport is at its
    /// connection limit (RawSocket error 4; HTTP 503), once enough of the
    /// client's handshake has arrived to answer in its protocol.
    pub fn over_limit_reply(&self) -> Vec<u8> {
        match self {
            TransportHandshake::Raw { .. } => {
                rawsocket::error_reply(rawsocket::HandshakeErrorCode::MaxConnections).to_vec()
            }
            TransportHandshake::Ws { .. } => {
                let body = "connection limit reached; try again later\n";
                format!(
                    "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                )
                .into_bytes()
            }
        }
    }

    /// Feeds received bytes.
    pub fn feed(&mut self, data: &[u8]) -> HandshakeStep {
        match self {
            TransportHandshake::Raw { buf, config, setup } => {
                buf.extend_from_slice(data);
                match rawsocket::accept_handshake(buf, config) {
                    Ok(None) => HandshakeStep::NeedMore,
                    Err(_) => {
                        HandshakeStep::Reject { reply: Vec::new(), reason: "not a RawSocket client (bad magic byte)" }
                    }
                    Ok(Some(rawsocket::Handshake::Rejected { reply, .. })) => {
                        HandshakeStep::Reject { reply: reply.to_vec(), reason: "RawSocket handshake refused" }
                    }
                    Ok(Some(rawsocket::Handshake::Accepted(n))) => {
                        let rest = std::mem::take(buf);
                        HandshakeStep::Done {
                            reply: n.reply.to_vec(),
                            framer: Framer::Raw(RawFramer {
                                decoder: RawSocketDecoder::with_buffer(rest, n.our_max_length),
                                peer_max: n.peer_max_length,
                                ping: setup.auto_ping_interval.map(|i| (i, setup.auto_ping_timeout, 4)),
                                transmit: Vec::new(),
                            }),
                            serializer: n.serializer,
                            details: Dict::new(),
                            auth: setup.auth.clone(),
                        }
                    }
                }
            }
            TransportHandshake::Ws { buf, setup } => {
                buf.extend_from_slice(data);
                if let FramingSetup::WebSocket { site: Some(site), .. } = &setup.framing {
                    match junction_web::parse_request(buf, setup.max_handshake_size) {
                        Ok(None) => return HandshakeStep::NeedMore,
                        Ok(Some((request, consumed))) if !is_upgrade(&request) => {
                            let rest = buf.split_off(consumed.min(buf.len())).to_vec();
                            buf.clear();
                            return HandshakeStep::Http { request, site: site.clone(), rest };
                        }
                        Ok(Some(_)) => {}
                        Err(e) => {
                            let resp = junction_web::Response::for_parse_error(&e);
                            let mut reply = Vec::new();
                            resp.write_head(&mut reply, false);
                            if let junction_web::Body::Bytes(b) = &resp.body {
                                reply.extend_from_slice(b);
                            }
                            return HandshakeStep::Reject { reply, reason: "bad HTTP request" };
                        }
                    }
                }
                ws_handshake(buf, setup)
            }
        }
    }
}

/// Frame decoding and encoding of an established connection. `Send`, so it
/// can move to another shard with the connection.
pub enum Framer {
    Raw(RawFramer),
    Ws(WsFramer),
}

/// RawSocket frames.
pub struct RawFramer {
    decoder: RawSocketDecoder,
    peer_max: usize,
    ping: Option<(Duration, Duration, usize)>,
    /// Pongs owed to the peer.
    transmit: Vec<u8>,
}

/// WebSocket frames.
pub struct WsFramer {
    conn: websocket::WebSocket,
    binary: bool,
    ping: Option<(Duration, Duration, usize)>,
}

/// A decoded frame-level event. Control replies (pongs, close echoes) are
/// queued inside the framer: take them with [`Framer::drain_transmit`].
pub enum FrameEvent {
    /// One complete WAMP message.
    Message(Bytes),
    /// The peer pinged (the pong is queued).
    Ping,
    /// The peer answered a ping.
    Pong,
    /// The peer closed (WebSocket; the echo is queued): flush and hang up.
    Close { code: Option<u16>, reason: String },
}

/// A fatal framing error: flush [`Framer::drain_transmit`] (a WebSocket
/// close frame with the right code is queued there) and hang up.
pub struct FrameError {
    pub close_code: Option<u16>,
    pub reason: String,
}

/// How to frame outgoing data for one connection. `Copy`, so the writer
/// side does not need the decoder.
#[derive(Copy, Clone, Debug)]
pub enum FrameSender {
    Raw { peer_max: usize },
    Ws { binary: bool },
}

/// The message is larger than the peer accepts.
#[derive(Debug)]
pub struct TooBig;

impl Framer {
    /// RawSocket framing for a proxy link, after its handshake: `rest` are
    /// the bytes that followed the handshake; frames up to `max_len`.
    pub fn raw_link(rest: &[u8], max_len: usize) -> Framer {
        Framer::Raw(RawFramer {
            decoder: RawSocketDecoder::with_buffer(BytesMut::from(rest), max_len),
            peer_max: rawsocket::MAX_FRAME_PAYLOAD,
            ping: None,
            transmit: Vec::new(),
        })
    }

    /// Crossbar's transport type name for session details.
    pub fn transport_type(&self) -> &'static str {
        match self {
            Framer::Raw(_) => "rawsocket",
            Framer::Ws(_) => "websocket",
        }
    }

    /// The sending side.
    pub fn sender(&self) -> FrameSender {
        match self {
            Framer::Raw(r) => FrameSender::Raw { peer_max: r.peer_max },
            Framer::Ws(w) => FrameSender::Ws { binary: w.binary },
        }
    }

    /// Auto-ping (interval, timeout, payload size), if configured.
    pub fn ping_settings(&self) -> Option<(Duration, Duration, usize)> {
        match self {
            Framer::Raw(r) => r.ping,
            Framer::Ws(w) => w.ping,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        match self {
            Framer::Raw(r) => r.decoder.feed(data),
            Framer::Ws(w) => w.conn.feed(data),
        }
    }

    /// Appends queued control frames (pongs, close echoes) to `out`.
    pub fn drain_transmit(&mut self, out: &mut Vec<u8>) {
        match self {
            Framer::Raw(r) => {
                out.extend_from_slice(&r.transmit);
                r.transmit.clear();
            }
            Framer::Ws(w) => {
                while let Some(b) = w.conn.poll_transmit() {
                    out.extend_from_slice(&b);
                }
            }
        }
    }

    /// The next complete event, if one is buffered.
    pub fn next_event(&mut self) -> Result<Option<FrameEvent>, FrameError> {
        match self {
            Framer::Raw(r) => match r.decoder.poll_event() {
                Ok(None) => Ok(None),
                Ok(Some(RawSocketEvent::Message(b))) => Ok(Some(FrameEvent::Message(b))),
                Ok(Some(RawSocketEvent::Ping(b))) => {
                    rawsocket::write_frame(&mut r.transmit, FrameKind::Pong, &b);
                    Ok(Some(FrameEvent::Ping))
                }
                Ok(Some(RawSocketEvent::Pong(_))) => Ok(Some(FrameEvent::Pong)),
                Err(e) => Err(FrameError { close_code: None, reason: e.to_string() }),
            },
            Framer::Ws(w) => ws_next_event(w),
        }
    }
}

impl FrameSender {
    /// Appends one WAMP message frame.
    pub fn message(&self, payload: &[u8], out: &mut Vec<u8>) -> Result<(), TooBig> {
        if payload.len() > self.max_payload() {
            return Err(TooBig);
        }
        self.message_header(payload.len(), out);
        out.extend_from_slice(payload);
        Ok(())
    }

    /// The largest message the peer accepts.
    pub fn max_payload(&self) -> usize {
        match *self {
            FrameSender::Raw { peer_max } => peer_max,
            FrameSender::Ws { .. } => usize::MAX,
        }
    }

    /// Appends the header of a WAMP message frame of `len` payload bytes,
    /// which the caller queues next ([`super::outbound::Outbound::push_payload`]);
    /// the caller checks `len` against [`FrameSender::max_payload`].
    pub fn message_header(&self, len: usize, out: &mut Vec<u8>) {
        match *self {
            FrameSender::Raw { .. } => {
                out.extend_from_slice(&rawsocket::encode_frame_header(FrameKind::Message, len));
            }
            FrameSender::Ws { binary } => {
                let (h, n) = websocket::frame::message_header(binary, len);
                out.extend_from_slice(&h[..n]);
            }
        }
    }

    /// Appends a ping.
    pub fn ping(&self, payload: &[u8], out: &mut Vec<u8>) {
        match *self {
            FrameSender::Raw { .. } => rawsocket::write_frame(out, FrameKind::Ping, payload),
            FrameSender::Ws { .. } => websocket::frame::write_frame(out, websocket::frame::OpCode::Ping, true, payload),
        }
    }

    /// Appends a close frame (WebSocket only; RawSocket has none).
    pub fn close(&self, code: Option<u16>, reason: &str, out: &mut Vec<u8>) {
        if let FrameSender::Ws { .. } = self {
            websocket::frame::write_close(out, code, reason);
        }
    }
}

fn details_str(d: &mut Dict, key: &str, v: Option<&str>) {
    if let Some(v) = v {
        d.insert(key.into(), Value::from(v));
    }
}

/// Does the request ask for a WebSocket upgrade?
fn is_upgrade(req: &junction_web::ParsedRequest) -> bool {
    req.headers.iter().any(|(n, v)| {
        n.eq_ignore_ascii_case("upgrade")
            && std::str::from_utf8(v).is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("websocket")))
    })
}

/// Finds the end of an HTTP request head, if complete.
fn head_complete(buf: &[u8]) -> bool {
    buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.windows(2).any(|w| w == b"\n\n")
}

/// The request path (without query) from a request line `GET /path?q HTTP/1.1`.
fn request_path(buf: &[u8]) -> Option<&str> {
    let line_end = buf.iter().position(|b| *b == b'\n')?;
    let line = std::str::from_utf8(&buf[..line_end]).ok()?;
    let target = line.split_whitespace().nth(1)?;
    Some(target.split('?').next().unwrap_or(target))
}

fn ws_handshake(buf: &mut BytesMut, setup: &TransportSetup) -> HandshakeStep {
    let FramingSetup::WebSocket { services, .. } = &setup.framing else {
        return HandshakeStep::Reject { reply: Vec::new(), reason: "not a WebSocket transport" };
    };
    if !head_complete(buf) && buf.len() <= setup.max_handshake_size {
        return HandshakeStep::NeedMore;
    }
    // Pick the service by path; an unknown path falls through to the first
    // service's config, whose path list then answers 404.
    let path = request_path(buf).unwrap_or("");
    let svc = services
        .iter()
        .find(|s| s.path.as_deref().is_none_or(|p| p == path || (p == "/" && path.is_empty())))
        .or_else(|| services.first());
    let Some(svc) = svc else {
        return HandshakeStep::Reject { reply: Vec::new(), reason: "no WebSocket service" };
    };
    let limits = websocket::WebSocketLimits {
        max_frame_size: svc.max_frame_size,
        max_message_size: svc.max_message_size,
        max_handshake_size: setup.max_handshake_size,
    };
    let config = websocket::WebSocketConfig {
        limits,
        paths: svc.path.iter().cloned().collect(),
        allowed_origins: if svc.allowed_origins.iter().any(|o| o == "*") {
            None
        } else {
            Some(svc.allowed_origins.clone())
        },
        serializers: svc.serializers.clone(),
        require_subprotocol: svc.require_subprotocol,
    };
    let mut hs = websocket::ServerHandshake::new();
    hs.feed(buf);
    buf.clear();
    match hs.poll(&config) {
        websocket::HandshakeStatus::Partial => {
            HandshakeStep::Reject { reply: Vec::new(), reason: "incomplete WebSocket handshake" }
        }
        websocket::HandshakeStatus::Rejected(r) => {
            HandshakeStep::Reject { reply: r.response.to_vec(), reason: "WebSocket upgrade refused" }
        }
        websocket::HandshakeStatus::Accepted(a) => {
            let a = *a;
            let mut details = Dict::new();
            let req = &a.request;
            let mut http = Dict::new();
            http.insert("path".into(), Value::from(req.path.clone()));
            details_str(&mut http, "host", req.host.as_deref());
            details_str(&mut http, "user-agent", req.user_agent.as_deref());
            details_str(&mut http, "origin", req.origin.as_deref());
            details_str(&mut http, "x-forwarded-for", req.x_forwarded_for.as_deref());
            details.insert("http_headers_received".into(), Value::Dict(http));
            details_str(&mut details, "websocket_protocol", req.protocol);
            HandshakeStep::Done {
                reply: a.response.to_vec(),
                framer: Framer::Ws(WsFramer {
                    conn: websocket::WebSocket::with_buffer(a.leftover, limits),
                    binary: a.serializer.is_binary(),
                    ping: svc.auto_ping_interval.map(|i| (i, svc.auto_ping_timeout, svc.auto_ping_size)),
                }),
                serializer: a.serializer,
                details,
                auth: svc.auth.clone(),
            }
        }
    }
}

fn ws_next_event(w: &mut WsFramer) -> Result<Option<FrameEvent>, FrameError> {
    match w.conn.poll_event() {
        Ok(None) => Ok(None),
        Ok(Some(websocket::WsEvent::Message { data, .. })) => Ok(Some(FrameEvent::Message(data))),
        Ok(Some(websocket::WsEvent::Ping(_))) => Ok(Some(FrameEvent::Ping)),
        Ok(Some(websocket::WsEvent::Pong(_))) => Ok(Some(FrameEvent::Pong)),
        Ok(Some(websocket::WsEvent::Close { code, reason })) => Ok(Some(FrameEvent::Close { code, reason })),
        Err(e) => Err(FrameError { close_code: Some(e.close_code()), reason: e.to_string() }),
    }
}
