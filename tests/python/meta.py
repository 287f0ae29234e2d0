"""The WAMP meta API and session testaments, with the real Autobahn client.

Cases (``--case``):
* sessions: wamp.session.count/list/get/kill/kill_by_authid/
  kill_by_authrole/kill_all in a realm of its own (REALM), plus count in a
  second realm (--realm2, homed on the other shard);
* session_events: wamp.session.on_join / on_leave;
* subscription_meta / registration_meta: the procedures and events;
* disabled: a realm with enable_meta_api false;
* testament: add_testament + lost transport publishes; flush_testaments
  drops.
"""

import asyncio
import re

from autobahn.wamp.types import PublishOptions, RegisterOptions, SubscribeOptions

from advanced import barrier, connect_as, wait
from wampclient import STEP_TIMEOUT, base_parser, check, close, connect, expect_error, run, unique


async def c(session, proc, *a, **kw):
    return await asyncio.wait_for(session.call(proc, *a, **kw), STEP_TIMEOUT)


async def sessions(args):
    s1 = await connect(args.url, args.realm, args.serializer)
    s2 = await connect(args.url, args.realm, args.serializer)
    s3 = await connect_as(args.url, args.realm, args.serializer, authid="victim")
    out = {}
    out["counts"] = [await c(s, "wamp.session.count") for s in (s1, s2, s3)]
    ids = sorted([s1.session_id, s2.session_id, s3.session_id])
    out["list_ok"] = await c(s1, "wamp.session.list") == ids
    g = await c(s1, "wamp.session.get", s3.session_id)
    out["get"] = {k: g.get(k) for k in ("realm", "session", "authid", "authrole", "authmethod")}
    out["get_session_ok"] = g.get("session") == s3.session_id
    out["get_unknown"] = await expect_error(s1.call("wamp.session.get", 1), "get unknown")

    # kill: the target's onLeave sees reason and message.
    await c(s1, "wamp.session.kill", s3.session_id, reason="com.example.bye", message="go away")
    left = await wait(s3.left, "killed session onLeave")
    out["kill_left"] = [left.reason, left.message]
    out["kill_self"] = await expect_error(s1.call("wamp.session.kill", s1.session_id), "kill self")
    out["count_after_kill"] = await c(s1, "wamp.session.count")

    # kill_by_authid: both sessions of one authid, not the others.
    k1 = await connect_as(args.url, args.realm, args.serializer, authid="kbid")
    k2 = await connect_as(args.url, args.realm, args.serializer, authid="kbid")
    kids = sorted([k1.session_id, k2.session_id])
    killed = await c(s1, "wamp.session.kill_by_authid", "kbid")
    out["kill_by_authid_ok"] = killed == len(kids)
    out["kill_by_authid_reasons"] = [(await wait(k.left, "kbid onLeave")).reason for k in (k1, k2)]

    # kill_by_authrole: the guest-role session only.
    g1 = await connect(args.guest_url, args.realm, args.serializer)
    out["guest_role"] = g1.joined.result().authrole
    gid = g1.session_id
    killed = await c(s1, "wamp.session.kill_by_authrole", "guest")
    out["kill_by_authrole_ok"] = killed == 1
    await wait(g1.left, "guest onLeave")
    out["count_after_role_kill"] = await c(s1, "wamp.session.count")

    # kill_all: everyone but the caller.
    extra = await connect(args.url, args.realm, args.serializer)
    out["kill_all"] = await c(s1, "wamp.session.kill_all", reason="com.example.all")
    out["kill_all_left"] = [(await wait(s.left, "kill_all onLeave")).reason for s in (s2, extra)]
    out["count_after_kill_all"] = await c(s1, "wamp.session.count")
    out["caller_alive"] = s1.is_attached()

    # The second realm (other shard) counts its own sessions only.
    r2 = [await connect(args.url, args.realm2, args.serializer) for _ in range(2)]
    out["realm2_counts"] = [await c(s, "wamp.session.count") for s in r2]
    out["realm1_count_again"] = await c(s1, "wamp.session.count")
    await close(s1, *r2)
    return out


