#!/usr/bin/env bash
# End-to-end test of rules and alerting with real peers, all on 127.0.0.1:
#  - firn scrapes the real Go test service (test/goservice), whose CPU goes
#    mostly to main.burnCPU;
#  - a recording rule computes the CPU share of that function with a stack
#    filter (__function__), written as a float series that the query API
#    reads back; it has no __function__ label;
#  - an alert on it is pending, then fires after `for`, and reaches a real
#    Alertmanager (Debian's prometheus-alertmanager 0.25) with the rule's
#    labels, the external label, and the templated annotation;
#    /api/v1/rules and /api/v1/alerts have Prometheus's shapes;
#  - Alertmanager stopped: sends are counted as errors and drops and
#    evaluation goes on; started again: delivery resumes by itself;
#  - SIGHUP with a broken rule file keeps the running rules; an edited
#    annotation applies and the alert keeps its state;
#  - firn restarted with the alert firing restores its `for` state;
#  - the Go service stopped (the hot function with it): the recorded series
#    ends, the alert resolves and leaves Alertmanager's active alerts.
#
# usage: rules_alertmanager.sh FIRN SOURCE_DIR
set -uo pipefail
firn=$1
srcdir=$2
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace
command -v htpasswd >/dev/null || { fail "htpasswd not installed (scripts/deps test)"; finish; exit 1; }
command -v prometheus-alertmanager >/dev/null ||
    { fail "prometheus-alertmanager not installed (scripts/deps test)"; finish; exit 1; }

need_go "$srcdir" goservice "$tmp"
if ! start_goservice "$tmp" svc; then
    fail "start go service: $(tail -5 "$tmp/svc.log")"
    finish
    exit 1
fi
GO_PID=${E2E_PIDS[-1]}
ok "go service at $GO_ADDR"

AM_PORT=$(free_port)
cat >"$tmp/am.yml" <<'EOF'
route:
  receiver: blackhole
  group_wait: 1s
  group_interval: 1s
receivers:
  - name: blackhole
EOF
# Alertmanager asks for basic auth: firn must send the password it was
# given (not the masked text /api/v1/status/config shows)
am_password="am-pass-$RANDOM$RANDOM"
test_secret "$am_password"
cat >"$tmp/am-web.yml" <<EOF
basic_auth_users:
  firn: '$(htpasswd -nbBC 5 firn "$am_password" | cut -d: -f2-)'
EOF
am_curl() { curl_local -u "firn:$am_password" "$@"; }
AM_PID=
start_am() {
    prometheus-alertmanager --config.file="$tmp/am.yml" --storage.path="$tmp/am" \
        --web.listen-address="127.0.0.1:$AM_PORT" --cluster.listen-address= \
        --web.config.file="$tmp/am-web.yml" >>"$tmp/am.log" 2>&1 &
    AM_PID=$!
    track_pid "$AM_PID"
    wait_for 30 am_curl --fail --max-time 1 "http://127.0.0.1:$AM_PORT/-/ready"
}
start_am || { fail "start alertmanager: $(tail -5 "$tmp/am.log")"; finish; exit 1; }
ok "alertmanager on 127.0.0.1:$AM_PORT"

CPU='process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta'
mkdir -p "$tmp/rules"
cat >"$tmp/rules/cpu.yml" <<EOF
groups:
  - name: cpu
    interval: 2s
    rules:
      - record: job:burn_cpu:share
        expr: |
          sum by (job) (rate($CPU{__function__="main.burnCPU"}[12s]))
          /
          sum by (job) (rate($CPU[12s]))
      - alert: BurnHot
        expr: job:burn_cpu:share > 0.2
        for: 6s
        labels:
          severity: page
        annotations:
          summary: '{{ \$labels.job }} spends {{ humanizePercentage \$value }} of its CPU in main.burnCPU'
EOF
cat >"$tmp/firn.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 2s
  external_labels: {region: eu}
rule_files: ['rules/*.yml']
alerting:
  alertmanagers:
    - static_configs: [{targets: ['127.0.0.1:$AM_PORT']}]
      timeout: 2s
      basic_auth: {username: firn, password: '$am_password'}
scrape_configs:
  - job_name: go
    static_configs: [{targets: ['$GO_ADDR']}]
    profiling_config:
      pprof_config:
        memory: {enabled: false}
        block: {enabled: false}
        goroutine: {enabled: false}
        mutex: {enabled: false}
