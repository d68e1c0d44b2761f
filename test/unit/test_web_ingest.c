/* test_web_ingest.c -- pushed profiles (web/api_ingest.c, http/multipart.c):
 * the parsers on their own (multipart bodies, Pyroscope's name, collapsed
 * stacks), then both endpoints through a real server on loopback with a
 * store behind it: what is accepted is stored with the right series and
 * totals, what is refused gets its status and message and leaves nothing
 * in the store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fixtures.h"
#include "http/http.h"
#include "http_reply.h"
#include "ingest/ingest.h"
#include "model/model.h"
#include "tsdb/tsdb.h"
#include "web/internal.h"
#include "web/web.h"

#include "h2o_lsan.h"

/* Small, so that a fixture can exceed it. */
#define MAX_BODY (64u << 10)
#define CPU_FIXTURE "parca-pkg_query_testdata_fib.pb.gz"         /* 6355 bytes, gzipped */
#define BIG_FIXTURE "parca-pkg_parca_testdata_alloc_objects.pb.gz" /* 93959 bytes */
#define WALL_FIXTURE "pyro-pkg_og_convert_pprof_testdata_nodejs-wall.pb.gz"
#define MUTEX_FIXTURE "pyro-pkg_og_convert_pprof_testdata_req_3.pprof"

/* ---- multipart ---------------------------------------------------------------- */

typedef struct mp_case {
    const char *what;
    const char *content_type;
    const char *body;
    int rc;
    const char *want;   /* "name=data|name=data" for success, a message fragment for errors */
} mp_case;

