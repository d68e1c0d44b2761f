/* bench_fleet.c -- `firnctl bench fleet`: the store at fleet scale, on
 * profiles that look like production, each figure next to an anchor
 * measured in the same run.
 *
 * The fleet.  Every target of job "fleet" sends, every 10 s, four
 * profiles: a Go CPU profile, a Go heap/allocs profile, a goroutine profile
 * and an agent-style whole-system CPU profile (profile name
 * parca_agent_cpu).  Each is built from a big real profile of that kind
 * (the fixtures below, plus any FILE given, e.g. profiles just recorded
 * from test/goservice): target t keeps its own random 30-90% of the base's
 * stacks, and each of its profiles scales every value by a random 1..4, so
 * stacks repeat across the fleet as they do across replicas of one
 * service, but not totally.  A second job, "history", is one target
 * sending the agent-style profile for `history_days` days (one a minute by
 * default), so that flame graphs over 1 h, 24 h and 7 d can be compared on
 * one job; the smallest base and the wider spacing keep the default run
 * within about 8 minutes on 2 cores.
 *
 * Figures go through the paths a server uses: ingest_pprof_async (decode,
 * then tsdb_append_async: a producer goes on while its profiles wait for
 * their commit, as the scrape path's workers do) from producer threads, tsdb_merge for merges and
 * pql_profile_tree (what /api/v1/profile serves a flame graph from) for the
 * flame graphs, so whatever those paths learn (rollups) shows here.
 */
#include "bench.h"
#include "bench_util.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#define XXH_STATIC_LINKING_ONLY
#include <xxhash.h>

#include "ingest/ingest.h"
#include "promql-like/pql.h"
#include "tsdb/tsdb.h"

enum kind { K_CPU, K_HEAP, K_GOROUTINE, K_AGENT, K_KINDS };

static const char *const kind_profile_name[K_KINDS] = {"process_cpu", "memory", "goroutine",
                                                       "parca_agent_cpu"};

/* The fixtures each kind is built from (in the fixtures directory; see its
 * MANIFEST.md): Go's own large CPU profile, Pyroscope's and Parca's Go heap
 * profiles, a Go goroutine profile, Parca's CPU profile with labels. */
static const struct {
    const char *file;
    enum kind kind;
} fixtures[] = {
    {"pprof-internal_proftest_testdata_large.cpu", K_CPU},
    {"pyro-pkg_pprof_testdata_heap", K_HEAP},
    {"parca-pkg_parca_testdata_alloc_objects.pb.gz", K_HEAP},
    {"pyro-pkg_og_convert_pprof_testdata_req_2.pprof", K_GOROUTINE},
    {"parca-pkg_query_testdata_profile-with-labels.pb.gz", K_AGENT},
};

#define MAX_BASES 32
#define VARIANTS 3           /* value variants per target and kind */
#define STEP_MS 10000        /* the fleet's scrape interval */

struct fbase {
    const char *file;
    enum kind kind;
    bool given;              /* a FILE given, not one of the fixtures */
    pprof_profile *p;
    char type[256];          /* __name__ of its first sample type */
};

/* One target's profiles of one kind: VARIANTS gzipped pprof files. */
struct tprofiles {
    unsigned char *gz[VARIANTS];
    size_t len[VARIANTS];
    uint64_t samples[VARIANTS];   /* nonzero values over all columns */
    size_t stacks;                /* samples (distinct stacks) per profile */
    bool *delta_columns;          /* heap: alloc_* are deltas */
};

struct target {
    char instance[64], pod[64], zone[16], job[16];
    firn_label labels[4];
    struct tprofiles k[K_KINDS];
};

struct fleet {
    const bench_fleet_options *o;
    struct fbase bases[MAX_BASES];
    size_t n_bases;
    struct target *targets;       /* o->targets of them, then the history target */
    long steps, hsteps;
    int64_t t_end;                /* the newest timestamp + 1 */
    tsdb *db;
    /* what producers work through */
    _Atomic long next;
    long total;
    bool history;                 /* this phase ingests the history job */
    _Atomic uint64_t samples;
    _Atomic int failed;
    firn_err err;
    pthread_mutex_t mu;
    /* appends handed to the store (ingest_pprof_async) and its answers, which
     * the producers finish (mu) */
    long in_store;
    struct answer *answers;
    size_t n_answers, cap_answers;
    pthread_cond_t answered;
    /* RSS sampling */
    _Atomic int sampling;
    long rss_anon_peak_kb, rss_file_peak_kb;
    firn_u64map stacks_seen;      /* distinct stack identities over everything sent */
    /* the gzipped profiles producers send, in a shared mapping (pool_to_shared) */
    unsigned char *pool;
    size_t pool_len;
};

/* RssAnon and RssFile of this process in kB (from /proc/self/status). */
static void rss_kb(long *anon, long *file)
{
    *anon = *file = 0;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return;
    char line[256];
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "RssAnon:", 8) == 0)
            *anon = strtol(line + 8, NULL, 10);
        else if (strncmp(line, "RssFile:", 8) == 0)
            *file = strtol(line + 8, NULL, 10);
    }
    fclose(f);
}

