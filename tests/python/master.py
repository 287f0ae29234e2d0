"""The master's management API driven by Autobahn|Python management clients.

Usage::

    master.py URL REALM SERIALIZER --superuser SEED --node SEED --scenario flow
        The global-realm flow of Crossbar's reference transcript: domain
        status/license/version, list/create/get management realms (with the
        on_mrealm_created event), bad input answered with Crossbar's error
        URIs, pair_node (with on_node_paired), a management session as owner
        (get_status/get_nodes/get_node), the node logging in (it lands on its
        management realm as role node and goes online, with on_node_ready),
        unpair_node closing the node's session and locking it out, and
        delete_mrealm closing the management realm.

    master.py URL REALM SERIALIZER --superuser SEED --node SEED --scenario objects
        The management-realm object APIs on a fresh management realm with a
        paired (never connected) node: a router cluster with the node and a
        worker group, a web cluster with the node and three web services,
        a role with a permission, an application realm with the role, a
        principal and a ticket credential; starts and stops them (stop
        reaches STOPPED), checks shapes, events and error URIs, then deletes
        everything bottom-up, unpairs the node and deletes the management
        realm.

    master.py URL REALM SERIALIZER --superuser SEED --scenario create --name N
        Creates management realm N and pairs nothing; prints its oid.

    master.py URL REALM SERIALIZER --superuser SEED --scenario verify --name N
        Checks that management realm N exists and can be joined as owner.

URL is the master's ws:// management transport, REALM the global realm;
SEED is an Ed25519 private seed (64 hex digits).
"""

import asyncio
import os
import signal
import time

from autobahn.wamp.cryptosign import CryptosignKey

from secure import open_auth_session
from wampclient import STEP_TIMEOUT, Failure, base_parser, check, close, expect_error, run, unique

P = "crossbarfabriccenter."


def pubkey(seed):
    return CryptosignKey.from_bytes(bytes.fromhex(seed)).public_key(binary=False)


async def login(args, realm, seed, authid=None):
    s, _lost = await open_auth_session(args.url, realm, args.serializer, ["cryptosign"], authid=authid, privkey=seed)
    return s


async def joined(args, realm, seed, authid=None):
    s = await login(args, realm, seed, authid)
    if not s.joined.done():
        reason = s.left.result().reason if s.left.done() else "connection lost"
        raise Failure(f"login to {realm!r} refused: {reason}")
    return s


async def call(s, proc, *a, **kw):
    return await asyncio.wait_for(s.call(P + proc, *a, **kw), STEP_TIMEOUT)


class Box:
    def __init__(self):
        self.items = []
        self.event = asyncio.Event()

    def __call__(self, *a, **kw):
        self.items.append(a)
        self.event.set()

    async def wait(self, n, what):
        async def until():
            while len(self.items) < n:
                self.event.clear()
                await self.event.wait()

        try:
            await asyncio.wait_for(until(), STEP_TIMEOUT)
        except asyncio.TimeoutError:
            raise Failure(f"{what}: {len(self.items)} of {n} events within {STEP_TIMEOUT}s")


async def flow(args):
    out = {}
    g = await joined(args, args.realm, args.superuser, "superuser")
    d = g.joined.result()
    out["global_welcome"] = {"authid": d.authid, "authrole": d.authrole, "realm": d.realm}

    st = await call(g, "domain.get_status")
    out["status_keys"] = sorted(st.keys())
    out["status_type"] = st["type"]
    out["license_keys"] = sorted((await call(g, "domain.get_license")).keys())
    out["version_has_junction"] = "junction_ver" in await call(g, "domain.get_version")
    out["initial_mrealms"] = await call(g, "mrealm.list_mrealms", return_names=True)

    created, paired, unpaired = Box(), Box(), Box()
    await g.subscribe(created, P + "mrealm.on_mrealm_created")
    await g.subscribe(paired, P + "mrealm.on_node_paired")
    await g.subscribe(unpaired, P + "mrealm.on_node_unpaired")

    name = "mr-" + unique("x").split(".")[1][:10]
    mr = await call(g, "mrealm.create_mrealm", {"name": name})
    out["mrealm_keys"] = sorted(mr.keys())
    await created.wait(1, "on_mrealm_created")
    out["created_event_matches"] = created.items[0][0] == mr
    out["get_mrealm_matches"] = (await call(g, "mrealm.get_mrealm", mr["oid"])) == mr
    out["get_by_name_matches"] = (await call(g, "mrealm.get_mrealm_by_name", name)) == mr
    out["names_after_create"] = await call(g, "mrealm.list_mrealms", return_names=True)
    out["oids_after_create"] = await call(g, "mrealm.list_mrealms")

    out["errors"] = {
        "duplicate": await expect_error(call(g, "mrealm.create_mrealm", {"name": name}), "dup"),
        "bad_name": await expect_error(call(g, "mrealm.create_mrealm", {"name": "x y"}), "bad name"),
        "protected": await expect_error(call(g, "mrealm.create_mrealm", {"name": "wamp.mine"}), "protected"),
        "not_a_dict": await expect_error(call(g, "mrealm.create_mrealm", "nope"), "type"),
        "bad_oid": await expect_error(call(g, "mrealm.get_mrealm", "not-a-uuid"), "oid"),
        "unknown_oid": await expect_error(call(g, "mrealm.get_mrealm", "00000000-0000-4000-8000-000000000000"), "oid"),
        "unknown_proc": await expect_error(call(g, "mrealm.no_such_thing"), "proc"),
        "pair_bad_key": await expect_error(call(g, "mrealm.pair_node", "abc", name, "node1", None), "key"),
        "pair_no_realm": await expect_error(call(g, "mrealm.pair_node", pubkey(args.node), "nope-realm", "n", None), "realm"),
    }
    out["names_after_errors"] = await call(g, "mrealm.list_mrealms", return_names=True)

    node = await call(g, "mrealm.pair_node", pubkey(args.node), name, "node1", {"scenario": "junction"}, "127.0.0.1")
    await paired.wait(1, "on_node_paired")
    out["node_keys"] = sorted(node.keys())
    out["node_cluster_ip"] = node["cluster_ip"]
    out["paired_event_matches"] = paired.items[0][0] == node
    out["pair_again"] = await expect_error(call(g, "mrealm.pair_node", pubkey(args.node), name, "node9", None), "again")

    # A management session on the new management realm, as owner.
    m = await joined(args, name, args.superuser, "superuser")
    out["mrealm_welcome"] = {"authid": m.joined.result().authid, "authrole": m.joined.result().authrole}
    out["mrealm_status_type"] = (await call(m, "mrealm.get_status"))["type"]
    out["mrealm_nodes"] = await call(m, "mrealm.get_nodes")
    out["node_status_before"] = (await call(m, "mrealm.get_node", node["oid"]))["status"]
    ready, shutdown = Box(), Box()
    await m.subscribe(ready, P + "mrealm.on_node_ready")
    await m.subscribe(shutdown, P + "mrealm.on_node_shutdown")

    # The node logs in on the global realm and lands on its management realm.
    n = await joined(args, args.realm, args.node)
    nd = n.joined.result()
    out["node_welcome"] = {"authid": nd.authid, "authrole": nd.authrole, "realm": nd.realm}
    out["node_realm_is_mrealm"] = nd.realm == name
    # A node may register under its own prefix only.
    out["node_own_register"] = await expect_error(
        asyncio.wait_for(n.register(lambda: 1, P + "node.node1.custom_probe"), STEP_TIMEOUT), "own")
    out["node_foreign_register"] = await expect_error(
        asyncio.wait_for(n.register(lambda: 1, P + "node.node9.get_status"), STEP_TIMEOUT), "foreign")
    # Joined is not online: its procedures may not be registered yet. Like
    # Crossbar's node bridge, it heartbeats once they are, and is online then.
    out["node_status_joined"] = (await call(m, "mrealm.get_node_by_authid", "node1"))["status"]
    n.publish(P + "node.on_heartbeat", "node1", {"timestamp": time.time_ns(), "period": 10, "seq": 1})
    await ready.wait(1, "on_node_ready")
    out["ready_event_node"] = ready.items[0][0] == node["oid"]
    out["node_status_online"] = (await call(m, "mrealm.get_node_by_authid", "node1"))["status"]
    out["online_names"] = await call(m, "mrealm.get_nodes", status="online", return_names=True)

    # Unpairing closes the node's session and locks it out.
    un = await call(g, "mrealm.unpair_node", node["oid"])
    out["unpair_killed_node_session"] = un["killed"] == [nd.session]
    await unpaired.wait(1, "on_node_unpaired")
    await asyncio.wait_for(n.left, STEP_TIMEOUT)
    out["node_left_reason"] = n.left.result().reason
    await shutdown.wait(1, "on_node_shutdown")
    again = await login(args, args.realm, args.node)
    out["node_after_unpair"] = "joined" if again.joined.done() else again.left.result().reason
    out["unpair_twice"] = await expect_error(call(g, "mrealm.unpair_node", node["oid"]), "unpair twice")

    # Deleting the management realm closes its sessions.
    deleted = await call(g, "mrealm.delete_mrealm", mr["oid"])
    out["deleted_name"] = deleted["name"]
    await asyncio.wait_for(m.left, STEP_TIMEOUT)
    out["mrealm_session_left"] = m.left.result().reason
    out["get_deleted"] = await expect_error(call(g, "mrealm.get_mrealm", mr["oid"]), "deleted")
    out["names_after_delete"] = await call(g, "mrealm.list_mrealms", return_names=True)
    refused = await login(args, name, args.superuser, "superuser")
    out["join_deleted_mrealm"] = "joined" if refused.joined.done() else refused.left.result().reason
    await close(g)
    return out


