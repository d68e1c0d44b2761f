/* api_ingest.c -- pushed profiles: firn's own upload endpoint and
 * Pyroscope's, both stored as a scraped profile is (one series per sample
 * type, tsdb_append), and answered only once the store has committed them.
 *
 * POST /api/v1/ingest?name=NAME[&delta=BOOL][&time=T][&LABEL=VALUE]...
 *   The body is one pprof profile, raw or gzipped (also when sent with
 *   Content-Encoding: gzip).  name (or __name__, as Parca's WriteRaw names
 *   it) is the profile name, the first field of the profile type
 *   (process_cpu, memory...).  Every other parameter is a target label, as
 *   is each k=v of an "X-Firn-Labels: k=v,k2=v2" header (the way to set a
 *   label called name, delta or time).  delta says the values are deltas
 *   over the profile's duration (CPU profiles); without it, the profile is
 *   taken as a delta when its duration_nanos is not 0 (Parca's rule).  time
 *   (Unix seconds or RFC 3339) places the profile; by default its
 *   time_nanos, or now.  Answers Prometheus's envelope: on success
 *   {"status":"success","data":{"profileTypes":[...],"samples":N,
 *   "timestampMs":T}}, else {"status":"error","errorType":...,"error":...}.
 *
 * POST /api/v1/ingest with Content-Type: application/x-firn-batch
 *   Many profiles in one request (firn-agent sends a drain's this way).
 *   The body is items one after another, each a line "LENGTH QUERY\n"
 *   (LENGTH decimal bytes, QUERY what the single upload's URL query would
 *   be: name=...&delta=...&LABEL=VALUE...) and then LENGTH bytes of pprof,
 *   raw or gzipped.  The framing of every item is checked before anything
 *   is stored (a batch cut short stores nothing, 400); then each item is
 *   stored as its single upload would be, all of it or none of it, and
 *   answered in order: {"status":"success","data":{"stored":S,"failed":F,
 *   "items":[{"status":"success","profileTypes":...,"samples":N,
 *   "timestampMs":T} | {"status":"error","errorType":...,"error":...,
 *   "code":HTTP_STATUS},...]}}.  The items are handed to the store without
 *   waiting for each one's commit, so they share commits; the answer comes
 *   once every stored item is durable.  X-Firn-Labels does not apply to batches.
 *
 * POST /ingest?name=APP.SUFFIX{k=v,...}&from&until&format&sampleRate&spyName
 *   Pyroscope's ingest API (pkg/ingester/pyroscope), for its clients as
 *   they are.  A multipart/form-data body (a "profile" part, optional
 *   "sample_type_config") or format=pprof is a pprof profile; otherwise
 *   (format=folded, the default, or lines) it is collapsed stacks.  As in
 *   Pyroscope:
 *    - labels: the ones in braces ('.' in their names becomes '_':
 *      otel.scope.name -> otel_scope_name, as Prometheus's OTLP ingestion
 *      names them), plus service_name=APP (app_name=APP when the braces set
 *      service_name), plus pyroscope_spy=spyName;
 *    - pprof: the whole name before the braces is APP; the profile name
 *      comes from the sample types ("wall" if one is wall, else process_cpu
 *      for one containing cpu, with "samples" counting as cpu; memory for
 *      alloc_*, inuse_*, space, objects; mutex for mutex_*; block for
 *      block_*; goroutines; else the last sample type), display names from
 *      sample_type_config counting instead of the raw ones; its time is
 *      time_nanos unless that is 0 or in 1970, then from;
 *    - folded: APP is the name up to its last '.', and the suffix names the
 *      type (cpu -> process_cpu samples/count, inuse_space -> memory
 *      inuse_space/bytes, mutex_duration -> mutex delay/nanoseconds...; no
 *      '.' means cpu); cpu and wall values are samples, turned into
 *      nanoseconds at sampleRate (default 100 Hz: 10ms each);
 *    - from/until are Unix seconds (13, 16 or 19 digits: ms, us, ns); they
 *      give the time and, when the profile has none, the duration.
 *   Columns that count events over the interval (CPU, wall, allocations,
 *   contentions, delays) are stored as deltas (":delta" types, as firn's
 *   scrapes store them); in-use memory, goroutines and live objects as
 *   snapshots.  Errors are plain text, as Pyroscope's.
 *
 * Both: a bad body, label or parameter is 400 naming what was wrong, a body
 * or profile over its cap 413, a full store queue 503 with Retry-After;
 * nothing of a refused profile is stored.  Handlers run on worker threads.
 */
