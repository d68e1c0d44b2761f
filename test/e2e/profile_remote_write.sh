#!/usr/bin/env bash
# End-to-end test of profile_remote_write, firn to firn on loopback: an edge
# firn forwards every profile it stores to a central firn (Pyroscope's
# Connect Push over HTTPS with a test CA, basic auth, a tenant header,
# write_relabel_configs), and nothing acknowledged is lost or doubled
# through:
#   1. normal forwarding (profiles 1-20);
#   2. the central firn stopped while profiles 21-40 are pushed to the edge
#      (they wait in its queue; the edge retries with back-off);
#   3. the edge killed with SIGKILL while its queue holds them, restarted on
#      the same store: the queue is still there;
#   4. the central firn restarted: the queue drains;
#   5. a reload that changes the shard count halfway through profiles 41-60,
#      then SIGKILL right after the last push is answered, and a restart.
# From the reload on, the edge also scrapes the central firn's own CPU
# profile, and those profiles are forwarded too.
# At the end the central store holds each of the 60 profiles exactly once,
# at the time it was pushed, with the totals `go tool pprof` gives for the
# file (not firn's decoder), and nothing of the job the relabeling drops.
#
# usage: profile_remote_write.sh FIRN FIRNCTL FIXTURES_DIR
set -uo pipefail
firn=$1
firnctl=$2
fixtures=$3
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace
for tool in htpasswd jq go promtool openssl; do
    command -v "$tool" >/dev/null || { fail "$tool is not installed (scripts/deps test)"; finish; exit 1; }
done

cpu=$fixtures/pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz
CPU=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta
want_total=$(pprof_raw_totals "$cpu" | cut -d' ' -f2)
[[ -n $want_total ]] && ok "the fixture's CPU total from go tool pprof: $want_total" ||
    fail "go tool pprof -raw $cpu gave no totals"
T0=$(($(date +%s) - 3600))

password="fwd-pass-$RANDOM$RANDOM"
tenant="tenant-token-$RANDOM$RANDOM"
test_secret "$password" "$tenant"
hash=$(htpasswd -nbBC 5 edge "$password" | cut -d: -f2-)
# the central firn serves HTTPS with a certificate of a test CA
pki() (
    cd "$tmp" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
            -subj "/CN=firn test CA" -keyout ca.key -out ca.pem &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=localhost \
            -keyout server.key -out server.csr &&
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >server.ext &&
        openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile server.ext -out server.pem
)
pki >"$tmp/openssl.log" 2>&1 || { fail "make certificates: $(tail -3 "$tmp/openssl.log")"; finish; exit 1; }
cat >"$tmp/central-web.yml" <<EOF
tls_server_config:
  cert_file: server.pem
  key_file: server.key
basic_auth_users:
  edge: '$hash'
EOF
printf 'scrape_configs: []\n' >"$tmp/empty.yml"

# start_central [PORT]: the receiving firn (port 0 the first time).
start_central() {
    start_firn "$firn" "$tmp/central.log" --config.file="$tmp/empty.yml" \
        --web.config.file="$tmp/central-web.yml" --web.listen-address="127.0.0.1:${1:-0}" \
        --storage.tsdb.path="$tmp/central" --storage.tsdb.retention.time=0 || return 1
    CENTRAL_PID=$FIRN_PID
    CENTRAL_PORT=$FIRN_PORT
}
start_central || { fail "the central firn did not start: $(tail -3 "$tmp/central.log")"; finish; exit 1; }
ok "central firn on port $CENTRAL_PORT"
same "central refuses a Push without credentials" \
    "$(curl_local -o /dev/null -w '%{http_code}' --cacert "$tmp/ca.pem" \
        -H 'Content-Type: application/proto' --data-binary '' \
        "https://127.0.0.1:$CENTRAL_PORT/push.v1.PusherService/Push")" 401

