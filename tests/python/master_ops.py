"""Operating a managed node through its master, with Autobahn|Python
management clients: worker logs, message tracing and web services.

Usage::

    master_ops.py URL REALM SERIALIZER --superuser SEED --name MREALM --app-url URL --scenario ops
        Node node1 of management realm MREALM (online, with router worker
        app1 serving realm1 at --app-url, and a proxy worker started here):
        remote.node.get_worker_log, remote.tracing.* on app1 while
        application clients call and publish, and the web service API on a
        proxy transport (services added and removed on the running
        transport, checked over HTTP).

    ... --scenario process
        The process APIs: remote.node.get_cpu_count, get_cpu_affinity,
        get_process_info, get_process_stats, get_system_stats, ... and
        remote.worker.* on router worker app1 and a proxy worker px2
        started here (left running, app1's affinity left at the last CPU
        for the caller to check in /proc).

URL is the master's ws:// management transport, REALM the global realm;
SEED the superuser's Ed25519 private seed (64 hex digits).
"""

import asyncio
import json
import urllib.error
import urllib.request

from master import Box, P, call, joined, poll
from wampclient import STEP_TIMEOUT, Failure, base_parser, close, connect, expect_error, run


async def worker_logs(m, oid, app_url):
    out = {}
    # on_worker_log: a line app1 logs now reaches the management realm.
    live = Box()
    await m.subscribe(live, P + "remote.worker.on_worker_log")
    from wampclient import open_session
    refused = await open_session(app_url, "no-such-realm", "json")
    out["refused"] = refused.left.result().reason if refused.left.done() else "joined"

    async def refusal_logged():
        while not any("no-such-realm" in json.dumps(a[2]) for a in live.items):
            await asyncio.sleep(0.05)
    await asyncio.wait_for(refusal_logged(), STEP_TIMEOUT)
    first = next(a for a in live.items if "no-such-realm" in json.dumps(a[2]))
    out["live_log"] = [first[0], first[1]]
    full = await poll("worker log", lambda: call(m, "remote.node.get_worker_log", oid, "app1", 1000), lambda l: len(l) > 0)
    out["is_list"] = isinstance(full, list)
    text = [x if isinstance(x, str) else json.dumps(x) for x in full]
    out["has_listening"] = any("listening" in t for t in text)
    out["at_most_ring"] = len(full) <= 200
    out["limit_1"] = len(await call(m, "remote.node.get_worker_log", oid, "app1", 1))
    out["default_limit_ok"] = len(await call(m, "remote.node.get_worker_log", oid, "app1")) <= 100
    out["kw_limit"] = len(await call(m, "remote.node.get_worker_log", oid, "app1", limit=2))
    out["errors"] = {
        "no_worker": await expect_error(call(m, "remote.node.get_worker_log", oid, "nope"), "worker"),
        "bad_limit": await expect_error(call(m, "remote.node.get_worker_log", oid, "app1", "ten"), "limit"),
        "negative": await expect_error(call(m, "remote.node.get_worker_log", oid, "app1", -1), "negative"),
        "bad_id": await expect_error(call(m, "remote.node.get_worker_log", oid, 7), "id"),
    }
    return out