static void *rss_sampler(void *arg)
{
    struct fleet *f = arg;
    while (atomic_load(&f->sampling)) {
        long a, fi;
        rss_kb(&a, &fi);
        pthread_mutex_lock(&f->mu);
        if (a > f->rss_anon_peak_kb)
            f->rss_anon_peak_kb = a;
        if (fi > f->rss_file_peak_kb)
            f->rss_file_peak_kb = fi;
        pthread_mutex_unlock(&f->mu);
        struct timespec pause = {0, 20 * 1000000};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

static enum kind classify(const pprof_profile *p)
{
    const char *pt = pprof_str(p, p->period_type.type);
    for (size_t i = 0; i < p->n_sample_types; i++)
        if (strcmp(pprof_str(p, p->sample_types[i].type), "goroutine") == 0)
            return K_GOROUTINE;
    return strcmp(pt, "cpu") == 0 ? K_CPU : K_HEAP;
}

static int load_base(struct fleet *f, const char *path, int kind, FILE *log, firn_err *err)
{
    if (f->n_bases == MAX_BASES)
        return firn_errf(err, FIRN_EINVAL, "at most %d profiles", MAX_BASES);
    unsigned char *buf;
    size_t len;
    if (firn_read_file(path, 64u << 20, &buf, &len, err) < 0)
        return err->code;
    pprof_profile *p = pprof_decode(buf, len, NULL, err);
    free(buf);
    if (!p) {
        firn_err_prefix(err, "%s", path);
        return err->code;
    }
    struct fbase *b = &f->bases[f->n_bases++];
    b->file = path;
    b->p = p;
    /* what one ingest worker holds while this profile is in flight */
    fprintf(log, "bench fleet: %s: %zu samples, %zu bytes as sent, %.1f MB decoded\n", path,
            p->n_samples, len, (double)firn_arena_bytes(p->arena) / 1e6);
    b->kind = kind < 0 ? classify(p) : (enum kind)kind;
    b->given = kind < 0;
    firn_profile_type_format(b->type, sizeof b->type, kind_profile_name[b->kind],
                             pprof_str(p, p->sample_types[0].type),
                             pprof_str(p, p->sample_types[0].unit),
                             pprof_str(p, p->period_type.type),
                             pprof_str(p, p->period_type.unit),
                             b->kind == K_CPU || b->kind == K_AGENT);
    return 0;
}

/* Target i's base of a kind: the fixtures in turn, except that one target
 * in four takes the FILEs given (profiles recorded from a small service)
 * in turn when there are any, so the big fixtures set the fleet's shape. */
static const struct fbase *base_of(const struct fleet *f, enum kind k, long i)
{
    size_t n_fix = 0, n_given = 0;
    for (size_t j = 0; j < f->n_bases; j++)
        if (f->bases[j].kind == k)
            *(f->bases[j].given ? &n_given : &n_fix) += 1;
    assert(n_fix > 0);
    bool given = n_given > 0 && i % 4 == 3;
    long want = given ? (i / 4) % (long)n_given : i % (long)n_fix;
    for (size_t j = 0; j < f->n_bases; j++)
        if (f->bases[j].kind == k && f->bases[j].given == given && want-- == 0)
            return &f->bases[j];
    return NULL;
}

/* A copy of src with only the samples keep[] marks, values scaled by
 * scale[], through the builder so that unused locations, functions and
 * strings are not carried (the gzipped size is then what a producer would
 * send for those stacks). */
static pprof_profile *subset(const pprof_profile *src, const bool *keep, const int64_t *scale,
                             firn_err *err)
{
    pprof_builder *b = pprof_builder_new(src->n_sample_types);
    int64_t *str = malloc(src->n_strings * sizeof *str);
    uint32_t *fn = malloc((src->n_functions + 1) * sizeof *fn);
    uint32_t *mp = malloc((src->n_mappings + 1) * sizeof *mp);
    uint32_t *loc = malloc((src->n_locations + 1) * sizeof *loc);
    int64_t *vals = malloc(src->n_sample_types * sizeof *vals);
    uint32_t *locs = NULL;
    size_t locs_cap = 0;
    pprof_label *labels = NULL;
    size_t labels_cap = 0;
    int rc = str && fn && mp && loc && vals ? 0 : -1;
    for (size_t i = 0; !rc && i < src->n_strings; i++)
        str[i] = -1;
    for (size_t i = 0; !rc && i < src->n_functions; i++)
        fn[i] = PPROF_NONE;
    for (size_t i = 0; !rc && i < src->n_mappings; i++)
        mp[i] = PPROF_NONE;
    for (size_t i = 0; !rc && i < src->n_locations; i++)
        loc[i] = PPROF_NONE;
#define STR(idx) \
    (str[idx] >= 0 ? str[idx] \
                   : (str[idx] = pprof_builder_string(b, src->strings[idx], \
                                                      strlen(src->strings[idx]))))
    for (size_t t = 0; !rc && t < src->n_sample_types; t++)
        pprof_builder_sample_type(b, t, pprof_str(src, src->sample_types[t].type),
                                  pprof_str(src, src->sample_types[t].unit));
    if (!rc) {
        pprof_builder_period(b, pprof_str(src, src->period_type.type),
                             pprof_str(src, src->period_type.unit), src->period);
        pprof_builder_time(b, src->time_nanos, src->duration_nanos);
    }
    for (size_t i = 0; !rc && i < src->n_samples; i++) {
        const pprof_sample *s = &src->samples[i];
        if (!keep[i])
            continue;
        if (s->n_locations > locs_cap) {
            locs_cap = s->n_locations * 2;
            uint32_t *nl = realloc(locs, locs_cap * sizeof *nl);
            if (!nl) {
                rc = -1;
                break;
            }
            locs = nl;
        }
        for (size_t j = 0; j < s->n_locations; j++) {
            uint32_t li = s->locations[j];
            if (loc[li] == PPROF_NONE) {
                const pprof_location *l = &src->locations[li];
                pprof_location nl = *l;
                pprof_line lines_stack[16];
                pprof_line *lines = l->n_lines <= 16 ? lines_stack
                                                     : malloc(l->n_lines * sizeof *lines);
                if (!lines) {
                    rc = -1;
                    break;
                }
                if (l->mapping != PPROF_NONE) {
                    if (mp[l->mapping] == PPROF_NONE) {
                        pprof_mapping m = src->mappings[l->mapping];
                        m.filename = STR(m.filename);
                        m.build_id = STR(m.build_id);
                        mp[l->mapping] = pprof_builder_mapping(b, &m);
                    }
                    nl.mapping = mp[l->mapping];
                }
                for (size_t k = 0; k < l->n_lines; k++) {
                    lines[k] = l->lines[k];
                    uint32_t fi = l->lines[k].function;
                    if (fi != PPROF_NONE) {
                        if (fn[fi] == PPROF_NONE) {
                            pprof_function fu = src->functions[fi];
                            fu.name = STR(fu.name);
                            fu.system_name = STR(fu.system_name);
                            fu.filename = STR(fu.filename);
                            fn[fi] = pprof_builder_function(b, &fu);
                        }
                        lines[k].function = fn[fi];
                    }
                }
                nl.lines = lines;
                loc[li] = pprof_builder_location(b, &nl);
                if (lines != lines_stack)
                    free(lines);
            }
            locs[j] = loc[li];
        }
        if (s->n_labels > labels_cap) {
            labels_cap = s->n_labels * 2;
            pprof_label *nl = realloc(labels, labels_cap * sizeof *nl);
            if (!nl) {
                rc = -1;
                break;
            }
            labels = nl;
        }
        for (size_t j = 0; j < s->n_labels; j++) {
            labels[j] = s->labels[j];
            labels[j].key = STR(labels[j].key);
            labels[j].str = STR(labels[j].str);
            labels[j].num_unit = STR(labels[j].num_unit);
        }
        for (size_t t = 0; t < src->n_sample_types; t++)
            vals[t] = s->values[t] * scale[i];
        if (!rc)
            pprof_builder_sample(b, locs, s->n_locations, vals, labels, s->n_labels);
    }
#undef STR
    free(str);
    free(fn);
    free(mp);
    free(loc);
    free(vals);
    free(locs);
    free(labels);
    if (rc) {   /* one of the mallocs above (the builder itself cannot fail) */
        pprof_builder_free(b);
        firn_errf(err, FIRN_ENOMEM, "out of memory");
        return NULL;
    }
    return pprof_builder_finish(b, err);
}

/* Target ti's profiles of kind k: its own subset of its base's stacks, one
 * sample per distinct (stack, labels) so that what is sent is what the store
 * keeps, and VARIANTS value scalings of it. */
static int make_target_kind(struct fleet *f, long ti, enum kind k, firn_err *err)
{
    const struct fbase *base = base_of(f, k, ti);
    const pprof_profile *src = base->p;
    struct tprofiles *tp = &f->targets[ti].k[k];
    uint64_t seed = 0x9E3779B97F4A7C15ull * (uint64_t)(ti + 1) + (uint64_t)k * 0x632BE59BD9B4E019ull;
    bench_rng(&seed);
    /* 30..90% of the stacks */
    unsigned keep_pct = 30 + (unsigned)(bench_rng(&seed) % 61);
    bool *keep = calloc(src->n_samples + 1, sizeof *keep);
    int64_t *scale = malloc((src->n_samples + 1) * sizeof *scale);
    firn_u64map seen;
    if (!keep || !scale || firn_u64map_init(&seen, src->n_samples + 1) < 0) {
        free(keep);
        free(scale);
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
    }
    size_t kept = 0;
    for (size_t i = 0; i < src->n_samples; i++) {
        if (bench_rng(&seed) % 100 >= keep_pct)
            continue;
        uint32_t have;
        if (firn_u64map_put(&seen, pprof_sample_identity(src, i).lo, 0, &have) != 1)
            continue;   /* the same stack and labels as a sample already kept */
        keep[i] = true;
        kept++;
    }
    firn_u64map_destroy(&seen);
    tp->stacks = kept;
    int rc = 0;
    for (int v = 0; v < VARIANTS && !rc; v++) {
        for (size_t i = 0; i < src->n_samples; i++)
            scale[i] = 1 + (int64_t)(bench_rng(&seed) % 4);
        pprof_profile *p = subset(src, keep, scale, err);
        if (!p) {
            rc = err->code ? err->code : FIRN_ENOMEM;
            break;
        }
        uint64_t n = 0;
        for (size_t i = 0; i < p->n_samples; i++)
            for (size_t t = 0; t < p->n_sample_types; t++)
                n += p->samples[i].values[t] != 0;
        tp->samples[v] = n;
        if (v == 0) {
            /* distinct stacks fleet-wide: the stack's location identities */
            pprof_hash *ids = malloc((p->n_locations + 1) * sizeof *ids);
            if (!ids)
                rc = firn_errf(err, FIRN_ENOMEM, "out of memory");
            else
                pprof_location_identities(p, ids);
            for (size_t i = 0; !rc && i < p->n_samples; i++) {
                XXH3_state_t st;
                XXH3_128bits_reset(&st);
                for (size_t j = 0; j < p->samples[i].n_locations; j++)
                    XXH3_128bits_update(&st, &ids[p->samples[i].locations[j]], sizeof *ids);
                uint32_t have;
                firn_u64map_put(&f->stacks_seen, XXH3_128bits_digest(&st).low64, 0, &have);
            }
            free(ids);
            if (!rc && k == K_HEAP) {
                tp->delta_columns = calloc(p->n_sample_types, sizeof *tp->delta_columns);
                if (!tp->delta_columns)
                    rc = firn_errf(err, FIRN_ENOMEM, "out of memory");
                else
                    pprof_delta_columns(p, tp->delta_columns);
            }
        }
        if (!rc)
            rc = pprof_encode(p, -1, &tp->gz[v], &tp->len[v], err);
        pprof_free(p);
    }
    free(keep);
    free(scale);
    return rc;
}

/* Fleet index k (time-major, as scrapes arrive) as step, target, kind. */
static void fleet_index(const struct fleet *f, long k, long *step, long *ti, enum kind *kind)
{
    long per_step = f->o->targets * K_KINDS;
    *step = k / per_step;
    *ti = (k % per_step) / K_KINDS;
    *kind = (enum kind)(k % K_KINDS);
}

static int64_t fleet_ts(const struct fleet *f, long step)
{
    return f->t_end - (f->steps - step) * STEP_MS;
}

static int64_t history_ts(const struct fleet *f, long step)
{
    return f->t_end - (f->hsteps - step) * f->o->history_interval_ms;
}

static void fail(struct fleet *f, const firn_err *err)
{
    pthread_mutex_lock(&f->mu);
    if (!atomic_exchange(&f->failed, 1))
        f->err = *err;
    pthread_mutex_unlock(&f->mu);
}

/* An append handed to the store: the ctx of its answer, then the answer. */
struct answer {
    struct fleet *f;
    uint64_t samples;             /* what it counts in the figures (tprofiles.samples) */
    ingest_pending *pd;
};

/* The store's answer (its writer thread): kept for a producer to finish. */
static void answered(void *ctx, ingest_pending *pd)
{
    struct answer *an = ctx;
    struct fleet *f = an->f;
    pthread_mutex_lock(&f->mu);
    f->answers = firn_grow(f->answers, f->n_answers, &f->cap_answers, sizeof *f->answers, 64);
    f->answers[f->n_answers++] = (struct answer){f, an->samples, pd};
    free(an);
    pthread_cond_broadcast(&f->answered);
    pthread_mutex_unlock(&f->mu);
}

/* Finishes the answers there are; with all, waits until every append
 * handed to the store is answered and finished. */
static void finish_answers(struct fleet *f, bool all)
{
    pthread_mutex_lock(&f->mu);
    for (;;) {
        while (all && !f->n_answers && f->in_store)
            pthread_cond_wait(&f->answered, &f->mu);
        if (!f->n_answers)
            break;
        struct answer *a = f->answers;
        size_t n = f->n_answers;
        f->answers = NULL;
        f->n_answers = f->cap_answers = 0;
        f->in_store -= (long)n;
        if (!f->in_store)
            pthread_cond_broadcast(&f->answered);   /* producers waiting for the last */
        pthread_mutex_unlock(&f->mu);
        for (size_t i = 0; i < n; i++) {
            firn_err err = {0};
            ingest_result r;
            if (ingest_pending_finish(a[i].pd, &r, &err) == 0)
                atomic_fetch_add(&f->samples, a[i].samples);
            else
                fail(f, &err);
        }
        free(a);
        pthread_mutex_lock(&f->mu);
    }
    pthread_mutex_unlock(&f->mu);
}

static void *producer(void *arg)
{
    struct fleet *f = arg;
    for (;;) {
        finish_answers(f, false);
        long k = atomic_fetch_add(&f->next, 1);
        if (k >= f->total || atomic_load(&f->failed))
            break;
        long step, ti;
        enum kind kind;
        int64_t ts;
        if (f->history) {
            step = k;
            ti = f->o->targets;
            kind = K_AGENT;
            ts = history_ts(f, step);
        } else {
            fleet_index(f, k, &step, &ti, &kind);
            ts = fleet_ts(f, step);
        }
        const struct target *t = &f->targets[ti];
        const struct tprofiles *tp = &t->k[kind];
        int v = (int)((step + ti) % VARIANTS);
        ingest_options io = {.profile_name = kind_profile_name[kind],
                             .delta = kind == K_CPU || kind == K_AGENT ? INGEST_DELTA_ALL
                                      : kind == K_HEAP                 ? INGEST_DELTA_COLUMNS
                                                                       : INGEST_DELTA_NONE,
                             .delta_columns = tp->delta_columns,
                             .timestamp_ms = ts};
        firn_err err = {0};
        ingest_result res;
        int rc;
        for (int tries = 0;; tries++) {
            pthread_mutex_lock(&f->mu);
            f->in_store++;   /* before the store can answer */
            pthread_mutex_unlock(&f->mu);
            struct answer *an = malloc(sizeof *an);
            if (!an)
                firn_oom(sizeof *an);
            *an = (struct answer){f, tp->samples[v], NULL};
            rc = ingest_pprof_async(f->db, t->labels, 4, tp->gz[v], tp->len[v], &io, &res,
                                    answered, an, &err);
            if (rc == INGEST_QUEUED)
                break;
            free(an);
            pthread_mutex_lock(&f->mu);
            f->in_store--;
            pthread_mutex_unlock(&f->mu);
            if (rc != FIRN_EBUSY || tries == 10000)
                break;
            /* the ingest budget is in use: finish what the store answered,
             * wait a little, send again */
            finish_answers(f, false);
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, NULL);
        }
        if (rc != INGEST_QUEUED) {
            fail(f, &err);
            break;
        }
    }
    finish_answers(f, true);
    return NULL;
}

/* CPU seconds (user + system) this process has used. */
static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Ingests `total` profiles of the phase from o->threads producers; *secs
 * is wall time, *cpu the CPU time the process used meanwhile (the RSS
 * sampler's share is negligible). */
static int run_phase(struct fleet *f, bool history, long total, double *secs, double *cpu,
                     firn_err *err)
{
    f->history = history;
    f->total = total;
    atomic_store(&f->next, 0);
    pthread_t *th = calloc((size_t)f->o->threads, sizeof *th);
    if (!th)
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
    double start = bench_now(), cpu0 = cpu_seconds();
    int started = 0;
    for (int i = 0; i < f->o->threads; i++)
        started += pthread_create(&th[started], NULL, producer, f) == 0;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    *secs = bench_now() - start;
    *cpu = cpu_seconds() - cpu0;
    free(th);
    if (!started)
        return firn_errf(err, FIRN_EIO, "cannot start producer threads");
    if (atomic_load(&f->failed)) {
        *err = f->err;
        return err->code ? err->code : FIRN_EIO;
    }
    return 0;
}

/* The profiles of the fleet phase, inflated one after another: the floor
 * of any ingest that must read them. */
static double thread_cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wall seconds, and in *cpu this thread's CPU seconds: the CPU is what to
 * compare with ingest's CPU, as other load stretches the wall time. */
static double time_inflate(const struct fleet *f, double *cpu, firn_err *err)
{
    long n = f->steps * f->o->targets * K_KINDS;
    double start = bench_now(), cpu0 = thread_cpu_seconds();
    for (long k = 0; k < n; k++) {
        long step, ti;
        enum kind kind;
        fleet_index(f, k, &step, &ti, &kind);
        const struct tprofiles *tp = &f->targets[ti].k[kind];
        int v = (int)((step + ti) % VARIANTS);
        unsigned char *out;
        size_t len;
        if (pprof_gunzip(tp->gz[v], tp->len[v], 1u << 30, &out, &len, err) < 0)
            return -1;
        free(out);
    }
    *cpu = thread_cpu_seconds() - cpu0;
    return bench_now() - start;
}

/* Percentage of the file's pages in the page cache (mincore). */
static double resident_pct(const char *path)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || st.st_size == 0) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED)
        return 0;
    long page = sysconf(_SC_PAGESIZE);
    size_t pages = ((size_t)st.st_size + (size_t)page - 1) / (size_t)page;
    unsigned char *vec = malloc(pages);
    size_t in = 0;
    if (vec && mincore(m, (size_t)st.st_size, vec) == 0)
        for (size_t i = 0; i < pages; i++)
            in += vec[i] & 1;
    free(vec);
    munmap(m, (size_t)st.st_size);
    return 100.0 * (double)in / (double)pages;
}

