/* profile.c -- one process's samples of one interval as a pprof shaped as
 * Go's CPU profile (runtime/pprof), so that firn stores it under the same
 * profile types as a scraped Go service:
 * process_cpu:samples:count:cpu:nanoseconds:delta and
 * process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta; or its time off the
 * CPU in the same shape: off_cpu:switches:count:wait:nanoseconds:delta and
 * off_cpu:wait:nanoseconds:wait:nanoseconds:delta. */
#include <assert.h>
#include <string.h>

#include "agent/agent.h"

static int64_t str(agent_profile *p, const char *s)
{
    return pprof_builder_string(p->b, s ? s : "", s ? strlen(s) : 0);
}

void agent_profile_init(agent_profile *p, int hz, int64_t time_nanos, int64_t duration_nanos)
{
    assert(hz > 0);
    memset(p, 0, sizeof *p);
    p->b = pprof_builder_new(2);
    p->period = 1000000000LL / hz;
    pprof_builder_sample_type(p->b, 0, "samples", "count");
    pprof_builder_sample_type(p->b, 1, "cpu", "nanoseconds");
    pprof_builder_period(p->b, "cpu", "nanoseconds", p->period);
    pprof_builder_time(p->b, time_nanos, duration_nanos);
}

void agent_profile_init_off_cpu(agent_profile *p, int64_t time_nanos, int64_t duration_nanos)
{
    memset(p, 0, sizeof *p);
    p->b = pprof_builder_new(2);
    p->period = 1;   /* each value is measured, not a sample standing for a period */
    pprof_builder_sample_type(p->b, 0, "switches", "count");
    pprof_builder_sample_type(p->b, 1, "wait", "nanoseconds");
    pprof_builder_period(p->b, "wait", "nanoseconds", 1);
    pprof_builder_time(p->b, time_nanos, duration_nanos);
}

uint32_t agent_profile_mapping(agent_profile *p, uint64_t start, uint64_t limit,
                               uint64_t offset, const char *filename, const char *build_id,
                               bool has_functions, bool has_lines)
{
    pprof_mapping m = {
        .memory_start = start,
        .memory_limit = limit,
        .file_offset = offset,
        .filename = str(p, filename),
        .build_id = str(p, build_id),
        .has_functions = has_functions,
        .has_filenames = has_lines,
        .has_line_numbers = has_lines,
        .has_inline_frames = has_lines,
    };
    return pprof_builder_mapping(p->b, &m);
}

uint32_t agent_profile_function(agent_profile *p, const char *name, const char *system_name,
                                const char *filename, int64_t start_line)
{
    pprof_function f = {
        .name = str(p, name),
        .system_name = str(p, system_name ? system_name : name),
        .filename = str(p, filename),
        .start_line = start_line > 0 ? start_line : 0,
    };
    return pprof_builder_function(p->b, &f);
}

uint32_t agent_profile_location(agent_profile *p, uint32_t mapping, uint64_t address,
                                const pprof_line *lines, size_t n_lines)
{
    pprof_location l = {
        .mapping = mapping,
        .address = address,
        .lines = (pprof_line *)lines,
        .n_lines = n_lines,
    };
    return pprof_builder_location(p->b, &l);
}

/* A sample of two values with its thread_name label (none when NULL or ""). */
static int add_sample(agent_profile *p, const uint32_t *locations, size_t n,
                      const int64_t values[2], const char *thread_name)
{
    pprof_label label = {0};
    size_t n_labels = 0;
    if (thread_name && *thread_name) {
        label.key = str(p, "thread_name");
        label.str = str(p, thread_name);
        n_labels = 1;
    }
    return pprof_builder_sample(p->b, locations, n, values, n_labels ? &label : NULL, n_labels);
}

int agent_profile_sample(agent_profile *p, const uint32_t *locations, size_t n,
                         uint64_t count, const char *thread_name)
{
    if (count > (uint64_t)INT64_MAX / (uint64_t)p->period)
        count = (uint64_t)INT64_MAX / (uint64_t)p->period;
    int64_t values[2] = {(int64_t)count, (int64_t)count * p->period};
    return add_sample(p, locations, n, values, thread_name);
}

int agent_profile_sample_off_cpu(agent_profile *p, const uint32_t *locations, size_t n,
                                 uint64_t switches, uint64_t nanoseconds,
                                 const char *thread_name)
{
    int64_t values[2] = {switches > INT64_MAX ? INT64_MAX : (int64_t)switches,
                         nanoseconds > INT64_MAX ? INT64_MAX : (int64_t)nanoseconds};
    return add_sample(p, locations, n, values, thread_name);
}

pprof_profile *agent_profile_finish(agent_profile *p, firn_err *err)
{
    pprof_profile *out = pprof_builder_finish(p->b, err);
    p->b = NULL;
    /* threads of one name with one stack are one sample */
    pprof_merge_samples(out, err);
    return out;
}

void agent_profile_discard(agent_profile *p)
{
    pprof_builder_free(p->b);
    p->b = NULL;
}