#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ingest/ingest.h"
#include "web/internal.h"

#define LABELS_HEADER "X-Firn-Labels"
#define RETRY_AFTER_SECONDS "1"
/* Most bytes a gzipped body may inflate to (pprof's own cap on decoding). */
#define GUNZIP_MAX (128u << 20)
/* sample_type_config is a small JSON object. */
#define SAMPLE_TYPE_CONFIG_MAX (64u << 10)
#define DEFAULT_SAMPLE_RATE 100

/* The HTTP status for an error code from decoding or storing. */
static int status_of(int code)
{
    switch (code) {
    case FIRN_EINVAL:
        return 400;
    case FIRN_ETOOBIG:
        return 413;
    case FIRN_EBUSY:
        return 503;
    case FIRN_EEXIST:
        return 409;   /* a different profile at that time; the same again is a 200 */
    default:
        return 500;
    }
}

/* ---- one push, whichever endpoint it came by ---------------------------------- */

typedef struct push {
    firn_arena *arena;            /* labels, names, parts */
    unsigned char *gunzipped;     /* the body after Content-Encoding: gzip, or NULL */
    ingest_grant gunzipped_grant; /* its bytes in the ingest memory budget */
    const char *body;
    size_t body_len;
    firn_label *labels;
    size_t n_labels, cap_labels;
    ingest_result result;         /* what was stored */
} push;

static void push_free(push *in)
{
    ingest_result_free(&in->result);
    free(in->gunzipped);
    ingest_grant_release(&in->gunzipped_grant);
    firn_arena_free(in->arena);
}

/* Room for n labels, n counted from a request already in memory. */
static void labels_reserve(push *in, size_t n)
{
    in->labels = firn_arena_calloc(in->arena, n ? n : 1, sizeof *in->labels);
    in->cap_labels = n;
    in->n_labels = 0;
}

static void label_add(push *in, const char *name, const char *value)
{
    assert(in->n_labels < in->cap_labels);   /* the callers reserve what they add */
    in->labels[in->n_labels++] = (firn_label){name, value};
}

static const char *label_find(const push *in, const char *name)
{
    for (size_t i = 0; i < in->n_labels; i++)
        if (strcmp(in->labels[i].name, name) == 0)
            return in->labels[i].value;
    return NULL;
}

/* The body as the client meant it: inflated when Content-Encoding says
 * gzip.  (A pprof body may also be gzipped without saying so: the decoder
 * sees the magic bytes.) */
static int push_body(push *in, const http_request *req, firn_err *err)
{
    in->body = http_request_body(req, &in->body_len);
    const char *enc = http_request_header(req, "Content-Encoding");
    if (!enc || !*enc || strcasecmp(enc, "identity") == 0)
        return 0;
    if (strcasecmp(enc, "gzip") != 0 && strcasecmp(enc, "x-gzip") != 0)
        return firn_errf(err, FIRN_EINVAL,
                         "Content-Encoding \"%.100s\" is not supported (only gzip)", enc);
    size_t n;
    int rc = ingest_gunzip(in->body, in->body_len, GUNZIP_MAX, &in->gunzipped, &n,
                           &in->gunzipped_grant, err);
    if (rc < 0) {
        firn_err_prefix(err, "Content-Encoding gzip");
        return rc;
    }
    in->body = (const char *)in->gunzipped;
    in->body_len = n;
    return 0;
}

