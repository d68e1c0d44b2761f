/* eval.c -- evaluating one rule group at a slot time: recording rules into
 * float series, alerting rules through Prometheus's state machine
 * (rules/alerting.go, rules/group.go, 2.42), stale markers, ALERTS and
 * ALERTS_FOR_STATE, sending, and the for-state restore.
 *
 * Invariants:
 *  - a rule's output is committed before the next rule is evaluated;
 *  - a rule that errs writes nothing and marks nothing stale;
 *  - alert times (active, fired, resolved, sent) are slot times, never the
 *    wall clock;
 *  - the reserved pseudo-label __function__ never reaches a result, a
 *    recorded series or an alert (the query layer does not put it in
 *    results; it is dropped here as well, so no path can leak it).
 */
#include "rules/rules.h"

#include "internal.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>

#define RESOLVED_RETENTION_MS (15 * 60 * 1000)

/* ---- label sets ---------------------------------------------------------------- */

/* A label set in one allocation (array then strings). */
firn_label *rules_labels_pack(const firn_label *l, size_t n)
{
    size_t bytes = (n + 1) * sizeof(firn_label);
    for (size_t i = 0; i < n; i++)
        bytes += strlen(l[i].name) + strlen(l[i].value) + 2;
    firn_label *out = firn_xmalloc(bytes);
    char *p = (char *)(out + n + 1);
    for (size_t i = 0; i < n; i++) {
        size_t a = strlen(l[i].name) + 1, b = strlen(l[i].value) + 1;
        memcpy(p, l[i].name, a);
        out[i].name = p;
        p += a;
        memcpy(p, l[i].value, b);
        out[i].value = p;
        p += b;
    }
    assert(p == (char *)out + bytes);
    return out;
}

static uint64_t labels_hash(const firn_label *l, size_t n)
{
    XXH3_state_t state;
    XXH3_state_t *st = &state;
    XXH3_64bits_reset(st);
    static const char sep = (char)0xff;
    for (size_t i = 0; i < n; i++) {
        XXH3_64bits_update(st, l[i].name, strlen(l[i].name));
        XXH3_64bits_update(st, &sep, 1);
        XXH3_64bits_update(st, l[i].value, strlen(l[i].value));
        XXH3_64bits_update(st, &sep, 1);
    }
    return XXH3_64bits_digest(st);
}

static bool labels_equal(const firn_label *a, size_t na, const firn_label *b, size_t nb)
{
    if (na != nb)
        return false;
    for (size_t i = 0; i < na; i++)
        if (strcmp(a[i].name, b[i].name) || strcmp(a[i].value, b[i].value))
            return false;
    return true;
}

static int cmp_name(const void *x, const void *y)
{
    return strcmp(((const firn_label *)x)->name, ((const firn_label *)y)->name);
}

/* A growable label set under construction: labels.Builder's Set (an empty
 * value deletes) and Del. */
struct builder {
    firn_label l[FIRN_LABELS_MAX + 8];
    size_t n;
};

static void b_del(struct builder *b, const char *name)
{
    for (size_t i = 0; i < b->n; i++)
        if (strcmp(b->l[i].name, name) == 0) {
            b->l[i] = b->l[--b->n];
            return;
        }
}

static void b_set(struct builder *b, const char *name, const char *value)
{
    b_del(b, name);
    if (!value[0] || b->n >= sizeof b->l / sizeof *b->l)
        return;
    b->l[b->n].name = name;
    b->l[b->n].value = value;
    b->n++;
}

static void b_init(struct builder *b, const firn_label *l, size_t n)
{
    b->n = 0;
    for (size_t i = 0; i < n && b->n < sizeof b->l / sizeof *b->l; i++)
        if (strcmp(l[i].name, PQL_FUNCTION_LABEL) != 0)
            b->l[b->n++] = l[i];
}

static void b_sort(struct builder *b)
{
    firn_sort(b->l, b->n, sizeof *b->l, cmp_name);
}

/* ---- runtime ------------------------------------------------------------------ */

