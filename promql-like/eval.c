/* eval.c -- evaluating metric expressions over the store, with Prometheus's
 * step and lookback semantics.
 *
 * Evaluation has two phases, as in Prometheus's engine.  First every
 * selector loads, once for the whole query, the (time, total) points of its
 * series over the widest window any step needs: headers only (each block
 * stores its total), or, with a __function__ stack filter, the sum of the
 * samples the filter keeps (stack verdicts memoized per partition).  Then
 * each step evaluates the tree against those points in memory, so a range
 * query of 360 steps reads the store once, not 360 times.  A range query
 * sum/avg/min/max/count (f(x[r])) is instead evaluated series by series
 * (eval_by_series): one series' points read, folded into every step, then
 * the next, with the same results.
 *
 * Per-step values live in a step arena that is reset between steps; what a
 * range query keeps (result labels and points) is copied to the result's
 * arena.
 */
#include "promql-like/pql.h"
#include "internal.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <xxhash.h>

#define BY_SERIES_MAX_CELLS ((size_t)4 << 20)   /* eval_by_series's grid, at most */
#define HINT_NONE LONG_MIN               /* no lookup yet (see seek_at_or_before) */

/* The points of one series of a selector, oldest first. */
struct loaded_series {
    const tsdb_series *series;
    firn_label *nameless;            /* its labels without __name__ (function results) */
    size_t n_nameless;
    pql_point *points;
    size_t n;
    bool delta;                      /* its profile type ends in ":delta" */
    long hint_end, hint_start;       /* what the step's lookups of a window's end and
                                        start found at the previous step (HINT_NONE) */
};

struct loaded {
    const pql_expr *node;
    tsdb_series_set set;
    struct loaded_series *s;
    size_t n;
};

/* An aggregation's grouping of one stable label set, kept across steps. */
struct group_memo {
    const pql_expr *node;
    const firn_label *key;
    firn_label *labels;
    size_t n_labels;
    uint64_t sig;
};

struct ctx {
    tsdb_reader *r;
    firn_err *err;
    int64_t lookback_ms;
    size_t max_points, points;
    struct loaded *sel;              /* one per selector node */
    size_t n_sel;
    firn_arena *load_arena;          /* points */
    pql_point *scratch;              /* one series' points while they load */
    size_t scratch_cap;
    firn_arena *step;                /* values of the current step */
    firn_u64map memo_index;          /* (node, labels) -> index into memo */
    struct group_memo *memo;
    size_t n_memo, cap_memo;
};

/* An instant-vector element during evaluation.  stable is set when labels
 * live for the whole query (a loaded series' own or nameless labels), so
 * work on them can be remembered across steps. */
struct sample {
    firn_label *labels;
    size_t n_labels;
    double v;
    bool stable;
};

struct value {
    pql_value_type type;
    double scalar;
    struct sample *s;                /* vector */
    size_t n;
    const struct loaded *matrix;     /* a matrix selector at top level */
    const char *string;
};

static firn_label *labels_filter(firn_arena *a, const firn_label *l, size_t n, size_t *out_n,
                                 bool drop_name, const char **list, size_t n_list, bool only);

/* ---- loading ------------------------------------------------------------- */

static void count_selectors(const pql_expr *e, size_t *n)
{
    switch (e->kind) {
    case PQL_VECTOR_SELECTOR:
    case PQL_MATRIX_SELECTOR:
        (*n)++;
        break;
    case PQL_AGGREGATE:
        if (e->agg.param)
            count_selectors(e->agg.param, n);
        count_selectors(e->agg.expr, n);
        break;
    case PQL_CALL:
        for (size_t i = 0; i < e->call.n_args; i++)
            count_selectors(e->call.args[i], n);
        break;
    case PQL_BINARY:
        count_selectors(e->bin.lhs, n);
        count_selectors(e->bin.rhs, n);
        break;
    case PQL_UNARY_MINUS:
    case PQL_PAREN:
        count_selectors(e->unary.expr, n);
        break;
    default:
        break;
    }
}

static struct loaded *find_loaded(const struct ctx *c, const pql_expr *node)
{
    for (size_t i = 0; i < c->n_sel; i++)
        if (c->sel[i].node == node)
            return &c->sel[i];
    return NULL;
}

/* Whether a stack (its function names) passes every filter. */
static bool stack_passes(const firn_matcher *filters, size_t n_filters, const char **names,
                         size_t n_names)
{
    for (size_t f = 0; f < n_filters; f++) {
        bool any = false;
        for (size_t i = 0; i < n_names && !any; i++)
            any = pql_filter_hit(&filters[f], names[i]);
        if (any != pql_filter_positive(&filters[f]))
            return false;
    }
    return true;
}

/* Counts n more points the query holds (loaded, or in its result) against
 * --query.max-samples. */
static int count_points(struct ctx *c, size_t n)
{
    c->points += n;
    if (c->points > c->max_points)
        return firn_errf(c->err, FIRN_ETOOBIG, "%s", PQL_TOO_MANY_SAMPLES);
    return 0;
}

struct load_scan {
    struct ctx *c;
    const pql_expr *node;
    size_t n;                        /* points in c->scratch */
    firn_u64map *verdicts;           /* (partition << 32 | stack) -> 1 keep, 2 drop */
};

/* A series' points gather in one scratch array, reused from series to
 * series, and go to the load arena at their exact size once the series is
 * read: doubling in the arena left 2.7 times the points' bytes behind, and
 * faulting those pages in was a tenth of a 1,000-series range query. */
static inline void push_point(struct load_scan *ls, int64_t t_ms, double v)
{
    struct ctx *c = ls->c;
    if (ls->n == c->scratch_cap)
        c->scratch = firn_grow(c->scratch, ls->n, &c->scratch_cap, sizeof *c->scratch, 512);
    /* oldest first, as the store scans: last_at_or_before searches them */
    assert(ls->n == 0 || c->scratch[ls->n - 1].t_ms <= t_ms);
    c->scratch[ls->n++] = (pql_point){t_ms, v};
}

