//! WebSocket (RFC 6455), server side: the opening handshake
//! ([`ServerHandshake`]), the frame state machine ([`WebSocket`]) and frame
//! encoders ([`frame`]).

pub mod connection;
pub mod frame;
pub mod handshake;

pub use connection::{PingTimer, WebSocket, WebSocketLimits, WsError, WsEvent};
pub use frame::{
    close_code, close_frame, frame_header, message_header, ping_frame, pong_frame, write_close, write_frame,
    write_message, OpCode,
};
pub use handshake::{
    accept_key, Accepted, HandshakeError, HandshakeStatus, Rejected, RequestInfo, ServerHandshake, WebSocketConfig,
};
