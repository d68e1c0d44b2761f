/* api_prom.c -- Prometheus's HTTP query API over firn's store, so that
 * Grafana's Prometheus data source and `promtool query` work unchanged
 * (../shared/PROMETHEUS.md section 4, Prometheus's web/api/v1/api.go).
 *
 * Queries, series and label lookups run on worker threads, each with a
 * store reader of its own opened and closed within the request (tsdb.h: a
 * thread holds at most one reader).  Parameters come from the URL or an
 * application/x-www-form-urlencoded body alike (web.h), and are checked in
 * Prometheus's order with its messages, so a client that parses errors
 * sees what Prometheus would say.  Results are written straight into one
 * buffer (json.c), not through a JSON tree: a range query may hold
 * millions of points.
 *
 * Timeouts: an evaluation cannot be interrupted (pql has no cancellation
 * point), so the deadline (the `timeout` parameter, at most Prometheus's
 * default --query.timeout of 2 minutes) is checked when the evaluation
 * ends: past it, the result is dropped and the answer is Prometheus's 503
 * "query timed out in expression evaluation".
 *
 * Limits (web_api.limits): a query waits for a slot of
 * --query.max-concurrency and holds at most --query.max-samples points,
 * loaded or in its result (pql counts them); past that, 422 "execution"
 * with Prometheus's text.
 */
#include <assert.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "promql-like/pql.h"
#include "web/internal.h"

#define QUERY_TIMEOUT_MS (2 * 60 * 1000)
#define SUCCESS_OPEN "{\"status\":\"success\",\"data\":"
#define TRUNCATED_WARNING "results truncated due to limit"

/* Prometheus's MinTime and MaxTime as RFC3339Nano: its clients send them
 * for "no bound", and Go's time parser (like web_parse_time) reads only
 * 4-digit years. */
#define MIN_TIME_FORMATTED "-292273086-05-16T16:47:06Z"
#define MAX_TIME_FORMATTED "292277025-08-18T07:12:54.999999999Z"

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* s Go-quoted (%q) into buf, cut to its first 200 bytes. */
static const char *quoted(char *buf, size_t size, const char *s)
{
    size_t len = strnlen(s, 200);
    if (size < len * 10 + 3) {
        snprintf(buf, size, "\"\"");
        return buf;
    }
    buf[firn_go_quote(buf, s, len)] = '\0';
    return buf;
}

/* ---- responses ---------------------------------------------------------------- */

/* Every API answer waits for the server to be ready, as Prometheus's
 * testReady wrapper does. */
static bool ready(web_api *api, http_response *resp)
{
    if (atomic_load(&api->ready))
        return true;
    http_respond_text(resp, 503, "Service Unavailable");
    return false;
}

/* b holds SUCCESS_OPEN and the data: close the envelope and send it. */
static void respond_success(http_response *resp, firn_buf *b, bool truncated)
{
    if (truncated)
        firn_buf_puts(b, ",\"warnings\":[\"" TRUNCATED_WARNING "\"]");
    firn_buf_append(b, "}", 1);
    size_t len;
    char *body = firn_buf_take(b, &len);   /* no cap: never NULL */
    free(resp->body);
    resp->status = 200;
    resp->content_type = "application/json";
    resp->body = body;
    resp->body_len = len;
}

static tsdb_reader *open_reader(web_api *api, http_response *resp)
{
    firn_err err = {0};
    tsdb_reader *r = api->db ? tsdb_reader_open(api->db, &err) : NULL;
    if (!r)
        web_respond_error(resp, "internal", "%s", api->db ? err.msg : "no store");
    return r;
}

/* ---- parameters --------------------------------------------------------------- */

/* An optional time (Prometheus's parseTimeParam): dflt when absent; the
 * MinTime/MaxTime spellings mean no bound. */
static bool param_time(const http_request *req, const char *name, int64_t dflt, int64_t *out,
                       http_response *resp)
{
    const char *s = http_request_param(req, name);
    firn_err err = {0};
    if (!s || !*s)
        *out = dflt;
    else if (strcmp(s, MIN_TIME_FORMATTED) == 0)
        *out = INT64_MIN;
    else if (strcmp(s, MAX_TIME_FORMATTED) == 0)
        *out = INT64_MAX;
    else if (web_parse_time(s, out, &err) < 0) {
        web_respond_error(resp, "bad_data", "invalid parameter \"%s\": Invalid time value for "
                          "'%s': %s", name, name, err.msg);
        return false;
    }
    return true;
}

