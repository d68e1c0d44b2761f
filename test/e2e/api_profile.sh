#!/usr/bin/env bash
# api_profile.sh FIRN FIRNCTL FIXTURES_DIR -- the profile API as its users
# drive it: firn serves a store filled with `firnctl tsdb append` (Go CPU
# delta profiles at three times, one with pprof sample labels; another Go
# CPU profile; a heap profile) on a config that scrapes nothing, and:
#  - /api/v1/profile_types lists the stored types with their fields;
#  - `go tool pprof -top URL` reads format=pprof as a user types the URL,
#    and `go tool pprof -raw` totals equal the flame graph JSON's root
#    value;
#  - collapsed sums to the total, each function's leaf values to go tool
#    pprof's flat; top rows (flat, cum, name) are go tool pprof -top's of
#    the same URL;
#  - diff (another selector, another time range): every node carries both
#    values, each side sums to its total; group_by gives one subtree per
#    label value; filter keeps only the stacks through the function (go
#    tool pprof's cum); max_nodes caps the nodes, the rest "other";
#  - svg is well-formed XML (xmllint when installed) with the top function;
#  - bad requests get Prometheus's 4xx error envelope, and firn keeps
#    serving.
set -uo pipefail
firn=$1
firnctl=$2
fixtures=$3
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace

CPU="$fixtures/pyro-pkg_pprof_testdata_go.cpu.labels.pprof"
CPU2="$fixtures/pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz"
HEAP="$fixtures/alloy-heap.pprof"
CPU_TYPE=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta
SEL="$CPU_TYPE{job=\"api\"}"
store=$tmp/store
NOW=$(($(date +%s) * 1000))
T1=$((NOW - 10 * 60 * 1000))
T3=$((T1 + 20000))
# the API takes seconds (with decimals); a range around the three appends
START=$((T1 / 1000 - 1))
END=$((T3 / 1000 + 1))
AT=$(printf '%d.%03d' $((T1 / 1000)) $((T1 % 1000)))

# ---- the store and the server ---------------------------------------------------------

append() { "$firnctl" tsdb append --storage.tsdb.path "$store" "$@" >/dev/null; }
if append --name process_cpu --delta --label job=api --timestamp "$T1" --interval 10000 \
        --repeat 3 "$CPU" &&
    append --name process_cpu --delta --label job=worker --timestamp "$T1" "$CPU2" &&
    append --name memory --label job=api --timestamp "$T1" "$HEAP"; then
    ok "store: Go CPU profile (job=api) at 3 times, another (job=worker), a heap profile"
else
    fail "store: firnctl tsdb append failed"
    finish
    exit 1
fi
cpu_total() {  # the file's CPU total as go tool pprof reads it (samples, cpu)
    pprof_raw_totals "$1" | cut -d' ' -f2
}
cpu=$(cpu_total "$CPU")
cpu2=$(cpu_total "$CPU2")

echo "scrape_configs: []" >"$tmp/firn.yml"
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$store"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
api=http://127.0.0.1:$FIRN_PORT
ok "firn ready on port $FIRN_PORT"

# get PATH CURL_ARGS...: a GET with the arguments URL-encoded.
get() {
    local path=$1
    shift
    curl_local --max-time 30 -G "$api$path" "$@"
}
# prof ARGS...: /api/v1/profile?query=$SEL&start&end and ARGS.
prof() {
    get /api/v1/profile --data-urlencode "query=$SEL" -d start="$START" -d end="$END" "$@"
}
sum_last() { awk '{ s += $NF } END { printf "%.0f\n", s }'; }

# ---- profile types -------------------------------------------------------------------------

types=$(get /api/v1/profile_types)
same "profile_types: the stored types" \
    "$(jq -r '.status, (.data[].id)' <<<"$types")" "success
memory:alloc_objects:count:space:bytes
memory:alloc_space:bytes:space:bytes
memory:inuse_objects:count:space:bytes
memory:inuse_space:bytes:space:bytes
$CPU_TYPE
process_cpu:samples:count:cpu:nanoseconds:delta"
same "profile_types: the fields of $CPU_TYPE" \
    "$(jq -c --arg id "$CPU_TYPE" '.data[] | select(.id == $id) | del(.id)' <<<"$types")" \
    '{"name":"process_cpu","sample_type":"cpu","sample_unit":"nanoseconds","period_type":"cpu","period_unit":"nanoseconds","delta":true}'
