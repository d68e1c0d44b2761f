#!/usr/bin/env bash
# End-to-end test of remote_write against a real receiver, all on 127.0.0.1:
#  - Debian's Prometheus 2.42 started with --web.enable-remote-write-receiver;
#  - firn scrapes the real Go test service (test/goservice) and records
#    job:cpu:rate (a profile-derived rate) and firn:eval:time (vector(time()):
#    its value is the evaluation time, so the receiver's timestamps can be
#    checked against its values) and an always-firing alert (its ALERTS
#    series is sent too);
#  - four remote_write entries: "main" (a header, basic_auth, roomy queue),
#    "small" (capacity 5, write_relabel_configs keeping job:cpu:rate and
#    adding rw="small"), and two to a capturing endpoint
#    (remote_write_capture.py): "wrong" answered 400 (failed, never
#    retried) and "limited" answered 429 once (retried, then delivered),
#    whose requests carry the spec's headers, the configured header and
#    basic auth;
#  - what Prometheus stored, read back with `promtool query instant`, equals
#    what firn's own query API returns for the same series and window
#    (timestamps and values; Prometheus stored them, firn's API reads its own
#    store);
#  - the receiver stopped: sends are retried (counted) and the small queue
#    drops past its bound (counted); started again: main delivers every
#    sample recorded during the outage, small some of them and no other;
#  - a reload (SIGHUP) keeps an unchanged entry's queue and counters,
#    drops a removed one and applies a new capacity;
#  - /api/v1/status/config masks the basic_auth password and firn's log
#    never shows it.
#
# usage: rules_remote_write.sh FIRN SOURCE_DIR
set -uo pipefail
firn=$1
srcdir=$2
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace
command -v prometheus >/dev/null && command -v promtool >/dev/null ||
    { fail "prometheus/promtool not installed (scripts/deps test)"; finish; exit 1; }

need_go "$srcdir" goservice "$tmp"
if ! start_goservice "$tmp" svc; then
    fail "start go service: $(tail -5 "$tmp/svc.log")"
    finish
    exit 1
fi
ok "go service at $GO_ADDR"

PROM_PORT=$(free_port)
P="http://127.0.0.1:$PROM_PORT"
echo 'scrape_configs: []' >"$tmp/prom.yml"
PROM_PID=
start_prom() {
    prometheus --config.file="$tmp/prom.yml" --storage.tsdb.path="$tmp/prom" \
        --web.listen-address="127.0.0.1:$PROM_PORT" --web.enable-remote-write-receiver \
        >>"$tmp/prom.log" 2>&1 &
    PROM_PID=$!
    track_pid "$PROM_PID"
    wait_for 60 curl_local --fail --max-time 1 "$P/-/ready"
}
start_prom || { fail "start prometheus: $(tail -5 "$tmp/prom.log")"; finish; exit 1; }
ok "prometheus (remote-write receiver) on 127.0.0.1:$PROM_PORT"

python3 "$(dirname "$0")/remote_write_capture.py" "$tmp/capture.port" "$tmp/capture.log" \
    >"$tmp/capture.out" 2>&1 &
track_pid $!
wait_for 30 test -s "$tmp/capture.port" || { fail "capture server did not start"; finish; exit 1; }
C="http://127.0.0.1:$(cat "$tmp/capture.port")"
ok "capturing endpoint at $C"

PASS=rw-pass-$RANDOM$RANDOM
test_secret "$PASS"
CPU='process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta'
mkdir -p "$tmp/rules"
cat >"$tmp/rules/rw.yml" <<EOF
groups:
  - name: rw
    interval: 1s
    rules:
      - record: job:cpu:rate
        expr: sum by (job) (rate($CPU[10s]))
      - record: firn:eval:time
        expr: vector(time())
      - alert: RemoteWriteTest
        expr: vector(1)
        labels: {severity: none}
EOF
cat >"$tmp/firn.yml" <<EOF
global:
  scrape_interval: 2s
  scrape_timeout: 2s
  external_labels: {region: eu}
rule_files: ['rules/*.yml']
remote_write:
  - url: $P/api/v1/write
    name: main
    remote_timeout: 2s
    headers: {X-Scope-OrgID: firn-test}
    basic_auth: {username: firn, password: $PASS}
    queue_config: {capacity: 10000, max_samples_per_send: 50, batch_send_deadline: 1s,
                   min_backoff: 100ms, max_backoff: 400ms}
  - url: $P/api/v1/write
    name: small
    remote_timeout: 2s
    write_relabel_configs:
      - {source_labels: [__name__], regex: 'job:cpu:rate', action: keep}
      - {target_label: rw, replacement: small}
    queue_config: {capacity: 5, max_samples_per_send: 5, batch_send_deadline: 500ms,
                   min_backoff: 100ms, max_backoff: 400ms}
  - url: $C/bad
    name: wrong
    remote_timeout: 2s
    queue_config: {batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 400ms}
  - url: $C/limited
    name: limited
    remote_timeout: 2s
    headers: {X-Scope-OrgID: firn-test}
    basic_auth: {username: firn, password: $PASS}
    queue_config: {batch_send_deadline: 500ms, min_backoff: 100ms, max_backoff: 400ms}
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
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
F="http://127.0.0.1:$FIRN_PORT"
ok "firn on port $FIRN_PORT"

