/* write.c -- appending profiles: preparing them in the caller's thread, and
 * the one writer thread that commits them in batches.
 *
 * An append is split in two.  tsdb_append (any thread) validates the
 * request and computes everything that needs only the profile: series label
 * sets and their hashes, and content hashes of every stack and sample label
 * set.  The writer thread then turns hashes into partition-local ids (from
 * its caches, else the symbol_idx database, else by inserting the content),
 * encodes one block per sample type and commits every append queued (up to
 * batch_max) in one LMDB transaction: its two syncs are shared by all of
 * them.  tsdb_append's caller blocks until its batch is committed;
 * tsdb_append_async's goes on, and its completion is called by the writer
 * once the batch is committed or failed, so one producer can have many
 * appends in one commit.
 *
 * Invariants:
 *  - A request is rejected (nothing written for it) only by checks made
 *    before its first write; after that, any failure aborts the whole
 *    transaction, so no profile is ever half stored.
 *  - The writer's caches describe committed data plus the open transaction;
 *    when a transaction aborts they are dropped, never patched.
 */
#include "internal.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <time.h>
#define XXH_STATIC_LINKING_ONLY   /* XXH3_state_t on the stack */
#include <xxhash.h>

#define PART_CACHES 4
#define CACHE_MAX_ENTRIES (4u << 20)     /* per kind and partition */
#define SERIES_CACHE_MAX (1u << 20)

/* What tsdb_append computes before queueing. */
struct series_prep {
    firn_label *labels;       /* sorted, __name__ included */
    size_t n_labels;
    pprof_hash hash;
};

struct prepared {
    const tsdb_append_req *req;
    const pprof_profile *profile;
    firn_arena *arena;
    int64_t ts;
    uint32_t partition;
    struct series_prep *series;   /* one per sample type */
    pprof_hash *loc_ids;          /* per location */
    pprof_hash *stack_hash;       /* per sample */
    pprof_hash *ls_hash;          /* per sample; {0,0} = no labels */
    uint32_t *stack_id, *ls_id;   /* per sample, filled by the writer */
    size_t bytes;
};

/* A tsdb_append_floats call, prepared: one series_prep per sample. */
struct float_prep {
    struct series_prep *series;
    const tsdb_float_sample *samples;
    size_t n;
    size_t dropped;               /* set by the writer */
    size_t bytes;                 /* counted against the queue's byte limit */
    firn_arena *arena;
};

/* REQ_RETENTION and REQ_COMPACT are maintenance: run alone, never queued
 * behind the append limits. */
enum req_kind { REQ_APPEND, REQ_FLOATS, REQ_RETENTION, REQ_COMPACT };

struct request {
    enum req_kind kind;
    struct prepared *prep;        /* REQ_APPEND */
    struct float_prep *fprep;     /* REQ_FLOATS */
    int64_t now_ms;               /* REQ_RETENTION, REQ_COMPACT */
    uint64_t deleted_blocks;      /* REQ_RETENTION; rollups written for REQ_COMPACT */
    int status;
    firn_err err;
    bool duplicate;               /* REQ_APPEND: the same profile was already stored */
    bool done;
    struct async_append *async;   /* REQ_APPEND from tsdb_append_async, else NULL */
    struct request *next;
};

/* An asynchronous append owns its request, its preparation and a copy of
 * the caller's request (labels, names, columns), all freed after done. */
struct async_append {
    struct request rq;
    struct prepared pp;
    tsdb_append_req req;
    firn_arena *arena;            /* the copy's strings and columns */
    tsdb_append_done_fn done;
    void *ctx;
};

struct id_cache {
    firn_u64map map;              /* hash.lo -> id */
    uint64_t *hi;                 /* hash.hi by id, to confirm a hit */
    size_t hi_cap;
};

struct part_cache {
    bool used;
    uint32_t partition;
    uint64_t last_use;
    uint32_t next_id[SYM_KINDS];
    struct id_cache ids[SYM_KINDS];
};

struct series_entry {
    pprof_hash hash;
    uint64_t id;
    int64_t min_ts, max_ts;
    bool floats;
};

struct writer {
    tsdb *db;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t wake, done;
    pthread_cond_t room;          /* broadcast when requests leave the queue, and when
                                     their commit is over (their bytes) */
    struct request *head, *tail;
    size_t queued, queued_bytes;
    bool stop;
    /* Below: the writer thread's alone. */
    struct part_cache parts[PART_CACHES];
    uint64_t clock;
    firn_u64map series_map;       /* hash.lo -> index into series */
    struct series_entry *series;
    size_t n_series, cap_series;
    uint64_t next_series_id;      /* 0 = not read yet */
    firn_buf val, val2;
    ZSTD_CCtx *zstd;              /* compresses block bodies; made at start */
    struct block_sample *bs;
    size_t bs_cap;
    struct request **batch;       /* opts.batch_max of them */
    int64_t next_retention_ms;
    bool retention_more;
    int64_t next_compact_ms;
    bool compact_more;
    uint32_t first_live_partition;
};

/* Outcome of applying one request inside the batch transaction. */
enum { APPLY_OK = 0, APPLY_REJECTED = 1 };

/* ---- preparing (caller's thread) ----------------------------------------- */

static int prepare_series(struct prepared *pp, const tsdb_append_req *req, firn_label *base,
                          size_t n_base, firn_err *err)
{
    const pprof_profile *p = pp->profile;
    pp->series = firn_arena_calloc(pp->arena, p->n_sample_types, sizeof *pp->series);
    for (size_t t = 0; t < p->n_sample_types; t++) {
        const char *st = pprof_str(p, p->sample_types[t].type);
        const char *su = pprof_str(p, p->sample_types[t].unit);
        const char *pt = pprof_str(p, p->period_type.type);
        const char *pu = pprof_str(p, p->period_type.unit);
        bool delta = req->delta_columns ? req->delta_columns[t] : req->delta;
        int len = firn_profile_type_format(NULL, 0, req->profile_name, st, su, pt, pu, delta);
        if (len < 0)
            return firn_errf(err, FIRN_EINVAL,
                             "sample type %zu (%s:%s, period %s:%s): a profile type may not "
                             "contain ':' and needs a sample type", t, st, su, pt, pu);
        char *name = firn_arena_alloc(pp->arena, (size_t)len + 1);
        firn_profile_type_format(name, (size_t)len + 1, req->profile_name, st, su, pt, pu,
                                 delta);
        for (size_t u = 0; u < t; u++)
            if (strcmp(firn_labels_get(pp->series[u].labels, pp->series[u].n_labels,
                                       FIRN_LABEL_NAME), name) == 0)
                return firn_errf(err, FIRN_EINVAL,
                                 "sample types %zu and %zu are both %s:%s; a profile type may "
                                 "appear once", u, t, st, su);
        firn_label *l = firn_arena_alloc(pp->arena, (n_base + 1) * sizeof *l);
        size_t at = 0;
        while (at < n_base && strcmp(base[at].name, FIRN_LABEL_NAME) < 0)
            at++;
        memcpy(l, base, at * sizeof *l);
        l[at].name = FIRN_LABEL_NAME;
        l[at].value = name;
        memcpy(l + at + 1, base + at, (n_base - at) * sizeof *l);
        pp->series[t].labels = l;
        pp->series[t].n_labels = n_base + 1;
        pp->series[t].hash = tsdb_labels_hash(l, n_base + 1);
    }
    return 0;
}

