/* test_pql_profile.c -- profile queries (pql_profile_tree, pql_profile_pprof)
 * against their contract in promql-like/pql.h.
 *
 * Each test fills a store in its own mkdtemp directory (removed by the
 * teardown, even when the test fails) with synthetic profiles, whose
 * stacks and values make every expected node value exact, and with real
 * fixtures from ../shared/fixtures/pprof (FIRN_FIXTURES overrides the
 * directory), whose totals come from pprof_totals.  max_nodes on the
 * largest fixture is checked node by node against a reference tree and
 * selection built here from the merged pprof.
 *
 * Synthetic stacks are written root first, frames separated by ';':
 *   name             a function in app.go
 *   name@file!N      a function in file, starting at line N (both optional)
 *   outer+inner      one location with inlined frames (inner innermost)
 *   #lib:1234        an unsymbolized frame in mapping /lib/<lib> at 0x1234
 *   #:99             an unsymbolized frame without a mapping at 0x99
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fixtures.h"

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "pprof/pprof.h"
#include "promql-like/pql.h"
#include "tsdb/tsdb.h"

#define FX_CPU "pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz"       /* samples, cpu */
#define FX_LABELS "pyro-pkg_pprof_testdata_go.cpu.labels.pprof"     /* samples, cpu; labels */
#define FX_HEAP "alloy-heap.pprof"                                  /* 4 sample types */
#define FX_LARGE "pprof-internal_proftest_testdata_large.cpu"     /* 23k locations */

#define CPU "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
#define SAMPLES "process_cpu:samples:count:cpu:nanoseconds"
#define INUSE "memory:inuse_space:bytes:space:bytes"

#define N(a) (sizeof(a) / sizeof *(a))

/* ---- store helpers ------------------------------------------------------ */

struct fixture {
    char dir[64];
    tsdb *db;
};