/* A pushed pprof body must not be empty (say so before the decoder would). */
static int body_not_empty(size_t len, firn_err *err)
{
    return len ? 0 : firn_errf(err, FIRN_EINVAL, "empty body: want a pprof profile (raw or gzipped)");
}

/* A store error the client cannot cause is worth a line in the log. */
static void store_error_log(const web_api *api, const push *in, int rc, const firn_err *err)
{
    if (api->db && in->result.failed == INGEST_FAILED_STORE && rc != FIRN_EINVAL &&
        rc != FIRN_EBUSY && rc != FIRN_ETOOBIG && rc != FIRN_EEXIST)
        firn_log(FIRN_LOG_WARN, "web", "storing a pushed profile failed", "err=\"%s\"",
                 err ? err->msg : "");
}

/* ---- POST /api/v1/ingest ---------------------------------------------------------- */

/* Go's strconv.ParseBool. */
static int parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = {"1", "t", "T", "TRUE", "true", "True"};
    static const char *const no[] = {"0", "f", "F", "FALSE", "false", "False"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strcmp(s, yes[i]) == 0)
            return *out = true, 0;
        if (strcmp(s, no[i]) == 0)
            return *out = false, 0;
    }
    return -1;
}

static bool is_reserved_param(const char *name)
{
    return strcmp(name, "name") == 0 || strcmp(name, FIRN_LABEL_NAME) == 0 ||
           strcmp(name, "delta") == 0 || strcmp(name, "time") == 0;
}

static int api_ingest_params(push *in, const http_request *req, ingest_options *o,
                             firn_err *err)
{
    const char *name = http_request_param(req, "name");
    const char *name2 = http_request_param(req, FIRN_LABEL_NAME);
    if (name && name2 && strcmp(name, name2) != 0)
        return firn_errf(err, FIRN_EINVAL, "name \"%.100s\" and __name__ \"%.100s\" differ",
                         name, name2);
    if (!name)
        name = name2;
    if (!name || !*name)
        return firn_errf(err, FIRN_EINVAL, "missing parameter name: the profile name, the "
                         "first field of the profile type (e.g. name=process_cpu)");
    if (!firn_label_name_valid(name))
        return firn_errf(err, FIRN_EINVAL, "name \"%.100s\": a profile name must match "
                         "[a-zA-Z_][a-zA-Z0-9_]*", name);
    o->profile_name = name;

    o->delta = INGEST_DELTA_AUTO;
    const char *d = http_request_param(req, "delta");
    if (d) {
        bool b;
        if (parse_bool(d, &b) < 0)
            return firn_errf(err, FIRN_EINVAL, "delta \"%.100s\": want true or false", d);
        o->delta = b ? INGEST_DELTA_ALL : INGEST_DELTA_NONE;
    }
    const char *t = http_request_param(req, "time");
    if (t) {
        int rc = web_parse_time(t, &o->timestamp_ms, err);
        if (rc < 0) {
            firn_err_prefix(err, "time");
            return rc;
        }
        if (o->timestamp_ms <= 0)
            return firn_errf(err, FIRN_EINVAL, "time \"%.100s\": before 1970", t);
    }

    const char *h = http_request_header(req, LABELS_HEADER);
    firn_label *hl = NULL;
    size_t n_hl = 0;
    size_t n_params = http_request_param_count(req);
    int rc;
    if (h && (rc = ingest_kv_list_parse(in->arena, LABELS_HEADER, h, h + strlen(h), &hl, &n_hl,
                                        err)) < 0)
        return rc;
    labels_reserve(in, n_params + n_hl);
    for (size_t i = 0; i < n_params; i++) {
        const char *const *values;
        size_t n_values;
        const char *pname = http_request_param_at(req, i, &values, &n_values);
        if (is_reserved_param(pname))
            continue;
        if (n_values > 1)
            return firn_errf(err, FIRN_EINVAL, "label %.100s given %zu times", pname, n_values);
        label_add(in, pname, values[0]);
    }
    for (size_t i = 0; i < n_hl; i++)
        label_add(in, hl[i].name, hl[i].value);
    return ingest_labels_check(in->labels, &in->n_labels, err);
}