async def create(args):
    g = await joined(args, args.realm, args.superuser, "superuser")
    mr = await call(g, "mrealm.create_mrealm", {"name": args.name})
    await close(g)
    return {"oid": mr["oid"]}


async def verify(args):
    g = await joined(args, args.realm, args.superuser, "superuser")
    mr = await call(g, "mrealm.get_mrealm_by_name", args.name)
    names = await call(g, "mrealm.list_mrealms", return_names=True)
    m = await joined(args, args.name, args.superuser, "superuser")
    st = await call(m, "mrealm.get_status")
    await close(g, m)
    return {"oid": mr["oid"], "names": names, "mrealm_status_realm": st["realm"]}


async def pair(args):
    """Create management realm N and pair the node key given as --node-pubkey as node1."""
    g = await joined(args, args.realm, args.superuser, "superuser")
    await call(g, "mrealm.create_mrealm", {"name": args.name})
    node = await call(g, "mrealm.pair_node", args.node_pubkey, args.name, "node1", {"managed": "by junction"})
    await close(g)
    return {"node_oid": node["oid"]}


async def pair_two(args):
    """Create management realm N and pair --node-pubkey KEY1 --node-pubkey2 KEY2 as node1 and node2."""
    g = await joined(args, args.realm, args.superuser, "superuser")
    await call(g, "mrealm.create_mrealm", {"name": args.name})
    await call(g, "mrealm.pair_node", args.node_pubkey, args.name, "node1", None)
    await call(g, "mrealm.pair_node", args.node_pubkey2, args.name, "node2", None)
    await close(g)
    return {}


async def app_session(url, realm, authid, ticket):
    from secure import open_auth_session

    s, _lost = await open_auth_session(url, realm, "json", ["ticket"], authid=authid, ticket=ticket)
    if not s.joined.done():
        raise Failure(s.left.result().reason if s.left.done() else "lost")
    return s