static int load_block(void *arg, const tsdb_block *b)
{
    struct load_scan *ls = arg;
    struct ctx *c = ls->c;
    if (count_points(c, 1) < 0)
        return FIRN_ETOOBIG;
    double v = (double)b->total;
    if (ls->node->sel.n_filters) {
        int64_t sum = 0;
        for (size_t i = 0; i < b->n_samples; i++) {
            uint64_t key = (uint64_t)b->partition << 32 | b->stacks[i];
            uint32_t verdict;
            if (!firn_u64map_get(ls->verdicts, key, &verdict)) {
                const char **names;
                size_t n;
                if (tsdb_stack_functions(c->r, b->partition, b->stacks[i], &names, &n, c->err) <
                    0)
                    return c->err ? c->err->code : FIRN_EIO;
                verdict = stack_passes(ls->node->sel.filters, ls->node->sel.n_filters, names, n)
                              ? 1
                              : 2;
                firn_u64map_put(ls->verdicts, key, verdict, NULL);
            }
            if (verdict == 1)
                sum = pprof_add_sat(sum, b->values[i]);
        }
        v = (double)sum;
    }
    push_point(ls, b->timestamp_ms, v);
    return 0;
}

/* A float sample; a range selector drops stale markers (Prometheus keeps
 * them out of range vectors), an instant one keeps them to end a series. */
static int load_float(void *arg, int64_t t_ms, double v)
{
    struct load_scan *ls = arg;
    struct ctx *c = ls->c;
    if (ls->node->kind == PQL_MATRIX_SELECTOR && tsdb_is_stale(v))
        return 0;
    if (count_points(c, 1) < 0)
        return FIRN_ETOOBIG;
    push_point(ls, t_ms, v);
    return 0;
}

static bool ends_with_delta(const tsdb_series *s)
{
    const char *name = firn_labels_get(s->labels, s->n_labels, FIRN_LABEL_NAME);
    size_t n = name ? strlen(name) : 0;
    return n > 6 && strcmp(name + n - 6, ":delta") == 0;
}

/* A batch of a profile series' totals (no stack filter). */
static int load_totals(void *arg, const int64_t *ts, const int64_t *totals, size_t n)
{
    struct load_scan *ls = arg;
    struct ctx *c = ls->c;
    if (count_points(c, n) < 0)
        return FIRN_ETOOBIG;
    while (ls->n + n > c->scratch_cap)   /* full: doubles */
        c->scratch = firn_grow(c->scratch, c->scratch_cap, &c->scratch_cap, sizeof *c->scratch,
                               512);
    /* oldest first, as the store scans: last_at_or_before searches them */
    assert(ls->n == 0 || c->scratch[ls->n - 1].t_ms < ts[0]);
    for (size_t i = 0; i < n; i++)
        c->scratch[ls->n + i] = (pql_point){ts[i], (double)totals[i]};
    ls->n += n;
    return 0;
}

/* Reads one series' points in (from, to] into c->scratch (ls->n of them). */
static int load_series(struct load_scan *ls, const tsdb_series *series, int64_t from, int64_t to)
{
    struct ctx *c = ls->c;
    if (series->floats)
        return tsdb_scan_floats(c->r, series->id, from + 1, to, load_float, ls, c->err);
    if (!ls->node->sel.n_filters)
        return tsdb_scan_totals(c->r, series->id, from + 1, to, load_totals, ls, c->err);
    return tsdb_scan(c->r, series->id, from + 1, to, 0, load_block, ls, c->err);
}

/* Selects a selector's series for the steps in [start, end]: a stack
 * filter keeps profile series only.  *from and *to bound the points. */
static int select_series(struct ctx *c, const pql_expr *node, int64_t start, int64_t end,
                         tsdb_series_set *set, int64_t *from, int64_t *to)
{
    int64_t back = node->kind == PQL_MATRIX_SELECTOR ? node->sel.range_ms : c->lookback_ms;
    *from = start - node->sel.offset_ms - back;
    *to = end - node->sel.offset_ms;
    if (tsdb_select(c->r, node->sel.matchers, node->sel.n_matchers, *from + 1, *to, set,
                    c->err) < 0)
        return c->err ? c->err->code : FIRN_EIO;
    if (node->sel.n_filters) {
        /* float series have no stacks */
        size_t kept = 0;
        for (size_t i = 0; i < set->n; i++)
            if (!set->series[i].floats)
                set->series[kept++] = set->series[i];
        set->n = kept;
    }
    return 0;
}

/* Loads the points every step in [start, end] can need for one selector. */
static int load_selector(struct ctx *c, const pql_expr *node, int64_t start, int64_t end,
                         struct loaded *out)
{
    int64_t from, to;
    out->node = node;
    int src = select_series(c, node, start, end, &out->set, &from, &to);
    if (src)
        return src;
    out->s = firn_arena_calloc(c->load_arena, out->set.n + 1, sizeof *out->s);
    firn_u64map verdicts = {0};
    if (node->sel.n_filters)
        firn_u64map_init(&verdicts, 1024);
    int rc = 0;
    for (size_t i = 0; i < out->set.n && !rc; i++) {
        struct load_scan ls = {.c = c, .node = node, .verdicts = &verdicts};
        rc = load_series(&ls, &out->set.series[i], from, to);
        out->s[i].series = &out->set.series[i];
        out->s[i].nameless = labels_filter(c->load_arena, out->set.series[i].labels,
                                           out->set.series[i].n_labels, &out->s[i].n_nameless,
                                           true, NULL, 0, false);
        out->s[i].points = firn_arena_alloc(c->load_arena, (ls.n ? ls.n : 1) * sizeof(pql_point));
        if (ls.n)
            memcpy(out->s[i].points, c->scratch, ls.n * sizeof(pql_point));
        out->s[i].n = ls.n;
        out->s[i].delta = !out->set.series[i].floats && ends_with_delta(&out->set.series[i]);
        out->s[i].hint_end = out->s[i].hint_start = HINT_NONE;
    }
    out->n = out->set.n;
    firn_u64map_destroy(&verdicts);
    return rc < 0 ? rc : 0;
}

static int load_all(struct ctx *c, const pql_expr *e, int64_t start, int64_t end)
{
    int rc = 0;
    switch (e->kind) {
    case PQL_VECTOR_SELECTOR:
    case PQL_MATRIX_SELECTOR:
        rc = load_selector(c, e, start, end, &c->sel[c->n_sel]);
        c->n_sel++;   /* counted even on failure, so its set is freed */
        return rc;
    case PQL_AGGREGATE:
        if (e->agg.param && (rc = load_all(c, e->agg.param, start, end)))
            return rc;
        return load_all(c, e->agg.expr, start, end);
    case PQL_CALL:
        for (size_t i = 0; i < e->call.n_args && !rc; i++)
            rc = load_all(c, e->call.args[i], start, end);
        return rc;
    case PQL_BINARY:
        if ((rc = load_all(c, e->bin.lhs, start, end)))
            return rc;
        return load_all(c, e->bin.rhs, start, end);
    case PQL_UNARY_MINUS:
    case PQL_PAREN:
        return load_all(c, e->unary.expr, start, end);
    default:
        return 0;
    }
}

