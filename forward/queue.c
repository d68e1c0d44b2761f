/* queue.c -- one endpoint's durable queue on LMDB (layout, locks and group
 * commit in internal.h).
 *
 * Why LMDB rather than segment files: it is already the store's engine,
 * a commit is atomic and synced (so a record is either wholly there after
 * kill -9 or not at all, with no torn tail to repair), and deleting sent
 * records frees pages that later appends reuse, so the file stops growing
 * at the bound.  The map is sized at twice the bound plus slack, for the
 * B-tree's pages and the copy-on-write of a commit.
 */
#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "forward/internal.h"

#define KEY_LEN 12
#define MAP_SLACK (32u << 20)

static void key_put(unsigned char *k, uint32_t shard, uint64_t seq)
{
    for (int i = 0; i < 4; i++)
        k[i] = (unsigned char)(shard >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        k[4 + i] = (unsigned char)(seq >> (56 - 8 * i));
}

static uint32_t key_shard(const unsigned char *k)
{
    return (uint32_t)k[0] << 24 | (uint32_t)k[1] << 16 | (uint32_t)k[2] << 8 | k[3];
}

static uint64_t key_seq(const unsigned char *k)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | k[4 + i];
    return v;
}

static int64_t record_time(const MDB_val *v)
{
    int64_t t = 0;
    if (v->mv_size >= FWD_RECORD_HEADER)
        memcpy(&t, v->mv_data, sizeof t);   /* little-endian hosts, as the store */
    return t;
}

static int lmdb_err(firn_err *err, const char *what, int rc)
{
    return firn_errf(err, FIRN_EIO, "profile_remote_write queue: %s: %s", what,
                     mdb_strerror(rc));
}

static size_t map_size(uint64_t max_bytes)
{
    return (size_t)(2 * max_bytes + MAP_SLACK);
}

/* Sum the records, find the next sequence, and move records of shards
 * past the count (a reload lowered it) to shard % shards. */
static int scan(fqueue *q, firn_err *err)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
    if (rc)
        return lmdb_err(err, "starting a write", rc);
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, q->dbi, &c))) {
        mdb_txn_abort(txn);
        return lmdb_err(err, "opening a cursor", rc);
    }
    q->bytes = q->count = 0;
    memset(q->pending, 0, sizeof q->pending);
    uint64_t max_seq = 0;
    bool moved = false;
    MDB_val k, v;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != KEY_LEN)
            continue;
        uint32_t shard = key_shard(k.mv_data);
        uint64_t seq = key_seq(k.mv_data);
        if (seq + 1 > max_seq)
            max_seq = seq + 1;
        if (shard >= q->shards) {
            /* the put may move the pages k and v point into: copy both */
            unsigned char ok[KEY_LEN], nk[KEY_LEN];
            memcpy(ok, k.mv_data, KEY_LEN);
            key_put(nk, shard % q->shards, seq);
            void *copy = firn_xmemdup(v.mv_data, v.mv_size);
            MDB_val nkv = {KEY_LEN, nk}, nv = {v.mv_size, copy}, okv = {KEY_LEN, ok};
            rc = mdb_put(txn, q->dbi, &nkv, &nv, 0);
            free(copy);
            if (rc || (rc = mdb_cursor_get(c, &okv, &v, MDB_SET)) || (rc = mdb_cursor_del(c, 0)))
                break;
            moved = true;
            shard %= q->shards;
        }
        q->bytes += v.mv_size;
        q->count++;
        q->pending[shard]++;
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return lmdb_err(err, "reading the records", rc);
    }
    q->next_seq = max_seq;
    if (!moved) {
        mdb_txn_abort(txn);
        return 0;
    }
    if ((rc = mdb_txn_commit(txn)))
        return lmdb_err(err, "moving records between shards", rc);
    /* moving changed which keys a cursor meets first: count again */
    return scan(q, err);
}

