#!/usr/bin/env bash
# End-to-end test of /debug/pprof/profile's bounds on a running firn:
#  - a seconds that is not a positive integer (abc, -5, 0, 1.5, a number
#    past int64) gets 400 with Go's message for it, and X-Go-Pprof so that
#    `go tool pprof` shows the message; so does a duration past the cap (600);
#  - at most four CPU profiles record at once: a fifth gets 503 with
#    Retry-After at once, counted, while a query still answers; the four
#    recording finish with their profiles.
#
# usage: api_debug_pprof.sh FIRN
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace

# A config that scrapes nothing: firn records no profile of itself meanwhile.
printf 'scrape_configs: []\n' >"$tmp/firn.yml"
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
base=http://127.0.0.1:$FIRN_PORT
# answer SECONDS: "STATUS X-Go-Pprof BODY" of a profile request.
answer() {
    curl_local --max-time 20 -D "$tmp/h" -o "$tmp/b" --get --data-urlencode "seconds=$1" \
        "$base/debug/pprof/profile" >/dev/null
    printf '%s %s %s' "$(head -1 "$tmp/h" | awk '{print $2}')" \
        "$(grep -i '^x-go-pprof:' "$tmp/h" | tr -d '\r' | awk '{print $2}')" "$(cat "$tmp/b")"
}
bad='400 1 invalid value for "seconds": not a positive integer'
for s in abc -5 0 1.5 ' 3' 99999999999999999999; do
    same "seconds='$s': 400" "$(answer "$s")" "$bad"
done
same "seconds=601: over the cap, 400" "$(answer 601)" "400 1 profile duration exceeds 600 seconds"
curl_local --max-time 20 -D "$tmp/h" -o "$tmp/one.pb" "$base/debug/pprof/profile?seconds=1"
same "seconds=1: a profile" \
    "$(head -1 "$tmp/h" | awk '{print $2}') $(head -c2 "$tmp/one.pb" | od -An -tx1 | tr -d ' ')" "200 1f8b"

metric() {
    curl_local --max-time 10 "$base/metrics" | awk -v m="$1" '$1 == m {print $2}'
}
pids=()
for i in 1 2 3 4; do
    curl_local --max-time 30 -o "$tmp/long$i.pb" -w '%{http_code}' \
        "$base/debug/pprof/profile?seconds=6" >"$tmp/long$i.code" 2>&1 &
    pids+=($!)
    track_pid $!
done
four_recording() { [[ $(metric firn_cpu_profile_requests) == 4 ]]; }
if wait_for 10 four_recording; then
    ok "four CPU profiles recording"
    same "a fifth at once: 503, Retry-After" \
        "$(answer 1 | cut -c1-5) $(grep -i '^retry-after:' "$tmp/h" | tr -d '\r' | awk '{print $2}')" \
        "503 1 10"
    same "a query meanwhile: 200" \
        "$(curl_local --max-time 5 -o /dev/null -w '%{http_code}' "$base/api/v1/query?query=1%2B1")" 200
    same "the refusal is counted" "$(metric firn_cpu_profile_requests_refused_total)" 1
else
    fail "four CPU profiles recording: firn_cpu_profile_requests=$(metric firn_cpu_profile_requests)"
fi
for i in 1 2 3 4; do
    wait "${pids[$((i - 1))]}"
    same "profile $i of the four: 200 and a gzip'd profile" \
        "$(cat "$tmp/long$i.code") $(head -c2 "$tmp/long$i.pb" | od -An -tx1 | tr -d ' ')" "200 1f8b"
done
stop_pid "$FIRN_PID"
finish