static int store_setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    snprintf(f->dir, sizeof f->dir, "/tmp/firn-test-pqlp-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = f->dir;
    o.retention_ms = 0;
    o.retention_interval_ms = 3600 * 1000;
    firn_err err = {0};
    if (!(f->db = tsdb_open(&o, &err))) {
        print_error("tsdb_open %s: %s\n", f->dir, err.msg);
        remove_tree(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int store_teardown(void **state)
{
    struct fixture *f = *state;
    tsdb_close(f->db);
    remove_tree(f->dir);
    free(f);
    return 0;
}

static void append_ok(tsdb *db, const pprof_profile *p, const firn_label *labels, size_t n,
                      const char *name, int64_t ts)
{
    tsdb_append_req req = {.labels = labels, .n_labels = n, .profile_name = name,
                           .profile = p, .timestamp_ms = ts};
    firn_err err = {0};
    if (tsdb_append(db, &req, &err) != 0)
        fail_msg("append %s at %lld: %s", name, (long long)ts, err.msg);
}

/* ---- synthetic profiles ----------------------------------------------------- */

struct sspec {
    const char *stack;           /* root first, see the top comment */
    int64_t value;
    const char *labels;          /* "k=v,k2=#7" (#: numeric) or NULL */
};

static uint32_t add_function(pprof_builder *b, const char *tok, size_t len)
{
    char buf[256];
    snprintf(buf, sizeof buf, "%.*s", (int)len, tok);
    int64_t start_line = 1;
    const char *file = "app.go";
    char *bang = strchr(buf, '!');
    if (bang) {
        *bang = 0;
        start_line = atoll(bang + 1);
    }
    char *at = strchr(buf, '@');
    if (at) {
        *at = 0;
        file = at + 1;
    }
    pprof_function f = {.name = pprof_builder_string(b, buf, strlen(buf)),
                        .system_name = pprof_builder_string(b, buf, strlen(buf)),
                        .filename = pprof_builder_string(b, file, strlen(file)),
                        .start_line = start_line};
    return pprof_builder_function(b, &f);
}

/* One location for one frame token. */
static uint32_t add_location(pprof_builder *b, const char *tok, size_t len)
{
    pprof_location l = {.mapping = PPROF_NONE};
    if (tok[0] == '#') {
        const char *colon = memchr(tok, ':', len);
        assert_non_null(colon);
        char lib[128], path[160];
        snprintf(lib, sizeof lib, "%.*s", (int)(colon - tok - 1), tok + 1);
        l.address = strtoull(colon + 1, NULL, 16);
        if (*lib) {
            snprintf(path, sizeof path, "/lib/%s", lib);
            pprof_mapping m = {.memory_start = 0x1000,
                               .memory_limit = 0x100000,
                               .filename = pprof_builder_string(b, path, strlen(path))};
            l.mapping = pprof_builder_mapping(b, &m);
        }
        return pprof_builder_location(b, &l);
    }
    /* inlined frames, outermost first in the token; lines[0] is innermost */
    pprof_line lines[8];
    size_t n = 0;
    const char *p = tok, *end = tok + len;
    while (p < end) {
        const char *plus = memchr(p, '+', (size_t)(end - p));
        const char *e = plus ? plus : end;
        assert_true(n < N(lines));
        lines[n++] = (pprof_line){.function = add_function(b, p, (size_t)(e - p)), .line = 10};
        p = plus ? plus + 1 : end;
    }
    for (size_t i = 0; i < n / 2; i++) {
        pprof_line t = lines[i];
        lines[i] = lines[n - 1 - i];
        lines[n - 1 - i] = t;
    }
    l.lines = lines;
    l.n_lines = n;
    l.address = 0x500 + (uint64_t)len;
    return pprof_builder_location(b, &l);
}

static pprof_profile *make_profile(const struct sspec *specs, size_t n)
{
    pprof_builder *b = pprof_builder_new(1);
    assert_non_null(b);
    pprof_builder_sample_type(b, 0, "cpu", "nanoseconds");
    pprof_builder_period(b, "cpu", "nanoseconds", 10000000);
    for (size_t i = 0; i < n; i++) {
        uint32_t locs[64];
        size_t nl = 0;
        const char *p = specs[i].stack, *end = p + strlen(p);
        while (p < end) {
            const char *semi = strchr(p, ';');
            const char *e = semi ? semi : end;
            assert_true(nl < N(locs));
            locs[nl++] = add_location(b, p, (size_t)(e - p));
            p = semi ? semi + 1 : end;
        }
        for (size_t k = 0; k < nl / 2; k++) {   /* pprof stacks are leaf first */
            uint32_t t = locs[k];
            locs[k] = locs[nl - 1 - k];
            locs[nl - 1 - k] = t;
        }
        pprof_label labels[8];
        size_t nlab = 0;
        if (specs[i].labels) {
            char buf[256];
            snprintf(buf, sizeof buf, "%s", specs[i].labels);
            for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv;
                 kv = strtok_r(NULL, ",", &save)) {
                char *eq = strchr(kv, '=');
                assert_non_null(eq);
                *eq = 0;
                assert_true(nlab < N(labels));
                pprof_label lab = {.key = pprof_builder_string(b, kv, strlen(kv))};
                if (eq[1] == '#')   /* numeric */
                    lab.num = atoll(eq + 2);
                else
                    lab.str = pprof_builder_string(b, eq + 1, strlen(eq + 1));
                labels[nlab++] = lab;
            }
        }
        assert_int_equal(pprof_builder_sample(b, locs, nl, &specs[i].value, labels, nlab), 0);
    }
    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    if (!p)
        fail_msg("builder: %s", err.msg);
    return p;
}

/* main;a;b = 10, main;a;c = 5, main;d = 1 */
static const struct sspec BASIC[] = {
    {"main;a;b", 10, NULL},
    {"main;a;c", 5, NULL},
    {"main;d", 1, NULL},
};

static void append_specs(tsdb *db, const struct sspec *s, size_t n, const char *job, int64_t ts)
{
    pprof_profile *p = make_profile(s, n);
    firn_label l[] = {{"job", job}};
    append_ok(db, p, l, 1, "process_cpu", ts);
    pprof_free(p);
}

/* ---- queries ---------------------------------------------------------------- */

static pql_profile_request merge_req(const char *query, int64_t start, int64_t end)
{
    return (pql_profile_request){.query = query, .mode = PQL_PROFILE_MERGE,
                                 .start_ms = start, .end_ms = end};
}

static pql_profile_request single_req(const char *query, int64_t t)
{
    return (pql_profile_request){.query = query, .mode = PQL_PROFILE_SINGLE, .time_ms = t};
}

static void check_node(const pql_tree *t, const pql_node *n)
{
    int64_t self = n->self, cself = n->compare_self;
    for (size_t i = 0; i < n->n_children; i++) {
        const pql_node *c = &n->children[i];
        self += c->cum;
        cself += c->compare_cum;
        if (i > 0) {
            const pql_node *prev = &n->children[i - 1];
            assert_true(prev->cum > c->cum ||
                        (prev->cum == c->cum && prev->compare_cum >= c->compare_cum));
        }
        if (c->function != UINT32_MAX) {
            assert_true(c->function < t->n_functions);
            assert_string_equal(t->functions[c->function].name, c->name);
        }
        check_node(t, c);
    }
    if (self != n->cum || cself != n->compare_cum)
        fail_msg("node %s: cum %lld/%lld, self + children %lld/%lld", n->name,
                 (long long)n->cum, (long long)n->compare_cum, (long long)self,
                 (long long)cself);
}

/* The tree's invariants: cum = self + children's cum (both sides), children
 * in order, function indexes in range and naming the node, the root. */
static void check_tree(const pql_tree *t)
{
    assert_non_null(t->arena);
    assert_string_equal(t->root.name, "total");
    assert_int_equal(t->root.function, UINT32_MAX);
    assert_int_equal(t->root.cum, t->total);
    assert_int_equal(t->root.compare_cum, t->compare_total);
    check_node(t, &t->root);
}

static void tree_ok(tsdb *db, const pql_profile_request *req, pql_tree *t)
{
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(db, &err);
    if (!r)
        fail_msg("reader: %s", err.msg);
    int rc = pql_profile_tree(r, req, t, &err);
    tsdb_reader_close(r);
    if (rc != 0)
        fail_msg("query %s: %s", req->query, err.msg);
    check_tree(t);
}

static void tree_refused(tsdb *db, const pql_profile_request *req, int code, const char *want,
                         const char *want2)
{
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(db, &err);
    assert_non_null(r);
    pql_tree t;
    int rc = pql_profile_tree(r, req, &t, &err);
    tsdb_reader_close(r);
    if (rc == 0) {
        pql_tree_free(&t);
        fail_msg("query %s: answered, expected an error containing \"%s\"", req->query, want);
    }
    assert_int_equal(rc, code);
    assert_int_equal(err.code, code);
    assert_null(t.arena);
    if (!strstr(err.msg, want) || (want2 && !strstr(err.msg, want2)))
        fail_msg("query %s: error \"%s\" does not contain \"%s\"%s%s", req->query, err.msg,
                 want, want2 ? " and " : "", want2 ? want2 : "");
}

static pprof_profile *pprof_ok(tsdb *db, const pql_profile_request *req)
{
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(db, &err);
    assert_non_null(r);
    pprof_profile *p = pql_profile_pprof(r, req, &err);
    tsdb_reader_close(r);
    if (!p)
        fail_msg("pprof %s: %s", req->query, err.msg);
    return p;
}

static void pprof_refused(tsdb *db, const pql_profile_request *req, int code, const char *want)
{
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(db, &err);
    assert_non_null(r);
    pprof_profile *p = pql_profile_pprof(r, req, &err);
    tsdb_reader_close(r);
    if (p) {
        pprof_free(p);
        fail_msg("pprof %s: answered, expected an error containing \"%s\"", req->query, want);
    }
    assert_int_equal(err.code, code);
    if (!strstr(err.msg, want))
        fail_msg("pprof %s: error \"%s\" does not contain \"%s\"", req->query, err.msg, want);
}

/* The child of n called name, or NULL. */
static const pql_node *child(const pql_node *n, const char *name)
{
    for (size_t i = 0; i < n->n_children; i++)
        if (strcmp(n->children[i].name, name) == 0)
            return &n->children[i];
    return NULL;
}

/* The node at a ';'-separated path of names below the root, or NULL. */
static const pql_node *find(const pql_tree *t, const char *path)
{
    const pql_node *n = &t->root;
    char buf[512];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save = NULL, *tok = strtok_r(buf, ";", &save); tok && n;
         tok = strtok_r(NULL, ";", &save))
        n = child(n, tok);
    return n;
}

static const pql_node *at(const pql_tree *t, const char *path)
{
    const pql_node *n = find(t, path);
    if (!n)
        fail_msg("no node at %s", path);
    return n;
}

static void values(const pql_tree *t, const char *path, int64_t self, int64_t cum)
{
    const pql_node *n = at(t, path);
    if (n->self != self || n->cum != cum)
        fail_msg("%s: self %lld cum %lld, want %lld %lld", path, (long long)n->self,
                 (long long)n->cum, (long long)self, (long long)cum);
}

static void diff_values(const pql_tree *t, const char *path, int64_t self, int64_t cum,
                        int64_t cself, int64_t ccum)
{
    const pql_node *n = at(t, path);
    if (n->self != self || n->cum != cum || n->compare_self != cself || n->compare_cum != ccum)
        fail_msg("%s: %lld/%lld compare %lld/%lld, want %lld/%lld compare %lld/%lld", path,
                 (long long)n->self, (long long)n->cum, (long long)n->compare_self,
                 (long long)n->compare_cum, (long long)self, (long long)cum,
                 (long long)cself, (long long)ccum);
}

static size_t count_nodes(const pql_node *n, const char *name)
{
    size_t c = 0;
    for (size_t i = 0; i < n->n_children; i++)
        c += (!name || strcmp(n->children[i].name, name) == 0) +
             count_nodes(&n->children[i], name);
    return c;
}

static int64_t total0(const pprof_profile *p)
{
    int64_t t = 0;
    for (size_t i = 0; i < p->n_samples; i++)
        t += p->samples[i].values[0];
    return t;
}

/* ---- tests --------------------------------------------------------------------- */

static void test_merge_synthetic(void **state)
{
    struct fixture *f = *state;
    for (int i = 1; i <= 3; i++)
        append_specs(f->db, BASIC, N(BASIC), "a", 1000 * i);
    append_specs(f->db, BASIC, N(BASIC), "b", 1000);

    pql_tree t;
    pql_profile_request req = merge_req(CPU "{job=\"a\"}", 0, 10000);
    tree_ok(f->db, &req, &t);
    assert_false(t.diff);
    assert_string_equal(t.profile_type, CPU);
    assert_string_equal(t.sample_type, "cpu");
    assert_string_equal(t.sample_unit, "nanoseconds");
    assert_int_equal(t.total, 48);
    assert_int_equal(t.root.self, 0);
    assert_int_equal(t.root.n_children, 1);
    values(&t, "main", 0, 48);
    values(&t, "main;a", 0, 45);
    values(&t, "main;a;b", 30, 30);
    values(&t, "main;a;c", 15, 15);
    values(&t, "main;d", 3, 3);
    const pql_node *m = at(&t, "main");
    assert_int_equal(m->n_children, 2);
    assert_string_equal(m->children[0].name, "a");   /* by cum, descending */
    assert_string_equal(m->children[1].name, "d");
    assert_int_equal(count_nodes(&t.root, NULL), 5);
    /* one function entry per distinct function, as the nodes name it */
    assert_int_equal(t.n_functions, 5);
    const pql_function_info *fi = &t.functions[at(&t, "main;a;b")->function];
    assert_string_equal(fi->name, "b");
    assert_string_equal(fi->system_name, "b");
    assert_string_equal(fi->filename, "app.go");
    assert_int_equal(fi->start_line, 1);
    assert_string_equal(fi->mapping, "");
    pql_tree_free(&t);
    pql_tree_free(&t);   /* freeing twice is harmless */

    /* a window: the profile at 2000 only */
    req = merge_req(CPU "{job=\"a\"}", 1500, 2500);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 16);
    pql_tree_free(&t);

    /* every job: four profiles */
    req = merge_req(CPU, INT64_MIN, INT64_MAX);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 64);
    values(&t, "main;a;b", 40, 40);
    pql_tree_free(&t);

    /* the same as pprof */
    req = merge_req(CPU "{job=\"a\"}", 0, 10000);
    pprof_profile *p = pprof_ok(f->db, &req);
    assert_int_equal(p->n_sample_types, 1);
    assert_string_equal(pprof_str(p, p->sample_types[0].type), "cpu");
    assert_int_equal(total0(p), 48);
    assert_int_equal(p->n_samples, 3);
    for (size_t i = 0; i < p->n_samples; i++)
        assert_int_equal(p->samples[i].n_labels, 0);
    pprof_free(p);
}

