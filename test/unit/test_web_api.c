/* test_web_api.c -- Prometheus's query API (web/api_prom.c) and the JSON it
 * writes (web/json.c):
 *  - the parameters as Prometheus reads them: times as float seconds
 *    (rounded to ms) or RFC3339/RFC3339Nano with offsets, durations as
 *    float seconds or Prometheus durations, and their error messages;
 *  - values as Go's strconv.FormatFloat ('f', -1; 'e' below 1e-6 and from
 *    1e21), timestamps as seconds with 3 decimals, strings escaped as Go's
 *    encoding/json escapes them, each result type;
 *  - the endpoints over a real store through a real server on loopback
 *    (libcurl): success and error envelopes byte for byte, status codes,
 *    GET and POST form bodies, limits and their warning, label values.
 *
 * The store holds synthetic CPU profiles with known values: for job j (api
 * 0, db 1) at step k (10 s apart from T0) one stack of 100 (j + 1) + k and
 * one of 10 samples; the cpu column is the samples times 1000.  Expected
 * answers are computed from that, never copied from the code under test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "fixtures.h"

#include "promql-like/pql.h"
#include "web/internal.h"
#include "web/web.h"

#include "h2o_lsan.h"
#include "http_reply.h"

#define T0 1700000000000LL   /* 2023-11-14T22:13:20Z */
#define STEPS 6
#define CPU "process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta"
#define SAMPLES "process_cpu:samples:count:cpu:nanoseconds:delta"

/* ---- parameters --------------------------------------------------------------- */

static void test_parse_time(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {
        {"1700000000", T0},
        {"1700000000.123", T0 + 123},
        {"1700000000.9999", T0 + 1000},         /* rounded to ms */
        {"1700000000.0004", T0},
        {"-1.5", -1500},
        {"0", 0},
        {"1.7e9", 1700000000000LL},
        {"2023-11-14T22:13:20Z", T0},
        {"2023-11-14T22:13:20.5Z", T0 + 500},
        {"2023-11-14T22:13:20.123456789Z", T0 + 123},   /* RFC3339Nano, cut to ms */
        {"2023-11-14T23:13:20+01:00", T0},
        {"2023-11-14T17:43:20.25-04:30", T0 + 250},
        {"1970-01-01T00:00:00Z", 0},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ms = -42;
        firn_err err = {0};
        if (web_parse_time(ok[i].in, &ms, &err) < 0)
            fail_msg("%s: %s", ok[i].in, err.msg);
        if (ms != ok[i].ms)
            fail_msg("%s: got %lld, want %lld", ok[i].in, (long long)ms, (long long)ok[i].ms);
    }
    static const char *const bad[] = {
        "", "abc", "2023-11-14", "2023-11-14T22:13:20", "2023-11-14T22:13:20.Z",
        "2023-13-14T22:13:20Z", "2023-11-14T22:13:20+0100", "NaN", "Inf", "1e300",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms;
        firn_err err = {0};
        if (web_parse_time(bad[i], &ms, &err) == 0)
            fail_msg("%s: accepted as %lld", bad[i], (long long)ms);
        char want[256];
        snprintf(want, sizeof want, "cannot parse \"%s\" to a valid timestamp", bad[i]);
        assert_string_equal(err.msg, want);
        assert_int_equal(err.code, FIRN_EINVAL);
    }
}

