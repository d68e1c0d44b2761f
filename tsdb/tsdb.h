/* tsdb.h -- firn's profile store: series of profiles on LMDB, and float
 * series (what recording rules and alerting rules write) beside them.
 *
 * Owns one directory (default ./data) holding one LMDB environment.  A
 * series is a label set whose __name__ is a profile type
 * (name:sample_type:sample_unit:period_type:period_unit[:delta]); one pprof
 * with N sample types becomes N series.  Each stored profile is a block of
 * (stack, value[, sample-label set]) keyed by (series, timestamp); stacks and
 * the symbols under them are content-addressed within a time partition, so a
 * stack seen a million times is stored once per partition.  A float series
 * is a label set with any other __name__ holding (timestamp, f64) samples,
 * stale markers included; it shares the series ids, postings and retention
 * of profile series.  The schema is in docs/ARCHITECTURE.md ("Storage").
 *
 * Threads:
 *  - tsdb_append may be called from any number of threads.  It hands the
 *    profile to the single writer thread through a bounded queue and returns
 *    once the write is committed (durable: LMDB syncs on commit), or at once
 *    with FIRN_EBUSY when the queue is full.  The writer commits many
 *    appends per transaction.
 *  - Readers (tsdb_reader_open) may be opened from any thread, any number at
 *    once; each sees one consistent snapshot and never blocks the writer.
 *    A reader is used by one thread at a time.
 *  - A background pass in the writer thread deletes profiles older than the
 *    retention, then series without profiles, then whole symbol partitions.
 *  - Another (compaction) writes rollups: per series and whole hour, then
 *    whole day, the merged stack -> value totals of its profiles, so that a
 *    merge over a long range reads one rollup per bucket.  A merge gives the
 *    same profile with or without them.  A profile appended late into a
 *    rolled-up hour deletes that hour's and day's rollups in its own commit;
 *    the next pass redoes them.
 *  - When LMDB's map is full the writer grows it and retries the batch; that
 *    one step waits for open readers to close.  So a thread holds at most
 *    one reader at a time, and never holds one while it calls tsdb_append or
 *    tsdb_stats_get (which opens its own): that could wait forever.
 *
 * Memory: results are owned by the caller and freed with the matching
 * *_free function; profiles returned are pprof_free'd.
 */
#ifndef FIRN_TSDB_H
#define FIRN_TSDB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/model.h"
#include "pprof/pprof.h"

#define TSDB_SCHEMA_VERSION 6   /* 3 adds float series; 4 adds rollups and writes
                                   columnar zstd blocks (the old ones are still read);
                                   5 adds per-series chunks of totals; 6 writes the
                                   stack column of dense blocks as a bitmap (the old
                                   blocks are still read); a version 2 to 5 store is
                                   upgraded in place by a writable open (a store
                                   before 5 has its chunks built from its totals in
                                   that open; nothing else is rewritten; compaction
                                   then rolls up what it holds); a read-only open
                                   reads it as it is */
#define TSDB_DEFAULT_RETENTION_MS (15LL * 24 * 3600 * 1000)   /* 15d, as Prometheus */

typedef struct tsdb tsdb;

typedef struct tsdb_options {
    const char *path;              /* directory; created if missing */
    int64_t retention_ms;          /* profiles older than this are deleted; 0 = forever */
    int64_t retention_interval_ms; /* how often the retention pass runs (default 1m) */
    size_t map_size;               /* initial LMDB map size in bytes (default 1 GiB) */
    size_t queue_max;              /* appends waiting for the writer before FIRN_EBUSY */
    size_t queue_max_bytes;        /* their decoded size, likewise, counted until
                                      their commit is over (what waits for or is
                                      in a commit) */
    size_t batch_max;              /* appends per commit at most */
    int64_t partition_ms;          /* symbol partition width, fixed when the store is
                                      created (0: derived from the retention) */
    bool read_only;                /* no writer: for inspecting a store in use */
    bool check_pages;              /* a writable open first reads every page of the
                                      store in a child process (fork: only while the
                                      process has one thread) and refuses the store
                                      when that crashes (a damaged page) */
    uint64_t max_series;           /* series the store may hold (0: no limit); an append
                                      that would create more is refused (FIRN_EINVAL,
                                      "series limit") and stores nothing */
    bool no_rollups;               /* no background compaction (tsdb_rollup_run still
                                      works; merges read the rollups there are) */
    int64_t rollup_interval_ms;    /* how often the compaction pass runs (default 1m) */
    int64_t rollup_delay_ms;       /* an hour is rolled up this long after it ends
                                      (default 5m): later profiles into it are
                                      still exact, only costlier */
    size_t rollup_pass_samples;    /* samples one compaction transaction reads at most
                                      before it commits (default 2M): bounds how
                                      long appends wait behind it */
    int64_t resize_wait_ms;        /* read-only: how long a read waits for the other
                                      reads of this process to close when another
                                      process grew the store (default 10 s) */
    size_t symbol_cache_bytes;     /* bytes of symbol records kept for every reader
                                      of the process (default 32 MiB, least recently
                                      used out first); a read-only open keeps none
                                      (docs/ARCHITECTURE.md, "Symbol cache") */
} tsdb_options;

