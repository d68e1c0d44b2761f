#!/usr/bin/env bash
# End-to-end test of Alertmanager discovery, all on 127.0.0.1: two real
# Alertmanagers (Debian's prometheus-alertmanager 0.25), the second served
# under --web.route-prefix=/am2; firn finds the first through
# file_sd_configs and the second through dns_sd_configs (an A record served
# by dnsmasq, with a port and path_prefix /am2), and an always-firing alert
# (vector(1)) shows where it is sent:
#  - only the DNS one at first (the file lists nothing);
#  - both once the file lists the first (a file change, no reload);
#  - only the file's once the name is gone from DNS (NXDOMAIN);
#  - none once the file is empty again.
# firn_notifications_alertmanagers_discovered and the per-Alertmanager
# counters (their URLs: scheme, address, path_prefix, /api/v2/alerts)
# follow.
#
# usage: rules_am_discovery.sh FIRN
set -uo pipefail
firn=$1
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace
command -v prometheus-alertmanager >/dev/null ||
    { fail "prometheus-alertmanager not installed (scripts/deps test)"; finish; exit 1; }
dnsmasq=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
[[ -x $dnsmasq ]] || { fail "dnsmasq is not installed (scripts/deps test)"; finish; exit 1; }

cat >"$tmp/am.yml" <<'EOF'
route:
  receiver: blackhole
receivers:
  - name: blackhole
EOF
start_am() {  # NAME PORT [ROUTE_PREFIX]
    prometheus-alertmanager --config.file="$tmp/am.yml" --storage.path="$tmp/$1" \
        --web.listen-address="127.0.0.1:$2" --cluster.listen-address= \
        ${3:+--web.route-prefix=$3} >>"$tmp/$1.log" 2>&1 &
    track_pid $!
    wait_for 30 curl_local --fail --max-time 1 "http://127.0.0.1:$2${3:-}/-/ready"
}
AM1_PORT=$(free_port)
AM2_PORT=$(free_port)
start_am am1 "$AM1_PORT" || { fail "start am1: $(tail -3 "$tmp/am1.log")"; finish; exit 1; }
start_am am2 "$AM2_PORT" /am2 || { fail "start am2: $(tail -3 "$tmp/am2.log")"; finish; exit 1; }
ok "alertmanagers on 127.0.0.1:$AM1_PORT and 127.0.0.1:$AM2_PORT/am2"

if start_dnsmasq dns1 --host-record=am2.firn.test,127.0.0.1; then
    ok "dnsmasq on 127.0.0.1:$DNS_PORT"
else
    fail "dnsmasq did not start: $(tail -3 "$tmp/dns1.log")"
    finish
    exit 1
fi

echo '[]' >"$tmp/am_targets.json"
mkdir -p "$tmp/rules"
cat >"$tmp/rules/always.yml" <<'EOF'
groups:
  - name: always
    interval: 1s
    rules:
      - alert: Always
        expr: vector(1)
EOF
cat >"$tmp/firn.yml" <<EOF
rule_files: ['rules/*.yml']
alerting:
  alertmanagers:
    - file_sd_configs: [{files: ['$tmp/am_targets.json'], refresh_interval: 1h}]
      api_version: v2
      timeout: 2s
    - dns_sd_configs: [{names: [am2.firn.test], type: A, port: $AM2_PORT, refresh_interval: 1s}]
      scheme: http
      path_prefix: /am2
      timeout: 2s
scrape_configs: []
EOF
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data" \
        --rules.alert.resend-delay=1s --discovery.dns.server="127.0.0.1:$DNS_PORT"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
F="http://127.0.0.1:$FIRN_PORT"
ok "firn on port $FIRN_PORT"

discovered() { curl_local "$F/metrics" | awk '$1 == "firn_notifications_alertmanagers_discovered" { print $2 }'; }
is_discovered() { [ "$(discovered)" = "$1" ]; }
in_am() {  # PORT [PREFIX]: the Always alert is active there
    curl_local "http://127.0.0.1:$1${2:-}/api/v2/alerts" |
        jq -e '[.[] | select(.labels.alertname == "Always")] | length > 0'
}
urls() { curl_local "$F/metrics" |
         sed -n 's/^firn_notifications_sent_total{alertmanager="\([^"]*\)"}.*/\1/p' | sort | tr '\n' ' '; }
AM1_URL="http://127.0.0.1:$AM1_PORT/api/v2/alerts"
AM2_URL="http://127.0.0.1:$AM2_PORT/am2/api/v2/alerts"

# 1. the DNS one only
wait_for 30 is_discovered 1 && ok "one Alertmanager discovered (DNS)" ||
    fail "discovered $(discovered), want 1"
same "its URL: scheme, A record, port, path_prefix" "$(urls)" "$AM2_URL "
wait_for 30 in_am "$AM2_PORT" /am2 && ok "alert reached the DNS-discovered Alertmanager" ||
    fail "not in am2: $(tail -3 "$tmp/firn.log")"
in_am "$AM1_PORT" >/dev/null && fail "am1 got an alert while no one listed it" ||
    ok "am1, listed nowhere, has no alert"

# 2. the file lists am1: picked up without a reload
printf '[{"targets": ["127.0.0.1:%s"]}]\n' "$AM1_PORT" >"$tmp/am_targets.json.new"
mv "$tmp/am_targets.json.new" "$tmp/am_targets.json"
wait_for 30 is_discovered 2 && ok "file change: two Alertmanagers" ||
    fail "discovered $(discovered), want 2"
same "both URLs" "$(urls)" "$(printf '%s\n%s\n' "$AM1_URL" "$AM2_URL" | sort | tr '\n' ' ')"
wait_for 30 in_am "$AM1_PORT" && ok "alert reached the file-discovered Alertmanager" ||
    fail "not in am1: $(tail -3 "$tmp/firn.log")"

# 3. the name leaves DNS (NXDOMAIN empties its group)
stop_dnsmasq
start_dnsmasq dns2 --host-record=other.firn.test,127.0.0.1 ||
    { fail "dnsmasq restart: $(tail -3 "$tmp/dns2.log")"; finish; exit 1; }
wait_for 30 is_discovered 1 && ok "DNS name gone: one Alertmanager" ||
    fail "discovered $(discovered), want 1"
same "the file's remains" "$(urls)" "$AM1_URL "

# 4. the file empty again
echo '[]' >"$tmp/am_targets.json.new"
mv "$tmp/am_targets.json.new" "$tmp/am_targets.json"
wait_for 30 is_discovered 0 && ok "file emptied: no Alertmanager" ||
    fail "discovered $(discovered), want 0"
alive "$FIRN_PID" && ok "firn still running" || fail "firn died"
finish
