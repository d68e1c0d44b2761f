#!/usr/bin/env bash
# The README's example rule file, exactly as the README prints it, run by
# firn over real profiles of the Go test service (test/goservice), on
# 127.0.0.1:
#  - the service is profiled twice: calm (no JSON work, no mutex
#    contention, few goroutines, its normal heap) and hot (/control/json,
#    /control/mutex, /control/leak 11000 goroutines, /control/grow 256 MiB);
#  - those real profiles are pushed to firn as two jobs, calm and hot,
#    repeated over the last 6 minutes (CPU, goroutines and heap every 10 s,
#    mutex deltas made by `go tool pprof -base` every 3 s, as long as the
#    window each covers) and, for the heap, over the same minutes a day ago
#    with the calm heap for both jobs;
#  - the README's rules then see, for job hot only: JSONEncodingHot,
#    HeapDoubled, GoroutineLeak and MutexWait pending (their `for` of 10 to
#    30 minutes is not waited for; for is covered by e2e.rules_alertmanager
#    and the unit tests), and job:json_cpu:share equal to the encoding/json
#    share `go tool pprof -focus` computes from the same CPU profile; none of
#    them for job calm.
#
# usage: rules_readme.sh FIRN SOURCE_DIR
set -uo pipefail
firn=$1
srcdir=$2
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace
mkdir -p "$tmp/rules" "$tmp/p"
# the rule file as the README shows it: the yaml block after "An example rule file"
python3 - "$srcdir/README.md" "$tmp/rules/readme.yml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
at = text.index("An example rule file")
m = re.compile(r"```yaml\n(.*?)```", re.S).search(text, at)
open(sys.argv[2], "w").write(m.group(1))
PY
same "README's rule file is test/rules/check/readme_example.yml" \
    "$(diff "$tmp/rules/readme.yml" "$srcdir/test/rules/check/readme_example.yml" && echo same)" same
n_alerts=$(grep -c '^      - alert:' "$tmp/rules/readme.yml")
same "the README has four alerts" "$n_alerts" 4

need_go "$srcdir" goservice "$tmp"
if ! start_goservice "$tmp" svc; then
    fail "start go service: $(tail -5 "$tmp/svc.log")"
    finish
    exit 1
fi
G="http://$GO_ADDR"
ok "go service at $GO_ADDR"
get() { curl_local --fail --max-time 30 -o "$2" "$G$1"; }
ctl() { curl_local --fail --max-time 30 -o /dev/null "$G/control/$1"; }

# profile PHASE: CPU over 3 s, the mutex delta over the same 3 s (go tool
# pprof -base), goroutines and heap after it
profile() {
    get /debug/pprof/mutex "$tmp/p/$1-m0.pb.gz" &&
        get '/debug/pprof/profile?seconds=3' "$tmp/p/$1-cpu.pb.gz" &&
        get /debug/pprof/mutex "$tmp/p/$1-m1.pb.gz" &&
        get /debug/pprof/goroutine "$tmp/p/$1-goroutine.pb.gz" &&
        get /debug/pprof/heap "$tmp/p/$1-heap.pb.gz" &&
        go tool pprof -proto -base "$tmp/p/$1-m0.pb.gz" "$tmp/p/$1-m1.pb.gz" \
            >"$tmp/p/$1-mutex.pb.gz" 2>"$tmp/p/$1-pprof.log"
}
ctl 'mutex?on=0' && profile calm && ok "calm profiles taken" ||
    { fail "calm profiles: $(cat "$tmp/p/calm-pprof.log" 2>/dev/null)"; finish; exit 1; }
ctl 'json?on=1' && ctl 'mutex?on=1' && ctl 'leak?n=11000' && ctl 'grow?mb=256' &&
    profile hot && ok "hot profiles taken" ||
    { fail "hot profiles: $(cat "$tmp/p/hot-pprof.log" 2>/dev/null)"; finish; exit 1; }

# what go tool pprof says of them (the independent side)
json_share=$(python3 - "$(go tool pprof -raw -focus='encoding/json\.' "$tmp/p/hot-cpu.pb.gz" 2>/dev/null |
                          raw_sample_sums | cut -d' ' -f2)" \
                       "$(pprof_raw_totals "$tmp/p/hot-cpu.pb.gz" | cut -d' ' -f2)" <<'PY'
import sys
print(int(sys.argv[1]) / int(sys.argv[2]))
PY
)
awk -v s="$json_share" 'BEGIN { exit !(s > 0.2) }' &&
    ok "hot: go tool pprof puts $json_share of CPU in encoding/json" ||
    fail "hot json share $json_share"