async def arealm_flow(args):
    """The reference's orchestration: a router cluster with a worker group of scale 2 over node1 and
    node2, a web cluster on node1, an application realm with a role, a principal and a ticket
    credential, started on both; clients through the web cluster reach each other; then teardown."""
    m = await joined(args, args.name, args.superuser, "superuser")
    out = {}
    n1 = await poll("node1 online", lambda: call(m, "mrealm.get_node_by_authid", "node1"), lambda n: n["status"] == "online")
    n2 = await poll("node2 online", lambda: call(m, "mrealm.get_node_by_authid", "node2"), lambda n: n["status"] == "online")
    rc = await call(m, "mrealm.routercluster.create_routercluster", {"name": "rc1"})
    for n in (n1, n2):
        await call(m, "mrealm.routercluster.add_routercluster_node", rc["oid"], n["oid"], {"softlimit": 4, "hardlimit": 8})
    wg = await call(m, "mrealm.routercluster.add_routercluster_workergroup", rc["oid"], {"name": "wg1", "scale": 2})
    await call(m, "mrealm.routercluster.start_routercluster", rc["oid"])
    wc = await call(m, "mrealm.webcluster.create_webcluster",
                    {"name": "wc1", "tcp_port": args.web_port, "tcp_shared": True, "tcp_interface": "127.0.0.1"})
    await call(m, "mrealm.webcluster.add_webcluster_node", wc["oid"], n1["oid"], {"parallel": 1, "standby": False})
    await call(m, "mrealm.webcluster.add_webcluster_service", wc["oid"], "ws",
               {"type": "websocket", "serializers": ["json", "cbor", "msgpack"]})
    await call(m, "mrealm.webcluster.add_webcluster_service", wc["oid"], "settings",
               {"type": "json", "value": {"scenario": "junction"}})
    await call(m, "mrealm.webcluster.start_webcluster", wc["oid"])
    role = await call(m, "mrealm.arealm.create_role", {"name": "app-role"})
    await call(m, "mrealm.arealm.add_role_permission", role["oid"], "com.example.",
               {"match": "prefix", "allow_call": True, "allow_register": True, "allow_publish": True,
                "allow_subscribe": True, "disclose_caller": True, "disclose_publisher": True, "cache": True})
    await call(m, "mrealm.arealm.add_role_permission", role["oid"], "wamp.session.count",
               {"match": "exact", "allow_call": True, "allow_register": False, "allow_publish": False,
                "allow_subscribe": False, "disclose_caller": False, "disclose_publisher": False, "cache": True})
    ar = await call(m, "mrealm.arealm.create_arealm", {"name": "app-realm1", "enable_meta_api": True, "bridge_meta_api": False})
    await call(m, "mrealm.arealm.add_arealm_role", ar["oid"], role["oid"], {})
    for i in (1, 2):
        p = await call(m, "mrealm.arealm.add_principal", ar["oid"], {"authid": f"client{i}", "role_oid": role["oid"]})
        await call(m, "mrealm.arealm.add_principal_credential", ar["oid"], p["oid"],
                   {"authmethod": "ticket", "authconfig": {"secret": f"secret-ticket-{i}"}})
    await call(m, "mrealm.arealm.start_arealm", ar["oid"], wg["oid"], wc["oid"])
    st = await poll("arealm RUNNING", lambda: call(m, "mrealm.arealm.get_arealm", ar["oid"]),
                    lambda a: a["status"] == "RUNNING", timeout=60.0)
    out["arealm_status"] = st["status"]
    out["webcluster_status"] = (await call(m, "mrealm.webcluster.get_webcluster", wc["oid"]))["status"]
    out["node1_workers"] = sorted(await call(m, "remote.node.get_workers", n1["oid"]))
    out["node2_workers"] = sorted(await call(m, "remote.node.get_workers", n2["oid"]))

    url = f"ws://127.0.0.1:{args.web_port}/ws"
    c1 = await poll("client1 joins through the web cluster", lambda: app_session(url, "app-realm1", "client1", "secret-ticket-1"), lambda s: True)
    c2 = await app_session(url, "app-realm1", "client2", "secret-ticket-2")
    out["client_roles"] = [c1.joined.result().authrole, c2.joined.result().authrole]
    out["wrong_ticket"] = "joined"
    try:
        await app_session(url, "app-realm1", "client1", "wrong")
    except Failure as e:
        out["wrong_ticket"] = str(e)
    await asyncio.wait_for(c1.register(lambda a, b: a + b, "com.example.add2"), STEP_TIMEOUT)
    got = []
    ev = asyncio.Event()
    await asyncio.wait_for(c1.subscribe(lambda x: (got.append(x), ev.set()), "com.example.topic1"), STEP_TIMEOUT)
    await asyncio.sleep(0.5)  # the registration and subscription reach the other worker
    out["call"] = await poll("a call across the cluster", lambda: asyncio.wait_for(c2.call("com.example.add2", 2, 3), STEP_TIMEOUT), lambda r: True)
    from autobahn.wamp.types import PublishOptions
    await asyncio.wait_for(c2.publish("com.example.topic1", "hello", options=PublishOptions(acknowledge=True)), STEP_TIMEOUT)
    await asyncio.wait_for(ev.wait(), STEP_TIMEOUT)
    out["event"] = got[0]
    out["session_count"] = await asyncio.wait_for(c2.call("wamp.session.count"), STEP_TIMEOUT)
    await close(c1, c2)

    # A principal added while the realm runs reaches the web cluster without a restart.
    p3 = await call(m, "mrealm.arealm.add_principal", ar["oid"], {"authid": "client3", "role_oid": role["oid"]})
    await call(m, "mrealm.arealm.add_principal_credential", ar["oid"], p3["oid"],
               {"authmethod": "ticket", "authconfig": {"secret": "secret-ticket-3"}})
    c3 = await poll("the new principal logs in", lambda: app_session(url, "app-realm1", "client3", "secret-ticket-3"), lambda s: True)
    out["client3_role"] = c3.joined.result().authrole
    await close(c3)

    # kill -9 of a router worker: its node restarts it, the master re-applies its realm, links and routes.
    before = await call(m, "remote.node.get_worker", n2["oid"], "wg1_2")
    os.kill(before["pid"], signal.SIGKILL)
    after = await poll("wg1_2 restarted", lambda: call(m, "remote.node.get_worker", n2["oid"], "wg1_2"),
                       lambda w: w["pid"] != before["pid"] and w["status"] == "started", timeout=30.0)
    out["worker_restarted"] = after["pid"] != before["pid"]

    async def both_workers_serve():
        # Sessions through the web cluster land on both workers (round-robin): every one must work.
        ok = 0
        for _ in range(4):
            c = await app_session(url, "app-realm1", "client1", "secret-ticket-1")
            try:
                await asyncio.wait_for(c.call("wamp.session.count"), STEP_TIMEOUT)
                realms = await call(m, "remote.router.get_router_realms", n2["oid"], "wg1_2")
                if not any(r.startswith("rlm_") for r in realms):
                    raise Failure("realm not back on wg1_2 yet")
                ok += 1
            finally:
                await close(c)
        return ok

    out["after_kill_sessions"] = await poll("the cluster serves again", both_workers_serve, lambda n: n == 4, timeout=30.0)
    if args.phase == "setup":
        await close(m)
        return out
    return {**out, **(await arealm_teardown(args, m, n1, n2, ar, wc))}


