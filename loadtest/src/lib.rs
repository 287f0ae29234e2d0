//! # loadtest: measure any WAMP router
//!
//! A multi-threaded load generator that talks to any WAMP router (Junction,
//! Crossbar.io, …) over the network, by URL: `ws://host:port/path`
//! (WebSocket), `wss://…` (WebSocket over TLS), `rs://host:port` (RawSocket
//! over TCP), `rss://host:port` (RawSocket over TLS) or `unix:/path`
//! (RawSocket over a Unix socket), with any of the four serializers, joining
//! a realm anonymously or with ticket or cryptosign authentication
//! ([`auth`]). TLS is rustls ([`tls`]).
//!
//! ## Scenarios
//! - [`pubsub`]: publishers → topics → subscribers. Every event carries its
//!   publisher's send timestamp (monotonic ns from one shared origin), so
//!   subscribers measure publish → event latency into an hdrhistogram, and
//!   delivery is accounted exactly (`lost = expected − received` for
//!   messages sent inside the measurement window). Unthrottled publishers
//!   batch several PUBLISHes per `write` and bound what is in flight with
//!   acknowledged publications, so the router is measured and not the
//!   socket buffers.
//! - [`rpc`]: callers keep W calls in flight against echoing callees; call →
//!   result latency.
//! - [`connect`]: a session-establishment storm (including authentication),
//!   then an idle hold.
//! - [`mixed`]: pubsub and rpc loads at once (plus an optional trickle of
//!   session establishments), each part reported separately.
//!
//! Reports ([`report`]) give sent, delivered, lost, errors, throughput and
//! latency percentiles, plus CPU time and RSS of the router (`--pid`) and of
//! the load generator itself ([`procstat`]), so a reader can see which side
//! saturated.
//!
//! ## Design
//! Plain std threads with blocking sockets, one thread per WAMP session
//! ([`conn::Conn`]); writes are coalesced into one buffer per connection and
//! flushed once per batch. The protocol pieces come from `wamp-proto`
//! (messages, serializers) and `wamp-framing` (RawSocket, masked WebSocket
//! frames); connections, the client half of WebSocket, authentication and
//! TLS come from `wamp-client` (re-exported here as [`conn`], [`wsclient`],
//! [`auth`], [`target`], [`tls`]).
//!
//! ## What it is not
//! Not part of the router and never linked into `junction`. Not a WAMP
//! client library: sessions do only what the scenarios need (anonymous,
//! ticket and cryptosign authentication only; no TLS channel binding, no
//! reconnects). Errors inside the tool
//! are reported with `anyhow` at the scenario level; the protocol pieces
//! ([`target`], [`wsclient`], [`conn`]) have typed errors.

pub mod common;
// The client pieces live in `wamp-client`; re-exported under their old paths.
pub use wamp_client::{auth, conn, target, tls, wsclient};
pub mod connect;
pub mod mixed;
pub mod procstat;
pub mod pubsub;
pub mod report;
pub mod rpc;
pub mod stats;
