#!/usr/bin/env bash
# End-to-end test of firn's bounds on request bodies, against a firn that
# requires credentials (basic auth):
#  - an attack (body_flood.py): 300 idle half-open connections, 20
#    concurrent 50 MiB POSTs (10 without credentials, 10 with wrong
#    passwords), while a client with the right password queries.  firn's
#    anonymous memory (RssAnon) grows by less than BOUND_MIB; every POST gets
#    401, 413 or 503 or is closed, none 200; every query is answered 200;
#  - the answers come from the head, before the body: a 50 MiB declared body
#    without credentials gets 401, a body over a GET route's cap 413, a body
#    past --web.max-body-bytes-in-flight 503 with Retry-After, all while
#    the client has sent none of the body;
#  - past --web.max-connections, idle half-open connections are closed by
#    firn itself and a waiting client is then answered (conn_limit.py);
#  - the flag is shown by /api/v1/status/flags; a bad value stops startup.
# Under ASan (FIRN_E2E_SANITIZED) the memory bound is not checked.
#
# usage: body_limits.sh FIRN
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
here=$(cd "$(dirname "$0")" && pwd)

# With --web.max-body-bytes-in-flight=128MiB at most one 50 MiB body bound
# for a worker (counted twice: h2o's buffer and the worker's copy) is held
# at a time, so h2o buffers at most 64 MiB of bodies; the rest is slack for
# the sockets' buffers and the allocator.  Without the bound, all 20 bodies
# are read: a gigabyte.
BOUND_MIB=100

for tool in htpasswd python3 jq; do
    command -v "$tool" >/dev/null || { fail "$tool not installed"; finish; exit 1; }
done
e2e_workspace
hash=$(htpasswd -nbBC 10 alice 'flood gate' | cut -d: -f2-)
test_secret 'flood gate'
printf 'basic_auth_users:\n  alice: %s\n' "$hash" >"$tmp/web.yml"
printf 'scrape_configs: []\n' >"$tmp/firn.yml"
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.config.file="$tmp/web.yml" --web.listen-address=127.0.0.1:0 \
        --storage.tsdb.path="$tmp/data" --web.max-connections=330 \
        --web.max-body-bytes-in-flight=128MiB; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
base=http://127.0.0.1:$FIRN_PORT
api=$base/api/v1
auth=(-u 'alice:flood gate')
same "status/flags shows web.max-body-bytes-in-flight" \
    "$(curl_local --max-time 10 "${auth[@]}" "$api/status/flags" |
       jq -r '.data["web.max-body-bytes-in-flight"]')" 128MiB

# ---- answers from the head ----------------------------------------------------------
# head_answer HEAD [HOLD]: the head of the answer (lines joined by '|') firn
# gives to a request HEAD that declares a body none of which is sent (firn
# must answer from the head); with HOLD, another connection first sends that
# head and 1 MiB of its body, and holds it there meanwhile.
head_answer() {
    python3 - "$FIRN_PORT" "$@" <<'EOF'
import socket, sys
port = int(sys.argv[1])
def head(text):
    return text.encode().decode("unicode_escape").encode()
if len(sys.argv) > 3:
    import base64, re, time, urllib.request
    hold = socket.create_connection(("127.0.0.1", port), timeout=20)
    hold.sendall(head(sys.argv[3]) + b"\0" * (1 << 20))
    # until firn has judged that head: its bytes are counted in flight
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics", headers={
        "Authorization": "Basic " + base64.b64encode(b"alice:flood gate").decode()})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    deadline, held = time.monotonic() + 20, 0
    while held < (100 << 20) and time.monotonic() < deadline:
        text = opener.open(req, timeout=10).read().decode()
        m = re.search(r"^firn_http_request_body_bytes_in_flight (\S+)$", text, re.M)
        held = float(m.group(1)) if m else 0
    if held < (100 << 20):
        sys.exit("the held push was never counted in flight")
s = socket.create_connection(("127.0.0.1", port), timeout=20)
s.sendall(head(sys.argv[2]))
data = b""
try:
    while b"\r\n\r\n" not in data:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
except OSError:
    pass
