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
#   with --offcpu-workload (test/agent/offcpu_workload.c), what --off-cpu
#   costs, under the agent without it (the anchor) and with it:
#   syscall_ns, offcpu_syscall_ns: the CPU time of a getppid() (the best
#     of three 2 s loops), offcpu_syscall_extra_ns their difference (the
#     sys_exit hook puts every system call of every process on the
#     kernel's slow exit path and runs the program);
#   paced_switches_per_s, paced_syscalls_per_switch: the workload's paced
#     mode for S seconds, a fixed 10,000 blocking switches a second (pipe
#     ping-pong paced by a timer, so the rate does not depend on what the
#     profiler costs);
#   offcpu_switch_prog_ns, offcpu_exit_prog_ns, offcpu_switch_calls_per_s,
#     offcpu_exit_calls_per_s: what the kernel counts for the two programs
#     during that run (kernel.bpf_stats_enabled, set for the run and put
#     back: run_time_ns / run_cnt, every process of the machine, its
#     long blocks' stacks included; the counting's own cost too);
#   offcpu_switch_filter_ns, offcpu_exit_filter_ns: the same with
#     --off-cpu-min-block=1h (a third run: no block is long, no stack is
#     taken), what every switch and every system call pays;
#   paced_cpu_ns_per_switch, offcpu_paced_cpu_ns_per_switch: the paced
#     workload's own CPU (user + system) per switch without and with
#     --off-cpu -- a direct measure, but noisy on a busy machine;
#   offcpu_ns_per_switch: what --off-cpu adds per blocking switch, from
#     the figures above that do not depend on the machine's noise: two
#     sched_switch runs (the thread leaves, and comes back), each with its
#     share of the programs' time beyond the system calls' own filter (the
#     stacks of the machine's long blocks: (switch time + exit time - exit
#     runs x offcpu_exit_filter_ns) / switch runs), plus the workload's
#     system calls per switch times offcpu_syscall_extra_ns;
#   offcpu_pct_of_core_at_10k_switches: that, at 10,000 switches a second;
#   offcpu_ns_per_long_switch, offcpu_pct_of_core_at_10k_long_switches:
#     the same from a fourth run with --off-cpu-min-block=0, where every
#     block is long and has its stacks taken (the machine's too): what a
#     machine whose every switch is a long block would pay.
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

