#!/usr/bin/env bash
# Soak: mixed traffic with continuous session churn against one node, directly
# and through a proxy worker at the same time, for SOAK_SECONDS (default 30
# minutes), with RSS, descriptors and CPU of every Junction process sampled
# every SAMPLE_SECONDS and plotted.
#
# The node (`junction start`, supervisor + router worker + proxy worker):
#   router1  realm1 and realm2; WebSocket on BASE, RawSocket on BASE+1
#   proxy1   WebSocket on BASE+2; realm2 → router1 over its link (BASE+1)
# Two `loadtest mixed` runs side by side, each in its own realm so their
# sequence checks cannot see each other:
#   direct   ws://127.0.0.1:BASE/ws    realm1, MessagePack
#   proxied  ws://127.0.0.1:BASE+2/ws  realm2, CBOR (the router transcodes nothing:
#            each realm has one serializer; the proxy re-frames)
# Each run: a steady pub/sub load (PUBSUB_RATE msg/s per publisher), one
# caller keeping RPC_CONCURRENCY calls in flight, sequence-numbered events
# (SEQ_RATE/s from each of 2 publishers, every event checked end to end by 2
# long-lived checkers: lost, duplicated, reordered), and a churn of sessions
# (up to CONNECT_RATE/s, sequential) that connect, subscribe, check their
# events' continuity, call an echo procedure, and leave: by GOODBYE, or every
# DROP_EVERY-th by closing its socket without one.
#
# Stalls (STALL_EVERY > 0): from 10 s on, every STALL_EVERY seconds the
# router worker and the proxy worker, in turn, are frozen with SIGSTOP for
# STALL_MS and resumed with SIGCONT: pauses shorter than every heartbeat
# and link timeout, which clients must ride out with nothing lost
# (stalls.csv lists them).
#
# Pass (exit 0) when, for both runs:
#   * no event lost, duplicated or reordered, every echo call answered right,
#     no pub/sub or RPC loss, no errors;
#   * no worker restarted (same pids at the end);
#   * after the load stops, each worker's descriptors are back to their
#     pre-load count (+2);
#   * if the gate is on (SOAK_STRICT=1, the default for runs of 300 s or
#     more): after warm-up, memory and descriptors are flat: the median RSS
#     of the last third of the samples is within max(10 %, 2 MiB) of the
#     first third's, and the last third's most descriptors within 8 of the
#     first third's.
# Writes to OUT: config.json, junction.log, samples.csv (t_s, process, pid,
# rss_kib, fds, cpu_s), direct.json / proxied.json (loadtest reports),
# summary.json, summary.md, soak.svg. Touches nothing else.
#
# Knobs (environment): SOAK_SECONDS (1800) SAMPLE_SECONDS (5) WARMUP_SECONDS
#   (10 % of the run; a third of runs under 300 s) SOAK_STRICT (1 if SOAK_SECONDS >= 300, else 0)
#   BASE_PORT (19280) OUT (target/soak) PUBSUB_RATE (200) RPC_CONCURRENCY (2)
#   SEQ_RATE (100) CONNECT_RATE (20) DROP_EVERY (4) SHARDS (2)
#   STALL_EVERY (0 = no stalls) STALL_MS (1000)
#   JUNCTION_BIN, LOADTEST_BIN prebuilt binaries (else cargo build --release)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SECS=${SOAK_SECONDS:-1800}
EVERY=${SAMPLE_SECONDS:-5}
WARM=${WARMUP_SECONDS:-$(( SECS >= 300 ? SECS / 10 : SECS / 3 ))}
STRICT=${SOAK_STRICT:-$(( SECS >= 300 ? 1 : 0 ))}
BASE=${BASE_PORT:-19280}
OUT=${OUT:-$ROOT/target/soak}
PUBSUB_RATE=${PUBSUB_RATE:-200}
RPC_CONCURRENCY=${RPC_CONCURRENCY:-2}
SEQ_RATE=${SEQ_RATE:-100}
CONNECT_RATE=${CONNECT_RATE:-20}
DROP_EVERY=${DROP_EVERY:-4}
SHARDS=${SHARDS:-2}
STALL_EVERY=${STALL_EVERY:-0}
STALL_MS=${STALL_MS:-1000}
R_WS=$BASE R_RS=$((BASE + 1)) P_WS=$((BASE + 2))
mkdir -p "$OUT"
rm -f "$OUT"/{samples.csv,stalls.csv,direct.json,proxied.json,summary.json,summary.md,soak.svg}
log() { echo "[soak $(date +%H:%M:%S)] $*" >&2; }