async def arealm_check(args):
    """After a restart of the master: everything is still there and serving, nothing was doubled."""
    m = await joined(args, args.name, args.superuser, "superuser")
    out = {}
    n1 = await poll("node1 online again", lambda: call(m, "mrealm.get_node_by_authid", "node1"), lambda n: n["status"] == "online", timeout=30.0)
    n2 = await poll("node2 online again", lambda: call(m, "mrealm.get_node_by_authid", "node2"), lambda n: n["status"] == "online", timeout=30.0)
    ar = await call(m, "mrealm.arealm.get_arealm_by_name", "app-realm1")
    wc = await call(m, "mrealm.webcluster.get_webcluster_by_name", "wc1")
    out["arealm_status_after_restart"] = ar["status"]
    out["node1_workers_after_restart"] = sorted(await call(m, "remote.node.get_workers", n1["oid"]))
    out["node2_workers_after_restart"] = sorted(await call(m, "remote.node.get_workers", n2["oid"]))
    url = f"ws://127.0.0.1:{args.web_port}/ws"
    c = await app_session(url, "app-realm1", "client3", "secret-ticket-3")
    out["client_after_restart"] = await asyncio.wait_for(c.call("wamp.session.count"), STEP_TIMEOUT)
    await close(c)
    # Let the reconcile loop run a few passes: it must find nothing to start twice.
    await asyncio.sleep(5)
    out["node1_workers_later"] = sorted(await call(m, "remote.node.get_workers", n1["oid"]))
    # The worker's own uplink reconnects on its own backoff: poll for it.
    realms = await poll("wg1_1 reachable again", lambda: call(m, "remote.router.get_router_realms", n1["oid"], "wg1_1"),
                        lambda r: isinstance(r, list), timeout=30.0)
    out["wg1_1_realms"] = realms
    return {**out, **(await arealm_teardown(args, m, n1, n2, ar, wc))}


async def arealm_teardown(args, m, n1, n2, ar, wc):
    out = {}
    # Teardown: stopping really stops (the workers leave the nodes).
    await call(m, "mrealm.arealm.stop_arealm", ar["oid"])
    await poll("router workers stopped", lambda: call(m, "remote.node.get_workers", n2["oid"]), lambda w: "wg1_2" not in w, timeout=30.0)
    await call(m, "mrealm.webcluster.stop_webcluster", wc["oid"])
    left = await poll("proxy workers stopped", lambda: call(m, "remote.node.get_workers", n1["oid"]),
                      lambda w: not any(x.startswith("cpw-") or x.startswith("wg1_") for x in w), timeout=30.0)
    out["node1_workers_after"] = sorted(left)
    out["arealm_after"] = (await call(m, "mrealm.arealm.get_arealm", ar["oid"]))["status"]
    await close(m)
    return out



async def poll(what, fn, until, timeout=20.0):
    """Call ``fn`` until ``until(result)`` holds (errors count as not yet)."""
    deadline = asyncio.get_running_loop().time() + timeout
    last = None
    while True:
        try:
            last = await fn()
            if until(last):
                return last
        except Exception as e:  # noqa: BLE001 - not there yet
            last = repr(e)
        if asyncio.get_running_loop().time() > deadline:
            raise Failure(f"{what}: not within {timeout}s (last: {last})")
        await asyncio.sleep(0.1)


async def edge(args):
    """The paired node (node1 of management realm N) comes online and answers the remote node API."""
    m = await joined(args, args.name, args.superuser, "superuser")
    out = {}
    node = await poll("node online", lambda: call(m, "mrealm.get_node_by_authid", "node1"), lambda n: n["status"] == "online")
    oid = node["oid"]
    st = await poll("remote.node.get_status", lambda: call(m, "remote.node.get_status", oid), lambda r: True)
    out["status"] = {k: st.get(k) for k in ["management_node_id", "management_realm", "running_workers", "controller_pid", "pubkey"]}
    out["workers"] = await call(m, "remote.node.get_workers", oid)
    out["worker"] = await call(m, "remote.node.get_worker", oid, out["workers"][0]) if out["workers"] else None
    out["no_such_worker"] = await expect_error(call(m, "remote.node.get_worker", oid, "nope"), "worker")
    out["unknown_node"] = await expect_error(call(m, "remote.node.get_status", "00000000-0000-4000-8000-000000000000"), "node")
    out["unknown_remote"] = await expect_error(call(m, "remote.node.no_such_call", oid), "proc")
    hb = await poll("heartbeat", lambda: call(m, "mrealm.get_node", oid), lambda n: n["heartbeat"] is not None)
    out["heartbeat_seq"] = hb["heartbeat"]["seq"]
    out["cluster_ip"] = hb["cluster_ip"]
    if args.app_url:
        out["worker_api"] = await worker_api(args, m, oid)
    if args.shutdown:
        out["shutdown"] = await expect_error(call(m, "remote.node.shutdown", oid), "shutdown")
        off = await poll("node offline", lambda: call(m, "mrealm.get_node", oid), lambda n: n["status"] == "offline")
        out["status_after_shutdown"] = off["status"]
    await close(m)
    return out


