#!/usr/bin/env bash
# End-to-end test: firn scrapes a Go service over HTTPS with basic auth,
# honouring tls_config (ca_file, server_name, insecure_skip_verify) and
# basic_auth (password, password_file) as Prometheus does, and says why
# when the certificate or the credentials do not fit.
#
# usage: server_tls.sh FIRN SOURCE_DIR
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
srcdir=$2
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace

# A self-signed certificate for the name firn-test.local only (not for
# 127.0.0.1), so the name check has something to refuse.
if ! openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=firn-test.local \
        -addext subjectAltName=DNS:firn-test.local \
        -keyout "$tmp/key.pem" -out "$tmp/cert.pem" >"$tmp/openssl.log" 2>&1; then
    fail "make a certificate: $(tail -3 "$tmp/openssl.log")"
    finish
    exit 1
fi
need_go "$srcdir" goservice "$tmp"
if ! start_goservice "$tmp" tls -tls-cert "$tmp/cert.pem" -tls-key "$tmp/key.pem" \
        -basic-auth 'scraper:pa ss'; then
    fail "start go service: $(tail -5 "$tmp/tls.log")"
    finish
    exit 1
fi
ok "HTTPS go service at $GO_ADDR"
printf 'pa ss\n' >"$tmp/password"
test_secret 'pa ss'

job() {  # NAME EXTRA-YAML-LINES...
    echo "  - job_name: $1"
    echo "    scheme: https"
    shift
    local line
    for line in "$@"; do echo "    $line"; done
    echo "    static_configs: [{targets: ['$GO_ADDR']}]"
    echo "    profiling_config:"
    echo "      pprof_config:"
    echo "        process_cpu: {enabled: false}"
    echo "        block: {enabled: false}"
    echo "        goroutine: {enabled: false}"
    echo "        mutex: {enabled: false}"
}
{
    # generous: a TLS handshake by a firn under ASan on a loaded machine
    # may take more than a second, and a timeout would hide the TLS error
    echo "global: {scrape_interval: 5s, scrape_timeout: 5s}"
    echo "scrape_configs:"
    job verified "tls_config: {ca_file: $tmp/cert.pem, server_name: firn-test.local}" \
        "basic_auth: {username: scraper, password: 'pa ss'}"
    job insecure "tls_config: {insecure_skip_verify: true}" \
        "basic_auth: {username: scraper, password_file: $tmp/password}"
    job wrongname "tls_config: {ca_file: $tmp/cert.pem}" \
        "basic_auth: {username: scraper, password: 'pa ss'}"
    job unknownca "tls_config: {server_name: firn-test.local}" \
        "basic_auth: {username: scraper, password: 'pa ss'}"
    job badpassword "tls_config: {ca_file: $tmp/cert.pem, server_name: firn-test.local}" \
        "basic_auth: {username: scraper, password: wrong}"
} >"$tmp/firn.yml"

if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
api=http://127.0.0.1:$FIRN_PORT

field() {  # POOL FIELD
    curl_local --max-time 5 "$api/api/v1/targets?scrapePool=$1" |
        jq -r --arg f "$2" '.data.activeTargets[0][$f]'
}
settled() { [[ $(field "$1" health) != unknown ]]; }
expect() {  # POOL HEALTH ERROR-REGEX
    if ! wait_for 40 settled "$1"; then
        fail "$1 was never scraped"
        return
    fi
    local health err
    health=$(field "$1" health)
    err=$(field "$1" lastError)
    if [[ $health == "$2" && $err =~ $3 ]]; then
        ok "$1: $health${err:+ ($err)}"
    else
        fail "$1: health $health, lastError '$err' (want $2, /$3/)"
    fi
}
expect verified up '^$'
expect insecure up '^$'
expect wrongname down 'certificate|subject name|host name'
expect unknownca down 'certificate'
expect badpassword down '^server returned HTTP status 401 Unauthorized$'
finish
