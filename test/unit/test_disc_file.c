/* test_disc_file.c -- file_sd_configs (discovery/file.c) against its
 * contract in discovery/discovery.h: the parser on bytes (a table, as
 * Prometheus's discovery/file and targetgroup tests), then the provider on
 * real files in a temporary directory, as discovery/file/file_test.go:
 * initial state, glob, in-place writes and atomic renames seen through
 * inotify, a bad update keeping the old targets, removal, shrinking.
 *
 * The test sink keeps the latest group of each source as a line of text;
 * every wait is on a condition variable with a deadline, never a sleep.
 * The refresh interval is an hour wherever inotify is what is tested.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "discovery/discovery.h"

#define HOUR_MS (60 * 60 * 1000)
#define DEADLINE_MS 5000

/* ---- the test sink ----------------------------------------------------------- */

typedef struct source_state {
    char *source;
    char *text;   /* "{labels} target,target" */
} source_state;

typedef struct test_sink {
    disc_sink base;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    source_state *v;
    size_t n;
    int sends, ok, failed;
} test_sink;

/* {labels} then the addresses, comma-separated. */
static char *group_text(const disc_group *g)
{
    firn_buf b = {0};
    char *labels = firn_labels_format(g->labels, g->n_labels);
    firn_buf_puts(&b, labels ? labels : "?");
    free(labels);
    firn_buf_puts(&b, " ");
    for (size_t t = 0; t < g->n_targets; t++) {
        const disc_target *tg = &g->targets[t];
        const char *addr = firn_labels_get(tg->labels, tg->n_labels, "__address__");
        firn_buf_printf(&b, "%s%s", t ? "," : "", addr ? addr : "?");
        if (tg->n_labels != 1)
            firn_buf_puts(&b, "(extra labels)");
    }
    return firn_buf_take(&b, NULL);
}

static void sink_send(disc_sink *self, const disc_group *groups, size_t n)
{
    test_sink *s = (test_sink *)self;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        while (k < s->n && strcmp(s->v[k].source, groups[i].source) != 0)
            k++;
        if (groups[i].n_targets == 0) {   /* deletes the source */
            if (k < s->n) {
                free(s->v[k].source);
                free(s->v[k].text);
                s->v[k] = s->v[--s->n];
            }
            continue;
        }
        if (k == s->n) {
            s->v = realloc(s->v, (s->n + 1) * sizeof *s->v);
            assert_non_null(s->v);
            s->v[s->n++] = (source_state){strdup(groups[i].source), NULL};
        }
        free(s->v[k].text);
        s->v[k].text = group_text(&groups[i]);
    }
    s->sends++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void sink_refreshed(disc_sink *self, bool ok)
{
    test_sink *s = (test_sink *)self;
    pthread_mutex_lock(&s->mu);
    if (ok)
        s->ok++;
    else
        s->failed++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void sink_init(test_sink *s)
{
    memset(s, 0, sizeof *s);
    s->base = (disc_sink){sink_send, sink_refreshed};
    pthread_mutex_init(&s->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&s->cv, &ca);
    pthread_condattr_destroy(&ca);
}

static void sink_destroy(test_sink *s)
{
    for (size_t i = 0; i < s->n; i++) {
        free(s->v[i].source);
        free(s->v[i].text);
    }
    free(s->v);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

/* The text of source (NULL when absent); call with the lock held. */
static const char *text_locked(const test_sink *s, const char *source)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].source, source) == 0)
            return s->v[i].text;
    return NULL;
}

typedef bool (*sink_pred)(const test_sink *s, const void *arg);

/* Wait until pred holds, DEADLINE_MS at most. */
static bool sink_wait(test_sink *s, sink_pred pred, const void *arg)
{
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += DEADLINE_MS / 1000;
    pthread_mutex_lock(&s->mu);
    bool ok;
    while (!(ok = pred(s, arg)))
        if (pthread_cond_timedwait(&s->cv, &s->mu, &until) == ETIMEDOUT) {
            ok = pred(s, arg);
            break;
        }
    pthread_mutex_unlock(&s->mu);
    return ok;
}

typedef struct want_source {
    const char *source;
    const char *text;   /* NULL: absent */
} want_source;

static bool pred_source(const test_sink *s, const void *arg)
{
    const want_source *w = arg;
    const char *t = text_locked(s, w->source);
    return w->text ? t && strcmp(t, w->text) == 0 : t == NULL;
}