async def worker_api(args, m, oid):
    """The router worker `app1` of the node, driven through remote.router.*."""
    from wampclient import open_session

    out = {}
    w = "app1"
    out["realms_before"] = await poll("worker API", lambda: call(m, "remote.router.get_router_realms", oid, w), lambda r: True)
    role = {"name": "anonymous", "permissions": [{"uri": "", "match": "prefix",
            "allow": {"call": True, "register": True, "publish": True, "subscribe": True}}]}
    bridged, realm_started, raw_started, heartbeats = Box(), Box(), Box(), Box()
    await m.subscribe(bridged, P + "remote.realm.meta.wamp.session.on_join")
    await m.subscribe(realm_started, P + "remote.router.on_router_realm_started")
    await m.subscribe(raw_started, P + "node.node1.worker.app1.on_realm_started")
    await m.subscribe(heartbeats, P + "remote.node.on_node_heartbeat")
    started = await call(m, "remote.router.start_router_realm", oid, w, "rlm_tenant2",
                         {"name": "tenant2", "roles": [role], "options": {"enable_meta_api": True, "bridge_meta_api": True}})
    out["started_id"] = started["id"]
    await realm_started.wait(1, "on_router_realm_started")
    await raw_started.wait(1, "on_realm_started")
    await heartbeats.wait(1, "on_node_heartbeat")
    ev = realm_started.items[0]
    out["realm_started_event"] = [ev[0], ev[1], ev[2]["id"]]
    out["raw_realm_started"] = raw_started.items[0][0]
    out["heartbeat_event"] = [heartbeats.items[0][0], "seq" in heartbeats.items[0][1]]
    out["realms_after"] = await call(m, "remote.router.get_router_realms", oid, w)
    out["by_name_id"] = (await call(m, "remote.router.get_router_realm_by_name", oid, w, "tenant2"))["id"]
    out["transports"] = len(await call(m, "remote.router.get_router_transports", oid, w))
    out["errors"] = {
        "bad_config": await expect_error(call(m, "remote.router.start_router_realm", oid, w, "rlm_bad",
                                              {"name": "bad", "roles": [{"name": "r", "permissions": [{"uri": "", "match": "x"}]}]}), "bad"),
        "again": await expect_error(call(m, "remote.router.start_router_realm", oid, w, "rlm_tenant2", {"name": "tenant2", "roles": [role]}), "again"),
        "unknown_worker": await expect_error(call(m, "remote.router.get_router_realms", oid, "nope"), "worker"),
        "unknown_realm": await expect_error(call(m, "remote.router.stop_router_realm", oid, w, "rlm_none"), "realm"),
    }
    # An application client on the node's worker, in the realm the master just started.
    app = await open_session(args.app_url, "tenant2", "json")
    out["app_joined"] = app.joined.done()
    # bridge_meta_api: the realm's meta events reach the management realm.
    await bridged.wait(1, "bridged on_join")
    ev = bridged.items[0]
    out["bridged_on_join"] = [ev[0], ev[1], ev[2], ev[3].get("session") == app.joined.result().session]
    # The realm's meta API from the management realm (the reference takes the node authid here).
    out["meta_count"] = await call(m, "remote.realm.meta.wamp.session.count", "node1", w, "rlm_tenant2")
    out["meta_list_len"] = len(await call(m, "remote.realm.meta.wamp.session.list", "node1", w, "rlm_tenant2"))
    stats = await call(m, "remote.router.get_router_realm_stats", oid, w, "rlm_tenant2")
    out["stats_sessions"] = stats["rlm_tenant2"]["sessions"]
    out["meta_unknown_realm"] = await expect_error(call(m, "remote.realm.meta.wamp.session.count", "node1", w, "rlm_x"), "meta")
    # kill_by_authid through the worker API closes the client.
    other = await open_session(args.app_url, "tenant2", "json")
    killed = await call(m, "remote.router.kill_by_authid", oid, w, "rlm_tenant2", other.joined.result().authid)
    out["killed"] = killed["killed"]
    await asyncio.wait_for(other.left, STEP_TIMEOUT)
    out["killed_reason"] = other.left.result().reason
    stopped = await call(m, "remote.router.stop_router_realm", oid, w, "rlm_tenant2")
    out["sessions_closed"] = stopped["sessions_closed"]
    await asyncio.wait_for(app.left, STEP_TIMEOUT)
    out["app_left"] = app.left.result().reason
    again = await open_session(args.app_url, "tenant2", "json")
    out["app_after_stop"] = "joined" if again.joined.done() else again.left.result().reason
    out["realms_final"] = await call(m, "remote.router.get_router_realms", oid, w)

    # Roles at run time (the reference's way: a realm first, then its roles).
    await call(m, "remote.router.start_router_realm", oid, w, "rlm_t3", {"name": "tenant3"})
    before = await open_session(args.app_url, "tenant3", "json")
    out["role_join_before"] = "joined" if before.joined.done() else before.left.result().reason
    await call(m, "remote.router.start_router_realm_role", oid, w, "rlm_t3", "rle_anon", role)
    out["roles_t3"] = await call(m, "remote.router.get_router_realm_roles", oid, w, "rlm_t3")
    member = await open_session(args.app_url, "tenant3", "json")
    out["role_join_after"] = member.joined.done()
    removed = await call(m, "remote.router.stop_router_realm_role", oid, w, "rlm_t3", "rle_anon")
    out["role_sessions_closed"] = removed["sessions_closed"]
    await asyncio.wait_for(member.left, STEP_TIMEOUT)
    out["role_member_left"] = member.left.result().reason
    await call(m, "remote.router.stop_router_realm", oid, w, "rlm_t3")

    # Workers started and stopped at run time.
    started = await call(m, "remote.node.start_worker", oid, "wg1_1", "router", {"title": "x", "shards": 1})
    out["new_worker"] = {k: started.get(k) for k in ["id", "type", "status"]}
    out["new_worker_has_pid"] = isinstance(started.get("pid"), int)
    out["workers_with_new"] = await call(m, "remote.node.get_workers", oid)
    out["new_worker_realms"] = await poll("new worker API", lambda: call(m, "remote.router.get_router_realms", oid, "wg1_1"), lambda r: True)
    await call(m, "remote.router.start_router_realm", oid, "wg1_1", "rlm_wg", {"name": "wg-realm", "roles": [role]})
    out["new_worker_realms_after"] = await call(m, "remote.router.get_router_realms", oid, "wg1_1")
    # A transport started at run time, on a port of a range (the reference's shape).
    tnp = await call(m, "remote.router.start_router_transport", oid, "wg1_1", "tnp_wg1_1",
                     {"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "portrange": [20000, 40000]},
                      "serializers": ["json", "cbor"]})
    out["transport_port_in_range"] = 20000 <= tnp["port"] <= 40000
    wg_client = await open_session(f"rs://127.0.0.1:{tnp['port']}", "wg-realm", "json")
    out["wg_client_joined"] = wg_client.joined.done()
    out["transport_errors"] = {
        "again": await expect_error(call(m, "remote.router.start_router_transport", oid, "wg1_1", "tnp_wg1_1",
                                         {"type": "rawsocket", "endpoint": {"type": "tcp", "portrange": [20000, 40000]}}), "again"),
        "bad": await expect_error(call(m, "remote.router.start_router_transport", oid, "wg1_1", "tnp_bad",
                                       {"type": "rawsocket", "endpoint": {"type": "tcp", "port": 0}}), "bad"),
    }
    out["transport_ids"] = [t["id"] for t in await call(m, "remote.router.get_router_transports", oid, "wg1_1")]

    # A web-cluster proxy on the node, built at run time as the reference's master does.
    out["proxy"] = await proxy_api(args, m, oid, tnp["port"])

    await call(m, "remote.router.stop_router_transport", oid, "wg1_1", "tnp_wg1_1")
    out["transport_ids_after_stop"] = [t["id"] for t in await call(m, "remote.router.get_router_transports", oid, "wg1_1")]
    await close(wg_client)
    out["worker_errors"] = {
        "again": await expect_error(call(m, "remote.node.start_worker", oid, "wg1_1", "router"), "again"),
        "bad_type": await expect_error(call(m, "remote.node.start_worker", oid, "c1", "container"), "type"),
        "bad_id": await expect_error(call(m, "remote.node.start_worker", oid, "../x", "router"), "id"),
        "bad_option": await expect_error(call(m, "remote.node.start_worker", oid, "w2", "router", {"sharts": 2}), "opt"),
        "stop_unknown": await expect_error(call(m, "remote.node.stop_worker", oid, "nope"), "stop"),
    }
    stopped = await call(m, "remote.node.stop_worker", oid, "wg1_1")
    out["stopped_worker"] = stopped["id"]
    out["workers_after_stop"] = await call(m, "remote.node.get_workers", oid)
    out["stopped_worker_api"] = await expect_error(call(m, "remote.router.get_router_realms", oid, "wg1_1"), "gone")
    return out


