/* test_pyroscope.c -- pyroscope/: the protojson codec, the FlameGraph
 * encoding against the bytes PYROSCOPE.md took from Pyroscope's own
 * encoder, max_nodes' "other", call-site filtering, and the Connect request
 * path without a socket (codes, statuses, Content-Types).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "fixtures.h"
#include "pyroscope/internal.h"

static void *arena_alloc(void *a, size_t n)
{
    return firn_arena_alloc(a, n ? n : 1);
}

static void arena_free(void *a, void *p)
{
    (void)a;
    (void)p;
}

typedef struct fixture {
    pyroscope_api api;
    pyroscope_call c;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->c.api = &f->api;
    f->c.arena = firn_arena_new(0);
    f->c.alloc = (ProtobufCAllocator){arena_alloc, arena_free, f->c.arena};
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    free(f->c.raw);
    firn_arena_free(f->c.arena);
    free(f);
    return 0;
}

static char *encode(const ProtobufCMessage *m)
{
    firn_buf b = {0};
    pyroscope_json_encode(m, &b);
    firn_buf_append(&b, "", 1);
    return firn_buf_take(&b, NULL);
}

/* ---- protojson ------------------------------------------------------------------- */

static void test_json_lenient_input(void **state)
{
    fixture *f = *state;
    /* the Drilldown's way: proto names, int64 as numbers and strings, an
     * enum name the proto lacks, unknown fields, null */
    const char *in = "{\"profile_typeID\":\"a:b:c:d:e\",\"labelSelector\":\"{}\","
                     "\"start\":\"1700000000000\",\"end\":1700000001000,\"max_nodes\":16384,"
                     "\"format\":\"PROFILE_FORMAT_FUNCTIONS\",\"sandwichFunction\":\"x\","
                     "\"stackTraceSelector\":{\"call_site\":[{\"name\":\"main\"},{\"name\":\"f\"}]},"
                     "\"spanSelector\":null,\"profileIdSelector\":[\"p1\"]}";
    ProtobufCMessage *m;
    firn_err err = {0};
    assert_int_equal(pyroscope_json_decode(&querier__v1__select_merge_stacktraces_request__descriptor,
                                           in, strlen(in), &f->c.alloc, &m, &err), 0);
    const Querier__V1__SelectMergeStacktracesRequest *r = (const void *)m;
    assert_string_equal(r->profile_typeid, "a:b:c:d:e");
    assert_string_equal(r->label_selector, "{}");
    assert_int_equal(r->start, 1700000000000);
    assert_int_equal(r->end, 1700000001000);
    assert_int_equal(r->_max_nodes_case,
                     QUERIER__V1__SELECT_MERGE_STACKTRACES_REQUEST___MAX_NODES_MAX_NODES);
    assert_int_equal(r->max_nodes, 16384);
    assert_int_equal(r->format, 0);
    assert_non_null(r->stack_trace_selector);
    assert_int_equal(r->stack_trace_selector->n_call_site, 2);
    assert_string_equal(r->stack_trace_selector->call_site[1]->name, "f");
    assert_int_equal(r->n_span_selector, 0);
    assert_int_equal(r->n_profile_id_selector, 1);
    /* and back: camelCase, int64 as strings, defaults left out */
    char *out = encode(m);
    assert_string_equal(out, "{\"profileTypeID\":\"a:b:c:d:e\",\"labelSelector\":\"{}\","
                        "\"start\":\"1700000000000\",\"end\":\"1700000001000\","
                        "\"maxNodes\":\"16384\",\"stackTraceSelector\":{\"callSite\":"
                        "[{\"name\":\"main\"},{\"name\":\"f\"}]},\"profileIdSelector\":[\"p1\"]}");
    free(out);
}