static void prev_clear(rules_rule_rt *r)
{
    for (size_t i = 0; i < r->n_prev; i++)
        free(r->prev[i]);
    free(r->prev);
    free(r->prev_n);
    r->prev = NULL;
    r->prev_n = NULL;
    r->n_prev = 0;
}

static void alert_free(rules_alert *a)
{
    free(a->labels);
    free(a->annotations);
    memset(a, 0, sizeof *a);
}

static void rule_rt_clear(rules_rule_rt *r)
{
    prev_clear(r);
    for (size_t i = 0; i < r->n_alerts; i++)
        alert_free(&r->alerts[i]);
    free(r->alerts);
    r->alerts = NULL;
    r->n_alerts = r->cap_alerts = 0;
}

rules_group_rt *rules_group_rt_new(const rules_file *f, size_t gi, int64_t default_interval_ms,
                                   const rules_eval_options *o, firn_err *err)
{
    const rules_group *grp = &f->groups[gi];
    (void)err;   /* nothing left that can fail: see rules.h */
    rules_group_rt *g = firn_xcalloc(1, sizeof *g);
    g->rules = firn_xcalloc(grp->n_rules + 1, sizeof *g->rules);
    g->key = firn_xasprintf("%s;%s", f->path, grp->name);
    g->file = f;
    g->group = grp;
    g->interval_ms = grp->interval_ms > 0 ? grp->interval_ms : default_interval_ms;
    g->opts = *o;
    if (g->opts.resend_delay_ms <= 0)
        g->opts.resend_delay_ms = 60 * 1000;
    if (g->opts.outage_tolerance_ms <= 0)
        g->opts.outage_tolerance_ms = 3600 * 1000;
    if (g->opts.for_grace_period_ms <= 0)
        g->opts.for_grace_period_ms = 10 * 60 * 1000;
    g->n_rules = grp->n_rules;
    for (size_t i = 0; i < grp->n_rules; i++)
        g->rules[i].rule = &grp->rules[i];
    pthread_mutex_init(&g->mu, NULL);
    return g;
}

void rules_group_rt_free(rules_group_rt *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->n_rules; i++)
        rule_rt_clear(&g->rules[i]);
    free(g->rules);
    free(g->key);
    pthread_mutex_destroy(&g->mu);
    free(g);
}

int64_t rules_group_rt_offset(const rules_group_rt *g)
{
    /* labels{file=..., name=...}.Hash() of Prometheus 2.42: xxhash64 of
     * "file\xff<file>\xffname\xff<name>\xff" */
    if (g->interval_ms <= 0)
        return 0;
    char *buf = firn_xasprintf("file\xff%s\xffname\xff%s\xff", g->file->path, g->group->name);
    uint64_t h = XXH64(buf, strlen(buf), 0);
    free(buf);
    return (int64_t)(h % ((uint64_t)g->interval_ms * 1000000u) / 1000000u);
}

/* ---- writing -------------------------------------------------------------------- */

struct out_series {
    firn_label *labels;          /* packed, sorted */
    size_t n;
    double v;
};

struct outset {
    struct out_series *s;
    size_t n, cap;
};

static void outset_add(struct outset *o, const firn_label *l, size_t n, double v)
{
    o->s = firn_grow(o->s, o->n, &o->cap, sizeof *o->s, 16);
    o->s[o->n++] = (struct out_series){rules_labels_pack(l, n), n, v};
}

static void outset_free(struct outset *o)
{
    for (size_t i = 0; i < o->n; i++)
        free(o->s[i].labels);
    free(o->s);
    memset(o, 0, sizeof *o);
}

/* Writes the rule's output at ts plus stale markers for what it wrote last
 * time and not now; then the output becomes "last time". */
