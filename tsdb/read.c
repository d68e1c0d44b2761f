/* read.c -- the read side: series selection through postings, label names
 * and values, scanning blocks, and turning blocks back into profiles.
 *
 * Every function here works inside the reader's one read-only LMDB
 * transaction, so a reader sees one snapshot however long it lives and
 * never blocks the writer.
 */
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

/* Another process (the server) grew the store past this read-only
 * process's map.  LMDB allows adopting the new size (mdb_env_set_mapsize
 * with 0) only while no transaction of this process is open, since it
 * remaps the file under them: take the resize lock exclusively, which waits
 * for this process's other reads to close.  A thread that holds a read
 * itself would wait for ever, so the wait is bounded and then refused. */
static int adopt_map_size(tsdb *db, firn_err *err)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += (time_t)(db->opts.resize_wait_ms / 1000);
    until.tv_nsec += (long)(db->opts.resize_wait_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    if (pthread_rwlock_timedwrlock(&db->resize_lock, &until) != 0)
        return firn_errf(err, FIRN_EBUSY,
                         "%s: the store grew (another process writes it) while other reads of "
                         "this process stayed open; close them and retry", db->path);
    int rc = mdb_env_set_mapsize(db->env, 0);
    pthread_rwlock_unlock(&db->resize_lock);
    if (rc)
        return firn_errf(err, FIRN_EIO, "%s: adopting the grown map size: %s", db->path,
                         tsdb_strerror(rc));
    return 0;
}

tsdb_reader *tsdb_reader_open(tsdb *db, firn_err *err)
{
    tsdb_reader *r = firn_xcalloc(1, sizeof *r);
    r->arena = firn_arena_new(0);
    r->db = db;
    pthread_rwlock_rdlock(&db->resize_lock);
    int rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &r->txn);
    if (rc == MDB_MAP_RESIZED && db->opts.read_only) {
        pthread_rwlock_unlock(&db->resize_lock);
        if (adopt_map_size(db, err) < 0) {
            firn_arena_free(r->arena);
            free(r);
            return NULL;
        }
        pthread_rwlock_rdlock(&db->resize_lock);
        rc = mdb_txn_begin(db->env, NULL, MDB_RDONLY, &r->txn);
    }
    if (rc) {
        pthread_rwlock_unlock(&db->resize_lock);
        firn_arena_free(r->arena);
        free(r);
        firn_errf(err, FIRN_EIO, "%s: starting a read: %s", db->path, tsdb_strerror(rc));
        return NULL;
    }
    return r;
}

void tsdb_reader_close(tsdb_reader *r)
{
    if (!r)
        return;
    /* a read-only transaction's cursors outlive it unless closed */
    for (int k = 0; k < SYM_KINDS; k++)
        if (r->sym_cursor[k])
            mdb_cursor_close(r->sym_cursor[k]);
    mdb_txn_abort(r->txn);
    pthread_rwlock_unlock(&r->db->resize_lock);
    firn_arena_free(r->arena);
    free(r->stacks);
    free(r->labelsets);
    free(r->values);
    tsdb_block_scratch_free(&r->scratch);
    for (int k = 0; k < SYM_KINDS; k++)
        firn_buf_free(&r->sym_copy[k]);
    free(r);
}

static int lmdb_err(tsdb_reader *r, firn_err *err, int rc, const char *what)
{
    return firn_errf(err, rc == ENOMEM ? FIRN_ENOMEM : FIRN_EIO, "%s: %s: %s", r->db->path, what,
                     tsdb_strerror(rc));
}

/* ---- sets of series ids (sorted u64 vectors) ------------------------------- */

/* The ids come from postings the store maps in memory: growing a vector of
 * them is an internal size (model/alloc.h). */
struct ids {
    uint64_t *v;
    size_t n, cap;
};

static void ids_push(struct ids *s, uint64_t id)
{
    s->v = firn_grow(s->v, s->n, &s->cap, sizeof *s->v, 64);
    s->v[s->n++] = id;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void ids_sort_unique(struct ids *s)
{
    if (s->n < 2)
        return;
    firn_sort(s->v, s->n, sizeof *s->v, cmp_u64);
    size_t k = 1;
    for (size_t i = 1; i < s->n; i++)
        if (s->v[i] != s->v[k - 1])
            s->v[k++] = s->v[i];
    s->n = k;
}

__attribute__((unused)) static bool ids_sorted(const struct ids *s)
{
    for (size_t i = 1; i < s->n; i++)
        if (s->v[i - 1] >= s->v[i])
            return false;
    return true;
}

/* a := a ∩ b (keep) or a \ b (!keep); both sorted. */
static void ids_filter(struct ids *a, const struct ids *b, bool keep)
{
    assert(ids_sorted(a) && ids_sorted(b));
    size_t i = 0, j = 0, k = 0;
    while (i < a->n) {
        while (j < b->n && b->v[j] < a->v[i])
            j++;
        bool in_b = j < b->n && b->v[j] == a->v[i];
        if (in_b == keep)
            a->v[k++] = a->v[i];
        i++;
    }
    a->n = k;
}

/* Appends the series ids under the postings key the cursor is on. */
static int postings_collect(MDB_cursor *c, struct ids *out)
{
    MDB_val k, v;
    size_t count;
    int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST_DUP);
    if (!rc)
        rc = mdb_cursor_count(c, &count);
    if (rc)
        return rc;
    if (count == 1) {
        /* a lone item has no duplicate page: GET_MULTIPLE would not fill v */
        uint64_t id;
        if (v.mv_size != sizeof id)
            return MDB_CORRUPTED;
        memcpy(&id, v.mv_data, sizeof id);
        ids_push(out, id);
        return 0;
    }
    rc = mdb_cursor_get(c, &k, &v, MDB_GET_MULTIPLE);
    while (rc == 0) {
        const unsigned char *p = v.mv_data;
        for (size_t i = 0; i + sizeof(uint64_t) <= v.mv_size; i += sizeof(uint64_t)) {
            uint64_t id;
            memcpy(&id, p + i, sizeof id);
            ids_push(out, id);
        }
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_MULTIPLE);
    }
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* The whole value of a postings key's label (from long_values when it was
 * cut). */
static const char *posting_value(tsdb_reader *r, const MDB_val *k, size_t name_len,
                                 firn_arena *arena)
{
    const char *val = (const char *)k->mv_data + name_len + 1;
    size_t len = k->mv_size - name_len - 1;
    if (len == POSTING_LONG_CUT + 17 && (unsigned char)val[POSTING_LONG_CUT] == 0xff) {
        MDB_val kk = *k, lv;
        if (mdb_get(r->txn, r->db->dbi_long_values, &kk, &lv) == 0)
            return firn_arena_strndup(arena, lv.mv_data, lv.mv_size);
    }
    return firn_arena_strndup(arena, val, len);
}

/* Calls fn for every value of label name (with the cursor on its key). */
typedef int (*value_fn)(void *ctx, const char *value, MDB_cursor *c);

static int for_each_value(tsdb_reader *r, const char *name, value_fn fn, void *ctx)
{
    size_t nl = strlen(name);
    if (nl > STORE_LABEL_NAME_MAX)
        return 0;
    unsigned char prefix[STORE_LABEL_NAME_MAX + 1];
    memcpy(prefix, name, nl);
    prefix[nl] = 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(r->txn, r->db->dbi_postings, &c);
    if (rc)
        return rc;
    firn_arena *tmp = firn_arena_new(0);
    MDB_val k = {nl + 1, prefix}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    while (rc == 0 && k.mv_size > nl && memcmp(k.mv_data, prefix, nl + 1) == 0) {
        const char *value = posting_value(r, &k, nl, tmp);
        if ((rc = fn(ctx, value, c)))
            break;
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT_NODUP);
    }
    firn_arena_free(tmp);
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