# edge_config SHARDS: the edge's configuration.
# edge_config SHARDS [scrape]: the edge's configuration; with "scrape" it
# also scrapes the central firn's own CPU profile (scraped profiles go too).
edge_config() {
    local scrapes="scrape_configs: []"
    [[ ${2:-} == scrape ]] && scrapes="scrape_configs:"
    cat >"$tmp/edge.yml" <<EOF
$scrapes
EOF
    [[ ${2:-} == scrape ]] && cat >>"$tmp/edge.yml" <<EOF
  - job_name: scraped
    scrape_interval: 2s
    scheme: https
    tls_config: {ca_file: $tmp/ca.pem}
    basic_auth: {username: edge, password: $password}
    static_configs: [{targets: ['127.0.0.1:$CENTRAL_PORT']}]
    profiling_config:
      pprof_config:
        process_cpu: {enabled: true, delta: true, seconds: 1}
        memory: {enabled: false}
        block: {enabled: false}
        goroutine: {enabled: false}
        mutex: {enabled: false}
EOF
    cat >>"$tmp/edge.yml" <<EOF
profile_remote_write:
  - url: https://127.0.0.1:$CENTRAL_PORT/
    name: central
    tls_config:
      ca_file: $tmp/ca.pem
    basic_auth:
      username: edge
      password: $password
    headers:
      X-Scope-OrgID: $tenant
    write_relabel_configs:
      - source_labels: [job]
        regex: drop-me
        action: drop
      - target_label: forwarded_by
        replacement: edge-1
    queue_config:
      shards: $1
      max_samples_per_send: 7
      batch_send_deadline: 200ms
      min_backoff: 50ms
      max_backoff: 400ms
EOF
}
edge_config 2
same "firnctl check config names the endpoint" \
    "$("$firnctl" check config "$tmp/edge.yml" | grep profile_remote_write)" \
    "  profile_remote_write central: https://127.0.0.1:$CENTRAL_PORT/ (2 shards)"

EDGE_RUN=0
start_edge() {
    EDGE_RUN=$((EDGE_RUN + 1))
    start_firn "$firn" "$tmp/edge-$EDGE_RUN.log" --config.file="$tmp/edge.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/edge" \
        --storage.tsdb.retention.time=0 || return 1
    EDGE_PID=$FIRN_PID
    EDGE_PORT=$FIRN_PORT
}
start_edge || { fail "the edge firn did not start: $(tail -3 "$tmp/edge-1.log")"; finish; exit 1; }
ok "edge firn on port $EDGE_PORT"

# metric NAME: the edge's value of a profile_remote_write family.
metric() {
    curl_local --max-time 5 "http://127.0.0.1:$EDGE_PORT/metrics" |
        sed -n "s/^firn_profile_remote_write_$1{remote_name=\"central\",url=\"[^\"]*\"} //p"
}
queue_is() { [[ $(metric queue_profiles) == "$1" ]]; }
metric_above() { awk -v v="$(metric "$1")" -v m="$2" 'BEGIN { exit !(v != "" && v + 0 > m + 0) }'; }
# why: the edge's last forwarding log lines, for a failure message.
why() { grep 'component=forward' "$tmp/edge-$EDGE_RUN.log" | tail -2 | tr '\n' ' '; }

# push I [JOB]: profile I to the edge at T0 + I seconds; its HTTP status.
push() {
    curl_local --max-time 20 -o /dev/null -w '%{http_code}' --data-binary @"$cpu" \
        "http://127.0.0.1:$EDGE_PORT/api/v1/ingest?name=process_cpu&job=${2:-edge}&instance=i$(($1 % 3))&time=$((T0 + $1))" 2>/dev/null
}
# push_range FROM TO: every push answered 200, or a FAIL naming the first that was not.
push_range() {
    local i code
    for ((i = $1; i <= $2; i++)); do
        code=$(push "$i")
        [[ $code == 200 ]] || { fail "push $i to the edge: $code"; return 1; }
    done
    ok "pushes $1-$2 acknowledged by the edge"
}

# ---- the shown configuration hides the secrets ---------------------------------
shown=$(curl_local "http://127.0.0.1:$EDGE_PORT/api/v1/status/config" | jq -r .data.yaml)
if [[ $shown == *"password: <secret>"* && $shown == *"X-Scope-OrgID: <secret>"* &&
      $shown != *"$password"* && $shown != *"$tenant"* ]]; then
    ok "/api/v1/status/config masks the password and the header"
else
    fail "/api/v1/status/config: $(printf '%s' "$shown" | grep -A3 profile_remote_write | tr '\n' ' ')"
fi

# ---- 1. forwarding ------------------------------------------------------------------
push_range 1 20
same "a profile of the dropped job is acknowledged" "$(push 100 drop-me)" 200
wait_for 60 queue_is 0 && ok "the queue drained" || fail "queue still holds $(metric queue_profiles): $(why)"
same "enqueued: the 20 kept profiles, not the dropped job's" "$(metric profiles_enqueued_total)" 20
same "sent" "$(metric profiles_sent_total)" 20
same "failed" "$(metric profiles_failed_total)" 0
check "promtool check metrics accepts the edge's /metrics" bash -c \
    "curl --noproxy '*' -sf http://127.0.0.1:$EDGE_PORT/metrics | promtool check metrics"

# ---- 2. the central firn down ---------------------------------------------------------
stop_pid "$CENTRAL_PID"
push_range 21 40
wait_for 30 metric_above profiles_retried_total 0 &&
    ok "the edge retries while the central firn is down ($(metric profiles_retried_total) profile retries)" ||
    fail "no retry counted"
