/* alloc.c -- the out-of-memory policy (model/alloc.h): allocations that
 * abort with a message instead of returning NULL, the one growth helper for
 * arrays, and the process's malloc settings. */
#include "model/alloc.h"

#include <malloc.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

_Noreturn void firn_oom(size_t size)
{
    /* snprintf into the stack and one write(2): stdio might itself need the
     * memory that just ran out. */
    char msg[80];
    int n = snprintf(msg, sizeof msg, "firn: out of memory (%zu bytes)\n", size);
    if (n > 0)
        (void)!write(STDERR_FILENO, msg, (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1);
    abort();
}

void *firn_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        firn_oom(size);
    return p;
}

void *firn_xcalloc(size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        firn_oom(SIZE_MAX);
    void *p = calloc(count && size ? count : 1, count && size ? size : 1);
    if (!p)
        firn_oom(count * size);
    return p;
}

void *firn_xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size ? size : 1);
    if (!q)
        firn_oom(size);
    return q;
}

void *firn_xreallocarray(void *p, size_t count, size_t size)
{
    if (size && count > SIZE_MAX / size)
        firn_oom(SIZE_MAX);
    return firn_xrealloc(p, count * size);
}

void *firn_xmemdup(const void *p, size_t len)
{
    void *q = firn_xmalloc(len);
    if (len)
        memcpy(q, p, len);
    return q;
}

char *firn_xstrndup(const char *s, size_t len)
{
    if (len == SIZE_MAX)
        firn_oom(SIZE_MAX);
    char *q = firn_xmalloc(len + 1);
    if (len)
        memcpy(q, s, len);
    q[len] = '\0';
    return q;
}

char *firn_xstrdup(const char *s)
{
    return firn_xstrndup(s, strlen(s));
}

char *firn_xasprintf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *s = NULL;
    int n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)   /* glibc fails only for want of memory */
        firn_oom(strlen(fmt));
    return s;
}

void *firn_grow(void *v, size_t n, size_t *cap, size_t elem, size_t initial)
{
    if (n < *cap)
        return v;
    size_t want = *cap ? *cap * 2 : initial;
    if (want < *cap)
        firn_oom(SIZE_MAX);
    v = firn_xreallocarray(v, want, elem);
    *cap = want;
    return v;
}

void firn_tune_malloc(void)
{
    /* Fixed values also switch off glibc's dynamic mmap threshold, whose
     * adjustments made large per-profile buffers alternate between mmap and
     * a heap top that is trimmed again on every free. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    /* Each arena may keep up to the trim threshold of free heap, and glibc
     * makes up to 8 per core; one per core (at least 2) bounds what the
     * ingest threads leave behind (docs/ARCHITECTURE.md, "At fleet scale"). */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    mallopt(M_ARENA_MAX, cores < 2 ? 2 : (int)(cores > 64 ? 64 : cores));
}
