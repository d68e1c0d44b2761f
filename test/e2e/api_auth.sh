#!/usr/bin/env bash
# End-to-end test: firn --web.config.file (Prometheus's web config) with real
# clients.  TLS from an openssl-made CA, bcrypt users from htpasswd, a
# bearer token (firn's extension), response headers; curl, promtool and
# firn's own scraper (scraping itself over HTTPS with basic auth) as the
# clients; client certificates required; bad web configs stop startup.
# Also measures what a request costs with the credentials cache warm.
#
# usage: api_auth.sh FIRN FIRNCTL
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
firnctl=$2
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace
for tool in openssl htpasswd promtool; do
    if ! command -v $tool >/dev/null; then
        fail "$tool is not installed (scripts/deps test)"
        finish
        exit 1
    fi
done

# ---- certificates, credentials, configs ------------------------------------------------
pki() (
    cd "$tmp" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=firn test CA" -keyout ca.key -out ca.pem &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
            -keyout server.key -out server.csr &&
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out server.pem &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=scraper \
            -keyout client.key -out client.csr &&
        openssl x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -out client.pem &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj /CN=stranger -keyout stranger.key -out stranger.pem
)
if ! pki >"$tmp/openssl.log" 2>&1; then
    fail "make certificates: $(tail -3 "$tmp/openssl.log")"
    finish
    exit 1
fi
hash=$(htpasswd -nbBC 10 alice 'open sesame' | cut -d: -f2-)
token=firn-e2e-token-7f3a
token_sha=$(printf %s "$token" | sha256sum | cut -d' ' -f1)
printf 'open sesame' >"$tmp/password"
test_secret 'open sesame' "$token"

# Relative paths: relative to the web config's directory, as exporter-toolkit.
cat >"$tmp/web.yml" <<EOF
tls_server_config:
  cert_file: server.pem
  key_file: server.key
http_server_config:
  headers:
    X-Content-Type-Options: nosniff
basic_auth_users:
  alice: $hash
firn_bearer_token_sha256:
  - $token_sha
EOF
echo "scrape_configs: []" >"$tmp/empty.yml"
cp "$tmp/empty.yml" "$tmp/firn.yml"

if ! start_firn "$firn" "$tmp/firn.log" --web.config.file="$tmp/web.yml" \
        --config.file="$tmp/firn.yml" --web.listen-address=127.0.0.1:0 \
        --storage.tsdb.path="$tmp/data"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
ok "firn serves HTTPS on port $FIRN_PORT"
base=https://localhost:$FIRN_PORT
tls=(--cacert "$tmp/ca.pem")
alice=(-u 'alice:open sesame')

# code ARGS...: the HTTP status curl gets ("000" when there is none).
code() { curl_local -o /dev/null -w '%{http_code}' --max-time 10 "$@" 2>/dev/null; }

# ---- TLS ---------------------------------------------------------------------------------
same "https with the CA" "$(code "${tls[@]}" "${alice[@]}" "$base/-/healthy")" 200
body=$(curl_local --max-time 10 "${tls[@]}" "${alice[@]}" "$base/-/healthy")
same "/-/healthy body" "$body" "firn is Healthy."
if curl_local --max-time 10 -o /dev/null "$base/-/healthy" "${alice[@]}" 2>"$tmp/err"; then
    fail "a client without the CA accepted the certificate"
else
    ok "a client without the CA refuses the certificate ($(head -1 "$tmp/err"))"
fi
plain=$(curl_local --max-time 10 -i "http://127.0.0.1:$FIRN_PORT/-/healthy" | tr -d '\r')
same "plain HTTP on the TLS port" "$plain" "HTTP/1.0 400 Bad Request

Client sent an HTTP request to an HTTPS server."
same "TLS 1.3" "$(code "${tls[@]}" "${alice[@]}" --tlsv1.3 "$base/-/healthy")" 200
same "TLS 1.2" "$(code "${tls[@]}" "${alice[@]}" --tls-max 1.2 "$base/-/healthy")" 200
# TLS 1.1: Debian's curl and OpenSSL refuse it themselves at the default
# security level, so the client is openssl s_client at level 0, shown able
# to speak TLS 1.1 to an openssl s_server first.
tls11() {  # PORT: "TLSv1.1" when a TLS 1.1-only handshake succeeds, else ""
    # (s_client prints the session's Protocol also after a failed handshake;
    # the "New, ..., Cipher is" line says (NONE) then)
    echo Q | timeout 10 openssl s_client -connect "127.0.0.1:$1" -servername localhost \
        -tls1_1 -cipher 'DEFAULT:@SECLEVEL=0' 2>/dev/null |
        awk '/^New, / && $NF != "(NONE)" {ok = 1} $1 == "Protocol" {p = $3} END {if (ok) print p}'
}
openssl s_server -accept 127.0.0.1:0 -cert "$tmp/server.pem" -key "$tmp/server.key" -tls1_1 \
    -cipher 'DEFAULT:@SECLEVEL=0' -www >"$tmp/s_server.log" 2>&1 &
