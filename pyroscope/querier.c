/* querier.c -- querier.v1.QuerierService over firn's store, with
 * Pyroscope's semantics (pkg/querier, pkg/model of grafana/pyroscope):
 *   ProfileTypes     the distinct profile type IDs with data in the range;
 *   LabelNames       sorted names of the matching series' labels, the
 *                    __-prefixed included (Grafana hides those itself);
 *   LabelValues      sorted non-empty values of one label;
 *   Series           the distinct projections of the matching series onto
 *                    label_names (every label when empty);
 *   GetProfileStats  whether there is data, the oldest and newest time (ms);
 *   SelectMergeStacktraces  the merged flame graph (flamegraph.c), stacks
 *                    filtered by the call site prefix; no flame graph when
 *                    nothing matched, and for span, trace or profile ID
 *                    selectors (firn's profiles carry none of those);
 *   SelectMergeProfile  the merged profile as pprof;
 *   Diff             both sides' flame graphs as one FlameGraphDiff (the
 *                    profile types must match);
 *   SelectSeries     per group_by value set, a point per step at its right
 *                    edge: start, start + step, ... <= end, each the SUM (or
 *                    AVERAGE) of the totals of the profiles in (edge - step,
 *                    edge]; empty steps left out; top limit series by total;
 *                    with a call site, a profile's total is that of its
 *                    samples under it.
 * Times are milliseconds; start = end = 0 means all time (what old Grafana
 * sends).
 */
#include <assert.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "pyroscope/internal.h"

static int str_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts v and drops duplicates; returns the new count. */
static size_t sort_unique(char **v, size_t n)
{
    firn_sort(v, n, sizeof *v, str_cmp);
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        if (o == 0 || strcmp(v[o - 1], v[i]) != 0)
            v[o++] = v[i];
    return o;
}

/* Opens the reader and selects; the reader is the caller's to close. */
static tsdb_reader *select_series(pyroscope_call *c, char *const *sel, size_t n_sel,
                                  const char *type, int64_t *start, int64_t *end,
                                  pyroscope_selection *out, firn_err *err)
{
    if (pyroscope_range(start, end, err) < 0)
        return NULL;
    tsdb_reader *r = pyroscope_reader(c, err);
    if (r && pyroscope_select(c, r, sel, n_sel, type, *start, *end, out, err) < 0) {
        tsdb_reader_close(r);
        return NULL;
    }
    return r;
}

int pyroscope_rpc_profile_types(pyroscope_call *c, const ProtobufCMessage *in,
                                ProtobufCMessage **out, firn_err *err)
{
    const Querier__V1__ProfileTypesRequest *req = (const void *)in;
    int64_t start = req->start, end = req->end;
    pyroscope_selection s;
    tsdb_reader *r = select_series(c, NULL, 0, NULL, &start, &end, &s, err);
    if (!r)
        return err->code;
    tsdb_reader_close(r);
    Querier__V1__ProfileTypesResponse *resp =
        pyroscope_new(c, &querier__v1__profile_types_response__descriptor);
    char **ids = firn_arena_calloc(c->arena, s.n + 1, sizeof *ids);
    for (size_t i = 0; i < s.n; i++)
        ids[i] = (char *)s.v[i].profile_type;
    size_t n = sort_unique(ids, s.n);
    resp->profile_types = firn_arena_calloc(c->arena, n + 1, sizeof *resp->profile_types);
    for (size_t i = 0; i < n; i++) {
        const pyroscope_series *v = NULL;
        for (size_t k = 0; k < s.n && !v; k++)
            if (strcmp(s.v[k].profile_type, ids[i]) == 0)
                v = &s.v[k];
        Types__V1__ProfileType *pt = pyroscope_new(c, &types__v1__profile_type__descriptor);
        pt->id = ids[i];
        pt->name = (char *)pyroscope_label(v, "__name__");
        pt->sample_type = (char *)pyroscope_label(v, "__type__");
        pt->sample_unit = (char *)pyroscope_label(v, "__unit__");
        pt->period_type = (char *)pyroscope_label(v, "__period_type__");
        pt->period_unit = (char *)pyroscope_label(v, "__period_unit__");
        resp->profile_types[resp->n_profile_types++] = pt;
    }
    *out = &resp->base;
    return 0;
}

