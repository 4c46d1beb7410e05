#!/usr/bin/env bash
# bench-compare.sh — two builds of microlith, side by side, in one run: the same loadgen
# scenarios against each, rounds alternating between the builds so that both see the same
# machine load, and a report in bench-results/DATE-NAME.md with the median of each.
#
#   scripts/bench-compare.sh BASE_BIN NEW_BIN [NAME]
#   e.g. git worktree add /tmp/base <commit> && (cd /tmp/base && cargo build --release)
#        scripts/bench-compare.sh /tmp/base/target/release/microlith target/release/microlith platform-core
#
# Knobs (environment, defaults in brackets):
#   SCENARIOS ["rest-get rest-put"]   loadgen/scenarios/*.toml to run
#   ROUNDS [5]  DURATION [10s]  WARMUP [2s]  RECORDS [100000]
#   SERVER_CORES [0]  LOADGEN_CORES [1]   server and loadgen never share a core
#   LOADGEN_BIN   a prebuilt loadgen (else: cargo build --release -p loadgen)
#   BASE_LABEL [base]  NEW_LABEL [new]
# Both servers run for the whole comparison (idle while the other is measured), on
# 127.0.0.1 ports 29926/29927 (HTTP) and 31883/31884 (MQTT); both are stopped on exit.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
[ $# -ge 2 ] || { sed -n '2,17p' "$0"; exit 2; }
BASE_BIN=$(realpath "$1")
NEW_BIN=$(realpath "$2")
NAME=${3:-compare}
SCENARIOS=${SCENARIOS:-rest-get rest-put}
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
RECORDS=${RECORDS:-100000}
SERVER_CORES=${SERVER_CORES:-0}
LOADGEN_CORES=${LOADGEN_CORES:-1}
BASE_LABEL=${BASE_LABEL:-base}
NEW_LABEL=${NEW_LABEL:-new}
OUT=bench-results/$(date +%F)-$NAME
REPORT=$OUT.md
WORK=$(mktemp -d /tmp/bench-compare.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

log() { echo "[bench-compare] $*" >&2; }

LOADGEN=${LOADGEN_BIN:-}
if [ -z "$LOADGEN" ]; then
    cargo build --release -p loadgen >&2
    LOADGEN=$ROOT/target/release/loadgen
fi
mkdir -p "$OUT"
echo "# $(date -u +%FT%TZ)  scripts/bench-compare.sh $*" >"$OUT/commands.txt"

# start LABEL BIN HTTP_PORT MQTT_PORT: one server on the server cores, data in $WORK.
start() {
    local label=$1 bin=$2 http=$3 mqtt=$4 cores
    cores=$(echo "$SERVER_CORES" | tr ',' ' ' | wc -w)
    cat >"$WORK/$label.toml" <<EOF
[shards]
count = $cores
cores = [$SERVER_CORES]

[storage]
data_dir = "$WORK/$label-data"

[http]
listen = "127.0.0.1:$http"

[mqtt]
listen = "127.0.0.1:$mqtt"

[[tables]]
name = "Product"
primary_key = "id"
indexes = ["category"]
EOF
    taskset -c "$SERVER_CORES" "$bin" serve --config "$WORK/$label.toml" >"$WORK/$label.out" 2>"$WORK/$label.log" &
    PIDS+=($!)
    for _ in $(seq 1 300); do
        grep -q "microlith ready" "$WORK/$label.out" && return 0
        sleep 0.1
    done
    log "$label did not start:"; cat "$WORK/$label.log" >&2; exit 1
}

# run LABEL PORT SCENARIO ROUND
run() {
    local label=$1 port=$2 scen=$3 round=$4 out
    out=$OUT/$label/$scen-r$round
    local cmd=("$LOADGEN" run "loadgen/scenarios/$scen.toml" --cores "$LOADGEN_CORES" --duration "$DURATION" --warmup "$WARMUP" --name "$label" --quiet --out "$out" --url "http://127.0.0.1:$port")
    echo "# load average $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/commands.txt"
    echo "${cmd[*]}" >>"$OUT/commands.txt"
    "${cmd[@]}" >/dev/null
}

start "$BASE_LABEL" "$BASE_BIN" 29926 31883
start "$NEW_LABEL" "$NEW_BIN" 29927 31884
for port in 29926 29927; do
    "$LOADGEN" run loadgen/scenarios/rest-load.toml --cores "$LOADGEN_CORES" --load "$RECORDS" --quiet \
        --out "$WORK/load-$port" --url "http://127.0.0.1:$port" >/dev/null
done
for round in $(seq 1 "$ROUNDS"); do
    for scen in $SCENARIOS; do
        # Alternate which build goes first, so neither always follows the other.
        if [ $((round % 2)) = 1 ]; then order="base new"; else order="new base"; fi
        for which in $order; do
            if [ "$which" = base ]; then run "$BASE_LABEL" 29926 "$scen" "$round"; else run "$NEW_LABEL" 29927 "$scen" "$round"; fi
        done
        log "round $round $scen done"
    done
done

python3 - "$OUT" "$BASE_LABEL" "$NEW_LABEL" "$SCENARIOS" "$ROUNDS" >"$REPORT.table" <<'EOF'
import json, statistics, sys, glob
out, base, new, scens, rounds = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4].split(), int(sys.argv[5])
def runs(label, scen):
    rs = []
    for f in sorted(glob.glob(f"{out}/{label}/{scen}-r*/result.json")):
        d = json.load(open(f))
        rs.append((d["throughput"], d["latency_us"]["p50"], d["latency_us"]["p99"], d["errors_total"]))
    return rs
print(f"| scenario | build | rounds | throughput median (min–max) | p50 median | p99 median | errors |")
print(f"|---|---|---:|---:|---:|---:|---:|")
for scen in scens:
    med = {}
    for label in (base, new):
        rs = runs(label, scen)
        t = [r[0] for r in rs]
        med[label] = statistics.median(t)
        print(f"| {scen} | {label} | {len(rs)} | {statistics.median(t):,.0f} ({min(t):,.0f}–{max(t):,.0f}) "
              f"| {statistics.median(r[1] for r in rs):.0f} µs | {statistics.median(r[2] for r in rs):.0f} µs | {sum(r[3] for r in rs)} |")
    print(f"| {scen} | {new} ÷ {base} | | **{med[new] / med[base]:.3f}** | | | |")
EOF
{
    echo "# microlith $BASE_LABEL and $NEW_LABEL, side by side — $(date +%F)"
    echo
    echo "Made by \`scripts/bench-compare.sh\` (repository at $(git rev-parse --short HEAD)): $BASE_LABEL = \`$BASE_BIN\`, $NEW_LABEL = \`$NEW_BIN\`."
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)."
    echo "Placement: both servers on core(s) $SERVER_CORES (one shard per core, taskset), loadgen on core(s) $LOADGEN_CORES; $RECORDS records loaded into each. Each run: $WARMUP warm-up, then $DURATION measured, closed loop; $ROUNDS rounds alternating which build goes first. The load average before each run is in \`$OUT/commands.txt\`."
    echo
    cat "$REPORT.table"
} >"$REPORT"
rm -f "$REPORT.table"
cat "$REPORT"