/* A required time (query_range's start and end: Prometheus's parseTime). */
static bool param_time_required(const http_request *req, const char *name, int64_t *out,
                                http_response *resp)
{
    const char *s = http_request_param(req, name);
    firn_err err = {0};
    if (web_parse_time(s ? s : "", out, &err) < 0) {
        web_respond_error(resp, "bad_data", "invalid parameter \"%s\": %s", name, err.msg);
        return false;
    }
    return true;
}

/* limit: a non-negative integer as Go's strconv.Atoi reads it; 0 for none. */
static bool param_limit(const http_request *req, size_t *limit, http_response *resp)
{
    const char *s = http_request_param(req, "limit");
    *limit = 0;
    if (!s || !*s)
        return true;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    char q[2048];
    if (*end || end == s || s[0] == ' ' || (s[0] < '0' && s[0] != '+' && s[0] != '-') ||
        errno == ERANGE) {
        web_respond_error(resp, "bad_data", "invalid parameter \"limit\": strconv.Atoi: parsing "
                          "%s: %s", quoted(q, sizeof q, s),
                          errno == ERANGE ? "value out of range" : "invalid syntax");
        return false;
    }
    if (v < 0) {
        web_respond_error(resp, "bad_data",
                          "invalid parameter \"limit\": limit must be non-negative");
        return false;
    }
    *limit = (size_t)v;
    return true;
}

/* What /query and /query_range share besides their times. */
typedef struct query_opts {
    int64_t deadline_ns;           /* monotonic */
    size_t limit;
    pql_eval_options eval;
} query_opts;

static bool param_query_opts(const http_request *req, query_opts *o, http_response *resp)
{
    *o = (query_opts){0};
    int64_t timeout_ms = QUERY_TIMEOUT_MS;
    firn_err err = {0};
    const char *s = http_request_param(req, "timeout");
    if (s && *s) {
        if (web_parse_duration(s, &timeout_ms, &err) < 0) {
            web_respond_error(resp, "bad_data", "invalid parameter \"timeout\": %s", err.msg);
            return false;
        }
        if (timeout_ms > QUERY_TIMEOUT_MS)
            timeout_ms = QUERY_TIMEOUT_MS;
    }
    o->deadline_ns = monotonic_ns() + timeout_ms * 1000000;
    if (!param_limit(req, &o->limit, resp))
        return false;
    s = http_request_param(req, "lookback_delta");
    if (s && *s) {
        int64_t ms;
        if (web_parse_duration(s, &ms, &err) < 0) {
            web_respond_error(resp, "bad_data", "error parsing lookback delta duration: %s",
                              err.msg);
            return false;
        }
        o->eval.lookback_ms = ms > 0 ? ms : 0;   /* 0: pql's default, 5 minutes */
    }
    return true;
}

/* ---- /api/v1/query and /api/v1/query_range ---------------------------------- */

