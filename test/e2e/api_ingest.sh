#!/usr/bin/env bash
# End-to-end test of pushed profiles: firn (scraping nothing) takes pprof
# files from `firnctl push` and from curl on POST /api/v1/ingest (raw,
# gzipped, Content-Encoding: gzip, labels in the URL and in X-Firn-Labels),
# collapsed stacks and pprof on Pyroscope's POST /ingest, and the pushes of
# a real Pyroscope client (the npm package @pyroscope/nodejs, installed
# here with npm ci from test/e2e/pyroscope's lockfile); each is then read
# back from the store with firnctl (read-only,
# beside the running server) with its labels and the totals `firnctl pprof
# info` gives for the file.  Bad requests get a 4xx that says what was
# wrong, and the server keeps serving.
#
# usage: api_ingest.sh FIRN FIRNCTL SOURCE_DIR FIXTURES_DIR
# Needs node and npm (scripts/deps test) and the npm registry.  Everything
# else runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
firnctl=$2
srcdir=$3
fixtures=$4
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

# npm may need the proxy that e2e_workspace clears for loopback traffic.
npm_proxy=${https_proxy:-${HTTPS_PROXY:-${http_proxy:-${HTTP_PROXY:-}}}}
e2e_workspace

data=$tmp/data
printf 'scrape_configs: []\n' >"$tmp/firn.yml"
# Retention off: the fixtures were recorded years ago.
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$data" \
        --storage.tsdb.retention.time=0; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
api=http://127.0.0.1:$FIRN_PORT
ok "firn ready on port $FIRN_PORT"

cpu=$fixtures/pprof-internal_report_testdata_sample.cpu   # gzipped Go CPU profile
heap=$fixtures/alloy-heap.pprof                            # raw Go heap profile
cpu_ms=1506718679257                                       # its time_nanos, in ms

# stored_total SELECTOR...: the total of each stored profile matching the
# --match selectors, one per line.
stored_total() {
    local args=() m
    for m in "$@"; do args+=(--match "$m"); done
    "$firnctl" tsdb dump "${args[@]}" --storage.tsdb.path "$data" |
        sed -n 's/.* total=\([-0-9]*\) .*/\1/p'
}
# nth_total FILE N: the N-th (1-based) sample type total of a pprof file.
nth_total() { firn_totals "$firnctl" "$1" | cut -d' ' -f"$2"; }
series() { "$firnctl" tsdb series "$@" --storage.tsdb.path "$data" 2>&1; }

# ---- firnctl push --------------------------------------------------------------------
out=$("$firnctl" push --server "$api" --label job=push --label instance=host:1 \
    --label name=reserved "$cpu" "$heap" 2>&1)
rc=$?
same "firnctl push exits 0" "$rc" 0
same "firnctl push reports what it stored" "$out" \
"$cpu: 76 samples stored at $cpu_ms as process_cpu:samples:count:cpu:nanoseconds:delta, process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta
$heap: 497 samples stored at 1662655785795 as memory:alloc_objects:count:space:bytes, memory:alloc_space:bytes:space:bytes, memory:inuse_objects:count:space:bytes, memory:inuse_space:bytes:space:bytes"
same "pushed series carry the labels (a reserved name in X-Firn-Labels)" \
    "$(series --match job=push --match __name__=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta)" \
    '{__name__="process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta", instance="host:1", job="push", name="reserved"}'
same "stored CPU totals equal firnctl pprof info's" \
    "$(stored_total job=push __name__=process_cpu:samples:count:cpu:nanoseconds:delta) $(stored_total job=push __name__=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta)" \
    "$(firn_totals "$firnctl" "$cpu")"
heap_totals=""
for t in alloc_objects:count alloc_space:bytes inuse_objects:count inuse_space:bytes; do
    heap_totals+="${heap_totals:+ }$(stored_total job=push "__name__=memory:$t:space:bytes")"
