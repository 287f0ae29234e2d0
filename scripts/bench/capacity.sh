#!/usr/bin/env bash
# Session capacity: idle sessions held, bytes and descriptors per session,
# setup rate, memory after close, over repeated storms.
#
#   A. One router worker (2 shards), clients direct: DIRECT sessions per
#      storm (default 19,500: one descriptor per session, so one process can
#      hold at most its open-files limit less a reserve), RawSocket and
#      WebSocket, STORMS storms in a row (memory after each close).
#   B. TOTAL sessions (default 100,000) on one node: PROXIES proxy workers
#      (default 6, one shared port, SO_REUSEPORT) in front of one router
#      worker, PROXIES loadtest processes from source addresses 127.0.0.2..,
#      because this machine's hard open-files limit (ulimit -Hn) caps every
#      process; the router holds the sessions over a few proxy links.
#   C. The same storm against Crossbar.io (one router worker, RawSocket +
#      msgpack, anonymous): PEER_SESSIONS sessions (default 10,000) held and
#      closed with `loadtest connect --pid` on the router worker. Crossbar is
#      installed into CBVENV (default /tmp/cbvenv) when missing.
#   N. NATS (nats-server from Debian, installed when missing): PEER_SESSIONS
#      idle client connections (INFO, CONNECT, PING/PONG) held and closed by
#      scripts/bench/nats_connect.py, the server's RSS and fds sampled the
#      same way. Not WAMP sessions: the floor of what a broker's idle
#      connection costs.
#   PARTS (default AB) picks the parts: e.g. PARTS=ACN.
#
# Output: $OUT (default target/bench-results/capacity): one loadtest JSON per
# run and summary.txt. Needs release builds (built if JUNCTION_BIN and
# LOADTEST_BIN are not set).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/target/bench-results/capacity}
DIRECT=${DIRECT:-19500}
STORMS=${STORMS:-3}
TOTAL=${TOTAL:-100000}
PROXIES=${PROXIES:-6}
HOLD=${HOLD:-8}
# Seconds after the close before "after close" is sampled (parts A and B):
# routers and proxies trim their freed memory when the drop is seen (within
# 2 s) and again 1, 3, 6, 10 and 20 s later.
SETTLE=${SETTLE:-25}
PARTS=${PARTS:-AB}
PEER_SESSIONS=${PEER_SESSIONS:-10000}
CBVENV=${CBVENV:-/tmp/cbvenv}
BASE_PORT=${BASE_PORT:-19400}
mkdir -p "$OUT"
log() { echo "capacity.sh: $*" >&2; }

if [[ -z "${JUNCTION_BIN:-}" || -z "${LOADTEST_BIN:-}" ]]; then
    log "building junction + loadtest (release)"
    (cd "$ROOT" && cargo build --release -p junction -p loadtest)
    TD=${CARGO_TARGET_DIR:-$ROOT/target}
    JUNCTION_BIN=${JUNCTION_BIN:-$TD/release/junction}
    LOADTEST_BIN=${LOADTEST_BIN:-$TD/release/loadtest}
fi

RS=$BASE_PORT WS=$((BASE_PORT + 1)) LINK=$((BASE_PORT + 2)) FRONT=$((BASE_PORT + 3))
CB_RS=$((BASE_PORT + 4)) NATS_PORT=$((BASE_PORT + 5))

python3 - "$OUT" "$RS" "$WS" "$LINK" "$FRONT" "$PROXIES" <<'EOF'
import json, sys
out, rs, ws, link, front, proxies = sys.argv[1], *map(int, sys.argv[2:])
anon = {"anonymous": {"type": "static", "role": "anonymous"}}
# Heartbeats: every idle session is pinged every 2 s and dropped if it does
# not answer within 6 s (loadtest answers once a second while holding).
ping = {"auto_ping_interval": 2000, "auto_ping_timeout": 6000}
# B: pinged every 5 s, dropped after 20 s unanswered (loadtest answers
# once a second, during its storm too).
ping_b = {"auto_ping_interval": 5000, "auto_ping_timeout": 20000}
allow = {"call": True, "register": True, "publish": True, "subscribe": True}
realm = {"name": "realm1", "roles": [{"name": "anonymous", "permissions": [{"uri": "", "match": "prefix", "allow": allow}]}]}
router = {"type": "router", "id": "router1", "options": {"shards": 2, "pin_cores": False}, "realms": [realm],
          "transports": [
              {"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": rs},
               "serializers": ["msgpack", "json", "cbor"], "auth": anon, "options": ping},
              {"type": "websocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": ws},
               "serializers": ["msgpack", "json", "cbor"], "auth": anon, "options": ping}]}
