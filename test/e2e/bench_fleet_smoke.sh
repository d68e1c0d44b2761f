#!/bin/bash
# bench_fleet_smoke.sh FIRNCTL FIXTURES_DIR -- `firnctl bench fleet --quick`
# (through test/bench/bench_fleet.sh, which adds profiles recorded from the
# Go service) prints every figure scripts read, in the `figure_name value`
# form, and the samples it says it ingested are the samples the store holds,
# counted afterwards by `firnctl tsdb dump` on the kept store.  This checks
# the form and the count, never the speed.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

tmp=$(mktemp -d /var/tmp/firn-fleet-smoke.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

out=$(bash "$HERE/../bench/bench_fleet.sh" "$1" "$2" --quick --keep-store "$tmp/store" 2>"$tmp/log")
rc=$?
[ $rc -eq 0 ] && ok "bench fleet --quick exits 0" || fail "bench fleet exited $rc: $(tail -3 "$tmp/log")"
grep -q 'recorded 3 profiles from test/goservice' "$tmp/log" &&
    ok "3 profiles recorded from the Go service" || fail "Go service profiles: $(grep bench_fleet.sh "$tmp/log")"
check_figures "bench fleet" "$out" ingest_samples_per_s ingest_profiles_per_s \
    ingest_vs_inflate_ratio disk_bytes_per_sample disk_vs_gzip_pprof_ratio \
    merge_warm_samples_per_s merge_cold_samples_per_s merge_speedup_vs_go_pprof \
    flamegraph_1h_ms flamegraph_24h_ms flamegraph_7d_ms rss_anon_peak_mb stacks_per_profile \
    distinct_stacks inflate_seconds gzip_pprof_bytes memcpy_floor_samples_per_s \
    go_pprof_merge_seconds rss_file_peak_mb rss_anon_after_mb rss_file_after_mb \
    compaction_seconds flamegraph_1h_raw_ms flamegraph_24h_raw_ms flamegraph_7d_raw_ms \
    rollup_speedup_7d range_query_100x60_ms range_query_read_ms range_query_vs_read_ratio \
    range_query_cpu_ms range_query_read_cpu_ms merge_warm_cpu_samples_per_s \
    go_pprof_merge_cpu_seconds firn_merge_same_cpu_seconds merge_cpu_speedup_vs_go_pprof \
    bench_pool_mb bench_bases_mb queue_mb \
    rss_anon_base_mb ingest_cpu_ns_per_sample ingest_cpu_vs_inflate_ratio profiles_per_commit
# the pool of profiles sent is in a shared mapping, out of RssAnon
shared=$(printf '%s\n' "$out" | awk '$1 == "bench_pool_shared" { print $2 }')
same "the pool of profiles sent is in a shared mapping" "${shared:-none}" 1

# 2 targets x 12 steps x 4 kinds, and 7 days of one profile an hour
profiles=$(printf '%s\n' "$out" | awk '$1 == "bench_profiles" { print $2 }')
same "bench fleet sent 96 + 168 profiles" "${profiles:-none}" 264

# --quick's range query: 100 series in jobs query-0..query-9, summed by job
groups=$(printf '%s\n' "$out" | awk '$1 == "range_query_result_series" { print $2 }')
same "the range query's sum by (job) gives one series per job" "${groups:-none}" 10

# the store's samples, summed over every stored profile by another command
said=$(printf '%s\n' "$out" | awk '$1 == "bench_samples" { print $2 }')
held=$("$1" tsdb dump --storage.tsdb.path "$tmp/store" |
    awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^samples=/) { sub(/^samples=/, "", $i); s += $i } } END { print s + 0 }')
[ "${said:-0}" -gt 0 ] && ok "bench fleet ingested ${said} samples" || fail "bench_samples ${said:-none}"
same "the store holds the samples bench fleet ingested" "$held" "${said:-none}"
finish
