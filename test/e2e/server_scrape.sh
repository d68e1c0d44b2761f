#!/usr/bin/env bash
# End-to-end test of the server: firn scrapes a real Go service
# (net/http/pprof) and a set of failing targets, reports their health on
# /api/v1/targets, reloads its config on SIGHUP and POST /-/reload (keeping
# the old one when the new one is broken), serves /metrics that promtool
# accepts, and after kill -9 restarts with its data intact.
#
# usage: server_scrape.sh FIRN FIRNCTL SOURCE_DIR
# Everything runs on 127.0.0.1; every wait is bounded.
set -uo pipefail
firn=$1
firnctl=$2
srcdir=$3
. "$(cd "$(dirname "$0")" && pwd)/lib.sh"

e2e_workspace

need_go "$srcdir" goservice "$tmp"
if ! start_goservice "$tmp" svc; then
    fail "start go service: $(tail -5 "$tmp/svc.log")"
    finish
    exit 1
fi
ok "go service at $GO_ADDR"

# Only the memory profile for the failing jobs: one loop each.
only_memory='    profiling_config:
      path_prefix: PREFIX
      pprof_config:
        process_cpu: {enabled: false}
        block: {enabled: false}
        goroutine: {enabled: false}
        mutex: {enabled: false}'
failing_job() {  # NAME TARGET PREFIX [EXTRA]
    echo "  - job_name: $1"
    [[ -n ${4:-} ]] && echo "$4"
    echo "    static_configs: [{targets: ['$2']}]"
    echo "${only_memory/PREFIX/$3}"
}
write_config() {  # EXTRA_LABEL_VALUE [WITH_HUGE]
    {
        echo "global: {scrape_interval: 2s, scrape_timeout: 2s}"
        echo "scrape_configs:"
        echo "  - job_name: go"
        echo "    static_configs: [{targets: ['$GO_ADDR'], labels: {env: $1}}]"
        failing_job dead 127.0.0.1:1 ""
        failing_job notfound "$GO_ADDR" /nothere
        failing_job garbage "$GO_ADDR" /garbage
        failing_job slow "$GO_ADDR" /slow "    scrape_timeout: 1s"
        [[ -n ${2:-} ]] && failing_job huge "$GO_ADDR" /huge "    body_size_limit: 1MB"
        echo "  - job_name: relabeled"
        echo "    static_configs: [{targets: ['127.0.0.1:1']}]"
        echo "    relabel_configs: [{source_labels: [__address__], regex: '.*:1', action: drop}]"
    } >"$tmp/firn.yml.new"
    mv "$tmp/firn.yml.new" "$tmp/firn.yml"
}
write_config e2e huge
check "firnctl check config accepts the test config" "$firnctl" check config "$tmp/firn.yml"

data=$tmp/data
if ! start_firn "$firn" "$tmp/firn.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$data" --web.enable-lifecycle; then
    fail "start firn: $(tail -5 "$tmp/firn.log")"
    finish
    exit 1
fi
api=http://127.0.0.1:$FIRN_PORT
ok "firn ready on port $FIRN_PORT"
same "/-/healthy" "$(curl_local "$api/-/healthy")" "firn is Healthy."
same "/-/ready" "$(curl_local "$api/-/ready")" "firn is Ready."

targets() { curl_local --max-time 5 "$api/api/v1/targets${1:-}"; }
# target_field POOL PROFILE FIELD
target_field() {
    targets | jq -r --arg p "$1" --arg n "$2" --arg f "$3" \
        '.data.activeTargets[] | select(.scrapePool == $p and .labels.__name__ == $n) | .[$f]'
}
health_is() { [[ $(target_field "$1" "$2" health) == "$3" ]]; }

# ---- the Go service: every default profile type ---------------------------------
want_types="block:contentions:count:contentions:count:delta
block:delay:nanoseconds:contentions:count:delta
goroutine:goroutine:count:goroutine:count
memory:alloc_objects:count:space:bytes:delta
memory:alloc_space:bytes:space:bytes:delta
memory:inuse_objects:count:space:bytes
memory:inuse_space:bytes:space:bytes
mutex:contentions:count:contentions:count:delta
mutex:delay:nanoseconds:contentions:count:delta
process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta
process_cpu:samples:count:cpu:nanoseconds:delta"
stored_types() {
    "$firnctl" tsdb values __name__ --match job=go --storage.tsdb.path "$data" 2>/dev/null
}
all_types_stored() { [[ $(stored_types) == "$want_types" ]]; }
if wait_for 60 all_types_stored; then
    ok "every default profile type of the Go service is stored"
