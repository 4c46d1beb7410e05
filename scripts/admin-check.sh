#!/usr/bin/env bash
# The admin page in a real browser: builds microlith and loadgen, starts a two-shard node on
# loopback with a Product table, puts HTTP load on it in phases (so the rate chart moves) and
# keeps a few MQTT clients connected, loads /admin/ in headless Chromium, waits until the live
# charts have drawn, and saves a screenshot to docs/admin-page.png. Run by hand, not in CI.
#
# Needs: chromium (Debian), node and npm (playwright-core is installed into
# scripts/shop/browser), mosquitto-clients. Environment:
#   PORT [19940] MQTT_PORT [19941]  OUT [docs/admin-page.png]  POINTS [30] (snapshots to wait for)
#   PROFILE [debug] (cargo profile to build and run: debug or release)
set -euo pipefail
cd "$(dirname "$0")/.."

PORT=${PORT:-19940}
MQTT_PORT=${MQTT_PORT:-19941}
OUT=${OUT:-docs/admin-page.png}
POINTS=${POINTS:-30}
PROFILE=${PROFILE:-debug}
WORK=$(mktemp -d /tmp/admin-check.XXXXXX)
PIDS=()

log() { echo "admin-check: $*" >&2; }

cleanup() {
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

for tool in chromium node npm mosquitto_sub mosquitto_pub curl; do
    command -v "$tool" >/dev/null || { log "missing $tool"; exit 2; }
done

flag=(); [ "$PROFILE" = release ] && flag=(--release)
cargo build "${flag[@]}" -p microlith --bin microlith >&2
cargo build "${flag[@]}" -p loadgen >&2
[ -d scripts/shop/browser/node_modules/playwright-core ] ||
    (cd scripts/shop/browser && npm ci --no-audit --no-fund >&2)

cat >"$WORK/microlith.toml" <<TOML
[storage]
data_dir = "$WORK/data"
[http]
listen = "127.0.0.1:$PORT"
[mqtt]
listen = "127.0.0.1:$MQTT_PORT"
[shards]
count = 2
[[tables]]
name = "Product"
primary_key = "id"
indexes = ["category"]
[[tables]]
name = "Sensor"
primary_key = "id"
TOML

log "starting microlith on 127.0.0.1:$PORT"
NO_COLOR=1 "target/$PROFILE/microlith" serve --config "$WORK/microlith.toml" >"$WORK/out.log" 2>"$WORK/err.log" &
PIDS+=($!)
for _ in $(seq 100); do
    grep -q "microlith ready" "$WORK/out.log" 2>/dev/null && break
    sleep 0.1
done
grep -q "microlith ready" "$WORK/out.log" || { log "no ready line"; cat "$WORK/err.log" >&2; exit 1; }

# MQTT: two subscribers (one with a persistent session) and a publisher on the records' topics.
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -i dashboard -t 'Sensor/#' >/dev/null &
PIDS+=($!)
mosquitto_sub -h 127.0.0.1 -p "$MQTT_PORT" -i alarms -c -q 1 -t 'alerts/#' -t 'Sensor/+' >/dev/null &
PIDS+=($!)
(
    i=0
    while true; do
        mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -i "sensor-feed" -q 1 -r \
            -t "Sensor/s$((i % 5))" -m "{\"id\":\"s$((i % 5))\",\"celsius\":$((20 + i % 7))}"
        mosquitto_pub -h 127.0.0.1 -p "$MQTT_PORT" -i "alert-feed" -q 1 -t "alerts/s$((i % 5))" -m "check"
        i=$((i + 1))
        sleep 0.5
    done
) &
PIDS+=($!)

# HTTP: loadgen in phases of different rates, so the rate chart has a shape to show.
(
    for rate in 200 600 1200 400 900 300 1500 700; do
        "target/$PROFILE/loadgen" http --url "http://127.0.0.1:$PORT" --table Product \
            --mix get=80,put=15,query=5 --keys 500 --rate "$rate" --duration 6s --warmup 0s \
            --threads 1 --quiet >/dev/null 2>&1 || true
    done
) &
PIDS+=($!)

log "loading /admin/ in headless Chromium, waiting for $POINTS snapshots"
NODE_PATH="$PWD/scripts/shop/browser/node_modules" node scripts/admin/screenshot.js "http://127.0.0.1:$PORT" "$OUT" "$POINTS"
log "saved $OUT"
