#!/usr/bin/env bash
# bench_connect.sh -- Pyroscope's API over Connect (what Grafana and Alloy
# call) beside firn's own endpoints on the same data, under load (wrk):
#   - SelectMergeStacktraces (binary, as Grafana sends it) beside
#     /api/v1/profile?format=flamegraph: one series merged over the hour;
#   - SelectSeries (binary, 15 s steps) beside /api/v1/query_range of
#     sum(sum_over_time(...[15s])): the same points;
#   - Push (binary, as Alloy sends it) beside POST /api/v1/ingest: the same
#     profile, each request a new series.
#
# usage: bench_connect.sh FIRN FIRNCTL FIXTURES_DIR [--targets N]
#                         [--profiles N] [--clients N] [--seconds S]
#                         [--rounds R]
#
#   --targets N    series of CPU profiles in the store (default 20)
#   --profiles N   profiles per series, 10 s apart (default 360: one hour)
#   --clients N    concurrent connections (default 8)
#   --seconds S    length of each load run (default 3)
#   --rounds R     latency rounds (default 7)
#
# A p99 taken once on a shared machine measures the machine's other load
# as much as the endpoint, and a run that follows another finds warmer
# caches.  So each latency pair is measured in R rounds after a warm-up of
# both sides; each round runs the two sides back to back, their order
# alternating from round to round, and a round's ratio compares two runs
# seconds apart.  The latency figures are the medians over the rounds
# (side by side, and of the per-round ratios); *_worst is the largest
# per-round ratio and native_*_p99_spread the largest native p99 over the
# smallest: how far the same endpoint moves between rounds.  The writes
# run in R rounds as well (alternating, medians).  floor_* is
# the same load on /api/v1/status/buildinfo, which does next to nothing on
# the same worker threads (R rounds too): the latency the machine adds to
# any request (waiting for a worker and a core), whatever the endpoint.
#
# Prints one `figure_name value` per line (latencies in ms); the *_vs_native
# figures are the Connect figure over firn's own, measured in the same run
# (the issue's goal: at most 1.2 for latency).  Everything runs on
# 127.0.0.1; whatever the script starts it stops on exit.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/../e2e/lib.sh"
. "$HERE/wrk_lib.sh"

die() {
    echo "bench_connect: $*" >&2
    exit 1
}
note() { echo "bench_connect: $*" >&2; }

