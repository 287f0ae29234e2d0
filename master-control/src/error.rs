//! Errors: what a management call answers ([`ApiError`], a WAMP error URI
//! and a message, as Crossbar's master raises them) and what the store can
//! fail with ([`StoreError`]).

use thiserror::Error;

/// A management call's error: the WAMP error URI and its message
/// (`args[0]`).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{uri}: {message}")]
pub struct ApiError {
    pub uri: String,
    pub message: String,
}

impl ApiError {
    pub fn new(uri: &str, message: impl Into<String>) -> ApiError {
        ApiError { uri: uri.to_owned(), message: message.into() }
    }
    /// Wrong argument types or values: `wamp.error.invalid_argument`.
    pub fn invalid_argument(message: impl Into<String>) -> ApiError {
        ApiError::new("wamp.error.invalid_argument", message)
    }
    /// `crossbar.error.no_such_object`.
    pub fn no_such_object(message: impl Into<String>) -> ApiError {
        ApiError::new("crossbar.error.no_such_object", message)
    }
    /// `crossbar.error.already_exists`.
    pub fn already_exists(message: impl Into<String>) -> ApiError {
        ApiError::new("crossbar.error.already_exists", message)
    }
    /// `wamp.error.not_authorized`: the caller's role may not do this.
    pub fn not_authorized(message: impl Into<String>) -> ApiError {
        ApiError::new("wamp.error.not_authorized", message)
    }
    /// `crossbar.error.dependent_objects`.
    pub fn dependent_objects(message: impl Into<String>) -> ApiError {
        ApiError::new("crossbar.error.dependent_objects", message)
    }
}

/// Management realm name checks (Crossbar's `fabric.invalid-realm`).
pub const INVALID_REALM: &str = "fabric.invalid-realm";
/// `pair_node` to a management realm that does not exist.
pub const NO_SUCH_REALM: &str = "fabric.no-such-realm";
/// `pair_node` of a node that is paired already.
pub const NODE_ALREADY_PAIRED: &str = "fabric.node-already-paired";
/// `unpair_node` of a node that is not paired.
pub const NODE_NOT_PAIRED: &str = "fabric.node-not-paired";
/// A node key that is not paired to any management realm tried to log in.
pub const AUTH_NODE_UNPAIRED: &str = "fabric.auth-failed.node-unpaired";

/// The store failed (disk, corruption, schema from a newer version).
#[derive(Debug, Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored document is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("cannot initialise the master's state: {0}")]
    Init(String),
    #[error("database schema version {found} is newer than this master understands ({supported})")]
    SchemaTooNew { found: i64, supported: i64 },
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        // Logged by the caller; the client learns that the call did not happen.
        ApiError::new("crossbar.error.internal", format!("the master's database failed: {e}"))
    }
}
