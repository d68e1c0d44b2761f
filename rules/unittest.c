/* unittest.c -- promtool 2.42's `test rules`: rule unit tests over input
 * series in expanding notation, evaluated by firn's own engine into a
 * temporary store, with promtool's output, messages and exit codes.
 *
 * Per test group (cmd/promtool/unittest.go): the input series are loaded
 * (sample i at i * interval), every alerting rule starts restored, the
 * groups are evaluated at 0, E, 2E, ... up to the largest eval_time (E =
 * evaluation_interval) in group_eval_order, any rule error ends the group
 * ("rule: NAME, time: D, err: ..."); an alert test at T is checked right
 * after the evaluation at the largest ts <= T (firing alerts only); a
 * PromQL test is an instant query at T after all evaluations.  Comparison
 * is exact (NaN never equals).
 */
#include "rules/rules.h"

#include <errno.h>
#include <glob.h>
#include <libgen.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/yaml.h"

struct out {
    FILE *out, *err;
    bool failed;
};

/* Go's time.Duration.String for whole milliseconds. */
static void go_duration(char *buf, size_t size, int64_t ms)
{
    if (ms == 0) {
        snprintf(buf, size, "0s");
        return;
    }
    const char *sign = ms < 0 ? "-" : "";
    uint64_t u = ms < 0 ? (uint64_t)-ms : (uint64_t)ms;
    if (u < 1000) {
        snprintf(buf, size, "%s%llums", sign, (unsigned long long)u);
        return;
    }
    uint64_t h = u / 3600000, m = u / 60000 % 60, s = u / 1000 % 60, frac = u % 1000;
    char sec[32];
    if (frac) {
        snprintf(sec, sizeof sec, "%llu.%03llu", (unsigned long long)s, (unsigned long long)frac);
        size_t n = strlen(sec);
        while (sec[n - 1] == '0')
            sec[--n] = 0;
    } else {
        snprintf(sec, sizeof sec, "%llu", (unsigned long long)s);
    }
    if (h)
        snprintf(buf, size, "%s%lluh%llum%ss", sign, (unsigned long long)h,
                 (unsigned long long)m, sec);
    else if (m)
        snprintf(buf, size, "%s%llum%ss", sign, (unsigned long long)m, sec);
    else
        snprintf(buf, size, "%s%ss", sign, sec);
}

/* ---- series notation ------------------------------------------------------------ */

/* metric{l="v", ...} (or {...}, or metric): labels into a (sorted). */
static int parse_metric(firn_arena *a, const char *s, firn_label **out, size_t *n, firn_err *err)
{
    firn_label *l = firn_arena_alloc(a, (FIRN_LABELS_MAX + 2) * sizeof *l);
    size_t k = 0;
    const char *p = s;
    while (*p == ' ')
        p++;
    const char *name = p;
    while (*p && *p != '{' && *p != ' ')
        p++;
    if (p > name) {
        l[k].name = FIRN_LABEL_NAME;
        l[k].value = firn_arena_strndup(a, name, (size_t)(p - name));
        k++;
    }
    while (*p == ' ')
        p++;
    if (*p == '{') {
        p++;
        for (;;) {
            while (*p == ' ' || *p == ',')
                p++;
            if (*p == '}') {
                p++;
                break;
            }
            const char *ln = p;
            while (*p && *p != '=' && *p != ' ')
                p++;
            size_t nl = (size_t)(p - ln);
            while (*p == ' ')
                p++;
            if (*p != '=' || nl == 0)
                return firn_errf(err, FIRN_EINVAL, "1:%d: parse error: unexpected character "
                                 "inside braces: '%c'", (int)(p - s + 1), *p ? *p : ' ');
            p++;
            while (*p == ' ')
                p++;
            char q = *p;
            if (q != '"' && q != '\'' && q != '`')
                return firn_errf(err, FIRN_EINVAL, "1:%d: parse error: unexpected character "
                                 "inside braces: '%c'", (int)(p - s + 1), *p ? *p : ' ');
            const char *v = ++p;
            firn_buf b = {0};
            while (*p && *p != q) {
                if (*p == '\\' && q != '`' && p[1]) {
                    p++;
                    char c = *p == 'n' ? '\n' : *p == 't' ? '\t' : *p;
                    firn_buf_append(&b, &c, 1);
                } else {
                    firn_buf_append(&b, p, 1);
                }
                p++;
            }
            (void)v;
            if (*p != q) {
                firn_buf_free(&b);
                return firn_errf(err, FIRN_EINVAL, "parse error: unterminated quoted string");
            }
            p++;
            if (k >= FIRN_LABELS_MAX) {
                firn_buf_free(&b);
                return firn_errf(err, FIRN_EINVAL, "too many labels");
            }
            l[k].name = firn_arena_strndup(a, ln, nl);
            l[k].value = firn_arena_strdup(a, b.data ? b.data : "");
            firn_buf_free(&b);
            k++;
        }
    }
    while (*p == ' ')
        p++;
    if (*p)
        return firn_errf(err, FIRN_EINVAL, "1:%d: parse error: unexpected character: '%c'",
                         (int)(p - s + 1), *p);
    *n = k;
    if (firn_labels_normalize(l, n, err) < 0)
        return err ? err->code : FIRN_EINVAL;
    *out = l;
    return 0;
}