/* Drops the store file from the page cache: as root the whole cache
 * (drop_caches), else this file's clean pages (POSIX_FADV_DONTNEED), and
 * says which.  The store must be closed (mapped pages are not dropped). */
static int drop_cache(const char *file, bool all, FILE *log)
{
    sync();
    if (all && geteuid() == 0) {
        FILE *d = fopen("/proc/sys/vm/drop_caches", "w");
        if (d && fputs("3\n", d) >= 0 && fclose(d) == 0) {
            fprintf(log, "bench fleet: cold merge: page cache dropped (echo 3 > "
                         "/proc/sys/vm/drop_caches)\n");
            return 1;
        }
        if (d)
            fclose(d);
    }
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
        close(fd);
    }
    fprintf(log, "bench fleet: cold merge: %s: only the store file's pages were dropped, "
                 "with posix_fadvise(DONTNEED)\n",
            !all ? "told not to drop the whole page cache"
                 : geteuid() ? "not root" : "drop_caches refused");
    return 0;
}

/* A flame graph as /api/v1/profile builds one (default max_nodes), from
 * rollups where there are some, or from the raw profiles alone (raw: the
 * anchor); milliseconds, or -1 with err. */
static double time_flamegraph(tsdb *db, const char *query, int64_t start, int64_t end, bool raw,
                              firn_err *err)
{
    pql_profile_request req = {.query = query, .mode = PQL_PROFILE_MERGE, .start_ms = start,
                               .end_ms = end, .max_nodes = 8192, .raw = raw};
    double t0 = bench_now();
    tsdb_reader *r = tsdb_reader_open(db, err);
    pql_tree tree = {0};
    int rc = r ? pql_profile_tree(r, &req, &tree, err) : -1;
    double ms = (bench_now() - t0) * 1000;
    pql_tree_free(&tree);
    tsdb_reader_close(r);
    return rc == 0 ? ms : -1;
}

