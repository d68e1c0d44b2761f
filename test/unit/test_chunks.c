/* test_chunks.c -- the chunks of totals (tsdb/chunks.c) and the series by
 * series range evaluation (promql-like/eval.c) against what they replace.
 *
 * Totals scans (TSDB_SCAN_TOTALS, read from the chunks) are compared with
 * the points the test appended, kept here, and with raw per-profile scans
 * (the samples database, one block per profile), over random windows:
 * after appends in random order from several threads (late points land in
 * full chunks and split them), after retention deleted the oldest points
 * (one series entirely), after more late appends, and across an upgrade
 * from schema 4 (chunks built at the writable open).  Range queries that
 * the evaluator takes series by series are compared bit for bit with the
 * same query times 1, which it evaluates step by step as before.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixtures.h"

#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pprof/pprof.h"
#include "promql-like/pql.h"
#include "tsdb/tsdb.h"

#define TARGETS 4
#define POINTS 520             /* per target: more than two chunks' worth */
#define STALE_AT 90            /* target 3 stops here: retention then deletes it all */
#define STEP_MS 10000
#define THREADS 8
#define CPU_TYPE "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"
#define COUNT_TYPE "process_cpu:samples:count:cpu:nanoseconds"

struct point {
    int64_t ts, duration, period, total[2];
    bool stored;
};

struct target {
    char instance[16];
    const char *job;
    struct point p[POINTS];
    size_t n;
};

struct item {
    int target;
    size_t k;
};

struct world {
    tsdb *db;
    struct target t[TARGETS];
    struct item *items;
    size_t n_items;
    _Atomic size_t next;
    _Atomic int failed;
    int64_t base;
};

static struct world W;

static int dir_setup(void **state)
{
    *state = temp_dir("chunks");
    return 0;
}

static int dir_teardown(void **state)
{
    remove_tree(*state);
    free(*state);
    return 0;
}

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

/* Two sample types (cpu, delta; samples, a counter), three stacks. */
static pprof_profile *profile_of(const struct point *pt, const int64_t v[2][3])
{
    pprof_builder *b = pprof_builder_new(2);
    pprof_builder_sample_type(b, 0, "cpu", "nanoseconds");
    pprof_builder_sample_type(b, 1, "samples", "count");
    pprof_builder_period(b, "cpu", "nanoseconds", pt->period);
    pprof_builder_time(b, pt->ts * 1000000, pt->duration);
    for (int i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "f%d", i);
        pprof_function f = {.name = pprof_builder_string(b, name, strlen(name))};
        pprof_line l = {.function = pprof_builder_function(b, &f)};
        pprof_location loc = {.mapping = PPROF_NONE, .lines = &l, .n_lines = 1};
        uint32_t stack = pprof_builder_location(b, &loc);
        int64_t values[2] = {v[0][i], v[1][i]};
        pprof_builder_sample(b, &stack, 1, values, NULL, 0);
    }
    firn_err err = {0};
    return pprof_builder_finish(b, &err);
}

/* Makes target t's point k (values drawn now) and appends it. */
static int append_point(tsdb *db, struct target *t, size_t k, firn_err *err)
{
    struct point *pt = &t->p[k];
    int64_t v[2][3];
    pt->total[0] = pt->total[1] = 0;
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 3; i++) {
            v[c][i] = (int64_t)(next_rand() % 1000000);
            pt->total[c] += v[c][i];
        }
    pprof_profile *p = profile_of(pt, v);
    firn_label labels[] = {{"instance", t->instance}, {"job", t->job}};
    bool delta_columns[2] = {true, false};
    tsdb_append_req req = {.labels = labels,
                           .n_labels = 2,
                           .profile_name = "process_cpu",
                           .delta_columns = delta_columns,
                           .profile = p,
                           .timestamp_ms = pt->ts};
    int rc = tsdb_append(db, &req, err);
    pprof_free(p);
    if (rc == 0)
        pt->stored = true;
    return rc;
}

static void *producer(void *arg)
{
    (void)arg;
    for (;;) {
        size_t i = atomic_fetch_add(&W.next, 1);
        if (i >= W.n_items)
            return NULL;
        firn_err err = {0};
        int rc;
        while ((rc = append_point(W.db, &W.t[W.items[i].target], W.items[i].k, &err)) ==
               FIRN_EBUSY)
            ;
        if (rc) {
            fprintf(stderr, "append: %s\n", err.msg);
            atomic_store(&W.failed, 1);
            return NULL;
        }
    }
}

/* Appends the items from THREADS threads (so commits hold several, in no
 * fixed order). */
static void append_all(void)
{
    atomic_store(&W.next, 0);
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, producer, NULL), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&W.failed), 0);
}

