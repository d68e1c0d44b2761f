#!/usr/bin/env bash
# End-to-end test of the Prometheus-compatible query API: a store filled
# with fixture CPU profiles (`firnctl tsdb append`: two jobs, three
# targets, delta profiles 10 s apart) is served by firn on a config that
# scrapes nothing, and
#  - Debian's promtool (`promtool query instant|range|series|labels`, a real
#    Prometheus client: client_golang, POST form bodies) reads the values
#    computed by hand from the store's layout and the fixtures' totals as
#    go tool pprof gives them (api_prom_expect.py; not firn's evaluator);
#  - curl sees Prometheus's JSON: the scalar of `1+1` (Grafana's health
#    check), vectors and matrices with those values and Prometheus's shapes,
#    GET and POST form bodies alike, series, labels, label values,
#    limits with their warning, status endpoints;
#  - bad requests get Prometheus's error envelope and status: a malformed
#    query (400 bad_data with the parser's message), bad times, end before
#    start, too many points, an invalid label name, no match[], an
#    evaluation error (422 execution), a timeout (503).
#
# usage: api_prom.sh FIRN FIRNCTL FIXTURES_DIR
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
firnctl=$2
fixtures=$3
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace

CPU_A=$fixtures/pyro-pkg_pprof_testdata_go.cpu.labels.pprof
CPU_B=$fixtures/pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz
CPU_C=$fixtures/parca-pkg_query_testdata_profile1.pb.gz
CPU=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta
store=$tmp/store
# whole minutes, ten of them ago: inside retention, in the past
T1=$((($(date +%s) / 60 - 10) * 60000))
S1=$((T1 / 1000))
S6=$((S1 + 50))            # the sixth and last profile of each series

append() {
    "$firnctl" tsdb append --storage.tsdb.path "$store" --name process_cpu --delta "$@" >/dev/null
}
# job=api a:1 alternates two fixtures (values change over time); job=api
# c:1 and job=worker b:1 hold one each.
if append --label job=api --label instance=a:1 --timestamp "$T1" --interval 20000 --repeat 3 \
        "$CPU_A" &&
    append --label job=api --label instance=a:1 --timestamp $((T1 + 10000)) --interval 20000 \
        --repeat 3 "$CPU_C" &&
    append --label job=api --label instance=c:1 --timestamp "$T1" --interval 10000 --repeat 6 \
        "$CPU_C" &&
    append --label job=worker --label instance=b:1 --timestamp "$T1" --interval 10000 \
        --repeat 6 "$CPU_B"; then
    ok "store: CPU profiles of jobs api (2 targets) and worker, 6 times 10 s apart"
else
    fail "store: firnctl tsdb append failed"
    finish
    exit 1
fi

printf 'scrape_configs: []\n' >"$tmp/firn.yml"
check "firnctl check config accepts a config that scrapes nothing" \
    "$firnctl" check config "$tmp/firn.yml"
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$store" \
        --storage.tsdb.retention.time=2w; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
server=http://127.0.0.1:$FIRN_PORT
api=$server/api/v1
ok "firn ready on port $FIRN_PORT"


# get URL [CURL ARGS...]: the body on standard output; code then prints its
# HTTP status (get runs in $(...), so the status goes through a file).
get() {
    curl_local --max-time 30 -o "$tmp/body" -w '%{http_code}' "$@" >"$tmp/code" ||
        echo 000 >"$tmp/code"
    cat "$tmp/body" 2>/dev/null
}
code() { cat "$tmp/code"; }

# ---- what the queries must answer, computed by hand -------------------------------
# api_prom_expect.py computes the answers from the store's layout and the
# fixtures' CPU totals as go tool pprof reads them: neither firn's evaluator
# nor its JSON writer is involved.
total() { pprof_raw_totals "$1" | cut -d' ' -f2; }
TOTAL_A=$(total "$CPU_A")
TOTAL_B=$(total "$CPU_B")
TOTAL_C=$(total "$CPU_C")
[[ -n $TOTAL_A && -n $TOTAL_B && -n $TOTAL_C ]] &&
    ok "the fixtures' CPU totals from go tool pprof: $TOTAL_A $TOTAL_B $TOTAL_C" ||
    fail "go tool pprof -raw gave no totals: '$TOTAL_A' '$TOTAL_B' '$TOTAL_C'"
