/* view.c -- firn's series in Pyroscope's label model, and Pyroscope's
 * selectors over them.
 *
 * firn's __name__ is the whole profile type, name:sample_type:sample_unit:
 * period_type:period_unit[:delta].  Pyroscope's view of the same series:
 *   __profile_type__   the first five fields (Pyroscope has no :delta: it
 *                      stores every profile per interval, as firn's :delta
 *                      types are), e.g. process_cpu:cpu:nanoseconds:cpu:
 *                      nanoseconds -- Grafana converts CPU to cores by it;
 *   __name__           the profile name, the first field (process_cpu);
 *   __type__, __unit__, __period_type__, __period_unit__  fields 2 to 5;
 *   service_name       the series' own service_name label, else its job
 *                      label, else "unknown_service" (OpenTelemetry's name
 *                      for a service without one);
 *   every other label as it is.
 * A selector ({k="v", k2=~"re"}, as Prometheus's, optionally after a
 * metric name that is then __name__) is matched against this view, so
 * every matcher means what it means in Pyroscope.  Matchers on firn's own
 * labels narrow the store's lookup first; the others are checked on each
 * view.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyroscope/internal.h"

#define UNKNOWN_SERVICE "unknown_service"

static const char *const TYPE_LABELS[5] = {"__name__", "__type__", "__unit__",
                                           "__period_type__", "__period_unit__"};

/* Labels that exist only in the view; matchers on them are not the store's. */
static bool is_view_label(const char *name)
{
    if (strcmp(name, "__profile_type__") == 0 || strcmp(name, "service_name") == 0)
        return true;
    for (int i = 0; i < 5; i++)
        if (strcmp(name, TYPE_LABELS[i]) == 0)
            return true;
    return false;
}

int pyroscope_range(int64_t *start_ms, int64_t *end_ms, firn_err *err)
{
    if (*start_ms == 0 && *end_ms == 0) {   /* old Grafana sends no range: all time */
        *start_ms = INT64_MIN;
        *end_ms = INT64_MAX;
        return 0;
    }
    if (*end_ms < *start_ms)
        return firn_errf(err, FIRN_EINVAL, "end (%lld) is before start (%lld)",
                         (long long)*end_ms, (long long)*start_ms);
    return 0;
}

tsdb_reader *pyroscope_reader(pyroscope_call *c, firn_err *err)
{
    if (!c->api->db) {
        firn_errf(err, FIRN_EBUSY, "no store");
        return NULL;
    }
    return tsdb_reader_open(c->api->db, err);
}

static int label_cmp(const void *a, const void *b)
{
    return strcmp(((const firn_label *)a)->name, ((const firn_label *)b)->name);
}

/* The view of one series; -1 when its __name__ is not a profile type. */
static int view_of(firn_arena *a, const tsdb_series *s, pyroscope_series *out)
{
    const char *type = firn_labels_get(s->labels, s->n_labels, FIRN_LABEL_NAME);
    firn_profile_type pt;
    if (!type || firn_profile_type_parse(type, &pt, NULL) < 0)
        return -1;
    size_t n = 0;
    firn_label *l = firn_arena_calloc(a, s->n_labels + 8, sizeof *l);
    for (size_t i = 0; i < s->n_labels; i++)
        if (!is_view_label(s->labels[i].name) || strcmp(s->labels[i].name, "service_name") == 0)
            l[n++] = s->labels[i];
    for (int f = 0; f < 5; f++)
        l[n++] = (firn_label){TYPE_LABELS[f], firn_arena_strndup(a, pt.field[f], pt.len[f])};
    size_t id_len = 4;
    for (int f = 0; f < 5; f++)
        id_len += pt.len[f];
    char *id = firn_arena_alloc(a, id_len + 1);
    snprintf(id, id_len + 1, "%.*s:%.*s:%.*s:%.*s:%.*s", (int)pt.len[0], pt.field[0],
             (int)pt.len[1], pt.field[1], (int)pt.len[2], pt.field[2], (int)pt.len[3],
             pt.field[3], (int)pt.len[4], pt.field[4]);
    l[n++] = (firn_label){"__profile_type__", id};
    if (!firn_labels_get(s->labels, s->n_labels, "service_name")) {
        const char *job = firn_labels_get(s->labels, s->n_labels, "job");
        l[n++] = (firn_label){"service_name", job && *job ? job : UNKNOWN_SERVICE};
    }
    firn_sort(l, n, sizeof *l, label_cmp);
    *out = (pyroscope_series){.series = s, .labels = l, .n_labels = n, .profile_type = id,
                              .delta = pt.delta};
    return 0;
}

const char *pyroscope_label(const pyroscope_series *s, const char *name)
{
    return firn_labels_get(s->labels, s->n_labels, name);
}

/* A selector parsed by pql: Prometheus's syntax, with "{}" (everything)
 * and selectors whose matchers all match "" allowed, as Pyroscope allows
 * them.  pql wants one matcher that does not match "": when the selector
 * has none, one every view has is added (__name__ is never empty); errors
 * are those of the selector as written, so their columns are the client's. */
