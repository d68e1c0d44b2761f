/* test_selfprof.c -- the CPU profiler of selfprof/ (firn profiling itself),
 * and the heap profiler's absence from programs that do not link the
 * interposer (test_selfprof_heap.c tests it where it is linked).
 *
 * Set FIRN_SELFPROF_TEST_OUT to a directory to keep the CPU profile as
 * cpu.pb.gz there (for `go tool pprof`).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "selfprof/selfprof.h"

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* CPU time of the whole process, which is what ITIMER_PROF counts. */
static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- a thread burning CPU in a function we can find ------------------------ */

static atomic_bool burn_stop;
static volatile uint64_t burn_sum;

/* The function the profile must find: not inlined, so that it has its own
 * frame and symbol. */
__attribute__((noinline)) static void selfprof_test_burn(void)
{
    while (!atomic_load_explicit(&burn_stop, memory_order_relaxed))
        for (int i = 0; i < 100000; i++)
            burn_sum += (uint64_t)i;
}

static void *burner(void *arg)
{
    (void)arg;
    selfprof_test_burn();
    return NULL;
}

static void keep_profile(const pprof_profile *p, const char *name)
{
    const char *dir = getenv("FIRN_SELFPROF_TEST_OUT");
    if (!dir || !*dir)
        return;
    unsigned char *buf;
    size_t len;
    firn_err err = {0};
    assert_int_equal(pprof_encode(p, -1, &buf, &len, &err), 0);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (firn_write_file_atomic(path, buf, len, &err) < 0)
        fail_msg("%s", err.msg);
    free(buf);
}

/* Every mapping with locations says has_functions: firn symbolized it,
 * and pprof must not ask firn's /debug/pprof/symbol (there is none). */
static void assert_all_mappings_symbolized(const pprof_profile *p)
{
    for (size_t i = 0; i < p->n_locations; i++) {
        uint32_t m = p->locations[i].mapping;
        if (m != PPROF_NONE && !p->mappings[m].has_functions)
            fail_msg("mapping %s lacks has_functions", pprof_str(p, p->mappings[m].filename));
    }
}

/* ---- tests ------------------------------------------------------------------- */

