#!/bin/bash
# query_cli.sh FIRNCTL FIXTURES_DIR -- the query language as a user drives it
# with `firnctl query eval|range|profile` against a store built with
# `firnctl tsdb append`, checked against the fixtures as `firnctl pprof info`
# and `go tool pprof` read them:
#  - eval: Prometheus's /api/v1/query JSON (scalar, string, vector, matrix;
#    timestamps as seconds with 3 decimals, values as Go formats them);
#    sum by (job) gives each job's fixture total; a __function__ filter
#    gives the cum `go tool pprof -top` reports for that function (!= the
#    rest); rate and increase over a delta type;
#  - range: one point per step at the right times, the 11,000-point limit;
#  - profile: merged pprof reads in go tool pprof as 3x the fixture;
#    collapsed stacks (group-by frame first, filter, node limit with
#    "other", diff columns summing to each side's total); top's first row
#    is go tool pprof's;
#  - the store is opened read-only: queries run while another process holds
#    the writer's lock;
#  - errors: a bad query (bad_data, with its position), an evaluation error
#    (execution), no store, a profile query over two profile types.
set -uo pipefail
FIRNCTL=$1
FIXTURES=$2
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

e2e_workspace

CPU="$FIXTURES/pyro-pkg_pprof_testdata_go.cpu.labels.pprof"
CPU2="$FIXTURES/pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz"
HEAP="$FIXTURES/alloy-heap.pprof"
store="$tmp/store"
NOW=$(($(date +%s) * 1000))
T1=$((NOW - 10 * 60 * 1000))
T2=$((T1 + 10000))
T3=$((T1 + 20000))
S1=$((T1 / 1000))
CPU_SERIES=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta

# q COMMAND ARGS...: firnctl query COMMAND on the store.
q() {
    "$FIRNCTL" query "$1" --storage.tsdb.path "$store" "${@:2}"
}

# cpu_total FILE: the fixture's cpu sample type total.
cpu_total() {
    "$FIRNCTL" pprof info "$1" | jq -r '.sample_types[] | select(.type == "cpu") | .total'
}

# go_cum FILE FUNCTION: the cum of FUNCTION in `go tool pprof -top` (cpu,
# nanoseconds): the total of the samples whose stack contains it.
go_cum() {
    go tool pprof -top -nodefraction=0 -unit=ns -sample_index=cpu "$1" 2>/dev/null |
        awk -v f="$2" '
            /flat%/ { s = 1; next }
            s { name = ""; for (i = 6; i <= NF; i++) name = name (i > 6 ? " " : "") $i
                sub(/ \((partial-)?inline\)$/, "", name)
                if (name == f) { v = $4; sub(/ns$/, "", v); print v; exit } }'
}

# sum_last: the sum of the last column of the lines on standard input.
sum_last() {
    awk '{ s += $NF } END { printf "%.0f\n", s }'
}

# ---- the store -------------------------------------------------------------------

tsdb_append() {
    "$FIRNCTL" tsdb append --storage.tsdb.path "$store" "$@" >/dev/null
}
tsdb_append --name process_cpu --delta --label job=api --timestamp "$T1" --interval 10000 \
    --repeat 3 "$CPU" &&
    tsdb_append --name process_cpu --delta --label job=worker --timestamp "$T1" "$CPU2" &&
    tsdb_append --name memory --label job=api --timestamp "$T1" "$HEAP" &&
    ok "store: Go CPU profile (job=api) at 3 times, another (job=worker), a heap profile" ||
    fail "store: firnctl tsdb append failed"
cpu=$(cpu_total "$CPU")
cpu2=$(cpu_total "$CPU2")

# ---- eval ---------------------------------------------------------------------------

same "eval 1+1 --time 1700000000123: Prometheus's scalar JSON" \
    "$(q eval '1+1' --time 1700000000123)" \
    '{"status":"success","data":{"resultType":"scalar","result":[1700000000.123,"2"]}}'