static int commit_output(rules_group_rt *g, rules_rule_rt *r, struct outset *o, int64_t ts,
                         firn_err *err)
{
    size_t n = o->n + r->n_prev;
    tsdb_float_sample *samples = firn_xcalloc(n + 1, sizeof *samples);
    size_t k = 0;
    for (size_t i = 0; i < o->n; i++)
        samples[k++] = (tsdb_float_sample){o->s[i].labels, o->s[i].n, ts, o->s[i].v};
    for (size_t i = 0; i < r->n_prev; i++) {
        bool still = false;
        for (size_t j = 0; j < o->n && !still; j++)
            still = labels_equal(r->prev[i], r->prev_n[i], o->s[j].labels, o->s[j].n);
        if (!still)
            samples[k++] = (tsdb_float_sample){r->prev[i], r->prev_n[i], ts, tsdb_stale_nan()};
    }
    assert(k <= n);
    size_t dropped = 0;
    int rc = k ? tsdb_append_floats(g->opts.db, samples, k, &dropped, err) : 0;
    if (!rc && k && g->opts.written)
        g->opts.written(g->opts.written_ctx, samples, k);
    free(samples);
    if (rc)
        return rc;
    if (dropped)
        firn_log(FIRN_LOG_WARN, "rules", "samples of a rule's result were dropped by the store",
                 "group=\"%s\" rule=\"%s\" num_dropped=%zu", g->group->name, r->rule->name,
                 dropped);
    prev_clear(r);
    r->prev = firn_xcalloc(o->n + 1, sizeof *r->prev);
    r->prev_n = firn_xcalloc(o->n + 1, sizeof *r->prev_n);
    for (size_t i = 0; i < o->n; i++) {
        r->prev[i] = o->s[i].labels;
        r->prev_n[i] = o->s[i].n;
        o->s[i].labels = NULL;
    }
    r->n_prev = o->n;
    g->last_samples += o->n;
    return 0;
}

/* ---- querying ------------------------------------------------------------------- */

struct sample {
    const firn_label *labels;
    size_t n;
    double v;
};

/* An instant query at `at` within the server's query limits: a slot of
 * --query.max-concurrency (taken before the reader, which pins the store's
 * pages while it waits) and --query.max-samples. */
static int eval_limited(const rules_eval_options *o, const pql_query *q, int64_t at,
                        pql_result *res, firn_err *err)
{
    pql_eval_options po = o->pql;
    if (o->limits)
        po.max_samples = pql_limits_samples(o->limits);
    pql_limits_enter(o->limits);
    tsdb_reader *rd = tsdb_reader_open(o->db, err);
    int rc = rd ? pql_eval_instant(rd, q, at, &po, res, err)
                : err && err->code ? err->code : FIRN_EIO;
    tsdb_reader_close(rd);
    pql_limits_leave(o->limits, rc);
    return rc;
}

static int query(rules_group_rt *g, const rules_rule *rule, int64_t ts, pql_result *res,
                 struct sample **out, size_t *n, firn_err *err)
{
    *out = NULL;
    *n = 0;
    int rc = eval_limited(&g->opts, &rule->query,
                          ts - (g->group->has_query_offset ? g->group->query_offset_ms : 0),
                          res, err);
    if (rc)
        return rc;
    if (res->type == PQL_TYPE_SCALAR) {
        *out = firn_xcalloc(1, sizeof **out);
        (*out)[0] = (struct sample){NULL, 0, res->scalar};
        *n = 1;
        return 0;
    }
    if (res->type != PQL_TYPE_VECTOR)
        return firn_errf(err, FIRN_EINVAL, "rule result is not a vector or scalar");
    /* sized by the result, already in memory under the query's caps */
    *out = firn_xcalloc(res->n_series + 1, sizeof **out);
    for (size_t i = 0; i < res->n_series; i++) {
        const pql_series *s = &res->series[i];
        (*out)[i] = (struct sample){s->labels, s->n_labels, s->points[s->n_points - 1].v};
    }
    *n = res->n_series;
    return 0;
}

/* ---- recording rules ------------------------------------------------------------ */

