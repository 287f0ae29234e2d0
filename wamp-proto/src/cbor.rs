//! The cbor serializer. (Being implemented.)

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::message::Message;
use crate::value::Value;

/// Encodes a message.
pub fn encode(_msg: &Message) -> Result<Bytes, EncodeError> {
    todo!("cbor encode")
}

/// Decodes a message, leaving args/kwargs as raw spans.
pub fn decode(_bytes: &Bytes) -> Result<Message, DecodeError> {
    todo!("cbor decode")
}

/// Encodes one value, appending to `out`.
pub fn encode_value(_v: &Value, _out: &mut Vec<u8>) -> Result<(), EncodeError> {
    todo!("cbor encode_value")
}

/// Decodes exactly one value (trailing bytes are an error).
pub fn decode_value(_bytes: &Bytes) -> Result<Value, DecodeError> {
    todo!("cbor decode_value")
}
