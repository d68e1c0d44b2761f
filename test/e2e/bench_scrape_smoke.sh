#!/bin/bash
# bench_scrape_smoke.sh FIRN FIXTURES_DIR -- test/bench/bench_scrape.sh runs
# (a few targets, a 1 s interval, a few seconds) and prints every figure in
# the `figure_name value` form.  This checks the form, never the speed:
# speed is measured, not asserted.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

figures=(targets profile_types interval_s scrapes scrapes_skipped scrape_errors firn_cpu_s
    cpu_s_per_1000_scrapes targets_per_core_10s goal_targets_per_core_10s
    targets_per_core_vs_goal firn_rss_mb)

out=$(timeout 240 bash "$HERE/../bench/bench_scrape.sh" "$1" "$2" --targets 20 --seconds 4 --interval 1s)
rc=$?
[ $rc -eq 0 ] && ok "bench_scrape.sh exits 0" || fail "bench_scrape.sh exited $rc"
check_figures "bench_scrape" "$out" "${figures[@]}"
same "targets as asked" "$(printf '%s\n' "$out" | awk '$1 == "targets" { print $2 }')" 20
# The form alone passes when every scrape fails: the targets are firn's own
# fixture server on loopback, so every scrape must succeed.
fig() { printf '%s\n' "$out" | awk -v f="$1" '$1 == f { print $2 }'; }
[[ $(fig scrapes) -gt 0 ]] && ok "scrapes completed: $(fig scrapes)" || fail "no scrape completed"
same "no scrape failed" "$(fig scrape_errors)" 0
finish
