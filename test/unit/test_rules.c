/* test_rules.c -- rules/: templates and group evaluation over a real store.
 *
 * Expected template outputs are those Debian's Prometheus 2.42 printed
 * (shared/RULES.md §2.8, observed) and the rows of Prometheus's
 * template_test.go; expected alert states are the tables of Prometheus's
 * rules/alerting_test.go (TestKeepFiringFor, TestAlertingRule) and
 * manager_test.go (TestNotify's resend cadence), re-stated here.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <ftw.h>
#include <cmocka.h>

#include "fixtures.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "discovery/discovery.h"
#include "rules/internal.h"
#include "rules/rules.h"

#define MIN (60 * 1000LL)

/* ---- templates -------------------------------------------------------------- */

static void expands_to(const char *text, double value, const char *want)
{
    firn_label labels[] = {{"__name__", "up"}, {"instance", "a:1"}, {"job", "api"}};
    firn_label ext[] = {{"foo", "bar"}, {"region", "eu"}};
    rules_template_data d = {labels, 3, ext, 2, "http://firn.example:9090", value, NULL, NULL};
    char *got = rules_template_expand_text("__alert_T", text, &d);
    assert_non_null(got);
    if (strcmp(got, want) != 0)
        fail_msg("%s: got \"%s\", want \"%s\"", text, got, want);
    free(got);
}

static void parse_fails(const char *text, const char *want)
{
    firn_err err = {0};
    rules_template *t = rules_template_parse("__alert_T", text, &err);
    if (t) {
        rules_template_free(t);
        fail_msg("%s: parsed, want an error", text);
    }
    if (strcmp(err.msg, want) != 0)
        fail_msg("%s: error \"%s\", want \"%s\"", text, err.msg, want);
}

static void test_templates(void **state)
{
    (void)state;
    expands_to("{{ humanize 1234567.0 }}", 0, "1.235M");
    expands_to("{{ humanize 0.000123 }}", 0, "123u");
    expands_to("{{ humanize 0 }}:{{ humanize 1 }}:{{ humanize 0.12 }}", 0, "0:1:120m");
    expands_to("{{ humanize1024 1048576.0 }}", 0, "1Mi");
    expands_to("{{ humanizeDuration 3725.5 }}", 0, "1h 2m 5s");
    expands_to("{{ humanizeDuration 0 }}|{{ humanizeDuration 1 }}|{{ humanizeDuration 60 }}|"
               "{{ humanizeDuration 3600 }}|{{ humanizeDuration 86400 }}|"
               "{{ humanizeDuration 90000 }}|{{ humanizeDuration -183845 }}|"
               "{{ humanizeDuration 899.99 }}", 0,
               "0s|1s|1m 0s|1h 0m 0s|1d 0h 0m 0s|1d 1h 0m 0s|-2d 3h 4m 5s|14m 59s");
    expands_to("{{ humanizeDuration .1 }}|{{ humanizeDuration .0001 }}|"
               "{{ humanizeDuration .12345 }}|{{ humanizeDuration 60.1 }}|"
               "{{ humanizeDuration 1.2345 }}|{{ humanizeDuration 12.345 }}", 0,
               "100ms|100us|123.5ms|1m 0s|1.234s|12.35s");
    /* Past int64: Go's int64(v) is MinInt64 on amd64, so Prometheus prints
     * its (truncated) parts, each negative (fuzz.template found the UB). */
    expands_to("{{ humanizeDuration 1e42 }}", 0, "-106751991167300d -15h -30m -8s");
    expands_to("{{ humanizePercentage 0.256 }}", 0, "25.6%");
    expands_to("{{ humanizePercentage -0.22222 }}|{{ humanizePercentage 0 }}|"
               "{{ humanizePercentage 0.1234567 }}|{{ humanizePercentage 1.23456 }}", 0,
               "-22.22%|0%|12.35%|123.5%");
    expands_to("{{ humanizeTimestamp 1700000000.0 }}", 0, "2023-11-14 22:13:20 +0000 UTC");
    expands_to("{{ printf \"%.1f\" $value }}", 1, "1.0");
    expands_to("{{ title \"hello world\" }}", 0, "Hello World");
    expands_to("{{ reReplaceAll \"(a+)\" \"<$1>\" \"baaa\" }}", 0, "b<aaa>");
    expands_to("{{ match \"^a\" \"abc\" }}", 0, "true");
    expands_to("{{ toUpper \"aBc\" }}{{ toLower \"XyZ\" }}", 0, "ABCxyz");
    expands_to("{{ stripPort \"host:9090\" }} {{ stripPort \"[::1]:80\" }}", 0, "host ::1");
    /* $value prints as Go's %v of a float64 */
    const double vals[] = {123456, 1e6, 0.0001, 1.234e-05, 1e20, 1e21, 3, -2.5, 0.1,
                           123456.789, 999999, 0.00012345, 1.5e-05, 1.23456789e7, 100, 1e100};
    const char *want[] = {"123456", "1e+06", "0.0001", "1.234e-05", "1e+20", "1e+21", "3",
                          "-2.5", "0.1", "123456.789", "999999", "0.00012345", "1.5e-05",
                          "1.23456789e+07", "100", "1e+100"};
    for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
        expands_to("{{ $value }}", vals[i], want[i]);
    expands_to("{{ $value }}", NAN, "NaN");
    expands_to("{{ $value }}", -INFINITY, "-Inf");
    /* data */
    expands_to("{{ $labels.job }}/{{ $labels.nope }}/{{ .Labels.instance }}", 0, "api//a:1");
    expands_to("There are {{ len $externalLabels }} external Labels, of which foo is "
               "{{ $externalLabels.foo }}.", 0,
               "There are 2 external Labels, of which foo is bar.");
    expands_to("The external URL is {{ $externalURL }}.", 0,
               "The external URL is http://firn.example:9090.");
    expands_to("{{ .Labels }}", 0, "map[__name__:up instance:a:1 job:api]");
    expands_to("{{ if gt $value 1.0 }}big{{ else if eq $value 0.0 }}zero{{ else }}small{{ end }}",
               0, "zero");
    expands_to("{{ if gt $value 1.0 }}big{{ else }}small{{ end }}", 2, "big");
    expands_to("{{- range $k, $v := $labels }}{{ $k }}={{ $v }},{{ end -}}", 0,
               "__name__=up,instance=a:1,job=api,");
    expands_to("a  {{- /* note */ -}}  b", 0, "ab");
    expands_to("{{ with $labels.job }}job {{ . }}{{ end }}", 0, "job api");
    expands_to("{{ \"x\" | printf \"%s-%s\" \"y\" }}", 0, "y-x");
    expands_to("{{ $x := 3 }}{{ $x }}", 0, "3");
    expands_to("{{ and 1 0 }} {{ or 0 \"\" 2 }} {{ not true }}", 0, "0 2 false");
    /* execution errors are text */
    char *got = rules_template_expand_text(
        "__alert_T", "{{ .Foo }}",
        &(rules_template_data){NULL, 0, NULL, 0, "", 0, NULL, NULL});
    assert_non_null(got);
    assert_non_null(strstr(got, "<error expanding template: "));
    free(got);
    /* parse errors: Go's texts, as promtool prints them (RULES.md §1.2) */
    parse_fails("{{ $label.instance }}", "template: __alert_T:1: undefined variable \"$label\"");
    parse_fails("{{$this_is_wrong}}", "template: __alert_T:1: undefined variable \"$this_is_wrong\"");
    parse_fails("{{$labels.quantile * 100}}", "template: __alert_T:1: unexpected \"*\" in operand");
    parse_fails("{{ now }}", "template: __alert_T:1: function \"now\" not defined");
    parse_fails("x {{ \"y\" ", "template: __alert_T:1: unclosed action");
    parse_fails("{{ if }}", "template: __alert_T:1: missing value for if");
    parse_fails("a\n{{ end }}", "template: __alert_T:2: unexpected {{end}}");
    parse_fails("{{ range $i := .Labels }}", "template: __alert_T:1: unexpected EOF");
    firn_err err = {0};
    rules_template *t = rules_template_parse("__alert_T", "{{ $labels.instance }}", &err);
    assert_non_null(t);
    rules_template_free(t);
}

