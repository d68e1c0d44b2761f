/* agent.c -- firn-agent's loop: every interval, drain the BPF maps,
 * group the samples by process, symbolize them, build one pprof per
 * process, label it (pid, comm, executable, node, cgroup, container and
 * pod, external labels, relabel_configs), gzip it and queue it for the
 * pusher.  Nothing here waits for the network, so sampling and draining go
 * on whatever firn does.
 */
#include <assert.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "agent/internal.h"

#define PROFILE_NAME "process_cpu"
#define OFF_CPU_NAME "off_cpu"
#define KERNEL_MAPPING "[kernel.kallsyms]"
#define PROC_TTL 6         /* drains a process is kept after its last samples */
#define PROC_REFRESH 6     /* drains after which a process is read in full again */
#define GZIP_MIN_BYTES 4096   /* smaller profiles go raw: deflate's setup costs more */

/* A process of a drain and how many samples it had. */
typedef struct hot {
    agent_proc *proc;
    uint64_t samples;
} hot;

/* A sample copied out of the BPF maps for the length of one drain. */
typedef struct drained {
    uint32_t pid, tid;
    char comm[16];
    bool off_cpu;
    uint64_t count;
    uint64_t wait_ns;             /* off_cpu */
    uint64_t *user, *kernel;      /* in the drain's arena */
    size_t n_user, n_kernel;
} drained;

struct agent {
    agent_options o;
    char node[256];
    agent_sampler *sampler;
    agent_symbolizer *sym;
    agent_pushbuf *q;
    agent_pusher *pusher;
    CURL *escaper;                /* for curl_easy_escape only */
    agent_k8s *k8s;               /* NULL: not on Kubernetes (no --kubernetes) */

    /* Processes of the last drains, by pid: a process that exits before
     * the drain after its last samples is symbolized from what was read of
     * it then.  Kept PROC_TTL drains after its last samples while it runs,
     * freed at the first drain that finds it gone. */
    agent_proc **procs;
    size_t n_procs, cap_procs;
    size_t n_sorted;              /* procs[0..n_sorted) sorted by pid; new ones follow */
    uint64_t drains;

    /* one drain */
    firn_arena *arena;
    drained *samples;
    size_t n_samples, cap_samples;
    hot *hot;                     /* the drain's processes, for the unwinder */
    size_t n_hot, cap_hot;
    agent_push_item *ready;       /* the drain's profiles, queued together at its end */
    size_t n_ready, cap_ready;

    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;

    agent_sampler_stats sampler_stats;
    agent_symbolizer_stats sym_stats;
    agent_unwind_stats unwind_stats;
    agent_push_stats push_stats;
    _Atomic uint64_t samples_drained, profiles_built, profiles_relabel_dropped;
    _Atomic uint64_t profile_errors, processes_gone;
    _Atomic uint64_t last_processes, last_drain_us;
};

void agent_options_default(agent_options *o)
{
    *o = (agent_options){
        .frequency_hz = AGENT_DEFAULT_HZ,
        .duration_ms = AGENT_DEFAULT_DURATION_MS,
        .stack_map_size = 16384,
        .unwind_shards = PROFILE_DEFAULT_SHARDS,
        .off_cpu_min_ns = -1,
        .remote = "http://localhost:7070",
        .buffer_profiles = AGENT_DEFAULT_BUFFER_PROFILES,
        .buffer_bytes = AGENT_DEFAULT_BUFFER_BYTES,
    };
}

/* ---- collecting a drain ---------------------------------------------------------- */

static uint64_t *copy_stack(agent *a, const uint64_t *pcs, size_t n)
{
    if (n == 0)
        return NULL;
    assert(n <= PROFILE_MAX_DEPTH);
    uint64_t *c = firn_arena_alloc(a->arena, n * sizeof *c);
    memcpy(c, pcs, n * sizeof *c);
    return c;
}

static void collect(void *ctx, const agent_sample *s)
{
    agent *a = ctx;
    a->samples = firn_grow(a->samples, a->n_samples, &a->cap_samples, sizeof *a->samples, 1024);
    drained *d = &a->samples[a->n_samples];
    *d = (drained){.pid = s->pid, .tid = s->tid, .off_cpu = s->off_cpu, .count = s->count,
                   .wait_ns = s->wait_ns};
    memcpy(d->comm, s->comm, sizeof d->comm);
    d->user = copy_stack(a, s->user, s->n_user);
    d->n_user = s->n_user;
    d->kernel = copy_stack(a, s->kernel, s->n_kernel);
    d->n_kernel = s->n_kernel;
    a->n_samples++;
    if (!s->off_cpu)
        atomic_fetch_add(&a->samples_drained, s->count);
}