static void test_single(void **state)
{
    struct fixture *f = *state;
    append_specs(f->db, BASIC, N(BASIC), "a", 1000);
    append_specs(f->db, BASIC, N(BASIC), "a", 2000);
    append_specs(f->db, BASIC, N(BASIC), "b", 2000);
    static const struct sspec other[] = {{"main;x", 7, NULL}};
    append_specs(f->db, other, N(other), "c", 2000);

    pql_tree t;
    pql_profile_request req = single_req(CPU "{job=\"a\"}", 2000);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 16);
    values(&t, "main;a;b", 10, 10);
    pql_tree_free(&t);

    /* every series with a profile at exactly that time, merged */
    req = single_req(CPU, 2000);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 16 + 16 + 7);
    values(&t, "main", 0, 39);
    values(&t, "main;x", 7, 7);
    pql_tree_free(&t);

    req = single_req(CPU, 1000);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 16);
    assert_null(find(&t, "main;x"));
    pql_tree_free(&t);

    /* no profile at that time: an empty tree */
    req = single_req(CPU, 1500);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 0);
    assert_int_equal(t.root.n_children, 0);
    pql_tree_free(&t);

    req = single_req(CPU "{job=\"b\"}", 2000);
    pprof_profile *p = pprof_ok(f->db, &req);
    assert_int_equal(total0(p), 16);
    pprof_free(p);
}

static void test_fixtures(void **state)
{
    struct fixture *f = *state;
    pprof_profile *cpu = decode_fixture(FX_CPU), *heap = decode_fixture(FX_HEAP);
    firn_label a[] = {{"job", "a"}};
    for (int i = 1; i <= 3; i++)
        append_ok(f->db, cpu, a, 1, "process_cpu", 1000 * i);
    append_ok(f->db, heap, a, 1, "memory", 1000);
    int64_t ct[2], ht[4];
    pprof_totals(cpu, ct);
    pprof_totals(heap, ht);
    int cpu_col = pprof_sample_type_index(cpu, "cpu");
    int samples_col = pprof_sample_type_index(cpu, "samples");
    int inuse_col = pprof_sample_type_index(heap, "inuse_space");
    assert_true(cpu_col >= 0 && samples_col >= 0 && inuse_col >= 0);

    pql_tree t;
    pql_profile_request req = merge_req(CPU "{job=\"a\"}", INT64_MIN, INT64_MAX);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 3 * ct[cpu_col]);
    assert_true(t.root.n_children > 0);
    assert_true(t.n_functions > 0);
    pql_tree_free(&t);

    req = merge_req(SAMPLES, INT64_MIN, INT64_MAX);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 3 * ct[samples_col]);
    assert_string_equal(t.sample_type, "samples");
    assert_string_equal(t.sample_unit, "count");
    pql_tree_free(&t);

    req = merge_req("{__name__=~\"memory:inuse_space:.*\"}", 0, 5000);
    tree_ok(f->db, &req, &t);
    assert_string_equal(t.profile_type, INUSE);
    assert_string_equal(t.sample_type, "inuse_space");
    assert_string_equal(t.sample_unit, "bytes");
    assert_int_equal(t.total, ht[inuse_col]);
    pql_tree_free(&t);

    req = single_req(CPU, 2000);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, ct[cpu_col]);
    pql_tree_free(&t);

    req = merge_req(INUSE, 0, 5000);
    pprof_profile *p = pprof_ok(f->db, &req);
    assert_int_equal(total0(p), ht[inuse_col]);
    pprof_free(p);

    pprof_free(cpu);
    pprof_free(heap);
}

