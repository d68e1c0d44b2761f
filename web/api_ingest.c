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
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "web/internal.h"

#define LABELS_HEADER "X-Firn-Labels"
#define RETRY_AFTER_SECONDS "1"
/* Most bytes a gzipped body may inflate to (pprof's own cap on decoding). */
#define GUNZIP_MAX (128u << 20)
/* sample_type_config is a small JSON object. */
#define SAMPLE_TYPE_CONFIG_MAX (64u << 10)
#define DEFAULT_SAMPLE_RATE 100

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

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
    default:
        return 500;
    }
}

/* ---- one push, whichever endpoint it came by ---------------------------------- */

typedef struct ingest {
    firn_arena *arena;            /* labels, names, parts */
    unsigned char *gunzipped;     /* the body after Content-Encoding: gzip, or NULL */
    const char *body;
    size_t body_len;
    pprof_profile *profile;
    firn_label *labels;
    size_t n_labels, cap_labels;
    const char *name;             /* the profile name */
    bool *delta_columns;          /* per sample type */
    int64_t timestamp_ms;
} ingest;

static void ingest_free(ingest *in)
{
    pprof_free(in->profile);
    free(in->gunzipped);
    firn_arena_free(in->arena);
}

static int labels_reserve(ingest *in, size_t n, firn_err *err)
{
    in->labels = firn_arena_calloc(in->arena, n ? n : 1, sizeof *in->labels);
    in->cap_labels = n;
    in->n_labels = 0;
    return in->labels ? 0 : firn_errf(err, FIRN_ENOMEM, "out of memory");
}

static void label_add(ingest *in, const char *name, const char *value)
{
    if (in->n_labels < in->cap_labels)
        in->labels[in->n_labels++] = (firn_label){name, value};
}

static const char *label_find(const ingest *in, const char *name)
{
    for (size_t i = 0; i < in->n_labels; i++)
        if (strcmp(in->labels[i].name, name) == 0)
            return in->labels[i].value;
    return NULL;
}

/* The body as the client meant it: inflated when Content-Encoding says
 * gzip.  (A pprof body may also be gzipped without saying so: the decoder
 * sees the magic bytes.) */
static int ingest_body(ingest *in, const http_request *req, firn_err *err)
{
    in->body = http_request_body(req, &in->body_len);
    const char *enc = http_request_header(req, "Content-Encoding");
    if (!enc || !*enc || strcasecmp(enc, "identity") == 0)
        return 0;
    if (strcasecmp(enc, "gzip") != 0 && strcasecmp(enc, "x-gzip") != 0)
        return firn_errf(err, FIRN_EINVAL,
                         "Content-Encoding \"%.100s\" is not supported (only gzip)", enc);
    size_t n;
    int rc = pprof_gunzip(in->body, in->body_len, GUNZIP_MAX, &in->gunzipped, &n, err);
    if (rc < 0) {
        firn_err_prefix(err, "Content-Encoding gzip");
        return rc;
    }
    in->body = (const char *)in->gunzipped;
    in->body_len = n;
    return 0;
}

static int ingest_decode(ingest *in, const void *data, size_t len, firn_err *err)
{
    if (len == 0)
        return firn_errf(err, FIRN_EINVAL, "empty body: want a pprof profile (raw or gzipped)");
    pprof_limits limits;
    pprof_limits_default(&limits);
    in->profile = pprof_decode(data, len, &limits, err);
    if (!in->profile) {
        int code = err ? err->code : FIRN_EINVAL;
        firn_err_prefix(err, "decoding profile");
        return code == FIRN_ETOOBIG ? code : FIRN_EINVAL;
    }
    return 0;
}

/* Labels checked (and sorted) before the body is looked at. */
static int ingest_labels_check(ingest *in, firn_err *err)
{
    for (size_t i = 0; i < in->n_labels; i++)
        if (strcmp(in->labels[i].name, FIRN_LABEL_NAME) == 0)
            return firn_errf(err, FIRN_EINVAL, "label __name__: the profile type is the "
                             "store's to derive; give the profile name as name=");
    if (firn_labels_normalize(in->labels, &in->n_labels, err) < 0) {
        firn_err_prefix(err, "labels");
        return FIRN_EINVAL;
    }
    return 0;
}

