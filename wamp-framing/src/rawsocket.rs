//! WAMP RawSocket transport framing (WAMP spec, "RawSocket Transport").
//!
//! A RawSocket connection starts with a 4-byte handshake in each direction,
//! then carries frames of a 4-byte header (frame type + 24-bit big-endian
//! length) followed by the payload:
//!
//! ```text
//! client → server   0x7F | L:4 S:4 | 0x00 | 0x00      L = max length exponent, S = serializer
//! server → client   0x7F | L:4 S:4 | 0x00 | 0x00      accept (our L, chosen S)
//! server → client   0x7F | E:4 0:4 | 0x00 | 0x00      reject with error code E
//! frame header      00000 T:3 | len:24 (big-endian)    T: 0 message, 1 PING, 2 PONG
//! ```
//!
//! The maximum message length a peer is willing to *receive* is `2^(9+L)`
//! bytes. [`accept_handshake`] negotiates; [`RawSocketDecoder`] cuts the
//! received byte stream into [`RawSocketEvent`]s; [`encode_frame_header`] and
//! [`write_frame`] produce outgoing frames.

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;
use wamp_proto::Serializer;

/// The first byte of every RawSocket handshake.
pub const MAGIC: u8 = 0x7F;

/// Length of a frame header and of a handshake, in bytes.
pub const HEADER_LEN: usize = 4;

/// The largest max-length exponent (`2^(9+15) = 2^24` bytes = 16 MiB).
pub const MAX_LENGTH_EXPONENT: u8 = 15;

/// The largest payload a frame header can describe (24-bit length field).
pub const MAX_FRAME_PAYLOAD: usize = (1 << 24) - 1;

/// Most bytes reserved ahead for a partially received frame.
const MAX_PRERESERVE: usize = 256 << 10;

/// Returns true if `b` is the RawSocket magic byte. A listener that serves
/// both WebSocket and RawSocket on one port can peek at the first byte: `0x7F`
/// is RawSocket, an ASCII letter (`G` of `GET`) is HTTP.
pub const fn is_magic(b: u8) -> bool {
    b == MAGIC
}

/// The maximum message length `2^(9+exp)` for a length exponent (0..=15;
/// larger values are clamped to 15).
pub const fn length_from_exponent(exp: u8) -> usize {
    let e = if exp > MAX_LENGTH_EXPONENT { MAX_LENGTH_EXPONENT } else { exp };
    1usize << (9 + e as u32)
}

/// The largest exponent `L` with `2^(9+L) <= max_message_size`, clamped to
/// `0..=15`. Sizes below 512 bytes give `0` (512 bytes, the protocol minimum).
pub const fn exponent_for_size(max_message_size: usize) -> u8 {
    let mut exp = MAX_LENGTH_EXPONENT;
    while exp > 0 && length_from_exponent(exp) > max_message_size {
        exp -= 1;
    }
    exp
}

/// The limit we actually enforce for received frames given an exponent:
/// `2^(9+L)`, but never above what the 24-bit length field can express.
const fn enforced_limit(exp: u8) -> usize {
    let l = length_from_exponent(exp);
    if l > MAX_FRAME_PAYLOAD {
        MAX_FRAME_PAYLOAD
    } else {
        l
    }
}

/// Error codes of a RawSocket handshake rejection (upper nibble of the second
/// handshake byte).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum HandshakeErrorCode {
    /// 0: illegal (must not be used).
    Illegal = 0,
    /// 1: serializer unsupported.
    SerializerUnsupported = 1,
    /// 2: maximum message length unacceptable.
    MaxLengthUnacceptable = 2,
    /// 3: use of reserved bits (unsupported feature).
    ReservedBits = 3,
    /// 4: maximum connection count reached.
    MaxConnections = 4,
}

impl HandshakeErrorCode {
    /// Parses an error code nibble.
    pub fn from_u8(v: u8) -> Option<HandshakeErrorCode> {
        Some(match v {
            0 => HandshakeErrorCode::Illegal,
            1 => HandshakeErrorCode::SerializerUnsupported,
            2 => HandshakeErrorCode::MaxLengthUnacceptable,
            3 => HandshakeErrorCode::ReservedBits,
            4 => HandshakeErrorCode::MaxConnections,
            _ => return None,
        })
    }
}