int fq_open(fqueue *q, const char *dir, uint64_t max_bytes, uint32_t shards, firn_err *err)
{
    assert(shards >= 1 && shards <= FWD_SHARDS_MAX);
    memset(q, 0, sizeof *q);
    q->max_bytes = max_bytes;
    q->shards = shards;
    if (mkdir(dir, 0750) < 0 && errno != EEXIST)
        return firn_errf(err, FIRN_EIO, "profile_remote_write queue: %s: %s", dir,
                         strerror(errno));
    int rc;
    MDB_txn *txn = NULL;
    if ((rc = mdb_env_create(&q->env)))
        return lmdb_err(err, dir, rc);
    if ((rc = mdb_env_set_maxdbs(q->env, 1)) ||
        (rc = mdb_env_set_mapsize(q->env, map_size(max_bytes))) ||
        (rc = mdb_env_open(q->env, dir, MDB_NOTLS, 0640)) ||
        (rc = mdb_txn_begin(q->env, NULL, 0, &txn)) ||
        (rc = mdb_dbi_open(txn, "records", MDB_CREATE, &q->dbi)) ||
        (rc = mdb_txn_commit(txn))) {
        if (txn && rc)
            mdb_txn_abort(txn);
        mdb_env_close(q->env);
        q->env = NULL;
        return lmdb_err(err, dir, rc);
    }
    if (scan(q, err) < 0) {
        firn_err_prefix(err, "%s", dir);
        mdb_env_close(q->env);
        q->env = NULL;
        return FIRN_EIO;
    }
    pthread_mutex_init(&q->wmu, NULL);
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cond, NULL);
    pthread_cond_init(&q->appended, NULL);
    q->waiting_tail = &q->waiting;
    return 0;
}

void fq_close(fqueue *q)
{
    if (!q->env)
        return;
    assert(!q->waiting && !q->leading);
    mdb_env_close(q->env);
    q->env = NULL;
    pthread_mutex_destroy(&q->wmu);
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cond);
    pthread_cond_destroy(&q->appended);
}

int fq_configure(fqueue *q, uint64_t max_bytes, uint32_t shards, firn_err *err)
{
    assert(shards >= 1 && shards <= FWD_SHARDS_MAX);
    pthread_mutex_lock(&q->wmu);
    pthread_mutex_lock(&q->mu);
    int rc = 0;
    if (max_bytes != q->max_bytes) {
        size_t size = map_size(max_bytes);
        MDB_envinfo info;
        /* never below what the file holds: LMDB refuses to shrink under data */
        if (mdb_env_info(q->env, &info) == 0 && info.me_mapsize > size)
            size = info.me_mapsize;
        if ((rc = mdb_env_set_mapsize(q->env, size)))
            rc = lmdb_err(err, "resizing the map", rc);
        else
            q->max_bytes = max_bytes;
    }
    if (rc == 0 && shards != q->shards) {
        uint32_t old = q->shards;
        q->shards = shards;
        if ((rc = scan(q, err)) < 0)
            q->shards = old;
    }
    pthread_mutex_unlock(&q->mu);
    pthread_mutex_unlock(&q->wmu);
    return rc;
}

/* The counters a group commit works on: read and set under wmu (and mu
 * for the set), so a transaction that aborts leaves them as they were. */
typedef struct counts {
    uint64_t bytes, count, next_seq;
    uint64_t pending[FWD_SHARDS_MAX];
} counts;

struct fq_append_req {
    uint32_t shard;
    const void *data;
    size_t len;
    int rc;               /* 0 or an LMDB error */
    uint64_t dropped;
    bool done;
    fq_append_req *next;
};

/* Delete the queue's oldest record in txn; 0, MDB_NOTFOUND when empty. */
static int drop_oldest(fqueue *q, MDB_txn *txn, counts *c)
{
    MDB_cursor *cur;
    int rc = mdb_cursor_open(txn, q->dbi, &cur);
    if (rc)
        return rc;
    uint64_t best_seq = UINT64_MAX;
    uint32_t best_shard = 0;
    size_t best_size = 0;
    for (uint32_t s = 0; s < q->shards; s++) {
        if (!c->pending[s])
            continue;
        unsigned char kb[KEY_LEN];
        key_put(kb, s, 0);
        MDB_val k = {KEY_LEN, kb}, v;
        rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
        if (rc == 0 && k.mv_size == KEY_LEN && key_shard(k.mv_data) == s &&
            key_seq(k.mv_data) < best_seq) {
            best_seq = key_seq(k.mv_data);
            best_shard = s;
            best_size = v.mv_size;
        } else if (rc && rc != MDB_NOTFOUND) {
            mdb_cursor_close(cur);
            return rc;
        }
    }
    mdb_cursor_close(cur);
    if (best_seq == UINT64_MAX)
        return MDB_NOTFOUND;
    unsigned char kb[KEY_LEN];
    key_put(kb, best_shard, best_seq);
    MDB_val k = {KEY_LEN, kb};
    if ((rc = mdb_del(txn, q->dbi, &k, NULL)))
        return rc;
    assert(c->bytes >= best_size && c->count && c->pending[best_shard]);
    c->bytes -= best_size;
    c->count--;
    c->pending[best_shard]--;
    return 0;
}