/* The points appended only after retention ran. */
static bool late(int t, size_t k)
{
    return t < 3 && k >= 150 && k < 450 && k % 7 == 3;
}

/* The points of every target: one per 10 s with a jittered time, duration
 * and period; the append order is shuffled locally, with one point in ten
 * moved far (late). */
static void make_world(void)
{
    memset(&W, 0, sizeof W);
    W.base = (int64_t)time(NULL) * 1000 - 3 * 3600 * 1000;
    W.base -= W.base % STEP_MS;
    W.items = calloc(TARGETS * POINTS, sizeof *W.items);
    for (int t = 0; t < TARGETS; t++) {
        snprintf(W.t[t].instance, sizeof W.t[t].instance, "i%d", t);
        W.t[t].job = t % 2 ? "b" : "a";
        W.t[t].n = t == 3 ? STALE_AT : POINTS;
        for (size_t k = 0; k < W.t[t].n; k++) {
            struct point *pt = &W.t[t].p[k];
            pt->ts = W.base + (int64_t)k * STEP_MS + (int64_t)(next_rand() % 1000);
            pt->duration = 10000000000LL + (int64_t)(next_rand() % 100000) - 50000;
            pt->period = 10000000 + (int64_t)(next_rand() % 3);
            if (!late(t, k))
                W.items[W.n_items++] = (struct item){t, k};
        }
    }
    for (size_t i = 0; i + 1 < W.n_items; i++) {
        size_t j = i + next_rand() % (next_rand() % 10 == 0 ? W.n_items - i : 8 < W.n_items - i ? 8 : W.n_items - i);
        struct item tmp = W.items[i];
        W.items[i] = W.items[j];
        W.items[j] = tmp;
    }
}

static void options(tsdb_options *o, const char *dir)
{
    tsdb_options_default(o);
    o->path = dir;
    o->retention_ms = 0;
    o->no_rollups = true;
}

static tsdb *open_ok(const tsdb_options *o)
{
    firn_err err = {0};
    tsdb *db = tsdb_open(o, &err);
    if (!db)
        fail_msg("tsdb_open %s: %s", o->path, err.msg);
    return db;
}

struct got {
    struct point p[POINTS];
    size_t n;
};

static int collect(void *ctx, const tsdb_block *b)
{
    struct got *g = ctx;
    assert_true(g->n < POINTS);
    g->p[g->n++] = (struct point){.ts = b->timestamp_ms,
                                  .duration = b->duration_nanos,
                                  .period = b->period,
                                  .total = {b->total, 0}};
    return 0;
}

/* tsdb_scan_totals's batches, as points (total in total[0]). */
static int collect_totals(void *ctx, const int64_t *ts, const int64_t *totals, size_t n)
{
    struct got *g = ctx;
    assert_true(n > 0 && g->n + n <= POINTS);
    for (size_t i = 0; i < n; i++)
        g->p[g->n++] = (struct point){.ts = ts[i], .total = {totals[i], 0}};
    return 0;
}

static uint64_t series_id(tsdb_reader *r, const char *type, const char *instance, bool *found)
{
    firn_matcher m[2];
    firn_err err = {0};
    assert_int_equal(firn_matcher_init(&m[0], FIRN_MATCH_EQ, "__name__", type, &err), 0);
    assert_int_equal(firn_matcher_init(&m[1], FIRN_MATCH_EQ, "instance", instance, &err), 0);
    tsdb_series_set set;
    assert_int_equal(tsdb_select(r, m, 2, INT64_MIN, INT64_MAX, &set, &err), 0);
    assert_true(set.n <= 1);
    *found = set.n == 1;
    uint64_t id = set.n ? set.series[0].id : 0;
    tsdb_series_set_free(&set);
    firn_matcher_destroy(&m[0]);
    firn_matcher_destroy(&m[1]);
    return id;
}

static void scan_ok(tsdb_reader *r, uint64_t id, int64_t from, int64_t to, unsigned flags,
                    struct got *g)
{
    firn_err err = {0};
    g->n = 0;
    if (tsdb_scan(r, id, from, to, flags, collect, g, &err) < 0)
        fail_msg("scan: %s", err.msg);
}

/* Every target's totals in random windows: chunks (per point and in
 * batches), raw blocks and the kept points agree; points before keep_from
 * (retention) are gone. */
