"""Scenarios for the fault-injection tests (tests/faults.rs).

    faults.py load URL REALM SERIALIZER [--clients N] [--bound S] [--pause P]
            [--ping-interval S --ping-timeout S] [--connect-timeout S]
        N clients through URL, each registering its own procedure and
        subscribing its own topic, then calling it and publishing to it
        (acknowledged, exclude_me=False, so every acknowledged publication
        must come back as an EVENT) in a loop until stdin says ``stop``.
        A client whose session ends (GOODBYE/ABORT/lost connection)
        records when and why, and reconnects. Every request and every
        connection attempt is bounded (S resp. --connect-timeout seconds):
        a request that takes longer is a hang. With --ping-interval (ws://
        only) the client's WebSocket auto-ping is on (Autobahn's
        autoPingInterval/autoPingTimeout). Prints ``{"ready": true}`` once
        every client made a call, then its statistics as the last line;
        times are wall-clock seconds (time.time()), so the test can relate
        them to the moment it injected a fault.

    faults.py hold URL REALM SERIALIZER --proc P
        One session registering P (returns "held") until stdin says
        ``stop``. Prints ``{"ready": true}`` once registered, then how the
        session ended (``ended``: null if it was still attached).

    faults.py call URL REALM SERIALIZER --proc P [--bound S]
        One call of P; prints the result or the error URI and how long the
        answer took (``took_s``), or ``hang: true`` after S seconds.

    faults.py master URL REALM SERIALIZER --superuser SEED --op OP [--name N]
            [--count K]
        Management calls on the master's global realm as the superuser:
        OP ``create`` creates management realm N (``oid`` or
        ``error``/``message``); ``fill`` creates N-0, N-1, ... until a call
        fails or K were created (``created``, ``error``, ``message``, then
        whether reads still answer: ``names``, ``status_type``); ``list``
        returns ``names``.

    faults.py mstate URL REALM SERIALIZER --superuser SEED --name N
            [--count K] [--bound S]
        The master's state as the superuser sees it: management realm
        names of the global realm, and the nodes of management realm N
        (``nodes``: authid -> {oid, status}), polled until K nodes are
        "online" (``online_after_s``; at most S seconds, default 10);
        ``answered_at``/``online_at``: wall-clock times of the first answer
        and of the last poll.

    faults.py frozen URL REALM SERIALIZER --superuser SEED [--bound S]
        A management session on the master's global realm (one call made:
        ``domain.get_status``), then ``{"ready": true}``. On ``mark`` (the
        master is frozen now) it calls ``domain.get_status`` on that
        session and opens a new session, each bounded by S seconds, and
        answers ``{"mark": {...}}`` with what happened (``call``:
        "ok"/"timeout"/error URI/"session closed", ``call_took_s``,
        ``connect``: "joined"/"timeout"/error, ``connect_took_s``, the
        session's state). On ``stop`` (the master runs again) it calls
        once more on the old session and on a new one
        (``after_call_old``, ``after_call_new``, ``after_took_s``).
"""

import asyncio
import json
import sys
import time
from urllib.parse import urlparse

from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.wamp import ApplicationSession
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp import types
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import PublishOptions
from wampclient import SERIALIZERS, STEP_TIMEOUT, Client, Failure, base_parser, close, run, unique


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


