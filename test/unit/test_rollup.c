/* test_rollup.c -- rollups (tsdb/rollup.c) against their promise: a merge
 * that reads them gives exactly what merging the raw profiles gives.
 *
 * Expected values are computed here from the profiles the test appended
 * (their samples summed by function-name stack and labels), not by the
 * store; and the rollup merge is also compared byte for byte with the
 * store's raw merge (tsdb_merge_options.raw), which must be identical.
 * The store's partitions are 90 minutes wide, so hour and day buckets span
 * partitions.  The background compaction is off (no_rollups) except in the
 * kill -9 test; passes run through tsdb_rollup_run.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixtures.h"

#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "pprof/pprof.h"
#include "promql-like/pql.h"
#include "tsdb/tsdb.h"

#define FX_LABELS "pyro-pkg_pprof_testdata_go.cpu.labels.pprof"   /* cpu, sample labels */
#define FX_HEAP "alloy-heap.pprof"                                /* alloc_* and inuse_* */

#define HOUR (3600LL * 1000)
#define DAY (24 * HOUR)
#define STEP (40 * 60 * 1000LL)   /* a profile of each job every 40 minutes */
#define SPAN (3 * DAY)            /* of data */
#define N_PROFILES (2 * SPAN / STEP)

static int64_t base_ms;           /* a day boundary 5 days ago */

static int dir_setup(void **state)
{
    *state = temp_dir("rollup");
    return 0;
}

static int dir_teardown(void **state)
{
    remove_tree(*state);
    free(*state);
    return 0;
}

static void options(tsdb_options *o, const char *dir)
{
    tsdb_options_default(o);
    o->path = dir;
    o->retention_ms = 0;
    o->partition_ms = 90 * 60 * 1000;
    o->no_rollups = true;
    o->rollup_delay_ms = 0;
}

static tsdb *open_ok(const tsdb_options *o)
{
    firn_err err = {0};
    tsdb *db = tsdb_open(o, &err);
    if (!db)
        fail_msg("tsdb_open %s: %s", o->path, err.msg);
    return db;
}

static tsdb_stats stats_of(tsdb *db)
{
    tsdb_stats s;
    firn_err err = {0};
    if (tsdb_stats_get(db, &s, &err) < 0)
        fail_msg("stats: %s", err.msg);
    return s;
}

static void run_compaction(tsdb *db, int64_t now)
{
    firn_err err = {0};
    if (tsdb_rollup_run(db, now, NULL, &err) < 0)
        fail_msg("tsdb_rollup_run: %s", err.msg);
}

/* ---- the appended profiles, kept to compute what a merge must give ---- */

/* (function stack|sorted labels) -> summed value, sorted by key. */
struct flat {
    char *key;
    int64_t value;
};

struct kept {
    int64_t ts;
    int job;                      /* 0 or 1: the job label */
    pprof_profile *p;
    struct flat *flat[2];         /* its samples flattened, without and with labels */
    size_t n_flat[2];
};

struct dataset {
    const char *fixture, *name;
    bool delta;
    size_t column;                /* the sample type the queried series holds */
    const char *type;             /* its __name__ */
    struct kept *k;
    size_t n;
};

/* Profile k of a series: the fixture with every value scaled by 1..3 and
 * one sample in five dropped (a different fifth each time), so stack sets
 * differ from profile to profile. */
static pprof_profile *variant(const char *fixture, size_t k)
{
    pprof_profile *p = decode_fixture(fixture);
    for (size_t i = 0; i < p->n_samples; i++)
        for (size_t j = 0; j < p->n_sample_types; j++)
            p->samples[i].values[j] *= (i + k) % 5 == 0 ? 0 : (int64_t)((i * 7 + k) % 3 + 1);
    return p;
}

static void append_ok(tsdb *db, const struct dataset *d, const struct kept *k)
{
    firn_label labels[] = {{"job", k->job ? "b" : "a"}};
    tsdb_append_req req = {.labels = labels,
                           .n_labels = 1,
                           .profile_name = d->name,
                           .delta = d->delta,
                           .profile = k->p,
                           .timestamp_ms = k->ts};
    firn_err err = {0};
    if (tsdb_append(db, &req, &err) < 0)
        fail_msg("append at %lld: %s", (long long)k->ts, err.msg);
}

