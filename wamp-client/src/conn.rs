//! A blocking client connection to a WAMP router: transport (TCP, TLS over
//! TCP, or Unix socket), framing (WebSocket or RawSocket), serializer, and
//! joining a realm (anonymous, ticket or cryptosign authentication).
//!
//! Writes are coalesced: [`Conn::push`] frames a message into the output
//! buffer and [`Conn::flush`] writes everything in one syscall, so a batch of
//! PUBLISH or CALL messages costs one `write`.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::{ClientConfig as TlsConfig, ClientConnection, StreamOwned};

use bytes::{Bytes, BytesMut};
use wamp_framing::rawsocket::{self, FrameKind, RawSocketDecoder, RawSocketError, RawSocketEvent};
use wamp_framing::websocket::frame::{write_masked_frame, OpCode};
use wamp_proto::{DecodeError, Dict, EncodeError, Message, Serializer, SessionId, Value};

use crate::auth::Auth;
use crate::target::Target;
use crate::wsclient::{self, ClientDecoder, WsClientError, WsFrame, XorShift};

/// Largest message we accept from the router (16 MiB).
pub const MAX_MESSAGE: usize = 1 << 24;

/// Read chunk size.
const READ_CHUNK: usize = 64 * 1024;

/// Connection errors.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
    /// Socket error.
    #[error("io: {0}")]
    Io(#[from] io::Error),
    /// WebSocket handshake or framing error.
    #[error("{0}")]
    Ws(#[from] WsClientError),
    /// RawSocket handshake or framing error.
    #[error("{0}")]
    Raw(#[from] RawSocketError),
    /// The router sent a message we cannot decode.
    #[error("decode: {0}")]
    Decode(#[from] DecodeError),
    /// We could not encode a message.
    #[error("encode: {0}")]
    Encode(#[from] EncodeError),
    /// The router closed the connection (during the named stage).
    #[error("connection closed by router during {0}")]
    Closed(&'static str),
    /// The router refused the session (ABORT) or asked for authentication.
    #[error("session refused: {0}")]
    Refused(String),
    /// Unexpected message or state.
    #[error("protocol: {0}")]
    Protocol(String),
    /// A handshake did not complete in time.
    #[error("timeout during {0}")]
    Timeout(&'static str),
    /// TLS setup failed (bad server name, no TLS configuration).
    #[error("tls: {0}")]
    Tls(String),
    /// We could not answer the router's CHALLENGE.
    #[error("{0}")]
    Auth(#[from] crate::auth::AuthError),
}

/// A byte stream: TCP, TLS over TCP, or Unix socket.
#[derive(Debug)]
pub enum Stream {
    /// TCP (nodelay set).
    Tcp(TcpStream),
    /// TLS over TCP (rustls; the handshake runs on first IO).
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Unix domain socket.
    Unix(UnixStream),
}

impl Stream {
    /// Sets the read timeout (`None`: block forever).
    pub fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_read_timeout(t),
            Stream::Tls(s) => s.sock.set_read_timeout(t),
            Stream::Unix(s) => s.set_read_timeout(t),
        }
    }
    /// Switches nonblocking mode.
    pub fn set_nonblocking(&self, nb: bool) -> io::Result<()> {
        match self {
            Stream::Tcp(s) => s.set_nonblocking(nb),
            Stream::Tls(s) => s.sock.set_nonblocking(nb),
            Stream::Unix(s) => s.set_nonblocking(nb),
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            // Pushes buffered TLS records to the socket.
            Stream::Tls(s) => s.flush(),
            _ => Ok(()),
        }
    }
}

enum Framing {
    Ws { dec: ClientDecoder, rng: XorShift },
    Raw { dec: RawSocketDecoder, peer_max: usize },
}

/// An open WAMP transport (after the WebSocket/RawSocket handshake).
pub struct Conn {
    stream: Stream,
    framing: Framing,
    serializer: Serializer,
    out: Vec<u8>,
    scratch: Box<[u8]>,
    closed: bool,
    joined: bool,
    /// WELCOME.Details of the joined session.
    welcome: Dict,
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)
}

impl Conn {
    /// Connects and performs the transport handshake, within `timeout`
    /// (plain targets only; see [`Conn::open_with`] for TLS).
    pub fn open(target: &Target, serializer: Serializer, timeout: Duration, seed: u64) -> Result<Conn, ConnError> {
        Conn::open_with(target, None, serializer, timeout, seed)
    }

    /// Connects (TLS with `tls` for `wss://`/`rss://` targets) and performs
    /// the transport handshake, within `timeout`.
    pub fn open_with(
        target: &Target,
        tls: Option<&Arc<TlsConfig>>,
        serializer: Serializer,
        timeout: Duration,
        seed: u64,
    ) -> Result<Conn, ConnError> {
        Conn::open_from(target, tls, serializer, timeout, seed, None)
    }

    /// [`Conn::open_with`] from the local address `source` (TCP targets;
    /// e.g. one of 127.0.0.x, so that one client machine can open more
    /// connections to one router address than one source address has
    /// ephemeral ports).
    pub fn open_from(
        target: &Target,
        tls: Option<&Arc<TlsConfig>>,
        serializer: Serializer,
        timeout: Duration,
        seed: u64,
        source: Option<std::net::IpAddr>,
    ) -> Result<Conn, ConnError> {
        let deadline = Instant::now() + timeout;
        let stream = match target {
            Target::RawUnix { path } => Stream::Unix(UnixStream::connect(path)?),
            _ => {
                let addr = target.socket_addr().unwrap_or_default();
                let s = match source {
                    None => TcpStream::connect(addr.as_str())?,
                    Some(src) => connect_from(addr.as_str(), src)?,
                };
                s.set_nodelay(true)?;
                if target.is_tls() {
                    let cfg = tls.ok_or_else(|| ConnError::Tls(format!("{target} needs a TLS configuration")))?;
                    let host = target.host().unwrap_or_default();
                    let name = crate::tls::server_name(host).map_err(|e| ConnError::Tls(format!("{host:?}: {e}")))?;
                    let tc = ClientConnection::new(cfg.clone(), name).map_err(|e| ConnError::Tls(e.to_string()))?;
                    Stream::Tls(Box::new(StreamOwned::new(tc, s)))
                } else {
                    Stream::Tcp(s)
                }
            }
        };
        stream.set_read_timeout(Some(timeout))?;
        let mut scratch = vec![0u8; READ_CHUNK].into_boxed_slice();
        let mut stream = stream;
        let framing = match target {
            Target::WebSocket { path, .. } => {
                let key = wsclient::make_key(seed);
                let host = target.socket_addr().unwrap_or_default();
                stream.write_all(&wsclient::upgrade_request(&host, path, &key, serializer.subprotocol()))?;
                let mut head = Vec::new();
                loop {
                    if let Some(n) = wsclient::parse_response(&head, &key, serializer.subprotocol())? {
                        let rest = BytesMut::from(&head[n..]);
                        break Framing::Ws { dec: ClientDecoder::new(rest, MAX_MESSAGE), rng: XorShift::new(seed) };
                    }
                    if Instant::now() > deadline {
                        return Err(ConnError::Timeout("websocket handshake"));
                    }
                    let n = read_some(&mut stream, &mut scratch, "websocket handshake")?;
                    head.extend_from_slice(&scratch[..n]);
                }
            }
            Target::RawTcp { .. } | Target::RawUnix { .. } => {
                stream.write_all(&rawsocket::client_handshake(serializer, MAX_MESSAGE))?;
                let mut reply = [0u8; 4];
                let mut got = 0;
                while got < 4 {
                    if Instant::now() > deadline {
                        return Err(ConnError::Timeout("rawsocket handshake"));
                    }
                    let n = read_some(&mut stream, &mut scratch, "rawsocket handshake")?;
                    let take = n.min(4 - got);
                    reply[got..got + take].copy_from_slice(&scratch[..take]);
                    got += take;
                    if take < n {
                        // Frames right after the handshake reply.
                        let (ser, peer_max) = rawsocket::parse_server_reply(reply)?;
                        check_serializer(ser, serializer)?;
                        let dec = RawSocketDecoder::with_buffer(BytesMut::from(&scratch[take..n]), MAX_MESSAGE);
                        return Ok(Conn::assemble(stream, Framing::Raw { dec, peer_max }, serializer, scratch));
                    }
                }
                let (ser, peer_max) = rawsocket::parse_server_reply(reply)?;
                check_serializer(ser, serializer)?;
                Framing::Raw { dec: RawSocketDecoder::new(MAX_MESSAGE), peer_max }
            }
        };
        Ok(Conn::assemble(stream, framing, serializer, scratch))
    }

    fn assemble(stream: Stream, framing: Framing, serializer: Serializer, scratch: Box<[u8]>) -> Conn {
        Conn {
            stream,
            framing,
            serializer,
            out: Vec::with_capacity(64 * 1024),
            scratch,
            closed: false,
            joined: false,
            welcome: Dict::new(),
        }
    }

    /// The serializer in use.
    pub fn serializer(&self) -> Serializer {
        self.serializer
    }

    /// The underlying stream (timeouts, nonblocking).
    pub fn stream(&self) -> &Stream {
        &self.stream
    }

    /// Bytes waiting in the output buffer.
    pub fn pending_out(&self) -> usize {
        self.out.len()
    }

    /// Encodes and frames `msg` into the output buffer (no syscall).
    pub fn push(&mut self, msg: &Message) -> Result<(), ConnError> {
        let bytes = self.serializer.encode(msg)?;
        self.push_encoded(&bytes)
    }

    /// Frames an already encoded message into the output buffer.
    pub fn push_encoded(&mut self, bytes: &[u8]) -> Result<(), ConnError> {
        match &mut self.framing {
            Framing::Ws { rng, .. } => write_masked_frame(
                &mut self.out,
                OpCode::data(self.serializer.is_binary()),
                true,
                rng.mask_key(),
                bytes,
            ),
            Framing::Raw { peer_max, .. } => {
                if bytes.len() > *peer_max {
                    return Err(ConnError::Protocol(format!(
                        "message of {} bytes exceeds router's RawSocket limit {}",
                        bytes.len(),
                        peer_max
                    )));
                }
                rawsocket::write_frame(&mut self.out, FrameKind::Message, bytes)
            }
        }
        Ok(())
    }

    /// Writes the output buffer (blocking).
    pub fn flush(&mut self) -> Result<(), ConnError> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
            self.stream.flush()?;
            self.out.clear();
        }
        Ok(())
    }

    /// Decodes the next buffered message without any IO. Transport pings are
    /// answered (queued in the output buffer).
    pub fn poll_message(&mut self) -> Result<Option<Message>, ConnError> {
        loop {
            let data: Bytes = match &mut self.framing {
                Framing::Ws { dec, rng } => match dec.poll()? {
                    None => return Ok(None),
                    Some(WsFrame::Message { data, .. }) => data,
                    Some(WsFrame::Ping(p)) => {
                        write_masked_frame(&mut self.out, OpCode::Pong, true, rng.mask_key(), &p);
                        continue;
                    }
                    Some(WsFrame::Pong(_)) => continue,
                    Some(WsFrame::Close(_)) => {
                        self.closed = true;
                        return Err(ConnError::Closed("session (websocket CLOSE)"));
                    }
                },
                Framing::Raw { dec, .. } => match dec.poll_event()? {
                    None => return Ok(None),
                    Some(RawSocketEvent::Message(data)) => data,
                    Some(RawSocketEvent::Ping(p)) => {
                        rawsocket::write_frame(&mut self.out, FrameKind::Pong, &p);
                        continue;
                    }
                    Some(RawSocketEvent::Pong(_)) => continue,
                },
            };
            return Ok(Some(self.serializer.decode(&data)?));
        }
    }

    /// Reads once from the socket into the decoder. Returns `Ok(false)` on a
    /// read timeout / would-block, `Err(Closed)` on EOF.
    pub fn fill(&mut self) -> Result<bool, ConnError> {
        if self.closed {
            return Err(ConnError::Closed("session"));
        }
        match self.stream.read(&mut self.scratch) {
            Ok(0) => {
                self.closed = true;
                Err(ConnError::Closed(if self.joined { "session" } else { "HELLO/WELCOME" }))
            }
            Ok(n) => {
                let data = &self.scratch[..n];
                match &mut self.framing {
                    Framing::Ws { dec, .. } => dec.feed(data),
                    Framing::Raw { dec, .. } => dec.feed(data),
                }
                Ok(true)
            }
            Err(e) if is_timeout(&e) => Ok(false),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(true),
            // TLS peer closed without close_notify.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                self.closed = true;
                Err(ConnError::Closed(if self.joined { "session" } else { "HELLO/WELCOME" }))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Sends a request (`what` names it in errors, e.g. `"SUBSCRIBE"`) and
    /// waits up to `timeout` for the message `is_ack` accepts; an ERROR or
    /// any other message fails.
    pub fn request(
        &mut self,
        msg: &Message,
        what: &'static str,
        timeout: Duration,
        is_ack: impl Fn(&Message) -> bool,
    ) -> Result<(), ConnError> {
        self.push(msg)?;
        self.flush()?;
        let deadline = Instant::now() + timeout;
        loop {
            match self.recv()? {
                Some(m) if is_ack(&m) => return Ok(()),
                Some(Message::Error { error, .. }) => return Err(ConnError::Refused(format!("{what}: {error}"))),
                Some(m) => return Err(ConnError::Protocol(format!("unexpected {} in reply to {what}", m.name()))),
                None if Instant::now() > deadline => return Err(ConnError::Timeout(what)),
                None => {}
            }
        }
    }

    /// The next message, reading as needed. Returns `Ok(None)` if the read
    /// timeout expired first. Pending output (e.g. PONGs) is flushed before
    /// blocking.
    pub fn recv(&mut self) -> Result<Option<Message>, ConnError> {
        loop {
            if let Some(m) = self.poll_message()? {
                return Ok(Some(m));
            }
            self.flush()?;
            if !self.fill()? {
                return Ok(None);
            }
        }
    }

    /// Joins `realm` (anonymous authentication) and returns the session id.
    pub fn join(&mut self, realm: &str, timeout: Duration) -> Result<SessionId, ConnError> {
        self.join_with(realm, &Auth::default(), timeout)
    }

    /// Joins `realm` with `auth`, answering one CHALLENGE, and returns the
    /// session id.
    pub fn join_with(&mut self, realm: &str, auth: &Auth, timeout: Duration) -> Result<SessionId, ConnError> {
        self.push(&hello_with(realm, auth))?;
        self.flush()?;
        let deadline = Instant::now() + timeout;
        let mut challenged = false;
        loop {
            match self.recv()? {
                Some(Message::Welcome { session, details }) => {
                    self.joined = true;
                    self.welcome = details;
                    return Ok(session);
                }
                Some(Message::Abort { reason, details }) => {
                    let msg = details.get("message").and_then(Value::as_str).unwrap_or("");
                    return Err(ConnError::Refused(format!("ABORT {reason} {msg}")));
                }
                Some(Message::Challenge { method, extra }) => {
                    if challenged {
                        return Err(ConnError::Protocol("second CHALLENGE".into()));
                    }
                    challenged = true;
                    let signature = auth.answer(&method, &extra)?;
                    self.push(&Message::Authenticate { signature, extra: Dict::new() })?;
                    self.flush()?;
                }
                Some(other) => return Err(ConnError::Protocol(format!("expected WELCOME, got {}", other.name()))),
                None if Instant::now() > deadline => return Err(ConnError::Timeout("HELLO/WELCOME")),
                None => {}
            }
        }
    }

    /// `WELCOME.Details` of the joined session (realm, authid, authrole,
    /// authextra, ...); empty before the join.
    pub fn welcome_details(&self) -> &Dict {
        &self.welcome
    }

    /// Sends GOODBYE (best effort, no wait for the reply).
    pub fn goodbye(&mut self) {
        let msg = Message::Goodbye { details: Dict::new(), reason: "wamp.close.normal".into() };
        if self.push(&msg).is_ok() {
            let _ = self.flush();
        }
    }
}

fn check_serializer(got: Serializer, want: Serializer) -> Result<(), ConnError> {
    if got == want {
        Ok(())
    } else {
        Err(ConnError::Protocol(format!("router confirmed serializer {got}, we asked for {want}")))
    }
}

fn read_some(stream: &mut Stream, buf: &mut [u8], what: &'static str) -> Result<usize, ConnError> {
    match stream.read(buf) {
        Ok(0) => Err(ConnError::Closed(what)),
        Ok(n) => Ok(n),
        Err(e) if is_timeout(&e) => Err(ConnError::Timeout(what)),
        Err(e) => Err(e.into()),
    }
}

/// The HELLO we send: all four client roles, anonymous authentication.
pub fn hello(realm: &str) -> Message {
    hello_with(realm, &Auth::default())
}

/// The HELLO we send: all four client roles, authentication from `auth`.
pub fn hello_with(realm: &str, auth: &Auth) -> Message {
    let mut roles = Dict::new();
    for role in ["publisher", "subscriber", "caller", "callee"] {
        roles.insert(role.into(), Value::Dict(Dict::new()));
    }
    let mut details = Dict::new();
    details.insert("roles".into(), Value::Dict(roles));
    auth.add_to_hello(&mut details);
    details.insert("agent".into(), Value::from(concat!("junction-wamp-client/", env!("CARGO_PKG_VERSION"))));
    Message::Hello { realm: realm.into(), details }
}

/// A TCP connection to `addr` (host:port, resolved) from local address
/// `source` (any port).
fn connect_from(addr: &str, source: std::net::IpAddr) -> std::io::Result<TcpStream> {
    use std::net::ToSocketAddrs;
    let mut last = None;
    for a in addr.to_socket_addrs()? {
        if a.is_ipv4() != source.is_ipv4() {
            continue;
        }
        let sock = socket2::Socket::new(socket2::Domain::for_address(a), socket2::Type::STREAM, None)?;
        sock.bind(&std::net::SocketAddr::new(source, 0).into())?;
        match sock.connect(&a.into()) {
            Ok(()) => return Ok(sock.into()),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, format!("{addr}: no address of the source's family"))
    }))
}

/// Opens a connection and joins the realm: the common start of every client.
pub fn connect(
    target: &Target,
    serializer: Serializer,
    realm: &str,
    timeout: Duration,
    seed: u64,
) -> Result<(Conn, SessionId), ConnError> {
    let mut c = Conn::open(target, serializer, timeout, seed)?;
    let sid = c.join(realm, timeout)?;
    Ok((c, sid))
}

/// Like [`connect`], with TLS (for `wss://`/`rss://`) and authentication.
pub fn connect_with(
    target: &Target,
    tls: Option<&Arc<TlsConfig>>,
    auth: &Auth,
    serializer: Serializer,
    realm: &str,
    timeout: Duration,
    seed: u64,
) -> Result<(Conn, SessionId), ConnError> {
    connect_from_with(target, tls, auth, serializer, realm, timeout, seed, None)
}

/// [`connect_with`] from local address `source` (see [`Conn::open_from`]).
#[allow(clippy::too_many_arguments)]
pub fn connect_from_with(
    target: &Target,
    tls: Option<&Arc<TlsConfig>>,
    auth: &Auth,
    serializer: Serializer,
    realm: &str,
    timeout: Duration,
    seed: u64,
    source: Option<std::net::IpAddr>,
) -> Result<(Conn, SessionId), ConnError> {
    let mut c = Conn::open_from(target, tls, serializer, timeout, seed, source)?;
    let sid = c.join_with(realm, auth, timeout)?;
    Ok((c, sid))
}

#[cfg(test)]
mod tests {
    //! The client against minimal in-process servers built from the
    //! server side of `wamp-framing`: handshake, HELLO → WELCOME, a
    //! transport PING that must be answered, then an EVENT.

    use super::*;
    use std::net::TcpListener;
    use std::os::unix::net::UnixListener;
    use std::thread;
    use wamp_framing::websocket::frame::write_message;
    use wamp_framing::websocket::{ServerHandshake, WebSocket, WebSocketConfig, WebSocketLimits, WsEvent};
    use wamp_framing::{HandshakeStatus, RawSocketConfig};
    use wamp_proto::{Payload, PublicationId, SubscriptionId};

    fn welcome(ser: Serializer) -> Bytes {
        ser.encode(&Message::Welcome { session: SessionId::from_valid(77), details: Dict::new() }).unwrap()
    }

    fn event(ser: Serializer) -> Bytes {
        ser.encode(&Message::Event {
            subscription: SubscriptionId::from_valid(5),
            publication: PublicationId::from_valid(6),
            details: Dict::new(),
            payload: Payload::EMPTY,
        })
        .unwrap()
    }

    /// WebSocket server: returns the realm of the HELLO and whether our PONG arrived.
    fn ws_server(mut s: TcpStream, ser: Serializer) -> (String, bool) {
        let mut hs = ServerHandshake::new();
        let mut buf = [0u8; 4096];
        let acc = loop {
            let n = s.read(&mut buf).unwrap();
            hs.feed(&buf[..n]);
            match hs.poll(&WebSocketConfig::default()) {
                HandshakeStatus::Accepted(a) => break a,
                HandshakeStatus::Partial => continue,
                other => panic!("handshake: {other:?}"),
            }
        };
        assert_eq!(acc.serializer, ser);
        s.write_all(&acc.response).unwrap();
        let mut ws = WebSocket::with_buffer(acc.leftover, WebSocketLimits::default());
        let mut realm = None;
        let mut ponged = false;
        while !ponged {
            while let Some(ev) = ws.poll_event().unwrap() {
                match ev {
                    WsEvent::Message { data, binary } => {
                        assert_eq!(binary, ser.is_binary());
                        let Message::Hello { realm: r, .. } = ser.decode(&data).unwrap() else { panic!("not HELLO") };
                        realm = Some(r);
                        let mut out = Vec::new();
                        write_message(&mut out, ser.is_binary(), &welcome(ser));
                        out.extend_from_slice(&wamp_framing::websocket::ping_frame(b"hi"));
                        s.write_all(&out).unwrap();
                    }
                    WsEvent::Pong(p) => {
                        assert_eq!(&p[..], b"hi");
                        ponged = true;
                    }
                    other => panic!("unexpected {other:?}"),
                }
            }
            if ponged {
                break;
            }
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "client closed early");
            ws.feed(&buf[..n]);
        }
        let mut out = Vec::new();
        write_message(&mut out, ser.is_binary(), &event(ser));
        s.write_all(&out).unwrap();
        (realm.unwrap(), ponged)
    }

    #[test]
    fn websocket_client_joins_and_answers_pings() {
        for ser in Serializer::ALL {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            let server = thread::spawn(move || ws_server(l.accept().unwrap().0, ser));
            let target = Target::parse(&format!("ws://127.0.0.1:{port}/ws")).unwrap();
            let (mut c, sid) = connect(&target, ser, "realm-x", Duration::from_secs(5), 1).unwrap();
            assert_eq!(sid.get(), 77);
            // recv() must answer the PING (flush before blocking) and then get the EVENT.
            let m = c.recv().unwrap().unwrap();
            assert!(matches!(m, Message::Event { .. }), "{ser}: got {}", m.name());
            let (realm, ponged) = server.join().unwrap();
            assert_eq!(realm, "realm-x");
            assert!(ponged);
            // Server closed: the next receive reports it.
            assert!(matches!(c.recv(), Err(ConnError::Closed(_))));
        }
    }

    #[test]
    fn rawsocket_over_unix_socket() {
        let dir = std::env::temp_dir().join(format!("loadtest-h7-{}", std::process::id()));
        let _ = std::fs::create_dir_all(&dir);
        let path = dir.join("rs.sock");
        let _ = std::fs::remove_file(&path);
        let l = UnixListener::bind(&path).unwrap();
        let ser = Serializer::Msgpack;
        let server = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut hs = [0u8; 4];
            s.read_exact(&mut hs).unwrap();
            let rawsocket::Handshake::Accepted(neg) = rawsocket::negotiate(hs, &RawSocketConfig::default()).unwrap()
            else {
                panic!("rejected")
            };
            // Reply, and in the same write a PING (the client's leftover path).
            let mut out = neg.reply.to_vec();
            rawsocket::write_frame(&mut out, FrameKind::Ping, b"pp");
            s.write_all(&out).unwrap();
            out.clear();
            let mut dec = RawSocketDecoder::new(neg.our_max_length);
            let mut buf = [0u8; 4096];
            let mut got_hello = false;
            let mut ponged = false;
            while !(got_hello && ponged) {
                let n = s.read(&mut buf).unwrap();
                assert!(n > 0);
                dec.feed(&buf[..n]);
                while let Some(ev) = dec.poll_event().unwrap() {
                    match ev {
                        RawSocketEvent::Message(m) => {
                            assert!(matches!(ser.decode(&m).unwrap(), Message::Hello { .. }));
                            got_hello = true;
                            rawsocket::write_frame(&mut out, FrameKind::Message, &welcome(ser));
                            s.write_all(&out).unwrap();
                            out.clear();
                        }
                        RawSocketEvent::Pong(p) => {
                            assert_eq!(&p[..], b"pp");
                            ponged = true;
                        }
                        RawSocketEvent::Ping(_) => panic!("unexpected ping"),
                    }
                }
            }
        });
        let target = Target::parse(&format!("unix:{}", path.display())).unwrap();
        let (mut c, sid) = connect(&target, ser, "r", Duration::from_secs(5), 2).unwrap();
        assert_eq!(sid.get(), 77);
        // The PONG went out while joining; the server has closed.
        assert!(matches!(c.recv(), Err(ConnError::Closed(_))));
        server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A RawSocket server that challenges with `method`/`extra` and returns
    /// the HELLO details and the AUTHENTICATE signature; it welcomes the
    /// session if `check(signature)` holds, else aborts.
    fn auth_server(l: TcpListener, method: &'static str, extra: Dict, check: impl Fn(&str) -> bool) -> (Dict, String) {
        let ser = Serializer::Json;
        let (mut s, _) = l.accept().unwrap();
        let mut hs = [0u8; 4];
        s.read_exact(&mut hs).unwrap();
        let rawsocket::Handshake::Accepted(neg) = rawsocket::negotiate(hs, &RawSocketConfig::default()).unwrap() else {
            panic!("rejected")
        };
        s.write_all(&neg.reply).unwrap();
        let mut dec = RawSocketDecoder::new(neg.our_max_length);
        let mut buf = [0u8; 4096];
        let mut hello = None;
        let mut out = Vec::new();
        loop {
            let n = s.read(&mut buf).unwrap();
            assert!(n > 0, "client closed");
            dec.feed(&buf[..n]);
            while let Some(RawSocketEvent::Message(m)) = dec.poll_event().unwrap() {
                match ser.decode(&m).unwrap() {
                    Message::Hello { details, .. } => {
                        hello = Some(details);
                        let ch = Message::Challenge { method: method.into(), extra: extra.clone() };
                        rawsocket::write_frame(&mut out, FrameKind::Message, &ser.encode(&ch).unwrap());
                    }
                    Message::Authenticate { signature, .. } => {
                        let reply = if check(&signature) {
                            welcome(ser)
                        } else {
                            let abort =
                                Message::Abort { details: Dict::new(), reason: "wamp.error.not_authorized".into() };
                            ser.encode(&abort).unwrap()
                        };
                        rawsocket::write_frame(&mut out, FrameKind::Message, &reply);
                        s.write_all(&out).unwrap();
                        return (hello.unwrap(), signature);
                    }
                    other => panic!("unexpected {}", other.name()),
                }
                s.write_all(&out).unwrap();
                out.clear();
            }
        }
    }

    #[test]
    fn ticket_authentication() {
        for (ticket, ok) in [("s3cret", true), ("wrong", false)] {
            let l = TcpListener::bind("127.0.0.1:0").unwrap();
            let port = l.local_addr().unwrap().port();
            let server = thread::spawn(move || auth_server(l, "ticket", Dict::new(), |sig| sig == "s3cret"));
            let target = Target::parse(&format!("rs://127.0.0.1:{port}")).unwrap();
            let auth = Auth { authid: Some("joe".into()), ticket: Some(ticket.into()), ..Auth::default() };
            let r = connect_with(&target, None, &auth, Serializer::Json, "r", Duration::from_secs(5), 5);
            let (hello, sig) = server.join().unwrap();
            assert_eq!(hello["authid"].as_str(), Some("joe"));
            assert_eq!(hello["authmethods"], Value::List(vec![Value::from("ticket")]));
            assert_eq!(sig, ticket);
            match r {
                Ok((_, sid)) => assert!(ok && sid.get() == 77),
                Err(ConnError::Refused(m)) => assert!(!ok && m.contains("not_authorized"), "{m}"),
                Err(e) => panic!("{e}"),
            }
        }
    }

    #[test]
    fn cryptosign_authentication() {
        use ed25519_dalek::{Signature, SigningKey, Verifier};
        let seed = [42u8; 32];
        let pk = SigningKey::from_bytes(&seed).verifying_key();
        let challenge = [0xA5u8; 32];
        let mut extra = Dict::new();
        extra.insert("challenge".into(), Value::Str(crate::auth::hex_encode(&challenge)));
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            auth_server(l, "cryptosign", extra, move |sig| {
                let Some(raw) = crate::auth::hex_array::<96>(sig) else { return false };
                let Ok(sig) = Signature::from_slice(&raw[..64]) else { return false };
                raw[64..] == challenge && pk.verify(&challenge, &sig).is_ok()
            })
        });
        let target = Target::parse(&format!("rs://127.0.0.1:{port}")).unwrap();
        let auth = Auth { cryptosign: Some(seed), ..Auth::default() };
        let (_, sid) = connect_with(&target, None, &auth, Serializer::Json, "r", Duration::from_secs(5), 6).unwrap();
        assert_eq!(sid.get(), 77);
        let (hello, sig) = server.join().unwrap();
        assert_eq!(sig.len(), 192);
        let Value::Dict(ae) = &hello["authextra"] else { panic!("no authextra") };
        assert_eq!(ae["pubkey"].as_str(), Some(crate::auth::hex_encode(pk.as_bytes()).as_str()));
        assert!(!hello.contains_key("authid"));
    }

    #[test]
    fn tls_target_without_config_is_an_error() {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let target = Target::parse(&format!("rss://127.0.0.1:{port}")).unwrap();
        let r = Conn::open_with(&target, None, Serializer::Json, Duration::from_secs(1), 1);
        assert!(matches!(r, Err(ConnError::Tls(_))), "{:?}", r.err());
    }

    #[test]
    fn refused_session_and_bad_handshake() {
        // A RawSocket server that rejects the serializer.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut hs = [0u8; 4];
            s.read_exact(&mut hs).unwrap();
            s.write_all(&rawsocket::error_reply(rawsocket::HandshakeErrorCode::SerializerUnsupported)).unwrap();
        });
        let target = Target::parse(&format!("rs://127.0.0.1:{port}")).unwrap();
        let r = Conn::open(&target, Serializer::Cbor, Duration::from_secs(5), 3);
        assert!(matches!(r, Err(ConnError::Raw(RawSocketError::Rejected(_)))), "{:?}", r.err());
        server.join().unwrap();

        // A server that answers HELLO with ABORT.
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let server = thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut hs = [0u8; 4];
            s.read_exact(&mut hs).unwrap();
            let rawsocket::Handshake::Accepted(neg) = rawsocket::negotiate(hs, &RawSocketConfig::default()).unwrap()
            else {
                panic!()
            };
            let mut out = neg.reply.to_vec();
            let abort = Message::Abort { details: Dict::new(), reason: "wamp.error.no_such_realm".into() };
            rawsocket::write_frame(&mut out, FrameKind::Message, &Serializer::Json.encode(&abort).unwrap());
            s.write_all(&out).unwrap();
            let mut sink = [0u8; 256];
            let _ = s.read(&mut sink);
        });
        let target = Target::parse(&format!("rs://127.0.0.1:{port}")).unwrap();
        let r = connect(&target, Serializer::Json, "nope", Duration::from_secs(5), 4);
        match r {
            Err(ConnError::Refused(m)) => assert!(m.contains("no_such_realm"), "{m}"),
            other => panic!("expected refusal, got {:?}", other.err()),
        }
        server.join().unwrap();
    }
}
