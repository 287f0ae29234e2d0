"""Advanced Profile features, one case per feature (``--case NAME``; see
CASES at the end). ``basic`` (the default) checks pattern-based
subscriptions and shared registrations, for every serializer:
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

The other cases cover progressive call results and invocations, call
canceling modes, call timeouts, caller/publisher disclosure, pattern,
shared and sharded registrations, black/whitelisting, retention and event
history. Options Autobahn 26 cannot express (disclose_me, rkey, progress
on CALL; CANCEL modes; invoke "sharded") are sent through Autobahn's own
message classes with extra options (json/msgpack/cbor only).
"""

import asyncio
import time
from urllib.parse import urlparse

import txaio
from autobahn.asyncio.rawsocket import WampRawSocketClientFactory
from autobahn.asyncio.websocket import WampWebSocketClientFactory
from autobahn.wamp import message, role, types
from autobahn.wamp.exception import ApplicationError
from autobahn.wamp.request import CallRequest
from autobahn.wamp.types import CallOptions, PublishOptions, RegisterOptions, SubscribeOptions

from wampclient import (
    SERIALIZERS,
    STEP_TIMEOUT,
    Client,
    Failure,
    base_parser,
    check,
    close,
    connect,
    expect_error,
    run,
    unique,
)


async def basic(args):
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


# ------------------------------------------------------------------ helpers
#
# Shared with meta.py and dynauth.py (imported from there).


class AsClient(Client):
    """A Client that joins with a chosen authid / authmethods (and answers a
    ticket challenge)."""

    def __init__(self, config, authid=None, authmethods=None, ticket=None):
        super().__init__(config)
        self._as_authid = authid
        self._as_authmethods = authmethods
        self._as_ticket = ticket

    def onConnect(self):
        self.join(self.config.realm, authmethods=self._as_authmethods, authid=self._as_authid)

    def onChallenge(self, challenge):
        if challenge.method == "ticket" and self._as_ticket is not None:
            return self._as_ticket
        raise Exception(f"unexpected challenge {challenge.method}")


async def open_as(url, realm, serializer, authid=None, authmethods=None, ticket=None):
    """Like wampclient.open_session, with an authid / authmethods / ticket."""
    loop = asyncio.get_running_loop()
    ser = SERIALIZERS[serializer]()
    session = AsClient(types.ComponentConfig(realm=realm), authid, authmethods, ticket)
    p = urlparse(url)
    if url.startswith("ws://"):
        factory = WampWebSocketClientFactory(lambda: session, url=url, serializers=[ser])
        conn = loop.create_connection(factory, p.hostname, p.port)
    elif url.startswith("rs://"):
        factory = WampRawSocketClientFactory(lambda: session, serializer=ser)
        conn = loop.create_connection(factory, p.hostname, p.port)
    else:
        raise Failure(f"unsupported URL {url!r}")
    await asyncio.wait_for(conn, STEP_TIMEOUT)
    done, _ = await asyncio.wait(
        [session.joined, session.left, session.disconnected],
        timeout=STEP_TIMEOUT,
        return_when=asyncio.FIRST_COMPLETED,
    )
    check(done, f"no WELCOME/ABORT from {url} within {STEP_TIMEOUT}s")
    return session


async def connect_as(url, realm, serializer, authid=None, authmethods=None, ticket=None):
    s = await open_as(url, realm, serializer, authid, authmethods, ticket)
    if not s.joined.done():
        reason = s.left.result().reason if s.left.done() else "connection lost"
        raise Failure(f"join {realm!r} as {authid!r} failed: {reason}")
    return s


class XCall(message.Call):
    """A CALL with extra options Autobahn's CallOptions cannot express
    (disclose_me, rkey, progress). Works with json/msgpack/cbor (marshal);
    flatbuffers builds messages from fixed fields."""

    def __init__(self, *a, extra=None, **kw):
        super().__init__(*a, **kw)
        self.extra = extra or {}

    def marshal_options(self):
        o = super().marshal_options()
        o.update(self.extra)
        return o


