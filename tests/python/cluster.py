"""Scenarios for router clusters (tests/cluster.rs): one realm served by
several router workers linked with rlinks; clients attached to different
workers must see one router.

    cluster.py URL REALM SERIALIZER --scenario pubsub --peer URL2 --peer URL3
        Subscribers on every worker (exact, prefix and wildcard), a
        publisher on the first: every event reaches every matching
        subscriber exactly once and in order; subscription ids agree on
        every worker; exclude_me, eligible, exclude_authrole-free
        blacklisting by session id, publisher disclosure and acknowledge
        work across workers; publishing from another worker reaches the
        first.

    cluster.py URL REALM SERIALIZER --scenario rpc --peer URL2 --peer URL3
        Callees on the peers, the caller on the first: plain calls with a
        payload, application errors, progressive results, call timeouts,
        cancel, caller disclosure, round-robin over callees on two workers,
        and prefix/wildcard registrations precedence across workers.

    cluster.py URL REALM SERIALIZER --scenario meta --peer URL2 --peer URL3
        wamp.session.count/list/get agree on every worker and cover all of
        them; killing a session on another worker ends it; a session's
        testament fires when it leaves.

    cluster.py URL REALM SERIALIZER --scenario converge --peer URL2 [--topic T]
        Subscribes on the first worker to T and waits until every peer
        counts the subscriber; prints how long that took (ms).

    cluster.py URL REALM SERIALIZER --scenario hold --topic T
        Subscribes to T and registers T, prints ``{"ready": true}``, and
        holds the session until stdin closes or says ``stop``.

    cluster.py URL REALM SERIALIZER --scenario expect --topic T --count N
            [--within S]
        Waits (at most S seconds) until the worker at URL counts N
        subscribers of T; with N = 1 then calls T, with N = 0 reports the
        call's error.

    cluster.py URL REALM SERIALIZER --scenario load --peer URL2 [--bound S]
        A callee on each peer and callers on the first worker, calling in a
        loop until stdin closes or says ``stop``; every call is bounded by
        S seconds (a longer one counts as a hang). Callees and callers that
        lose their session reconnect. Prints ``{"ready": true}`` once every
        call path worked, then the statistics.
"""

import asyncio
import sys
import time

from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.types import CallOptions, PublishOptions, RegisterOptions, SubscribeOptions
from wampclient import STEP_TIMEOUT, Failure, base_parser, check, close, connect, expect_error, run, unique


async def call(session, proc, *a, **kw):
    return await asyncio.wait_for(session.call(proc, *a, **kw), STEP_TIMEOUT)


async def wait_for(pred, what, timeout=STEP_TIMEOUT):
    """Poll the async predicate until it holds (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        if await pred():
            return
        if time.monotonic() > deadline:
            raise Failure(f"{what}: not within {timeout}s")
        await asyncio.sleep(0.02)


async def wait_subscribers(sessions, topic, n, match="exact"):
    """Every session's worker counts ``n`` subscribers of (match, topic)."""

    async def ok():
        for s in sessions:
            sid = await call(s, "wamp.subscription.lookup", topic, {"match": match})
            if sid is None:
                return False
            if await call(s, "wamp.subscription.count_subscribers", sid) != n:
                return False
        return True

    await wait_for(ok, f"{n} subscribers of {topic} on every worker")


async def wait_callees(sessions, proc, n, match="exact"):
    async def ok():
        for s in sessions:
            rid = await call(s, "wamp.registration.lookup", proc, {"match": match})
            if rid is None:
                return False
            if await call(s, "wamp.registration.count_callees", rid) != n:
                return False
        return True

    await wait_for(ok, f"{n} callees of {proc} on every worker")