/* By pid, then CPU samples before off-CPU time: one profile per group. */
static int compare_pid(const void *x, const void *y)
{
    const drained *a = x, *b = y;
    if (a->pid != b->pid)
        return a->pid < b->pid ? -1 : 1;
    return (int)a->off_cpu - (int)b->off_cpu;
}

/* ---- one process's profile ----------------------------------------------------------- */

typedef struct builder {
    agent *a;
    agent_proc *proc;
    agent_profile prof;
    firn_u64map locations;        /* pc -> location */
    firn_u64map mappings;         /* mapping start -> mapping */
    uint32_t kernel_mapping;
} builder;

static uint32_t user_mapping(builder *b, const agent_user_frame *f)
{
    uint32_t idx;
    if (firn_u64map_get(&b->mappings, f->map->start, &idx))
        return idx;
    const agent_map *m = f->map;
    idx = agent_profile_mapping(&b->prof, m->start, m->limit, m->offset, m->path,
                                f->build_id ? f->build_id : "", f->has_functions,
                                f->has_functions);
    firn_u64map_put(&b->mappings, m->start, idx, NULL);
    return idx;
}

static uint32_t user_location(builder *b, uint64_t addr, bool leaf)
{
    uint64_t pc = leaf ? addr : addr - 1;
    uint32_t idx;
    if (firn_u64map_get(&b->locations, pc, &idx))
        return idx;
    agent_user_frame f;
    agent_symbolize_user(b->a->sym, b->proc, addr, leaf, &f);
    if (f.map)
        agent_unwind_note(b->proc, f.map);   /* its file's table is wanted */
    pprof_line lines[SYMBOLIZE_MAX_INLINE_DEPTH];
    size_t n = 0;
    for (size_t i = 0; i < f.n_frames; i++) {
        const symbolize_frame *fr = &f.frames[i];
        lines[n++] = (pprof_line){
            .function = agent_profile_function(&b->prof, fr->name, fr->system_name, fr->file,
                                               fr->start_line),
            .line = fr->line > 0 ? fr->line : 0,
        };
    }
    if (f.jit_name)
        lines[n++] = (pprof_line){
            .function = agent_profile_function(&b->prof, f.jit_name, f.jit_name, NULL, 0)};
    uint32_t mapping = f.map && f.map->path[0] ? user_mapping(b, &f) : PPROF_NONE;
    idx = agent_profile_location(&b->prof, mapping, pc, lines, n);
    firn_u64map_put(&b->locations, pc, idx, NULL);
    return idx;
}

static uint32_t kernel_location(builder *b, uint64_t addr, bool leaf)
{
    uint64_t pc = leaf ? addr : addr - 1;
    uint32_t idx;
    if (firn_u64map_get(&b->locations, pc, &idx))
        return idx;
    const char *name = agent_symbolize_kernel(b->a->sym, pc);
    if (b->kernel_mapping == PPROF_NONE)
        b->kernel_mapping = agent_profile_mapping(&b->prof, 0, UINT64_MAX, 0, KERNEL_MAPPING,
                                                  "", name != NULL, false);
    pprof_line line = {0};
    if (name)
        line.function = agent_profile_function(&b->prof, name, name, NULL, 0);
    idx = agent_profile_location(&b->prof, b->kernel_mapping, pc, &line, name ? 1 : 0);
    firn_u64map_put(&b->locations, pc, idx, NULL);
    return idx;
}

/* The process's own labels, then the external ones (which override). */
static size_t base_labels(agent *a, const agent_proc *proc, const char *comm, char *pid_text,
                          firn_label *out, size_t cap)
{
    size_t n = 0;
    agent_cgroup_info cg;
    agent_cgroup_parse(proc->cgroup, &cg);
    /* the strings must outlive this call: copy what is local */
    char *container = firn_arena_strndup(a->arena, cg.container_id, strlen(cg.container_id));
    char *pod = firn_arena_strndup(a->arena, cg.pod_uid, strlen(cg.pod_uid));
    char *unit = firn_arena_strndup(a->arena, cg.systemd_unit, strlen(cg.systemd_unit));
    firn_label own[16 + AGENT_K8S_MAX_LABELS] = {
        {"job", AGENT_DEFAULT_JOB},
        {"pid", pid_text},
        {"comm", comm},
        {"executable", proc->executable},
        {"node", a->node},
        {"cgroup", proc->cgroup},
        {"container_id", container ? container : ""},
        {"pod_uid", pod ? pod : ""},
        {"systemd_unit", unit ? unit : ""},
    };
    size_t n_own = 9;
    /* namespace, pod, container, __meta_kubernetes_pod_label_* */
    if (a->k8s)
        n_own += agent_k8s_labels(a->k8s, &cg, a->arena, own + n_own, AGENT_K8S_MAX_LABELS);
    for (size_t i = 0; i < n_own && n < cap; i++) {
        bool overridden = false;
        for (size_t k = 0; k < a->o.n_external_labels && !overridden; k++)
            overridden = strcmp(a->o.external_labels[k].name, own[i].name) == 0;
        if (!overridden)
            out[n++] = own[i];
    }
    for (size_t k = 0; k < a->o.n_external_labels && n < cap; k++)
        out[n++] = a->o.external_labels[k];
    return n;
}