struct matcher_ctx {
    const firn_matcher *m;
    bool want;          /* collect values the matcher accepts (true) or rejects */
    struct ids *out;
};

static int collect_if(void *ctx, const char *value, MDB_cursor *c)
{
    struct matcher_ctx *mc = ctx;
    if (firn_matcher_matches(mc->m, value) != mc->want)
        return 0;
    return postings_collect(c, mc->out);
}

/* Series ids of name=value exactly. */
static int postings_eq(tsdb_reader *r, const char *name, const char *value, struct ids *out)
{
    if (strlen(name) > STORE_LABEL_NAME_MAX)
        return 0;
    unsigned char pk[POSTING_KEY_MAX + 32];
    bool is_long;
    size_t len = tsdb_posting_key(pk, name, value, &is_long);
    MDB_cursor *c;
    int rc = mdb_cursor_open(r->txn, r->db->dbi_postings, &c);
    if (rc)
        return rc;
    MDB_val k = {len, pk}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_KEY);
    if (rc == 0)
        rc = postings_collect(c, out);
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int all_series(tsdb_reader *r, struct ids *out)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(r->txn, r->db->dbi_series, &c);
    if (rc)
        return rc;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT))
        if (k.mv_size == 8)
            ids_push(out, tsdb_be64_get(k.mv_data));
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Prometheus's PostingsForMatchers: matchers that reject "" intersect the
 * series having an accepted value; matchers that accept "" subtract the
 * series having a rejected value. */
static int select_ids(tsdb_reader *r, const firn_matcher *ms, size_t n, struct ids *out)
{
    bool have = false;
    int rc = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        if (firn_matcher_matches(&ms[i], ""))
            continue;
        struct ids set = {0};
        if (ms[i].type == FIRN_MATCH_EQ) {
            rc = postings_eq(r, ms[i].name, ms[i].value, &set);
        } else {
            struct matcher_ctx mc = {&ms[i], true, &set};
            rc = for_each_value(r, ms[i].name, collect_if, &mc);
        }
        ids_sort_unique(&set);
        if (!have) {
            free(out->v);
            *out = set;
            have = true;
        } else {
            ids_filter(out, &set, true);
            free(set.v);
        }
    }
    if (!have && !rc)
        rc = all_series(r, out);
    for (size_t i = 0; i < n && !rc && out->n; i++) {
        if (!firn_matcher_matches(&ms[i], ""))
            continue;
        struct ids set = {0};
        struct matcher_ctx mc = {&ms[i], false, &set};
        rc = for_each_value(r, ms[i].name, collect_if, &mc);
        ids_sort_unique(&set);
        ids_filter(out, &set, false);
        free(set.v);
    }
    return rc;
}

static int get_series(tsdb_reader *r, uint64_t id, firn_arena *arena, tsdb_series *s,
                      firn_err *err)
{
    unsigned char sk[8];
    tsdb_be64_put(sk, id);
    MDB_val k = {sizeof sk, sk}, v;
    int rc = mdb_get(r->txn, r->db->dbi_series, &k, &v);
    if (rc == MDB_NOTFOUND)
        return firn_errf(err, FIRN_EINVAL, "no series %llu", (unsigned long long)id);
    if (rc)
        return lmdb_err(r, err, rc, "reading a series");
    s->id = id;
    return tsdb_series_decode(&v, arena, s, err);
}

static int cmp_series(const void *a, const void *b)
{
    const tsdb_series *x = a, *y = b;
    for (size_t i = 0; i < x->n_labels && i < y->n_labels; i++) {
        int c = strcmp(x->labels[i].name, y->labels[i].name);
        if (!c)
            c = strcmp(x->labels[i].value, y->labels[i].value);
        if (c)
            return c;
    }
    return x->n_labels < y->n_labels ? -1 : x->n_labels > y->n_labels;
}

void tsdb_series_set_free(tsdb_series_set *s)
{
    if (!s)
        return;
    firn_arena_free(s->arena);
    memset(s, 0, sizeof *s);
}

/* Whether the series holds a profile in [start_ms, end_ms]: its oldest and
 * newest overlapping the range is not enough when the range falls between
 * two of its profiles. */
