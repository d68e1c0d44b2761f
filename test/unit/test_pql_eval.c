/* test_pql_eval.c -- metric expressions evaluated over a real store.
 *
 * The store holds synthetic CPU profiles with known values: every profile
 * of target (job, instance) = (j, i) at step k has two stacks,
 *   main;encoding/json.Marshal = JSON(j, i, k)  and  main;work = WORK(j, i, k),
 * 10 s apart from T0.  Expected results are computed from those formulas,
 * never copied from the code under test.  A fixture is stored too, to tie
 * values to pprof totals.
 */
#include <math.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ftw.h>
#include <cmocka.h>

#include "fixtures.h"

#include "promql-like/pql.h"

#define T0 1700000000000LL
#define STEPS 12                    /* profiles per series, 10 s apart */
#define CPU "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"
#define GOR "goroutine:goroutine:count:goroutine:count"

static const char *JOBS[] = {"api", "db"};
static const char *INSTANCES[] = {"a:1", "b:1", "c:1"};

static int64_t json_value(int j, int i, int k)
{
    return (int64_t)(j + 1) * 1000 + (i + 1) * 100 + k;
}

static int64_t work_value(int j, int i, int k)
{
    return (int64_t)(j + 1) * 10000 + (i + 1) * 10 + 2 * k;
}

/* A cumulative (non-delta) counter for rate/increase on other types. */
static int64_t counter_value(int k)
{
    return 100 + 50 * k;
}

static pprof_profile *make_profile(const char *type, const char *unit, int64_t json, int64_t work)
{
    pprof_builder *b = pprof_builder_new(1);
    assert_non_null(b);
    pprof_builder_sample_type(b, 0, type, unit);
    pprof_builder_period(b, type, unit, 10000000);
    const char *names[] = {"main", "encoding/json.Marshal", "main.work"};
    uint32_t loc[3];
    for (int i = 0; i < 3; i++) {
        pprof_function f = {.name = pprof_builder_string(b, names[i], strlen(names[i]))};
        uint32_t fi = pprof_builder_function(b, &f);
        pprof_line ln = {.function = fi, .line = 10 + i};
        pprof_location l = {.mapping = PPROF_NONE, .address = 0x1000 + (uint64_t)i,
                            .lines = &ln, .n_lines = 1};
        loc[i] = pprof_builder_location(b, &l);
    }
    uint32_t s1[2] = {loc[1], loc[0]}, s2[2] = {loc[2], loc[0]};   /* leaf first */
    assert_int_equal(pprof_builder_sample(b, s1, 2, &json, NULL, 0), 0);
    assert_int_equal(pprof_builder_sample(b, s2, 2, &work, NULL, 0), 0);
    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    assert_non_null(p);
    return p;
}

struct fixture {
    char dir[64];
    tsdb *db;
    tsdb_reader *r;
};