static void fill(tsdb *db, struct dataset *d, size_t n)
{
    d->k = calloc(n + 8, sizeof *d->k);
    assert_non_null(d->k);
    d->n = n;
    for (size_t i = 0; i < n; i++) {
        /* two jobs, job b offset by 7 minutes; a gap of 5 hours on day 2 */
        d->k[i].job = (int)(i % 2);
        d->k[i].ts = base_ms + (int64_t)(i / 2) * STEP + d->k[i].job * 7 * 60 * 1000;
        if (d->k[i].ts >= base_ms + DAY + 3 * HOUR && d->k[i].ts < base_ms + DAY + 8 * HOUR)
            d->k[i].ts += SPAN;   /* moved past the end */
        d->k[i].p = variant(d->fixture, i);
        append_ok(db, d, &d->k[i]);
    }
}

static void kept_free(struct kept *k)
{
    pprof_free(k->p);
    for (int l = 0; l < 2; l++) {
        for (size_t j = 0; j < k->n_flat[l]; j++)
            free(k->flat[l][j].key);
        free(k->flat[l]);
    }
}

static void dataset_free(struct dataset *d)
{
    for (size_t i = 0; i < d->n; i++)
        kept_free(&d->k[i]);
    free(d->k);
}


static int cmp_flat(const void *a, const void *b)
{
    return strcmp(((const struct flat *)a)->key, ((const struct flat *)b)->key);
}

static int cmp_cstr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

struct flats {
    struct flat *v;
    size_t n, cap;
};

static void flats_add(struct flats *f, const pprof_profile *p, size_t column, bool labels)
{
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_sample *s = &p->samples[i];
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        assert_non_null(m);
        for (size_t j = 0; j < s->n_locations; j++) {
            const pprof_location *l = &p->locations[s->locations[j]];
            if (l->n_lines == 0)
                fprintf(m, "@%llx;", (unsigned long long)l->address);
            for (size_t k = 0; k < l->n_lines; k++)
                fprintf(m, "%s;", l->lines[k].function == PPROF_NONE
                                      ? "?"
                                      : pprof_str(p, p->functions[l->lines[k].function].name));
        }
        fprintf(m, "|");
        if (labels && s->n_labels) {
            char **ls = calloc(s->n_labels, sizeof *ls);
            assert_non_null(ls);
            for (size_t j = 0; j < s->n_labels; j++) {
                size_t n = 0;
                FILE *lm = open_memstream(&ls[j], &n);
                fprintf(lm, "%s=%s#%lld", pprof_str(p, s->labels[j].key),
                        pprof_str(p, s->labels[j].str), (long long)s->labels[j].num);
                fclose(lm);
            }
            qsort(ls, s->n_labels, sizeof *ls, cmp_cstr);
            for (size_t j = 0; j < s->n_labels; j++) {
                fprintf(m, "%s,", ls[j]);
                free(ls[j]);
            }
            free(ls);
        }
        fclose(m);
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 1024;
            f->v = realloc(f->v, f->cap * sizeof *f->v);
            assert_non_null(f->v);
        }
        f->v[f->n++] = (struct flat){buf, s->values[column]};
    }
}

/* Sorts, sums equal keys and drops zero sums. */
static void flats_finish(struct flats *f)
{
    qsort(f->v, f->n, sizeof *f->v, cmp_flat);
    size_t k = 0;
    for (size_t i = 0; i < f->n; i++) {
        if (k && strcmp(f->v[k - 1].key, f->v[i].key) == 0) {
            f->v[k - 1].value += f->v[i].value;
            free(f->v[i].key);
        } else {
            f->v[k++] = f->v[i];
        }
    }
    size_t z = 0;
    for (size_t i = 0; i < k; i++) {
        if (f->v[i].value)
            f->v[z++] = f->v[i];
        else
            free(f->v[i].key);
    }
    f->n = z;
}

static void flats_free(struct flats *f)
{
    for (size_t i = 0; i < f->n; i++)
        free(f->v[i].key);
    free(f->v);
}

static void assert_flats_equal(struct flats *want, struct flats *got, const char *what)
{
    if (want->n != got->n)
        fail_msg("%s: %zu distinct stacks, want %zu", what, got->n, want->n);
    for (size_t i = 0; i < want->n; i++) {
        if (strcmp(want->v[i].key, got->v[i].key) != 0 || want->v[i].value != got->v[i].value)
            fail_msg("%s: entry %zu is %s = %lld, want %s = %lld", what, i, got->v[i].key,
                     (long long)got->v[i].value, want->v[i].key, (long long)want->v[i].value);
    }
}

/* What a merge of job `job` (-1: both) over [start, end] must hold,
 * computed from the kept profiles. */