track_pid $!
s_server_pid=$!
if wait_for 10 grep -q '^ACCEPT' "$tmp/s_server.log"; then
    s_port=$(ss -ltnpH "( sport > :0 )" 2>/dev/null | awk -v p="pid=$s_server_pid," '$0 ~ p {n = split($4, a, ":"); print a[n]}' | head -1)
    same "openssl s_client speaks TLS 1.1 to a server that allows it" "$(tls11 "$s_port")" TLSv1.1
else
    fail "openssl s_server with TLS 1.1: $(tail -2 "$tmp/s_server.log")"
fi
stop_pid "$s_server_pid"
same "TLS 1.1 refused by firn" "$(tls11 "$FIRN_PORT")" ""

# ---- credentials ---------------------------------------------------------------------------
curl_local --max-time 10 -D "$tmp/h401" -o "$tmp/b401" "${tls[@]}" "$base/api/v1/targets"
same "no credentials: 401" "$(head -1 "$tmp/h401" | tr -d '\r')" "HTTP/1.1 401 Unauthorized"
same "no credentials: challenges" \
    "$(grep -i '^www-authenticate:' "$tmp/h401" | tr -d '\r' | sort | tr '\n' ' ')" \
    "www-authenticate: Basic www-authenticate: Bearer "
same "no credentials: body" "$(cat "$tmp/b401")" "Unauthorized"
same "configured header on a 401" \
    "$(grep -i '^x-content-type-options:' "$tmp/h401" | tr -d '\r')" "X-Content-Type-Options: nosniff"
same "/-/healthy needs credentials too (as Prometheus)" \
    "$(code "${tls[@]}" "$base/-/healthy")" 401
same "wrong password: 401" "$(code "${tls[@]}" -u alice:sesame "$base/api/v1/targets")" 401
same "unknown user: 401" "$(code "${tls[@]}" -u bob:'open sesame' "$base/api/v1/targets")" 401
same "wrong token: 401" \
    "$(code "${tls[@]}" -H "Authorization: Bearer nope" "$base/api/v1/targets")" 401
same "right password: /api/v1/targets" "$(code "${tls[@]}" "${alice[@]}" "$base/api/v1/targets")" 200
same "right password: /metrics" "$(code "${tls[@]}" "${alice[@]}" "$base/metrics")" 200
same "bearer token: /metrics" \
    "$(code "${tls[@]}" -H "Authorization: Bearer $token" "$base/metrics")" 200
same "unknown path with credentials: 404" \
    "$(code "${tls[@]}" "${alice[@]}" "$base/api/v1/nowhere")" 404
status=$(curl_local --max-time 10 "${tls[@]}" "${alice[@]}" "$base/api/v1/targets" | jq -r .status)
same "/api/v1/targets answers JSON" "$status" success

if curl_local --max-time 10 "${tls[@]}" "${alice[@]}" "$base/metrics" >"$tmp/metrics" &&
    promtool check metrics <"$tmp/metrics" >"$tmp/promtool.log" 2>&1; then
    ok "promtool check metrics reads /metrics through curl"
else
    fail "promtool check metrics: $(tail -3 "$tmp/promtool.log")"
fi

# promtool itself over HTTPS with basic auth: Go's client takes the
# credentials from the URL and the CA from SSL_CERT_FILE.
if out=$(SSL_CERT_FILE="$tmp/ca.pem" timeout 30 promtool query instant \
        "https://alice:open%20sesame@localhost:$FIRN_PORT" '1+1' 2>&1); then
    same "promtool query instant over HTTPS with basic auth" "$(printf '%s' "$out" | tr -d '\n')" \
        "scalar: 2 @[$(printf '%s' "$out" | sed -n 's/.*@\[\(.*\)\].*/\1/p')]"
else
    fail "promtool query instant: $out"
fi

# ---- firn scrapes itself over HTTPS with basic auth -------------------------------------------
cat >"$tmp/firn.yml" <<EOF
global: {scrape_interval: 2s, scrape_timeout: 2s}
scrape_configs:
  - job_name: firn
    scheme: https
    tls_config: {ca_file: $tmp/ca.pem}
    basic_auth: {username: alice, password_file: $tmp/password}
    static_configs: [{targets: ['localhost:$FIRN_PORT']}]
    profiling_config:
      pprof_config:
        block: {enabled: false}
        goroutine: {enabled: false}
        mutex: {enabled: false}