/* A query function for templates: "two" gives two samples, "none" none,
 * anything else fails. */
static int fake_query(void *ctx, const char *expr, firn_arena *a, rules_sample **out, size_t *n,
                      firn_err *err)
{
    (void)ctx;
    *n = 0;
    *out = firn_arena_calloc(a, 3, sizeof **out);
    if (strcmp(expr, "none") == 0)
        return 0;
    if (strcmp(expr, "two") != 0)
        return firn_errf(err, FIRN_EINVAL, "1:1: unknown query %s", expr);
    static firn_label l1[] = {{"__name__", "up"}, {"job", "zeta"}};
    static firn_label l2[] = {{"__name__", "up"}, {"job", "alpha"}};
    (*out)[0] = (rules_sample){l1, 2, 1.5};
    (*out)[1] = (rules_sample){l2, 2, 2};
    *n = 2;
    return 0;
}

static void test_template_query(void **state)
{
    (void)state;
    struct {
        const char *text, *want;
    } T[] = {
        {"{{ query \"two\" | first | value }}", "1.5"},
        {"{{ with query \"two\" }}{{ . | first | label \"job\" }}{{ end }}", "zeta"},
        {"{{ range query \"two\" }}{{ .Labels.job }}={{ .Value }} {{ end }}", "zeta=1.5 alpha=2 "},
        {"{{ range sortByLabel \"job\" (query \"two\") }}{{ .Labels.job }} {{ end }}",
         "alpha zeta "},
        {"{{ with query \"none\" }}some{{ else }}none{{ end }}", "none"},
    };
    rules_template_data d = {.external_url = "", .query = fake_query};
    for (size_t i = 0; i < sizeof T / sizeof *T; i++) {
        char *got = rules_template_expand_text("__alert_Q", T[i].text, &d);
        assert_non_null(got);
        if (strcmp(got, T[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", T[i].text, got, T[i].want);
        free(got);
    }
    char *got = rules_template_expand_text("__alert_Q", "{{ query \"none\" | first }}", &d);
    assert_non_null(strstr(got, "first() called on vector with no elements"));
    free(got);
    got = rules_template_expand_text("__alert_Q", "{{ query \"bad\" }}", &d);
    assert_non_null(strstr(got, "<error expanding template: "));
    assert_non_null(strstr(got, "unknown query bad"));
    free(got);
}

/* ---- evaluation ------------------------------------------------------------ */

struct fx {
    char *dir;
    tsdb *db;
    rules_file *file;
    rules_group_rt *g;
    rules_notification sent[64];
    char sent_names[64][64];
    int64_t sent_ts[64];
    size_t n_sent;
    int64_t now;
};

static void on_send(void *ctx, const rules_notification *a, size_t n)
{
    struct fx *f = ctx;
    for (size_t i = 0; i < n && f->n_sent < 64; i++) {
        f->sent[f->n_sent] = a[i];   /* its pointers die with the call: times only */
        const char *name = firn_labels_get(a[i].labels, a[i].n_labels, "instance");
        snprintf(f->sent_names[f->n_sent], 64, "%s", name ? name : "");
        f->sent_ts[f->n_sent] = f->now;
        f->n_sent++;
    }
}

static void put(struct fx *f, const char *name, const char *inst, int64_t step, const double *v,
                size_t n)
{
    firn_label l[] = {{"__name__", name}, {"instance", inst}, {"severity", "overwrite-me"}};
    tsdb_float_sample s[32];
    assert_true(n <= 32);
    for (size_t i = 0; i < n; i++)
        s[i] = (tsdb_float_sample){l, 3, (int64_t)i * step, v[i]};
    firn_err err = {0};
    if (tsdb_append_floats(f->db, s, n, NULL, &err))
        fail_msg("append: %s", err.msg);
}

static void load(struct fx *f, const char *yaml, int64_t interval)
{
    rules_errors errs = {0};
    firn_err err = {0};
    f->file = rules_file_parse("t.yml", yaml, strlen(yaml), &errs, &err);
    if (!f->file)
        fail_msg("rules: %s", err.msg);
    rules_eval_options o = {.db = f->db, .send = on_send, .send_ctx = f,
                            .external_url = "http://firn:7070/"};
    f->g = rules_group_rt_new(f->file, 0, interval, &o, &err);
    assert_non_null(f->g);
    f->g->restored = true;   /* as promtool test rules: ALERTS from the start */
}

static int setup(void **state)
{
    struct fx *f = calloc(1, sizeof *f);
    f->dir = temp_dir("rules");
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = f->dir;
    o.retention_ms = 0;
    firn_err err = {0};
    f->db = tsdb_open(&o, &err);
    assert_non_null(f->db);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fx *f = *state;
    rules_group_rt_free(f->g);
    rules_file_free(f->file);
    tsdb_close(f->db);
    remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}

static void eval_at(struct fx *f, int64_t ts)
{
    f->now = ts;
    rules_group_rt_eval(f->g, ts);
}

static const rules_alert *alert_of(struct fx *f, size_t rule, const char *instance)
{
    rules_rule_rt *r = &f->g->rules[rule];
    for (size_t i = 0; i < r->n_alerts; i++) {
        const char *v = firn_labels_get(r->alerts[i].labels, r->alerts[i].n_labels, "instance");
        if (v && strcmp(v, instance) == 0)
            return &r->alerts[i];
    }
    return NULL;
}

/* The value of the one series an expression gives at t, or NAN for none. */
static double query1(struct fx *f, const char *expr, int64_t t, size_t *n)
{
    pql_query q;
    firn_err err = {0};
    if (pql_parse(expr, &q, &err) < 0)
        fail_msg("%s: %s", expr, err.msg);
    tsdb_reader *r = tsdb_reader_open(f->db, &err);
    pql_result res;
    if (pql_eval_instant(r, &q, t, NULL, &res, &err))
        fail_msg("%s: %s", expr, err.msg);
    double v = res.n_series ? res.series[0].points[0].v : NAN;
    *n = res.n_series;
    pql_result_free(&res);
    pql_query_free(&q);
    tsdb_reader_close(r);
    return v;
}

struct last {
    int64_t t;
    double v;
};

static int keep_last(void *ctx, int64_t t, double v)
{
    struct last *l = ctx;
    l->t = t;
    l->v = v;
    return 0;
}

/* Whether the newest sample of the one series named name is a stale marker
 * at t. */
static bool last_value_stale(struct fx *f, const char *name, int64_t t)
{
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(f->db, &err);
    firn_matcher m;
    assert_int_equal(firn_matcher_init(&m, FIRN_MATCH_EQ, "__name__", name, &err), 0);
    tsdb_series_set set;
    assert_int_equal(tsdb_select(r, &m, 1, INT64_MIN, INT64_MAX, &set, &err), 0);
    assert_int_equal(set.n, 1);
    struct last l = {0};
    assert_int_equal(tsdb_scan_floats(r, set.series[0].id, INT64_MIN, INT64_MAX, keep_last, &l,
                                      &err), 0);
    tsdb_series_set_free(&set);
    firn_matcher_destroy(&m);
    tsdb_reader_close(r);
    return l.t == t && tsdb_is_stale(l.v);
}

/* TestKeepFiringFor: 75 85 70 70 10x5 at 1m, > 50, for 1m, keep_firing_for 1m. */
static void test_keep_firing_for(void **state)
{
    struct fx *f = *state;
    const double v[] = {75, 85, 70, 70, 10, 10, 10, 10, 10, 10};
    put(f, "http_requests", "0", MIN, v, 10);
    load(f, "groups:\n- name: g\n  rules:\n  - alert: HTTPRequestRateHigh\n"
            "    expr: http_requests > 50\n    for: 1m\n    keep_firing_for: 1m\n", MIN);
    const rules_alert_state want[] = {RULES_PENDING, RULES_FIRING, RULES_FIRING, RULES_FIRING,
                                      RULES_FIRING};
    for (int step = 0; step < 5; step++) {
        eval_at(f, step * MIN);
        const rules_alert *a = alert_of(f, 0, "0");
        assert_non_null(a);
        if (a->state != want[step])
            fail_msg("step %d: state %d, want %d", step, a->state, want[step]);
        assert_int_equal(a->active_at_ms, 0);
    }
    /* at 4m the value (10) is below: kept firing, with the old value */
    assert_true(alert_of(f, 0, "0")->value == 70);
    size_t n;
    assert_true(query1(f, "ALERTS{alertstate=\"firing\"}", 4 * MIN, &n) == 1);
    assert_int_equal(n, 1);
    eval_at(f, 5 * MIN);
    const rules_alert *a = alert_of(f, 0, "0");
    assert_non_null(a);   /* resolved, kept 15 minutes */
    assert_int_equal(a->state, RULES_INACTIVE);
    assert_int_equal(a->resolved_at_ms, 5 * MIN);
    /* ALERTS is gone: a stale marker at 5m */
    query1(f, "ALERTS", 5 * MIN, &n);
    assert_int_equal(n, 0);
    query1(f, "ALERTS", 5 * MIN - 1, &n);
    assert_int_equal(n, 1);
}

/* TestAlertingRule: two instances at 5m steps, < 100, for 1m; a templated
 * label overrides the series' own. */
static void test_alerting_rule(void **state)
{
    struct fx *f = *state;
    const double a0[] = {75, 85, 95, 105, 105, 95, 85}, a1[] = {80, 90, 100, 110, 120, 130, 140};
    put(f, "http_requests", "0", 5 * MIN, a0, 7);
    put(f, "http_requests", "1", 5 * MIN, a1, 7);
    load(f, "groups:\n- name: g\n  rules:\n  - alert: HTTPRequestRateLow\n"
            "    expr: http_requests < 100\n    for: 1m\n"
            "    labels:\n      severity: '{{\"c\"}}ritical'\n"
            "    annotations:\n      summary: '{{ $labels.instance }} at {{ $value }}'\n",
         5 * MIN);
    struct { int64_t t; const char *i0, *i1; } steps[] = {
        {0, "pending", "pending"}, {5, "firing", "firing"}, {10, "firing", NULL},
        {15, NULL, NULL}, {20, NULL, NULL}, {25, "pending", NULL}, {30, "firing", NULL}};
    for (size_t s = 0; s < 7; s++) {
        eval_at(f, steps[s].t * MIN);
        const char *want[2] = {steps[s].i0, steps[s].i1};
        for (int i = 0; i < 2; i++) {
            char sel[96];
            size_t n;
            snprintf(sel, sizeof sel, "ALERTS{instance=\"%d\", alertstate=\"%s\"}", i,
                     want[i] ? want[i] : "firing");
            query1(f, sel, steps[s].t * MIN, &n);
            if (n != (want[i] ? 1u : 0u))
                fail_msg("%lldm instance %d: %zu series %s", (long long)steps[s].t, i, n, sel);
            snprintf(sel, sizeof sel, "ALERTS{instance=\"%d\"}", i);
            query1(f, sel, steps[s].t * MIN, &n);
            assert_int_equal(n, want[i] ? 1u : 0u);
        }
        if (steps[s].t == 0) {
            const rules_alert *a = alert_of(f, 0, "0");
            assert_string_equal(firn_labels_get(a->labels, a->n_labels, "severity"), "critical");
            assert_string_equal(firn_labels_get(a->labels, a->n_labels, "alertname"),
                                "HTTPRequestRateLow");
            assert_null(firn_labels_get(a->labels, a->n_labels, "__name__"));
            assert_string_equal(a->annotations[0].value, "0 at 75");
        }
    }
    /* the re-fire at 25m is a new alert */
    assert_int_equal(alert_of(f, 0, "0")->active_at_ms, 25 * MIN);
    size_t n;
    assert_true(query1(f, "ALERTS_FOR_STATE{instance=\"0\"}", 30 * MIN, &n) == 25 * 60);
}

/* Recording rules in order (each sees the previous one's output at the same
 * time), rule labels, a scalar result, duplicate label sets, limit. */
static void test_recording_rules(void **state)
{
    struct fx *f = *state;
    const double a[] = {1, 2, 3}, b[] = {10, 20, 30}, c[] = {100, 200, 300};
    put(f, "req", "a", MIN, a, 3);
    put(f, "req", "b", MIN, b, 3);
    put(f, "req", "c", MIN, c, 3);
    load(f, "groups:\n- name: g\n  limit: 2\n  rules:\n"
            "  - record: total\n    expr: sum(req)\n    labels:\n      kind: sum\n"
            "  - record: twice\n    expr: total * 2\n"
            "  - record: fixed\n    expr: 1\n"
            "  - record: same\n    expr: req\n    labels:\n      instance: x\n"
            "  - record: many\n    expr: req\n"
            "  - alert: Loud\n    expr: req > 0\n", MIN);
    eval_at(f, 2 * MIN);
    size_t n;
    assert_true(query1(f, "total{kind=\"sum\"}", 2 * MIN, &n) == 333);
    assert_true(query1(f, "twice", 2 * MIN, &n) == 666);
    assert_true(query1(f, "fixed", 2 * MIN, &n) == 1);
    assert_int_equal(f->g->rules[3].health, RULES_HEALTH_ERR);
    assert_string_equal(f->g->rules[3].last_error,
                        "vector contains metrics with the same labelset after applying rule "
                        "labels");
    assert_int_equal(f->g->rules[4].health, RULES_HEALTH_ERR);
    assert_string_equal(f->g->rules[4].last_error, "exceeded limit of 2 with 3 series");
    assert_int_equal(f->g->rules[5].health, RULES_HEALTH_ERR);
    assert_string_equal(f->g->rules[5].last_error, "exceeded limit of 2 with 3 alerts");
    assert_int_equal(f->g->rules[5].n_alerts, 0);
    assert_int_equal(f->g->rules[0].health, RULES_HEALTH_OK);
    /* a series that vanishes is marked stale at the next evaluation */
    eval_at(f, 10 * MIN);   /* req is older than the lookback: total has no input */
    query1(f, "total", 10 * MIN, &n);
    assert_int_equal(n, 0);
    assert_true(last_value_stale(f, "total", 10 * MIN));
    assert_true(last_value_stale(f, "twice", 10 * MIN));
    assert_false(last_value_stale(f, "fixed", 10 * MIN));
}

/* TestNotify-like cadence: with interval 1m and resend delay 1m, a firing
 * alert goes out at its first evaluation and then every 2 minutes; its
 * resolution at once, with endsAt the resolution time. */
static void test_sending(void **state)
{
    struct fx *f = *state;
    const double v[] = {1, 1, 1, 1, 1, 1, 0, 0};
    put(f, "x", "a", MIN, v, 8);
    load(f, "groups:\n- name: g\n  rules:\n  - alert: X\n    expr: x > 0\n", MIN);
    for (int s = 0; s < 8; s++)
        eval_at(f, s * MIN);
    const int64_t want[] = {0, 2 * MIN, 4 * MIN, 6 * MIN};
    assert_int_equal(f->n_sent, 4);
    for (size_t i = 0; i < 4; i++)
        assert_int_equal(f->sent_ts[i], want[i]);
    /* the resolution went out at 6m although the last send was at 4m... and
     * with endsAt = the resolution time; the firing sends' endsAt is
     * ValidUntil, 4 intervals on */
    assert_int_equal(f->sent[3].ends_at_ms, 6 * MIN);
    assert_int_equal(f->sent[0].ends_at_ms, 4 * MIN);
    assert_int_equal(f->sent[0].starts_at_ms, 0);
    const rules_alert *a = &f->g->rules[0].alerts[0];
    assert_int_equal(a->state, RULES_INACTIVE);
    assert_int_equal(a->resolved_at_ms, 6 * MIN);
    assert_int_equal(a->fired_at_ms, 0);
    assert_int_equal(a->valid_until_ms, 6 * MIN + 4 * MIN);
}

/* Prometheus 2.42's group offsets (RULES.md §2.1, observed). */
static void test_offsets(void **state)
{
    struct fx *f = *state;
    const char *yaml = "groups:\n- name: g1\n  rules: []\n- name: g2\n  rules: []\n";
    rules_errors errs = {0};
    firn_err err = {0};
    rules_file *rf = rules_file_parse("rules/a.yml", yaml, strlen(yaml), &errs, &err);
    assert_non_null(rf);
    rules_eval_options o = {.db = f->db};
    rules_group_rt *g1 = rules_group_rt_new(rf, 0, 2000, &o, &err);
    rules_group_rt *g2 = rules_group_rt_new(rf, 1, 2000, &o, &err);
    assert_int_equal(rules_group_rt_offset(g1), 946);   /* 946465708 ns */
    assert_int_equal(rules_group_rt_offset(g2), 709);   /* 709835581 ns */
    rules_group_rt_free(g1);
    rules_group_rt_free(g2);
    rules_file_free(rf);
}

/* ---- the notifier against a loopback fake Alertmanager ------------------------ */

/* Answers each POST with `status` and keeps its body and path. */
struct fake_am {
    int fd, port, status;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t got;
    char *bodies[64];
    char paths[64][128];
    char auth[64][128];
    size_t n;
    bool stop;
};

static void *fake_am_main(void *arg)
{
    struct fake_am *am = arg;
    for (;;) {
        int c = accept(am->fd, NULL, NULL);
        if (c < 0)
            return NULL;
        char buf[65536];
        size_t len = 0;
        ssize_t r;
        char *hdr_end = NULL;
        long clen = -1;
        while (len < sizeof buf - 1 && (r = read(c, buf + len, sizeof buf - 1 - len)) > 0) {
            len += (size_t)r;
            buf[len] = 0;
            hdr_end = strstr(buf, "\r\n\r\n");
            if (hdr_end && clen < 0) {
                char *cl = strcasestr(buf, "Content-Length:");
                clen = cl ? strtol(cl + 15, NULL, 10) : 0;
            }
            if (hdr_end && (long)(len - (size_t)(hdr_end + 4 - buf)) >= clen)
                break;
        }
        pthread_mutex_lock(&am->mu);
        bool stop = am->stop;
        if (!stop && hdr_end && am->n < 64) {
            sscanf(buf, "POST %127s", am->paths[am->n]);
            char *au = strcasestr(buf, "Authorization: ");
            snprintf(am->auth[am->n], 128, "%.*s", au ? (int)strcspn(au + 15, "\r") : 0,
                     au ? au + 15 : "");
            am->bodies[am->n++] = strdup(hdr_end + 4);
            pthread_cond_broadcast(&am->got);
        }
        int status = am->status;
        pthread_mutex_unlock(&am->mu);
        char resp[128];
        int rn = snprintf(resp, sizeof resp, "HTTP/1.1 %d X\r\nContent-Length: 0\r\n"
                                              "Connection: close\r\n\r\n", status);
        if (write(c, resp, (size_t)rn) < 0) {
            /* the client gave up: nothing to do */
        }
        close(c);
        if (stop)
            return NULL;
    }
}

static void fake_am_start(struct fake_am *am, int status)
{
    memset(am, 0, sizeof *am);
    am->status = status;
    pthread_mutex_init(&am->mu, NULL);
    pthread_cond_init(&am->got, NULL);
    am->fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_equal(bind(am->fd, (struct sockaddr *)&a, sizeof a), 0);
    socklen_t al = sizeof a;
    assert_int_equal(getsockname(am->fd, (struct sockaddr *)&a, &al), 0);
    am->port = ntohs(a.sin_port);
    assert_int_equal(listen(am->fd, 16), 0);
    assert_int_equal(pthread_create(&am->thread, NULL, fake_am_main, am), 0);
}

static void fake_am_stop(struct fake_am *am)
{
    pthread_mutex_lock(&am->mu);
    am->stop = true;
    pthread_mutex_unlock(&am->mu);
    shutdown(am->fd, SHUT_RDWR);
    close(am->fd);
    pthread_join(am->thread, NULL);
    for (size_t i = 0; i < am->n; i++)
        free(am->bodies[i]);
    pthread_mutex_destroy(&am->mu);
    pthread_cond_destroy(&am->got);
}

/* Waits (bounded) until the fake has n requests; false on timeout. */
static bool fake_am_wait(struct fake_am *am, size_t n)
{
    struct timespec until = firn_deadline_ms(10000);
    pthread_mutex_lock(&am->mu);
    int rc = 0;
    while (am->n < n && rc == 0)
        rc = pthread_cond_timedwait(&am->got, &am->mu, &until);
    bool ok = am->n >= n;
    pthread_mutex_unlock(&am->mu);
    return ok;
}

/* Waits (bounded, 10 s) until the notifier's metrics contain want. */
static bool metrics_show(rules_notifier *n, const char *want)
{
    for (int i = 0; i < 1000; i++) {
        firn_buf b = {0};
        rules_notifier_metrics_write(n, &b);
        bool found = b.data && strstr(b.data, want);
        firn_buf_free(&b);
        if (found)
            return true;
        usleep(10000);
    }
    return false;
}

static firn_config *am_config(const char *targets, const char *extra)
{
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "global: {external_labels: {region: eu, replica: r1}}\n"
             "alerting:\n"
             "  alert_relabel_configs:\n"
             "  - {action: labeldrop, regex: replica}\n"
             "  - {source_labels: [alertname], regex: Dropped, action: drop}\n"
             "  alertmanagers:\n"
             "  - static_configs: [{targets: [%s]}]\n"
             "    path_prefix: prefix//\n"
             "    timeout: 2s\n%s",
             targets, extra);
    firn_err err = {0};
    firn_config *cfg = config_load_string(yaml, strlen(yaml), "am.yml", &err);
    if (!cfg)
        fail_msg("config: %s", err.msg);
    return cfg;
}

/* Batches of 64, every Alertmanager, external labels where missing,
 * alert_relabel_configs, the path prefix, auth, and 2.42's JSON. */
static void test_notifier(void **state)
{
    (void)state;
    struct fake_am a1, a2;
    fake_am_start(&a1, 200);
    fake_am_start(&a2, 500);
    char targets[128];
    snprintf(targets, sizeof targets, "'127.0.0.1:%d', '127.0.0.1:%d'", a1.port, a2.port);
    firn_config *cfg = am_config(targets, "    basic_auth: {username: prometheus, password: "
                                          "testing_password}\n");
    firn_err err = {0};
    rules_notifier *n = rules_notifier_new(10000, 64, NULL, &err);
    assert_non_null(n);
    rules_notifier_set(n, cfg);
    /* queued before the sender starts: 2*64+1 alerts make 64, 64 and 1 */
    firn_label l1[] = {{"alertname", "A"}, {"region", "us"}};
    firn_label l2[] = {{"alertname", "Dropped"}};
    firn_label ann[] = {{"summary", "s <&>"}};
    rules_notification batch[130];
    for (int i = 0; i < 129; i++)
        batch[i] = (rules_notification){l1, 2, ann, 1, 1700000000123, 1700000240123,
                                        "http://firn:7070/?query=up"};
    batch[129] = (rules_notification){l2, 1, NULL, 0, 0, 0, ""};
    rules_notifier_send(n, batch, 130);
    assert_int_equal(rules_notifier_start(n, "firn/test", &err), 0);
    assert_true(fake_am_wait(&a1, 3));
    assert_true(fake_am_wait(&a2, 3));
    size_t sizes[3];
    for (int i = 0; i < 3; i++) {
        json_error_t je;
        json_t *arr = json_loads(a1.bodies[i], 0, &je);
        assert_non_null(arr);
        sizes[i] = json_array_size(arr);
        json_t *a = json_array_get(arr, 0);
        /* the alert's own region wins; replica dropped by relabeling */
        assert_string_equal(json_string_value(json_object_get(json_object_get(a, "labels"),
                                                              "region")), "us");
        assert_null(json_object_get(json_object_get(a, "labels"), "replica"));
        assert_string_equal(json_string_value(json_object_get(a, "startsAt")),
                            "2023-11-14T22:13:20.123Z");
        assert_string_equal(json_string_value(json_object_get(a, "endsAt")),
                            "2023-11-14T22:17:20.123Z");
        assert_string_equal(json_string_value(json_object_get(json_object_get(a, "annotations"),
                                                              "summary")), "s <&>");
        json_decref(arr);
        assert_string_equal(a1.paths[i], "/prefix/api/v2/alerts");
        assert_string_equal(a1.auth[i], "Basic cHJvbWV0aGV1czp0ZXN0aW5nX3Bhc3N3b3Jk");
    }
    assert_int_equal(sizes[0], 64);
    assert_int_equal(sizes[1], 64);
    assert_int_equal(sizes[2], 1);
    /* 2.42's counters: sent per attempt, errors per failed request; AM1
     * took every batch, so nothing is dropped (the relabel-dropped alert
     * never counts) */
    char want[256];
    snprintf(want, sizeof want, "firn_notifications_errors_total{alertmanager="
             "\"http://127.0.0.1:%d/prefix/api/v2/alerts\"} 3\n", a2.port);
    assert_true(metrics_show(n, want));
    snprintf(want, sizeof want, "firn_notifications_sent_total{alertmanager="
             "\"http://127.0.0.1:%d/prefix/api/v2/alerts\"} 129\n", a2.port);
    assert_true(metrics_show(n, want));
    snprintf(want, sizeof want, "firn_notifications_errors_total{alertmanager="
             "\"http://127.0.0.1:%d/prefix/api/v2/alerts\"} 0\n", a1.port);
    assert_true(metrics_show(n, want));
    assert_true(metrics_show(n, "firn_notifications_dropped_total 0\n"));
    assert_true(metrics_show(n, "firn_notifications_alertmanagers_discovered 2\n"));
    rules_notifier_free(n);
    fake_am_stop(&a1);
    fake_am_stop(&a2);
    config_free(cfg);
}

/* Counters: with every Alertmanager failing, each batch is dropped; a full
 * queue drops the oldest. */
static void test_notifier_failures(void **state)
{
    (void)state;
    struct fake_am bad;
    fake_am_start(&bad, 500);
    char targets[64];
    snprintf(targets, sizeof targets, "'127.0.0.1:%d'", bad.port);
    firn_config *cfg = am_config(targets, "");
    firn_err err = {0};
    rules_notifier *n = rules_notifier_new(3, 64, NULL, &err);
    rules_notifier_set(n, cfg);
    firn_label l[] = {{"alertname", "A"}, {"i", "0"}};
    rules_notification a[5];
    char vals[5][4];
    firn_label ls[5][2];
    for (int i = 0; i < 5; i++) {
        snprintf(vals[i], sizeof vals[i], "%d", i);
        ls[i][0] = l[0];
        ls[i][1] = (firn_label){"i", vals[i]};
        a[i] = (rules_notification){ls[i], 2, NULL, 0, 0, 0, ""};
    }
    rules_notifier_send(n, a, 5);   /* capacity 3: alerts 0 and 1 dropped */
    assert_int_equal(rules_notifier_start(n, "firn/test", &err), 0);
    assert_true(fake_am_wait(&bad, 1));
    json_error_t je;
    json_t *arr = json_loads(bad.bodies[0], 0, &je);
    assert_int_equal(json_array_size(arr), 3);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(arr, 0), "labels"), "i")), "2");
    json_decref(arr);
    /* 2 dropped from the queue, 3 in the batch no Alertmanager took */
    assert_true(metrics_show(n, "firn_notifications_dropped_total 5\n"));
    rules_notifier_free(n);
    fake_am_stop(&bad);
    /* metrics from a fresh notifier with no Alertmanager: every send drops */
    n = rules_notifier_new(10, 64, NULL, &err);
    firn_config *none = am_config("'127.0.0.1:1'", "");
    rules_notifier_set(n, none);
    firn_buf b = {0};
    rules_notifier_metrics_write(n, &b);
    assert_non_null(strstr(b.data, "firn_notifications_queue_capacity 10\n"));
    assert_non_null(strstr(b.data, "firn_notifications_alertmanagers_discovered 1\n"));
    firn_buf_free(&b);
    rules_notifier_free(n);
    config_free(none);
    config_free(cfg);
}