/* The ingest query for labels: name, delta, then each label. */
static char *ingest_query(agent *a, bool off_cpu, const firn_label *labels, size_t n)
{
    firn_buf b = {0};
    firn_buf_puts(&b, off_cpu ? "name=" OFF_CPU_NAME "&delta=true" : "name=" PROFILE_NAME "&delta=true");
    for (size_t i = 0; i < n; i++) {
        const char *name = labels[i].name;
        if (strncmp(name, "__", 2) == 0 || !labels[i].value[0])
            continue;
        if (strcmp(name, "name") == 0 || strcmp(name, "delta") == 0 ||
            strcmp(name, "time") == 0) {
            firn_log(FIRN_LOG_WARN, "agent", "label name reserved by firn's ingest API; left out",
                     "label=%s", name);
            continue;
        }
        char *v = curl_easy_escape(a->escaper, labels[i].value, 0);
        if (!v)   /* libcurl's only failure here is its malloc's */
            firn_oom(strlen(labels[i].value) * 3 + 1);
        firn_buf_printf(&b, "&%s=%s", name, v);
        curl_free(v);
    }
    size_t len;
    return firn_buf_take(&b, &len);
}

static int compare_proc(const void *x, const void *y)
{
    const agent_proc *a = *(agent_proc *const *)x, *b = *(agent_proc *const *)y;
    return a->pid < b->pid ? -1 : a->pid > b->pid;
}

static agent_proc *cached_proc(agent *a, int pid)
{
    size_t lo = 0, hi = a->n_sorted;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (a->procs[mid]->pid < pid)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < a->n_sorted && a->procs[lo]->pid == pid ? a->procs[lo] : NULL;
}

/* The process as /proc shows it now: the cached one while it is the same
 * image (only /proc/PID/stat read), else read anew (and added to the
 * cache); as it was last read when it has exited since. */
static agent_proc *proc_for(agent *a, int pid)
{
    agent_proc *old = cached_proc(a, pid);
    agent_proc_stat now;
    bool running = agent_proc_read_stat(pid, &now) == 0;
    if (old && (!running || (agent_proc_same(old, &now) &&
                             a->drains - old->loaded_at < PROC_REFRESH))) {
        old->last_seen = a->drains;
        old->maps_current = old->perf_map_current = false;
        if (running)
            snprintf(old->comm, sizeof old->comm, "%s", now.comm);   /* prctl renames */
        else
            old->gone = true;
        return old;
    }
    a->procs = firn_grow(a->procs, a->n_procs, &a->cap_procs, sizeof *a->procs, 64);
    agent_proc *fresh = firn_xcalloc(1, sizeof *fresh);
    if (!running || agent_proc_load(fresh, pid, &now, NULL) < 0) {
        agent_proc_free(fresh);
        fresh->pid = pid;   /* only its pid and samples are known */
        atomic_fetch_add(&a->processes_gone, 1);
    }
    if (old)
        old->superseded = true;
    fresh->loaded_at = fresh->last_seen = a->drains;
    a->procs[a->n_procs++] = fresh;
    return fresh;
}

/* After a drain: keep the processes read in full that were sampled in the
 * last PROC_TTL drains and have not exited; free the rest. */
static void procs_expire(agent *a)
{
    size_t n = 0;
    for (size_t i = 0; i < a->n_procs; i++) {
        agent_proc *p = a->procs[i];
        if (!p->superseded && p->loaded && !p->gone && a->drains - p->last_seen < PROC_TTL) {
            a->procs[n++] = p;
        } else {
            if (!p->superseded && agent_sampler_unwinder(a->sampler))
                agent_unwinder_forget(agent_sampler_unwinder(a->sampler), p->pid);
            agent_proc_free(p);
            free(p);
        }
    }
    a->n_procs = n;
    firn_sort(a->procs, a->n_procs, sizeof *a->procs, compare_proc);
    a->n_sorted = n;
}

