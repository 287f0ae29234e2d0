//! The client side of WebSocket that `wamp-framing` does not provide: the
//! HTTP upgrade request, validation of the server's `101` response, and a
//! decoder for the *unmasked* frames a server sends.
//!
//! Outgoing frames use [`wamp_framing::websocket::frame::write_masked_frame`].

use base64::Engine;
use bytes::{Buf, Bytes, BytesMut};
use wamp_framing::websocket::accept_key;
use wamp_framing::websocket::frame::OpCode;

/// Largest HTTP response head we accept.
pub const MAX_RESPONSE_HEAD: usize = 16 * 1024;

/// Errors of the client-side WebSocket handshake and frame decoding.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum WsClientError {
    /// The response head exceeded [`MAX_RESPONSE_HEAD`].
    #[error("websocket: HTTP response head larger than {MAX_RESPONSE_HEAD} bytes")]
    HeadTooLarge,
    /// The response could not be parsed as HTTP.
    #[error("websocket: malformed HTTP response: {0}")]
    BadHttp(String),
    /// The server did not answer `101 Switching Protocols`.
    #[error("websocket: upgrade refused: HTTP {status} {reason}")]
    Refused {
        /// HTTP status code.
        status: u16,
        /// Reason phrase (and, if any, the start of the body is not read).
        reason: String,
    },
    /// `Sec-WebSocket-Accept` missing or wrong.
    #[error("websocket: bad Sec-WebSocket-Accept")]
    BadAccept,
    /// The server chose another subprotocol (or none).
    #[error("websocket: server selected subprotocol {0:?}")]
    Subprotocol(Option<String>),
    /// A frame from the server was masked, used reserved bits or a reserved opcode.
    #[error("websocket: protocol error: {0}")]
    Protocol(&'static str),
    /// A message longer than our limit.
    #[error("websocket: message of {0} bytes exceeds limit")]
    TooLarge(u64),
}

/// Generates a random-enough `Sec-WebSocket-Key` from a seed.
pub fn make_key(seed: u64) -> String {
    let mut rng = XorShift::new(seed);
    let mut raw = [0u8; 16];
    raw[..8].copy_from_slice(&rng.next_u64().to_le_bytes());
    raw[8..].copy_from_slice(&rng.next_u64().to_le_bytes());
    base64::engine::general_purpose::STANDARD.encode(raw)
}

/// The HTTP upgrade request.
pub fn upgrade_request(host_header: &str, path: &str, key: &str, subprotocol: &str) -> Vec<u8> {
    format!(
        "GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {subprotocol}\r\n\
         User-Agent: junction-loadtest\r\n\r\n"
    )
    .into_bytes()
}

/// Parses the server's upgrade response from the start of `buf`.
///
/// Returns `Ok(None)` if the head is incomplete, `Ok(Some(n))` with the
/// length of the head when the upgrade succeeded (bytes after `n` are frames).
pub fn parse_response(buf: &[u8], key: &str, subprotocol: &str) -> Result<Option<usize>, WsClientError> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let n = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => {
            return if buf.len() > MAX_RESPONSE_HEAD { Err(WsClientError::HeadTooLarge) } else { Ok(None) };
        }
        Err(e) => return Err(WsClientError::BadHttp(e.to_string())),
    };
    let status = resp.code.unwrap_or(0);
    if status != 101 {
        return Err(WsClientError::Refused { status, reason: resp.reason.unwrap_or("").to_owned() });
    }
    let header = |name: &str| {
        resp.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    if header("Sec-WebSocket-Accept") != Some(accept_key(key).as_str()) {
        return Err(WsClientError::BadAccept);
    }
    match header("Sec-WebSocket-Protocol") {
        Some(p) if p == subprotocol => {}
        other => return Err(WsClientError::Subprotocol(other.map(str::to_owned))),
    }
    Ok(Some(n))
}

/// A frame or message received from the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsFrame {
    /// A complete data message (fragments reassembled).
    Message {
        /// Binary (true) or text.
        binary: bool,
        /// The payload.
        data: Bytes,
    },
    /// PING: answer with a masked PONG carrying the same payload.
    Ping(Bytes),
    /// PONG.
    Pong(Bytes),
    /// CLOSE with optional code and reason.
    Close(Option<u16>),
}

/// Incremental decoder of server → client (unmasked) frames.
#[derive(Debug)]
pub struct ClientDecoder {
    buf: BytesMut,
    max_message: usize,
    frag: Option<(bool, BytesMut)>,
}

impl ClientDecoder {
    /// A decoder accepting messages up to `max_message` bytes.
    pub fn new(buf: BytesMut, max_message: usize) -> Self {
        ClientDecoder { buf, max_message, frag: None }
    }