static int ingest_store(web_api *api, ingest *in, firn_err *err)
{
    if (!api->db)
        return firn_errf(err, FIRN_EIO, "no store to write to");
    tsdb_append_req req = {
        .labels = in->labels,
        .n_labels = in->n_labels,
        .profile_name = in->name,
        .delta_columns = in->delta_columns,
        .profile = in->profile,
        .timestamp_ms = in->timestamp_ms,
    };
    int rc = tsdb_append(api->db, &req, err);
    if (rc < 0) {
        firn_err_prefix(err, "storing the profile");
        if (rc != FIRN_EINVAL && rc != FIRN_EBUSY && rc != FIRN_ETOOBIG)
            firn_log(FIRN_LOG_WARN, "web", "storing a pushed profile failed", "err=\"%s\"",
                     err ? err->msg : "");
    }
    return rc;
}

/* The default timestamp: the profile's time, else now (the store's rule,
 * made here so the answer can say which it was). */
static int64_t profile_time_ms(const pprof_profile *p)
{
    return p->time_nanos > 0 ? p->time_nanos / 1000000 : now_ms();
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

/* The pairs of "k=v, k2 = v2" in [p, end), split on ',' and trimmed, copied
 * into a; empty items are skipped.  FIRN_EINVAL, naming what the list is,
 * for an item without '='. */
static int kv_list_parse(firn_arena *a, const char *what, const char *p, const char *end,
                         firn_label **pairs, size_t *n_pairs, firn_err *err)
{
    size_t room = 1, n = 0;
    for (const char *q = p; q < end; q++)
        room += *q == ',';
    firn_label *out = firn_arena_calloc(a, room, sizeof *out);
    if (!out)
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
    while (p < end) {
        const char *item = p, *item_end = memchr(p, ',', (size_t)(end - p));
        if (!item_end)
            item_end = end;
        p = item_end < end ? item_end + 1 : end;
        while (item < item_end && isspace((unsigned char)*item))
            item++;
        while (item_end > item && isspace((unsigned char)item_end[-1]))
            item_end--;
        if (item == item_end)
            continue;
        const char *eq = memchr(item, '=', (size_t)(item_end - item));
        if (!eq)
            return firn_errf(err, FIRN_EINVAL, "%s: \"%.*s\" is not k=v", what,
                             (int)(item_end - item > 100 ? 100 : item_end - item), item);
        const char *name_end = eq, *v = eq + 1;
        while (name_end > item && isspace((unsigned char)name_end[-1]))
            name_end--;
        while (v < item_end && isspace((unsigned char)*v))
            v++;
        out[n].name = firn_arena_strndup(a, item, (size_t)(name_end - item));
        out[n].value = firn_arena_strndup(a, v, (size_t)(item_end - v));
        if (!out[n].name || !out[n].value)
            return firn_errf(err, FIRN_ENOMEM, "out of memory");
        n++;
    }
    *pairs = out;
    *n_pairs = n;
    return 0;
}

static int api_ingest_params(ingest *in, const http_request *req, int *delta, firn_err *err)
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
    in->name = name;

    *delta = -1;
    const char *d = http_request_param(req, "delta");
    if (d) {
        bool b;
        if (parse_bool(d, &b) < 0)
            return firn_errf(err, FIRN_EINVAL, "delta \"%.100s\": want true or false", d);
        *delta = b;
    }
    const char *t = http_request_param(req, "time");
    if (t) {
        int rc = web_parse_time(t, &in->timestamp_ms, err);
        if (rc < 0) {
            firn_err_prefix(err, "time");
            return rc;
        }
        if (in->timestamp_ms <= 0)
            return firn_errf(err, FIRN_EINVAL, "time \"%.100s\": before 1970", t);
    }

    const char *h = http_request_header(req, LABELS_HEADER);
    firn_label *hl = NULL;
    size_t n_hl = 0;
    size_t n_params = http_request_param_count(req);
    int rc;
    if ((h && (rc = kv_list_parse(in->arena, LABELS_HEADER, h, h + strlen(h), &hl, &n_hl,
                                  err)) < 0) ||
        (rc = labels_reserve(in, n_params + n_hl, err)) < 0)
        return rc;
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
    return ingest_labels_check(in, err);
}

static json_t *profile_types_json(const ingest *in)
{
    const pprof_profile *p = in->profile;
    json_t *a = json_array();
    for (size_t t = 0; t < p->n_sample_types; t++) {
        char buf[1024];
        int n = firn_profile_type_format(buf, sizeof buf, in->name,
                                         pprof_str(p, p->sample_types[t].type),
                                         pprof_str(p, p->sample_types[t].unit),
                                         pprof_str(p, p->period_type.type),
                                         pprof_str(p, p->period_type.unit),
                                         in->delta_columns[t]);
        if (n > 0 && (size_t)n < sizeof buf)
            json_array_append_new(a, json_string(buf));
    }
    return a;
}