static void test_cpu_profile(void **state)
{
    (void)state;
    pthread_t t;
    atomic_store(&burn_stop, false);
    assert_int_equal(pthread_create(&t, NULL, burner, NULL), 0);
    firn_err err = {0};
    double cpu_start = cpu_seconds();
    pprof_profile *p = selfprof_cpu(2, 100, NULL, &err);
    double cpu = cpu_seconds() - cpu_start;
    atomic_store(&burn_stop, true);
    pthread_join(t, NULL);
    if (!p)
        fail_msg("selfprof_cpu: %s", err.msg);
    keep_profile(p, "cpu.pb.gz");

    /* Go's shape. */
    assert_int_equal(p->n_sample_types, 2);
    assert_string_equal(pprof_str(p, p->sample_types[0].type), "samples");
    assert_string_equal(pprof_str(p, p->sample_types[0].unit), "count");
    assert_string_equal(pprof_str(p, p->sample_types[1].type), "cpu");
    assert_string_equal(pprof_str(p, p->sample_types[1].unit), "nanoseconds");
    assert_string_equal(pprof_str(p, p->period_type.type), "cpu");
    assert_string_equal(pprof_str(p, p->period_type.unit), "nanoseconds");
    assert_int_equal(p->period, 10000000);
    assert_int_equal(p->default_sample_type, 0);
    assert_true(p->time_nanos > 1600000000ll * 1000000000);
    assert_true(p->duration_nanos >= 1900000000 && p->duration_nanos < 10000000000);

    int64_t total = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        assert_true(p->samples[i].n_locations > 0);
        assert_int_equal(p->samples[i].values[1], p->samples[i].values[0] * p->period);
        total += p->samples[i].values[0];
    }
    /* One sample per 10 ms of CPU the process used (ITIMER_PROF counts CPU
     * time, so a loaded machine does not change the ratio).  The CPU spent
     * after the timer stopped (symbolizing: slow under sanitizers) has none,
     * hence the generous lower bound: it still catches a sampler that loses
     * most signals, as the upper one catches samples counted twice. */
    if (total < cpu * 100 * 0.25 || total > cpu * 100 * 1.2 + 10)
        fail_msg("%lld samples for %.2f s of CPU", (long long)total, cpu);
    /* ~200 expected: the burner owns a core for 2 s unless the machine is
     * overloaded, which the check above already covers. */
    if (cpu > 1)
        assert_true(total > 50);

    /* Mapping 1 is the main binary, with a build id. */
    assert_true(p->n_mappings > 0);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    assert_string_equal(pprof_str(p, p->mappings[0].filename), exe);
    assert_true(strlen(pprof_str(p, p->mappings[0].build_id)) >= 16);
    assert_true(p->mappings[0].has_functions);
    assert_true(p->mappings[0].has_filenames);
    assert_true(p->mappings[0].has_line_numbers);
    assert_true(p->mappings[0].has_inline_frames);
    assert_all_mappings_symbolized(p);

    /* The hottest function is the burner, with its file and line. */
    pprof_top_report top;
    assert_int_equal(pprof_top(p, 0, &top, &err), 0);
    assert_true(top.n_rows > 0);
    assert_string_equal(top.rows[0].name, "selfprof_test_burn");
    assert_true(top.rows[0].flat > total / 2);
    pprof_top_free(&top);
    bool found = false;
    for (size_t i = 0; i < p->n_locations; i++) {
        const pprof_location *l = &p->locations[i];
        if (l->n_lines == 0 || l->lines[0].function == PPROF_NONE)
            continue;
        const pprof_function *f = &p->functions[l->lines[0].function];
        if (strcmp(pprof_str(p, f->name), "selfprof_test_burn") != 0)
            continue;
        found = true;
        assert_true(ends_with(pprof_str(p, f->filename), "test_selfprof.c"));
        assert_true(l->lines[0].line > 0);
        assert_true(f->start_line > 0 && f->start_line <= l->lines[0].line);
        assert_int_equal(l->mapping, 0);
        assert_true(l->address >= p->mappings[0].memory_start &&
                    l->address < p->mappings[0].memory_limit);
    }
    assert_true(found);

    /* The profile survives encoding. */
    unsigned char *buf;
    size_t len;
    assert_int_equal(pprof_encode(p, -1, &buf, &len, &err), 0);
    pprof_profile *q = pprof_decode(buf, len, NULL, &err);
    free(buf);
    if (!q)
        fail_msg("decode: %s", err.msg);
    assert_int_equal(q->n_samples, p->n_samples);
    assert_int_equal(q->n_locations, p->n_locations);
    assert_int_equal(q->n_mappings, p->n_mappings);
    assert_int_equal(q->period, p->period);
    assert_int_equal(q->duration_nanos, p->duration_nanos);
    int64_t tp[2], tq[2];
    pprof_totals(p, tp);
    pprof_totals(q, tq);
    assert_memory_equal(tp, tq, sizeof tp);
    pprof_free(q);
    pprof_free(p);
}

static void custom_sigprof(int sig)
{
    (void)sig;
}

/* Samples with the burner on their stack. */
static int64_t burn_samples(const pprof_profile *p)
{
    int64_t n = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_sample *s = &p->samples[i];
        bool burn = false;
        for (size_t j = 0; j < s->n_locations && !burn; j++) {
            const pprof_location *l = &p->locations[s->locations[j]];
            for (size_t k = 0; k < l->n_lines && !burn; k++)
                burn = l->lines[k].function != PPROF_NONE &&
                       strcmp(pprof_str(p, p->functions[l->lines[k].function].name),
                              "selfprof_test_burn") == 0;
        }
        if (burn)
            n += s->values[0];
    }
    return n;
}

static int64_t total_samples(const pprof_profile *p)
{
    int64_t n = 0;
    for (size_t i = 0; i < p->n_samples; i++)
        n += p->samples[i].values[0];
    return n;
}

/* Waits (polling, bounded) until n CPU profiles are being recorded. */
static void wait_for_active(int n)
{
    double give_up = now_seconds() + 30;
    while (selfprof_cpu_active() != n && now_seconds() < give_up)
        sched_yield();
    assert_int_equal(selfprof_cpu_active(), n);
}

struct background {
    int seconds, hz;
    _Atomic bool cancel;
    pprof_profile *p;
    firn_err err;
    double elapsed;
};

static void *background_profile(void *arg)
{
    struct background *bg = arg;
    double start = now_seconds();
    bg->p = selfprof_cpu(bg->seconds, bg->hz, &bg->cancel, &bg->err);
    bg->elapsed = now_seconds() - start;
    return NULL;
}