static int prepare(tsdb *db, const tsdb_append_req *req, struct prepared *pp, firn_err *err)
{
    const pprof_profile *p = req->profile;
    memset(pp, 0, sizeof *pp);
    pp->req = req;
    pp->profile = p;
    if (!p)
        return firn_errf(err, FIRN_EINVAL, "no profile");
    if (p->n_sample_types == 0)
        return firn_errf(err, FIRN_EINVAL, "profile has no sample types");
    if (!req->profile_name || !req->profile_name[0])
        return firn_errf(err, FIRN_EINVAL, "no profile name (such as process_cpu or memory)");
    if (req->n_labels > FIRN_LABELS_MAX)
        return firn_errf(err, FIRN_EINVAL, "%zu labels; at most %d", req->n_labels,
                         FIRN_LABELS_MAX);
    int64_t ts = req->timestamp_ms;
    if (ts == 0)
        ts = p->time_nanos > 0 ? p->time_nanos / 1000000 : firn_now_ms();
    if (ts < 0)
        return firn_errf(err, FIRN_EINVAL, "timestamp %lld ms is before 1970", (long long)ts);
    pp->ts = ts;
    pp->partition = (uint32_t)(ts / db->partition_ms);
    pp->arena = firn_arena_new(0);

    firn_label *base = firn_arena_alloc(pp->arena, (req->n_labels + 1) * sizeof *base);
    for (size_t i = 0; i < req->n_labels; i++) {
        base[i] = req->labels[i];
        if (!base[i].name || !base[i].value)
            return firn_errf(err, FIRN_EINVAL, "label %zu: missing name or value", i);
        if (strcmp(base[i].name, FIRN_LABEL_NAME) == 0)
            return firn_errf(err, FIRN_EINVAL,
                             "label __name__: set by the store from the profile type");
        if (strlen(base[i].name) > STORE_LABEL_NAME_MAX)
            return firn_errf(err, FIRN_EINVAL, "label name \"%.40s...\": longer than %d bytes",
                             base[i].name, STORE_LABEL_NAME_MAX);
    }
    size_t n_base = req->n_labels;
    if (firn_labels_normalize(base, &n_base, err) < 0) {
        firn_err_prefix(err, "labels");
        return err ? err->code : FIRN_EINVAL;
    }
    if (prepare_series(pp, req, base, n_base, err) < 0)
        return err ? err->code : FIRN_EINVAL;

    size_t ns = p->n_samples;
    pp->loc_ids = firn_arena_alloc(pp->arena, (p->n_locations + 1) * sizeof *pp->loc_ids);
    pp->stack_hash = firn_arena_alloc(pp->arena, (ns + 1) * sizeof *pp->stack_hash);
    pp->ls_hash = firn_arena_calloc(pp->arena, ns + 1, sizeof *pp->ls_hash);
    pp->stack_id = firn_arena_alloc(pp->arena, (ns + 1) * sizeof *pp->stack_id);
    pp->ls_id = firn_arena_alloc(pp->arena, (ns + 1) * sizeof *pp->ls_id);
    pprof_location_identities(p, pp->loc_ids);
    /* A stack's hash is xxh3-128 over its locations' identities in order.
     * They are gathered and hashed in one call: xxh3's one-shot and
     * streaming forms give the same hash, and a stream fed 16 bytes at a
     * time cost 6% of ingest. */
    size_t frames_cap = 64;
    pprof_hash *frames = firn_xreallocarray(NULL, frames_cap, sizeof *frames);
    for (size_t i = 0; i < ns; i++) {
        const pprof_sample *s = &p->samples[i];
        if (s->n_locations > frames_cap) {
            frames_cap = s->n_locations;
            frames = firn_xreallocarray(frames, frames_cap, sizeof *frames);
        }
        for (size_t j = 0; j < s->n_locations; j++)
            frames[j] = pp->loc_ids[s->locations[j]];
        XXH128_hash_t h = XXH3_128bits(frames, s->n_locations * sizeof *frames);
        pp->stack_hash[i].lo = h.low64;
        pp->stack_hash[i].hi = h.high64;
    }
    free(frames);
    pprof_labels_identities(p, pp->ls_hash);
    for (size_t i = 0; i < ns; i++)
        if (p->samples[i].n_labels && pp->ls_hash[i].lo == 0 && pp->ls_hash[i].hi == 0)
            pp->ls_hash[i].lo = 1;   /* {0,0} means "no labels" */
    pp->bytes = firn_arena_bytes(pp->arena) + firn_arena_bytes(p->arena);
    return 0;
}

/* ---- the writer's caches ---------------------------------------------- */

static void id_cache_destroy(struct id_cache *c)
{
    firn_u64map_destroy(&c->map);
    free(c->hi);
    memset(c, 0, sizeof *c);
}

static void part_cache_drop(struct part_cache *pc)
{
    for (int k = 0; k < SYM_KINDS; k++)
        id_cache_destroy(&pc->ids[k]);
    memset(pc, 0, sizeof *pc);
}

static void series_cache_drop(struct writer *w)
{
    firn_u64map_destroy(&w->series_map);
    free(w->series);
    w->series = NULL;
    w->n_series = w->cap_series = 0;
    w->next_series_id = 0;
}

/* After an aborted transaction nothing cached can be trusted. */
static void caches_drop(struct writer *w)
{
    for (int i = 0; i < PART_CACHES; i++)
        part_cache_drop(&w->parts[i]);
    series_cache_drop(w);
}

/* Highest id of kind in partition + 1, read from the symbols database. */
static int read_next_id(tsdb *db, MDB_txn *txn, uint32_t partition, int kind, uint32_t *next)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, db->dbi_symbols, &c);
    if (rc)
        return rc;
    unsigned char kb[SYM_KEY_LEN];
    tsdb_sym_key(kb, partition, (enum sym_kind)(kind + 1), 0);
    MDB_val k = {sizeof kb, kb}, v;
    rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
    if (rc == 0)
        rc = mdb_cursor_get(c, &k, &v, MDB_PREV);
    else if (rc == MDB_NOTFOUND)
        rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
    *next = 1;
    if (rc == 0 && k.mv_size == SYM_KEY_LEN && tsdb_be32_get(k.mv_data) == partition &&
        ((unsigned char *)k.mv_data)[4] == kind)
        *next = tsdb_be32_get((unsigned char *)k.mv_data + 5) + 1;
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int part_cache_get(struct writer *w, MDB_txn *txn, uint32_t partition,
                          struct part_cache **out)
{
    struct part_cache *victim = &w->parts[0];
    for (int i = 0; i < PART_CACHES; i++) {
        struct part_cache *pc = &w->parts[i];
        if (pc->used && pc->partition == partition) {
            pc->last_use = ++w->clock;
            *out = pc;
            return 0;
        }
        if (!pc->used || (victim->used && pc->last_use < victim->last_use))
            victim = pc;
    }
    part_cache_drop(victim);
    for (int k = 1; k < SYM_KINDS; k++) {
        int rc = read_next_id(w->db, txn, partition, k, &victim->next_id[k]);
        if (rc)
            return rc;
        firn_u64map_init(&victim->ids[k].map, 1024);
    }
    victim->used = true;
    victim->partition = partition;
    victim->last_use = ++w->clock;
    *out = victim;
    return 0;
}

static void id_cache_put(struct id_cache *c, pprof_hash h, uint32_t id)
{
    if (c->map.len >= CACHE_MAX_ENTRIES) {
        /* A bounded cache: start over; misses fall back to symbol_idx. */
        firn_u64map_destroy(&c->map);
        firn_u64map_init(&c->map, 1024);
    }
    if (id >= c->hi_cap) {
        /* ids are dense, so the table is as large as the symbols stored */
        size_t ncap = c->hi_cap ? c->hi_cap : 1024;
        while (ncap <= id)
            ncap *= 2;
        c->hi = firn_xreallocarray(c->hi, ncap, sizeof *c->hi);
        c->hi_cap = ncap;
    }
    assert(id < c->hi_cap);
    uint32_t have;
    int r = firn_u64map_put(&c->map, h.lo, id, &have);
    if (r == 1)
        c->hi[id] = h.hi;
}

static bool id_cache_get(const struct id_cache *c, pprof_hash h, uint32_t *id)
{
    uint32_t v;
    if (!c->map.cap || !firn_u64map_get(&c->map, h.lo, &v) || v >= c->hi_cap ||
        c->hi[v] != h.hi)
        return false;
    *id = v;
    return true;
}

/* id of the symbol with hash h: the cache, then symbol_idx.  *found = false
 * when it is not stored. */
static int sym_find(struct writer *w, MDB_txn *txn, struct part_cache *pc, enum sym_kind kind,
                    pprof_hash h, uint32_t *id, bool *found)
{
    *found = true;
    if (id_cache_get(&pc->ids[kind], h, id))
        return 0;
    unsigned char kb[SYM_IDX_KEY_LEN];
    tsdb_sym_idx_key(kb, pc->partition, kind, h);
    MDB_val k = {sizeof kb, kb}, v;
    int rc = mdb_get(txn, w->db->dbi_symbol_idx, &k, &v);
    if (rc == MDB_NOTFOUND) {
        *found = false;
        return 0;
    }
    if (rc)
        return rc;
    if (v.mv_size != 4)
        return MDB_CORRUPTED;
    memcpy(id, v.mv_data, 4);
    id_cache_put(&pc->ids[kind], h, *id);
    return 0;
}

