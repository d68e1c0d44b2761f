/* test_forward.c -- forward/'s durable queue: the bound (oldest dropped and
 * counted), order, what survives a reopen, moving records when the shard
 * count changes, and deletes of records the bound already dropped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixtures.h"
#include "forward/internal.h"

#define REC 100000   /* bytes of record: 10 of them and their headers pass 1 MiB */

/* Record i: REC bytes, the first 8 holding i, the rest a pattern of it. */
static unsigned char *record(uint64_t i)
{
    static unsigned char buf[REC];
    memcpy(buf, &i, sizeof i);
    for (size_t k = sizeof i; k < REC; k++)
        buf[k] = (unsigned char)(i * 31 + k);
    return buf;
}

typedef struct seen {
    uint64_t ids[64];
    size_t n;
    bool intact;
} seen;

static void visit(void *ctx, const void *data, size_t len)
{
    seen *s = ctx;
    uint64_t id;
    assert_int_equal(len, REC);
    memcpy(&id, data, sizeof id);
    s->intact &= memcmp(data, record(id), REC) == 0;
    s->ids[s->n++] = id;
}

/* The records of shard, oldest first, as "id id ...". */
static void expect_shard(fqueue *q, uint32_t shard, const char *want)
{
    seen s = {.intact = true};
    uint64_t seqs[64];
    pthread_mutex_lock(&q->mu);
    long n = fq_peek_locked(q, shard, 64, SIZE_MAX, visit, &s, seqs);
    pthread_mutex_unlock(&q->mu);
    assert_true(n >= 0);
    assert_int_equal((size_t)n, s.n);
    assert_true(s.intact);
    char got[512] = "";
    for (size_t i = 0; i < s.n; i++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%llu", i ? " " : "",
                 (unsigned long long)s.ids[i]);
    if (strcmp(got, want) != 0)
        fail_msg("shard %u: got \"%s\", want \"%s\"", shard, got, want);
}

static void append_ok(fqueue *q, uint32_t shard, uint64_t id, uint64_t want_dropped)
{
    firn_err err = {0};
    uint64_t dropped = 99;
    if (fq_append(q, shard, record(id), REC, &dropped, &err) != 0)
        fail_msg("append %llu: %s", (unsigned long long)id, err.msg);
    assert_int_equal(dropped, want_dropped);
}

static void test_queue(void **state)
{
    (void)state;
    char *dir = temp_dir("forward");
    char qdir[600];
    snprintf(qdir, sizeof qdir, "%s/q", dir);
    fqueue q;
    firn_err err = {0};
    const uint64_t max = 1u << 20;
    assert_int_equal(fq_open(&q, qdir, max, 2, &err), 0);
    assert_int_equal(q.count, 0);

    /* ten fit (10 * (REC + 8) <= 1 MiB); each later one drops the oldest,
     * whichever shard holds it */
    for (uint64_t i = 1; i <= 10; i++)
        append_ok(&q, (uint32_t)(i % 2), i, 0);
    assert_int_equal(q.count, 10);
    assert_int_equal(q.bytes, 10 * (REC + FWD_RECORD_HEADER));
    append_ok(&q, 0, 11, 1);   /* drops 1 (shard 1) */
    append_ok(&q, 0, 12, 1);   /* drops 2 (shard 0) */
    assert_int_equal(q.count, 10);
    assert_true(q.bytes <= max);
    expect_shard(&q, 0, "4 6 8 10 11 12");
    expect_shard(&q, 1, "3 5 7 9");
    assert_int_equal(q.pending[0], 6);
    assert_int_equal(q.pending[1], 4);

    /* a record over the bound alone is refused, nothing dropped for it */
    uint64_t dropped = 0;
    static unsigned char big[(1u << 20) + 1];
    assert_int_equal(fq_append(&q, 0, big, sizeof big, &dropped, &err), FIRN_ETOOBIG);
    assert_int_equal(q.count, 10);

    /* a delete of records the bound dropped meanwhile skips them */
    uint64_t seqs[8];
    seen s = {.intact = true};
    pthread_mutex_lock(&q.mu);
    assert_int_equal(fq_peek_locked(&q, 1, 2, SIZE_MAX, visit, &s, seqs), 2);   /* 3, 5 */
    pthread_mutex_unlock(&q.mu);
    append_ok(&q, 1, 13, 1);   /* drops 3 */
    size_t deleted = 0;
    pthread_mutex_lock(&q.mu);
    assert_int_equal(fq_delete_locked(&q, 1, seqs, 2, &deleted), 0);
    pthread_mutex_unlock(&q.mu);
    assert_int_equal(deleted, 1);
    expect_shard(&q, 1, "7 9 13");
    assert_int_equal(q.count, 9);

    /* closed and opened again: the same records, counts and order; the
     * sequence goes on */
    fq_close(&q);
    assert_int_equal(fq_open(&q, qdir, max, 2, &err), 0);
    assert_int_equal(q.count, 9);
    assert_int_equal(q.bytes, 9 * (REC + FWD_RECORD_HEADER));
    expect_shard(&q, 0, "4 6 8 10 11 12");
    expect_shard(&q, 1, "7 9 13");
    append_ok(&q, 1, 14, 0);
    expect_shard(&q, 1, "7 9 13 14");

    /* fewer shards: shard 1's records move to shard 0, in age order */
    fq_close(&q);
    assert_int_equal(fq_open(&q, qdir, max, 1, &err), 0);
    assert_int_equal(q.count, 10);
    assert_int_equal(q.pending[0], 10);
    expect_shard(&q, 0, "4 6 7 8 9 10 11 12 13 14");
    /* and back to three through fq_configure: nothing moves */
    assert_int_equal(fq_configure(&q, 2 * max, 3, &err), 0);
    assert_int_equal(q.pending[0], 10);
    append_ok(&q, 2, 15, 0);   /* room under the larger bound */
    assert_int_equal(q.count, 11);
    pthread_mutex_lock(&q.mu);
    assert_true(fq_queue_oldest_ms_locked(&q) > 0);
    assert_int_equal(fq_oldest_ms_locked(&q, 1), 0);
    pthread_mutex_unlock(&q.mu);
    fq_close(&q);
    remove_tree(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