def raw_call(session, procedure, args=(), extra=None, options=None, request_id=None):
    """Send CALL with extra options; return (request_id, future of the result)."""
    rid = request_id if request_id is not None else session._request_id_gen.next()
    attrs = options.message_attr() if options else {}
    msg = XCall(rid, procedure, args=list(args), extra=extra, **attrs)
    fut = txaio.create_future()
    session._call_reqs[rid] = CallRequest(rid, procedure, fut, options)
    session._transport.send(msg)
    return rid, fut


async def call_error(fut, what):
    """The error URI a call future fails with ("<no error>" on success)."""
    try:
        await asyncio.wait_for(fut, STEP_TIMEOUT)
    except ApplicationError as e:
        return e.error
    except asyncio.TimeoutError:
        raise Failure(f"{what}: no answer within {STEP_TIMEOUT}s")
    return "<no error>"


async def wait(fut, what, timeout=STEP_TIMEOUT):
    try:
        return await asyncio.wait_for(asyncio.shield(fut) if asyncio.isfuture(fut) else fut, timeout)
    except asyncio.TimeoutError:
        raise Failure(f"{what}: nothing within {timeout}s")


def publish_extra(session, topic, *args, extra=None, options=None):
    """PUBLISH with extra options Autobahn 26 dropped (disclose_me): the
    message is serialized synchronously inside publish(), so its
    marshal_options is wrapped just for that call (json/msgpack/cbor)."""
    orig = message.Publish.marshal_options

    def patched(self):
        o = orig(self)
        o.update(extra or {})
        return o

    message.Publish.marshal_options = patched
    try:
        return session.publish(topic, *args, options=options)
    finally:
        message.Publish.marshal_options = orig


def register_sharded(session, endpoint, procedure):
    """REGISTER with invoke="sharded" (Autobahn only knows the spec's five
    policies: its asserts are satisfied by swapping one constant for the
    duration of the synchronous message construction)."""
    opts = RegisterOptions(invoke="roundrobin")
    opts.invoke = "sharded"
    old = message.Register.INVOKE_RANDOM
    message.Register.INVOKE_RANDOM = "sharded"
    try:
        return session.register(endpoint, procedure, options=opts)
    finally:
        message.Register.INVOKE_RANDOM = old


class StuckCallee:
    """A procedure that blocks until released, recording an INTERRUPT."""

    def __init__(self, on_interrupt_error=None):
        loop = asyncio.get_running_loop()
        self.started = loop.create_future()
        self.interrupted = loop.create_future()
        self.release = asyncio.Event()
        self.on_interrupt_error = on_interrupt_error

    async def __call__(self):
        if not self.started.done():
            self.started.set_result(True)
        try:
            await asyncio.wait_for(self.release.wait(), 30)
        except asyncio.CancelledError:
            if not self.interrupted.done():
                self.interrupted.set_result(True)
            if self.on_interrupt_error:
                raise ApplicationError(self.on_interrupt_error, "interrupted")
            raise
        return "finished"


async def barrier(session):
    """One round trip on ``session`` (all earlier messages to it arrived)."""
    await asyncio.wait_for(session.call("wamp.session.count"), STEP_TIMEOUT)


# ------------------------------------------------------------------ RPC cases


async def progressive_results(args):
    """YIELD progress=true reaches an on_progress caller as interim results;
    a caller that did not ask gets only the final result."""
    s1 = await connect(args.url, args.realm, args.serializer)
    s2 = await connect(args.url, args.realm, args.serializer)
    proc = unique("com.example.prog")
    seen_receive = []

    async def stream(n, details=None):
        seen_receive.append(details.progress is not None)
        for i in range(n):
            if details.progress:
                details.progress(i, tag=f"p{i}")
        return "done"

    await asyncio.wait_for(s2.register(stream, proc, options=RegisterOptions(details_arg="details")), STEP_TIMEOUT)
    got = []
    res = await asyncio.wait_for(
        s1.call(proc, 3, options=CallOptions(on_progress=lambda i, tag=None: got.append([i, tag]))), STEP_TIMEOUT
    )
    check(res == "done", f"final result {res!r}")
    check(got == [[0, "p0"], [1, "p1"], [2, "p2"]], f"progress {got!r}")
    res2 = await asyncio.wait_for(s1.call(proc, 2), STEP_TIMEOUT)
    check(res2 == "done", f"plain call result {res2!r}")
    check(seen_receive == [True, False], f"callee saw receive_progress {seen_receive}")
    await close(s1, s2)
    return {"progress": got}


