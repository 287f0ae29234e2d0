//! The proxy link: Junction's multiplexed connection between a proxy worker
//! and a router worker.
//!
//! A proxy worker carries many client sessions to a router worker over a few
//! long-lived connections instead of one connection per session. The link
//! rides on a router's ordinary RawSocket endpoint:
//!
//! 1. **Handshake**: a RawSocket handshake whose serializer nibble is
//!    [`LINK_SERIALIZER_ID`] (`0xF`, unused by WAMP) asks for a link instead
//!    of a WAMP session. A router that accepts links on that transport
//!    mirrors it; one that does not answers RawSocket error 1 (serializer
//!    unsupported).
//! 2. **Frames**: ordinary RawSocket frames (`type` + 24-bit length; PING and
//!    PONG keep their meaning). The payload of each message frame is one
//!    [`LinkFrame`]: a kind byte, then for per-session kinds a 4-byte
//!    big-endian channel number, then the body.
//! 3. **Proof of identity**: the proxy sends [`LinkFrame::Hello`] naming its
//!    Ed25519 public key and the realm the link serves; the router answers a
//!    32-byte random [`LinkFrame::Challenge`]; the proxy signs
//!    [`proof_message`] of it ([`LinkFrame::Proof`]); the router checks the
//!    signature and that the key is trusted, and answers
//!    [`LinkFrame::Accept`] or [`LinkFrame::Refuse`].
//! 4. **Sessions**: [`LinkFrame::Open`] carries an authenticated client's
//!    identity (realm, authid, authrole, authmethod, authprovider, authextra,
//!    the client's HELLO details, transport details and serializer); the
//!    router admits it as a session and answers with WAMP messages in
//!    [`LinkFrame::Data`] on the same channel (WELCOME first, or ABORT).
//!    Data in both directions are the client's WAMP messages, in the
//!    client's serializer, byte for byte: the proxy never re-encodes.
//!    [`LinkFrame::Close`] ends a channel from either side.
//! 5. **Authenticator calls**: [`LinkFrame::AuthCall`] / [`LinkFrame::AuthResult`]
//!    let the proxy call a dynamic authenticator registered on the router.
//! 6. **Router-to-router links** (router clusters, config `rlinks`): the
//!    same handshake and proof, with [`LinkHello::peer`] set to the dialing
//!    worker's instance id; the accepting router answers its own in
//!    [`LinkAccept::instance`]. Afterwards both directions carry
//!    [`LinkFrame::Peer`] frames, each one cluster message of
//!    `router_core::engine::cluster` (this crate does not interpret them).
//!
//! Control bodies (hello, accept, refuse, open, authenticator calls) are
//! WAMP messages in the JSON serializer, reusing `wamp-proto`'s codec and
//! its limits. This module is sans-IO: it encodes and decodes; the runtimes
//! own sockets, timers and keys.

use bytes::Bytes;
use wamp_proto::{Dict, Message, Payload, RequestId, Serializer, SessionId, Value};

use crate::rawsocket::{self, FrameKind};

/// RawSocket serializer nibble that asks for a proxy link.
pub const LINK_SERIALIZER_ID: u8 = 0x0F;

/// Link protocol version carried in [`LinkHello`].
pub const LINK_VERSION: u64 = 1;

/// Domain separation for the signed challenge.
const PROOF_CONTEXT: &[u8] = b"junction proxy link v1\0";

/// Largest control body accepted (hello, open, auth calls).
pub const MAX_CONTROL_BODY: usize = 1 << 20;

const K_HELLO: u8 = 1;
const K_CHALLENGE: u8 = 2;
const K_PROOF: u8 = 3;
const K_ACCEPT: u8 = 4;
const K_REFUSE: u8 = 5;
const K_OPEN: u8 = 10;
const K_DATA: u8 = 11;
const K_CLOSE: u8 = 12;
const K_AUTH_CALL: u8 = 13;
const K_AUTH_RESULT: u8 = 14;
const K_PEER: u8 = 20;

/// A channel of a link: one client session.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelId(pub u32);

impl std::fmt::Display for ChannelId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ch{}", self.0)
    }
}