/* ---- labels ---------------------------------------------------------------- */

static bool in_list(const char *name, const char **list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(name, list[i]) == 0)
            return true;
    return false;
}

/* Copy of labels keeping those for which keep() holds.  The n labels are
 * in memory already, so the arena never answers NULL. */
static firn_label *labels_filter(firn_arena *a, const firn_label *l, size_t n, size_t *out_n,
                                 bool drop_name, const char **list, size_t n_list, bool only)
{
    firn_label *out = firn_arena_alloc(a, (n ? n : 1) * sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool listed = in_list(l[i].name, list, n_list);
        if (only ? !listed : listed)
            continue;
        if (drop_name && strcmp(l[i].name, FIRN_LABEL_NAME) == 0)
            continue;
        out[k++] = l[i];
    }
    *out_n = k;
    return out;
}

static uint64_t labels_sig(const firn_label *l, size_t n)
{
    XXH64_hash_t h = 0x5bd1e995;
    for (size_t i = 0; i < n; i++) {
        h = XXH64(l[i].name, strlen(l[i].name), h);
        h = XXH64("\xff", 1, h);
        h = XXH64(l[i].value, strlen(l[i].value), h);
        h = XXH64("\xfe", 1, h);
    }
    return h;
}

static int cmp_labels(const firn_label *a, size_t na, const firn_label *b, size_t nb)
{
    for (size_t i = 0; i < na && i < nb; i++) {
        int c = strcmp(a[i].name, b[i].name);
        if (!c)
            c = strcmp(a[i].value, b[i].value);
        if (c)
            return c;
    }
    return na < nb ? -1 : na > nb;
}

static int cmp_sample(const void *x, const void *y)
{
    const struct sample *a = x, *b = y;
    return cmp_labels(a->labels, a->n_labels, b->labels, b->n_labels);
}

/* ---- evaluation of one step ----------------------------------------------- */

static int eval(struct ctx *c, const pql_expr *e, int64_t t, struct value *out);

/* Room for n samples, n the size of a vector already in memory (never
 * NULL). */
static struct sample *samples_alloc(struct ctx *c, size_t n)
{
    return firn_arena_alloc(c->step, (n ? n : 1) * sizeof(struct sample));
}

/* Index of the last point with t_ms <= t, or -1. */
static long last_at_or_before(const struct loaded_series *ls, int64_t t)
{
    long lo = 0, hi = (long)ls->n - 1, found = -1;
    while (lo <= hi) {
        long mid = (lo + hi) / 2;
        if (ls->points[mid].t_ms <= t) {
            found = mid;
            lo = mid + 1;
        } else {
            hi = mid - 1;
        }
    }
    return found;
}

/* last_at_or_before, walking on from *hint, what the same lookup found at
 * the previous step: a range query's steps only move forward, so across a
 * query each series' points are walked once, in order, where a search per
 * step jumps over them (360 steps x 1,000 series: the search's cache misses
 * were most of the evaluation).  The first lookup searches. */
static long seek_at_or_before(const struct loaded_series *ls, int64_t t, long *hint)
{
    long k = *hint;
    if (k == HINT_NONE) {
        k = last_at_or_before(ls, t);
    } else {   /* steps never go back: the assert below would catch one */
        while (k + 1 < (long)ls->n && ls->points[k + 1].t_ms <= t)
            k++;
    }
    /* what last_at_or_before returns: the points are in time order */
    assert(k >= -1 && k < (long)ls->n);
    assert(k < 0 || ls->points[k].t_ms <= t);
    assert(k + 1 >= (long)ls->n || ls->points[k + 1].t_ms > t);
    *hint = k;
    return k;
}

static int eval_vector_selector(struct ctx *c, const pql_expr *e, int64_t t, struct value *out)
{
    struct loaded *l = find_loaded(c, e);
    out->type = PQL_TYPE_VECTOR;
    out->s = samples_alloc(c, l->n);
    int64_t at = t - e->sel.offset_ms;
    for (size_t i = 0; i < l->n; i++) {
        long k = seek_at_or_before(&l->s[i], at, &l->s[i].hint_end);
        if (k < 0 || l->s[i].points[k].t_ms <= at - c->lookback_ms ||
            tsdb_is_stale(l->s[i].points[k].v))
            continue;
        struct sample *s = &out->s[out->n++];
        s->labels = l->s[i].series->labels;
        s->n_labels = l->s[i].series->n_labels;
        s->v = l->s[i].points[k].v;
        s->stable = true;
    }
    return 0;
}

/* Prometheus's extrapolatedRate for counters (and increase). */
static double extrapolated(const pql_point *p, size_t n, int64_t range_start, int64_t range_end,
                           bool is_rate, double range_s)
{
    double result = p[n - 1].v - p[0].v;
    for (size_t i = 1; i < n; i++)   /* counter resets */
        if (p[i].v < p[i - 1].v)
            result += p[i - 1].v;
    double to_start = (double)(p[0].t_ms - range_start) / 1000.0;
    double to_end = (double)(range_end - p[n - 1].t_ms) / 1000.0;
    double sampled = (double)(p[n - 1].t_ms - p[0].t_ms) / 1000.0;
    double avg_between = sampled / (double)(n - 1);
    if (result > 0 && p[0].v >= 0) {
        double to_zero = sampled * (p[0].v / result);
        if (to_zero < to_start)
            to_start = to_zero;
    }
    double threshold = avg_between * 1.1, interval = sampled;
    interval += to_start < threshold ? to_start : avg_between / 2;
    interval += to_end < threshold ? to_end : avg_between / 2;
    /* Prometheus's order of operations (one factor, divided by the range
     * for rate), so results agree to the last bit */
    double factor = interval / sampled;
    if (is_rate)
        factor /= range_s;
    return result * factor;
}

/* vector(s) and time(), which read no series. */
static int eval_scalar_call(struct ctx *c, const pql_expr *e, int64_t t, struct value *out)
{
    if (e->call.fn == PQL_FN_TIME) {
        out->type = PQL_TYPE_SCALAR;
        out->scalar = (double)t / 1000.0;
        return 0;
    }
    assert(e->call.fn == PQL_FN_VECTOR && e->call.n_args == 1);
    struct value arg;
    int rc = eval(c, e->call.args[0], t, &arg);
    if (rc)
        return rc;
    assert(arg.type == PQL_TYPE_SCALAR);
    out->type = PQL_TYPE_VECTOR;
    out->s = samples_alloc(c, 1);
    out->s[0] = (struct sample){.v = arg.scalar, .stable = true};
    out->n = 1;
    return 0;
}

