//! WebSocket handshake and frames, RawSocket handshake and frames, proxy /
//! router link frames (wamp-framing).

use bytes::{Bytes, BytesMut};
use wamp_framing::link::{self, AuthCall, AuthResult, LinkAccept, LinkFrame, LinkHello, OpenRequest};
use wamp_framing::rawsocket::{self, FrameKind, Handshake, RawSocketConfig, RawSocketDecoder, RawSocketEvent};
use wamp_framing::websocket::{
    frame::{write_masked_frame, OpCode},
    HandshakeStatus, ServerHandshake, WebSocket, WebSocketConfig, WebSocketLimits, WsEvent,
};
use wamp_proto::Serializer;

use crate::chunks;

/// `ServerHandshake`: the HTTP upgrade request of a WebSocket transport.
///
/// Byte 0 picks the configuration (low nibble: feed in chunks of that many
/// bytes, 0 = all at once; bit 4: restrict paths to `/ws`, origins to
/// `https://*.example.com`, serializers to CBOR and JSON; bit 5: no
/// subprotocol required; bit 6: a 256-byte head limit); the rest is what
/// the client sends. Checks: an accepted request is answered `101` with the
/// key's accept hash and a negotiated serializer from the configuration;
/// a rejection has a complete HTTP response whose status matches the
/// error; the bytes after the head are handed back intact.
pub fn ws_handshake(data: &[u8]) {
    let Some((&cfg, input)) = data.split_first() else { return };
    let mut config = WebSocketConfig::default();
    if cfg & 0x10 != 0 {
        config.paths = vec!["/ws".into()];
        config.allowed_origins = Some(vec!["https://*.example.com".into(), "http://localhost:8080".into()]);
        config.serializers = vec![Serializer::Cbor, Serializer::Json];
    }
    if cfg & 0x20 != 0 {
        config.require_subprotocol = false;
    }
    if cfg & 0x40 != 0 {
        config.limits.max_handshake_size = 256;
    }
    let mut hs = ServerHandshake::new();
    let mut fed = 0usize;
    for piece in chunks(input, usize::from(cfg & 0x0F)) {
        hs.feed(piece);
        fed += piece.len();
        match hs.poll(&config) {
            HandshakeStatus::Partial => {}
            HandshakeStatus::Accepted(a) => {
                assert!(a.response.starts_with(b"HTTP/1.1 101 "), "accepted without a 101");
                assert!(config.serializers.contains(&a.serializer), "negotiated a serializer not configured");
                let head_len = fed - a.leftover.len();
                assert!(head_len <= config.limits.max_handshake_size, "accepted a head over the limit");
                assert_eq!(&a.leftover[..], &input[head_len..fed], "leftover is not the bytes after the head");
                if let Some(key) = a.request.header("sec-websocket-key") {
                    let want = format!("Sec-WebSocket-Accept: {}\r\n", wamp_framing::websocket::accept_key(key.trim()));
                    assert!(
                        a.response.windows(want.len()).any(|w| w == want.as_bytes()),
                        "101 without the key's accept hash"
                    );
                }
                // The frames that followed the head go to the connection.
                let mut ws = WebSocket::with_buffer(a.leftover, config.limits);
                while let Ok(Some(_)) = ws.poll_event() {}
                return;
            }
            HandshakeStatus::Rejected(r) => {
                let status = format!("HTTP/1.1 {} ", r.error.status());
                assert!(r.response.starts_with(status.as_bytes()), "rejection status does not match its error");
                let text = std::str::from_utf8(&r.response).expect("rejection response is UTF-8");
                let (head, body) = text.split_once("\r\n\r\n").expect("rejection response has a head");
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|v| v.parse().ok())
                    .expect("rejection response has a Content-Length");
                assert_eq!(len, body.len(), "rejection Content-Length is wrong");
                assert!(!head.contains('\n') || head.split("\r\n").all(|l| !l.contains('\n')), "bare LF in head");
                assert_eq!(hs.poll(&config), HandshakeStatus::Partial, "handshake not fused after rejection");
                return;
            }
        }
    }
}