class Inbox:
    def __init__(self):
        self.events = []
        self.details = []
        self.arrived = asyncio.Event()

    def __call__(self, *args, **kwargs):
        details = kwargs.pop("details", None)
        self.events.append((list(args), kwargs))
        self.details.append(details)
        self.arrived.set()

    async def wait_count(self, n, what):
        deadline = time.monotonic() + STEP_TIMEOUT
        while len(self.events) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise Failure(f"{what}: {len(self.events)} of {n} events")
            self.arrived.clear()
            try:
                await asyncio.wait_for(self.arrived.wait(), left)
            except asyncio.TimeoutError:
                pass


async def pubsub(args):
    urls = [args.url] + args.peer
    check(len(urls) >= 3, "pubsub needs three workers")
    ser = args.serializer
    out = {}
    base = unique("com.cluster.ps")
    topic, prefix, wild = f"{base}.t", f"{base}.p", f"{base}.w.x"
    pub = await connect(urls[0], args.realm, ser)
    local = await connect(urls[0], args.realm, ser)
    b = await connect(urls[1], args.realm, ser)
    c = await connect(urls[2], args.realm, ser)
    everyone = [pub, local, b, c]
    boxes = {name: Inbox() for name in ["local", "b", "c", "b_prefix", "c_wild"]}
    subs = {}
    subs["local"] = await local.subscribe(boxes["local"], topic, options=SubscribeOptions(details_arg="details"))
    subs["b"] = await b.subscribe(boxes["b"], topic, options=SubscribeOptions(details_arg="details"))
    subs["c"] = await c.subscribe(boxes["c"], topic, options=SubscribeOptions(details_arg="details"))
    subs["b_prefix"] = await b.subscribe(
        boxes["b_prefix"], prefix, options=SubscribeOptions(match="prefix", details_arg="details")
    )
    subs["c_wild"] = await c.subscribe(
        boxes["c_wild"], f"{base}..x", options=SubscribeOptions(match="wildcard", details_arg="details")
    )
    t0 = time.monotonic()
    await wait_subscribers(everyone, topic, 3)
    await wait_subscribers(everyone, prefix, 1, "prefix")
    await wait_subscribers(everyone, f"{base}..x", 1, "wildcard")
    out["converged_ms"] = round((time.monotonic() - t0) * 1000)
    # One subscription id per (policy, topic), the same on every worker.
    ids = {subs[k].id for k in ["local", "b", "c"]}
    out["same_subscription_id"] = len(ids) == 1
    lookups = {await call(s, "wamp.subscription.lookup", topic) for s in everyone}
    out["lookup_agrees"] = lookups == ids

    n = 50
    for i in range(n):
        await asyncio.wait_for(
            pub.publish(topic, i, options=PublishOptions(acknowledge=True)), STEP_TIMEOUT
        )
    for i in range(5):
        await asyncio.wait_for(
            pub.publish(f"{prefix}.sub", i, options=PublishOptions(acknowledge=True)), STEP_TIMEOUT
        )
        await asyncio.wait_for(
            pub.publish(wild, i, options=PublishOptions(acknowledge=True)), STEP_TIMEOUT
        )
    for k in ["local", "b", "c"]:
        await boxes[k].wait_count(n, f"events at {k}")
    await boxes["b_prefix"].wait_count(5, "prefix events")
    await boxes["c_wild"].wait_count(5, "wildcard events")
    await asyncio.sleep(0.3)  # room for any duplicate to show up
    out["in_order_exactly_once"] = {
        k: [e[0][0] for e in boxes[k].events] == list(range(n)) for k in ["local", "b", "c"]
    }
    out["prefix_events"] = [e[0][0] for e in boxes["b_prefix"].events]
    out["prefix_topic"] = boxes["b_prefix"].details[0].topic
    out["wildcard_events"] = [e[0][0] for e in boxes["c_wild"].events]
    out["wildcard_topic"] = boxes["c_wild"].details[0].topic
    out["publisher_not_disclosed"] = boxes["b"].details[0].publisher is None

    for bx in boxes.values():
        bx.events.clear()
        bx.details.clear()
    # Whitelist by session id (a session on another worker), blacklist,
    # exclude_me=False, disclosure.
    await pub.publish(topic, "only-c", options=PublishOptions(acknowledge=True, eligible=[c._session_id]))
    await pub.publish(topic, "not-b", options=PublishOptions(acknowledge=True, exclude=[b._session_id]))
    await pub.publish(topic, "all", options=PublishOptions(acknowledge=True))
    await boxes["c"].wait_count(3, "filtered events at c")
    await boxes["local"].wait_count(2, "filtered events at local")
    await boxes["b"].wait_count(1, "filtered events at b")
    await asyncio.sleep(0.3)
    out["c_got"] = [e[0][0] for e in boxes["c"].events]
    out["b_got"] = [e[0][0] for e in boxes["b"].events]
    out["local_got"] = [e[0][0] for e in boxes["local"].events]
    # Publisher disclosure (the role discloses publishers under
    # com.cluster.disclosed.) on another worker.
    disclosed = unique("com.cluster.disclosed")
    dbox = Inbox()
    await b.subscribe(dbox, disclosed, options=SubscribeOptions(details_arg="details"))
    await wait_subscribers(everyone, disclosed, 1)
    await pub.publish(disclosed, "d", options=PublishOptions(acknowledge=True))
    await dbox.wait_count(1, "disclosed event")
    out["disclosed_publisher_ok"] = dbox.details[0].publisher == pub._session_id

    # A publication from another worker reaches the first; exclude_me=False
    # lets the publisher's own subscription receive it.
    for bx in boxes.values():
        bx.events.clear()
    await c.publish(topic, "from-c", options=PublishOptions(acknowledge=True, exclude_me=False))
    await boxes["local"].wait_count(1, "event from c at local")
    await boxes["b"].wait_count(1, "event from c at b")
    await boxes["c"].wait_count(1, "event from c at c itself")
    out["from_c"] = [boxes[k].events[0][0][0] for k in ["local", "b", "c"]]

    # Unsubscribing on one worker is seen everywhere.
    await subs["b"].unsubscribe()
    await wait_subscribers(everyone, topic, 2)
    out["unsubscribe_converged"] = True
    await close(*everyone)
    return out