static void test_json_kinds(void **state)
{
    fixture *f = *state;
    /* enums by name and number, doubles as strings, bytes in URL-safe
     * base64 without padding, bools */
    const char *in = "{\"step\":\"Infinity\",\"aggregation\":\"TIME_SERIES_AGGREGATION_TYPE_AVERAGE\","
                     "\"exemplarType\":2,\"limit\":\"-3\"}";
    ProtobufCMessage *m;
    firn_err err = {0};
    assert_int_equal(pyroscope_json_decode(&querier__v1__select_series_request__descriptor, in,
                                           strlen(in), &f->c.alloc, &m, &err), 0);
    const Querier__V1__SelectSeriesRequest *s = (const void *)m;
    assert_true(s->step > 1e308);
    assert_int_equal(s->aggregation, 1);
    assert_int_equal(s->exemplar_type, 2);
    assert_int_equal(s->limit, -3);
    char *out = encode(m);
    assert_string_equal(out, "{\"step\":\"Infinity\",\"aggregation\":"
                        "\"TIME_SERIES_AGGREGATION_TYPE_AVERAGE\",\"limit\":\"-3\","
                        "\"exemplarType\":\"EXEMPLAR_TYPE_INDIVIDUAL\"}");
    free(out);

    const char *push = "{\"series\":[{\"samples\":[{\"rawProfile\":\"_-8\"},"
                       "{\"raw_profile\":\"AAE=\"}]}]}";
    assert_int_equal(pyroscope_json_decode(&push__v1__push_request__descriptor, push,
                                           strlen(push), &f->c.alloc, &m, &err), 0);
    const Push__V1__PushRequest *p = (const void *)m;
    assert_int_equal(p->n_series, 1);
    assert_int_equal(p->series[0]->n_samples, 2);
    assert_int_equal(p->series[0]->samples[0]->raw_profile.len, 2);
    assert_memory_equal(p->series[0]->samples[0]->raw_profile.data, "\xff\xef", 2);
    assert_memory_equal(p->series[0]->samples[1]->raw_profile.data, "\x00\x01", 2);
    out = encode(m);
    assert_string_equal(out, "{\"series\":[{\"samples\":[{\"rawProfile\":\"/+8=\"},"
                        "{\"rawProfile\":\"AAE=\"}]}]}");
    free(out);
}

static void test_json_errors(void **state)
{
    fixture *f = *state;
    static const struct {
        const char *in, *want;
    } C[] = {
        {"{\"start\":\"soon\"}", "field \"start\": want an integer"},
        {"{\"start\":1.5}", "field \"start\": want an integer"},
        {"{\"start\":\"9223372036854775808\"}", "out of range"},
        {"{\"start\":true}", "got true"},
        {"[1]", "want an object"},
        {"{\"start\":1", "JSON at line 1"},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        ProtobufCMessage *m;
        firn_err err = {0};
        assert_int_equal(pyroscope_json_decode(&querier__v1__profile_types_request__descriptor,
                                               C[i].in, strlen(C[i].in), &f->c.alloc, &m,
                                               &err), FIRN_EINVAL);
        if (!strstr(err.msg, C[i].want))
            fail_msg("%s: got \"%s\", want \"%s\"", C[i].in, err.msg, C[i].want);
    }
    /* a negative int64 and the smallest one decode */
    ProtobufCMessage *m;
    firn_err err = {0};
    const char *in = "{\"start\":\"-9223372036854775808\",\"end\":-1}";
    assert_int_equal(pyroscope_json_decode(&querier__v1__profile_types_request__descriptor, in,
                                           strlen(in), &f->c.alloc, &m, &err), 0);
    assert_true(((Querier__V1__ProfileTypesRequest *)m)->start == INT64_MIN);
    assert_int_equal(((Querier__V1__ProfileTypesRequest *)m)->end, -1);
}

/* ---- flame graphs ------------------------------------------------------------------ */

/* A profile of one column from stacks "root;child;leaf" and values. */
static pprof_profile *profile_of(const char *const *stacks, const int64_t *values, size_t n)
{
    pprof_builder *b = pprof_builder_new(1);
    pprof_builder_sample_type(b, 0, "cpu", "nanoseconds");
    for (size_t i = 0; i < n; i++) {
        uint32_t locs[16];
        size_t depth = 0;
        char *copy = strdup(stacks[i]), *save = NULL;
        for (char *fr = strtok_r(copy, ";", &save); fr; fr = strtok_r(NULL, ";", &save)) {
            pprof_function fn = {.name = pprof_builder_string(b, fr, strlen(fr))};
            pprof_line line = {.function = pprof_builder_function(b, &fn)};
            pprof_location loc = {.mapping = PPROF_NONE, .lines = &line, .n_lines = 1};
            locs[depth++] = pprof_builder_location(b, &loc);
        }
        free(copy);
        for (size_t k = 0; k < depth / 2; k++) {   /* leaf first */
            uint32_t t = locs[k];
            locs[k] = locs[depth - 1 - k];
            locs[depth - 1 - k] = t;
        }
        assert_int_equal(pprof_builder_sample(b, locs, depth, &values[i], NULL, 0), 0);
    }
    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    assert_non_null(p);
    return p;
}

