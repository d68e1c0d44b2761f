#!/usr/bin/env bash
# End-to-end test of service discovery in the server: firn with a
# file_sd_configs job and a dns_sd_configs job (dnsmasq on loopback as the
# DNS server) scraping real Go pprof services; targets are added and removed
# by editing the file and the DNS records, and the scraped series follow.
#
# usage: server_discovery.sh FIRN FIRNCTL SOURCE_DIR
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
firnctl=$2
srcdir=$3
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"
e2e_workspace

need_go "$srcdir" goservice "$tmp"
start_goservice "$tmp" a || { fail "start service a"; finish; exit 1; }
A=$GO_ADDR
start_goservice "$tmp" b || { fail "start service b"; finish; exit 1; }
B=$GO_ADDR
ok "go services at $A and $B"

# DNS: dnsmasq answering SRV records that point at "localhost" on the
# services' ports (firn then connects as it would to any SRV target,
# resolving the host with the system's resolver).
dns_starts=0
set_srv() {  # PORT...: _pprof._tcp.firn.test points at localhost on these ports
    local port args=()
    for port in "$@"; do
        args+=("--srv-host=_pprof._tcp.firn.test,localhost,$port")
    done
    stop_dnsmasq
    dns_starts=$((dns_starts + 1))
    start_dnsmasq "dns$dns_starts" "${args[@]}"
}
if ! set_srv "${A##*:}"; then
    fail "start dnsmasq: $(tail -3 "$tmp/dns1.log" 2>/dev/null)"
    finish
    exit 1
fi
ok "dnsmasq on 127.0.0.1:$DNS_PORT"

mkdir -p "$tmp/sd"
write_targets() {  # JSON: atomically, as config management tools write
    printf '%s\n' "$1" >"$tmp/sd/.targets.json.tmp"
    mv "$tmp/sd/.targets.json.tmp" "$tmp/sd/targets.json"
}
write_targets "[{\"targets\": [\"$A\"], \"labels\": {\"team\": \"x\"}}]"

only_memory='    profiling_config:
      pprof_config:
        process_cpu: {enabled: false}
        block: {enabled: false}
        goroutine: {enabled: false}
        mutex: {enabled: false}'
cat >"$tmp/firn.yml" <<EOF
global: {scrape_interval: 1s, scrape_timeout: 1s}
scrape_configs:
  - job_name: files
    file_sd_configs: [{files: ['$tmp/sd/*.json'], refresh_interval: 1h}]
$only_memory
  - job_name: dns
    dns_sd_configs: [{names: [_pprof._tcp.firn.test], refresh_interval: 1s}]
$only_memory
EOF
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data" \
        --discovery.dns.server="127.0.0.1:$DNS_PORT"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
api=http://127.0.0.1:$FIRN_PORT

instances() {  # POOL: the instances of its active targets, sorted, comma-joined
    # fails when the API does not answer (whose empty output would look like
    # a pool without targets)
    local body
    body=$(curl_local --fail --max-time 5 "$api/api/v1/targets?scrapePool=$1") || return 1
    jq -er '.status == "success" and (.data.activeTargets | type == "array")' <<<"$body" >/dev/null || return 1
    jq -r '[.data.activeTargets[].labels.instance] | sort | join(",")' <<<"$body"
}
has_instances() {
    local got
    got=$(instances "$1") || return 1
    [[ $got == "$2" ]]
}
expect_instances() {  # WHAT POOL WANT
    if wait_for 30 has_instances "$2" "$3"; then ok "$1"; else fail "$1: got '$(instances "$2")', want '$3'"; fi
}
profiles() {  # JOB INSTANCE: stored profiles of that target
    "$firnctl" tsdb dump --match "job=$1" --match "instance=$2" --storage.tsdb.path "$tmp/data" \
        2>/dev/null | wc -l
}
stores() {  # JOB INSTANCE N: at least N profiles stored
    (($(profiles "$1" "$2") >= $3))
}