static json_t *profile_types_json(const char *name, const ingest_result *r)
{
    const pprof_profile *p = r->profile;
    json_t *a = json_array();
    for (size_t t = 0; t < p->n_sample_types; t++) {
        char buf[1024];
        int n = firn_profile_type_format(buf, sizeof buf, name,
                                         pprof_str(p, p->sample_types[t].type),
                                         pprof_str(p, p->sample_types[t].unit),
                                         pprof_str(p, p->period_type.type),
                                         pprof_str(p, p->period_type.unit),
                                         r->delta_columns[t]);
        if (n > 0 && (size_t)n < sizeof buf)
            json_array_append_new(a, json_string(buf));
    }
    return a;
}

/* An upload's parameters, labels and body, before anything is decoded. */
static int api_ingest_prepare(const http_request *req, push *in, ingest_options *o,
                              firn_err *err)
{
    int rc;
    if ((rc = api_ingest_params(in, req, o, err)) < 0 || (rc = push_body(in, req, err)) < 0 ||
        (rc = body_not_empty(in->body_len, err)) < 0)
        return rc;
    o->keep_profile = true;  /* the answer lists what was stored */
    return 0;
}

static int api_ingest(web_api *api, const http_request *req, push *in, ingest_options *o,
                      firn_err *err)
{
    int rc;
    if ((rc = api_ingest_prepare(req, in, o, err)) < 0)
        return rc;
    rc = ingest_pprof(api->db, in->labels, in->n_labels, in->body, in->body_len, o, &in->result,
                      err);
    store_error_log(api, in, rc, err);
    return rc;
}

/* ---- POST /api/v1/ingest, a batch ------------------------------------------------- */

typedef struct batch_item {
    const char *query, *body;
    size_t query_len, body_len;
} batch_item;

/* The items of a batch body ("LEN QUERY\n" then LEN bytes, again and
 * again), all of them checked before any is stored: a batch cut short
 * stores nothing. */
static int batch_parse(firn_arena *a, const char *p, size_t len, batch_item **out, size_t *n_out,
                       firn_err *err)
{
    size_t n = 0;
    batch_item *items = NULL;
    size_t cap = 0;
    for (size_t at = 0; at < len;) {
        if (n == WEB_INGEST_BATCH_MAX)
            return firn_errf(err, FIRN_ETOOBIG, "batch: more than %d items",
                             WEB_INGEST_BATCH_MAX);
        const char *line = p + at;
        const char *nl = memchr(line, '\n', len - at);
        if (!nl)
            return firn_errf(err, FIRN_EINVAL, "batch item %zu at byte %zu: no newline after "
                             "\"LENGTH QUERY\"", n + 1, at);
        size_t i = 0, size = 0;
        while (line + i < nl && line[i] >= '0' && line[i] <= '9' && i < 12)
            size = size * 10 + (size_t)(line[i++] - '0');
        if (i == 0 || line + i >= nl || line[i] != ' ')
            return firn_errf(err, FIRN_EINVAL, "batch item %zu at byte %zu: want \"LENGTH "
                             "QUERY\" (a decimal length, a space, the item's query)", n + 1, at);
        size_t body_at = (size_t)(nl - p) + 1;
        if (size > len - body_at)
            return firn_errf(err, FIRN_EINVAL, "batch item %zu at byte %zu: %zu bytes announced, "
                             "%zu left in the body (cut short?)", n + 1, at, size, len - body_at);
        items = firn_arena_grow(a, items, n, &cap, sizeof *items, 64);   /* at most WEB_INGEST_BATCH_MAX */
        items[n++] = (batch_item){.query = line + i + 1, .query_len = (size_t)(nl - line) - i - 1,
                                  .body = p + body_at, .body_len = size};
        at = body_at + size;
    }
    if (n == 0)
        return firn_errf(err, FIRN_EINVAL, "empty batch: want at least one item");
    *out = items;
    *n_out = n;
    return 0;
}