/* The value of a range function over the n >= 1 points p of one series in
 * the window (start, end]; false when it has none (a counter's rate needs
 * two points). */
static inline bool window_value(pql_func fn, bool delta, const pql_point *p, size_t n, int64_t start,
                         int64_t end, double range_s, double *out)
{
    /* each function folds only what it needs (a third of a 1,000-series
     * range query went to folding sum, max and min for every window) */
    double v = 0, sum = 0;
    switch (fn) {
    case PQL_FN_RATE:
    case PQL_FN_INCREASE:
        if (!delta) {
            if (n < 2)
                return false;
            v = extrapolated(p, n, start, end, fn == PQL_FN_RATE, range_s);
            break;
        }
        for (size_t k = 0; k < n; k++)
            sum += p[k].v;
        v = fn == PQL_FN_RATE ? sum / range_s : sum;
        break;
    case PQL_FN_SUM_OVER_TIME:
    case PQL_FN_AVG_OVER_TIME:
        for (size_t k = 0; k < n; k++)
            sum += p[k].v;
        v = fn == PQL_FN_SUM_OVER_TIME ? sum : sum / (double)n;
        break;
    case PQL_FN_MAX_OVER_TIME:
        v = -INFINITY;
        for (size_t k = 0; k < n; k++)
            v = p[k].v > v || isnan(v) ? p[k].v : v;
        break;
    case PQL_FN_MIN_OVER_TIME:
        v = INFINITY;
        for (size_t k = 0; k < n; k++)
            v = p[k].v < v || isnan(v) ? p[k].v : v;
        break;
    case PQL_FN_COUNT_OVER_TIME: v = (double)n; break;
    case PQL_FN_VECTOR:
    case PQL_FN_TIME:
        assert(!"evaluated by eval_scalar_call");
        break;
    }
    *out = v;
    return true;
}

static int eval_call(struct ctx *c, const pql_expr *e, int64_t t, struct value *out)
{
    if (e->call.fn == PQL_FN_VECTOR || e->call.fn == PQL_FN_TIME)
        return eval_scalar_call(c, e, t, out);
    const pql_expr *arg = e->call.args[0];
    while (arg->kind == PQL_PAREN)
        arg = arg->unary.expr;
    struct loaded *l = find_loaded(c, arg);
    if (!l)
        return firn_errf(c->err, FIRN_EINVAL, "%d:%d: %s needs a range selector such as x[5m]",
                         e->line, e->col, pql_func_name(e->call.fn));
    int64_t end = t - arg->sel.offset_ms, start = end - arg->sel.range_ms;
    double range_s = (double)arg->sel.range_ms / 1000.0;
    out->type = PQL_TYPE_VECTOR;
    out->s = samples_alloc(c, l->n);
    for (size_t i = 0; i < l->n; i++) {
        struct loaded_series *ls = &l->s[i];
        long hi = seek_at_or_before(ls, end, &ls->hint_end);
        long lo = seek_at_or_before(ls, start, &ls->hint_start) + 1;
        if (hi < lo)
            continue;
        double v;
        if (!window_value(e->call.fn, ls->delta, ls->points + lo, (size_t)(hi - lo + 1), start,
                          end, range_s, &v))
            continue;
        struct sample *s = &out->s[out->n++];
        s->labels = ls->nameless;
        s->n_labels = ls->n_nameless;
        s->v = v;
        s->stable = true;
    }
    return 0;
}

struct group {
    uint64_t sig;
    firn_label *labels;
    size_t n_labels;
    double v;
    size_t count;
    size_t first, n_members;         /* topk/bottomk: members in order[] */
};

static int cmp_desc(const void *x, const void *y)
{
    double a = ((const struct sample *)x)->v, b = ((const struct sample *)y)->v;
    if (isnan(a))
        return isnan(b) ? 0 : 1;
    if (isnan(b))
        return -1;
    return a > b ? -1 : a < b;
}

static int cmp_asc(const void *x, const void *y)
{
    double a = ((const struct sample *)x)->v, b = ((const struct sample *)y)->v;
    if (isnan(a))
        return isnan(b) ? 0 : 1;
    if (isnan(b))
        return -1;
    return a < b ? -1 : a > b;
}

/* The group labels and signature of a sample under aggregation e; for a
 * stable label set they are computed once per query and remembered. */
static void group_key(struct ctx *c, const pql_expr *e, const struct sample *s,
                      firn_label **labels, size_t *n, uint64_t *sig)
{
    uint64_t key = 0;
    uint32_t idx;
    if (s->stable) {
        key = ((uint64_t)(uintptr_t)s->labels * 0x9E3779B97F4A7C15ull) ^ (uint64_t)(uintptr_t)e;
        if (firn_u64map_get(&c->memo_index, key, &idx) && c->memo[idx].node == e &&
            c->memo[idx].key == s->labels) {
            *labels = c->memo[idx].labels;
            *n = c->memo[idx].n_labels;
            *sig = c->memo[idx].sig;
            return;
        }
    }
    firn_arena *a = s->stable ? c->load_arena : c->step;
    *labels = labels_filter(a, s->labels, s->n_labels, n, e->agg.without, e->agg.labels,
                            e->agg.n_labels, !e->agg.without);
    *sig = labels_sig(*labels, *n);
    if (!s->stable)
        return;
    c->memo = firn_grow(c->memo, c->n_memo, &c->cap_memo, sizeof *c->memo, 256);
    if (firn_u64map_put(&c->memo_index, key, (uint32_t)c->n_memo, &idx) == 1)
        c->memo[c->n_memo++] = (struct group_memo){e, s->labels, *labels, *n, *sig};
}

/* A group's value after one more member's v (the first member's value is
 * the group's start). */
static double agg_fold(pql_agg_op op, double acc, double v)
{
    switch (op) {
    case PQL_AGG_SUM:
    case PQL_AGG_AVG: return acc + v;
    case PQL_AGG_MIN: return v < acc || isnan(acc) ? v : acc;
    case PQL_AGG_MAX: return v > acc || isnan(acc) ? v : acc;
    default: return acc;
    }
}