static Querier__V1__FlameGraph *flamegraph_of(fixture *f, const pprof_profile *p,
                                              int64_t max_nodes)
{
    firn_err err = {0};
    pyroscope_tree *t = pyroscope_tree_build(&f->c, p, &err);
    assert_non_null(t);
    Querier__V1__FlameGraph *fg = pyroscope_flamegraph(&f->c, t, max_nodes);
    pyroscope_tree_free(t);
    return fg;
}

/* A Connect flame graph's tree nodes are samples of --query.max-samples,
 * taken from what the query has left: "a;b;c" and "a;d" make 4 nodes
 * below the root. */
static void test_flamegraph_samples_cap(void **state)
{
    fixture *f = *state;
    static const char *const stacks[] = {"a;b;c", "a;d"};
    static const int64_t values[] = {3, 4};
    pprof_profile *p = profile_of(stacks, values, 2);
    pql_limits limits;
    firn_err err = {0};
    assert_int_equal(pql_limits_init(&limits, 4, 1, &err), 0);
    f->api.limits = &limits;
    pyroscope_tree *t = pyroscope_tree_build(&f->c, p, &err);   /* 4 of 4 */
    assert_non_null(t);
    pyroscope_tree_free(t);
    assert_int_equal(f->c.samples_left, 0);
    pyroscope_call_end(&f->c);   /* the slot back */
    pyroscope_call_begin(&f->c, &f->api);
    limits.max_samples = 3;   /* no query runs: nothing reads it meanwhile */
    assert_null(pyroscope_tree_build(&f->c, p, &err));
    assert_int_equal(err.code, FIRN_ETOOBIG);
    assert_string_equal(err.msg, "query processing would load too many samples into memory in "
                                 "query execution");
    assert_int_equal(f->c.query_rc, FIRN_ETOOBIG);
    pyroscope_call_end(&f->c);
    pql_limits_counts c;
    pql_limits_stats(&limits, &c);
    assert_int_equal(c.running, 0);
    assert_int_equal(c.too_many_samples_total, 1);
    pql_limits_destroy(&limits);
    f->api.limits = NULL;
    pyroscope_call_begin(&f->c, &f->api);   /* for the teardown */
    pprof_free(p);
}

static void test_flamegraph_bytes(void **state)
{
    fixture *f = *state;
    /* PYROSCOPE.md 3.1: total 100 -> main 100 -> {work 70, idle 30}, as
     * Pyroscope's encoder writes it */
    static const char *const stacks[] = {"main;work", "main;idle"};
    static const int64_t values[] = {70, 30};
    pprof_profile *p = profile_of(stacks, values, 2);
    Querier__V1__SelectMergeStacktracesResponse resp =
        QUERIER__V1__SELECT_MERGE_STACKTRACES_RESPONSE__INIT;
    resp.flamegraph = flamegraph_of(f, p, PYROSCOPE_MAX_NODES_DEFAULT);
    pprof_free(p);
    assert_non_null(resp.flamegraph);
    static const uint8_t want[] = {
        0x0a, 0x39, 0x0a, 0x05, 't', 'o', 't', 'a', 'l', 0x0a, 0x04, 'm', 'a', 'i', 'n',
        0x0a, 0x04, 'w', 'o', 'r', 'k', 0x0a, 0x04, 'i', 'd', 'l', 'e',
        0x12, 0x06, 0x0a, 0x04, 0x00, 0x64, 0x00, 0x00,
        0x12, 0x06, 0x0a, 0x04, 0x00, 0x64, 0x00, 0x01,
        0x12, 0x0a, 0x0a, 0x08, 0x00, 0x46, 0x46, 0x02, 0x00, 0x1e, 0x1e, 0x03,
        0x18, 0x64, 0x20, 0x46,
    };
    size_t n = protobuf_c_message_get_packed_size(&resp.base);
    assert_int_equal(n, sizeof want);
    uint8_t *got = malloc(n);
    protobuf_c_message_pack(&resp.base, got);
    assert_memory_equal(got, want, n);
    free(got);
}