/* A batch's items are handed to the store one after another without
 * waiting for commits (ingest_pprof_async), so they share commits; the
 * answer waits for every one of them. */
typedef struct batch_wait {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    size_t handed, answered;
} batch_wait;

typedef struct batch_slot {
    batch_wait *w;
    push in;
    ingest_options o;
    int rc;
    firn_err err;
    bool queued;                  /* handed to the store, not yet finished */
    ingest_pending *pd;           /* the store's answer (w->mu) */
} batch_slot;

/* ingest_done_fn, on the store's writer thread. */
static void batch_answered(void *ctx, ingest_pending *pd)
{
    batch_slot *s = ctx;
    pthread_mutex_lock(&s->w->mu);
    s->pd = pd;
    s->w->answered++;
    pthread_cond_broadcast(&s->w->cond);
    pthread_mutex_unlock(&s->w->mu);
}

/* Waits for the store's answer to every item handed to it so far and
 * finishes them (the forwarder sees each stored profile here, before the
 * batch is answered). */
static void batch_settle(web_api *api, batch_wait *w, batch_slot *slots, size_t n)
{
    pthread_mutex_lock(&w->mu);
    while (w->answered < w->handed)
        pthread_cond_wait(&w->cond, &w->mu);
    pthread_mutex_unlock(&w->mu);
    for (size_t i = 0; i < n; i++) {
        batch_slot *s = &slots[i];
        if (!s->queued)
            continue;
        s->queued = false;
        s->rc = ingest_pending_finish(s->pd, &s->in.result, &s->err);
        store_error_log(api, &s->in, s->rc, &s->err);
    }
}

/* One item of a batch, checked as a single upload with that query and body
 * would be, and handed to the store.  When the ingest memory budget is in
 * use, the items handed before are settled (their memory freed) and the
 * item tried once more. */
static void batch_hand(web_api *api, const batch_item *it, batch_wait *w, batch_slot *slots,
                       size_t i)
{
    batch_slot *s = &slots[i];
    s->w = w;
    s->in.arena = firn_arena_new(0);
    http_request *req = NULL;
    s->rc = http_request_make(s->in.arena, "POST", "/api/v1/ingest", it->query, it->query_len,
                              it->body, it->body_len, &req, &s->err);
    if (s->rc == 0)
        s->rc = api_ingest_prepare(req, &s->in, &s->o, &s->err);
    for (int attempt = 0; s->rc == 0; attempt++) {
        pthread_mutex_lock(&w->mu);
        w->handed++;   /* before the store can answer */
        pthread_mutex_unlock(&w->mu);
        s->err = (firn_err){0};
        int rc = ingest_pprof_async(api->db, s->in.labels, s->in.n_labels, s->in.body,
                                    s->in.body_len, &s->o, &s->in.result, batch_answered, s,
                                    &s->err);
        if (rc == INGEST_QUEUED) {
            s->queued = true;
            return;
        }
        pthread_mutex_lock(&w->mu);
        w->handed--;
        pthread_mutex_unlock(&w->mu);
        s->rc = rc;
        if (rc == FIRN_EBUSY && attempt == 0 && w->handed) {
            batch_settle(api, w, slots, i);
            s->rc = 0;
            continue;
        }
        store_error_log(api, &s->in, rc, &s->err);
    }
}