static void test_parse_duration(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {
        {"15s", 15000}, {"1m30s", 90000}, {"1h", 3600000}, {"1d", 86400000},
        {"100ms", 100}, {"1.5", 1500},     {"0", 0},       {"30", 30000},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        int64_t ms = -42;
        firn_err err = {0};
        if (web_parse_duration(ok[i].in, &ms, &err) < 0)
            fail_msg("%s: %s", ok[i].in, err.msg);
        assert_int_equal(ms, ok[i].ms);
    }
    static const struct {
        const char *in, *msg;
    } bad[] = {
        {"", "cannot parse \"\" to a valid duration"},
        {"1x", "cannot parse \"1x\" to a valid duration"},
        {"1s1m", "cannot parse \"1s1m\" to a valid duration"},
        {"1e400", "cannot parse \"1e400\" to a valid duration. It overflows int64"},
        {"1e10", "cannot parse \"1e10\" to a valid duration. It overflows int64"},
        {"-1e10", "cannot parse \"-1e10\" to a valid duration. It overflows int64"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int64_t ms;
        firn_err err = {0};
        assert_int_equal(web_parse_duration(bad[i].in, &ms, &err), FIRN_EINVAL);
        assert_string_equal(err.msg, bad[i].msg);
    }
}

static void test_range_check(void **state)
{
    (void)state;
    firn_err err = {0};
    assert_int_equal(web_query_range_check(0, 0, 1, &err), 0);
    assert_int_equal(web_query_range_check(0, 11000, 1, &err), 0);   /* 11,001 points: allowed */
    assert_int_equal(web_query_range_check(0, 11001, 1, &err), FIRN_EINVAL);
    assert_string_equal(err.msg, "exceeded maximum resolution of 11,000 points per timeseries. "
                                 "Try decreasing the query resolution (?step=XX)");
    assert_int_equal(web_query_range_check(INT64_MIN, INT64_MAX, INT64_MAX, &err), 0);
    assert_int_equal(web_query_range_check(INT64_MIN, INT64_MAX, 1, &err), FIRN_EINVAL);
    assert_int_equal(web_query_range_check(10, 9, 1, &err), FIRN_EINVAL);
    assert_string_equal(err.msg, "invalid parameter \"end\": end timestamp must not be before "
                                 "start time");
    assert_int_equal(web_query_range_check(0, 10, 0, &err), FIRN_EINVAL);
    assert_string_equal(err.msg, "invalid parameter \"step\": zero or negative query resolution "
                                 "step widths are not accepted. Try a positive integer");
    assert_int_equal(web_query_range_check(0, 10, -5, &err), FIRN_EINVAL);
}

/* ---- values, timestamps, strings ----------------------------------------------- */

static void test_format_value(void **state)
{
    (void)state;
    /* Go: strconv.FormatFloat(v, 'f' or 'e', -1, 64), as Prometheus picks */
    static const struct {
        double v;
        const char *want;
    } T[] = {
        {0, "0"},
        {-0.0, "-0"},
        {1, "1"},
        {-1, "-1"},
        {0.1, "0.1"},
        {1.5, "1.5"},
        {11.45, "11.45"},
        {123.456, "123.456"},
        {0.1 + 0.2, "0.30000000000000004"},
        {1.0 / 3, "0.3333333333333333"},
        {2.0 / 3, "0.6666666666666666"},
        {1e-6, "0.000001"},
        {1.5e-6, "0.0000015"},
        {-1e-6, "-0.000001"},
        {9.99e-7, "9.99e-07"},
        {1e-7, "1e-07"},
        {-1e-7, "-1e-07"},
        {1.25e-100, "1.25e-100"},
        {5e-324, "5e-324"},
        {1e15, "1000000000000000"},
        {123456789012345678.0, "123456789012345680"},
        {1e20, "100000000000000000000"},
        {999999999999999900000.0, "999999999999999900000"},
        {1e21, "1e+21"},
        {1.5e21, "1.5e+21"},
        {-1e21, "-1e+21"},
        {1e100, "1e+100"},
        {DBL_MAX, "1.7976931348623157e+308"},
        {9007199254740993.0, "9007199254740992"},
        {4503599627370495.5, "4503599627370495.5"},
        {NAN, "NaN"},
        {INFINITY, "+Inf"},
        {-INFINITY, "-Inf"},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        char buf[WEB_VALUE_MAX];
        size_t n = web_format_value(T[i].v, buf, sizeof buf);
        if (strcmp(buf, T[i].want) != 0)
            fail_msg("%.17g: got \"%s\", want \"%s\"", T[i].v, buf, T[i].want);
        assert_int_equal(n, strlen(T[i].want));
    }
    /* a short buffer is cut, never overrun */
    char small[4];
    web_format_value(123456.5, small, sizeof small);
    assert_string_equal(small, "123");
}

static char *take(firn_buf *b)
{
    size_t len;
    char *s = firn_buf_take(b, &len);
    assert_non_null(s);
    return s;
}

static void expect_buf(firn_buf *b, const char *want)
{
    char *got = take(b);
    if (strcmp(got, want) != 0)
        fail_msg("got  %s\nwant %s", got, want);
    free(got);
}

static void test_timestamp(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } T[] = {
        {0, "0"},
        {1, "0.001"},
        {10, "0.010"},
        {1500, "1.500"},
        {T0, "1700000000"},
        {T0 + 10, "1700000000.010"},
        {T0 + 999, "1700000000.999"},
        {-1500, "-1.500"},
        {-1, "-0.001"},
        {INT64_MIN, "-9223372036854775.808"},
        {INT64_MAX, "9223372036854775.807"},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        firn_buf b = {0};
        web_json_timestamp(&b, T[i].ms);
        expect_buf(&b, T[i].want);
    }
}

static void test_json_string(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } T[] = {
        {"", "\"\""},
        {"plain", "\"plain\""},
        {"a\"b\\c", "\"a\\\"b\\\\c\""},
        {"\n\r\t", "\"\\n\\r\\t\""},
        {"\x01\x1f\b\f", "\"\\u0001\\u001f\\u0008\\u000c\""},
        {"<a href='x'>&</a>", "\"\\u003ca href='x'\\u003e\\u0026\\u003c/a\\u003e\""},
        {"caf\xc3\xa9 \xe2\x9c\x93", "\"caf\xc3\xa9 \xe2\x9c\x93\""},   /* UTF-8 kept */
        {"\xe2\x80\xa8\xe2\x80\xa9", "\"\\u2028\\u2029\""},
        {"a\xff" "b\xc3", "\"a\\ufffdb\\ufffd\""},                          /* invalid UTF-8 */
        {"\xf0\x9f\x94\xa5", "\"\xf0\x9f\x94\xa5\""},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        firn_buf b = {0};
        firn_json_string(&b, T[i].in);
        expect_buf(&b, T[i].want);
    }
    firn_buf b = {0};
    firn_json_string(&b, NULL);
    expect_buf(&b, "\"\"");
}

