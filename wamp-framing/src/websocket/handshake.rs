//! The server side of the WebSocket opening handshake (RFC 6455 section 4.2),
//! with WAMP subprotocol negotiation.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::{Buf, Bytes, BytesMut};
use sha1::{Digest, Sha1};
use thiserror::Error;
use wamp_proto::Serializer;

use super::connection::WebSocketLimits;

/// The GUID appended to the client key (RFC 6455 1.3).
pub const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Most headers accepted in a handshake request (more → 431).
pub const MAX_HEADERS: usize = 64;

/// Server-side WebSocket configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSocketConfig {
    /// Frame, message and handshake size limits.
    pub limits: WebSocketLimits,
    /// Accepted request paths (without query string), e.g. `["/ws"]`.
    /// Any other path gets 404. An empty list accepts every path.
    /// Default: empty.
    pub paths: Vec<String>,
    /// Allowed `Origin` values; `None` disables the check (default). Entries
    /// are matched case-insensitively and may contain `*` wildcards (`"*"`
    /// alone allows everything, `"https://*.example.com"` a domain). Requests
    /// without an `Origin` header (non-browser clients) are always allowed.
    /// A disallowed origin gets 403.
    pub allowed_origins: Option<Vec<String>>,
    /// Serializers we accept. The first subprotocol *offered by the client*
    /// that maps to one of these wins. Default: all four.
    pub serializers: Vec<Serializer>,
    /// If true (default), a client offering no `Sec-WebSocket-Protocol` at all
    /// is rejected with 400; if false it gets JSON (if JSON is accepted) and
    /// the 101 response carries no `Sec-WebSocket-Protocol` header.
    pub require_subprotocol: bool,
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            limits: WebSocketLimits::default(),
            paths: Vec::new(),
            allowed_origins: None,
            serializers: Serializer::ALL.to_vec(),
            require_subprotocol: true,
        }
    }
}

/// Why a handshake was rejected. [`status`](HandshakeError::status) gives the
/// HTTP status code; the `Display` text is the response body.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum HandshakeError {
    /// The request head exceeds `max_handshake_size` (431).
    #[error("request head larger than {0} bytes")]
    HeadTooLarge(usize),
    /// More than [`MAX_HEADERS`] headers (431).
    #[error("too many request headers (max {MAX_HEADERS})")]
    TooManyHeaders,
    /// Not a parsable HTTP/1.x request (400).
    #[error("malformed HTTP request: {0}")]
    Malformed(String),
    /// Not HTTP/1.1 (400).
    #[error("WebSocket requires HTTP/1.1")]
    HttpVersion,
    /// Method other than GET (405).
    #[error("method {0} not allowed; WebSocket handshakes use GET")]
    Method(String),
    /// Path not served (404).
    #[error("no WebSocket endpoint at path {0}")]
    NotFound(String),
    /// No `Host` header (400).
    #[error("missing Host header")]
    MissingHost,
    /// No `Upgrade: websocket` (400).
    #[error("missing or invalid Upgrade header: this is a WebSocket endpoint (expected Upgrade: websocket)")]
    NotUpgrade,
    /// No `upgrade` token in `Connection` (400).
    #[error("Connection header must contain the token 'upgrade'")]
    ConnectionNotUpgrade,
    /// `Sec-WebSocket-Version` missing or not 13 (426).
    #[error("unsupported WebSocket version {0:?}; only version 13 is supported")]
    Version(String),
    /// `Sec-WebSocket-Key` missing, duplicated or not base64 of 16 bytes (400).
    #[error("missing or invalid Sec-WebSocket-Key (must be base64 of 16 bytes)")]
    BadKey,
    /// `Origin` not allowed (403).
    #[error("origin {0} not allowed")]
    Origin(String),
    /// No `Sec-WebSocket-Protocol` offered and one is required (400).
    #[error("no WebSocket subprotocol requested; this WAMP router requires one of: {0}")]
    NoSubprotocol(String),
    /// None of the offered subprotocols is acceptable (400).
    #[error("none of the requested WebSocket subprotocols ({offered}) is supported; supported: {supported}")]
    UnsupportedSubprotocol {
        /// What the client offered.
        offered: String,
        /// What we accept.
        supported: String,
    },
}

impl HandshakeError {
    /// HTTP status code of the rejection response.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::HeadTooLarge(_) | HandshakeError::TooManyHeaders => 431,
            HandshakeError::Method(_) => 405,
            HandshakeError::NotFound(_) => 404,
            HandshakeError::Origin(_) => 403,
            HandshakeError::Version(_) => 426,
            _ => 400,
        }
    }
}

/// The parts of the upgrade request the router keeps as transport details.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestInfo {
    /// Request path without the query string, e.g. `/ws`.
    pub path: String,
    /// Query string (after `?`), if any.
    pub query: Option<String>,
    /// `Host` header.
    pub host: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// `Origin` header.
    pub origin: Option<String>,
    /// `X-Forwarded-For` header (as sent, possibly a list).
    pub x_forwarded_for: Option<String>,
    /// The chosen subprotocol, `None` if the client offered none.
    pub protocol: Option<&'static str>,
    /// All request headers in order, names lower-cased, values lossily
    /// converted to UTF-8.
    pub headers: Vec<(String, String)>,
}