/* Parse, evaluate (at start, or over [start, end] by step) and answer. */
static void run_query(web_api *api, const http_request *req, http_response *resp,
                      const query_opts *o, bool range, int64_t start, int64_t end, int64_t step)
{
    const char *text = http_request_param(req, "query");
    pql_query q;
    firn_err err = {0};
    if (pql_parse(text ? text : "", &q, &err) < 0) {
        web_respond_error(resp, "bad_data", "invalid parameter \"query\": %s", err.msg);
        return;
    }
    /* the slot first: a reader pins the store's pages while it waits */
    /* the wait counts against the timeout, as in Prometheus */
    if (pql_limits_enter(api->limits) && monotonic_ns() >= o->deadline_ns) {
        pql_limits_leave(api->limits, 0);
        pql_query_free(&q);
        web_respond_error(resp, "timeout", "query timed out in query queue");
        return;
    }
    tsdb_reader *r = open_reader(api, resp);
    if (!r) {
        pql_limits_leave(api->limits, 0);
        pql_query_free(&q);
        return;
    }
    pql_result res;
    pql_eval_options eo = o->eval;
    eo.max_samples = pql_limits_samples(api->limits);
    int rc = range ? pql_eval_range(r, &q, start, end, step, &eo, &res, &err)
                   : pql_eval_instant(r, &q, start, &eo, &res, &err);
    tsdb_reader_close(r);
    /* a range query of a range vector or a string is a bad request */
    bool bad_type = range && q.type != PQL_TYPE_SCALAR && q.type != PQL_TYPE_VECTOR;
    pql_query_free(&q);
    bool timed_out = monotonic_ns() >= o->deadline_ns;
    if (rc < 0 && bad_type) {
        web_respond_error(resp, "bad_data", "invalid parameter \"query\": %s", err.msg);
    } else if (timed_out) {
        pql_result_free(&res);
        web_respond_error(resp, "timeout", "query timed out in expression evaluation");
    } else if (rc < 0) {
        web_respond_error(resp, rc == FIRN_EIO || rc == FIRN_ENOMEM ? "internal" : "execution",
                          "%s", err.msg);
    } else {
        pql_result shown = res;
        bool series = res.type == PQL_TYPE_VECTOR || res.type == PQL_TYPE_MATRIX;
        bool truncated = series && o->limit && res.n_series > o->limit;
        if (truncated)
            shown.n_series = o->limit;
        firn_buf b = {0};
        firn_buf_puts(&b, SUCCESS_OPEN);
        web_json_pql_result(&b, &shown);
        pql_result_free(&res);
        respond_success(resp, &b, truncated);
    }
    /* held until the answer is written into its buffer: that is the
     * query's memory too */
    pql_limits_leave(api->limits, rc);
}

static void handle_query(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    if (!ready(api, resp))
        return;
    int64_t t;
    query_opts o;
    if (param_time(req, "time", firn_now_ms(), &t, resp) && param_query_opts(req, &o, resp))
        run_query(api, req, resp, &o, false, t, t, 0);
}

static void handle_query_range(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    if (!ready(api, resp))
        return;
    int64_t start, end, step;
    firn_err err = {0};
    if (!param_time_required(req, "start", &start, resp) ||
        !param_time_required(req, "end", &end, resp))
        return;
    if (end < start) {
        web_query_range_check(start, end, 1, &err);
        web_respond_error(resp, "bad_data", "%s", err.msg);
        return;
    }
    const char *s = http_request_param(req, "step");
    if (web_parse_duration(s ? s : "", &step, &err) < 0) {
        web_respond_error(resp, "bad_data", "invalid parameter \"step\": %s", err.msg);
        return;
    }
    if (web_query_range_check(start, end, step, &err) < 0) {
        web_respond_error(resp, "bad_data", "%s", err.msg);
        return;
    }
    query_opts o;
    if (param_query_opts(req, &o, resp))
        run_query(api, req, resp, &o, true, start, end, step);
}

/* ---- match[] ------------------------------------------------------------------ */

typedef struct selectors {
    pql_query *q;
    size_t n;
} selectors;

static void selectors_free(selectors *s)
{
    for (size_t i = 0; i < s->n; i++)
        pql_query_free(&s->q[i]);
    free(s->q);
    s->q = NULL;
    s->n = 0;
}

/* The match[] selectors (Prometheus's parseMatchersParam): each a plain
 * series selector with a matcher that does not match "".  A __function__
 * matcher is a stack filter: it does not narrow a list of series or
 * labels, and is left out.  wrap: errors read `invalid parameter
 * "match[]": ...` (the series endpoint) or bare (labels, as Prometheus). */
static bool param_selectors(const http_request *req, bool wrap, selectors *out,
                            http_response *resp)
{
    const char *const *match;
    size_t n = http_request_params(req, "match[]", &match);
    *out = (selectors){0};
    if (n == 0)
        return true;
    out->q = firn_xcalloc(n, sizeof *out->q);
    const char *prefix = wrap ? "invalid parameter \"match[]\": " : "";
    static const char non_empty[] = "match[] must contain at least one non-empty matcher";
    for (size_t i = 0; i < n; i++) {
        firn_err err = {0};
        if (pql_parse(match[i], &out->q[out->n], &err) < 0) {
            /* pql says it of the selector, Prometheus of the parameter */
            bool empty = strstr(err.msg, "at least one non-empty matcher") != NULL;
            web_respond_error(resp, "bad_data", "%s%s", prefix, empty ? non_empty : err.msg);
            selectors_free(out);
            return false;
        }
        const pql_expr *e = out->q[out->n++].root;
        if (e->kind != PQL_VECTOR_SELECTOR || e->sel.offset_ms != 0) {
            char q[2048];
            web_respond_error(resp, "bad_data", "%s%s is not a series selector such as "
                              "process_cpu{job=\"api\"}", prefix, quoted(q, sizeof q, match[i]));
            selectors_free(out);
            return false;
        }
        bool ok = false;
        for (size_t k = 0; k < e->sel.n_matchers && !ok; k++)
            ok = !firn_matcher_matches(&e->sel.matchers[k], "");
        if (!ok) {
            web_respond_error(resp, "bad_data", "%s%s", prefix, non_empty);
            selectors_free(out);
            return false;
        }
    }
    return true;
}

