#!/bin/bash
# agent.sh FIRN FIRN_AGENT WORKLOAD SRCDIR -- firn-agent end to end, as
# root on a BTF kernel: firn and the agent on loopback, and three processes
# to profile: the C workload spinning in user mode (workload_spin_user) and
# in the kernel (reading /dev/zero), and a Go program (main.spinGo).
# Within ~30 s firn must hold each one's profiles, found by pid and comm
# labels, hottest function first with file:line (C and Go), kernel frames
# for the kernel workload; each drain's profiles in one request to firn.
# Then firn goes away: the agent keeps
# sampling, drops what exceeds its (small) push buffer and counts it, and
# pushes again once firn is back.
# Without root or BTF the test is skipped (exit 77, ctest's SKIP_RETURN_CODE).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
FIRN=$1 AGENT=$2 WORKLOAD=$3 SRCDIR=$4

need_bpf

e2e_workspace
CPU_TYPE='process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta'

# profile FORMAT SELECTOR [OUT]: firn's merged profile of the last 10 minutes.
profile() {
    local now
    now=$(date +%s)
    curl_local --fail -G "http://127.0.0.1:$FIRN_PORT/api/v1/profile" \
        --data-urlencode "query=$CPU_TYPE$2" --data-urlencode "start=$((now - 600))" \
        --data-urlencode "end=$((now + 60))" --data-urlencode "format=$1" ${3:+-o "$3"}
}
# hottest SELECTOR: the name of the top row (largest flat).
hottest() { profile top "$1" | jq -r '.data.rows[0].name // empty'; }
hottest_is() { [ "$(hottest "$1")" = "$2" ]; }
# hottest_line_is SELECTOR FUNCTION FILE: the top line of `go tool pprof
# -top -lines` is FUNCTION at FILE:LINE.
hottest_line_is() {
    local line
    profile pprof "$1" "$tmp/hottest.pb.gz"
    line=$(go tool pprof -top -lines -nodecount=1 "$tmp/hottest.pb.gz" 2>/dev/null |
        awk '/flat%/ { getline; print; exit }')
    if [[ $line == *"$2 "*"$3:"[0-9]* ]]; then
        ok "$2's hottest line has file:line: ${line##* }"
    else
        fail "want $2 with $3:LINE, got '$line'"
    fi
}
metric() {
    curl_local "http://127.0.0.1:$AGENT_PORT/metrics" |
        awk -v m="$1" '$1 == m { print $2 }'
}
metric_above() { local v; v=$(metric "$1"); [ -n "$v" ] && awk -v v="$v" -v t="$2" 'BEGIN { exit !(v > t) }'; }

# -- clear errors where the agent cannot run
if command -v setpriv >/dev/null; then
    out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$AGENT" \
        --http-address=127.0.0.1:0 2>&1)
    rc=$?
    [[ $rc -eq 1 && $out == *"needs root"* ]] && ok "without privileges: exit 1, says it needs root" ||
        fail "without privileges: exit $rc: $(printf '%s' "$out" | tail -2)"
fi
out=$("$AGENT" --sampling-frequency=0 2>&1)
[[ $? -eq 2 && $out == *"--sampling-frequency"* ]] && ok "bad flag: exit 2 naming it" ||
    fail "bad flag: $out"
printf 'relabel_configs:\n  - action: bogus\n' >"$tmp/bad.yaml"
out=$("$AGENT" --config-path="$tmp/bad.yaml" 2>&1)
[[ $? -eq 1 && $out == *"bad.yaml:2:"*"unknown relabel action"* ]] &&
    ok "bad agent config: exit 1 naming file:line" || fail "bad agent config: $out"

start_firn "$FIRN" "$tmp/firn.log" --web.listen-address=127.0.0.1:0 \
    --storage.tsdb.path="$tmp/data" || { fail "firn starts: $(tail -3 "$tmp/firn.log")"; finish; exit 1; }

# relabel_configs keep only the processes of this test: a busy machine's
# others would fill the small push buffer even while firn is up.
cat >"$tmp/agent.yaml" <<'EOF2'
relabel_configs:
  - source_labels: [comm]
    regex: agent_workload|gospin.bin
    action: keep
  - source_labels: [comm]
    target_label: program
