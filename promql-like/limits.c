/* limits.c -- what one query may hold and how many run at once
 * (--query.max-samples, --query.max-concurrency; pql.h "query limits").
 *
 * The gate is a counting semaphore on a mutex and a condition variable: a
 * query past max_concurrency waits for a slot, as Prometheus's
 * ActiveQueryTracker makes it wait, rather than being refused.  Waiting
 * queries are woken in no particular order.
 *
 * Threads: any; enter and leave may run on different threads.
 */
#include "pql.h"

#include <assert.h>

int pql_limits_init(pql_limits *l, size_t max_samples, size_t max_concurrency, firn_err *err)
{
    *l = (pql_limits){.max_samples = max_samples ? max_samples : PQL_MAX_SAMPLES_DEFAULT,
                      .max_concurrency = max_concurrency ? max_concurrency
                                                         : PQL_MAX_CONCURRENCY_DEFAULT};
    if (pthread_mutex_init(&l->mu, NULL) != 0)
        return firn_errf(err, FIRN_ENOMEM, "query limits: cannot create a mutex");
    if (pthread_cond_init(&l->cv, NULL) != 0) {
        pthread_mutex_destroy(&l->mu);
        return firn_errf(err, FIRN_ENOMEM, "query limits: cannot create a condition variable");
    }
    l->ready = true;
    return 0;
}

void pql_limits_destroy(pql_limits *l)
{
    if (!l || !l->ready)
        return;
    assert(l->running == 0 && l->waiting == 0);
    pthread_cond_destroy(&l->cv);
    pthread_mutex_destroy(&l->mu);
    l->ready = false;
}

size_t pql_limits_samples(const pql_limits *l)
{
    return l ? l->max_samples : PQL_MAX_SAMPLES_DEFAULT;
}

bool pql_limits_enter(pql_limits *l)
{
    if (!l)
        return false;
    pthread_mutex_lock(&l->mu);
    bool waited = l->running >= l->max_concurrency;
    if (waited) {
        l->waiting++;
        l->waited_total++;
        while (l->running >= l->max_concurrency)
            pthread_cond_wait(&l->cv, &l->mu);
        l->waiting--;
    }
    l->running++;
    pthread_mutex_unlock(&l->mu);
    return waited;
}

void pql_limits_leave(pql_limits *l, int rc)
{
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    assert(l->running > 0);
    l->running--;
    if (rc == FIRN_ETOOBIG)
        l->too_many_samples_total++;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
}

void pql_limits_stats(pql_limits *l, pql_limits_counts *out)
{
    *out = (pql_limits_counts){0};
    if (!l)
        return;
    pthread_mutex_lock(&l->mu);
    *out = (pql_limits_counts){.running = l->running, .waiting = l->waiting,
                               .waited_total = l->waited_total,
                               .too_many_samples_total = l->too_many_samples_total};
    pthread_mutex_unlock(&l->mu);
}

void pql_limits_metrics_write(pql_limits *l, firn_buf *b)
{
    pql_limits_counts c;
    pql_limits_stats(l, &c);
    firn_metrics_single(b, "firn_engine_queries", "gauge",
                        "Queries being evaluated or waiting for a slot.",
                        (double)(c.running + c.waiting));
    firn_metrics_single(b, "firn_engine_queries_waiting", "gauge",
                        "Queries waiting for a slot (--query.max-concurrency).",
                        (double)c.waiting);
    firn_metrics_single(b, "firn_engine_queries_concurrent_max", "gauge",
                        "Queries evaluated at once at most (--query.max-concurrency).",
                        (double)(l ? l->max_concurrency : PQL_MAX_CONCURRENCY_DEFAULT));
    firn_metrics_single(b, "firn_engine_query_max_samples", "gauge",
                        "Samples one query may hold (--query.max-samples).",
                        (double)pql_limits_samples(l));
    firn_metrics_single(b, "firn_engine_queries_waited_total", "counter",
                        "Queries that waited for a slot.", (double)c.waited_total);
    firn_metrics_single(b, "firn_engine_queries_too_many_samples_total", "counter",
                        "Queries refused for needing more than --query.max-samples.",
                        (double)c.too_many_samples_total);
}
