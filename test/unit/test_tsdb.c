/* test_tsdb.c -- the profile store against its contract in tsdb/tsdb.h.
 *
 * Every store test works in its own mkdtemp directory under /tmp, which its
 * teardown removes even when the test fails.
 * Profiles are real fixtures from ../shared/fixtures/pprof (FIRN_FIXTURES
 * overrides the directory).  Damaged and foreign stores are made with the
 * raw LMDB API, following the schema in tsdb/internal.h.  Threads never
 * call cmocka's asserts: they record what they saw and the test asserts
 * after joining them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixtures.h"
#include "async_answers.h"

#include <ftw.h>
#include <lmdb.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "pprof/pprof.h"
#include "tsdb/tsdb.h"
#include "tsdb/internal.h"   /* the block codec, tested directly */

#define FX_CPU "pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz"       /* samples, cpu */
#define FX_LABELS "pyro-pkg_pprof_testdata_go.cpu.labels.pprof"     /* samples, cpu; labels */
#define FX_HEAP "alloy-heap.pprof"                                  /* 4 sample types */

#define CPU_NAME "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
#define SAMPLES_NAME "process_cpu:samples:count:cpu:nanoseconds"

#define N(a) (sizeof(a) / sizeof *(a))

/* ---- helpers ------------------------------------------------------------ */

/* Each store test gets a fresh directory, removed even when it fails. */
static int dir_setup(void **state)
{
    *state = temp_dir("tsdb");
    return 0;
}

static int dir_teardown(void **state)
{
    remove_tree(*state);
    free(*state);
    return 0;
}

static char *path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

static void write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static off_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_size;
}

/* Options for a test store: keep everything (so any timestamp may be
 * appended) unless the test sets a retention. */
static void test_options(tsdb_options *o, const char *path)
{
    tsdb_options_default(o);
    o->path = path;
    o->retention_ms = 0;
    o->retention_interval_ms = 3600 * 1000;
}

static tsdb *open_ok(const tsdb_options *o)
{
    firn_err err = {0};
    tsdb *db = tsdb_open(o, &err);
    if (!db)
        fail_msg("tsdb_open %s: %s", o->path, err.msg);
    return db;
}

static tsdb *open_path(const char *path)
{
    tsdb_options o;
    test_options(&o, path);
    return open_ok(&o);
}

/* tsdb_open must refuse, with a message containing want (and want2 as an
 * alternative when not NULL). */
static void open_refused(const tsdb_options *o, const char *want, const char *want2)
{
    firn_err err = {0};
    tsdb *db = tsdb_open(o, &err);
    if (db) {
        tsdb_close(db);
        fail_msg("tsdb_open %s: opened, expected an error containing \"%s\"", o->path, want);
    }
    assert_true(err.code < 0);
    if (!strstr(err.msg, want) && !(want2 && strstr(err.msg, want2)))
        fail_msg("tsdb_open %s: error \"%s\" does not contain \"%s\"", o->path, err.msg, want);
}

static int append(tsdb *db, const pprof_profile *p, const firn_label *labels, size_t n,
                  const char *name, bool delta, int64_t ts, firn_err *err)
{
    tsdb_append_req req = {.labels = labels,
                           .n_labels = n,
                           .profile_name = name,
                           .delta = delta,
                           .profile = p,
                           .timestamp_ms = ts};
    return tsdb_append(db, &req, err);
}

static void append_ok(tsdb *db, const pprof_profile *p, const firn_label *labels, size_t n,
                      const char *name, int64_t ts)
{
    firn_err err = {0};
    if (append(db, p, labels, n, name, false, ts, &err) != 0)
        fail_msg("append at %lld: %s", (long long)ts, err.msg);
}

static void append_refused(tsdb *db, const pprof_profile *p, const firn_label *labels,
                           size_t n, const char *name, int64_t ts, const char *want)
{
    firn_err err = {0};
    int rc = append(db, p, labels, n, name, false, ts, &err);
    if (rc == 0)
        fail_msg("append at %lld: stored, expected an error containing \"%s\"", (long long)ts,
                 want);
    assert_int_equal(rc, err.code);
    if (!strstr(err.msg, want))
        fail_msg("append: error \"%s\" does not contain \"%s\"", err.msg, want);
}

static tsdb_stats stats_of(tsdb *db)
{
    tsdb_stats s;
    firn_err err = {0};
    if (tsdb_stats_get(db, &s, &err) < 0)
        fail_msg("stats: %s", err.msg);
    return s;
}

static tsdb_reader *reader_ok(tsdb *db)
{
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(db, &err);
    if (!r)
        fail_msg("reader: %s", err.msg);
    return r;
}

struct mspec {
    firn_match_type type;
    const char *name, *value;
};

static firn_matcher *matchers_make(const struct mspec *ms, size_t n)
{
    firn_matcher *m = calloc(n ? n : 1, sizeof *m);
    assert_non_null(m);
    for (size_t i = 0; i < n; i++) {
        firn_err err = {0};
        if (firn_matcher_init(&m[i], ms[i].type, ms[i].name, ms[i].value, &err) < 0)
            fail_msg("matcher %s: %s", ms[i].name, err.msg);
    }
    return m;
}

static void matchers_free(firn_matcher *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        firn_matcher_destroy(&m[i]);
    free(m);
}

/* Label sets compared pair by pair (name, then value), shorter first. */
static int labels_cmp(const tsdb_series *x, const tsdb_series *y)
{
    for (size_t i = 0; i < x->n_labels && i < y->n_labels; i++) {
        int c = strcmp(x->labels[i].name, y->labels[i].name);
        if (!c)
            c = strcmp(x->labels[i].value, y->labels[i].value);
        if (c)
            return c;
    }
    return x->n_labels < y->n_labels ? -1 : x->n_labels > y->n_labels;
}

static void select_ok(tsdb_reader *r, const struct mspec *ms, size_t n, int64_t start,
                      int64_t end, tsdb_series_set *out)
{
    firn_matcher *m = matchers_make(ms, n);
    firn_err err = {0};
    if (tsdb_select(r, m, n, start, end, out, &err) < 0)
        fail_msg("select: %s", err.msg);
    matchers_free(m, n);
    for (size_t i = 1; i < out->n; i++)   /* ordered by labels, each set once */
        assert_true(labels_cmp(&out->series[i - 1], &out->series[i]) < 0);
}

static size_t select_count(tsdb *db, const struct mspec *ms, size_t n, int64_t start,
                           int64_t end)
{
    tsdb_reader *r = reader_ok(db);
    tsdb_series_set set;
    select_ok(r, ms, n, start, end, &set);
    size_t count = set.n;
    tsdb_series_set_free(&set);
    tsdb_reader_close(r);
    return count;
}

/* The id of the one series matching __name__=name plus label=value. */
static uint64_t series_id(tsdb_reader *r, const char *name, const char *label,
                          const char *value)
{
    struct mspec ms[2] = {{FIRN_MATCH_EQ, "__name__", name}, {FIRN_MATCH_EQ, label, value}};
    tsdb_series_set set;
    select_ok(r, ms, label ? 2 : 1, INT64_MIN, INT64_MAX, &set);
    if (set.n != 1)
        fail_msg("series %s{%s=%s}: %zu matches", name, label ? label : "",
                 value ? value : "", set.n);
    uint64_t id = set.series[0].id;
    tsdb_series_set_free(&set);
    return id;
}

static void strings_equal(const tsdb_strings *s, const char *const *want, size_t n)
{
    if (s->n != n) {
        for (size_t i = 0; i < s->n; i++)
            print_message("got[%zu] = %s\n", i, s->v[i]);
        fail_msg("%zu strings, want %zu", s->n, n);
    }
    for (size_t i = 0; i < n; i++)
        assert_string_equal(s->v[i], want[i]);
}

/* ---- scanning helpers -------------------------------------------------- */

struct scan_acc {
    size_t blocks;
    int64_t ts[64];
    int64_t totals[64];
    uint32_t partitions[64];
    int64_t value_sum;           /* of every sample of every block */
    size_t samples;
    bool labelsets;
    bool bad;                    /* a block's values do not sum to its total */
    bool disordered;
    int64_t duration_nanos, period;
};

static int scan_acc_fn(void *ctx, const tsdb_block *b)
{
    struct scan_acc *a = ctx;
    if (a->blocks && b->timestamp_ms <= a->ts[(a->blocks - 1) % 64])
        a->disordered = true;
    a->ts[a->blocks % 64] = b->timestamp_ms;
    a->totals[a->blocks % 64] = b->total;
    a->partitions[a->blocks % 64] = b->partition;
    a->blocks++;
    a->duration_nanos = b->duration_nanos;
    a->period = b->period;
    int64_t sum = 0;
    for (size_t i = 0; i < b->n_samples; i++)
        sum = pprof_add_sat(sum, b->values[i]);   /* as the block's total */
    if (b->n_samples && sum != b->total)
        a->bad = true;
    a->value_sum = pprof_add_sat(a->value_sum, sum);
    a->samples += b->n_samples;
    a->labelsets |= b->labelsets != NULL;
    return 0;
}

static struct scan_acc scan(tsdb_reader *r, uint64_t id, int64_t start, int64_t end,
                            unsigned flags)
{
    struct scan_acc a;
    memset(&a, 0, sizeof a);
    firn_err err = {0};
    if (tsdb_scan(r, id, start, end, flags, scan_acc_fn, &a, &err) < 0)
        fail_msg("scan: %s", err.msg);
    assert_false(a.disordered);
    assert_false(a.bad);
    return a;
}

static pprof_profile *merge_ok(tsdb_reader *r, const uint64_t *ids, size_t n, int64_t start,
                               int64_t end, bool keep_labels, tsdb_merge_stats *st)
{
    tsdb_merge_options o = {.keep_labels = keep_labels};
    firn_err err = {0};
    pprof_profile *p = tsdb_merge(r, ids, n, start, end, &o, st, &err);
    if (!p)
        fail_msg("merge: %s", err.msg);
    return p;
}

static int64_t total_of(const pprof_profile *p, size_t column)
{
    int64_t t[16];
    assert_true(p->n_sample_types <= 16);
    pprof_totals(p, t);
    return t[column];
}

/* Samples of one column as sorted (stack of function names, sorted labels)
 * keys with summed values; zero values dropped.  Two profiles holding the
 * same data give equal lists whatever their ids and sample order. */
struct flat_sample {
    char *key;
    int64_t value;
};

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_flat(const void *a, const void *b)
{
    return strcmp(((const struct flat_sample *)a)->key, ((const struct flat_sample *)b)->key);
}

static size_t flatten(const pprof_profile *p, size_t column, struct flat_sample **out)
{
    struct flat_sample *fs = calloc(p->n_samples + 1, sizeof *fs);
    assert_non_null(fs);
    size_t n = 0;
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_sample *s = &p->samples[i];
        if (s->values[column] == 0)
            continue;
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        assert_non_null(f);
        for (size_t j = 0; j < s->n_locations; j++) {
            const pprof_location *l = &p->locations[s->locations[j]];
            if (l->n_lines == 0)
                fprintf(f, "@%llx;", (unsigned long long)l->address);
            for (size_t k = 0; k < l->n_lines; k++)
                fprintf(f, "%s;", l->lines[k].function == PPROF_NONE
                                      ? "?"
                                      : pprof_str(p, p->functions[l->lines[k].function].name));
        }
        char **ls = calloc(s->n_labels + 1, sizeof *ls);
        assert_non_null(ls);
        for (size_t j = 0; j < s->n_labels; j++) {
            const pprof_label *l = &s->labels[j];
            size_t n_ls = 0;
            FILE *lf = open_memstream(&ls[j], &n_ls);
            assert_non_null(lf);
            fprintf(lf, "%s=%s#%lld%s", pprof_str(p, l->key), pprof_str(p, l->str),
                    (long long)l->num, pprof_str(p, l->num_unit));
            fclose(lf);
        }
        firn_sort(ls, s->n_labels, sizeof *ls, cmp_cstr);
        fprintf(f, "|");
        for (size_t j = 0; j < s->n_labels; j++) {
            fprintf(f, "%s,", ls[j]);
            free(ls[j]);
        }
        free(ls);
        fclose(f);
        fs[n].key = buf;
        fs[n].value = s->values[column];
        n++;
    }
    firn_sort(fs, n, sizeof *fs, cmp_flat);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (k && strcmp(fs[k - 1].key, fs[i].key) == 0) {
            fs[k - 1].value = pprof_add_sat(fs[k - 1].value, fs[i].value);
            free(fs[i].key);
        } else {
            fs[k++] = fs[i];
        }
    }
    *out = fs;
    return k;
}

static void flat_free(struct flat_sample *fs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(fs[i].key);
    free(fs);
}

static void assert_same_samples(const pprof_profile *a, size_t col_a, const pprof_profile *b,
                                size_t col_b)
{
    struct flat_sample *fa, *fb;
    size_t na = flatten(a, col_a, &fa), nb = flatten(b, col_b, &fb);
    assert_int_equal(na, nb);
    for (size_t i = 0; i < na; i++) {
        assert_string_equal(fa[i].key, fb[i].key);
        assert_int_equal(fa[i].value, fb[i].value);
    }
    flat_free(fa, na);
    flat_free(fb, nb);
}

/* ---- 1. opening and creating ------------------------------------------- */

