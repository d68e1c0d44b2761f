/* internal.h -- what the files of tsdb/ share: the LMDB schema, key and
 * value encodings, and the store struct.  See docs/ARCHITECTURE.md
 * ("Storage") for the schema in prose; keep the two in step.
 *
 * Sub-databases of the one environment:
 *   meta        "schema_version" -> u32, "partition_ms" -> i64,
 *               "next_series_id" -> u64 (host order; ids are never reused)
 *   series      series id (u64 BE) -> series record (see tsdb_series_encode)
 *   series_idx  xxh3-128 of the sorted labels (16 bytes) -> series id (u64 BE)
 *   postings    label name \0 value -> series ids (DUPSORT, DUPFIXED, native u64);
 *               a value too long for an LMDB key is cut and followed by
 *               0xFF + xxh3-128 of the whole value (0xFF never occurs in
 *               UTF-8), the whole value kept in long_values under that key
 *   long_values long postings key -> whole label value
 *   samples     (series id u64 BE, timestamp ms u64 BE) -> block (see tsdb_block_encode)
 *   floats      (series id u64 BE, timestamp ms u64 BE) -> f64 (8 bytes, the IEEE bit
 *               pattern little-endian; TSDB_STALE_NAN is a stale marker): the samples
 *               of float series (recording rules, ALERTS); a series is a float series
 *               when its record says so, and then has no samples/totals keys
 *   totals      the same key -> the block's header alone (count, total, duration,
 *               period), packed densely so metric queries read no sample pages
 *   chunks      (series id u64 BE, timestamp of its first point u64 BE) -> the
 *               (time, duration, period, total) of up to 240 consecutive profiles
 *               of the series, delta coded (see chunks.c): what metric queries
 *               read (schema 5)
 *   symbols     (partition u32 BE, kind u8, id u32 BE) -> symbol content
 *   symbol_idx  (partition u32 BE, kind u8, xxh3-128) -> id (u32 LE)
 *   rollups     (series id u64 BE, level u8, bucket start ms u64 BE) -> rollup: the
 *               merged (stack, label set) -> value totals of the bucket's profiles
 *               (see rollup.c for the value); level ROLLUP_HOUR or ROLLUP_DAY
 *   rollup_state series id (u64 BE) -> i64 (host order): every whole hour bucket
 *               before it has been compacted (the series' watermark)
 *   rollup_dirty (series id u64 BE, hour bucket start ms u64 BE) -> "": an hour below
 *               the watermark that a late profile landed in; its rollups (hour and
 *               day) were deleted in the append's transaction and are redone by
 *               the next compaction pass
 */
#ifndef FIRN_TSDB_INTERNAL_H
#define FIRN_TSDB_INTERNAL_H

#include <lmdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <zstd.h>

#include "tsdb/symcache.h"
#include "tsdb/tsdb.h"

/* Symbol kinds: the byte after the partition in symbols/symbol_idx keys. */
enum sym_kind {
    SYM_STRING = 1,
    SYM_FUNCTION = 2,
    SYM_MAPPING = 3,
    SYM_LOCATION = 4,
    SYM_STACK = 5,
    SYM_LABELSET = 6,
    SYM_KINDS = 7,
};

#define SYM_KEY_LEN 9
#define SYM_IDX_KEY_LEN 21
#define SAMPLE_KEY_LEN 16
#define POSTING_KEY_MAX 480        /* under LMDB's 511-byte key limit */
#define POSTING_LONG_CUT 200       /* bytes of a long value kept in its key */
#define STORE_LABEL_NAME_MAX 200   /* label names longer than this are refused */

#define BLOCK_VERSION_ROWS 1        /* schema 2 and 3 wrote these; still read */
#define BLOCK_VERSION 2             /* columnar, zstd: what schema 4 writes */
#define BLOCK_HAS_LABELSETS 1u
#define BLOCK_DEFLATE 2u            /* version 1: body zlib-compressed; raw length follows the header */
#define BLOCK_ZSTD 4u               /* version 2: body zstd-compressed; raw length follows the header */
#define BLOCK_STACK_BITMAP 8u       /* version 2, schema 6: the stack column is a bitmap */
#define BLOCK_COMPRESS_MIN 64       /* bodies shorter than this stay raw */
#define BLOCK_ZSTD_LEVEL 5          /* docs/ARCHITECTURE.md ("Blocks") says why */
#define BLOCK_RAW_MAX (256u << 20)  /* a body larger than this is corrupt */

