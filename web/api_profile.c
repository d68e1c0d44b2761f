/* api_profile.c -- the profile API: which profile types the store holds, and
 * profile queries (what a flame graph shows) in five formats.
 *
 *   GET|POST /api/v1/profile_types[?start=T&end=T]
 *       the types of the series with a profile in [start, end] (default:
 *       all time): [{"id", "name", "sample_type", "sample_unit",
 *       "period_type", "period_unit", "delta"}] in the success envelope.
 *   GET|POST /api/v1/profile?query=SELECTOR&...
 *       start, end     merge the profiles in [start, end] (default: the last
 *                      hour up to now); or
 *       time           the profiles at exactly that time;
 *       compare_query, compare_start, compare_end, compare_time
 *                      a diff: any of them makes one; compare_query defaults
 *                      to query, the compare times to the base times;
 *       group_by       pprof sample label keys (repeated or comma-separated):
 *                      one subtree per value set;
 *       filter         keep the stacks with a function matching this regex;
 *       max_nodes      the N nodes of largest cum, the rest "other" (default
 *                      8192 for flamegraph and svg, as Pyroscope; 0 for no
 *                      limit); for top, the number of rows;
 *       format         flamegraph (default: JSON tree and function table),
 *                      top (JSON flat/cum table), pprof (gzipped pprof, a
 *                      download), collapsed ("a;b;c 12" lines), svg.
 * Times are Prometheus's: Unix seconds (with decimals) or RFC3339.  pprof
 * keeps the group_by keys as sample labels and takes no diff and no
 * max_nodes; top takes no group_by (400 saying so).
 *
 * Nothing matching is not an error: 200 with an empty tree, table, SVG or
 * collapsed body (Pyroscope answers an empty flame graph too), and for pprof
 * an empty profile of the selected type.  Only when the selector names no
 * profile type and matches nothing, pprof and top, which need a sample type,
 * answer 404 not_found.  Errors use Prometheus's envelope: a bad parameter
 * or query (pql's message, with its position), a selector matching several
 * profile types, an unknown format: 400 bad_data; more than
 * --query.max-samples (stack values read, both sides, and the tree's nodes:
 * web_api.limits): 422 execution with Prometheus's text.  A profile query
 * takes a slot of --query.max-concurrency first, waiting for one.
 *
 * Both routes run on worker threads; a request holds one store reader for
 * its duration and no other (tsdb's thread rule).
 */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "promql-like/render.h"
#include "web/internal.h"

#define PROFILE_MAX_NODES_DEFAULT 8192
#define PROFILE_RANGE_DEFAULT_MS (60 * 60 * 1000)
#define PPROF_DISPOSITION "attachment; filename=\"profile.pb.gz\""

enum profile_format { FORMAT_FLAMEGRAPH, FORMAT_TOP, FORMAT_PPROF, FORMAT_COLLAPSED, FORMAT_SVG };

static const char *const FORMATS[] = {"flamegraph", "top", "pprof", "collapsed", "svg"};
#define FORMAT_LIST "flamegraph, top, pprof, collapsed, svg"

/* ---- parameters -------------------------------------------------------------- */

/* A time parameter into *ms; 0 when absent (*given false), -1 after
 * answering 400. */
static int time_param(const http_request *req, const char *name, bool *given, int64_t *ms,
                      http_response *resp)
{
    const char *v = http_request_param(req, name);
    *given = v != NULL;
    if (!v)
        return 0;
    firn_err err = {0};
    if (web_parse_time(v, ms, &err) < 0) {
        web_respond_error(resp, "bad_data", "invalid parameter \"%s\": %s", name, err.msg);
        return -1;
    }
    return 0;
}

