//! The typed configuration. Every struct here has its defaults already
//! applied; `docs/config.md` names the JSON key behind each field.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use indexmap::IndexMap;
use wamp_proto::Serializer;

use crate::error::ConfigError;

/// Default WebSocket / RawSocket `max_message_size`: 16 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// Default WebSocket `max_frame_size`: 16 MiB.
pub const DEFAULT_MAX_FRAME_SIZE: usize = 16 * 1024 * 1024;
/// Smallest accepted `max_message_size` / `max_frame_size` (a RawSocket
/// handshake cannot announce less, and WAMP handshakes need some room).
pub const MIN_MESSAGE_SIZE: usize = 512;
/// Largest accepted WebSocket `max_message_size` / `max_frame_size`: 64 MiB
/// (Crossbar's limit too).
pub const MAX_WEBSOCKET_MESSAGE_SIZE: usize = 64 * 1024 * 1024;
/// Largest accepted RawSocket `max_message_size`: 16 MiB (2^24, the most a
/// RawSocket handshake can announce).
pub const MAX_RAWSOCKET_MESSAGE_SIZE: usize = 16 * 1024 * 1024;
/// Default per-transport connection limit.
pub const DEFAULT_MAX_CONNECTIONS: usize = 100_000;
/// Default per-connection outbound queue limit in bytes: 16 MiB.
pub const DEFAULT_MAX_OUTBOUND_BYTES: usize = 16 * 1024 * 1024;
/// Default per-connection outbound queue limit in messages.
pub const DEFAULT_MAX_OUTBOUND_MESSAGES: usize = 65_536;
/// Default per-realm session limit.
pub const DEFAULT_MAX_SESSIONS: usize = 1_000_000;
/// Default listen backlog.
pub const DEFAULT_BACKLOG: u32 = 1024;
/// Default opening-handshake timeout (WebSocket and RawSocket).
pub const DEFAULT_OPEN_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default WebSocket closing-handshake timeout.
pub const DEFAULT_CLOSE_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(1);
/// Default WebSocket auto-ping payload size.
pub const DEFAULT_AUTO_PING_SIZE: usize = 4;
/// Longest Unix socket path (bytes) that fits `sockaddr_un.sun_path` with its
/// terminating NUL on Linux.
pub const MAX_UNIX_PATH_LEN: usize = 107;
/// Largest accepted `shards` value.
pub const MAX_SHARDS: usize = 4096;
/// Default realm `max_pending_calls_per_session` (dealer).
pub const DEFAULT_MAX_PENDING_CALLS_PER_SESSION: usize = 1000;
/// Default realm `kill_grace` (dealer): 10 s.
pub const DEFAULT_KILL_GRACE: Duration = Duration::from_secs(10);
/// Default realm `max_retained_topics` (broker).
pub const DEFAULT_MAX_RETAINED_TOPICS: usize = 10_000;
/// Default realm `max_stored_payload` (broker): 64 KiB.
pub const DEFAULT_MAX_STORED_PAYLOAD: usize = 64 * 1024;
/// Default `store.limit`: events kept per `event-history` entry without its
/// own `limit` (Crossbar's default, 100).
pub const DEFAULT_EVENT_HISTORY_LIMIT: usize = 100;
/// Largest accepted event-history `limit` (per entry and `store.limit`).
pub const MAX_EVENT_HISTORY_LIMIT: usize = 1_000_000;

/// A whole node configuration (`config.json` / `config.yaml`).
#[derive(Debug, Clone, PartialEq)]
pub struct NodeConfig {
    /// Config format version; only `2` is accepted.
    pub version: u32,
    /// The `controller` block (kept, mostly unused by Junction).
    pub controller: ControllerConfig,
    /// The workers: any number of router and proxy workers (at least one
    /// worker).
    pub workers: Vec<WorkerConfig>,
    /// Non-fatal findings (ignored Crossbar options, roles no realm defines,
    /// ...). Filled by [`crate::parse_str`]/[`crate::load`]; not part of
    /// [`NodeConfig::validate`]'s verdict.
    pub warnings: Vec<ConfigError>,
}

impl NodeConfig {
    /// The first router worker, if there is one.
    pub fn router(&self) -> Option<&RouterWorkerConfig> {
        self.routers().next().map(|(_, r)| r)
    }

    /// Every router worker with its index in [`NodeConfig::workers`], in
    /// file order.
    pub fn routers(&self) -> impl Iterator<Item = (usize, &RouterWorkerConfig)> + '_ {
        self.workers.iter().enumerate().filter_map(|(i, w)| match w {
            WorkerConfig::Router(r) => Some((i, r)),
            _ => None,
        })
    }

    /// Every proxy worker with its index in [`NodeConfig::workers`], in file
    /// order.
    pub fn proxies(&self) -> impl Iterator<Item = (usize, &ProxyWorkerConfig)> + '_ {
        self.workers.iter().enumerate().filter_map(|(i, w)| match w {
            WorkerConfig::Proxy(p) => Some((i, p)),
            _ => None,
        })
    }
}

/// The `controller` block.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ControllerConfig {
    /// Node id (`controller.id`), if given.
    pub id: Option<String>,
    /// `controller.options`, kept verbatim. Junction reads `node_key` (see
    /// [`ControllerConfig::node_key`]); other keys are kept unused.
    pub options: serde_json::Map<String, serde_json::Value>,
    /// `controller.fabric`: this node is managed by a master
    /// (`junction edge start`).
    pub fabric: Option<FabricConfig>,
}

/// `controller.fabric` (Crossbar's managed-node settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FabricConfig {
    /// The master's management transport URL (`transport.url`, or
    /// `ws://host:port/ws` from `transport.endpoint`); `None`: from
    /// `CROSSBAR_FABRIC_URL`.
    pub url: Option<String>,
    /// `heartbeat.startup_delay` (seconds, Crossbar's unit): wait before the
    /// first heartbeat.
    pub startup_delay: std::time::Duration,
    /// `heartbeat.heartbeat_period` (seconds).
    pub heartbeat_period: std::time::Duration,
}