static void test_pql_result_json(void **state)
{
    (void)state;
    firn_buf b = {0};
    pql_result scalar = {.type = PQL_TYPE_SCALAR, .scalar = 2, .t_ms = T0};
    web_json_pql_result(&b, &scalar);
    expect_buf(&b, "{\"resultType\":\"scalar\",\"result\":[1700000000,\"2\"]}");

    pql_result nan = {.type = PQL_TYPE_SCALAR, .scalar = NAN, .t_ms = T0 + 5};
    web_json_pql_result(&b, &nan);
    expect_buf(&b, "{\"resultType\":\"scalar\",\"result\":[1700000000.005,\"NaN\"]}");

    pql_result str = {.type = PQL_TYPE_STRING, .string = "a\"b", .t_ms = T0};
    web_json_pql_result(&b, &str);
    expect_buf(&b, "{\"resultType\":\"string\",\"result\":[1700000000,\"a\\\"b\"]}");

    pql_result empty = {.type = PQL_TYPE_VECTOR};
    web_json_pql_result(&b, &empty);
    expect_buf(&b, "{\"resultType\":\"vector\",\"result\":[]}");

    firn_label l1[] = {{"__name__", "cpu"}, {"job", "api"}};
    firn_label l2[] = {{"job", "db<1>"}};
    pql_point p1[] = {{T0, 1.5}}, p2[] = {{T0, INFINITY}};
    pql_series vs[] = {{l1, 2, p1, 1}, {l2, 1, p2, 1}};
    pql_result vector = {.type = PQL_TYPE_VECTOR, .series = vs, .n_series = 2};
    web_json_pql_result(&b, &vector);
    expect_buf(&b, "{\"resultType\":\"vector\",\"result\":["
                   "{\"metric\":{\"__name__\":\"cpu\",\"job\":\"api\"},"
                   "\"value\":[1700000000,\"1.5\"]},"
                   "{\"metric\":{\"job\":\"db\\u003c1\\u003e\"},"
                   "\"value\":[1700000000,\"+Inf\"]}]}");

    pql_point m1[] = {{T0, 1}, {T0 + 15000, 1e-9}, {T0 + 30500, -2}};
    pql_series ms[] = {{NULL, 0, m1, 3}, {l2, 1, NULL, 0}};
    pql_result matrix = {.type = PQL_TYPE_MATRIX, .series = ms, .n_series = 2};
    web_json_pql_result(&b, &matrix);
    expect_buf(&b, "{\"resultType\":\"matrix\",\"result\":["
                   "{\"metric\":{},\"values\":[[1700000000,\"1\"],[1700000015,\"1e-09\"],"
                   "[1700000030.500,\"-2\"]]},"
                   "{\"metric\":{\"job\":\"db\\u003c1\\u003e\"},\"values\":[]}]}");
}

/* The envelopes json.c sends. */
static void test_envelopes(void **state)
{
    (void)state;
    static const struct {
        const char *type;
        int status;
    } T[] = {
        {"bad_data", 400}, {"execution", 422}, {"canceled", 499}, {"timeout", 503},
        {"internal", 500}, {"not_found", 404}, {"not_acceptable", 406}, {"unavailable", 500},
    };
    for (size_t i = 0; i < sizeof T / sizeof T[0]; i++) {
        http_response resp = {0};
        web_respond_error(&resp, T[i].type, "bad %s", "thing");
        assert_int_equal(resp.status, T[i].status);
        assert_string_equal(resp.content_type, "application/json");
        char want[256];
        snprintf(want, sizeof want,
                 "{\"status\":\"error\",\"errorType\":\"%s\",\"error\":\"bad thing\"}", T[i].type);
        assert_string_equal(resp.body, want);
        assert_int_equal(resp.body_len, strlen(want));
        free(resp.body);
    }
    http_response resp = {0};
    web_respond_data(&resp, json_array());
    assert_int_equal(resp.status, 200);
    assert_string_equal(resp.body, "{\"status\":\"success\",\"data\":[]}");
    free(resp.body);
}

/* ---- the endpoints ------------------------------------------------------------------ */

static const char *const JOBS[] = {"api", "db"};

static int64_t samples_value(int j, int k)
{
    return 100 * (j + 1) + k;
}

/* Two stacks: main;work = samples_value, main;idle = 10; cpu = samples * 1000. */
static pprof_profile *make_profile(int j, int k)
{
    pprof_builder *b = pprof_builder_new(2);
    assert_non_null(b);
    pprof_builder_sample_type(b, 0, "samples", "count");
    pprof_builder_sample_type(b, 1, "cpu", "nanoseconds");
    pprof_builder_period(b, "cpu", "nanoseconds", 10000000);
    const char *names[] = {"main", "main.work", "main.idle"};
    uint32_t loc[3];
    for (int i = 0; i < 3; i++) {
        pprof_function f = {.name = pprof_builder_string(b, names[i], strlen(names[i]))};
        uint32_t fi = pprof_builder_function(b, &f);
        pprof_line ln = {.function = fi, .line = 10 + i};
        pprof_location l = {.mapping = PPROF_NONE, .address = 0x1000 + (uint64_t)i,
                            .lines = &ln, .n_lines = 1};
        loc[i] = pprof_builder_location(b, &l);
    }
    uint32_t s1[2] = {loc[1], loc[0]}, s2[2] = {loc[2], loc[0]};
    int64_t v1[2] = {samples_value(j, k), samples_value(j, k) * 1000}, v2[2] = {10, 10000};
    assert_int_equal(pprof_builder_sample(b, s1, 2, v1, NULL, 0), 0);
    assert_int_equal(pprof_builder_sample(b, s2, 2, v2, NULL, 0), 0);
    firn_err err = {0};
    pprof_profile *p = pprof_builder_finish(b, &err);
    assert_non_null(p);
    return p;
}