static int sym_insert(struct writer *w, MDB_txn *txn, struct part_cache *pc, enum sym_kind kind,
                      pprof_hash h, const firn_buf *content, uint32_t *id)
{
    if (pc->next_id[kind] == UINT32_MAX)
        return MDB_MAP_FULL;   /* cannot happen before the disk is full */
    *id = pc->next_id[kind]++;
    unsigned char kb[SYM_KEY_LEN], ib[SYM_IDX_KEY_LEN];
    tsdb_sym_key(kb, pc->partition, kind, *id);
    tsdb_sym_idx_key(ib, pc->partition, kind, h);
    MDB_val k = {sizeof kb, kb}, v = {content->len, content->data};
    MDB_val ik = {sizeof ib, ib}, iv = {4, id};
    /* NOOVERWRITE: an existing key would mean the id counter is wrong */
    int rc = mdb_put(txn, w->db->dbi_symbols, &k, &v, MDB_NOOVERWRITE);
    if (!rc)
        rc = mdb_put(txn, w->db->dbi_symbol_idx, &ik, &iv, 0);
    if (!rc)
        id_cache_put(&pc->ids[kind], h, *id);
    return rc;
}

/* ---- resolving symbols to ids (writer thread) --------------------------- */

/* Find-or-insert for content that is hashed as stored.  content is in
 * w->val2 and gets clobbered by nested resolves, so callers build it last. */
static int sym_resolve_content(struct writer *w, MDB_txn *txn, struct part_cache *pc,
                               enum sym_kind kind, const firn_buf *content, uint32_t *id)
{
    XXH128_hash_t x = XXH3_128bits(content->data, content->len);
    pprof_hash h = {x.low64, x.high64};
    bool found;
    int rc = sym_find(w, txn, pc, kind, h, id, &found);
    if (rc || found)
        return rc;
    return sym_insert(w, txn, pc, kind, h, content, id);
}

static int resolve_string(struct writer *w, MDB_txn *txn, struct part_cache *pc, const char *s,
                          uint32_t *id)
{
    /* a view of s, only read */
    const firn_buf b = {.data = (char *)s, .len = strlen(s)};
    return sym_resolve_content(w, txn, pc, SYM_STRING, &b, id);
}

static int resolve_function(struct writer *w, MDB_txn *txn, struct part_cache *pc,
                            const pprof_profile *p, uint32_t fi, uint32_t *id)
{
    const pprof_function *f = &p->functions[fi];
    uint32_t name, sys, file;
    int rc;
    if ((rc = resolve_string(w, txn, pc, pprof_str(p, f->name), &name)) ||
        (rc = resolve_string(w, txn, pc, pprof_str(p, f->system_name), &sys)) ||
        (rc = resolve_string(w, txn, pc, pprof_str(p, f->filename), &file)))
        return rc;
    firn_buf *b = &w->val2;
    b->len = 0;
    tsdb_buf_varint(b, name);
    tsdb_buf_varint(b, sys);
    tsdb_buf_varint(b, file);
    tsdb_buf_zigzag(b, f->start_line);
    return sym_resolve_content(w, txn, pc, SYM_FUNCTION, b, id);
}

static unsigned mapping_flags(const pprof_mapping *m)
{
    return (unsigned)m->has_functions | (unsigned)m->has_filenames << 1 |
           (unsigned)m->has_line_numbers << 2 | (unsigned)m->has_inline_frames << 3;
}

/* Mappings are identified by file, build id and flags (not by where they
 * were loaded); the first one seen gives the addresses stored. */
static int resolve_mapping(struct writer *w, MDB_txn *txn, struct part_cache *pc,
                           const pprof_profile *p, uint32_t mi, uint32_t *id)
{
    const pprof_mapping *m = &p->mappings[mi];
    uint32_t file, bid;
    int rc;
    if ((rc = resolve_string(w, txn, pc, pprof_str(p, m->filename), &file)) ||
        (rc = resolve_string(w, txn, pc, pprof_str(p, m->build_id), &bid)))
        return rc;
    uint64_t ident[3] = {file, bid, mapping_flags(m)};
    XXH128_hash_t x = XXH3_128bits(ident, sizeof ident);
    pprof_hash h = {x.low64, x.high64};
    bool found;
    if ((rc = sym_find(w, txn, pc, SYM_MAPPING, h, id, &found)) || found)
        return rc;
    firn_buf *b = &w->val2;
    b->len = 0;
    tsdb_buf_varint(b, file);
    tsdb_buf_varint(b, bid);
    tsdb_buf_varint(b, mapping_flags(m));
    tsdb_buf_varint(b, m->memory_start);
    tsdb_buf_varint(b, m->memory_limit);
    tsdb_buf_varint(b, m->file_offset);
    return sym_insert(w, txn, pc, SYM_MAPPING, h, b, id);
}

/* Locations are keyed by their content identity (pprof_location_identity);
 * the address is stored relative to the file so that it does not depend on
 * where this process loaded it. */
static int resolve_location(struct writer *w, MDB_txn *txn, struct part_cache *pc,
                            const struct prepared *pp, uint32_t li, uint32_t *id)
{
    const pprof_profile *p = pp->profile;
    bool found;
    int rc = sym_find(w, txn, pc, SYM_LOCATION, pp->loc_ids[li], id, &found);
    if (rc || found)
        return rc;
    const pprof_location *l = &p->locations[li];
    uint32_t mapping = 0;
    uint64_t address = l->address;
    if (l->mapping != PPROF_NONE) {
        const pprof_mapping *m = &p->mappings[l->mapping];
        if ((rc = resolve_mapping(w, txn, pc, p, l->mapping, &mapping)))
            return rc;
        address = l->address - m->memory_start + m->file_offset;
    }
    uint32_t fn_stack[16];
    uint32_t *fns = l->n_lines <= 16 ? fn_stack : firn_xreallocarray(NULL, l->n_lines, sizeof *fns);
    for (size_t i = 0; i < l->n_lines && !rc; i++) {
        fns[i] = 0;
        if (l->lines[i].function != PPROF_NONE)
            rc = resolve_function(w, txn, pc, p, l->lines[i].function, &fns[i]);
    }
    if (!rc) {
        firn_buf *b = &w->val2;
        b->len = 0;
        tsdb_buf_varint(b, mapping);
        tsdb_buf_varint(b, address);
        tsdb_buf_varint(b, l->is_folded);
        tsdb_buf_varint(b, l->n_lines);
        for (size_t i = 0; i < l->n_lines; i++) {
            tsdb_buf_varint(b, fns[i]);
            tsdb_buf_zigzag(b, l->lines[i].line);
            tsdb_buf_zigzag(b, l->lines[i].column);
        }
        rc = sym_insert(w, txn, pc, SYM_LOCATION, pp->loc_ids[li], b, id);
    }
    if (fns != fn_stack)
        free(fns);
    return rc;
}

static int resolve_stack(struct writer *w, MDB_txn *txn, struct part_cache *pc,
                         const struct prepared *pp, size_t si, uint32_t *id)
{
    bool found;
    int rc = sym_find(w, txn, pc, SYM_STACK, pp->stack_hash[si], id, &found);
    if (rc || found)
        return rc;
    const pprof_sample *s = &pp->profile->samples[si];
    uint32_t loc_stack[64];
    uint32_t *locs = s->n_locations <= 64 ? loc_stack
                                           : firn_xreallocarray(NULL, s->n_locations, sizeof *locs);
    for (size_t j = 0; j < s->n_locations && !rc; j++)
        rc = resolve_location(w, txn, pc, pp, s->locations[j], &locs[j]);
    if (!rc) {
        firn_buf *b = &w->val2;
        b->len = 0;
        tsdb_buf_varint(b, s->n_locations);
        for (size_t j = 0; j < s->n_locations; j++)
            tsdb_buf_varint(b, locs[j]);
        rc = sym_insert(w, txn, pc, SYM_STACK, pp->stack_hash[si], b, id);
    }
    if (locs != loc_stack)
        free(locs);
    return rc;
}