async def progressive_invocations(args):
    """Autobahn 26 cannot send progressive CALLs (message.Call has no
    `progress`, its caller role does not announce
    progressive_call_invocations). Announce the feature on the caller and
    send CALL {progress: true} raw: the callee (stock Autobahn, which does
    not announce the feature) must not get it — the caller gets
    wamp.error.feature_not_supported."""
    role.DEFAULT_CLIENT_ROLES["caller"].progressive_call_invocations = True
    s1 = await connect(args.url, args.realm, args.serializer)
    s2 = await connect(args.url, args.realm, args.serializer)
    proc = unique("com.example.pci")
    invoked = []
    await asyncio.wait_for(s2.register(lambda *a: invoked.append(a), proc), STEP_TIMEOUT)
    _, fut = raw_call(s1, proc, ["chunk1"], extra={"progress": True})
    err = await call_error(fut, "progressive CALL")
    await barrier(s2)
    check(invoked == [], f"callee without the feature was invoked: {invoked}")
    check(s1.is_attached(), "caller was detached")
    await close(s1, s2)
    return {"error": err}


async def cancel(args):
    """CANCEL in each mode against a stuck callee (stock Autobahn callee,
    which announces call_canceling and turns INTERRUPT into a cancelled
    task)."""
    s1 = await connect(args.url, args.realm, args.serializer)
    s2 = await connect(args.url, args.realm, args.serializer)
    out = {}

    # Autobahn's own way: future.cancel() sends CANCEL without a mode (the
    # router's default, killnowait): the callee is interrupted.
    c = StuckCallee()
    proc = unique("com.example.cancel.native")
    await asyncio.wait_for(s2.register(c, proc), STEP_TIMEOUT)
    f = s1.call(proc)
    await wait(c.started, "native: invocation")
    f.cancel()
    await wait(c.interrupted, "native cancel: INTERRUPT to callee")
    out["native_interrupted"] = True
    check(f.cancelled(), "caller future not cancelled")

    # skip: caller gets canceled at once, callee never told.
    c = StuckCallee()
    proc = unique("com.example.cancel.skip")
    await asyncio.wait_for(s2.register(c, proc), STEP_TIMEOUT)
    rid, fut = raw_call(s1, proc)
    await wait(c.started, "skip: invocation")
    s1._transport.send(message.Cancel(rid, mode="skip"))
    out["skip"] = await call_error(fut, "skip")
    await barrier(s2)
    await asyncio.sleep(0.2)
    out["skip_interrupted"] = c.interrupted.done()
    c.release.set()

    # kill: callee interrupted, its reply (here an application error) ends
    # the call.
    c = StuckCallee(on_interrupt_error="com.example.killed")
    proc = unique("com.example.cancel.kill")
    await asyncio.wait_for(s2.register(c, proc), STEP_TIMEOUT)
    rid, fut = raw_call(s1, proc)
    await wait(c.started, "kill: invocation")
    s1._transport.send(message.Cancel(rid, mode="kill"))
    out["kill"] = await call_error(fut, "kill")
    out["kill_interrupted"] = c.interrupted.done()

    # killnowait: canceled at once, callee interrupted, its reply dropped.
    c = StuckCallee(on_interrupt_error="com.example.killed")
    proc = unique("com.example.cancel.killnowait")
    await asyncio.wait_for(s2.register(c, proc), STEP_TIMEOUT)
    rid, fut = raw_call(s1, proc)
    await wait(c.started, "killnowait: invocation")
    s1._transport.send(message.Cancel(rid, mode="killnowait"))
    out["killnowait"] = await call_error(fut, "killnowait")
    await wait(c.interrupted, "killnowait: INTERRUPT to callee")
    out["killnowait_interrupted"] = True
    await barrier(s1)
    check(s1.is_attached() and s2.is_attached(), "a session was detached")
    await close(s1, s2)
    return out


