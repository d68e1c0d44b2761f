/* malloc.c -- the heap sampler: glibc's malloc family, interposed.
 *
 * Linked only into the firn server (as an object, never a library member:
 * defining malloc must be a decision of the program) and never under
 * sanitizers, which interpose malloc themselves.  Every entry point calls
 * glibc's own allocator (__libc_malloc and friends, plain exported symbols:
 * no dlsym, so no bootstrap problem however early the first call) and
 * samples, as Go's runtime does with MemProfileRate:
 *
 *  - each thread counts down the bytes to its next sample, drawn from an
 *    exponential distribution of mean `rate`, so the fast path of malloc is
 *    one thread-local subtraction;
 *  - a sampled allocation unwinds its stack (libunwind) into a bucket keyed
 *    by (stack, size), as Go's memprofile buckets, and is remembered in the
 *    live table (pointer -> bucket) so that its free is matched;
 *  - free looks the pointer up in the live table: a large array of chain
 *    heads read without a lock, so a pointer that was never sampled (nearly
 *    all of them) costs one hash and one load; sampled ones take the
 *    table's stripe lock.
 *
 * The sampler's own memory (buckets, live entries) comes from mmap, never
 * from malloc.  A thread-local flag (selfprof_in_unwind) stops recursion
 * when libunwind allocates while we unwind.  Locks are spinlocks around a
 * few pointer updates (they never call malloc), taken across fork by
 * pthread_atfork handlers so a child never inherits one held.
 *
 * Buckets are never freed and, once published with a release store, only
 * their counters change, so the profile builder (heap.c) walks them without
 * locking.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "selfprof/internal.h"

#include <errno.h>
#include <malloc.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/mman.h>

/* glibc's allocator under its exported internal names. */
void *__libc_malloc(size_t size);
void __libc_free(void *ptr);
void *__libc_calloc(size_t n, size_t size);
void *__libc_realloc(void *ptr, size_t size);
void *__libc_memalign(size_t alignment, size_t size);
void *__libc_valloc(size_t size);
void *__libc_pvalloc(size_t size);

#define BUCKET_HASH_BITS 14
#define BUCKET_SPACE_MAX ((size_t)64 << 20)   /* caps the sampler's bucket memory */
#define BUCKET_CHUNK ((size_t)1 << 20)
#define LIVE_HASH_BITS 17                     /* 1 MiB of heads: most stay empty */
#define LIVE_STRIPES 64
#define LIVE_CHUNK ((size_t)64 << 10)
/* Frames of our own (record_allocation, the entry point, libunwind) seen
 * before the allocating caller. */
#define SKIP_MAX 8

struct bucket {
    struct bucket *_Atomic next;   /* hash chain */
    uint64_t hash;
    size_t size;                   /* bytes asked for, per allocation */
    uint32_t depth;
    _Atomic int64_t allocs, frees;   /* bytes are these times size */
    uintptr_t pcs[];               /* depth entries, return-PC form */
};

/* A sampled block that is still allocated. */
struct live {
    struct live *next;
    void *ptr;
    struct bucket *bucket;
};

struct stripe {
    _Alignas(64) _Atomic int lock;
    struct live *free_list;   /* spare entries, under lock */
};

static _Atomic size_t sample_rate = SELFPROF_DEFAULT_HEAP_RATE;
static _Atomic uint64_t seed_counter;
static _Atomic uint64_t dropped;

static struct bucket *_Atomic bucket_heads[1u << BUCKET_HASH_BITS];
static _Atomic int bucket_lock;
static char *bucket_next, *bucket_end;   /* bump allocator, under bucket_lock */
static size_t bucket_space;

static struct live *_Atomic live_heads[1u << LIVE_HASH_BITS];
static struct stripe stripes[LIVE_STRIPES];

/* Bytes this thread may still allocate before its next sample; rng is its
 * xorshift state, 0 until the thread's first allocation. */
struct sampler {
    int64_t left;
    uint64_t rng;
};
static __thread struct sampler sampler __attribute__((tls_model("initial-exec")));

/* ---- locks and memory ------------------------------------------------------ */

static void spin_lock(_Atomic int *lock)
{
    for (unsigned spins = 0; atomic_exchange_explicit(lock, 1, memory_order_acquire); spins++) {
        while (atomic_load_explicit(lock, memory_order_relaxed)) {
            if (++spins > 64)
                sched_yield();   /* the holder was preempted */
        }
    }
}

static void spin_unlock(_Atomic int *lock)
{
    atomic_store_explicit(lock, 0, memory_order_release);
}