[[ "$SECS" =~ ^[0-9]+$ && "$SECS" -ge 5 ]] || { echo "SOAK_SECONDS must be a whole number >= 5" >&2; exit 2; }
[[ "$EVERY" =~ ^[0-9]+$ && "$EVERY" -ge 1 ]] || { echo "SAMPLE_SECONDS must be a whole number >= 1" >&2; exit 2; }
[[ "$STALL_EVERY" =~ ^[0-9]+$ ]] || { echo "STALL_EVERY must be a whole number of seconds (0: off)" >&2; exit 2; }
[[ "$STALL_MS" =~ ^[0-9]+$ && "$STALL_MS" -ge 1 && "$STALL_MS" -le 2500 ]] || { echo "STALL_MS must be 1..2500 (below the 3 s link timeout)" >&2; exit 2; }
for port in $R_WS $R_RS $P_WS; do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        echo "port $port is in use; set BASE_PORT" >&2
        exit 2
    fi
done

if [[ -z "${JUNCTION_BIN:-}" || -z "${LOADTEST_BIN:-}" ]]; then
    log "building junction + loadtest (release)"
    (cd "$ROOT" && cargo build --release -p junction -p loadtest)
    TD=${CARGO_TARGET_DIR:-$ROOT/target}
    JUNCTION_BIN=${JUNCTION_BIN:-$TD/release/junction}
    LOADTEST_BIN=${LOADTEST_BIN:-$TD/release/loadtest}
fi

python3 - "$OUT/config.json" "$R_WS" "$R_RS" "$P_WS" "$SHARDS" <<'EOF'
import json, sys
path, rws, rrs, pws, shards = sys.argv[1], *map(int, sys.argv[2:])
anon = {"anonymous": {"type": "static", "role": "anonymous"}}
allow = {"call": True, "register": True, "publish": True, "subscribe": True}
realm = lambda name: {"name": name, "roles": [{"name": "anonymous", "permissions": [
    {"uri": "", "match": "prefix", "allow": allow}]}]}
ws = {"type": "websocket", "serializers": ["msgpack", "cbor", "json"], "auth": anon,
      "options": {"auto_ping_interval": 10000, "auto_ping_timeout": 5000}}
cfg = {"version": 2, "controller": {"id": "soak"}, "workers": [
    {"type": "router", "id": "router1", "options": {"shards": shards, "pin_cores": False},
     "realms": [realm("realm1"), realm("realm2")],
     "transports": [
         {"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": rws}, "paths": {"ws": ws}},
         {"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": rrs}, "auth": anon}]},
    {"type": "proxy", "id": "proxy1", "options": {"shards": 1, "pin_cores": False},
     "routes": {"realm2": {"*": ["router1"]}},
     "connections": {"router1": {"realm": "realm2", "transport": {"type": "rawsocket",
         "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": rrs}}}},
     "transports": [{"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": pws},
                     "paths": {"ws": ws}}]}]}
json.dump(cfg, open(path, "w"), indent=1)
EOF

