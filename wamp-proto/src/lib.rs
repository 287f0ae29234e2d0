//! # wamp-proto: the sans-IO WAMP protocol core
//!
//! This crate is WAMP as data: typed [`Message`]s, newtype IDs, the dynamic
//! [`Value`] model, and the four serializers Junction speaks (JSON,
//! MessagePack, CBOR and Flatbuffers), each byte-compatible with Autobahn.
//!
//! It is **not** a transport, a router or a client. It owns no sockets, no
//! runtime, no clock and no threads: bytes in, messages out, and back. The
//! framing of messages on the wire (WebSocket, RawSocket) lives in
//! `wamp-framing`; routing lives in `router-core`.
//!
//! ## Payloads are not decoded
//! A router rarely needs to look inside `Arguments|list` and
//! `ArgumentsKw|dict`. Decoders therefore keep those two elements as raw byte
//! spans ([`Payload::Raw`]) that share the receive buffer; an encoder for the
//! same format splices them back verbatim, so a publication travels from
//! publisher to subscribers without its payload ever being parsed. Only a
//! subscriber using a different serializer costs one transcode, done once per
//! serializer per publication by the broker.

pub mod cbor;
#[cfg(test)]
mod codec_tests;
pub mod error;
pub mod flatbuffers;
pub mod hex;
pub mod ids;
pub mod json;
pub mod message;
pub mod msgpack;
pub mod payload;
mod reader;
pub mod serializer;
pub mod uri;
pub mod value;
mod wire;

pub use error::{DecodeError, EncodeError};
pub use ids::{PublicationId, RegistrationId, RequestId, SessionId, SubscriptionId, MAX_ID};
pub use message::{code, Message};
pub use payload::{EncodedPayload, Payload, PayloadFormat};
pub use serializer::Serializer;
pub use value::{Dict, List, Value};

/// Maximum nesting depth the decoders accept (protects the stack from
/// hostile input).
pub const MAX_DEPTH: usize = 64;
