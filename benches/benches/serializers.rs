//! Serializer benchmarks: EVENT encoding (raw payload spliced, as the broker
//! does), PUBLISH decoding (payload kept raw), and payload transcoding
//! between formats (what a subscriber on another serializer costs).
//!
//! Throughput is the size of the encoded message (or, for transcodes, of
//! the source payload spans).

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wamp_proto::{Dict, Message, Payload, PayloadFormat, PublicationId, Serializer, SubscriptionId};

const SERIALIZERS: [Serializer; 4] = [Serializer::Json, Serializer::Msgpack, Serializer::Cbor, Serializer::Flatbuffers];

/// The two payloads, checked to be the advertised size (args + kwargs in JSON).
fn sizes() -> [(&'static str, Payload); 2] {
    let (small, large) = (common::small_payload(), common::large_payload());
    let (s, l) = (common::json_payload_len(&small), common::json_payload_len(&large));
    assert!((90..=120).contains(&s), "small payload is {s} bytes");
    assert!((3900..=4300).contains(&l), "4k payload is {l} bytes");
    [("small", small), ("4k", large)]
}

/// EVENT as the broker builds it: details empty, payload the publisher's raw
/// spans in the subscriber's own format (so the encoder splices them).
fn encode_event(c: &mut Criterion) {
    let mut g = c.benchmark_group("serializers");
    for (size, payload) in sizes() {
        for ser in SERIALIZERS {
            let (_, received) = common::as_received(ser, &common::publish_msg("com.example.topic", payload.clone()));
            let Message::Publish { payload: raw, .. } = received else { unreachable!("fixture is a PUBLISH") };
            let event = Message::Event {
                subscription: SubscriptionId::from_valid(123_456_789),
                publication: PublicationId::from_valid(987_654_321_012),
                details: Dict::new(),
                payload: raw,
            };
            let len = ser.encode(&event).expect("EVENT encodes").len();
            g.throughput(Throughput::Bytes(len as u64));
            g.bench_function(format!("encode_event_{}_{size}", ser.name()), |b| {
                b.iter(|| ser.encode(black_box(&event)).expect("EVENT encodes"))
            });
        }
    }
    g.finish();
}

/// A received PUBLISH: bytes → `Message` with a raw payload.
fn decode_publish(c: &mut Criterion) {
    let mut g = c.benchmark_group("serializers");
    for (size, payload) in sizes() {
        for ser in SERIALIZERS {
            let (bytes, decoded) = common::as_received(ser, &common::publish_msg("com.example.topic", payload.clone()));
            assert!(matches!(&decoded, Message::Publish { topic, .. } if topic == "com.example.topic"));
            g.throughput(Throughput::Bytes(bytes.len() as u64));
            g.bench_function(format!("decode_publish_{}_{size}", ser.name()), |b| {
                b.iter(|| ser.decode(black_box(&bytes)).expect("PUBLISH decodes"))
            });
        }
    }
    g.finish();
}

fn format_name(f: PayloadFormat) -> &'static str {
    match f {
        PayloadFormat::Json => "json",
        PayloadFormat::Msgpack => "msgpack",
        PayloadFormat::Cbor => "cbor",
    }
}

/// `Payload::encoded_in` from one raw format to another (decode to values,
/// re-encode). CBOR covers Flatbuffers too: it carries CBOR payload spans.
fn transcode_payload(c: &mut Criterion) {
    use PayloadFormat::*;
    let pairs = [(Json, Cbor), (Cbor, Json), (Msgpack, Cbor), (Cbor, Msgpack)];
    let mut g = c.benchmark_group("serializers");
    for (size, payload) in sizes() {
        for (from, to) in pairs {
            let src = payload.encoded_in(from).expect("fixture encodes");
            let len = src.args.as_ref().map_or(0, |b| b.len()) + src.kwargs.as_ref().map_or(0, |b| b.len());
            let raw = Payload::Raw { format: from, args: src.args, kwargs: src.kwargs };
            // The transcode must preserve the values.
            let out = raw.encoded_in(to).expect("transcodes");
            let back = Payload::Raw { format: to, args: out.args, kwargs: out.kwargs };
            assert_eq!(back.to_values().expect("decodes"), raw.to_values().expect("decodes"));
            g.throughput(Throughput::Bytes(len as u64));
            g.bench_function(format!("transcode_payload_{}_to_{}_{size}", format_name(from), format_name(to)), |b| {
                b.iter(|| black_box(&raw).encoded_in(to).expect("transcodes"))
            });
        }
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = encode_event, decode_publish, transcode_payload
}
criterion_main!(benches);
