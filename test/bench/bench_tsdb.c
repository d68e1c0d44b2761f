/* bench_tsdb.c -- the store's ingest and merge speed, disk use per sample,
 * and peak memory, against two floors/peers measured in the same run:
 * zlib inflate of the same input bytes (ingest can't beat reading them)
 * and `go tool pprof -proto` merging the same profiles (what a user would
 * do with the files).
 *
 * Synthetic series: `targets` targets, each sending `profiles` profiles 10 s
 * apart.  Target t sends variants of base profile t % n_bases (the given
 * files): every sample's values scaled by a random factor 0..3 (0 drops it),
 * so blocks differ while stacks repeat, as they do for a fleet of one
 * service.  A pool of variants is encoded once; ingest then decodes and
 * appends them from several producer threads into the one writer, so
 * commits are batched as they are in the server.
 *
 * bench query and bench rules run on the same data set.
 */
#include "bench.h"
#include "bench_util.h"

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "promql-like/pql.h"
#include "rules/rules.h"
#include "tsdb/tsdb.h"

#define VARIANTS 32
#define MAX_BASES 16

struct variant {
    unsigned char *gz;
    size_t len;
    size_t samples;   /* nonzero samples of its first column */
};

struct base {
    const char *file;
    const char *name;   /* profile name: process_cpu or memory */
    char type[256];     /* __name__ of its first sample type */
    struct variant v[VARIANTS];
};

struct bench {
    struct base bases[MAX_BASES];
    size_t n_bases;
    long targets, profiles;
    int64_t t0;
    tsdb *db;
    _Atomic long next;          /* next (target, profile) index to ingest */
    _Atomic uint64_t samples;   /* samples appended (all columns) */
    _Atomic int failed;
    firn_err err;
    pthread_mutex_t err_mu;
};

static int make_variants(struct base *b, firn_err *err)
{
    unsigned char *buf;
    size_t len;
    if (firn_read_file(b->file, 64u << 20, &buf, &len, err) < 0)
        return err->code;
    uint64_t seed = 0x9E3779B97F4A7C15ull ^ len;
    for (int k = 0; k < VARIANTS; k++) {
        pprof_profile *p = pprof_decode(buf, len, NULL, err);
        if (!p) {
            free(buf);
            firn_err_prefix(err, "%s", b->file);
            return err->code;
        }
        if (k == 0) {
            const char *pt = pprof_str(p, p->period_type.type);
            b->name = strcmp(pt, "cpu") == 0 ? "process_cpu" : "memory";
            firn_profile_type_format(b->type, sizeof b->type, b->name,
                                     pprof_str(p, p->sample_types[0].type),
                                     pprof_str(p, p->sample_types[0].unit), pt,
                                     pprof_str(p, p->period_type.unit), false);
        }
        size_t kept = 0;
        for (size_t i = 0; i < p->n_samples; i++) {
            int64_t f = (int64_t)(bench_rng(&seed) % 4);
            for (size_t j = 0; j < p->n_sample_types; j++)
                p->samples[i].values[j] *= f;
            kept += p->samples[i].values[0] != 0;
        }
        b->v[k].samples = kept;
        int rc = pprof_encode(p, -1, &b->v[k].gz, &b->v[k].len, err);
        pprof_free(p);
        if (rc < 0) {
            free(buf);
            return rc;
        }
    }
    free(buf);
    return 0;
}

static const struct variant *variant_of(const struct bench *b, long target, long i)
{
    const struct base *base = &b->bases[target % (long)b->n_bases];
    return &base->v[(target * 7 + i) % VARIANTS];
}