static void append(tsdb *db, const char *job, const char *instance, const char *name, bool delta,
                   pprof_profile *p, int64_t ts)
{
    firn_label labels[2] = {{"instance", instance}, {"job", job}};
    tsdb_append_req req = {.labels = labels, .n_labels = 2, .profile_name = name,
                           .delta = delta, .profile = p, .timestamp_ms = ts};
    firn_err err = {0};
    int rc = tsdb_append(db, &req, &err);
    if (rc)
        fail_msg("append: %s", err.msg);
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    strcpy(f->dir, "/tmp/firn-test-pql-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = f->dir;
    o.retention_ms = 0;
    firn_err err = {0};
    f->db = tsdb_open(&o, &err);
    assert_non_null(f->db);
    for (int k = 0; k < STEPS; k++)
        for (int j = 0; j < 2; j++)
            for (int i = 0; i < 3; i++) {
                pprof_profile *p = make_profile("cpu", "nanoseconds", json_value(j, i, k),
                                                work_value(j, i, k));
                append(f->db, JOBS[j], INSTANCES[i], "process_cpu", true, p, T0 + k * 10000);
                pprof_free(p);
            }
    for (int k = 0; k < STEPS; k++) {
        pprof_profile *p = make_profile("goroutine", "count", counter_value(k), 0);
        append(f->db, "api", "a:1", "goroutine", false, p, T0 + k * 10000);
        pprof_free(p);
    }
    f->r = tsdb_reader_open(f->db, &err);
    assert_non_null(f->r);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    tsdb_reader_close(f->r);
    tsdb_close(f->db);
    remove_tree(f->dir);
    free(f);
    return 0;
}

/* Evaluates text at t; fails the test on error. */
static void instant(struct fixture *f, const char *text, int64_t t, pql_result *out)
{
    pql_query q;
    firn_err err = {0};
    if (pql_parse(text, &q, &err) < 0)
        fail_msg("parse %s: %s", text, err.msg);
    int rc = pql_eval_instant(f->r, &q, t, NULL, out, &err);
    pql_query_free(&q);
    if (rc)
        fail_msg("eval %s: %s", text, err.msg);
}

static int eval_error(struct fixture *f, const char *text, int64_t t, firn_err *err)
{
    pql_query q;
    if (pql_parse(text, &q, err) < 0)
        fail_msg("parse %s: %s", text, err->msg);
    pql_result res;
    int rc = pql_eval_instant(f->r, &q, t, NULL, &res, err);
    pql_query_free(&q);
    if (rc == 0)
        pql_result_free(&res);
    return rc;
}

static const char *label(const pql_series *s, const char *name)
{
    return firn_labels_get(s->labels, s->n_labels, name);
}

/* The value of the series whose labels include all the given pairs. */
static double value_of(const pql_result *res, const char *k1, const char *v1, const char *k2,
                       const char *v2)
{
    for (size_t i = 0; i < res->n_series; i++) {
        const char *a = label(&res->series[i], k1);
        const char *b = k2 ? label(&res->series[i], k2) : NULL;
        if (a && strcmp(a, v1) == 0 && (!k2 || (b && strcmp(b, v2) == 0)))
            return res->series[i].points[res->series[i].n_points - 1].v;
    }
    fail_msg("no series %s=%s %s=%s", k1, v1, k2 ? k2 : "", v2 ? v2 : "");
    return NAN;
}

static void test_scalars(void **state)
{
    struct fixture *f = *state;
    pql_result res;
    instant(f, "1+1", T0, &res);   /* Grafana's health check */
    assert_int_equal(res.type, PQL_TYPE_SCALAR);
    assert_true(res.scalar == 2.0);
    pql_result_free(&res);
    instant(f, "2 * (3 - 1) / 4", T0, &res);
    assert_true(res.scalar == 1.0);
    pql_result_free(&res);
    instant(f, "3 > bool 2", T0, &res);
    assert_true(res.scalar == 1.0);
    pql_result_free(&res);
    instant(f, "-(1 - 3)", T0, &res);
    assert_true(res.scalar == 2.0);
    pql_result_free(&res);
}

/* time() is the evaluation time in seconds; vector(s) one sample without
 * labels (Prometheus's functions; the values by hand). */
static void test_vector_and_time(void **state)
{
    struct fixture *f = *state;
    pql_result res;
    instant(f, "time()", T0 + 250, &res);
    assert_int_equal(res.type, PQL_TYPE_SCALAR);
    assert_true(res.scalar == 1700000000.25);
    pql_result_free(&res);
    instant(f, "vector(time() - 1700000000) * 4", T0 + 250, &res);
    assert_int_equal(res.type, PQL_TYPE_VECTOR);
    assert_int_equal(res.n_series, 1);
    assert_int_equal(res.series[0].n_labels, 0);
    assert_true(res.series[0].points[0].v == 1.0);
    pql_result_free(&res);
    instant(f, "count(vector(7)) + sum(vector(2))", T0, &res);
    assert_int_equal(res.n_series, 1);
    assert_true(res.series[0].points[0].v == 3.0);
    pql_result_free(&res);
}

static void test_selector_and_lookback(void **state)
{
    struct fixture *f = *state;
    pql_result res;
    int k = 5;
    int64_t t = T0 + k * 10000 + 3000;   /* between two profiles: the latest one counts */
    instant(f, CPU "{job=\"api\"}", t, &res);
    assert_int_equal(res.type, PQL_TYPE_VECTOR);
    assert_int_equal(res.n_series, 3);
    for (int i = 0; i < 3; i++)
        assert_true(value_of(&res, "instance", INSTANCES[i], NULL, NULL) ==
                    (double)(json_value(0, i, k) + work_value(0, i, k)));
    assert_string_equal(label(&res.series[0], "__name__"), CPU);
    pql_result_free(&res);
    /* 5 minutes after the last profile nothing is left; just before, it is */
    int64_t last = T0 + (STEPS - 1) * 10000;
    instant(f, CPU, last + 5 * 60 * 1000, &res);
    assert_int_equal(res.n_series, 0);
    pql_result_free(&res);
    instant(f, CPU, last + 5 * 60 * 1000 - 1, &res);
    assert_int_equal(res.n_series, 6);
    pql_result_free(&res);
    /* offset looks back */
    instant(f, CPU "{job=\"db\", instance=\"b:1\"} offset 20s", T0 + 50000, &res);
    assert_int_equal(res.n_series, 1);
    assert_true(res.series[0].points[0].v == (double)(json_value(1, 1, 3) + work_value(1, 1, 3)));
    pql_result_free(&res);
}

static void test_stack_filter(void **state)
{
    struct fixture *f = *state;
    pql_result res;
    int k = 7;
    int64_t t = T0 + k * 10000;
    instant(f, CPU "{job=\"api\", instance=\"a:1\", __function__=~\"encoding/json\\\\..*\"}", t,
            &res);
    assert_int_equal(res.n_series, 1);
    assert_true(res.series[0].points[0].v == (double)json_value(0, 0, k));
    pql_result_free(&res);
    instant(f, CPU "{job=\"api\", instance=\"a:1\", __function__!~\"encoding/json\\\\..*\"}", t,
            &res);
    assert_true(res.series[0].points[0].v == (double)work_value(0, 0, k));
    pql_result_free(&res);
    instant(f, CPU "{job=\"api\", instance=\"a:1\", __function__=\"main\"}", t, &res);
    assert_true(res.series[0].points[0].v == (double)(json_value(0, 0, k) + work_value(0, 0, k)));
    pql_result_free(&res);
    /* the share of CPU in JSON, one expression */
    instant(f,
            "sum(" CPU "{__function__=~\"encoding/json.*\"}) / sum(" CPU ")", t, &res);
    double json = 0, all = 0;
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 3; i++) {
            json += (double)json_value(j, i, k);
            all += (double)(json_value(j, i, k) + work_value(j, i, k));
        }
    assert_int_equal(res.n_series, 1);
    assert_int_equal(res.series[0].n_labels, 0);
    assert_true(fabs(res.series[0].points[0].v - json / all) < 1e-12);
    pql_result_free(&res);
}

