#!/bin/bash
# agent_offcpu.sh FIRN FIRN_AGENT OFFCPU_WORKLOAD -- firn-agent's off-CPU
# profiles against the real kernel, as root on a BTF kernel.  The workload
# (test/agent/offcpu_workload.c) alternates 20 ms of spinning with 20 ms
# of nanosleep and measures the time it slept itself; the agent runs with
# --off-cpu.  Once the agent walks the workload's stacks with its tables
# (its warm-up sleeps show main;warmup_sleep), the workload is told to
# measure: the off-CPU time firn holds for stacks through offcpu_sleep
# must be within 10% of what the workload measured, and its spinning
# (preempted, never blocked) must not count as off-CPU time.
# Without root or BTF the test is skipped (exit 77).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
FIRN=$1 AGENT=$2 WORKLOAD=$3

need_bpf

e2e_workspace
OFF_TYPE='off_cpu:wait:nanoseconds:wait:nanoseconds:delta'
MEASURE_SECONDS=6

# collapsed TYPE: firn's merged collapsed profile of the workload.
collapsed() {
    local now
    now=$(date +%s)
    curl_local --fail -G "http://127.0.0.1:$FIRN_PORT/api/v1/profile" \
        --data-urlencode "query=$1{pid=\"$W_PID\"}" \
        --data-urlencode "start=$((now - 600))" --data-urlencode "end=$((now + 60))" \
        --data-urlencode "format=collapsed"
}
# wait_ns PATTERN: the off-CPU nanoseconds of the stacks matching PATTERN
# (the value is the last field: frame names may hold spaces).
wait_ns() { collapsed "$OFF_TYPE" | grep -E "$1" | awk '{ s += $NF } END { printf "%.0f", s }'; }
warm() { collapsed "$OFF_TYPE" | grep -Eq '(^|;)main;warmup_sleep;'; }

start_firn "$FIRN" "$tmp/firn.log" --web.listen-address=127.0.0.1:0 \
    --storage.tsdb.path="$tmp/data" || { fail "firn starts: $(tail -3 "$tmp/firn.log")"; finish; exit 1; }
"$WORKLOAD" "$MEASURE_SECONDS" >"$tmp/workload.out" 2>&1 &
W_PID=$!
track_pid "$W_PID"
wait_for 10 grep -q ready "$tmp/workload.out" || { fail "workload starts"; finish; exit 1; }
printf 'relabel_configs:\n  - source_labels: [pid]\n    regex: "%s"\n    action: keep\n' \
    "$W_PID" >"$tmp/agent.yaml"
"$AGENT" --remote-store-address="http://127.0.0.1:$FIRN_PORT" --http-address=127.0.0.1:0 \
    --profiling-duration=2s --off-cpu --config-path="$tmp/agent.yaml" >"$tmp/agent.log" 2>&1 &
track_pid $!
if ! wait_for 60 grep -q 'agent is ready' "$tmp/agent.log"; then
    fail "firn-agent --off-cpu starts: $(tail -5 "$tmp/agent.log")"
    finish
    exit 1
fi
AGENT_PORT=$(sed -n 's/.*agent is ready.* http_port=\([0-9]*\).*/\1/p' "$tmp/agent.log")
ok "firn-agent --off-cpu starts"
metric() { curl_local "http://127.0.0.1:$AGENT_PORT/metrics" | awk -v m="$1" '$1 == m { print $2 }'; }

if wait_for 90 warm; then
    ok "blocked stacks walked to main: $(collapsed "$OFF_TYPE" | grep -E ';warmup_sleep;' |
        head -1 | cut -d';' -f1-12)"
else
    fail "no off-CPU stack main;warmup_sleep: $(collapsed "$OFF_TYPE" | head -3)"
fi
kill -USR1 "$W_PID"
if wait_for $((MEASURE_SECONDS + 30)) grep -q slept_ns "$tmp/workload.out"; then
    slept=$(awk '/^slept_ns/ { print $2 }' "$tmp/workload.out")
    ok "the workload slept $slept ns in offcpu_sleep in ${MEASURE_SECONDS}s"
else
    fail "the workload did not finish: $(cat "$tmp/workload.out")"
    finish
    exit 1
fi
# Every block ended before the workload exited: two drains later (the one
# under way may have flipped before the last block ended) they are all in
# profiles, and once firn stored every profile built, they are in firn.
drains=$(metric firn_agent_drains_total)
drained() {
    [ "$(metric firn_agent_drains_total)" -ge $((drains + 2)) ] &&
        [ "$(metric firn_agent_profiles_pushed_total)" = "$(metric firn_agent_profiles_total)" ]
}
wait_for 30 drained || fail "the agent did not drain twice and push what it built: \
$(metric firn_agent_drains_total) drains (from $drains), $(metric firn_agent_profiles_pushed_total) \
of $(metric firn_agent_profiles_total) profiles stored"
# within10 A B: A is within 10% of B
within10() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(b > 0 && d <= b / 10) }'; }
sleep_stacks='(^|;)main;offcpu_sleep;'
if within10 "$(wait_ns "$sleep_stacks")" "$slept"; then
    ok "off-CPU time of offcpu_sleep within 10% of what the workload measured: \
$(wait_ns "$sleep_stacks") ns against $slept ns"
else
    fail "off-CPU time of offcpu_sleep $(wait_ns "$sleep_stacks") ns, the workload measured $slept ns"
fi
spin=$(wait_ns '(^|;)offcpu_spin(;| )')
awk -v s="$spin" -v t="$slept" 'BEGIN { exit !(s <= t / 100) }' &&
    ok "spinning (preempted, not blocked) is not off-CPU time: $spin ns" ||
    fail "offcpu_spin has $spin ns of off-CPU time"
# The kernel stack is read from the blocked thread (bpf_get_task_stack),
# which leaves out the scheduler's own functions (.sched.text: do_nanosleep,
# schedule, __schedule): the stack ends in the system call's last other one.
check "the stacks end in the kernel's sleep, not in the probe" bash -c \
    "$(declare -f collapsed curl_local); W_PID=$W_PID FIRN_PORT=$FIRN_PORT OFF_TYPE=$OFF_TYPE;
     collapsed $OFF_TYPE | grep -E ';offcpu_sleep;' |
         grep -q '__x64_sys_clock_nanosleep;common_nsleep;hrtimer_nanosleep [0-9]*\$' &&
     ! collapsed $OFF_TYPE | grep -qE 'bpf_trace_run|\\[bpf\\]'"
check "both off-CPU profile types stored" bash -c \
    "curl --noproxy '*' -sf -G 'http://127.0.0.1:$FIRN_PORT/api/v1/series' \
        --data-urlencode 'match[]={pid=\"$W_PID\",__name__=~\"off_cpu:.*\"}' |
     jq -e '[.data[].__name__] | sort == [\"off_cpu:switches:count:wait:nanoseconds:delta\",
                                         \"off_cpu:wait:nanoseconds:wait:nanoseconds:delta\"]'"
cpu_hot() { collapsed 'process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta' | grep -q 'offcpu_spin'; }
check "the CPU profile of the same process has its spinning" cpu_hot
finish