/* One side's times: time, or start and end (defaults: the last hour). */
static int side_times(const http_request *req, const char *prefix, pql_profile_mode *mode,
                      int64_t *start, int64_t *end, int64_t *at, bool *any, http_response *resp)
{
    char n_time[32], n_start[32], n_end[32];
    snprintf(n_time, sizeof n_time, "%stime", prefix);
    snprintf(n_start, sizeof n_start, "%sstart", prefix);
    snprintf(n_end, sizeof n_end, "%send", prefix);
    bool has_time, has_start, has_end;
    if (time_param(req, n_time, &has_time, at, resp) < 0 ||
        time_param(req, n_start, &has_start, start, resp) < 0 ||
        time_param(req, n_end, &has_end, end, resp) < 0)
        return -1;
    *any = has_time || has_start || has_end;
    if (has_time && (has_start || has_end)) {
        web_respond_error(resp, "bad_data", "%s excludes %s and %s: it asks for the "
                          "profiles at one time, they for a merge over a range",
                          n_time, n_start, n_end);
        return -1;
    }
    *mode = has_time ? PQL_PROFILE_SINGLE : PQL_PROFILE_MERGE;
    if (has_time)
        return 0;
    if (!has_end)
        *end = firn_now_ms();
    if (!has_start)
        *start = *end - PROFILE_RANGE_DEFAULT_MS;
    if (*end < *start) {
        web_respond_error(resp, "bad_data", "%s timestamp must not be before %s time", n_end,
                          n_start);
        return -1;
    }
    return 0;
}

/* group_by values, repeated or comma-separated, into the arena. */
static int group_by_param(const http_request *req, firn_arena *a, pql_profile_request *pr,
                          http_response *resp)
{
    const char *const *values;
    size_t nv = http_request_params(req, "group_by", &values), n = 0;
    for (size_t i = 0; i < nv; i++) {   /* an upper bound: one key per comma, and one */
        n++;
        for (const char *p = strchr(values[i], ','); p; p = strchr(p + 1, ','))
            n++;
    }
    if (n > FIRN_LABELS_MAX) {
        web_respond_error(resp, "bad_data", "invalid parameter \"group_by\": %zu labels, at "
                          "most %d", n, FIRN_LABELS_MAX);
        return -1;
    }
    const char **keys = n ? firn_arena_alloc(a, n * sizeof *keys) : NULL;
    size_t k = 0;
    for (size_t i = 0; i < nv; i++) {
        const char *p = values[i];
        while (p) {
            const char *comma = strchr(p, ',');
            size_t len = comma ? (size_t)(comma - p) : strlen(p);
            while (len && (*p == ' ' || *p == '\t'))
                p++, len--;
            while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
                len--;
            if (len) {
                assert(k < n);   /* n counted every comma */
                keys[k++] = firn_arena_strndup(a, p, len);
            }
            p = comma ? comma + 1 : NULL;
        }
    }
    pr->group_by = keys;
    pr->n_group_by = k;
    return 0;
}

struct profile_query {
    pql_profile_request pr;
    enum profile_format format;
    bool diff;
};

/* Checks and gathers the parameters of /api/v1/profile; -1 after
 * answering 400. */
