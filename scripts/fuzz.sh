#!/usr/bin/env bash
# fuzz.sh — runs every fuzz target of tests/fuzz (cargo-fuzz, libFuzzer) for a while, one
# after the other, and prints for each how many inputs it ran and whether it crashed.
#
#   scripts/fuzz.sh [MINUTES_PER_TARGET] [TARGET...]
#   e.g. scripts/fuzz.sh            every target, 2 minutes each
#        scripts/fuzz.sh 10 mqtt_decode
#
# Targets: http_request mqtt_decode query_parse replication_frame config_load (see
# docs/fuzzing.md for what each checks). Needs the nightly toolchain (installed with rustup
# if missing) and cargo-fuzz (installed with `cargo install cargo-fuzz` if missing).
# Each target starts from the committed seeds (tests/fuzz/corpus/TARGET) and from what earlier
# runs found (tests/fuzz/work/TARGET/corpus, not committed); libFuzzer's log is
# tests/fuzz/work/TARGET/log, and an input that crashes or hangs is saved under
# tests/fuzz/artifacts/TARGET/. The exit status is 1 if any target crashed.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
FUZZ_DIR=tests/fuzz
MINUTES=${1:-2}
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(http_request mqtt_decode query_parse replication_frame config_load)
[[ "$MINUTES" =~ ^[0-9]+$ && "$MINUTES" -gt 0 ]] || { sed -n '2,15p' "$0"; exit 2; }

if ! rustup toolchain list | grep -q '^nightly'; then
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz
fi

# Overflow checks and debug assertions on: an arithmetic overflow is a finding too.
FUZZ_FLAGS=(--fuzz-dir "$FUZZ_DIR" --debug-assertions)
cargo +nightly fuzz build "${FUZZ_FLAGS[@]}"

# One target: fuzz for MINUTES, then print its line of the summary; false if it crashed.
run_target() {
    local target=$1 work="$FUZZ_DIR/work/$1"
    mkdir -p "$work/corpus"
    local status=0 started=$SECONDS
    cargo +nightly fuzz run "${FUZZ_FLAGS[@]}" "$target" "$work/corpus" "$FUZZ_DIR/corpus/$target" -- \
        -max_total_time=$((MINUTES * 60)) -timeout=10 -print_final_stats=1 \
        >"$work/log" 2>&1 || status=$?
    local runs seconds result
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
    seconds=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$work/log" | tail -1)
    if [ "$status" -eq 0 ]; then
        result=ok
    else
        result="CRASHED: $(grep -m1 -o 'Test unit written to .*' "$work/log" || echo "exit $status, see $work/log")"
    fi
    printf '%-18s %8ss %12s  %s\n' "$target" "${seconds:-$((SECONDS - started))}" "${runs:-?}" "$result"
    [ "$status" -eq 0 ]
}

printf '%-18s %9s %12s  %s\n' target time executions result
crashed=0
for target in "${TARGETS[@]}"; do
    run_target "$target" || crashed=1
done
exit "$crashed"
