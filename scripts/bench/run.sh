#!/usr/bin/env bash
# Comparative benchmark: Junction vs Crossbar.io vs NATS vs the bare-TCP floor.
#
# Installs what it needs (Crossbar.io in a venv, nats-server from Debian,
# matplotlib in a venv for the plots), starts every server on loopback on
# free ports (never 8080/8081), runs the standard scenarios with `loadtest`
# and `tcp-floor`, writes raw JSON to target/bench-results/ and regenerates
# the generated part of docs/benchmarks.md plus docs/img/bench-*.svg.
# Everything it starts is stopped on exit. Takes about 10 minutes.
#
# Knobs (environment):
#   BENCH_DURATION (6)  measured seconds per run     BENCH_WARMUP (2)
#   BENCH_ROUNDS (2)    A/B rounds per --compare     BENCH_OUT (target/bench-results)
#   CBVENV (/tmp/cbvenv) Crossbar venv (created when missing)
#   PLOTVENV ($BENCH_OUT/plotvenv) matplotlib venv (created when missing)
#   JUNCTION_BIN, LOADTEST_BIN, FLOOR_BIN  prebuilt binaries (else cargo build --release)
#   ROUTER_CPU (1), LOAD_CPU (0)  taskset CPUs: every server is pinned to ROUTER_CPU,
#                                  every load generator to LOAD_CPU
#   SHARDS (1)          Junction options.shards
#   BASE_PORT (18400)   ports BASE+80/81 Junction, +90/91 Crossbar, +22 NATS, +98/99 floor
#   JUNCTION_REV        what to report as Junction's revision (default: git HEAD of this tree)
#   NO_DOCS=1           do not touch docs/ (results and plots stay in BENCH_OUT)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${BENCH_OUT:-$ROOT/target/bench-results}
DUR=${BENCH_DURATION:-6}
WARM=${BENCH_WARMUP:-2}
ROUNDS=${BENCH_ROUNDS:-2}
CBVENV=${CBVENV:-/tmp/cbvenv}
PLOTVENV=${PLOTVENV:-$OUT/plotvenv}
ROUTER_CPU=${ROUTER_CPU:-1}
LOAD_CPU=${LOAD_CPU:-0}
SHARDS=${SHARDS:-1}
BASE=${BASE_PORT:-18400}
J_WS=$((BASE + 80)) J_RS=$((BASE + 81)) CB_WS=$((BASE + 90)) CB_RS=$((BASE + 91))
NATS_PORT=$((BASE + 22)) FLOOR_B=$((BASE + 98)) FLOOR_F=$((BASE + 99))
RUN=$OUT/run
mkdir -p "$OUT" "$RUN"
exec 2> >(tee "$OUT/run.log" >&2)
log() { echo "[bench $(date +%H:%M:%S)] $*" >&2; }

# ---------------------------------------------------------------- cleanup
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    sleep 1
    for p in "${PIDS[@]}"; do
        kill -9 "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for port in $J_WS $J_RS $CB_WS $CB_RS $NATS_PORT $FLOOR_B $FLOOR_F; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is in use; set BASE_PORT" >&2
        exit 1
    fi
done

# ---------------------------------------------------------------- build / install
if [[ -z "${JUNCTION_BIN:-}" || -z "${LOADTEST_BIN:-}" || -z "${FLOOR_BIN:-}" ]]; then
    log "building junction + loadtest (release)"
    (cd "$ROOT" && cargo build --release -p junction -p loadtest)
    TD=${CARGO_TARGET_DIR:-$ROOT/target}
    JUNCTION_BIN=${JUNCTION_BIN:-$TD/release/junction}
    LOADTEST_BIN=${LOADTEST_BIN:-$TD/release/loadtest}
    FLOOR_BIN=${FLOOR_BIN:-$TD/release/tcp-floor}
fi
if [[ ! -x "$CBVENV/bin/crossbar" ]]; then
    log "installing Crossbar.io into $CBVENV"
    python3 -m venv "$CBVENV"
    "$CBVENV/bin/pip" install -q crossbar
fi
if ! command -v nats-server >/dev/null; then
    log "installing nats-server"
    if [[ $(id -u) -eq 0 ]]; then SUDO=; else SUDO=sudo; fi
    $SUDO apt-get update -q && $SUDO apt-get install -y -q nats-server