static void test_frames(void **state)
{
    struct fixture *f = *state;
    static const struct sspec frames[] = {
        {"main;outer+inl;leaf", 4, NULL},       /* inlined: outer above inl */
        {"main;#libc.so.6:1234", 3, NULL},      /* unsymbolized, in a mapping */
        {"main;#:99", 2, NULL},                 /* unsymbolized, no mapping */
        {"main;dup@x.go", 5, NULL},             /* same name, other files: two nodes */
        {"main;dup@y.go", 6, NULL},
        {"main;same@z.go!1", 7, NULL},          /* same name and file: one node */
        {"main;same@z.go!2", 8, NULL},
        {"main", 9, NULL},                      /* main itself is the leaf */
        {"main;rec;rec;rec", 1, NULL},          /* recursion: a node per frame */
    };
    append_specs(f->db, frames, N(frames), "a", 1000);
    pql_tree t;
    pql_profile_request req = merge_req(CPU, 0, 2000);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 45);
    values(&t, "main", 9, 45);
    values(&t, "main;outer", 0, 4);
    values(&t, "main;outer;inl", 0, 4);
    values(&t, "main;outer;inl;leaf", 4, 4);
    values(&t, "main;[libc.so.6] 0x1234", 3, 3);
    values(&t, "main;0x99", 2, 2);
    values(&t, "main;same", 15, 15);
    values(&t, "main;rec;rec;rec", 1, 1);
    values(&t, "main;rec;rec", 0, 1);
    const pql_function_info *lib = &t.functions[at(&t, "main;[libc.so.6] 0x1234")->function];
    assert_string_equal(lib->mapping, "/lib/libc.so.6");
    assert_string_equal(lib->filename, "");
    assert_string_equal(t.functions[at(&t, "main;0x99")->function].mapping, "");
    const pql_node *m = at(&t, "main");
    size_t dups = 0;
    for (size_t i = 0; i < m->n_children; i++)
        if (strcmp(m->children[i].name, "dup") == 0) {
            const pql_function_info *fi = &t.functions[m->children[i].function];
            assert_int_equal(m->children[i].cum,
                             strcmp(fi->filename, "x.go") == 0 ? 5 : 6);
            dups++;
        }
    assert_int_equal(dups, 2);
    /* the functions the nodes name: main outer inl leaf lib 0x99 dup(x)
     * dup(y) same rec; same!2 shares same!1's node, which names the first */
    assert_int_equal(t.n_functions, 10);
    size_t same = 0;
    for (size_t i = 0; i < t.n_functions; i++)
        same += strcmp(t.functions[i].name, "same") == 0;
    assert_int_equal(same, 1);
    /* siblings: same 15, main's children by cum then name */
    assert_string_equal(m->children[0].name, "same");
    assert_string_equal(m->children[1].name, "dup");
    assert_int_equal(m->children[1].cum, 6);
    pql_tree_free(&t);

    /* a filter sees inlined frames: inl is a frame of its own */
    req.filter = "inl";
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 4);
    pql_tree_free(&t);
}

static void test_diff(void **state)
{
    struct fixture *f = *state;
    append_specs(f->db, BASIC, N(BASIC), "a", 1000);
    static const struct sspec cmp[] = {{"main;a;b", 4, NULL}, {"main;e", 7, NULL}};
    append_specs(f->db, cmp, N(cmp), "b", 5000);
    append_specs(f->db, cmp, N(cmp), "b", 6000);

    pql_tree t;
    pql_profile_request req = merge_req(CPU "{job=\"a\"}", 0, 2000);
    req.compare_query = CPU "{job=\"b\"}";
    req.compare_mode = PQL_PROFILE_SINGLE;
    req.compare_time_ms = 5000;
    tree_ok(f->db, &req, &t);
    assert_true(t.diff);
    assert_int_equal(t.total, 16);
    assert_int_equal(t.compare_total, 11);
    diff_values(&t, "main", 0, 16, 0, 11);
    diff_values(&t, "main;a", 0, 15, 0, 4);
    diff_values(&t, "main;a;b", 10, 10, 4, 4);
    diff_values(&t, "main;a;c", 5, 5, 0, 0);      /* base only */
    diff_values(&t, "main;d", 1, 1, 0, 0);
    diff_values(&t, "main;e", 0, 0, 7, 7);        /* compare only */
    pql_tree_free(&t);

    /* the compare side has its own range */
    req.compare_mode = PQL_PROFILE_MERGE;
    req.compare_start_ms = 0;
    req.compare_end_ms = 10000;
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.compare_total, 22);
    diff_values(&t, "main;e", 0, 0, 14, 14);
    pql_tree_free(&t);

    /* an empty compare side is a diff against nothing */
    req.compare_query = CPU "{job=\"nope\"}";
    tree_ok(f->db, &req, &t);
    assert_true(t.diff);
    assert_int_equal(t.compare_total, 0);
    diff_values(&t, "main;a;b", 10, 10, 0, 0);
    pql_tree_free(&t);

    /* another sample type cannot be compared */
    pprof_profile *heap = decode_fixture(FX_HEAP);
    firn_label c[] = {{"job", "c"}};
    append_ok(f->db, heap, c, 1, "memory", 1000);
    pprof_free(heap);
    req.compare_query = INUSE;
    tree_refused(f->db, &req, FIRN_EINVAL, "cannot compare", INUSE);
    /* compare-side errors say so */
    req.compare_query = "sum(" CPU ")";
    tree_refused(f->db, &req, FIRN_EINVAL, "compare query", "selector");
}