static void test_aggregations(void **state)
{
    struct fixture *f = *state;
    pql_result res;
    int k = 4;
    int64_t t = T0 + k * 10000;
    double v[2][3];
    for (int j = 0; j < 2; j++)
        for (int i = 0; i < 3; i++)
            v[j][i] = (double)(json_value(j, i, k) + work_value(j, i, k));
    instant(f, "sum by (job) (" CPU ")", t, &res);
    assert_int_equal(res.n_series, 2);
    for (int j = 0; j < 2; j++) {
        assert_true(value_of(&res, "job", JOBS[j], NULL, NULL) == v[j][0] + v[j][1] + v[j][2]);
        assert_null(label(&res.series[j], "__name__"));
        assert_int_equal(res.series[j].n_labels, 1);
    }
    pql_result_free(&res);
    instant(f, "sum without (instance) (" CPU ")", t, &res);
    assert_int_equal(res.n_series, 2);
    assert_null(label(&res.series[0], "__name__"));
    pql_result_free(&res);
    instant(f, "avg(" CPU ") by (job)", t, &res);
    assert_true(fabs(value_of(&res, "job", "db", NULL, NULL) - (v[1][0] + v[1][1] + v[1][2]) / 3) <
                1e-9);
    pql_result_free(&res);
    instant(f, "min by (job) (" CPU ")", t, &res);
    assert_true(value_of(&res, "job", "api", NULL, NULL) == v[0][0]);
    pql_result_free(&res);
    instant(f, "max(" CPU ")", t, &res);
    assert_int_equal(res.n_series, 1);
    assert_true(res.series[0].points[0].v == v[1][2]);
    pql_result_free(&res);
    instant(f, "count(" CPU ")", t, &res);
    assert_true(res.series[0].points[0].v == 6);
    pql_result_free(&res);
    instant(f, "topk(2, " CPU ")", t, &res);
    assert_int_equal(res.n_series, 2);   /* the two largest, labels kept */
    assert_true(value_of(&res, "job", "db", "instance", "c:1") == v[1][2]);
    assert_true(value_of(&res, "job", "db", "instance", "b:1") == v[1][1]);
    assert_non_null(label(&res.series[0], "__name__"));
    pql_result_free(&res);
    instant(f, "bottomk by (job) (1, " CPU ")", t, &res);
    assert_int_equal(res.n_series, 2);
    assert_true(value_of(&res, "job", "api", NULL, NULL) == v[0][0]);
    assert_true(value_of(&res, "job", "db", NULL, NULL) == v[1][0]);
    pql_result_free(&res);
}

