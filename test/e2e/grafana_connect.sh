#!/usr/bin/env bash
# grafana_connect.sh FIRN SRCDIR FIXTURES_DIR DESCRIPTOR_SET -- firn's
# Pyroscope API (Connect) as Grafana, the Profiles Drilldown and Alloy use
# it, against a firn scraping the real Go test service:
#  - test/connect/connect_test.js, a client built from the real Connect
#    libraries over the descriptor set protoc-c made from the vendored
#    protos, calls every RPC in binary and JSON, with and without gzip: its
#    flame graphs have, per function, go tool pprof's flat and cum (on
#    firn's pprof export of the same scraped data, and on the fixture files
#    it pushes), and SelectSeries has /api/v1/query_range's points;
#  - raw HTTP (curl) for the protocol's strict rules: exact Content-Types,
#    error bodies and statuses, unknown methods, truncated, oversized and
#    badly gzipped bodies; and the Drilldown's lenient JSON.
# Needs go, node and test/connect/node_modules (scripts/deps test runs npm
# ci there).  Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
srcdir=$2
fixtures=$3
fds=$4
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace
FIX1=$fixtures/pyro-pkg_pprof_testdata_go.cpu.labels.pprof   # gzipped Go CPU, 873 samples
FIX2=$fixtures/pprof-internal_report_testdata_sample.cpu     # gzipped Go CPU, 176 samples
node_dir=$srcdir/test/connect
if ! command -v node >/dev/null || [ ! -d "$node_dir/node_modules/@connectrpc/connect-node" ]; then
    fail "node and test/connect/node_modules are needed (scripts/deps test runs npm ci there)"
    finish
    exit 1
fi
[ -s "$fds" ] && ok "descriptor set $(basename "$fds") built by protoc-c" || fail "no descriptor set at $fds"

need_go "$srcdir" goservice "$tmp"
if ! start_goservice "$tmp" svc; then
    fail "start go service: $(tail -5 "$tmp/svc.log")"
    finish
    exit 1
fi
svc_pid=${E2E_PIDS[-1]}
ok "go service at $GO_ADDR"
# Two of its cumulative allocation profiles, some seconds apart (the CPU
# scrapes below come between them), pushed later without __delta__.
curl_local --fail --max-time 30 -o "$tmp/allocs1.pb.gz" "http://$GO_ADDR/debug/pprof/allocs" ||
    fail "fetching the Go service's allocs profile"

cat >"$tmp/firn.yml" <<EOF
global: {scrape_interval: 2s, scrape_timeout: 2s}
scrape_configs:
  - job_name: go
    static_configs: [{targets: ['$GO_ADDR']}]
EOF
# Retention off: the pushed fixtures were recorded years ago.
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data" \
        --storage.tsdb.retention.time=0; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
api=http://127.0.0.1:$FIRN_PORT
ok "firn ready on port $FIRN_PORT"

SAMPLES_SEL='process_cpu:samples:count:cpu:nanoseconds:delta{job="go"}'
CPU_SEL='process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job="go"}'
promq() {  # PATH ARGS...: a Prometheus API GET, data printed
    curl_local --max-time 30 -G "$api$1" "${@:2}" | jq -c '.data'
}
cpu_profiles() {
    promq /api/v1/query --data-urlencode "query=count_over_time(${SAMPLES_SEL}[10m])" |
        jq -e '.result[0].value[1] | tonumber >= 4' >/dev/null
}
if wait_for 90 cpu_profiles; then
    ok "four CPU profiles of the Go service scraped"
else
    fail "the Go service's CPU profiles were not scraped: $(tail -3 "$tmp/firn.log")"
fi
curl_local --fail --max-time 30 -o "$tmp/allocs2.pb.gz" "http://$GO_ADDR/debug/pprof/allocs" ||
    fail "fetching the Go service's allocs profile again"
# Freeze the data: stop the service, then wait until every scrape loop of
# the job has failed once (so no scrape begun before is still storing).
stop_pid "$svc_pid"
all_down() {
    curl_local --max-time 5 "$api/api/v1/targets" |
        jq -e '[.data.activeTargets[] | select(.labels.job == "go") | .health] |
               length > 0 and all(. == "down")' >/dev/null
}
wait_for 60 all_down && ok "the Go service stopped: every scrape of it failed since" ||
    fail "the targets did not all go down"