/// `WebSocket`: frames of an open connection (masking, lengths, opcodes,
/// fragmentation, control frames, UTF-8, limits, closing handshake).
///
/// Byte 0: low nibble = chunk size (0 = all at once); bit 4 = small limits
/// (frames ≤ 64, messages ≤ 128 bytes); bit 5 = round-trip mode instead
/// (below). Raw mode feeds the rest as client bytes and checks that text
/// messages are UTF-8, nothing exceeds the limits, events never carry more
/// bytes than were received, and a failed connection stays failed.
///
/// Round-trip mode reads the rest as records `[flags, len, payload…]`, each
/// a message the client sends masked (bit 0 binary; bit 1 split in two
/// fragments; bit 2 a PING between the fragments), and checks the decoder
/// returns exactly those messages (and pings).
pub fn ws_frames(data: &[u8]) {
    let Some((&cfg, input)) = data.split_first() else { return };
    let limits = if cfg & 0x10 != 0 {
        WebSocketLimits { max_frame_size: 64, max_message_size: 128, max_handshake_size: 1024 }
    } else {
        WebSocketLimits::default()
    };
    if cfg & 0x20 != 0 {
        ws_roundtrip(input, usize::from(cfg & 0x0F));
        return;
    }
    let mut ws = WebSocket::new(limits);
    let mut received = 0usize;
    let mut delivered = 0usize;
    let mut failed = false;
    for piece in chunks(input, usize::from(cfg & 0x0F)) {
        ws.feed(piece);
        received += piece.len();
        loop {
            match ws.poll_event() {
                Ok(None) => break,
                Ok(Some(ev)) => {
                    assert!(!failed, "event after a protocol error");
                    match ev {
                        WsEvent::Message { binary, data } => {
                            assert!(data.len() <= limits.max_message_size, "message over the limit");
                            if !binary {
                                assert!(std::str::from_utf8(&data).is_ok(), "text message is not UTF-8");
                            }
                            delivered += data.len();
                        }
                        WsEvent::Ping(p) | WsEvent::Pong(p) => {
                            assert!(p.len() <= 125, "control payload over 125 bytes");
                            delivered += p.len();
                        }
                        WsEvent::Close { reason, .. } => delivered += reason.len(),
                    }
                    assert!(delivered <= received, "events carry more bytes than were received");
                }
                Err(e) => {
                    let _ = e.close_code();
                    failed = true;
                    assert!(!ws.is_open(), "connection still open after a protocol error");
                    break;
                }
            }
        }
        while ws.poll_transmit().is_some() {}
    }
    if failed {
        ws.feed(b"\x81\x80\0\0\0\0");
        assert_eq!(ws.poll_event(), Ok(None), "failed connection decodes again");
    }
    let _ = ws.on_ping_timer();
    let _ = ws.close(1000, "bye");
    while ws.poll_transmit().is_some() {}
}

fn ws_roundtrip(input: &[u8], chunk: usize) {
    let mut wire = Vec::new();
    let mut expect: Vec<WsEvent> = Vec::new();
    let mut rest = input;
    while let [flags, len, tail @ ..] = rest {
        let n = usize::from(*len).min(tail.len());
        let (raw, next) = tail.split_at(n);
        rest = next;
        let binary = flags & 1 != 0;
        let payload: Vec<u8> =
            if binary { raw.to_vec() } else { String::from_utf8_lossy(raw).into_owned().into_bytes() };
        let key = [*flags, *len, 0x5a, 0xa5];
        if flags & 2 != 0 {
            // Split at a char boundary so each fragment alone is not
            // necessarily valid UTF-8 but the whole is.
            let cut = payload.len() / 2;
            write_masked_frame(&mut wire, OpCode::data(binary), false, key, &payload[..cut]);
            if flags & 4 != 0 {
                write_masked_frame(&mut wire, OpCode::Ping, true, key, b"p");
                expect.push(WsEvent::Ping(Bytes::from_static(b"p")));
            }
            write_masked_frame(&mut wire, OpCode::Continuation, true, key, &payload[cut..]);
        } else {
            write_masked_frame(&mut wire, OpCode::data(binary), true, key, &payload);
        }
        expect.push(WsEvent::Message { binary, data: Bytes::from(payload) });
    }
    let mut ws = WebSocket::new(WebSocketLimits::default());
    let mut got = Vec::new();
    for piece in chunks(&wire, chunk) {
        ws.feed(piece);
        loop {
            match ws.poll_event() {
                Ok(Some(ev)) => got.push(ev),
                Ok(None) => break,
                Err(e) => panic!("valid client frames rejected: {e}"),
            }
        }
    }
    assert_eq!(got, expect, "decoded frames differ from what was sent");
    // The PONGs for our PINGs are queued.
    let pongs = std::iter::from_fn(|| ws.poll_transmit()).count();
    assert_eq!(pongs, expect.iter().filter(|e| matches!(e, WsEvent::Ping(_))).count(), "one PONG per PING");
}