done
same "stored heap totals equal firnctl pprof info's" "$heap_totals" "$(firn_totals "$firnctl" "$heap")"
same "metadata: in-use memory is a gauge, allocations a counter, with their help" \
    "$(curl_local --max-time 10 "$api/api/v1/metadata" | jq -c '.data | [.["memory:inuse_space:bytes:space:bytes"][0], .["memory:alloc_objects:count:space:bytes"][0].type]')" \
    '[{"type":"gauge","help":"memory profile: inuse_space (bytes) when each profile was taken; period type space (bytes).","unit":"bytes"},"gauge"]'
top=$("$firnctl" query profile 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job="push"}' \
    --time "$cpu_ms" --format top --storage.tsdb.path "$data" 2>&1)
same "the pushed profile answers a profile query with its total" \
    "$(sed -n 's/.* of \([0-9]*\) total$/\1/p' <<<"$top")" "$(nth_total "$cpu" 2)"

out=$("$firnctl" push --server "$api" --label job=push "$fixtures/alloy-block.before.pprof" 2>&1)
rc=$?
if [[ $rc == 1 && $out == *"cannot tell the profile name"*"give --name"* ]]; then
    ok "firnctl push without --name refuses a profile it cannot name"
else
    fail "firnctl push of a block profile without --name: exit $rc: $out"
fi
out=$("$firnctl" push --server "$api" --name process_cpu /etc/hostname 2>&1)
rc=$?
if [[ $rc == 1 && $out == *"decoding profile: "*"(HTTP 400)"* ]]; then
    ok "firnctl push prints the server's error and exits 1"
else
    fail "firnctl push of a text file: exit $rc: $out"
fi

# ---- curl on /api/v1/ingest ----------------------------------------------------------------
gzip -dc "$cpu" >"$tmp/cpu.pb"
# post NAME CURL_ARGS...: POST, the status code in $code and the body in $tmp/NAME.out.
post() {
    local name=$1
    shift
    code=$(curl_local --max-time 30 -o "$tmp/$name.out" -w '%{http_code}' "$@")
}
post raw --data-binary @"$tmp/cpu.pb" "$api/api/v1/ingest?name=process_cpu&job=curl&kind=raw"
same "raw pprof body: 200" "$code" 200
post gz --data-binary @"$cpu" "$api/api/v1/ingest?__name__=process_cpu&job=curl&kind=gz"
same "gzipped pprof body (__name__): 200" "$code" 200
post ce -H 'Content-Encoding: gzip' -H 'X-Firn-Labels: team = infra, time=t' \
    --data-binary @"$cpu" "$api/api/v1/ingest?name=process_cpu&job=curl&kind=ce&delta=true"
same "Content-Encoding: gzip with X-Firn-Labels: 200" "$code" 200
same "the answer names the stored types" "$(jq -c .data "$tmp/ce.out")" \
    "{\"profileTypes\":[\"process_cpu:samples:count:cpu:nanoseconds:delta\",\"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta\"],\"samples\":76,\"timestampMs\":$cpu_ms}"
same "every curl push is a series with its labels" \
    "$(series --match job=curl --match __name__=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta)" \
    '{__name__="process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta", job="curl", kind="ce", team="infra", time="t"}
{__name__="process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta", job="curl", kind="gz"}
{__name__="process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta", job="curl", kind="raw"}'
want=$(nth_total "$cpu" 2)
same "each curl push stores the file's CPU total" \
    "$(stored_total job=curl __name__=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta | sort -u)" "$want"
post at --data-binary @"$cpu" "$api/api/v1/ingest?name=process_cpu&job=curl&kind=at&time=1700000000.25"
same "time= places the profile" "$(jq -r .data.timestampMs "$tmp/at.out")" 1700000000250

