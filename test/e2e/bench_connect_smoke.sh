#!/bin/bash
# bench_connect_smoke.sh FIRN FIRNCTL FIXTURES_DIR -- test/bench/bench_connect.sh
# runs (a tiny store, 2 rounds of 1 s loads) and prints every figure in the
# `figure_name value` form, with no failed request.  This checks the form and
# that the load gets answers, never the speed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

out=$(timeout 240 bash "$HERE/../bench/bench_connect.sh" "$1" "$2" "$3" --targets 2 --profiles 12 \
    --clients 4 --seconds 1 --rounds 2)
rc=$?
[ $rc -eq 0 ] && ok "bench_connect.sh exits 0" || fail "bench_connect.sh exited $rc"
check_figures "bench_connect" "$out" series profiles_per_series clients rounds \
    native_flamegraph_p50_ms native_flamegraph_p99_ms connect_flamegraph_p50_ms \
    connect_flamegraph_p99_ms flamegraph_p50_connect_vs_native flamegraph_p99_connect_vs_native \
    flamegraph_p99_connect_vs_native_worst native_flamegraph_p99_spread \
    native_series_p50_ms native_series_p99_ms connect_series_p50_ms connect_series_p99_ms \
    series_p50_connect_vs_native series_p99_connect_vs_native \
    series_p99_connect_vs_native_worst native_series_p99_spread floor_p50_ms floor_p99_ms \
    native_ingest_per_s \
    connect_push_per_s push_per_s_connect_vs_native errors
same "every request of the load was answered with success" \
    "$(printf '%s\n' "$out" | awk '$1 == "errors" { print $2 }')" 0
finish