static void test_range_functions(void **state)
{
    struct fixture *f = *state;
    pql_result res;
    int k = 9;
    int64_t t = T0 + k * 10000;
    /* (t - 1m, t] holds the profiles k-5..k */
    double sum = 0, mx = -1, mn = 1e18;
    for (int q = k - 5; q <= k; q++) {
        double x = (double)(json_value(0, 1, q) + work_value(0, 1, q));
        sum += x;
        mx = x > mx ? x : mx;
        mn = x < mn ? x : mn;
    }
    const char *sel = CPU "{job=\"api\", instance=\"b:1\"}[1m]";
    char text[512];
    snprintf(text, sizeof text, "increase(%s)", sel);
    instant(f, text, t, &res);
    assert_true(res.series[0].points[0].v == sum);
    assert_null(label(&res.series[0], "__name__"));
    pql_result_free(&res);
    snprintf(text, sizeof text, "rate(%s)", sel);
    instant(f, text, t, &res);
    assert_true(fabs(res.series[0].points[0].v - sum / 60.0) < 1e-9);
    pql_result_free(&res);
    snprintf(text, sizeof text, "sum_over_time(%s)", sel);
    instant(f, text, t, &res);
    assert_true(res.series[0].points[0].v == sum);
    pql_result_free(&res);
    snprintf(text, sizeof text, "avg_over_time(%s)", sel);
    instant(f, text, t, &res);
    assert_true(fabs(res.series[0].points[0].v - sum / 6) < 1e-9);
    pql_result_free(&res);
    snprintf(text, sizeof text, "max_over_time(%s)", sel);
    instant(f, text, t, &res);
    assert_true(res.series[0].points[0].v == mx);
    pql_result_free(&res);
    snprintf(text, sizeof text, "min_over_time(%s)", sel);
    instant(f, text, t, &res);
    assert_true(res.series[0].points[0].v == mn);
    pql_result_free(&res);
    snprintf(text, sizeof text, "count_over_time(%s)", sel);
    instant(f, text, t, &res);
    assert_true(res.series[0].points[0].v == 6);
    pql_result_free(&res);
    /* a non-delta type follows Prometheus's counter rate: the counter grows
     * 50 per 10 s, and the samples cover the range evenly, so the
     * extrapolated increase over 1m is 50 * 6 = 300 and the rate 5/s */
    instant(f, "increase(" GOR "[1m])", t + 5000, &res);
    assert_int_equal(res.n_series, 1);
    double first = (double)counter_value(k - 5), last = (double)counter_value(k);
    double sampled = 50.0, to_start = 5.0, to_end = 5.0, avg = 10.0;
    double interval = sampled + (to_start < avg * 1.1 ? to_start : avg / 2) +
                      (to_end < avg * 1.1 ? to_end : avg / 2);
    double expect = (last - first) * interval / sampled;
    assert_true(fabs(res.series[0].points[0].v - expect) < 1e-9);
    pql_result_free(&res);
    instant(f, "rate(" GOR "[1m])", t + 5000, &res);
    assert_true(fabs(res.series[0].points[0].v - expect / 60.0) < 1e-9);
    pql_result_free(&res);
    /* a range selector alone: its raw points */
    instant(f, sel, t, &res);
    assert_int_equal(res.type, PQL_TYPE_MATRIX);
    assert_int_equal(res.series[0].n_points, 6);
    assert_true(res.series[0].points[0].t_ms == T0 + (k - 5) * 10000);
    pql_result_free(&res);
}