metric() { curl_local "$F/metrics" | awk -v m="$1" 'index($0, m) == 1 { print $NF }'; }
main_q='{remote_name="main",url="'"$P"'/api/v1/write"}'
small_q='{remote_name="small",url="'"$P"'/api/v1/write"}'
wrong_q='{remote_name="wrong",url="'"$C"'/bad"}'
limited_q='{remote_name="limited",url="'"$C"'/limited"}'

# ---- the secret stays hidden ----------------------------------------------------
status=$(curl_local "$F/api/v1/status/config" | jq -r .data.yaml)
grep -q 'password: <secret>' <<<"$status" && ! grep -q "$PASS" <<<"$status" &&
    ok "status/config masks remote_write's basic_auth password" ||
    fail "status/config: $(grep -n password <<<"$status")"

# ---- delivery ----------------------------------------------------------------------
# promtool's JSON for a range selector: [{metric, values: [[t, "v"]...]}]
prom_samples() {  # EXPR TIME: "t v" lines, t in ms
    promtool query instant -o json --time="$2" "$P" "$1" 2>/dev/null |
        jq -r '.[0].values[]? | "\(.[0] * 1000 | round) \(.[1])"'
}
firn_samples() {  # EXPR TIME
    curl_local --get "$F/api/v1/query" --data-urlencode "query=$1" --data-urlencode "time=$2" |
        jq -r '.data.result[0].values[]? | "\(.[0] * 1000 | round) \(.[1])"'
}
prom_has() { test -n "$(prom_samples "$1" "$(date +%s)")"; }
wait_for 90 prom_has 'job:cpu:rate{rw=""}[1m]' && ok "job:cpu:rate reached prometheus" ||
    fail "nothing in prometheus: $(tail -5 "$tmp/firn.log")"
wait_for 30 prom_has 'firn:eval:time[1m]' && ok "firn:eval:time reached prometheus" ||
    fail "firn:eval:time not in prometheus"
# ALERTS is rule output too
wait_for 30 prom_has 'ALERTS{alertname="RemoteWriteTest",alertstate="firing"}[1m]' &&
    ok "ALERTS of a firing alert reached prometheus" || fail "no ALERTS in prometheus"
labels=$(promtool query instant -o json "$P" 'ALERTS{alertname="RemoteWriteTest"}' | jq -c '.[0].metric')
same "ALERTS labels in prometheus" "$labels" \
    '{"__name__":"ALERTS","alertname":"RemoteWriteTest","alertstate":"firing","region":"eu","severity":"none"}'

# the labels as Prometheus stored them: rule output, external label, no rw
labels=$(promtool query instant -o json "$P" 'job:cpu:rate{rw=""}' | jq -c '.[0].metric')
same "labels in prometheus" "$labels" '{"__name__":"job:cpu:rate","job":"go","region":"eu"}'
labels=$(promtool query instant -o json "$P" 'job:cpu:rate{rw="small"}' | jq -c '.[0].metric')
same "write_relabel_configs in prometheus" "$labels" \
    '{"__name__":"job:cpu:rate","job":"go","region":"eu","rw":"small"}'
n_other=$(promtool query instant -o json "$P" 'count({rw="small",__name__!="job:cpu:rate"})' | jq length)
same "write_relabel_configs keep: only job:cpu:rate in small" "$n_other" 0

# Let several evaluations be delivered, then compare a closed window.
enough() { test "$(prom_samples 'job:cpu:rate{rw=""}[1m]' "$(date +%s)" | wc -l)" -ge 8; }
wait_for 60 enough || fail "fewer than 8 samples delivered"
T=$(($(date +%s) - 2))
delivered_by() { awk -v t="$1" '$NF >= t' <<<"$(metric "firn_remote_storage_queue_highest_sent_timestamp_seconds$main_q")" | grep -q .; }
wait_for 30 delivered_by "$T" || fail "main has not sent up to $T"
# (T-30s, T]: Prometheus 2.42's ranges are closed, firn's left-open, so
# both are read wider and cut the same way
in_window() { awk -v a="$(( (T - 30) * 1000 ))" '$1 > a'; }
prom_samples 'job:cpu:rate{rw=""}[40s]' "$T" | in_window >"$tmp/prom_rate.txt"
firn_samples 'job:cpu:rate[40s]' "$T" | in_window >"$tmp/firn_rate.txt"
n=$(wc -l <"$tmp/firn_rate.txt")
[ "$n" -ge 5 ] && ok "firn has $n samples of job:cpu:rate in the window" ||
    fail "firn has $n samples in the window"