class Events:
    """Every event under a prefix, as (topic without the prefix, first argument)."""

    def __init__(self, prefix):
        self.prefix = prefix
        self.items = []

    def __call__(self, *a, details=None):
        self.items.append((details.topic[len(self.prefix):], a[0] if a else None))

    def topics(self):
        return [t for t, _ in self.items]

    def find(self, topic):
        return [a for t, a in self.items if t == topic]


async def objects(args):
    from autobahn.wamp.types import SubscribeOptions

    out = {}
    g = await joined(args, args.realm, args.superuser, "superuser")
    name = "obj-" + unique("x").split(".")[1][:10]
    await call(g, "mrealm.create_mrealm", {"name": name})
    node = await call(g, "mrealm.pair_node", pubkey(args.node), name, "node1", None, "127.0.0.1")
    node_oid = node["oid"]
    m = await joined(args, name, args.superuser, "superuser")
    ev = Events(P + "mrealm.")
    await m.subscribe(ev, P + "mrealm.", options=SubscribeOptions(match="prefix", details_arg="details"))
    rc_ = "mrealm.routercluster."
    wc_ = "mrealm.webcluster."
    ar_ = "mrealm.arealm."
    nobody = "00000000-0000-4000-8000-000000000000"
    errors = {}

    # Router cluster, its node and a worker group (no cluster_oid needed, reference 8.2).
    rc = await call(m, rc_ + "create_routercluster", {"name": "rc1"})
    out["rc_keys"] = sorted(rc)
    out["rc_status"] = rc["status"]
    out["rc_names"] = await call(m, rc_ + "list_routerclusters", return_names=True)
    out["rc_get_matches"] = (await call(m, rc_ + "get_routercluster", rc["oid"])) == rc
    out["rc_by_name_matches"] = (await call(m, rc_ + "get_routercluster_by_name", "rc1")) == rc
    out["rc_member"] = await call(m, rc_ + "add_routercluster_node", rc["oid"], node_oid, {"softlimit": 4, "hardlimit": 8})
    out["rc_node_names"] = await call(m, rc_ + "list_routercluster_nodes", rc["oid"], return_names=True)
    wg = await call(m, rc_ + "add_routercluster_workergroup", rc["oid"], {"name": "wg1", "scale": 1})
    out["wg_keys"] = sorted(wg)
    out["wg_cluster_matches"] = wg["cluster_oid"] == rc["oid"]
    out["wg_by_name_matches"] = (await call(m, rc_ + "get_routercluster_workergroup_by_name", "rc1", "wg1")) == wg
    errors["rc_duplicate"] = await expect_error(call(m, rc_ + "create_routercluster", {"name": "rc1"}), "dup")
    errors["rc_bad_name"] = await expect_error(call(m, rc_ + "create_routercluster", {"name": "Not Valid"}), "name")
    errors["rc_bad_oid"] = await expect_error(call(m, rc_ + "get_routercluster", "not-a-uuid"), "oid")
    errors["rc_unknown"] = await expect_error(call(m, rc_ + "get_routercluster", nobody), "unknown")
    errors["wg_scale"] = await expect_error(call(m, rc_ + "add_routercluster_workergroup", rc["oid"], {"name": "wg2", "scale": 0}), "scale")
    errors["rc_node_in_use"] = await expect_error(call(m, rc_ + "remove_routercluster_node", rc["oid"], node_oid), "in use")
    out["rc_start"] = await call(m, rc_ + "start_routercluster", rc["oid"])
    out["rc_status_started"] = (await call(m, rc_ + "get_routercluster", rc["oid"]))["status"]
    errors["rc_start_again"] = await expect_error(call(m, rc_ + "start_routercluster", rc["oid"]), "again")
    errors["rc_delete_started"] = await expect_error(call(m, rc_ + "delete_routercluster", rc["oid"]), "delete")

    # Web cluster, its node and three web services.
    wc = await call(m, wc_ + "create_webcluster", {"name": "wc1", "tcp_port": 8190, "tcp_shared": True, "tcp_interface": "127.0.0.1",
                                                   "http_access_log": True, "http_display_tracebacks": True})
    out["wc_keys"] = sorted(wc)
    out["wc_defaults"] = {k: wc[k] for k in ["tcp_version", "tcp_backlog", "tls_key", "http_hsts", "tcp_port", "tcp_shared"]}
    out["wc_member"] = await call(m, wc_ + "add_webcluster_node", wc["oid"], node_oid, {"parallel": 1, "standby": False})
    services = {
        "ws": {"type": "websocket", "serializers": ["cbor", "msgpack", "json"],
               "options": {"allowed_origins": ["*"], "allow_null_origin": True, "enable_webstatus": False},
               "auth": {"ticket": {"type": "static", "principals": {"client1": {"ticket": "secret-ticket-1", "role": "app-role"}}}}},
        "settings": {"type": "json", "value": {"scenario": "master_scenario", "hello": "world"}},
        "info": {"type": "nodeinfo"},
    }
    added = {}
    for path, svc in services.items():
        added[path] = await call(m, wc_ + "add_webcluster_service", wc["oid"], path, svc)
    out["ws_keys"] = sorted(added["ws"])
    out["ws_verbatim"] = all({k: v for k, v in added[p].items() if k in svc} == svc for p, svc in services.items())
    listed = await call(m, wc_ + "list_webcluster_services", wc["oid"])
    out["services_listed"] = listed == {p: s["oid"] for p, s in added.items()}
    out["ws_by_path_matches"] = (await call(m, wc_ + "get_webcluster_service_by_path", wc["oid"], "ws")) == added["ws"]
    errors["ws_root"] = await expect_error(call(m, wc_ + "add_webcluster_service", wc["oid"], "/", {"type": "nodeinfo"}), "root")
    errors["ws_bad_type"] = await expect_error(call(m, wc_ + "add_webcluster_service", wc["oid"], "x", {"type": "ftp"}), "type")
    errors["wc_bad_port"] = await expect_error(call(m, wc_ + "create_webcluster", {"name": "wc2", "tcp_port": 0}), "port")
    out["wc_start"] = await call(m, wc_ + "start_webcluster", wc["oid"])
    errors["ws_while_started"] = await expect_error(call(m, wc_ + "add_webcluster_service", wc["oid"], "more", {"type": "nodeinfo"}), "started")

    # Roles, permissions, an application realm, a principal and a credential.
    role = await call(m, ar_ + "create_role", {"name": "app-role"})
    out["role_keys"] = sorted(role)
    perm = await call(m, ar_ + "add_role_permission", role["oid"], "com.example.",
                      {"match": "prefix", "allow_call": True, "allow_register": True, "allow_publish": True, "allow_subscribe": True,
                       "disclose_caller": True, "disclose_publisher": True, "cache": True})
    out["perm_keys"] = sorted(perm)
    out["perms_by_uri_match"] = (await call(m, ar_ + "get_role_permissions_by_uri", role["oid"], "com.example.")) == [perm]
    errors["perm_bad_match"] = await expect_error(call(m, ar_ + "add_role_permission", role["oid"], "com.x", {"match": "regex"}), "match")
    errors["perm_bad_uri"] = await expect_error(call(m, ar_ + "add_role_permission", role["oid"], "com..x", {"match": "exact"}), "uri")
    ar = await call(m, ar_ + "create_arealm", {"name": "app-realm1", "enable_meta_api": True, "bridge_meta_api": True})
    out["arealm_keys"] = sorted(ar)
    out["arealm_role"] = await call(m, ar_ + "add_arealm_role", ar["oid"], role["oid"], {})
    out["arealm_role_names"] = await call(m, ar_ + "list_arealm_roles", ar["oid"], return_names=True)
    pr = await call(m, ar_ + "add_principal", ar["oid"], {"authid": "client1", "role_oid": role["oid"], "authextra": {"color": "blue"}})
    out["principal_keys"] = sorted(pr)
    out["principal_names"] = await call(m, ar_ + "list_principals", ar["oid"], return_names=True)
    cred = await call(m, ar_ + "add_principal_credential", ar["oid"], pr["oid"], {"authmethod": "ticket", "authconfig": {"secret": "secret-ticket-1"}})
    out["credential"] = {k: cred[k] for k in ["authmethod", "realm", "authid", "authconfig"]}
    out["credentials_listed"] = (await call(m, ar_ + "list_principal_credentials", ar["oid"], pr["oid"])) == [cred["oid"]]
    out["credential_get_matches"] = (await call(m, ar_ + "get_principal_credential", ar["oid"], pr["oid"], cred["oid"])) == cred
    errors["cred_bad"] = await expect_error(call(m, ar_ + "add_principal_credential", ar["oid"], pr["oid"],
                                                 {"authmethod": "cryptosign", "authconfig": {"authorized_keys": ["abc"]}}), "cred")
    errors["role_in_use"] = await expect_error(call(m, ar_ + "delete_role", role["oid"]), "in use")
    out["arealm_start"] = await call(m, ar_ + "start_arealm", ar["oid"], wg["oid"], wc["oid"])
    out["router_workers"] = await call(m, ar_ + "list_router_workers", ar["oid"])
    errors["arealm_delete_started"] = await expect_error(call(m, ar_ + "delete_arealm", ar["oid"]), "delete")
    errors["wc_stop_in_use"] = await expect_error(call(m, wc_ + "stop_webcluster", wc["oid"]), "in use")

    # Stop everything: each reaches STOPPED.
    out["arealm_stop"] = await call(m, ar_ + "stop_arealm", ar["oid"])
    out["arealm_status_stopped"] = (await call(m, ar_ + "get_arealm", ar["oid"]))["status"]
    out["wc_stop"] = await call(m, wc_ + "stop_webcluster", wc["oid"])
    out["wc_status_stopped"] = (await call(m, wc_ + "get_webcluster", wc["oid"]))["status"]
    out["rc_stop"] = await call(m, rc_ + "stop_routercluster", rc["oid"])
    out["rc_status_stopped"] = (await call(m, rc_ + "get_routercluster", rc["oid"]))["status"]
    errors["rc_stop_again"] = await expect_error(call(m, rc_ + "stop_routercluster", rc["oid"]), "stop again")

    # Teardown, bottom-up.
    await call(m, ar_ + "remove_principal_credential", ar["oid"], pr["oid"], cred["oid"])
    await call(m, ar_ + "remove_principal", ar["oid"], pr["oid"])
    await call(m, ar_ + "remove_arealm_role", ar["oid"], role["oid"])
    await call(m, ar_ + "delete_arealm", ar["oid"])
    await call(m, ar_ + "remove_role_permission", role["oid"], perm["oid"])
    await call(m, ar_ + "delete_role", role["oid"])
    for s in added.values():
        await call(m, wc_ + "remove_webcluster_service", wc["oid"], s["oid"])
    await call(m, wc_ + "remove_webcluster_node", wc["oid"], node_oid)
    await call(m, wc_ + "delete_webcluster", wc["oid"])
    await call(m, rc_ + "remove_routercluster_workergroup", rc["oid"], wg["oid"])
    await call(m, rc_ + "remove_routercluster_node", rc["oid"], node_oid)
    await call(m, rc_ + "delete_routercluster", rc["oid"])
    out["left"] = {
        "routerclusters": await call(m, rc_ + "list_routerclusters"),
        "webclusters": await call(m, wc_ + "list_webclusters"),
        "roles": await call(m, ar_ + "list_roles"),
        "arealms": await call(m, ar_ + "list_arealms"),
    }
    errors["rc_deleted"] = await expect_error(call(m, rc_ + "get_routercluster", rc["oid"]), "deleted")
    out["errors"] = errors

    # Every event arrived on the management realm, in order.
    deadline = asyncio.get_running_loop().time() + STEP_TIMEOUT
    while "routercluster.on_routercluster_deleted" not in ev.topics() and asyncio.get_running_loop().time() < deadline:
        await asyncio.sleep(0.05)
    out["events"] = ev.topics()
    out["created_event_matches"] = ev.find("routercluster.on_routercluster_created") == [rc]
    out["stopped_events"] = ev.find("arealm.on_arealm_stopped")

    await call(g, "mrealm.unpair_node", node_oid)
    await call(g, "mrealm.delete_mrealm", (await call(g, "mrealm.get_mrealm_by_name", name))["oid"])
    await asyncio.wait_for(m.left, STEP_TIMEOUT)
    await close(g)
    return out


