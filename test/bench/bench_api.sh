#!/usr/bin/env bash
# bench_api.sh -- the HTTP API under load (wrk): flame-graph query latency
# at N concurrent clients, /-/healthy latency while those queries run, and
# ingest pushes per second.
#
# usage: bench_api.sh FIRN FIRNCTL FIXTURES_DIR [--targets N] [--profiles N]
#                     [--clients N] [--seconds S]
#
#   --targets N    series of CPU profiles in the store (default 100)
#   --profiles N   profiles per series, 10 s apart (default 360: one hour)
#   --clients N    concurrent connections of the query load (default 8)
#   --seconds S    length of each load run (default 15)
#
# The store is filled with `firnctl tsdb append` (the Go CPU fixture the
# store benchmarks use), then firn serves it with a configuration that
# scrapes nothing.  Load runs, one after the other:
#   - merge of one series over the hour, as a flame graph (JSON);
#   - merge of every series over the hour (the heavy query), with a second
#     wrk measuring /-/healthy on one connection at the same time;
#   - ingest: POST /api/v1/ingest of the fixture, each request a new series
#     (time= now: the fixture's own time is older than the retention).
# Prints one `figure_name value` per line (latencies in ms).  The goal for
# /-/healthy is p99 under 10 ms while heavy queries run (the event loop never
# waits for a query); healthy_p99_vs_goal is p99 / 10 ms (below 1 is good).
# Everything runs on 127.0.0.1; whatever the script starts it stops on exit.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../e2e/lib.sh"
. "$HERE/wrk_lib.sh"

die() {
    echo "bench_api: $*" >&2
    exit 1
}
note() { echo "bench_api: $*" >&2; }

wrk_bench_args 100 15 "$@"

e2e_workspace
fill_and_serve "$firn" "$firnctl" "$fixture" "$targets" "$profiles"

one=$(enc 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job="bench",instance="host-0:6060"}')
all=$(enc 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job="bench"}')
range="start=$((start_ms / 1000))&end=$((end_ms / 1000))"
code=$(curl_local -o "$tmp/check.json" -w '%{http_code}' "$api/api/v1/profile?query=$one&$range&format=flamegraph")
[[ $code == 200 ]] || die "flame graph query answered $code: $(head -c 300 "$tmp/check.json")"

note "one series, $clients clients, ${seconds}s"
wrk -t2 -c"$clients" -d"${seconds}s" --latency "$api/api/v1/profile?query=$one&$range&format=flamegraph" \
    >"$tmp/one.txt" 2>&1

note "every series (heavy), $clients clients, ${seconds}s, with /-/healthy measured alongside"
wrk -t1 -c1 -d"${seconds}s" --latency "$api/-/healthy" >"$tmp/healthy.txt" 2>&1 &
healthy_pid=$!
wrk -t2 -c"$clients" -d"${seconds}s" --timeout 60s --latency \
    "$api/api/v1/profile?query=$all&$range&format=flamegraph" >"$tmp/all.txt" 2>&1
wait "$healthy_pid"

cat >"$tmp/push.lua" <<EOF
-- Each request is a new series: thread id and a per-thread counter.
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
end
local f = assert(io.open("$fixture", "rb"))
local body = f:read("*a")
f:close()
local n = 0
request = function()
    n = n + 1
    return wrk.format("POST", "/api/v1/ingest?name=process_cpu&job=push&time=$((end_ms / 1000))"
                      .. "&instance=" .. id .. "-" .. n,
                      {["Content-Type"] = "application/octet-stream"}, body)
end
EOF
note "ingest, $clients clients, ${seconds}s"
wrk -t2 -c"$clients" -d"${seconds}s" -s "$tmp/push.lua" --latency "$api/api/v1/ingest" >"$tmp/push.txt" 2>&1

healthy_p99=$(percentile "$tmp/healthy.txt" 99)
echo "series $targets"
echo "profiles_per_series $profiles"
echo "clients $clients"
echo "flamegraph_one_series_p50_ms $(percentile "$tmp/one.txt" 50)"
echo "flamegraph_one_series_p99_ms $(percentile "$tmp/one.txt" 99)"
echo "flamegraph_one_series_per_s $(requests_per_s "$tmp/one.txt")"
echo "flamegraph_all_series_p50_ms $(percentile "$tmp/all.txt" 50)"
echo "flamegraph_all_series_p99_ms $(percentile "$tmp/all.txt" 99)"
echo "flamegraph_all_series_per_s $(requests_per_s "$tmp/all.txt")"
echo "healthy_under_load_p50_ms $(percentile "$tmp/healthy.txt" 50)"
echo "healthy_under_load_p99_ms $healthy_p99"
echo "healthy_p99_vs_goal $(awk -v p="$healthy_p99" 'BEGIN { printf "%.3f", p / 10 }')"
echo "ingest_pushes_per_s $(requests_per_s "$tmp/push.txt")"
echo "ingest_p99_ms $(percentile "$tmp/push.txt" 99)"
echo "errors $(($(errors "$tmp/one.txt") + $(errors "$tmp/all.txt") + $(errors "$tmp/push.txt") + $(errors "$tmp/healthy.txt")))"