static int eval_aggregate(struct ctx *c, const pql_expr *e, int64_t t, struct value *out)
{
    struct value in = {0}, param = {0};
    int rc;
    if ((rc = eval(c, e->agg.expr, t, &in)))
        return rc;
    double k = 0;
    if (e->agg.param) {
        if ((rc = eval(c, e->agg.param, t, &param)))
            return rc;
        k = param.scalar;
    }
    out->type = PQL_TYPE_VECTOR;
    struct group *g = firn_arena_alloc(c->step, (in.n ? in.n : 1) * sizeof *g);
    size_t *group_of = firn_arena_alloc(c->step, (in.n ? in.n : 1) * sizeof *group_of);
    firn_u64map map;
    firn_u64map_init(&map, in.n);
    size_t ng = 0;
    for (size_t i = 0; i < in.n; i++) {
        size_t nl;
        firn_label *gl;
        uint64_t sig;
        group_key(c, e, &in.s[i], &gl, &nl, &sig);
        uint32_t idx;
        int r = firn_u64map_put(&map, sig, (uint32_t)ng, &idx);
        double v = in.s[i].v;
        if (r == 1) {
            idx = (uint32_t)ng++;
            g[idx] = (struct group){.sig = sig, .labels = gl, .n_labels = nl, .v = v, .count = 1};
        } else {
            struct group *gr = &g[idx];
            gr->count++;
            gr->v = agg_fold(e->agg.op, gr->v, v);
        }
        group_of[i] = idx;
    }
    assert(ng <= in.n);
    firn_u64map_destroy(&map);
    if (e->agg.op == PQL_AGG_TOPK || e->agg.op == PQL_AGG_BOTTOMK) {
        /* per group, its members sorted; keep the first k */
        out->s = samples_alloc(c, in.n);
        struct sample *tmp = samples_alloc(c, in.n);
        long kk = isnan(k) || k < 1 ? 0 : k > (double)in.n ? (long)in.n : (long)k;
        for (size_t gi = 0; gi < ng && kk > 0; gi++) {
            size_t m = 0;
            for (size_t i = 0; i < in.n; i++)
                if (group_of[i] == gi)
                    tmp[m++] = in.s[i];
            firn_sort(tmp, m, sizeof *tmp, e->agg.op == PQL_AGG_TOPK ? cmp_desc : cmp_asc);
            for (size_t i = 0; i < m && (long)i < kk; i++)
                out->s[out->n++] = tmp[i];
        }
        return 0;
    }
    out->s = samples_alloc(c, ng);
    for (size_t i = 0; i < ng; i++) {
        double v = g[i].v;
        if (e->agg.op == PQL_AGG_AVG)
            v /= (double)g[i].count;
        else if (e->agg.op == PQL_AGG_COUNT)
            v = (double)g[i].count;
        out->s[out->n++] = (struct sample){g[i].labels, g[i].n_labels, v, false};
    }
    return 0;
}

static bool is_comparison(pql_binop op)
{
    return op >= PQL_OP_EQ;
}

/* lhs op rhs; *keep is false when a comparison is false. */
static double apply(pql_binop op, double a, double b, bool *keep)
{
    *keep = true;
    switch (op) {
    case PQL_OP_ADD: return a + b;
    case PQL_OP_SUB: return a - b;
    case PQL_OP_MUL: return a * b;
    case PQL_OP_DIV: return a / b;
    case PQL_OP_EQ: *keep = a == b; break;
    case PQL_OP_NE: *keep = a != b; break;
    case PQL_OP_GT: *keep = a > b; break;
    case PQL_OP_LT: *keep = a < b; break;
    case PQL_OP_GE: *keep = a >= b; break;
    case PQL_OP_LE: *keep = a <= b; break;
    }
    return a;
}

/* Result labels of a vector element of a binary operation. */
static firn_label *result_labels(struct ctx *c, const pql_expr *e, const struct sample *s,
                                 bool vector_vector, size_t *n)
{
    bool drop_name = !is_comparison(e->bin.op) || e->bin.return_bool;
    if (!vector_vector || (!e->bin.on && !e->bin.ignoring))
        return labels_filter(c->step, s->labels, s->n_labels, n, drop_name, NULL, 0, false);
    return labels_filter(c->step, s->labels, s->n_labels, n, drop_name, e->bin.labels,
                         e->bin.n_labels, e->bin.on);
}

static int eval_binary(struct ctx *c, const pql_expr *e, int64_t t, struct value *out)
{
    struct value l = {0}, r = {0};
    int rc;
    if ((rc = eval(c, e->bin.lhs, t, &l)) || (rc = eval(c, e->bin.rhs, t, &r)))
        return rc;
    bool keep;
    if (l.type == PQL_TYPE_SCALAR && r.type == PQL_TYPE_SCALAR) {
        double v = apply(e->bin.op, l.scalar, r.scalar, &keep);
        out->type = PQL_TYPE_SCALAR;
        out->scalar = is_comparison(e->bin.op) ? (keep ? 1 : 0) : v;
        return 0;
    }
    out->type = PQL_TYPE_VECTOR;
    if (l.type == PQL_TYPE_SCALAR || r.type == PQL_TYPE_SCALAR) {
        bool scalar_left = l.type == PQL_TYPE_SCALAR;
        const struct value *vec = scalar_left ? &r : &l;
        double sc = scalar_left ? l.scalar : r.scalar;
        out->s = samples_alloc(c, vec->n);
        for (size_t i = 0; i < vec->n; i++) {
            double a = scalar_left ? sc : vec->s[i].v, b = scalar_left ? vec->s[i].v : sc;
            double v = apply(e->bin.op, a, b, &keep);
            if (is_comparison(e->bin.op)) {
                if (e->bin.return_bool)
                    v = keep ? 1 : 0;
                else if (!keep)
                    continue;
                else
                    v = vec->s[i].v;   /* the vector's value, on either side */
            }
            struct sample *s = &out->s[out->n];
            s->labels = result_labels(c, e, &vec->s[i], false, &s->n_labels);
            s->v = v;
            out->n++;
        }
        return 0;
    }
    /* vector-vector, one-to-one on the matching labels */
    firn_u64map rmap, seen;
    firn_u64map_init(&rmap, r.n);
    firn_u64map_init(&seen, l.n);
    out->s = samples_alloc(c, l.n);
    rc = 0;
    for (size_t i = 0; i < r.n && !rc; i++) {
        size_t n;
        firn_label *m = labels_filter(c->step, r.s[i].labels, r.s[i].n_labels, &n, true,
                                      e->bin.labels, e->bin.n_labels, e->bin.on);
        uint32_t have;
        if (firn_u64map_put(&rmap, labels_sig(m, n), (uint32_t)i, &have) == 0)
            rc = firn_errf(c->err, FIRN_EINVAL,
                           "%d:%d: found duplicate series for the match group on the right "
                           "hand-side of the operation; many-to-many matching not allowed",
                           e->line, e->col);
    }
    for (size_t i = 0; i < l.n && !rc; i++) {
        size_t n;
        firn_label *m = labels_filter(c->step, l.s[i].labels, l.s[i].n_labels, &n, true,
                                      e->bin.labels, e->bin.n_labels, e->bin.on);
        uint64_t sig = labels_sig(m, n);
        uint32_t ri, dup;
        if (!firn_u64map_get(&rmap, sig, &ri))
            continue;
        if (firn_u64map_put(&seen, sig, (uint32_t)i, &dup) == 0) {
            rc = firn_errf(c->err, FIRN_EINVAL,
                           "%d:%d: found duplicate series for the match group on the left "
                           "hand-side of the operation; many-to-many matching not allowed",
                           e->line, e->col);
            break;
        }
        double v = apply(e->bin.op, l.s[i].v, r.s[ri].v, &keep);
        if (is_comparison(e->bin.op)) {
            if (e->bin.return_bool)
                v = keep ? 1 : 0;
            else if (!keep)
                continue;
        }
        struct sample *s = &out->s[out->n];
        s->labels = result_labels(c, e, &l.s[i], true, &s->n_labels);
        s->v = v;
        out->n++;
    }
    firn_u64map_destroy(&rmap);
    firn_u64map_destroy(&seen);
    return rc;
}