struct writer;   /* write.c */

struct tsdb {
    tsdb_options opts;
    char *path;
    MDB_env *env;
    MDB_dbi dbi_meta, dbi_series, dbi_series_idx, dbi_postings, dbi_long_values,
        dbi_samples, dbi_totals, dbi_chunks, dbi_symbols, dbi_symbol_idx, dbi_floats, dbi_rollups,
        dbi_rollup_state, dbi_rollup_dirty;
    bool has_floats;         /* false only for a read-only open of a version 2 store */
    bool has_rollups;        /* false only for a read-only open of a version 2 or 3 store */
    bool has_chunks;         /* false only for a read-only open of a version 2 to 4 store */
    /* The writer thread's alone: no series' watermark is above it, so an
     * append at or after it cannot land in a rolled-up bucket (read from
     * meta at open, raised after each compaction commit). */
    int64_t rollup_horizon_ms;
    uint64_t rollup_resume_series;   /* where a pass cut short by its budget resumes */
    int64_t partition_ms;
    int lock_fd;             /* flock'd firn.lock: one writing process */
    /* Readers hold it shared for the life of their transaction; the writer
     * takes it exclusively only to grow the map. */
    pthread_rwlock_t resize_lock;
    struct writer *writer;   /* NULL when read-only */
    tsdb_symcache *symcache; /* NULL when read-only (symcache.c) */
    _Atomic uint64_t appends_total, append_failures_total, samples_total, commits_total,
        float_samples_total, float_samples_dropped_total,
        queue_full_total, map_resizes_total, retention_deleted_blocks_total,
        retention_deleted_series_total, retention_runs_total, retention_failures_total,
        queue_length, rollups_written_total, rollups_invalidated_total, rollup_buckets_total,
        compaction_runs_total, compaction_failures_total, compaction_nanos_total;
};

/* ---- encodings (codec.c) --------------------------------------------- */

/* What decoding blocks needs from one block to the next: the decompressed
 * body and zstd's context (made on first use). */
struct block_scratch {
    firn_buf body;
    ZSTD_DCtx *zstd;
};

void tsdb_block_scratch_free(struct block_scratch *s);

/* Appenders of the store's encodings to a firn_buf (model/buf.h), which
 * the store uses without a cap: what it encodes is already in memory. */
void tsdb_buf_varint(firn_buf *b, uint64_t v);
void tsdb_buf_zigzag(firn_buf *b, int64_t v);
void tsdb_buf_bytes(firn_buf *b, const void *data, size_t n);   /* varint length + bytes */

/* ---- merging (accum.c) ------------------------------------------------ */

struct acc_entry {
    uint32_t partition, stack, labelset;
    int64_t value;
};

struct acc_part;

/* Sums of (partition, stack, label set) over profiles and rollups, plus
 * what a merged profile's header needs. */
struct acc {
    struct acc_part *parts;
    size_t n_parts, cap_parts, last;
    bool keep_labels;            /* else label sets are dropped (summed per stack) */
    uint64_t blocks;             /* raw profiles summed (inside rollups too) */
    uint64_t samples;            /* (stack, value) pairs read */
    uint64_t rollups;            /* rollups read */
    int64_t min_ts, max_end_ns, period;
};

void tsdb_acc_init(struct acc *a, bool keep_labels);
void tsdb_acc_free(struct acc *a);
/* Adds the header of `blocks` profiles: oldest timestamp, latest end. */
void tsdb_acc_note(struct acc *a, int64_t min_ts, int64_t max_end_ns, int64_t period,
                   uint64_t blocks);
/* Adds n samples of one partition, stacks ascending; labelsets may be
 * NULL.  ENOMEM when the dense array for the largest stack id cannot be
 * had (accum.c says why that one is not an abort). */