expect() { python3 "$(dirname "$0")/api_prom_expect.py" "$TOTAL_A" "$TOTAL_B" "$TOTAL_C" "$T1" "$@"; }

# A result as [labels, value] or [labels, [[t, value]...]], values as numbers
# (client_golang prints 'f' where Prometheus prints 'e'), sorted by labels.
norm_vector='map([.metric, (.value[1] | tonumber)]) | sort_by(.[0] | tostring)'
norm_matrix='map([.metric, [.values[] | [.[0], (.[1] | tonumber)]]]) | sort_by(.[0] | tostring)'
# numbers_same WHAT GOT WANT: two such JSON texts equal, numbers within a
# relative 1e-9 (a sum divided by 60 need not print the same digits).
numbers_same() {
    local verdict
    verdict=$(python3 -c '
import json, math, sys
def same(a, b):
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b
try:
    got, want = json.loads(sys.argv[1]), json.loads(sys.argv[2])
except ValueError as e:
    print("not JSON: %s" % e); sys.exit()
print("same" if want and same(got, want) else "differs")' "$2" "$3")
    if [[ $verdict == same ]]; then
        ok "$1"
    else
        fail "$1: $verdict: got $(cut -c1-300 <<<"$2"), want $(cut -c1-300 <<<"$3")"
    fi
}

# ---- promtool, a real Prometheus client ----------------------------------------------

promtool_same() {  # WHAT NORM WANT PROMTOOL_ARGS...
    local what=$1 norm=$2 want=$3 got
    shift 3
    if ! got=$(timeout 30 promtool query "$@" 2>"$tmp/promtool.err"); then
        fail "$what: promtool failed: $(head -3 "$tmp/promtool.err")"
        return
    fi
    numbers_same "$what" "$(jq -c "$norm" <<<"$got")" "$want"
}

expr_sum="sum by (job) ($CPU)"
expr_rate="sum by (job) (rate($CPU[1m]))"
promtool_same "promtool query instant: $expr_sum" "$norm_vector" "$(expect sum_instant "$S6")" \
    instant -o json "$server" "$expr_sum" --time "$S6"
promtool_same "promtool query instant: $expr_rate" "$norm_vector" "$(expect rate_instant "$S6")" \
    instant -o json "$server" "$expr_rate" --time "$S6"
promtool_same "promtool query range: $CPU{job=\"api\"}" "$norm_matrix" \
    "$(expect api_range "$S1" "$S6" 10)" \
    range -o json "$server" "$CPU{job=\"api\"}" --start "$S1" --end "$S6" --step 10s
promtool_same "promtool query range: $expr_rate over 5 s steps" "$norm_matrix" \
    "$(expect rate_range "$S1" "$S6" 5)" \
    range -o json "$server" "$expr_rate" --start "$S1" --end "$S6" --step 5s

same "the two fixtures of a:1 have different totals (so alternation shows)" \
    "$((TOTAL_A != TOTAL_C))" 1

series_want=$(jq -cn --arg n "$CPU" '[
    {__name__: $n, instance: "a:1", job: "api"},
    {__name__: $n, instance: "b:1", job: "worker"},
    {__name__: $n, instance: "c:1", job: "api"}]')
same "promtool query series --match $CPU" \
    "$(timeout 30 promtool query series -o json "$server" --match "$CPU" 2>&1 | jq -c .)" \
    "$series_want"
same "promtool query series with two --match, one time range" \
    "$(timeout 30 promtool query series -o json "$server" --match "$CPU{job=\"worker\"}" \
        --match "$CPU{instance=\"c:1\"}" --start "$S1" --end "$S6" 2>&1 | jq -c .)" \
    "$(jq -c '[.[1], .[2]]' <<<"$series_want")"
same "promtool query labels job" \
    "$(timeout 30 promtool query labels -o json "$server" job 2>&1 | jq -c .)" '["api","worker"]'
same "promtool query labels instance --match {job=\"api\"}" \
    "$(timeout 30 promtool query labels -o json "$server" instance --match '{job="api"}' 2>&1 |
        jq -c .)" '["a:1","c:1"]'