/* Replace the raw profile in *body by its gzip (level 1). */
static int gzip_body(unsigned char **body, size_t *len, firn_err *err)
{
    unsigned char *gz;
    size_t gz_len;
    if (pprof_gzip(*body, *len, 1, &gz, &gz_len, err) < 0)
        return -1;
    free(*body);
    *body = gz;
    *len = gz_len;
    return 0;
}

/* Samples [from, to) of one pid into a queued profile. */
static void build_process(agent *a, const drained *s, size_t n, int64_t time_ns,
                          int64_t duration_ns)
{
    int pid = (int)s[0].pid;
    firn_err err = {0};
    agent_proc *proc = proc_for(a, pid);
    const char *comm = proc->comm[0] ? proc->comm : s[0].comm;
    for (size_t i = 0; i < n && !proc->comm[0]; i++)
        if (s[i].tid == s[i].pid)
            comm = s[i].comm;   /* the main thread names the process */

    builder b = {.a = a, .proc = proc, .kernel_mapping = PPROF_NONE};
    bool off_cpu = s[0].off_cpu;
    firn_u64map_init(&b.locations, 256);
    firn_u64map_init(&b.mappings, 16);
    if (off_cpu)
        agent_profile_init_off_cpu(&b.prof, time_ns, duration_ns);
    else
        agent_profile_init(&b.prof, a->o.frequency_hz, time_ns, duration_ns);
    /* pprof takes mapping 1 for the program */
    for (size_t i = 0; i < proc->maps.n && proc->executable[0]; i++) {
        if (strcmp(proc->maps.maps[i].path, proc->executable) == 0) {
            agent_user_frame f;
            agent_symbolize_user(a->sym, proc, proc->maps.maps[i].start, true, &f);
            if (f.map)
                user_mapping(&b, &f);
            break;
        }
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t locs[2 * 127];
        size_t k = 0;
        /* an off-CPU kernel stack is a blocked thread's: return addresses
         * only, its leaf where it called into the scheduler */
        for (size_t j = 0; j < s[i].n_kernel; j++)
            locs[k++] = kernel_location(&b, s[i].kernel[j], j == 0 && !off_cpu);
        for (size_t j = 0; j < s[i].n_user; j++)
            locs[k++] = user_location(&b, s[i].user[j], j == 0 && s[i].n_kernel == 0);
        if (off_cpu)
            agent_profile_sample_off_cpu(&b.prof, locs, k, s[i].count, s[i].wait_ns, s[i].comm);
        else
            agent_profile_sample(&b.prof, locs, k, s[i].count, s[i].comm);
    }
    pprof_profile *p = agent_profile_finish(&b.prof, &err);
    unsigned char *body = NULL;
    size_t body_len = 0;
    if (pprof_encode(p, 0, &body, &body_len, &err) < 0 ||
        (body_len >= GZIP_MIN_BYTES && gzip_body(&body, &body_len, &err) < 0)) {
        atomic_fetch_add(&a->profile_errors, 1);
        char q[600];
        firn_log(FIRN_LOG_WARN, "agent", "building a profile failed", "pid=%d err=%s", pid,
                 firn_log_quote(q, sizeof q, err.msg));
        pprof_free(p);
        free(body);
        goto out;
    }
    pprof_free(p);

    char pid_text[16];
    snprintf(pid_text, sizeof pid_text, "%d", pid);
    firn_label in[16 + AGENT_K8S_MAX_LABELS + 64];   /* own, Kubernetes, external */
    size_t n_in = base_labels(a, proc, comm, pid_text, in, sizeof in / sizeof *in);
    firn_label *labels = NULL;
    size_t n_labels = 0;
    int kept = firn_labels_normalize(in, &n_in, &err);
    if (kept == 0)
        kept = firn_relabel_process(a->o.relabel_configs, a->o.n_relabel_configs, in, n_in,
                                    a->arena, &labels, &n_labels, &err);
    if (kept <= 0) {
        if (kept < 0) {
            atomic_fetch_add(&a->profile_errors, 1);
            char q[600];
            firn_log(FIRN_LOG_WARN, "agent", "labeling a profile failed", "pid=%d err=%s", pid,
                     firn_log_quote(q, sizeof q, err.msg));
        } else {
            atomic_fetch_add(&a->profiles_relabel_dropped, 1);
        }
        free(body);
        goto out;
    }
    agent_push_item it = {.body = body, .body_len = body_len,
                          .query = ingest_query(a, off_cpu, labels, n_labels),
                          .enqueued_ms = firn_mono_ms()};
    a->ready = firn_grow(a->ready, a->n_ready, &a->cap_ready, sizeof *a->ready, 64);
    a->ready[a->n_ready++] = it;
    atomic_fetch_add(&a->profiles_built, 1);
    /* for the unwinder after the drain's profiles (symbolizing re-read the
     * maps an address was missing from); only processes whose profiles are
     * kept: the relabeling's drops would waste tables */
    uint64_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += s[i].count;
    if (!off_cpu) {
        a->hot = firn_grow(a->hot, a->n_hot, &a->cap_hot, sizeof *a->hot, 64);
        a->hot[a->n_hot++] = (struct hot){proc, total};
    }
out:
    agent_profile_discard(&b.prof);
    firn_u64map_destroy(&b.locations);
    firn_u64map_destroy(&b.mappings);
}