struct point {
    bool omitted;
    double v;
};

/* Expanding notation: N, _, _xK, stale, NxK, A+BxK, A-BxK (repeated
 * addition, K+1 values), separated by spaces. */
static int parse_values(const char *s, struct point **out, size_t *n, firn_err *err)
{
    size_t cap = 0;
    *out = NULL;
    *n = 0;
    const char *p = s;
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == '\n')
            p++;
        if (!*p)
            return 0;
        const char *tok = p;
        while (*p && *p != ' ' && *p != '\t' && *p != '\n')
            p++;
        char item[128];
        size_t len = (size_t)(p - tok);
        if (len >= sizeof item)
            return firn_errf(err, FIRN_EINVAL, "bad value item \"%.*s...\"", 40, tok);
        memcpy(item, tok, len);
        item[len] = 0;
        double start = 0, step = 0;
        long long times = 0;
        bool omitted = false, stale = false;
        char *end;
        if (strcmp(item, "stale") == 0) {
            stale = true;
        } else if (item[0] == '_') {
            omitted = true;
            if (item[1] == 'x') {
                times = strtoll(item + 2, &end, 10) - 1;
                if (*end || times < 0)
                    return firn_errf(err, FIRN_EINVAL, "bad value item \"%s\"", item);
            } else if (item[1]) {
                return firn_errf(err, FIRN_EINVAL, "bad value item \"%s\"", item);
            }
        } else {
            /* [value][(+|-)step]x[times], decimal numbers only (0x10 is 0 ten more times) */
            char *x = strrchr(item, 'x');
            if (x) {
                times = strtoll(x + 1, &end, 10);
                if (x[1] == 0 || *end || times < 0)
                    return firn_errf(err, FIRN_EINVAL, "bad value item \"%s\"", item);
                *x = 0;
            }
            char *op = NULL;
            for (char *q = item + 1; *q && !op; q++)
                if ((*q == '+' || *q == '-') && q[-1] != 'e' && q[-1] != 'E')
                    op = q;
            if (op && !x)
                return firn_errf(err, FIRN_EINVAL, "bad value item \"%s\"", item);
            char sign = op ? *op : 0;
            if (op)
                *op = 0;
            start = strtod(item, &end);
            if (end == item || *end || strpbrk(item, "xX"))
                return firn_errf(err, FIRN_EINVAL, "bad value item \"%s\"", item);
            if (op) {
                step = strtod(op + 1, &end);
                if (end == op + 1 || *end)
                    return firn_errf(err, FIRN_EINVAL, "bad value item \"%s\"", item);
                step = sign == '-' ? -step : step;
            }
        }
        if (times > 100000 || *n + (size_t)times + 1 > 1000000)
            return firn_errf(err, FIRN_EINVAL, "too many values");
        double v = start;
        for (long long i = 0; i <= times; i++) {
            *out = firn_grow(*out, *n, &cap, sizeof **out, 64);   /* capped above */
            (*out)[(*n)++] = (struct point){omitted, stale ? tsdb_stale_nan() : v};
            v += step;
        }
    }
}

