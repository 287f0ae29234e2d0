//! The server-side WebSocket frame state machine (after the opening
//! handshake): frame decoding, reassembly, control frames, closing handshake.

use std::collections::VecDeque;

use bytes::{Buf, Bytes, BytesMut};
use thiserror::Error;

use super::frame::{self, close_code, OpCode, MAX_CONTROL_PAYLOAD};

/// Most bytes reserved ahead for a partially received frame.
const MAX_PRERESERVE: usize = 256 << 10;

/// Size limits for a WebSocket connection.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct WebSocketLimits {
    /// Largest payload of a single received frame. Default: 16 MiB.
    /// Exceeding it fails the connection with 1009 before the payload is
    /// buffered.
    pub max_frame_size: usize,
    /// Largest received message (sum of its fragments). Default: 16 MiB.
    /// Exceeding it fails the connection with 1009.
    pub max_message_size: usize,
    /// Largest HTTP request head of the opening handshake. Default: 16 KiB.
    /// Exceeding it rejects the handshake with 431.
    pub max_handshake_size: usize,
}

impl Default for WebSocketLimits {
    fn default() -> Self {
        WebSocketLimits { max_frame_size: 16 << 20, max_message_size: 16 << 20, max_handshake_size: 16 << 10 }
    }
}

/// Something the peer sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsEvent {
    /// A complete (reassembled) data message. Text messages are valid UTF-8.
    Message {
        /// True for binary, false for text.
        binary: bool,
        /// The payload (shares the receive buffer for unfragmented messages).
        data: Bytes,
    },
    /// A PING. The PONG reply is already queued in
    /// [`WebSocket::poll_transmit`].
    Ping(Bytes),
    /// A PONG (liveness answer to our PING, or unsolicited).
    Pong(Bytes),
    /// The peer's CLOSE. If the peer initiated the close, the echo is queued
    /// in [`WebSocket::poll_transmit`]. Either way the closing handshake is
    /// now complete: flush the transmit queue, then close the TCP connection.
    Close {
        /// The status code, `None` if the CLOSE frame had an empty payload.
        code: Option<u16>,
        /// The reason (may be empty).
        reason: String,
    },
}

