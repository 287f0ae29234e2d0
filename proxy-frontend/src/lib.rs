//! # proxy-frontend: proxy workers (web clusters)
//!
//! (essay being written)

use std::path::Path;

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
        let _ = (cfg, worker, key, base_dir);
        Err(ProxyError::Setup("proxy workers are being implemented".into()))
    }

    /// Re-reads TLS certificates and keys of every TLS transport; new
    /// connections use them, established ones keep theirs.
    pub fn reload_certificates(&self) -> Result<usize, ProxyError> {
        Ok(0)
    }

    /// One-line counters summary for logs.
    pub fn summary(&self) -> String {
        String::new()
    }
}
