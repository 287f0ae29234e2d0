//! The Flatbuffers serializer, wire-compatible with Autobahn's schema. (Being implemented.)

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::message::Message;

/// Encodes a message.
pub fn encode(_msg: &Message) -> Result<Bytes, EncodeError> {
    todo!("flatbuffers encode")
}

/// Decodes a message, leaving args/kwargs as raw CBOR spans.
pub fn decode(_bytes: &Bytes) -> Result<Message, DecodeError> {
    todo!("flatbuffers decode")
}