J_PID= SAMPLER= D_PID= P_PID= STALLER= ROUTER_PID= PROXY_PID=
cleanup() {
    for p in $STALLER $SAMPLER $D_PID $P_PID; do kill "$p" 2>/dev/null || true; done
    # Never leave a worker frozen.
    for p in $ROUTER_PID $PROXY_PID; do kill -CONT "$p" 2>/dev/null || true; done
    [[ -n "$J_PID" ]] && kill "$J_PID" 2>/dev/null
    wait 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$JUNCTION_BIN" start --config "$OUT/config.json" --log info > "$OUT/junction.log" 2>&1 &
J_PID=$!
for ((i = 0; i < 300; i++)); do
    grep -q "junction: ready" "$OUT/junction.log" 2>/dev/null && break
    kill -0 "$J_PID" 2>/dev/null || break
    sleep 0.1
done
grep -q "junction: ready" "$OUT/junction.log" || { cat "$OUT/junction.log" >&2; exit 1; }
ROUTER_PID=$(sed -n 's/^junction: worker [0-9]* router pid \([0-9]*\).*/\1/p' "$OUT/junction.log" | head -1)
PROXY_PID=$(sed -n 's/^junction: worker [0-9]* proxy pid \([0-9]*\).*/\1/p' "$OUT/junction.log" | head -1)
[[ -n "$ROUTER_PID" && -n "$PROXY_PID" ]] || { echo "worker pids not found in junction.log" >&2; exit 1; }
log "node pid $J_PID, router pid $ROUTER_PID, proxy pid $PROXY_PID; $SECS s, samples every $EVERY s, warm-up $WARM s"

HZ=$(getconf CLK_TCK)
T0=$(date +%s.%N)
# sample LABEL: one line per process into samples.csv
sample() {
    local now name pid rss fds ticks
    now=$(date +%s.%N)
    for name in node router proxy; do
        case $name in node) pid=$J_PID ;; router) pid=$ROUTER_PID ;; proxy) pid=$PROXY_PID ;; esac
        [[ -r /proc/$pid/status ]] || continue
        rss=$(awk '/^VmRSS/{print $2}' "/proc/$pid/status" 2>/dev/null || echo 0)
        fds=$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
        ticks=$(awk '{print $14 + $15}' "/proc/$pid/stat" 2>/dev/null || echo 0)
        awk -v n="$now" -v t0="$T0" -v tk="${ticks:-0}" -v hz="$HZ" -v rest="$1,$name,$pid,${rss:-0},$fds" \
            'BEGIN { printf "%.2f,%s,%.2f\n", n - t0, rest, tk / hz }' </dev/null
    done >> "$OUT/samples.csv"
}
echo "t_s,phase,process,pid,rss_kib,fds,cpu_s" > "$OUT/samples.csv"
sleep 1
sample pre

common=(mixed --duration "$SECS" --warmup 2 --publishers 2 --subscribers 3 --topics 2 --rate "$PUBSUB_RATE"
        --callers 1 --callees 1 --concurrency "$RPC_CONCURRENCY" --payload-size 64
        --connect-rate "$CONNECT_RATE" --seq-rate "$SEQ_RATE" --seq-publishers 2 --seq-subscribers 2
        --drop-every "$DROP_EVERY" --churn-hold-ms 100)
"$LOADTEST_BIN" -q -u "ws://127.0.0.1:$R_WS/ws" --realm realm1 --serializer msgpack --pid "$ROUTER_PID" \
    --json "$OUT/direct.json" "${common[@]}" > "$OUT/direct.txt" 2>&1 &
D_PID=$!
"$LOADTEST_BIN" -q -u "ws://127.0.0.1:$P_WS/ws" --realm realm2 --serializer cbor --pid "$ROUTER_PID,$PROXY_PID" \
    --json "$OUT/proxied.json" "${common[@]}" > "$OUT/proxied.txt" 2>&1 &
P_PID=$!

( while true; do sleep "$EVERY"; sample load; done ) &
SAMPLER=$!
echo "t_s,process,pid,ms" > "$OUT/stalls.csv"
if (( STALL_EVERY > 0 )); then
    (
        trap 'kill -CONT $ROUTER_PID $PROXY_PID 2>/dev/null; exit 0' TERM
        sleep 10
        n=0
        while true; do
            if (( n % 2 == 0 )); then who=router pid=$ROUTER_PID; else who=proxy pid=$PROXY_PID; fi
            t=$(awk -v n="$(date +%s.%N)" -v t0="$T0" 'BEGIN { printf "%.2f", n - t0 }' </dev/null)
            kill -STOP "$pid" 2>/dev/null || break
            sleep "$(awk -v ms="$STALL_MS" 'BEGIN { printf "%.3f", ms / 1000 }' </dev/null)"
            kill -CONT "$pid" 2>/dev/null || true
            echo "$t,$who,$pid,$STALL_MS" >> "$OUT/stalls.csv"
            n=$((n + 1))
            sleep "$STALL_EVERY"
        done
    ) &
    STALLER=$!
fi
next=60
while kill -0 "$D_PID" 2>/dev/null || kill -0 "$P_PID" 2>/dev/null; do
    sleep 1
    el=$(awk -v n="$(date +%s.%N)" -v t0="$T0" 'BEGIN { printf "%d", n - t0 }' </dev/null)
    if (( el >= next )); then
        log "$el s: router $(awk '/^VmRSS/{print $2}' /proc/$ROUTER_PID/status 2>/dev/null) KiB, proxy $(awk '/^VmRSS/{print $2}' /proc/$PROXY_PID/status 2>/dev/null) KiB"
        next=$((next + 60))
    fi
