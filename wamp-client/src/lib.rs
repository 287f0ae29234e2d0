//! # wamp-client: WAMP client sessions for Junction's own processes
//!
//! The client half that Junction's tools and control plane need: the
//! master's backend sessions, the managed node's uplink to its master, and
//! `loadtest`. It has two layers:
//!
//! * [`session`]: the sans-IO core of a joined session (request ids, what
//!   each outstanding request was, registrations and subscriptions by id,
//!   router messages turned into [`session::SessionEvent`]s). No sockets, no
//!   clock; tested in memory.
//! * [`conn`]: a blocking connection (TCP, TLS over TCP or a Unix socket;
//!   WebSocket or RawSocket framing; any serializer) that opens, joins a
//!   realm ([`auth`]: anonymous, ticket or cryptosign) and then moves
//!   messages with coalesced writes. [`target`] parses `ws://`, `wss://`,
//!   `rs://`, `rss://` and `unix:` URLs, [`tls`] builds rustls client
//!   configurations, [`wsclient`] is the client side of the WebSocket
//!   handshake and of unmasked frames that `wamp-framing` (a server-side
//!   crate) lacks.
//!
//! ## What it is not
//! Not a general-purpose async WAMP client library: one blocking thread per
//! connection, no reconnect policy (the owner decides), no WAMP-CRA or SCRAM
//! client side, no TLS channel binding. Application developers use
//! Autobahn and friends; this crate exists so that Junction's own
//! processes speak WAMP through the same tested code.

pub mod auth;
pub mod conn;
pub mod session;
pub mod target;
pub mod tls;
pub mod wsclient;

pub use session::{Session, SessionError, SessionEvent};
