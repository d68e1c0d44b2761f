/* bench_rollup.c -- what rollups buy a long-range flame graph, and how fast
 * the merge is, each against an anchor measured in the same run:
 *  - the flame graph of one job over 1 h, 24 h and 7 d through the query
 *    layer (pql_profile_tree, as the API serves it), with rollups and with
 *    the raw merge of the same store (pql_profile_request.raw);
 *  - the raw merge's samples/s, warm and cold (the store's file dropped
 *    from the page cache with posix_fadvise while it is closed), against a
 *    memcpy of the same decoded bytes (the memory-bandwidth floor);
 *  - the compaction pass that writes the rollups.
 *
 * The data set: `targets` targets of one job, `profiles` profiles each
 * spread evenly over the last 7 days, each profile a random subset (30 to
 * 90%) of a base file's samples with values scaled by 1..4, from a pool of
 * 32 variants per base, appended decoded (ingest speed is not measured).
 */
#include "bench.h"
#include "bench_util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "promql-like/pql.h"
#include "tsdb/tsdb.h"

#define POOL 32
#define HOUR_MS (3600LL * 1000)
#define WEEK_MS (7 * 24 * HOUR_MS)

/* POOL variants of one base file. */
static int make_pool(const char *file, pprof_profile **pool, firn_err *err)
{
    unsigned char *buf;
    size_t len;
    if (firn_read_file(file, 64u << 20, &buf, &len, err) < 0)
        return err->code;
    uint64_t seed = 0x2545F4914F6CDD1Dull ^ len;
    int rc = 0;
    for (int k = 0; k < POOL && !rc; k++) {
        pprof_profile *p = pprof_decode(buf, len, NULL, err);
        if (!p) {
            firn_err_prefix(err, "%s", file);
            rc = err->code;
            break;
        }
        uint64_t keep = 30 + bench_rng(&seed) % 61;   /* percent of the samples */
        for (size_t i = 0; i < p->n_samples; i++) {
            int64_t f = bench_rng(&seed) % 100 < keep ? (int64_t)(1 + bench_rng(&seed) % 4) : 0;
            for (size_t j = 0; j < p->n_sample_types; j++)
                p->samples[i].values[j] *= f;
        }
        pool[k] = p;
    }
    free(buf);
    return rc;
}

/* One flame graph of the job over [start, end] in ms, with rollups or raw;
 * *total is its root's value. */
