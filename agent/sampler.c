/* sampler.c -- the BPF side's userspace half: load bpf/profile.bpf.c (a
 * CO-RE object embedded by its skeleton), attach it to a
 * PERF_COUNT_SW_CPU_CLOCK event in frequency mode on every online CPU, and
 * drain its counts.
 *
 * Draining loses no sample: the BPF program writes into the generation of
 * maps its global `generation` names.  A drain flips it, waits a moment
 * for programs already running on other CPUs to finish (they take a few
 * microseconds), then reads the old generation's counts and the stacks they
 * name, and clears both; samples taken meanwhile went to the new
 * generation, which the next drain reads.
 */
#include <errno.h>
#include <linux/perf_event.h>
#include <linux/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent/internal.h"
#include "bpf/profile.h"
#include "profile.skel.h"

/* How long a drain lets BPF programs that read the old generation finish. */
#define FLIP_GRACE_NS 5000000L

struct agent_sampler {
    struct profile_bpf *skel;
    struct bpf_link **links;
    int *fds;
    size_t n_events;
    int n_cpus;                   /* possible CPUs: per-CPU values come in this many */
    agent_sampler_stats *stats;
    struct profile_key *keys;     /* scratch for a drain: PROFILE_MAX_KEYS */
    uint32_t *stack_ids;          /* scratch: ids to clear */
    uint32_t stack_map_size;
};

static int libbpf_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    if (level == LIBBPF_DEBUG)
        return 0;
    char line[1024];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\n")] = '\0';
    char q[1100];
    firn_log(level == LIBBPF_WARN ? FIRN_LOG_WARN : FIRN_LOG_DEBUG, "libbpf", "libbpf",
             "detail=%s", firn_log_quote(q, sizeof q, line));
    return 0;
}

/* Why loading failed, in terms of what the user can change. */
static int load_error(int e, firn_err *err)
{
    if (e == EPERM || e == EACCES)
        return firn_errf(err, FIRN_EIO, "loading the BPF program: permission denied: "
                         "firn-agent needs root (or CAP_BPF, CAP_PERFMON, CAP_SYS_PTRACE and "
                         "CAP_SYS_RESOURCE on kernels that charge BPF memory to RLIMIT_MEMLOCK)");
    if (e == ENOSYS)
        return firn_errf(err, FIRN_EIO, "loading the BPF program: this kernel has no bpf(2) "
                         "system call (CONFIG_BPF_SYSCALL)");
    return firn_errf(err, FIRN_EIO, "loading the BPF program: %s (see the libbpf lines above)",
                     strerror(e));
}

static int open_events(agent_sampler *s, int hz, firn_err *err)
{
    s->links = calloc((size_t)s->n_cpus, sizeof *s->links);
    s->fds = calloc((size_t)s->n_cpus, sizeof *s->fds);
    if (!s->links || !s->fds)
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
    for (int cpu = 0; cpu < s->n_cpus; cpu++) {
        struct perf_event_attr attr = {
            .type = PERF_TYPE_SOFTWARE,
            .config = PERF_COUNT_SW_CPU_CLOCK,
            .size = sizeof attr,
            .freq = 1,
            .sample_freq = (__u64)hz,
        };
        int fd = (int)syscall(__NR_perf_event_open, &attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            if (e == ENODEV)
                continue;   /* an offline CPU */
            if (e == EACCES || e == EPERM)
                return firn_errf(err, FIRN_EIO, "perf_event_open on CPU %d: permission denied: "
                                 "firn-agent needs root or CAP_PERFMON (and "
                                 "kernel.perf_event_paranoid allowing system-wide events)",
                                 cpu);
            if (e == ENOENT || e == EOPNOTSUPP || e == ENOSYS)
                return firn_errf(err, FIRN_EIO, "perf_event_open on CPU %d: %s: this kernel "
                                 "offers no CPU-clock perf events (CONFIG_PERF_EVENTS)",
                                 cpu, strerror(e));
            return firn_errf(err, FIRN_EIO, "perf_event_open on CPU %d: %s", cpu, strerror(e));
        }
        s->fds[s->n_events] = fd;
        struct bpf_link *link = bpf_program__attach_perf_event(s->skel->progs.profile_sample, fd);
        if (!link) {
            int e = errno;
            close(fd);
            return firn_errf(err, FIRN_EIO, "attaching the BPF program to CPU %d: %s", cpu,
                             strerror(e));
        }
        s->links[s->n_events++] = link;
    }
    if (s->n_events == 0)
        return firn_errf(err, FIRN_EIO, "no online CPU accepted a perf event");
    atomic_store(&s->stats->cpus, s->n_events);
    return 0;
}

