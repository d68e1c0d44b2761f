#!/bin/bash
# bench_api_smoke.sh FIRN FIRNCTL FIXTURES_DIR -- test/bench/bench_api.sh runs
# (a tiny store, 2 s per load) and prints every figure in the `figure_name
# value` form, with no failed request.  This checks the form and that the
# load gets answers, never the speed: speed is measured, not asserted.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

out=$(timeout 240 bash "$HERE/../bench/bench_api.sh" "$1" "$2" "$3" --targets 3 --profiles 12 \
    --clients 4 --seconds 2)
rc=$?
[ $rc -eq 0 ] && ok "bench_api.sh exits 0" || fail "bench_api.sh exited $rc"
check_figures "bench_api" "$out" series profiles_per_series clients \
    flamegraph_one_series_p50_ms flamegraph_one_series_p99_ms flamegraph_one_series_per_s \
    flamegraph_all_series_p50_ms flamegraph_all_series_p99_ms flamegraph_all_series_per_s \
    healthy_under_load_p50_ms healthy_under_load_p99_ms healthy_p99_vs_goal \
    ingest_pushes_per_s ingest_p99_ms errors
same "every request of the load was answered with success" \
    "$(printf '%s\n' "$out" | awk '$1 == "errors" { print $2 }')" 0
finish