static void expected(struct dataset *d, int job, int64_t start, int64_t end, bool labels,
                     struct flats *out)
{
    memset(out, 0, sizeof *out);
    for (size_t i = 0; i < d->n; i++) {
        struct kept *k = &d->k[i];
        if (k->ts < start || k->ts > end || (job >= 0 && k->job != job))
            continue;
        if (!k->flat[labels]) {   /* flattened once per profile */
            struct flats one = {0};
            flats_add(&one, k->p, d->column, labels);
            k->flat[labels] = one.v;
            k->n_flat[labels] = one.n;
        }
        for (size_t j = 0; j < k->n_flat[labels]; j++) {
            if (out->n == out->cap) {
                out->cap = out->cap ? out->cap * 2 : 1024;
                out->v = realloc(out->v, out->cap * sizeof *out->v);
                assert_non_null(out->v);
            }
            out->v[out->n].key = strdup(k->flat[labels][j].key);
            out->v[out->n++].value = k->flat[labels][j].value;
        }
    }
    flats_finish(out);
}

static size_t series_of(tsdb_reader *r, const char *type, int job, uint64_t *ids)
{
    firn_matcher m[2];
    memset(m, 0, sizeof m);
    firn_err err = {0};
    assert_int_equal(firn_matcher_init(&m[0], FIRN_MATCH_EQ, "__name__", type, &err), 0);
    assert_int_equal(firn_matcher_init(&m[1], job < 0 ? FIRN_MATCH_RE : FIRN_MATCH_EQ, "job",
                                       job < 0 ? ".+" : job ? "b" : "a", &err), 0);
    tsdb_series_set set;
    assert_int_equal(tsdb_select(r, m, 2, INT64_MIN, INT64_MAX, &set, &err), 0);
    size_t n = set.n;
    for (size_t i = 0; i < n; i++)
        ids[i] = set.series[i].id;
    tsdb_series_set_free(&set);
    firn_matcher_destroy(&m[0]);
    firn_matcher_destroy(&m[1]);
    return n;
}

static unsigned char *encode(const pprof_profile *p, size_t *len)
{
    unsigned char *out;
    firn_err err = {0};
    if (pprof_encode(p, 0, &out, len, &err) < 0)
        fail_msg("encode: %s", err.msg);
    return out;
}

/* Merges job over [start, end] with and without rollups: the two must be
 * the same bytes, and hold what the kept profiles sum to.  Returns the
 * rollups read. */
static uint64_t check_range(tsdb *db, struct dataset *d, int job, int64_t start,
                            int64_t end, bool labels)
{
    tsdb_reader *r;
    firn_err err = {0};
    assert_non_null(r = tsdb_reader_open(db, &err));
    uint64_t ids[4];
    size_t n = series_of(r, d->type, job, ids);
    assert_true(n >= 1);
    tsdb_merge_options o = {.keep_labels = labels}, raw = {.keep_labels = labels, .raw = true};
    tsdb_merge_stats st = {0}, raw_st = {0};
    pprof_profile *a = tsdb_merge(r, ids, n, start, end, &o, &st, &err);
    if (!a)
        fail_msg("merge: %s", err.msg);
    pprof_profile *b = tsdb_merge(r, ids, n, start, end, &raw, &raw_st, &err);
    if (!b)
        fail_msg("raw merge: %s", err.msg);
    assert_int_equal(raw_st.rollups, 0);
    assert_int_equal(st.blocks, raw_st.blocks);
    size_t la, lb;
    unsigned char *ea = encode(a, &la), *eb = encode(b, &lb);
    char what[160];
    snprintf(what, sizeof what, "%s job %d [%lld, %lld] (base %lld) labels %d", d->type, job,
             (long long)start, (long long)end, (long long)base_ms, labels);
    if (la != lb || memcmp(ea, eb, la) != 0)
        fail_msg("%s: the rollup merge differs from the raw merge (%zu vs %zu bytes)", what, la,
                 lb);
    struct flats want, got = {0};
    expected(d, job, start, end, labels, &want);
    flats_add(&got, a, 0, labels);
    flats_finish(&got);
    assert_flats_equal(&want, &got, what);
    flats_free(&want);
    flats_free(&got);
    free(ea);
    free(eb);
    pprof_free(a);
    pprof_free(b);
    tsdb_reader_close(r);
    return st.rollups;
}