/* Names (or values of one name) over a selection, sorted and unique. */
static void collect(pyroscope_call *c, const pyroscope_selection *s, const char *name,
                    char ***v, size_t *n)
{
    size_t cap = 0;
    for (size_t i = 0; i < s->n; i++)
        cap += name ? 1 : s->v[i].n_labels;
    char **out = firn_arena_calloc(c->arena, cap + 1, sizeof *out);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (name) {
            const char *val = pyroscope_label(&s->v[i], name);
            if (val && *val)
                out[k++] = (char *)val;
        } else {
            for (size_t l = 0; l < s->v[i].n_labels; l++)
                out[k++] = (char *)s->v[i].labels[l].name;
        }
    }
    *n = sort_unique(out, k);
    *v = out;
}

/* LabelNames (name NULL) and LabelValues: sorted, unique, into a response
 * of type d whose names are *names / *n_names. */
static int names_rpc(pyroscope_call *c, char *const *matchers, size_t n_matchers, int64_t start,
                     int64_t end, const char *name, const ProtobufCMessageDescriptor *d,
                     ProtobufCMessage **out, firn_err *err)
{
    pyroscope_selection s;
    tsdb_reader *r = select_series(c, matchers, n_matchers, NULL, &start, &end, &s, err);
    if (!r)
        return err->code;
    tsdb_reader_close(r);
    ProtobufCMessage *resp = pyroscope_new(c, d);
    /* both responses are {names = 1}: the one field's count and array */
    const ProtobufCFieldDescriptor *f = &d->fields[0];
    assert(d->n_fields == 1 && f->label == PROTOBUF_C_LABEL_REPEATED &&
           f->type == PROTOBUF_C_TYPE_STRING);
    collect(c, &s, name, (char ***)((char *)resp + f->offset),
            (size_t *)((char *)resp + f->quantifier_offset));
    *out = resp;
    return 0;
}

int pyroscope_rpc_label_names(pyroscope_call *c, const ProtobufCMessage *in,
                              ProtobufCMessage **out, firn_err *err)
{
    const Types__V1__LabelNamesRequest *req = (const void *)in;
    return names_rpc(c, req->matchers, req->n_matchers, req->start, req->end, NULL,
                     &types__v1__label_names_response__descriptor, out, err);
}

int pyroscope_rpc_label_values(pyroscope_call *c, const ProtobufCMessage *in,
                               ProtobufCMessage **out, firn_err *err)
{
    const Types__V1__LabelValuesRequest *req = (const void *)in;
    if (!req->name || !*req->name)
        return firn_errf(err, FIRN_EINVAL, "name: the label whose values to list is required");
    return names_rpc(c, req->matchers, req->n_matchers, req->start, req->end, req->name,
                     &types__v1__label_values_response__descriptor, out, err);
}

/* A series' labels restricted to names (all when n_names is 0) as
 * Types__V1__Labels, and its text key for deduplication (key has no cap). */
static Types__V1__Labels *project(pyroscope_call *c, const pyroscope_series *v,
                                  char *const *names, size_t n_names, firn_buf *key)
{
    Types__V1__Labels *l = pyroscope_new(c, &types__v1__labels__descriptor);
    l->labels = firn_arena_calloc(c->arena, v->n_labels + 1, sizeof *l->labels);
    key->len = 0;
    for (size_t i = 0; i < v->n_labels; i++) {
        bool want = n_names == 0;
        for (size_t k = 0; k < n_names && !want; k++)
            want = strcmp(names[k], v->labels[i].name) == 0;
        if (!want)
            continue;
        Types__V1__LabelPair *p = pyroscope_new(c, &types__v1__label_pair__descriptor);
        p->name = (char *)v->labels[i].name;
        p->value = (char *)v->labels[i].value;
        l->labels[l->n_labels++] = p;
        firn_buf_puts(key, p->name);
        firn_buf_append(key, "\xff", 1);
        firn_buf_puts(key, p->value);
        firn_buf_append(key, "\xfe", 2);   /* the terminating NUL too */
        key->len--;
    }
    firn_buf_append(key, "", 1);
    return l;
}