static char *fake_config_yaml(void *ctx)
{
    return strdup(ctx);
}

struct server {
    char *dir;
    tsdb *db;
    http_server *web;
    web_api api;
    pql_limits limits;
    bool limited;                    /* api.limits is &limits */
};

static struct server *srv;

/* The query limits of the "limited" server: LIMITED_SAMPLES and one slot. */
#define LIMITED_SAMPLES 10

static int server_start(bool limited)
{
    srv = calloc(1, sizeof *srv);
    srv->dir = temp_dir("web-api");
    tsdb_options o;
    tsdb_options_default(&o);
    o.path = srv->dir;
    o.retention_ms = 0;
    firn_err err = {0};
    srv->db = tsdb_open(&o, &err);
    assert_non_null(srv->db);
    for (int j = 0; j < 2; j++)
        for (int k = 0; k < STEPS; k++) {
            pprof_profile *p = make_profile(j, k);
            firn_label labels[2] = {{"instance", "a:1"}, {"job", JOBS[j]}};
            tsdb_append_req req = {.labels = labels, .n_labels = 2, .profile_name = "process_cpu",
                                   .delta = true, .profile = p, .timestamp_ms = T0 + k * 10000};
            if (tsdb_append(srv->db, &req, &err) < 0)
                fail_msg("append: %s", err.msg);
            pprof_free(p);
        }
    http_options wo;
    http_options_default(&wo);
    wo.listen_address = "127.0.0.1:0";
    srv->web = http_new(&wo, &err);
    assert_non_null(srv->web);
    static const char *const flags[] = {"web.listen-address", "127.0.0.1:0", "log.level",
                                        "info", "config.file", "a<b>.yml", NULL};
    srv->api.db = srv->db;
    srv->api.flags = flags;
    srv->api.config_yaml = fake_config_yaml;
    srv->api.config_yaml_ctx = "scrape_configs: []\n";
    if (limited) {
        assert_int_equal(pql_limits_init(&srv->limits, LIMITED_SAMPLES, 1, &err), 0);
        srv->api.limits = &srv->limits;
        srv->limited = true;
    }
    atomic_store(&srv->api.ready, true);
    assert_int_equal(web_api_prom_register(srv->web, &srv->api, &err), 0);
    assert_int_equal(http_start(srv->web, &err), 0);
    return 0;
}

static int server_up(void **state)
{
    (void)state;
    return server_start(false);
}

static int server_up_limited(void **state)
{
    (void)state;
    return server_start(true);
}

static int server_down(void **state)
{
    (void)state;
    http_stop(srv->web);
    if (srv->limited)
        pql_limits_destroy(&srv->limits);
    tsdb_close(srv->db);
    remove_tree(srv->dir);
    free(srv->dir);
    free(srv);
    srv = NULL;
    return 0;
}


/* One request (a POST form when form is not NULL); a transport error fails the test. */
static reply request(const char *target, const char *form)
{
    reply r = {0};
    char url[4096];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", http_port(srv->web), target);
    CURL *c = curl_easy_init();
    assert_non_null(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    if (form)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, form);   /* x-www-form-urlencoded */
    CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK)
        fail_msg("%s: %s", target, curl_easy_strerror(rc));
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
    curl_easy_cleanup(c);
    firn_buf_append(&r.body, "", 0);
    firn_buf_append(&r.headers, "", 0);
    return r;
}

static void expect(const char *target, const char *form, long status, const char *want)
{
    reply r = request(target, form);
    const char *body = r.body.data ? r.body.data : "";
    if (r.status != status || strcmp(body, want) != 0)
        fail_msg("%s %s: got %ld %s\nwant %ld %s", form ? "POST" : "GET", target, r.status, body,
                 status, want);
    if (status != 404 && !strcasestr(r.headers.data, "\r\ncontent-type: application/json\r\n"))
        fail_msg("%s: not application/json:\n%s", target, r.headers.data);
    firn_buf_free(&r.body);
    firn_buf_free(&r.headers);
}

#define OK(data) "{\"status\":\"success\",\"data\":" data "}"
#define ERR(type, msg) "{\"status\":\"error\",\"errorType\":\"" type "\",\"error\":\"" msg "\"}"

