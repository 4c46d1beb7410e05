#!/usr/bin/env bash
# bench-components.sh — what a component call costs next to a plain REST GET, on one node of
# the stock binary, in one run: GET /Product/{id} (one record, REST), GET /page/{id} (the
# catalog component: three tables read with function calls, one JSON document), and a
# caching-table hit (GET /Device/{id} of a table filled from an origin, every record fresh).
# Rounds alternate between the workloads so that each sees the same machine load; the
# report is bench-results/DATE-components.md.
#
#   scripts/bench-components.sh
#
# Knobs (environment, defaults in brackets):
#   ROUNDS [5]  DURATION [10s]  WARMUP [2s]  RECORDS [100000]  CONNECTIONS [32]
#   SERVER_CORES [0]  LOADGEN_CORES [1]   server and loadgen never share a core
#   MICROLITH_BIN / LOADGEN_BIN   prebuilt binaries (else: cargo build --release)
#   WORKLOADS ["rest-get page cache-hit"]
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-2s}
RECORDS=${RECORDS:-100000}
CONNECTIONS=${CONNECTIONS:-32}
SERVER_CORES=${SERVER_CORES:-0}
LOADGEN_CORES=${LOADGEN_CORES:-1}
WORKLOADS=${WORKLOADS:-rest-get page cache-hit}
OUT=bench-results/$(date +%F)-components
REPORT=$OUT.md
PORT=29936
ORIGIN_PORT=29937
WORK=$(mktemp -d /tmp/bench-components.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
log() { echo "[bench-components] $*" >&2; }

if [ -z "${MICROLITH_BIN:-}" ] || [ -z "${LOADGEN_BIN:-}" ]; then
    cargo build --release -p microlith -p loadgen >&2
fi
MICROLITH=${MICROLITH_BIN:-$ROOT/target/release/microlith}
LOADGEN=${LOADGEN_BIN:-$ROOT/target/release/loadgen}
mkdir -p "$OUT"
echo "# $(date -u +%FT%TZ)  scripts/bench-components.sh" >"$OUT/commands.txt"

# The origin of the caching table: answers every GET with a small JSON record (never asked
# during the measured runs: every record is written fresh before them).
python3 - "$ORIGIN_PORT" >"$WORK/origin.log" 2>&1 <<'EOF' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"id": self.path.rsplit("/", 1)[-1], "model": "m1", "site": "s1"}).encode()
        self.send_response(200); self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body))); self.end_headers(); self.wfile.write(body)
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
EOF
PIDS+=($!)

cores=$(echo "$SERVER_CORES" | tr ',' ' ' | wc -w)
cat >"$WORK/microlith.toml" <<EOF
[shards]
count = $cores
cores = [$SERVER_CORES]

[storage]
data_dir = "$WORK/data"

[http]
listen = "127.0.0.1:$PORT"

[mqtt]
listen = "127.0.0.1:0"

[components.catalog]
EOF
if echo "$WORKLOADS" | grep -q cache-hit; then
    cat >>"$WORK/microlith.toml" <<EOF

[components.telemetry]
device_origin = "http://127.0.0.1:$ORIGIN_PORT/devices/{id}"
device_expiration_secs = 86400
EOF
fi
cp "$WORK/microlith.toml" "$OUT/microlith.toml"
taskset -c "$SERVER_CORES" "$MICROLITH" serve --config "$WORK/microlith.toml" >"$WORK/server.out" 2>"$WORK/server.log" &
PIDS+=($!)
for _ in $(seq 1 300); do
    grep -q "microlith ready" "$WORK/server.out" && break
    sleep 0.1
done
grep -q "microlith ready" "$WORK/server.out" || { log "server did not start"; cat "$WORK/server.log" >&2; exit 1; }

URL=http://127.0.0.1:$PORT
load() { # TABLE
    "$LOADGEN" http --url "$URL" --table "$1" --load "$RECORDS" --duration 0s --cores "$LOADGEN_CORES" --quiet >/dev/null
}
load Product
load Price
load Stock
if echo "$WORKLOADS" | grep -q cache-hit; then
    # Every record of the caching table fresh (written now, kept a day): each GET is a hit
    # that goes through the cache's checks and never reaches the origin.
    load Device
fi

table_of() {
    case $1 in
        rest-get) echo Product ;;
        page) echo page ;;
        cache-hit) echo Device ;;
    esac
}

for round in $(seq 1 "$ROUNDS"); do
    for w in $WORKLOADS; do
        out=$OUT/$w-r$round
        cmd=("$LOADGEN" http --url "$URL" --table "$(table_of "$w")" --keys "$RECORDS" --mix get=100 \
            --connections "$CONNECTIONS" --duration "$DURATION" --warmup "$WARMUP" --cores "$LOADGEN_CORES" \
            --name "$w" --quiet --out "$out")
        echo "# load average $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/commands.txt"
        echo "${cmd[*]}" >>"$OUT/commands.txt"
        "${cmd[@]}" >/dev/null
    done
    log "round $round done"
done

python3 - "$OUT" "$WORKLOADS" >"$REPORT.table" <<'EOF'
import glob, json, statistics, sys
out, workloads = sys.argv[1], sys.argv[2].split()
print("| workload | what a request does | throughput median (min–max) | × REST GET | p50 | p99 | p99.9 | errors |")
print("|---|---|---:|---:|---:|---:|---:|---:|")
what = {"rest-get": "GET /Product/{id}: one record, REST",
        "page": "GET /page/{id}: catalog component, three tables, one JSON",
        "cache-hit": "GET /Device/{id}: caching table, fresh hit"}
base = None
for w in workloads:
    rs = [json.load(open(f)) for f in sorted(glob.glob(f"{out}/{w}-r*/result.json"))]
    if not rs:
        continue
    t = [r["throughput"] for r in rs]
    med = statistics.median(t)
    base = base or med
    lat = lambda k: statistics.median(r["latency_us"][k] for r in rs)
    print(f"| {w} | {what.get(w, w)} | {med:,.0f} ({min(t):,.0f}–{max(t):,.0f}) | {med / base:.2f} "
          f"| {lat('p50'):.0f} µs | {lat('p99'):.0f} µs | {lat('p99_9'):.0f} µs | {sum(r['errors_total'] for r in rs)} |")
EOF
{
    echo "# A component call next to a plain REST GET — $(date +%F)"
    echo
    echo "Made by \`scripts/bench-components.sh\` (repository at $(git rev-parse --short HEAD)) with the stock binary and its example components."
    echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Linux $(uname -r), $(awk '/MemTotal/ {printf "%.1f GiB", $2/1048576}' /proc/meminfo)."
    echo "Placement: the server on core(s) $SERVER_CORES (one shard per core, taskset), loadgen on core(s) $LOADGEN_CORES; $RECORDS records in each table, uniform keys, $CONNECTIONS connections, closed loop; $WARMUP warm-up then $DURATION measured; $ROUNDS rounds, the workloads alternating in each. Config: \`$OUT/microlith.toml\`; commands and the load average before each run: \`$OUT/commands.txt\`."
    echo
    cat "$REPORT.table"
} >"$REPORT"
rm -f "$REPORT.table"
cat "$REPORT"