impl RequestInfo {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// A successful handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Accepted {
    /// The complete `101 Switching Protocols` response to write.
    pub response: Bytes,
    /// The negotiated serializer.
    pub serializer: Serializer,
    /// Request details (path, headers, chosen protocol).
    pub request: RequestInfo,
    /// Bytes received after the request head: the start of the frame stream.
    /// Pass to [`WebSocket::with_buffer`](super::WebSocket::with_buffer).
    pub leftover: BytesMut,
}

/// A rejected handshake: write `response`, then close the connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejected {
    /// Why.
    pub error: HandshakeError,
    /// The complete HTTP error response (with `Connection: close`).
    pub response: Bytes,
}

/// State of a [`ServerHandshake`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HandshakeStatus {
    /// The request head is not complete yet: feed more bytes.
    Partial,
    /// Upgrade accepted.
    Accepted(Box<Accepted>),
    /// Upgrade rejected.
    Rejected(Box<Rejected>),
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`:
/// `base64(sha1(key + GUID))`.
pub fn accept_key(key: &str) -> String {
    let mut h = Sha1::new();
    h.update(key.as_bytes());
    h.update(WS_GUID.as_bytes());
    STANDARD.encode(h.finalize())
}

/// Buffers the client's opening handshake until the request head is complete,
/// then validates it.
#[derive(Debug, Default)]
pub struct ServerHandshake {
    buf: BytesMut,
    /// Bytes already scanned for the end of the head.
    scanned: usize,
    done: bool,
}

impl ServerHandshake {
    /// A new handshake.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if !self.done {
            self.buf.extend_from_slice(data);
        }
    }

    /// The receive buffer, to read into directly.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Checks whether the request head is complete and, if so, decides.
    /// After `Accepted`/`Rejected` the handshake is finished and further
    /// calls return `Partial`.
    pub fn poll(&mut self, config: &WebSocketConfig) -> HandshakeStatus {
        if self.done {
            return HandshakeStatus::Partial;
        }
        let max = config.limits.max_handshake_size;
        let Some(head_len) = self.find_head_end() else {
            if self.buf.len() > max {
                return self.reject(HandshakeError::HeadTooLarge(max));
            }
            return HandshakeStatus::Partial;
        };
        if head_len > max {
            return self.reject(HandshakeError::HeadTooLarge(max));
        }
        let result = validate(&self.buf[..head_len], config);
        match result {
            Ok((serializer, request, response)) => {
                self.done = true;
                self.buf.advance(head_len);
                let leftover = std::mem::take(&mut self.buf);
                HandshakeStatus::Accepted(Box::new(Accepted { response, serializer, request, leftover }))
            }
            Err(e) => self.reject(e),
        }
    }

    fn reject(&mut self, error: HandshakeError) -> HandshakeStatus {
        self.done = true;
        self.buf = BytesMut::new();
        let response = error_response(&error);
        HandshakeStatus::Rejected(Box::new(Rejected { error, response }))
    }

    /// Finds the end of the request head (after `\n\r\n` or `\n\n`),
    /// scanning only new bytes, so byte-by-byte feeding stays linear.
    fn find_head_end(&mut self) -> Option<usize> {
        let b = &self.buf[..];
        let mut i = self.scanned;
        while i < b.len() {
            if b[i] == b'\n' {
                match (b.get(i + 1), b.get(i + 2)) {
                    (Some(b'\n'), _) => return Some(i + 2),
                    (Some(b'\r'), Some(b'\n')) => return Some(i + 3),
                    (None, _) | (Some(b'\r'), None) => break,
                    _ => {}
                }
            }
            i += 1;
        }
        self.scanned = i;
        None
    }
}

/// The full HTTP error response for a rejection.
pub fn error_response(error: &HandshakeError) -> Bytes {
    let status = error.status();
    let reason = match status {
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        431 => "Request Header Fields Too Large",
        _ => "Error",
    };
    let body = format!("{error}\n");
    let mut extra = String::new();
    match status {
        426 => extra.push_str("Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n"),
        405 => extra.push_str("Allow: GET\r\n"),
        _ => {}
    }
    Bytes::from(format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n{extra}\r\n{body}",
        body.len()
    ))
}

fn tokens<'a>(values: &'a [&'a str]) -> impl Iterator<Item = &'a str> + 'a {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(|t| t.trim_matches(|c| c == ' ' || c == '\t'))
        .filter(|t| !t.is_empty())
}

/// Case-insensitive glob match where `*` matches any (possibly empty) run.
fn glob_match(pattern: &str, s: &str) -> bool {
    let (p, s) = (pattern.as_bytes(), s.as_bytes());
    let (mut pi, mut si) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        match p.get(pi) {
            Some(b'*') => {
                star = Some((pi, si));
                pi += 1;
            }
            Some(c) if c.eq_ignore_ascii_case(&s[si]) => {
                pi += 1;
                si += 1;
            }
            _ => match star {
                Some((sp, ss)) => {
                    pi = sp + 1;
                    si = ss + 1;
                    star = Some((sp, ss + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..).is_some_and(|rest| rest.iter().all(|&c| c == b'*'))
}

fn supported_list(serializers: &[Serializer]) -> String {
    let mut v: Vec<&str> = Vec::new();
    for s in Serializer::ALL {
        if serializers.contains(&s) {
            v.push(s.subprotocol());
        }
    }
    v.join(", ")
}

type Validated = (Serializer, RequestInfo, Bytes);

fn validate(head: &[u8], config: &WebSocketConfig) -> Result<Validated, HandshakeError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(head) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(HandshakeError::Malformed("incomplete request head".to_owned())),
        Err(httparse::Error::TooManyHeaders) => return Err(HandshakeError::TooManyHeaders),
        Err(e) => return Err(HandshakeError::Malformed(e.to_string())),
    }
    let method = req.method.unwrap_or("");
    if method != "GET" {
        return Err(HandshakeError::Method(method.to_owned()));
    }
    if req.version != Some(1) {
        return Err(HandshakeError::HttpVersion);
    }
    let target = req.path.unwrap_or("");
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    };
    if !config.paths.is_empty() && !config.paths.iter().any(|p| p == path) {
        return Err(HandshakeError::NotFound(path.to_owned()));
    }

    let mut info = RequestInfo {
        path: path.to_owned(),
        query: query.map(str::to_owned),
        headers: Vec::with_capacity(req.headers.len()),
        ..RequestInfo::default()
    };
    for h in req.headers.iter() {
        info.headers.push((h.name.to_ascii_lowercase(), String::from_utf8_lossy(h.value).into_owned()));
    }
    let all =
        |name: &str| -> Vec<&str> { info.headers.iter().filter(|(n, _)| n == name).map(|(_, v)| v.as_str()).collect() };
    let host = all("host").first().map(|s| s.to_string());
    let user_agent = all("user-agent").first().map(|s| s.to_string());
    let origin = all("origin").first().map(|s| s.to_string());
    let xff = all("x-forwarded-for");
    let x_forwarded_for = (!xff.is_empty()).then(|| xff.join(", "));

    if host.is_none() {
        return Err(HandshakeError::MissingHost);
    }
    if !tokens(&all("upgrade")).any(|t| t.eq_ignore_ascii_case("websocket")) {
        return Err(HandshakeError::NotUpgrade);
    }
    if !tokens(&all("connection")).any(|t| t.eq_ignore_ascii_case("upgrade")) {
        return Err(HandshakeError::ConnectionNotUpgrade);
    }
    let version = all("sec-websocket-version");
    if version.len() != 1 || version.first().map(|v| v.trim()) != Some("13") {
        return Err(HandshakeError::Version(version.join(", ")));
    }
    let keys = all("sec-websocket-key");
    let [key] = keys.as_slice() else {
        return Err(HandshakeError::BadKey);
    };
    let key = key.trim();
    match STANDARD.decode(key) {
        Ok(k) if k.len() == 16 => {}
        _ => return Err(HandshakeError::BadKey),
    }
    if let (Some(allowed), Some(o)) = (&config.allowed_origins, &origin) {
        if !allowed.iter().any(|p| glob_match(p, o)) {
            return Err(HandshakeError::Origin(o.clone()));
        }
    }
    let offered_values = all("sec-websocket-protocol");
    let (serializer, protocol) = if tokens(&offered_values).next().is_none() {
        if config.require_subprotocol || !config.serializers.contains(&Serializer::Json) {
            return Err(HandshakeError::NoSubprotocol(supported_list(&config.serializers)));
        }
        (Serializer::Json, None)
    } else {
        let chosen =
            tokens(&offered_values).filter_map(Serializer::from_subprotocol).find(|s| config.serializers.contains(s));
        match chosen {
            Some(s) => (s, Some(s.subprotocol())),
            None => {
                return Err(HandshakeError::UnsupportedSubprotocol {
                    offered: tokens(&offered_values).collect::<Vec<_>>().join(", "),
                    supported: supported_list(&config.serializers),
                })
            }
        }
    };

    let mut resp = String::with_capacity(160);
    resp.push_str(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ",
    );
    resp.push_str(&accept_key(key));
    resp.push_str("\r\n");
    if let Some(p) = protocol {
        resp.push_str("Sec-WebSocket-Protocol: ");
        resp.push_str(p);
        resp.push_str("\r\n");
    }
    resp.push_str("\r\n");

    info.host = host;
    info.user_agent = user_agent;
    info.origin = origin;
    info.x_forwarded_for = x_forwarded_for;
    info.protocol = protocol;
    Ok((serializer, info, Bytes::from(resp)))
}