impl Default for FabricConfig {
    fn default() -> Self {
        FabricConfig {
            url: None,
            startup_delay: std::time::Duration::from_secs(5),
            heartbeat_period: std::time::Duration::from_secs(10),
        }
    }
}

impl ControllerConfig {
    /// Junction extension `controller.options.node_key`: path of the node's
    /// Ed25519 key file (proxy workers prove it to routers). Relative paths
    /// are relative to the config file's directory (the runtime resolves
    /// them). `None` when absent (or, in an unvalidated config, not a
    /// non-empty string).
    pub fn node_key(&self) -> Option<PathBuf> {
        match self.options.get("node_key") {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(PathBuf::from(s)),
            _ => None,
        }
    }
}

/// One entry of `workers`.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkerConfig {
    /// `type: router`.
    Router(RouterWorkerConfig),
    /// `type: proxy`: accepts client connections and forwards sessions to
    /// router workers.
    Proxy(ProxyWorkerConfig),
    /// Any other worker type (`container`, `guest`, ...). Kept so that
    /// locations of later workers stay right; never present in a config that
    /// passed validation.
    Unsupported {
        /// The worker `type`.
        kind: String,
    },
}

/// Default proxy `options.backend_ping_interval`: 1 s.
pub const DEFAULT_BACKEND_PING_INTERVAL: Duration = Duration::from_secs(1);
/// Default proxy `options.backend_ping_timeout`: 3 s.
pub const DEFAULT_BACKEND_PING_TIMEOUT: Duration = Duration::from_secs(3);
/// Default proxy `options.backend_reconnect_max`: 1 s.
pub const DEFAULT_BACKEND_RECONNECT_MAX: Duration = Duration::from_secs(1);
/// Default proxy `options.backend_max_outbound_bytes`: 64 MiB.
pub const DEFAULT_BACKEND_MAX_OUTBOUND_BYTES: usize = 64 * 1024 * 1024;
/// Route role key meaning "any role not listed" (Junction extension).
pub const ANY_ROLE: &str = "*";

/// A `type: proxy` worker (Crossbar's proxy worker shape): it terminates
/// client transports, authenticates clients, and forwards each session to a
/// router worker chosen by `routes`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyWorkerConfig {
    /// `id`, if given.
    pub id: Option<String>,
    /// Worker `options` (Junction extensions).
    pub options: ProxyOptions,
    /// Listening transports (the same kinds as a router's), at least one.
    pub transports: Vec<TransportConfig>,
    /// `routes`: realm → authrole → connection names, in file order. A
    /// single name in the file becomes a one-element list. The role
    /// [`ANY_ROLE`] (`"*"`) stands for every role not listed.
    pub routes: IndexMap<String, IndexMap<String, Vec<String>>>,
    /// `connections`: name → backend router connection, in file order.
    pub connections: IndexMap<String, ProxyConnectionConfig>,
}

impl ProxyWorkerConfig {
    /// Connection names for a session of `role` on `realm`: the role's own
    /// route, else the `"*"` route; `None` if the realm or role is not
    /// routed.
    pub fn route(&self, realm: &str, role: &str) -> Option<&[String]> {
        let roles = self.routes.get(realm)?;
        roles.get(role).or_else(|| roles.get(ANY_ROLE)).map(Vec::as_slice)
    }
}

/// Proxy worker `options`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyOptions {
    /// Number of glommio shards (threads); `None` = one per available core.
    pub shards: Option<usize>,
    /// Pin each shard to one CPU (default `true`).
    pub pin_cores: bool,
    /// How a session picks one of several connections of its route
    /// (`balance`, default `round_robin`).
    pub balance: BalancePolicy,
    /// Ping each backend link after this much idle time
    /// (`backend_ping_interval`, ms; default 1 s).
    pub backend_ping_interval: Duration,
    /// A backend link whose ping is not answered within this time is
    /// dropped (`backend_ping_timeout`, ms; default 3 s).
    pub backend_ping_timeout: Duration,
    /// Largest delay between reconnect attempts to a backend; the backoff
    /// doubles up to it (`backend_reconnect_max`, ms; default 1 s).
    pub backend_reconnect_max: Duration,
    /// Most bytes queued for sending on one backend link
    /// (`backend_max_outbound_bytes`, default 64 MiB).
    pub backend_max_outbound_bytes: usize,
    /// Process title (Crossbar's `title`), informational.
    pub title: Option<String>,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            shards: None,
            pin_cores: true,
            balance: BalancePolicy::RoundRobin,
            backend_ping_interval: DEFAULT_BACKEND_PING_INTERVAL,
            backend_ping_timeout: DEFAULT_BACKEND_PING_TIMEOUT,
            backend_reconnect_max: DEFAULT_BACKEND_RECONNECT_MAX,
            backend_max_outbound_bytes: DEFAULT_BACKEND_MAX_OUTBOUND_BYTES,
            title: None,
        }
    }
}

impl ProxyOptions {
    /// Shards to start: `shards`, or the number of available cores.
    pub fn effective_shards(&self) -> usize {
        self.shards.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }
}

/// How a proxy picks one of the connections of a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum BalancePolicy {
    /// `round_robin`: each new session takes the next healthy connection
    /// (default).
    #[default]
    RoundRobin,
    /// `least_sessions`: the healthy connection forwarding the fewest
    /// sessions.
    LeastSessions,
}

impl BalancePolicy {
    /// Config name: `round_robin` or `least_sessions`.
    pub fn name(self) -> &'static str {
        match self {
            BalancePolicy::RoundRobin => "round_robin",
            BalancePolicy::LeastSessions => "least_sessions",
        }
    }
}

/// One entry of a proxy's `connections`: a link to a router worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyConnectionConfig {
    /// The realm this connection serves (`realm`); a route may only use
    /// connections of its own realm.
    pub realm: String,
    /// Where the router listens (`transport.endpoint`): a router `rawsocket`
    /// transport whose `auth` has `cryptosign-proxy`.
    pub endpoint: BackendEndpoint,
}

