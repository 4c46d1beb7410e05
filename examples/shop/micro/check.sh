#!/usr/bin/env bash
# Runs the self-check (check.js) against the gateway on 127.0.0.1:PORT.
set -euo pipefail
[[ ${1:-} =~ ^[0-9]+$ ]] || { echo "usage: $0 PORT" >&2; exit 2; }
exec node "$(dirname "${BASH_SOURCE[0]}")/check.js" "$1"