json.dump({"version": 2, "workers": [router]}, open(f"{out}/direct.json", "w"), indent=1)
link_router = dict(router, transports=[{"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": link},
                                        "serializers": ["msgpack"], "auth": anon}])
workers = [link_router]
for i in range(proxies):
    workers.append({"type": "proxy", "id": f"proxy{i}", "options": {"shards": 1, "pin_cores": False},
                    "routes": {"realm1": {"*": ["router1"]}},
                    "connections": {"router1": {"realm": "realm1", "transport": {"type": "rawsocket",
                        "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": link}}}},
                    "transports": [{"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": front, "shared": True},
                                    "serializers": ["msgpack"], "auth": anon, "options": ping_b}]})
json.dump({"version": 2, "workers": workers}, open(f"{out}/proxied.json", "w"), indent=1)
EOF

J_PID=
PEER_PID=
cleanup() {
    [[ -n "$J_PID" ]] && kill "$J_PID" 2>/dev/null
    [[ -n "$PEER_PID" ]] && kill "$PEER_PID" 2>/dev/null
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # config -> sets J_PID, waits for ready
    "$JUNCTION_BIN" start --config "$1" --log warn > "$OUT/junction.log" 2>&1 &
    J_PID=$!
    for ((i = 0; i < 300; i++)); do
        grep -q "junction: ready" "$OUT/junction.log" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$OUT/junction.log" >&2
    exit 1
}
stop() { kill "$J_PID" 2>/dev/null; wait "$J_PID" 2>/dev/null || true; J_PID=; sleep 0.5; }

{
    echo "capacity.sh $(date -u '+%Y-%m-%d %H:%M UTC'), Junction $(cd "$ROOT" && git rev-parse --short HEAD), $(nproc) cores"
    echo "open files: soft $(ulimit -Sn) hard $(ulimit -Hn); ip_local_port_range $(cat /proc/sys/net/ipv4/ip_local_port_range)"
} > "$OUT/summary.txt"

if [[ $PARTS == *A* ]]; then
log "A. direct: $DIRECT sessions per storm"
start "$OUT/direct.json"
PID=$J_PID
for ((s = 1; s <= STORMS; s++)); do
    "$LOADTEST_BIN" -q connect --sessions "$DIRECT" --concurrency 8 -u "rs://127.0.0.1:$RS" --serializer msgpack \
        --hold "$HOLD" --settle "$SETTLE" --source 127.0.0.2 --source 127.0.0.3 --pid "$PID" --json "$OUT/direct-rs-$s.json" > /dev/null
done
"$LOADTEST_BIN" -q connect --sessions "$DIRECT" --concurrency 8 -u "ws://127.0.0.1:$WS/ws" --serializer msgpack \
    --hold "$HOLD" --settle "$SETTLE" --source 127.0.0.2 --source 127.0.0.3 --pid "$PID" --json "$OUT/direct-ws.json" > /dev/null
stop
fi

