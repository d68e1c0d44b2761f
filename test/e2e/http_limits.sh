#!/usr/bin/env bash
# End-to-end test of firn's bounds against clients that abuse them:
#  - past --web.max-connections=20, with 20 idle connections (a slowloris
#    client between two bytes), one more client is not served until firn
#    has closed an idle one by itself (HTTP_REQUEST_TIMEOUT_S, 10 s), then is
#    answered: firn recovers with no help; every idle connection is closed;
#  - the flag is shown by /api/v1/status/flags; a bad value stops startup;
#  - --storage.tsdb.max-series=4: pushes that need more series are refused
#    (400, saying why) and store nothing, pushes to the series held go on;
#    a push with more than 64 labels is refused (400).
#
# usage: http_limits.sh FIRN FIXTURES_DIR
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
fixtures=$2
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace

printf 'scrape_configs: []\n' >"$tmp/firn.yml"
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data" \
        --web.max-connections=20; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
api=http://127.0.0.1:$FIRN_PORT/api/v1
same "status/flags shows web.max-connections" \
    "$(curl_local --max-time 10 "$api/status/flags" | jq -r '.data["web.max-connections"]')" 20

got=$(timeout 120 python3 "$(dirname "$0")/conn_limit.py" "$FIRN_PORT" 20)
same "a 21st client waits until firn closes an idle connection, then is answered" \
    "$(jq -r '[.status, (.closed_before_answer >= 1)] | join(" ")' <<<"$got")" "HTTP/1.1 200 OK true"
same "firn closed all 20 idle connections by itself" "$(jq -r .closed <<<"$got")" 20
same "then firn serves at once again" \
    "$(curl_local --max-time 10 -o /dev/null -w '%{http_code}' "http://127.0.0.1:$FIRN_PORT/-/healthy")" 200
stop_pid "$FIRN_PID"

out=$(timeout 10 "$firn" --web.max-connections=lots 2>&1)
same "a bad --web.max-connections stops startup" "$? $out" \
    "2 firn: --web.max-connections: lots is not a number of connections from 1 to 1000000"

# ---- series and labels ----------------------------------------------------------------
cpu=$fixtures/pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz   # two sample types: two series
if ! start_firn "$firn" "$tmp/firn2.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data2" \
        --storage.tsdb.retention.time=0 --storage.tsdb.max-series=4; then
    fail "start firn with --storage.tsdb.max-series=4: $(tail -5 "$tmp/firn2.log")"
    finish
    exit 1
fi
push() {  # QUERY: "STATUS ERROR" of a push of the fixture
    curl_local --max-time 20 -o "$tmp/push.json" -w '%{http_code}' --data-binary @"$cpu" \
        "http://127.0.0.1:$FIRN_PORT/api/v1/ingest?name=process_cpu&$1" >"$tmp/push.code"
    echo "$(cat "$tmp/push.code") $(jq -r '.error // ""' "$tmp/push.json")"
}
same "series: job a (2 series)" "$(push 'job=a&time=1700000000')" "200 "
same "series: job b (2 more: 4)" "$(push 'job=b&time=1700000000')" "200 "
same "series: job c is refused, saying why" "$(push 'job=c&time=1700000000' | cut -c1-73)" \
    "400 storing the profile: series limit of 4 reached (4 series held): 2 new"
same "series: job a, a new time: taken" "$(push 'job=a&time=1700000010')" "200 "
same "series: the store holds job a's and b's only" \
    "$(curl_local --max-time 10 -G "http://127.0.0.1:$FIRN_PORT/api/v1/label/job/values" -d start=0 | jq -c .data)" \
    '["a","b"]'
labels=$(for i in $(seq 1 65); do printf 'l%d=v&' "$i"; done)
same "labels: 66 labels on a push are refused" "$(push "job=a&${labels}time=1700000020")" \
    "400 labels: 66 labels, more than the 64 a pushed profile may have"
finish