EOF
kill -HUP "$FIRN_PID"
targets() { curl_local --max-time 5 "${tls[@]}" "${alice[@]}" "$base/api/v1/targets"; }
all_up() {
    [[ $(targets | jq -r '[.data.activeTargets[] | select(.scrapePool == "firn") | .health]
        | (length > 0 and all(. == "up"))') == true ]]
}
if wait_for 60 all_up; then
    ok "the self-scrape over HTTPS with basic auth is up ($(targets |
        jq -r '[.data.activeTargets[].labels.__name__] | join(",")'))"
else
    fail "self-scrape: $(targets | jq -c '[.data.activeTargets[] | {health, lastError}]')"
fi

# ---- the credentials cache: what a request costs when it is warm ---------------------------------
n=1000
urls=()
for ((i = 0; i < n; i++)); do urls+=(-o /dev/null "$base/-/healthy"); done
# timings URL-ARGS...: per-request seconds (time_total) of n requests on one
# connection, the first (handshake, maybe bcrypt) left out.
timings() {
    curl_local --max-time 120 -w '%{time_total}\n' "${tls[@]}" "$@" "${urls[@]}" |
        tail -n +2
}
median_ms() { sort -g | awk '{v[NR] = $1} END {printf "%.3f", v[int((NR + 1) / 2)] * 1000}'; }
p99_ms() { sort -g | awk '{v[NR] = $1} END {printf "%.3f", v[int(NR * 0.99)] * 1000}'; }
bcrypt_ok() {
    curl_local --max-time 5 "${tls[@]}" "${alice[@]}" "$base/metrics" |
        sed -n 's/^firn_http_auth_bcrypt_checks_total{result="ok"} //p'
}
before=$(bcrypt_ok)
timings "${alice[@]}" >"$tmp/basic.t"
after=$(bcrypt_ok)
timings -H "Authorization: Bearer $token" >"$tmp/bearer.t"
# the counter must be there (alice logged in before) and move by 0 or 1
if [[ $before =~ ^[0-9]+$ && $after =~ ^[0-9]+$ ]] && ((before >= 1)); then
    same "$n basic-auth requests ran bcrypt at most once (cache)" "$((after - before <= 1))" 1
else
    fail "firn_http_auth_bcrypt_checks_total{result=\"ok\"} missing: '$before' '$after'"
fi

# ---- guessing passwords does not take the workers ------------------------------------------------
# 400 clients at once, each with its own wrong password (none cached: each
# would be a bcrypt of tens of ms on one of the 8 workers, and the queue
# holds 256), while alice, whose password is cached, keeps querying.  At most
# two checks run at once (a quarter of the workers); the others get 503
# with Retry-After at once, so alice is always answered.
flood=$(timeout 300 python3 "$(dirname "$0")/auth_flood.py" "$base/api/v1/query?query=1%2B1" \
    alice 'open sesame' 400 "$tmp/ca.pem")
same "password guessing: alice's queries meanwhile all answered 200" \
    "$(jq -c '.right | keys' <<<"$flood")" '["200"]'
same "password guessing: the guesses get 401 or 503, nothing else" \
    "$(jq -c '.flood | keys - ["401", "503"]' <<<"$flood")" '[]'
# without the bound every guess would wait for its bcrypt (and 401), the
# queue overflowing for at most 400 - 264 of them
if jq -e '.flood["503"] >= 300' <<<"$flood" >/dev/null; then
    ok "password guessing: most guesses refused at once ($(jq -c .flood <<<"$flood"))"
else
    fail "password guessing: the guesses were checked: $flood"
fi
same "password guessing: the refusals are counted" \
    "$(curl_local --max-time 5 "${tls[@]}" "${alice[@]}" "$base/metrics" |
        sed -n 's/^firn_http_auth_bcrypt_checks_total{result="refused"} //p')" \
    "$(jq -r '.flood["503"]' <<<"$flood")"

