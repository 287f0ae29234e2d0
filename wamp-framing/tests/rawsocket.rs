//! RawSocket handshake and framing tests.

use bytes::{Bytes, BytesMut};
use wamp_framing::rawsocket::{
    accept_handshake, client_handshake, encode_frame_header, error_reply, exponent_for_size, length_from_exponent,
    negotiate, parse_server_reply, write_frame, FrameKind, Handshake, HandshakeErrorCode, RawSocketConfig,
    RawSocketDecoder, RawSocketError, RawSocketEvent, MAX_FRAME_PAYLOAD,
};
use wamp_proto::Serializer;

fn accepted(h: Handshake) -> wamp_framing::rawsocket::Negotiated {
    match h {
        Handshake::Accepted(n) => n,
        other => panic!("expected accept, got {other:?}"),
    }
}

#[test]
fn handshake_accepts_and_advertises_our_limit() {
    let cfg = RawSocketConfig::default();
    let n = accepted(negotiate([0x7F, 0xF2, 0, 0], &cfg).expect("magic ok"));
    assert_eq!(n.serializer, Serializer::Msgpack);
    assert_eq!(n.reply, [0x7F, 0xF2, 0, 0]);
    assert_eq!(n.peer_max_length, MAX_FRAME_PAYLOAD);
    assert_eq!(n.our_max_length, MAX_FRAME_PAYLOAD);

    // 1_000_000 bytes: 2^19 <= 1e6 < 2^20, so L = 10.
    let cfg = RawSocketConfig { max_message_size: 1_000_000, ..RawSocketConfig::default() };
    let n = accepted(negotiate([0x7F, 0x01, 0, 0], &cfg).expect("magic ok"));
    assert_eq!(n.serializer, Serializer::Json);
    assert_eq!(n.reply, [0x7F, 0xA1, 0, 0]);
    assert_eq!(n.our_max_length, 1 << 19);
    assert_eq!(n.peer_max_length, 512);

    for (ser, id) in
        [(Serializer::Json, 1), (Serializer::Msgpack, 2), (Serializer::Cbor, 3), (Serializer::Flatbuffers, 5)]
    {
        let n = accepted(negotiate([0x7F, 0x30 | id, 0, 0], &cfg).expect("ok"));
        assert_eq!(n.serializer, ser);
        assert_eq!(n.reply[1] & 0x0F, id);
        assert_eq!(n.peer_max_length, 4096);
    }
}

#[test]
fn exponent_clamping() {
    assert_eq!(exponent_for_size(0), 0);
    assert_eq!(exponent_for_size(511), 0);
    assert_eq!(exponent_for_size(512), 0);
    assert_eq!(exponent_for_size(1023), 0);
    assert_eq!(exponent_for_size(1024), 1);
    assert_eq!(exponent_for_size(1 << 24), 15);
    assert_eq!(exponent_for_size(usize::MAX), 15);
    assert_eq!(length_from_exponent(15), 1 << 24);
    assert_eq!(length_from_exponent(200), 1 << 24);
}

#[test]
fn handshake_error_codes() {
    let cfg = RawSocketConfig {
        serializers: vec![Serializer::Cbor, Serializer::Json],
        min_peer_max_length: 4096,
        ..RawSocketConfig::default()
    };
    let rejected = |req: [u8; 4]| match negotiate(req, &cfg) {
        Ok(Handshake::Rejected { reply, code }) => {
            assert_eq!(reply, error_reply(code));
            assert_eq!(reply[1] & 0x0F, 0);
            code
        }
        other => panic!("expected rejection for {req:?}, got {other:?}"),
    };
    // 1: serializer unsupported (not in our set, unknown id, UBJSON, zero).
    assert_eq!(rejected([0x7F, 0xF2, 0, 0]), HandshakeErrorCode::SerializerUnsupported);
    assert_eq!(rejected([0x7F, 0xF4, 0, 0]), HandshakeErrorCode::SerializerUnsupported);
    assert_eq!(rejected([0x7F, 0xF0, 0, 0]), HandshakeErrorCode::SerializerUnsupported);
    assert_eq!(rejected([0x7F, 0xFF, 0, 0]), HandshakeErrorCode::SerializerUnsupported);
    // 2: client cannot receive 4096 bytes.
    assert_eq!(rejected([0x7F, 0x23, 0, 0]), HandshakeErrorCode::MaxLengthUnacceptable);
    assert!(matches!(negotiate([0x7F, 0x33, 0, 0], &cfg), Ok(Handshake::Accepted(_))));
    // 3: reserved bytes.
    assert_eq!(rejected([0x7F, 0xF3, 1, 0]), HandshakeErrorCode::ReservedBits);
    assert_eq!(rejected([0x7F, 0xF3, 0, 0x80]), HandshakeErrorCode::ReservedBits);
    // 4: connection limit is the caller's decision.
    assert_eq!(error_reply(HandshakeErrorCode::MaxConnections), [0x7F, 0x40, 0, 0]);
    assert_eq!(error_reply(HandshakeErrorCode::SerializerUnsupported), [0x7F, 0x10, 0, 0]);
    assert_eq!(error_reply(HandshakeErrorCode::MaxLengthUnacceptable), [0x7F, 0x20, 0, 0]);
    assert_eq!(error_reply(HandshakeErrorCode::ReservedBits), [0x7F, 0x30, 0, 0]);
    // Bad magic: no reply at all.
    assert_eq!(negotiate([0x7E, 0xF3, 0, 0], &cfg), Err(RawSocketError::BadMagic(0x7E)));
}