# ---- batches on /api/v1/ingest (application/x-firn-batch) ------------------------------------------
# batch_item FILE QUERY: one item, "LENGTH QUERY\n" and the bytes
batch_item() { printf '%d %s\n' "$(stat -c %s "$1")" "$2"; cat "$1"; }
printf 'not a profile' >"$tmp/junk.pb"
{
    batch_item "$cpu" 'name=process_cpu&job=batch&kind=gz'
    batch_item "$tmp/junk.pb" 'name=process_cpu&job=batch&kind=junk'
    batch_item "$heap" 'name=memory&job=batch&kind=heap&delta=false'
} >"$tmp/batch.bin"
post batch -H 'Content-Type: application/x-firn-batch' --data-binary @"$tmp/batch.bin" \
    "$api/api/v1/ingest"
same "batch of three: 200" "$code" 200
same "the answer says, in order, what became of each item" \
    "$(jq -c '[.data.stored, .data.failed, [.data.items[] | .status], .data.items[1].code,
               .data.items[0].samples, (.data.items[2].samples > 0)]' "$tmp/batch.out")" \
    '[2,1,["success","error","success"],400,76,true]'
check "the bad item's error names what was wrong" grep -qF 'decoding profile: not a pprof' \
    <(jq -r '.data.items[1].error' "$tmp/batch.out")
