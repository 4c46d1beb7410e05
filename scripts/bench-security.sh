#!/usr/bin/env bash
# bench-security.sh — what authentication and TLS cost a GET, measured with wrk (an
# independent tool) in one run: two servers of the same build, one without users (no
# authentication) and one with a super-user, both with TLS on a self-signed certificate and
# the admission limits on (loopback not exempt, rates too high to trigger, so their checks
# run on every request). Rounds alternate between the variants so that all see the same
# machine load; the report in bench-results/DATE-security.md gives the median of each.
#
#   scripts/bench-security.sh [BIN]        (default: target/release/microlith, built if missing)
#
# Knobs (environment, defaults in brackets):
#   ROUNDS [3]  DURATION [10s]  CONNS [32]  RECORDS [1000]
#   SERVER_CORE [0]  WRK_CORE [1]   the server and wrk never share a core
# Needs wrk, openssl, curl and python3 (scripts/ of this repository install nothing else).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${1:-target/release/microlith}
[ -x "$BIN" ] || cargo build --release --bin microlith >&2
BIN=$(realpath "$BIN")
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
RECORDS=${RECORDS:-1000}
SERVER_CORE=${SERVER_CORE:-0}
WRK_CORE=${WRK_CORE:-1}
for tool in wrk openssl curl python3 taskset; do
    command -v $tool >/dev/null || { echo "bench-security: $tool is needed (apt-get install $tool)" >&2; exit 2; }
done
OUT=bench-results/$(date +%F)-security
REPORT=$OUT.md
WORK=$(mktemp -d /tmp/bench-security.XXXXXX)
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT
log() { echo "[bench-security] $*" >&2; }
mkdir -p "$OUT"
echo "# $(date -u +%FT%TZ)  scripts/bench-security.sh $*" >"$OUT/commands.txt"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$WORK/key.pem" -out "$WORK/cert.pem" 2>/dev/null

# config LABEL HTTP HTTPS MQTT MQTTS
config() {
    cat >"$WORK/$1.toml" <<EOF
[shards]
count = 1
cores = [$SERVER_CORE]

[storage]
data_dir = "$WORK/$1-data"

[http]
listen = "127.0.0.1:$2"

[mqtt]
listen = "127.0.0.1:$4"

[tls]
cert_file = "$WORK/cert.pem"
key_file = "$WORK/key.pem"
https_listen = "127.0.0.1:$3"
mqtt_listen = "127.0.0.1:$5"

[limits]
exempt = []
http_requests_per_sec = 10000000
http_burst = 10000000
user_requests_per_sec = 10000000
user_burst = 10000000

[[tables]]
name = "Product"
EOF
}

# serve LABEL: starts it, waits for the ready line.
serve() {
    "$BIN" serve --config "$WORK/$1.toml" >"$WORK/$1.log" 2>&1 &
    PIDS+=($!)
    for _ in $(seq 1 100); do
        grep -q "microlith ready" "$WORK/$1.log" && return 0
        sleep 0.1
    done
    cat "$WORK/$1.log" >&2
    exit 1
}

config open 29931 29932 31891 31892
config auth 29941 29942 31901 31902
# The super-user seeds; the measured requests come from a user whose role reads Product, so
# every request goes through the permission check a real client's does.
echo "bench-password" | "$BIN" user add admin --role super_user --password-stdin \
    --config "$WORK/auth.toml" >&2
"$BIN" role add reader --read Product --config "$WORK/auth.toml" >&2
echo "reader-password" | "$BIN" user add reader --role reader --password-stdin \
    --config "$WORK/auth.toml" >&2