#[test]
fn accept_handshake_buffers_and_keeps_leftover() {
    let cfg = RawSocketConfig::default();
    let mut buf = BytesMut::new();
    assert_eq!(accept_handshake(&mut buf, &cfg), Ok(None));
    buf.extend_from_slice(&[0x7F, 0xF3]);
    assert_eq!(accept_handshake(&mut buf, &cfg), Ok(None));
    buf.extend_from_slice(&[0, 0, 0, 0, 0, 2, b'h']);
    let n = accepted(accept_handshake(&mut buf, &cfg).expect("ok").expect("complete"));
    assert_eq!(n.serializer, Serializer::Cbor);
    let mut dec = RawSocketDecoder::with_buffer(buf, n.our_max_length);
    assert_eq!(dec.poll_event(), Ok(None));
    dec.feed(b"i");
    assert_eq!(dec.poll_event(), Ok(Some(RawSocketEvent::Message(Bytes::from_static(b"hi")))));

    // Bad magic fails fast on the first byte (e.g. an HTTP client).
    let mut buf = BytesMut::from(&b"G"[..]);
    assert_eq!(accept_handshake(&mut buf, &cfg), Err(RawSocketError::BadMagic(b'G')));
}

#[test]
fn client_helpers_round_trip() {
    let req = client_handshake(Serializer::Flatbuffers, 65536);
    assert_eq!(req, [0x7F, 0x75, 0, 0]);
    let n = accepted(negotiate(req, &RawSocketConfig::default()).expect("ok"));
    assert_eq!(n.peer_max_length, 65536);
    assert_eq!(parse_server_reply(n.reply), Ok((Serializer::Flatbuffers, MAX_FRAME_PAYLOAD)));
    assert_eq!(
        parse_server_reply(error_reply(HandshakeErrorCode::MaxConnections)),
        Err(RawSocketError::Rejected(HandshakeErrorCode::MaxConnections))
    );
    assert_eq!(parse_server_reply([0x7F, 0x50, 0, 0]), Err(RawSocketError::BadReply));
    assert_eq!(parse_server_reply([0x00, 0x12, 0, 0]), Err(RawSocketError::BadMagic(0)));
}

#[test]
fn frame_header_encoding() {
    assert_eq!(encode_frame_header(FrameKind::Message, 0x010203), [0, 1, 2, 3]);
    assert_eq!(encode_frame_header(FrameKind::Ping, 0), [1, 0, 0, 0]);
    assert_eq!(encode_frame_header(FrameKind::Pong, MAX_FRAME_PAYLOAD), [2, 0xFF, 0xFF, 0xFF]);
    let mut out = vec![9u8];
    write_frame(&mut out, FrameKind::Message, b"abc");
    assert_eq!(out, [9, 0, 0, 0, 3, b'a', b'b', b'c']);
}