/* One transaction holding every record of the group, each after dropping
 * the oldest records it needs room for; extra: how many more to drop first
 * (a retry after a full map). */
static int write_group(fqueue *q, fq_append_req *group, uint64_t extra, counts *c)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
    if (rc)
        return rc;
    for (uint64_t i = 0; i < extra && rc == 0; i++)
        if ((rc = drop_oldest(q, txn, c)) == MDB_NOTFOUND)
            rc = 0;
    for (fq_append_req *r = group; r && rc == 0; r = r->next) {
        size_t size = FWD_RECORD_HEADER + r->len;
        r->dropped = 0;
        while (rc == 0 && c->count && c->bytes + size > q->max_bytes)
            if ((rc = drop_oldest(q, txn, c)) == 0)
                r->dropped++;
        if (rc == MDB_NOTFOUND)
            rc = 0;
        unsigned char kb[KEY_LEN];
        key_put(kb, r->shard, c->next_seq);
        MDB_val k = {KEY_LEN, kb}, v = {size, NULL};
        if (rc == 0 && (rc = mdb_put(txn, q->dbi, &k, &v, MDB_RESERVE)) == 0) {
            int64_t now = firn_now_ms();
            memcpy(v.mv_data, &now, sizeof now);
            memcpy((unsigned char *)v.mv_data + FWD_RECORD_HEADER, r->data, r->len);
            c->next_seq++;
            c->bytes += size;
            c->count++;
            c->pending[r->shard]++;
        }
    }
    if (rc == 0)
        return mdb_txn_commit(txn);
    mdb_txn_abort(txn);
    return rc;
}

/* The leader's work: commit the group, then publish the counters and wake
 * the group's appenders and the senders. */
static void commit_group(fqueue *q, fq_append_req *group)
{
    pthread_mutex_lock(&q->wmu);
    counts before;
    pthread_mutex_lock(&q->mu);
    before.bytes = q->bytes;
    before.count = q->count;
    before.next_seq = q->next_seq;
    memcpy(before.pending, q->pending, sizeof before.pending);
    pthread_mutex_unlock(&q->mu);
    counts c = before;
    int rc;
    /* a full map (pages the B-tree's shape holds): drop more, up to the
     * whole queue, before giving up */
    for (uint64_t extra = 0;; extra++) {
        rc = write_group(q, group, extra, &c);
        if (rc != MDB_MAP_FULL || extra >= before.count)
            break;
        c = before;
    }
    if (rc)
        c = before;
    pthread_mutex_lock(&q->mu);
    q->bytes = c.bytes;
    q->count = c.count;
    q->next_seq = c.next_seq;
    memcpy(q->pending, c.pending, sizeof q->pending);
    for (fq_append_req *r = group; r; r = r->next) {
        r->rc = rc;
        r->done = true;
    }
    q->leading = false;
    pthread_cond_broadcast(&q->appended);
    if (rc == 0)
        pthread_cond_broadcast(&q->cond);
    pthread_mutex_unlock(&q->mu);
    pthread_mutex_unlock(&q->wmu);
}

