//! # wamp-framing: sans-IO WebSocket and RawSocket framing for WAMP
//!
//! WAMP messages travel over one of two framings: WebSocket (RFC 6455) with a
//! `wamp.2.<serializer>` subprotocol, or WAMP's own RawSocket (a 4-byte
//! handshake, then length-prefixed frames). This crate implements the
//! **server side** of both as pure state machines.
//!
//! ## What it is
//! - [`websocket::ServerHandshake`]: buffers the HTTP upgrade request (capped
//!   at `max_handshake_size`), validates it (GET, HTTP/1.1, path, Host,
//!   `Upgrade`/`Connection` tokens, version 13, key, Origin, subprotocol) and
//!   produces either the complete `101` response plus the negotiated
//!   [`wamp_proto::Serializer`] and request details, or a complete HTTP error
//!   response. Bytes after the request head are handed back as the start of
//!   the frame stream.
//! - [`websocket::WebSocket`]: decodes client frames (masking, 7/16/64-bit
//!   lengths, RSV bits, opcodes, fragmentation, control frames interleaved
//!   in fragmented messages, incremental UTF-8 validation of text, size
//!   limits, the closing handshake) into [`websocket::WsEvent`]s. Replies the
//!   protocol demands (PONG, CLOSE echo, CLOSE on error) are queued for
//!   [`websocket::WebSocket::poll_transmit`]. Every violation maps to the
//!   close code RFC 6455 prescribes ([`websocket::WsError::close_code`]).
//! - [`websocket::frame`]: server → client encoders. `frame_header` returns
//!   a header to write *in front of* shared payload bytes (vectored write, no
//!   copy); `write_message` appends to a coalesced write buffer.
//! - [`rawsocket`]: handshake negotiation (max length exponent, serializer,
//!   error codes 1–4, bad magic ⇒ close without reply), a frame decoder
//!   ([`rawsocket::RawSocketDecoder`]) and encoders.
//! - [`link`]: the proxy link, Junction's multiplexed proxy ↔ router
//!   protocol on top of RawSocket framing (handshake, proof of a node key,
//!   channels carrying WAMP messages byte for byte).
//!
//! ## What it is not
//! No sockets, no async runtime, no clock, no threads. The caller reads bytes
//! from its socket and `feed`s them (or reads straight into `read_buf()`),
//! drains `poll_event()`, and writes whatever the crate hands back. Timers
//! are the caller's too: on its auto-ping interval it calls
//! [`websocket::WebSocket::on_ping_timer`], on the ping timeout
//! [`websocket::WebSocket::on_ping_timeout`]; handshake timeouts are simply
//! "drop the connection". It does not (de)serialize WAMP messages — that is
//! `wamp-proto` — and it implements no WebSocket extensions (in particular
//! no permessage-deflate: any RSV bit is a protocol error), and no client
//! side beyond small helpers used by tests and load generators
//! ([`websocket::frame::write_masked_frame`], [`rawsocket::client_handshake`]).
//!
//! ## Performance
//! Received payloads are cut out of the receive buffer with
//! `BytesMut::split_to(..).freeze()`, so an unfragmented message reaches the
//! WAMP decoder without a copy; unmasking is done in place, 8 bytes at a
//! time. Fragmented messages are reassembled in the first fragment's buffer.
//! Once a frame header is parsed, the buffer reserves room for the whole
//! frame so large frames are not regrown repeatedly. The handshake scanner
//! only looks at new bytes, so a request trickling in byte by byte costs
//! linear time, and `httparse` runs once per request.
//!
//! ## Robustness
//! Nothing a peer sends can panic or grow memory without bound: frame and
//! message lengths are checked against the limits *before* buffering the
//! payload, the request head is capped, header count is capped at 64, and
//! after a protocol error the state machines are fused (they ignore further
//! input). A randomized test feeds tens of thousands of garbage inputs.
//!
//! ## Choices worth knowing
//! - A client offering subprotocols of which we accept none is rejected with
//!   400 and a body listing the supported ones (as Crossbar does), rather than
//!   accepted without a subprotocol. A client offering *no* subprotocol is
//!   rejected unless [`websocket::WebSocketConfig::require_subprotocol`] is
//!   false, in which case it gets JSON and the 101 carries no
//!   `Sec-WebSocket-Protocol` header (RFC 6455 forbids echoing one the client
//!   did not offer).
//! - Non-minimal 16/64-bit payload length encodings (a MUST in RFC 6455 5.2)
//!   and 64-bit lengths with the high bit set are rejected with 1002.
//! - A CLOSE with an invalid code or a non-UTF-8 reason is answered with 1002;
//!   a non-UTF-8 text message with 1007; over-limit frames/messages with 1009.
//! - After we sent CLOSE, data messages from the peer are validated but
//!   discarded until its CLOSE arrives; PINGs are no longer answered.
//! - RawSocket: a received PING is reported as an event and the caller writes
//!   the PONG (`rawsocket::write_frame(out, FrameKind::Pong, &payload)`).

pub mod link;
pub mod rawsocket;
pub mod websocket;

pub use rawsocket::{RawSocketConfig, RawSocketDecoder, RawSocketError, RawSocketEvent};
pub use websocket::{HandshakeStatus, ServerHandshake, WebSocket, WebSocketConfig, WebSocketLimits, WsError, WsEvent};
