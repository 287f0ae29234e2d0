//! Tests shared by the JSON, MessagePack and CBOR serializers: round trips
//! of every message variant, payload splicing and transcoding, byte
//! compatibility with the Python reference libraries, and hostile input.

use bytes::Bytes;

use crate::ids::*;
use crate::payload::{decode_value, encode_value, Payload, PayloadFormat};
use crate::value::{Dict, List, Value};
use crate::{DecodeError, Message, Serializer, MAX_DEPTH};

const SERS: [Serializer; 3] = [Serializer::Json, Serializer::Msgpack, Serializer::Cbor];

fn dict(items: &[(&str, Value)]) -> Dict {
    items.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

fn rich_args() -> List {
    vec![
        Value::Str("Hello, wörld! \"quoted\" \\ \n €😀".into()),
        Value::UInt(42),
        Value::Int(-7),
        Value::UInt(u64::MAX),
        Value::Int(i64::MIN),
        Value::Float(1.5),
        Value::Float(-2.5e-7),
        Value::Bool(true),
        Value::Null,
        Value::Bytes(Bytes::from_static(b"\x00\x01binary\xff")),
        Value::List(vec![Value::UInt(1), Value::List(vec![])]),
        Value::Dict(dict(&[("nested", Value::Dict(Dict::new()))])),
    ]
}

fn rich_kwargs() -> Dict {
    dict(&[
        ("name", Value::from("Alice")),
        ("age", Value::UInt(30)),
        ("blob", Value::Bytes(Bytes::from_static(&[0u8; 40]))),
        ("ratio", Value::Float(0.1)),
    ])
}

fn payloads() -> Vec<Payload> {
    vec![
        Payload::EMPTY,
        Payload::values(Some(rich_args()), None),
        Payload::values(None, Some(rich_kwargs())),
        Payload::values(Some(rich_args()), Some(rich_kwargs())),
    ]
}

/// Every message variant, with every payload shape where one applies.
fn all_messages() -> Vec<Message> {
    let d = dict(&[("roles", Value::Dict(dict(&[("broker", Value::Dict(Dict::new()))]))), ("x", Value::UInt(1))]);
    let r = RequestId::from_valid(MAX_ID);
    let mut v = vec![
        Message::Hello { realm: "realm1".into(), details: d.clone() },
        Message::Welcome { session: SessionId::from_valid(9129137332), details: d.clone() },
        Message::Abort { details: d.clone(), reason: "wamp.error.no_such_realm".into() },
        Message::Challenge { method: "wampcra".into(), extra: d.clone() },
        Message::Authenticate { signature: "sig+/=".into(), extra: Dict::new() },
        Message::Goodbye { details: Dict::new(), reason: "wamp.close.normal".into() },
        Message::Published { request: r, publication: PublicationId::from_valid(0) },
        Message::Subscribe { request: r, options: d.clone(), topic: "com.topic".into() },
        Message::Subscribed { request: r, subscription: SubscriptionId::from_valid(5) },
        Message::Unsubscribe { request: r, subscription: SubscriptionId::from_valid(5) },
        Message::Unsubscribed { request: r, details: None },
        Message::Unsubscribed { request: r, details: Some(dict(&[("reason", Value::from("revoked"))])) },
        Message::EventReceived {
            publication: PublicationId::from_valid(77),
            details: Dict::new(),
            payload: Payload::EMPTY,
        },
        Message::Cancel { request: r, options: dict(&[("mode", Value::from("kill"))]) },
        Message::Register { request: r, options: Dict::new(), procedure: "com.proc".into() },
        Message::Registered { request: r, registration: RegistrationId::from_valid(3) },
        Message::Unregister { request: r, registration: RegistrationId::from_valid(3) },
        Message::Unregistered { request: r, details: None },
        Message::Unregistered { request: r, details: Some(Dict::new()) },
        Message::Interrupt { request: r, options: Dict::new() },
    ];
    for p in payloads() {
        v.push(Message::Error {
            request_type: 48,
            request: r,
            details: d.clone(),
            error: "com.error".into(),
            payload: p.clone(),
        });
        v.push(Message::Publish { request: r, options: d.clone(), topic: "com.topic".into(), payload: p.clone() });
        v.push(Message::Event {
            subscription: SubscriptionId::from_valid(1),
            publication: PublicationId::from_valid(2),
            details: d.clone(),
            payload: p.clone(),
        });
        v.push(Message::EventReceived {
            publication: PublicationId::from_valid(2),
            details: d.clone(),
            payload: p.clone(),
        });
        v.push(Message::Call { request: r, options: Dict::new(), procedure: "com.proc".into(), payload: p.clone() });
        v.push(Message::Result { request: r, details: Dict::new(), payload: p.clone() });
        v.push(Message::Invocation {
            request: r,
            registration: RegistrationId::from_valid(3),
            details: d.clone(),
            payload: p.clone(),
        });
        v.push(Message::Yield { request: r, options: Dict::new(), payload: p.clone() });
    }
    v
}

fn payload_of(m: &Message) -> Option<&Payload> {
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

/// The message with its payload decoded to values.
fn with_values(m: &Message) -> Message {
    let mut m = m.clone();
    let p = match &mut m {
        Message::Error { payload, .. }
        | Message::Publish { payload, .. }
        | Message::Event { payload, .. }
        | Message::EventReceived { payload, .. }
        | Message::Call { payload, .. }
        | Message::Result { payload, .. }
        | Message::Invocation { payload, .. }
        | Message::Yield { payload, .. } => payload,
        _ => return m,
    };
    let (a, k) = p.to_values().expect("payload decodes");
    *p = Payload::values(a, k);
    m
}

#[test]
fn every_message_round_trips() {
    let msgs = all_messages();
    assert!(msgs.len() > 40);
    for ser in SERS {
        for m in &msgs {
            let bytes = ser.encode(m).unwrap_or_else(|e| panic!("{ser}: encode {m:?}: {e}"));
            let back =
                ser.decode(&bytes).unwrap_or_else(|e| panic!("{ser}: decode {}: {e}", String::from_utf8_lossy(&bytes)));
            assert_eq!(with_values(&back), *m, "{ser}: round trip of {}", m.name());
            // Decoded payloads stay raw, share the input buffer, and splice
            // back to identical bytes.
            if let Some(Payload::Raw { format, args, kwargs }) = payload_of(&back) {
                assert_eq!(*format, ser.payload_format());
                for span in args.iter().chain(kwargs) {
                    let inside =
                        span.as_ptr() >= bytes.as_ptr() && span.as_ptr() < bytes.as_ptr().wrapping_add(bytes.len());
                    assert!(inside, "{ser}: payload span is not a slice of the input");
                }
            } else if let Some(p) = payload_of(&back) {
                assert!(p.is_empty(), "{ser}: decoded non-empty payload is not raw");
            }
            assert_eq!(ser.encode(&back).expect("re-encode"), bytes, "{ser}: re-encoding {} changed bytes", m.name());
        }
    }
}

#[test]
fn trailing_elements_follow_autobahn() {
    let kw_only = Message::Result {
        request: RequestId::from_valid(1),
        details: Dict::new(),
        payload: Payload::values(Some(vec![]), Some(dict(&[("a", Value::UInt(1))]))),
    };
    assert_eq!(&Serializer::Json.encode(&kw_only).unwrap()[..], br#"[50,1,{},[],{"a":1}]"#);
    let args_only = Message::Result {
        request: RequestId::from_valid(1),
        details: Dict::new(),
        payload: Payload::values(Some(vec![Value::UInt(1)]), Some(Dict::new())),
    };
    assert_eq!(&Serializer::Json.encode(&args_only).unwrap()[..], br#"[50,1,{},[1]]"#);
    let none = Message::Result {
        request: RequestId::from_valid(1),
        details: Dict::new(),
        payload: Payload::values(Some(vec![]), Some(Dict::new())),
    };
    assert_eq!(&Serializer::Json.encode(&none).unwrap()[..], br#"[50,1,{}]"#);
    let ack = Message::EventReceived {
        publication: PublicationId::from_valid(5),
        details: Dict::new(),
        payload: Payload::EMPTY,
    };
    assert_eq!(&Serializer::Json.encode(&ack).unwrap()[..], b"[337,5]");
    // Empty args/kwargs decode to None.
    for ser in SERS {
        let bytes = ser.encode(&kw_only).unwrap();
        match ser.decode(&bytes).unwrap() {
            Message::Result { payload: Payload::Raw { args: None, kwargs: Some(_), .. }, .. } => {}
            other => panic!("{ser}: unexpected {other:?}"),
        }
    }
    let m = crate::json::decode(&Bytes::from_static(b"[16, 1, {}, \"t\", [ ], { }]")).unwrap();
    assert!(matches!(m, Message::Publish { payload: Payload::Raw { args: None, kwargs: None, .. }, .. }));
}

#[test]
fn raw_payload_spans_are_exact() {
    let bytes = Bytes::from_static(b"[16 , 1,{},\"t\" ,  [1, \"a]\\\"\", {\"k\": [2]}] ,{\"x\" : null}  ]");
    match crate::json::decode(&bytes).unwrap() {
        Message::Publish { payload: Payload::Raw { args: Some(a), kwargs: Some(k), .. }, .. } => {
            assert_eq!(&a[..], b"[1, \"a]\\\"\", {\"k\": [2]}]");
            assert_eq!(&k[..], b"{\"x\" : null}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn transcoding_between_all_formats() {
    for from in SERS {
        for to in SERS {
            for m in all_messages() {
                let decoded = from.decode(&from.encode(&m).unwrap()).unwrap();
                let out = to.encode(&decoded).unwrap_or_else(|e| panic!("{from}->{to}: {e}"));
                let back = to.decode(&out).unwrap();
                assert_eq!(with_values(&back), m, "{from}->{to}: {}", m.name());
                // Payload::encoded_in agrees with the message encoders.
                if let Some(p) = payload_of(&decoded) {
                    let enc = p.encoded_in(to.payload_format()).unwrap();
                    if let Some(Payload::Raw { args, kwargs, .. }) = payload_of(&back) {
                        assert_eq!(&enc.args, args);
                        assert_eq!(&enc.kwargs, kwargs);
                    }
                }
            }
        }
    }
}

#[test]
fn transparent_payload_survives_every_path() {
    let opaque = Bytes::from_static(b"\x82\xa5color\xa6orange\x00\xff");
    for from in SERS {
        // Build the wire message as a plain value: binary in the args position.
        let wire = Value::List(vec![
            Value::UInt(16),
            Value::UInt(123),
            Value::Dict(dict(&[("enc_algo", Value::from("cryptobox"))])),
            Value::from("com.topic"),
            Value::Bytes(opaque.clone()),
        ]);
        let mut bytes = Vec::new();
        encode_value(from.payload_format(), &wire, &mut bytes).unwrap();
        let bytes = Bytes::from(bytes);
        let msg = from.decode(&bytes).unwrap();
        assert_eq!(from.encode(&msg).unwrap(), bytes, "{from}: verbatim splice");
        for to in SERS {
            let out = to.encode(&msg).unwrap();
            let v = decode_value(to.payload_format(), &out).unwrap();
            assert_eq!(v.as_list().unwrap()[4], Value::Bytes(opaque.clone()), "{from}->{to}");
            let enc = match &msg {
                Message::Publish { payload, .. } => payload.encoded_in(to.payload_format()).unwrap(),
                _ => unreachable!(),
            };
            assert_eq!(
                decode_value(to.payload_format(), enc.args.as_ref().unwrap()).unwrap(),
                Value::Bytes(opaque.clone())
            );
        }
    }
    // A binary payload must be the last element.
    let bad = Bytes::from_static(b"[16,1,{},\"t\",\"\\u0000AAE=\",{}]");
    assert!(crate::json::decode(&bad).is_err());
}

fn reference_value() -> Value {
    let mut v: List = vec![0u64, 23, 24, 127, 128, 255, 256, 65535, 65536, (1 << 32) - 1, 1 << 32, u64::MAX]
        .into_iter()
        .map(Value::UInt)
        .collect();
    for i in [-1i64, -24, -25, -32, -33, -128, -129, -32768, -32769, -(1 << 31), -(1 << 31) - 1, i64::MIN] {
        v.push(Value::Int(i));
    }
    v.extend([Value::Float(1.5), Value::Float(-0.0), Value::Bool(true), Value::Bool(false), Value::Null]);
    v.extend([Value::from(""), Value::from("x".repeat(31)), Value::from("y".repeat(32)), Value::from("z".repeat(256))]);
    v.extend([
        Value::Bytes(Bytes::new()),
        Value::Bytes(Bytes::from_static(b"\x00\x01")),
        Value::Bytes(Bytes::from(vec![b'b'; 300])),
    ]);
    v.push(Value::Dict(dict(&[
        ("k", Value::List(vec![Value::UInt(1), Value::Dict(dict(&[("n", Value::Null)]))])),
        ("é", Value::from("€😀")),
        ("esc", Value::from("a\"b\\c\n\r\t\u{8}\u{c}\u{0}\u{1}\u{1f}\u{7f}/")),
    ])));
    v.push(Value::List((0..16).map(Value::UInt).collect()));
    v.push(Value::Dict((0..16u64).map(|i| (i.to_string(), Value::UInt(i))).collect()));
    for f in [
        1e100,
        1e16,
        1e15,
        1.2345678901234568e17,
        1e-05,
        0.0001,
        0.1,
        1e22,
        5e-324,
        f64::MAX,
        2.5e-07,
        100.0,
        123.456,
        -1e-7,
        0.30000000000000004,
        12345678.9,
        9007199254740993.0,
        -2.0,
    ] {
        v.push(Value::Float(f));
    }
    Value::List(v)
}

#[test]
fn byte_compatible_with_python_reference_libraries() {
    let cases: [(PayloadFormat, &[u8]); 3] = [
        (PayloadFormat::Json, include_bytes!("../tests/data/reference.json")),
        (PayloadFormat::Msgpack, include_bytes!("../tests/data/reference.msgpack")),
        (PayloadFormat::Cbor, include_bytes!("../tests/data/reference.cbor")),
    ];
    let v = reference_value();
    for (format, reference) in cases {
        let mut out = Vec::new();
        encode_value(format, &v, &mut out).unwrap();
        if out != reference {
            let at = out.iter().zip(reference).position(|(a, b)| a != b).unwrap_or(out.len().min(reference.len()));
            panic!(
                "{format:?}: differs from the Python reference at byte {at}: ours {:?} vs {:?}",
                String::from_utf8_lossy(&out[at.saturating_sub(10)..(at + 20).min(out.len())]),
                String::from_utf8_lossy(&reference[at.saturating_sub(10)..(at + 20).min(reference.len())])
            );
        }
        let back = decode_value(format, &Bytes::from_static(reference)).unwrap();
        // -0.0 == 0.0 for PartialEq; check its sign separately.
        assert_eq!(back, v, "{format:?}: decoding the reference");
        let neg_zero = &back.as_list().unwrap()[25];
        assert!(matches!(neg_zero, Value::Float(f) if f.is_sign_negative()));
    }
}

// ---------------------------------------------------------------------------
// Hostile input

/// A deterministic xorshift generator (no external RNG needed).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn every_truncation_is_an_error() {
    for ser in SERS {
        for m in all_messages() {
            let bytes = ser.encode(&m).unwrap();
            for n in 0..bytes.len() {
                let prefix = bytes.slice(..n);
                assert!(ser.decode(&prefix).is_err(), "{ser}: prefix {n}/{} of {} decoded", bytes.len(), m.name());
            }
        }
        let v = reference_value();
        let mut full = Vec::new();
        encode_value(ser.payload_format(), &v, &mut full).unwrap();
        let full = Bytes::from(full);
        for n in 0..full.len() {
            // JSON: a prefix ending in a digit may be a valid shorter number only at top level, not inside '['.
            assert!(decode_value(ser.payload_format(), &full.slice(..n)).is_err(), "{ser}: value prefix {n} decoded");
        }
    }
}

#[test]
fn mutated_input_never_panics() {
    let mut rng = Rng(0x9e3779b97f4a7c15);
    let mut decoded_some = 0;
    for ser in SERS {
        for m in all_messages() {
            let bytes = ser.encode(&m).unwrap();
            for _ in 0..40 {
                let mut b = bytes.to_vec();
                for _ in 0..1 + rng.next() % 4 {
                    let i = (rng.next() % b.len() as u64) as usize;
                    match rng.next() % 3 {
                        0 => b[i] = rng.next() as u8,
                        1 => b[i] ^= 1 << (rng.next() % 8),
                        _ => {
                            b[i] = [0x00, 0xff, 0x7f, 0x80, b'"', b'[', b'{', b'\\', 0xdd, 0x9b]
                                [(rng.next() % 10) as usize]
                        }
                    }
                }
                if let Ok(m) = ser.decode(&Bytes::from(b)) {
                    decoded_some += 1;
                    // Whatever decodes must re-encode (transcode included).
                    for to in SERS {
                        let _ = to.encode(&m);
                    }
                }
            }
        }
    }
    assert!(decoded_some > 0, "mutations never produced a decodable message (generator broken?)");
}

fn prefix_publish(ser: Serializer) -> Vec<u8> {
    // [16, 1, {}, "t", <args follows>]
    match ser {
        Serializer::Msgpack => vec![0x95, 0x10, 0x01, 0x80, 0xa1, b't'],
        Serializer::Cbor => vec![0x85, 0x10, 0x01, 0xa0, 0x61, b't'],
        _ => b"[16,1,{},\"t\",".to_vec(),
    }
}

#[test]
fn absurd_lengths_are_rejected_without_allocating() {
    let cases: Vec<(Serializer, Vec<u8>)> = vec![
        (Serializer::Msgpack, vec![0xdd, 0xff, 0xff, 0xff, 0xff]),
        (Serializer::Msgpack, vec![0xdf, 0xff, 0xff, 0xff, 0xff]),
        (Serializer::Msgpack, vec![0xdb, 0xff, 0xff, 0xff, 0xff, b'a']),
        (Serializer::Msgpack, vec![0xc6, 0xff, 0xff, 0xff, 0xff, 0]),
        (Serializer::Cbor, vec![0x9b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        (Serializer::Cbor, vec![0xbb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        (Serializer::Cbor, vec![0x7b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, b'a']),
        (Serializer::Cbor, vec![0x5b, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]),
        (Serializer::Cbor, vec![0x9f, 0x01, 0x02]),
    ];
    for (ser, body) in cases {
        // As a whole message, as a payload element, and as a lone value.
        assert!(ser.decode(&Bytes::from(body.clone())).is_err(), "{ser} {body:x?}");
        let mut m = prefix_publish(ser);
        m.extend_from_slice(&body);
        assert!(ser.decode(&Bytes::from(m)).is_err(), "{ser} payload {body:x?}");
        assert!(decode_value(ser.payload_format(), &Bytes::from(body.clone())).is_err());
        // Inside an options dict (decoded to values, so the reservation path runs).
        let mut m = match ser {
            Serializer::Msgpack => vec![0x94, 0x20, 0x01, 0x81, 0xa1, b'k'],
            _ => vec![0x84, 0x18, 0x20, 0x01, 0xa1, 0x61, b'k'],
        };
        m.extend_from_slice(&body);
        assert!(ser.decode(&Bytes::from(m)).is_err());
    }
}

fn nested(ser: Serializer, depth: usize) -> Vec<u8> {
    let (open, close): (&[u8], &[u8]) = match ser {
        Serializer::Json => (b"[", b"]"),
        Serializer::Msgpack => (&[0x91], &[]),
        _ => (&[0x81], &[]),
    };
    let leaf: &[u8] = match ser {
        Serializer::Json => b"1",
        _ => &[0x01],
    };
    let mut v = open.repeat(depth);
    v.extend_from_slice(leaf);
    v.extend(close.repeat(depth));
    v
}

#[test]
fn nesting_beyond_max_depth_is_rejected() {
    for ser in SERS {
        let f = ser.payload_format();
        assert!(
            decode_value(f, &Bytes::from(nested(ser, MAX_DEPTH))).is_ok(),
            "{ser}: MAX_DEPTH levels must be accepted"
        );
        assert_eq!(decode_value(f, &Bytes::from(nested(ser, MAX_DEPTH + 1))), Err(DecodeError::TooDeep(MAX_DEPTH)));
        assert_eq!(decode_value(f, &Bytes::from(nested(ser, 100_000))), Err(DecodeError::TooDeep(MAX_DEPTH)));
        // In the (skipped, not decoded) args position.
        let mut m = prefix_publish(ser);
        m[0] = match ser {
            Serializer::Json => b'[',
            Serializer::Msgpack => 0x95,
            _ => 0x85,
        };
        m.extend(nested(ser, 100_000));
        if ser == Serializer::Json {
            m.push(b']');
        }
        assert_eq!(ser.decode(&Bytes::from(m)), Err(DecodeError::TooDeep(MAX_DEPTH)), "{ser}");
        // Encoding refuses values we could not decode.
        let mut deep = Value::Null;
        for _ in 0..MAX_DEPTH + 1 {
            deep = Value::List(vec![deep]);
        }
        assert!(encode_value(f, &deep, &mut Vec::new()).is_err());
    }
}

#[test]
fn invalid_utf8_is_rejected() {
    let cases: [(Serializer, &[u8]); 6] = [
        (Serializer::Json, b"[1,\"r\xff\",{}]"),
        (Serializer::Json, b"[16,1,{},\"t\",[\"\xc3\"]]"),
        (Serializer::Msgpack, &[0x93, 0x01, 0xa2, 0xff, 0xfe, 0x80]),
        (Serializer::Msgpack, &[0x95, 0x10, 0x01, 0x80, 0xa1, b't', 0x91, 0xa1, 0xc3]),
        (Serializer::Cbor, &[0x83, 0x01, 0x62, 0xff, 0xfe, 0xa0]),
        (Serializer::Cbor, &[0x85, 0x10, 0x01, 0xa0, 0x61, b't', 0x81, 0x7f, 0x61, 0xc3, 0x61, 0xa9, 0xff]),
    ];
    for (ser, b) in cases {
        assert!(ser.decode(&Bytes::from_static(b)).is_err(), "{ser} {b:x?}");
    }
    // But a split-free indefinite CBOR text string is fine.
    let ok = [0x83, 0x01, 0x7f, 0x61, b'r', 0x61, b'1', 0xff, 0xa0];
    assert!(
        matches!(Serializer::Cbor.decode(&Bytes::copy_from_slice(&ok)), Ok(Message::Hello { realm, .. }) if realm == "r1")
    );
}

#[test]
fn trailing_bytes_are_rejected() {
    for ser in SERS {
        let m = Message::Goodbye { details: Dict::new(), reason: "wamp.close.normal".into() };
        let mut b = ser.encode(&m).unwrap().to_vec();
        b.push(if ser == Serializer::Json { b'x' } else { 0x00 });
        assert!(ser.decode(&Bytes::from(b)).is_err(), "{ser}");
        let mut v = Vec::new();
        encode_value(ser.payload_format(), &Value::UInt(1), &mut v).unwrap();
        v.extend_from_slice(if ser == Serializer::Json { b" 2" } else { &[0x01] });
        assert!(decode_value(ser.payload_format(), &Bytes::from(v)).is_err(), "{ser}");
    }
    // JSON allows surrounding whitespace.
    assert!(crate::json::decode(&Bytes::from_static(b" \n[6,{},\"r\"] \r\n")).is_ok());
}

fn wire(ser: Serializer, items: Vec<Value>) -> Bytes {
    let mut out = Vec::new();
    encode_value(ser.payload_format(), &Value::List(items), &mut out).unwrap();
    Bytes::from(out)
}

#[test]
fn invalid_messages_get_helpful_errors() {
    let s = |x: &str| Value::from(x);
    let e = || Value::Dict(Dict::new());
    let cases: Vec<(Vec<Value>, &str)> = vec![
        (vec![Value::UInt(16), Value::UInt(1), e(), Value::UInt(5)], "PUBLISH: Topic|uri must be a string"),
        (vec![Value::UInt(16), Value::UInt((1 << 53) + 1), e(), s("t")], "outside [0, 2^53]"),
        (vec![Value::UInt(16), Value::Int(-1), e(), s("t")], "Request|id must be a non-negative integer"),
        (vec![Value::UInt(16), Value::Float(1.0), e(), s("t")], "Request|id must be a non-negative integer"),
        (vec![Value::UInt(16), Value::UInt(1), e()], "PUBLISH: missing Topic|uri"),
        (vec![Value::UInt(16), Value::UInt(1), e(), s("t"), e()], "Arguments|list must be a list"),
        (
            vec![Value::UInt(16), Value::UInt(1), e(), s("t"), Value::List(vec![]), Value::List(vec![])],
            "ArgumentsKw|dict must be a dict",
        ),
        (
            vec![Value::UInt(16), Value::UInt(1), e(), s("t"), Value::List(vec![]), e(), e()],
            "PUBLISH: too many elements",
        ),
        (vec![Value::UInt(1), s("realm"), Value::List(vec![])], "HELLO: Details|dict must be a dict"),
        (vec![Value::UInt(33), Value::UInt(1)], "SUBSCRIBED: missing Subscription|id"),
        (vec![Value::UInt(35), Value::UInt(1), s("x")], "UNSUBSCRIBED: Details|dict must be a dict"),
        (vec![s("16")], "message type must be a non-negative integer"),
        (vec![], "empty message"),
    ];
    for ser in SERS {
        for (items, want) in &cases {
            match ser.decode(&wire(ser, items.clone())) {
                Err(DecodeError::Invalid(text)) => {
                    assert!(text.contains(want), "{ser}: {text:?} lacks {want:?}")
                }
                other => panic!("{ser}: expected Invalid({want}), got {other:?}"),
            }
        }
        assert_eq!(ser.decode(&wire(ser, vec![Value::UInt(99), Value::UInt(1)])), Err(DecodeError::UnknownType(99)));
        assert!(matches!(ser.decode(&wire(ser, vec![]).slice(..0)), Err(DecodeError::Malformed { .. })));
        let not_array = {
            let mut o = Vec::new();
            encode_value(ser.payload_format(), &e(), &mut o).unwrap();
            Bytes::from(o)
        };
        assert!(matches!(ser.decode(&not_array), Err(DecodeError::Invalid(_))));
    }
    // Map keys must be strings.
    assert!(crate::msgpack::decode_value(&Bytes::from_static(&[0x81, 0x01, 0x01])).is_err());
    assert!(crate::cbor::decode_value(&Bytes::from_static(&[0xa1, 0x01, 0x01])).is_err());
    assert!(crate::json::decode_value(&Bytes::from_static(b"{1:1}")).is_err());
}

// ---------------------------------------------------------------------------
// JavaScript `undefined` (MessagePack `d4 00 00`, CBOR `f7`)

/// The bytes wampy.js 8.0.2 sends for `subscribe("com.example.topic", cb)`
/// (captured from a real wampy session): `[32, 1, {match: undefined,
/// get_retained: undefined}, "com.example.topic"]`. msgpackr writes the map
/// as map16 and `undefined` as fixext1 type 0; cbor-x writes a 16-bit-length
/// map and simple value 23.
const WAMPY_SUBSCRIBE_MSGPACK: &str =
    "942001de0002a56d61746368d40000ac6765745f72657461696e6564d40000b1636f6d2e6578616d706c652e746f706963";
const WAMPY_SUBSCRIBE_CBOR: &str =
    "84182001b90002656d61746368f76c6765745f72657461696e6564f771636f6d2e6578616d706c652e746f706963";

fn unhex(s: &str) -> Bytes {
    Bytes::from(crate::hex::decode(s).expect("test vector is hex"))
}

fn undefined_bytes(ser: Serializer) -> &'static [u8] {
    match ser {
        Serializer::Msgpack => &[0xd4, 0x00, 0x00],
        Serializer::Cbor => &[0xf7],
        other => panic!("{other} has no undefined"),
    }
}

/// A string value that stands in for `undefined` until [`put_undefined`]
/// swaps its encoding for the real bytes (neither format counts bytes in
/// containers, so the swap keeps the message well-formed).
const UNDEF_MARK: &str = "\u{1}undefined\u{1}";

fn put_undefined(ser: Serializer, bytes: &[u8]) -> Bytes {
    let mut mark = Vec::new();
    encode_value(ser.payload_format(), &Value::from(UNDEF_MARK), &mut mark).unwrap();
    let (mut out, mut i, mut swapped) = (Vec::new(), 0, 0);
    while i < bytes.len() {
        if bytes[i..].starts_with(&mark) {
            out.extend_from_slice(undefined_bytes(ser));
            i += mark.len();
            swapped += 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    assert!(swapped > 0, "{ser}: no marker in the message");
    Bytes::from(out)
}

/// Every Details/Options/Extra dict of `m`.
fn dicts_mut(m: &mut Message) -> Vec<&mut Dict> {
    match m {
        Message::Hello { details: d, .. }
        | Message::Welcome { details: d, .. }
        | Message::Abort { details: d, .. }
        | Message::Challenge { extra: d, .. }
        | Message::Authenticate { extra: d, .. }
        | Message::Goodbye { details: d, .. }
        | Message::Error { details: d, .. }
        | Message::Publish { options: d, .. }
        | Message::Subscribe { options: d, .. }
        | Message::Event { details: d, .. }
        | Message::EventReceived { details: d, .. }
        | Message::Call { options: d, .. }
        | Message::Cancel { options: d, .. }
        | Message::Result { details: d, .. }
        | Message::Register { options: d, .. }
        | Message::Invocation { details: d, .. }
        | Message::Interrupt { options: d, .. }
        | Message::Yield { options: d, .. } => vec![d],
        Message::Unsubscribed { details: d, .. } | Message::Unregistered { details: d, .. } => d.iter_mut().collect(),
        Message::Published { .. }
        | Message::Subscribed { .. }
        | Message::Unsubscribe { .. }
        | Message::Registered { .. }
        | Message::Unregister { .. } => vec![],
    }
}

#[test]
fn wampy_subscribe_with_undefined_options_is_a_plain_subscribe() {
    let want = Message::Subscribe {
        request: RequestId::from_valid(1),
        options: Dict::new(),
        topic: "com.example.topic".into(),
    };
    for (ser, vector) in [(Serializer::Msgpack, WAMPY_SUBSCRIBE_MSGPACK), (Serializer::Cbor, WAMPY_SUBSCRIBE_CBOR)] {
        let got = ser.decode(&unhex(vector)).unwrap_or_else(|e| panic!("{ser}: wampy's SUBSCRIBE refused: {e}"));
        assert_eq!(got, want, "{ser}: undefined options must be absent, not null");
        // Re-encoded, the keys are gone for good.
        assert_eq!(ser.decode(&ser.encode(&got).unwrap()).unwrap(), want, "{ser}");
    }
    // A defined option beside an undefined one is kept.
    let m = Message::Subscribe {
        request: RequestId::from_valid(7),
        options: dict(&[("match", Value::from("prefix")), ("get_retained", Value::from(UNDEF_MARK))]),
        topic: "com.example".into(),
    };
    for ser in [Serializer::Msgpack, Serializer::Cbor] {
        let got = ser.decode(&put_undefined(ser, &ser.encode(&m).unwrap())).unwrap();
        let Message::Subscribe { options, .. } = got else { panic!("{ser}: {got:?}") };
        assert_eq!(options, dict(&[("match", Value::from("prefix"))]), "{ser}");
    }
}

/// In every dict element of every message type, an `undefined` value (at
/// the top of the dict, in a nested dict, in a dict inside a list) means
/// the key is absent; everything else in the message is untouched.
#[test]
fn undefined_in_every_details_options_dict_is_absent() {
    let mark = || Value::from(UNDEF_MARK);
    let mut covered = std::collections::BTreeSet::new();
    for ser in [Serializer::Msgpack, Serializer::Cbor] {
        for original in all_messages() {
            let mut sent = original.clone();
            let mut expected = original.clone();
            if dicts_mut(&mut sent).is_empty() {
                continue;
            }
            for d in dicts_mut(&mut sent) {
                d.insert("ghost".into(), mark());
                d.insert(
                    "nested".into(),
                    Value::Dict(dict(&[
                        ("inner", mark()),
                        ("keep", Value::UInt(1)),
                        ("list", Value::List(vec![Value::Dict(dict(&[("deep", mark()), ("x", Value::Null)]))])),
                    ])),
                );
            }
            for d in dicts_mut(&mut expected) {
                d.insert(
                    "nested".into(),
                    Value::Dict(dict(&[
                        ("keep", Value::UInt(1)),
                        ("list", Value::List(vec![Value::Dict(dict(&[("x", Value::Null)]))])),
                    ])),
                );
            }
            let bytes = put_undefined(ser, &ser.encode(&sent).unwrap());
            let got = ser.decode(&bytes).unwrap_or_else(|e| panic!("{ser}: {}: {e}", original.name()));
            assert_eq!(with_values(&got), expected, "{ser}: {}", original.name());
            covered.insert(original.code());
        }
    }
    // Every message type that has a dict was exercised.
    let want = [1, 2, 3, 4, 5, 6, 8, 16, 32, 35, 36, 337, 48, 49, 50, 64, 67, 68, 69, 70];
    assert_eq!(covered, want.into_iter().collect(), "message types with a dict");
}

fn expect_undefined(r: Result<impl std::fmt::Debug, DecodeError>, place: &str, what: &str) {
    match r {
        Err(e @ DecodeError::Undefined { .. }) => {
            let DecodeError::Undefined { place: p, .. } = &e else { unreachable!() };
            assert_eq!(*p, place, "{what}: {e}");
            let text = e.to_string();
            assert!(text.contains("undefined") && text.contains("Details/Options"), "{what}: unclear error {text:?}");
        }
        other => panic!("{what}: expected DecodeError::Undefined({place}), got {other:?}"),
    }
}

#[test]
fn undefined_anywhere_else_is_a_clear_error() {
    let app = "in application data (args/kwargs)";
    let opt_list = "as a list element in a Details/Options dict";
    for ser in [Serializer::Msgpack, Serializer::Cbor] {
        let fmt = ser.payload_format();
        let u = undefined_bytes(ser);
        let val = |bytes: &[u8]| decode_value(fmt, &Bytes::copy_from_slice(bytes));
        // Standalone values (what a payload transcode decodes).
        expect_undefined(val(u), app, &format!("{ser}: bare undefined"));
        let mut in_list = Vec::new();
        encode_value(fmt, &Value::List(vec![Value::UInt(1), Value::from(UNDEF_MARK)]), &mut in_list).unwrap();
        expect_undefined(val(&put_undefined(ser, &in_list)), app, &format!("{ser}: list element"));
        let mut in_dict = Vec::new();
        encode_value(fmt, &Value::Dict(dict(&[("k", Value::from(UNDEF_MARK))])), &mut in_dict).unwrap();
        expect_undefined(val(&put_undefined(ser, &in_dict)), app, &format!("{ser}: dict value"));

        // A list element inside an Options dict: there is no "absent" for it.
        let sub = Message::Subscribe {
            request: RequestId::from_valid(1),
            options: dict(&[("list", Value::List(vec![Value::from(UNDEF_MARK)]))]),
            topic: "t".into(),
        };
        let bytes = put_undefined(ser, &ser.encode(&sub).unwrap());
        expect_undefined(ser.decode(&bytes), opt_list, &format!("{ser}: list in Options"));

        // As a message element of its own: the usual "must be" errors.
        let mark = || Value::from(UNDEF_MARK);
        let e = || Value::Dict(Dict::new());
        for (items, want) in [
            (
                vec![Value::UInt(32), mark(), e(), Value::from("t")],
                "SUBSCRIBE: Request|id must be a non-negative integer",
            ),
            (vec![Value::UInt(32), Value::UInt(1), mark(), Value::from("t")], "SUBSCRIBE: Options|dict must be a dict"),
            (vec![Value::UInt(32), Value::UInt(1), e(), mark()], "SUBSCRIBE: Topic|uri must be a string"),
            (vec![mark()], "message type must be a non-negative integer"),
        ] {
            let mut raw = Vec::new();
            encode_value(fmt, &Value::List(items), &mut raw).unwrap();
            match ser.decode(&put_undefined(ser, &raw)) {
                Err(DecodeError::Invalid(text)) => assert!(text.contains(want), "{ser}: {text:?} lacks {want:?}"),
                other => panic!("{ser}: expected Invalid({want}), got {other:?}"),
            }
        }
    }
}

/// Args/kwargs are not decoded on the way through, so each format keeps
/// what it did before: MessagePack refuses every extension type in a
/// payload (the message fails to decode), CBOR passes `undefined` to CBOR
/// peers verbatim, and any transcode or decode of it is a clear error.
#[test]
fn undefined_in_payloads_keeps_passthrough_and_fails_decoding() {
    let publish = |args: Vec<Value>, kwargs: Dict| Message::Publish {
        request: RequestId::from_valid(1),
        options: Dict::new(),
        topic: "t".into(),
        payload: Payload::values(Some(args), Some(kwargs)),
    };
    let m = publish(vec![Value::UInt(1), Value::from(UNDEF_MARK)], dict(&[("k", Value::from(UNDEF_MARK))]));

    let mp = put_undefined(Serializer::Msgpack, &Serializer::Msgpack.encode(&m).unwrap());
    expect_undefined(Serializer::Msgpack.decode(&mp), "in application data (args/kwargs)", "msgpack payload");

    let cb = put_undefined(Serializer::Cbor, &Serializer::Cbor.encode(&m).unwrap());
    let got = Serializer::Cbor.decode(&cb).expect("CBOR payloads are not decoded on the way through");
    assert_eq!(Serializer::Cbor.encode(&got).unwrap(), cb, "CBOR splices the payload verbatim");
    let Some(p) = payload_of(&got) else { panic!("no payload: {got:?}") };
    expect_undefined(p.to_values(), "in application data (args/kwargs)", "cbor payload to_values");
    for target in [Serializer::Json, Serializer::Msgpack] {
        match target.encode(&got) {
            Err(crate::EncodeError::Transcode(text)) => {
                assert!(text.contains("undefined"), "{target}: unclear transcode error {text:?}")
            }
            other => panic!("{target}: expected a transcode error, got {other:?}"),
        }
    }
}

/// Only `d4 00 00` is `undefined`; every other extension value is refused
/// wherever it appears, Options dicts included.
#[test]
fn other_msgpack_extensions_are_still_refused() {
    for ext in [&[0xd4, 0x00, 0x01][..], &[0xd4, 0x01, 0x00], &[0xd5, 0x00, 0x00, 0x00], &[0xc7, 0x01, 0x00, 0x00]] {
        assert!(
            matches!(crate::msgpack::decode_value(&Bytes::copy_from_slice(ext)), Err(DecodeError::Malformed { .. })),
            "{ext:x?}"
        );
        let mut m = vec![0x94, 0x20, 0x01, 0x81, 0xa1, b'k'];
        m.extend_from_slice(ext);
        m.extend_from_slice(&[0xa1, b't']);
        match Serializer::Msgpack.decode(&Bytes::from(m)) {
            Err(DecodeError::Malformed { detail, .. }) => assert!(detail.contains("extension"), "{detail}"),
            other => panic!("{ext:x?} in Options: {other:?}"),
        }
    }
    // A truncated d4 is an error, not a panic.
    assert!(crate::msgpack::decode_value(&Bytes::from_static(&[0xd4, 0x00])).is_err());
}

#[test]
fn encode_into_appends_exactly_what_encode_returns() {
    let msg = Message::Publish {
        request: crate::RequestId::from_valid(7),
        options: Dict::new(),
        topic: "com.example.t".into(),
        payload: Payload::values(Some(vec![Value::UInt(1), Value::Str("x".into())]), None),
    };
    for ser in [Serializer::Json, Serializer::Msgpack, Serializer::Cbor, Serializer::Flatbuffers] {
        let mut out = b"prefix".to_vec();
        ser.encode_into(&msg, &mut out).expect("encode_into");
        assert_eq!(&out[..6], b"prefix", "{ser}");
        assert_eq!(&out[6..], &ser.encode(&msg).expect("encode")[..], "{ser}");
    }
}

// Found by fuzzing (fuzz/corpus/wamp_msgpack/crash-nul-string-to-json,
// fuzz/corpus/wamp_cbor/crash-nul-string-to-json): a MessagePack or CBOR
// string starting with NUL (here an authrole in PUBLISH.Options.forward_for)
// was written to JSON as is, where a NUL prefix means base64 binary, so the
// JSON peer got a message that does not decode (or decodes to bytes). Such a
// string is now unrepresentable in JSON.
#[test]
fn a_string_starting_with_nul_is_not_representable_in_json() {
    let mut options = Dict::new();
    options.insert("x".into(), Value::from("\0\x01H"));
    let msg = Message::Publish {
        request: RequestId::from_valid(1),
        options,
        topic: "com.t".into(),
        payload: Payload::Values { args: Some(vec![Value::from("\0AAEC")]), kwargs: None },
    };
    for ser in [Serializer::Msgpack, Serializer::Cbor] {
        let b = ser.encode(&msg).expect("msgpack and cbor carry any string");
        let back = ser.decode(&b).expect("decodes");
        match Serializer::Json.encode(&back) {
            Err(crate::EncodeError::Unrepresentable { format: "json", detail }) => {
                assert!(detail.contains("U+0000"), "{detail}")
            }
            other => panic!("{ser} → json: expected Unrepresentable, got {other:?}"),
        }
    }
    let mut out = Vec::new();
    assert!(encode_value(PayloadFormat::Json, &Value::from("\0"), &mut out).is_err());
    // A NUL elsewhere in a string, and binary values, are fine.
    let mut out = Vec::new();
    encode_value(PayloadFormat::Json, &Value::from("a\0"), &mut out).expect("inner NUL");
    assert_eq!(out, br#""a\u0000""#);
    let mut out = Vec::new();
    encode_value(PayloadFormat::Json, &Value::Bytes(Bytes::from_static(b"\x00")), &mut out).expect("binary");
    assert_eq!(
        decode_value(PayloadFormat::Json, &Bytes::from(out)).expect("binary back"),
        Value::Bytes(Bytes::from_static(b"\x00"))
    );
}

// Found by fuzzing (fuzz/corpus/wamp_flatbuffers/crash-bad-cbor-args): the
// Flatbuffers decoder kept args/kwargs as raw CBOR spans without checking
// them, so a message with malformed CBOR args (here an array head with the
// reserved additional information 30) was accepted, and spliced verbatim
// into a CBOR message that no peer (not even we) can decode. The spans are
// now validated: one well-formed CBOR array (args) resp. map (kwargs).
#[test]
fn flatbuffers_args_and_kwargs_must_be_well_formed_cbor() {
    let good = Message::Publish {
        request: RequestId::from_valid(1),
        options: Dict::new(),
        topic: "com.t".into(),
        payload: Payload::Values {
            args: Some(vec![Value::UInt(1), Value::UInt(2)]),
            kwargs: Some(dict(&[("k", Value::UInt(3))])),
        },
    };
    let bytes = Serializer::Flatbuffers.encode(&good).expect("encodes");
    let back = Serializer::Flatbuffers.decode(&bytes).expect("valid payload decodes");
    assert!(Serializer::Cbor.decode(&Serializer::Cbor.encode(&back).expect("to cbor")).is_ok());
    // Corrupt the args span: [1, 2] is 0x82 0x01 0x02 in CBOR.
    let pos = bytes.windows(3).position(|w| w == [0x82, 0x01, 0x02]).expect("args span in the buffer");
    for (bad, what) in [(0x9e, "reserved additional information"), (0xa2, "not a CBOR array"), (0x83, "truncated")] {
        let mut v = bytes.to_vec();
        v[pos] = bad;
        let r = Serializer::Flatbuffers.decode(&Bytes::from(v));
        assert!(r.is_err(), "{what}: accepted {r:?}");
    }
    // Corrupt the kwargs span: {"k": 3} is 0xa1 0x61 'k' 0x03.
    let pos = bytes.windows(4).position(|w| w == [0xa1, 0x61, b'k', 0x03]).expect("kwargs span in the buffer");
    let mut v = bytes.to_vec();
    v[pos] = 0x81;
    assert!(Serializer::Flatbuffers.decode(&Bytes::from(v)).is_err(), "kwargs that are a list accepted");
    // The fuzzer's input itself.
    let crash = include_bytes!("../../fuzz/corpus/wamp_flatbuffers/crash-bad-cbor-args");
    assert!(Serializer::Flatbuffers.decode(&Bytes::from_static(crash)).is_err());
}

// Found by fuzzing (fuzz/corpus/wamp_flatbuffers/crash-u64-vector-overflow):
// re-encoding a decoded PUBLISH with an `exclude` list panicked (subtract
// with overflow in the Flatbuffers builder) when the list's u64 elements
// filled the buffer exactly: the id vectors announce 4-byte elements
// (as Autobahn does), so the room reserved for the vector's length word was
// used up. Every list length now encodes and decodes back.
#[test]
fn flatbuffers_id_vectors_of_any_length_encode() {
    for n in 0..300u64 {
        let ids: List = (1..=n).map(Value::UInt).collect();
        let mut options = Dict::new();
        options.insert("exclude".into(), Value::List(ids.clone()));
        options.insert("eligible".into(), Value::List(ids.iter().rev().cloned().collect()));
        let msg = Message::Publish {
            request: RequestId::from_valid(n + 1),
            options,
            topic: "com.t".into(),
            payload: Payload::EMPTY,
        };
        let bytes = Serializer::Flatbuffers.encode(&msg).expect("encodes");
        let back = Serializer::Flatbuffers.decode(&bytes).expect("decodes");
        let Message::Publish { options, .. } = back else { panic!("not a PUBLISH") };
        let want = if n == 0 { None } else { Some(&Value::List(ids)) };
        assert_eq!(options.get("exclude"), want, "{n} ids");
    }
    let crash = include_bytes!("../../fuzz/corpus/wamp_flatbuffers/crash-u64-vector-overflow");
    let msg = Serializer::Flatbuffers.decode(&Bytes::from_static(crash)).expect("the fuzzer's input decodes");
    let again = Serializer::Flatbuffers.encode(&msg).expect("and re-encodes");
    assert!(Serializer::Flatbuffers.decode(&again).is_ok());
}

#[test]
fn encode_matches_encode_into_across_scratch_reuse_and_sizes() {
    // Small messages go through the per-thread scratch buffer, large ones
    // (estimate above 4 KiB) through their own buffer: each `Bytes` must
    // stay its own message after later encodes reuse the scratch.
    let big = Message::Publish {
        request: RequestId::from_valid(9),
        options: Dict::new(),
        topic: "com.example.big".into(),
        payload: Payload::Raw {
            format: PayloadFormat::Cbor,
            args: Some(Bytes::from(
                vec![0x9f; 1].into_iter().chain(vec![0x01; 20_000]).chain([0xff]).collect::<Vec<u8>>(),
            )),
            kwargs: None,
        },
    };
    for ser in [Serializer::Msgpack, Serializer::Cbor] {
        let mut msgs = all_messages();
        if ser == Serializer::Cbor {
            msgs.push(big.clone());
        }
        let encoded: Vec<Bytes> = msgs.iter().map(|m| ser.encode(m).expect("encode")).collect();
        for (m, e) in msgs.iter().zip(&encoded) {
            let mut into = b"prefix".to_vec();
            ser.encode_into(m, &mut into).expect("encode_into");
            assert_eq!(&into[6..], &e[..], "{ser:?} {m:?}");
            assert_eq!(ser.decode(e).expect("decode").code(), m.code());
        }
    }
    assert!(Serializer::Cbor.encode(&big).expect("big").len() > 20_000);
}