print(data.split(b"\r\n\r\n")[0].decode(errors="replace").replace("\r\n", "|"))
EOF
}
got=$(head_answer 'POST /api/v1/ingest?name=x HTTP/1.1\r\nHost: x\r\nContent-Length: 52428800\r\n\r\n')
same "50 MiB without credentials: 401 before the body" \
    "$(cut -d'|' -f1 <<<"$got") $(grep -c 'WWW-Authenticate: Basic' <<<"${got//|/$'\n'}")" \
    "HTTP/1.1 401 Unauthorized 1"
cred=$(printf 'alice:flood gate' | base64)
got=$(head_answer "GET /api/v1/status/flags HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Basic $cred\\r\\nContent-Length: 1048576\\r\\n\\r\\n")
same "1 MiB to a GET-only route: 413 before the body" "$(cut -d'|' -f1 <<<"$got")" \
    "HTTP/1.1 413 Request Entity Too Large"
push_head="POST /api/v1/ingest?name=x HTTP/1.1\\r\\nHost: x\\r\\nAuthorization: Basic $cred\\r\\nContent-Length: 52428800\\r\\n\\r\\n"
got=$(head_answer "$push_head" "$push_head")
same "a second 50 MiB push while one is read (2 x 2 x 50 MiB past 128 MiB): 503 with Retry-After before the body" \
    "$(cut -d'|' -f1 <<<"$got") $(grep -c 'Retry-After: 1' <<<"${got//|/$'\n'}")" \
    "HTTP/1.1 503 Service Unavailable 1"
refused=$(curl_local --max-time 10 "${auth[@]}" "$base/metrics" |
    sed -n 's/^firn_http_request_bodies_refused_total{reason="\(.*\)"} \(.*\)/\1=\2/p' | sort | tr '\n' ' ')
same "the refusals are counted" "$refused" "budget=1 unauthenticated=1 "

# ---- the attack -------------------------------------------------------------------------
# the right password checked once, so the queries during the attack do not
# wait for bcrypt behind the guesses
same "a query with the right password" \
    "$(curl_local --max-time 20 -o /dev/null -w '%{http_code}' "${auth[@]}" "$api/query?query=1%2B1")" 200
got=$(timeout 180 python3 "$here/body_flood.py" "$FIRN_PORT" "$FIRN_PID" alice 'flood gate')
echo "body_flood: $got"
growth=$(jq -r '.growth_kib.RssAnon' <<<"$got")
if [[ -n ${FIRN_E2E_SANITIZED:-} ]]; then
    # ASan's shadow memory and quarantine are no measure of firn's own
    echo "RssAnon grew by $((growth / 1024)) MiB (firn under ASan: not checked)"
elif [[ $growth =~ ^-?[0-9]+$ ]] && ((growth < BOUND_MIB * 1024)); then
    ok "RssAnon grew by $((growth / 1024)) MiB under the attack (bound $BOUND_MIB MiB)"
else
    fail "RssAnon grew by '$growth' KiB under the attack (bound $BOUND_MIB MiB)"
fi
same "every POST got 401, 413 or 503 or was closed" \
    "$(jq -r '[.posts[] | select(test("^(401|413|503|closed)$") | not)] | length' <<<"$got") $(jq -r '.posts | length' <<<"$got")" \
    "0 20"
same "the queries meanwhile were answered" "$(jq -c .queries <<<"$got")" '["200","200","200"]'
same "firn still answers after the attack" \
    "$(curl_local --max-time 20 -o /dev/null -w '%{http_code}' "${auth[@]}" "$api/query?query=1%2B1")" 200
# what is left is the head of the request that asks (a few hundred bytes)
in_flight=$(curl_local --max-time 10 "${auth[@]}" "$base/metrics" |
    sed -n 's/^firn_http_request_body_bytes_in_flight //p')
if [[ $in_flight =~ ^[0-9]+$ ]] && ((in_flight < 1024)); then
    ok "no request bytes left counted once the attack is over ($in_flight: the metrics request's head)"
else
    fail "request bytes still counted once the attack is over: '$in_flight'"
fi

# ---- past --web.max-connections -----------------------------------------------------
# 330 idle connections fill every slot; one more client waits until firn
# closes idle ones (10 s) and is then answered.
got=$(timeout 120 python3 "$here/conn_limit.py" "$FIRN_PORT" 330 "Authorization: Basic $cred")
same "past --web.max-connections a client is answered once firn closed idle ones" \
    "$(jq -r '[.status, (.closed_before_answer >= 1)] | join(" ")' <<<"$got")" "HTTP/1.1 200 OK true"
same "firn closed all 330 idle connections by itself" "$(jq -r .closed <<<"$got")" 330
stop_pid "$FIRN_PID"

out=$(timeout 10 "$firn" --web.max-body-bytes-in-flight=lots 2>&1)
same "a bad --web.max-body-bytes-in-flight stops startup" "$? $out" \
    "2 firn: --web.max-body-bytes-in-flight: lots is not a size of at least 1MiB (such as 256MiB)"
finish