/* ---- the test file -------------------------------------------------------------- */

static const char *scalar(const config_ynode *n)
{
    return n && n->kind == CONFIG_YNODE_SCALAR && !config_ynode_is_null(n) ? n->value : NULL;
}

static const config_ynode *get(const config_ynode *map, const char *key)
{
    if (!map || map->kind != CONFIG_YNODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->n; i++)
        if (map->items[2 * i]->kind == CONFIG_YNODE_SCALAR &&
            strcmp(map->items[2 * i]->value, key) == 0)
            return map->items[2 * i + 1];
    return NULL;
}

/* UnmarshalStrict's unknown-field check, with yaml.v2's message. */
static bool known_fields(const config_ynode *map, const char *type, const char *const *names,
                         size_t n, char **why)
{
    if (!map || map->kind != CONFIG_YNODE_MAP)
        return true;
    for (size_t i = 0; i < map->n; i++) {
        const config_ynode *k = map->items[2 * i];
        const char *kn = k->kind == CONFIG_YNODE_SCALAR ? k->value : "";
        size_t j = 0;
        while (j < n && strcmp(names[j], kn) != 0)
            j++;
        if (j == n) {
            *why = firn_xasprintf("yaml: unmarshal errors:\n  line %d: field %s not found in "
                                  "type main.%s", k->line, kn, type);
            return false;
        }
    }
    return true;
}

static bool duration_of(const config_ynode *n, int64_t *ms)
{
    const char *s = scalar(n);
    *ms = 0;
    if (!s)
        return true;
    firn_err e = {0};
    return firn_duration_parse(s, ms, &e) == 0;
}

static void report(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(struct out *o, const char *fmt, ...)
{
    if (!o->failed)
        fprintf(o->err, "  FAILED:\n");
    o->failed = true;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(o->err, fmt, ap);
    va_end(ap);
    fputc('\n', o->err);
    fflush(o->err);
    fputc('\n', o->out);   /* promtool's fmt.Println() after each error */
    fflush(o->out);
}

static char *labels_string(const firn_label *l, size_t n)
{
    return firn_labels_format(l, n);
}

struct la {
    firn_label *labels, *annotations;
    size_t n_labels, n_annotations;
};

static int la_cmp(const void *x, const void *y)
{
    const struct la *a = x, *b = y;
    for (size_t i = 0; i < a->n_labels && i < b->n_labels; i++) {
        int c = strcmp(a->labels[i].name, b->labels[i].name);
        if (!c)
            c = strcmp(a->labels[i].value, b->labels[i].value);
        if (c)
            return c;
    }
    return a->n_labels < b->n_labels ? -1 : a->n_labels > b->n_labels;
}

static bool la_equal(const struct la *a, size_t na, const struct la *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++) {
        if (a[i].n_labels != b[i].n_labels || a[i].n_annotations != b[i].n_annotations)
            return false;
        for (size_t k = 0; k < a[i].n_labels; k++)
            if (strcmp(a[i].labels[k].name, b[i].labels[k].name) ||
                strcmp(a[i].labels[k].value, b[i].labels[k].value))
                return false;
        for (size_t k = 0; k < a[i].n_annotations; k++)
            if (strcmp(a[i].annotations[k].name, b[i].annotations[k].name) ||
                strcmp(a[i].annotations[k].value, b[i].annotations[k].value))
                return false;
    }
    return true;
}