static void check_scans(tsdb *db, int64_t keep_from)
{
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(db, &err);
    assert_non_null(r);
    static struct got chunked, raw, bulk;
    for (int t = 0; t < TARGETS; t++) {
        for (int c = 0; c < 2; c++) {
            bool found;
            uint64_t id = series_id(r, c ? COUNT_TYPE : CPU_TYPE, W.t[t].instance, &found);
            size_t live = 0;
            for (size_t k = 0; k < W.t[t].n; k++)
                live += W.t[t].p[k].stored && W.t[t].p[k].ts >= keep_from;
            if (!found) {
                assert_int_equal(live, 0);
                continue;
            }
            for (int w = 0; w < 40; w++) {
                int64_t from, to;
                if (w == 0) {
                    from = INT64_MIN;
                    to = INT64_MAX;
                } else {
                    size_t a = next_rand() % W.t[t].n, b = next_rand() % W.t[t].n;
                    from = W.t[t].p[a < b ? a : b].ts - (w % 3 == 1);
                    to = W.t[t].p[a < b ? b : a].ts + (w % 4 == 1);
                }
                scan_ok(r, id, from, to, TSDB_SCAN_TOTALS, &chunked);
                scan_ok(r, id, from, to, 0, &raw);
                assert_int_equal(chunked.n, raw.n);
                bulk.n = 0;
                assert_int_equal(tsdb_scan_totals(r, id, from, to, collect_totals, &bulk, &err),
                                 0);
                assert_int_equal(bulk.n, raw.n);
                for (size_t i = 0; i < bulk.n; i++) {
                    assert_int_equal(bulk.p[i].ts, raw.p[i].ts);
                    assert_int_equal(bulk.p[i].total[0], raw.p[i].total[0]);
                }
                size_t n = 0;
                for (size_t k = 0; k < W.t[t].n; k++) {
                    const struct point *want = &W.t[t].p[k];
                    if (!want->stored || want->ts < keep_from || want->ts < from || want->ts > to)
                        continue;
                    assert_true(n < chunked.n);
                    assert_int_equal(chunked.p[n].ts, want->ts);
                    assert_int_equal(chunked.p[n].duration, want->duration);
                    assert_int_equal(chunked.p[n].period, want->period);
                    assert_int_equal(chunked.p[n].total[0], want->total[c]);
                    assert_memory_equal(&chunked.p[n], &raw.p[n], sizeof raw.p[n]);
                    n++;
                }
                assert_int_equal(n, chunked.n);
            }
        }
    }
    tsdb_reader_close(r);
}

static bool same_double(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0 || (a == b);
}

/* q evaluated series by series equals (q) * 1, evaluated step by step. */
static void check_query(tsdb *db, const char *text, int64_t start, int64_t end, int64_t step,
                        bool want_points)
{
    char stepwise[512];
    snprintf(stepwise, sizeof stepwise, "(%s) * 1", text);
    pql_query q1, q2;
    firn_err err = {0};
    if (pql_parse(text, &q1, &err) < 0 || pql_parse(stepwise, &q2, &err) < 0)
        fail_msg("parse %s: %s", text, err.msg);
    tsdb_reader *r = tsdb_reader_open(db, &err);
    assert_non_null(r);
    pql_result a, b;
    if (pql_eval_range(r, &q1, start, end, step, NULL, &a, &err) < 0 ||
        pql_eval_range(r, &q2, start, end, step, NULL, &b, &err) < 0)
        fail_msg("eval %s: %s", text, err.msg);
    assert_int_equal(a.n_series, b.n_series);
    size_t points = 0;
    for (size_t i = 0; i < a.n_series; i++) {
        assert_int_equal(a.series[i].n_labels, b.series[i].n_labels);
        for (size_t l = 0; l < a.series[i].n_labels; l++) {
            assert_string_equal(a.series[i].labels[l].name, b.series[i].labels[l].name);
            assert_string_equal(a.series[i].labels[l].value, b.series[i].labels[l].value);
        }
        assert_int_equal(a.series[i].n_points, b.series[i].n_points);
        for (size_t k = 0; k < a.series[i].n_points; k++) {
            assert_int_equal(a.series[i].points[k].t_ms, b.series[i].points[k].t_ms);
            if (!same_double(a.series[i].points[k].v, b.series[i].points[k].v))
                fail_msg("%s: series %zu at %lld: %.17g by series, %.17g by step", text, i,
                         (long long)a.series[i].points[k].t_ms, a.series[i].points[k].v,
                         b.series[i].points[k].v);
        }
        points += a.series[i].n_points;
    }
    if (want_points)
        assert_true(points > 0);
    pql_result_free(&a);
    pql_result_free(&b);
    tsdb_reader_close(r);
    pql_query_free(&q1);
    pql_query_free(&q2);
}

