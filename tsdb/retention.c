/* retention.c -- deleting what is older than the retention.
 *
 * Order matters for readers of a half-done pass and for a crash between
 * passes: blocks go first, then series left without blocks, then symbol
 * partitions that lie wholly before the cutoff (their blocks are gone by
 * then, so nothing refers to them).  Each pass is one transaction with a
 * budget of deletions, so a large backlog is cleared over several passes
 * between which appends are committed.
 */
#include "internal.h"

#include <string.h>

#define PASS_BUDGET 200000   /* deletions per transaction */

int tsdb_series_delete(tsdb *db, MDB_txn *txn, uint64_t id, const tsdb_series *s, firn_err *err)
{
    unsigned char pk[POSTING_KEY_MAX + 32];
    int rc;
    for (size_t i = 0; i < s->n_labels; i++) {
        bool is_long;
        size_t len = tsdb_posting_key(pk, s->labels[i].name, s->labels[i].value, &is_long);
        MDB_val k = {len, pk}, v = {sizeof id, &id};
        rc = mdb_del(txn, db->dbi_postings, &k, &v);
        if (rc && rc != MDB_NOTFOUND)
            goto fail;
        if (is_long) {
            MDB_val probe;
            if (mdb_get(txn, db->dbi_postings, &k, &probe) == MDB_NOTFOUND) {
                rc = mdb_del(txn, db->dbi_long_values, &k, NULL);
                if (rc && rc != MDB_NOTFOUND)
                    goto fail;
            }
        }
    }
    pprof_hash h = tsdb_labels_hash(s->labels, s->n_labels);
    unsigned char hk[16];
    tsdb_be64_put(hk, h.hi);
    tsdb_be64_put(hk + 8, h.lo);
    MDB_val k = {sizeof hk, hk};
    rc = mdb_del(txn, db->dbi_series_idx, &k, NULL);
    if (rc && rc != MDB_NOTFOUND)
        goto fail;
    return 0;
fail:
    firn_errf(err, FIRN_EIO, "deleting series %llu: %s", (unsigned long long)id,
              tsdb_strerror(rc));
    return rc;
}

/* Deletes the expired blocks (or float samples) of one series; returns the
 * LMDB code.  *empty tells whether the series has nothing left, else
 * *new_min is its oldest timestamp. */
static int expire_blocks(tsdb *db, MDB_txn *txn, uint64_t id, bool floats, int64_t cutoff,
                         long *budget, uint64_t *deleted, bool *empty, int64_t *new_min)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, floats ? db->dbi_floats : db->dbi_samples, &c);
    if (rc)
        return rc;
    unsigned char kb[SAMPLE_KEY_LEN];
    tsdb_sample_key(kb, id, 0);
    MDB_val k = {sizeof kb, kb}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == SAMPLE_KEY_LEN && tsdb_be64_get(k.mv_data) == id) {
        int64_t ts = (int64_t)tsdb_be64_get((unsigned char *)k.mv_data + 8);
        if (ts >= cutoff || *budget <= 0)
            break;
        unsigned char key[SAMPLE_KEY_LEN];
        memcpy(key, k.mv_data, sizeof key);
        MDB_val tk = {sizeof key, key};
        rc = floats ? 0 : mdb_del(txn, db->dbi_totals, &tk, NULL);
        if ((rc && rc != MDB_NOTFOUND) || (rc = mdb_cursor_del(c, 0)))
            break;
        (*deleted)++;
        (*budget)--;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    if (rc == 0 || rc == MDB_NOTFOUND) {
        *empty = !(rc == 0 && k.mv_size == SAMPLE_KEY_LEN && tsdb_be64_get(k.mv_data) == id);
        if (!*empty)
            *new_min = (int64_t)tsdb_be64_get((unsigned char *)k.mv_data + 8);
        /* the profiles deleted are exactly those before the first left */
        rc = floats ? 0 : tsdb_chunk_trim(db, txn, id, *empty ? INT64_MAX : *new_min);
    }
    mdb_cursor_close(c);
    return rc;
}

/* Deletes every key of db whose first four bytes (a partition) are below
 * first_live. */