async def mrealm_tracing(m, oid, app_url):
    """A management-realm trace over app1 and a worker that does not exist."""
    out = {}
    ev = {k: Box() for k in ["created", "starting", "started", "stopped", "deleted", "data"]}
    for k, b in ev.items():
        await m.subscribe(b, P + f"mrealm.tracing.on_trace_{k}")
    created = await call(m, "mrealm.create_trace", "mt1", [[oid, "app1"], ["node1", "ghost"]], {"max_records": 500}, ["owner"])
    out["created"] = {k: created[k] for k in ["id", "status", "traced_workers", "eligible_reader_roles"]}
    out["traces"] = await call(m, "mrealm.get_traces")
    st = await call(m, "mrealm.start_trace", "mt1")
    out["started_ids"] = [t["id"] for t in st["started"]]
    out["failed"] = [[f["node_id"], f["worker_id"], f["error"].split(":")[0]] for f in st["failed"]]
    out["worker_trace"] = (await call(m, "remote.tracing.get_trace", oid, "app1", "mt1"))["status"]
    c = await connect(app_url, "realm1", "json")
    await asyncio.wait_for(c.call("wamp.session.count"), STEP_TIMEOUT)
    data = await poll("mrealm trace data", lambda: call(m, "mrealm.get_trace_data", "mt1", 100),
                      lambda d: len(d[oid]["app1"]["data"]) > 0)
    out["data_app1"] = [data[oid]["app1"]["success"], any(r["msg_type"] == "Call" for r in data[oid]["app1"]["data"])]
    out["data_ghost"] = data["node1"]["ghost"]["success"]
    # The workers' batches, streamed: remote.tracing.on_trace_data re-published as mrealm.tracing.on_trace_data.
    await ev["data"].wait(1, "on_trace_data")
    node, worker, tid, period, records = ev["data"].items[0]
    out["stream"] = [node, worker, tid, period["period"] >= 1, len(records) > 0, records[0]["seq"] == period["from_seq"]]
    out["errors"] = {
        "again": await expect_error(call(m, "mrealm.start_trace", "mt1"), "again"),
        "delete_running": await expect_error(call(m, "mrealm.delete_trace", "mt1"), "delete"),
        "create_again": await expect_error(call(m, "mrealm.create_trace", "mt1", [[oid, "app1"]]), "create"),
        "unknown_node": await expect_error(call(m, "mrealm.create_trace", "mt2", [["nonode", "app1"]]), "node"),
        "bad_workers": await expect_error(call(m, "mrealm.create_trace", "mt2", "app1"), "workers"),
        "unknown": await expect_error(call(m, "mrealm.stop_trace", "zz"), "unknown"),
    }
    sp = await call(m, "mrealm.stop_trace", "mt1")
    out["stopped_ids"] = [t["id"] for t in sp["stopped"]]
    out["status_after_stop"] = (await call(m, "mrealm.get_trace", "mt1"))["status"]
    out["worker_trace_after"] = (await call(m, "remote.tracing.get_trace", oid, "app1", "mt1"))["status"]
    await call(m, "mrealm.delete_trace", "mt1")
    out["traces_after_delete"] = await call(m, "mrealm.get_traces")
    for k, b in ev.items():
        await b.wait(1, f"on_trace_{k}")
    out["event_ids"] = sorted({b.items[0][0] for k, b in ev.items() if k != "data"})
    await close(c)
    return out