/// Server-side RawSocket configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawSocketConfig {
    /// Largest message we accept. We advertise the largest `2^(9+L)` not above
    /// it (at least 512 bytes, at most 16 MiB). Default: 16 MiB.
    pub max_message_size: usize,
    /// Serializers we accept, in no particular order (the client picks one).
    /// Default: all four.
    pub serializers: Vec<Serializer>,
    /// Smallest max message length the *client* may advertise; a client that
    /// cannot receive at least this much is rejected with error code 2.
    /// Default: 512 (accept every client).
    pub min_peer_max_length: usize,
}

impl Default for RawSocketConfig {
    fn default() -> Self {
        RawSocketConfig { max_message_size: 1 << 24, serializers: Serializer::ALL.to_vec(), min_peer_max_length: 512 }
    }
}

impl RawSocketConfig {
    /// The max-length exponent we advertise.
    pub fn length_exponent(&self) -> u8 {
        exponent_for_size(self.max_message_size)
    }
}

/// A successfully negotiated RawSocket connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Negotiated {
    /// The 4 bytes to write to the client.
    pub reply: [u8; 4],
    /// The serializer the client asked for.
    pub serializer: Serializer,
    /// Largest frame payload we accept (pass to [`RawSocketDecoder::new`]).
    pub our_max_length: usize,
    /// Largest message the peer accepts: refuse to send anything longer.
    pub peer_max_length: usize,
}

/// Outcome of a well-formed (correct magic byte) client handshake.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Handshake {
    /// Accept: write `reply`, then exchange frames.
    Accepted(Negotiated),
    /// Reject: write `reply` (an error reply), then close the connection.
    Rejected {
        /// The 4-byte error reply.
        reply: [u8; 4],
        /// Why.
        code: HandshakeErrorCode,
    },
}

/// Fatal RawSocket errors: the caller must close the connection (without
/// writing anything further).
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum RawSocketError {
    /// The first handshake byte was not 0x7F: not a RawSocket peer. Close
    /// without a reply.
    #[error("rawsocket: bad magic byte 0x{0:02x} (expected 0x7f); closing without reply")]
    BadMagic(u8),
    /// The server rejected our handshake (client side).
    #[error("rawsocket: handshake rejected by server: {0:?}")]
    Rejected(HandshakeErrorCode),
    /// The server's handshake reply is malformed (client side).
    #[error("rawsocket: malformed handshake reply")]
    BadReply,
    /// Reserved bits of a frame header were set.
    #[error("rawsocket: reserved bits set in frame header (0x{0:02x})")]
    ReservedBits(u8),
    /// Unknown frame type (not 0, 1 or 2).
    #[error("rawsocket: illegal frame type {0}")]
    BadFrameType(u8),
    /// A frame longer than our advertised maximum.
    #[error("rawsocket: frame of {len} bytes exceeds our maximum of {max}")]
    FrameTooLong {
        /// The announced length.
        len: usize,
        /// Our limit.
        max: usize,
    },
}

/// Builds the 4-byte error reply for `code` (e.g. [`HandshakeErrorCode::MaxConnections`]
/// when the caller's connection limit is reached).
pub const fn error_reply(code: HandshakeErrorCode) -> [u8; 4] {
    [MAGIC, (code as u8) << 4, 0, 0]
}