static void test_comparisons_and_matching(void **state)
{
    struct fixture *f = *state;
    pql_result res;
    int k = 2;
    int64_t t = T0 + k * 10000;
    /* db's values are all above 20000, api's below */
    instant(f, CPU " > 20000", t, &res);
    assert_int_equal(res.n_series, 3);
    for (size_t i = 0; i < res.n_series; i++) {
        assert_string_equal(label(&res.series[i], "job"), "db");
        assert_non_null(label(&res.series[i], "__name__"));   /* filters keep the name */
    }
    pql_result_free(&res);
    instant(f, CPU " > bool 20000", t, &res);
    assert_int_equal(res.n_series, 6);
    assert_true(value_of(&res, "job", "api", "instance", "a:1") == 0);
    assert_true(value_of(&res, "job", "db", "instance", "a:1") == 1);
    assert_null(label(&res.series[0], "__name__"));
    pql_result_free(&res);
    instant(f, "20000 < " CPU, t, &res);   /* scalar on the left keeps the vector's value */
    assert_int_equal(res.n_series, 3);
    assert_true(value_of(&res, "job", "db", "instance", "c:1") ==
                (double)(json_value(1, 2, k) + work_value(1, 2, k)));
    pql_result_free(&res);
    /* vector / vector, one-to-one on all labels but __name__ */
    instant(f,
            CPU "{__function__=\"encoding/json.Marshal\"} / " CPU, t, &res);
    assert_int_equal(res.n_series, 6);
    assert_true(fabs(value_of(&res, "job", "api", "instance", "b:1") -
                     (double)json_value(0, 1, k) /
                         (double)(json_value(0, 1, k) + work_value(0, 1, k))) < 1e-12);
    pql_result_free(&res);
    /* on (job): one side aggregated by job */
    instant(f, "sum by (job) (" CPU ") - on (job) max by (job, __name__) (" CPU ")", t, &res);
    assert_int_equal(res.n_series, 2);
    assert_int_equal(res.series[0].n_labels, 1);
    pql_result_free(&res);
    instant(f, CPU " == " CPU, t, &res);
    assert_int_equal(res.n_series, 6);
    pql_result_free(&res);
    /* many-to-many is refused, as in Prometheus */
    firn_err err = {0};
    assert_int_not_equal(eval_error(f, CPU " + on (job) " CPU, t, &err), 0);
    assert_non_null(strstr(err.msg, "many-to-many"));
    /* two series left with one label set once __name__ is dropped */
    assert_int_not_equal(eval_error(f, "rate({job=\"api\", instance=\"a:1\"}[1m])", t, &err), 0);
    assert_non_null(strstr(err.msg, "same labelset"));
}