/* An item's own result object. */
static json_t *batch_result(batch_slot *s, size_t *stored)
{
    json_t *j = json_object();
    if (s->rc == 0) {
        (*stored)++;
        json_object_set_new(j, "status", json_string("success"));
        json_object_set_new(j, "profileTypes", profile_types_json(s->o.profile_name, &s->in.result));
        json_object_set_new(j, "samples", json_integer((json_int_t)s->in.result.samples));
        json_object_set_new(j, "timestampMs", json_integer(s->in.result.timestamp_ms));
    } else {
        int status = status_of(s->rc);
        json_object_set_new(j, "status", json_string("error"));
        json_object_set_new(j, "errorType", json_string(status >= 500 ? (status == 503
                                                        ? "unavailable" : "internal")
                                                        : "bad_data"));
        json_object_set_new(j, "error", json_string(s->err.msg));
        json_object_set_new(j, "code", json_integer(status));
    }
    return j;
}

static void handle_api_ingest_batch(web_api *api, const http_request *req, http_response *resp)
{
    firn_err err = {0};
    push in = {.arena = firn_arena_new(0)};
    batch_item *items = NULL;
    size_t n = 0;
    int rc = push_body(&in, req, &err);
    if (rc == 0)
        rc = batch_parse(in.arena, in.body, in.body_len, &items, &n, &err);
    if (rc < 0) {
        web_respond_error(resp, "bad_data", "%s", err.msg);
        resp->status = status_of(rc);
        push_free(&in);
        return;
    }
    batch_wait w = {0};
    pthread_mutex_init(&w.mu, NULL);
    pthread_cond_init(&w.cond, NULL);
    batch_slot *slots = firn_xcalloc(n, sizeof *slots);
    for (size_t i = 0; i < n; i++)
        batch_hand(api, &items[i], &w, slots, i);
    batch_settle(api, &w, slots, n);
    json_t *results = json_array();
    size_t stored = 0;
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(results, batch_result(&slots[i], &stored));
        push_free(&slots[i].in);
    }
    free(slots);
    pthread_mutex_destroy(&w.mu);
    pthread_cond_destroy(&w.cond);
    json_t *data = json_object();
    json_object_set_new(data, "stored", json_integer((json_int_t)stored));
    json_object_set_new(data, "failed", json_integer((json_int_t)(n - stored)));
    json_object_set_new(data, "items", results);
    web_respond_data(resp, data);
    push_free(&in);
}

static void handle_api_ingest(void *ctx, const http_request *req, http_response *resp)
{
    const char *ct = http_request_header(req, "Content-Type");
    if (ct && strncasecmp(ct, WEB_INGEST_BATCH_TYPE, strlen(WEB_INGEST_BATCH_TYPE)) == 0) {
        handle_api_ingest_batch(ctx, req, resp);
        return;
    }
    firn_err err = {0};
    push in = {.arena = firn_arena_new(0)};
    ingest_options o = {0};
    int rc = api_ingest(ctx, req, &in, &o, &err);
    if (rc == 0) {
        json_t *data = json_object();
        json_object_set_new(data, "profileTypes", profile_types_json(o.profile_name, &in.result));
        json_object_set_new(data, "samples", json_integer((json_int_t)in.result.samples));
        json_object_set_new(data, "timestampMs", json_integer(in.result.timestamp_ms));
        web_respond_data(resp, data);
    } else {
        int status = status_of(rc);
        web_respond_error(resp, status >= 500 ? (status == 503 ? "unavailable" : "internal")
                                              : "bad_data",
                          "%s", err.msg);
        resp->status = status;
        if (status == 503)
            resp->retry_after = RETRY_AFTER_SECONDS;
    }
    push_free(&in);
}

/* ---- POST /ingest (Pyroscope) ---------------------------------------------------------- */

typedef struct pyroscope_meta {
    const char *app;
    int64_t from_ms, until_ms;
    int64_t sample_rate;
    const char *spy;
} pyroscope_meta;

/* Labels as Pyroscope sets them: those in the name's braces, service_name
 * (or app_name when the braces set service_name), pyroscope_spy. */