static int parse_selector(const char *text, firn_arena *a, pql_query *q, firn_err *err)
{
    const char *p = text + strspn(text, " \t\r\n");
    firn_err first = {0};
    int rc = *p ? pql_parse(p, q, &first) : FIRN_EINVAL;
    if (rc < 0 && (*p == '{' || *p == '\0')) {
        const char *inner = *p ? p + 1 : "}";
        const char *rest = inner + strspn(inner, " \t\r\n");
        size_t n = strlen(inner) + 32;
        char *own = firn_arena_alloc(a, n);
        snprintf(own, n, "{__name__=~\".+\"%s%s", *rest == '}' ? "" : ",", inner);
        rc = pql_parse(own, q, NULL);
    }
    if (rc < 0 && err)
        *err = first;
    if (rc == 0 && q->root->kind != PQL_VECTOR_SELECTOR) {
        pql_query_free(q);
        rc = firn_errf(err, FIRN_EINVAL, "want a label selector such as {service_name=\"x\"}");
    }
    if (rc < 0)
        firn_err_prefix(err, "selector \"%.200s\"", text);
    return rc;
}

static bool view_matches(const pyroscope_series *v, const firn_matcher *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const char *val = pyroscope_label(v, m[i].name);
        if (!firn_matcher_matches(&m[i], val ? val : ""))
            return false;
    }
    return true;
}

typedef struct picked {
    pyroscope_series *v;
    size_t n, cap;
    firn_u64map seen;   /* series id -> 1 */
} picked;

static int select_one(pyroscope_call *c, tsdb_reader *r, const pql_expr *sel,
                      const char *profile_type, int64_t start, int64_t end, picked *pk,
                      firn_err *err)
{
    /* the store's own labels narrow the lookup */
    firn_matcher *store = firn_arena_calloc(c->arena, sel->sel.n_matchers + 1, sizeof *store);
    size_t n_store = 0;
    for (size_t i = 0; i < sel->sel.n_matchers; i++)
        if (!is_view_label(sel->sel.matchers[i].name))
            store[n_store++] = sel->sel.matchers[i];
    tsdb_series_set set;
    int rc = tsdb_select(r, store, n_store, start, end, &set, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < set.n && rc == 0; i++) {
        uint32_t dummy;
        if (firn_u64map_get(&pk->seen, set.series[i].id, &dummy) == 1)
            continue;
        /* the series outlives the set: copy it into the call's arena */
        tsdb_series *s = firn_arena_alloc(c->arena, sizeof *s);
        firn_label *l = firn_arena_calloc(c->arena, set.series[i].n_labels + 1, sizeof *l);
        *s = set.series[i];
        for (size_t k = 0; k < s->n_labels; k++) {
            l[k].name = firn_arena_strdup(c->arena, s->labels[k].name);
            l[k].value = firn_arena_strdup(c->arena, s->labels[k].value);
        }
        s->labels = l;
        pyroscope_series v;
        if (view_of(c->arena, s, &v) < 0)
            continue;
        if (profile_type && *profile_type && strcmp(v.profile_type, profile_type) != 0)
            continue;
        if (!view_matches(&v, sel->sel.matchers, sel->sel.n_matchers))
            continue;
        pk->v = firn_grow(pk->v, pk->n, &pk->cap, sizeof *pk->v, 64);
        firn_u64map_put(&pk->seen, s->id, 1, NULL);
        pk->v[pk->n++] = v;
    }
    tsdb_series_set_free(&set);
    return rc;
}

/* Where a 5-field ID has both A and A:delta series, keep the :delta ones
 * (firn stores event types as deltas; a plain one is a second copy). */
static void prefer_delta(picked *pk)
{
    size_t o = 0;
    for (size_t i = 0; i < pk->n; i++) {
        bool drop = false;
        if (!pk->v[i].delta)
            for (size_t k = 0; k < pk->n && !drop; k++)
                drop = pk->v[k].delta &&
                       strcmp(pk->v[k].profile_type, pk->v[i].profile_type) == 0;
        if (!drop)
            pk->v[o++] = pk->v[i];
    }
    pk->n = o;
}

int pyroscope_select(pyroscope_call *c, tsdb_reader *r, char *const *selectors, size_t n_sel,
                     const char *profile_type, int64_t start_ms, int64_t end_ms,
                     pyroscope_selection *out, firn_err *err)
{
    picked pk = {0};
    firn_u64map_init(&pk.seen, 256);
    static char *const EVERYTHING[] = {"{}"};
    if (n_sel == 0) {
        selectors = EVERYTHING;
        n_sel = 1;
    }
    int rc = 0;
    for (size_t i = 0; i < n_sel && rc == 0; i++) {
        pql_query q;
        if ((rc = parse_selector(selectors[i], c->arena, &q, err)) < 0)
            break;
        rc = select_one(c, r, q.root, profile_type, start_ms, end_ms, &pk, err);
        pql_query_free(&q);
    }
    firn_u64map_destroy(&pk.seen);
    if (rc == 0) {
        prefer_delta(&pk);
        /* the call's arena keeps the answer; the grown array is copied there */
        out->v = firn_arena_calloc(c->arena, pk.n + 1, sizeof *out->v);
        if (pk.n)
            memcpy(out->v, pk.v, pk.n * sizeof *pk.v);
        out->n = pk.n;
    }
    free(pk.v);
    return rc;
}