same "promtool query instant 1+1: a scalar (Grafana's health check)" \
    "$(timeout 30 promtool query instant "$server" '1+1' --time "$S6" 2>&1)" "scalar: 2 @[$S6]"
# the parser's message for a query, as `firnctl query parse` prints it
parse_error() { "$firnctl" query parse "$1" 2>&1 | sed 's/^firnctl: //'; }
parse_err=$(parse_error 'sum(rate(x[5m])')
timeout 30 promtool query instant "$server" 'sum(rate(x[5m])' >"$tmp/p.out" 2>&1
rc=$?
same "promtool query instant of a malformed query: exit 1 and the parser's message" \
    "$rc $(cat "$tmp/p.out")" "1 query error: bad_data: invalid parameter \"query\": $parse_err"

# ---- exact JSON --------------------------------------------------------------------

same "GET query 1+1: a scalar" "$(get "$api/query?query=1%2B1&time=$S1.5") $(code)" \
    "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\",\"result\":[$S1.500,\"2\"]}} 200"
want=$(expect rate_instant "$S6")
rate_json=$(get "$api/query" -G --data-urlencode "query=$expr_rate" -d "time=$S6")
rate_code=$(code)
numbers_same "GET query $expr_rate ($rate_code)" "$(jq -c ".data.result | $norm_vector" <<<"$rate_json")" "$want"
same "POST form query $expr_rate: the same bytes" \
    "$(get "$api/query" --data-urlencode "query=$expr_rate" -d "time=$S6") $(code)" "$rate_json 200"
same "a vector's shape" "$(jq -c '[.status, .data.resultType, [.data.result[].metric.job],
        [.data.result[].value | (.[0] | type) + "," + (.[1] | type)], ([.data.result[].value[0]] | unique)]' <<<"$rate_json")" \
    "[\"success\",\"vector\",[\"api\",\"worker\"],[\"number,string\",\"number,string\"],[$S6]]"
numbers_same "rate of a delta type over the API = its profiles in the last minute over 60 s" \
    "$(get "$api/query" -G --data-urlencode "query=rate($CPU{instance=\"a:1\"}[1m])" \
        -d "time=$S6" | jq -c '[.data.result[0].value[1] | tonumber]')" \
    "[$(python3 -c "print((3 * $TOTAL_A + 3 * $TOTAL_C) / 60)")]"
want=$(get "$api/query_range" -G --data-urlencode "query=$expr_sum" -d "start=$S1" -d "end=$S6" -d step=10s)
numbers_same "GET query_range $expr_sum ($(code))" "$(jq -c ".data.result | $norm_matrix" <<<"$want")" \
    "$(expect sum_range "$S1" "$S6" 10)"
same "POST form query_range with RFC3339 times and float seconds step: the same bytes" \
    "$(get "$api/query_range" --data-urlencode "query=$expr_sum" \
        -d "start=$(date -u -d "@$S1" +%Y-%m-%dT%H:%M:%SZ)" \
        --data-urlencode "end=$(TZ=IST-05:30 date -d "@$S6" +%Y-%m-%dT%H:%M:%S.000%:z)" -d step=10) $(code)" \
    "$want 200"
same "a matrix's shape: 6 points per job, [number, string] each" \
    "$(jq -c '[.data.resultType, [.data.result[] | (.values | length)],
        ([.data.result[].values[] | (.[0] | type) + "," + (.[1] | type)] | unique)]' <<<"$want")" \
    '["matrix",[6,6],["number,string"]]'
same "query with limit=1: the first series and a warning" \
    "$(get "$api/query?limit=1" -G --data-urlencode "query=$expr_sum" -d "time=$S6" |
        jq -c '[(.data.result | length), .warnings]') $(code)" \
    '[1,["results truncated due to limit"]] 200'

