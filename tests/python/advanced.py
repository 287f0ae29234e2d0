"""Pattern-based subscriptions and shared registrations.

Checks:
* a prefix subscription (match="prefix") receives events for topics under
  its prefix, with the concrete topic in EventDetails.topic, and not others;
* a wildcard subscription (match="wildcard", ``a..c``) receives events for
  matching topics only;
* an exact subscription and a prefix subscription on the same topic both
  receive one event each;
* two callees registering the same URI with invoke="roundrobin" share the
  calls (4 calls -> 2 each); a third registration with a different policy
  fails (wamp.error.procedure_exists_invocation_policy_conflict per the
  spec, or Crossbar's procedure_exists_with_different_invocation_policy);
* caller disclosure is off by default (CallDetails.caller is None).
"""

import asyncio

from autobahn.wamp.types import CallDetails, PublishOptions, RegisterOptions, SubscribeOptions

from wampclient import STEP_TIMEOUT, base_parser, check, close, connect, expect_error, run, unique


async def scenario(args):
    s1 = await connect(args.url, args.realm, args.serializer)
    s2 = await connect(args.url, args.realm, args.serializer)
    base = unique("com.example.adv")

    prefix_q, wild_q, exact_q = asyncio.Queue(), asyncio.Queue(), asyncio.Queue()

    def on_prefix(*a, details=None):
        prefix_q.put_nowait((list(a), details.topic))

    def on_wild(*a, details=None):
        wild_q.put_nowait((list(a), details.topic))

    def on_exact(*a, details=None):
        exact_q.put_nowait((list(a), details.topic))

    await asyncio.wait_for(
        s1.subscribe(on_prefix, f"{base}.p", options=SubscribeOptions(match="prefix", details_arg="details")),
        STEP_TIMEOUT,
    )
    await asyncio.wait_for(
        s1.subscribe(on_wild, f"{base}.w..end", options=SubscribeOptions(match="wildcard", details_arg="details")),
        STEP_TIMEOUT,
    )
    await asyncio.wait_for(
        s1.subscribe(on_exact, f"{base}.p.x", options=SubscribeOptions(details_arg="details")), STEP_TIMEOUT
    )

    ack = PublishOptions(acknowledge=True)
    for topic, marker in [
        (f"{base}.other", "none"),  # matches nothing
        (f"{base}.w.mid.notend", "none2"),  # wildcard: last component differs
        (f"{base}.p.x", "both"),  # prefix and exact
        (f"{base}.pq", "prefix-string"),  # prefix match is string-based
        (f"{base}.w.mid.end", "wild"),
    ]:
        await asyncio.wait_for(s2.publish(topic, marker, options=ack), STEP_TIMEOUT)

    got_prefix = [await asyncio.wait_for(prefix_q.get(), STEP_TIMEOUT) for _ in range(2)]
    check(got_prefix == [(["both"], f"{base}.p.x"), (["prefix-string"], f"{base}.pq")], f"prefix got {got_prefix!r}")
    got_wild = await asyncio.wait_for(wild_q.get(), STEP_TIMEOUT)
    check(got_wild == (["wild"], f"{base}.w.mid.end"), f"wildcard got {got_wild!r}")
    got_exact = await asyncio.wait_for(exact_q.get(), STEP_TIMEOUT)
    check(got_exact[0] == ["both"], f"exact got {got_exact!r}")
    # Barrier: a round trip on s1 after all publications were acknowledged.
    await asyncio.wait_for(s1.subscribe(lambda *a, **k: None, unique("com.example.barrier")), STEP_TIMEOUT)
    check(prefix_q.empty() and wild_q.empty() and exact_q.empty(), "unexpected extra events")

    # Shared registration, round robin.
    proc = f"{base}.rr"
    served = {"s1": 0, "s2": 0}
    seen_caller = []

    def make(name):
        def handler(details=None):
            served[name] += 1
            seen_caller.append(details.caller)
            return name

        return handler

    rr = RegisterOptions(invoke="roundrobin", details_arg="details")
    await asyncio.wait_for(s1.register(make("s1"), proc, options=rr), STEP_TIMEOUT)
    await asyncio.wait_for(s2.register(make("s2"), proc, options=rr), STEP_TIMEOUT)
    results = [await asyncio.wait_for(s1.call(proc), STEP_TIMEOUT) for _ in range(4)]
    check(served == {"s1": 2, "s2": 2}, f"round robin served {served} ({results})")
    check(all(c is None for c in seen_caller), f"caller disclosed without being asked: {seen_caller}")
    conflict = await expect_error(
        s2.register(lambda: None, proc, options=RegisterOptions(invoke="single")), "conflicting register"
    )
    # Refused; which URI is the caller's (Rust test) business: the WAMP
    # spec names procedure_exists_invocation_policy_conflict, Crossbar.io
    # answers procedure_exists_with_different_invocation_policy.
    check(conflict.startswith("wamp.error."), f"conflicting invocation policy gave {conflict!r}")

    await close(s1, s2)
    return {"round_robin": served, "policy_conflict": conflict}


if __name__ == "__main__":
    run(scenario, base_parser(__doc__).parse_args())