async def rpc(args):
    urls = [args.url] + args.peer
    check(len(urls) >= 3, "rpc needs three workers")
    ser = args.serializer
    out = {}
    base = unique("com.cluster.rpc")
    caller = await connect(urls[0], args.realm, ser)
    b = await connect(urls[1], args.realm, ser)
    c = await connect(urls[2], args.realm, ser)
    everyone = [caller, b, c]

    def echo(*a, **kw):
        kw.pop("details", None)
        return {"args": list(a), "kwargs": kw}

    def who(details=None):
        return details.caller

    def fail():
        raise ApplicationError(f"{base}.error.bad", "bad thing", 42, detail="x")

    async def progressive(n, details=None):
        for i in range(n):
            details.progress(i)
            await asyncio.sleep(0.01)
        return "done"

    slow_started = asyncio.Event()
    slow_canceled = []

    async def slow(details=None):
        slow_started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            slow_canceled.append(True)
            raise
        return "late"

    counts = {"b": 0, "c": 0}

    def rr_b():
        counts["b"] += 1
        return "b"

    def rr_c():
        counts["c"] += 1
        return "c"

    await b.register(echo, f"{base}.echo")
    await b.register(who, f"{base}.who", options=RegisterOptions(details_arg="details"))
    disclosed = unique("com.cluster.disclosed")
    await b.register(who, disclosed, options=RegisterOptions(details_arg="details"))
    await b.register(fail, f"{base}.fail")
    await b.register(progressive, f"{base}.prog", options=RegisterOptions(details_arg="details"))
    await c.register(slow, f"{base}.slow", options=RegisterOptions(details_arg="details"))
    await b.register(rr_b, f"{base}.rr", options=RegisterOptions(invoke="roundrobin"))
    await c.register(rr_c, f"{base}.rr", options=RegisterOptions(invoke="roundrobin"))
    await b.register(lambda: "prefix", f"{base}.pat", options=RegisterOptions(match="prefix"))
    await c.register(lambda: "wildcard", f"{base}.pat..x", options=RegisterOptions(match="wildcard"))
    await c.register(lambda: "exact", f"{base}.pat.a.x")
    for p in ["echo", "who", "fail", "prog", "slow"]:
        await wait_callees(everyone, f"{base}.{p}", 1)
    await wait_callees(everyone, disclosed, 1)
    await wait_callees(everyone, f"{base}.rr", 2)
    await wait_callees(everyone, f"{base}.pat", 1, "prefix")
    await wait_callees(everyone, f"{base}.pat..x", 1, "wildcard")
    await wait_callees(everyone, f"{base}.pat.a.x", 1)

    r = await call(caller, f"{base}.echo", 1, "x", b"\x00\xff", {"k": [1, 2]}, 2**53, key="v")
    out["echo_ok"] = r == {"args": [1, "x", b"\x00\xff", {"k": [1, 2]}, 2**53], "kwargs": {"key": "v"}}
    out["who_undisclosed"] = await call(caller, f"{base}.who")
    out["who_disclosed_ok"] = await call(caller, disclosed) == caller._session_id
    try:
        await call(caller, f"{base}.fail")
        out["fail_error"] = "<no error>"
    except ApplicationError as e:
        out["fail_error"] = e.error
        out["fail_args"] = list(e.args)
    progress = []
    r = await call(caller, f"{base}.prog", 5, options=CallOptions(on_progress=lambda i: progress.append(i)))
    out["progress"] = progress
    out["progressive_result"] = r
    # Timeout: the caller's worker cancels the call on the callee's worker.
    out["timeout_error"] = await expect_error(
        caller.call(f"{base}.slow", options=CallOptions(timeout=300)), "call with timeout"
    )
    # Cancel.
    slow_started.clear()
    fut = asyncio.ensure_future(caller.call(f"{base}.slow"))
    await asyncio.wait_for(slow_started.wait(), STEP_TIMEOUT)
    fut.cancel()
    try:
        await asyncio.wait_for(fut, STEP_TIMEOUT)
        out["cancel_error"] = "<no error>"
    except asyncio.CancelledError:
        out["cancel_error"] = "cancelled"
    except ApplicationError as e:
        out["cancel_error"] = e.error
    await wait_for(lambda: _true(len(slow_canceled) >= 2), "callee saw both interrupts")
    out["callee_interrupted"] = len(slow_canceled)
    # Round robin over callees on two workers.
    seq = [await call(caller, f"{base}.rr") for _ in range(6)]
    out["roundrobin"] = seq
    out["roundrobin_counts"] = counts
    # Pattern precedence across workers: exact > prefix (longest) > wildcard.
    out["pattern_exact"] = await call(caller, f"{base}.pat.a.x")
    out["pattern_prefix"] = await call(caller, f"{base}.pat.b.y")
    out["pattern_wildcard_vs_prefix"] = await call(caller, f"{base}.pat.q.x")
    out["missing_error"] = await expect_error(caller.call(f"{base}.nothing"), "missing")
    # The callee leaves: the procedure disappears everywhere.
    await close(b)
    await wait_for(
        lambda: _lookup_none(caller, f"{base}.echo"), "echo unregistered on the caller's worker"
    )
    out["after_leave_error"] = await expect_error(caller.call(f"{base}.echo"), "after leave")
    await close(caller, c)
    return out