/// A protocol violation by the peer. The connection is failed: a CLOSE frame
/// carrying [`close_code`](WsError::close_code) has already been queued in
/// [`WebSocket::poll_transmit`] (unless we had already sent one); the caller
/// should flush it and close the TCP connection.
#[derive(Clone, Debug, PartialEq, Eq, Error)]
pub enum WsError {
    /// Generic protocol violation (close code 1002).
    #[error("websocket protocol error: {0}")]
    Protocol(&'static str),
    /// A text message or close reason that is not valid UTF-8 (close code 1007).
    #[error("websocket: invalid UTF-8 in text message")]
    InvalidUtf8,
    /// A frame or message over the configured limits (close code 1009).
    #[error("websocket: {what} of {len} bytes exceeds limit of {max}")]
    TooBig {
        /// "frame" or "message".
        what: &'static str,
        /// The size that was (or would have been) reached.
        len: u64,
        /// The configured limit.
        max: usize,
    },
}

impl WsError {
    /// The close status code to send for this error.
    pub fn close_code(&self) -> u16 {
        match self {
            WsError::Protocol(_) => close_code::PROTOCOL_ERROR,
            WsError::InvalidUtf8 => close_code::INVALID_PAYLOAD,
            WsError::TooBig { .. } => close_code::MESSAGE_TOO_BIG,
        }
    }
}

/// Result of [`WebSocket::on_ping_timer`].
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum PingTimer {
    /// A PING was queued in the transmit queue.
    Sent,
    /// The previous PING was never answered: the peer is dead; close the
    /// connection.
    TimedOut,
    /// The connection is closing; nothing was sent.
    Closing,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum State {
    Open,
    /// We sent CLOSE; waiting for the peer's.
    CloseSent,
    /// Closing handshake complete.
    Closed,
    /// Protocol error.
    Failed,
}

#[derive(Debug)]
struct Fragmented {
    binary: bool,
    data: BytesMut,
    /// Prefix of `data` known to be valid UTF-8 (text only).
    utf8_valid: usize,
}

/// A parsed frame header.
struct Header {
    fin: bool,
    opcode: OpCode,
    header_len: usize,
    len: usize,
    key: [u8; 4],
}

/// Server-side WebSocket connection state (sans-IO).
///
/// Feed received bytes with [`feed`](Self::feed) (or read into
/// [`read_buf`](Self::read_buf)), then drain [`poll_event`](Self::poll_event)
/// until `Ok(None)`, and write out everything [`poll_transmit`](Self::poll_transmit)
/// returns (pong replies, close frames, pings). Outgoing data messages are
/// framed by the caller with [`frame::message_header`] / [`frame::write_message`]
/// so that shared payload bytes need not be copied.
#[derive(Debug)]
pub struct WebSocket {
    buf: BytesMut,
    limits: WebSocketLimits,
    state: State,
    frag: Option<Fragmented>,
    transmit: VecDeque<Bytes>,
    ping_outstanding: Option<[u8; 8]>,
    ping_counter: u64,
}

impl WebSocket {
    /// A new connection, right after the 101 response.
    pub fn new(limits: WebSocketLimits) -> Self {
        Self::with_buffer(BytesMut::new(), limits)
    }

    /// Like [`new`](Self::new), starting with bytes received after the
    /// handshake request head (`Accepted::leftover`).
    pub fn with_buffer(buf: BytesMut, limits: WebSocketLimits) -> Self {
        WebSocket {
            buf,
            limits,
            state: State::Open,
            frag: None,
            transmit: VecDeque::new(),
            ping_outstanding: None,
            ping_counter: 0,
        }
    }

    /// The limits in force.
    pub fn limits(&self) -> &WebSocketLimits {
        &self.limits
    }

    /// Appends received bytes (ignored once closed or failed).
    pub fn feed(&mut self, data: &[u8]) {
        if matches!(self.state, State::Open | State::CloseSent) {
            self.buf.extend_from_slice(data);
        }
    }

    /// The receive buffer, to read into directly.
    pub fn read_buf(&mut self) -> &mut BytesMut {
        &mut self.buf
    }

    /// True while data messages may be sent (no CLOSE sent or received).
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// True once we have sent a CLOSE (by [`close`](Self::close), as an echo
    /// or because of a protocol error).
    pub fn close_sent(&self) -> bool {
        self.state != State::Open
    }

    /// True when the connection is finished (closing handshake complete or
    /// failed): flush [`poll_transmit`](Self::poll_transmit) and close TCP.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed | State::Failed)
    }

    /// Next bytes to write to the peer (pongs, pings, close frames), in order.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        self.transmit.pop_front()
    }

    /// Starts the closing handshake: queues a CLOSE frame. Subsequent data
    /// messages from the peer are discarded until its CLOSE arrives (reported
    /// as [`WsEvent::Close`]). Returns false (and does nothing) if a CLOSE was
    /// already sent.
    pub fn close(&mut self, code: u16, reason: &str) -> bool {
        if self.state != State::Open {
            return false;
        }
        self.transmit.push_back(frame::close_frame(Some(code), reason));
        self.state = State::CloseSent;
        true
    }

    /// Queues a PING with the 8-byte `payload` and remembers it:
    /// a PONG with the same payload clears [`ping_outstanding`](Self::ping_outstanding).
    pub fn send_ping(&mut self, payload: [u8; 8]) {
        if self.state == State::Open {
            self.transmit.push_back(frame::ping_frame(&payload));
            self.ping_outstanding = Some(payload);
        }
    }

    /// True if the last PING we sent has not been answered yet.
    pub fn ping_outstanding(&self) -> bool {
        self.ping_outstanding.is_some()
    }

    /// Auto-ping driver: call on every tick of the caller's ping-interval
    /// timer. If the previous PING is still unanswered, returns
    /// [`PingTimer::TimedOut`]; otherwise queues a new PING (8-byte counter
    /// payload) and returns [`PingTimer::Sent`].
    pub fn on_ping_timer(&mut self) -> PingTimer {
        if self.state != State::Open {
            return PingTimer::Closing;
        }
        if self.ping_outstanding.is_some() {
            return PingTimer::TimedOut;
        }
        self.ping_counter = self.ping_counter.wrapping_add(1);
        self.send_ping(self.ping_counter.to_be_bytes());
        PingTimer::Sent
    }