fi
if [[ ! -x "$PLOTVENV/bin/python" ]] || ! "$PLOTVENV/bin/python" -c 'import matplotlib' 2>/dev/null; then
    log "installing matplotlib into $PLOTVENV"
    python3 -m venv "$PLOTVENV"
    "$PLOTVENV/bin/pip" install -q matplotlib
fi

# ---------------------------------------------------------------- configs
# Junction: its embedded default (realm1, role anonymous with everything
# allowed, WebSocket + RawSocket transports, all serializers) on our ports.
# Crossbar: the same document, minus what Crossbar rejects: flatbuffers
# (not offered by Crossbar on these transports), auto_ping_size 4 (Crossbar
# wants 12..125) and the RawSocket max_message_size (Crossbar wants it under
# "options").
mkdir -p "$RUN/junction" "$RUN/crossbar/.crossbar"
"$JUNCTION_BIN" default-config > "$RUN/default-config.json"
python3 - "$RUN" "$SHARDS" "$J_WS" "$J_RS" "$CB_WS" "$CB_RS" <<'EOF'
import json, sys, copy
run, shards, jws, jrs, cbws, cbrs = sys.argv[1], int(sys.argv[2]), *map(int, sys.argv[3:])
base = json.load(open(f"{run}/default-config.json"))
def ports(c, ws, rs):
    w = c["workers"][0]
    web, raw = w["transports"]
    web["endpoint"]["port"] = ws
    web["paths"]["ws"]["url"] = f"ws://127.0.0.1:{ws}/ws"
    raw["endpoint"]["port"] = rs
    return w, web, raw
j = copy.deepcopy(base)
w, _, _ = ports(j, jws, jrs)
w["options"] = {"shards": shards, "pin_cores": True}
json.dump(j, open(f"{run}/junction/config.json", "w"), indent=1)
c = copy.deepcopy(base)
w, web, raw = ports(c, cbws, cbrs)
opts = web["paths"]["ws"]["options"]
opts["auto_ping_size"] = max(12, opts.get("auto_ping_size", 12))
for t in (web["paths"]["ws"], raw):
    t["serializers"] = [s for s in t["serializers"] if s != "flatbuffers"]
if "max_message_size" in raw:
    raw.setdefault("options", {})["max_message_size"] = raw.pop("max_message_size")
json.dump(c, open(f"{run}/crossbar/.crossbar/config.json", "w"), indent=1)
EOF