/// A malformed link frame.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LinkError {
    /// The frame is empty or shorter than its kind requires.
    #[error("link frame truncated")]
    Truncated,
    /// Unknown kind byte.
    #[error("unknown link frame kind {0}")]
    UnknownKind(u8),
    /// A frame of a kind without a body (CLOSE) carries bytes after its
    /// channel number.
    #[error("link frame kind {kind} carries {len} unexpected bytes after its header")]
    Trailing { kind: u8, len: usize },
    /// A control body is not what its kind requires.
    #[error("bad link control body: {0}")]
    BadBody(String),
}

/// One decoded link frame (the payload of a RawSocket message frame).
#[derive(Clone, Debug, PartialEq)]
pub enum LinkFrame {
    /// proxy → router: who I am ([`LinkHello`], JSON-encoded).
    Hello(Bytes),
    /// router → proxy: sign this.
    Challenge([u8; 32]),
    /// proxy → router: Ed25519 signature of [`proof_message`].
    Proof([u8; 64]),
    /// router → proxy: the link is up ([`LinkAccept`], JSON-encoded).
    Accept(Bytes),
    /// router → proxy: the link is refused (an ABORT, JSON-encoded); the
    /// router closes the connection after it.
    Refuse(Bytes),
    /// proxy → router: admit a session ([`OpenRequest`], JSON-encoded).
    Open { channel: ChannelId, body: Bytes },
    /// Either way: one WAMP message of the channel's session.
    Data { channel: ChannelId, bytes: Bytes },
    /// Either way: the channel is finished.
    Close { channel: ChannelId },
    /// proxy → router: call a dynamic authenticator ([`AuthCall`]).
    AuthCall { token: u32, body: Bytes },
    /// router → proxy: its outcome ([`AuthResult`]).
    AuthResult { token: u32, body: Bytes },
    /// router ↔ router: one cluster message (opaque here).
    Peer(Bytes),
}

fn be32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

impl LinkFrame {
    /// Decodes one frame payload (zero-copy: bodies are slices of `payload`).
    pub fn decode(payload: Bytes) -> Result<LinkFrame, LinkError> {
        let kind = *payload.first().ok_or(LinkError::Truncated)?;
        let with_channel = |p: &Bytes| -> Result<(u32, Bytes), LinkError> {
            let n = be32(p.get(1..).unwrap_or(&[])).ok_or(LinkError::Truncated)?;
            Ok((n, p.slice(5..)))
        };
        Ok(match kind {
            K_HELLO => LinkFrame::Hello(payload.slice(1..)),
            K_CHALLENGE => {
                let b: [u8; 32] = payload.get(1..).and_then(|s| s.try_into().ok()).ok_or(LinkError::Truncated)?;
                LinkFrame::Challenge(b)
            }
            K_PROOF => {
                let b: [u8; 64] = payload.get(1..).and_then(|s| s.try_into().ok()).ok_or(LinkError::Truncated)?;
                LinkFrame::Proof(b)
            }
            K_ACCEPT => LinkFrame::Accept(payload.slice(1..)),
            K_REFUSE => LinkFrame::Refuse(payload.slice(1..)),
            K_OPEN => {
                let (c, body) = with_channel(&payload)?;
                LinkFrame::Open { channel: ChannelId(c), body }
            }
            K_DATA => {
                let (c, bytes) = with_channel(&payload)?;
                LinkFrame::Data { channel: ChannelId(c), bytes }
            }
            K_CLOSE => {
                let (c, rest) = with_channel(&payload)?;
                if !rest.is_empty() {
                    return Err(LinkError::Trailing { kind, len: rest.len() });
                }
                LinkFrame::Close { channel: ChannelId(c) }
            }
            K_AUTH_CALL => {
                let (token, body) = with_channel(&payload)?;
                LinkFrame::AuthCall { token, body }
            }
            K_AUTH_RESULT => {
                let (token, body) = with_channel(&payload)?;
                LinkFrame::AuthResult { token, body }
            }
            K_PEER => LinkFrame::Peer(payload.slice(1..)),
            k => return Err(LinkError::UnknownKind(k)),
        })
    }