static bool pred_failed(const test_sink *s, const void *arg)
{
    return s->failed >= *(const int *)arg;
}

static bool pred_ok(const test_sink *s, const void *arg)
{
    return s->ok >= *(const int *)arg;
}

/* Wait for source to read text (NULL: to be gone); on a timeout fail with
 * what is there. */
static void expect_source(test_sink *s, const char *source, const char *text)
{
    want_source w = {source, text};
    if (sink_wait(s, pred_source, &w))
        return;
    pthread_mutex_lock(&s->mu);
    const char *got = text_locked(s, source);
    char msg[2048];
    snprintf(msg, sizeof msg, "%s: want %s, have %s", source, text ? text : "(absent)",
             got ? got : "(absent)");
    pthread_mutex_unlock(&s->mu);
    fail_msg("%s", msg);
}

static void expect_failed(test_sink *s, int n)
{
    if (!sink_wait(s, pred_failed, &n))
        fail_msg("no failed refresh (want %d)", n);
}

static void expect_ok(test_sink *s, int n)
{
    if (!sink_wait(s, pred_ok, &n))
        fail_msg("no successful refresh (want %d)", n);
}

static size_t n_sources(test_sink *s)
{
    pthread_mutex_lock(&s->mu);
    size_t n = s->n;
    pthread_mutex_unlock(&s->mu);
    return n;
}

/* ---- files ---------------------------------------------------------------------- */

typedef struct fixture {
    char dir[64];
    test_sink sink;
    disc_file *f;
} fixture;