static int compare_hot(const void *x, const void *y)
{
    const hot *a = x, *b = y;
    return a->samples > b->samples ? -1 : a->samples < b->samples;
}

/* Unwind tables for the drain's kept processes, busiest first (they win
 * the room for tables over quieter ones): compiling a
 * file's CFI takes milliseconds (a second for the largest libraries), so
 * each drain gets a budget of a hundredth of the interval (at least
 * 50 ms); who is left waits for the next drain, walked by frame pointers
 * meanwhile. */
static void update_unwinder(agent *a)
{
    agent_unwinder *u = agent_sampler_unwinder(a->sampler);
    if (!u)
        return;
    agent_unwinder_begin(u, a->o.duration_ms / 100 > 50 ? a->o.duration_ms / 100 : 50);
    firn_sort(a->hot, a->n_hot, sizeof *a->hot, compare_hot);
    for (size_t i = 0; i < a->n_hot; i++)
        agent_unwinder_update(u, a->hot[i].proc, a->hot[i].samples);
}

static void drain(agent *a, int64_t time_ns, int64_t duration_ns)
{
    int64_t t0 = firn_mono_ms();
    a->arena = firn_arena_new(1 << 16);
    a->n_samples = 0;
    agent_sampler_drain(a->sampler, collect, a);
    firn_sort(a->samples, a->n_samples, sizeof *a->samples, compare_pid);
    agent_symbolizer_begin(a->sym);
    a->drains++;
    a->n_hot = 0;
    size_t processes = 0;
    for (size_t i = 0; i < a->n_samples;) {
        size_t j = i;
        while (j < a->n_samples && a->samples[j].pid == a->samples[i].pid &&
               a->samples[j].off_cpu == a->samples[i].off_cpu)
            j++;
        build_process(a, &a->samples[i], j - i, time_ns, duration_ns);
        processes += !a->samples[i].off_cpu;
        i = j;
    }
    agent_pushbuf_put_many(a->q, a->ready, a->n_ready);
    a->n_ready = 0;
    update_unwinder(a);
    procs_expire(a);
    agent_symbolizer_end(a->sym);
    firn_arena_free(a->arena);
    a->arena = NULL;
    /* the drain's array would only hold memory until the next one */
    if (a->cap_samples > 4096) {
        free(a->samples);
        a->samples = NULL;
        a->cap_samples = 0;
    }
    atomic_store(&a->last_processes, processes);
    atomic_store(&a->last_drain_us, (uint64_t)(firn_mono_ms() - t0) * 1000);
}

/* ---- the loop ------------------------------------------------------------------- */