/* Hours and days with two profiles or more, over both jobs. */
static uint64_t buckets_wanted(const struct dataset *d)
{
    uint64_t n = 0;
    const int64_t widths[2] = {HOUR, DAY};
    for (int w = 0; w < 2; w++)
        for (int job = 0; job <= 1; job++)
            for (int64_t b = base_ms; b < base_ms + 2 * SPAN; b += widths[w]) {
                int in = 0;
                for (size_t i = 0; i < d->n; i++)
                    in += d->k[i].job == job && d->k[i].ts >= b && d->k[i].ts < b + widths[w];
                n += in >= 2;
            }
    return n;
}

static void set_base(void)
{
    int64_t now = (int64_t)time(NULL) * 1000;
    base_ms = now / DAY * DAY - 5 * DAY;
}

/* ---- tests --------------------------------------------------------------- */

/* Delta (CPU with sample labels) and snapshot (heap inuse_space) series,
 * over ranges that start and end mid-hour, on bucket edges, and cover
 * everything, with and without labels. */
static void test_rollup_exact(void **state)
{
    set_base();
    tsdb_options o;
    options(&o, *state);
    tsdb *db = open_ok(&o);
    struct dataset cpu = {FX_LABELS, "process_cpu", true, 1,
                          "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta", NULL, 0};
    struct dataset heap = {FX_HEAP, "memory", false, 3,
                           "memory:inuse_space:bytes:space:bytes", NULL, 0};
    fill(db, &cpu, (size_t)N_PROFILES);
    fill(db, &heap, (size_t)N_PROFILES);
    assert_int_equal(stats_of(db).rollups, 0);
    run_compaction(db, base_ms + 5 * DAY);
    tsdb_stats st = stats_of(db);
    /* every hour and day holding two profiles or more of a series: 2 CPU
     * types and 4 heap types */
    assert_int_equal(st.rollups, 2 * buckets_wanted(&cpu) + 4 * buckets_wanted(&heap));
    assert_int_equal(st.rollups_written_total, st.rollups);
    assert_true(st.compaction_runs_total >= 1);

    struct dataset *sets[] = {&cpu, &heap};
    const int64_t ranges[][2] = {
        {INT64_MIN, INT64_MAX},
        {base_ms + 17 * 60 * 1000, base_ms + 2 * DAY + 5 * HOUR + 123},
        {base_ms + DAY, base_ms + 2 * DAY - 1},            /* one day bucket exactly */
        {base_ms + HOUR, base_ms + 2 * HOUR - 1},          /* one hour */
        {base_ms + DAY + 2 * HOUR, base_ms + 3 * DAY + 9 * HOUR},   /* across the gap */
    };
    uint64_t rollups_read = 0;
    /* both jobs, and job b; labels kept or not for CPU (the heap fixture
     * has no sample labels) */
    for (size_t s = 0; s < 2; s++)
        for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++)
            for (int job = -1; job <= 1; job += 2)
                for (int labels = 0; labels <= (s == 0); labels++)
                    rollups_read += check_range(db, sets[s], job, ranges[i][0], ranges[i][1],
                                                labels);
    assert_true(rollups_read > 0);
    /* a long range reads rollups: a few days and hours, not 200 profiles */
    assert_true(check_range(db, &cpu, 0, base_ms, base_ms + SPAN - 1, false) > 0);

    /* stack filters and group-by, through the query layer: identical pprof */
    const char *filters[] = {NULL, "runtime\\..*"};
    const char *groups[] = {"pprof.label"};
    tsdb_reader *r;
    firn_err err = {0};
    assert_non_null(r = tsdb_reader_open(db, &err));
    for (int f = 0; f < 2; f++)
        for (int g = 0; g <= 1; g++)
            for (int q = 0; q < 2; q++) {
                pql_profile_request req = {
                    .query = q ? "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"
                                 "{__function__=~\"main.*\"}"
                               : "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta{job=\"a\"}",
                    .mode = PQL_PROFILE_MERGE,
                    .start_ms = base_ms + 30 * 60 * 1000,
                    .end_ms = base_ms + SPAN,
                    .filter = filters[f],
                    .group_by = g ? groups : NULL,
                    .n_group_by = g ? 1 : 0};
                pprof_profile *a = pql_profile_pprof(r, &req, &err);
                if (!a)
                    fail_msg("query: %s", err.msg);
                req.raw = true;
                pprof_profile *b = pql_profile_pprof(r, &req, &err);
                if (!b)
                    fail_msg("raw query: %s", err.msg);
                size_t la, lb;
                unsigned char *ea = encode(a, &la), *eb = encode(b, &lb);
                assert_true(a->n_samples > 0);
                assert_true(la == lb && memcmp(ea, eb, la) == 0);
                free(ea);
                free(eb);
                pprof_free(a);
                pprof_free(b);
            }
    tsdb_reader_close(r);

    /* another pass has nothing to do */
    uint64_t written = 1;
    assert_int_equal(tsdb_rollup_run(db, base_ms + 5 * DAY, &written, &err), 0);
    assert_int_equal(written, 0);
    tsdb_close(db);
    dataset_free(&cpu);
    dataset_free(&heap);
}