static int holds_profile_in(tsdb_reader *r, const tsdb_series *s, int64_t start_ms,
                            int64_t end_ms, bool *yes)
{
    *yes = s->max_time_ms >= start_ms && s->min_time_ms <= end_ms;
    if (!*yes || s->min_time_ms >= start_ms || s->max_time_ms <= end_ms)
        return 0;   /* no overlap, or an end of the series lies in the range */
    MDB_cursor *c;
    if (s->floats && !r->db->has_floats) {
        *yes = false;
        return 0;
    }
    int rc = mdb_cursor_open(r->txn, s->floats ? r->db->dbi_floats : r->db->dbi_samples, &c);
    if (rc)
        return rc;
    unsigned char kb[SAMPLE_KEY_LEN];
    tsdb_sample_key(kb, s->id, start_ms);   /* start_ms > min_time_ms >= 0 */
    MDB_val k = {sizeof kb, kb}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    *yes = rc == 0 && k.mv_size == SAMPLE_KEY_LEN && tsdb_be64_get(k.mv_data) == s->id &&
           (int64_t)tsdb_be64_get((unsigned char *)k.mv_data + 8) <= end_ms;
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

int tsdb_select(tsdb_reader *r, const firn_matcher *matchers, size_t n_matchers,
                int64_t start_ms, int64_t end_ms, tsdb_series_set *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    struct ids ids = {0};
    int rc = select_ids(r, matchers, n_matchers, &ids);
    if (rc) {
        free(ids.v);
        return lmdb_err(r, err, rc, "selecting series");
    }
    out->arena = firn_arena_new(0);
    out->series = firn_arena_calloc(out->arena, ids.n ? ids.n : 1, sizeof *out->series);
    for (size_t i = 0; i < ids.n; i++) {
        tsdb_series *s = &out->series[out->n];
        if ((rc = get_series(r, ids.v[i], out->arena, s, err)) < 0) {
            free(ids.v);
            tsdb_series_set_free(out);
            return rc;
        }
        bool in_range;
        if ((rc = holds_profile_in(r, s, start_ms, end_ms, &in_range))) {
            free(ids.v);
            tsdb_series_set_free(out);
            return lmdb_err(r, err, rc, "selecting series");
        }
        if (in_range)
            out->n++;
    }
    free(ids.v);
    firn_sort(out->series, out->n, sizeof *out->series, cmp_series);
    return 0;
}

/* ---- label names and values -------------------------------------------- */

void tsdb_strings_free(tsdb_strings *s)
{
    if (!s)
        return;
    firn_arena_free(s->arena);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct strvec {
    char **v;
    size_t n, cap;
    firn_arena *arena;
};

static void strvec_add(struct strvec *s, const char *str)
{
    s->v = firn_grow(s->v, s->n, &s->cap, sizeof *s->v, 64);
    s->v[s->n++] = firn_arena_strndup(s->arena, str, strlen(str));
}

/* Sorts, removes duplicates and moves the vector into out. */
static void strvec_finish(struct strvec *s, tsdb_strings *out)
{
    firn_sort(s->v, s->n, sizeof *s->v, cmp_str);
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++)
        if (!k || strcmp(s->v[i], s->v[k - 1]))
            s->v[k++] = s->v[i];
    out->v = firn_arena_calloc(s->arena, k ? k : 1, sizeof *out->v);
    if (k)
        memcpy(out->v, s->v, k * sizeof *out->v);
    out->n = k;
    out->arena = s->arena;
    free(s->v);
}

static bool unbounded(const firn_matcher *m, size_t n, int64_t start, int64_t end)
{
    (void)m;
    return n == 0 && start == INT64_MIN && end == INT64_MAX;
}

int tsdb_label_names(tsdb_reader *r, const firn_matcher *matchers, size_t n_matchers,
                     int64_t start_ms, int64_t end_ms, tsdb_strings *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    struct strvec sv = {.arena = firn_arena_new(0)};
    if (unbounded(matchers, n_matchers, start_ms, end_ms)) {
        /* every distinct name in postings: skip from name\0... to name\1 */
        MDB_cursor *c;
        int rc = mdb_cursor_open(r->txn, r->db->dbi_postings, &c);
        if (rc) {
            firn_arena_free(sv.arena);
            return lmdb_err(r, err, rc, "listing label names");
        }
        MDB_val k, v;
        unsigned char next[STORE_LABEL_NAME_MAX + 2];
        rc = mdb_cursor_get(c, &k, &v, MDB_FIRST);
        while (rc == 0) {
            const char *key = k.mv_data;
            size_t nl = strnlen(key, k.mv_size);
            if (nl > STORE_LABEL_NAME_MAX)
                break;
            char name[STORE_LABEL_NAME_MAX + 1];
            memcpy(name, key, nl);
            name[nl] = 0;
            strvec_add(&sv, name);
            memcpy(next, key, nl);
            next[nl] = 1;
            MDB_val nk = {nl + 1, next};
            k = nk;
            rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        }
        mdb_cursor_close(c);
        if (rc && rc != MDB_NOTFOUND) {
            free(sv.v);
            firn_arena_free(sv.arena);
            return lmdb_err(r, err, rc, "listing label names");
        }
        strvec_finish(&sv, out);
        return 0;
    }
    tsdb_series_set set;
    int rc = tsdb_select(r, matchers, n_matchers, start_ms, end_ms, &set, err);
    if (rc < 0) {
        firn_arena_free(sv.arena);
        return rc;
    }
    for (size_t i = 0; i < set.n; i++)
        for (size_t j = 0; j < set.series[i].n_labels; j++)
            strvec_add(&sv, set.series[i].labels[j].name);
    tsdb_series_set_free(&set);
    strvec_finish(&sv, out);
    return 0;
}

static int add_value(void *ctx, const char *value, MDB_cursor *c)
{
    (void)c;
    strvec_add(ctx, value);
    return 0;
}

int tsdb_label_values(tsdb_reader *r, const char *name, const firn_matcher *matchers,
                      size_t n_matchers, int64_t start_ms, int64_t end_ms, tsdb_strings *out,
                      firn_err *err)
{
    memset(out, 0, sizeof *out);
    struct strvec sv = {.arena = firn_arena_new(0)};
    if (unbounded(matchers, n_matchers, start_ms, end_ms)) {
        int rc = for_each_value(r, name, add_value, &sv);
        if (rc) {
            free(sv.v);
            firn_arena_free(sv.arena);
            return lmdb_err(r, err, rc, "listing label values");
        }
        strvec_finish(&sv, out);
        return 0;
    }
    tsdb_series_set set;
    int rc = tsdb_select(r, matchers, n_matchers, start_ms, end_ms, &set, err);
    if (rc < 0) {
        firn_arena_free(sv.arena);
        return rc;
    }
    for (size_t i = 0; i < set.n; i++) {
        const char *v = firn_labels_get(set.series[i].labels, set.series[i].n_labels, name);
        if (v)
            strvec_add(&sv, v);
    }
    tsdb_series_set_free(&set);
    strvec_finish(&sv, out);
    return 0;
}

/* ---- scanning blocks ------------------------------------------------------ */

void tsdb_reader_reserve(tsdb_reader *r, size_t n)
{
    if (n <= r->cap)
        return;
    size_t ncap = r->cap ? r->cap : 1024;
    while (ncap < n)
        ncap *= 2;
    r->stacks = firn_xreallocarray(r->stacks, ncap, sizeof *r->stacks);
    r->labelsets = firn_xreallocarray(r->labelsets, ncap, sizeof *r->labelsets);
    r->values = firn_xreallocarray(r->values, ncap, sizeof *r->values);
    r->cap = ncap;
}

int tsdb_scan(tsdb_reader *r, uint64_t series_id, int64_t start_ms, int64_t end_ms,
              unsigned flags, tsdb_block_fn fn, void *ctx, firn_err *err)
{
    /* totals alone live in chunks of a series' points (in the totals
     * database, one per profile, in a store read as schema 4 or older) */
    if ((flags & TSDB_SCAN_TOTALS) && r->db->has_chunks)
        return tsdb_chunks_scan(r, series_id, start_ms, end_ms, fn, NULL, ctx, err);
    MDB_cursor *c;
    int rc = mdb_cursor_open(r->txn,
                             (flags & TSDB_SCAN_TOTALS) ? r->db->dbi_totals : r->db->dbi_samples,
                             &c);
    if (rc)
        return lmdb_err(r, err, rc, "scanning");
    unsigned char kb[SAMPLE_KEY_LEN];
    tsdb_sample_key(kb, series_id, start_ms > 0 ? start_ms : 0);
    MDB_val k = {sizeof kb, kb}, v;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != SAMPLE_KEY_LEN || tsdb_be64_get(k.mv_data) != series_id)
            break;
        int64_t ts = (int64_t)tsdb_be64_get((unsigned char *)k.mv_data + 8);
        if (ts > end_ms)
            break;
        struct block_reader br;
        if (tsdb_block_open(&br, &v, (flags & TSDB_SCAN_TOTALS) ? NULL : &r->scratch) < 0) {
            ret = firn_errf(err, FIRN_EIO, "series %llu at %lld ms: corrupt block",
                            (unsigned long long)series_id, (long long)ts);
            break;
        }
        tsdb_block b = {.timestamp_ms = ts,
                        .duration_nanos = br.duration_nanos,
                        .period = br.period,
                        .total = br.total,
                        .partition = (uint32_t)(ts / r->db->partition_ms)};
        if (!(flags & TSDB_SCAN_TOTALS)) {
            tsdb_reader_reserve(r, br.n);
            if (tsdb_block_decode(&br, r->stacks, r->labelsets, r->values) < 0) {
                ret = firn_errf(err, FIRN_EIO, "series %llu at %lld ms: corrupt block",
                                (unsigned long long)series_id, (long long)ts);
                break;
            }
            b.n_samples = (size_t)br.n;
            b.stacks = r->stacks;
            b.labelsets = (br.flags & BLOCK_HAS_LABELSETS) ? r->labelsets : NULL;
            b.values = r->values;
        }
        if ((ret = fn(ctx, &b)) != 0)
            break;
    }
    mdb_cursor_close(c);
    if (!ret && rc && rc != MDB_NOTFOUND)
        ret = lmdb_err(r, err, rc, "scanning");
    return ret;
}

/* A store read without chunks hands its totals over one at a time. */
struct totals_one {
    tsdb_totals_fn fn;
    void *ctx;
};

