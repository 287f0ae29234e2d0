//! Randomized robustness: garbage input must never panic or hang.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use wamp_framing::rawsocket::{accept_handshake, RawSocketConfig, RawSocketDecoder};
use wamp_framing::websocket::{HandshakeStatus, ServerHandshake, WebSocketConfig};
use wamp_framing::{WebSocket, WebSocketLimits};

const ITERATIONS: usize = 10_000;

fn random_bytes(rng: &mut StdRng, plausible_ws: bool) -> Vec<u8> {
    let len = rng.gen_range(0..300);
    let mut v: Vec<u8> = (0..len).map(|_| rng.gen()).collect();
    if plausible_ws {
        // Bias towards masked frames with small lengths so the decoder gets
        // past the first checks and exercises reassembly and close parsing.
        let mut i = 0;
        while i + 6 < v.len() {
            let ops = [0x00, 0x01, 0x02, 0x08, 0x09, 0x0A, 0x80, 0x81, 0x82, 0x88, 0x89, 0x8A];
            v[i] = ops[rng.gen_range(0..ops.len())];
            let plen = rng.gen_range(0..20u8);
            v[i + 1] = 0x80 | plen;
            i += 6 + usize::from(plen);
        }
    }
    v
}

fn feed_chunks(rng: &mut StdRng, data: &[u8], mut sink: impl FnMut(&[u8]) -> bool) {
    let mut rest = data;
    while !rest.is_empty() {
        let n = rng.gen_range(1..=rest.len());
        let (a, b) = rest.split_at(n);
        if !sink(a) {
            return;
        }
        rest = b;
    }
}

#[test]
fn websocket_frames_survive_garbage() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0001);
    let limits = WebSocketLimits { max_frame_size: 64, max_message_size: 128, ..WebSocketLimits::default() };
    let mut errors = 0;
    let mut messages = 0;
    for i in 0..ITERATIONS {
        let data = random_bytes(&mut rng, i % 2 == 0);
        let mut ws = WebSocket::new(limits);
        feed_chunks(&mut rng, &data, |c| {
            ws.feed(c);
            for _ in 0..=data.len() {
                match ws.poll_event() {
                    Ok(Some(wamp_framing::WsEvent::Message { .. })) => messages += 1,
                    Ok(Some(_)) => {}
                    Ok(None) => return true,
                    Err(_) => {
                        errors += 1;
                        return false;
                    }
                }
            }
            panic!("poll_event did not terminate");
        });
        while ws.poll_transmit().is_some() {}
        assert!(ws.read_buf().len() <= data.len());
    }
    assert!(errors > 1000, "garbage should mostly be rejected ({errors})");
    assert!(messages > 0, "plausible frames should sometimes decode");
}

#[test]
fn rawsocket_survives_garbage() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0002);
    let cfg = RawSocketConfig::default();
    for _ in 0..ITERATIONS {
        let mut data = random_bytes(&mut rng, false);
        if rng.gen_bool(0.5) && !data.is_empty() {
            data[0] = 0x7F;
        }
        let mut buf = bytes::BytesMut::from(&data[..]);
        let _ = accept_handshake(&mut buf, &cfg);
        let mut dec = RawSocketDecoder::new(rng.gen_range(0..100));
        feed_chunks(&mut rng, &data, |c| {
            dec.feed(c);
            for _ in 0..=data.len() {
                match dec.poll_event() {
                    Ok(Some(_)) => {}
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            }
            panic!("poll_event did not terminate");
        });
    }
}

#[test]
fn handshake_survives_garbage_and_mutations() {
    let mut rng = StdRng::seed_from_u64(0x5eed_0003);
    let mut cfg = WebSocketConfig::default();
    cfg.limits.max_handshake_size = 512;
    let good = b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Protocol: wamp.2.json\r\n\r\n";
    let (mut accepted, mut rejected) = (0, 0);
    for i in 0..ITERATIONS {
        let data = if i % 2 == 0 {
            random_bytes(&mut rng, false)
        } else {
            let mut g = good.to_vec();
            for _ in 0..rng.gen_range(0..4) {
                let p = rng.gen_range(0..g.len());
                g[p] = rng.gen();
            }
            g
        };
        let mut hs = ServerHandshake::new();
        feed_chunks(&mut rng, &data, |c| {
            hs.feed(c);
            match hs.poll(&cfg) {
                HandshakeStatus::Partial => true,
                HandshakeStatus::Accepted(_) => {
                    accepted += 1;
                    false
                }
                HandshakeStatus::Rejected(r) => {
                    assert!(r.response.starts_with(b"HTTP/1.1 4"));
                    rejected += 1;
                    false
                }
            }
        });
    }
    assert!(accepted > 0 && rejected > 0, "accepted {accepted}, rejected {rejected}");
}