static int resolve_labelset(struct writer *w, MDB_txn *txn, struct part_cache *pc,
                            const struct prepared *pp, size_t si, uint32_t *id)
{
    bool found;
    int rc = sym_find(w, txn, pc, SYM_LABELSET, pp->ls_hash[si], id, &found);
    if (rc || found)
        return rc;
    const pprof_profile *p = pp->profile;
    const pprof_sample *s = &p->samples[si];
    uint32_t *ids = firn_xcalloc(s->n_labels * 3, sizeof *ids);
    for (size_t j = 0; j < s->n_labels && !rc; j++) {
        const pprof_label *l = &s->labels[j];
        if (!(rc = resolve_string(w, txn, pc, pprof_str(p, l->key), &ids[3 * j])) &&
            !(rc = resolve_string(w, txn, pc, pprof_str(p, l->str), &ids[3 * j + 1])))
            rc = resolve_string(w, txn, pc, pprof_str(p, l->num_unit), &ids[3 * j + 2]);
    }
    if (!rc) {
        firn_buf *b = &w->val2;
        b->len = 0;
        tsdb_buf_varint(b, s->n_labels);
        for (size_t j = 0; j < s->n_labels; j++) {
            tsdb_buf_varint(b, ids[3 * j]);
            tsdb_buf_varint(b, ids[3 * j + 1]);
            tsdb_buf_zigzag(b, s->labels[j].num);
            tsdb_buf_varint(b, ids[3 * j + 2]);
        }
        rc = sym_insert(w, txn, pc, SYM_LABELSET, pp->ls_hash[si], b, id);
    }
    free(ids);
    return rc;
}

/* ---- series ------------------------------------------------------------- */

static struct series_entry *series_cache_find(struct writer *w, pprof_hash h)
{
    uint32_t idx;
    if (w->series_map.cap && firn_u64map_get(&w->series_map, h.lo, &idx) &&
        pprof_hash_eq(w->series[idx].hash, h))
        return &w->series[idx];
    return NULL;
}

static struct series_entry *series_cache_add(struct writer *w, pprof_hash h, uint64_t id,
                                             int64_t min_ts, int64_t max_ts, bool floats)
{
    if (w->n_series >= SERIES_CACHE_MAX)
        series_cache_drop(w);
    if (!w->series_map.cap)
        firn_u64map_init(&w->series_map, 1024);
    w->series = firn_grow(w->series, w->n_series, &w->cap_series, sizeof *w->series, 1024);
    uint32_t have;
    if (firn_u64map_put(&w->series_map, h.lo, (uint32_t)w->n_series, &have) != 1)
        return NULL;   /* a 64-bit collision: not cached */
    struct series_entry *e = &w->series[w->n_series++];
    e->hash = h;
    e->id = id;
    e->min_ts = min_ts;
    e->max_ts = max_ts;
    e->floats = floats;
    return e;
}

/* The stored series with these labels: id 0 when there is none.  e is the
 * cache entry when one could be made (NULL otherwise). */
static int series_find(struct writer *w, MDB_txn *txn, const struct series_prep *sp,
                       uint64_t *id, int64_t *min_ts, int64_t *max_ts, bool *floats)
{
    struct series_entry *e = series_cache_find(w, sp->hash);
    if (e) {
        *id = e->id;
        *min_ts = e->min_ts;
        *max_ts = e->max_ts;
        *floats = e->floats;
        return 0;
    }
    unsigned char hk[16];
    tsdb_be64_put(hk, sp->hash.hi);
    tsdb_be64_put(hk + 8, sp->hash.lo);
    MDB_val k = {sizeof hk, hk}, v;
    int rc = mdb_get(txn, w->db->dbi_series_idx, &k, &v);
    *id = 0;
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return rc;
    if (v.mv_size != 8)
        return MDB_CORRUPTED;
    uint64_t sid = tsdb_be64_get(v.mv_data);
    unsigned char sk[8];
    tsdb_be64_put(sk, sid);
    MDB_val k2 = {sizeof sk, sk};
    if ((rc = mdb_get(txn, w->db->dbi_series, &k2, &v)))
        return rc == MDB_NOTFOUND ? MDB_CORRUPTED : rc;
    struct cur c = {v.mv_data, (const unsigned char *)v.mv_data + v.mv_size, false};
    *min_ts = tsdb_cur_zigzag(&c);
    *max_ts = tsdb_cur_zigzag(&c);
    if (c.bad)
        return MDB_CORRUPTED;
    *id = sid;
    *floats = tsdb_series_record_floats(&v);
    series_cache_add(w, sp->hash, sid, *min_ts, *max_ts, *floats);
    return 0;
}

static int series_put_record(struct writer *w, MDB_txn *txn, uint64_t id,
                             const struct series_prep *sp, int64_t min_ts, int64_t max_ts,
                             bool floats, unsigned flags)
{
    tsdb_series_encode(&w->val, sp->labels, sp->n_labels, min_ts, max_ts, floats);
    unsigned char sk[8];
    tsdb_be64_put(sk, id);
    MDB_val k = {sizeof sk, sk}, v = {w->val.len, w->val.data};
    return mdb_put(txn, w->db->dbi_series, &k, &v, flags);
}

static int series_create(struct writer *w, MDB_txn *txn, const struct series_prep *sp,
                         int64_t ts, bool floats, uint64_t *id)
{
    tsdb *db = w->db;
    int rc;
    /* Ids are never reused, even after retention deleted the newest series:
     * the next one is kept in meta. */
    MDB_val nk = {strlen("next_series_id"), "next_series_id"}, nv;
    if (!w->next_series_id) {
        rc = mdb_get(txn, db->dbi_meta, &nk, &nv);
        if (rc == 0 && nv.mv_size == sizeof w->next_series_id) {
            memcpy(&w->next_series_id, nv.mv_data, sizeof w->next_series_id);
        } else if (rc == MDB_NOTFOUND || rc == 0) {
            MDB_cursor *c;
            if ((rc = mdb_cursor_open(txn, db->dbi_series, &c)))
                return rc;
            MDB_val k, v;
            rc = mdb_cursor_get(c, &k, &v, MDB_LAST);
            w->next_series_id = rc == 0 && k.mv_size == 8 ? tsdb_be64_get(k.mv_data) + 1 : 1;
            mdb_cursor_close(c);
            if (rc && rc != MDB_NOTFOUND)
                return rc;
        } else {
            return rc;
        }
    }
    *id = w->next_series_id++;
    nv.mv_size = sizeof w->next_series_id;
    nv.mv_data = &w->next_series_id;
    if ((rc = mdb_put(txn, db->dbi_meta, &nk, &nv, 0)) ||
        (rc = series_put_record(w, txn, *id, sp, ts, ts, floats, MDB_APPEND)))
        return rc;
    unsigned char hk[16], sk[8];
    tsdb_be64_put(hk, sp->hash.hi);
    tsdb_be64_put(hk + 8, sp->hash.lo);
    tsdb_be64_put(sk, *id);
    MDB_val k = {sizeof hk, hk}, v = {sizeof sk, sk};
    if ((rc = mdb_put(txn, db->dbi_series_idx, &k, &v, 0)))
        return rc;
    unsigned char pk[POSTING_KEY_MAX + 32];
    for (size_t i = 0; i < sp->n_labels; i++) {
        bool is_long;
        size_t len = tsdb_posting_key(pk, sp->labels[i].name, sp->labels[i].value, &is_long);
        MDB_val key = {len, pk}, val = {sizeof *id, id};
        if ((rc = mdb_put(txn, db->dbi_postings, &key, &val, 0)))
            return rc;
        if (is_long) {
            MDB_val lv = {strlen(sp->labels[i].value), (void *)sp->labels[i].value};
            rc = mdb_put(txn, db->dbi_long_values, &key, &lv, MDB_NOOVERWRITE);
            if (rc && rc != MDB_KEYEXIST)
                return rc;
        }
    }
    series_cache_add(w, sp->hash, *id, ts, ts, floats);
    return 0;
}

/* ---- applying one append ------------------------------------------------ */

static int sample_exists(tsdb *db, MDB_txn *txn, uint64_t series, int64_t ts, bool *exists)
{
    unsigned char kb[SAMPLE_KEY_LEN];
    tsdb_sample_key(kb, series, ts);
    MDB_val k = {sizeof kb, kb}, v;
    int rc = mdb_get(txn, db->dbi_samples, &k, &v);
    *exists = rc == 0;
    return rc == MDB_NOTFOUND ? 0 : rc;
}

/* Column t of the prepared profile as a block in w->val (stack and label
 * set ids resolved); *kept is the samples it holds. */