typedef struct keyed {
    const char *key;
    void *item;
} keyed;

static int keyed_cmp(const void *a, const void *b)
{
    return strcmp(((const keyed *)a)->key, ((const keyed *)b)->key);
}

int pyroscope_rpc_series(pyroscope_call *c, const ProtobufCMessage *in, ProtobufCMessage **out,
                         firn_err *err)
{
    const Querier__V1__SeriesRequest *req = (const void *)in;
    int64_t start = req->start, end = req->end;
    pyroscope_selection s;
    tsdb_reader *r = select_series(c, req->matchers, req->n_matchers, NULL, &start, &end, &s,
                                   err);
    if (!r)
        return err->code;
    tsdb_reader_close(r);
    Querier__V1__SeriesResponse *resp = pyroscope_new(c, &querier__v1__series_response__descriptor);
    keyed *k = firn_arena_calloc(c->arena, s.n + 1, sizeof *k);
    firn_buf key = {0};
    for (size_t i = 0; i < s.n; i++) {
        k[i].item = project(c, &s.v[i], req->label_names, req->n_label_names, &key);
        k[i].key = firn_arena_strndup(c->arena, key.data, key.len);
    }
    firn_buf_free(&key);
    firn_sort(k, s.n, sizeof *k, keyed_cmp);
    resp->labels_set = firn_arena_calloc(c->arena, s.n + 1, sizeof *resp->labels_set);
    for (size_t i = 0; i < s.n; i++)
        if (i == 0 || strcmp(k[i - 1].key, k[i].key) != 0)
            resp->labels_set[resp->n_labels_set++] = k[i].item;
    *out = &resp->base;
    return 0;
}

int pyroscope_rpc_profile_stats(pyroscope_call *c, const ProtobufCMessage *in,
                                ProtobufCMessage **out, firn_err *err)
{
    (void)in;
    int64_t start = 0, end = 0;
    pyroscope_selection s;
    tsdb_reader *r = select_series(c, NULL, 0, NULL, &start, &end, &s, err);
    if (!r)
        return err->code;
    tsdb_reader_close(r);
    Types__V1__GetProfileStatsResponse *resp =
        pyroscope_new(c, &types__v1__get_profile_stats_response__descriptor);
    for (size_t i = 0; i < s.n; i++) {
        const tsdb_series *t = s.v[i].series;
        if (!resp->data_ingested || t->min_time_ms < resp->oldest_profile_time)
            resp->oldest_profile_time = t->min_time_ms;
        if (!resp->data_ingested || t->max_time_ms > resp->newest_profile_time)
            resp->newest_profile_time = t->max_time_ms;
        resp->data_ingested = 1;
    }
    *out = &resp->base;
    return 0;
}

/* ---- merges ------------------------------------------------------------------------- */

typedef struct merge_query {
    const char *type, *selector;
    int64_t start, end;
    char **call_site;
    size_t n_call_site;
    bool nothing;   /* a span, trace or profile ID selector: nothing in firn matches */
} merge_query;

/* The merged, filtered profile of a query; NULL and err unset when
 * nothing matched. */
static pprof_profile *merge(pyroscope_call *c, merge_query *q, firn_err *err)
{
    if (!q->type || !*q->type) {
        firn_errf(err, FIRN_EINVAL, "profile_typeID is required (e.g. "
                  "process_cpu:cpu:nanoseconds:cpu:nanoseconds)");
        return NULL;
    }
    char *sel[] = {(char *)(q->selector && *q->selector ? q->selector : "{}")};
    pyroscope_selection s;
    /* the slot first: a reader pins the store's pages while it waits */
    pyroscope_query_enter(c);
    tsdb_reader *r = select_series(c, sel, 1, q->type, &q->start, &q->end, &s, err);
    if (!r)
        return NULL;
    pprof_profile *p = q->nothing ? NULL : pyroscope_merge(c, r, &s, q->start, q->end, err);
    tsdb_reader_close(r);
    if (p)
        pyroscope_filter_call_site(p, q->call_site, q->n_call_site);
    return p;
}

