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
#include <assert.h>
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

/* Frames (8 bytes each) of a drain's stacks kept for the next drain. */
#define FRAMES_KEPT 65536

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
    uint64_t *counts;             /* scratch: their counts */
    uint32_t *stack_ids;          /* scratch: ids to clear */
    uint32_t stack_map_size;
    /* The stacks a drain read, each once (keys share stacks): stack id or
     * hash -> index into spans, a span being its frames in frames.  Only
     * the frames a stack has are kept (a fifth of PROFILE_MAX_DEPTH on
     * average), and the arrays go after a drain that made them large. */
    firn_u64map frames_of;
    struct span { uint32_t first, n; } *spans;
    size_t n_spans, cap_spans;
    uint64_t *frames;
    size_t n_frames, cap_frames;
    bool no_batch;                /* the kernel refused batch operations */
    agent_unwinder *unwinder;     /* NULL: table unwinding off */
    struct bpf_link *off_link;    /* the sched_switch program; NULL: off-CPU off */
    struct bpf_link *off_return_link;   /* the sys_exit program */
    struct profile_off_value *off_values;   /* scratch: PROFILE_MAX_KEYS */
    uint64_t *ustack_keys;        /* scratch for the sweep of a ustacks map */
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
    s->links = firn_xcalloc((size_t)s->n_cpus, sizeof *s->links);
    s->fds = firn_xcalloc((size_t)s->n_cpus, sizeof *s->fds);
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

/* What the kernel charges for the program's maps: the sum of their
 * fdinfo "memlock" lines (for maps allocated on demand, their most). */
static uint64_t maps_memlock(agent_sampler *s)
{
    uint64_t sum = 0;
    struct bpf_map *map;
    bpf_object__for_each_map(map, s->skel->obj) {
        char path[64], line[256];
        snprintf(path, sizeof path, "/proc/self/fdinfo/%d", bpf_map__fd(map));
        FILE *f = fopen(path, "r");
        if (!f)
            continue;
        unsigned long long v;
        while (fgets(line, sizeof line, f))
            if (sscanf(line, "memlock: %llu", &v) == 1)
                sum += v;
        fclose(f);
    }
    return sum;
}

/* The off-CPU programs (profile.bpf.c): sched_switch notes when a thread
 * blocks and, when it comes back, its kernel stack; sys_exit counts the
 * block with its user stack. */
static int attach_off_cpu(agent_sampler *s, firn_err *err)
{
    s->off_link = bpf_program__attach(s->skel->progs.off_cpu_switch);
    if (!s->off_link)
        return firn_errf(err, FIRN_EIO, "attaching the off-CPU program to sched_switch: %s",
                         strerror(errno));
    s->off_return_link = bpf_program__attach(s->skel->progs.off_cpu_return);
    if (!s->off_return_link)
        return firn_errf(err, FIRN_EIO, "attaching the off-CPU program to sys_exit: %s",
                         strerror(errno));
    return 0;
}