static int api_ingest(web_api *api, const http_request *req, ingest *in, firn_err *err)
{
    int delta = -1, rc;
    if ((rc = api_ingest_params(in, req, &delta, err)) < 0 ||
        (rc = ingest_body(in, req, err)) < 0 ||
        (rc = ingest_decode(in, in->body, in->body_len, err)) < 0)
        return rc;
    const pprof_profile *p = in->profile;
    in->delta_columns = firn_arena_calloc(in->arena, p->n_sample_types + 1, sizeof(bool));
    if (!in->delta_columns)
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
    bool d = delta >= 0 ? delta : p->duration_nanos != 0;
    for (size_t i = 0; i < p->n_sample_types; i++)
        in->delta_columns[i] = d;
    if (in->timestamp_ms == 0)
        in->timestamp_ms = profile_time_ms(p);
    return ingest_store(api, in, err);
}

static void handle_api_ingest(void *ctx, const http_request *req, http_response *resp)
{
    firn_err err = {0};
    ingest in = {.arena = firn_arena_new(0)};
    int rc = in.arena ? api_ingest(ctx, req, &in, &err)
                      : firn_errf(&err, FIRN_ENOMEM, "out of memory");
    if (rc == 0) {
        json_t *data = json_object();
        json_object_set_new(data, "profileTypes", profile_types_json(&in));
        json_object_set_new(data, "samples", json_integer((json_int_t)in.profile->n_samples));
        json_object_set_new(data, "timestampMs", json_integer(in.timestamp_ms));
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
    ingest_free(&in);
}

/* ---- Pyroscope's name, folded stacks ------------------------------------------------- */

static bool pyroscope_app_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-' || c == '/';
}

int web_pyroscope_name_parse(const char *s, firn_arena *a, const char **app,
                             firn_label **labels, size_t *n_labels, firn_err *err)
{
    *app = NULL;
    *labels = NULL;
    *n_labels = 0;
    char what[256];
    snprintf(what, sizeof what, "name \"%.200s\"", s);
    const char *brace = strchr(s, '{');
    const char *b = s, *e = brace ? brace : s + strlen(s);
    while (b < e && isspace((unsigned char)*b))
        b++;
    while (e > b && isspace((unsigned char)e[-1]))
        e--;
    if (b == e)
        return firn_errf(err, FIRN_EINVAL, "%s: no application name", what);
    for (const char *p = b; p < e; p++)
        if (!pyroscope_app_char(*p))
            return firn_errf(err, FIRN_EINVAL, "%s: character '%c' is not allowed in an "
                             "application name ([A-Za-z0-9_.-/])", what,
                             isprint((unsigned char)*p) ? *p : '?');
    char *name = firn_arena_strndup(a, b, (size_t)(e - b));
    if (!name)
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
    *app = name;
    if (!brace)
        return 0;
    const char *close = strchr(brace, '}');
    if (!close)
        return firn_errf(err, FIRN_EINVAL, "%s: '{' without '}'", what);
    for (const char *p = close + 1; *p; p++)
        if (!isspace((unsigned char)*p))
            return firn_errf(err, FIRN_EINVAL, "%s: text after '}'", what);
    firn_label *l;
    size_t n;
    int rc = kv_list_parse(a, what, brace + 1, close, &l, &n, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        /* Pyroscope allows '.' in label names, and its clients send OpenTelemetry
         * attributes (otel.scope.name); as Prometheus's OTLP ingestion, '_' */
        char *key = (char *)l[i].name;
        for (char *c = key; *c; c++)
            if (*c == '.')
                *c = '_';
        if (!firn_label_name_valid(key) || strlen(key) > FIRN_LABEL_NAME_MAX)
            return firn_errf(err, FIRN_EINVAL, "%s: invalid label name \"%.100s\" (want "
                             "[a-zA-Z_][a-zA-Z0-9_]*)", what, key);
        if (strcmp(key, FIRN_LABEL_NAME) == 0)
            return firn_errf(err, FIRN_EINVAL, "%s: label __name__ is reserved", what);
    }
    *labels = l;
    *n_labels = n;
    return 0;
}

