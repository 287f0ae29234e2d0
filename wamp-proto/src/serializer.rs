//! The serializer facade: one enum naming the four wire formats, with their
//! WebSocket subprotocol names and RawSocket ids.

use bytes::Bytes;

use crate::error::{DecodeError, EncodeError};
use crate::message::Message;
use crate::payload::PayloadFormat;

/// A WAMP serializer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Serializer {
    Json,
    Msgpack,
    Cbor,
    Flatbuffers,
}

impl Serializer {
    /// All serializers, in the order Junction prefers them.
    pub const ALL: [Serializer; 4] = [Serializer::Cbor, Serializer::Msgpack, Serializer::Json, Serializer::Flatbuffers];

    /// Index 0..4, for per-serializer caches.
    pub const fn index(self) -> usize {
        match self {
            Serializer::Json => 0,
            Serializer::Msgpack => 1,
            Serializer::Cbor => 2,
            Serializer::Flatbuffers => 3,
        }
    }

    /// Config/CLI name: `json`, `msgpack`, `cbor`, `flatbuffers`.
    pub const fn name(self) -> &'static str {
        match self {
            Serializer::Json => "json",
            Serializer::Msgpack => "msgpack",
            Serializer::Cbor => "cbor",
            Serializer::Flatbuffers => "flatbuffers",
        }
    }

    /// Parses a config name.
    pub fn from_name(name: &str) -> Option<Serializer> {
        Some(match name {
            "json" => Serializer::Json,
            "msgpack" => Serializer::Msgpack,
            "cbor" => Serializer::Cbor,
            "flatbuffers" => Serializer::Flatbuffers,
            _ => return None,
        })
    }

    /// WebSocket subprotocol name, e.g. `wamp.2.json`.
    pub const fn subprotocol(self) -> &'static str {
        match self {
            Serializer::Json => "wamp.2.json",
            Serializer::Msgpack => "wamp.2.msgpack",
            Serializer::Cbor => "wamp.2.cbor",
            Serializer::Flatbuffers => "wamp.2.flatbuffers",
        }
    }

    /// Parses a WebSocket subprotocol name.
    pub fn from_subprotocol(p: &str) -> Option<Serializer> {
        Some(match p {
            "wamp.2.json" => Serializer::Json,
            "wamp.2.msgpack" => Serializer::Msgpack,
            "wamp.2.cbor" => Serializer::Cbor,
            "wamp.2.flatbuffers" => Serializer::Flatbuffers,
            _ => return None,
        })
    }

    /// RawSocket serializer id (1 JSON, 2 MessagePack, 3 CBOR, 5 Flatbuffers;
    /// 4 is UBJSON, which Junction does not speak).
    pub const fn rawsocket_id(self) -> u8 {
        match self {
            Serializer::Json => 1,
            Serializer::Msgpack => 2,
            Serializer::Cbor => 3,
            Serializer::Flatbuffers => 5,
        }
    }

    /// Parses a RawSocket serializer id.
    pub fn from_rawsocket_id(id: u8) -> Option<Serializer> {
        Some(match id {
            1 => Serializer::Json,
            2 => Serializer::Msgpack,
            3 => Serializer::Cbor,
            5 => Serializer::Flatbuffers,
            _ => return None,
        })
    }

    /// True if messages are binary (WebSocket binary frames); JSON is text.
    pub const fn is_binary(self) -> bool {
        !matches!(self, Serializer::Json)
    }

    /// The encoding used for args/kwargs spans in this serializer's messages.
    pub const fn payload_format(self) -> PayloadFormat {
        match self {
            Serializer::Json => PayloadFormat::Json,
            Serializer::Msgpack => PayloadFormat::Msgpack,
            Serializer::Cbor | Serializer::Flatbuffers => PayloadFormat::Cbor,
        }
    }

    /// Encodes one message.
    pub fn encode(self, msg: &Message) -> Result<Bytes, EncodeError> {
        match self {
            Serializer::Json => crate::json::encode(msg),
            Serializer::Msgpack => crate::msgpack::encode(msg),
            Serializer::Cbor => crate::cbor::encode(msg),
            Serializer::Flatbuffers => crate::flatbuffers::encode(msg),
        }
    }

    /// Encodes one message, appending it to `out`: MessagePack and CBOR write
    /// in place; JSON and Flatbuffers encode, then copy. On error `out` is
    /// unchanged.
    pub fn encode_into(self, msg: &Message, out: &mut Vec<u8>) -> Result<(), EncodeError> {
        match self {
            Serializer::Msgpack => crate::msgpack::encode_into(msg, out),
            Serializer::Cbor => crate::cbor::encode_into(msg, out),
            Serializer::Json | Serializer::Flatbuffers => {
                out.extend_from_slice(&self.encode(msg)?);
                Ok(())
            }
        }
    }

    /// Decodes one message. Args/kwargs stay raw ([`crate::Payload::Raw`]).
    pub fn decode(self, bytes: &Bytes) -> Result<Message, DecodeError> {
        match self {
            Serializer::Json => crate::json::decode(bytes),
            Serializer::Msgpack => crate::msgpack::decode(bytes),
            Serializer::Cbor => crate::cbor::decode(bytes),
            Serializer::Flatbuffers => crate::flatbuffers::decode(bytes),
        }
    }
}

impl std::fmt::Display for Serializer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