same "eval --time 1700000000100: 3 decimals, as Prometheus" \
    "$(q eval '2' --time 1700000000100)" \
    '{"status":"success","data":{"resultType":"scalar","result":[1700000000.100,"2"]}}'
same "eval without --time: now" \
    "$(q eval '1+1' | jq -r --argjson now "$NOW" \
        '.data.result[0] - $now / 1000 | (. >= 0 and . < 600)')" true
for c in '0.1+0.2|0.30000000000000004' '1/0|+Inf' '-1/0|-Inf' '0/0|NaN' '1e21|1e+21' \
    '1/8e6|1.25e-07' '-2.5|-2.5'; do
    expr=${c%%|*} want=${c#*|}
    same "eval $expr: value \"$want\" (Go's FormatFloat 'f', -1; 'e' outside [1e-6, 1e21))" \
        "$(q eval "$expr" --time 0 | jq -r '.data.result[1]')" "$want"
done
same "eval a string" "$(q eval '"a\tb"' --time 1500 | jq -c '.data')" \
    '{"resultType":"string","result":[1.5,"a\tb"]}'

same "eval sum by (job) at T3: each job's fixture cpu total" \
    "$(q eval "sum by (job) ($CPU_SERIES)" --time "$T3" |
        jq -r '.data | .resultType, (.result[] | "\(.metric.job) \(.value[0]) \(.value[1])")')" \
    "vector
api $((T3 / 1000)) $cpu
worker $((T3 / 1000)) $cpu2"
same "eval a selector: __name__ and labels in metric" \
    "$(q eval "$CPU_SERIES" --time "$T1" | jq -c '[.data.result[].metric]')" \
    "[{\"__name__\":\"$CPU_SERIES\",\"job\":\"api\"},{\"__name__\":\"$CPU_SERIES\",\"job\":\"worker\"}]"
