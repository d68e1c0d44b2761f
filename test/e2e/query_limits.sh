#!/usr/bin/env bash
# End-to-end test of the query limits (README "Reliability and security"):
# --query.max-samples and --query.max-concurrency on every query path.
#
# The store holds SERIES copies of a large CPU profile (20,430 samples), each
# its own series, pushed in one batch at a fixed time.  firn runs with
# --query.max-samples=$S and --query.max-concurrency=1.  The counts below
# follow from that layout (each push stores two types, samples and cpu):
#  - a query_range of both types over 11,000 steps with a 1-day lookback
#    answers 2*SERIES*11000 points: over S, so 422 "execution" with
#    Prometheus's text; the same over one type (SERIES*11000 points) is 200;
#  - a flame graph of every series reads SERIES*20430 stack values: over S,
#    422; the flame graph of one series (20,430 values and its tree of
#    425,051 nodes below the root) is 200;
#  - Pyroscope's SelectMergeStacktraces over every series: resource_exhausted
#    (429) with the same text;
#  - while the refused queries run (two copies of each, with small queries
#    beside them), firn's RssAnon grows by less than the bound README states
#    for one query slot (S samples at 256 bytes each, plus 64 MiB for the
#    allocator), and the small queries answer 200;
#  - four allowed heavy queries at once: /metrics never shows more than one
#    evaluating, shows one waiting, and all four answer 200;
#  - a recording rule whose query loads more than the cap fails its
#    evaluation with the same text (/api/v1/rules: health "err").
#
# usage: query_limits.sh FIRN FIXTURES_DIR
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
fixtures=$2
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)

SERIES=30
S=600000
STEPS=11000
BYTES_PER_SAMPLE=256
ALLOCATOR_MIB=64
T=1700000000
TOO_MANY="query processing would load too many samples into memory in query execution"

for tool in python3 jq; do
    command -v "$tool" >/dev/null || { fail "$tool not installed"; finish; exit 1; }
done
e2e_workspace
large=$fixtures/pprof-internal_proftest_testdata_large.cpu

printf 'scrape_configs: []\n' >"$tmp/empty.yml"
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/empty.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data" \
        --storage.tsdb.retention.time=0 --storage.tsdb.no-rollups \
        --query.max-samples=$S --query.max-concurrency=1; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
base=http://127.0.0.1:$FIRN_PORT
flags=$(curl_local --max-time 10 "$base/api/v1/status/flags")
same "status/flags shows query.max-samples" "$(jq -r '.data["query.max-samples"]' <<<"$flags")" "$S"
same "status/flags shows query.max-concurrency" "$(jq -r '.data["query.max-concurrency"]' <<<"$flags")" 1

# one batch: SERIES items of the large profile, each with its own label
size=$(stat -c %s "$large")
for ((i = 0; i < SERIES; i++)); do
    printf '%d name=process_cpu&time=%d&copy=%d\n' "$size" "$T" "$i"
    cat "$large"
done >"$tmp/batch"
stored=$(curl_local --max-time 120 -H 'Content-Type: application/x-firn-batch' \
    --data-binary @"$tmp/batch" "$base/api/v1/ingest" | jq -r '.data.stored')
same "the batch of $SERIES profiles is stored" "$stored" "$SERIES"

CPU=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta
enc() { jq -rn --arg s "$1" '$s|@uri'; }
range_path() {  # SELECTOR: a query_range over STEPS steps, 1-day lookback
    echo "/api/v1/query_range?query=$(enc "$1")&start=$T&end=$((T + STEPS - 1))&step=1&lookback_delta=1d"
}
big_range=$(range_path '{__name__=~"process_cpu:.*"}')
one_range=$(range_path "$CPU")
big_flame="/api/v1/profile?query=$(enc "$CPU")&start=$((T - 60))&end=$((T + 60))"
one_flame="/api/v1/profile?query=$(enc "$CPU{copy=\"3\"}")&start=$((T - 60))&end=$((T + 60))"
small="/api/v1/query?query=$(enc "count(count_over_time($CPU[1h]))")&time=$((T + 60))"

# ---- the refused queries: their answers, and the memory they take ----------
expected_refusal() {  # WHAT PATH
    local out
    out=$(curl_local --max-time 120 -w '\n%{http_code}' "$base$2")
    same "$1: 422" "$(tail -1 <<<"$out")" 422
    same "$1: errorType execution" "$(head -n -1 <<<"$out" | jq -r .errorType)" execution
    same "$1: Prometheus's text" "$(head -n -1 <<<"$out" | jq -r .error)" "$TOO_MANY"
}
expected_refusal "query_range of $((2 * SERIES * STEPS)) points" "$big_range"
expected_refusal "flame graph of $((SERIES * 20430)) stack values" "$big_flame"
out=$(curl_local --max-time 120 -w '\n%{http_code}' "$base$big_flame&format=pprof")
same "pprof export past the cap: 422 as plain text for go tool pprof" \
    "$(tail -1 <<<"$out") $(head -n -1 <<<"$out")" "422 $TOO_MANY"
body="{\"profile_typeID\": \"process_cpu:cpu:nanoseconds:cpu:nanoseconds\", \"label_selector\": \"{}\",
 \"start\": $(((T - 60) * 1000)), \"end\": $(((T + 60) * 1000))}"