static void test_group_by(void **state)
{
    struct fixture *f = *state;
    static const struct sspec labeled[] = {
        {"main;a;b", 10, "foo=x,bar=1"},
        {"main;a;c", 5, "foo=y"},
        {"main;d", 1, NULL},
        {"main;a;b", 2, "foo=x,bar=2,n=#42"},
    };
    append_specs(f->db, labeled, N(labeled), "a", 1000);
    append_specs(f->db, labeled, N(labeled), "a", 2000);

    const char *by_foo[] = {"foo"};
    pql_tree t;
    pql_profile_request req = merge_req(CPU, 0, 5000);
    req.group_by = by_foo;
    req.n_group_by = 1;
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 36);
    assert_int_equal(t.root.n_children, 3);
    assert_string_equal(t.root.children[0].name, "foo=x");
    values(&t, "foo=x", 0, 24);
    values(&t, "foo=x;main;a;b", 24, 24);
    values(&t, "foo=y", 0, 10);
    values(&t, "foo=y;main;a;c", 10, 10);
    values(&t, "foo=", 0, 2);
    values(&t, "foo=;main;d", 2, 2);
    assert_int_equal(at(&t, "foo=x")->function, UINT32_MAX);
    pql_tree_free(&t);

    const char *by_two[] = {"foo", "bar"};
    req.group_by = by_two;
    req.n_group_by = 2;
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.root.n_children, 4);
    values(&t, "foo=x, bar=1", 0, 20);
    values(&t, "foo=x, bar=2", 0, 4);
    values(&t, "foo=y, bar=", 0, 10);
    values(&t, "foo=, bar=", 0, 2);
    pql_tree_free(&t);

    /* a numeric label groups by its number */
    const char *by_n[] = {"n"};
    req.group_by = by_n;
    req.n_group_by = 1;
    tree_ok(f->db, &req, &t);
    values(&t, "n=42;main;a;b", 4, 4);
    values(&t, "n=", 0, 32);
    pql_tree_free(&t);

    /* pprof keeps only the group_by labels, samples summed */
    req.group_by = by_foo;
    req.n_group_by = 1;
    pprof_profile *p = pprof_ok(f->db, &req);
    assert_int_equal(total0(p), 36);
    assert_int_equal(p->n_samples, 3);
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_sample *s = &p->samples[i];
        if (s->values[0] == 2) {
            assert_int_equal(s->n_labels, 0);
            continue;
        }
        assert_int_equal(s->n_labels, 1);
        assert_string_equal(pprof_str(p, s->labels[0].key), "foo");
        assert_string_equal(pprof_str(p, s->labels[0].str), s->values[0] == 24 ? "x" : "y");
    }
    pprof_free(p);

    /* the labeled fixture: groups partition the total */
    pprof_profile *fx = decode_fixture(FX_LABELS);
    firn_label b[] = {{"job", "fx"}};
    append_ok(f->db, fx, b, 1, "process_cpu", 1000);
    int64_t ft[2];
    pprof_totals(fx, ft);
    int col = pprof_sample_type_index(fx, "cpu");
    pprof_free(fx);
    req = merge_req(CPU "{job=\"fx\"}", 0, 5000);
    req.group_by = by_foo;
    req.n_group_by = 1;
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, ft[col]);
    assert_true(t.root.n_children >= 1);
    for (size_t i = 0; i < t.root.n_children; i++) {
        assert_memory_equal(t.root.children[i].name, "foo=", 4);
        assert_int_equal(t.root.children[i].self, 0);
    }
    pql_tree_free(&t);
    p = pprof_ok(f->db, &req);
    assert_int_equal(total0(p), ft[col]);
    for (size_t i = 0; i < p->n_samples; i++)
        for (size_t j = 0; j < p->samples[i].n_labels; j++)
            assert_string_equal(pprof_str(p, p->samples[i].labels[j].key), "foo");
    pprof_free(p);

    /* an empty key is refused */
    const char *empty[] = {""};
    req.group_by = empty;
    tree_refused(f->db, &req, FIRN_EINVAL, "group_by", NULL);
}

static void test_filters(void **state)
{
    struct fixture *f = *state;
    append_specs(f->db, BASIC, N(BASIC), "a", 1000);
    static const struct {
        const char *query, *filter;
        int64_t total;
    } cases[] = {
        {CPU, NULL, 16},
        {CPU, "", 16},                                    /* empty: no filter */
        {CPU, "b|d", 11},
        {CPU, "a", 15},
        {CPU, "main", 16},
        {CPU, "ma", 0},                                   /* anchored */
        {CPU, "nothing", 0},
        {CPU "{__function__=~\"c\"}", NULL, 5},
        {CPU "{__function__=~\"b|c\"}", NULL, 15},
        {CPU "{__function__!~\"b\"}", NULL, 6},
        {CPU "{__function__=\"d\"}", NULL, 1},
        {CPU "{__function__!=\"d\"}", NULL, 15},
        {CPU "{__function__!~\"b\", __function__!~\"c\"}", NULL, 1},
        {CPU "{job=\"a\", __function__!~\"c\"}", "a", 10},   /* both must hold */
        {CPU "{__function__=~\"d\"}", "a", 0},
    };
    for (size_t i = 0; i < N(cases); i++) {
        pql_tree t;
        pql_profile_request req = merge_req(cases[i].query, 0, 2000);
        req.filter = cases[i].filter;
        tree_ok(f->db, &req, &t);
        if (t.total != cases[i].total)
            fail_msg("case %zu: %s filter %s: total %lld, want %lld", i, cases[i].query,
                     cases[i].filter ? cases[i].filter : "-", (long long)t.total,
                     (long long)cases[i].total);
        pql_tree_free(&t);
        pprof_profile *p = pprof_ok(f->db, &req);
        assert_int_equal(total0(p), cases[i].total);
        pprof_free(p);
    }
    pql_tree t;
    pql_profile_request req = merge_req(CPU "{__function__!~\"c\"}", 0, 2000);
    tree_ok(f->db, &req, &t);
    values(&t, "main;a", 0, 10);
    assert_null(find(&t, "main;a;c"));
    pql_tree_free(&t);

    req.filter = "(";
    tree_refused(f->db, &req, FIRN_EINVAL, "filter", NULL);
    pprof_refused(f->db, &req, FIRN_EINVAL, "filter");
}

