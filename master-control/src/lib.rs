//! # master-control: the master node
//!
//! Will hold the control plane: a WAMP API with the URIs and argument shapes
//! of Crossbar's management API (`crossbarfabriccenter.*`), node pairing,
//! state kept in an embedded database, and the loop that drives nodes to
//! their desired state.
//!
//! It is not a data-plane router and never sits on the path of application
//! messages.
//!
//! Status: not yet implemented (tracked as its own issue).