static void test_open_creates_and_reopens(void **state)
{
    const char *dir = *state;
    char *nested = path_join(dir, "a/b/store");
    pprof_profile *cpu = decode_fixture(FX_CPU);
    firn_label labels[] = {{"job", "api"}};

    tsdb *db = open_path(nested);
    struct stat st;
    assert_int_equal(stat(nested, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    append_ok(db, cpu, labels, 1, "process_cpu", 1000);
    tsdb_close(db);

    /* reopening finds the data; twice, to be sure reopening changes nothing */
    for (int round = 0; round < 2; round++) {
        db = open_path(nested);
        assert_int_equal(stats_of(db).series, 2);
        assert_int_equal(stats_of(db).blocks, 2);
        tsdb_reader *r = reader_ok(db);
        struct scan_acc a = scan(r, series_id(r, CPU_NAME, "job", "api"), INT64_MIN, INT64_MAX,
                                 TSDB_SCAN_TOTALS);
        assert_int_equal(a.blocks, 1);
        assert_int_equal(a.ts[0], 1000);
        assert_int_equal(a.totals[0], total_of(cpu, 1));
        tsdb_reader_close(r);
        tsdb_close(db);
    }

    /* one writing process per store: a second writer is refused, with our
     * pid named; closing the first frees the store */
    db = open_path(nested);
    tsdb_options o;
    test_options(&o, nested);
    char pid[64];
    snprintf(pid, sizeof pid, "pid %d", (int)getpid());
    open_refused(&o, "in use by another process", NULL);
    firn_err lock_err = {0};
    assert_null(tsdb_open(&o, &lock_err));
    assert_non_null(strstr(lock_err.msg, pid));
    tsdb_close(db);
    db = open_path(nested);
    tsdb_close(db);

    /* read-only: sees the data, refuses appends */
    test_options(&o, nested);
    o.read_only = true;
    db = open_ok(&o);
    assert_int_equal(select_count(db, NULL, 0, INT64_MIN, INT64_MAX), 2);
    firn_err err = {0};
    assert_true(append(db, cpu, labels, 1, "process_cpu", false, 2000, &err) < 0);
    assert_non_null(strstr(err.msg, "read-only"));
    tsdb_close(db);

    /* a regular file where the directory should be */
    char *file = path_join(dir, "plain");
    write_file(file, "x", 1);
    test_options(&o, file);
    open_refused(&o, "not a directory", NULL);
    o.read_only = true;
    open_refused(&o, "not a directory", NULL);

    /* read-only needs an existing store: neither a missing path nor an
     * empty directory is one, and neither gets created */
    char *missing = path_join(dir, "missing");
    test_options(&o, missing);
    o.read_only = true;
    open_refused(&o, "no store", NULL);
    assert_int_equal(stat(missing, &st), -1);
    char *empty = path_join(dir, "empty");
    assert_int_equal(mkdir(empty, 0755), 0);
    test_options(&o, empty);
    o.read_only = true;
    open_refused(&o, "no store", NULL);

    free(empty);
    free(missing);
    free(file);
    free(nested);
    pprof_free(cpu);
}

/* ---- 2. refusing what is not a store ------------------------------------ */

/* Creates an LMDB environment in dir (made if missing) and puts key=value
 * into the database dbname (NULL: the main one). */
static void raw_put(const char *dir, const char *dbname, const char *key, const void *value,
                    size_t len)
{
    mkdir(dir, 0755);
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, dbname, dbname ? MDB_CREATE : 0, &dbi), 0);
    MDB_val k = {strlen(key), (void *)key}, v = {len, (void *)value};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static size_t raw_main_entries(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return st.ms_entries;
}

static void test_open_refuses_foreign_and_damaged(void **state)
{
    const char *dir = *state;
    tsdb_options o;

    /* text where the data file should be */
    char *garbage = path_join(dir, "garbage");
    assert_int_equal(mkdir(garbage, 0755), 0);
    char *gfile = path_join(garbage, "data.mdb");
    char text[16384];
    for (size_t i = 0; i < sizeof text; i++)
        text[i] = "this is not lmdb\n"[i % 17];
    write_file(gfile, text, sizeof text);
    test_options(&o, garbage);
    open_refused(&o, "not an LMDB data file", NULL);
    o.read_only = true;
    open_refused(&o, "not an LMDB data file", NULL);
    assert_int_equal(file_size(gfile), sizeof text);   /* left alone */
    /* a short piece of text too */
    write_file(gfile, "hello", 5);
    o.read_only = false;
    open_refused(&o, "not an LMDB data file", NULL);

    /* a directory where the data file should be */
    char *dirfile = path_join(dir, "dirfile");
    char *dirfile_data = path_join(dirfile, "data.mdb");
    assert_int_equal(mkdir(dirfile, 0755), 0);
    assert_int_equal(mkdir(dirfile_data, 0755), 0);
    test_options(&o, dirfile);
    open_refused(&o, "not a regular file", NULL);
    free(dirfile_data);
    free(dirfile);

    /* a real store, then copies of its data file cut short */
    char *src = path_join(dir, "src");
    tsdb *db = open_path(src);
    pprof_profile *heap = decode_fixture(FX_HEAP);
    firn_label labels[] = {{"job", "db"}};
    for (int i = 0; i < 3; i++)
        append_ok(db, heap, labels, 1, "memory", 1000 + i);
    tsdb_close(db);
    char *sfile = path_join(src, "data.mdb");
    unsigned char *data;
    size_t len;
    firn_err err = {0};
    assert_int_equal(firn_read_file(sfile, 64u << 20, &data, &len, &err), 0);
    assert_true(len > 8 * 4096);
    const size_t cuts[] = {3 * 4096, len / 2, len - 4096};
    for (size_t i = 0; i < sizeof cuts / sizeof *cuts; i++) {
        char name[32];
        snprintf(name, sizeof name, "cut%zu", i);
        char *cut = path_join(dir, name);
        assert_int_equal(mkdir(cut, 0755), 0);
        char *cfile = path_join(cut, "data.mdb");
        write_file(cfile, data, cuts[i]);
        test_options(&o, cut);
        open_refused(&o, "truncated", "not an LMDB");
        o.read_only = true;
        open_refused(&o, "truncated", "not an LMDB");
        assert_int_equal(file_size(cfile), (off_t)cuts[i]);
        free(cfile);
        free(cut);
    }
    /* every page past the two meta pages overwritten: LMDB would follow
     * the main database's root into garbage and crash; the page check
     * (in a child process) refuses the store instead, and leaves the file
     * as it was */
    {
        char *wreck = path_join(dir, "wreck");
        assert_int_equal(mkdir(wreck, 0755), 0);
        char *wfile = path_join(wreck, "data.mdb");
        unsigned char *w = firn_xmalloc(len);
        memcpy(w, data, 2 * 4096);
        memset(w + 2 * 4096, 0xff, len - 2 * 4096);
        write_file(wfile, w, len);
        test_options(&o, wreck);
        o.check_pages = true;
        open_refused(&o, "data.mdb: damaged", NULL);
        unsigned char *after;
        size_t after_len;
        assert_int_equal(firn_read_file(wfile, 64u << 20, &after, &after_len, &err), 0);
        assert_true(after_len == len && memcmp(after, w, len) == 0);
        free(after);
        free(w);
        free(wfile);
        free(wreck);
    }
    free(data);
    /* the original is intact, and passes the page check */
    test_options(&o, src);
    o.check_pages = true;
    db = tsdb_open(&o, &err);
    assert_non_null(db);
    assert_int_equal(stats_of(db).blocks, 12);
    tsdb_close(db);

    /* LMDB environments that are not firn stores: a key in the main
     * database, a named database of another name, a plain key named like
     * one of the store's databases */
    const struct {
        const char *db, *key;
    } foreign[] = {{NULL, "hello"}, {"foo", "bar"}, {NULL, "meta"}};
    for (size_t i = 0; i < sizeof foreign / sizeof *foreign; i++) {
        char name[32];
        snprintf(name, sizeof name, "foreign%zu", i);
        char *fdir = path_join(dir, name);
        raw_put(fdir, foreign[i].db, foreign[i].key, "v", 1);
        test_options(&o, fdir);
        open_refused(&o, "not a firn store", NULL);
        o.read_only = true;
        open_refused(&o, "not a firn store", NULL);
        assert_int_equal(raw_main_entries(fdir), 1);   /* nothing added */
        free(fdir);
    }

    /* a firn store of another schema version */
    uint32_t v99 = 99;
    raw_put(src, "meta", "schema_version", &v99, sizeof v99);
    test_options(&o, src);
    open_refused(&o, "schema version 99", NULL);
    o.read_only = true;
    open_refused(&o, "schema version 99", NULL);

    free(sfile);
    free(src);
    free(gfile);
    free(garbage);
    pprof_free(heap);
}

/* ---- 3, 4. appending, selecting, label names and values ---------------- */

/* A store with:
 *   process_cpu (2 types) {instance="a:1", job="api"} at 500, 1000, 1500
 *   process_cpu (2 types, labeled) {instance="b:1", job="api"} at 2000
 *   memory (4 types) {instance="c:1", job="db", zone="z1"} at 3000
 *   process_cpu delta (2 types) {job="worker"} at 4000 */
static tsdb *populate(const char *dir)
{
    tsdb *db = open_path(dir);
    pprof_profile *cpu = decode_fixture(FX_CPU), *labeled = decode_fixture(FX_LABELS),
                  *heap = decode_fixture(FX_HEAP);
    firn_label a[] = {{"job", "api"}, {"instance", "a:1"}};
    firn_label b[] = {{"instance", "b:1"}, {"job", "api"}};
    firn_label c[] = {{"zone", "z1"}, {"job", "db"}, {"instance", "c:1"}};
    firn_label w[] = {{"job", "worker"}};
    append_ok(db, cpu, a, 2, "process_cpu", 1000);
    append_ok(db, cpu, a, 2, "process_cpu", 1500);
    append_ok(db, cpu, a, 2, "process_cpu", 500);   /* out of order */
    append_ok(db, labeled, b, 2, "process_cpu", 2000);
    append_ok(db, heap, c, 3, "memory", 3000);
    firn_err err = {0};
    if (append(db, cpu, w, 1, "process_cpu", true, 4000, &err) != 0)
        fail_msg("append delta: %s", err.msg);
    pprof_free(cpu);
    pprof_free(labeled);
    pprof_free(heap);
    return db;
}

static void test_append_and_select(void **state)
{
    const char *dir = *state;
    tsdb *db = populate(dir);
    tsdb_reader *r = reader_ok(db);

    /* one series per sample type, named by the profile type, ordered */
    static const char *const all[] = {
        "{__name__=\"memory:alloc_objects:count:space:bytes\", instance=\"c:1\", job=\"db\", "
        "zone=\"z1\"}",
        "{__name__=\"memory:alloc_space:bytes:space:bytes\", instance=\"c:1\", job=\"db\", "
        "zone=\"z1\"}",
        "{__name__=\"memory:inuse_objects:count:space:bytes\", instance=\"c:1\", job=\"db\", "
        "zone=\"z1\"}",
        "{__name__=\"memory:inuse_space:bytes:space:bytes\", instance=\"c:1\", job=\"db\", "
        "zone=\"z1\"}",
        "{__name__=\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\", instance=\"a:1\", "
        "job=\"api\"}",
        "{__name__=\"process_cpu:cpu:nanoseconds:cpu:nanoseconds\", instance=\"b:1\", "
        "job=\"api\"}",
        "{__name__=\"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta\", job=\"worker\"}",
        "{__name__=\"process_cpu:samples:count:cpu:nanoseconds\", instance=\"a:1\", "
        "job=\"api\"}",
        "{__name__=\"process_cpu:samples:count:cpu:nanoseconds\", instance=\"b:1\", "
        "job=\"api\"}",
        "{__name__=\"process_cpu:samples:count:cpu:nanoseconds:delta\", job=\"worker\"}",
    };
    const size_t n_all = sizeof all / sizeof *all;
    tsdb_series_set set;
    select_ok(r, NULL, 0, INT64_MIN, INT64_MAX, &set);
    assert_int_equal(set.n, n_all);
    for (size_t i = 0; i < n_all; i++) {
        char *s = firn_labels_format(set.series[i].labels, set.series[i].n_labels);
        assert_string_equal(s, all[i]);
        free(s);
        for (size_t j = 1; j < set.series[i].n_labels; j++)   /* labels sorted */
            assert_true(strcmp(set.series[i].labels[j - 1].name, set.series[i].labels[j].name) <
                        0);
    }
    /* time bounds of each series, the out-of-order append included */
    assert_int_equal(set.series[4].min_time_ms, 500);
    assert_int_equal(set.series[4].max_time_ms, 1500);
    assert_int_equal(set.series[5].min_time_ms, 2000);
    assert_int_equal(set.series[5].max_time_ms, 2000);
    assert_int_equal(set.series[0].min_time_ms, 3000);
    assert_int_equal(set.series[9].max_time_ms, 4000);
    tsdb_series_set_free(&set);

    /* matchers, with Prometheus semantics */
    const struct {
        struct mspec m[3];
        size_t n;
        size_t want;
    } cases[] = {
        {{{FIRN_MATCH_EQ, "job", "api"}}, 1, 4},
        {{{FIRN_MATCH_NE, "job", "api"}}, 1, 6},
        {{{FIRN_MATCH_RE, "job", "api|db"}}, 1, 8},
        {{{FIRN_MATCH_RE, "job", "a.*"}}, 1, 4},
        {{{FIRN_MATCH_RE, "job", "a"}}, 1, 0},   /* anchored */
        {{{FIRN_MATCH_NRE, "job", "a.*"}}, 1, 6},
        {{{FIRN_MATCH_EQ, "zone", ""}}, 1, 6},       /* series without zone */
        {{{FIRN_MATCH_NE, "zone", ""}}, 1, 4},
        {{{FIRN_MATCH_EQ, "foo", ""}}, 1, 10},       /* no series has foo */
        {{{FIRN_MATCH_NE, "job", "x"}}, 1, 10},
        {{{FIRN_MATCH_RE, "zone", ".*"}}, 1, 10},
        {{{FIRN_MATCH_RE, "zone", "z.*"}}, 1, 4},
        {{{FIRN_MATCH_NRE, "zone", "z.*"}}, 1, 6},
        {{{FIRN_MATCH_RE, "zone", "|z1"}}, 1, 10},
        {{{FIRN_MATCH_EQ, "foo", "bar"}}, 1, 0},
        {{{FIRN_MATCH_EQ, "__name__", CPU_NAME ":delta"}}, 1, 1},
        {{{FIRN_MATCH_EQ, "job", "api"}, {FIRN_MATCH_RE, "__name__", "process_cpu:cpu:.*"}},
         2, 2},
        {{{FIRN_MATCH_EQ, "job", "api"}, {FIRN_MATCH_NE, "instance", "a:1"}}, 2, 2},
        {{{FIRN_MATCH_EQ, "job", "api"}, {FIRN_MATCH_EQ, "job", "db"}}, 2, 0},
        {{{FIRN_MATCH_NE, "job", "api"},
          {FIRN_MATCH_EQ, "zone", ""},
          {FIRN_MATCH_RE, "__name__", ".*delta"}},
         3, 2},
        {{{FIRN_MATCH_RE, "instance", ".+"}, {FIRN_MATCH_NRE, "job", "db"}}, 2, 4},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        select_ok(r, cases[i].m, cases[i].n, INT64_MIN, INT64_MAX, &set);
        if (set.n != cases[i].want)
            fail_msg("case %zu (%s%s\"%s\"...): %zu series, want %zu", i, cases[i].m[0].name,
                     firn_match_type_str(cases[i].m[0].type), cases[i].m[0].value, set.n,
                     cases[i].want);
        /* every series returned satisfies every matcher */
        firn_matcher *m = matchers_make(cases[i].m, cases[i].n);
        for (size_t s = 0; s < set.n; s++)
            for (size_t k = 0; k < cases[i].n; k++)
                assert_true(firn_matcher_matches(
                    &m[k], firn_labels_get(set.series[s].labels, set.series[s].n_labels,
                                           m[k].name)));
        matchers_free(m, cases[i].n);
        tsdb_series_set_free(&set);
    }

    /* time ranges: a series is selected when it holds a profile inside */
    const struct {
        int64_t start, end;
        size_t want;
    } ranges[] = {
        {INT64_MIN, INT64_MAX, 10}, {INT64_MIN, 499, 0}, {INT64_MIN, 500, 2},
        {1600, 1999, 0},            {1500, 2500, 4},     {2000, 2000, 2},
        {3000, 3000, 4},            {4000, INT64_MAX, 2}, {4001, INT64_MAX, 0},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
        select_ok(r, NULL, 0, ranges[i].start, ranges[i].end, &set);
        if (set.n != ranges[i].want)
            fail_msg("range %zu [%lld, %lld]: %zu series, want %zu", i,
                     (long long)ranges[i].start, (long long)ranges[i].end, set.n,
                     ranges[i].want);
        tsdb_series_set_free(&set);
    }
    struct mspec api = {FIRN_MATCH_EQ, "job", "api"};
    select_ok(r, &api, 1, 1200, 1800, &set);
    assert_int_equal(set.n, 2);
    assert_string_equal(firn_labels_get(set.series[0].labels, set.series[0].n_labels,
                                        "instance"), "a:1");
    tsdb_series_set_free(&set);

    /* series of one type merge into one profile: 3 unlabeled + 1 labeled */
    struct mspec cpu_api[2] = {{FIRN_MATCH_EQ, "__name__", CPU_NAME}, api};
    select_ok(r, cpu_api, 2, INT64_MIN, INT64_MAX, &set);
    assert_int_equal(set.n, 2);
    uint64_t ids[2] = {set.series[0].id, set.series[1].id};
    tsdb_series_set_free(&set);
    pprof_profile *cpu = decode_fixture(FX_CPU), *labeled = decode_fixture(FX_LABELS);
    tsdb_merge_stats st;
    pprof_profile *m = merge_ok(r, ids, 2, INT64_MIN, INT64_MAX, false, &st);
    assert_int_equal(st.blocks, 4);
    assert_int_equal(total_of(m, 0), 3 * total_of(cpu, 1) + total_of(labeled, 1));
    pprof_free(m);
    pprof_free(cpu);
    pprof_free(labeled);

    tsdb_reader_close(r);
    tsdb_close(db);
}

static void label_names(tsdb_reader *r, const struct mspec *ms, size_t n, int64_t start,
                        int64_t end, const char *const *want, size_t n_want)
{
    firn_matcher *m = matchers_make(ms, n);
    tsdb_strings s;
    firn_err err = {0};
    if (tsdb_label_names(r, m, n, start, end, &s, &err) < 0)
        fail_msg("label names: %s", err.msg);
    strings_equal(&s, want, n_want);
    tsdb_strings_free(&s);
    matchers_free(m, n);
}

static void label_values(tsdb_reader *r, const char *name, const struct mspec *ms, size_t n,
                         int64_t start, int64_t end, const char *const *want, size_t n_want)
{
    firn_matcher *m = matchers_make(ms, n);
    tsdb_strings s;
    firn_err err = {0};
    if (tsdb_label_values(r, name, m, n, start, end, &s, &err) < 0)
        fail_msg("label values of %s: %s", name, err.msg);
    strings_equal(&s, want, n_want);
    tsdb_strings_free(&s);
    matchers_free(m, n);
}

static void test_label_names_and_values(void **state)
{
    const char *dir = *state;
    tsdb *db = populate(dir);
    tsdb_reader *r = reader_ok(db);
    const int64_t lo = INT64_MIN, hi = INT64_MAX;

    static const char *const names_all[] = {"__name__", "instance", "job", "zone"};
    static const char *const names_cpu[] = {"__name__", "instance", "job"};
    static const char *const names_worker[] = {"__name__", "job"};
    label_names(r, NULL, 0, lo, hi, names_all, N(names_all));
    struct mspec api = {FIRN_MATCH_EQ, "job", "api"};
    label_names(r, &api, 1, lo, hi, names_cpu, N(names_cpu));
    struct mspec no_zone = {FIRN_MATCH_EQ, "zone", ""};
    label_names(r, &no_zone, 1, lo, hi, names_cpu, N(names_cpu));
    label_names(r, NULL, 0, 3000, 3000, names_all, N(names_all));
    label_names(r, NULL, 0, 3500, hi, names_worker, N(names_worker));
    label_names(r, NULL, 0, 5000, hi, NULL, 0);
    struct mspec nothing = {FIRN_MATCH_EQ, "job", "nope"};
    label_names(r, &nothing, 1, lo, hi, NULL, 0);

    static const char *const jobs[] = {"api", "db", "worker"};
    static const char *const jobs_not_api[] = {"db", "worker"};
    static const char *const job_db[] = {"db"};
    static const char *const instances_early[] = {"a:1", "b:1"};
    static const char *const worker_names[] = {CPU_NAME ":delta", SAMPLES_NAME ":delta"};
    label_values(r, "job", NULL, 0, lo, hi, jobs, N(jobs));
    struct mspec not_api = {FIRN_MATCH_NE, "job", "api"};
    label_values(r, "job", &not_api, 1, lo, hi, jobs_not_api, N(jobs_not_api));
    struct mspec z1 = {FIRN_MATCH_EQ, "zone", "z1"};
    label_values(r, "job", &z1, 1, lo, hi, job_db, N(job_db));
    label_values(r, "instance", NULL, 0, 1000, 2000, instances_early, N(instances_early));
    static const char *const inst_c[] = {"c:1"};
    label_values(r, "instance", NULL, 0, 2001, 3999, inst_c, N(inst_c));
    struct mspec worker = {FIRN_MATCH_EQ, "job", "worker"};
    label_values(r, "__name__", &worker, 1, lo, hi, worker_names, N(worker_names));
    label_values(r, "instance", &worker, 1, lo, hi, NULL, 0);   /* worker has none */
    label_values(r, "nope", NULL, 0, lo, hi, NULL, 0);
    label_values(r, "zone", NULL, 0, lo, 2999, NULL, 0);
    static const char *const zones[] = {"z1"};
    label_values(r, "zone", NULL, 0, lo, hi, zones, N(zones));

    tsdb_reader_close(r);
    tsdb_close(db);
}

/* ---- 5. scanning ------------------------------------------------------- */

struct leaf_acc {
    tsdb_reader *r;
    char *names[256];
    int64_t flat[256];
    size_t n;
    int64_t total;
    int failed;
};

static int leaf_fn(void *ctx, const tsdb_block *b)
{
    struct leaf_acc *a = ctx;
    for (size_t i = 0; i < b->n_samples; i++) {
        const char **names;
        size_t n;
        firn_err err = {0};
        if (tsdb_stack_functions(a->r, b->partition, b->stacks[i], &names, &n, &err) < 0 ||
            n == 0) {
            a->failed++;
            continue;
        }
        const char *leaf = names[0][0] ? names[0] : "<unknown>";
        size_t k = 0;
        while (k < a->n && strcmp(a->names[k], leaf) != 0)
            k++;
        if (k == a->n) {
            if (a->n == 256) {
                a->failed++;
                continue;
            }
            a->names[a->n++] = strdup(leaf);
        }
        a->flat[k] += b->values[i];
        a->total += b->values[i];
    }
    return 0;
}

static int stop_fn(void *ctx, const tsdb_block *b)
{
    (void)b;
    ++*(int *)ctx;
    return -42;
}

static void test_scan(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    pprof_profile *cpu = decode_fixture(FX_CPU), *labeled = decode_fixture(FX_LABELS);
    firn_label a[] = {{"job", "a"}}, b[] = {{"job", "b"}};
    for (int i = 3; i >= 1; i--)
        append_ok(db, cpu, a, 1, "process_cpu", i * 1000);
    append_ok(db, labeled, b, 1, "process_cpu", 1000);
    int64_t totals[2];
    pprof_totals(cpu, totals);
    assert_true(totals[0] > 0 && totals[1] > 0);

    tsdb_reader *r = reader_ok(db);
    const char *names[2] = {SAMPLES_NAME, CPU_NAME};
    for (int t = 0; t < 2; t++) {
        uint64_t id = series_id(r, names[t], "job", "a");
        struct scan_acc s = scan(r, id, INT64_MIN, INT64_MAX, TSDB_SCAN_TOTALS);
        assert_int_equal(s.blocks, 3);
        assert_int_equal(s.samples, 0);   /* headers only */
        for (int i = 0; i < 3; i++) {
            assert_int_equal(s.ts[i], (i + 1) * 1000);
            assert_int_equal(s.totals[i], totals[t]);
        }
        assert_int_equal(s.duration_nanos, cpu->duration_nanos);
        assert_int_equal(s.period, cpu->period);
        struct scan_acc f = scan(r, id, INT64_MIN, INT64_MAX, 0);
        assert_int_equal(f.blocks, 3);
        assert_true(f.samples > 0 && f.samples <= 3 * cpu->n_samples);
        assert_int_equal(f.value_sum, 3 * totals[t]);
        assert_false(f.labelsets);
        /* inclusive bounds */
        assert_int_equal(scan(r, id, 2000, 3000, TSDB_SCAN_TOTALS).blocks, 2);
        assert_int_equal(scan(r, id, 1000, 1000, 0).blocks, 1);
        assert_int_equal(scan(r, id, 1001, 1999, 0).blocks, 0);
        assert_int_equal(scan(r, id, 3000, INT64_MAX, 0).blocks, 1);
        assert_int_equal(scan(r, id, INT64_MIN, 999, 0).blocks, 0);
        assert_int_equal(scan(r, id, 3001, INT64_MAX, 0).blocks, 0);
        assert_int_equal(scan(r, id, 2500, 1500, 0).blocks, 0);
    }
    /* timestamp 0: the profile's own time */
    firn_label c[] = {{"job", "c"}};
    append_ok(db, labeled, c, 1, "process_cpu", 0);
    tsdb_reader_close(r);
    r = reader_ok(db);
    struct scan_acc own = scan(r, series_id(r, CPU_NAME, "job", "c"), INT64_MIN, INT64_MAX,
                               TSDB_SCAN_TOTALS);
    assert_int_equal(own.blocks, 1);
    assert_int_equal(own.ts[0], labeled->time_nanos / 1000000);

    /* a series id that does not exist scans nothing */
    assert_int_equal(scan(r, 999999, INT64_MIN, INT64_MAX, 0).blocks, 0);

    /* a callback's error stops the scan and is returned */
    uint64_t cpu_a = series_id(r, CPU_NAME, "job", "a");
    int calls = 0;
    firn_err err = {0};
    assert_int_equal(tsdb_scan(r, cpu_a, INT64_MIN, INT64_MAX, 0, stop_fn, &calls, &err), -42);
    assert_int_equal(calls, 1);

    /* labeled profiles keep label sets */
    uint64_t cpu_b = series_id(r, CPU_NAME, "job", "b");
    struct scan_acc lb = scan(r, cpu_b, INT64_MIN, INT64_MAX, 0);
    assert_true(lb.labelsets);
    assert_int_equal(lb.value_sum, total_of(labeled, 1));

    /* stacks resolve to function names: leaf flat values as pprof -top */
    struct leaf_acc la = {.r = r};
    assert_int_equal(tsdb_scan(r, cpu_a, 1000, 1000, 0, leaf_fn, &la, &err), 0);
    assert_int_equal(la.failed, 0);
    assert_int_equal(la.total, totals[1]);
    pprof_top_report top;
    assert_int_equal(pprof_top(cpu, 1, &top, &err), 0);
    size_t flat_rows = 0;
    for (size_t i = 0; i < top.n_rows; i++) {
        if (top.rows[i].flat == 0)
            continue;
        flat_rows++;
        size_t k = 0;
        while (k < la.n && strcmp(la.names[k], top.rows[i].name) != 0)
            k++;
        if (k == la.n)
            fail_msg("leaf %s missing from the store", top.rows[i].name);
        assert_int_equal(la.flat[k], top.rows[i].flat);
    }
    assert_int_equal(flat_rows, la.n);
    pprof_top_free(&top);
    for (size_t i = 0; i < la.n; i++)
        free(la.names[i]);

    tsdb_reader_close(r);
    tsdb_close(db);
    pprof_free(cpu);
    pprof_free(labeled);
}

/* ---- 6. merging -------------------------------------------------------- */

static void assert_top_scaled(const pprof_profile *merged, const pprof_profile *orig,
                              int column, int64_t factor)
{
    pprof_top_report tm, to;
    firn_err err = {0};
    assert_int_equal(pprof_top(merged, 0, &tm, &err), 0);
    assert_int_equal(pprof_top(orig, column, &to, &err), 0);
    assert_int_equal(tm.total, factor * to.total);
    assert_int_equal(tm.n_rows, to.n_rows);
    for (size_t i = 0; i < tm.n_rows; i++) {
        assert_string_equal(tm.rows[i].name, to.rows[i].name);
        assert_int_equal(tm.rows[i].flat, factor * to.rows[i].flat);
        assert_int_equal(tm.rows[i].cum, factor * to.rows[i].cum);
    }
    pprof_top_free(&tm);
    pprof_top_free(&to);
}

/* Unsymbolized frames keep their addresses through a merge of several
 * partitions, for locations that share a mapping (the rebuild remembers a
 * mapping's shift after its first location) and for two mappings with
 * different shifts: the expected addresses are the ones appended. */
static void test_merge_mapping_addresses(void **state)
{
    char *pdir = path_join(*state, "addr");
    tsdb_options o;
    test_options(&o, pdir);
    o.partition_ms = 1000;
    tsdb *db = open_ok(&o);
    pprof_builder *b = pprof_builder_new(1);
    assert_non_null(b);
    pprof_builder_sample_type(b, 0, "cpu", "nanoseconds");
    pprof_builder_period(b, "cpu", "nanoseconds", 10000000);
    pprof_mapping bin = {.memory_start = 0x400000, .memory_limit = 0x500000,
                         .file_offset = 0x1000, .filename = pprof_builder_string(b, "/bin/app", 8)};
    pprof_mapping lib = {.memory_start = 0x7f0000000000, .memory_limit = 0x7f0000100000,
                         .file_offset = 0x20000,
                         .filename = pprof_builder_string(b, "/lib/libc.so.6", 14)};
    uint32_t mb = pprof_builder_mapping(b, &bin), ml = pprof_builder_mapping(b, &lib);
    const uint64_t addr[4] = {0x401234, 0x402345, 0x7f0000012345, 0x403456};
    const uint32_t map_of[4] = {mb, mb, ml, mb};
    uint32_t loc[4];
    for (int i = 0; i < 4; i++) {
        pprof_location l = {.mapping = map_of[i], .address = addr[i]};
        loc[i] = pprof_builder_location(b, &l);
    }
    /* leaf first: [0, 1], [2, 3, 0] */
    uint32_t st1[] = {loc[0], loc[1]}, st2[] = {loc[2], loc[3], loc[0]};
    int64_t v1[] = {5}, v2[] = {7};
    assert_int_equal(pprof_builder_sample(b, st1, 2, v1, NULL, 0), 0);
    assert_int_equal(pprof_builder_sample(b, st2, 3, v2, NULL, 0), 0);
    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    assert_non_null(p);
    firn_label a[] = {{"job", "a"}};
    for (int i = 0; i < 3; i++)   /* three partitions */
        append_ok(db, p, a, 1, "process_cpu", 500 + 1000 * i);
    tsdb_reader *r = reader_ok(db);
    uint64_t id = series_id(r, CPU_NAME, "job", "a");
    tsdb_merge_stats st;
    pprof_profile *m = merge_ok(r, &id, 1, INT64_MIN, INT64_MAX, false, &st);
    assert_int_equal(st.blocks, 3);
    assert_int_equal(m->n_samples, 2);
    for (size_t i = 0; i < m->n_samples; i++) {
        const pprof_sample *s = &m->samples[i];
        bool first = s->n_locations == 2;
        assert_int_equal(s->values[0], first ? 3 * 5 : 3 * 7);
        const uint64_t *want = first ? (const uint64_t[]){addr[0], addr[1]}
                                     : (const uint64_t[]){addr[2], addr[3], addr[0]};
        for (size_t j = 0; j < s->n_locations; j++) {
            const pprof_location *l = &m->locations[s->locations[j]];
            assert_int_equal(l->address, want[j]);
            assert_int_not_equal(l->mapping, PPROF_NONE);
            const pprof_mapping *mp = &m->mappings[l->mapping];
            bool in_lib = want[j] == addr[2];
            assert_int_equal(mp->memory_start, in_lib ? lib.memory_start : bin.memory_start);
            assert_int_equal(mp->file_offset, in_lib ? lib.file_offset : bin.file_offset);
        }
    }
    pprof_free(m);
    pprof_free(p);
    tsdb_reader_close(r);
    tsdb_close(db);
    free(pdir);
}

/* A profile of the stacks `which` of a family of 40: stack k is the
 * functions fn<k>, fn<k + 40> and fn<80 + k % 5>, leaf first, with value
 * base + k and, with labels, the label thread=t<k % 3>. */
static pprof_profile *family_profile(const int *which, size_t n, int64_t base, bool labels)
{
    pprof_builder *b = pprof_builder_new(1);
    pprof_builder_sample_type(b, 0, "cpu", "nanoseconds");
    pprof_builder_period(b, "cpu", "nanoseconds", 10000000);
    for (size_t i = 0; i < n; i++) {
        int k = which[i];
        const int frames[3] = {k, k + 40, 80 + k % 5};
        uint32_t locs[3];
        for (int j = 0; j < 3; j++) {
            char name[16];
            int len = snprintf(name, sizeof name, "fn%d", frames[j]);
            pprof_function f = {.name = pprof_builder_string(b, name, (size_t)len),
                                .filename = pprof_builder_string(b, "app.go", 6)};
            pprof_line line = {.function = pprof_builder_function(b, &f), .line = frames[j]};
            pprof_location l = {.mapping = PPROF_NONE, .lines = &line, .n_lines = 1};
            locs[j] = pprof_builder_location(b, &l);
        }
        char thread[8];
        int tlen = snprintf(thread, sizeof thread, "t%d", k % 3);
        pprof_label label = {.key = pprof_builder_string(b, "thread", 6),
                             .str = pprof_builder_string(b, thread, (size_t)tlen)};
        int64_t v = base + k;
        assert_int_equal(pprof_builder_sample(b, locs, 3, &v, labels ? &label : NULL, labels), 0);
    }
    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    assert_non_null(p);
    return p;
}

/* Sums per sample identity (pprof_sample_identity: stack and labels). */
struct id_sums {
    pprof_hash id[80];
    int64_t sum[80];
    size_t n;
};

static size_t id_sums_find(const struct id_sums *t, pprof_hash h)
{
    for (size_t i = 0; i < t->n; i++)
        if (pprof_hash_eq(t->id[i], h))
            return i;
    return t->n;
}

static void id_sums_add(struct id_sums *t, const pprof_profile *p, int64_t times)
{
    for (size_t i = 0; i < p->n_samples; i++) {
        pprof_hash h = pprof_sample_identity(p, i);
        size_t at = id_sums_find(t, h);
        if (at == t->n) {
            assert_true(t->n < 80);
            t->id[t->n] = h;
            t->sum[t->n++] = 0;
        }
        t->sum[at] += times * p->samples[i].values[0];
    }
}

/* A merged profile has one sample per identity, with the expected sum. */
static void assert_id_sums(const pprof_profile *m, const struct id_sums *want)
{
    struct id_sums got = {.n = 0};
    id_sums_add(&got, m, 1);
    assert_int_equal(got.n, m->n_samples);   /* no identity twice */
    assert_int_equal(got.n, want->n);
    for (size_t i = 0; i < got.n; i++) {
        size_t at = id_sums_find(want, got.id[i]);
        assert_true(at < want->n);
        assert_int_equal(got.sum[i], want->sum[at]);
    }
}

/* Entries of one stack in several partitions (where it has different ids)
 * are summed into one sample, with and without label sets: stacks first
 * stored in a later partition, a partition storing them in another order,
 * and one with a single stack (too few for the merge to look the known
 * stacks up there: it resolves that one).  The expected sums come from
 * pprof_sample_identity over the profiles appended. */
static void test_merge_across_partitions(void **state)
{
    char *pdir = path_join(*state, "across");
    tsdb_options o;
    test_options(&o, pdir);
    o.partition_ms = 1000;
    tsdb *db = open_ok(&o);
    int first[20], second[20], reversed[35], seventh[1] = {7}, thirds[14];
    for (int i = 0; i < 20; i++) {
        first[i] = i;
        second[i] = 10 + i;
    }
    for (int i = 0; i < 35; i++)
        reversed[i] = 39 - i;
    for (int i = 0; i < 14; i++)
        thirds[i] = 3 * i;
    const struct {
        const int *which;
        size_t n;
        int64_t ts;
    } parts[] = {{first, 20, 500}, {second, 20, 700}, {reversed, 35, 1500},
                 {seventh, 1, 2500}, {thirds, 14, 3500}};
    struct id_sums plain = {.n = 0}, labelled = {.n = 0}, twice = {.n = 0};
    firn_label a[] = {{"job", "a"}}, b[] = {{"job", "b"}};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        int64_t base = 100 * (int64_t)(i + 1);
        pprof_profile *pa = family_profile(parts[i].which, parts[i].n, base, false);
        pprof_profile *pb = family_profile(parts[i].which, parts[i].n, base, true);
        append_ok(db, pa, a, 1, "process_cpu", parts[i].ts);
        append_ok(db, pb, b, 1, "process_cpu", parts[i].ts);
        id_sums_add(&plain, pa, 1);
        id_sums_add(&twice, pa, 2);
        id_sums_add(&labelled, pb, 1);
        pprof_free(pa);
        pprof_free(pb);
    }
    assert_int_equal(plain.n, 40);
    tsdb_reader *r = reader_ok(db);
    uint64_t ids[2] = {series_id(r, CPU_NAME, "job", "a"), series_id(r, CPU_NAME, "job", "b")};
    tsdb_merge_stats st;
    pprof_profile *m = merge_ok(r, &ids[0], 1, INT64_MIN, INT64_MAX, false, &st);
    assert_int_equal(st.blocks, 5);
    assert_int_equal(st.stacks, 30 + 35 + 1 + 14);   /* (partition, stack) entries */
    assert_id_sums(m, &plain);
    pprof_free(m);
    m = merge_ok(r, &ids[1], 1, INT64_MIN, INT64_MAX, true, NULL);
    assert_id_sums(m, &labelled);
    pprof_free(m);
    m = merge_ok(r, &ids[1], 1, INT64_MIN, INT64_MAX, false, NULL);   /* labels dropped */
    assert_id_sums(m, &plain);
    pprof_free(m);
    m = merge_ok(r, ids, 2, INT64_MIN, INT64_MAX, false, NULL);
    assert_id_sums(m, &twice);
    pprof_free(m);
    tsdb_reader_close(r);
    tsdb_close(db);
    free(pdir);
}