same "profile_types after the data: none" \
    "$(get /api/v1/profile_types -d start=$((END + 60)) -d end=$((END + 120)) | jq -c .data)" "[]"

# ---- pprof, as go tool pprof fetches it --------------------------------------------------------

# The URL as a user types it: the selector's braces and quotes unescaped.
url="$api/api/v1/profile?query=$SEL&start=$START&end=$END&format=pprof"
if timeout 60 go tool pprof -top -nodefraction=0 "$url" >"$tmp/top.txt" 2>"$tmp/top.err"; then
    same "go tool pprof -top URL: main.work is the top function" \
        "$(awk '/flat%/ { s = 1; next } s { print $6; exit }' "$tmp/top.txt")" main.work
else
    fail "go tool pprof -top URL: $(tail -3 "$tmp/top.err")"
fi
raw=$(timeout 60 go tool pprof -raw "$url" 2>/dev/null | raw_sample_sums)
json=$(prof)
same "go tool pprof -raw total: 3x the fixture's" "$raw" "$((3 * cpu))"
same "flamegraph JSON: total and root value are go tool pprof's" \
    "$(jq -r '.status, .data.total, .data.root.value' <<<"$json")" "success
$raw
$raw"
same "flamegraph JSON: each node's value is its self plus its children's" \
    "$(jq '[.data.root | .. | objects | select(has("children"))
            | select(.value != .self + ([.children[].value] | add // 0))] | length' <<<"$json")" 0
same "flamegraph JSON: function indexes name the function table's entries" \
    "$(jq -r '.data as $d | [.data.root | .. | objects | select(has("function"))
            | select($d.functions[.function].name != .name)] | length' <<<"$json")" 0
same "flamegraph JSON: main.work's function entry has its file" \
    "$(jq -r '.data.functions[] | select(.name == "main.work") | .filename' <<<"$json" |
        grep -c '\.go$')" 1
headers=$(prof -d format=pprof -D - -o /dev/null | tr -d '\r')
same "format=pprof: a download" \
    "$(grep -i -E '^content-(type|disposition):' <<<"$headers" | tr 'A-Z' 'a-z' | sort)" \
    'content-disposition: attachment; filename="profile.pb.gz"
content-type: application/octet-stream'
same "time=: the profiles at that time, the fixture's total" \
    "$(get /api/v1/profile --data-urlencode "query=$SEL" -d time="$AT" | jq -r .data.total)" "$cpu"

# ---- collapsed and top, against go tool pprof on the same URL --------------------------------------

# go tool pprof -top in nanoseconds: "FLAT CUM NAME" rows, sorted.
timeout 60 go tool pprof -top -nodefraction=0 -unit=ns "$url" 2>/dev/null | awk '
    /flat%/ { s = 1; next }
    s { name = ""; for (i = 6; i <= NF; i++) name = name (i > 6 ? " " : "") $i
        sub(/ \((partial-)?inline\)$/, "", name); f = $1; c = $4
        sub(/ns$/, "", f); sub(/ns$/, "", c); print f, c, name }' | sort >"$tmp/go.top"
[[ -s $tmp/go.top ]] && ok "go tool pprof -top -unit=ns of the URL: $(wc -l <"$tmp/go.top") rows" ||
    fail "go tool pprof -top -unit=ns of the URL gave no rows"
prof -d format=collapsed >"$tmp/api.folded"
same "collapsed: lines sum to the total" "$(sum_last <"$tmp/api.folded")" "$raw"
same "collapsed: each function's leaf values sum to go tool pprof's flat" \
    "$(awk '{ v = $NF; $NF = ""; sub(/ $/, ""); n = split($0, f, ";"); flat[f[n]] += v }
            END { for (k in flat) if (flat[k]) printf "%.0f %s\n", flat[k], k }' "$tmp/api.folded" | sort)" \
    "$(awk '$1 != 0 { name = $3; for (i = 4; i <= NF; i++) name = name " " $i; print $1, name }' "$tmp/go.top" | sort)"
same "collapsed: Content-Type text/plain" \
    "$(prof -d format=collapsed -o /dev/null -w '%{content_type}')" "text/plain; charset=utf-8"
same "top: flat, cum and name of every row are go tool pprof -top's" \
    "$(prof -d format=top | jq -r '.data.rows[] | "\(.flat) \(.cum) \(.name)"' | sort)" \
    "$(cat "$tmp/go.top")"