/* urls_are: the URLs rules_am_group_urls gives for g under the first
 * Alertmanager config of yaml, joined by spaces. */
static void urls_are(const char *yaml, const disc_group *g, const char *want)
{
    firn_err err = {0};
    firn_config *cfg = config_load_string(yaml, strlen(yaml), "t.yml", &err);
    if (!cfg)
        fail_msg("config: %s", err.msg);
    char **urls = NULL;
    size_t n = 0;
    assert_int_equal(rules_am_group_urls(&cfg->alertmanagers[0], g, &urls, &n, &err), 0);
    firn_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        firn_buf_printf(&b, "%s%s", i ? " " : "", urls[i]);
        free(urls[i]);
    }
    free(urls);
    char *got = firn_buf_take(&b, NULL);
    assert_string_equal(got ? got : "", want);
    free(got);
    config_free(cfg);
}

#define TARGET(...) {(firn_label[]){__VA_ARGS__}, sizeof((firn_label[]){__VA_ARGS__}) / sizeof(firn_label)}

/* Alertmanager targets through relabel_configs, as Prometheus 2.42's
 * alertmanagerFromGroup: the expected URLs are worked out by hand from its
 * rules (target labels, then __scheme__ and __alerts_path__ from the
 * config, then the group's labels the target lacks; relabel; a dropped
 * target gives nothing; scheme://address + path, the path escaped as Go's
 * url.URL does and made absolute). */