static void *producer(void *arg)
{
    struct bench *b = arg;
    long total = b->targets * b->profiles;
    char instance[64], job[32];
    for (;;) {
        long k = atomic_fetch_add(&b->next, 1);
        if (k >= total || atomic_load(&b->failed))
            break;
        /* time-major order, as scrapes arrive */
        long i = k / b->targets, t = k % b->targets;
        const struct variant *v = variant_of(b, t, i);
        firn_err err = {0};
        pprof_profile *p = pprof_decode(v->gz, v->len, NULL, &err);
        int rc = p ? 0 : err.code;
        if (p) {
            snprintf(instance, sizeof instance, "host-%ld:6060", t);
            snprintf(job, sizeof job, "bench-%ld", t % 10);
            firn_label labels[2] = {{"instance", instance}, {"job", job}};
            tsdb_append_req req = {.labels = labels,
                                   .n_labels = 2,
                                   .profile_name = b->bases[t % (long)b->n_bases].name,
                                   .profile = p,
                                   .timestamp_ms = b->t0 + i * 10000};
            rc = tsdb_append(b->db, &req, &err);
            if (rc == FIRN_EBUSY) {   /* back-pressure: retry this one */
                for (int tries = 0; rc == FIRN_EBUSY && tries < 1000; tries++) {
                    struct timespec pause = {0, 1000000};
                    nanosleep(&pause, NULL);
                    rc = tsdb_append(b->db, &req, &err);
                }
            }
            if (rc == 0) {
                uint64_t n = 0;
                for (size_t s = 0; s < p->n_samples; s++)
                    for (size_t j = 0; j < p->n_sample_types; j++)
                        n += p->samples[s].values[j] != 0;
                atomic_fetch_add(&b->samples, n);
            }
            pprof_free(p);
        }
        if (rc < 0) {
            pthread_mutex_lock(&b->err_mu);
            if (!atomic_exchange(&b->failed, 1))
                b->err = err;
            pthread_mutex_unlock(&b->err_mu);
            break;
        }
    }
    return NULL;
}

static double time_inflate(const struct bench *b, firn_err *err)
{
    double start = bench_now();
    for (long k = 0; k < b->targets * b->profiles; k++) {
        const struct variant *v = variant_of(b, k % b->targets, k / b->targets);
        unsigned char *out;
        size_t len;
        if (pprof_gunzip(v->gz, v->len, 1u << 30, &out, &len, err) < 0)
            return -1;
        free(out);
    }
    return bench_now() - start;
}

/* Makes the variants, opens a fresh store under /var/tmp (its directory
 * written to dir) and ingests targets x profiles from threads producers.
 * *ingest is the ingest time in seconds, *in_bytes the gzipped bytes. */
static int bench_fill(struct bench *b, const char **files, size_t n_files, long targets,
                      long profiles, int threads, char dir[32], FILE *log, double *ingest,
                      uint64_t *in_bytes, firn_err *err)
{
    memset(b, 0, sizeof *b);
    pthread_mutex_init(&b->err_mu, NULL);
    if (n_files > MAX_BASES)
        n_files = MAX_BASES;
    b->n_bases = n_files;
    b->targets = targets;
    b->profiles = profiles;
    int rc = 0;
    for (size_t i = 0; i < n_files && !rc; i++) {
        b->bases[i].file = files[i];
        rc = make_variants(&b->bases[i], err);
    }
    strcpy(dir, "/var/tmp/firn-bench-XXXXXX");
    if (!rc && !mkdtemp(dir))
        rc = firn_errf(err, FIRN_EIO, "mkdtemp: %s", strerror(errno));
    if (rc) {
        dir[0] = 0;
        return rc;
    }
    char store[64];
    snprintf(store, sizeof store, "%s/store", dir);
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = store;
    if (!(b->db = tsdb_open(&o, err)))
        return err->code;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    b->t0 = (int64_t)wall.tv_sec * 1000 - profiles * 10000;
    long n_profiles = targets * profiles;
    *in_bytes = 0;
    for (long k = 0; k < n_profiles; k++)
        *in_bytes += variant_of(b, k % targets, k / targets)->len;
    fprintf(log, "bench: %ld targets x %ld profiles from %zu base files, %d producer threads, "
                 "store %s\n", targets, profiles, n_files, threads, store);
    pthread_t *th = calloc((size_t)threads, sizeof *th);
    double start = bench_now();
    int started = 0;
    for (int i = 0; th && i < threads; i++)
        started += pthread_create(&th[i], NULL, producer, b) == 0;
    for (int i = 0; i < started; i++)
        pthread_join(th[i], NULL);
    *ingest = bench_now() - start;
    free(th);
    if (!th || !started)
        return firn_errf(err, FIRN_EIO, "cannot start producer threads");
    if (atomic_load(&b->failed)) {
        *err = b->err;
        return err->code ? err->code : FIRN_EIO;
    }
    return 0;
}

