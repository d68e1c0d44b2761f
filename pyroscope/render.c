/* render.c -- Pyroscope's older HTTP API that the Profiles Drilldown still
 * calls (pkg/querier/http.go):
 *
 *   GET /pyroscope/render?query=ID{selector}&from=T&until=T[&max-nodes=N]
 *       the merged flame graph as flamebearer JSON ("single"):
 *       {"version":1,"flamebearer":{"names","levels","numTicks","maxSelf"},
 *        "metadata":{"format":"single","spyName":"","sampleRate","units",
 *        "name"},"timeline":null,"groups":null,"heatmap":null}
 *   GET /pyroscope/render-diff?leftQuery=&leftFrom=&leftUntil=&rightQuery=
 *       &rightFrom=&rightUntil=[&max-nodes=N]
 *       the Diff view's flame graph: the same with "format":"double",
 *       "leftTicks", "rightTicks" and 7 values per bar (flamegraph.c).
 *
 * ID is a 5-field profile type ID, the selector Pyroscope's (view.c).
 * Times as Pyroscope's attime: "now", "now-1h"; Unix seconds, or 13, 16,
 * 19 digits for ms, us, ns; default the last hour.  max-nodes (or maxNodes)
 * as SelectMergeStacktraces.  format=dot is not served (400).  Errors are
 * Connect's JSON, as Pyroscope answers them here.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pyroscope/internal.h"

#define RANGE_DEFAULT_MS (60 * 60 * 1000)

/* Pyroscope's attime: now[-duration] or a Unix time by its digits. */
static int parse_attime(const char *name, const char *s, int64_t now, int64_t *ms, firn_err *err)
{
    if (strncmp(s, "now", 3) == 0) {
        int64_t d = 0;
        if (s[3] == '-' && firn_duration_parse(s + 4, &d, NULL) == 0) {
            *ms = now - d;
            return 0;
        }
        if (!s[3]) {
            *ms = now;
            return 0;
        }
    }
    size_t n = strlen(s);
    if (n && n <= 19 && strspn(s, "0123456789") == n) {
        long long v = strtoll(s, NULL, 10);
        *ms = n == 13 ? v : n == 16 ? v / 1000 : n == 19 ? v / 1000000 : v * 1000;
        return 0;
    }
    return firn_errf(err, FIRN_EINVAL, "%s \"%.100s\": want now, now-DURATION or a Unix time",
                     name, s);
}

/* One side's query: ID{selector} and its times into a request. */
static int side(pyroscope_call *c, const http_request *r, const char *qn, const char *fn,
                const char *un, Querier__V1__SelectMergeStacktracesRequest *req, firn_err *err)
{
    const char *q = http_request_param(r, qn);
    if (!q || !*q)
        return firn_errf(err, FIRN_EINVAL, "%s is required: ID{selector}, e.g. "
                         "process_cpu:cpu:nanoseconds:cpu:nanoseconds{service_name=\"x\"}", qn);
    const char *brace = strchr(q, '{');
    req->profile_typeid = firn_arena_strndup(c->arena, q, brace ? (size_t)(brace - q) : strlen(q));
    req->label_selector = (char *)(brace ? brace : "{}");
    int64_t now = firn_now_ms();
    req->end = now;
    req->start = now - RANGE_DEFAULT_MS;
    const char *from = http_request_param(r, fn), *until = http_request_param(r, un);
    if ((from && parse_attime(fn, from, now, &req->start, err) < 0) ||
        (until && parse_attime(un, until, now, &req->end, err) < 0))
        return FIRN_EINVAL;
    const char *mn = http_request_param(r, "max-nodes");
    if (!mn)
        mn = http_request_param(r, "maxNodes");
    if (mn) {
        char *end;
        long long v = strtoll(mn, &end, 10);
        if (!*mn || *end)
            return firn_errf(err, FIRN_EINVAL, "max-nodes \"%.100s\": want an integer", mn);
        req->_max_nodes_case = QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST___MAX_NODES_MAX_NODES;
        req->max_nodes = v;
    }
    return 0;
}

/* Pyroscope's units and sample rate for a sample type (ExportToFlamebearer),
 * as the "metadata" member. */
static void metadata(firn_buf *b, const char *id, const char *format)
{
    firn_profile_type pt;
    char st[256] = "", su[256] = "";
    if (firn_profile_type_parse(id, &pt, NULL) == 0) {
        snprintf(st, sizeof st, "%.*s", (int)pt.len[FIRN_PT_SAMPLE_TYPE],
                 pt.field[FIRN_PT_SAMPLE_TYPE]);
        snprintf(su, sizeof su, "%.*s", (int)pt.len[FIRN_PT_SAMPLE_UNIT],
                 pt.field[FIRN_PT_SAMPLE_UNIT]);
    }
    const char *units = su;
    long long rate = 100;
    if (!strcmp(st, "inuse_objects") || !strcmp(st, "alloc_objects") ||
        !strcmp(st, "goroutine") || !strcmp(st, "samples"))
        units = "objects";
    else if (!strcmp(st, "cpu"))
        units = "samples", rate = 1000000000;
    firn_buf_printf(b, ",\"metadata\":{\"format\":\"%s\",\"spyName\":\"\",\"sampleRate\":%lld,"
                    "\"units\":", format, rate);
    firn_json_string(b, units);
    firn_buf_puts(b, ",\"name\":");
    firn_json_string(b, st);
    firn_buf_puts(b, "}");
}