static void test_range_query(void **state)
{
    struct fixture *f = *state;
    pql_query q;
    firn_err err = {0};
    assert_int_equal(pql_parse("sum by (job) (" CPU ")", &q, &err), 0);
    pql_result res;
    assert_int_equal(pql_eval_range(f->r, &q, T0, T0 + 110000, 10000, NULL, &res, &err), 0);
    pql_query_free(&q);
    assert_int_equal(res.type, PQL_TYPE_MATRIX);
    assert_int_equal(res.n_series, 2);
    assert_string_equal(label(&res.series[0], "job"), "api");   /* sorted by labels */
    for (int j = 0; j < 2; j++) {
        assert_int_equal(res.series[j].n_points, STEPS);
        for (int k = 0; k < STEPS; k++) {
            double want = 0;
            for (int i = 0; i < 3; i++)
                want += (double)(json_value(j, i, k) + work_value(j, i, k));
            assert_true(res.series[j].points[k].t_ms == T0 + k * 10000);
            assert_true(res.series[j].points[k].v == want);
        }
    }
    pql_result_free(&res);
    /* a scalar over a range is one series without labels */
    assert_int_equal(pql_parse("1+1", &q, &err), 0);
    assert_int_equal(pql_eval_range(f->r, &q, T0, T0 + 60000, 15000, NULL, &res, &err), 0);
    pql_query_free(&q);
    assert_int_equal(res.n_series, 1);
    assert_int_equal(res.series[0].n_labels, 0);
    assert_int_equal(res.series[0].n_points, 5);
    pql_result_free(&res);
    /* steps before the data: points only where there is data */
    assert_int_equal(pql_parse(CPU "{job=\"api\", instance=\"a:1\"}", &q, &err), 0);
    assert_int_equal(pql_eval_range(f->r, &q, T0 - 30000, T0 + 20000, 10000, NULL, &res, &err),
                     0);
    pql_query_free(&q);
    assert_int_equal(res.n_series, 1);
    assert_int_equal(res.series[0].n_points, 3);
    pql_result_free(&res);
    /* a cap on loaded points */
    assert_int_equal(pql_parse(CPU, &q, &err), 0);
    pql_eval_options o = {.max_samples = 10};
    assert_int_equal(pql_eval_range(f->r, &q, T0, T0 + 110000, 10000, &o, &res, &err),
                     FIRN_ETOOBIG);
    pql_query_free(&q);
}

static void test_fixture_totals(void **state)
{
    struct fixture *f = *state;
    pprof_profile *p = decode_fixture("pyro-pkg_pprof_testdata_go.cpu.labels.pprof");
    firn_err err = {0};
    int64_t totals[2];
    pprof_totals(p, totals);
    tsdb_reader_close(f->r);
    append(f->db, "fixture", "x:1", "process_cpu", true, p, T0);
    pprof_free(p);
    f->r = tsdb_reader_open(f->db, &err);
    assert_non_null(f->r);
    pql_result res;
    instant(f, "{job=\"fixture\"}", T0, &res);
    assert_int_equal(res.n_series, 2);
    assert_true(value_of(&res, "__name__", "process_cpu:samples:count:cpu:nanoseconds:delta", NULL,
                         NULL) == (double)totals[0]);
    assert_true(value_of(&res, "__name__", CPU, NULL, NULL) == (double)totals[1]);
    pql_result_free(&res);
}

/* Float series (what recording rules write) read as plain metrics, next to
 * profile types; a stale marker ends a series; stack filters skip them. */
