#!/bin/bash
# agent_unwind.sh FIRN FIRN_AGENT UNWIND_WORKLOAD SIGNAL_WORKLOAD -- firn-agent's unwind
# tables against the real kernel, as root on a BTF kernel.  The workload
# (test/agent/unwind_workload.c, -O2 -fomit-frame-pointer) spins in
# unwind_spin, called by unwind_compare, which Debian's libc qsort calls
# back from unwind_sort, called by main: by its source, every stack of
# unwind_spin is
#   _start; __libc_start_main; ...; main; unwind_sort; qsort...; ...;
#   unwind_compare; unwind_spin
# Two agents sample it at once, pushing to one firn: one with unwind tables
# (the default), one with --dwarf-unwinding=false (frame pointers only).
# Once the first agent's tables are loaded, every stack of unwind_spin it
# pushes must be that chain; the frame-pointer agent must have none (what
# the tables fix).  perf record --call-graph dwarf (perf's own DWARF
# unwinder) confirms the chain on the same process.
# A second workload (test/agent/signal_workload.c, also -O2
# -fomit-frame-pointer) spends much of its time in a SIGPROF handler: the
# table agent's stacks of the handler's hot function must continue through
# the signal frame (one frame: libc's __restore_rt) to the interrupted
# function and main, as perf --call-graph dwarf unwinds them.
# Without root or BTF the test is skipped (exit 77).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
FIRN=$1 AGENT=$2 WORKLOAD=$3 SIGNAL_WORKLOAD=$4

need_bpf

e2e_workspace
CPU_TYPE='process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta'
# the chain the workload's source makes (collapsed: root first, kernel
# frames, if any, after the leaf)
CHAIN='^_start;__libc_start_main;([^;]+;)*main;unwind_sort;[^;]*qsort[^;]*;([^;]+;)*unwind_compare;unwind_spin(;|$)'

# the signal workload's: the handler's leaf, the trampoline (one frame),
# the interrupted function
SIG_CHAIN='^_start;__libc_start_main;([^;]+;)*main;signal_run;signal_outer;[^;]+;signal_handler;signal_inner(;|$)'

# collapsed UNWINDER [START] [PID]: firn's merged collapsed profile of the
# workload (PID: default the unwind workload's) from that agent, since
# START (epoch seconds; default 10 min ago).
collapsed() {
    local now
    now=$(date +%s)
    curl_local --fail -G "http://127.0.0.1:$FIRN_PORT/api/v1/profile" \
        --data-urlencode "query=$CPU_TYPE{pid=\"${3:-$UW_PID}\",unwinder=\"$1\"}" \
        --data-urlencode "start=${2:-$((now - 600))}" --data-urlencode "end=$((now + 60))" \
        --data-urlencode "format=collapsed"
}
# spin_stacks UNWINDER [START]: the stacks holding unwind_spin.
spin_stacks() { collapsed "$@" | grep -E '(^|;)unwind_spin(;| )'; }
has_chain() { spin_stacks table | sed 's/ [0-9]*$//' | grep -Eq "$CHAIN"; }
metric() {
    curl_local "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'
}

start_firn "$FIRN" "$tmp/firn.log" --web.listen-address=127.0.0.1:0 \
    --storage.tsdb.path="$tmp/data" || { fail "firn starts: $(tail -3 "$tmp/firn.log")"; finish; exit 1; }

"$WORKLOAD" >"$tmp/workload.out" 2>&1 &
UW_PID=$!
track_pid "$UW_PID"
wait_for 10 grep -q ready "$tmp/workload.out" || { fail "workload starts"; finish; exit 1; }
"$SIGNAL_WORKLOAD" >"$tmp/signal.out" 2>&1 &
SIG_PID=$!
track_pid "$SIG_PID"
wait_for 10 grep -q ready "$tmp/signal.out" ||
    { fail "signal workload starts: $(cat "$tmp/signal.out")"; finish; exit 1; }
# each agent keeps only the workloads' profiles
printf 'relabel_configs:\n  - source_labels: [pid]\n    regex: "%s|%s"\n    action: keep\n' \
    "$UW_PID" "$SIG_PID" >"$tmp/agent.yaml"

