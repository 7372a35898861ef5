#!/usr/bin/env bash
# Runs the end-to-end and fault tests (tests/e2e/, test_faults.py included) N times in a row while
# `stress-ng --cpu 2` keeps the machine's cores busy, and prints pass/fail per run.
#
#   scripts/stress_check.sh            # 5 runs, stress-ng --cpu 2
#   RUNS=3 CPU_HOGS=4 scripts/stress_check.sh
#   scripts/stress_check.sh -k faults  # extra arguments go to pytest
#
# Needs what `make test` needs (PostgreSQL, RabbitMQ, `uv sync --frozen`); installs Debian's stress-ng when
# missing. Each run's output is kept in var/stress/run-<n>.log. Exits non-zero when any run failed.
set -uo pipefail

cd "$(dirname "$0")/.."
RUNS="${RUNS:-5}"
CPU_HOGS="${CPU_HOGS:-2}"
OUT=var/stress
mkdir -p "$OUT"

if ! command -v stress-ng >/dev/null; then
    echo "[stress] installing stress-ng (Debian)"
    apt-get update -qq && apt-get install -y -qq --no-install-recommends stress-ng >/dev/null || {
        echo "[stress] cannot install stress-ng" >&2
        exit 2
    }
fi

stress-ng --cpu "$CPU_HOGS" --timeout 0 --quiet &
STRESS_PID=$!
stop_stress() {
    kill "$STRESS_PID" 2>/dev/null
    wait "$STRESS_PID" 2>/dev/null
}
trap stop_stress EXIT
trap 'exit 130' INT TERM
echo "[stress] stress-ng --cpu $CPU_HOGS running (pid $STRESS_PID); $RUNS runs of tests/e2e"

failed=0
for run in $(seq 1 "$RUNS"); do
    log="$OUT/run-$run.log"
    began=$(date +%s)
    if uv run --frozen pytest tests/e2e -q "$@" >"$log" 2>&1; then
        verdict=PASS
    else
        verdict=FAIL
        failed=$((failed + 1))
    fi
    summary=$(grep -E "^(=+ )?[0-9]+ (passed|failed)|(passed|failed|error).* in [0-9.]+s" "$log" | tail -1)
    printf '[stress] run %d/%d: %s in %ds, load %s: %s (%s)\n' "$run" "$RUNS" "$verdict" "$(($(date +%s) - began))" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "${summary:-no pytest summary}" "$log"
    [ "$verdict" = FAIL ] && grep -E "^(FAILED|ERROR) " "$log" | sed 's/^/[stress]     /'
done
echo "[stress] $((RUNS - failed))/$RUNS runs passed under stress-ng --cpu $CPU_HOGS"
[ "$failed" -eq 0 ]