static void test_float_series(void **state)
{
    struct fixture *f = *state;
    firn_err err = {0};
    tsdb_reader_close(f->r);
    firn_label api[] = {{"__name__", "job:share"}, {"job", "api"}};
    firn_label db[] = {{"__name__", "job:share"}, {"job", "db"}};
    tsdb_float_sample s[16];
    size_t n = 0;
    for (int k = 0; k < 6; k++) {
        s[n++] = (tsdb_float_sample){api, 2, T0 + k * 10000, 0.5 * k};
        s[n++] = (tsdb_float_sample){db, 2, T0 + k * 10000, 100.0 + k};
    }
    s[n++] = (tsdb_float_sample){api, 2, T0 + 60000, tsdb_stale_nan()};
    if (tsdb_append_floats(f->db, s, n, NULL, &err) != 0)
        fail_msg("append_floats: %s", err.msg);
    f->r = tsdb_reader_open(f->db, &err);
    assert_non_null(f->r);

    pql_result res;
    instant(f, "job:share", T0 + 35000, &res);
    assert_int_equal(res.n_series, 2);
    assert_true(value_of(&res, "job", "api", NULL, NULL) == 1.5);
    assert_true(value_of(&res, "job", "db", NULL, NULL) == 103.0);
    pql_result_free(&res);
    /* api's stale marker at +60s ends it; db is still within the lookback */
    instant(f, "job:share", T0 + 65000, &res);
    assert_int_equal(res.n_series, 1);
    assert_string_equal(label(&res.series[0], "job"), "db");
    pql_result_free(&res);
    /* range vectors leave the stale marker out */
    instant(f, "count_over_time(job:share{job=\"api\"}[100s])", T0 + 70000, &res);
    assert_int_equal(res.n_series, 1);
    assert_true(res.series[0].points[0].v == 6.0);
    pql_result_free(&res);
    instant(f, "max_over_time(job:share{job=\"api\"}[100s])", T0 + 70000, &res);
    assert_true(res.series[0].points[0].v == 2.5);
    pql_result_free(&res);
    /* with a profile type in one expression */
    int k = 3;
    instant(f, "sum(" CPU "{job=\"api\"}) + sum(job:share{job=\"api\"})", T0 + k * 10000, &res);
    double want = 0.5 * k;
    for (int i = 0; i < 3; i++)
        want += (double)(json_value(0, i, k) + work_value(0, i, k));
    assert_int_equal(res.n_series, 1);
    assert_true(res.series[0].points[0].v == want);
    pql_result_free(&res);
    /* a stack filter selects profile series only */
    instant(f, "job:share{__function__=~\".*\"}", T0 + 35000, &res);
    assert_int_equal(res.n_series, 0);
    pql_result_free(&res);
    /* a range query sees the points step by step */
    pql_query q;
    assert_int_equal(pql_parse("job:share{job=\"api\"}", &q, &err), 0);
    assert_int_equal(pql_eval_range(f->r, &q, T0, T0 + 70000, 10000, NULL, &res, &err), 0);
    pql_query_free(&q);
    assert_int_equal(res.n_series, 1);
    assert_int_equal(res.series[0].n_points, 6);   /* 60s (stale) and 70s have no value */
    assert_true(res.series[0].points[5].v == 2.5);
    pql_result_free(&res);
}

/* One evaluation under a cap: 0 and the series count, or the error code
 * (whose message must then be Prometheus's). */
static int capped(struct fixture *f, const char *text, bool range, int64_t start, int64_t end,
                  int64_t step, size_t cap)
{
    pql_query q;
    pql_result res;
    firn_err err = {0};
    assert_int_equal(pql_parse(text, &q, &err), 0);
    pql_eval_options o = {.max_samples = cap};
    int rc = range ? pql_eval_range(f->r, &q, start, end, step, &o, &res, &err)
                   : pql_eval_instant(f->r, &q, start, &o, &res, &err);
    pql_query_free(&q);
    if (rc == 0) {
        pql_result_free(&res);
        return 0;
    }
    assert_string_equal(err.msg, "query processing would load too many samples into memory "
                                 "in query execution");
    return rc;
}

/* --query.max-samples counts the points loaded and the points of the
 * result (pql.h "query limits"); the counts below come from the fixture's
 * layout: STEPS profiles per series, 10 s apart, 6 series of CPU. */
