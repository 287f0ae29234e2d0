//! Dialing a link (`wamp_framing::link`): connect over TCP or a Unix
//! socket, optionally through TLS, run the link handshake and the node-key
//! proof, and hand back the established connection.
//!
//! Used by proxy workers (links to their backends) and by router workers
//! (router-to-router links of a cluster, `rlinks`). Serving the established
//! link is the caller's business.

use std::path::PathBuf;
use std::sync::Arc;

use cluster_membership::NodeKey;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use wamp_framing::link::{self, LinkAccept, LinkFrame, LinkHello};
use wamp_framing::rawsocket;

use super::framer::{FrameEvent, Framer};
use super::stream::{SocketKind, Stream};
use super::tls::Tls;

/// Largest frame a dialer asks the other side to accept.
pub const LINK_MAX_FRAME: usize = rawsocket::MAX_FRAME_PAYLOAD;

/// Where a link goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DialAddr {
    Tcp { host: String, port: u16 },
    Unix(PathBuf),
}

impl std::fmt::Display for DialAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DialAddr::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            DialAddr::Unix(p) => write!(f, "unix:{}", p.display()),
        }
    }
}

/// TLS for a dialed link: client config and the name the server's
/// certificate must be valid for.
pub type DialTls = (Arc<rustls::ClientConfig>, String);

/// An established link.
pub struct Dialed {
    pub stream: Stream,
    pub kind: SocketKind,
    pub tls: Option<Tls>,
    /// The framer, holding whatever arrived after the handshake.
    pub framer: Framer,
    /// The accepting side's answer.
    pub accept: LinkAccept,
}

/// Why a dial failed: a message for logs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DialError {
    pub message: String,
    /// The other side refused the proof or the realm (a configuration
    /// problem; retrying will not help until the configuration changes).
    pub refused: bool,
}

impl std::fmt::Display for DialError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl From<String> for DialError {
    fn from(message: String) -> Self {
        DialError { message, refused: false }
    }
}

/// The opening I/O of a link: plain, or through TLS.
struct LinkIo {
    stream: Stream,
    tls: Option<Tls>,
    /// Plaintext received and not yet consumed.
    pending: Vec<u8>,
    raw: Vec<u8>,
}

impl LinkIo {
    /// Writes plaintext (encrypting it, and whatever the TLS handshake needs).
    async fn send(&mut self, data: &[u8]) -> Result<(), String> {
        let io = |e: std::io::Error| e.to_string();
        match &mut self.tls {
            None => self.stream.write_all(data).await.map_err(io),
            Some(tls) => {
                let mut cipher = Vec::new();
                tls.encrypt(data, &mut cipher).map_err(|e| e.to_string())?;
                self.stream.write_all(&cipher).await.map_err(io)
            }
        }
    }

    /// Reads until some plaintext arrived (appended to `pending`),
    /// answering the TLS handshake on the way.
    async fn recv(&mut self) -> Result<(), String> {
        let before = self.pending.len();
        while self.pending.len() == before {
            let n = self.stream.read(&mut self.raw).await.map_err(|e| e.to_string())?;
            if n == 0 {
                return Err("the other side closed the link during the handshake".into());
            }
            match &mut self.tls {
                None => self.pending.extend_from_slice(&self.raw[..n]),
                Some(tls) => {
                    let r = tls.feed(&self.raw[..n], &mut self.pending);
                    let mut cipher = Vec::new();
                    tls.take_ciphertext(&mut cipher);
                    if !cipher.is_empty() {
                        self.stream.write_all(&cipher).await.map_err(|e| e.to_string())?;
                    }
                    r.map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }
}

/// Connects a socket to `addr` (every resolved address in turn for TCP).
pub async fn connect(addr: &DialAddr) -> Result<(Stream, SocketKind), String> {
    match addr {
        DialAddr::Tcp { host, port } => {
            let addrs = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), *port))
                .map_err(|e| format!("cannot resolve {host}:{port}: {e}"))?;
            let mut last = format!("no address for {host}:{port}");
            for a in addrs {
                match glommio::net::TcpStream::connect(a).await {
                    Ok(s) => {
                        let _ = s.set_nodelay(true);
                        return Ok((Stream::Tcp(s), SocketKind::Tcp));
                    }
                    Err(e) => last = format!("{a}: {e}"),
                }
            }
            Err(last)
        }
        DialAddr::Unix(path) => {
            let s = std::os::unix::net::UnixStream::connect(path).map_err(|e| format!("{}: {e}", path.display()))?;
            s.set_nonblocking(true).map_err(|e| e.to_string())?;
            let fd = std::os::fd::IntoRawFd::into_raw_fd(s);
            // SAFETY: a connected Unix stream socket we own.
            Ok((unsafe { Stream::from_fd(SocketKind::Unix, fd) }, SocketKind::Unix))
        }
    }
}

/// Connects, runs the link handshake (through TLS if given) and proves
/// `key` with `hello`. Callers bound it with a timeout.
pub async fn dial(
    addr: &DialAddr,
    tls: Option<&DialTls>,
    hello: &LinkHello,
    key: &NodeKey,
) -> Result<Dialed, DialError> {
    let (stream, kind) = connect(addr).await?;
    let tls = match tls {
        Some((config, name)) => Some(Tls::client(config, name).map_err(|e| e.to_string())?),
        None => None,
    };
    let mut io = LinkIo { stream, tls, pending: Vec::new(), raw: vec![0u8; 16 * 1024] };
    io.send(&link::client_handshake(LINK_MAX_FRAME)).await?;
    while io.pending.len() < 4 {
        io.recv().await?;
    }
    let reply: [u8; 4] = [io.pending[0], io.pending[1], io.pending[2], io.pending[3]];
    link::parse_server_reply(reply).map_err(|message| DialError { message, refused: true })?;
    let mut framer = Framer::raw_link(&io.pending[4..], LINK_MAX_FRAME);
    io.pending.clear();
    let mut out = Vec::new();
    LinkFrame::Hello(hello.encode()).write(&mut out);
    io.send(&out).await?;
    loop {
        let ev = framer.next_event().map_err(|e| e.reason)?;
        let payload = match ev {
            Some(FrameEvent::Message(p)) => p,
            Some(_) => continue,
            None => {
                io.recv().await?;
                framer.feed(&io.pending);
                io.pending.clear();
                continue;
            }
        };
        match LinkFrame::decode(payload).map_err(|e| e.to_string())? {
            LinkFrame::Challenge(c) => {
                out.clear();
                LinkFrame::Proof(key.sign(&link::proof_message(&c))).write(&mut out);
                io.send(&out).await?;
            }
            LinkFrame::Accept(body) => {
                let accept = LinkAccept::decode(&body).map_err(|e| e.to_string())?;
                return Ok(Dialed { stream: io.stream, kind, tls: io.tls, framer, accept });
            }
            LinkFrame::Refuse(body) => {
                let (reason, message) = link::decode_refuse(&body);
                return Err(DialError { message: format!("refused: {reason}: {message}"), refused: true });
            }
            other => return Err(format!("unexpected frame in the link handshake: {other:?}").into()),
        }
    }
}
