"""A known amount of traffic, for counters to be checked against.

A callee registers one procedure; --subscribers sessions subscribe to one
topic; a caller/publisher then makes --calls calls (each answered) and
--publishes acknowledged publications, and waits until every subscriber
got every event. Every session joins on URL/SERIALIZER.

Prints what it caused: calls, publishes, subscribers, events received
(publishes * subscribers), and the sessions it opened.
"""

import asyncio

from autobahn.wamp.types import PublishOptions

from wampclient import STEP_TIMEOUT, base_parser, check, close, connect, run, unique


async def scenario(args):
    client = await connect(args.url, args.realm, args.serializer)
    callee = await connect(args.url, args.realm, args.serializer)
    subscribers = [await connect(args.url, args.realm, args.serializer) for _ in range(args.subscribers)]
    procedure = unique("com.example.traffic.proc")
    topic = unique("com.example.traffic.topic")

    await asyncio.wait_for(callee.register(lambda x: x + 1, procedure), STEP_TIMEOUT)
    received = asyncio.Queue()
    for i, s in enumerate(subscribers):
        await asyncio.wait_for(s.subscribe(lambda n, i=i: received.put_nowait((i, n)), topic), STEP_TIMEOUT)

    for n in range(args.calls):
        r = await asyncio.wait_for(client.call(procedure, n), STEP_TIMEOUT)
        check(r == n + 1, f"call {n} returned {r!r}")
    for n in range(args.publishes):
        p = await asyncio.wait_for(client.publish(topic, n, options=PublishOptions(acknowledge=True)), STEP_TIMEOUT)
        check(p is not None, f"publication {n} not acknowledged")
    events = 0
    for _ in range(args.publishes * args.subscribers):
        await asyncio.wait_for(received.get(), STEP_TIMEOUT)
        events += 1

    await close(client, callee, *subscribers)
    return {
        "calls": args.calls,
        "publishes": args.publishes,
        "subscribers": args.subscribers,
        "events": events,
        "sessions": 2 + args.subscribers,
    }


if __name__ == "__main__":
    p = base_parser(__doc__)
    p.add_argument("--calls", type=int, default=10)
    p.add_argument("--publishes", type=int, default=10)
    p.add_argument("--subscribers", type=int, default=2)
    run(scenario, p.parse_args())