    /// Auto-ping timeout: call when the caller's ping-timeout timer (armed
    /// when a PING was sent) fires. Returns true if the PING is still
    /// unanswered, i.e. the connection should be dropped.
    pub fn on_ping_timeout(&self) -> bool {
        self.state == State::Open && self.ping_outstanding.is_some()
    }

    /// Decodes the next event. `Ok(None)`: need more bytes (or the connection
    /// is finished, see [`is_closed`](Self::is_closed)). On `Err` the
    /// connection is failed and a CLOSE with the error's code is queued.
    pub fn poll_event(&mut self) -> Result<Option<WsEvent>, WsError> {
        match self.next_event() {
            Ok(ev) => Ok(ev),
            Err(e) => {
                if self.state == State::Open {
                    let reason = e.to_string();
                    self.transmit.push_back(frame::close_frame(Some(e.close_code()), &reason));
                }
                self.state = State::Failed;
                self.frag = None;
                self.buf = BytesMut::new();
                Err(e)
            }
        }
    }

    fn next_event(&mut self) -> Result<Option<WsEvent>, WsError> {
        loop {
            if self.is_closed() {
                return Ok(None);
            }
            let Some(h) = self.parse_header()? else {
                return Ok(None);
            };
            let total = h.header_len + h.len;
            if self.buf.len() < total {
                // Room for the rest of the frame, capped so that a peer
                // announcing a huge frame cannot make us allocate it upfront.
                self.buf.reserve((total - self.buf.len()).min(MAX_PRERESERVE));
                return Ok(None);
            }
            self.buf.advance(h.header_len);
            let mut payload = self.buf.split_to(h.len);
            if self.buf.is_empty() {
                // Let go of the block the payload was cut from, so an idle
                // connection holds no receive buffer.
                self.buf = BytesMut::new();
            }
            frame::apply_mask(&mut payload, h.key);
            if let Some(ev) = self.handle_frame(h.fin, h.opcode, payload)? {
                return Ok(Some(ev));
            }
        }
    }

    /// Parses and validates the header at the front of the buffer, without
    /// consuming it. `Ok(None)` if incomplete.
    fn parse_header(&self) -> Result<Option<Header>, WsError> {
        let b = &self.buf[..];
        let (Some(&b0), Some(&b1)) = (b.first(), b.get(1)) else {
            return Ok(None);
        };
        let fin = b0 & 0x80 != 0;
        if b0 & 0x70 != 0 {
            return Err(WsError::Protocol("reserved bits set without a negotiated extension"));
        }
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(WsError::Protocol("reserved opcode"))?;
        if b1 & 0x80 == 0 {
            return Err(WsError::Protocol("client frame not masked"));
        }
        let len7 = b1 & 0x7F;
        if opcode.is_control() {
            if !fin {
                return Err(WsError::Protocol("fragmented control frame"));
            }
            if usize::from(len7) > MAX_CONTROL_PAYLOAD {
                return Err(WsError::Protocol("control frame payload over 125 bytes"));
            }
        } else {
            match (opcode, self.frag.is_some()) {
                (OpCode::Continuation, false) => {
                    return Err(WsError::Protocol("continuation frame without a fragmented message"))
                }
                (OpCode::Text | OpCode::Binary, true) => {
                    return Err(WsError::Protocol("new data frame inside a fragmented message"))
                }
                _ => {}
            }
        }
        let (len, len_bytes): (u64, usize) = match len7 {
            126 => {
                let Some(ext) = b.get(2..4) else {
                    return Ok(None);
                };
                let l = u64::from(u16::from_be_bytes([ext[0], ext[1]]));
                if l < 126 {
                    return Err(WsError::Protocol("non-minimal 16-bit payload length"));
                }
                (l, 2)
            }
            127 => {
                let Some(ext) = b.get(2..10) else {
                    return Ok(None);
                };
                let mut a = [0u8; 8];
                a.copy_from_slice(ext);
                let l = u64::from_be_bytes(a);
                if l >> 63 != 0 {
                    return Err(WsError::Protocol("64-bit payload length with the high bit set"));
                }
                if l <= u64::from(u16::MAX) {
                    return Err(WsError::Protocol("non-minimal 64-bit payload length"));
                }
                (l, 8)
            }
            n => (u64::from(n), 0),
        };
        if len > self.limits.max_frame_size as u64 {
            return Err(WsError::TooBig { what: "frame", len, max: self.limits.max_frame_size });
        }
        if !opcode.is_control() {
            let so_far = self.frag.as_ref().map_or(0, |f| f.data.len()) as u64;
            if so_far + len > self.limits.max_message_size as u64 {
                return Err(WsError::TooBig { what: "message", len: so_far + len, max: self.limits.max_message_size });
            }
        }
        let key_at = 2 + len_bytes;
        let Some(k) = b.get(key_at..key_at + 4) else {
            return Ok(None);
        };
        // `len` <= max_frame_size, a usize, so this cannot truncate.
        let len = usize::try_from(len).map_err(|_| WsError::Protocol("frame length overflow"))?;
        Ok(Some(Header { fin, opcode, header_len: key_at + 4, len, key: [k[0], k[1], k[2], k[3]] }))
    }

