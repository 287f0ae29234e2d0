//! # proxy-frontend: proxy workers (web clusters)
//!
//! Will hold Junction's proxy worker: the internet-facing connection layer
//! that terminates TLS (rustls), speaks every WAMP transport and serializer to
//! clients, authenticates them (anonymous, ticket, WAMP-CRA, cryptosign,
//! SCRAM, TLS client certificates), and forwards each authenticated session
//! over a small pool of multiplexed backend connections to the router worker
//! chosen by `(realm, authrole)`. It will also serve the web services of
//! `web` transports (static files, redirects, JSON values, node info).
//!
//! It is not a router: it keeps no subscriptions or registrations and never
//! routes a message between two clients itself.
//!
//! Status: not yet implemented (tracked as its own issue).