hot_g=$(pprof_raw_totals "$tmp/p/hot-goroutine.pb.gz")
calm_g=$(pprof_raw_totals "$tmp/p/calm-goroutine.pb.gz")
[ "${hot_g:-0}" -gt 10000 ] && [ "${calm_g:-99999}" -lt 10000 ] &&
    ok "goroutines: calm $calm_g, hot $hot_g (go tool pprof)" ||
    fail "goroutines: calm $calm_g, hot $hot_g"

# mutex delay per second over the ~3 s each delta covers
mutex_rate() { awk -v d="$(pprof_raw_totals "$tmp/p/$1-mutex.pb.gz" | cut -d' ' -f2)" \
                   'BEGIN { printf "%.2f", d / 3e9 }'; }
hot_m=$(mutex_rate hot)
calm_m=$(mutex_rate calm)
awk -v h="$hot_m" -v c="$calm_m" 'BEGIN { exit !(h > 1 && c < 1) }' &&
    ok "mutex wait: calm $calm_m s/s, hot $hot_m s/s (go tool pprof)" ||
    fail "mutex wait: calm $calm_m s/s, hot $hot_m s/s"

cat >"$tmp/firn.yml" <<'EOF'
rule_files: ['rules/readme.yml']
scrape_configs: []
EOF
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/data"; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
F="http://127.0.0.1:$FIRN_PORT"
ok "firn on port $FIRN_PORT"

# One batch upload (application/x-firn-batch) of every copy, oldest first.
python3 - "$tmp/p" "$(date +%s)" >"$tmp/batch.bin" <<'PY'
import os, sys
d, now = sys.argv[1], int(sys.argv[2])
items = []
def add(t, job, name, phase, kind, delta):
    q = f"name={name}&delta={'true' if delta else 'false'}&time={t}&job={job}&instance=svc:6060"
    items.append((t, q, os.path.join(d, f"{phase}-{kind}.pb.gz")))
for job in ("calm", "hot"):
    for t in range(now - 86400 - 360, now - 86400 + 301, 30):
        add(t, job, "memory", "calm", "heap", False)
    for t in range(now - 360, now + 1, 10):
        add(t, job, "process_cpu", job, "cpu", True)
        add(t, job, "goroutine", job, "goroutine", False)
        add(t, job, "memory", job, "heap", False)
    for t in range(now - 360, now + 1, 3):
        add(t, job, "mutex", job, "mutex", True)
items.sort(key=lambda i: i[0])
out = sys.stdout.buffer
for _, q, path in items:
    data = open(path, "rb").read()
    out.write(f"{len(data)} {q}\n".encode())
    out.write(data)
PY
resp=$(curl_local --max-time 120 -H 'Content-Type: application/x-firn-batch' \
    --data-binary @"$tmp/batch.bin" "$F/api/v1/ingest")
failed=$(jq -r '.data.failed' <<<"$resp")
stored=$(jq -r '.data.stored' <<<"$resp")
same "every pushed profile stored" "$failed" 0
ok "$stored profiles pushed"

# The README's group runs every minute: wait for its first evaluation.
alerts() { curl_local "$F/api/v1/alerts"; }
state_of() {  # ALERTNAME JOB
    alerts | jq -r --arg a "$1" --arg j "$2" \
        '[.data.alerts[] | select(.labels.alertname == $a and .labels.job == $j) | .state] | first // "inactive"'
}
evaluated() { curl_local "$F/metrics" |
              awk '$1 ~ /^firn_rule_group_iterations_total[{]/ && $2 > 0 { found = 1 } END { exit !found }'; }
wait_for 150 evaluated && ok "the README's group evaluated" ||
    fail "not evaluated: $(curl_local "$F/metrics" | grep rule_group_iterations)"
for a in JSONEncodingHot HeapDoubled GoroutineLeak MutexWait; do
    same "$a for job hot" "$(state_of "$a" hot)" pending
    same "$a for job calm" "$(state_of "$a" calm)" inactive
done
health=$(curl_local "$F/api/v1/rules" | jq -r '[.data.groups[].rules[].health] | unique | join(",")')
same "every README rule healthy" "$health" ok

# the recorded share is what go tool pprof computes from the profile
share=$(curl_local --get "$F/api/v1/query" --data-urlencode 'query=job:json_cpu:share' |
        jq -r '.data.result[] | select(.metric.job == "hot") | .value[1]')
awk -v a="$share" -v b="$json_share" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a != "" && d < 1e-9) }' &&
    ok "job:json_cpu:share{job=\"hot\"} $share = go tool pprof's $json_share" ||
    fail "recorded share $share, go tool pprof $json_share"
calm_share=$(curl_local --get "$F/api/v1/query" --data-urlencode 'query=job:json_cpu:share' |
             jq -r '[.data.result[] | select(.metric.job == "calm") | .value[1]] | first // "none"')
[[ $calm_share == none || $calm_share == 0 ]] &&
    ok "job calm: no encoding/json share ($calm_share)" || fail "job calm share $calm_share"
finish