same "top max_nodes=3: 3 rows of $(prof -d format=top | jq .data.rows_total)" \
    "$(prof -d format=top -d max_nodes=3 | jq '.data | [(.rows | length), .total]' -c)" \
    "[3,$raw]"

# ---- diff -----------------------------------------------------------------------------------------

diff_json=$(get /api/v1/profile --data-urlencode "query=$SEL" -d time="$AT" \
    --data-urlencode "compare_query=$CPU_TYPE{job=\"worker\"}" -d compare_time="$AT")
same "diff with another job: totals of each side" \
    "$(jq -r '.data | [.diff, .total, .compare_total, .root.value, .root.compare_value] | @tsv' \
        <<<"$diff_json")" "$(printf 'true\t%s\t%s\t%s\t%s' "$cpu" "$cpu2" "$cpu" "$cpu2")"
same "diff: every node carries both values" \
    "$(jq '[.data.root | .. | objects | select(has("children"))
            | select((has("compare_value") and has("compare_self")) | not)] | length' \
        <<<"$diff_json")" 0
same "diff with another range: every node's compare values are 3x its values" \
    "$(get /api/v1/profile --data-urlencode "query=$SEL" -d time="$AT" -d compare_start="$START" \
        -d compare_end="$END" | jq '[.data.root | .. | objects | select(has("children"))
            | select(.compare_value != 3 * .value or .compare_self != 3 * .self)] | length')" 0
get /api/v1/profile --data-urlencode "query=$SEL" -d time="$AT" -d compare_start="$START" \
    -d compare_end="$END" -d format=collapsed >"$tmp/diff.folded"
same "diff with another range (compare_query defaults to query): columns sum to 1x and 3x" \
    "$(awk '$(NF-1) !~ /^[0-9]+$/ || $NF !~ /^[0-9]+$/ { bad++ }
            { a += $(NF-1); b += $NF } END { printf "%d %.0f %.0f\n", bad, a, b }' \
        "$tmp/diff.folded")" "0 $cpu $((3 * cpu))"
same "diff top: both sides per function" \
    "$(get /api/v1/profile --data-urlencode "query=$SEL" -d time="$AT" -d compare_start="$START" \
        -d compare_end="$END" -d format=top |
        jq -r '.data.rows[] | select(.name == "main.work") | (.compare_flat / .flat)')" 3

# ---- group_by, filter, max_nodes -------------------------------------------------------------------

group=$(prof -d group_by=function)
same "group_by=function: one subtree per value of the label" \
    "$(jq -r '.data.root.children[].name' <<<"$group" | sort)" 'function=
function=fast
function=slow'
same "group_by=function: the subtrees sum to the total" \
    "$(jq '[.data.root.children[].value] | add' <<<"$group")" "$raw"

fast_cum=$(go tool pprof -top -nodefraction=0 -unit=ns -sample_index=cpu "$CPU" 2>/dev/null |
    awk '/flat%/ { s = 1; next }
         s && $6 == "main.fastFunction" { v = $4; sub(/ns$/, "", v); print v; exit }')
prof -d 'filter=main\.fastFunction' -d format=collapsed >"$tmp/filter.folded"
same "filter=main\\.fastFunction: every stack has the frame" \
    "$(grep -v -c -E '(^|;)main\.fastFunction(;| )' "$tmp/filter.folded")" 0
same "filter=main\\.fastFunction: sum is 3x go tool pprof's cum" \
    "$(sum_last <"$tmp/filter.folded")" "$((3 * fast_cum))"

limited=$(prof -d max_nodes=5)
same "max_nodes=5: at most 5 nodes besides the root and \"other\", same total" \
    "$(jq -c '.data | [([.root | .. | objects | select(has("children"))
            | select(.name != "total" and .name != "other")] | length <= 5),
            ([.root | .. | objects | select(.name? == "other")] | length > 0), .root.value]' \
        <<<"$limited")" "[true,true,$raw]"
same "max_nodes=0: no limit, no \"other\"" \
    "$(prof -d max_nodes=0 | jq '[.data.root | .. | objects | select(.name? == "other")] | length')" 0

# ---- svg ------------------------------------------------------------------------------------------