fn stream() -> (Vec<u8>, Vec<RawSocketEvent>) {
    let mut v = Vec::new();
    let big: Vec<u8> = (0..1000u32).map(|i| i as u8).collect();
    write_frame(&mut v, FrameKind::Message, b"[1,\"realm\",{}]");
    write_frame(&mut v, FrameKind::Ping, b"png");
    write_frame(&mut v, FrameKind::Message, b"");
    write_frame(&mut v, FrameKind::Pong, b"");
    write_frame(&mut v, FrameKind::Message, &big);
    let events = vec![
        RawSocketEvent::Message(Bytes::from_static(b"[1,\"realm\",{}]")),
        RawSocketEvent::Ping(Bytes::from_static(b"png")),
        RawSocketEvent::Message(Bytes::new()),
        RawSocketEvent::Pong(Bytes::new()),
        RawSocketEvent::Message(Bytes::from(big)),
    ];
    (v, events)
}

fn drain(dec: &mut RawSocketDecoder, out: &mut Vec<RawSocketEvent>) {
    while let Some(ev) = dec.poll_event().expect("valid stream") {
        out.push(ev);
    }
}

#[test]
fn frames_split_at_every_position() {
    let (input, expected) = stream();
    for split in 0..=input.len() {
        let mut dec = RawSocketDecoder::new(1 << 16);
        let mut got = Vec::new();
        dec.feed(&input[..split]);
        drain(&mut dec, &mut got);
        dec.feed(&input[split..]);
        drain(&mut dec, &mut got);
        assert_eq!(got, expected, "split at {split}");
        assert_eq!(dec.buffered(), 0);
    }
    let mut dec = RawSocketDecoder::new(1 << 16);
    let mut got = Vec::new();
    for b in &input {
        dec.feed(std::slice::from_ref(b));
        drain(&mut dec, &mut got);
    }
    assert_eq!(got, expected, "byte by byte");
}

#[test]
fn ping_is_answered_with_same_payload() {
    let mut dec = RawSocketDecoder::new(4096);
    dec.feed(&[1, 0, 0, 4, b'a', b'b', b'c', b'd']);
    let Ok(Some(RawSocketEvent::Ping(p))) = dec.poll_event() else { panic!("expected ping") };
    let mut out = Vec::new();
    write_frame(&mut out, FrameKind::Pong, &p);
    assert_eq!(out, [2, 0, 0, 4, b'a', b'b', b'c', b'd']);
}

#[test]
fn message_payload_is_not_copied() {
    let mut dec = RawSocketDecoder::new(4096);
    dec.feed(&[0, 0, 0, 3, 1, 2, 3]);
    let base = dec.read_buf().as_ptr() as usize;
    let Ok(Some(RawSocketEvent::Message(m))) = dec.poll_event() else { panic!("expected message") };
    assert_eq!(m.as_ptr() as usize, base + 4);
}

#[test]
fn oversized_frame_rejected_before_payload() {
    let mut dec = RawSocketDecoder::new(512);
    dec.feed(&[0, 0, 2, 0]);
    assert_eq!(dec.poll_event(), Ok(None), "512 is allowed, waiting for payload");
    let mut dec = RawSocketDecoder::new(512);
    dec.feed(&[0, 0, 2, 1]);
    assert_eq!(dec.poll_event(), Err(RawSocketError::FrameTooLong { len: 513, max: 512 }));
    assert!(dec.is_failed());
    dec.feed(&[0, 0, 0, 0]);
    assert_eq!(dec.poll_event(), Ok(None), "fused after error");
    // Oversized pings too.
    let mut dec = RawSocketDecoder::new(512);
    dec.feed(&[1, 0x10, 0, 0]);
    assert!(matches!(dec.poll_event(), Err(RawSocketError::FrameTooLong { .. })));
}

#[test]
fn reserved_bits_and_bad_types_rejected() {
    for b0 in 0u8..=255 {
        let mut dec = RawSocketDecoder::new(512);
        dec.feed(&[b0, 0, 0, 0]);
        let r = dec.poll_event();
        match b0 {
            0 => assert_eq!(r, Ok(Some(RawSocketEvent::Message(Bytes::new())))),
            1 => assert_eq!(r, Ok(Some(RawSocketEvent::Ping(Bytes::new())))),
            2 => assert_eq!(r, Ok(Some(RawSocketEvent::Pong(Bytes::new())))),
            3..=7 => assert_eq!(r, Err(RawSocketError::BadFrameType(b0))),
            _ => assert_eq!(r, Err(RawSocketError::ReservedBits(b0))),
        }
    }
}