static int totals_one(void *arg, const tsdb_block *b)
{
    struct totals_one *t = arg;
    return t->fn(t->ctx, &b->timestamp_ms, &b->total, 1);
}

int tsdb_scan_totals(tsdb_reader *r, uint64_t series_id, int64_t start_ms, int64_t end_ms,
                     tsdb_totals_fn fn, void *ctx, firn_err *err)
{
    if (r->db->has_chunks)
        return tsdb_chunks_scan(r, series_id, start_ms, end_ms, NULL, fn, ctx, err);
    struct totals_one t = {fn, ctx};
    return tsdb_scan(r, series_id, start_ms, end_ms, TSDB_SCAN_TOTALS, totals_one, &t, err);
}

int tsdb_scan_floats(tsdb_reader *r, uint64_t series_id, int64_t start_ms, int64_t end_ms,
                     tsdb_float_fn fn, void *ctx, firn_err *err)
{
    if (!r->db->has_floats)
        return 0;
    MDB_cursor *c;
    int rc = mdb_cursor_open(r->txn, r->db->dbi_floats, &c);
    if (rc)
        return lmdb_err(r, err, rc, "scanning");
    unsigned char kb[SAMPLE_KEY_LEN];
    tsdb_sample_key(kb, series_id, start_ms > 0 ? start_ms : 0);
    MDB_val k = {sizeof kb, kb}, v;
    int ret = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != SAMPLE_KEY_LEN || tsdb_be64_get(k.mv_data) != series_id)
            break;
        int64_t ts = (int64_t)tsdb_be64_get((unsigned char *)k.mv_data + 8);
        if (ts > end_ms)
            break;
        double value;
        if (v.mv_size != sizeof value) {
            ret = firn_errf(err, FIRN_EIO, "series %llu at %lld ms: corrupt float sample",
                            (unsigned long long)series_id, (long long)ts);
            break;
        }
        memcpy(&value, v.mv_data, sizeof value);   /* little-endian hosts only */
        if ((ret = fn(ctx, ts, value)) != 0)
            break;
    }
    mdb_cursor_close(c);
    if (!ret && rc && rc != MDB_NOTFOUND)
        ret = lmdb_err(r, err, rc, "scanning");
    return ret;
}

/* ---- symbols back to frames ---------------------------------------------- */

/* A symbol's content.  Each kind has a cursor of its own: LMDB positions
 * a cursor on a key of the page it is already on without descending the
 * tree again, and a rebuild reads one kind's ids of one partition, which
 * share pages; a descent per symbol (mdb_get) was half of a 7-day flame
 * graph's time, most of it comparing keys. */
static int sym_get(tsdb_reader *r, uint32_t partition, enum sym_kind kind, uint32_t id,
                   struct cur *out)
{
    assert(kind > 0 && kind < SYM_KINDS);
    tsdb_symcache *cache = r->db->symcache;
    /* A kind's copy is overwritten by its next read: no caller holds two
     * records of one kind at once (a stack's locations, a location's
     * functions and mapping, their strings are read one at a time). */
    if (cache && tsdb_symcache_get(cache, partition, (uint8_t)kind, id, &r->sym_copy[kind])) {
        out->p = (const unsigned char *)r->sym_copy[kind].data;
        out->end = out->p + r->sym_copy[kind].len;
        out->bad = false;
        return 0;
    }
    int rc;
    if (!r->sym_cursor[kind] &&
        (rc = mdb_cursor_open(r->txn, r->db->dbi_symbols, &r->sym_cursor[kind])))
        return rc;
    unsigned char kb[SYM_KEY_LEN];
    tsdb_sym_key(kb, partition, kind, id);
    MDB_val k = {sizeof kb, kb}, v;
    rc = mdb_cursor_get(r->sym_cursor[kind], &k, &v, MDB_SET);
    if (rc)
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    if (cache)
        tsdb_symcache_put(cache, partition, (uint8_t)kind, id, v.mv_data, v.mv_size);
    out->p = v.mv_data;
    out->end = out->p + v.mv_size;
    out->bad = false;
    return 0;
}

static int sym_string(tsdb_reader *r, uint32_t partition, uint32_t id, const char **s,
                      size_t *len)
{
    struct cur c;
    int rc = sym_get(r, partition, SYM_STRING, id, &c);
    if (rc)
        return rc;
    *s = (const char *)c.p;
    *len = (size_t)(c.end - c.p);
    return 0;
}

static int corrupt(tsdb_reader *r, firn_err *err, uint32_t partition, const char *what,
                   uint32_t id, int rc)
{
    if (rc == MDB_CORRUPTED)
        return firn_errf(err, FIRN_EIO, "%s: partition %u: %s %u missing or corrupt",
                         r->db->path, partition, what, id);
    return lmdb_err(r, err, rc, what);
}

int tsdb_stack_functions(tsdb_reader *r, uint32_t partition, uint32_t stack,
                         const char ***names, size_t *n, firn_err *err)
{
    struct cur sc;
    int rc = sym_get(r, partition, SYM_STACK, stack, &sc);
    if (rc)
        return corrupt(r, err, partition, "stack", stack, rc);
    uint64_t nloc = tsdb_cur_varint(&sc);
    if (sc.bad || nloc > (uint64_t)(sc.end - sc.p))
        return corrupt(r, err, partition, "stack", stack, MDB_CORRUPTED);
    size_t cap = (size_t)nloc * 2 + 1, k = 0;
    const char **out = firn_arena_alloc(r->arena, cap * sizeof *out);
    for (uint64_t i = 0; i < nloc; i++) {
        uint32_t loc = (uint32_t)tsdb_cur_varint(&sc);
        struct cur lc;
        if ((rc = sym_get(r, partition, SYM_LOCATION, loc, &lc)))
            return corrupt(r, err, partition, "location", loc, rc);
        tsdb_cur_varint(&lc);   /* mapping */
        tsdb_cur_varint(&lc);   /* address */
        tsdb_cur_varint(&lc);   /* folded */
        uint64_t nlines = tsdb_cur_varint(&lc);
        if (lc.bad || nlines > (uint64_t)(lc.end - lc.p))
            return corrupt(r, err, partition, "location", loc, MDB_CORRUPTED);
        if (k + nlines + 1 > cap) {
            size_t ncap = (k + nlines + 1) * 2;
            const char **grown = firn_arena_alloc(r->arena, ncap * sizeof *grown);
            memcpy(grown, out, k * sizeof *out);
            out = grown;
            cap = ncap;
        }
        if (nlines == 0)
            out[k++] = "";
        for (uint64_t j = 0; j < nlines; j++) {
            uint32_t fn = (uint32_t)tsdb_cur_varint(&lc);
            tsdb_cur_zigzag(&lc);
            tsdb_cur_zigzag(&lc);
            out[k] = "";
            if (fn) {
                struct cur fc;
                if ((rc = sym_get(r, partition, SYM_FUNCTION, fn, &fc)))
                    return corrupt(r, err, partition, "function", fn, rc);
                uint32_t name_id = (uint32_t)tsdb_cur_varint(&fc);
                const char *s;
                size_t len;
                if (fc.bad || (rc = sym_string(r, partition, name_id, &s, &len)))
                    return corrupt(r, err, partition, "string", name_id,
                                   rc ? rc : MDB_CORRUPTED);
                out[k] = firn_arena_strndup(r->arena, s, len);
            }
            k++;
        }
    }
    *names = out;
    *n = k;
    return 0;
}

/* ---- rebuilding profiles -------------------------------------------------- */