static void test_flamegraph_other_and_empty(void **state)
{
    fixture *f = *state;
    /* x delta: a bar after a self part and a sibling */
    static const char *const stacks[] = {"a;b", "a", "a;c", "a;d", "e"};
    static const int64_t values[] = {5, 2, 3, 1, 4};
    pprof_profile *p = profile_of(stacks, values, 5);
    Querier__V1__FlameGraph *fg = flamegraph_of(f, p, 1024);
    assert_int_equal(fg->total, 15);
    assert_int_equal(fg->n_levels, 3);
    /* level 1: a [0,11,2], e [0,4,4]; level 2 under a (self 2 on its left):
     * b at x 2, c at 7, d at 10 */
    static const int64_t l1[] = {0, 11, 2, 1, 0, 4, 4, 5};
    static const int64_t l2[] = {2, 5, 5, 2, 0, 3, 3, 3, 0, 1, 1, 4};
    assert_int_equal(fg->levels[1]->n_values, 8);
    assert_memory_equal(fg->levels[1]->values, l1, sizeof l1);
    assert_int_equal(fg->levels[2]->n_values, 12);
    assert_memory_equal(fg->levels[2]->values, l2, sizeof l2);
    assert_int_equal(fg->max_self, 5);

    /* max_nodes 2: the two biggest (a 11, b 5) keep their bars; c, d
     * become one "other" under a, e one under the root */
    fg = flamegraph_of(f, p, 2);
    assert_int_equal(fg->total, 15);
    assert_string_equal(fg->names[3], "other");
    static const int64_t o1[] = {0, 11, 2, 1, 0, 4, 4, 3};
    static const int64_t o2[] = {2, 5, 5, 2, 0, 4, 4, 3};
    assert_memory_equal(fg->levels[1]->values, o1, sizeof o1);
    assert_memory_equal(fg->levels[2]->values, o2, sizeof o2);

    /* the call site [a, c] keeps only that stack */
    char *cs[] = {"a", "c"};
    pyroscope_filter_call_site(p, cs, 2);
    assert_int_equal(p->n_samples, 1);
    fg = flamegraph_of(f, p, 1024);
    assert_int_equal(fg->total, 3);
    /* nothing left: no flame graph (Pyroscope leaves the field out) */
    char *none[] = {"zzz"};
    pyroscope_filter_call_site(p, none, 1);
    assert_null(flamegraph_of(f, p, 1024));
    pprof_free(p);

    int64_t mn;
    firn_err err = {0};
    assert_int_equal(pyroscope_max_nodes(false, 0, &mn, &err), 0);
    assert_int_equal(mn, 8192);
    assert_int_equal(pyroscope_max_nodes(true, (1 << 20) + 1, &mn, &err), FIRN_EINVAL);
    assert_int_equal(pyroscope_max_nodes(true, -1, &mn, &err), FIRN_EINVAL);
}

/* ---- the label view over a real store -------------------------------------------- */

static void append(tsdb *db, const char *name, bool delta, const firn_label *labels, size_t n,
                   int64_t ts)
{
    static const char *const stacks[] = {"main;work"};
    static const int64_t values[] = {7};
    pprof_profile *p = profile_of(stacks, values, 1);
    firn_label l[8];
    memcpy(l, labels, n * sizeof *l);
    firn_err err = {0};
    assert_int_equal(firn_labels_normalize(l, &n, &err), 0);
    tsdb_append_req req = {.labels = l, .n_labels = n, .profile_name = name, .delta = delta,
                           .profile = p, .timestamp_ms = ts};
    if (tsdb_append(db, &req, &err) < 0)
        fail_msg("append: %s", err.msg);
    pprof_free(p);
}

