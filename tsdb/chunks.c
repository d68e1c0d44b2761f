/* chunks.c -- per-series chunks of totals: the (time, duration, period,
 * total) of up to CHUNK_MAX_POINTS consecutive profiles of one series under
 * one key, so that a metric query reads a series' points with one cursor
 * step per chunk instead of one per profile (a 1,000-series x 360-point
 * range query spent most of its time in those steps: docs/ARCHITECTURE.md,
 * "At fleet scale").
 *
 * A chunk's key is (series, timestamp of its first point); chunks of a
 * series do not overlap.  They are written in the append's transaction,
 * trimmed by retention in its transaction, and built from the per-profile
 * totals when an older store is upgraded, so they always hold exactly the
 * series' stored profiles.
 *
 * Value: one byte CHUNK_VERSION; varint n; then per point, oldest first,
 * zigzag varints of: its time step (the difference to the previous
 * point's timestamp; the first point's is 0, its timestamp the key's) minus
 * the previous point's time step, and the differences to the previous
 * point of duration, period and total (the first against 0).  Differences
 * are taken modulo 2^64, so every int64 round-trips.  Scrapes at a fixed
 * interval with steady durations make most of them one byte.
 */
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#define CHUNK_VERSION 1
/* Bounds what one append rewrites (a chunk is decoded and encoded whole)
 * and keeps a chunk of steady points (about 6 bytes each) under LMDB's
 * overflow-page threshold. */
#define CHUNK_MAX_POINTS 240
#define CHUNK_POINT_MAX_BYTES 40   /* four varints of at most 10 bytes */
#define CHUNK_MAX_BYTES (2 + 10 + CHUNK_MAX_POINTS * CHUNK_POINT_MAX_BYTES)

struct chunk_point {
    int64_t ts, duration, period, total;
};