done
D_RC=0 P_RC=0
wait "$D_PID" || D_RC=$?
wait "$P_PID" || P_RC=$?
D_PID= P_PID=
kill "$SAMPLER" 2>/dev/null || true
wait "$SAMPLER" 2>/dev/null || true
SAMPLER=
if [[ -n "$STALLER" ]]; then
    kill "$STALLER" 2>/dev/null || true
    wait "$STALLER" 2>/dev/null || true
    STALLER=
    kill -CONT "$ROUTER_PID" "$PROXY_PID" 2>/dev/null || true
fi
sleep 3
sample post
ALIVE=1
for p in $ROUTER_PID $PROXY_PID; do kill -0 "$p" 2>/dev/null || ALIVE=0; done
# Two workers start once each; any further "worker started" is a restart.
RESTARTS=$(( $(grep -c "worker started" "$OUT/junction.log" || true) - 2 ))
log "load done (loadtest exit $D_RC / $P_RC); analysing"

python3 - "$OUT" "$WARM" "$STRICT" "$D_RC" "$P_RC" "$ALIVE" "$RESTARTS" "$SECS" <<'EOF'
import csv, json, os, statistics as st, sys
out, warm, strict = sys.argv[1], float(sys.argv[2]), sys.argv[3] == "1"
d_rc, p_rc, alive, restarts, secs = int(sys.argv[4]), int(sys.argv[5]), sys.argv[6] == "1", int(sys.argv[7]), int(sys.argv[8])
rows = list(csv.DictReader(open(f"{out}/samples.csv")))
procs = ["node", "router", "proxy"]
failures, figures = [], {}

for name in procs:
    rs = [r for r in rows if r["process"] == name]
    pre = [r for r in rs if r["phase"] == "pre"]
    post = [r for r in rs if r["phase"] == "post"]
    load = [r for r in rs if r["phase"] == "load"]
    after = [r for r in load if float(r["t_s"]) >= warm]
    f = {"samples": len(load)}
    if pre:
        f["pre_rss_kib"], f["pre_fds"] = int(pre[0]["rss_kib"]), int(pre[0]["fds"])
    if post:
        f["post_rss_kib"], f["post_fds"] = int(post[0]["rss_kib"]), int(post[0]["fds"])
    if load:
        f["max_rss_kib"] = max(int(r["rss_kib"]) for r in load)
        f["max_fds"] = max(int(r["fds"]) for r in load)
        t = [float(r["t_s"]) for r in load]; c = [float(r["cpu_s"]) for r in load]
        if len(load) > 1 and t[-1] > t[0]:
            f["cpu_cores_mean"] = round((c[-1] - c[0]) / (t[-1] - t[0]), 3)
    if len(after) >= 6:
        n = len(after) // 3
        first, last = after[:n], after[-n:]
        r1, r2 = st.median(int(r["rss_kib"]) for r in first), st.median(int(r["rss_kib"]) for r in last)
        d1, d2 = max(int(r["fds"]) for r in first), max(int(r["fds"]) for r in last)
        f.update(rss_first_third_kib=r1, rss_last_third_kib=r2, rss_growth_kib=r2 - r1,
                 fds_first_third_max=d1, fds_last_third_max=d2)
        if strict and name != "node":
            if r2 - r1 > max(0.10 * r1, 2048):
                failures.append(f"{name}: RSS grew after warm-up, {r1:.0f} → {r2:.0f} KiB")
            if d2 > d1 + 8:
                failures.append(f"{name}: descriptors grew after warm-up, {d1} → {d2}")
    elif strict:
        failures.append(f"{name}: too few samples after warm-up ({len(after)}) for the flatness gate")
    if name != "node" and "pre_fds" in f and "post_fds" in f and f["post_fds"] > f["pre_fds"] + 2:
        failures.append(f"{name}: {f['post_fds']} descriptors after the load, {f['pre_fds']} before")
    figures[name] = f

