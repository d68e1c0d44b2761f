/* symcache.h -- the store's cache of symbol records shared by its readers
 * (symcache.c says what may be cached and why). */
#ifndef FIRN_TSDB_SYMCACHE_H
#define FIRN_TSDB_SYMCACHE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/buf.h"
#include "tsdb/tsdb.h"

struct sc_entry;

typedef struct tsdb_symcache {
    pthread_mutex_t mu;
    struct sc_entry **buckets;
    size_t n_buckets;                /* 2^bucket_bits */
    unsigned bucket_bits;
    struct sc_entry *head, *tail;    /* LRU list */
    size_t max_bytes, bytes;
    uint32_t floor;                  /* partitions below it are gone */
    uint64_t entries, hits, misses, evictions;
} tsdb_symcache;

tsdb_symcache *tsdb_symcache_new(size_t max_bytes);
void tsdb_symcache_free(tsdb_symcache *c);
/* Copies the record of (partition, kind, id) into out (replacing what it
 * held) when cached. */
bool tsdb_symcache_get(tsdb_symcache *c, uint32_t partition, uint8_t kind, uint32_t id,
                       firn_buf *out);
/* Keeps a copy of a committed record read from the store. */
void tsdb_symcache_put(tsdb_symcache *c, uint32_t partition, uint8_t kind, uint32_t id,
                       const void *data, size_t len);
/* Retention deleted every partition below first_live: their records go,
 * and are not taken again. */
void tsdb_symcache_drop_below(tsdb_symcache *c, uint32_t first_live);
void tsdb_symcache_stats(tsdb_symcache *c, tsdb_symcache_stat *s);

#endif