/// TLS on a proxy-to-router link (`connections.<name>.transport.endpoint.tls`,
/// Crossbar's client TLS shape).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct BackendTls {
    /// PEM CA certificates the router's certificate must chain to
    /// (`ca_certificates`, required: links trust no system roots).
    pub ca_certificates: Vec<PathBuf>,
    /// Name the router's certificate must be valid for (`hostname`;
    /// default: the connection's `host`).
    pub hostname: Option<String>,
    /// Client certificate and key (`certificate`, `key`) for routers that
    /// require mutual TLS.
    pub client_cert: Option<(PathBuf, PathBuf)>,
}

/// Address of a router's RawSocket endpoint, as a proxy connects to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum BackendEndpoint {
    /// `type: tcp`: host name or IP address, and port.
    Tcp {
        /// `host` (a name is resolved by the runtime).
        host: String,
        /// `port`, 1..=65535.
        port: u16,
        /// `tls`: connect with TLS (the router transport must have
        /// `endpoint.tls`).
        tls: Option<BackendTls>,
    },
    /// `type: unix`: a Unix socket path (relative paths are relative to the
    /// config file's directory).
    Unix {
        /// `path`, at most 107 bytes.
        path: PathBuf,
    },
}

impl std::fmt::Display for BackendEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BackendEndpoint::Tcp { host, port, .. } if host.contains(':') => write!(f, "tcp:[{host}]:{port}"),
            BackendEndpoint::Tcp { host, port, .. } => write!(f, "tcp:{host}:{port}"),
            BackendEndpoint::Unix { path } => write!(f, "unix:{}", path.display()),
        }
    }
}

/// A `type: router` worker.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterWorkerConfig {
    /// `id`, if given.
    pub id: Option<String>,
    /// Worker `options` (Junction extensions included).
    pub options: RouterOptions,
    /// Realms started with the worker.
    pub realms: Vec<RealmConfig>,
    /// Listening transports.
    pub transports: Vec<TransportConfig>,
}

/// Router worker `options`.
#[derive(Debug, Clone, PartialEq)]
pub struct RouterOptions {
    /// Number of glommio shards (threads); `None` = one per available core.
    pub shards: Option<usize>,
    /// Pin each shard to one of the CPUs the process may run on (default
    /// `true`; thread-per-core relies on it).
    pub pin_cores: bool,
    /// Process title (Crossbar's `title`), informational.
    pub title: Option<String>,
}

impl Default for RouterOptions {
    fn default() -> Self {
        RouterOptions { shards: None, pin_cores: true, title: None }
    }
}

impl RouterOptions {
    /// Shards to start: `shards`, or the number of available cores.
    pub fn effective_shards(&self) -> usize {
        self.shards.unwrap_or_else(|| std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1))
    }
}

/// One realm.
#[derive(Debug, Clone, PartialEq)]
pub struct RealmConfig {
    /// Realm name (a loose WAMP URI).
    pub name: String,
    /// Roles sessions on this realm may be authenticated as.
    pub roles: Vec<RoleConfig>,
    /// Realm `options`.
    pub options: RealmOptions,
    /// Crossbar's realm `store` block (event history); `None` when absent
    /// (no event history is kept).
    pub store: Option<StoreConfig>,
    /// Crossbar's router-to-router links (`rlinks`): the other router
    /// workers serving this realm as one cluster.
    pub rlinks: Vec<RLinkConfig>,
}

/// One router-to-router link of a cluster realm (an `rlinks` entry,
/// Crossbar's shape). Junction links form a full mesh in which every
/// message crosses at most one link, so the Crossbar flags are fixed:
/// `forward_local_events` and `forward_local_invocations` must be `true`
/// (a worker that hid its events or callees from a peer would make the
/// realm behave differently depending on where a client is attached), and
/// `forward_remote_events` / `forward_remote_invocations` must be `false`
/// (relaying what arrived over another link is what makes Crossbar's
/// rlinks deliver twice and loop; in a full mesh every worker hears from
/// the source directly).
#[derive(Debug, Clone, PartialEq)]
pub struct RLinkConfig {
    /// `id`, unique among the realm's links.
    pub id: String,
    /// `realm`: the realm on the other worker (must be this realm).
    pub realm: String,
    /// `transport.endpoint`: a RawSocket transport of the other router
    /// worker whose `auth` has `cryptosign-proxy` trusting this node's key
    /// (or the same node).
    pub endpoint: BackendEndpoint,
    /// `authid`: a name for this worker in the peer's logs (default: the
    /// worker id).
    pub authid: Option<String>,
    /// Junction: ping the peer this often (ms, default 1000).
    pub ping_interval: Duration,
    /// Junction: drop the link when the peer is silent this long (ms,
    /// default 5000); it is redialed at once.
    pub ping_timeout: Duration,
    /// Junction: longest wait between two dial attempts (ms, default 5000).
    pub reconnect_max: Duration,
    /// Junction: most bytes queued towards the peer (default 64 MiB); a
    /// peer that does not drain its queue is disconnected, and resynced in
    /// full when it comes back.
    pub max_queue_bytes: usize,
}

/// Default `rlinks[].max_queue_bytes`.
pub const DEFAULT_RLINK_MAX_QUEUE_BYTES: usize = 64 * 1024 * 1024;

impl RealmConfig {
    /// The role called `name`, if defined.
    pub fn role(&self, name: &str) -> Option<&RoleConfig> {
        self.roles.iter().find(|r| r.name == name)
    }
}

/// Realm `options`.
#[derive(Debug, Clone, PartialEq)]
pub struct RealmOptions {
    /// Junction: shard that owns this realm's routing state; `None` = chosen
    /// by hashing the realm name.
    pub home_shard: Option<usize>,
    /// Junction: most concurrent sessions on this realm (default 1,000,000).
    pub max_sessions: usize,
    /// Crossbar: serve the `wamp.session.*`/`wamp.registration.*`/... meta
    /// API (default `true`).
    pub enable_meta_api: bool,
    /// Crossbar: URI checking for client-supplied URIs (default loose).
    pub uri_check: UriCheck,
    /// Junction: dealer limits and timeouts (flat keys in realm `options`).
    pub dealer: DealerOptions,
    /// Junction: broker retention limits (flat keys in realm `options`).
    pub broker: BrokerOptions,
}