static int eval(struct ctx *c, const pql_expr *e, int64_t t, struct value *out)
{
    memset(out, 0, sizeof *out);
    int rc;
    switch (e->kind) {
    case PQL_NUMBER:
        out->type = PQL_TYPE_SCALAR;
        out->scalar = e->number;
        return 0;
    case PQL_STRING:
        out->type = PQL_TYPE_STRING;
        out->string = e->string;
        return 0;
    case PQL_VECTOR_SELECTOR:
        return eval_vector_selector(c, e, t, out);
    case PQL_MATRIX_SELECTOR:
        out->type = PQL_TYPE_MATRIX;
        out->matrix = find_loaded(c, e);
        return 0;
    case PQL_AGGREGATE:
        return eval_aggregate(c, e, t, out);
    case PQL_CALL:
        return eval_call(c, e, t, out);
    case PQL_BINARY:
        return eval_binary(c, e, t, out);
    case PQL_PAREN:
        return eval(c, e->unary.expr, t, out);
    case PQL_UNARY_MINUS:
        if ((rc = eval(c, e->unary.expr, t, out)))
            return rc;
        if (out->type == PQL_TYPE_SCALAR) {
            out->scalar = -out->scalar;
            return 0;
        }
        for (size_t i = 0; i < out->n; i++) {
            size_t n;
            firn_label *l = labels_filter(c->step, out->s[i].labels, out->s[i].n_labels, &n,
                                          true, NULL, 0, false);
            out->s[i].labels = l;
            out->s[i].n_labels = n;
            out->s[i].v = -out->s[i].v;
        }
        return 0;
    }
    return firn_errf(c->err, FIRN_EINVAL, "unknown expression node");
}

/* ---- the public entry points ------------------------------------------- */

void pql_result_free(pql_result *r)
{
    if (!r)
        return;
    firn_arena_free(r->arena);
    memset(r, 0, sizeof *r);
}

static void ctx_free(struct ctx *c)
{
    for (size_t i = 0; i < c->n_sel; i++)
        tsdb_series_set_free(&c->sel[i].set);
    free(c->sel);
    free(c->memo);
    free(c->scratch);
    firn_u64map_destroy(&c->memo_index);
    firn_arena_free(c->load_arena);
    firn_arena_free(c->step);
}

/* Sets the context up and, when load is set, loads every selector's points
 * for the steps in [start, end]. */
static int ctx_init(struct ctx *c, tsdb_reader *r, const pql_query *q, int64_t start,
                    int64_t end, const pql_eval_options *opts, bool load, firn_err *err)
{
    memset(c, 0, sizeof *c);
    c->r = r;
    c->err = err;
    c->lookback_ms = opts && opts->lookback_ms > 0 ? opts->lookback_ms : PQL_DEFAULT_LOOKBACK_MS;
    c->max_points = opts && opts->max_samples ? opts->max_samples : PQL_MAX_SAMPLES_DEFAULT;
    size_t n = 0;
    count_selectors(q->root, &n);
    c->sel = firn_xcalloc(n + 1, sizeof *c->sel);
    c->load_arena = firn_arena_new(0);
    c->step = firn_arena_new(0);
    firn_u64map_init(&c->memo_index, 256);
    return load ? load_all(c, q->root, start, end) : 0;
}

static firn_label *copy_labels(firn_arena *a, const firn_label *l, size_t n)
{
    firn_label *out = firn_arena_alloc(a, (n ? n : 1) * sizeof *out);
    for (size_t i = 0; i < n; i++) {
        out[i].name = firn_arena_strdup(a, l[i].name);
        out[i].value = firn_arena_strdup(a, l[i].value);
    }
    return out;
}

/* Sorts a step's vector and refuses two elements with one label set. */
static int check_vector(struct ctx *c, struct value *v)
{
    firn_sort(v->s, v->n, sizeof *v->s, cmp_sample);
    for (size_t i = 1; i < v->n; i++)
        if (cmp_sample(&v->s[i - 1], &v->s[i]) == 0)
            return firn_errf(c->err, FIRN_EINVAL,
                             "vector cannot contain metrics with the same labelset");
    return 0;
}

