#!/usr/bin/env bash
# Router-cluster benchmark: the same loadtest scenarios with every client on
# one router worker ("local") and with the clients split over the workers of
# a router cluster ("cross": publishers/callers on r0, subscribers/callees on
# the others), so the cost of the hop between workers shows.
#
# Starts one `junction start` with three router workers (r0, r1, r2) serving
# realm1, each listing rlinks to all three (full mesh; the self-link is
# parked). Every worker runs `shards: 1, pin_cores: false` and inherits
# `taskset -c SERVER_CPU`, so the whole cluster shares ONE core; the load
# generator runs on LOAD_CPU. Clients and links speak RawSocket; clients use
# msgpack. Router CPU is the sum over the three worker processes
# (`loadtest --pid r0,r1,r2`), in both cases, so idle workers count too.
# Local and cross runs alternate ROUNDS times.
#
# Scenarios:
#   pubsub_max   1 publisher → 1 subscriber, flat out
#   pubsub_rate  the same at a fixed rate (half the median cross maximum)
#   fanout       1 publisher → 8 subscribers (cross: 4 on r1, 4 on r2)
#   fanout_rate  the same at a fixed rate (half the median cross maximum)
#   rpc          4 callers × 1 callee, 16 calls in flight each
#   converge     while a cross pub/sub run is under way, a subscription made
#                on r0 is seen by r1 and r2 (tests/python/cluster.py
#                --scenario converge; needs PYTHON with autobahn, default
#                .venv/bin/python; skipped with a message if missing)
#
# Writes raw JSON + summary.md to OUT; touches nothing else.
#
# Knobs (environment):
#   ROUNDS (3)  DURATION (6)  WARMUP (2)  SERVER_CPU (1)  LOAD_CPU (0)
#   BASE_PORT (19280)  OUT (target/bench-results/cluster)  CONVERGE (10 samples)
#   JUNCTION_BIN, LOADTEST_BIN  prebuilt binaries (else cargo build --release)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$ROOT/target/bench-results/cluster}
ROUNDS=${ROUNDS:-3}
DUR=${DURATION:-6}
WARM=${WARMUP:-2}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
BASE=${BASE_PORT:-19280}
CONVERGE=${CONVERGE:-10}
PYTHON=${PYTHON:-$ROOT/.venv/bin/python}
P0=$BASE P1=$((BASE + 1)) P2=$((BASE + 2))
mkdir -p "$OUT"
rm -rf "$OUT/node"
mkdir -p "$OUT/node"
log() { echo "[cluster-bench $(date +%H:%M:%S)] $*" >&2; }

for port in $P0 $P1 $P2; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is in use; set BASE_PORT" >&2
        exit 1
    fi
done

if [[ -z "${JUNCTION_BIN:-}" || -z "${LOADTEST_BIN:-}" ]]; then
    log "building junction + loadtest (release)"
    (cd "$ROOT" && cargo build --release -p junction -p loadtest)
    TD=${CARGO_TARGET_DIR:-$ROOT/target}
    JUNCTION_BIN=${JUNCTION_BIN:-$TD/release/junction}
    LOADTEST_BIN=${LOADTEST_BIN:-$TD/release/loadtest}
fi

python3 - "$OUT/node/config.json" "$P0" "$P1" "$P2" <<'EOF'
import json, sys
path, ports = sys.argv[1], list(map(int, sys.argv[2:]))
anon = {"anonymous": {"type": "static", "role": "anonymous"}}
opts = {"shards": 1, "pin_cores": False}
allow = {"call": True, "register": True, "publish": True, "subscribe": True}
links = [{"id": f"to-r{i}", "realm": "realm1",
          "transport": {"type": "rawsocket", "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": p}},
          "forward_local_events": True, "forward_remote_events": False,
          "forward_local_invocations": True, "forward_remote_invocations": False}
         for i, p in enumerate(ports)]
