#!/bin/bash
# bench_smoke.sh FIRNCTL FIXTURES_DIR -- `firnctl bench decode`, `firnctl
# bench tsdb` and `firnctl bench rules` run (tiny sizes) and print their figures in the `figure_name
# value` form scripts read.  This checks the form, never the speed: speed is
# measured, not asserted.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

out=$("$1" bench decode --seconds 0.2 "$2"/* 2>/dev/null)
rc=$?
[ $rc -eq 0 ] && ok "bench decode exits 0" || fail "bench decode exited $rc"
check_figures "bench decode" "$out" bench_files decode_mb_per_s decode_profiles_per_s \
    inflate_mb_per_s decode_vs_inflate_ratio
files=$(printf '%s\n' "$out" | awk '$1 == "bench_files" { print $2 }')
[ "${files:-0}" -ge 60 ] && ok "all $files decodable fixtures timed" || fail "only ${files:-0} fixtures timed"

# bench tsdb on a tiny synthetic set: every required figure, well formed
out=$("$1" bench tsdb --targets 4 --profiles 6 --threads 4 \
    "$2"/pyro-pkg_pprof_testdata_go.cpu.labels.pprof "$2"/pyro-pkg_og_convert_pprof_testdata_heap.pb.gz 2>/dev/null)
rc=$?
[ $rc -eq 0 ] && ok "bench tsdb exits 0" || fail "bench tsdb exited $rc"
check_figures "bench tsdb" "$out" ingest_profiles_per_s ingest_samples_per_s \
    ingest_vs_inflate_ratio disk_bytes_per_sample merge_samples_per_s merge_speedup_vs_go_pprof \
    peak_rss_mb
stored=$(printf '%s\n' "$out" | awk '$1 == "bench_profiles" { print $2 }')
[ "${stored:-0}" -eq 24 ] && ok "bench tsdb stored all 24 profiles" || fail "bench_profiles ${stored:-none}, want 24"

# bench rules on a tiny set: 6 rules over 6 series, half with stack filters
out=$("$1" bench rules --targets 6 --profiles 31 --threads 2 \
    "$2"/pyro-pkg_pprof_testdata_go.cpu.labels.pprof 2>/dev/null)
rc=$?
[ $rc -eq 0 ] && ok "bench rules exits 0" || fail "bench rules exited $rc"
check_figures "bench rules" "$out" bench_rules bench_rules_filtered bench_groups \
    rules_interval_wall_ms rules_interval_cpu_ms rules_cpu_share_of_1m_interval \
    group_eval_ms_mean group_eval_ms_max rule_eval_us_mean rule_eval_us_plain_mean \
    rule_eval_us_filtered_mean rule_eval_us_max anchor_instant_queries_ms \
    rules_vs_instant_queries_ratio anchor_instant_queries_cpu_ms rules_vs_instant_queries_cpu_ratio
same "bench rules: 6 rules, 3 filtered, 6 results" \
    "$(printf '%s\n' "$out" | awk '$1 ~ /^bench_(rules|rules_filtered|results)$/ { printf "%s ", $2 }')" \
    "6 3 6 "

# bench rollup on 48 profiles over the week (one every 3.5 h): day rollups only
out=$("$1" bench rollup --targets 1 --profiles 48 "$2"/pyro-pkg_pprof_testdata_go.cpu.labels.pprof 2>/dev/null)
rc=$?
[ $rc -eq 0 ] && ok "bench rollup exits 0" || fail "bench rollup exited $rc"
check_figures "bench rollup" "$out" merge_warm_samples_per_s merge_cold_samples_per_s \
    memcpy_floor_samples_per_s compaction_seconds flamegraph_1h_ms flamegraph_24h_ms \
    flamegraph_7d_ms flamegraph_7d_raw_ms flamegraph_7d_vs_1h_ratio rollup_speedup_7d
rollups=$(printf '%s\n' "$out" | awk '$1 == "rollups" { print $2 }')
# 48 profiles 3.5 h apart: at least 6 whole days of 6 or 7 profiles (the
# week ends on an hour, so a day at either end may be cut short), for each
# of the fixture's 2 series (samples and cpu); no hour holds two profiles
[ "${rollups:-0}" -ge 12 ] && ok "bench rollup wrote ${rollups} day rollups" || fail "rollups ${rollups:-none}, want >= 12"
finish
