//! # proxy-frontend: proxy workers (web clusters)
//!
//! **What it is.** Junction's proxy worker: the internet-facing connection
//! layer of a deployment. A proxy worker
//!
//! - listens on the same transports a router does (WebSocket, RawSocket over
//!   TCP or Unix sockets, `web` transports with paths), with TLS by rustls,
//!   with every serializer, sharing ports with sibling proxy processes
//!   (`endpoint.shared` → `SO_REUSEPORT`);
//! - authenticates clients itself with the same methods and config shape as
//!   a router (anonymous, ticket, WAMP-CRA, cryptosign, SCRAM, TLS client
//!   certificates, dynamic authenticators called on the backend realm over
//!   the link). A client never gets a role it was not granted: anonymous
//!   clients get the configured anonymous role;
//! - picks a router worker for each authenticated session by
//!   `(realm, authrole)` from `routes`, balancing across a worker group
//!   (round-robin or least-sessions) and skipping unhealthy links;
//! - carries the session over a **proxy link** (`wamp_framing::link`): a
//!   few long-lived, multiplexed connections per router worker, proven with
//!   the node's Ed25519 key, on which the router admits the session with the
//!   identity the proxy established. After authentication the proxy forwards
//!   the client's messages byte for byte; it never decodes or re-encodes
//!   them;
//! - closes the sessions of a router worker that goes away with a clear
//!   reason (`junction.close.router_lost`), sends new sessions to the
//!   survivors at once, and reconnects when the worker is back.
//!
//! Each shard (a pinned glommio executor) owns its clients and its own links;
//! shards share only read-only setup and counters.
//!
//! **What it is not.** It is not a router: it keeps no subscriptions or
//! registrations, applies no authorization (the router does, with the
//! forwarded role), and never routes a message between two clients itself.
//! It does not speak Crossbar's proxy-to-router protocol (WAMP sessions with
//! `cryptosign-proxy` authentication, one connection per session); Junction
//! proxies talk only to Junction routers.

pub mod backend;
pub mod front;
pub mod node;
pub mod setup;

use std::path::Path;
use std::sync::Arc;

pub use router_core::runtime::EndpointSetup;

/// Errors starting or running a proxy worker.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The configuration cannot be run.
    #[error("{0}")]
    Setup(String),
}

/// A running proxy worker (this process).
pub struct ProxyWorker {
    /// The bound frontend endpoints, in transport order.
    pub endpoints: Vec<EndpointSetup>,
    shared: Arc<node::ProxyShared>,
}

impl ProxyWorker {
    /// Starts proxy worker `worker` (index into `cfg.workers`, which must be
    /// a proxy worker). `key` is the node key it proves itself with to router
    /// workers; relative paths in the config resolve against `base_dir`.
    /// Returns once every shard accepts connections.
    pub fn start(
        cfg: &junction_config::NodeConfig,
        worker: usize,
        key: cluster_membership::NodeKey,
        base_dir: &Path,
    ) -> Result<ProxyWorker, ProxyError> {
        let setup = setup::ProxySetup::from_config(cfg, worker, key, base_dir)?;
        let (endpoints, shared) = node::start(setup)?;
        Ok(ProxyWorker { endpoints, shared })
    }

    /// Re-reads TLS certificates and keys of every TLS transport; new
    /// connections use them, established ones keep theirs.
    pub fn reload_certificates(&self) -> Result<usize, ProxyError> {
        router_core::runtime::node::reload_certificates(&self.shared.setup.transports)
            .map_err(|e| ProxyError::Setup(e.to_string()))
    }

    /// One-line counters summary for logs.
    pub fn summary(&self) -> String {
        let sessions: usize = self.shared.sessions.iter().map(|s| s.load(std::sync::atomic::Ordering::Relaxed)).sum();
        format!("sessions={sessions} {}", self.shared.stats.summary())
    }
}