else
    same "stored profile types" "$(stored_types)" "$want_types"
fi
series=$("$firnctl" tsdb series --match job=go --storage.tsdb.path "$data" 2>&1)
if grep -q "instance=\"$GO_ADDR\"" <<<"$series" && grep -q 'env="e2e"' <<<"$series"; then
    ok "series carry job, instance and the static label"
else
    fail "series labels: $(head -3 <<<"$series")"
fi

for pt in process_cpu memory block mutex goroutine; do
    if wait_for 20 health_is go "$pt" up; then
        ok "go/$pt is up"
    else
        fail "go/$pt health: $(target_field go "$pt" health) $(target_field go "$pt" lastError)"
    fi
done
t=$(targets | jq '.data.activeTargets[] | select(.scrapePool == "go" and .labels.__name__ == "process_cpu")')
same "process_cpu scrapeUrl" "$(jq -r .scrapeUrl <<<"$t")" "http://$GO_ADDR/debug/pprof/profile?seconds=1"
same "process_cpu discovered address" "$(jq -r '.discoveredLabels.__address__' <<<"$t")" "$GO_ADDR"
same "process_cpu interval and timeout" "$(jq -r '.scrapeInterval + " " + .scrapeTimeout' <<<"$t")" "2s 4s"
if [[ $(jq -r .lastScrape <<<"$t") =~ ^20[0-9][0-9]-.*Z$ ]] && \
   jq -e '.lastScrapeDuration > 0.5' <<<"$t" >/dev/null; then
    ok "process_cpu lastScrape is a time and its duration covers the 1 s recording"
else
    fail "process_cpu lastScrape: $(jq -c '{lastScrape, lastScrapeDuration}' <<<"$t")"
fi

# CPU totals against the recording time: the service spins one goroutine,
# so each 1 s profile holds at most (cores + 0.5) CPU-seconds, and on a
# machine shared with benchmarks that goroutine may get little of a core: the
# lower bound, 0.01 of the duration, is generous and still catches a unit or
# scaling error (x1000) or an empty profile.
cores=$(nproc)
bad_cpu=$("$firnctl" tsdb dump --match __name__=process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta \
    --match job=go --storage.tsdb.path "$data" |
    awk -v c="$cores" '{ for (i = 1; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
                         n++; if (v["total"] < 0.01 * v["duration_ns"] ||
                                  v["total"] > (c + 0.5) * v["duration_ns"]) bad++ }
                       END { if (n == 0) print "no profiles"; else if (bad) print bad " of " n }')
same "CPU seconds per profile match the recording duration" "$bad_cpu" ""

top=$("$firnctl" query profile 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job="go"}' \
    --start 0 --end 9999999999999 --format top --storage.tsdb.path "$data" 2>&1)
# runtime.asyncPreempt aside: Go's preemption point inside the spinning
# loop, sampled often when the machine is loaded (firn under ASan, other
# tests): its caller is the function the loop is in.
busiest=$(awk '/flat%/ { s = 1; next } s && $6 != "runtime.asyncPreempt" { print $6; exit }' <<<"$top")
same "the busiest function of the merged CPU profile (runtime.asyncPreempt aside)" "$busiest" "main.burnCPU"

# ---- failing targets ---------------------------------------------------------------
expect_error() {  # POOL REGEX
    local err
    if wait_for 30 health_is "$1" memory down; then
        err=$(target_field "$1" memory lastError)
        if [[ $err =~ $2 ]]; then
            ok "$1 is down: $err"
        else
            fail "$1 lastError: '$err' does not match /$2/"
        fi
    else
        fail "$1 health: $(target_field "$1" memory health)"
    fi
}
expect_error dead 'Get "http://127.0.0.1:1/debug/pprof/allocs": .*(onnect|refused)'
expect_error notfound '^server returned HTTP status 404 Not Found$'
expect_error garbage '^decoding profile: '
expect_error slow '^Get ".*/slow/debug/pprof/allocs": timed out after 1s$'
expect_error huge '^body size limit exceeded \(limit: 1048576 bytes\)$'
same "relabeling dropped a target" \
    "$(targets | jq -c '[.data.droppedTargets[] | .scrapePool + " " + .discoveredLabels.__address__]')" \
    '["relabeled 127.0.0.1:1"]'