/* ---- the symbol cache ------------------------------------------------------ */

static tsdb_symcache_stat cache_of(tsdb *db)
{
    tsdb_symcache_stat s;
    tsdb_symbol_cache_stats(db, &s);
    return s;
}

/* The encoded merge of one series over all time. */
static unsigned char *merged_bytes(tsdb *db, uint64_t id, bool labels, size_t *len)
{
    tsdb_reader *r = reader_ok(db);
    pprof_profile *m = merge_ok(r, &id, 1, INT64_MIN, INT64_MAX, labels, NULL);
    tsdb_reader_close(r);
    unsigned char *buf;
    firn_err err = {0};
    assert_int_equal(pprof_encode(m, -1, &buf, &len[0], &err), 0);
    pprof_free(m);
    return buf;
}

static void assert_same_bytes(const unsigned char *a, size_t na, const unsigned char *b,
                              size_t nb)
{
    assert_int_equal(na, nb);
    assert_memory_equal(a, b, na);
}

/* Merges from the cache give the bytes the store gives (a second merge
 * reads nothing from the store, a read-only open has no cache), a stack
 * appended later into a partition already cached is found, a small cache
 * evicts and stays exact.  Expected sums come from the profiles appended. */
static void test_symbol_cache_hits_equal_misses(void **state)
{
    for (int small = 0; small < 2; small++) {
        char *pdir = path_join(*state, small ? "symcache_small" : "symcache");
        tsdb_options o;
        test_options(&o, pdir);
        o.partition_ms = 1000;
        o.symbol_cache_bytes = small ? 2048 : 0;
        tsdb *db = open_ok(&o);
        int first[20], second[20], thirds[14];
        for (int i = 0; i < 20; i++) {
            first[i] = i;
            second[i] = 10 + i;
        }
        for (int i = 0; i < 14; i++)
            thirds[i] = 3 * i;
        firn_label a[] = {{"job", "a"}}, b[] = {{"job", "b"}};
        struct id_sums plain = {.n = 0};
        for (int p = 0; p < 2; p++) {
            pprof_profile *pa = family_profile(p ? second : first, 20, 100 + p, false);
            pprof_profile *pb = family_profile(p ? second : first, 20, 100 + p, true);
            append_ok(db, pa, a, 1, "process_cpu", 500 + 1000 * p);
            append_ok(db, pb, b, 1, "process_cpu", 500 + 1000 * p);
            id_sums_add(&plain, pa, 1);
            pprof_free(pa);
            pprof_free(pb);
        }
        tsdb_reader *r = reader_ok(db);
        uint64_t ida = series_id(r, CPU_NAME, "job", "a"), idb = series_id(r, CPU_NAME, "job", "b");
        tsdb_reader_close(r);
        assert_int_equal(cache_of(db).entries, 0);
        size_t n1, n2, n3, l1, l2;
        unsigned char *m1 = merged_bytes(db, ida, false, &n1);
        unsigned char *lab1 = merged_bytes(db, idb, true, &l1);
        tsdb_symcache_stat s1 = cache_of(db);
        assert_true(s1.misses > 0);
        assert_true(s1.entries > 0);
        unsigned char *m2 = merged_bytes(db, ida, false, &n2);
        unsigned char *lab2 = merged_bytes(db, idb, true, &l2);
        tsdb_symcache_stat s2 = cache_of(db);
        assert_same_bytes(m1, n1, m2, n2);
        assert_same_bytes(lab1, l1, lab2, l2);
        if (small) {
            assert_true(s2.bytes <= 2048);
            assert_true(s2.evictions > 0);
        } else {
            assert_int_equal(s2.misses, s1.misses);   /* all from the cache */
            assert_true(s2.hits > s1.hits);
        }
        /* a read-only open reads the store alone */
        tsdb_options ro = o;
        ro.read_only = true;
        tsdb *rdb = open_ok(&ro);
        unsigned char *m3 = merged_bytes(rdb, ida, false, &n3);
        assert_int_equal(cache_of(rdb).misses, 0);
        assert_same_bytes(m1, n1, m3, n3);
        free(m3);
        tsdb_close(rdb);
        pprof_profile *dec = pprof_decode(m2, n2, NULL, &(firn_err){0});
        assert_non_null(dec);
        assert_id_sums(dec, &plain);
        pprof_free(dec);
        /* new stacks (and ids) in partition 0, whose symbols are cached */
        pprof_profile *late = family_profile(thirds, 14, 300, false);
        append_ok(db, late, a, 1, "process_cpu", 700);
        id_sums_add(&plain, late, 1);
        pprof_free(late);
        r = reader_ok(db);
        pprof_profile *m = merge_ok(r, &ida, 1, INT64_MIN, INT64_MAX, false, NULL);
        assert_id_sums(m, &plain);
        pprof_free(m);
        tsdb_reader_close(r);
        assert_true(cache_of(db).misses > s2.misses);
        free(m1);
        free(m2);
        free(lab1);
        free(lab2);
        tsdb_close(db);
        free(pdir);
    }
}

/* Retention drops the cached symbols of the partitions it deletes, and a
 * reader whose snapshot still has them does not bring them back. */
static void test_symbol_cache_retention(void **state)
{
    char *pdir = path_join(*state, "symcache_retention");
    tsdb_options o;
    test_options(&o, pdir);
    o.partition_ms = 1000;
    o.retention_ms = 5000;
    tsdb *db = open_ok(&o);
    const int64_t T = (firn_now_ms() / 1000 + 1) * 1000;
    int first[20];
    for (int i = 0; i < 20; i++)
        first[i] = i;
    firn_label a[] = {{"job", "a"}};
    struct id_sums plain = {.n = 0};
    for (int p = 0; p < 2; p++) {
        pprof_profile *pa = family_profile(first, 20, 100 + p, false);
        append_ok(db, pa, a, 1, "process_cpu", T + 1000 * p);
        id_sums_add(&plain, pa, 1);
        pprof_free(pa);
    }
    tsdb_reader *before = reader_ok(db);
    uint64_t ida = series_id(before, CPU_NAME, "job", "a");
    pprof_profile *m = merge_ok(before, &ida, 1, INT64_MIN, INT64_MAX, false, NULL);
    pprof_free(m);
    assert_true(cache_of(db).entries > 0);
    uint64_t deleted = 0;
    firn_err err = {0};
    /* cutoff T+7.5s: both partitions go */
    assert_int_equal(tsdb_retention_run(db, T + 12500, &deleted, &err), 0);
    assert_int_equal(deleted, 2);
    tsdb_symcache_stat s = cache_of(db);
    assert_int_equal(s.entries, 0);
    assert_int_equal(s.bytes, 0);
    /* the older snapshot still merges them, from the store */
    m = merge_ok(before, &ida, 1, INT64_MIN, INT64_MAX, false, NULL);
    assert_id_sums(m, &plain);
    pprof_free(m);
    tsdb_reader_close(before);
    tsdb_symcache_stat after = cache_of(db);
    assert_int_equal(after.entries, 0);
    assert_true(after.misses > s.misses);
    tsdb_close(db);
    free(pdir);
}

/* Readers share the cache while the writer adds stacks to its partitions
 * and retention drops another partition's symbols, through a cache small
 * enough to evict all along: every merge gives the bytes of the first
 * (run under ThreadSanitizer too). */
enum { SC_READERS = 3, SC_ROUNDS = 25 };

struct sc_shared {
    tsdb *db;
    uint64_t id;
    const unsigned char *want;
    size_t want_len;
    atomic_int failures;
};

static void *sc_reader(void *arg)
{
    struct sc_shared *sh = arg;
    for (int i = 0; i < SC_ROUNDS; i++) {
        firn_err err = {0};
        tsdb_reader *r = tsdb_reader_open(sh->db, &err);
        pprof_profile *m = r ? tsdb_merge(r, &sh->id, 1, INT64_MIN, INT64_MAX, NULL, NULL, &err)
                             : NULL;
        unsigned char *buf = NULL;
        size_t len = 0;
        if (!m || pprof_encode(m, -1, &buf, &len, &err) < 0 || len != sh->want_len ||
            memcmp(buf, sh->want, len) != 0)
            atomic_fetch_add(&sh->failures, 1);
        free(buf);
        pprof_free(m);
        tsdb_reader_close(r);
    }
    return NULL;
}

static void test_symbol_cache_concurrent(void **state)
{
    char *pdir = path_join(*state, "symcache_threads");
    tsdb_options o;
    test_options(&o, pdir);
    o.partition_ms = 1000;
    o.retention_ms = 5000;
    o.symbol_cache_bytes = 4096;
    tsdb *db = open_ok(&o);
    const int64_t T = (firn_now_ms() / 1000 + 1) * 1000;
    int first[20], second[20];
    for (int i = 0; i < 20; i++) {
        first[i] = i;
        second[i] = 20 + i;
    }
    firn_label a[] = {{"job", "a"}}, b[] = {{"job", "b"}}, old[] = {{"job", "old"}};
    pprof_profile *pf = family_profile(first, 20, 100, false);
    pprof_profile *ps = family_profile(second, 20, 200, false);
    append_ok(db, pf, old, 1, "process_cpu", T);
    append_ok(db, pf, a, 1, "process_cpu", T + 8000);
    append_ok(db, pf, a, 1, "process_cpu", T + 9000);
    tsdb_reader *r = reader_ok(db);
    uint64_t ida = series_id(r, CPU_NAME, "job", "a"), idold = series_id(r, CPU_NAME, "job", "old");
    tsdb_reader_close(r);
    size_t want_len, old_len;
    unsigned char *want = merged_bytes(db, ida, false, &want_len);
    free(merged_bytes(db, idold, false, &old_len));   /* the old partition's symbols cached */
    struct sc_shared sh = {.db = db, .id = ida, .want = want, .want_len = want_len};
    pthread_t th[SC_READERS];
    for (int i = 0; i < SC_READERS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, sc_reader, &sh), 0);
    /* new stacks in the cached partitions, then the old partition dropped */
    append_ok(db, ps, b, 1, "process_cpu", T + 8000);
    append_ok(db, ps, b, 1, "process_cpu", T + 9000);
    uint64_t deleted = 0;
    firn_err err = {0};
    assert_int_equal(tsdb_retention_run(db, T + 12500, &deleted, &err), 0);
    assert_int_equal(deleted, 1);
    for (int i = 0; i < SC_READERS; i++)
        pthread_join(th[i], NULL);
    assert_int_equal(atomic_load(&sh.failures), 0);
    /* (no count of hits: with a cache this small, whether a record is
     * still there when read again depends on the threads' interleaving;
     * test_symbol_cache_hits_equal_misses asserts hits) */
    tsdb_symcache_stat s = cache_of(db);
    assert_true(s.bytes <= 4096);
    free(want);
    pprof_free(pf);
    pprof_free(ps);
    tsdb_close(db);
    free(pdir);
}

static void test_merge(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    firn_label a[] = {{"job", "a"}};
    const int n = 5;
    for (int i = 0; i < n; i++)
        append_ok(db, cpu, a, 1, "process_cpu", 1000 * (i + 1));
    int64_t totals[2];
    pprof_totals(cpu, totals);

    tsdb_reader *r = reader_ok(db);
    uint64_t cpu_id = series_id(r, CPU_NAME, "job", "a");
    uint64_t samples_id = series_id(r, SAMPLES_NAME, "job", "a");
    tsdb_merge_stats st;
    pprof_profile *m = merge_ok(r, &cpu_id, 1, INT64_MIN, INT64_MAX, false, &st);
    assert_int_equal(m->n_sample_types, 1);
    assert_string_equal(pprof_str(m, m->sample_types[0].type), "cpu");
    assert_string_equal(pprof_str(m, m->sample_types[0].unit), "nanoseconds");
    assert_string_equal(pprof_str(m, m->period_type.type), "cpu");
    assert_string_equal(pprof_str(m, m->period_type.unit), "nanoseconds");
    assert_int_equal(m->period, cpu->period);
    assert_int_equal(m->time_nanos, 1000 * 1000000LL);
    assert_int_equal(total_of(m, 0), n * totals[1]);
    assert_int_equal(st.blocks, n);
    assert_int_equal(st.stacks, m->n_samples);
    assert_int_equal(st.samples, n * m->n_samples);
    assert_top_scaled(m, cpu, 1, n);
    size_t single_partition_samples = m->n_samples;
    pprof_free(m);

    /* the samples column too, and a time window */
    m = merge_ok(r, &samples_id, 1, 2000, 3000, false, NULL);
    assert_int_equal(total_of(m, 0), 2 * totals[0]);
    assert_top_scaled(m, cpu, 0, 2);
    pprof_free(m);

    /* nothing in range: an empty profile of the type */
    m = merge_ok(r, &cpu_id, 1, 100000, 200000, false, &st);
    assert_int_equal(m->n_samples, 0);
    assert_int_equal(st.blocks, 0);
    pprof_free(m);

    /* refusals */
    firn_err err = {0};
    uint64_t both[] = {cpu_id, samples_id};
    assert_null(tsdb_merge(r, both, 2, INT64_MIN, INT64_MAX, NULL, NULL, &err));
    assert_int_equal(err.code, FIRN_EINVAL);
    assert_non_null(strstr(err.msg, "different types"));
    firn_err_clear(&err);
    assert_null(tsdb_merge(r, NULL, 0, INT64_MIN, INT64_MAX, NULL, NULL, &err));
    assert_true(err.code < 0);
    firn_err_clear(&err);
    uint64_t missing = 424242;
    assert_null(tsdb_merge(r, &missing, 1, INT64_MIN, INT64_MAX, NULL, NULL, &err));
    assert_true(err.code < 0);
    firn_err_clear(&err);
    tsdb_merge_options cap = {.max_samples = 1};
    assert_null(tsdb_merge(r, &cpu_id, 1, INT64_MIN, INT64_MAX, &cap, NULL, &err));
    assert_int_equal(err.code, FIRN_ETOOBIG);
    tsdb_reader_close(r);
    tsdb_close(db);

    /* across partitions: equal stacks of two partitions are one sample */
    char *pdir = path_join(dir, "parts");
    tsdb_options o;
    test_options(&o, pdir);
    o.partition_ms = 1000;
    db = open_ok(&o);
    append_ok(db, cpu, a, 1, "process_cpu", 500);
    append_ok(db, cpu, a, 1, "process_cpu", 1500);
    append_ok(db, cpu, a, 1, "process_cpu", 2500);
    r = reader_ok(db);
    cpu_id = series_id(r, CPU_NAME, "job", "a");
    m = merge_ok(r, &cpu_id, 1, INT64_MIN, INT64_MAX, false, &st);
    assert_int_equal(st.blocks, 3);
    assert_int_equal(st.stacks, 3 * single_partition_samples);   /* one per partition */
    assert_int_equal(total_of(m, 0), 3 * totals[1]);
    assert_int_equal(m->n_samples, single_partition_samples);
    assert_top_scaled(m, cpu, 1, 3);
    pprof_free(m);
    tsdb_reader_close(r);
    tsdb_close(db);
    /* the partition width is fixed at creation: reopening with another
     * changes nothing */
    o.partition_ms = 5000;
    db = open_ok(&o);
    append_ok(db, cpu, a, 1, "process_cpu", 3500);
    r = reader_ok(db);
    m = merge_ok(r, &cpu_id, 1, INT64_MIN, INT64_MAX, false, &st);
    assert_int_equal(total_of(m, 0), 4 * totals[1]);
    assert_int_equal(m->n_samples, single_partition_samples);
    pprof_free(m);
    struct scan_acc parts = scan(r, cpu_id, INT64_MIN, INT64_MAX, TSDB_SCAN_TOTALS);
    assert_int_equal(parts.blocks, 4);
    for (uint32_t i = 0; i < 4; i++)
        assert_int_equal(parts.partitions[i], i);
    tsdb_reader_close(r);
    tsdb_close(db);

    free(pdir);
    pprof_free(cpu);
}