static uint64_t zz(int64_t v)
{
    return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static size_t put_varint(unsigned char *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (unsigned char)v;
    return n;
}

static int64_t diff(int64_t a, int64_t b)
{
    return (int64_t)((uint64_t)a - (uint64_t)b);
}

static int64_t undiff(int64_t prev, int64_t d)
{
    return (int64_t)((uint64_t)prev + (uint64_t)d);
}

/* Encodes n points (1..CHUNK_MAX_POINTS, ascending) into out; returns the
 * length. */
static size_t chunk_encode(unsigned char out[CHUNK_MAX_BYTES], const struct chunk_point *p,
                           size_t n)
{
    assert(n >= 1 && n <= CHUNK_MAX_POINTS);
    size_t len = 0;
    out[len++] = CHUNK_VERSION;
    len += put_varint(out + len, n);
    struct chunk_point prev = {p[0].ts, 0, 0, 0};
    int64_t step = 0;   /* the previous point's time step */
    for (size_t i = 0; i < n; i++) {
        assert(i == 0 || p[i].ts > p[i - 1].ts);
        int64_t d = diff(p[i].ts, prev.ts);
        len += put_varint(out + len, zz(diff(d, step)));
        step = d;
        len += put_varint(out + len, zz(diff(p[i].duration, prev.duration)));
        len += put_varint(out + len, zz(diff(p[i].period, prev.period)));
        len += put_varint(out + len, zz(diff(p[i].total, prev.total)));
        prev = p[i];
    }
    assert(len <= CHUNK_MAX_BYTES);
    return len;
}

/* A zigzag varint at *p (before end), or *bad set: decoding chunks is most
 * of a range query's read, so this one is inlined. */
static inline int64_t get_zz(const unsigned char **p, const unsigned char *end, bool *bad)
{
    uint64_t v = tsdb_varint_at(p, end, bad);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

/* Decodes the chunk stored under key timestamp first_ts into p (room for
 * CHUNK_MAX_POINTS); -1 on a malformed chunk. */
static int chunk_decode(const MDB_val *v, int64_t first_ts, struct chunk_point *p, size_t *n)
{
    struct cur c = {v->mv_data, (const unsigned char *)v->mv_data + v->mv_size, false};
    if (v->mv_size < 2 || *c.p++ != CHUNK_VERSION)
        return -1;
    uint64_t count = tsdb_cur_varint(&c);
    if (c.bad || count < 1 || count > CHUNK_MAX_POINTS)
        return -1;
    const unsigned char *q = c.p;
    bool bad = false;
    struct chunk_point prev = {first_ts, 0, 0, 0};
    int64_t step = 0;
    for (size_t i = 0; i < count; i++) {
        step = undiff(step, get_zz(&q, c.end, &bad));
        p[i].ts = undiff(prev.ts, step);
        p[i].duration = undiff(prev.duration, get_zz(&q, c.end, &bad));
        p[i].period = undiff(prev.period, get_zz(&q, c.end, &bad));
        p[i].total = undiff(prev.total, get_zz(&q, c.end, &bad));
        if (bad || (i == 0 ? p[i].ts != first_ts : p[i].ts <= prev.ts))
            return -1;
        prev = p[i];
    }
    if (q != c.end)
        return -1;
    *n = (size_t)count;
    return 0;
}

static int chunk_put(MDB_txn *txn, MDB_dbi dbi, uint64_t series, const struct chunk_point *p,
                     size_t n)
{
    unsigned char kb[SAMPLE_KEY_LEN], vb[CHUNK_MAX_BYTES];
    tsdb_sample_key(kb, series, p[0].ts);
    MDB_val k = {sizeof kb, kb}, v = {chunk_encode(vb, p, n), vb};
    return mdb_put(txn, dbi, &k, &v, 0);
}

static bool key_of(const MDB_val *k, uint64_t series, int64_t *ts)
{
    if (k->mv_size != SAMPLE_KEY_LEN || tsdb_be64_get(k->mv_data) != series)
        return false;
    *ts = (int64_t)tsdb_be64_get((const unsigned char *)k->mv_data + 8);
    return true;
}

/* The chunk a point at ts belongs in: the last one starting at or before
 * it, else the series' first.  *found false: the series has none.  On
 * success *start is the chunk's key timestamp and v its value. */
static int chunk_find(MDB_cursor *c, uint64_t series, int64_t ts, bool *found, int64_t *start,
                      MDB_val *v)
{
    unsigned char kb[SAMPLE_KEY_LEN];
    tsdb_sample_key(kb, series, ts);
    MDB_val k = {sizeof kb, kb};
    int rc = mdb_cursor_get(c, &k, v, MDB_SET_RANGE);
    bool after = rc == 0 && key_of(&k, series, start);   /* first chunk at or after ts */
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    if (after && *start == ts) {
        *found = true;
        return 0;
    }
    rc = mdb_cursor_get(c, &k, v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
    if (rc == 0 && key_of(&k, series, start)) {
        *found = true;
        return 0;
    }
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    *found = after;
    if (after) {   /* ts lies before every chunk: the first takes it */
        tsdb_sample_key(kb, series, ts);
        k = (MDB_val){sizeof kb, kb};
        if ((rc = mdb_cursor_get(c, &k, v, MDB_SET_RANGE)) || !key_of(&k, series, start))
            return rc ? rc : MDB_CORRUPTED;
    }
    return 0;
}

int tsdb_chunk_add(tsdb *db, MDB_txn *txn, uint64_t series, int64_t ts, int64_t duration,
                   int64_t period, int64_t total)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, db->dbi_chunks, &c);
    if (rc)
        return rc;
    struct chunk_point p[CHUNK_MAX_POINTS + 1], pt = {ts, duration, period, total};
    bool found;
    int64_t start = 0;
    MDB_val v;
    size_t n = 0;
    if ((rc = chunk_find(c, series, ts, &found, &start, &v)))
        goto out;
    if (found && chunk_decode(&v, start, p, &n) < 0) {
        rc = MDB_CORRUPTED;
        goto out;
    }
    /* a point at ts is new: the samples database refused the key already */
    size_t at = n;
    while (at > 0 && p[at - 1].ts > ts)
        at--;
    if (at > 0 && p[at - 1].ts == ts) {
        rc = MDB_KEYEXIST;
        goto out;
    }
    if (found && at == n && n == CHUNK_MAX_POINTS) {   /* the common append to a full chunk */
        rc = chunk_put(txn, db->dbi_chunks, series, &pt, 1);
        goto out;
    }
    memmove(p + at + 1, p + at, (n - at) * sizeof *p);
    p[at] = pt;
    n++;
    /* a chunk that gains a new first point moves to its key */
    if (found && at == 0 && (rc = mdb_cursor_del(c, 0)))
        goto out;
    if (n <= CHUNK_MAX_POINTS) {
        rc = chunk_put(txn, db->dbi_chunks, series, p, n);
    } else {   /* a late point into a full chunk: halves */
        size_t half = n / 2;
        rc = chunk_put(txn, db->dbi_chunks, series, p, half);
        if (!rc)
            rc = chunk_put(txn, db->dbi_chunks, series, p + half, n - half);
    }
out:
    mdb_cursor_close(c);
    return rc;
}

int tsdb_chunk_trim(tsdb *db, MDB_txn *txn, uint64_t series, int64_t keep_from)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, db->dbi_chunks, &c);
    if (rc)
        return rc;
    unsigned char kb[SAMPLE_KEY_LEN];
    tsdb_sample_key(kb, series, 0);
    MDB_val k = {sizeof kb, kb}, v;
    int64_t start;
    struct chunk_point p[CHUNK_MAX_POINTS];
    size_t n;
    /* MDB_NEXT after a delete yields the item that followed the deleted one */
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (!key_of(&k, series, &start) || start >= keep_from)
            break;
        if (chunk_decode(&v, start, p, &n) < 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        size_t drop = 0;
        while (drop < n && p[drop].ts < keep_from)
            drop++;
        if ((rc = mdb_cursor_del(c, 0)))
            break;
        if (drop < n) {   /* the rest starts at or after keep_from: nothing later to trim */
            rc = chunk_put(txn, db->dbi_chunks, series, p + drop, n - drop);
            break;
        }
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int tsdb_chunks_build(tsdb *db, MDB_txn *txn, uint64_t *points)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, db->dbi_totals, &c);
    if (rc)
        return rc;
    struct chunk_point p[CHUNK_MAX_POINTS];
    size_t n = 0;
    uint64_t series = 0;
    MDB_val k, v;
    *points = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != SAMPLE_KEY_LEN) {
            rc = MDB_CORRUPTED;
            break;
        }
        uint64_t id = tsdb_be64_get(k.mv_data);
        struct block_reader br;
        if (tsdb_block_open(&br, &v, NULL) < 0) {
            rc = MDB_CORRUPTED;
            break;
        }
        if (n && (id != series || n == CHUNK_MAX_POINTS)) {
            if ((rc = chunk_put(txn, db->dbi_chunks, series, p, n)))
                break;
            n = 0;
        }
        series = id;
        p[n++] = (struct chunk_point){(int64_t)tsdb_be64_get((unsigned char *)k.mv_data + 8),
                                      br.duration_nanos, br.period, br.total};
        (*points)++;
    }
    if (rc == MDB_NOTFOUND)
        rc = n ? chunk_put(txn, db->dbi_chunks, series, p, n) : 0;
    mdb_cursor_close(c);
    return rc;
}