/* ---- listings: series, label names, label values -------------------------------- */

/* items sorted by cmp (a qsort comparator of pointers to items), each
 * written once (equal neighbours are one), at most limit of them (0: all)
 * with Prometheus's warning when cut: the answer to a listing. */
static void respond_list(http_response *resp, const void **items, size_t n, size_t limit,
                         int (*cmp)(const void *, const void *),
                         void (*write)(firn_buf *, const void *))
{
    firn_sort(items, n, sizeof *items, cmp);
    firn_buf b = {0};
    firn_buf_puts(&b, SUCCESS_OPEN "[");
    size_t shown = 0;
    bool truncated = false;
    for (size_t i = 0; i < n; i++) {
        if (i && cmp(&items[i], &items[i - 1]) == 0)
            continue;
        if (limit && shown == limit) {
            truncated = true;
            break;
        }
        if (shown++)
            firn_buf_append(&b, ",", 1);
        write(&b, items[i]);
    }
    firn_buf_append(&b, "]", 1);
    respond_success(resp, &b, truncated);
}

/* ---- /api/v1/series ------------------------------------------------------------- */

static int labels_cmp(const tsdb_series *a, const tsdb_series *b)
{
    size_t n = a->n_labels < b->n_labels ? a->n_labels : b->n_labels;
    for (size_t i = 0; i < n; i++) {
        int c = strcmp(a->labels[i].name, b->labels[i].name);
        if (!c)
            c = strcmp(a->labels[i].value, b->labels[i].value);
        if (c)
            return c;
    }
    return (a->n_labels > b->n_labels) - (a->n_labels < b->n_labels);
}

static int series_ptr_cmp(const void *a, const void *b)
{
    return labels_cmp(*(const tsdb_series *const *)a, *(const tsdb_series *const *)b);
}

static void write_series(firn_buf *b, const void *item)
{
    const tsdb_series *s = item;
    web_json_labels(b, s->labels, s->n_labels);
}

static void handle_series(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    if (!ready(api, resp))
        return;
    const char *const *match;
    if (http_request_params(req, "match[]", &match) == 0) {
        web_respond_error(resp, "bad_data", "no match[] parameter provided");
        return;
    }
    size_t limit;
    int64_t start, end;
    selectors sel;
    if (!param_limit(req, &limit, resp) || !param_time(req, "start", INT64_MIN, &start, resp) ||
        !param_time(req, "end", INT64_MAX, &end, resp) ||
        !param_selectors(req, true, &sel, resp))
        return;
    tsdb_reader *r = open_reader(api, resp);
    tsdb_series_set *sets = r ? firn_xcalloc(sel.n, sizeof *sets) : NULL;
    const void **all = NULL;
    size_t n_all = 0;
    firn_err err = {0};
    int rc = 0;
    for (size_t i = 0; sets && i < sel.n && rc == 0; i++) {
        const pql_expr *e = sel.q[i].root;
        rc = tsdb_select(r, e->sel.matchers, e->sel.n_matchers, start, end, &sets[i], &err);
        n_all += rc == 0 ? sets[i].n : 0;
    }
    if (sets && rc == 0 && n_all)   /* the sets are in memory: an internal size */
        all = firn_xreallocarray(NULL, n_all, sizeof *all);
    if (r && rc == 0) {
        /* the union of the sets, in label order, each series once */
        size_t k = 0;
        for (size_t i = 0; i < sel.n; i++)
            for (size_t j = 0; j < sets[i].n; j++)
                all[k++] = &sets[i].series[j];
        assert(k == n_all);
        respond_list(resp, all, n_all, limit, series_ptr_cmp, write_series);
    } else if (r) {
        web_respond_error(resp, rc == FIRN_ENOMEM ? "internal" : "execution", "%s", err.msg);
    }
    for (size_t i = 0; sets && i < sel.n; i++)
        tsdb_series_set_free(&sets[i]);
    free(sets);
    free(all);
    tsdb_reader_close(r);
    selectors_free(&sel);
}

