//! The proxy worker's resolved setup: built once from the node config,
//! shared read-only by every shard.

use std::collections::HashMap;
use std::time::Duration;

use cluster_membership::NodeKey;
use junction_config::{BalancePolicy, NodeConfig, WorkerConfig};
use router_core::runtime::TransportSetup;
use rustls as rustls_client;

use crate::ProxyError;

/// Where a backend connection goes.
pub use router_core::runtime::dial::DialAddr as BackendAddr;

/// One configured backend connection (`connections.<name>`).
#[derive(Clone, Debug)]
pub struct BackendSetup {
    pub name: String,
    pub realm: String,
    pub addr: BackendAddr,
    /// TLS: client config and the name the router's certificate must match.
    pub tls: Option<(std::sync::Arc<rustls_client::ClientConfig>, String)>,
}

/// Routes of one realm: role → backend indices.
#[derive(Clone, Debug, Default)]
pub struct RealmRoutes {
    pub by_role: HashMap<String, Vec<usize>>,
    /// The `"*"` route, for roles not listed.
    pub any: Option<Vec<usize>>,
}

impl RealmRoutes {
    /// The backends for a role.
    pub fn for_role(&self, role: &str) -> Option<&[usize]> {
        self.by_role.get(role).or(self.any.as_ref()).map(|v| v.as_slice())
    }
}

/// Everything a proxy worker runs on.
#[derive(Debug)]
pub struct ProxySetup {
    /// Worker name (config `id`, or `proxy<index>`).
    pub name: String,
    pub shards: usize,
    pub pin_cores: bool,
    pub io_memory: usize,
    pub transports: Vec<TransportSetup>,
    pub routes: HashMap<String, RealmRoutes>,
    pub backends: Vec<BackendSetup>,
    pub balance: BalancePolicy,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    pub reconnect_max: Duration,
    pub link_max_outbound_bytes: usize,
    /// The node key proven to routers.
    pub key: NodeKey,
    /// When the worker started (node info).
    pub started: std::time::SystemTime,
}

impl ProxySetup {
    /// Builds the setup of proxy worker `worker` of `cfg`.
    pub fn from_config(
        cfg: &NodeConfig,
        worker: usize,
        key: NodeKey,
        base_dir: &std::path::Path,
    ) -> Result<ProxySetup, ProxyError> {
        let Some(WorkerConfig::Proxy(p)) = cfg.workers.get(worker) else {
            return Err(ProxyError::Setup(format!("worker {worker} is not a proxy worker")));
        };
        let secret: [u8; 32] = rand::random();
        let transports = p
            .transports
            .iter()
            .enumerate()
            .map(|(i, t)| router_core::runtime::from_config::transport_setup(i, t, secret, base_dir))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| ProxyError::Setup(e.to_string()))?;
        let mut backends = Vec::new();
        let mut index = HashMap::new();
        for (name, c) in &p.connections {
            let (addr, tls) = router_core::runtime::from_config::dial_target(&c.endpoint, base_dir)
                .map_err(|e| ProxyError::Setup(format!("connection '{name}': {e}")))?;
            index.insert(name.clone(), backends.len());
            backends.push(BackendSetup { name: name.clone(), realm: c.realm.clone(), addr, tls });
        }
        let mut routes = HashMap::new();
        for (realm, roles) in &p.routes {
            let mut rr = RealmRoutes::default();
            for (role, names) in roles {
                let idx = names
                    .iter()
                    .map(|n| {
                        index.get(n).copied().ok_or_else(|| ProxyError::Setup(format!("unknown connection '{n}'")))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                if role == "*" {
                    rr.any = Some(idx);
                } else {
                    rr.by_role.insert(role.clone(), idx);
                }
            }
            routes.insert(realm.clone(), rr);
        }
        Ok(ProxySetup {
            name: p.id.clone().unwrap_or_else(|| format!("proxy{worker}")),
            shards: p.options.effective_shards(),
            pin_cores: p.options.pin_cores,
            io_memory: router_core::runtime::from_config::DEFAULT_IO_MEMORY,
            transports,
            routes,
            backends,
            balance: p.options.balance,
            ping_interval: p.options.backend_ping_interval,
            ping_timeout: p.options.backend_ping_timeout,
            reconnect_max: p.options.backend_reconnect_max,
            link_max_outbound_bytes: p.options.backend_max_outbound_bytes,
            key,
            started: std::time::SystemTime::now(),
        })
    }
}
