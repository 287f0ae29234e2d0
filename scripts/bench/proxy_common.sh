# Shared by scripts/bench/proxy.sh and scripts/bench/proxy_floor.sh (sourced,
# not run): the node they both measure, a router worker and a proxy worker
# of one `junction start`, each `shards: 1, pin_cores: false`.

# proxy_node_config FILE R_WS R_RS P_WS: the router has a WebSocket (R_WS,
# CBOR) and a RawSocket (R_RS) transport; the proxy a WebSocket transport
# (P_WS) and one RawSocket link to R_RS; anonymous, everything allowed.
proxy_node_config() {
    python3 - "$@" <<'PY'
import json, sys
path, rws, rrs, pws = sys.argv[1], *map(int, sys.argv[2:])
anon = {"anonymous": {"type": "static", "role": "anonymous"}}
opts = {"shards": 1, "pin_cores": False}
allow = {"call": True, "register": True, "publish": True, "subscribe": True}
cfg = {"version": 2, "controller": {"id": "node1", "options": {}}, "workers": [
    {"type": "router", "id": "router1", "options": opts,
     "realms": [{"name": "realm1", "roles": [{"name": "anonymous", "permissions": [
         {"uri": "", "match": "prefix", "allow": allow}]}]}],
     "transports": [
         {"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": rws},
          "paths": {"ws": {"type": "websocket", "serializers": ["cbor"], "auth": anon}}},
         {"type": "rawsocket", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": rrs},
          "auth": anon}]},
    {"type": "proxy", "id": "proxy1", "options": opts,
     "routes": {"realm1": {"*": ["router1"]}},
     "connections": {"router1": {"realm": "realm1", "transport": {"type": "rawsocket",
         "endpoint": {"type": "tcp", "host": "127.0.0.1", "port": rrs}}}},
     "transports": [{"type": "web", "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": pws},
         "paths": {"ws": {"type": "websocket", "serializers": ["cbor"], "auth": anon}}}]}]}
json.dump(cfg, open(path, "w"), indent=1)
PY
}

# wait_for_line FILE PATTERN: up to 30 s for PATTERN in FILE; else print FILE, fail.
wait_for_line() {
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$1" >&2
    return 1
}

# start_proxy_node BIN CONFIG LOG CPU: starts the node on CPU and sets J_PID,
# ROUTER_PID and PROXY_PID once it is ready.
start_proxy_node() {
    taskset -c "$4" "$1" start --config "$2" --log warn > "$3" 2>&1 &
    J_PID=$!
    wait_for_line "$3" "junction: ready"
    ROUTER_PID=$(sed -n 's/^junction: worker [0-9]* router pid \([0-9]*\).*/\1/p' "$3" | head -1)
    PROXY_PID=$(sed -n 's/^junction: worker [0-9]* proxy pid \([0-9]*\).*/\1/p' "$3" | head -1)
}

# write_meta FILE ROOT SERVER_CPU LOAD_CPU DURATION WARMUP ROUNDS: the run's
# date, revision, toolchain and settings (loadavg_end is added by meta_end).
write_meta() {
    python3 - "$@" <<'PY'
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
PY
}

# meta_end FILE: adds the load average at the end of the run.
meta_end() {
    python3 -c "import json,sys; m=json.load(open(sys.argv[1])); m['loadavg_end']=open('/proc/loadavg').read().split()[:3]; json.dump(m,open(sys.argv[1],'w'),indent=1)" "$1"
}
