/* process.c -- process-wide settings shared by firn's programs. */
#include "model.h"

#include <malloc.h>
#include <time.h>
#include <unistd.h>

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

int64_t firn_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct timespec firn_deadline_ms(int64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

int64_t firn_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
