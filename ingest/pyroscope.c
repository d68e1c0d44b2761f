/* pyroscope.c -- Pyroscope's conventions for pushed profiles, shared by
 * every endpoint that takes them: application names with labels in
 * braces, profile names by sample type, folded suffixes and collapsed
 * stacks, Unix times by digit count, and the rules of a pprof upload
 * (pkg/ingester/pyroscope, convertMetadata). */
#include <assert.h>
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ingest/ingest.h"

/* Nanoseconds in 1970: Pyroscope takes a time_nanos there (or 0) for one
 * written in the wrong unit by old clients, and uses from instead. */
#define NANOS_1971 (365LL * 24 * 3600 * 1000000000)

static bool pyroscope_app_char(char c)
{
    return isalnum((unsigned char)c) || c == '_' || c == '.' || c == '-' || c == '/';
}

int ingest_pyroscope_name_parse(const char *s, firn_arena *a, const char **app,
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
    *app = firn_arena_strndup(a, b, (size_t)(e - b));
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
    int rc = ingest_kv_list_parse(a, what, brace + 1, close, &l, &n, err);
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
static void folded_stack(pprof_builder *b, const char *p, const char *end, uint32_t *locs,
                         size_t depth)
{
    for (size_t i = 0; i < depth; i++) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *fe = semi ? semi : end;
        int64_t name = pprof_builder_string(b, p, (size_t)(fe - p));
        pprof_function fn = {.name = name, .system_name = name};
        pprof_line line = {.function = pprof_builder_function(b, &fn)};
        pprof_location loc = {.mapping = PPROF_NONE, .lines = &line, .n_lines = 1};
        locs[depth - 1 - i] = pprof_builder_location(b, &loc);
        p = fe + 1;
    }
}

pprof_profile *ingest_folded_parse(const char *body, size_t len, const ingest_folded_type *t,
                                   firn_err *err)
{
    if (t->scale < 1) {
        firn_errf(err, FIRN_EINVAL, "scale %" PRId64 ": must be at least 1", t->scale);
        return NULL;
    }
    pprof_builder *b = pprof_builder_new(1);
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
        for (const char *q = line; q < stack_end && depth <= INGEST_FOLDED_DEPTH_MAX; q++)
            depth += *q == ';';
        if (depth > INGEST_FOLDED_DEPTH_MAX) {
            rc = firn_errf(err, FIRN_EINVAL, "line %zu: more than %d frames", line_no,
                           INGEST_FOLDED_DEPTH_MAX);
            break;
        }
        if (depth > cap) {   /* depth is capped above */
            size_t ncap = cap ? cap : 64;
            while (ncap < depth)
                ncap *= 2;
            locs = firn_xreallocarray(locs, ncap, sizeof *locs);
            cap = ncap;
        }
        assert(depth <= cap);
        folded_stack(b, line, stack_end, locs, depth);
        pprof_builder_sample(b, locs, depth, &value, NULL, 0);
    }
    free(locs);
    if (rc < 0) {
        pprof_builder_free(b);
        return NULL;
    }
    pprof_profile *prof = pprof_builder_finish(b, err);
    pprof_merge_samples(prof, err);
    return prof;
}

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

int ingest_pyroscope_time(const char *param, const char *s, int64_t *ms, firn_err *err)
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

int ingest_pyroscope_sample_rate(const char *s, int64_t *hz, firn_err *err)
{
    if (parse_count(s, strlen(s), hz) < 0 || *hz > 1000000000)
        return firn_errf(err, FIRN_EINVAL, "sampleRate \"%.100s\": want a rate in Hz "
                         "(0 to 1000000000)", s);
    return 0;
}

int ingest_pyroscope_folded_kind(const char *app, bool lines, int64_t sample_rate, firn_arena *a,
                                 ingest_folded_type *t, const char **profile_name,
                                 bool *snapshot, const char **service, firn_err *err)
{
    const char *dot = strrchr(app, '.');
    const char *suffix = dot ? dot + 1 : "cpu";
    const struct folded_suffix *fs = NULL;
    for (size_t i = 0; i < sizeof FOLDED_SUFFIXES / sizeof FOLDED_SUFFIXES[0]; i++)
        if (strcmp(FOLDED_SUFFIXES[i].suffix, suffix) == 0)
            fs = &FOLDED_SUFFIXES[i];
    if (!fs)
        return firn_errf(err, FIRN_EINVAL, "unknown profile type: %.100s (the suffix of name "
                         "\"%.100s\" after its last '.')", suffix, app);
    *service = dot ? firn_arena_strndup(a, app, (size_t)(dot - app)) : app;
    *t = (ingest_folded_type){.sample_type = fs->sample_type, .sample_unit = fs->unit,
                              .period_type = "", .period_unit = "", .scale = 1, .lines = lines};
    bool timed = strcmp(fs->name, "process_cpu") == 0 || strcmp(fs->name, "wall") == 0;
    if (timed && sample_rate > 0) {
        /* samples at sampleRate Hz, each worth one period of CPU (or wall) time */
        t->period = 1000000000 / sample_rate;
        t->scale = t->period;
        t->sample_type = strcmp(fs->name, "wall") == 0 ? "wall" : "cpu";
        t->sample_unit = "nanoseconds";
        t->period_type = "cpu";
        t->period_unit = "nanoseconds";
    }
    *profile_name = fs->name;
    *snapshot = fs->snapshot;
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

const char *ingest_pyroscope_profile_name(const pprof_profile *p, json_t *config,
                                          bool fallback)
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

int ingest_pyroscope_pprof(tsdb *db, const firn_label *labels, size_t n_labels, const void *data,
                           size_t len, json_t *config, int64_t from_ms, int64_t until_ms,
                           ingest_result *r, firn_err *err)
{
    *r = (ingest_result){0};
    ingest_grant g = {0};
    pprof_profile *p = ingest_decode(data, len, &g, err);
    if (!p) {
        r->failed = INGEST_FAILED_DECODE;
        return err ? err->code : FIRN_EINVAL;
    }
    const char *pn = ingest_pyroscope_profile_name(p, config, true);
    if (!pn || !*pn) {
        pprof_free(p);
        ingest_grant_release(&g);
        r->failed = INGEST_FAILED_DECODE;
        return firn_errf(err, FIRN_EINVAL, "profile has no sample type to name it by");
    }
    /* the name may point into p or config, which may not outlive the store */
    char *name = firn_xstrdup(pn);
    bool *columns = firn_xcalloc(p->n_sample_types + 1, sizeof *columns);
    if (p->time_nanos < NANOS_1971)
        p->time_nanos = from_ms * 1000000;
    pprof_delta_columns(p, columns);
    bool timed = strcmp(name, "process_cpu") == 0 || strcmp(name, "wall") == 0;
    bool any = false;
    for (size_t i = 0; i < p->n_sample_types; i++)
        any |= columns[i] |= timed;
    if (any && p->duration_nanos == 0)
        p->duration_nanos = (until_ms - from_ms) * 1000000;
    ingest_options o = {.profile_name = name, .delta = INGEST_DELTA_COLUMNS,
                        .delta_columns = columns, .timestamp_ms = p->time_nanos / 1000000};
    int rc = ingest_profile(db, labels, n_labels, p, &o, r, err);
    ingest_grant_release(&g);
    free(columns);
    free(name);
    return rc;
}