END=$(($(date +%s%3N)))
START=$((END - 10 * 60 * 1000))
secs() { printf '%d.%03d' $(($1 / 1000)) $(($1 % 1000)); }

# ---- what other tools say about the same data -----------------------------------

# pprof_table FILE [INDEX [BASE]]: go tool pprof -top's flat and cum per
# function (of sample type INDEX, default samples; with BASE, the
# difference from it) as {"name": [flat, cum]}.
pprof_table() {
    local unit=
    [[ ${2:-} == *_space ]] && unit=-unit=byte   # exact bytes ("1049360B"), not "1.00MB"
    go tool pprof -top -nodefraction=0 -sample_index="${2:-samples}" $unit ${3:+-base "$3"} "$1" \
        2>/dev/null | awk '
        /flat%/ { s = 1; next }
        s { name = ""; for (i = 6; i <= NF; i++) name = name (i > 6 ? " " : "") $i
            sub(/ \((partial-)?inline\)$/, "", name); sub(/B$/, "", $1); sub(/B$/, "", $4)
            print name "\t" $1 "\t" $4 }' |
        jq -R -s -c 'split("\n") | map(select(length > 0) | split("\t")) |
                     map({key: .[0], value: [(.[1] | tonumber), (.[2] | tonumber)]}) | from_entries'
}
curl_local --max-time 60 -G "$api/api/v1/profile" --data-urlencode "query=$SAMPLES_SEL" \
    -d start="$(secs "$START")" -d end="$(secs "$END")" -d format=pprof -o "$tmp/scraped.pb.gz"
scraped=$(pprof_table "$tmp/scraped.pb.gz")
fix1=$(pprof_table "$FIX1")
fix2=$(pprof_table "$FIX2")
allocs_delta=$(pprof_table "$tmp/allocs2.pb.gz" alloc_space "$tmp/allocs1.pb.gz")
allocs_inuse=$(pprof_table "$tmp/allocs2.pb.gz" inuse_space)
if [ "$(jq 'length' <<<"$scraped")" -gt 0 ] && [ "$(jq 'length' <<<"$fix1")" -gt 0 ] &&
   [ "$(jq 'length' <<<"$fix2")" -gt 0 ]; then
    ok "go tool pprof -top tables of the scraped export and both fixtures"
else
    fail "go tool pprof -top gave an empty table"
fi
STEP=15
range() {  # QUERY: [[ms, value]...] of /api/v1/query_range over the window
    promq /api/v1/query_range --data-urlencode "query=$1" -d start="$(secs "$START")" \
        -d end="$(secs "$END")" -d step=$STEP |
        jq -c '[.result[0].values[]? | [(.[0] * 1000 | round), (.[1] | tonumber)]]'
}
sum=$(range "sum(sum_over_time(${CPU_SEL}[${STEP}s]))")
count=$(range "sum(count_over_time(${CPU_SEL}[${STEP}s]))")
avg=$(jq -c -n --argjson s "$sum" --argjson c "$count" \
      '[range($s | length) | [$s[.][0], $s[.][1] / $c[.][1]]]')
[ "$(jq length <<<"$sum")" -gt 0 ] && ok "query_range has $(jq length <<<"$sum") points" ||
    fail "query_range found no points"
jq -n --argjson start "$START" --argjson stop "$END" --argjson scraped "$scraped" \
    --argjson fix1 "$fix1" --argjson fix2 "$fix2" --argjson sum "$sum" --argjson avg "$avg" \
    --argjson step "$STEP" --arg f1 "$FIX1" --arg f2 "$FIX2" --arg a1 "$tmp/allocs1.pb.gz" \
    --arg a2 "$tmp/allocs2.pb.gz" --argjson adelta "$allocs_delta" --argjson ainuse "$allocs_inuse" '
    def total: [.[] | .[0]] | add;
    {start: $start, "end": $stop,
     scraped: {top: $scraped, total: ($scraped | total)},
     pushed: [{key: "fix1", file: $f1, top: $fix1, total: ($fix1 | total)},
              {key: "fix2", file: $f2, top: $fix2, total: ($fix2 | total)}],
     cumulative: {first: $a1, second: $a2, alloc_space: $adelta, inuse_space: $ainuse},
     range: {step: $step, sum: $sum, avg: $avg}}' >"$tmp/expect.json"

# ---- the real Connect client ---------------------------------------------------------

