"""Scenarios for Junction's proxy workers (tests/proxy.rs).

    proxy.py locate URL REALM SERIALIZER [--method M ...] [--authid ID]
            [--ticket T] [--authrole ROLE] [--ca PEM] [--sessions K]
            [--query URL ...]
        Opens K sessions through URL (a proxy) offering the methods (default
        anonymous; --authrole is put into HELLO as the requested role), then,
        for every --query URL (a router worker's own transport), joins REALM
        there anonymously and asks the WAMP meta API where the proxied
        sessions are: ``wamp.session.count``, ``wamp.session.list`` (which of
        the K session ids it holds) and ``wamp.session.get`` of the first
        one. Prints the sessions' WELCOME identities and the answers. A
        refused join is reported (``joined: false`` with the ABORT reason),
        not raised.

    proxy.py load URL REALM SERIALIZER [--clients N] [--bound S] [--pause P]
        N clients through URL, each registering its own procedure and topic
        and then calling it / publishing (acknowledged) in a loop, until
        stdin closes or says ``stop``. A client whose session ends
        (GOODBYE/ABORT/lost connection) records the reason and reconnects.
        Every request is awaited with a bound of S seconds: one that takes
        longer counts as a hang. Prints ``{"ready": true}`` once every client
        joined and made a call, then the statistics as the last line.
"""

import asyncio
import sys
import time

import secure
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from secure import client_ssl_context, open_auth_session
from wampclient import STEP_TIMEOUT, Client, Failure, base_parser, close, connect, run, unique


class RoleAuthClient(secure.AuthClient):
    """An :class:`secure.AuthClient` that also asks for an ``authrole``."""

    requested_role = None

    def onConnect(self):
        self.join(
            self.config.realm,
            authmethods=self._authmethods,
            authid=self._authid,
            authrole=RoleAuthClient.requested_role,
            authextra=self._hello_authextra or None,
        )


async def call(session, proc, *a):
    return await asyncio.wait_for(session.call(proc, *a), STEP_TIMEOUT)


async def locate(args):
    RoleAuthClient.requested_role = args.authrole
    secure.AuthClient = RoleAuthClient
    ctx = client_ssl_context(args.ca) if args.ca else None
    methods = args.method or ["anonymous"]
    sessions = []
    out = {"sessions": []}
    for _ in range(args.sessions):
        s, lost = await open_auth_session(
            args.url, args.realm, args.serializer, methods, authid=args.authid, ssl_ctx=ctx, ticket=args.ticket
        )
        if not s.joined.done():
            d = s.left.result() if s.left.done() else None
            out["joined"] = False
            out["reason"] = d.reason if d else None
            out["message"] = d.message if d else None
            out["closed"] = lost.done() or s.disconnected.done()
            await close(*sessions)
            return out
        sessions.append(s)
        d = s.joined.result()
        out["sessions"].append(
            {"session": d.session, "authid": d.authid, "authrole": d.authrole, "authmethod": d.authmethod,
             "realm": d.realm}
        )
    out["joined"] = True
    t = getattr(sessions[0]._transport, "transport", None)
    sockname = t.get_extra_info("sockname") if t is not None else None
    out["local_port"] = sockname[1] if sockname else None
    ids = [s.session_id for s in sessions]
    # The session works: a call to a procedure it registered itself.
    proc = unique("com.proxy.echo")
    await asyncio.wait_for(sessions[0].register(lambda x: x, proc), STEP_TIMEOUT)
    out["echo"] = await call(sessions[0], proc, "ping")
    out["queries"] = []
    for q in args.query or []:
        admin = await connect(q, args.realm, "json")
        listed = await call(admin, "wamp.session.list")
        entry = {
            "url": q,
            "count": await call(admin, "wamp.session.count"),
            "held": [i for i in ids if i in listed],
        }
        try:
            entry["get"] = await call(admin, "wamp.session.get", ids[0])
        except ApplicationError as e:
            entry["get_error"] = e.error
        out["queries"].append(entry)
        await close(admin)
    await close(*sessions)
    return out


class LoadClient(Client):
    """A :class:`wampclient.Client` that keeps Autobahn's own cleanup
    (outstanding requests are errbacked when the session ends)."""

    def onLeave(self, details):
        if not self.left.done():
            self.left.set_result(details)
        return ApplicationSession.onLeave(self, details)

    def onDisconnect(self):
        if not self.disconnected.done():
            self.disconnected.set_result(True)
        return ApplicationSession.onDisconnect(self)