impl Default for RealmOptions {
    fn default() -> Self {
        RealmOptions {
            home_shard: None,
            max_sessions: DEFAULT_MAX_SESSIONS,
            enable_meta_api: true,
            uri_check: UriCheck::Loose,
            dealer: DealerOptions::default(),
            broker: BrokerOptions::default(),
        }
    }
}

/// Junction extension: dealer settings of a realm (keys
/// `max_pending_calls_per_session`, `default_call_timeout`,
/// `max_call_timeout`, `kill_grace` in realm `options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DealerOptions {
    /// Calls one session may have in flight; further CALLs get an ERROR
    /// (default 1000, at least 1).
    pub max_pending_calls_per_session: usize,
    /// Timeout applied to calls that carry no `timeout` option; `None`
    /// (default, or `0`) = no timeout.
    pub default_call_timeout: Option<Duration>,
    /// Upper bound on every call's timeout, including calls without one;
    /// `None` (default, or `0`) = unbounded.
    pub max_call_timeout: Option<Duration>,
    /// How long a callee may take to answer the INTERRUPT of a `kill`
    /// cancel before the caller gets `wamp.error.canceled` anyway
    /// (default 10 s; `0` = immediately).
    pub kill_grace: Duration,
}

impl Default for DealerOptions {
    fn default() -> Self {
        DealerOptions {
            max_pending_calls_per_session: DEFAULT_MAX_PENDING_CALLS_PER_SESSION,
            default_call_timeout: None,
            max_call_timeout: None,
            kill_grace: DEFAULT_KILL_GRACE,
        }
    }
}

/// Junction extension: broker settings of a realm (keys
/// `max_retained_topics`, `max_stored_payload` in realm `options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BrokerOptions {
    /// Most topics holding a retained event at once; a `retain` publication
    /// to a new topic beyond this is not retained (default 10,000; `0`
    /// disables retention).
    pub max_retained_topics: usize,
    /// Largest payload (encoded args + kwargs, bytes) kept as a retained or
    /// event-history event (default 65,536).
    pub max_stored_payload: usize,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            max_retained_topics: DEFAULT_MAX_RETAINED_TOPICS,
            max_stored_payload: DEFAULT_MAX_STORED_PAYLOAD,
        }
    }
}

/// Crossbar's realm `store` block: where and which events are kept for
/// `wamp.subscription.get_events`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// Store `type` (only `memory` is supported).
    pub kind: StoreKind,
    /// `limit`: events kept per history entry without its own `limit`
    /// (default 100, Crossbar's).
    pub limit: usize,
    /// `event-history`: topics whose events are kept, in file order.
    pub event_history: Vec<EventHistoryConfig>,
}

/// Kind of realm store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoreKind {
    /// `type: memory`: kept in memory, lost on restart.
    #[default]
    Memory,
}

/// One `event-history` entry of a realm `store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventHistoryConfig {
    /// Topic URI or pattern (`uri`).
    pub uri: String,
    /// How `uri` matches (`match`; default exact).
    pub match_policy: MatchPolicy,
    /// Events kept, oldest dropped first (`limit`; default the store's
    /// `limit`), 1..=1,000,000.
    pub limit: usize,
}

/// How strictly URIs sent by clients are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UriCheck {
    /// Loose WAMP URI rules (no whitespace, `#`, or empty components).
    #[default]
    Loose,
    /// Strict rules (`[0-9a-z_]` components).
    Strict,
}

/// One role of a realm.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleConfig {
    /// Role name (the `authrole`).
    pub name: String,
    /// Static permissions, checked in order of specificity.
    pub permissions: Vec<PermissionConfig>,
    /// Crossbar's dynamic `authorizer` procedure: parsed, but not supported
    /// yet (validation reports it).
    pub authorizer: Option<String>,
}

/// One permission of a role.
#[derive(Debug, Clone, PartialEq)]
pub struct PermissionConfig {
    /// URI or URI pattern.
    pub uri: String,
    /// How `uri` matches (`match` key; default exact).
    pub match_policy: MatchPolicy,
    /// Allowed actions.
    pub allow: Allow,
    /// Identity disclosure.
    pub disclose: Disclose,
    /// Whether authorization decisions may be cached (default `false`).
    pub cache: bool,
}

/// URI match policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MatchPolicy {
    /// The URI must equal the pattern.
    #[default]
    Exact,
    /// The URI must start with the pattern (`""` matches everything).
    Prefix,
    /// Components match one by one; empty components match any component.
    Wildcard,
}

impl MatchPolicy {
    /// Config name: `exact`, `prefix`, `wildcard`.
    pub fn name(self) -> &'static str {
        match self {
            MatchPolicy::Exact => "exact",
            MatchPolicy::Prefix => "prefix",
            MatchPolicy::Wildcard => "wildcard",
        }
    }
}

/// The `allow` block of a permission (each default `false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Allow {
    /// May CALL.
    pub call: bool,
    /// May REGISTER.
    pub register: bool,
    /// May PUBLISH.
    pub publish: bool,
    /// May SUBSCRIBE.
    pub subscribe: bool,
}

/// The `disclose` block of a permission (each default `false`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Disclose {
    /// Disclose the caller's identity to callees.
    pub caller: bool,
    /// Disclose the publisher's identity to subscribers.
    pub publisher: bool,
}

/// One listening transport.
#[derive(Debug, Clone, PartialEq)]
pub struct TransportConfig {
    /// `id`, if given.
    pub id: Option<String>,
    /// What is spoken on the endpoint.
    pub kind: TransportKind,
    /// Where to listen.
    pub endpoint: Endpoint,
    /// Junction: connection and outbound-queue limits (from the transport's
    /// `options`).
    pub limits: ConnectionLimits,
}