same "GET series" "$(get "$api/series" -G --data-urlencode "match[]=$CPU" | jq -c .data) $(code)" \
    "$series_want 200"
same "POST form series with start and end" \
    "$(get "$api/series" --data-urlencode "match[]=$CPU{job=\"api\"}" -d "start=$S1" \
        -d "end=$S6" | jq -c .data) $(code)" "$(jq -c '[.[0], .[2]]' <<<"$series_want") 200"
same "series outside the stored range: []" \
    "$(get "$api/series" -G --data-urlencode "match[]=$CPU" -d start=1 -d end=2) $(code)" \
    '{"status":"success","data":[]} 200'
same "GET labels" "$(get "$api/labels") $(code)" \
    '{"status":"success","data":["__name__","instance","job"]} 200'
same "POST form labels with match[]" \
    "$(get "$api/labels" --data-urlencode 'match[]={job="worker"}' -d "start=$S1") $(code)" \
    '{"status":"success","data":["__name__","instance","job"]} 200'
same "labels outside the stored range: [], not null" \
    "$(get "$api/labels?start=1&end=2") $(code)" '{"status":"success","data":[]} 200'
same "label values of job" "$(get "$api/label/job/values") $(code)" \
    '{"status":"success","data":["api","worker"]} 200'
same "label values of instance with match[] and limit=1" \
    "$(get "$api/label/instance/values" -G --data-urlencode 'match[]={job="api"}' -d limit=1) $(code)" \
    '{"status":"success","data":["a:1"],"warnings":["results truncated due to limit"]} 200'
same "label values of __name__" "$(get "$api/label/__name__/values" | jq -c .data) $(code)" \
    "[\"$CPU\",\"process_cpu:samples:count:cpu:nanoseconds:delta\"] 200"

# ---- errors ------------------------------------------------------------------------

err() {  # WHAT STATUS TYPE MESSAGE CURL_ARGS...
    local what=$1 status=$2 type=$3 msg=$4
    shift 4
    local body
    body=$(get "$@")
    same "$what" "$(code) $(jq -c '[.status, .errorType, .error]' <<<"$body" 2>&1)" \
        "$status $(jq -cn --arg t "$type" --arg m "$msg" '["error", $t, $m]')"
}
err "a malformed query: 400 bad_data with the parser's message" 400 bad_data \
    "invalid parameter \"query\": $parse_err" "$api/query" --data-urlencode 'query=sum(rate(x[5m])'
err "a type error: 400 bad_data with its position" 400 bad_data \
    "invalid parameter \"query\": $(parse_error 'rate(x)')" \
    "$api/query" -G --data-urlencode 'query=rate(x)'
err "a bad time: 400" 400 bad_data \
    "invalid parameter \"time\": Invalid time value for 'time': cannot parse \"noon\" to a valid timestamp" \
    "$api/query?query=1&time=noon"
err "a bad range start: 400" 400 bad_data \
    "invalid parameter \"start\": cannot parse \"2024-13-01T00:00:00Z\" to a valid timestamp" \
    "$api/query_range?query=1&start=2024-13-01T00:00:00Z&end=1&step=1"
err "end before start: 400" 400 bad_data \
    "invalid parameter \"end\": end timestamp must not be before start time" \
    "$api/query_range?query=1&start=$S6&end=$S1&step=10"
err "a zero step: 400" 400 bad_data \
    "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer" \
    "$api/query_range?query=1&start=$S1&end=$S6&step=0"
err "more than 11,000 points: 400" 400 bad_data \
    "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)" \
    "$api/query_range?query=1&start=$S1&end=$((S1 + 11001))&step=1"
err "a range query of a range vector: 400" 400 bad_data \
    "invalid parameter \"query\": invalid expression type \"range vector\" for range query, must be Scalar or instant Vector" \
    "$api/query_range" -G --data-urlencode "query=$CPU[1m]" -d "start=$S1" -d "end=$S6" -d step=10