/* Builder ids of the symbols resolved so far, per kind and partition, in
 * arrays indexed by the partition-local id (ids are dense): a frame costs
 * one load where a hash map keyed by (partition, id) cost a probe over
 * three arrays, which dominated merges of many stacks over many partitions.
 * A slot holds the builder id + 1 (0: not resolved yet; for stacks, the
 * merge's index of the stack, struct canon, + 1); ids past
 * RB_DENSE_MAX are resolved each time instead (only a corrupt store has
 * them). */
#define RB_DENSE_MAX (1u << 26)

struct rb_dense {
    uint32_t partition;
    uint32_t *v;
    uint64_t *shift;            /* mappings: memory_start - file_offset, beside v */
    size_t cap;
};

struct rebuild {
    tsdb_reader *r;
    pprof_builder *b;
    bool distinct_functions;    /* one partition: its function records, keyed
                                   by content, are distinct (no builder dedup) */
    struct rb_dense *dense[SYM_KINDS];
    size_t n_dense[SYM_KINDS];
    firn_err *err;
};

/* The slot of (kind, partition, id); NULL when it cannot have one.  For a
 * mapping, *shift (when shift is not NULL) is its shift's slot. */
static uint32_t *rb_slot(struct rebuild *rb, enum sym_kind kind, uint32_t part, uint32_t id,
                         uint64_t **shift)
{
    if (id >= RB_DENSE_MAX)
        return NULL;
    struct rb_dense *d = NULL;
    for (size_t i = rb->n_dense[kind]; i-- > 0 && !d;)
        if (rb->dense[kind][i].partition == part)
            d = &rb->dense[kind][i];
    if (!d) {
        struct rb_dense *nd =
            firn_xreallocarray(rb->dense[kind], rb->n_dense[kind] + 1, sizeof *nd);
        rb->dense[kind] = nd;
        d = &nd[rb->n_dense[kind]++];
        *d = (struct rb_dense){part, NULL, NULL, 0};
    }
    if (id >= d->cap) {
        /* below RB_DENSE_MAX: at most 256 MiB, the store's own bound */
        size_t ncap = d->cap ? d->cap * 2 : 1024;
        while (ncap <= id)
            ncap *= 2;
        uint32_t *nv = firn_xreallocarray(d->v, ncap, sizeof *nv);
        memset(nv + d->cap, 0, (ncap - d->cap) * sizeof *nv);
        d->v = nv;
        if (kind == SYM_MAPPING) {
            d->shift = firn_xreallocarray(d->shift, ncap, sizeof *d->shift);
        }
        d->cap = ncap;
    }
    if (shift) {
        assert(kind == SYM_MAPPING);
        *shift = &d->shift[id];
    }
    return &d->v[id];
}

static bool rb_get(struct rebuild *rb, enum sym_kind kind, uint32_t part, uint32_t id,
                   uint32_t *out)
{
    uint32_t *s = rb_slot(rb, kind, part, id, NULL);
    if (!s || !*s)
        return false;
    *out = *s - 1;
    return true;
}

/* Remembers v (an id past RB_DENSE_MAX is simply not remembered). */
static void rb_put(struct rebuild *rb, enum sym_kind kind, uint32_t part, uint32_t id, uint32_t v)
{
    if (id >= RB_DENSE_MAX)
        return;
    uint32_t *s = rb_slot(rb, kind, part, id, NULL);
    assert(s && v < UINT32_MAX);
    *s = v + 1;
}

static void rb_free(struct rebuild *rb)
{
    for (int k = 0; k < SYM_KINDS; k++) {
        for (size_t i = 0; i < rb->n_dense[k]; i++) {
            free(rb->dense[k][i].v);
            free(rb->dense[k][i].shift);
        }
        free(rb->dense[k]);
    }
}

static int rb_string(struct rebuild *rb, uint32_t part, uint32_t id, int64_t *out)
{
    uint32_t have;
    if (rb_get(rb, SYM_STRING, part, id, &have)) {
        *out = have;
        return 0;
    }
    const char *s;
    size_t len;
    struct cur c;
    int rc = sym_get(rb->r, part, SYM_STRING, id, &c);
    if (rc)
        return corrupt(rb->r, rb->err, part, "string", id, rc);
    s = (const char *)c.p;
    len = (size_t)(c.end - c.p);
    *out = pprof_builder_string(rb->b, s, len);
    rb_put(rb, SYM_STRING, part, id, (uint32_t)*out);
    return 0;
}

static int rb_function(struct rebuild *rb, uint32_t part, uint32_t id, uint32_t *out)
{
    if (rb_get(rb, SYM_FUNCTION, part, id, out))
        return 0;
    struct cur c;
    int rc = sym_get(rb->r, part, SYM_FUNCTION, id, &c);
    if (rc)
        return corrupt(rb->r, rb->err, part, "function", id, rc);
    uint32_t name = (uint32_t)tsdb_cur_varint(&c), sys = (uint32_t)tsdb_cur_varint(&c),
             file = (uint32_t)tsdb_cur_varint(&c);
    pprof_function f = {.start_line = tsdb_cur_zigzag(&c)};
    if (c.bad)
        return corrupt(rb->r, rb->err, part, "function", id, MDB_CORRUPTED);
    if ((rc = rb_string(rb, part, name, &f.name)) || (rc = rb_string(rb, part, sys, &f.system_name)) ||
        (rc = rb_string(rb, part, file, &f.filename)))
        return rc;
    /* (an id past RB_DENSE_MAX is not remembered, so it could come again) */
    *out = rb->distinct_functions && id < RB_DENSE_MAX
               ? pprof_builder_function_distinct(rb->b, &f)
               : pprof_builder_function(rb->b, &f);
    rb_put(rb, SYM_FUNCTION, part, id, *out);
    return 0;
}

/* The builder's mapping, and in *shift what turns a stored (file-relative)
 * address back into the profile's: memory_start - file_offset, remembered
 * beside the builder id so that a location of a known mapping reads no
 * mapping symbol (it read one per location: a tenth of a 7-day flame
 * graph). */
static int rb_mapping(struct rebuild *rb, uint32_t part, uint32_t id, uint32_t *out,
                      uint64_t *shift)
{
    uint64_t *shift_slot;
    uint32_t *slot = rb_slot(rb, SYM_MAPPING, part, id, &shift_slot);
    if (slot && *slot) {
        *out = *slot - 1;
        *shift = *shift_slot;
        return 0;
    }
    struct cur c;
    int rc = sym_get(rb->r, part, SYM_MAPPING, id, &c);
    if (rc)
        return corrupt(rb->r, rb->err, part, "mapping", id, rc);
    uint32_t file = (uint32_t)tsdb_cur_varint(&c), bid = (uint32_t)tsdb_cur_varint(&c);
    unsigned flags = (unsigned)tsdb_cur_varint(&c);
    pprof_mapping m = {.memory_start = tsdb_cur_varint(&c)};
    m.memory_limit = tsdb_cur_varint(&c);
    m.file_offset = tsdb_cur_varint(&c);
    if (c.bad)
        return corrupt(rb->r, rb->err, part, "mapping", id, MDB_CORRUPTED);
    m.has_functions = flags & 1;
    m.has_filenames = flags & 2;
    m.has_line_numbers = flags & 4;
    m.has_inline_frames = flags & 8;
    *shift = m.memory_start - m.file_offset;   /* modulo 2^64, as the sum it stands for */
    if ((rc = rb_string(rb, part, file, &m.filename)) || (rc = rb_string(rb, part, bid, &m.build_id)))
        return rc;
    *out = pprof_builder_mapping(rb->b, &m);
    if (id < RB_DENSE_MAX) {   /* remembered (the strings' slots are another kind's) */
        slot = rb_slot(rb, SYM_MAPPING, part, id, &shift_slot);
        *slot = *out + 1;
        *shift_slot = *shift;
    }
    return 0;
}