same "the two good items are stored with their labels, the bad one not at all" \
    "$(series --match job=batch | sed 's/__name__="[^"]*", //' | sort -u)" \
    '{job="batch", kind="gz"}
{job="batch", kind="heap"}'
same "a batch item stores the file's CPU total" \
    "$(stored_total job=batch __name__=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta)" "$(nth_total "$cpu" 2)"
# cut short: the last item announces more bytes than the body has
{
    batch_item "$cpu" 'name=process_cpu&job=short&kind=gz'
    batch_item "$heap" 'name=memory&job=short&kind=heap'
} >"$tmp/short.bin"
third_at=$(stat -c %s "$tmp/short.bin")
batch_item "$cpu" 'name=process_cpu&job=short&kind=last' | head -c 500 >>"$tmp/short.bin"
post short -H 'Content-Type: application/x-firn-batch' --data-binary @"$tmp/short.bin" \
    "$api/api/v1/ingest"
same "a batch cut short: 400 saying where" "$code $(jq -r .error "$tmp/short.out" | cut -d: -f1)" \
    "400 batch item 3 at byte $third_at"
same "a batch cut short stores nothing, not even its whole items" "$(series --match job=short)" ""
post badline -H 'Content-Type: application/x-firn-batch' --data-binary $'abc name=x\nxyz' \
    "$api/api/v1/ingest"
same "a batch item without its length: 400 naming it" \
    "$code $(jq -r .error "$tmp/badline.out")" \
    '400 batch item 1 at byte 0: want "LENGTH QUERY" (a decimal length, a space, the item'"'"'s query)'

# ---- Pyroscope's /ingest ---------------------------------------------------------------------
printf 'main;handler;parse 7\nmain;handler;render 5\nmain;gc 2\nmain;handler;parse 1\n' >"$tmp/stacks.txt"
# no Content-Type given: curl sends a form type, and the body is still stacks
post folded --data-binary @"$tmp/stacks.txt" \
    "$api/ingest?name=e2e.folded.cpu%7Benv%3Dci%7D&from=1700000100&until=1700000110&sampleRate=100&spyName=gospy"
same "Pyroscope folded push: 200" "$code" 200
same "folded push series" "$(series --match service_name=e2e.folded)" \
    '{__name__="process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta", env="ci", pyroscope_spy="gospy", service_name="e2e.folded"}'
same "stored stacks match the pushed ones (samples at 100 Hz: 10ms each)" \
    "$("$firnctl" query profile 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{service_name="e2e.folded"}' \
        --time 1700000100000 --storage.tsdb.path "$data" 2>&1 | sort)" \
    "main;gc 20000000
main;handler;parse 80000000
main;handler;render 50000000"
post multipart -F "profile=@$fixtures/pyro-pkg_og_convert_pprof_testdata_nodejs-wall.pb.gz" \
    "$api/ingest?name=curl.node%7Bzone%3Da%7D&from=1652179630&until=1652179640&spyName=nodespy"
same "Pyroscope multipart pprof push: 200" "$code" 200
wall_file=$fixtures/pyro-pkg_og_convert_pprof_testdata_nodejs-wall.pb.gz
same "multipart pprof stored with its totals" \
    "$(stored_total service_name=curl.node __name__=wall:samples:count:wall:microseconds:delta) $(stored_total service_name=curl.node __name__=wall:wall:microseconds:wall:microseconds:delta)" \
    "$(firn_totals "$firnctl" "$wall_file")"

# ---- refusals ----------------------------------------------------------------------------------
# refused NAME STATUS FRAGMENT CURL_ARGS...
refused() {
    local name=$1 status=$2 fragment=$3
    shift 3
    post "$name" "$@"
    if [[ $code == "$status" ]] && grep -qF -- "$fragment" "$tmp/$name.out"; then
        ok "$name: $code $(head -c 160 "$tmp/$name.out")"
    else
        fail "$name: got $code $(head -c 300 "$tmp/$name.out"), want $status with \"$fragment\""
    fi
}
head -c 900 "$cpu" >"$tmp/truncated.gz"
refused garbage 400 'decoding profile: not a pprof' --data-binary 'not a profile at all' \
    "$api/api/v1/ingest?name=process_cpu&job=bad"
refused truncated_gzip 400 'gzip: truncated' --data-binary @"$tmp/truncated.gz" \
    "$api/api/v1/ingest?name=process_cpu&job=bad"
refused bad_label_name 400 'label name \"bad-name\"' --data-binary @"$cpu" \
    "$api/api/v1/ingest?name=process_cpu&job=bad&bad-name=1"
refused missing_name 400 'missing parameter name' --data-binary @"$cpu" "$api/api/v1/ingest?job=bad"
refused bad_name 400 'a profile name must match' --data-binary @"$cpu" \
    "$api/api/v1/ingest?name=cpu:x&job=bad"
refused same_profile_again_is_a_no_op 200 '"status":"success"' --data-binary @"$cpu" \
    "$api/api/v1/ingest?name=process_cpu&job=curl&kind=raw"
refused empty 400 'empty body' --data-binary '' "$api/api/v1/ingest?name=process_cpu&job=bad"
refused pyroscope_suffix 400 'unknown profile type: nope' --data-binary @"$tmp/stacks.txt" \
    "$api/ingest?name=bad.nope"
refused pyroscope_value 400 'line 1: value' --data-binary 'a;b lots' "$api/ingest?name=bad.cpu"
refused pyroscope_truncated_multipart 400 'no closing boundary' \
    -H 'Content-Type: multipart/form-data; boundary=XX' \
    --data-binary $'--XX\r\nContent-Disposition: form-data; name="profile"\r\n\r\nabc' \
    "$api/ingest?name=bad.app"
# Over the decoder's 32 MiB cap, and over the server's 64 MiB body cap
# (sparse files: cheap to make, quick to send on loopback).
truncate -s 33M "$tmp/33M"
refused over_decoder_cap 413 'more than the cap' --data-binary @"$tmp/33M" \
    "$api/api/v1/ingest?name=process_cpu&job=bad"
truncate -s 65M "$tmp/65M"
refused over_body_cap 413 'too large' -H 'Expect:' --data-binary @"$tmp/65M" \
    "$api/api/v1/ingest?name=process_cpu&job=bad"
rm -f "$tmp/33M" "$tmp/65M"
same "nothing of a refused push is stored" "$(series --match job=bad)$(series --match service_name=bad)" ""
same "firn keeps serving after the refusals" "$(curl_local --max-time 5 "$api/-/healthy")" "firn is Healthy."
same "a good push still works" \
    "$(curl_local --max-time 30 -o /dev/null -w '%{http_code}' --data-binary @"$cpu" \
        "$api/api/v1/ingest?name=process_cpu&job=after")" 200

# ---- a real Pyroscope client: @pyroscope/nodejs ---------------------------------------------------
node_dir=$tmp/node
mkdir -p "$node_dir"
cp "$srcdir/test/e2e/pyroscope_push.js" "$node_dir/"
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    fail "node and npm are needed for the Pyroscope client (scripts/deps test installs them)"
elif ! (cd "$node_dir" && cp "$srcdir/test/e2e/pyroscope/package.json" \
        "$srcdir/test/e2e/pyroscope/package-lock.json" . &&
        npm_config_cache="$tmp/npm-cache" npm_config_update_notifier=false \
        timeout 180 npm ci --no-audit --no-fund ${npm_proxy:+--proxy "$npm_proxy" --https-proxy "$npm_proxy"}) \
        >"$tmp/npm.log" 2>&1; then
    fail "npm ci (test/e2e/pyroscope's lockfile) failed (is the npm registry reachable?): $(tail -3 "$tmp/npm.log")"
else
    ok "npm installed @pyroscope/nodejs $(jq -r .version "$node_dir/node_modules/@pyroscope/nodejs/package.json")"
    (cd "$node_dir" && DEBUG=pyroscope timeout 60 node pyroscope_push.js "$api" e2e.node 4) \
        >"$tmp/node.log" 2>&1
    rc=$?
    ((rc == 0)) && ok "the Node.js client ran to its end" ||
        fail "the Node.js client exited $rc: $(grep -v '^ *at ' "$tmp/node.log" | tail -4 | tr '\n' ' ')"
    if grep -q 'rejected\|Error sending' "$tmp/node.log"; then
        fail "firn refused the client's pushes: $(grep -m2 -A1 'rejected\|Error sending' "$tmp/node.log" | tr '\n' ' ')"
    else
        ok "firn accepted every push of the client"
    fi
    wall_type='wall:wall:nanoseconds:wall:nanoseconds:delta'
    node_series() { series --match service_name=e2e.node --match "__name__=$wall_type"; }
    has_node_series() { [[ $(node_series) == *"service_name=\"e2e.node\""* ]]; }
    if wait_for 10 has_node_series; then
        ok "the client's wall profiles are stored: $(node_series | head -1)"
    else
        fail "no wall series for service_name=e2e.node: $(series --match service_name=e2e.node | head -3)"
    fi
    for l in 'env="e2e"' 'pyroscope_spy="nodespy"' 'otel_scope_name="com.grafana.pyroscope/nodejs"'; do
        [[ $(node_series) == *"$l"* ]] && ok "client series carry $l" || fail "client series lack $l: $(node_series)"
    done
    [[ $(series --match service_name=e2e.node) == *'__name__="memory:inuse_space:bytes:inuse_space:bytes"'* ]] &&
        ok "the client's heap profiles are stored" ||
        fail "no heap series: $(series --match service_name=e2e.node)"
    top=$("$firnctl" query profile "$wall_type{service_name=\"e2e.node\"}" --start 0 \
        --end 9999999999999 --format top --storage.tsdb.path "$data" 2>&1)
    busiest=$(awk '/flat%/ { s = 1; next } s { print $6; exit }' <<<"$top")
    if [[ $busiest == *burnCpuForFirn* ]]; then
        ok "the busiest function of the client's merged wall profile is $busiest"
    else
        fail "busiest function of the client's profiles: '$busiest': $(head -8 <<<"$top")"
    fi
fi

stop_pid "$FIRN_PID"
grep -q 'See you next time' "$tmp/firn.log" && ok "firn stops cleanly" ||
    fail "shutdown: $(tail -3 "$tmp/firn.log")"
finish
