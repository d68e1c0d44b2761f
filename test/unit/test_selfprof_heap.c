/* test_selfprof_heap.c -- the heap sampler of selfprof/ (malloc.c linked
 * into this program, as into the firn server): estimates of what a
 * function allocated and still holds, matched frees, Go's heap profile
 * shape, and the interposed functions keeping libc's semantics.
 *
 * Not built under sanitizers (they interpose malloc themselves).  Set
 * FIRN_SELFPROF_TEST_OUT to a directory to keep the heap profile as
 * heap.pb.gz there (for `go tool pprof`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "selfprof/selfprof.h"

#define TEST_RATE (64 * 1024)
#define BLOCK_SIZE 4096
#define BLOCKS (64 * 1024 * 1024 / BLOCK_SIZE)

/* Keeps the compiler from proving allocations unused. */
static void *volatile sink;
/* Sizes and alignments the compiler must not see (it warns about them). */
static volatile size_t huge = SIZE_MAX;
static volatile size_t align_3 = 3, align_0 = 0;

/* Runs out this thread's countdown to the next sample, so that a new rate
 * applies from the next allocation on (the countdown left is far below
 * 64 MiB at any rate in use here). */
static void use_rate(size_t rate)
{
    selfprof_heap_set_rate(rate);
    sink = malloc(64u << 20);   /* mapped, never touched */
    free(sink);
}

/* ---- reading the profile ---------------------------------------------------- */

static bool sample_has_function(const pprof_profile *p, const pprof_sample *s, const char *name)
{
    for (size_t i = 0; i < s->n_locations; i++) {
        const pprof_location *l = &p->locations[s->locations[i]];
        for (size_t j = 0; j < l->n_lines; j++)
            if (l->lines[j].function != PPROF_NONE &&
                strcmp(pprof_str(p, p->functions[l->lines[j].function].name), name) == 0)
                return true;
    }
    return false;
}

static const char *leaf_function(const pprof_profile *p, const pprof_sample *s)
{
    if (s->n_locations == 0)
        return "";
    const pprof_location *l = &p->locations[s->locations[0]];
    if (l->n_lines == 0 || l->lines[0].function == PPROF_NONE)
        return "";
    return pprof_str(p, p->functions[l->lines[0].function].name);
}

/* Sums of the four columns over the samples with name on their stack. */
static void function_values(const pprof_profile *p, const char *name, int64_t *v)
{
    memset(v, 0, 4 * sizeof *v);
    for (size_t i = 0; i < p->n_samples; i++) {
        if (!sample_has_function(p, &p->samples[i], name))
            continue;
        for (int c = 0; c < 4; c++)
            v[c] += p->samples[i].values[c];
    }
}

static pprof_profile *heap_profile(void)
{
    firn_err err = {0};
    pprof_profile *p = selfprof_heap(&err);
    if (!p)
        fail_msg("selfprof_heap: %s", err.msg);
    return p;
}

static void assert_within(int64_t got, int64_t want, double tolerance)
{
    if (got < want * (1 - tolerance) || got > want * (1 + tolerance))
        fail_msg("got %lld, want %lld +- %.0f%%", (long long)got, (long long)want,
                 tolerance * 100);
}

/* ---- allocating from functions we can find --------------------------------------- */

__attribute__((noinline)) static void selfprof_test_alloc(void **blocks, size_t n, size_t size)
{
    for (size_t i = 0; i < n; i++)
        blocks[i] = malloc(size);
    sink = blocks;
}

/* The results go through sink so that the calls are not tail calls (a
 * tail call leaves no frame of the caller on the stack). */
__attribute__((noinline)) static void *selfprof_test_first(size_t size)
{
    void *p = malloc(size);
    sink = p;
    return p;
}

__attribute__((noinline)) static void *selfprof_test_grow(void *ptr, size_t size)
{
    void *p = realloc(ptr, size);
    sink = p;
    return p;
}

/* ---- tests ---------------------------------------------------------------------- */