async def tracing(m, oid, app_url):
    out = {}
    w = "app1"
    started, stopped = Box(), Box()
    await m.subscribe(started, P + "remote.tracing.on_trace_started")
    await m.subscribe(stopped, P + "remote.tracing.on_trace_stopped")
    out["before"] = await call(m, "remote.tracing.get_traces", oid, w)
    t = await call(m, "remote.tracing.start_trace", oid, w, "t1", {"max_records": 1000})
    out["started"] = {k: t.get(k) for k in ["id", "status", "node_id", "worker_id", "next_seq"]}
    out["trace_keys"] = sorted(t.keys())
    out["running"] = await call(m, "remote.tracing.get_traces", oid, w)

    callee = await connect(app_url, "realm1", "json")
    caller = await connect(app_url, "realm1", "cbor")
    await callee.register(lambda x: x * 2, "com.example.double")
    got = asyncio.get_running_loop().create_future()

    def on_event(*a):
        if not got.done():
            got.set_result(a)

    await callee.subscribe(on_event, "com.example.topic")
    from autobahn.wamp.types import PublishOptions

    out["call_result"] = await asyncio.wait_for(caller.call("com.example.double", 21), STEP_TIMEOUT)
    await asyncio.wait_for(caller.publish("com.example.topic", 1, options=PublishOptions(acknowledge=True)), STEP_TIMEOUT)
    await asyncio.wait_for(got, STEP_TIMEOUT)

    data = await poll(
        "trace data",
        lambda: call(m, "remote.tracing.get_trace_data", oid, w, "t1", 0, None, 1000),
        lambda d: any(r["msg_type"] == "Event" for r in d),
    )
    out["pairs"] = sorted({f"{r['direction']}:{r['msg_type']}" for r in data})
    out["uris"] = sorted({r["uri"] for r in data if r["uri"] and r["uri"].startswith("com.example.")})
    seqs = [r["seq"] for r in data]
    out["seq_contiguous"] = seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    out["record_keys"] = sorted(data[0].keys())
    caller_id = caller.joined.result().session
    out["call_traced_with_caller"] = any(
        r["msg_type"] == "Call" and r["direction"] == "rx" and r["session_id"] == caller_id and r["realm"] == "realm1"
        for r in data
    )
    callee_id = callee.joined.result().session
    out["invocation_to_callee"] = any(r["msg_type"] == "Invocation" and r["session_id"] == callee_id for r in data)
    window = await call(m, "remote.tracing.get_trace_data", oid, w, "t1", 1, 2)
    out["window_seqs"] = [r["seq"] for r in window]
    out["last_2"] = len(await call(m, "remote.tracing.get_trace_data", oid, w, "t1", None, None, 2))
    out["get_status"] = (await call(m, "remote.tracing.get_trace", oid, w, "t1"))["status"]

    st = await call(m, "remote.tracing.stop_trace", oid, w, "t1")
    out["stopped_status"] = st["status"]
    seq_at_stop = st["next_seq"]
    await asyncio.wait_for(caller.call("com.example.double", 1), STEP_TIMEOUT)
    out["no_growth_after_stop"] = (await call(m, "remote.tracing.get_trace", oid, w, "t1"))["next_seq"] == seq_at_stop
    out["after_stop"] = await call(m, "remote.tracing.get_traces", oid, w)
    out["with_stopped"] = await call(m, "remote.tracing.get_traces", oid, w, True)
    await started.wait(1, "on_trace_started")
    await stopped.wait(1, "on_trace_stopped")
    out["started_event"] = list(started.items[0][:3])
    out["stopped_event"] = [*stopped.items[0][:3], stopped.items[0][3]["status"]]

    # A trace with a duration stops by itself (and says so).
    await call(m, "remote.tracing.start_trace", oid, w, "t2", {"duration": 1})
    done = await poll("t2 stops itself", lambda: call(m, "remote.tracing.get_trace", oid, w, "t2"), lambda t: t["status"] == "stopped")
    out["t2_status"] = done["status"]
    await stopped.wait(2, "on_trace_stopped of t2")
    out["t2_event"] = stopped.items[1][2]

    out["errors"] = {
        "bad_level": await expect_error(call(m, "remote.tracing.start_trace", oid, w, "x", {"trace_level": "bytes"}), "level"),
        "payload": await expect_error(call(m, "remote.tracing.start_trace", oid, w, "x", {"trace_app_payload": True}), "payload"),
        "bad_options": await expect_error(call(m, "remote.tracing.start_trace", oid, w, "x", "fast"), "options"),
        "unknown_trace": await expect_error(call(m, "remote.tracing.get_trace", oid, w, "nope"), "trace"),
        "stop_unknown": await expect_error(call(m, "remote.tracing.stop_trace", oid, w, "nope"), "stop"),
        "stop_stopped": await expect_error(call(m, "remote.tracing.stop_trace", oid, w, "t1"), "stopped"),
        "big_limit": await expect_error(call(m, "remote.tracing.get_trace_data", oid, w, "t1", 0, None, 20000), "limit"),
        "bad_seq": await expect_error(call(m, "remote.tracing.get_trace_data", oid, w, "t1", "zero"), "seq"),
        "unknown_worker": await expect_error(call(m, "remote.tracing.get_traces", oid, "nope"), "worker"),
        "not_implemented": await expect_error(call(m, "remote.tracing.delete_trace", oid, w, "t1"), "proc"),
    }
    running = await call(m, "remote.tracing.start_trace", oid, w, "t3")
    out["errors"]["again"] = await expect_error(call(m, "remote.tracing.start_trace", oid, w, "t3"), "again")
    await call(m, "remote.tracing.stop_trace", oid, w, running["id"])
    await close(callee, caller)
    return out