static int merge_tree(pyroscope_call *c, merge_query *q, int64_t max_nodes,
                      Querier__V1__FlameGraph **fg, firn_err *err)
{
    *fg = NULL;
    pprof_profile *p = merge(c, q, err);
    if (!p)
        return err->code;
    pyroscope_tree *t = pyroscope_tree_build(c, p, err);
    pprof_free(p);
    if (!t)
        return err->code;
    *fg = pyroscope_flamegraph(c, t, max_nodes);   /* NULL: nothing to show */
    pyroscope_tree_free(t);
    return 0;
}

/* A SelectMergeStacktracesRequest as a merge query and its max_nodes. */
static int stacktraces_query(pyroscope_call *c,
                             const Querier__V1__SelectMergeStacktracesRequest *req,
                             merge_query *q, int64_t *max_nodes, firn_err *err)
{
    if (pyroscope_max_nodes(req->_max_nodes_case ==
                                QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST___MAX_NODES_MAX_NODES,
                            req->max_nodes, max_nodes, err) < 0)
        return err->code;
    if (req->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_TREE ||
        req->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_DOT ||
        req->format == QUERIER__V1__PROFILE_FORMAT__PROFILE_FORMAT_PPROF)
        return firn_errf(err, FIRN_EINVAL, "format: firn answers flame graphs only "
                         "(PROFILE_FORMAT_FLAMEGRAPH); use SelectMergeProfile for pprof");
    *q = (merge_query){.type = req->profile_typeid, .selector = req->label_selector,
                       .start = req->start, .end = req->end,
                       .nothing = req->n_profile_id_selector || req->n_trace_id_selector ||
                                  req->n_span_selector};
    if (req->_stack_trace_selector_case ==
        QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST___STACK_TRACE_SELECTOR_STACK_TRACE_SELECTOR)
        q->n_call_site = pyroscope_call_site(c, req->stack_trace_selector, &q->call_site);
    return 0;
}

int pyroscope_rpc_merge_stacktraces(pyroscope_call *c, const ProtobufCMessage *in,
                                    ProtobufCMessage **out, firn_err *err)
{
    merge_query q;
    int64_t max_nodes;
    if (stacktraces_query(c, (const void *)in, &q, &max_nodes, err) < 0)
        return err->code;
    Querier__V1__SelectMergeStacktracesResponse *resp =
        pyroscope_new(c, &querier__v1__select_merge_stacktraces_response__descriptor);
    firn_err_clear(err);
    if (merge_tree(c, &q, max_nodes, &resp->flamegraph, err) < 0)
        return err->code;
    *out = &resp->base;
    return 0;
}

int pyroscope_diff(pyroscope_call *c, const Querier__V1__DiffRequest *req,
                   Querier__V1__FlameGraphDiff **fg, firn_err *err)
{
    if (!req->left || !req->right)
        return firn_errf(err, FIRN_EINVAL, "left and right are both required");
    merge_query q[2];
    int64_t max_nodes, ignored;
    if (stacktraces_query(c, req->left, &q[0], &max_nodes, err) < 0 ||
        stacktraces_query(c, req->right, &q[1], &ignored, err) < 0)
        return err->code;
    if (!q[0].type || !q[1].type || strcmp(q[0].type, q[1].type) != 0)
        return firn_errf(err, FIRN_EINVAL, "profile types must match: left %.200s, right %.200s",
                         q[0].type ? q[0].type : "", q[1].type ? q[1].type : "");
    pyroscope_tree *t = pyroscope_tree_new();
    int rc = 0;
    for (int side = 0; side < 2 && rc == 0; side++) {
        firn_err_clear(err);
        pprof_profile *p = merge(c, &q[side], err);
        if (!p && err->code)
            rc = err->code;
        else if (p)
            rc = pyroscope_tree_add_query(c, t, p, side, err);
        pprof_free(p);
    }
    if (rc == 0)
        *fg = pyroscope_flamegraph_diff(c, t, max_nodes);
    pyroscope_tree_free(t);
    return rc;
}