async def open_session(args, cls=LoadClient):
    """Connects and sends HELLO; returns the session once it joined or was
    refused (``session.joined`` / ``session.left``), the connection was
    lost (``session.lost``), or raises ``asyncio.TimeoutError`` after
    --connect-timeout seconds (the session is then disconnected)."""
    loop = asyncio.get_running_loop()
    ser = SERIALIZERS[args.serializer]()
    session = cls(types.ComponentConfig(realm=args.realm))
    p = urlparse(args.url)
    if args.url.startswith("ws://"):
        factory = WampWebSocketClientFactory(lambda: session, url=args.url, serializers=[ser])
        if args.ping_interval:
            factory.setProtocolOptions(autoPingInterval=args.ping_interval, autoPingTimeout=args.ping_timeout)
    elif args.url.startswith("rs://"):
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
    else:
        raise Failure(f"unsupported URL {args.url!r}")
    deadline = loop.time() + args.connect_timeout
    transport, protocol = await asyncio.wait_for(loop.create_connection(factory, p.hostname, p.port),
                                                 args.connect_timeout)
    lost = loop.create_future()
    original_lost = protocol.connection_lost

    def connection_lost(exc):
        if not lost.done():
            lost.set_result(exc)
        original_lost(exc)

    protocol.connection_lost = connection_lost
    session.lost = lost
    if transport.is_closing() and not lost.done():
        lost.set_result(None)
    done, _ = await asyncio.wait([session.joined, session.left, session.disconnected, lost],
                                 timeout=max(0.0, deadline - loop.time()), return_when=asyncio.FIRST_COMPLETED)
    if not done:
        transport.abort()
        raise asyncio.TimeoutError()
    return session


def reason_of(s):
    if s.left.done():
        return s.left.result().reason
    return "connection lost"


async def load(args):
    stop = asyncio.Event()
    ready = asyncio.Event()
    first_call = set()
    stats = {
        "calls_ok": 0,
        "publishes_ok": 0,
        "events": 0,
        "events_missing": 0,
        "events_unexpected": 0,
        "request_errors": [],
        "hangs": [],
        "losses": [],
        "rejoins": [],
        "join_failures": {},
        "connect_timeouts": [],
        "gaps": [],
        "never_rejoined": 0,
        "max_request_s": 0.0,
        "sessions_opened": 0,
    }

    def count(d, k):
        d[k] = d.get(k, 0) + 1

    async def client(i):
        lost_at = None
        last_ok = None
        while not stop.is_set():
            t_try = time.time()
            try:
                s = await open_session(args)
            except asyncio.TimeoutError:
                stats["connect_timeouts"].append(round(t_try, 3))
                continue
            except (Failure, OSError) as e:
                count(stats["join_failures"], type(e).__name__ + ": " + str(e)[:80])
                await asyncio.sleep(0.05)
                continue
            if not s.joined.done():
                count(stats["join_failures"], reason_of(s))
                if s._transport:
                    s.disconnect()
                await asyncio.sleep(0.05)
                continue
            stats["sessions_opened"] += 1
            if lost_at is not None:
                stats["rejoins"].append({"client": i, "t": round(time.time(), 3), "lost_t": round(lost_at, 3)})
                lost_at = None
            proc, topic = unique("com.faults.proc"), unique("com.faults.topic")
            acked, received = set(), set()

            def on_event(seq):
                if seq in received:
                    stats["events_unexpected"] += 1
                received.add(seq)
                stats["events"] += 1

            n = 0
            t0 = time.time()
            try:
                await asyncio.wait_for(s.register(lambda x: x + 1, proc), args.bound)
                await asyncio.wait_for(s.subscribe(on_event, topic), args.bound)
                while not stop.is_set() and not s.left.done() and not s.disconnected.done():
                    n += 1
                    t0 = time.time()
                    if n % 2:
                        r = await asyncio.wait_for(s.call(proc, n), args.bound)
                        if r != n + 1:
                            raise Failure(f"call returned {r!r}, wanted {n + 1}")
                        stats["calls_ok"] += 1
                    else:
                        await asyncio.wait_for(
                            s.publish(topic, n, options=PublishOptions(acknowledge=True, exclude_me=False)), args.bound)
                        acked.add(n)
                        stats["publishes_ok"] += 1
                    now = time.time()
                    stats["max_request_s"] = max(stats["max_request_s"], now - t0)
                    if last_ok is not None and now - last_ok > args.gap:
                        stats["gaps"].append({"client": i, "from": round(last_ok, 3), "to": round(now, 3)})
                    last_ok = now
                    await asyncio.sleep(args.pause)
                    if i not in first_call:
                        first_call.add(i)
                        if len(first_call) == args.clients:
                            ready.set()
            except asyncio.TimeoutError:
                stats["hangs"].append({"client": i, "request": n, "t": round(t0, 3)})
            except Failure:
                raise
            except Exception as e:  # noqa: BLE001 - an errored request is fine, record it
                key = e.error if isinstance(e, ApplicationError) else type(e).__name__
                now = time.time()
                stats["request_errors"].append({"client": i, "error": key, "t": round(now, 3),
                                                "waited": round(now - t0, 3)})
            if stop.is_set():
                # Events of the last acknowledged publications may still be on their way.
                deadline = time.time() + 2.0
                while acked - received and time.time() < deadline and not s.left.done():
                    await asyncio.sleep(0.02)
                stats["events_missing"] += len(acked - received)
                await close(s)
                break
            done, _ = await asyncio.wait([s.left, s.disconnected, s.lost], timeout=args.bound,
                                         return_when=asyncio.FIRST_COMPLETED)
            if not done:
                stats["hangs"].append({"client": i, "request": n, "what": "session did not end after an error"})
            lost_at = time.time()
            # An EVENT is sent before the PUBLISHED that acknowledges it, on
            # the same connection: an acknowledged publication whose event
            # never came is lost.
            stats["events_missing"] += len(acked - received)
            stats["losses"].append({"client": i, "t": round(lost_at, 3), "reason": reason_of(s)})
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
    await asyncio.wait_for(asyncio.gather(*tasks), args.bound + args.connect_timeout + STEP_TIMEOUT)
    stats["max_request_s"] = round(stats["max_request_s"], 3)
    return stats


