#!/usr/bin/env bash
# bench-peers.sh — the same loadgen scenarios against microlith and its peers on this
# machine, side by side, and a report in bench-results/DATE-peers.md.
#
#   scripts/bench-peers.sh                 # everything: selfcheck nginx mosquitto harper microlith
#   scripts/bench-peers.sh nginx           # any subset, in any order:
#   scripts/bench-peers.sh microlith       #   selfcheck | nginx | mosquitto | harper | microlith
#   scripts/bench-peers.sh report          # only rebuild the report from the results in $OUT
#   OUT=bench-results/2026-11-24-peers scripts/bench-peers.sh microlith   # add to an earlier run
#
# Peers: nginx returning a fixed JSON body (the HTTP ceiling of the machine), Mosquitto
# (MQTT), Harper 4.7 from npm (REST over the same table), and microlith itself. The report
# is rebuilt from every result found under $OUT, so re-running one peer updates it.
#
# Knobs (environment, defaults in brackets):
#   SERVER_CORES [0]     cores the server under test runs on (taskset)
#   LOADGEN_CORES [1]    cores loadgen runs on (--cores), and wrk in the self-check
#   SERVER_THREADS [2]   worker threads for peers that have the setting (nginx, Harper)
#   DURATION [10s] WARMUP [2s] RECORDS [100000]
#   SELFCHECK_REPEATS [11] SELFCHECK_DURATION [2s]  throughput rounds of the wrk self-check (short,
#                        alternating rounds pair both clients with the same machine load)
#   OUT [bench-results/DATE-peers]   per-run results (result.json, .md, .hgrm, .svg)
#   LOADGEN_BIN          a prebuilt loadgen (else: cargo build --release -p loadgen)
#   MICROLITH_BIN        a prebuilt microlith (else: cargo build --release at the root)
#   HARPER_VERSION [4.7] HARPER_PREFIX [/tmp/bench-peers-harper-npm]
#   ports: NGINX_PORT [18080] MOSQ_PORT [11883] HARPER_HTTP_PORT [19926]
#          HARPER_OPS_PORT [19925] ML_HTTP_PORT [29926] ML_MQTT_PORT [21883]
# Everything it starts is stopped on exit; all traffic stays on 127.0.0.1.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
DATE=$(date +%F)
SERVER_CORES=${SERVER_CORES:-0}
LOADGEN_CORES=${LOADGEN_CORES:-1}
SERVER_THREADS=${SERVER_THREADS:-2}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
RECORDS=${RECORDS:-100000}
SELFCHECK_REPEATS=${SELFCHECK_REPEATS:-11}
SELFCHECK_DURATION=${SELFCHECK_DURATION:-2s}
OUT=${OUT:-bench-results/$DATE-peers}
REPORT=${REPORT:-${OUT%/}.md}
HARPER_VERSION=${HARPER_VERSION:-4.7}
HARPER_PREFIX=${HARPER_PREFIX:-/tmp/bench-peers-harper-npm}
NGINX_PORT=${NGINX_PORT:-18080}
MOSQ_PORT=${MOSQ_PORT:-11883}
HARPER_HTTP_PORT=${HARPER_HTTP_PORT:-19926}
HARPER_OPS_PORT=${HARPER_OPS_PORT:-19925}
HARPER_MQTT_PORT=${HARPER_MQTT_PORT:-21884}
ML_HTTP_PORT=${ML_HTTP_PORT:-29926}
ML_MQTT_PORT=${ML_MQTT_PORT:-21883}
SCEN=$ROOT/loadgen/scenarios
TIMEFORMAT='%3U %3S' # `time` prints user and system CPU seconds
REST_SCENARIOS="rest-get rest-put rest-mix rest-query rest-get-latency"
MQTT_SCENARIOS="mqtt-fanout-qos0 mqtt-fanout-qos1 mqtt-fanin mqtt-fanout-latency"

WORK=$(mktemp -d /tmp/bench-peers.XXXXXX)
PIDS=()
mkdir -p "$OUT/configs" "$OUT/notes"
COMMANDS=$OUT/commands.txt

log() { printf '[bench-peers %s] %s\n' "$(date +%T)" "$*" >&2; }
note() { # note PEER TEXT: a line for the report's notes section
    printf '%s\n' "$2" >>"$OUT/notes/$1.txt"
    log "$1: $2"
}