int tsdb_acc_add(struct acc *a, uint32_t partition, const uint32_t *stacks,
                 const uint32_t *labelsets, const int64_t *values, size_t n);
/* Distinct entries so far. */
size_t tsdb_acc_count(const struct acc *a);
/* The entries sorted by (partition, stack, label set), malloc'd. */
void tsdb_acc_entries(struct acc *a, struct acc_entry **out, size_t *n);

/* A read snapshot (read.c). */
struct tsdb_reader {
    tsdb *db;
    MDB_txn *txn;
    firn_arena *arena;          /* function names handed out; lives with the reader */
    uint32_t *stacks, *labelsets;
    int64_t *values;
    size_t cap;                 /* of the three scratch arrays above */
    struct block_scratch scratch;
    MDB_cursor *sym_cursor[SYM_KINDS];   /* symbols, one per kind (read.c's sym_get) */
    firn_buf sym_copy[SYM_KINDS];        /* a record from the symbol cache, per kind */
};

/* A bounds-checked reader over a value; `bad` is set by any read past the
 * end or any malformed varint, and reads then return 0. */
struct cur {
    const unsigned char *p, *end;
    bool bad;
};

/* A varint at *p (before end), or *bad set, 0 returned and *p at end: the
 * cursor's read, inlined for loops over many values (block columns, chunks
 * of totals), with one-byte varints, most of them, taken first. */
static inline uint64_t tsdb_varint_at(const unsigned char **p, const unsigned char *end,
                                      bool *bad)
{
    if (*p < end && !(**p & 0x80))
        return *(*p)++;
    uint64_t v = 0;
    for (unsigned shift = 0; shift < 64 && *p < end; shift += 7) {
        unsigned char byte = *(*p)++;
        v |= (uint64_t)(byte & 0x7f) << shift;
        if (!(byte & 0x80))
            return v;
    }
    *bad = true;
    *p = end;
    return 0;
}

static inline uint64_t tsdb_cur_varint(struct cur *c)
{
    return tsdb_varint_at(&c->p, c->end, &c->bad);
}

static inline int64_t tsdb_cur_zigzag(struct cur *c)
{
    uint64_t v = tsdb_cur_varint(c);
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}
/* A length-prefixed byte string; points into the value. */
const unsigned char *tsdb_cur_bytes(struct cur *c, size_t *len);

void tsdb_be32_put(unsigned char *p, uint32_t v);
void tsdb_be64_put(unsigned char *p, uint64_t v);
uint32_t tsdb_be32_get(const unsigned char *p);
uint64_t tsdb_be64_get(const unsigned char *p);

void tsdb_sym_key(unsigned char out[SYM_KEY_LEN], uint32_t partition, enum sym_kind kind, uint32_t id);
void tsdb_sym_idx_key(unsigned char out[SYM_IDX_KEY_LEN], uint32_t partition, enum sym_kind kind,
                 pprof_hash h);
void tsdb_sample_key(unsigned char out[SAMPLE_KEY_LEN], uint64_t series, int64_t ts);
/* Postings key of name=value into out (POSTING_KEY_MAX bytes); returns its
 * length and sets *is_long when the value had to be cut. */
size_t tsdb_posting_key(unsigned char *out, const char *name, const char *value, bool *is_long);

/* xxh3-128 of a sorted label set (length-prefixed names and values). */
pprof_hash tsdb_labels_hash(const firn_label *labels, size_t n);

/* Series record: min ts, max ts (zigzag), label count, then length-prefixed
 * name and value of each label, sorted by name; then, for a float series
 * only, one byte SERIES_KIND_FLOAT (a record without it, as every version 2
 * record, is a profile series). */
#define SERIES_KIND_FLOAT 1
void tsdb_series_encode(firn_buf *b, const firn_label *labels, size_t n, int64_t min_ts,
                        int64_t max_ts, bool floats);
/* Whether a stored series record is a float series' (false on a corrupt one). */
bool tsdb_series_record_floats(const MDB_val *v);
/* Decode into arena-allocated labels; FIRN_EIO with err on a bad record. */
int tsdb_series_decode(const MDB_val *v, firn_arena *arena, tsdb_series *out, firn_err *err);