static int setup(void **state)
{
    fixture *fx = calloc(1, sizeof *fx);
    assert_non_null(fx);
    snprintf(fx->dir, sizeof fx->dir, "/tmp/firn_disc_file_XXXXXX");
    assert_non_null(mkdtemp(fx->dir));
    sink_init(&fx->sink);
    *state = fx;
    return 0;
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static int teardown(void **state)
{
    fixture *fx = *state;
    disc_file_stop(fx->f);
    sink_destroy(&fx->sink);
    nftw(fx->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(fx);
    return 0;
}

static void path_of(const fixture *fx, const char *name, char *out, size_t size)
{
    snprintf(out, size, "%s/%s", fx->dir, name);
}

/* Write in place: truncate, write, close (inotify sees MODIFY, CLOSE_WRITE). */
static void write_in_place(const fixture *fx, const char *name, const char *text)
{
    char path[128];
    path_of(fx, name, path, sizeof path);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
}

/* Write a temporary name no pattern matches, then rename(2) it over name. */
static void write_renamed(const fixture *fx, const char *name, const char *text)
{
    char path[128], tmp[160];
    path_of(fx, name, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    assert_int_equal(fputs(text, fp) >= 0, 1);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static void start(fixture *fx, const char *const *names, size_t n, int64_t refresh_ms)
{
    char *files[4];
    assert_true(n <= 4);
    for (size_t i = 0; i < n; i++) {
        files[i] = malloc(128);
        path_of(fx, names[i], files[i], 128);
    }
    config_file_sd cfg = {files, n, refresh_ms};
    firn_err err = {0};
    fx->f = disc_file_start(&cfg, &fx->sink.base, &err);
    for (size_t i = 0; i < n; i++)
        free(files[i]);   /* cfg is copied */
    if (!fx->f)
        fail_msg("disc_file_start: %s", err.msg);
}

/* "DIR/name:index" into buf. */
static const char *src(const fixture *fx, const char *name, int index, char *buf, size_t size)
{
    snprintf(buf, size, "%s/%s:%d", fx->dir, name, index);
    return buf;
}

/* The expected text of a group of file name with extra labels ("" or
 * "foo=\"bar\", ") sorted before __meta_filepath or after ("z" labels). */
static const char *want(const fixture *fx, const char *before, const char *name,
                        const char *after, const char *targets, char *buf, size_t size)
{
    snprintf(buf, size, "{%s__meta_filepath=\"%s/%s\"%s} %s", before, fx->dir, name, after,
             targets);
    return buf;
}

static const char valid_json[] =
    "[ {\"targets\": [\"localhost:9090\", \"example.org:443\"], \"labels\": {\"foo\": \"bar\"}},\n"
    "  {\"targets\": [\"my.domain\"]} ]\n";
static const char valid_yaml[] =
    "- targets: ['localhost:9090', 'example.org:443']\n"
    "  labels:\n"
    "    foo: bar\n"
    "- targets: ['my.domain']\n";

/* ---- the parser ------------------------------------------------------------------- */

typedef struct parse_case {
    const char *path;
    const char *text;
    int n_groups;        /* -1: refused */
    const char *error;   /* a part of the message when refused */
} parse_case;

static const parse_case parse_cases[] = {
    {"f/valid.json", valid_json, 2, NULL},
    {"f/valid.yml", valid_yaml, 2, NULL},
    {"f/VALID.YAML", valid_yaml, 2, NULL},
    {"f/upper.JSON", valid_json, 2, NULL},
    {"f/empty.yml", "", 0, NULL},
    {"f/null.json", "null", 0, NULL},
    {"f/list.json", "[]", 0, NULL},
    {"f/no_targets.json", "[{\"labels\": {\"a\": \"b\"}}]", 1, NULL},
    {"f/null_fields.yml", "- targets: ~\n  labels: ~\n", 1, NULL},
    {"f/empty.json", "", -1, "f/empty.json:"},
    {"f/invalid_nil.json", "[null]", -1, "nil target group item found"},
    {"f/invalid_nil.yml", "- null\n", -1, "nil target group item found"},
    {"f/unknown.json", "[{\"targets\": [\"a:1\"], \"foo\": 1}]", -1,
     "json: unknown field \"foo\""},
    {"f/unknown.yml", "- targets: ['a:1']\n  foo: 1\n", -1, "f/unknown.yml:2:3: foo: unknown field"},
    {"f/badname.json", "[{\"targets\": [\"a:1\"], \"labels\": {\"0x\": \"b\"}}]", -1,
     "\"0x\" is not a valid label name"},
    {"f/badname.yml", "- targets: ['a:1']\n  labels: {'a-b': c}\n", -1,
     "\"a-b\" is not a valid label name"},
    {"f/number.json", "[{\"targets\": [\"a:1\"], \"labels\": {\"a\": 1}}]", -1,
     "expected a string"},
    {"f/nested.yml", "- targets: ['a:1']\n  labels: {a: [1]}\n", -1, "expected a string"},
    {"f/target.json", "[{\"targets\": [1]}]", -1, "expected a list of strings"},
    {"f/target.yml", "- targets: [[x]]\n", -1, "expected a string"},
    {"f/object.json", "{\"targets\": [\"a:1\"]}", -1, "expected a list of target groups"},
    {"f/object.yml", "targets: ['a:1']\n", -1, "expected a list of target groups"},
    {"f/syntax.json", "[{\"targets\": [\"a:1\"]", -1, "f/syntax.json:1:"},
    {"f/syntax.yml", "- targets: ['a:1'\n", -1, "f/syntax.yml:"},
    {"f/dup.json", "[{\"targets\": [\"a:1\"], \"targets\": []}]", -1, "duplicate"},
    {"f/dup.yml", "- targets: ['a:1']\n  labels: {a: b, a: c}\n", -1, "duplicate"},
    {"f/x.txt", valid_json, -1, "unknown file extension"},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof parse_cases / sizeof *parse_cases; i++) {
        const parse_case *c = &parse_cases[i];
        disc_groups g;
        firn_err err = {0};
        int rc = disc_file_parse(c->path, c->text, strlen(c->text), &g, &err);
        if (c->n_groups < 0) {
            if (rc == 0)
                fail_msg("%s: accepted", c->path);
            if (!strstr(err.msg, c->error))
                fail_msg("%s: error \"%s\" lacks \"%s\"", c->path, err.msg, c->error);
            continue;
        }
        if (rc < 0)
            fail_msg("%s: %s", c->path, err.msg);
        assert_int_equal(g.n, (size_t)c->n_groups);
        for (size_t k = 0; k < g.n; k++) {
            char source[64];
            snprintf(source, sizeof source, "%s:%zu", c->path, k);
            assert_string_equal(g.v[k].source, source);
            assert_string_equal(firn_labels_get(g.v[k].labels, g.v[k].n_labels,
                                                "__meta_filepath"), c->path);
        }
        disc_groups_free(&g);
    }
}

/* The groups of the Prometheus fixture, in both formats. */
static void test_parse_groups(void **state)
{
    (void)state;
    const char *const paths[] = {"d/valid.json", "d/valid.yml"};
    const char *const texts[] = {valid_json, valid_yaml};
    for (size_t i = 0; i < 2; i++) {
        disc_groups g;
        firn_err err = {0};
        assert_int_equal(disc_file_parse(paths[i], texts[i], strlen(texts[i]), &g, &err), 0);
        assert_int_equal(g.n, 2);
        char *t0 = group_text(&g.v[0]), *t1 = group_text(&g.v[1]), w0[128], w1[128];
        snprintf(w0, sizeof w0, "{__meta_filepath=\"%s\", foo=\"bar\"} localhost:9090,example.org:443",
                 paths[i]);
        snprintf(w1, sizeof w1, "{__meta_filepath=\"%s\"} my.domain", paths[i]);
        assert_string_equal(t0, w0);
        assert_string_equal(t1, w1);
        free(t0);
        free(t1);
        disc_groups_free(&g);
    }
}

/* A __meta_filepath in the file loses to the real path; empty values go. */
static void test_parse_filepath_wins(void **state)
{
    (void)state;
    const char text[] =
        "[{\"targets\": [\"a:1\"], \"labels\": {\"__meta_filepath\": \"x\", \"e\": \"\"}}]";
    disc_groups g;
    firn_err err = {0};
    assert_int_equal(disc_file_parse("p.json", text, strlen(text), &g, &err), 0);
    char *t = group_text(&g.v[0]);
    assert_string_equal(t, "{__meta_filepath=\"p.json\"} a:1");
    free(t);
    disc_groups_free(&g);
}

/* ---- the provider ------------------------------------------------------------------ */

static void test_initial_json_and_yaml(void **state)
{
    fixture *fx = *state;
    write_renamed(fx, "a.json", valid_json);
    write_renamed(fx, "b.yml", valid_yaml);
    start(fx, (const char *const[]){"*.json", "b.yml"}, 2, HOUR_MS);
    char s[128], w[256];
    expect_source(&fx->sink, src(fx, "a.json", 0, s, sizeof s),
                  want(fx, "", "a.json", ", foo=\"bar\"", "localhost:9090,example.org:443", w,
                       sizeof w));
    expect_source(&fx->sink, src(fx, "a.json", 1, s, sizeof s),
                  want(fx, "", "a.json", "", "my.domain", w, sizeof w));
    expect_source(&fx->sink, src(fx, "b.yml", 0, s, sizeof s),
                  want(fx, "", "b.yml", ", foo=\"bar\"", "localhost:9090,example.org:443", w,
                       sizeof w));
    expect_source(&fx->sink, src(fx, "b.yml", 1, s, sizeof s),
                  want(fx, "", "b.yml", "", "my.domain", w, sizeof w));
    expect_ok(&fx->sink, 1);
    assert_int_equal(n_sources(&fx->sink), 4);
    assert_int_equal(fx->sink.failed, 0);
}

static void test_glob_two_files(void **state)
{
    fixture *fx = *state;
    write_renamed(fx, "one.json", "[{\"targets\": [\"h1:1\"]}]");
    write_renamed(fx, "two.json", "[{\"targets\": [\"h2:2\"]}]");
    write_renamed(fx, "other.yml", "- targets: ['h3:3']\n");
    write_renamed(fx, "one.json.bak", "[{\"targets\": [\"h4:4\"]}]");
    start(fx, (const char *const[]){"*.json"}, 1, HOUR_MS);
    char s[128], w[256];
    expect_source(&fx->sink, src(fx, "one.json", 0, s, sizeof s),
                  want(fx, "", "one.json", "", "h1:1", w, sizeof w));
    expect_source(&fx->sink, src(fx, "two.json", 0, s, sizeof s),
                  want(fx, "", "two.json", "", "h2:2", w, sizeof w));
    expect_ok(&fx->sink, 1);
    assert_int_equal(n_sources(&fx->sink), 2);
}

/* An in-place write is seen through inotify, long before the hour. */
static void test_modify_in_place(void **state)
{
    fixture *fx = *state;
    write_renamed(fx, "a.json", "[{\"targets\": [\"old:1\"]}]");
    start(fx, (const char *const[]){"*.json"}, 1, HOUR_MS);
    char s[128], w[256];
    expect_source(&fx->sink, src(fx, "a.json", 0, s, sizeof s),
                  want(fx, "", "a.json", "", "old:1", w, sizeof w));
    write_in_place(fx, "a.json", "[{\"targets\": [\"new:1\"], \"labels\": {\"z\": \"1\"}}]");
    expect_source(&fx->sink, src(fx, "a.json", 0, s, sizeof s),
                  want(fx, "", "a.json", ", z=\"1\"", "new:1", w, sizeof w));
}

/* Write-then-rename replaces a file and adds a new one. */
static void test_atomic_rename(void **state)
{
    fixture *fx = *state;
    write_renamed(fx, "a.yaml", "- targets: ['old:1']\n");
    start(fx, (const char *const[]){"*.yaml"}, 1, HOUR_MS);
    char s[128], w[256];
    expect_source(&fx->sink, src(fx, "a.yaml", 0, s, sizeof s),
                  want(fx, "", "a.yaml", "", "old:1", w, sizeof w));
    write_renamed(fx, "a.yaml", "- targets: ['new:1', 'new:2']\n");
    expect_source(&fx->sink, src(fx, "a.yaml", 0, s, sizeof s),
                  want(fx, "", "a.yaml", "", "new:1,new:2", w, sizeof w));
    write_renamed(fx, "b.yaml", "- targets: ['b:1']\n");
    expect_source(&fx->sink, src(fx, "b.yaml", 0, s, sizeof s),
                  want(fx, "", "b.yaml", "", "b:1", w, sizeof w));
    assert_int_equal(fx->sink.failed, 0);
}

/* A bad update keeps the old targets and fails the refresh; fixing the
 * file applies again (TestInvalidFileUpdate). */
static void test_broken_keeps_previous(void **state)
{
    fixture *fx = *state;
    write_renamed(fx, "a.json", "[{\"targets\": [\"good:1\"]}]");
    start(fx, (const char *const[]){"*.json"}, 1, HOUR_MS);
    char s[128], w[256];
    want(fx, "", "a.json", "", "good:1", w, sizeof w);
    expect_source(&fx->sink, src(fx, "a.json", 0, s, sizeof s), w);
    expect_ok(&fx->sink, 1);
    write_renamed(fx, "a.json", "[{\"targets\": [\"bad:1\"]");
    expect_failed(&fx->sink, 1);
    expect_source(&fx->sink, s, w);
    write_renamed(fx, "a.json", "[{\"targets\": [\"fixed:1\"]}]");
    expect_source(&fx->sink, s, want(fx, "", "a.json", "", "fixed:1", w, sizeof w));
}

/* Refused whole: an unknown JSON field, a bad label name; and a file over
 * the size cap.  The other file of the glob is unaffected. */
static void test_refused_files(void **state)
{
    fixture *fx = *state;
    write_renamed(fx, "good.json", "[{\"targets\": [\"g:1\"]}]");
    write_renamed(fx, "unknown.json", "[{\"targets\": [\"u:1\"], \"foo\": \"bar\"}]");
    write_renamed(fx, "badname.json", "[{\"targets\": [\"b:1\"], \"labels\": {\"a.b\": \"c\"}}]");
    start(fx, (const char *const[]){"*.json"}, 1, HOUR_MS);
    char s[128], w[256];
    expect_source(&fx->sink, src(fx, "good.json", 0, s, sizeof s),
                  want(fx, "", "good.json", "", "g:1", w, sizeof w));
    expect_failed(&fx->sink, 1);
    assert_int_equal(n_sources(&fx->sink), 1);

    /* Sparse, one byte over the cap, renamed in so only the cap can fail it. */
    char path[128], tmp[128];
    path_of(fx, "big.json", path, sizeof path);
    path_of(fx, "big.tmp", tmp, sizeof tmp);
    FILE *fp = fopen(tmp, "w");
    assert_non_null(fp);
    assert_int_equal(ftruncate(fileno(fp), (16 << 20) + 1), 0);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(rename(tmp, path), 0);
    expect_failed(&fx->sink, 2);
    assert_int_equal(n_sources(&fx->sink), 1);
}

/* Removing a file empties its sources (TestRemoveFile). */
static void test_delete_empties(void **state)
{
    fixture *fx = *state;
    write_renamed(fx, "a.json", valid_json);
    write_renamed(fx, "b.json", "[{\"targets\": [\"b:1\"]}]");
    start(fx, (const char *const[]){"*.json"}, 1, HOUR_MS);
    char s[128], w[256];
    expect_source(&fx->sink, src(fx, "a.json", 1, s, sizeof s),
                  want(fx, "", "a.json", "", "my.domain", w, sizeof w));
    expect_source(&fx->sink, src(fx, "b.json", 0, s, sizeof s),
                  want(fx, "", "b.json", "", "b:1", w, sizeof w));
    char path[128];
    path_of(fx, "a.json", path, sizeof path);
    assert_int_equal(unlink(path), 0);
    expect_source(&fx->sink, src(fx, "a.json", 0, s, sizeof s), NULL);
    expect_source(&fx->sink, src(fx, "a.json", 1, s, sizeof s), NULL);
    assert_int_equal(n_sources(&fx->sink), 1);
}

/* Fewer entries empty the vanished indexes only. */
static void test_shrink_empties_vanished(void **state)
{
    fixture *fx = *state;
    write_renamed(fx, "a.yml", "- targets: ['x:0']\n- targets: ['x:1']\n- targets: ['x:2']\n");
    start(fx, (const char *const[]){"a.yml"}, 1, HOUR_MS);
    char s[128], w[256];
    expect_source(&fx->sink, src(fx, "a.yml", 2, s, sizeof s),
                  want(fx, "", "a.yml", "", "x:2", w, sizeof w));
    write_renamed(fx, "a.yml", "- targets: ['y:0']\n");
    expect_source(&fx->sink, src(fx, "a.yml", 0, s, sizeof s),
                  want(fx, "", "a.yml", "", "y:0", w, sizeof w));
    expect_source(&fx->sink, src(fx, "a.yml", 1, s, sizeof s), NULL);
    expect_source(&fx->sink, src(fx, "a.yml", 2, s, sizeof s), NULL);
}

/* Without inotify news the timer refreshes: a file in a directory that does
 * not exist yet is found once the directory appears. */
static void test_refresh_interval(void **state)
{
    fixture *fx = *state;
    start(fx, (const char *const[]){"later/*.json"}, 1, 100);
    expect_ok(&fx->sink, 1);
    char path[128];
    path_of(fx, "later", path, sizeof path);
    assert_int_equal(mkdir(path, 0700), 0);
    write_renamed(fx, "later/a.json", "[{\"targets\": [\"l:1\"]}]");
    char s[128], w[256];
    expect_source(&fx->sink, src(fx, "later/a.json", 0, s, sizeof s),
                  want(fx, "", "later/a.json", "", "l:1", w, sizeof w));
}

static void test_bad_pattern_refused(void **state)
{
    (void)state;
    test_sink sink;
    sink_init(&sink);
    const char *const bad[] = {"d*/x.json", "a*b*.json", "x.txt", "*.json.bak", "noext"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *files[1] = {(char *)bad[i]};
        config_file_sd cfg = {files, 1, HOUR_MS};
        firn_err err = {0};
        assert_null(disc_file_start(&cfg, &sink.base, &err));
        assert_non_null(strstr(err.msg, "is not valid for file discovery"));
    }
    config_file_sd none = {NULL, 0, HOUR_MS};
    firn_err err = {0};
    assert_null(disc_file_start(&none, &sink.base, &err));
    assert_non_null(strstr(err.msg, "at least one path name"));
    sink_destroy(&sink);
}

/* stop wakes the thread in its hour-long wait at once. */
static void test_stop_is_prompt(void **state)
{
    fixture *fx = *state;
    write_renamed(fx, "a.json", "[{\"targets\": [\"a:1\"]}]");
    start(fx, (const char *const[]){"*.json"}, 1, HOUR_MS);
    expect_ok(&fx->sink, 1);
    int64_t t0 = firn_mono_ms();
    disc_file_stop(fx->f);
    fx->f = NULL;
    assert_true(firn_mono_ms() - t0 < 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_groups),
        cmocka_unit_test(test_parse_filepath_wins),
        cmocka_unit_test(test_bad_pattern_refused),
        cmocka_unit_test_setup_teardown(test_initial_json_and_yaml, setup, teardown),
        cmocka_unit_test_setup_teardown(test_glob_two_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_modify_in_place, setup, teardown),
        cmocka_unit_test_setup_teardown(test_atomic_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_broken_keeps_previous, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_delete_empties, setup, teardown),
        cmocka_unit_test_setup_teardown(test_shrink_empties_vanished, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refresh_interval, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stop_is_prompt, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
