/* buf.c -- growable byte buffers, JSON strings and the Prometheus text exposition format. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/model.h"

static bool buf_reserve(firn_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2) {
            b->failed = true;
            return false;
        }
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void firn_buf_append(firn_buf *b, const void *p, size_t n)
{
    if (!buf_reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void firn_buf_puts(firn_buf *b, const char *s)
{
    firn_buf_append(b, s, strlen(s));
}

void firn_buf_printf(firn_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char small[256];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        firn_buf_append(b, small, (size_t)n);
        return;
    }
    if (!buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *firn_buf_take(firn_buf *b, size_t *len)
{
    char *p = b->data;
    size_t n = b->len;
    bool failed = b->failed;
    *b = (firn_buf){0};
    if (failed) {
        free(p);
        p = NULL;
        n = 0;
    } else if (!p) {
        p = calloc(1, 1);  /* an empty buffer still yields a string */
    }
    if (len)
        *len = n;
    return p;
}

void firn_buf_free(firn_buf *b)
{
    free(b->data);
    *b = (firn_buf){0};
}

/* ---- HTTP ----------------------------------------------------------------- */

const char *firn_http_status_text(int status)
{
    switch (status) {
    case 200: return "OK";
    case 201: return "Created";
    case 202: return "Accepted";
    case 204: return "No Content";
    case 206: return "Partial Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 303: return "See Other";
    case 304: return "Not Modified";
    case 307: return "Temporary Redirect";
    case 308: return "Permanent Redirect";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 410: return "Gone";
    case 413: return "Request Entity Too Large";
    case 415: return "Unsupported Media Type";
    case 422: return "Unprocessable Entity";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "";
    }
}

/* ---- exposition ---------------------------------------------------------- */

/* HELP text escapes backslash and newline; label values also escape '"'. */
static void put_escaped(firn_buf *b, const char *s, bool quote)
{
    const char *run = s;
    for (; *s; s++) {
        const char *esc = NULL;
        if (*s == '\\')
            esc = "\\\\";
        else if (*s == '\n')
            esc = "\\n";
        else if (*s == '"' && quote)
            esc = "\\\"";
        if (esc) {
            firn_buf_append(b, run, (size_t)(s - run));
            firn_buf_puts(b, esc);
            run = s + 1;
        }
    }
    firn_buf_append(b, run, (size_t)(s - run));
}

void firn_metrics_header(firn_buf *b, const char *name, const char *type, const char *help)
{
    firn_buf_printf(b, "# HELP %s ", name);
    put_escaped(b, help, false);
    firn_buf_printf(b, "\n# TYPE %s %s\n", name, type);
}

/* The shortest text that reads back as v (Go's FormatFloat(v, 'g', -1)),
 * so a bound of 0.1 is printed "0.1", not "0.10000000000000001". */