/* promtool's labelsAndAnnotations.String(), indented as its message does. */
static void la_string(firn_buf *b, const struct la *l, size_t n)
{
    if (n == 0) {
        firn_buf_puts(b, "[]");
        return;
    }
    firn_buf_puts(b, "[\n");
    for (size_t i = 0; i < n; i++) {
        char *ls = labels_string(l[i].labels, l[i].n_labels);
        char *as = labels_string(l[i].annotations, l[i].n_annotations);
        firn_buf_printf(b, "%s            %zu:\n              Labels:%s\n              "
                           "Annotations:%s",
                        i ? ",\n" : "", i, ls, as);
        free(ls);
        free(as);
    }
    firn_buf_puts(b, "\n            ]");
}

static void sort_labels(firn_label *l, size_t n)
{
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(l[j - 1].name, l[j].name) > 0; j--) {
            firn_label t = l[j];
            l[j] = l[j - 1];
            l[j - 1] = t;
        }
}

/* A YAML map of strings into a (sorted); NULL/absent is empty. */
static firn_label *string_map(firn_arena *a, const config_ynode *m, size_t *n)
{
    *n = 0;
    if (!m || m->kind != CONFIG_YNODE_MAP)
        return NULL;
    firn_label *l = firn_arena_alloc(a, (m->n + 2) * sizeof *l);
    if (!l)
        return NULL;
    for (size_t i = 0; i < m->n; i++) {
        const char *k = scalar(m->items[2 * i]), *v = scalar(m->items[2 * i + 1]);
        if (!k)
            continue;
        l[*n].name = k;
        l[*n].value = v ? v : "";
        (*n)++;
    }
    sort_labels(l, *n);
    return l;
}

static int strcmp_ptr(const void *a, const void *b)
{
    const char *x = *(char *const *)a, *y = *(char *const *)b;
    return strcmp(x ? x : "", y ? y : "");
}

struct ctx {
    struct out *o;
    const char *path;
    char **rule_files;
    size_t n_rule_files;
    int64_t eval_ms;
    const config_ynode *order;
    char tmpdir[256];
};

static int64_t eval_time_of(const config_ynode *tc)
{
    int64_t ms;
    duration_of(get(tc, "eval_time"), &ms);
    return ms;
}