impl TransportConfig {
    /// Config name of the transport type.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            TransportKind::WebSocket(_) => "websocket",
            TransportKind::RawSocket(_) => "rawsocket",
            TransportKind::Web(_) => "web",
            TransportKind::Unsupported { .. } => "unsupported",
        }
    }

    /// Largest message any service of this transport accepts.
    pub fn max_message_size(&self) -> usize {
        match &self.kind {
            TransportKind::WebSocket(ws) => ws.options.max_message_size,
            TransportKind::RawSocket(rs) => rs.options.max_message_size,
            TransportKind::Web(web) => web
                .paths
                .values()
                .filter_map(|s| match s {
                    WebService::WebSocket(ws) => Some(ws.options.max_message_size),
                    _ => None,
                })
                .max()
                .unwrap_or(0),
            TransportKind::Unsupported { .. } => 0,
        }
    }
}

/// Transport type and its settings.
#[derive(Debug, Clone, PartialEq)]
pub enum TransportKind {
    /// `type: websocket`: WAMP over WebSocket, upgrades accepted on any
    /// request path.
    WebSocket(WebSocketService),
    /// `type: rawsocket`: WAMP over RawSocket.
    RawSocket(RawSocketTransport),
    /// `type: web`: an HTTP server dispatching on the first path segment.
    Web(WebTransport),
    /// Any other transport type (`universal`, `mqtt`, ...). Kept so that
    /// locations of later transports stay right; never present in a config
    /// that passed validation.
    Unsupported {
        /// The transport `type`.
        kind: String,
    },
}

/// A WAMP-over-WebSocket service: a `websocket` transport, or a `websocket`
/// path of a `web` transport.
#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketService {
    /// Public URL (`url`), informational.
    pub url: Option<String>,
    /// Accepted serializers, in preference order (default: all four).
    pub serializers: Vec<Serializer>,
    /// WebSocket options with defaults applied.
    pub options: WebSocketOptions,
    /// Authentication methods.
    pub auth: TransportAuth,
}

/// WebSocket `options`, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct WebSocketOptions {
    /// Largest accepted frame payload (default 16 MiB).
    pub max_frame_size: usize,
    /// Largest accepted (reassembled) message (default 16 MiB).
    pub max_message_size: usize,
    /// Send a ping after this much idle time; `None` (default, or `0`) = never.
    pub auto_ping_interval: Option<Duration>,
    /// Drop the connection if a ping is not answered within this time;
    /// `None` (default, or `0`) = never.
    pub auto_ping_timeout: Option<Duration>,
    /// Ping payload size, 4..=125 (default 4).
    pub auto_ping_size: usize,
    /// Opening handshake must finish within this time (default 10 s).
    pub open_handshake_timeout: Duration,
    /// Closing handshake wait (default 1 s).
    pub close_handshake_timeout: Duration,
    /// Accepted `Origin` patterns (`*` wildcards); default `["*"]`.
    pub allowed_origins: Vec<String>,
    /// Refuse upgrades without a WAMP subprotocol
    /// (`require_websocket_subprotocol`, default `true`).
    pub require_subprotocol: bool,
    /// Set `TCP_NODELAY` (default `true`).
    pub tcp_nodelay: bool,
}

impl Default for WebSocketOptions {
    fn default() -> Self {
        WebSocketOptions {
            max_frame_size: DEFAULT_MAX_FRAME_SIZE,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            auto_ping_interval: None,
            auto_ping_timeout: None,
            auto_ping_size: DEFAULT_AUTO_PING_SIZE,
            open_handshake_timeout: DEFAULT_OPEN_HANDSHAKE_TIMEOUT,
            close_handshake_timeout: DEFAULT_CLOSE_HANDSHAKE_TIMEOUT,
            allowed_origins: vec!["*".to_string()],
            require_subprotocol: true,
            tcp_nodelay: true,
        }
    }
}

/// A `rawsocket` transport.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSocketTransport {
    /// Accepted serializers (default: all four).
    pub serializers: Vec<Serializer>,
    /// RawSocket options with defaults applied.
    pub options: RawSocketOptions,
    /// Authentication methods.
    pub auth: TransportAuth,
}

/// RawSocket settings, defaults applied.
#[derive(Debug, Clone, PartialEq)]
pub struct RawSocketOptions {
    /// Largest accepted message, 512..=16 MiB (`options.max_message_size`
    /// as Crossbar's checkconfig has it, or transport-level
    /// `max_message_size` as Crossbar's docs have it; default 16 MiB).
    pub max_message_size: usize,
    /// The 4-byte handshake must arrive within this time (default 10 s).
    pub handshake_timeout: Duration,
    /// Send a RawSocket PING after this much idle time; `None` = never.
    pub auto_ping_interval: Option<Duration>,
    /// Drop the connection if a PING is not answered in time; `None` = never.
    pub auto_ping_timeout: Option<Duration>,
}

impl Default for RawSocketOptions {
    fn default() -> Self {
        RawSocketOptions {
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            handshake_timeout: DEFAULT_OPEN_HANDSHAKE_TIMEOUT,
            auto_ping_interval: None,
            auto_ping_timeout: None,
        }
    }
}

/// A `web` transport: path (first segment, or `/` for the root) → service.
#[derive(Debug, Clone, PartialEq)]
pub struct WebTransport {
    /// The `paths` map, in file order.
    pub paths: IndexMap<String, WebService>,
}

/// One service of a `web` transport.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // config data, built once
pub enum WebService {
    /// `type: websocket`: WAMP over WebSocket at this path.
    WebSocket(WebSocketService),
    /// `type: static`: files below a directory.
    Static(StaticService),
    /// `type: redirect`: an HTTP redirect.
    Redirect(RedirectService),
    /// `type: json`: a fixed JSON document.
    Json(JsonService),
    /// `type: nodeinfo`: a small node status page (HTML, or JSON when asked
    /// for with `Accept: application/json`).
    NodeInfo,
    /// `type: metrics` (**Junction**): the worker's counters in Prometheus'
    /// text exposition format.
    Metrics,
    /// Any other Crossbar web service (`wsgi`, `resource`, `reverseproxy`,
    /// `caller`, `publisher`, ...): parsed, but not supported in this version
    /// (validation reports it).
    Other {
        /// The service `type`.
        kind: String,
    },
}