/* Seconds to memcpy `bytes` (in chunks of a buffer up to 64 MiB, out of
 * cache for large sizes): the memory-bandwidth floor of a merge that reads
 * that many decoded bytes. */
static double time_memcpy(uint64_t bytes)
{
    size_t chunk = bytes < (64u << 20) ? (size_t)bytes : (64u << 20);
    if (chunk < 4096)
        chunk = 4096;
    unsigned char *src = malloc(chunk), *dst = malloc(chunk);
    if (!src || !dst) {
        free(src);
        free(dst);
        return -1;
    }
    memset(src, 1, chunk);
    memcpy(dst, src, chunk);   /* faults dst in (a memset of it could be elided) */
    double secs = -1;
    for (int round = 0; round < 3; round++) {   /* the best of three */
        double start = bench_now();
        for (uint64_t done = 0; done < bytes; done += chunk) {
            memcpy(dst, src, chunk);
            __asm__ volatile("" : : "r"(dst) : "memory");   /* keep the copy */
        }
        double t = bench_now() - start;
        if (secs < 0 || t < secs)
            secs = t;
    }
    free(src);
    free(dst);
    return secs;
}

/* ---- the range query: 1,000 series x 360 points -------------------------- */

/* A query_range as README shows them, `sum by (job) (rate(TYPE[1m]))`, at a
 * 10 s step, on o->range_series Go CPU series (10 jobs) of o->range_points
 * profiles each, one per step (by default 1,000 x 360: an hour).  It has a
 * store of its own, so that its many small profiles change none of the
 * fleet's figures (ingest, disk, samples). */
#define RQ_STACKS 16          /* stacks per profile: a range query reads totals only */
#define RQ_THREADS 256        /* appenders: many appends share each commit */
#define RQ_ROUNDS 5           /* warm runs; the fastest is reported */

struct range_data {
    tsdb *db;
    pprof_profile *p[VARIANTS];
    int64_t t_end;
    long series, points;
    _Atomic long next;
    _Atomic int failed;
    firn_err err;
    pthread_mutex_t mu;
};

struct range_result {
    double ingest_secs;
    double query_ms, query_first_ms;   /* the fastest warm run, and the first */
    double read_ms;                    /* the anchor: the same series' points read alone */
    /* the thread's CPU time of the same runs (fastest of each): under load
     * the wall times above include waiting for a core */
    double query_cpu_ms, read_cpu_ms;
    uint64_t points_read;
    size_t out_series, out_points;
};

static int64_t range_ts(const struct range_data *d, long point)
{
    return d->t_end - (d->points - point) * STEP_MS;
}

static void *range_producer(void *arg)
{
    struct range_data *d = arg;
    for (;;) {
        long k = atomic_fetch_add(&d->next, 1);
        if (k >= d->series * d->points || atomic_load(&d->failed))
            break;
        long point = k / d->series, s = k % d->series;   /* time-major, as scrapes arrive */
        char instance[64], job[16];
        snprintf(instance, sizeof instance, "10.2.%ld.%ld:6060", s / 250, s % 250 + 1);
        snprintf(job, sizeof job, "query-%ld", s % 10);
        firn_label labels[2] = {{"instance", instance}, {"job", job}};
        tsdb_append_req req = {.labels = labels,
                               .n_labels = 2,
                               .profile_name = kind_profile_name[K_CPU],
                               .delta = true,
                               .profile = d->p[(point + s) % VARIANTS],
                               .timestamp_ms = range_ts(d, point)};
        firn_err err = {0};
        int rc = tsdb_append(d->db, &req, &err);
        for (int tries = 0; rc == FIRN_EBUSY && tries < 10000; tries++) {
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, NULL);
            rc = tsdb_append(d->db, &req, &err);
        }
        if (rc < 0) {
            pthread_mutex_lock(&d->mu);
            if (!atomic_exchange(&d->failed, 1))
                d->err = err;
            pthread_mutex_unlock(&d->mu);
            break;
        }
    }
    return NULL;
}

/* Milliseconds for the range query, parse and reader included (what
 * /api/v1/query_range does before encoding); the result's shape in *r. */
static double time_range_query(tsdb *db, const char *text, int64_t start, int64_t end,
                               struct range_result *res, double *cpu_ms, firn_err *err)
{
    double t0 = bench_now(), c0 = thread_cpu_seconds();
    pql_query q;
    if (pql_parse(text, &q, err) < 0)
        return -1;
    tsdb_reader *r = tsdb_reader_open(db, err);
    pql_result out;
    int rc = r ? pql_eval_range(r, &q, start, end, STEP_MS, NULL, &out, err) : -1;
    double ms = (bench_now() - t0) * 1000;
    *cpu_ms = (thread_cpu_seconds() - c0) * 1000;
    if (rc == 0) {
        res->out_series = out.n_series;
        res->out_points = 0;
        for (size_t i = 0; i < out.n_series; i++)
            res->out_points += out.series[i].n_points;
        pql_result_free(&out);
    }
    tsdb_reader_close(r);
    pql_query_free(&q);
    return rc == 0 ? ms : -1;
}