/* One test group; its errors are reported. */
static void run_group(struct ctx *c, const config_ynode *tg, int index)
{
    struct out *o = c->o;
    firn_arena *a = firn_arena_new(0);
    if (!a)
        return;
    int64_t interval;
    duration_of(get(tg, "interval"), &interval);
    const char *name = scalar(get(tg, "name"));
    size_t n_ext;
    firn_label *ext = string_map(a, get(tg, "external_labels"), &n_ext);
    const char *ext_url = scalar(get(tg, "external_url"));
    /* a fresh store */
    snprintf(c->tmpdir, sizeof c->tmpdir, "%s/firn-test-rules-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(c->tmpdir)) {
        report(o, "%s: %s", c->tmpdir, strerror(errno));
        firn_arena_free(a);
        return;
    }
    tsdb_options to;
    tsdb_options_default(&to);
    to.path = c->tmpdir;
    to.retention_ms = 0;
    firn_err err = {0};
    tsdb *db = tsdb_open(&to, &err);
    rules_file **files = firn_xcalloc(c->n_rule_files + 1, sizeof *files);
    size_t n_files = 0;
    rules_group_rt **groups = NULL;
    size_t n_groups = 0, cap = 0;
    if (!db) {
        report(o, "%s", err.msg);
        goto out;
    }
    /* input series */
    const config_ynode *inputs = get(tg, "input_series");
    for (size_t i = 0; inputs && inputs->kind == CONFIG_YNODE_SEQ && i < inputs->n; i++) {
        const char *series = scalar(get(inputs->items[i], "series"));
        const char *values = scalar(get(inputs->items[i], "values"));
        firn_label *l;
        size_t nl;
        struct point *pts = NULL;
        size_t np = 0;
        if (parse_metric(a, series ? series : "", &l, &nl, &err) < 0 ||
            parse_values(values ? values : "", &pts, &np, &err) < 0) {
            report(o, "%s", err.msg);
            free(pts);
            goto out;
        }
        tsdb_float_sample *s = firn_xcalloc(np + 1, sizeof *s);
        size_t k = 0;
        for (size_t j = 0; j < np; j++)
            if (!pts[j].omitted)
                s[k++] = (tsdb_float_sample){l, nl, (int64_t)j * interval, pts[j].v};
        int rc = tsdb_append_floats(db, s, k, NULL, &err);
        free(s);
        free(pts);
        if (rc) {
            report(o, "%s", err.msg);
            goto out;
        }
    }
    /* the groups, in group_eval_order (unlisted ones first, in file order) */
    rules_eval_options eo = {.db = db, .external_labels = ext, .n_external_labels = n_ext,
                             .external_url = ext_url ? ext_url : ""};
    for (size_t i = 0; i < c->n_rule_files; i++) {
        rules_errors errs = {0};
        rules_file *f = rules_file_load(c->rule_files[i], &errs, &err);
        if (!f) {
            for (size_t k = 0; k < errs.n; k++)
                report(o, "%s", errs.lines[k]);
            if (!errs.n)
                report(o, "%s", err.msg);
            rules_errors_free(&errs);
            goto out;
        }
        files[n_files++] = f;
        for (size_t gi = 0; gi < f->n_groups; gi++) {
            groups = firn_grow(groups, n_groups, &cap, sizeof *groups, 8);
            groups[n_groups] = rules_group_rt_new(f, gi, interval, &eo, &err);
            groups[n_groups]->restored = true;
            n_groups++;
        }
    }
    const config_ynode *ord = c->order;
    for (size_t i = 1; i < n_groups; i++)
        for (size_t j = i; j > 0; j--) {
            long pj = 0, pp = 0;
            for (size_t k = 0; ord && ord->kind == CONFIG_YNODE_SEQ && k < ord->n; k++) {
                const char *gname = scalar(ord->items[k]);
                if (gname && strcmp(gname, groups[j]->group->name) == 0)
                    pj = (long)k;
                if (gname && strcmp(gname, groups[j - 1]->group->name) == 0)
                    pp = (long)k;
            }
            if (pp <= pj)
                break;
            rules_group_rt *t = groups[j];
            groups[j] = groups[j - 1];
            groups[j - 1] = t;
        }
    /* alert tests by eval time */
    const config_ynode *ats = get(tg, "alert_rule_test");
    size_t n_ats = ats && ats->kind == CONFIG_YNODE_SEQ ? ats->n : 0;
    int64_t maxt = 0;
    for (size_t i = 0; i < n_ats; i++) {
        if (!scalar(get(ats->items[i], "alertname"))) {
            char d[32];
            firn_duration_format(d, sizeof d, eval_time_of(ats->items[i]));
            if (name)
                report(o, "an item under alert_rule_test misses required attribute alertname at "
                       "eval_time %s (in TestGroup %s)", d, name);
            else
                report(o, "an item under alert_rule_test misses required attribute alertname at "
                       "eval_time %s", d);
            goto out;
        }
        if (eval_time_of(ats->items[i]) > maxt)
            maxt = eval_time_of(ats->items[i]);
    }
    const config_ynode *pts = get(tg, "promql_expr_test");
    size_t n_pts = pts && pts->kind == CONFIG_YNODE_SEQ ? pts->n : 0;
    for (size_t i = 0; i < n_pts; i++)
        if (eval_time_of(pts->items[i]) > maxt)
            maxt = eval_time_of(pts->items[i]);
    bool *done = firn_xcalloc(n_ats + 1, sizeof *done);
    for (int64_t ts = 0; ts <= maxt; ts += c->eval_ms) {
        bool rule_err = false;
        for (size_t g = 0; g < n_groups; g++) {
            rules_group_rt_eval(groups[g], ts);
            for (size_t r = 0; r < groups[g]->n_rules; r++)
                if (groups[g]->rules[r].health == RULES_HEALTH_ERR) {
                    char d[32];
                    go_duration(d, sizeof d, ts);
                    report(o, "    rule: %s, time: %s, err: %s", groups[g]->rules[r].rule->name,
                           d, groups[g]->rules[r].last_error);
                    rule_err = true;
                }
        }
        if (rule_err) {
            free(done);
            goto out;
        }
        for (size_t i = 0; i < n_ats; i++) {
            int64_t t = eval_time_of(ats->items[i]);
            if (done[i] || !(ts <= t && t < ts + c->eval_ms))
                continue;
            done[i] = true;
            const char *alertname = scalar(get(ats->items[i], "alertname"));
            /* got: firing alerts of rules with that name, in every group */
            struct la got[256], exp[256];
            size_t ng = 0, ne = 0;
            for (size_t g = 0; g < n_groups; g++)
                for (size_t r = 0; r < groups[g]->n_rules; r++) {
                    rules_rule_rt *rr = &groups[g]->rules[r];
                    if (!rr->rule->alert || strcmp(rr->rule->name, alertname) != 0)
                        continue;
                    for (size_t k = 0; k < rr->n_alerts && ng < 256; k++)
                        if (rr->alerts[k].state == RULES_FIRING)
                            got[ng++] = (struct la){rr->alerts[k].labels,
                                                    rr->alerts[k].annotations,
                                                    rr->alerts[k].n_labels,
                                                    rr->alerts[k].n_annotations};
                }
            const config_ynode *ea = get(ats->items[i], "exp_alerts");
            for (size_t k = 0; ea && ea->kind == CONFIG_YNODE_SEQ && k < ea->n && ne < 256; k++) {
                size_t nl, na;
                const firn_label *el = string_map(a, get(ea->items[k], "exp_labels"), &nl);
                firn_label *l = firn_arena_alloc(a, (nl + 2) * sizeof *l);
                size_t m = 0;
                for (size_t q = 0; el && q < nl; q++)
                    if (strcmp(el[q].name, "alertname") != 0)
                        l[m++] = el[q];
                l[m].name = "alertname";
                l[m].value = alertname;
                m++;
                sort_labels(l, m);
                firn_label *an = string_map(a, get(ea->items[k], "exp_annotations"), &na);
                exp[ne++] = (struct la){l, an, m, na};
            }
            firn_sort(got, ng, sizeof *got, la_cmp);
            firn_sort(exp, ne, sizeof *exp, la_cmp);
            if (!la_equal(exp, ne, got, ng)) {
                firn_buf b = {0};
                char d[32];
                firn_duration_format(d, sizeof d, t);
                if (name)
                    firn_buf_printf(&b, "    name: %s,\n", name);
                firn_buf_printf(&b, "    alertname: %s, time: %s, \n        exp:", alertname, d);
                la_string(&b, exp, ne);
                firn_buf_puts(&b, ", \n        got:");
                la_string(&b, got, ng);
                report(o, "%s", b.data ? b.data : "");
                firn_buf_free(&b);
            }
        }
    }
    free(done);
    /* PromQL tests after every evaluation */
    for (size_t i = 0; i < n_pts; i++) {
        const config_ynode *tc = pts->items[i];
        const char *expr = scalar(get(tc, "expr"));
        int64_t t = eval_time_of(tc);
        char d[32];
        firn_duration_format(d, sizeof d, t);
        pql_query q;
        pql_result res = {0};
        int rc = pql_parse(expr ? expr : "", &q, &err);
        if (rc == 0) {
            tsdb_reader *rd = tsdb_reader_open(db, &err);
            rc = rd ? pql_eval_instant(rd, &q, t, NULL, &res, &err) : -1;
            if (rd)
                tsdb_reader_close(rd);
            pql_query_free(&q);
        }
        if (rc) {
            report(o, "    expr: \"%s\", time: %s, err: %s", expr ? expr : "", d, err.msg);
            continue;
        }
        /* got and expected: "labels value" lines, sorted */
        size_t ng = res.type == PQL_TYPE_SCALAR ? 1 : res.n_series;
        char **gl = firn_xcalloc(ng + 1, sizeof *gl);
        for (size_t k = 0; k < ng; k++) {
            char v[48];
            double val = res.type == PQL_TYPE_SCALAR
                             ? res.scalar
                             : res.series[k].points[res.series[k].n_points - 1].v;
            rules_format_float_e(v, sizeof v, val);
            for (char *p = v; *p; p++)
                *p = *p == 'e' ? 'E' : *p;
            char *ls = res.type == PQL_TYPE_SCALAR
                           ? firn_xstrdup("{}")
                           : labels_string(res.series[k].labels, res.series[k].n_labels);
            gl[k] = firn_xasprintf("%s %s%s", ls, v, isnan(val) ? "\x01" : "");
            free(ls);
        }
        pql_result_free(&res);
        const config_ynode *es = get(tc, "exp_samples");
        size_t ne = es && es->kind == CONFIG_YNODE_SEQ ? es->n : 0;
        char **el = firn_xcalloc(ne + 1, sizeof *el);
        bool bad = false;
        for (size_t k = 0; k < ne; k++) {
            const char *lbl = scalar(get(es->items[k], "labels"));
            const char *val = scalar(get(es->items[k], "value"));
            firn_label *l;
            size_t nl;
            if (parse_metric(a, lbl ? lbl : "", &l, &nl, &err) < 0) {
                report(o, "    expr: \"%s\", time: %s, err: labels \"%s\": %s", expr, d,
                       lbl ? lbl : "", err.msg);
                bad = true;
                break;
            }
            char v[48];
            double dv = val ? strtod(val, NULL) : 0;
            rules_format_float_e(v, sizeof v, dv);
            for (char *p = v; *p; p++)
                *p = *p == 'e' ? 'E' : *p;
            char *ls = labels_string(l, nl);
            el[k] = firn_xasprintf("%s %s", ls, v);
            free(ls);
        }
        if (!bad) {
            firn_sort(gl, ng, sizeof *gl, strcmp_ptr);
            firn_sort(el, ne, sizeof *el, strcmp_ptr);
            bool same = ng == ne;
            for (size_t k = 0; same && k < ng; k++)
                same = strcmp(gl[k], el[k]) == 0;
            if (!same) {
                firn_buf b = {0};
                firn_buf_printf(&b, "    expr: \"%s\", time: %s,\n        exp: ", expr, d);
                for (size_t k = 0; k < ne; k++)
                    firn_buf_printf(&b, "%s%s", k ? ", " : "", el[k]);
                if (!ne)
                    firn_buf_puts(&b, "nil");
                firn_buf_puts(&b, "\n        got: ");
                for (size_t k = 0; k < ng; k++) {
                    char *g = gl[k];
                    size_t gl_len = strlen(g);
                    if (gl_len && g[gl_len - 1] == '\x01')
                        g[gl_len - 1] = 0;
                    firn_buf_printf(&b, "%s%s", k ? ", " : "", g);
                }
                if (!ng)
                    firn_buf_puts(&b, "nil");
                report(o, "%s", b.data ? b.data : "");
                firn_buf_free(&b);
            }
        }
        for (size_t k = 0; k < ng; k++)
            free(gl[k]);
        for (size_t k = 0; k < ne; k++)
            free(el[k]);
        free(gl);
        free(el);
    }
    (void)index;
out:
    for (size_t g = 0; g < n_groups; g++)
        rules_group_rt_free(groups[g]);
    free(groups);
    for (size_t i = 0; i < n_files; i++)
        rules_file_free(files[i]);
    free(files);
    tsdb_close(db);
    /* the temporary store */
    char cmd_path[300];
    const char *names[] = {"data.mdb", "lock.mdb", "firn.lock"};
    for (size_t i = 0; i < 3; i++) {
        snprintf(cmd_path, sizeof cmd_path, "%s/%s", c->tmpdir, names[i]);
        unlink(cmd_path);
    }
    rmdir(c->tmpdir);
    firn_arena_free(a);
}