/* Sum of column values per sample label key (numeric or string). */
static int64_t label_key_total(const pprof_profile *p, size_t column, const char *key)
{
    int64_t t = 0;
    for (size_t i = 0; i < p->n_samples; i++)
        for (size_t j = 0; j < p->samples[i].n_labels; j++)
            if (strcmp(pprof_str(p, p->samples[i].labels[j].key), key) == 0)
                t += p->samples[i].values[column];
    return t;
}

static void test_profile_at_and_labels(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    pprof_profile *labeled = decode_fixture(FX_LABELS);
    firn_label a[] = {{"job", "a"}};
    append_ok(db, labeled, a, 1, "process_cpu", 7000);
    append_ok(db, labeled, a, 1, "process_cpu", 8000);

    tsdb_reader *r = reader_ok(db);
    uint64_t id = series_id(r, CPU_NAME, "job", "a");
    firn_err err = {0};
    pprof_profile *p = tsdb_profile_at(r, id, 7000, &err);
    if (!p)
        fail_msg("profile_at: %s", err.msg);
    assert_int_equal(p->n_sample_types, 1);
    assert_int_equal(p->time_nanos, 7000 * 1000000LL);
    assert_int_equal(p->duration_nanos, labeled->duration_nanos);
    assert_int_equal(p->period, labeled->period);
    assert_int_equal(total_of(p, 0), total_of(labeled, 1));
    /* the same (stack, labels, value) multiset as appended */
    assert_same_samples(p, 0, labeled, 1);
    size_t labeled_samples = 0;
    for (size_t i = 0; i < p->n_samples; i++)
        labeled_samples += p->samples[i].n_labels > 0;
    assert_true(labeled_samples > 0);
    for (size_t i = 0; i < labeled->n_strings; i++) {
        const char *key = labeled->strings[i];
        if (*key && label_key_total(labeled, 1, key))
            assert_int_equal(label_key_total(p, 0, key), label_key_total(labeled, 1, key));
    }
    /* it encodes and decodes to the same */
    unsigned char *buf;
    size_t len;
    assert_int_equal(pprof_encode(p, -1, &buf, &len, &err), 0);
    pprof_profile *q = pprof_decode(buf, len, NULL, &err);
    free(buf);
    if (!q)
        fail_msg("decode of profile_at: %s", err.msg);
    assert_same_samples(q, 0, labeled, 1);
    pprof_free(q);
    pprof_free(p);

    /* merges keep labels only when asked */
    pprof_profile *with = merge_ok(r, &id, 1, INT64_MIN, INT64_MAX, true, NULL);
    pprof_profile *without = merge_ok(r, &id, 1, INT64_MIN, INT64_MAX, false, NULL);
    assert_int_equal(total_of(with, 0), 2 * total_of(labeled, 1));
    assert_int_equal(total_of(without, 0), 2 * total_of(labeled, 1));
    assert_true(with->n_samples > without->n_samples);
    for (size_t i = 0; i < without->n_samples; i++)
        assert_int_equal(without->samples[i].n_labels, 0);
    for (size_t i = 0; i < labeled->n_strings; i++) {
        const char *key = labeled->strings[i];
        if (*key && label_key_total(labeled, 1, key))
            assert_int_equal(label_key_total(with, 0, key), 2 * label_key_total(labeled, 1, key));
    }
    pprof_free(with);
    pprof_free(without);

    /* no profile there */
    firn_err_clear(&err);
    assert_null(tsdb_profile_at(r, id, 7001, &err));
    assert_int_equal(err.code, FIRN_EINVAL);
    assert_non_null(strstr(err.msg, "no profile"));
    firn_err_clear(&err);
    assert_null(tsdb_profile_at(r, 999999, 7000, &err));
    assert_true(err.code < 0);

    tsdb_reader_close(r);
    tsdb_close(db);
    pprof_free(labeled);
}

/* ---- 7. append refusals --------------------------------------------------- */

static void test_append_refusals(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.retention_ms = 3600 * 1000;
    tsdb *db = open_ok(&o);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    const int64_t now = firn_now_ms();
    firn_label x[] = {{"job", "x"}};
    append_ok(db, cpu, x, 1, "process_cpu", now);
    tsdb_stats before = stats_of(db);
    assert_int_equal(before.series, 2);
    assert_int_equal(before.blocks, 2);

    /* the same profile again is a no-op that says so; a different one at
     * that time is FIRN_EEXIST */
    bool dup = false;
    firn_err derr = {0};
    tsdb_append_req again = {.labels = x, .n_labels = 1, .profile_name = "process_cpu",
                             .profile = cpu, .timestamp_ms = now, .duplicate = &dup};
    assert_int_equal(tsdb_append(db, &again, &derr), 0);
    assert_true(dup);
    tsdb_stats same = stats_of(db);
    assert_int_equal(same.series, 2);
    assert_int_equal(same.blocks, 2);
    cpu->samples[0].values[1]++;
    append_refused(db, cpu, x, 1, "process_cpu", now, "already has a different profile");
    assert_int_equal(tsdb_append(db, &again, &derr), FIRN_EEXIST);
    assert_false(dup);
    cpu->samples[0].values[1]--;
    dup = false;
    assert_int_equal(tsdb_append(db, &again, &derr), 0);
    assert_true(dup);

    /* a profile of whose series only the second already has one at ts:
     * nothing of it is stored, not even the first's new series */
    pprof_profile *cpu_only = decode_fixture(FX_CPU);
    cpu_only->sample_types++;
    cpu_only->n_sample_types = 1;
    for (size_t i = 0; i < cpu_only->n_samples; i++)
        cpu_only->samples[i].values++;
    firn_label y[] = {{"job", "y"}};
    append_ok(db, cpu_only, y, 1, "process_cpu", now);
    tsdb_stats mid = stats_of(db);
    assert_int_equal(mid.series, 3);
    assert_int_equal(mid.blocks, 3);
    append_refused(db, cpu, y, 1, "process_cpu", now, "already has a different profile");

    firn_label name[] = {{"__name__", "x"}};
    append_refused(db, cpu, name, 1, "process_cpu", now + 1, "__name__");
    firn_label bad[] = {{"1abc", "x"}};
    append_refused(db, cpu, bad, 1, "process_cpu", now + 1, "1abc");
    firn_label twice[] = {{"job", "x"}, {"job", "y"}};
    append_refused(db, cpu, twice, 2, "process_cpu", now + 1, "duplicate label name \"job\"");
    firn_label no_value[] = {{"job", NULL}};
    append_refused(db, cpu, no_value, 1, "process_cpu", now + 1, "missing name or value");
    append_refused(db, cpu, x, 1, "", now + 1, "no profile name");
    append_refused(db, cpu, x, 1, NULL, now + 1, "no profile name");
    append_refused(db, cpu, x, 1, "process:cpu", now + 1, "':'");
    append_refused(db, cpu, x, 1, "process_cpu", now - 2 * 3600 * 1000, "older than the retention");
    append_refused(db, cpu, x, 1, "process_cpu", -5, "before 1970");
    append_refused(db, NULL, x, 1, "process_cpu", now + 1, "no profile");
    /* timestamp 0 takes the profile's own time: years before the retention */
    append_refused(db, cpu, x, 1, "process_cpu", 0, "older than the retention");
    char long_name[202];
    memset(long_name, 'a', 201);
    long_name[201] = 0;
    firn_label too_long[] = {{long_name, "x"}};
    append_refused(db, cpu, too_long, 1, "process_cpu", now + 1, "longer than 200 bytes");

    pprof_profile *twin = decode_fixture(FX_CPU);
    twin->sample_types[1] = twin->sample_types[0];
    append_refused(db, twin, x, 1, "process_cpu", now + 1, "appear once");
    twin->n_sample_types = 0;
    append_refused(db, twin, x, 1, "process_cpu", now + 1, "no sample types");

    tsdb_stats after = stats_of(db);
    assert_int_equal(after.series, mid.series);
    assert_int_equal(after.blocks, mid.blocks);
    assert_int_equal(after.appends_total, mid.appends_total);
    assert_int_equal(after.append_failures_total, mid.append_failures_total + 15);
    tsdb_reader *r = reader_ok(db);
    struct mspec ys = {FIRN_MATCH_EQ, "job", "y"};
    tsdb_series_set set;
    select_ok(r, &ys, 1, INT64_MIN, INT64_MAX, &set);
    assert_int_equal(set.n, 1);
    tsdb_series_set_free(&set);
    tsdb_reader_close(r);

    /* a label with an empty value is no label: the same series as {job="x"} */
    firn_label empty[] = {{"job", "x"}, {"empty", ""}};
    append_ok(db, cpu, empty, 2, "process_cpu", now + 1);
    after = stats_of(db);
    assert_int_equal(after.series, mid.series);
    assert_int_equal(after.blocks, mid.blocks + 2);
    r = reader_ok(db);
    struct mspec has_empty = {FIRN_MATCH_RE, "empty", ".+"};
    select_ok(r, &has_empty, 1, INT64_MIN, INT64_MAX, &set);
    assert_int_equal(set.n, 0);
    tsdb_series_set_free(&set);
    uint64_t id = series_id(r, CPU_NAME, "job", "x");
    assert_int_equal(scan(r, id, INT64_MIN, INT64_MAX, TSDB_SCAN_TOTALS).blocks, 2);
    tsdb_reader_close(r);

    tsdb_close(db);
    pprof_free(twin);
    pprof_free(cpu_only);
    pprof_free(cpu);
}

/* ---- 8. retention -------------------------------------------------------- */

/* Lowest partition of any key in the symbols database of a closed store. */
static int64_t raw_min_symbol_partition(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *c;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "symbols", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    MDB_val k, v;
    int64_t part = -1;
    if (mdb_cursor_get(c, &k, &v, MDB_FIRST) == 0) {
        const unsigned char *p = k.mv_data;
        part = (int64_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3];
    }
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return part;
}

static void test_retention(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.partition_ms = 1000;
    o.retention_ms = 5000;
    tsdb *db = open_ok(&o);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    int64_t totals[2];
    pprof_totals(cpu, totals);
    /* appends must lie within the retention of the wall clock: start at
     * the next whole second */
    const int64_t T = (firn_now_ms() / 1000 + 1) * 1000;
    firn_label a[] = {{"job", "a"}}, old[] = {{"job", "old"}};
    for (int i = 0; i <= 20; i++)
        append_ok(db, cpu, a, 1, "process_cpu", T + i * 1000);
    append_ok(db, cpu, old, 1, "process_cpu", T);
    tsdb_stats s = stats_of(db);
    assert_int_equal(s.series, 4);
    assert_int_equal(s.blocks, 44);

    /* as of T+12.5s the cutoff is T+7.5s: profiles T..T+7s go, but not
     * from the snapshot of a reader opened before */
    tsdb_reader *before = reader_ok(db);
    uint64_t deleted = 0;
    firn_err err = {0};
    assert_int_equal(tsdb_retention_run(db, T + 12500, &deleted, &err), 0);
    assert_int_equal(deleted, 8 * 2 + 2);
    uint64_t old_id = series_id(before, CPU_NAME, "job", "old");
    pprof_profile *om = merge_ok(before, &old_id, 1, INT64_MIN, INT64_MAX, false, NULL);
    assert_int_equal(total_of(om, 0), totals[1]);
    pprof_free(om);
    assert_int_equal(scan(before, series_id(before, CPU_NAME, "job", "a"), INT64_MIN,
                          INT64_MAX, 0).blocks, 21);
    tsdb_reader_close(before);
    s = stats_of(db);
    assert_int_equal(s.blocks, 13 * 2);
    assert_int_equal(s.series, 2);
    assert_true(s.retention_runs_total >= 1);
    assert_int_equal(s.retention_deleted_blocks_total, 18);
    assert_int_equal(s.retention_deleted_series_total, 2);

    tsdb_reader *r = reader_ok(db);
    struct mspec jold = {FIRN_MATCH_EQ, "job", "old"};
    tsdb_series_set set;
    select_ok(r, &jold, 1, INT64_MIN, INT64_MAX, &set);
    assert_int_equal(set.n, 0);
    tsdb_series_set_free(&set);
    static const char *const jobs[] = {"a"};
    label_values(r, "job", NULL, 0, INT64_MIN, INT64_MAX, jobs, 1);   /* from postings */
    label_values(r, "job", &jold, 1, INT64_MIN, INT64_MAX, NULL, 0);
    struct mspec any_job = {FIRN_MATCH_RE, "job", ".+"};
    select_ok(r, &any_job, 1, INT64_MIN, INT64_MAX, &set);
    assert_int_equal(set.n, 2);
    for (size_t i = 0; i < set.n; i++) {
        assert_int_equal(set.series[i].min_time_ms, T + 8000);
        assert_int_equal(set.series[i].max_time_ms, T + 20000);
    }
    tsdb_series_set_free(&set);
    uint64_t id = series_id(r, CPU_NAME, "job", "a");
    struct scan_acc sc = scan(r, id, INT64_MIN, INT64_MAX, 0);
    assert_int_equal(sc.blocks, 13);
    assert_int_equal(sc.ts[0], T + 8000);
    /* what is left still resolves to whole profiles */
    pprof_profile *m = merge_ok(r, &id, 1, INT64_MIN, INT64_MAX, false, NULL);
    assert_int_equal(total_of(m, 0), 13 * totals[1]);
    assert_top_scaled(m, cpu, 1, 13);
    pprof_free(m);
    pprof_profile *p = tsdb_profile_at(r, id, T + 8000, &err);
    if (!p)
        fail_msg("profile_at after retention: %s", err.msg);
    assert_same_samples(p, 0, cpu, 1);
    pprof_free(p);
    tsdb_reader_close(r);

    /* a partition retention dropped takes no more appends, even when the
     * wall clock would allow them */
    append_refused(db, cpu, a, 1, "process_cpu", T + 1000, "retention");
    /* the same pass again deletes nothing */
    assert_int_equal(tsdb_retention_run(db, T + 12500, &deleted, &err), 0);
    assert_int_equal(deleted, 0);
    /* an old series name comes back as a new series */
    append_ok(db, cpu, old, 1, "process_cpu", T + 21000);
    assert_int_equal(stats_of(db).series, 4);
    tsdb_close(db);
    /* partitions wholly before the cutoff are gone from the symbols */
    assert_int_equal(raw_min_symbol_partition(dir), T / 1000 + 7);

    /* reopened, the data is the same */
    db = open_ok(&o);
    assert_int_equal(stats_of(db).blocks, 13 * 2 + 2);
    tsdb_close(db);

    pprof_free(cpu);
}

static void test_retention_steady_state(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.partition_ms = 1000;
    o.retention_ms = 5000;
    tsdb *db = open_ok(&o);
    pprof_profile *heap = decode_fixture(FX_HEAP);
    firn_label a[] = {{"job", "a"}};
    const int64_t T = (firn_now_ms() / 1000 + 1) * 1000;
    enum { ROUNDS = 40, BATCH = 2 };   /* the file stops growing by round 15 */
    uint64_t size[ROUNDS];
    for (int round = 0; round < ROUNDS; round++) {
        for (int j = 0; j < BATCH; j++)
            append_ok(db, heap, a, 1, "memory", T + round * 1000 + j * 300);
        uint64_t deleted = 0;
        firn_err err = {0};
        assert_int_equal(tsdb_retention_run(db, T + round * 1000 + 999, &deleted, &err), 0);
        if (round >= 6)
            assert_int_equal(deleted, BATCH * 4);
        tsdb_stats s = stats_of(db);
        size[round] = s.disk_bytes;
        if (round >= 6)
            assert_int_equal(s.blocks, 5 * BATCH * 4);
    }
    for (int round = ROUNDS / 2; round < ROUNDS; round++)
        if (size[round] != size[ROUNDS / 2 - 1]) {
            for (int i = 0; i < ROUNDS; i++)
                print_message("round %d: %llu bytes\n", i, (unsigned long long)size[i]);
            fail_msg("the data file still grows after round %d", ROUNDS / 2);
        }
    tsdb_close(db);
    pprof_free(heap);
}

/* ---- 9. growing the map ---------------------------------------------------- */

static void test_map_growth(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.map_size = 256 << 10;
    o.partition_ms = 1000;   /* symbols again in every partition: more pages */
    tsdb *db = open_ok(&o);
    pprof_profile *heap = decode_fixture(FX_HEAP);
    firn_label a[] = {{"job", "a"}};
    enum { N_APPENDS = 12 };
    for (int i = 0; i < N_APPENDS; i++)
        append_ok(db, heap, a, 1, "memory", 1000 * i + 1);
    tsdb_stats s = stats_of(db);
    assert_true(s.map_resizes_total > 0);
    assert_true(s.map_bytes > (256u << 10));
    assert_true(s.disk_bytes > (256u << 10));
    assert_int_equal(s.appends_total, N_APPENDS);
    assert_int_equal(s.append_failures_total, 0);
    assert_int_equal(s.blocks, N_APPENDS * 4);
    tsdb_close(db);

    /* reopened with the same small map: it fits the file, data intact */
    db = open_ok(&o);
    tsdb_reader *r = reader_ok(db);
    uint64_t id = series_id(r, "memory:alloc_space:bytes:space:bytes", "job", "a");
    pprof_profile *m = merge_ok(r, &id, 1, INT64_MIN, INT64_MAX, false, NULL);
    assert_int_equal(total_of(m, 0), N_APPENDS * total_of(heap, 1));
    pprof_free(m);
    tsdb_reader_close(r);
    /* and it grows again when needed */
    for (int i = 0; i < 4; i++)
        append_ok(db, heap, a, 1, "memory", 1000 * (N_APPENDS + i) + 1);
    assert_int_equal(stats_of(db).blocks, (N_APPENDS + 4) * 4);
    tsdb_close(db);

    pprof_free(heap);
}

/* A read-only store (firnctl beside the server) whose file another process
 * grew past its map: LMDB lets a process adopt the new size only with no
 * transaction of its own open, since the file is remapped under them.  A read
 * opened while another of the process is open is refused after a bounded
 * wait (in the same thread it could never be granted), and succeeds, seeing
 * the new data, once the other read is closed. */
static void test_read_only_map_resized(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.map_size = 256 << 10;
    o.partition_ms = 1000;
    pprof_profile *heap = decode_fixture(FX_HEAP);
    firn_label a[] = {{"job", "a"}};
    tsdb *db = open_ok(&o);
    append_ok(db, heap, a, 1, "memory", 1);
    tsdb_close(db);

    tsdb_options ro = o;
    ro.read_only = true;
    ro.resize_wait_ms = 200;
    tsdb *rdb = open_ok(&ro);
    tsdb_reader *held = reader_ok(rdb);

    /* another process grows the store well past the read-only map */
    enum { N_MORE = 24 };
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        firn_err err = {0};
        tsdb *w = tsdb_open(&o, &err);
        int bad = !w;
        for (int i = 0; !bad && i < N_MORE; i++)
            bad = append(w, heap, a, 1, "memory", false, 1000 * (i + 1) + 1, &err) != 0;
        if (w)
            tsdb_close(w);
        _exit(bad);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);

    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(rdb, &err);
    assert_null(r);
    assert_int_equal(err.code, FIRN_EBUSY);
    if (!strstr(err.msg, "the store grew"))
        fail_msg("unexpected error: %s", err.msg);
    /* the read opened before still reads its snapshot */
    uint64_t id = series_id(held, "memory:alloc_space:bytes:space:bytes", "job", "a");
    assert_int_equal(scan(held, id, INT64_MIN, INT64_MAX, 0).blocks, 1);
    tsdb_reader_close(held);

    r = reader_ok(rdb);
    assert_int_equal(scan(r, id, INT64_MIN, INT64_MAX, 0).blocks, 1 + N_MORE);
    tsdb_reader_close(r);
    tsdb_close(rdb);
    pprof_free(heap);
}

/* --storage.tsdb.max-series: an append that needs new series past the limit
 * is refused whole, saying so; appends to the series held go on. */
static void test_series_limit(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.max_series = 3;
    tsdb *db = open_ok(&o);
    pprof_profile *cpu = decode_fixture(FX_CPU);   /* two sample types: two series */
    firn_label a[] = {{"job", "a"}}, b[] = {{"job", "b"}};
    append_ok(db, cpu, a, 1, "process_cpu", 1000);
    append_refused(db, cpu, b, 1, "process_cpu", 1000,
                   "series limit of 3 reached (2 series held): 2 new series of ");
    append_ok(db, cpu, a, 1, "process_cpu", 2000);
    tsdb_stats s = stats_of(db);
    assert_int_equal(s.series, 2);
    assert_int_equal(s.blocks, 4);
    tsdb_close(db);
    pprof_free(cpu);
}

/* ---- 10. back-pressure -------------------------------------------------- */

enum { BP_THREADS = 8, BP_MAX_ATTEMPTS = 400 };

struct bp_shared {
    tsdb *db;
    const pprof_profile *profile;
    atomic_int busy;
    atomic_int unexpected;
    char unexpected_msg[FIRN_ERR_MSG_MAX + 32];
};

struct bp_thread {
    struct bp_shared *sh;
    int index;
    char value[16];
    int64_t stored[BP_MAX_ATTEMPTS];
    int n_stored, n_busy;
};

static void *bp_main(void *arg)
{
    struct bp_thread *t = arg;
    struct bp_shared *sh = t->sh;
    firn_label labels[] = {{"thread", t->value}};
    for (int i = 0; i < BP_MAX_ATTEMPTS; i++) {
        if (i >= 10 && atomic_load(&sh->busy) > 0)
            break;
        int64_t ts = 1000 + i;
        firn_err err = {0};
        int rc = append(sh->db, sh->profile, labels, 1, "process_cpu", false, ts, &err);
        if (rc == 0) {
            t->stored[t->n_stored++] = ts;
        } else if (rc == FIRN_EBUSY && strstr(err.msg, "queue full")) {
            t->n_busy++;
            atomic_fetch_add(&sh->busy, 1);
        } else if (atomic_fetch_add(&sh->unexpected, 1) == 0) {
            snprintf(sh->unexpected_msg, sizeof sh->unexpected_msg, "rc %d: %s", rc, err.msg);
        }
    }
    return NULL;
}

