/* exposition.c -- the Prometheus text exposition format and histograms. */
#include "model/exposition.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
