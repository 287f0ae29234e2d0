//! # master-control: the master node
//!
//! The control plane of a Junction deployment, spoken over WAMP with the
//! URIs and argument shapes of Crossbar's management API
//! (`crossbarfabriccenter.*`), so operators keep their management clients.
//!
//! * [`store`]: the master's state in one SQLite database (schema, backup).
//! * [`master`]: what each management call does, sans-IO: the clock comes
//!   in, results and [`master::Effects`] (events to publish, realms to start
//!   or stop, sessions to close) go out. Unit-tested in memory.
//! * [`service`]: the runtime glue. It runs the master's router (a
//!   `router-core` worker serving the global realm `com.crossbario.fabric`
//!   and one realm per management realm), backend sessions that register
//!   the API on those realms over a private Unix socket, and carries calls
//!   in and effects out.
//!
//! * [`node`], [`worker`], [`proxy`], [`trace_api`]: the managed node's,
//!   router worker's (with message tracing) and proxy worker's sides of the API, sans-IO over small control traits
//!   (implemented in the `junction` binary); [`uplink`] keeps their sessions
//!   to the master.
//! * [`process`]: the process API of every managed process (CPU count and
//!   affinity, process information and statistics, system statistics),
//!   read from `/proc`.
//! * [`reconcile`]: what the started objects mean for the nodes and the
//!   calls that get them there (sans-IO); `service` runs it per management
//!   realm.
//!
//! ## What it is not
//! Not a data-plane router: application traffic never passes through the
//! master.

pub mod error;
pub mod lifecycle;
pub mod master;
pub mod mtrace;
pub mod node;
pub mod pairing;
pub mod process;
pub mod proxy;
pub mod reconcile;
pub mod service;
pub mod store;
pub mod trace_api;
pub mod uplink;
pub mod value;
pub mod web_api;
pub mod worker;

pub use error::{ApiError, StoreError};
pub use master::{Caller, Effects, Master, Outcome, Publication};
pub use service::{MasterService, MasterSetup, ServiceError};
pub use store::Store;
