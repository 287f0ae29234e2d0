"""Joining a realm that does not exist.

HELLO for REALM (which must not exist on the router) must be answered with
ABORT ``wamp.error.no_such_realm``; Autobahn surfaces it through onLeave
(CloseDetails.reason) without ever calling onJoin, and the transport is
closed afterwards.
"""

import asyncio

from wampclient import STEP_TIMEOUT, base_parser, check, open_session, run


async def scenario(args):
    s = await open_session(args.url, args.realm, args.serializer)
    check(not s.joined.done(), f"joined non-existent realm {args.realm!r}")
    check(s.left.done(), "connection dropped without ABORT")
    details = s.left.result()
    check(details.reason == "wamp.error.no_such_realm", f"ABORT reason {details.reason!r}")
    await asyncio.wait_for(s.disconnected, STEP_TIMEOUT)
    return {"reason": details.reason, "message": details.message}


if __name__ == "__main__":
    run(scenario, base_parser(__doc__).parse_args())