agent_sampler *agent_sampler_new(int hz, uint32_t stack_map_size,
                                 agent_sampler_stats *stats, firn_err *err)
{
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
        firn_errf(err, FIRN_EIO, "this kernel has no BTF (/sys/kernel/btf/vmlinux: %s): "
                  "firn-agent's BPF program needs a kernel built with CONFIG_DEBUG_INFO_BTF",
                  strerror(errno));
        return NULL;
    }
    libbpf_set_print(libbpf_log);
    agent_sampler *s = calloc(1, sizeof *s);
    if (!s) {
        firn_errf(err, FIRN_ENOMEM, "out of memory");
        return NULL;
    }
    s->stats = stats;
    s->stack_map_size = stack_map_size;
    s->n_cpus = libbpf_num_possible_cpus();
    s->keys = calloc(PROFILE_MAX_KEYS, sizeof *s->keys);
    s->stack_ids = calloc(stack_map_size, sizeof *s->stack_ids);
    if (s->n_cpus <= 0 || !s->keys || !s->stack_ids) {
        firn_errf(err, FIRN_ENOMEM, "out of memory");
        agent_sampler_free(s);
        return NULL;
    }
    s->skel = profile_bpf__open();
    if (!s->skel) {
        firn_errf(err, FIRN_EIO, "opening the BPF object: %s", strerror(errno));
        agent_sampler_free(s);
        return NULL;
    }
    bpf_map__set_max_entries(s->skel->maps.stacks0, stack_map_size);
    bpf_map__set_max_entries(s->skel->maps.stacks1, stack_map_size);
    int rc = profile_bpf__load(s->skel);
    if (rc != 0) {
        load_error(-rc > 0 ? -rc : errno, err);
        agent_sampler_free(s);
        return NULL;
    }
    if (open_events(s, hz, err) < 0) {
        agent_sampler_free(s);
        return NULL;
    }
    return s;
}

/* Sum the per-CPU counters into stats (they are cumulative on the BPF side). */
static void read_stats(agent_sampler *s)
{
    int fd = bpf_map__fd(s->skel->maps.stats);
    uint64_t values[s->n_cpus];
    uint64_t sums[PROFILE_STAT_N] = {0};
    for (uint32_t i = 0; i < PROFILE_STAT_N; i++) {
        if (bpf_map_lookup_elem(fd, &i, values) != 0)
            continue;
        for (int c = 0; c < s->n_cpus; c++)
            sums[i] += values[c];
    }
    atomic_store(&s->stats->samples, sums[PROFILE_STAT_SAMPLES]);
    atomic_store(&s->stats->user_stack_errors, sums[PROFILE_STAT_USER_STACK_ERRORS]);
    atomic_store(&s->stats->kernel_stack_errors, sums[PROFILE_STAT_KERNEL_STACK_ERRORS]);
    atomic_store(&s->stats->stack_map_full, sums[PROFILE_STAT_STACK_MAP_FULL]);
    atomic_store(&s->stats->counts_full, sums[PROFILE_STAT_COUNTS_FULL]);
}

/* The frames of stack id (leaf first, up to the first 0) into out; 0 when
 * the id is an error (no such stack) or the stack is gone. */
static size_t read_stack(agent_sampler *s, int fd, int32_t id, uint64_t *out)
{
    if (id < 0)
        return 0;
    if (bpf_map_lookup_elem(fd, &id, out) != 0) {
        atomic_fetch_add(&s->stats->stacks_lost, 1);
        return 0;
    }
    size_t n = 0;
    while (n < PROFILE_MAX_DEPTH && out[n])
        n++;
    return n;
}

void agent_sampler_drain(agent_sampler *s, agent_sample_fn fn, void *ctx)
{
    uint32_t old = s->skel->bss->generation & 1;
    __atomic_store_n(&s->skel->bss->generation, old ^ 1, __ATOMIC_SEQ_CST);
    struct timespec grace = {0, FLIP_GRACE_NS};
    nanosleep(&grace, NULL);

    int counts_fd = bpf_map__fd(old ? s->skel->maps.counts1 : s->skel->maps.counts0);
    int stacks_fd = bpf_map__fd(old ? s->skel->maps.stacks1 : s->skel->maps.stacks0);
    size_t n = 0;
    struct profile_key key, *prev = NULL;
    while (n < PROFILE_MAX_KEYS && bpf_map_get_next_key(counts_fd, prev, &key) == 0) {
        s->keys[n] = key;
        prev = &s->keys[n++];
    }
    uint64_t user[PROFILE_MAX_DEPTH], kernel[PROFILE_MAX_DEPTH];
    for (size_t i = 0; i < n; i++) {
        const struct profile_key *k = &s->keys[i];
        uint64_t count = 0;
        if (bpf_map_lookup_elem(counts_fd, k, &count) != 0 || count == 0)
            continue;
        agent_sample sample = {
            .pid = k->pid,
            .tid = k->tid,
            .count = count,
            .user = user,
            .n_user = read_stack(s, stacks_fd, k->user_stack_id, user),
            .kernel = kernel,
            .n_kernel = read_stack(s, stacks_fd, k->kernel_stack_id, kernel),
        };
        memcpy(sample.comm, k->comm, sizeof sample.comm);
        sample.comm[sizeof sample.comm - 1] = '\0';
        fn(ctx, &sample);
    }
    for (size_t i = 0; i < n; i++)
        bpf_map_delete_elem(counts_fd, &s->keys[i]);
    /* Every stack of the old generation, also those of keys not read. */
    size_t n_ids = 0;
    uint32_t id, *prev_id = NULL;
    while (n_ids < s->stack_map_size && bpf_map_get_next_key(stacks_fd, prev_id, &id) == 0) {
        s->stack_ids[n_ids] = id;
        prev_id = &s->stack_ids[n_ids++];
    }
    for (size_t i = 0; i < n_ids; i++)
        bpf_map_delete_elem(stacks_fd, &s->stack_ids[i]);
    read_stats(s);
    atomic_fetch_add(&s->stats->drains, 1);
}

void agent_sampler_free(agent_sampler *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_events; i++) {
        bpf_link__destroy(s->links[i]);
        close(s->fds[i]);
    }
    free(s->links);
    free(s->fds);
    profile_bpf__destroy(s->skel);
    free(s->keys);
    free(s->stack_ids);
    free(s);
}