EOF2
"$AGENT" --remote-store-address="http://127.0.0.1:$FIRN_PORT" --http-address=127.0.0.1:0 \
    --profiling-duration=2s --push-buffer-profiles=4 --external-label=team=infra \
    --config-path="$tmp/agent.yaml" \
    >"$tmp/agent.log" 2>&1 &
AGENT_PID=$!
track_pid "$AGENT_PID"
if ! wait_for 30 grep -q 'agent is ready' "$tmp/agent.log"; then
    fail "firn-agent starts: $(tail -5 "$tmp/agent.log")"
    finish
    exit 1
fi
AGENT_PORT=$(sed -n 's/.*agent is ready.* http_port=\([0-9]*\).*/\1/p' "$tmp/agent.log")
ok "firn-agent starts and serves /metrics on port $AGENT_PORT"

"$WORKLOAD" cpu >"$tmp/user.out" 2>&1 &
track_pid $!
USER_PID=$!
"$WORKLOAD" kernel >"$tmp/kernel.out" 2>&1 &
track_pid $!
KERNEL_PID=$!
mkdir -p "$tmp/gospin"
cp "$SRCDIR/test/agent/gospin/main.go" "$SRCDIR/test/agent/gospin/go.mod" "$tmp/gospin/"
if (cd "$tmp/gospin" && timeout 300 go build -o "$tmp/gospin.bin" .) >"$tmp/gobuild.log" 2>&1; then
    "$tmp/gospin.bin" >"$tmp/go.out" 2>&1 &
    track_pid $!
    GO_PID=$!
else
    GO_PID=
    fail "building the Go program: $(tail -3 "$tmp/gobuild.log")"
fi

if command -v promtool >/dev/null; then
    check "promtool check metrics accepts the agent's /metrics" bash -c \
        "curl --noproxy '*' -sf http://127.0.0.1:$AGENT_PORT/metrics | promtool check metrics"
fi

# -- the C workload in user mode: hottest function, with file:line
sel="{pid=\"$USER_PID\",comm=\"agent_workload\",program=\"agent_workload\",job=\"firn-agent\",team=\"infra\"}"
if wait_for 40 hottest_is "$sel" workload_spin_user; then
    ok "firn holds the agent's profiles of the C workload (pid $USER_PID), workload_spin_user hottest"
else
    fail "C workload's hottest function: got '$(hottest "$sel")': $(profile top "$sel" | head -c 400)"
fi
hottest_line_is "$sel" workload_spin_user workload.c
check "profile has the labels pid, comm, executable, node" bash -c \
    "curl --noproxy '*' -sf -G 'http://127.0.0.1:$FIRN_PORT/api/v1/series' \
        --data-urlencode 'match[]=$CPU_TYPE$sel' |
     jq -e '.data[0] | .pid and .comm and (.executable | endswith(\"workload\")) and .node'"
check "relabel_configs dropped the other processes" bash -c \
    "curl --noproxy '*' -sf 'http://127.0.0.1:$FIRN_PORT/api/v1/label/comm/values' |
     jq -e '.data - [\"agent_workload\", \"gospin.bin\"] == []'"
check "both Go CPU profile types stored" bash -c \
    "curl --noproxy '*' -sf -G 'http://127.0.0.1:$FIRN_PORT/api/v1/series' \
        --data-urlencode 'match[]={pid=\"$USER_PID\"}' |
     jq -e '[.data[].__name__] | sort == [\"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta\",
                                         \"process_cpu:samples:count:cpu:nanoseconds:delta\"]'"

check "no off-CPU profiles without --off-cpu" bash -c \
    "curl --noproxy '*' -sf -G 'http://127.0.0.1:$FIRN_PORT/api/v1/series' \
        --data-urlencode 'match[]={__name__=~\"off_cpu:.*\"}' | jq -e '.data == []'"

# -- the kernel workload: kernel frames
ksel="{pid=\"$KERNEL_PID\"}"
has_kernel_read() { profile collapsed "$ksel" | grep -Eq '(ksys_read|vfs_read)'; }
if wait_for 40 has_kernel_read; then
    ok "kernel workload's stacks hold kernel frames: $(profile collapsed "$ksel" |
        sort -t' ' -k2 -n -r | head -1 | tr ';' '\n' | grep -E 'read' | head -3 | tr '\n' ' ')"