# ---- file_sd -------------------------------------------------------------------------
expect_instances "file_sd: the file's target is scraped" files "$A"
t=$(curl_local "$api/api/v1/targets?scrapePool=files" | jq -c '.data.activeTargets[0]')
same "file_sd: __meta_filepath among the discovered labels" \
    "$(jq -r '.discoveredLabels.__meta_filepath' <<<"$t")" "$tmp/sd/targets.json"
same "file_sd: the file's labels on the target" "$(jq -r '.labels.team' <<<"$t")" x
wait_for 30 stores files "$A" 2 && ok "file_sd: profiles of $A stored" || fail "no profiles of $A"

write_targets "[{\"targets\": [\"$A\", \"$B\"], \"labels\": {\"team\": \"x\"}}]"
expect_instances "file_sd: a target added to the file is scraped" files \
    "$(printf '%s\n' "$A" "$B" | sort | paste -sd,)"
wait_for 30 stores files "$B" 2 && ok "file_sd: profiles of $B stored" || fail "no profiles of $B"

write_targets "[{\"targets\": [\"$B\"], \"labels\": {\"team\": \"x\"}}]"
expect_instances "file_sd: a target removed from the file is dropped" files "$B"
before=$(profiles files "$A")
b_before=$(profiles files "$B")
# three more profiles of B: time enough for A's to have shown up
wait_for 30 stores files "$B" $((b_before + 3)) && ok "file_sd: $B still scraped" ||
    fail "file_sd: $B not scraped after the change ($(profiles files "$B") profiles)"
same "file_sd: the removed target is no longer stored" "$(profiles files "$A")" "$before"

printf '[{"targets": ["%s"], "bogus": 1}]\n' "$A" >"$tmp/sd/targets.json"
failures() {
    curl_local "$api/metrics" | awk '/^firn_sd_refresh_failures_total\{mechanism="file"\}/ { print $2 }'
}
failed() { [[ $(failures) -ge 1 ]]; }
wait_for 30 failed && ok "file_sd: a broken file counts as a failed refresh" || fail "no file refresh failure counted"
same "file_sd: a broken file keeps the last good targets" "$(instances files)" "$B"

rm -f "$tmp/sd/targets.json"
expect_instances "file_sd: a deleted file removes its targets" files ""

# ---- dns_sd ----------------------------------------------------------------------------
expect_instances "dns_sd: the SRV record's target is scraped" dns "localhost:${A##*:}"
t=$(curl_local "$api/api/v1/targets?scrapePool=dns" | jq -c '.data.activeTargets[0].discoveredLabels')
same "dns_sd: __meta_dns_* labels (the SRV target with its dot, as Prometheus)" \
    "$(jq -r '[.__meta_dns_name, .__meta_dns_srv_record_target, .__meta_dns_srv_record_port] | join(" ")' <<<"$t")" \
    "_pprof._tcp.firn.test localhost. ${A##*:}"
wait_for 30 stores dns "localhost:${A##*:}" 2 && ok "dns_sd: profiles stored" || fail "dns_sd: no profiles"

set_srv "${A##*:}" "${B##*:}"
expect_instances "dns_sd: a new SRV record is scraped" dns \
    "$(printf '%s\n' "localhost:${A##*:}" "localhost:${B##*:}" | sort | paste -sd,)"

stop_dnsmasq
dns_failed() {
    [[ $(curl_local "$api/metrics" | awk '/^firn_sd_refresh_failures_total\{mechanism="dns"\}/ { print $2 }') -ge 1 ]]
}
wait_for 30 dns_failed && ok "dns_sd: a dead DNS server counts as a failed refresh" || fail "no dns failure counted"
same "dns_sd: a dead DNS server keeps the last targets" "$(instances dns)" \
    "$(printf '%s\n' "localhost:${A##*:}" "localhost:${B##*:}" | sort | paste -sd,)"

stop_pid "$FIRN_PID"
finish