(cd "$node_dir" && timeout 300 node connect_test.js "$api" "$fds" "$tmp/expect.json") \
    >"$tmp/node.log" 2>&1
rc=$?
while IFS= read -r line; do
    case $line in
    "ok "*) ok "connect-es ${line#ok }" ;;
    "FAIL "*) fail "connect-es ${line#FAIL }" ;;
    esac
done <"$tmp/node.log"
same "the Connect client ran to its end" "$rc" 0
[ "$rc" -ne 0 ] && grep -v '^ok ' "$tmp/node.log" | tail -5

# ---- raw HTTP: the protocol's strict rules --------------------------------------------

QS=$api/querier.v1.QuerierService
# call URL CONTENT_TYPE BODY_FILE [CURL_ARGS...]: "status content-type
# content-encoding" (headers lower-cased by us, values verbatim) and the
# body in $tmp/body.
call() {
    local url=$1 ct=$2 body=$3
    shift 3
    curl_local --max-time 30 -X POST -H "Content-Type: $ct" --data-binary @"$body" "$@" \
        -D "$tmp/hdr" -o "$tmp/body" "$url" >/dev/null
    local status ctype cenc
    status=$(awk 'NR == 1 { print $2 }' "$tmp/hdr")
    ctype=$(grep -i '^content-type:' "$tmp/hdr" | sed 's/^[^:]*: //' | tr -d '\r')
    cenc=$(grep -i '^content-encoding:' "$tmp/hdr" | sed 's/^[^:]*: //' | tr -d '\r')
    echo "$status $ctype${cenc:+ $cenc}"
}
err_code() { jq -r '.code' "$tmp/body"; }

printf '\x08\xe8\x07\x10\xa0\x1f' >"$tmp/health.bin"   # ProfileTypesRequest{start 1000, end 4000}
same "Grafana's health check bytes: 200 application/proto, exactly" \
    "$(call "$QS/ProfileTypes" application/proto "$tmp/health.bin" -H 'Connect-Protocol-Version: 1')" \
    "200 application/proto"
same "... with an empty body (no profile types in 1970)" "$(wc -c <"$tmp/body")" 0
printf '{}' >"$tmp/empty.json"
same "JSON: 200 application/json, exactly" "$(call "$QS/ProfileTypes" application/json "$tmp/empty.json")" \
    "200 application/json"
same "application/json; charset=utf-8 is JSON too" \
    "$(call "$QS/ProfileTypes" 'application/json; charset=utf-8' "$tmp/empty.json")" "200 application/json"
: >"$tmp/zero"
same "an empty binary body is an all-default request" \
    "$(call "$QS/GetProfileStats" application/proto "$tmp/zero")" "200 application/proto"
same "unknown method: 501 application/json" "$(call "$QS/NoSuchMethod" application/json "$tmp/empty.json")" \
    "501 application/json"
same "... code unimplemented" "$(err_code)" unimplemented
same "a service firn does not serve: 501 unimplemented" \
    "$(call "$api/vcs.v1.VCSService/GetFile" application/json "$tmp/empty.json") $(err_code)" \
    "501 application/json unimplemented"
same "SelectHeatmap: 501 unimplemented" \
    "$(call "$QS/SelectHeatmap" application/json "$tmp/empty.json") $(err_code)" \
    "501 application/json unimplemented"
same "GET: 405" "$(curl_local -o /dev/null -w '%{http_code}' "$QS/ProfileTypes")" 405
same "Content-Type text/plain: 415" "$(call "$QS/ProfileTypes" text/plain "$tmp/empty.json" | cut -d' ' -f1)" 415
same "... with connect-go's Accept-Post" \
    "$(grep -i '^accept-post:' "$tmp/hdr" | sed 's/^[^:]*: //' | tr -d '\r')" \
    "application/json, application/json; charset=utf-8, application/proto"
same "application/x-protobuf: 415" \
    "$(call "$QS/ProfileTypes" application/x-protobuf "$tmp/health.bin" | cut -d' ' -f1)" 415
same "Connect-Protocol-Version 2: 400 invalid_argument" \
    "$(call "$QS/ProfileTypes" application/json "$tmp/empty.json" -H 'Connect-Protocol-Version: 2') $(err_code)" \
    "400 application/json invalid_argument"
