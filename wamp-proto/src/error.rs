//! Errors of the protocol core.

use thiserror::Error;

/// A message could not be decoded. The text is safe to send to the peer in
/// an ABORT `wamp.error.protocol_violation` message.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum DecodeError {
    /// The bytes are not valid in the serializer's format.
    #[error("malformed {format} data: {detail}")]
    Malformed { format: &'static str, detail: String },
    /// The data is well-formed but not a valid WAMP message.
    #[error("invalid WAMP message: {0}")]
    Invalid(String),
    /// The message type code is not one this implementation knows.
    #[error("unknown WAMP message type {0}")]
    UnknownType(u64),
    /// Nesting is deeper than the decoder allows.
    #[error("value nesting exceeds depth limit {0}")]
    TooDeep(usize),
    /// JavaScript `undefined` (MessagePack ext type 0 with a zero byte, CBOR
    /// simple value 23) where it has no meaning. It is accepted only as a
    /// dict value inside a message's Details/Options/Extra dict, where it
    /// means "key absent" (wampy.js sends `{match: undefined}`); `place`
    /// says where it was found instead.
    #[error(
        "{format} undefined {place}: undefined is accepted only as a value in a Details/Options dict, \
         where it means the key is absent"
    )]
    Undefined { format: &'static str, place: &'static str },
}

/// A message could not be encoded.
#[derive(Debug, Clone, Error, PartialEq)]
pub enum EncodeError {
    /// The value cannot be represented in the target format (e.g. NaN in JSON).
    #[error("value not representable in {format}: {detail}")]
    Unrepresentable { format: &'static str, detail: String },
    /// A raw payload had to be transcoded and was not valid.
    #[error("payload transcode failed: {0}")]
    Transcode(String),
}