static int eval_recording(rules_group_rt *g, rules_rule_rt *r, int64_t ts, firn_err *err)
{
    const rules_rule *rule = r->rule;
    pql_result res = {0};
    struct sample *s;
    size_t n;
    int rc = query(g, rule, ts, &res, &s, &n, err);
    struct outset o = {0};
    struct builder *b = firn_xmalloc(sizeof *b);
    for (size_t i = 0; i < n && !rc; i++) {
        b_init(b, s[i].labels, s[i].n);
        b_set(b, FIRN_LABEL_NAME, rule->name);
        for (size_t j = 0; j < rule->n_labels; j++)
            b_set(b, rule->labels[j].name, rule->labels[j].value);
        b_sort(b);
        for (size_t j = 0; j < o.n && !rc; j++)
            if (labels_equal(o.s[j].labels, o.s[j].n, b->l, b->n))
                rc = firn_errf(err, FIRN_EINVAL, "vector contains metrics with the same "
                               "labelset after applying rule labels");
        if (!rc)
            outset_add(&o, b->l, b->n, s[i].v);
    }
    if (!rc && g->group->limit > 0 && (int64_t)o.n > g->group->limit)
        rc = firn_errf(err, FIRN_EINVAL, "exceeded limit of %lld with %zu series",
                       (long long)g->group->limit, o.n);
    if (!rc)
        rc = commit_output(g, r, &o, ts, err);
    outset_free(&o);
    free(b);
    free(s);
    if (res.arena)
        pql_result_free(&res);
    return rc;
}

/* ---- alerting rules --------------------------------------------------------------- */

struct template_query {
    const rules_group_rt *g;
    int64_t ts;
};

/* A template's `query`: an instant query at the rule's evaluation time. */
static int template_query(void *ctx, const char *expr, firn_arena *a, rules_sample **out,
                          size_t *n, firn_err *err)
{
    const struct template_query *tq = ctx;
    pql_query q;
    *out = NULL;
    *n = 0;
    if (pql_parse(expr, &q, err) < 0)
        return err ? err->code : FIRN_EINVAL;
    pql_result res = {0};
    int rc = eval_limited(&tq->g->opts, &q, tq->ts, &res, err);
    pql_query_free(&q);
    if (rc)
        return rc;
    size_t count = res.type == PQL_TYPE_SCALAR ? 1 : res.type == PQL_TYPE_VECTOR ? res.n_series : 0;
    if (res.type != PQL_TYPE_SCALAR && res.type != PQL_TYPE_VECTOR)
        rc = firn_errf(err, FIRN_EINVAL, "query result is not a vector or scalar");
    rules_sample *s = rc ? NULL : firn_arena_calloc(a, count + 1, sizeof *s);
    for (size_t i = 0; !rc && i < count; i++) {
        if (res.type == PQL_TYPE_SCALAR) {
            s[i].value = res.scalar;
            continue;
        }
        const pql_series *ps = &res.series[i];
        s[i].value = ps->points[ps->n_points - 1].v;
        s[i].labels = firn_arena_alloc(a, (ps->n_labels + 1) * sizeof *s[i].labels);
        for (size_t k = 0; k < ps->n_labels; k++) {
            s[i].labels[k].name = firn_arena_strdup(a, ps->labels[k].name);
            s[i].labels[k].value = firn_arena_strdup(a, ps->labels[k].value);
        }
        s[i].n_labels = ps->n_labels;
    }
    pql_result_free(&res);
    if (rc)
        return rc;
    *out = s;
    *n = count;
    return 0;
}

static char *expand(const rules_group_rt *g, const rules_rule *rule, const char *text,
                    const firn_label *labels, size_t n, double v, int64_t ts)
{
    struct template_query tq = {g, ts};
    rules_template_data d = {.labels = labels, .n_labels = n,
                             .external_labels = g->opts.external_labels,
                             .n_external_labels = g->opts.n_external_labels,
                             .external_url = g->opts.external_url ? g->opts.external_url : "",
                             .value = v, .query = template_query, .query_ctx = &tq};
    char name[300];
    snprintf(name, sizeof name, "__alert_%s", rule->name);
    return rules_template_expand_text(name, text, &d);
}

static rules_alert *find_alert(rules_rule_rt *r, uint64_t hash, const firn_label *l, size_t n)
{
    for (size_t i = 0; i < r->n_alerts; i++)
        if (r->alerts[i].hash == hash &&
            labels_equal(r->alerts[i].labels, r->alerts[i].n_labels, l, n))
            return &r->alerts[i];
    return NULL;
}

static void remove_alert(rules_rule_rt *r, size_t i)
{
    alert_free(&r->alerts[i]);
    r->alerts[i] = r->alerts[--r->n_alerts];
}