static void test_max_nodes(void **state)
{
    struct fixture *f = *state;
    append_specs(f->db, BASIC, N(BASIC), "a", 1000);
    pql_tree t;
    pql_profile_request req = merge_req(CPU "{job=\"a\"}", 0, 2000);

    /* main 16, a 15 stay; b and c fold under a, d under main */
    req.max_nodes = 2;
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 16);
    assert_int_equal(count_nodes(&t.root, NULL) - count_nodes(&t.root, "other"), 2);
    values(&t, "main", 0, 16);
    values(&t, "main;a", 0, 15);
    values(&t, "main;a;other", 15, 15);
    values(&t, "main;other", 1, 1);
    assert_int_equal(at(&t, "main;other")->function, UINT32_MAX);
    assert_int_equal(at(&t, "main;a")->n_children, 1);
    pql_tree_free(&t);

    req.max_nodes = 3;
    tree_ok(f->db, &req, &t);
    values(&t, "main;a;b", 10, 10);
    values(&t, "main;a;other", 5, 5);
    values(&t, "main;other", 1, 1);
    assert_int_equal(count_nodes(&t.root, "other"), 2);
    pql_tree_free(&t);

    req.max_nodes = 1;
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.root.n_children, 1);
    values(&t, "main", 0, 16);
    values(&t, "main;other", 16, 16);
    pql_tree_free(&t);

    /* at or over the node count: the whole tree */
    req.max_nodes = 5;
    tree_ok(f->db, &req, &t);
    assert_int_equal(count_nodes(&t.root, "other"), 0);
    assert_int_equal(count_nodes(&t.root, NULL), 5);
    pql_tree_free(&t);

    /* ancestors stay: z;a ties at 5, a ranks first by name but needs z */
    static const struct sspec tie[] = {{"z;a", 5, NULL}};
    append_specs(f->db, tie, N(tie), "tie", 1000);
    req = merge_req(CPU "{job=\"tie\"}", 0, 2000);
    req.max_nodes = 1;
    tree_ok(f->db, &req, &t);
    values(&t, "z", 0, 5);
    values(&t, "z;other", 5, 5);
    assert_null(find(&t, "z;a"));
    pql_tree_free(&t);

    /* a diff ranks by the larger side */
    static const struct sspec base[] = {{"main;a", 10, NULL}};
    static const struct sspec cmp[] = {{"main;b", 20, NULL}};
    append_specs(f->db, base, N(base), "base", 1000);
    append_specs(f->db, cmp, N(cmp), "cmp", 1000);
    req = merge_req(CPU "{job=\"base\"}", 0, 2000);
    req.compare_query = CPU "{job=\"cmp\"}";
    req.compare_start_ms = 0;
    req.compare_end_ms = 2000;
    req.max_nodes = 2;
    tree_ok(f->db, &req, &t);
    diff_values(&t, "main", 0, 10, 0, 20);
    diff_values(&t, "main;b", 0, 0, 20, 20);
    diff_values(&t, "main;other", 10, 10, 0, 0);
    assert_null(find(&t, "main;a"));
    pql_tree_free(&t);

    /* a negative self lets children outrank their parent: p 2, p;z 10,
     * p;z;a 10, m 3.  With one node, a (first of the two ranked 10 by
     * name) needs p and z, z needs p: both passed over, so the limit is
     * met below them, by m */
    static const struct sspec neg[] = {{"p;z;a", 10, NULL}, {"p", -8, NULL}, {"m", 3, NULL}};
    append_specs(f->db, neg, N(neg), "neg", 1000);
    req = merge_req(CPU "{job=\"neg\"}", 0, 2000);
    req.max_nodes = 1;
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 5);
    assert_int_equal(t.root.n_children, 2);
    values(&t, "m", 3, 3);
    values(&t, "other", 2, 2);
    assert_null(find(&t, "p"));
    pql_tree_free(&t);
}

/* ---- max_nodes against a reference built here ---------------------------- */

/* The whole stack tree of a merged profile, built from its samples with
 * strings as keys (no interning, no tree code of pql's): node i > 0 has
 * parent < i, nodes are numbered in the order the samples first reach
 * them, and (parent, name, file) is unique. */
struct rnode {
    uint32_t parent;
    const char *name, *file;
    int64_t self, cum;
    bool keep;
};

struct rtree {
    struct rnode *n;
    size_t len, cap;
    uint32_t *slots;             /* node index + 1, 0 empty; open addressing */
    size_t n_slots;
    char **owned;                /* names made for unsymbolized frames */
    size_t n_owned;
};

