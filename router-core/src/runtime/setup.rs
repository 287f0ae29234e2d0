//! The router worker's resolved setup: what the runtime needs from the node
//! config, with every default applied and every value checked. Built once at
//! start-up, shared read-only by all shards (`Arc`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use wamp_proto::Serializer;

use crate::engine::Role;

/// Everything a router worker runs on.
#[derive(Clone, Debug)]
pub struct RouterSetup {
    /// Number of shards (glommio executors, one thread each).
    pub shards: usize,
    /// Pin shard `i` to the `i`-th available CPU.
    pub pin_cores: bool,
    /// Locked memory glommio reserves per shard for I/O buffers (bytes).
    pub io_memory: usize,
    pub realms: Vec<RealmSetup>,
    pub transports: Vec<TransportSetup>,
    /// Ed25519 public keys of proxy workers allowed to open multiplexed
    /// proxy links and forward authenticated identities (the node's own key,
    /// plus `cryptosign-proxy` principals of the transports).
    pub trusted_proxy_keys: Vec<[u8; 32]>,
    /// The node key this worker proves when it dials router-to-router
    /// links (`rlinks`); `None`: it cannot dial (config without a node key).
    pub node_key: Option<cluster_membership::NodeKey>,
    /// The worker's name (config `id`), for peers' logs and link status.
    pub name: String,
}

/// One realm and the shard that routes it.
#[derive(Clone, Debug)]
pub struct RealmSetup {
    pub name: String,
    pub roles: Vec<Role>,
    /// Pinned home shard; `None` = chosen by hashing the realm name.
    pub home_shard: Option<usize>,
    /// Most concurrent sessions; HELLO beyond it is refused with ABORT.
    pub max_sessions: usize,
    /// Dealer limits and timeouts.
    pub dealer: crate::engine::DealerConfig,
    /// Retention caps and event history.
    pub broker: crate::engine::BrokerSpec,
    /// Serve the WAMP meta API on this realm.
    pub enable_meta_api: bool,
    /// Router-to-router links started with the worker (config `rlinks`).
    pub rlinks: Vec<super::rlink::RLinkSetup>,
}

/// A listening endpoint.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EndpointSetup {
    /// `reuse_port`: `SO_REUSEPORT` (config `shared: true`).
    Tcp {
        addr: SocketAddr,
        backlog: u32,
        reuse_port: bool,
        /// Bind the first free port of this range instead of `addr`'s port
        /// (config `portrange`).
        portrange: Option<(u16, u16)>,
    },
    Unix {
        path: PathBuf,
    },
}

impl std::fmt::Display for EndpointSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EndpointSetup::Tcp { addr, .. } => write!(f, "tcp:{addr}"),
            EndpointSetup::Unix { path } => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Which framing a transport speaks.
#[derive(Clone, Debug)]
pub enum FramingSetup {
    /// WebSocket; the request path picks the service.
    WebSocket {
        services: Vec<WsServiceSetup>,
        /// The non-WebSocket services of a `web` transport (static files,
        /// redirects, JSON values, node info), answering plain HTTP requests.
        site: Option<std::sync::Arc<junction_web::WebSite>>,
    },
    RawSocket(RawSocketSetup),
}

/// One WAMP-over-WebSocket service.
#[derive(Clone, Debug)]
pub struct WsServiceSetup {
    /// Request path (`/ws`); `None` = any path.
    pub path: Option<String>,
    /// Serializers accepted, in preference order.
    pub serializers: Vec<Serializer>,
    pub max_frame_size: usize,
    pub max_message_size: usize,
    pub allowed_origins: Vec<String>,
    pub require_subprotocol: bool,
    /// Send a PING this often (None = never) ...
    pub auto_ping_interval: Option<Duration>,
    /// ... and close the connection if nothing arrives within this time after it.
    pub auto_ping_timeout: Duration,
    pub auto_ping_size: usize,
    /// Authentication methods of this service.
    pub auth: std::sync::Arc<wamp_auth::AuthConfig>,
}

/// A RawSocket transport.
#[derive(Clone, Debug)]
pub struct RawSocketSetup {
    pub serializers: Vec<Serializer>,
    pub max_message_size: usize,
    pub auto_ping_interval: Option<Duration>,
    pub auto_ping_timeout: Duration,
    /// Authentication methods of this transport.
    pub auth: std::sync::Arc<wamp_auth::AuthConfig>,
}

/// One listening transport.
#[derive(Clone, Debug)]
pub struct TransportSetup {
    /// Name for logs and transport details (config `id` or `transportN`).
    pub id: String,
    pub endpoint: EndpointSetup,
    pub framing: FramingSetup,
    /// Time allowed from accept to HELLO (transport handshake included).
    pub open_handshake_timeout: Duration,
    /// Largest HTTP request head accepted in a WebSocket upgrade.
    pub max_handshake_size: usize,
    pub limits: ConnectionLimits,
    /// Budget of failed authentications per peer address (per shard).
    pub auth_limits: wamp_auth::LimiterConfig,
    /// TLS (`wss://`, RawSocket over TLS) when set.
    pub tls: Option<std::sync::Arc<super::tls::TlsSource>>,
}