static void test_heap_profile(void **state)
{
    (void)state;
    assert_true(selfprof_heap_available());
    assert_int_equal(selfprof_heap_rate(), TEST_RATE);
    void **blocks = calloc(BLOCKS, sizeof *blocks);
    assert_non_null(blocks);
    selfprof_test_alloc(blocks, BLOCKS, BLOCK_SIZE);
    for (size_t i = 0; i < BLOCKS; i += 2) {
        assert_non_null(blocks[i]);
        free(blocks[i]);
    }

    pprof_profile *p = heap_profile();
    /* Go's shape. */
    static const char *const types[4][2] = {{"alloc_objects", "count"},
                                            {"alloc_space", "bytes"},
                                            {"inuse_objects", "count"},
                                            {"inuse_space", "bytes"}};
    assert_int_equal(p->n_sample_types, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(pprof_str(p, p->sample_types[i].type), types[i][0]);
        assert_string_equal(pprof_str(p, p->sample_types[i].unit), types[i][1]);
    }
    assert_string_equal(pprof_str(p, p->period_type.type), "space");
    assert_string_equal(pprof_str(p, p->period_type.unit), "bytes");
    assert_int_equal(p->period, TEST_RATE);
    assert_int_equal(p->default_sample_type, 0);
    assert_true(p->time_nanos > 0);

    /* Unsampled estimates within 30% (the sample count is ~1000, so its
     * relative spread is ~3%). */
    int64_t v[4];
    function_values(p, "selfprof_test_alloc", v);
    assert_within(v[0], BLOCKS, 0.3);
    assert_within(v[1], (int64_t)BLOCKS * BLOCK_SIZE, 0.3);
    assert_within(v[2], BLOCKS / 2, 0.3);
    assert_within(v[3], (int64_t)BLOCKS / 2 * BLOCK_SIZE, 0.3);

    /* The stacks start at the caller of malloc, labelled with the block size. */
    size_t n = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_sample *s = &p->samples[i];
        if (!sample_has_function(p, s, "selfprof_test_alloc"))
            continue;
        n++;
        assert_string_equal(leaf_function(p, s), "selfprof_test_alloc");
        assert_int_equal(s->n_labels, 1);
        assert_string_equal(pprof_str(p, s->labels[0].key), "bytes");
        assert_int_equal(s->labels[0].num, BLOCK_SIZE);
    }
    assert_int_equal(n, 1);   /* one (stack, size) bucket */
    assert_true(p->mappings[0].has_functions);
    assert_true(p->mappings[0].has_filenames);
    assert_true(p->mappings[0].has_line_numbers);
    /* Every mapping is symbolized as far as it goes: pprof must not ask
     * firn's /debug/pprof/symbol (there is none). */
    for (size_t i = 0; i < p->n_locations; i++) {
        uint32_t m = p->locations[i].mapping;
        if (m != PPROF_NONE && !p->mappings[m].has_functions)
            fail_msg("mapping %s lacks has_functions", pprof_str(p, p->mappings[m].filename));
    }

    const char *dir = getenv("FIRN_SELFPROF_TEST_OUT");
    firn_err err = {0};
    unsigned char *buf;
    size_t len;
    assert_int_equal(pprof_encode(p, -1, &buf, &len, &err), 0);
    if (dir && *dir) {
        char path[1024];
        snprintf(path, sizeof path, "%s/heap.pb.gz", dir);
        assert_int_equal(firn_write_file_atomic(path, buf, len, &err), 0);
    }
    pprof_profile *q = pprof_decode(buf, len, NULL, &err);
    free(buf);
    if (!q)
        fail_msg("decode: %s", err.msg);
    assert_int_equal(q->n_samples, p->n_samples);
    pprof_free(q);

    /* Every sampled free is matched: nothing of it is in use any more, and
     * what was allocated stays. */
    for (size_t i = 1; i < BLOCKS; i += 2)
        free(blocks[i]);
    free(blocks);
    pprof_profile *after = heap_profile();
    int64_t w[4];
    function_values(after, "selfprof_test_alloc", w);
    assert_int_equal(w[0], v[0]);
    assert_int_equal(w[1], v[1]);
    assert_int_equal(w[2], 0);
    assert_int_equal(w[3], 0);
    pprof_free(after);
    pprof_free(p);

    pprof_profile *allocs = selfprof_allocs(&err);
    assert_non_null(allocs);
    assert_string_equal(pprof_str(allocs, allocs->default_sample_type), "alloc_space");
    pprof_free(allocs);
}

