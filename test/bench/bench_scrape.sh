#!/usr/bin/env bash
# bench_scrape.sh -- scrape overhead: firn's CPU per 1,000 scrapes and how
# many targets one core sustains at a 10 s interval with the five default
# profile types.
#
# usage: bench_scrape.sh FIRN FIXTURES_DIR [--targets N] [--seconds S] [--interval D]
#
#   --targets N    scrape targets (default 1000); each scraped for all five
#                  default profile types, so 5*N scrape loops
#   --seconds S    length of the measurement (default 30)
#   --interval D   scrape_interval, a duration such as 10s or 500ms, or a
#                  number of seconds (default 10s)
#
# The targets are one Go service in fixture mode (test/goservice -fixtures):
# it answers every pprof path at once from memory with a real Go profile
# from FIXTURES_DIR, so the CPU measured is firn's.  The N targets all point
# at that address; each is its own static_configs entry with a label
# shard: "<i>", so firn runs each as a target of its own.  Once every loop
# has been scraped once (cumulative types then have their delta baseline),
# the script reads firn's utime+stime (/proc/PID/stat) and the scrape
# counters of /metrics, waits S seconds, and reads them again.
#
# Prints on standard output one `figure_name value` per line:
#   targets, profile_types, interval_s, scrapes (completed in the window:
#   every result but "skipped"), scrapes_skipped (ticks that found the
#   previous scrape of the loop still running), scrape_errors (results other
#   than success, baseline, skipped), firn_cpu_s, cpu_s_per_1000_scrapes,
#   targets_per_core_10s (scrapes per CPU second * 10 s / 5 types),
#   goal_targets_per_core_10s, targets_per_core_vs_goal, firn_rss_mb
#   (VmHWM).
# Progress and diagnostics go to standard error.  Everything runs on
# 127.0.0.1 and offline; whatever the script starts it stops on exit.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRCDIR=$(cd "$HERE/../.." && pwd)
. "$SRCDIR/test/e2e/lib.sh"

GOAL_TARGETS_PER_CORE=2000
PROFILE_TYPES=5

usage() {
    echo "usage: bench_scrape.sh FIRN FIXTURES_DIR [--targets N] [--seconds S] [--interval D]" >&2
    exit 2
}
die() {
    echo "bench_scrape: $*" >&2
    exit 1
}
note() { echo "bench_scrape: $*" >&2; }

[[ $# -ge 2 ]] || usage
firn=$1
fixtures=$2
shift 2
targets=1000
seconds=30
interval=10s
while [[ $# -gt 0 ]]; do
    [[ $# -ge 2 ]] || usage
    case $1 in
    --targets) targets=$2 ;;
    --seconds) seconds=$2 ;;
    --interval) interval=$2 ;;
    *) usage ;;
    esac
    shift 2
done
[[ $targets =~ ^[1-9][0-9]*$ ]] || die "--targets: want a positive integer, got \"$targets\""
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "--seconds: want a positive integer, got \"$seconds\""
[[ $interval =~ ^[0-9]+$ ]] && interval=${interval}s
[[ $interval =~ ^([0-9]+)(ms|s|m)$ ]] || die "--interval: want a duration like 10s or 500ms, got \"$interval\""
case ${BASH_REMATCH[2]} in
ms) interval_ms=${BASH_REMATCH[1]} ;;
s) interval_ms=$((BASH_REMATCH[1] * 1000)) ;;
m) interval_ms=$((BASH_REMATCH[1] * 60000)) ;;
esac
((interval_ms > 0)) || die "--interval must be more than 0"
[[ -x $firn ]] || die "$firn: not an executable"
[[ -d $fixtures ]] || die "$fixtures: not a directory"

# Real Go profiles, one per default profile type.  The fixtures have no CPU
# profile of the same program as the others, so the CPU one is Prometheus's
# (a Go server, 30 s); block, mutex and goroutine come from one Go 1.20
# program (Pyroscope's client example: req_3 is its block profile -- Lock
# and chanrecv on top --, req_4 its mutex profile -- Unlock on top --, req_2
# its goroutine profile); the heap is Pyroscope's server's.  All gzipped.
declare -A FIXTURE=(
    [cpu]=pyro-pkg_phlaredb_testdata_profile
    [allocs]=pyro-pkg_og_convert_pprof_testdata_heap.pb.gz
    [block]=pyro-pkg_og_convert_pprof_testdata_req_3.pprof
    [mutex]=pyro-pkg_og_convert_pprof_testdata_req_4.pprof
    [goroutine]=pyro-pkg_og_convert_pprof_testdata_req_2.pprof
)

e2e_workspace

mkdir -p "$tmp/fixtures"
# goservice -fixtures serves DIR/<kind>.pb.gz (gzipped or not: firn sniffs).
for kind in "${!FIXTURE[@]}"; do
    cp "$fixtures/${FIXTURE[$kind]}" "$tmp/fixtures/$kind.pb.gz" ||
        die "fixture ${FIXTURE[$kind]} missing in $fixtures"
done

note "building the Go service"
build_go "$SRCDIR" goservice "$tmp" || die "build go service: $(tail -5 "$tmp/goservice-build.log")"
start_goservice "$tmp" svc -fixtures "$tmp/fixtures" ||
    die "go service did not start: $(tail -5 "$tmp/svc.log")"
addr=$GO_ADDR