if [[ $PARTS == *B* ]]; then
log "B. $TOTAL sessions through $PROXIES proxy workers"
start "$OUT/proxied.json"
sleep 1
PIDS=$(sed -n 's/^junction: worker [0-9]* [a-z]* pid \([0-9]*\).*/\1/p' "$OUT/junction.log" | paste -sd, -)
ROUTER=$(sed -n 's/^junction: worker [0-9]* router pid \([0-9]*\).*/\1/p' "$OUT/junction.log" | head -1)
PER=$((TOTAL / PROXIES))
sample() { # RSS (KiB) and open descriptors summed over the node's worker processes
    local rss=0 fds=0 p
    for p in ${PIDS//,/ }; do
        rss=$((rss + $(awk '/^VmRSS/{print $2}' "/proc/$p/status")))
        fds=$((fds + $(ls "/proc/$p/fd" | wc -l)))
    done
    echo "$rss $fds"
}
rsample() { echo "$(awk '/^VmRSS/{print $2}' "/proc/$ROUTER/status") $(ls "/proc/$ROUTER/fd" | wc -l)"; }
BEFORE=$(sample)
ROUTER_BEFORE=$(rsample)
LT=()
T0=$(date +%s.%N)
for ((i = 0; i < PROXIES; i++)); do
    "$LOADTEST_BIN" -q connect --sessions "$PER" --concurrency 4 -u "rs://127.0.0.1:$FRONT" --serializer msgpack \
        --hold "$((HOLD * 6))" --source "127.0.0.$((i + 2))" --json "$OUT/proxied-$i.json" > /dev/null &
    LT+=($!)
done
# Wait until the router holds them all (its session count, read off the
# node's descriptors is not enough: the router sees them over links).
last=0 still=0
for ((t = 0; t < 600; t++)); do
    n=$(ss -Htn state established "( dport = :$FRONT )" | wc -l)
    ((n >= PER * PROXIES)) && break
    if ((n == last)); then still=$((still + 1)); else still=0; last=$n; fi
    ((still >= 5)) && { log "stuck at $n connections"; break; }
    sleep 2
done
T1=$(date +%s.%N)
sleep "$HOLD"
HELD=$(sample)
ROUTER_HELD=$(rsample)
for p in "${LT[@]}"; do wait "$p"; done
# After close: sampled SETTLE seconds later, as in part A (the processes
# trim their freed memory over the seconds after a storm).
sleep "$SETTLE"
AFTER=$(sample)
ROUTER_AFTER=$(rsample)
stop
echo "B_SAMPLES $BEFORE | $HELD | $AFTER | storm_s $(python3 -c "print($T1 - $T0)")" >> "$OUT/summary.txt"
echo "B_ROUTER $ROUTER_BEFORE | $ROUTER_HELD | $ROUTER_AFTER" >> "$OUT/summary.txt"
fi

if [[ $PARTS == *C* ]]; then
log "C. Crossbar.io: $PEER_SESSIONS sessions"
if [[ ! -x "$CBVENV/bin/crossbar" ]]; then
    log "installing Crossbar.io into $CBVENV"
    python3 -m venv "$CBVENV"
    "$CBVENV/bin/pip" install -q crossbar
fi
mkdir -p "$OUT/crossbar/.crossbar"
python3 - "$OUT/crossbar/.crossbar/config.json" "$CB_RS" <<'EOF'
import json, sys
path, port = sys.argv[1], int(sys.argv[2])
allow = {"call": True, "register": True, "publish": True, "subscribe": True}
json.dump({"version": 2, "controller": {}, "workers": [{"type": "router",
    "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [
        {"uri": "", "match": "prefix", "allow": allow, "disclose": {"caller": False, "publisher": False}, "cache": True}]}]}],
    "transports": [{"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": port},
                    "serializers": ["msgpack", "json", "cbor"], "auth": {"anonymous": {"type": "static", "role": "anonymous"}}}]}]},
    open(path, "w"), indent=1)
EOF
(cd "$OUT/crossbar" && exec "$CBVENV/bin/crossbar" start --cbdir "$OUT/crossbar/.crossbar" > "$OUT/crossbar.log" 2>&1) &
PEER_PID=$!
for ((i = 0; i < 900; i++)); do grep -q "configured and ready" "$OUT/crossbar.log" 2>/dev/null && break; sleep 0.1; done
grep -q "configured and ready" "$OUT/crossbar.log" || { tail -20 "$OUT/crossbar.log" >&2; exit 1; }
CB_PID=$(pgrep -f 'crossbar-worker \[crossbar.worker.router' | while read -r p; do
    anc=$(ps -o ppid= "$p" | tr -d ' ')
    [[ "$anc" == "$PEER_PID" || $(ps -o ppid= "$anc" | tr -d ' ') == "$PEER_PID" ]] && echo "$p"
done | head -1)
[[ -n "$CB_PID" ]] || { echo "cannot find the Crossbar router worker" >&2; exit 1; }
# No heartbeats: Crossbar's RawSocket transport has no auto-ping.
"$LOADTEST_BIN" -q connect --sessions "$PEER_SESSIONS" --concurrency 8 -u "rs://127.0.0.1:$CB_RS" --serializer msgpack \
    --hold "$HOLD" --settle "$SETTLE" --source 127.0.0.2 --source 127.0.0.3 --pid "$CB_PID" --json "$OUT/crossbar-rs.json" > /dev/null || true
kill "$PEER_PID" 2>/dev/null; wait "$PEER_PID" 2>/dev/null || true; PEER_PID=
fi