static int profile_params(const http_request *req, firn_arena *a, struct profile_query *q,
                          http_response *resp)
{
    memset(q, 0, sizeof *q);
    pql_profile_request *pr = &q->pr;
    const char *format = http_request_param(req, "format");
    q->format = FORMAT_FLAMEGRAPH;
    if (format) {
        size_t i = 0;
        while (i < sizeof FORMATS / sizeof FORMATS[0] && strcmp(FORMATS[i], format) != 0)
            i++;
        if (i == sizeof FORMATS / sizeof FORMATS[0]) {
            web_respond_error(resp, "bad_data", "invalid parameter \"format\": unknown format "
                              "\"%.100s\"; want one of " FORMAT_LIST, format);
            return -1;
        }
        q->format = (enum profile_format)i;
    }
    pr->query = http_request_param(req, "query");
    bool base_times;
    if (side_times(req, "", &pr->mode, &pr->start_ms, &pr->end_ms, &pr->time_ms, &base_times,
                   resp) < 0)
        return -1;
    bool compare_times;
    if (side_times(req, "compare_", &pr->compare_mode, &pr->compare_start_ms,
                   &pr->compare_end_ms, &pr->compare_time_ms, &compare_times, resp) < 0)
        return -1;
    pr->compare_query = http_request_param(req, "compare_query");
    q->diff = pr->compare_query || compare_times;
    if (q->diff && !pr->compare_query)
        pr->compare_query = pr->query ? pr->query : "";
    if (q->diff && !compare_times) {
        pr->compare_mode = pr->mode;
        pr->compare_start_ms = pr->start_ms;
        pr->compare_end_ms = pr->end_ms;
        pr->compare_time_ms = pr->time_ms;
    }
    if (q->diff && q->format == FORMAT_PPROF) {
        web_respond_error(resp, "bad_data", "format=pprof exports one profile, not a diff: "
                          "export both sides and compare them with go tool pprof "
                          "-diff_base=BASE COMPARE");
        return -1;
    }
    if (group_by_param(req, a, pr, resp) < 0)
        return -1;
    if (pr->n_group_by && q->format == FORMAT_TOP) {
        web_respond_error(resp, "bad_data", "group_by does not apply to format=top (a table "
                          "of functions); use flamegraph, collapsed, svg or pprof");
        return -1;
    }
    pr->filter = http_request_param(req, "filter");
    const char *max_nodes = http_request_param(req, "max_nodes");
    if (q->format == FORMAT_FLAMEGRAPH || q->format == FORMAT_SVG)
        pr->max_nodes = PROFILE_MAX_NODES_DEFAULT;
    if (max_nodes) {
        char *end;
        unsigned long long n = strtoull(max_nodes, &end, 10);
        if (!*max_nodes || *end || max_nodes[0] == '-' || n > SIZE_MAX) {
            web_respond_error(resp, "bad_data", "invalid parameter \"max_nodes\": \"%.100s\" "
                              "is not a non-negative integer", max_nodes);
            return -1;
        }
        if (q->format == FORMAT_PPROF) {
            web_respond_error(resp, "bad_data", "max_nodes does not apply to format=pprof (a "
                              "profile has no node limit)");
            return -1;
        }
        pr->max_nodes = (size_t)n;
    }
    return 0;
}

/* ---- answers ------------------------------------------------------------------ */

static void respond_query_error(http_response *resp, const firn_err *err)
{
    const char *type = err->code == FIRN_EINVAL    ? "bad_data"
                       : err->code == FIRN_ETOOBIG ? "execution"
                                                   : "internal";
    web_respond_error(resp, type, "%s", err->msg);
}

/* What a renderer wrote into b (returning rc) as the body. */
static void respond_rendered(http_response *resp, firn_buf *b, int rc, const firn_err *err,
                             const char *content_type)
{
    size_t len;
    char *body = rc < 0 ? NULL : firn_buf_take(b, &len);
    firn_buf_free(b);
    if (!body) {   /* b has no cap: only the query failed, and err says why */
        assert(err && err->code);
        respond_query_error(resp, err);
        return;
    }
    free(resp->body);
    resp->status = 200;
    resp->content_type = content_type;
    resp->body = body;
    resp->body_len = len;
}

/* The success envelope: its head goes into b before the renderer writes
 * the data, the tail here. */
#define DATA_HEAD "{\"status\":\"success\",\"data\":"

static void respond_data_rendered(http_response *resp, firn_buf *b, int rc, const firn_err *err)
{
    if (rc == 0)
        firn_buf_puts(b, "}");
    respond_rendered(resp, b, rc, err, "application/json");
}

static void respond_tree(http_response *resp, const struct profile_query *q, const pql_tree *t)
{
    firn_buf b = {0};
    if (q->format == FORMAT_COLLAPSED) {
        respond_rendered(resp, &b, pql_render_collapsed(&b, t), NULL,
                         "text/plain; charset=utf-8");
    } else if (q->format == FORMAT_SVG) {
        pql_svg_options o = {.request = &q->pr};
        respond_rendered(resp, &b, pql_render_svg(&b, t, &o), NULL, "image/svg+xml");
    } else {
        firn_buf_puts(&b, DATA_HEAD);
        respond_data_rendered(resp, &b, pql_render_flamegraph(&b, t), NULL);
    }
}

/* One side's merged profile, or NULL after answering.  pql refuses to make
 * an empty profile when nothing matched and the selector names no profile
 * type (there is no sample type to give it); the tree query tells that case
 * (an empty tree) from a bad request (the same error again). */