static void test_query(void **state)
{
    (void)state;
    /* Grafana's health check */
    expect("/api/v1/query?query=1%2B1&time=1700000000", NULL, 200,
           OK("{\"resultType\":\"scalar\",\"result\":[1700000000,\"2\"]}"));
    expect("/api/v1/query", "query=1%2B1&time=2023-11-14T22:13:20.5Z", 200,
           OK("{\"resultType\":\"scalar\",\"result\":[1700000000.500,\"2\"]}"));
    expect("/api/v1/query?query=%22hi%22&time=1700000000", NULL, 200,
           OK("{\"resultType\":\"string\",\"result\":[1700000000,\"hi\"]}"));
    /* at T0 + 50 s (k = 5): (100 (j + 1) + 5 + 10) * 1000 per job */
    char want[1024];
    snprintf(want, sizeof want,
             OK("{\"resultType\":\"vector\",\"result\":["
                "{\"metric\":{\"job\":\"api\"},\"value\":[1700000050,\"%lld\"]},"
                "{\"metric\":{\"job\":\"db\"},\"value\":[1700000050,\"%lld\"]}]}"),
             (long long)(samples_value(0, 5) + 10) * 1000,
             (long long)(samples_value(1, 5) + 10) * 1000);
    expect("/api/v1/query?query=sum+by+(job)+(" CPU ")&time=1700000050", NULL, 200, want);
    expect("/api/v1/query", "query=sum+by+(job)+(" CPU ")&time=1700000050", 200, want);
    /* rate over a delta type: the profiles in (T0+30s, T0+50s] over 20 s */
    snprintf(want, sizeof want,
             OK("{\"resultType\":\"vector\",\"result\":["
                "{\"metric\":{\"instance\":\"a:1\",\"job\":\"api\"},"
                "\"value\":[1700000050,\"%s\"]}]}"),
             "11.45");
    assert_int_equal((samples_value(0, 4) + 10 + samples_value(0, 5) + 10) * 100 / 20, 1145);
    expect("/api/v1/query?query=rate(" SAMPLES "{job=\"api\"}[20s])&time=1700000050", NULL, 200,
           want);
    /* limit: the first series, and a warning */
    expect("/api/v1/query?query=sum+by+(job)+(" CPU ")&time=1700000050&limit=1", NULL, 200,
           "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":["
           "{\"metric\":{\"job\":\"api\"},\"value\":[1700000050,\"115000\"]}]},"
           "\"warnings\":[\"results truncated due to limit\"]}");
    expect("/api/v1/query?query=sum+by+(job)+(" CPU ")&time=1700000050&limit=2", NULL, 200,
           OK("{\"resultType\":\"vector\",\"result\":["
              "{\"metric\":{\"job\":\"api\"},\"value\":[1700000050,\"115000\"]},"
              "{\"metric\":{\"job\":\"db\"},\"value\":[1700000050,\"215000\"]}]}"));
    /* nothing in range: an empty vector, not null */
    expect("/api/v1/query?query=" CPU "&time=1600000000", NULL, 200,
           OK("{\"resultType\":\"vector\",\"result\":[]}"));
}

static void test_query_errors(void **state)
{
    (void)state;
    expect("/api/v1/query?query=sum(", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"query\\\": 1:5: unexpected end of input"));
    reply r = request("/api/v1/query?query=rate(x)", NULL);
    assert_int_equal(r.status, 400);
    assert_non_null(strstr(r.body.data, "\"error\":\"invalid parameter \\\"query\\\": 1:6: "));
    firn_buf_free(&r.body);
    firn_buf_free(&r.headers);
    expect("/api/v1/query?query=1&time=yesterday", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"time\\\": Invalid time value for 'time': "
                           "cannot parse \\\"yesterday\\\" to a valid timestamp"));
    expect("/api/v1/query?query=1&timeout=soon", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"timeout\\\": cannot parse \\\"soon\\\" to a "
                           "valid duration"));
    expect("/api/v1/query?query=1&limit=-1", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"limit\\\": limit must be non-negative"));
    expect("/api/v1/query?query=1&limit=x", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"limit\\\": strconv.Atoi: parsing \\\"x\\\": "
                           "invalid syntax"));
    /* an evaluation error: without __name__ the two types of a job collide */
    expect("/api/v1/query?query=-{job=\"api\"}&time=1700000050", NULL, 422,
           ERR("execution", "vector cannot contain metrics with the same labelset"));
    /* a deadline already gone when the evaluation ends */
    expect("/api/v1/query?query=" CPU "&time=1700000050&timeout=0", NULL, 503,
           ERR("timeout", "query timed out in expression evaluation"));
    /* not ready yet */
    atomic_store(&srv->api.ready, false);
    reply nr = request("/api/v1/query?query=1", NULL);
    assert_int_equal(nr.status, 503);
    firn_buf_free(&nr.body);
    firn_buf_free(&nr.headers);
    atomic_store(&srv->api.ready, true);
}