static int encode_column(struct writer *w, const struct prepared *pp, size_t t, size_t *kept)
{
    const pprof_profile *p = pp->profile;
    if (p->n_samples > w->bs_cap) {
        w->bs = firn_xreallocarray(w->bs, p->n_samples, sizeof *w->bs);
        w->bs_cap = p->n_samples;
    }
    size_t n = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        int64_t v = p->samples[i].values[t];
        if (v == 0)
            continue;
        assert(n < w->bs_cap);
        w->bs[n].stack = pp->stack_id[i];
        w->bs[n].labelset = pp->ls_id[i];
        w->bs[n].value = v;
        n++;
    }
    *kept = tsdb_block_encode(&w->val, &w->val2, w->zstd, w->bs, n, p->duration_nanos,
                               p->period);
    return 0;
}

/* Whether every series already holds, at pp->ts, exactly the block this
 * profile would write.  Only looks up: a stack or label set the partition
 * lacks means a different profile, and nothing is written either way. */
static int same_profile(struct writer *w, MDB_txn *txn, struct prepared *pp, const uint64_t *ids,
                        bool *same)
{
    const pprof_profile *p = pp->profile;
    *same = false;
    for (size_t t = 0; t < p->n_sample_types; t++)
        if (!ids[t])
            return 0;
    struct part_cache *pc;
    int rc = part_cache_get(w, txn, pp->partition, &pc);
    for (size_t i = 0; i < p->n_samples && !rc; i++) {
        bool found;
        if ((rc = sym_find(w, txn, pc, SYM_STACK, pp->stack_hash[i], &pp->stack_id[i], &found)))
            return rc;
        if (!found)
            return 0;
        pp->ls_id[i] = 0;
        if (p->samples[i].n_labels &&
            ((rc = sym_find(w, txn, pc, SYM_LABELSET, pp->ls_hash[i], &pp->ls_id[i], &found)) ||
             !found))
            return rc;
    }
    for (size_t t = 0; t < p->n_sample_types && !rc; t++) {
        size_t kept;
        if ((rc = encode_column(w, pp, t, &kept)))
            return rc;
        unsigned char kb[SAMPLE_KEY_LEN];
        tsdb_sample_key(kb, ids[t], pp->ts);
        MDB_val k = {sizeof kb, kb}, v;
        if ((rc = mdb_get(txn, w->db->dbi_samples, &k, &v)))
            return rc == MDB_NOTFOUND ? 0 : rc;
        MDB_val mine = {w->val.len, w->val.data};
        if ((v.mv_size != mine.mv_size || memcmp(v.mv_data, mine.mv_data, v.mv_size) != 0) &&
            !tsdb_block_same(&v, &mine))
            return 0;
    }
    *same = rc == 0;
    return rc;
}

static int apply_append(struct writer *w, MDB_txn *txn, struct request *rq, int64_t now)
{
    tsdb *db = w->db;
    struct prepared *pp = rq->prep;
    const pprof_profile *p = pp->profile;
    size_t nt = p->n_sample_types;
    int rc;

    if (db->opts.retention_ms > 0 && pp->ts < now - db->opts.retention_ms) {
        rq->status = firn_errf(&rq->err, FIRN_EINVAL,
                               "timestamp %lld ms is older than the retention (%lld ms)",
                               (long long)pp->ts, (long long)db->opts.retention_ms);
        return APPLY_REJECTED;
    }
    if (pp->partition < w->first_live_partition) {
        rq->status = firn_errf(&rq->err, FIRN_EINVAL,
                               "timestamp %lld ms falls in a partition already deleted by "
                               "retention", (long long)pp->ts);
        return APPLY_REJECTED;
    }
    /* Checks before any write: no series may hold a profile at ts yet. */
    uint64_t ids_stack[8];
    int64_t mins_stack[8], maxs_stack[8];
    size_t taken = 0;   /* 1 + the first series already holding a profile at ts */
    uint64_t *ids = nt <= 8 ? ids_stack : firn_xreallocarray(NULL, nt, sizeof *ids);
    int64_t *mins = nt <= 8 ? mins_stack : firn_xreallocarray(NULL, nt, sizeof *mins);
    int64_t *maxs = nt <= 8 ? maxs_stack : firn_xreallocarray(NULL, nt, sizeof *maxs);
    for (size_t t = 0; t < nt; t++) {
        bool floats = false;
        if ((rc = series_find(w, txn, &pp->series[t], &ids[t], &mins[t], &maxs[t], &floats)))
            goto out;
        if (floats) {
            char *ls = firn_labels_format(pp->series[t].labels, pp->series[t].n_labels);
            rq->status = firn_errf(&rq->err, FIRN_EINVAL,
                                   "series %.300s is a float series (a recording rule's), "
                                   "not a profile series", ls ? ls : "?");
            free(ls);
            rc = APPLY_REJECTED;
            goto out;
        }
        /* A series' blocks lie within its record's [min, max] (both are
         * written in the transaction that stores a block), so a newer
         * profile, the usual case, needs no lookup. */
        bool exists = false;
        if (ids[t] && pp->ts >= mins[t] && pp->ts <= maxs[t] &&
            (rc = sample_exists(db, txn, ids[t], pp->ts, &exists)))
            goto out;
        if (exists && !taken)
            taken = t + 1;
    }
    if (taken) {
        /* A retry of an append whose answer was lost (a forwarder's, Alloy's)
         * finds its own profile: the same again is a no-op, anything else an
         * error of its own code so callers can tell it from bad input. */
        bool same = false;
        if ((rc = same_profile(w, txn, pp, ids, &same)))
            goto out;
        if (same) {
            rq->duplicate = true;
            rc = APPLY_OK;
            goto out;
        }
        char *ls = firn_labels_format(pp->series[taken - 1].labels,
                                      pp->series[taken - 1].n_labels);
        rq->status = firn_errf(&rq->err, FIRN_EEXIST,
                               "series %.300s already has a different profile at %lld ms",
                               ls ? ls : "?", (long long)pp->ts);
        free(ls);
        rc = APPLY_REJECTED;
        goto out;
    }
    /* The series limit: the new series this profile needs must fit. */
    size_t new_series = 0;
    for (size_t t = 0; t < nt; t++)
        new_series += ids[t] == 0;
    if (new_series && db->opts.max_series) {
        MDB_stat st;
        if ((rc = mdb_stat(txn, db->dbi_series, &st)))
            goto out;
        if (st.ms_entries + new_series > db->opts.max_series) {
            char *ls = firn_labels_format(pp->series[0].labels, pp->series[0].n_labels);
            rq->status = firn_errf(&rq->err, FIRN_EINVAL,
                                   "series limit of %llu reached (%zu series held): %zu new "
                                   "series of %.300s refused",
                                   (unsigned long long)db->opts.max_series,
                                   (size_t)st.ms_entries, new_series, ls ? ls : "?");
            free(ls);
            rc = APPLY_REJECTED;
            goto out;
        }
    }
    /* Writes. */
    struct part_cache *pc;
    if ((rc = part_cache_get(w, txn, pp->partition, &pc)))
        goto out;
    for (size_t i = 0; i < p->n_samples; i++) {
        if ((rc = resolve_stack(w, txn, pc, pp, i, &pp->stack_id[i])))
            goto out;
        pp->ls_id[i] = 0;
        if (p->samples[i].n_labels && (rc = resolve_labelset(w, txn, pc, pp, i, &pp->ls_id[i])))
            goto out;
    }
    for (size_t t = 0; t < nt; t++) {
        struct series_prep *sp = &pp->series[t];
        if (!ids[t]) {
            if ((rc = series_create(w, txn, sp, pp->ts, false, &ids[t])))
                goto out;
        } else if (pp->ts < mins[t] || pp->ts > maxs[t]) {
            int64_t lo = pp->ts < mins[t] ? pp->ts : mins[t];
            int64_t hi = pp->ts > maxs[t] ? pp->ts : maxs[t];
            if ((rc = series_put_record(w, txn, ids[t], sp, lo, hi, false, 0)))
                goto out;
            struct series_entry *e = series_cache_find(w, sp->hash);
            if (e) {
                e->min_ts = lo;
                e->max_ts = hi;
            }
        }
        size_t kept;
        if ((rc = encode_column(w, pp, t, &kept)))
            goto out;
        unsigned char kb[SAMPLE_KEY_LEN];
        tsdb_sample_key(kb, ids[t], pp->ts);
        MDB_val k = {sizeof kb, kb}, v = {w->val.len, w->val.data};
        struct block_reader br;
        if ((rc = mdb_put(txn, db->dbi_samples, &k, &v, MDB_NOOVERWRITE)))
            goto out;
        if (tsdb_block_open(&br, &v, NULL) < 0) {   /* cannot fail on what we just encoded */
            rc = MDB_CORRUPTED;
            goto out;
        }
        MDB_val hv = {br.header_len, w->val.data};
        if ((rc = mdb_put(txn, db->dbi_totals, &k, &hv, MDB_NOOVERWRITE)) ||
            (rc = tsdb_chunk_add(db, txn, ids[t], pp->ts, br.duration_nanos, br.period,
                                 br.total)) ||
            (rc = tsdb_rollup_note_append(db, txn, ids[t], pp->ts)))
            goto out;
        atomic_fetch_add(&db->samples_total, kept);
    }
    rc = APPLY_OK;
out:
    if (ids != ids_stack)
        free(ids);
    if (mins != mins_stack)
        free(mins);
    if (maxs != maxs_stack)
        free(maxs);
    return rc;
}