agent_sampler *agent_sampler_new(int hz, uint32_t stack_map_size, uint32_t unwind_shards,
                                 int64_t off_cpu_min_ns, agent_sampler_stats *stats,
                                 agent_unwind_stats *unwind_stats, firn_err *err)
{
    if (unwind_shards > 65536) {
        firn_errf(err, FIRN_EINVAL, "%u unwind table shards: at most 65536", unwind_shards);
        return NULL;
    }
    if (access("/sys/kernel/btf/vmlinux", R_OK) != 0) {
        firn_errf(err, FIRN_EIO, "this kernel has no BTF (/sys/kernel/btf/vmlinux: %s): "
                  "firn-agent's BPF program needs a kernel built with CONFIG_DEBUG_INFO_BTF",
                  strerror(errno));
        return NULL;
    }
    libbpf_set_print(libbpf_log);
    agent_sampler *s = firn_xcalloc(1, sizeof *s);
    s->stats = stats;
    s->stack_map_size = stack_map_size;
    s->n_cpus = libbpf_num_possible_cpus();
    if (s->n_cpus <= 0) {
        firn_errf(err, FIRN_EIO, "cannot count the possible CPUs (/sys/devices/system/cpu/"
                  "possible): %s", strerror(-s->n_cpus));
        agent_sampler_free(s);
        return NULL;
    }
    assert(stack_map_size <= (1u << 22));   /* agent_new's cap */
    s->keys = firn_xcalloc(PROFILE_MAX_KEYS, sizeof *s->keys);
    s->counts = firn_xcalloc(PROFILE_MAX_KEYS, sizeof *s->counts);
    s->stack_ids = firn_xcalloc(stack_map_size, sizeof *s->stack_ids);
    s->ustack_keys = firn_xcalloc(stack_map_size, sizeof *s->ustack_keys);
    s->off_values = firn_xcalloc(PROFILE_MAX_KEYS, sizeof *s->off_values);
    firn_u64map_init(&s->frames_of, 256);
    s->skel = profile_bpf__open();
    if (!s->skel) {
        firn_errf(err, FIRN_EIO, "opening the BPF object: %s", strerror(errno));
        agent_sampler_free(s);
        return NULL;
    }
    bpf_map__set_max_entries(s->skel->maps.stacks0, stack_map_size);
    bpf_map__set_max_entries(s->skel->maps.stacks1, stack_map_size);
    /* walked stacks are allocated as they come (1 KiB each): most
     * processes' stacks go to the stack maps */
    struct bpf_map *ustacks[] = {s->skel->maps.ustacks0, s->skel->maps.ustacks1};
    for (size_t i = 0; i < 2; i++) {
        bpf_map__set_max_entries(ustacks[i], stack_map_size);
        bpf_map__set_map_flags(ustacks[i], BPF_F_NO_PREALLOC);
    }
    /* without table unwinding the unwind maps shrink to one entry each */
    uint32_t n_tables = unwind_shards ? PROFILE_DEFAULT_TABLES : 1;
    bpf_map__set_max_entries(s->skel->maps.unwind_rows, unwind_shards ? unwind_shards : 1);
    bpf_map__set_max_entries(s->skel->maps.unwind_tables, n_tables);
    bpf_map__set_max_entries(s->skel->maps.unwind_procs, unwind_shards ? PROFILE_DEFAULT_PROCS : 1);
    /* off-CPU: the sched_switch program and its maps, or one entry each */
    bool off_cpu = off_cpu_min_ns >= 0;
    bpf_program__set_autoload(s->skel->progs.off_cpu_switch, off_cpu);
    bpf_program__set_autoload(s->skel->progs.off_cpu_return, off_cpu);
    if (off_cpu) {
        s->skel->rodata->off_cpu_min_ns = (uint64_t)off_cpu_min_ns;
    } else {
        bpf_map__set_max_entries(s->skel->maps.off_kstacks, 1);
        bpf_map__set_max_entries(s->skel->maps.off_counts0, 1);
        bpf_map__set_max_entries(s->skel->maps.off_counts1, 1);
    }
    int rc = profile_bpf__load(s->skel);
    if (rc != 0) {
        load_error(-rc > 0 ? -rc : errno, err);
        agent_sampler_free(s);
        return NULL;
    }
    if (unwind_shards) {
        s->unwinder = agent_unwinder_new(bpf_map__fd(s->skel->maps.unwind_rows),
                                         bpf_map__fd(s->skel->maps.unwind_tables),
                                         bpf_map__fd(s->skel->maps.unwind_procs), unwind_shards,
                                         n_tables, unwind_stats);
    }
    if (open_events(s, hz, err) < 0) {
        agent_sampler_free(s);
        return NULL;
    }
    if (off_cpu && attach_off_cpu(s, err) < 0) {
        agent_sampler_free(s);
        return NULL;
    }
    atomic_store(&stats->map_bytes, maps_memlock(s));
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
    atomic_store(&s->stats->stacks_table, sums[PROFILE_STAT_UNWIND_TABLE]);
    atomic_store(&s->stats->stacks_fp, sums[PROFILE_STAT_UNWIND_FP]);
    atomic_store(&s->stats->trunc_no_table, sums[PROFILE_STAT_TRUNC_NO_TABLE]);
    atomic_store(&s->stats->trunc_table_miss, sums[PROFILE_STAT_TRUNC_TABLE_MISS]);
    atomic_store(&s->stats->trunc_depth, sums[PROFILE_STAT_TRUNC_DEPTH]);
    atomic_store(&s->stats->trunc_read_fault, sums[PROFILE_STAT_TRUNC_READ_FAULT]);
    atomic_store(&s->stats->ustack_map_full, sums[PROFILE_STAT_USTACK_MAP_FULL]);
}

agent_unwinder *agent_sampler_unwinder(agent_sampler *s)
{
    return s->unwinder;
}

/* The span of stack `key` (its frames leaf first) in map fd: a stack id
 * of a stack map (below 2^32) or the hash of a walked stack (top bit set),
 * whose map keys are 4 and 8 bytes.  Read from the map and deleted there
 * (unless keep) the first time a drain asks (one system call), then from
 * this drain's copy, since keys share stacks.  -1 when the stack is gone. */