/// Per-connection and per-transport limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Concurrent connections on this transport (per node).
    pub max_connections: usize,
    /// Bytes queued for one connection that the socket has not taken yet;
    /// beyond it the connection is closed (a slow consumer).
    pub max_outbound_bytes: usize,
    /// Messages queued for one connection, likewise.
    pub max_outbound_messages: usize,
    /// What happens to a consumer over these limits.
    pub slow_consumer_policy: SlowConsumerPolicy,
}

/// What happens when a connection's outbound queue is full.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default)]
pub enum SlowConsumerPolicy {
    /// Close the connection (ABORT with a reason, then close).
    #[default]
    Close,
    /// Drop EVENTs for that subscriber (counted); any other message that
    /// does not fit still closes the connection.
    Drop,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: 100_000,
            max_outbound_bytes: 16 << 20,
            max_outbound_messages: 65_536,
            slow_consumer_policy: SlowConsumerPolicy::Close,
        }
    }
}

/// The home shard of `realm` among `shards`: the pinned one, else a hash
/// of the name (FNV-1a: stable across runs and builds).
pub fn home_shard_of(realm: &RealmSetup, shards: usize) -> usize {
    let shards = shards.max(1);
    match realm.home_shard {
        Some(s) => s % shards,
        None => {
            let mut h: u64 = 0xcbf29ce484222325;
            for b in realm.name.as_bytes() {
                h ^= *b as u64;
                h = h.wrapping_mul(0x100000001b3);
            }
            (h % shards as u64) as usize
        }
    }
}

/// The realms a worker serves right now: those of the setup, plus the ones
/// started at run time ([`super::RouterNode::start_realm`]), minus the ones
/// stopped. Shared by all shards; read when a session or link opens (never
/// per message), written only by start and stop.
#[derive(Debug)]
pub struct RealmTable {
    shards: usize,
    realms: std::sync::RwLock<Vec<std::sync::Arc<RealmSetup>>>,
    /// Each served realm's message counts (set by its home shard once the
    /// realm runs; read by metrics scrapes on any shard).
    counts: std::sync::RwLock<Vec<(String, std::sync::Arc<crate::engine::MessageCounts>)>>,
}