    /// Appends this frame, RawSocket header included, to `out`.
    pub fn write(&self, out: &mut Vec<u8>) {
        let (kind, num, body): (u8, Option<u32>, &[u8]) = match self {
            LinkFrame::Hello(b) => (K_HELLO, None, b),
            LinkFrame::Challenge(b) => (K_CHALLENGE, None, b),
            LinkFrame::Proof(b) => (K_PROOF, None, b),
            LinkFrame::Accept(b) => (K_ACCEPT, None, b),
            LinkFrame::Refuse(b) => (K_REFUSE, None, b),
            LinkFrame::Open { channel, body } => (K_OPEN, Some(channel.0), body),
            LinkFrame::Data { channel, bytes } => (K_DATA, Some(channel.0), bytes),
            LinkFrame::Close { channel } => (K_CLOSE, Some(channel.0), &[]),
            LinkFrame::AuthCall { token, body } => (K_AUTH_CALL, Some(*token), body),
            LinkFrame::AuthResult { token, body } => (K_AUTH_RESULT, Some(*token), body),
            LinkFrame::Peer(b) => (K_PEER, None, b),
        };
        let len = 1 + num.map_or(0, |_| 4) + body.len();
        out.extend_from_slice(&rawsocket::encode_frame_header(FrameKind::Message, len));
        out.push(kind);
        if let Some(n) = num {
            out.extend_from_slice(&n.to_be_bytes());
        }
        out.extend_from_slice(body);
    }
}

/// Appends a DATA frame for `bytes` without building a [`LinkFrame`] (the
/// hot path). Fails if the frame would exceed RawSocket's 16 MiB limit.
pub fn write_data(out: &mut Vec<u8>, channel: ChannelId, bytes: &[u8]) -> Result<(), LinkError> {
    write_data_header(out, channel, bytes.len())?;
    out.extend_from_slice(bytes);
    Ok(())
}

/// The largest message a DATA frame carries (RawSocket's frame limit less
/// the kind byte and the channel id).
pub const MAX_DATA_LEN: usize = rawsocket::MAX_FRAME_PAYLOAD - 5;

/// Appends the header of a DATA frame whose `len` message bytes the caller
/// writes next (so that they need not be copied: see `write_data`). Fails,
/// appending nothing, if the frame would exceed RawSocket's 16 MiB limit.
pub fn write_data_header(out: &mut Vec<u8>, channel: ChannelId, len: usize) -> Result<(), LinkError> {
    let frame = 5 + len;
    if len > MAX_DATA_LEN {
        return Err(LinkError::BadBody(format!("message of {len} bytes exceeds the link's frame limit")));
    }
    out.extend_from_slice(&rawsocket::encode_frame_header(FrameKind::Message, frame));
    out.push(K_DATA);
    out.extend_from_slice(&channel.0.to_be_bytes());
    Ok(())
}

/// Appends a PEER frame for `body` (the hot path of router-to-router
/// links). Fails if the frame would exceed RawSocket's 16 MiB limit.
pub fn write_peer(out: &mut Vec<u8>, body: &[u8]) -> Result<(), LinkError> {
    let len = 1 + body.len();
    if len > rawsocket::MAX_FRAME_PAYLOAD {
        return Err(LinkError::BadBody(format!(
            "cluster message of {} bytes exceeds the link's frame limit",
            body.len()
        )));
    }
    out.extend_from_slice(&rawsocket::encode_frame_header(FrameKind::Message, len));
    out.push(K_PEER);
    out.extend_from_slice(body);
    Ok(())
}