cleanup() {
    local pid
    for pid in "${PIDS[@]:-}"; do
        if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; fi
    done
    for pid in "${PIDS[@]:-}"; do
        if [ -n "$pid" ]; then wait "$pid" 2>/dev/null || true; fi
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

start() { # start NAME LOGFILE CMD...: runs CMD in the background, remembers its pid in $LAST_PID
    local name=$1 logf=$2
    shift 2
    "$@" >"$logf" 2>&1 &
    LAST_PID=$!
    PIDS+=("$LAST_PID")
    log "started $name (pid $LAST_PID): $*"
}

stop() { # stop PID: ends one process this script started
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

wait_port() { # wait_port PORT SECONDS
    local _
    for _ in $(seq 1 $(($2 * 10))); do
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

APT_UPDATED=0
need() { # need COMMAND DEBIAN-PACKAGE
    command -v "$1" >/dev/null 2>&1 && return 0
    log "installing $2"
    if [ "$APT_UPDATED" = 0 ]; then
        apt-get update -qq
        APT_UPDATED=1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

build_loadgen() {
    if [ -n "${LOADGEN_BIN:-}" ]; then
        LOADGEN=$LOADGEN_BIN
    else
        log "building loadgen (release)"
        cargo build --release -p loadgen >&2
        LOADGEN=${CARGO_TARGET_DIR:-$ROOT/target}/release/loadgen
    fi
    [ -x "$LOADGEN" ] || { log "no loadgen binary at $LOADGEN"; exit 1; }
}

lg() { # lg PEER SCENARIO [extra flags...]: one scenario, results in $OUT/PEER/SCENARIO
    local peer=$1 scenario=$2
    shift 2
    local dir=$OUT/$peer/$scenario
    rm -rf "$dir"
    local cmd=("$LOADGEN" run "$SCEN/$scenario.toml" --cores "$LOADGEN_CORES" --duration "$DURATION"
        --warmup "$WARMUP" --name "$peer" --quiet --out "$dir" "$@")
    printf '# load average %s\n%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)" "${cmd[*]/#$ROOT\//}" >>"$COMMANDS"
    log "$peer $scenario"
    if ! "${cmd[@]}" >"$WORK/lg.out" 2>&1; then
        note "$peer" "$scenario failed: $(tail -3 "$WORK/lg.out" | tr '\n' ' ')"
        return 0
    fi
    grep -E '^(throughput|latency|errors)' "$WORK/lg.out" | sed "s/^/    /" >&2 || true
}

lg_load() { # lg_load PEER URL: the shared data set, RECORDS products
    local dir=$OUT/$1/rest-load
    rm -rf "$dir"
    local cmd=("$LOADGEN" run "$SCEN/rest-load.toml" --cores "$LOADGEN_CORES" --load "$RECORDS" --name "$1"
        --quiet --out "$dir" --url "$2" "${@:3}")
    printf '%s\n' "${cmd[*]/#$ROOT\//}" >>"$COMMANDS"
    log "$1 loading $RECORDS records"
    "${cmd[@]}" >"$WORK/lg.out" 2>&1 || { note "$1" "load phase failed: $(tail -3 "$WORK/lg.out" | tr '\n' ' ')"; return 1; }
    grep -E '^load phase' "$WORK/lg.out" | sed "s/^/    /" >&2 || true
}

# ---------------------------------------------------------------- nginx
nginx_conf() { # nginx_conf WORKERS FILE
    cat >"$2" <<EOF
worker_processes $1;
daemon off;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {
    listen 127.0.0.1:$NGINX_PORT backlog=4096;
    # Any method, any path: one fixed JSON record of about the size loadgen writes.
    location / {
      default_type application/json;
      return 200 '{"id":"p1","category":"cat-1","price":4242,"pad":"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstu"}';
    }
  }
}
EOF
}

start_nginx() { # start_nginx WORKERS
    need nginx nginx
    nginx_conf "$1" "$WORK/nginx.conf"
    cp "$WORK/nginx.conf" "$OUT/configs/nginx-$1-workers.conf"
    start nginx "$WORK/nginx.log" taskset -c "$SERVER_CORES" nginx -c "$WORK/nginx.conf"
    NGINX_PID=$LAST_PID
    wait_port "$NGINX_PORT" 10 || { log "nginx did not start: $(cat "$WORK/nginx.log")"; return 1; }
}

run_nginx() {
    rm -f "$OUT/notes/nginx.txt"
    start_nginx "$SERVER_THREADS" || { note nginx "nginx did not start"; return 0; }
    local s
    for s in $REST_SCENARIOS; do
        lg nginx "$s" --url "http://127.0.0.1:$NGINX_PORT"
    done
    stop "$NGINX_PID"
}

# ---------------------------------------------------------------- mosquitto
run_mosquitto() {
    rm -f "$OUT/notes/mosquitto.txt"
    need mosquitto mosquitto
    cat >"$WORK/mosquitto.conf" <<EOF
listener $MOSQ_PORT 127.0.0.1
allow_anonymous true
persistence false
# Without it Mosquitto's small writes wait for Nagle: ~4-8 ms added at moderate rates.
set_tcp_nodelay true
# Room for QoS 1 bursts so the queue limit (default 1000) does not drop messages.
max_queued_messages 100000
log_dest stderr
log_type error
log_type warning
EOF
    cp "$WORK/mosquitto.conf" "$OUT/configs/mosquitto.conf"
    start mosquitto "$WORK/mosquitto.log" taskset -c "$SERVER_CORES" mosquitto -c "$WORK/mosquitto.conf"
    local pid=$LAST_PID
    wait_port "$MOSQ_PORT" 10 || { note mosquitto "mosquitto did not start: $(cat "$WORK/mosquitto.log")"; return 0; }
    local s
    for s in $MQTT_SCENARIOS; do
        lg mosquitto "$s" --broker "127.0.0.1:$MOSQ_PORT"
    done
    stop "$pid"
}

# ---------------------------------------------------------------- harper
run_harper() {
    rm -f "$OUT/notes/harper.txt"
    need node nodejs
    need npm npm
    local bin=$HARPER_PREFIX/node_modules/.bin/harperdb
    if [ ! -x "$bin" ]; then
        log "installing harperdb@$HARPER_VERSION from npm into $HARPER_PREFIX"
        mkdir -p "$HARPER_PREFIX"
        npm install --prefix "$HARPER_PREFIX" "harperdb@$HARPER_VERSION" --no-audit --no-fund >"$WORK/npm.log" 2>&1 ||
            { note harper "npm install harperdb@$HARPER_VERSION failed: $(tail -3 "$WORK/npm.log" | tr '\n' ' ')"; return 0; }
    fi
    local version
    version=$(sed -n 's/^[[:space:]]*"version": "\(.*\)",/\1/p' "$HARPER_PREFIX/node_modules/harperdb/package.json" | head -1)
    local root=$WORK/hdb
    mkdir -p "$WORK/harper-home"
    # Loopback ports, no TLS, SERVER_THREADS worker threads, quiet logs; local requests are
    # authorised (authorizeLocal) so auth does not sit in the measured path. HOME is a
    # fresh directory: Harper keeps its boot properties there (~/.harperdb).
    local env=(HOME="$WORK/harper-home" TC_AGREEMENT=yes ROOTPATH="$root" HDB_ADMIN_USERNAME=admin HDB_ADMIN_PASSWORD=bench-peers
        HTTP_PORT="$HARPER_HTTP_PORT" HTTP_SECUREPORT=null OPERATIONSAPI_NETWORK_PORT="$HARPER_OPS_PORT"
        OPERATIONSAPI_NETWORK_SECUREPORT=null MQTT_NETWORK_PORT="$HARPER_MQTT_PORT" MQTT_NETWORK_SECUREPORT=null
        THREADS_COUNT="$SERVER_THREADS" LOGGING_LEVEL=warn LOCALSTUDIO_ENABLED=false REPLICATION_SECUREPORT=null
        AUTHENTICATION_AUTHORIZELOCAL=true)
    env "${env[@]}" "$bin" install >"$WORK/harper-install.log" 2>&1 ||
        { note harper "harperdb install failed: $(tail -3 "$WORK/harper-install.log" | tr '\n' ' ')"; return 0; }
    # The table comes from a component schema: exported for REST, category indexed.
    mkdir -p "$root/components/bench"
    printf 'rest: true\ngraphqlSchema:\n  files: "schema.graphql"\n' >"$root/components/bench/config.yaml"
    cat >"$root/components/bench/schema.graphql" <<'EOF'
type Product @table @export {
  id: ID @primaryKey
  category: String @indexed
  price: Int
  pad: String
}
EOF
    printf '%s\n' "${env[@]}" | sed 's/PASSWORD=.*/PASSWORD=(set)/' >"$OUT/configs/harper-env.txt"
    cp "$root/components/bench/schema.graphql" "$OUT/configs/harper-schema.graphql"
    start harper "$WORK/harper.log" env "${env[@]}" taskset -c "$SERVER_CORES" "$bin" run
    local pid=$LAST_PID ok=0 _
    for _ in $(seq 1 120); do
        if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HARPER_HTTP_PORT/Product/" 2>/dev/null)" = 200 ]; then
            ok=1
            break
        fi
        sleep 1
    done
    if [ "$ok" = 0 ]; then
        note harper "Harper $version did not serve /Product/ within 120 s: $(tail -5 "$WORK/harper.log" | tr '\n' ' ')"
        stop "$pid"
        return 0
    fi
    note harper "Harper $version, $SERVER_THREADS worker threads, REST on the Product table from a component schema (@export, category @indexed). Its MQTT broker was not measured: it maps topics to tables and refuses a wildcard subscription to sensors/# (SUBACK 0x80)."
    local url=http://127.0.0.1:$HARPER_HTTP_PORT
    if lg_load harper "$url"; then
        local s
        for s in $REST_SCENARIOS; do
            lg harper "$s" --url "$url"
        done
    fi
    stop "$pid"
}

# ---------------------------------------------------------------- microlith
run_microlith() {
    rm -f "$OUT/notes/microlith.txt"
    local bin=${MICROLITH_BIN:-$ROOT/target/release/microlith}
    if [ -z "${MICROLITH_BIN:-}" ]; then
        log "building microlith (cargo build --release)"
        if ! cargo build --release >"$WORK/ml-build.log" 2>&1; then
            note microlith "not measured: cargo build --release failed: $(grep -m3 -E '^error' "$WORK/ml-build.log" | tr '\n' ' ')"
            return 0
        fi
    fi
    [ -x "$bin" ] || { note microlith "not measured: no binary at $bin"; return 0; }
    local ncores
    ncores=$(awk -F, '{print NF}' <<<"$SERVER_CORES")
    ml_config() { # ml_config WITH_MQTT
        cat <<EOF
[shards]
count = $ncores
cores = [$SERVER_CORES]

[storage]
data_dir = "$WORK/microlith-data"

[http]
listen = "127.0.0.1:$ML_HTTP_PORT"

[[tables]]
name = "Product"
primary_key = "id"
indexes = ["category"]
EOF
        if [ "$1" = 1 ]; then
            printf '\n[mqtt]\nlisten = "127.0.0.1:%s"\n' "$ML_MQTT_PORT"
        fi
    }
    local pid ready=0 with_mqtt s _
    for with_mqtt in 1 0; do
        rm -rf "$WORK/microlith-data"
        ml_config "$with_mqtt" >"$WORK/microlith.toml"
        start microlith "$WORK/microlith.log" taskset -c "$SERVER_CORES" "$bin" serve --config "$WORK/microlith.toml"
        pid=$LAST_PID
        for _ in $(seq 1 300); do
            if grep -q '^microlith ready' "$WORK/microlith.log" 2>/dev/null; then
                ready=1
                break
            fi
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        [ "$ready" = 1 ] && break
        stop "$pid"
        # A build without MQTT yet rejects the [mqtt] section: measure its HTTP side.
        if [ "$with_mqtt" = 1 ] && grep -q 'mqtt' "$WORK/microlith.log"; then
            note microlith "this build rejects the [mqtt] config section ($(grep -m1 mqtt "$WORK/microlith.log" | cut -c1-100)…): HTTP measured without it, MQTT not measured."
            continue
        fi
        break
    done
    cp "$WORK/microlith.toml" "$OUT/configs/microlith.toml"
    if [ "$ready" = 0 ] || [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$ML_HTTP_PORT/health")" != 200 ]; then
        note microlith "not measured: the server did not print 'microlith ready' and answer /health within 30 s. Its output: $(tail -5 "$WORK/microlith.log" | sed 's/\x1b\[[0-9;]*m//g' | tr '\n' ' ') Re-run alone once it serves: scripts/bench-peers.sh microlith (OUT=$OUT to add to this report)."
        stop "$pid"
        return 0
    fi
    note microlith "microlith $(git -C "$ROOT" rev-parse --short HEAD), $ncores shard(s) on core(s) $SERVER_CORES"
    local url=http://127.0.0.1:$ML_HTTP_PORT
    if lg_load microlith "$url"; then
        for s in $REST_SCENARIOS; do
            lg microlith "$s" --url "$url"
        done
    fi
    if [ "$with_mqtt" = 1 ] && wait_port "$ML_MQTT_PORT" 1; then
        for s in $MQTT_SCENARIOS; do
            lg microlith "$s" --broker "127.0.0.1:$ML_MQTT_PORT"
        done
    elif [ "$with_mqtt" = 1 ]; then
        note microlith "MQTT not measured: nothing listens on 127.0.0.1:$ML_MQTT_PORT"
    fi
    stop "$pid"
}

# ---------------------------------------------------------------- self-check
median() { sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }

wrk_us() { # wrk_us FIELD FILE: a wrk --latency percentile in µs
    awk -v f="$1" '$1 == f {v=$2; if (v ~ /us$/) {sub(/us$/,"",v); print v} else if (v ~ /ms$/) {sub(/ms$/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s$/,"",v); print v*1000000}}' "$2"
}

json_num() { # json_num FILE KEY: first "KEY": number in a result.json (flat keys are unique enough here)
    sed -n "s/^ *\"$2\": \([0-9.]*\),*$/\1/p" "$1" | head -1
}

json_block_num() { # json_block_num FILE OBJECT KEY: "KEY": number inside the object "OBJECT": {...}
    sed -n "/^ *\"$2\": {/,/}/p" "$1" | sed -n "s/^ *\"$3\": \([0-9.]*\),*$/\1/p" | head -1
}

run_selfcheck() {
    rm -f "$OUT/notes/selfcheck.txt"
    need wrk wrk
    start_nginx 1 || { note selfcheck "nginx did not start"; return 0; }
    local dir=$OUT/selfcheck url=http://127.0.0.1:$NGINX_PORT/ r
    rm -rf "$dir"
    mkdir -p "$dir"
    : >"$dir/throughput.tsv"
    # Rounds alternate which client goes first, so drift in the machine's load hits both;
    # the verdict is the median of the per-round ratios.
    for r in $(seq 1 "$SELFCHECK_REPEATS"); do
        local wcmd=(taskset -c "$LOADGEN_CORES" wrk -t1 -c64 -d"$SELFCHECK_DURATION" --latency "$url")
        local lcmd=("$LOADGEN" run "$SCEN/http-fixed.toml" --url "$url" --cores "$LOADGEN_CORES" --connections 64
            --duration "$SELFCHECK_DURATION" --warmup 0s --name "loadgen-c64-$r" --quiet --out "$dir/loadgen-c64-$r")
        local order=(wrk loadgen) who
        [ $((r % 2)) = 0 ] && order=(loadgen wrk)
        for who in "${order[@]}"; do
            if [ "$who" = wrk ]; then
                printf '%s\n' "${wcmd[*]}" >>"$COMMANDS"
                { time "${wcmd[@]}" >"$dir/wrk-c64-$r.txt"; } 2>"$dir/wrk-c64-$r.cpu"
            else
                printf '%s\n' "${lcmd[*]/#$ROOT\//}" >>"$COMMANDS"
                "${lcmd[@]}" >/dev/null
            fi
        done
        local lj=$dir/loadgen-c64-$r/result.json
        # Client CPU per request: wrk from the shell's time, loadgen from its own rusage.
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$(awk '/^Requests\/sec/ {print $2}' "$dir/wrk-c64-$r.txt")" \
            "$(json_num "$lj" throughput)" "$(wrk_us 50% "$dir/wrk-c64-$r.txt")" "$(json_num "$lj" p50)" \
            "$(awk -v n="$(awk '/requests in/ {print $1}' "$dir/wrk-c64-$r.txt")" '{printf "%.2f", ($1 + $2) * 1e6 / n}' "$dir/wrk-c64-$r.cpu")" \
            "$(awk -v c="$(json_num "$lj" loadgen_cpu_s)" -v t="$(json_num "$lj" throughput)" -v d="$(json_num "$lj" duration_s)" 'BEGIN {printf "%.2f", c * 1e6 / (t * d)}')" \
            "$(json_num "$lj" loadgen_cpu_share)" >>"$dir/throughput.tsv"
        log "self-check round $r: $(tail -1 "$dir/throughput.tsv")"
    done
    # Latency floor, one connection: back to back (closed loop), and at a low rate: wrk
    # waits 1 ms after each answer (its Lua delay hook), loadgen runs open loop at the rate
    # wrk reached.
    local wcmd=(taskset -c "$LOADGEN_CORES" wrk -t1 -c1 -d"$DURATION" --latency "$url")
    printf '%s\n' "${wcmd[*]}" >>"$COMMANDS"
    "${wcmd[@]}" >"$dir/wrk-c1.txt"
    echo 'function delay() return 1 end' >"$dir/wrk-delay-1ms.lua"
    wcmd=(taskset -c "$LOADGEN_CORES" wrk -t1 -c1 -d"$DURATION" --latency -s "$dir/wrk-delay-1ms.lua" "$url")
    printf '%s\n' "${wcmd[*]}" >>"$COMMANDS"
    "${wcmd[@]}" >"$dir/wrk-c1-delay.txt"
    local low_rate
    low_rate=$(awk '/^Requests\/sec/ {printf "%d", $2}' "$dir/wrk-c1-delay.txt")
    local c1=("$LOADGEN" run "$SCEN/http-fixed.toml" --url "$url" --cores "$LOADGEN_CORES" --connections 1
        --duration "$DURATION" --warmup 1s --quiet)
    printf '%s\n' "${c1[*]/#$ROOT\//} --name loadgen-c1 --out $dir/loadgen-c1" >>"$COMMANDS"
    "${c1[@]}" --name loadgen-c1 --out "$dir/loadgen-c1" >/dev/null
    printf '%s\n' "${c1[*]/#$ROOT\//} --rate $low_rate --name loadgen-c1-low-rate --out $dir/loadgen-c1-low-rate" >>"$COMMANDS"
    "${c1[@]}" --rate "$low_rate" --name loadgen-c1-low-rate --out "$dir/loadgen-c1-low-rate" >/dev/null
    stop "$NGINX_PID"

    local wrk_thr lg_thr wrk_p50 lg_p50 wrk_low_p50 lg_low_p50 lg_low_p50_intended thr_ratio floor_diff low_diff
    local wrk_cpu lg_cpu
    wrk_thr=$(cut -f1 "$dir/throughput.tsv" | median)
    lg_thr=$(cut -f2 "$dir/throughput.tsv" | median)
    wrk_cpu=$(cut -f5 "$dir/throughput.tsv" | median)
    lg_cpu=$(cut -f6 "$dir/throughput.tsv" | median)
    wrk_p50=$(wrk_us 50% "$dir/wrk-c1.txt")
    lg_p50=$(json_num "$dir/loadgen-c1/result.json" p50)
    wrk_low_p50=$(wrk_us 50% "$dir/wrk-c1-delay.txt")
    # wrk times each request from its actual send: compare with loadgen's service time
    # (also from the actual send); the from-intended figure is shown beside it.
    lg_low_p50=$(json_block_num "$dir/loadgen-c1-low-rate/result.json" service_time_us p50)
    lg_low_p50_intended=$(json_num "$dir/loadgen-c1-low-rate/result.json" p50)
    thr_ratio=$(awk -F'\t' '{printf "%.4f\n", $2 / $1}' "$dir/throughput.tsv" | median)
    thr_ratio=$(awk -v r="$thr_ratio" 'BEGIN {printf "%.3f", r}')
    floor_diff=$(awk -v a="$lg_p50" -v b="$wrk_p50" 'BEGIN {printf "%.1f", a - b}')
    low_diff=$(awk -v a="$lg_low_p50" -v b="$wrk_low_p50" 'BEGIN {printf "%.1f", a - b}')
    local pass_thr pass_floor pass_low
    pass_thr=$(awk -v r="$thr_ratio" 'BEGIN {print (r >= 0.85) ? "PASS" : "FAIL"}')
    pass_floor=$(awk -v a="$floor_diff" 'BEGIN {print (a <= 20) ? "PASS" : "FAIL"}')
    pass_low=$(awk -v a="$low_diff" 'BEGIN {print (a <= 20) ? "PASS" : "FAIL"}')
    {
        echo "Placement: nginx (1 worker) on core(s) $SERVER_CORES; wrk -t1 and loadgen (1 worker thread) on core(s) $LOADGEN_CORES. Throughput: $SELFCHECK_REPEATS rounds of $SELFCHECK_DURATION per client, alternating which goes first; the verdict is the median of the per-round ratios. Latency floors: $DURATION per run."
        echo
        echo "| round | wrk req/s | loadgen req/s | wrk p50 (µs) | loadgen p50 (µs) | wrk CPU µs/req | loadgen CPU µs/req | loadgen core busy |"
        echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
        awk -F'\t' '{printf "| %d | %.0f | %.0f | %s | %s | %s | %s | %.0f %% |\n", NR, $1, $2, $3, $4, $5, $6, $7 * 100}' "$dir/throughput.tsv"
        echo
        echo "CPU per request is each client's own CPU time (user + system) divided by the requests it completed: lower means more headroom. A core-busy share well below 100 % means the client was waiting for the server, not the other way round."
        echo
        echo "| check | wrk | loadgen | result | threshold | verdict |"
        echo "|---|---:|---:|---:|---|---|"
        printf '| closed-loop throughput, 64 connections (medians; ratio = median of per-round ratios) | %.0f req/s | %.0f req/s | loadgen/wrk = %s | ≥ 0.85 | %s |\n' "$wrk_thr" "$lg_thr" "$thr_ratio" "$pass_thr"
        printf '| closed-loop throughput, 64 connections, best round of each (least disturbed) | %.0f req/s | %.0f req/s | loadgen/wrk = %s | - | - |\n' "$(cut -f1 "$dir/throughput.tsv" | sort -g | tail -1)" "$(cut -f2 "$dir/throughput.tsv" | sort -g | tail -1)" "$(awk -F'\t' '$1 > w {w = $1} $2 > l {l = $2} END {printf "%.2f", l / w}' "$dir/throughput.tsv")"
        printf '| client CPU per request, 64 connections (median) | %s µs | %s µs | loadgen/wrk = %s | lower is better | - |\n' "$wrk_cpu" "$lg_cpu" "$(awk -v a="$lg_cpu" -v b="$wrk_cpu" 'BEGIN {printf "%.2f", a / b}')"
        printf '| latency floor p50, 1 connection back to back | %s µs | %s µs | %+.1f µs | ≤ +20 µs | %s |\n' "$wrk_p50" "$lg_p50" "$floor_diff" "$pass_floor"
        printf '| latency floor p50, 1 connection at %s req/s (wrk: 1 ms delay after each answer; loadgen: open loop at that rate, service time) | %s µs | %s µs | %+.1f µs | ≤ +20 µs | %s |\n' "$low_rate" "$wrk_low_p50" "$lg_low_p50" "$low_diff" "$pass_low"
        echo
        echo "At the low rate loadgen's p50 from the *intended* send time was $lg_low_p50_intended µs: that figure also counts any wait behind a slow answer, which a closed-loop tool such as wrk leaves out."
    } >"$dir/selfcheck.md"
    log "self-check: throughput ratio $thr_ratio ($pass_thr), floor $floor_diff µs ($pass_floor), low-rate floor $low_diff µs ($pass_low)"
}

# ---------------------------------------------------------------- report
pretty_scenario() {
    case $1 in
        rest-get) echo "REST GET by id (closed loop)" ;;
        rest-put) echo "REST PUT by id (closed loop)" ;;
        rest-mix) echo "REST 90/10 GET/PUT, zipf keys (closed loop)" ;;
        rest-query) echo "REST indexed query, 20 rows (closed loop)" ;;
        rest-get-latency) echo "REST GET by id at 2000 req/s (open loop)" ;;
        mqtt-fanout-qos0) echo "MQTT fan-out 1→4, QoS 0 (closed loop)" ;;
        mqtt-fanout-qos1) echo "MQTT fan-out 1→4, QoS 1 (closed loop)" ;;
        mqtt-fanin) echo "MQTT fan-in 8→1, QoS 0 (closed loop)" ;;
        mqtt-fanout-latency) echo "MQTT fan-out 1→4, QoS 1 at 5k msg/s (open loop)" ;;
        *) echo "$1" ;;
    esac
}