static void test_back_pressure(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.queue_max = 1;
    tsdb *db = open_ok(&o);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    struct bp_shared sh = {.db = db, .profile = cpu};
    struct bp_thread *th = calloc(BP_THREADS, sizeof *th);
    pthread_t tid[BP_THREADS];
    assert_non_null(th);
    for (int i = 0; i < BP_THREADS; i++) {
        th[i].sh = &sh;
        th[i].index = i;
        snprintf(th[i].value, sizeof th[i].value, "t%d", i);
        assert_int_equal(pthread_create(&tid[i], NULL, bp_main, &th[i]), 0);
    }
    for (int i = 0; i < BP_THREADS; i++)
        pthread_join(tid[i], NULL);
    if (atomic_load(&sh.unexpected))
        fail_msg("%d unexpected append results, first: %s", atomic_load(&sh.unexpected),
                 sh.unexpected_msg);
    int stored = 0, busy = 0;
    for (int i = 0; i < BP_THREADS; i++) {
        stored += th[i].n_stored;
        busy += th[i].n_busy;
    }
    assert_true(busy > 0);
    assert_true(stored > 0);
    tsdb_stats s = stats_of(db);
    assert_int_equal(s.blocks, (uint64_t)stored * 2);
    assert_int_equal(s.appends_total, stored);
    assert_int_equal(s.queue_full_total, busy);
    assert_int_equal(s.queue_length, 0);

    /* every acknowledged profile is there, whole */
    tsdb_reader *r = reader_ok(db);
    for (int i = 0; i < BP_THREADS; i++) {
        if (!th[i].n_stored)
            continue;
        uint64_t id = series_id(r, CPU_NAME, "thread", th[i].value);
        struct scan_acc all = scan(r, id, INT64_MIN, INT64_MAX, TSDB_SCAN_TOTALS);
        assert_int_equal(all.blocks, th[i].n_stored);
        for (int k = 0; k < th[i].n_stored; k++) {
            struct scan_acc one = scan(r, id, th[i].stored[k], th[i].stored[k], 0);
            assert_int_equal(one.blocks, 1);
            assert_int_equal(one.value_sum, total_of(cpu, 1));
        }
    }
    tsdb_reader_close(r);
    tsdb_close(db);
    free(th);
    pprof_free(cpu);
}

/* ---- 11. readers during writes -------------------------------------------- */

enum { RW_PROFILES = 40, RW_READERS = 3 };

struct rw_shared {
    tsdb *db;
    const pprof_profile *profile;
    int64_t totals[4];
    atomic_bool writer_done;
    atomic_int failures;
    atomic_int partial_snapshots;   /* snapshots taken mid-way: proof of overlap */
    pthread_mutex_t mu;
    char first_failure[FIRN_ERR_MSG_MAX];
    char writer_err[FIRN_ERR_MSG_MAX];
};

static void rw_fail(struct rw_shared *sh, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void rw_fail(struct rw_shared *sh, const char *fmt, ...)
{
    pthread_mutex_lock(&sh->mu);
    if (atomic_fetch_add(&sh->failures, 1) == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(sh->first_failure, sizeof sh->first_failure, fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&sh->mu);
}

static void *rw_writer(void *arg)
{
    struct rw_shared *sh = arg;
    firn_label labels[] = {{"job", "w"}};
    for (int i = 0; i < RW_PROFILES; i++) {
        firn_err err = {0};
        /* half-way, wait until a reader has seen the first half alone: the
         * readers then really raced the writer (bounded: a reader that never
         * gets there fails the test below) */
        int64_t give_up = firn_mono_ms() + 60000;
        while (i == RW_PROFILES / 2 && atomic_load(&sh->partial_snapshots) == 0 &&
               !atomic_load(&sh->failures) && firn_mono_ms() < give_up)
            sched_yield();
        if (append(sh->db, sh->profile, labels, 1, "memory", false, 1000 + i, &err) != 0) {
            snprintf(sh->writer_err, sizeof sh->writer_err, "%s", err.msg);
            break;
        }
    }
    atomic_store(&sh->writer_done, true);
    return NULL;
}

struct snapshot {
    size_t n_series;
    size_t blocks[4];
    int64_t sum_ts[4];
    int64_t sum_total[4];
};

struct snap_scan {
    struct rw_shared *sh;
    int column;
    struct snapshot *s;
    bool bad_total;
};

static int snap_fn(void *ctx, const tsdb_block *b)
{
    struct snap_scan *ss = ctx;
    ss->s->blocks[ss->column]++;
    ss->s->sum_ts[ss->column] += b->timestamp_ms;
    ss->s->sum_total[ss->column] += b->total;
    if (b->total != ss->sh->totals[ss->column])
        ss->bad_total = true;
    return 0;
}

static int take_snapshot(struct rw_shared *sh, tsdb_reader *r, struct snapshot *s)
{
    static const char *const names[4] = {
        "memory:alloc_objects:count:space:bytes", "memory:alloc_space:bytes:space:bytes",
        "memory:inuse_objects:count:space:bytes", "memory:inuse_space:bytes:space:bytes"};
    memset(s, 0, sizeof *s);
    firn_matcher m;
    firn_err err = {0};
    if (firn_matcher_init(&m, FIRN_MATCH_EQ, "job", "w", &err) < 0)
        return -1;
    tsdb_series_set set;
    int rc = tsdb_select(r, &m, 1, INT64_MIN, INT64_MAX, &set, &err);
    firn_matcher_destroy(&m);
    if (rc < 0) {
        rw_fail(sh, "select: %s", err.msg);
        return -1;
    }
    s->n_series = set.n;
    for (size_t i = 0; i < set.n && rc == 0; i++) {
        const char *name =
            firn_labels_get(set.series[i].labels, set.series[i].n_labels, "__name__");
        int col = -1;
        for (int k = 0; k < 4; k++)
            if (name && strcmp(name, names[k]) == 0)
                col = k;
        if (col < 0) {
            rw_fail(sh, "unexpected series %s", name ? name : "?");
            rc = -1;
            break;
        }
        struct snap_scan ss = {sh, col, s, false};
        if (tsdb_scan(r, set.series[i].id, INT64_MIN, INT64_MAX, TSDB_SCAN_TOTALS, snap_fn,
                      &ss, &err) < 0) {
            rw_fail(sh, "scan: %s", err.msg);
            rc = -1;
        } else if (ss.bad_total) {
            rw_fail(sh, "a block of %s has the wrong total", name);
            rc = -1;
        }
    }
    tsdb_series_set_free(&set);
    return rc;
}

static void *rw_reader(void *arg)
{
    struct rw_shared *sh = arg;
    for (int iter = 0;; iter++) {
        bool last = atomic_load(&sh->writer_done);
        firn_err err = {0};
        tsdb_reader *r = tsdb_reader_open(sh->db, &err);
        if (!r) {
            rw_fail(sh, "reader: %s", err.msg);
            break;
        }
        struct snapshot a, b;
        int rc = take_snapshot(sh, r, &a);
        if (rc == 0)
            rc = take_snapshot(sh, r, &b);
        tsdb_reader_close(r);
        if (rc < 0)
            break;
        if (memcmp(&a, &b, sizeof a) != 0)
            rw_fail(sh, "one reader saw two snapshots (%zu then %zu blocks)", a.blocks[0],
                    b.blocks[0]);
        if (a.n_series != 0 && a.n_series != 4)
            rw_fail(sh, "%zu of 4 series visible", a.n_series);
        for (int k = 1; k < 4; k++)
            if (a.blocks[k] != a.blocks[0] || a.sum_ts[k] != a.sum_ts[0])
                rw_fail(sh, "a profile is partly visible (%zu vs %zu blocks)", a.blocks[k],
                        a.blocks[0]);
        if (a.blocks[0] > 0 && a.blocks[0] < RW_PROFILES)
            atomic_fetch_add(&sh->partial_snapshots, 1);
        if (last || atomic_load(&sh->failures))
            break;
    }
    return NULL;
}

/* Readers in RW_READERS threads while one thread appends; returns the
 * store's stats after. */
static tsdb_stats readers_during_writes(const char *dir, size_t map_size)
{
    tsdb_options o;
    test_options(&o, dir);
    o.map_size = map_size;
    tsdb *db = open_ok(&o);
    pprof_profile *heap = decode_fixture(FX_HEAP);
    struct rw_shared sh = {.db = db, .profile = heap};
    pthread_mutex_init(&sh.mu, NULL);
    pprof_totals(heap, sh.totals);
    pthread_t w, rd[RW_READERS];
    for (int i = 0; i < RW_READERS; i++)
        assert_int_equal(pthread_create(&rd[i], NULL, rw_reader, &sh), 0);
    assert_int_equal(pthread_create(&w, NULL, rw_writer, &sh), 0);
    pthread_join(w, NULL);
    for (int i = 0; i < RW_READERS; i++)
        pthread_join(rd[i], NULL);
    pthread_mutex_destroy(&sh.mu);
    if (sh.writer_err[0])
        fail_msg("writer: %s", sh.writer_err);
    if (atomic_load(&sh.failures))
        fail_msg("%d reader failures, first: %s", atomic_load(&sh.failures), sh.first_failure);
    /* the readers overlapped the writer: a snapshot between first and last */
    assert_true(atomic_load(&sh.partial_snapshots) > 0);
    tsdb_stats st = stats_of(db);
    assert_int_equal(st.blocks, RW_PROFILES * 4);
    tsdb_close(db);
    pprof_free(heap);
    return st;
}

static void test_readers_during_writes(void **state)
{
    readers_during_writes(*state, 0);
}

/* Growing the map waits for open readers: none may see a torn map. */
static void test_readers_during_map_growth(void **state)
{
    tsdb_stats st = readers_during_writes(*state, 256 << 10);
    assert_true(st.map_resizes_total > 0);
}

/* ---- 12. self-metrics ------------------------------------------------------ */

struct count_acc {
    uint64_t samples;
};

static int count_fn(void *ctx, const tsdb_block *b)
{
    ((struct count_acc *)ctx)->samples += b->n_samples;
    return 0;
}

static void test_stats(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    tsdb_stats s = stats_of(db);
    assert_int_equal(s.series, 0);
    assert_int_equal(s.blocks, 0);
    assert_int_equal(s.appends_total, 0);
    assert_int_equal(s.commits_total, 0);
    assert_true(s.map_bytes >= (1u << 30));

    pprof_profile *cpu = decode_fixture(FX_CPU);
    firn_label a[] = {{"job", "a"}};
    for (int i = 0; i < 3; i++)
        append_ok(db, cpu, a, 1, "process_cpu", 1000 + i);
    cpu->samples[0].values[0]++;
    append_refused(db, cpu, a, 1, "process_cpu", 1000, "already has a different profile");
    cpu->samples[0].values[0]--;
    s = stats_of(db);
    assert_int_equal(s.appends_total, 3);
    assert_int_equal(s.append_failures_total, 1);
    assert_int_equal(s.series, 2);
    assert_int_equal(s.blocks, 6);
    assert_true(s.commits_total >= 1 && s.commits_total <= 4);
    assert_true(s.disk_bytes > 0);
    assert_true(s.map_bytes >= s.disk_bytes);
    assert_int_equal(s.queue_length, 0);
    assert_int_equal(s.queue_full_total, 0);
    assert_int_equal(s.map_resizes_total, 0);
    /* samples_total counts the samples stored: what full scans yield */
    tsdb_reader *r = reader_ok(db);
    struct count_acc c = {0};
    firn_err err = {0};
    tsdb_series_set set;
    select_ok(r, NULL, 0, INT64_MIN, INT64_MAX, &set);
    for (size_t i = 0; i < set.n; i++)
        assert_int_equal(tsdb_scan(r, set.series[i].id, INT64_MIN, INT64_MAX, 0, count_fn, &c,
                                   &err), 0);
    tsdb_series_set_free(&set);
    tsdb_reader_close(r);
    assert_true(s.samples_total > 0);
    assert_int_equal(s.samples_total, c.samples);
    tsdb_close(db);
    pprof_free(cpu);
}

/* ---- more edges: time-range gaps, retention then older appends, long
 * label values, many series, extreme values ---------------------------- */

/* A profile of one sample type (cpu/nanoseconds) with one sample per value,
 * each on its own stack: f<i> called from main. */
static pprof_profile *tiny_profile(const int64_t *values, size_t n)
{
    pprof_builder *b = pprof_builder_new(1);
    assert_non_null(b);
    pprof_builder_sample_type(b, 0, "cpu", "nanoseconds");
    pprof_builder_period(b, "cpu", "nanoseconds", 10000000);
    pprof_function fmain = {.name = pprof_builder_string(b, "main", 4)};
    pprof_line lmain = {.function = pprof_builder_function(b, &fmain)};
    pprof_location locmain = {.mapping = PPROF_NONE, .lines = &lmain, .n_lines = 1};
    uint32_t root = pprof_builder_location(b, &locmain);
    for (size_t i = 0; i < n; i++) {
        char name[32];
        int len = snprintf(name, sizeof name, "f%zu", i);
        pprof_function f = {.name = pprof_builder_string(b, name, (size_t)len)};
        pprof_line l = {.function = pprof_builder_function(b, &f), .line = (int64_t)i};
        pprof_location loc = {.mapping = PPROF_NONE, .lines = &l, .n_lines = 1};
        uint32_t stack[2] = {pprof_builder_location(b, &loc), root};
        assert_int_equal(pprof_builder_sample(b, stack, 2, &values[i], NULL, 0), 0);
    }
    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    if (!p)
        fail_msg("tiny profile: %s", err.msg);
    return p;
}

static void test_select_time_range_gaps(void **state)
{
    const char *dir = *state;
    tsdb *db = populate(dir);
    tsdb_reader *r = reader_ok(db);
    /* instance a:1 holds profiles at 500, 1000 and 1500 only: a range
     * between them holds none */
    struct mspec a1 = {FIRN_MATCH_EQ, "instance", "a:1"};
    const struct {
        int64_t start, end;
        size_t want;
    } ranges[] = {{600, 900, 0},   {1001, 1499, 0}, {600, 1000, 2},
                  {1000, 1000, 2}, {1499, 1500, 2}, {501, 999, 0}};
    for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
        tsdb_series_set set;
        select_ok(r, &a1, 1, ranges[i].start, ranges[i].end, &set);
        if (set.n != ranges[i].want)
            fail_msg("[%lld, %lld]: %zu series, want %zu", (long long)ranges[i].start,
                     (long long)ranges[i].end, set.n, ranges[i].want);
        tsdb_series_set_free(&set);
    }
    label_values(r, "instance", NULL, 0, 600, 900, NULL, 0);
    label_names(r, NULL, 0, 1001, 1499, NULL, 0);
    tsdb_reader_close(r);
    tsdb_close(db);
}

static void test_retention_then_older_append(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.partition_ms = 1000;
    o.retention_ms = 5000;
    tsdb *db = open_ok(&o);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    const int64_t T = (firn_now_ms() / 1000 + 1) * 1000;
    firn_label a[] = {{"job", "a"}};
    for (int i = 0; i <= 10; i++)
        append_ok(db, cpu, a, 1, "process_cpu", T + i * 1000);
    uint64_t deleted;
    firn_err err = {0};
    assert_int_equal(tsdb_retention_run(db, T + 12500, &deleted, &err), 0);
    assert_int_equal(deleted, 16);
    /* a profile between the cutoff and the oldest one left */
    append_ok(db, cpu, a, 1, "process_cpu", T + 7600);
    tsdb_reader *r = reader_ok(db);
    tsdb_series_set set;
    select_ok(r, NULL, 0, T + 7600, T + 7600, &set);
    assert_int_equal(set.n, 2);
    for (size_t i = 0; i < set.n; i++) {
        assert_int_equal(set.series[i].min_time_ms, T + 7600);
        assert_int_equal(set.series[i].max_time_ms, T + 10000);
    }
    tsdb_series_set_free(&set);
    uint64_t id = series_id(r, CPU_NAME, "job", "a");
    struct scan_acc s = scan(r, id, INT64_MIN, INT64_MAX, TSDB_SCAN_TOTALS);
    assert_int_equal(s.blocks, 4);
    assert_int_equal(s.ts[0], T + 7600);
    tsdb_reader_close(r);
    tsdb_close(db);
    pprof_free(cpu);
}

static size_t raw_entries(const char *dir, const char *dbname)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_stat st;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, dbname, 0, &dbi), 0);
    assert_int_equal(mdb_stat(txn, dbi, &st), 0);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return st.ms_entries;
}

static void test_long_label_values(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.partition_ms = 1000;
    o.retention_ms = 5000;
    tsdb *db = open_ok(&o);
    const int64_t values[] = {10, 20};
    pprof_profile *p = tiny_profile(values, 2);
    /* two values longer than a key that share their first 900 bytes (so
     * their cut keys differ only by the hash), and one that fits */
    static char long1[1001], long2[1001], mid[400];
    memset(long1, 'v', 1000);
    memset(long2, 'v', 1000);
    long1[999] = '1';
    long2[999] = '2';
    memset(mid, 'm', 399);
    const int64_t T = (firn_now_ms() / 1000 + 1) * 1000;
    firn_label s1[] = {{"url", long1}}, s2[] = {{"url", long2}}, s3[] = {{"url", mid}};
    firn_label s4[] = {{"url", long1}, {"job", "x"}};
    append_ok(db, p, s1, 1, "process_cpu", T);
    append_ok(db, p, s2, 1, "process_cpu", T);
    append_ok(db, p, s3, 1, "process_cpu", T + 20000);
    append_ok(db, p, s4, 2, "process_cpu", T + 20000);
    p->samples[0].values[0]++;
    append_refused(db, p, s1, 1, "process_cpu", T, "already has a different profile");
    p->samples[0].values[0]--;

    tsdb_reader *r = reader_ok(db);
    struct mspec m_long1 = {FIRN_MATCH_EQ, "url", long1};
    struct mspec m_long2 = {FIRN_MATCH_EQ, "url", long2};
    assert_int_equal(select_count(db, &m_long1, 1, INT64_MIN, INT64_MAX), 2);
    assert_int_equal(select_count(db, &m_long2, 1, INT64_MIN, INT64_MAX), 1);
    struct mspec re1 = {FIRN_MATCH_RE, "url", "v*1"}, ne1 = {FIRN_MATCH_NE, "url", long1};
    assert_int_equal(select_count(db, &re1, 1, INT64_MIN, INT64_MAX), 2);
    assert_int_equal(select_count(db, &ne1, 1, INT64_MIN, INT64_MAX), 2);
    tsdb_series_set set;
    select_ok(r, &m_long2, 1, INT64_MIN, INT64_MAX, &set);
    assert_int_equal(set.n, 1);
    assert_string_equal(firn_labels_get(set.series[0].labels, set.series[0].n_labels, "url"),
                        long2);
    tsdb_series_set_free(&set);
    const char *const all[] = {mid, long1, long2};
    label_values(r, "url", NULL, 0, INT64_MIN, INT64_MAX, all, 3);
    static const char *const names[] = {"__name__", "job", "url"};
    label_names(r, NULL, 0, INT64_MIN, INT64_MAX, names, 3);
    tsdb_reader_close(r);

    /* retention takes the series at T; long1's whole value stays for s4 */
    uint64_t deleted;
    firn_err err = {0};
    assert_int_equal(tsdb_retention_run(db, T + 10000, &deleted, &err), 0);
    assert_int_equal(deleted, 2);
    r = reader_ok(db);
    const char *const left[] = {mid, long1};
    label_values(r, "url", NULL, 0, INT64_MIN, INT64_MAX, left, 2);
    tsdb_reader_close(r);
    assert_int_equal(select_count(db, &m_long1, 1, INT64_MIN, INT64_MAX), 1);
    assert_int_equal(select_count(db, &m_long2, 1, INT64_MIN, INT64_MAX), 0);
    tsdb_close(db);
    assert_int_equal(raw_entries(dir, "long_values"), 1);
    pprof_free(p);
}

enum { MANY_SERIES = 700, MANY_THREADS = 4 };

struct many_ctx {
    tsdb *db;
    const pprof_profile *p;
    int from, to;
    int failures;
    char msg[FIRN_ERR_MSG_MAX];
};

static void *many_main(void *arg)
{
    struct many_ctx *c = arg;
    for (int i = c->from; i < c->to; i++) {
        char v[16];
        snprintf(v, sizeof v, "%d", i);
        firn_label labels[] = {{"i", v}, {"job", "many"}};
        firn_err err = {0};
        if (append(c->db, c->p, labels, 2, "process_cpu", false, 1000, &err) != 0 &&
            c->failures++ == 0)
            snprintf(c->msg, sizeof c->msg, "%s", err.msg);
    }
    return NULL;
}