impl WebService {
    /// The service `type` as written in the config.
    pub fn type_name(&self) -> &str {
        match self {
            WebService::WebSocket(_) => "websocket",
            WebService::Static(_) => "static",
            WebService::Redirect(_) => "redirect",
            WebService::Json(_) => "json",
            WebService::NodeInfo => "nodeinfo",
            WebService::Metrics => "metrics",
            WebService::Other { kind } => kind,
        }
    }
}

/// Default static-file `cache_timeout`: 12 hours (Crossbar's).
pub const DEFAULT_STATIC_CACHE_TIMEOUT: Duration = Duration::from_secs(12 * 3600);
/// Largest accepted static-file `cache_timeout` (2^31 - 1 seconds, the
/// largest `max-age` caches must understand).
pub const MAX_STATIC_CACHE_TIMEOUT_SECS: u64 = (1 << 31) - 1;
/// Default static-file `default_file`.
pub const DEFAULT_STATIC_DEFAULT_FILE: &str = "index.html";
/// Default redirect status.
pub const DEFAULT_REDIRECT_STATUS: u16 = 302;
/// Accepted redirect statuses.
pub const REDIRECT_STATUSES: [u16; 5] = [301, 302, 303, 307, 308];

/// A `static` web service: the files below `directory`, for every path
/// under the service's mount point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticService {
    /// The directory served (`directory`; relative paths are relative to
    /// the config file's directory, as Crossbar's node directory). Not
    /// opened while parsing.
    pub directory: PathBuf,
    /// Directories without `default_file` get an HTML listing
    /// (`options.enable_directory_listing`, default `false`).
    pub enable_directory_listing: bool,
    /// Media type overrides, extension (`".svg"`, as written) → media type
    /// (`options.mime_types`), in file order.
    pub mime_types: IndexMap<String, String>,
    /// `Cache-Control: max-age` of served files (`options.cache_timeout`,
    /// seconds; default 12 h); `None` (`0`) = no caching (revalidate).
    pub cache_timeout: Option<Duration>,
    /// File served for a directory request (`options.default_file`, default
    /// `index.html`): a single file name.
    pub default_file: String,
}

/// A `redirect` web service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectService {
    /// Where to (`url`): sent as `Location` verbatim.
    pub url: String,
    /// HTTP status (`options.status`: 301, 302, 303, 307 or 308; default
    /// 302).
    pub status: u16,
}

/// A `json` web service: a fixed document.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonService {
    /// The document (`value`, any JSON).
    pub value: serde_json::Value,
    /// Pretty-print it (`options.prettify`, default `false`).
    pub prettify: bool,
    /// Send `Access-Control-Allow-Origin: *` (`options.allow_cross_origin`,
    /// default `false`).
    pub allow_cross_origin: bool,
    /// Send headers that prevent caching (`options.discourage_caching`,
    /// default `false`).
    pub discourage_caching: bool,
}

/// Junction extension: per-transport connection limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Most concurrent connections on this transport (default 100,000).
    pub max_connections: usize,
    /// Most bytes queued for sending on one connection before it is treated
    /// as a slow consumer (default 16 MiB).
    pub max_outbound_bytes: usize,
    /// Most messages queued for sending on one connection (default 65,536).
    pub max_outbound_messages: usize,
    /// What happens when a message does not fit the outbound queue
    /// (`slow_consumer_policy`, default `close`).
    pub slow_consumer_policy: SlowConsumerPolicy,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_outbound_bytes: DEFAULT_MAX_OUTBOUND_BYTES,
            max_outbound_messages: DEFAULT_MAX_OUTBOUND_MESSAGES,
            slow_consumer_policy: SlowConsumerPolicy::Close,
        }
    }
}

/// Junction extension: treatment of a connection whose outbound queue is
/// full (a slow consumer).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SlowConsumerPolicy {
    /// `close`: the connection is closed (default).
    #[default]
    Close,
    /// `drop`: an EVENT that does not fit is dropped for that subscriber
    /// (and counted); any other message that does not fit still closes the
    /// connection.
    Drop,
}

impl SlowConsumerPolicy {
    /// Config name: `close` or `drop`.
    pub fn name(self) -> &'static str {
        match self {
            SlowConsumerPolicy::Close => "close",
            SlowConsumerPolicy::Drop => "drop",
        }
    }
}

/// Default lifetime of an authentication challenge (`auth.options.challenge_timeout`).
pub const DEFAULT_CHALLENGE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default number of failed authentications a peer address may have per
/// [`DEFAULT_AUTH_FAILURE_WINDOW`] (`auth.options.max_failures`).
pub const DEFAULT_AUTH_MAX_FAILURES: u32 = 10;
/// Default failure window (`auth.options.failure_window`).
pub const DEFAULT_AUTH_FAILURE_WINDOW: Duration = Duration::from_secs(60);
/// Default number of peer addresses whose failures are remembered
/// (`auth.options.max_tracked_peers`).
pub const DEFAULT_AUTH_MAX_TRACKED_PEERS: usize = 65_536;

/// The `auth` block of a WAMP transport/service. A transport without an
/// `auth` block accepts anonymous sessions as role `anonymous` (as Crossbar).
#[derive(Debug, Clone, PartialEq)]
pub struct TransportAuth {
    /// Methods in file order.
    pub methods: Vec<AuthMethod>,
    /// Junction: handshake settings (`auth.options`).
    pub options: AuthOptions,
}

impl Default for TransportAuth {
    fn default() -> Self {
        TransportAuth {
            methods: vec![AuthMethod::Anonymous { role: "anonymous".to_string(), authid: None, realm: None }],
            options: AuthOptions::default(),
        }
    }
}