/* One sample of a block under construction. */
struct block_sample {
    uint32_t stack;
    uint32_t labelset;
    int64_t value;
};

/* Sorts and sums equal (stack, labelset) pairs, then encodes into b as a
 * version 2 block (body is scratch; zstd is the writer's compression
 * context).  Returns the number of distinct samples written.
 *
 * Version 2 (schema 4): two bytes (version, flags); varints n, total
 * (zigzag), duration (zigzag), period (zigzag), gcd; with BLOCK_ZSTD the
 * body's raw length (varint) and the body compressed, else the body.  The
 * body is columnar: n stack id deltas (ids ascending, varint), then with
 * BLOCK_HAS_LABELSETS n label set ids (varint), then n values divided by
 * gcd (zigzag varint).  With BLOCK_STACK_BITMAP (schema 6 writes it when
 * the ids are distinct and it is the shorter column) the stack column is
 * instead the first id (varint), the bitmap's length in bytes (varint) and
 * the bitmap, bit k (of byte k / 8, least significant first) standing for
 * id first + k.  Version 1 (schemas 2, 3) had the same header, a
 * zlib body (BLOCK_DEFLATE) and one row (delta, [labelset], value) per
 * sample. */
size_t tsdb_block_encode(firn_buf *b, firn_buf *body, ZSTD_CCtx *zstd, struct block_sample *s,
                         size_t n, int64_t duration_nanos, int64_t period);

/* Header of a block; then tsdb_block_decode reads its samples. */
struct block_reader {
    struct cur c;               /* the (decompressed) body */
    size_t header_len;          /* bytes before the body */
    unsigned version, flags;
    uint64_t n, gcd;
    int64_t total, duration_nanos, period;
};

/* Reads the header and decompresses the body into scratch; a NULL scratch
 * reads the header only.  0, or -1 on a malformed block. */
int tsdb_block_open(struct block_reader *br, const MDB_val *v, struct block_scratch *scratch);
/* Every sample of an opened block (of either version) into the arrays, each
 * with room for br->n: stack ids ascending, label set ids (0 for "no
 * labels"; all 0 without BLOCK_HAS_LABELSETS), values (saturated on
 * overflow).  0, or -1 on a malformed block. */
int tsdb_block_decode(struct block_reader *br, uint32_t *stacks, uint32_t *labelsets,
                      int64_t *values);

/* Whether two stored blocks hold the same header figures and samples, in
 * whatever encoding: a retried append re-encodes its profile, and a store
 * upgraded to schema 6 holds blocks encoded the older way. */
bool tsdb_block_same(const MDB_val *x, const MDB_val *y);

/* Makes the reader's scratch arrays hold n samples, n being an opened
 * block's count (at most half its body's bytes, which are in memory). */
void tsdb_reader_reserve(tsdb_reader *r, size_t n);

/* Adds the profiles of one series in [start_ms, end_ms] to a, reading the
 * rollups of the given levels (bit 1 << ROLLUP_HOUR, 1 << ROLLUP_DAY) for
 * the whole buckets inside the range and raw profiles elsewhere.
 * max_samples caps a->samples (0: none; FIRN_ETOOBIG past it). */
int tsdb_merge_series(tsdb_reader *r, struct acc *a, uint64_t series, int64_t start_ms,
                      int64_t end_ms, unsigned levels, size_t max_samples, firn_err *err);

/* ---- rollup.c ---------------------------------------------------------- */

enum { ROLLUP_HOUR = 1, ROLLUP_DAY = 2 };
#define ROLLUP_HOUR_MS (3600LL * 1000)
#define ROLLUP_DAY_MS (24 * ROLLUP_HOUR_MS)
#define ROLLUP_KEY_LEN 17
#define ROLLUP_LEVELS_ALL ((1u << ROLLUP_HOUR) | (1u << ROLLUP_DAY))

void tsdb_rollup_key(unsigned char out[ROLLUP_KEY_LEN], uint64_t series, int level,
                     int64_t bucket_ms);

/* One whole bucket of a range that a rollup covers. */
struct rollup_span {
    int64_t start_ms, end_ms;     /* inclusive */
    MDB_val value;                /* valid while the transaction lives unchanged */
};