err "an evaluation error: 422 execution" 422 execution \
    "vector cannot contain metrics with the same labelset" \
    "$api/query" -G --data-urlencode 'query=-{job="api"}' -d "time=$S6"
err "a timeout of 0: 503 timeout" 503 timeout "query timed out in expression evaluation" \
    "$api/query" -G --data-urlencode "query=$CPU" -d "time=$S6" -d timeout=0s
err "a negative limit: 400" 400 bad_data "invalid parameter \"limit\": limit must be non-negative" \
    "$api/labels?limit=-1"
err "series without match[]: 400" 400 bad_data "no match[] parameter provided" "$api/series"
err "series with only empty matchers: 400" 400 bad_data \
    "invalid parameter \"match[]\": match[] must contain at least one non-empty matcher" \
    "$api/series" -G --data-urlencode 'match[]={job=~".*"}'
err "an invalid label name: 400" 400 bad_data "invalid label name: \"1job\"" \
    "$api/label/1job/values"
same "an unknown (valid) label name: []" "$(get "$api/label/nothing/values") $(code)" \
    '{"status":"success","data":[]} 200'

# ---- status ------------------------------------------------------------------------

same "status/buildinfo: firn's version, Go's fields empty" \
    "$(get "$api/status/buildinfo" | jq -c .data) $(code)" \
    "{\"version\":\"$("$firn" --version | awk '{print $2}')\",\"revision\":\"\",\"branch\":\"\",\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\"} 200"
# (the document written out again: compared as data, read by PyYAML; the
# secrets are api_secrets.sh's)
served_config() { get "$api/status/config" | jq -r .data.yaml | yaml_json; }
same "status/config: the running configuration" "$(served_config)" "$(yaml_json <"$tmp/firn.yml")"
printf '# reloaded\nglobal: {scrape_interval: 30s}\nscrape_configs: []\n' >"$tmp/firn.yml.new"
mv "$tmp/firn.yml.new" "$tmp/firn.yml"
kill -HUP "$FIRN_PID"
config_reloaded() { [[ $(served_config) == "$(yaml_json <"$tmp/firn.yml")" ]]; }
if wait_for 20 config_reloaded; then
    ok "status/config after SIGHUP: the reloaded text"
else
    fail "status/config after SIGHUP: $(get "$api/status/config")"
fi
printf 'scrape_configs: {}\n' >"$tmp/firn.yml.new"
mv "$tmp/firn.yml.new" "$tmp/firn.yml"
kill -HUP "$FIRN_PID"
if wait_for 20 grep -q 'Error reloading config' "$tmp/firn.log"; then
    same "status/config after a refused reload: the running configuration stays" \
        "$(served_config)" '{"global": {"scrape_interval": "30s"}, "scrape_configs": []}'
else
    fail "a broken config on SIGHUP: not refused"
fi
same "status/flags: a map of flag to value" \
    "$(get "$api/status/flags" | jq -c '.data | [.["storage.tsdb.path"], .["config.file"], .["web.enable-lifecycle"], .["storage.tsdb.retention.time"]]') $(code)" \
    "$(jq -cn --arg s "$store" --arg c "$tmp/firn.yml" '[$s, $c, "false", "2w"]') 200"
same "metadata: each stored profile type, a counter (delta) with its unit" \
    "$(get "$api/metadata" | jq -c '.data | to_entries | map([.key, .value[0].type, .value[0].unit])') $(code)" \
    '[["process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta","counter","nanoseconds"],["process_cpu:samples:count:cpu:nanoseconds:delta","counter","count"]] 200'
same "query_exemplars: []" \
    "$(get "$api/query_exemplars" -G --data-urlencode "query=$CPU" -d "start=$S1" -d "end=$S6") $(code)" \
    '{"status":"success","data":[]} 200'

same "firn still healthy" "$(get "$server/-/healthy") $(code)" "firn is Healthy. 200"
same "firn logged no error but the refused reload" \
    "$(grep 'level=error' "$tmp/firn.log" | grep -vc 'reload\|configuration error')" 0
finish
