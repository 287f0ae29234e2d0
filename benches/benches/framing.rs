//! Framing benchmarks, all in memory.
//!
//! * `websocket_decode_masked_{1KiB,64KiB}`: one masked binary client frame
//!   fed to a server `WebSocket` and decoded into a `WsEvent::Message`
//!   (copy into the receive buffer, header parse, in-place unmasking).
//! * `websocket_encode_header_{small,16bit,64bit}`: the server frame header
//!   for a payload of 100 B, 1 KiB and 64 KiB (7-, 16- and 64-bit lengths).
//! * `websocket_encode_message_1KiB`: header + payload appended to a
//!   coalesced write buffer.
//! * `rawsocket_decode_{1KiB,64KiB}`: one RawSocket frame fed to a
//!   `RawSocketDecoder` and decoded.
//! * `rawsocket_encode_header`, `rawsocket_encode_1KiB`: the 4-byte header;
//!   header + payload appended to a write buffer.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use wamp_framing::rawsocket::{self, FrameKind, RawSocketDecoder, RawSocketEvent};
use wamp_framing::websocket::frame::{self, OpCode};
use wamp_framing::{WebSocket, WebSocketLimits, WsEvent};

const SIZES: [(&str, usize); 2] = [("1KiB", 1 << 10), ("64KiB", 64 << 10)];

fn payload(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

fn websocket_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");
    for (name, len) in SIZES {
        let data = payload(len);
        let mut wire = Vec::new();
        frame::write_masked_frame(&mut wire, OpCode::Binary, true, [0x37, 0xfa, 0x21, 0x3d], &data);
        let mut ws = WebSocket::new(WebSocketLimits::default());
        ws.feed(&wire);
        match ws.poll_event() {
            Ok(Some(WsEvent::Message { binary: true, data: d })) => assert_eq!(&d[..], &data[..], "unmasked"),
            other => panic!("expected a binary message, got {other:?}"),
        }
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("websocket_decode_masked_{name}"), |b| {
            b.iter(|| {
                ws.feed(black_box(&wire));
                match ws.poll_event() {
                    Ok(Some(ev)) => ev,
                    other => panic!("expected a message, got {other:?}"),
                }
            })
        });
    }
    g.finish();
}

fn websocket_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(1));
    for (name, len, hlen) in [("small", 100usize, 2usize), ("16bit", 1 << 10, 4), ("64bit", 64 << 10, 10)] {
        assert_eq!(frame::message_header(true, len).1, hlen);
        g.bench_function(format!("websocket_encode_header_{name}"), |b| {
            b.iter(|| frame::message_header(black_box(true), black_box(len)))
        });
    }
    let data = payload(1 << 10);
    let mut out = Vec::with_capacity(4096);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("websocket_encode_message_1KiB", |b| {
        b.iter(|| {
            out.clear();
            frame::write_message(&mut out, true, black_box(&data));
            out.len()
        })
    });
    assert_eq!(out.len(), 4 + data.len());
    g.finish();
}

fn rawsocket_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");
    for (name, len) in SIZES {
        let data = payload(len);
        let mut wire = Vec::new();
        rawsocket::write_frame(&mut wire, FrameKind::Message, &data);
        let mut dec = RawSocketDecoder::new(rawsocket::MAX_FRAME_PAYLOAD);
        dec.feed(&wire);
        match dec.poll_event() {
            Ok(Some(RawSocketEvent::Message(d))) => assert_eq!(&d[..], &data[..]),
            other => panic!("expected a message, got {other:?}"),
        }
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_function(format!("rawsocket_decode_{name}"), |b| {
            b.iter(|| {
                dec.feed(black_box(&wire));
                match dec.poll_event() {
                    Ok(Some(ev)) => ev,
                    other => panic!("expected a message, got {other:?}"),
                }
            })
        });
    }
    g.finish();
}

fn rawsocket_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Elements(1));
    assert_eq!(rawsocket::encode_frame_header(FrameKind::Message, 1024), [0, 0, 4, 0]);
    g.bench_function("rawsocket_encode_header", |b| {
        b.iter(|| rawsocket::encode_frame_header(black_box(FrameKind::Message), black_box(1024)))
    });
    let data = payload(1 << 10);
    let mut out = Vec::with_capacity(4096);
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function("rawsocket_encode_1KiB", |b| {
        b.iter(|| {
            out.clear();
            rawsocket::write_frame(&mut out, FrameKind::Message, black_box(&data));
            out.len()
        })
    });
    assert_eq!(out.len(), 4 + data.len());
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = websocket_decode, websocket_encode, rawsocket_decode, rawsocket_encode
}
criterion_main!(benches);
