#!/usr/bin/env bash
# Installs, starts and stops the microservices shop: one PostgreSQL cluster, the four
# services (catalog, inventory, pricing, reviews) and the gateway, in MODE naive or fair.
#
#   run.sh install            npm ci; installs PostgreSQL with apt-get if it is missing
#   run.sh start MODE PORT    MODE naive|fair, gateway on 127.0.0.1:PORT
#   run.sh stop [PORT]        stops the instance on PORT, or every instance
#
# Each instance lives in ${SHOP_MICRO_DIR:-/tmp/shop-micro}/PORT (data, logs, pids), so a
# naive and a fair instance can run side by side on different gateway ports.
# SHOP_CORES (a taskset list, e.g. 2-3) pins PostgreSQL, the services and the gateway.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
BASE=${SHOP_MICRO_DIR:-/tmp/shop-micro}
SERVICES=(catalog inventory pricing reviews)
PG_SUPERUSER=shop

die() { echo "run.sh: $*" >&2; exit 1; }

# The folder holding initdb and pg_ctl, or nothing.
pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin /usr/local/bin /usr/bin; do
    if [[ -x $d/initdb && -x $d/pg_ctl ]]; then echo "$d"; return 0; fi
  done
  return 1
}

cmd_install() {
  if ! command -v psql >/dev/null || ! pg_bin >/dev/null; then
    echo "PostgreSQL (psql, initdb, pg_ctl) not found: installing it with apt-get install -y postgresql"
    apt-get update && apt-get install -y postgresql
  fi
  echo "PostgreSQL tools in $(pg_bin)"
  (cd "$HERE" && npm ci --no-audit --no-fund)
}

# PostgreSQL refuses to run as root: it runs as 'postgres' when that user exists, else as
# a system user 'shopdb' made for it.
pg_os_user() {
  if id postgres >/dev/null 2>&1; then echo postgres; return; fi
  id shopdb >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin shopdb
  echo shopdb
}

as_pg() {
  if [[ $EUID -eq 0 ]]; then runuser -u "$PG_OS_USER" -- "$@"; else "$@"; fi
}

# The command prefix that pins a process to SHOP_CORES, when it is set.
PIN=()
[[ -n ${SHOP_CORES:-} ]] && PIN=(taskset -c "$SHOP_CORES")

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Waits until GET url answers 200, for at most $2 seconds.
wait_200() {
  local url=$1 deadline=$((SECONDS + $2))
  until [[ $(curl -s -o /dev/null -w '%{http_code}' "$url" || true) == 200 ]]; do
    (( SECONDS < deadline )) || return 1
    sleep 0.2
  done
}

start_postgres() {
  PG_OS_USER=$(pg_os_user)
  local bin; bin=$(pg_bin) || die "PostgreSQL not found: run '$0 install'"
  mkdir -p "$DIR/pg" "$DIR/pgrun"
  chown "$PG_OS_USER" "$DIR/pg" "$DIR/pgrun"
  as_pg "$bin/initdb" -D "$DIR/pg" -U "$PG_SUPERUSER" --auth=trust --locale=C -E UTF8 >"$DIR/log/initdb.log"
  as_pg "${PIN[@]}" "$bin/pg_ctl" -D "$DIR/pg" -l "$DIR/pgrun/postgres.log" -w -t 60 \
    -o "-p $PGPORT -k $DIR/pgrun -c listen_addresses=127.0.0.1" start >/dev/null
}

start_node() { # name script
  nohup env "${ENV[@]}" "${PIN[@]}" node "$HERE/$2" >"$DIR/log/$1.log" 2>&1 &
  echo $! >"$DIR/pid/$1"
}

cmd_start() {
  local mode=${1:-} port=${2:-}
  [[ $mode == naive || $mode == fair ]] || die "usage: $0 start naive|fair PORT"
  [[ $port =~ ^[0-9]+$ ]] || die "usage: $0 start naive|fair PORT"
  [[ -d $HERE/node_modules ]] || die "run '$0 install' first"
  DIR=$BASE/$port
  [[ -f $DIR/env ]] && die "an instance is recorded in $DIR: run '$0 stop $port' first"
  port_busy "$port" && die "port $port is in use"
  rm -rf "$DIR"; mkdir -p "$DIR/log" "$DIR/pid"
  local ports; mapfile -t ports < <(node "$HERE/lib/free-ports.js" 5)
  PGPORT=${ports[0]}
  ENV=(MODE="$mode" PGHOST=127.0.0.1 PGPORT="$PGPORT" PGUSER="$PG_SUPERUSER" GATEWAY_PORT="$port"
       CATALOG_PORT="${ports[1]}" INVENTORY_PORT="${ports[2]}" PRICING_PORT="${ports[3]}" REVIEWS_PORT="${ports[4]}")
  printf '%s\n' "${ENV[@]}" >"$DIR/env"
  start_postgres
  env "${ENV[@]}" node "$HERE/seed.js"
  local i
  for i in "${!SERVICES[@]}"; do
    start_node "${SERVICES[$i]}" "services/${SERVICES[$i]}.js"
  done
  for i in "${!SERVICES[@]}"; do
    wait_200 "http://127.0.0.1:${ports[$((i + 1))]}/_stats" 30 || fail_start "${SERVICES[$i]}"
  done
  start_node gateway gateway.js
  wait_200 "http://127.0.0.1:$port/shop/api/home" 60 || fail_start gateway
  echo "shop-micro ($mode) on http://127.0.0.1:$port/shop/ (data and logs in $DIR)"
  echo "pids: postgres $(head -1 "$DIR/pg/postmaster.pid")$(for f in "${SERVICES[@]}" gateway; do printf ' %s %s' "$f" "$(cat "$DIR/pid/$f")"; done)"
}

fail_start() {
  echo "run.sh: $1 did not come up; its log:" >&2
  tail -20 "$DIR/log/$1.log" >&2 || true
  stop_instance "$DIR"
  exit 1
}

stop_instance() { # dir
  local dir=$1 f pid
  for f in "$dir"/pid/*; do
    [[ -f $f ]] || continue
    pid=$(cat "$f")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    rm -f "$f"
  done
  if [[ -f $dir/pg/postmaster.pid ]]; then
    PG_OS_USER=$(pg_os_user)
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/pg" -m fast -w stop >/dev/null || true
  fi
  rm -rf "$dir/pg" "$dir/env"
  echo "stopped $(basename "$dir")"
}

# An instance is recorded (its env file exists) from its start until its stop.
cmd_stop() {
  local port=${1:-} dir found=0
  for dir in "$BASE"/*/; do
    dir=${dir%/}
    [[ -f $dir/env ]] || continue
    [[ -z $port || $(basename "$dir") == "$port" ]] || continue
    stop_instance "$dir"
    found=1
  done
  (( found )) || echo "nothing running${port:+ on $port}"
}

case ${1:-} in
  install) cmd_install ;;
  start) shift; cmd_start "$@" ;;
  stop) shift; cmd_stop "$@" ;;
  *) die "usage: $0 install | start naive|fair PORT | stop [PORT]" ;;
esac