# values as text: Prometheus and firn both format with Go's 'f', -1 rules
same "prometheus stored exactly firn's job:cpu:rate (timestamps and values)" \
    "$(cat "$tmp/prom_rate.txt")" "$(cat "$tmp/firn_rate.txt")"
# vector(time()): the value is the sample's own timestamp in seconds
promtool query instant -o json --time="$T" "$P" 'firn:eval:time[30s]' |
    jq -r '.[0].values[] | "\(.[0]) \(.[1])"' >"$tmp/prom_time.txt"
awk 'NF != 2 || $1 + 0 != $2 + 0 { bad++ } END { exit bad || NR < 5 }' "$tmp/prom_time.txt" &&
    ok "firn:eval:time equals its timestamp in prometheus ($(wc -l <"$tmp/prom_time.txt") samples)" ||
    fail "firn:eval:time: $(head -3 "$tmp/prom_time.txt")"

# a 400 is not retried; a 429 is, and then delivered
positive() { awk '$1 > 0' <<<"$(metric "$1")" | grep -q .; }
wait_for 30 positive "firn_remote_storage_samples_failed_total$wrong_q" &&
    ok "400: samples counted as failed" ||
    fail "wrong: failed_total $(metric "firn_remote_storage_samples_failed_total$wrong_q")"
same "400: never retried" "$(metric "firn_remote_storage_samples_retried_total$wrong_q")" 0
wait_for 30 positive "firn_remote_storage_samples_total$limited_q" &&
    ok "429: delivered after the retry" || fail "limited never delivered"
positive "firn_remote_storage_samples_retried_total$limited_q" &&
    ok "429: the batch was retried" || fail "limited: no retry counted"