static pprof_profile *query_pprof(tsdb_reader *r, const pql_profile_request *pr,
                                  http_response *resp)
{
    firn_err err = {0};
    pprof_profile *p = pql_profile_pprof(r, pr, &err);
    if (p)
        return p;
    if (err.code == FIRN_EINVAL) {
        pql_profile_request one = *pr;
        one.compare_query = NULL;
        pql_tree t;
        firn_err terr = {0};
        if (pql_profile_tree(r, &one, &t, &terr) == 0) {
            bool empty = t.root.n_children == 0 && t.total == 0;
            pql_tree_free(&t);
            if (empty) {
                web_respond_error(resp, "not_found", "%s", err.msg);
                return NULL;
            }
        }
    }
    respond_query_error(resp, &err);
    return NULL;
}

static bool same_str(const pprof_profile *a, int64_t ia, const pprof_profile *c, int64_t ic)
{
    return strcmp(pprof_str(a, ia), pprof_str(c, ic)) == 0;
}

/* format=top: one side's table, or both sides' joined. */
static void respond_top(http_response *resp, tsdb_reader *r, const struct profile_query *q)
{
    const pql_profile_request *pr = &q->pr;
    pprof_profile *p = query_pprof(r, pr, resp), *c = NULL;
    if (!p)
        return;
    if (q->diff) {
        pql_profile_request cr = *pr;
        cr.query = pr->compare_query;
        cr.mode = pr->compare_mode;
        cr.start_ms = pr->compare_start_ms;
        cr.end_ms = pr->compare_end_ms;
        cr.time_ms = pr->compare_time_ms;
        cr.compare_query = NULL;
        if (!(c = query_pprof(r, &cr, resp))) {
            pprof_free(p);
            return;
        }
        if (p->n_sample_types != 1 || c->n_sample_types != 1 ||
            !same_str(p, p->sample_types[0].type, c, c->sample_types[0].type) ||
            !same_str(p, p->sample_types[0].unit, c, c->sample_types[0].unit)) {
            web_respond_error(resp, "bad_data", "cannot compare %s with %s: the sample types "
                              "or units differ", pr->query, cr.query);
            pprof_free(p);
            pprof_free(c);
            return;
        }
    }
    firn_buf b = {0};
    firn_err err = {0};
    firn_buf_puts(&b, DATA_HEAD);
    respond_data_rendered(resp, &b, pql_render_top_json(&b, p, c, pr->max_nodes, &err), &err);
    pprof_free(p);
    pprof_free(c);
}

static void respond_pprof(http_response *resp, tsdb_reader *r, const pql_profile_request *pr)
{
    pprof_profile *p = query_pprof(r, pr, resp);
    if (!p)
        return;
    unsigned char *out;
    size_t len;
    firn_err err = {0};
    int rc = pprof_encode(p, -1, &out, &len, &err);
    pprof_free(p);
    if (rc < 0) {
        web_respond_error(resp, "internal", "%s", err.msg);
        return;
    }
    free(resp->body);
    resp->status = 200;
    resp->content_type = "application/octet-stream";
    resp->content_disposition = PPROF_DISPOSITION;
    resp->body = (char *)out;
    resp->body_len = len;
}

/* The store's reader for this request, or NULL after answering. */
static tsdb_reader *open_reader(web_api *api, http_response *resp)
{
    if (!api->db) {
        web_respond_error(resp, "unavailable", "no store");
        return NULL;
    }
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(api->db, &err);
    if (!r)
        web_respond_error(resp, "internal", "opening the store: %s", err.msg);
    return r;
}

/* `go tool pprof` prints an error's body only when it is text/plain marked
 * X-Go-Pprof (as Go's net/http/pprof answers): a format=pprof error is
 * turned from the JSON envelope into its message as plain text. */
static void pprof_error_as_text(http_response *resp)
{
    json_t *j = resp->body ? json_loadb(resp->body, resp->body_len, 0, NULL) : NULL;
    const char *msg = j ? json_string_value(json_object_get(j, "error")) : NULL;
    if (msg) {
        char *copy = firn_xstrdup(msg);   /* msg lives in resp's body, which is replaced */
        http_respond_text(resp, resp->status, "%s", copy);
        resp->go_pprof_error = true;
        free(copy);
    }
    json_decref(j);
}