async def call_timeout(args):
    """CALL.Options.timeout (ms; Autobahn passes CallOptions.timeout as is,
    it must be an int) with a stuck callee: wamp.error.timeout, callee
    interrupted."""
    s1 = await connect(args.url, args.realm, args.serializer)
    s2 = await connect(args.url, args.realm, args.serializer)
    c = StuckCallee()
    proc = unique("com.example.timeout")
    await asyncio.wait_for(s2.register(c, proc), STEP_TIMEOUT)
    t0 = time.monotonic()
    err = await expect_error(s1.call(proc, options=CallOptions(timeout=300)), "timed call")
    elapsed = time.monotonic() - t0
    await wait(c.interrupted, "timeout: INTERRUPT to callee")
    # A call with a generous timeout that is answered in time succeeds.
    c.release.set()
    ok = await asyncio.wait_for(s1.call(proc, options=CallOptions(timeout=5000)), STEP_TIMEOUT)
    await close(s1, s2)
    return {"error": err, "elapsed": elapsed, "interrupted": True, "in_time": ok}


async def caller_disclose(args):
    """disclose_me: true (sent raw: Autobahn's CallOptions has no
    disclose_me) discloses caller, caller_authid, caller_authrole."""
    s1 = await connect_as(args.url, args.realm, args.serializer, authid="carol")
    s2 = await connect(args.url, args.realm, args.serializer)
    proc = unique("com.example.disclose")
    seen = []

    def h(details=None):
        seen.append([details.caller, details.caller_authid, details.caller_authrole])

    await asyncio.wait_for(s2.register(h, proc, options=RegisterOptions(details_arg="details")), STEP_TIMEOUT)
    _, fut = raw_call(s1, proc, extra={"disclose_me": True})
    await asyncio.wait_for(fut, STEP_TIMEOUT)
    await asyncio.wait_for(s1.call(proc), STEP_TIMEOUT)
    check(seen[0] == [s1.session_id, "carol", "anonymous"], f"disclosed {seen[0]} (caller {s1.session_id})")
    check(seen[1] == [None, None, None], f"undisclosed call showed {seen[1]}")
    await close(s1, s2)
    return {"seen": seen}


async def pattern_registrations(args):
    """Prefix and wildcard registrations, with details.procedure; exact wins
    over prefix; unmatched is no_such_procedure."""
    s1 = await connect(args.url, args.realm, args.serializer)
    s2 = await connect(args.url, args.realm, args.serializer)
    base = unique("com.example.preg")

    def make(tag):
        def h(details=None):
            return [tag, details.procedure]

        return h

    ro = lambda m: RegisterOptions(match=m, details_arg="details")  # noqa: E731
    await asyncio.wait_for(s2.register(make("prefix"), f"{base}.p", options=ro("prefix")), STEP_TIMEOUT)
    await asyncio.wait_for(s2.register(make("wild"), f"{base}.w..end", options=ro("wildcard")), STEP_TIMEOUT)
    await asyncio.wait_for(s2.register(make("exact"), f"{base}.p.exact", options=ro("exact")), STEP_TIMEOUT)
    got = {}
    for name, uri in [
        ("prefix", f"{base}.p.a.b"),
        ("prefix_string", f"{base}.pq"),
        ("wild", f"{base}.w.x.end"),
        ("exact", f"{base}.p.exact"),
    ]:
        got[name] = await asyncio.wait_for(s1.call(uri), STEP_TIMEOUT)
    check(got["prefix"] == ["prefix", f"{base}.p.a.b"], f"prefix {got['prefix']}")
    check(got["prefix_string"] == ["prefix", f"{base}.pq"], f"prefix (string) {got['prefix_string']}")
    check(got["wild"] == ["wild", f"{base}.w.x.end"], f"wildcard {got['wild']}")
    # Exact registrations carry no `procedure` (Autobahn fills None).
    check(got["exact"][0] == "exact", f"exact {got['exact']}")
    got["unmatched"] = await expect_error(s1.call(f"{base}.w.x.y.end"), "unmatched")
    await close(s1, s2)
    return got