impl TransportAuth {
    /// Role given to anonymous sessions, if static anonymous auth is enabled.
    pub fn anonymous_role(&self) -> Option<&str> {
        self.methods.iter().find_map(|m| match m {
            AuthMethod::Anonymous { role, .. } => Some(role.as_str()),
            _ => None,
        })
    }

    /// The method configured under `name` (`anonymous`, `ticket`,
    /// `wampcra`, `cryptosign`, `scram`, `tls`, `cryptosign-proxy`), if any.
    pub fn method(&self, name: &str) -> Option<&AuthMethod> {
        self.methods.iter().find(|m| m.name() == name)
    }

    /// The `cryptosign-proxy` principals (name → hex public keys), if the
    /// method is configured: proxy workers with these keys may open proxy
    /// links on this transport.
    pub fn proxy_principals(&self) -> Option<&IndexMap<String, Vec<String>>> {
        self.methods.iter().find_map(|m| match m {
            AuthMethod::CryptosignProxy { principals } => Some(principals),
            _ => None,
        })
    }

    /// True if some method authenticates clients (everything but
    /// `cryptosign-proxy`).
    pub fn has_client_methods(&self) -> bool {
        self.methods.iter().any(|m| !matches!(m, AuthMethod::CryptosignProxy { .. }))
    }
}

/// Junction extension: `auth.options`, settings of the authentication
/// handshake of one transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AuthOptions {
    /// A CHALLENGE must be answered within this time (default 60 s).
    pub challenge_timeout: Duration,
    /// Failed authentications allowed per peer address and window
    /// (default 10); further attempts are refused until the window passes.
    pub max_failures: u32,
    /// The window for `max_failures` (default 60 s).
    pub failure_window: Duration,
    /// Peer addresses whose failures are remembered; the oldest entry is
    /// forgotten beyond this (default 65,536).
    pub max_tracked_peers: usize,
    /// Largest HELLO `authextra` accepted, in bytes of its contents
    /// (default 16 KiB); a bigger one is refused before any challenge.
    pub max_authextra_size: usize,
}

/// Default `auth.options.max_authextra_size`.
pub const DEFAULT_MAX_AUTHEXTRA_SIZE: usize = 16 * 1024;

impl Default for AuthOptions {
    fn default() -> Self {
        AuthOptions {
            challenge_timeout: DEFAULT_CHALLENGE_TIMEOUT,
            max_failures: DEFAULT_AUTH_MAX_FAILURES,
            failure_window: DEFAULT_AUTH_FAILURE_WINDOW,
            max_tracked_peers: DEFAULT_AUTH_MAX_TRACKED_PEERS,
            max_authextra_size: DEFAULT_MAX_AUTHEXTRA_SIZE,
        }
    }
}

/// One authentication method of a transport (a key of the `auth` block).
#[derive(Debug, Clone, PartialEq)]
pub enum AuthMethod {
    /// `anonymous` with `type: static`.
    Anonymous {
        /// Role given to the session (default `anonymous`).
        role: String,
        /// Fixed authid (Crossbar's `authid`); `None` = the client's
        /// requested authid, else a generated one.
        authid: Option<String>,
        /// Realm to join instead of the requested one (Crossbar's `realm`).
        realm: Option<String>,
    },
    /// `anonymous` with `type: dynamic`.
    AnonymousDynamic(DynamicAuthenticator),
    /// `ticket`: the client sends a shared secret (a password or token).
    Ticket(AuthProvider<TicketPrincipal>),
    /// `wampcra`: HMAC-SHA256 challenge-response, optionally with
    /// PBKDF2-salted secrets.
    WampCra(AuthProvider<WampCraUser>),
    /// `cryptosign`: Ed25519 signature over a random challenge.
    Cryptosign(AuthProvider<CryptosignPrincipal>),
    /// `scram`: WAMP-SCRAM (SHA-256, argon2id or PBKDF2 salted passwords).
    Scram(AuthProvider<ScramPrincipal>),
    /// `tls`: the TLS client certificate identifies the principal.
    Tls(AuthProvider<TlsPrincipal>),
    /// `cryptosign-proxy` (static) on a router `rawsocket` transport: proxy
    /// workers holding one of these node keys may open proxy links here and
    /// forward sessions. Not a client authentication method: the router
    /// runtime reads it; `wamp-auth` skips it.
    CryptosignProxy {
        /// Principal name → its authorized Ed25519 public keys (64 hex
        /// digits each, lowercased), in file order.
        principals: IndexMap<String, Vec<String>>,
    },
    /// A method whose shape was checked but which Junction does not
    /// support (`cookie`, `type: function`, cryptosign `trustroots`,
    /// dynamic `cryptosign-proxy`); validation reports it.
    Unsupported {
        /// The method key, e.g. `cookie`.
        method: String,
        /// Its `type` (`static`/`dynamic`/...), if given.
        kind: Option<String>,
    },
}

impl AuthMethod {
    /// The `authmethod` name as clients announce it.
    pub fn name(&self) -> &str {
        match self {
            AuthMethod::Anonymous { .. } | AuthMethod::AnonymousDynamic(_) => "anonymous",
            AuthMethod::Ticket(_) => "ticket",
            AuthMethod::WampCra(_) => "wampcra",
            AuthMethod::Cryptosign(_) => "cryptosign",
            AuthMethod::Scram(_) => "scram",
            AuthMethod::Tls(_) => "tls",
            AuthMethod::CryptosignProxy { .. } => "cryptosign-proxy",
            AuthMethod::Unsupported { method, .. } => method,
        }
    }
}

/// Where the principals of a method come from.
#[derive(Debug, Clone, PartialEq)]
pub enum AuthProvider<P> {
    /// `type: static`: principals listed in the config, by authid, in file
    /// order.
    Static(IndexMap<String, P>),
    /// `type: dynamic`: a WAMP procedure decides.
    Dynamic(DynamicAuthenticator),
}

