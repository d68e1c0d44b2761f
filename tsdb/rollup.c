/* rollup.c -- rollups: per series and whole time bucket (an hour, a day),
 * the merged (stack, label set) -> value totals of the bucket's profiles,
 * so that a merge over a long range reads one rollup per bucket instead of
 * every profile in it.
 *
 * The invariant every part keeps: a rollup stored under (series, level,
 * bucket) equals the sum of the raw profiles that the series holds in the
 * bucket, in the same snapshot.  Hence a merge may use it in place of them
 * and the result is the raw merge's, entry for entry:
 *  - compaction computes a rollup from the raw profiles (a day from its
 *    hours' rollups, which hold the same sums) and puts it whole in one
 *    transaction, overwriting any older one: a pass killed at any point
 *    leaves the previous committed state, and nothing is ever added on top
 *    of a stored rollup, so nothing can be counted twice;
 *  - a profile appended into a bucket below its series' watermark deletes
 *    the hour's and the day's rollups in the append's own transaction and
 *    marks the hour dirty; the next pass recomputes them;
 *  - retention deletes a series' rollups of buckets that start before the
 *    cutoff in the transaction that deletes the expired profiles.
 * Only buckets with two profiles or more get a rollup: one profile is its
 * own rollup.
 *
 * A rollup value:
 *   u8 version (1), varint profiles, varint raw samples, zigzag oldest
 *   timestamp ms, zigzag latest end ns, zigzag period (the first nonzero in
 *   time order), varint segment count, then per partition (ascending):
 *   varint partition, varint length, a block (codec.c's encoding, duration
 *   and period 0) of that partition's (stack, label set, value) entries.
 */
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define ROLLUP_VALUE_VERSION 1
#define DIRTY_BATCH 256        /* dirty marks taken per round */

static int64_t floor_to(int64_t t, int64_t width)
{
    assert(t >= 0 && width > 0);
    return t / width * width;
}

void tsdb_rollup_key(unsigned char out[ROLLUP_KEY_LEN], uint64_t series, int level,
                     int64_t bucket_ms)
{
    assert(bucket_ms >= 0 && (level == ROLLUP_HOUR || level == ROLLUP_DAY));
    tsdb_be64_put(out, series);
    out[8] = (unsigned char)level;
    tsdb_be64_put(out + 9, (uint64_t)bucket_ms);
}

/* ---- reading ------------------------------------------------------------ */

int tsdb_rollup_add(tsdb_reader *r, struct acc *a, const MDB_val *v, firn_err *err)
{
    struct cur c = {v->mv_data, (const unsigned char *)v->mv_data + v->mv_size, false};
    if (v->mv_size < 1 || *c.p != ROLLUP_VALUE_VERSION)
        return firn_errf(err, FIRN_EIO, "%s: corrupt rollup (version)", r->db->path);
    c.p++;
    uint64_t blocks = tsdb_cur_varint(&c);
    tsdb_cur_varint(&c);   /* raw samples: for inspection only */
    int64_t min_ts = tsdb_cur_zigzag(&c), max_end_ns = tsdb_cur_zigzag(&c),
            period = tsdb_cur_zigzag(&c);
    uint64_t segments = tsdb_cur_varint(&c);
    if (c.bad || segments > (uint64_t)(c.end - c.p))
        return firn_errf(err, FIRN_EIO, "%s: corrupt rollup (header)", r->db->path);
    tsdb_acc_note(a, min_ts, max_end_ns, period, blocks);
    a->rollups++;
    for (uint64_t s = 0; s < segments; s++) {
        uint64_t part = tsdb_cur_varint(&c);
        size_t len;
        const unsigned char *body = tsdb_cur_bytes(&c, &len);
        MDB_val bv = {len, (void *)body};
        struct block_reader br;
        if (c.bad || part > UINT32_MAX || tsdb_block_open(&br, &bv, &r->scratch) < 0)
            return firn_errf(err, FIRN_EIO, "%s: corrupt rollup (segment %llu)", r->db->path,
                             (unsigned long long)s);
        tsdb_reader_reserve(r, br.n);
        if (tsdb_block_decode(&br, r->stacks, r->labelsets, r->values) < 0)
            return firn_errf(err, FIRN_EIO, "%s: corrupt rollup (segment %llu)", r->db->path,
                             (unsigned long long)s);
        size_t i = br.n;
        const uint32_t *ls = (br.flags & BLOCK_HAS_LABELSETS) ? r->labelsets : NULL;
        if (tsdb_acc_add(a, (uint32_t)part, r->stacks, ls, r->values, i))
            return firn_errf(err, FIRN_ENOMEM, "out of memory reading a rollup");
    }
    return 0;
}

