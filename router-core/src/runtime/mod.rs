//! The glommio runtime around the sans-IO engine: listeners, shards,
//! connections, hand-off and the session directory.

pub mod bind;
pub mod conn;
pub mod dial;
pub mod directory;
pub mod fdlimit;
pub mod framer;
pub mod from_config;
pub mod heartbeat;
pub mod link;
pub mod node;
pub mod notify;
pub mod outbound;
pub mod rlink;
pub mod setup;
pub mod shard;
pub mod stream;
pub mod tls;

pub use directory::{SessionDirectory, SessionEntry};
pub use node::{RealmError, RouterNode};
pub use setup::{
    ConnectionLimits, EndpointSetup, FramingSetup, RawSocketSetup, RealmSetup, RouterSetup, TransportSetup,
    WsServiceSetup,
};
pub use shard::NodeStats;