static void test_am_relabel_urls(void **state)
{
    (void)state;
    /* no relabel_configs: path.Join("/", "/", "/api/v2/alerts") */
    disc_target plain[] = {TARGET({"__address__", "am:9093"})};
    disc_group g0 = {"0", plain, 1, NULL, 0};
    urls_are("alerting:\n  alertmanagers:\n  - static_configs: []\n", &g0,
             "http://am:9093/api/v2/alerts");

    const char *yaml =
        "alerting:\n  alertmanagers:\n  - scheme: https\n    path_prefix: /am//\n"
        "    relabel_configs:\n"
        "    - {source_labels: [__meta_kubernetes_pod_container_port_name], action: keep, "
        "regex: web}\n"
        "    - {source_labels: [__meta_kubernetes_pod_annotation_am_path], regex: '(.+)', "
        "target_label: __alerts_path__, replacement: '${1}/api/v2/alerts'}\n"
        "    - {source_labels: [team], regex: x, target_label: __scheme__, replacement: http}\n";
    /* labels sorted by name, as discovery hands them over */
    disc_target t[] = {
        /* team x from the group: http; the config's path /am/api/v2/alerts */
        TARGET({"__address__", "10.0.0.1:9093"},
               {"__meta_kubernetes_pod_container_port_name", "web"}),
        /* its own team y wins over the group's: https stays; its path */
        TARGET({"__address__", "10.0.0.2:9094"},
               {"__meta_kubernetes_pod_annotation_am_path", "/custom"},
               {"__meta_kubernetes_pod_container_port_name", "web"}, {"team", "y"}),
        /* another port: dropped by keep */
        TARGET({"__address__", "10.0.0.3:80"},
               {"__meta_kubernetes_pod_container_port_name", "metrics"}),
        /* a relative path with a space and '!': "/" put before, escaped */
        TARGET({"__address__", "10.0.0.4:1"},
               {"__meta_kubernetes_pod_annotation_am_path", "rel ative!"},
               {"__meta_kubernetes_pod_container_port_name", "web"}),
        /* the configured __scheme__ is set over a target's own */
        TARGET({"__address__", "10.0.0.5:2"},
               {"__meta_kubernetes_pod_container_port_name", "web"}, {"__scheme__", "ftp"},
               {"team", "z"}),
    };
    firn_label group_labels[] = {{"__meta_kubernetes_namespace", "ns"}, {"team", "x"}};
    disc_group g = {"pod/ns/am", t, 5, group_labels, 2};
    urls_are(yaml, &g,
             "http://10.0.0.1:9093/am/api/v2/alerts https://10.0.0.2:9094/custom/api/v2/alerts "
             "http://10.0.0.4:1/rel%20ative%21/api/v2/alerts https://10.0.0.5:2/am/api/v2/alerts");

    /* all dropped: no URL, no error */
    disc_group g3 = {"pod/ns/other", &t[2], 1, group_labels, 2};
    urls_are(yaml, &g3, "");

    /* relabeling may turn a pasted URL into an address; a kept address
     * still holding '/' fails the whole group (config.CheckTargetAddress) */
    const char *fix = "alerting:\n  alertmanagers:\n"
                      "  - static_configs: [{targets: ['http://am:9093/']}]\n"
                      "    relabel_configs:\n"
                      "    - {source_labels: [__address__], regex: 'http://(.*)/', "
                      "target_label: __address__}\n";
    disc_target urlish[] = {TARGET({"__address__", "http://am:9093/"}),
                            TARGET({"__address__", "x/y"})};
    disc_group gu = {"0", urlish, 1, NULL, 0};
    urls_are(fix, &gu, "http://am:9093/api/v2/alerts");
    firn_err err = {0};
    firn_config *cfg = config_load_string(fix, strlen(fix), "t.yml", &err);
    assert_non_null(cfg);
    char **urls = (char **)1;
    size_t n = 7;
    gu.n_targets = 2;
    assert_true(rules_am_group_urls(&cfg->alertmanagers[0], &gu, &urls, &n, &err) < 0);
    assert_string_equal(err.msg, "\"x/y\" is not a valid hostname");
    assert_null(urls);
    assert_int_equal(n, 0);
    config_free(cfg);
}