static void handle_profile(void *ctx, const http_request *req, http_response *resp)
{
    firn_arena *a = firn_arena_new(0);
    web_api *api = ctx;
    struct profile_query q;
    tsdb_reader *r = NULL;
    bool entered = false;
    if (profile_params(req, a, &q, resp) < 0)
        goto out;
    q.pr.max_samples = pql_limits_samples(api->limits);
    /* the slot first: a reader pins the store's pages while it waits */
    pql_limits_enter(api->limits);
    entered = true;
    if (!(r = open_reader(api, resp)))
        goto out;
    if (q.format == FORMAT_PPROF) {
        respond_pprof(resp, r, &q.pr);
    } else if (q.format == FORMAT_TOP) {
        respond_top(resp, r, &q);
    } else {
        pql_tree t;
        firn_err err = {0};
        if (pql_profile_tree(r, &q.pr, &t, &err) < 0) {
            respond_query_error(resp, &err);
        } else {
            respond_tree(resp, &q, &t);
            pql_tree_free(&t);
        }
    }
out:
    tsdb_reader_close(r);
    /* held until the answer is rendered into its buffer: that is the
     * query's memory too */
    if (entered)
        pql_limits_leave(api->limits, resp->status == 422 ? FIRN_ETOOBIG : 0);
    firn_arena_free(a);
    const char *format = http_request_param(req, "format");
    if (resp->status >= 400 && format && strcmp(format, "pprof") == 0)
        pprof_error_as_text(resp);
}

/* ---- profile types ---------------------------------------------------------------- */

static json_t *field_json(const firn_profile_type *pt, int f)
{
    return json_stringn(pt->field[f], pt->len[f]);
}

static void handle_profile_types(void *ctx, const http_request *req, http_response *resp)
{
    int64_t start = INT64_MIN, end = INT64_MAX;
    bool given;
    if (time_param(req, "start", &given, &start, resp) < 0 ||
        time_param(req, "end", &given, &end, resp) < 0)
        return;
    if (end < start) {
        web_respond_error(resp, "bad_data", "end timestamp must not be before start time");
        return;
    }
    tsdb_reader *r = open_reader(ctx, resp);
    if (!r)
        return;
    tsdb_strings names;
    firn_err err = {0};
    int rc = tsdb_label_values(r, FIRN_LABEL_NAME, NULL, 0, start, end, &names, &err);
    tsdb_reader_close(r);
    if (rc < 0) {
        web_respond_error(resp, "internal", "%s", err.msg);
        return;
    }
    json_t *list = json_array();
    for (size_t i = 0; list && i < names.n; i++) {
        firn_profile_type pt;
        if (firn_profile_type_parse(names.v[i], &pt, NULL) < 0)
            continue;   /* the store derives every __name__ from a type; never seen */
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(names.v[i]));
        json_object_set_new(o, "name", field_json(&pt, FIRN_PT_NAME));
        json_object_set_new(o, "sample_type", field_json(&pt, FIRN_PT_SAMPLE_TYPE));
        json_object_set_new(o, "sample_unit", field_json(&pt, FIRN_PT_SAMPLE_UNIT));
        json_object_set_new(o, "period_type", field_json(&pt, FIRN_PT_PERIOD_TYPE));
        json_object_set_new(o, "period_unit", field_json(&pt, FIRN_PT_PERIOD_UNIT));
        json_object_set_new(o, "delta", json_boolean(pt.delta));
        json_array_append_new(list, o);
    }
    tsdb_strings_free(&names);
    web_respond_data(resp, list);
}

int web_api_profile_register(http_server *s, web_api *api, firn_err *err)
{
    if (http_route(s, "GET,POST", "/api/v1/profile_types", HTTP_ROUTE_WORKER,
                  handle_profile_types, api, err) < 0 ||
        http_route(s, "GET,POST", "/api/v1/profile", HTTP_ROUTE_WORKER, handle_profile, api,
                  err) < 0)
        return -1;
    return 0;
}
