#!/usr/bin/env bash
# bench/throughput.sh (`make bench-throughput`): requests per second through the gateway binary
# (`target/release/easy-jwt-gateway`, this repo's Envoy-like host, built-in echo upstream) for
#   1. no plugin    — the no-op plugin (noop_plugin.wasm: every callback returns Continue), i.e.
#                     the gateway's own cost; the baseline of the ratios,
#   2. plugin+cache — plugin.wasm, deploy config with cacheTtlSeconds 3600, one valid token repeated
#                     (the token server is called once per worker VM, then every request is a hit),
#   3. plugin, no cache — cacheTtlSeconds 0: one real HTTP call to the token server per request.
# The reference token server (target/release/token-server) issues the token and answers the calls.
# Everything listens on 127.0.0.1 (ports picked free); every wait is bounded; every process this
# script starts is killed on exit. Load generator: `oha` when installed, else Debian's `wrk`
# (installed with apt-get when missing and running as root).
#
# Tunables (environment): DURATION (s, default 10), WARMUP (s, 2), CONNECTIONS (32),
# THREADS (load-generator threads, 2), WORKERS (gateway worker VMs, 2), SKIP_BUILD=1, and
# REPEAT (1): run the three scenarios REPEAT times, interleaved, and report the median req/s
# (useful on a shared machine, where one 10 s run can be off by 20 %).
set -euo pipefail

DURATION=${DURATION:-10}
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-32}
THREADS=${THREADS:-2}
WORKERS=${WORKERS:-2}
REPEAT=${REPEAT:-1}
CLUSTER='outbound|9090||token-server.dns'
WASM_DIR=target/wasm32-wasip1/wasm-release
REQUEST_PATH=/api/orders

cd "$(dirname "$0")/.."
TMP=$(mktemp -d)
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() {
    echo "throughput: $*" >&2
    exit 1
}

# A free TCP port on 127.0.0.1.
free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Waits (at most 10 s) until URL answers 200 while process PID lives.
wait_ready() {
    local url=$1 pid=$2 log=$3 i
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; die "process for $url exited"; }
        curl -fsS --max-time 1 "$url" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    cat "$log" >&2
    die "$url not ready after 10 s"
}