/* Go's strconv.Atoi for a count: an optional '+', then digits. */
static int parse_count(const char *s, size_t len, int64_t *out)
{
    size_t i = 0;
    if (i < len && s[i] == '+')
        i++;
    if (i == len)
        return -1;
    int64_t v = 0;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        if (v > (INT64_MAX - (s[i] - '0')) / 10)
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* One collapsed stack, root first in [p, end), as locations leaf first. */
static int folded_stack(pprof_builder *b, const char *p, const char *end, uint32_t *locs,
                        size_t depth)
{
    for (size_t i = 0; i < depth; i++) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *fe = semi ? semi : end;
        int64_t name = pprof_builder_string(b, p, (size_t)(fe - p));
        pprof_function fn = {.name = name, .system_name = name};
        pprof_line line = {.function = pprof_builder_function(b, &fn)};
        pprof_location loc = {.mapping = PPROF_NONE, .lines = &line, .n_lines = 1};
        uint32_t l = pprof_builder_location(b, &loc);
        if (name < 0 || line.function == PPROF_NONE || l == PPROF_NONE)
            return FIRN_ENOMEM;
        locs[depth - 1 - i] = l;
        p = fe + 1;
    }
    return 0;
}

pprof_profile *web_folded_parse(const char *body, size_t len, const web_folded_type *t,
                                firn_err *err)
{
    if (t->scale < 1) {
        firn_errf(err, FIRN_EINVAL, "scale %" PRId64 ": must be at least 1", t->scale);
        return NULL;
    }
    pprof_builder *b = pprof_builder_new(1);
    if (!b) {
        firn_errf(err, FIRN_ENOMEM, "out of memory");
        return NULL;
    }
    pprof_builder_sample_type(b, 0, t->sample_type, t->sample_unit);
    pprof_builder_period(b, t->period_type ? t->period_type : "",
                         t->period_unit ? t->period_unit : "", t->period);
    uint32_t *locs = NULL;
    size_t cap = 0, line_no = 0;
    int rc = 0;
    const char *p = body, *end = body + len;
    while (p < end) {
        line_no++;
        const char *line = p;
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        p = nl ? nl + 1 : end;
        if (le > line && le[-1] == '\r')
            le--;
        const char *stack_end = le;
        int64_t value = 1;
        if (!t->lines) {
            const char *sp = le;
            while (sp > line && sp[-1] != ' ')
                sp--;
            if (sp == line)
                continue;  /* no value: skipped, as Pyroscope does */
            if (parse_count(sp, (size_t)(le - sp), &value) < 0) {
                rc = firn_errf(err, FIRN_EINVAL, "line %zu: value \"%.*s\" is not a "
                               "non-negative integer", line_no,
                               (int)(le - sp > 40 ? 40 : le - sp), sp);
                break;
            }
            stack_end = sp - 1;
        }
        if (value == 0 || stack_end == line)
            continue;  /* nothing to add; an empty stack has no frame to add it to */
        if (value > INT64_MAX / t->scale) {
            rc = firn_errf(err, FIRN_EINVAL, "line %zu: value %" PRId64 " times %" PRId64
                           " overflows", line_no, value, t->scale);
            break;
        }
        value *= t->scale;
        size_t depth = 1;
        for (const char *q = line; q < stack_end && depth <= WEB_FOLDED_DEPTH_MAX; q++)
            depth += *q == ';';
        if (depth > WEB_FOLDED_DEPTH_MAX) {
            rc = firn_errf(err, FIRN_EINVAL, "line %zu: more than %d frames", line_no,
                           WEB_FOLDED_DEPTH_MAX);
            break;
        }
        if (depth > cap) {
            size_t ncap = cap ? cap : 64;
            while (ncap < depth)
                ncap *= 2;
            uint32_t *nl_locs = realloc(locs, ncap * sizeof *locs);
            if (!nl_locs) {
                rc = firn_errf(err, FIRN_ENOMEM, "out of memory");
                break;
            }
            locs = nl_locs;
            cap = ncap;
        }
        if (folded_stack(b, line, stack_end, locs, depth) < 0 ||
            pprof_builder_sample(b, locs, depth, &value, NULL, 0) < 0) {
            rc = firn_errf(err, FIRN_ENOMEM, "out of memory");
            break;
        }
    }
    free(locs);
    if (rc < 0) {
        pprof_builder_free(b);
        return NULL;
    }
    pprof_profile *prof = pprof_builder_finish(b, err);
    if (prof && pprof_merge_samples(prof, err) < 0) {
        pprof_free(prof);
        return NULL;
    }
    return prof;
}

