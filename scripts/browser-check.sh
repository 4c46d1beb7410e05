#!/usr/bin/env bash
# browser-check.sh: a browser app on another origin uses a microlith node. Starts the node
# (an open node on loopback, table Note), serves scripts/browser/cross-origin.html from a
# second origin, and loads it in headless Chromium: the page writes and reads through fetch
# (CORS preflight), follows the table with an EventSource (onmessage) and a WebSocket, and
# must show every change made from the page and from outside, with no console error. Saves
# the screenshot as docs/browser-check.png. Run by hand (not in CI); exit 0 when it holds.
#
# Knobs: NODE_PORT (29970), PAGE_PORT (29971), PROFILE (debug | release), SHOT (the PNG).
# Installs what is missing: chromium (apt), playwright-core (npm, scripts/shop/browser).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
NODE_PORT="${NODE_PORT:-29970}"
PAGE_PORT="${PAGE_PORT:-29971}"
PROFILE="${PROFILE:-debug}"
SHOT="${SHOT:-$ROOT/docs/browser-check.png}"
log() { echo "browser-check: $*" >&2; }

command -v chromium >/dev/null || { log "installing chromium"; apt-get install -y chromium >&2; }
[[ -d scripts/shop/browser/node_modules/playwright-core ]] ||
	(cd scripts/shop/browser && npm ci --no-audit --no-fund >&2)
if [[ "$PROFILE" == release ]]; then cargo build --release >&2; else cargo build >&2; fi
BIN="$ROOT/target/$PROFILE/microlith"

WORK="$(mktemp -d)"
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$WORK"
}
trap cleanup EXIT

cat >"$WORK/node.toml" <<TOML
[storage]
data_dir = "$WORK/data"
[http]
listen = "127.0.0.1:$NODE_PORT"
[mqtt]
listen = "127.0.0.1:0"
[[tables]]
name = "Note"
TOML
"$BIN" serve --config "$WORK/node.toml" >"$WORK/node.out" 2>"$WORK/node.log" &
PIDS+=($!)
for _ in $(seq 1 100); do grep -q "microlith ready" "$WORK/node.out" && break; sleep 0.1; done
grep -q "microlith ready" "$WORK/node.out" || { cat "$WORK/node.log" >&2; log "the node did not start"; exit 1; }

python3 -m http.server "$PAGE_PORT" --bind 127.0.0.1 --directory scripts/browser >"$WORK/page.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 50); do curl -sf -o /dev/null "http://127.0.0.1:$PAGE_PORT/cross-origin.html" && break; sleep 0.1; done

# The page's origin (127.0.0.1:PAGE_PORT) and the node's (localhost:NODE_PORT) differ.
NODE_PATH="$ROOT/scripts/shop/browser/node_modules" node scripts/browser/cross-origin.js \
	"http://127.0.0.1:$PAGE_PORT/cross-origin.html" "http://localhost:$NODE_PORT" "$SHOT"