EOF
# a grace period below the rule's `for`, so a restart restores its state
FIRN_ARGS=(--config.file="$tmp/firn.yml" --web.listen-address=127.0.0.1:0
           --storage.tsdb.path="$tmp/data" --rules.alert.resend-delay=2s
           --rules.alert.for-grace-period=1s --web.external-url=http://firn.example:7070/)
if ! start_firn "$firn" "$tmp/firn.log" "${FIRN_ARGS[@]}"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
F="http://127.0.0.1:$FIRN_PORT"
ok "firn on port $FIRN_PORT"

# The recorded share: a float series the query API reads like any metric.
share_of() { curl_local --get "$F/api/v1/query" --data-urlencode 'query=job:burn_cpu:share' |
             jq -r '.data.result[] | select(.metric.job=="go") | .value[1]'; }
has_share() { test -n "$(share_of)"; }
if wait_for 60 has_share; then
    share=$(share_of)
    ok "recorded job:burn_cpu:share{job=\"go\"} = $share"
else
    fail "no recorded share: $(tail -5 "$tmp/firn.log")"
fi
labels=$(curl_local --get "$F/api/v1/query" --data-urlencode 'query=job:burn_cpu:share' |
         jq -c '.data.result[0].metric')
same "recorded series labels (no __function__)" "$labels" '{"__name__":"job:burn_cpu:share","job":"go"}'
# the share is the one the same expression gives over the profiles now
direct=$(curl_local --get "$F/api/v1/query" --data-urlencode \
    "query=sum by (job) (rate($CPU{__function__=\"main.burnCPU\"}[12s])) / sum by (job) (rate($CPU[12s]))" |
    jq -r '.data.result[0].value[1]')
awk -v s="$share" -v d="$direct" 'BEGIN { exit !(s > 0.2 && s <= 1 && d > 0.2 && d <= 1) }' &&
    ok "share within (0.2, 1]: recorded $share, queried $direct" ||
    fail "share out of range: recorded $share, queried $direct"

# Pending, then firing after `for`.
alert_state() { curl_local "$F/api/v1/alerts" |
                jq -r '.data.alerts[] | select(.labels.alertname=="BurnHot") | .state'; }
is_state() { test "$(alert_state)" = "$1"; }
wait_for 30 is_state pending && ok "BurnHot pending" || fail "never pending: $(alert_state)"
wait_for 30 is_state firing && ok "BurnHot firing after for" ||
    fail "never firing: $(curl_local "$F/api/v1/alerts")"

# In Alertmanager, with labels, external label and the templated summary.
am_alert() { am_curl "http://127.0.0.1:$AM_PORT/api/v2/alerts" |
             jq -c '[.[] | select(.labels.alertname=="BurnHot")] | first // empty'; }
in_am() { test -n "$(am_alert)"; }
if wait_for 30 in_am; then
    a=$(am_alert)
    same "alertmanager labels" "$(jq -c .labels <<<"$a")" \
        '{"alertname":"BurnHot","job":"go","region":"eu","severity":"page"}'
    summary=$(jq -r .annotations.summary <<<"$a")
    if [[ $summary =~ ^go\ spends\ ([0-9.]+)%\ of\ its\ CPU\ in\ main\.burnCPU$ ]] &&
        awk -v p="${BASH_REMATCH[1]}" 'BEGIN { exit !(p > 20 && p <= 100) }'; then
        ok "templated summary: $summary"
    else
        fail "summary: $summary"
    fi
    same "generatorURL points at firn's UI" "$(jq -r .generatorURL <<<"$a")" \
        "http://firn.example:7070/?query=job%3Aburn_cpu%3Ashare+%3E+0.2"
    same "alertmanager state" "$(jq -r .status.state <<<"$a")" active
else
    fail "alert never reached alertmanager: $(tail -5 "$tmp/firn.log")"
fi

# Prometheus's shapes.
rules=$(curl_local "$F/api/v1/rules")
same "rules: groups" "$(jq -c '[.data.groups[] | {name, file, interval, limit}]' <<<"$rules")" \
    "[{\"name\":\"cpu\",\"file\":\"$tmp/rules/cpu.yml\",\"interval\":2,\"limit\":0}]"
same "rules: rule kinds and health" \
    "$(jq -c '[.data.groups[0].rules[] | [.type, .name, .health]]' <<<"$rules")" \
    '[["recording","job:burn_cpu:share","ok"],["alerting","BurnHot","ok"]]'
same "rules: alerting rule keys" "$(jq -c '.data.groups[0].rules[1] | keys' <<<"$rules")" \
    '["alerts","annotations","duration","evaluationTime","health","keepFiringFor","labels","lastEvaluation","name","query","state","type"]'
same "rules: recording rule keys (no labels when none)" \
    "$(jq -c '.data.groups[0].rules[0] | keys' <<<"$rules")" \
    '["evaluationTime","health","lastEvaluation","name","query","type"]'
same "rules?type=record" "$(curl_local "$F/api/v1/rules?type=RECORD" | jq -c '[.data.groups[0].rules[].type]')" \
    '["recording"]'
same "rules?type=bogus" "$(curl_local -o /dev/null -w '%{http_code}' "$F/api/v1/rules?type=bogus")" 400
same "alerts: keys" "$(curl_local "$F/api/v1/alerts" | jq -c '.data.alerts[0] | keys')" \
    '["activeAt","annotations","labels","state","value"]'
curl_local "$F/metrics" >"$tmp/metrics.txt"
grep -q "^firn_notifications_sent_total{alertmanager=\"http://127.0.0.1:$AM_PORT/api/v2/alerts\"} [1-9]" \
    "$tmp/metrics.txt" && ok "sent_total counts" || fail "sent_total: $(grep notifications_sent "$tmp/metrics.txt")"
grep -q '^firn_rule_group_iterations_total{rule_group=".*cpu.yml;cpu"} [1-9]' "$tmp/metrics.txt" &&
    ok "rule group metrics" || fail "rule group metrics missing"

# Reload (SIGHUP): a broken rule file rejects the whole reload and the
# running rules stay; an edited annotation applies with the alert's state
# kept (same activeAt).
reload_ok() { curl_local "$F/metrics" | awk '$1 == "firn_config_last_reload_successful" { print $2 }'; }
active0=$(curl_local "$F/api/v1/alerts" | jq -r '.data.alerts[] | select(.labels.alertname=="BurnHot") | .activeAt')
echo "groups: [{name: bad, rules: [{record: x, expr: 'rate(x)'}]}]" >"$tmp/rules/bad.yml"
kill -HUP "$FIRN_PID"
wait_for 30 eval 'test "$(reload_ok)" = 0' && ok "a bad rule file fails the reload" ||
    fail "reload state $(reload_ok)"
same "the running rules stay" "$(curl_local "$F/api/v1/rules" | jq -r '[.data.groups[].name] | join(",")')" cpu
rm "$tmp/rules/bad.yml"
sed -i 's/of its CPU in main.burnCPU/of CPU in burnCPU/' "$tmp/rules/cpu.yml"
kill -HUP "$FIRN_PID"
new_summary() { curl_local "$F/api/v1/alerts" |
                jq -r '.data.alerts[] | select(.labels.alertname=="BurnHot") | .annotations.summary'; }
edited() { [[ $(new_summary) == *"of CPU in burnCPU" ]]; }
wait_for 30 edited && ok "edited annotation applied: $(new_summary)" || fail "summary $(new_summary)"
same "reload succeeded" "$(reload_ok)" 1
same "alert state kept over the reload (activeAt)" \
    "$(curl_local "$F/api/v1/alerts" | jq -r '.data.alerts[] | select(.labels.alertname=="BurnHot") | .activeAt')" \
    "$active0"
sed -i 's/of CPU in burnCPU/of its CPU in main.burnCPU/' "$tmp/rules/cpu.yml"
kill -HUP "$FIRN_PID"
wait_for 30 eval '! edited' && ok "annotation back" || fail "summary $(new_summary)"

# Alertmanager down: errors and drops counted, evaluation goes on.
metric() { curl_local "$F/metrics" | awk -v m="$1" 'index($0, m) == 1 { print $NF }'; }
errors0=$(metric "firn_notifications_errors_total{")
dropped0=$(metric "firn_notifications_dropped_total")
iter0=$(metric "firn_rule_group_iterations_total{")
stop_pid "$AM_PID"
more() { test "$(metric "$1")" -gt "$2"; }
wait_for 30 more "firn_notifications_errors_total{" "$errors0" &&
    ok "errors counted with alertmanager down" || fail "no error counted"
wait_for 30 more firn_notifications_dropped_total "$dropped0" &&
    ok "drops counted with alertmanager down" || fail "no drop counted"
test "$(metric "firn_rule_group_iterations_total{")" -gt "$iter0" &&
    ok "evaluation went on" || fail "evaluation stalled"
start_am || fail "restart alertmanager: $(tail -5 "$tmp/am.log")"
# Alertmanager keeps alerts in memory only: the alert is back once firn
# sends again.
wait_for 30 in_am && ok "delivery resumed after alertmanager came back" ||
    fail "no delivery after restart"

# firn restarted with the alert firing: after its second evaluation the
# group restores the alert's `for` state from ALERTS_FOR_STATE, so the
# alert keeps the activeAt it had, to the second (ALERTS_FOR_STATE holds
# Unix seconds; Prometheus's RestoreForState).
active_at() { curl_local "$F/api/v1/alerts" |
              jq -r '.data.alerts[] | select(.labels.alertname=="BurnHot") | .activeAt'; }
before=$(active_at)
before=${before%Z}
before=${before%.*}Z
stop_pid "$FIRN_PID"
if start_firn "$firn" "$tmp/firn2.log" "${FIRN_ARGS[@]}"; then
    F="http://127.0.0.1:$FIRN_PORT"
    restored() { test "$(active_at)" = "$before" && is_state firing; }
    wait_for 30 restored && ok "for state restored after restart: activeAt $before" ||
        fail "after restart activeAt $(active_at), state $(alert_state); before $before"
else
    fail "restart firn: $(tail -5 "$tmp/firn2.log")"
fi

# The hot function stops with the service: the share ends, the alert resolves.
stop_pid "$GO_PID"
wait_for 60 eval '! has_share' && ok "recorded share ended" || fail "share still $(share_of)"
wait_for 30 is_state "" && ok "BurnHot resolved in firn" ||
    fail "still $(alert_state)"
wait_for 30 eval '! in_am' && ok "BurnHot left alertmanager's active alerts" ||
    fail "alertmanager still has $(am_alert)"
finish
