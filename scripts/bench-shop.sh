#!/usr/bin/env bash
# bench-shop.sh — the shop showcase (examples/shop/SPEC.md) on microlith, Harper 4.7 and two
# microservices designs (examples/shop/micro: as published, and fair), one system at a time
# on the same machine: the server under test confined to SERVER_CORES, loadgen on
# LOADGEN_CORES. For each system: start it, check every sampled page against the SPEC
# (correctness before timing: a system that fails is not measured), then per page (home, PLP,
# PDP, as HTML):
#   - virtual users: USERS users, each one request then THINK of think time (the published
#     k6 runs: 20 / 200 / 2000 users, 1 s sleep);
#   - open loop at RATES requests per second, up to the system's knee (stops after the first
#     rate with more than 1 % errors or p99 over 1 s);
# then PDP and PLP loaded LOADS times in headless Chromium. Writes bench-results/DATE-shop.md
# with SVG plots beside it, and the raw loadgen results in bench-results/DATE-shop/.
#
#   scripts/bench-shop.sh
#
# Knobs (environment, defaults in brackets):
#   SYSTEMS ["microlith harper micro-fair micro-naive"]
#   USERS ["20 200 2000"]  THINK [1s]  DURATION [60s]  WARMUP [5s]
#   RATES ["500 1000 2000 4000 8000 16000 32000"]  RATE_DURATION [15s]  TIMEOUT [10s]
#   SERVER_CORES [0]  LOADGEN_CORES [1]  LOADS [50]
#   KEEP=1: redo only SYSTEMS within today's earlier run (the others' results stay)
#   MEASURE=0: only the correctness check and the page loads (with KEEP=1: keeps the timings)
#   NAME [shop]: the report is bench-results/DATE-NAME.md
# Installs what is missing: chromium and PostgreSQL (apt), Harper, Fastify and
# playwright-core (npm); builds microlith and loadgen (cargo, release).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
SYSTEMS=${SYSTEMS:-microlith harper micro-fair micro-naive}
USERS=${USERS:-20 200 2000}
THINK=${THINK:-1s}
DURATION=${DURATION:-60s}
WARMUP=${WARMUP:-5s}
RATES=${RATES:-500 1000 2000 4000 8000 16000 32000}
RATE_DURATION=${RATE_DURATION:-15s}
TIMEOUT=${TIMEOUT:-10s}
SERVER_CORES=${SERVER_CORES:-0}
LOADGEN_CORES=${LOADGEN_CORES:-1}
LOADS=${LOADS:-50}
# Below the kernel's ephemeral range (32768-60999 by default): a client connection of
# an earlier run must not hold the local port a system is about to listen on.
PORT=29960
DAY=$(date +%F)
OUT=bench-results/$DAY-${NAME:-shop}
REPORT=$OUT.md
WORK=$(mktemp -d /tmp/bench-shop.XXXXXX)
log() { echo "[bench-shop] $*" >&2; }

install() {
    command -v chromium >/dev/null || { log "installing chromium"; apt-get install -y chromium >&2; }
    command -v node >/dev/null || { log "installing node"; apt-get install -y nodejs npm >&2; }
    command -v python3 >/dev/null || { log "installing python3"; apt-get install -y python3 >&2; }
    cargo build --release -p microlith --bin microlith >&2
    cargo build --release -p loadgen >&2
    (cd scripts/shop/browser && npm ci --no-audit --no-fund >&2)
    case " $SYSTEMS " in *" micro-"*) examples/shop/micro/run.sh install >&2 ;; esac
    case " $SYSTEMS " in *" harper "*) examples/shop/harper/run.sh install >&2 ;; esac
}

# start SYSTEM: serves the shop on 127.0.0.1:$PORT, confined to the server cores.
start() {
    case $1 in
        microlith)
            cat >"$WORK/microlith.toml" <<EOF
[shards]
count = $(echo "$SERVER_CORES" | tr ',' ' ' | wc -w)
cores = [$SERVER_CORES]