    /// The receive buffer, to read into.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Decodes the next frame/message, if complete.
    pub fn poll(&mut self) -> Result<Option<WsFrame>, WsClientError> {
        loop {
            if self.buf.len() < 2 {
                return Ok(None);
            }
            let b0 = self.buf[0];
            let b1 = self.buf[1];
            if b0 & 0x70 != 0 {
                return Err(WsClientError::Protocol("reserved bits set"));
            }
            if b1 & 0x80 != 0 {
                return Err(WsClientError::Protocol("masked frame from server"));
            }
            let fin = b0 & 0x80 != 0;
            let op = OpCode::from_u8(b0 & 0x0F).ok_or(WsClientError::Protocol("reserved opcode"))?;
            let (hlen, len) = match b1 & 0x7F {
                126 => {
                    if self.buf.len() < 4 {
                        return Ok(None);
                    }
                    (4, u64::from(u16::from_be_bytes([self.buf[2], self.buf[3]])))
                }
                127 => {
                    if self.buf.len() < 10 {
                        return Ok(None);
                    }
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&self.buf[2..10]);
                    (10, u64::from_be_bytes(b))
                }
                l => (2, u64::from(l)),
            };
            if op.is_control() && (len > 125 || !fin) {
                return Err(WsClientError::Protocol("bad control frame"));
            }
            let already = self.frag.as_ref().map_or(0, |(_, b)| b.len() as u64);
            if len.saturating_add(already) > self.max_message as u64 {
                return Err(WsClientError::TooLarge(len.saturating_add(already)));
            }
            let len = len as usize;
            if self.buf.len() < hlen + len {
                self.buf.reserve(hlen + len - self.buf.len());
                return Ok(None);
            }
            self.buf.advance(hlen);
            let payload = self.buf.split_to(len);
            match op {
                OpCode::Ping => return Ok(Some(WsFrame::Ping(payload.freeze()))),
                OpCode::Pong => return Ok(Some(WsFrame::Pong(payload.freeze()))),
                OpCode::Close => {
                    let code = (payload.len() >= 2).then(|| u16::from_be_bytes([payload[0], payload[1]]));
                    return Ok(Some(WsFrame::Close(code)));
                }
                OpCode::Text | OpCode::Binary => {
                    if self.frag.is_some() {
                        return Err(WsClientError::Protocol("new message inside fragmented message"));
                    }
                    let binary = op == OpCode::Binary;
                    if fin {
                        return Ok(Some(WsFrame::Message { binary, data: payload.freeze() }));
                    }
                    self.frag = Some((binary, payload));
                }
                OpCode::Continuation => {
                    let Some((binary, mut acc)) = self.frag.take() else {
                        return Err(WsClientError::Protocol("continuation without start"));
                    };
                    acc.extend_from_slice(&payload);
                    if fin {
                        return Ok(Some(WsFrame::Message { binary, data: acc.freeze() }));
                    }
                    self.frag = Some((binary, acc));
                }
            }
        }
    }
}

