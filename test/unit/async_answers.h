/* async_answers.h -- collecting the answers of tsdb_append_async in the unit
 * tests: each append's status and error by index, and a wait for all of
 * them (on a condition variable, never a sleep).  Include after cmocka.h. */
#ifndef FIRN_TEST_ASYNC_ANSWERS_H
#define FIRN_TEST_ASYNC_ANSWERS_H

#include <pthread.h>
#include <stdbool.h>

#include "tsdb/tsdb.h"

#define ASYNC_ANSWERS_MAX 256

typedef struct async_answers {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    size_t answered;
    int status[ASYNC_ANSWERS_MAX];
    bool got[ASYNC_ANSWERS_MAX];
    firn_err err[ASYNC_ANSWERS_MAX];
} async_answers;

/* What tsdb_append_async is given as ctx for append i of a. */
typedef struct async_slot {
    async_answers *a;
    size_t i;
} async_slot;

static inline void async_answers_init(async_answers *a)
{
    memset(a, 0, sizeof *a);
    pthread_mutex_init(&a->mu, NULL);
    pthread_cond_init(&a->cond, NULL);
}

static inline void async_answers_destroy(async_answers *a)
{
    pthread_mutex_destroy(&a->mu);
    pthread_cond_destroy(&a->cond);
}

/* tsdb_append_done_fn: records the answer; a second answer for one append
 * is recorded as a failure of the test (status 1). */
static inline void async_answer(void *ctx, int status, const firn_err *err, bool duplicate)
{
    (void)duplicate;
    async_slot *s = ctx;
    async_answers *a = s->a;
    pthread_mutex_lock(&a->mu);
    a->status[s->i] = a->got[s->i] ? 1 : status;
    a->got[s->i] = true;
    if (err)
        a->err[s->i] = *err;
    a->answered++;
    pthread_cond_broadcast(&a->cond);
    pthread_mutex_unlock(&a->mu);
}

/* Waits until n answers came (tsdb_close would also wait for the writer
 * to answer every queued append). */
static inline void async_answers_wait(async_answers *a, size_t n)
{
    pthread_mutex_lock(&a->mu);
    while (a->answered < n)
        pthread_cond_wait(&a->cond, &a->mu);
    pthread_mutex_unlock(&a->mu);
}

#endif