# The same requests to a firn with the same TLS and no credentials.
cat >"$tmp/web-tls-only.yml" <<EOF
tls_server_config: {cert_file: $tmp/server.pem, key_file: $tmp/server.key}
EOF
firn_auth_port=$FIRN_PORT
if start_firn "$firn" "$tmp/firn-tls.log" --web.config.file="$tmp/web-tls-only.yml" \
        --config.file="$tmp/empty.yml" --web.listen-address=127.0.0.1:0 \
        --storage.tsdb.path="$tmp/data-tls"; then
    urls=()
    for ((i = 0; i < n; i++)); do urls+=(-o /dev/null "https://localhost:$FIRN_PORT/-/healthy"); done
    timings >"$tmp/none.t"
    basic=$(median_ms <"$tmp/basic.t")
    none=$(median_ms <"$tmp/none.t")
    # a figure, not a check (timings are not asserted: bench_api measures)
    echo "note: latency of /-/healthy over HTTPS keep-alive, median (p99): no credentials" \
        "$none ms ($(p99_ms <"$tmp/none.t") ms), basic auth cached $basic ms" \
        "($(p99_ms <"$tmp/basic.t") ms), bearer $(median_ms <"$tmp/bearer.t") ms" \
        "($(p99_ms <"$tmp/bearer.t") ms); added by basic auth:" \
        "$(awk -v a="$basic" -v b="$none" 'BEGIN {printf "%.3f", a - b}') ms"
    stop_pid "$FIRN_PID"
else
    fail "start firn with TLS only: $(tail -3 "$tmp/firn-tls.log")"
fi
FIRN_PORT=$firn_auth_port

# ---- client certificates ------------------------------------------------------------------------
cat >"$tmp/web-mtls.yml" <<EOF
tls_server_config:
  cert_file: $tmp/server.pem
  key_file: $tmp/server.key
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: $tmp/ca.pem
EOF
if start_firn "$firn" "$tmp/firn-mtls.log" --web.config.file="$tmp/web-mtls.yml" \
        --config.file="$tmp/empty.yml" --web.listen-address=127.0.0.1:0 \
        --storage.tsdb.path="$tmp/data-mtls"; then
    mtls=https://localhost:$FIRN_PORT
    same "client certificate required: none is refused" \
        "$(code "${tls[@]}" "$mtls/-/healthy")" 000
    same "client certificate required: a stranger's is refused" \
        "$(code "${tls[@]}" --cert "$tmp/stranger.pem" --key "$tmp/stranger.key" \
            "$mtls/-/healthy")" 000
    same "client certificate required: the CA's client gets in" \
        "$(code "${tls[@]}" --cert "$tmp/client.pem" --key "$tmp/client.key" \
            "$mtls/-/healthy")" 200
    stop_pid "$FIRN_PID"
else
    fail "start firn with client certificates: $(tail -3 "$tmp/firn-mtls.log")"
fi

# ---- bad web configs stop startup ------------------------------------------------------------------
refuses() {  # WHAT WANT-IN-LOG: the web config in $tmp/bad.yml
    local rc=0
    timeout 30 "$firn" --web.config.file="$tmp/bad.yml" --web.listen-address=127.0.0.1:0 \
        --storage.tsdb.path="$tmp/data-bad" >"$tmp/bad.log" 2>&1 || rc=$?
    if ((rc == 1)) && grep -qF -- "$2" "$tmp/bad.log"; then
        ok "$1 stops startup ($2)"
    else
        fail "$1: exit $rc, log: $(tail -3 "$tmp/bad.log")"
    fi
    # firnctl check web-config says the same before anyone starts firn.
    rc=0
    "$firnctl" check web-config "$tmp/bad.yml" >"$tmp/check.out" 2>&1 || rc=$?
    if ((rc == 1)) && grep -qF -- "$2" "$tmp/check.out"; then
        ok "firnctl check web-config: $1"
    else
        fail "firnctl check web-config, $1: exit $rc: $(tail -2 "$tmp/check.out")"
    fi
}
same "firnctl check web-config accepts the good file" \
    "$("$firnctl" check web-config "$tmp/web.yml" | head -1)" "$tmp/web.yml: OK"
printf 'tls_server_config:\n  cert_file: server.pem\n' >"$tmp/bad.yml"
refuses "a cert_file without key_file" \
    "bad.yml:1:1: tls_server_config: key_file is required (with cert_file)"
printf 'basic_auth_users:\n  alice: open-sesame\n' >"$tmp/bad.yml"
refuses "a password that is not a bcrypt hash" "bad.yml:2:10: alice: not a bcrypt hash"
printf 'rate_limit: {burst: 1, interval: 1s}\n' >"$tmp/bad.yml"
refuses "a key firn does not implement" "bad.yml:1:1: rate_limit: not supported by firn"
printf 'tls_server_config: {cert_file: missing.pem, key_file: server.key}\n' >"$tmp/bad.yml"
refuses "a missing certificate" "cert_file $tmp/missing.pem: no such file or directory"
finish