workers = [{"type": "router", "id": f"r{i}", "options": opts,
            "realms": [{"name": "realm1", "rlinks": links, "roles": [{"name": "anonymous", "permissions": [
                {"uri": "", "match": "prefix", "allow": allow}]}]}],
            "transports": [{"type": "rawsocket", "serializers": ["msgpack", "json", "cbor"],
                            "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": p}}]}
           for i, p in enumerate(ports)]
json.dump({"version": 2, "controller": {"id": "node1", "options": {}}, "workers": workers},
          open(path, "w"), indent=1)
EOF

J_PID=
cleanup() { [[ -n "$J_PID" ]] && kill "$J_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting junction (3 router workers on CPU $SERVER_CPU, load on CPU $LOAD_CPU)"
taskset -c "$SERVER_CPU" "$JUNCTION_BIN" start --config "$OUT/node/config.json" --log warn > "$OUT/junction.log" 2>&1 &
J_PID=$!
for ((i = 0; i < 300; i++)); do
    grep -q "junction: ready" "$OUT/junction.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "junction: ready" "$OUT/junction.log" || { cat "$OUT/junction.log" >&2; exit 1; }
PIDS=$(sed -n 's/^junction: worker [0-9]* router pid \([0-9]*\).*/\1/p' "$OUT/junction.log" | paste -sd,)
[[ $(tr ',' '\n' <<< "$PIDS" | wc -l) -eq 3 ]] || { echo "expected 3 router pids, got '$PIDS'" >&2; exit 1; }
log "router pids $PIDS"
sleep 1

python3 - "$OUT/meta.json" "$ROOT" "$SERVER_CPU" "$LOAD_CPU" "$DUR" "$WARM" "$ROUNDS" <<'EOF'
import json, subprocess, sys
out, root = sys.argv[1], sys.argv[2]
sh = lambda c: subprocess.run(c, shell=True, capture_output=True, text=True, cwd=root).stdout.strip()
json.dump({"date_utc": sh("date -u '+%Y-%m-%d %H:%M UTC'"),
           "junction_rev": sh("git rev-parse --short HEAD") + (" (+ uncommitted changes)" if sh("git status --porcelain --untracked-files=no") else ""),
           "rustc": sh("rustc --version"), "nproc": sh("nproc"),
           "loadavg_start": open("/proc/loadavg").read().split()[:3],
           "server_cpu": sys.argv[3], "load_cpu": sys.argv[4],
           "duration_s": float(sys.argv[5]), "warmup_s": float(sys.argv[6]), "rounds": int(sys.argv[7])},
          open(out, "w"), indent=1)
EOF

U0=rs://127.0.0.1:$P0 U1=rs://127.0.0.1:$P1 U2=rs://127.0.0.1:$P2
COMMANDS=$OUT/commands.txt
: > "$COMMANDS"

# run NAME LOADTEST-ARGS... : one loadtest run, router CPU summed over the three workers
run() {
    local name=$1 rc=0
    shift
    local args=("$@" --serializer msgpack --pid "$PIDS" --json "$OUT/$name.json")
    echo "taskset -c $LOAD_CPU loadtest -q ${args[*]}" >> "$COMMANDS"
    taskset -c "$LOAD_CPU" "$LOADTEST_BIN" -q "${args[@]}" > "$OUT/$name.txt" || rc=$?
    [[ $rc -eq 0 || $rc -eq 2 ]] || { cat "$OUT/$name.txt" >&2; exit $rc; }
    python3 - "$OUT/$name.json" <<'EOF'
import json, os, sys
d = json.load(open(sys.argv[1])); r = d["results"]; lat = r.get("latency", {})
rate = r.get("throughput_events_per_s") or r.get("throughput_calls_per_s") or 0
per = " + ".join(f"{p['cpu_cores']:.2f}" for p in d["router"]["pids"])
print(f"  {os.path.basename(sys.argv[1])[:-5]}: {rate:,.0f}/s p50 {lat.get('p50_us')} p99 {lat.get('p99_us')} "
      f"router {d['router']['cpu_us_per_msg']} µs/msg ({per} cores), errors {r.get('errors')} lost {r.get('lost')}",
      file=sys.stderr)
EOF
}

# pairs NAME [LOCAL-ARGS] -- [CROSS-ARGS] -- COMMON-ARGS... : ROUNDS × (local, cross)
pairs() {
    local name=$1 i
    shift
    local local_args=() cross_args=()
    while [[ $1 != -- ]]; do local_args+=("$1"); shift; done
    shift
    while [[ $1 != -- ]]; do cross_args+=("$1"); shift; done
    shift
    for ((i = 1; i <= ROUNDS; i++)); do
        run "${name}_local_$i" "$@" "${local_args[@]}"
        run "${name}_cross_$i" "$@" "${cross_args[@]}"
    done
}

DW=(--duration "$DUR" --warmup "$WARM")
log "1. pub/sub 1 → 1 flat out (cross: subscriber on r1)"
pairs pubsub_max -u "$U0" -- -u "$U0" --sub-url "$U1" -- pubsub "${DW[@]}" --subscribers 1 --payload-size 64
if [[ -z "${RATE:-}" ]]; then
    RATE=$(python3 -c "
import json,statistics
r=[json.load(open(f'$OUT/pubsub_max_cross_{i}.json'))['results']['throughput_events_per_s'] for i in range(1,$ROUNDS+1)]
print(int(statistics.median(r)/2))")
fi
echo "$RATE" > "$OUT/rate.txt"
log "1b. pub/sub 1 → 1 at $RATE msg/s (half the median cross max)"
pairs pubsub_rate -u "$U0" -- -u "$U0" --sub-url "$U1" -- pubsub "${DW[@]}" --subscribers 1 --payload-size 64 --rate "$RATE"
log "2. pub/sub 1 → 8 flat out (cross: 4 subscribers on r1, 4 on r2)"
pairs fanout -u "$U0" -- -u "$U0" --sub-url "$U1" --sub-url "$U2" -- pubsub "${DW[@]}" --subscribers 8 --payload-size 64
if [[ -z "${FANOUT_RATE:-}" ]]; then
    FANOUT_RATE=$(python3 -c "
import json,statistics
r=[json.load(open(f'$OUT/fanout_cross_{i}.json'))['results']['publish_rate_per_s'] for i in range(1,$ROUNDS+1)]
print(int(statistics.median(r)/2))")
fi
echo "$FANOUT_RATE" > "$OUT/fanout_rate.txt"
log "2b. pub/sub 1 → 8 at $FANOUT_RATE publications/s (half the median cross max)"
pairs fanout_rate -u "$U0" -- -u "$U0" --sub-url "$U1" --sub-url "$U2" -- pubsub "${DW[@]}" --subscribers 8 --payload-size 64 --rate "$FANOUT_RATE"
log "3. RPC 4 callers × 1 callee, 16 in flight each (cross: callee on r1)"
pairs rpc -u "$U0" -- -u "$U0" --callee-url "$U1" -- rpc "${DW[@]}" --callers 4 --callees 1 --concurrency 16 --payload-size 64

# 4. convergence under load: subscriptions made on r0 during a cross run
if [[ -x "$PYTHON" ]] && "$PYTHON" -c 'import autobahn' 2>/dev/null; then
    log "4. convergence: $CONVERGE subscriptions on r0 while 1 → 8 cross pub/sub runs flat out"
    CDUR=$((CONVERGE * 2 + 10))
    taskset -c "$LOAD_CPU" "$LOADTEST_BIN" -q pubsub --duration "$CDUR" --warmup 1 --subscribers 8 --payload-size 64 \
        -u "$U0" --sub-url "$U1" --sub-url "$U2" --serializer msgpack --pid "$PIDS" --json "$OUT/converge_load.json" \
        > "$OUT/converge_load.txt" &
    LOAD=$!
    sleep 3
    : > "$OUT/converge.jsonl"
    for ((i = 1; i <= CONVERGE; i++)); do
        taskset -c "$LOAD_CPU" "$PYTHON" "$ROOT/tests/python/cluster.py" "$U0" realm1 msgpack --scenario converge \
            --peer "$U1" --peer "$U2" >> "$OUT/converge.jsonl"
        sleep 0.5
    done
    wait "$LOAD" || true
    python3 - "$OUT/converge.jsonl" <<'EOF'
import json, sys
ms = [json.loads(l)["converged_ms"] for l in open(sys.argv[1]) if l.strip()]
print(f"  converged in {min(ms)} … {max(ms)} ms (median {sorted(ms)[len(ms)//2]})", file=sys.stderr)
EOF
else
    log "4. convergence: SKIPPED ($PYTHON has no autobahn; run ./scripts/test.sh once to create .venv)"
fi

python3 -c "import json,sys; m=json.load(open(sys.argv[1])); m['loadavg_end']=open('/proc/loadavg').read().split()[:3]; json.dump(m,open(sys.argv[1],'w'),indent=1)" "$OUT/meta.json"

# ---------------------------------------------------------------- summary (medians)
python3 - "$OUT" "$ROUNDS" > "$OUT/summary.md" <<'EOF'
import json, os, statistics as st, sys
out, rounds = sys.argv[1], int(sys.argv[2])
med = lambda xs: st.median(xs) if xs else float("nan")
def load(name, side):
    return [json.load(open(f"{out}/{name}_{side}_{i}.json")) for i in range(1, rounds + 1)]
def rate(d):
    r = d["results"]
    return r.get("throughput_events_per_s") or r.get("throughput_calls_per_s") or 0
m = json.load(open(f"{out}/meta.json"))
print(f"- date {m['date_utc']}, Junction {m['junction_rev']}, {m['rustc']}; load average "
      f"{' '.join(m['loadavg_start'])} → {' '.join(m['loadavg_end'])}; {rounds} rounds per side, medians")
print()
print("| scenario | side | throughput/s (each round) | median | p50 µs | p99 µs | router CPU-µs per msg | router cores r0 + r1 + r2 | errors + lost |")
print("|---|---|---|---|---|---|---|---|---|")
for name in ("pubsub_max", "pubsub_rate", "fanout", "fanout_rate", "rpc"):
    meds = {}
    for side in ("local", "cross"):
        ds = load(name, side)
        lat = lambda k: med([d["results"].get("latency", {}).get(k, float("nan")) for d in ds])
        meds[side] = (med([rate(d) for d in ds]), med([d["router"]["cpu_us_per_msg"] for d in ds]))
        cores = " + ".join(f"{med([d['router']['pids'][k]['cpu_cores'] for d in ds]):.2f}" for k in range(3))
        print(f"| {name} | {side} | {' / '.join(f'{rate(d):,.0f}' for d in ds)} | **{meds[side][0]:,.0f}** | "
              f"{lat('p50_us'):.0f} | {lat('p99_us'):.0f} | {meds[side][1]:.2f} | {cores} | "
              f"{sum(d['results'].get('errors', 0) + d['results'].get('lost', 0) for d in ds)} |")
    print(f"| {name} | cross / local | | **{meds['cross'][0] / meds['local'][0]:.2f}** | | | "
          f"**{meds['cross'][1] / meds['local'][1]:.2f}** | | |")
conv = f"{out}/converge.jsonl"
if os.path.exists(conv):
    ms = sorted(json.loads(l)["converged_ms"] for l in open(conv) if l.strip())
    d = json.load(open(f"{out}/converge_load.json"))
    print()
    print(f"Convergence under load: {len(ms)} subscriptions made on r0 while 1 → 8 cross pub/sub ran at "
          f"{rate(d):,.0f} events/s (errors + lost {d['results'].get('errors', 0) + d['results'].get('lost', 0)}): "
          f"seen by r1 and r2 after {ms[0]} … {ms[-1]} ms, median {ms[len(ms) // 2]} ms (polling included).")
EOF
cat "$OUT/summary.md"
log "done: $OUT"