[storage]
data_dir = "$WORK/microlith-data"

[http]
listen = "127.0.0.1:$PORT"

[mqtt]
listen = "127.0.0.1:0"

[components.shop]
EOF
            target/release/microlith serve --config "$WORK/microlith.toml" >"$WORK/microlith.log" 2>&1 &
            echo $! >"$WORK/microlith.pid"
            wait_ready
            ;;
        harper) SHOP_CORES=$SERVER_CORES SHOP_THREADS=$(echo "$SERVER_CORES" | tr ',' ' ' | wc -w) \
            examples/shop/harper/run.sh start "$PORT" >&2 ;;
        micro-fair) SHOP_CORES=$SERVER_CORES examples/shop/micro/run.sh start fair "$PORT" >&2 ;;
        micro-naive) SHOP_CORES=$SERVER_CORES examples/shop/micro/run.sh start naive "$PORT" >&2 ;;
        *) log "unknown system $1"; exit 2 ;;
    esac
}

stop() {
    stop_system "$1"
    for _ in $(seq 1 100); do
        ss -ltn "sport = :$PORT" | grep -q LISTEN || return 0
        sleep 0.2
    done
    log "port $PORT still in use after stopping $1"
}

stop_system() {
    case $1 in
        microlith) kill "$(cat "$WORK/microlith.pid")" 2>/dev/null || true; sleep 1 ;;
        harper) examples/shop/harper/run.sh stop >&2 || true ;;
        micro-*) examples/shop/micro/run.sh stop "$PORT" >&2 || true ;;
    esac
}

wait_ready() {
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:$PORT/shop/api/home" >/dev/null && return 0
        sleep 0.1
    done
    log "the shop did not answer within 60 s"; exit 1
}

# loadgen_run SYSTEM PAGE KIND X ARGS...: one loadgen run, results in $OUT/SYSTEM--PAGE--KIND--X.
# A run in which the system answered nothing leaves a `no-answers` file there instead.
loadgen_run() {
    local system=$1 page=$2 kind=$3 x=$4 dir
    shift 4
    dir=$OUT/$system--$page--$kind--$x
    settle "$system"
    if ! target/release/loadgen http --url "http://127.0.0.1:$PORT" --paths-file "$WORK/$page.paths" \
        --cores "$LOADGEN_CORES" --timeout "$TIMEOUT" --quiet --name "$system $page $kind $x" \
        --out "$dir" "$@" >/dev/null 2>"$WORK/loadgen.err"; then
        mkdir -p "$dir"
        cp "$WORK/loadgen.err" "$dir/no-answers"
        log "$system $page $kind $x: no answer measured ($(tail -1 "$WORK/loadgen.err"))"
    fi
}

# The run's p99 (µs) and error share (%) from its result.json (no answers: past any knee).
p99_and_errors() {
    if [ -f "$1/no-answers" ] || [ ! -f "$1/result.json" ]; then
        echo "999999999 100"
        return
    fi
    python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); c=r["counts"]; print(int(r["latency_us"]["p99"]), 100*(c["requests"]-c["ok"])/max(1,c["requests"]))' "$1/result.json"
}

# Waits (up to 2 minutes) until the system answers the home page within 1 s three times in a
# row, so that a page's runs do not inherit the backlog of the overload before them.
settle() {
    local ok=0
    for _ in $(seq 1 120); do
        if curl -sf --max-time 1 "http://127.0.0.1:$PORT/shop/api/home" >/dev/null; then
            ok=$((ok + 1))
            [ $ok -ge 3 ] && return 0
        else
            ok=0
            sleep 1
        fi
    done
    log "$1 did not recover within 2 minutes"
}