async def shared_policies(args):
    """invoke first / last / random across two callees."""
    s0 = await connect(args.url, args.realm, args.serializer)
    s1 = await connect(args.url, args.realm, args.serializer)
    s2 = await connect(args.url, args.realm, args.serializer)
    out = {}
    for policy, n in [("first", 4), ("last", 4), ("random", 40)]:
        proc = unique(f"com.example.shared.{policy}")
        ro = RegisterOptions(invoke=policy)
        await asyncio.wait_for(s1.register(lambda: "s1", proc, options=ro), STEP_TIMEOUT)
        await asyncio.wait_for(s2.register(lambda: "s2", proc, options=ro), STEP_TIMEOUT)
        counts = {"s1": 0, "s2": 0}
        for _ in range(n):
            counts[await asyncio.wait_for(s0.call(proc), STEP_TIMEOUT)] += 1
        out[policy] = counts
    await close(s0, s1, s2)
    return out


async def sharded(args):
    """invoke "sharded" with CALL.Options.rkey (sent raw; Autobahn has
    neither the policy nor the option): the same key always reaches the
    same callee; no rkey is wamp.error.invalid_argument."""
    caller = await connect(args.url, args.realm, args.serializer)
    callees = [await connect(args.url, args.realm, args.serializer) for _ in range(3)]
    proc = unique("com.example.sharded")
    for i, s in enumerate(callees):
        await asyncio.wait_for(register_sharded(s, (lambda i=i: i), proc), STEP_TIMEOUT)
    first, second = {}, {}
    for rnd in (first, second):
        for k in range(24):
            _, fut = raw_call(caller, proc, extra={"rkey": f"key-{k}"})
            rnd[k] = await asyncio.wait_for(fut, STEP_TIMEOUT)
    _, fut = raw_call(caller, proc, extra={"rkey": 12345})
    int_a = await asyncio.wait_for(fut, STEP_TIMEOUT)
    _, fut = raw_call(caller, proc, extra={"rkey": 12345})
    int_b = await asyncio.wait_for(fut, STEP_TIMEOUT)
    no_key = await expect_error(caller.call(proc), "sharded call without rkey")
    mixed = await expect_error(
        callees[0].register(lambda: None, proc, options=RegisterOptions(invoke="roundrobin")), "mixed policy"
    )
    await close(caller, *callees)
    return {
        "stable": first == second and int_a == int_b,
        "callees_used": len(set(first.values())),
        "no_rkey": no_key,
        "mixed_policy": mixed,
    }


# ------------------------------------------------------------------ pub/sub cases


async def publisher_disclose(args):
    """disclose_me: true on PUBLISH (sent raw: Autobahn 26's PublishOptions
    has no disclose_me) discloses publisher, authid, authrole."""
    sub = await connect(args.url, args.realm, args.serializer)
    pub = await connect_as(args.url, args.realm, args.serializer, authid="paula")
    topic = unique("com.example.pubdisc")
    q = asyncio.Queue()
    await asyncio.wait_for(
        sub.subscribe(
            lambda m, details=None: q.put_nowait(
                [m, details.publisher, details.publisher_authid, details.publisher_authrole]
            ),
            topic,
            options=SubscribeOptions(details_arg="details"),
        ),
        STEP_TIMEOUT,
    )
    await asyncio.wait_for(
        publish_extra(pub, topic, "d", extra={"disclose_me": True}, options=PublishOptions(acknowledge=True)),
        STEP_TIMEOUT,
    )
    await asyncio.wait_for(pub.publish(topic, "n", options=PublishOptions(acknowledge=True)), STEP_TIMEOUT)
    a = await asyncio.wait_for(q.get(), STEP_TIMEOUT)
    b = await asyncio.wait_for(q.get(), STEP_TIMEOUT)
    check(a == ["d", pub.session_id, "paula", "anonymous"], f"disclosed event {a} (publisher {pub.session_id})")
    check(b == ["n", None, None, None], f"undisclosed event {b}")
    await close(sub, pub)
    return {"disclosed": a}


