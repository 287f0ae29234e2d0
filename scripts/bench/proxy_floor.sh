#!/usr/bin/env bash
# The floor of a proxy hop: Junction's proxy worker against the simplest
# possible proxy, a byte relay (`tcp-floor relay`: one thread, epoll, one
# upstream TCP connection per client, every read written unchanged to the
# other side), in the same scenarios and on the same core.
#
# One `junction start` runs a router worker (WebSocket BASE, RawSocket BASE+1)
# and a proxy worker (WebSocket BASE+2, one RawSocket link to BASE+1); the
# relay listens on BASE+3 and relays each client connection to the router's
# WebSocket transport BASE. Router, proxy and relay all run on SERVER_CPU
# (`shards: 1, pin_cores: false`), the load generator on LOAD_CPU, clients
# speak WebSocket + CBOR in every case. Each scenario alternates proxy / relay
# ROUNDS times; CPU per call or event of the router and of the hop are the
# `loadtest --pid ROUTER,HOP` figures over the measurement window only.
# Writes raw JSON + summary.md to OUT; touches nothing else.
#
# Knobs (environment):
#   ROUNDS (6)  DURATION (5)  WARMUP (2)  SERVER_CPU (1)  LOAD_CPU (0)
#   BASE_PORT (19280)  OUT (target/bench-results/proxy-floor)
#   JUNCTION_BIN, LOADTEST_BIN, FLOOR_BIN  prebuilt binaries (else cargo build --release)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$ROOT/target/bench-results/proxy-floor}
ROUNDS=${ROUNDS:-6}
DUR=${DURATION:-5}
WARM=${WARMUP:-2}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
BASE=${BASE_PORT:-19280}
R_WS=$BASE R_RS=$((BASE + 1)) P_WS=$((BASE + 2)) F_WS=$((BASE + 3))
mkdir -p "$OUT"
# shellcheck source=proxy_common.sh
source "$ROOT/scripts/bench/proxy_common.sh"
log() { echo "[proxy-floor $(date +%H:%M:%S)] $*" >&2; }

for port in $R_WS $R_RS $P_WS $F_WS; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is in use; set BASE_PORT" >&2
        exit 1
    fi
done

if [[ -z "${JUNCTION_BIN:-}" || -z "${LOADTEST_BIN:-}" || -z "${FLOOR_BIN:-}" ]]; then
    log "building junction + loadtest + tcp-floor (release)"
    (cd "$ROOT" && cargo build --release -p junction -p loadtest)
    TD=${CARGO_TARGET_DIR:-$ROOT/target}
    JUNCTION_BIN=${JUNCTION_BIN:-$TD/release/junction}
    LOADTEST_BIN=${LOADTEST_BIN:-$TD/release/loadtest}
    FLOOR_BIN=${FLOOR_BIN:-$TD/release/tcp-floor}
fi

proxy_node_config "$OUT/config.json" "$R_WS" "$R_RS" "$P_WS"