/* {"version":1,"flamebearer":{...} as the start of an answer. */
static void flamebearer(firn_buf *b, char *const *names, size_t n_names,
                        Querier__V1__Level *const *levels, size_t n_levels, int64_t total,
                        int64_t max_self)
{
    firn_buf_puts(b, "{\"version\":1,\"flamebearer\":{\"names\":[");
    for (size_t i = 0; i < n_names; i++) {
        if (i)
            firn_buf_puts(b, ",");
        firn_json_string(b, names[i]);
    }
    firn_buf_puts(b, "],\"levels\":[");
    for (size_t d = 0; d < n_levels; d++) {
        firn_buf_puts(b, d ? ",[" : "[");
        for (size_t i = 0; i < levels[d]->n_values; i++)
            firn_buf_printf(b, "%s%" PRId64, i ? "," : "", levels[d]->values[i]);
        firn_buf_puts(b, "]");
    }
    firn_buf_printf(b, "],\"numTicks\":%" PRId64 ",\"maxSelf\":%" PRId64 "}", total, max_self);
}

/* The answer built in b, closed and sent. */
static void respond(http_response *resp, firn_buf *b)
{
    firn_buf_puts(b, ",\"timeline\":null,\"groups\":null,\"heatmap\":null}");
    size_t n;
    char *s = firn_buf_take(b, &n);   /* no cap: never NULL */
    free(resp->body);
    *resp = (http_response){.status = 200, .content_type = "application/json", .body = s,
                           .body_len = n};
}

static void fail(http_response *resp, const firn_err *err)
{
    pyroscope_respond_error(resp, pyroscope_code_of(err->code), err->msg);
}

static void handle_render(void *ctx, const http_request *r, http_response *resp)
{
    pyroscope_call c;
    pyroscope_call_begin(&c, ctx);
    firn_err err = {0};
    const char *format = http_request_param(r, "format");
    Querier__V1__SelectMergeStacktracesRequest req =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST__INIT;
    ProtobufCMessage *out = NULL;
    if (format && strcmp(format, "json") != 0) {
        firn_errf(&err, FIRN_EINVAL, "format \"%.40s\": firn renders json only", format);
        fail(resp, &err);
    } else if (side(&c, r, "query", "from", "until", &req, &err) < 0 ||
               pyroscope_rpc_merge_stacktraces(&c, &req.base, &out, &err) < 0) {
        fail(resp, &err);
    } else {
        const Querier__V1__FlameGraph *fg =
            ((Querier__V1__SelectMergeStacktracesResponse *)out)->flamegraph;
        static char *const TOTAL[] = {"total"};
        static int64_t ROOT[] = {0, 0, 0, 0};
        Querier__V1__Level root = QUERIER__V1__LEVEL__INIT, *rootp = &root;
        root.values = ROOT;
        root.n_values = 4;
        firn_buf b = {0};
        if (fg)
            flamebearer(&b, fg->names, fg->n_names, fg->levels, fg->n_levels, fg->total,
                        fg->max_self);
        else
            flamebearer(&b, TOTAL, 1, &rootp, 1, 0, 0);
        metadata(&b, req.profile_typeid, "single");
        respond(resp, &b);
    }
    pyroscope_call_end(&c);
}

static void handle_render_diff(void *ctx, const http_request *r, http_response *resp)
{
    pyroscope_call c;
    pyroscope_call_begin(&c, ctx);
    firn_err err = {0};
    Querier__V1__SelectMergeStacktracesRequest l =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST__INIT, rt = l;
    Querier__V1__DiffRequest req = QUERIER__V1__DIFF_REQUEST__INIT;
    req.left = &l;
    req.right = &rt;
    Querier__V1__FlameGraphDiff *fg;
    if (side(&c, r, "leftQuery", "leftFrom", "leftUntil", &l, &err) < 0 ||
        side(&c, r, "rightQuery", "rightFrom", "rightUntil", &rt, &err) < 0 ||
        pyroscope_diff(&c, &req, &fg, &err) < 0) {
        fail(resp, &err);
    } else {
        firn_buf b = {0};
        flamebearer(&b, fg->names, fg->n_names, fg->levels, fg->n_levels, fg->total,
                    fg->max_self);
        metadata(&b, l.profile_typeid, "double");
        firn_buf_printf(&b, ",\"leftTicks\":%" PRId64 ",\"rightTicks\":%" PRId64, fg->leftticks,
                        fg->rightticks);
        respond(resp, &b);
    }
    pyroscope_call_end(&c);
}

int pyroscope_render_register(http_server *s, pyroscope_api *api, firn_err *err)
{
    /* mounted: the Drilldown reaches them under the data source's URL, path and all */
    unsigned flags = HTTP_ROUTE_WORKER | HTTP_ROUTE_MOUNTED;
    if (http_route(s, "GET", "/pyroscope/render", flags, handle_render, api, err) < 0 ||
        http_route(s, "GET", "/pyroscope/render-diff", flags, handle_render_diff, api,
                  err) < 0)
        return -1;
    return 0;
}