int tsdb_chunks_scan(tsdb_reader *r, uint64_t series, int64_t start_ms, int64_t end_ms,
                     tsdb_block_fn fn, tsdb_totals_fn tfn, void *ctx, firn_err *err)
{
    assert(!fn != !tfn);
    int64_t ts[CHUNK_MAX_POINTS], totals[CHUNK_MAX_POINTS];
    MDB_cursor *c;
    int rc = mdb_cursor_open(r->txn, r->db->dbi_chunks, &c);
    if (rc)
        return firn_errf(err, FIRN_EIO, "%s: scanning: %s", r->db->path, tsdb_strerror(rc));
    int64_t from = start_ms > 0 ? start_ms : 0, first;
    unsigned char kb[SAMPLE_KEY_LEN];
    tsdb_sample_key(kb, series, from);
    MDB_val k = {sizeof kb, kb}, v;
    /* the chunk holding from starts at or before it */
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (!(rc == 0 && key_of(&k, series, &first) && first == from)) {
        int prc = mdb_cursor_get(c, &k, &v, rc == MDB_NOTFOUND ? MDB_LAST : MDB_PREV);
        if (prc == 0 && key_of(&k, series, &first))
            rc = 0;
        else if (rc == 0)
            rc = mdb_cursor_get(c, &k, &v, prc == MDB_NOTFOUND ? MDB_FIRST : MDB_NEXT);
    }
    int ret = 0;
    struct chunk_point p[CHUNK_MAX_POINTS];
    size_t n;
    /* a point's partition, divided out only when a point passes its end */
    int64_t width = r->db->partition_ms, part_start = -1;
    uint32_t part = 0;
    for (; rc == 0 && !ret; rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (!key_of(&k, series, &first) || first > end_ms)
            break;
        if (chunk_decode(&v, first, p, &n) < 0) {
            ret = firn_errf(err, FIRN_EIO, "series %llu at %lld ms: corrupt chunk of totals",
                            (unsigned long long)series, (long long)first);
            break;
        }
        if (tfn) {
            size_t m = 0;
            for (size_t i = 0; i < n && p[i].ts <= end_ms; i++) {
                if (p[i].ts >= start_ms) {
                    ts[m] = p[i].ts;
                    totals[m++] = p[i].total;
                }
            }
            ret = m ? tfn(ctx, ts, totals, m) : 0;
            continue;
        }
        for (size_t i = 0; i < n && !ret; i++) {
            if (p[i].ts < start_ms)
                continue;
            if (p[i].ts > end_ms)
                break;
            /* points ascend (and are >= 0): the partition never goes back */
            if (part_start < 0 || p[i].ts - part_start >= width) {
                part = (uint32_t)(p[i].ts / width);
                part_start = p[i].ts - p[i].ts % width;
            }
            tsdb_block b = {.timestamp_ms = p[i].ts,
                            .duration_nanos = p[i].duration,
                            .period = p[i].period,
                            .total = p[i].total,
                            .partition = part};
            ret = fn(ctx, &b);
        }
    }
    mdb_cursor_close(c);
    if (!ret && rc && rc != MDB_NOTFOUND)
        ret = firn_errf(err, rc == ENOMEM ? FIRN_ENOMEM : FIRN_EIO, "%s: scanning: %s",
                        r->db->path, tsdb_strerror(rc));
    return ret;
}