measure() {
    local system=$1 page n rate p99 err
    for page in home plp pdp; do
        for n in $USERS; do
            log "$system $page: $n virtual users"
            loadgen_run "$system" "$page" vu "$n" --connections "$n" --think "$THINK" \
                --duration "$DURATION" --warmup "$WARMUP"
        done
        for rate in $RATES; do
            log "$system $page: $rate req/s"
            loadgen_run "$system" "$page" rate "$rate" --rate "$rate" --connections 256 \
                --duration "$RATE_DURATION" --warmup 2s
            read -r p99 err < <(p99_and_errors "$OUT/$system--$page--rate--$rate")
            if [ "$p99" -gt 1000000 ] || python3 -c "import sys; sys.exit(0 if $err > 1 else 1)"; then
                log "$system $page: past the knee at $rate req/s (p99 ${p99} µs, errors ${err} %)"
                break
            fi
        done
    done
}

save_meta() {
    python3 - "$OUT/meta.json" <<EOF
import json, os, sys
old = json.load(open(sys.argv[1])) if os.path.exists(sys.argv[1]) else {"systems": [], "checks": {}, "browser": {}}
new = json.loads('''$checks'''), json.loads('''$browser''')
systems = old["systems"] + [s for s in "$SYSTEMS".split() if s not in old["systems"]]
json.dump({"systems": systems, "started": old.get("started", "$started"), "load": old.get("load", "$load"),
           "machine": "$(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)), $(free -g | awk '/Mem:/ {print $2}') GiB",
           "command": "scripts/bench-shop.sh (SYSTEMS='$SYSTEMS' USERS='$USERS' DURATION=$DURATION RATES='$RATES')",
           "server_cores": "$SERVER_CORES", "loadgen_cores": "$LOADGEN_CORES", "think": "$THINK",
           "duration": "$DURATION", "loads": $LOADS,
           "checks": dict(old["checks"], **new[0]), "browser": dict(old["browser"], **new[1])},
          open(sys.argv[1], "w"), indent=1)
EOF
}

main() {
    install
    # KEEP=1: add to (or redo systems of) an earlier run of the same day instead of starting over.
    if [ "${KEEP:-0}" = 1 ]; then
        [ "${MEASURE:-1}" = 0 ] || for s in $SYSTEMS; do rm -rf "$OUT/$s--"*; done
    else
        rm -rf "$OUT"
    fi
    mkdir -p "$OUT"
    echo "/shop/" >"$WORK/home.paths"
    seq 0 7 | sed 's|^|/shop/c/cat-|' >"$WORK/plp.paths"
    seq -f '%04g' 0 999 | sed 's|^|/shop/p/p-|' >"$WORK/pdp.paths"
    local started load checks="{}" browser="{}"
    started=$(date -u +%FT%TZ)
    load=$(cut -d' ' -f1-3 /proc/loadavg)
    for system in $SYSTEMS; do
        log "== $system"
        start "$system"
        if ! result=$(python3 scripts/shop/check.py "http://127.0.0.1:$PORT" "$system"); then
            echo "$result" >&2
            checks=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d[sys.argv[2]]="FAILED: not measured"; print(json.dumps(d))' "$checks" "$system")
            stop "$system"
            save_meta
            continue
        fi
        checks=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d[sys.argv[2]]=sys.argv[3]; print(json.dumps(d))' "$checks" "$system" "$(echo "$result" | tail -1)")
        [ "${MEASURE:-1}" = 0 ] || measure "$system"
        log "$system: page loads in Chromium"
        b=$(cd scripts/shop/browser && node pageload.js "http://127.0.0.1:$PORT" "$LOADS" /shop/p/p-0042 /shop/c/cat-3)
        browser=$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); d[sys.argv[2]]=json.loads(sys.argv[3]); print(json.dumps(d))' "$browser" "$system" "$b")
        stop "$system"
        save_meta
    done
    python3 scripts/shop/report.py "$OUT" "$REPORT"
    cat "$REPORT"
}

trap 'for s in $SYSTEMS; do stop "$s" 2>/dev/null; done; rm -rf "$WORK"' EXIT
main
