/* store.c -- opening, checking and closing the LMDB environment; the schema
 * record; growing the map; self-metrics.
 *
 * Open checks what LMDB itself trusts blindly: a data file shorter than the
 * pages its meta page claims would be mapped and read past its end (SIGBUS),
 * so the size is checked against the meta page before any transaction.
 */
#include "internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAP_SIZE (1ull << 30)

static const char *const DB_NAMES[] = {"meta",        "series",  "series_idx", "postings",
                                       "long_values", "samples", "totals",     "symbols",
                                       "symbol_idx"};

void tsdb_options_default(tsdb_options *o)
{
    memset(o, 0, sizeof *o);
    o->path = "./data";
    o->retention_ms = TSDB_DEFAULT_RETENTION_MS;
    o->retention_interval_ms = 60 * 1000;
    o->map_size = DEFAULT_MAP_SIZE;
    o->queue_max = 4096;
    o->queue_max_bytes = 512u << 20;
    o->batch_max = 512;
    o->resize_wait_ms = 10 * 1000;
    o->rollup_interval_ms = 60 * 1000;
    o->rollup_delay_ms = 5 * 60 * 1000;
}

const char *tsdb_strerror(int rc)
{
    return mdb_strerror(rc);   /* covers errno values too */
}

/* mkdir -p */
static int make_dirs(const char *path, firn_err *err)
{
    char *p = firn_xstrdup(path);
    for (char *s = p + 1;; s++) {
        char c = *s;
        if (c == '/' || c == 0) {
            *s = 0;
            if (mkdir(p, 0755) < 0 && errno != EEXIST) {
                int e = errno;
                free(p);
                return firn_errf(err, FIRN_EIO, "%s: cannot create directory: %s", path,
                                 strerror(e));
            }
            *s = c;
        }
        if (c == 0)
            break;
    }
    free(p);
    return 0;
}

/* The directory exists (or is made) and its data file, if any, has a size
 * LMDB can open without reading past the end of it. */
static int check_dir(const tsdb_options *o, off_t *data_size, firn_err *err)
{
    struct stat st;
    *data_size = -1;
    if (stat(o->path, &st) < 0) {
        if (errno != ENOENT)
            return firn_errf(err, FIRN_EIO, "%s: %s", o->path, strerror(errno));
        if (o->read_only)
            return firn_errf(err, FIRN_EINVAL, "%s: no store there", o->path);
        return make_dirs(o->path, err);
    }
    if (!S_ISDIR(st.st_mode))
        return firn_errf(err, FIRN_EINVAL, "%s: not a directory (a store is a directory)",
                         o->path);
    char file[4096];
    snprintf(file, sizeof file, "%s/data.mdb", o->path);
    if (stat(file, &st) < 0) {
        if (errno == ENOENT) {
            if (o->read_only)
                return firn_errf(err, FIRN_EINVAL, "%s: no store there", o->path);
            return 0;
        }
        return firn_errf(err, FIRN_EIO, "%s: %s", file, strerror(errno));
    }
    if (!S_ISREG(st.st_mode))
        return firn_errf(err, FIRN_EINVAL, "%s: not a regular file", file);
    /* LMDB would quietly start a new store in an empty file: refuse, since
     * emptying it is how data gets lost */
    if (st.st_size == 0)
        return firn_errf(err, FIRN_EINVAL,
                         "%s: empty file: truncated, or its creation was interrupted; remove "
                         "it to start a new store", file);
    *data_size = st.st_size;
    return 0;
}

/* One writing process per store: the writer's caches assume no other
 * process adds symbols.  flock(2) is released by the kernel when the
 * process dies, so a kill -9 leaves no stale lock. */