int pyroscope_rpc_diff(pyroscope_call *c, const ProtobufCMessage *in, ProtobufCMessage **out,
                       firn_err *err)
{
    Querier__V1__DiffResponse *resp = pyroscope_new(c, &querier__v1__diff_response__descriptor);
    if (pyroscope_diff(c, (const void *)in, &resp->flamegraph, err) < 0)
        return err->code;
    *out = &resp->base;
    return 0;
}

int pyroscope_rpc_merge_span_profile(pyroscope_call *c, const ProtobufCMessage *in,
                                     ProtobufCMessage **out, firn_err *err)
{
    (void)in;
    (void)err;
    /* spans select nothing in firn: an empty answer, which Grafana shows
     * as "no data" */
    *out = pyroscope_new(c, &querier__v1__select_merge_span_profile_response__descriptor);
    return 0;
}

int pyroscope_rpc_merge_profile(pyroscope_call *c, const ProtobufCMessage *in,
                                ProtobufCMessage **out, firn_err *err)
{
    const Querier__V1__SelectMergeProfileRequest *req = (const void *)in;
    merge_query q = {.type = req->profile_typeid, .selector = req->label_selector,
                     .start = req->start, .end = req->end,
                     .nothing = req->n_profile_id_selector || req->n_trace_id_selector};
    if (req->_stack_trace_selector_case ==
        QUERIER__V1__SELECT_MERGE_PROFILE_REQUEST___STACK_TRACE_SELECTOR_STACK_TRACE_SELECTOR)
        q.n_call_site = pyroscope_call_site(c, req->stack_trace_selector, &q.call_site);
    firn_err_clear(err);
    pprof_profile *p = merge(c, &q, err);
    if (!p && err->code)
        return err->code;
    if (!p) {   /* nothing matched: an empty profile */
        *out = pyroscope_new(c, &google__v1__profile__descriptor);
        return 0;
    }
    int rc = pprof_encode(p, 0, &c->raw, &c->raw_len, err);
    pprof_free(p);
    if (rc < 0)
        return rc;
    c->raw_type = &google__v1__profile__descriptor;
    return 0;
}

/* ---- SelectSeries ------------------------------------------------------------------- */

typedef struct group {
    const char *key;
    Types__V1__Labels *labels;
    double *sum;          /* per step edge */
    uint32_t *count;
    double total;
} group;

typedef struct scan_ctx {
    group *g;
    int64_t start, step;
    size_t n_edges;
    /* a call site filter: only the samples under it count */
    tsdb_reader *r;
    char **call_site;
    size_t n_call_site;
    firn_u64map *verdicts;   /* partition << 32 | stack -> 1 under the call site, 2 not */
    firn_err *err;
} scan_ctx;

/* Whether a stored stack begins, root first, with the call site. */
static int under_call_site(scan_ctx *sc, uint32_t partition, uint32_t stack, bool *yes)
{
    uint64_t key = (uint64_t)partition << 32 | stack;
    uint32_t v;
    if (firn_u64map_get(sc->verdicts, key, &v) == 1) {
        *yes = v == 1;
        return 0;
    }
    const char **names;
    size_t n;
    int rc = tsdb_stack_functions(sc->r, partition, stack, &names, &n, sc->err);
    if (rc < 0)
        return rc;
    *yes = n >= sc->n_call_site;
    for (size_t i = 0; *yes && i < sc->n_call_site; i++)   /* names are leaf first */
        *yes = strcmp(names[n - 1 - i], sc->call_site[i]) == 0;
    firn_u64map_put(sc->verdicts, key, *yes ? 1 : 2, NULL);
    return 0;
}