/* Float samples: every label set is checked (no profile series) before the
 * first write, so a refused request writes nothing. */
static int apply_floats(struct writer *w, MDB_txn *txn, struct request *rq, int64_t now)
{
    tsdb *db = w->db;
    struct float_prep *fp = rq->fprep;
    int rc;
    fp->dropped = 0;
    for (size_t i = 0; i < fp->n; i++) {
        uint64_t id;
        int64_t lo, hi;
        bool floats;
        if ((rc = series_find(w, txn, &fp->series[i], &id, &lo, &hi, &floats)))
            return rc;
        if (id && !floats) {
            char *ls = firn_labels_format(fp->series[i].labels, fp->series[i].n_labels);
            rq->status = firn_errf(&rq->err, FIRN_EINVAL,
                                   "series %.300s is a profile series; float samples cannot "
                                   "be added to it", ls ? ls : "?");
            free(ls);
            return APPLY_REJECTED;
        }
    }
    for (size_t i = 0; i < fp->n; i++) {
        const struct series_prep *sp = &fp->series[i];
        int64_t ts = fp->samples[i].timestamp_ms;
        if (db->opts.retention_ms > 0 && ts < now - db->opts.retention_ms) {
            fp->dropped++;
            continue;
        }
        uint64_t id, bits;
        int64_t lo, hi;
        bool floats;
        double v = fp->samples[i].value;
        memcpy(&bits, &v, sizeof bits);   /* little-endian hosts only, as the schema record */
        if ((rc = series_find(w, txn, sp, &id, &lo, &hi, &floats)))
            return rc;
        if (!id) {
            if ((rc = series_create(w, txn, sp, ts, true, &id)))
                return rc;
        } else if (ts < lo || ts > hi) {
            int64_t nlo = ts < lo ? ts : lo, nhi = ts > hi ? ts : hi;
            if ((rc = series_put_record(w, txn, id, sp, nlo, nhi, true, 0)))
                return rc;
            struct series_entry *e = series_cache_find(w, sp->hash);
            if (e) {
                e->min_ts = nlo;
                e->max_ts = nhi;
            }
        }
        unsigned char kb[SAMPLE_KEY_LEN];
        tsdb_sample_key(kb, id, ts);
        MDB_val k = {sizeof kb, kb}, val = {sizeof bits, &bits};
        rc = mdb_put(txn, db->dbi_floats, &k, &val, MDB_NOOVERWRITE);
        if (rc == MDB_KEYEXIST) {
            /* val now holds the stored value */
            if (val.mv_size != sizeof bits || memcmp(val.mv_data, &bits, sizeof bits) != 0)
                fp->dropped++;
            continue;
        }
        if (rc)
            return rc;
        atomic_fetch_add(&db->float_samples_total, 1);
    }
    return APPLY_OK;
}

/* LMDB reports a short write -- the disk filled during it -- as EIO; a
 * filesystem with no block left is then said to be full, so the log names
 * the cause a user can act on rather than a hardware fault. */
static int commit_errno(const tsdb *db, int rc)
{
    struct statvfs st;
    if (rc == EIO && statvfs(db->path, &st) == 0 && (st.f_bavail == 0 || st.f_bfree == 0))
        return ENOSPC;
    return rc;
}

/* Commits the batch, growing the map and retrying when it is full. */
static void process_batch(struct writer *w, struct request **batch, size_t n)
{
    tsdb *db = w->db;
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(db->env, NULL, 0, &txn);
        int64_t now = firn_now_ms();
        for (size_t i = 0; i < n && !rc; i++) {
            batch[i]->status = 0;
            batch[i]->duplicate = false;
            firn_err_clear(&batch[i]->err);
            rc = batch[i]->kind == REQ_FLOATS ? apply_floats(w, txn, batch[i], now)
                                              : apply_append(w, txn, batch[i], now);
            if (rc == APPLY_REJECTED)
                rc = 0;
        }
        if (!rc) {
            rc = mdb_txn_commit(txn);
        } else if (txn) {
            mdb_txn_abort(txn);
        }
        if (rc == 0) {
            atomic_fetch_add(&db->commits_total, 1);
            return;
        }
        caches_drop(w);
        firn_err gerr = {0};
        if (rc == MDB_MAP_FULL && tsdb_grow_map(db, &gerr) == 0)
            continue;
        if (rc != MDB_MAP_FULL)
            firn_errf(&gerr, rc == ENOMEM ? FIRN_ENOMEM : FIRN_EIO, "%s/data.mdb: writing: %s",
                      db->path, tsdb_strerror(commit_errno(db, rc)));
        firn_log(FIRN_LOG_ERROR, "tsdb", "commit failed", "err=\"%s\" appends=%zu", gerr.msg, n);
        for (size_t i = 0; i < n; i++) {
            batch[i]->status = gerr.code ? gerr.code : FIRN_EIO;
            batch[i]->err = gerr;
        }
        return;
    }
}

/* ---- retention (writer thread) ------------------------------------------ */

static void run_retention(struct writer *w, int64_t now, uint64_t *deleted_blocks,
                          firn_err *err)
{
    tsdb *db = w->db;
    *deleted_blocks = 0;
    if (db->opts.retention_ms <= 0) {
        w->retention_more = false;
        return;
    }
    for (;;) {
        MDB_txn *txn;
        int rc = mdb_txn_begin(db->env, NULL, 0, &txn);
        if (rc) {
            /* the periodic pass has no caller to tell: log and count it */
            firn_errf(err, FIRN_EIO, "retention: starting a write: %s", tsdb_strerror(rc));
            atomic_fetch_add(&db->retention_failures_total, 1);
            firn_log(FIRN_LOG_ERROR, "tsdb", "retention pass failed", "err=\"%s\"", err->msg);
            return;
        }
        uint64_t blocks = 0, series = 0;
        bool more = false;
        uint32_t first_live = w->first_live_partition;
        int prc = tsdb_retention_pass(db, txn, now, &blocks, &series, &more, &first_live, err);
        if (prc == 0)
            rc = mdb_txn_commit(txn);
        else
            mdb_txn_abort(txn);
        if (prc == 0 && rc == 0) {
            atomic_fetch_add(&db->retention_runs_total, 1);
            atomic_fetch_add(&db->retention_deleted_blocks_total, blocks);
            atomic_fetch_add(&db->retention_deleted_series_total, series);
            *deleted_blocks += blocks;
            w->retention_more = more;
            /* deleted series and partitions must not be found in the caches,
             * nor the oldest timestamps of series that lost blocks */
            if (series || blocks)
                series_cache_drop(w);
            if (first_live != w->first_live_partition) {
                for (int i = 0; i < PART_CACHES; i++)
                    if (w->parts[i].used && w->parts[i].partition < first_live)
                        part_cache_drop(&w->parts[i]);
                w->first_live_partition = first_live;
                tsdb_symcache_drop_below(db->symcache, first_live);
            }
            if (blocks || series)
                firn_log(FIRN_LOG_INFO, "tsdb", "retention deleted expired data",
                         "blocks=%llu series=%llu", (unsigned long long)blocks,
                         (unsigned long long)series);
            return;
        }
        caches_drop(w);
        if ((prc == 0 ? rc : prc) == MDB_MAP_FULL) {
            /* deleting can need pages too */
            if (tsdb_grow_map(db, err) == 0)
                continue;
        }
        if (prc == 0)
            firn_errf(err, FIRN_EIO, "retention: %s", tsdb_strerror(rc));
        atomic_fetch_add(&db->retention_failures_total, 1);
        firn_log(FIRN_LOG_ERROR, "tsdb", "retention pass failed", "err=\"%s\"",
                 err ? err->msg : "?");
        return;
    }
}

