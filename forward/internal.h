/* internal.h -- forward/'s durable queue (queue.c), shared with forward.c.
 *
 * The queue of one endpoint is an LMDB environment of its own (one file,
 * synced at every commit, so a record once appended survives kill -9) with
 * one database, "records":
 *   key   shard (u32, big-endian) . sequence (u64, big-endian)
 *   value enqueue time (i64 ms, little-endian) . the record's bytes
 * Sequences grow by one per record across shards (the next one is the
 * highest present + 1 at open), so keys sort by shard and then by age, and
 * the oldest record of the queue is the smallest sequence among the
 * shards' first keys.  bytes and count are the values' sizes and number,
 * kept in memory (summed at open).
 *
 * Locks: write transactions happen under wmu, read transactions under mu;
 * wmu is always taken before mu.  The counters change under both (a
 * writer holds wmu throughout, so it may read them under wmu alone); the
 * map is resized under both, when no transaction can be open.  Appends
 * commit in groups: appenders queue their records under mu, and one of
 * them (the leader) writes every queued record in one transaction, so
 * concurrent ingest pays one sync per group rather than per profile.
 */
#ifndef FIRN_FORWARD_INTERNAL_H
#define FIRN_FORWARD_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "model/model.h"

#define FWD_SHARDS_MAX 64
#define FWD_RECORD_HEADER 8

typedef struct fq_append_req fq_append_req;

typedef struct fqueue {
    MDB_env *env;
    MDB_dbi dbi;
    pthread_mutex_t wmu;       /* write transactions */
    pthread_mutex_t mu;        /* read transactions, counters, the appenders' list */
    pthread_cond_t cond;       /* signalled on append and on stop */
    pthread_cond_t appended;   /* signalled when a group is committed */
    fq_append_req *waiting;    /* records queued for the next group, and its tail */
    fq_append_req **waiting_tail;
    bool leading;              /* an appender is committing a group */
    uint64_t max_bytes;
    uint64_t next_seq;
    uint64_t bytes, count;
    uint64_t pending[FWD_SHARDS_MAX];   /* records per shard */
    uint32_t shards;
} fqueue;

/* Open (creating dir) and sum what is there; records of shards at or past
 * shards are moved to shard % shards, keeping their sequence. */
int fq_open(fqueue *q, const char *dir, uint64_t max_bytes, uint32_t shards, firn_err *err);
void fq_close(fqueue *q);
/* New bound and shard count (senders stopped, no appender). */
int fq_configure(fqueue *q, uint64_t max_bytes, uint32_t shards, firn_err *err);

/* Append a record to shard, returning once it is committed (with others
 * queued meanwhile); the oldest records are dropped first to keep bytes
 * within max_bytes, *dropped says how many.  FIRN_ETOOBIG for a record
 * over the bound alone, FIRN_EIO.  Called without mu. */
int fq_append(fqueue *q, uint32_t shard, const void *data, size_t len, uint64_t *dropped,
              firn_err *err);

/* Called with mu held.  The enqueue time of shard's oldest record (0 when
 * empty), and of the queue's (for the lag). */
int64_t fq_oldest_ms_locked(fqueue *q, uint32_t shard);
int64_t fq_queue_oldest_ms_locked(fqueue *q);
/* Called with mu held: shard's oldest records, at most max_n and, past the
 * first, max_bytes of record, each passed to fn (which copies what it
 * needs); their sequences into seqs.  Returns how many, or negative. */
typedef void (*fq_visit_fn)(void *ctx, const void *data, size_t len);
long fq_peek_locked(fqueue *q, uint32_t shard, size_t max_n, size_t max_bytes, fq_visit_fn fn,
                    void *ctx, uint64_t *seqs);
/* Called without mu: delete those records (ones already dropped are
 * skipped); *deleted says how many were there.  0 or an LMDB error. */
int fq_delete(fqueue *q, uint32_t shard, const uint64_t *seqs, size_t n, size_t *deleted);

#endif
