/* pushbuf.c -- the profiles waiting to be pushed to firn: a FIFO bounded by
 * count and bytes.  Invariant: len <= max_items and bytes <= max_bytes at
 * every unlock; what would break it is dropped, oldest first, and counted,
 * so the agent's memory stays bounded however long firn is away, and the
 * sampling loop never waits for the network. */
#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"

struct agent_pushbuf {
    pthread_mutex_t mu;
    pthread_cond_t cond;
    agent_push_item *ring;    /* max_items slots */
    size_t head, len;
    size_t max_items, max_bytes, bytes;
    uint64_t dropped;
    bool closed;
};

static size_t item_bytes(const agent_push_item *it)
{
    return it->body_len + (it->query ? strlen(it->query) : 0);
}

void agent_push_item_free(agent_push_item *it)
{
    free(it->body);
    free(it->query);
    memset(it, 0, sizeof *it);
}

agent_pushbuf *agent_pushbuf_new(size_t max_items, size_t max_bytes)
{
    if (max_items == 0 || max_bytes == 0)
        return NULL;
    agent_pushbuf *q = firn_xcalloc(1, sizeof *q);
    q->ring = firn_xcalloc(max_items, sizeof *q->ring);
    q->max_items = max_items;
    q->max_bytes = max_bytes;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, NULL);
    return q;
}

void agent_pushbuf_free(agent_pushbuf *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < q->len; i++)
        agent_push_item_free(&q->ring[(q->head + i) % q->max_items]);
    free(q->ring);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cond);
    free(q);
}

/* Drop the oldest item; with mu held and len > 0. */
static void drop_oldest(agent_pushbuf *q)
{
    assert(q->len > 0);
    agent_push_item *it = &q->ring[q->head];
    assert(q->bytes >= item_bytes(it));
    q->bytes -= item_bytes(it);
    agent_push_item_free(it);
    q->head = (q->head + 1) % q->max_items;
    q->len--;
    q->dropped++;
}

/* Put it at the tail; with mu held.  Returns how many items were dropped. */
static size_t put_locked(agent_pushbuf *q, agent_push_item *it)
{
    size_t size = item_bytes(it);
    if (size > q->max_bytes) {
        q->dropped++;
        agent_push_item_free(it);
        return 1;
    }
    size_t dropped = 0;
    while (q->len > 0 && (q->len == q->max_items || q->bytes + size > q->max_bytes)) {
        drop_oldest(q);
        dropped++;
    }
    q->ring[(q->head + q->len) % q->max_items] = *it;
    q->len++;
    q->bytes += size;
    assert(q->len <= q->max_items && q->bytes <= q->max_bytes);
    memset(it, 0, sizeof *it);
    return dropped;
}

size_t agent_pushbuf_put(agent_pushbuf *q, agent_push_item *it)
{
    return agent_pushbuf_put_many(q, it, 1);
}

size_t agent_pushbuf_put_many(agent_pushbuf *q, agent_push_item *items, size_t n)
{
    size_t dropped = 0;
    pthread_mutex_lock(&q->mu);
    for (size_t i = 0; i < n; i++)
        dropped += put_locked(q, &items[i]);
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mu);
    return dropped;
}

size_t agent_pushbuf_requeue(agent_pushbuf *q, agent_push_item *it)
{
    size_t size = item_bytes(it);
    pthread_mutex_lock(&q->mu);
    if (q->len == q->max_items || q->bytes + size > q->max_bytes) {
        /* newer profiles filled the buffer meanwhile: this one is the oldest */
        q->dropped++;
        pthread_mutex_unlock(&q->mu);
        agent_push_item_free(it);
        return 1;
    }
    q->head = (q->head + q->max_items - 1) % q->max_items;
    q->ring[q->head] = *it;
    q->len++;
    q->bytes += size;
    assert(q->len <= q->max_items && q->bytes <= q->max_bytes);
    memset(it, 0, sizeof *it);
    pthread_cond_signal(&q->cond);
    pthread_mutex_unlock(&q->mu);
    return 0;
}

bool agent_pushbuf_take(agent_pushbuf *q, agent_push_item *it, int64_t timeout_ms)
{
    struct timespec deadline = firn_deadline_ms(timeout_ms);
    pthread_mutex_lock(&q->mu);
    while (q->len == 0 && !q->closed)
        if (pthread_cond_timedwait(&q->cond, &q->mu, &deadline) != 0)
            break;
    bool got = q->len > 0;
    if (got) {
        *it = q->ring[q->head];
        memset(&q->ring[q->head], 0, sizeof *it);
        q->head = (q->head + 1) % q->max_items;
        q->len--;
        assert(q->bytes >= item_bytes(it));
        q->bytes -= item_bytes(it);
    }
    pthread_mutex_unlock(&q->mu);
    return got;
}

void agent_pushbuf_close(agent_pushbuf *q)
{
    pthread_mutex_lock(&q->mu);
    q->closed = true;
    pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
}

size_t agent_pushbuf_len(agent_pushbuf *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->len;
    pthread_mutex_unlock(&q->mu);
    return n;
}

size_t agent_pushbuf_bytes(agent_pushbuf *q)
{
    pthread_mutex_lock(&q->mu);
    size_t n = q->bytes;
    pthread_mutex_unlock(&q->mu);
    return n;
}

uint64_t agent_pushbuf_dropped(agent_pushbuf *q)
{
    pthread_mutex_lock(&q->mu);
    uint64_t n = q->dropped;
    pthread_mutex_unlock(&q->mu);
    return n;
}