static void *map_memory(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

static void fork_prepare(void)
{
    spin_lock(&bucket_lock);
    for (size_t i = 0; i < LIVE_STRIPES; i++)
        spin_lock(&stripes[i].lock);
}

static void fork_release(void)
{
    for (size_t i = LIVE_STRIPES; i-- > 0;)
        spin_unlock(&stripes[i].lock);
    spin_unlock(&bucket_lock);
}

__attribute__((constructor)) static void install_fork_handlers(void)
{
    pthread_atfork(fork_prepare, fork_release, fork_release);
}

/* ---- when to sample ------------------------------------------------------ */

static uint64_t next_random(struct sampler *s)
{
    uint64_t x = s->rng;   /* xorshift64* */
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    s->rng = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Bytes until the next sample: exponential with mean rate, as Go's
 * nextSample; 0 samples everything (rate 1), a huge gap none (rate 0). */
static int64_t draw_gap(struct sampler *s)
{
    size_t rate = atomic_load_explicit(&sample_rate, memory_order_relaxed);
    if (rate == 0)
        return INT64_MAX / 2;
    if (rate == 1)
        return 0;
    double u = (double)((next_random(s) >> 11) + 1) * 0x1.0p-53;   /* (0, 1] */
    double gap = -log(u) * (double)rate;
    return gap < 4e18 ? (int64_t)gap : (int64_t)4e18;
}

__attribute__((noinline)) static bool take_sample_slow(struct sampler *s)
{
    if (s->rng == 0) {   /* this thread's first allocation: start its countdown */
        uint64_t seed = (uint64_t)(uintptr_t)s ^
                        atomic_fetch_add(&seed_counter, 0x9E3779B97F4A7C15ull);
        s->rng = seed ? seed : 1;
        s->left += draw_gap(s);
        if (s->left > 0)
            return false;
    }
    s->left = draw_gap(s);
    return true;
}

/* Whether to sample an allocation of size bytes (the caller got it). */
static inline bool take_sample(size_t size)
{
    struct sampler *s = &sampler;
    s->left -= (int64_t)size;   /* size <= PTRDIFF_MAX: the allocation succeeded */
    if (__builtin_expect(s->left > 0, 1))
        return false;
    return take_sample_slow(s);
}

/* ---- buckets ----------------------------------------------------------------- */

static uint64_t hash_stack(const uintptr_t *pcs, size_t depth, size_t size)
{
    uint64_t h = (uint64_t)size * 0x9E3779B97F4A7C15ull + depth;
    for (size_t i = 0; i < depth; i++) {
        h = (h ^ pcs[i]) * 0xBF58476D1CE4E5B9ull;
        h ^= h >> 31;
    }
    return h;
}

static bool same_bucket(const struct bucket *b, uint64_t hash, const uintptr_t *pcs,
                        size_t depth, size_t size)
{
    if (b->hash != hash || b->size != size || b->depth != depth)
        return false;
    for (size_t i = 0; i < depth; i++)
        if (b->pcs[i] != pcs[i])
            return false;
    return true;
}

static struct bucket *find_bucket(struct bucket *b, uint64_t hash, const uintptr_t *pcs,
                                  size_t depth, size_t size)
{
    for (; b; b = atomic_load_explicit(&b->next, memory_order_acquire))
        if (same_bucket(b, hash, pcs, depth, size))
            return b;
    return NULL;
}

/* The bucket of (pcs, size), created if new; NULL when out of space. */
static struct bucket *get_bucket(const uintptr_t *pcs, size_t depth, size_t size)
{
    uint64_t hash = hash_stack(pcs, depth, size);
    struct bucket *_Atomic *head = &bucket_heads[hash >> (64 - BUCKET_HASH_BITS)];
    struct bucket *b =
        find_bucket(atomic_load_explicit(head, memory_order_acquire), hash, pcs, depth, size);
    if (b)
        return b;

    spin_lock(&bucket_lock);
    struct bucket *first = atomic_load_explicit(head, memory_order_relaxed);
    b = find_bucket(first, hash, pcs, depth, size);   /* another thread may have added it */
    if (!b) {
        size_t need = (sizeof *b + depth * sizeof *pcs + 15) & ~(size_t)15;
        if ((size_t)(bucket_end - bucket_next) < need && bucket_space < BUCKET_SPACE_MAX) {
            char *chunk = map_memory(BUCKET_CHUNK);
            if (chunk) {
                bucket_next = chunk;
                bucket_end = chunk + BUCKET_CHUNK;
                bucket_space += BUCKET_CHUNK;
            }
        }
        if ((size_t)(bucket_end - bucket_next) >= need) {
            b = (struct bucket *)bucket_next;
            bucket_next += need;
            b->hash = hash;
            b->size = size;
            b->depth = (uint32_t)depth;
            for (size_t i = 0; i < depth; i++)
                b->pcs[i] = pcs[i];
            atomic_init(&b->next, first);
            atomic_store_explicit(head, b, memory_order_release);   /* publish */
        }
    }
    spin_unlock(&bucket_lock);
    return b;
}

/* ---- live sampled blocks ----------------------------------------------------- */

static size_t live_index(const void *ptr)
{
    return (size_t)(((uintptr_t)ptr >> 4) * 0x9E3779B97F4A7C15ull >> (64 - LIVE_HASH_BITS));
}

/* Unlinks ptr's entry from its chain into *out; the stripe is locked. */
static bool live_unlink(size_t idx, const void *ptr, struct live *out, struct stripe *st)
{
    struct live *prev = NULL;
    for (struct live *l = atomic_load_explicit(&live_heads[idx], memory_order_relaxed); l;
         prev = l, l = l->next) {
        if (l->ptr != ptr)
            continue;
        if (prev)
            prev->next = l->next;
        else
            atomic_store_explicit(&live_heads[idx], l->next, memory_order_relaxed);
        *out = *l;
        l->next = st->free_list;
        st->free_list = l;
        return true;
    }
    return false;
}

static void count_free(const struct live *gone)
{
    atomic_fetch_add(&gone->bucket->frees, 1);
}

__attribute__((noinline)) static bool live_remove_slow(size_t idx, void *ptr, struct live *out)
{
    struct stripe *st = &stripes[idx % LIVE_STRIPES];
    spin_lock(&st->lock);
    bool found = live_unlink(idx, ptr, out, st);
    spin_unlock(&st->lock);
    return found;
}

/* Takes ptr out of the live table; false (cheaply) when it was not sampled.
 * The head is read without the lock: ptr was inserted before the program
 * could hand it to whoever frees it, so its entry is visible here. */
static inline bool live_remove(void *ptr, struct live *out)
{
    size_t idx = live_index(ptr);
    if (__builtin_expect(atomic_load_explicit(&live_heads[idx], memory_order_relaxed) == NULL, 1))
        return false;
    return live_remove_slow(idx, ptr, out);
}

/* Remembers ptr as a sample of bucket; false when out of memory. */
static bool live_insert(void *ptr, struct bucket *bucket)
{
    size_t idx = live_index(ptr);
    struct stripe *st = &stripes[idx % LIVE_STRIPES];
    spin_lock(&st->lock);
    /* An entry for ptr can only be stale: its block was freed behind our
     * back (a path that bypasses the interposer).  Count that free now. */
    struct live stale;
    if (live_unlink(idx, ptr, &stale, st))
        count_free(&stale);
    if (!st->free_list) {
        struct live *chunk = map_memory(LIVE_CHUNK);
        for (size_t i = 0; chunk && i < LIVE_CHUNK / sizeof *chunk; i++) {
            chunk[i].next = st->free_list;
            st->free_list = &chunk[i];
        }
    }
    struct live *l = st->free_list;
    if (l) {
        st->free_list = l->next;
        *l = (struct live){atomic_load_explicit(&live_heads[idx], memory_order_relaxed), ptr,
                           bucket};
        atomic_store_explicit(&live_heads[idx], l, memory_order_relaxed);
    }
    spin_unlock(&st->lock);
    return l != NULL;
}

/* ---- recording --------------------------------------------------------------- */

/* Records a sampled block: its stack from the allocating caller (the
 * return address of the malloc entry point) outwards. */
__attribute__((noinline)) static void record_allocation(void *ptr, size_t size, void *caller)
{
    if (selfprof_in_unwind)
        return;   /* libunwind allocating while we unwind, or a SIGPROF handler */
    selfprof_in_unwind = 1;
    void *frames[SELFPROF_MAX_FRAMES + SKIP_MAX];
    int n = unw_backtrace(frames, (int)(sizeof frames / sizeof *frames));
    int first = 0;
    for (int i = 0; i < n && i < SKIP_MAX; i++) {
        if (frames[i] == caller) {
            first = i;
            break;
        }
    }
    size_t depth = (size_t)(n - first);
    if (depth > SELFPROF_MAX_FRAMES)
        depth = SELFPROF_MAX_FRAMES;
    uintptr_t pcs[SELFPROF_MAX_FRAMES];
    for (size_t i = 0; i < depth; i++)
        pcs[i] = (uintptr_t)frames[first + (int)i];

    struct bucket *b = get_bucket(pcs, depth, size);
    if (b) {
        /* Counted before the block is findable by free, so frees <= allocs. */
        atomic_fetch_add(&b->allocs, 1);
        if (!live_insert(ptr, b)) {   /* its free cannot be matched: never count it */
            atomic_fetch_sub(&b->allocs, 1);
            b = NULL;
        }
    }
    if (!b)
        atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
    selfprof_in_unwind = 0;
}

static inline void *allocated(void *ptr, size_t size, void *caller)
{
    if (ptr && take_sample(size))
        record_allocation(ptr, size, caller);
    return ptr;
}

/* realloc counts as a free of the old block and an allocation of the new.
 * The old entry leaves the live table before glibc can reuse its address
 * and returns if glibc fails (the old block then stays allocated). */
static inline void *reallocate(void *old, size_t size, void *caller)
{
    if (!old)
        return allocated(__libc_malloc(size), size, caller);
    struct live gone;
    bool tracked = live_remove(old, &gone);
    void *ptr = __libc_realloc(old, size);
    if (!ptr && size != 0) {
        if (tracked && !live_insert(old, gone.bucket))
            count_free(&gone);   /* cannot track it any more */
        return NULL;
    }
    if (tracked)
        count_free(&gone);
    return allocated(ptr, size, caller);
}

/* ---- the interposed functions ------------------------------------------------ */

void *malloc(size_t size)
{
    return allocated(__libc_malloc(size), size, __builtin_return_address(0));
}

void free(void *ptr)
{
    struct live gone;
    if (ptr && live_remove(ptr, &gone))
        count_free(&gone);
    __libc_free(ptr);
}

void *calloc(size_t n, size_t size)
{
    /* n * size only matters when glibc succeeded, i.e. it did not overflow. */
    return allocated(__libc_calloc(n, size), n * size, __builtin_return_address(0));
}

void *realloc(void *ptr, size_t size)
{
    return reallocate(ptr, size, __builtin_return_address(0));
}

void *reallocarray(void *ptr, size_t n, size_t size)
{
    if (size != 0 && n > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return reallocate(ptr, n * size, __builtin_return_address(0));
}

int posix_memalign(void **out, size_t alignment, size_t size)
{
    if (alignment == 0 || (alignment & (alignment - 1)) != 0 || alignment % sizeof(void *) != 0)
        return EINVAL;
    int saved_errno = errno;   /* POSIX: reported by the return value only */
    void *ptr = __libc_memalign(alignment, size);
    errno = saved_errno;
    if (!ptr)
        return ENOMEM;
    *out = allocated(ptr, size, __builtin_return_address(0));
    return 0;
}

void *aligned_alloc(size_t alignment, size_t size)
{
    /* C11: an unsupported alignment fails (glibc 2.38 does the same). */
    if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
        errno = EINVAL;
        return NULL;
    }
    return allocated(__libc_memalign(alignment, size), size, __builtin_return_address(0));
}

void *memalign(size_t alignment, size_t size)
{
    return allocated(__libc_memalign(alignment, size), size, __builtin_return_address(0));
}

void *valloc(size_t size)
{
    return allocated(__libc_valloc(size), size, __builtin_return_address(0));
}

void *pvalloc(size_t size)
{
    return allocated(__libc_pvalloc(size), size, __builtin_return_address(0));
}

/* ---- the source heap.c reads ------------------------------------------------- */

static size_t get_rate(void)
{
    return atomic_load(&sample_rate);
}

static void set_rate(size_t rate)
{
    atomic_store(&sample_rate, rate);
}

static void visit(selfprof_heap_visit_fn fn, void *ctx)
{
    for (size_t i = 0; i < (1u << BUCKET_HASH_BITS); i++) {
        for (struct bucket *b = atomic_load_explicit(&bucket_heads[i], memory_order_acquire); b;
             b = atomic_load_explicit(&b->next, memory_order_acquire)) {
            /* Frees first: every free read was preceded by its allocation's
             * count (through the live table's lock), so that is seen too. */
            int64_t frees = atomic_load(&b->frees);
            int64_t allocs = atomic_load(&b->allocs);
            if (frees > allocs)
                frees = allocs;
            int64_t size = (int64_t)b->size;
            fn(ctx, b->pcs, b->depth, b->size, allocs, allocs * size, frees, frees * size);
        }
    }
}

static uint64_t get_dropped(void)
{
    return atomic_load(&dropped);
}

const struct selfprof_heap_source selfprof_heap_source = {
    .rate = get_rate,
    .set_rate = set_rate,
    .visit = visit,
    .dropped = get_dropped,
};