static void test_many_series(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    const int64_t values[] = {1};
    pprof_profile *p = tiny_profile(values, 1);
    struct many_ctx c[MANY_THREADS];
    pthread_t tid[MANY_THREADS];
    for (int t = 0; t < MANY_THREADS; t++) {
        c[t] = (struct many_ctx){.db = db, .p = p, .from = t * MANY_SERIES / MANY_THREADS,
                                 .to = (t + 1) * MANY_SERIES / MANY_THREADS};
        assert_int_equal(pthread_create(&tid[t], NULL, many_main, &c[t]), 0);
    }
    for (int t = 0; t < MANY_THREADS; t++)
        pthread_join(tid[t], NULL);
    for (int t = 0; t < MANY_THREADS; t++)
        if (c[t].failures)
            fail_msg("%d appends failed: %s", c[t].failures, c[t].msg);
    assert_int_equal(stats_of(db).series, MANY_SERIES);

    /* posting lists longer than an LMDB page */
    struct mspec job = {FIRN_MATCH_EQ, "job", "many"};
    struct mspec two[2] = {{FIRN_MATCH_EQ, "job", "many"}, {FIRN_MATCH_NE, "i", "3"}};
    struct mspec ones = {FIRN_MATCH_RE, "i", "1.*"};
    struct mspec name = {FIRN_MATCH_EQ, "__name__", CPU_NAME};
    assert_int_equal(select_count(db, &job, 1, INT64_MIN, INT64_MAX), MANY_SERIES);
    assert_int_equal(select_count(db, &name, 1, INT64_MIN, INT64_MAX), MANY_SERIES);
    assert_int_equal(select_count(db, two, 2, INT64_MIN, INT64_MAX), MANY_SERIES - 1);
    assert_int_equal(select_count(db, &ones, 1, INT64_MIN, INT64_MAX), 1 + 10 + 100);
    assert_int_equal(select_count(db, NULL, 0, INT64_MIN, INT64_MAX), MANY_SERIES);
    tsdb_reader *r = reader_ok(db);
    tsdb_strings s;
    firn_err err = {0};
    assert_int_equal(tsdb_label_values(r, "i", NULL, 0, INT64_MIN, INT64_MAX, &s, &err), 0);
    assert_int_equal(s.n, MANY_SERIES);
    for (size_t i = 1; i < s.n; i++)
        assert_true(strcmp(s.v[i - 1], s.v[i]) < 0);
    tsdb_strings_free(&s);
    /* all of them merge into one profile */
    tsdb_series_set set;
    select_ok(r, &job, 1, INT64_MIN, INT64_MAX, &set);
    uint64_t *ids = malloc(set.n * sizeof *ids);
    assert_non_null(ids);
    for (size_t i = 0; i < set.n; i++)
        ids[i] = set.series[i].id;
    pprof_profile *m = merge_ok(r, ids, set.n, INT64_MIN, INT64_MAX, false, NULL);
    assert_int_equal(total_of(m, 0), MANY_SERIES);
    assert_int_equal(m->n_samples, 1);
    pprof_free(m);
    free(ids);
    tsdb_series_set_free(&set);
    tsdb_reader_close(r);
    tsdb_close(db);
    pprof_free(p);
}

/* Decodes block b (as stored) into fresh arrays; -1 on a malformed one. */
static int block_roundtrip(const firn_buf *b, uint64_t *n, uint32_t **stacks, uint32_t **ls,
                           int64_t **values)
{
    MDB_val v = {b->len, b->data};
    struct block_reader br;
    struct block_scratch scratch = {0};
    int rc = tsdb_block_open(&br, &v, &scratch);
    if (rc == 0) {
        *n = br.n;
        *stacks = calloc(br.n + 1, sizeof **stacks);
        *ls = calloc(br.n + 1, sizeof **ls);
        *values = calloc(br.n + 1, sizeof **values);
        assert_non_null(*stacks);
        assert_non_null(*ls);
        assert_non_null(*values);
        rc = tsdb_block_decode(&br, *stacks, *ls, *values);
    }
    tsdb_block_scratch_free(&scratch);
    return rc;
}

/* The column decoder takes runs of eight one-byte varints at once and the
 * rest one at a time: blocks whose stack deltas and value quotients mix
 * one- and multi-byte varints at every offset, stack ids up to UINT32_MAX
 * (where eight deltas could overflow), and gcds past INT64_MAX / 64 decode
 * to exactly the samples encoded. */
static void test_block_columns(void **state)
{
    (void)state;
    ZSTD_CCtx *z = ZSTD_createCCtx();
    assert_non_null(z);
    const size_t sizes[] = {1, 7, 8, 9, 15, 16, 17, 100, 1000, 5003};
    for (int shape = 0; shape < 4; shape++)
        for (size_t si = 0; si < sizeof sizes / sizeof sizes[0]; si++) {
            size_t n = sizes[si];
            struct block_sample *in = calloc(n, sizeof *in);
            int64_t *want = calloc(n, sizeof *want);
            uint32_t *want_stack = calloc(n, sizeof *want_stack);
            assert_true(in && want && want_stack);
            uint64_t rng = 0x9e3779b97f4a7c15ull + n + (uint64_t)shape;
            /* shape 3 ends at UINT32_MAX; the others start at 0 */
            uint32_t stack = shape == 3 ? UINT32_MAX - (uint32_t)(n - 1) : 0;
            for (size_t i = 0; i < n; i++) {
                rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
                if (i && shape != 3)
                    stack += rng % 11 == 0 ? 200 + (uint32_t)(rng % 5000) : 1 + (uint32_t)(rng % 3);
                else if (i)
                    stack++;
                int64_t q = (int64_t)(rng >> 8 & 63) - 32;   /* one byte zigzagged */
                if (rng % 7 == 0)
                    q = (int64_t)(rng >> 20 & 0xffff) - 0x8000;   /* two or three */
                int64_t g = shape == 1 ? (INT64_C(1) << 58) : shape == 2 ? 3 : 10000000;
                if (shape == 1)   /* a gcd past INT64_MAX / 64: quotients -1, 0, 1 */
                    q = (int64_t)(rng >> 8 & 1) - (int64_t)(rng >> 9 & 1);
                in[i] = (struct block_sample){stack, 0, q * g};
                want_stack[i] = stack;
                want[i] = q * g;
            }
            /* encode sorts and may merge nothing: ids are distinct */
            firn_buf b = {0}, body = {0};
            size_t kept = tsdb_block_encode(&b, &body, z, in, n, 1, 1);
            assert_int_equal(kept, n);
            /* consecutive ids (shape 3) make a bitmap; gaps of hundreds
             * (shape 0) make deltas */
            bool bitmap = (unsigned char)b.data[1] & BLOCK_STACK_BITMAP;
            if (shape == 3 && n >= 7)
                assert_true(bitmap);
            if (shape == 0 && n >= 100)
                assert_false(bitmap);
            uint64_t got_n = 0;
            uint32_t *stacks = NULL, *ls = NULL;
            int64_t *values = NULL;
            assert_int_equal(block_roundtrip(&b, &got_n, &stacks, &ls, &values), 0);
            assert_int_equal(got_n, n);
            for (size_t i = 0; i < n; i++) {
                assert_int_equal(stacks[i], want_stack[i]);
                assert_int_equal(ls[i], 0);
                assert_true(values[i] == want[i]);
            }
            free(stacks);
            free(ls);
            free(values);
            firn_buf_free(&b);
            firn_buf_free(&body);
            free(in);
            free(want);
            free(want_stack);
        }

    /* an empty profile's block (an idle process's CPU profile) decodes into
     * no arrays at all: the store's scans pass NULL when there are no
     * samples, and nothing may be written through them (UBSan checks) */
    struct block_sample none[1] = {{0, 0, 0}};
    firn_buf eb = {0}, ebody = {0};
    assert_int_equal(tsdb_block_encode(&eb, &ebody, z, none, 0, 1, 1), 0);
    MDB_val ev = {eb.len, eb.data};
    struct block_reader ebr;
    struct block_scratch escratch = {0};
    assert_int_equal(tsdb_block_open(&ebr, &ev, &escratch), 0);
    assert_int_equal(ebr.n, 0);
    assert_int_equal(tsdb_block_decode(&ebr, NULL, NULL, NULL), 0);
    tsdb_block_scratch_free(&escratch);
    firn_buf_free(&eb);
    firn_buf_free(&ebody);

    /* label sets of one stack repeat its id: deltas, whatever the density */
    struct block_sample lab[40];
    for (uint32_t i = 0; i < 40; i++)
        lab[i] = (struct block_sample){i / 2, i % 2 + 1, 3 * (int64_t)i + 1};
    firn_buf lb = {0}, lbody = {0};
    assert_int_equal(tsdb_block_encode(&lb, &lbody, z, lab, 40, 1, 1), 40);
    assert_false((unsigned char)lb.data[1] & BLOCK_STACK_BITMAP);
    {
        uint64_t ln;
        uint32_t *st = NULL, *ls = NULL;
        int64_t *vs = NULL;
        assert_int_equal(block_roundtrip(&lb, &ln, &st, &ls, &vs), 0);
        for (uint32_t i = 0; i < 40; i++) {
            assert_int_equal(st[i], i / 2);
            assert_int_equal(ls[i], i % 2 + 1);
            assert_int_equal(vs[i], 3 * (int64_t)i + 1);
        }
        free(st);
        free(ls);
        free(vs);
    }
    firn_buf_free(&lb);
    firn_buf_free(&lbody);
    ZSTD_freeCCtx(z);

    /* Hand-made raw bitmap columns (first id, length, bits), then values:
     * a count the bits disagree with, a bitmap past the body, and an id
     * past UINT32_MAX are corrupt; spare high bits of the last byte past
     * UINT32_MAX are not. */
    const struct {
        unsigned char blk[32];
        size_t len;
        int want;
    } bm[] = {
        /* n 3: first 10, one byte 0b111, values 1 2 3 */
        {{BLOCK_VERSION, BLOCK_STACK_BITMAP, 3, 0, 0, 0, 1, 10, 1, 0x07, 2, 4, 6}, 13, 0},
        /* n 3 but four bits */
        {{BLOCK_VERSION, BLOCK_STACK_BITMAP, 3, 0, 0, 0, 1, 10, 1, 0x0f, 2, 4, 6}, 13, -1},
        /* n 3 but two bits */
        {{BLOCK_VERSION, BLOCK_STACK_BITMAP, 3, 0, 0, 0, 1, 10, 1, 0x05, 2, 4, 6}, 13, -1},
        /* a length of 9 bytes in a body of 5 */
        {{BLOCK_VERSION, BLOCK_STACK_BITMAP, 3, 0, 0, 0, 1, 10, 9, 0x07, 2, 4, 6}, 13, -1},
        /* first UINT32_MAX - 1, bits 0 1 2: the third is past UINT32_MAX */
        {{BLOCK_VERSION, BLOCK_STACK_BITMAP, 3, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 1,
          0x07, 2, 4, 6}, 17, -1},
        /* first UINT32_MAX - 1, bits 0 1 (of a byte whose other bits would
         * be past it) */
        {{BLOCK_VERSION, BLOCK_STACK_BITMAP, 2, 0, 0, 0, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f, 1,
          0x03, 2, 4}, 16, 0},
    };
    for (size_t i = 0; i < sizeof bm / sizeof bm[0]; i++) {
        firn_buf bb = {.data = (char *)bm[i].blk, .len = bm[i].len};
        uint64_t bn = 0;
        uint32_t *st = NULL, *ls = NULL;
        int64_t *vs = NULL;
        assert_int_equal(block_roundtrip(&bb, &bn, &st, &ls, &vs), bm[i].want);
        if (bm[i].want == 0 && bn == 3) {
            for (uint32_t k = 0; k < 3; k++) {
                assert_int_equal(st[k], 10 + k);
                assert_int_equal(vs[k], k + 1);
            }
        } else if (bm[i].want == 0) {
            assert_int_equal(st[0], UINT32_MAX - 1);
            assert_int_equal(st[1], UINT32_MAX);
        }
        free(st);
        free(ls);
        free(vs);
    }

    /* Hand-made raw (uncompressed) version 2 bodies.  Eight one-byte
     * deltas after a stack id of UINT32_MAX - 16 pass UINT32_MAX: corrupt. */
    static const unsigned char over[] = {
        BLOCK_VERSION, 0, 9, 0, 0, 0, 1,                        /* n 9, gcd 1 */
        0xef, 0xff, 0xff, 0xff, 0x0f,                           /* UINT32_MAX - 16 */
        2, 2, 2, 2, 2, 2, 2, 127,                               /* + 141 */
        0, 0, 0, 0, 0, 0, 0, 0, 0};                             /* values */
    firn_buf hb = {.data = (char *)over, .len = sizeof over};
    uint64_t hn;
    uint32_t *hs = NULL, *hl = NULL;
    int64_t *hv = NULL;
    assert_int_equal(block_roundtrip(&hb, &hn, &hs, &hl, &hv), -1);
    free(hs);
    free(hl);
    free(hv);
    /* Quotients -64 and 63 (one byte each) times a gcd of INT64_MAX / 32
     * do not fit: they saturate; times INT64_MAX / 64 they are exact. */
    for (int big = 0; big < 2; big++) {
        uint64_t g = big ? (uint64_t)INT64_MAX / 32 : (uint64_t)INT64_MAX / 64;
        unsigned char blk[64] = {BLOCK_VERSION, 0, 8, 0, 0, 0};
        size_t k = 6;
        for (uint64_t v = g; ; v >>= 7) {   /* the gcd, a varint */
            blk[k++] = (unsigned char)(v & 0x7f) | (v >= 0x80 ? 0x80 : 0);
            if (v < 0x80)
                break;
        }
        for (int i = 0; i < 8; i++)
            blk[k++] = 1;                            /* stacks 1, 2, ..., 8 */
        for (int i = 0; i < 8; i++)
            blk[k++] = i % 2 ? 126 : 127;            /* 63 and -64, zigzagged */
        firn_buf bb = {.data = (char *)blk, .len = k};
        assert_int_equal(block_roundtrip(&bb, &hn, &hs, &hl, &hv), 0);
        for (int i = 0; i < 8; i++) {
            assert_int_equal(hs[i], (uint32_t)i + 1);
            int64_t want = big ? (i % 2 ? INT64_MAX : INT64_MIN)
                               : (i % 2 ? 63 : -64) * (int64_t)g;
            assert_true(hv[i] == want);
        }
        free(hs);
        free(hl);
        free(hv);
    }
}

static void test_extreme_values(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    static const int64_t v0[] = {-7, 14, 21}, v1[] = {INT64_MIN}, v2[] = {INT64_MAX, 1},
                         v3[] = {0, 5}, v4[] = {INT64_MIN, INT64_MAX}, v5[] = {-3, -9};
    const struct {
        const int64_t *v;
        size_t n;
        int64_t total;
    } cases[] = {{v0, 3, 28},         {v1, 1, INT64_MIN}, {v2, 2, INT64_MAX},
                 {v3, 2, 5},          {v4, 2, -1},        {v5, 2, -12}};
    const size_t n_cases = sizeof cases / sizeof *cases;
    firn_label a[] = {{"job", "v"}};
    pprof_profile *ps[6];
    for (size_t i = 0; i < n_cases; i++) {
        ps[i] = tiny_profile(cases[i].v, cases[i].n);
        append_ok(db, ps[i], a, 1, "process_cpu", 1000 * (int64_t)(i + 1));
    }
    tsdb_reader *r = reader_ok(db);
    uint64_t id = series_id(r, CPU_NAME, "job", "v");
    struct scan_acc s = scan(r, id, INT64_MIN, INT64_MAX, TSDB_SCAN_TOTALS);
    assert_int_equal(s.blocks, n_cases);
    for (size_t i = 0; i < n_cases; i++) {
        assert_int_equal(s.totals[i], cases[i].total);
        firn_err err = {0};
        pprof_profile *p = tsdb_profile_at(r, id, 1000 * (int64_t)(i + 1), &err);
        if (!p)
            fail_msg("profile_at case %zu: %s", i, err.msg);
        assert_same_samples(p, 0, ps[i], 0);
        pprof_free(p);
    }
    tsdb_reader_close(r);
    tsdb_close(db);
    for (size_t i = 0; i < n_cases; i++)
        pprof_free(ps[i]);
}

static void test_empty_stack_sample(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    /* one sample without locations (pprof allows it), one with */
    pprof_builder *b = pprof_builder_new(1);
    pprof_builder_sample_type(b, 0, "cpu", "nanoseconds");
    pprof_builder_period(b, "cpu", "nanoseconds", 1);
    pprof_function f = {.name = pprof_builder_string(b, "main", 4)};
    pprof_line l = {.function = pprof_builder_function(b, &f)};
    pprof_location loc = {.mapping = PPROF_NONE, .lines = &l, .n_lines = 1};
    uint32_t stack[1] = {pprof_builder_location(b, &loc)};
    int64_t v0 = 5, v1 = 7;
    assert_int_equal(pprof_builder_sample(b, NULL, 0, &v0, NULL, 0), 0);
    assert_int_equal(pprof_builder_sample(b, stack, 1, &v1, NULL, 0), 0);
    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    assert_non_null(p);
    firn_label a[] = {{"job", "a"}};
    append_ok(db, p, a, 1, "process_cpu", 1000);
    append_ok(db, p, a, 1, "process_cpu", 2000);
    tsdb_reader *r = reader_ok(db);
    uint64_t id = series_id(r, CPU_NAME, "job", "a");
    pprof_profile *at = tsdb_profile_at(r, id, 1000, &err);
    if (!at)
        fail_msg("profile_at: %s", err.msg);
    assert_same_samples(at, 0, p, 0);
    pprof_free(at);
    pprof_profile *m = merge_ok(r, &id, 1, INT64_MIN, INT64_MAX, false, NULL);
    assert_int_equal(total_of(m, 0), 24);
    assert_int_equal(m->n_samples, 2);
    pprof_free(m);
    tsdb_reader_close(r);
    tsdb_close(db);
    pprof_free(p);
}

/* Rewrites blocks of a closed store: the first stored raw and the first
 * compressed one (flag bit 4 of a version 2 block header, 2 of a version
 * 1 one, see tsdb/internal.h). */
static void raw_corrupt_blocks(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *c;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "samples", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    unsigned char raw_key[16], deflated_key[16], deflated[65536];
    size_t deflated_len = 0;
    bool have_raw = false, have_deflated = false;
    MDB_val k, v;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        assert_int_equal(k.mv_size, 16);
        const unsigned char *b = v.mv_data;
        if (!(b[1] & 6) && !have_raw) {
            memcpy(raw_key, k.mv_data, 16);
            have_raw = true;
        } else if ((b[1] & 6) && !have_deflated && v.mv_size <= sizeof deflated) {
            memcpy(deflated_key, k.mv_data, 16);
            memcpy(deflated, v.mv_data, v.mv_size);
            deflated_len = v.mv_size;
            have_deflated = true;
        }
    }
    mdb_cursor_close(c);
    assert_true(have_raw && have_deflated);
    /* a header whose sample count runs past the end */
    unsigned char garbage[] = {1, 0, 0xff, 0xff, 0xff};
    MDB_val rk = {16, raw_key}, rv = {sizeof garbage, garbage};
    assert_int_equal(mdb_put(txn, dbi, &rk, &rv, 0), 0);
    /* a compressed body with its tail scrambled: the header is intact */
    for (size_t i = deflated_len - 16; i < deflated_len; i++)
        deflated[i] ^= 0x5a;
    MDB_val dk = {16, deflated_key}, dv = {deflated_len, deflated};
    assert_int_equal(mdb_put(txn, dbi, &dk, &dv, 0), 0);
    /* the raw block's copy of its header in "totals" gets the same garbage,
     * and so does its point's chunk (the only point: the same key) */
    MDB_dbi totals;
    assert_int_equal(mdb_dbi_open(txn, "totals", 0, &totals), 0);
    assert_int_equal(mdb_put(txn, totals, &rk, &rv, 0), 0);
    assert_int_equal(mdb_dbi_open(txn, "chunks", 0, &totals), 0);
    MDB_val cv = rv;   /* a refused put points it at what is there */
    assert_int_equal(mdb_put(txn, totals, &rk, &cv, MDB_NOOVERWRITE), MDB_KEYEXIST);
    assert_int_equal(mdb_put(txn, totals, &rk, &rv, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

/* Deletes every stack symbol of a closed store. */
/* Deletes every symbol of one kind, as a damaged store may lack them. */
static void raw_delete_symbols(const char *dir, enum sym_kind kind)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    MDB_cursor *c;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "symbols", 0, &dbi), 0);
    assert_int_equal(mdb_cursor_open(txn, dbi, &c), 0);
    MDB_val k, v;
    int deleted = 0;
    for (int rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); rc == 0;) {
        if (((unsigned char *)k.mv_data)[4] == kind) {
            assert_int_equal(mdb_cursor_del(c, 0), 0);
            deleted++;
            rc = mdb_cursor_get(c, &k, &v, MDB_GET_CURRENT);
        } else {
            rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
        }
    }
    mdb_cursor_close(c);
    assert_true(deleted > 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}

static void test_corrupt_store(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    pprof_profile *cpu = decode_fixture(FX_CPU), *labeled = decode_fixture(FX_LABELS);
    firn_label a[] = {{"job", "a"}}, b[] = {{"job", "b"}};
    append_ok(db, cpu, a, 1, "process_cpu", 1000);       /* small bodies: raw */
    append_ok(db, labeled, b, 1, "process_cpu", 1000);   /* large bodies: deflated */
    tsdb_close(db);
    raw_corrupt_blocks(dir);

    db = open_path(dir);
    tsdb_reader *r = reader_ok(db);
    tsdb_series_set set;
    select_ok(r, NULL, 0, INT64_MIN, INT64_MAX, &set);
    assert_int_equal(set.n, 4);
    int bad_full = 0, bad_totals = 0;
    for (size_t i = 0; i < set.n; i++) {
        struct scan_acc acc;
        memset(&acc, 0, sizeof acc);
        firn_err err = {0};
        int rc = tsdb_scan(r, set.series[i].id, INT64_MIN, INT64_MAX, 0, scan_acc_fn, &acc,
                           &err);
        if (rc < 0) {
            assert_int_equal(rc, FIRN_EIO);
            assert_non_null(strstr(err.msg, "corrupt block"));
            bad_full++;
            firn_err_clear(&err);
            assert_null(tsdb_merge(r, &set.series[i].id, 1, INT64_MIN, INT64_MAX, NULL, NULL,
                                   &err));
            assert_non_null(strstr(err.msg, "corrupt block"));
            firn_err_clear(&err);
            assert_null(tsdb_profile_at(r, set.series[i].id, 1000, &err));
            assert_true(err.code < 0);
        }
        firn_err_clear(&err);
        if (tsdb_scan(r, set.series[i].id, INT64_MIN, INT64_MAX, TSDB_SCAN_TOTALS, scan_acc_fn,
                      &acc, &err) < 0)
            bad_totals++;
    }
    assert_int_equal(bad_full, 2);
    /* the garbage header is in the chunk too; the scrambled body's header is intact */
    assert_int_equal(bad_totals, 1);
    tsdb_series_set_free(&set);
    tsdb_reader_close(r);
    tsdb_close(db);

    /* symbols missing under intact blocks: an error naming them, the
     * deepest kind (functions) as the stacks */
    raw_delete_symbols(dir, SYM_FUNCTION);
    db = open_path(dir);
    r = reader_ok(db);
    select_ok(r, NULL, 0, INT64_MIN, INT64_MAX, &set);
    int fn_missing = 0;
    for (size_t i = 0; i < set.n; i++) {
        firn_err err = {0};
        pprof_profile *m =
            tsdb_merge(r, &set.series[i].id, 1, INT64_MIN, INT64_MAX, NULL, NULL, &err);
        if (m) {
            pprof_free(m);
            continue;
        }
        if (strstr(err.msg, "function") && strstr(err.msg, "missing or corrupt"))
            fn_missing++;
        else
            assert_non_null(strstr(err.msg, "corrupt block"));
    }
    assert_int_equal(fn_missing, 2);
    tsdb_series_set_free(&set);
    tsdb_reader_close(r);
    tsdb_close(db);
    raw_delete_symbols(dir, SYM_STACK);
    db = open_path(dir);
    r = reader_ok(db);
    select_ok(r, NULL, 0, INT64_MIN, INT64_MAX, &set);
    int missing = 0;
    for (size_t i = 0; i < set.n; i++) {
        firn_err err = {0};
        pprof_profile *m =
            tsdb_merge(r, &set.series[i].id, 1, INT64_MIN, INT64_MAX, NULL, NULL, &err);
        if (m) {
            pprof_free(m);
            continue;
        }
        if (strstr(err.msg, "missing or corrupt"))
            missing++;
        else
            assert_non_null(strstr(err.msg, "corrupt block"));
    }
    assert_int_equal(missing, 2);
    const char **names;
    size_t n;
    firn_err err = {0};
    assert_true(tsdb_stack_functions(r, 0, 1, &names, &n, &err) < 0);
    assert_non_null(strstr(err.msg, "missing or corrupt"));
    tsdb_series_set_free(&set);
    tsdb_reader_close(r);
    tsdb_close(db);

    pprof_free(cpu);
    pprof_free(labeled);
}