/* A profile appended into a rolled-up hour: the rule is that its append
 * deletes that hour's and day's rollups in its own commit (so merges stay
 * exact at once) and the next pass redoes them. */
static void test_rollup_late_append(void **state)
{
    set_base();
    tsdb_options o;
    options(&o, *state);
    tsdb *db = open_ok(&o);
    struct dataset cpu = {FX_LABELS, "process_cpu", true, 1,
                          "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta", NULL, 0};
    fill(db, &cpu, (size_t)N_PROFILES);
    run_compaction(db, base_ms + 5 * DAY);
    tsdb_stats before = stats_of(db);
    int64_t day = base_ms + DAY;
    assert_true(check_range(db, &cpu, 0, day, day + DAY - 1, false) == 1);   /* the day rollup */

    /* late: job a, inside day 1's hour 10, at a timestamp it does not hold */
    struct kept *late = &cpu.k[cpu.n++];
    late->ts = day + 10 * HOUR + 5 * 60 * 1000 + 1;
    late->job = 0;
    late->p = variant(FX_LABELS, 999);
    append_ok(db, &cpu, late);
    tsdb_stats after = stats_of(db);
    /* one hour of each of the profile's two series (samples and cpu) */
    assert_int_equal(after.rollups_invalidated_total, before.rollups_invalidated_total + 2);
    assert_int_equal(after.rollups, before.rollups - 4);   /* their hours and days */
    /* exact before any compaction: the hour and day are read raw */
    check_range(db, &cpu, 0, day, day + DAY - 1, false);
    check_range(db, &cpu, -1, INT64_MIN, INT64_MAX, true);

    run_compaction(db, base_ms + 5 * DAY);
    tsdb_stats redone = stats_of(db);
    assert_int_equal(redone.rollups, before.rollups);
    assert_int_equal(check_range(db, &cpu, 0, day, day + DAY - 1, false), 1);
    check_range(db, &cpu, 0, day + 10 * HOUR, day + 11 * HOUR - 1, true);
    check_range(db, &cpu, -1, INT64_MIN, INT64_MAX, true);
    tsdb_close(db);
    dataset_free(&cpu);
}

/* Retention deletes the rollups whose buckets reach before its cutoff with
 * the profiles; what is left merges exactly, and reads rollups. */
static void test_rollup_retention(void **state)
{
    set_base();
    tsdb_options o;
    options(&o, *state);
    o.retention_ms = 10 * DAY;
    o.retention_interval_ms = 3600 * 1000;
    tsdb *db = open_ok(&o);
    struct dataset heap = {FX_HEAP, "memory", false, 3, "memory:inuse_space:bytes:space:bytes",
                           NULL, 0};
    fill(db, &heap, (size_t)N_PROFILES);
    run_compaction(db, base_ms + 5 * DAY);
    tsdb_stats before = stats_of(db);
    firn_err err = {0};
    /* cut at day 1 + 13 h: day 0, day 1's rollup and its first 13 hours go */
    int64_t cutoff = base_ms + DAY + 13 * HOUR;
    assert_int_equal(tsdb_retention_run(db, cutoff + o.retention_ms, NULL, &err), 0);
    tsdb_stats after = stats_of(db);
    assert_true(after.rollups < before.rollups);
    /* the expected sums only hold what retention kept */
    for (size_t i = 0; i < heap.n; i++)
        if (heap.k[i].ts < cutoff) {
            kept_free(&heap.k[i]);
            heap.k[i--] = heap.k[--heap.n];
        }
    check_range(db, &heap, -1, INT64_MIN, INT64_MAX, false);
    check_range(db, &heap, 1, base_ms, base_ms + 2 * DAY - 1, true);
    assert_true(check_range(db, &heap, 0, cutoff, INT64_MAX, false) > 0);
    tsdb_close(db);
    dataset_free(&heap);
}

/* An older (version 3) store: a read-only open merges raw profiles; a
 * writable open upgrades it to version 4 and compaction rolls it up. */