int rules_unittest_file(const char *path, FILE *out, FILE *errf)
{
    struct out o = {out, errf, false};
    fprintf(out, "Unit Testing:  %s\n", path);
    fflush(out);
    firn_arena *a = firn_arena_new(0);
    unsigned char *buf = NULL;
    size_t len = 0;
    firn_err err = {0};
    config_ynode *root = NULL;
    int line, col;
    struct ctx c = {.o = &o, .path = path, .eval_ms = 60000};
    if (firn_read_file(path, RULES_FILE_MAX, &buf, &len, &err) < 0) {
        report(&o, "%s", err.msg);
        goto done;
    }
    if (config_ytree_parse((const char *)buf, len, a, &root, &line, &col, &err) < 0) {
        report(&o, "yaml: line %d: %s", line, strchr(err.msg, ' ') ? strchr(err.msg, ' ') + 1
                                                                  : err.msg);
        goto done;
    }
    static const char *const top[] = {"rule_files", "evaluation_interval", "group_eval_order",
                                      "tests"};
    static const char *const tg_f[] = {"interval", "input_series", "alert_rule_test",
                                       "promql_expr_test", "external_labels", "external_url",
                                       "name"};
    char *why = NULL;
    bool ok = known_fields(root, "unitTestFile", top, 4, &why);
    const config_ynode *tests = get(root, "tests");
    for (size_t i = 0; ok && tests && tests->kind == CONFIG_YNODE_SEQ && i < tests->n; i++)
        ok = known_fields(tests->items[i], "testGroup", tg_f, 7, &why);
    if (!ok) {
        report(&o, "%s", why);
        free(why);
        goto done;
    }
    if (!duration_of(get(root, "evaluation_interval"), &c.eval_ms) || c.eval_ms < 0) {
        report(&o, "not a valid duration string: \"%s\"",
               scalar(get(root, "evaluation_interval")));
        goto done;
    }
    if (c.eval_ms == 0)
        c.eval_ms = 60000;
    /* rule files: relative to the test file's directory, globbed */
    char *copy = firn_xstrdup(path);
    const char *dir = dirname(copy);
    const config_ynode *rf = get(root, "rule_files");
    size_t cap = 0;
    for (size_t i = 0; rf && rf->kind == CONFIG_YNODE_SEQ && i < rf->n; i++) {
        const char *p = scalar(rf->items[i]);
        if (!p)
            continue;
        char *full = p[0] == '/' || strcmp(dir, ".") == 0 ? firn_xstrdup(p)
                                                           : firn_xasprintf("%s/%s", dir, p);
        glob_t gl;
        int grc = glob(full, 0, NULL, &gl);
        if (grc == GLOB_NOSPACE)
            firn_oom(0);   /* glob's own allocation failed */
        if (grc == GLOB_NOMATCH)
            fprintf(errf, "  WARNING: no file match pattern %s\n", full);
        for (size_t k = 0; grc == 0 && k < gl.gl_pathc; k++) {
            c.rule_files = firn_grow(c.rule_files, c.n_rule_files, &cap, sizeof *c.rule_files, 8);
            c.rule_files[c.n_rule_files++] = firn_xstrdup(gl.gl_pathv[k]);
        }
        if (grc == 0)
            globfree(&gl);
        free(full);
    }
    free(copy);
    const config_ynode *order = get(root, "group_eval_order");
    for (size_t i = 0; order && order->kind == CONFIG_YNODE_SEQ && i < order->n; i++)
        for (size_t j = 0; j < i; j++)
            if (scalar(order->items[i]) && scalar(order->items[j]) &&
                strcmp(scalar(order->items[i]), scalar(order->items[j])) == 0) {
                report(&o, "group name repeated in evaluation order: %s",
                       scalar(order->items[i]));
                goto done;
            }
    c.order = order;
    for (size_t i = 0; tests && tests->kind == CONFIG_YNODE_SEQ && i < tests->n; i++)
        run_group(&c, tests->items[i], (int)i);
done:
    if (!o.failed)
        fprintf(out, "  SUCCESS\n");
    fprintf(out, "\n");
    fflush(out);
    for (size_t i = 0; i < c.n_rule_files; i++)
        free(c.rule_files[i]);
    free(c.rule_files);
    free(buf);
    firn_arena_free(a);
    return o.failed ? 1 : 0;
}