/* Static targets through relabel_configs reach the Alertmanager the
 * relabeled address names; a dropped one is not sent to. */
static void test_notifier_relabel(void **state)
{
    (void)state;
    struct fake_am am;
    fake_am_start(&am, 200);
    char yaml[768];
    snprintf(yaml, sizeof yaml,
             "alerting:\n  alertmanagers:\n"
             "  - static_configs:\n"
             "    - {targets: ['keep-me'], labels: {port: '%d', path: /p}}\n"
             "    - {targets: ['drop-me'], labels: {port: '%d', path: /dropped}}\n"
             "    relabel_configs:\n"
             "    - {source_labels: [__address__], action: drop, regex: drop-me}\n"
             "    - {source_labels: [port], regex: '(.+)', target_label: __address__, "
             "replacement: '127.0.0.1:$1'}\n"
             "    - {source_labels: [path], target_label: __alerts_path__, "
             "replacement: '$1/api/v2/alerts'}\n",
             am.port, am.port);
    firn_err err = {0};
    firn_config *cfg = config_load_string(yaml, strlen(yaml), "t.yml", &err);
    if (!cfg)
        fail_msg("config: %s", err.msg);
    rules_notifier *n = rules_notifier_new(100, 64, NULL, &err);
    assert_non_null(n);
    rules_notifier_set(n, cfg);
    char want[128];
    snprintf(want, sizeof want, "firn_notifications_alertmanagers_discovered 1\n");
    assert_true(metrics_show(n, want));
    snprintf(want, sizeof want,
             "firn_notifications_sent_total{alertmanager=\"http://127.0.0.1:%d/p/api/v2/alerts\"} 0\n",
             am.port);
    assert_true(metrics_show(n, want));
    assert_int_equal(rules_notifier_start(n, "firn/test", &err), 0);
    firn_label l[] = {{"alertname", "A"}};
    rules_notification a = {l, 1, NULL, 0, 0, 0, ""};
    rules_notifier_send(n, &a, 1);
    assert_true(fake_am_wait(&am, 1));
    assert_string_equal(am.paths[0], "/p/api/v2/alerts");
    /* the dropped target (its own path) is nowhere among the Alertmanagers */
    firn_buf b = {0};
    rules_notifier_metrics_write(n, &b);
    assert_non_null(b.data);
    assert_null(strstr(b.data, "/dropped/"));
    firn_buf_free(&b);
    rules_notifier_free(n);
    config_free(cfg);
    fake_am_stop(&am);
}