/* Closes the store, frees the variants and removes dir. */
static void bench_cleanup(struct bench *b, const char *dir)
{
    tsdb_close(b->db);
    for (size_t i = 0; i < b->n_bases; i++)
        for (int k = 0; k < VARIANTS; k++)
            free(b->bases[i].v[k].gz);
    bench_rm_tree(dir);
    pthread_mutex_destroy(&b->err_mu);
}

int bench_tsdb(const char **files, size_t n_files, long targets, long profiles, int threads,
               FILE *out, FILE *log, firn_err *err)
{
    static struct bench b;
    char dir[32];
    double ingest = 0, inflate = 0, merge = 0, merge_first = 0, go = -1;
    uint64_t in_bytes = 0, merged_samples = 0;
    long n_profiles = targets * profiles;
    int rc = bench_fill(&b, files, n_files, targets, profiles, threads, dir, log, &ingest,
                        &in_bytes, err);
    if (n_files > MAX_BASES)
        n_files = MAX_BASES;
    if (!rc && (inflate = time_inflate(&b, err)) < 0)
        rc = err->code;

    /* Merge: the first sample type of base 0 over enough of its targets for
     * 1M samples (at least one target), whole time range. */
    size_t n_go = 0;
    char **go_files = NULL;
    if (!rc) {
        uint64_t per_target = 0;
        for (long i = 0; i < profiles; i++)
            per_target += variant_of(&b, 0, i)->samples;
        long want = per_target ? (long)((1000000 + per_target - 1) / per_target) : 1;
        long have = (targets + (long)n_files - 1) / (long)n_files;
        if (want > have)
            want = have;
        char re[8192];
        size_t len = (size_t)snprintf(re, sizeof re, "host-(");
        for (long t = 0, k = 0; k < want && len < sizeof re - 32; t += (long)n_files, k++)
            len += (size_t)snprintf(re + len, sizeof re - len, "%s%ld", k ? "|" : "", t);
        snprintf(re + len, sizeof re - len, "):6060");
        firn_matcher m[2];
        memset(m, 0, sizeof m);
        if (firn_matcher_init(&m[0], FIRN_MATCH_EQ, FIRN_LABEL_NAME, b.bases[0].type, err) < 0 ||
            firn_matcher_init(&m[1], FIRN_MATCH_RE, "instance", re, err) < 0)
            rc = err->code;
        /* twice: the first run also faults the pages in; the second is
         * what a repeated dashboard query costs */
        tsdb_merge_stats ms = {0};
        if (!rc && (merge_first = bench_merge(b.db, m, 2, INT64_MIN, INT64_MAX, &ms, err)) < 0)
            rc = err->code;
        if (!rc && (merge = bench_merge(b.db, m, 2, INT64_MIN, INT64_MAX, &ms, err)) < 0)
            rc = err->code;
        merged_samples = ms.samples;
        if (!rc)
            fprintf(log, "bench tsdb: merged %llu profiles, %llu samples into %llu stacks\n",
                    (unsigned long long)ms.blocks, (unsigned long long)ms.samples,
                    (unsigned long long)ms.stacks);
        firn_matcher_destroy(&m[0]);
        firn_matcher_destroy(&m[1]);
        /* the same profiles as files, for go tool pprof */
        go_files = rc ? NULL : calloc((size_t)(want * profiles) + 1, sizeof *go_files);
        for (long t = 0, k = 0; go_files && k < want && !rc; t += (long)n_files, k++)
            for (long i = 0; i < profiles && !rc; i++) {
                char path[4096];
                snprintf(path, sizeof path, "%s/p-%ld-%ld.pb.gz", dir, t, i);
                const struct variant *v = variant_of(&b, t, i);
                if (firn_write_file_atomic(path, v->gz, v->len, err) < 0)
                    rc = err->code;
                else if (!(go_files[n_go++] = strdup(path)))
                    rc = firn_errf(err, FIRN_ENOMEM, "out of memory");
            }
        if (!rc && n_go)
            go = bench_go_merge(dir, go_files, n_go, "bench tsdb", log, NULL);
    }
    tsdb_stats st = {0};
    if (!rc && tsdb_stats_get(b.db, &st, err) < 0)
        rc = err->code;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    if (!rc) {
        uint64_t samples = atomic_load(&b.samples);
        fprintf(out, "bench_targets %ld\n", targets);
        fprintf(out, "bench_profiles %ld\n", n_profiles);
        fprintf(out, "bench_series %llu\n", (unsigned long long)st.series);
        fprintf(out, "bench_samples %llu\n", (unsigned long long)samples);
        fprintf(out, "ingest_profiles_per_s %.0f\n", (double)n_profiles / ingest);
        fprintf(out, "ingest_samples_per_s %.0f\n", (double)samples / ingest);
        fprintf(out, "ingest_mb_per_s %.1f\n", (double)in_bytes / 1e6 / ingest);
        fprintf(out, "inflate_mb_per_s %.1f\n", (double)in_bytes / 1e6 / inflate);
        fprintf(out, "ingest_vs_inflate_ratio %.2f\n", ingest / inflate);
        fprintf(out, "commits %llu\n", (unsigned long long)st.commits_total);
        fprintf(out, "disk_bytes %llu\n", (unsigned long long)st.disk_bytes);
        fprintf(out, "disk_bytes_per_sample %.2f\n",
                samples ? (double)st.disk_bytes / (double)samples : 0.0);
        fprintf(out, "merge_samples %llu\n", (unsigned long long)merged_samples);
        fprintf(out, "merge_first_samples_per_s %.0f\n", (double)merged_samples / merge_first);
        fprintf(out, "merge_samples_per_s %.0f\n", (double)merged_samples / merge);
        if (go > 0) {
            fprintf(out, "go_pprof_merge_seconds %.3f\n", go);
            fprintf(out, "merge_speedup_vs_go_pprof %.1f\n", go / merge);
        }
        fprintf(out, "peak_rss_mb %.1f\n", (double)ru.ru_maxrss / 1024.0);
    }
    for (size_t i = 0; i < n_go; i++)
        free(go_files[i]);
    free(go_files);
    bench_cleanup(&b, dir);
    return rc;
}