# One job, the five default profile types (no profiling_config), N targets
# told apart by their shard label.
{
    echo "global: {scrape_interval: $interval}"
    echo "scrape_configs:"
    echo "  - job_name: bench"
    echo "    scrape_interval: $interval"
    echo "    static_configs:"
    for ((i = 0; i < targets; i++)); do
        echo "      - {targets: ['$addr'], labels: {shard: '$i'}}"
    done
} >"$tmp/firn.yml"

note "starting firn with $targets targets ($((targets * PROFILE_TYPES)) scrape loops) at $interval"
start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
    --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data" ||
    die "firn did not start: $(tail -5 "$tmp/firn.log")"
api=http://127.0.0.1:$FIRN_PORT

metrics() { curl_local --fail --max-time 10 "$api/metrics"; }

# all_scraped: every one of the 5*N loops exists and its last scrape
# succeeded (a failing target would measure the cost of failing).
all_scraped() {
    metrics | awk -v want=$((targets * PROFILE_TYPES)) '
        /^firn_scrape_targets\{/ {
            total += $2
            if ($1 ~ /health="up"/) up += $2
        }
        END { exit !(total == want && up == want) }'
}
# Give the first round a whole interval plus slack for storing 5*N profiles.
first_round_s=$((interval_ms / 1000 + 60 + targets * PROFILE_TYPES / 100))
wait_for "$first_round_s" all_scraped ||
    die "not every loop scraped within ${first_round_s}s: $(metrics | grep '^firn_scrape_targets' | tr '\n' ' ')"

# counters: "completed skipped errors" from firn_scrapes_total.
counters() {
    local text
    text=$(metrics) || return 1
    awk '
        /^firn_scrapes_total\{/ {
            match($1, /result="[^"]*"/)
            r = substr($1, RSTART + 8, RLENGTH - 9)
            if (r == "skipped") skipped += $2
            else {
                done += $2
                if (r != "success" && r != "baseline") errors += $2
            }
        }
        END { printf "%.0f %.0f %.0f\n", done, skipped, errors }' <<<"$text"
}
# cpu_ticks: utime + stime of firn (fields 14 and 15 of /proc/PID/stat,
# counted after the ")" that ends the command name).
cpu_ticks() {
    local stat
    stat=$(cat "/proc/$FIRN_PID/stat") || return 1
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}

counts=$(counters) || die "cannot read firn's /metrics"
read -r done0 skipped0 errors0 <<<"$counts"
ticks0=$(cpu_ticks) || die "firn is gone"
start_ns=$(date +%s%N)
note "measuring for ${seconds}s"
# In the background, so that a TERM stops the script at once.
sleep "$seconds" &
track_pid $!
wait $!
ticks1=$(cpu_ticks) || die "firn exited during the measurement: $(tail -5 "$tmp/firn.log")"
end_ns=$(date +%s%N)
counts=$(counters) || die "cannot read firn's /metrics"
read -r done1 skipped1 errors1 <<<"$counts"
hwm_kb=$(awk '/^VmHWM:/ { print $2 }' "/proc/$FIRN_PID/status")

scrapes=$((done1 - done0))
skipped=$((skipped1 - skipped0))
errors=$((errors1 - errors0))
clk_tck=$(getconf CLK_TCK)
ticks=$((ticks1 - ticks0))
if ((ticks == 0)); then
    # Under one clock tick: count one, so the per-scrape cost is an upper bound.
    note "firn used less than one clock tick; counting one"
    ticks=1
fi
((scrapes > 0)) || die "no scrape completed in ${seconds}s"
((errors < scrapes)) || die "every one of the $scrapes scrapes failed: $(grep -E 'level=(warn|error)' "$tmp/firn.log" | tail -2)"
note "window $(((end_ns - start_ns) / 1000000)) ms"

if ((errors > 0)); then
    note "$errors scrapes failed; last errors by count:"
    curl_local --max-time 30 "$api/api/v1/targets" |
        jq -r '.data.activeTargets[] | select(.lastError != "") | .lastError' |
        sort | uniq -c | sort -rn | head -5 >&2
    grep -E 'level=(warn|error)' "$tmp/firn.log" | tail -5 >&2
fi

awk -v n="$targets" -v types=$PROFILE_TYPES -v interval_ms="$interval_ms" \
    -v scrapes="$scrapes" -v skipped="$skipped" -v errors="$errors" \
    -v ticks="$ticks" -v hz="$clk_tck" -v goal=$GOAL_TARGETS_PER_CORE -v hwm_kb="$hwm_kb" '
    function num(v) {  # integers as integers, else three decimals
        return v == int(v) ? sprintf("%d", v) : sprintf("%.3f", v)
    }
    BEGIN {
        cpu = ticks / hz
        per_core = scrapes / cpu * 10 / types
        printf "targets %d\n", n
        printf "profile_types %d\n", types
        printf "interval_s %s\n", num(interval_ms / 1000)
        printf "scrapes %d\n", scrapes
        printf "scrapes_skipped %d\n", skipped
        printf "scrape_errors %d\n", errors
        printf "firn_cpu_s %.3f\n", cpu
        printf "cpu_s_per_1000_scrapes %.4f\n", cpu / scrapes * 1000
        printf "targets_per_core_10s %.0f\n", per_core
        printf "goal_targets_per_core_10s %d\n", goal
        printf "targets_per_core_vs_goal %.3f\n", per_core / goal
        printf "firn_rss_mb %.1f\n", hwm_kb / 1024
    }'