async def black_white(args):
    """exclude/eligible by session id, authid and authrole. alice and bob
    have role anonymous, gary role guest (--guest-url)."""
    alice = await connect_as(args.url, args.realm, args.serializer, authid="alice")
    bob = await connect_as(args.url, args.realm, args.serializer, authid="bob")
    gary = await connect_as(args.guest_url, args.realm, args.serializer, authid="gary")
    pub = await connect(args.url, args.realm, args.serializer)
    check(gary.joined.result().authrole == "guest", f"gary's role {gary.joined.result().authrole}")
    topic = unique("com.example.bw")
    got = {"alice": [], "bob": [], "gary": []}
    ends = {}
    for name, s in [("alice", alice), ("bob", bob), ("gary", gary)]:
        ends[name] = asyncio.get_running_loop().create_future()

        def h(m, name=name):
            if m == "end":
                ends[name].set_result(True)
            else:
                got[name].append(m)

        await asyncio.wait_for(s.subscribe(h, topic), STEP_TIMEOUT)
    cases = [
        ("exclude", dict(exclude=[alice.session_id])),
        ("eligible", dict(eligible=[alice.session_id])),
        ("exclude_authid", dict(exclude_authid=["bob"])),
        ("eligible_authid", dict(eligible_authid=["bob"])),
        ("exclude_authrole", dict(exclude_authrole=["guest"])),
        ("eligible_authrole", dict(eligible_authrole=["guest"])),
        ("eligible_and_exclude", dict(eligible=[alice.session_id, bob.session_id], exclude_authid=["alice"])),
    ]
    for marker, opts in cases:
        await asyncio.wait_for(pub.publish(topic, marker, options=PublishOptions(acknowledge=True, **opts)), STEP_TIMEOUT)
    await asyncio.wait_for(pub.publish(topic, "end", options=PublishOptions(acknowledge=True)), STEP_TIMEOUT)
    for name in ends:
        await wait(ends[name], f"{name}: end marker")
    await close(alice, bob, gary, pub)
    return {"got": got}


async def retention(args):
    """retain=True keeps the latest event; a late get_retained subscriber
    gets it (details.retained), a plain one does not."""
    pub = await connect(args.url, args.realm, args.serializer)
    topic = unique("com.example.retain")
    for m in ["first", "second"]:
        await asyncio.wait_for(pub.publish(topic, m, options=PublishOptions(retain=True, acknowledge=True)), STEP_TIMEOUT)
    await asyncio.wait_for(pub.publish(topic, "unretained", options=PublishOptions(acknowledge=True)), STEP_TIMEOUT)
    late = await connect(args.url, args.realm, args.serializer)
    plain = await connect(args.url, args.realm, args.serializer)
    lq, pq = asyncio.Queue(), asyncio.Queue()
    await asyncio.wait_for(
        late.subscribe(
            lambda m, details=None: lq.put_nowait([m, details.retained]),
            topic,
            options=SubscribeOptions(get_retained=True, details_arg="details"),
        ),
        STEP_TIMEOUT,
    )
    await asyncio.wait_for(
        plain.subscribe(lambda m, details=None: pq.put_nowait([m, details.retained]), topic,
                        options=SubscribeOptions(details_arg="details")),
        STEP_TIMEOUT,
    )
    await asyncio.wait_for(pub.publish(topic, "live", options=PublishOptions(acknowledge=True)), STEP_TIMEOUT)
    late_got = [await asyncio.wait_for(lq.get(), STEP_TIMEOUT) for _ in range(2)]
    plain_got = [await asyncio.wait_for(pq.get(), STEP_TIMEOUT)]
    await barrier(late)
    await barrier(plain)
    check(lq.empty() and pq.empty(), "extra events")
    await close(pub, late, plain)
    return {"late": late_got, "plain": plain_got}