static int pyroscope_labels(push *in, const firn_label *l, size_t n, const char *service,
                            const char *spy, firn_err *err)
{
    labels_reserve(in, n + 2);   /* l, service_name or app_name, pyroscope_spy */
    for (size_t i = 0; i < n; i++)
        label_add(in, l[i].name, l[i].value);
    if (!label_find(in, "service_name"))
        label_add(in, "service_name", service);
    else if (!label_find(in, "app_name"))
        label_add(in, "app_name", service);
    if (spy && *spy && !label_find(in, "pyroscope_spy"))
        label_add(in, "pyroscope_spy", spy);
    return ingest_labels_check(in->labels, &in->n_labels, err);
}

static int pyroscope_folded(web_api *api, push *in, const pyroscope_meta *m, const firn_label *l,
                            size_t n, bool lines, firn_err *err)
{
    ingest_folded_type t;
    const char *profile_name, *service;
    bool snapshot;
    int rc = ingest_pyroscope_folded_kind(m->app, lines, m->sample_rate, in->arena, &t,
                                          &profile_name, &snapshot, &service, err);
    if (rc < 0 || (rc = pyroscope_labels(in, l, n, service, m->spy, err)) < 0)
        return rc;
    pprof_profile *p = ingest_folded_parse(in->body, in->body_len, &t, err);
    if (!p)
        return err ? err->code : FIRN_EINVAL;
    p->time_nanos = m->from_ms * 1000000;
    p->duration_nanos = (m->until_ms - m->from_ms) * 1000000;
    bool delta = !snapshot;
    ingest_options o = {.profile_name = profile_name, .delta = INGEST_DELTA_COLUMNS,
                        .delta_columns = &delta, .timestamp_ms = m->from_ms};
    rc = ingest_profile(api->db, in->labels, in->n_labels, p, &o, &in->result, err);
    store_error_log(api, in, rc, err);
    return rc;
}

/* Pyroscope's multipart upload: the profile part, and the sample type
 * config that may rename its sample types. */
static int pyroscope_multipart(push *in, const char *content_type, const void **data,
                               size_t *len, json_t **config, firn_err *err)
{
    http_multipart_part *parts;
    size_t n;
    int rc = http_multipart_parse(content_type, in->body, in->body_len, in->arena, &parts, &n,
                                 err);
    if (rc < 0) {
        firn_err_prefix(err, "multipart body");
        return rc;
    }
    const http_multipart_part *prof = http_multipart_get(parts, n, "profile");
    if (!prof)
        return firn_errf(err, FIRN_EINVAL, "multipart body: no \"profile\" part");
    const http_multipart_part *prev = http_multipart_get(parts, n, "prev_profile");
    if (prev && prev->len)  /* Pyroscope's own answer: deltas are the client's to compute */
        return firn_errf(err, FIRN_EINVAL, "unsupported client version. Please update "
                         "github.com/grafana/pyroscope-go to the latest version (a "
                         "prev_profile part: send profiles with deltas computed)");
    const http_multipart_part *stc = http_multipart_get(parts, n, "sample_type_config");
    if (stc && stc->len) {
        if (stc->len > SAMPLE_TYPE_CONFIG_MAX)
            return firn_errf(err, FIRN_ETOOBIG, "sample_type_config: more than %u bytes",
                             SAMPLE_TYPE_CONFIG_MAX);
        json_error_t je;
        *config = json_loadb(stc->data, stc->len, 0, &je);
        if (!*config || !json_is_object(*config))
            return firn_errf(err, FIRN_EINVAL, "sample_type_config: %s",
                             *config ? "not a JSON object" : je.text);
    }
    *data = prof->data;
    *len = prof->len;
    return 0;
}

static int pyroscope_pprof(web_api *api, push *in, const char *content_type,
                           const pyroscope_meta *m, const firn_label *l, size_t n, firn_err *err)
{
    int rc = pyroscope_labels(in, l, n, m->app, m->spy, err);
    if (rc < 0)
        return rc;
    const void *data = in->body;
    size_t len = in->body_len;
    json_t *config = NULL;
    if (http_is_multipart_content_type(content_type))
        rc = pyroscope_multipart(in, content_type, &data, &len, &config, err);
    if (rc == 0 && (rc = body_not_empty(len, err)) == 0) {
        rc = ingest_pyroscope_pprof(api->db, in->labels, in->n_labels, data, len, config,
                                    m->from_ms, m->until_ms, &in->result, err);
        store_error_log(api, in, rc, err);
    }
    json_decref(config);
    return rc;
}