#define TSDB_SYMBOL_CACHE_BYTES (32u << 20)

/* The symbol cache's state (all zero for a read-only open). */
typedef struct tsdb_symcache_stat {
    uint64_t entries, bytes, hits, misses, evictions;
} tsdb_symcache_stat;

void tsdb_options_default(tsdb_options *o);

/* Opens (creating if needed) the store.  Refuses, with a message naming the
 * file: a path that is not a directory, a file that is not an LMDB
 * environment or is truncated, an LMDB environment that is not a firn store,
 * and a store of another schema version. */
tsdb *tsdb_open(const tsdb_options *o, firn_err *err);
/* Waits for queued appends to commit, stops the threads, closes. */
void tsdb_close(tsdb *db);
void tsdb_symbol_cache_stats(tsdb *db, tsdb_symcache_stat *out);

/* ---- writing ------------------------------------------------------------- */

typedef struct tsdb_append_req {
    const firn_label *labels;    /* target labels; no __name__ (it is derived) */
    size_t n_labels;
    const char *profile_name;    /* first field of the profile type, e.g. "process_cpu" */
    bool delta;                  /* the values are deltas: the type gets ":delta" */
    const bool *delta_columns;   /* NULL, or per sample type: overrides delta (a Go
                                    allocs profile made delta has delta alloc_* and
                                    snapshot inuse_* columns) */
    const pprof_profile *profile;
    int64_t timestamp_ms;        /* 0: the profile's time_nanos, else now */
    bool *duplicate;             /* NULL, or set: the store held this very profile already */
} tsdb_append_req;

/* Stores one profile: one block per sample type, all in one commit.
 * Returns 0 once durable.  The same profile again (same series, timestamp
 * and blocks: a retried append whose answer was lost) is a no-op that
 * returns 0 with *duplicate set.  Errors: FIRN_EINVAL (bad labels, a
 * timestamp outside retention), FIRN_EEXIST (a series already holds a
 * different profile at this timestamp), FIRN_EBUSY (queue full),
 * FIRN_ETOOBIG, FIRN_EIO.  On error
 * nothing of the profile is stored.  req and the profile are only read, and
 * only until the call returns. */
int tsdb_append(tsdb *db, const tsdb_append_req *req, firn_err *err);

/* The end of an asynchronous append: status 0 once the profile is durable,
 * else what tsdb_append would have returned (err says why; nothing of the
 * profile is stored); duplicate as tsdb_append_req.duplicate.  Called
 * exactly once, on the writer thread, right after the commit that held the
 * append: it must be quick and must not call the store (hand the result to
 * another thread). */
typedef void (*tsdb_append_done_fn)(void *ctx, int status, const firn_err *err, bool duplicate);

/* tsdb_append without waiting for the commit, so that one caller can have
 * many profiles in one commit (the writer commits every append queued, up
 * to batch_max, together).  Returns 0 once the append is queued, and done
 * is called later; or an error, as tsdb_append's, for an append refused at
 * once (done is not called).  A full queue (queue_max, queue_max_bytes) is
 * waited out here, not refused: the caller is held back until the writer
 * catches up.  Labels, profile name and delta columns are copied;
 * req->duplicate is not used; the profile is only read, and must stay
 * valid and unchanged until done is called. */
int tsdb_append_async(tsdb *db, const tsdb_append_req *req, tsdb_append_done_fn done,
                      void *ctx, firn_err *err);

/* Prometheus's stale marker: a NaN with this bit pattern, distinct from the
 * NaN a computation yields.  A float series whose newest sample at or
 * before t is a stale marker has no value at t. */
#define TSDB_STALE_NAN_BITS 0x7ff0000000000002ULL
double tsdb_stale_nan(void);
bool tsdb_is_stale(double v);

typedef struct tsdb_float_sample {
    const firn_label *labels;    /* __name__ included; any order; empty values are dropped */
    size_t n_labels;
    int64_t timestamp_ms;
    double value;                /* any double, stale markers included */
} tsdb_float_sample;

