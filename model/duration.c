/* duration.c -- Prometheus durations: "15d", "1h30m", "500ms", "0".
 *
 * The grammar is Prometheus's model.ParseDuration: units in decreasing
 * order, each at most once, from y (365d) w d h m s to ms, all integers.
 */
#include "model/clock.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

static const struct {
    const char *unit;
    int64_t ms;
} UNITS[] = {
    {"y", 365LL * 24 * 3600 * 1000}, {"w", 7LL * 24 * 3600 * 1000}, {"d", 24LL * 3600 * 1000},
    {"h", 3600LL * 1000}, {"m", 60LL * 1000}, {"s", 1000}, {"ms", 1},
};
#define N_UNITS (sizeof UNITS / sizeof *UNITS)

int firn_duration_parse(const char *s, int64_t *ms, firn_err *err)
{
    if (strcmp(s, "0") == 0) {
        *ms = 0;
        return 0;
    }
    const char *p = s;
    size_t next_unit = 0;
    int64_t total = 0;
    if (!*p)
        return firn_errf(err, FIRN_EINVAL, "empty duration string");
    while (*p) {
        if (*p < '0' || *p > '9')
            return firn_errf(err, FIRN_EINVAL, "not a valid duration string: \"%s\"", s);
        int64_t n = 0;
        while (*p >= '0' && *p <= '9') {
            if (__builtin_mul_overflow(n, 10, &n) || __builtin_add_overflow(n, *p - '0', &n))
                return firn_errf(err, FIRN_EINVAL, "duration out of range: \"%s\"", s);
            p++;
        }
        /* the longest unit name that matches here ("ms" before "m") */
        size_t u = N_UNITS;
        for (size_t i = next_unit; i < N_UNITS; i++) {
            size_t len = strlen(UNITS[i].unit);
            if (strncmp(p, UNITS[i].unit, len) == 0 && (u == N_UNITS || len > strlen(UNITS[u].unit)))
                u = i;
        }
        if (u == N_UNITS)
            return firn_errf(err, FIRN_EINVAL, "not a valid duration string: \"%s\"", s);
        int64_t add;
        if (__builtin_mul_overflow(n, UNITS[u].ms, &add) ||
            __builtin_add_overflow(total, add, &total))
            return firn_errf(err, FIRN_EINVAL, "duration out of range: \"%s\"", s);
        p += strlen(UNITS[u].unit);
        next_unit = u + 1;
    }
    *ms = total;
    return 0;
}

int firn_duration_format(char *buf, size_t size, int64_t ms)
{
    if (ms == 0)
        return snprintf(buf, size, "0s");
    size_t n = 0;
    buf[0] = 0;
    for (size_t i = 0; i < N_UNITS; i++) {
        /* Years and weeks only when they divide evenly, as Prometheus's
         * model.Duration prints: 15d, not 2w1d. */
        bool exact_only = UNITS[i].unit[0] == 'y' || UNITS[i].unit[0] == 'w';
        if (exact_only && ms % UNITS[i].ms != 0)
            continue;
        int64_t q = ms / UNITS[i].ms;
        if (!q)
            continue;
        ms -= q * UNITS[i].ms;
        n += (size_t)snprintf(buf + (n < size ? n : size), n < size ? size - n : 0,
                              "%lld%s", (long long)q, UNITS[i].unit);
    }
    return (int)n;
}