async def _true(v):
    return v


async def _lookup_none(s, proc):
    return await call(s, "wamp.registration.lookup", proc) is None


async def meta(args):
    urls = [args.url] + args.peer
    ser = args.serializer
    out = {}
    sessions = [await connect(u, args.realm, ser) for u in urls]
    extra = await connect(urls[-1], args.realm, ser)
    ids = {s._session_id for s in sessions + [extra]}

    async def all_listed():
        for s in sessions:
            listed = set(await call(s, "wamp.session.list"))
            if not ids <= listed:
                return False
        return True

    await wait_for(all_listed, "every session listed on every worker")
    counts = [await call(s, "wamp.session.count") for s in sessions]
    lists = [set(await call(s, "wamp.session.list")) for s in sessions]
    out["counts_agree"] = len(set(counts)) == 1
    out["count_covers"] = counts[0] >= len(ids)
    out["lists_agree"] = all(l == lists[0] for l in lists)
    got = await call(sessions[0], "wamp.session.get", extra._session_id)
    out["get_remote_session"] = got.get("session") == extra._session_id
    out["get_remote_authrole"] = got.get("authrole")
    # A testament set on the last worker fires there when the session dies;
    # a subscriber on the first worker receives it.
    topic = unique("com.cluster.testament")
    inbox = Inbox()
    await sessions[0].subscribe(inbox, topic)
    await wait_subscribers(sessions, topic, 1)
    await call(extra, "wamp.session.add_testament", topic, ["bye"], {})
    # Kill the extra session (on the last worker) from the first.
    killed = await call(sessions[0], "wamp.session.kill", extra._session_id, reason="com.cluster.kicked")
    out["kill_result"] = killed
    await asyncio.wait_for(extra.left, STEP_TIMEOUT)
    out["killed_reason"] = extra.left.result().reason
    await inbox.wait_count(1, "testament")
    out["testament"] = inbox.events[0][0]

    async def gone():
        for s in sessions:
            if extra._session_id in set(await call(s, "wamp.session.list")):
                return False
        return True

    await wait_for(gone, "killed session gone everywhere")
    out["gone_everywhere"] = True
    await close(*sessions)
    return out