/* One sample turned into an alert's labels and annotations: malloc'd packed
 * sets, or an error. */
struct built {
    firn_label *labels, *annotations;
    size_t n_labels, n_annotations;
    uint64_t hash;
    double v;
};

static void built_free(struct built *b)
{
    free(b->labels);
    free(b->annotations);
}

static int build_alert(const rules_group_rt *g, const rules_rule *rule, const struct sample *s,
                       int64_t ts, struct built *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    (void)err;   /* a template's error is its text, as Prometheus's */
    struct builder *b = firn_xmalloc(sizeof *b);
    char **vals = firn_xcalloc(rule->n_labels + rule->n_annotations + 1, sizeof *vals);
    firn_label *ann = firn_xcalloc(rule->n_annotations + 1, sizeof *ann);
    firn_label *tl = firn_xcalloc(s->n + 1, sizeof *tl);   /* template labels: __name__ kept */
    size_t ntl = 0;
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->labels[i].name, PQL_FUNCTION_LABEL) != 0)
            tl[ntl++] = s->labels[i];
    b_init(b, s->labels, s->n);
    b_del(b, FIRN_LABEL_NAME);
    for (size_t i = 0; i < rule->n_labels; i++) {
        vals[i] = expand(g, rule, rule->labels[i].value, tl, ntl, s->v, ts);
        b_set(b, rule->labels[i].name, vals[i]);
    }
    b_set(b, "alertname", rule->name);
    b_sort(b);
    for (size_t i = 0; i < rule->n_annotations; i++) {
        char *v = expand(g, rule, rule->annotations[i].value, tl, ntl, s->v, ts);
        vals[rule->n_labels + i] = v;
        ann[i].name = rule->annotations[i].name;
        ann[i].value = v;
    }
    out->labels = rules_labels_pack(b->l, b->n);
    out->n_labels = b->n;
    out->annotations = rules_labels_pack(ann, rule->n_annotations);
    out->n_annotations = rule->n_annotations;
    out->hash = labels_hash(b->l, b->n);
    out->v = s->v;
    for (size_t i = 0; i < rule->n_labels + rule->n_annotations; i++)
        free(vals[i]);
    free(vals);
    free(ann);
    free(tl);
    free(b);
    return 0;
}

/* Go's url.QueryEscape. */
static void query_escape(firn_buf *b, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
            *p == '-' || *p == '_' || *p == '.' || *p == '~')
            firn_buf_append(b, p, 1);
        else if (*p == ' ')
            firn_buf_puts(b, "+");
        else
            firn_buf_printf(b, "%%%02X", *p);
    }
}

static void send_alerts(rules_group_rt *g, rules_rule_rt *r, int64_t ts)
{
    if (!g->opts.send)
        return;
    rules_notification *due = firn_xcalloc(r->n_alerts + 1, sizeof *due);
    /* generatorURL: firn's UI with the expression (Prometheus points at its
     * /graph page) */
    firn_buf url = {0};
    const char *base = g->opts.external_url ? g->opts.external_url : "";
    size_t bl = strlen(base);
    while (bl && base[bl - 1] == '/')
        bl--;
    firn_buf_append(&url, base, bl);
    firn_buf_puts(&url, "/?query=");
    query_escape(&url, r->rule->expr);
    int64_t interval = g->interval_ms > g->opts.resend_delay_ms ? g->interval_ms
                                                                : g->opts.resend_delay_ms;
    size_t n = 0;
    for (size_t i = 0; i < r->n_alerts; i++) {
        rules_alert *a = &r->alerts[i];
        assert(firn_labels_get(a->labels, a->n_labels, "alertname"));   /* always set */
        /* needsSending */
        if (a->state == RULES_PENDING)
            continue;
        bool due_now = (a->resolved_at_ms && a->resolved_at_ms > a->last_sent_ms) ||
                       a->last_sent_ms + g->opts.resend_delay_ms < ts;
        if (!due_now)
            continue;
        a->last_sent_ms = ts;
        a->valid_until_ms = ts + 4 * interval;
        due[n++] = (rules_notification){a->labels, a->n_labels, a->annotations,
                                        a->n_annotations, a->fired_at_ms,
                                        a->resolved_at_ms ? a->resolved_at_ms : a->valid_until_ms,
                                        url.data ? url.data : ""};
    }
    if (n)
        g->opts.send(g->opts.send_ctx, due, n);
    free(due);
    firn_buf_free(&url);
}