struct spans {
    struct rollup_span *v;
    size_t n, cap;
};

/* Spans are pushed in time order and never overlap (a rollup plan reads
 * each profile once). */
static void spans_push(struct spans *s, int64_t start, int64_t len, const MDB_val *v)
{
    assert(len > 0 && (s->n == 0 || s->v[s->n - 1].end_ms < start));
    s->v = firn_grow(s->v, s->n, &s->cap, sizeof *s->v, 64);
    s->v[s->n++] = (struct rollup_span){start, start + len - 1, *v};
}

/* The rollups of one level whose buckets lie wholly inside [start, end]. */
static int level_spans(tsdb_reader *r, uint64_t series, int level, int64_t start, int64_t end,
                       struct spans *out)
{
    int64_t width = level == ROLLUP_DAY ? ROLLUP_DAY_MS : ROLLUP_HOUR_MS;
    if (start > INT64_MAX - width)
        return 0;
    int64_t first = (start + width - 1) / width * width;
    MDB_cursor *c;
    int rc = mdb_cursor_open(r->txn, r->db->dbi_rollups, &c);
    if (rc)
        return rc;
    unsigned char kb[ROLLUP_KEY_LEN];
    tsdb_rollup_key(kb, series, level, first);
    MDB_val k = {sizeof kb, kb}, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        const unsigned char *kp = k.mv_data;
        if (k.mv_size != ROLLUP_KEY_LEN || tsdb_be64_get(kp) != series || kp[8] != level)
            break;
        int64_t b = (int64_t)tsdb_be64_get(kp + 9);
        if (b > end - (width - 1))
            break;
        spans_push(out, b, width, &v);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int tsdb_rollup_plan(tsdb_reader *r, uint64_t series, int64_t start_ms, int64_t end_ms,
                     unsigned levels, struct rollup_span **spans, size_t *n, firn_err *err)
{
    *spans = NULL;
    *n = 0;
    if (start_ms < 0)
        start_ms = 0;
    if (end_ms < start_ms)
        return 0;
    struct spans days = {0}, hours = {0};
    int rc = 0;
    if (levels & (1u << ROLLUP_DAY))
        rc = level_spans(r, series, ROLLUP_DAY, start_ms, end_ms, &days);
    if (!rc && (levels & (1u << ROLLUP_HOUR)))
        rc = level_spans(r, series, ROLLUP_HOUR, start_ms, end_ms, &hours);
    /* days, and the hours outside them, in time order (an hour lies in one
     * day or wholly outside it) */
    struct spans all = {0};
    size_t i = 0, j = 0;
    while (!rc && (i < days.n || j < hours.n)) {
        const struct rollup_span *s;
        if (j < hours.n && i < days.n && days.v[i].end_ms < hours.v[j].start_ms) {
            s = &days.v[i++];
        } else if (j < hours.n) {
            if (i < days.n && hours.v[j].start_ms >= days.v[i].start_ms) {
                j++;   /* inside a day read whole */
                continue;
            }
            s = &hours.v[j++];
        } else {
            s = &days.v[i++];
        }
        spans_push(&all, s->start_ms, s->end_ms - s->start_ms + 1, &s->value);
    }
    free(days.v);
    free(hours.v);
    if (rc) {
        free(all.v);
        return firn_errf(err, FIRN_EIO, "%s: reading rollups: %s",
                         r->db->path, tsdb_strerror(rc));
    }
    *spans = all.v;
    *n = all.n;
    return 0;
}

/* ---- watermarks and dirty marks ------------------------------------------ */

static int get_watermark(tsdb *db, MDB_txn *txn, uint64_t series, int64_t *wm, bool *found)
{
    unsigned char kb[8];
    tsdb_be64_put(kb, series);
    MDB_val k = {sizeof kb, kb}, v;
    int rc = mdb_get(txn, db->dbi_rollup_state, &k, &v);
    *found = rc == 0 && v.mv_size == sizeof *wm;
    if (*found)
        memcpy(wm, v.mv_data, sizeof *wm);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int put_watermark(tsdb *db, MDB_txn *txn, uint64_t series, int64_t wm)
{
    unsigned char kb[8];
    tsdb_be64_put(kb, series);
    MDB_val k = {sizeof kb, kb}, v = {sizeof wm, &wm};
    return mdb_put(txn, db->dbi_rollup_state, &k, &v, 0);
}

static int del_rollup(tsdb *db, MDB_txn *txn, uint64_t series, int level, int64_t bucket,
                      bool *deleted)
{
    unsigned char kb[ROLLUP_KEY_LEN];
    tsdb_rollup_key(kb, series, level, bucket);
    MDB_val k = {sizeof kb, kb};
    int rc = mdb_del(txn, db->dbi_rollups, &k, NULL);
    if (deleted)
        *deleted = rc == 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int tsdb_rollup_note_append(tsdb *db, MDB_txn *txn, uint64_t series, int64_t ts)
{
    if (!db->has_rollups || ts >= db->rollup_horizon_ms)
        return 0;
    int64_t wm = 0;
    bool found;
    int rc = get_watermark(db, txn, series, &wm, &found);
    if (rc || !found || ts >= wm)
        return rc;
    int64_t hour = floor_to(ts, ROLLUP_HOUR_MS);
    if ((rc = del_rollup(db, txn, series, ROLLUP_HOUR, hour, NULL)) ||
        (rc = del_rollup(db, txn, series, ROLLUP_DAY, floor_to(ts, ROLLUP_DAY_MS), NULL)))
        return rc;
    unsigned char kb[16];
    tsdb_be64_put(kb, series);
    tsdb_be64_put(kb + 8, (uint64_t)hour);
    MDB_val k = {sizeof kb, kb}, v = {0, ""};
    rc = mdb_put(txn, db->dbi_rollup_dirty, &k, &v, 0);
    if (rc == 0)
        atomic_fetch_add(&db->rollups_invalidated_total, 1);
    return rc;
}

/* ---- compaction -------------------------------------------------------------- */

struct pass {
    tsdb *db;
    MDB_txn *txn;
    tsdb_reader r;               /* over the write transaction */
    long budget;                 /* samples left to read */
    uint64_t written, buckets;
    firn_buf val, seg, body;
    ZSTD_CCtx *zstd;             /* compresses the segments' bodies */
    struct block_sample *bs;
    size_t bs_cap;
    firn_err *err;
};

/* Encodes a's entries as a rollup value into ps->val. */
static void encode_rollup(struct pass *ps, struct acc *a)
{
    struct acc_entry *e;
    size_t n;
    tsdb_acc_entries(a, &e, &n);
    if (n > ps->bs_cap) {
        ps->bs = firn_xreallocarray(ps->bs, n, sizeof *ps->bs);
        ps->bs_cap = n;
    }
    size_t segments = 0;
    for (size_t i = 0; i < n; i++)
        segments += i == 0 || e[i].partition != e[i - 1].partition;
    firn_buf *b = &ps->val;
    b->len = 0;
    unsigned char version = ROLLUP_VALUE_VERSION;
    firn_buf_append(b, &version, 1);
    tsdb_buf_varint(b, a->blocks);
    tsdb_buf_varint(b, a->samples);
    tsdb_buf_zigzag(b, a->min_ts);
    tsdb_buf_zigzag(b, a->max_end_ns);
    tsdb_buf_zigzag(b, a->period);
    tsdb_buf_varint(b, segments);
    for (size_t i = 0; i < n;) {
        size_t j = i;
        for (; j < n && e[j].partition == e[i].partition; j++)
            ps->bs[j - i] = (struct block_sample){e[j].stack, e[j].labelset, e[j].value};
        size_t kept = tsdb_block_encode(&ps->seg, &ps->body, ps->zstd, ps->bs, j - i, 0, 0);
        assert(kept == j - i);   /* entries are distinct: nothing to sum */
        (void)kept;
        tsdb_buf_varint(b, e[i].partition);
        tsdb_buf_bytes(b, ps->seg.data, ps->seg.len);
        i = j;
    }
    free(e);
}

/* Recomputes one bucket's rollup from what the series holds in it:
 * an hour from its raw profiles, a day from its hours' rollups and raw
 * profiles where an hour has none. */
static int redo_bucket(struct pass *ps, uint64_t series, int level, int64_t bucket)
{
    int64_t width = level == ROLLUP_DAY ? ROLLUP_DAY_MS : ROLLUP_HOUR_MS;
    unsigned levels = level == ROLLUP_DAY ? 1u << ROLLUP_HOUR : 0;
    struct acc a;
    tsdb_acc_init(&a, true);
    int rc = 0;
    /* the bucket's own stale rollup must not be read: delete it first */
    if ((rc = del_rollup(ps->db, ps->txn, series, level, bucket, NULL)))
        goto out;
    if (tsdb_merge_series(&ps->r, &a, series, bucket, bucket + width - 1, levels, 0, ps->err) <
        0) {
        rc = ps->err && ps->err->code == FIRN_ENOMEM ? ENOMEM : MDB_CORRUPTED;
        goto out;
    }
    ps->budget -= (long)a.samples;
    if (a.blocks < 2)
        goto out;
    encode_rollup(ps, &a);
    unsigned char kb[ROLLUP_KEY_LEN];
    tsdb_rollup_key(kb, series, level, bucket);
    MDB_val k = {sizeof kb, kb}, v = {ps->val.len, ps->val.data};
    if ((rc = mdb_put(ps->txn, ps->db->dbi_rollups, &k, &v, 0)) == 0)
        ps->written++;
out:
    tsdb_acc_free(&a);
    return rc;
}

/* The timestamp of the series' first profile at or after t, if any. */
static int next_profile(struct pass *ps, uint64_t series, int64_t t, int64_t *ts, bool *found)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(ps->txn, ps->db->dbi_totals, &c);
    if (rc)
        return rc;
    unsigned char kb[SAMPLE_KEY_LEN];
    tsdb_sample_key(kb, series, t);
    MDB_val k = {sizeof kb, kb}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    *found = rc == 0 && k.mv_size == SAMPLE_KEY_LEN && tsdb_be64_get(k.mv_data) == series;
    if (*found)
        *ts = (int64_t)tsdb_be64_get((unsigned char *)k.mv_data + 8);
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Moving a watermark from a to b completes the day of a when b reaches its
 * end (the days wholly between were empty, or b would not have jumped). */
static int advance(struct pass *ps, uint64_t series, int64_t a, int64_t b)
{
    int64_t day = floor_to(a, ROLLUP_DAY_MS);
    if (b < day + ROLLUP_DAY_MS)
        return 0;
    return redo_bucket(ps, series, ROLLUP_DAY, day);
}

/* Rolls up the series' whole hours from its watermark up to limit. */
static int compact_series(struct pass *ps, uint64_t series, int64_t min_ts, int64_t limit,
                          int64_t *horizon)
{
    int64_t wm;
    bool found;
    int rc = get_watermark(ps->db, ps->txn, series, &wm, &found);
    if (rc)
        return rc;
    if (!found)
        wm = floor_to(min_ts, ROLLUP_HOUR_MS);
    int64_t start = wm;
    while (wm < limit && ps->budget > 0) {
        int64_t ts = 0;
        bool any;
        if ((rc = next_profile(ps, series, wm, &ts, &any)))
            return rc;
        int64_t to = !any || ts >= limit ? limit : floor_to(ts, ROLLUP_HOUR_MS);
        if (to > wm) {   /* nothing between: skip the empty hours */
            if ((rc = advance(ps, series, wm, to)))
                return rc;
            wm = to;
            continue;
        }
        ps->buckets++;
        if ((rc = redo_bucket(ps, series, ROLLUP_HOUR, wm)) ||
            (rc = advance(ps, series, wm, wm + ROLLUP_HOUR_MS)))
            return rc;
        wm += ROLLUP_HOUR_MS;
    }
    if (wm > *horizon)
        *horizon = wm;
    return wm != start || !found ? put_watermark(ps->db, ps->txn, series, wm) : 0;
}

/* Redoes the hours late profiles made dirty (and their days). */
static int redo_dirty(struct pass *ps, bool *more)
{
    unsigned char keys[DIRTY_BATCH][16];
    size_t n = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(ps->txn, ps->db->dbi_rollup_dirty, &c);
    if (rc)
        return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0 && n < DIRTY_BATCH;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        if (k.mv_size == 16)
            memcpy(keys[n++], k.mv_data, 16);
    mdb_cursor_close(c);
    if (rc && rc != MDB_NOTFOUND)
        return rc;
    *more = rc == 0;   /* marks left beyond this batch */
    for (size_t i = 0; i < n; i++) {
        if (ps->budget <= 0) {
            *more = true;
            return 0;
        }
        uint64_t series = tsdb_be64_get(keys[i]);
        int64_t hour = (int64_t)tsdb_be64_get(keys[i] + 8);
        int64_t wm = 0;
        bool found;
        if ((rc = get_watermark(ps->db, ps->txn, series, &wm, &found)))
            return rc;
        if (found) {
            int64_t day = floor_to(hour, ROLLUP_DAY_MS);
            if ((rc = redo_bucket(ps, series, ROLLUP_HOUR, hour)) ||
                (day + ROLLUP_DAY_MS <= wm && (rc = redo_bucket(ps, series, ROLLUP_DAY, day))))
                return rc;
        }
        MDB_val dk = {16, keys[i]};
        if ((rc = mdb_del(ps->txn, ps->db->dbi_rollup_dirty, &dk, NULL)) && rc != MDB_NOTFOUND)
            return rc;
    }
    return 0;
}

int tsdb_rollup_pass(tsdb *db, MDB_txn *txn, int64_t now_ms, bool *more, uint64_t *written,
                     uint64_t *buckets, int64_t *horizon, firn_err *err)
{
    *more = false;
    *written = *buckets = 0;
    *horizon = db->rollup_horizon_ms;
    int64_t ready = now_ms - db->opts.rollup_delay_ms;
    if (ready < ROLLUP_HOUR_MS)
        return 0;
    int64_t limit = floor_to(ready, ROLLUP_HOUR_MS);
    struct pass ps = {.db = db, .txn = txn, .budget = (long)db->opts.rollup_pass_samples, .err = err};
    ps.r.db = db;
    ps.r.txn = txn;
    ps.r.arena = firn_arena_new(0);
    if (!(ps.zstd = ZSTD_createCCtx()))
        firn_oom(0);   /* zstd's allocation: the policy of model/alloc.h */
    int rc = redo_dirty(&ps, more);
    MDB_cursor *sc = NULL;
    if (!rc && !*more)
        rc = mdb_cursor_open(txn, db->dbi_series, &sc);
    if (sc) {
        unsigned char kb[8];
        tsdb_be64_put(kb, db->rollup_resume_series);
        MDB_val k = {sizeof kb, kb}, v;
        for (rc = mdb_cursor_get(sc, &k, &v, MDB_SET_RANGE); rc == 0;
             rc = mdb_cursor_get(sc, &k, &v, MDB_NEXT)) {
            if (k.mv_size != 8 || tsdb_series_record_floats(&v))
                continue;
            uint64_t id = tsdb_be64_get(k.mv_data);
            struct cur c = {v.mv_data, (const unsigned char *)v.mv_data + v.mv_size, false};
            int64_t min_ts = tsdb_cur_zigzag(&c);
            if (c.bad || min_ts < 0) {
                rc = MDB_CORRUPTED;
                break;
            }
            if ((rc = compact_series(&ps, id, min_ts, limit, horizon)))
                break;
            if (ps.budget <= 0) {
                /* resume at this series: it may have hours left */
                db->rollup_resume_series = id;
                *more = true;
                break;
            }
        }
        mdb_cursor_close(sc);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            db->rollup_resume_series = 0;
        }
    }
    if (!rc && *horizon > db->rollup_horizon_ms) {
        MDB_val hk = {strlen("rollup_horizon_ms"), "rollup_horizon_ms"},
                hv = {sizeof *horizon, horizon};
        rc = mdb_put(txn, db->dbi_meta, &hk, &hv, 0);
    }
    *written = ps.written;
    *buckets = ps.buckets;
    firn_arena_free(ps.r.arena);
    free(ps.r.stacks);
    free(ps.r.labelsets);
    free(ps.r.values);
    tsdb_block_scratch_free(&ps.r.scratch);
    ZSTD_freeCCtx(ps.zstd);
    firn_buf_free(&ps.val);
    firn_buf_free(&ps.seg);
    firn_buf_free(&ps.body);
    free(ps.bs);
    if (rc && (!err || !err->code))
        firn_errf(err, rc == ENOMEM ? FIRN_ENOMEM : FIRN_EIO, "compaction: %s",
                  tsdb_strerror(rc));
    return rc;
}

/* ---- retention ------------------------------------------------------------ */

/* Deletes keys of dbi from `from` on while they share its first prefix_len
 * bytes and their big-endian timestamp at ts_at is below cutoff. */
static int expire_range(MDB_txn *txn, MDB_dbi dbi, const unsigned char *from, size_t len,
                        size_t prefix_len, size_t ts_at, int64_t cutoff, long *budget)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, dbi, &c);
    if (rc)
        return rc;
    MDB_val k = {len, (void *)from}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size == len && memcmp(k.mv_data, from, prefix_len) == 0 &&
           (int64_t)tsdb_be64_get((const unsigned char *)k.mv_data + ts_at) < cutoff) {
        if ((rc = mdb_cursor_del(c, 0)))
            break;
        (*budget)--;
        /* after a delete, NEXT yields the record that followed it */
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int tsdb_rollup_expire(tsdb *db, MDB_txn *txn, uint64_t series, int64_t cutoff, bool gone,
                       long *budget)
{
    if (!db->has_rollups)
        return 0;
    unsigned char kb[ROLLUP_KEY_LEN];
    int rc = 0;
    for (int level = ROLLUP_HOUR; level <= ROLLUP_DAY && !rc; level++) {
        tsdb_rollup_key(kb, series, level, 0);
        rc = expire_range(txn, db->dbi_rollups, kb, ROLLUP_KEY_LEN, 9, 9, cutoff, budget);
    }
    unsigned char dk[16];
    tsdb_be64_put(dk, series);
    tsdb_be64_put(dk + 8, 0);
    if (!rc)
        rc = expire_range(txn, db->dbi_rollup_dirty, dk, 16, 8, 8, cutoff, budget);
    if (!rc && gone) {
        MDB_val k = {8, dk};
        rc = mdb_del(txn, db->dbi_rollup_state, &k, NULL);
        if (rc == MDB_NOTFOUND)
            rc = 0;
    }
    return rc;
}