svg_type=$(prof -d format=svg -o "$tmp/flame.svg" -w '%{http_code} %{content_type}')
same "svg: 200 image/svg+xml" "$svg_type" "200 image/svg+xml"
if command -v xmllint >/dev/null; then
    check "svg: well-formed XML (xmllint)" xmllint --noout "$tmp/flame.svg"
else
    same "svg: an XML document with one svg element" \
        "$(head -c 5 "$tmp/flame.svg"; grep -c '<svg ' "$tmp/flame.svg"; tail -1 "$tmp/flame.svg")" \
        "<?xml1
</svg>"
fi
same "svg: main.work's frames, with search and zoom" \
    "$(grep -q '<title>main\.work$' "$tmp/flame.svg" && echo main.work
        grep -c -E 'function (zoom|search)\(' "$tmp/flame.svg")" "main.work
2"

# ---- no data, errors ----------------------------------------------------------------------------

same "nothing in the range: 200, an empty tree" \
    "$(get /api/v1/profile --data-urlencode "query=$SEL" -d start=$((END + 60)) -d end=$((END + 120)) |
        jq -c '.data | [.total, (.root.children | length)]')" "[0,0]"

# bad WHAT STATUS TYPE PATTERN CURL_ARGS...: the error envelope of TYPE with a
# message matching PATTERN, with STATUS.
bad() {
    local what=$1 status=$2 type=$3 pattern=$4 body code
    shift 4
    body=$(get /api/v1/profile -w '\n%{http_code}' "$@")
    code=${body##*$'\n'}
    body=${body%$'\n'*}
    if [ "$code" = "$status" ] && jq -e --arg t "$type" --arg p "$pattern" \
        '.status == "error" and .errorType == $t and (.error | test($p))' <<<"$body" >/dev/null; then
        ok "$what: $code $body"
    else
        fail "$what: want $status $type /$pattern/, got $code $body"
    fi
}
bad "no query" 400 bad_data 'query: none given' -d start="$START"
bad "a bad query: pql's message with the position" 400 bad_data '^1:5: ' \
    --data-urlencode 'query=sum('
bad "a selector matching several profile types" 400 bad_data 'matches [0-9]+ profile types' \
    --data-urlencode 'query={job="api"}'
bad "an unknown format: the formats listed" 400 bad_data 'flamegraph, top, pprof, collapsed, svg' \
    --data-urlencode "query=$SEL" -d format=png
bad "a bad time" 400 bad_data 'invalid parameter "start"' --data-urlencode "query=$SEL" -d start=yesterday
bad "end before start" 400 bad_data 'end timestamp must not be before start' \
    --data-urlencode "query=$SEL" -d start="$END" -d end="$START"
bad "a bad filter regex" 400 bad_data '^filter: ' --data-urlencode "query=$SEL" -d 'filter=(('
# format=pprof errors are for pprof tools: plain text marked X-Go-Pprof.
bad_pprof() {  # WHAT STATUS PATTERN CURL-ARGS...
    local what=$1 status=$2 pattern=$3 out
    shift 3
    out=$(curl_local -D "$tmp/hdr" -w '\n%{http_code}' "$api/api/v1/profile" -d format=pprof "$@")
    if [[ ${out##*$'\n'} == "$status" && ${out%$'\n'*} =~ $pattern ]] &&
        grep -qi '^x-go-pprof: 1' "$tmp/hdr" && grep -qi '^content-type: text/plain' "$tmp/hdr"; then
        ok "$what: ${out//$'\n'/ }"
    else
        fail "$what: want $status /$pattern/ as text with X-Go-Pprof, got ${out//$'\n'/ }"
    fi
}
bad_pprof "pprof of a diff" 400 'diff_base' --data-urlencode "query=$SEL" -d compare_time="$AT"
bad_pprof "pprof of a selector with no type that matches nothing" 404 'no profile matches' \
    --data-urlencode 'query={job="nothing"}'
if timeout 60 go tool pprof -top "$api/api/v1/profile?query=sum(&format=pprof" >/dev/null 2>"$tmp/err"; then
    fail "go tool pprof on a bad query: exited 0"
else
    same "go tool pprof on a bad query: the server's 400 with firn's message" \
        "$(grep -c '400 Bad Request - 1:5: ' "$tmp/err")" 1
fi
same "firn keeps serving" "$(curl_local --max-time 5 "$api/-/healthy")" "firn is Healthy."

finish