static void test_query_range(void **state)
{
    (void)state;
    char want[2048];
    snprintf(want, sizeof want,
             OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{\"__name__\":\"" SAMPLES
                "\",\"instance\":\"a:1\",\"job\":\"api\"},\"values\":[[1700000000,\"%lld\"],"
                "[1700000010,\"%lld\"],[1700000020,\"%lld\"]]}]}"),
             (long long)samples_value(0, 0) + 10, (long long)samples_value(0, 1) + 10,
             (long long)samples_value(0, 2) + 10);
    const char *q = "query=" SAMPLES "{job=\"api\"}&start=1700000000&end=1700000020";
    char target[1024];
    snprintf(target, sizeof target, "/api/v1/query_range?%s&step=10", q);
    expect(target, NULL, 200, want);
    snprintf(target, sizeof target, "%s&step=10s", q);
    expect("/api/v1/query_range", target, 200, want);
    expect("/api/v1/query_range", "query=" SAMPLES "{job=\"api\"}&start=2023-11-14T22:13:20Z"
           "&end=2023-11-14T23:13:40%2B01:00&step=10000ms", 200, want);
    /* a scalar becomes a series without labels */
    expect("/api/v1/query_range?query=1%2B1&start=1700000000&end=1700000001&step=0.5", NULL, 200,
           OK("{\"resultType\":\"matrix\",\"result\":[{\"metric\":{},\"values\":["
              "[1700000000,\"2\"],[1700000000.500,\"2\"],[1700000001,\"2\"]]}]}"));

    expect("/api/v1/query_range?query=1&start=10&end=9&step=1", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"end\\\": end timestamp must not be before "
                           "start time"));
    expect("/api/v1/query_range?query=1&start=1&end=9&step=0", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"step\\\": zero or negative query resolution "
                           "step widths are not accepted. Try a positive integer"));
    expect("/api/v1/query_range?query=1&start=1&end=9", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"step\\\": cannot parse \\\"\\\" to a valid "
                           "duration"));
    expect("/api/v1/query_range?query=1&start=0&end=11001&step=1", NULL, 400,
           ERR("bad_data", "exceeded maximum resolution of 11,000 points per timeseries. "
                           "Try decreasing the query resolution (?step=XX)"));
    expect("/api/v1/query_range?query=1&end=9&step=1", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"start\\\": cannot parse \\\"\\\" to a valid "
                           "timestamp"));
    expect("/api/v1/query_range?query=1&start=1&end=x&step=1", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"end\\\": cannot parse \\\"x\\\" to a valid "
                           "timestamp"));
    expect("/api/v1/query_range?query=" CPU "[1m]&start=1&end=9&step=1", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"query\\\": invalid expression type \\\"range "
                           "vector\\\" for range query, must be Scalar or instant Vector"));
}

static void test_series(void **state)
{
    (void)state;
    const char *api = "{\"__name__\":\"" CPU "\",\"instance\":\"a:1\",\"job\":\"api\"}";
    const char *db = "{\"__name__\":\"" CPU "\",\"instance\":\"a:1\",\"job\":\"db\"}";
    const char *sapi = "{\"__name__\":\"" SAMPLES "\",\"instance\":\"a:1\",\"job\":\"api\"}";
    char want[2048];
    snprintf(want, sizeof want, OK("[%s,%s]"), api, db);
    expect("/api/v1/series?match[]=" CPU, NULL, 200, want);
    expect("/api/v1/series", "match%5B%5D=" CPU "&start=1700000000&end=1700000050", 200, want);
    /* two selectors: the union, in label order, each series once */
    snprintf(want, sizeof want, OK("[%s,%s,%s]"), api, db, sapi);
    expect("/api/v1/series?match[]=" CPU "&match[]={job=\"api\"}", NULL, 200, want);
    /* a stack filter does not narrow a list of series */
    snprintf(want, sizeof want, OK("[%s]"), api);
    expect("/api/v1/series?match[]=" CPU "{job=\"api\",__function__=\"nothing\"}", NULL, 200,
           want);
    snprintf(want, sizeof want, "{\"status\":\"success\",\"data\":[%s],"
             "\"warnings\":[\"results truncated due to limit\"]}", api);
    expect("/api/v1/series?match[]=" CPU "&limit=1", NULL, 200, want);
    expect("/api/v1/series?match[]=" CPU "&start=1600000000&end=1600000001", NULL, 200, OK("[]"));
    expect("/api/v1/series?match[]=" CPU "&start=" "-292273086-05-16T16:47:06Z"
           "&end=292277025-08-18T07:12:54.999999999Z&limit=1", NULL, 200, want);

    expect("/api/v1/series", NULL, 400, ERR("bad_data", "no match[] parameter provided"));
    expect("/api/v1/series?match[]={job=\"\"}", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"match[]\\\": match[] must contain at least "
                           "one non-empty matcher"));
    expect("/api/v1/series?match[]={__function__=\"x\"}", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"match[]\\\": match[] must contain at least "
                           "one non-empty matcher"));
    expect("/api/v1/series?match[]=rate(x[1m])", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"match[]\\\": \\\"rate(x[1m])\\\" is not a "
                           "series selector such as process_cpu{job=\\\"api\\\"}"));
    expect("/api/v1/series?match[]=" CPU "&start=x", NULL, 400,
           ERR("bad_data", "invalid parameter \\\"start\\\": Invalid time value for 'start': "
                           "cannot parse \\\"x\\\" to a valid timestamp"));
}