async def hold(args):
    s = await open_session(args)
    if not s.joined.done():
        raise Failure(f"join refused: {reason_of(s)}")
    await asyncio.wait_for(s.register(lambda *a: "held", args.proc), STEP_TIMEOUT)
    print('{"ready": true}', flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.readline)
    ended = None
    if s.left.done() or s.disconnected.done() or s.lost.done():
        ended = reason_of(s)
    else:
        await close(s)
    return {"ended": ended}


async def call(args):
    s = await open_session(args)
    if not s.joined.done():
        raise Failure(f"join refused: {reason_of(s)}")
    t0 = time.monotonic()
    out = {}
    try:
        out["result"] = await asyncio.wait_for(s.call(args.proc), args.bound)
    except asyncio.TimeoutError:
        out["hang"] = True
    except ApplicationError as e:
        out["error"] = e.error
    out["took_s"] = round(time.monotonic() - t0, 3)
    out["ended_at"] = round(time.time(), 3)
    await close(s)
    return out


async def master(args):
    from master import joined

    P = "crossbarfabriccenter."
    g = await joined(args, args.realm, args.superuser, "superuser")

    async def mcall(proc, *a, **kw):
        return await asyncio.wait_for(g.call(P + proc, *a, **kw), STEP_TIMEOUT)

    out = {}
    if args.op == "create":
        try:
            out["oid"] = (await mcall("mrealm.create_mrealm", {"name": args.name}))["oid"]
        except ApplicationError as e:
            out["error"], out["message"] = e.error, (e.args[0] if e.args else None)
    elif args.op == "fill":
        out["created"] = []
        for k in range(args.count):
            name = f"{args.name}-{k}"
            try:
                await mcall("mrealm.create_mrealm", {"name": name})
            except ApplicationError as e:
                out["error"], out["message"], out["failed_name"] = e.error, (e.args[0] if e.args else None), name
                break
            out["created"].append(name)
        out["names"] = await mcall("mrealm.list_mrealms", return_names=True)
        out["status_type"] = (await mcall("domain.get_status"))["type"]
    elif args.op == "list":
        out["names"] = await mcall("mrealm.list_mrealms", return_names=True)
    else:
        raise Failure(f"unknown op {args.op!r}")
    await close(g)
    return out


P = "crossbarfabriccenter."


async def bounded(aw, bound):
    """Awaits ``aw`` for at most ``bound`` s: (outcome, seconds, value)."""
    t0 = time.monotonic()
    try:
        v = await asyncio.wait_for(aw, bound)
        outcome = "ok"
    except asyncio.TimeoutError:
        v, outcome = None, "timeout"
    except ApplicationError as e:
        v, outcome = None, e.error
    except Exception as e:  # noqa: BLE001 - a transport failure is an outcome too
        v, outcome = None, f"{type(e).__name__}: {e}"[:120]
    return outcome, round(time.monotonic() - t0, 3), v


