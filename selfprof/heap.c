/* heap.c -- the heap profile: the interposer's buckets (malloc.c) built
 * into a profile shaped as Go's /debug/pprof/heap and /debug/pprof/allocs.
 *
 * This file is in the core library, which every program may link; the
 * sampler itself is only in programs that link malloc.c.  It is found
 * through a weak reference, so "available" means exactly "linked".
 */
#include "selfprof/internal.h"

#include <math.h>
#include <time.h>

/* Weak: NULL unless malloc.c is part of the program. */
extern const struct selfprof_heap_source selfprof_heap_source __attribute__((weak));

bool selfprof_heap_available(void)
{
    return &selfprof_heap_source != NULL;
}

void selfprof_heap_set_rate(size_t rate)
{
    if (selfprof_heap_available())
        selfprof_heap_source.set_rate(rate);
}

size_t selfprof_heap_rate(void)
{
    return selfprof_heap_available() ? selfprof_heap_source.rate() : 0;
}

/* Go's scaleHeapSample: a block of avg bytes is sampled with probability
 * 1 - exp(-avg/rate), so each sampled one stands for 1/that many. */
static void unsample(int64_t count, int64_t bytes, int64_t rate, int64_t *out_count,
                     int64_t *out_bytes)
{
    if (count <= 0 || bytes <= 0) {
        *out_count = *out_bytes = 0;
        return;
    }
    if (rate <= 1) {   /* every allocation was recorded */
        *out_count = count;
        *out_bytes = bytes;
        return;
    }
    double avg = (double)bytes / (double)count;
    double scale = 1 / (1 - exp(-avg / (double)rate));
    *out_count = (int64_t)((double)count * scale);
    *out_bytes = (int64_t)((double)bytes * scale);
}

struct build {
    pprof_builder *b;
    selfprof_symbolizer *sym;
    int64_t rate;
    int64_t bytes_key;   /* string index of "bytes" */
};

static void add_bucket(void *ctx, const uintptr_t *pcs, size_t depth, size_t size,
                       int64_t allocs, int64_t alloc_bytes, int64_t frees, int64_t free_bytes)
{
    struct build *bd = ctx;
    uint32_t locs[SELFPROF_MAX_FRAMES];
    if (depth > SELFPROF_MAX_FRAMES)
        depth = SELFPROF_MAX_FRAMES;
    for (size_t i = 0; i < depth; i++)
        locs[i] = selfprof_symbolizer_location(bd->sym, pcs[i]);
    int64_t values[4];
    unsample(allocs, alloc_bytes, bd->rate, &values[0], &values[1]);
    unsample(allocs - frees, alloc_bytes - free_bytes, bd->rate, &values[2], &values[3]);
    /* Go labels each sample with its block size (Go's buckets are per
     * size too). */
    pprof_label label = {.key = bd->bytes_key, .num = (int64_t)size};
    pprof_builder_sample(bd->b, locs, depth, values, &label, size > 0 ? 1 : 0);
}

static pprof_profile *build_heap(bool allocs_default, firn_err *err)
{
    if (!selfprof_heap_available()) {
        firn_errf(err, FIRN_EINVAL, "heap profiling is not built into this binary");
        return NULL;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    struct build bd = {.b = pprof_builder_new(4), .rate = (int64_t)selfprof_heap_source.rate()};
    if (!bd.b) {
        firn_errf(err, FIRN_ENOMEM, "out of memory building the heap profile");
        return NULL;
    }
    pprof_builder_sample_type(bd.b, 0, "alloc_objects", "count");
    pprof_builder_sample_type(bd.b, 1, "alloc_space", "bytes");
    pprof_builder_sample_type(bd.b, 2, "inuse_objects", "count");
    pprof_builder_sample_type(bd.b, 3, "inuse_space", "bytes");
    pprof_builder_period(bd.b, "space", "bytes", bd.rate);
    pprof_builder_time(bd.b, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec, 0);
    bd.bytes_key = pprof_builder_string(bd.b, "bytes", 5);
    bd.sym = selfprof_symbolizer_new(bd.b, err);
    if (!bd.sym) {
        pprof_builder_free(bd.b);
        return NULL;
    }
    selfprof_heap_source.visit(add_bucket, &bd);
    selfprof_symbolizer_free(bd.sym);
    pprof_profile *p = pprof_builder_finish(bd.b, err);
    if (!p)
        return NULL;
    selfprof_mark_mappings(p);
    if (allocs_default)
        p->default_sample_type = p->sample_types[1].type;   /* "alloc_space" */
    uint64_t dropped = selfprof_heap_source.dropped();
    if (dropped > 0) {
        static _Atomic uint64_t logged;
        if (atomic_exchange(&logged, dropped) != dropped)
            firn_log(FIRN_LOG_WARN, "selfprof", "heap sampler out of bucket space",
                     "dropped=%llu", (unsigned long long)dropped);
    }
    return p;
}

pprof_profile *selfprof_heap(firn_err *err)
{
    return build_heap(false, err);
}

pprof_profile *selfprof_allocs(firn_err *err)
{
    return build_heap(true, err);
}