impl RealmTable {
    /// The realms of `setup`.
    pub fn new(setup: &RouterSetup) -> RealmTable {
        RealmTable {
            shards: setup.shards,
            realms: std::sync::RwLock::new(setup.realms.iter().cloned().map(std::sync::Arc::new).collect()),
            counts: std::sync::RwLock::new(Vec::new()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Vec<std::sync::Arc<RealmSetup>>> {
        self.realms.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The realm called `name`, if it is being served.
    pub fn get(&self, name: &str) -> Option<std::sync::Arc<RealmSetup>> {
        self.read().iter().find(|r| r.name == name).cloned()
    }

    /// The home shard of the realm called `name`, if it is being served.
    pub fn home(&self, name: &str) -> Option<usize> {
        self.get(name).map(|r| home_shard_of(&r, self.shards))
    }

    /// True if the realm exists and has the role.
    pub fn has_role(&self, realm: &str, role: &str) -> bool {
        self.read().iter().any(|r| r.name == realm && r.roles.iter().any(|x| x.name == role))
    }

    /// The names of the realms being served, in start order.
    pub fn names(&self) -> Vec<String> {
        self.read().iter().map(|r| r.name.clone()).collect()
    }

    /// Adds a realm; false if one of that name is served already.
    pub(crate) fn insert(&self, realm: std::sync::Arc<RealmSetup>) -> bool {
        let mut w = self.realms.write().unwrap_or_else(|e| e.into_inner());
        if w.iter().any(|r| r.name == realm.name) {
            return false;
        }
        w.push(realm);
        true
    }

    /// Replaces the setup of realm `name` with `f` applied to a copy (e.g.
    /// a role added); false if it is not served.
    pub(crate) fn update(&self, name: &str, f: impl FnOnce(&mut RealmSetup)) -> bool {
        let mut w = self.realms.write().unwrap_or_else(|e| e.into_inner());
        let Some(r) = w.iter_mut().find(|r| r.name == name) else { return false };
        let mut copy = (**r).clone();
        f(&mut copy);
        *r = std::sync::Arc::new(copy);
        true
    }

    /// Removes a realm (and its message counts); false if it was not served.
    pub(crate) fn remove(&self, name: &str) -> bool {
        self.counts.write().unwrap_or_else(|e| e.into_inner()).retain(|(r, _)| r != name);
        let mut w = self.realms.write().unwrap_or_else(|e| e.into_inner());
        let before = w.len();
        w.retain(|r| r.name != name);
        w.len() != before
    }

    /// Publishes the message counts of realm `name` (replacing earlier ones).
    pub(crate) fn set_counts(&self, name: &str, counts: std::sync::Arc<crate::engine::MessageCounts>) {
        let mut w = self.counts.write().unwrap_or_else(|e| e.into_inner());
        match w.iter_mut().find(|(r, _)| r == name) {
            Some(slot) => slot.1 = counts,
            None => w.push((name.to_owned(), counts)),
        }
    }

    /// Every running realm's message counts, in start order.
    pub fn message_counts(&self) -> Vec<(String, std::sync::Arc<crate::engine::MessageCounts>)> {
        self.counts.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// One transport as the running worker holds it: its setup and the state
/// every shard shares for it.
#[derive(Debug)]
pub struct TransportEntry {
    pub setup: std::sync::Arc<TransportSetup>,
    /// Open connections (the `max_connections` limit).
    pub conn_count: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    /// Failed-authentication budgets, keyed by peer IP.
    pub limiter: std::sync::Arc<std::sync::Mutex<wamp_auth::FailureLimiter>>,
    /// More node keys trusted for proxy links on this transport than the
    /// worker's own (`cryptosign-proxy` principals of a transport started at
    /// run time).
    pub proxy_keys: Vec<[u8; 32]>,
    /// Stopped at run time: it accepts nothing more.
    pub stopped: std::sync::atomic::AtomicBool,
}

impl TransportEntry {
    /// The entry of `setup`, with fresh counters.
    pub fn new(setup: TransportSetup, proxy_keys: Vec<[u8; 32]>) -> TransportEntry {
        TransportEntry {
            conn_count: std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0)),
            limiter: std::sync::Arc::new(std::sync::Mutex::new(wamp_auth::FailureLimiter::new(setup.auth_limits))),
            setup: std::sync::Arc::new(setup),
            proxy_keys,
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }
}

/// The transports of a worker: those of its setup, then those started at
/// run time, by index (append-only: an index always names the same
/// transport, stopped ones included).
#[derive(Debug)]
pub struct TransportTable {
    entries: std::sync::RwLock<Vec<std::sync::Arc<TransportEntry>>>,
}

impl TransportTable {
    /// The table of `transports`.
    pub fn new(transports: &[TransportSetup]) -> TransportTable {
        let entries =
            transports.iter().map(|t| std::sync::Arc::new(TransportEntry::new(t.clone(), Vec::new()))).collect();
        TransportTable { entries: std::sync::RwLock::new(entries) }
    }

    /// Transport `i`. Indices come from this table (the accept loops get
    /// theirs from [`TransportTable::push`]), so they always exist.
    pub fn get(&self, i: usize) -> std::sync::Arc<TransportEntry> {
        let r = self.entries.read().unwrap_or_else(|e| e.into_inner());
        r.get(i).cloned().unwrap_or_else(|| panic!("transport index {i} was never issued by this table"))
    }

    /// Every transport, stopped ones included, by index.
    pub fn all(&self) -> Vec<std::sync::Arc<TransportEntry>> {
        self.entries.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Gives transport `i` a new setup (its services changed: the
    /// management API's `start_web_transport_service`). Connections
    /// accepted from now on use it; established ones keep theirs. The
    /// listener, the connection count, the failure budgets, the trusted
    /// proxy keys and the stopped flag stay; the endpoint stays the bound
    /// one whatever `setup` says. `false` if there is no transport `i`.
    pub fn replace_setup(&self, i: usize, mut setup: TransportSetup) -> bool {
        let mut w = self.entries.write().unwrap_or_else(|e| e.into_inner());
        let Some(old) = w.get(i).cloned() else { return false };
        setup.endpoint = old.setup.endpoint.clone();
        setup.id = old.setup.id.clone();
        w[i] = std::sync::Arc::new(TransportEntry {
            setup: std::sync::Arc::new(setup),
            conn_count: old.conn_count.clone(),
            limiter: old.limiter.clone(),
            proxy_keys: old.proxy_keys.clone(),
            stopped: std::sync::atomic::AtomicBool::new(old.stopped.load(std::sync::atomic::Ordering::Relaxed)),
        });
        true
    }

    /// Adds a transport; its index.
    pub fn push(&self, entry: TransportEntry) -> usize {
        let mut w = self.entries.write().unwrap_or_else(|e| e.into_inner());
        w.push(std::sync::Arc::new(entry));
        w.len() - 1
    }
}

impl RouterSetup {
    /// The home shard of `realm`.
    pub fn home_shard(&self, realm: &RealmSetup) -> usize {
        home_shard_of(realm, self.shards)
    }

    /// Finds a realm by name.
    pub fn realm(&self, name: &str) -> Option<&RealmSetup> {
        self.realms.iter().find(|r| r.name == name)
    }
}