static void test_samples_cap(void **state)
{
    struct fixture *f = *state;
    /* 1+1 over 5 steps loads nothing: its 5 result points are all it holds */
    assert_int_equal(capped(f, "1+1", true, T0, T0 + 60000, 15000, 5), 0);
    assert_int_equal(capped(f, "1+1", true, T0, T0 + 60000, 15000, 4), FIRN_ETOOBIG);
    /* one series over its 12 steps: 12 points loaded, 12 in the result */
    const char *one = CPU "{job=\"api\", instance=\"a:1\"}";
    int64_t end = T0 + (STEPS - 1) * 10000;
    assert_int_equal(capped(f, one, true, T0, end, 10000, 2 * STEPS), 0);
    assert_int_equal(capped(f, one, true, T0, end, 10000, 2 * STEPS - 1), FIRN_ETOOBIG);
    /* an instant query at the last step: each of the 6 series loads the
     * STEPS profiles in its 5-minute lookback, and answers one point (the
     * job is named: test_fixture_totals adds a series of job "fixture") */
    const char *all = CPU "{job=~\"api|db\"}";
    assert_int_equal(capped(f, all, false, end, end, 0, 6 * STEPS + 6), 0);
    assert_int_equal(capped(f, all, false, end, end, 0, 6 * STEPS + 5), FIRN_ETOOBIG);
    /* a range vector's answer repeats the points it loaded */
    const char *range = CPU "{job=\"api\", instance=\"a:1\"}[1m]";
    /* (end - 60 s, end]: 6 profiles, loaded and answered */
    assert_int_equal(capped(f, range, false, end, end, 0, 12), 0);
    assert_int_equal(capped(f, range, false, end, end, 0, 11), FIRN_ETOOBIG);
}

struct gate_waiter {
    pql_limits *l;
    atomic_bool entered;
};

static void *gate_waiter_run(void *arg)
{
    struct gate_waiter *w = arg;
    pql_limits_enter(w->l);
    atomic_store(&w->entered, true);
    pql_limits_leave(w->l, 0);
    return NULL;
}

/* Polls the gate (bounded) until `waiting` queries wait; false past 10 s. */
static bool waiting_becomes(pql_limits *l, size_t waiting)
{
    for (int i = 0; i < 10000; i++) {
        pql_limits_counts c;
        pql_limits_stats(l, &c);
        if (c.waiting == waiting)
            return true;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* --query.max-concurrency: the query past the limit waits until a slot is
 * given back, then runs. */
static void test_concurrency_gate(void **state)
{
    (void)state;
    pql_limits l;
    firn_err err = {0};
    assert_int_equal(pql_limits_init(&l, 0, 2, &err), 0);
    assert_int_equal(pql_limits_samples(&l), PQL_MAX_SAMPLES_DEFAULT);
    pql_limits_enter(&l);
    pql_limits_enter(&l);
    struct gate_waiter w = {.l = &l};
    atomic_init(&w.entered, false);
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, gate_waiter_run, &w), 0);
    assert_true(waiting_becomes(&l, 1));
    assert_false(atomic_load(&w.entered));   /* the third waits while two run */
    pql_limits_counts c;
    pql_limits_stats(&l, &c);
    assert_int_equal(c.running, 2);
    assert_int_equal(c.waited_total, 1);
    pql_limits_leave(&l, FIRN_ETOOBIG);   /* a slot back: the third runs */
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(atomic_load(&w.entered));
    pql_limits_stats(&l, &c);
    assert_int_equal(c.running, 1);
    assert_int_equal(c.waiting, 0);
    assert_int_equal(c.too_many_samples_total, 1);
    pql_limits_leave(&l, 0);
    /* the metrics say the same */
    firn_buf b = {0};
    pql_limits_metrics_write(&l, &b);
    firn_buf_append(&b, "", 1);
    assert_non_null(strstr(b.data, "\nfirn_engine_queries_waited_total 1\n"));
    assert_non_null(strstr(b.data, "\nfirn_engine_queries_too_many_samples_total 1\n"));
    assert_non_null(strstr(b.data, "\nfirn_engine_queries_concurrent_max 2\n"));
    assert_non_null(strstr(b.data, "\nfirn_engine_queries 0\n"));
    firn_buf_free(&b);
    pql_limits_destroy(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_vector_and_time),
        cmocka_unit_test(test_selector_and_lookback),
        cmocka_unit_test(test_stack_filter),
        cmocka_unit_test(test_aggregations),
        cmocka_unit_test(test_range_functions),
        cmocka_unit_test(test_comparisons_and_matching),
        cmocka_unit_test(test_range_query),
        cmocka_unit_test(test_fixture_totals),
        cmocka_unit_test(test_float_series),
        cmocka_unit_test(test_samples_cap),
        cmocka_unit_test(test_concurrency_gate),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