static int eval_alerting(rules_group_rt *g, rules_rule_rt *r, int64_t ts, firn_err *err)
{
    const rules_rule *rule = r->rule;
    pql_result res = {0};
    struct sample *s = NULL;
    size_t n = 0;
    int rc = query(g, rule, ts, &res, &s, &n, err);
    struct built *bs = rc ? NULL : firn_xcalloc(n + 1, sizeof *bs);
    size_t nb = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if ((rc = build_alert(g, rule, &s[i], ts, &bs[nb], err)))
            break;
        for (size_t j = 0; j < nb && !rc; j++)
            if (bs[j].hash == bs[nb].hash &&
                labels_equal(bs[j].labels, bs[j].n_labels, bs[nb].labels, bs[nb].n_labels)) {
                rc = firn_errf(err, FIRN_EINVAL, "vector contains metrics with the same "
                               "labelset after applying alert labels");
                built_free(&bs[nb]);
            }
        if (!rc)
            nb++;
    }
    free(s);
    if (res.arena)
        pql_result_free(&res);
    if (rc) {
        for (size_t i = 0; i < nb; i++)
            built_free(&bs[i]);
        free(bs);
        return rc;
    }
    /* present: update, or a new pending alert (a resolved one is replaced) */
    bool *seen = firn_xcalloc(r->n_alerts + nb + 1, sizeof *seen);
    for (size_t i = 0; i < nb; i++) {
        rules_alert *a = find_alert(r, bs[i].hash, bs[i].labels, bs[i].n_labels);
        if (a && a->state != RULES_INACTIVE) {
            a->value = bs[i].v;
            free(a->annotations);
            a->annotations = bs[i].annotations;
            a->n_annotations = bs[i].n_annotations;
            bs[i].annotations = NULL;
            free(bs[i].labels);
            bs[i].labels = NULL;
            a->keep_firing_since_ms = 0;
            seen[a - r->alerts] = true;
            continue;
        }
        if (!a) {
            r->alerts = firn_grow(r->alerts, r->n_alerts, &r->cap_alerts, sizeof *r->alerts, 8);
            a = &r->alerts[r->n_alerts++];
        } else {
            alert_free(a);
        }
        *a = (rules_alert){.labels = bs[i].labels, .n_labels = bs[i].n_labels,
                           .annotations = bs[i].annotations,
                           .n_annotations = bs[i].n_annotations, .state = RULES_PENDING,
                           .value = bs[i].v, .hash = bs[i].hash, .active_at_ms = ts,
                           .last_sent_ms = INT64_MIN / 2};
        seen[a - r->alerts] = true;
    }
    free(bs);
    /* absent: keep firing, delete (pending, or resolved for long), or resolve */
    size_t active = 0;
    for (size_t i = r->n_alerts; i-- > 0;) {
        rules_alert *a = &r->alerts[i];
        bool keep = false;
        if (!seen[i]) {
            if (a->state == RULES_FIRING && rule->keep_firing_for_ms > 0) {
                if (!a->keep_firing_since_ms)
                    a->keep_firing_since_ms = ts;
                keep = ts - a->keep_firing_since_ms < rule->keep_firing_for_ms;
            }
            if (a->state == RULES_PENDING ||
                (a->resolved_at_ms && ts - a->resolved_at_ms > RESOLVED_RETENTION_MS)) {
                remove_alert(r, i);
                seen[i] = seen[r->n_alerts];
                continue;
            }
            if (a->state != RULES_INACTIVE && !keep) {
                a->state = RULES_INACTIVE;
                a->resolved_at_ms = ts;
            }
            if (!keep)
                continue;
        }
        if (a->state == RULES_PENDING && ts - a->active_at_ms >= rule->for_ms) {
            a->state = RULES_FIRING;
            a->fired_at_ms = ts;
        }
        if (a->state != RULES_INACTIVE)
            active++;
    }
    free(seen);
    assert(active <= r->n_alerts);
    if (g->group->limit > 0 && (int64_t)active > g->group->limit) {
        /* cleared without resolving: Alertmanager expires them at endsAt */
        for (size_t i = 0; i < r->n_alerts; i++)
            alert_free(&r->alerts[i]);
        r->n_alerts = 0;
        return firn_errf(err, FIRN_EINVAL, "exceeded limit of %lld with %zu alerts",
                         (long long)g->group->limit, active);
    }
    /* ALERTS and ALERTS_FOR_STATE, once restored */
    if (g->restored) {
        struct outset o = {0};
        struct builder *b = firn_xmalloc(sizeof *b);
        for (size_t i = 0; i < r->n_alerts; i++) {
            rules_alert *a = &r->alerts[i];
            if (a->state == RULES_INACTIVE)
                continue;
            b_init(b, a->labels, a->n_labels);
            b_set(b, FIRN_LABEL_NAME, "ALERTS");
            b_set(b, "alertstate", a->state == RULES_FIRING ? "firing" : "pending");
            b_sort(b);
            outset_add(&o, b->l, b->n, 1);
            b_init(b, a->labels, a->n_labels);
            b_set(b, FIRN_LABEL_NAME, "ALERTS_FOR_STATE");
            b_sort(b);
            outset_add(&o, b->l, b->n, (double)(a->active_at_ms / 1000));
        }
        free(b);
        rc = commit_output(g, r, &o, ts, err);
        outset_free(&o);
        if (rc)
            return rc;
    }
    send_alerts(g, r, ts);
    return 0;
}