/* ---- bench query ------------------------------------------------------------ */

/* Mean microseconds to parse each of a few representative queries. */
static double time_parse(const char *type, firn_err *err)
{
    char q[4][1024];
    snprintf(q[0], sizeof q[0], "%s{job=\"api\", instance=~\"10\\\\..*\"}", type);
    snprintf(q[1], sizeof q[1], "sum by (job) (rate(%s{job=~\"bench-.*\"}[5m]))", type);
    snprintf(q[2], sizeof q[2],
             "sum(%s{__function__=~\"encoding/json\\\\..*\"}) / sum(%s) > bool 0.2", type, type);
    snprintf(q[3], sizeof q[3], "topk(5, max_over_time(%s[1h])) - on (instance) %s offset 1h",
             type, type);
    const int rounds = 2000;
    double start = bench_now();
    for (int i = 0; i < rounds; i++)
        for (int k = 0; k < 4; k++) {
            pql_query pq;
            if (pql_parse(q[k], &pq, err) < 0)
                return -1;
            pql_query_free(&pq);
        }
    return (bench_now() - start) * 1e6 / (rounds * 4);
}

/* Milliseconds for a range query of text over [start, end] at step; the
 * number of output series in *n_series. */
static double time_range(tsdb *db, const char *text, int64_t start, int64_t end, int64_t step,
                         size_t *n_series, firn_err *err)
{
    double t0 = bench_now();
    pql_query q;
    if (pql_parse(text, &q, err) < 0)
        return -1;
    tsdb_reader *r = tsdb_reader_open(db, err);
    pql_result res;
    int rc = r ? pql_eval_range(r, &q, start, end, step, NULL, &res, err) : -1;
    double ms = (bench_now() - t0) * 1000;
    if (rc == 0) {
        *n_series = res.n_series;
        pql_result_free(&res);
    }
    tsdb_reader_close(r);
    pql_query_free(&q);
    return rc == 0 ? ms : -1;
}