/* ---- compaction (writer thread) ------------------------------------------ */

static void run_compaction(struct writer *w, int64_t now, uint64_t *written, firn_err *err)
{
    tsdb *db = w->db;
    *written = 0;
    w->compact_more = false;
    for (;;) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        MDB_txn *txn;
        int rc = mdb_txn_begin(db->env, NULL, 0, &txn), prc = rc;
        uint64_t n = 0, buckets = 0;
        int64_t horizon = 0;
        bool more = false;
        if (!rc) {
            prc = tsdb_rollup_pass(db, txn, now, &more, &n, &buckets, &horizon, err);
            if (prc == 0)
                rc = mdb_txn_commit(txn);
            else
                mdb_txn_abort(txn);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        atomic_fetch_add(&db->compaction_nanos_total,
                         (uint64_t)((t1.tv_sec - t0.tv_sec) * 1000000000LL + t1.tv_nsec - t0.tv_nsec));
        if (prc == 0 && rc == 0) {
            /* appends below the horizon now check their series' watermark */
            if (horizon > db->rollup_horizon_ms)
                db->rollup_horizon_ms = horizon;
            atomic_fetch_add(&db->compaction_runs_total, 1);
            atomic_fetch_add(&db->rollups_written_total, n);
            atomic_fetch_add(&db->rollup_buckets_total, buckets);
            *written += n;
            w->compact_more = more;
            return;
        }
        if ((prc == 0 ? rc : prc) == MDB_MAP_FULL && tsdb_grow_map(db, err) == 0)
            continue;
        /* a failed pass left nothing behind (its transaction is aborted);
         * the resume point may be stale, which only costs a longer pass */
        db->rollup_resume_series = 0;
        if (prc == 0 || !err || !err->code)
            firn_errf(err, FIRN_EIO, "compaction: %s", tsdb_strerror(prc ? prc : rc));
        atomic_fetch_add(&db->compaction_failures_total, 1);
        firn_log(FIRN_LOG_ERROR, "tsdb", "compaction pass failed", "err=\"%s\"",
                 err ? err->msg : "?");
        return;
    }
}

/* ---- the writer thread --------------------------------------------------- */

static void async_free(struct async_append *a)
{
    firn_arena_free(a->pp.arena);
    firn_arena_free(a->arena);
    free(a);
}

static void async_finish(struct async_append *a)
{
    struct request *rq = &a->rq;
    a->done(a->ctx, rq->status, rq->status ? &rq->err : NULL, rq->status == 0 && rq->duplicate);
    async_free(a);
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    tsdb *db = w->db;
    size_t max = db->opts.batch_max;
    struct request **batch = w->batch;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        int64_t now = firn_now_ms();
        bool retention_due = db->opts.retention_ms > 0 &&
                             (w->retention_more || now >= w->next_retention_ms);
        bool compact_due = !db->opts.no_rollups && (w->compact_more || now >= w->next_compact_ms);
        if (!w->head && !w->stop && !retention_due && !compact_due) {
            int64_t next = INT64_MAX;
            if (db->opts.retention_ms > 0)
                next = w->next_retention_ms;
            if (!db->opts.no_rollups && w->next_compact_ms < next)
                next = w->next_compact_ms;
            struct timespec until = {(time_t)(next / 1000), (long)(next % 1000) * 1000000};
            if (next != INT64_MAX)
                pthread_cond_timedwait(&w->wake, &w->mu, &until);
            else
                pthread_cond_wait(&w->wake, &w->mu);
            continue;
        }
        if (!w->head && w->stop)
            break;
        size_t n = 0, batch_bytes = 0;
        struct request *retention = NULL;
        if (w->head && (w->head->kind == REQ_RETENTION || w->head->kind == REQ_COMPACT)) {
            retention = w->head;
            w->head = retention->next;
        } else {
            while (w->head && w->head->kind != REQ_RETENTION && w->head->kind != REQ_COMPACT &&
                   n < max) {
                struct request *rq = w->head;
                w->head = rq->next;
                w->queued--;
                /* its bytes stay counted until its commit is over: the
                 * byte limit bounds all that waits for or is in a commit */
                batch_bytes += rq->kind == REQ_APPEND ? rq->prep->bytes : rq->fprep->bytes;
                batch[n++] = rq;
            }
        }
        if (!w->head)
            w->tail = NULL;
        atomic_store(&db->queue_length, w->queued);
        if (n)
            pthread_cond_broadcast(&w->room);
        pthread_mutex_unlock(&w->mu);

        if (n) {
            process_batch(w, batch, n);
            size_t kept = 0;
            for (size_t i = 0; i < n; i++) {
                if (batch[i]->kind == REQ_FLOATS && !batch[i]->status)
                    atomic_fetch_add(&db->float_samples_dropped_total, batch[i]->fprep->dropped);
                else if (batch[i]->kind == REQ_APPEND)
                    atomic_fetch_add(batch[i]->status ? &db->append_failures_total
                                                      : &db->appends_total, 1);
                /* an asynchronous append is answered now, before any
                 * maintenance pass below, and never looked at again */
                if (batch[i]->async)
                    async_finish(batch[i]->async);
                else
                    batch[kept++] = batch[i];
            }
            n = kept;
            pthread_mutex_lock(&w->mu);
            w->queued_bytes -= batch_bytes;
            pthread_cond_broadcast(&w->room);
            pthread_mutex_unlock(&w->mu);
        }
        if (retention && retention->kind == REQ_COMPACT) {
            do {
                uint64_t written = 0;
                run_compaction(w, retention->now_ms, &written, &retention->err);
                retention->deleted_blocks += written;
            } while (w->compact_more && !retention->err.code);
            retention->status = retention->err.code;
        } else if (retention) {
            /* an explicit run finishes the job, pass after pass */
            do {
                uint64_t deleted = 0;
                run_retention(w, retention->now_ms, &deleted, &retention->err);
                retention->deleted_blocks += deleted;
            } while (w->retention_more && !retention->err.code);
            retention->status = retention->err.code;
        } else if (retention_due) {
            firn_err rerr = {0};
            uint64_t deleted;
            run_retention(w, now, &deleted, &rerr);
            w->next_retention_ms = now + db->opts.retention_interval_ms;
        }
        if (!retention && compact_due) {
            firn_err cerr = {0};
            uint64_t written;
            run_compaction(w, now, &written, &cerr);
            w->next_compact_ms = now + db->opts.rollup_interval_ms;
        }

        pthread_mutex_lock(&w->mu);
        for (size_t i = 0; i < n; i++)
            batch[i]->done = true;
        if (retention)
            retention->done = true;
        pthread_cond_broadcast(&w->done);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

int tsdb_writer_start(tsdb *db, firn_err *err)
{
    struct writer *w = firn_xcalloc(1, sizeof *w);
    w->db = db;
    w->batch = firn_xreallocarray(NULL, db->opts.batch_max, sizeof *w->batch);
    if (!(w->zstd = ZSTD_createCCtx()))
        firn_oom(0);   /* zstd's allocation: the policy of model/alloc.h */
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->wake, NULL);
    pthread_cond_init(&w->done, NULL);
    pthread_cond_init(&w->room, NULL);
    /* the first pass soon after opening, then every interval */
    w->next_retention_ms = firn_now_ms();
    w->next_compact_ms = w->next_retention_ms;
    db->writer = w;
    int rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc) {
        db->writer = NULL;
        free(w->batch);
        ZSTD_freeCCtx(w->zstd);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->wake);
        pthread_cond_destroy(&w->done);
        pthread_cond_destroy(&w->room);
        free(w);
        return firn_errf(err, FIRN_EIO, "starting the writer thread: %s", strerror(rc));
    }
    return 0;
}

void tsdb_writer_stop(tsdb *db)
{
    struct writer *w = db->writer;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->wake);
    pthread_cond_broadcast(&w->room);   /* appends waiting for room are refused */
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    caches_drop(w);
    firn_buf_free(&w->val);
    firn_buf_free(&w->val2);
    free(w->bs);
    free(w->batch);
    ZSTD_freeCCtx(w->zstd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->wake);
    pthread_cond_destroy(&w->done);
    pthread_cond_destroy(&w->room);
    free(w);
    db->writer = NULL;
}

/* Queues rq.  With wait_room, a full queue is waited out (the writer
 * makes room as it takes each batch); without, it is FIRN_EBUSY.  With the
 * lock held on return 0. */