/* Alertmanagers from file_sd_configs: found, sent to, and gone when the
 * file lists none (the provider and the notifier's sink on their threads). */
static void test_notifier_file_sd(void **state)
{
    (void)state;
    struct fake_am am;
    fake_am_start(&am, 200);
    char dir[] = "/tmp/firn-test-amsd-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char path[128], body[128], yaml[512];
    snprintf(path, sizeof path, "%s/am.json", dir);
    int len = snprintf(body, sizeof body, "[{\"targets\": [\"127.0.0.1:%d\"]}]", am.port);
    firn_err err = {0};
    assert_int_equal(firn_write_file_atomic(path, body, (size_t)len, &err), 0);
    snprintf(yaml, sizeof yaml, "alerting:\n  alertmanagers:\n"
                                "  - file_sd_configs: [{files: ['%s/*.json']}]\n"
                                "    path_prefix: /am\n", dir);
    firn_config *cfg = config_load_string(yaml, strlen(yaml), "t.yml", &err);
    assert_non_null(cfg);
    rules_notifier *n = rules_notifier_new(100, 64, NULL, &err);
    assert_non_null(n);
    assert_int_equal(rules_notifier_start(n, "firn/test", &err), 0);
    rules_notifier_set(n, cfg);
    assert_true(metrics_show(n, "firn_notifications_alertmanagers_discovered 1\n"));
    firn_label l[] = {{"alertname", "A"}};
    rules_notification a = {l, 1, NULL, 0, 0, 0, ""};
    rules_notifier_send(n, &a, 1);
    assert_true(fake_am_wait(&am, 1));
    assert_string_equal(am.paths[0], "/am/api/v2/alerts");
    /* the file lists nobody now */
    assert_int_equal(firn_write_file_atomic(path, "[]", 2, &err), 0);
    assert_true(metrics_show(n, "firn_notifications_alertmanagers_discovered 0\n"));
    rules_notifier_free(n);
    config_free(cfg);
    fake_am_stop(&am);
    unlink(path);
    rmdir(dir);
}