/* ---- POST /ingest (Pyroscope) ---------------------------------------------------------- */

/* Pyroscope's folded suffixes (convertMetadata in pkg/ingester/pyroscope):
 * the profile name and sample type, and whether the values are a snapshot
 * rather than counts over the interval. */
static const struct folded_suffix {
    const char *suffix, *name, *sample_type, *unit;
    bool snapshot;
} FOLDED_SUFFIXES[] = {
    {"cpu", "process_cpu", "samples", "count", false},
    {"wall", "wall", "samples", "count", false},
    {"itimer", "process_cpu", "samples", "count", false},
    {"inuse_objects", "memory", "inuse_objects", "count", true},
    {"inuse_space", "memory", "inuse_space", "bytes", true},
    {"alloc_objects", "memory", "alloc_objects", "count", false},
    {"alloc_space", "memory", "alloc_space", "bytes", false},
    {"goroutines", "goroutine", "goroutines", "count", true},
    {"mutex_count", "mutex", "contentions", "count", false},
    {"mutex_duration", "mutex", "delay", "nanoseconds", false},
    {"block_count", "block", "contentions", "count", false},
    {"block_duration", "block", "delay", "nanoseconds", false},
    {"alloc_in_new_tlab_objects", "memory", "alloc_in_new_tlab_objects", "count", false},
    {"alloc_in_new_tlab_bytes", "memory", "alloc_in_new_tlab_bytes", "bytes", false},
    {"alloc_outside_tlab_objects", "memory", "alloc_outside_tlab_objects", "count", false},
    {"alloc_outside_tlab_bytes", "memory", "alloc_outside_tlab_bytes", "bytes", false},
    {"lock_count", "block", "contentions", "count", false},
    {"lock_duration", "block", "delay", "nanoseconds", false},
    {"live", "memory", "live", "count", true},
    {"exceptions", "exceptions", "samples", "count", false},
    {"seconds", "wall", "samples", "count", false},
    {"nanoseconds", "wall", "samples", "count", false},
    {"microseconds", "wall", "samples", "count", false},
    {"milliseconds", "wall", "samples", "count", false},
    {"bytes", "memory", "samples", "bytes", false},
};

/* Pyroscope's attime for Unix times: seconds, or milliseconds,
 * microseconds, nanoseconds by their number of digits (13, 16, 19). */
static int parse_unix_time(const char *param, const char *s, int64_t *ms, firn_err *err)
{
    size_t n = strlen(s);
    int64_t v;
    if (n == 0 || n > 19 || strspn(s, "0123456789") != n || parse_count(s, n, &v) < 0)
        return firn_errf(err, FIRN_EINVAL, "%s \"%.100s\": want a Unix time in seconds (or "
                         "13, 16, 19 digits: ms, us, ns)", param, s);
    switch (n) {
    case 13:
        *ms = v;
        break;
    case 16:
        *ms = v / 1000;
        break;
    case 19:
        *ms = v / 1000000;
        break;
    default:
        *ms = v <= INT64_MAX / 1000 ? v * 1000 : INT64_MAX;
    }
    /* it becomes the profile's time_nanos */
    if (*ms > INT64_MAX / 1000000)
        return firn_errf(err, FIRN_EINVAL, "%s \"%.100s\": after the year 2262", param, s);
    return 0;
}

typedef struct pyroscope_meta {
    const char *app;
    int64_t from_ms, until_ms;
    int64_t sample_rate;
    const char *spy;
} pyroscope_meta;

/* Labels as Pyroscope sets them: those in the name's braces, service_name
 * (or app_name when the braces set service_name), pyroscope_spy. */