agent *agent_new(const agent_options *o, firn_err *err)
{
    if (o->frequency_hz < 1 || o->frequency_hz > 10000) {
        firn_errf(err, FIRN_EINVAL, "sampling frequency %d Hz: want 1 to 10000", o->frequency_hz);
        return NULL;
    }
    if (o->duration_ms < 100) {
        firn_errf(err, FIRN_EINVAL, "profiling duration %" PRId64 "ms: want at least 100ms",
                  o->duration_ms);
        return NULL;
    }
    if (o->stack_map_size < 64 || o->stack_map_size > (1u << 22)) {
        firn_errf(err, FIRN_EINVAL, "stack map size %u: want 64 to 4194304", o->stack_map_size);
        return NULL;
    }
    if (o->buffer_profiles < 1 || o->buffer_profiles > AGENT_MAX_BUFFER_PROFILES ||
        o->buffer_bytes < 1) {
        firn_errf(err, FIRN_EINVAL, "push buffer of %zu profiles and %zu bytes: want 1 to %d "
                  "profiles and at least 1 byte", o->buffer_profiles, o->buffer_bytes,
                  AGENT_MAX_BUFFER_PROFILES);
        return NULL;
    }
    agent *a = firn_xcalloc(1, sizeof *a);
    a->o = *o;
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cond, NULL);
    if (o->node && *o->node)
        snprintf(a->node, sizeof a->node, "%s", o->node);
    else if (gethostname(a->node, sizeof a->node - 1) != 0)
        snprintf(a->node, sizeof a->node, "unknown");
    a->escaper = curl_easy_init();
    if (!a->escaper)   /* curl_global_init ran in main: only its malloc can fail */
        firn_oom(sizeof(void *));
    a->q = agent_pushbuf_new(o->buffer_profiles, o->buffer_bytes);
    a->sampler = agent_sampler_new(o->frequency_hz, o->stack_map_size, o->unwind_shards,
                                   o->off_cpu_min_ns, &a->sampler_stats, &a->unwind_stats, err);
    if (!a->sampler) {
        agent_free(a, 0);
        return NULL;
    }
    if (o->kubernetes && !(a->k8s = agent_k8s_start(a->node, o->kubeconfig, err))) {
        agent_free(a, 0);
        return NULL;
    }
    a->sym = agent_symbolizer_new(&a->sym_stats);
    a->pusher = agent_pusher_start(o->remote, a->q, &a->push_stats, err);
    if (!a->pusher) {
        agent_free(a, 0);
        return NULL;
    }
    return a;
}

void agent_run(agent *a)
{
    int64_t last_wall_ns = firn_now_ms() * 1000000;
    int64_t next = firn_mono_ms() + a->o.duration_ms;
    for (;;) {
        pthread_mutex_lock(&a->mu);
        while (!a->stop) {
            int64_t left = next - firn_mono_ms();
            if (left <= 0)
                break;
            struct timespec until = firn_deadline_ms(left);
            pthread_cond_timedwait(&a->cond, &a->mu, &until);
        }
        bool stop = a->stop;
        pthread_mutex_unlock(&a->mu);
        int64_t now_ns = firn_now_ms() * 1000000;
        drain(a, last_wall_ns, now_ns - last_wall_ns);
        last_wall_ns = now_ns;
        if (stop)
            return;
        next += a->o.duration_ms;
        if (next < firn_mono_ms())   /* a drain longer than the interval: no catching up */
            next = firn_mono_ms() + a->o.duration_ms;
    }
}

void agent_stop(agent *a)
{
    pthread_mutex_lock(&a->mu);
    a->stop = true;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->mu);
}

void agent_free(agent *a, int64_t grace_ms)
{
    if (!a)
        return;
    agent_sampler_free(a->sampler);   /* sampling stops first */
    agent_pusher_stop(a->pusher, grace_ms);
    agent_symbolizer_free(a->sym);
    agent_k8s_stop(a->k8s);
    agent_pushbuf_free(a->q);
    if (a->escaper)
        curl_easy_cleanup(a->escaper);
    free(a->samples);
    free(a->hot);
    free(a->ready);
    for (size_t i = 0; i < a->n_procs; i++) {
        agent_proc_free(a->procs[i]);
        free(a->procs[i]);
    }
    free(a->procs);
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cond);
    free(a);
}

/* ---- metrics --------------------------------------------------------------------- */

static void counter(firn_buf *b, const char *name, const char *help, uint64_t v)
{
    firn_metrics_single(b, name, "counter", help, (double)v);
}

static void gauge(firn_buf *b, const char *name, const char *help, double v)
{
    firn_metrics_single(b, name, "gauge", help, v);
}