serve open
serve auth
ADMIN="Basic $(printf 'admin:bench-password' | base64)"
BASIC="Basic $(printf 'reader:reader-password' | base64)"
TOKEN=$(curl -sf http://127.0.0.1:29941/auth/login -H 'Content-Type: application/json' \
    -d '{"username":"reader","password":"reader-password"}' |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')

# The same records on both servers, over keep-alive connections.
python3 - "$RECORDS" "$ADMIN" <<'EOF'
import http.client, json, sys
n, basic = int(sys.argv[1]), sys.argv[2]
for port, auth in ((29931, None), (29941, basic)):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(n):
        h = {"Content-Type": "application/json"}
        if auth:
            h["Authorization"] = auth
        body = json.dumps({"id": f"p{i}", "name": f"product {i}", "price": i % 100, "category": f"cat{i % 8}"})
        c.request("PUT", f"/Product/p{i}", body, h)
        r = c.getresponse(); r.read()
        assert r.status in (201, 204), (port, r.status)
EOF

# wrk script: GET a random record, with the header given in the AUTH environment variable.
cat >"$WORK/get.lua" <<EOF
local auth = os.getenv("AUTH")
math.randomseed(os.time())
request = function()
    local h = {}
    if auth and auth ~= "" then h["Authorization"] = auth end
    return wrk.format("GET", "/Product/p" .. math.random(0, $RECORDS - 1), h)
end
EOF

# variant NAME URL AUTH
VARIANTS=(
    "plain|http://127.0.0.1:29931|"
    "basic|http://127.0.0.1:29941|$BASIC"
    "bearer|http://127.0.0.1:29941|Bearer $TOKEN"
    "tls|https://localhost:29932|"
    "tls+basic|https://localhost:29942|$BASIC"
)
declare -A RESULTS
for round in $(seq 1 "$ROUNDS"); do
    for v in "${VARIANTS[@]}"; do
        IFS='|' read -r name url auth <<<"$v"
        log "round $round: $name"
        AUTH="$auth" taskset -c "$WRK_CORE" wrk -t1 -c"$CONNS" -d"$DURATION" --latency \
            -s "$WORK/get.lua" "$url" >"$OUT/$name-$round.txt"
        if grep -q "Non-2xx" "$OUT/$name-$round.txt"; then
            log "$name answered errors:"; cat "$OUT/$name-$round.txt" >&2; exit 1
        fi
        rps=$(awk '/Requests\/sec/ {print $2}' "$OUT/$name-$round.txt")
        # p99 in microseconds (wrk prints us, ms or s).
        p99=$(awk '$1=="99%" {v=$2; m=1; if (v ~ /ms$/) m=1000; else if (v ~ /us$/) m=1; else if (v ~ /s$/) m=1000000; gsub(/[a-z]+$/, "", v); printf "%.0f", v*m}' "$OUT/$name-$round.txt")
        RESULTS[$name]="${RESULTS[$name]:-} $rps/$p99"
    done
done

median() { tr ' ' '\n' | sed '/^$/d' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
{
    echo "# GET with authentication and TLS against plain"
    echo
    echo "Run $(date -u +%FT%TZ) on $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)),"
    echo "load before the run: $(cut -d' ' -f1-3 /proc/loadavg)."
    echo "Command: \`scripts/bench-security.sh\` (raw wrk output beside this file)."
    echo "One shard pinned to core $SERVER_CORE; wrk -t1 -c$CONNS -d$DURATION pinned to core $WRK_CORE;"
    echo "GET of a random one of $RECORDS records; $ROUNDS rounds alternating the variants; medians."
    echo "Admission limits on for every variant (loopback not exempt, rates too high to trigger)."
    echo
    echo "| variant | what it runs | req/s (median) | vs plain | p99 µs (median) |"
    echo "|---|---|---|---|---|"
    base=$(echo "${RESULTS[plain]}" | tr ' ' '\n' | cut -d/ -f1 | median)
    for v in "${VARIANTS[@]}"; do
        IFS='|' read -r name url _ <<<"$v"
        rps=$(echo "${RESULTS[$name]}" | tr ' ' '\n' | cut -d/ -f1 | median)
        p99=$(echo "${RESULTS[$name]}" | tr ' ' '\n' | cut -d/ -f2 | median)
        case $name in
            plain) what="no users: no authentication" ;;
            basic) what="Basic credentials of a user with read on the table, verified once then cached per shard" ;;
            bearer) what="bearer token, verified once (HMAC-SHA256) then cached per shard" ;;
            tls) what="HTTPS (TLS 1.3, kept-alive connections), no users" ;;
            tls+basic) what="HTTPS and Basic" ;;
        esac
        ratio=$(python3 -c "print(f'{$rps/$base:.3f}')")
        echo "| $name | $what | $rps | $ratio | $p99 |"
    done
    echo
    echo "Every round (req/s / p99 µs): $(for v in "${VARIANTS[@]}"; do n=${v%%|*}; echo -n "$n:${RESULTS[$n]}; "; done)"
} >"$REPORT"
cat "$REPORT"