async def proxy_api(args, m, oid, router_port):
    """Proxy worker cpw-1: transport, connection to router worker wg1_1, route; a client through it."""
    from wampclient import open_session

    out = {}
    p = "cpw-1"
    # Lifecycle events, forwarded by the master as remote.<api>.<event>(node, [worker,] *args).
    proxy_started, route_started, conn_starting = Box(), Box(), Box()
    await m.subscribe(proxy_started, P + "remote.node.on_proxy_started")
    await m.subscribe(route_started, P + "remote.proxy.on_proxy_route_started")
    await m.subscribe(conn_starting, P + "remote.proxy.on_proxy_connection_starting")
    await call(m, "remote.node.start_worker", oid, p, "proxy")
    await poll("proxy worker API", lambda: call(m, "remote.proxy.get_proxy_transports", oid, p), lambda r: True)
    t = await call(m, "remote.proxy.start_proxy_transport", oid, p, "primary",
                   {"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "portrange": [20000, 40000]},
                    "auth": {"anonymous": {"type": "static", "role": "anonymous"}}})
    c = await call(m, "remote.proxy.start_proxy_connection", oid, p, "cnc_node1_wg1_1",
                   {"transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": router_port},
                                  "url": "ws://node1", "serializer": "cbor"},
                    "auth": {"cryptosign-proxy": {"type": "static"}}})
    out["connection_id"] = c["id"]
    r = await call(m, "remote.proxy.start_proxy_realm_route", oid, p, "wg-realm", {"anonymous": "cnc_node1_wg1_1"})
    out["route_id"] = r["id"]
    await proxy_started.wait(1, "on_proxy_started")
    await route_started.wait(1, "on_proxy_route_started")
    await conn_starting.wait(1, "on_proxy_connection_starting")
    out["events"] = {
        "proxy_started": [proxy_started.items[0][0], proxy_started.items[0][1]["id"]],
        "route_started": [route_started.items[0][0], route_started.items[0][1], route_started.items[0][2]["id"]],
        "connection_starting": [conn_starting.items[0][1], conn_starting.items[0][2]],
    }
    out["routes"] = await call(m, "remote.proxy.get_proxy_routes", oid, p)
    out["errors"] = {
        "dependent": await expect_error(call(m, "remote.proxy.stop_proxy_connection", oid, p, "cnc_node1_wg1_1"), "dep"),
        "no_connection": await expect_error(call(m, "remote.proxy.start_proxy_realm_route", oid, p, "wg-realm", {"x": "nope"}), "conn"),
        "bad_connection": await expect_error(call(m, "remote.proxy.start_proxy_connection", oid, p, "bad",
                                                  {"transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": "h"}}}), "bad"),
    }

    async def through_proxy():
        s = await open_session(f"rs://127.0.0.1:{t['port']}", "wg-realm", "json")
        if not s.joined.done():
            raise Failure(s.left.result().reason if s.left.done() else "lost")
        return s

    client = await poll("a client joins through the proxy", through_proxy, lambda s: True)
    details = client.joined.result()
    out["client_realm"] = details.realm
    out["client_session_count"] = await asyncio.wait_for(client.call("wamp.session.count"), STEP_TIMEOUT)
    await close(client)
    await call(m, "remote.proxy.stop_proxy_realm_route", oid, p, "wg-realm", r["id"])
    refused = await open_session(f"rs://127.0.0.1:{t['port']}", "wg-realm", "json")
    out["after_route_stop"] = "joined" if refused.joined.done() else refused.left.result().reason
    await call(m, "remote.proxy.stop_proxy_connection", oid, p, "cnc_node1_wg1_1")
    await call(m, "remote.proxy.stop_proxy_transport", oid, p, "primary")
    out["transports_after"] = await call(m, "remote.proxy.get_proxy_transports", oid, p)
    await call(m, "remote.node.stop_worker", oid, p)
    return out