static int pyroscope_ingest(web_api *api, const http_request *req, push *in, firn_err *err)
{
    const char *name = http_request_param(req, "name");
    if (!name || !*name)
        return firn_errf(err, FIRN_EINVAL, "missing parameter name: the application name, "
                         "e.g. name=myapp.cpu{env=prod}");
    pyroscope_meta m = {.sample_rate = DEFAULT_SAMPLE_RATE,
                        .spy = http_request_param(req, "spyName")};
    firn_label *l;
    size_t n;
    int rc = ingest_pyroscope_name_parse(name, in->arena, &m.app, &l, &n, err);
    if (rc < 0)
        return rc;
    const char *from = http_request_param(req, "from");
    const char *until = http_request_param(req, "until");
    m.from_ms = m.until_ms = firn_now_ms();
    if ((from && (rc = ingest_pyroscope_time("from", from, &m.from_ms, err)) < 0) ||
        (until && (rc = ingest_pyroscope_time("until", until, &m.until_ms, err)) < 0))
        return rc;
    if (m.until_ms < m.from_ms)
        return firn_errf(err, FIRN_EINVAL, "until (%s) is before from (%s)",
                         until ? until : "now", from ? from : "now");
    const char *rate = http_request_param(req, "sampleRate");
    if (rate && (rc = ingest_pyroscope_sample_rate(rate, &m.sample_rate, err)) < 0)
        return rc;

    /* Pyroscope's dispatch: format first, then a multipart body is pprof,
     * and anything else collapsed stacks. */
    const char *format = http_request_param(req, "format");
    const char *ct = http_request_header(req, "Content-Type");
    if (!format)
        format = "";
    if (strcmp(format, "trie") == 0 || strcmp(format, "tree") == 0 ||
        strcmp(format, "jfr") == 0 || strcmp(format, "speedscope") == 0 ||
        (ct && strncasecmp(ct, "binary/octet-stream+", 20) == 0))
        return firn_errf(err, FIRN_EINVAL, "format \"%.40s\" is not supported: firn takes "
                         "pprof, folded and lines", *format ? format : ct);
    if ((rc = push_body(in, req, err)) < 0)
        return rc;
    if (strcmp(format, "lines") == 0)
        return pyroscope_folded(api, in, &m, l, n, true, err);
    if (strcmp(format, "pprof") == 0 || http_is_multipart_content_type(ct))
        return pyroscope_pprof(api, in, ct, &m, l, n, err);
    return pyroscope_folded(api, in, &m, l, n, false, err);
}

static void handle_pyroscope_ingest(void *ctx, const http_request *req, http_response *resp)
{
    firn_err err = {0};
    push in = {.arena = firn_arena_new(0)};
    int rc = pyroscope_ingest(ctx, req, &in, &err);
    if (rc == 0) {
        resp->status = 200;  /* Pyroscope answers an ingest with an empty body */
    } else {
        http_respond_text(resp, status_of(rc), "%s", err.msg);
        if (resp->status == 503)
            resp->retry_after = RETRY_AFTER_SECONDS;
    }
    push_free(&in);
}

/* ---- registration ------------------------------------------------------------------- */

int web_api_ingest_register(http_server *s, web_api *api, firn_err *err)
{
    unsigned flags = HTTP_ROUTE_WORKER | HTTP_ROUTE_RAW_BODY;
    int rc = http_route(s, "POST", "/api/v1/ingest", flags, handle_api_ingest, api, err);
    if (rc == 0)
        rc = http_route(s, "POST", "/ingest", flags, handle_pyroscope_ingest, api, err);
    return rc;
}
