//! # router-core: the Junction router worker
//!
//! A router worker routes WAMP messages between the sessions of its realms:
//! the Broker (publish/subscribe) and the Dealer (routed RPC), with
//! authorization by the realm's roles. It has two halves:
//!
//! * [`engine`] — the router as a sans-IO state machine for one realm:
//!   decoded messages in (`Realm::handle_message`), encoded bytes out
//!   (`Realm::poll_transmit`). No sockets, no clock, no threads; tested with
//!   in-memory sessions.
//! * [`runtime`] — the thread-per-core shell around it: glommio executors
//!   pinned one per core, each owning the realms homed on it; listeners;
//!   WebSocket and RawSocket connections over TCP and Unix sockets; the
//!   hand-off of a connection to its realm's home shard after HELLO; the
//!   lock-free session directory; write coalescing and outbound limits.
//!
//! It is not a client library, not a proxy (see `proxy-frontend`) and not a
//! cluster (see `cluster-membership`): one router worker process, one node.
//! `docs/architecture.md` draws the path of a message through it.

pub mod engine;
pub mod runtime;

pub use runtime::from_config::{setup_from_config, setup_from_worker};
pub use runtime::RouterNode;

/// Errors starting a router worker.
#[derive(Debug, thiserror::Error)]
pub enum RouterError {
    /// A listening socket could not be bound.
    #[error("cannot listen on {endpoint}: {source}")]
    Bind {
        endpoint: String,
        #[source]
        source: std::io::Error,
    },
    /// The setup is unusable.
    #[error("{0}")]
    Setup(String),
}
