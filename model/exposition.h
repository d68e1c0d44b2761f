/* exposition.h -- Prometheus's text exposition format (version 0.0.4), as
 * /metrics serves it and `promtool check metrics` accepts it, and the
 * histogram firn's own metrics observe into.
 *
 * A family is one header then its samples; names must be valid metric
 * names, label names valid label names; values are escaped here (\\, \",
 * \n). */
#ifndef FIRN_MODEL_EXPOSITION_H
#define FIRN_MODEL_EXPOSITION_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "model/buf.h"
#include "model/labels.h"

#define FIRN_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* "# HELP name help" and "# TYPE name type" (counter, gauge, histogram). */
void firn_metrics_header(firn_buf *b, const char *name, const char *type, const char *help);
/* name{labels} value: labels may be NULL when n is 0.  Integral values are
 * printed without exponent; NaN and infinities as Prometheus spells them. */
void firn_metrics_sample(firn_buf *b, const char *name, const firn_label *labels, size_t n,
                         double value);

/* A family of one sample without labels: header, then name value. */
void firn_metrics_single(firn_buf *b, const char *name, const char *type, const char *help,
                         double value);

/* A histogram with fixed upper bounds, observed from any thread. */
#define FIRN_HISTOGRAM_MAX_BUCKETS 24
typedef struct firn_histogram {
    double bounds[FIRN_HISTOGRAM_MAX_BUCKETS];  /* ascending; +Inf is implicit */
    size_t n_bounds;
    _Atomic uint64_t counts[FIRN_HISTOGRAM_MAX_BUCKETS + 1];  /* per bucket, not cumulative */
    _Atomic uint64_t sum_micro;  /* sum of observations, in millionths */
} firn_histogram;

/* bounds[0..n) ascending, n <= FIRN_HISTOGRAM_MAX_BUCKETS. */
void firn_histogram_init(firn_histogram *h, const double *bounds, size_t n);
void firn_histogram_observe(firn_histogram *h, double v);
/* name_bucket{labels,le="..."}, name_sum, name_count (no header). */
void firn_histogram_write(firn_buf *b, const char *name, const firn_label *labels, size_t n,
                          const firn_histogram *h);

#endif