static int count_points(void *ctx, const int64_t *ts, const int64_t *totals, size_t n)
{
    (void)ts;
    (void)totals;
    *(uint64_t *)ctx += n;
    return 0;
}

/* The anchor: milliseconds to select the same series and read each one's
 * (time, total) points over the window the query loads, as the query reads
 * them (tsdb_scan_totals), and nothing else. */
static double time_range_read(tsdb *db, const firn_matcher *m, int64_t from, int64_t to,
                              uint64_t *points, double *cpu_ms, firn_err *err)
{
    double t0 = bench_now(), c0 = thread_cpu_seconds();
    tsdb_reader *r = tsdb_reader_open(db, err);
    tsdb_series_set set = {0};
    int rc = r ? tsdb_select(r, m, 1, from, to, &set, err) : -1;
    *points = 0;
    for (size_t i = 0; rc == 0 && i < set.n; i++)
        rc = tsdb_scan_totals(r, set.series[i].id, from, to, count_points, points, err);
    double ms = (bench_now() - t0) * 1000;
    *cpu_ms = (thread_cpu_seconds() - c0) * 1000;
    tsdb_series_set_free(&set);
    tsdb_reader_close(r);
    return rc == 0 ? ms : -1;
}

/* Builds the range query's store (removed after) from small subsets of the
 * Go CPU base and times the query and its anchor, each the fastest of
 * RQ_ROUNDS warm runs. */
static int bench_range_query(const struct fleet *f, const char *cpu_type, struct range_result *res,
                             FILE *log, firn_err *err)
{
    static struct range_data d;
    memset(&d, 0, sizeof d);
    pthread_mutex_init(&d.mu, NULL);
    d.t_end = f->t_end;
    d.series = f->o->range_series;
    d.points = f->o->range_points;
    const pprof_profile *src = base_of(f, K_CPU, 0)->p;
    bool *keep = calloc(src->n_samples + 1, sizeof *keep);
    int64_t *scale = malloc((src->n_samples + 1) * sizeof *scale);
    int rc = keep && scale ? 0 : firn_errf(err, FIRN_ENOMEM, "out of memory");
    for (size_t i = 0; i < src->n_samples && i < RQ_STACKS; i++)
        keep[i] = true;
    for (int v = 0; v < VARIANTS && !rc; v++) {
        for (size_t i = 0; i < src->n_samples; i++)
            scale[i] = 1 + v;
        if (!(d.p[v] = subset(src, keep, scale, err)))
            rc = err->code ? err->code : FIRN_ENOMEM;
    }
    free(keep);
    free(scale);
    char dir[64] = "", store[96];
    strcpy(dir, "/var/tmp/firn-fleet-query-XXXXXX");
    if (!rc && !mkdtemp(dir)) {
        rc = firn_errf(err, FIRN_EIO, "mkdtemp: %s", strerror(errno));
        dir[0] = 0;
    }
    snprintf(store, sizeof store, "%s/store", dir);
    tsdb_options to;
    tsdb_options_default(&to);
    to.path = store;
    to.no_rollups = true;
    if (!rc && !(d.db = tsdb_open(&to, err)))
        rc = err->code;
    pthread_t th[RQ_THREADS];
    int started = 0;
    double t0 = bench_now();
    for (int i = 0; !rc && i < RQ_THREADS; i++)
        started += pthread_create(&th[started], NULL, range_producer, &d) == 0;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    res->ingest_secs = bench_now() - t0;
    if (!rc && !started)
        rc = firn_errf(err, FIRN_EIO, "cannot start producer threads");
    if (!rc && atomic_load(&d.failed)) {
        *err = d.err;
        rc = err->code ? err->code : FIRN_EIO;
    }
    if (!rc)
        fprintf(log, "bench fleet: range query data set: %ld series x %ld profiles of %d "
                     "stacks appended in %.1f s\n", d.series, d.points, RQ_STACKS,
                res->ingest_secs);

    char q[512];
    snprintf(q, sizeof q, "sum by (job) (rate(%s[1m]))", cpu_type);
    int64_t start = range_ts(&d, 0), end = range_ts(&d, d.points - 1);
    firn_matcher m = {0};
    if (!rc && firn_matcher_init(&m, FIRN_MATCH_EQ, FIRN_LABEL_NAME, cpu_type, err) < 0)
        rc = err->code;
    double cpu, read_cpu = -1;
    if (!rc && (res->query_first_ms = time_range_query(d.db, q, start, end, res, &cpu, err)) < 0)
        rc = err->code;
    res->query_ms = res->read_ms = res->query_cpu_ms = res->read_cpu_ms = -1;
    for (int round = 0; round < RQ_ROUNDS && !rc; round++) {
        /* the window the query loads: its [1m] before the first step */
        double ms = time_range_read(d.db, &m, start - 60000 + 1, end, &res->points_read,
                                    &read_cpu, err);
        double qms = ms < 0 ? -1 : time_range_query(d.db, q, start, end, res, &cpu, err);
        if (qms < 0)
            rc = err->code ? err->code : FIRN_EIO;
        if (res->read_ms < 0 || ms < res->read_ms)
            res->read_ms = ms;
        if (res->query_ms < 0 || qms < res->query_ms)
            res->query_ms = qms;
        if (res->read_cpu_ms < 0 || read_cpu < res->read_cpu_ms)
            res->read_cpu_ms = read_cpu;
        if (res->query_cpu_ms < 0 || cpu < res->query_cpu_ms)
            res->query_cpu_ms = cpu;
    }
    if (!rc)
        fprintf(log, "bench fleet: range query %s over %ld steps -> %zu series, %zu points; "
                     "%llu points read\n", q, d.points, res->out_series, res->out_points,
                (unsigned long long)res->points_read);
    firn_matcher_destroy(&m);
    if (d.db)
        tsdb_close(d.db);
    for (int v = 0; v < VARIANTS; v++)
        pprof_free(d.p[v]);
    bench_rm_tree(dir);
    pthread_mutex_destroy(&d.mu);
    return rc;
}

/* RQ_ROUNDS merges (warm): the fastest in wall time (*secs) and in thread
 * CPU time (*cpu) apart, as preemption on a loaded machine lengthens
 * single runs.  0, or -1 with err. */
static int timed_merges(tsdb *db, const firn_matcher *m, size_t n_m, int64_t start, int64_t end,
                        tsdb_merge_stats *st, double *secs, double *cpu, firn_err *err)
{
    *secs = *cpu = -1;
    for (int i = 0; i < RQ_ROUNDS; i++) {
        double c0 = thread_cpu_seconds();
        double s = bench_merge(db, m, n_m, start, end, st, err);
        double c = thread_cpu_seconds() - c0;
        if (s < 0)
            return -1;
        if (*secs < 0 || s < *secs)
            *secs = s;
        if (*cpu < 0 || c < *cpu)
            *cpu = c;
    }
    return 0;
}

static void set_target_labels(struct target *t, long i, bool history)
{
    if (history) {
        snprintf(t->instance, sizeof t->instance, "10.1.0.1:6060");
        snprintf(t->job, sizeof t->job, "history");
        snprintf(t->pod, sizeof t->pod, "history-0");
    } else {
        snprintf(t->instance, sizeof t->instance, "10.0.%ld.%ld:6060", i / 250, i % 250 + 1);
        snprintf(t->job, sizeof t->job, "fleet");
        snprintf(t->pod, sizeof t->pod, "api-%05lx-%04lx", (i * 2654435761u) & 0xfffff, i);
    }
    snprintf(t->zone, sizeof t->zone, "zone-%c", (char)('a' + i % 3));
    /* sorted by name */
    t->labels[0] = (firn_label){"instance", t->instance};
    t->labels[1] = (firn_label){"job", t->job};
    t->labels[2] = (firn_label){"pod", t->pod};
    t->labels[3] = (firn_label){"zone", t->zone};
}