printf '\x0a\x05ab' >"$tmp/trunc.bin"   # LabelValuesRequest.name: 5 bytes announced, 2 sent
same "a truncated binary message: 400 invalid_argument" \
    "$(call "$QS/LabelValues" application/proto "$tmp/trunc.bin") $(err_code)" \
    "400 application/json invalid_argument"
same "... saying which message" "$(jq -r .message "$tmp/body")" \
    "the body is not a valid types.v1.LabelValuesRequest message (binary protobuf)"
printf '{"start": "soon"}' >"$tmp/badint.json"
same "JSON with a bad int64: 400 invalid_argument" \
    "$(call "$QS/ProfileTypes" application/json "$tmp/badint.json") $(err_code)" \
    "400 application/json invalid_argument"
same "... naming the field" "$(jq -r .message "$tmp/body" | grep -o 'field "start"')" 'field "start"'
printf '{"start": 1' >"$tmp/truncjson"
same "truncated JSON: 400 invalid_argument" \
    "$(call "$QS/ProfileTypes" application/json "$tmp/truncjson") $(err_code)" \
    "400 application/json invalid_argument"
same "Content-Encoding gzip on a body that is not gzip: 400 invalid_argument" \
    "$(call "$QS/ProfileTypes" application/json "$tmp/empty.json" -H 'Content-Encoding: gzip') $(err_code)" \
    "400 application/json invalid_argument"
same "Content-Encoding br: 501 unimplemented" \
    "$(call "$QS/ProfileTypes" application/json "$tmp/empty.json" -H 'Content-Encoding: br') $(err_code)" \
    "501 application/json unimplemented"
head -c $((129 << 20)) /dev/zero | gzip -1 >"$tmp/bomb.gz"
same "a gzip body inflating past 128 MiB: 429 resource_exhausted" \
    "$(call "$api/push.v1.PusherService/Push" application/proto "$tmp/bomb.gz" -H 'Content-Encoding: gzip') $(err_code)" \
    "429 application/json resource_exhausted"
head -c $((65 << 20)) /dev/zero >"$tmp/huge"
same "a body over the server's 64 MiB cap: 429 resource_exhausted, as connect-go answers" \
    "$(call "$api/push.v1.PusherService/Push" application/proto "$tmp/huge") $(err_code)" \
    "429 application/json resource_exhausted"
same "... also sent chunked (no Content-Length)" \
    "$(call "$api/push.v1.PusherService/Push" application/proto "$tmp/huge" \
        -H 'Transfer-Encoding: chunked' -H 'Expect:') $(err_code)" "429 application/json resource_exhausted"
same "... and a plain 413 on firn's own ingest" \
    "$(call "$api/api/v1/ingest?name=process_cpu" application/octet-stream "$tmp/huge" | cut -d' ' -f1)" 413
rm -f "$tmp/huge" "$tmp/bomb.gz"
same "firn still serves after all that" "$(curl_local "$api/-/healthy")" "firn is Healthy."

# A data source URL with a path (Grafana joins it and the procedure, as
# behind a reverse proxy at /pyroscope/): the same answers under it.
same "under a path prefix: Grafana's health check" \
    "$(call "$api/pyroscope/querier.v1.QuerierService/ProfileTypes" application/proto "$tmp/health.bin")" \
    "200 application/proto"
same "under a two-segment prefix: JSON" \
    "$(call "$api/a/b/querier.v1.QuerierService/ProfileTypes" application/json "$tmp/empty.json")" \
    "200 application/json"
same "under a prefix: an unknown method is still 501 unimplemented" \
    "$(call "$api/a/querier.v1.QuerierService/NoSuchMethod" application/json "$tmp/empty.json") $(err_code)" \
    "501 application/json unimplemented"
same "under a prefix: the Drilldown's render-diff route" \
    "$(curl_local -o /dev/null -w '%{http_code}' "$api/pyroscope/pyroscope/render-diff")" \
    "$(curl_local -o /dev/null -w '%{http_code}' "$api/pyroscope/render-diff")"
same "a prefix does not reach firn's own API" \
    "$(curl_local -o /dev/null -w '%{http_code}' "$api/pyroscope/api/v1/labels")" 404

