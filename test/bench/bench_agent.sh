#!/usr/bin/env bash
# bench_agent.sh -- firn-agent's overhead against `perf record`: a
# CPU-bound workload (test/agent/workload.c, user mode) runs for S seconds
# three ways -- without profiling, under firn-agent, and under
# `perf record -F HZ -a -g` -- and the script reports what each profiler
# cost.
#
# usage: bench_agent.sh FIRN FIRN_AGENT WORKLOAD [--seconds S] [--frequency HZ]
#
#   --seconds S      length of each run (default 60)
#   --frequency HZ   sampling frequency of both profilers (default 19)
#
# firn-agent pushes to a firn started here (firn's own CPU is not counted),
# draining every 10 s as by default.  Each profiler's CPU is counted two
# ways:
#   *_cpu_s_per_min         its whole run, from start to exit (getrusage of
#                           the waited child, via bash's `times`): startup
#                           (the agent loads its BPF program and reads
#                           kallsyms; perf synthesizes every process's
#                           mappings), the run, and the exit (perf writes
#                           its build-id table) -- the CPU it took to
#                           profile the minute;
#   *_steady_cpu_s_per_min  only while the workload runs, from the
#                           scheduler's ns counters of its threads
#                           (/proc/PID/task/*/schedstat).
# Both are per minute of workload.  Memory is the peak RSS (VmHWM).  The
# workload's work is its loop iterations; slowdown is the drop against the
# run without profiling (noise can make it negative: printed as 0).
#
# Prints on standard output one `figure_name value` per line:
#   seconds, frequency_hz, baseline_iterations, agent_cpu_s_per_min,
#   agent_steady_cpu_s_per_min, agent_rss_mb, workload_slowdown_pct,
#   perf_cpu_s_per_min, perf_steady_cpu_s_per_min, perf_rss_mb,
#   perf_workload_slowdown_pct, agent_vs_perf_cpu_ratio (whole runs),
#   agent_cpu_pct_of_core, agent_fp_cpu_s_per_min,
#   agent_fp_steady_cpu_s_per_min, agent_fp_rss_mb, perf_dwarf_cpu_s_per_min,
#   perf_dwarf_steady_cpu_s_per_min, perf_dwarf_rss_mb,
#   perf_dwarf_workload_slowdown_pct, agent_vs_perf_dwarf_cpu_ratio,
#   agent_bpf_map_mb (what the kernel charges for the agent's maps),
#   agent_unwind_tables, agent_unwind_table_mb, agent_table_walked_stacks,
#   agent_push_requests, agent_profiles_pushed (one request a drain);
#   with --offcpu-workload (test/agent/offcpu_workload.c): its ping-pong
#   under the agent and under the agent with --off-cpu for S seconds each:
#   pingpong_switches_per_s, offcpu_pingpong_slowdown_pct,
#   offcpu_ns_per_switch (the time a round trip gained over its switches),
#   offcpu_pct_of_core_at_10k_switches
# Needs root (BPF and system-wide perf events): exits 77 without it.
# Progress goes to standard error; whatever the script starts it stops.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
SRCDIR=$(cd "$HERE/../.." && pwd)
. "$SRCDIR/test/e2e/lib.sh"

usage() {
    echo "usage: bench_agent.sh FIRN FIRN_AGENT WORKLOAD [--seconds S] [--frequency HZ]" \
        "[--offcpu-workload OFFCPU_WORKLOAD]" >&2
    exit 2
}
die() {
    echo "bench_agent: $*" >&2
    exit 1
}
note() { echo "bench_agent: $*" >&2; }

[ $# -ge 3 ] || usage
FIRN=$1 AGENT=$2 WORKLOAD=$3
shift 3
SECONDS_RUN=60
HZ=19
OFFCPU=
while [ $# -gt 0 ]; do
    case $1 in
    --seconds) SECONDS_RUN=$2; shift 2 ;;
    --frequency) HZ=$2; shift 2 ;;
    --offcpu-workload) OFFCPU=$2; shift 2 ;;
    *) usage ;;
    esac
