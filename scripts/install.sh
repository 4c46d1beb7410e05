#!/usr/bin/env bash
# Installs a microlith node on a bare-metal Linux host running systemd:
#   /usr/local/bin/microlith                  the binary (target/release/microlith, or --binary)
#   /etc/microlith/microlith.toml             the configuration (kept if it exists)
#   /var/lib/microlith                        the data directory
#   /var/backups/microlith                    where online backups may be written
#   /etc/systemd/system/microlith.service     the unit (scripts/microlith.service)
#   /usr/local/share/doc/microlith/           docs/operations.md
# and a `microlith` system user that owns the data. Run as root from the repository root,
# after `cargo build --release`. Safe to run again (upgrades the binary and the unit, keeps
# the configuration and the data). DESTDIR=/some/dir installs the files under it instead and
# creates no user (for packaging).
#
#   scripts/install.sh [--binary PATH]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(dirname "$here")"
binary="$repo/target/release/microlith"
while [ $# -gt 0 ]; do
    case "$1" in
        --binary) binary="$2"; shift 2 ;;
        -h|--help) sed -n '2,15p' "$0"; exit 0 ;;
        *) echo "install.sh: unknown argument $1 (try --help)" >&2; exit 2 ;;
    esac
done

root="${DESTDIR:-}"
say() { echo "install.sh: $*"; }
die() { echo "install.sh: $*" >&2; exit 1; }

[ -x "$binary" ] || die "no binary at $binary: run \`cargo build --release\` first, or pass --binary PATH"
[ -n "$root" ] || [ "$(id -u)" = 0 ] || die "run as root (or set DESTDIR for a staged install)"

user_and_group() {
    [ -z "$root" ] || return 0
    if ! getent group microlith >/dev/null; then
        groupadd --system microlith
        say "created group microlith"
    fi
    if ! id microlith >/dev/null 2>&1; then
        useradd --system --gid microlith --home-dir /var/lib/microlith --no-create-home \
            --shell /usr/sbin/nologin --comment "microlith node" microlith
        say "created system user microlith"
    fi
}

owned_dir() { # path mode
    install -d -m "$2" "$root$1"
    [ -n "$root" ] || chown microlith:microlith "$root$1"
}

files() {
    install -D -m 0755 "$binary" "$root/usr/local/bin/microlith"
    install -D -m 0644 "$here/microlith.service" "$root/etc/systemd/system/microlith.service"
    install -D -m 0644 "$repo/docs/operations.md" "$root/usr/local/share/doc/microlith/operations.md"
    owned_dir /var/lib/microlith 0750
    owned_dir /var/backups/microlith 0750
    install -d -m 0750 "$root/etc/microlith"
    [ -n "$root" ] || chgrp microlith "$root/etc/microlith"
}

# The embedded default, pointed at the installed directories. An existing file is kept.
config() {
    local conf="$root/etc/microlith/microlith.toml"
    if [ -e "$conf" ]; then
        say "kept the existing $conf"
        return
    fi
    "$root/usr/local/bin/microlith" default-config \
        | sed -e 's|^data_dir = .*|data_dir = "/var/lib/microlith"|' \
              -e 's|^# backup_dir = .*|backup_dir = "/var/backups/microlith"|' \
        > "$conf.new"
    grep -q '^data_dir = "/var/lib/microlith"' "$conf.new" || die "could not set data_dir in $conf"
    grep -q '^backup_dir = "/var/backups/microlith"' "$conf.new" || die "could not set backup_dir in $conf"
    chmod 0640 "$conf.new"
    [ -n "$root" ] || chgrp microlith "$conf.new"
    mv "$conf.new" "$conf"
    say "wrote $conf"
}

# check-config as the service user: it checks the data directory with that user's rights.
check() {
    [ -z "$root" ] || return 0
    local cmd=(/usr/local/bin/microlith check-config /etc/microlith/microlith.toml)
    if command -v runuser >/dev/null; then cmd=(runuser -u microlith -- "${cmd[@]}"); fi
    if "${cmd[@]}"; then return; fi
    say "warning: check-config refused the configuration (above); fix it before starting"
}

systemd_reload() {
    if [ -z "$root" ] && [ -d /run/systemd/system ]; then
        systemctl daemon-reload
        say "systemd reloaded; start with: systemctl enable --now microlith"
    else
        say "systemd is not running here: the unit is installed but not loaded"
    fi
}

user_and_group
files
config
check
systemd_reload
cat <<'NEXT'
Next:
  1. the first user (the node serves loopback only until one exists):
       runuser -u microlith -- microlith user add admin --role super_user -c /etc/microlith/microlith.toml
  2. systemctl enable --now microlith;  journalctl -u microlith -f
NEXT