static double wall_seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

void rules_group_rt_eval(rules_group_rt *g, int64_t ts)
{
    double start = wall_seconds();
    pthread_mutex_lock(&g->mu);
    g->last_eval_wall_ms = firn_now_ms();
    g->last_eval_ts_ms = ts;
    g->last_samples = 0;
    for (size_t i = 0; i < g->n_rules; i++) {
        rules_rule_rt *r = &g->rules[i];
        double rs = wall_seconds();
        r->last_eval_wall_ms = firn_now_ms();
        firn_err err = {0};
        int rc = r->rule->query.root == NULL
                     ? firn_errf(&err, FIRN_EINVAL, "rule has no parsed expression")
                 : r->rule->alert ? eval_alerting(g, r, ts, &err)
                                  : eval_recording(g, r, ts, &err);
        r->evaluations_total++;
        if (rc) {
            r->health = RULES_HEALTH_ERR;
            snprintf(r->last_error, sizeof r->last_error, "%s", err.msg);
            r->failures_total++;
            firn_log(FIRN_LOG_WARN, "rules", "Evaluating rule failed",
                     "group=\"%s\" rule=\"%s\" err=\"%s\"", g->group->name, r->rule->name,
                     err.msg);
        } else {
            r->health = RULES_HEALTH_OK;
            r->last_error[0] = 0;
        }
        r->eval_seconds = wall_seconds() - rs;
    }
    g->iterations_total++;
    g->eval_seconds = wall_seconds() - start;
    pthread_mutex_unlock(&g->mu);
}

void rules_group_rt_mark_all_stale(rules_group_rt *g, int64_t ts)
{
    pthread_mutex_lock(&g->mu);
    for (size_t i = 0; i < g->n_rules; i++) {
        struct outset none = {0};
        firn_err err = {0};
        commit_output(g, &g->rules[i], &none, ts, &err);
    }
    pthread_mutex_unlock(&g->mu);
}

/* ---- for-state restore --------------------------------------------------------- */

struct last_point {
    int64_t t;
    double v;
    bool found;
};

static int keep_last(void *ctx, int64_t t, double v)
{
    struct last_point *lp = ctx;
    lp->t = t;
    lp->v = v;
    lp->found = true;
    return 0;
}