same "429: nothing failed" "$(metric "firn_remote_storage_samples_failed_total$limited_q")" 0
same "main: nothing failed" "$(metric "firn_remote_storage_samples_failed_total$main_q")" 0
# the headers of remote-write 1.0, the configured one and basic auth
first=$(grep -m1 '"path": "/limited"' "$tmp/capture.log")
hdr() { jq -r --arg h "$1" '.headers[$h] // ""' <<<"$first"; }
same "Content-Encoding" "$(hdr content-encoding)" snappy
same "Content-Type" "$(hdr content-type)" application/x-protobuf
same "X-Prometheus-Remote-Write-Version" "$(hdr x-prometheus-remote-write-version)" 0.1.0
same "configured header" "$(hdr x-scope-orgid)" firn-test
same "basic auth" "$(hdr authorization)" "Basic $(printf 'firn:%s' "$PASS" | base64 -w0)"
[[ $(hdr user-agent) == firn/* ]] && ok "User-Agent $(hdr user-agent)" || fail "User-Agent $(hdr user-agent)"

# ---- the receiver stopped -------------------------------------------------------------
stop_pid "$PROM_PID"
alive "$PROM_PID" && fail "prometheus still running"
T_DOWN=$(date +%s%3N)
retried() { awk '$1 > 0' <<<"$(metric "firn_remote_storage_samples_retried_total$main_q")" | grep -q .; }
wait_for 30 retried && ok "receiver down: main retries (retried_total $(metric "firn_remote_storage_samples_retried_total$main_q"))" ||
    fail "main never retried"
dropped() { awk '$1 > 0' <<<"$(metric "firn_remote_storage_samples_dropped_total{remote_name=\"small\",url=\"$P/api/v1/write\",reason=\"queue_full\"}")" | grep -q .; }
wait_for 60 dropped && ok "receiver down: small drops past its capacity of 5 (counted)" ||
    fail "small never dropped: $(curl_local "$F/metrics" | grep 'remote_storage.*small')"
# an outage longer than small's bound (5 queued + 5 in flight)
outage_long() { [ "$(firn_samples 'job:cpu:rate[2m]' "$(date +%s)" |
                     awk -v a="$T_DOWN" '$1 > a' | wc -l)" -ge 14 ]; }
wait_for 60 outage_long || fail "fewer than 14 evaluations during the outage"
pending=$(metric "firn_remote_storage_samples_pending$small_q")
[ "${pending:-99}" -le 5 ] && ok "small's queue stays within its bound ($pending pending)" ||
    fail "small pending $pending > 5"
T_UP=$(date +%s%3N)
start_prom || { fail "restart prometheus: $(tail -5 "$tmp/prom.log")"; finish; exit 1; }
ok "prometheus restarted"

# after the restart main catches up: its newest sent sample is after T_UP
caught_up() { awk -v t="$T_UP" '$1 * 1000 >= t' <<<"$(metric "firn_remote_storage_queue_highest_sent_timestamp_seconds$main_q")" | grep -q .; }
wait_for 60 caught_up && ok "main delivers again" || fail "main never caught up"
small_up() { awk -v t="$T_UP" '$1 * 1000 >= t' <<<"$(metric "firn_remote_storage_queue_highest_sent_timestamp_seconds$small_q")" | grep -q .; }
wait_for 60 small_up || fail "small never caught up"
T2=$(( (T_UP + 999) / 1000 ))
win=$(( (T2 * 1000 - T_DOWN) / 1000 + 2 ))
in_outage() { awk -v a="$T_DOWN" -v b="$T_UP" '$1 > a && $1 <= b'; }
firn_samples "job:cpu:rate[${win}s]" "$T2" | in_outage >"$tmp/firn_out.txt"
prom_samples "job:cpu:rate{rw=\"\"}[${win}s]" "$T2" | in_outage >"$tmp/prom_out.txt"
prom_samples "job:cpu:rate{rw=\"small\"}[${win}s]" "$T2" | in_outage >"$tmp/small_out.txt"
n_out=$(wc -l <"$tmp/firn_out.txt")
[ "$n_out" -gt 5 ] && ok "firn recorded $n_out samples during the outage" ||
    fail "only $n_out samples during the outage"
same "main: every sample of the outage reached prometheus after the restart" \
    "$(cat "$tmp/prom_out.txt")" "$(cat "$tmp/firn_out.txt")"
n_small=$(wc -l <"$tmp/small_out.txt")
# (how many of the outage's own samples survive depends on how many newer
# ones came while Prometheus started: the ring keeps the newest)
[ "$n_small" -ge 1 ] && [ "$n_small" -lt "$n_out" ] &&
    ok "small: $n_small of $n_out outage samples delivered (its bound kept, the rest dropped)" ||
    fail "small delivered $n_small of $n_out outage samples"
# each one small delivered is one firn recorded
comm -23 <(sort "$tmp/small_out.txt") <(sort "$tmp/firn_out.txt") >"$tmp/small_extra.txt"
same "small's samples are firn's" "$(cat "$tmp/small_extra.txt")" ""

# ---- reload ------------------------------------------------------------------------
# main unchanged keeps its queue and counters; "wrong" removed goes away;
# small's new capacity applies
sent_before=$(metric "firn_remote_storage_samples_total$main_q")
python3 - "$tmp/firn.yml" <<'PY'
import sys, yaml
p = sys.argv[1]
c = yaml.safe_load(open(p))
c["remote_write"] = [r for r in c["remote_write"] if r["name"] != "wrong"]
for r in c["remote_write"]:
    if r["name"] == "small":
        r["queue_config"]["capacity"] = 7
        r["queue_config"]["max_samples_per_send"] = 7
open(p, "w").write(yaml.safe_dump(c))
PY
reloads() { curl_local "$F/metrics" | awk '$1 == "firn_config_last_reload_success_timestamp_seconds" { print $2 }'; }
before=$(reloads)
kill -HUP "$FIRN_PID"
reloaded() { [ "$(reloads)" != "$before" ]; }
wait_for 30 reloaded && ok "reloaded" || fail "no reload: $(tail -3 "$tmp/firn.log")"
same "reload: last reload successful" \
    "$(curl_local "$F/metrics" | awk '$1 == "firn_config_last_reload_successful" { print $2 }')" 1
sent_after=$(metric "firn_remote_storage_samples_total$main_q")
awk -v a="$sent_before" -v b="$sent_after" 'BEGIN { exit !(b >= a && a > 0) }' &&
    ok "reload: main keeps its counters ($sent_before -> $sent_after)" ||
    fail "reload: main samples_total $sent_before -> $sent_after"
same "reload: the removed entry's metrics are gone" \
    "$(metric "firn_remote_storage_samples_total$wrong_q")" ""
same "reload: small's new capacity" "$(metric "firn_remote_storage_shard_capacity$small_q")" 7
grows() { awk -v a="$sent_after" '$1 > a' <<<"$(metric "firn_remote_storage_samples_total$main_q")" | grep -q .; }
wait_for 30 grows && ok "reload: main goes on sending" || fail "main stopped after the reload"

check_logs_for_secrets
finish