static uint64_t rhash(uint32_t parent, const char *name, const char *file)
{
    uint64_t h = 1469598103934665603ULL ^ parent;
    for (const char *c = name; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    h = (h ^ 0xff) * 1099511628211ULL;
    for (const char *c = file; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    return h;
}

static uint32_t rchild(struct rtree *t, uint32_t parent, const char *name, const char *file)
{
    if ((t->len + 1) * 2 > t->n_slots) {   /* rehash at half full */
        size_t ns = t->n_slots ? t->n_slots * 2 : 1024;
        uint32_t *slots = calloc(ns, sizeof *slots);
        assert_non_null(slots);
        for (size_t i = 0; i < t->len; i++) {
            size_t h = rhash(t->n[i].parent, t->n[i].name, t->n[i].file) & (ns - 1);
            while (slots[h])
                h = (h + 1) & (ns - 1);
            slots[h] = (uint32_t)i + 1;
        }
        free(t->slots);
        t->slots = slots;
        t->n_slots = ns;
    }
    size_t h = rhash(parent, name, file) & (t->n_slots - 1);
    for (; t->slots[h]; h = (h + 1) & (t->n_slots - 1)) {
        const struct rnode *c = &t->n[t->slots[h] - 1];
        if (c->parent == parent && strcmp(c->name, name) == 0 && strcmp(c->file, file) == 0)
            return t->slots[h] - 1;
    }
    if (t->len == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 1024;
        t->n = realloc(t->n, t->cap * sizeof *t->n);
        assert_non_null(t->n);
    }
    t->n[t->len] = (struct rnode){.parent = parent, .name = name, .file = file};
    t->slots[h] = (uint32_t)t->len + 1;
    return (uint32_t)t->len++;
}

/* Frame names as pql.h gives them: the function's, else "[binary] 0xADDR"
 * or "0xADDR"; root first, a location's inlined frames outermost first. */
static void rtree_build(struct rtree *t, const pprof_profile *p)
{
    memset(t, 0, sizeof *t);
    t->n = calloc(1, sizeof *t->n);
    t->cap = 1;
    t->len = 1;
    t->n[0] = (struct rnode){.parent = UINT32_MAX, .name = "total", .file = ""};
    char **names = calloc(p->n_locations + 1, sizeof *names);
    assert_non_null(names);
    for (size_t i = 0; i < p->n_samples; i++) {
        const pprof_sample *s = &p->samples[i];
        int64_t v = s->values[0];
        uint32_t node = 0;
        t->n[0].cum += v;
        for (size_t k = s->n_locations; k-- > 0;) {
            const pprof_location *l = &p->locations[s->locations[k]];
            for (size_t j = l->n_lines ? l->n_lines : 1; j-- > 0;) {
                const pprof_function *fn =
                    l->n_lines ? &p->functions[l->lines[j].function] : NULL;
                const char *name = fn ? pprof_str(p, fn->name) : "";
                const char *file = fn ? pprof_str(p, fn->filename) : "";
                if (!*name) {
                    char **mine = &names[s->locations[k]];
                    if (!*mine) {
                        const char *bin = l->mapping < p->n_mappings
                                              ? pprof_str(p, p->mappings[l->mapping].filename) : "";
                        const char *slash = strrchr(bin, '/');
                        bin = slash ? slash + 1 : bin;
                        char buf[512];
                        if (*bin)
                            snprintf(buf, sizeof buf, "[%s] 0x%llx", bin,
                                     (unsigned long long)l->address);
                        else
                            snprintf(buf, sizeof buf, "0x%llx", (unsigned long long)l->address);
                        *mine = strdup(buf);
                    }
                    name = *mine;
                    file = "";
                }
                node = rchild(t, node, name, file);
                t->n[node].cum += v;
            }
        }
        t->n[node].self += v;
    }
    t->owned = names;
    t->n_owned = p->n_locations + 1;
}

static void rtree_free(struct rtree *t)
{
    for (size_t i = 0; i < t->n_owned; i++)
        free(t->owned[i]);
    free(t->owned);
    free(t->n);
    free(t->slots);
}

static const struct rtree *rank_tree;

/* Larger cum first, then name, then the order nodes were first reached. */
static int cmp_rank(const void *x, const void *y)
{
    uint32_t a = *(const uint32_t *)x, c = *(const uint32_t *)y;
    const struct rnode *na = &rank_tree->n[a], *nc = &rank_tree->n[c];
    if (na->cum != nc->cum)
        return na->cum > nc->cum ? -1 : 1;
    int o = strcmp(na->name, nc->name);
    return o ? o : (a > c) - (a < c);
}

/* pql.h's rule, done the plain way: every node sorted by rank, each taken
 * with its missing ancestors while they fit in max_nodes.  Returns the
 * number kept (root excluded). */
static size_t rtree_select(struct rtree *t, size_t max_nodes)
{
    uint32_t *order = malloc(t->len * sizeof *order);
    assert_non_null(order);
    for (size_t i = 0; i < t->len; i++)
        t->n[i].keep = i == 0;
    for (size_t i = 1; i < t->len; i++)
        order[i - 1] = (uint32_t)i;
    rank_tree = t;
    qsort(order, t->len - 1, sizeof *order, cmp_rank);
    size_t kept = 0;
    for (size_t i = 0; i + 1 < t->len && kept < max_nodes; i++) {
        size_t chain = 0;
        for (uint32_t a = order[i]; !t->n[a].keep; a = t->n[a].parent)
            chain++;
        if (kept + chain > max_nodes)
            continue;
        for (uint32_t a = order[i]; !t->n[a].keep; a = t->n[a].parent)
            t->n[a].keep = true;
        kept += chain;
    }
    free(order);
    return kept;
}

/* The pruned tree below n matches reference node r: each kept child by
 * name, file, self and cum; "other" is the sum of the cut children.
 * Returns the number of kept nodes met. */
static size_t match_pruned(const pql_tree *t, const pql_node *n, const struct rtree *rt,
                           uint32_t r, const uint32_t *kids, const size_t *first)
{
    size_t met = 0;
    int64_t cut = 0;
    size_t n_cut = 0;
    /* r's children are kids[first[r] .. first[r + 1]) */
    size_t lo = first[r], hi = first[r + 1];
    for (size_t k = lo; k < hi; k++)
        if (!rt->n[kids[k]].keep) {
            cut += rt->n[kids[k]].cum;
            n_cut++;
        }
    bool other_seen = false;
    for (size_t i = 0; i < n->n_children; i++) {
        const pql_node *c = &n->children[i];
        if (c->function == UINT32_MAX) {
            assert_string_equal(c->name, "other");
            assert_false(other_seen);
            other_seen = true;
            if (c->cum != cut || c->self != cut || c->n_children)
                fail_msg("other under %s: self %lld cum %lld, want %lld", n->name,
                         (long long)c->self, (long long)c->cum, (long long)cut);
            continue;
        }
        const char *file = t->functions[c->function].filename;
        uint32_t m = UINT32_MAX;
        for (size_t k = lo; k < hi && m == UINT32_MAX; k++) {
            const struct rnode *x = &rt->n[kids[k]];
            if (x->keep && strcmp(x->name, c->name) == 0 && strcmp(x->file, file) == 0)
                m = kids[k];
        }
        if (m == UINT32_MAX)
            fail_msg("%s under %s: kept, but not among the reference's kept nodes", c->name,
                     n->name);
        if (c->cum != rt->n[m].cum || c->self != rt->n[m].self)
            fail_msg("%s under %s: self %lld cum %lld, want %lld %lld", c->name, n->name,
                     (long long)c->self, (long long)c->cum, (long long)rt->n[m].self,
                     (long long)rt->n[m].cum);
        met += 1 + match_pruned(t, c, rt, m, kids, first);
    }
    assert_int_equal(other_seen, n_cut > 0);
    return met;
}

static void test_max_nodes_reference(void **state)
{
    struct fixture *f = *state;
    pprof_profile *big = decode_fixture(FX_LARGE);
    firn_label l[] = {{"job", "big"}};
    append_ok(f->db, big, l, 1, "process_cpu", 1000);
    pprof_free(big);
    pql_profile_request req = merge_req(CPU "{job=\"big\"}", 0, 2000);
    /* the merged profile the tree is built from, as pprof */
    pprof_profile *p = pprof_ok(f->db, &req);
    struct rtree rt;
    rtree_build(&rt, p);
    /* children grouped by parent (counting sort), for match_pruned */
    size_t *first = calloc(rt.len + 1, sizeof *first);
    uint32_t *kids = malloc(rt.len * sizeof *kids);
    assert_true(first && kids);
    for (size_t i = 1; i < rt.len; i++)
        first[rt.n[i].parent + 1]++;
    for (size_t i = 0; i < rt.len; i++)
        first[i + 1] += first[i];
    size_t *fill = malloc((rt.len + 1) * sizeof *fill);
    assert_non_null(fill);
    memcpy(fill, first, (rt.len + 1) * sizeof *fill);
    for (size_t i = 1; i < rt.len; i++)
        kids[fill[rt.n[i].parent]++] = (uint32_t)i;
    free(fill);
    /* a tree big enough that the limit cuts, with many ties on cum */
    assert_true(rt.len > 10000);
    static const size_t limits[] = {1, 7, 1000, 8192};
    for (size_t i = 0; i < N(limits); i++) {
        size_t want = rtree_select(&rt, limits[i]);
        assert_int_equal(want, limits[i]);
        req.max_nodes = limits[i];
        pql_tree t;
        tree_ok(f->db, &req, &t);
        assert_int_equal(t.total, rt.n[0].cum);
        assert_int_equal(match_pruned(&t, &t.root, &rt, 0, kids, first), want);
        pql_tree_free(&t);
    }
    free(first);
    free(kids);
    rtree_free(&rt);
    pprof_free(p);
}

static void test_refusals(void **state)
{
    struct fixture *f = *state;
    pprof_profile *cpu = decode_fixture(FX_CPU);
    firn_label a[] = {{"job", "a"}};
    append_ok(f->db, cpu, a, 1, "process_cpu", 1000);
    pprof_free(cpu);

    /* two profile types (samples and cpu) under one selector */
    pql_profile_request req = merge_req("{job=\"a\"}", 0, 2000);
    tree_refused(f->db, &req, FIRN_EINVAL, CPU, SAMPLES);
    tree_refused(f->db, &req, FIRN_EINVAL, "__name__", NULL);
    pprof_refused(f->db, &req, FIRN_EINVAL, "__name__");
    req = merge_req("{__name__=~\"process_cpu:.*\"}", 0, 2000);
    tree_refused(f->db, &req, FIRN_EINVAL, "2 profile types", NULL);

    /* not a selector */
    static const char *not_selectors[] = {
        "sum(" CPU ")",
        "1",
        "rate(" CPU "[5m])",
        CPU "[5m]",
        CPU " * 2",
    };
    for (size_t i = 0; i < N(not_selectors); i++) {
        req = merge_req(not_selectors[i], 0, 2000);
        tree_refused(f->db, &req, FIRN_EINVAL, "a profile query is a selector", CPU);
        pprof_refused(f->db, &req, FIRN_EINVAL, "a profile query is a selector");
    }
    /* a parse error comes back as the parser says it */
    req = merge_req(CPU "{job=}", 0, 2000);
    tree_refused(f->db, &req, FIRN_EINVAL, "1:", NULL);
    req = merge_req(NULL, 0, 2000);
    tree_refused(f->db, &req, FIRN_EINVAL, "selector", NULL);
    /* a backwards range */
    req = merge_req(CPU, 2000, 1000);
    tree_refused(f->db, &req, FIRN_EINVAL, "after", NULL);

    /* the sample cap */
    req = merge_req(CPU, 0, 2000);
    req.max_samples = 1;
    tree_refused(f->db, &req, FIRN_ETOOBIG, "samples", NULL);
    pprof_refused(f->db, &req, FIRN_ETOOBIG, "samples");
    req.compare_query = CPU;   /* on the compare side too */
    req.max_samples = 0;
    pql_tree t;
    tree_ok(f->db, &req, &t);
    pql_tree_free(&t);
}

static void test_empty(void **state)
{
    struct fixture *f = *state;
    append_specs(f->db, BASIC, N(BASIC), "a", 1000);
    pql_tree t;

    /* nothing matches: an empty tree, typed by the selector when it can be */
    pql_profile_request req = merge_req(CPU "{job=\"nope\"}", 0, 2000);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 0);
    assert_int_equal(t.root.cum, 0);
    assert_int_equal(t.root.n_children, 0);
    assert_int_equal(t.n_functions, 0);
    assert_string_equal(t.profile_type, CPU);
    assert_string_equal(t.sample_type, "cpu");
    assert_string_equal(t.sample_unit, "nanoseconds");
    pql_tree_free(&t);

    req = merge_req(CPU, 5000, 6000);   /* out of range */
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 0);
    pql_tree_free(&t);

    req = merge_req("{job=\"nope\"}", 0, 2000);
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 0);
    assert_string_equal(t.profile_type, "");
    pql_tree_free(&t);

    /* everything filtered away */
    req = merge_req(CPU, 0, 2000);
    req.filter = "nothing";
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 0);
    assert_int_equal(t.root.n_children, 0);
    assert_string_equal(t.profile_type, CPU);
    pql_tree_free(&t);

    /* pprof: an empty profile of the selector's type, or an error */
    req = merge_req(CPU "{job=\"nope\"}", 0, 2000);
    pprof_profile *p = pprof_ok(f->db, &req);
    assert_int_equal(p->n_samples, 0);
    assert_int_equal(p->n_sample_types, 1);
    assert_string_equal(pprof_str(p, p->sample_types[0].type), "cpu");
    assert_string_equal(pprof_str(p, p->sample_types[0].unit), "nanoseconds");
    assert_string_equal(pprof_str(p, p->period_type.type), "cpu");
    pprof_free(p);
    req = merge_req("{job=\"nope\"}", 0, 2000);
    pprof_refused(f->db, &req, FIRN_EINVAL, "no profile matches");
}