/// Negotiates a client handshake (exactly 4 bytes).
///
/// Returns `Err(RawSocketError::BadMagic)` if the first byte is wrong: the
/// caller must close the connection without replying.
pub fn negotiate(request: [u8; 4], config: &RawSocketConfig) -> Result<Handshake, RawSocketError> {
    if request[0] != MAGIC {
        return Err(RawSocketError::BadMagic(request[0]));
    }
    let reject = |code| Handshake::Rejected { reply: error_reply(code), code };
    if request[2] != 0 || request[3] != 0 {
        return Ok(reject(HandshakeErrorCode::ReservedBits));
    }
    let peer_exp = request[1] >> 4;
    let ser_id = request[1] & 0x0F;
    let serializer = match Serializer::from_rawsocket_id(ser_id) {
        Some(s) if config.serializers.contains(&s) => s,
        _ => return Ok(reject(HandshakeErrorCode::SerializerUnsupported)),
    };
    let peer_max_length = length_from_exponent(peer_exp);
    if peer_max_length < config.min_peer_max_length {
        return Ok(reject(HandshakeErrorCode::MaxLengthUnacceptable));
    }
    let our_exp = config.length_exponent();
    Ok(Handshake::Accepted(Negotiated {
        reply: [MAGIC, (our_exp << 4) | serializer.rawsocket_id(), 0, 0],
        serializer,
        our_max_length: enforced_limit(our_exp),
        peer_max_length: enforced_limit(peer_exp),
    }))
}

/// Server side: consumes the 4-byte client handshake from the front of `buf`.
///
/// Returns `Ok(None)` while fewer than 4 bytes are buffered (but fails fast
/// with [`RawSocketError::BadMagic`] as soon as the first byte is known to be
/// wrong). Bytes after the handshake stay in `buf`: hand the buffer to
/// [`RawSocketDecoder::with_buffer`].
pub fn accept_handshake(buf: &mut BytesMut, config: &RawSocketConfig) -> Result<Option<Handshake>, RawSocketError> {
    if let Some(&b) = buf.first() {
        if b != MAGIC {
            return Err(RawSocketError::BadMagic(b));
        }
    }
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let mut req = [0u8; 4];
    req.copy_from_slice(&buf[..HEADER_LEN]);
    buf.advance(HEADER_LEN);
    negotiate(req, config).map(Some)
}

/// Client side: the 4-byte handshake asking for `serializer` and announcing
/// that we accept messages up to `max_message_size` bytes (rounded down to a
/// power of two, see [`exponent_for_size`]).
pub fn client_handshake(serializer: Serializer, max_message_size: usize) -> [u8; 4] {
    [MAGIC, (exponent_for_size(max_message_size) << 4) | serializer.rawsocket_id(), 0, 0]
}

/// Client side: parses the server's 4-byte reply. On success returns the
/// serializer the server confirmed and the server's max message length.
pub fn parse_server_reply(reply: [u8; 4]) -> Result<(Serializer, usize), RawSocketError> {
    if reply[0] != MAGIC {
        return Err(RawSocketError::BadMagic(reply[0]));
    }
    if reply[2] != 0 || reply[3] != 0 {
        return Err(RawSocketError::BadReply);
    }
    let ser_id = reply[1] & 0x0F;
    if ser_id == 0 {
        return HandshakeErrorCode::from_u8(reply[1] >> 4)
            .map_or(Err(RawSocketError::BadReply), |c| Err(RawSocketError::Rejected(c)));
    }
    let ser = Serializer::from_rawsocket_id(ser_id).ok_or(RawSocketError::BadReply)?;
    Ok((ser, enforced_limit(reply[1] >> 4)))
}

/// RawSocket frame types.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum FrameKind {
    /// 0: a regular WAMP message.
    Message = 0,
    /// 1: PING (answer with a PONG carrying the same payload).
    Ping = 1,
    /// 2: PONG.
    Pong = 2,
}

/// The 4-byte header of a frame of `kind` with a payload of `len` bytes.
///
/// `len` must be at most [`MAX_FRAME_PAYLOAD`] (and at most the peer's
/// negotiated max length — check [`Negotiated::peer_max_length`]); larger
/// values are a caller bug (debug builds assert; release builds truncate
/// to 24 bits).
pub const fn encode_frame_header(kind: FrameKind, len: usize) -> [u8; 4] {
    debug_assert!(len <= MAX_FRAME_PAYLOAD);
    [kind as u8, (len >> 16) as u8, (len >> 8) as u8, len as u8]
}