/// Appends a PEER frame whose body `body` writes straight into `out` (no
/// intermediate buffer): the frame header is patched in afterwards. If
/// `body` fails, or the body exceeds the frame limit, `out` is left as it
/// was.
pub fn write_peer_with<E>(
    out: &mut Vec<u8>,
    body: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<Result<(), E>, LinkError> {
    let start = out.len();
    out.extend_from_slice(&[0u8; 4]);
    out.push(K_PEER);
    if let Err(e) = body(out) {
        out.truncate(start);
        return Ok(Err(e));
    }
    let len = out.len() - start - 4;
    if len > rawsocket::MAX_FRAME_PAYLOAD {
        out.truncate(start);
        return Err(LinkError::BadBody(format!("cluster message of {} bytes exceeds the link's frame limit", len - 1)));
    }
    out[start..start + 4].copy_from_slice(&rawsocket::encode_frame_header(FrameKind::Message, len));
    Ok(Ok(()))
}

/// Appends a CLOSE frame.
pub fn write_close(out: &mut Vec<u8>, channel: ChannelId) {
    LinkFrame::Close { channel }.write(out);
}

/// The 4-byte RawSocket handshake a proxy sends to open a link.
pub fn client_handshake(max_message_size: usize) -> [u8; 4] {
    let exp = rawsocket::exponent_for_size(max_message_size);
    [rawsocket::MAGIC, (exp << 4) | LINK_SERIALIZER_ID, 0, 0]
}

/// True if a 4-byte RawSocket handshake asks for a link.
pub fn is_link_handshake(hs: &[u8]) -> bool {
    hs.len() >= 2 && hs[0] == rawsocket::MAGIC && hs[1] & 0x0F == LINK_SERIALIZER_ID
}

/// The router's reply accepting a link handshake; `max_message_size` is
/// what the router accepts per frame.
pub fn server_handshake_reply(max_message_size: usize) -> [u8; 4] {
    client_handshake(max_message_size)
}

/// Parses the router's handshake reply: `Ok(max frame length)` if it
/// accepted a link, `Err` with the reason otherwise.
pub fn parse_server_reply(reply: [u8; 4]) -> Result<usize, String> {
    if reply[0] != rawsocket::MAGIC {
        return Err("not a RawSocket endpoint (bad magic byte)".into());
    }
    if reply[1] & 0x0F == LINK_SERIALIZER_ID {
        return Ok(rawsocket::length_from_exponent(reply[1] >> 4));
    }
    if reply[1] & 0x0F == 0 {
        let code = reply[1] >> 4;
        return Err(match code {
            1 => "the router does not accept proxy links on this endpoint (no trusted proxy keys)".into(),
            4 => "the router endpoint is at its connection limit".into(),
            c => format!("the router refused the link handshake (RawSocket error {c})"),
        });
    }
    Err("the router answered with a WAMP serializer, not a link".into())
}

/// What a proxy signs: context ‖ challenge.
pub fn proof_message(challenge: &[u8; 32]) -> Vec<u8> {
    let mut m = Vec::with_capacity(PROOF_CONTEXT.len() + 32);
    m.extend_from_slice(PROOF_CONTEXT);
    m.extend_from_slice(challenge);
    m
}

fn bad(what: impl Into<String>) -> LinkError {
    LinkError::BadBody(what.into())
}

fn decode_json(body: &Bytes) -> Result<Message, LinkError> {
    if body.len() > MAX_CONTROL_BODY {
        return Err(bad("control body too large"));
    }
    Serializer::Json.decode(body).map_err(|e| bad(e.to_string()))
}

fn encode_json(msg: &Message) -> Bytes {
    // Control messages are built here from valid values; JSON encoding of
    // them cannot fail except for non-finite floats, which never occur.
    Serializer::Json.encode(msg).unwrap_or_default()
}

fn get_str(d: &Dict, key: &str) -> Result<String, LinkError> {
    match d.get(key) {
        Some(Value::Str(s)) => Ok(s.clone()),
        _ => Err(bad(format!("'{key}' missing or not a string"))),
    }
}

fn get_dict(d: &Dict, key: &str) -> Dict {
    match d.get(key) {
        Some(Value::Dict(x)) => x.clone(),
        _ => Dict::new(),
    }
}

/// Body of [`LinkFrame::Hello`].
#[derive(Clone, Debug, PartialEq)]
pub struct LinkHello {
    /// The realm every session of this link joins.
    pub realm: String,
    /// The proxy's Ed25519 public key.
    pub key: [u8; 32],
    /// A name for logs (proxy or router worker id).
    pub name: String,
    /// Set on a router-to-router link: the dialing router worker's instance
    /// id (drawn at start; two links between one pair of workers are told
    /// apart and deduplicated by these ids).
    pub peer: Option<u64>,
    /// On a router-to-router link: the dialer's ping interval and silence
    /// timeout in milliseconds, which the accepting side adopts so both
    /// ends notice a partition equally fast.
    pub ping_ms: Option<(u64, u64)>,
}

impl LinkHello {
    /// Encodes the body.
    pub fn encode(&self) -> Bytes {
        let mut d = Dict::new();
        d.insert("version".into(), Value::from(LINK_VERSION));
        d.insert("key".into(), Value::from(hex(&self.key)));
        d.insert("name".into(), Value::from(self.name.as_str()));
        if let Some(i) = self.peer {
            d.insert("peer".into(), Value::UInt(i));
        }
        if let Some((i, t)) = self.ping_ms {
            d.insert("ping".into(), Value::List(vec![Value::UInt(i), Value::UInt(t)]));
        }
        encode_json(&Message::Hello { realm: self.realm.clone(), details: d })
    }

    /// Decodes the body.
    pub fn decode(body: &Bytes) -> Result<LinkHello, LinkError> {
        let Message::Hello { realm, details } = decode_json(body)? else { return Err(bad("expected HELLO")) };
        match details.get("version") {
            Some(Value::UInt(v)) if *v == LINK_VERSION => {}
            _ => return Err(bad(format!("unsupported link version (this router speaks {LINK_VERSION})"))),
        }
        let key = parse_hex32(&get_str(&details, "key")?).ok_or_else(|| bad("'key' is not 64 hex digits"))?;
        let name = get_str(&details, "name").unwrap_or_default();
        let peer = match details.get("peer") {
            None => None,
            Some(Value::UInt(i)) => Some(*i),
            Some(_) => return Err(bad("'peer' is not an unsigned integer")),
        };
        let ping_ms = match details.get("ping") {
            None => None,
            Some(Value::List(l)) => match l.as_slice() {
                [Value::UInt(i), Value::UInt(t)] => Some((*i, *t)),
                _ => return Err(bad("'ping' is not [interval_ms, timeout_ms]")),
            },
            Some(_) => return Err(bad("'ping' is not [interval_ms, timeout_ms]")),
        };
        Ok(LinkHello { realm, key, name, peer, ping_ms })
    }
}

/// Body of [`LinkFrame::Accept`].
#[derive(Clone, Debug, PartialEq)]
pub struct LinkAccept {
    /// Largest WAMP message the router accepts on this link.
    pub max_message_size: u64,
    /// On a router-to-router link: the accepting worker's instance id.
    pub instance: Option<u64>,
    /// On a router-to-router link: the accepting worker's name (logs).
    pub name: Option<String>,
}

impl LinkAccept {
    /// Encodes the body.
    pub fn encode(&self) -> Bytes {
        let mut d = Dict::new();
        d.insert("max_message_size".into(), Value::from(self.max_message_size));
        if let Some(i) = self.instance {
            d.insert("instance".into(), Value::UInt(i));
        }
        if let Some(n) = &self.name {
            d.insert("name".into(), Value::from(n.as_str()));
        }
        encode_json(&Message::Welcome { session: SessionId::from_valid(1), details: d })
    }

    /// Decodes the body.
    pub fn decode(body: &Bytes) -> Result<LinkAccept, LinkError> {
        let Message::Welcome { details, .. } = decode_json(body)? else { return Err(bad("expected WELCOME")) };
        let max = match details.get("max_message_size") {
            Some(Value::UInt(v)) => *v,
            _ => return Err(bad("'max_message_size' missing")),
        };
        let instance = details.get("instance").and_then(Value::as_u64);
        let name = get_str(&details, "name").ok();
        Ok(LinkAccept { max_message_size: max, instance, name })
    }
}

/// Body of [`LinkFrame::Refuse`]: a WAMP error URI and a message.
pub fn encode_refuse(reason: &str, message: &str) -> Bytes {
    let mut d = Dict::new();
    d.insert("message".into(), Value::from(message));
    encode_json(&Message::Abort { details: d, reason: reason.into() })
}

/// Decodes a refusal into `(reason, message)`.
pub fn decode_refuse(body: &Bytes) -> (String, String) {
    match decode_json(body) {
        Ok(Message::Abort { details, reason }) => (reason, get_str(&details, "message").unwrap_or_default()),
        _ => ("wamp.error.not_authorized".into(), "the router refused the link".into()),
    }
}

/// Body of [`LinkFrame::Open`]: an authenticated client session.
#[derive(Clone, Debug, PartialEq)]
pub struct OpenRequest {
    /// The realm (must be the link's realm).
    pub realm: String,
    pub authid: String,
    pub authrole: String,
    pub authmethod: String,
    pub authprovider: String,
    /// `WELCOME.Details.authextra` for the client.
    pub authextra: Dict,
    /// The client's HELLO details (roles, features, ...).
    pub hello_details: Dict,
    /// Transport details as the proxy saw them (peer, type, TLS, HTTP).
    pub transport: Dict,
    /// The client's serializer: DATA on this channel is in it.
    pub serializer: Serializer,
    /// The session id the proxy drew during authentication (WAMP-CRA
    /// challenges and authenticators saw it). The router uses it if it is
    /// free in its session directory, so WELCOME carries the same id.
    pub session: Option<SessionId>,
}

impl OpenRequest {
    /// Encodes the body.
    pub fn encode(&self) -> Bytes {
        let mut d = Dict::new();
        d.insert("authid".into(), Value::from(self.authid.as_str()));
        d.insert("authrole".into(), Value::from(self.authrole.as_str()));
        d.insert("authmethod".into(), Value::from(self.authmethod.as_str()));
        d.insert("authprovider".into(), Value::from(self.authprovider.as_str()));
        d.insert("authextra".into(), Value::Dict(self.authextra.clone()));
        d.insert("hello".into(), Value::Dict(self.hello_details.clone()));
        d.insert("transport".into(), Value::Dict(self.transport.clone()));
        d.insert("serializer".into(), Value::from(self.serializer.name()));
        if let Some(s) = self.session {
            d.insert("session".into(), Value::UInt(s.get()));
        }
        encode_json(&Message::Hello { realm: self.realm.clone(), details: d })
    }

    /// Decodes the body.
    pub fn decode(body: &Bytes) -> Result<OpenRequest, LinkError> {
        let Message::Hello { realm, details } = decode_json(body)? else { return Err(bad("expected HELLO")) };
        let ser = get_str(&details, "serializer")?;
        let serializer = Serializer::from_name(&ser).ok_or_else(|| bad(format!("unknown serializer '{ser}'")))?;
        Ok(OpenRequest {
            realm,
            authid: get_str(&details, "authid")?,
            authrole: get_str(&details, "authrole")?,
            authmethod: get_str(&details, "authmethod")?,
            authprovider: get_str(&details, "authprovider")?,
            authextra: get_dict(&details, "authextra"),
            hello_details: get_dict(&details, "hello"),
            transport: get_dict(&details, "transport"),
            serializer,
            session: details.get("session").and_then(Value::as_u64).and_then(SessionId::new),
        })
    }
}

/// Body of [`LinkFrame::AuthCall`]: call `procedure` on `realm` with `args`.
#[derive(Clone, Debug, PartialEq)]
pub struct AuthCall {
    pub realm: String,
    pub procedure: String,
    pub args: wamp_proto::List,
}

impl AuthCall {
    /// Encodes the body.
    pub fn encode(&self) -> Bytes {
        let mut o = Dict::new();
        o.insert("realm".into(), Value::from(self.realm.as_str()));
        encode_json(&Message::Call {
            request: RequestId::from_valid(1),
            options: o,
            procedure: self.procedure.clone(),
            payload: Payload::Values { args: Some(self.args.clone()), kwargs: None },
        })
    }

    /// Decodes the body.
    pub fn decode(body: &Bytes) -> Result<AuthCall, LinkError> {
        let Message::Call { options, procedure, payload, .. } = decode_json(body)? else {
            return Err(bad("expected CALL"));
        };
        let args = payload_args(payload)?;
        Ok(AuthCall { realm: get_str(&options, "realm")?, procedure, args })
    }
}

fn payload_args(payload: Payload) -> Result<wamp_proto::List, LinkError> {
    match payload.to_values() {
        Ok((args, _)) => Ok(args.unwrap_or_default()),
        Err(e) => Err(bad(e.to_string())),
    }
}

/// Body of [`LinkFrame::AuthResult`]: the authenticator's first result
/// value, or its error URI and message.
#[derive(Clone, Debug, PartialEq)]
pub enum AuthResult {
    /// Success: the first positional result (or null).
    Ok(Value),
    /// Failure: error URI and message.
    Err { error: String, message: Option<String> },
}

impl AuthResult {
    /// Encodes the body.
    pub fn encode(&self) -> Bytes {
        match self {
            AuthResult::Ok(v) => encode_json(&Message::Result {
                request: RequestId::from_valid(1),
                details: Dict::new(),
                payload: Payload::Values { args: Some(vec![v.clone()]), kwargs: None },
            }),
            AuthResult::Err { error, message } => encode_json(&Message::Error {
                request_type: 48,
                request: RequestId::from_valid(1),
                details: Dict::new(),
                error: error.clone(),
                payload: Payload::Values {
                    args: message.as_ref().map(|m| vec![Value::from(m.as_str())]),
                    kwargs: None,
                },
            }),
        }
    }

    /// Decodes the body.
    pub fn decode(body: &Bytes) -> Result<AuthResult, LinkError> {
        match decode_json(body)? {
            Message::Result { payload, .. } => {
                Ok(AuthResult::Ok(payload_args(payload)?.into_iter().next().unwrap_or(Value::Null)))
            }
            Message::Error { error, payload, .. } => {
                let message = payload_args(payload)?.into_iter().next().and_then(|v| match v {
                    Value::Str(s) => Some(s),
                    _ => None,
                });
                Ok(AuthResult::Err { error, message })
            }
            _ => Err(bad("expected RESULT or ERROR")),
        }
    }
}

/// Lowercase hex.
pub use wamp_proto::hex::encode as hex;

/// 64 hex digits → 32 bytes.
pub fn parse_hex32(s: &str) -> Option<[u8; 32]> {
    wamp_proto::hex::decode_array(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rawsocket::{RawSocketDecoder, RawSocketEvent};

    fn roundtrip(f: LinkFrame) {
        let mut out = Vec::new();
        f.write(&mut out);
        let mut dec = RawSocketDecoder::new(1 << 24);
        dec.feed(&out);
        let Ok(Some(RawSocketEvent::Message(p))) = dec.poll_event() else { panic!("no frame") };
        assert_eq!(LinkFrame::decode(p).expect("decodes"), f);
    }

    #[test]
    fn frames_roundtrip_through_rawsocket_framing() {
        roundtrip(LinkFrame::Hello(Bytes::from_static(b"x")));
        roundtrip(LinkFrame::Challenge([3; 32]));
        roundtrip(LinkFrame::Proof([4; 64]));
        roundtrip(LinkFrame::Accept(Bytes::new()));
        roundtrip(LinkFrame::Refuse(Bytes::from_static(b"no")));
        roundtrip(LinkFrame::Open { channel: ChannelId(7), body: Bytes::from_static(b"{}") });
        roundtrip(LinkFrame::Data { channel: ChannelId(u32::MAX), bytes: Bytes::from_static(b"[1]") });
        roundtrip(LinkFrame::Close { channel: ChannelId(0) });
        roundtrip(LinkFrame::AuthCall { token: 9, body: Bytes::from_static(b"c") });
        roundtrip(LinkFrame::AuthResult { token: 9, body: Bytes::from_static(b"r") });
        roundtrip(LinkFrame::Peer(Bytes::from_static(b"\x07\x02")));
        let mut a = Vec::new();
        write_peer(&mut a, b"cluster").expect("fits");
        let mut b = Vec::new();
        LinkFrame::Peer(Bytes::from_static(b"cluster")).write(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn write_data_matches_frame_encoding() {
        let mut a = Vec::new();
        write_data(&mut a, ChannelId(5), b"hello").expect("fits");
        let mut b = Vec::new();
        LinkFrame::Data { channel: ChannelId(5), bytes: Bytes::from_static(b"hello") }.write(&mut b);
        assert_eq!(a, b);
    }

    #[test]
    fn malformed_frames_are_errors_not_panics() {
        assert_eq!(LinkFrame::decode(Bytes::new()), Err(LinkError::Truncated));
        assert_eq!(LinkFrame::decode(Bytes::from_static(&[K_DATA, 0, 0])), Err(LinkError::Truncated));
        assert_eq!(LinkFrame::decode(Bytes::from_static(&[K_CHALLENGE, 1, 2])), Err(LinkError::Truncated));
        assert_eq!(LinkFrame::decode(Bytes::from_static(&[200])), Err(LinkError::UnknownKind(200)));
        // Found by fuzzing (fuzz/corpus/link_frame/crash-close-trailing): a
        // CLOSE with bytes after its channel was accepted and the bytes
        // silently dropped.
        assert_eq!(
            LinkFrame::decode(Bytes::from_static(&[K_CLOSE, 0, 0, 0, 10, 0, 0, 0, 7, b'['])),
            Err(LinkError::Trailing { kind: K_CLOSE, len: 5 })
        );
        assert_eq!(
            LinkFrame::decode(Bytes::from_static(&[K_CLOSE, 0, 0, 0, 10])),
            Ok(LinkFrame::Close { channel: ChannelId(10) })
        );
        for len in 0..40 {
            for kind in 0..16u8 {
                let mut v = vec![kind];
                v.extend((0..len).map(|i| i as u8));
                let _ = LinkFrame::decode(Bytes::from(v));
            }
        }
        assert!(LinkHello::decode(&Bytes::from_static(b"[1,\"r\",{}]")).is_err());
        assert!(OpenRequest::decode(&Bytes::from_static(b"garbage")).is_err());
        assert!(AuthResult::decode(&Bytes::from_static(b"[2,1,{}]")).is_err());
    }

    #[test]
    fn control_bodies_roundtrip() {
        let h = LinkHello { realm: "realm1".into(), key: [0xab; 32], name: "proxy1".into(), peer: None, ping_ms: None };
        assert_eq!(LinkHello::decode(&h.encode()).expect("hello"), h);
        let h = LinkHello { peer: Some(u64::MAX), ping_ms: Some((200, 1000)), ..h };
        assert_eq!(LinkHello::decode(&h.encode()).expect("peer hello"), h);
        let a = LinkAccept { max_message_size: 1 << 20, instance: None, name: None };
        assert_eq!(LinkAccept::decode(&a.encode()).expect("accept"), a);
        let a = LinkAccept { max_message_size: 1 << 20, instance: Some(42), name: Some("r2".into()) };
        assert_eq!(LinkAccept::decode(&a.encode()).expect("peer accept"), a);
        let mut extra = Dict::new();
        extra.insert("x".into(), Value::from(1u64));
        let mut transport = Dict::new();
        transport.insert("peer".into(), Value::from("tcp4:1.2.3.4:5"));
        let o = OpenRequest {
            realm: "realm1".into(),
            authid: "joe".into(),
            authrole: "user".into(),
            authmethod: "ticket".into(),
            authprovider: "static".into(),
            authextra: extra,
            hello_details: Dict::new(),
            transport,
            serializer: Serializer::Cbor,
            session: Some(SessionId::from_valid(77)),
        };
        assert_eq!(OpenRequest::decode(&o.encode()).expect("open"), o);
        let c = AuthCall { realm: "auth".into(), procedure: "com.auth".into(), args: vec![Value::from("a")] };
        assert_eq!(AuthCall::decode(&c.encode()).expect("call"), c);
        let r = AuthResult::Ok(Value::from("role1"));
        assert_eq!(AuthResult::decode(&r.encode()).expect("ok"), r);
        let e = AuthResult::Err { error: "wamp.error.not_authorized".into(), message: Some("no".into()) };
        assert_eq!(AuthResult::decode(&e.encode()).expect("err"), e);
        assert_eq!(
            decode_refuse(&encode_refuse("wamp.error.not_authorized", "untrusted")),
            ("wamp.error.not_authorized".to_string(), "untrusted".to_string())
        );
    }

    #[test]
    fn handshake_helpers() {
        let hs = client_handshake(1 << 20);
        assert!(is_link_handshake(&hs));
        assert!(!is_link_handshake(&crate::rawsocket::client_handshake(Serializer::Json, 1 << 20)));
        assert_eq!(parse_server_reply(server_handshake_reply(1 << 20)), Ok(1 << 20));
        assert!(parse_server_reply(crate::rawsocket::error_reply(
            crate::rawsocket::HandshakeErrorCode::SerializerUnsupported
        ))
        .is_err());
        assert_eq!(proof_message(&[1; 32]).len(), PROOF_CONTEXT.len() + 32);
    }
}