/* --query.max-samples (pql.h "query limits"): the stack values read on
 * both sides and the tree's nodes.  Each BASIC profile has 3 samples, and
 * its tree 5 nodes below the root (main, a, b, c, d). */
static void test_samples_cap(void **state)
{
    struct fixture *f = *state;
    append_specs(f->db, BASIC, N(BASIC), "a", 1000);
    append_specs(f->db, BASIC, N(BASIC), "a", 2000);
    const char *msg = "query processing would load too many samples into memory in query "
                      "execution";
    pql_profile_request req = merge_req(CPU "{job=\"a\"}", 0, 3000);
    req.raw = true;   /* 2 profiles read as stored, whatever compaction did */
    pql_tree t;
    req.max_samples = 2 * 3 + 5;
    tree_ok(f->db, &req, &t);
    assert_int_equal(t.total, 2 * (10 + 5 + 1));
    pql_tree_free(&t);
    req.max_samples = 2 * 3 + 4;   /* one node too many */
    tree_refused(f->db, &req, FIRN_ETOOBIG, msg, NULL);
    /* the pprof export holds what it read (its samples), no tree */
    req.max_samples = 2 * 3;
    pprof_profile *p = pprof_ok(f->db, &req);
    pprof_free(p);
    req.max_samples = 2 * 3 - 1;
    pprof_refused(f->db, &req, FIRN_ETOOBIG, msg);
    /* a diff: one profile a side, the union tree still 5 nodes */
    req = merge_req(CPU "{job=\"a\"}", 0, 1500);
    req.raw = true;
    req.compare_query = CPU "{job=\"a\"}";
    req.compare_mode = PQL_PROFILE_MERGE;
    req.compare_start_ms = 1501;
    req.compare_end_ms = 3000;
    req.max_samples = 3 + 3 + 5;
    tree_ok(f->db, &req, &t);
    assert_true(t.diff);
    pql_tree_free(&t);
    req.max_samples = 3 + 3 + 4;
    tree_refused(f->db, &req, FIRN_ETOOBIG, msg, NULL);
    /* the compare side reads from what the base side left */
    req.max_samples = 3 + 2;
    tree_refused(f->db, &req, FIRN_ETOOBIG, msg, NULL);
    req.max_samples = 3;
    tree_refused(f->db, &req, FIRN_ETOOBIG, msg, NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_merge_synthetic, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_single, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_fixtures, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_frames, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_diff, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_group_by, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_filters, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_max_nodes, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_max_nodes_reference, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_refusals, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_empty, store_setup, store_teardown),
        cmocka_unit_test_setup_teardown(test_samples_cap, store_setup, store_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