static int rb_location(struct rebuild *rb, uint32_t part, uint32_t id, uint32_t *out)
{
    if (rb_get(rb, SYM_LOCATION, part, id, out))
        return 0;
    struct cur c;
    int rc = sym_get(rb->r, part, SYM_LOCATION, id, &c);
    if (rc)
        return corrupt(rb->r, rb->err, part, "location", id, rc);
    uint32_t mapping = (uint32_t)tsdb_cur_varint(&c);
    uint64_t address = tsdb_cur_varint(&c);
    pprof_location l = {.is_folded = tsdb_cur_varint(&c) != 0, .mapping = PPROF_NONE};
    uint64_t nlines = tsdb_cur_varint(&c);
    if (c.bad || nlines > (uint64_t)(c.end - c.p))
        return corrupt(rb->r, rb->err, part, "location", id, MDB_CORRUPTED);
    pprof_line lines_stack[8];
    /* nlines is bounded by the record's bytes, checked above */
    pprof_line *lines =
        nlines <= 8 ? lines_stack : firn_xreallocarray(NULL, (size_t)nlines, sizeof *lines);
    for (uint64_t i = 0; i < nlines && !rc; i++) {
        uint32_t fn = (uint32_t)tsdb_cur_varint(&c);
        lines[i].line = tsdb_cur_zigzag(&c);
        lines[i].column = tsdb_cur_zigzag(&c);
        lines[i].function = PPROF_NONE;
        if (fn)
            rc = rb_function(rb, part, fn, &lines[i].function);
    }
    if (!rc && c.bad)
        rc = corrupt(rb->r, rb->err, part, "location", id, MDB_CORRUPTED);
    if (!rc && mapping) {
        uint64_t shift = 0;
        if (!(rc = rb_mapping(rb, part, mapping, &l.mapping, &shift)))
            address += shift;
    }
    if (!rc) {
        l.address = address;
        l.lines = lines;
        l.n_lines = (size_t)nlines;
        *out = pprof_builder_location(rb->b, &l);
        rb_put(rb, SYM_LOCATION, part, id, *out);
    }
    if (lines != lines_stack)
        free(lines);
    return rc;
}

static int rb_labels(struct rebuild *rb, uint32_t part, uint32_t id, pprof_label **out,
                     size_t *n)
{
    *n = 0;
    if (!id)
        return 0;
    struct cur c;
    int rc = sym_get(rb->r, part, SYM_LABELSET, id, &c);
    if (rc)
        return corrupt(rb->r, rb->err, part, "label set", id, rc);
    uint64_t count = tsdb_cur_varint(&c);
    if (c.bad || count > (uint64_t)(c.end - c.p))
        return corrupt(rb->r, rb->err, part, "label set", id, MDB_CORRUPTED);
    pprof_label *l = firn_arena_calloc(rb->r->arena, count ? count : 1, sizeof *l);
    for (uint64_t i = 0; i < count; i++) {
        uint32_t key = (uint32_t)tsdb_cur_varint(&c), str = (uint32_t)tsdb_cur_varint(&c);
        l[i].num = tsdb_cur_zigzag(&c);
        uint32_t unit = (uint32_t)tsdb_cur_varint(&c);
        if (c.bad)
            return corrupt(rb->r, rb->err, part, "label set", id, MDB_CORRUPTED);
        if ((rc = rb_string(rb, part, key, &l[i].key)) || (rc = rb_string(rb, part, str, &l[i].str)) ||
            (rc = rb_string(rb, part, unit, &l[i].num_unit)))
            return rc;
    }
    *out = l;
    *n = (size_t)count;
    return 0;
}

static int rb_stack(struct rebuild *rb, uint32_t part, uint32_t id, uint32_t **locs,
                    size_t *n, size_t *cap)
{
    struct cur c;
    int rc = sym_get(rb->r, part, SYM_STACK, id, &c);
    if (rc)
        return corrupt(rb->r, rb->err, part, "stack", id, rc);
    uint64_t count = tsdb_cur_varint(&c);
    if (c.bad || count > (uint64_t)(c.end - c.p))
        return corrupt(rb->r, rb->err, part, "stack", id, MDB_CORRUPTED);
    if (count > *cap) {
        *locs = firn_xreallocarray(*locs, (size_t)count, sizeof **locs);
        *cap = (size_t)count;
    }
    for (uint64_t i = 0; i < count; i++) {
        uint32_t loc = (uint32_t)tsdb_cur_varint(&c);
        if (c.bad)
            return corrupt(rb->r, rb->err, part, "stack", id, MDB_CORRUPTED);
        if ((rc = rb_location(rb, part, loc, &(*locs)[i])))
            return rc;
    }
    *n = (size_t)count;
    return 0;
}

/* ---- merging ---------------------------------------------------------------- */

/* The raw profiles of a merge go straight into the accumulator. */
struct raw_ctx {
    struct acc *a;
    size_t max_samples;
    firn_err *err;
};

static int cap_check(const struct acc *a, size_t max_samples, firn_err *err)
{
    if (max_samples && a->samples > max_samples)
        return firn_errf(err, FIRN_ETOOBIG, "%s", TSDB_TOO_MANY_SAMPLES);
    return 0;
}

static int merge_block(void *ctx, const tsdb_block *b)
{
    struct raw_ctx *rc = ctx;
    tsdb_acc_note(rc->a, b->timestamp_ms, b->timestamp_ms * 1000000 + b->duration_nanos,
                  b->period, 1);
    if (tsdb_acc_add(rc->a, b->partition, b->stacks, b->labelsets, b->values, b->n_samples))
        return firn_errf(rc->err, FIRN_ENOMEM, "out of memory merging profiles");
    return cap_check(rc->a, rc->max_samples, rc->err);
}

int tsdb_merge_series(tsdb_reader *r, struct acc *a, uint64_t series, int64_t start_ms,
                      int64_t end_ms, unsigned levels, size_t max_samples, firn_err *err)
{
    struct raw_ctx rc = {a, max_samples, err};
    struct rollup_span *spans = NULL;
    size_t n = 0;
    if (levels && r->db->has_rollups &&
        tsdb_rollup_plan(r, series, start_ms, end_ms, levels, &spans, &n, err) < 0)
        return err && err->code ? err->code : FIRN_EIO;
    /* raw profiles in the gaps between rollups, all in time order */
    int64_t t = start_ms;
    int ret = 0;
    for (size_t i = 0; i <= n && !ret; i++) {
        int64_t gap_end = i < n ? spans[i].start_ms - 1 : end_ms;
        if (gap_end >= t)
            ret = tsdb_scan(r, series, t, gap_end, 0, merge_block, &rc, err);
        if (i < n && !ret) {
            if (!(ret = tsdb_rollup_add(r, a, &spans[i].value, err)))
                ret = cap_check(a, max_samples, err);
            t = spans[i].end_ms + 1;
        }
    }
    free(spans);
    return ret;
}

static int field_copy(char *dst, size_t size, const firn_profile_type *pt, int i)
{
    if (pt->len[i] >= size)
        return -1;
    memcpy(dst, pt->field[i], pt->len[i]);
    dst[pt->len[i]] = 0;
    return 0;
}