int pql_eval_instant(tsdb_reader *r, const pql_query *q, int64_t t_ms,
                     const pql_eval_options *opts, pql_result *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    struct ctx c;
    struct value v;
    int rc = ctx_init(&c, r, q, t_ms, t_ms, opts, true, err);
    if (!rc)
        rc = eval(&c, q->root, t_ms, &v);
    if (!rc && v.type == PQL_TYPE_VECTOR)
        rc = check_vector(&c, &v);
    if (rc) {
        ctx_free(&c);
        return rc < 0 ? rc : FIRN_EIO;
    }
    out->arena = firn_arena_new(0);
    out->type = v.type;
    out->t_ms = t_ms;
    out->scalar = v.scalar;
    if (v.type == PQL_TYPE_STRING)
        out->string = firn_arena_strdup(out->arena, v.string);
    if (v.type == PQL_TYPE_VECTOR && count_points(&c, v.n) < 0) {
        ctx_free(&c);
        pql_result_free(out);
        return FIRN_ETOOBIG;
    }
    if (v.type == PQL_TYPE_VECTOR || v.type == PQL_TYPE_MATRIX) {
        size_t n = v.type == PQL_TYPE_VECTOR ? v.n : v.matrix->n;
        out->series = firn_arena_calloc(out->arena, n + 1, sizeof *out->series);
        for (size_t i = 0; i < n; i++) {
            pql_series *s = &out->series[out->n_series];
            if (v.type == PQL_TYPE_VECTOR) {
                s->labels = copy_labels(out->arena, v.s[i].labels, v.s[i].n_labels);
                s->n_labels = v.s[i].n_labels;
                s->points = firn_arena_alloc(out->arena, sizeof *s->points);
                *s->points = (pql_point){t_ms, v.s[i].v};
                s->n_points = 1;
            } else {
                /* a range selector's raw points in (t - range, t] */
                const struct loaded_series *ls = &v.matrix->s[i];
                int64_t end = t_ms - v.matrix->node->sel.offset_ms;
                long hi = last_at_or_before(ls, end);
                long lo = last_at_or_before(ls, end - v.matrix->node->sel.range_ms) + 1;
                if (hi < lo)
                    continue;
                s->labels = copy_labels(out->arena, ls->series->labels, ls->series->n_labels);
                s->n_labels = ls->series->n_labels;
                s->n_points = (size_t)(hi - lo + 1);
                if (count_points(&c, s->n_points) < 0) {
                    ctx_free(&c);
                    pql_result_free(out);
                    return FIRN_ETOOBIG;
                }
                s->points = firn_arena_alloc(out->arena, s->n_points * sizeof *s->points);
                memcpy(s->points, ls->points + lo, s->n_points * sizeof *s->points);
            }
            out->n_series++;
        }
    }
    ctx_free(&c);
    return 0;
}

/* A series of a range result being built. */
struct range_series {
    firn_label *labels;
    size_t n_labels;
    pql_point *p;
    size_t n, cap;
};

static const pql_expr *unparen(const pql_expr *e)
{
    while (e->kind == PQL_PAREN)
        e = e->unary.expr;
    return e;
}

/* Whether the query is sum/avg/min/max/count [by|without] (f(x[r])) with f
 * a range function: each series' value at a step then depends on its own
 * points alone, so eval_by_series can take the series one at a time
 * over every step, its points in cache, instead of every series at each
 * step (at 1,000 series x 360 steps that walk missed the cache at each
 * series and step: docs/ARCHITECTURE.md, "At fleet scale"). */
static bool by_series_shape(const pql_expr *root, const pql_expr **agg, const pql_expr **call,
                            const pql_expr **sel)
{
    *agg = unparen(root);
    if ((*agg)->kind != PQL_AGGREGATE || (*agg)->agg.param)
        return false;
    switch ((*agg)->agg.op) {
    case PQL_AGG_SUM: case PQL_AGG_AVG: case PQL_AGG_MIN: case PQL_AGG_MAX: case PQL_AGG_COUNT:
        break;
    default:
        return false;
    }
    *call = unparen((*agg)->agg.expr);
    if ((*call)->kind != PQL_CALL || (*call)->call.n_args != 1 ||
        (*call)->call.fn == PQL_FN_VECTOR || (*call)->call.fn == PQL_FN_TIME)
        return false;
    *sel = unparen((*call)->call.args[0]);
    return (*sel)->kind == PQL_MATRIX_SELECTOR;
}

/* Evaluates agg(call(sel)) (by_series_shape) at every step, series by
 * series: each series' points are read, its value at every step is folded
 * into its group's cell of a (group x step) grid, then the next series is
 * read.  The values are those of the step-by-step evaluation bit for bit:
 * the same window function and, per cell, the same fold in the same series
 * order.  *done is false (and nothing is read) when the grid would exceed
 * the query's point limit; the caller then evaluates step by step. */
static int eval_by_series(struct ctx *c, const pql_expr *agg, const pql_expr *call,
                          const pql_expr *sel, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                          firn_arena *result, struct range_series **rs_out, size_t *n_out,
                          bool *done)
{
    *done = false;
    uint64_t steps = ((uint64_t)end_ms - (uint64_t)start_ms) / (uint64_t)step_ms + 1;
    tsdb_series_set set = {0};
    int64_t from, to;
    int rc = select_series(c, sel, start_ms, end_ms, &set, &from, &to);
    if (rc) {
        tsdb_series_set_free(&set);
        return rc;
    }
    /* each series' group, as eval_aggregate would find it */
    size_t *group_of = firn_xcalloc(set.n + 1, sizeof *group_of);
    struct range_series *groups = firn_xcalloc(set.n + 1, sizeof *groups);
    size_t ng = 0;
    firn_u64map gmap;
    firn_u64map_init(&gmap, set.n);
    for (size_t i = 0; i < set.n; i++) {
        size_t nn, nl;
        firn_label *nameless = labels_filter(c->load_arena, set.series[i].labels,
                                             set.series[i].n_labels, &nn, true, NULL, 0, false);
        firn_label *gl = labels_filter(c->load_arena, nameless, nn, &nl, agg->agg.without,
                                       agg->agg.labels, agg->agg.n_labels, !agg->agg.without);
        uint32_t idx;
        if (firn_u64map_put(&gmap, labels_sig(gl, nl), (uint32_t)ng, &idx) == 1) {
            idx = (uint32_t)ng++;
            groups[idx] = (struct range_series){.labels = gl, .n_labels = nl};
        }
        group_of[i] = idx;
    }
    firn_u64map_destroy(&gmap);
    /* the grid is bounded by the points the result may hold, and its memory
     * by BY_SERIES_MAX_CELLS (48 MiB) */
    size_t max_cells = c->max_points < BY_SERIES_MAX_CELLS ? c->max_points : BY_SERIES_MAX_CELLS;
    *done = steps <= max_cells && (ng == 0 || steps <= max_cells / ng);
    double *cell = NULL;
    uint32_t *count = NULL;
    if (*done) {
        cell = firn_xcalloc(ng * steps + 1, sizeof *cell);
        count = firn_xcalloc(ng * steps + 1, sizeof *count);
    }
    firn_u64map verdicts = {0};
    if (sel->sel.n_filters)
        firn_u64map_init(&verdicts, 1024);
    int64_t offset = sel->sel.offset_ms, range = sel->sel.range_ms;
    double range_s = (double)range / 1000.0;
    for (size_t i = 0; *done && i < set.n && !rc; i++) {
        struct load_scan ls = {.c = c, .node = sel, .verdicts = &verdicts};
        if ((rc = load_series(&ls, &set.series[i], from, to)))
            break;
        const pql_point *p = c->scratch;
        bool delta = !set.series[i].floats && ends_with_delta(&set.series[i]);
        double *row = cell + group_of[i] * steps;
        uint32_t *crow = count + group_of[i] * steps;
        /* both window edges only move forward: one pass over the points */
        size_t lo = 0, hi = 0;
        for (uint64_t k = 0; k < steps; k++) {
            int64_t end = start_ms + (int64_t)k * step_ms - offset, start = end - range;
            while (hi < ls.n && p[hi].t_ms <= end)
                hi++;
            while (lo < ls.n && p[lo].t_ms <= start)
                lo++;
            double v;
            if (hi <= lo || !window_value(call->call.fn, delta, p + lo, hi - lo, start, end,
                                          range_s, &v))
                continue;
            row[k] = crow[k]++ ? agg_fold(agg->agg.op, row[k], v) : v;
        }
    }
    if (sel->sel.n_filters)
        firn_u64map_destroy(&verdicts);
    /* the groups with a value at some step, as the step-by-step loop adds them */
    struct range_series *rs = NULL;
    size_t n_rs = 0, cap_rs = 0;
    for (size_t g = 0; *done && g < ng && !rc; g++) {
        struct range_series x = {0};
        for (uint64_t k = 0; k < steps && !rc; k++) {
            if (!count[g * steps + k])
                continue;
            if ((rc = count_points(c, 1)) < 0)
                break;
            double v = cell[g * steps + k];
            if (agg->agg.op == PQL_AGG_AVG)
                v /= (double)count[g * steps + k];
            else if (agg->agg.op == PQL_AGG_COUNT)
                v = (double)count[g * steps + k];
            x.p = firn_arena_grow(result, x.p, x.n, &x.cap, sizeof *x.p, 16);
            x.p[x.n++] = (pql_point){start_ms + (int64_t)k * step_ms, v};
        }
        if (!x.n)
            continue;
        x.labels = copy_labels(result, groups[g].labels, groups[g].n_labels);
        x.n_labels = groups[g].n_labels;
        rs = firn_grow(rs, n_rs, &cap_rs, sizeof *rs, 64);
        rs[n_rs++] = x;
    }
    free(cell);
    free(count);
    free(groups);
    free(group_of);
    tsdb_series_set_free(&set);
    *rs_out = rs;
    *n_out = n_rs;
    return rc;
}