int fq_append(fqueue *q, uint32_t shard, const void *data, size_t len, uint64_t *dropped,
              firn_err *err)
{
    *dropped = 0;
    fq_append_req r = {.shard = shard, .data = data, .len = len};
    pthread_mutex_lock(&q->mu);
    assert(shard < q->shards);
    if (FWD_RECORD_HEADER + len > q->max_bytes) {
        pthread_mutex_unlock(&q->mu);
        return firn_errf(err, FIRN_ETOOBIG, "a record of %zu bytes is larger than the queue's "
                         "max_bytes (%llu)", FWD_RECORD_HEADER + len,
                         (unsigned long long)q->max_bytes);
    }
    *q->waiting_tail = &r;
    q->waiting_tail = &r.next;
    while (!r.done) {
        if (q->leading) {
            pthread_cond_wait(&q->appended, &q->mu);
            continue;
        }
        /* lead: take every record queued so far, this one included */
        q->leading = true;
        fq_append_req *group = q->waiting;
        q->waiting = NULL;
        q->waiting_tail = &q->waiting;
        pthread_mutex_unlock(&q->mu);
        commit_group(q, group);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    *dropped = r.dropped;
    return r.rc ? lmdb_err(err, "appending", r.rc) : 0;
}

int64_t fq_oldest_ms_locked(fqueue *q, uint32_t shard)
{
    if (!q->pending[shard])
        return 0;
    MDB_txn *txn;
    if (mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn))
        return 0;
    MDB_cursor *c;
    int64_t t = 0;
    if (mdb_cursor_open(txn, q->dbi, &c) == 0) {
        unsigned char kb[KEY_LEN];
        key_put(kb, shard, 0);
        MDB_val k = {KEY_LEN, kb}, v;
        if (mdb_cursor_get(c, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size == KEY_LEN &&
            key_shard(k.mv_data) == shard)
            t = record_time(&v);
        mdb_cursor_close(c);
    }
    mdb_txn_abort(txn);
    return t;
}

int64_t fq_queue_oldest_ms_locked(fqueue *q)
{
    int64_t oldest = 0;
    for (uint32_t s = 0; s < q->shards; s++) {
        int64_t t = fq_oldest_ms_locked(q, s);
        if (t && (!oldest || t < oldest))
            oldest = t;
    }
    return oldest;
}

long fq_peek_locked(fqueue *q, uint32_t shard, size_t max_n, size_t max_bytes, fq_visit_fn fn,
                    void *ctx, uint64_t *seqs)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(q->env, NULL, MDB_RDONLY, &txn);
    if (rc)
        return -1;
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, q->dbi, &c))) {
        mdb_txn_abort(txn);
        return -1;
    }
    unsigned char kb[KEY_LEN];
    key_put(kb, shard, 0);
    MDB_val k = {KEY_LEN, kb}, v;
    size_t n = 0, bytes = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0 && n < max_n;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != KEY_LEN || key_shard(k.mv_data) != shard ||
            v.mv_size < FWD_RECORD_HEADER)
            break;
        size_t len = v.mv_size - FWD_RECORD_HEADER;
        if (n && bytes + len > max_bytes)
            break;
        fn(ctx, (const unsigned char *)v.mv_data + FWD_RECORD_HEADER, len);
        seqs[n++] = key_seq(k.mv_data);
        bytes += len;
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return (long)n;
}

int fq_delete(fqueue *q, uint32_t shard, const uint64_t *seqs, size_t n, size_t *deleted)
{
    *deleted = 0;
    pthread_mutex_lock(&q->wmu);
    MDB_txn *txn;
    int rc = mdb_txn_begin(q->env, NULL, 0, &txn);
    if (rc) {
        pthread_mutex_unlock(&q->wmu);
        return rc;
    }
    uint64_t bytes = 0;
    size_t found = 0;
    for (size_t i = 0; i < n && !rc; i++) {
        unsigned char kb[KEY_LEN];
        key_put(kb, shard, seqs[i]);
        MDB_val k = {KEY_LEN, kb}, v;
        rc = mdb_get(txn, q->dbi, &k, &v);
        if (rc == MDB_NOTFOUND) {   /* dropped by the bound while it was sent */
            rc = 0;
            continue;
        }
        if (rc == 0 && (rc = mdb_del(txn, q->dbi, &k, NULL)) == 0) {
            bytes += v.mv_size;
            found++;
        }
    }
    if (rc)
        mdb_txn_abort(txn);
    else
        rc = mdb_txn_commit(txn);
    if (rc == 0) {
        pthread_mutex_lock(&q->mu);
        assert(q->bytes >= bytes && q->count >= found && q->pending[shard] >= found);
        q->bytes -= bytes;
        q->count -= found;
        q->pending[shard] -= found;
        pthread_mutex_unlock(&q->mu);
        *deleted = found;
    }
    pthread_mutex_unlock(&q->wmu);
    return rc;
}
