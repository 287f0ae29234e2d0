"""Dynamic ticket authentication with a real Autobahn authenticator.

URL is the ticket transport whose authenticator is
``com.example.authenticate`` on realm ``authrealm``; --authenticator-url is
the anonymous transport (role ``authenticator``) the authenticator
component joins through; --nobody-url is a ticket transport whose
authenticator procedure nobody registers. REALM is the login realm.

The authenticator accepts ticket ``good-<authid>`` with role ``user`` and
``extra {hello: authid}`` (authid ``renamed`` is renamed to
``renamed-by-authenticator``), and refuses everything else with
``com.example.invalid_ticket`` "bad ticket".

Steps: four good logins, a renamed one, a bad ticket, a transport whose
authenticator is not registered, and a good login after the authenticator
left. Every outcome is reported; the Rust test asserts.
"""

import asyncio
import time

from autobahn.wamp.exception import ApplicationError

from advanced import open_as
from wampclient import STEP_TIMEOUT, base_parser, close, connect


def outcome(s, elapsed):
    if s.joined.done():
        d = s.joined.result()
        return {
            "joined": True,
            "authid": d.authid,
            "authrole": d.authrole,
            "authmethod": d.authmethod,
            "authextra": d.authextra,
            "realm": d.realm,
            "elapsed": elapsed,
        }
    left = s.left.result() if s.left.done() else None
    return {
        "joined": False,
        "reason": left.reason if left else "connection lost",
        "message": left.message if left else None,
        "elapsed": elapsed,
    }


async def attempt(url, realm, ser, authid, ticket):
    t0 = time.monotonic()
    s = await open_as(url, realm, ser, authid=authid, authmethods=["ticket"], ticket=ticket)
    r = outcome(s, time.monotonic() - t0)
    if r["joined"]:
        # The session works: a meta call round trip in the login realm.
        me = await asyncio.wait_for(s.call("wamp.session.get", s.session_id), STEP_TIMEOUT)
        r["meta_authid"] = me.get("authid")
        await close(s)
    return r


async def scenario(args):
    calls = []
    auth = await connect(args.authenticator_url, "authrealm", args.serializer)

    def authenticate(realm, authid, details):
        calls.append([realm, authid, details.get("authmethod"), details.get("ticket")])
        if details.get("ticket") == f"good-{authid}":
            r = {"role": "user", "extra": {"hello": authid}}
            if authid == "renamed":
                r["authid"] = "renamed-by-authenticator"
            return r
        raise ApplicationError("com.example.invalid_ticket", "bad ticket")

    await asyncio.wait_for(auth.register(authenticate, "com.example.authenticate"), STEP_TIMEOUT)
    out = {}
    out["good"] = [
        await attempt(args.url, args.realm, args.serializer, f"user{i}", f"good-user{i}") for i in range(4)
    ]
    out["renamed"] = await attempt(args.url, args.realm, args.serializer, "renamed", "good-renamed")
    out["bad"] = await attempt(args.url, args.realm, args.serializer, "mallory", "wrong")
    out["nobody"] = await attempt(args.nobody_url, args.realm, args.serializer, "user0", "good-user0")
    out["calls"] = list(calls)
    await close(auth)
    out["gone"] = await attempt(args.url, args.realm, args.serializer, "user1", "good-user1")
    out["calls_after_gone"] = len(calls) - len(out["calls"])
    return out


if __name__ == "__main__":
    p = base_parser(__doc__)
    p.add_argument("--authenticator-url", required=True)
    p.add_argument("--nobody-url", required=True)
    run_args = p.parse_args()
    from wampclient import run

    run(scenario, run_args)