/* Stores float samples, all in one commit; returns 0 once durable.  As in
 * Prometheus's appender, a sample older than the retention, or at a
 * timestamp its series already holds with a different value, is dropped and
 * counted in *dropped (may be NULL); the same value again is a no-op.
 * Errors (nothing stored): FIRN_EINVAL (no __name__, bad labels, a label set
 * that is a profile series'), FIRN_EBUSY (queue full), FIRN_EIO. */
int tsdb_append_floats(tsdb *db, const tsdb_float_sample *samples, size_t n, size_t *dropped,
                       firn_err *err);

/* Deletes everything expired as of now_ms (the background pass uses the
 * wall clock and a bounded amount of work per pass; this runs passes until
 * nothing expired is left) and waits for it.  deleted_blocks may be NULL. */
int tsdb_retention_run(tsdb *db, int64_t now_ms, uint64_t *deleted_blocks, firn_err *err);

/* Runs compaction passes until every whole hour that ended rollup_delay_ms
 * before now_ms is rolled up (and every whole day of them), and waits for
 * it; the background thread does the same every rollup_interval_ms.
 * written (rollups written) may be NULL. */
int tsdb_rollup_run(tsdb *db, int64_t now_ms, uint64_t *written, firn_err *err);

/* ---- self-metrics ------------------------------------------------------- */

typedef struct tsdb_stats {
    uint64_t series;             /* live series */
    uint64_t blocks;             /* stored profiles (one per series and timestamp) */
    uint64_t disk_bytes;         /* size of the data file */
    uint64_t map_bytes;          /* current LMDB map size */
    uint64_t appends_total;      /* profiles acknowledged */
    uint64_t append_failures_total;
    uint64_t samples_total;      /* samples stored by those appends */
    uint64_t commits_total;
    uint64_t queue_full_total;   /* appends refused with FIRN_EBUSY */
    uint64_t map_resizes_total;
    uint64_t retention_deleted_blocks_total;
    uint64_t retention_deleted_series_total;
    uint64_t retention_runs_total;
    uint64_t retention_failures_total;  /* passes that failed (each logged) */
    uint64_t queue_length;
    uint64_t float_samples_total;          /* float samples stored */
    uint64_t float_samples_dropped_total;  /* dropped: too old, or a conflicting duplicate */
    uint64_t rollups;                      /* rollups stored (hour and day buckets) */
    uint64_t rollups_written_total;
    uint64_t rollups_invalidated_total;    /* hours a late profile made dirty */
    uint64_t rollup_buckets_total;         /* hour buckets the compaction considered */
    uint64_t compaction_runs_total;
    uint64_t compaction_failures_total;    /* passes that failed (each logged) */
    double compaction_seconds_total;
} tsdb_stats;

int tsdb_stats_get(tsdb *db, tsdb_stats *out, firn_err *err);

/* ---- reading ------------------------------------------------------------- */

typedef struct tsdb_reader tsdb_reader;

tsdb_reader *tsdb_reader_open(tsdb *db, firn_err *err);
void tsdb_reader_close(tsdb_reader *r);

typedef struct tsdb_series {
    uint64_t id;
    firn_label *labels;          /* sorted, __name__ included */
    size_t n_labels;
    int64_t min_time_ms;         /* oldest and newest profile (or float sample) */
    int64_t max_time_ms;
    bool floats;                 /* a float series: read it with tsdb_scan_floats */
} tsdb_series;

typedef struct tsdb_series_set {
    tsdb_series *series;         /* ordered by labels */
    size_t n;
    firn_arena *arena;           /* owns everything above */
} tsdb_series_set;

void tsdb_series_set_free(tsdb_series_set *s);

/* Series matching all matchers (Prometheus semantics: an absent label is
 * "") that hold a profile or a float sample in [start_ms, end_ms] (INT64_MIN/INT64_MAX for no
 * bound).  No matchers selects every series. */
int tsdb_select(tsdb_reader *r, const firn_matcher *matchers, size_t n_matchers,
                int64_t start_ms, int64_t end_ms, tsdb_series_set *out, firn_err *err);

typedef struct tsdb_strings {
    char **v;                    /* sorted, unique */
    size_t n;
    firn_arena *arena;
} tsdb_strings;

void tsdb_strings_free(tsdb_strings *s);

/* Label names, or the values of one label, over the series that match the
 * matchers in the time range. */
int tsdb_label_names(tsdb_reader *r, const firn_matcher *matchers, size_t n_matchers,
                     int64_t start_ms, int64_t end_ms, tsdb_strings *out, firn_err *err);
