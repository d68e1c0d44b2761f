/* cpu.c -- the CPU profiler: SIGPROF samples of this process, aggregated
 * by stack and built into profiles shaped as Go's /debug/pprof/profile.
 *
 * ITIMER_PROF sends SIGPROF after every 1/hz s of CPU the process uses, to
 * whichever thread is running.  The handler unwinds that thread from the
 * signal's ucontext (libunwind local unwinding, async-signal-safe: no
 * malloc, no locks that signals can interrupt) straight into a slot of a
 * static ring.  A slot is claimed by a compare-and-swap of its state
 * (EMPTY -> WRITING), filled, then published (FULL); a handler that finds
 * no empty slot drops the sample and counts it.
 *
 * Up to SELFPROF_MAX_CPU_PROFILES profiles may be recorded at once, over
 * one sampler.  Each selfprof_cpu call is a subscriber with its own table
 * of unique stacks, start time and deadline.  `lock` guards the subscriber
 * list, their tables and the sampler's start and stop:
 *
 *  - the first subscriber starts the sampler (handler installed, timer
 *    armed); later ones must ask for the same hz;
 *  - whoever holds `lock` may drain: every published sample of the ring is
 *    added to the table of every subscriber at that moment.  Each waiting
 *    subscriber drains every DRAIN_NS, so the ring holds ~100 ms of
 *    samples, and a join or leave drains first, so that a subscriber gets
 *    exactly the samples taken while it was subscribed (to a drain's
 *    granularity: a sample still being written is the next drain's);
 *  - the last subscriber to leave stops the sampler: the timer is
 *    disarmed, `armed` cleared, SIGPROF set to SIG_IGN (which discards a
 *    signal still pending, so it cannot reach a SIG_DFL disposition and
 *    kill the process) and then restored to what it was before the first
 *    subscriber; handlers already running (`in_flight`) are waited for, and
 *    the last drain leaves the ring empty for the next start.
 *
 * Symbolizing and building a profile happen after leaving, without `lock`.
 * The ring is static, so a late handler never touches freed memory.
 * ITIMER_PROF and SIGPROF belong to the whole process: a timer someone
 * else armed makes the first subscriber refuse.
 */
#define UNW_LOCAL_ONLY
#include <libunwind.h>

#include "selfprof/internal.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <xxhash.h>

#define RING_SLOTS 1024              /* ~10 s of samples at 100 Hz on 1 core */
#define RING_PROBES 8                /* slots a handler tries before dropping */
#define DRAIN_NS (100 * 1000000L)    /* how often each subscriber drains */
#define MAX_HZ 10000

enum { SLOT_EMPTY, SLOT_WRITING, SLOT_FULL };

struct ring_slot {
    _Atomic int state;
    int depth;
    uintptr_t pcs[SELFPROF_MAX_FRAMES];
};

__thread volatile sig_atomic_t selfprof_in_unwind __attribute__((tls_model("initial-exec")));

static struct ring_slot ring[RING_SLOTS];
static _Atomic unsigned ring_next;
static atomic_bool armed;           /* the handler records samples */
static _Atomic int in_flight;       /* handlers running now */
static _Atomic uint64_t dropped;    /* samples lost: ring full or re-entrant */

/* ---- signal side ---------------------------------------------------------- */

/* Unwinds the interrupted context into pcs (return-PC form).  unw_init_local2
 * with UNW_INIT_SIGNAL_FRAME starts at the interrupted instruction, so the
 * handler's own frames and the signal trampoline never appear. */
static int unwind_signal_context(void *ucontext, uintptr_t *pcs)
{
    unw_cursor_t cursor;
    if (unw_init_local2(&cursor, (unw_context_t *)ucontext, UNW_INIT_SIGNAL_FRAME) < 0)
        return 0;
    int n = 0;
    do {
        unw_word_t ip;
        if (unw_get_reg(&cursor, UNW_REG_IP, &ip) < 0 || ip == 0)
            break;
        /* The leaf is the exact PC; + 1 puts it in return-PC form, as Go does. */
        pcs[n] = n == 0 ? (uintptr_t)ip + 1 : (uintptr_t)ip;
        n++;
    } while (n < SELFPROF_MAX_FRAMES && unw_step(&cursor) > 0);
    return n;
}