/// Appends a full frame (header + payload) to `out`, e.g. the connection's
/// coalesced write buffer.
pub fn write_frame(out: &mut Vec<u8>, kind: FrameKind, payload: &[u8]) {
    out.reserve(HEADER_LEN + payload.len());
    out.extend_from_slice(&encode_frame_header(kind, payload.len()));
    out.extend_from_slice(payload);
}

/// A decoded RawSocket frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RawSocketEvent {
    /// A WAMP message (serialized with the negotiated serializer).
    Message(Bytes),
    /// A PING: the caller must answer with a PONG carrying the same payload
    /// (`write_frame(out, FrameKind::Pong, &payload)`).
    Ping(Bytes),
    /// A PONG (answer to one of our PINGs).
    Pong(Bytes),
}

/// Incremental RawSocket frame decoder (after the handshake).
///
/// Feed received bytes with [`feed`](Self::feed) (or read straight into
/// [`read_buf`](Self::read_buf)), then call [`poll_event`](Self::poll_event)
/// until it returns `Ok(None)`. Payloads are split off the receive buffer
/// without copying. After an error the decoder is fused: it returns
/// `Ok(None)` forever and the caller should close the connection.
#[derive(Debug)]
pub struct RawSocketDecoder {
    buf: BytesMut,
    max_len: usize,
    failed: bool,
}

impl RawSocketDecoder {
    /// A decoder rejecting frames longer than `max_len` bytes (use
    /// [`Negotiated::our_max_length`]).
    pub fn new(max_len: usize) -> Self {
        Self::with_buffer(BytesMut::new(), max_len)
    }

    /// Like [`new`](Self::new), starting with already-received bytes (the
    /// leftover after the handshake).
    pub fn with_buffer(buf: BytesMut, max_len: usize) -> Self {
        RawSocketDecoder { buf, max_len: max_len.min(MAX_FRAME_PAYLOAD), failed: false }
    }

    /// The maximum frame length enforced on received frames.
    pub fn max_len(&self) -> usize {
        self.max_len
    }

    /// Appends received bytes.
    pub fn feed(&mut self, data: &[u8]) {
        if !self.failed {
            self.buf.extend_from_slice(data);
        }
    }

    /// The receive buffer, to read into directly (zero-copy alternative to
    /// [`feed`](Self::feed)).
    pub fn read_buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// Number of buffered, not yet decoded bytes.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// True after a protocol error.
    pub fn is_failed(&self) -> bool {
        self.failed
    }

    /// Decodes the next complete frame, if any.
    pub fn poll_event(&mut self) -> Result<Option<RawSocketEvent>, RawSocketError> {
        if self.failed || self.buf.len() < HEADER_LEN {
            return Ok(None);
        }
        let b0 = self.buf[0];
        let len = (usize::from(self.buf[1]) << 16) | (usize::from(self.buf[2]) << 8) | usize::from(self.buf[3]);
        let err = if b0 & 0xF8 != 0 {
            Some(RawSocketError::ReservedBits(b0))
        } else if b0 > 2 {
            Some(RawSocketError::BadFrameType(b0))
        } else if len > self.max_len {
            Some(RawSocketError::FrameTooLong { len, max: self.max_len })
        } else {
            None
        };
        if let Some(e) = err {
            self.failed = true;
            self.buf = BytesMut::new();
            return Err(e);
        }
        let total = HEADER_LEN + len;
        if self.buf.len() < total {
            // Room for the rest of this frame, capped so that a peer
            // announcing a huge frame cannot make us allocate it upfront.
            self.buf.reserve((total - self.buf.len()).min(MAX_PRERESERVE));
            return Ok(None);
        }
        self.buf.advance(HEADER_LEN);
        let payload = self.buf.split_to(len).freeze();
        if self.buf.is_empty() {
            // Let go of the block the payload was cut from (the payload
            // keeps it alive while in use), so an idle connection holds no
            // receive buffer.
            self.buf = BytesMut::new();
        }
        Ok(Some(match b0 {
            0 => RawSocketEvent::Message(payload),
            1 => RawSocketEvent::Ping(payload),
            _ => RawSocketEvent::Pong(payload),
        }))
    }
}