/* ---- 13. pprof_builder ----------------------------------------------------- */

/* ---- float series ------------------------------------------------------- */

struct float_pts {
    int64_t t[16];
    uint64_t bits[16];
    size_t n;
};

static int collect_float(void *ctx, int64_t t, double v)
{
    struct float_pts *p = ctx;
    assert_true(p->n < 16);
    p->t[p->n] = t;
    memcpy(&p->bits[p->n], &v, sizeof v);
    p->n++;
    return 0;
}

static struct float_pts floats_of(tsdb *db, uint64_t id)
{
    struct float_pts p = {0};
    tsdb_reader *r = reader_ok(db);
    firn_err err = {0};
    if (tsdb_scan_floats(r, id, INT64_MIN, INT64_MAX, collect_float, &p, &err) < 0)
        fail_msg("scan_floats: %s", err.msg);
    tsdb_reader_close(r);
    return p;
}

static uint64_t bits_of(double v)
{
    uint64_t b;
    memcpy(&b, &v, sizeof b);
    return b;
}

static void test_float_series(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    firn_label rec[] = {{"job", "api"}, {"__name__", "job:cpu:share"}, {"empty", ""}};
    firn_label rec2[] = {{"__name__", "job:cpu:share"}, {"job", "db"}};
    tsdb_float_sample s[] = {
        {rec, 3, 2000, 0.25},
        {rec, 3, 1000, -1.5},   /* out of order within the call: kept, stored in order */
        {rec2, 2, 1000, 1e300},
        {rec, 3, 3000, tsdb_stale_nan()},
    };
    size_t dropped = 99;
    firn_err err = {0};
    if (tsdb_append_floats(db, s, N(s), &dropped, &err) != 0)
        fail_msg("append_floats: %s", err.msg);
    assert_int_equal(dropped, 0);

    /* the same value again is a no-op; another value at a held timestamp is dropped */
    tsdb_float_sample again[] = {{rec, 3, 2000, 0.25}, {rec, 3, 1000, 7}, {rec, 3, 4000, 8}};
    assert_int_equal(tsdb_append_floats(db, again, N(again), &dropped, &err), 0);
    assert_int_equal(dropped, 1);

    /* selection, labels and postings as for profile series; the empty label is gone */
    tsdb_reader *r = reader_ok(db);
    struct mspec name = {FIRN_MATCH_EQ, "__name__", "job:cpu:share"};
    tsdb_series_set set;
    select_ok(r, &name, 1, INT64_MIN, INT64_MAX, &set);
    assert_int_equal(set.n, 2);
    assert_true(set.series[0].floats && set.series[1].floats);
    assert_int_equal(set.series[0].n_labels, 2);
    assert_string_equal(set.series[0].labels[1].value, "api");
    assert_int_equal(set.series[0].min_time_ms, 1000);
    assert_int_equal(set.series[0].max_time_ms, 4000);
    uint64_t api = set.series[0].id, dbs = set.series[1].id;
    tsdb_series_set_free(&set);
    /* a range between none of db's samples selects only api */
    select_ok(r, &name, 1, 1500, 2500, &set);
    assert_int_equal(set.n, 1);
    assert_int_equal(set.series[0].id, api);
    tsdb_series_set_free(&set);
    tsdb_strings vals;
    assert_int_equal(tsdb_label_values(r, "job", NULL, 0, INT64_MIN, INT64_MAX, &vals, &err), 0);
    const char *want_jobs[] = {"api", "db"};
    strings_equal(&vals, want_jobs, 2);
    tsdb_strings_free(&vals);
    tsdb_reader_close(r);

    struct float_pts p = floats_of(db, api);
    assert_int_equal(p.n, 4);
    int64_t want_t[] = {1000, 2000, 3000, 4000};
    uint64_t want_b[] = {bits_of(-1.5), bits_of(0.25), TSDB_STALE_NAN_BITS, bits_of(8)};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(p.t[i], want_t[i]);
        assert_true(p.bits[i] == want_b[i]);
    }
    assert_true(tsdb_is_stale(tsdb_stale_nan()));
    assert_false(tsdb_is_stale(NAN));
    p = floats_of(db, dbs);
    assert_int_equal(p.n, 1);
    assert_true(p.bits[0] == bits_of(1e300));

    /* kinds never mix, and a refused call stores nothing of itself */
    pprof_profile *cpu = decode_fixture(FX_CPU);
    firn_label job[] = {{"job", "x"}};
    append_ok(db, cpu, job, 1, "process_cpu", 5000);
    firn_label prof[] = {{"__name__", CPU_NAME}, {"job", "x"}};
    firn_label fresh[] = {{"__name__", "fresh"}};
    tsdb_float_sample mixed[] = {{fresh, 1, 5000, 1}, {prof, 2, 6000, 1}};
    assert_int_equal(tsdb_append_floats(db, mixed, N(mixed), NULL, &err), FIRN_EINVAL);
    assert_non_null(strstr(err.msg, "is a profile series"));
    struct mspec fm = {FIRN_MATCH_EQ, "__name__", "fresh"};
    assert_int_equal(select_count(db, &fm, 1, INT64_MIN, INT64_MAX), 0);
    firn_label as_profile[] = {{"job", "api"}};
    tsdb_float_sample cpu_named[] = {{(firn_label[]){{"__name__", "process_cpu:samples:count:cpu:nanoseconds"}, {"job", "api"}}, 2, 1000, 1}};
    assert_int_equal(tsdb_append_floats(db, cpu_named, 1, NULL, &err), 0);
    append_refused(db, cpu, as_profile, 1, "process_cpu", 1000, "is a float series");

    /* no __name__, bad labels */
    firn_label noname[] = {{"job", "a"}};
    tsdb_float_sample bad1[] = {{noname, 1, 1000, 1}};
    assert_int_equal(tsdb_append_floats(db, bad1, 1, NULL, &err), FIRN_EINVAL);
    assert_non_null(strstr(err.msg, "no __name__"));
    firn_label badname[] = {{"__name__", "x"}, {"1bad", "a"}};
    tsdb_float_sample bad2[] = {{badname, 2, 1000, 1}};
    assert_int_equal(tsdb_append_floats(db, bad2, 1, NULL, &err), FIRN_EINVAL);
    tsdb_stats st = stats_of(db);
    assert_int_equal(st.float_samples_total, 6);
    assert_int_equal(st.float_samples_dropped_total, 1);
    pprof_free(cpu);

    /* durable across a reopen */
    tsdb_close(db);
    db = open_path(dir);
    p = floats_of(db, api);
    assert_int_equal(p.n, 4);
    assert_true(p.bits[3] == bits_of(8));
    tsdb_close(db);
}

static void test_float_retention(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.partition_ms = 1000;
    o.retention_ms = 5000;
    tsdb *db = open_ok(&o);
    const int64_t T = (firn_now_ms() / 1000 + 1) * 1000;
    firn_label a[] = {{"__name__", "r"}, {"k", "a"}}, b[] = {{"__name__", "r"}, {"k", "b"}};
    tsdb_float_sample s[] = {{a, 2, T, 1}, {a, 2, T + 4000, 2}, {b, 2, T, 3}};
    size_t dropped;
    firn_err err = {0};
    assert_int_equal(tsdb_append_floats(db, s, N(s), &dropped, &err), 0);
    assert_int_equal(dropped, 0);
    /* older than the retention of the wall clock: dropped and counted */
    tsdb_float_sample old[] = {{a, 2, T - 60000, 1}};
    assert_int_equal(tsdb_append_floats(db, old, 1, &dropped, &err), 0);
    assert_int_equal(dropped, 1);
    uint64_t deleted = 0;
    assert_int_equal(tsdb_retention_run(db, T + 6000, &deleted, &err), 0);
    assert_int_equal(deleted, 2);
    struct mspec m = {FIRN_MATCH_EQ, "__name__", "r"};
    tsdb_reader *r = reader_ok(db);
    tsdb_series_set set;
    select_ok(r, &m, 1, INT64_MIN, INT64_MAX, &set);
    assert_int_equal(set.n, 1);   /* b lost its only sample, and the series */
    assert_string_equal(set.series[0].labels[1].value, "a");
    assert_int_equal(set.series[0].min_time_ms, T + 4000);
    uint64_t id = set.series[0].id;
    tsdb_series_set_free(&set);
    tsdb_reader_close(r);
    struct float_pts p = floats_of(db, id);
    assert_int_equal(p.n, 1);
    assert_true(p.bits[0] == bits_of(2));
    tsdb_close(db);
}

static uint32_t raw_schema_version(const char *dir)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    MDB_val k = {strlen("schema_version"), "schema_version"}, v;
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    uint32_t ver;
    assert_int_equal(v.mv_size, sizeof ver);
    memcpy(&ver, v.mv_data, sizeof ver);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return ver;
}

/* A version 2 store (no floats database): read-only opens read it as it is,
 * a writable open upgrades it in place (to version 4). */
static void test_schema_upgrade(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    firn_label job[] = {{"job", "x"}};
    append_ok(db, cpu, job, 1, "process_cpu", 5000);
    tsdb_close(db);
    pprof_free(cpu);
    /* make it what version 2 wrote */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "floats", 0, &dbi), 0);
    assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
    uint32_t v2 = 2;
    raw_put(dir, "meta", "schema_version", &v2, sizeof v2);

    tsdb_options o;
    test_options(&o, dir);
    o.read_only = true;
    db = open_ok(&o);
    struct mspec m = {FIRN_MATCH_EQ, "job", "x"};
    assert_int_equal(select_count(db, &m, 1, INT64_MIN, INT64_MAX), 2);
    tsdb_close(db);

    db = open_path(dir);   /* upgrades */
    firn_label f[] = {{"__name__", "f"}};
    tsdb_float_sample s[] = {{f, 1, 1000, 1}};
    firn_err err = {0};
    assert_int_equal(tsdb_append_floats(db, s, 1, NULL, &err), 0);
    assert_int_equal(select_count(db, &m, 1, INT64_MIN, INT64_MAX), 2);
    tsdb_close(db);
    assert_int_equal(raw_schema_version(dir), TSDB_SCHEMA_VERSION);
}

/* The samples of one block, copied by a scan. */
struct block_copy {
    uint32_t stacks[4096];
    int64_t values[4096];
    size_t n;
    int64_t duration_nanos, period;
};

static int block_copy_fn(void *ctx, const tsdb_block *b)
{
    struct block_copy *c = ctx;
    assert_true(b->n_samples <= N(c->stacks));
    memcpy(c->stacks, b->stacks, b->n_samples * sizeof *b->stacks);
    memcpy(c->values, b->values, b->n_samples * sizeof *b->values);
    c->n = b->n_samples;
    c->duration_nanos = b->duration_nanos;
    c->period = b->period;
    return 0;
}

static void put_varint(unsigned char **p, uint64_t v)
{
    for (; v >= 0x80; v >>= 7)
        *(*p)++ = (unsigned char)(v | 0x80);
    *(*p)++ = (unsigned char)v;
}

static void put_zigzag(unsigned char **p, int64_t v)
{
    put_varint(p, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

/* A version 1 block as schemas 2 and 3 wrote it (tsdb/internal.h): the
 * header, then one row (stack delta, value) per sample, the rows deflated
 * when deflate; values times scale, gcd 1.  *header_len: the bytes the
 * totals database keeps. */
static size_t v1_block(unsigned char *out, const struct block_copy *c, int64_t scale,
                       bool deflate, size_t *header_len)
{
    unsigned char rows[65536], *q = rows;
    int64_t total = 0;
    uint32_t prev = 0;
    for (size_t i = 0; i < c->n; i++) {
        put_varint(&q, c->stacks[i] - prev);
        prev = c->stacks[i];
        put_zigzag(&q, c->values[i] * scale);
        total += c->values[i] * scale;
    }
    unsigned char *p = out;
    *p++ = 1;
    *p++ = deflate ? 2 : 0;
    put_varint(&p, c->n);
    put_zigzag(&p, total);
    put_zigzag(&p, c->duration_nanos);
    put_zigzag(&p, c->period);
    put_varint(&p, 1);
    if (!deflate) {
        *header_len = (size_t)(p - out);
        memcpy(p, rows, (size_t)(q - rows));
        return (size_t)(p - out) + (size_t)(q - rows);
    }
    put_varint(&p, (uint64_t)(q - rows));
    *header_len = (size_t)(p - out);
    uLongf zlen = 65536;
    assert_int_equal(compress2(p, &zlen, rows, (uLong)(q - rows), 6), Z_OK);
    return (size_t)(p - out) + zlen;
}

static void raw_put_block(const char *dir, uint64_t series, int64_t ts, const unsigned char *b,
                          size_t len, size_t header_len)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi samples, totals;
    unsigned char key[16];
    for (int i = 0; i < 8; i++) {
        key[i] = (unsigned char)(series >> (56 - 8 * i));
        key[8 + i] = (unsigned char)((uint64_t)ts >> (56 - 8 * i));
    }
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "samples", 0, &samples), 0);
    assert_int_equal(mdb_dbi_open(txn, "totals", 0, &totals), 0);
    MDB_val k = {16, key}, v = {len, (void *)b}, h = {header_len, (void *)b};
    assert_int_equal(mdb_put(txn, samples, &k, &v, 0), 0);
    assert_int_equal(mdb_put(txn, totals, &k, &h, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);
}


/* A version 3 store holding version 1 blocks (rows, raw and deflated,
 * encoded here by hand): read as they are by a read-only open, then a
 * writable open records version 4 and rewrites nothing, and old and new
 * blocks merge together.  A version 5 store is refused. */
static void test_schema_v3_blocks(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    firn_label job[] = {{"job", "x"}};
    append_ok(db, cpu, job, 1, "process_cpu", 5000);
    tsdb_reader *r = reader_ok(db);
    uint64_t id = series_id(r, CPU_NAME, "job", "x");
    static struct block_copy c;
    firn_err err = {0};
    assert_int_equal(tsdb_scan(r, id, 5000, 5000, 0, block_copy_fn, &c, &err), 0);
    tsdb_reader_close(r);
    tsdb_close(db);
    assert_true(c.n > 1);
    int64_t total = 0;
    for (size_t i = 0; i < c.n; i++)
        total += c.values[i];
    /* what schema 3 would have written at 6000 (raw) and 7000 (deflated) */
    static unsigned char b[70000];
    size_t hl, len = v1_block(b, &c, 2, false, &hl);
    raw_put_block(dir, id, 6000, b, len, hl);
    len = v1_block(b, &c, 3, true, &hl);
    raw_put_block(dir, id, 7000, b, len, hl);
    uint32_t v3 = 3;
    raw_put(dir, "meta", "schema_version", &v3, sizeof v3);

    tsdb_options o;
    test_options(&o, dir);
    o.read_only = true;
    db = open_ok(&o);
    r = reader_ok(db);
    struct scan_acc a = scan(r, id, INT64_MIN, INT64_MAX, 0);   /* checks each block's total */
    assert_int_equal(a.blocks, 3);
    assert_int_equal(a.samples, 3 * c.n);
    assert_int_equal(a.value_sum, 6 * total);
    assert_int_equal(scan(r, id, 7000, 7000, TSDB_SCAN_TOTALS).value_sum, 0);
    assert_int_equal(scan(r, id, 7000, 7000, TSDB_SCAN_TOTALS).totals[0], 3 * total);
    tsdb_reader_close(r);
    tsdb_close(db);
    assert_int_equal(raw_schema_version(dir), 3);   /* a read-only open changes nothing */

    db = open_path(dir);   /* upgrades */
    append_ok(db, cpu, job, 1, "process_cpu", 8000);
    r = reader_ok(db);
    pprof_profile *m = merge_ok(r, &id, 1, INT64_MIN, INT64_MAX, false, NULL);
    assert_int_equal(total_of(m, 0), 7 * total);
    /* every stack of the hand-made blocks is one of the appended ones */
    assert_int_equal(m->n_samples, c.n);
    pprof_free(m);
    tsdb_reader_close(r);
    tsdb_close(db);
    assert_int_equal(raw_schema_version(dir), 6);

    uint32_t v7 = 7;
    raw_put(dir, "meta", "schema_version", &v7, sizeof v7);
    test_options(&o, dir);
    open_refused(&o, "schema version 7; this firn reads versions 2 to 6", NULL);
    pprof_free(cpu);
}

/* The stored block of series id at ts, copied into out (room for size). */
static size_t raw_get_block(const char *dir, uint64_t series, int64_t ts, unsigned char *out,
                            size_t size)
{
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi samples;
    unsigned char key[16];
    for (int i = 0; i < 8; i++) {
        key[i] = (unsigned char)(series >> (56 - 8 * i));
        key[8 + i] = (unsigned char)((uint64_t)ts >> (56 - 8 * i));
    }
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 16), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "samples", 0, &samples), 0);
    MDB_val k = {16, key}, v;
    assert_int_equal(mdb_get(txn, samples, &k, &v), 0);
    assert_true(v.mv_size <= size);
    memcpy(out, v.mv_data, v.mv_size);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    return v.mv_size;
}

/* A version 5 store, whose blocks have the stack column as deltas (made
 * here by hand, uncompressed, in place of the block the append wrote with
 * a bitmap): read as it is by a read-only open; a writable open records
 * version 6 and rewrites nothing; the same profile appended again is still
 * a duplicate though its new encoding differs from the stored one. */
static void test_schema_v5_blocks(void **state)
{
    const char *dir = *state;
    tsdb *db = open_path(dir);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    firn_label job[] = {{"job", "x"}};
    append_ok(db, cpu, job, 1, "process_cpu", 5000);
    tsdb_reader *r = reader_ok(db);
    uint64_t id = series_id(r, CPU_NAME, "job", "x");
    static struct block_copy c;
    firn_err err = {0};
    assert_int_equal(tsdb_scan(r, id, 5000, 5000, 0, block_copy_fn, &c, &err), 0);
    pprof_profile *want = merge_ok(r, &id, 1, INT64_MIN, INT64_MAX, false, NULL);
    tsdb_reader_close(r);
    tsdb_close(db);
    assert_true(c.n > 1);
    static unsigned char stored[1 << 20];
    raw_get_block(dir, id, 5000, stored, sizeof stored);
    assert_true(stored[1] & BLOCK_STACK_BITMAP);   /* a profile's ids are dense */

    /* what schema 5 wrote: deltas, then values (gcd 1), here raw */
    static unsigned char b[1 << 20];
    unsigned char *p = b;
    int64_t total = 0;
    for (size_t i = 0; i < c.n; i++)
        total += c.values[i];
    *p++ = BLOCK_VERSION;
    *p++ = 0;
    put_varint(&p, c.n);
    put_zigzag(&p, total);
    put_zigzag(&p, c.duration_nanos);
    put_zigzag(&p, c.period);
    put_varint(&p, 1);
    size_t hl = (size_t)(p - b);
    uint32_t prev = 0;
    for (size_t i = 0; i < c.n; i++) {
        put_varint(&p, c.stacks[i] - prev);
        prev = c.stacks[i];
    }
    for (size_t i = 0; i < c.n; i++)
        put_zigzag(&p, c.values[i]);
    raw_put_block(dir, id, 5000, b, (size_t)(p - b), hl);
    uint32_t v5 = 5;
    raw_put(dir, "meta", "schema_version", &v5, sizeof v5);

    tsdb_options o;
    test_options(&o, dir);
    o.read_only = true;
    db = open_ok(&o);
    r = reader_ok(db);
    pprof_profile *m = merge_ok(r, &id, 1, INT64_MIN, INT64_MAX, false, NULL);
    assert_int_equal(total_of(m, 0), total);
    assert_int_equal(m->n_samples, want->n_samples);
    pprof_free(m);
    tsdb_reader_close(r);
    tsdb_close(db);
    assert_int_equal(raw_schema_version(dir), 5);   /* a read-only open changes nothing */

    db = open_path(dir);   /* upgrades */
    assert_int_equal(raw_get_block(dir, id, 5000, stored, sizeof stored), (size_t)(p - b));
    assert_int_equal(memcmp(stored, b, (size_t)(p - b)), 0);   /* not rewritten */
    bool dup = false;
    tsdb_append_req again = {.labels = job, .n_labels = 1, .profile_name = "process_cpu",
                             .profile = cpu, .timestamp_ms = 5000, .duplicate = &dup};
    assert_int_equal(tsdb_append(db, &again, &err), 0);
    assert_true(dup);
    cpu->samples[0].values[1]++;
    append_refused(db, cpu, job, 1, "process_cpu", 5000, "already has a different profile");
    append_ok(db, cpu, job, 1, "process_cpu", 6000);
    r = reader_ok(db);
    m = merge_ok(r, &id, 1, INT64_MIN, INT64_MAX, false, NULL);
    assert_int_equal(total_of(m, 0), 2 * total + 1);
    pprof_free(m);
    tsdb_reader_close(r);
    tsdb_close(db);
    assert_int_equal(raw_schema_version(dir), 6);
    pprof_free(want);
    pprof_free(cpu);
}