J_PID= F_PID=
cleanup() {
    [[ -n "$J_PID" ]] && kill "$J_PID" 2>/dev/null
    [[ -n "$F_PID" ]] && kill "$F_PID" 2>/dev/null
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting junction (router + proxy) and the relay on CPU $SERVER_CPU, load on CPU $LOAD_CPU"
start_proxy_node "$JUNCTION_BIN" "$OUT/config.json" "$OUT/junction.log" "$SERVER_CPU"
taskset -c "$SERVER_CPU" "$FLOOR_BIN" relay --listen "127.0.0.1:$F_WS" --upstream "127.0.0.1:$R_WS" > "$OUT/relay.log" 2>&1 &
F_PID=$!
wait_for_line "$OUT/relay.log" "relay ready"
log "router pid $ROUTER_PID, proxy pid $PROXY_PID, relay pid $F_PID"
sleep 1

write_meta "$OUT/meta.json" "$ROOT" "$SERVER_CPU" "$LOAD_CPU" "$DUR" "$WARM" "$ROUNDS"

COMMANDS=$OUT/commands.txt
: > "$COMMANDS"
# run NAME PORT HOP_PID LOADTEST-ARGS...
run() {
    local name=$1 port=$2 hop=$3 rc=0
    shift 3
    local args=("$@" -u "ws://127.0.0.1:$port/ws" --serializer cbor --pid "$ROUTER_PID,$hop" --json "$OUT/$name.json")
    echo "taskset -c $LOAD_CPU loadtest -q ${args[*]}" >> "$COMMANDS"
    taskset -c "$LOAD_CPU" "$LOADTEST_BIN" -q "${args[@]}" > "$OUT/$name.txt" || rc=$?
    [[ $rc -eq 0 || $rc -eq 2 ]] || { cat "$OUT/$name.txt" >&2; exit $rc; }
    python3 - "$OUT/$name.json" <<'PY'
import json, os, sys
d = json.load(open(sys.argv[1])); r = d["results"]; w = d["router"]["window"]["pids"]
rate = r.get("throughput_calls_per_s") or r.get("throughput_events_per_s") or 0
print(f"  {os.path.basename(sys.argv[1])[:-5]}: {rate:,.0f}/s p50 {r['latency']['p50_us']} µs, "
      f"router {w[0]['cpu_us_per_msg']} hop {w[1]['cpu_us_per_msg']} CPU-µs per message, errors {r.get('errors')}",
      file=sys.stderr)
PY
}
# pairs NAME LOADTEST-ARGS... : ROUNDS × (proxy, relay), alternating
pairs() {
    local name=$1 i
    shift
    for ((i = 1; i <= ROUNDS; i++)); do
        run "${name}_proxy_$i" "$P_WS" "$PROXY_PID" "$@"
        run "${name}_relay_$i" "$F_WS" "$F_PID" "$@"
    done
}

DW=(--duration "$DUR" --warmup "$WARM")
log "1. RPC 4 callers × 1 callee, 16 in flight each, 64 B"
pairs rpc rpc "${DW[@]}" --callers 4 --callees 1 --concurrency 16 --payload-size 64
log "2. pub/sub 1 → 1 flat out, 64 B"
pairs pubsub pubsub "${DW[@]}" --subscribers 1 --payload-size 64

meta_end "$OUT/meta.json"

python3 - "$OUT" "$ROUNDS" > "$OUT/summary.md" <<'PY'
import json, statistics as st, sys
out, rounds = sys.argv[1], int(sys.argv[2])
m = json.load(open(f"{out}/meta.json"))
print(f"- date {m['date_utc']}, Junction {m['junction_rev']}, {m['rustc']}; load average "
      f"{' '.join(m['loadavg_start'])} → {' '.join(m['loadavg_end'])}; {rounds} alternating rounds per side")
print()
print("| scenario | hop | throughput/s (median) | p50 µs (median) | router CPU-µs per message (each round) | hop CPU-µs per message (each round) | hop median | errors |")
print("|---|---|---|---|---|---|---|---|")
for name, unit in (("rpc", "call"), ("pubsub", "event")):
    for side, label in (("proxy", "Junction proxy worker"), ("relay", "byte relay (floor)")):
        ds = [json.load(open(f"{out}/{name}_{side}_{i}.json")) for i in range(1, rounds + 1)]
        rate = lambda d: d["results"].get("throughput_calls_per_s") or d["results"].get("throughput_events_per_s") or 0
        w = lambda d, k: d["router"]["window"]["pids"][k]["cpu_us_per_msg"]
        print(f"| {name} (per {unit}) | {label} | {st.median(rate(d) for d in ds):,.0f} | "
              f"{st.median(d['results']['latency']['p50_us'] for d in ds):.0f} | "
              f"{' / '.join(f'{w(d, 0):.2f}' for d in ds)} | {' / '.join(f'{w(d, 1):.2f}' for d in ds)} | "
              f"**{st.median(w(d, 1) for d in ds):.2f}** | {sum(d['results'].get('errors', 0) for d in ds)} |")
PY
cat "$OUT/summary.md"
log "done: $OUT"