async def session_events(args):
    watcher = await connect(args.url, args.realm, args.serializer)
    joins, leaves = asyncio.Queue(), asyncio.Queue()
    await asyncio.wait_for(watcher.subscribe(lambda d: joins.put_nowait(d), "wamp.session.on_join"), STEP_TIMEOUT)
    await asyncio.wait_for(watcher.subscribe(lambda *a: leaves.put_nowait(list(a)), "wamp.session.on_leave"),
                           STEP_TIMEOUT)
    s = await connect_as(args.url, args.realm, args.serializer, authid="joiner")
    sid = s.session_id
    join = None
    while join is None:
        d = await asyncio.wait_for(joins.get(), STEP_TIMEOUT)
        if d.get("session") == sid:
            join = d
    await close(s)
    leave = None
    while leave is None:
        a = await asyncio.wait_for(leaves.get(), STEP_TIMEOUT)
        if a and a[0] == sid:
            leave = a
    await close(watcher)
    return {"join": {k: join.get(k) for k in ("realm", "authid", "authrole")}, "leave": leave[1:]}


async def pattern_meta(args, kind):
    """kind: "subscription" or "registration"."""
    watcher = await connect(args.url, args.realm, args.serializer)
    actor = await connect(args.url, args.realm, args.serializer)
    uri = unique(f"com.example.meta.{kind}")
    events = asyncio.Queue()
    verbs = ["on_create", "on_subscribe", "on_unsubscribe", "on_delete"] if kind == "subscription" else [
        "on_create", "on_register", "on_unregister", "on_delete"]
    for v in verbs:
        await asyncio.wait_for(
            watcher.subscribe(lambda *a, v=v: events.put_nowait([v, list(a)]), f"wamp.{kind}.{v}"), STEP_TIMEOUT
        )

    if kind == "subscription":
        obj = await asyncio.wait_for(actor.subscribe(lambda *a: None, uri), STEP_TIMEOUT)
    else:
        obj = await asyncio.wait_for(actor.register(lambda *a: None, uri), STEP_TIMEOUT)
    oid = obj.id
    w = watcher
    out = {}
    lst = await c(w, f"wamp.{kind}.list")
    out["listed"] = oid in lst.get("exact", [])
    sl = await c(w, f"wamp.{kind}.list", actor.session_id)
    out["session_list"] = sl.get("exact") == [oid]
    out["lookup_ok"] = await c(w, f"wamp.{kind}.lookup", uri) == oid
    # positional options: Autobahn's call() takes the `options` keyword
    out["lookup_prefix"] = await c(w, f"wamp.{kind}.lookup", uri, {"match": "prefix"})
    m = await c(w, f"wamp.{kind}.match", uri)
    out["match_ok"] = (m == [oid]) if kind == "subscription" else (m == oid)
    out["match_none"] = await c(w, f"wamp.{kind}.match", unique("com.example.nothing"))
    g = await c(w, f"wamp.{kind}.get", oid)
    out["get"] = {k: g.get(k) for k in ("uri", "match", "invoke") if k in g}
    out["get_uri_ok"] = g.get("uri") == uri and g.get("id") == oid
    out["created_iso"] = bool(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", str(g.get("created"))))
    members = "list_subscribers" if kind == "subscription" else "list_callees"
    count = "count_subscribers" if kind == "subscription" else "count_callees"
    out["members_ok"] = await c(w, f"wamp.{kind}.{members}", oid) == [actor.session_id]
    out["count"] = await c(w, f"wamp.{kind}.{count}", oid)
    out["get_unknown"] = await expect_error(w.call(f"wamp.{kind}.get", 1), "get unknown")

    await asyncio.wait_for(obj.unsubscribe() if kind == "subscription" else obj.unregister(), STEP_TIMEOUT)
    seen = []
    while len(seen) < 4:
        v, a = await asyncio.wait_for(events.get(), STEP_TIMEOUT)
        mine = a and a[0] == actor.session_id
        if not mine:
            continue
        detail = a[1]
        if v == "on_create":
            seen.append([v, detail.get("uri") == uri and detail.get("id") == oid])
        else:
            seen.append([v, detail == oid])
    out["events"] = seen
    out["after_delete"] = await expect_error(w.call(f"wamp.{kind}.get", oid), "get deleted")
    await close(watcher, actor)
    return out


async def subscription_meta(args):
    return await pattern_meta(args, "subscription")


async def registration_meta(args):
    return await pattern_meta(args, "registration")


async def disabled(args):
    s = await connect(args.url, args.realm, args.serializer)
    out = {}
    for proc in ["wamp.session.count", "wamp.session.list", "wamp.subscription.list", "wamp.registration.list"]:
        out[proc] = await expect_error(s.call(proc), proc)
    broker = s._router_roles.get("broker")
    dealer = s._router_roles.get("dealer")
    out["broker_session_meta_api"] = getattr(broker, "session_meta_api", None)
    out["dealer_registration_meta_api"] = getattr(dealer, "registration_meta_api", None)
    # meta events are not published either.
    q = asyncio.Queue()
    await asyncio.wait_for(s.subscribe(lambda *a: q.put_nowait(a), "wamp.session.on_join"), STEP_TIMEOUT)
    other = await connect(args.url, args.realm, args.serializer)
    await asyncio.sleep(0.3)
    out["on_join_events"] = q.qsize()
    await close(s, other)
    return out


async def testament(args):
    sub = await connect(args.url, args.realm, args.serializer)
    dying = await connect(args.url, args.realm, args.serializer)
    flusher = await connect(args.url, args.realm, args.serializer)
    topic = unique("com.example.testament")
    q = asyncio.Queue()
    await asyncio.wait_for(
        sub.subscribe(lambda *a, **kw: q.put_nowait([list(a), kw]), topic), STEP_TIMEOUT
    )
    out = {}
    pid = await c(dying, "wamp.session.add_testament", topic, ["gone", dying.session_id], {"why": "lost"})
    out["pub_id_int"] = isinstance(pid, int)
    # The flusher adds one and flushes it.
    await c(flusher, "wamp.session.add_testament", topic, ["flushed"], {})
    out["flushed"] = await c(flusher, "wamp.session.flush_testaments")
    out["bad_topic"] = await expect_error(dying.call("wamp.session.add_testament", "wamp.x", [], {}), "bad topic")
    # Drop dying's transport without GOODBYE (Autobahn forgets its session
    # id on disconnect: keep it).
    dying_id = dying.session_id
    dying._transport.transport.abort()
    ev = await asyncio.wait_for(q.get(), STEP_TIMEOUT)
    out["event"] = ev
    out["event_ok"] = ev == [["gone", dying_id], {"why": "lost"}]
    # The flusher leaves normally: nothing is published.
    await close(flusher)
    await asyncio.wait_for(sub.publish(topic, "marker", options=PublishOptions(acknowledge=True, exclude_me=False)),
                           STEP_TIMEOUT)
    nxt = await asyncio.wait_for(q.get(), STEP_TIMEOUT)
    out["after_flush"] = nxt
    await close(sub)
    return out


CASES = {
    "sessions": sessions,
    "session_events": session_events,
    "subscription_meta": subscription_meta,
    "registration_meta": registration_meta,
    "disabled": disabled,
    "testament": testament,
}

if __name__ == "__main__":
    parser = base_parser(__doc__)
    parser.add_argument("--case", required=True, choices=sorted(CASES))
    parser.add_argument("--guest-url")
    parser.add_argument("--realm2")
    a = parser.parse_args()
    run(CASES[a.case], a)