async def watch(args):
    """Watch-to-pair: the keys under the watched directory are paired to
    management realm `default` (--name: the comma-separated authids to
    expect); node1 comes online by itself; an unpaired key stays unpaired."""
    want = sorted(args.name.split(","))
    g = await joined(args, args.realm, args.superuser, "superuser")
    paired = Box()
    await g.subscribe(paired, P + "mrealm.on_node_paired")
    m = await joined(args, "default", args.superuser, "superuser")
    out = {}
    out["names"] = await poll("keys paired", lambda: call(m, "mrealm.get_nodes", return_names=True),
                              lambda n: sorted(n) == want, timeout=20.0)
    n1 = await poll("node1 online", lambda: call(m, "mrealm.get_node_by_authid", "node1"),
                    lambda n: n["status"] == "online", timeout=30.0)
    out["node1_cluster_ip"] = n1["cluster_ip"]
    out["node1_workers"] = await call(m, "remote.node.get_workers", n1["oid"])
    other = [a for a in want if a != "node1"][0]
    n2 = await call(m, "mrealm.get_node_by_authid", other)
    await call(g, "mrealm.unpair_node", n2["oid"])
    before = len(paired.items)
    # Three scans later it is still unpaired: unpairing is not undone.
    await asyncio.sleep(6.5)
    out["names_after_unpair"] = sorted(await call(m, "mrealm.get_nodes", return_names=True))
    out["paired_events_after_unpair"] = len(paired.items) - before
    await close(g, m)
    return out


SCENARIOS = {"watch": watch, "pair_two": pair_two, "arealm_flow": arealm_flow, "arealm_check": arealm_check, "objects": objects, "flow": flow, "create": create, "verify": verify, "pair": pair, "edge": edge}

if __name__ == "__main__":
    p = base_parser(__doc__)
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--superuser", required=True)
    p.add_argument("--node")
    p.add_argument("--name")
    p.add_argument("--node-pubkey")
    p.add_argument("--shutdown", action="store_true")
    p.add_argument("--app-url")
    p.add_argument("--node-pubkey2")
    p.add_argument("--web-port", type=int)
    p.add_argument("--phase", default="all")
    a = p.parse_args()
    run(SCENARIOS[a.scenario], a)