/* ---- /api/v1/labels and /api/v1/label/<name>/values --------------------------- */

static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void write_string(firn_buf *b, const void *item)
{
    firn_json_string(b, item);
}

/* Label names (name NULL) or one label's values over the series the
 * selectors match (all series without selectors), sorted, each once; []
 * when there are none. */
static void respond_label_strings(web_api *api, const http_request *req, http_response *resp,
                                  const char *name)
{
    size_t limit;
    int64_t start, end;
    selectors sel;
    if (!param_time(req, "start", INT64_MIN, &start, resp) ||
        !param_time(req, "end", INT64_MAX, &end, resp) ||
        !param_selectors(req, false, &sel, resp))
        return;
    if (!param_limit(req, &limit, resp)) {
        selectors_free(&sel);
        return;
    }
    tsdb_reader *r = open_reader(api, resp);
    size_t n_lists = sel.n ? sel.n : 1;
    tsdb_strings *lists = r ? firn_xcalloc(n_lists, sizeof *lists) : NULL;
    const void **all = NULL;
    size_t n_all = 0;
    firn_err err = {0};
    int rc = 0;
    for (size_t i = 0; lists && i < n_lists && rc == 0; i++) {
        const pql_expr *e = sel.n ? sel.q[i].root : NULL;
        const firn_matcher *m = e ? e->sel.matchers : NULL;
        size_t nm = e ? e->sel.n_matchers : 0;
        rc = name ? tsdb_label_values(r, name, m, nm, start, end, &lists[i], &err)
                  : tsdb_label_names(r, m, nm, start, end, &lists[i], &err);
        n_all += rc == 0 ? lists[i].n : 0;
    }
    if (lists && rc == 0 && n_all)   /* the lists are in memory: an internal size */
        all = firn_xreallocarray(NULL, n_all, sizeof *all);
    if (r && rc == 0) {
        size_t k = 0;
        for (size_t i = 0; i < n_lists; i++)
            for (size_t j = 0; j < lists[i].n; j++)
                all[k++] = lists[i].v[j];
        assert(k == n_all);
        respond_list(resp, all, n_all, limit, str_ptr_cmp, write_string);
    } else if (r) {
        web_respond_error(resp, rc == FIRN_ENOMEM ? "internal" : "execution", "%s", err.msg);
    }
    for (size_t i = 0; lists && i < n_lists; i++)
        tsdb_strings_free(&lists[i]);
    free(lists);
    free(all);
    tsdb_reader_close(r);
    selectors_free(&sel);
}

static void handle_labels(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    if (ready(api, resp))
        respond_label_strings(api, req, resp, NULL);
}

static int hex_digit(char c)
{
    return c >= '0' && c <= '9' ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

/* A "U__" name of Prometheus's value-encoding escape undone ("__" is "_",
 * "_1f600_" a code point), as model.UnescapeName; the name itself when it
 * has no such prefix or is not a valid escape.  out has room for name. */
static void unescape_name(const char *name, char *out)
{
    strcpy(out, name);
    if (strncmp(name, "U__", 3) != 0)
        return;
    const char *p = name + 3;
    size_t n = 0;
    while (*p) {
        if (*p != '_') {
            out[n++] = *p++;
            continue;
        }
        p++;
        if (*p == '_') {
            out[n++] = '_';
            p++;
            continue;
        }
        uint32_t rune = 0;
        int digits = 0, d;
        while ((d = hex_digit(*p)) >= 0 && digits < 6) {
            rune = rune * 16 + (uint32_t)d;
            digits++;
            p++;
        }
        /* Go's utf8.ValidRune; NUL, which no C string can hold, is refused too */
        if (*p != '_' || digits == 0 || rune == 0 || rune > 0x10FFFF ||
            (rune >= 0xD800 && rune <= 0xDFFF)) {
            strcpy(out, name);
            return;
        }
        p++;
        n += firn_utf8_encode(rune, out + n);
    }
    out[n] = '\0';
}

#define LABEL_VALUES_PREFIX "/api/v1/label/"

static void handle_label_values(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    const char *path = http_request_path(req) + strlen(LABEL_VALUES_PREFIX);
    const char *slash = strchr(path, '/');
    if (!slash || slash == path || strcmp(slash, "/values") != 0) {
        http_respond_text(resp, 404, "404 page not found");
        return;
    }
    if (!ready(api, resp))
        return;
    size_t len = (size_t)(slash - path);
    char *raw = firn_xstrndup(path, len), *name = firn_xmalloc(len + 1);
    unescape_name(raw, name);
    char q[2048];
    if (!firn_label_name_valid(name))
        web_respond_error(resp, "bad_data", "invalid label name: %s", quoted(q, sizeof q, name));
    else
        respond_label_strings(api, req, resp, name);
    free(raw);
    free(name);
}

/* ---- status, metadata, exemplars ------------------------------------------------ */

static void handle_buildinfo(void *ctx, const http_request *req, http_response *resp)
{
    (void)req;
    if (!ready(ctx, resp))
        return;
    /* what firn knows of its build; Go's fields stay empty */
    web_respond_data(resp, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "version", FIRN_VERSION,
                                     "revision", "", "branch", "", "buildUser", "",
                                     "buildDate", "", "goVersion", ""));
}

