/* json.c -- JSON responses in Prometheus's envelope, the time and duration
 * parameters of its API, and query results written as Prometheus writes
 * them (shared with firnctl, which prints the same JSON). */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "promql-like/pql.h"
#include "web/internal.h"

void web_respond_json(http_response *resp, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    json_decref(j);
    if (!s) {   /* jansson could not build or encode the document */
        http_respond_text(resp, 500, "internal error: the answer could not be encoded as JSON");
        return;
    }
    free(resp->body);
    resp->status = status;
    resp->content_type = "application/json";
    resp->body = s;
    resp->body_len = strlen(s);
}

void web_respond_data(http_response *resp, json_t *data)
{
    json_t *j = json_object();
    json_object_set_new(j, "status", json_string("success"));
    json_object_set_new(j, "data", data ? data : json_null());
    web_respond_json(resp, 200, j);
}

static int error_status(const char *type)
{
    static const struct {
        const char *type;
        int status;
    } T[] = {
        {"bad_data", 400}, {"execution", 422}, {"canceled", 499},     {"timeout", 503},
        {"internal", 500}, {"not_found", 404}, {"not_acceptable", 406}, {"unavailable", 500},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++)
        if (strcmp(T[i].type, type) == 0)
            return T[i].status;
    return 500;
}

void web_respond_error(http_response *resp, const char *type, const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_t *j = json_object();
    json_object_set_new(j, "status", json_string("error"));
    json_object_set_new(j, "errorType", json_string(type));
    /* json_string refuses invalid UTF-8 (an echoed parameter may hold it) */
    json_t *m = json_string(msg);
    json_object_set_new(j, "error", m ? m : json_stringn_nocheck(msg, strlen(msg)));
    web_respond_json(resp, error_status(type), j);
    /* The profile API is also read by `go tool pprof`, which shows an
     * error's body only when this header says it comes from a pprof
     * server (as Go's net/http/pprof marks its errors). */
    resp->go_pprof_error = true;
}

/* RFC3339 with optional fraction: 2006-01-02T15:04:05.999999999Z07:00. */
static int parse_rfc3339(const char *s, int64_t *ms)
{
    int Y, M, D, h, m, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &Y, &M, &D, &h, &m, &sec, &n) != 6 || n != 19)
        return -1;
    if (M < 1 || M > 12 || D < 1 || D > 31 || h > 23 || m > 59 || sec > 60 || Y < 0)
        return -1;
    const char *p = s + n;
    int64_t frac_ms = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        int64_t scale = 100;
        while (isdigit((unsigned char)*p)) {
            if (digits < 3) {
                frac_ms += (*p - '0') * scale;
                scale /= 10;
            }
            digits++;
            p++;
        }
        if (digits == 0 || digits > 9)
            return -1;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om, k = 0;
        if (sscanf(p + 1, "%2d:%2d%n", &oh, &om, &k) != 2 || k != 5 || oh > 23 || om > 59)
            return -1;
        offset_s = (oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        return -1;
    }
    if (*p)
        return -1;
    struct tm tm = {.tm_year = Y - 1900, .tm_mon = M - 1, .tm_mday = D,
                    .tm_hour = h, .tm_min = m, .tm_sec = sec};
    time_t t = timegm(&tm);
    *ms = ((int64_t)t - offset_s) * 1000 + frac_ms;
    return 0;
}

int web_parse_time(const char *s, int64_t *ms, firn_err *err)
{
    char *end;
    double v = strtod(s, &end);
    if (*s && *end == '\0' && end != s && isfinite(v) && fabs(v) < 9.2e15) {
        /* Prometheus rounds float seconds to milliseconds */
        *ms = (int64_t)llround(v * 1000.0);
        return 0;
    }
    if (parse_rfc3339(s, ms) == 0)
        return 0;
    return firn_errf(err, FIRN_EINVAL, "cannot parse \"%.200s\" to a valid timestamp", s);
}

int web_parse_duration(const char *s, int64_t *ms, firn_err *err)
{
    char *end;
    double v = strtod(s, &end);
    if (*s && *end == '\0' && end != s) {
        /* Go's time.Duration counts nanoseconds in an int64 */
        if (!isfinite(v) || fabs(v) * 1e9 > 9.223372036854775807e18)
            return firn_errf(err, FIRN_EINVAL,
                             "cannot parse \"%.200s\" to a valid duration. It overflows int64", s);
        *ms = (int64_t)llround(v * 1000.0);
        return 0;
    }
    firn_err derr = {0};
    if (firn_duration_parse(s, ms, &derr) == 0)
        return 0;
    return firn_errf(err, FIRN_EINVAL, "cannot parse \"%.200s\" to a valid duration", s);
}

/* ---- query results, as Prometheus's API writes them ---------------------------- */

void web_json_timestamp(firn_buf *b, int64_t ms)
{
    /* unsigned, so that INT64_MIN has a magnitude */
    uint64_t u = ms < 0 ? (uint64_t)0 - (uint64_t)ms : (uint64_t)ms;
    firn_buf_printf(b, "%s%" PRIu64, ms < 0 ? "-" : "", u / 1000);
    if (u % 1000)
        firn_buf_printf(b, ".%03" PRIu64, u % 1000);
}

/* The fewest significant digits (1..17) that read back as v, as "%.*e"
 * writes them into e.  Reading back is monotone in the digit count (more
 * correctly rounded digits are never farther from v), so a binary search
 * finds the fewest. */
static void shortest_e(double v, char *e, size_t size)
{
    int lo = 1, hi = 17;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        snprintf(e, size, "%.*e", mid - 1, v);
        if (strtod(e, NULL) == v)
            hi = mid;
        else
            lo = mid + 1;
    }
    snprintf(e, size, "%.*e", lo - 1, v);
}