async def load(args):
    import wampclient

    wampclient.Client = LoadClient  # open_session builds wampclient.Client
    stop = asyncio.Event()
    ready = asyncio.Event()
    first_call = set()
    stats = {
        "calls_ok": 0,
        "publishes_ok": 0,
        "request_errors": {},
        "hangs": [],
        "leave_reasons": {},
        "lost_sessions": 0,
        "reconnects": [],
        "join_failures": {},
        "never_rejoined": 0,
        "max_request_s": 0.0,
        "max_error_wait_s": 0.0,
        "sessions_opened": 0,
    }
    per_client_ok_after_loss = {}

    def count(d, k):
        d[k] = d.get(k, 0) + 1

    async def client(i):
        lost_at = None
        while not stop.is_set():
            try:
                s = await connect(args.url, args.realm, args.serializer)
            except (Failure, OSError, asyncio.TimeoutError) as e:
                count(stats["join_failures"], str(e)[:120])
                await asyncio.sleep(0.05)
                continue
            stats["sessions_opened"] += 1
            if lost_at is not None:
                stats["reconnects"].append(round(time.monotonic() - lost_at, 3))
                lost_at = None
                per_client_ok_after_loss[i] = 0
            proc, topic = unique("com.proxy.load"), unique("com.proxy.topic")
            n = 0
            t0 = time.monotonic()
            try:
                await asyncio.wait_for(s.register(lambda x: x + 1, proc), args.bound)
                await asyncio.wait_for(s.subscribe(lambda *a: None, topic), args.bound)
                while not stop.is_set() and not s.left.done() and not s.disconnected.done():
                    n += 1
                    t0 = time.monotonic()
                    if n % 2:
                        r = await asyncio.wait_for(s.call(proc, n), args.bound)
                        if r != n + 1:
                            raise Failure(f"call returned {r!r}, wanted {n + 1}")
                        stats["calls_ok"] += 1
                    else:
                        await asyncio.wait_for(s.publish(topic, n, options=PublishOptions(acknowledge=True)),
                                               args.bound)
                        stats["publishes_ok"] += 1
                    stats["max_request_s"] = max(stats["max_request_s"], time.monotonic() - t0)
                    await asyncio.sleep(args.pause)
                    if i in per_client_ok_after_loss:
                        per_client_ok_after_loss[i] += 1
                    if i not in first_call:
                        first_call.add(i)
                        if len(first_call) == args.clients:
                            ready.set()
            except asyncio.TimeoutError:
                stats["hangs"].append({"client": i, "request": n, "after_s": args.bound})
            except Failure:
                raise
            except Exception as e:  # noqa: BLE001 - an errored request is fine, record it
                key = e.error if isinstance(e, ApplicationError) else type(e).__name__
                count(stats["request_errors"], key)
                stats["max_error_wait_s"] = round(max(stats["max_error_wait_s"], time.monotonic() - t0), 3)
            if stop.is_set():
                await close(s)
                break
            # The session ended (or a request failed): wait (bounded) for the
            # end to become visible, note why, and reconnect.
            done, _ = await asyncio.wait([s.left, s.disconnected], timeout=args.bound,
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                stats["hangs"].append({"client": i, "request": n, "what": "session did not end after an error"})
                s.disconnect()
            lost_at = time.monotonic()
            stats["lost_sessions"] += 1
            count(stats["leave_reasons"], s.left.result().reason if s.left.done() else "connection lost")
            if s._transport:
                s.disconnect()
        if lost_at is not None:
            stats["never_rejoined"] += 1

    async def watch_stdin():
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or line.strip() == "stop":
                stop.set()
                return

    tasks = [asyncio.ensure_future(client(i)) for i in range(args.clients)]
    watcher = asyncio.ensure_future(watch_stdin())
    done, _ = await asyncio.wait([asyncio.ensure_future(ready.wait()), watcher, *tasks],
                                 timeout=STEP_TIMEOUT * 3, return_when=asyncio.FIRST_COMPLETED)
    if not ready.is_set():
        for t in done:
            if t in tasks and t.exception():
                raise t.exception()
        raise Failure(f"only {len(first_call)} of {args.clients} clients made a call")
    print('{"ready": true}', flush=True)
    await stop.wait()
    await asyncio.wait_for(asyncio.gather(*tasks), args.bound + STEP_TIMEOUT)
    stats["clients_ok_after_loss"] = sorted(per_client_ok_after_loss.values())
    stats["max_request_s"] = round(stats["max_request_s"], 3)
    return stats


async def scenario(args):
    if args.scenario == "locate":
        return await locate(args)
    return await load(args)


if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in ("locate", "load"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    which = sys.argv.pop(1)
    p = base_parser(__doc__)
    p.add_argument("--method", action="append", default=None)
    p.add_argument("--authid")
    p.add_argument("--ticket")
    p.add_argument("--authrole")
    p.add_argument("--ca")
    p.add_argument("--sessions", type=int, default=1)
    p.add_argument("--query", action="append", default=None)
    p.add_argument("--clients", type=int, default=10)
    p.add_argument("--bound", type=float, default=5.0)
    p.add_argument("--pause", type=float, default=0.01, help="seconds between a client's requests")
    a = p.parse_args()
    a.scenario = which
    if which == "load":
        a.timeout = 600.0
    run(scenario, a)