static void handle_config(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    (void)req;
    if (!ready(api, resp))
        return;
    char *yaml = api->config_yaml ? api->config_yaml(api->config_yaml_ctx) : NULL;
    firn_buf b = {0};
    firn_buf_puts(&b, SUCCESS_OPEN "{\"yaml\":");
    firn_json_string(&b, yaml ? yaml : "");
    firn_buf_append(&b, "}", 1);
    free(yaml);
    respond_success(resp, &b, false);
}

static int flag_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The flags as Prometheus lists them: an object, names in order. */
static void handle_flags(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    (void)req;
    if (!ready(api, resp))
        return;
    size_t n = 0;
    while (api->flags && api->flags[2 * n])
        n++;
    const char **pairs = n ? firn_xreallocarray(NULL, 2 * n, sizeof *pairs) : NULL;
    if (n) {
        memcpy(pairs, api->flags, 2 * n * sizeof *pairs);
        firn_sort(pairs, n, 2 * sizeof *pairs, flag_cmp);
    }
    firn_buf b = {0};
    firn_buf_puts(&b, SUCCESS_OPEN "{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            firn_buf_append(&b, ",", 1);
        firn_json_string(&b, pairs[2 * i]);
        firn_buf_append(&b, ":", 1);
        firn_json_string(&b, pairs[2 * i + 1] ? pairs[2 * i + 1] : "");
    }
    firn_buf_append(&b, "}", 1);
    free(pairs);
    respond_success(resp, &b, false);
}

/* A metadata count parameter (Prometheus: strconv.Atoi); absent: -1. */
static bool param_count(const http_request *req, const char *name, long long *out,
                        http_response *resp)
{
    const char *s = http_request_param(req, name);
    *out = -1;
    if (!s || !*s)
        return true;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (*end || s[0] == ' ' || errno == ERANGE) {
        web_respond_error(resp, "bad_data", "%s must be a number", name);
        return false;
    }
    *out = v;
    return true;
}

/* The metadata of one profile type, as Prometheus gives a metric's: a
 * delta type counts events over each profile's duration (a counter), the
 * others are a snapshot when the profile was taken (a gauge); the unit is
 * the sample unit; the help says what was sampled and how.  So Grafana's
 * metric browser explains each profile type. */
static json_t *profile_type_metadata(const char *name)
{
    firn_profile_type pt;
    if (firn_profile_type_parse(name, &pt, NULL) < 0)
        return NULL;
    char help[1024];
#define F(i) (int)pt.len[i], pt.field[i]
    if (pt.delta)
        snprintf(help, sizeof help,
                 "%.*s profile: %.*s (%.*s) over each profile's duration; period type "
                 "%.*s (%.*s).", F(FIRN_PT_NAME), F(FIRN_PT_SAMPLE_TYPE),
                 F(FIRN_PT_SAMPLE_UNIT), F(FIRN_PT_PERIOD_TYPE), F(FIRN_PT_PERIOD_UNIT));
    else
        snprintf(help, sizeof help,
                 "%.*s profile: %.*s (%.*s) when each profile was taken; period type "
                 "%.*s (%.*s).", F(FIRN_PT_NAME), F(FIRN_PT_SAMPLE_TYPE),
                 F(FIRN_PT_SAMPLE_UNIT), F(FIRN_PT_PERIOD_TYPE), F(FIRN_PT_PERIOD_UNIT));
    json_t *unit = json_stringn(pt.field[FIRN_PT_SAMPLE_UNIT], pt.len[FIRN_PT_SAMPLE_UNIT]);
#undef F
    return json_pack("[{s:s, s:s, s:o}]", "type", pt.delta ? "counter" : "gauge", "help", help,
                     "unit", unit);
}

