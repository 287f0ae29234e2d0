//! # loadtest: measure any WAMP router
//!
//! Will hold a multi-threaded load generator that targets any WAMP router by
//! URL (WebSocket, RawSocket, Unix sockets) with any serializer and reports
//! throughput and hdrhistogram latency percentiles for pub/sub, RPC and
//! connection-storm scenarios, plus the router's CPU and memory per message.
//!
//! It is not part of the router and is never linked into `junction`.
//!
//! Status: not yet implemented (tracked as its own issue).
