//! # wamp-auth
//!
//! WAMP authentication for the router side, sans-IO.
//!
//! **What it is.** The cryptographic primitives of every WAMP
//! authentication method Crossbar.io offers — anonymous, ticket, WAMP-CRA
//! (with PBKDF2-salted secrets), WAMP-cryptosign (Ed25519, with TLS channel
//! binding), WAMP-SCRAM (argon2id / PBKDF2 credentials) and TLS client
//! certificates — and [`AuthHandshake`], a state machine that turns a HELLO
//! into CHALLENGE / WELCOME / ABORT decisions, including calls to dynamic
//! authenticators (WAMP procedures with Crossbar's `(realm, authid,
//! details)` signature). Message shapes follow what Autobahn|Python
//! clients send and expect (which in places differs from the WAMP spec
//! text: see [`scram`]). [`FailureLimiter`] bounds failed attempts per peer
//! address. Everything is tested against the spec's and Autobahn's
//! published vectors.
//!
//! **What it is not.** It does no I/O, reads no clocks (time comes in as
//! [`Time`]/`Instant` arguments) and owns no randomness source (callers pass
//! a `CryptoRng`). It does not encode messages, call procedures or
//! terminate TLS: the runtime does, and hands in the TLS channel ids and
//! the peer certificate. Not implemented: cryptosign router authentication
//! (signing the client's challenge) and trustroots/certificates, SCRAM
//! channel binding, cookie authentication, `function` authenticators.

pub mod config;
pub mod cra;
pub mod cryptosign;
pub mod handshake;
pub mod limiter;
pub mod scram;
pub mod tls;
mod util;

pub use config::{AuthConfig, AuthConfigError, Grant, Method, Provider};
pub use handshake::{
    generate_authid, rate_limited, uris, AuthHandshake, AuthStep, DynamicAuthRequest, DynamicError, RealmDirectory,
    RealmFns, Time, TransportInfo, Welcome, FAILED_MESSAGE,
};
pub use limiter::{FailureLimiter, LimiterConfig, Retry};

#[cfg(test)]
mod tests;