static void shortest(char *buf, size_t size, double v)
{
    int prec = 1;
    for (; prec < 17; prec++) {
        snprintf(buf, size, "%.*e", prec - 1, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    /* As Go's shortest 'g': the exponent form when the decimal exponent is
     * below -4 or at least 6, else plain digits (120, 0.1). */
    int exp = v == 0 ? 0 : (int)floor(log10(fabs(v)));
    if (exp < -4 || exp >= 6)
        snprintf(buf, size, "%.*e", prec - 1, v);
    else
        snprintf(buf, size, "%.*g", prec > exp + 1 ? prec : exp + 1, v);
}

static void put_value(firn_buf *b, double v)
{
    if (isnan(v))
        firn_buf_puts(b, "NaN");
    else if (isinf(v))
        firn_buf_puts(b, v > 0 ? "+Inf" : "-Inf");
    else if (v == (double)(int64_t)v && fabs(v) < 9e15)
        firn_buf_printf(b, "%lld", (long long)v);
    else {
        char text[40];
        shortest(text, sizeof text, v);
        firn_buf_puts(b, text);
    }
}

static void put_labels(firn_buf *b, const firn_label *labels, size_t n, const char *le)
{
    if (n == 0 && !le)
        return;
    firn_buf_puts(b, "{");
    for (size_t i = 0; i < n; i++) {
        firn_buf_printf(b, "%s%s=\"", i ? "," : "", labels[i].name);
        put_escaped(b, labels[i].value, true);
        firn_buf_puts(b, "\"");
    }
    if (le)
        firn_buf_printf(b, "%sle=\"%s\"", n ? "," : "", le);
    firn_buf_puts(b, "}");
}

void firn_metrics_sample(firn_buf *b, const char *name, const firn_label *labels, size_t n,
                         double value)
{
    firn_buf_puts(b, name);
    put_labels(b, labels, n, NULL);
    firn_buf_puts(b, " ");
    put_value(b, value);
    firn_buf_puts(b, "\n");
}

void firn_metrics_single(firn_buf *b, const char *name, const char *type, const char *help,
                         double value)
{
    firn_metrics_header(b, name, type, help);
    firn_metrics_sample(b, name, NULL, 0, value);
}

void firn_histogram_init(firn_histogram *h, const double *bounds, size_t n)
{
    memset(h, 0, sizeof *h);
    if (n > FIRN_HISTOGRAM_MAX_BUCKETS)
        n = FIRN_HISTOGRAM_MAX_BUCKETS;
    memcpy(h->bounds, bounds, n * sizeof *bounds);
    h->n_bounds = n;
}

void firn_histogram_observe(firn_histogram *h, double v)
{
    size_t i = 0;
    while (i < h->n_bounds && v > h->bounds[i])
        i++;
    atomic_fetch_add_explicit(&h->counts[i], 1, memory_order_relaxed);
    if (v > 0 && v < 1.8e13)
        atomic_fetch_add_explicit(&h->sum_micro, (uint64_t)(v * 1e6 + 0.5), memory_order_relaxed);
}

void firn_histogram_write(firn_buf *b, const char *name, const firn_label *labels, size_t n,
                          const firn_histogram *h)
{
    uint64_t cum = 0;
    char le[40];
    for (size_t i = 0; i <= h->n_bounds; i++) {
        cum += atomic_load_explicit(&h->counts[i], memory_order_relaxed);
        if (i < h->n_bounds)
            shortest(le, sizeof le, h->bounds[i]);
        else
            strcpy(le, "+Inf");
        firn_buf_printf(b, "%s_bucket", name);
        put_labels(b, labels, n, le);
        firn_buf_printf(b, " %llu\n", (unsigned long long)cum);
    }
    firn_buf_printf(b, "%s_sum", name);
    put_labels(b, labels, n, NULL);
    firn_buf_puts(b, " ");
    put_value(b, (double)atomic_load_explicit(&h->sum_micro, memory_order_relaxed) / 1e6);
    firn_buf_printf(b, "\n%s_count", name);
    put_labels(b, labels, n, NULL);
    firn_buf_printf(b, " %llu\n", (unsigned long long)cum);
}

void firn_json_string(firn_buf *b, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)(s ? s : "");
    size_t len = strlen((const char *)p), start = 0, i = 0;
    firn_buf_append(b, "\"", 1);
    while (i < len) {
        unsigned char c = p[i];
        const char *esc = NULL;
        char u[8];
        size_t step = 1;
        if (c >= 0x80) {
            uint32_t rune;
            step = firn_utf8_decode(p + i, len - i, &rune);
            if (step == 0) {
                esc = "\\ufffd";   /* invalid UTF-8, as Go replaces it */
                step = 1;
            } else if (rune == 0x2028 || rune == 0x2029) {
                esc = rune == 0x2028 ? "\\u2028" : "\\u2029";
            }
        } else if (c == '"') {
            esc = "\\\"";
        } else if (c == '\\') {
            esc = "\\\\";
        } else if (c == '\n') {
            esc = "\\n";
        } else if (c == '\r') {
            esc = "\\r";
        } else if (c == '\t') {
            esc = "\\t";
        } else if (c < 0x20 || c == '<' || c == '>' || c == '&') {
            /* Go's encoding/json escapes HTML's specials too */
            u[0] = '\\', u[1] = 'u', u[2] = '0', u[3] = '0';
            u[4] = hex[c >> 4], u[5] = hex[c & 15], u[6] = 0;
            esc = u;
        }
        if (esc) {
            firn_buf_append(b, p + start, i - start);
            firn_buf_puts(b, esc);
            start = i + step;
        }
        i += step;
    }
    firn_buf_append(b, p + start, len - start);
    firn_buf_append(b, "\"", 1);
}