# --rounds is this script's own; the rest are every wrk benchmark's
rounds=7
args=()
while [[ $# -gt 0 ]]; do
    if [[ $1 == --rounds ]]; then
        [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || die "--rounds wants a positive integer"
        rounds=$2
        shift 2
    else
        args+=("$1")
        shift
    fi
done
wrk_bench_args 20 3 "${args[@]}"

e2e_workspace
fill_and_serve "$firn" "$firnctl" "$fixture" "$targets" "$profiles"

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf("%.3f", (b > 0) ? a / b : 0) }'; }

ID=process_cpu:cpu:nanoseconds:cpu:nanoseconds
SEL='{service_name="bench",instance="host-0:6060"}'
FIRN_SEL="$ID:delta{job=\"bench\",instance=\"host-0:6060\"}"
range="start=$((start_ms / 1000))&end=$((end_ms / 1000))"

# The Connect requests, encoded in Lua by hand (protobuf: tag, varint,
# length-delimited), the way Grafana's and Alloy's clients send them.
cat >"$tmp/proto.lua" <<'EOF'
function varint(n)
    local out = {}
    repeat
        local b = n % 128
        n = (n - b) / 128
        if n > 0 then b = b + 128 end
        out[#out + 1] = string.char(b)
    until n == 0
    return table.concat(out)
end
function bytes(field, s) return varint(field * 8 + 2) .. varint(#s) .. s end
function int(field, n) return varint(field * 8) .. varint(n) end
EOF
cat >"$tmp/merge.lua" <<EOF
dofile("$tmp/proto.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/proto"
wrk.body = bytes(1, "$ID") .. bytes(2, '$SEL') .. int(3, $start_ms) .. int(4, $end_ms)
EOF
cat >"$tmp/series.lua" <<EOF
dofile("$tmp/proto.lua")
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/proto"
-- step 15 (double, field 6: fixed64 little-endian 0x402e000000000000)
wrk.body = bytes(1, "$ID") .. bytes(2, '$SEL') .. int(3, $start_ms) .. int(4, $end_ms)
           .. string.char(49, 0, 0, 0, 0, 0, 0, 46, 64)
EOF
cat >"$tmp/push.lua" <<EOF
dofile("$tmp/proto.lua")
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
end
local f = assert(io.open("$fixture", "rb"))
local profile = f:read("*a")
f:close()
local n = 0
local round = os.getenv("BENCH_ROUND") or "0"  -- each round's series are new ones
local function pair(name, value) return bytes(1, name) .. bytes(2, value) end
request = function()
    n = n + 1
    local series = bytes(1, pair("__name__", "process_cpu")) ..
                   bytes(1, pair("service_name", "push-" .. round .. "-" .. id .. "-" .. n)) ..
                   bytes(2, bytes(1, profile))
    return wrk.format("POST", "/push.v1.PusherService/Push",
                      {["Content-Type"] = "application/proto"}, bytes(1, series))
end
EOF
cat >"$tmp/ingest.lua" <<EOF
local threads = 0
function setup(thread)
    threads = threads + 1
    thread:set("id", threads)
end
local f = assert(io.open("$fixture", "rb"))
local body = f:read("*a")
f:close()
local n = 0
local round = os.getenv("BENCH_ROUND") or "0"
request = function()
    n = n + 1
    return wrk.format("POST", "/api/v1/ingest?name=process_cpu&service_name=ingest-" .. round ..
                      "-" .. id .. "-" .. n,
                      {["Content-Type"] = "application/octet-stream"}, body)
end
EOF

# The two sides must answer the same data before they are timed.
code=$(curl_local -o "$tmp/native.json" -w '%{http_code}' \
    "$api/api/v1/profile?query=$(enc "$FIRN_SEL")&$range&format=flamegraph")
[[ $code == 200 ]] || die "native flame graph answered $code: $(head -c 300 "$tmp/native.json")"
code=$(curl_local -o "$tmp/connect.json" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    -d "{\"profileTypeID\":\"$ID\",\"labelSelector\":$(jq -Rn --arg s "$SEL" '$s'),\"start\":$start_ms,\"end\":$end_ms}" \
    "$api/querier.v1.QuerierService/SelectMergeStacktraces")
[[ $code == 200 ]] || die "SelectMergeStacktraces answered $code: $(head -c 300 "$tmp/connect.json")"
[[ $(jq -r .data.total "$tmp/native.json") == $(jq -r .flamegraph.total "$tmp/connect.json") ]] ||
    die "the two flame graphs' totals differ"

run() {  # NAME SECONDS WRK_ARGS...
    note "$1: $clients clients, ${2}s"
    wrk -t2 -c"$clients" -d"${2}s" --timeout 60s --latency "${@:3}" >"$tmp/$1.txt" 2>&1
}
native_flamegraph=("$api/api/v1/profile?query=$(enc "$FIRN_SEL")&$range&format=flamegraph")
connect_flamegraph=(-s "$tmp/merge.lua" "$api/querier.v1.QuerierService/SelectMergeStacktraces")
native_series=("$api/api/v1/query_range?query=$(enc "sum(sum_over_time(${FIRN_SEL}[15s]))")&$range&step=15")
connect_series=(-s "$tmp/series.lua" "$api/querier.v1.QuerierService/SelectSeries")
floor=("$api/api/v1/status/buildinfo")
connect_push=(-s "$tmp/push.lua" "$api/push.v1.PusherService/Push")
native_ingest=(-s "$tmp/ingest.lua" "$api/api/v1/ingest")

n_errors=0
# side_run SIDE KIND ROUND: one timed run; its errors counted.
side_run() {
    local args="$1_$2[@]"
    run "$1_$2_$3" "$seconds" "${!args}"
    n_errors=$((n_errors + $(errors "$tmp/$1_$2_$3.txt")))
}
for kind in flamegraph series; do
    for side in native connect; do   # warm-up: its latencies not counted, its errors are
        args="${side}_${kind}[@]"
        run "warm_${side}_$kind" 2 "${!args}"
        n_errors=$((n_errors + $(errors "$tmp/warm_${side}_$kind.txt")))
    done
    for ((r = 1; r <= rounds; r++)); do
        if ((r % 2)); then
            side_run native "$kind" "$r"
            side_run connect "$kind" "$r"
        else
            side_run connect "$kind" "$r"
            side_run native "$kind" "$r"
        fi
    done
done
for ((r = 1; r <= rounds; r++)); do
    run "floor_$r" "$seconds" "${floor[@]}"
    n_errors=$((n_errors + $(errors "$tmp/floor_$r.txt")))
done
# the writes in rounds too: the store grows with every run, so neither
# side always gets the smaller one
for ((r = 1; r <= rounds; r++)); do
    order=(connect_push native_ingest)
    ((r % 2)) || order=(native_ingest connect_push)
    for side in "${order[@]}"; do
        args="$side[@]"
        BENCH_ROUND=$r run "${side}_$r" "$seconds" "${!args}"
        n_errors=$((n_errors + $(errors "$tmp/${side}_$r.txt")))
    done
done

# median: the median of the numbers on standard input (one a line).
median() {
    sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) printf "%.3f", v[(NR + 1) / 2];
                                         else printf "%.3f", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
# over KIND SIDE P: SIDE's P percentile in each round, one a line (KIND ""
# for the floor runs).
over() {
    local r
    for ((r = 1; r <= rounds; r++)); do percentile "$tmp/$2${1:+_$1}_$r.txt" "$3"; echo; done
}
# ratios KIND P: connect over native in each round, one a line.
ratios() {
    local r
    for ((r = 1; r <= rounds; r++)); do
        ratio "$(percentile "$tmp/connect_$1_$r.txt" "$2")" "$(percentile "$tmp/native_$1_$r.txt" "$2")"
        echo
    done
}

echo "series $targets"
echo "profiles_per_series $profiles"
echo "clients $clients"
echo "rounds $rounds"
for kind in flamegraph series; do
    for side in native connect; do
        echo "${side}_${kind}_p50_ms $(over $kind $side 50 | median)"
        echo "${side}_${kind}_p99_ms $(over $kind $side 99 | median)"
    done
    for p in 50 99; do
        echo "${kind}_p${p}_connect_vs_native $(ratios $kind $p | median)"
    done
    echo "${kind}_p99_connect_vs_native_worst $(ratios $kind 99 | sort -g | tail -1)"
    echo "native_${kind}_p99_spread $(ratio "$(over $kind native 99 | sort -g | tail -1)" \
        "$(over $kind native 99 | sort -g | head -1)")"
    note "$kind p99 connect/native per round: $(ratios $kind 99 | tr '\n' ' ')"
done
echo "floor_p50_ms $(over "" floor 50 | median)"
echo "floor_p99_ms $(over "" floor 99 | median)"
# rate SIDE: SIDE's requests per second in each round, one a line.
rate() {
    local r
    for ((r = 1; r <= rounds; r++)); do requests_per_s "$tmp/$1_$r.txt"; echo; done
}
echo "native_ingest_per_s $(rate native_ingest | median)"
echo "connect_push_per_s $(rate connect_push | median)"
echo "push_per_s_connect_vs_native $(for ((r = 1; r <= rounds; r++)); do
    ratio "$(requests_per_s "$tmp/connect_push_$r.txt")" "$(requests_per_s "$tmp/native_ingest_$r.txt")"
    echo
done | median)"
echo "errors $n_errors"
