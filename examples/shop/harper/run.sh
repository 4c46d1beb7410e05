#!/usr/bin/env bash
# run.sh: install, start and stop Harper 4.7 serving the shop component in this folder.
#
#   run.sh install       npm install of harperdb (pinned by package-lock.json) into $SHOP_HARPER_DIR
#   run.sh start PORT    Harper on 127.0.0.1:PORT with the shop, seeded; prints the PID
#   run.sh stop          stops the Harper that `start` left running
#
# Environment:
#   SHOP_HARPER_DIR   where Harper, its root (data, config, logs) and the PID go (default /tmp/shop-harper)
#   SHOP_THREADS      Harper worker threads (threads.count; default: the number of cores, those of
#                     SHOP_CORES when it is set)
#   SHOP_CORES        if set, Harper runs under `taskset -c $SHOP_CORES`
#   SHOP_HARPER_USER / SHOP_HARPER_PASS   the admin user made at install (default admin / shop-admin)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
DIR="${SHOP_HARPER_DIR:-/tmp/shop-harper}"
ROOT="$DIR/root"
HARPER="$DIR/node_modules/.bin/harperdb"
PIDFILE="$DIR/harper.pid"
LOG="$DIR/harper.out"
ADMIN_USER="${SHOP_HARPER_USER:-admin}"
ADMIN_PASS="${SHOP_HARPER_PASS:-shop-admin}"

die() { echo "run.sh: $*" >&2; exit 1; }

running_pid() {
	[[ -f "$PIDFILE" ]] || return 1
	local pid
	pid="$(cat "$PIDFILE")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install() {
	mkdir -p "$DIR"
	# Idempotent: skip when this exact lockfile is already installed.
	if [[ -x "$HARPER" ]] && cmp -s "$HERE/package-lock.json" "$DIR/package-lock.json"; then
		return 0
	fi
	cp "$HERE/package.json" "$HERE/package-lock.json" "$DIR/"
	echo "run.sh: installing harperdb into $DIR" >&2
	# `npm install` with the committed lockfile, not `npm ci`: harperdb ships an
	# npm-shrinkwrap.json whose platform-specific optional packages npm leaves out of the
	# lockfile, and `npm ci` then refuses the lockfile as out of sync. The versions are the
	# locked ones either way.
	(cd "$DIR" && npm install --include=dev --no-audit --no-fund --loglevel=error >&2)
	[[ -x "$HARPER" ]] || die "npm install did not install harperdb"
}

# A Harper root with the admin user, made once by Harper's own non-interactive install.
init_root() {
	[[ -f "$ROOT/harperdb-config.yaml" ]] && return 0
	echo "run.sh: creating the Harper root $ROOT" >&2
	mkdir -p "$DIR/home"
	# HOME: the install records the root in ~/.harperdb; keep that inside $DIR too.
	HOME="$DIR/home" TC_AGREEMENT=yes ROOTPATH="$ROOT" DEFAULTS_MODE=prod REPLICATION_HOSTNAME=localhost \
		HDB_ADMIN_USERNAME="$ADMIN_USER" HDB_ADMIN_PASSWORD="$ADMIN_PASS" \
		"$HARPER" install </dev/null >"$DIR/install.out" 2>&1 ||
		{ cat "$DIR/install.out" >&2; die "harperdb install failed"; }
}

# The settings every start forces (HARPER_SET_CONFIG wins over the config file).
start_config() {
	local port="$1" threads="$2"
	cat <<EOF
{"http": {"port": "127.0.0.1:$port", "securePort": null},
 "operationsApi": {"network": {"port": null, "securePort": null, "domainSocket": "$ROOT/operations-server"}},
 "mqtt": {"network": {"port": null, "securePort": null}},
 "replication": {"securePort": null},
 "localStudio": {"enabled": false},
 "authentication": {"authorizeLocal": false},
 "threads": {"count": $threads},
 "logging": {"level": "warn", "stdStreams": false}}
EOF
}

http_code() { curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$1" || true; }

start() {
	local port="${1:-}"
	[[ "$port" =~ ^[0-9]+$ ]] || die "usage: run.sh start PORT"
	# Default: one worker thread per core Harper may run on.
	local threads="${SHOP_THREADS:-}"
	if [[ -z "$threads" ]]; then
		if [[ -n "${SHOP_CORES:-}" ]]; then threads="$(taskset -c "$SHOP_CORES" nproc)"; else threads="$(nproc)"; fi
	fi
	install
	init_root
	if pid="$(running_pid)"; then
		echo "run.sh: Harper already running (pid $pid); stopping it first" >&2
		stop
	fi
	# Deploy: Harper loads every folder (or link) in <root>/components as a component.
	mkdir -p "$ROOT/components"
	ln -sfn "$HERE" "$ROOT/components/shop"

	local launch=("$HARPER" run "$ROOT")
	[[ -n "${SHOP_CORES:-}" ]] && launch=(taskset -c "$SHOP_CORES" "${launch[@]}")
	HOME="$DIR/home" HARPER_SET_CONFIG="$(start_config "$port" "$threads")" \
		setsid nohup "${launch[@]}" </dev/null >"$LOG" 2>&1 &
	local pid=$!
	echo "$pid" >"$PIDFILE"

	local url="http://127.0.0.1:$port/shop/api/home"
	for ((i = 0; i < 240; i++)); do
		kill -0 "$pid" 2>/dev/null || { tail -n 30 "$LOG" >&2; die "Harper exited during start (log: $LOG, $ROOT/log/hdb.log)"; }
		[[ "$(http_code "$url")" != 000 ]] && break
		sleep 0.5
	done
	[[ "$(http_code "$url")" != 000 ]] || die "Harper does not answer on 127.0.0.1:$port"

	SHOP_HARPER_DIR="$DIR" SHOP_HARPER_OPS="unix:$ROOT/operations-server" \
		SHOP_HARPER_USER="$ADMIN_USER" SHOP_HARPER_PASS="$ADMIN_PASS" node "$HERE/seed.js" >&2 ||
		die "seeding failed"

	for ((i = 0; i < 60; i++)); do
		# Seeded and the cached category listings refreshed: 8 categories of 125 products.
		if [[ "$(curl -s --max-time 5 "$url" | grep -o '"count":125' | wc -l)" == 8 ]]; then
			echo "$pid"
			return 0
		fi
		sleep 0.5
	done
	die "GET $url does not answer 200 with the seeded data"
}

stop() {
	local pid
	if ! pid="$(running_pid)"; then
		rm -f "$PIDFILE"
		echo "run.sh: Harper is not running" >&2
		return 0
	fi
	kill -TERM "$pid"
	for ((i = 0; i < 60; i++)); do
		kill -0 "$pid" 2>/dev/null || { rm -f "$PIDFILE"; return 0; }
		sleep 0.5
	done
	echo "run.sh: Harper (pid $pid) still up after 30 s; killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
	rm -f "$PIDFILE"
}

case "${1:-}" in
install) install ;;
start) start "${2:-}" ;;
stop) stop ;;
*) die "usage: run.sh install | start PORT | stop" ;;
esac