same "droppedTargetCounts" "$(targets | jq -c '.data.droppedTargetCounts.relabeled')" 1
same "state=dropped has no active targets" "$(targets '?state=dropped' | jq '.data.activeTargets | length')" 0
same "scrapePool=go lists only go" \
    "$(targets '?scrapePool=go' | jq -r '[.data.activeTargets[].scrapePool] | unique | join(",")')" go

# The Go service kept being scraped while the others failed.
before=$(target_field go memory lastScrape)
advanced() { [[ $(target_field go memory lastScrape) != "$before" ]]; }
if wait_for 10 advanced; then ok "the Go service is still scraped on schedule"; else fail "go/memory lastScrape stuck at $before"; fi

# ---- /metrics ---------------------------------------------------------------------
curl_local "$api/metrics" >"$tmp/metrics.txt"
if out=$(promtool check metrics <"$tmp/metrics.txt" 2>&1); then
    ok "promtool check metrics accepts /metrics"
else
    fail "promtool check metrics: $(head -5 <<<"$out")"
fi
for m in firn_build_info firn_scrapes_total firn_scrape_duration_seconds_bucket \
         firn_scrape_targets firn_tsdb_series firn_ingest_queue_length \
         firn_http_requests_total process_cpu_seconds_total; do
    grep -q "^$m[ {]" "$tmp/metrics.txt" && ok "/metrics has $m" || fail "/metrics lacks $m"
done
succ=$(awk '/^firn_scrapes_total\{result="success"\}/ { print $2 }' "$tmp/metrics.txt")
[[ ${succ:-0} -gt 0 ]] && ok "successful scrapes are counted ($succ)" || fail "firn_scrapes_total success: '$succ'"

# ---- reload ---------------------------------------------------------------------------
go_cpu_last=$(target_field go process_cpu lastScrape)
cp "$tmp/firn.yml" "$tmp/good.yml"
printf 'scrape_configs:\n  - job_name: go\n    scrape_interval: 1x\n' >"$tmp/firn.yml"
kill -HUP "$FIRN_PID"
reload_failed() { grep -q 'Error reloading config' "$tmp/firn.log"; }
if wait_for 10 reload_failed; then ok "SIGHUP with a broken config is refused"; else fail "no reload error logged"; fi
grep -q 'firn.yml:3:22: scrape_interval' "$tmp/firn.log" && ok "the reload error names file:line:col" ||
    fail "reload error: $(grep 'configuration error' "$tmp/firn.log" | tail -1)"
same "last reload failed (metric)" \
    "$(curl_local "$api/metrics" | awk '/^firn_config_last_reload_successful / { print $2 }')" 0
same "the old config keeps running" "$(targets | jq -r '[.data.activeTargets[].scrapePool] | unique | join(",")')" \
    "dead,garbage,go,huge,notfound,slow"
alive "$FIRN_PID" && ok "firn survived the broken reload" || fail "firn died on a broken reload"

write_config e2e  # the same, without the huge job
kill -HUP "$FIRN_PID"
huge_gone() { [[ $(targets | jq -r '[.data.activeTargets[].scrapePool] | unique | join(",")') == "dead,garbage,go,notfound,slow" ]]; }
if wait_for 10 huge_gone; then ok "SIGHUP with a good config applies it"; else fail "pools after reload: $(targets | jq -c '[.data.activeTargets[].scrapePool] | unique')"; fi
same "last reload succeeded (metric)" \
    "$(curl_local "$api/metrics" | awk '/^firn_config_last_reload_successful / { print $2 }')" 1
# The unchanged jobs keep their pools (loops, delta baselines, health); one stops.
grep -q 'scrape configuration applied.* pools=6 kept=6 started=0 stopped=1' "$tmp/firn.log" &&
    ok "the unchanged pools were kept across the reload" ||
    fail "reload: $(grep 'scrape configuration applied' "$tmp/firn.log" | tail -1)"