/* Metadata for every profile type stored (the values of __name__), or for
 * the one named by metric; limit caps the number of types (Prometheus's
 * parameters; each type has one entry, so limit_per_metric only needs to
 * be a number). */
static void handle_metadata(void *ctx, const http_request *req, http_response *resp)
{
    web_api *api = ctx;
    if (!ready(api, resp))
        return;
    long long limit, per_metric;
    if (!param_count(req, "limit", &limit, resp) ||
        !param_count(req, "limit_per_metric", &per_metric, resp))
        return;
    const char *metric = http_request_param(req, "metric");
    tsdb_reader *r = open_reader(api, resp);
    if (!r)
        return;
    tsdb_strings names = {0};
    firn_err err = {0};
    if (tsdb_label_values(r, "__name__", NULL, 0, INT64_MIN, INT64_MAX, &names, &err) < 0) {
        tsdb_reader_close(r);
        web_respond_error(resp, "internal", "%s", err.msg);
        return;
    }
    tsdb_reader_close(r);
    json_t *data = json_object();
    for (size_t i = 0; i < names.n && (limit < 0 || (long long)json_object_size(data) < limit);
         i++) {
        if (metric && *metric && strcmp(metric, names.v[i]) != 0)
            continue;
        json_t *entries = per_metric == 0 ? NULL : profile_type_metadata(names.v[i]);
        if (entries)
            json_object_set_new(data, names.v[i], entries);
    }
    tsdb_strings_free(&names);
    web_respond_data(resp, data);
}

/* Profiles have no exemplars: the request is checked as Prometheus checks
 * it, and the answer is []. */
static void handle_exemplars(void *ctx, const http_request *req, http_response *resp)
{
    if (!ready(ctx, resp))
        return;
    int64_t start, end;
    if (!param_time(req, "start", INT64_MIN, &start, resp) ||
        !param_time(req, "end", INT64_MAX, &end, resp))
        return;
    if (end < start) {
        web_respond_error(resp, "bad_data", "end timestamp must not be before start timestamp");
        return;
    }
    const char *text = http_request_param(req, "query");
    pql_query q;
    firn_err err = {0};
    if (pql_parse(text ? text : "", &q, &err) < 0) {
        web_respond_error(resp, "bad_data", "%s", err.msg);
        return;
    }
    pql_query_free(&q);
    web_respond_data(resp, json_array());
}

/* ---- registration ----------------------------------------------------------------- */

int web_api_prom_register(http_server *s, web_api *api, firn_err *err)
{
    static const struct {
        const char *methods, *path;
        unsigned flags;
        http_handler_fn fn;
    } R[] = {
        {"GET,POST", "/api/v1/query", 0, handle_query},
        {"GET,POST", "/api/v1/query_range", 0, handle_query_range},
        {"GET,POST", "/api/v1/series", 0, handle_series},
        {"GET,POST", "/api/v1/labels", 0, handle_labels},
        {"GET", LABEL_VALUES_PREFIX, HTTP_ROUTE_PREFIX, handle_label_values},
        {"GET,POST", "/api/v1/query_exemplars", 0, handle_exemplars},
        {"GET", "/api/v1/metadata", 0, handle_metadata},
        {"GET", "/api/v1/status/buildinfo", 0, handle_buildinfo},
        {"GET", "/api/v1/status/config", 0, handle_config},
        {"GET", "/api/v1/status/flags", 0, handle_flags},
    };
    for (size_t i = 0; i < sizeof R / sizeof R[0]; i++)
        if (http_route(s, R[i].methods, R[i].path, R[i].flags | HTTP_ROUTE_WORKER, R[i].fn, api,
                      err) < 0)
            return -1;
    return 0;
}