static int scan_block(void *ctx, const tsdb_block *b)
{
    scan_ctx *sc = ctx;
    /* the first edge at or after the profile's time */
    int64_t d = b->timestamp_ms - sc->start;
    int64_t i = d <= 0 ? 0 : (d + sc->step - 1) / sc->step;
    if (i < 0 || (size_t)i >= sc->n_edges)
        return 0;
    int64_t total = b->total;
    if (sc->n_call_site) {
        total = 0;
        for (size_t k = 0; k < b->n_samples; k++) {
            bool yes;
            int rc = under_call_site(sc, b->partition, b->stacks[k], &yes);
            if (rc < 0)
                return rc;
            if (yes)
                total = pprof_add_sat(total, b->values[k]);
        }
    }
    sc->g->sum[i] += (double)total;
    sc->g->count[i]++;
    sc->g->total += (double)total;
    return 0;
}

static int group_cmp_total(const void *a, const void *b)
{
    double x = (*(group *const *)a)->total, y = (*(group *const *)b)->total;
    return (x < y) - (x > y);
}

static int group_cmp_key(const void *a, const void *b)
{
    return strcmp((*(group *const *)a)->key, (*(group *const *)b)->key);
}

/* Most points a SelectSeries answer holds in all (series x steps). */
#define SERIES_POINTS_MAX (10u << 20)