static void record_sample(void *ucontext)
{
    unsigned start = atomic_fetch_add_explicit(&ring_next, 1, memory_order_relaxed);
    for (unsigned i = 0; i < RING_PROBES; i++) {
        struct ring_slot *slot = &ring[(start + i) % RING_SLOTS];
        int expected = SLOT_EMPTY;
        if (atomic_compare_exchange_strong_explicit(&slot->state, &expected, SLOT_WRITING,
                                                    memory_order_acquire,
                                                    memory_order_relaxed)) {
            slot->depth = unwind_signal_context(ucontext, slot->pcs);
            if (slot->depth == 0)   /* libunwind could not start here */
                atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
            atomic_store_explicit(&slot->state, slot->depth > 0 ? SLOT_FULL : SLOT_EMPTY,
                                  memory_order_release);
            return;
        }
    }
    atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
}

static void sigprof_handler(int sig, siginfo_t *info, void *ucontext)
{
    (void)sig;
    (void)info;
    int saved_errno = errno;
    /* in_flight first, armed second: the stopper clears armed, then waits
     * for in_flight to reach 0, so a handler either sees armed clear or is
     * waited for. */
    atomic_fetch_add(&in_flight, 1);
    if (atomic_load(&armed)) {
        if (selfprof_in_unwind) {   /* interrupted the heap sampler's unwind */
            atomic_fetch_add_explicit(&dropped, 1, memory_order_relaxed);
        } else {
            selfprof_in_unwind = 1;
            record_sample(ucontext);
            selfprof_in_unwind = 0;
        }
    }
    atomic_fetch_sub(&in_flight, 1);
    errno = saved_errno;
}

/* ---- unique stacks -------------------------------------------------------- */

struct stack {
    uint64_t hash;
    size_t depth;
    size_t first;     /* index of pcs[0] in stack_table.pcs */
    int64_t count;
};

struct stack_table {
    firn_u64map index;   /* hash (re-probed on collision) -> stacks[] index */
    struct stack *stacks;
    size_t n, cap;
    uintptr_t *pcs;
    size_t n_pcs, cap_pcs;
};

/* v with room for need elements: firn_grow doubling until they fit. */
static void *grow(void *v, size_t *cap, size_t need, size_t elem)
{
    while (*cap < need)
        v = firn_grow(v, *cap, cap, elem, 256);
    return v;
}

/* Counts one sample of pcs[0..depth), whose XXH3 hash is h. */
static void stack_table_add(struct stack_table *t, const uintptr_t *pcs, size_t depth,
                            uint64_t h)
{
    uint64_t key = h;
    for (;;) {
        uint32_t idx;
        uint32_t next = (uint32_t)t->n;
        if (firn_u64map_put(&t->index, key, next, &idx) == 0) {
            struct stack *s = &t->stacks[idx];
            if (s->depth == depth && memcmp(&t->pcs[s->first], pcs, depth * sizeof *pcs) == 0) {
                s->count++;
                return;
            }
            key = key * 0x9E3779B97F4A7C15ull + 1;   /* a collision: probe another key */
            continue;
        }
        t->stacks = grow(t->stacks, &t->cap, t->n + 1, sizeof *t->stacks);
        t->pcs = grow(t->pcs, &t->cap_pcs, t->n_pcs + depth, sizeof *t->pcs);
        memcpy(&t->pcs[t->n_pcs], pcs, depth * sizeof *pcs);
        t->stacks[t->n++] = (struct stack){h, depth, t->n_pcs, 1};
        t->n_pcs += depth;
        return;
    }
}

static void stack_table_free(struct stack_table *t)
{
    firn_u64map_destroy(&t->index);
    free(t->stacks);
    free(t->pcs);
}

/* ---- the profile ---------------------------------------------------------- */

static int64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static pprof_profile *build_profile(const struct stack_table *t, int64_t period,
                                    int64_t time_nanos, int64_t duration_nanos, firn_err *err)
{
    pprof_builder *b = pprof_builder_new(2);
    pprof_builder_sample_type(b, 0, "samples", "count");
    pprof_builder_sample_type(b, 1, "cpu", "nanoseconds");
    pprof_builder_period(b, "cpu", "nanoseconds", period);
    pprof_builder_time(b, time_nanos, duration_nanos);
    selfprof_symbolizer *sym = selfprof_symbolizer_new(b);
    uint32_t locs[SELFPROF_MAX_FRAMES];
    for (size_t i = 0; i < t->n; i++) {
        const struct stack *s = &t->stacks[i];
        for (size_t j = 0; j < s->depth; j++)
            locs[j] = selfprof_symbolizer_location(sym, t->pcs[s->first + j]);
        int64_t values[2] = {s->count, s->count * period};
        pprof_builder_sample(b, locs, s->depth, values, NULL, 0);
    }
    selfprof_symbolizer_free(sym);
    pprof_profile *p = pprof_builder_finish(b, err);
    selfprof_mark_mappings(p);
    return p;
}