/// `type: dynamic`: the router calls `authenticator(realm, authid, details)`
/// and expects a role (string) or a dict `{role, authid?, realm?, extra?,
/// ...}`, or an error to deny.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DynamicAuthenticator {
    /// URI of the procedure (`authenticator`).
    pub authenticator: String,
    /// Realm the procedure is registered on (`authenticator-realm`);
    /// `None` = the realm the client asked for.
    pub authenticator_realm: Option<String>,
    /// Role the router calls the authenticator as (`authenticator-role`);
    /// `None` = unspecified (the runtime decides, e.g. a trusted role).
    pub authenticator_role: Option<String>,
}

/// A static `ticket` principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TicketPrincipal {
    /// The secret ticket.
    pub ticket: String,
    /// Role the session gets.
    pub role: String,
    /// Realm the session joins instead of the requested one.
    pub realm: Option<String>,
}

/// A static `wampcra` user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WampCraUser {
    /// The shared secret (the password when `salt` is set).
    pub secret: String,
    /// Role the session gets.
    pub role: String,
    /// Realm the session joins instead of the requested one.
    pub realm: Option<String>,
    /// PBKDF2 parameters when the secret is salted (Crossbar uses them only
    /// when `salt`, `iterations` and `keylen` are all given).
    pub salt: Option<WampCraSalt>,
}

/// PBKDF2-HMAC-SHA256 parameters of a salted WAMP-CRA secret.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WampCraSalt {
    /// The salt (used as UTF-8 bytes, as Autobahn does).
    pub salt: String,
    /// PBKDF2 iterations (1..=1,000,000).
    pub iterations: u32,
    /// Derived key length in bytes (1..=256).
    pub keylen: u32,
}

/// A static `cryptosign` principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CryptosignPrincipal {
    /// Ed25519 public keys (64 hex digits each, lowercased).
    pub authorized_keys: Vec<String>,
    /// Role the session gets.
    pub role: String,
    /// Realm the session joins instead of the requested one.
    pub realm: Option<String>,
}

/// Key derivation function of a SCRAM credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScramKdf {
    /// `argon2id-13`: Argon2id version 1.3, parallelism 1.
    Argon2id13,
    /// `pbkdf2`: PBKDF2-HMAC-SHA256.
    Pbkdf2,
}

impl ScramKdf {
    /// Config and wire name (`argon2id-13`, `pbkdf2`).
    pub fn name(self) -> &'static str {
        match self {
            ScramKdf::Argon2id13 => "argon2id-13",
            ScramKdf::Pbkdf2 => "pbkdf2",
        }
    }
}

/// A static `scram` principal (what Autobahn's `derive_scram_credential`
/// prints).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramPrincipal {
    /// The KDF the client must use.
    pub kdf: ScramKdf,
    /// KDF iterations (time cost).
    pub iterations: u32,
    /// Argon2 memory cost in KiB (ignored for PBKDF2).
    pub memory: u32,
    /// The salt, hex (lowercased).
    pub salt: String,
    /// `stored-key`: SHA-256(ClientKey), 64 hex digits (lowercased).
    pub stored_key: String,
    /// `server-key`: HMAC(SaltedPassword, "Server Key"), 64 hex digits.
    pub server_key: String,
    /// Role the session gets.
    pub role: String,
    /// Realm the session joins instead of the requested one.
    pub realm: Option<String>,
}

/// A static `tls` principal: matched by certificate fingerprint or subject
/// common name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsPrincipal {
    /// `certificate-sha1`: SHA-1 fingerprint of the client certificate
    /// (DER), 40 hex digits, normalized to upper case without colons.
    pub certificate_sha1: Option<String>,
    /// Junction: `certificate-cn`, the subject common name to accept.
    pub certificate_cn: Option<String>,
    /// Role the session gets.
    pub role: String,
    /// Realm the session joins instead of the requested one.
    pub realm: Option<String>,
}

/// TLS settings of a listening TCP endpoint (`endpoint.tls`). Paths are
/// not opened while parsing: the runtime loads them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsConfig {
    /// PEM private key file (`key`).
    pub key: PathBuf,
    /// PEM server certificate file (`certificate`).
    pub certificate: PathBuf,
    /// Intermediate certificates sent after `certificate`
    /// (`chain_certificates`).
    pub chain_certificates: Vec<PathBuf>,
    /// CA certificates client certificates are verified against
    /// (`ca_certificates`); empty = client certificates are not requested.
    pub ca_certificates: Vec<PathBuf>,
    /// Refuse clients without a valid certificate (Junction:
    /// `require_client_certificate`; default `true` when `ca_certificates`
    /// is given, as Crossbar).
    pub require_client_cert: bool,
    /// OpenSSL cipher list (`ciphers`), kept verbatim for the runtime.
    pub ciphers: Option<String>,
}

/// A listening endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `type: tcp`.
    Tcp {
        /// Address to bind (default `0.0.0.0`, or `::` with `version: 6`).
        interface: IpAddr,
        /// Port, 1..=65535 (required, unless `portrange` is given: then the
        /// range's first port).
        port: u16,
        /// `portrange: [low, high]` (Crossbar's key): listen on the first
        /// free port of the range.
        portrange: Option<(u16, u16)>,
        /// Listen backlog (default 1024).
        backlog: u32,
        /// `shared` (Crossbar's key, default `false`): bind with
        /// `SO_REUSEPORT` so several proxy worker processes can listen on
        /// the same port (the kernel spreads connections over them).
        shared: bool,
        /// TLS (`tls`); `None` = plain TCP.
        tls: Option<TlsConfig>,
    },
    /// `type: unix`.
    Unix {
        /// Socket path (at most 107 bytes).
        path: PathBuf,
        /// Listen backlog (default 1024).
        backlog: u32,
    },
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Tcp { interface, port, .. } => match interface {
                IpAddr::V4(a) => write!(f, "tcp:{a}:{port}"),
                IpAddr::V6(a) => write!(f, "tcp:[{a}]:{port}"),
            },
            Endpoint::Unix { path, .. } => write!(f, "unix:{}", path.display()),
        }
    }
}
