#!/usr/bin/env bash
# End-to-end test of firn's connection bounds (--web.max-connections, the
# request-head timeout) against clients that hold connections open:
#  - past --web.max-connections=20, with 20 idle connections (a slowloris
#    client between two bytes), one more client is not served until firn
#    has closed an idle one by itself (HTTP_REQUEST_TIMEOUT_S, 10 s), then is
#    answered: firn recovers with no help; every idle connection is closed;
#  - the flag is shown by /api/v1/status/flags; a bad value stops startup.
#
# usage: http_limits.sh FIRN
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
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
finish