/// A tiny xorshift64* generator (masking keys, WebSocket keys): not
/// cryptographic, and need not be for a load generator.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    /// Seeds the generator (a zero seed is replaced).
    pub fn new(seed: u64) -> Self {
        XorShift(if seed == 0 { 0x9E37_79B9_7F4A_7C15 } else { seed })
    }
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// A 4-byte masking key.
    pub fn mask_key(&mut self) -> [u8; 4] {
        (self.next_u64() as u32).to_ne_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wamp_framing::websocket::frame::{apply_mask, write_frame, write_masked_frame};
    use wamp_framing::websocket::{ServerHandshake, WebSocket, WebSocketConfig, WebSocketLimits, WsEvent};

    #[test]
    fn handshake_against_wamp_framing_server() {
        let key = make_key(42);
        let req = upgrade_request("127.0.0.1:8080", "/ws", &key, "wamp.2.cbor");
        let mut hs = ServerHandshake::new();
        hs.feed(&req);
        let cfg = WebSocketConfig { paths: vec!["/ws".into()], ..WebSocketConfig::default() };
        let resp = match hs.poll(&cfg) {
            wamp_framing::HandshakeStatus::Accepted(a) => a.response,
            other => panic!("server rejected our request: {other:?}"),
        };
        let mut bytes = resp.to_vec();
        bytes.extend_from_slice(b"\x82\x01x");
        let n = parse_response(&bytes, &key, "wamp.2.cbor").unwrap().unwrap();
        assert_eq!(n, resp.len());
        // A partial head is "not yet".
        assert_eq!(parse_response(&resp[..resp.len() - 3], &key, "wamp.2.cbor").unwrap(), None);
        // Wrong key: accept hash mismatch.
        assert_eq!(parse_response(&bytes, &make_key(43), "wamp.2.cbor"), Err(WsClientError::BadAccept));
        // Wrong expected subprotocol.
        assert!(matches!(parse_response(&bytes, &key, "wamp.2.json"), Err(WsClientError::Subprotocol(_))));
    }

    #[test]
    fn refused_upgrade_is_reported() {
        let r = b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(
            parse_response(r, "k", "wamp.2.json"),
            Err(WsClientError::Refused { status: 404, reason: "Not Found".into() })
        );
        let huge = vec![b'a'; MAX_RESPONSE_HEAD + 10];
        let mut head = b"HTTP/1.1 101 OK\r\nX: ".to_vec();
        head.extend_from_slice(&huge);
        assert_eq!(parse_response(&head, "k", "wamp.2.json"), Err(WsClientError::HeadTooLarge));
    }

    /// Our masked frames decode in the server-side `WebSocket` of wamp-framing.
    #[test]
    fn masked_client_frames_roundtrip_through_server_decoder() {
        let mut rng = XorShift::new(7);
        let mut out = Vec::new();
        let sizes = [0usize, 1, 125, 126, 127, 65535, 65536, 70000];
        for &n in &sizes {
            let payload: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
            write_masked_frame(&mut out, OpCode::Binary, true, rng.mask_key(), &payload);
        }
        let mut ws = WebSocket::new(WebSocketLimits::default());
        ws.feed(&out);
        for &n in &sizes {
            match ws.poll_event().unwrap() {
                Some(WsEvent::Message { data, binary }) => {
                    assert!(binary);
                    assert_eq!(data.len(), n);
                    assert!(data.iter().enumerate().all(|(i, &b)| b == (i * 31 % 251) as u8));
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    /// Unmasked server frames (any length encoding, fragmented, control frames
    /// in between, byte-by-byte delivery) decode in our client decoder.
    #[test]
    fn server_frames_decode_in_client_decoder() {
        let mut out = Vec::new();
        let big: Vec<u8> = (0..70000u32).map(|i| i as u8).collect();
        write_frame(&mut out, OpCode::Text, true, b"[2,1,{}]");
        write_frame(&mut out, OpCode::Binary, true, &big);
        write_frame(&mut out, OpCode::Binary, false, b"ab");
        write_frame(&mut out, OpCode::Ping, true, b"p");
        write_frame(&mut out, OpCode::Continuation, false, b"cd");
        write_frame(&mut out, OpCode::Continuation, true, b"e");
        write_frame(&mut out, OpCode::Close, true, &1000u16.to_be_bytes());
        let expect = vec![
            WsFrame::Message { binary: false, data: Bytes::from_static(b"[2,1,{}]") },
            WsFrame::Message { binary: true, data: Bytes::from(big.clone()) },
            WsFrame::Ping(Bytes::from_static(b"p")),
            WsFrame::Message { binary: true, data: Bytes::from_static(b"abcde") },
            WsFrame::Close(Some(1000)),
        ];
        // All at once.
        let mut d = ClientDecoder::new(BytesMut::new(), 1 << 20);
        d.feed(&out);
        let mut got = Vec::new();
        while let Some(f) = d.poll().unwrap() {
            got.push(f);
        }
        assert_eq!(got, expect);
        // Byte by byte.
        let mut d = ClientDecoder::new(BytesMut::new(), 1 << 20);
        let mut got = Vec::new();
        for b in &out {
            d.feed(std::slice::from_ref(b));
            while let Some(f) = d.poll().unwrap() {
                got.push(f);
            }
        }
        assert_eq!(got, expect);
    }

    #[test]
    fn client_decoder_rejects_bad_frames() {
        let poll = |bytes: &[u8], max: usize| {
            let mut d = ClientDecoder::new(BytesMut::new(), max);
            d.feed(bytes);
            d.poll()
        };
        // Masked frame from a server.
        let mut masked = Vec::new();
        write_masked_frame(&mut masked, OpCode::Text, true, [1, 2, 3, 4], b"x");
        assert!(matches!(poll(&masked, 100), Err(WsClientError::Protocol(_))));
        // RSV bit.
        assert!(matches!(poll(&[0xC1, 0x00], 100), Err(WsClientError::Protocol(_))));
        // Reserved opcode.
        assert!(matches!(poll(&[0x83, 0x00], 100), Err(WsClientError::Protocol(_))));
        // Too large (checked before the payload arrives).
        assert_eq!(poll(&[0x82, 0x7F, 0, 0, 0, 1, 0, 0, 0, 0], 1000), Err(WsClientError::TooLarge(1 << 32)));
        // Fragmented control frame.
        assert!(matches!(poll(&[0x09, 0x00], 100), Err(WsClientError::Protocol(_))));
        // Continuation without a start.
        assert!(matches!(poll(&[0x80, 0x00], 100), Err(WsClientError::Protocol(_))));
        // apply_mask is an involution (sanity for our masked writes).
        let mut v = b"hello world".to_vec();
        apply_mask(&mut v, [9, 8, 7, 6]);
        assert_ne!(&v, b"hello world");
        apply_mask(&mut v, [9, 8, 7, 6]);
        assert_eq!(&v, b"hello world");
    }
}