/* Two overlapping profiles, 2 s and 1 s, the second starting 0.5 s into
 * the first: both are recorded, each over its own time, and SIGPROF is
 * restored once the last is done. */
static void test_cpu_overlapping(void **state)
{
    (void)state;
    struct sigaction mine = {0}, before, after;
    mine.sa_handler = custom_sigprof;
    sigemptyset(&mine.sa_mask);
    assert_int_equal(sigaction(SIGPROF, &mine, &before), 0);
    pthread_t burn;
    atomic_store(&burn_stop, false);
    assert_int_equal(pthread_create(&burn, NULL, burner, NULL), 0);

    struct background longer = {.seconds = 2, .hz = 100};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, background_profile, &longer), 0);
    wait_for_active(1);
    /* The offset of the scenario, not a synchronization: the second
     * profile starts while the first runs whenever this wakes up. */
    struct timespec half = {0, 500000000};
    nanosleep(&half, NULL);
    firn_err err = {0};
    pprof_profile *shorter = selfprof_cpu(1, 100, NULL, &err);
    pthread_join(t, NULL);
    atomic_store(&burn_stop, true);
    pthread_join(burn, NULL);
    if (!shorter)
        fail_msg("the shorter profile: %s", err.msg);
    if (!longer.p)
        fail_msg("the longer profile: %s", longer.err.msg);
    assert_int_equal(selfprof_cpu_active(), 0);

    const pprof_profile *a = longer.p, *b = shorter;
    assert_true(a->duration_nanos >= 1900000000);
    assert_true(b->duration_nanos >= 900000000);
    assert_true(b->time_nanos > a->time_nanos);
    int64_t a_burn = burn_samples(a), b_burn = burn_samples(b);
    if (a_burn == 0 || b_burn == 0)
        fail_msg("burner samples: %lld in 2 s, %lld in 1 s", (long long)a_burn,
                 (long long)b_burn);
    /* Every sample goes to every profile subscribed when it is taken: when
     * the shorter one ran inside the longer one (unless this thread woke
     * up very late), its samples are a subset of the other's. */
    if (b->time_nanos + b->duration_nanos <= a->time_nanos + a->duration_nanos) {
        assert_true(total_samples(b) <= total_samples(a));
        if (b_burn >= a_burn)
            fail_msg("burner samples: %lld in 2 s, %lld in the 1 s within", (long long)a_burn,
                     (long long)b_burn);
    }
    pprof_free(longer.p);
    pprof_free(shorter);

    assert_int_equal(sigaction(SIGPROF, &before, &after), 0);
    assert_ptr_equal(after.sa_handler, custom_sigprof);
    struct itimerval timer;
    assert_int_equal(getitimer(ITIMER_PROF, &timer), 0);
    assert_true(timer.it_value.tv_sec == 0 && timer.it_value.tv_usec == 0);
}

/* SELFPROF_MAX_CPU_PROFILES at once, no more; another hz is refused while
 * they run; cancel ends each early. */
static void test_cpu_limits_and_cancel(void **state)
{
    (void)state;
    static struct background bg[SELFPROF_MAX_CPU_PROFILES];
    pthread_t t[SELFPROF_MAX_CPU_PROFILES];
    for (int i = 0; i < SELFPROF_MAX_CPU_PROFILES; i++) {
        bg[i] = (struct background){.seconds = 60, .hz = 100};
        assert_int_equal(pthread_create(&t[i], NULL, background_profile, &bg[i]), 0);
    }
    wait_for_active(SELFPROF_MAX_CPU_PROFILES);

    firn_err err = {0};
    assert_null(selfprof_cpu(1, 100, NULL, &err));
    assert_int_equal(err.code, FIRN_EBUSY);
    assert_string_equal(err.msg, "cpu profiling already in use: 16 profiles are being "
                                 "recorded, the most at once");

    atomic_store(&bg[0].cancel, true);
    pthread_join(t[0], NULL);
    assert_int_equal(selfprof_cpu_active(), SELFPROF_MAX_CPU_PROFILES - 1);
    firn_err_clear(&err);
    assert_null(selfprof_cpu(1, 250, NULL, &err));
    assert_int_equal(err.code, FIRN_EBUSY);
    assert_string_equal(err.msg, "cpu profiling already in use at 100 Hz, not 250");

    for (int i = 1; i < SELFPROF_MAX_CPU_PROFILES; i++)
        atomic_store(&bg[i].cancel, true);
    for (int i = 0; i < SELFPROF_MAX_CPU_PROFILES; i++) {
        if (i > 0)
            pthread_join(t[i], NULL);
        if (!bg[i].p)
            fail_msg("profile %d: %s", i, bg[i].err.msg);
        /* 60 s asked; cancel is seen within ~100 ms */
        assert_true(bg[i].elapsed < 20);
        assert_true(bg[i].p->duration_nanos < 20000000000ll);
        assert_int_equal(bg[i].p->period, 10000000);
        pprof_free(bg[i].p);
    }
    assert_int_equal(selfprof_cpu_active(), 0);
}