out=$(curl_local --max-time 120 -w '\n%{http_code}' -H 'Content-Type: application/json' \
    --data-binary "$body" "$base/querier.v1.QuerierService/SelectMergeStacktraces")
same "Connect SelectMergeStacktraces past the cap: 429 resource_exhausted, the same text" \
    "$(tail -1 <<<"$out") $(head -n -1 <<<"$out" | jq -r '.code + " " + .message')" \
    "429 resource_exhausted $TOO_MANY"

got=$(timeout 600 python3 "$here/query_load.py" "$FIRN_PORT" "$FIRN_PID" 2 \
    "$big_range" "$big_flame" "$small")
echo "query_load (refused queries): $(jq -c '{growth_kib, max_running, max_waiting,
    statuses: [.results[] | "\(.status) \(.errorType)"] | group_by(.) | map({(.[0]): length}) | add}' <<<"$got")"
same "the 4 queries over the cap got 422 execution" \
    "$(jq '[.results[] | select(.path != "'"$small"'") | select(.status == 422 and .error == "'"$TOO_MANY"'")] | length' <<<"$got")" 4
same "the small queries beside them answered 200" \
    "$(jq '[.results[] | select(.path == "'"$small"'" and .status == 200)] | length' <<<"$got")" 2
growth=$(jq -r '.growth_kib.RssAnon' <<<"$got")
bound=$((S * BYTES_PER_SAMPLE / 1024 + ALLOCATOR_MIB * 1024))
if [[ -n ${FIRN_E2E_SANITIZED:-} ]]; then
    echo "RssAnon grew by $((growth / 1024)) MiB (firn under ASan: not checked)"
elif [[ $growth =~ ^[0-9]+$ ]] && ((growth < bound)); then
    ok "RssAnon grew by $((growth / 1024)) MiB, under one slot's bound of $((bound / 1024)) MiB"
else
    fail "RssAnon grew by $growth KiB, the bound is $bound KiB"
fi
# the small query's answer, computed from the layout: one count per series
same "count of series answers $SERIES" \
    "$(curl_local --max-time 60 "$base$small" | jq -r '.data.result[0].value[1]')" "$SERIES"
refused=$(curl_local --max-time 20 "$base/metrics" |
    awk '$1 == "firn_engine_queries_too_many_samples_total" { print $2 }')
# 4 before the load (query_range, flame graph, pprof, Connect), 4 in it
same "firn_engine_queries_too_many_samples_total counts every refusal" "$refused" 8

# ---- the concurrency gate ----------------------------------------------------
waited_before=$(curl_local --max-time 20 "$base/metrics" |
    awk '$1 == "firn_engine_queries_waited_total" { print $2 }')
got=$(timeout 600 python3 "$here/query_load.py" "$FIRN_PORT" "$FIRN_PID" 2 "$one_range" "$one_flame")
echo "query_load (allowed queries, one slot): $(jq -c '{growth_kib, max_running, max_waiting, metric_samples,
    statuses: [.results[].status]}' <<<"$got")"
same "4 heavy queries under the cap all answered 200" \
    "$(jq '[.results[] | select(.status == 200)] | length' <<<"$got")" 4
same "/metrics never showed more than 1 query evaluating" "$(jq .max_running <<<"$got")" 1
waited_after=$(curl_local --max-time 20 "$base/metrics" |
    awk '$1 == "firn_engine_queries_waited_total" { print $2 }')
if [[ $waited_before =~ ^[0-9]+$ && $waited_after =~ ^[0-9]+$ ]] &&
    ((waited_after - waited_before >= 1)); then
    ok "queries past the one slot waited ($((waited_after - waited_before)) of 4), then answered"
else
    fail "firn_engine_queries_waited_total went from '$waited_before' to '$waited_after'"
fi
# one series' answer checked against the layout: STEPS points, each its total
pts=$(curl_local --max-time 120 "$base$(range_path "$CPU{copy=\"3\"}")" |
    jq -r '[.data.result[0].values | length, (.[0][1])] | @tsv')
total=$(pprof_raw_totals "$large" | awk '{ print $2 }')   # go tool pprof's: samples, cpu
same "an allowed query_range answers its $STEPS points of the profile's total" "$pts" \
    "$STEPS	$total"

# ---- rule evaluation -----------------------------------------------------------
stop_tracked
cat >"$tmp/rules.yml" <<EOF
groups:
  - name: g
    interval: 1s
    rules:
      - record: cpu:count
        expr: sum(count_over_time($CPU[5000d]))
EOF
printf 'rule_files: [rules.yml]\n' >"$tmp/firn.yml"
if ! start_firn "$firn" "$tmp/firn2.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data" \
        --storage.tsdb.retention.time=0 --query.max-samples=$((SERIES - 1)); then
    fail "start firn with a rule: $(tail -5 "$tmp/firn2.log")"
    finish
    exit 1
fi
base=http://127.0.0.1:$FIRN_PORT
rule_state() {
    curl_local --max-time 10 "$base/api/v1/rules" |
        jq -r '.data.groups[0].rules[0] | "\(.health) \(.lastError)"'
}
rule_failed() { [[ $(rule_state) == "err "* ]]; }
if wait_for 30 rule_failed; then
    same "a rule loading $SERIES points past --query.max-samples=$((SERIES - 1)) fails with the text" \
        "$(rule_state)" "err $TOO_MANY"
else
    fail "the rule did not fail its evaluation: $(rule_state)"
fi
finish