/* The value of the first metrics line starting with prefix, or -1. */
static double metric_value(const firn_buf *b, const char *prefix)
{
    const char *p = b->data ? strstr(b->data, prefix) : NULL;
    return p ? strtod(p + strlen(prefix), NULL) : -1;
}

/* Waits (bounded, 10 s) until the remote's metrics line starting with
 * prefix is at least want. */
static bool remote_metric_reaches(rules_remote *r, const char *prefix, double want)
{
    for (int i = 0; i < 1000; i++) {
        firn_buf b = {0};
        rules_remote_metrics_write(r, &b);
        double v = metric_value(&b, prefix);
        firn_buf_free(&b);
        if (v >= want)
            return true;
        usleep(10000);
    }
    return false;
}

/* remote_write's queue: a 503 is retried while the ring keeps at most its
 * capacity and counts what it drops; a 400 fails without retry;
 * write_relabel_configs' drops are counted apart. */
static void test_remote_queue(void **state)
{
    (void)state;
    struct fake_am busy, bad;
    fake_am_start(&busy, 503);
    fake_am_start(&bad, 400);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "remote_write:\n"
             "  - url: http://127.0.0.1:%d/busy\n    name: busy\n"
             "    queue_config: {capacity: 3, max_samples_per_send: 2, batch_send_deadline: 10ms,"
             " min_backoff: 10ms, max_backoff: 20ms}\n"
             "  - url: http://127.0.0.1:%d/bad\n    name: bad\n"
             "    write_relabel_configs: [{source_labels: [i], regex: '0', action: drop}]\n"
             "    queue_config: {batch_send_deadline: 10ms, min_backoff: 10ms}\n",
             busy.port, bad.port);
    firn_err err = {0};
    firn_config *cfg = config_load_string(yaml, strlen(yaml), "t.yml", &err);
    assert_non_null(cfg);
    rules_remote *r = rules_remote_new("firn/test", &err);
    assert_non_null(r);
    rules_remote_set(r, cfg);
    tsdb_float_sample s[10];
    firn_label l[10][2];
    char v[10][4];
    for (int i = 0; i < 10; i++) {
        snprintf(v[i], sizeof v[i], "%d", i);
        l[i][0] = (firn_label){"__name__", "x"};
        l[i][1] = (firn_label){"i", v[i]};
        s[i] = (tsdb_float_sample){l[i], 2, 1700000000000 + i, (double)i};
    }
    rules_remote_append(r, s, 10);
    const char *busy_q = "{remote_name=\"busy\",url=\"http://127.0.0.1:";
    char retried[160], dropped[160], pending[160], failed[160], relabeled[160], bad_retried[160];
    snprintf(retried, sizeof retried, "firn_remote_storage_samples_retried_total%s%d/busy\"} ",
             busy_q, busy.port);
    snprintf(dropped, sizeof dropped,
             "firn_remote_storage_samples_dropped_total%s%d/busy\",reason=\"queue_full\"} ",
             busy_q, busy.port);
    snprintf(pending, sizeof pending, "firn_remote_storage_samples_pending%s%d/busy\"} ", busy_q,
             busy.port);
    snprintf(failed, sizeof failed,
             "firn_remote_storage_samples_failed_total{remote_name=\"bad\",url=\"http://"
             "127.0.0.1:%d/bad\"} ", bad.port);
    snprintf(relabeled, sizeof relabeled,
             "firn_remote_storage_samples_dropped_total{remote_name=\"bad\",url=\"http://"
             "127.0.0.1:%d/bad\",reason=\"relabel\"} ", bad.port);
    snprintf(bad_retried, sizeof bad_retried,
             "firn_remote_storage_samples_retried_total{remote_name=\"bad\",url=\"http://"
             "127.0.0.1:%d/bad\"} ", bad.port);
    /* busy: retried, and of 10 samples at most 3 queued and 2 in flight */
    assert_true(remote_metric_reaches(r, retried, 2));
    assert_true(fake_am_wait(&busy, 2));
    firn_buf b = {0};
    rules_remote_metrics_write(r, &b);
    assert_true(metric_value(&b, pending) <= 3);
    assert_true(metric_value(&b, dropped) >= 5);
    firn_buf_free(&b);
    /* bad: the 9 samples relabeling kept fail once each, never retried */
    assert_true(remote_metric_reaches(r, failed, 9));
    rules_remote_metrics_write(r, &b);
    assert_true(metric_value(&b, failed) == 9);
    assert_true(metric_value(&b, relabeled) == 1);
    assert_true(metric_value(&b, bad_retried) == 0);
    firn_buf_free(&b);
    rules_remote_free(r);
    config_free(cfg);
    fake_am_stop(&busy);
    fake_am_stop(&bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_templates),
        cmocka_unit_test(test_template_query),
        cmocka_unit_test_setup_teardown(test_keep_firing_for, setup, teardown),
        cmocka_unit_test_setup_teardown(test_alerting_rule, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recording_rules, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offsets, setup, teardown),
        cmocka_unit_test(test_notifier),
        cmocka_unit_test(test_notifier_failures),
        cmocka_unit_test(test_am_relabel_urls),
        cmocka_unit_test(test_notifier_relabel),
        cmocka_unit_test(test_notifier_file_sd),
        cmocka_unit_test(test_remote_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