else
    fail "no ksys_read/vfs_read in the kernel workload: $(profile collapsed "$ksel" | head -3)"
fi

# -- Go
if [ -n "$GO_PID" ]; then
    if wait_for 40 hottest_is "{pid=\"$GO_PID\"}" main.spinGo; then
        ok "Go functions symbolized: main.spinGo hottest in the Go program"
    else
        fail "Go program's hottest: '$(hottest "{pid=\"$GO_PID\"}")'"
    fi
    # Go writes no .debug_aranges (and compresses its DWARF): file:line
    # needs the agent's own CU index.
    hottest_line_is "{pid=\"$GO_PID\"}" main.spinGo main.go
    # main.spinGo is a leaf without a frame (Go sets up rbp only in
    # functions with one), so a frame-pointer walk skips its caller:
    # main.main is there only through the table of the Go binary's
    # .debug_frame
    go_main() { profile collapsed "{pid=\"$GO_PID\"}" | grep -Eq '(^|;)main\.main;main\.spinGo( |;)'; }
    check "the Go program's stacks of its frameless leaf reach main.main (its unwind table)" \
        wait_for 40 go_main
fi

# -- firn away: the agent keeps sampling, drops past its buffer, counts it
check "no push errors while firn runs" [ "$(metric 'firn_agent_pushes_total{result="error"}')" = 0 ]
# -- one push per drain: firn counts the ingest requests, the agent its
# drains and the profiles firn stored (three processes a drain)
requests=$(curl_local "http://127.0.0.1:$FIRN_PORT/metrics" |
    awk '/^firn_http_requests_total\{.*handler="\/api\/v1\/ingest"/ { s += $2 } END { print s + 0 }')
drains=$(metric firn_agent_drains_total)
pushed=$(metric firn_agent_profiles_pushed_total)
if [ "$requests" -ge 1 ] && [ "$requests" -le $((drains + 1)) ] && [ "$pushed" -gt "$requests" ]; then
    ok "one push per drain: $requests ingest requests at firn for $drains drains, $pushed profiles stored"
else
    fail "ingest requests at firn $requests, drains $drains, profiles stored $pushed"
fi
dropped_before=$(metric 'firn_agent_profiles_dropped_total{reason="buffer_full"}')
stop_pid "$FIRN_PID"
samples_before=$(metric firn_agent_samples_total)
wait_for 60 metric_above 'firn_agent_profiles_dropped_total{reason="buffer_full"}' "$dropped_before" &&
    ok "firn down: profiles past the push buffer dropped and counted ($dropped_before before, \
$(metric 'firn_agent_profiles_dropped_total{reason="buffer_full"}') now)" ||
    fail "firn down: nothing dropped: $(curl_local "http://127.0.0.1:$AGENT_PORT/metrics" | grep -E 'push|dropped')"
wait_for 30 metric_above 'firn_agent_pushes_total{result="error"}' 0 && ok "failed pushes counted" ||
    fail "failed pushes not counted"
wait_for 30 metric_above firn_agent_samples_total "$samples_before" &&
    ok "sampling goes on while firn is down" || fail "sampling stopped while firn was down"
buffered=$(metric firn_agent_push_buffer_profiles)
[ "${buffered:-99}" -le 4 ] && ok "push buffer stays within its bound (4): $buffered" ||
    fail "push buffer holds $buffered profiles, bound 4"
check "agent still alive" alive "$AGENT_PID"

# -- firn back on the same port: pushing resumes
ok_before=$(metric 'firn_agent_pushes_total{result="success"}')
firn_log "$tmp/firn2.log"
"$FIRN" --web.listen-address="127.0.0.1:$FIRN_PORT" --storage.tsdb.path="$tmp/data" \
    >"$tmp/firn2.log" 2>&1 &
FIRN_PID=$!
track_pid "$FIRN_PID"
if wait_for 60 metric_above 'firn_agent_pushes_total{result="success"}' "$ok_before"; then
    ok "pushing resumes once firn is back"
else
    fail "no push succeeded after firn came back: $(tail -3 "$tmp/agent.log")"
fi

stop_pid "$AGENT_PID" TERM
grep -q 'See you next time' "$tmp/agent.log" && ok "agent stops cleanly on SIGTERM" ||
    fail "agent did not stop cleanly: $(tail -3 "$tmp/agent.log")"
finish