/* The service_name of each selected series, sorted, joined by ','. */
static char *selected(fixture *f, tsdb_reader *r, const char *sel, const char *type)
{
    char *sels[] = {(char *)sel};
    pyroscope_selection s;
    firn_err err = {0};
    if (pyroscope_select(&f->c, r, sels, 1, type, 0, INT64_MAX, &s, &err) < 0)
        fail_msg("select %s: %s", sel, err.msg);
    firn_buf b = {0};
    char **v = calloc(s.n + 1, sizeof *v);
    for (size_t i = 0; i < s.n; i++) {
        const char *svc = pyroscope_label(&s.v[i], "service_name");
        const char *pt = pyroscope_label(&s.v[i], "__profile_type__");
        assert_non_null(svc);
        assert_string_equal(pt, s.v[i].profile_type);
        v[i] = malloc(strlen(svc) + 4);
        sprintf(v[i], "%s%s", svc, s.v[i].delta ? "+d" : "");
    }
    for (size_t i = 0; i < s.n; i++)   /* a tiny insertion sort: a handful of series */
        for (size_t k = i; k > 0 && strcmp(v[k - 1], v[k]) > 0; k--) {
            char *t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    for (size_t i = 0; i < s.n; i++) {
        firn_buf_puts(&b, i ? "," : "");
        firn_buf_puts(&b, v[i]);
        free(v[i]);
    }
    free(v);
    firn_buf_append(&b, "", 1);
    return firn_buf_take(&b, NULL);
}

static void test_view_rules(void **state)
{
    fixture *f = *state;
    char *dir = temp_dir("pyroscope");
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = dir;
    o.retention_ms = 0;
    firn_err err = {0};
    tsdb *db = tsdb_open(&o, &err);
    if (!db)
        fail_msg("tsdb_open: %s", err.msg);
    int64_t now = firn_now_ms();
    /* service_name as its own label, from job, from nothing */
    append(db, "process_cpu", true, (firn_label[]){{"service_name", "api"}, {"job", "j1"}}, 2, now);
    append(db, "process_cpu", true, (firn_label[]){{"job", "scraped"}}, 1, now);
    append(db, "process_cpu", true, (firn_label[]){{"instance", "x"}}, 1, now);
    /* one series' type both with and without :delta: the :delta one is shown */
    append(db, "memory", false, (firn_label[]){{"job", "both"}}, 1, now);
    append(db, "memory", true, (firn_label[]){{"job", "both"}}, 1, now);
    f->api.db = db;
    tsdb_reader *r = pyroscope_reader(&f->c, &err);
    assert_non_null(r);

    static const struct {
        const char *selector, *type, *want;   /* want: service_name, "+d" for :delta */
    } C[] = {
        {"{}", "process_cpu:cpu:nanoseconds::", "api+d,scraped+d,unknown_service+d"},
        {"{service_name=\"scraped\"}", NULL, "scraped+d"},
        {"{service_name=~\"unknown.*|api\", __name__=\"process_cpu\"}", NULL,
         "api+d,unknown_service+d"},
        /* Pyroscope's __name__ is the profile name; __type__ the sample type */
        {"{__name__=\"memory\"}", NULL, "both+d"},
        {"memory{__type__=\"cpu\"}", NULL, "both+d"},
        {"{__profile_type__=\"memory:cpu:nanoseconds::\"}", NULL, "both+d"},
        {"{__profile_type__=\"memory:cpu:nanoseconds:::delta\"}", NULL, ""},
        {"{job!=\"both\", service_name!=\"api\"}", NULL, "scraped+d,unknown_service+d"},
    };
    for (size_t i = 0; i < sizeof C / sizeof C[0]; i++) {
        char *got = selected(f, r, C[i].selector, C[i].type);
        if (strcmp(got, C[i].want) != 0)
            fail_msg("%s: got \"%s\", want \"%s\"", C[i].selector, got, C[i].want);
        free(got);
    }
    tsdb_reader_close(r);
    tsdb_close(db);
    f->api.db = NULL;
    remove_tree(dir);
    free(dir);
}

/* ---- Push retried after a partial store ------------------------------------------- */

/* A PushRequest of series a (profile pa, named name_a) and, when pb_ is
 * not NULL, b (profile pb_, process_cpu), with __delta__="false" when
 * delta_false. */
static void push_body2(const char *name_a, const unsigned char *pa, size_t la,
                       const unsigned char *pb_, size_t lb, bool delta_false, unsigned char **out,
                       size_t *out_len)
{
    Types__V1__LabelPair names[2][3];
    Types__V1__LabelPair *ptrs[2][3];
    Push__V1__RawSample samples[2];
    Push__V1__RawSample *sp[2][1];
    Push__V1__RawProfileSeries series[2];
    Push__V1__RawProfileSeries *ss[2];
    const char *svc[2] = {"a", "b"};
    for (int i = 0; i < 2; i++) {
        const char *kv[3][2] = {{"__name__", i ? "process_cpu" : name_a}, {"service_name", svc[i]},
                                {"__delta__", "false"}};
        for (int k = 0; k < (delta_false ? 3 : 2); k++) {
            types__v1__label_pair__init(&names[i][k]);
            names[i][k].name = (char *)kv[k][0];
            names[i][k].value = (char *)kv[k][1];
            ptrs[i][k] = &names[i][k];
        }
        push__v1__raw_sample__init(&samples[i]);
        samples[i].raw_profile.data = (uint8_t *)(i ? pb_ : pa);
        samples[i].raw_profile.len = i ? lb : la;
        sp[i][0] = &samples[i];
        push__v1__raw_profile_series__init(&series[i]);
        series[i].n_labels = delta_false ? 3 : 2;
        series[i].labels = ptrs[i];
        series[i].n_samples = 1;
        series[i].samples = sp[i];
        ss[i] = &series[i];
    }
    Push__V1__PushRequest req = PUSH__V1__PUSH_REQUEST__INIT;
    req.n_series = pb_ ? 2 : 1;
    req.series = ss;
    *out_len = push__v1__push_request__get_packed_size(&req);
    *out = malloc(*out_len + 1);
    assert_non_null(*out);
    push__v1__push_request__pack(&req, *out);
}

static void push_body(const unsigned char *pb, size_t len, bool b_too, unsigned char **out,
                      size_t *out_len)
{
    push_body2("process_cpu", pb, len, b_too ? pb : NULL, len, true, out, out_len);
}

static void push_status(pyroscope_api *api, const unsigned char *body, size_t len, int want,
                        const char *want_code)
{
    pyroscope_request req = {.path = "/push.v1.PusherService/Push",
                             .content_type = "application/proto", .body = body, .body_len = len};
    http_response r = {0};
    pyroscope_serve(api, &req, &r);
    if (r.status != want)
        fail_msg("Push: status %d, want %d: %.*s", r.status, want, (int)r.body_len, r.body);
    if (want_code)
        assert_non_null(strstr(r.body, want_code));
    free(r.body);
}

/* A Push retried after its first attempt stored some of its profiles (the
 * answer lost, or a later profile refused with unavailable) must neither
 * fail on what is already there nor store it twice. */
static void test_push_retry_idempotent(void **state)
{
    (void)state;
    char *dir = temp_dir("pyroscope-push");
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = dir;
    o.retention_ms = 0;
    firn_err err = {0};
    tsdb *db = tsdb_open(&o, &err);
    if (!db)
        fail_msg("tsdb_open: %s", err.msg);
    pyroscope_api api = {.db = db, .deltas = pyroscope_deltas_new()};
    assert_non_null(api.deltas);
    size_t len;
    unsigned char *pb = read_fixture("pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz", &len);
    pprof_profile *p = decode_fixture("pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz");
    const size_t types = p->n_sample_types;
    assert_true(types >= 1);

    unsigned char *first, *both;
    size_t first_len, both_len;
    push_body(pb, len, false, &first, &first_len);
    push_body(pb, len, true, &both, &both_len);
    push_status(&api, first, first_len, 200, NULL);   /* the partial first attempt */
    tsdb_stats st;
    assert_int_equal(tsdb_stats_get(db, &st, &err), 0);
    assert_int_equal(st.series, types);
    assert_int_equal(st.blocks, types);
    push_status(&api, both, both_len, 200, NULL);     /* the retry of the whole request */
    push_status(&api, both, both_len, 200, NULL);     /* and once more */
    assert_int_equal(tsdb_stats_get(db, &st, &err), 0);
    assert_int_equal(st.series, 2 * types);
    assert_int_equal(st.blocks, 2 * types);

    /* a different profile at that time is already_exists, not retried */
    p->samples[0].values[0] += 1;
    unsigned char *other_pb, *other;
    size_t other_pb_len, other_len;
    assert_int_equal(pprof_encode(p, 0, &other_pb, &other_pb_len, &err), 0);
    push_body(other_pb, other_pb_len, false, &other, &other_len);
    push_status(&api, other, other_len, 409, "\"already_exists\"");
    assert_int_equal(tsdb_stats_get(db, &st, &err), 0);
    assert_int_equal(st.blocks, 2 * types);

    free(other);
    free(other_pb);
    free(first);
    free(both);
    free(pb);
    pprof_free(p);
    pyroscope_deltas_free(api.deltas);
    tsdb_close(db);
    remove_tree(dir);
    free(dir);
}

/* The same for a cumulative profile firn takes the delta of (no
 * __delta__): the retry's delta is the change since itself, so it differs
 * from what the first attempt stored; it is skipped, and the rest of the
 * request is stored. */
static void test_push_retry_cumulative(void **state)
{
    (void)state;
    char *dir = temp_dir("pyroscope-push-cum");
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = dir;
    o.retention_ms = 0;
    firn_err err = {0};
    tsdb *db = tsdb_open(&o, &err);
    if (!db)
        fail_msg("tsdb_open: %s", err.msg);
    pyroscope_api api = {.db = db, .deltas = pyroscope_deltas_new()};
    assert_non_null(api.deltas);
    /* two heap profiles of one process, 10 s apart, allocations doubled */
    pprof_profile *h = decode_fixture("alloy-heap.pprof");
    const size_t heap_types = h->n_sample_types;
    h->time_nanos = 1700000000000000000LL;
    unsigned char *h1, *h2;
    size_t h1_len, h2_len;
    assert_int_equal(pprof_encode(h, 0, &h1, &h1_len, &err), 0);
    h->time_nanos += 10000000000LL;
    for (size_t i = 0; i < h->n_samples; i++)
        for (size_t t = 0; t < 2; t++)   /* alloc_objects, alloc_space */
            h->samples[i].values[t] *= 2;
    assert_int_equal(pprof_encode(h, 0, &h2, &h2_len, &err), 0);
    pprof_free(h);
    size_t cpu_len;
    unsigned char *cpu = read_fixture("pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz", &cpu_len);
    pprof_profile *c = decode_fixture("pyro-pkg_og_convert_pprof_testdata_cpu.pb.gz");
    const size_t cpu_types = c->n_sample_types;
    pprof_free(c);

    unsigned char *b1, *b2, *b3;
    size_t b1_len, b2_len, b3_len;
    push_body2("memory", h1, h1_len, NULL, 0, false, &b1, &b1_len);
    push_body2("memory", h2, h2_len, NULL, 0, false, &b2, &b2_len);
    push_body2("memory", h2, h2_len, cpu, cpu_len, false, &b3, &b3_len);
    tsdb_stats st;
    push_status(&api, b1, b1_len, 200, NULL);   /* the baseline: nothing stored */
    assert_int_equal(tsdb_stats_get(db, &st, &err), 0);
    assert_int_equal(st.blocks, 0);
    push_status(&api, b2, b2_len, 200, NULL);   /* the delta */
    assert_int_equal(tsdb_stats_get(db, &st, &err), 0);
    assert_int_equal(st.blocks, heap_types);
    push_status(&api, b3, b3_len, 200, NULL);   /* a retry carrying it and a CPU profile */
    assert_int_equal(tsdb_stats_get(db, &st, &err), 0);
    assert_int_equal(st.blocks, heap_types + cpu_types);

    free(b1);
    free(b2);
    free(b3);
    free(h1);
    free(h2);
    free(cpu);
    pyroscope_deltas_free(api.deltas);
    tsdb_close(db);
    remove_tree(dir);
    free(dir);
}

/* ---- the Connect request path ------------------------------------------------------- */

static void serve(const char *path, const char *ct, const char *body, size_t len,
                  const char *proto_version, http_response *resp)
{
    static pyroscope_api api;   /* no store: calls that need it are unavailable */
    pyroscope_request req = {.path = path, .content_type = ct, .body = body, .body_len = len,
                             .protocol_version = proto_version};
    memset(resp, 0, sizeof *resp);
    pyroscope_serve(&api, &req, resp);
}

static void assert_error(const http_response *r, int status, const char *code)
{
    if (r->status != status)
        fail_msg("status %d, want %d: %.*s", r->status, status, (int)r->body_len, r->body);
    assert_string_equal(r->content_type, "application/json");
    json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "code")), code);
    assert_non_null(json_string_value(json_object_get(j, "message")));
    json_decref(j);
}