report() {
    local peers="nginx harper mosquitto" s p files first=1 rel
    rel=$(realpath -m --relative-to="$(dirname "$REPORT")" "$OUT")
    {
        echo "# microlith and its peers, side by side — $DATE"
        echo
        echo "Made by \`scripts/bench-peers.sh\` with the bundled \`$("$LOADGEN" --version)\` (repository at $(git -C "$ROOT" rev-parse --short HEAD), loadgen working tree as run)."
        echo "Machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1), Linux $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)."
        echo "Placement: servers on core(s) $SERVER_CORES (taskset; $SERVER_THREADS worker threads where the server has the setting, microlith one shard per server core); loadgen on core(s) $LOADGEN_CORES (one pinned worker thread per core)."
        echo "Each run: $WARMUP warm-up (discarded), then $DURATION measured. Closed loop = peak throughput; open loop = latency at a fixed rate, measured from intended send times (no coordinated omission)."
        echo "The machine was shared with other builds and tests while this ran: the 1-minute load average before each run is logged with the commands below. Between runs of the same thing, differences under ~20 % are within the noise seen here."
        echo "Data set: $RECORDS products (\`rest-load\`), ids p0…p$((RECORDS - 1)), 100 categories, ~100 B JSON each. nginx answers every request with one fixed JSON record: the HTTP ceiling of this machine, not a database."
        echo
        echo "## Ratios (microlith ÷ peer)"
        echo
        if [ -f "$OUT/microlith/rest-get/result.json" ] || [ -f "$OUT/microlith/mqtt-fanout-qos0/result.json" ]; then
            for s in $REST_SCENARIOS $MQTT_SCENARIOS; do
                for p in $peers; do
                    if [ -f "$OUT/$p/$s/result.json" ] && [ -f "$OUT/microlith/$s/result.json" ]; then
                        if [ "$first" = 1 ]; then
                            "$LOADGEN" compare --row --header --title "$s" "$OUT/$p/$s/result.json" "$OUT/microlith/$s/result.json"
                            first=0
                        else
                            "$LOADGEN" compare --row --title "$s" "$OUT/$p/$s/result.json" "$OUT/microlith/$s/result.json"
                        fi
                    fi
                done
            done
            echo
            echo "\"run ÷ baseline\" is microlith ÷ peer: above 1 for throughput is better, below 1 for p99 is better."
        else
            echo "**microlith was not measured in this report** (see Notes); the tables below hold the peers alone."
            echo "Once microlith serves, \`OUT=$OUT scripts/bench-peers.sh microlith\` adds it and rebuilds this report with the ratio table."
        fi
        echo
        for s in $REST_SCENARIOS $MQTT_SCENARIOS; do
            files=()
            for p in microlith $peers; do
                [ -f "$OUT/$p/$s/result.json" ] && files+=("$OUT/$p/$s/result.json")
            done
            [ "${#files[@]}" = 0 ] && continue
            echo "## $(pretty_scenario "$s")"
            echo
            "$LOADGEN" compare --title "$s" --out "$OUT/compare/$s" "${files[@]}" | sed '1,2d'
            echo
            echo "![$s]($rel/compare/$s/compare.svg)"
            echo
            for f in "${files[@]}"; do
                local d=${f%/result.json}
                if grep -q '"lost": [1-9]' "$f" || grep -q '"errors_total": [1-9]' "$f"; then
                    echo "- $(basename "$(dirname "$d")"): errors or losses, see [its result]($rel/${d#"$OUT"/}/result.md)"
                fi
            done
            echo
        done
        for p in microlith harper nginx mosquitto; do
            if [ -f "$OUT/$p/rest-load/result.json" ]; then
                echo "- load phase, $p: $(grep -m1 '^Load phase' "$OUT/$p/rest-load/result.md" | sed 's/^Load phase: //')"
            fi
        done
        echo
        if [ -f "$OUT/selfcheck/selfcheck.md" ]; then
            echo "## Self-check: is loadgen the bottleneck? (against wrk on nginx)"
            echo
            cat "$OUT/selfcheck/selfcheck.md"
            echo
        fi
        echo "## Notes"
        echo
        for p in selfcheck nginx mosquitto harper microlith; do
            [ -f "$OUT/notes/$p.txt" ] && sed "s/^/- **$p**: /" "$OUT/notes/$p.txt"
        done
        echo "- Server configurations used: \`${OUT}/configs/\`. Per-run results (result.json with the exact command and machine, result.md, latency.hgrm, latency.svg): \`${OUT}/PEER/SCENARIO/\`."
        echo
        echo "## Commands"
        echo
        echo '```'
        echo "# latest invocation (the report is rebuilt from every result under $OUT):"
        echo "SERVER_CORES=$SERVER_CORES LOADGEN_CORES=$LOADGEN_CORES SERVER_THREADS=$SERVER_THREADS DURATION=$DURATION WARMUP=$WARMUP RECORDS=$RECORDS SELFCHECK_REPEATS=$SELFCHECK_REPEATS SELFCHECK_DURATION=$SELFCHECK_DURATION \\"
        echo "  LOADGEN_BIN=${LOADGEN_BIN:-} MICROLITH_BIN=${MICROLITH_BIN:-} HARPER_PREFIX=$HARPER_PREFIX scripts/bench-peers.sh $*"
        echo "# every command that produced the results, in order:"
        [ -f "$COMMANDS" ] && cat "$COMMANDS"
        echo '```'
    } >"$REPORT"
    log "wrote $REPORT"
}

# ---------------------------------------------------------------- main
TARGETS=("$@")
[ "${#TARGETS[@]}" = 0 ] && TARGETS=(selfcheck nginx mosquitto harper microlith)
for t in "${TARGETS[@]}"; do
    case $t in
        selfcheck | nginx | mosquitto | harper | microlith | report) ;;
        all) TARGETS=(selfcheck nginx mosquitto harper microlith) ;;
        *)
            echo "bench-peers.sh: unknown target '$t' (selfcheck, nginx, mosquitto, harper, microlith, report, all)" >&2
            exit 2
            ;;
    esac
done
need curl curl
build_loadgen
if [ "${TARGETS[*]}" != report ]; then
    printf '# %s  scripts/bench-peers.sh %s\n' "$(date -u +%FT%TZ)" "${TARGETS[*]}" >>"$COMMANDS"
fi
for t in "${TARGETS[@]}"; do
    if [ "$t" != report ]; then "run_$t"; fi
done
report "${TARGETS[@]}"