same "the 20 new profiles wait in the queue" "$(metric queue_profiles)" 20
metric_above queue_bytes 0 && ok "queue bytes: $(metric queue_bytes)" || fail "queue_bytes $(metric queue_bytes)"
wait_for 10 metric_above lag_seconds 0 && ok "lag: $(metric lag_seconds) s" || fail "lag $(metric lag_seconds)"

# ---- 3. kill -9 of the edge while its queue is full ----------------------------------------
stop_pid "$EDGE_PID" KILL
start_edge || { fail "the edge did not restart: $(tail -3 "$tmp/edge-$EDGE_RUN.log")"; finish; exit 1; }
same "after kill -9 the queue still holds the 20" "$(metric queue_profiles)" 20

# ---- 4. the central firn back --------------------------------------------------------------
start_central "$CENTRAL_PORT" || { fail "the central firn did not restart"; finish; exit 1; }
wait_for 60 queue_is 0 && ok "the queue drained into the restarted central firn" ||
    fail "queue still holds $(metric queue_profiles): $(why)"

# ---- 5. a reload halfway, then kill -9 right after the last answer -------------------------------
# (the reload also starts scraping the central firn: from here the queue
# holds scraped profiles too)
push_range 41 50
edge_config 3 scrape
kill -HUP "$EDGE_PID"
shards_are() { [[ $(metric shards) == "$1" ]]; }
wait_for 30 shards_are 3 && ok "SIGHUP reloaded the edge: 3 shards" ||
    fail "shards after the reload: $(metric shards)"
same "the reload succeeded" "$(curl_local "http://127.0.0.1:$EDGE_PORT/metrics" |
    sed -n 's/^firn_config_last_reload_successful //p')" 1
push_range 51 60
stop_pid "$EDGE_PID" KILL
start_edge || { fail "the edge did not restart: $(tail -3 "$tmp/edge-$EDGE_RUN.log")"; finish; exit 1; }
wait_for 60 queue_is 0 && ok "the queue drained after the second kill -9" ||
    fail "queue still holds $(metric queue_profiles): $(why)"
# (the CPU series itself: a CPU profile is stored as one series per sample
# type, and the samples/count one may arrive first)
central_scraped_series() {
    curl_local --cacert "$tmp/ca.pem" -u "edge:$password" --get \
        "https://127.0.0.1:$CENTRAL_PORT/api/v1/series" \
        --data-urlencode "match[]=$CPU{job=\"scraped\"}" |
        jq -e '.data | length > 0'
}
wait_for 60 central_scraped_series && ok "scraped profiles reached the central firn" ||
    fail "no scraped series at the central firn: $(why)"
stop_pid "$EDGE_PID"
stop_pid "$CENTRAL_PID"

# ---- what the central firn holds ---------------------------------------------------------
# stored DATA: "SECONDS TOTAL" of each stored CPU profile of job edge, sorted.
stored() {
    "$firnctl" tsdb dump --match job=edge --match "__name__=$CPU" --storage.tsdb.path "$1" \
        2>/dev/null | awk -v t0="$T0" '{for (i = 1; i <= NF; i++) if ($i ~ /^total=/) {
            sub(/total=/, "", $i); print $(i - 1) / 1000 - t0, $i }}' | sort -n
}
want=$(for ((i = 1; i <= 60; i++)); do echo "$i $want_total"; done)
same "central: each of the 60 profiles once, at its time, with go tool pprof's total" \
    "$(stored "$tmp/central")" "$want"
same "edge: the same 60" "$(stored "$tmp/edge")" "$want"
labels=$("$firnctl" tsdb series --match "__name__=$CPU" --storage.tsdb.path "$tmp/central" 2>&1)
[[ $labels == *'forwarded_by="edge-1"'* && $labels != *drop-me* ]] &&
    ok "central: write_relabel_configs added forwarded_by and dropped job drop-me" ||
    fail "central series: $labels"
same "central: 3 series of job edge (instances i0-i2)" \
    "$(printf '%s\n' "$labels" | grep -c 'job="edge"')" 3
# Scraped profiles: the edge scraped until it stopped, so the last may not
# have been sent; every one the central holds is one the edge holds.
scraped() {
    "$firnctl" tsdb dump --match job=scraped --match "__name__=$CPU" --storage.tsdb.path "$1" \
        2>/dev/null | awk '{for (i = 1; i <= NF; i++) if ($i ~ /^total=/) print $(i - 1), $i}' | sort
}
central_scraped=$(scraped "$tmp/central")
extra=$(comm -23 <(printf '%s\n' "$central_scraped") <(scraped "$tmp/edge"))
if [[ -n $central_scraped && -z $extra ]]; then
    ok "central: $(wc -l <<<"$central_scraped") scraped CPU profiles, each as the edge stored it"
else
    fail "scraped profiles at the central: [$central_scraped], not at the edge: [$extra]"
fi

finish