wait_for() { # wait_for FILE PATTERN SECONDS
    local i
    for ((i = 0; i < $3 * 10; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    echo "timed out waiting for '$2' in $1:" >&2
    tail -20 "$1" >&2
    exit 1
}

# ---------------------------------------------------------------- start servers
log "starting junction (shards=$SHARDS, CPU $ROUTER_CPU)"
taskset -c "$ROUTER_CPU" "$JUNCTION_BIN" start --config "$RUN/junction/config.json" --log warn \
    > "$RUN/junction.log" 2>&1 &
J_PID=$!
PIDS+=("$J_PID")
wait_for "$RUN/junction.log" "junction: ready" 30

log "starting crossbar (CPU $ROUTER_CPU)"
(cd "$RUN/crossbar" && exec taskset -c "$ROUTER_CPU" "$CBVENV/bin/crossbar" start \
    --cbdir "$RUN/crossbar/.crossbar" > "$RUN/crossbar.log" 2>&1) &
CB_CTL=$!
PIDS+=("$CB_CTL")
wait_for "$RUN/crossbar.log" "configured and ready" 90
CB_PID=$(pgrep -P "$CB_CTL" -f crossbar-worker | head -1 || true)
if [[ -z "$CB_PID" ]]; then # exec'd controller may sit one level down
    CB_PID=$(pgrep -f 'crossbar-worker \[crossbar.worker.router' | while read -r p; do
        anc=$(ps -o ppid= "$p" | tr -d ' ')
        [[ $(ps -o ppid= "$anc" | tr -d ' ') == "$CB_CTL" || "$anc" == "$CB_CTL" ]] && echo "$p"
    done | head -1)
fi
[[ -n "$CB_PID" ]] || { echo "cannot find the Crossbar router worker" >&2; exit 1; }

log "starting nats-server and tcp-floor (CPU $ROUTER_CPU)"
taskset -c "$ROUTER_CPU" nats-server -a 127.0.0.1 -p "$NATS_PORT" > "$RUN/nats.log" 2>&1 &
NATS_PID=$!
PIDS+=("$NATS_PID")
taskset -c "$ROUTER_CPU" "$FLOOR_BIN" serve --listen "127.0.0.1:$FLOOR_B" --mode batched > "$RUN/floor-b.log" 2>&1 &
FB_PID=$!
PIDS+=("$FB_PID")
taskset -c "$ROUTER_CPU" "$FLOOR_BIN" serve --listen "127.0.0.1:$FLOOR_F" --mode per-frame > "$RUN/floor-f.log" 2>&1 &
FF_PID=$!
PIDS+=("$FF_PID")
wait_for "$RUN/floor-b.log" ready 10
wait_for "$RUN/floor-f.log" ready 10
sleep 1

# ---------------------------------------------------------------- versions / machine
python3 - "$OUT/meta.json" <<EOF
import json, subprocess, sys, platform
def sh(c):
    try: return subprocess.run(c, shell=True, capture_output=True, text=True, timeout=60).stdout.strip()
    except Exception as e: return f"? ({e})"
cpu = next((l.split(':',1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), '?')
json.dump({
  "date_utc": sh("date -u '+%Y-%m-%d %H:%M UTC'"),
  "junction_rev": "${JUNCTION_REV:-}" or sh("cd '$ROOT' && git rev-parse --short HEAD") + (" (+ uncommitted changes)" if sh("cd '$ROOT' && git status --porcelain --untracked-files=no") else ""),
  "junction_bin": "$JUNCTION_BIN",
  "crossbar": sh("'$CBVENV/bin/pip' show crossbar | sed -n 's/^Version: //p'"),
  "python": sh("'$CBVENV/bin/python' --version"),
  "nats_server": sh("nats-server --version"),
  "rustc": sh("rustc --version"),
  "nproc": sh("nproc"), "cpu": cpu, "kernel": platform.release(),
  "loadavg_start": open('/proc/loadavg').read().split()[:3],
  "shards": $SHARDS, "router_cpu": $ROUTER_CPU, "load_cpu": $LOAD_CPU,
  "duration_s": $DUR, "warmup_s": $WARM, "rounds": $ROUNDS,
}, open(sys.argv[1], "w"), indent=1)
EOF

# ---------------------------------------------------------------- scenarios
LT=(taskset -c "$LOAD_CPU" "$LOADTEST_BIN" -q)
DW=(--duration "$DUR" --warmup "$WARM")
FL=(taskset -c "$LOAD_CPU" "$FLOOR_BIN" load --duration "$DUR" --warmup "$WARM")
JWS=ws://127.0.0.1:$J_WS/ws
CBWS=ws://127.0.0.1:$CB_WS/ws
CMP=(--compare "$CBWS" --compare-pid "$CB_PID" --rounds "$ROUNDS" --pid "$J_PID")
SER=cbor
lt() { # lt NAME ARGS... : one loadtest run, JSON to $OUT/NAME.json
    local name=$1
    shift
    log "$name: loadtest $*"
    "${LT[@]}" "$@" --json "$OUT/$name.json" --format table > "$OUT/$name.txt" || {
        rc=$?
        [[ $rc -eq 2 ]] && log "$name: completed with errors (see $OUT/$name.txt)" || exit $rc
    }
    tail -n 4 "$OUT/$name.txt" >&2
}
fl() {
    local name=$1
    shift
    log "$name: tcp-floor load $*"
    "${FL[@]}" "$@" --json "$OUT/$name.json" | tee "$OUT/$name.txt" >&2
}
rate_of() { # rate_of FILE : mean B (Crossbar) publish rate over rounds, halved, integer
    python3 -c "
import json,sys; d=json.load(open(sys.argv[1]))
r=[x['b']['results']['publish_rate_per_s'] for x in d['rounds']]
print(max(1, int(sum(r)/len(r)/2)))" "$1"
}
a_rate_of() { # mean publish rate of the A side or a single run
    python3 -c "
import json,sys; d=json.load(open(sys.argv[1]))
r=[x['a']['results']['publish_rate_per_s'] for x in d['rounds']] if 'rounds' in d else [d['results']['publish_rate_per_s']]
print(max(1, int(sum(r)/len(r))))" "$1"
}

# Junction vs Crossbar, WebSocket + CBOR, A/B alternation.
lt pubsub_1x1 pubsub -u "$JWS" "${DW[@]}" --serializer $SER --subscribers 1 --payload-size 64 "${CMP[@]}"
lt pubsub_1x100 pubsub -u "$JWS" "${DW[@]}" --serializer $SER --subscribers 100 --payload-size 64 "${CMP[@]}"
lt rpc_4x1 rpc -u "$JWS" "${DW[@]}" --serializer $SER --callers 4 --callees 1 --concurrency 16 --payload-size 64 "${CMP[@]}"
HALF=$(rate_of "$OUT/pubsub_1x1.json")
log "half of Crossbar's 1→1 max publish rate: $HALF msg/s"
echo "$HALF" > "$OUT/half_rate.txt"
lt latency_1x1 pubsub -u "$JWS" "${DW[@]}" --serializer $SER --subscribers 1 --payload-size 64 --rate "$HALF" "${CMP[@]}"
lt connect connect -u "$JWS" --serializer $SER --sessions 1000 --concurrency 8 --hold 1 "${CMP[@]}"

# The floor: Junction over RawSocket + msgpack (same 4-byte framing as the
# floor) vs tcp-floor serve, same fan-outs; floor body = Junction's EVENT size.
lt floor_junction_1x1 pubsub -u "rs://127.0.0.1:$J_RS" "${DW[@]}" --serializer msgpack --subscribers 1 --payload-size 64 --pid "$J_PID"
lt floor_junction_1x100 pubsub -u "rs://127.0.0.1:$J_RS" "${DW[@]}" --serializer msgpack --subscribers 100 --payload-size 64 --pid "$J_PID"
EV=${FLOOR_FRAME:-100} # ≈ size of the msgpack EVENT Junction delivers for a 64-byte payload
for n in 1 100; do
    R=$(a_rate_of "$OUT/floor_junction_1x$n.json")
    fl floor_batched_1x$n --addr "127.0.0.1:$FLOOR_B" --subscribers $n --size "$EV" --pid "$FB_PID"
    fl floor_batched_1x${n}_matched --addr "127.0.0.1:$FLOOR_B" --subscribers $n --size "$EV" --rate "$R" --burst --pid "$FB_PID"
    fl floor_perframe_1x${n}_matched --addr "127.0.0.1:$FLOOR_F" --subscribers $n --size "$EV" --rate "$R" --burst --pid "$FF_PID"
done

# NATS: same 1→N shapes with tcp-floor's NATS client; 64-byte payload + 16-byte stamp.
fl nats_1x1 --proto nats --addr "127.0.0.1:$NATS_PORT" --subscribers 1 --size 80 --pid "$NATS_PID"
fl nats_1x100 --proto nats --addr "127.0.0.1:$NATS_PORT" --subscribers 100 --size 80 --pid "$NATS_PID"
fl nats_latency_1x1 --proto nats --addr "127.0.0.1:$NATS_PORT" --subscribers 1 --size 80 --rate "$HALF" --pid "$NATS_PID"

python3 -c "import json,sys; m=json.load(open(sys.argv[1])); m['loadavg_end']=open('/proc/loadavg').read().split()[:3]; json.dump(m,open(sys.argv[1],'w'),indent=1)" "$OUT/meta.json"

# ---------------------------------------------------------------- report
if [[ "${NO_DOCS:-}" == 1 ]]; then
    "$PLOTVENV/bin/python" "$ROOT/scripts/bench/report.py" "$OUT" "$OUT/benchmarks.md" "$OUT/img"
else
    "$PLOTVENV/bin/python" "$ROOT/scripts/bench/report.py" "$OUT" "$ROOT/docs/benchmarks.md" "$ROOT/docs/img"
fi
log "done: $OUT"