/* Building a profile allocates: a copy of the counters, the profile, and
 * megabytes in libdw and libelf to symbolize it.  The profile does not
 * report its own building, still going on, as in use; and nothing of it
 * stays in use afterwards (every Dwfl is ended), but for what libraries
 * initialize once per process (libdw's debuginfod client initializes
 * libcurl, which initializes its TLS library: a few KB). */
static void test_building_not_in_use(void **state)
{
    (void)state;
    use_rate(4096);
    for (int i = 0; i < 2; i++)   /* past the one-time initializations */
        pprof_free(heap_profile());
    pprof_profile *p = heap_profile();
    int64_t first[4];
    function_values(p, "build_heap", first);
    pprof_free(p);
    if (first[0] == 0 || first[3] > 256 * 1024)
        fail_msg("building allocated %lld objects, %lld bytes; %lld objects, %lld bytes in use",
                 (long long)first[0], (long long)first[1], (long long)first[2],
                 (long long)first[3]);
    for (int i = 0; i < 5; i++)
        pprof_free(heap_profile());
    p = heap_profile();
    int64_t last[4];
    function_values(p, "build_heap", last);
    pprof_free(p);
    assert_true(last[0] > first[0]);   /* those five were sampled too */
    if (last[2] != first[2] || last[3] != first[3])
        fail_msg("building holds %lld objects, %lld bytes after 5 profiles more, %lld, %lld "
                 "before", (long long)last[2], (long long)last[3], (long long)first[2],
                 (long long)first[3]);
    use_rate(TEST_RATE);
}

/* realloc is a free of the old block and an allocation of the new one. */
static void test_realloc_counts(void **state)
{
    (void)state;
    use_rate(1);   /* every allocation: exact counts */
    void *p = selfprof_test_first(1000);
    p = selfprof_test_grow(p, 50000);
    assert_non_null(p);

    pprof_profile *prof = heap_profile();
    int64_t v[4];
    function_values(prof, "selfprof_test_first", v);
    int64_t want_first[4] = {1, 1000, 0, 0};
    assert_memory_equal(v, want_first, sizeof v);
    function_values(prof, "selfprof_test_grow", v);
    int64_t want_grow[4] = {1, 50000, 1, 50000};
    assert_memory_equal(v, want_grow, sizeof v);
    pprof_free(prof);

    /* A failed realloc leaves the block (and its sample) as they were. */
    errno = 0;
    assert_null(selfprof_test_grow(p, huge - 4096));
    assert_int_equal(errno, ENOMEM);
    prof = heap_profile();
    function_values(prof, "selfprof_test_grow", v);
    assert_memory_equal(v, want_grow, sizeof v);
    pprof_free(prof);

    free(p);
    prof = heap_profile();
    function_values(prof, "selfprof_test_grow", v);
    int64_t want_freed[4] = {1, 50000, 0, 0};
    assert_memory_equal(v, want_freed, sizeof v);
    pprof_free(prof);
    use_rate(TEST_RATE);
}

