//! The four WAMP message decoders (wamp-proto).

use bytes::Bytes;
use wamp_proto::{Message, Payload, PayloadFormat, Serializer};

/// `Serializer::Json.decode` (WebSocket `wamp.2.json`, RawSocket id 1).
pub fn wamp_json(data: &[u8]) {
    decoder(Serializer::Json, data)
}

/// `Serializer::Msgpack.decode` (`wamp.2.msgpack`, RawSocket id 2).
pub fn wamp_msgpack(data: &[u8]) {
    decoder(Serializer::Msgpack, data)
}

/// `Serializer::Cbor.decode` (`wamp.2.cbor`, RawSocket id 3).
pub fn wamp_cbor(data: &[u8]) {
    decoder(Serializer::Cbor, data)
}

/// `Serializer::Flatbuffers.decode` (`wamp.2.flatbuffers`, RawSocket id 5).
pub fn wamp_flatbuffers(data: &[u8]) {
    decoder(Serializer::Flatbuffers, data)
}

fn payload(m: &Message) -> Option<&Payload> {
    match m {
        Message::Error { payload, .. }
        | Message::Publish { payload, .. }
        | Message::Event { payload, .. }
        | Message::EventReceived { payload, .. }
        | Message::Call { payload, .. }
        | Message::Result { payload, .. }
        | Message::Invocation { payload, .. }
        | Message::Yield { payload, .. } => Some(payload),
        _ => None,
    }
}

/// Decodes `data`; a message that decodes must
/// - re-encode in its own serializer, and that encoding must decode to a
///   message that encodes to the same bytes (a fixpoint after one round:
///   decoders normalize, e.g. an empty args list to none);
/// - survive what the router does with it for other peers: its payload
///   decoded to values and transcoded to every payload format, and the
///   whole message encoded in every other serializer; whatever encodes
///   must decode again.
fn decoder(ser: Serializer, data: &[u8]) {
    let bytes = Bytes::copy_from_slice(data);
    let Ok(msg) = ser.decode(&bytes) else { return };
    let _ = msg.name();

    let first = match ser.encode(&msg) {
        Ok(b) => b,
        Err(e) => panic!("{ser}: a decoded {} does not re-encode: {e}", msg.name()),
    };
    let again = match ser.decode(&first) {
        Ok(m) => m,
        Err(e) => panic!("{ser}: our own encoding of a decoded {} does not decode: {e}", msg.name()),
    };
    assert_eq!(again.code(), msg.code(), "{ser}: message type changed in a round trip");
    let second = ser.encode(&again).expect("re-encoding a decoded message");
    assert_eq!(first, second, "{ser}: encode(decode(encode(m))) != encode(m)");

    if let Some(p) = payload(&msg) {
        let _ = p.to_values();
        for f in [PayloadFormat::Json, PayloadFormat::Msgpack, PayloadFormat::Cbor] {
            let _ = p.encoded_in(f);
        }
    }
    for other in Serializer::ALL {
        if other == ser {
            continue;
        }
        let mut into = Vec::new();
        let direct = other.encode(&msg);
        let appended = other.encode_into(&msg, &mut into);
        assert_eq!(direct.is_ok(), appended.is_ok(), "{other}: encode and encode_into disagree");
        if let Ok(b) = direct {
            assert_eq!(&b[..], &into[..], "{other}: encode and encode_into produce different bytes");
            if let Err(e) = other.decode(&b) {
                panic!("{ser} → {other}: our encoding of a decoded {} does not decode: {e}", msg.name());
            }
        }
    }
}