static int drop_partitions(MDB_txn *txn, MDB_dbi dbi, uint32_t first_live, long *budget,
                           bool *more)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc)
        return rc;
    MDB_val k, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
    while (rc == 0 && k.mv_size >= 4 && tsdb_be32_get(k.mv_data) < first_live) {
        if (*budget <= 0) {
            *more = true;
            break;
        }
        if ((rc = mdb_cursor_del(c, 0)))
            break;
        (*budget)--;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int tsdb_retention_pass(tsdb *db, MDB_txn *txn, int64_t now_ms, uint64_t *deleted_blocks,
                   uint64_t *deleted_series, bool *more, uint32_t *first_live_partition,
                   firn_err *err)
{
    int64_t cutoff = now_ms - db->opts.retention_ms;
    long budget = PASS_BUDGET;
    *more = false;
    if (cutoff <= 0)
        return 0;
    firn_arena *arena = firn_arena_new(0);
    MDB_cursor *sc;
    int rc = mdb_cursor_open(txn, db->dbi_series, &sc);
    if (rc) {
        firn_arena_free(arena);
        firn_errf(err, FIRN_EIO, "retention: %s", tsdb_strerror(rc));
        return rc;
    }
    MDB_val k, v;
    rc = mdb_cursor_get(sc, &k, &v, MDB_FIRST);
    while (rc == 0) {
        if (budget <= 0) {
            *more = true;
            break;
        }
        tsdb_series s = {.id = k.mv_size == 8 ? tsdb_be64_get(k.mv_data) : 0};
        struct cur c = {v.mv_data, (const unsigned char *)v.mv_data + v.mv_size, false};
        int64_t min_ts = tsdb_cur_zigzag(&c), max_ts = tsdb_cur_zigzag(&c);
        if (c.bad) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (min_ts < cutoff) {
            bool empty = false;
            int64_t new_min = min_ts;
            /* retention counts float samples as blocks: one stored value each */
            bool floats = tsdb_series_record_floats(&v);
            if ((rc = expire_blocks(db, txn, s.id, floats, cutoff, &budget, deleted_blocks,
                                    &empty, &new_min)))
                break;
            /* rollups of buckets that reach before the cutoff no longer equal
             * the profiles left: gone in the same commit */
            if (!floats && (rc = tsdb_rollup_expire(db, txn, s.id, cutoff, empty, &budget)))
                break;
            if (tsdb_series_decode(&v, arena, &s, err) < 0) {
                rc = MDB_CORRUPTED;
                break;
            }
            if (empty) {
                if ((rc = tsdb_series_delete(db, txn, s.id, &s, err)) || (rc = mdb_cursor_del(sc, 0)))
                    break;
                (*deleted_series)++;
                /* after a delete, NEXT yields the record that followed it */
                rc = mdb_cursor_get(sc, &k, &v, MDB_NEXT);
                continue;
            }
            firn_buf b = {0};
            tsdb_series_encode(&b, s.labels, s.n_labels, new_min, max_ts, s.floats);
            MDB_val nv = {b.len, b.data};
            rc = mdb_cursor_put(sc, &k, &nv, MDB_CURRENT);
            firn_buf_free(&b);
            if (rc)
                break;
        }
        rc = mdb_cursor_get(sc, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(sc);
    firn_arena_free(arena);
    if (rc && rc != MDB_NOTFOUND) {
        if (!err || !err->code)
            firn_errf(err, FIRN_EIO, "retention: %s", tsdb_strerror(rc));
        return rc;
    }
    if (*more)
        return 0;
    /* Every block before cutoff is gone: drop partitions wholly before it. */
    uint32_t first_live = (uint32_t)(cutoff / db->partition_ms);
    if (first_live > *first_live_partition)
        *first_live_partition = first_live;
    if ((rc = drop_partitions(txn, db->dbi_symbols, first_live, &budget, more)) ||
        (rc = drop_partitions(txn, db->dbi_symbol_idx, first_live, &budget, more))) {
        firn_errf(err, FIRN_EIO, "retention: %s", tsdb_strerror(rc));
        return rc;
    }
    return 0;
}