static int pyroscope_labels(ingest *in, const firn_label *l, size_t n, const char *service,
                            const char *spy, firn_err *err)
{
    int rc = labels_reserve(in, n + 2, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        label_add(in, l[i].name, l[i].value);
    if (!label_find(in, "service_name"))
        label_add(in, "service_name", service);
    else if (!label_find(in, "app_name"))
        label_add(in, "app_name", service);
    if (spy && *spy && !label_find(in, "pyroscope_spy"))
        label_add(in, "pyroscope_spy", spy);
    return ingest_labels_check(in, err);
}

static int pyroscope_folded(ingest *in, const pyroscope_meta *m, const firn_label *l, size_t n,
                            bool lines, firn_err *err)
{
    const char *dot = strrchr(m->app, '.');
    const char *suffix = dot ? dot + 1 : "cpu";
    const struct folded_suffix *fs = NULL;
    for (size_t i = 0; i < sizeof FOLDED_SUFFIXES / sizeof FOLDED_SUFFIXES[0]; i++)
        if (strcmp(FOLDED_SUFFIXES[i].suffix, suffix) == 0)
            fs = &FOLDED_SUFFIXES[i];
    if (!fs)
        return firn_errf(err, FIRN_EINVAL, "unknown profile type: %.100s (the suffix of name "
                         "\"%.100s\" after its last '.')", suffix, m->app);
    const char *service = dot ? firn_arena_strndup(in->arena, m->app, (size_t)(dot - m->app))
                              : m->app;
    if (!service)
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
    int rc = pyroscope_labels(in, l, n, service, m->spy, err);
    if (rc < 0)
        return rc;
    web_folded_type t = {.sample_type = fs->sample_type, .sample_unit = fs->unit,
                         .period_type = "", .period_unit = "", .scale = 1, .lines = lines};
    bool timed = strcmp(fs->name, "process_cpu") == 0 || strcmp(fs->name, "wall") == 0;
    if (timed && m->sample_rate > 0) {
        /* samples at sampleRate Hz, each worth one period of CPU (or wall) time */
        t.period = 1000000000 / m->sample_rate;
        t.scale = t.period;
        t.sample_type = strcmp(fs->name, "wall") == 0 ? "wall" : "cpu";
        t.sample_unit = "nanoseconds";
        t.period_type = "cpu";
        t.period_unit = "nanoseconds";
    }
    in->profile = web_folded_parse(in->body, in->body_len, &t, err);
    if (!in->profile)
        return err ? err->code : FIRN_EINVAL;
    in->profile->time_nanos = m->from_ms * 1000000;
    in->profile->duration_nanos = (m->until_ms - m->from_ms) * 1000000;
    in->name = fs->name;
    in->delta_columns = firn_arena_calloc(in->arena, 1, sizeof(bool));
    if (!in->delta_columns)
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
    in->delta_columns[0] = !fs->snapshot;
    in->timestamp_ms = m->from_ms;
    return 0;
}

/* Pyroscope's display names for sample types come from the upload's
 * sample_type_config, else from its default mapping, in which only
 * "samples" is renamed (to cpu). */
static const char *display_name(json_t *config, const char *sample_type)
{
    if (!config)
        return strcmp(sample_type, "samples") == 0 ? "cpu" : sample_type;
    const char *d = json_string_value(json_object_get(json_object_get(config, sample_type),
                                                      "display-name"));
    return d && *d ? d : sample_type;
}

const char *web_pyroscope_profile_name(const pprof_profile *p, json_t *config, bool fallback)
{
    for (size_t i = 0; i < p->n_sample_types; i++)
        if (strcmp(pprof_str(p, p->sample_types[i].type), "wall") == 0)
            return "wall";
    const char *st = NULL;
    for (size_t i = 0; i < p->n_sample_types; i++) {
        st = display_name(config, pprof_str(p, p->sample_types[i].type));
        if (strstr(st, "cpu"))
            return "process_cpu";
        if (strstr(st, "alloc_") || strstr(st, "inuse_") || strcmp(st, "space") == 0 ||
            strcmp(st, "objects") == 0)
            return "memory";
        if (strstr(st, "mutex_"))
            return "mutex";
        if (strstr(st, "block_"))
            return "block";
        if (strstr(st, "goroutines"))
            return "goroutines";
    }
    return fallback ? st : NULL;
}

/* Pyroscope's multipart upload: the profile part, and the sample type
 * config that may rename its sample types. */
static int pyroscope_multipart(ingest *in, const char *content_type, const void **data,
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

/* Nanoseconds in 1970: Pyroscope takes a time_nanos there (or 0) for one
 * written in the wrong unit by old clients, and uses from instead. */
#define NANOS_1971 (365LL * 24 * 3600 * 1000000000)

static int pyroscope_pprof(ingest *in, const char *content_type, const pyroscope_meta *m,
                           const firn_label *l, size_t n, firn_err *err)
{
    int rc = pyroscope_labels(in, l, n, m->app, m->spy, err);
    if (rc < 0)
        return rc;
    const void *data = in->body;
    size_t len = in->body_len;
    json_t *config = NULL;
    if (http_is_multipart_content_type(content_type))
        rc = pyroscope_multipart(in, content_type, &data, &len, &config, err);
    if (rc == 0)
        rc = ingest_decode(in, data, len, err);
    if (rc == 0) {
        const char *name = web_pyroscope_profile_name(in->profile, config, true);
        in->name = name ? firn_arena_strndup(in->arena, name, strlen(name)) : NULL;
        if (!name || !*name)
            rc = firn_errf(err, FIRN_EINVAL, "profile has no sample type to name it by");
        else if (!in->name)
            rc = firn_errf(err, FIRN_ENOMEM, "out of memory");
    }
    json_decref(config);
    if (rc < 0)
        return rc;

    pprof_profile *p = in->profile;
    if (p->time_nanos < NANOS_1971)
        p->time_nanos = m->from_ms * 1000000;
    in->delta_columns = firn_arena_calloc(in->arena, p->n_sample_types + 1, sizeof(bool));
    if (!in->delta_columns)
        return firn_errf(err, FIRN_ENOMEM, "out of memory");
    pprof_delta_columns(p, in->delta_columns);
    bool timed = strcmp(in->name, "process_cpu") == 0 || strcmp(in->name, "wall") == 0;
    bool any = false;
    for (size_t i = 0; i < p->n_sample_types; i++)
        any |= in->delta_columns[i] |= timed;
    if (any && p->duration_nanos == 0)
        p->duration_nanos = (m->until_ms - m->from_ms) * 1000000;
    in->timestamp_ms = p->time_nanos / 1000000;
    return 0;
}

static int pyroscope_ingest(web_api *api, const http_request *req, ingest *in, firn_err *err)
{
    const char *name = http_request_param(req, "name");
    if (!name || !*name)
        return firn_errf(err, FIRN_EINVAL, "missing parameter name: the application name, "
                         "e.g. name=myapp.cpu{env=prod}");
    pyroscope_meta m = {.sample_rate = DEFAULT_SAMPLE_RATE,
                        .spy = http_request_param(req, "spyName")};
    firn_label *l;
    size_t n;
    int rc = web_pyroscope_name_parse(name, in->arena, &m.app, &l, &n, err);
    if (rc < 0)
        return rc;
    const char *from = http_request_param(req, "from");
    const char *until = http_request_param(req, "until");
    m.from_ms = m.until_ms = now_ms();
    if ((from && (rc = parse_unix_time("from", from, &m.from_ms, err)) < 0) ||
        (until && (rc = parse_unix_time("until", until, &m.until_ms, err)) < 0))
        return rc;
    if (m.until_ms < m.from_ms)
        return firn_errf(err, FIRN_EINVAL, "until (%s) is before from (%s)",
                         until ? until : "now", from ? from : "now");
    const char *rate = http_request_param(req, "sampleRate");
    if (rate && (parse_count(rate, strlen(rate), &m.sample_rate) < 0 ||
                 m.sample_rate > 1000000000))
        return firn_errf(err, FIRN_EINVAL, "sampleRate \"%.100s\": want a rate in Hz "
                         "(0 to 1000000000)", rate);

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
    if ((rc = ingest_body(in, req, err)) < 0)
        return rc;
    if (strcmp(format, "lines") == 0)
        rc = pyroscope_folded(in, &m, l, n, true, err);
    else if (strcmp(format, "pprof") == 0 || http_is_multipart_content_type(ct))
        rc = pyroscope_pprof(in, ct, &m, l, n, err);
    else
        rc = pyroscope_folded(in, &m, l, n, false, err);
    if (rc < 0)
        return rc;
    return ingest_store(api, in, err);
}

static void handle_pyroscope_ingest(void *ctx, const http_request *req, http_response *resp)
{
    firn_err err = {0};
    ingest in = {.arena = firn_arena_new(0)};
    int rc = in.arena ? pyroscope_ingest(ctx, req, &in, &err)
                      : firn_errf(&err, FIRN_ENOMEM, "out of memory");
    if (rc == 0) {
        resp->status = 200;  /* Pyroscope answers an ingest with an empty body */
    } else {
        http_respond_text(resp, status_of(rc), "%s", err.msg);
        if (resp->status == 503)
            resp->retry_after = RETRY_AFTER_SECONDS;
    }
    ingest_free(&in);
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