int tsdb_label_values(tsdb_reader *r, const char *name, const firn_matcher *matchers,
                      size_t n_matchers, int64_t start_ms, int64_t end_ms, tsdb_strings *out,
                      firn_err *err);

/* One stored profile of one series.  stacks/labelsets are ids within the
 * block's partition (resolve them with tsdb_stack_frames); labelsets is
 * NULL when no sample has labels; 0 there means "no labels". */
typedef struct tsdb_block {
    int64_t timestamp_ms;
    int64_t duration_nanos;
    int64_t period;
    int64_t total;               /* sum of the values (saturating) */
    uint32_t partition;
    size_t n_samples;            /* 0 when scanned with TSDB_SCAN_TOTALS */
    const uint32_t *stacks;
    const uint32_t *labelsets;
    const int64_t *values;
} tsdb_block;

enum {
    TSDB_SCAN_TOTALS = 1u << 0,  /* headers only: timestamps, durations, totals */
};

/* Calls fn for each profile of the series in [start_ms, end_ms], oldest
 * first; the block is valid during the call.  fn returns 0 to go on, or a
 * negative code that tsdb_scan returns. */
typedef int (*tsdb_block_fn)(void *ctx, const tsdb_block *block);
int tsdb_scan(tsdb_reader *r, uint64_t series_id, int64_t start_ms, int64_t end_ms,
              unsigned flags, tsdb_block_fn fn, void *ctx, firn_err *err);

/* The timestamps and totals of a profile series' profiles in [start_ms,
 * end_ms], oldest first, handed to fn in batches (up to a chunk's worth,
 * 240, per call): what tsdb_scan with TSDB_SCAN_TOTALS gives, without a
 * call per profile (a metric query reads hundreds of thousands).  fn
 * returns 0 to go on, or a negative code that tsdb_scan_totals returns. */
typedef int (*tsdb_totals_fn)(void *ctx, const int64_t *timestamps_ms, const int64_t *totals,
                              size_t n);
int tsdb_scan_totals(tsdb_reader *r, uint64_t series_id, int64_t start_ms, int64_t end_ms,
                     tsdb_totals_fn fn, void *ctx, firn_err *err);

/* Calls fn for each float sample of a float series in [start_ms, end_ms],
 * oldest first, stale markers included (nothing for a profile series).  fn
 * returns 0 to go on, or a negative code that tsdb_scan_floats returns. */
typedef int (*tsdb_float_fn)(void *ctx, int64_t timestamp_ms, double value);
int tsdb_scan_floats(tsdb_reader *r, uint64_t series_id, int64_t start_ms, int64_t end_ms,
                     tsdb_float_fn fn, void *ctx, firn_err *err);

/* Function names of a stack, leaf first (inlined frames expanded), for
 * stack filters; names point into the reader and live until it closes.  An
 * unsymbolized frame has the name "". */
int tsdb_stack_functions(tsdb_reader *r, uint32_t partition, uint32_t stack,
                         const char ***names, size_t *n, firn_err *err);

/* The message of a merge past its max_samples: Prometheus's for a query
 * over --query.max-samples, so every query path reads alike. */
#define TSDB_TOO_MANY_SAMPLES \
    "query processing would load too many samples into memory in query execution"

typedef struct tsdb_merge_options {
    bool keep_labels;            /* keep pprof sample labels (group-by needs them) */
    size_t max_samples;          /* cap on samples read (0: none); FIRN_ETOOBIG past it,
                                    with TSDB_TOO_MANY_SAMPLES */
    bool raw;                    /* read raw profiles only, no rollups (benchmark anchor) */
} tsdb_merge_options;

typedef struct tsdb_merge_stats {
    uint64_t blocks;             /* profiles merged (inside rollups too) */
    uint64_t samples;            /* samples read (a rollup's entries count as samples) */
    uint64_t stacks;             /* distinct stacks in the result */
    uint64_t rollups;            /* rollups read */
} tsdb_merge_stats;

/* Sums every profile of the series in [start_ms, end_ms] into one profile
 * with one sample per distinct stack (and label set).  All series must
 * share a profile type: it gives the sample type and period.  opts and stats
 * may be NULL. */
pprof_profile *tsdb_merge(tsdb_reader *r, const uint64_t *series_ids, size_t n_series,
                          int64_t start_ms, int64_t end_ms, const tsdb_merge_options *opts,
                          tsdb_merge_stats *stats, firn_err *err);

/* The profile a series holds at exactly timestamp_ms, as stored (one
 * sample type; sample labels kept).  FIRN_EINVAL-coded NULL when none. */
pprof_profile *tsdb_profile_at(tsdb_reader *r, uint64_t series_id, int64_t timestamp_ms,
                               firn_err *err);

#endif