static int lock_dir(tsdb *db, firn_err *err)
{
    char file[4096];
    snprintf(file, sizeof file, "%s/firn.lock", db->path);
    db->lock_fd = open(file, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (db->lock_fd < 0)
        return firn_errf(err, FIRN_EIO, "%s: %s", file, strerror(errno));
    if (flock(db->lock_fd, LOCK_EX | LOCK_NB) < 0) {
        char pid[32] = "";
        ssize_t n = pread(db->lock_fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        return firn_errf(err, FIRN_EINVAL,
                         "%s: the store is in use by another process%s%s (open it read-only "
                         "to inspect it)", db->path, pid[0] ? " with pid " : "", pid);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(db->lock_fd, 0) < 0 || pwrite(db->lock_fd, pid, (size_t)n, 0) != n)
        return firn_errf(err, FIRN_EIO, "%s: %s", file, strerror(errno));
    return 0;
}

static int open_env(tsdb *db, off_t data_size, firn_err *err)
{
    char file[4096];
    snprintf(file, sizeof file, "%s/data.mdb", db->path);
    int rc = mdb_env_create(&db->env);
    if (rc)
        return firn_errf(err, FIRN_EIO, "lmdb: %s", tsdb_strerror(rc));
    size_t map = db->opts.map_size ? db->opts.map_size : DEFAULT_MAP_SIZE;
    /* room to write before the first growth: an upgrade to schema 5 builds
     * its chunks of totals (a small fraction of the file) in the open */
    if (data_size > 0 && (size_t)data_size + (size_t)data_size / 4 > map)
        map = (size_t)data_size * 2;
    if ((rc = mdb_env_set_mapsize(db->env, map)) || (rc = mdb_env_set_maxdbs(db->env, 16)) ||
        (rc = mdb_env_set_maxreaders(db->env, 1024)))
        return firn_errf(err, FIRN_EIO, "%s: setting up LMDB (map of %zu bytes): %s", file, map,
                         tsdb_strerror(rc));
    unsigned flags = MDB_NOTLS | (db->opts.read_only ? MDB_RDONLY : 0);
    rc = mdb_env_open(db->env, db->path, flags, 0644);
    if (rc == MDB_INVALID)
        return firn_errf(err, FIRN_EINVAL, "%s: not an LMDB data file (or its header is corrupt)",
                         file);
    if (rc == MDB_VERSION_MISMATCH)
        return firn_errf(err, FIRN_EINVAL, "%s: written by an incompatible LMDB version", file);
    if (rc)
        return firn_errf(err, FIRN_EIO, "%s: cannot open: %s", file, tsdb_strerror(rc));
    if (data_size > 0) {
        MDB_envinfo info;
        MDB_stat st;
        mdb_env_info(db->env, &info);
        mdb_env_stat(db->env, &st);
        uint64_t need = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
        if (need > (uint64_t)data_size)
            return firn_errf(err, FIRN_EINVAL,
                             "%s: truncated: %lld bytes, but the store's pages need %llu",
                             file, (long long)data_size, (unsigned long long)need);
    }
    return 0;
}

/* Opens the named databases and checks or writes the schema record. */
static int open_schema(tsdb *db, firn_err *err)
{
    bool ro = db->opts.read_only;
    MDB_txn *txn;
    int rc = mdb_txn_begin(db->env, NULL, ro ? MDB_RDONLY : 0, &txn);
    if (rc)
        return firn_errf(err, FIRN_EIO, "%s: %s", db->path, tsdb_strerror(rc));
    MDB_dbi main;
    MDB_stat mst;
    if ((rc = mdb_dbi_open(txn, NULL, 0, &main)) || (rc = mdb_stat(txn, main, &mst))) {
        mdb_txn_abort(txn);
        return firn_errf(err, FIRN_EIO, "%s: %s", db->path, tsdb_strerror(rc));
    }
    bool fresh = mst.ms_entries == 0;
    MDB_dbi *dbis[] = {&db->dbi_meta, &db->dbi_series, &db->dbi_series_idx, &db->dbi_postings,
                       &db->dbi_long_values, &db->dbi_samples, &db->dbi_totals, &db->dbi_symbols,
                       &db->dbi_symbol_idx};
    for (size_t i = 0; i < sizeof dbis / sizeof *dbis; i++) {
        unsigned f = ro ? 0 : MDB_CREATE;
        if (dbis[i] == &db->dbi_postings)
            f |= MDB_DUPSORT | MDB_DUPFIXED | MDB_INTEGERDUP;
        rc = mdb_dbi_open(txn, DB_NAMES[i], f, dbis[i]);
        if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE) {
            mdb_txn_abort(txn);
            return firn_errf(err, FIRN_EINVAL,
                             "%s: an LMDB environment, but not a firn store (no \"%s\" "
                             "database)", db->path, DB_NAMES[i]);
        }
        if (rc) {
            mdb_txn_abort(txn);
            return firn_errf(err, FIRN_EIO, "%s: opening \"%s\": %s", db->path, DB_NAMES[i],
                             tsdb_strerror(rc));
        }
        if (i == 0 && !fresh) {
            /* the version before anything else, so that no other database
             * is created in (or demanded of) a store of another version */
            MDB_val vk = {strlen("schema_version"), "schema_version"}, vv;
            uint32_t version = 0;
            int vrc = mdb_get(txn, db->dbi_meta, &vk, &vv);
            if (vrc == 0 && vv.mv_size == sizeof version)
                memcpy(&version, vv.mv_data, sizeof version);   /* little-endian hosts only */
            if (vrc) {
                mdb_txn_abort(txn);
                return firn_errf(err, FIRN_EINVAL,
                                 "%s: an LMDB environment, but not a firn store (no schema "
                                 "record)", db->path);
            }
            if (version != TSDB_SCHEMA_VERSION && (version < 2 || version > 5)) {
                mdb_txn_abort(txn);
                return firn_errf(err, FIRN_EINVAL,
                                 "%s: store schema version %u; this firn reads versions 2 to "
                                 "%d", db->path, version, TSDB_SCHEMA_VERSION);
            }
        }
    }
    /* Version 3 added the floats database, nothing else: a writable open of
     * a version 2 store creates it; a read-only one reads the store as
     * having no float series.  Version 4 writes version 2 blocks (columnar,
     * zstd) and reads version 1 blocks as ever, so a version 2 or 3 store
     * is upgraded by recording version 4 (nothing is rewritten); a firn
     * before version 4 refuses the upgraded store, as it could not read
     * its new blocks. */
    rc = mdb_dbi_open(txn, "floats", ro ? 0 : MDB_CREATE, &db->dbi_floats);
    db->has_floats = rc == 0;
    if (rc && !(ro && rc == MDB_NOTFOUND)) {
        mdb_txn_abort(txn);
        return firn_errf(err, FIRN_EIO, "%s: opening \"floats\": %s", db->path,
                         tsdb_strerror(rc));
    }
    /* Version 4 added the rollup databases, likewise: a writable open
     * creates them (compaction then rolls up what the store holds); a
     * read-only open of an older store merges raw profiles only. */
    const char *rollup_dbs[] = {"rollups", "rollup_state", "rollup_dirty"};
    MDB_dbi *rollup_dbis[] = {&db->dbi_rollups, &db->dbi_rollup_state, &db->dbi_rollup_dirty};
    db->has_rollups = true;
    for (size_t i = 0; i < 3; i++) {
        rc = mdb_dbi_open(txn, rollup_dbs[i], ro ? 0 : MDB_CREATE, rollup_dbis[i]);
        if (rc == MDB_NOTFOUND && ro) {
            db->has_rollups = false;
            continue;
        }
        if (rc) {
            mdb_txn_abort(txn);
            return firn_errf(err, FIRN_EIO, "%s: opening \"%s\": %s", db->path, rollup_dbs[i],
                             tsdb_strerror(rc));
        }
    }
    /* Version 5 added the chunks of totals.  A writable open of an older
     * store builds them from its per-profile totals in the upgrade's
     * transaction (below); a read-only open reads the totals as they are.
     * Version 6 writes blocks whose stack column is a bitmap
     * (BLOCK_STACK_BITMAP) and reads the older blocks as ever: a version 5
     * store is upgraded by recording version 6 (nothing is rewritten), and
     * a firn before version 6 refuses the upgraded store, as it could not
     * read its new blocks. */
    rc = mdb_dbi_open(txn, "chunks", ro ? 0 : MDB_CREATE, &db->dbi_chunks);
    db->has_chunks = rc == 0;
    if (rc && !(ro && rc == MDB_NOTFOUND)) {
        mdb_txn_abort(txn);
        return firn_errf(err, FIRN_EIO, "%s: opening \"chunks\": %s", db->path,
                         tsdb_strerror(rc));
    }
    MDB_val hk = {strlen("rollup_horizon_ms"), "rollup_horizon_ms"}, hv;
    if (mdb_get(txn, db->dbi_meta, &hk, &hv) == 0 && hv.mv_size == sizeof db->rollup_horizon_ms)
        memcpy(&db->rollup_horizon_ms, hv.mv_data, sizeof db->rollup_horizon_ms);
    MDB_val k = {strlen("schema_version"), "schema_version"}, v;
    rc = mdb_get(txn, db->dbi_meta, &k, &v);
    uint32_t old_version = 0;
    if (rc == 0 && v.mv_size == sizeof old_version)
        memcpy(&old_version, v.mv_data, sizeof old_version);   /* little-endian hosts only */
    if (rc == 0 && !ro && old_version >= 2 && old_version < TSDB_SCHEMA_VERSION) {
        uint32_t ver = TSDB_SCHEMA_VERSION;
        MDB_val vv = {sizeof ver, &ver};
        uint64_t points = 0;
        /* a firn before version 5 never wrote chunks: none there to keep */
        if (old_version < 5 && ((rc = mdb_drop(txn, db->dbi_chunks, 0)) ||
                                (rc = tsdb_chunks_build(db, txn, &points)))) {
            mdb_txn_abort(txn);
            return firn_errf(err, FIRN_EIO,
                             "%s: upgrading the store to schema %d (building the chunks of "
                             "totals): %s", db->path, TSDB_SCHEMA_VERSION, tsdb_strerror(rc));
        }
        if (old_version < 5)
            firn_log(FIRN_LOG_INFO, "tsdb", "built the chunks of totals",
                     "path=%s points=%llu", db->path, (unsigned long long)points);
        if ((rc = mdb_put(txn, db->dbi_meta, &k, &vv, 0)) ||
            (rc = mdb_get(txn, db->dbi_meta, &k, &v))) {
            mdb_txn_abort(txn);
            return firn_errf(err, FIRN_EIO, "%s: upgrading the schema record: %s", db->path,
                             tsdb_strerror(rc));
        }
        firn_log(FIRN_LOG_INFO, "tsdb", "upgraded the store's schema",
                 "path=%s from=%u to=%d", db->path, old_version, TSDB_SCHEMA_VERSION);
    }
    if (rc == MDB_NOTFOUND && !ro) {
        uint32_t ver = TSDB_SCHEMA_VERSION;
        int64_t width = db->opts.partition_ms;
        if (width <= 0) {
            int64_t r = db->opts.retention_ms > 0 ? db->opts.retention_ms / 4 : 0;
            const int64_t hour = 3600 * 1000, day = 24 * hour;
            width = r <= 0 || r > day ? day : r < hour ? hour : r;
        }
        MDB_val vv = {sizeof ver, &ver};
        MDB_val pk = {strlen("partition_ms"), "partition_ms"}, pv = {sizeof width, &width};
        if ((rc = mdb_put(txn, db->dbi_meta, &k, &vv, 0)) ||
            (rc = mdb_put(txn, db->dbi_meta, &pk, &pv, 0)) || (rc = mdb_txn_commit(txn)))
            return firn_errf(err, FIRN_EIO, "%s: writing the schema record: %s", db->path,
                             tsdb_strerror(rc));
        db->partition_ms = width;
        return 0;
    }
    if (rc) {
        mdb_txn_abort(txn);
        return firn_errf(err, FIRN_EINVAL, "%s: not a firn store (no schema version record)",
                         db->path);
    }
    uint32_t version = 0;
    if (v.mv_size == sizeof version)
        memcpy(&version, v.mv_data, sizeof version);   /* little-endian hosts only */
    MDB_val pk = {strlen("partition_ms"), "partition_ms"}, pv;
    int prc = mdb_get(txn, db->dbi_meta, &pk, &pv);
    if (prc == 0 && pv.mv_size == sizeof db->partition_ms)
        memcpy(&db->partition_ms, pv.mv_data, sizeof db->partition_ms);
    /* committing (even a read-only transaction) keeps the handles open */
    if ((rc = mdb_txn_commit(txn)))
        return firn_errf(err, FIRN_EIO, "%s: %s", db->path, tsdb_strerror(rc));
    /* a read-only open reads an older store as it is: version 2 (without
     * floats) and 3 (rollups absent or empty; old blocks are read anyway) */
    if (version < 2 || version > TSDB_SCHEMA_VERSION || (version == 2 && db->has_floats) ||
        (version != TSDB_SCHEMA_VERSION && !ro))
        return firn_errf(err, FIRN_EINVAL,
                         "%s: store schema version %u; this firn reads versions 2 to %d",
                         db->path, version, TSDB_SCHEMA_VERSION);
    /* a store read as it is below version 5 has its totals per profile only */
    if (version < 5)
        db->has_chunks = false;
    if (prc || db->partition_ms <= 0)
        return firn_errf(err, FIRN_EINVAL, "%s: corrupt schema record (partition width)",
                         db->path);
    return 0;
}

tsdb *tsdb_open(const tsdb_options *o, firn_err *err)
{
    tsdb *db = firn_xcalloc(1, sizeof *db);
    db->opts = *o;
    db->path = firn_xstrdup(o->path && o->path[0] ? o->path : "./data");
    db->opts.path = db->path;
    if (!db->opts.queue_max)
        db->opts.queue_max = 4096;
    if (!db->opts.queue_max_bytes)
        db->opts.queue_max_bytes = 512u << 20;
    if (!db->opts.batch_max)
        db->opts.batch_max = 512;
    if (db->opts.retention_interval_ms <= 0)
        db->opts.retention_interval_ms = 60 * 1000;
    if (db->opts.resize_wait_ms <= 0)
        db->opts.resize_wait_ms = 10 * 1000;
    if (db->opts.rollup_interval_ms <= 0)
        db->opts.rollup_interval_ms = 60 * 1000;
    if (!db->opts.rollup_pass_samples)
        db->opts.rollup_pass_samples = 2000000;
    if (db->opts.rollup_delay_ms < 0)
        db->opts.rollup_delay_ms = 0;
    pthread_rwlockattr_t attr;
    pthread_rwlockattr_init(&attr);
    pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
    pthread_rwlock_init(&db->resize_lock, &attr);
    pthread_rwlockattr_destroy(&attr);
    /* Only the writing process knows when a partition is deleted (its
     * retention pass); a read-only process keeps no copies, which another
     * process's retention could leave stale. */
    if (!o->read_only)
        db->symcache = tsdb_symcache_new(o->symbol_cache_bytes ? o->symbol_cache_bytes
                                                               : TSDB_SYMBOL_CACHE_BYTES);
    off_t data_size;
    db->lock_fd = -1;
    if (!db->path || check_dir(&db->opts, &data_size, err) < 0 ||
        (!o->read_only && lock_dir(db, err) < 0) || open_env(db, data_size, err) < 0 ||
        (!o->read_only && o->check_pages && data_size > 0 && tsdb_check_pages(db->path, err) < 0) ||
        open_schema(db, err) < 0 ||
        (!o->read_only && tsdb_writer_start(db, err) < 0)) {
        tsdb_close(db);
        return NULL;
    }
    return db;
}

void tsdb_close(tsdb *db)
{
    if (!db)
        return;
    if (db->writer)
        tsdb_writer_stop(db);
    if (db->env)
        mdb_env_close(db->env);
    tsdb_symcache_free(db->symcache);
    pthread_rwlock_destroy(&db->resize_lock);
    if (db->lock_fd >= 0)
        close(db->lock_fd);   /* releases the flock */
    free(db->path);
    free(db);
}

void tsdb_symbol_cache_stats(tsdb *db, tsdb_symcache_stat *out)
{
    *out = (tsdb_symcache_stat){0};
    if (db->symcache)
        tsdb_symcache_stats(db->symcache, out);
}

int tsdb_grow_map(tsdb *db, firn_err *err)
{
    pthread_rwlock_wrlock(&db->resize_lock);
    MDB_envinfo info;
    mdb_env_info(db->env, &info);
    size_t cur = info.me_mapsize;
    size_t step = cur < (8ull << 30) ? cur : (8ull << 30);
    int rc = mdb_env_set_mapsize(db->env, cur + step);
    pthread_rwlock_unlock(&db->resize_lock);
    if (rc)
        return firn_errf(err, FIRN_EIO, "growing the map to %zu bytes: %s", cur + step,
                         tsdb_strerror(rc));
    atomic_fetch_add(&db->map_resizes_total, 1);
    firn_log(FIRN_LOG_INFO, "tsdb", "grew the LMDB map", "path=%s bytes=%zu", db->path,
             cur + step);
    return 0;
}

int tsdb_stats_get(tsdb *db, tsdb_stats *out, firn_err *err)
{
    memset(out, 0, sizeof *out);
    tsdb_reader *r = tsdb_reader_open(db, err);
    if (!r)
        return err ? err->code : FIRN_EIO;
    MDB_txn *txn = r->txn;
    MDB_stat st;
    if (mdb_stat(txn, db->dbi_series, &st) == 0)
        out->series = st.ms_entries;
    if (mdb_stat(txn, db->dbi_samples, &st) == 0)
        out->blocks = st.ms_entries;
    if (db->has_rollups && mdb_stat(txn, db->dbi_rollups, &st) == 0)
        out->rollups = st.ms_entries;
    tsdb_reader_close(r);
    MDB_envinfo info;
    mdb_env_info(db->env, &info);
    out->map_bytes = info.me_mapsize;
    char file[4096];
    struct stat fst;
    snprintf(file, sizeof file, "%s/data.mdb", db->path);
    if (stat(file, &fst) == 0)
        out->disk_bytes = (uint64_t)fst.st_size;
    out->appends_total = atomic_load(&db->appends_total);
    out->append_failures_total = atomic_load(&db->append_failures_total);
    out->samples_total = atomic_load(&db->samples_total);
    out->commits_total = atomic_load(&db->commits_total);
    out->queue_full_total = atomic_load(&db->queue_full_total);
    out->map_resizes_total = atomic_load(&db->map_resizes_total);
    out->retention_deleted_blocks_total = atomic_load(&db->retention_deleted_blocks_total);
    out->retention_deleted_series_total = atomic_load(&db->retention_deleted_series_total);
    out->retention_runs_total = atomic_load(&db->retention_runs_total);
    out->retention_failures_total = atomic_load(&db->retention_failures_total);
    out->queue_length = atomic_load(&db->queue_length);
    out->float_samples_total = atomic_load(&db->float_samples_total);
    out->float_samples_dropped_total = atomic_load(&db->float_samples_dropped_total);
    out->rollups_written_total = atomic_load(&db->rollups_written_total);
    out->rollups_invalidated_total = atomic_load(&db->rollups_invalidated_total);
    out->rollup_buckets_total = atomic_load(&db->rollup_buckets_total);
    out->compaction_runs_total = atomic_load(&db->compaction_runs_total);
    out->compaction_failures_total = atomic_load(&db->compaction_failures_total);
    out->compaction_seconds_total = (double)atomic_load(&db->compaction_nanos_total) / 1e9;
    return 0;
}