/* ---- stacks across partitions --------------------------------------------- */

/* The distinct stacks of a merge, whatever partitions they are stored in.
 * A stack has another id in each partition, so a merge over daily
 * partitions met each stack once a day: it resolved every copy to frames
 * (a stack, location, function and string read per copy) and summed the
 * copies afterwards (pprof_merge_samples).  Here a stack is known by its
 * content identity, the hash the writer files it under in symbol_idx
 * (xxh3-128 over its locations' pprof_location_identity): a stack resolved
 * in one partition is looked up by that hash in the next one, one
 * symbol_idx read where resolving it again read every frame's symbols, and
 * its entries there add to the same sum before any frame is resolved. */
struct canon_stack {
    pprof_hash hash;
    size_t off;                 /* into locs */
    size_t len;
    int64_t value;              /* summed (label sets dropped) */
};

struct canon {
    firn_u64map map;            /* identity.lo -> index */
    struct canon_stack *s;
    size_t n, cap;
    uint32_t *locs;             /* builder location ids, stack after stack */
    size_t n_locs, cap_locs;
    pprof_hash *loc_ident;      /* identity by builder location id */
    size_t n_loc_ident, cap_loc_ident;
    pprof_hash *scratch;        /* one stack's location identities */
    size_t cap_scratch;
    bool keyed;                 /* more than one partition: stacks need identities */
};

/* A known stack is looked up in another partition only while there are at
 * most this many of them per distinct stack of that partition's entries:
 * a lookup costs about what one frame's reads cost, and resolving an
 * unknown stack reads several frames. */
#define CANON_LOOKUP_RATIO 8

static void canon_free(struct canon *cs)
{
    firn_u64map_destroy(&cs->map);
    free(cs->s);
    free(cs->locs);
    free(cs->loc_ident);
    free(cs->scratch);
}

/* The identity of a resolved stack, as write.c computes it at ingest. */
static pprof_hash canon_identity(struct canon *cs, const pprof_builder *b, const uint32_t *locs,
                                 size_t n)
{
    if (n > cs->cap_scratch) {
        cs->scratch = firn_xreallocarray(cs->scratch, n, sizeof *cs->scratch);
        cs->cap_scratch = n;
    }
    for (size_t i = 0; i < n; i++) {
        /* builder ids are handed out in order: all below a new one exist */
        while (cs->n_loc_ident <= locs[i]) {
            cs->loc_ident = firn_grow(cs->loc_ident, cs->n_loc_ident, &cs->cap_loc_ident,
                                      sizeof *cs->loc_ident, 256);
            cs->loc_ident[cs->n_loc_ident] =
                pprof_builder_location_identity(b, (uint32_t)cs->n_loc_ident);
            cs->n_loc_ident++;
        }
        cs->scratch[i] = cs->loc_ident[locs[i]];
    }
    /* one call over the identities, the bytes write.c streams into its
     * hash state (xxh3 gives both the same result) */
    XXH128_hash_t h = XXH3_128bits(cs->scratch, n * sizeof *cs->scratch);
    return (pprof_hash){h.low64, h.high64};
}

/* The index of a stack of this identity, added with locs when new.  A
 * 64-bit collision of different identities (as in pprof_merge_samples)
 * keeps the second one apart, unsummed.  Unkeyed (one partition, whose
 * stacks are distinct by id), h is not looked at. */
static uint32_t canon_add(struct canon *cs, pprof_hash h, const uint32_t *locs, size_t n)
{
    uint32_t c;
    if (cs->keyed && firn_u64map_get(&cs->map, h.lo, &c) && pprof_hash_eq(cs->s[c].hash, h))
        return c;
    assert(cs->n < UINT32_MAX - 1);   /* at most one per accumulator entry */
    cs->s = firn_grow(cs->s, cs->n, &cs->cap, sizeof *cs->s, 256);
    c = (uint32_t)cs->n++;
    if (cs->keyed)
        firn_u64map_put(&cs->map, h.lo, c, NULL);
    cs->s[c] = (struct canon_stack){h, cs->n_locs, n, 0};
    if (cs->cap_locs - cs->n_locs < n) {
        /* n came from a stored record, so the sum is in memory already */
        size_t ncap = (cs->n_locs + n) * 2;
        cs->locs = firn_xreallocarray(cs->locs, ncap, sizeof *cs->locs);
        cs->cap_locs = ncap;
    }
    if (n)
        memcpy(cs->locs + cs->n_locs, locs, n * sizeof *locs);
    cs->n_locs += n;
    return c;
}

struct canon_key {
    unsigned char key[SYM_IDX_KEY_LEN];
    uint32_t c;
};

static int cmp_canon_key(const void *a, const void *b)
{
    return memcmp(((const struct canon_key *)a)->key, ((const struct canon_key *)b)->key,
                  SYM_IDX_KEY_LEN);
}

/* Notes that stack index value v of partition part names known stack c. */
static int canon_note(struct rebuild *rb, uint32_t part, const MDB_val *v, uint32_t c)
{
    uint32_t id;
    if (v->mv_size != sizeof id)
        return corrupt(rb->r, rb->err, part, "stack index entry of", c, MDB_CORRUPTED);
    memcpy(&id, v->mv_data, sizeof id);
    uint32_t *slot = rb_slot(rb, SYM_STACK, part, id, NULL);
    if (slot)
        *slot = c + 1;
    return 0;
}

/* Notes the id that partition part gives each stack known so far: each is
 * looked up, in key order through one cursor, so that consecutive ones on
 * a page cost no descent.  (Not a pass over the partition's whole index:
 * a scan visits every page of the range, and LMDB trusts its pages, so a
 * damaged page anywhere in it would crash the reader; e2e.faults.) */
static int canon_find_in(struct rebuild *rb, struct canon *cs, uint32_t part, MDB_cursor **cur)
{
    tsdb_reader *r = rb->r;
    int rc = 0;
    if (!*cur && (rc = mdb_cursor_open(r->txn, r->db->dbi_symbol_idx, cur)))
        return lmdb_err(r, rb->err, rc, "symbol index");
    struct canon_key *keys = firn_xreallocarray(NULL, cs->n, sizeof *keys);
    for (size_t c = 0; c < cs->n; c++) {
        tsdb_sym_idx_key(keys[c].key, part, SYM_STACK, cs->s[c].hash);
        keys[c].c = (uint32_t)c;
    }
    firn_sort(keys, cs->n, sizeof *keys, cmp_canon_key);
    for (size_t i = 0; i < cs->n && !rc; i++) {
        MDB_val k = {SYM_IDX_KEY_LEN, keys[i].key}, v;
        rc = mdb_cursor_get(*cur, &k, &v, MDB_SET);
        if (rc == MDB_NOTFOUND) {
            rc = 0;
            continue;
        }
        if (rc)
            rc = lmdb_err(r, rb->err, rc, "symbol index");
        else
            rc = canon_note(rb, part, &v, keys[i].c);
    }
    free(keys);
    return rc;
}

/* The index of stack id of partition part: known, or resolved now. */
static int canon_stack(struct rebuild *rb, struct canon *cs, uint32_t part, uint32_t id,
                       uint32_t **locs, size_t *cap, uint32_t *out)
{
    uint32_t *slot = rb_slot(rb, SYM_STACK, part, id, NULL);
    if (slot && *slot) {
        *out = *slot - 1;
        return 0;
    }
    size_t n = 0;
    int rc = rb_stack(rb, part, id, locs, &n, cap);
    if (rc)
        return rc;
    pprof_hash h = {0, 0};
    if (cs->keyed)
        h = canon_identity(cs, rb->b, *locs, n);
    *out = canon_add(cs, h, *locs, n);
    if (id < RB_DENSE_MAX)
        *rb_slot(rb, SYM_STACK, part, id, NULL) = *out + 1;
    return 0;
}