void agent_metrics_write(agent *a, firn_buf *b)
{
    const agent_sampler_stats *ss = &a->sampler_stats;
    counter(b, "firn_agent_samples_total", "CPU samples the BPF program took (idle excluded).",
            atomic_load(&ss->samples));
    counter(b, "firn_agent_samples_drained_total", "Samples read from the BPF maps.",
            atomic_load(&a->samples_drained));
    firn_metrics_header(b, "firn_agent_stack_errors_total", "counter",
                        "Stacks that could not be read (EFAULT, no stack of that kind, "
                        "excluded).");
    firn_label user[] = {{"stack", "user"}}, kernel[] = {{"stack", "kernel"}};
    firn_metrics_sample(b, "firn_agent_stack_errors_total", user, 1,
                        (double)atomic_load(&ss->user_stack_errors));
    firn_metrics_sample(b, "firn_agent_stack_errors_total", kernel, 1,
                        (double)atomic_load(&ss->kernel_stack_errors));
    counter(b, "firn_agent_stack_map_full_total",
            "Stacks lost because the stack map was full (raise --stack-map-size).",
            atomic_load(&ss->stack_map_full));
    counter(b, "firn_agent_counts_map_full_total",
            "Samples lost because the counts map was full.", atomic_load(&ss->counts_full));
    counter(b, "firn_agent_stacks_lost_total", "Stack ids a count named that were gone.",
            atomic_load(&ss->stacks_lost));
    counter(b, "firn_agent_drains_total", "Drains of the BPF maps.", atomic_load(&ss->drains));
    firn_metrics_header(b, "firn_agent_user_stacks_walked_total", "counter",
                        "User stacks the BPF program walked itself (processes with unwind "
                        "tables), by how: with tables (a frame or more) or frame pointers only.");
    firn_label by_table[] = {{"unwinder", "table"}}, by_fp[] = {{"unwinder", "frame_pointer"}};
    firn_metrics_sample(b, "firn_agent_user_stacks_walked_total", by_table, 1,
                        (double)atomic_load(&ss->stacks_table));
    firn_metrics_sample(b, "firn_agent_user_stacks_walked_total", by_fp, 1,
                        (double)atomic_load(&ss->stacks_fp));
    firn_metrics_header(b, "firn_agent_user_stacks_truncated_total", "counter",
                        "Walked user stacks that ended before the outermost frame, by why.");
    const struct { const char *reason; uint64_t v; } trunc[] = {
        {"no_table", atomic_load(&ss->trunc_no_table)},
        {"table_miss", atomic_load(&ss->trunc_table_miss)},
        {"depth", atomic_load(&ss->trunc_depth)},
        {"read_fault", atomic_load(&ss->trunc_read_fault)},
    };
    for (size_t i = 0; i < sizeof trunc / sizeof trunc[0]; i++) {
        firn_label l[] = {{"reason", trunc[i].reason}};
        firn_metrics_sample(b, "firn_agent_user_stacks_truncated_total", l, 1,
                            (double)trunc[i].v);
    }
    counter(b, "firn_agent_walked_stack_map_full_total",
            "Walked user stacks lost because their map was full (raise --stack-map-size).",
            atomic_load(&ss->ustack_map_full));
    const agent_unwind_stats *us = &a->unwind_stats;
    gauge(b, "firn_agent_unwind_tables", "Files whose unwind table is in the BPF maps.",
          (double)atomic_load(&us->tables));
    gauge(b, "firn_agent_unwind_table_rows", "Unwind rows in the BPF maps.",
          (double)atomic_load(&us->rows));
    gauge(b, "firn_agent_unwind_table_bytes",
          "BPF memory taken by unwind tables (whole shards of --unwind-table-shards).",
          (double)atomic_load(&us->bytes));
    counter(b, "firn_agent_unwind_tables_loaded_total", "Unwind tables compiled and loaded.",
            atomic_load(&us->loaded));
    counter(b, "firn_agent_unwind_tables_failed_total",
            "Mapped files without usable CFI (or unreadable): frame pointers there.",
            atomic_load(&us->failed));
    counter(b, "firn_agent_unwind_tables_evicted_total",
            "Unwind tables evicted (least recently used) to make room.",
            atomic_load(&us->evicted));
    counter(b, "firn_agent_unwind_tables_no_room_total",
            "Unwind tables that did not fit (raise --unwind-table-shards).",
            atomic_load(&us->no_room));
    counter(b, "firn_agent_unwind_procs_full_total",
            "Processes left to frame pointers because the BPF process map was full.",
            atomic_load(&us->procs_full));
    counter(b, "firn_agent_unwind_updates_deferred_total",
            "Processes whose unwind tables waited for the next drain (compile budget spent).",
            atomic_load(&us->deferred));
    counter(b, "firn_agent_unwind_mappings_dropped_total",
            "Executable mappings past the 64 per process the BPF side sees.",
            atomic_load(&us->mappings_dropped));
    gauge(b, "firn_agent_perf_events", "CPUs sampled (one perf event each).",
          (double)atomic_load(&ss->cpus));
    gauge(b, "firn_agent_bpf_map_bytes",
          "Memory the kernel charges for the BPF maps (memlock; for maps allocated on demand, "
          "their most).", (double)atomic_load(&ss->map_bytes));
    gauge(b, "firn_agent_last_drain_processes", "Processes in the last drain.",
          (double)atomic_load(&a->last_processes));
    gauge(b, "firn_agent_last_drain_duration_seconds",
          "How long the last drain took (symbolizing and building included).",
          (double)atomic_load(&a->last_drain_us) / 1e6);
    counter(b, "firn_agent_processes_gone_total",
            "Processes that exited before their samples were symbolized.",
            atomic_load(&a->processes_gone));
    if (a->k8s) {
        uint64_t failures;
        size_t pods = agent_k8s_pods(a->k8s, &failures);
        gauge(b, "firn_agent_kubernetes_pods", "Pods of this node known from the API server.",
              (double)pods);
        counter(b, "firn_agent_kubernetes_refresh_failures_total",
                "Lists and watches of this node's pods that failed (retried with back-off).",
                failures);
    }

    const agent_symbolizer_stats *ys = &a->sym_stats;
    counter(b, "firn_agent_symbol_cache_hits_total",
            "User addresses found in a file's symbol cache.", atomic_load(&ys->cache_hits));
    counter(b, "firn_agent_symbol_cache_misses_total",
            "User addresses looked up in a file's symbols and DWARF.",
            atomic_load(&ys->cache_misses));
    counter(b, "firn_agent_symbol_files_opened_total", "Mapped files opened for symbols.",
            atomic_load(&ys->objects_opened));
    counter(b, "firn_agent_symbol_file_errors_total",
            "Mapped files or perf maps that could not be read.", atomic_load(&ys->object_errors));
    gauge(b, "firn_agent_symbol_files", "Mapped files known to the symbolizer, one per build ID.",
          (double)atomic_load(&ys->objects_open));
    gauge(b, "firn_agent_symbol_files_open",
          "Of those, files kept open (those with DWARF; the others are named by their index).",
          (double)atomic_load(&ys->files_open));
    gauge(b, "firn_agent_symbol_index_bytes",
          "Bytes of the files' symbol indexes (addresses and copied names).",
          (double)atomic_load(&ys->index_bytes));

    counter(b, "firn_agent_profiles_total", "Profiles built and queued for pushing.",
            atomic_load(&a->profiles_built));
    firn_metrics_header(b, "firn_agent_profiles_dropped_total", "counter",
                        "Profiles not pushed, by reason.");
    firn_label full[] = {{"reason", "buffer_full"}}, relabel[] = {{"reason", "relabel"}},
               error[] = {{"reason", "error"}};
    firn_metrics_sample(b, "firn_agent_profiles_dropped_total", full, 1,
                        (double)agent_pushbuf_dropped(a->q));
    firn_metrics_sample(b, "firn_agent_profiles_dropped_total", relabel, 1,
                        (double)atomic_load(&a->profiles_relabel_dropped));
    firn_metrics_sample(b, "firn_agent_profiles_dropped_total", error, 1,
                        (double)atomic_load(&a->profile_errors));
    gauge(b, "firn_agent_push_buffer_profiles", "Profiles waiting to be pushed.",
          (double)agent_pushbuf_len(a->q));
    gauge(b, "firn_agent_push_buffer_bytes", "Bytes of the profiles waiting to be pushed.",
          (double)agent_pushbuf_bytes(a->q));
    const agent_push_stats *ps = &a->push_stats;
    firn_metrics_header(b, "firn_agent_pushes_total", "counter",
                        "Push requests to firn (each a batch of the profiles waiting), by result: "
                        "success (firn answered), error (retried), rejected (profiles firn "
                        "refused).");
    firn_label ok[] = {{"result", "success"}}, failed[] = {{"result", "error"}},
               rejected[] = {{"result", "rejected"}};
    firn_metrics_sample(b, "firn_agent_pushes_total", ok, 1, (double)atomic_load(&ps->ok));
    firn_metrics_sample(b, "firn_agent_pushes_total", failed, 1,
                        (double)atomic_load(&ps->failed));
    firn_metrics_sample(b, "firn_agent_pushes_total", rejected, 1,
                        (double)atomic_load(&ps->rejected));
    counter(b, "firn_agent_push_retries_total", "Profiles put back to be pushed again.",
            atomic_load(&ps->retried));
    counter(b, "firn_agent_profiles_pushed_total", "Profiles firn stored.",
            atomic_load(&ps->profiles));
    counter(b, "firn_agent_pushed_bytes_total", "Gzipped profile bytes firn accepted.",
            atomic_load(&ps->bytes));
}
