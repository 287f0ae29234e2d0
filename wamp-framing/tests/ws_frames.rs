//! WebSocket frame decoding/encoding tests.

use bytes::Bytes;
use wamp_framing::websocket::frame::{self, apply_mask, write_masked_frame, OpCode};
use wamp_framing::websocket::{close_code, PingTimer, WebSocket, WebSocketLimits, WsError, WsEvent};

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

fn masked(op: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    write_masked_frame(&mut v, op, fin, KEY, payload);
    v
}

fn close_payload(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut p = code.to_be_bytes().to_vec();
    p.extend_from_slice(reason);
    p
}

/// Everything observable from feeding `input` in chunks of `chunk` bytes.
#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<WsEvent>,
    error: Option<WsError>,
    transmit: Vec<Bytes>,
}

fn run_chunked(input: &[u8], chunk: usize, limits: WebSocketLimits) -> Outcome {
    let mut ws = WebSocket::new(limits);
    let mut out = Outcome { events: Vec::new(), error: None, transmit: Vec::new() };
    'outer: for c in input.chunks(chunk.max(1)) {
        ws.feed(c);
        loop {
            match ws.poll_event() {
                Ok(Some(ev)) => out.events.push(ev),
                Ok(None) => break,
                Err(e) => {
                    out.error = Some(e);
                    break 'outer;
                }
            }
        }
    }
    while let Some(t) = ws.poll_transmit() {
        out.transmit.push(t);
    }
    out
}

fn run(input: &[u8]) -> Outcome {
    run_chunked(input, usize::MAX, WebSocketLimits::default())
}

fn text(s: &str) -> WsEvent {
    WsEvent::Message { binary: false, data: Bytes::copy_from_slice(s.as_bytes()) }
}

fn binary(b: &[u8]) -> WsEvent {
    WsEvent::Message { binary: true, data: Bytes::copy_from_slice(b) }
}

/// The close code carried by a server close frame.
fn close_code_of(frame: &[u8]) -> Option<u16> {
    assert_eq!(frame[0], 0x88, "not a FIN close frame: {frame:?}");
    let len = usize::from(frame[1]);
    assert!(len <= 125 && frame[1] & 0x80 == 0);
    assert_eq!(frame.len(), 2 + len);
    (len >= 2).then(|| u16::from_be_bytes([frame[2], frame[3]]))
}

#[test]
fn rfc_5_7_single_masked_text() {
    let input = [0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58];
    assert_eq!(masked(OpCode::Text, true, b"Hello"), input);
    let o = run(&input);
    assert_eq!(o.events, vec![text("Hello")]);
    assert!(o.error.is_none() && o.transmit.is_empty());
}