void rules_group_rt_restore(rules_group_rt *g, int64_t now)
{
    pthread_mutex_lock(&g->mu);
    int64_t grace = g->opts.for_grace_period_ms;
    tsdb_reader *rd = NULL;
    for (size_t i = 0; i < g->n_rules; i++) {
        rules_rule_rt *r = &g->rules[i];
        if (!r->rule->alert || r->rule->for_ms < grace)
            continue;
        for (size_t k = 0; k < r->n_alerts; k++) {
            rules_alert *a = &r->alerts[k];
            firn_err err = {0};
            if (!rd && !(rd = tsdb_reader_open(g->opts.db, &err)))
                goto done;
            /* the series ALERTS_FOR_STATE{alert labels}, exactly */
            firn_matcher *m = firn_xcalloc(a->n_labels + 1, sizeof *m);
            size_t nm = 0;
            bool ok = firn_matcher_init(&m[nm++], FIRN_MATCH_EQ, FIRN_LABEL_NAME,
                                        "ALERTS_FOR_STATE", &err) == 0;
            for (size_t j = 0; j < a->n_labels && ok; j++)
                ok = firn_matcher_init(&m[nm++], FIRN_MATCH_EQ, a->labels[j].name,
                                       a->labels[j].value, &err) == 0;
            tsdb_series_set set = {0};
            struct last_point lp = {0};
            if (ok && tsdb_select(rd, m, nm, now - g->opts.outage_tolerance_ms, now, &set,
                                  &err) == 0) {
                for (size_t j = 0; j < set.n; j++)
                    if (set.series[j].floats && set.series[j].n_labels == a->n_labels + 1)
                        tsdb_scan_floats(rd, set.series[j].id,
                                         now - g->opts.outage_tolerance_ms, now, keep_last,
                                         &lp, &err);
                tsdb_series_set_free(&set);
            }
            for (size_t j = 0; j < nm; j++)
                firn_matcher_destroy(&m[j]);
            free(m);
            if (!lp.found || tsdb_is_stale(lp.v))
                continue;
            int64_t down_at = lp.t / 1000 * 1000;
            int64_t restored_active = (int64_t)lp.v * 1000;
            int64_t remaining = r->rule->for_ms - (down_at - restored_active);
            if (remaining <= 0)
                a->active_at_ms = restored_active;
            else if (remaining < grace)
                a->active_at_ms = now + grace - r->rule->for_ms;
            else
                a->active_at_ms = restored_active + (now - down_at);
        }
    }
done:
    if (rd)
        tsdb_reader_close(rd);
    g->restored = true;
    pthread_mutex_unlock(&g->mu);
}

void rules_group_rt_copy_state(rules_group_rt *to, rules_group_rt *from)
{
    pthread_mutex_lock(&from->mu);
    pthread_mutex_lock(&to->mu);
    to->last_eval_wall_ms = from->last_eval_wall_ms;
    to->last_eval_ts_ms = from->last_eval_ts_ms;
    to->eval_seconds = from->eval_seconds;
    to->restored = from->restored;
    bool *used = firn_xcalloc(from->n_rules + 1, sizeof *used);
    for (size_t i = 0; i < to->n_rules; i++) {
        const rules_rule *nr = to->rules[i].rule;
        for (size_t j = 0; j < from->n_rules; j++) {
            const rules_rule *or = from->rules[j].rule;
            if (used[j] || nr->alert != or->alert || strcmp(nr->name, or->name) != 0 ||
                !labels_equal(nr->labels, nr->n_labels, or->labels, or->n_labels))
                continue;
            used[j] = true;
            rules_rule_rt *t = &to->rules[i], *f = &from->rules[j];
            rule_rt_clear(t);
            t->prev = f->prev;
            t->prev_n = f->prev_n;
            t->n_prev = f->n_prev;
            f->prev = NULL;
            f->prev_n = NULL;
            f->n_prev = 0;
            if (nr->alert) {
                t->alerts = f->alerts;
                t->n_alerts = f->n_alerts;
                t->cap_alerts = f->cap_alerts;
                f->alerts = NULL;
                f->n_alerts = f->cap_alerts = 0;
            }
            break;
        }
    }
    free(used);
    pthread_mutex_unlock(&to->mu);
    pthread_mutex_unlock(&from->mu);
}