    fn handle_frame(&mut self, fin: bool, opcode: OpCode, payload: BytesMut) -> Result<Option<WsEvent>, WsError> {
        let discard = self.state != State::Open;
        match opcode {
            OpCode::Text | OpCode::Binary => {
                let binary = opcode == OpCode::Binary;
                if fin {
                    if !binary && std::str::from_utf8(&payload).is_err() {
                        return Err(WsError::InvalidUtf8);
                    }
                    if discard {
                        return Ok(None);
                    }
                    return Ok(Some(WsEvent::Message { binary, data: payload.freeze() }));
                }
                let mut f = Fragmented { binary, data: payload, utf8_valid: 0 };
                if !binary {
                    check_utf8_prefix(&f.data, &mut f.utf8_valid, false)?;
                }
                self.frag = Some(f);
                Ok(None)
            }
            OpCode::Continuation => {
                let Some(f) = self.frag.as_mut() else {
                    return Err(WsError::Protocol("continuation frame without a fragmented message"));
                };
                f.data.unsplit(payload);
                if !f.binary {
                    check_utf8_prefix(&f.data, &mut f.utf8_valid, fin)?;
                }
                if !fin {
                    return Ok(None);
                }
                let Some(f) = self.frag.take() else {
                    return Ok(None);
                };
                if discard {
                    return Ok(None);
                }
                Ok(Some(WsEvent::Message { binary: f.binary, data: f.data.freeze() }))
            }
            OpCode::Ping => {
                let payload = payload.freeze();
                if self.state == State::Open {
                    self.transmit.push_back(frame::pong_frame(&payload));
                }
                Ok(Some(WsEvent::Ping(payload)))
            }
            OpCode::Pong => {
                if self.ping_outstanding.is_some_and(|p| p[..] == payload[..]) {
                    self.ping_outstanding = None;
                }
                Ok(Some(WsEvent::Pong(payload.freeze())))
            }
            OpCode::Close => {
                let (code, reason) = match payload.len() {
                    0 => (None, String::new()),
                    1 => return Err(WsError::Protocol("close frame with a 1-byte payload")),
                    _ => {
                        let code = u16::from_be_bytes([payload[0], payload[1]]);
                        if !close_code::is_valid_received(code) {
                            return Err(WsError::Protocol("invalid close code"));
                        }
                        let reason = std::str::from_utf8(&payload[2..])
                            .map_err(|_| WsError::Protocol("close reason is not valid UTF-8"))?;
                        (Some(code), reason.to_owned())
                    }
                };
                if self.state == State::Open {
                    // Echo the status code (RFC 6455 5.5.1).
                    self.transmit.push_back(frame::close_frame(code, ""));
                }
                self.state = State::Closed;
                self.frag = None;
                self.buf = BytesMut::new();
                Ok(Some(WsEvent::Close { code, reason }))
            }
        }
    }
}

/// Incremental UTF-8 validation of a growing buffer: `valid` is the prefix
/// already validated. An incomplete sequence at the end is fine unless `fin`.
fn check_utf8_prefix(data: &[u8], valid: &mut usize, fin: bool) -> Result<(), WsError> {
    let rest = data.get(*valid..).unwrap_or(&[]);
    match std::str::from_utf8(rest) {
        Ok(_) => {
            *valid = data.len();
            Ok(())
        }
        Err(e) if e.error_len().is_none() && !fin => {
            *valid += e.valid_up_to();
            Ok(())
        }
        Err(_) => Err(WsError::InvalidUtf8),
    }
}
