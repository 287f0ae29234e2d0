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

    master.py URL REALM SERIALIZER --superuser SEED --scenario create --name N
        Creates management realm N and pairs nothing; prints its oid.

    master.py URL REALM SERIALIZER --superuser SEED --scenario verify --name N
        Checks that management realm N exists and can be joined as owner.

URL is the master's ws:// management transport, REALM the global realm;
SEED is an Ed25519 private seed (64 hex digits).
"""

import asyncio

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
    started = await call(m, "remote.router.start_router_realm", oid, w, "rlm_tenant2", {"name": "tenant2", "roles": [role]})
    out["started_id"] = started["id"]
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


SCENARIOS = {"flow": flow, "create": create, "verify": verify, "pair": pair, "edge": edge}

if __name__ == "__main__":
    p = base_parser(__doc__)
    p.add_argument("--scenario", required=True, choices=sorted(SCENARIOS))
    p.add_argument("--superuser", required=True)
    p.add_argument("--node")
    p.add_argument("--name")
    p.add_argument("--node-pubkey")
    p.add_argument("--shutdown", action="store_true")
    p.add_argument("--app-url")
    a = p.parse_args()
    run(SCENARIOS[a.scenario], a)