static void test_cpu_cancelled_before_start(void **state)
{
    (void)state;
    _Atomic bool cancel = true;
    firn_err err = {0};
    double start = now_seconds();
    pprof_profile *p = selfprof_cpu(60, 100, &cancel, &err);
    if (!p)
        fail_msg("selfprof_cpu: %s", err.msg);
    assert_true(now_seconds() - start < 20);
    assert_int_equal(p->n_sample_types, 2);
    assert_int_equal(p->period, 10000000);
    pprof_free(p);
}

static void test_cpu_invalid_arguments(void **state)
{
    (void)state;
    static const struct {
        int seconds, hz;
    } cases[] = {{0, 100}, {-1, 100}, {SELFPROF_MAX_SECONDS + 1, 100}, {1, 0}, {1, -5},
                 {1, 1000000}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        firn_err err = {0};
        assert_null(selfprof_cpu(cases[i].seconds, cases[i].hz, NULL, &err));
        assert_int_equal(err.code, FIRN_EINVAL);
    }
    assert_false(selfprof_cpu_active());
}

/* The profiler leaves SIGPROF and ITIMER_PROF as it found them. */
static void test_cpu_restores_signal_state(void **state)
{
    (void)state;
    struct sigaction mine = {0}, before, after;
    mine.sa_handler = custom_sigprof;
    sigemptyset(&mine.sa_mask);
    assert_int_equal(sigaction(SIGPROF, &mine, &before), 0);

    _Atomic bool cancel = true;
    firn_err err = {0};
    pprof_profile *p = selfprof_cpu(1, 250, &cancel, &err);
    if (!p)
        fail_msg("selfprof_cpu: %s", err.msg);
    assert_int_equal(p->period, 4000000);
    pprof_free(p);

    assert_int_equal(sigaction(SIGPROF, &before, &after), 0);
    assert_ptr_equal(after.sa_handler, custom_sigprof);
    struct itimerval timer;
    assert_int_equal(getitimer(ITIMER_PROF, &timer), 0);
    assert_true(timer.it_value.tv_sec == 0 && timer.it_value.tv_usec == 0);

    /* A timer armed by someone else means the timer is taken. */
    signal(SIGPROF, SIG_IGN);
    struct itimerval armed = {{0, 0}, {100, 0}};
    assert_int_equal(setitimer(ITIMER_PROF, &armed, NULL), 0);
    assert_null(selfprof_cpu(1, 100, NULL, &err));
    assert_int_equal(err.code, FIRN_EBUSY);
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    sigaction(SIGPROF, &before, NULL);
    assert_false(selfprof_cpu_active());
}

static void test_heap_not_linked(void **state)
{
    (void)state;
    assert_false(selfprof_heap_available());
    assert_int_equal(selfprof_heap_rate(), 0);
    selfprof_heap_set_rate(1);   /* a no-op */
    firn_err err = {0};
    assert_null(selfprof_heap(&err));
    assert_int_equal(err.code, FIRN_EINVAL);
    assert_string_equal(err.msg, "heap profiling is not built into this binary");
    firn_err_clear(&err);
    assert_null(selfprof_allocs(&err));
    assert_int_equal(err.code, FIRN_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cpu_profile),
        cmocka_unit_test(test_cpu_overlapping),
        cmocka_unit_test(test_cpu_limits_and_cancel),
        cmocka_unit_test(test_cpu_cancelled_before_start),
        cmocka_unit_test(test_cpu_invalid_arguments),
        cmocka_unit_test(test_cpu_restores_signal_state),
        cmocka_unit_test(test_heap_not_linked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
