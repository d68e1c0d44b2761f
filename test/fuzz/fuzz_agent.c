/* fuzz_agent.c -- firn-agent's parsers of kernel-provided text
 * (agent/procfs.c): /proc/kallsyms, /proc/PID/maps, perf maps,
 * /proc/PID/stat, /proc/PID/cgroup and cgroup paths.  Any input: an error or a result,
 * never a crash; lookups on what parsed stay in bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    firn_err err = {0};
    agent_kallsyms k;
    if (agent_kallsyms_parse(text, size, &k, &err) == 0) {
        agent_kallsyms_lookup(&k, 0xffffffff81000000ULL);
        agent_kallsyms_free(&k);
    }
    agent_maps m;
    if (agent_maps_parse(text, size, &m, &err) == 0) {
        agent_maps_find(&m, 0x400000);
        agent_maps_free(&m);
    }
    agent_perf_map pm;
    if (agent_perf_map_parse(text, size, &pm, &err) == 0) {
        agent_perf_map_lookup(&pm, 0x1000);
        agent_perf_map_free(&pm);
    }
    agent_proc_stat st;
    agent_proc_stat_parse(text, size, &st, &err);
    char path[512];
    if (agent_cgroup_path(text, size, path, sizeof path, &err) == 0) {
        agent_cgroup_info info;
        agent_cgroup_parse(path, &info);
    }
    return 0;
}