static int64_t read_stack(agent_sampler *s, int fd, uint64_t key, bool keep)
{
    uint32_t at;
    if (firn_u64map_get(&s->frames_of, key, &at) == 1)
        return at;
    uint32_t id32 = (uint32_t)key;
    const void *k = key >> 32 ? (const void *)&key : (const void *)&id32;
    uint64_t pcs[PROFILE_MAX_DEPTH];
    int rc = s->no_batch || keep ? -1 : bpf_map_lookup_and_delete_elem(fd, k, pcs);
    if (rc != 0 && (keep || s->no_batch || errno == EINVAL || errno == ENOTSUP ||
                    errno == EOPNOTSUPP)) {
        if (!keep)
            s->no_batch = true;  /* an older kernel: look up now, clear in the sweep */
        rc = bpf_map_lookup_elem(fd, k, pcs);
    }
    if (rc != 0) {
        atomic_fetch_add(&s->stats->stacks_lost, 1);
        return -1;
    }
    size_t len = 0;
    while (len < PROFILE_MAX_DEPTH && pcs[len])
        len++;
    /* bounded: at most the stack maps' entries a drain, PROFILE_MAX_DEPTH each;
     * firn_grow told the array is full doubles it */
    while (s->n_frames + len > s->cap_frames)
        s->frames = firn_grow(s->frames, s->cap_frames, &s->cap_frames, sizeof *s->frames, 4096);
    memcpy(s->frames + s->n_frames, pcs, len * sizeof *pcs);
    s->spans = firn_grow(s->spans, s->n_spans, &s->cap_spans, sizeof *s->spans, 256);
    s->spans[s->n_spans] = (struct span){(uint32_t)s->n_frames, (uint32_t)len};
    s->n_frames += len;
    at = (uint32_t)s->n_spans++;
    firn_u64map_put(&s->frames_of, key, at, NULL);
    return at;
}

/* The frames of span at (-1: none) and their number. */
static const uint64_t *span_frames(const agent_sampler *s, int64_t at, size_t *n)
{
    *n = at < 0 ? 0 : s->spans[at].n;
    return *n ? s->frames + s->spans[at].first : NULL;
}

/* The thread, comm and stacks of key k into *out: the user stack from
 * ustacks_fd when the program walked it, else from stacks_fd as the kernel
 * stack; taken out of their maps (read_stack).  An off-CPU kernel stack
 * comes from off_kstacks and stays there.  The stacks hold until the next
 * call. */
static void key_stacks(agent_sampler *s, const struct profile_key *k, int stacks_fd,
                       int ustacks_fd, agent_sample *out)
{
    out->pid = k->pid;
    out->tid = k->tid;
    int64_t user = -1, kernel = -1;
    if (k->user_stack_hash)
        user = read_stack(s, ustacks_fd, k->user_stack_hash, false);
    else if (k->user_stack_id >= 0)
        user = read_stack(s, stacks_fd, (uint32_t)k->user_stack_id, false);
    if (k->kernel_stack_hash)
        kernel = read_stack(s, bpf_map__fd(s->skel->maps.off_kstacks), k->kernel_stack_hash,
                            true);
    else if (k->kernel_stack_id >= 0)
        kernel = read_stack(s, stacks_fd, (uint32_t)k->kernel_stack_id, false);
    out->user = span_frames(s, user, &out->n_user);
    out->kernel = span_frames(s, kernel, &out->n_kernel);
    memcpy(out->comm, k->comm, sizeof out->comm);
    out->comm[sizeof out->comm - 1] = '\0';
}

/* Take every count of the old generation out of its map into s->keys and
 * s->counts: batches of lookup-and-delete (a few system calls in all), or
 * key by key where the kernel has no batch operations. */
static size_t take_counts(agent_sampler *s, int fd, void *values, size_t vsize)
{
    size_t n = 0;
    if (!s->no_batch) {
        uint32_t batch = 0;
        bool first = true;
        for (;;) {
            __u32 got = (__u32)(PROFILE_MAX_KEYS - n);
            if (got == 0)
                return n;
            int rc = bpf_map_lookup_and_delete_batch(fd, first ? NULL : &batch, &batch,
                                                     s->keys + n, (char *)values + n * vsize,
                                                     &got, NULL);
            int e = errno;
            first = false;
            if (rc == 0 || e == ENOENT)
                n += got;  /* ENOENT: that was the last batch */
            if (rc != 0 && e == ENOENT)
                return n;
            if (rc != 0 && n == 0 && (e == EINVAL || e == ENOTSUP || e == EOPNOTSUPP)) {
                s->no_batch = true;
                break;
            }
            if (rc != 0)
                return n;  /* ENOSPC and the like: the rest waits for the sweep */
        }
    }
    struct profile_key key, *prev = NULL;
    while (n < PROFILE_MAX_KEYS && bpf_map_get_next_key(fd, prev, &key) == 0) {
        s->keys[n] = key;
        prev = &s->keys[n++];
    }
    for (size_t i = 0; i < n; i++) {
        if (bpf_map_lookup_elem(fd, &s->keys[i], (char *)values + i * vsize) != 0)
            memset((char *)values + i * vsize, 0, vsize);
        bpf_map_delete_elem(fd, &s->keys[i]);
    }
    return n;
}

