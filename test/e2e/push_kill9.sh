#!/usr/bin/env bash
# push_kill9.sh FIRN FIRNCTL FIXTURES_DIR -- many concurrent pushes share the
# store's commits, and every push answered 200 survives kill -9.
#
# firn takes, at once, a batch of BATCH items (application/x-firn-batch: its
# items are handed to the store without waiting for each commit) and SINGLES
# single uploads from concurrent curls.  Every answer must be 200; then firn
# gets SIGKILL, and `firnctl tsdb dump` on the store must show every one of
# them, whole (both sample types of the profile).  The commits the store made
# for them (firn_tsdb_commits_total) are printed beside the profiles, for
# information: that profiles share commits is asserted exactly by the unit
# test unit.tsdb (test_append_async_shares_commits), not here, since here it
# depends on timing.
set -uo pipefail
firn=$1
firnctl=$2
fixtures=$3
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
e2e_workspace

BATCH=60
SINGLES=16
cpu=$fixtures/pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz   # two sample types
data=$tmp/data
printf 'scrape_configs: []\n' >"$tmp/firn.yml"
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$data" \
        --storage.tsdb.retention.time=0; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
api=http://127.0.0.1:$FIRN_PORT
metric() { curl_local --max-time 10 "$api/metrics" | awk -v m="$1" '$1 == m {print $2}'; }
commits0=$(metric firn_tsdb_commits_total)

size=$(stat -c %s "$cpu")
for ((i = 0; i < BATCH; i++)); do
    printf '%d name=process_cpu&job=batch&i=%d&time=%d\n' "$size" "$i" $((1700000000 + i))
    cat "$cpu"
done >"$tmp/batch.bin"

pids=()
curl_local --max-time 120 -o "$tmp/batch.out" -w '%{http_code}' \
    -H 'Content-Type: application/x-firn-batch' --data-binary @"$tmp/batch.bin" \
    "$api/api/v1/ingest" >"$tmp/batch.code" &
pids+=($!)
for ((i = 0; i < SINGLES; i++)); do
    curl_local --max-time 120 -o "$tmp/single$i.out" -w '%{http_code}' --data-binary @"$cpu" \
        "$api/api/v1/ingest?name=process_cpu&job=single&i=$i&time=1700000000" \
        >"$tmp/single$i.code" &
    pids+=($!)
done
for p in "${pids[@]}"; do wait "$p"; done

same "the batch: 200" "$(cat "$tmp/batch.code")" 200
same "the batch: every item stored" "$(jq -r '[.data.stored, .data.failed] | @tsv' "$tmp/batch.out" 2>&1)" \
    "$BATCH	0"
bad=0
for ((i = 0; i < SINGLES; i++)); do
    [ "$(cat "$tmp/single$i.code")" = 200 ] || bad=$((bad + 1))
done
same "$SINGLES concurrent single pushes: all 200" "$bad" 0
commits=$(( $(metric firn_tsdb_commits_total) - commits0 ))
echo "# $((BATCH + SINGLES)) profiles pushed at once went into $commits commits"

kill -KILL "$FIRN_PID"
wait "$FIRN_PID" 2>/dev/null
ok "firn killed with SIGKILL"

# one line per stored profile and sample type: the series' labels, its time
dump=$("$firnctl" tsdb dump --match job=~'batch|single' --storage.tsdb.path "$data" 2>&1)
count() { grep -c "job=\"$1\".*__name__=\"$2\"\|__name__=\"$2\".*job=\"$1\"" <<<"$dump"; }
for job in batch single; do
    want=$BATCH
    [ $job = single ] && want=$SINGLES
    same "after kill -9: every $job push's cpu profile" "$(count $job 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta')" "$want"
    same "after kill -9: every $job push's samples profile" "$(count $job 'process_cpu:samples:count:cpu:nanoseconds:delta')" "$want"
done
finish
