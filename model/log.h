/* log.h -- structured one-line logs on standard error, as Prometheus and
 * Parca write them:
 *   ts=2026-11-24T10:00:00.123Z level=warn component=tsdb msg="..." k=v
 * Each line is written with a single write(2), so lines from different
 * threads never interleave.  Thread-safe. */
#ifndef FIRN_MODEL_LOG_H
#define FIRN_MODEL_LOG_H

#include <stddef.h>

enum firn_log_level { FIRN_LOG_DEBUG, FIRN_LOG_INFO, FIRN_LOG_WARN, FIRN_LOG_ERROR };

/* Lines below level are dropped (default FIRN_LOG_INFO). */
void firn_log_set_level(enum firn_log_level level);
/* "debug", "info", "warn" or "error"; -1 for anything else. */
int firn_log_level_parse(const char *name);
/* msg is quoted and escaped; kv_fmt (may be NULL) is printf-style and
 * appended after msg as is, e.g. "path=%s series=%zu".  Values that may hold
 * spaces or quotes should go through firn_log_quote. */
void firn_log(enum firn_log_level level, const char *component, const char *msg,
              const char *kv_fmt, ...) __attribute__((format(printf, 4, 5)));
/* Write s as a logfmt value into buf (quoted and escaped when it needs to
 * be, truncated to fit); returns buf. */
const char *firn_log_quote(char *buf, size_t size, const char *s);

#endif