void bench_fleet_options_default(bench_fleet_options *o)
{
    memset(o, 0, sizeof *o);
    o->targets = 10;
    o->minutes = 10;
    o->history_days = 7;
    o->history_interval_ms = 6 * STEP_MS;
    o->threads = 8;
    o->queue_mb = 32;
    o->go_profiles = 30;
    o->range_series = 1000;
    o->range_points = 360;
    o->drop_caches = true;
}

static int build_fleet(struct fleet *f, FILE *log, firn_err *err)
{
    const bench_fleet_options *o = f->o;
    int rc = 0;
    for (size_t i = 0; i < sizeof fixtures / sizeof *fixtures && !rc; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", o->fixtures_dir, fixtures[i].file);
        rc = load_base(f, path, (int)fixtures[i].kind, log, err);
    }
    for (size_t i = 0; i < o->n_files && !rc; i++)
        rc = load_base(f, o->files[i], -1, log, err);
    if (rc)
        return rc;
    if (firn_u64map_init(&f->stacks_seen, 1u << 16) < 0 ||
        !(f->targets = calloc((size_t)o->targets + 1, sizeof *f->targets)))
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
    for (long t = 0; t < o->targets && !rc; t++) {
        set_target_labels(&f->targets[t], t, false);
        for (int k = 0; k < K_KINDS && !rc; k++)
            rc = make_target_kind(f, t, (enum kind)k, err);
    }
    if (!rc) {
        set_target_labels(&f->targets[o->targets], 0, true);
        rc = make_target_kind(f, o->targets, K_AGENT, err);
    }
    return rc;
}

/* The gzipped profiles the producers send stand for what arrives over the
 * network, which a server does not hold: they move into one shared mapping
 * of a memfd, so that the process's RssAnon (rss_anon_peak_mb) is firn's
 * memory and not this pool; its size is printed beside (bench_pool_mb), and
 * it shows in RssShmem.  Returns the pool's bytes; when no memfd can be
 * made they stay where they are (and count in RssAnon: the log says so). */
