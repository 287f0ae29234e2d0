"""Pub/sub between two sessions.

The subscriber joins on URL/SERIALIZER; the publisher on --pub-url /
--pub-serializer (defaults: the same), so mixed transports and serializers
are covered by the same scenario.

Checks:
* the subscriber receives exactly the published args/kwargs (binary,
  unicode, nesting, +-2^53 ...), in publication order;
* acknowledge=True yields a PUBLISHED with a publication id;
* the publisher, also subscribed, does not receive its own event by default
  but does with exclude_me=False (ordering per publisher makes the first
  event it sees decisive: no sleeping);
* unsubscribe works and a later publication reaches the publisher only;
* a large (default 1 MiB) binary argument arrives intact.
"""

import asyncio

from autobahn.wamp.types import PublishOptions

from wampclient import (
    PAYLOAD_ARGS,
    PAYLOAD_KWARGS,
    STEP_TIMEOUT,
    base_parser,
    check,
    close,
    connect,
    run,
    strict_equal,
    to_jsonable,
    unique,
)


async def scenario(args):
    sub = await connect(args.url, args.realm, args.serializer)
    pub = await connect(args.pub_url or args.url, args.realm, args.pub_serializer or args.serializer)
    topic = unique("com.example.topic")

    sub_events = asyncio.Queue()
    pub_events = asyncio.Queue()

    def on_sub(*a, **kw):
        sub_events.put_nowait((list(a), kw))

    def on_pub(*a, **kw):
        pub_events.put_nowait((list(a), kw))

    subscription = await asyncio.wait_for(sub.subscribe(on_sub, topic), STEP_TIMEOUT)
    await asyncio.wait_for(pub.subscribe(on_pub, topic), STEP_TIMEOUT)

    # 1. acknowledged publication, publisher excluded (the default)
    publication = await asyncio.wait_for(
        pub.publish(topic, *PAYLOAD_ARGS, options=PublishOptions(acknowledge=True), **PAYLOAD_KWARGS),
        STEP_TIMEOUT,
    )
    check(publication is not None and isinstance(publication.id, int), f"no publication id: {publication!r}")
    check(1 <= publication.id <= 2**53, f"publication id out of range: {publication.id}")

    a, kw = await asyncio.wait_for(sub_events.get(), STEP_TIMEOUT)
    check(strict_equal(a, PAYLOAD_ARGS), f"args differ: got {to_jsonable(a)!r}")
    check(strict_equal(kw, PAYLOAD_KWARGS), f"kwargs differ: got {to_jsonable(kw)!r}")

    # 2. publisher included
    pub.publish(topic, "second", options=PublishOptions(exclude_me=False))
    a2, kw2 = await asyncio.wait_for(sub_events.get(), STEP_TIMEOUT)
    check(a2 == ["second"] and kw2 == {}, f"second event wrong: {a2!r} {kw2!r}")
    own, own_kw = await asyncio.wait_for(pub_events.get(), STEP_TIMEOUT)
    check(own == ["second"], f"publisher got its own excluded event first: {to_jsonable(own)!r}")

    # 3. a publication with no payload at all
    pub.publish(topic)
    a3, kw3 = await asyncio.wait_for(sub_events.get(), STEP_TIMEOUT)
    check(a3 == [] and kw3 == {}, f"empty event wrong: {a3!r} {kw3!r}")

    # 4. after unsubscribing, the subscriber gets nothing; the publisher
    #    (exclude_me=False) still gets it -- proves delivery happened.
    await asyncio.wait_for(subscription.unsubscribe(), STEP_TIMEOUT)
    await asyncio.wait_for(
        pub.publish(topic, "third", options=PublishOptions(exclude_me=False, acknowledge=True)),
        STEP_TIMEOUT,
    )
    own3, _ = await asyncio.wait_for(pub_events.get(), STEP_TIMEOUT)
    check(own3 == ["third"], f"publisher missed 'third': {own3!r}")
    # Round trip on the subscriber's connection after the publication: any
    # stray EVENT would have arrived before the reply (per-session order).
    await asyncio.wait_for(sub.subscribe(lambda *a, **k: None, unique("com.example.barrier")), STEP_TIMEOUT)
    check(sub_events.empty(), "subscriber received an event after unsubscribing")

    # 5. a large binary payload (1 MiB by default, base64 on JSON), acknowledged
    big = (bytes(range(256)) * (args.big_bytes // 256 + 1))[: args.big_bytes]
    sub2_events = asyncio.Queue()
    await asyncio.wait_for(sub.subscribe(lambda *a, **kw: sub2_events.put_nowait((a, kw)), topic + ".big"), STEP_TIMEOUT)
    await asyncio.wait_for(
        pub.publish(topic + ".big", big, options=PublishOptions(acknowledge=True)), STEP_TIMEOUT
    )
    a5, _ = await asyncio.wait_for(sub2_events.get(), STEP_TIMEOUT)
    check(len(a5) == 1 and isinstance(a5[0], bytes) and a5[0] == big, f"{len(big)}-byte binary payload differs")

    await close(sub, pub)
    return {
        "publication_id": publication.id,
        "sub_events": 3,
        "publisher_first_own_event": own[0],
    }


if __name__ == "__main__":
    p = base_parser(__doc__)
    p.add_argument("--pub-url", default=None)
    p.add_argument("--pub-serializer", default=None)
    p.add_argument("--big-bytes", type=int, default=1 << 20, help="size of the large binary argument")
    run(scenario, p.parse_args())