static void test_libc_semantics(void **state)
{
    (void)state;
    use_rate(1);   /* every call below also goes through the sampler */
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);

    /* calloc zeroes, even memory that was dirty, and checks overflow. */
    unsigned char *dirty = malloc(8192);
    memset(dirty, 0xab, 8192);
    free(dirty);
    unsigned char *zero = calloc(1024, 8);
    assert_non_null(zero);
    for (size_t i = 0; i < 8192; i++)
        assert_int_equal(zero[i], 0);
    free(zero);
    errno = 0;
    assert_null(calloc(huge / 2, 4));
    assert_int_equal(errno, ENOMEM);

    /* realloc keeps contents; NULL allocates. */
    unsigned char *r = realloc(NULL, 16);
    assert_non_null(r);
    for (int i = 0; i < 16; i++)
        r[i] = (unsigned char)i;
    r = realloc(r, 1 << 20);
    assert_non_null(r);
    for (int i = 0; i < 16; i++)
        assert_int_equal(r[i], i);
    r = realloc(r, 8);
    assert_non_null(r);
    for (int i = 0; i < 8; i++)
        assert_int_equal(r[i], i);
    free(r);

    /* reallocarray checks the multiplication. */
    errno = 0;
    assert_null(reallocarray(NULL, huge / 2, 3));
    assert_int_equal(errno, ENOMEM);
    int *arr = reallocarray(NULL, 10, sizeof(int));
    assert_non_null(arr);
    arr[9] = 9;
    arr = reallocarray(arr, 1000, sizeof(int));
    assert_non_null(arr);
    assert_int_equal(arr[9], 9);
    free(arr);

    /* posix_memalign: power-of-two multiples of sizeof(void *) only, and
     * errors in the return value with *out untouched. */
    static const size_t alignments[] = {sizeof(void *), 64, 4096, 1 << 16};
    for (size_t i = 0; i < sizeof alignments / sizeof *alignments; i++) {
        void *a = NULL;
        assert_int_equal(posix_memalign(&a, alignments[i], 100), 0);
        assert_non_null(a);
        assert_int_equal((uintptr_t)a % alignments[i], 0);
        free(a);
    }
    static const size_t bad[] = {0, 3, 4, 24, 100};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        void *a = &a;
        assert_int_equal(posix_memalign(&a, bad[i], 100), EINVAL);
        assert_ptr_equal(a, &a);
    }
    void *big = &big;
    assert_int_equal(posix_memalign(&big, 64, huge - 4096), ENOMEM);
    assert_ptr_equal(big, &big);

    /* aligned_alloc: power-of-two alignments. */
    void *aa = aligned_alloc(256, 1024);
    assert_non_null(aa);
    assert_int_equal((uintptr_t)aa % 256, 0);
    free(aa);
    errno = 0;
    assert_null(aligned_alloc(align_3, 16));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(aligned_alloc(align_0, 16));
    assert_int_equal(errno, EINVAL);

    /* The obsolete ones. */
    void *m = memalign(128, 10);
    assert_non_null(m);
    assert_int_equal((uintptr_t)m % 128, 0);
    free(m);
    void *va = valloc(10);
    assert_non_null(va);
    assert_int_equal((uintptr_t)va % page, 0);
    free(va);
    void *pv = pvalloc(10);
    assert_non_null(pv);
    assert_int_equal((uintptr_t)pv % page, 0);
    assert_true(malloc_usable_size(pv) >= page);
    free(pv);

    free(NULL);
    use_rate(TEST_RATE);
}

/* ---- concurrency ---------------------------------------------------------------- */

#define CHURN_THREADS 4
#define CHURN_MIN_ROUNDS 20000

static atomic_bool churn_stop;

/* Allocates, reallocates and frees at random until told to stop (after at
 * least CHURN_MIN_ROUNDS), then frees everything it holds. */
__attribute__((noinline)) static void selfprof_test_churn(unsigned seed)
{
    void *held[64] = {0};
    for (int i = 0; i < CHURN_MIN_ROUNDS || !atomic_load(&churn_stop); i++) {
        seed = seed * 1103515245 + 12345;
        size_t slot = (seed >> 8) % 64;
        size_t size = 16 + (seed >> 16) % 8192;
        if (held[slot] && (seed & 1))
            held[slot] = realloc(held[slot], size);
        else {
            free(held[slot]);
            held[slot] = malloc(size);
        }
        if (!held[slot])
            abort();   /* cmocka cannot fail a test from another thread */
    }
    for (int i = 0; i < 64; i++)
        free(held[i]);
}

static void *churner(void *arg)
{
    selfprof_test_churn((unsigned)(uintptr_t)arg);
    return NULL;
}

static void start_churn(pthread_t *t)
{
    atomic_store(&churn_stop, false);
    selfprof_heap_set_rate(4096);   /* new threads start at this rate */
    for (uintptr_t i = 0; i < CHURN_THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, churner, (void *)(i + 1)), 0);
}

static void stop_churn(pthread_t *t)
{
    atomic_store(&churn_stop, true);
    for (int i = 0; i < CHURN_THREADS; i++)
        pthread_join(t[i], NULL);
    selfprof_heap_set_rate(TEST_RATE);
}

/* Threads allocating, reallocating and freeing while SIGPROF interrupts
 * them (in malloc, in the sampler) and profiles are built: nothing
 * deadlocks, and every sampled block is matched by its free. */
