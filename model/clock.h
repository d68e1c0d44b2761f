/* clock.h -- time: the wall and monotonic clocks in milliseconds, deadlines
 * for timed waits, and Prometheus's duration syntax.
 *
 * Times in firn are int64 milliseconds since the Unix epoch (as Prometheus's
 * timestamps); durations are int64 milliseconds. */
#ifndef FIRN_MODEL_CLOCK_H
#define FIRN_MODEL_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "model/err.h"

/* The wall clock (CLOCK_REALTIME) and a monotonic clock, in milliseconds. */
int64_t firn_now_ms(void);
int64_t firn_mono_ms(void);
/* The wall-clock time ms milliseconds from now (ms >= 0), as
 * pthread_cond_timedwait takes its deadline. */
struct timespec firn_deadline_ms(int64_t ms);

/* Prometheus duration syntax ("15d", "1h30m", "500ms", "0"; units y w d h m
 * s ms, each at most once, in that order) into milliseconds. */
int firn_duration_parse(const char *s, int64_t *ms, firn_err *err);
/* The inverse, as Prometheus prints durations ("1h30m", "0s"); snprintf's
 * return convention. */
int firn_duration_format(char *buf, size_t size, int64_t ms);

#endif
