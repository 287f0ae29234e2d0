//! Dealer benchmarks through the sans-IO engine: one routed call round trip,
//! CALL → INVOCATION (to the callee) then YIELD → RESULT (to the caller),
//! including draining the transmits. Caller and callee use CBOR and a small
//! raw payload, as received from the wire.
//!
//! * `call_yield_roundtrip_1_procedure`: one registered procedure.
//! * `call_yield_roundtrip_1k_procedures`: 1000 procedures registered by one
//!   callee; calls stride over all of them.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use router_core::engine::Transmit;
use wamp_proto::{Dict, Message, Payload, RequestId, Serializer};

fn call_yield_roundtrip(c: &mut Criterion) {
    let ser = Serializer::Cbor;
    let mut g = c.benchmark_group("dealer");
    g.throughput(Throughput::Elements(1));
    for (name, procedures) in
        [("call_yield_roundtrip_1_procedure", 1usize), ("call_yield_roundtrip_1k_procedures", 1000)]
    {
        let mut realm = common::open_realm();
        let callee = common::join(&mut realm, 1, ser);
        let caller = common::join(&mut realm, 2, ser);
        let mut calls = Vec::with_capacity(procedures);
        for i in 0..procedures {
            let procedure = format!("com.example.service{i}.compute");
            let reg = Message::Register {
                request: RequestId::from_valid(i as u64 + 1),
                options: Dict::new(),
                procedure: procedure.clone(),
            };
            assert!(matches!(common::request(&mut realm, callee, ser, reg), Message::Registered { .. }));
            let call = Message::Call {
                request: RequestId::from_valid(7),
                options: Dict::new(),
                procedure,
                payload: common::small_payload(),
            };
            calls.push(common::as_received(ser, &call).1);
        }
        let yield_payload = match common::as_received(ser, &common::publish_msg("x", common::small_payload())).1 {
            Message::Publish { payload, .. } => payload,
            _ => Payload::EMPTY,
        };
        // Invocation ids are sequential per callee.
        let mut invocation = 0u64;

        // One checked round trip: INVOCATION to the callee, RESULT to the caller.
        realm.handle_message(caller, calls[0].clone());
        invocation += 1;
        match realm.poll_transmit() {
            Some(Transmit::Message { session, bytes }) => {
                assert_eq!(session, callee);
                let inv = ser.decode(&bytes).expect("decodes");
                assert!(matches!(inv, Message::Invocation { request, .. } if request.get() == invocation));
            }
            other => panic!("expected INVOCATION, got {other:?}"),
        }
        let yld = Message::Yield {
            request: RequestId::from_valid(invocation),
            options: Dict::new(),
            payload: yield_payload.clone(),
        };
        realm.handle_message(callee, yld);
        match realm.poll_transmit() {
            Some(Transmit::Message { session, bytes }) => {
                assert_eq!(session, caller);
                assert!(matches!(ser.decode(&bytes), Ok(Message::Result { request, .. }) if request.get() == 7));
            }
            other => panic!("expected RESULT, got {other:?}"),
        }
        assert!(realm.poll_transmit().is_none());

        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter_batched(
                || {
                    i = (i + 7919) % calls.len(); // stride over all procedures
                    (calls[i].clone(), yield_payload.clone())
                },
                |(call, payload)| {
                    realm.handle_message(caller, call);
                    while let Some(t) = realm.poll_transmit() {
                        black_box(t);
                    }
                    invocation += 1;
                    let yld =
                        Message::Yield { request: RequestId::from_valid(invocation), options: Dict::new(), payload };
                    realm.handle_message(callee, yld);
                    while let Some(t) = realm.poll_transmit() {
                        black_box(t);
                    }
                },
                BatchSize::SmallInput,
            )
        });
        assert_eq!(realm.stats().protocol_violations, 0, "{name}: every YIELD matched an INVOCATION");
        assert_eq!(realm.stats().stale_replies, 0, "{name}: no stale replies");
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = call_yield_roundtrip
}
criterion_main!(benches);