int pql_eval_range(tsdb_reader *r, const pql_query *q, int64_t start_ms, int64_t end_ms,
                   int64_t step_ms, const pql_eval_options *opts, pql_result *out,
                   firn_err *err)
{
    memset(out, 0, sizeof *out);
    if (step_ms <= 0 || end_ms < start_ms)
        return firn_errf(err, FIRN_EINVAL, "a range query needs step > 0 and end >= start");
    if (q->type != PQL_TYPE_SCALAR && q->type != PQL_TYPE_VECTOR)
        return firn_errf(err, FIRN_EINVAL,
                         "invalid expression type \"%s\" for range query, must be Scalar or "
                         "instant Vector",
                         q->type == PQL_TYPE_MATRIX ? "range vector" : "string");
    struct ctx c;
    const pql_expr *agg, *call, *sel;
    bool by_series = by_series_shape(q->root, &agg, &call, &sel);
    int rc = ctx_init(&c, r, q, start_ms, end_ms, opts, !by_series, err);
    out->arena = firn_arena_new(0);
    firn_u64map index;
    firn_u64map_init(&index, 64);
    struct range_series *rs = NULL;
    size_t n_rs = 0, cap_rs = 0;
    if (!rc && by_series) {
        rc = eval_by_series(&c, agg, call, sel, start_ms, end_ms, step_ms, out->arena, &rs,
                            &n_rs, &by_series);
        /* too many cells for the grid: step by step, as any other query */
        if (!rc && !by_series)
            rc = load_all(&c, q->root, start_ms, end_ms);
    }
    for (int64_t t = start_ms; !rc && !by_series && t <= end_ms; t += step_ms) {
        struct value v;
        if ((rc = eval(&c, q->root, t, &v)) || (v.type == PQL_TYPE_VECTOR &&
                                                (rc = check_vector(&c, &v))))
            break;
        struct sample scalar = {NULL, 0, v.scalar, false};
        struct sample *s = v.type == PQL_TYPE_SCALAR ? &scalar : v.s;
        size_t n = v.type == PQL_TYPE_SCALAR ? 1 : v.n;
        for (size_t i = 0; i < n; i++) {
            uint64_t sig = labels_sig(s[i].labels, s[i].n_labels);
            uint32_t idx;
            if (firn_u64map_put(&index, sig, (uint32_t)n_rs, &idx) == 1) {
                rs = firn_grow(rs, n_rs, &cap_rs, sizeof *rs, 64);
                idx = (uint32_t)n_rs++;
                rs[idx] = (struct range_series){
                    .labels = copy_labels(out->arena, s[i].labels, s[i].n_labels),
                    .n_labels = s[i].n_labels};
            }
            struct range_series *x = &rs[idx];
            if ((rc = count_points(&c, 1)) < 0)
                break;
            /* in the result's arena, where the points stay */
            x->p = firn_arena_grow(out->arena, x->p, x->n, &x->cap, sizeof *x->p, 16);
            x->p[x->n++] = (pql_point){t, s[i].v};
        }
        /* the step's values are done with: start its arena over */
        firn_arena_free(c.step);
        c.step = firn_arena_new(0);
    }
    firn_u64map_destroy(&index);
    if (!rc) {
        out->type = PQL_TYPE_MATRIX;
        out->series = firn_arena_calloc(out->arena, n_rs + 1, sizeof *out->series);
        for (size_t i = 0; i < n_rs; i++)
            out->series[i] = (pql_series){rs[i].labels, rs[i].n_labels, rs[i].p, rs[i].n};
        out->n_series = n_rs;
        if (n_rs > 1) {
            /* sort by labels, as Prometheus returns them */
            struct sample *tmp = firn_xcalloc(n_rs, sizeof *tmp);
            pql_series *sorted = firn_xcalloc(n_rs, sizeof *sorted);
            for (size_t i = 0; i < n_rs; i++)
                tmp[i] = (struct sample){out->series[i].labels, out->series[i].n_labels,
                                         (double)i, false};
            firn_sort(tmp, n_rs, sizeof *tmp, cmp_sample);
            for (size_t i = 0; i < n_rs; i++)
                sorted[i] = out->series[(size_t)tmp[i].v];
            memcpy(out->series, sorted, n_rs * sizeof *sorted);
            free(tmp);
            free(sorted);
        }
    }
    free(rs);
    ctx_free(&c);
    if (rc) {
        pql_result_free(out);
        return rc < 0 ? rc : FIRN_EIO;
    }
    return 0;
}
