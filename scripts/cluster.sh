#!/usr/bin/env bash
# A local 3-node cluster on loopback: shards/cluster-3/node{1,2,3}.toml, one process and one
# data directory per node (data/cluster-3/nodeN), logs and pid files in data/cluster-3/run.
#
#   scripts/cluster.sh start            start every node that is not running
#   scripts/cluster.sh stop             SIGTERM every node (clean stop) and wait
#   scripts/cluster.sh status           pid, health and replication links of each node
#   scripts/cluster.sh kill NODE        kill -9 one node (1, 2 or 3)
#   scripts/cluster.sh restart NODE     stop (if running) and start one node
#
# MICROLITH_BIN picks the binary (default target/release/microlith, built if missing).
# MICROLITH_SECRET is the cluster secret; a development one is used when it is unset.
set -euo pipefail
cd "$(dirname "$0")/.."

NODES=(1 2 3)
RUN=data/cluster-3/run
BIN=${MICROLITH_BIN:-target/release/microlith}
export MICROLITH_SECRET=${MICROLITH_SECRET:-local-cluster-development-secret}

http_of() { awk '/^\[http\]/{h=1} h && /^listen/{gsub(/^listen *= *"|"$/, ""); print; exit}' "shards/cluster-3/node$1.toml"; }
pid_of() { [[ -f "$RUN/node$1.pid" ]] && cat "$RUN/node$1.pid" || true; }
running() { local p; p=$(pid_of "$1"); [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null; }

check_node() {
  case "${1:-}" in 1|2|3) ;; *) echo "NODE must be 1, 2 or 3" >&2; exit 2 ;; esac
}

ensure_bin() {
  if [[ ! -x "$BIN" ]]; then
    echo "building $BIN ..."
    cargo build --release --bin microlith
  fi
}

start_node() {
  local n=$1
  if running "$n"; then echo "node$n already running (pid $(pid_of "$n"))"; return; fi
  mkdir -p "$RUN"
  : > "$RUN/node$n.out"
  "$BIN" serve --config "shards/cluster-3/node$n.toml" >"$RUN/node$n.out" 2>>"$RUN/node$n.log" &
  echo $! > "$RUN/node$n.pid"
  for _ in $(seq 1 300); do
    if grep -q '^microlith ready' "$RUN/node$n.out"; then
      echo "node$n: $(grep '^microlith ready' "$RUN/node$n.out")"
      return
    fi
    if ! running "$n"; then
      echo "node$n failed to start; see $RUN/node$n.log:" >&2
      tail -n 5 "$RUN/node$n.log" >&2
      return 1
    fi
    sleep 0.1
  done
  echo "node$n: no ready line after 30 s; see $RUN/node$n.log" >&2
  return 1
}

stop_node() {
  local n=$1
  if ! running "$n"; then echo "node$n not running"; rm -f "$RUN/node$n.pid"; return; fi
  local p; p=$(pid_of "$n")
  kill -TERM "$p"
  for _ in $(seq 1 300); do
    if ! kill -0 "$p" 2>/dev/null; then echo "node$n stopped"; rm -f "$RUN/node$n.pid"; return; fi
    sleep 0.1
  done
  echo "node$n did not stop within 30 s; kill -9"
  kill -KILL "$p" || true
  rm -f "$RUN/node$n.pid"
}

status_node() {
  local n=$1
  if ! running "$n"; then echo "node$n: down"; return; fi
  local addr; addr=$(http_of "$n")
  local line="node$n: pid $(pid_of "$n") http=$addr"
  if command -v curl >/dev/null; then
    local health; health=$(curl -s -m 2 "http://$addr/health" || echo unreachable)
    line="$line health=$health"
    echo "$line"
    curl -s -m 2 "http://$addr/status" | python3 -c '
import json, sys
c = json.load(sys.stdin).get("cluster") or {}
for p in c.get("peers", []):
    i, o = p["inbound"], p["outbound"]
    print("  peer %s %s %s: in %s lag %s entries/%s ms, out %s lag %s entries/%s ms" % (
        p.get("node_id"), p.get("name", ""), p.get("addr", ""),
        i["state"], i["lag_entries"], i["lag_ms"], o["state"], o["lag_entries"], o["lag_ms"]))
' 2>/dev/null || true
  else
    echo "$line"
  fi
}

cmd=${1:-}
case "$cmd" in
  start) ensure_bin; for n in "${NODES[@]}"; do start_node "$n"; done ;;
  stop) for n in "${NODES[@]}"; do stop_node "$n"; done ;;
  status) for n in "${NODES[@]}"; do status_node "$n"; done ;;
  kill) check_node "${2:-}"; if running "$2"; then kill -KILL "$(pid_of "$2")"; rm -f "$RUN/node$2.pid"; echo "node$2 killed (-9)"; else echo "node$2 not running"; fi ;;
  restart) check_node "${2:-}"; ensure_bin; stop_node "$2"; start_node "$2" ;;
  *) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