static void test_labels(void **state)
{
    (void)state;
    expect("/api/v1/labels", NULL, 200, OK("[\"__name__\",\"instance\",\"job\"]"));
    expect("/api/v1/labels", "start=1700000000", 200, OK("[\"__name__\",\"instance\",\"job\"]"));
    expect("/api/v1/labels?start=1600000000&end=1600000001", NULL, 200, OK("[]"));
    expect("/api/v1/labels?match[]={job=\"db\"}&match[]={job=\"api\"}", NULL, 200,
           OK("[\"__name__\",\"instance\",\"job\"]"));
    expect("/api/v1/labels?limit=2", NULL, 200,
           "{\"status\":\"success\",\"data\":[\"__name__\",\"instance\"],"
           "\"warnings\":[\"results truncated due to limit\"]}");
    expect("/api/v1/labels?match[]={job=~\".*\"}", NULL, 400,
           ERR("bad_data", "match[] must contain at least one non-empty matcher"));

    expect("/api/v1/label/job/values", NULL, 200, OK("[\"api\",\"db\"]"));
    expect("/api/v1/label/__name__/values", NULL, 200, OK("[\"" CPU "\",\"" SAMPLES "\"]"));
    expect("/api/v1/label/job/values?match[]=" SAMPLES "{job=\"db\"}&match[]={job=\"api\"}",
           NULL, 200, OK("[\"api\",\"db\"]"));
    expect("/api/v1/label/job/values?match[]={job=\"db\"}", NULL, 200, OK("[\"db\"]"));
    expect("/api/v1/label/job/values?limit=1", NULL, 200,
           "{\"status\":\"success\",\"data\":[\"api\"],"
           "\"warnings\":[\"results truncated due to limit\"]}");
    expect("/api/v1/label/nothing/values", NULL, 200, OK("[]"));
    /* Prometheus's escaping of names: "__" is "_", "_6a_" is 'j' */
    expect("/api/v1/label/U___6a_ob/values", NULL, 200, OK("[\"api\",\"db\"]"));
    expect("/api/v1/label/U______name____/values", NULL, 200, OK("[\"" CPU "\",\"" SAMPLES "\"]"));
    expect("/api/v1/label/1job/values", NULL, 400,
           ERR("bad_data", "invalid label name: \\\"1job\\\""));
    expect("/api/v1/label/U__a_2e_b/values", NULL, 400,
           ERR("bad_data", "invalid label name: \\\"a.b\\\""));
    /* not a valid escape: the name as written, a valid one */
    expect("/api/v1/label/U__a_zz_b/values", NULL, 200, OK("[]"));
    expect("/api/v1/label/job", NULL, 404, "404 page not found\n");
    expect("/api/v1/label/job/values/x", NULL, 404, "404 page not found\n");
    expect("/api/v1/label//values", NULL, 404, "404 page not found\n");
}

static void test_status(void **state)
{
    (void)state;
    expect("/api/v1/status/buildinfo", NULL, 200,
           OK("{\"version\":\"" FIRN_VERSION "\",\"revision\":\"\",\"branch\":\"\","
              "\"buildUser\":\"\",\"buildDate\":\"\",\"goVersion\":\"\"}"));
    expect("/api/v1/status/config", NULL, 200, OK("{\"yaml\":\"scrape_configs: []\\n\"}"));
    expect("/api/v1/status/flags", NULL, 200,
           OK("{\"config.file\":\"a\\u003cb\\u003e.yml\",\"log.level\":\"info\","
              "\"web.listen-address\":\"127.0.0.1:0\"}"));
    /* every stored profile type, its metadata written out by hand */
#define CPU_META                                                                         \
    "\"process_cpu:cpu:nanoseconds:cpu:nanoseconds:delta\":[{\"type\":\"counter\","        \
    "\"help\":\"process_cpu profile: cpu (nanoseconds) over each profile's duration; "        \
    "period type cpu (nanoseconds).\",\"unit\":\"nanoseconds\"}]"
#define SAMPLES_META                                                                     \
    "\"process_cpu:samples:count:cpu:nanoseconds:delta\":[{\"type\":\"counter\","         \
    "\"help\":\"process_cpu profile: samples (count) over each profile's duration; "          \
    "period type cpu (nanoseconds).\",\"unit\":\"count\"}]"
    expect("/api/v1/metadata", NULL, 200, OK("{" CPU_META "," SAMPLES_META "}"));
    expect("/api/v1/metadata?limit=1", NULL, 200, OK("{" CPU_META "}"));
    expect("/api/v1/metadata?metric=process_cpu:samples:count:cpu:nanoseconds:delta", NULL,
           200, OK("{" SAMPLES_META "}"));
    expect("/api/v1/metadata?metric=nothing", NULL, 200, OK("{}"));
    expect("/api/v1/metadata?limit=x", NULL, 400, ERR("bad_data", "limit must be a number"));
    expect("/api/v1/query_exemplars?query=" CPU, NULL, 200, OK("[]"));
    expect("/api/v1/query_exemplars", "query=" CPU "&start=1&end=2", 200, OK("[]"));
    expect("/api/v1/query_exemplars?query=" CPU "&start=2&end=1", NULL, 400,
           ERR("bad_data", "end timestamp must not be before start timestamp"));
}