static void test_connect_path(void **state)
{
    (void)state;
    http_response r;
    serve("/querier.v1.QuerierService/Nope", "application/proto", "", 0, NULL, &r);
    assert_error(&r, 501, "unimplemented");
    free(r.body);
    serve("/querier.v1.QuerierService/ProfileTypes", "application/grpc", "", 0, NULL, &r);
    assert_error(&r, 415, "unknown");
    assert_string_equal(r.accept_post, "application/json, application/json; charset=utf-8, "
                                       "application/proto");   /* connect-go's handler.go */
    free(r.body);
    serve("/querier.v1.QuerierService/ProfileTypes", "application/json", "{}", 2, "2", &r);
    assert_error(&r, 400, "invalid_argument");
    free(r.body);
    serve("/querier.v1.QuerierService/ProfileTypes", "application/proto", "\x08", 1, "1", &r);
    assert_error(&r, 400, "invalid_argument");
    free(r.body);
    /* decoded, then no store: unavailable (503), which clients retry */
    serve("/querier.v1.QuerierService/ProfileTypes", "application/json; charset=utf-8",
          "{\"start\":1,\"end\":2}", 19, NULL, &r);
    assert_error(&r, 503, "unavailable");
    free(r.body);
    serve("/push.v1.PusherService/Push", "application/proto", "", 0, NULL, &r);
    assert_error(&r, 503, "unavailable");
    assert_string_equal(r.retry_after, "1");
    free(r.body);
    /* an RPC with nothing to look up answers: the exact Content-Type */
    serve("/querier.v1.QuerierService/SelectMergeSpanProfile", "application/proto", "", 0, NULL,
          &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/proto");
    assert_int_equal(r.body_len, 0);
    free(r.body);
    serve("/querier.v1.QuerierService/SelectMergeSpanProfile", "application/json", "", 0, NULL,
          &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    assert_int_equal(r.body_len, 2);
    assert_memory_equal(r.body, "{}", 2);
    free(r.body);
    /* a message quoting bytes that are not UTF-8 is still JSON with a
     * message, each bad byte \ufffd as Go's encoding/json writes it
     * (fuzz.connect found the bare code) */
    r = (http_response){0};
    pyroscope_respond_error(&r, PYRO_INVALID_ARGUMENT, "bad \xde\x82\xdd\xd2 here");
    assert_int_equal(r.status, 400);
    assert_string_equal(r.content_type, "application/json");
    assert_int_equal(r.body_len, strlen(r.body));
    assert_string_equal(r.body, "{\"code\":\"invalid_argument\",\"message\":"
                                "\"bad \xde\x82\\ufffd\\ufffd here\"}");
    free(r.body);
    /* the code table */
    assert_int_equal(pyroscope_code_http_status(PYRO_CANCELED), 499);
    assert_int_equal(pyroscope_code_http_status(PYRO_DEADLINE_EXCEEDED), 504);
    assert_int_equal(pyroscope_code_http_status(PYRO_ALREADY_EXISTS), 409);
    assert_int_equal(pyroscope_code_http_status(PYRO_PERMISSION_DENIED), 403);
    assert_int_equal(pyroscope_code_http_status(PYRO_RESOURCE_EXHAUSTED), 429);
    assert_int_equal(pyroscope_code_http_status(PYRO_FAILED_PRECONDITION), 400);
    assert_int_equal(pyroscope_code_http_status(PYRO_DATA_LOSS), 500);
    assert_int_equal(pyroscope_code_http_status(PYRO_UNAUTHENTICATED), 401);
    assert_string_equal(pyroscope_code_name(PYRO_OUT_OF_RANGE), "out_of_range");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_lenient_input, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_kinds, setup, teardown),
        cmocka_unit_test_setup_teardown(test_json_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flamegraph_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flamegraph_samples_cap, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flamegraph_other_and_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_view_rules, setup, teardown),
        cmocka_unit_test(test_connect_path),
        cmocka_unit_test(test_push_retry_idempotent),
        cmocka_unit_test(test_push_retry_cumulative),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