# The Drilldown's JSON: no Connect header, int64 as numbers, proto names,
# an enum name the proto does not know, an unknown field.
cat >"$tmp/drill.json" <<EOF
{"profile_typeID": "process_cpu:samples:count:cpu:nanoseconds", "label_selector": "{service_name=\"go\"}",
 "start": $START, "end": $END, "max_nodes": 16384, "format": "PROFILE_FORMAT_FUNCTIONS",
 "sandwichFunction": "main.main", "stack_trace_selector": {"call_site": []}}
EOF
same "the Drilldown's lenient JSON: 200 application/json" \
    "$(call "$QS/SelectMergeStacktraces" application/json "$tmp/drill.json")" "200 application/json"
same "... with the flame graph, int64 as strings" "$(jq -r '.flamegraph.total | type' "$tmp/body")" string
same "... its total go tool pprof's" "$(jq -r '.flamegraph.total' "$tmp/body")" \
    "$(jq -r '.scraped.total' "$tmp/expect.json")"
# Series with every label: well over the 1 KiB from which answers are gzipped.
printf '{"start": %s, "end": %s}' "$START" "$END" >"$tmp/all_series.json"
call "$QS/Series" application/json "$tmp/all_series.json" >/dev/null
cp "$tmp/body" "$tmp/plain"
same "gzip asked: Content-Encoding gzip on a big answer ($(wc -c <"$tmp/plain") bytes)" \
    "$(call "$QS/Series" application/json "$tmp/all_series.json" -H 'Accept-Encoding: gzip')" \
    "200 application/json gzip"
same "... which inflates to the same answer" "$(gunzip -c "$tmp/body" | md5sum)" "$(md5sum <"$tmp/plain")"
printf '{"start": %s, "end": %s, "labelNames": ["service_name", "__profile_type__"]}' "$START" "$END" \
    >"$tmp/series.json"
call "$QS/Series" application/json "$tmp/series.json" >/dev/null
same "Series as the Drilldown asks: (go, process_cpu) among the label sets" \
    "$(jq -r '[.labelsSet[].labels | from_entries | select(.service_name == "go" and .__profile_type__ == "process_cpu:cpu:nanoseconds:cpu:nanoseconds")] | length' "$tmp/body")" 1

# Pyroscope's HTTP API the Drilldown uses for its diff view (and exports).
render_get() {  # PATH ARGS...: status, body in $tmp/body
    curl_local --max-time 30 -G -o "$tmp/body" -w '%{http_code}' "$api$1" "${@:2}"
}
SAMPLES_ID=process_cpu:samples:count:cpu:nanoseconds
same "/pyroscope/render: 200" "$(render_get /pyroscope/render --data-urlencode "query=$SAMPLES_ID{service_name=\"go\"}" \
    -d from="$START" -d until="$END" -d max-nodes=0)" 200
same "... flamebearer numTicks is go tool pprof's total" "$(jq -r .flamebearer.numTicks "$tmp/body")" \
    "$(jq -r .scraped.total "$tmp/expect.json")"
same "... single format, 4 values per bar, units objects for samples" \
    "$(jq -c '[.metadata.format, ([.flamebearer.levels[] | length % 4] | add), .metadata.units, .flamebearer.names[0]]' "$tmp/body")" \
    '["single",0,"objects","total"]'
fix1_total=$(jq -r '.pushed[0].total' "$tmp/expect.json")
same "/pyroscope/render-diff: 200" "$(render_get /pyroscope/render-diff \
    --data-urlencode "leftQuery=$SAMPLES_ID{service_name=\"go\"}" -d leftFrom="$START" -d leftUntil="$END" \
    --data-urlencode "rightQuery=$SAMPLES_ID{service_name=\"pushed-fix1-binary\"}" -d rightFrom=0 -d rightUntil=now)" 200
same "... double format, 7 values per bar, both sides' ticks" \
    "$(jq -c '[.metadata.format, ([.flamebearer.levels[] | length % 7] | add), .leftTicks, .rightTicks, .flamebearer.numTicks]' "$tmp/body")" \
    "[\"double\",0,$(jq -r .scraped.total "$tmp/expect.json"),$fix1_total,$(($(jq -r .scraped.total "$tmp/expect.json") + fix1_total))]"
same "render-diff of two profile types: 400 invalid_argument" "$(render_get /pyroscope/render-diff \
    --data-urlencode "leftQuery=$SAMPLES_ID{}" --data-urlencode "rightQuery=process_cpu:cpu:nanoseconds:cpu:nanoseconds{}") $(err_code)" \
    "400 invalid_argument"

finish