# start_agent NAME ARGS...: an agent labelling its profiles unwinder=NAME;
# its /metrics port in PORT_NAME.
start_agent() {
    local name=$1
    shift
    "$AGENT" --remote-store-address="http://127.0.0.1:$FIRN_PORT" --http-address=127.0.0.1:0 \
        --profiling-duration=2s --external-label=unwinder="$name" \
        --config-path="$tmp/agent.yaml" "$@" >"$tmp/agent-$name.log" 2>&1 &
    track_pid $!
    if ! wait_for 60 grep -q 'agent is ready' "$tmp/agent-$name.log"; then
        fail "firn-agent ($name) starts: $(tail -5 "$tmp/agent-$name.log")"
        finish
        exit 1
    fi
    printf -v "PORT_$name" '%s' \
        "$(sed -n 's/.*agent is ready.* http_port=\([0-9]*\).*/\1/p' "$tmp/agent-$name.log")"
}
start_agent table --log.level=debug   # its tables, one log line each
start_agent fp --dwarf-unwinding=false
ok "two agents start: tables (/metrics on $PORT_table) and frame pointers only ($PORT_fp)"

# -- unwind tables: the whole chain
if wait_for 90 has_chain; then
    ok "unwind tables give the whole chain: $(spin_stacks table | sed 's/ [0-9]*$//' |
        grep -E "$CHAIN" | head -1)"
else
    fail "no stack of unwind_spin reaches _start and main through qsort: $(spin_stacks table |
        sort -t' ' -k2 -nr | head -3)"
fi
# From now on the workload's tables are loaded: every stack of unwind_spin
# pushed by profiles that start later must be the chain.
since=$(($(date +%s) + 1))
later_stacks() { [ -n "$(spin_stacks table "$since")" ]; }
if wait_for 60 later_stacks; then
    total=$(spin_stacks table "$since" | awk '{ s += $NF } END { print s + 0 }')
    bad=$(spin_stacks table "$since" | sed 's/ [0-9]*$//' | grep -Ev "$CHAIN")
    if [ -z "$bad" ]; then
        ok "every stack of unwind_spin since the tables loaded is the chain ($total ns sampled)"
    else
        fail "stacks of unwind_spin that are not the chain: $(printf '%s' "$bad" | head -3)"
    fi
else
    fail "no profile of the workload after the tables loaded"
fi

# -- through a signal frame: the handler's stacks reach main
sig_stacks() { collapsed table "" "$SIG_PID" | grep -E '(^|;)signal_inner(;| )'; }
sig_chain() { sig_stacks | sed 's/ [0-9]*$//' | grep -Eq "$SIG_CHAIN"; }
if wait_for 90 sig_chain; then
    ok "a stack sampled in the signal handler continues through the signal frame to main: \
$(sig_stacks | sed 's/ [0-9]*$//' | grep -E "$SIG_CHAIN" | head -1)"
    # every stack of the handler since the tables loaded is that chain
    since=$(($(date +%s) + 1))
    later_sig() { [ -n "$(collapsed table "$since" "$SIG_PID" | grep -E '(^|;)signal_inner(;| )')" ]; }
    if wait_for 60 later_sig; then
        bad=$(collapsed table "$since" "$SIG_PID" | grep -E '(^|;)signal_inner(;| )' |
            sed 's/ [0-9]*$//' | grep -Ev "$SIG_CHAIN")
        [ -z "$bad" ] && ok "every later stack of signal_inner is that chain" ||
            fail "stacks of signal_inner that are not the chain: $(printf '%s' "$bad" | head -3)"
    else
        fail "no later profile of the signal workload"
    fi
else
    fail "no stack of signal_inner reaches main through the signal frame: \
$(sig_stacks | sort -t' ' -k2 -nr | head -3)"
fi

# -- frame pointers only: the same process, cut short
fp_stacks() { [ -n "$(spin_stacks fp)" ]; }
if wait_for 60 fp_stacks; then
    full=$(spin_stacks fp | sed 's/ [0-9]*$//' | grep -Ec "$CHAIN")
    reach_main=$(spin_stacks fp | grep -Ec '(^|;)main;')
    [ "$full" -eq 0 ] && [ "$reach_main" -eq 0 ] &&
        ok "--dwarf-unwinding=false (frame pointers): no stack of unwind_spin reaches main: \
$(spin_stacks fp | sort -t' ' -k2 -nr | head -1)" ||
        fail "frame pointers gave $full whole chains, $reach_main reaching main"
else
    fail "the frame-pointer agent pushed no stack of unwind_spin"