# A new pool would start with no scrape (0001-01-01) and take a whole 1 s
# recording to get one: the kept pool's last scrape is the one from before
# the reload or a later one (RFC 3339 in UTC compares as text).
kept=$(target_field go process_cpu lastScrape)
if [[ $kept != 0001-* && ! $kept < $go_cpu_last ]]; then
    ok "the go pool kept its last scrape time ($go_cpu_last, then $kept)"
else
    fail "go pool state reset by reload: last scrape $go_cpu_last before, $kept after"
fi

write_config changed huge
code=$(curl_local -o "$tmp/reload.out" -w '%{http_code}' -X POST "$api/-/reload")
same "POST /-/reload answers 200" "$code" 200
has_new_label() { "$firnctl" tsdb series --match env=changed --match job=go --storage.tsdb.path "$data" | grep -q env; }
if wait_for 30 has_new_label; then ok "profiles carry the reloaded static label"; else fail "no series with env=changed"; fi
printf 'bogus: [' >"$tmp/firn.yml"
code=$(curl_local -o "$tmp/reload.out" -w '%{http_code}' -X POST "$api/-/reload")
same "POST /-/reload with a broken file answers 500" "$code" 500
grep -q '^failed to reload config: ' "$tmp/reload.out" && ok "the reload answer says why" ||
    fail "reload body: $(cat "$tmp/reload.out")"
write_config changed huge

# ---- kill -9 and restart -------------------------------------------------------------
count_profiles() { "$firnctl" tsdb dump --match job=go --storage.tsdb.path "$data" | wc -l; }
before=$(count_profiles)
{ kill -KILL "$FIRN_PID" && wait "$FIRN_PID"; } 2>/dev/null
after=$(count_profiles)
if ((after >= before && before > 0)); then
    ok "after kill -9 the store holds every profile seen before ($after >= $before)"
else
    fail "profiles before kill -9: $before, after: $after"
fi
if ! start_firn "$firn" "$tmp/firn2.log" --config.file="$tmp/firn.yml" \
        --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$data"; then
    fail "restart firn: $(tail -5 "$tmp/firn2.log")"
    finish
    exit 1
fi
api=http://127.0.0.1:$FIRN_PORT
more() { (($(count_profiles) > after)); }
if wait_for 30 more; then ok "scraping resumes after the restart"; else fail "no new profiles after restart"; fi
code=$(curl_local -o "$tmp/reload.out" -w '%{http_code}' -X POST "$api/-/reload")
same "POST /-/reload without --web.enable-lifecycle is forbidden" "$code" 403

# ---- refusing to start ------------------------------------------------------------------
# expect_exit WHAT CODE REGEX ARGS...: firn exits with CODE, its output matching REGEX.
expect_exit() {
    local what=$1 code=$2 re=$3 out rc
    shift 3
    out=$(timeout 20 "$firn" "$@" 2>&1)
    rc=$?
    if [[ $rc == "$code" && $out =~ $re ]]; then ok "$what"; else fail "$what: exit $rc, output: $(tail -2 <<<"$out")"; fi
}
printf 'scrape_configs:\n  - job_name: a\n    bogus: 1\n' >"$tmp/bad.yml"
expect_exit "a broken config file stops startup with its position" 1 'bad.yml:3:5: bogus: unknown field' \
    --config.file="$tmp/bad.yml" --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$tmp/d2"
expect_exit "a port in use stops startup, naming the address" 1 "127.0.0.1:$FIRN_PORT.*in use" \
    --web.listen-address=127.0.0.1:$FIRN_PORT --storage.tsdb.path="$tmp/d3"
expect_exit "a store in use by another firn stops startup" 1 'Opening storage failed' \
    --web.listen-address=127.0.0.1:0 --storage.tsdb.path="$data"
expect_exit "an unknown flag is a usage error" 2 'usage: firn' --bogus

stop_pid "$FIRN_PID"
grep -q 'See you next time' "$tmp/firn2.log" && ok "SIGTERM stops firn cleanly" ||
    fail "shutdown: $(tail -3 "$tmp/firn2.log")"
finish