/// RawSocket: the 4-byte handshake, then frames.
///
/// Byte 0: low nibble = chunk size (0 = all at once); bit 4 = a 512-byte
/// maximum message size and JSON and CBOR only (else 16 MiB, all four).
/// The rest is what the client sends. Checks: an accepted handshake's reply
/// parses (as the client would) to the requested serializer; frames
/// re-encode to exactly the bytes they were decoded from; the decoder
/// stays failed after an error. The first 4 bytes also go through the
/// client-side reply parsers (RawSocket and link), which read what a
/// server sends.
pub fn rawsocket(data: &[u8]) {
    let Some((&cfg, input)) = data.split_first() else { return };
    if let Some(reply) = input.get(..4) {
        let reply: [u8; 4] = reply.try_into().expect("4 bytes");
        let _ = rawsocket::parse_server_reply(reply);
        let _ = link::parse_server_reply(reply);
        let _ = link::is_link_handshake(&reply);
    }
    let config = if cfg & 0x10 != 0 {
        RawSocketConfig {
            max_message_size: 512,
            serializers: vec![Serializer::Json, Serializer::Cbor],
            ..RawSocketConfig::default()
        }
    } else {
        RawSocketConfig::default()
    };
    let mut pieces = chunks(input, usize::from(cfg & 0x0F));
    let mut buf = BytesMut::new();
    let negotiated = loop {
        let Some(piece) = pieces.next() else { return };
        buf.extend_from_slice(piece);
        match rawsocket::accept_handshake(&mut buf, &config) {
            Ok(None) => continue,
            Err(_) => return,
            Ok(Some(Handshake::Rejected { reply, code })) => {
                assert_eq!(rawsocket::parse_server_reply(reply), Err(rawsocket::RawSocketError::Rejected(code)));
                return;
            }
            Ok(Some(Handshake::Accepted(n))) => break n,
        }
    };
    let (ser, max) = rawsocket::parse_server_reply(negotiated.reply).expect("our accept reply parses");
    assert_eq!(ser, negotiated.serializer, "reply names another serializer");
    assert!(config.serializers.contains(&ser), "accepted a serializer not configured");
    assert!(max >= negotiated.our_max_length.min(config.max_message_size), "reply announces less than we accept");
    let after_hs: Vec<u8> = buf.to_vec();
    let mut dec = RawSocketDecoder::with_buffer(buf, negotiated.our_max_length);
    let mut stream = after_hs;
    let mut reencoded = Vec::new();
    let mut failed = false;
    let drain = |dec: &mut RawSocketDecoder, reencoded: &mut Vec<u8>, failed: &mut bool| loop {
        match dec.poll_event() {
            Ok(None) => break,
            Ok(Some(ev)) => {
                assert!(!*failed, "frame after an error");
                let (kind, p) = match ev {
                    RawSocketEvent::Message(p) => (FrameKind::Message, p),
                    RawSocketEvent::Ping(p) => (FrameKind::Ping, p),
                    RawSocketEvent::Pong(p) => (FrameKind::Pong, p),
                };
                assert!(p.len() <= dec.max_len(), "frame over the limit");
                rawsocket::write_frame(reencoded, kind, &p);
            }
            Err(_) => {
                *failed = true;
                assert!(dec.is_failed());
                break;
            }
        }
    };
    drain(&mut dec, &mut reencoded, &mut failed);
    for piece in pieces {
        stream.extend_from_slice(piece);
        dec.feed(piece);
        drain(&mut dec, &mut reencoded, &mut failed);
    }
    assert_eq!(&reencoded[..], &stream[..reencoded.len()], "re-encoded frames differ from the received bytes");
}

/// `LinkFrame::decode` of one proxy/router link frame payload, and the
/// decoders of the control bodies it carries (hello, accept, refuse, open,
/// authenticator call and result). Checks: a decoded frame writes back to
/// exactly its RawSocket frame; a control body that decodes re-encodes to
/// one that decodes to the same value.
pub fn link_frame(data: &[u8]) {
    let payload = Bytes::copy_from_slice(data);
    let Ok(frame) = LinkFrame::decode(payload) else { return };
    let mut out = Vec::new();
    frame.write(&mut out);
    assert_eq!(&out[4..], data, "link frame does not write back to its bytes");
    assert_eq!(rawsocket::encode_frame_header(FrameKind::Message, data.len())[..], out[..4]);
    match &frame {
        LinkFrame::Hello(body) => {
            if let Ok(h) = LinkHello::decode(body) {
                assert_eq!(LinkHello::decode(&h.encode()).as_ref(), Ok(&h), "hello round trip");
            }
        }
        LinkFrame::Accept(body) => {
            if let Ok(a) = LinkAccept::decode(body) {
                assert_eq!(LinkAccept::decode(&a.encode()).as_ref(), Ok(&a), "accept round trip");
            }
        }
        LinkFrame::Refuse(body) => {
            let (reason, message) = link::decode_refuse(body);
            let again = link::decode_refuse(&link::encode_refuse(&reason, &message));
            assert_eq!(again, (reason, message), "refuse round trip");
        }
        LinkFrame::Open { body, .. } => {
            if let Ok(o) = OpenRequest::decode(body) {
                assert_eq!(OpenRequest::decode(&o.encode()).as_ref(), Ok(&o), "open round trip");
            }
        }
        LinkFrame::AuthCall { body, .. } => {
            if let Ok(c) = AuthCall::decode(body) {
                assert_eq!(AuthCall::decode(&c.encode()).as_ref(), Ok(&c), "auth call round trip");
            }
        }
        LinkFrame::AuthResult { body, .. } => {
            if let Ok(r) = AuthResult::decode(body) {
                assert_eq!(AuthResult::decode(&r.encode()).as_ref(), Ok(&r), "auth result round trip");
            }
        }
        LinkFrame::Data { bytes, .. } => {
            // DATA carries the client's WAMP message in its serializer,
            // which the router decodes with that serializer's decoder
            // (fuzzed by the wamp_* targets); here: the link's own JSON.
            let _ = Serializer::Json.decode(bytes);
        }
        LinkFrame::Challenge(_) | LinkFrame::Proof(_) | LinkFrame::Close { .. } | LinkFrame::Peer(_) => {}
    }
}
