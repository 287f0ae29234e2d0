//! Broker benchmarks through the sans-IO engine (`router_core::engine::Realm`):
//! one `handle_message(PUBLISH)` plus draining every queued transmit.
//!
//! * `publish_fanout_1k_subscribers_cbor`: 1000 CBOR subscribers, CBOR
//!   publisher: one EVENT encoding shared by all. Throughput is in delivered
//!   events, so criterion's elements/s is the per-event rate.
//! * `publish_fanout_1k_subscribers_mixed`: 250 subscribers per serializer
//!   (JSON, MessagePack, CBOR, Flatbuffers), CBOR publisher: four EVENT
//!   encodings and two payload transcodes per publication.
//! * `publish_no_subscribers`: the publish path without fan-out (URI check,
//!   authorization, publication id, lookup miss).
//! * `subscription_lookup_{exact,prefix,wildcard}_{1,10k}`: a PUBLISH
//!   delivered to one subscriber holding 1 or 10 000 subscriptions of that
//!   match policy, exactly one of which matches (publications cycle over all
//!   of them), to expose the cost of the subscription lookup at scale.
//! * `subscribe_unsubscribe_shared`: SUBSCRIBE + UNSUBSCRIBE to a topic that
//!   has another subscriber (join/leave an existing subscription), including
//!   encoding SUBSCRIBED/UNSUBSCRIBED.
//! * `subscribe_unsubscribe_new_topic`: the same on a topic nobody else
//!   subscribes to (the subscription is created and deleted); includes
//!   decoding the SUBSCRIBED reply to learn the subscription id.

mod common;

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use router_core::engine::{Realm, Transmit};
use wamp_proto::{Dict, Message, RequestId, Serializer, SessionId, SubscriptionId, Value};

const TOPIC: &str = "com.example.ticker";

fn subscribe(realm: &mut Realm, session: SessionId, ser: Serializer, topic: &str) -> SubscriptionId {
    subscribe_match(realm, session, ser, topic, None)
}

/// SUBSCRIBE with `options.match = policy` (none: exact).
fn subscribe_match(
    realm: &mut Realm,
    session: SessionId,
    ser: Serializer,
    topic: &str,
    policy: Option<&str>,
) -> SubscriptionId {
    let mut options = Dict::new();
    if let Some(p) = policy {
        options.insert("match".into(), Value::Str(p.into()));
    }
    let msg = Message::Subscribe { request: RequestId::from_valid(1), options, topic: topic.into() };
    match common::request(realm, session, ser, msg) {
        Message::Subscribed { subscription, .. } => subscription,
        other => panic!("expected SUBSCRIBED, got {other:?}"),
    }
}

/// A realm with `subscribers` (serializer per subscriber) on `TOPIC` and one
/// CBOR publisher; returns the realm and the publisher's session.
fn fanout_realm(serializers: impl Iterator<Item = Serializer>) -> (Realm, SessionId) {
    let mut realm = common::open_realm();
    for (i, ser) in serializers.enumerate() {
        let s = common::join(&mut realm, 1000 + i as u64, ser);
        subscribe(&mut realm, s, ser, TOPIC);
    }
    let publisher = common::join(&mut realm, 1, Serializer::Cbor);
    (realm, publisher)
}