int pyroscope_rpc_select_series(pyroscope_call *c, const ProtobufCMessage *in,
                                ProtobufCMessage **out, firn_err *err)
{
    const Querier__V1__SelectSeriesRequest *req = (const void *)in;
    if (!req->profile_typeid || !*req->profile_typeid)
        return firn_errf(err, FIRN_EINVAL, "profile_typeID is required (e.g. "
                         "process_cpu:cpu:nanoseconds:cpu:nanoseconds)");
    if (!(req->step >= 0.001) || req->step > 1e12)
        return firn_errf(err, FIRN_EINVAL, "step %g: want at least 0.001 (seconds)", req->step);
    char **call_site = NULL;
    size_t n_call_site = 0;
    if (req->_stack_trace_selector_case ==
        QUERIER__V1__SELECT_SERIES_REQUEST___STACK_TRACE_SELECTOR_STACK_TRACE_SELECTOR)
        n_call_site = pyroscope_call_site(c, req->stack_trace_selector, &call_site);
    bool average = req->_aggregation_case ==
                       QUERIER__V1__SELECT_SERIES_REQUEST___AGGREGATION_AGGREGATION &&
                   req->aggregation ==
                       TYPES__V1__TIME_SERIES_AGGREGATION_TYPE__TIME_SERIES_AGGREGATION_TYPE_AVERAGE;
    int64_t start = req->start, end = req->end;
    if (start == 0 && end == 0)
        return firn_errf(err, FIRN_EINVAL, "start and end are required");
    if (end < start)
        return firn_errf(err, FIRN_EINVAL, "end (%lld) is before start (%lld)",
                         (long long)end, (long long)start);
    int64_t step = (int64_t)llround(req->step * 1000);
    size_t n_edges = (size_t)((end - start) / step) + 1;
    if (n_edges > SERIES_POINTS_MAX)
        return firn_errf(err, FIRN_EINVAL, "%zu steps of %gs from start to end: at most %u",
                         n_edges, req->step, SERIES_POINTS_MAX);
    char *sel[] = {req->label_selector && *req->label_selector ? req->label_selector : "{}"};
    pyroscope_selection s;
    int64_t from = start - step, to = end;
    pyroscope_query_enter(c);
    tsdb_reader *r = select_series(c, sel, 1, req->profile_typeid, &from, &to, &s, err);
    if (!r)
        return err->code;
    group **groups = firn_arena_calloc(c->arena, s.n + 1, sizeof *groups);
    size_t n_groups = 0;
    firn_buf key = {0};
    firn_u64map verdicts;
    firn_u64map_init(&verdicts, n_call_site ? 4096 : 1);
    int rc = 0;
    for (size_t i = 0; i < s.n && rc == 0; i++) {
        /* group_by keeps only the named labels; none: one series, no labels */
        Types__V1__Labels *l = project(c, &s.v[i], req->group_by, req->n_group_by, &key);
        if (req->n_group_by == 0) {
            l->n_labels = 0;
            key.len = 0;
            firn_buf_append(&key, "", 1);
        }
        group *g = NULL;
        for (size_t k = 0; k < n_groups && !g; k++)
            if (strcmp(groups[k]->key, key.data) == 0)
                g = groups[k];
        if (!g) {
            /* a group's points are samples of the query too */
            if ((uint64_t)(n_groups + 1) * n_edges > c->samples_left) {
                c->query_rc = FIRN_ETOOBIG;
                rc = firn_errf(err, FIRN_ETOOBIG, "%s", PQL_TOO_MANY_SAMPLES);
                break;
            }
            if ((uint64_t)(n_groups + 1) * n_edges > SERIES_POINTS_MAX) {
                rc = firn_errf(err, FIRN_ETOOBIG, "more than %u points: narrow the selector "
                               "or widen the step", SERIES_POINTS_MAX);
                break;
            }
            /* within SERIES_POINTS_MAX, checked above */
            g = firn_arena_calloc(c->arena, 1, sizeof *g);
            g->key = firn_arena_strdup(c->arena, key.data);
            g->sum = firn_xcalloc(n_edges, sizeof *g->sum);
            g->count = firn_xcalloc(n_edges, sizeof *g->count);
            g->labels = l;
            groups[n_groups++] = g;
        }
        scan_ctx sc = {.g = g, .start = start, .step = step, .n_edges = n_edges, .r = r,
                       .call_site = call_site, .n_call_site = n_call_site,
                       .verdicts = &verdicts, .err = err};
        /* totals alone unless stacks must be looked at */
        rc = tsdb_scan(r, s.v[i].series->id, start - step + 1, end,
                       n_call_site ? 0 : TSDB_SCAN_TOTALS, scan_block, &sc, err);
    }
    firn_u64map_destroy(&verdicts);
    firn_buf_free(&key);
    tsdb_reader_close(r);
    Querier__V1__SelectSeriesResponse *resp =
        rc == 0 ? pyroscope_new(c, &querier__v1__select_series_response__descriptor) : NULL;
    if (rc == 0) {
        if (req->_limit_case == QUERIER__V1__SELECT_SERIES_REQUEST___LIMIT_LIMIT &&
            req->limit > 0 && (size_t)req->limit < n_groups) {
            firn_sort(groups, n_groups, sizeof *groups, group_cmp_total);
            n_groups = (size_t)req->limit;
        }
        firn_sort(groups, n_groups, sizeof *groups, group_cmp_key);
        resp->series = firn_arena_calloc(c->arena, n_groups + 1, sizeof *resp->series);
    }
    for (size_t gi = 0; rc == 0 && gi < n_groups; gi++) {
        group *g = groups[gi];
        Types__V1__Series *ser = pyroscope_new(c, &types__v1__series__descriptor);
        size_t n_points = 0;
        for (size_t i = 0; i < n_edges; i++)
            n_points += g->count[i] != 0;
        Types__V1__Point **pts = firn_arena_calloc(c->arena, n_points + 1, sizeof *pts);
        Types__V1__Point *pv = firn_arena_calloc(c->arena, n_points + 1, sizeof *pv);
        ser->labels = g->labels->labels;
        ser->n_labels = g->labels->n_labels;
        for (size_t i = 0, k = 0; i < n_edges; i++) {
            if (!g->count[i])
                continue;
            types__v1__point__init(&pv[k]);
            pv[k].timestamp = start + (int64_t)i * step;
            pv[k].value = average ? g->sum[i] / g->count[i] : g->sum[i];
            pts[k] = &pv[k];
            k++;
        }
        ser->points = pts;
        ser->n_points = n_points;
        resp->series[resp->n_series++] = ser;
    }
    for (size_t i = 0; i < s.n && groups[i]; i++) {
        free(groups[i]->sum);
        free(groups[i]->count);
    }
    if (rc < 0)
        return rc;
    *out = &resp->base;
    return 0;
}