async def history(args):
    """Realm store event-history (limit 5 on --history-topic): publish 7,
    wamp.subscription.get_events(sub, 10) returns the latest 5, newest
    first."""
    pub = await connect(args.url, args.realm, args.serializer)
    topic = args.history_topic
    tag = unique("h")
    for i in range(7):
        await asyncio.wait_for(pub.publish(topic, tag, i, options=PublishOptions(acknowledge=True)), STEP_TIMEOUT)
    sub = await asyncio.wait_for(pub.subscribe(lambda *a: None, topic), STEP_TIMEOUT)
    looked = await asyncio.wait_for(pub.call("wamp.subscription.lookup", topic), STEP_TIMEOUT)
    events = await asyncio.wait_for(pub.call("wamp.subscription.get_events", sub.id, 10), STEP_TIMEOUT)
    got = [e.get("args") for e in events]
    nohist = await asyncio.wait_for(pub.subscribe(lambda *a: None, unique("com.example.nohist")), STEP_TIMEOUT)
    unavailable = await expect_error(pub.call("wamp.subscription.get_events", nohist.id, 10), "no history")
    await close(pub)
    return {"args": got, "same_sub": looked == sub.id, "topics": [e.get("topic") for e in events],
            "tag": tag, "unavailable": unavailable}


async def remove_callee(args):
    """wamp.registration.remove_callee: another session removes a callee;
    then a CALL is no_such_procedure. Autobahn announces
    registration_revocation but only logs a router-sent UNREGISTERED, so the
    callee's incoming messages are observed directly."""
    callee = await connect(args.url, args.realm, args.serializer)
    admin = await connect(args.url, args.realm, args.serializer)
    proc = unique("com.example.revoked")
    revoked = []
    on_message = callee.onMessage

    def spy(msg):
        if isinstance(msg, message.Unregistered) and msg.request == 0:
            revoked.append([msg.registration, msg.reason])
        return on_message(msg)

    callee.onMessage = spy
    reg = await asyncio.wait_for(callee.register(lambda: "served", proc), STEP_TIMEOUT)
    before = await asyncio.wait_for(admin.call(proc), STEP_TIMEOUT)
    check(before == "served", f"before removal: {before!r}")
    removed = await asyncio.wait_for(
        admin.call("wamp.registration.remove_callee", reg.id, callee.session_id, "com.example.maintenance"),
        STEP_TIMEOUT,
    )
    after = await expect_error(admin.call(proc), "call after removal")
    again = await expect_error(
        admin.call("wamp.registration.remove_callee", reg.id, callee.session_id), "second removal"
    )
    await barrier(callee)
    await close(callee, admin)
    return {"removed": removed, "after": after, "again": again, "revoked": revoked, "registration": reg.id}


CASES = {
    "basic": basic,
    "progressive_results": progressive_results,
    "progressive_invocations": progressive_invocations,
    "cancel": cancel,
    "call_timeout": call_timeout,
    "caller_disclose": caller_disclose,
    "pattern_registrations": pattern_registrations,
    "shared_policies": shared_policies,
    "sharded": sharded,
    "publisher_disclose": publisher_disclose,
    "black_white": black_white,
    "retention": retention,
    "history": history,
    "remove_callee": remove_callee,
}

if __name__ == "__main__":
    parser = base_parser(__doc__)
    parser.add_argument("--case", default="basic", choices=sorted(CASES))
    parser.add_argument("--guest-url", help="a transport whose anonymous role is `guest`")
    parser.add_argument("--history-topic", help="a topic with event history (limit 5)")
    a = parser.parse_args()
    run(CASES[a.case], a)