fi
check "the frame-pointer agent loads no table" [ "$(metric "$PORT_fp" firn_agent_unwind_tables)" = 0 ]

# -- the counters of the table agent
above0() { awk -v v="$(metric "$PORT_table" "$1")" 'BEGIN { exit !(v > 0) }'; }
check "stacks walked with tables counted" above0 'firn_agent_user_stacks_walked_total{unwinder="table"}'
if above0 firn_agent_unwind_tables && above0 firn_agent_unwind_table_rows &&
    above0 firn_agent_unwind_table_bytes; then
    ok "tables, rows and bytes in BPF maps counted: $(metric "$PORT_table" firn_agent_unwind_tables) \
tables, $(metric "$PORT_table" firn_agent_unwind_table_rows) rows, \
$(metric "$PORT_table" firn_agent_unwind_table_bytes) bytes"
else
    fail "unwind table gauges: $(curl_local "http://127.0.0.1:$PORT_table/metrics" | grep unwind_table)"
fi
if command -v promtool >/dev/null; then
    check "promtool check metrics accepts the agent's /metrics" bash -c \
        "curl --noproxy '*' -sf http://127.0.0.1:$PORT_table/metrics | promtool check metrics"
fi

# -- tables only for the files sampled stacks pass through: both workloads
# map the dynamic loader, which none of their stacks reaches once they run
# (their calls into libc were bound before they said ready), so it gets no
# table, while the workload and libc, on every stack of unwind_spin, do
tables=$(sed -n 's/.*msg="unwind table loaded".* path=\([^ ]*\) .*/\1/p' "$tmp/agent-table.log")
ldso=$(awk '$6 ~ /\/ld-linux/ { print $6; exit }' "/proc/$UW_PID/maps")
libc=$(awk '$6 ~ /\/libc\.so/ { print $6; exit }' "/proc/$UW_PID/maps")
if [ -z "$ldso" ] || [ -z "$libc" ]; then
    fail "the workload maps no ld-linux or libc: $(awk '{ print $6 }' "/proc/$UW_PID/maps" | sort -u | tr '\n' ' ')"
else
    check "the workload and libc got tables" \
        bash -c "grep -qxF '$(readlink -f "/proc/$UW_PID/exe")' <<<'$tables' && grep -qxF '$libc' <<<'$tables'"
    check "the dynamic loader, mapped but on no stack, got none ($ldso)" \
        bash -c "! grep -qxF '$ldso' <<<'$tables'"
fi

# -- the peer: perf's DWARF unwinder on the same processes
# perf_stacks PID NAME: 3 s of perf record --call-graph dwarf of PID, one
# stack a line, leaf first, kernel frames (ffffffff...) left out
perf_stacks() {
    # the recording's length, not a wait for something to happen
    perf record -q -F 49 --call-graph dwarf -p "$1" -o "$tmp/perf-$2.data" -- sleep 3 \
        >"$tmp/perf-$2.log" 2>&1
    # perf script: "ADDRESS FUNCTION" a line, leaf first, a blank line after each sample
    perf script -i "$tmp/perf-$2.data" -F ip,sym 2>/dev/null | tee "$tmp/perf-$2.txt" |
        awk 'NF == 0 { if (s != "") print s; s = ""; next }
             $1 !~ /^ffffffff/ { s = (s == "" ? $2 : s ";" $2) }
             END { if (s != "") print s }'
}
if command -v perf >/dev/null; then
    peer=$(perf_stacks "$UW_PID" unwind |
        grep -E '^unwind_spin;unwind_compare;([^;]+;)*[^;]*qsort[^;]*;unwind_sort;main(;|$)' |
        head -1)
    [ -n "$peer" ] && ok "perf --call-graph dwarf finds the chain too (leaf first): $peer" ||
        fail "perf --call-graph dwarf: no unwind_spin stack through qsort to main: \
$(head -c 300 "$tmp/perf-unwind.txt")"
    peer=$(perf_stacks "$SIG_PID" signal |
        grep -E '^signal_inner;signal_handler;[^;]+;signal_outer;signal_run;main(;|$)' | head -1)
    [ -n "$peer" ] && ok "perf --call-graph dwarf unwinds the signal frame the same way: $peer" ||
        fail "perf --call-graph dwarf: no signal_inner stack through the signal frame to main: \
$(head -c 300 "$tmp/perf-signal.txt")"
fi
finish