static pprof_profile *merge_build(tsdb_reader *r, const struct acc *m, const struct acc_entry *e,
                                  size_t n_entries, const char *type_name, firn_err *err)
{
    firn_profile_type pt;
    if (firn_profile_type_parse(type_name, &pt, err) < 0)
        return NULL;
    char f[5][256];
    for (int i = 0; i < 5; i++)
        if (field_copy(f[i], sizeof f[i], &pt, i) < 0) {
            firn_errf(err, FIRN_EINVAL, "profile type %s: field too long", type_name);
            return NULL;
        }
    struct rebuild rb = {.r = r, .b = pprof_builder_new(1), .err = err};
    /* entries are sorted by partition */
    struct canon cs = {.keyed = n_entries && e[0].partition != e[n_entries - 1].partition};
    /* A partition stores a function once (keyed by its names' ids and
     * start line), so one partition's functions need no builder dedup;
     * locations do (their key is an identity that need not match what is
     * rebuilt), and strings too (the builder's own, the sample types',
     * may be among them). */
    rb.distinct_functions = !cs.keyed;
    firn_u64map_init(&cs.map, cs.keyed ? n_entries : 0);
    MDB_cursor *idx_cursor = NULL;
    uint32_t *locs = NULL;
    size_t cap = 0;
    bool partitions_differ = false;
    int rc = 0;
    pprof_builder_sample_type(rb.b, 0, f[FIRN_PT_SAMPLE_TYPE], f[FIRN_PT_SAMPLE_UNIT]);
    pprof_builder_period(rb.b, f[FIRN_PT_PERIOD_TYPE], f[FIRN_PT_PERIOD_UNIT], m->period);
    if (m->blocks)
        pprof_builder_time(rb.b, m->min_ts * 1000000, m->max_end_ns - m->min_ts * 1000000);
    /* Entries come by partition.  rb_stack, rb_labels and canon_find_in
     * fill err on every error (a corrupt record, LMDB's own failure); the
     * builder's adders cannot fail. */
    for (size_t i = 0; i < n_entries && !rc;) {
        uint32_t part = e[i].partition;
        size_t end = i, distinct = 0;
        for (; end < n_entries && e[end].partition == part; end++)
            distinct += end == i || e[end].stack != e[end - 1].stack;
        if (i > 0) {
            partitions_differ = true;
            if (cs.n <= CANON_LOOKUP_RATIO * distinct)
                rc = canon_find_in(&rb, &cs, part, &idx_cursor);
        }
        for (; i < end && !rc; i++) {
            uint32_t c;
            if ((rc = canon_stack(&rb, &cs, part, e[i].stack, &locs, &cap, &c)))
                break;
            if (!m->keep_labels) {   /* the accumulator dropped label sets */
                assert(e[i].labelset == 0);
                cs.s[c].value = pprof_add_sat(cs.s[c].value, e[i].value);
                continue;
            }
            size_t nl = 0;
            pprof_label *labels = NULL;
            if (!(rc = rb_labels(&rb, part, e[i].labelset, &labels, &nl)))
                pprof_builder_sample(rb.b, cs.locs + cs.s[c].off, cs.s[c].len, &e[i].value,
                                     labels, nl);
        }
    }
    /* the stacks in the order the entries first named them, as
     * pprof_merge_samples would have kept them */
    for (size_t c = 0; c < cs.n && !rc && !m->keep_labels; c++)
        pprof_builder_sample(rb.b, cs.locs + cs.s[c].off, cs.s[c].len, &cs.s[c].value, NULL,
                             0);
    if (idx_cursor)
        mdb_cursor_close(idx_cursor);
    free(locs);
    rb_free(&rb);
    canon_free(&cs);
    if (rc) {
        pprof_builder_free(rb.b);
        return NULL;
    }
    pprof_profile *p = pprof_builder_finish(rb.b, err);
    /* with label sets, the same (stack, label set) of two partitions is
     * still two samples: sum them */
    if (partitions_differ && m->keep_labels)
        pprof_merge_samples(p, err);
    return p;
}

pprof_profile *tsdb_merge(tsdb_reader *r, const uint64_t *series_ids, size_t n_series,
                          int64_t start_ms, int64_t end_ms, const tsdb_merge_options *opts,
                          tsdb_merge_stats *stats, firn_err *err)
{
    struct acc m;
    tsdb_acc_init(&m, opts && opts->keep_labels);
    size_t max_samples = opts ? opts->max_samples : 0;
    unsigned levels = opts && opts->raw ? 0 : ROLLUP_LEVELS_ALL;
    firn_arena *arena = firn_arena_new(0);
    char *type_name = NULL;
    pprof_profile *p = NULL;
    struct acc_entry *entries = NULL;
    size_t n_entries = 0;
    if (n_series == 0) {
        firn_errf(err, FIRN_EINVAL, "no series to merge");
        goto out;
    }
    for (size_t i = 0; i < n_series; i++) {
        tsdb_series s;
        if (get_series(r, series_ids[i], arena, &s, err) < 0)
            goto out;
        const char *name = firn_labels_get(s.labels, s.n_labels, FIRN_LABEL_NAME);
        if (!name) {
            firn_errf(err, FIRN_EIO, "series %llu has no __name__",
                      (unsigned long long)series_ids[i]);
            goto out;
        }
        if (!type_name) {
            type_name = firn_arena_strndup(arena, name, strlen(name));
        } else if (strcmp(type_name, name) != 0) {
            firn_errf(err, FIRN_EINVAL,
                      "cannot merge profiles of different types (%s and %s); select one "
                      "profile type", type_name, name);
            goto out;
        }
        if (tsdb_merge_series(r, &m, series_ids[i], start_ms, end_ms, levels, max_samples,
                              err) < 0)
            goto out;
    }
    if (!m.blocks)
        m.min_ts = start_ms > 0 ? start_ms : 0;
    tsdb_acc_entries(&m, &entries, &n_entries);
    p = merge_build(r, &m, entries, n_entries, type_name, err);
    if (stats) {
        stats->blocks = m.blocks;
        stats->samples = m.samples;
        stats->stacks = n_entries;
        stats->rollups = m.rollups;
    }
out:
    free(entries);
    tsdb_acc_free(&m);
    firn_arena_free(arena);
    return p;
}

struct exists_ctx {
    bool found;
};

static int note_found(void *ctx, const tsdb_block *b)
{
    (void)b;
    ((struct exists_ctx *)ctx)->found = true;
    return 0;
}

pprof_profile *tsdb_profile_at(tsdb_reader *r, uint64_t series_id, int64_t timestamp_ms,
                               firn_err *err)
{
    struct exists_ctx ex = {false};
    if (tsdb_scan(r, series_id, timestamp_ms, timestamp_ms, TSDB_SCAN_TOTALS, note_found, &ex,
                  err) < 0)
        return NULL;
    if (!ex.found) {
        firn_errf(err, FIRN_EINVAL, "series %llu has no profile at %lld ms",
                  (unsigned long long)series_id, (long long)timestamp_ms);
        return NULL;
    }
    tsdb_merge_options o = {.keep_labels = true};
    return tsdb_merge(r, &series_id, 1, timestamp_ms, timestamp_ms, &o, NULL, err);
}
