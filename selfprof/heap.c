/* heap.c -- the heap profile: the interposer's buckets (malloc.c) built
 * into a profile shaped as Go's /debug/pprof/heap and /debug/pprof/allocs.
 *
 * This file is in the core library, which every program may link; the
 * sampler itself is only in programs that link malloc.c.  It is found
 * through a weak reference, so "available" means exactly "linked".
 */
#include "selfprof/internal.h"

#include <math.h>
#include <string.h>
#include <sys/mman.h>
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

/* One bucket as it was when the profile was asked for. */
struct bucket_copy {
    const uintptr_t *pcs;   /* the bucket's own: buckets live as long as the process */
    size_t depth, size;
    int64_t allocs, alloc_bytes, frees, free_bytes;
};

/* The copies live in memory from mmap, not malloc: a malloc'd copy would
 * be sampled into a bucket that the walk then visits, and the profile
 * would show its own copy as in use. */
struct snapshot {
    struct bucket_copy *v;
    size_t n, cap;
};

static void snapshot_free(struct snapshot *snap)
{
    if (snap->v)
        munmap(snap->v, snap->cap * sizeof *snap->v);
}

static void copy_bucket(void *ctx, const uintptr_t *pcs, size_t depth, size_t size,
                        int64_t allocs, int64_t alloc_bytes, int64_t frees, int64_t free_bytes)
{
    struct snapshot *snap = ctx;
    if (snap->n == snap->cap) {   /* doubling by hand: firn_grow would malloc */
        size_t ncap = snap->cap ? snap->cap * 2 : 4096;
        struct bucket_copy *nv = mmap(NULL, ncap * sizeof *nv, PROT_READ | PROT_WRITE,
                                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (nv == MAP_FAILED)
            firn_oom(ncap * sizeof *nv);
        if (snap->n > 0)
            memcpy(nv, snap->v, snap->n * sizeof *nv);
        snapshot_free(snap);
        snap->v = nv;
        snap->cap = ncap;
    }
    if (depth > SELFPROF_MAX_FRAMES)
        depth = SELFPROF_MAX_FRAMES;
    snap->v[snap->n++] =
        (struct bucket_copy){pcs, depth, size, allocs, alloc_bytes, frees, free_bytes};
}

static void add_bucket(pprof_builder *b, selfprof_symbolizer *sym, int64_t rate,
                       int64_t bytes_key, const struct bucket_copy *c)
{
    uint32_t locs[SELFPROF_MAX_FRAMES];
    for (size_t i = 0; i < c->depth; i++)
        locs[i] = selfprof_symbolizer_location(sym, c->pcs[i]);
    int64_t values[4];
    unsample(c->allocs, c->alloc_bytes, rate, &values[0], &values[1]);
    unsample(c->allocs - c->frees, c->alloc_bytes - c->free_bytes, rate, &values[2],
             &values[3]);
    /* Go labels each sample with its block size (Go's buckets are per
     * size too). */
    pprof_label label = {.key = bytes_key, .num = (int64_t)c->size};
    pprof_builder_sample(b, locs, c->depth, values, &label, c->size > 0 ? 1 : 0);
}

/* The counters are copied before anything is symbolized: symbolizing
 * allocates (libdw, libelf: megabytes), and a walk that symbolized as it
 * went would find those allocations in the buckets it had yet to visit and
 * report the profile's own transient memory as in use. */
static pprof_profile *build_heap(bool allocs_default, firn_err *err)
{
    if (!selfprof_heap_available()) {
        firn_errf(err, FIRN_EINVAL, "heap profiling is not built into this binary");
        return NULL;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    int64_t rate = (int64_t)selfprof_heap_source.rate();
    struct snapshot snap = {0};
    selfprof_heap_source.visit(copy_bucket, &snap);
    pprof_builder *b = pprof_builder_new(4);
    pprof_builder_sample_type(b, 0, "alloc_objects", "count");
    pprof_builder_sample_type(b, 1, "alloc_space", "bytes");
    pprof_builder_sample_type(b, 2, "inuse_objects", "count");
    pprof_builder_sample_type(b, 3, "inuse_space", "bytes");
    pprof_builder_period(b, "space", "bytes", rate);
    pprof_builder_time(b, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec, 0);
    int64_t bytes_key = pprof_builder_string(b, "bytes", 5);
    selfprof_symbolizer *sym = selfprof_symbolizer_new(b);
    for (size_t i = 0; i < snap.n; i++)
        add_bucket(b, sym, rate, bytes_key, &snap.v[i]);
    selfprof_symbolizer_free(sym);
    snapshot_free(&snap);
    pprof_profile *p = pprof_builder_finish(b, err);
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