same "eval a range selector: matrix of the raw profiles" \
    "$(q eval "$CPU_SERIES{job=\"api\"}[1m]" --time "$T3" |
        jq -c '.data | [.resultType, (.result[] | .values)]')" \
    "[\"matrix\",[[$S1,\"$cpu\"],[$((S1 + 10)),\"$cpu\"],[$((S1 + 20)),\"$cpu\"]]]"

for f in main.fastFunction main.slowFunction.func1 runtime.mallocgc; do
    want=$(go_cum "$CPU" "$f")
    if [ -z "$want" ]; then
        fail "go tool pprof -top lists no $f"
        continue
    fi
    same "eval __function__=\"$f\": go tool pprof's cum ($want)" \
        "$(q eval "sum($CPU_SERIES{job=\"api\", __function__=\"$f\"})" --time "$T1" |
            jq -r '.data.result[0].value[1]')" "$want"
    same "eval __function__!=\"$f\": total - cum" \
        "$(q eval "sum($CPU_SERIES{job=\"api\", __function__!=\"$f\"})" --time "$T1" |
            jq -r '.data.result[0].value[1]')" "$((cpu - want))"
done
want=$(go_cum "$CPU2" runtime.kevent)
same "eval __function__=~\"runtime\\\\.kev.*\": go tool pprof's cum ($want) for job=worker, 0 for api" \
    "$(q eval "$CPU_SERIES{__function__=~\"runtime\\\\.kev.*\"}" --time "$T1" |
        jq -r '.data.result[] | "\(.metric.job) \(.value[1])"')" "api 0
worker $want"

same "eval rate over a delta type: the sum of 3 profiles / 60 s" \
    "$(q eval "rate($CPU_SERIES{job=\"api\"}[1m])" --time "$T3" | jq -r '.data.result[0].value[1]')" \
    "$(awk -v c="$cpu" 'BEGIN { printf "%.0f", 3 * c / 60 }')"
same "eval increase over a delta type: the sum of 3 profiles" \
    "$(q eval "increase($CPU_SERIES{job=\"api\"}[1m])" --time "$T3" | jq -r '.data.result[0].value[1]')" \
    "$((3 * cpu))"

# ---- range ------------------------------------------------------------------------

range_rows() {
    jq -r '.data | .resultType, (.result[] | "\(.metric.job): \(.values | map("\(.[0])=\(.[1])") | join(" "))")'
}
want="matrix
api: $S1=$cpu $((S1 + 10))=$cpu $((S1 + 20))=$cpu
worker: $S1=$cpu2 $((S1 + 10))=$cpu2 $((S1 + 20))=$cpu2"
same "range sum by (job) --step 10s: one point per step" \
    "$(q range "sum by (job) ($CPU_SERIES)" --start "$T1" --end "$T3" --step 10s | range_rows)" "$want"
same "range --step 10000 (milliseconds): the same" \
    "$(q range "sum by (job) ($CPU_SERIES)" --start "$T1" --end "$T3" --step 10000 | range_rows)" "$want"
same "range over the profiles' edge: a point only where one is in the lookback" \
    "$(q range "sum($CPU_SERIES{job=\"api\"})" --start $((T1 - 10000)) --end "$T1" --step 5s |
        jq -c '.data.result[0].values')" "[[$S1,\"$cpu\"]]"
same "range --start with milliseconds: timestamps with 3 decimals" \
    "$(q range '7' --start 1700000000001 --end 1700000000021 --step 10 | jq -c '.data.result')" \
    '[{"metric":{},"values":[[1700000000.001,"7"],[1700000000.011,"7"],[1700000000.021,"7"]]}]'
same "range of 11,001 points (as Prometheus allows)" \
    "$(q range '1' --start 0 --end 11000000 --step 1s | jq '.data.result[0].values | length')" 11001
out=$(q range '1' --start 0 --end 11001000 --step 1s)
rc=$?
same "range of 11,002 points: Prometheus's resolution error, exit 1" "$rc $out" \
    '1 {"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)"}'

# ---- profile ------------------------------------------------------------------------

prof() {
    q profile "$CPU_SERIES{job=\"api\"}" "$@"
}
if prof --start "$T1" --end "$T3" --format pprof -o "$tmp/merged.pb.gz" 2>"$tmp/err"; then
    same "profile --format pprof over 3 appends: go tool pprof -raw sum is 3x the fixture's" \
        "$(pprof_raw_totals "$tmp/merged.pb.gz")" "$((3 * cpu))"
else
    fail "profile --format pprof: $(cat "$tmp/err")"
fi
prof --time "$T1" >"$tmp/one.folded"
same "profile --time: collapsed stacks sum to the fixture's total" \
    "$(sum_last <"$tmp/one.folded")" "$cpu"
same "profile: collapsed lines are \"frame;frame;... VALUE\", root first" \
    "$(awk '$NF !~ /^[0-9]+$/ || $0 !~ /^runtime\.main;/' "$tmp/one.folded" | head -3)" ""

prof --start "$T1" --end "$T3" --group-by foo >"$tmp/group.folded"
same "profile --group-by foo: every stack under a foo= frame, foo=bar among them" \
    "$(cut -d';' -f1 "$tmp/group.folded" | grep -v '^foo=' | head -2
        grep -q '^foo=bar;' "$tmp/group.folded" && echo 'foo=bar;...')" 'foo=bar;...'
same "profile --group-by foo: sums to 3x the fixture's total" \
    "$(sum_last <"$tmp/group.folded")" "$((3 * cpu))"

for f in main.fastFunction runtime.mallocgc; do
    prof --time "$T1" --filter "${f//./\\.}" >"$tmp/filter.folded"
    no_frame=$(awk -F';' -v f="$f" '{ sub(/ [0-9]+$/, "", $NF); hit = 0
        for (i = 1; i <= NF; i++) if ($i == f) hit = 1
        if (!hit) print "no frame: " $0 }' "$tmp/filter.folded" | head -2)
    same "profile --filter $f: every stack has the frame, sum is go tool pprof's cum" \
        "$no_frame$(sum_last <"$tmp/filter.folded")" "$(go_cum "$CPU" "$f")"
done

prof --start "$T1" --end "$T3" --max-nodes 5 >"$tmp/max.folded"
# frames (by depth and name) other than "other", whether there is an
# "other", and the total
limited=$(awk '{ sub(/ [0-9]+$/, ""); n = split($0, f, ";")
        for (i = 1; i <= n; i++) if (f[i] != "other") seen[i ":" f[i]] = 1; else other = 1 }
    END { print (length(seen) <= 5 ? "<=5" : length(seen)), (other ? "other" : "no other") }' \
    "$tmp/max.folded")
same "profile --max-nodes 5: at most 5 frames besides \"other\", an \"other\" frame, same total" \
    "$limited $(sum_last <"$tmp/max.folded")" "<=5 other $((3 * cpu))"
prof --start "$T1" --end "$T3" >"$tmp/all.folded"
same "profile without --max-nodes: more lines than with it" \
    "$([ "$(wc -l <"$tmp/all.folded")" -gt "$(wc -l <"$tmp/max.folded")" ] && echo more)" more

prof --time "$T1" --compare "$CPU_SERIES{job=\"api\"}" --compare-start "$T1" --compare-end "$T3" \
    >"$tmp/diff.folded"
same "profile --compare: two numbers per line, columns sum to each side's total" \
    "$(awk '$(NF-1) !~ /^[0-9]+$/ || $NF !~ /^[0-9]+$/ { bad++ }
            { a += $(NF-1); b += $NF } END { printf "%d %.0f %.0f\n", bad, a, b }' "$tmp/diff.folded")" \
    "0 $cpu $((3 * cpu))"
q profile "$CPU_SERIES{job=\"worker\"}" --time "$T1" --compare "$CPU_SERIES{job=\"api\"}" \
    --compare-time "$T2" >"$tmp/diff2.folded"
same "profile --compare another job: columns sum to each profile's total" \
    "$(awk '{ a += $(NF-1); b += $NF } END { printf "%.0f %.0f\n", a, b }' "$tmp/diff2.folded")" \
    "$cpu2 $cpu"

first_go=$(go tool pprof -top -nodefraction=0 -sample_index=cpu "$CPU" 2>/dev/null |
    awk '/flat%/ { s = 1; next } s { print $6; exit }')
prof --start "$T1" --end "$T3" --format top >"$tmp/top.txt"
same "profile --format top: first row is go tool pprof -top's ($first_go)" \
    "$(awk '/flat%/ { s = 1; next } s { print $6; exit }' "$tmp/top.txt")" "$first_go"
same "profile --format top: first row's flat is 3x the fixture's" \
    "$(awk '/flat%/ { s = 1; next } s { print $1; exit }' "$tmp/top.txt")" \
    "$((3 * $(go tool pprof -top -nodefraction=0 -unit=ns -sample_index=cpu "$CPU" 2>/dev/null |
        awk '/flat%/ { s = 1; next } s { sub(/ns$/, "", $1); print $1; exit }')))"

# ---- read-only: beside a writer ----------------------------------------------------

if command -v flock >/dev/null; then
    # flock holds the writer's lock while the command runs, as a running firn does
    if flock "$store/firn.lock" "$FIRNCTL" tsdb append --storage.tsdb.path "$store" \
        --name process_cpu --timestamp "$NOW" "$CPU" >/dev/null 2>&1; then
        fail "a second writer was let in beside the lock holder"
    else
        same "query eval while another process holds the writer's lock" \
            "$(flock "$store/firn.lock" "$FIRNCTL" query eval "count($CPU_SERIES)" \
                --storage.tsdb.path "$store" --time "$T1" | jq -r '.data.result[0].value[1]')" 2
        same "query profile while another process holds the writer's lock" \
            "$(flock "$store/firn.lock" "$FIRNCTL" query profile "$CPU_SERIES{job=\"api\"}" \
                --storage.tsdb.path "$store" --time "$T1" | sum_last)" "$cpu"
    fi
fi

# ---- errors ----------------------------------------------------------------------------

# json_fail WHAT TYPE PATTERN COMMAND...: exit 1, an error envelope of TYPE on
# standard output whose message matches PATTERN.
json_fail() {
    local what=$1 type=$2 pattern=$3 rc out
    shift 3
    out=$("$@" 2>"$tmp/err")
    rc=$?
    if [ "$rc" -ne 1 ]; then
        fail "$what: exit $rc: $out $(head -2 "$tmp/err")"
    elif ! jq -e --arg t "$type" --arg p "$pattern" \
        '.status == "error" and .errorType == $t and (.error | test($p)) and (.data == null)' \
        <<<"$out" >/dev/null 2>&1; then
        fail "$what: want errorType $type and /$pattern/: $out"
    else
        ok "$what: $out"
    fi
}

# expect_fail WHAT PATTERN COMMAND...: non-zero exit without a crash, a
# message matching PATTERN on standard error.
expect_fail() {
    local what=$1 pattern=$2 rc
    shift 2
    "$@" >"$tmp/out" 2>"$tmp/err"
    rc=$?
    if [ "$rc" -eq 0 ]; then
        fail "$what: exited 0"
    elif [ "$rc" -ge 128 ]; then
        fail "$what: crashed (exit $rc): $(tail -3 "$tmp/err")"
    elif ! grep -Eq -- "$pattern" "$tmp/err"; then
        fail "$what: exit $rc, no /$pattern/ in: $(head -3 "$tmp/err")"
    else
        ok "$what: exit $rc: $(grep -E -- "$pattern" "$tmp/err" | head -1)"
    fi
}

json_fail "eval a bad query: bad_data with the position" bad_data '^1:16: ' \
    q eval 'sum(rate(x[5m])'
json_fail "eval a type error: bad_data with the position" bad_data '^1:6: .*range vector' \
    q eval 'rate(x)'
json_fail "eval an evaluation error: execution" execution 'same labelset' \
    q eval '-{job="api"}' --time "$T1"
json_fail "range of a range vector: bad_data" bad_data 'invalid expression type' \
    q range "$CPU_SERIES[1m]" --start "$T1" --end "$T3" --step 10s
json_fail "range with end before start: bad_data" bad_data 'end timestamp must not be before start' \
    q range '1' --start "$T3" --end "$T1" --step 10s
json_fail "eval with no store: unavailable, naming the path" unavailable "$tmp/nothing: no store" \
    "$FIRNCTL" query eval '1+1' --storage.tsdb.path "$tmp/nothing"
[ ! -e "$tmp/nothing" ] && ok "eval with no store creates none" || fail "eval created $tmp/nothing"
expect_fail "profile with no store" "$tmp/nothing: no store" \
    "$FIRNCTL" query profile "$CPU_SERIES" --time "$T1" --storage.tsdb.path "$tmp/nothing"
expect_fail "profile over two profile types: names them" \
    "matches 2 profile types \(process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta, process_cpu:samples:count:cpu:nanoseconds:delta\)" \
    q profile '{job="worker"}' --time "$T1"
expect_fail "profile of a bad selector: the position" "1:[0-9]+: " \
    q profile "$CPU_SERIES{job=}" --time "$T1"
expect_fail "profile without --time or --start/--end" "needs --time MS, or --start MS and --end MS" \
    q profile "$CPU_SERIES"
expect_fail "profile --compare with --format top" "--compare needs --format collapsed" \
    q profile "$CPU_SERIES" --time "$T1" --compare "$CPU_SERIES" --compare-time "$T2" --format top
expect_fail "range without --step" "needs --start, --end and --step" \
    q range '1' --start "$T1" --end "$T3"
expect_fail "eval with a flag it does not take" "does not take --group-by" \
    q eval '1' --group-by foo
expect_fail "profile -o into a missing directory" "$tmp/no/dir" \
    q profile "$CPU_SERIES{job=\"api\"}" --time "$T1" --format pprof -o "$tmp/no/dir/x.pb.gz"

finish