def http_get(url):
    """(status, body as JSON or text) of a plain GET."""
    try:
        with urllib.request.urlopen(url, timeout=STEP_TIMEOUT) as r:
            body = r.read().decode()
            status = r.status
    except urllib.error.HTTPError as e:
        return e.code, None
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


async def get(url):
    return await asyncio.get_running_loop().run_in_executor(None, http_get, url)


async def web_services(m, oid, api, worker, port):
    """The web service API of `worker` (api "proxy" or "router") on its web transport "web1" at `port`."""
    out = {}
    base = f"http://127.0.0.1:{port}"
    out["services_before"] = await call(m, f"remote.{api}.get_web_transport_services", oid, worker, "web1")
    out["info_before"] = await get(base + "/info")
    out["extra_before"] = (await get(base + "/extra"))[0]
    started = await call(m, f"remote.{api}.start_web_transport_service", oid, worker, "web1", "/extra",
                         {"type": "json", "value": {"added": "at run time"}})
    out["started"] = started
    out["extra_after_start"] = await get(base + "/extra")
    out["info_after_start"] = (await get(base + "/info"))[0]
    out["services_after_start"] = await call(m, f"remote.{api}.get_web_transport_services", oid, worker, "web1")
    out["get_service"] = await call(m, f"remote.{api}.get_web_transport_service", oid, worker, "web1", "extra")
    out["errors"] = {
        "again": await expect_error(call(m, f"remote.{api}.start_web_transport_service", oid, worker, "web1", "extra",
                                         {"type": "json", "value": 1}), "again"),
        "no_transport": await expect_error(call(m, f"remote.{api}.start_web_transport_service", oid, worker, "nope", "x",
                                                {"type": "json", "value": 1}), "transport"),
        "no_type": await expect_error(call(m, f"remote.{api}.start_web_transport_service", oid, worker, "web1", "x", {"value": 1}), "type"),
        "bad_service": await expect_error(call(m, f"remote.{api}.start_web_transport_service", oid, worker, "web1", "x",
                                               {"type": "teleport"}), "bad"),
        "bad_path": await expect_error(call(m, f"remote.{api}.start_web_transport_service", oid, worker, "web1", "../up",
                                            {"type": "json", "value": 1}), "path"),
        "stop_unknown": await expect_error(call(m, f"remote.{api}.stop_web_transport_service", oid, worker, "web1", "nothing"), "stop"),
        "get_unknown": await expect_error(call(m, f"remote.{api}.get_web_transport_service", oid, worker, "web1", "nothing"), "get"),
    }
    stopped = await call(m, f"remote.{api}.stop_web_transport_service", oid, worker, "web1", "extra")
    out["stopped"] = stopped
    out["extra_after_stop"] = (await get(base + "/extra"))[0]
    out["info_after_stop"] = await get(base + "/info")
    out["services_after_stop"] = await call(m, f"remote.{api}.get_web_transport_services", oid, worker, "web1")
    return out