static size_t pool_to_shared(struct fleet *f, FILE *log)
{
    size_t total = 0;
    for (long t = 0; t <= f->o->targets; t++)
        for (int k = 0; k < K_KINDS; k++)
            for (int v = 0; v < VARIANTS; v++)
                total += f->targets[t].k[k].len[v];
    int fd = memfd_create("firn-bench-pool", MFD_CLOEXEC);
    void *m = MAP_FAILED;
    if (fd >= 0 && total && ftruncate(fd, (off_t)total) == 0)
        m = mmap(NULL, total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (fd >= 0)
        close(fd);
    if (m == MAP_FAILED) {
        fprintf(log, "bench fleet: no shared mapping for the pool of profiles sent (%s): its "
                     "%.1f MB count in RssAnon\n", strerror(errno), (double)total / 1e6);
        return total;
    }
    f->pool = m;
    f->pool_len = total;
    size_t at = 0;
    for (long t = 0; t <= f->o->targets; t++)
        for (int k = 0; k < K_KINDS; k++)
            for (int v = 0; v < VARIANTS; v++) {
                struct tprofiles *tp = &f->targets[t].k[k];
                if (!tp->gz[v])
                    continue;
                memcpy(f->pool + at, tp->gz[v], tp->len[v]);
                free(tp->gz[v]);
                tp->gz[v] = f->pool + at;
                at += tp->len[v];
            }
    assert(at == total);
    return total;
}

static void free_fleet(struct fleet *f)
{
    for (long t = 0; f->targets && t <= f->o->targets; t++)
        for (int k = 0; k < K_KINDS; k++) {
            for (int v = 0; v < VARIANTS && !f->pool; v++)
                free(f->targets[t].k[k].gz[v]);
            free(f->targets[t].k[k].delta_columns);
        }
    if (f->pool)
        munmap(f->pool, f->pool_len);
    free(f->targets);
    for (size_t i = 0; i < f->n_bases; i++)
        pprof_free(f->bases[i].p);
    firn_u64map_destroy(&f->stacks_seen);
}

static int open_store(struct fleet *f, const char *store, firn_err *err)
{
    tsdb_options to;
    tsdb_options_default(&to);
    to.path = store;
    /* compaction runs when the bench says (tsdb_rollup_run, timed), not in
     * the background during ingest */
    to.no_rollups = true;
    /* Producers do not wait for commits, so the queue fills to its byte
     * limit: 512 MiB by default put anonymous RSS at 800 MB.  32 MiB of
     * decoded profiles (--queue-mb) waiting for or in a commit keeps ingest
     * under the 256 MB goal (the producers' own profiles, decoding, come on
     * top); fewer MiB share commits among fewer profiles
     * (profiles_per_commit). */
    to.queue_max_bytes = (size_t)f->o->queue_mb << 20;
    f->db = tsdb_open(&to, err);
    return f->db ? 0 : err->code;
}

int bench_fleet(const bench_fleet_options *o, FILE *out, FILE *log, firn_err *err)
{
    static struct fleet f;
    memset(&f, 0, sizeof f);
    f.o = o;
    pthread_mutex_init(&f.mu, NULL);
    pthread_cond_init(&f.answered, NULL);
    char dir[64] = "", store[128] = "", datafile[160];
    double t_begin = bench_now();
    int rc = build_fleet(&f, log, err);
    size_t pool_bytes = rc ? 0 : pool_to_shared(&f, log);
    /* the heap that building the fleet freed goes back to the system, so
     * that rss_anon_base_mb is what the bench keeps (its bases, its tables)
     * and the peak above it is ingest's */
    malloc_trim(0);
    size_t bases_bytes = 0;   /* the decoded bases the fleet is made from (RssAnon) */
    for (size_t i = 0; i < f.n_bases; i++)
        bases_bytes += firn_arena_bytes(f.bases[i].p->arena);
    f.steps = o->minutes * 60000 / STEP_MS;
    f.hsteps = o->history_days * 86400000 / o->history_interval_ms;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    f.t_end = ((int64_t)wall.tv_sec * 1000 / STEP_MS) * STEP_MS;
    if (!rc) {
        if (o->keep_store) {
            snprintf(store, sizeof store, "%s", o->keep_store);
        } else {
            strcpy(dir, "/var/tmp/firn-fleet-XXXXXX");
            if (!mkdtemp(dir))
                rc = firn_errf(err, FIRN_EIO, "mkdtemp: %s", strerror(errno));
            snprintf(store, sizeof store, "%s/store", dir);
        }
        snprintf(datafile, sizeof datafile, "%s/data.mdb", store);
    }
    if (!rc)
        rc = open_store(&f, store, err);
    long rss_base_anon = 0, rss_base_file = 0;
    rss_kb(&rss_base_anon, &rss_base_file);
    if (!rc)
        fprintf(log, "bench fleet: %ld targets x %ld steps of 10 s x %d kinds; history job: "
                     "%ld profiles %lld ms apart; %d producer threads; store %s; set up in "
                     "%.1f s\n", o->targets, f.steps, K_KINDS, f.hsteps,
                (long long)o->history_interval_ms, o->threads, store,
                bench_now() - t_begin);

    /* ingest: the history job first (older data), then the fleet */
    pthread_t sampler;
    atomic_store(&f.sampling, 1);
    bool sampling = !rc && pthread_create(&sampler, NULL, rss_sampler, &f) == 0;
    double hist_secs = 0, fleet_secs = 0, hist_cpu = 0, fleet_cpu = 0;
    uint64_t hist_samples = 0, fleet_samples = 0;
    if (!rc)
        rc = run_phase(&f, true, f.hsteps, &hist_secs, &hist_cpu, err);
    hist_samples = atomic_exchange(&f.samples, 0);
    if (!rc)
        rc = run_phase(&f, false, f.steps * o->targets * K_KINDS, &fleet_secs, &fleet_cpu,
                       err);
    fleet_samples = atomic_load(&f.samples);
    atomic_store(&f.sampling, 0);
    if (sampling)
        pthread_join(sampler, NULL);
    long rss_ingest_anon = f.rss_anon_peak_kb, rss_ingest_file = f.rss_file_peak_kb;

    /* what was sent, gzipped; and the fleet's inflate floor */
    uint64_t gz_bytes = 0, fleet_profiles = (uint64_t)(f.steps * o->targets * K_KINDS);
    double stacks_sum = 0;
    for (long k = 0; !rc && k < (long)fleet_profiles; k++) {
        long step, ti;
        enum kind kind;
        fleet_index(&f, k, &step, &ti, &kind);
        gz_bytes += f.targets[ti].k[kind].len[(step + ti) % VARIANTS];
        stacks_sum += (double)f.targets[ti].k[kind].stacks;
    }
    for (long s = 0; !rc && s < f.hsteps; s++)
        gz_bytes += f.targets[o->targets].k[K_AGENT].len[(s + o->targets) % VARIANTS];
    uint64_t commits_before = 0;
    tsdb_stats st = {0};
    if (!rc && tsdb_stats_get(f.db, &st, err) < 0)
        rc = err->code;
    commits_before = st.commits_total;
    double inflate_cpu = 0, inflate = rc ? 0 : time_inflate(&f, &inflate_cpu, err);
    if (inflate < 0)
        rc = err->code;

    /* merges of the fleet's Go CPU (cpu:nanoseconds) over its whole span:
     * cold (store closed, cache dropped, reopened), then warm */
    char cpu_type[256];
    firn_profile_type_format(cpu_type, sizeof cpu_type, "process_cpu", "cpu", "nanoseconds",
                             "cpu", "nanoseconds", true);
    firn_matcher m[2];
    memset(m, 0, sizeof m);
    if (!rc && (firn_matcher_init(&m[0], FIRN_MATCH_EQ, FIRN_LABEL_NAME, cpu_type, err) < 0 ||
                firn_matcher_init(&m[1], FIRN_MATCH_EQ, "job", "fleet", err) < 0))
        rc = err->code;
    int64_t f_start = fleet_ts(&f, 0), f_end = f.t_end - 1;
    double cold = -1, warm = -1, resident = -1;
    int dropped_all = 0;
    tsdb_merge_stats ms = {0};
    if (!rc) {
        tsdb_close(f.db);
        f.db = NULL;
        dropped_all = drop_cache(datafile, o->drop_caches, log);
        resident = resident_pct(datafile);
        rc = open_store(&f, store, err);
    }
    if (!rc && (cold = bench_merge(f.db, m, 2, f_start, f_end, &ms, err)) < 0)
        rc = err->code;
    /* warm: the fastest of RQ_ROUNDS runs, in wall and in thread CPU time
     * (which a loaded machine stretches less) */
    double warm_cpu = -1;
    if (!rc && timed_merges(f.db, m, 2, f_start, f_end, &ms, &warm, &warm_cpu, err) < 0)
        rc = err->code;
    if (!rc)
        fprintf(log, "bench fleet: merge of %s{job=\"fleet\"}: %llu profiles, %llu samples "
                     "into %llu stacks; store file %.1f%% resident before the cold merge\n",
                cpu_type, (unsigned long long)ms.blocks, (unsigned long long)ms.samples,
                (unsigned long long)ms.stacks, resident);
    /* tsdb_block hands out (stack u32, labelset u32, value i64) per sample */
    double copy = rc ? -1 : time_memcpy(ms.samples * 16);

    /* go tool pprof -proto on target 0's first CPU profiles, and firn on
     * the same ones */
    long n_go = o->go_profiles < f.steps ? o->go_profiles : f.steps;
    char **go_files = calloc((size_t)n_go + 1, sizeof *go_files);
    char go_dir[160];
    snprintf(go_dir, sizeof go_dir, "%s/go", dir[0] ? dir : store);
    double go = -1, sub = -1, go_cpu = -1, sub_cpu = -1;
    tsdb_merge_stats sub_ms = {0};
    if (!rc && (!go_files || (mkdir(go_dir, 0700) < 0 && errno != EEXIST)))
        rc = firn_errf(err, FIRN_EIO, "%s: %s", go_dir, strerror(errno));
    for (long s = 0; !rc && s < n_go; s++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/cpu-%ld.pb.gz", go_dir, s);
        const struct tprofiles *tp = &f.targets[0].k[K_CPU];
        int v = (int)(s % VARIANTS);
        if (firn_write_file_atomic(path, tp->gz[v], tp->len[v], err) < 0)
            rc = err->code;
        else if (!(go_files[s] = strdup(path)))
            rc = firn_errf(err, FIRN_ENOMEM, "out of memory");
    }
    if (!rc && n_go > 0) {
        go = bench_go_merge(go_dir, go_files, (size_t)n_go, "bench fleet", log, &go_cpu);
        firn_matcher m1[2] = {m[0], {0}};
        if (firn_matcher_init(&m1[1], FIRN_MATCH_EQ, "instance", f.targets[0].instance, err) <
            0)
            rc = err->code;
        int64_t s_end = fleet_ts(&f, n_go - 1);
        if (!rc && (bench_merge(f.db, m1, 2, f_start, s_end, &sub_ms, err) < 0 ||
                    timed_merges(f.db, m1, 2, f_start, s_end, &sub_ms, &sub, &sub_cpu, err) <
                        0))
            rc = err->code;
        firn_matcher_destroy(&m1[1]);
    }
    for (long s = 0; go_files && s < n_go; s++)
        free(go_files[s]);
    free(go_files);
    firn_matcher_destroy(&m[0]);
    firn_matcher_destroy(&m[1]);

    /* roll up every whole hour and day, as the background compaction of a
     * running server would have */
    double compaction = -1;
    if (!rc) {
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        double c0 = bench_now();
        if (tsdb_rollup_run(f.db, (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000, NULL,
                            err) < 0)
            rc = err->code;
        compaction = bench_now() - c0;
    }

    /* flame graphs of the history job over 1 h, 24 h and 7 d (warm: each
     * twice), from rollups and, as the anchor, from the raw profiles; and
     * of the fleet's CPU over its span */
    char q[512];
    snprintf(q, sizeof q, "%s{job=\"history\"}", rc ? "" : base_of(&f, K_AGENT, o->targets)->type);
    const int64_t spans[3] = {3600000LL, 86400000LL, 7 * 86400000LL};
    double fg[3] = {-1, -1, -1}, fg_raw[3] = {-1, -1, -1}, fg_fleet = -1;
    for (int i = 0; i < 3 && !rc; i++) {
        int64_t start = f.t_end - spans[i];
        if (time_flamegraph(f.db, q, start, f.t_end - 1, false, err) < 0 ||
            (fg[i] = time_flamegraph(f.db, q, start, f.t_end - 1, false, err)) < 0 ||
            (fg_raw[i] = time_flamegraph(f.db, q, start, f.t_end - 1, true, err)) < 0)
            rc = err->code;
    }
    snprintf(q, sizeof q, "%s{job=\"fleet\"}", cpu_type);
    if (!rc && (time_flamegraph(f.db, q, f_start, f_end, false, err) < 0 ||
                (fg_fleet = time_flamegraph(f.db, q, f_start, f_end, false, err)) < 0))
        rc = err->code;

    long rss_after_anon = 0, rss_after_file = 0;
    rss_kb(&rss_after_anon, &rss_after_file);

    /* the range query, on a store of its own (after the RSS reading: its
     * appenders are not the fleet's ingest) */
    struct range_result rq = {0};
    if (!rc)
        rc = bench_range_query(&f, cpu_type, &rq, log, err);
    if (!rc) {
        uint64_t samples = hist_samples + fleet_samples;
        double disk = (double)st.disk_bytes;
        fprintf(out, "bench_targets %ld\n", o->targets);
        fprintf(out, "bench_profiles %llu\n", (unsigned long long)(fleet_profiles + f.hsteps));
        fprintf(out, "bench_series %llu\n", (unsigned long long)st.series);
        fprintf(out, "bench_samples %llu\n", (unsigned long long)samples);
        fprintf(out, "stacks_per_profile %.0f\n", stacks_sum / (double)fleet_profiles);
        fprintf(out, "distinct_stacks %zu\n", f.stacks_seen.len);
        fprintf(out, "ingest_samples_per_s %.0f\n", (double)fleet_samples / fleet_secs);
        fprintf(out, "ingest_profiles_per_s %.0f\n", (double)fleet_profiles / fleet_secs);
        fprintf(out, "inflate_seconds %.3f\n", inflate);
        fprintf(out, "ingest_seconds %.3f\n", fleet_secs);
        fprintf(out, "ingest_vs_inflate_ratio %.2f\n", fleet_secs / inflate);
        /* CPU per sample: what ingest costs, whatever else runs on the machine */
        fprintf(out, "ingest_cpu_seconds %.3f\n", fleet_cpu);
        fprintf(out, "ingest_cpu_ns_per_sample %.1f\n", fleet_cpu * 1e9 / (double)fleet_samples);
        fprintf(out, "inflate_cpu_ns_per_sample %.1f\n",
                inflate_cpu * 1e9 / (double)fleet_samples);
        fprintf(out, "ingest_cpu_vs_inflate_ratio %.2f\n", fleet_cpu / inflate_cpu);
        fprintf(out, "queue_mb %ld\n", o->queue_mb);
        fprintf(out, "commits %llu\n", (unsigned long long)commits_before);
        fprintf(out, "profiles_per_commit %.1f\n",
                (double)(fleet_profiles + (uint64_t)f.hsteps) /
                    (double)(commits_before ? commits_before : 1));
        fprintf(out, "history_ingest_profiles_per_s %.0f\n", (double)f.hsteps / hist_secs);
        fprintf(out, "history_ingest_samples_per_s %.0f\n", (double)hist_samples / hist_secs);
        fprintf(out, "history_ingest_cpu_us_per_profile %.1f\n", hist_cpu * 1e6 / (double)f.hsteps);
        fprintf(out, "disk_bytes %.0f\n", disk);
        fprintf(out, "gzip_pprof_bytes %llu\n", (unsigned long long)gz_bytes);
        fprintf(out, "disk_bytes_per_sample %.3f\n", samples ? disk / (double)samples : 0.0);
        fprintf(out, "gzip_pprof_bytes_per_sample %.3f\n",
                samples ? (double)gz_bytes / (double)samples : 0.0);
        fprintf(out, "disk_vs_gzip_pprof_ratio %.3f\n", disk / (double)gz_bytes);
        fprintf(out, "merge_samples %llu\n", (unsigned long long)ms.samples);
        fprintf(out, "merge_profiles %llu\n", (unsigned long long)ms.blocks);
        fprintf(out, "merge_cold_cache_dropped %d\n", dropped_all);
        fprintf(out, "merge_cold_resident_pct %.1f\n", resident);
        fprintf(out, "merge_cold_samples_per_s %.0f\n", (double)ms.samples / cold);
        fprintf(out, "merge_warm_samples_per_s %.0f\n", (double)ms.samples / warm);
        fprintf(out, "merge_warm_cpu_samples_per_s %.0f\n", (double)ms.samples / warm_cpu);
        if (copy > 0) {
            fprintf(out, "memcpy_floor_samples_per_s %.0f\n", (double)ms.samples / copy);
            fprintf(out, "merge_warm_vs_memcpy_ratio %.2f\n", warm / copy);
        }
        if (go > 0 && sub > 0) {
            fprintf(out, "go_pprof_merge_profiles %ld\n", n_go);
            fprintf(out, "go_pprof_merge_samples %llu\n", (unsigned long long)sub_ms.samples);
            fprintf(out, "go_pprof_merge_seconds %.3f\n", go);
            fprintf(out, "firn_merge_same_seconds %.4f\n", sub);
            fprintf(out, "merge_speedup_vs_go_pprof %.1f\n", go / sub);
            fprintf(out, "go_pprof_merge_cpu_seconds %.3f\n", go_cpu);
            fprintf(out, "firn_merge_same_cpu_seconds %.4f\n", sub_cpu);
            fprintf(out, "merge_cpu_speedup_vs_go_pprof %.1f\n", go_cpu / sub_cpu);
        }
        fprintf(out, "compaction_seconds %.3f\n", compaction);
        fprintf(out, "flamegraph_1h_ms %.1f\n", fg[0]);
        fprintf(out, "flamegraph_1h_raw_ms %.1f\n", fg_raw[0]);
        fprintf(out, "flamegraph_24h_ms %.1f\n", fg[1]);
        fprintf(out, "flamegraph_24h_raw_ms %.1f\n", fg_raw[1]);
        fprintf(out, "flamegraph_7d_ms %.1f\n", fg[2]);
        fprintf(out, "flamegraph_7d_raw_ms %.1f\n", fg_raw[2]);
        fprintf(out, "flamegraph_7d_vs_1h_ratio %.1f\n", fg[2] / fg[0]);
        fprintf(out, "rollup_speedup_7d %.2f\n", fg_raw[2] / fg[2]);
        fprintf(out, "flamegraph_7d_profiles %lld\n",
                (long long)(f.hsteps < 7 * 86400000LL / o->history_interval_ms
                                ? f.hsteps
                                : 7 * 86400000LL / o->history_interval_ms));
        fprintf(out, "flamegraph_fleet_ms %.1f\n", fg_fleet);
        {
            fprintf(out, "range_query_series %ld\n", o->range_series);
            fprintf(out, "range_query_points %ld\n", o->range_points);
            fprintf(out, "range_query_result_series %zu\n", rq.out_series);
            fprintf(out, "range_query_first_ms %.2f\n", rq.query_first_ms);
            /* the data set's size in the name: --quick's is smaller */
            fprintf(out, "range_query_%ldx%ld_ms %.2f\n", o->range_series, o->range_points,
                    rq.query_ms);
            fprintf(out, "range_query_read_ms %.2f\n", rq.read_ms);
            fprintf(out, "range_query_vs_read_ratio %.2f\n", rq.query_ms / rq.read_ms);
            fprintf(out, "range_query_cpu_ms %.2f\n", rq.query_cpu_ms);
            fprintf(out, "range_query_read_cpu_ms %.2f\n", rq.read_cpu_ms);
        }
        fprintf(out, "bench_pool_mb %.1f\n", (double)pool_bytes / 1e6);
        fprintf(out, "bench_pool_shared %d\n", f.pool != NULL);
        fprintf(out, "bench_bases_mb %.1f\n", (double)bases_bytes / 1e6);
        fprintf(out, "rss_anon_base_mb %.1f\n", (double)rss_base_anon / 1024);
        fprintf(out, "rss_anon_peak_mb %.1f\n", (double)rss_ingest_anon / 1024);
        fprintf(out, "rss_file_peak_mb %.1f\n", (double)rss_ingest_file / 1024);
        fprintf(out, "rss_anon_after_mb %.1f\n", (double)rss_after_anon / 1024);
        fprintf(out, "rss_file_after_mb %.1f\n", (double)rss_after_file / 1024);
        fprintf(out, "bench_seconds %.1f\n", bench_now() - t_begin);
    }
    if (f.db)
        tsdb_close(f.db);
    free_fleet(&f);
    bench_rm_tree(dir);
    pthread_mutex_destroy(&f.mu);
    pthread_cond_destroy(&f.answered);
    return rc;
}