static void test_multipart_table(void **state)
{
    (void)state;
    static const mp_case cases[] = {
        {"two parts, CRLF", "multipart/form-data; boundary=XyZ",
         "--XyZ\r\nContent-Disposition: form-data; name=\"profile\"; filename=\"p\"\r\n"
         "Content-Type: application/octet-stream\r\n\r\nPPROF\r\n"
         "--XyZ\r\nContent-Disposition: form-data; name=\"sample_type_config\"\r\n\r\n{}\r\n"
         "--XyZ--\r\n",
         0, "profile=PPROF|sample_type_config={}"},
        {"bare LF, preamble and epilogue, quoted boundary",
         "Multipart/Form-Data; charset=utf-8; boundary=\"a b\"",
         "preamble\n--a b\nContent-Disposition: form-data; name=x\n\nline1\nline2\n--a b--\nepi",
         0, "x=line1\nline2"},
        {"data holding the boundary as a prefix of a longer one",
         "multipart/form-data; boundary=B",
         "--B\r\ncontent-disposition: form-data; name=\"d\"\r\n\r\n--BB\r\n--B-x\r\n--B--", 0,
         "d=--BB\r\n--B-x"},
        {"empty part, unnamed part skipped", "multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=\"e\"\r\n\r\n\r\n"
         "--b\r\nContent-Disposition: form-data\r\n\r\nzzz\r\n--b--",
         0, "e="},
        {"escaped quote in a name", "multipart/form-data; boundary=b",
         "--b\r\nContent-Disposition: form-data; name=\"a\\\"b\"\r\n\r\nv\r\n--b--", 0,
         "a\"b=v"},
        {"not multipart", "application/octet-stream", "x", FIRN_EINVAL, "not multipart"},
        {"no boundary", "multipart/form-data", "x", FIRN_EINVAL, "no boundary"},
        {"boundary not found", "multipart/form-data; boundary=q", "hello", FIRN_EINVAL,
         "not found"},
        {"truncated: no closing delimiter", "multipart/form-data; boundary=q",
         "--q\r\nContent-Disposition: form-data; name=\"profile\"\r\n\r\nPPR", FIRN_EINVAL,
         "truncated"},
        {"ends inside headers", "multipart/form-data; boundary=q",
         "--q\r\nContent-Disposition: form-da", FIRN_EINVAL, "inside a part's headers"},
        {"no Content-Disposition", "multipart/form-data; boundary=q",
         "--q\r\nContent-Type: text/plain\r\n\r\nx\r\n--q--", FIRN_EINVAL,
         "no Content-Disposition"},
        {"not form-data", "multipart/form-data; boundary=q",
         "--q\r\nContent-Disposition: attachment; name=\"a\"\r\n\r\nx\r\n--q--", FIRN_EINVAL,
         "not form-data"},
        {"unterminated quote", "multipart/form-data; boundary=q",
         "--q\r\nContent-Disposition: form-data; name=\"a\r\n\r\nx\r\n--q--", FIRN_EINVAL,
         "unterminated"},
        {"header without colon", "multipart/form-data; boundary=q",
         "--q\r\nbogus\r\n\r\nx\r\n--q--", FIRN_EINVAL, "malformed part header"},
        {"delimiter followed by junk", "multipart/form-data; boundary=q",
         "--q junk\r\n", FIRN_EINVAL, "not followed by a line end"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const mp_case *c = &cases[i];
        firn_arena *a = firn_arena_new(0);
        http_multipart_part *parts;
        size_t n;
        firn_err err = {0};
        int rc = http_multipart_parse(c->content_type, c->body, strlen(c->body), a, &parts, &n,
                                     &err);
        if (rc != c->rc)
            fail_msg("%s: rc %d, want %d (%s)", c->what, rc, c->rc, err.msg);
        if (rc == 0) {
            firn_buf b = {0};
            for (size_t k = 0; k < n; k++)
                firn_buf_printf(&b, "%s%s=%.*s", k ? "|" : "", parts[k].name,
                                (int)parts[k].len, parts[k].data);
            if (strcmp(b.data ? b.data : "", c->want) != 0)
                fail_msg("%s: got \"%s\", want \"%s\"", c->what, b.data, c->want);
            firn_buf_free(&b);
        } else if (!strstr(err.msg, c->want)) {
            fail_msg("%s: message \"%s\" lacks \"%s\"", c->what, err.msg, c->want);
        }
        firn_arena_free(a);
    }
}

static void test_multipart_caps(void **state)
{
    (void)state;
    firn_buf b = {0};
    for (int i = 0; i <= HTTP_MULTIPART_PARTS_MAX; i++)
        firn_buf_printf(&b, "--b\r\nContent-Disposition: form-data; name=\"p%d\"\r\n\r\nx\r\n", i);
    firn_buf_puts(&b, "--b--\r\n");
    firn_arena *a = firn_arena_new(0);
    http_multipart_part *parts;
    size_t n;
    firn_err err = {0};
    assert_int_equal(http_multipart_parse("multipart/form-data; boundary=b", b.data, b.len, a,
                                         &parts, &n, &err),
                     FIRN_ETOOBIG);
    firn_buf_free(&b);

    firn_buf_puts(&b, "--b\r\nContent-Disposition: form-data; name=\"x\"\r\n");
    for (int i = 0; i < 2000; i++)
        firn_buf_puts(&b, "X-Padding: 0123456789\r\n");
    firn_buf_puts(&b, "\r\nx\r\n--b--");
    assert_int_equal(http_multipart_parse("multipart/form-data; boundary=b", b.data, b.len, a,
                                         &parts, &n, &err),
                     FIRN_ETOOBIG);
    firn_buf_free(&b);

    char boundary[128] = "multipart/form-data; boundary=";
    memset(boundary + strlen(boundary), 'k', 71);
    assert_int_equal(http_multipart_parse(boundary, "x", 1, a, &parts, &n, &err), FIRN_EINVAL);
    assert_non_null(strstr(err.msg, "longer than 70"));
    firn_arena_free(a);
}

/* ---- Pyroscope's name ------------------------------------------------------------- */

static void test_pyroscope_name(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        const char *want;  /* "app|k=v|k=v", or "!fragment of the error" */
    } cases[] = {
        {"myapp", "myapp"},
        {"  my.app.cpu  ", "my.app.cpu"},
        {"my-app/x_1.cpu{}", "my-app/x_1.cpu"},
        {"app.cpu{env=prod,region = eu-west }", "app.cpu|env=prod|region=eu-west"},
        {"app{a=1,,b=,}", "app|a=1|b="},
        {"app{v=a=b}", "app|v=a=b"},
        {"", "!no application name"},
        {"{a=b}", "!no application name"},
        {"my app", "!character ' '"},
        {"app;x", "!character ';'"},
        {"app{a}", "!\"a\" is not k=v"},
        {"app{a=b", "!without '}'"},
        {"app{a=b}x", "!text after '}'"},
        {"app{otel.scope.name=x/y, a.b = 1}", "app|otel_scope_name=x/y|a_b=1"},
        {"app{bad-name=1}", "!invalid label name \"bad-name\""},
        {"app{=1}", "!invalid label name \"\""},
        {"app{__name__=x}", "!reserved"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        firn_arena *a = firn_arena_new(0);
        const char *app;
        firn_label *l;
        size_t n;
        firn_err err = {0};
        int rc = ingest_pyroscope_name_parse(cases[i].in, a, &app, &l, &n, &err);
        const char *want = cases[i].want;
        if (want[0] == '!') {
            if (rc != FIRN_EINVAL || !strstr(err.msg, want + 1))
                fail_msg("\"%s\": rc %d \"%s\", want an error with \"%s\"", cases[i].in, rc,
                         err.msg, want + 1);
        } else {
            if (rc != 0)
                fail_msg("\"%s\": %s", cases[i].in, err.msg);
            firn_buf b = {0};
            firn_buf_puts(&b, app);
            for (size_t k = 0; k < n; k++)
                firn_buf_printf(&b, "|%s=%s", l[k].name, l[k].value);
            if (strcmp(b.data, want) != 0)
                fail_msg("\"%s\": got \"%s\", want \"%s\"", cases[i].in, b.data, want);
            firn_buf_free(&b);
        }
        firn_arena_free(a);
    }
}

/* ---- collapsed stacks --------------------------------------------------------------- */

/* The profile's samples as "leaf<root... value" lines, sorted. */
static char *samples_text(const pprof_profile *p)
{
    size_t n = p->n_samples;
    char **lines = calloc(n + 1, sizeof *lines);
    for (size_t i = 0; i < n; i++) {
        const pprof_sample *s = &p->samples[i];
        firn_buf b = {0};
        for (size_t k = s->n_locations; k-- > 0;) {
            const pprof_location *l = &p->locations[s->locations[k]];
            assert_int_equal(l->n_lines, 1);
            firn_buf_printf(&b, "%s%s", k + 1 < s->n_locations ? ";" : "",
                            pprof_str(p, p->functions[l->lines[0].function].name));
        }
        firn_buf_printf(&b, " %" PRId64, s->values[0]);
        lines[i] = firn_buf_take(&b, NULL);
    }
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && strcmp(lines[j - 1], lines[j]) > 0; j--) {
            char *t = lines[j];
            lines[j] = lines[j - 1];
            lines[j - 1] = t;
        }
    firn_buf out = {0};
    for (size_t i = 0; i < n; i++) {
        firn_buf_printf(&out, "%s\n", lines[i]);
        free(lines[i]);
    }
    free(lines);
    char *s = firn_buf_take(&out, NULL);
    return s ? s : strdup("");
}