async def web(m, oid, app_url):
    out = {}
    web1 = {"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "portrange": [20000, 40000]},
            "paths": {"info": {"type": "json", "value": {"hello": "world"}}}}
    # A proxy worker's web transport, started at run time.
    await call(m, "remote.node.start_worker", oid, "px1", "proxy")
    await poll("proxy worker API", lambda: call(m, "remote.proxy.get_proxy_transports", oid, "px1"), lambda r: True)
    t = await call(m, "remote.proxy.start_proxy_transport", oid, "px1", "web1", web1)
    out["proxy"] = await web_services(m, oid, "proxy", "px1", t["port"])
    rs = {"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "portrange": [20000, 40000]}}
    await call(m, "remote.proxy.start_proxy_transport", oid, "px1", "raw1", rs)
    out["proxy_not_web"] = await expect_error(call(m, "remote.proxy.get_web_transport_services", oid, "px1", "raw1"), "raw")
    await call(m, "remote.node.stop_worker", oid, "px1")

    # A router worker's web transport: a WAMP WebSocket path and web services.
    rweb = dict(web1, paths={"ws": {"type": "websocket"}, "info": {"type": "json", "value": {"hello": "world"}}})
    rt = await call(m, "remote.router.start_router_transport", oid, "app1", "web1", rweb)
    out["router"] = await web_services(m, oid, "router", "app1", rt["port"])
    client = await connect(f"ws://127.0.0.1:{rt['port']}/ws", "realm1", "json")
    out["router_ws_after_changes"] = client.joined.done()
    await close(client)
    await call(m, "remote.router.stop_router_transport", oid, "app1", "web1")
    return out


async def ops(args):
    m = await joined(args, args.name, args.superuser, "superuser")
    node = await poll("node online", lambda: call(m, "mrealm.get_node_by_authid", "node1"), lambda n: n["status"] == "online")
    oid = node["oid"]
    await poll("worker API", lambda: call(m, "remote.router.get_router_realms", oid, "app1"), lambda r: True)
    out = {"logs": await worker_logs(m, oid, args.app_url), "tracing": await tracing(m, oid, args.app_url),
           "mtrace": await mrealm_tracing(m, oid, args.app_url), "web": await web(m, oid, args.app_url)}
    await close(m)
    return out


async def process_api(m, oid, api, w):
    """The process procedures of the node (api "node", w None) or of worker `w`."""
    pre = (oid,) if w is None else (oid, w)
    c = lambda proc, *a, **kw: call(m, f"remote.{api}.{proc}", *pre, *a, **kw)
    out = {}
    out["cpu_count"] = await c("get_cpu_count")
    out["physical"] = await c("get_cpu_count", False)
    cpus = await c("get_cpus")
    out["cpus"] = cpus
    out["affinity_before"] = await c("get_cpu_affinity")
    info = await c("get_process_info")
    out["info"] = info
    out["info_keys"] = sorted(info.keys())
    st1 = await c("get_process_stats")
    st2 = await c("get_process_stats")
    out["stats_keys"] = sorted(st1.keys())
    out["stats"] = st2
    mon1 = await c("get_process_monitor")
    mon2 = await c("get_process_monitor")
    out["monitor_first_has_rates"] = "cpu_user_per_sec" in mon1
    out["monitor"] = mon2
    out["monitor_verbose_keys"] = sorted((await c("get_process_monitor", True)).keys())
    out["utcnow"] = await c("utcnow")
    out["started"] = await c("started")
    out["uptime"] = await c("uptime")
    errs = {
        "empty": await expect_error(c("set_cpu_affinity", []), "empty"),
        "not_list": await expect_error(c("set_cpu_affinity", "0"), "not a list"),
        "negative": await expect_error(c("set_cpu_affinity", [-1]), "negative"),
        "too_big": await expect_error(c("set_cpu_affinity", [len(cpus)]), "index past get_cpus"),
        "absolute_too_big": await expect_error(c("set_cpu_affinity", [out["cpu_count"]], False), "absolute"),
        "huge": await expect_error(c("set_cpu_affinity", [0, 10**6]), "huge"),
        "not_int": await expect_error(c("set_cpu_affinity", ["a"]), "not an int"),
        "bad_relative": await expect_error(c("set_cpu_affinity", [0], "yes"), "relative"),
        "bad_logical": await expect_error(c("get_cpu_count", "many"), "logical"),
    }
    out["errors"] = errs
    out["affinity_after_errors"] = await c("get_cpu_affinity")
    # A real change, read back: the first CPU, then every CPU by absolute ids, then the last one (kept).
    out["set_first"] = await c("set_cpu_affinity", [0])
    out["read_first"] = await c("get_cpu_affinity")
    out["set_all_absolute"] = await c("set_cpu_affinity", cpus, relative=False)
    out["read_all"] = await c("get_cpu_affinity")
    out["set_last"] = await c("set_cpu_affinity", [len(cpus) - 1])
    out["read_last"] = await c("get_cpu_affinity")
    return out


async def native(m, oid):
    """What Crossbar's NativeProcess and WorkerController add: process statistics
    monitoring (events), trigger_gc, node id, manhole and profilers as a native
    process has them, worker shutdown, the short names of the Management API
    document, and the worker kinds Junction has not."""
    out = {}
    node_pre = P + "node.node1."
    app1_pre = node_pre + "worker.app1."
    stats, stats_set, node_stats, gc_done, down = Box(), Box(), Box(), Box(), Box()
    for box, topic in [(stats, app1_pre + "on_process_stats"), (stats_set, app1_pre + "on_process_stats_monitoring_set"),
                       (node_stats, node_pre + "on_process_stats"), (gc_done, app1_pre + "on_gc_finished"),
                       (down, node_pre + "worker.px3.on_shutdown_requested")]:
        await m.subscribe(box, topic)
    out["monitoring_set"] = await call(m, "remote.worker.set_process_stats_monitoring", oid, "app1", 0.2)
    await stats_set.wait(1, "on_process_stats_monitoring_set")
    await stats.wait(3, "on_process_stats")
    out["stats_set_event"] = stats_set.items[0][0]
    out["stats_seqs"] = [e[0]["seq"] for e in stats.items[:3]]
    out["stats_pid"] = stats.items[0][0]["pid"]
    await call(m, "remote.worker.set_process_stats_monitoring", oid, "app1", 0)
    await stats_set.wait(2, "monitoring off")
    n = len(stats.items)
    await asyncio.sleep(0.8)
    out["stats_after_off"] = len(stats.items) - n
    await call(m, "remote.node.set_process_stats_monitoring", oid, 0.2)
    await node_stats.wait(2, "node on_process_stats")
    out["node_stats_pid"] = node_stats.items[0][0]["pid"]
    await call(m, "remote.node.set_process_stats_monitoring", oid, 0)
    out["gc_ms"] = await call(m, "remote.worker.trigger_gc", oid, "app1")
    await gc_done.wait(1, "on_gc_finished")
    out["gc_event"] = sorted(gc_done.items[0][0].keys())
    out["node_gc_ms"] = await call(m, "remote.node.trigger_gc", oid)
    out["node_id"] = await call(m, "remote.worker.get_node_id", oid, "app1")
    out["set_same_node_id"] = await call(m, "remote.worker.set_node_id", oid, "app1", "node1")
    out["manhole"] = await call(m, "remote.worker.get_manhole", oid, "app1")
    out["profilers"] = await call(m, "remote.worker.get_profilers", oid, "app1")
    out["realms_short"] = await call(m, "remote.router.get_realms", oid, "app1")
    out["realms_long"] = await call(m, "remote.router.get_router_realms", oid, "app1")
    out["components"] = await call(m, "remote.router.get_router_components", oid, "app1")
    out["errors"] = {
        "interval_bad": await expect_error(call(m, "remote.worker.set_process_stats_monitoring", oid, "app1", "often"), "interval"),
        "interval_tiny": await expect_error(call(m, "remote.worker.set_process_stats_monitoring", oid, "app1", 0.001), "tiny"),
        "set_other_node_id": await expect_error(call(m, "remote.worker.set_node_id", oid, "app1", "node7"), "node id"),
        "start_manhole": await expect_error(call(m, "remote.worker.start_manhole", oid, "app1", {}), "manhole"),
        "stop_manhole": await expect_error(call(m, "remote.worker.stop_manhole", oid, "app1"), "manhole"),
        "start_profiler": await expect_error(call(m, "remote.worker.start_profiler", oid, "app1", "vmprof"), "profiler"),
        "get_profile": await expect_error(call(m, "remote.worker.get_profile", oid, "app1", 1), "profile"),
        "start_component": await expect_error(call(m, "remote.router.start_component", oid, "app1", "c1", {}), "component"),
        "docker": await expect_error(call(m, "remote.docker.get_containers", oid), "docker"),
        "container": await expect_error(call(m, "remote.container.get_components", oid, "c1"), "container"),
        "shutdown_unknown": await expect_error(call(m, "remote.worker.shutdown", oid, "nope"), "shutdown"),
    }
    # shutdown(): the worker stops for good (the node does not restart it).
    await call(m, "remote.node.start_worker", oid, "px3", "proxy")
    out["workers_with_px3"] = await call(m, "remote.node.get_workers", oid)
    out["shutdown"] = await call(m, "remote.worker.shutdown", oid, "px3")
    await down.wait(1, "on_shutdown_requested")
    out["shutdown_event"] = sorted(down.items[0][0].keys())
    out["workers_after_shutdown"] = await call(m, "remote.node.get_workers", oid)
    await asyncio.sleep(1.0)
    out["workers_later"] = await call(m, "remote.node.get_workers", oid)
    return out


async def process(args):
    m = await joined(args, args.name, args.superuser, "superuser")
    node = await poll("node online", lambda: call(m, "mrealm.get_node_by_authid", "node1"), lambda n: n["status"] == "online")
    oid = node["oid"]
    await poll("worker API", lambda: call(m, "remote.worker.get_status", oid, "app1"), lambda r: True)
    out = {"node_status": await call(m, "remote.node.get_status", oid)}
    n = await process_api(m, oid, "node", None)
    s1 = await call(m, "remote.node.get_system_stats", oid)
    await asyncio.sleep(0.3)
    s2 = await call(m, "remote.node.get_system_stats", oid)
    n["system_keys"] = {k: sorted(v.keys()) if isinstance(v, dict) else type(v).__name__ for k, v in s2.items()}
    n["system"] = s2
    n["system_first_has_rates"] = "bytes_recv_per_sec" in s1["network"]
    # Set the node back to every CPU it had.
    await call(m, "remote.node.set_cpu_affinity", oid, list(range(len(n["cpus"]))))
    out["node"] = n

    out["app1_worker"] = await call(m, "remote.node.get_worker", oid, "app1")
    out["app1_status"] = await call(m, "remote.worker.get_status", oid, "app1")
    out["app1"] = await process_api(m, oid, "worker", "app1")
    out["app1_pythonpath"] = await call(m, "remote.worker.get_pythonpath", oid, "app1")

    worker_ready = Box()
    await m.subscribe(worker_ready, P + "node.node1.worker.px2.on_worker_ready")
    await call(m, "remote.node.start_worker", oid, "px2", "proxy")
    # on_worker_ready: the worker's own API is registered, no polling needed.
    await worker_ready.wait(1, "on_worker_ready")
    out["px2_ready_event"] = worker_ready.items[0][0]
    out["px2_status_at_ready"] = (await call(m, "remote.worker.get_status", oid, "px2"))["status"]
    out["px2_worker"] = await call(m, "remote.node.get_worker", oid, "px2")
    out["px2_status"] = await call(m, "remote.worker.get_status", oid, "px2")
    px = await process_api(m, oid, "worker", "px2")
    await call(m, "remote.worker.set_cpu_affinity", oid, "px2", list(range(len(px["cpus"]))))
    out["px2"] = px

    out["errors"] = {
        "unknown_worker": await expect_error(call(m, "remote.worker.get_cpu_count", oid, "nope"), "worker"),
        "unknown_worker_set": await expect_error(call(m, "remote.worker.set_cpu_affinity", oid, "nope", [0]), "worker"),
        "unknown_router_worker": await expect_error(call(m, "remote.router.get_router_realms", oid, "nope"), "worker"),
        "not_implemented": await expect_error(call(m, "remote.worker.start_container", oid, "app1"), "proc"),
        "add_pythonpath": await expect_error(call(m, "remote.worker.add_pythonpath", oid, "app1", ["/tmp"]), "python"),
        "add_pythonpath_bad": await expect_error(call(m, "remote.worker.add_pythonpath", oid, "app1", "/tmp"), "python"),
        "no_worker_id": await expect_error(call(m, "remote.worker.get_status", oid), "no id"),
        "unknown_node": await expect_error(call(m, "remote.worker.get_status", "5f0e3b51-9d27-4a3f-8a2c-1c1b2a3d4e5f", "app1"), "node"),
        "node_system_on_worker": await expect_error(call(m, "remote.worker.get_system_stats", oid, "app1"), "sys"),
    }
    out["native"] = await native(m, oid)
    await close(m)
    return out


SCENARIOS = {"ops": ops, "process": process}

if __name__ == "__main__":
    p = base_parser(__doc__)
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--superuser", required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--app-url", required=True)
    p.add_argument("--web-port", type=int)
    a = p.parse_args()
    run(SCENARIOS[a.scenario], a)