/* ---- subscribers and the sampler ------------------------------------------- */

/* One selfprof_cpu call recording. */
struct subscriber {
    struct stack_table table;
    int64_t time_nanos;   /* CLOCK_REALTIME when it joined */
    int64_t start;        /* CLOCK_MONOTONIC when it joined */
    uint64_t dropped_before;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
/* Under lock. */
static struct subscriber *subscribers[SELFPROF_MAX_CPU_PROFILES];
static int n_subscribers;
static int sampler_hz;                  /* while n_subscribers > 0 */
static struct sigaction previous;       /* SIGPROF's disposition before the sampler */
/* n_subscribers, for readers without the lock. */
static _Atomic int profiles_active;

/* Moves every published sample of the ring into the table of every
 * subscriber.  Under lock. */
static void drain_locked(void)
{
    for (size_t i = 0; i < RING_SLOTS; i++) {
        struct ring_slot *slot = &ring[i];
        if (atomic_load_explicit(&slot->state, memory_order_acquire) != SLOT_FULL)
            continue;
        size_t depth = (size_t)slot->depth;
        uint64_t h = XXH3_64bits(slot->pcs, depth * sizeof *slot->pcs);
        for (int s = 0; s < n_subscribers; s++)
            stack_table_add(&subscribers[s]->table, slot->pcs, depth, h);
        atomic_store_explicit(&slot->state, SLOT_EMPTY, memory_order_release);
    }
}

/* Waits until deadline (CLOCK_MONOTONIC ns) or DRAIN_NS, whichever is first. */
static void nap_until(int64_t deadline)
{
    int64_t now = clock_ns(CLOCK_MONOTONIC);
    int64_t until = deadline - now < DRAIN_NS ? deadline : now + DRAIN_NS;
    struct timespec ts = {until / 1000000000, until % 1000000000};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;   /* SIGPROF may land on this thread too */
}

/* libunwind initializes itself on first use; do it here rather than in
 * the first signal handler. */
static void warm_up_unwinder(void)
{
    unw_context_t context;
    unw_cursor_t cursor;
    if (unw_getcontext(&context) == 0 && unw_init_local(&cursor, &context) == 0)
        (void)unw_step(&cursor);
}

/* Installs the handler and arms the timer at hz.  Under lock, with no
 * subscribers (so the ring is empty: the last stop drained it after its
 * handlers were done). */
static int start_sampler_locked(int hz, firn_err *err)
{
    struct itimerval current;
    if (getitimer(ITIMER_PROF, &current) == 0 &&
        (current.it_value.tv_sec || current.it_value.tv_usec))
        /* another profiler in this process owns the timer */
        return firn_errf(err, FIRN_EBUSY, "cpu profiling already in use");
    warm_up_unwinder();
    struct sigaction action = {0};
    action.sa_sigaction = sigprof_handler;
    action.sa_flags = SA_RESTART | SA_SIGINFO;
    sigemptyset(&action.sa_mask);
    long usec = 1000000L / hz;
    struct itimerval timer = {{usec / 1000000, usec % 1000000}, {usec / 1000000, usec % 1000000}};
    atomic_store(&armed, true);
    if (sigaction(SIGPROF, &action, &previous) != 0) {
        int e = errno;
        atomic_store(&armed, false);
        return firn_errf(err, FIRN_EIO, "cpu profile: installing the SIGPROF handler: %s",
                         strerror(e));
    }
    if (setitimer(ITIMER_PROF, &timer, NULL) != 0) {
        int e = errno;
        atomic_store(&armed, false);
        sigaction(SIGPROF, &previous, NULL);
        return firn_errf(err, FIRN_EIO, "cpu profile: starting the timer: %s", strerror(e));
    }
    sampler_hz = hz;
    return 0;
}

/* Disarms the timer, restores SIGPROF and waits for running handlers.
 * Under lock, by the last subscriber. */
static void stop_sampler_locked(void)
{
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_PROF, &off, NULL);
    atomic_store(&armed, false);
    struct sigaction ignore = {0};
    ignore.sa_handler = SIG_IGN;
    sigemptyset(&ignore.sa_mask);
    sigaction(SIGPROF, &ignore, NULL);
    sigaction(SIGPROF, &previous, NULL);
    while (atomic_load(&in_flight) > 0)
        sched_yield();   /* a handler on another CPU finishing its unwind */
}