int bench_query(const char **files, size_t n_files, long targets, long profiles, int threads,
                FILE *out, FILE *log, firn_err *err)
{
    static struct bench b;
    char dir[32];
    double ingest;
    uint64_t in_bytes;
    int rc = bench_fill(&b, files, n_files, targets, profiles, threads, dir, log, &ingest,
                        &in_bytes, err);
    const char *type = b.bases[0].type;
    int64_t start = b.t0, end = b.t0 + (profiles - 1) * 10000;
    char text[1024];
    size_t n_out = 0, n_filtered = 0;
    double parse_us = -1, range_first = -1, range_ms = -1, filtered_ms = -1, merge_ms = -1;
    if (!rc && (parse_us = time_parse(type, err)) < 0)
        rc = err->code;
    snprintf(text, sizeof text, "sum by (job) (%s)", type);
    if (!rc && ((range_first = time_range(b.db, text, start, end, 10000, &n_out, err)) < 0 ||
                (range_ms = time_range(b.db, text, start, end, 10000, &n_out, err)) < 0))
        rc = err->code;
    /* a stack filter decodes every block of its series */
    snprintf(text, sizeof text, "sum(%s{job=\"bench-0\", __function__=~\"main\\\\..*\"})", type);
    if (!rc && (filtered_ms = time_range(b.db, text, start, end, 10000, &n_filtered, err)) < 0)
        rc = err->code;
    pql_tree tree = {0};
    if (!rc) {
        snprintf(text, sizeof text, "%s{job=\"bench-0\"}", type);
        pql_profile_request req = {.query = text, .mode = PQL_PROFILE_MERGE, .start_ms = start,
                                   .end_ms = end, .max_nodes = 1024};
        double t0 = bench_now();
        tsdb_reader *r = tsdb_reader_open(b.db, err);
        if (!r || pql_profile_tree(r, &req, &tree, err) < 0)
            rc = err->code ? err->code : FIRN_EIO;
        merge_ms = (bench_now() - t0) * 1000;
        tsdb_reader_close(r);
        pql_tree_free(&tree);
    }
    if (!rc) {
        fprintf(log, "bench query: range query over %ld series x %ld points -> %zu series\n",
                targets / (long)b.n_bases, profiles, n_out);
        fprintf(out, "bench_targets %ld\n", targets);
        fprintf(out, "bench_profiles %ld\n", targets * profiles);
        fprintf(out, "parse_us %.2f\n", parse_us);
        fprintf(out, "range_query_series %ld\n", targets / (long)b.n_bases);
        fprintf(out, "range_query_points %ld\n", profiles);
        fprintf(out, "range_query_first_ms %.1f\n", range_first);
        fprintf(out, "range_query_ms %.1f\n", range_ms);
        fprintf(out, "filtered_range_query_ms %.1f\n", filtered_ms);
        fprintf(out, "merge_query_ms %.1f\n", merge_ms);
    }
    bench_cleanup(&b, dir);
    return rc;
}

/* ---- bench rules --------------------------------------------------------------- */