#[test]
fn rfc_5_7_unmasked_examples_are_what_we_encode() {
    let mut v = Vec::new();
    frame::write_message(&mut v, false, b"Hello");
    assert_eq!(v, [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);

    let mut v = Vec::new();
    frame::write_frame(&mut v, OpCode::Text, false, b"Hel");
    frame::write_frame(&mut v, OpCode::Continuation, true, b"lo");
    assert_eq!(v, [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]);

    assert_eq!(&frame::ping_frame(b"Hello")[..], [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);

    let (h, n) = frame::message_header(true, 256);
    assert_eq!(&h[..n], [0x82, 0x7E, 0x01, 0x00]);
    let (h, n) = frame::message_header(true, 65536);
    assert_eq!(&h[..n], [0x82, 0x7F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00]);
    let (h, n) = frame::frame_header(OpCode::Binary, true, 125);
    assert_eq!(&h[..n], [0x82, 125]);
    let (h, n) = frame::frame_header(OpCode::Binary, true, 65535);
    assert_eq!(&h[..n], [0x82, 126, 0xFF, 0xFF]);
}

#[test]
fn rfc_5_7_unmasked_client_frame_is_rejected() {
    let o = run(&[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
    assert_eq!(o.error.as_ref().map(WsError::close_code), Some(1002));
    assert_eq!(o.transmit.len(), 1);
    assert_eq!(close_code_of(&o.transmit[0]), Some(1002));
}

#[test]
fn rfc_5_7_fragmented_and_ping_pong() {
    let mut input = masked(OpCode::Text, false, b"Hel");
    input.extend(masked(OpCode::Continuation, true, b"lo"));
    // Masked pong "Hello" exactly as in RFC 6455 5.7.
    input.extend([0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
    input.extend(masked(OpCode::Ping, true, b"Hello"));
    let o = run(&input);
    assert_eq!(
        o.events,
        vec![text("Hello"), WsEvent::Pong(Bytes::from_static(b"Hello")), WsEvent::Ping(Bytes::from_static(b"Hello"))]
    );
    // The auto-reply is the RFC's unmasked pong.
    assert_eq!(o.transmit, vec![Bytes::from_static(&[0x8a, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f])]);
}

#[test]
fn rfc_5_7_16_and_64_bit_lengths() {
    let p256: Vec<u8> = (0..256u32).map(|i| i as u8).collect();
    let f = masked(OpCode::Binary, true, &p256);
    assert_eq!(&f[..4], [0x82, 0xFE, 0x01, 0x00]);
    assert_eq!(run(&f).events, vec![binary(&p256)]);

    let p64k: Vec<u8> = (0..65536u32).map(|i| (i * 7) as u8).collect();
    let f = masked(OpCode::Binary, true, &p64k);
    assert_eq!(&f[..10], [0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0]);
    assert_eq!(run(&f).events, vec![binary(&p64k)]);
    assert_eq!(run_chunked(&f, 1000, WebSocketLimits::default()).events, vec![binary(&p64k)]);
}

#[test]
fn interleaved_control_frames_in_fragmented_message() {
    let mut input = masked(OpCode::Binary, false, b"ab");
    input.extend(masked(OpCode::Ping, true, b"p1"));
    input.extend(masked(OpCode::Continuation, false, b""));
    input.extend(masked(OpCode::Pong, true, b"x"));
    input.extend(masked(OpCode::Continuation, false, b"cd"));
    input.extend(masked(OpCode::Ping, true, b""));
    input.extend(masked(OpCode::Continuation, true, b"e"));
    input.extend(masked(OpCode::Text, true, "ünï".as_bytes()));
    let o = run(&input);
    assert!(o.error.is_none(), "{:?}", o.error);
    assert_eq!(
        o.events,
        vec![
            WsEvent::Ping(Bytes::from_static(b"p1")),
            WsEvent::Pong(Bytes::from_static(b"x")),
            WsEvent::Ping(Bytes::new()),
            binary(b"abcde"),
            text("ünï"),
        ]
    );
    assert_eq!(o.transmit, vec![frame::pong_frame(b"p1"), frame::pong_frame(b"")]);
}

#[test]
fn utf8_split_across_fragments_is_fine() {
    let s = "a€b😀";
    let b = s.as_bytes();
    for cut1 in 0..=b.len() {
        for cut2 in cut1..=b.len() {
            let mut input = masked(OpCode::Text, false, &b[..cut1]);
            input.extend(masked(OpCode::Continuation, false, &b[cut1..cut2]));
            input.extend(masked(OpCode::Continuation, true, &b[cut2..]));
            let o = run(&input);
            assert_eq!(o.events, vec![text(s)], "cuts {cut1} {cut2}");
        }
    }
}

#[test]
fn violations_map_to_close_codes() {
    let mut cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("unmasked", vec![0x82, 0x00], 1002),
        ("rsv1", vec![0xC2, 0x80, 0, 0, 0, 0], 1002),
        ("rsv2", vec![0xA2, 0x80, 0, 0, 0, 0], 1002),
        ("rsv3", vec![0x92, 0x80, 0, 0, 0, 0], 1002),
        ("opcode 3", vec![0x83, 0x80, 0, 0, 0, 0], 1002),
        ("opcode 7", vec![0x87, 0x80, 0, 0, 0, 0], 1002),
        ("opcode 0xB", vec![0x8B, 0x80, 0, 0, 0, 0], 1002),
        ("opcode 0xF", vec![0x8F, 0x80, 0, 0, 0, 0], 1002),
        ("fragmented ping", masked(OpCode::Ping, false, b"x"), 1002),
        ("fragmented close", masked(OpCode::Close, false, b""), 1002),
        ("ping 126 bytes", masked(OpCode::Ping, true, &[0u8; 126]), 1002),
        ("close 126 bytes", masked(OpCode::Close, true, &[0u8; 126]), 1002),
        ("continuation without start", masked(OpCode::Continuation, true, b"x"), 1002),
        ("non-minimal 16-bit", vec![0x82, 0xFE, 0x00, 0x7D, 0, 0, 0, 0], 1002),
        ("non-minimal 64-bit", vec![0x82, 0xFF, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0, 0, 0, 0], 1002),
        ("64-bit high bit", vec![0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], 1002),
        ("invalid utf-8", masked(OpCode::Text, true, &[0x61, 0xFF]), 1007),
        ("truncated utf-8 at end", masked(OpCode::Text, true, &[0xE2, 0x82]), 1007),
        ("surrogate", masked(OpCode::Text, true, &[0xED, 0xA0, 0x80]), 1007),
        ("close 1 byte", masked(OpCode::Close, true, &[0x03]), 1002),
        ("close bad utf-8 reason", masked(OpCode::Close, true, &close_payload(1000, &[0xC3])), 1002),
    ];
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535] {
        cases.push(("invalid close code", masked(OpCode::Close, true, &close_payload(code, b"")), 1002));
    }
    let mut frag = masked(OpCode::Text, false, b"a");
    frag.extend(masked(OpCode::Binary, true, b"b"));
    cases.push(("new data frame in fragmented message", frag, 1002));
    let mut frag = masked(OpCode::Binary, false, b"a");
    frag.extend(masked(OpCode::Text, false, b"b"));
    cases.push(("new text frame in fragmented binary", frag, 1002));
    // Fail fast: invalid UTF-8 in a non-final fragment, no final fragment sent.
    cases.push(("invalid utf-8 first fragment", masked(OpCode::Text, false, &[0x61, 0xC0, 0x80]), 1007));
    let mut frag = masked(OpCode::Text, false, &[0xE2, 0x82]);
    frag.extend(masked(OpCode::Continuation, false, &[0x28]));
    cases.push(("invalid continuation byte across fragments", frag, 1007));
    let mut frag = masked(OpCode::Text, false, &[0xE2, 0x82]);
    frag.extend(masked(OpCode::Continuation, true, b""));
    cases.push(("incomplete utf-8 at message end", frag, 1007));

    for (name, input, code) in cases {
        for chunk in [usize::MAX, 1] {
            let o = run_chunked(&input, chunk, WebSocketLimits::default());
            let err = o.error.as_ref().unwrap_or_else(|| panic!("{name}: no error, events {:?}", o.events));
            assert_eq!(err.close_code(), code, "{name}: {err}");
            assert_eq!(o.transmit.len(), 1, "{name}");
            assert_eq!(close_code_of(&o.transmit[0]), Some(code), "{name}");
            assert!(o.events.is_empty(), "{name}: {:?}", o.events);
        }
    }
}

#[test]
fn valid_close_codes_are_echoed() {
    for code in [1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999] {
        let o = run(&masked(OpCode::Close, true, &close_payload(code, "bye ✓".as_bytes())));
        assert!(o.error.is_none(), "{code}: {:?}", o.error);
        assert_eq!(o.events, vec![WsEvent::Close { code: Some(code), reason: "bye ✓".to_owned() }]);
        assert_eq!(o.transmit.len(), 1);
        assert_eq!(close_code_of(&o.transmit[0]), Some(code));
    }
    let o = run(&masked(OpCode::Close, true, b""));
    assert_eq!(o.events, vec![WsEvent::Close { code: None, reason: String::new() }]);
    assert_eq!(o.transmit, vec![Bytes::from_static(&[0x88, 0x00])]);
}

#[test]
fn peer_close_finishes_connection() {
    let mut input = masked(OpCode::Close, true, &close_payload(1000, b""));
    input.extend(masked(OpCode::Text, true, b"after close"));
    let mut ws = WebSocket::new(WebSocketLimits::default());
    ws.feed(&input);
    assert!(matches!(ws.poll_event(), Ok(Some(WsEvent::Close { code: Some(1000), .. }))));
    assert!(ws.is_closed());
    assert!(!ws.is_open());
    assert_eq!(ws.poll_event(), Ok(None));
    assert!(ws.poll_transmit().is_some());
    assert!(ws.poll_transmit().is_none());
    // No further replies after close.
    ws.feed(&masked(OpCode::Ping, true, b"x"));
    assert_eq!(ws.poll_event(), Ok(None));
    assert!(ws.poll_transmit().is_none());
}

#[test]
fn server_initiated_close_waits_for_peer_close() {
    let mut ws = WebSocket::new(WebSocketLimits::default());
    // A fragmented message is in flight when we close.
    ws.feed(&masked(OpCode::Text, false, b"par"));
    assert_eq!(ws.poll_event(), Ok(None));
    assert!(ws.close(close_code::GOING_AWAY, "shutdown"));
    assert!(!ws.close(1000, "again"), "second close is a no-op");
    let sent = ws.poll_transmit().expect("close frame");
    assert_eq!(close_code_of(&sent), Some(1001));
    assert_eq!(&sent[4..], b"shutdown");
    assert!(ws.close_sent() && !ws.is_closed());

    ws.feed(&masked(OpCode::Continuation, true, b"tial"));
    ws.feed(&masked(OpCode::Binary, true, b"late"));
    ws.feed(&masked(OpCode::Ping, true, b"p"));
    assert_eq!(ws.poll_event(), Ok(Some(WsEvent::Ping(Bytes::from_static(b"p")))));
    ws.feed(&masked(OpCode::Close, true, &close_payload(1001, b"")));
    assert!(matches!(ws.poll_event(), Ok(Some(WsEvent::Close { code: Some(1001), .. }))));
    assert!(ws.is_closed());
    assert!(ws.poll_transmit().is_none(), "no echo, no pong after our close");
}

#[test]
fn errors_are_fused() {
    let mut ws = WebSocket::new(WebSocketLimits::default());
    ws.feed(&[0x82, 0x00]);
    assert!(ws.poll_event().is_err());
    assert!(ws.is_closed());
    ws.feed(&masked(OpCode::Text, true, b"x"));
    assert_eq!(ws.poll_event(), Ok(None));
    assert!(ws.read_buf().is_empty());
}

#[test]
fn size_limits_give_1009_before_payload_arrives() {
    let limits = WebSocketLimits { max_frame_size: 1000, max_message_size: 2500, ..WebSocketLimits::default() };
    // Exactly at the limit is fine.
    let ok = masked(OpCode::Binary, true, &[7u8; 1000]);
    assert_eq!(run_chunked(&ok, 64, limits).events, vec![binary(&[7u8; 1000])]);

    // Only the header of a 1001-byte frame: rejected without the payload.
    let big = masked(OpCode::Binary, true, &[7u8; 1001]);
    let o = run_chunked(&big[..8], usize::MAX, limits);
    assert_eq!(o.error.as_ref().map(WsError::close_code), Some(1009));
    assert_eq!(close_code_of(&o.transmit[0]), Some(1009));

    // 64-bit length announcing 2^40 bytes.
    let huge = [0x82, 0xFF, 0, 0, 0x01, 0, 0, 0, 0, 0, 1, 2, 3, 4];
    let o = run(&huge);
    assert_eq!(o.error.as_ref().map(WsError::close_code), Some(1009));

    // Message over the limit across fragments: 3 x 900 = 2700 > 2500.
    let mut frag = masked(OpCode::Binary, false, &[1u8; 900]);
    frag.extend(masked(OpCode::Continuation, false, &[1u8; 900]));
    frag.extend(masked(OpCode::Continuation, true, &[1u8; 900]));
    let o = run_chunked(&frag, usize::MAX, limits);
    assert_eq!(o.error.as_ref().map(WsError::close_code), Some(1009));
    assert!(o.events.is_empty());
    // 2 x 900 + 700 = 2500 is fine.
    let mut frag = masked(OpCode::Binary, false, &[1u8; 900]);
    frag.extend(masked(OpCode::Continuation, false, &[1u8; 900]));
    frag.extend(masked(OpCode::Continuation, true, &[1u8; 700]));
    assert_eq!(run_chunked(&frag, 100, limits).events, vec![binary(&[1u8; 2500])]);
}

#[test]
fn byte_by_byte_equals_one_shot() {
    let mut input = Vec::new();
    input.extend(masked(OpCode::Text, true, b"first"));
    input.extend(masked(OpCode::Binary, true, &[0xAB; 300]));
    input.extend(masked(OpCode::Text, false, "frag€".as_bytes()));
    input.extend(masked(OpCode::Ping, true, b"ping!"));
    input.extend(masked(OpCode::Continuation, true, "ment".as_bytes()));
    input.extend(masked(OpCode::Binary, true, &(0..70_000u32).map(|i| i as u8).collect::<Vec<_>>()));
    input.extend(masked(OpCode::Pong, true, b""));
    input.extend(masked(OpCode::Binary, true, b""));
    input.extend(masked(OpCode::Close, true, &close_payload(1000, b"done")));
    let one = run(&input);
    assert!(one.error.is_none());
    assert_eq!(one.events.len(), 8);
    assert_eq!(one.events[2], WsEvent::Ping(Bytes::from_static(b"ping!")));
    assert_eq!(one.events[3], text("frag€ment"));
    assert_eq!(one.transmit, vec![frame::pong_frame(b"ping!"), frame::close_frame(Some(1000), "")]);
    for chunk in [1, 2, 3, 7, 64, 4096] {
        assert_eq!(run_chunked(&input, chunk, WebSocketLimits::default()), one, "chunk {chunk}");
    }
}

#[test]
fn unfragmented_payload_is_not_copied() {
    let mut ws = WebSocket::new(WebSocketLimits::default());
    ws.feed(&masked(OpCode::Binary, true, &[5u8; 200]));
    let base = ws.read_buf().as_ptr() as usize;
    let Ok(Some(WsEvent::Message { data, .. })) = ws.poll_event() else { panic!("no message") };
    assert_eq!(data.as_ptr() as usize, base + 4 + 4, "payload shares the receive buffer");
}

#[test]
fn auto_ping_liveness() {
    let mut ws = WebSocket::new(WebSocketLimits::default());
    assert_eq!(ws.on_ping_timer(), PingTimer::Sent);
    let ping = ws.poll_transmit().expect("ping queued");
    assert_eq!(&ping[..2], [0x89, 8]);
    let payload = ping.slice(2..);
    assert!(ws.ping_outstanding());
    assert!(ws.on_ping_timeout());
    assert_eq!(ws.on_ping_timer(), PingTimer::TimedOut);
    // A pong with the wrong payload does not count.
    ws.feed(&masked(OpCode::Pong, true, b"nope"));
    assert!(matches!(ws.poll_event(), Ok(Some(WsEvent::Pong(_)))));
    assert!(ws.ping_outstanding());
    ws.feed(&masked(OpCode::Pong, true, &payload));
    assert_eq!(ws.poll_event(), Ok(Some(WsEvent::Pong(payload.clone()))));
    assert!(!ws.ping_outstanding());
    assert!(!ws.on_ping_timeout());
    assert_eq!(ws.on_ping_timer(), PingTimer::Sent);
    let ping2 = ws.poll_transmit().expect("second ping");
    assert_ne!(ping2.slice(2..), payload, "payloads differ between pings");
    ws.close(1000, "");
    assert_eq!(ws.on_ping_timer(), PingTimer::Closing);
}

#[test]
fn close_frame_builder_truncates_on_char_boundary() {
    let reason = "é".repeat(100); // 200 bytes
    let f = frame::close_frame(Some(1000), &reason);
    assert_eq!(f[0], 0x88);
    let len = usize::from(f[1]);
    assert!(len <= 125);
    assert_eq!(len, 2 + 122, "123 bytes do not fit whole 2-byte chars; 122 do");
    let r = std::str::from_utf8(&f[4..]).expect("valid UTF-8");
    assert_eq!(r, "é".repeat(61));
    assert_eq!(&frame::close_frame(None, "ignored")[..], [0x88, 0x00]);
    let f = frame::close_frame(Some(4000), "x");
    assert_eq!(&f[..], [0x88, 3, 0x0F, 0xA0, b'x']);
    // Pings are truncated to 125 bytes.
    let p = frame::ping_frame(&[1u8; 300]);
    assert_eq!(p.len(), 127);
}

#[test]
fn mask_matches_naive_xor() {
    let key = [0x12, 0x34, 0x56, 0x78];
    for len in 0..70 {
        let orig: Vec<u8> = (0..len).map(|i| (i * 31 + 5) as u8).collect();
        let mut fast = orig.clone();
        apply_mask(&mut fast, key);
        let naive: Vec<u8> = orig.iter().enumerate().map(|(i, b)| b ^ key[i % 4]).collect();
        assert_eq!(fast, naive, "len {len}");
        apply_mask(&mut fast, key);
        assert_eq!(fast, orig);
    }
}