/* Subscribes sub to samples from now on, starting the sampler if it is the
 * first. */
static int join(struct subscriber *sub, int hz, firn_err *err)
{
    pthread_mutex_lock(&lock);
    int rc = 0;
    if (n_subscribers == SELFPROF_MAX_CPU_PROFILES)
        rc = firn_errf(err, FIRN_EBUSY,
                       "cpu profiling already in use: %d profiles are being recorded, "
                       "the most at once", SELFPROF_MAX_CPU_PROFILES);
    else if (n_subscribers > 0 && hz != sampler_hz)
        rc = firn_errf(err, FIRN_EBUSY, "cpu profiling already in use at %d Hz, not %d",
                       sampler_hz, hz);
    else if (n_subscribers == 0)
        rc = start_sampler_locked(hz, err);
    else
        drain_locked();   /* what is in the ring was taken before sub joined */
    if (rc == 0) {
        sub->time_nanos = clock_ns(CLOCK_REALTIME);
        sub->start = clock_ns(CLOCK_MONOTONIC);
        sub->dropped_before = atomic_load(&dropped);
        subscribers[n_subscribers++] = sub;
        atomic_store(&profiles_active, n_subscribers);
    }
    pthread_mutex_unlock(&lock);
    return rc;
}

static void drain(void)
{
    pthread_mutex_lock(&lock);
    drain_locked();
    pthread_mutex_unlock(&lock);
}

/* Gives sub the samples taken so far and unsubscribes it, stopping the
 * sampler if it was the last.  Returns how long it was subscribed (ns). */
static int64_t leave(struct subscriber *sub)
{
    pthread_mutex_lock(&lock);
    int64_t duration = clock_ns(CLOCK_MONOTONIC) - sub->start;
    if (n_subscribers == 1)
        stop_sampler_locked();
    drain_locked();
    for (int i = 0; i < n_subscribers; i++) {
        if (subscribers[i] == sub) {
            subscribers[i] = subscribers[--n_subscribers];
            break;
        }
    }
    atomic_store(&profiles_active, n_subscribers);
    pthread_mutex_unlock(&lock);
    return duration;
}

pprof_profile *selfprof_cpu(int seconds, int hz, const _Atomic bool *cancel, firn_err *err)
{
    if (seconds < 1 || seconds > SELFPROF_MAX_SECONDS) {
        firn_errf(err, FIRN_EINVAL, "cpu profile: seconds must be 1..%d, not %d",
                  SELFPROF_MAX_SECONDS, seconds);
        return NULL;
    }
    if (hz < 1 || hz > MAX_HZ) {
        firn_errf(err, FIRN_EINVAL, "cpu profile: hz must be 1..%d, not %d", MAX_HZ, hz);
        return NULL;
    }
    struct subscriber sub = {0};
    firn_u64map_init(&sub.table.index, 1024);
    if (join(&sub, hz, err) < 0) {
        stack_table_free(&sub.table);
        return NULL;
    }

    int64_t deadline = sub.start + (int64_t)seconds * 1000000000;
    for (;;) {
        nap_until(deadline);
        drain();
        if (clock_ns(CLOCK_MONOTONIC) >= deadline || (cancel && atomic_load(cancel)))
            break;
    }
    int64_t duration = leave(&sub);

    uint64_t lost = atomic_load(&dropped) - sub.dropped_before;
    if (lost > 0)
        firn_log(FIRN_LOG_DEBUG, "selfprof", "cpu profile dropped samples", "dropped=%llu",
                 (unsigned long long)lost);
    pprof_profile *p = build_profile(&sub.table, 1000000000 / hz, sub.time_nanos, duration, err);
    stack_table_free(&sub.table);
    return p;
}

int selfprof_cpu_active(void)
{
    return atomic_load(&profiles_active);
}
