#!/bin/bash
# agent_unwind.sh FIRN FIRN_AGENT UNWIND_WORKLOAD -- firn-agent's unwind
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
# Without root or BTF the test is skipped (exit 77).
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"
FIRN=$1 AGENT=$2 WORKLOAD=$3

need_bpf

e2e_workspace
CPU_TYPE='process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta'
# the chain the workload's source makes (collapsed: root first, kernel
# frames, if any, after the leaf)
CHAIN='^_start;__libc_start_main;([^;]+;)*main;unwind_sort;[^;]*qsort[^;]*;([^;]+;)*unwind_compare;unwind_spin(;|$)'

# collapsed UNWINDER [START]: firn's merged collapsed profile of the
# workload from that agent, since START (epoch seconds; default 10 min ago).
collapsed() {
    local now
    now=$(date +%s)
    curl_local --fail -G "http://127.0.0.1:$FIRN_PORT/api/v1/profile" \
        --data-urlencode "query=$CPU_TYPE{pid=\"$UW_PID\",unwinder=\"$1\"}" \
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
# each agent keeps only the workload's profiles
printf 'relabel_configs:\n  - source_labels: [pid]\n    regex: "%s"\n    action: keep\n' \
    "$UW_PID" >"$tmp/agent.yaml"

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
start_agent table
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

# -- the peer: perf's DWARF unwinder on the same process finds the chain
if command -v perf >/dev/null; then
    # the recording's length, not a wait for something to happen
    perf record -q -F 49 --call-graph dwarf -p "$UW_PID" -o "$tmp/perf.data" -- sleep 3 \
        >"$tmp/perf.log" 2>&1
    perf script -i "$tmp/perf.data" -F ip,sym 2>/dev/null >"$tmp/perf.txt"
    # each sample: "ADDRESS FUNCTION" a line, leaf first, a blank line
    # after; kernel frames (ffffffff...) left out
    peer=$(awk 'NF == 0 { if (s != "") print s; s = ""; next }
                $1 !~ /^ffffffff/ { s = (s == "" ? $2 : s ";" $2) }
                END { if (s != "") print s }' "$tmp/perf.txt" |
        grep -E '^unwind_spin;unwind_compare;([^;]+;)*[^;]*qsort[^;]*;unwind_sort;main(;|$)' |
        head -1)
    [ -n "$peer" ] && ok "perf --call-graph dwarf finds the chain too (leaf first): $peer" ||
        fail "perf --call-graph dwarf: no unwind_spin stack through qsort to main: \
$(head -c 300 "$tmp/perf.txt")"
fi
finish