fn bench_publish(
    c: &mut Criterion,
    name: &str,
    realm: &mut Realm,
    publisher: SessionId,
    publish: &Message,
    expected_events: usize,
) {
    // The fixture must deliver what the name claims.
    realm.handle_message(publisher, publish.clone());
    let (n, _) = common::drain(realm);
    assert_eq!(n, expected_events, "{name}: events delivered");
    let mut g = c.benchmark_group("broker");
    g.throughput(Throughput::Elements(expected_events.max(1) as u64));
    g.bench_function(name, |b| {
        b.iter_batched(
            || publish.clone(),
            |m| {
                realm.handle_message(publisher, m);
                while let Some(t) = realm.poll_transmit() {
                    black_box(t);
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

fn publish_fanout(c: &mut Criterion) {
    let (_, publish) = common::as_received(Serializer::Cbor, &common::publish_msg(TOPIC, common::small_payload()));

    let (mut realm, publisher) = fanout_realm(std::iter::repeat_n(Serializer::Cbor, 1000));
    bench_publish(c, "publish_fanout_1k_subscribers_cbor", &mut realm, publisher, &publish, 1000);

    let mixed = [Serializer::Json, Serializer::Msgpack, Serializer::Cbor, Serializer::Flatbuffers];
    let (mut realm, publisher) = fanout_realm((0..1000).map(|i| mixed[i % 4]));
    bench_publish(c, "publish_fanout_1k_subscribers_mixed", &mut realm, publisher, &publish, 1000);

    let mut realm = common::open_realm();
    let publisher = common::join(&mut realm, 1, Serializer::Cbor);
    bench_publish(c, "publish_no_subscribers", &mut realm, publisher, &publish, 0);
}

fn subscription_lookup(c: &mut Criterion) {
    // (policy, pattern of subscription i); every publication goes to
    // "sensors.s<i>.temp.reading" and matches exactly one subscription.
    type Case = (&'static str, Option<&'static str>, fn(usize) -> String);
    let cases: [Case; 3] = [
        ("exact", None, |i| format!("sensors.s{i:05}.temp.reading")),
        ("prefix", Some("prefix"), |i| format!("sensors.s{i:05}")),
        ("wildcard", Some("wildcard"), |i| format!("sensors.s{i:05}..reading")),
    ];
    for (policy_name, policy, pattern) in cases {
        for (count_name, count) in [("1", 1usize), ("10k", 10_000)] {
            let name = format!("subscription_lookup_{policy_name}_{count_name}");
            let mut realm = common::open_realm();
            let subscriber = common::join(&mut realm, 2, Serializer::Cbor);
            let publisher = common::join(&mut realm, 1, Serializer::Cbor);
            for i in 0..count {
                subscribe_match(&mut realm, subscriber, Serializer::Cbor, &pattern(i), policy);
            }
            let publishes: Vec<Message> = (0..count)
                .map(|i| {
                    let topic = format!("sensors.s{i:05}.temp.reading");
                    common::as_received(Serializer::Cbor, &common::publish_msg(&topic, common::small_payload())).1
                })
                .collect();
            for p in [publishes.first(), publishes.last()].into_iter().flatten() {
                realm.handle_message(publisher, p.clone());
                assert_eq!(common::drain(&mut realm).0, 1, "{name}: one event per publication");
            }
            let mut g = c.benchmark_group("broker");
            g.throughput(Throughput::Elements(1));
            let mut i = 0;
            g.bench_function(&name, |b| {
                b.iter_batched(
                    || {
                        i = (i + 7919) % publishes.len(); // stride over all topics
                        publishes[i].clone()
                    },
                    |m| {
                        realm.handle_message(publisher, m);
                        while let Some(t) = realm.poll_transmit() {
                            black_box(t);
                        }
                    },
                    BatchSize::SmallInput,
                )
            });
            g.finish();
        }
    }
}

fn subscribe_unsubscribe(c: &mut Criterion) {
    let ser = Serializer::Cbor;
    let mut g = c.benchmark_group("broker");
    g.throughput(Throughput::Elements(1));

    // Joining and leaving an existing subscription: the id is stable.
    let mut realm = common::open_realm();
    let other = common::join(&mut realm, 2, ser);
    let id = subscribe(&mut realm, other, ser, TOPIC);
    let s = common::join(&mut realm, 3, ser);
    assert_eq!(subscribe(&mut realm, s, ser, TOPIC), id, "one subscription per topic");
    let unsub = Message::Unsubscribe { request: RequestId::from_valid(2), subscription: id };
    assert!(matches!(common::request(&mut realm, s, ser, unsub.clone()), Message::Unsubscribed { .. }));
    let sub = Message::Subscribe { request: RequestId::from_valid(1), options: Dict::new(), topic: TOPIC.into() };
    g.bench_function("subscribe_unsubscribe_shared", |b| {
        b.iter_batched(
            || (sub.clone(), unsub.clone()),
            |(sub, unsub)| {
                realm.handle_message(s, sub);
                while let Some(t) = realm.poll_transmit() {
                    black_box(t);
                }
                realm.handle_message(s, unsub);
                while let Some(t) = realm.poll_transmit() {
                    black_box(t);
                }
            },
            BatchSize::SmallInput,
        )
    });

    // Creating and deleting the subscription each time.
    let mut realm = common::open_realm();
    let s = common::join(&mut realm, 3, ser);
    g.bench_function("subscribe_unsubscribe_new_topic", |b| {
        b.iter_batched(
            || sub.clone(),
            |sub| {
                realm.handle_message(s, sub);
                let mut id = None;
                while let Some(t) = realm.poll_transmit() {
                    if let Transmit::Message { bytes, .. } = t {
                        if let Ok(Message::Subscribed { subscription, .. }) = ser.decode(&bytes) {
                            id = Some(subscription);
                        }
                    }
                }
                let Some(id) = id else { panic!("no SUBSCRIBED") };
                let unsub = Message::Unsubscribe { request: RequestId::from_valid(2), subscription: id };
                realm.handle_message(s, unsub);
                while let Some(t) = realm.poll_transmit() {
                    black_box(t);
                }
            },
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::config();
    targets = publish_fanout, subscription_lookup, subscribe_unsubscribe
}
criterion_main!(benches);
