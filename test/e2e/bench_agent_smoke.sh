#!/bin/bash
# bench_agent_smoke.sh FIRN FIRN_AGENT WORKLOAD OFFCPU_WORKLOAD -- test/bench/bench_agent.sh
# runs (3 s per run) and prints every figure in the `figure_name value`
# form.  This checks the form, never the speed: speed is measured, not
# asserted.  Skipped (77) without root, as the benchmark itself.
set -uo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
. "$HERE/lib.sh"

if [ "$(id -u)" -ne 0 ] || [ ! -r /sys/kernel/btf/vmlinux ]; then
    echo "SKIP: the agent benchmark needs root and a BTF kernel"
    exit 77
fi
figures=(seconds frequency_hz baseline_iterations agent_cpu_s_per_min agent_steady_cpu_s_per_min
    agent_rss_mb workload_slowdown_pct perf_cpu_s_per_min perf_steady_cpu_s_per_min perf_rss_mb
    perf_workload_slowdown_pct agent_vs_perf_cpu_ratio agent_cpu_pct_of_core
    agent_fp_cpu_s_per_min agent_fp_steady_cpu_s_per_min agent_fp_rss_mb
    perf_dwarf_cpu_s_per_min perf_dwarf_steady_cpu_s_per_min perf_dwarf_rss_mb
    perf_dwarf_workload_slowdown_pct agent_vs_perf_dwarf_cpu_ratio agent_bpf_map_mb
    agent_unwind_tables agent_unwind_table_mb agent_table_walked_stacks agent_push_requests
    agent_profiles_pushed syscall_ns offcpu_syscall_ns offcpu_syscall_extra_ns paced_switches_per_s
    paced_syscalls_per_switch offcpu_switch_prog_ns offcpu_exit_prog_ns offcpu_switch_calls_per_s
    offcpu_exit_calls_per_s offcpu_switch_filter_ns offcpu_exit_filter_ns paced_cpu_ns_per_switch offcpu_paced_cpu_ns_per_switch
    offcpu_ns_per_switch offcpu_pct_of_core_at_10k_switches offcpu_ns_per_long_switch
    offcpu_pct_of_core_at_10k_long_switches)
out=$(timeout 240 bash "$HERE/../bench/bench_agent.sh" "$1" "$2" "$3" --seconds 3 --offcpu-workload "$4")
rc=$?
[ $rc -eq 0 ] && ok "bench_agent.sh exits 0" || fail "bench_agent.sh exited $rc"
check_figures "bench_agent" "$out" "${figures[@]}"
same "frequency as asked" "$(printf '%s\n' "$out" | awk '$1 == "frequency_hz" { print $2 }')" 19
finish