if [[ $PARTS == *N* ]]; then
log "N. NATS: $PEER_SESSIONS idle connections"
if ! command -v nats-server >/dev/null; then
    log "installing nats-server"
    SUDO=; [[ $(id -u) -ne 0 ]] && SUDO=sudo
    $SUDO apt-get install -y -q nats-server > /dev/null
fi
nats-server -a 127.0.0.1 -p "$NATS_PORT" > "$OUT/nats.log" 2>&1 &
PEER_PID=$!
sleep 1
python3 "$ROOT/scripts/bench/nats_connect.py" --port "$NATS_PORT" --pid "$PEER_PID" --sessions "$PEER_SESSIONS" \
    --source 127.0.0.2 --source 127.0.0.3 --hold "$HOLD" --settle "$SETTLE" > "$OUT/nats.json"
kill "$PEER_PID" 2>/dev/null; wait "$PEER_PID" 2>/dev/null || true; PEER_PID=
fi

python3 - "$OUT" "$PROXIES" "${ROUTER:-}" <<'EOF' >> "$OUT/summary.txt"
import json, sys
out, proxies = sys.argv[1], int(sys.argv[2])
def load(n): return json.load(open(f"{out}/{n}.json"))
def fp(r): return r["results"]["router_footprint"]
print("\nA. one router worker, direct clients (msgpack, anonymous)")
print("| run | sessions | failed | setup/s | router CPU-µs/session | KiB/session held | fds/session | RSS before → held → after close (MiB) |")
print("|---|---|---|---|---|---|---|---|")
runs = [f"direct-rs-{i}" for i in range(1, 10)]
import os
for n in [r for r in runs + ["direct-ws", "crossbar-rs"] if os.path.exists(f"{out}/{r}.json")]:
    r = load(n); res = r["results"]; f = fp(r)
    cpu = r.get("router", {}).get("cpu_us_per_msg")
    rss = f["rss_kib"]
    print(f"| {n} | {res['delivered']} | {res['errors']} | {res['throughput_sessions_per_s']:.0f} | {cpu} | {f['rss_kib_per_session']} | {f['fds_per_session']} | "
          f"{rss['before']/1024:.1f} → {rss['held']/1024:.1f} → {rss['after_close']/1024:.1f} |")
if os.path.exists(f"{out}/nats.json"):
    n = json.load(open(f"{out}/nats.json")); rss = n["rss_kib"]
    print(f"| nats (idle client connections) | {n['sessions']} | {n['failed']} | {n['setup_per_s']} (Python client) | – | "
          f"{n['kib_per_session']} | {n['fds_per_session']} | {rss['before']/1024:.1f} → {rss['held']/1024:.1f} → {rss['after_close']/1024:.1f} |")
if not os.path.exists(f"{out}/proxied-0.json"):
    sys.exit(0)
print(f"\nB. {proxies} proxy workers in front of one router worker")
est = alive = failed = 0
for i in range(proxies):
    r = load(f"proxied-{i}")["results"]; est += r["delivered"]; alive += r["alive_after_hold"]; failed += r["errors"]
line = [l for l in open(f"{out}/summary.txt") if l.startswith("B_SAMPLES")][-1].split()
(b_rss, b_fds, h_rss, h_fds, a_rss, a_fds), storm = [int(line[i]) for i in (1, 2, 4, 5, 7, 8)], float(line[-1])
print(f"sessions established {est} (failed {failed}) in {storm:.1f} s ({est/storm:.0f}/s), alive after the hold (heartbeats answered) {alive}")
print(f"node RSS (router + proxies) {b_rss/1024:.1f} -> {h_rss/1024:.1f} MiB held ({(h_rss-b_rss)/max(est,1):.2f} KiB per session), "
      f"after close {a_rss/1024:.1f} MiB; descriptors {b_fds} -> {h_fds} -> {a_fds}")
line = [l for l in open(f"{out}/summary.txt") if l.startswith("B_ROUTER")][-1].split()
rb, rh, ra = int(line[1]), int(line[4]), int(line[7])
print(f"router worker alone: {rb/1024:.1f} -> {rh/1024:.1f} MiB held ({(rh-rb)/max(est,1):.2f} KiB per session), after close {ra/1024:.1f} MiB; "
      f"descriptors {line[2]} -> {line[5]} -> {line[8]}")
EOF
cat "$OUT/summary.txt"