static void test_rollup_upgrade(void **state)
{
    set_base();
    const char *dir = *state;
    tsdb_options o;
    options(&o, dir);
    tsdb *db = open_ok(&o);
    struct dataset cpu = {FX_LABELS, "process_cpu", true, 1,
                          "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta", NULL, 0};
    fill(db, &cpu, 60);
    tsdb_close(db);
    /* make it what version 3 wrote: no rollup databases, version 3 */
    MDB_env *env;
    MDB_txn *txn;
    MDB_dbi dbi;
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, dir, 0, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
    const char *drop[] = {"rollups", "rollup_state", "rollup_dirty"};
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(mdb_dbi_open(txn, drop[i], 0, &dbi), 0);
        assert_int_equal(mdb_drop(txn, dbi, 1), 0);
    }
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    uint32_t v3 = 3;
    MDB_val k = {strlen("schema_version"), "schema_version"}, v = {sizeof v3, &v3};
    assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
    assert_int_equal(mdb_txn_commit(txn), 0);
    mdb_env_close(env);

    o.read_only = true;
    db = open_ok(&o);
    check_range(db, &cpu, -1, INT64_MIN, INT64_MAX, true);
    assert_int_equal(stats_of(db).rollups, 0);
    tsdb_close(db);

    o.read_only = false;
    db = open_ok(&o);   /* upgrades */
    run_compaction(db, base_ms + 5 * DAY);
    assert_true(stats_of(db).rollups > 0);
    assert_true(check_range(db, &cpu, -1, INT64_MIN, INT64_MAX, true) > 0);
    tsdb_close(db);
    assert_int_equal(mdb_env_create(&env), 0);
    assert_int_equal(mdb_env_set_maxdbs(env, 32), 0);
    assert_int_equal(mdb_env_open(env, dir, MDB_RDONLY, 0644), 0);
    assert_int_equal(mdb_txn_begin(env, NULL, MDB_RDONLY, &txn), 0);
    assert_int_equal(mdb_dbi_open(txn, "meta", 0, &dbi), 0);
    assert_int_equal(mdb_get(txn, dbi, &k, &v), 0);
    uint32_t ver;
    memcpy(&ver, v.mv_data, sizeof ver);
    assert_int_equal(ver, TSDB_SCHEMA_VERSION);
    mdb_txn_abort(txn);
    mdb_env_close(env);
    dataset_free(&cpu);
}

/* kill -9 of a process while its background compaction is under way (one
 * bucket per transaction): the store opens, every merge is still exact,
 * and finishing the compaction counts nothing twice. */
static void test_rollup_kill9(void **state)
{
    set_base();
    const char *dir = *state;
    tsdb_options o;
    options(&o, dir);
    tsdb *db = open_ok(&o);
    struct dataset cpu = {FX_LABELS, "process_cpu", true, 1,
                          "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta", NULL, 0};
    fill(db, &cpu, (size_t)N_PROFILES);
    tsdb_close(db);

    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* the child: compaction in the background, killed by itself (a real
         * SIGKILL) once it has committed some rollups but not all */
        tsdb_options co = o;
        co.no_rollups = false;
        co.rollup_pass_samples = 1;
        firn_err err = {0};
        tsdb *cdb = tsdb_open(&co, &err);
        if (!cdb)
            _exit(2);
        for (;;) {
            tsdb_stats s;
            if (tsdb_stats_get(cdb, &s, &err) < 0)
                _exit(3);
            if (s.rollups >= 3)
                kill(getpid(), SIGKILL);
        }
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFSIGNALED(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    db = open_ok(&o);
    tsdb_stats mid = stats_of(db);
    assert_true(mid.rollups >= 3);
    check_range(db, &cpu, -1, INT64_MIN, INT64_MAX, true);
    check_range(db, &cpu, 1, base_ms + 30 * 60 * 1000, base_ms + 2 * DAY, false);
    run_compaction(db, base_ms + 5 * DAY);
    tsdb_stats done = stats_of(db);
    if (done.rollups <= mid.rollups)
        fail_msg("the kill did not land mid-compaction: %llu rollups then, %llu when done",
                 (unsigned long long)mid.rollups, (unsigned long long)done.rollups);
    check_range(db, &cpu, -1, INT64_MIN, INT64_MAX, true);
    assert_true(check_range(db, &cpu, 0, base_ms, base_ms + SPAN, false) > 0);
    tsdb_close(db);
    dataset_free(&cpu);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_rollup_exact, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_late_append, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_retention, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_upgrade, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_rollup_kill9, dir_setup, dir_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