static int enqueue(tsdb *db, struct request *rq, size_t bytes, bool wait_room, firn_err *err)
{
    struct writer *w = db->writer;
    if (!w)
        return firn_errf(err, FIRN_EINVAL, "%s: the store is open read-only", db->path);
    pthread_mutex_lock(&w->mu);
    bool maintenance = rq->kind == REQ_RETENTION || rq->kind == REQ_COMPACT;
    if (!maintenance && bytes > db->opts.queue_max_bytes) {
        pthread_mutex_unlock(&w->mu);
        return firn_errf(err, FIRN_ETOOBIG,
                         "profile needs %zu bytes in the append queue; its limit is %zu", bytes,
                         db->opts.queue_max_bytes);
    }
    for (;;) {
        if (w->stop) {
            pthread_mutex_unlock(&w->mu);
            return firn_errf(err, FIRN_EINVAL, "%s: the store is closing", db->path);
        }
        if (maintenance || (w->queued < db->opts.queue_max &&
                            w->queued_bytes + bytes <= db->opts.queue_max_bytes))
            break;
        if (!wait_room) {
            size_t q = w->queued, qb = w->queued_bytes;
            pthread_mutex_unlock(&w->mu);
            atomic_fetch_add(&db->queue_full_total, 1);
            return firn_errf(err, FIRN_EBUSY,
                             "append queue full (%zu profiles, %zu bytes waiting); try again "
                             "later", q, qb);
        }
        pthread_cond_wait(&w->room, &w->mu);
    }
    if (!maintenance) {
        w->queued++;
        w->queued_bytes += bytes;
    }
    if (w->tail)
        w->tail->next = rq;
    else
        w->head = rq;
    w->tail = rq;
    atomic_store(&db->queue_length, w->queued);
    pthread_cond_signal(&w->wake);
    return 0;
}

/* Queues rq and waits until the writer is done with it. */
static int submit(tsdb *db, struct request *rq, size_t bytes, firn_err *err)
{
    int rc = enqueue(db, rq, bytes, false, err);
    if (rc)
        return rc;
    struct writer *w = db->writer;
    while (!rq->done)
        pthread_cond_wait(&w->done, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (rq->status && err)
        *err = rq->err;
    return rq->status;
}

int tsdb_append(tsdb *db, const tsdb_append_req *req, firn_err *err)
{
    struct prepared pp;
    int rc = prepare(db, req, &pp, err);
    if (rc == 0) {
        struct request rq = {.kind = REQ_APPEND, .prep = &pp};
        rc = submit(db, &rq, pp.bytes, err);
        if (req->duplicate)
            *req->duplicate = rc == 0 && rq.duplicate;
    } else {
        atomic_fetch_add(&db->append_failures_total, 1);
    }
    firn_arena_free(pp.arena);
    return rc;
}

int tsdb_append_async(tsdb *db, const tsdb_append_req *req, tsdb_append_done_fn done,
                      void *ctx, firn_err *err)
{
    assert(done);
    struct async_append *a = firn_xcalloc(1, sizeof *a);
    /* the copy: nothing of the caller's but the profile is read later */
    a->arena = firn_arena_new(0);
    a->req = *req;
    a->req.duplicate = NULL;
    firn_label *labels = firn_arena_alloc(a->arena, (req->n_labels + 1) * sizeof *labels);
    for (size_t i = 0; i < req->n_labels; i++) {
        labels[i].name = req->labels[i].name ? firn_arena_strdup(a->arena, req->labels[i].name)
                                             : NULL;
        labels[i].value =
            req->labels[i].value ? firn_arena_strdup(a->arena, req->labels[i].value) : NULL;
    }
    a->req.labels = labels;
    if (req->profile_name)
        a->req.profile_name = firn_arena_strdup(a->arena, req->profile_name);
    if (req->delta_columns && req->profile) {
        size_t n = req->profile->n_sample_types;
        bool *cols = firn_arena_alloc(a->arena, (n + 1) * sizeof *cols);
        memcpy(cols, req->delta_columns, n * sizeof *cols);
        a->req.delta_columns = cols;
    }
    a->done = done;
    a->ctx = ctx;
    int rc = prepare(db, &a->req, &a->pp, err);
    if (rc == 0) {
        a->pp.bytes += firn_arena_bytes(a->arena);
        a->rq = (struct request){.kind = REQ_APPEND, .prep = &a->pp, .async = a};
        rc = enqueue(db, &a->rq, a->pp.bytes, true, err);
        if (rc == 0) {
            /* from here on the writer owns a */
            pthread_mutex_unlock(&db->writer->mu);
            return 0;
        }
    } else {
        atomic_fetch_add(&db->append_failures_total, 1);
    }
    async_free(a);
    return rc;
}

double tsdb_stale_nan(void)
{
    uint64_t bits = TSDB_STALE_NAN_BITS;
    double v;
    memcpy(&v, &bits, sizeof v);
    return v;
}

bool tsdb_is_stale(double v)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    return bits == TSDB_STALE_NAN_BITS;
}

int tsdb_append_floats(tsdb *db, const tsdb_float_sample *samples, size_t n, size_t *dropped,
                       firn_err *err)
{
    if (dropped)
        *dropped = 0;
    if (n == 0)
        return 0;
    struct float_prep fp = {.samples = samples, .n = n, .arena = firn_arena_new(0)};
    int rc = 0;
    fp.series = firn_arena_calloc(fp.arena, n, sizeof *fp.series);
    for (size_t i = 0; i < n && !rc; i++) {
        const tsdb_float_sample *s = &samples[i];
        struct series_prep *sp = &fp.series[i];
        if (s->n_labels > FIRN_LABELS_MAX + 1) {
            rc = firn_errf(err, FIRN_EINVAL, "sample %zu: %zu labels; at most %d", i,
                           s->n_labels, FIRN_LABELS_MAX);
            break;
        }
        if (s->timestamp_ms < 0) {
            rc = firn_errf(err, FIRN_EINVAL, "sample %zu: timestamp %lld ms is before 1970", i,
                           (long long)s->timestamp_ms);
            break;
        }
        sp->labels = firn_arena_alloc(fp.arena, (s->n_labels + 1) * sizeof *sp->labels);
        bool has_name = false;
        for (size_t j = 0; j < s->n_labels && !rc; j++) {
            sp->labels[j] = s->labels[j];
            if (!sp->labels[j].name || !sp->labels[j].value)
                rc = firn_errf(err, FIRN_EINVAL, "sample %zu: label %zu: missing name or value",
                               i, j);
            else if (strlen(sp->labels[j].name) > STORE_LABEL_NAME_MAX)
                rc = firn_errf(err, FIRN_EINVAL, "sample %zu: label name \"%.40s...\": longer "
                               "than %d bytes", i, sp->labels[j].name, STORE_LABEL_NAME_MAX);
            else if (strcmp(sp->labels[j].name, FIRN_LABEL_NAME) == 0 && sp->labels[j].value[0])
                has_name = true;
        }
        if (rc)
            break;
        if (!has_name) {
            rc = firn_errf(err, FIRN_EINVAL, "sample %zu: no __name__", i);
            break;
        }
        sp->n_labels = s->n_labels;
        if (firn_labels_normalize(sp->labels, &sp->n_labels, err) < 0) {
            firn_err_prefix(err, "labels");
            rc = err ? err->code : FIRN_EINVAL;
            break;
        }
        sp->hash = tsdb_labels_hash(sp->labels, sp->n_labels);
    }
    if (!rc) {
        struct request rq = {.kind = REQ_FLOATS, .fprep = &fp};
        fp.bytes = firn_arena_bytes(fp.arena);
        rc = submit(db, &rq, fp.bytes, err);
        if (!rc && dropped)
            *dropped = fp.dropped;
    }
    firn_arena_free(fp.arena);
    return rc;
}

int tsdb_retention_run(tsdb *db, int64_t now, uint64_t *deleted_blocks, firn_err *err)
{
    struct request rq = {.kind = REQ_RETENTION, .now_ms = now};
    int rc = submit(db, &rq, 0, err);
    if (deleted_blocks)
        *deleted_blocks = rq.deleted_blocks;
    return rc;
}

int tsdb_rollup_run(tsdb *db, int64_t now, uint64_t *written, firn_err *err)
{
    struct request rq = {.kind = REQ_COMPACT, .now_ms = now};
    int rc = submit(db, &rq, 0, err);
    if (written)
        *written = rq.deleted_blocks;
    return rc;
}