static void expect_folded(const char *body, const ingest_folded_type *t, const char *want)
{
    firn_err err = {0};
    pprof_profile *p = ingest_folded_parse(body, strlen(body), t, &err);
    if (!p)
        fail_msg("\"%s\": %s", body, err.msg);
    char *got = samples_text(p);
    if (strcmp(got, want) != 0)
        fail_msg("\"%s\": got\n%s\nwant\n%s", body, got, want);
    free(got);
    pprof_free(p);
}

static void test_folded(void **state)
{
    (void)state;
    ingest_folded_type t = {.sample_type = "samples", .sample_unit = "count", .scale = 1};
    expect_folded("main;a;b 3\nmain;a 2\nmain;a;b 4\r\n\nnovalue\n;x 0\n main 1", &t,
                  " main 1\nmain;a 2\nmain;a;b 7\n");
    expect_folded("", &t, "");
    t.scale = 10000000;
    expect_folded("f;g 5", &t, "f;g 50000000\n");
    t.scale = 1;
    t.lines = true;
    expect_folded("a;b\na;b\r\nc\n\n", &t, "a;b 2\nc 1\n");

    /* the sample and period types as given */
    t = (ingest_folded_type){.sample_type = "cpu", .sample_unit = "nanoseconds",
                          .period_type = "cpu", .period_unit = "nanoseconds",
                          .period = 10000000, .scale = 10000000};
    firn_err err = {0};
    pprof_profile *p = ingest_folded_parse("x 1", 3, &t, &err);
    assert_non_null(p);
    assert_int_equal(p->n_sample_types, 1);
    assert_string_equal(pprof_str(p, p->sample_types[0].type), "cpu");
    assert_string_equal(pprof_str(p, p->period_type.unit), "nanoseconds");
    assert_int_equal(p->period, 10000000);
    pprof_free(p);

    static const struct {
        const char *body;
        int64_t scale;
        const char *msg;
    } bad[] = {
        {"a 1\nb x\n", 1, "line 2: value \"x\""},
        {"a -1", 1, "value \"-1\""},
        {"a 99999999999999999999", 1, "line 1: value"},
        {"a 922337203685477", 100000, "overflows"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        t = (ingest_folded_type){.sample_type = "samples", .sample_unit = "count",
                              .scale = bad[i].scale};
        p = ingest_folded_parse(bad[i].body, strlen(bad[i].body), &t, &err);
        assert_null(p);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("\"%s\": \"%s\" lacks \"%s\"", bad[i].body, err.msg, bad[i].msg);
    }
    firn_buf deep = {0};
    for (int i = 0; i <= INGEST_FOLDED_DEPTH_MAX; i++)
        firn_buf_puts(&deep, "f;");
    firn_buf_puts(&deep, "leaf 1");
    t = (ingest_folded_type){.sample_type = "samples", .sample_unit = "count", .scale = 1};
    assert_null(ingest_folded_parse(deep.data, deep.len, &t, &err));
    assert_non_null(strstr(err.msg, "frames"));
    firn_buf_free(&deep);
}

static void test_pyroscope_profile_name(void **state)
{
    (void)state;
    static const struct {
        const char *fixture, *want, *strict;
    } cases[] = {
        {CPU_FIXTURE, "process_cpu", "process_cpu"},
        {WALL_FIXTURE, "wall", "wall"},
        {"alloy-heap.pprof", "memory", "memory"},
        {"pyro-pkg_og_convert_pprof_testdata_heap-js.pprof", "memory", "memory"},
        {MUTEX_FIXTURE, "delay", NULL},
        {"pyro-pkg_og_convert_pprof_testdata_req_2.pprof", "goroutine", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pprof_profile *p = decode_fixture(cases[i].fixture);
        assert_string_equal(ingest_pyroscope_profile_name(p, NULL, true), cases[i].want);
        const char *strict = ingest_pyroscope_profile_name(p, NULL, false);
        if (cases[i].strict)
            assert_string_equal(strict, cases[i].strict);
        else
            assert_null(strict);
        pprof_free(p);
    }
    /* pyroscope-go renames mutex columns in sample_type_config */
    pprof_profile *p = decode_fixture(MUTEX_FIXTURE);
    json_t *config = json_pack("{s:{s:s}, s:{s:s}}", "contentions", "display-name",
                               "mutex_count", "delay", "display-name", "mutex_duration");
    assert_string_equal(ingest_pyroscope_profile_name(p, config, true), "mutex");
    json_decref(config);
    pprof_free(p);
}

/* ---- through the server -------------------------------------------------------------- */

typedef struct fixture {
    char *dir;
    tsdb *db;
    http_server *web;
    web_api api;
} fixture;

static int setup_server(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    firn_err err = {0};
    f->dir = temp_dir("ingest");
    tsdb_options to;
    tsdb_options_default(&to);
    to.path = f->dir;
    to.retention_ms = 0;  /* the fixtures are years old */
    to.queue_max = 1;     /* so that concurrent pushes can find the queue full */
    f->db = tsdb_open(&to, &err);
    if (!f->db)
        fail_msg("tsdb_open: %s", err.msg);
    http_options wo;
    http_options_default(&wo);
    wo.listen_address = "127.0.0.1:0";
    wo.max_body_bytes = MAX_BODY;
    f->web = http_new(&wo, &err);
    if (!f->web)
        fail_msg("http_new: %s", err.msg);
    f->api.db = f->db;
    if (web_api_ingest_register(f->web, &f->api, &err) < 0 || http_start(f->web, &err) < 0)
        fail_msg("server: %s", err.msg);
    *state = f;
    return 0;
}

static int teardown_server(void **state)
{
    fixture *f = *state;
    http_stop(f->web);
    tsdb_close(f->db);
    remove_tree(f->dir);
    free(f->dir);
    free(f);
    return 0;
}


static CURL *post_new(fixture *f, const char *target, const void *body, size_t len,
                      struct curl_slist *headers, reply *out)
{
    char url[4096];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", http_port(f->web), target);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *)body);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out->body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &out->headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    return c;
}

/* POST body to target with up to two extra headers (NULL for none);
 * "Expect:" keeps curl from waiting for 100-continue. */
static reply post(fixture *f, const char *target, const void *body, size_t len,
                  const char *header1, const char *header2)
{
    reply r = {0};
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    if (header1)
        h = curl_slist_append(h, header1);
    if (header2)
        h = curl_slist_append(h, header2);
    CURL *c = post_new(f, target, body, len, h, &r);
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("POST %s: %s", target, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    curl_slist_free_all(h);
    return r;
}

static void expect_post(fixture *f, const char *target, const void *body, size_t len,
                        const char *header, long status, const char *fragment)
{
    reply r = post(f, target, body, len, header, NULL);
    if (r.status != status || (fragment && !strstr(body_of(&r), fragment)))
        fail_msg("POST %s: got %ld \"%s\", want %ld with \"%s\"", target, r.status,
                 body_of(&r), status, fragment ? fragment : "");
    reply_free(&r);
}

/* The store's series, one "{labels}" per line, and the total of each
 * series' profiles after " total=" */
static char *series_text(fixture *f, const char *match_name, const char *match_value)
{
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(f->db, &err);
    assert_non_null(r);
    firn_matcher m;
    size_t nm = 0;
    if (match_name) {
        assert_int_equal(firn_matcher_init(&m, FIRN_MATCH_EQ, match_name, match_value, &err), 0);
        nm = 1;
    }
    tsdb_series_set set;
    assert_int_equal(tsdb_select(r, &m, nm, INT64_MIN, INT64_MAX, &set, &err), 0);
    firn_buf b = {0};
    for (size_t i = 0; i < set.n; i++) {
        char *ls = firn_labels_format(set.series[i].labels, set.series[i].n_labels);
        pprof_profile *p = tsdb_merge(r, &set.series[i].id, 1, INT64_MIN, INT64_MAX, NULL,
                                      NULL, &err);
        assert_non_null(p);
        int64_t total;
        pprof_totals(p, &total);
        firn_buf_printf(&b, "%s total=%" PRId64 "\n", ls, total);
        free(ls);
        pprof_free(p);
    }
    tsdb_series_set_free(&set);
    if (nm)
        firn_matcher_destroy(&m);
    tsdb_reader_close(r);
    char *s = firn_buf_take(&b, NULL);
    return s ? s : strdup("");
}

static void expect_series(fixture *f, const char *match_name, const char *match_value,
                          const char *want)
{
    char *got = series_text(f, match_name, match_value);
    if (strcmp(got, want) != 0)
        fail_msg("series %s=%s: got\n%s\nwant\n%s", match_name ? match_name : "",
                 match_value ? match_value : "", got, want);
    free(got);
}

/* A two-column fixture's bytes, with its totals and time (ms; may be NULL). */
static unsigned char *read_fixture_totals(const char *name, size_t *len, int64_t totals[2],
                                          int64_t *time_ms)
{
    pprof_profile *p = decode_fixture(name);
    assert_int_equal(p->n_sample_types, 2);
    pprof_totals(p, totals);
    if (time_ms)
        *time_ms = p->time_nanos / 1000000;
    pprof_free(p);
    return read_fixture(name, len);
}

static void test_api_ingest(void **state)
{
    fixture *f = *state;
    size_t len;
    int64_t totals[2];
    unsigned char *cpu = read_fixture_totals(CPU_FIXTURE, &len, totals, NULL);

    reply r = post(f, "/api/v1/ingest?name=process_cpu&job=app&instance=a%3A1", cpu, len,
                   "X-Firn-Labels: time = t1, env=e2e", NULL);
    assert_int_equal(r.status, 200);
    assert_string_equal(body_of(&r),
                        "{\"status\":\"success\",\"data\":{\"profileTypes\":"
                        "[\"process_cpu:samples:count:cpu:nanoseconds:delta\","
                        "\"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta\"],"
                        "\"samples\":120,\"timestampMs\":1626441030776}}");
    reply_free(&r);
    char want[1024];
    snprintf(want, sizeof want,
             "{__name__=\"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta\", env=\"e2e\", "
             "instance=\"a:1\", job=\"app\", time=\"t1\"} total=%" PRId64 "\n"
             "{__name__=\"process_cpu:samples:count:cpu:nanoseconds:delta\", env=\"e2e\", "
             "instance=\"a:1\", job=\"app\", time=\"t1\"} total=%" PRId64 "\n",
             totals[1], totals[0]);
    expect_series(f, "job", "app", want);
    char want_app[1024];
    snprintf(want_app, sizeof want_app, "%s", want);

    /* gunzipped and sent with Content-Encoding, __name__, delta=false, time */
    unsigned char *raw;
    size_t raw_len;
    firn_err err = {0};
    assert_int_equal(pprof_gunzip(cpu, len, 1u << 20, &raw, &raw_len, &err), 0);
    unsigned char *gz;
    size_t gz_len;
    assert_int_equal(pprof_gzip(raw, raw_len, 6, &gz, &gz_len, &err), 0);
    expect_post(f, "/api/v1/ingest?__name__=cpu2&delta=false&time=1700000000.5&job=b", gz,
                gz_len, "Content-Encoding: gzip", 200, "\"timestampMs\":1700000000500");
    expect_post(f, "/api/v1/ingest?name=cpu3&job=b", raw, raw_len, NULL, 200,
                "cpu3:cpu:nanoseconds:cpu:nanoseconds:delta");
    snprintf(want, sizeof want,
             "{__name__=\"cpu2:cpu:nanoseconds:cpu:nanoseconds\", job=\"b\"} total=%" PRId64
             "\n",
             totals[1]);
    expect_series(f, "__name__", "cpu2:cpu:nanoseconds:cpu:nanoseconds", want);

    /* refusals, nothing stored */
    static const struct {
        const char *target, *header;
        int body;  /* 0 the fixture, 1 garbage, 2 truncated gzip, 3 empty */
        long status;
        const char *msg;
    } bad[] = {
        {"/api/v1/ingest?job=x", NULL, 0, 400, "missing parameter name"},
        {"/api/v1/ingest?name=a:b&job=x", NULL, 0, 400, "a profile name must match"},
        {"/api/v1/ingest?name=x&__name__=y", NULL, 0, 400, "differ"},
        {"/api/v1/ingest?name=x&delta=maybe", NULL, 0, 400, "delta \\\"maybe\\\""},
        {"/api/v1/ingest?name=x&time=yesterday", NULL, 0, 400, "time: cannot parse"},
        {"/api/v1/ingest?name=x&bad-label=1", NULL, 0, 400, "label name \\\"bad-label\\\""},
        {"/api/v1/ingest?name=x&job=1&job=2", NULL, 0, 400, "label job given 2 times"},
        {"/api/v1/ingest?name=x", "X-Firn-Labels: job", 0, 400, "is not k=v"},
        {"/api/v1/ingest?name=x", "X-Firn-Labels: __name__=q", 0, 400, "label __name__"},
        {"/api/v1/ingest?name=x", "Content-Encoding: br", 0, 400, "not supported"},
        {"/api/v1/ingest?name=x", "Content-Encoding: gzip", 1, 400, "Content-Encoding gzip"},
        {"/api/v1/ingest?name=x", NULL, 1, 400, "decoding profile"},
        {"/api/v1/ingest?name=x", NULL, 2, 400, "decoding profile: gzip: truncated"},
        {"/api/v1/ingest?name=x", NULL, 3, 400, "empty body"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const void *body = bad[i].body == 0   ? (const void *)cpu
                           : bad[i].body == 1 ? (const void *)"garbage, not a profile"
                                              : (const void *)cpu;
        size_t n = bad[i].body == 0 ? len : bad[i].body == 1 ? 22 : bad[i].body == 2 ? len / 2 : 0;
        expect_post(f, bad[i].target, body, n, bad[i].header, bad[i].status, bad[i].msg);
    }
    /* the same profile again in the same series is a no-op (a retry whose
     * answer was lost); a different one at that time is a conflict */
    expect_post(f, "/api/v1/ingest?name=process_cpu&job=app&instance=a%3A1", cpu, len,
                "X-Firn-Labels: time=t1,env=e2e", 200, "\"timestampMs\":1626441030776");
    expect_series(f, "job", "app", want_app);
    pprof_limits lim;
    pprof_limits_default(&lim);
    pprof_profile *other = pprof_decode(cpu, len, &lim, &err);
    assert_non_null(other);
    other->samples[0].values[1] += 1;
    unsigned char *other_pb;
    size_t other_len;
    assert_int_equal(pprof_encode(other, 0, &other_pb, &other_len, &err), 0);
    pprof_free(other);
    expect_post(f, "/api/v1/ingest?name=process_cpu&job=app&instance=a%3A1", other_pb,
                other_len, "X-Firn-Labels: time=t1,env=e2e", 409,
                "already has a different profile at 1626441030776 ms");
    free(other_pb);
    expect_series(f, "job", "app", want_app);
    expect_series(f, "job", "x", "");

    /* over the body cap: h2o's 413, and the profile decoder's own cap is 413 too */
    size_t big_len;
    unsigned char *big = read_fixture(BIG_FIXTURE, &big_len);
    assert_true(big_len > MAX_BODY);
    expect_post(f, "/api/v1/ingest?name=memory&job=big", big, big_len, NULL, 413, NULL);
    expect_series(f, "job", "big", "");
    free(big);
    free(gz);
    free(raw);
    free(cpu);
}

static void test_pyroscope_folded(void **state)
{
    fixture *f = *state;
    const char *folded = "main;work;burn 10\nmain;work;idle 5\nmain;gc 3\n";
    /* curl --data-binary's default Content-Type: the body is not a form */
    expect_post(f, "/ingest?name=shop.cpu%7Benv%3Dprod%2Cregion%3Deu%7D&from=1700000000"
                   "&until=1700000010&spyName=gospy&sampleRate=100",
                folded, strlen(folded), "Content-Type: application/x-www-form-urlencoded",
                200, NULL);
    expect_series(f, "service_name", "shop",
                  "{__name__=\"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta\", "
                  "env=\"prod\", pyroscope_spy=\"gospy\", region=\"eu\", "
                  "service_name=\"shop\"} total=180000000\n");
    /* lines, gzipped; no suffix is cpu; sampleRate 0 keeps samples */
    unsigned char *gz;
    size_t gz_len;
    firn_err err = {0};
    const char *lines = "a;b\na;b\na;c\n";
    assert_int_equal(pprof_gzip(lines, strlen(lines), 6, &gz, &gz_len, &err), 0);
    expect_post(f, "/ingest?name=plain&format=lines&sampleRate=0&from=1700000000000", gz,
                gz_len, "Content-Encoding: gzip", 200, NULL);
    free(gz);
    expect_series(f, "service_name", "plain",
                  "{__name__=\"process_cpu:samples:count:::delta\", service_name=\"plain\"} "
                  "total=3\n");
    /* a snapshot type, service_name given: app_name carries the app */
    expect_post(f, "/ingest?name=svc.inuse_space%7Bservice_name%3Dother%7D&from=1700000000",
                folded, strlen(folded), NULL, 200, NULL);
    expect_series(f, "service_name", "other",
                  "{__name__=\"memory:inuse_space:bytes::\", app_name=\"svc\", "
                  "service_name=\"other\"} total=18\n");

    static const struct {
        const char *target, *header, *body, *msg;
    } bad[] = {
        {"/ingest?from=1700000000", NULL, "a 1", "missing parameter name"},
        {"/ingest?name=x.bogus", NULL, "a 1", "unknown profile type: bogus"},
        {"/ingest?name=x.cpu%7Bbad-label%3D1%7D", NULL, "a 1", "invalid label name"},
        {"/ingest?name=x.cpu&from=soon", NULL, "a 1", "from \"soon\""},
        {"/ingest?name=x.cpu&until=99999999999999", NULL, "a 1", "after the year 2262"},
        {"/ingest?name=x.cpu&from=20&until=10", NULL, "a 1", "before from"},
        {"/ingest?name=x.cpu&sampleRate=fast", NULL, "a 1", "sampleRate"},
        {"/ingest?name=x.cpu&format=jfr", NULL, "a 1", "not supported"},
        {"/ingest?name=x.cpu", "Content-Type: binary/octet-stream+trie", "a 1", "not supported"},
        {"/ingest?name=x.cpu&from=1700000000", NULL, "a;b 1\na;b x\n", "line 2: value"},
        {"/ingest?name=x&format=pprof", NULL, "garbage", "decoding profile"},
        {"/ingest?name=x&format=pprof", NULL, "", "empty body"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_post(f, bad[i].target, bad[i].body, strlen(bad[i].body), bad[i].header, 400,
                    bad[i].msg);
    expect_series(f, "service_name", "x", "");
}

/* A multipart body as Pyroscope's clients send it. */
static void multipart_body(firn_buf *b, const void *profile, size_t len, const char *config,
                           bool prev)
{
    firn_buf_puts(b, "--BOUNDARY\r\nContent-Disposition: form-data; name=\"profile\"; "
                     "filename=\"profile\"\r\nContent-Type: text/json\r\n\r\n");
    firn_buf_append(b, profile, len);
    firn_buf_puts(b, "\r\n");
    if (config)
        firn_buf_printf(b, "--BOUNDARY\r\nContent-Disposition: form-data; "
                           "name=\"sample_type_config\"; filename=\"sample_type_config.json\""
                           "\r\n\r\n%s\r\n", config);
    if (prev) {
        firn_buf_puts(b, "--BOUNDARY\r\nContent-Disposition: form-data; name=\"prev_profile\""
                         "\r\n\r\n");
        firn_buf_append(b, profile, len);
        firn_buf_puts(b, "\r\n");
    }
    firn_buf_puts(b, "--BOUNDARY--\r\n");
}

#define MULTIPART_CT "Content-Type: multipart/form-data; boundary=BOUNDARY"

static void test_pyroscope_pprof(void **state)
{
    fixture *f = *state;
    size_t len;
    int64_t totals[2], t_ms;
    unsigned char *wall = read_fixture_totals(WALL_FIXTURE, &len, totals, &t_ms);
    firn_buf b = {0};
    multipart_body(&b, wall, len, NULL, false);
    expect_post(f, "/ingest?name=node.app%7Bzone%3Da%7D&spyName=nodespy&from=1652179630"
                   "&until=1652179640&sampleRate=100",
                b.data, b.len, MULTIPART_CT, 200, NULL);
    char want[1024];
    snprintf(want, sizeof want,
             "{__name__=\"wall:samples:count:wall:microseconds:delta\", pyroscope_spy=\"nodespy"
             "\", service_name=\"node.app\", zone=\"a\"} total=%" PRId64 "\n"
             "{__name__=\"wall:wall:microseconds:wall:microseconds:delta\", pyroscope_spy="
             "\"nodespy\", service_name=\"node.app\", zone=\"a\"} total=%" PRId64 "\n",
             totals[0], totals[1]);
    expect_series(f, "service_name", "node.app", want);
    /* stored at the profile's own time */
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(f->db, &err);
    tsdb_series_set set;
    firn_matcher m;
    firn_matcher_init(&m, FIRN_MATCH_EQ, "service_name", "node.app", &err);
    assert_int_equal(tsdb_select(r, &m, 1, INT64_MIN, INT64_MAX, &set, &err), 0);
    assert_int_equal(set.n, 2);
    assert_int_equal(set.series[0].min_time_ms, t_ms);
    tsdb_series_set_free(&set);
    firn_matcher_destroy(&m);
    tsdb_reader_close(r);
    firn_buf_free(&b);
    free(wall);

    /* sample_type_config renames the mutex columns: the name is mutex */
    unsigned char *mutex = read_fixture(MUTEX_FIXTURE, &len);
    multipart_body(&b, mutex, len,
                   "{\"contentions\":{\"display-name\":\"mutex_count\"},"
                   "\"delay\":{\"display-name\":\"mutex_duration\"}}",
                   false);
    expect_post(f, "/ingest?name=go.app&format=pprof&from=1694142290", b.data, b.len,
                MULTIPART_CT, 200, NULL);
    char *got = series_text(f, "service_name", "go.app");
    assert_non_null(strstr(got, "{__name__=\"mutex:contentions:count:contentions:count:delta\""));
    assert_non_null(strstr(got, "{__name__=\"mutex:delay:nanoseconds:contentions:count:delta\""));
    free(got);
    /* a raw pprof body with format=pprof */
    expect_post(f, "/ingest?name=raw.app&format=pprof", mutex, len, NULL, 200, NULL);
    got = series_text(f, "service_name", "raw.app");
    assert_non_null(strstr(got, "{__name__=\"delay:contentions:count:contentions:count:delta\""));
    free(got);
    firn_buf_free(&b);

    /* refusals */
    multipart_body(&b, mutex, len, NULL, true);
    expect_post(f, "/ingest?name=bad.app", b.data, b.len, MULTIPART_CT, 400,
                "unsupported client version");
    firn_buf_free(&b);
    multipart_body(&b, mutex, len, "{not json", false);
    expect_post(f, "/ingest?name=bad.app", b.data, b.len, MULTIPART_CT, 400,
                "sample_type_config");
    firn_buf_free(&b);
    multipart_body(&b, mutex, len, NULL, false);
    expect_post(f, "/ingest?name=bad.app", b.data, b.len / 2, MULTIPART_CT, 400,
                "multipart body: the body ends inside part profile");
    expect_post(f, "/ingest?name=bad.app", b.data, b.len,
                "Content-Type: multipart/form-data; boundary=OTHER", 400, "not found");
    firn_buf_free(&b);
    firn_buf_puts(&b, "--BOUNDARY\r\nContent-Disposition: form-data; name=\"other\"\r\n\r\nx"
                      "\r\n--BOUNDARY--");
    expect_post(f, "/ingest?name=bad.app", b.data, b.len, MULTIPART_CT, 400,
                "no \"profile\" part");
    firn_buf_free(&b);
    expect_series(f, "service_name", "bad.app", "");
    free(mutex);
}

static int count_block(void *ctx, const tsdb_block *blk)
{
    (void)blk;
    (*(int *)ctx)++;
    return 0;
}

/* Pushes racing for a one-slot store queue: each is either stored (200)
 * or refused whole with 503 and Retry-After, never half-written. */
/* One ingest memory budget: a decoding that cannot get its grant is
 * FIRN_EBUSY and a push 503 with Retry-After; a profile that needs more than
 * its first grant asks again; a decoded profile keeps what its arena holds;
 * every grant comes back. */
static void test_ingest_budget(void **state)
{
    fixture *f = *state;
    size_t len;
    unsigned char *cpu = read_fixture(CPU_FIXTURE, &len);
    assert_int_equal(ingest_budget_used(), 0);
    ingest_budget_set(6u << 20);
    ingest_grant hog = {0};
    assert_true(ingest_budget_take(&hog, 3u << 20));
    assert_false(ingest_budget_take(&hog, 4u << 20));   /* 7 MiB > 6 MiB */
    assert_int_equal(hog.bytes, 3u << 20);

    /* the first grant of a small profile is 4 MiB: 3 + 4 > 6 */
    firn_err err = {0};
    ingest_grant g = {0};
    uint64_t refused = ingest_budget_refused();
    assert_null(ingest_decode(cpu, len, &g, &err));
    assert_int_equal(err.code, FIRN_EBUSY);
    assert_non_null(strstr(err.msg, "ingest memory budget (6291456 bytes) is in use"));
    assert_int_equal(g.bytes, 0);
    assert_true(ingest_budget_refused() == refused + 1);
    reply r = post(f, "/api/v1/ingest?name=process_cpu&job=budget&time=1700000000", cpu, len,
                   NULL, NULL);
    assert_int_equal(r.status, 503);
    assert_non_null(strstr(body_of(&r), "ingest memory budget"));
    assert_non_null(strcasestr(r.headers.data ? r.headers.data : "", "\r\nRetry-After: 1\r\n"));
    reply_free(&r);
    expect_series(f, "job", "budget", "");
    assert_int_equal(ingest_budget_used(), 3u << 20);

    ingest_grant_release(&hog);
    assert_int_equal(hog.bytes, 0);
    assert_int_equal(ingest_budget_used(), 0);
    pprof_profile *p = ingest_decode(cpu, len, &g, &err);
    assert_non_null(p);
    assert_int_equal(g.bytes, firn_arena_bytes(p->arena));
    assert_int_equal(ingest_budget_used(), g.bytes);
    pprof_free(p);
    ingest_grant_release(&g);
    assert_int_equal(ingest_budget_used(), 0);
    r = post(f, "/api/v1/ingest?name=process_cpu&job=budget&time=1700000000", cpu, len, NULL,
             NULL);
    assert_int_equal(r.status, 200);
    reply_free(&r);
    assert_int_equal(ingest_budget_used(), 0);

    /* a profile whose decoding needs more than its first grant: the CPU
     * profile with an unused 3 MiB string appended to its string table
     * (field 6), gzipped to a few KiB: its first grant (4 MiB, a quarter of
     * it for the gunzipped bytes) is too small, the third one fits */
    unsigned char *raw;
    size_t raw_len;
    assert_int_equal(pprof_gunzip(cpu, len, 1u << 20, &raw, &raw_len, &err), 0);
    firn_buf padded = {0};
    firn_buf_append(&padded, raw, raw_len);
    size_t pad = 3u << 20;
    unsigned char head[8] = {0x32};   /* field 6, length-delimited */
    size_t h = 1;
    for (size_t v = pad; v; v >>= 7)
        head[h++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    firn_buf_append(&padded, head, h);
    char *filler = malloc(pad);
    assert_non_null(filler);
    memset(filler, 'a', pad);
    firn_buf_append(&padded, filler, pad);
    free(filler);
    assert_false(padded.failed);
    unsigned char *gz;
    size_t gz_len;
    assert_int_equal(pprof_gzip(padded.data, padded.len, 9, &gz, &gz_len, &err), 0);
    assert_true(gz_len * 16 < (4u << 20));
    ingest_budget_set(64u << 20);
    refused = ingest_budget_refused();
    p = ingest_decode(gz, gz_len, &g, &err);
    if (!p)
        fail_msg("decoding %zu bytes gzipped to %zu: %s", padded.len, gz_len, err.msg);
    assert_int_equal(g.bytes, firn_arena_bytes(p->arena));
    assert_true(ingest_budget_refused() == refused);
    pprof_free(p);
    ingest_grant_release(&g);
    /* with 10 MiB left the second grant (8 MiB, 2 for the gunzipped bytes)
     * is too small and the third (16 MiB) cannot be had: busy, nothing held */
    assert_true(ingest_budget_take(&hog, 54u << 20));
    assert_null(ingest_decode(gz, gz_len, &g, &err));
    assert_int_equal(err.code, FIRN_EBUSY);
    assert_int_equal(g.bytes, 0);
    ingest_grant_release(&hog);
    assert_int_equal(ingest_budget_used(), 0);
    /* a budget of 12 MiB can never hold it (3 MiB for the gunzipped
     * bytes): too big, not busy */
    ingest_budget_set(12u << 20);
    assert_null(ingest_decode(gz, gz_len, &g, &err));
    assert_int_equal(err.code, FIRN_ETOOBIG);
    assert_non_null(strstr(err.msg, "decoding profile: more than the ingest memory budget "
                                    "(12582912 bytes) allows: "));
    assert_int_equal(g.bytes, 0);
    assert_int_equal(ingest_budget_used(), 0);
    firn_buf_free(&padded);
    free(raw);
    free(gz);
    ingest_budget_set(0);
    assert_int_equal(ingest_budget_limit(), INGEST_DEFAULT_BUDGET);
    free(cpu);
}

static void test_queue_full(void **state)
{
    fixture *f = *state;
    size_t len;
    unsigned char *cpu = read_fixture(CPU_FIXTURE, &len);
    enum { N = 16 };
    CURLM *multi = curl_multi_init();
    CURL *easy[N];
    reply replies[N];
    struct curl_slist *h = curl_slist_append(NULL, "Expect:");
    for (int i = 0; i < N; i++) {
        char target[256];
        snprintf(target, sizeof target, "/api/v1/ingest?name=race&job=r&time=%d", 1700000000 + i);
        replies[i] = (reply){0};
        easy[i] = post_new(f, target, cpu, len, h, &replies[i]);
        curl_multi_add_handle(multi, easy[i]);
    }
    int running = 1;
    while (running) {
        curl_multi_perform(multi, &running);
        if (running)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    int stored = 0;
    for (int i = 0; i < N; i++) {
        curl_easy_getinfo(easy[i], CURLINFO_RESPONSE_CODE, &replies[i].status);
        if (replies[i].status == 200) {
            stored++;
        } else {
            if (replies[i].status != 503 || !strstr(body_of(&replies[i]), "queue full"))
                fail_msg("push %d: %ld %s", i, replies[i].status, body_of(&replies[i]));
            const char *hs = replies[i].headers.data ? replies[i].headers.data : "";
            assert_non_null(strcasestr(hs, "\r\nRetry-After: 1\r\n"));
        }
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
        reply_free(&replies[i]);
    }
    curl_multi_cleanup(multi);
    curl_slist_free_all(h);
    assert_true(stored >= 1);
    /* every acknowledged push is there, and only those */
    firn_err err = {0};
    tsdb_reader *r = tsdb_reader_open(f->db, &err);
    firn_matcher m;
    firn_matcher_init(&m, FIRN_MATCH_EQ, "job", "r", &err);
    tsdb_series_set set;
    assert_int_equal(tsdb_select(r, &m, 1, INT64_MIN, INT64_MAX, &set, &err), 0);
    assert_int_equal(set.n, 2);
    for (size_t s = 0; s < set.n; s++) {
        int blocks = 0;
        assert_int_equal(tsdb_scan(r, set.series[s].id, INT64_MIN, INT64_MAX, TSDB_SCAN_TOTALS,
                                   count_block, &blocks, &err),
                         0);
        assert_int_equal(blocks, stored);
    }
    tsdb_series_set_free(&set);
    firn_matcher_destroy(&m);
    tsdb_reader_close(r);
    free(cpu);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_multipart_table),
        cmocka_unit_test(test_multipart_caps),
        cmocka_unit_test(test_pyroscope_name),
        cmocka_unit_test(test_folded),
        cmocka_unit_test(test_pyroscope_profile_name),
        cmocka_unit_test_setup_teardown(test_api_ingest, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_pyroscope_folded, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_pyroscope_pprof, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_queue_full, setup_server, teardown_server),
        cmocka_unit_test_setup_teardown(test_ingest_budget, setup_server, teardown_server),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
