"""Authorization denial.

Expects a realm whose role for this session may only SUBSCRIBE to topics
under the ``com.allowed.`` prefix (nothing else). Checks:
* subscribe to com.allowed.<x> succeeds;
* subscribe to com.other.<x> -> wamp.error.not_authorized;
* publish (acknowledge=True) to com.allowed.<x> -> wamp.error.not_authorized;
* register com.allowed.<x> -> wamp.error.not_authorized;
* call com.allowed.<x> -> wamp.error.not_authorized;
* the session is still usable afterwards (another subscribe succeeds).
"""

import asyncio

from autobahn.wamp.types import PublishOptions

from wampclient import STEP_TIMEOUT, base_parser, check, close, connect, expect_error, run, unique


async def scenario(args):
    s = await connect(args.url, args.realm, args.serializer)
    allowed = unique("com.allowed.topic")

    sub = await asyncio.wait_for(s.subscribe(lambda *a, **k: None, allowed), STEP_TIMEOUT)
    check(isinstance(sub.id, int), "allowed subscribe gave no subscription id")

    results = {
        "subscribe_other": await expect_error(
            s.subscribe(lambda *a, **k: None, unique("com.other.topic")), "subscribe other"
        ),
        "publish": await expect_error(
            s.publish(allowed, "x", options=PublishOptions(acknowledge=True)), "publish"
        ),
        "register": await expect_error(
            s.register(lambda: None, unique("com.allowed.proc")), "register"
        ),
        "call": await expect_error(s.call(unique("com.allowed.proc")), "call"),
    }
    for what, uri in results.items():
        check(uri == "wamp.error.not_authorized", f"{what}: expected wamp.error.not_authorized, got {uri!r}")

    again = await asyncio.wait_for(s.subscribe(lambda *a, **k: None, unique("com.allowed.again")), STEP_TIMEOUT)
    check(isinstance(again.id, int), "session unusable after denials")
    await close(s)
    return results


if __name__ == "__main__":
    run(scenario, base_parser(__doc__).parse_args())
