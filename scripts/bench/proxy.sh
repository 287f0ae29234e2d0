#!/usr/bin/env bash
# Proxy-hop benchmark: the same loadtest scenarios against a router worker
# directly and through a proxy worker of the same node.
#
# Starts one `junction start` with a router worker (WebSocket + RawSocket
# transports) and one proxy worker (WebSocket) whose backend link goes to the
# router's RawSocket transport. Both workers run `shards: 1, pin_cores: false`
# and inherit `taskset -c SERVER_CPU`, so router and proxy share ONE core; the
# load generator runs on LOAD_CPU. Clients use the same transport and
# serializer (WebSocket + CBOR) in both cases:
#   direct:  ws://127.0.0.1:BASE/ws    (router's own WebSocket transport)
#   proxied: ws://127.0.0.1:BASE+2/ws  (proxy → multiplexed link → router RawSocket BASE+1)
# Every comparison alternates direct/proxied ROUNDS times. Router and proxy CPU
# are sampled from /proc/PID/stat around each loadtest run (whole run, warm-up
# included); proxy→router TCP links are counted with `ss` mid-run.
# Writes raw JSON + summary.md to OUT; touches nothing else.
#
# Knobs (environment):
#   ROUNDS (3)  DURATION (6)  WARMUP (2)  SERVER_CPU (1)  LOAD_CPU (0)
#   BASE_PORT (19180)  OUT (target/bench-results/proxy)
#   RATE        fixed pub/sub rate for the latency runs (default: half the
#               median proxied max of the first measurement)
#   JUNCTION_BIN, LOADTEST_BIN  prebuilt binaries (else cargo build --release)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${OUT:-$ROOT/target/bench-results/proxy}
ROUNDS=${ROUNDS:-3}
DUR=${DURATION:-6}
WARM=${WARMUP:-2}
SERVER_CPU=${SERVER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
BASE=${BASE_PORT:-19180}
R_WS=$BASE R_RS=$((BASE + 1)) P_WS=$((BASE + 2))
mkdir -p "$OUT"
# shellcheck source=proxy_common.sh
source "$ROOT/scripts/bench/proxy_common.sh"
log() { echo "[proxy-bench $(date +%H:%M:%S)] $*" >&2; }

for port in $R_WS $R_RS $P_WS; do
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

proxy_node_config "$OUT/config.json" "$R_WS" "$R_RS" "$P_WS"

J_PID=
cleanup() { [[ -n "$J_PID" ]] && kill "$J_PID" 2>/dev/null; wait 2>/dev/null || true; }
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting junction (router + proxy on CPU $SERVER_CPU, load on CPU $LOAD_CPU)"
start_proxy_node "$JUNCTION_BIN" "$OUT/config.json" "$OUT/junction.log" "$SERVER_CPU"
log "router pid $ROUTER_PID, proxy pid $PROXY_PID"
sleep 1

write_meta "$OUT/meta.json" "$ROOT" "$SERVER_CPU" "$LOAD_CPU" "$DUR" "$WARM" "$ROUNDS"

ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
DIRECT=ws://127.0.0.1:$R_WS/ws
PROXIED=ws://127.0.0.1:$P_WS/ws
COMMANDS=$OUT/commands.txt
: > "$COMMANDS"

# run NAME URL LOADTEST-ARGS... : one loadtest run + CPU of both workers + links
run() {
    local name=$1 url=$2
    shift 2
    local args=("$@" -u "$url" --serializer cbor --pid "$ROUTER_PID" --json "$OUT/$name.json")
    echo "taskset -c $LOAD_CPU loadtest -q ${args[*]}" >> "$COMMANDS"
    local r0 p0 t0 r1 p1 t1 rc=0
    r0=$(ticks "$ROUTER_PID") p0=$(ticks "$PROXY_PID") t0=$(date +%s.%N)
    (sleep "$WARM"; ss -Htn state established "( dport = :$R_RS )" | wc -l > "$OUT/$name.links") &
    local ss_pid=$!
    taskset -c "$LOAD_CPU" "$LOADTEST_BIN" -q "${args[@]}" > "$OUT/$name.txt" || rc=$?
    r1=$(ticks "$ROUTER_PID") p1=$(ticks "$PROXY_PID") t1=$(date +%s.%N)
    # Only the link counter: a bare `wait` would wait for junction itself.
    wait "$ss_pid" || true
    [[ $rc -eq 0 || $rc -eq 2 ]] || { cat "$OUT/$name.txt" >&2; exit $rc; }
    python3 - "$OUT/$name.json" "$r0" "$r1" "$p0" "$p1" "$t0" "$t1" "$(cat "$OUT/$name.links")" <<'EOF'
import json, os, sys
f = sys.argv[1]
r0, r1, p0, p1 = map(int, sys.argv[2:6]); t0, t1 = map(float, sys.argv[6:8])
hz = os.sysconf("SC_CLK_TCK"); wall = t1 - t0
d = json.load(open(f))
d["workers"] = {"wall_s": wall, "router_cores": (r1 - r0) / hz / wall,
                "proxy_cores": (p1 - p0) / hz / wall, "backend_links": int(sys.argv[8])}
json.dump(d, open(f, "w"), indent=1)
w = d["workers"]; r = d["results"]
rate = r.get("throughput_events_per_s") or r.get("throughput_calls_per_s") or r.get("throughput_sessions_per_s") or 0
lat = r.get("latency", {})
print(f"  {os.path.basename(f)[:-5]}: {rate:,.0f}/s p50 {lat.get('p50_us')} p99 {lat.get('p99_us')} "
      f"router {w['router_cores']:.2f} proxy {w['proxy_cores']:.2f} loadgen {d['loadgen']['cpu_cores']} cores, "
      f"links {w['backend_links']}, errors {r.get('errors')}", file=sys.stderr)
EOF
}

# pairs NAME LOADTEST-ARGS... : ROUNDS × (direct, proxied), alternating
pairs() {
    local name=$1 i
    shift
    for ((i = 1; i <= ROUNDS; i++)); do
        run "${name}_direct_$i" "$DIRECT" "$@"
        run "${name}_proxied_$i" "$PROXIED" "$@"
    done
}

DW=(--duration "$DUR" --warmup "$WARM")
log "1. pub/sub 1 → 1 flat out"
pairs pubsub_max pubsub "${DW[@]}" --subscribers 1 --payload-size 64
if [[ -z "${RATE:-}" ]]; then
    RATE=$(python3 -c "
import json,statistics,sys
r=[json.load(open(f'$OUT/pubsub_max_proxied_{i}.json'))['results']['throughput_events_per_s'] for i in range(1,$ROUNDS+1)]
print(int(statistics.median(r)/2))")
fi
echo "$RATE" > "$OUT/rate.txt"
log "1b. pub/sub 1 → 1 at $RATE msg/s (half the median proxied max)"
pairs pubsub_rate pubsub "${DW[@]}" --subscribers 1 --payload-size 64 --rate "$RATE"
log "2. RPC 4 callers × 1 callee, 16 in flight each"
pairs rpc rpc "${DW[@]}" --callers 4 --callees 1 --concurrency 16 --payload-size 64
log "3. connect storm, 1000 sessions held 3 s (links counted during the hold)"
pairs connect connect --sessions 1000 --concurrency 8 --hold 3

meta_end "$OUT/meta.json"

# ---------------------------------------------------------------- summary (medians)
python3 - "$OUT" "$ROUNDS" > "$OUT/summary.md" <<'EOF'
import json, statistics as st, sys
out, rounds = sys.argv[1], int(sys.argv[2])
med = lambda xs: st.median(xs) if xs else float("nan")
def load(name, side):
    return [json.load(open(f"{out}/{name}_{side}_{i}.json")) for i in range(1, rounds + 1)]
def rate(d):
    r = d["results"]
    return r.get("throughput_events_per_s") or r.get("throughput_calls_per_s") or r.get("throughput_sessions_per_s") or 0
m = json.load(open(f"{out}/meta.json"))
print(f"- date {m['date_utc']}, Junction {m['junction_rev']}, {m['rustc']}; load average "
      f"{' '.join(m['loadavg_start'])} → {' '.join(m['loadavg_end'])}; {rounds} rounds per side, medians")
print()
print("| scenario | side | throughput/s (each round) | median | p50 µs | p99 µs | router cores | proxy cores | loadgen cores | links | errors |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
for name in ("pubsub_max", "pubsub_rate", "rpc", "connect"):
    meds = {}
    for side in ("direct", "proxied"):
        ds = load(name, side)
        lat = lambda k: med([d["results"].get("latency", {}).get(k, float("nan")) for d in ds])
        meds[side] = med([rate(d) for d in ds])
        print(f"| {name} | {side} | {' / '.join(f'{rate(d):,.0f}' for d in ds)} | **{meds[side]:,.0f}** | "
              f"{lat('p50_us'):.0f} | {lat('p99_us'):.0f} | "
              f"{med([d['workers']['router_cores'] for d in ds]):.2f} | {med([d['workers']['proxy_cores'] for d in ds]):.2f} | "
              f"{med([d['loadgen']['cpu_cores'] for d in ds]):.2f} | {max(d['workers']['backend_links'] for d in ds)} | "
              f"{sum(d['results'].get('errors', 0) + d['results'].get('lost', 0) for d in ds)} |")
    print(f"| {name} | proxied / direct | | **{meds['proxied'] / meds['direct']:.2f}** | | | | | | | |")
EOF
cat "$OUT/summary.md"
log "done: $OUT"