static double tree_ms(tsdb *db, const char *query, int64_t start, int64_t end, bool raw,
                      int64_t *total, firn_err *err)
{
    tsdb_reader *r = tsdb_reader_open(db, err);
    if (!r)
        return -1;
    pql_profile_request req = {.query = query,
                               .mode = PQL_PROFILE_MERGE,
                               .start_ms = start,
                               .end_ms = end,
                               .max_nodes = 8192,
                               .max_samples = SIZE_MAX,
                               .raw = raw};
    pql_tree tree;
    double t0 = bench_now();
    int rc = pql_profile_tree(r, &req, &tree, err);
    double dt = bench_now() - t0;
    tsdb_reader_close(r);
    if (rc < 0)
        return -1;
    *total = tree.total;
    pql_tree_free(&tree);
    return dt * 1000;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

#define ROUNDS 5

/* Medians of ROUNDS flame graphs with rollups and raw, taken in turn so
 * that the load of a shared machine weighs on both alike. */
static int time_trees(tsdb *db, const char *query, int64_t start, int64_t end, double *ms,
                      double *raw_ms, firn_err *err)
{
    double a[ROUNDS], b[ROUNDS];
    int64_t total = 0, total_raw = 0;
    if (tree_ms(db, query, start, end, false, &total, err) < 0)   /* warm up */
        return err->code;
    for (int i = 0; i < ROUNDS; i++) {
        if ((a[i] = tree_ms(db, query, start, end, false, &total, err)) < 0 ||
            (b[i] = tree_ms(db, query, start, end, true, &total_raw, err)) < 0)
            return err->code;
        if (total != total_raw)
            return firn_errf(err, FIRN_EIO, "flame graph total %lld from rollups, %lld from "
                             "raw profiles", (long long)total, (long long)total_raw);
    }
    qsort(a, ROUNDS, sizeof *a, cmp_double);
    qsort(b, ROUNDS, sizeof *b, cmp_double);
    *ms = a[ROUNDS / 2];
    *raw_ms = b[ROUNDS / 2];
    return 0;
}

/* One raw merge of every series of the job over the week; seconds. */
static double time_merge(tsdb *db, int64_t start, int64_t end, tsdb_merge_stats *st,
                         firn_err *err)
{
    tsdb_reader *r = tsdb_reader_open(db, err);
    if (!r)
        return -1;
    firn_matcher m[2];
    memset(m, 0, sizeof m);
    tsdb_series_set set = {0};
    double secs = -1;
    if (firn_matcher_init(&m[0], FIRN_MATCH_EQ, FIRN_LABEL_NAME,
                          "process_cpu:cpu:nanoseconds:cpu:nanoseconds", err) == 0 &&
        firn_matcher_init(&m[1], FIRN_MATCH_EQ, "job", "bench", err) == 0 &&
        tsdb_select(r, m, 2, start, end, &set, err) == 0 && set.n) {
        uint64_t *ids = malloc(set.n * sizeof *ids);
        for (size_t i = 0; ids && i < set.n; i++)
            ids[i] = set.series[i].id;
        tsdb_merge_options o = {.raw = true};
        double t0 = bench_now();
        pprof_profile *p = ids ? tsdb_merge(r, ids, set.n, start, end, &o, st, err) : NULL;
        if (p)
            secs = bench_now() - t0;
        pprof_free(p);
        free(ids);
    }
    tsdb_series_set_free(&set);
    firn_matcher_destroy(&m[0]);
    firn_matcher_destroy(&m[1]);
    tsdb_reader_close(r);
    return secs;
}

/* Seconds to copy the decoded bytes of `samples` samples (a stack id and
 * a value each) once: the floor no merge beats. */
static double time_memcpy(uint64_t samples)
{
    size_t n = (size_t)samples * (sizeof(uint32_t) + sizeof(int64_t));
    size_t chunk = 64u << 20;
    char *a = malloc(chunk), *b = malloc(chunk);
    if (!a || !b) {
        free(a);
        free(b);
        return -1;
    }
    memset(a, 1, chunk);
    memset(b, 2, chunk);
    double t0 = bench_now();
    for (size_t done = 0; done < n; done += chunk) {
        size_t len = n - done < chunk ? n - done : chunk;
        memcpy(b, a, len);
        __asm__ volatile("" : : "r"(b) : "memory");
    }
    double secs = bench_now() - t0;
    free(a);
    free(b);
    return secs;
}

struct fill {
    tsdb *db;
    pprof_profile **pool;
    long targets, profiles;
    int64_t start, step;
    _Atomic long next;
    _Atomic uint64_t samples;
    _Atomic int failed;
    firn_err err;
};

/* Appends (profile, target) pairs in time order from several threads, so
 * the writer batches commits as it does in the server. */
static void *filler(void *arg)
{
    struct fill *f = arg;
    for (;;) {
        long k = atomic_fetch_add(&f->next, 1);
        if (k >= f->targets * f->profiles || atomic_load(&f->failed))
            return NULL;
        long i = k / f->targets, t = k % f->targets;
        char instance[32];
        snprintf(instance, sizeof instance, "host-%ld:6060", t);
        firn_label labels[2] = {{"instance", instance}, {"job", "bench"}};
        const pprof_profile *p = f->pool[(i * 7 + t) % POOL];
        tsdb_append_req req = {.labels = labels,
                               .n_labels = 2,
                               .profile_name = "process_cpu",
                               .profile = p,
                               .timestamp_ms = f->start + i * f->step + t};
        firn_err err = {0};
        int rc;
        while ((rc = tsdb_append(f->db, &req, &err)) == FIRN_EBUSY) {
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, NULL);   /* back-pressure, not synchronization */
        }
        if (rc < 0) {
            if (!atomic_exchange(&f->failed, 1))
                f->err = err;
            return NULL;
        }
        uint64_t n = 0;
        for (size_t s = 0; s < p->n_samples; s++)
            n += p->samples[s].values[0] != 0;
        atomic_fetch_add(&f->samples, n);
    }
}