async def converge(args):
    urls = [args.url] + args.peer
    topic = args.topic or unique("com.cluster.conv")
    first = await connect(urls[0], args.realm, args.serializer)
    others = [await connect(u, args.realm, args.serializer) for u in args.peer]
    t0 = time.monotonic()
    await first.subscribe(lambda *a: None, topic)
    await wait_subscribers(others, topic, 1)
    ms = (time.monotonic() - t0) * 1000
    await close(first, *others)
    return {"converged_ms": round(ms, 1)}


async def load(args):
    """Callers on the first worker, callees on the peers (see module doc)."""
    ser = args.serializer
    proc = unique("com.cluster.load")
    stats = {"calls": 0, "ok": 0, "errors": {}, "hangs": 0, "reconnects": 0, "register_errors": {}, "served": {u: 0 for u in args.peer}}
    stop = asyncio.Event()

    # The callees' connection attempts (seconds since the start), bounded:
    # shown by a failed assertion.
    trace = stats.setdefault("trace", [])
    t0 = time.monotonic()

    def note(*what):
        if len(trace) < 40:
            trace.append([round(time.monotonic() - t0, 3), *what])

    async def callee_loop(url):
        while not stop.is_set():
            try:
                note("connect", url)
                s = await connect(url, args.realm, ser)
                note("connected", url)
            except Exception as e:  # noqa: BLE001 - the worker may be down
                note("connect failed", url, type(e).__name__)
                await asyncio.sleep(0.2)
                continue

            def serve(i):
                stats["served"][url] += 1
                return i

            try:
                await s.register(serve, proc, options=RegisterOptions(invoke="roundrobin"))
            except Exception as e:  # noqa: BLE001
                key = "register: " + getattr(e, "error", type(e).__name__)
                stats["register_errors"][key] = stats["register_errors"].get(key, 0) + 1
                await close(s)
                continue
            done, _ = await asyncio.wait(
                [asyncio.ensure_future(stop.wait()), s.disconnected], return_when=asyncio.FIRST_COMPLETED
            )
            if not stop.is_set():
                stats["reconnects"] += 1
            await close(s)

    async def caller_loop():
        i = 0
        while not stop.is_set():
            try:
                s = await connect(args.url, args.realm, ser)
            except Exception:  # noqa: BLE001
                await asyncio.sleep(0.2)
                continue
            while not stop.is_set() and s.is_attached():
                i += 1
                stats["calls"] += 1
                try:
                    r = await asyncio.wait_for(s.call(proc, i), args.bound)
                    if r == i:
                        stats["ok"] += 1
                    else:
                        stats["errors"]["wrong result"] = stats["errors"].get("wrong result", 0) + 1
                except asyncio.TimeoutError:
                    stats["hangs"] += 1
                except ApplicationError as e:
                    stats["errors"][e.error] = stats["errors"].get(e.error, 0) + 1
                    await asyncio.sleep(0.01)
                except Exception as e:  # noqa: BLE001 - lost session
                    key = type(e).__name__
                    stats["errors"][key] = stats["errors"].get(key, 0) + 1
                    break
            await close(s)

    tasks = [asyncio.ensure_future(callee_loop(u)) for u in args.peer]
    tasks += [asyncio.ensure_future(caller_loop()) for _ in range(2)]
    await wait_for(lambda: _true(stats["ok"] > 10), "first calls", timeout=30)
    print('{"ready": true}', flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line or line.strip() == b"stop":
            break
        if line.strip() == b"mark":
            print(json_line({"mark": {"ok": stats["ok"], "served": dict(stats["served"])}}), flush=True)
    # What each worker's dealer holds for the procedure (a diagnostic for
    # a failed assertion): the number of callees of its registration.
    stats["callees"] = {}
    for url in [args.url, *args.peer]:
        try:
            s = await connect(url, args.realm, ser)
            rid = await s.call("wamp.registration.match", proc)
            stats["callees"][url] = len(await s.call("wamp.registration.list_callees", rid)) if rid else 0
            await close(s)
        except Exception as e:  # noqa: BLE001
            stats["callees"][url] = type(e).__name__
    stop.set()
    await asyncio.wait(tasks, timeout=STEP_TIMEOUT)
    return stats


def json_line(d):
    import json

    return json.dumps(d)


async def hold(args):
    """Subscribe to --topic and register --topic as a procedure, print
    ready, hold until stdin closes."""
    s = await connect(args.url, args.realm, args.serializer)
    await s.subscribe(lambda *a: None, args.topic)
    await s.register(lambda: "held", args.topic)
    print('{"ready": true}', flush=True)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line or line.strip() == b"stop":
            break
    attached = s.is_attached()
    await close(s)
    return {"still_attached": attached}


async def expect(args):
    """Wait until the worker at URL counts --count subscribers of --topic
    (0: no subscription) and, with --count 1, a call of --topic works;
    report how long it took."""
    s = await connect(args.url, args.realm, args.serializer)
    t0 = time.monotonic()

    async def ok():
        sid = await call(s, "wamp.subscription.lookup", args.topic)
        n = 0 if sid is None else await call(s, "wamp.subscription.count_subscribers", sid)
        return n == args.count

    await wait_for(ok, f"{args.count} subscribers of {args.topic}", timeout=args.within)
    out = {"after_ms": round((time.monotonic() - t0) * 1000)}
    if args.count == 1:
        out["call"] = await call(s, args.topic)
    else:
        out["call_error"] = await expect_error(s.call(args.topic), "call without callee")
    await close(s)
    return out


SCENARIOS = {"hold": hold, "expect": expect, "pubsub": pubsub, "rpc": rpc, "meta": meta, "converge": converge, "load": load}


if __name__ == "__main__":
    p = base_parser(__doc__)
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--peer", action="append", default=[])
    p.add_argument("--topic")
    p.add_argument("--bound", type=float, default=5.0)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--within", type=float, default=STEP_TIMEOUT)
    a = p.parse_args()
    if a.scenario in ("load", "hold"):
        a.timeout = 600.0
    run(SCENARIOS[a.scenario], a)