/* Functions added as distinct keep their order and content, one entry
 * each, as pprof_builder_function would have added them (none equal). */
static void test_pprof_builder_distinct(void **state)
{
    (void)state;
    pprof_builder *b = pprof_builder_new(1);
    int64_t s_a = pprof_builder_string(b, "a", 1), s_f = pprof_builder_string(b, "a.go", 4);
    pprof_function fa = {.id = 9, .name = s_a, .filename = s_f, .start_line = 3};
    pprof_function fb = {.id = 9, .name = s_f, .filename = s_a, .start_line = 4};
    assert_int_equal(pprof_builder_function_distinct(b, &fa), 0);
    assert_int_equal(pprof_builder_function_distinct(b, &fb), 1);
    pprof_line l = {.function = 1, .line = 7};
    pprof_location loc = {.mapping = PPROF_NONE, .address = 0x10, .lines = &l, .n_lines = 1};
    uint32_t li = pprof_builder_location(b, &loc);
    int64_t v = 5;
    pprof_builder_sample(b, &li, 1, &v, NULL, 0);
    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    assert_int_equal(p->n_functions, 2);
    assert_int_equal(p->functions[0].id, 1);
    assert_int_equal(p->functions[1].id, 2);
    assert_string_equal(pprof_str(p, p->functions[0].name), "a");
    assert_string_equal(pprof_str(p, p->functions[0].filename), "a.go");
    assert_int_equal(p->functions[0].start_line, 3);
    assert_string_equal(pprof_str(p, p->functions[1].name), "a.go");
    assert_int_equal(p->functions[1].start_line, 4);
    assert_int_equal(p->locations[0].lines[0].function, 1);
    pprof_free(p);
}

static void test_pprof_builder(void **state)
{
    (void)state;
    pprof_builder *b = pprof_builder_new(2);
    assert_non_null(b);
    assert_int_equal(pprof_builder_string(b, "", 0), 0);
    int64_t s_main = pprof_builder_string(b, "main", 4);
    assert_true(s_main > 0);
    assert_int_equal(pprof_builder_string(b, "main", 4), s_main);
    assert_int_equal(pprof_builder_string(b, "main.go", 4), s_main);   /* by length */
    int64_t s_file = pprof_builder_string(b, "main.go", 7);
    int64_t s_foo = pprof_builder_string(b, "foo", 3);
    int64_t s_bin = pprof_builder_string(b, "/bin/app", 8);
    assert_true(s_file != s_main && s_foo != s_file && s_bin != s_foo);
    pprof_builder_sample_type(b, 0, "samples", "count");
    pprof_builder_sample_type(b, 1, "cpu", "nanoseconds");
    pprof_builder_sample_type(b, 2, "ignored", "ignored");   /* no such column */
    pprof_builder_period(b, "cpu", "nanoseconds", 10000000);
    pprof_builder_time(b, 123456789, 1000000000);

    pprof_function f_main = {.id = 77, .name = s_main, .filename = s_file, .start_line = 1};
    pprof_function f_foo = {.id = 78, .name = s_foo, .filename = s_file, .start_line = 10};
    uint32_t fm = pprof_builder_function(b, &f_main);
    uint32_t ff = pprof_builder_function(b, &f_foo);
    assert_int_not_equal(fm, ff);
    f_main.id = 99;   /* ids are ignored */
    assert_int_equal(pprof_builder_function(b, &f_main), fm);
    pprof_function f_main2 = f_main;
    f_main2.start_line = 2;
    uint32_t fm2 = pprof_builder_function(b, &f_main2);
    assert_true(fm2 != fm && fm2 != ff);

    pprof_mapping map = {.memory_start = 0x400000, .memory_limit = 0x500000,
                         .filename = s_bin, .has_functions = true};
    uint32_t mi = pprof_builder_mapping(b, &map);
    assert_int_equal(pprof_builder_mapping(b, &map), mi);
    pprof_mapping map2 = map;
    map2.has_line_numbers = true;
    assert_int_not_equal(pprof_builder_mapping(b, &map2), mi);

    pprof_line l_main = {.function = fm, .line = 5}, l_foo = {.function = ff, .line = 12};
    pprof_line inl[2] = {{.function = ff, .line = 13}, {.function = fm, .line = 6}};
    pprof_location loc_main = {.mapping = mi, .address = 0x401000, .lines = &l_main, .n_lines = 1};
    pprof_location loc_foo = {.mapping = mi, .address = 0x402000, .lines = &l_foo, .n_lines = 1};
    pprof_location loc_inl = {.mapping = mi, .address = 0x403000, .lines = inl, .n_lines = 2};
    pprof_location loc_raw = {.mapping = PPROF_NONE, .address = 0xdead};
    uint32_t lm = pprof_builder_location(b, &loc_main);
    uint32_t lf = pprof_builder_location(b, &loc_foo);
    uint32_t li = pprof_builder_location(b, &loc_inl);
    uint32_t lr = pprof_builder_location(b, &loc_raw);
    pprof_line l_main_copy = l_main;   /* equal content elsewhere in memory */
    pprof_location loc_main_copy = loc_main;
    loc_main_copy.lines = &l_main_copy;
    loc_main_copy.id = 1234;
    assert_int_equal(pprof_builder_location(b, &loc_main_copy), lm);
    l_main_copy.line = 6;
    uint32_t lm6 = pprof_builder_location(b, &loc_main_copy);
    assert_int_not_equal(lm6, lm);
    assert_int_equal(pprof_builder_location(b, &loc_raw), lr);

    int64_t k_thread = pprof_builder_string(b, "thread", 6);
    int64_t v_worker = pprof_builder_string(b, "worker", 6);
    int64_t k_bytes = pprof_builder_string(b, "bytes", 5);
    pprof_label labels[2] = {{.key = k_thread, .str = v_worker},
                             {.key = k_bytes, .num = 4096, .num_unit = k_bytes}};
    uint32_t st1[] = {lf, lm}, st2[] = {li}, st3[] = {lr, lm6};
    int64_t v1[] = {1, 10}, v2[] = {2, 20}, v3[] = {3, 30};
    assert_int_equal(pprof_builder_sample(b, st1, 2, v1, labels, 2), 0);
    assert_int_equal(pprof_builder_sample(b, st2, 1, v2, NULL, 0), 0);
    assert_int_equal(pprof_builder_sample(b, st3, 2, v3, labels, 1), 0);
    int64_t v4[] = {4, 40};
    assert_int_equal(pprof_builder_sample(b, NULL, 0, v4, NULL, 0), 0);   /* no stack */
    v1[0] = 999;   /* copied, not referenced */
    labels[0].str = 0;

    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    if (!p)
        fail_msg("finish: %s", err.msg);
    assert_int_equal(p->n_sample_types, 2);
    assert_string_equal(pprof_str(p, p->sample_types[1].type), "cpu");
    assert_string_equal(pprof_str(p, p->period_type.unit), "nanoseconds");
    assert_int_equal(p->period, 10000000);
    assert_int_equal(p->time_nanos, 123456789);
    assert_int_equal(p->duration_nanos, 1000000000);
    assert_string_equal(p->strings[0], "");
    /* "", main, main.go, foo, /bin/app, the four sample type strings
     * (cpu and nanoseconds once each), thread, worker, bytes */
    assert_int_equal(p->n_strings, 12);
    assert_int_equal(p->n_functions, 3);
    assert_int_equal(p->n_mappings, 2);
    assert_int_equal(p->n_locations, 5);
    assert_int_equal(p->n_samples, 4);
    assert_int_equal(p->samples[3].n_locations, 0);
    for (size_t i = 0; i < p->n_functions; i++)
        assert_int_equal(p->functions[i].id, i + 1);
    for (size_t i = 0; i < p->n_locations; i++)
        assert_int_equal(p->locations[i].id, i + 1);
    for (size_t i = 0; i < p->n_mappings; i++)
        assert_int_equal(p->mappings[i].id, i + 1);
    assert_int_equal(p->samples[0].values[0], 1);
    assert_string_equal(pprof_str(p, p->samples[0].labels[0].str), "worker");
    assert_int_equal(p->locations[li].n_lines, 2);
    assert_int_equal(p->locations[li].lines[0].function, ff);

    /* encode, decode: the same profile */
    for (int level = 0; level >= -1; level--) {
        unsigned char *buf;
        size_t len;
        assert_int_equal(pprof_encode(p, level, &buf, &len, &err), 0);
        pprof_profile *q = pprof_decode(buf, len, NULL, &err);
        free(buf);
        if (!q)
            fail_msg("decode: %s", err.msg);
        assert_int_equal(q->n_strings, p->n_strings);
        for (size_t i = 0; i < p->n_strings; i++)
            assert_string_equal(q->strings[i], p->strings[i]);
        assert_int_equal(q->n_functions, p->n_functions);
        assert_memory_equal(q->functions, p->functions, p->n_functions * sizeof *p->functions);
        assert_int_equal(q->n_mappings, p->n_mappings);
        assert_int_equal(q->n_locations, p->n_locations);
        for (size_t i = 0; i < p->n_locations; i++) {
            assert_int_equal(q->locations[i].address, p->locations[i].address);
            assert_int_equal(q->locations[i].mapping, p->locations[i].mapping);
            assert_int_equal(q->locations[i].n_lines, p->locations[i].n_lines);
            for (size_t k = 0; k < p->locations[i].n_lines; k++) {
                assert_int_equal(q->locations[i].lines[k].function,
                                 p->locations[i].lines[k].function);
                assert_int_equal(q->locations[i].lines[k].line, p->locations[i].lines[k].line);
            }
        }
        assert_int_equal(q->n_samples, p->n_samples);
        for (size_t i = 0; i < p->n_samples; i++) {
            assert_int_equal(q->samples[i].n_locations, p->samples[i].n_locations);
            assert_memory_equal(q->samples[i].locations, p->samples[i].locations,
                                p->samples[i].n_locations * sizeof(uint32_t));
            assert_memory_equal(q->samples[i].values, p->samples[i].values, 2 * sizeof(int64_t));
            assert_int_equal(q->samples[i].n_labels, p->samples[i].n_labels);
            if (p->samples[i].n_labels)
                assert_memory_equal(q->samples[i].labels, p->samples[i].labels,
                                    p->samples[i].n_labels * sizeof(pprof_label));
        }
        assert_int_equal(q->period, p->period);
        assert_int_equal(q->time_nanos, p->time_nanos);
        assert_int_equal(q->duration_nanos, p->duration_nanos);
        assert_same_samples(q, 1, p, 1);
        pprof_free(q);
    }
    pprof_free(p);

    /* an empty builder finishes into an empty, valid profile */
    b = pprof_builder_new(1);
    p = pprof_builder_finish(b, &err);
    assert_non_null(p);
    assert_int_equal(p->n_samples, 0);
    assert_int_equal(p->n_strings, 1);
    pprof_free(p);
    pprof_builder_free(pprof_builder_new(3));   /* freeing unfinished */
}

/* ---- asynchronous appends ------------------------------------------------ */

enum { ASYNC_N = 64 };

/* Many asynchronous appends from one thread share commits: another process
 * holds LMDB's write lock while they are queued, so the writer can take at
 * most what it had when it blocked in one commit, and all the rest in the
 * next: at most 2 commits for ASYNC_N appends, all answered 0, all there. */
static void test_append_async_shares_commits(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.no_rollups = true;
    tsdb *db = open_ok(&o);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    firn_label first[] = {{"job", "first"}};
    append_ok(db, cpu, first, 1, "process_cpu", 1000);   /* the series' tables exist */
    uint64_t commits0 = stats_of(db).commits_total;

    int locked[2], release[2];
    assert_int_equal(pipe(locked), 0);
    assert_int_equal(pipe(release), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        MDB_env *env;
        MDB_txn *txn;
        char c = 0;
        int bad = mdb_env_create(&env) || mdb_env_set_maxdbs(env, 64) ||
                  mdb_env_open(env, dir, 0, 0644) || mdb_txn_begin(env, NULL, 0, &txn);
        bad |= write(locked[1], &c, 1) != 1;
        bad |= read(release[0], &c, 1) != 1;
        if (!bad)
            mdb_txn_abort(txn);
        _exit(bad);
    }
    close(locked[1]);
    close(release[0]);
    char c;
    assert_int_equal(read(locked[0], &c, 1), 1);   /* the child holds the write lock */

    async_answers *a = malloc(sizeof *a);
    assert_non_null(a);
    async_answers_init(a);
    async_slot slots[ASYNC_N];
    char values[ASYNC_N][16];
    for (size_t i = 0; i < ASYNC_N; i++) {
        snprintf(values[i], sizeof values[i], "t%zu", i);
        firn_label l[] = {{"job", values[i]}};
        tsdb_append_req req = {.labels = l,
                               .n_labels = 1,
                               .profile_name = "process_cpu",
                               .profile = cpu,
                               .timestamp_ms = 5000};
        slots[i] = (async_slot){a, i};
        firn_err err = {0};
        if (tsdb_append_async(db, &req, async_answer, &slots[i], &err) != 0)
            fail_msg("append %zu not queued: %s", i, err.msg);
        /* the labels were copied: the caller's may go */
        memset(values[i], 'x', sizeof values[i] - 1);
    }
    assert_int_equal(write(release[1], &c, 1), 1);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(locked[0]);
    close(release[1]);

    async_answers_wait(a, ASYNC_N);
    for (size_t i = 0; i < ASYNC_N; i++)
        if (a->status[i] != 0)
            fail_msg("append %zu answered %d: %s", i, a->status[i], a->err[i].msg);
    tsdb_stats s = stats_of(db);
    if (s.commits_total - commits0 > 2)
        fail_msg("%d appends took %llu commits, want at most 2", ASYNC_N,
                 (unsigned long long)(s.commits_total - commits0));
    assert_int_equal(s.appends_total, ASYNC_N + 1);
    assert_int_equal(s.queue_length, 0);
    tsdb_close(db);

    /* every one is there, under the labels it was given */
    db = open_ok(&o);
    tsdb_reader *r = reader_ok(db);
    for (size_t i = 0; i < ASYNC_N; i++) {
        char v[16];
        snprintf(v, sizeof v, "t%zu", i);
        struct scan_acc sa = scan(r, series_id(r, CPU_NAME, "job", v), INT64_MIN, INT64_MAX, 0);
        assert_int_equal(sa.blocks, 1);
        assert_int_equal(sa.ts[0], 5000);
    }
    tsdb_reader_close(r);
    tsdb_close(db);
    async_answers_destroy(a);
    free(a);
    pprof_free(cpu);
}

/* An asynchronous append refused before the writer (bad labels) is refused
 * at once and never answered; one the writer refuses (another profile at
 * its timestamp) is answered with the error while the others of its commit
 * are stored. */
static void test_append_async_refusals(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    tsdb *db = open_ok(&o);
    pprof_profile *cpu = decode_fixture(FX_CPU);
    pprof_profile *labels = decode_fixture(FX_LABELS);
    firn_label a_l[] = {{"job", "a"}}, b_l[] = {{"job", "b"}};
    append_ok(db, cpu, a_l, 1, "process_cpu", 1000);

    async_answers *a = malloc(sizeof *a);
    assert_non_null(a);
    async_answers_init(a);
    async_slot slots[3] = {{a, 0}, {a, 1}, {a, 2}};
    firn_label bad[] = {{"__name__", "x"}};
    tsdb_append_req req = {.labels = bad, .n_labels = 1, .profile_name = "process_cpu",
                           .profile = cpu, .timestamp_ms = 2000};
    firn_err err = {0};
    assert_int_equal(tsdb_append_async(db, &req, async_answer, &slots[0], &err), FIRN_EINVAL);
    if (!strstr(err.msg, "__name__"))
        fail_msg("unexpected error: %s", err.msg);
    /* a different profile at a's timestamp, then a new series */
    req = (tsdb_append_req){.labels = a_l, .n_labels = 1, .profile_name = "process_cpu",
                            .profile = labels, .timestamp_ms = 1000};
    assert_int_equal(tsdb_append_async(db, &req, async_answer, &slots[1], &err), 0);
    req = (tsdb_append_req){.labels = b_l, .n_labels = 1, .profile_name = "process_cpu",
                            .profile = cpu, .timestamp_ms = 1000};
    assert_int_equal(tsdb_append_async(db, &req, async_answer, &slots[2], &err), 0);
    async_answers_wait(a, 2);
    assert_false(a->got[0]);
    assert_int_equal(a->status[1], FIRN_EEXIST);
    assert_int_equal(a->status[2], 0);
    tsdb_reader *r = reader_ok(db);
    assert_int_equal(scan(r, series_id(r, CPU_NAME, "job", "b"), INT64_MIN, INT64_MAX, 0).blocks,
                     1);
    tsdb_reader_close(r);
    tsdb_close(db);
    async_answers_destroy(a);
    free(a);
    pprof_free(labels);
    pprof_free(cpu);
}

/* Acknowledged asynchronous appends survive kill -9: a child appends
 * asynchronously without end and reports each append answered 0 down a
 * pipe; the parent kills it with SIGKILL mid-stream, reopens the store and
 * finds every reported append, whole (both sample types' series). */
enum { KILL9_ACKS = 300, KILL9_MAX = 20000 };

struct ts_set {
    unsigned char *seen;   /* by index: (ts - 1000) / 1000 */
    size_t n;
};

static int ts_set_fn(void *ctx, const tsdb_block *b)
{
    struct ts_set *s = ctx;
    int64_t i = (b->timestamp_ms - 1000) / 1000;
    if (i >= 0 && (size_t)i < s->n)
        s->seen[i]++;
    return 0;
}

static void kill9_acked(void *ctx, int status, const firn_err *err, bool duplicate)
{
    (void)err;
    (void)duplicate;
    int *slot = ctx;   /* [0] the pipe, [1] the index */
    int32_t v = status == 0 ? slot[1] : -1;
    if (write(slot[0], &v, sizeof v) != (ssize_t)sizeof v)
        _exit(3);
    free(slot);
}

static void test_append_async_kill9(void **state)
{
    const char *dir = *state;
    tsdb_options o;
    test_options(&o, dir);
    o.no_rollups = true;
    int acks[2];
    assert_int_equal(pipe(acks), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(acks[0]);
        firn_err err = {0};
        tsdb *db = tsdb_open(&o, &err);
        pprof_profile *cpu = db ? decode_fixture(FX_CPU) : NULL;
        firn_label l[] = {{"job", "k"}};
        for (int32_t i = 0; db && i < KILL9_MAX; i++) {
            int *slot = malloc(2 * sizeof *slot);
            if (!slot)
                _exit(4);
            slot[0] = acks[1];
            slot[1] = i;
            tsdb_append_req req = {.labels = l, .n_labels = 1, .profile_name = "process_cpu",
                                   .profile = cpu, .timestamp_ms = 1000 + (int64_t)i * 1000};
            if (tsdb_append_async(db, &req, kill9_acked, slot, &err) != 0)
                _exit(2);
        }
        _exit(db ? 5 : 1);   /* not killed before the end: the parent says so */
    }
    close(acks[1]);
    unsigned char *acked = calloc(KILL9_MAX, 1);
    assert_non_null(acked);
    size_t n_acked = 0;
    int32_t v;
    bool killed = false;
    while (read(acks[0], &v, sizeof v) == (ssize_t)sizeof v) {
        if (v < 0 || v >= KILL9_MAX)
            fail_msg("the child's append was answered with an error (%d)", v);
        acked[v] = 1;
        if (++n_acked == KILL9_ACKS) {
            assert_int_equal(kill(pid, SIGKILL), 0);
            killed = true;
        }
    }
    close(acks[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!killed || !WIFSIGNALED(status))
        fail_msg("the child was not killed mid-stream (%zu acks, status %d)", n_acked, status);
    assert_true(n_acked >= KILL9_ACKS);

    tsdb *db = open_ok(&o);
    tsdb_reader *r = reader_ok(db);
    struct ts_set set = {calloc(KILL9_MAX, 1), KILL9_MAX};
    assert_non_null(set.seen);
    struct mspec ms[] = {{FIRN_MATCH_EQ, "job", "k"}};
    tsdb_series_set ss;
    select_ok(r, ms, 1, INT64_MIN, INT64_MAX, &ss);
    assert_int_equal(ss.n, 2);   /* two sample types */
    for (size_t i = 0; i < ss.n; i++) {
        firn_err err = {0};
        if (tsdb_scan(r, ss.series[i].id, INT64_MIN, INT64_MAX, TSDB_SCAN_TOTALS, ts_set_fn,
                      &set, &err) < 0)
            fail_msg("scan: %s", err.msg);
    }
    tsdb_series_set_free(&ss);
    for (size_t i = 0; i < KILL9_MAX; i++) {
        if (acked[i] && set.seen[i] != 2)
            fail_msg("acknowledged append %zu: %u of its 2 blocks after kill -9", i, set.seen[i]);
        if (set.seen[i] != 0 && set.seen[i] != 2)
            fail_msg("append %zu half stored (%u of 2 blocks)", i, set.seen[i]);
    }
    tsdb_reader_close(r);
    tsdb_close(db);
    free(set.seen);
    free(acked);
}

int main(void)
{
    firn_log_set_level(FIRN_LOG_WARN);   /* retention and map growth log at info */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_and_reopens, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_foreign_and_damaged, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_append_and_select, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_label_names_and_values, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_scan, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_merge, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_merge_mapping_addresses, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_merge_across_partitions, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_symbol_cache_hits_equal_misses, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_symbol_cache_retention, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_symbol_cache_concurrent, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_profile_at_and_labels, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_append_refusals, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_retention, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_retention_steady_state, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_map_growth, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_read_only_map_resized, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_series_limit, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_back_pressure, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_append_async_shares_commits, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_append_async_refusals, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_append_async_kill9, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_readers_during_writes, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_readers_during_map_growth, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_stats, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_float_series, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_float_retention, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_schema_upgrade, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_schema_v3_blocks, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_schema_v5_blocks, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_select_time_range_gaps, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_retention_then_older_append, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_long_label_values, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_many_series, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_extreme_values, dir_setup, dir_teardown),
        cmocka_unit_test(test_block_columns),
        cmocka_unit_test_setup_teardown(test_empty_stack_sample, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_store, dir_setup, dir_teardown),
        cmocka_unit_test(test_pprof_builder),
        cmocka_unit_test(test_pprof_builder_distinct),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