pick_loadgen() {
    if command -v oha >/dev/null; then
        echo oha
    elif command -v wrk >/dev/null; then
        echo wrk
    elif [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
        echo "throughput: installing wrk (apt-get install -y wrk)" >&2
        apt-get install -y wrk >/dev/null 2>&1 || { apt-get update >/dev/null 2>&1 && apt-get install -y wrk >/dev/null 2>&1; } \
            || die "cannot install wrk; install oha (cargo install oha --locked) or wrk"
        echo wrk
    else
        die "no load generator: install oha (cargo install oha --locked) or wrk (apt-get install wrk)"
    fi
}

# Runs the load generator in the background (so a signal reaches the trap at once and the trap
# kills it) for SECONDS against URL with the auth header; sets RPS and BAD (non-2xx + errors).
load() {
    local seconds=$1 url=$2 out=$TMP/load.out pid
    if [[ $LOADGEN == oha ]]; then
        oha --no-tui --output-format json -z "${seconds}s" -c "$CONNECTIONS" \
            -H "authorization: Bearer $TOKEN" "$url" >"$out" 2>"$TMP/load.err" &
    else
        wrk -t"$THREADS" -c"$CONNECTIONS" -d"${seconds}s" \
            -H "authorization: Bearer $TOKEN" "$url" >"$out" 2>"$TMP/load.err" &
    fi
    pid=$!
    PIDS+=("$pid")
    wait "$pid" || { cat "$TMP/load.err" >&2; die "$LOADGEN failed against $url"; }
    if [[ $LOADGEN == oha ]]; then
        read -r RPS BAD < <(python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
codes = d.get("statusCodeDistribution", {})
bad = sum(n for c, n in codes.items() if not c.startswith("2")) + sum(d.get("errorDistribution", {}).values())
print("%.1f %d" % (d["summary"]["requestsPerSec"], bad))' "$out")
    else
        read -r RPS BAD < <(awk '/^Requests\/sec:/ { rps = $2 }
             /Non-2xx or 3xx responses:/ { bad += $NF }
             /Socket errors:/ { for (i = 4; i <= NF; i += 2) bad += $i }
             END { printf "%s %d\n", rps, bad }' "$out")
    fi
    [[ -n ${RPS:-} ]] || die "$LOADGEN reported nothing against $url"
}

# Starts the gateway with PLUGIN and CONFIG, checks one request, measures; sets RPS and BAD.
scenario() {
    local name=$1 plugin=$2 config=$3 port admin pid log=$TMP/gateway-$1.log body
    port=$(free_port)
    admin=$(free_port)
    target/release/easy-jwt-gateway --plugin "$plugin" --config "$config" \
        --listen "127.0.0.1:$port" --admin "127.0.0.1:$admin" --workers "$WORKERS" \
        --log-level info --cluster "$CLUSTER=127.0.0.1:$TOKEN_PORT" >"$log" 2>&1 &
    pid=$!
    PIDS+=("$pid")
    wait_ready "http://127.0.0.1:$admin/ready" "$pid" "$log"
    body=$(curl -fsS --max-time 5 -H "authorization: Bearer $TOKEN" "http://127.0.0.1:$port$REQUEST_PATH") \
        || die "$name: the check request failed"
    if [[ $plugin == plugin.wasm && $body != *x-auth-user* ]]; then
        die "$name: x-auth-user did not reach the upstream: $body"
    fi
    load "$WARMUP" "http://127.0.0.1:$port$REQUEST_PATH"
    load "$DURATION" "http://127.0.0.1:$port$REQUEST_PATH"
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

if [[ ${SKIP_BUILD:-0} != 1 ]]; then
    cargo build --locked --release -p token-server -p easy-jwt-host --bin token-server --bin easy-jwt-gateway
fi
for file in plugin.wasm "$WASM_DIR/noop_plugin.wasm" target/release/token-server target/release/easy-jwt-gateway; do
    [[ -f $file ]] || die "$file is missing (make build build-test-plugins, cargo build --release)"
done
LOADGEN=$(pick_loadgen)

TOKEN_PORT=$(free_port)
target/release/token-server --bind "127.0.0.1:$TOKEN_PORT" >"$TMP/token-server.log" 2>&1 &
PIDS+=("$!")
TOKEN=""
for ((i = 0; i < 100; i++)); do
    TOKEN=$(curl -fsS --max-time 1 -X POST -H 'content-type: application/json' -d '{"uid":100}' \
        "http://127.0.0.1:$TOKEN_PORT/api/token/create" 2>/dev/null | sed -n 's/.*"token":"\([^"]*\)".*/\1/p') || true
    [[ -n $TOKEN ]] && break
    sleep 0.1
done
[[ -n $TOKEN ]] || { cat "$TMP/token-server.log" >&2; die "no token from the token server"; }

python3 - deploy/plugin-config.json "$TMP" <<'PY'
import json, sys
base = json.load(open(sys.argv[1]))
for name, ttl in (("cache", 3600), ("nocache", 0)):
    json.dump(dict(base, cacheTtlSeconds=ttl), open(f"{sys.argv[2]}/{name}.json", "w"))
PY

echo "throughput: $LOADGEN, ${CONNECTIONS} connections, ${THREADS} threads, ${DURATION} s per scenario" \
    "(after ${WARMUP} s warm-up), ${REPEAT} repetition(s), gateway ${WORKERS} workers, echo upstream," \
    "GET $REQUEST_PATH, $(nproc) CPUs"
declare -A RATES BADS
for ((rep = 1; rep <= REPEAT; rep++)); do
    for name in noop cache nocache; do
        case $name in
            noop) scenario noop "$WASM_DIR/noop_plugin.wasm" deploy/plugin-config.json ;;
            *) scenario "$name" plugin.wasm "$TMP/$name.json" ;;
        esac
        RATES[$name]="${RATES[$name]:-} $RPS"
        BADS[$name]=$((${BADS[$name]:-0} + BAD))
    done
done

# The median of the numbers given as arguments.
median() {
    printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}

# shellcheck disable=SC2086 # word splitting of the rate lists is intended
noop_rps=$(median ${RATES[noop]})
printf '%-28s %10s %7s %8s  %s\n' scenario req/s ratio non-2xx "all runs (req/s)"
row() {
    local rps
    # shellcheck disable=SC2086
    rps=$(median ${RATES[$2]})
    printf '%-28s %10.1f %7.2f %8d %s\n' "$1" "$rps" \
        "$(awk -v a="$rps" -v b="$noop_rps" 'BEGIN { print (b > 0 ? a / b : 0) }')" "${BADS[$2]}" "${RATES[$2]}"
}
row "no plugin (noop plugin)" noop
row "plugin, cache (hit)" cache
row "plugin, no cache (call)" nocache