size_t web_format_value(double v, char *buf, size_t size)
{
    if (isnan(v))
        return (size_t)snprintf(buf, size, "NaN");
    if (isinf(v))
        return (size_t)snprintf(buf, size, v > 0 ? "+Inf" : "-Inf");
    double a = fabs(v);
    /* Profile totals are integers: the common case, and exact. */
    if (a < 1e15 && v == (double)(int64_t)v && !(v == 0 && signbit(v)))
        return (size_t)snprintf(buf, size, "%" PRId64, (int64_t)v);
    char e[48];
    shortest_e(v, e, sizeof e);
    /* e is [-]d[.ddd]e(+|-)XX: the digits and the exponent */
    char digits[24];
    size_t n = 0;
    const char *p = e + (e[0] == '-');
    for (; *p && *p != 'e'; p++)
        if (*p != '.' && n < sizeof digits)
            digits[n++] = *p;
    int exp = *p == 'e' ? atoi(p + 1) : 0;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    size_t len = 0;
#define PUT(c) (len + 1 < size ? (void)(buf[len++] = (c)) : (void)0)
    if (e[0] == '-')
        PUT('-');
    if (a != 0 && (a < 1e-6 || a >= 1e21)) {
        /* Go's 'e' format: d[.ddd]e(+|-)dd, at least two exponent digits */
        PUT(digits[0]);
        if (n > 1)
            PUT('.');
        for (size_t i = 1; i < n; i++)
            PUT(digits[i]);
        char x[16];
        snprintf(x, sizeof x, "e%c%02d", exp < 0 ? '-' : '+', exp < 0 ? -exp : exp);
        for (const char *q = x; *q; q++)
            PUT(*q);
    } else {
        long point = exp + 1L;   /* digits before the decimal point */
        if (point <= 0) {
            PUT('0');
            PUT('.');
            for (long i = point; i < 0; i++)
                PUT('0');
            for (size_t i = 0; i < n; i++)
                PUT(digits[i]);
        } else {
            for (long i = 0; i < point || i < (long)n; i++) {
                if (i == point)
                    PUT('.');
                PUT(i < (long)n ? digits[i] : '0');
            }
        }
    }
#undef PUT
    if (size)
        buf[len] = 0;
    return len;
}

void web_json_labels(firn_buf *b, const firn_label *labels, size_t n)
{
    firn_buf_append(b, "{", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            firn_buf_append(b, ",", 1);
        firn_json_string(b, labels[i].name);
        firn_buf_append(b, ":", 1);
        firn_json_string(b, labels[i].value);
    }
    firn_buf_append(b, "}", 1);
}

/* [t,"v"] */
static void json_point(firn_buf *b, int64_t t_ms, double v)
{
    char value[WEB_VALUE_MAX];
    firn_buf_append(b, "[", 1);
    web_json_timestamp(b, t_ms);
    firn_buf_printf(b, ",\"%s\"]", (web_format_value(v, value, sizeof value), value));
}

void web_json_pql_result(firn_buf *b, const pql_result *r)
{
    firn_buf_printf(b, "{\"resultType\":\"%s\",\"result\":",
                    r->type == PQL_TYPE_SCALAR   ? "scalar"
                    : r->type == PQL_TYPE_STRING ? "string"
                    : r->type == PQL_TYPE_VECTOR ? "vector"
                                                 : "matrix");
    if (r->type == PQL_TYPE_SCALAR) {
        json_point(b, r->t_ms, r->scalar);
    } else if (r->type == PQL_TYPE_STRING) {
        firn_buf_append(b, "[", 1);
        web_json_timestamp(b, r->t_ms);
        firn_buf_append(b, ",", 1);
        firn_json_string(b, r->string);
        firn_buf_append(b, "]", 1);
    } else {
        firn_buf_append(b, "[", 1);
        for (size_t i = 0; i < r->n_series; i++) {
            const pql_series *s = &r->series[i];
            firn_buf_puts(b, i ? ",{\"metric\":" : "{\"metric\":");
            web_json_labels(b, s->labels, s->n_labels);
            if (r->type == PQL_TYPE_VECTOR && s->n_points == 1) {
                firn_buf_puts(b, ",\"value\":");
                json_point(b, s->points[0].t_ms, s->points[0].v);
            } else {
                firn_buf_puts(b, ",\"values\":[");
                for (size_t k = 0; k < s->n_points; k++) {
                    if (k)
                        firn_buf_append(b, ",", 1);
                    json_point(b, s->points[k].t_ms, s->points[k].v);
                }
                firn_buf_append(b, "]", 1);
            }
            firn_buf_append(b, "}", 1);
        }
        firn_buf_append(b, "]", 1);
    }
    firn_buf_append(b, "}", 1);
}

int web_query_range_check(int64_t start_ms, int64_t end_ms, int64_t step_ms, firn_err *err)
{
    if (end_ms < start_ms)
        return firn_errf(err, FIRN_EINVAL, "invalid parameter \"end\": end timestamp must not "
                         "be before start time");
    if (step_ms <= 0)
        return firn_errf(err, FIRN_EINVAL, "invalid parameter \"step\": zero or negative query "
                         "resolution step widths are not accepted. Try a positive integer");
    /* unsigned: the span of two valid times may not fit an int64 */
    if (((uint64_t)end_ms - (uint64_t)start_ms) / (uint64_t)step_ms > WEB_QUERY_RANGE_POINTS_MAX)
        return firn_errf(err, FIRN_EINVAL, "exceeded maximum resolution of 11,000 points per "
                         "timeseries. Try decreasing the query resolution (?step=XX)");
    return 0;
}