async def mstate(args):
    from master import joined

    g = await joined(args, args.realm, args.superuser, "superuser")
    m = await joined(args, args.name, args.superuser, "superuser")
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    answered_at = None
    while True:
        nodes = {}
        for oid in await asyncio.wait_for(m.call(P + "mrealm.get_nodes"), STEP_TIMEOUT):
            n = await asyncio.wait_for(m.call(P + "mrealm.get_node", oid), STEP_TIMEOUT)
            nodes[n["authid"]] = {"oid": oid, "status": n["status"]}
        answered_at = answered_at or time.time()
        online = sum(1 for n in nodes.values() if n["status"] == "online")
        if online >= args.count or loop.time() - t0 > args.bound:
            break
        await asyncio.sleep(0.1)
    out = {"nodes": nodes, "online": online, "online_after_s": round(loop.time() - t0, 3),
           "answered_at": round(answered_at, 3), "online_at": round(time.time(), 3),
           "names": await asyncio.wait_for(g.call(P + "mrealm.list_mrealms", return_names=True), STEP_TIMEOUT)}
    await close(m)
    await close(g)
    return out


async def frozen(args):
    from master import joined

    def state(s):
        return {"attached": s.is_attached(), "left": s.left.result().reason if s.left.done() else None,
                "lost": s.lost.done() if hasattr(s, "lost") else None}

    async def new_session():
        s = await joined(args, args.realm, args.superuser, "superuser")
        out = await bounded(s.call(P + "domain.get_status"), args.bound)
        await close(s)
        return out

    g = await joined(args, args.realm, args.superuser, "superuser")
    await asyncio.wait_for(g.call(P + "domain.get_status"), STEP_TIMEOUT)
    print('{"ready": true}', flush=True)
    loop = asyncio.get_running_loop()
    out = {}
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
        if line == "mark":
            m = {}
            m["call"], m["call_took_s"], _ = await bounded(g.call(P + "domain.get_status"), args.bound)
            if m["call"] != "ok" and not g.is_attached():
                m["call"] = "session closed: " + m["call"]
            outcome, took, v = await bounded(new_session(), args.bound)
            m["connect"] = v[0] if outcome == "ok" else outcome
            m["connect_took_s"] = took
            m["session"] = state(g)
            print(json.dumps({"mark": m}), flush=True)
        else:
            break
    t0 = time.monotonic()
    out["after_call_old"], _, _ = await bounded(g.call(P + "domain.get_status"), args.bound)
    outcome, _, v = await bounded(new_session(), args.bound)
    out["after_call_new"] = v[0] if outcome == "ok" else outcome
    out["after_took_s"] = round(time.monotonic() - t0, 3)
    out["session"] = state(g)
    if g.is_attached():
        await close(g)
    return out


SCENARIOS = {"load": load, "hold": hold, "call": call, "master": master, "mstate": mstate, "frozen": frozen}

if __name__ == "__main__":
    if len(sys.argv) < 2 or sys.argv[1] not in SCENARIOS:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    which = sys.argv.pop(1)
    p = base_parser(__doc__)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--bound", type=float, default=10.0)
    p.add_argument("--pause", type=float, default=0.01)
    p.add_argument("--gap", type=float, default=0.3, help="a pause between successful requests worth recording (s)")
    p.add_argument("--ping-interval", type=float, default=0.0)
    p.add_argument("--ping-timeout", type=float, default=0.0)
    p.add_argument("--connect-timeout", type=float, default=3.0)
    p.add_argument("--proc")
    p.add_argument("--superuser")
    p.add_argument("--op")
    p.add_argument("--name")
    p.add_argument("--count", type=int, default=100)
    a = p.parse_args()
    if which in ("load", "hold", "frozen"):
        a.timeout = 600.0
    run(SCENARIOS[which], a)
