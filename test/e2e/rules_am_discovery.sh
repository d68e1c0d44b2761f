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
# Then a second firn finds Alertmanagers through kubernetes_sd_configs
# (role pod) on the fake Kubernetes API server (test/kubeapi), with
# relabel_configs as a user writes them: keep the port named web, drop the
# pods labelled alerting=off, take __alerts_path__ from an annotation.  A
# pod pointing at am2 (path /am2 from its annotation) gets the alerts; one
# pointing at am1 but dropped by relabeling gets none; a deleted pod is
# forgotten.  `firnctl check config` accepts that config.
#
# usage: rules_am_discovery.sh FIRN SOURCE_DIR FIRNCTL
set -uo pipefail
firn=$1
srcdir=$2
firnctl=$3
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
in_am() {  # PORT [PREFIX [ALERTNAME]]: the alert (Always) is active there
    curl_local "http://127.0.0.1:$1${2:-}/api/v2/alerts" |
        jq -e --arg n "${3:-Always}" '[.[] | select(.labels.alertname == $n)] | length > 0'
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

# 5. Kubernetes discovery with relabel_configs (a second firn)
need_go "$srcdir" kubeapi "$tmp"
"$tmp/kubeapi" -addr 127.0.0.1:0 -addr-file "$tmp/kubeapi.addr" >"$tmp/kubeapi.log" 2>&1 &
track_pid $!
wait_for 30 test -s "$tmp/kubeapi.addr" ||
    { fail "fake API server did not start: $(tail -3 "$tmp/kubeapi.log")"; finish; exit 1; }
KUBE_URL=http://$(head -n 1 "$tmp/kubeapi.addr")
ok "fake Kubernetes API server at $KUBE_URL"
kube() {  # TYPE OBJECT: an ADDED/MODIFIED/DELETED event on the fake server
    curl_local --fail --max-time 5 -X POST --data-binary "{\"type\":\"$1\",\"object\":$2}" \
        "$KUBE_URL/_control/apply" >/dev/null
}
# am_pod NAME WEB_PORT LABELS ANNOTATIONS: an Alertmanager pod on 127.0.0.1
# with ports web and cluster (the latter must not be sent to).
am_pod() {
    cat <<EOF
{"kind":"Pod","apiVersion":"v1",
 "metadata":{"name":"$1","namespace":"monitoring","uid":"uid-$1","labels":$3,"annotations":$4},
 "spec":{"nodeName":"node1","containers":[{"name":"alertmanager","image":"am:0.25",
   "ports":[{"name":"web","containerPort":$2,"protocol":"TCP"},
            {"name":"cluster","containerPort":9094,"protocol":"TCP"}]}]},
 "status":{"phase":"Running","podIP":"127.0.0.1","podIPs":[{"ip":"127.0.0.1"}],
   "hostIP":"127.0.0.1","conditions":[{"type":"Ready","status":"True"}]}}
EOF
}
kube ADDED "$(am_pod am-main "$AM2_PORT" '{"app":"alertmanager"}' \
    '{"firn.test/path-prefix":"/am2"}')" &&
kube ADDED "$(am_pod am-off "$AM1_PORT" '{"app":"alertmanager","alerting":"off"}' '{}')" ||
    { fail "could not add the pods: $(tail -3 "$tmp/kubeapi.log")"; finish; exit 1; }

mkdir -p "$tmp/k8s/rules"
cat >"$tmp/k8s/rules/always.yml" <<'EOF'
groups:
  - name: always
    interval: 1s
    rules:
      - alert: AlwaysK8s
        expr: vector(1)
EOF
cat >"$tmp/k8s/firn.yml" <<EOF
rule_files: ['rules/*.yml']
alerting:
  alertmanagers:
    - kubernetes_sd_configs:
        - {role: pod, api_server: "$KUBE_URL", namespaces: {names: [monitoring]}}
      timeout: 2s
      relabel_configs:
        - {source_labels: [__meta_kubernetes_pod_container_port_name], action: keep, regex: web}
        - {source_labels: [__meta_kubernetes_pod_label_alerting], action: drop, regex: "off"}
        - source_labels: [__meta_kubernetes_pod_annotation_firn_test_path_prefix]
          regex: "(.+)"
          target_label: __alerts_path__
          replacement: "\${1}/api/v2/alerts"
scrape_configs: []
EOF
if out=$("$firnctl" check config "$tmp/k8s/firn.yml" 2>&1); then
    ok "firnctl check config accepts kubernetes_sd_configs with relabel_configs"
else
    fail "firnctl check config refused it: $out"
fi
if ! start_firn "$firn" "$tmp/firn2.log" --config.file="$tmp/k8s/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data2" \
        --rules.alert.resend-delay=1s; then
    fail "start firn (Kubernetes): $(tail -5 "$tmp/firn2.log")"
    finish
    exit 1
fi
F="http://127.0.0.1:$FIRN_PORT"
wait_for 30 is_discovered 1 && ok "Kubernetes: one Alertmanager kept by relabeling" ||
    fail "discovered $(discovered), want 1: $(tail -3 "$tmp/firn2.log")"
same "its URL: the pod's IP and web port, the path from its annotation" "$(urls)" "$AM2_URL "
wait_for 30 in_am "$AM2_PORT" /am2 AlwaysK8s &&
    ok "alert reached the Alertmanager discovered through the Kubernetes API" ||
    fail "AlwaysK8s not in am2: $(tail -3 "$tmp/firn2.log")"
# every batch goes to every Alertmanager at once, so am1 would have it by now
in_am "$AM1_PORT" "" AlwaysK8s >/dev/null &&
    fail "am1 got AlwaysK8s though relabel_configs dropped its pod" ||
    ok "the pod dropped by relabel_configs (am1) got no alert"

kube DELETED "$(am_pod am-main "$AM2_PORT" '{}' '{}')" || fail "could not delete the pod"
wait_for 30 is_discovered 0 && ok "pod deleted: no Alertmanager" ||
    fail "discovered $(discovered), want 0"
alive "$FIRN_PID" && ok "firn (Kubernetes) still running" || fail "firn (Kubernetes) died"
finish