/* Delete whatever is left in map fd (keys of size 4 or a profile_key). */
static void sweep(agent_sampler *s, int fd, bool stacks)
{
    if (stacks) {
        uint32_t id;
        size_t n = 0;
        uint32_t *prev = NULL;
        while (n < s->stack_map_size && bpf_map_get_next_key(fd, prev, &id) == 0) {
            s->stack_ids[n] = id;
            prev = &s->stack_ids[n++];
        }
        for (size_t i = 0; i < n; i++)
            bpf_map_delete_elem(fd, &s->stack_ids[i]);
    } else {
        struct profile_key key;
        while (bpf_map_get_next_key(fd, NULL, &key) == 0)
            if (bpf_map_delete_elem(fd, &key) != 0)
                break;
    }
}

/* Delete whatever is left in a ustacks map (8-byte keys). */
static void sweep_ustacks(agent_sampler *s, int fd)
{
    size_t n = 0;
    uint64_t *prev = NULL;
    while (n < s->stack_map_size && bpf_map_get_next_key(fd, prev, &s->ustack_keys[n]) == 0) {
        prev = &s->ustack_keys[n];
        n++;
    }
    for (size_t i = 0; i < n; i++)
        bpf_map_delete_elem(fd, &s->ustack_keys[i]);
}

/* The off-CPU counts of generation old; their stacks are in the
 * generation's stack maps, read (and taken out) as the CPU samples' are. */
static void drain_off_cpu(agent_sampler *s, uint32_t old, int stacks_fd, int ustacks_fd,
                          agent_sample_fn fn, void *ctx)
{
    int fd = bpf_map__fd(old ? s->skel->maps.off_counts1 : s->skel->maps.off_counts0);
    size_t n = take_counts(s, fd, s->off_values, sizeof *s->off_values);
    for (size_t i = 0; i < n; i++) {
        const struct profile_key *k = &s->keys[i];
        const struct profile_off_value *v = &s->off_values[i];
        if (v->switches == 0)
            continue;
        agent_sample sample = {.off_cpu = true, .count = v->switches,
                               .wait_ns = v->nanoseconds};
        key_stacks(s, k, stacks_fd, ustacks_fd, &sample);
        fn(ctx, &sample);
    }
    sweep(s, fd, false);
}

void agent_sampler_drain(agent_sampler *s, agent_sample_fn fn, void *ctx)
{
    uint32_t old = s->skel->bss->generation & 1;
    __atomic_store_n(&s->skel->bss->generation, old ^ 1, __ATOMIC_SEQ_CST);
    struct timespec grace = {0, FLIP_GRACE_NS};
    nanosleep(&grace, NULL);

    int counts_fd = bpf_map__fd(old ? s->skel->maps.counts1 : s->skel->maps.counts0);
    int stacks_fd = bpf_map__fd(old ? s->skel->maps.stacks1 : s->skel->maps.stacks0);
    int ustacks_fd = bpf_map__fd(old ? s->skel->maps.ustacks1 : s->skel->maps.ustacks0);
    size_t n = take_counts(s, counts_fd, s->counts, sizeof *s->counts);
    firn_u64map_clear(&s->frames_of);
    s->n_spans = s->n_frames = 0;
    for (size_t i = 0; i < n; i++) {
        const struct profile_key *k = &s->keys[i];
        if (s->counts[i] == 0)
            continue;
        agent_sample sample = {.count = s->counts[i]};
        key_stacks(s, k, stacks_fd, ustacks_fd, &sample);
        fn(ctx, &sample);
    }
    if (s->off_link)
        drain_off_cpu(s, old, stacks_fd, ustacks_fd, fn, ctx);
    /* What no key read (or all of it, where lookup-and-delete is missing):
     * usually nothing, one system call to find out. */
    sweep(s, counts_fd, false);
    sweep(s, stacks_fd, true);
    sweep_ustacks(s, ustacks_fd);
    /* a burst's copies would only hold memory until the next one */
    if (s->cap_frames > FRAMES_KEPT) {
        free(s->frames);
        free(s->spans);
        s->frames = NULL;
        s->spans = NULL;
        s->cap_frames = s->cap_spans = 0;
        firn_u64map_destroy(&s->frames_of);
        firn_u64map_init(&s->frames_of, 256);
    }
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
    bpf_link__destroy(s->off_return_link);
    bpf_link__destroy(s->off_link);
    free(s->off_values);
    free(s->links);
    free(s->fds);
    profile_bpf__destroy(s->skel);
    free(s->keys);
    free(s->counts);
    free(s->stack_ids);
    free(s->ustack_keys);
    agent_unwinder_free(s->unwinder);
    free(s->frames);
    free(s->spans);
    firn_u64map_destroy(&s->frames_of);
    free(s);
}