runs = {}
for side, rc in (("direct", d_rc), ("proxied", p_rc)):
    path = f"{out}/{side}.json"
    if not os.path.exists(path):
        failures.append(f"{side}: no loadtest report (exit {rc}; see {side}.txt)")
        continue
    r = json.load(open(path))["results"]
    ps, rp, cn = r["pubsub"], r["rpc"], r.get("connect") or {}
    seq = cn.get("seq") or {}
    runs[side] = {
        "pubsub_published": ps.get("sent"), "pubsub_delivered": ps.get("delivered"), "pubsub_lost": ps.get("lost"),
        "rpc_completed": rp.get("delivered"), "rpc_lost": rp.get("lost"),
        "sessions_churned": cn.get("established"), "sessions_failed": cn.get("errors"),
        "seq_published": seq.get("published"), "seq_expected": seq.get("expected"), "seq_received": seq.get("received"),
        "seq_lost": seq.get("lost"), "seq_duplicated": seq.get("duplicated"), "seq_reordered": seq.get("reordered"),
        "churn_events_checked": seq.get("churn_events_checked"), "churn_lost": seq.get("churn_lost"),
        "churn_duplicated": seq.get("churn_duplicated"), "echo_calls": seq.get("calls"), "echo_calls_ok": seq.get("calls_ok"),
        "goodbyes": seq.get("goodbyes"), "drops": seq.get("drops"), "errors": r.get("errors"),
        "first_error": seq.get("first_error") or cn.get("first_error"),
    }
    x = runs[side]
    for k in ("pubsub_lost", "rpc_lost", "sessions_failed", "seq_lost", "seq_duplicated", "seq_reordered",
              "churn_lost", "churn_duplicated", "errors"):
        if x[k] != 0:
            failures.append(f"{side}: {k} = {x[k]}" + (f" (first error: {x['first_error']})" if x["first_error"] else ""))
    if not seq or not seq.get("published"):
        failures.append(f"{side}: no sequence-checked events")
    if x["echo_calls"] != x["echo_calls_ok"]:
        failures.append(f"{side}: {x['echo_calls_ok']} of {x['echo_calls']} echo calls answered right")
    if rc not in (0,):
        failures.append(f"{side}: loadtest exit status {rc}")
if not alive:
    failures.append("a worker process is gone")
if restarts:
    failures.append(f"junction.log reports {restarts} worker restart(s)")

stalls = list(csv.DictReader(open(f"{out}/stalls.csv"))) if os.path.exists(f"{out}/stalls.csv") else []
summary = {"seconds": secs, "warmup_s": warm, "strict": strict, "processes": figures, "runs": runs,
           "stalls": {"router": sum(1 for s in stalls if s["process"] == "router"),
                      "proxy": sum(1 for s in stalls if s["process"] == "proxy"),
                      "ms_each": int(stalls[0]["ms"]) if stalls else 0},
           "failures": failures, "pass": not failures}
json.dump(summary, open(f"{out}/summary.json", "w"), indent=1)

mib = lambda k: f"{k / 1024:.1f}" if isinstance(k, (int, float)) else "-"
with open(f"{out}/summary.md", "w") as md:
    md.write(f"Soak of {secs} s (warm-up {warm:.0f} s, flatness gate {'on' if strict else 'off'}): "
             f"{'PASS' if not failures else 'FAIL'}"
             + (f"; {summary['stalls']['router']} router and {summary['stalls']['proxy']} proxy stalls of "
                f"{summary['stalls']['ms_each']} ms (SIGSTOP/SIGCONT)" if stalls else "") + "\n\n")
    md.write("| process | RSS pre → max → post MiB | RSS after warm-up, first → last third MiB | fds pre / max / post | fds first / last third max | CPU cores (mean) |\n|---|---|---|---|---|---|\n")
    for n in procs:
        f = figures[n]
        md.write(f"| {n} | {mib(f.get('pre_rss_kib'))} → {mib(f.get('max_rss_kib'))} → {mib(f.get('post_rss_kib'))} | "
                 f"{mib(f.get('rss_first_third_kib'))} → {mib(f.get('rss_last_third_kib'))} | "
                 f"{f.get('pre_fds')} / {f.get('max_fds')} / {f.get('post_fds')} | "
                 f"{f.get('fds_first_third_max', '-')} / {f.get('fds_last_third_max', '-')} | {f.get('cpu_cores_mean', '-')} |\n")
    md.write("\n| run | pub/sub delivered (lost) | RPC calls (lost) | sessions churned (failed) | seq events published → expected / received | lost / dup / reordered | churn events checked (gaps / repeats) | echo calls ok | GOODBYE / dropped | errors |\n|---|---|---|---|---|---|---|---|---|---|\n")
    for side, x in runs.items():
        md.write(f"| {side} | {x['pubsub_delivered']} ({x['pubsub_lost']}) | {x['rpc_completed']} ({x['rpc_lost']}) | "
                 f"{x['sessions_churned']} ({x['sessions_failed']}) | {x['seq_published']} → {x['seq_expected']} / {x['seq_received']} | "
                 f"{x['seq_lost']} / {x['seq_duplicated']} / {x['seq_reordered']} | {x['churn_events_checked']} "
                 f"({x['churn_lost']} / {x['churn_duplicated']}) | {x['echo_calls_ok']} / {x['echo_calls']} | "
                 f"{x['goodbyes']} / {x['drops']} | {x['errors']} |\n")
    for f in failures:
        md.write(f"\n- FAIL: {f}")
    md.write("\n")