static int open_store(const char *store, bool read_only, tsdb **db, firn_err *err)
{
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = store;
    o.retention_ms = 0;
    o.no_rollups = true;   /* compaction runs once, timed, below */
    o.rollup_delay_ms = 0;
    o.read_only = read_only;
    *db = tsdb_open(&o, err);
    return *db ? 0 : err->code;
}

int bench_rollup(const char **files, size_t n_files, long targets, long profiles, int threads,
                 FILE *out, FILE *log, firn_err *err)
{
    (void)threads;
    pprof_profile *pool[POOL] = {0};
    int rc = make_pool(files[0], pool, err);
    if (n_files > 1)
        fprintf(log, "bench rollup: uses %s only\n", files[0]);
    char dir[] = "/var/tmp/firn-bench-rollup-XXXXXX", store[64];
    if (!rc && !mkdtemp(dir))
        rc = firn_errf(err, FIRN_EIO, "mkdtemp: %s", strerror(errno));
    snprintf(store, sizeof store, "%s/store", dir);
    tsdb *db = NULL;
    if (!rc)
        rc = open_store(store, false, &db, err);
    /* the week ends at the last whole hour, so 1 h and 24 h are whole buckets */
    int64_t end = (int64_t)time(NULL) * 1000 / HOUR_MS * HOUR_MS - 1, start = end + 1 - WEEK_MS;
    int64_t step = WEEK_MS / profiles;
    static struct fill f;
    f = (struct fill){.db = db, .pool = pool, .targets = targets, .profiles = profiles,
                      .start = start, .step = step};
    double t0 = bench_now();
    if (!rc) {
        pthread_t th[8];
        int started = 0;
        for (int i = 0; i < 8; i++)
            started += pthread_create(&th[started], NULL, filler, &f) == 0;
        for (int i = 0; i < started; i++)
            pthread_join(th[i], NULL);
        if (!started)
            rc = firn_errf(err, FIRN_EIO, "cannot start threads");
        else if (atomic_load(&f.failed))
            rc = (*err = f.err).code;
    }
    uint64_t samples = atomic_load(&f.samples);
    double fill = bench_now() - t0;
    if (!rc)
        fprintf(log, "bench rollup: %ld targets x %ld profiles over 7 days (%.1f s), %llu "
                     "samples per type\n", targets, profiles, fill, (unsigned long long)samples);

    /* the raw merge, warm then cold, before any rollup exists */
    const char *q = "process_cpu:cpu:nanoseconds:cpu:nanoseconds{job=\"bench\"}";
    tsdb_merge_stats ms = {0};
    double warm = -1, cold = -1, floor = -1;
    if (!rc && (time_merge(db, start, end, &ms, err) < 0 ||
                (warm = time_merge(db, start, end, &ms, err)) < 0))
        rc = err->code;
    if (!rc) {
        tsdb_close(db);
        db = NULL;
        char file[96];
        snprintf(file, sizeof file, "%s/data.mdb", store);
        int fd = open(file, O_RDONLY);
        if (fd >= 0) {
            fdatasync(fd);
            posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
            close(fd);
        }
        if ((rc = open_store(store, false, &db, err)) == 0 &&
            (cold = time_merge(db, start, end, &ms, err)) < 0)
            rc = err->code;
        floor = time_memcpy(ms.samples);
    }
    /* compaction */
    double compact = -1;
    tsdb_stats st = {0};
    if (!rc) {
        double c0 = bench_now();
        uint64_t written = 0;
        if ((rc = tsdb_rollup_run(db, end + 1, &written, err)) == 0)
            compact = bench_now() - c0;
        if (!rc)
            rc = tsdb_stats_get(db, &st, err);
    }
    double fg[3] = {-1, -1, -1}, fg_raw[3] = {-1, -1, -1};
    const int64_t spans[3] = {HOUR_MS, 24 * HOUR_MS, WEEK_MS};
    for (int k = 0; k < 3 && !rc; k++)
        rc = time_trees(db, q, end + 1 - spans[k], end, &fg[k], &fg_raw[k], err);
    /* the 7-day merge alone (no flame graph), with rollups */
    tsdb_merge_stats rs = {0};
    double merge_7d = -1;
    if (!rc) {
        tsdb_reader *r = tsdb_reader_open(db, err);
        firn_matcher m[2];
        memset(m, 0, sizeof m);
        tsdb_series_set set = {0};
        if (!r || firn_matcher_init(&m[0], FIRN_MATCH_EQ, "job", "bench", err) < 0 ||
            firn_matcher_init(&m[1], FIRN_MATCH_EQ, FIRN_LABEL_NAME,
                              "process_cpu:cpu:nanoseconds:cpu:nanoseconds", err) < 0 ||
            tsdb_select(r, m, 2, start, end, &set, err) < 0) {
            rc = err->code;
        } else {
            uint64_t ids[64];
            size_t n = set.n < 64 ? set.n : 64;
            for (size_t i = 0; i < n; i++)
                ids[i] = set.series[i].id;
            double m0 = bench_now();
            pprof_profile *p = tsdb_merge(r, ids, n, start, end, NULL, &rs, err);
            merge_7d = (bench_now() - m0) * 1000;
            if (!p)
                rc = err->code;
            pprof_free(p);
        }
        tsdb_series_set_free(&set);
        firn_matcher_destroy(&m[0]);
        firn_matcher_destroy(&m[1]);
        tsdb_reader_close(r);
    }
    if (!rc) {
        fprintf(out, "bench_targets %ld\n", targets);
        fprintf(out, "bench_profiles %ld\n", targets * profiles);
        fprintf(out, "merge_profiles %llu\n", (unsigned long long)ms.blocks);
        fprintf(out, "merge_samples %llu\n", (unsigned long long)ms.samples);
        fprintf(out, "merge_stacks %llu\n", (unsigned long long)ms.stacks);
        fprintf(out, "merge_warm_samples_per_s %.0f\n", (double)ms.samples / warm);
        fprintf(out, "merge_cold_samples_per_s %.0f\n", (double)ms.samples / cold);
        fprintf(out, "memcpy_floor_samples_per_s %.0f\n", (double)ms.samples / floor);
        fprintf(out, "merge_warm_vs_memcpy_ratio %.1f\n", warm / floor);
        fprintf(out, "compaction_seconds %.2f\n", compact);
        fprintf(out, "rollups %llu\n", (unsigned long long)st.rollups);
        fprintf(out, "disk_bytes %llu\n", (unsigned long long)st.disk_bytes);
        const char *names[3] = {"1h", "24h", "7d"};
        for (int k = 0; k < 3; k++) {
            fprintf(out, "flamegraph_%s_ms %.1f\n", names[k], fg[k]);
            fprintf(out, "flamegraph_%s_raw_ms %.1f\n", names[k], fg_raw[k]);
        }
        fprintf(out, "merge_7d_rollups_ms %.1f\n", merge_7d);
        fprintf(out, "merge_7d_rollups_read %llu\n", (unsigned long long)rs.rollups);
        fprintf(out, "merge_7d_raw_ms %.1f\n", warm * 1000);
        fprintf(out, "flamegraph_7d_vs_1h_ratio %.2f\n", fg[2] / fg[0]);
        fprintf(out, "flamegraph_7d_raw_vs_1h_ratio %.2f\n", fg_raw[2] / fg_raw[0]);
        fprintf(out, "rollup_speedup_7d %.1f\n", fg_raw[2] / fg[2]);
    }
    if (db)
        tsdb_close(db);
    for (int k = 0; k < POOL; k++)
        pprof_free(pool[k]);
    if (dir[strlen(dir) - 1] != 'X')
        bench_rm_tree(dir);
    return rc;
}