/* Process CPU seconds (all threads). */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#define RULES_PER_GROUP 100

/* Rule i: target i's rate over 5m, every other one with a stack filter. */
static void rule_expr(const struct bench *b, long i, char *out, size_t size)
{
    const char *type = b->bases[i % (long)b->n_bases].type;
    if (i % 2)
        snprintf(out, size, "sum by (instance) (rate(%s{instance=\"host-%ld:6060\", "
                 "__function__=~\"runtime\\\\..*\"}[5m]))", type, i);
    else
        snprintf(out, size, "sum by (instance) (rate(%s{instance=\"host-%ld:6060\"}[5m]))",
                 type, i);
}

int bench_rules(const char **files, size_t n_files, long targets, long profiles, int threads,
                FILE *out, FILE *log, firn_err *err)
{
    static struct bench b;
    char dir[32];
    double ingest;
    uint64_t in_bytes;
    if (profiles < 31)
        return firn_errf(err, FIRN_EINVAL, "--profiles %ld: a 5m window needs at least 31 "
                         "profiles 10 s apart", profiles);
    int rc = bench_fill(&b, files, n_files, targets, profiles, threads, dir, log, &ingest,
                        &in_bytes, err);
    long n_rules = targets;
    size_t n_groups = (size_t)((n_rules + RULES_PER_GROUP - 1) / RULES_PER_GROUP);
    /* the rule file, as a user would write it */
    firn_buf y = {0};
    firn_buf_puts(&y, "groups:\n");
    char expr[1024];
    for (long i = 0; i < n_rules; i++) {
        if (i % RULES_PER_GROUP == 0)
            firn_buf_printf(&y, "  - name: g%ld\n    interval: 1m\n    rules:\n",
                            i / RULES_PER_GROUP);
        rule_expr(&b, i, expr, sizeof expr);
        firn_buf_printf(&y, "      - record: bench:rate%s:%ld\n        expr: '%s'\n",
                        i % 2 ? "_filtered" : "", i, expr);
    }
    size_t ylen = 0;
    char *yaml = firn_buf_take(&y, &ylen);
    rules_file *f = NULL;
    rules_group_rt **g = calloc(n_groups + 1, sizeof *g);
    if (!rc && (!yaml || !g))
        rc = firn_errf(err, FIRN_ENOMEM, "out of memory");
    rules_errors errs = {0};
    if (!rc && !(f = rules_file_parse("bench_rules.yml", yaml, ylen, &errs, err)))
        rc = err->code ? err->code : FIRN_EINVAL;
    rules_errors_free(&errs);
    rules_eval_options eo = {.db = b.db};
    for (size_t k = 0; !rc && k < n_groups; k++)
        if (!(g[k] = rules_group_rt_new(f, k, 60000, &eo, err)))
            rc = err->code ? err->code : FIRN_ENOMEM;
    /* two intervals: the first one warms the page cache and the symbol
     * caches as a running server's would be; the figures are the second's */
    int64_t end = b.t0 + (profiles - 1) * 10000;
    double group_ms_sum = 0, group_ms_max = 0, cpu_s = 0, wall_s = 0;
    double plain_s = 0, filtered_s = 0, rule_max_s = 0;
    for (int round = 0; !rc && round < 2; round++) {
        int64_t ts = end - (1 - round) * 60000;
        double c0 = cpu_seconds(), w0 = bench_now();
        group_ms_sum = group_ms_max = plain_s = filtered_s = rule_max_s = 0;
        for (size_t k = 0; k < n_groups; k++) {
            double gs = bench_now();
            rules_group_rt_eval(g[k], ts);
            double ms = (bench_now() - gs) * 1000;
            group_ms_sum += ms;
            group_ms_max = ms > group_ms_max ? ms : group_ms_max;
            for (size_t i = 0; i < g[k]->n_rules; i++) {
                const rules_rule_rt *r = &g[k]->rules[i];
                if (r->health != RULES_HEALTH_OK)
                    rc = firn_errf(err, FIRN_EIO, "rule %s: %s", r->rule->name, r->last_error);
                *(strstr(r->rule->name, "_filtered") ? &filtered_s : &plain_s) += r->eval_seconds;
                rule_max_s = r->eval_seconds > rule_max_s ? r->eval_seconds : rule_max_s;
            }
        }
        cpu_s = cpu_seconds() - c0;
        wall_s = bench_now() - w0;
    }
    /* the anchor: the same expressions as plain instant queries at the same
     * time, in the same run (what the rule engine adds is the difference) */
    double anchor_s = 0, anchor_c0 = cpu_seconds();
    size_t produced = 0;
    for (long i = 0; !rc && i < n_rules; i++) {
        rule_expr(&b, i, expr, sizeof expr);
        pql_query q;
        if (pql_parse(expr, &q, err) < 0) {
            rc = err->code;
            break;
        }
        double t0 = bench_now();
        tsdb_reader *r = tsdb_reader_open(b.db, err);
        pql_result res;
        int qrc = r ? pql_eval_instant(r, &q, end, NULL, &res, err) : -1;
        tsdb_reader_close(r);
        anchor_s += bench_now() - t0;
        pql_query_free(&q);
        if (qrc < 0) {
            rc = err->code ? err->code : FIRN_EIO;
            break;
        }
        produced += res.n_series;
        pql_result_free(&res);
    }
    double anchor_cpu_s = cpu_seconds() - anchor_c0;
    if (!rc) {
        long n_filtered = n_rules / 2, n_plain = n_rules - n_filtered;
        fprintf(log, "bench rules: %ld rules (%ld with a stack filter) in %zu groups over %ld "
                "series of %ld profiles; %zu results\n", n_rules, n_filtered, n_groups,
                targets, profiles, produced);
        fprintf(out, "bench_rules %ld\n", n_rules);
        fprintf(out, "bench_rules_filtered %ld\n", n_filtered);
        fprintf(out, "bench_groups %zu\n", n_groups);
        fprintf(out, "bench_series %ld\n", targets);
        fprintf(out, "bench_results %zu\n", produced);
        fprintf(out, "rules_interval_wall_ms %.1f\n", wall_s * 1000);
        fprintf(out, "rules_interval_cpu_ms %.1f\n", cpu_s * 1000);
        fprintf(out, "rules_cpu_share_of_1m_interval %.4f\n", cpu_s / 60.0);
        fprintf(out, "group_eval_ms_mean %.2f\n", group_ms_sum / (double)n_groups);
        fprintf(out, "group_eval_ms_max %.2f\n", group_ms_max);
        fprintf(out, "rule_eval_us_mean %.1f\n", (plain_s + filtered_s) * 1e6 / (double)n_rules);
        fprintf(out, "rule_eval_us_plain_mean %.1f\n", n_plain ? plain_s * 1e6 / (double)n_plain : 0);
        fprintf(out, "rule_eval_us_filtered_mean %.1f\n",
                n_filtered ? filtered_s * 1e6 / (double)n_filtered : 0);
        fprintf(out, "rule_eval_us_max %.1f\n", rule_max_s * 1e6);
        fprintf(out, "anchor_instant_queries_ms %.1f\n", anchor_s * 1000);
        fprintf(out, "rules_vs_instant_queries_ratio %.2f\n",
                anchor_s > 0 ? wall_s / anchor_s : 0);
        fprintf(out, "anchor_instant_queries_cpu_ms %.1f\n", anchor_cpu_s * 1000);
        fprintf(out, "rules_vs_instant_queries_cpu_ratio %.2f\n",
                anchor_cpu_s > 0 ? cpu_s / anchor_cpu_s : 0);
    }
    for (size_t k = 0; g && k < n_groups; k++)
        rules_group_rt_free(g[k]);
    free(g);
    rules_file_free(f);
    free(yaml);
    bench_cleanup(&b, dir);
    return rc;
}