static void check_queries(tsdb *db)
{
    static const char *const queries[] = {
        "sum by (job) (rate(" CPU_TYPE "[1m]))",
        "sum by (job) (rate(" COUNT_TYPE "[1m]))",
        "avg by (job) (increase(" COUNT_TYPE "[5m]))",
        "max(max_over_time(" CPU_TYPE "[2m]))",
        "min by (instance) (min_over_time(" COUNT_TYPE "[90s]))",
        "count without (instance) (count_over_time(" CPU_TYPE "[1m]))",
        "sum(sum_over_time(" COUNT_TYPE "[3m]))",
        "avg(avg_over_time(" CPU_TYPE "[1m]))",
        "sum by (job) (rate(" CPU_TYPE "[1m] offset 5m))",
        "sum without (job, instance) ((rate({__name__=~\"process_cpu:.*\"}[2m])))",
        "sum by (job) (rate(" CPU_TYPE "{__function__=\"f1\"}[1m]))",
    };
    int64_t start = W.base - 5 * 60000, end = W.base + (int64_t)POINTS * STEP_MS + 60000;
    for (size_t i = 0; i < sizeof queries / sizeof *queries; i++) {
        check_query(db, queries[i], start, end, STEP_MS, true);
        check_query(db, queries[i], start + 1234, end, 37000, true);
    }
    /* no series at all, and a range before every point */
    check_query(db, "sum(rate(nothing_here[1m]))", start, end, STEP_MS, false);
    check_query(db, queries[0], W.base - 3600000, W.base - 1800000, STEP_MS, false);
}

static void test_chunks_match_raw(void **state)
{
    const char *dir = *state;
    make_world();
    tsdb_options o;
    options(&o, dir);
    W.db = open_ok(&o);
    append_all();
    check_scans(W.db, INT64_MIN);
    check_queries(W.db);

    /* retention: everything before the 100th point of the series goes,
     * target 3 (stale after point 90) with it; the cutoff lies 5 s from
     * the points on either side, so the background pass that opening
     * starts (a few ms later) deletes the same */
    int64_t now = (int64_t)time(NULL) * 1000;
    int64_t cutoff = W.base + 99 * STEP_MS + 5000;
    tsdb_close(W.db);
    o.retention_ms = now - cutoff;
    o.retention_interval_ms = 3600 * 1000;
    W.db = open_ok(&o);
    firn_err err = {0};
    uint64_t deleted = 0;
    assert_int_equal(tsdb_retention_run(W.db, now, &deleted, &err), 0);
    check_scans(W.db, cutoff);
    bool found;
    tsdb_reader *r = tsdb_reader_open(W.db, &err);
    series_id(r, CPU_TYPE, "i3", &found);
    assert_false(found);
    tsdb_reader_close(r);
    check_queries(W.db);

    /* late points after retention, into the middle of full chunks */
    W.n_items = 0;
    for (int t = 0; t < TARGETS; t++)
        for (size_t k = 0; k < W.t[t].n; k++)
            if (late(t, k))
                W.items[W.n_items++] = (struct item){t, k};
    append_all();
    check_scans(W.db, cutoff);
    check_queries(W.db);
    tsdb_close(W.db);
    free(W.items);
}

/* A schema 4 store (no chunks): read-only opens read its totals; the
 * first writable open builds the chunks and records schema 5. */
static void test_chunks_upgrade(void **state)
{
    const char *dir = *state;
    make_world();
    W.n_items = 0;
    for (int t = 0; t < TARGETS; t++)
        for (size_t k = 0; k < W.t[t].n; k += 2)
            W.items[W.n_items++] = (struct item){t, k};
    tsdb_options o;
    options(&o, dir);
    W.db = open_ok(&o);
    append_all();
    tsdb_close(W.db);

    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "chunks", 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    uint32_t ver = 4;
    MDB_val k = {strlen("schema_version"), "schema_version"}, v = {sizeof ver, &ver};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    o.read_only = true;
    W.db = open_ok(&o);
    check_scans(W.db, INT64_MIN);
    tsdb_close(W.db);
    o.read_only = false;
    W.db = open_ok(&o);   /* upgrades */
    check_scans(W.db, INT64_MIN);
    check_queries(W.db);
    /* the odd points, late, into the built chunks */
    W.n_items = 0;
    for (int t = 0; t < TARGETS; t++)
        for (size_t k2 = 1; k2 < W.t[t].n; k2 += 2)
            W.items[W.n_items++] = (struct item){t, k2};
    append_all();
    check_scans(W.db, INT64_MIN);
    tsdb_close(W.db);

    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    memcpy(&ver, v.mv_data, sizeof ver);
    assert_int_equal(ver, TSDB_SCHEMA_VERSION);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    free(W.items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_chunks_match_raw, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_chunks_upgrade, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