# soak.svg: RSS (MiB), descriptors and CPU (cores) over time, one line per process.
W, H, PAD = 900, 220, 50
colors = {"node": "#888888", "router": "#1f77b4", "proxy": "#d62728"}
load = [r for r in rows if r["phase"] == "load"]
tmax = max([float(r["t_s"]) for r in load] or [1.0])
def series(name, key):
    rs = [r for r in load if r["process"] == name]
    if key == "cpu":
        pts = []
        for a, b in zip(rs, rs[1:]):
            dt = float(b["t_s"]) - float(a["t_s"])
            if dt > 0:
                pts.append((float(b["t_s"]), (float(b["cpu_s"]) - float(a["cpu_s"])) / dt))
        return pts
    scale = 1 / 1024 if key == "rss_kib" else 1
    return [(float(r["t_s"]), float(r[key]) * scale) for r in rs]
panels = [("rss_kib", "RSS (MiB)"), ("fds", "open descriptors"), ("cpu", "CPU (cores)")]
svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H * len(panels) + 40}" font-family="sans-serif" font-size="12">',
       f'<rect width="100%" height="100%" fill="white"/>',
       f'<text x="{PAD}" y="20">Junction soak, {secs} s: warm-up ends at the dashed line '
       + " ".join(f'<tspan fill="{colors[n]}">■ {n}</tspan>' for n in procs) + '</text>']
for i, (key, title) in enumerate(panels):
    y0 = 40 + i * H
    data = {n: series(n, key) for n in procs}
    vmax = max([v for pts in data.values() for _, v in pts] or [1.0]) * 1.1 or 1.0
    px = lambda t: PAD + (W - 2 * PAD) * t / tmax
    py = lambda v: y0 + H - 30 - (H - 50) * v / vmax
    svg.append(f'<text x="{PAD}" y="{y0 + 12}">{title}</text>')
    svg.append(f'<line x1="{PAD}" y1="{py(0)}" x2="{W - PAD}" y2="{py(0)}" stroke="black"/>')
    svg.append(f'<line x1="{PAD}" y1="{py(0)}" x2="{PAD}" y2="{py(vmax)}" stroke="black"/>')
    for frac in (0.5, 1.0):
        v = vmax / 1.1 * frac
        svg.append(f'<text x="4" y="{py(v) + 4}">{v:.3g}</text>')
        svg.append(f'<line x1="{PAD}" y1="{py(v)}" x2="{W - PAD}" y2="{py(v)}" stroke="#eeeeee"/>')
    svg.append(f'<text x="{W - PAD - 30}" y="{py(0) + 16}">{tmax:.0f} s</text>')
    if warm < tmax:
        svg.append(f'<line x1="{px(warm)}" y1="{py(0)}" x2="{px(warm)}" y2="{py(vmax)}" stroke="#999999" stroke-dasharray="4"/>')
    for n, pts in data.items():
        if pts:
            svg.append(f'<polyline fill="none" stroke="{colors[n]}" stroke-width="1.5" points="'
                       + " ".join(f"{px(t):.1f},{py(v):.1f}" for t, v in pts) + '"/>')
svg.append("</svg>")
open(f"{out}/soak.svg", "w").write("\n".join(svg))
print(open(f"{out}/summary.md").read(), end="")
sys.exit(0 if not failures else 1)
EOF
