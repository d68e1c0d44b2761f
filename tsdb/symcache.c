/* symcache.c -- the store's cache of symbol records, shared by readers.
 *
 * Rebuilding a merged profile (read.c) reads every stack, location,
 * function, mapping and string it names from `symbols`, and a flame graph
 * asked again reads them all again: LMDB's lookups were about half of a
 * rebuild.  A committed symbol's record never changes (ids are handed out
 * once per partition and never rewritten; retention deletes a partition
 * whole), so a record read under any snapshot is the record of that
 * (partition, kind, id) for every later snapshot, and readers can share
 * copies.  What a snapshot does not hold yet (ids added by a later commit)
 * is simply not in the cache: a miss reads the store.
 *
 * One mutex guards a chained hash table and an LRU list; the bytes held
 * (records and their entries) stay under a fixed cap, least recently used
 * first out.  Retention raises a floor: records of partitions below it are
 * dropped and never added again, also by a reader whose older snapshot
 * still sees them. */
#include "tsdb/symcache.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "model/alloc.h"

#define SC_RECORD_MAX (64u << 10)

struct sc_entry {
    struct sc_entry *chain;          /* next in the bucket */
    struct sc_entry *prev, *next;    /* LRU list: head most recent */
    uint32_t partition, id;
    uint32_t len;
    uint8_t kind;
    unsigned char data[];
};

/* What an entry is charged: its record, its header and its bucket slot. */
static size_t sc_cost(size_t len)
{
    return sizeof(struct sc_entry) + len + sizeof(struct sc_entry *);
}

static size_t sc_bucket(const tsdb_symcache *c, uint32_t partition, uint8_t kind, uint32_t id)
{
    uint64_t k = ((uint64_t)partition << 35) ^ ((uint64_t)kind << 32) ^ id;
    k *= 0x9E3779B97F4A7C15ull;   /* Fibonacci hashing: the top bits spread */
    return (size_t)(k >> (64 - c->bucket_bits));
}

tsdb_symcache *tsdb_symcache_new(size_t max_bytes)
{
    tsdb_symcache *c = firn_xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->mu, NULL);
    c->max_bytes = max_bytes;
    c->bucket_bits = 10;
    c->n_buckets = (size_t)1 << c->bucket_bits;
    c->buckets = firn_xcalloc(c->n_buckets, sizeof *c->buckets);
    return c;
}

void tsdb_symcache_free(tsdb_symcache *c)
{
    if (!c)
        return;
    for (struct sc_entry *e = c->head, *next; e; e = next) {
        next = e->next;
        free(e);
    }
    free(c->buckets);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static struct sc_entry **sc_find(tsdb_symcache *c, uint32_t partition, uint8_t kind, uint32_t id)
{
    struct sc_entry **p = &c->buckets[sc_bucket(c, partition, kind, id)];
    while (*p && !((*p)->id == id && (*p)->partition == partition && (*p)->kind == kind))
        p = &(*p)->chain;
    return p;
}

static void lru_unlink(tsdb_symcache *c, struct sc_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
}

static void lru_push(tsdb_symcache *c, struct sc_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head)
        c->head->prev = e;
    else
        c->tail = e;
    c->head = e;
}

/* Unlinks e from its bucket and the list and frees it. */
static void sc_remove(tsdb_symcache *c, struct sc_entry *e)
{
    struct sc_entry **p = sc_find(c, e->partition, e->kind, e->id);
    assert(*p == e);
    *p = e->chain;
    lru_unlink(c, e);
    c->bytes -= sc_cost(e->len);
    c->entries--;
    free(e);
}

bool tsdb_symcache_get(tsdb_symcache *c, uint32_t partition, uint8_t kind, uint32_t id,
                       firn_buf *out)
{
    pthread_mutex_lock(&c->mu);
    struct sc_entry *e = *sc_find(c, partition, kind, id);
    if (e) {
        if (c->head != e) {
            lru_unlink(c, e);
            lru_push(c, e);
        }
        out->len = 0;
        firn_buf_append(out, e->data, e->len);
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->mu);
    return e != NULL;
}

static void sc_grow(tsdb_symcache *c)
{
    size_t n = c->n_buckets * 2;
    struct sc_entry **b = firn_xcalloc(n, sizeof *b);
    struct sc_entry **old = c->buckets;
    size_t n_old = c->n_buckets;
    c->buckets = b;
    c->n_buckets = n;
    c->bucket_bits++;
    for (size_t i = 0; i < n_old; i++)
        for (struct sc_entry *e = old[i], *next; e; e = next) {
            next = e->chain;
            size_t h = sc_bucket(c, e->partition, e->kind, e->id);
            e->chain = b[h];
            b[h] = e;
        }
    free(old);
}

void tsdb_symcache_put(tsdb_symcache *c, uint32_t partition, uint8_t kind, uint32_t id,
                       const void *data, size_t len)
{
    /* a large record (a deep stack's, rare) would push out many small ones */
    if (len > SC_RECORD_MAX || sc_cost(len) > c->max_bytes / 4)
        return;
    struct sc_entry *e = firn_xmalloc(sizeof *e + len);
    e->partition = partition;
    e->id = id;
    e->kind = kind;
    e->len = (uint32_t)len;
    memcpy(e->data, data, len);
    pthread_mutex_lock(&c->mu);
    struct sc_entry **slot = sc_find(c, partition, kind, id);
    if (partition < c->floor || *slot) {   /* dropped, or another reader was first */
        pthread_mutex_unlock(&c->mu);
        free(e);
        return;
    }
    e->chain = NULL;
    *slot = e;
    lru_push(c, e);
    c->bytes += sc_cost(len);
    c->entries++;
    while (c->bytes > c->max_bytes) {
        assert(c->tail && c->tail != e);
        sc_remove(c, c->tail);
        c->evictions++;
    }
    if (c->entries > c->n_buckets)
        sc_grow(c);
    pthread_mutex_unlock(&c->mu);
}

void tsdb_symcache_drop_below(tsdb_symcache *c, uint32_t first_live)
{
    pthread_mutex_lock(&c->mu);
    if (first_live > c->floor) {
        c->floor = first_live;
        for (struct sc_entry *e = c->head, *next; e; e = next) {
            next = e->next;
            if (e->partition < first_live)
                sc_remove(c, e);
        }
    }
    pthread_mutex_unlock(&c->mu);
}

void tsdb_symcache_stats(tsdb_symcache *c, tsdb_symcache_stat *s)
{
    pthread_mutex_lock(&c->mu);
    *s = (tsdb_symcache_stat){.entries = c->entries, .bytes = c->bytes, .hits = c->hits,
                              .misses = c->misses, .evictions = c->evictions};
    pthread_mutex_unlock(&c->mu);
}
