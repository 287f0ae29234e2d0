//! # cluster-membership: nodes, identities and router clusters
//!
//! Will hold node identities (Ed25519 keys), cluster membership and failure
//! detection, and router clusters whose worker groups spread one realm over
//! several router workers on several nodes.
//!
//! It is not the control plane (that is `master-control`) and does no message
//! routing itself.
//!
//! Status: not yet implemented (tracked as its own issue).