static void test_concurrent_churn(void **state)
{
    (void)state;
    pthread_t t[CHURN_THREADS];
    start_churn(t);
    firn_err err = {0};
    pprof_profile *cpu = selfprof_cpu(1, 1000, NULL, &err);
    if (!cpu)
        fail_msg("selfprof_cpu: %s", err.msg);
    for (int i = 0; i < 3; i++)
        pprof_free(heap_profile());
    stop_churn(t);

    int64_t samples = 0;
    for (size_t i = 0; i < cpu->n_samples; i++)
        if (sample_has_function(cpu, &cpu->samples[i], "selfprof_test_churn"))
            samples += cpu->samples[i].values[0];
    assert_true(samples > 0);
    pprof_free(cpu);

    pprof_profile *p = heap_profile();
    int64_t v[4];
    function_values(p, "selfprof_test_churn", v);
    assert_true(v[0] > 0);
    assert_int_equal(v[2], 0);
    assert_int_equal(v[3], 0);
    pprof_free(p);
}

/* The child of test_replaced_binary, running from a copy of this program
 * that it deletes first (as a rebuild or an upgrade replaces a running
 * server's binary): its own frames are still symbolized from the file that
 * runs.  Returns the exit status: 0 when they are. */
static int replaced_binary_child(void)
{
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 2;
    exe[n] = '\0';
    if (unlink(exe) != 0)
        return 3;
    use_rate(1);
    void *block = selfprof_test_first(1000);
    firn_err err = {0};
    pprof_profile *p = selfprof_heap(&err);
    free(block);
    if (!p) {
        fprintf(stderr, "selfprof_heap: %s\n", err.msg);
        return 4;
    }
    bool found = false;
    for (size_t i = 0; i < p->n_samples; i++)
        found |= strcmp(leaf_function(p, &p->samples[i]), "selfprof_test_first") == 0;
    int rc = !found                                                      ? 5
             : strcmp(pprof_str(p, p->mappings[0].filename), exe) != 0   ? 6
             : strlen(pprof_str(p, p->mappings[0].build_id)) < 16        ? 7
             : !p->mappings[0].has_line_numbers                          ? 8
                                                                         : 0;
    pprof_free(p);
    return rc;
}

static void test_replaced_binary(void **state)
{
    (void)state;
    unsigned char *bin;
    size_t len;
    firn_err err = {0};
    if (firn_read_file("/proc/self/exe", 256u << 20, &bin, &len, &err) < 0)
        fail_msg("%s", err.msg);
    char dir[] = "/tmp/firn-test-selfprof-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char copy[sizeof dir + 32];
    snprintf(copy, sizeof copy, "%s/test_selfprof_heap", dir);
    assert_int_equal(firn_write_file_atomic(copy, bin, len, &err), 0);
    free(bin);
    assert_int_equal(chmod(copy, 0700), 0);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        setenv("FIRN_SELFPROF_TEST_REPLACED", "1", 1);
        execl(copy, copy, (char *)NULL);
        _exit(127);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    unlink(copy);   /* when the child did not get to it */
    rmdir(dir);
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("the child from a deleted binary exited %d", WEXITSTATUS(status));
}

/* fork while other threads hold (or race for) the sampler's locks: the
 * child can still allocate, sample and free. */
static void test_fork_while_churning(void **state)
{
    (void)state;
    pthread_t t[CHURN_THREADS];
    start_churn(t);
    for (int i = 0; i < 20; i++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            selfprof_heap_set_rate(1);
            for (int j = 0; j < 1000; j++)
                free(selfprof_test_first((size_t)j + 1));
            _exit(0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    stop_churn(t);
}

int main(void)
{
    if (getenv("FIRN_SELFPROF_TEST_REPLACED"))
        return replaced_binary_child();
    use_rate(TEST_RATE);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_profile),
        cmocka_unit_test(test_building_not_in_use),
        cmocka_unit_test(test_realloc_counts),
        cmocka_unit_test(test_libc_semantics),
        cmocka_unit_test(test_concurrent_churn),
        cmocka_unit_test(test_fork_while_churning),
        cmocka_unit_test(test_replaced_binary),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
