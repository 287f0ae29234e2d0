#!/usr/bin/env python3
"""Idle-connection capacity of a NATS server, for capacity.sh's comparison.

Opens SESSIONS client connections to nats-server (bounded concurrency,
source addresses given with --source, round-robin), each completing the
NATS handshake (INFO from the server, CONNECT + PING, PONG back), holds
them for --hold seconds answering the server's PINGs, closes them, and
samples the server's RSS and descriptors (/proc/PID) before, while held
and --settle seconds after the close. Prints one JSON object with the same
figures `loadtest connect` reports for WAMP routers.

Standard library only (asyncio); the connection rate is this client's,
one Python thread, not the server's limit.
"""

import argparse
import asyncio
import json
import os
import time


def sample(pid):
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return {"rss_kib": rss, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


async def one(host, port, source, timeout):
    r, w = await asyncio.wait_for(
        asyncio.open_connection(host, port, local_addr=(source, 0) if source else None), timeout
    )
    line = await asyncio.wait_for(r.readline(), timeout)
    if not line.startswith(b"INFO "):
        raise RuntimeError(f"expected INFO, got {line[:40]!r}")
    w.write(b'CONNECT {"verbose":false,"pedantic":false,"name":"capacity"}\r\nPING\r\n')
    await w.drain()
    while True:
        line = await asyncio.wait_for(r.readline(), timeout)
        if line.startswith(b"PONG"):
            return r, w
        if line.startswith(b"-ERR") or not line:
            raise RuntimeError(f"refused: {line[:80]!r}")


async def keep_alive(r, w, stop):
    """Answers the server's PINGs until `stop`; True if still connected."""
    while not stop.is_set():
        try:
            line = await asyncio.wait_for(r.readline(), 0.5)
        except asyncio.TimeoutError:
            continue
        if not line:
            return False
        if line.startswith(b"PING"):
            w.write(b"PONG\r\n")
    return True


async def main(a):
    before = sample(a.pid)
    sem = asyncio.Semaphore(a.concurrency)
    conns, errors = [], 0
    sources = a.source or [None]

    async def opener(i):
        nonlocal errors
        async with sem:
            try:
                conns.append(await one(a.host, a.port, sources[i % len(sources)], a.timeout))
            except (OSError, RuntimeError, asyncio.TimeoutError):
                errors += 1

    t0 = time.monotonic()
    await asyncio.gather(*(opener(i) for i in range(a.sessions)))
    storm = time.monotonic() - t0
    stop = asyncio.Event()
    keepers = [asyncio.ensure_future(keep_alive(r, w, stop)) for r, w in conns]
    await asyncio.sleep(a.hold)
    held = sample(a.pid)
    stop.set()
    alive = sum(await asyncio.gather(*keepers))
    for _, w in conns:
        w.close()
    await asyncio.sleep(a.settle)
    after = sample(a.pid)
    n = max(len(conns), 1)
    print(json.dumps({
        "server": "nats",
        "sessions": len(conns),
        "failed": errors,
        "alive_after_hold": alive,
        "storm_s": round(storm, 2),
        "setup_per_s": round(len(conns) / storm) if storm > 0 else None,
        "kib_per_session": round((held["rss_kib"] - before["rss_kib"]) / n, 2),
        "fds_per_session": round((held["fds"] - before["fds"]) / n, 2),
        "rss_kib": {"before": before["rss_kib"], "held": held["rss_kib"], "after_close": after["rss_kib"]},
        "fds": {"before": before["fds"], "held": held["fds"], "after_close": after["fds"]},
    }))


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--pid", type=int, required=True, help="the nats-server process")
    p.add_argument("--sessions", type=int, default=10000)
    p.add_argument("--concurrency", type=int, default=256)
    p.add_argument("--source", action="append", help="local source address (repeat for several)")
    p.add_argument("--hold", type=float, default=8)
    p.add_argument("--settle", type=float, default=10)
    p.add_argument("--timeout", type=float, default=20)
    asyncio.run(main(p.parse_args()))