/* The rollups to read for [start_ms, end_ms] of a series, ascending and
 * disjoint, days preferred to their hours; *spans is malloc'd. */
int tsdb_rollup_plan(tsdb_reader *r, uint64_t series, int64_t start_ms, int64_t end_ms,
                     unsigned levels, struct rollup_span **spans, size_t *n, firn_err *err);

/* Adds one rollup value to a; FIRN_EIO on a corrupt one. */
int tsdb_rollup_add(tsdb_reader *r, struct acc *a, const MDB_val *v, firn_err *err);

/* Called in an append's transaction after a profile of series was stored
 * at ts: when ts lies below the series' watermark, deletes the rollups of
 * its hour and day and marks the hour dirty. */
int tsdb_rollup_note_append(tsdb *db, MDB_txn *txn, uint64_t series, int64_t ts);

/* One bounded compaction pass in txn (writer thread); *more when its
 * budget ran out first.  *written counts rollups written, *buckets the
 * hour buckets considered. */
int tsdb_rollup_pass(tsdb *db, MDB_txn *txn, int64_t now_ms, bool *more, uint64_t *written,
                     uint64_t *buckets, int64_t *horizon, firn_err *err);

/* Retention: deletes the series' rollups and dirty marks of buckets that
 * start before cutoff (their raw profiles are being deleted), and, when
 * gone is set, its watermark. */
int tsdb_rollup_expire(tsdb *db, MDB_txn *txn, uint64_t series, int64_t cutoff, bool gone,
                       long *budget);

/* ---- chunks.c ---------------------------------------------------------- */

/* Adds one profile's point to its series' chunks (append transaction);
 * an LMDB code (MDB_KEYEXIST when the series has a point at ts). */
int tsdb_chunk_add(tsdb *db, MDB_txn *txn, uint64_t series, int64_t ts, int64_t duration,
                   int64_t period, int64_t total);
/* Retention: removes the series' points before keep_from (INT64_MAX: all);
 * an LMDB code. */
int tsdb_chunk_trim(tsdb *db, MDB_txn *txn, uint64_t series, int64_t keep_from);
/* Upgrade: builds every series' chunks from the totals database into the
 * empty chunks database; *points counts the points written.  An LMDB code. */
int tsdb_chunks_build(tsdb *db, MDB_txn *txn, uint64_t *points);
/* tsdb_scan with TSDB_SCAN_TOTALS, from the chunks: fn per point, or, when
 * it is NULL, tfn per chunk (tsdb_scan_totals). */
int tsdb_chunks_scan(tsdb_reader *r, uint64_t series, int64_t start_ms, int64_t end_ms,
                     tsdb_block_fn fn, tsdb_totals_fn tfn, void *ctx, firn_err *err);

/* ---- store.c ----------------------------------------------------------- */

/* Human text for an LMDB or errno code. */
const char *tsdb_strerror(int rc);
/* Grow the map (waits for readers); called by the writer on MDB_MAP_FULL. */
int tsdb_grow_map(tsdb *db, firn_err *err);

/* ---- write.c ------------------------------------------------------------- */

int tsdb_writer_start(tsdb *db, firn_err *err);
void tsdb_writer_stop(tsdb *db);

/* ---- retention.c --------------------------------------------------------- */

/* One bounded retention pass inside txn; *more is set when the budget ran
 * out before everything expired was deleted.  Partitions below
 * *first_live_partition are gone after it. */
int tsdb_retention_pass(tsdb *db, MDB_txn *txn, int64_t now_ms, uint64_t *deleted_blocks,
                   uint64_t *deleted_series, bool *more, uint32_t *first_live_partition,
                   firn_err *err);

/* Delete one series id from postings (and long_values when its key is the
 * last user), series_idx and series. */
int tsdb_series_delete(tsdb *db, MDB_txn *txn, uint64_t id, const tsdb_series *s, firn_err *err);

/* check.c: reads every page of the store at path in a child process;
 * FIRN_EINVAL naming the file when that crashes or LMDB refuses a page. */
int tsdb_check_pages(const char *path, firn_err *err);

#endif