# -- off-CPU: what --off-cpu costs, beside the agent without it
if [ -n "$OFFCPU" ]; then
    stats_before=$(sysctl -n kernel.bpf_stats_enabled) || die "cannot read kernel.bpf_stats_enabled"
    trap 'sysctl -q kernel.bpf_stats_enabled="$stats_before"; e2e_cleanup' EXIT
    # prog_stats PID: "NAME RUN_CNT RUN_TIME_NS" of each BPF program the
    # process holds (the fdinfo of its program fds -- its link fds name a
    # program too, without counts; the name from bpftool)
    prog_stats() {
        local f line
        for f in /proc/"$1"/fdinfo/*; do
            line=$(awk '/^prog_id:/ { id = $2 } /^run_cnt:/ { c = $2; n = 1 } /^run_time_ns:/ { t = $2 }
                END { if (id != "" && n) print id, c, t }' "$f" 2>/dev/null)
            [ -n "$line" ] || continue
            set -- $line
            printf '%s %s %s\n' "$(bpftool prog show id "$1" 2>/dev/null |
                awk '{ for (i = 1; i < NF; i++) if ($i == "name") { print $(i + 1); exit } }')" "$2" "$3"
        done | sort -u
    }
    # offcpu_under NAME ARGS...: under an agent started with ARGS, the best
    # of three getppid() loops ($tmp/sys.NAME) and the paced workload's
    # figures ($tmp/paced.NAME), with the agent's programs' run counts and
    # times over that run ($tmp/progs.NAME)
    offcpu_under() {
        local name=$1
        shift
        : >"$tmp/agent-oc.log"   # emptied first: the last run's "ready" must not count
        "$AGENT" --remote-store-address="http://127.0.0.1:$FIRN_PORT" --http-address=127.0.0.1:0 \
            --sampling-frequency="$HZ" "$@" >>"$tmp/agent-oc.log" 2>&1 &
        local pid=$!
        track_pid "$pid"
        wait_for 30 grep -q 'agent is ready' "$tmp/agent-oc.log" ||
            die "firn-agent $* did not start: $(tail -3 "$tmp/agent-oc.log")"
        for _ in 1 2 3; do "$OFFCPU" syscalls 2; done |
            awk '$1 == "ns_per_syscall" && (m == "" || $2 < m) { m = $2 } END { print m }' >"$tmp/sys.$name"
        sysctl -q kernel.bpf_stats_enabled=1 || die "cannot set kernel.bpf_stats_enabled"
        prog_stats "$pid" | sort >"$tmp/progs0"
        "$OFFCPU" paced "$SECONDS_RUN" 10000 >"$tmp/paced.$name"
        prog_stats "$pid" | sort >"$tmp/progs1"
        sysctl -q kernel.bpf_stats_enabled="$stats_before"
        join "$tmp/progs0" "$tmp/progs1" | awk '{ print $1, $4 - $2, $5 - $3 }' >"$tmp/progs.$name"
        stop_pid "$pid" INT
    }
    start_firn "$FIRN" "$tmp/firn-oc.log" --web.listen-address=127.0.0.1:0 \
        --storage.tsdb.path="$tmp/data-oc" || die "firn did not start: $(tail -3 "$tmp/firn-oc.log")"
    note "system calls and a paced 10,000 switches/s under firn-agent, then with --off-cpu," \
        "--off-cpu --off-cpu-min-block=1h (no stacks), --off-cpu --off-cpu-min-block=0 (all stacks)"
    offcpu_under plain
    offcpu_under off --off-cpu
    offcpu_under filter --off-cpu --off-cpu-min-block=1h
    offcpu_under long --off-cpu --off-cpu-min-block=0
    stop_pid "$FIRN_PID"
    sys_plain=$(cat "$tmp/sys.plain") sys_off=$(cat "$tmp/sys.off")
    [[ $sys_plain =~ ^[0-9.]+$ && $sys_off =~ ^[0-9.]+$ ]] || die "the system-call loop printed no figure"
    paced() { awk -v k="$2" '$1 == k { print $2 }' "$tmp/paced.$1"; }
    prog() { awk -v n="$2" '$1 == n { print $2, $3 }' "$tmp/progs.$1"; }
    read -r switch_runs switch_ns <<<"$(prog off off_cpu_switch)"
    read -r exit_runs exit_ns <<<"$(prog off off_cpu_return)"
    read -r fswitch_runs fswitch_ns <<<"$(prog filter off_cpu_switch)"
    read -r fexit_runs fexit_ns <<<"$(prog filter off_cpu_return)"
    read -r lswitch_runs lswitch_ns <<<"$(prog long off_cpu_switch)"
    read -r lexit_runs lexit_ns <<<"$(prog long off_cpu_return)"
    [[ ${switch_runs:-0} -gt 0 && ${exit_runs:-0} -gt 0 && ${fswitch_runs:-0} -gt 0 &&
        ${fexit_runs:-0} -gt 0 && ${lswitch_runs:-0} -gt 0 && ${lexit_runs:-0} -gt 0 ]] ||
        die "no run counts of the off-CPU programs (kernel.bpf_stats_enabled)"
    [[ $(paced off switches) -gt 0 && $(paced plain switches) -gt 0 ]] ||
        die "the paced workload printed no switches"
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
    awk -v sp="$sys_plain" -v so="$sys_off" -v s="$SECONDS_RUN" \
        -v sw="$(paced off switches)" -v sc="$(paced off syscalls)" -v cpu_off="$(paced off cpu_ns)" \
        -v swp="$(paced plain switches)" -v cpu_plain="$(paced plain cpu_ns)" \
        -v sr="$switch_runs" -v sn="$switch_ns" -v er="$exit_runs" -v en="$exit_ns" \
        -v fsr="$fswitch_runs" -v fsn="$fswitch_ns" -v fer="$fexit_runs" -v fen="$fexit_ns" \
        -v lsr="$lswitch_runs" -v lsn="$lswitch_ns" -v ler="$lexit_runs" -v len="$lexit_ns" 'BEGIN {
        extra = so - sp; if (extra < 0) extra = 0
        switch_ns = sn / sr; exit_ns = en / er; per_switch = sc / sw; exit_filter = fen / fer
        printf "syscall_ns %.1f\noffcpu_syscall_ns %.1f\noffcpu_syscall_extra_ns %.1f\n", sp, so, extra
        printf "paced_switches_per_s %.0f\npaced_syscalls_per_switch %.2f\n", sw / s, per_switch
        printf "offcpu_switch_prog_ns %.0f\noffcpu_exit_prog_ns %.0f\n", switch_ns, exit_ns
        printf "offcpu_switch_calls_per_s %.0f\noffcpu_exit_calls_per_s %.0f\n", sr / s, er / s
        printf "offcpu_switch_filter_ns %.0f\noffcpu_exit_filter_ns %.0f\n", fsn / fsr, exit_filter
        printf "paced_cpu_ns_per_switch %.0f\noffcpu_paced_cpu_ns_per_switch %.0f\n", cpu_plain / swp, cpu_off / sw
        beyond = (sn + en - er * exit_filter) / sr; if (beyond < switch_ns) beyond = switch_ns
        d = 2 * beyond + per_switch * extra
        printf "offcpu_ns_per_switch %.0f\noffcpu_pct_of_core_at_10k_switches %.2f\n", d, d * 10000 / 1e9 * 100
        beyond = (lsn + len - ler * exit_filter) / lsr; if (beyond < lsn / lsr) beyond = lsn / lsr
        d = 2 * beyond + per_switch * extra
        printf "offcpu_ns_per_long_switch %.0f\noffcpu_pct_of_core_at_10k_long_switches %.2f\n", d, d * 10000 / 1e9 * 100 }'
fi