done
[[ $SECONDS_RUN =~ ^[0-9]+$ && $SECONDS_RUN -gt 0 && $HZ =~ ^[0-9]+$ && $HZ -gt 0 ]] || usage
if [ "$(id -u)" -ne 0 ]; then
    note "SKIP: needs root (BPF programs and system-wide perf events)"
    exit 77
fi
command -v perf >/dev/null || die "perf not found (Debian package linux-perf)"

e2e_workspace
# steady_ns PID: on-CPU ns of the process's threads so far.
steady_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%d", s }'; }
# mark_children NAME: note the user+sys time of this shell's waited children
# (`times`, run in this shell: a subshell's children start at zero);
# children_s NAME: that time in seconds.
mark_children() { times >"$tmp/times.$1"; }
children_s() {
    awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, /[ms]/); t += a[1] * 60 + a[2] }
        printf "%.3f", t }' "$tmp/times.$1"
}
rss_mb() { awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$1/status"; }
# run_workload: run it for SECONDS_RUN and print its iterations.
run_workload() { "$WORKLOAD" cpu "$SECONDS_RUN" | awk '/^iterations/ { print $2 }'; }
per_min() { awk -v c="$1" -v s="$SECONDS_RUN" 'BEGIN { printf "%.3f", c * 60 / s }'; }
ns_per_min() { awk -v c="$1" -v s="$SECONDS_RUN" 'BEGIN { printf "%.4f", c / 1e9 * 60 / s }'; }
slowdown() {
    awk -v b="$1" -v x="$2" 'BEGIN { d = (b - x) * 100 / b; if (d < 0) d = 0; printf "%.2f", d }'
}

# measure NAME PID: run the workload under the profiler PID, then stop it
# (SIGINT) and set NAME_iter, NAME_steady (ns on CPU during the workload),
# NAME_rss and NAME_cpu (seconds over its whole run, start to exit).
measure() {
    local name=$1 pid=$2 ns0 iter steady rss
    ns0=$(steady_ns "$pid")
    iter=$(run_workload)
    steady=$(($(steady_ns "$pid") - ns0))
    rss=$(rss_mb "$pid")
    if declare -F "before_stop_$name" >/dev/null; then "before_stop_$name"; fi
    mark_children "${name}0"
    stop_pid "$pid" INT
    mark_children "${name}1"
    printf -v "${name}_iter" '%s' "$iter"
    printf -v "${name}_steady" '%s' "$steady"
    printf -v "${name}_rss" '%s' "$rss"
    printf -v "${name}_cpu" '%s' "$(awk -v a="$(children_s "${name}1")" \
        -v b="$(children_s "${name}0")" 'BEGIN { print a - b }')"
}

note "baseline: the workload alone for ${SECONDS_RUN}s"
base=$(run_workload)
[ -n "$base" ] || die "the workload printed no iterations"

note "firn-agent at ${HZ} Hz"
start_firn "$FIRN" "$tmp/firn.log" --web.listen-address=127.0.0.1:0 \
    --storage.tsdb.path="$tmp/data" || die "firn did not start: $(tail -3 "$tmp/firn.log")"
"$AGENT" --remote-store-address="http://127.0.0.1:$FIRN_PORT" --http-address=127.0.0.1:0 \
    --sampling-frequency="$HZ" >"$tmp/agent.log" 2>&1 &
agent_pid=$!
track_pid "$agent_pid"
wait_for 30 grep -q 'agent is ready' "$tmp/agent.log" ||
    die "firn-agent did not start: $(tail -3 "$tmp/agent.log")"
agent_port=$(sed -n 's/.*agent is ready.* http_port=\([0-9]*\).*/\1/p' "$tmp/agent.log")
agent_metric() {
    curl_local "http://127.0.0.1:$agent_port/metrics" | awk -v m="$1" '$1 == m { print $2 }'
}
# what the agent's maps and tables hold at the end of its run
before_stop_agent() {
    agent_map_bytes=$(agent_metric firn_agent_bpf_map_bytes)
    agent_tables=$(agent_metric firn_agent_unwind_tables)
    agent_table_bytes=$(agent_metric firn_agent_unwind_table_bytes)
    agent_walked=$(agent_metric 'firn_agent_user_stacks_walked_total{unwinder="table"}')
    agent_requests=$(agent_metric 'firn_agent_pushes_total{result="success"}')
    agent_pushed=$(agent_metric firn_agent_profiles_pushed_total)
}
measure agent "$agent_pid"

note "firn-agent at ${HZ} Hz, --dwarf-unwinding=false (frame pointers only, the anchor)"
"$AGENT" --remote-store-address="http://127.0.0.1:$FIRN_PORT" --http-address=127.0.0.1:0 \
    --sampling-frequency="$HZ" --dwarf-unwinding=false >"$tmp/agent-fp.log" 2>&1 &
agent_fp_pid=$!
track_pid "$agent_fp_pid"
wait_for 30 grep -q 'agent is ready' "$tmp/agent-fp.log" ||
    die "firn-agent --dwarf-unwinding=false did not start: $(tail -3 "$tmp/agent-fp.log")"
measure agent_fp "$agent_fp_pid"
stop_pid "$FIRN_PID"

note "perf record -F ${HZ} -a -g"
perf record -F "$HZ" -a -g -o "$tmp/perf.data" >"$tmp/perf.log" 2>&1 &
perf_pid=$!
track_pid "$perf_pid"
wait_for 30 test -s "$tmp/perf.data" || die "perf record did not start: $(tail -3 "$tmp/perf.log")"
measure perf "$perf_pid"

note "perf record -F ${HZ} -a --call-graph dwarf"
perf record -F "$HZ" -a --call-graph dwarf -o "$tmp/perf-dwarf.data" >"$tmp/perf-dwarf.log" 2>&1 &
perf_dwarf_pid=$!
track_pid "$perf_dwarf_pid"
wait_for 30 test -s "$tmp/perf-dwarf.data" ||
    die "perf record --call-graph dwarf did not start: $(tail -3 "$tmp/perf-dwarf.log")"
measure perf_dwarf "$perf_dwarf_pid"
rm -f "$tmp/perf.data" "$tmp/perf-dwarf.data"

# -- off-CPU: what --off-cpu costs a machine switching contexts as fast as
# it can (two threads ping-ponging a byte through pipes): the round trips
# under the agent with --off-cpu against under the agent without it
if [ -n "$OFFCPU" ]; then
    # pingpong_under NAME ARGS...: the workload's round trips and switches
    # under an agent started with ARGS, as "TRIPS SWITCHES" in $tmp/pp.NAME
    pingpong_under() {
        local name=$1
        shift
        "$AGENT" --remote-store-address="http://127.0.0.1:$FIRN_PORT" --http-address=127.0.0.1:0 \
            --sampling-frequency="$HZ" "$@" >"$tmp/agent-pp.log" 2>&1 &
        local pid=$!
        track_pid "$pid"
        wait_for 30 grep -q 'agent is ready' "$tmp/agent-pp.log" ||
            die "firn-agent $* did not start: $(tail -3 "$tmp/agent-pp.log")"
        "$OFFCPU" pingpong "$SECONDS_RUN" |
            awk '{ v[$1] = $2 } END { print v["round_trips"], v["switches"] }' >"$tmp/pp.$name"
        stop_pid "$pid" INT
    }
    start_firn "$FIRN" "$tmp/firn-pp.log" --web.listen-address=127.0.0.1:0 \
        --storage.tsdb.path="$tmp/data-pp" || die "firn did not start: $(tail -3 "$tmp/firn-pp.log")"
    note "ping-pong under firn-agent, then under firn-agent --off-cpu"
    pingpong_under plain
    pingpong_under off --off-cpu
    read -r pp_trips pp_switches <"$tmp/pp.plain"
    read -r pp_off_trips pp_off_switches <"$tmp/pp.off"
    [[ $pp_trips =~ ^[0-9]+$ && $pp_off_trips =~ ^[0-9]+$ ]] || die "the ping-pong printed no round trips"
    stop_pid "$FIRN_PID"
fi

agent_per_min=$(per_min "$agent_cpu")
perf_per_min=$(per_min "$perf_cpu")
perf_dwarf_per_min=$(per_min "$perf_dwarf_cpu")
ratio() { awk -v a="$1" -v p="$2" 'BEGIN { if (p > 0) printf "%.2f", a / p; else print "inf" }'; }
echo "seconds $SECONDS_RUN"
echo "frequency_hz $HZ"
echo "baseline_iterations $base"
echo "agent_cpu_s_per_min $agent_per_min"
echo "agent_steady_cpu_s_per_min $(ns_per_min "$agent_steady")"
echo "agent_rss_mb $agent_rss"
echo "workload_slowdown_pct $(slowdown "$base" "$agent_iter")"
echo "perf_cpu_s_per_min $perf_per_min"
echo "perf_steady_cpu_s_per_min $(ns_per_min "$perf_steady")"
echo "perf_rss_mb $perf_rss"
echo "perf_workload_slowdown_pct $(slowdown "$base" "$perf_iter")"
echo "agent_vs_perf_cpu_ratio $(ratio "$agent_per_min" "$perf_per_min")"
echo "agent_cpu_pct_of_core $(awk -v c="$agent_per_min" 'BEGIN { printf "%.3f\n", c * 100 / 60 }')"
echo "agent_fp_cpu_s_per_min $(per_min "$agent_fp_cpu")"
echo "agent_fp_steady_cpu_s_per_min $(ns_per_min "$agent_fp_steady")"
echo "agent_fp_rss_mb $agent_fp_rss"
echo "perf_dwarf_cpu_s_per_min $perf_dwarf_per_min"
echo "perf_dwarf_steady_cpu_s_per_min $(ns_per_min "$perf_dwarf_steady")"
echo "perf_dwarf_rss_mb $perf_dwarf_rss"
echo "perf_dwarf_workload_slowdown_pct $(slowdown "$base" "$perf_dwarf_iter")"
echo "agent_vs_perf_dwarf_cpu_ratio $(ratio "$agent_per_min" "$perf_dwarf_per_min")"
echo "agent_bpf_map_mb $(awk -v b="${agent_map_bytes:-0}" 'BEGIN { printf "%.1f", b / 1048576 }')"
echo "agent_unwind_tables ${agent_tables:-0}"
echo "agent_unwind_table_mb $(awk -v b="${agent_table_bytes:-0}" 'BEGIN { printf "%.1f", b / 1048576 }')"
echo "agent_table_walked_stacks ${agent_walked:-0}"
echo "agent_push_requests ${agent_requests:-0}"
echo "agent_profiles_pushed ${agent_pushed:-0}"
if [ -n "$OFFCPU" ]; then
    echo "pingpong_switches_per_s $(awk -v n="$pp_switches" -v s="$SECONDS_RUN" 'BEGIN { printf "%.0f", n / s }')"
    echo "offcpu_pingpong_slowdown_pct $(slowdown "$pp_trips" "$pp_off_trips")"
    # the time each switch gained, and what that is at 10,000 switches a second
    awk -v a="$pp_trips" -v b="$pp_off_trips" -v n="$pp_off_switches" -v s="$SECONDS_RUN" 'BEGIN {
        d = (s / b - s / a) * 1e9 / (n / b); if (d < 0) d = 0
        printf "offcpu_ns_per_switch %.0f\noffcpu_pct_of_core_at_10k_switches %.2f\n", d, d * 10000 / 1e9 * 100 }'
fi