/* ---- query limits (the "limited" server) ----------------------------------- */

#define TOO_MANY ERR("execution", "query processing would load too many samples into memory " \
                                  "in query execution")

/* --query.max-samples (LIMITED_SAMPLES): points loaded plus points
 * answered.  The store has STEPS profiles per job and type, 10 s apart
 * from T0: an instant query at T0 + 50 s loads all STEPS of each series
 * (5-minute lookback). */
static void test_limit_samples(void **state)
{
    (void)state;
    /* two series: 2 x 6 loaded */
    expect("/api/v1/query?query=" CPU "&time=1700000050", NULL, 422, TOO_MANY);
    /* one series: 6 loaded + 1 answered */
    reply r = request("/api/v1/query?query=" CPU "{job=\"api\"}&time=1700000050", NULL);
    assert_int_equal(r.status, 200);
    firn_buf_free(&r.body);
    firn_buf_free(&r.headers);
    /* a range of 6 steps: 6 loaded + 6 answered */
    expect("/api/v1/query_range?query=" CPU "{job=\"api\"}&start=1700000000&end=1700000050"
           "&step=10", NULL, 422, TOO_MANY);
    /* 3 steps (0, 25, 50 s): 6 + 3 */
    r = request("/api/v1/query_range?query=" CPU "{job=\"api\"}&start=1700000000"
                "&end=1700000050&step=25", NULL);
    assert_int_equal(r.status, 200);
    firn_buf_free(&r.body);
    firn_buf_free(&r.headers);
    pql_limits_counts c;
    pql_limits_stats(&srv->limits, &c);
    assert_int_equal(c.too_many_samples_total, 2);
}

struct queued {
    const char *target;
    reply r;
};

static void *queued_run(void *arg)
{
    struct queued *q = arg;
    q->r = request(q->target, NULL);
    return NULL;
}

/* Polls the limits (bounded) until one query waits; false past 10 s. */
static bool one_waiting(void)
{
    for (int i = 0; i < 10000; i++) {
        pql_limits_counts c;
        pql_limits_stats(&srv->limits, &c);
        if (c.waiting == 1)
            return true;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return false;
}

/* A query sent while the one slot is taken: `target` waits for it.  Once
 * it waits, after_ms pass before the slot is given back. */
static reply while_slot_taken(const char *target, long after_ms)
{
    pql_limits_enter(&srv->limits);
    struct queued q = {.target = target};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, queued_run, &q), 0);
    bool waited = one_waiting();
    struct timespec ts = {after_ms / 1000, (after_ms % 1000) * 1000000};
    nanosleep(&ts, NULL);   /* lets a deadline pass; nothing waits on it */
    pql_limits_leave(&srv->limits, 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    assert_true(waited);
    return q.r;
}

/* --query.max-concurrency (1): a query waits for the slot, then answers;
 * the wait counts against its timeout, as in Prometheus. */
static void test_limit_concurrency(void **state)
{
    (void)state;
    reply r = while_slot_taken("/api/v1/query?query=1%2B1&time=1700000000", 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.body.data,
                        "{\"status\":\"success\",\"data\":{\"resultType\":\"scalar\","
                        "\"result\":[1700000000,\"2\"]}}");
    firn_buf_free(&r.body);
    firn_buf_free(&r.headers);
    r = while_slot_taken("/api/v1/query?query=1%2B1&time=1700000000&timeout=0.005", 20);
    assert_int_equal(r.status, 503);
    assert_string_equal(r.body.data, ERR("timeout", "query timed out in query queue"));
    firn_buf_free(&r.body);
    firn_buf_free(&r.headers);
    pql_limits_counts c;
    pql_limits_stats(&srv->limits, &c);
    assert_int_equal(c.waited_total, 2);
    assert_int_equal(c.running, 0);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    firn_log_set_level(FIRN_LOG_ERROR);
    const struct CMUnitTest pure[] = {
        cmocka_unit_test(test_parse_time),
        cmocka_unit_test(test_parse_duration),
        cmocka_unit_test(test_range_check),
        cmocka_unit_test(test_format_value),
        cmocka_unit_test(test_timestamp),
        cmocka_unit_test(test_json_string),
        cmocka_unit_test(test_pql_result_json),
        cmocka_unit_test(test_envelopes),
    };
    const struct CMUnitTest served[] = {
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_query_errors),
        cmocka_unit_test(test_query_range),
        cmocka_unit_test(test_series),
        cmocka_unit_test(test_labels),
        cmocka_unit_test(test_status),
    };
    int failed = cmocka_run_group_tests_name("web_api", pure, NULL, NULL);
    failed += cmocka_run_group_tests_name("web_api_served", served, server_up, server_down);
    const struct CMUnitTest limited[] = {
        cmocka_unit_test(test_limit_samples),
        cmocka_unit_test(test_limit_concurrency),
    };
    failed += cmocka_run_group_tests_name("web_api_limited", limited, server_up_limited,
                                          server_down);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
